/* registry/maint.c — see maint.h. */
#include "registry/maint.h"
#include "registry/tindex.h"
#include "registry/catalog.h"
#include "registry/reader.h"
#include "converters/pack.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int collect_rev(const char *name, const char *rev, json_t *m, void *arg)
{
	(void)name;
	(void)m;
	json_array_append_new(arg, json_string(rev));
	return 0;
}

static int rm_once(struct store *st, const char *name, const char *want, json_t **result)
{
	MDB_txn *txn;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	json_t *revs = json_array(), *freed = json_array();
	if (want) {
		char rev[CATALOG_REV_LEN + 1];
		if (!(rc = catalog_resolve(st, txn, name, want, rev)))
			json_array_append_new(revs, json_string(rev));
	} else {
		rc = catalog_foreach_rev(st, txn, name, collect_rev, revs);
		if (!rc && json_array_size(revs) == 0)
			rc = md_fail(MD_ENOENT, "%s: no such model", name);
	}
	size_t i;
	json_t *r;
	json_array_foreach(revs, i, r) {
		if (rc)
			break;
		rc = catalog_del_rev(st, txn, name, json_string_value(r), freed);
	}
	if (rc) {
		mdb_txn_abort(txn);
		json_decref(revs);
		json_decref(freed);
		return rc;
	}
	/* sizes of what we free, for the report, before the records go */
	uint64_t bytes = 0;
	json_array_foreach(freed, i, r) {
		char p[4096];
		struct stat sb;
		store_blob_path(st, json_string_value(r), p, sizeof p);
		if (stat(p, &sb) == 0)
			bytes += (uint64_t)sb.st_size;
	}
	if ((rc = store_commit(txn))) {
		json_decref(revs);
		json_decref(freed);
		return rc;
	}
	store_blobs_reap(st, freed);
	*result = json_pack("{s:s,s:o,s:I,s:I}", "name", name, "removed", revs,
			    "blobs_freed", (json_int_t)json_array_size(freed),
			    "bytes_freed", (json_int_t)bytes);
	json_decref(freed);
	return 0;
}

int maint_rm(struct store *st, const char *name, const char *want, json_t **result)
{
	int rc = rm_once(st, name, want, result);
	if (rc == MD_ENOSPC && store_reserve_release(st))
		rc = rm_once(st, name, want, result); /* the commit failed: nothing changed */
	if (!rc)
		store_reserve_fill(st); /* best effort: the rm freed its blobs */
	return rc;
}

/* Staging directories whose .lock nobody holds are dead. */
static int staging_dead(const char *dir) /* dir < 4400 bytes */
{
	char p[4600];
	snprintf(p, sizeof p, "%s/.lock", dir);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1; /* never got its lock file: died at birth */
	int dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return dead;
}

/* A pull directory is in use while its transfer lock (xfer) is held. */
static int staging_dead_pull(const char *dir)
{
	char p[4600];
	snprintf(p, sizeof p, "%s/.partial/lock", dir);
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 1;
	int dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return dead;
}

static int scan_staging(struct store *st, const struct maint_gc_opts *o, int remove,
			uint64_t *count, uint64_t *bytes)
{
	char tdir[4096];
	snprintf(tdir, sizeof tdir, "%s/tmp", st->root);
	DIR *d = opendir(tdir);
	if (!d)
		return md_fail(MD_EIO, "%s: %s", tdir, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", tdir, e->d_name);
		struct stat sb;
		if (lstat(p, &sb) < 0)
			continue;
		int dead;
		if (!strncmp(e->d_name, "pull-", 5) && S_ISDIR(sb.st_mode))
			/* a pull in progress is not garbage, nor an interrupted
			 * one (resume state, kept for a week) unless asked */
			dead = !(o && o->in_use && o->in_use(o->arg, e->d_name)) &&
			       staging_dead_pull(p) &&
			       ((o && o->partial) || time(NULL) - sb.st_mtime >= MAINT_PULL_KEEP_S);
		else
			dead = S_ISDIR(sb.st_mode) ? staging_dead(p) : 1;
		if (dead) {
			(*count)++;
			if (bytes)
				*bytes += S_ISDIR(sb.st_mode) ? util_tree_bytes(p)
				       : sb.st_nlink == 1 ? (uint64_t)sb.st_blocks * 512 : 0;
			if (remove)
				S_ISDIR(sb.st_mode) ? util_rmtree(p) : unlink(p);
		}
	}
	closedir(d);
	return 0;
}

/* Walk blobs/sha256/xx/<hex>; for each file without a record call back. */
static int scan_orphans(struct store *st, MDB_txn *txn, int remove, uint64_t *count,
			uint64_t *bytes)
{
	char top[4096];
	snprintf(top, sizeof top, "%s/blobs/sha256", st->root);
	DIR *d = opendir(top);
	if (!d)
		return md_fail(MD_EIO, "%s: %s", top, strerror(errno));
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4400];
		snprintf(sub, sizeof sub, "%s/%s", top, e->d_name);
		DIR *d2 = opendir(sub);
		if (!d2)
			continue;
		struct dirent *f;
		while ((f = readdir(d2))) {
			if (f->d_name[0] == '.')
				continue;
			struct store_blobrec rec;
			char p[4700];
			snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
			if (util_is_hex(f->d_name, 64) &&
			    store_blob_get(st, txn, f->d_name, &rec) != MD_ENOENT)
				continue;
			struct stat sb;
			if (lstat(p, &sb) == 0)
				*bytes += (uint64_t)sb.st_size;
			(*count)++;
			if (remove)
				unlink(p);
		}
		closedir(d2);
		if (remove)
			rmdir(sub); /* only succeeds when empty */
	}
	closedir(d);
	return 0;
}

int maint_clean_staging(struct store *st, uint64_t *count, uint64_t *bytes)
{
	*count = *bytes = 0;
	return scan_staging(st, NULL, 1, count, bytes);
}

int maint_gc(struct store *st, const struct maint_gc_opts *o, json_t **result)
{
	MDB_txn *txn;
	uint64_t n = 0, bytes = 0, staged = 0, sbytes = 0;
	/* A write txn: no import can place blobs while we decide what is garbage. */
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	rc = scan_orphans(st, txn, 1, &n, &bytes);
	mdb_txn_abort(txn);
	if (rc)
		return rc;
	if ((rc = scan_staging(st, o, 1, &staged, &sbytes)))
		return rc;
	uint64_t pruned = 0;   /* tensor index entries of packs that are gone */
	if ((rc = tindex_prune(st, &pruned)))
		return rc;
	store_reserve_fill(st); /* best effort: rm's room, if it was used or never made */
	*result = json_pack("{s:I,s:I,s:I,s:I,s:I}", "blobs_removed", (json_int_t)n,
			    "bytes_freed", (json_int_t)bytes, "staging_removed", (json_int_t)staged,
			    "staging_bytes_freed", (json_int_t)sbytes, "tensor_index_pruned",
			    (json_int_t)pruned);
	return 0;
}

struct vctx {
	struct store *st;
	struct ingest_ctl *ctl;
	json_t *hashed;   /* hex -> true (good) or error string */
	json_t *refs;     /* hex -> count seen in manifests */
	json_t *errors;
	uint64_t files, bytes, revisions;
	uint8_t *buf;
	int canceled;
};

/* Open a blob for a sequential read and check its size: the descriptor, or
 * -1 with *err a new error string. */
static int open_blob(struct vctx *v, const char *hex, uint64_t size, json_t **err)
{
	char p[4096];
	store_blob_path(v->st, hex, p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*err = json_sprintf("blob %s: %s", hex, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size != size) {
		close(fd);
		*err = json_sprintf("blob %s: size %lld, expected %llu", hex,
				    (long long)sb.st_size, (unsigned long long)size);
		return -1;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return fd;
}

/* Hash a blob file; returns NULL when good or a new error string. */
static json_t *check_blob(struct vctx *v, const char *hex, uint64_t size)
{
	json_t *err = NULL;
	int fd = open_blob(v, hex, size, &err);
	if (fd < 0)
		return err;
	struct sha256 h;
	if (sha256_init(&h)) {
		close(fd);
		return json_string("out of memory");
	}
	for (;;) {
		if (v->ctl && atomic_load(&v->ctl->cancel)) {
			v->canceled = 1;
			break;
		}
		ssize_t n = read(fd, v->buf, 4u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sha256_free(&h);
			close(fd);
			return json_sprintf("blob %s: read: %s", hex, strerror(errno));
		}
		if (n == 0)
			break;
		sha256_update(&h, v->buf, (size_t)n);
		v->bytes += (uint64_t)n;
		if (v->ctl)
			atomic_fetch_add(&v->ctl->done, (uint64_t)n);
	}
	close(fd);
	uint8_t d[32];
	char got[65];
	sha256_final(&h, d);
	util_hex(d, 32, got);
	if (!v->canceled && strcmp(got, hex))
		return json_sprintf("blob %s: content hashes to %s", hex, got);
	return NULL;
}

/* A pack blob is named by its root digest (converters/pack.h): check every
 * tensor digest, the padding and the root against the name. A pack named by
 * its file's sha256 (stores written before packs were named by root) passes
 * by that hash instead. NULL when good, else a new error string. */
static json_t *check_pack(struct vctx *v, const char *hex, uint64_t size)
{
	json_t *err = NULL;
	int fd = open_blob(v, hex, size, &err);
	if (fd < 0)
		return err;
	struct pack *pk = NULL;
	int rc = pack_open(fd, PACK_VERIFY_DATA, &pk);
	close(fd);
	char root[65];
	if (!rc)
		util_hex(pack_root(pk), 32, root);
	pack_close(pk);
	v->bytes += size;
	if (v->ctl)
		atomic_fetch_add(&v->ctl->done, size);
	if (!rc && !strcmp(root, hex))
		return NULL;
	json_t *legacy = check_blob(v, hex, size);
	if (!legacy)
		return NULL;
	json_decref(legacy);
	if (rc)
		return json_sprintf("pack %s: %s", hex, md_errmsg(rc));
	return json_sprintf("pack %s: root digest is %s", hex, root);
}

/* A pack that refers to others: the manifest lists the same packs in the
 * same order (readers rely on it), and each holds the tensors the pack says
 * it does (their bytes are checked with that pack's own data). NULL when
 * good, else a new error string. */
static json_t *check_refs(struct vctx *v, json_t *f)
{
	json_t *refs = json_object_get(f, "refs");
	const char *hex = json_string_value(json_object_get(f, "pack"));
	char p[4096];
	store_blob_path(v->st, hex, p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return json_sprintf("pack %s: %s", hex, strerror(errno));
	struct pack *pk, *q;
	int rc = pack_open(fd, PACK_SKIP_META, &pk);
	close(fd);
	if (rc)
		return json_sprintf("pack %s: %s", hex, md_errmsg(rc));
	json_t *err = NULL;
	if (pack_nrefs(pk) != json_array_size(refs))
		err = json_sprintf("pack %s refers to %zu packs, the manifest lists %zu", hex,
				   pack_nrefs(pk), json_array_size(refs));
	for (size_t k = 1; !err && k <= pack_nrefs(pk); k++) {
		char rh[65];
		util_hex(pack_ref(pk, k), 32, rh);
		const char *mh = json_string_value(json_object_get(json_array_get(refs, k - 1), "pack"));
		if (!mh || strcmp(mh, rh)) {
			err = json_sprintf("pack %s: referenced pack %zu is %s, the manifest says %s",
					   hex, k, rh, mh ? mh : "nothing");
			break;
		}
		store_blob_path(v->st, rh, p, sizeof p);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			err = json_sprintf("pack %s: %s", rh, strerror(errno));
			break;
		}
		rc = pack_open(fd, PACK_SKIP_META, &q);
		close(fd);
		if (!rc) {
			rc = pack_check_ref(pk, k, q);
			pack_close(q);
		}
		if (rc)
			err = json_sprintf("pack %s: %s", hex, md_errmsg(rc));
	}
	pack_close(pk);
	return err;
}

/* Reproduce a converted file from its pack and recipe and compare with the
 * sha256 the manifest holds. NULL when good, else a new error string. */
static json_t *check_original(struct vctx *v, json_t *f)
{
	struct reader r;
	const char *sha = json_string_value(json_object_get(f, "sha256"));
	if (reader_open(v->st, f, &r))
		return json_string(md_errmsg(MD_ECORRUPT));
	struct sha256 h;
	if (sha256_init(&h)) {
		reader_close(&r);
		return json_string("out of memory");
	}
	json_t *err = NULL;
	for (uint64_t off = 0; off < r.size && !v->canceled;) {
		if (v->ctl && atomic_load(&v->ctl->cancel)) {
			v->canceled = 1;
			break;
		}
		ssize_t n = reader_pread(&r, v->buf, 4u << 20, off);
		if (n <= 0) {
			err = json_sprintf("read failed at byte %llu", (unsigned long long)off);
			break;
		}
		sha256_update(&h, v->buf, (size_t)n);
		off += (uint64_t)n;
		v->bytes += (uint64_t)n;
		if (v->ctl)
			atomic_fetch_add(&v->ctl->done, (uint64_t)n);
	}
	uint8_t d[32];
	char got[65];
	sha256_final(&h, d);
	util_hex(d, 32, got);
	reader_close(&r);
	if (!err && !v->canceled && strcmp(got, sha ? sha : ""))
		err = json_sprintf("reproduced original hashes to %s, expected %s", got, sha);
	return err;
}

static int verify_rev(const char *name, const char *rev, json_t *m, void *arg)
{
	struct vctx *v = arg;
	size_t i;
	json_t *f;
	v->revisions++;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *sha = json_string_value(json_object_get(f, "sha256"));
		const char *hx[STORE_ENTRY_MAX_BLOBS];
		uint64_t sz[STORE_ENTRY_MAX_BLOBS];
		size_t n = store_entry_blobs(f, hx, sz, STORE_ENTRY_MAX_BLOBS);
		json_t *err = NULL;
		v->files++;
		for (size_t j = 0; j < n; j++) {
			json_t *cnt = json_object_get(v->refs, hx[j]);
			json_object_set_new(v->refs, hx[j],
					    json_integer(json_integer_value(cnt) + 1));
			/* each blob is hashed once, however many files share it */
			if (!json_object_get(v->hashed, hx[j])) {
				/* the entry's pack and the packs it refers to (listed
				 * after blob/pack/recipe) are packs */
				int is_pack = hx[j] == json_string_value(json_object_get(f, "pack")) ||
					      (j >= 2 && json_object_get(f, "pack"));
				json_t *e = is_pack ? check_pack(v, hx[j], sz[j])
						    : check_blob(v, hx[j], sz[j]);
				json_object_set_new(v->hashed, hx[j], e ? e : json_true());
			}
			json_t *h = json_object_get(v->hashed, hx[j]);
			if (!err && json_is_string(h))
				err = json_copy(h);
		}
		const char *blob = json_string_value(json_object_get(f, "blob"));
		if (!path || !sha)
			err = err ? err : json_string("manifest entry without path or sha256");
		else if (!n)
			err = err ? err : json_string("no stored content for this file");
		else if (blob && strcmp(blob, sha))
			err = err ? err : json_sprintf("blob %s does not match sha256 %s", blob, sha);
		else if (!blob && !err && !v->canceled && json_object_get(f, "refs"))
			err = check_refs(v, f);
		if (!blob && !err && !v->canceled)
			err = check_original(v, f);
		if (err)
			json_array_append_new(v->errors, json_pack("{s:s,s:s,s:s,s:o}", "name", name,
								 "revision", rev, "path",
								 path ? path : "?", "error", err));
		if (v->canceled)
			return MD_ECANCELED;
	}
	return 0;
}

int maint_verify(struct store *st, const char *name, const char *want,
		 struct ingest_ctl *ctl, json_t **result)
{
	MDB_txn *txn;
	int rc = store_txn(st, 0, &txn);
	if (rc)
		return rc;
	struct vctx v = { .st = st, .ctl = ctl, .hashed = json_object(), .refs = json_object(),
			  .errors = json_array(), .buf = malloc(4u << 20) };
	if (!v.buf) {
		rc = MD_ENOMEM;
		goto out;
	}
	if (name && want) {
		char rev[CATALOG_REV_LEN + 1];
		json_t *m;
		if (!(rc = catalog_resolve(st, txn, name, want, rev)) &&
		    !(rc = catalog_get_rev(st, txn, name, rev, &m))) {
			rc = verify_rev(name, rev, m, &v);
			json_decref(m);
		}
	} else {
		rc = catalog_foreach_rev(st, txn, name, verify_rev, &v);
		if (!rc && name && v.revisions == 0)
			rc = md_fail(MD_ENOENT, "%s: no such model", name);
	}
	if (rc == MD_ECANCELED)
		md_fail(rc, "verify canceled");
	if (rc)
		goto out;
	uint64_t orphans = 0, obytes = 0, stale = 0;
	if (!name) {
		/* whole-store checks: reference counts and garbage */
		MDB_cursor *c;
		MDB_val k, val;
		if (mdb_cursor_open(txn, st->blobs, &c) == 0) {
			int r = mdb_cursor_get(c, &k, &val, MDB_FIRST);
			while (r == 0) {
				char hex[65];
				struct store_blobrec rec;
				if (k.mv_size == 32 && val.mv_size == sizeof rec) {
					util_hex(k.mv_data, 32, hex);
					memcpy(&rec, val.mv_data, sizeof rec);
					json_int_t seen = json_integer_value(json_object_get(v.refs, hex));
					if ((json_int_t)rec.refs != seen)
						json_array_append_new(v.errors, json_pack(
							"{s:s,s:s,s:s,s:o}", "name", "", "revision", "",
							"path", hex, "error", json_sprintf(
								"blob %s: reference count %llu, %lld references found",
								hex, (unsigned long long)rec.refs, (long long)seen)));
					json_object_del(v.refs, hex);
				}
				r = mdb_cursor_get(c, &k, &val, MDB_NEXT);
			}
			mdb_cursor_close(c);
		}
		const char *hex;
		json_t *cnt;
		json_object_foreach(v.refs, hex, cnt)
			json_array_append_new(v.errors, json_pack("{s:s,s:s,s:s,s:o}", "name", "",
				"revision", "", "path", hex, "error",
				json_sprintf("blob %s: referenced but has no record", hex)));
		scan_orphans(st, txn, 0, &orphans, &obytes);
		scan_staging(st, NULL, 0, &stale, NULL);
	}
	*result = json_pack("{s:I,s:I,s:I,s:O,s:I,s:I,s:b}", "revisions", (json_int_t)v.revisions,
			    "files", (json_int_t)v.files, "bytes", (json_int_t)v.bytes,
			    "errors", v.errors, "orphans", (json_int_t)orphans,
			    "stale_staging", (json_int_t)stale, "ok", json_array_size(v.errors) == 0);
out:
	mdb_txn_abort(txn);
	json_decref(v.hashed);
	json_decref(v.refs);
	json_decref(v.errors);
	free(v.buf);
	return rc;
}
