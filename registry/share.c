/* registry/share.c — see share.h. */
#include "registry/share.h"
#include "registry/tindex.h"
#include "converters/pack.h"
#include "converters/recipe.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct share_map {
	pthread_mutex_t mu;
	json_t *t;   /* digest hex -> [pack hex, offset, length, pack size, staged file] */
};

struct share_map *share_map_new(void)
{
	struct share_map *m = calloc(1, sizeof *m);
	if (!m || !(m->t = json_object())) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void share_map_free(struct share_map *m)
{
	if (!m)
		return;
	json_decref(m->t);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* Add the tensors pack p (hex, size bytes, staged at path) holds itself. */
static void note(struct share_map *m, const char *hex, uint64_t size, const struct pack *p,
		 const char *path)
{
	for (size_t i = 0; i < pack_count(p); i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		char d[65];
		if (t->ref || t->alias != -1 || t->length < TINDEX_MIN_BYTES)
			continue;
		util_hex(t->digest, 32, d);
		if (!json_object_get(m->t, d))
			json_object_set_new(m->t, d, json_pack("[s,I,I,I,s]", hex,
							       (json_int_t)t->offset,
							       (json_int_t)t->length,
							       (json_int_t)size, path));
	}
}

int share_map_add(struct share_map *m, const char *hex, int pack_fd, const char *path)
{
	struct pack *p;
	struct stat sb;
	if (fstat(pack_fd, &sb) < 0)
		return MD_EIO;
	int rc = pack_open(pack_fd, PACK_SKIP_META, &p);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->mu);
	note(m, hex, (uint64_t)sb.st_size, p, path);
	pthread_mutex_unlock(&m->mu);
	pack_close(p);
	return 0;
}

int share_map_commit(struct share_map *m, struct store *st, MDB_txn *txn)
{
	const char *d;
	json_t *e;
	int rc = 0;
	pthread_mutex_lock(&m->mu);
	json_object_foreach(m->t, d, e) {
		uint8_t digest[32];
		if (util_unhex(d, digest, 32))
			continue;
		if ((rc = tindex_put(st, txn, digest, json_string_value(json_array_get(e, 0)),
				     (uint64_t)json_integer_value(json_array_get(e, 1)),
				     (uint64_t)json_integer_value(json_array_get(e, 2)))))
			break;
	}
	pthread_mutex_unlock(&m->mu);
	return rc;
}

#define SHARE_CMP_BUF (2u << 20)   /* two halves: stored pack, new pack */

static uint64_t align_up(uint64_t x)
{
	return (x + PACK_ALIGN - 1) & ~(uint64_t)(PACK_ALIGN - 1);
}

struct plan {
	size_t nrefs;
	uint8_t refs[PACK_MAX_REFS][32];
	uint64_t ref_size[PACK_MAX_REFS];
	uint32_t *ref;
	uint64_t *off;
	uint64_t saved, kept;
};

/* Where tensor t's bytes are held already: the map first, then the index
 * (a pack of an earlier import); path gets the file holding them. */
static int find(struct store *st, MDB_txn *txn, struct share_map *m,
		const struct pack_tensor *t, struct tindex_hit *hit, char *path, size_t pathlen)
{
	char d[65];
	util_hex(t->digest, 32, d);
	json_t *e = json_object_get(m->t, d);
	if (e) {
		snprintf(path, pathlen, "%s", json_string_value(json_array_get(e, 4)));
		snprintf(hit->pack, sizeof hit->pack, "%s", json_string_value(json_array_get(e, 0)));
		hit->offset = (uint64_t)json_integer_value(json_array_get(e, 1));
		hit->length = (uint64_t)json_integer_value(json_array_get(e, 2));
		hit->pack_size = (uint64_t)json_integer_value(json_array_get(e, 3));
		return 0;
	}
	int rc = txn ? tindex_get(st, txn, t->digest, hit) : MD_ENOENT;
	if (!rc)
		store_blob_path(st, hit->pack, path, pathlen);
	return rc;
}

/*
 * 1 when the pack at path (hit) holds the same bytes as tensor t of the
 * pack in pack_fd. Digests only find candidates: a pack's digests come from
 * the confined converter of the import that wrote it, and one that lied (a
 * parser taken over by a hostile file) must not get its bytes into other
 * models; nor may a crafted collision of the (non-cryptographic) tensor
 * digest, converters/tdigest.h. So a tensor is shared only after its bytes
 * compare equal. Cheaper than hashing, and only done for the bytes that are
 * then not written again.
 */
static int same_bytes(const char *path, const struct tindex_hit *hit, int pack_fd,
		      const struct pack_tensor *t, uint8_t *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	const size_t half = SHARE_CMP_BUF / 2;
	int same = 1;
	for (uint64_t done = 0; same && done < t->length;) {
		size_t n = t->length - done < half ? (size_t)(t->length - done) : half;
		same = util_pread_full(fd, buf, n, (off_t)(hit->offset + done)) == (ssize_t)n &&
		       util_pread_full(pack_fd, buf + half, n, (off_t)(t->offset + done)) ==
			       (ssize_t)n &&
		       !memcmp(buf, buf + half, n);
		done += n;
	}
	close(fd);
	if (!same)
		log_warn("pack %s: the bytes at offset %llu do not match a tensor with the same "
			 "digest; not shared (see modelctl verify)",
			 hit->pack, (unsigned long long)hit->offset);
	return same;
}

static int make_plan(struct store *st, struct share_map *m, const struct pack *p,
		     int pack_fd, struct plan *pl)
{
	MDB_txn *txn = NULL;
	size_t n = pack_count(p);
	memset(pl, 0, sizeof *pl);
	if (!(pl->ref = calloc(n ? n : 1, sizeof *pl->ref)) ||
	    !(pl->off = calloc(n ? n : 1, sizeof *pl->off)))
		return MD_ENOMEM;
	uint8_t *buf = NULL;
	int rc = 0;
	if (store_txn(st, 0, &txn))
		txn = NULL;   /* no index: the map alone */
	for (size_t i = 0; i < n; i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		struct tindex_hit hit;
		uint8_t root[32];
		char path[4200];
		if (t->ref || t->alias != -1)
			continue;
		pl->kept += align_up(t->length);
		if (t->length < TINDEX_MIN_BYTES || find(st, txn, m, t, &hit, path, sizeof path) ||
		    hit.length != t->length || util_unhex(hit.pack, root, 32) ||
		    !memcmp(root, pack_root(p), 32))
			continue;
		if (!buf && !(buf = malloc(SHARE_CMP_BUF))) {
			rc = MD_ENOMEM;
			break;
		}
		if (!same_bytes(path, &hit, pack_fd, t, buf))
			continue;
		size_t k = 0;
		while (k < pl->nrefs && memcmp(pl->refs[k], root, 32))
			k++;
		if (k == PACK_MAX_REFS)
			continue;
		if (k == pl->nrefs) {
			memcpy(pl->refs[k], root, 32);
			pl->ref_size[k] = hit.pack_size;
			pl->nrefs++;
		}
		pl->ref[i] = (uint32_t)k + 1;
		pl->off[i] = hit.offset;
		pl->saved += align_up(t->length);
		pl->kept -= align_up(t->length);
	}
	if (txn)
		mdb_txn_abort(txn);
	free(buf);
	return rc;
}

/* Write the shared pack (its descriptor left in *pfd_out) and recipe. */
static int rewrite(const struct plan *pl, const struct pack *p, int pack_fd, int recipe_fd,
		   share_open_fn open_out, void *arg, struct share_out *out, int *pfd_out,
		   char *ppath, size_t ppathlen)
{
	struct pack_share sh = { pl->nrefs, (const uint8_t (*)[32])pl->refs, pl->ref, pl->off };
	struct pack_move *mv = NULL;
	struct pack_written w;
	struct recipe *r = NULL;
	size_t nmv = 0;
	uint64_t psize = 0;
	struct stat sb;
	int pfd = open_out(arg, 'p', ppath, ppathlen);
	if (pfd < 0)
		return pfd;
	int rfd = -1, rc = fstat(pack_fd, &sb) < 0 ? MD_EIO : 0;
	if (!rc) {
		psize = (uint64_t)sb.st_size;
		rc = pack_share_write(pack_fd, p, &sh, pfd, &mv, &nmv, &w);
	}
	if (!rc && (rc = recipe_open(recipe_fd, &psize, 1, &r)) == 0 &&
	    (rfd = open_out(arg, 'r', NULL, 0)) < 0)
		rc = rfd;
	if (!rc)
		rc = recipe_rebase(r, mv, nmv, w.root, rfd);
	uint8_t rd[32];
	if (!rc && fstat(rfd, &sb) < 0)
		rc = md_fail(MD_EIO, "recipe: %s", strerror(errno));
	if (!rc && (rc = sha256_fd(rfd, (uint64_t)sb.st_size, rd)) == 0) {
		util_hex(rd, 32, out->recipe);
		out->recipe_size = (uint64_t)sb.st_size;
	}
	if (!rc) {
		util_hex(w.root, 32, out->pack);
		out->pack_size = w.size;
		out->saved = pl->saved;
		out->refs = json_array();
		for (size_t k = 0; k < pl->nrefs; k++) {
			char hex[65];
			util_hex(pl->refs[k], 32, hex);
			json_array_append_new(out->refs, json_pack("{s:s,s:I}", "pack", hex, "size",
								   (json_int_t)pl->ref_size[k]));
		}
	}
	recipe_close(r);
	free(mv);
	*pfd_out = pfd;
	if (rfd >= 0)
		close(rfd);
	return rc;
}

int share_pack(struct store *st, struct share_map *map, int pack_fd, const char *pack_path,
	       int recipe_fd, share_open_fn open_out, void *arg, struct share_out *out)
{
	struct pack *p = NULL, *q = NULL;
	struct plan pl;
	memset(out, 0, sizeof *out);
	memset(&pl, 0, sizeof pl);
	int rc = pack_open(pack_fd, PACK_SKIP_META, &p);
	if (rc)
		return rc;
	struct stat sb;
	uint64_t size = fstat(pack_fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	char hex[65];
	pthread_mutex_lock(&map->mu);
	if ((rc = make_plan(st, map, p, pack_fd, &pl)))
		goto out;
	if (pl.nrefs && (pl.saved >= SHARE_MIN_SAVED || pl.saved >= pl.kept / 8)) {
		int pfd = -1;
		char npath[4200] = "";
		rc = rewrite(&pl, p, pack_fd, recipe_fd, open_out, arg, out, &pfd, npath,
			     sizeof npath);
		/* read the new pack back as strictly as any: what others may
		 * share now are its tensors, where it put them */
		if (!rc && (rc = pack_open(pfd, PACK_SKIP_META, &q)) == 0) {
			util_hex(pack_root(q), 32, hex);
			if (strcmp(hex, out->pack))
				rc = md_fail(MD_EIO, "pack: rewritten pack reads back as %s", hex);
		}
		if (pfd >= 0)
			close(pfd);
		if (rc) {
			json_decref(out->refs);
			out->refs = NULL;
			goto out;
		}
		note(map, out->pack, out->pack_size, q, npath);
		rc = 1;
	} else {
		util_hex(pack_root(p), 32, hex);
		note(map, hex, size, p, pack_path);
	}
out:
	pthread_mutex_unlock(&map->mu);
	free(pl.ref);
	free(pl.off);
	pack_close(p);
	pack_close(q);
	return rc;
}
