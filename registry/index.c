/* registry/index.c — see index.h. */
#include "registry/index.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- words ------------------------------------------------------------------ */

static int wordch(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

int index_words(const char *text, size_t len, index_word_fn *fn, void *arg)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && !wordch((unsigned char)text[i]))
			i++;
		size_t s = i;
		while (i < len && wordch((unsigned char)text[i]))
			i++;
		size_t wl = i - s;
		if (wl < 2 || wl > 40)
			continue;
		char w[41];
		for (size_t k = 0; k < wl; k++) {
			char c = text[s + k];
			w[k] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		w[wl] = 0;
		int rc = fn(w, wl, arg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- keys ------------------------------------------------------------------- */

/* "FIELD\0value" with value lower-cased and cut to INDEX_MAX_VALUE bytes. */
static size_t field_key(char *buf, const char *field, const char *val, size_t vl)
{
	size_t fl = strlen(field);
	if (vl > INDEX_MAX_VALUE)
		vl = INDEX_MAX_VALUE;
	memcpy(buf, field, fl);
	buf[fl] = 0;
	for (size_t i = 0; i < vl; i++) {
		char c = val[i];
		buf[fl + 1 + i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	return fl + 1 + vl;
}

static size_t rev_key(char *buf, size_t n, const char *name, const char *rev)
{
	size_t a = strlen(name), b = strlen(rev);
	if (a + 1 + b > n || a + 1 + b > 480)
		return 0;
	memcpy(buf, name, a);
	buf[a] = 0;
	memcpy(buf + a + 1, rev, b);
	return a + 1 + b;
}

static void be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static uint64_t rd_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* ---- numbers ---------------------------------------------------------------- */

static int64_t parse_iso(const char *s)
{
	struct tm tm = { 0 };
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

void index_num_of(json_t *m, struct index_num *o)
{
	json_t *facts = json_object_get(m, "facts");
	json_t *p = json_object_get(facts, "parameters");
	json_t *db = json_object_get(facts, "dtype_bytes");
	memset(o, 0, sizeof *o);
	o->version = INDEX_VERSION;
	if (json_is_integer(p) && json_integer_value(p) >= 0) {
		o->params = (uint64_t)json_integer_value(p);
		o->flags |= INDEX_HAS_PARAMS;
	}
	const char *k;
	json_t *v;
	uint64_t mem = 0;
	json_object_foreach(db, k, v)
		if (json_is_integer(v) && json_integer_value(v) > 0)
			mem += (uint64_t)json_integer_value(v);
	if (mem) {
		o->mem = mem;
		o->flags |= INDEX_HAS_MEM;
	} else if (o->flags & INDEX_HAS_PARAMS) {
		o->mem = o->params * 2;
		o->flags |= INDEX_HAS_MEM | INDEX_MEM_ESTIMATED;
	}
	json_int_t ts = json_integer_value(json_object_get(m, "total_size"));
	o->size = ts > 0 ? (uint64_t)ts : 0;
	o->imported = parse_iso(json_string_value(json_object_get(m, "imported_at")));
}

const char *index_license(json_t *m)
{
	json_t *lic = json_object_get(m, "license");
	const char *v = json_string_value(json_object_get(json_object_get(m, "facts"), "license"));
	if (!v || !*v || !strcmp(v, "NOASSERTION")) {
		const char *s = json_string_value(json_object_get(lic, "spdx"));
		json_t *det = json_object_get(lic, "detected");
		if (s && *s)
			v = s;
		else if (json_is_true(json_object_get(det, "matched")) &&
			 json_string_value(json_object_get(det, "id")))
			v = json_string_value(json_object_get(det, "id"));
	}
	return v;
}

/* ---- put / del -------------------------------------------------------------- */

struct wset { json_t *set; };

static int add_word(const char *w, size_t len, void *arg)
{
	struct wset *ws = arg;
	(void)len;
	if (json_object_size(ws->set) >= INDEX_MAX_WORDS)
		return 1; /* stop: cap reached */
	return json_object_set_new_nocheck(ws->set, w, json_true()) ? MD_ENOMEM : 0;
}

static int words_of(json_t *set, const char *s)
{
	struct wset ws = { set };
	int rc = s ? index_words(s, strlen(s), add_word, &ws) : 0;
	return rc < 0 ? rc : 0;
}

static int words_of_json(json_t *set, json_t *v)
{
	size_t i;
	json_t *x;
	if (json_is_string(v))
		return words_of(set, json_string_value(v));
	json_array_foreach(v, i, x)
		if (json_is_string(x) && words_of(set, json_string_value(x)))
			return MD_ENOMEM;
	return 0;
}

static const char *const cat_fields[][2] = {
	{ "task", "task" }, { "provider", "provider" }, { "license", "license" },
	{ "library", "library" }, { "arch", "architecture" },
};

/* Every (key, value) pair of a manifest's index records: fn(key, klen). */
typedef int pair_fn(MDB_txn *txn, struct store *st, const char *k, size_t kl,
		    const char *v, size_t vl, int del);

static int idx_write(MDB_txn *txn, struct store *st, const char *k, size_t kl,
		     const char *v, size_t vl, int del)
{
	MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
	int rc = del ? mdb_del(txn, st->idx, &key, &val) : mdb_put(txn, st->idx, &key, &val, 0);
	if (rc == MDB_KEYEXIST || (del && rc == MDB_NOTFOUND))
		rc = 0;
	return rc ? store_mdb_err(rc, "catalog index") : 0;
}

static int apply(struct store *st, MDB_txn *txn, const char *name, const char *rev,
		 json_t *m, int del)
{
	char rk[512], kb[INDEX_MAX_VALUE + 64];
	size_t rl = rev_key(rk, sizeof rk, name, rev);
	if (!rl)
		return md_fail(MD_EINVAL, "%s: name too long for the index", name);
	json_t *facts = json_object_get(m, "facts");
	int rc = 0;
	for (size_t i = 0; i < sizeof cat_fields / sizeof cat_fields[0] && !rc; i++) {
		const char *v = json_string_value(json_object_get(facts, cat_fields[i][1]));
		if (!strcmp(cat_fields[i][0], "license"))
			v = index_license(m);
		if (v && *v)
			rc = idx_write(txn, st, kb, field_key(kb, cat_fields[i][0], v, strlen(v)), rk,
				       rl, del);
	}
	if (rc)
		return rc;
	json_t *nset = json_object(), *wset = json_object();
	if (!nset || !wset) {
		json_decref(nset);
		json_decref(wset);
		return MD_ENOMEM;
	}
	static const char *const wfields[] = { "tags", "task", "library", "languages", "datasets",
					       "base_model", "architecture", "license", NULL };
	rc = words_of(nset, name) ? MD_ENOMEM : 0;
	if (!rc && words_of(wset, name))
		rc = MD_ENOMEM;
	for (size_t i = 0; wfields[i] && !rc; i++)
		rc = words_of_json(wset, json_object_get(facts, wfields[i]));
	if (!rc)
		rc = words_of(wset, json_string_value(json_object_get(json_object_get(m, "card"), "text")));
	const char *w;
	json_t *x;
	json_object_foreach(nset, w, x) {
		if (rc)
			break;
		rc = idx_write(txn, st, kb, field_key(kb, "n", w, strlen(w)), rk, rl, del);
	}
	json_object_foreach(wset, w, x) {
		if (rc)
			break;
		rc = idx_write(txn, st, kb, field_key(kb, "w", w, strlen(w)), rk, rl, del);
	}
	json_decref(nset);
	json_decref(wset);
	if (rc)
		return rc;
	/* numbers and ranges */
	struct index_num num;
	index_num_of(m, &num);
	MDB_val nk = { rl, rk }, nv = { sizeof num, &num };
	int r = del ? mdb_del(txn, st->inums, &nk, NULL) : mdb_put(txn, st->inums, &nk, &nv, 0);
	if (r && !(del && r == MDB_NOTFOUND))
		return store_mdb_err(r, "catalog index");
	struct { char kind; int have; uint64_t v; } rg[] = {
		{ 'p', !!(num.flags & INDEX_HAS_PARAMS), num.params },
		{ 's', 1, num.size },
		{ 'm', !!(num.flags & INDEX_HAS_MEM), num.mem },
		{ 't', 1, num.imported > 0 ? (uint64_t)num.imported : 0 },
	};
	for (size_t i = 0; i < 4; i++) {
		if (!rg[i].have)
			continue;
		unsigned char ob[9 + 512];
		ob[0] = (unsigned char)rg[i].kind;
		be64(ob + 1, rg[i].v);
		memcpy(ob + 9, rk, rl);
		MDB_val k = { 9 + rl, ob }, v = { 0, (void *)"" };
		r = del ? mdb_del(txn, st->iranges, &k, NULL) : mdb_put(txn, st->iranges, &k, &v, 0);
		if (r && !(del && r == MDB_NOTFOUND))
			return store_mdb_err(r, "catalog index");
	}
	return 0;
}

int index_put(struct store *st, MDB_txn *txn, const char *name, const char *rev, json_t *m)
{
	return apply(st, txn, name, rev, m, 0);
}

int index_del(struct store *st, MDB_txn *txn, const char *name, const char *rev, json_t *m)
{
	return apply(st, txn, name, rev, m, 1);
}

/* ---- rebuild ---------------------------------------------------------------- */

static int rebuild_all(struct store *st, MDB_txn *txn)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, st->revs, &c);
	if (rc)
		return store_mdb_err(rc, "catalog cursor");
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && !ret) {
		const char *z = memchr(k.mv_data, 0, k.mv_size);
		json_t *m = v.mv_size < (64u << 20) ? json_loadb(v.mv_data, v.mv_size, 0, NULL) : NULL;
		if (z && json_is_object(m)) {
			char name[512], rev[64];
			size_t nl = (size_t)(z - (const char *)k.mv_data), rl = k.mv_size - nl - 1;
			if (nl < sizeof name && rl < sizeof rev) {
				memcpy(name, k.mv_data, nl);
				name[nl] = 0;
				memcpy(rev, z + 1, rl);
				rev[rl] = 0;
				ret = index_put(st, txn, name, rev, m);
			}
		}
		json_decref(m);
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog cursor");
	return ret;
}

int index_ensure(struct store *st)
{
	MDB_txn *txn;
	MDB_stat a, b;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	MDB_val k = { 5, "index" }, v;
	uint32_t ver = 0;
	if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == sizeof ver)
		memcpy(&ver, v.mv_data, sizeof ver);
	if (mdb_stat(txn, st->revs, &a) || mdb_stat(txn, st->inums, &b) ||
	    (ver == INDEX_VERSION && a.ms_entries == b.ms_entries)) {
		mdb_txn_abort(txn);
		return 0;
	}
	if ((rc = mdb_drop(txn, st->idx, 0)) || (rc = mdb_drop(txn, st->inums, 0)) ||
	    (rc = mdb_drop(txn, st->iranges, 0))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "catalog index");
	}
	if ((rc = rebuild_all(st, txn))) {
		mdb_txn_abort(txn);
		return rc;
	}
	ver = INDEX_VERSION;
	v.mv_size = sizeof ver;
	v.mv_data = &ver;
	if ((rc = mdb_put(txn, st->meta, &k, &v, 0))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "catalog index");
	}
	return store_commit(txn);
}

/* ---- query ------------------------------------------------------------------ */

struct vec { MDB_val *v; size_t n, cap; };

static int vec_push(struct vec *s, void *data, size_t len)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		MDB_val *nv = realloc(s->v, nc * sizeof *nv);
		if (!nv)
			return md_fail(MD_ENOMEM, "catalog query: out of memory");
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n].mv_data = data;
	s->v[s->n].mv_size = len;
	s->n++;
	return 0;
}

/* LMDB's default order: memcmp over the shorter length, then shorter first. */
static int valcmp(const MDB_val *a, const MDB_val *b)
{
	size_t l = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int c = memcmp(a->mv_data, b->mv_data, l);
	if (c)
		return c;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

static int qcmp(const void *a, const void *b)
{
	return valcmp(a, b);
}

static void vec_sort_uniq(struct vec *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof *s->v, qcmp);
	size_t o = 1;
	for (size_t i = 1; i < s->n; i++)
		if (valcmp(&s->v[i], &s->v[o - 1]))
			s->v[o++] = s->v[i];
	s->n = o;
}

/* a := a ∩ b (both sorted, unique). */
static void vec_and(struct vec *a, const struct vec *b)
{
	size_t i = 0, j = 0, o = 0;
	while (i < a->n && j < b->n) {
		int c = valcmp(&a->v[i], &b->v[j]);
		if (c == 0) {
			a->v[o++] = a->v[i];
			i++;
			j++;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}
	a->n = o;
}

static int vec_has(const struct vec *s, const MDB_val *x)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = valcmp(&s->v[mid], x);
		if (!c)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* All values under the exact key, or (prefix) under every key starting with
 * it; result sorted and unique. */
static int idx_set(struct store *st, MDB_txn *txn, const char *field, const char *val,
		   int prefix, struct vec *out)
{
	char kb[INDEX_MAX_VALUE + 64];
	size_t kl = field_key(kb, field, val, strlen(val));
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, st->idx, &c);
	if (rc)
		return store_mdb_err(rc, "catalog index");
	MDB_val k = { kl, kb }, v;
	size_t keys = 0;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, prefix ? MDB_SET_RANGE : MDB_SET_KEY);
	while (rc == 0 && !ret) {
		if (k.mv_size < kl || memcmp(k.mv_data, kb, kl) || (!prefix && k.mv_size != kl))
			break;
		if (++keys > INDEX_MAX_EXPAND)
			break;
		while (rc == 0 && !ret) {
			ret = vec_push(out, v.mv_data, v.mv_size);
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
		}
		if (rc != MDB_NOTFOUND)
			break;
		if (!prefix)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
	}
	mdb_cursor_close(c);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog index");
	if (!ret && keys > 1)
		vec_sort_uniq(out);
	return ret;
}

/* Keys of one range kind with lo <= value <= hi. */
static int range_set(struct store *st, MDB_txn *txn, char kind, uint64_t lo, uint64_t hi,
		     struct vec *out)
{
	unsigned char kb[9];
	kb[0] = (unsigned char)kind;
	be64(kb + 1, lo);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, st->iranges, &c);
	if (rc)
		return store_mdb_err(rc, "catalog index");
	MDB_val k = { 9, kb }, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && !ret) {
		const unsigned char *p = k.mv_data;
		if (k.mv_size <= 9 || p[0] != (unsigned char)kind || rd_be64(p + 1) > hi)
			break;
		ret = vec_push(out, (char *)k.mv_data + 9, k.mv_size - 9);
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog index");
	if (!ret)
		vec_sort_uniq(out);
	return ret;
}

static int all_set(struct store *st, MDB_txn *txn, struct vec *out)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, st->inums, &c);
	if (rc)
		return store_mdb_err(rc, "catalog index");
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && !ret) {
		ret = vec_push(out, k.mv_data, k.mv_size);
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog index");
	return ret;
}

struct qwords { char w[INDEX_MAX_QUERY_WORDS][41]; size_t n; };

static int add_qword(const char *w, size_t len, void *arg)
{
	struct qwords *q = arg;
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->w[i], w))
			return 0;
	if (q->n == INDEX_MAX_QUERY_WORDS)
		return 1;
	memcpy(q->w[q->n++], w, len + 1);
	return 0;
}

static int hitcmp(const void *pa, const void *pb, void *arg)
{
	const struct index_hit *a = pa, *b = pb;
	int sort_kind = *(const int *)arg;
	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	uint64_t x = 0, y = 0;
	switch (sort_kind) {
	case INDEX_SORT_PARAMS: x = a->num.params; y = b->num.params; break;
	case INDEX_SORT_SIZE: x = a->num.size; y = b->num.size; break;
	case INDEX_SORT_IMPORTED: x = (uint64_t)a->num.imported; y = (uint64_t)b->num.imported; break;
	}
	if (x != y)
		return x > y ? -1 : 1;
	MDB_val va = { a->klen, (void *)a->key }, vb = { b->klen, (void *)b->key };
	return valcmp(&va, &vb);
}

int index_query(struct store *st, MDB_txn *txn, const struct index_query *q,
		struct index_hit **hits, size_t *n)
{
	struct vec cand = { 0 }, tmp = { 0 };
	struct vec names[INDEX_MAX_QUERY_WORDS] = { { 0 } };
	struct qwords qw = { .n = 0 };
	int have = 0, rc = 0;
	*hits = NULL;
	*n = 0;
	const char *cats[][2] = { { "task", q->task }, { "provider", q->provider },
				  { "license", q->license }, { "library", q->library } };
	for (size_t i = 0; i < 4 && !rc; i++) {
		if (!cats[i][1])
			continue;
		struct vec *dst = have ? &tmp : &cand;
		tmp.n = 0;
		if ((rc = idx_set(st, txn, cats[i][0], cats[i][1], 0, dst)))
			break;
		if (have)
			vec_and(&cand, &tmp);
		have = 1;
	}
	if (!rc && q->text) {
		index_words(q->text, strlen(q->text), add_qword, &qw);
		if (!qw.n)
			rc = md_fail(MD_EINVAL, "search '%.100s': no word of 2 to 40 letters or digits",
				     q->text);
		for (size_t i = 0; i < qw.n && !rc; i++) {
			struct vec *dst = have ? &tmp : &cand;
			tmp.n = 0;
			if ((rc = idx_set(st, txn, "w", qw.w[i], 1, dst)))
				break;
			if (have)
				vec_and(&cand, &tmp);
			have = 1;
			rc = idx_set(st, txn, "n", qw.w[i], 1, &names[i]);
		}
	}
	uint64_t lo = q->has_min ? q->min_params : 0, hi = q->has_max ? q->max_params : UINT64_MAX;
	if (!rc && !have) {
		if (q->has_min || q->has_max)
			rc = range_set(st, txn, 'p', lo, hi, &cand);
		else if (q->has_mem)
			rc = range_set(st, txn, 'm', 0, q->max_mem, &cand);
		else
			rc = all_set(st, txn, &cand);
	}
	struct index_hit *out = NULL;
	size_t no = 0;
	if (!rc && cand.n && !(out = malloc(cand.n * sizeof *out)))
		rc = md_fail(MD_ENOMEM, "catalog query: out of memory");
	for (size_t i = 0; i < cand.n && !rc; i++) {
		MDB_val v;
		struct index_num num;
		int r = mdb_get(txn, st->inums, &cand.v[i], &v);
		if (r == MDB_NOTFOUND || (r == 0 && v.mv_size != sizeof num))
			continue; /* index drift: index_ensure rebuilds at start-up */
		if (r) {
			rc = store_mdb_err(r, "catalog index");
			break;
		}
		memcpy(&num, v.mv_data, sizeof num);
		if ((q->has_min || q->has_max) &&
		    (!(num.flags & INDEX_HAS_PARAMS) || num.params < lo || num.params > hi))
			continue;
		if (q->has_mem && (!(num.flags & INDEX_HAS_MEM) || num.mem > q->max_mem))
			continue;
		struct index_hit *h = &out[no++];
		h->key = cand.v[i].mv_data;
		h->klen = cand.v[i].mv_size;
		h->num = num;
		h->score = 0;
		for (size_t w = 0; w < qw.n; w++)
			h->score += vec_has(&names[w], &cand.v[i]);
	}
	if (!rc && no > 1) {
		int kind = q->sort;
		qsort_r(out, no, sizeof *out, hitcmp, &kind);
	}
	free(cand.v);
	free(tmp.v);
	for (size_t i = 0; i < INDEX_MAX_QUERY_WORDS; i++)
		free(names[i].v);
	if (rc) {
		free(out);
		return rc;
	}
	*hits = out;
	*n = no;
	return 0;
}
