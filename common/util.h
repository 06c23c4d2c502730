/*
 * common/util.h — small helpers shared by daemon and client: full reads and
 * writes, hex, time stamps, human sizes, path and name checks.
 * All functions are thread-safe. Errors are MD_E* codes (common/err.h).
 */
#ifndef MD_UTIL_H
#define MD_UTIL_H

#include <stddef.h>
#include <locale.h>
#include <stdint.h>
#include <sys/types.h>

/* Write all n bytes (retrying on EINTR/short writes). 0 or MD_EIO/ENOSPC. */
int util_write_all(int fd, const void *buf, size_t n);
/* Read up to n bytes, stopping only at EOF. Returns bytes read or MD_EIO. */
ssize_t util_read_full(int fd, void *buf, size_t n);
/* pread variant of util_read_full. */
ssize_t util_pread_full(int fd, void *buf, size_t n, off_t off);
/* Copy n bytes from in at in_off to out at out_off (positional; neither
 * file offset moves), in the kernel where it can (copy_file_range), else
 * through a buffer. 0, MD_ECORRUPT (in ends early), MD_EIO, MD_ENOSPC,
 * MD_ENOMEM. */
int util_copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t n);

/* Whether the files at a and b hold the same bytes: 1, 0, or MD_EIO /
 * MD_ENOMEM (either cannot be opened or read). */
int util_same_contents(const char *a, const char *b);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void util_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits. 0 or MD_EINVAL. */
int util_unhex(const char *in, uint8_t *out, size_t n);
/* 1 if s is exactly n lower-case hex digits. */
int util_is_hex(const char *s, size_t n);

/* Current UTC time as "2026-11-23T08:01:39Z" into out (>= 21 bytes). */
void util_now_iso(char *out, size_t n);
/* Monotonic seconds. */
double util_mono(void);

/* "1.5 GiB" style, into out. */
void util_human_size(uint64_t bytes, char *out, size_t n);

/* mkdir -p with mode; 0 or an MD_E* code with md_fail detail. */
int util_mkdir_p(const char *path, mode_t mode);
/* fsync a directory by path. 0 or MD_EIO. */
int util_fsync_dir(const char *path);
/* The calling thread's LC_CTYPE becomes C.UTF-8 until util_utf8_leave
 * (libarchive's and fnmatch's idea of a character; the process locale
 * stays "C"). Returns what to pass to util_utf8_leave: 0 when C.UTF-8 is
 * missing and nothing changed. */
locale_t util_utf8_enter(void);
void util_utf8_leave(locale_t old);
/* 3 when buf starts with a UTF-8 byte-order mark (Windows editors write
 * one), else 0: it is no part of a text file's first line. */
size_t util_bom_len(const char *buf, size_t len);
/*
 * An API token from a file: its first line (at most max bytes read), a
 * leading byte-order mark and trailing spaces dropped. It must then be
 * non-empty printable ASCII without spaces, as HTTP header tokens are. A
 * file that is not UTF-8 text fails as util_check_text says (naming path,
 * line and offset); other errors name it as what ("token_file
 * /etc/modeld/hf"): MD_EIO (unreadable),
 * MD_EINVAL (empty, or other characters), MD_ENOMEM. *out is malloc'd;
 * wipe it before freeing.
 */
int util_read_token_file(const char *path, const char *what, size_t max, char **out);
/* RFC 3986 percent-decoding of n bytes of URL user info ("p%40ss" ->
 * "p@ss"), as git and curl do: malloc'd, or NULL for ENOMEM, a bad escape
 * or an escaped NUL. */
char *util_pct_decode(const char *s, size_t n);
/* In place, path becomes its parent folder: "a/b/" -> "a", "a" -> ".",
 * "/a" -> "/" ("." and "/" stay as they are). */
void util_parent(char *path);
/* The shallowest folder of path that does not exist (the first one
 * mkdir -p would create), malloc'd; NULL with errno EEXIST when path
 * exists, ENOMEM, or lstat's errno when that fails otherwise. */
char *util_first_missing(const char *path);
/* rm -r of a directory tree (symlinks removed, not followed); a missing
 * dir is 0. 0 or MD_EIO when something stayed. */
int util_rmtree(const char *dir);
/* Bytes removing the tree would free: allocated blocks of its regular
 * files not also linked elsewhere (st_nlink 1), in every subdirectory. */
uint64_t util_tree_bytes(const char *dir);

/*
 * Check a relative path from untrusted input (a hub, an archive, a folder):
 * non-empty, at most 1024 bytes, valid UTF-8, no NUL/control characters, no
 * leading '/', no "." or ".." or empty components, no backslash.
 * Returns 0 or MD_EREFUSED (with detail naming the path).
 */
int util_check_relpath(const char *p);

/*
 * Check text read from a user's file (a policy, a token) before it goes
 * anywhere as a JSON string: valid UTF-8 and no NUL byte. what names the
 * text in the message. Returns 0 or MD_EINVAL with the detail
 * "WHAT:LINE: invalid UTF-8 byte 0xE9 at offset 29" or
 * "WHAT:LINE: NUL byte at offset 12" (LINE from 1, offset in bytes from 0).
 */
int util_check_text(const char *buf, size_t len, const char *what);

/*
 * An untrusted string made fit for a one-line message: copied into buf (n
 * bytes, n >= 4), control characters and DEL shown as '?', cut with "..."
 * when it does not fit (never inside a UTF-8 character). Returns buf.
 */
char *util_printable(const char *s, char *buf, size_t n);

/*
 * Model name "ORG/NAME": two components of 1..96 chars [A-Za-z0-9._-], not
 * starting with '.' or '-', no "..". Returns 0 or MD_EINVAL.
 */
int util_check_model_name(const char *name);
/* Ref or revision: 1..255 chars [A-Za-z0-9._/-], no "..", no leading '/'
 * or '-', no trailing '/'. Returns 0 or MD_EINVAL. */
int util_check_ref(const char *ref);

/*
 * Split "ORG/NAME[@REV]" into name (malloc'd) and rev (malloc'd or NULL).
 * Validates both. 0, MD_EINVAL or MD_ENOMEM. Caller frees both.
 */
int util_parse_modelref(const char *ref, char **name, char **rev);

/*
 * A URL without its user info: "scheme://user:pw@host/p" is copied into out
 * (n bytes) as "scheme://host/p"; a URL without user info is copied as is.
 * When userinfo is not NULL it receives the removed "user:pw" (malloc'd,
 * still percent-encoded) or NULL. Returns 1 when something was removed, 0
 * when not, MD_EINVAL when the URL does not fit in out, MD_ENOMEM.
 * Credentials given in a URL are used for requests, never recorded.
 */
int util_url_strip_userinfo(const char *url, char *out, size_t n, char **userinfo);

/*
 * What is wrong with url as a hub's address, in words for a message
 * ("want an http:// or https:// URL", "no host in the URL", "bad port in the
 * URL", ...), or NULL when it is http(s)://[user@]HOST[:PORT][/path] with a
 * host (a name, an IPv4 address or a [bracketed] IPv6 one) and no spaces,
 * control characters, query or fragment. A static string.
 */
const char *util_hub_url_problem(const char *url);

#endif
