/* Unit tests for meta/card: every field of a model card, and hostile YAML
 * (billion laughs, a 100 MB card, binary junk, deep nesting, cycles) refused
 * quickly with a reason instead of failing. Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "meta/card.h"

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static json_t *parse(const char *s)
{
	json_t *o = NULL;
	assert_int_equal(card_parse(s, strlen(s), &o), 0);
	assert_non_null(o);
	return o;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void assert_unknown(json_t *o, const char *reason_part)
{
	assert_string_equal(str(o, "status"), "unknown");
	const char *r = str(o, "reason");
	assert_non_null(r);
	if (!strstr(r, reason_part))
		fail_msg("reason '%s' does not mention '%s'", r, reason_part);
	/* no field leaks out of a refused card */
	assert_null(json_object_get(o, "license"));
}

static void test_full_card(void **state)
{
	(void)state;
	int fd = open("tests/data/cards/full.md", O_RDONLY);
	assert_true(fd >= 0);
	json_t *o = NULL;
	assert_int_equal(card_parse_fd(fd, &o), 0);
	close(fd);
	assert_string_equal(str(o, "status"), "ok");
	assert_null(json_object_get(o, "warnings"));
	assert_string_equal(str(o, "license"), "llama3.1");
	assert_string_equal(str(o, "license_spdx"), "LicenseRef-Llama-3.1-Community");
	assert_string_equal(str(o, "license_name"), "llama3.1-community");
	assert_string_equal(str(o, "license_link"), "LICENSE");
	json_t *bm = json_object_get(o, "base_model");
	assert_int_equal(json_array_size(bm), 2);
	assert_string_equal(json_string_value(json_array_get(bm, 0)), "meta-llama/Llama-3.1-8B");
	assert_string_equal(str(o, "base_model_relation"), "merge");
	assert_int_equal(json_array_size(json_object_get(o, "datasets")), 2);
	assert_string_equal(str(o, "pipeline_tag"), "text-generation");
	assert_string_equal(str(o, "library_name"), "transformers");
	json_t *tags = json_object_get(o, "tags");
	assert_int_equal(json_array_size(tags), 3);
	/* a plain 2024 in a list becomes the string "2024" */
	assert_string_equal(json_string_value(json_array_get(tags, 2)), "2024");
	json_t *lang = json_object_get(o, "language");
	assert_int_equal(json_array_size(lang), 2);
	assert_string_equal(json_string_value(json_array_get(lang, 1)), "fr");
	assert_string_equal(str(o, "gated"), "manual");
	json_t *eg = json_object_get(o, "extra_gated");
	assert_string_equal(str(eg, "prompt"), "You agree to the Llama 3.1 Community License.");
	assert_string_equal(str(eg, "button_content"), "Submit");
	json_t *fields = json_object_get(eg, "fields");
	assert_string_equal(str(fields, "Country"), "country");
	assert_string_equal(str(json_object_get(fields, "Purpose"), "type"), "select");
	assert_string_equal(str(o, "model_name"), "Acme-Llama-Merge-8B");
	json_t *mi = json_object_get(o, "model_index");
	assert_int_equal(json_array_size(mi), 3);
	json_t *r0 = json_array_get(mi, 0);
	assert_string_equal(str(r0, "task"), "text-generation");
	assert_string_equal(str(r0, "task_name"), "Text Generation");
	assert_string_equal(str(r0, "dataset"), "cais/mmlu");
	assert_string_equal(str(r0, "dataset_name"), "MMLU (5-Shot)");
	assert_string_equal(str(r0, "dataset_config"), "all");
	assert_string_equal(str(r0, "split"), "test");
	assert_string_equal(str(r0, "metric"), "acc");
	assert_string_equal(str(r0, "metric_name"), "accuracy");
	assert_true(json_is_real(json_object_get(r0, "value")));
	assert_true(json_real_value(json_object_get(r0, "value")) > 66.40 &&
		    json_real_value(json_object_get(r0, "value")) < 66.42);
	assert_true(json_is_false(json_object_get(r0, "verified")));
	assert_string_equal(str(r0, "source_name"), "Open LLM Leaderboard");
	assert_non_null(strstr(str(r0, "source_url"), "open_llm_leaderboard"));
	/* a quoted number "70.2" is still a number; an integer stays one */
	json_t *r1 = json_array_get(mi, 1);
	assert_string_equal(str(r1, "metric"), "acc_norm");
	assert_true(json_is_number(json_object_get(r1, "value")));
	json_t *r2 = json_array_get(mi, 2);
	assert_string_equal(str(r2, "dataset"), "gsm8k");
	assert_int_equal(json_integer_value(json_object_get(r2, "value")), 55);
	assert_null(json_object_get(r2, "task_name"));
	json_decref(o);
}

static void test_scalar_forms(void **state)
{
	(void)state;
	json_t *o = parse("---\nlicense: apache-2.0\nbase_model: org/base\ndatasets: squad\n"
			  "language: en\ntags: one\ngated: true\nbase_model_relation: Finetune\n---\nbody\n");
	assert_string_equal(str(o, "status"), "ok");
	assert_string_equal(str(o, "license_spdx"), "Apache-2.0");
	assert_int_equal(json_array_size(json_object_get(o, "base_model")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "base_model"), 0)), "org/base");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "datasets"), 0)), "squad");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "language"), 0)), "en");
	assert_true(json_is_true(json_object_get(o, "gated")));
	assert_string_equal(str(o, "base_model_relation"), "finetune");
	json_decref(o);
	/* BOM, CRLF line ends, "other" with a name */
	o = parse("\xEF\xBB\xBF---\r\nlicense: other\r\nlicense_name: acme-research\r\n---\r\n");
	assert_string_equal(str(o, "status"), "ok");
	assert_string_equal(str(o, "license_spdx"), "LicenseRef-acme-research");
	json_decref(o);
}

static void test_field_warnings(void **state)
{
	(void)state;
	json_t *o = parse("---\nlicense: [mit, apache-2.0]\nbase_model_relation: distilled\n"
			  "gated: sometimes\ntags: {a: b}\npipeline_tag: [x]\n"
			  "model-index:\n- name: m\n  results:\n  - task: {type: t}\n    metrics: [{type: acc, value: 1}]\n"
			  "---\n");
	assert_string_equal(str(o, "status"), "ok");
	/* a list of licenses: the first is declared, all are kept */
	assert_string_equal(str(o, "license"), "mit");
	assert_int_equal(json_array_size(json_object_get(o, "licenses")), 2);
	assert_null(json_object_get(o, "base_model_relation"));
	assert_null(json_object_get(o, "gated"));
	assert_null(json_object_get(o, "tags"));
	assert_null(json_object_get(o, "pipeline_tag"));
	assert_int_equal(json_array_size(json_object_get(o, "model_index")), 0);
	json_t *w = json_object_get(o, "warnings");
	assert_true(json_array_size(w) >= 5);
	char *all = json_dumps(w, 0);
	assert_non_null(strstr(all, "base_model_relation"));
	assert_non_null(strstr(all, "gated"));
	assert_non_null(strstr(all, "model-index"));
	free(all);
	json_decref(o);
}

/* A repeated key is a YAML error other parsers treat differently (first
 * wins, or the card fails): the card stays usable, the last value is kept,
 * and a warning says so, so a card that reads "mit" to one tool and
 * "gpl-3.0" to another is not silently one of them. */
static void test_duplicate_keys(void **state)
{
	(void)state;
	json_t *o = parse("---\nlicense: mit\npipeline_tag: a\nlicense: gpl-3.0\n"
			  "model-index:\n- name: m\n  results:\n  - task: {type: t, type: u}\n"
			  "    dataset: {type: d}\n    metrics: [{type: acc, value: 1, value: 2}]\n---\n");
	assert_string_equal(str(o, "status"), "ok");
	assert_string_equal(str(o, "license"), "gpl-3.0");
	json_t *w = json_object_get(o, "warnings");
	assert_int_equal(json_array_size(w), 1);
	assert_string_equal(json_string_value(json_array_get(w, 0)),
			    "duplicate key 'license' (and others): the last value is used");
	json_t *r = json_array_get(json_object_get(o, "model_index"), 0);
	assert_string_equal(str(r, "task"), "u");
	assert_int_equal(json_integer_value(json_object_get(r, "value")), 2);
	json_decref(o);
	o = parse("---\nlicense: mit\ntags: [a, a]\nx: {k: 1}\ny: {k: 2}\n---\n");
	assert_null(json_object_get(o, "warnings")); /* equal keys in two mappings are fine */
	json_decref(o);
	o = parse("---\na: 1\na: 2\n---\n");
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "warnings"), 0)),
			    "duplicate key 'a': the last value is used");
	json_decref(o);
}

static void test_no_front_matter(void **state)
{
	(void)state;
	json_t *o = parse("# Just a README\n\nNo metadata.\n");
	assert_string_equal(str(o, "status"), "none");
	json_decref(o);
	o = parse("");
	assert_string_equal(str(o, "status"), "none");
	json_decref(o);
	o = parse("---\n---\n");
	assert_string_equal(str(o, "status"), "none");
	json_decref(o);
}

static void test_billion_laughs(void **state)
{
	(void)state;
	char buf[4096] = "---\nlicense: mit\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
	const char *names = "bcdefghi";
	for (int i = 0; names[i]; i++) {
		size_t l = strlen(buf);
		l += (size_t)snprintf(buf + l, sizeof buf - l, "%c: &%c [", names[i], names[i]);
		for (int k = 0; k < 9; k++)
			l += (size_t)snprintf(buf + l, sizeof buf - l, "%s*%c", k ? ", " : "", names[i] - 1);
		snprintf(buf + l, sizeof buf - l, "]\n");
	}
	strcat(buf, "---\n");
	double t0 = now_ms();
	json_t *o = parse(buf);
	double dt = now_ms() - t0;
	assert_unknown(o, "alias expansion");
	assert_true(dt < 100);
	json_decref(o);
	/* many cheap aliases: refused by the use count */
	char many[8192] = "---\nx: &x 1\nl: [";
	for (int i = 0; i < 80; i++)
		strcat(many, i ? ", *x" : "*x");
	strcat(many, "]\n---\n");
	o = parse(many);
	assert_unknown(o, "alias uses");
	json_decref(o);
	/* a harmless alias is fine */
	o = parse("---\ntags: &t [a, b]\nlanguage: *t\n---\n");
	assert_string_equal(str(o, "status"), "ok");
	assert_int_equal(json_array_size(json_object_get(o, "language")), 2);
	json_decref(o);
	/* self-reference (a cycle) is refused, not looped on */
	o = parse("---\na: &a [1, *a]\n---\n");
	assert_unknown(o, "no completed anchor");
	json_decref(o);
}

static void test_huge_card(void **state)
{
	(void)state;
	size_t n = 100u * 1000 * 1000;
	char *big = malloc(n);
	assert_non_null(big);
	memcpy(big, "---\nlicense: mit\ndescription: |\n", 32);
	for (size_t i = 32; i < n; i++)
		big[i] = (i % 100 == 99) ? '\n' : (i % 100 < 2 ? ' ' : 'x');
	memcpy(big + n - 5, "\n---\n", 5);
	json_t *o = NULL;
	double t0 = now_ms();
	assert_int_equal(card_parse(big, n, &o), 0);
	double dt = now_ms() - t0;
	assert_unknown(o, "1 MiB");
	assert_true(dt < 200); /* only the first MiB is looked at */
	json_decref(o);
	/* front matter closed, but 2 MiB long */
	size_t m = 2u * 1024 * 1024;
	memcpy(big + m, "\n---\nbody\n", 10);
	assert_int_equal(card_parse(big, m + 10, &o), 0);
	assert_unknown(o, "1 MiB");
	json_decref(o);
	free(big);
}

static void test_binary_junk(void **state)
{
	(void)state;
	json_t *o = NULL;
	static const char nul[] = "---\nlicense: mit\nx: a\0b\n---\n";
	assert_int_equal(card_parse(nul, sizeof nul - 1, &o), 0);
	assert_unknown(o, "NUL");
	json_decref(o);
	o = parse("---\nlicense: mit\nx: \xc3\x28 bad\n---\n");
	assert_unknown(o, "UTF-8");
	json_decref(o);
	o = parse("---\nlicense: mit\nx: \x01\x02\x7f\x1b[31m\n---\n");
	assert_unknown(o, "control");
	json_decref(o);
	/* random bytes, deterministic */
	unsigned char junk[4096];
	uint32_t s = 12345;
	memcpy(junk, "---\n", 4);
	for (size_t i = 4; i < sizeof junk - 5; i++) {
		s = s * 1103515245u + 12345u;
		junk[i] = (unsigned char)(s >> 16);
	}
	memcpy(junk + sizeof junk - 5, "\n---\n", 5);
	assert_int_equal(card_parse((const char *)junk, sizeof junk, &o), 0);
	assert_string_equal(str(o, "status"), "unknown");
	json_decref(o);
	/* a YAML syntax error names the line */
	o = parse("---\nlicense: mit\ntags: [a, b\n---\n");
	assert_unknown(o, "line");
	json_decref(o);
}

static void test_structure_caps(void **state)
{
	(void)state;
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 32);
	assert_non_null(deep);
	strcpy(deep, "---\nx: ");
	size_t l = strlen(deep);
	memset(deep + l, '[', depth);
	memset(deep + l + depth, ']', depth);
	strcpy(deep + l + 2 * depth, "\n---\n");
	json_t *o = parse(deep);
	assert_unknown(o, "nesting");
	json_decref(o);
	free(deep);
	/* 30000 list items: over the node cap */
	char *wide = malloc(30000 * 3 + 32);
	assert_non_null(wide);
	strcpy(wide, "---\nx: [");
	l = strlen(wide);
	for (int i = 0; i < 30000; i++) {
		memcpy(wide + l, "1, ", 3);
		l += 3;
	}
	strcpy(wide + l, "1]\n---\n");
	o = parse(wide);
	assert_unknown(o, "nodes");
	json_decref(o);
	free(wide);
	o = parse("---\n- a\n- b\n---\n");
	assert_unknown(o, "not a YAML mapping");
	json_decref(o);
	o = parse("---\n? [a, b]\n: c\n---\n");
	assert_unknown(o, "complex keys");
	json_decref(o);
	o = parse("---\nlicense: mit\n");
	assert_unknown(o, "not closed");
	json_decref(o);
	/* a second YAML document inside the front matter is ignored */
	o = parse("---\nlicense: mit\n...\nlicense: gpl-3.0\n---\n");
	assert_string_equal(str(o, "license"), "mit");
	json_decref(o);
}

static void test_facts(void **state)
{
	(void)state;
	int fd = open("tests/data/cards/full.md", O_RDONLY);
	assert_true(fd >= 0);
	json_t *card, *f;
	assert_int_equal(card_parse_fd(fd, &card), 0);
	close(fd);
	assert_int_equal(card_facts(card, "acme/llama-merge", &f), 0);
	assert_string_equal(str(f, "task"), "text-generation");
	assert_string_equal(str(f, "library"), "transformers");
	assert_string_equal(str(f, "provider"), "acme");
	assert_string_equal(str(f, "license"), "LicenseRef-Llama-3.1-Community");
	assert_int_equal(json_array_size(json_object_get(f, "languages")), 2);
	assert_int_equal(json_array_size(json_object_get(f, "datasets")), 2);
	assert_int_equal(json_array_size(json_object_get(f, "base_model")), 2);
	assert_int_equal(json_array_size(json_object_get(f, "benchmarks")), 3);
	assert_string_equal(str(f, "card_status"), "ok");
	json_decref(f);
	json_decref(card);
	/* a refused card: facts are unknown, not absent */
	assert_int_equal(card_facts(NULL, NULL, &f), 0);
	assert_true(json_is_null(json_object_get(f, "task")));
	assert_true(json_is_null(json_object_get(f, "provider")));
	assert_string_equal(str(f, "license"), "NOASSERTION");
	assert_int_equal(json_array_size(json_object_get(f, "benchmarks")), 0);
	assert_string_equal(str(f, "card_status"), "none");
	json_decref(f);
}

static void test_bad_args(void **state)
{
	(void)state;
	json_t *o;
	assert_int_equal(card_parse(NULL, 0, &o), MD_EINVAL);
	assert_int_equal(card_parse_fd(-1, &o), MD_EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_card),      cmocka_unit_test(test_scalar_forms),
		cmocka_unit_test(test_field_warnings), cmocka_unit_test(test_no_front_matter),
		cmocka_unit_test(test_duplicate_keys), cmocka_unit_test(test_billion_laughs), cmocka_unit_test(test_huge_card),
		cmocka_unit_test(test_binary_junk),    cmocka_unit_test(test_structure_caps),
		cmocka_unit_test(test_facts),          cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
