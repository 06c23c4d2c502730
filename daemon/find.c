/* daemon/find.c — see find.h. */
#include "daemon/find.h"
#include "daemon/describe.h"
#include "daemon/jobs.h"
#include "daemon/server.h"
#include "registry/catalog.h"
#include "registry/index.h"
#include "sources/hubsearch.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/units.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIND_FRAME (4u << 20)   /* bytes of summaries per reply frame */

/* ---- size classes and memory -------------------------------------------- */

static size_t thresholds(struct daemon *d, uint64_t t[UNITS_MAX_CLASSES])
{
	size_t n = 0;
	if (!d->cfg->size_classes || units_parse_thresholds(d->cfg->size_classes, t, &n))
		units_parse_thresholds(UNITS_DEFAULT_CLASSES, t, &n);
	return n;
}

/* Tier i (0: below t[0]) name: "small", "100m-1b", ..., "100b+". */
static void tier_name(const uint64_t *t, size_t n, size_t i, char *out, size_t len)
{
	char a[24], b[24];
	if (i == 0) {
		snprintf(out, len, "small");
		return;
	}
	units_class_part(t[i - 1], a, sizeof a);
	if (i == n) {
		snprintf(out, len, "%s+", a);
		return;
	}
	units_class_part(t[i], b, sizeof b);
	snprintf(out, len, "%s-%s", a, b);
}

static size_t tier_of(const uint64_t *t, size_t n, uint64_t params)
{
	size_t i = 0;
	while (i < n && params >= t[i])
		i++;
	return i;
}

/* --size NAME -> [lo, hi] inclusive. */
static int size_range(struct daemon *d, const char *name, uint64_t *lo, uint64_t *hi)
{
	uint64_t t[UNITS_MAX_CLASSES];
	size_t n = thresholds(d, t);
	if (!strcasecmp(name, "small")) {
		*lo = 0;
		*hi = t[0] - 1;
		return 0;
	}
	if (!strcasecmp(name, "large")) {
		*lo = t[0];
		*hi = UINT64_MAX;
		return 0;
	}
	char names[512] = "small, large";
	for (size_t i = 1; i <= n; i++) {
		char tn[64];
		tier_name(t, n, i, tn, sizeof tn);
		if (!strcasecmp(name, tn)) {
			*lo = t[i - 1];
			*hi = i == n ? UINT64_MAX : t[i] - 1;
			return 0;
		}
		size_t l = strlen(names);
		snprintf(names + l, sizeof names - l, ", %s", tn);
	}
	return md_fail(MD_EINVAL, "size class '%.64s': want one of %s", name, names);
}

static json_t *memory_of(json_t *facts)
{
	json_t *p = json_object_get(facts, "parameters");
	if (!json_is_integer(p) || json_integer_value(p) < 0)
		return json_null();
	json_int_t n = json_integer_value(p), stored = 0;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(facts, "dtype_bytes"), k, v)
		if (json_is_integer(v) && json_integer_value(v) > 0)
			stored += json_integer_value(v);
	json_t *m = json_pack("{s:I,s:I,s:I,s:I,s:I}", "fp32", n * 4, "fp16", n * 2, "bf16", n * 2,
			      "int8", n, "int4", (n + 1) / 2);
	if (!m)
		return json_null();
	if (stored) {
		json_object_set_new(m, "stored", json_integer(stored));
	} else {
		json_object_set_new(m, "stored", json_integer(n * 2));
		json_object_set_new(m, "estimated", json_true()); /* no bytes per dtype: 16-bit assumed */
	}
	return m;
}

void find_public_facts(struct daemon *d, json_t *o)
{
	json_t *f = json_object_get(o, "facts");
	json_t *p = json_object_get(f, "parameters");
	if (json_is_integer(p) && json_integer_value(p) >= 0) {
		uint64_t t[UNITS_MAX_CLASSES];
		size_t n = thresholds(d, t), i = tier_of(t, n, (uint64_t)json_integer_value(p));
		char tn[64];
		tier_name(t, n, i, tn, sizeof tn);
		json_object_set(o, "parameters", p);
		json_object_set_new(o, "size_class", json_string(i ? "large" : "small"));
		json_object_set_new(o, "size_tier", json_string(tn));
	} else {
		json_object_set_new(o, "parameters", json_null());
		json_object_set_new(o, "size_class", json_null());
		json_object_set_new(o, "size_tier", json_null());
	}
	json_object_set_new(o, "memory", memory_of(f));
	static const char *const keys[] = { "architecture", "context_length", "hidden_size",
					    "num_layers", "num_heads", "vocab_size", "task",
					    "provider", "library", "languages", "datasets",
					    "base_model", "benchmarks", "dtype_bytes", NULL };
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(f, keys[i]);
		json_object_set(o, keys[i], v ? v : json_null());
	}
	const char *lic = index_license(o);
	json_object_set_new(o, "license_id", json_string(lic ? lic : "NOASSERTION"));
}

/* ---- query arguments ----------------------------------------------------- */

static int str_opt(json_t *req, const char *k, const char **out)
{
	json_t *v = json_object_get(req, k);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) > INDEX_MAX_VALUE)
		return md_fail(MD_EINVAL, "%s: want a string of 1..%d bytes", k, INDEX_MAX_VALUE);
	*out = s;
	return 0;
}

static int num_opt(json_t *req, const char *k, int *has, uint64_t *out)
{
	json_t *v = json_object_get(req, k);
	*has = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return md_fail(MD_EINVAL, "%s: want a non-negative integer", k);
	*has = 1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int query_args(struct daemon *d, json_t *req, struct index_query *q)
{
	const char *size, *sort;
	int rc, has_fits;
	memset(q, 0, sizeof *q);
	if ((rc = str_opt(req, "task", &q->task)) || (rc = str_opt(req, "provider", &q->provider)) ||
	    (rc = str_opt(req, "license", &q->license)) ||
	    (rc = str_opt(req, "library", &q->library)) || (rc = str_opt(req, "size", &size)) ||
	    (rc = str_opt(req, "sort", &sort)) ||
	    (rc = num_opt(req, "min_params", &q->has_min, &q->min_params)) ||
	    (rc = num_opt(req, "max_params", &q->has_max, &q->max_params)) ||
	    (rc = num_opt(req, "fits", &has_fits, &q->max_mem)))
		return rc;
	q->has_mem = has_fits;
	if (q->has_min && q->has_max && q->min_params > q->max_params)
		return md_fail(MD_EINVAL, "--min-params %llu is above --max-params %llu",
			       (unsigned long long)q->min_params, (unsigned long long)q->max_params);
	if (size) {
		uint64_t lo, hi;
		if ((rc = size_range(d, size, &lo, &hi)))
			return rc;
		if (!q->has_min || lo > q->min_params)
			q->min_params = lo;
		if (!q->has_max || hi < q->max_params)
			q->max_params = hi;
		q->has_min = q->has_max = 1;
	}
	static const char *const sorts[] = { "name", "params", "size", "imported" };
	q->sort = INDEX_SORT_NAME;
	if (sort) {
		size_t i;
		for (i = 0; i < 4 && strcmp(sort, sorts[i]); i++)
			;
		if (i == 4)
			return md_fail(MD_EINVAL, "sort '%.32s': want name, params, size or imported", sort);
		q->sort = (int)i;
	}
	return 0;
}

/* ---- find ----------------------------------------------------------------- */

struct emit { struct daemon *d; uint64_t conn; char *buf; size_t len; };

static void emit_flush(struct emit *e)
{
	e->buf[e->len++] = ']';
	server_post_raw(e->d->srv, e->conn, "{\"partial\":", e->buf, e->len, "}", 0);
	e->len = 0;
}

int find_op_find(struct daemon *d, struct ops_peer *p, json_t *req)
{
	double t0 = util_mono();
	struct index_query q;
	int rc = query_args(d, req, &q);
	if (rc)
		return rc;
	MDB_txn *txn;
	if ((rc = store_txn(d->st, 0, &txn)))
		return rc;
	struct index_hit *hits = NULL;
	size_t n = 0;
	struct emit e = { d, p->conn_id, malloc(FIND_FRAME + 2), 0 };
	if (!e.buf)
		rc = MD_ENOMEM;
	if (!rc)
		rc = index_query(d->st, txn, &q, &hits, &n);
	size_t count = 0;
	for (size_t i = 0; i < n && !rc; i++) { /* rows straight from the index */
		if (hits[i].rowlen + 2 > FIND_FRAME)
			continue;
		if (e.len + hits[i].rowlen + 2 > FIND_FRAME)
			emit_flush(&e);
		char sep = e.len == 0 ? '[' : ',';
		e.buf[e.len++] = sep;
		memcpy(e.buf + e.len, hits[i].row, hits[i].rowlen);
		e.len += hits[i].rowlen;
		count++;
	}
	mdb_txn_abort(txn);
	free(hits);
	if (!rc) {
		if (e.len == 0)
			e.buf[e.len++] = '[';
		e.buf[e.len++] = ']';
		double ms = (util_mono() - t0) * 1000.0;
		char suf[96];
		snprintf(suf, sizeof suf, ",\"count\":%zu,\"elapsed_ms\":%.3f}", count, ms);
		server_post_raw(d->srv, p->conn_id, "{\"ok\":true,\"result\":", e.buf, e.len, suf, 1);
		log_debug("find: %zu results in %.3f ms", count, ms);
	}
	free(e.buf);
	return rc;
}

/* ---- search ----------------------------------------------------------------- */

static void reply_timed(struct daemon *d, uint64_t conn, json_t *res, double t0)
{
	char *s = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	if (!s) {
		server_reply_err(d->srv, conn, MD_ENOMEM, NULL);
		return;
	}
	double ms = (util_mono() - t0) * 1000.0;
	char suf[64];
	snprintf(suf, sizeof suf, ",\"elapsed_ms\":%.3f}", ms);
	server_post_raw(d->srv, conn, "{\"ok\":true,\"result\":", s, strlen(s), suf, 1);
	log_debug("search: %.3f ms", ms);
	free(s);
}

static int limit_arg(json_t *req, size_t def, size_t max, size_t *out)
{
	json_t *v = json_object_get(req, "limit");
	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (json_int_t)max)
		return md_fail(MD_EINVAL, "limit: want 1..%zu", max);
	*out = (size_t)json_integer_value(v);
	return 0;
}

static int hub_job(struct daemon *d, struct job *j, json_t **res)
{
	json_t *a = j->args;
	double t0 = util_mono();
	struct index_query q;
	struct hubsearch_req r = { 0 };
	size_t limit, nf = 0;
	char lic[INDEX_MAX_VALUE + 16];
	int rc = query_args(d, a, &q);
	if (!rc)
		rc = limit_arg(a, 20, HUBSEARCH_MAX_LIMIT, &limit);
	if (rc)
		return rc;
	r.hub = json_string_value(json_object_get(a, "hub"));
	r.search = json_string_value(json_object_get(a, "query"));
	r.author = q.provider;
	if (q.task)
		r.filter[nf++] = q.task;
	if (q.library)
		r.filter[nf++] = q.library;
	if (q.license) {
		snprintf(lic, sizeof lic, "license:%s", q.license);
		r.filter[nf++] = lic;
	}
	const char *sort = json_string_value(json_object_get(a, "hub_sort"));
	if (sort && (strlen(sort) > 64 || strspn(sort, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(sort)))
		return md_fail(MD_EINVAL, "hub sort '%.64s': want a field name such as downloads", sort);
	r.sort = sort ? sort : q.sort == INDEX_SORT_IMPORTED ? "lastModified" : NULL;
	r.limit = limit;
	json_t *list;
	int pages;
	if ((rc = md_lib_need(MD_LIB_CURL, "search")) || (rc = hubsearch_query(&r, &list, &pages)))
		return rc;
	MDB_txn *txn = NULL;
	store_txn(d->st, 0, &txn);
	json_t *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		json_t *pp = json_object_get(e, "parameters");
		if (q.has_min || q.has_max) { /* the hub's count, when it gives one */
			if (!json_is_integer(pp))
				continue;
			uint64_t v = (uint64_t)json_integer_value(pp);
			if ((q.has_min && v < q.min_params) || (q.has_max && v > q.max_params))
				continue;
		}
		if (q.has_mem && (!json_is_integer(pp) || (uint64_t)json_integer_value(pp) * 2 > q.max_mem))
			continue;
		const char *id = json_string_value(json_object_get(e, "id"));
		int stored = txn && util_check_model_name(id) == 0 && catalog_has_model(d->st, txn, id);
		json_object_set_new(e, "stored", json_boolean(stored));
		json_array_append(out, e);
	}
	if (txn)
		mdb_txn_abort(txn);
	json_decref(list);
	char shown[2048]; /* the hub without user info: a password is never echoed */
	if (util_url_strip_userinfo(r.hub, shown, sizeof shown, NULL) < 0)
		snprintf(shown, sizeof shown, "(hub)");
	*res = json_pack("{s:s,s:i,s:o,s:f}", "hub", shown, "pages", pages, "results", out,
			 "elapsed_ms", (util_mono() - t0) * 1000.0);
	return *res ? 0 : MD_ENOMEM;
}

int find_op_search(struct daemon *d, struct ops_peer *p, json_t *req)
{
	double t0 = util_mono();
	const char *text = json_string_value(json_object_get(req, "query"));
	if (!text || strlen(text) > 1024)
		return md_fail(MD_EINVAL, "search: want a query string of at most 1024 bytes");
	if (json_object_get(req, "hub")) {
		const char *hub = json_string_value(json_object_get(req, "hub"));
		const char *why = util_hub_url_problem(hub);
		if (why)
			return md_fail(MD_EINVAL, "hub: %s", why);
		/* the daemon makes the request: readers may only point it at the
		 * configured hub, so the socket is no HTTP proxy for them */
		char shown[2048], cfgshown[2048] = "(none)"; /* without user info */
		if (util_url_strip_userinfo(hub, shown, sizeof shown, NULL) < 0)
			return md_fail(MD_EINVAL, "hub: URL too long");
		if (d->cfg->hub &&
		    util_url_strip_userinfo(d->cfg->hub, cfgshown, sizeof cfgshown, NULL) < 0)
			snprintf(cfgshown, sizeof cfgshown, "(too long)");
		if (!p->can_write && (!d->cfg->hub || strcmp(hub, d->cfg->hub)))
			return md_fail(MD_EPERM, "permission denied: searching %.200s needs the daemon's "
						 "user or root (others may search the configured hub %s)",
				       shown, cfgshown);
		struct job *j = jobs_new("search", shown, json_incref(req), NULL, 0, p->conn_id, p->uid,
					 hub_job);
		if (!j)
			return MD_ENOMEM;
		jobs_submit(d->jobs, j);
		return 0;
	}
	struct index_query q;
	size_t limit;
	int rc = query_args(d, req, &q);
	if (!rc)
		rc = limit_arg(req, 20, FIND_MAX_LIMIT, &limit);
	if (rc)
		return rc;
	q.text = text;
	MDB_txn *txn;
	if ((rc = store_txn(d->st, 0, &txn)))
		return rc;
	struct index_hit *hits = NULL;
	size_t n = 0;
	json_t *out = json_array();
	if (!out)
		rc = MD_ENOMEM;
	if (!rc)
		rc = index_query(d->st, txn, &q, &hits, &n);
	for (size_t i = 0; i < n && !rc && json_array_size(out) < limit; i++) {
		json_t *m = json_loadb(hits[i].row, hits[i].rowlen, 0, NULL);
		if (!json_is_object(m)) {
			json_decref(m);
			continue;
		}
		json_object_set_new(m, "score", json_integer(hits[i].score));
		json_array_append_new(out, m);
	}
	mdb_txn_abort(txn);
	free(hits);
	if (rc) {
		json_decref(out);
		return rc;
	}
	json_t *res = json_pack("{s:o,s:I}", "results", out, "matches", (json_int_t)n);
	if (!res)
		return MD_ENOMEM;
	reply_timed(d, p->conn_id, res, t0);
	return 0;
}

/* ---- compare ---------------------------------------------------------------- */

static const char *bstr(json_t *b, const char *k)
{
	const char *s = json_string_value(json_object_get(b, k));
	return s ? s : "";
}

int find_op_compare(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	json_t *refs = json_object_get(req, "refs");
	(void)p;
	if (!json_is_array(refs) || json_array_size(refs) < 2 ||
	    json_array_size(refs) > FIND_MAX_COMPARE)
		return md_fail(MD_EINVAL, "compare: want 2 to %d model references", FIND_MAX_COMPARE);
	MDB_txn *txn;
	int rc = store_txn(d->st, 0, &txn);
	if (rc)
		return rc;
	size_t nm = json_array_size(refs), i;
	json_t *models = json_array(), *rows = json_array(), *rowkeys = json_object();
	json_t *r;
	json_array_foreach(refs, i, r) {
		char *name = NULL, *want = NULL, rev[CATALOG_REV_LEN + 1];
		json_t *m = NULL;
		const char *ref = json_string_value(r);
		rc = ref ? util_parse_modelref(ref, &name, &want)
			 : md_fail(MD_EINVAL, "compare: references must be strings");
		if (!rc && !(rc = catalog_resolve(d->st, txn, name, want, rev)))
			rc = catalog_get_rev(d->st, txn, name, rev, &m);
		free(name);
		free(want);
		if (rc)
			break;
		json_t *o = json_pack("{s:O,s:O,s:O}", "name", json_object_get(m, "name"), "revision",
				      json_object_get(m, "revision"), "facts",
				      json_object_get(m, "facts") ? json_object_get(m, "facts")
								  : json_object());
		json_object_set(o, "license", json_object_get(m, "license"));
		find_public_facts(d, o);
		json_t *lic = json_object_get(m, "license");
		json_object_set_new(o, "verdict", json_incref(json_object_get(lic, "verdict")
							      ? json_object_get(lic, "verdict")
							      : json_null()));
		json_object_set(o, "total_size", json_object_get(m, "total_size"));
		size_t k;
		json_t *b;
		json_array_foreach(json_object_get(o, "benchmarks"), k, b) {
			/* one row per (task, dataset and its config, metric), matched
			 * without regard to ASCII case: "MMLU" and "mmlu" are one
			 * dataset, glue/sst2 and glue/mnli are two */
			char key[1024];
			snprintf(key, sizeof key, "%s\x1f%s\x1f%s\x1f%s", bstr(b, "task"),
				 bstr(b, "dataset"), bstr(b, "dataset_config"), bstr(b, "metric"));
			for (char *c = key; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			json_t *row = json_object_get(rowkeys, key);
			if (!row) {
				json_t *vals = json_array();
				for (size_t z = 0; z < nm; z++)
					json_array_append_new(vals, json_null());
				row = json_pack("{s:s,s:s,s:s,s:o}", "task", bstr(b, "task"), "dataset",
						bstr(b, "dataset"), "metric", bstr(b, "metric"), "values", vals);
				if (row && *bstr(b, "dataset_config"))
					json_object_set_new(row, "config",
							    json_string(bstr(b, "dataset_config")));
				json_object_set_new(rowkeys, key, row);
				json_array_append(rows, row);
			}
			json_t *vals = json_object_get(row, "values");
			if (json_is_null(json_array_get(vals, i))) /* the first value a card gives */
				json_array_set(vals, i, json_object_get(b, "value"));
		}
		json_object_del(o, "facts");
		json_object_del(o, "license");
		json_array_append_new(models, o);
		json_decref(m);
	}
	mdb_txn_abort(txn);
	json_decref(rowkeys);
	if (rc) {
		json_decref(models);
		json_decref(rows);
		return rc;
	}
	*res = json_pack("{s:o,s:o}", "models", models, "benchmarks", rows);
	return *res ? 0 : MD_ENOMEM;
}

/* ---- bench_put (benchmarks only) ------------------------------------------- */

int find_op_bench_put(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)p;
	const char *env = getenv("MODELD_BENCH_OPS");
	if (!env || strcmp(env, "1"))
		return md_fail(MD_EPERM, "bench_put is for benchmarks: start modeld with "
					 "MODELD_BENCH_OPS=1");
	json_t *ms = json_object_get(req, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) > FIND_MAX_BENCH_PUT)
		return md_fail(MD_EINVAL, "bench_put: want at most %d manifests", FIND_MAX_BENCH_PUT);
	MDB_txn *txn;
	int rc = store_txn(d->st, 1, &txn);
	if (rc)
		return rc;
	size_t i, added = 0;
	json_t *m;
	char now[32];
	util_now_iso(now, sizeof now);
	json_array_foreach(ms, i, m) {
		const char *name = json_string_value(json_object_get(m, "name"));
		if (!json_is_object(m) || !name || (rc = util_check_model_name(name)))
			rc = rc ? rc : md_fail(MD_EINVAL, "bench_put: manifest %zu without a name", i);
		if (rc)
			break;
		json_t *c = json_deep_copy(m);
		json_object_set_new(c, "files", json_array()); /* no blobs: nothing to count */
		/* as an import records it: not described again at the next start */
		json_object_set_new(c, "described", json_integer(DESCRIBE_VERSION));
		if (!json_object_get(c, "imported_at"))
			json_object_set_new(c, "imported_at", json_string(now));
		int existed;
		rc = catalog_put_rev(d->st, txn, c, "main", &existed);
		json_decref(c);
		if (rc)
			break;
		added += !existed;
	}
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = store_commit(txn)))
		return rc;
	*res = json_pack("{s:I}", "added", (json_int_t)added);
	return 0;
}
