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

int index_words(const char *text, size_t len, size_t min, index_word_fn *fn, void *arg)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && !wordch((unsigned char)text[i]))
			i++;
		size_t s = i;
		while (i < len && wordch((unsigned char)text[i]))
			i++;
		size_t wl = i - s;
		if (wl < min || wl == 0 || wl > 40)
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

/* Words of 2..40 bytes of s; min 1 for a model's name, whose one-letter
 * parts ("acme/x-b") are how people find it. */
static int words_of_min(json_t *set, const char *s, size_t min)
{
	struct wset ws = { set };
	int rc = s ? index_words(s, strlen(s), min, add_word, &ws) : 0;
	return rc < 0 ? rc : 0;
}

static int words_of(json_t *set, const char *s)
{
	return words_of_min(set, s, 2);
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

static int idx_write(MDB_txn *txn, struct store *st, const char *k, size_t kl, uint64_t id,
		     int del)
{
	MDB_val key = { kl, (void *)k }, val = { sizeof id, &id };
	int rc = del ? mdb_del(txn, st->idx, &key, &val) : mdb_put(txn, st->idx, &key, &val, 0);
	if (rc == MDB_KEYEXIST || (del && rc == MDB_NOTFOUND))
		rc = 0;
	return rc ? store_mdb_err(rc, "catalog index") : 0;
}

static json_t *str_or_null(json_t *v)
{
	return json_is_string(v) ? json_incref(v) : json_null();
}

/* The row a filtered list shows (see index.h). */
static char *row_of(json_t *m, const struct index_num *num, const char *name, const char *rev)
{
	json_t *f = json_object_get(m, "facts");
	const char *lic = index_license(m);
	json_t *ctx = json_object_get(f, "context_length");
	json_t *r = json_pack("{s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "name", name,
			      "revision", rev, "total_size", (json_int_t)num->size, "imported_at",
			      str_or_null(json_object_get(m, "imported_at")), "parameters",
			      num->flags & INDEX_HAS_PARAMS ? json_integer((json_int_t)num->params)
							    : json_null(),
			      "memory", num->flags & INDEX_HAS_MEM ? json_integer((json_int_t)num->mem)
								   : json_null(),
			      "task", str_or_null(json_object_get(f, "task")), "provider",
			      str_or_null(json_object_get(f, "provider")), "library",
			      str_or_null(json_object_get(f, "library")), "license",
			      lic ? json_string(lic) : json_null(), "architecture",
			      str_or_null(json_object_get(f, "architecture")));
	if (!r)
		return NULL;
	json_object_set_new(r, "context_length",
			    json_is_integer(ctx) ? json_integer(json_integer_value(ctx)) : json_null());
	if (num->flags & INDEX_MEM_ESTIMATED)
		json_object_set_new(r, "memory_estimated", json_true());
	char *s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}

static int next_id(struct store *st, MDB_txn *txn, uint64_t *id)
{
	MDB_val k = { 10, "index_next" }, v;
	uint64_t n = 1;
	int rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == sizeof n)
		memcpy(&n, v.mv_data, sizeof n);
	else if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "catalog index");
	*id = n++;
	v.mv_size = sizeof n;
	v.mv_data = &n;
	rc = mdb_put(txn, st->meta, &k, &v, 0);
	return rc ? store_mdb_err(rc, "catalog index") : 0;
}

static int apply(struct store *st, MDB_txn *txn, const char *name, const char *rev,
		 json_t *m, int del)
{
	char rk[512], kb[INDEX_MAX_VALUE + 64];
	size_t rl = rev_key(rk, sizeof rk, name, rev);
	if (!rl)
		return md_fail(MD_EINVAL, "%s: name too long for the index", name);
	MDB_val ik = { rl, rk }, iv;
	uint64_t id;
	struct index_num old;
	int rc = mdb_get(txn, st->inums, &ik, &iv);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "catalog index");
	if (del) {
		if (rc == MDB_NOTFOUND || iv.mv_size < sizeof old)
			return 0; /* not indexed: nothing to remove */
		memcpy(&old, iv.mv_data, sizeof old);
		id = old.id;
	} else {
		if (rc == 0)
			return 0; /* already indexed */
		if ((rc = next_id(st, txn, &id)))
			return rc;
	}
	rc = 0;
	json_t *facts = json_object_get(m, "facts");
	for (size_t i = 0; i < sizeof cat_fields / sizeof cat_fields[0] && !rc; i++) {
		const char *v = json_string_value(json_object_get(facts, cat_fields[i][1]));
		if (!strcmp(cat_fields[i][0], "license"))
			v = index_license(m);
		if (v && *v)
			rc = idx_write(txn, st, kb, field_key(kb, cat_fields[i][0], v, strlen(v)), id,
				       del);
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
					       "base_model", "architecture", NULL };
	rc = words_of_min(nset, name, 1) ? MD_ENOMEM : 0;
	if (!rc && words_of_min(wset, name, 1))
		rc = MD_ENOMEM;
	if (!rc)
		rc = words_of(wset, index_license(m));
	for (size_t i = 0; wfields[i] && !rc; i++)
		rc = words_of_json(wset, json_object_get(facts, wfields[i]));
	if (!rc)
		rc = words_of(wset, json_string_value(json_object_get(json_object_get(m, "card"), "text")));
	const char *w;
	json_t *x;
	json_object_foreach(nset, w, x) {
		if (rc)
			break;
		rc = idx_write(txn, st, kb, field_key(kb, "n", w, strlen(w)), id, del);
	}
	json_object_foreach(wset, w, x) {
		if (rc)
			break;
		rc = idx_write(txn, st, kb, field_key(kb, "w", w, strlen(w)), id, del);
	}
	json_decref(nset);
	json_decref(wset);
	if (rc)
		return rc;
	/* id, row, ranges */
	struct index_num num;
	index_num_of(m, &num);
	num.id = id;
	MDB_val idk = { sizeof id, &id };
	int r;
	if (del) {
		if ((r = mdb_del(txn, st->inums, &ik, NULL)) ||
		    ((r = mdb_del(txn, st->irows, &idk, NULL)) && r != MDB_NOTFOUND))
			return store_mdb_err(r, "catalog index");
	} else {
		char *row = row_of(m, &num, name, rev);
		if (!row)
			return MD_ENOMEM;
		size_t jl = strlen(row);
		MDB_val rv = { sizeof num + jl, NULL }, kv = { rl, rk };
		r = mdb_put(txn, st->inums, &ik, &rv, MDB_RESERVE);
		if (!r) {
			memcpy(rv.mv_data, &num, sizeof num);
			memcpy((char *)rv.mv_data + sizeof num, row, jl);
			r = mdb_put(txn, st->irows, &idk, &kv, 0);
		}
		free(row);
		if (r)
			return store_mdb_err(r, "catalog index");
	}
	struct { char kind; int have; uint64_t v; } rg[] = {
		{ 'p', !!(num.flags & INDEX_HAS_PARAMS), num.params },
		{ 's', 1, num.size },
		{ 'm', !!(num.flags & INDEX_HAS_MEM), num.mem },
		{ 't', 1, num.imported > 0 ? (uint64_t)num.imported : 0 },
	};
	for (size_t i = 0; i < 4; i++) {
		if (!rg[i].have)
			continue;
		unsigned char ob[17];
		ob[0] = (unsigned char)rg[i].kind;
		be64(ob + 1, rg[i].v);
		be64(ob + 9, id);
		MDB_val k = { sizeof ob, ob }, v = { 0, (void *)"" };
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
	MDB_val nk = { 10, "index_next" };
	if ((rc = mdb_drop(txn, st->idx, 0)) || (rc = mdb_drop(txn, st->inums, 0)) ||
	    (rc = mdb_drop(txn, st->irows, 0)) || (rc = mdb_drop(txn, st->iranges, 0)) ||
	    ((rc = mdb_del(txn, st->meta, &nk, NULL)) && rc != MDB_NOTFOUND)) {
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

struct vec { uint64_t *v; size_t n, cap; };

static int vec_grow(struct vec *s, size_t add)
{
	if (s->n + add <= s->cap)
		return 0;
	size_t nc = s->cap ? s->cap * 2 : 1024;
	while (nc < s->n + add)
		nc *= 2;
	uint64_t *nv = realloc(s->v, nc * sizeof *nv);
	if (!nv)
		return md_fail(MD_ENOMEM, "catalog query: out of memory");
	s->v = nv;
	s->cap = nc;
	return 0;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void vec_sort_uniq(struct vec *s)
{
	if (s->n < 2)
		return;
	qsort(s->v, s->n, sizeof *s->v, u64cmp);
	size_t o = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->v[i] != s->v[o - 1])
			s->v[o++] = s->v[i];
	s->n = o;
}

/* a := a ∩ b (both sorted, unique). */
static void vec_and(struct vec *a, const struct vec *b)
{
	size_t i = 0, j = 0, o = 0;
	while (i < a->n && j < b->n) {
		if (a->v[i] == b->v[j]) {
			a->v[o++] = a->v[i];
			i++;
			j++;
		} else if (a->v[i] < b->v[j]) {
			i++;
		} else {
			j++;
		}
	}
	a->n = o;
}

static int vec_has(const struct vec *s, uint64_t x)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->v[mid] == x)
			return 1;
		if (s->v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* All ids under the exact key, or (prefix) under every key starting with
 * it; result sorted and unique. Reads a page of ids at a time. */
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
		rc = mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
		while (rc == 0 && !ret) {
			size_t cnt = v.mv_size / sizeof(uint64_t);
			if (!(ret = vec_grow(out, cnt))) {
				memcpy(out->v + out->n, v.mv_data, cnt * sizeof(uint64_t));
				out->n += cnt;
			}
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE);
		}
		if (rc != MDB_NOTFOUND || !prefix)
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

/* Ids of one range kind with lo <= value <= hi, sorted. */
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
		if (k.mv_size != 17 || p[0] != (unsigned char)kind || rd_be64(p + 1) > hi)
			break;
		if (!(ret = vec_grow(out, 1)))
			out->v[out->n++] = rd_be64(p + 9);
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
	int rc = mdb_cursor_open(txn, st->irows, &c);
	if (rc)
		return store_mdb_err(rc, "catalog index");
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && !ret) {
		uint64_t id;
		if (k.mv_size == sizeof id && !(ret = vec_grow(out, 1))) {
			memcpy(&id, k.mv_data, sizeof id);
			out->v[out->n++] = id;
		}
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

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t l = al < bl ? al : bl;
	int c = memcmp(a, b, l);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
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
	return keycmp(a->key, a->klen, b->key, b->klen);
}

struct fetch {
	struct store *st;
	MDB_txn *txn;
	const struct index_query *q;
	uint64_t lo, hi;
	struct qwords *qw;
	struct vec *names;
	struct index_hit *out;
	size_t *no;
};

/* Apply the range filters to one record (struct index_num + row) of
 * index_rows and append a hit. */
static int fetch_rec(struct fetch *f, const MDB_val *k, const MDB_val *v)
{
	const struct index_query *q = f->q;
	struct index_num num;
	if (v->mv_size < sizeof num)
		return 0;
	memcpy(&num, v->mv_data, sizeof num);
	if ((q->has_min || q->has_max) &&
	    (!(num.flags & INDEX_HAS_PARAMS) || num.params < f->lo || num.params > f->hi))
		return 0;
	if (q->has_mem && (!(num.flags & INDEX_HAS_MEM) || num.mem > q->max_mem))
		return 0;
	struct index_hit *h = &f->out[(*f->no)++];
	h->key = k->mv_data;
	h->klen = k->mv_size;
	h->row = (const char *)v->mv_data + sizeof num;
	h->rowlen = v->mv_size - sizeof num;
	h->num = num;
	h->score = 0;
	for (size_t w = 0; w < f->qw->n; w++)
		h->score += vec_has(&f->names[w], num.id);
	return 0;
}

/* One candidate by id: id -> key -> record. */
static int fetch_one(struct fetch *f, uint64_t id)
{
	MDB_val k = { sizeof id, &id }, key, v;
	int r = mdb_get(f->txn, f->st->irows, &k, &key);
	if (!r)
		r = mdb_get(f->txn, f->st->inums, &key, &v);
	if (r == MDB_NOTFOUND)
		return 0; /* index drift: index_ensure rebuilds at start-up */
	if (r)
		return store_mdb_err(r, "catalog index");
	return fetch_rec(f, &key, &v);
}

/* Many candidates: walk index_rows (name order, sequential) testing each
 * id against a bitmap of the candidates, instead of one random lookup per
 * candidate and a sort by name (~60 ms for 100,000 keys). */
static int name_walk(struct fetch *f, struct vec *cand)
{
	uint64_t maxid = cand->v[cand->n - 1]; /* sorted */
	unsigned char *in = calloc(1, (size_t)(maxid / 8 + 1));
	if (!in)
		return md_fail(MD_ENOMEM, "catalog query: out of memory");
	for (size_t i = 0; i < cand->n; i++)
		in[cand->v[i] / 8] |= (unsigned char)(1u << (cand->v[i] % 8));
	MDB_cursor *c;
	int rc = mdb_cursor_open(f->txn, f->st->inums, &c);
	if (rc) {
		free(in);
		return store_mdb_err(rc, "catalog index");
	}
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && !ret) {
		struct index_num num;
		if (v.mv_size >= sizeof num) {
			memcpy(&num, v.mv_data, sizeof num);
			if (num.id <= maxid && (in[num.id / 8] & (1u << (num.id % 8))))
				ret = fetch_rec(f, &k, &v);
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	free(in);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog index");
	return ret;
}

/* Hits in name order -> the same, stably grouped by score (highest first). */
static int by_score(struct index_hit *h, size_t n, int maxscore)
{
	struct index_hit *t = malloc(n * sizeof *t);
	if (!t)
		return md_fail(MD_ENOMEM, "catalog query: out of memory");
	size_t o = 0;
	for (int sc = maxscore; sc >= 0; sc--)
		for (size_t i = 0; i < n; i++)
			if (h[i].score == sc)
				t[o++] = h[i];
	memcpy(h, t, o * sizeof *t);
	free(t);
	return 0;
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
		index_words(q->text, strlen(q->text), 1, add_qword, &qw);
		if (!qw.n)
			rc = md_fail(MD_EINVAL, "search '%.100s': no word of 1 to 40 letters or digits",
				     q->text);
		for (size_t i = 0; i < qw.n && !rc; i++) {
			struct vec *dst = have ? &tmp : &cand;
			/* a word or the start of one; a one-letter word only as
			 * itself (its prefix would run into the expansion cap) */
			int prefix = qw.w[i][1] != 0;
			tmp.n = 0;
			if ((rc = idx_set(st, txn, "w", qw.w[i], prefix, dst)))
				break;
			if (have)
				vec_and(&cand, &tmp);
			have = 1;
			rc = idx_set(st, txn, "n", qw.w[i], prefix, &names[i]);
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
	struct fetch f = { st, txn, q, lo, hi, &qw, names, out, &no };
	if (!rc && cand.n > INDEX_ORDERED_WALK) {
		rc = name_walk(&f, &cand);
		if (!rc && q->text)
			rc = by_score(out, no, (int)qw.n);
		else if (!rc && q->sort != INDEX_SORT_NAME && no > 1) {
			int kind = q->sort;
			qsort_r(out, no, sizeof *out, hitcmp, &kind);
		}
	} else {
		for (size_t i = 0; i < cand.n && !rc; i++)
			rc = fetch_one(&f, cand.v[i]);
		if (!rc && no > 1) {
			int kind = q->sort;
			qsort_r(out, no, sizeof *out, hitcmp, &kind);
		}
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
