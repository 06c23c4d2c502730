/* registry/catalog.c — see catalog.h. */
#include "registry/catalog.h"
#include "registry/index.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>

#define CATALOG_SUMMARY_VERSION 4  /* bump when summary_refresh changes shape */
#include <stdlib.h>
#include <string.h>

/* name \0 suffix; returns the key length or 0 when too long. */
static size_t mkkey(char *buf, size_t n, const char *name, const char *suffix)
{
	size_t a = strlen(name), b = strlen(suffix);
	if (a + 1 + b > n || a + 1 + b > 511) /* LMDB's default max key size */
		return 0;
	memcpy(buf, name, a);
	buf[a] = 0;
	memcpy(buf + a + 1, suffix, b);
	return a + 1 + b;
}

static int parse_val(const MDB_val *v, const char *what, json_t **out)
{
	json_error_t e;
	if (v->mv_size > CATALOG_MAX_VALUE)
		return md_fail(MD_ECORRUPT, "%s: record too large", what);
	*out = json_loadb(v->mv_data, v->mv_size, 0, &e);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return md_fail(MD_ECORRUPT, "%s: unreadable record: %s", what, e.text);
	}
	return 0;
}

static int put_json(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, json_t *val)
{
	char *s = json_dumps(val, JSON_COMPACT);
	if (!s)
		return MD_ENOMEM;
	MDB_val k = { klen, (void *)key }, v = { strlen(s), s };
	int rc = mdb_put(txn, dbi, &k, &v, 0);
	free(s);
	return rc ? store_mdb_err(rc, "catalog write") : 0;
}

int catalog_get_rev(struct store *st, MDB_txn *txn, const char *name,
		    const char *rev, json_t **out)
{
	char kb[512];
	size_t kl = mkkey(kb, sizeof kb, name, rev);
	MDB_val k = { kl, kb }, v;
	*out = NULL;
	if (!kl)
		return md_fail(MD_ENOENT, "%s@%s: no such revision", name, rev);
	int rc = mdb_get(txn, st->revs, &k, &v);
	if (rc == MDB_NOTFOUND)
		return md_fail(MD_ENOENT, "%s@%s: no such revision", name, rev);
	if (rc)
		return store_mdb_err(rc, name);
	return parse_val(&v, name, out);
}

static int get_ref(struct store *st, MDB_txn *txn, const char *name, const char *ref,
		   char rev[CATALOG_REV_LEN + 1])
{
	char kb[512];
	size_t kl = mkkey(kb, sizeof kb, name, ref);
	MDB_val k = { kl, kb }, v;
	if (!kl)
		return MD_ENOENT;
	int rc = mdb_get(txn, st->refs, &k, &v);
	if (rc == MDB_NOTFOUND)
		return MD_ENOENT;
	if (rc)
		return store_mdb_err(rc, name);
	json_t *j;
	if ((rc = parse_val(&v, name, &j)))
		return rc;
	const char *r = json_string_value(json_object_get(j, "rev"));
	if (!r || !util_is_hex(r, CATALOG_REV_LEN)) {
		json_decref(j);
		return md_fail(MD_ECORRUPT, "%s@%s: bad ref record", name, ref);
	}
	memcpy(rev, r, CATALOG_REV_LEN + 1);
	json_decref(j);
	return 0;
}

/* Scan the revisions of name; for each call visit(rev, value). */
typedef int scan_fn(const char *rev, const MDB_val *v, void *arg);

static int scan_revs(struct store *st, MDB_txn *txn, const char *name, scan_fn *fn, void *arg)
{
	MDB_cursor *c;
	char kb[512];
	size_t nl = strlen(name);
	size_t kl = mkkey(kb, sizeof kb, name, "");
	if (!kl)
		return 0;
	int rc = mdb_cursor_open(txn, st->revs, &c);
	if (rc)
		return store_mdb_err(rc, "catalog cursor");
	MDB_val k = { kl, kb }, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	int ret = 0;
	while (rc == 0) {
		if (k.mv_size <= nl + 1 || memcmp(k.mv_data, name, nl) || ((char *)k.mv_data)[nl])
			break;
		char rev[CATALOG_REV_LEN + 1];
		size_t rl = k.mv_size - nl - 1;
		if (rl == CATALOG_REV_LEN) {
			memcpy(rev, (char *)k.mv_data + nl + 1, rl);
			rev[rl] = 0;
			if ((ret = fn(rev, &v, arg)))
				break;
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "catalog cursor");
	return ret;
}

struct latest { char rev[CATALOG_REV_LEN + 1]; char when[32]; const char *prefix; int count; };

static int pick_latest(const char *rev, const MDB_val *v, void *arg)
{
	struct latest *l = arg;
	json_t *j;
	if (parse_val(v, rev, &j))
		return 0;
	const char *w = json_string_value(json_object_get(j, "imported_at"));
	if (w && strcmp(w, l->when) >= 0) {
		snprintf(l->when, sizeof l->when, "%s", w);
		memcpy(l->rev, rev, sizeof l->rev);
		l->count++;
	}
	json_decref(j);
	return 0;
}

static int pick_prefix(const char *rev, const MDB_val *v, void *arg)
{
	struct latest *l = arg;
	(void)v;
	if (!strncmp(rev, l->prefix, strlen(l->prefix))) {
		memcpy(l->rev, rev, sizeof l->rev);
		l->count++;
	}
	return 0;
}

int catalog_resolve(struct store *st, MDB_txn *txn, const char *name,
		    const char *want, char rev[CATALOG_REV_LEN + 1])
{
	int rc;
	if (!want) {
		if ((rc = get_ref(st, txn, name, "main", rev)) != MD_ENOENT)
			return rc;
		struct latest l = { .count = 0 };
		if ((rc = scan_revs(st, txn, name, pick_latest, &l)))
			return rc;
		if (!l.count)
			return md_fail(MD_ENOENT, "%s: no such model", name);
		memcpy(rev, l.rev, sizeof l.rev);
		return 0;
	}
	if (util_is_hex(want, CATALOG_REV_LEN)) {
		json_t *m;
		if ((rc = catalog_get_rev(st, txn, name, want, &m)))
			return rc;
		json_decref(m);
		memcpy(rev, want, CATALOG_REV_LEN + 1);
		return 0;
	}
	if ((rc = get_ref(st, txn, name, want, rev)) != MD_ENOENT)
		return rc;
	size_t wl = strlen(want);
	if (wl >= 7 && wl < CATALOG_REV_LEN && util_is_hex(want, wl)) {
		struct latest l = { .prefix = want };
		if ((rc = scan_revs(st, txn, name, pick_prefix, &l)))
			return rc;
		if (l.count == 1) {
			memcpy(rev, l.rev, sizeof l.rev);
			return 0;
		}
		if (l.count > 1)
			return md_fail(MD_EINVAL, "%s@%s: ambiguous revision prefix", name, want);
	}
	if (!catalog_has_model(st, txn, name))
		return md_fail(MD_ENOENT, "%s: no such model", name);
	return md_fail(MD_ENOENT, "%s@%s: no such revision", name, want);
}

int catalog_origin(struct store *st, MDB_txn *txn, const char *sha256, json_t **out)
{
	uint8_t key[32];
	struct store_blobrec rec;
	*out = NULL;
	if (!sha256 || !util_is_hex(sha256, 64) || util_unhex(sha256, key, 32))
		return MD_ENOENT;
	/* a plain blob */
	if (store_blob_get(st, txn, sha256, &rec) == 0) {
		*out = json_pack("{s:I,s:s,s:s}", "size", (json_int_t)rec.size, "sha256", sha256,
				 "blob", sha256);
		return *out ? 0 : MD_ENOMEM;
	}
	MDB_val k = { 32, key }, v;
	json_t *o;
	if (mdb_get(txn, st->origins, &k, &v) || parse_val(&v, "origin", &o))
		return MD_ENOENT;
	const char *hx[STORE_ENTRY_MAX_BLOBS];
	size_t n = store_entry_blobs(o, hx, NULL, STORE_ENTRY_MAX_BLOBS);
	for (size_t i = 0; i < n; i++)
		if (store_blob_get(st, txn, hx[i], &rec)) {
			json_decref(o);
			return MD_ENOENT; /* its blobs were removed since */
		}
	*out = o;
	return 0;
}

int catalog_has_model(struct store *st, MDB_txn *txn, const char *name)
{
	MDB_val k = { strlen(name), (void *)name }, v;
	return mdb_get(txn, st->models, &k, &v) == 0;
}

/* Rebuild the summary record of name@rev from its manifest and refs, or
 * delete it when the revision is gone. */
static int summary_refresh(struct store *st, MDB_txn *txn, const char *name, const char *rev)
{
	char kb[512];
	size_t kl = mkkey(kb, sizeof kb, name, rev);
	json_t *m;
	int rc = catalog_get_rev(st, txn, name, rev, &m);
	if (rc == MD_ENOENT) {
		MDB_val k = { kl, kb };
		rc = mdb_del(txn, st->sums, &k, NULL);
		return rc && rc != MDB_NOTFOUND ? store_mdb_err(rc, name) : 0;
	}
	if (rc)
		return rc;
	json_object_set_new(m, "file_count",
			    json_integer((json_int_t)json_array_size(json_object_get(m, "files"))));
	json_object_del(m, "files");
	json_object_del(m, "card"); /* the whole card stays in the manifest (show) */
	json_object_del(m, "provenance"); /* per-file lists: show has them */
	json_object_del(m, "v");
	/* list rows stay small: the license's headline and the scalar facts */
	json_t *lic = json_object_get(m, "license");
	if (json_is_object(lic)) {
		json_t *det = json_object_get(lic, "detected");
		json_t *slim = json_pack("{s:O,s:O,s:O,s:O}",
			"declared", json_object_get(lic, "declared") ? json_object_get(lic, "declared") : json_null(),
			"spdx", json_object_get(lic, "spdx") ? json_object_get(lic, "spdx") : json_null(),
			"detected", json_is_true(json_object_get(det, "matched")) ? json_object_get(det, "id") : json_null(),
			"verdict", json_object_get(lic, "verdict") ? json_object_get(lic, "verdict") : json_null());
		json_object_set_new(m, "license", slim);
	}
	json_t *facts = json_object_get(m, "facts");
	if (json_is_object(facts)) {
		const char *k;
		json_t *v, *slim = json_object();
		json_object_foreach(facts, k, v)
			if (!json_is_array(v) && !json_is_object(v) && !json_is_null(v))
				json_object_set(slim, k, v);
		json_object_set_new(m, "facts", slim);
	}
	json_t *refs = catalog_refs_to(st, txn, name, rev);
	json_object_set_new(m, "refs", refs ? refs : json_array());
	rc = put_json(txn, st->sums, kb, kl, m);
	json_decref(m);
	return rc;
}

/* Release one reference per blob the files of manifest m name; the hex of
 * each whose last reference went is appended to freed (may be NULL). */
static int unref_files(struct store *st, MDB_txn *txn, json_t *m, json_t *freed)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *hx[STORE_ENTRY_MAX_BLOBS];
		size_t n = store_entry_blobs(f, hx, NULL, STORE_ENTRY_MAX_BLOBS);
		for (size_t j = 0; j < n; j++) {
			int was_last, rc = store_blob_unref(st, txn, hx[j], &was_last);
			if (rc)
				return rc;
			if (was_last && freed)
				json_array_append_new(freed, json_string(hx[j]));
		}
	}
	return 0;
}


static int put_rev(struct store *st, MDB_txn *txn, json_t *m, const char *ref, int *existed,
		   int replace)
{
	const char *name = json_string_value(json_object_get(m, "name"));
	const char *rev = json_string_value(json_object_get(m, "revision"));
	char kb[512];
	int rc;
	*existed = 0;
	if (!name || !rev || !util_is_hex(rev, CATALOG_REV_LEN))
		return md_fail(MD_EINVAL, "manifest without name or revision");
	size_t kl = mkkey(kb, sizeof kb, name, rev);
	if (!kl)
		return md_fail(MD_EINVAL, "%s: name too long", name);
	MDB_val k = { kl, kb }, v;
	json_t *old_m = NULL;
	rc = mdb_get(txn, st->revs, &k, &v);
	if (rc == 0 && replace) {
		if ((rc = catalog_get_rev(st, txn, name, rev, &old_m)))
			return rc;
		*existed = 1;
	}
	if (rc == 0 && !replace) {
		*existed = 1;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		return store_mdb_err(rc, name);
	} else {
		size_t i;
		json_t *f;
		/* the new manifest's blobs are referenced before the old one's
		 * are let go, so a blob both name never drops to no reference */
		json_array_foreach(json_object_get(m, "files"), i, f) {
			const char *hx[STORE_ENTRY_MAX_BLOBS];
			uint64_t sz[STORE_ENTRY_MAX_BLOBS];
			size_t n = store_entry_blobs(f, hx, sz, STORE_ENTRY_MAX_BLOBS);
			for (size_t j = 0; j < n; j++)
				if ((rc = store_blob_ref(st, txn, hx[j], sz[j])))
					goto fail;
		}
		if (old_m) {
			if ((rc = unref_files(st, txn, old_m, NULL)) ||
			    (rc = index_del(st, txn, name, rev, old_m)))
				goto fail;
			json_decref(old_m);
			old_m = NULL;
		}
		json_object_set_new(m, "v", json_integer(STORE_SCHEMA));
		if ((rc = put_json(txn, st->revs, kb, kl, m)) ||
		    (rc = index_put(st, txn, name, rev, m)))
			return rc;
		/* remember where each converted original lives (pull dedup) */
		json_array_foreach(json_object_get(m, "files"), i, f) {
			const char *sha = json_string_value(json_object_get(f, "sha256"));
			uint8_t key[32];
			if (!json_object_get(f, "pack") || !sha || util_unhex(sha, key, 32))
				continue;
			json_t *o = json_deep_copy(f);
			json_object_del(o, "path");
			rc = put_json(txn, st->origins, key, 32, o);
			json_decref(o);
			if (rc)
				return rc;
		}
	}
	char old[CATALOG_REV_LEN + 1] = "";
	if (ref) {
		size_t rl = mkkey(kb, sizeof kb, name, ref);
		if (!rl)
			return md_fail(MD_EINVAL, "%s: ref too long", ref);
		if (get_ref(st, txn, name, ref, old))
			old[0] = 0;
		json_t *r = json_pack("{s:i,s:s}", "v", STORE_SCHEMA, "rev", rev);
		rc = put_json(txn, st->refs, kb, rl, r);
		json_decref(r);
		if (rc)
			return rc;
	}
	if ((rc = summary_refresh(st, txn, name, rev)))
		return rc;
	if (old[0] && strcmp(old, rev) && (rc = summary_refresh(st, txn, name, old)))
		return rc;
	/* the model record */
	char now[32];
	util_now_iso(now, sizeof now);
	MDB_val mk = { strlen(name), (void *)name };
	json_t *mod = NULL;
	if (mdb_get(txn, st->models, &mk, &v) == 0)
		parse_val(&v, name, &mod);
	if (!mod)
		mod = json_pack("{s:i,s:s,s:s}", "v", STORE_SCHEMA, "name", name, "created", now);
	json_object_set_new(mod, "updated", json_string(now));
	rc = put_json(txn, st->models, name, strlen(name), mod);
	json_decref(mod);
	return rc;
fail:
	json_decref(old_m);
	return rc;
}

int catalog_put_rev(struct store *st, MDB_txn *txn, json_t *m, const char *ref, int *existed)
{
	return put_rev(st, txn, m, ref, existed, 0);
}

int catalog_replace_rev(struct store *st, MDB_txn *txn, json_t *m, const char *ref, int *existed)
{
	return put_rev(st, txn, m, ref, existed, 1);
}

struct refscan { const char *rev; json_t *out; };

static int del_refs_to(struct store *st, MDB_txn *txn, const char *name, const char *rev,
		       json_t *collect, int del)
{
	MDB_cursor *c;
	char kb[512];
	size_t nl = strlen(name);
	size_t kl = mkkey(kb, sizeof kb, name, "");
	int rc = mdb_cursor_open(txn, st->refs, &c);
	if (rc)
		return store_mdb_err(rc, "catalog cursor");
	MDB_val k = { kl, kb }, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (k.mv_size <= nl + 1 || memcmp(k.mv_data, name, nl) || ((char *)k.mv_data)[nl])
			break;
		json_t *j;
		if (parse_val(&v, name, &j) == 0) {
			const char *r = json_string_value(json_object_get(j, "rev"));
			if (r && !strcmp(r, rev)) {
				if (collect)
					json_array_append_new(collect, json_stringn((char *)k.mv_data + nl + 1,
										    k.mv_size - nl - 1));
				if (del && (rc = mdb_cursor_del(c, 0))) {
					json_decref(j);
					break;
				}
			}
			json_decref(j);
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "catalog refs");
	return 0;
}

json_t *catalog_refs_to(struct store *st, MDB_txn *txn, const char *name, const char *rev)
{
	json_t *a = json_array();
	if (a && del_refs_to(st, txn, name, rev, a, 0)) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static int count_rev(const char *rev, const MDB_val *v, void *arg)
{
	(void)rev;
	(void)v;
	++*(int *)arg;
	return 0;
}

int catalog_del_rev(struct store *st, MDB_txn *txn, const char *name,
		    const char *rev, json_t *freed)
{
	json_t *m;
	int rc = catalog_get_rev(st, txn, name, rev, &m);
	if (rc)
		return rc;
	if ((rc = unref_files(st, txn, m, freed)))
		goto out;
	char kb[512];
	size_t kl = mkkey(kb, sizeof kb, name, rev);
	MDB_val k = { kl, kb };
	if ((rc = mdb_del(txn, st->revs, &k, NULL))) {
		rc = store_mdb_err(rc, name);
		goto out;
	}
	if ((rc = index_del(st, txn, name, rev, m)))
		goto out;
	if ((rc = del_refs_to(st, txn, name, rev, NULL, 1)) ||
	    (rc = summary_refresh(st, txn, name, rev)))
		goto out;
	int left = 0;
	if ((rc = scan_revs(st, txn, name, count_rev, &left)))
		goto out;
	if (!left) {
		MDB_val mk = { strlen(name), (void *)name };
		int r2 = mdb_del(txn, st->models, &mk, NULL);
		if (r2 && r2 != MDB_NOTFOUND)
			rc = store_mdb_err(r2, name);
	}
out:
	json_decref(m);
	return rc;
}

struct each { const char *name; catalog_rev_fn *fn; void *arg; };

static int each_rev(const char *rev, const MDB_val *v, void *arg)
{
	struct each *e = arg;
	json_t *j;
	if (parse_val(v, e->name, &j))
		return 0; /* unreadable records are verify's business */
	int rc = e->fn(e->name, rev, j, e->arg);
	json_decref(j);
	return rc;
}

int catalog_foreach_rev(struct store *st, MDB_txn *txn, const char *name,
			catalog_rev_fn *fn, void *arg)
{
	if (name) {
		struct each e = { name, fn, arg };
		return scan_revs(st, txn, name, each_rev, &e);
	}
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, st->models, &c);
	if (rc)
		return store_mdb_err(rc, "catalog cursor");
	MDB_val k, v;
	int ret = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0) {
		char nm[256];
		if (k.mv_size < sizeof nm) {
			memcpy(nm, k.mv_data, k.mv_size);
			nm[k.mv_size] = 0;
			struct each e = { nm, fn, arg };
			if ((ret = scan_revs(st, txn, nm, each_rev, &e)))
				break;
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return store_mdb_err(rc, "catalog cursor");
	return ret;
}

int catalog_list_raw(struct store *st, MDB_txn *txn, const char *name, size_t chunk,
		     catalog_chunk_fn *fn, void *arg)
{
	MDB_cursor *c;
	char kb[512];
	size_t nl = name ? strlen(name) : 0;
	int rc = mdb_cursor_open(txn, st->sums, &c);
	if (rc)
		return store_mdb_err(rc, "catalog cursor");
	MDB_val k = { 0, NULL }, v;
	if (name) {
		k.mv_size = mkkey(kb, sizeof kb, name, "");
		k.mv_data = kb;
		rc = k.mv_size ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : MDB_NOTFOUND;
	} else {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	}
	char *buf = malloc(chunk + 2);
	size_t len = 0, count = 0;
	int ret = buf ? 0 : MD_ENOMEM;
	while (rc == 0 && !ret) {
		if (name && (k.mv_size <= nl + 1 || memcmp(k.mv_data, name, nl) ||
			     ((char *)k.mv_data)[nl]))
			break;
		if (v.mv_size + 2 > chunk) {
			ret = md_fail(MD_ETOOBIG, "summary record too large");
			break;
		}
		if (len + v.mv_size + 2 > chunk) {
			buf[len++] = ']';
			if ((ret = fn(buf, len, 0, arg)))
				break;
			len = 0;
		}
		buf[len] = len == 0 ? '[' : ',';
		len++;
		memcpy(buf + len, v.mv_data, v.mv_size);
		len += v.mv_size;
		count++;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = store_mdb_err(rc, "catalog cursor");
	if (!ret) {
		if (len == 0)
			buf[len++] = '[';
		buf[len++] = ']';
		ret = fn(buf, len, 1, arg);
	}
	free(buf);
	return ret;
}

static int rebuild_one(const char *name, const char *rev, json_t *m, void *arg)
{
	(void)m;
	struct { struct store *st; MDB_txn *txn; } *a = arg;
	return summary_refresh(a->st, a->txn, name, rev);
}

int catalog_ensure_summaries(struct store *st)
{
	MDB_txn *txn;
	MDB_stat a, b;
	int rc = store_txn(st, 1, &txn);
	if (rc)
		return rc;
	/* the summary shape is versioned: a modeld that writes other summaries
	 * rebuilds them once */
	uint32_t ver = 0, want = CATALOG_SUMMARY_VERSION;
	MDB_val vk = { 17, "summaries_version" }, vv;
	if (mdb_get(txn, st->meta, &vk, &vv) == 0 && vv.mv_size == sizeof ver)
		memcpy(&ver, vv.mv_data, sizeof ver);
	if (mdb_stat(txn, st->revs, &a) || mdb_stat(txn, st->sums, &b) ||
	    (a.ms_entries == b.ms_entries && ver == want)) {
		mdb_txn_abort(txn);
		return index_ensure(st); /* the catalog indexes are derived too */
	}
	vv.mv_size = sizeof want;
	vv.mv_data = &want;
	if ((rc = mdb_put(txn, st->meta, &vk, &vv, 0))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "catalog");
	}
	mdb_drop(txn, st->sums, 0);
	struct { struct store *st; MDB_txn *txn; } arg = { st, txn };
	rc = catalog_foreach_rev(st, txn, NULL, rebuild_one, &arg);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = store_commit(txn)))
		return rc;
	return index_ensure(st);
}
