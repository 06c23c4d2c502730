/* registry/reader.c — see reader.h. */
#include "registry/reader.h"
#include "converters/pack.h"
#include "converters/recipe.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(READER_MAX_FDS == 2 + PACK_MAX_REFS, "a reader holds every pack a recipe reads");
_Static_assert(STORE_ENTRY_MAX_BLOBS == 3 + PACK_MAX_REFS, "an entry names its blob, pack, recipe and referenced packs");

static int open_blob(struct store *st, const char *hex, const char *path, uint64_t *size)
{
	char p[4096];
	struct stat sb;
	if (!hex || !util_is_hex(hex, 64))
		return md_fail(MD_ECORRUPT, "%s: bad blob reference", path);
	store_blob_path(st, hex, p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return md_fail(MD_ECORRUPT, "%s: blob %.12s missing from the store: %s", path, hex,
			       strerror(errno));
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return md_fail(MD_EIO, "%s: %s", path, strerror(errno));
	}
	*size = (uint64_t)sb.st_size;
	return fd;
}

/* A converted weight file: the recipe's segments over the recipe (literals),
 * the pack and the packs it refers to (the entry's "refs", in the pack's
 * order: fds[2 + k - 1] is its k-th). */
static int open_recipe(struct store *st, json_t *entry, const char *path, uint64_t size,
		       struct reader *r)
{
	json_t *refs = json_object_get(entry, "refs");
	size_t nr = json_array_size(refs);
	uint64_t sizes[1 + PACK_MAX_REFS], rsize;
	struct recipe *rec = NULL;
	int rc = 0;
	if (nr > PACK_MAX_REFS)
		return md_fail(MD_ECORRUPT, "%s: %zu referenced packs", path, nr);
	r->nfds = 0;
	int fd = open_blob(st, json_string_value(json_object_get(entry, "recipe")), path, &rsize);
	if (fd < 0)
		return fd;
	r->fds[r->nfds++] = fd;
	for (size_t k = 0; k <= nr; k++) {
		const char *hex = k ? json_string_value(json_object_get(json_array_get(refs, k - 1),
									 "pack"))
				    : json_string_value(json_object_get(entry, "pack"));
		if ((fd = open_blob(st, hex, path, &sizes[k])) < 0) {
			rc = fd;
			goto fail;
		}
		r->fds[r->nfds++] = fd;
	}
	if ((rc = recipe_open(r->fds[0], sizes, 1 + nr, &rec))) {
		md_fail_prefix(rc, path);
		goto fail;
	}
	size_t n = recipe_nseg(rec);
	if (recipe_orig_size(rec) != size) {
		rc = md_fail(MD_ECORRUPT, "%s: recipe reproduces %llu bytes, expected %llu", path,
			     (unsigned long long)recipe_orig_size(rec), (unsigned long long)size);
		goto fail;
	}
	if (!(r->segs = calloc(n ? n : 1, sizeof *r->segs))) {
		rc = MD_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct recipe_seg *sg = recipe_seg(rec, i);
		r->segs[i] = (struct reader_seg){ sg->kind == RECIPE_PACK ? 1u + sg->ref : 0u, sg->off,
						  sg->len };
	}
	r->nsegs = n;
	r->size = size;
	recipe_close(rec);
	return 0;
fail:
	recipe_close(rec);
	for (size_t i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	r->nfds = 0;
	return rc;
}

int reader_open(struct store *st, json_t *entry, struct reader *r)
{
	memset(r, 0, sizeof *r);
	const char *path = json_string_value(json_object_get(entry, "path"));
	json_int_t size = json_integer_value(json_object_get(entry, "size"));
	const char *blob = json_string_value(json_object_get(entry, "blob"));
	if (!path)
		path = "?";
	if (!blob && json_object_get(entry, "recipe"))
		return open_recipe(st, entry, path, (uint64_t)size, r);
	if (!blob)
		return md_fail(MD_ECORRUPT, "%s: no stored content", path);
	uint64_t bsize;
	int fd = open_blob(st, blob, path, &bsize);
	if (fd < 0)
		return fd;
	if (bsize != (uint64_t)size) {
		close(fd);
		return md_fail(MD_ECORRUPT, "%s: blob has %llu bytes, expected %lld", path,
			       (unsigned long long)bsize, (long long)size);
	}
	r->segs = calloc(1, sizeof *r->segs);
	if (!r->segs) {
		close(fd);
		return MD_ENOMEM;
	}
	r->fds[0] = fd;
	r->nfds = 1;
	r->segs[0] = (struct reader_seg){ 0, 0, bsize };
	r->nsegs = bsize ? 1 : 0;
	r->size = bsize;
	return 0;
}

size_t reader_range(const struct reader *r, uint64_t off, uint64_t len,
		    struct reader_seg *out, size_t max)
{
	size_t n = 0;
	uint64_t pos = 0, end = off + len < off ? UINT64_MAX : off + len;
	for (size_t i = 0; i < r->nsegs && n < max && pos < end; i++) {
		const struct reader_seg *s = &r->segs[i];
		uint64_t a = pos, b = pos + s->len;
		pos = b;
		if (b <= off)
			continue;
		uint64_t from = off > a ? off - a : 0;
		uint64_t to = end < b ? end - a : s->len;
		out[n++] = (struct reader_seg){ s->fd, s->off + from, to - from };
	}
	return n;
}

ssize_t reader_pread(struct reader *r, void *buf, size_t n, uint64_t off)
{
	struct reader_seg segs[64];
	size_t done = 0;
	while (done < n && off + done < r->size) {
		size_t k = reader_range(r, off + done, n - done, segs, 64);
		if (!k)
			break;
		for (size_t i = 0; i < k; i++) {
			ssize_t got = util_pread_full(r->fds[segs[i].fd], (char *)buf + done,
						      (size_t)segs[i].len, (off_t)segs[i].off);
			if (got < 0)
				return md_fail(MD_EIO, "store read: %s", strerror(errno));
			done += (size_t)got;
			if ((uint64_t)got < segs[i].len)
				return (ssize_t)done;
		}
	}
	return (ssize_t)done;
}

void reader_close(struct reader *r)
{
	for (size_t i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	free(r->segs);
	memset(r, 0, sizeof *r);
}

json_t *reader_find(json_t *manifest, const char *path)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(manifest, "files"), i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));
		if (p && !strcmp(p, path))
			return f;
	}
	return NULL;
}

int reader_open_refs(struct store *st, const struct pack *p, const char *path, int *fds)
{
	for (size_t k = 1; k <= pack_nrefs(p); k++) {
		char hex[65];
		uint64_t size;
		util_hex(pack_ref(p, k), 32, hex);
		int fd = open_blob(st, hex, path, &size);
		if (fd < 0) {
			while (--k >= 1)
				close(fds[k - 1]);
			return fd;
		}
		fds[k - 1] = fd;
	}
	return 0;
}
