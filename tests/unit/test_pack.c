/* Pack writer/reader and recipes: aliases (tied weights stored once),
 * overlapping views, zero-length tensors, every reader rule on corrupted
 * packs (padding, digests, truncation, re-signed bad tables), recipes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <xxhash.h>

#include "tests/unit/conv_testutil.h"
#include "registry/catalog.h"
#include "registry/tindex.h"

/* A source of 300 bytes with tied weights, a converter alias, an
 * overlapping view and a zero-length tensor. */
static int make_synthetic(struct fx_conv *c, struct conv_info *ci)
{
	uint8_t src[300];
	for (int i = 0; i < 300; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	memset(c, 0, sizeof *c);
	c->src = fx_tmp();
	assert_int_equal(util_write_all(c->src, src, sizeof src), 0);
	c->size = sizeof src;
	c->pack = fx_tmp();
	c->recipe = fx_tmp();
	memset(ci, 0, sizeof *ci);
	ci->format = "torch";
	uint64_t s4[] = { 4 }, s22[] = { 2, 2 }, s2[] = { 2 }, s100[] = { 100 }, s0[] = { 0 };
	assert_int_equal(conv_info_add(ci, "a", CONV_DT_F32, 1, s4, 0, 16), 0);
	assert_int_equal(conv_info_add(ci, "b", CONV_DT_F32, 1, s4, 0, 16), 0);  /* same range */
	assert_int_equal(conv_info_add(ci, "c", CONV_DT_F32, 2, s22, 0, 16), 0);
	ci->t[2].alias = 0;                                                     /* tied */
	assert_int_equal(conv_info_add(ci, "d", CONV_DT_F32, 1, s2, 8, 8), 0);    /* view */
	assert_int_equal(conv_info_add(ci, "e", CONV_DT_U8, 1, s100, 100, 100), 0);
	assert_int_equal(conv_info_add(ci, "z", CONV_DT_F32, 1, s0, 50, 0), 0);
	int rc = conv_convert_info(c->src, c->size, ci, NULL, c->pack, c->recipe, &c->res);
	if (rc)
		return rc;
	assert_int_equal(pack_open(c->pack, PACK_VERIFY_DATA, &c->p), 0);
	assert_int_equal(recipe_open(c->recipe, &c->res.pack_size, 1, &c->r), 0);
	return 0;
}

static void test_aliases_and_views(void **state)
{
	(void)state;
	struct fx_conv c;
	struct conv_info ci;
	assert_int_equal(make_synthetic(&c, &ci), 0);
	assert_int_equal(c.res.ntensors, 6);
	assert_int_equal(c.res.nstored, 4);            /* a, d, e, z */
	assert_int_equal(c.res.params, 4 + 2 + 100);   /* tied weights once */
	assert_string_equal(c.res.format, "torch");
	fx_check_roundtrip(&c);
	const struct pack_tensor *a = pack_find(c.p, "a"), *b = pack_find(c.p, "b"),
				 *t = pack_find(c.p, "c"), *d = pack_find(c.p, "d");
	assert_int_equal(b->alias, 0);
	assert_int_equal(t->alias, 0);
	assert_int_equal(b->offset, a->offset);
	assert_int_equal(t->offset, a->offset);
	assert_int_equal(d->alias, -1);
	assert_int_not_equal(d->offset, a->offset);
	/* literals: [16,100) and [200,300) */
	assert_int_equal(c.res.recipe_literal, 84 + 100);
	/* data: a, (z), d, e at 4096, 8192, 12288 -> table at 16384 */
	assert_int_equal(pack_data_end(c.p), 3 * 4096 + 100);
	fx_conv_free(&c);
	/* bad converter output is refused */
	uint64_t s4[] = { 4 };
	struct conv_info bad = { 0 };
	bad.format = "torch";
	assert_int_equal(conv_info_add(&bad, "a", CONV_DT_F32, 1, s4, 0, 16), 0);
	assert_int_equal(conv_info_add(&bad, "a", CONV_DT_F32, 1, s4, 16, 16), 0);
	struct conv_result r;
	int fd = fx_tmp(), p = fx_tmp(), q = fx_tmp();
	uint8_t z[64] = { 0 };
	assert_int_equal(util_write_all(fd, z, sizeof z), 0);
	assert_int_equal(conv_convert_info(fd, 64, &bad, NULL, p, q, &r), MD_EINVAL);
	assert_non_null(strstr(md_errmsg(MD_EINVAL), "duplicate tensor name a"));
	free(bad.t[1].name);
	bad.t[1].name = strdup("b");
	bad.t[1].alias = 0;   /* alias with another range */
	assert_int_equal(conv_convert_info(fd, 64, &bad, NULL, p, q, &r), MD_EINVAL);
	bad.t[1].alias = -1;
	bad.t[1].len = 12;    /* length not matching the shape */
	assert_int_equal(conv_convert_info(fd, 64, &bad, NULL, p, q, &r), MD_EINVAL);
	bad.t[1].len = 16;
	bad.t[1].src_off = 60; /* past the end */
	assert_int_equal(conv_convert_info(fd, 64, &bad, NULL, p, q, &r), MD_EINVAL);
	conv_info_free(&bad);
	/* 100 overlapping views of a 1 MiB storage: refused, not a 100 MiB pack */
	struct conv_info views = { 0 };
	views.format = "torch";
	int big = fx_tmp();
	assert_int_equal(ftruncate(big, 1 << 20), 0);
	for (int i = 0; i < 100; i++) {
		char nm[16];
		uint64_t sh[] = { (1u << 20) - (uint64_t)i };
		snprintf(nm, sizeof nm, "v%d", i);
		assert_int_equal(conv_info_add(&views, nm, CONV_DT_U8, 1, sh, (uint64_t)i, sh[0]), 0);
	}
	assert_int_equal(conv_convert_info(big, 1 << 20, &views, NULL, p, q, &r), MD_ETOOBIG);
	assert_non_null(strstr(md_errmsg(MD_ETOOBIG), "overlapping tensors would store"));
	conv_info_free(&views);
	close(big);
	conv_info_free(&ci);
	close(fd);
	close(p);
	close(q);
}

/* Copy of a pack in memory, for corrupting. */
struct img {
	uint8_t *b;
	size_t n;
};

static struct img load_img(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	struct img m = { malloc((size_t)st.st_size), (size_t)st.st_size };
	assert_int_equal(util_pread_full(fd, m.b, m.n, 0), (ssize_t)m.n);
	return m;
}

static uint64_t g64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void p64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the root digest after editing the header or the index. */
static void resign(struct img *m)
{
	uint64_t toff = g64(m->b + 64);
	struct sha256 h;
	assert_int_equal(sha256_init(&h), 0);
	sha256_update(&h, m->b, 128);
	sha256_update(&h, m->b + toff, m->n - 64 - toff);
	sha256_final(&h, m->b + m->n - 64 + 16);
}

static void expect_bad(const struct img *m, unsigned flags, const char *needle)
{
	struct pack *p = NULL;
	int rc = pack_open_mem(m->b, m->n, flags, &p);
	if (rc == 0 || !strstr(md_errmsg(rc), needle))
		fail_msg("rc %d \"%s\", expected \"%s\"", rc, rc ? md_errmsg(rc) : "", needle);
	assert_null(p);
}

static void test_corrupt_pack(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("model.safetensors", &c), 0);
	struct img m = load_img(c.pack);
	struct pack *p;
	/* mapping works like the fd */
	void *map = mmap(NULL, m.n, PROT_READ, MAP_SHARED, c.pack, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(pack_open_mem(map, m.n, PACK_VERIFY_DATA, &p), 0);
	assert_int_equal(pack_count(p), 13);
	assert_memory_equal(pack_root(p), pack_root(c.p), 32);
	pack_close(p);
	munmap(map, m.n);
	uint64_t toff = g64(m.b + 64);
	const struct pack_tensor *t0 = pack_tensor(c.p, 0);
	/* nonzero padding after a tensor: caught by the data check */
	m.b[t0->offset + t0->length + 1] ^= 1;
	assert_int_equal(pack_open_mem(m.b, m.n, 0, &p), 0);
	pack_close(p);
	expect_bad(&m, PACK_VERIFY_DATA, "nonzero padding");
	m.b[t0->offset + t0->length + 1] ^= 1;
	/* a flipped data byte */
	m.b[t0->offset + 5] ^= 0x40;
	expect_bad(&m, PACK_VERIFY_DATA, "tensor 0 (model.embed.weight): digest mismatch");
	m.b[t0->offset + 5] ^= 0x40;
	/* header padding */
	m.b[1000] = 1;
	expect_bad(&m, 0, "nonzero bytes after the header");
	m.b[1000] = 0;
	/* table, strings, metadata, header: root digest */
	m.b[toff + 90] ^= 1;
	expect_bad(&m, 0, "root digest mismatch");
	m.b[toff + 90] ^= 1;
	m.b[m.n - 70] ^= 1;
	expect_bad(&m, 0, "root digest mismatch");
	m.b[m.n - 70] ^= 1;
	m.b[m.n - 30] ^= 1;
	expect_bad(&m, 0, "root digest mismatch");
	m.b[m.n - 30] ^= 1;
	/* truncation and sizes */
	struct img tr = { m.b, m.n - 1 };
	expect_bad(&tr, 0, "header says");
	tr.n = 100;
	expect_bad(&tr, 0, "too short");
	m.b[0] = 'X';
	expect_bad(&m, 0, "bad magic");
	m.b[0] = 'M';
	m.b[8] = 3;
	assert_int_equal(pack_open_mem(m.b, m.n, 0, &p), MD_EUNSUP);
	m.b[8] = 0;
	assert_int_equal(pack_open_mem(m.b, m.n, 0, &p), MD_EUNSUP);
	m.b[8] = 2;
	/* re-signed tables that break a rule the digest cannot catch */
	uint8_t *e0 = m.b + toff, *e1 = m.b + toff + 160;
	uint8_t save[320];
	memcpy(save, e0, 320);
	p64(e0 + 80, g64(e0 + 80) + 8);
	resign(&m);
	expect_bad(&m, 0, "offset");
	memcpy(e0, save, 320);
	p64(e0 + 88, g64(e0 + 88) - 4);
	resign(&m);
	expect_bad(&m, 0, "does not match dtype and shape");
	memcpy(e0, save, 320);
	e0[8] = 99;
	resign(&m);
	expect_bad(&m, 0, "unknown dtype 99");
	memcpy(e0, save, 320);
	p64(e1 + 104, 5);   /* alias to a later tensor */
	resign(&m);
	expect_bad(&m, 0, "bad alias 5");
	memcpy(e0, save, 320);
	p64(e1 + 104, 0);   /* alias with another offset */
	resign(&m);
	expect_bad(&m, 0, "bad alias 0");
	memcpy(e0, save, 320);
	e0[150] = 1;
	resign(&m);
	expect_bad(&m, 0, "reserved bytes not zero");
	memcpy(e0, save, 320);
	p64(e0 + 96, c.size);   /* source range past the source */
	resign(&m);
	expect_bad(&m, 0, "source range");
	memcpy(e0, save, 320);
	e0[16 + 8 * 3] = 1;     /* unused dimension */
	resign(&m);
	expect_bad(&m, 0, "unused dimension");
	memcpy(e0, save, 320);
	/* the same name twice: "fp4.weight" (entry 8) renamed "fp8.weight" */
	{
		uint64_t soff = g64(m.b + 72);
		uint8_t *e8 = m.b + toff + 8 * 160;
		uint32_t no8 = (uint32_t)(e8[0] | e8[1] << 8 | e8[2] << 16);
		assert_memory_equal(m.b + soff + no8, "fp4.weight", 10);
		m.b[soff + no8 + 2] = '8';
		resign(&m);
		expect_bad(&m, 0, "duplicate tensor name fp8.weight");
		m.b[soff + no8 + 2] = 0;   /* NUL inside a name */
		resign(&m);
		expect_bad(&m, 0, "tensor 8: bad name");
		m.b[soff + no8 + 2] = '4';
	}
	resign(&m);
	assert_int_equal(pack_open_mem(m.b, m.n, PACK_VERIFY_DATA, &p), 0);
	pack_close(p);
	/* metadata: a duplicate key, re-signed */
	uint64_t moff = g64(m.b + 88), mlen = g64(m.b + 96);
	assert_int_equal(g64(m.b + moff), 2);   /* format, note */
	uint8_t *k2 = m.b + moff + 8 + 8 + 6 + 4 + 8 + 2 + 8;   /* second key's bytes */
	assert_memory_equal(k2, "note", 4);
	k2[2] = 0xff;
	resign(&m);
	expect_bad(&m, 0, "pack: metadata: string at byte");
	memcpy(k2, "note", 4);
	p64(m.b + moff, 3);
	resign(&m);
	expect_bad(&m, 0, "truncated");
	p64(m.b + moff, 2);
	(void)mlen;
	resign(&m);
	assert_int_equal(pack_open_mem(m.b, m.n, PACK_VERIFY_DATA, &p), 0);
	pack_close(p);
	free(m.b);
	fx_conv_free(&c);
}

/* share.safetensors holds big.weight of model.safetensors twice: rewritten
 * to refer to model.safetensors' pack, its pack keeps only its own tensors,
 * and the recipe, exports and checks read through the reference. */
static void test_shared_tensors(void **state)
{
	(void)state;
	struct fx_conv a, b;
	assert_int_equal(fx_convert("model.safetensors", &a), 0);
	assert_int_equal(fx_convert("share.safetensors", &b), 0);
	size_t n = pack_count(b.p);
	uint32_t ref[8] = { 0 };
	uint64_t off[8] = { 0 };
	const struct pack_tensor *big = pack_find(a.p, "big.weight");
	for (size_t i = 0; i < n; i++)
		if (!memcmp(pack_tensor(b.p, i)->digest, big->digest, 32)) {
			ref[i] = 1;
			off[i] = big->offset;
		}
	assert_int_equal(ref[0] + ref[3], 2);
	struct pack_share sh = { 1, (const uint8_t (*)[32])pack_root(a.p), ref, off };
	struct pack_move *mv;
	size_t nmv;
	struct pack_written w;
	int q = fx_tmp(), r = fx_tmp();
	assert_int_equal(pack_share_write(b.pack, b.p, &sh, q, &mv, &nmv, &w), 0);
	assert_int_equal(nmv, 4);
	struct pack *qp;
	assert_int_equal(pack_open(q, PACK_VERIFY_DATA, &qp), 0);
	assert_memory_equal(pack_root(qp), w.root, 32);
	assert_int_equal(pack_nrefs(qp), 1);
	assert_memory_equal(pack_ref(qp, 1), pack_root(a.p), 32);
	assert_null(pack_ref(qp, 2));
	assert_int_equal(pack_find(qp, "other.big")->ref, 1);
	assert_int_equal(pack_find(qp, "big.again")->offset, big->offset);
	assert_int_equal(pack_find(qp, "own")->ref, 0);
	/* the big tensor (twice) is no longer in this pack */
	assert_true(w.size + 2 * big->length <= b.res.pack_size + 32);   /* + its reference */
	assert_int_equal(pack_check_ref(qp, 1, a.p), 0);
	assert_int_equal(pack_check_ref(qp, 1, b.p), MD_EINVAL);
	/* a shared pack cannot be shared again */
	int q2 = fx_tmp();
	struct pack_move *mv2;
	size_t nmv2;
	assert_int_equal(pack_share_write(q, qp, &sh, q2, &mv2, &nmv2, &w), MD_EINVAL);
	close(q2);
	/* the recipe over both packs reproduces the original */
	assert_int_equal(recipe_rebase(b.r, mv, nmv, pack_root(qp), r), 0);
	struct recipe *rr;
	uint64_t sizes[2] = { pack_file_size(qp), pack_file_size(a.p) };
	assert_int_equal(recipe_open(r, sizes, 2, &rr), 0);
	int fds[2] = { q, a.pack };
	assert_int_equal(recipe_verify(rr, (struct recipe_packs){ fds, 2 }), 0);
	assert_int_equal(recipe_verify(rr, (struct recipe_packs){ fds, 1 }), MD_ECORRUPT);
	int out = fx_tmp();
	uint8_t d[32];
	assert_int_equal(recipe_copy(rr, (struct recipe_packs){ fds, 2 }, 0, b.size, out), 0);
	fx_sha_fd(out, d);
	assert_memory_equal(d, b.res.src_sha256, 32);
	close(out);
	recipe_close(rr);
	/* a recipe naming a referenced pack that is not there */
	assert_int_equal(recipe_open(r, sizes, 1, &rr), MD_ECORRUPT);
	/* exports read through the reference: the same file as before */
	int e1 = fx_tmp(), e2 = fx_tmp();
	assert_int_equal(export_safetensors(qp, fds, e1), 0);
	assert_int_equal(export_safetensors(b.p, &b.pack, e2), 0);
	uint8_t d2[32];
	fx_sha_fd(e1, d);
	fx_sha_fd(e2, d2);
	assert_memory_equal(d, d2, 32);
	close(e1);
	close(e2);
	/* rules the root cannot catch, re-signed */
	struct img m = load_img(q);
	uint64_t toff = g64(m.b + 64);
	uint8_t *e0 = m.b + toff;   /* other.big: ref 1 */
	e0[144] = 2;
	resign(&m);
	expect_bad(&m, 0, "bad reference 2");
	e0[144] = 1;
	p64(e0 + 80, big->offset + 8);
	resign(&m);
	expect_bad(&m, 0, "bad reference 1");
	p64(e0 + 80, big->offset);
	m.b[12] = 0;   /* references without the flag */
	resign(&m);
	expect_bad(&m, 0, "referenced packs with flags");
	m.b[12] = 1;
	p64(m.b + 112, 0);
	resign(&m);
	expect_bad(&m, 0, "referenced packs with flags");
	p64(m.b + 112, 1);
	resign(&m);
	struct pack *ok;
	assert_int_equal(pack_open_mem(m.b, m.n, PACK_VERIFY_DATA, &ok), 0);
	pack_close(ok);
	free(m.b);
	pack_close(qp);
	free(mv);
	close(q);
	close(r);
	fx_conv_free(&a);
	fx_conv_free(&b);
}

/* The tensor index of a store written before it existed: tindex_ensure
 * indexes the packs of every stored revision once (big tensors held by the
 * pack itself), and an entry whose pack lost its last reference is not
 * answered. */
static void test_tensor_index_backfill(void **state)
{
	(void)state;
	struct fx_conv a;
	struct store *st;
	char root[64], hex[65], bp[4096], dir[4200], sha[65];
	snprintf(root, sizeof root, "/tmp/md-tindex-XXXXXX");
	assert_non_null(mkdtemp(root));
	assert_int_equal(store_open(root, 0, 0, &st), 0);
	assert_int_equal(fx_convert("model.safetensors", &a), 0);
	/* the pack as a blob, named by its root */
	util_hex(pack_root(a.p), 32, hex);
	util_hex(a.res.src_sha256, 32, sha);
	store_blob_path(st, hex, bp, sizeof bp);
	snprintf(dir, sizeof dir, "%s/blobs/sha256/%.2s", root, hex);
	assert_int_equal(mkdir(dir, 0755), 0);
	int fd = open(bp, O_RDWR | O_CREAT | O_EXCL, 0444);
	assert_true(fd >= 0);
	assert_int_equal(util_copy_range(a.pack, 0, fd, 0, a.res.pack_size), 0);
	close(fd);
	json_t *m = json_pack("{s:i,s:s,s:s,s:[{s:s,s:I,s:s,s:s,s:I,s:s,s:I}]}", "v", 1, "name",
			      "acme/old", "revision", "0123456789012345678901234567890123456789",
			      "files", "path", "model.safetensors", "size", (json_int_t)a.size,
			      "sha256", sha, "pack", hex, "pack_size", (json_int_t)a.res.pack_size,
			      "recipe", sha, "recipe_size", (json_int_t)1);
	MDB_txn *txn;
	int existed;
	assert_int_equal(store_txn(st, 1, &txn), 0);
	assert_int_equal(catalog_put_rev(st, txn, m, "main", &existed), 0);
	assert_int_equal(store_commit(txn), 0);
	const struct pack_tensor *big = pack_find(a.p, "big.weight"), *small = pack_find(a.p, "u8");
	struct tindex_hit hit;
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(tindex_get(st, txn, big->digest, &hit), MD_ENOENT);   /* not yet */
	mdb_txn_abort(txn);
	assert_int_equal(tindex_ensure(st), 0);
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(tindex_get(st, txn, big->digest, &hit), 0);
	assert_string_equal(hit.pack, hex);
	assert_int_equal(hit.offset, big->offset);
	assert_int_equal(hit.length, big->length);
	assert_int_equal(hit.pack_size, a.res.pack_size);
	assert_int_equal(tindex_get(st, txn, small->digest, &hit), MD_ENOENT);   /* < 64 KiB */
	mdb_txn_abort(txn);
	assert_int_equal(tindex_ensure(st), 0);   /* once */
	/* the revision goes: its pack is no longer an answer */
	json_t *freed = json_array();
	assert_int_equal(store_txn(st, 1, &txn), 0);
	assert_int_equal(catalog_del_rev(st, txn, "acme/old", "0123456789012345678901234567890123456789",
					 freed), 0);
	assert_int_equal(store_commit(txn), 0);
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(tindex_get(st, txn, big->digest, &hit), MD_ENOENT);
	MDB_stat ms;
	assert_int_equal(mdb_stat(txn, st->tensors, &ms), 0);
	assert_true(ms.ms_entries >= 1);   /* stale, until gc prunes it */
	mdb_txn_abort(txn);
	uint64_t pruned = 0;
	assert_int_equal(tindex_prune(st, &pruned), 0);
	assert_int_equal(pruned, ms.ms_entries);
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(mdb_stat(txn, st->tensors, &ms), 0);
	assert_int_equal(ms.ms_entries, 0);
	mdb_txn_abort(txn);
	json_decref(freed);
	json_decref(m);
	store_close(st);
	fx_conv_free(&a);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

/* Version 2 tables hold XXH3-128 digests (canonical, then 16 zero bytes);
 * version 1 tables, still read, SHA-256: the reader checks each by the
 * pack's version, and a digest of the other kind is a mismatch. */
static void test_digest_versions(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("model.safetensors", &c), 0);
	struct img m = load_img(c.pack);
	struct pack *p;
	assert_int_equal(pack_version(c.p), 2);
	uint64_t toff = g64(m.b + 64), nt = g64(m.b + 32);
	for (uint64_t i = 0; i < nt; i++) {
		const struct pack_tensor *t = pack_tensor(c.p, i);
		XXH128_canonical_t want;
		XXH128_canonicalFromHash(&want, XXH3_128bits(m.b + t->offset, t->length));
		assert_memory_equal(t->digest, want.digest, 16);
		for (int k = 16; k < 32; k++)
			assert_int_equal(t->digest[k], 0);
	}
	/* a nonzero byte after the 16 that count */
	m.b[toff + 112 + 20] = 1;
	resign(&m);
	expect_bad(&m, 0, "reserved bytes not zero");
	m.b[toff + 112 + 20] = 0;
	/* the same pack as version 1: the XXH3 digests no longer verify */
	m.b[8] = 1;
	resign(&m);
	assert_int_equal(pack_open_mem(m.b, m.n, 0, &p), 0);
	assert_int_equal(pack_version(p), 1);
	pack_close(p);
	expect_bad(&m, PACK_VERIFY_DATA, "tensor 0 (model.embed.weight): digest mismatch");
	/* with SHA-256 digests it is a valid version 1 pack */
	for (uint64_t i = 0; i < nt; i++) {
		uint8_t *e = m.b + toff + i * 160;
		struct sha256 h;
		assert_int_equal(sha256_init(&h), 0);
		sha256_update(&h, m.b + g64(e + 80), g64(e + 88));
		sha256_final(&h, e + 112);
	}
	resign(&m);
	assert_int_equal(pack_open_mem(m.b, m.n, PACK_VERIFY_DATA, &p), 0);
	assert_int_equal(pack_version(p), 1);
	pack_close(p);
	free(m.b);
	fx_conv_free(&c);
}

static void test_corrupt_recipe(void **state)
{
	(void)state;
	struct fx_conv c;
	struct conv_info ci;
	assert_int_equal(make_synthetic(&c, &ci), 0);
	conv_info_free(&ci);
	struct img m = load_img(c.recipe);
	int fd = fx_tmp();
	struct recipe *r;
#define REWRITE()                                                   \
	do {                                                        \
		assert_int_equal(ftruncate(fd, 0), 0);              \
		assert_int_equal(pwrite(fd, m.b, m.n, 0), (ssize_t)m.n); \
	} while (0)
	REWRITE();
	assert_int_equal(recipe_open(fd, &c.res.pack_size, 1, &r), 0);
	assert_int_equal(recipe_verify(r, FX_PACKS(c.pack)), 0);
	size_t nseg = recipe_nseg(r);
	assert_int_equal(nseg, 4);   /* pack a, literal, pack e, literal */
	recipe_close(r);
	/* a flipped literal byte: structure fine, original digest wrong */
	m.b[m.n - 1] ^= 1;
	REWRITE();
	assert_int_equal(recipe_open(fd, &c.res.pack_size, 1, &r), 0);
	assert_int_equal(recipe_verify(r, FX_PACKS(c.pack)), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "original sha256 mismatch"));
	recipe_close(r);
	m.b[m.n - 1] ^= 1;
	/* truncated */
	m.n--;
	REWRITE();
	assert_int_equal(recipe_open(fd, NULL, 0, &r), MD_ECORRUPT);
	m.n++;
	/* segment outside the pack */
	uint8_t *s0 = m.b + 128;
	uint64_t off0 = g64(s0 + 8);
	p64(s0 + 8, c.res.pack_size);
	REWRITE();
	assert_int_equal(recipe_open(fd, &c.res.pack_size, 1, &r), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "outside the pack"));
	p64(s0 + 8, off0);
	/* lengths not summing to the original */
	p64(s0 + 16, g64(s0 + 16) + 1);
	REWRITE();
	assert_int_equal(recipe_open(fd, NULL, 0, &r), MD_ECORRUPT);
	p64(s0 + 16, g64(s0 + 16) - 1);
	/* bad kind, huge count */
	s0[0] = 7;
	REWRITE();
	assert_int_equal(recipe_open(fd, NULL, 0, &r), MD_ECORRUPT);
	s0[0] = 1;
	p64(m.b + 24, 1ull << 40);
	REWRITE();
	assert_int_equal(recipe_open(fd, NULL, 0, &r), MD_ETOOBIG);
	close(fd);
	free(m.b);
	fx_conv_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aliases_and_views),
		cmocka_unit_test(test_corrupt_pack),
		cmocka_unit_test(test_digest_versions),
		cmocka_unit_test(test_corrupt_recipe),
		cmocka_unit_test(test_shared_tensors),
		cmocka_unit_test(test_tensor_index_backfill),
	};
	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
