/*
 * meta/lic.c — license record and disagreement flags. See lic.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/util.h"
#include "meta/lic.h"
#include "meta/spdx.h"

static int add_flag(json_t *arr, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int add_flag(json_t *arr, const char *kind, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *f = json_pack("{s:s, s:s}", "kind", kind, "message", msg);
	if (!f || json_array_append_new(arr, f))
		return MD_ENOMEM;
	return 0;
}

/* Same license or same family (a family id like "bsd" vs BSD-3-Clause). */
static int same_license(const char *a, const char *b)
{
	if (!strcasecmp(a, b))
		return 1;
	const char *fa = spdx_family(a), *fb = spdx_family(b);
	const struct spdx_license *la = spdx_lookup(a), *lb = spdx_lookup(b);
	/* a family-wide id (LicenseRef-BSD, LicenseRef-GPL, LicenseRef-CC,
	 * LicenseRef-OpenRAIL) agrees with any member */
	int fam_a = la && la->hub && (!strcmp(la->hub, "bsd") || !strcmp(la->hub, "gpl") || !strcmp(la->hub, "lgpl") ||
				      !strcmp(la->hub, "cc") || !strcmp(la->hub, "openrail") || !strcmp(la->hub, "gfdl"));
	int fam_b = lb && lb->hub && (!strcmp(lb->hub, "bsd") || !strcmp(lb->hub, "gpl") || !strcmp(lb->hub, "lgpl") ||
				      !strcmp(lb->hub, "cc") || !strcmp(lb->hub, "openrail") || !strcmp(lb->hub, "gfdl"));
	return fa && fb && !strcmp(fa, fb) && (fam_a || fam_b);
}

#define CARRY (SPDX_RESTRICTED | SPDX_NONCOMMERCIAL | SPDX_COPYLEFT | SPDX_NODERIVS)

static void class_list(unsigned cls, char *buf, size_t n)
{
	buf[0] = '\0';
	for (unsigned bit = 1; bit <= SPDX_UNKNOWN; bit <<= 1)
		if (cls & bit) {
			size_t l = strlen(buf);
			snprintf(buf + l, n - l, "%s%s", l ? ", " : "", spdx_class_name(bit));
		}
}

/* "base model X" or "ancestor X (base model of Y)". */
static void anc_name(const struct lic_ancestor *a, char *buf, size_t n)
{
	const char *nm = a->name ? a->name : "?";
	if (a->depth <= 1 || !a->via)
		snprintf(buf, n, "base model %s", nm);
	else
		snprintf(buf, n, "ancestor %s (base model of %s)", nm, a->via);
}

/* The flags that come from the lineage (see lic_flags), appended to out. */
static int lineage_flags(const char *decl, const struct lic_ancestor *anc, size_t nanc, json_t *out)
{
	int rc;
	for (size_t i = 0; i < nanc; i++) {
		const char *nm = anc[i].name ? anc[i].name : "?";
		char who[320];
		anc_name(&anc[i], who, sizeof who);
		if (anc[i].loop) {
			if (!anc[i].via || !strcmp(anc[i].via, nm) ? add_flag(out, "lineage-cycle",
				     "%s names itself as its base model: ignored", nm)
				   : add_flag(out, "lineage-cycle",
				     "%s names %s as its base model, which derives from it: the loop is not followed",
				     anc[i].via, nm))
				goto oom;
			continue;
		}
		if (anc[i].cut && add_flag(out, "lineage-unknown",
				       "the base models of %s are not followed (lineage capped at %d generations, %d "
				       "ancestors): their licenses are unknown", nm, LIC_MAX_DEPTH, LIC_MAX_ANCESTORS))
			goto oom;
		if (!anc[i].license) {
			if (add_flag(out, "lineage-unknown", "%s is not in the store: its license is unknown", who))
				goto oom;
			continue;
		}
		char *a = NULL;
		if ((rc = spdx_normalize(anc[i].license, NULL, &a)))
			return rc;
		unsigned ac = spdx_classes(a);
		const char *fa = spdx_family(a), *fd = spdx_family(decl);
		int differ = !same_license(a, decl) && !(fa && fd && !strcmp(fa, fd));
		if ((ac & CARRY) && differ) {
			char cls[160];
			class_list(ac & CARRY, cls, sizeof cls);
			if (add_flag(out, "declared-vs-lineage",
				     "the card declares %s but %s is %s (%s): its terms carry to derivatives",
				     decl, who, a, cls)) {
				free(a);
				goto oom;
			}
		}
		free(a);
	}
	return 0;
oom:
	return md_fail(MD_ENOMEM, "license flags: out of memory");
}

int lic_flags(const char *declared, const char *license_name, const struct licdetect_result *det,
	      const struct lic_ancestor *anc, size_t nanc, json_t **out)
{
	*out = json_array();
	if (!*out)
		return md_fail(MD_ENOMEM, "license flags: out of memory");
	char *decl = NULL;
	int rc = spdx_normalize(declared, license_name, &decl);
	if (rc)
		goto fail;
	int decl_unknown = !strcmp(decl, "NOASSERTION");
	if (decl_unknown && add_flag(*out, "no-license", "the card declares no license"))
		goto oom;
	if (det && det->id[0]) {
		if (!det->matched) {
			if (add_flag(*out, "license-text-unmatched",
				     "the LICENSE text matches no known license (closest %s, score %.2f, coverage %.2f)",
				     det->id, det->score, det->coverage))
				goto oom;
		} else {
			/* a LicenseRef- name the table does not know (other +
			 * license_name) disagrees with any text that matched */
			if (!decl_unknown && !same_license(decl, det->id) &&
			    add_flag(*out, "declared-vs-detected",
				     "the card declares %s (%s) but the LICENSE text is %s (score %.2f)",
				     declared ? declared : "?", decl, det->id, det->score))
				goto oom;
			if (det->extra >= LIC_EXTRA_MIN &&
			    (double)det->extra >= LIC_EXTRA_SHARE * (double)det->license_bigrams &&
			    add_flag(*out, "license-text-modified",
				     "the LICENSE text is %s with about %zu words that are not part of it: read them",
				     det->id, det->extra))
				goto oom;
		}
	}
	if ((rc = lineage_flags(decl, anc, nanc, *out)))
		goto fail;
	free(decl);
	return 0;
oom:
	rc = md_fail(MD_ENOMEM, "license flags: out of memory");
fail:
	free(decl);
	json_decref(*out);
	*out = NULL;
	return rc;
}

static json_t *classes_json(const char *id)
{
	json_t *a = json_array();
	unsigned cls = spdx_lookup(id) ? spdx_classes(id) : SPDX_UNKNOWN;
	for (unsigned bit = 1; a && bit <= SPDX_UNKNOWN; bit <<= 1)
		if ((cls & bit) && json_array_append_new(a, json_string(spdx_class_name(bit)))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* One "lineage" entry; id: the normalized license or NULL. */
static json_t *lineage_entry(const struct lic_ancestor *a, const char *id)
{
	json_t *e = json_pack("{s:o, s:o, s:o, s:i, s:o}", "name", str_or_null(a->name), "license",
			      str_or_null(id), "classes", id ? classes_json(id) : json_array(), "depth",
			      a->depth ? (int)a->depth : 1, "via", str_or_null(a->via));
	if (e && a->loop)
		json_object_set_new(e, "loop", json_true());
	if (e && a->cut)
		json_object_set_new(e, "cut", json_true());
	if (e && !a->loop && json_array_size(a->licenses) > 1)
		json_object_set_new(e, "licenses", json_deep_copy(a->licenses));
	return e;
}

/* Every license the card declares, normalized, as a new JSON array: the
 * entries of a `license` list (card "licenses"), else the one `license`
 * (NOASSERTION when none). license_name names an `other` entry. NULL: out
 * of memory. */
static json_t *declared_list(const json_t *card, const char *decl)
{
	json_t *all = json_array(), *x;
	const char *lname = json_string_value(json_object_get(card, "license_name"));
	size_t i;
	if (!all)
		return NULL;
	json_array_foreach(json_object_get(card, "licenses"), i, x) {
		char *id = NULL;
		if (!json_is_string(x))
			continue;
		if (spdx_normalize(json_string_value(x), lname, &id) || json_array_append_new(all, json_string(id))) {
			free(id);
			json_decref(all);
			return NULL;
		}
		free(id);
	}
	if (!json_array_size(all) && json_array_append_new(all, json_string(decl))) {
		json_decref(all);
		return NULL;
	}
	return all;
}

/* The ids of a "licenses" array as a C array (borrowed strings); NULL when
 * empty or out of memory (*n 0 then). */
static const char **id_vector(const json_t *arr, size_t *n)
{
	*n = 0;
	size_t k = json_array_size(arr), i;
	const char **v = k ? calloc(k, sizeof *v) : NULL;
	json_t *x;
	if (!v)
		return NULL;
	json_array_foreach(arr, i, x)
		if (json_is_string(x))
			v[(*n)++] = json_string_value(x);
	return v;
}

int lic_assess(const json_t *card, const char *text, size_t text_len, const char *license_file,
	       const struct lic_ancestor *anc, size_t nanc, const struct policy *pol, json_t **out)
{
	*out = NULL;
	const char *declared = json_string_value(json_object_get(card, "license"));
	const char *lname = json_string_value(json_object_get(card, "license_name"));
	const char *llink = json_string_value(json_object_get(card, "license_link"));
	struct licdetect_result det;
	int have_det = 0, rc;
	if (text) {
		if ((rc = licdetect_text(text, text_len, &det)))
			return rc;
		have_det = det.id[0] != '\0';
	}
	char *decl = NULL;
	if ((rc = spdx_normalize(declared, lname, &decl)))
		return rc;
	json_t *o = json_object(), *lin = json_array(), *flags = NULL;
	const char **lids = nanc ? calloc(nanc, sizeof *lids) : NULL;
	char **owned = nanc ? calloc(nanc, sizeof *owned) : NULL;
	if (!o || !lin || (nanc && (!lids || !owned)))
		goto oom;
	int bad = 0;
	bad |= json_object_set_new(o, "declared", str_or_null(declared));
	bad |= json_object_set_new(o, "license_name", str_or_null(lname));
	bad |= json_object_set_new(o, "license_link", str_or_null(llink));
	bad |= json_object_set_new(o, "spdx", json_string(decl));
	bad |= json_object_set_new(o, "classes", classes_json(decl));
	if (have_det) {
		json_t *d = json_pack("{s:o, s:s, s:f, s:f, s:b, s:s, s:f, s:I}", "file", str_or_null(license_file),
				      "id", det.id, "score", det.score, "coverage", det.coverage, "matched",
				      det.matched, "runner_up", det.runner_up, "runner_up_score",
				      det.runner_up_score, "extra", (json_int_t)det.extra);
		bad |= json_object_set_new(o, "detected", d);
	} else {
		bad |= json_object_set_new(o, "detected", json_null());
	}
	for (size_t i = 0; i < nanc; i++) {
		if (anc[i].license && spdx_normalize(anc[i].license, NULL, &owned[i]))
			goto oom;
		lids[i] = owned[i];
		bad |= json_array_append_new(lin, lineage_entry(&anc[i], owned[i]));
	}
	bad |= json_object_set(o, "lineage", lin);
	/* every declared license applies: all entries of a list, and `other`
	 * under its license_name (the normalized ids, not the raw card value) */
	json_t *all = declared_list(card, decl);
	if (!all)
		goto oom;
	bad |= json_object_set_new(o, "licenses", all);
	size_t ndecl;
	const char **dv = id_vector(all, &ndecl);
	if (!dv)
		goto oom;
	struct policy_decision pd;
	rc = policy_evaluate_list(pol, dv, ndecl, have_det && det.matched ? det.id : NULL, lids, nanc, &pd);
	free(dv);
	if (rc)
		goto oom;
	bad |= json_object_set_new(o, "verdict", json_string(policy_verdict_name(pd.verdict)));
	bad |= json_object_set_new(o, "rule", json_string(pd.rule));
	bad |= json_object_set_new(o, "decided_by",
				   json_pack("{s:s, s:s}", "license", pd.license, "source", pd.source));
	bad |= json_object_set_new(o, "enforce", json_boolean(policy_enforce(pol)));
	if ((rc = lic_flags(declared, lname, have_det ? &det : NULL, anc, nanc, &flags)))
		goto fail;
	bad |= json_object_set_new(o, "flags", flags);
	if (bad)
		goto oom;
	for (size_t i = 0; i < nanc; i++)
		free(owned[i]);
	free(owned);
	free(lids);
	free(decl);
	json_decref(lin);
	*out = o;
	return 0;
oom:
	rc = md_fail(MD_ENOMEM, "license record: out of memory");
fail:
	for (size_t i = 0; owned && i < nanc; i++)
		free(owned[i]);
	free(owned);
	free(lids);
	free(decl);
	json_decref(lin);
	json_decref(o);
	return rc;
}

/* "https://HOST/REPO/{blob,resolve,raw}/REV/PATH" with REPO = repo (any
 * case): PATH, else NULL. */
static const char *link_into_repo(const char *link, const char *repo)
{
	const char *p = strstr(link, "://");
	size_t rl = repo ? strlen(repo) : 0;
	if (!p || !rl || (strncmp(link, "https://", 8) && strncmp(link, "http://", 7)))
		return NULL;
	if (!(p = strchr(p + 3, '/')) || strncasecmp(p + 1, repo, rl) || p[1 + rl] != '/')
		return NULL;
	p += 2 + rl;
	static const char *const kinds[] = { "blob/", "resolve/", "raw/" };
	for (size_t k = 0; k < 3; k++) {
		size_t kl = strlen(kinds[k]);
		if (!strncmp(p, kinds[k], kl)) {
			const char *rev_end = strchr(p + kl, '/');
			return rev_end && rev_end[1] && !strpbrk(rev_end + 1, "?#") ? rev_end + 1 : NULL;
		}
	}
	return NULL;
}

const char *lic_pick_file(const char *const *files, size_t nfiles, const char *license_link,
			  const char *repo)
{
	if (license_link && *license_link && strstr(license_link, "://"))
		license_link = link_into_repo(license_link, repo);
	if (license_link && *license_link) {
		const char *l = license_link;
		while (l[0] == '.' && l[1] == '/')
			l += 2;
		if (util_check_relpath(l) == 0)
			for (size_t i = 0; i < nfiles; i++)
				if (files[i] && !strcmp(files[i], l))
					return files[i];
	}
	static const char *const names[] = { "LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE",
					     "LICENCE.md", "LICENCE.txt", "COPYING", "license", "license.md",
					     "license.txt", "LICENSE.MD", "LICENSE.TXT" };
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
		for (size_t i = 0; i < nfiles; i++)
			if (files[i] && !strcmp(files[i], names[k]))
				return files[i];
	return NULL;
}

int lic_reevaluate(json_t *record, const struct policy *pol)
{
	if (!json_is_object(record))
		return md_fail(MD_EINVAL, "license record: not an object");
	const char *decl = json_string_value(json_object_get(record, "spdx"));
	json_t *det = json_object_get(record, "detected");
	const char *detected = json_is_true(json_object_get(det, "matched"))
				       ? json_string_value(json_object_get(det, "id"))
				       : NULL;
	json_t *lin = json_object_get(record, "lineage");
	/* each ancestor's license, and every one of those that list several */
	size_t nlin = json_array_size(lin), n = 0, ndecl = 0;
	for (size_t i = 0; i < nlin; i++) {
		size_t k = json_array_size(json_object_get(json_array_get(lin, i), "licenses"));
		n += k > 1 ? k : 1;
	}
	const char **ids = n ? calloc(n, sizeof *ids) : NULL;
	size_t *anc = n ? calloc(n, sizeof *anc) : NULL;   /* ids[j] is of lineage[anc[j]] */
	if (n && (!ids || !anc)) {
		free(ids);
		free(anc);
		return md_fail(MD_ENOMEM, "license record: out of memory");
	}
	n = 0;
	for (size_t i = 0; i < nlin; i++) {
		json_t *e = json_array_get(lin, i), *all = json_object_get(e, "licenses");
		if (json_array_size(all) > 1)
			for (size_t k = 0; k < json_array_size(all); k++) {
				anc[n] = i;
				ids[n++] = json_string_value(json_array_get(all, k));
			}
		else {
			anc[n] = i;
			ids[n++] = json_string_value(json_object_get(e, "license"));
		}
	}
	/* all declared licenses (records from before "licenses": the one spdx) */
	const char **dv = id_vector(json_object_get(record, "licenses"), &ndecl);
	struct policy_decision pd;
	int rc = dv ? policy_evaluate_list(pol, dv, ndecl, detected, ids, n, &pd)
		    : policy_evaluate(pol, decl, detected, ids, n, &pd);
	free(dv);
	free(ids);
	/* the source names the ancestor: "lineage[N]" indexes the lineage */
	size_t j;
	if (!rc && sscanf(pd.source, "lineage[%zu]", &j) == 1 && j < n)
		snprintf(pd.source, sizeof pd.source, "lineage[%zu]", anc[j]);
	free(anc);
	if (rc)
		return rc;
	int bad = json_object_set_new(record, "verdict", json_string(policy_verdict_name(pd.verdict)));
	bad |= json_object_set_new(record, "rule", json_string(pd.rule));
	bad |= json_object_set_new(record, "decided_by",
				   json_pack("{s:s, s:s}", "license", pd.license, "source", pd.source));
	bad |= json_object_set_new(record, "enforce", json_boolean(policy_enforce(pol)));
	return bad ? md_fail(MD_ENOMEM, "license record: out of memory") : 0;
}

static int lineage_kind(const char *k)
{
	return k && (!strcmp(k, "declared-vs-lineage") || !strcmp(k, "lineage-unknown") ||
		     !strcmp(k, "lineage-cycle"));
}

int lic_relineage(json_t *record, const struct lic_ancestor *anc, size_t nanc, const struct policy *pol)
{
	if (!json_is_object(record))
		return md_fail(MD_EINVAL, "license record: not an object");
	const char *spdx = json_string_value(json_object_get(record, "spdx"));
	char *decl = NULL;
	int rc = spdx ? ((decl = strdup(spdx)) ? 0 : MD_ENOMEM)
		      : spdx_normalize(json_string_value(json_object_get(record, "declared")),
				       json_string_value(json_object_get(record, "license_name")), &decl);
	if (rc)
		return rc == MD_ENOMEM ? md_fail(MD_ENOMEM, "license record: out of memory") : rc;
	json_t *lin = json_array(), *flags = json_array(), *f;
	int bad = !lin || !flags;
	for (size_t i = 0; !bad && i < nanc; i++) {
		char *id = NULL;
		if (anc[i].license && !anc[i].loop && spdx_normalize(anc[i].license, NULL, &id)) {
			bad = 1;
			break;
		}
		bad |= json_array_append_new(lin, lineage_entry(&anc[i], id));
		free(id);
	}
	size_t i;
	json_array_foreach(json_object_get(record, "flags"), i, f)
		if (!bad && !lineage_kind(json_string_value(json_object_get(f, "kind"))))
			bad |= json_array_append(flags, f);
	if (!bad && (rc = lineage_flags(decl, anc, nanc, flags)))
		bad = 1;
	free(decl);
	if (!bad) {
		bad |= json_object_set_new(record, "lineage", lin);
		bad |= json_object_set_new(record, "flags", flags);
		lin = flags = NULL;
	}
	json_decref(lin);
	json_decref(flags);
	if (bad)
		return md_fail(MD_ENOMEM, "license record: out of memory");
	return lic_reevaluate(record, pol);
}

void lic_verdict_message(const json_t *record, char *buf, size_t n)
{
	json_t *by = json_object_get(record, "decided_by");
	const char *v = json_string_value(json_object_get(record, "verdict"));
	const char *l = json_string_value(json_object_get(by, "license"));
	const char *src = json_string_value(json_object_get(by, "source"));
	const char *rule = json_string_value(json_object_get(record, "rule"));
	snprintf(buf, n, "%s: %s (%s) by %s", v ? v : "unknown", l ? l : "?", src ? src : "?", rule ? rule : "?");
}
