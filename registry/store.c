/* registry/store.c — store layout, catalog environment, blob records. */
#include "registry/store.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int store_mdb_err(int rc, const char *what)
{
	if (rc == MDB_MAP_FULL)
		return md_fail(MD_ENOSPC, "%s: catalog full: raise catalog_max in modeld.conf "
				"and restart modeld", what);
	if (rc == ENOSPC)
		return md_fail(MD_ENOSPC, "%s: no space left on device", what);
	return md_fail(MD_EDB, "%s: %s", what, mdb_strerror(rc));
}

static int open_dbs(struct store *st)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc)
		return store_mdb_err(rc, "catalog");
	struct { const char *name; MDB_dbi *dbi; unsigned flags; } dbs[] = {
		{ "models", &st->models }, { "revisions", &st->revs }, { "refs", &st->refs },
		{ "summaries", &st->sums }, { "origins", &st->origins },
		{ "blobs", &st->blobs }, { "jobs", &st->jobs }, { "meta", &st->meta },
		{ "index", &st->idx, MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP },
		{ "index_rows", &st->inums }, { "index_ids", &st->irows, MDB_INTEGERKEY },
		{ "index_ranges", &st->iranges }, { "tensors", &st->tensors },
	};
	for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbs[i].dbi);
		if (rc) {
			mdb_txn_abort(txn);
			return store_mdb_err(rc, dbs[i].name);
		}
	}
	MDB_val k = { 6, "schema" }, v;
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		uint32_t s = STORE_SCHEMA;
		v.mv_size = sizeof s;
		v.mv_data = &s;
		rc = mdb_put(txn, st->meta, &k, &v, 0);
	} else if (rc == 0) {
		uint32_t s;
		if (v.mv_size != sizeof s) {
			mdb_txn_abort(txn);
			return md_fail(MD_ECORRUPT, "catalog: bad schema record");
		}
		memcpy(&s, v.mv_data, sizeof s);
		if (s > STORE_SCHEMA) {
			mdb_txn_abort(txn);
			return md_fail(MD_EUNSUP, "catalog schema %u is newer than this modeld (%u)",
				       s, STORE_SCHEMA);
		}
	}
	if (rc) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "catalog");
	}
	return store_commit(txn);
}

int store_creatable(const char *root)
{
	char *dir = util_first_missing(root);
	if (!dir)
		return md_fail(errno == ENOMEM ? MD_ENOMEM : MD_EIO, "store %s: %s", root,
			       strerror(errno));
	util_parent(dir);   /* the nearest folder that exists */
	int rc = 0;
	if (access(dir, W_OK | X_OK) < 0)
		rc = md_fail(errno == EACCES || errno == EROFS ? MD_EPERM : MD_EIO,
			     "store %s: cannot be created: %s: %s", root, dir, strerror(errno));
	free(dir);
	return rc;
}

int store_open(const char *root, int flags, uint64_t mapsize, struct store **out)
{
	char p[4096];
	int rc;
	struct store *st = calloc(1, sizeof *st);
	if (!st || !(st->root = strdup(root))) {
		free(st);
		return MD_ENOMEM;
	}
	st->lock_fd = -1;
	const char *sub[] = { "", "/blobs/sha256", "/tmp", "/catalog" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", root, sub[i]);
		if ((rc = util_mkdir_p(p, 0755)))
			goto fail;
	}
	if (!(flags & STORE_NOLOCK)) {
		snprintf(p, sizeof p, "%s/lock", root);
		st->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (st->lock_fd < 0) {
			rc = md_fail(md_from_errno(errno), "%s: %s", p, strerror(errno));
			goto fail;
		}
		if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			rc = md_fail(MD_EBUSY, "store %s is in use by another modeld", root);
			goto fail;
		}
	}
	snprintf(p, sizeof p, "%s/catalog", root);
	if ((rc = mdb_env_create(&st->env)) ||
	    (rc = mdb_env_set_maxdbs(st->env, 16)) ||
	    (rc = mdb_env_set_mapsize(st->env, mapsize ? mapsize : STORE_MAPSIZE)) ||
	    (rc = mdb_env_set_maxreaders(st->env, 254)) ||
	    (rc = mdb_env_open(st->env, p, MDB_NOTLS, 0644))) {
		rc = store_mdb_err(rc, p);
		goto fail;
	}
	/* readers left by a killed process would pin old pages forever */
	int dead = 0;
	mdb_reader_check(st->env, &dead);
	if ((rc = open_dbs(st)))
		goto fail;
	if (!(flags & STORE_NOLOCK))
		store_reserve_fill(st); /* best effort: the disk may be full already */
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->root);
	free(st);
}

void store_release_memory(struct store *st)
{
	/* LMDB does not tell where it mapped the file: find it in our maps. The
	 * mapping is read-only and shared, so dropping its pages only costs a
	 * page-cache fault on the next read. */
	char want[4200], line[4600];
	snprintf(want, sizeof want, "%s/catalog/data.mdb", st->root);
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		size_t n = strlen(line), w = strlen(want);
		if (n < w || strcmp(line + n - w, want) || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
	}
	fclose(f);
}

void store_blob_path(const struct store *st, const char *hex, char *out, size_t n)
{
	snprintf(out, n, "%s/blobs/sha256/%.2s/%s", st->root, hex, hex);
}

int store_txn(struct store *st, int write, MDB_txn **txn)
{
	int rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, txn);
	return rc ? store_mdb_err(rc, "catalog transaction") : 0;
}

/* LMDB reports a short write of its pages as EIO ("TODO: Use which error
 * code?"): on a filesystem with no room left that is a full disk. */
static int full_fs(MDB_env *env)
{
	int fd;
	struct statvfs sv;
	return mdb_env_get_fd(env, &fd) == 0 && fstatvfs(fd, &sv) == 0 &&
	       (uint64_t)sv.f_bavail * sv.f_frsize < STORE_FULL_BELOW;
}

int store_commit(MDB_txn *txn)
{
	MDB_env *env = mdb_txn_env(txn);
	int rc = mdb_txn_commit(txn);
	if (rc == EIO && full_fs(env))
		rc = ENOSPC;
	return rc ? store_mdb_err(rc, "catalog commit") : 0;
}

static void reserve_path(const struct store *st, char *out, size_t n)
{
	snprintf(out, n, "%s/reserve", st->root);
}

int store_reserve_fill(struct store *st)
{
	char p[4096];
	struct stat sb;
	reserve_path(st, p, sizeof p);
	if (stat(p, &sb) == 0 && sb.st_size == STORE_RESERVE &&
	    (uint64_t)sb.st_blocks * 512 >= (uint64_t)STORE_RESERVE)
		return 0;
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return md_fail(md_from_errno(errno), "%s: %s", p, strerror(errno));
	int e = posix_fallocate(fd, 0, STORE_RESERVE);
	close(fd);
	if (e) {
		unlink(p); /* a part of it would only hide the full disk */
		return md_fail(e == ENOSPC ? MD_ENOSPC : MD_EIO, "%s: %s", p, strerror(e));
	}
	return 0;
}

int store_reserve_release(struct store *st)
{
	char p[4096];
	reserve_path(st, p, sizeof p);
	return unlink(p) == 0;
}

static int blob_key(const char *hex, uint8_t key[32])
{
	if (!util_is_hex(hex, 64) || util_unhex(hex, key, 32))
		return md_fail(MD_EINVAL, "%s: not a sha256", hex);
	return 0;
}

int store_blob_get(struct store *st, MDB_txn *txn, const char *hex, struct store_blobrec *rec)
{
	uint8_t kb[32];
	int rc = blob_key(hex, kb);
	if (rc)
		return rc;
	MDB_val k = { 32, kb }, v;
	rc = mdb_get(txn, st->blobs, &k, &v);
	if (rc == MDB_NOTFOUND)
		return MD_ENOENT;
	if (rc)
		return store_mdb_err(rc, "blob record");
	if (v.mv_size != sizeof *rec)
		return md_fail(MD_ECORRUPT, "blob record %s: bad size", hex);
	memcpy(rec, v.mv_data, sizeof *rec);
	return 0;
}

static int blob_put(struct store *st, MDB_txn *txn, const char *hex, const struct store_blobrec *rec)
{
	uint8_t kb[32];
	int rc = blob_key(hex, kb);
	if (rc)
		return rc;
	MDB_val k = { 32, kb }, v = { sizeof *rec, (void *)rec };
	rc = mdb_put(txn, st->blobs, &k, &v, 0);
	return rc ? store_mdb_err(rc, "blob record") : 0;
}

int store_blob_ref(struct store *st, MDB_txn *txn, const char *hex, uint64_t size)
{
	struct store_blobrec rec;
	int rc = store_blob_get(st, txn, hex, &rec);
	if (rc == MD_ENOENT) {
		memset(&rec, 0, sizeof rec);
		rec.version = STORE_SCHEMA;
		rec.size = size;
	} else if (rc) {
		return rc;
	}
	rec.refs++;
	return blob_put(st, txn, hex, &rec);
}

int store_blob_unref(struct store *st, MDB_txn *txn, const char *hex, int *freed)
{
	struct store_blobrec rec;
	*freed = 0;
	int rc = store_blob_get(st, txn, hex, &rec);
	if (rc == MD_ENOENT)
		return 0; /* already gone: nothing to drop */
	if (rc)
		return rc;
	if (rec.refs <= 1) {
		uint8_t kb[32];
		blob_key(hex, kb);
		MDB_val k = { 32, kb };
		rc = mdb_del(txn, st->blobs, &k, NULL);
		if (rc)
			return store_mdb_err(rc, "blob record");
		*freed = 1;
		return 0;
	}
	rec.refs--;
	return blob_put(st, txn, hex, &rec);
}

int store_blobs_reap(struct store *st, json_t *hexes)
{
	MDB_txn *txn;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	size_t i;
	json_t *h;
	json_array_foreach(hexes, i, h) {
		struct store_blobrec rec;
		const char *hex = json_string_value(h);
		if (!hex || store_blob_get(st, txn, hex, &rec) != MD_ENOENT)
			continue;
		char p[4096];
		store_blob_path(st, hex, p, sizeof p);
		unlink(p);
	}
	mdb_txn_abort(txn); /* nothing written: the txn only held the writer lock */
	return 0;
}

size_t store_entry_blobs(json_t *entry, const char **out, uint64_t *sizes, size_t max)
{
	static const char *const keys[] = { "blob", "pack", "recipe" };
	static const char *const size_keys[] = { "size", "pack_size", "recipe_size" };
	size_t n = 0;
	for (size_t i = 0; i < 3 && n < max; i++) {
		const char *h = json_string_value(json_object_get(entry, keys[i]));
		if (!h)
			continue;
		if (sizes)
			sizes[n] = (uint64_t)json_integer_value(json_object_get(entry, size_keys[i]));
		out[n++] = h;
	}
	/* packs holding tensors the entry's pack refers to */
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(entry, "refs"), i, r) {
		const char *h = json_string_value(json_object_get(r, "pack"));
		if (!h || n >= max)
			break;
		if (sizes)
			sizes[n] = (uint64_t)json_integer_value(json_object_get(r, "size"));
		out[n++] = h;
	}
	return n;
}

void store_catalog_usage(struct store *st, uint64_t *used, uint64_t *max)
{
	MDB_envinfo ei;
	MDB_stat ms;
	*used = *max = 0;
	if (mdb_env_info(st->env, &ei) || mdb_env_stat(st->env, &ms))
		return;
	*used = (uint64_t)(ei.me_last_pgno + 1) * ms.ms_psize;
	*max = ei.me_mapsize;
}
