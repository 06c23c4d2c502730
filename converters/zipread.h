/*
 * converters/zipread.h — a minimal, strict reader for the stored-only zip
 * archives that torch.save writes (PyTorchStreamWriter / miniz).
 *
 * It reads the end-of-central-directory record (ZIP64 when present), the
 * central directory and every local header, and reports for each entry its
 * name and the byte range of its data inside the file. It never inflates:
 * an entry that is compressed or encrypted is refused (MD_EREFUSED, never
 * MD_EUNSUP: a zip we cannot read through must not be stored unchecked). Everything read from
 * the file is bounded before use:
 *   - the EOCD record (plus its comment) must end exactly at end of file;
 *   - at most ZIP_MAX_ENTRIES entries, a central directory of at most
 *     ZIP_MAX_CD bytes, names of at most ZIP_MAX_NAME bytes that pass
 *     util_check_relpath (no "..", no absolute paths, valid UTF-8);
 *   - no duplicate names, single disk only, local header name/method/flags
 *     equal to the central directory's, ZIP64 extra fields well-formed;
 *   - every entry's [local header, end of data + data descriptor) lies inside
 *     the file, before the central directory, and overlaps no other entry;
 *     a data descriptor, when flagged, must agree with the central directory.
 * CRCs are not checked here for the data entries (zip_read checks them for
 * the small entries it reads).
 *
 * Errors (md_fail detail names the entry): MD_ECORRUPT (malformed or
 * truncated), MD_EREFUSED (compressed, encrypted, multi-disk, flags
 * torch.save does not write, a hostile name: detail starts with
 * "refused: "), MD_ETOOBIG (a cap above), MD_EIO, MD_ENOMEM.
 */
#ifndef MD_ZIPREAD_H
#define MD_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

#define ZIP_MAX_ENTRIES 2000000u        /* entries in one archive */
#define ZIP_MAX_CD (512u << 20)         /* central directory bytes */
#define ZIP_MAX_NAME 1024u              /* bytes in an entry name */

struct zip_entry {
	char *name;          /* owned by the zip_archive; NUL-terminated */
	uint64_t hdr_off;    /* local header's first byte */
	uint64_t data_off;   /* data's first byte */
	uint64_t size;       /* data bytes (stored: compressed == uncompressed) */
	uint64_t end;        /* first byte after data and data descriptor */
	uint32_t crc;        /* CRC-32 from the central directory */
};

struct zip_archive {
	struct zip_entry *e; /* owned; sorted by name after zip_open */
	size_t n;
	uint64_t cd_off, cd_size;
	int zip64;           /* 1 if a ZIP64 end record was present */
};

/*
 * Read and validate the archive behind fd (size bytes) into za (zeroed by
 * the caller). On failure za is left empty (nothing to free).
 */
int zip_open(int fd, uint64_t size, struct zip_archive *za);
void zip_close(struct zip_archive *za);

/* The entry named name, or NULL. Borrowed: lives as long as za. O(log n). */
const struct zip_entry *zip_find(const struct zip_archive *za, const char *name);

/*
 * Read a whole entry of at most cap bytes into a malloc'd buffer (*out, owned
 * by the caller, with one extra NUL byte after the data) and check its CRC-32.
 * MD_ETOOBIG if larger than cap, MD_ECORRUPT on a CRC mismatch, MD_EIO,
 * MD_ENOMEM.
 */
int zip_read(int fd, const struct zip_entry *ze, uint64_t cap, uint8_t **out);

/*
 * Walk the central directory's names only, with none of zip_open's checks
 * on the entries (methods, flags, local headers): fn(name, len, arg) for
 * each until it returns non-zero. Returns 1 if fn did, 0 if none did, or
 * MD_ECORRUPT / MD_EREFUSED / MD_ETOOBIG / MD_EIO / MD_ENOMEM when the end
 * records or the directory cannot be read (the caps of zip_open apply).
 */
int zip_scan_names(int fd, uint64_t size, int (*fn)(const uint8_t *name, size_t len, void *arg),
		   void *arg);

/* CRC-32 (zip/zlib polynomial) of n bytes, continuing from crc (0 to start). */
uint32_t zip_crc32(uint32_t crc, const void *buf, size_t n);

#endif
