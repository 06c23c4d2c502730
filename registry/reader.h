/*
 * registry/reader.h — reading the original bytes of a stored file, whatever
 * its storage: a plain blob, or (weight files) a pack plus a recipe. A file
 * is a list of segments, each a byte range of one open descriptor, so callers
 * can pass descriptors on (cat), sendfile them (the mirror) or pread them
 * (bundles, HTTP ranges) without copying through memory they do not need.
 */
#ifndef MD_READER_H
#define MD_READER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "converters/pack.h"
#include "registry/store.h"

#define READER_MAX_FDS (2 + 64)   /* recipe, pack, PACK_MAX_REFS referenced packs */

struct reader_seg {
	unsigned fd;           /* index into reader.fds */
	uint64_t off, len;     /* byte range of that descriptor */
};

struct reader {
	int fds[READER_MAX_FDS];   /* read-only descriptors; owned */
	size_t nfds;
	struct reader_seg *segs;   /* in file order; owned */
	size_t nsegs;
	uint64_t size;             /* the original file's size */
};

/*
 * Open the manifest file entry (an element of a manifest's "files"; borrowed).
 * 0, MD_ECORRUPT (a blob is missing or has the wrong size: detail names the
 * file), MD_EIO, MD_ENOMEM. Close with reader_close.
 */
int reader_open(struct store *st, json_t *entry, struct reader *r);

/* Read up to n bytes at offset off of the original file. Returns the bytes
 * read (short only at the end of the file) or MD_EIO. */
ssize_t reader_pread(struct reader *r, void *buf, size_t n, uint64_t off);

/* The segments covering [off, off+len) of the file, clipped: writes up to
 * max into out and returns the count (for Range requests). */
size_t reader_range(const struct reader *r, uint64_t off, uint64_t len,
		    struct reader_seg *out, size_t max);

void reader_close(struct reader *r);

/* Open the packs pack p refers to (pack_ref 1..pack_nrefs) read-only into
 * fds[0..nrefs-1] (the caller closes them). path names the file in errors.
 * 0, MD_ECORRUPT (one is missing from the store), MD_EIO. */
int reader_open_refs(struct store *st, const struct pack *p, const char *path, int *fds);

/* Find a file entry by path in a manifest; borrowed from the manifest. */
json_t *reader_find(json_t *manifest, const char *path);

#endif
