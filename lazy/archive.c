/*
 * lazy/archive.c — modeld's stand-ins for libarchive (lazy/lazy.h).
 */
#include <archive.h>
#include <archive_entry.h>

#include "lazy/lazy.h"

#define ARCHIVE_FUNCS(F, V, H) \
	F(struct archive_entry *, archive_entry_clear, (struct archive_entry *a0), (a0)) \
	F(mode_t, archive_entry_filetype, (struct archive_entry *a0), (a0)) \
	V(archive_entry_free, (struct archive_entry *a0), (a0)) \
	F(const char *, archive_entry_hardlink, (struct archive_entry *a0), (a0)) \
	F(struct archive_entry *, archive_entry_new, (void), ()) \
	F(const char *, archive_entry_pathname, (struct archive_entry *a0), (a0)) \
	V(archive_entry_set_filetype, (struct archive_entry *a0, unsigned int a1), (a0, a1)) \
	V(archive_entry_set_mtime, \
	  (struct archive_entry *a0, time_t a1, long a2), (a0, a1, a2)) \
	V(archive_entry_set_pathname, (struct archive_entry *a0, const char *a1), (a0, a1)) \
	V(archive_entry_set_perm, (struct archive_entry *a0, mode_t a1), (a0, a1)) \
	V(archive_entry_set_size, (struct archive_entry *a0, la_int64_t a1), (a0, a1)) \
	F(la_int64_t, archive_entry_size, (struct archive_entry *a0), (a0)) \
	F(int, archive_entry_size_is_set, (struct archive_entry *a0), (a0)) \
	F(const char *, archive_entry_symlink, (struct archive_entry *a0), (a0)) \
	F(int, archive_errno, (struct archive *a0), (a0)) \
	F(const char *, archive_error_string, (struct archive *a0), (a0)) \
	F(la_int64_t, archive_filter_bytes, (struct archive *a0, int a1), (a0, a1)) \
	F(la_ssize_t, archive_read_data, \
	  (struct archive *a0, void *a1, size_t a2), (a0, a1, a2)) \
	F(int, archive_read_data_block, \
	  (struct archive *a, const void **buff, size_t *size, la_int64_t *offset), \
	  (a, buff, size, offset)) \
	F(int, archive_read_free, (struct archive *a0), (a0)) \
	F(struct archive *, archive_read_new, (void), ()) \
	F(int, archive_read_next_header, \
	  (struct archive *a0, struct archive_entry **a1), (a0, a1)) \
	F(int, archive_read_open, \
	  (struct archive *a0, void *a1, archive_open_callback *a2, archive_read_callback *a3, \
	   archive_close_callback *a4), (a0, a1, a2, a3, a4)) \
	F(int, archive_read_support_filter_gzip, (struct archive *a0), (a0)) \
	F(int, archive_read_support_filter_none, (struct archive *a0), (a0)) \
	F(int, archive_read_support_filter_xz, (struct archive *a0), (a0)) \
	F(int, archive_read_support_filter_zstd, (struct archive *a0), (a0)) \
	F(int, archive_read_support_format_tar, (struct archive *a0), (a0)) \
	F(int, archive_write_add_filter_zstd, (struct archive *a0), (a0)) \
	F(int, archive_write_close, (struct archive *a0), (a0)) \
	F(la_ssize_t, archive_write_data, \
	  (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2)) \
	F(int, archive_write_fail, (struct archive *a0), (a0)) \
	F(int, archive_write_free, (struct archive *a0), (a0)) \
	F(int, archive_write_header, (struct archive *a0, struct archive_entry *a1), (a0, a1)) \
	F(struct archive *, archive_write_new, (void), ()) \
	F(int, archive_write_open_fd, (struct archive *a0, int fd), (a0, fd)) \
	F(int, archive_write_set_bytes_per_block, \
	  (struct archive *a0, int bytes_per_block), (a0, bytes_per_block)) \
	F(int, archive_write_set_format_pax_restricted, (struct archive *a0), (a0)) \
	F(int, archive_write_set_options, (struct archive *a, const char *opts), (a, opts))

#define LAZY_VAR lazy_archive
LAZY_LIBRARY("libarchive.so.13", ARCHIVE_FUNCS)
