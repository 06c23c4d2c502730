/* registry/tindex.c — see tindex.h. */
#include "registry/tindex.h"
#include "common/err.h"
#include "common/util.h"
#include "registry/catalog.h"

#include <fcntl.h>
#include <unistd.h>

#include <string.h>

#define VAL_SIZE 48   /* root (32) + offset (8) + length (8) */

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Decode v; 0 when it names a pack with a live blob record. */
static int live(struct store *st, MDB_txn *txn, const MDB_val *v, struct tindex_hit *hit)
{
	struct store_blobrec rec;
	if (v->mv_size != VAL_SIZE)
		return MD_ENOENT;
	const uint8_t *b = v->mv_data;
	util_hex(b, 32, hit->pack);
	hit->offset = rd64(b + 32);
	hit->length = rd64(b + 40);
	if (store_blob_get(st, txn, hit->pack, &rec))
		return MD_ENOENT;
	hit->pack_size = rec.size;
	return 0;
}

int tindex_get(struct store *st, MDB_txn *txn, const uint8_t digest[32], struct tindex_hit *hit)
{
	MDB_val k = { 32, (void *)digest }, v;
	int rc = mdb_get(txn, st->tensors, &k, &v);
	if (rc == MDB_NOTFOUND)
		return MD_ENOENT;
	if (rc)
		return store_mdb_err(rc, "tensor index");
	return live(st, txn, &v, hit);
}

int tindex_put(struct store *st, MDB_txn *txn, const uint8_t digest[32], const char *hex,
	       uint64_t offset, uint64_t length)
{
	uint8_t val[VAL_SIZE];
	struct tindex_hit old;
	if (util_unhex(hex, val, 32))
		return md_fail(MD_EINVAL, "%s: not a pack name", hex);
	MDB_val k = { 32, (void *)digest }, v;
	int rc = mdb_get(txn, st->tensors, &k, &v);
	if (rc == 0 && live(st, txn, &v, &old) == 0)
		return 0;
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "tensor index");
	le64(val + 32, offset);
	le64(val + 40, length);
	v = (MDB_val){ VAL_SIZE, val };
	if ((rc = mdb_put(txn, st->tensors, &k, &v, 0)))
		return store_mdb_err(rc, "tensor index");
	return 0;
}

int tindex_put_pack(struct store *st, MDB_txn *txn, const char *hex, const struct pack *p)
{
	for (size_t i = 0; i < pack_count(p); i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		int rc;
		if (t->ref || t->alias != -1 || t->length < TINDEX_MIN_BYTES)
			continue;
		if ((rc = tindex_put(st, txn, t->digest, hex, t->offset, t->length)))
			return rc;
	}
	return 0;
}

struct fill {
	struct store *st;
	MDB_txn *txn;
};

static int fill_rev(const char *name, const char *rev, json_t *m, void *arg)
{
	struct fill *f = arg;
	size_t i;
	json_t *e;
	(void)name;
	(void)rev;
	json_array_foreach(json_object_get(m, "files"), i, e) {
		const char *hex = json_string_value(json_object_get(e, "pack"));
		char bp[4096];
		struct pack *p;
		if (!hex || !util_is_hex(hex, 64))
			continue;
		store_blob_path(f->st, hex, bp, sizeof bp);
		int fd = open(bp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		int rc = pack_open(fd, PACK_SKIP_META, &p);
		close(fd);
		if (rc)
			continue;
		rc = tindex_put_pack(f->st, f->txn, hex, p);
		pack_close(p);
		if (rc)
			return rc;
	}
	return 0;
}

int tindex_ensure(struct store *st)
{
	MDB_txn *txn;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	uint32_t ver = 0, want = 1;
	MDB_val k = { 13, "tensors_index" }, v;
	if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == sizeof ver)
		memcpy(&ver, v.mv_data, sizeof ver);
	if (ver == want) {
		mdb_txn_abort(txn);
		return 0;
	}
	struct fill f = { st, txn };
	if ((rc = catalog_foreach_rev(st, txn, NULL, fill_rev, &f))) {
		mdb_txn_abort(txn);
		return rc;
	}
	v = (MDB_val){ sizeof want, &want };
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "tensor index");
	}
	return store_commit(txn);
}

int tindex_prune(struct store *st, uint64_t *removed)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t n = 0;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->tensors, &c))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "tensor index");
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct tindex_hit hit;
		if (live(st, txn, &v, &hit) == 0)
			continue;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		n++;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "tensor index");
	}
	if (removed)
		*removed = n;
	return store_commit(txn);
}
