/* Unit tests for meta/spdx, meta/licdetect and meta/lic: the Hub -> SPDX
 * table, license text detection (reflowed, re-held, Markdown-wrapped texts
 * match; near misses do not), speed, and the disagreement flags.
 * Run from the repository root (reads tests/data/licenses/). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "meta/card.h"
#include "meta/lic.h"
#include "meta/licdetect.h"
#include "meta/spdx.h"

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (run from the repository root)", path);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)sz + 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
	b[sz] = '\0';
	fclose(f);
	*n = (size_t)sz;
	return b;
}

static const char *corpus_text(const char *id)
{
	for (size_t i = 0; i < licdetect_corpus_n; i++)
		if (!strcmp(licdetect_corpus[i].id, id))
			return licdetect_corpus[i].text;
	fail_msg("%s not in corpus", id);
	return NULL;
}

static void norm_is(const char *id_in, const char *name, const char *want)
{
	char *out = NULL;
	assert_int_equal(spdx_normalize(id_in, name, &out), 0);
	if (strcmp(out, want))
		fail_msg("spdx_normalize(%s, %s) = %s, want %s", id_in ? id_in : "NULL", name ? name : "NULL", out,
			 want);
	free(out);
}

static void test_spdx_table(void **state)
{
	(void)state;
	norm_is("apache-2.0", NULL, "Apache-2.0");
	norm_is("Apache-2.0", NULL, "Apache-2.0");
	norm_is("MIT", NULL, "MIT");
	norm_is("mit", NULL, "MIT");
	norm_is("gpl-3.0", NULL, "GPL-3.0-only");
	norm_is("gpl-2.0", NULL, "GPL-2.0-only");
	norm_is("lgpl-2.1", NULL, "LGPL-2.1-only");
	norm_is("agpl-3.0", NULL, "AGPL-3.0-only");
	norm_is("cc-by-4.0", NULL, "CC-BY-4.0");
	norm_is("cc-by-nc-4.0", NULL, "CC-BY-NC-4.0");
	norm_is("bsd-3-clause", NULL, "BSD-3-Clause");
	norm_is("cc0-1.0", NULL, "CC0-1.0");
	norm_is("openrail", NULL, "LicenseRef-OpenRAIL");
	norm_is("openrail++", NULL, "LicenseRef-OpenRAIL-PlusPlus-M");
	norm_is("llama2", NULL, "LicenseRef-Llama-2-Community");
	norm_is("llama3", NULL, "LicenseRef-Llama-3-Community");
	norm_is("llama3.1", NULL, "LicenseRef-Llama-3.1-Community");
	norm_is("LLAMA3.2", NULL, "LicenseRef-Llama-3.2-Community");
	norm_is("llama3.3", NULL, "LicenseRef-Llama-3.3-Community");
	norm_is("llama4", NULL, "LicenseRef-Llama-4-Community");
	norm_is("gemma", NULL, "LicenseRef-Gemma");
	norm_is("bigscience-openrail-m", NULL, "LicenseRef-BigScience-OpenRAIL-M");
	norm_is("creativeml-openrail-m", NULL, "LicenseRef-CreativeML-OpenRAIL-M");
	norm_is("bigscience-bloom-rail-1.0", NULL, "LicenseRef-BigScience-BLOOM-RAIL-1.0");
	norm_is("other", "Acme Research License v2", "LicenseRef-Acme-Research-License-v2");
	norm_is("other", NULL, "LicenseRef-other");
	/* vendor licenses named under other: known ids with their classes */
	norm_is("other", "deepseek", "LicenseRef-DeepSeek");
	norm_is("deepseek", NULL, "LicenseRef-DeepSeek");
	norm_is("other", "tongyi-qianwen", "LicenseRef-Qwen");
	norm_is("qwen", NULL, "LicenseRef-Qwen");
	norm_is("other", "qwen-research", "LicenseRef-Qwen-Research");
	norm_is("other", "mrl", "LicenseRef-Mistral-Research");
	norm_is("mistral-research", NULL, "LicenseRef-Mistral-Research");
	norm_is("other", "llama3", "LicenseRef-Llama-3-Community");
	norm_is("other", "apache-2.0", "LicenseRef-apache-2.0"); /* "other" is not an SPDX license */
	assert_true(spdx_classes("LicenseRef-Qwen-Research") & SPDX_NONCOMMERCIAL);
	assert_true(spdx_classes("LicenseRef-Mistral-Research") & SPDX_NONCOMMERCIAL);
	assert_true(spdx_classes("LicenseRef-DeepSeek") & SPDX_RESTRICTED);
	assert_true(spdx_classes("LicenseRef-Qwen") & SPDX_RESTRICTED);
	norm_is("unknown", NULL, "NOASSERTION");
	norm_is(NULL, NULL, "NOASSERTION");
	norm_is("", NULL, "NOASSERTION");
	norm_is("my weird/license!", NULL, "LicenseRef-my-weird-license");
	norm_is("LicenseRef-Foo", NULL, "LicenseRef-Foo");
	/* every Hub id is unique, every id is a valid SPDX idstring */
	for (size_t i = 0; i < spdx_count(); i++) {
		const struct spdx_license *a = spdx_at(i);
		assert_non_null(a->id);
		assert_true(a->classes != 0);
		for (const char *c = a->id; *c; c++)
			assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-", *c));
		for (size_t j = i + 1; j < spdx_count(); j++) {
			const struct spdx_license *b = spdx_at(j);
			if (a->hub && b->hub)
				assert_string_not_equal(a->hub, b->hub);
			assert_string_not_equal(a->id, b->id);
		}
	}
	/* the Hub's documented list (docs/hub/repositories-licenses) is covered */
	static const char *const hub[] = {
		"apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
		"bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
		"bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
		"cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
		"cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
		"cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0",
		"cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "agpl-3.0",
		"gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c", "ms-pl",
		"mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense",
		"zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "gemma", "unknown", "other",
	};
	for (size_t i = 0; i < sizeof hub / sizeof hub[0]; i++)
		if (!spdx_lookup(hub[i]))
			fail_msg("Hub id %s is not mapped", hub[i]);
}

static void test_spdx_classes(void **state)
{
	(void)state;
	assert_true(spdx_classes("mit") & SPDX_PERMISSIVE);
	assert_true(spdx_classes("cc-by-nc-4.0") & SPDX_NONCOMMERCIAL);
	assert_true(spdx_classes("CC-BY-NC-SA-4.0") & SPDX_COPYLEFT);
	assert_true(spdx_classes("gpl-3.0") & SPDX_COPYLEFT);
	assert_true(spdx_classes("lgpl-2.1") & SPDX_WEAK_COPYLEFT);
	assert_true(spdx_classes("llama3.1") & SPDX_RESTRICTED);
	assert_true(spdx_classes("gemma") & SPDX_RESTRICTED);
	assert_true(spdx_classes("creativeml-openrail-m") & SPDX_RESTRICTED);
	assert_true(spdx_classes("cc-by-nd-4.0") & SPDX_NODERIVS);
	assert_true(spdx_classes("cc0-1.0") & SPDX_PUBLIC_DOMAIN);
	assert_int_equal(spdx_classes("LicenseRef-whatever"), SPDX_UNKNOWN);
	assert_int_equal(spdx_classes("other"), SPDX_UNKNOWN);
	assert_string_equal(spdx_family("llama3.3"), "llama");
	unsigned b;
	assert_int_equal(spdx_class_parse("non-commercial", &b), 0);
	assert_int_equal(b, SPDX_NONCOMMERCIAL);
	assert_int_equal(spdx_class_parse("nope", &b), MD_EINVAL);
	assert_string_equal(spdx_class_name(SPDX_RESTRICTED), "restricted-use");
}

static void test_corpus_self_match(void **state)
{
	(void)state;
	assert_true(licdetect_corpus_n >= 60);
	for (size_t i = 0; i < licdetect_corpus_n; i++) {
		struct licdetect_result r;
		const char *t = licdetect_corpus[i].text;
		assert_int_equal(licdetect_text(t, strlen(t), &r), 0);
		if (strcmp(r.id, licdetect_corpus[i].id) || !r.matched || r.score < 0.999)
			fail_msg("%s detected as %s (%.3f)", licdetect_corpus[i].id, r.id, r.score);
		/* a corpus id is a table id (so classes and policies apply) */
		if (!spdx_lookup(licdetect_corpus[i].id))
			fail_msg("corpus id %s is not in the SPDX table", licdetect_corpus[i].id);
	}
	/* the model licenses are all there */
	static const char *const want[] = {
		"LicenseRef-Llama-2-Community",	  "LicenseRef-Llama-3-Community",
		"LicenseRef-Llama-3.1-Community", "LicenseRef-Llama-3.2-Community",
		"LicenseRef-Llama-3.3-Community", "LicenseRef-Llama-4-Community",
		"LicenseRef-BigScience-OpenRAIL-M", "LicenseRef-CreativeML-OpenRAIL-M", "LicenseRef-Gemma",
		"Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "GPL-2.0-only", "GPL-3.0-only",
		"LGPL-2.1-only", "LGPL-3.0-only", "MPL-2.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0",
		"CC0-1.0", "Unlicense", "ISC", "Zlib",
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!licdetect_has(want[i]))
			fail_msg("%s missing from the corpus", want[i]);
}

static void expect_match(const char *path, const char *id)
{
	size_t n;
	char *t = slurp(path, &n);
	struct licdetect_result r;
	assert_int_equal(licdetect_text(t, n, &r), 0);
	if (strcmp(r.id, id) || !r.matched || r.score < LICDETECT_MATCH)
		fail_msg("%s: got %s score %.3f coverage %.3f matched %d, want %s", path, r.id, r.score, r.coverage,
			 r.matched, id);
	free(t);
}

static void test_variants_match(void **state)
{
	(void)state;
	/* reflowed to 60 columns, curly quote, project copyright line, Apache
	 * appendix with a boilerplate notice */
	expect_match("tests/data/licenses/apache-2.0-reflowed.txt", "Apache-2.0");
	/* holder changed in three places, rewrapped, CRLF */
	expect_match("tests/data/licenses/bsd-3-clause-acme-crlf.txt", "BSD-3-Clause");
	/* Markdown: heading, bold terms, [url](url) links, bullets, "1\." */
	expect_match("tests/data/licenses/llama-3.1-markdown.md", "LicenseRef-Llama-3.1-Community");
	expect_match("tests/data/licenses/mit-jane.txt", "MIT");
	/* Debian's own copies: different layout and header */
	expect_match("tests/data/licenses/debian-GPL-3.txt", "GPL-3.0-only");
	expect_match("tests/data/licenses/debian-Apache-2.0.txt", "Apache-2.0");
	expect_match("tests/data/licenses/debian-MPL-2.0.txt", "MPL-2.0");
	expect_match("tests/data/licenses/debian-LGPL-2.1.txt", "LGPL-2.1-only");
	/* in-memory variants: upper case + "licence" spelling + bullets */
	const char *mit = corpus_text("MIT");
	char *up = strdup(mit);
	for (char *c = up; *c; c++)
		*c = (char)((*c >= 'a' && *c <= 'z') ? *c - 32 : *c);
	struct licdetect_result r;
	assert_int_equal(licdetect_text(up, strlen(up), &r), 0);
	assert_string_equal(r.id, "MIT");
	assert_true(r.matched);
	free(up);
	/* each Llama version is told from the others */
	const char *ll[] = { "LicenseRef-Llama-3-Community", "LicenseRef-Llama-3.2-Community",
			     "LicenseRef-Llama-3.3-Community", "LicenseRef-Llama-4-Community" };
	for (int i = 0; i < 4; i++) {
		const char *t = corpus_text(ll[i]);
		assert_int_equal(licdetect_text(t, strlen(t), &r), 0);
		assert_string_equal(r.id, ll[i]);
		assert_true(r.score - r.runner_up_score > 0.01);
	}
}

static void test_near_miss(void **state)
{
	(void)state;
	size_t n;
	struct licdetect_result r;
	/* Apache-2.0 without section 3 (the patent grant): Dice alone is ~0.95,
	 * but a tenth of the license is missing: no match */
	char *t = slurp("tests/data/licenses/apache-2.0-no-patent-grant.txt", &n);
	assert_int_equal(licdetect_text(t, n, &r), 0);
	assert_string_equal(r.id, "Apache-2.0");
	assert_false(r.matched);
	assert_true(r.coverage < LICDETECT_COVERAGE);
	free(t);
	/* a different license that is not in the corpus */
	t = slurp("tests/data/licenses/custom-research-only.txt", &n);
	assert_int_equal(licdetect_text(t, n, &r), 0);
	assert_false(r.matched);
	assert_true(r.score < 0.5);
	free(t);
	/* Apache with sections 3 to 6 removed: under 0.9 by score as well */
	const char *ap = corpus_text("Apache-2.0");
	const char *s3 = strstr(ap, "3. Grant of Patent License."), *s7 = strstr(ap, "7. Disclaimer of Warranty.");
	assert_non_null(s3);
	assert_non_null(s7);
	size_t head = (size_t)(s3 - ap);
	char *cut = malloc(strlen(ap) + 1);
	memcpy(cut, ap, head);
	strcpy(cut + head, s7);
	assert_int_equal(licdetect_text(cut, strlen(cut), &r), 0);
	assert_false(r.matched);
	assert_true(r.score < LICDETECT_MATCH);
	free(cut);
	/* GPL-3.0 is not AGPL-3.0 and vice versa */
	const char *agpl = corpus_text("AGPL-3.0-only");
	assert_int_equal(licdetect_text(agpl, strlen(agpl), &r), 0);
	assert_string_equal(r.id, "AGPL-3.0-only");
	double sc, cov;
	assert_int_equal(licdetect_score(agpl, strlen(agpl), "GPL-3.0-only", &sc, &cov), 0);
	assert_true(sc < 1.0);
	assert_int_equal(licdetect_score(agpl, strlen(agpl), "No-Such-1.0", &sc, &cov), MD_ENOENT);
	/* empty and binary input */
	assert_int_equal(licdetect_text("", 0, &r), 0);
	assert_false(r.matched);
	unsigned char junk[20000];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 7919u >> 3);
	assert_int_equal(licdetect_text((const char *)junk, sizeof junk, &r), 0);
	assert_false(r.matched);
}

static void test_normalize(void **state)
{
	(void)state;
	char *out;
	const char *in = "## **Licence** Terms\n\nCopyright (c) 2024 Someone\n(a) The  “Software” is non-\n"
			 "transferable; see [the site](https://example.org/x).\n  1. First item\n";
	assert_int_equal(licdetect_normalize(in, strlen(in), &out), 0);
	assert_string_equal(out, "license terms the software is nontransferable see the site first item");
	free(out);
}

static void test_speed(void **state)
{
	(void)state;
	/* 20 KB of real license text (the GPL-3.0 preamble and terms) */
	const char *g = corpus_text("GPL-3.0-only");
	size_t n = 20 * 1024;
	assert_true(strlen(g) > n);
	struct licdetect_result r;
	assert_int_equal(licdetect_text(g, n, &r), 0); /* first call builds the corpus */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rounds = 20;
	for (int i = 0; i < rounds; i++)
		assert_int_equal(licdetect_text(g, n, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / rounds;
	print_message("licdetect: 20 KB text against %zu licenses: %.3f ms per detection\n", licdetect_corpus_n, ms);
	assert_true(ms < 50.0);
	assert_string_equal(r.id, "GPL-3.0-only");
}

static int has_flag(json_t *flags, const char *kind)
{
	size_t i;
	json_t *f;
	json_array_foreach(flags, i, f)
		if (!strcmp(json_string_value(json_object_get(f, "kind")), kind))
			return 1;
	return 0;
}

static void test_flags(void **state)
{
	(void)state;
	struct licdetect_result det;
	const char *l3 = corpus_text("LicenseRef-Llama-3-Community");
	assert_int_equal(licdetect_text(l3, strlen(l3), &det), 0);
	json_t *f;
	/* card says mit, LICENSE is Llama 3 */
	assert_int_equal(lic_flags("mit", NULL, &det, NULL, 0, &f), 0);
	assert_true(has_flag(f, "declared-vs-detected"));
	char *s = json_dumps(f, 0);
	assert_non_null(strstr(s, "LicenseRef-Llama-3-Community"));
	free(s);
	json_decref(f);
	/* agreeing card: no flag */
	assert_int_equal(lic_flags("llama3", NULL, &det, NULL, 0, &f), 0);
	assert_int_equal(json_array_size(f), 0);
	json_decref(f);
	assert_int_equal(lic_flags("other", "llama3", &det, NULL, 0, &f), 0);
	assert_int_equal(json_array_size(f), 0);
	json_decref(f);
	/* card says "other" (a license not in the Hub's list) or an unknown
	 * name, but the LICENSE text is a known license: they disagree */
	assert_int_equal(lic_flags("other", "acme-research", &det, NULL, 0, &f), 0);
	assert_true(has_flag(f, "declared-vs-detected"));
	json_decref(f);
	assert_int_equal(lic_flags("other", NULL, &det, NULL, 0, &f), 0);
	assert_true(has_flag(f, "declared-vs-detected"));
	json_decref(f);
	/* card says apache-2.0 but the base model is Llama-licensed */
	struct lic_ancestor anc[] = { { "meta-llama/Llama-3.1-8B", "llama3.1" },
				      { "mistralai/Mistral-7B-v0.1", "apache-2.0" },
				      { "someone/not-stored", NULL } };
	assert_int_equal(lic_flags("apache-2.0", NULL, NULL, anc, 3, &f), 0);
	assert_true(has_flag(f, "declared-vs-lineage"));
	assert_true(has_flag(f, "lineage-unknown"));
	s = json_dumps(f, 0);
	assert_non_null(strstr(s, "meta-llama/Llama-3.1-8B"));
	assert_null(strstr(s, "mistralai/Mistral-7B-v0.1 is")); /* permissive ancestor: no flag */
	free(s);
	json_decref(f);
	/* the same family (llama3.1 derivative declared llama3.1) is fine */
	assert_int_equal(lic_flags("llama3.1", NULL, NULL, anc, 1, &f), 0);
	assert_int_equal(json_array_size(f), 0);
	json_decref(f);
	/* no license; unmatched text */
	struct licdetect_result miss;
	assert_int_equal(licdetect_text("Use it only on Tuesdays.", 24, &miss), 0);
	assert_int_equal(lic_flags(NULL, NULL, &miss, NULL, 0, &f), 0);
	assert_true(has_flag(f, "no-license"));
	assert_true(has_flag(f, "license-text-unmatched"));
	json_decref(f);
	/* a matched text with a clause added */
	const char *mit = corpus_text("MIT");
	char *mod = malloc(strlen(mit) + 400);
	sprintf(mod, "%s\nAdditional restriction: the Software and any model weights derived from it may not be "
		     "used for any commercial purpose or in any product offered for sale, and may not be used to "
		     "train other models without written permission.\n",
		mit);
	assert_int_equal(licdetect_text(mod, strlen(mod), &det), 0);
	assert_int_equal(lic_flags("mit", NULL, &det, NULL, 0, &f), 0);
	assert_true(has_flag(f, "license-text-modified"));
	json_decref(f);
	free(mod);
}

static void test_assess(void **state)
{
	(void)state;
	json_t *card;
	const char *c = "---\nlicense: apache-2.0\nbase_model: meta-llama/Llama-3.1-8B\n---\n";
	assert_int_equal(card_parse(c, strlen(c), &card), 0);
	const char *l3 = corpus_text("LicenseRef-Llama-3.1-Community");
	struct lic_ancestor anc[] = { { "meta-llama/Llama-3.1-8B", "llama3.1" } };
	struct policy *p;
	const char *pol = "deny = @restricted-use\n";
	assert_int_equal(policy_parse(pol, strlen(pol), "policy.conf", &p), 0);
	json_t *rec;
	assert_int_equal(lic_assess(card, l3, strlen(l3), "LICENSE", anc, 1, p, &rec), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "spdx")), "Apache-2.0");
	json_t *det = json_object_get(rec, "detected");
	assert_string_equal(json_string_value(json_object_get(det, "id")), "LicenseRef-Llama-3.1-Community");
	assert_true(json_is_true(json_object_get(det, "matched")));
	assert_string_equal(json_string_value(json_object_get(det, "file")), "LICENSE");
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "deny");
	assert_string_equal(json_string_value(json_object_get(rec, "rule")), "policy.conf:1: deny = @restricted-use");
	assert_true(has_flag(json_object_get(rec, "flags"), "declared-vs-detected"));
	assert_true(has_flag(json_object_get(rec, "flags"), "declared-vs-lineage"));
	assert_int_equal(json_array_size(json_object_get(rec, "lineage")), 1);
	char msg[256];
	lic_verdict_message(rec, msg, sizeof msg);
	assert_string_equal(msg, "deny: LicenseRef-Llama-3.1-Community (detected) by policy.conf:1: deny = @restricted-use");
	/* the same record under another policy, without the text */
	struct policy *p2;
	const char *pol2 = "allow = llama3.1\ndeny = apache-2.0\n";
	assert_int_equal(policy_parse(pol2, strlen(pol2), "other.conf", &p2), 0);
	assert_int_equal(lic_reevaluate(rec, p2), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "deny");
	assert_string_equal(json_string_value(json_object_get(rec, "rule")), "other.conf:2: deny = apache-2.0");
	policy_free(p2);
	assert_int_equal(lic_reevaluate(rec, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "allow");
	json_decref(rec);
	/* no card, no text, no policy */
	assert_int_equal(lic_assess(NULL, NULL, 0, NULL, NULL, 0, NULL, &rec), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "spdx")), "NOASSERTION");
	assert_true(json_is_null(json_object_get(rec, "detected")));
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "allow");
	json_decref(rec);
	policy_free(p);
	json_decref(card);
}

/* A stored record gets the chain as it is now: grandparents count, a
 * parent stored after the child replaces lineage-unknown, loops and cuts
 * are flagged, and the other flags stay. */
static void test_relineage(void **state)
{
	(void)state;
	json_t *card, *rec;
	const char *c = "---\nlicense: mit\nbase_model: acme/ft\n---\n";
	assert_int_equal(card_parse(c, strlen(c), &card), 0);
	struct lic_ancestor missing[] = { { "acme/ft", NULL, "x/ft2", 1, 0, 0 } };
	struct policy *p;
	const char *pol = "deny = @restricted-use\n";
	assert_int_equal(policy_parse(pol, strlen(pol), "p.conf", &p), 0);
	assert_int_equal(lic_assess(card, NULL, 0, NULL, missing, 1, p, &rec), 0);
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "allow");
	assert_true(has_flag(json_object_get(rec, "flags"), "lineage-unknown"));
	json_array_append_new(json_object_get(rec, "flags"), json_pack("{s:s,s:s}", "kind", "no-license",
									  "message", "kept"));
	struct lic_ancestor chain[] = { { "acme/ft", "apache-2.0", "x/ft2", 1, 0, 0 },
					{ "meta/llama", "llama3.1", "acme/ft", 2, 0, 0 },
					{ "x/ft2", NULL, "meta/llama", 3, 1, 0 } };
	assert_int_equal(lic_relineage(rec, chain, 3, p), 0);
	json_t *fl = json_object_get(rec, "flags");
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "deny");
	assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "decided_by"), "source")),
			    "lineage[1]");
	assert_false(has_flag(fl, "lineage-unknown"));
	assert_true(has_flag(fl, "no-license"));
	assert_int_equal(json_array_size(fl), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fl, 1), "message")),
			    "the card declares MIT but ancestor meta/llama (base model of acme/ft) is "
			    "LicenseRef-Llama-3.1-Community (restricted-use): its terms carry to derivatives");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fl, 2), "message")),
			    "meta/llama names x/ft2 as its base model, which derives from it: the loop is not followed");
	json_t *lin = json_object_get(rec, "lineage");
	assert_int_equal(json_array_size(lin), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(lin, 1), "depth")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(lin, 1), "via")), "acme/ft");
	assert_true(json_is_true(json_object_get(json_array_get(lin, 2), "loop")));
	/* self-reference, and a cut chain */
	struct lic_ancestor self[] = { { "x/s", NULL, "x/s", 1, 1, 0 }, { "x/m8", "mit", "x/m7", 8, 0, 1 } };
	assert_int_equal(lic_relineage(rec, self, 2, p), 0);
	fl = json_object_get(rec, "flags");
	assert_string_equal(json_string_value(json_object_get(rec, "verdict")), "allow");
	assert_int_equal(json_array_size(fl), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fl, 1), "message")),
			    "x/s names itself as its base model: ignored");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fl, 2), "kind")), "lineage-unknown");
	/* no chain at all: no lineage flags */
	assert_int_equal(lic_relineage(rec, NULL, 0, p), 0);
	assert_int_equal(json_array_size(json_object_get(rec, "flags")), 1);
	assert_int_equal(json_array_size(json_object_get(rec, "lineage")), 0);
	assert_int_equal(lic_relineage(json_null(), NULL, 0, p), MD_EINVAL);
	json_decref(rec);
	policy_free(p);
	json_decref(card);
}

/* The Apache-2.0 appendix as apache.org and Debian ship it, reflowed. */
static const char apache_appendix[] =
	"\n   APPENDIX: How to apply the Apache License to your work.\n\n"
	"      To apply the Apache License to your work, attach the following\n"
	"      boilerplate notice, with the fields enclosed by brackets \"[]\"\n"
	"      replaced with your own identifying information. (Don't include\n"
	"      the brackets!)  The text should be enclosed in the appropriate\n"
	"      comment syntax for the file format. We also recommend that a\n"
	"      file or class name and description of purpose be included on the\n"
	"      same \"printed page\" as the copyright notice for easier\n"
	"      identification within third-party archives.\n\n"
	"   %s\n\n"
	"   Licensed under the Apache License, Version 2.0 (the \"License\");\n"
	"   you may not use this file except in compliance with the License.\n"
	"   You may obtain a copy of the License at\n\n"
	"       http://www.apache.org/licenses/LICENSE-2.0\n\n"
	"   Unless required by applicable law or agreed to in writing, software\n"
	"   distributed under the License is distributed on an \"AS IS\" BASIS,\n"
	"   WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
	"   See the License for the specific language governing permissions and\n"
	"   limitations under the License.\n";

/* Detect t and check it is an exact Apache-2.0 match with no flag but the
 * ones in want_flag (NULL: none). */
static void expect_apache(const char *what, const char *t, size_t n, double min_score, const char *want_flag)
{
	struct licdetect_result r;
	assert_int_equal(licdetect_text(t, n, &r), 0);
	json_t *f;
	assert_int_equal(lic_flags("apache-2.0", NULL, &r, NULL, 0, &f), 0);
	int modified = has_flag(f, "license-text-modified");
	if (strcmp(r.id, "Apache-2.0") || !r.matched || r.score < min_score ||
	    modified != (want_flag != NULL))
		fail_msg("%s: %s matched %d score %.3f coverage %.3f extra %zu, modified flag %d (want %d)", what,
			 r.id, r.matched, r.score, r.coverage, r.extra, modified, want_flag != NULL);
	json_decref(f);
}

/* Every model that ships the canonical Apache LICENSE (with its APPENDIX)
 * is an exact match and not "modified"; a text that adds terms still is. */
static void test_apache_appendix(void **state)
{
	(void)state;
	const char *lic = corpus_text("Apache-2.0");
	size_t ll = strlen(lic), cap = ll + sizeof apache_appendix + 4096;
	char *t = malloc(cap);
	assert_non_null(t);
	expect_apache("canonical, no appendix", lic, ll, 0.999, NULL);
	memcpy(t, lic, ll);
	snprintf(t + ll, cap - ll, apache_appendix, "Copyright [yyyy] [name of copyright owner]");
	expect_apache("canonical + appendix", t, strlen(t), 0.999, NULL);
	snprintf(t + ll, cap - ll, apache_appendix, "Copyright 2024 Acme Inc.");
	expect_apache("canonical + filled-in appendix", t, strlen(t), 0.999, NULL);
	/* the filled-in notice alone, as many projects put it at the top */
	snprintf(t, cap, "Copyright 2024 Acme Inc.\n\n%s", lic);
	expect_apache("notice + canonical", t, strlen(t), 0.999, NULL);
	/* an added restriction is still read by a human */
	snprintf(t, cap, "%s\n10. Additional Restriction. You may not use the Work or any Derivative Works to "
		 "train, fine-tune or evaluate any machine learning model that competes with a product of the "
		 "Licensor, and you must obtain written permission from the Licensor before any commercial "
		 "deployment of the Work in a hosted service offered to third parties. Any such permission is personal "
		 "to You, may be revoked by the Licensor at any time without notice, and ends automatically if You "
		 "bring any claim against the Licensor or its affiliates in any court of any country.\n",
		 lic);
	ll = strlen(t);
	snprintf(t + ll, cap - ll, apache_appendix, "Copyright 2024 Acme Inc.");
	expect_apache("canonical + added clause + appendix", t, strlen(t), 0.9, "license-text-modified");
	free(t);
	/* Debian's copy, when the machine has one, and the copy in tests/data */
	const char *deb[] = { "/usr/share/common-licenses/Apache-2.0", "tests/data/licenses/debian-Apache-2.0.txt",
			      "tests/data/licenses/apache-2.0-reflowed.txt" };
	for (size_t i = 0; i < 3; i++) {
		FILE *fp = fopen(deb[i], "rb");
		if (!fp)
			continue;
		fclose(fp);
		size_t n;
		char *d = slurp(deb[i], &n);
		expect_apache(deb[i], d, n, 0.98, NULL);
		free(d);
	}
}

static void expect_license(const char *what, const char *declared, const char *id, const char *t, size_t n,
			   double min_score, int want_modified)
{
	struct licdetect_result r;
	assert_int_equal(licdetect_text(t, n, &r), 0);
	json_t *f;
	assert_int_equal(lic_flags(declared, NULL, &r, NULL, 0, &f), 0);
	int modified = has_flag(f, "license-text-modified");
	if (strcmp(r.id, id) || !r.matched || r.score < min_score || modified != want_modified)
		fail_msg("%s: %s matched %d score %.3f coverage %.3f extra %zu, modified flag %d (want %d)", what,
			 r.id, r.matched, r.score, r.coverage, r.extra, modified, want_modified);
	json_decref(f);
}

/* Terms a model publisher might add to a GPL text: enough of them (some 300
 * words) to be more than LIC_EXTRA_SHARE of even GPL-3's bigrams. */
static const char added_terms[] =
	"ADDITIONAL RESTRICTIONS. Notwithstanding any other provision of this License, the following "
	"restrictions apply to every copy of the Program and to every work based on the Program. First, "
	"you may not use the Program, its weights, its outputs or any derivative of them to train, "
	"fine-tune, distill or evaluate a machine learning model that competes with a product or service "
	"offered by the copyright holder or by any of its affiliates, subsidiaries or licensees. Second, "
	"you must obtain prior written permission from the copyright holder before deploying the Program "
	"in a hosted, managed or software-as-a-service offering that is made available to third parties, "
	"whether or not a fee is charged for that offering. Third, any permission granted under the "
	"second restriction is personal to the recipient, cannot be sublicensed, assigned or transferred, "
	"may be revoked by the copyright holder at any time and without notice, and terminates "
	"automatically if the recipient initiates litigation of any kind against the copyright holder. "
	"Fourth, you may not remove, obscure or alter any attribution notice, watermark, model card or "
	"usage policy that accompanies the Program, and you must display the name of the original author "
	"prominently in every user interface through which the Program or its outputs are presented. "
	"Fifth, you agree to report to the copyright holder, within thirty days of becoming aware of it, "
	"any security vulnerability, harmful behaviour, bias or misuse of the Program that you discover, "
	"together with enough detail to reproduce it. Sixth, use of the Program for military purposes, "
	"mass surveillance, biometric identification of natural persons, credit scoring, hiring decisions "
	"or the generation of political campaign material is prohibited in every jurisdiction. Seventh, "
	"these restrictions survive any termination of this License and bind every successor in interest "
	"of any recipient of the Program, including purchasers of substantially all of its assets.";

/* Debian's GPL-2, GPL-3 and LGPL-2.1 carry the FSF's "How to Apply These
 * Terms" section after END OF TERMS AND CONDITIONS: optional text, like
 * Apache's APPENDIX, so they are not "modified"; added terms still are. */
static void test_gpl_how_to_apply(void **state)
{
	(void)state;
	static const struct { const char *path, *declared, *id; } deb[] = {
		{ "/usr/share/common-licenses/GPL-2", "gpl-2.0", "GPL-2.0-only" },
		{ "/usr/share/common-licenses/GPL-3", "gpl-3.0", "GPL-3.0-only" },
		{ "/usr/share/common-licenses/LGPL-2.1", "lgpl-2.1", "LGPL-2.1-only" },
	};
	int ran = 0;
	for (size_t i = 0; i < sizeof deb / sizeof deb[0]; i++) {
		FILE *fp = fopen(deb[i].path, "rb");
		if (!fp)
			continue;
		fclose(fp);
		ran++;
		size_t n;
		char *d = slurp(deb[i].path, &n);
		expect_license(deb[i].path, deb[i].declared, deb[i].id, d, n, 0.98, 0);
		/* the canonical text alone is still exact */
		const char *lic = corpus_text(deb[i].id);
		expect_license(deb[i].id, deb[i].declared, deb[i].id, lic, strlen(lic), 0.999, 0);
		/* an added restriction before the optional section is still flagged */
		const char *end = strstr(d, "END OF TERMS AND CONDITIONS");
		assert_non_null(end);
		size_t cap = n + 4096;
		char *t = malloc(cap);
		assert_non_null(t);
		snprintf(t, cap, "%.*s\n%s\n\n%s", (int)(end - d), d, added_terms, end);
		expect_license("modified", deb[i].declared, deb[i].id, t, strlen(t), 0.8, 1);
		free(t);
		free(d);
	}
	if (!ran)
		skip(); /* no /usr/share/common-licenses on this machine */
}

static void test_pick_file(void **state)
{
	(void)state;
	const char *files[] = { "README.md", "LICENSE.txt", "docs/TERMS.md", "LICENSE" };
	assert_string_equal(lic_pick_file(files, 4, NULL, "acme/x"), "LICENSE");
	assert_string_equal(lic_pick_file(files, 4, "docs/TERMS.md", "acme/x"), "docs/TERMS.md");
	assert_string_equal(lic_pick_file(files, 4, "./docs/TERMS.md", "acme/x"), "docs/TERMS.md");
	assert_string_equal(lic_pick_file(files, 4, "../../etc/passwd", "acme/x"), "LICENSE");
	assert_string_equal(lic_pick_file(files, 4, "https://example.org/terms", "acme/x"), "LICENSE");
	assert_null(lic_pick_file(files, 1, NULL, "acme/x"));
	/* a hub URL of a file in this repository, in any case; not another's */
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/acme/x/blob/main/docs/TERMS.md",
					  "acme/x"), "docs/TERMS.md");
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/Acme/X/resolve/v1/docs/TERMS.md",
					  "acme/x"), "docs/TERMS.md");
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/other/y/blob/main/docs/TERMS.md",
					  "acme/x"), "LICENSE");
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/acme/x/blob/main/docs/TERMS.md",
					  NULL), "LICENSE");
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/acme/x/blob/main/../LICENSE2",
					  "acme/x"), "LICENSE");
	assert_string_equal(lic_pick_file(files, 4, "https://huggingface.co/acme/xy/blob/main/docs/TERMS.md",
					  "acme/x"), "LICENSE");
}

/* Found by fuzz_card: a text ending in "copyright(c" (no NUL after it) made
 * copyright_line compare three bytes past the end. */
static void test_copyright_at_end(void **state)
{
	(void)state;
	static const char src[] = "---\nlannLLLLL\n  - \ncopyright(c";
	size_t n = sizeof src - 1;
	char *t = malloc(n);   /* exactly n bytes: ASan sees any overread */
	assert_non_null(t);
	memcpy(t, src, n);
	struct licdetect_result r;
	assert_int_equal(licdetect_text(t, n, &r), 0);
	for (size_t k = 1; k <= 3; k++)
		assert_int_equal(licdetect_text(t, n - k, &r), 0);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spdx_table),    cmocka_unit_test(test_spdx_classes),
		cmocka_unit_test(test_corpus_self_match), cmocka_unit_test(test_variants_match),
		cmocka_unit_test(test_near_miss),     cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_speed),	      cmocka_unit_test(test_flags),
		cmocka_unit_test(test_assess),	      cmocka_unit_test(test_pick_file),
		cmocka_unit_test(test_copyright_at_end), cmocka_unit_test(test_relineage),
		cmocka_unit_test(test_apache_appendix),
		cmocka_unit_test(test_gpl_how_to_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
