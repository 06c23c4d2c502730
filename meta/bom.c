/*
 * meta/bom.c — CycloneDX 1.6 / SPDX 3.0.1 / CSV audit exports. See bom.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/rand.h>

#include "common/err.h"
#include "common/util.h"
#include "meta/bom.h"
#include "meta/spdx.h"

/* ---- helpers ------------------------------------------------------------- */

static const char *gs(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* append a new reference; remember failure in *bad */
static void push(json_t *arr, json_t *v, int *bad)
{
	if (!v || json_array_append_new(arr, v))
		*bad = 1;
}

static void put(json_t *o, const char *k, json_t *v, int *bad)
{
	if (!v || json_object_set_new(o, k, v))
		*bad = 1;
}

static void put_s(json_t *o, const char *k, const char *s, int *bad)
{
	if (s && *s)
		put(o, k, json_string(s), bad);
}

static int make_uuid(const struct bom_opts *o, char out[37])
{
	if (o && o->uuid) {
		snprintf(out, 37, "%s", o->uuid);
		return 0;
	}
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1)
		return md_fail(MD_EIO, "bom: no random bytes for a UUID");
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

static void stamp(const struct bom_opts *o, char *out, size_t n)
{
	if (o && o->timestamp)
		snprintf(out, n, "%s", o->timestamp);
	else
		util_now_iso(out, n);
}

/* The model's lineage array: record.lineage, else record.license.lineage. */
static json_t *lineage_of(const json_t *m)
{
	json_t *l = json_object_get(m, "lineage");
	if (!json_is_array(l))
		l = json_object_get(json_object_get(m, "license"), "lineage");
	return json_is_array(l) ? l : NULL;
}

/* Normalized declared id of a record (malloc'd) or NULL. */
static char *declared_id(const json_t *m)
{
	const json_t *lic = json_object_get(m, "license");
	const char *s = gs(lic, "spdx");
	char *out = NULL;
	if (s)
		return strdup(s);
	const json_t *card = json_object_get(m, "card");
	const char *d = gs(lic, "declared");
	if (!d)
		d = gs(card, "license");
	if (spdx_normalize(d, gs(card, "license_name"), &out))
		return NULL;
	return out;
}

/* The other licenses a card lists besides the first (license.licenses[1..],
 * borrowed), for records of cards with a `license` list. */
static const json_t *more_declared(const json_t *m)
{
	const json_t *all = json_object_get(json_object_get(m, "license"), "licenses");
	return json_array_size(all) > 1 ? all : NULL;
}

/* The declared licenses as one SPDX expression (malloc'd): every listed
 * license applies, so a list is joined with AND. NULL when none or OOM. */
static char *declared_expr(const json_t *m)
{
	const json_t *all = more_declared(m), *x;
	if (!all)
		return declared_id(m);
	size_t i, n = 1;
	json_array_foreach(all, i, x)
		n += strlen(json_string_value(x) ? json_string_value(x) : "") + 5;
	char *e = calloc(1, n);
	if (!e)
		return NULL;
	json_array_foreach(all, i, x) {
		const char *id = json_string_value(x);
		if (!id || !strcmp(id, "NOASSERTION"))
			continue;
		if (*e)
			strcat(e, " AND ");
		strcat(e, id);
	}
	if (!*e) {
		free(e);
		return strdup("NOASSERTION");
	}
	return e;
}

/* The detected id when it matched, else NULL (borrowed). */
static const char *concluded_id(const json_t *m)
{
	const json_t *det = json_object_get(json_object_get(m, "license"), "detected");
	if (!json_is_true(json_object_get(det, "matched")))
		return NULL;
	return gs(det, "id");
}

static const char *revision_of(const json_t *m)
{
	const char *r = gs(m, "revision");
	return r ? r : gs(m, "commit");
}

static const char *url_of(const json_t *m)
{
	const json_t *p = json_object_get(m, "provenance");
	const char *u = gs(p, "url");
	if (!u)
		u = gs(p, "source_url");
	return u;
}

/* Where a revision came from, for the CSV: its URL, else "file://PATH" for
 * a local import and "bundle sha256:HEX" for a bundle. */
static const char *source_of(const json_t *m, char *buf, size_t n)
{
	const char *u = url_of(m);
	if (u)
		return u;
	const json_t *p = json_object_get(m, "provenance");
	const char *type = gs(p, "type");
	if (type && !strcmp(type, "local") && gs(p, "path"))
		snprintf(buf, n, "file://%s", gs(p, "path"));
	else if (type && !strcmp(type, "bundle") && gs(p, "bundle_sha256"))
		snprintf(buf, n, "bundle sha256:%s", gs(p, "bundle_sha256"));
	else
		return type;
	return buf;
}

/* ---- CycloneDX ----------------------------------------------------------- */

/* SPDX ids CycloneDX 1.6's bundled license enumeration does not know yet
 * (added to the SPDX list later): written as names. */
static int cdx_knows(const char *id)
{
	return strcmp(id, "OpenMDW-1.0") != 0;
}

static json_t *cdx_license(const char *id, const char *ack, const char *url, int *bad)
{
	json_t *l = json_object();
	if (!l) {
		*bad = 1;
		return NULL;
	}
	if (!strncmp(id, "LicenseRef-", 11) || !spdx_lookup(id) || !cdx_knows(id))
		put_s(l, "name", id, bad);
	else
		put_s(l, "id", id, bad);
	if (url && (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)))
		put_s(l, "url", url, bad);
	put_s(l, "acknowledgement", ack, bad);
	json_t *w = json_object();
	put(w, "license", l, bad);
	return w;
}

static void prop(json_t *props, const char *name, const char *value, int *bad)
{
	if (!value || !*value)
		return;
	push(props, json_pack("{s:s, s:s}", "name", name, "value", value), bad);
}

static json_t *cdx_component(const json_t *m, const char *name, int *bad)
{
	const char *rev = revision_of(m), *commit = gs(m, "commit");
	const json_t *lic = json_object_get(m, "license"), *card = json_object_get(m, "card");
	char ref[600];
	snprintf(ref, sizeof ref, "model:%s@%s", name, rev ? rev : "unknown");
	json_t *c = json_object();
	if (!c) {
		*bad = 1;
		return NULL;
	}
	put_s(c, "type", "machine-learning-model", bad);
	put_s(c, "bom-ref", ref, bad);
	put_s(c, "name", name, bad);
	put_s(c, "version", rev, bad);
	const char *desc = gs(card, "model_name");
	put_s(c, "description", desc, bad);
	if (commit) {
		char purl[700];
		snprintf(purl, sizeof purl, "pkg:huggingface/%s@%s", name, commit);
		put_s(c, "purl", purl, bad);
	}
	/* licenses */
	json_t *lics = json_array();
	char *decl = declared_id(m);
	const char *conc = concluded_id(m);
	if (decl && strcmp(decl, "NOASSERTION"))
		push(lics, cdx_license(decl, "declared", gs(card, "license_link"), bad), bad);
	const json_t *more = more_declared(m), *x;
	size_t k;
	json_array_foreach(more, k, x)
		if (k && json_is_string(x) && strcmp(json_string_value(x), "NOASSERTION"))
			push(lics, cdx_license(json_string_value(x), "declared", NULL, bad), bad);
	if (conc)
		push(lics, cdx_license(conc, "concluded", NULL, bad), bad);
	if (json_array_size(lics))
		put(c, "licenses", lics, bad);
	else
		json_decref(lics);
	/* files */
	json_t *files = json_object_get(m, "files"), *f;
	size_t i;
	if (json_array_size(files)) {
		json_t *fc = json_array();
		json_array_foreach(files, i, f) {
			const char *path = gs(f, "path"), *sha = gs(f, "sha256");
			if (!path)
				continue;
			char fref[1400];
			snprintf(fref, sizeof fref, "%s:file:%s", ref, path);
			json_t *e = json_pack("{s:s, s:s, s:s}", "type", "file", "bom-ref", fref, "name", path);
			if (e && sha && util_is_hex(sha, 64))
				put(e, "hashes", json_pack("[{s:s, s:s}]", "alg", "SHA-256", "content", sha), bad);
			if (e && json_is_integer(json_object_get(f, "size"))) {
				char sz[32];
				snprintf(sz, sizeof sz, "%lld", (long long)json_integer_value(json_object_get(f, "size")));
				json_t *pp = json_array();
				prop(pp, "modeld:size", sz, bad);
				put(e, "properties", pp, bad);
			}
			push(fc, e, bad);
		}
		put(c, "components", fc, bad);
	}
	/* pedigree */
	json_t *lin = lineage_of(m), *a;
	if (lin && json_array_size(lin)) {
		json_t *anc = json_array();
		json_array_foreach(lin, i, a) {
			const char *an = gs(a, "name");
			if (!an)
				continue;
			json_t *e = json_pack("{s:s, s:s}", "type", "machine-learning-model", "name", an);
			const char *al = gs(a, "license");
			if (e && al) {
				char *n = NULL;
				if (spdx_normalize(al, NULL, &n) == 0 && strcmp(n, "NOASSERTION")) {
					json_t *l = json_array();
					push(l, cdx_license(n, "declared", NULL, bad), bad);
					put(e, "licenses", l, bad);
				}
				free(n);
			}
			push(anc, e, bad);
		}
		put(c, "pedigree", json_pack("{s:o}", "ancestors", anc), bad);
	}
	/* model card */
	json_t *mc = json_object(), *mp = json_object();
	put_s(mp, "task", gs(card, "pipeline_tag"), bad);
	put_s(mp, "architectureFamily", gs(card, "library_name"), bad);
	json_t *ds = json_object_get(card, "datasets"), *d;
	if (json_array_size(ds)) {
		json_t *da = json_array();
		json_array_foreach(ds, i, d)
			if (json_is_string(d))
				push(da, json_pack("{s:s, s:s}", "type", "dataset", "name", json_string_value(d)), bad);
		put(mp, "datasets", da, bad);
	}
	if (json_object_size(mp))
		put(mc, "modelParameters", mp, bad);
	else
		json_decref(mp);
	json_t *mi = json_object_get(card, "model_index"), *r;
	if (json_array_size(mi)) {
		json_t *pm = json_array();
		json_array_foreach(mi, i, r) {
			json_t *v = json_object_get(r, "value");
			char val[64], slice[600];
			if (json_is_number(v))
				snprintf(val, sizeof val, "%.10g", json_number_value(v));
			else if (json_is_string(v))
				snprintf(val, sizeof val, "%s", json_string_value(v));
			else
				continue;
			snprintf(slice, sizeof slice, "%s%s%s%s%s", gs(r, "task") ? gs(r, "task") : "", " / ",
				 gs(r, "dataset") ? gs(r, "dataset") : "", gs(r, "split") ? " / " : "",
				 gs(r, "split") ? gs(r, "split") : "");
			push(pm, json_pack("{s:s, s:s, s:s}", "type", gs(r, "metric") ? gs(r, "metric") : "metric",
					   "value", val, "slice", slice),
			     bad);
		}
		put(mc, "quantitativeAnalysis", json_pack("{s:o}", "performanceMetrics", pm), bad);
	}
	if (json_object_size(mc))
		put(c, "modelCard", mc, bad);
	else
		json_decref(mc);
	/* references and properties */
	const char *url = url_of(m);
	if (url && (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)))
		put(c, "externalReferences", json_pack("[{s:s, s:s}]", "type", "distribution", "url", url), bad);
	json_t *props = json_array();
	prop(props, "modeld:license.verdict", gs(lic, "verdict"), bad);
	prop(props, "modeld:license.rule", gs(lic, "rule"), bad);
	prop(props, "modeld:license.declared", gs(lic, "declared") ? gs(lic, "declared") : gs(card, "license"), bad);
	const json_t *det = json_object_get(lic, "detected");
	if (json_is_object(det)) {
		char sc[32];
		snprintf(sc, sizeof sc, "%.4f", json_number_value(json_object_get(det, "score")));
		prop(props, "modeld:license.detected", gs(det, "id"), bad);
		prop(props, "modeld:license.detected.score", sc, bad);
		prop(props, "modeld:license.detected.file", gs(det, "file"), bad);
	}
	json_t *flags = json_object_get(lic, "flags"), *fl;
	json_array_foreach(flags, i, fl) {
		char fv[700];
		snprintf(fv, sizeof fv, "%s: %s", gs(fl, "kind") ? gs(fl, "kind") : "?",
			 gs(fl, "message") ? gs(fl, "message") : "");
		prop(props, "modeld:license.flag", fv, bad);
	}
	const char *pk;
	json_t *pv;
	json_object_foreach(json_object_get(m, "provenance"), pk, pv) {
		char pn[200], val[1024];
		snprintf(pn, sizeof pn, "modeld:provenance.%s", pk);
		if (json_is_string(pv))
			snprintf(val, sizeof val, "%s", json_string_value(pv));
		else if (json_is_integer(pv))
			snprintf(val, sizeof val, "%lld", (long long)json_integer_value(pv));
		else if (json_is_real(pv))
			snprintf(val, sizeof val, "%g", json_real_value(pv));
		else if (json_is_boolean(pv))
			snprintf(val, sizeof val, "%s", json_is_true(pv) ? "true" : "false");
		else
			continue;
		prop(props, pn, val, bad);
	}
	if (json_array_size(props))
		put(c, "properties", props, bad);
	else
		json_decref(props);
	free(decl);
	return c;
}

int bom_cyclonedx(const json_t *models, const struct bom_opts *opts, json_t **out)
{
	*out = NULL;
	if (!json_is_array(models))
		return md_fail(MD_EINVAL, "bom: models is not an array");
	char uuid[37], ts[32], serial[64];
	int rc = make_uuid(opts, uuid);
	if (rc)
		return rc;
	stamp(opts, ts, sizeof ts);
	snprintf(serial, sizeof serial, "urn:uuid:%s", uuid);
	int bad = 0;
	json_t *comps = json_array();
	size_t i;
	json_t *m;
	json_array_foreach(models, i, m) {
		const char *name = gs(m, "name");
		if (name)
			push(comps, cdx_component(m, name, &bad), &bad);
	}
	const char *ver = opts && opts->tool_version ? opts->tool_version : "unknown";
	json_t *bom = json_pack("{s:s, s:s, s:s, s:i, s:{s:s, s:{s:[{s:s, s:s, s:s}]}}, s:o}", "bomFormat",
				"CycloneDX", "specVersion", "1.6", "serialNumber", serial, "version", 1, "metadata",
				"timestamp", ts, "tools", "components", "type", "application", "name", "modeld",
				"version", ver, "components", comps);
	if (!bom || bad) {
		json_decref(bom);
		return md_fail(MD_ENOMEM, "bom: out of memory");
	}
	*out = bom;
	return 0;
}

/* ---- SPDX 3.0.1 ------------------------------------------------------------ */

struct sp {
	json_t *graph;
	json_t *elements; /* ids for SpdxDocument.element */
	json_t *roots;
	char ns[128];
	unsigned long rel;
	int bad;
};

static json_t *sp_el(struct sp *s, const char *type, const char *id)
{
	json_t *e = json_pack("{s:s, s:s, s:s}", "type", type, "spdxId", id, "creationInfo", "_:creationinfo");
	if (!e) {
		s->bad = 1;
		return NULL;
	}
	push(s->graph, e, &s->bad);
	push(s->elements, json_string(id), &s->bad);
	return e; /* borrowed: owned by the graph */
}

static void sp_rel(struct sp *s, const char *from, const char *type, json_t *to /* stolen */)
{
	char id[256];
	snprintf(id, sizeof id, "%srelationship/%lu", s->ns, ++s->rel);
	json_t *e = sp_el(s, "Relationship", id);
	if (!e) {
		json_decref(to);
		return;
	}
	put_s(e, "from", from, &s->bad);
	put_s(e, "relationshipType", type, &s->bad);
	put(e, "to", to, &s->bad);
}

static void sp_license(struct sp *s, const char *pkg, const char *expr, const char *rel, const char *idsuffix)
{
	char id[300];
	snprintf(id, sizeof id, "%s/license/%s", pkg, idsuffix);
	json_t *e = sp_el(s, "simplelicensing_LicenseExpression", id);
	put_s(e, "simplelicensing_licenseExpression", expr, &s->bad);
	sp_rel(s, pkg, rel, json_pack("[s]", id));
}

static void sp_model(struct sp *s, const json_t *m, size_t idx)
{
	const char *name = gs(m, "name"), *rev = revision_of(m), *commit = gs(m, "commit");
	const json_t *card = json_object_get(m, "card"), *lic = json_object_get(m, "license");
	char pkg[200];
	snprintf(pkg, sizeof pkg, "%smodel/%zu", s->ns, idx);
	json_t *p = sp_el(s, "ai_AIPackage", pkg);
	if (!p)
		return;
	push(s->roots, json_string(pkg), &s->bad);
	put_s(p, "name", name, &s->bad);
	put_s(p, "software_packageVersion", rev, &s->bad);
	put_s(p, "software_primaryPurpose", "model", &s->bad);
	const char *url = url_of(m);
	if (url)
		put_s(p, "software_downloadLocation", url, &s->bad);
	if (commit) {
		char purl[700];
		snprintf(purl, sizeof purl, "pkg:huggingface/%s@%s", name, commit);
		put_s(p, "software_packageUrl", purl, &s->bad);
	}
	if (gs(card, "pipeline_tag"))
		put(p, "ai_typeOfModel", json_pack("[s]", gs(card, "pipeline_tag")), &s->bad);
	char comment[600];
	if (gs(lic, "verdict")) {
		snprintf(comment, sizeof comment, "modeld license verdict: %s (%s)", gs(lic, "verdict"),
			 gs(lic, "rule") ? gs(lic, "rule") : "");
		put_s(p, "comment", comment, &s->bad);
	}
	json_t *mi = json_object_get(card, "model_index"), *r;
	size_t i;
	if (json_array_size(mi)) {
		json_t *metrics = json_array();
		json_array_foreach(mi, i, r) {
			json_t *v = json_object_get(r, "value");
			char key[600], val[64];
			snprintf(key, sizeof key, "%s %s %s", gs(r, "metric") ? gs(r, "metric") : "metric",
				 gs(r, "dataset") ? gs(r, "dataset") : "", gs(r, "split") ? gs(r, "split") : "");
			if (json_is_number(v))
				snprintf(val, sizeof val, "%.10g", json_number_value(v));
			else if (json_is_string(v))
				snprintf(val, sizeof val, "%s", json_string_value(v));
			else
				continue;
			push(metrics, json_pack("{s:s, s:s, s:s}", "type", "DictionaryEntry", "key", key, "value", val),
			     &s->bad);
		}
		put(p, "ai_metric", metrics, &s->bad);
	}
	/* files */
	json_t *files = json_object_get(m, "files"), *f, *to = json_array();
	json_array_foreach(files, i, f) {
		const char *path = gs(f, "path"), *sha = gs(f, "sha256");
		if (!path)
			continue;
		char fid[300];
		snprintf(fid, sizeof fid, "%s/file/%zu", pkg, i);
		json_t *fe = sp_el(s, "software_File", fid);
		put_s(fe, "name", path, &s->bad);
		if (sha && util_is_hex(sha, 64))
			put(fe, "verifiedUsing", json_pack("[{s:s, s:s, s:s}]", "type", "Hash", "algorithm", "sha256",
							  "hashValue", sha),
			    &s->bad);
		push(to, json_string(fid), &s->bad);
	}
	if (json_array_size(to))
		sp_rel(s, pkg, "contains", to);
	else
		json_decref(to);
	/* licenses */
	char *decl = declared_expr(m);
	if (decl && strcmp(decl, "NOASSERTION"))
		sp_license(s, pkg, decl, "hasDeclaredLicense", "declared");
	free(decl);
	const char *conc = concluded_id(m);
	if (conc)
		sp_license(s, pkg, conc, "hasConcludedLicense", "concluded");
	/* lineage */
	json_t *lin = lineage_of(m), *a;
	json_array_foreach(lin, i, a) {
		const char *an = gs(a, "name");
		if (!an)
			continue;
		char aid[300];
		snprintf(aid, sizeof aid, "%s/ancestor/%zu", pkg, i);
		json_t *ae = sp_el(s, "ai_AIPackage", aid);
		put_s(ae, "name", an, &s->bad);
		const char *al = gs(a, "license");
		char *n = NULL;
		if (al && spdx_normalize(al, NULL, &n) == 0 && strcmp(n, "NOASSERTION"))
			sp_license(s, aid, n, "hasDeclaredLicense", "declared");
		free(n);
		sp_rel(s, aid, "ancestorOf", json_pack("[s]", pkg));
	}
	/* datasets */
	json_t *ds = json_object_get(card, "datasets"), *d, *dto = json_array();
	json_array_foreach(ds, i, d) {
		if (!json_is_string(d))
			continue;
		char did[300];
		snprintf(did, sizeof did, "%s/dataset/%zu", pkg, i);
		json_t *de = sp_el(s, "dataset_DatasetPackage", did);
		put_s(de, "name", json_string_value(d), &s->bad);
		put(de, "dataset_datasetType", json_pack("[s]", "noAssertion"), &s->bad);
		put_s(de, "software_primaryPurpose", "data", &s->bad);
		push(dto, json_string(did), &s->bad);
	}
	if (json_array_size(dto))
		sp_rel(s, pkg, "trainedOn", dto);
	else
		json_decref(dto);
}

int bom_spdx(const json_t *models, const struct bom_opts *opts, json_t **out)
{
	*out = NULL;
	if (!json_is_array(models))
		return md_fail(MD_EINVAL, "bom: models is not an array");
	char uuid[37], ts[32];
	int rc = make_uuid(opts, uuid);
	if (rc)
		return rc;
	stamp(opts, ts, sizeof ts);
	struct sp s = { json_array(), json_array(), json_array(), "", 0, 0 };
	snprintf(s.ns, sizeof s.ns, "urn:modeld:%s:", uuid);
	char agent[200], tool[200], doc[200], toolname[128];
	snprintf(agent, sizeof agent, "%sagent/modeld", s.ns);
	snprintf(tool, sizeof tool, "%stool/modeld", s.ns);
	snprintf(doc, sizeof doc, "%sdocument", s.ns);
	snprintf(toolname, sizeof toolname, "modeld %s", opts && opts->tool_version ? opts->tool_version : "unknown");
	push(s.graph,
	     json_pack("{s:s, s:s, s:s, s:s, s:[s], s:[s]}", "type", "CreationInfo", "@id", "_:creationinfo",
		       "specVersion", "3.0.1", "created", ts, "createdBy", agent, "createdUsing", tool),
	     &s.bad);
	json_t *ag = sp_el(&s, "SoftwareAgent", agent);
	put_s(ag, "name", "modeld", &s.bad);
	json_t *tl = sp_el(&s, "Tool", tool);
	put_s(tl, "name", toolname, &s.bad);
	size_t i, k = 0;
	json_t *m;
	json_array_foreach(models, i, m)
		if (gs(m, "name"))
			sp_model(&s, m, k++);
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:[s,s,s,s]}", "type", "SpdxDocument", "spdxId", doc,
			      "creationInfo", "_:creationinfo", "name", "modeld license and provenance audit",
			      "rootElement", s.roots, "element", s.elements, "profileConformance", "core",
			      "software", "simpleLicensing", "ai");
	push(s.graph, d, &s.bad);
	json_t *res = json_pack("{s:s, s:O}", "@context", "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph",
				s.graph);
	json_decref(s.graph);
	json_decref(s.elements);
	json_decref(s.roots);
	if (!res || s.bad) {
		json_decref(res);
		return md_fail(MD_ENOMEM, "bom: out of memory");
	}
	*out = res;
	return 0;
}

/* ---- CSV ------------------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static void bput(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 4096;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *q = realloc(b->p, nc);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void cell(struct buf *b, const char *s, int last)
{
	if (!s)
		s = "";
	int quote = strpbrk(s, ",\"\r\n") != NULL;
	int inject = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';
	if (quote)
		bput(b, "\"", 1);
	if (inject)
		bput(b, "'", 1);
	for (const char *c = s; *c; c++) {
		if (*c == '"')
			bput(b, "\"\"", 2);
		else
			bput(b, c, 1);
	}
	if (quote)
		bput(b, "\"", 1);
	bput(b, last ? "\r\n" : ",", last ? 2 : 1);
}

int bom_csv(const json_t *models, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (!json_is_array(models))
		return md_fail(MD_EINVAL, "bom: models is not an array");
	struct buf b = { 0 };
	static const char *const hdr[] = { "name", "revision", "commit", "declared", "spdx", "detected", "score",
					   "verdict", "rule", "flags", "base_models", "source", "files", "bytes" };
	for (size_t h = 0; h < 14; h++)
		cell(&b, hdr[h], h == 13);
	size_t i, j;
	json_t *m, *x;
	json_array_foreach(models, i, m) {
		const char *name = gs(m, "name");
		if (!name)
			continue;
		const json_t *lic = json_object_get(m, "license"), *card = json_object_get(m, "card");
		const json_t *det = json_object_get(lic, "detected");
		char *decl = declared_id(m);
		char score[32] = "", nfiles[32], bytes[32], flags[1024] = "", bases[2048] = "";
		if (json_is_object(det))
			snprintf(score, sizeof score, "%.4f", json_number_value(json_object_get(det, "score")));
		json_array_foreach(json_object_get(lic, "flags"), j, x) {
			size_t l = strlen(flags);
			snprintf(flags + l, sizeof flags - l, "%s%s", l ? ";" : "", gs(x, "kind") ? gs(x, "kind") : "");
		}
		json_t *lin = lineage_of(m);
		json_array_foreach(lin, j, x) {
			size_t l = strlen(bases);
			snprintf(bases + l, sizeof bases - l, "%s%s", l ? ";" : "", gs(x, "name") ? gs(x, "name") : "");
		}
		long long total = 0;
		json_array_foreach(json_object_get(m, "files"), j, x)
			total += json_integer_value(json_object_get(x, "size"));
		snprintf(nfiles, sizeof nfiles, "%zu", json_array_size(json_object_get(m, "files")));
		snprintf(bytes, sizeof bytes, "%lld", total);
		cell(&b, name, 0);
		cell(&b, gs(m, "revision"), 0);
		cell(&b, gs(m, "commit"), 0);
		cell(&b, gs(lic, "declared") ? gs(lic, "declared") : gs(card, "license"), 0);
		cell(&b, decl, 0);
		cell(&b, json_is_object(det) ? gs(det, "id") : NULL, 0);
		cell(&b, score, 0);
		cell(&b, gs(lic, "verdict"), 0);
		cell(&b, gs(lic, "rule"), 0);
		cell(&b, flags, 0);
		cell(&b, bases, 0);
		char src[4200];
		cell(&b, source_of(m, src, sizeof src), 0);
		cell(&b, nfiles, 0);
		cell(&b, bytes, 1);
		free(decl);
	}
	if (b.oom) {
		free(b.p);
		return md_fail(MD_ENOMEM, "bom: out of memory");
	}
	*out = b.p;
	*len = b.n;
	return 0;
}
