/* daemon/audit.c — see audit.h. */
#include "daemon/audit.h"
#include "registry/catalog.h"
#include "meta/bom.h"
#include "meta/lic.h"
#include "meta/policy.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const char *license_id(json_t *m)
{
	json_t *l = json_object_get(m, "license");
	const char *s = json_string_value(json_object_get(l, "spdx"));
	return s ? s : json_string_value(json_object_get(l, "declared"));
}

/* Breadth-first through base_model, each ancestor once. */
static json_t *lineage(struct daemon *d, MDB_txn *txn, json_t *m)
{
	json_t *out = json_array(), *seen = json_object(), *queue = json_array();
	json_object_set_new(seen, json_string_value(json_object_get(m, "name")), json_true());
	json_array_append_new(queue, json_pack("{s:O,s:i}", "card", json_object_get(m, "card"),
					       "depth", 1));
	for (size_t qi = 0; qi < json_array_size(queue) && json_array_size(out) < 64; qi++) {
		json_t *q = json_array_get(queue, qi);
		int depth = (int)json_integer_value(json_object_get(q, "depth"));
		size_t i;
		json_t *b;
		json_array_foreach(json_object_get(json_object_get(q, "card"), "base_model"), i, b) {
			const char *name = json_string_value(b);
			if (!name || json_object_get(seen, name))
				continue;
			json_object_set_new(seen, name, json_true());
			char rev[CATALOG_REV_LEN + 1];
			json_t *am = NULL;
			int stored = util_check_model_name(name) == 0 &&
				     catalog_resolve(d->st, txn, name, NULL, rev) == 0 &&
				     catalog_get_rev(d->st, txn, name, rev, &am) == 0;
			json_t *e = json_pack("{s:s,s:i,s:b}", "name", name, "depth", depth,
					      "in_store", stored);
			if (stored) {
				const char *lic = license_id(am);
				json_object_set_new(e, "revision", json_string(rev));
				json_object_set_new(e, "license", lic ? json_string(lic) : json_null());
				json_object_set(e, "verdict", json_object_get(json_object_get(am, "license"),
									      "verdict"));
				if (depth < AUDIT_MAX_DEPTH)
					json_array_append_new(queue, json_pack("{s:O,s:i}", "card",
						json_object_get(am, "card"), "depth", depth + 1));
				json_decref(am);
			} else {
				json_object_set_new(e, "license", json_null());
			}
			json_array_append_new(out, e);
		}
	}
	json_decref(seen);
	json_decref(queue);
	return out;
}

int audit_license(struct daemon *d, json_t *req, json_t **res)
{
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	const char *ref = json_string_value(json_object_get(req, "ref"));
	if (!ref)
		return md_fail(MD_EINVAL, "missing model reference");
	int rc = util_parse_modelref(ref, &name, &want);
	if (rc)
		return rc;
	MDB_txn *txn;
	json_t *m = NULL;
	if (!(rc = store_txn(d->st, 0, &txn))) {
		if (!(rc = catalog_resolve(d->st, txn, name, want, rev)) &&
		    !(rc = catalog_get_rev(d->st, txn, name, rev, &m))) {
			json_t *lic = json_object_get(m, "license");
			*res = json_pack("{s:s,s:s,s:O,s:o}", "name", name, "revision", rev,
					 "license", lic ? lic : json_null(), "lineage",
					 lineage(d, txn, m));
			json_decref(m);
		}
		mdb_txn_abort(txn);
	}
	free(name);
	free(want);
	return rc;
}

struct actx { struct daemon *d; MDB_txn *txn; const struct policy *pol; json_t *models;
	      int counts[3]; };

static int audit_one(const char *name, const char *rev, json_t *m, void *arg)
{
	struct actx *a = arg;
	json_t *lic = json_deep_copy(json_object_get(m, "license"));
	if (!lic)
		lic = json_object();
	lic_reevaluate(lic, a->pol);
	const char *v = json_string_value(json_object_get(lic, "verdict"));
	a->counts[v && !strcmp(v, "deny") ? 2 : v && !strcmp(v, "review") ? 1 : 0]++;
	json_t *files = json_array(), *f;
	size_t i;
	json_array_foreach(json_object_get(m, "files"), i, f)
		json_array_append_new(files, json_pack("{s:O,s:O,s:O}", "path",
			json_object_get(f, "path"), "size", json_object_get(f, "size"), "sha256",
			json_object_get(f, "sha256")));
	json_t *prov = json_object_get(m, "provenance");
	prov = prov ? json_deep_copy(prov) : json_object();
	json_t *src = json_object_get(m, "source");
	const char *k;
	json_t *val;
	json_object_foreach(src, k, val)
		if (!json_is_object(val) && !json_is_array(val) && !json_object_get(prov, k))
			json_object_set(prov, k, val);
	json_object_set(prov, "imported_at", json_object_get(m, "imported_at"));
	json_t *refs = catalog_refs_to(a->d->st, a->txn, name, rev);
	json_t *rec = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:O,s:o}", "name", name,
				"revision", json_array_size(refs) ? json_string_value(json_array_get(refs, 0)) : rev,
				"commit", rev, "files", files, "license", lic, "provenance", prov,
				"lineage", lineage(a->d, a->txn, m), "card",
				json_object_get(m, "card") ? json_object_get(m, "card") : json_null(),
				"refs", refs ? refs : json_array());
	json_array_append_new(a->models, rec);
	return 0;
}

int audit_run(struct daemon *d, json_t *req, json_t **res)
{
	const char *fmt = json_string_value(json_object_get(req, "format"));
	const char *ptext = json_string_value(json_object_get(req, "policy_text"));
	const char *pname = json_string_value(json_object_get(req, "policy_name"));
	struct policy *own = NULL;
	int rc;
	if (!fmt)
		fmt = "table";
	if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "csv") &&
	    strcmp(fmt, "cyclonedx") && strcmp(fmt, "spdx"))
		return md_fail(MD_EINVAL, "format %s: want table, json, csv, cyclonedx or spdx", fmt);
	if (ptext) {
		size_t n = json_string_length(json_object_get(req, "policy_text"));
		if (n > AUDIT_MAX_POLICY)
			return md_fail(MD_ETOOBIG, "policy text over %u bytes", AUDIT_MAX_POLICY);
		if ((rc = policy_parse(ptext, n, pname ? pname : "policy", &own)))
			return rc;
	}
	MDB_txn *txn;
	if ((rc = store_txn(d->st, 0, &txn))) {
		policy_free(own);
		return rc;
	}
	struct actx a = { d, txn, own ? own : d->pol, json_array(), { 0, 0, 0 } };
	rc = catalog_foreach_rev(d->st, txn, NULL, audit_one, &a);
	mdb_txn_abort(txn);
	policy_free(own);
	if (rc) {
		json_decref(a.models);
		return rc;
	}
	json_t *doc = NULL;
	struct bom_opts o = { NULL, NULL, MODELD_VERSION };
	if (!strcmp(fmt, "cyclonedx"))
		rc = bom_cyclonedx(a.models, &o, &doc);
	else if (!strcmp(fmt, "spdx"))
		rc = bom_spdx(a.models, &o, &doc);
	else if (!strcmp(fmt, "csv")) {
		char *csv;
		size_t len;
		if (!(rc = bom_csv(a.models, &csv, &len))) {
			doc = json_stringn(csv, len);
			free(csv);
		}
	}
	if (rc) {
		json_decref(a.models);
		return rc;
	}
	*res = json_pack("{s:o,s:{s:i,s:i,s:i},s:o}", "models", a.models, "counts", "allow",
			 a.counts[0], "review", a.counts[1], "deny", a.counts[2], "document",
			 doc ? doc : json_null());
	return 0;
}
