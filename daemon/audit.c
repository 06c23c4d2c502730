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

/* The verdict of one stored ancestor's own license (declared, and detected
 * when it matched) under pol. */
static const char *own_verdict(json_t *am, const struct policy *pol)
{
	json_t *l = json_object_get(am, "license"), *det = json_object_get(l, "detected");
	json_t *all = json_object_get(l, "licenses");
	const char *detected = json_is_true(json_object_get(det, "matched"))
				       ? json_string_value(json_object_get(det, "id")) : NULL;
	struct policy_decision pd;
	size_t n = json_array_size(all);
	if (n > 1) { /* a card listing several: each enters the verdict */
		const char *ids[64];
		size_t k = 0;
		for (; k < n && k < 64; k++)
			ids[k] = json_string_value(json_array_get(all, k));
		if (policy_evaluate_list(pol, ids, k, detected, NULL, 0, &pd))
			return NULL;
	} else if (policy_evaluate(pol, license_id(am), detected, NULL, 0, &pd)) {
		return NULL;
	}
	return policy_verdict_name(pd.verdict);
}

/* Whether name is node k or one of its descendants back to the root (node
 * 0): naming it again as a base model closes a loop. */
static int on_path(json_t *chain, const int *parent, int k, const char *root, const char *name)
{
	for (; k > 0; k = parent[k])
		if (!strcmp(json_string_value(json_object_get(json_array_get(chain, (size_t)k - 1), "name")),
			    name))
			return 1;
	return !strcmp(root, name);
}

int audit_lineage(struct daemon *d, MDB_txn *txn, const char *name, const json_t *card,
		  const struct policy *pol, json_t **chain, struct lic_ancestor **anc, size_t *nanc)
{
	/* node 0 is the model itself; node k > 0 is chain entry k - 1 */
	json_t *out = json_array(), *seen = json_object();
	json_t *cards[LIC_MAX_ANCESTORS + 1] = { 0 };
	int parent[LIC_MAX_ANCESTORS + 1], depth[LIC_MAX_ANCESTORS + 1], n = 1;
	struct lic_ancestor *a = calloc(LIC_MAX_ANCESTORS, sizeof *a);
	*chain = NULL;
	*anc = NULL;
	*nanc = 0;
	if (!out || !seen || !a) {
		json_decref(out);
		json_decref(seen);
		free(a);
		return md_fail(MD_ENOMEM, "lineage: out of memory");
	}
	cards[0] = json_incref((json_t *)card);
	parent[0] = -1;
	depth[0] = 0;
	for (int k = 0; k < n; k++) {
		size_t i;
		json_t *b, *bases = json_object_get(cards[k], "base_model");
		json_array_foreach(bases, i, b) {
			const char *bn = json_string_value(b);
			if (!bn)
				continue;
			int loop = on_path(out, parent, k, name, bn);
			if (!loop && json_object_get(seen, bn))
				continue; /* reached twice (a merge of siblings): listed once */
			if (n == LIC_MAX_ANCESTORS + 1 || depth[k] == LIC_MAX_DEPTH) {
				if (k > 0) /* its bases go unexamined: say so */
					json_object_set_new(json_array_get(out, (size_t)k - 1), "cut", json_true());
				break;
			}
			const char *via = k ? json_string_value(json_object_get(json_array_get(out, (size_t)k - 1),
										  "name")) : name;
			json_t *e = json_pack("{s:s,s:i,s:s,s:b}", "name", bn, "depth", depth[k] + 1, "via", via,
					      "in_store", 0);
			char rev[CATALOG_REV_LEN + 1];
			json_t *am = NULL;
			if (loop) {
				json_object_set_new(e, "loop", json_true());
				json_object_set_new(e, "license", json_null());
			} else {
				json_object_set_new(seen, bn, json_true());
				int stored = util_check_model_name(bn) == 0 &&
					     catalog_resolve(d->st, txn, bn, NULL, rev) == 0 &&
					     catalog_get_rev(d->st, txn, bn, rev, &am) == 0;
				json_object_set_new(e, "in_store", json_boolean(stored));
				const char *lic = stored ? license_id(am) : NULL;
				json_object_set_new(e, "license", lic ? json_string(lic) : json_null());
				json_t *all = stored ? json_object_get(json_object_get(am, "license"),
								       "licenses") : NULL;
				if (json_array_size(all) > 1) /* a card listing several */
					json_object_set(e, "licenses", all);
				if (stored) {
					const char *v = own_verdict(am, pol);
					json_object_set_new(e, "revision", json_string(rev));
					json_object_set_new(e, "verdict", v ? json_string(v) : json_null());
				}
			}
			json_array_append_new(out, e);
			parent[n] = k;
			depth[n] = depth[k] + 1;
			cards[n] = am ? json_incref(json_object_get(am, "card")) : NULL;
			n++;
			json_decref(am);
		}
	}
	for (int k = 0; k < n; k++)
		json_decref(cards[k]);
	json_decref(seen);
	/* the ancestors for meta/lic, borrowing the chain's strings */
	size_t i;
	json_t *e;
	json_array_foreach(out, i, e) {
		a[i].name = json_string_value(json_object_get(e, "name"));
		a[i].license = json_string_value(json_object_get(e, "license"));
		a[i].via = json_string_value(json_object_get(e, "via"));
		a[i].depth = (unsigned)json_integer_value(json_object_get(e, "depth"));
		a[i].loop = json_is_true(json_object_get(e, "loop"));
		a[i].cut = json_is_true(json_object_get(e, "cut"));
		a[i].licenses = json_object_get(e, "licenses");
	}
	*chain = out;
	*anc = a;
	*nanc = json_array_size(out);
	return 0;
}

int audit_live_license(struct daemon *d, MDB_txn *txn, const char *name, json_t *m,
		       const struct policy *pol, json_t **license, json_t **chain)
{
	struct lic_ancestor *anc;
	size_t nanc;
	json_t *lic = json_deep_copy(json_object_get(m, "license"));
	if (!lic)
		lic = json_object();
	int rc = audit_lineage(d, txn, name, json_object_get(m, "card"), pol, chain, &anc, &nanc);
	if (!rc)
		rc = lic_relineage(lic, anc, nanc, pol);
	free(anc);
	if (rc) {
		json_decref(lic);
		json_decref(*chain);
		*chain = NULL;
		return rc;
	}
	*license = lic;
	return 0;
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
			json_t *lic, *chain;
			if (!(rc = audit_live_license(d, txn, name, m, d->pol, &lic, &chain)))
				*res = json_pack("{s:s,s:s,s:o,s:o}", "name", name, "revision", rev,
						 "license", lic, "lineage", chain);
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
	json_t *lic, *chain;
	int rc = audit_live_license(a->d, a->txn, name, m, a->pol, &lic, &chain);
	if (rc)
		return rc;
	/* the exports' ancestors: a loop entry is the model itself or one of
	 * its descendants, not an ancestor */
	json_t *ancestors = json_array(), *e;
	size_t ai;
	json_array_foreach(chain, ai, e)
		if (!json_is_true(json_object_get(e, "loop")))
			json_array_append(ancestors, e);
	json_decref(chain);
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
				"lineage", ancestors, "card",
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
	/* rules that likely do not say what was meant (a typo'd id) */
	json_t *warn = json_array();
	for (size_t i = 0; warn && i < policy_nwarnings(a.pol); i++)
		json_array_append_new(warn, json_string(policy_warning(a.pol, i)));
	policy_free(own);
	if (rc) {
		json_decref(warn);
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
		json_decref(warn);
		json_decref(a.models);
		return rc;
	}
	*res = json_pack("{s:o,s:{s:i,s:i,s:i},s:o}", "models", a.models, "counts", "allow",
			 a.counts[0], "review", a.counts[1], "deny", a.counts[2], "document",
			 doc ? doc : json_null());
	if (*res && json_array_size(warn))
		json_object_set(*res, "policy_warnings", warn);
	json_decref(warn);
	return 0;
}
