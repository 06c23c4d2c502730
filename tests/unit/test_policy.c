/* Unit tests for meta/policy: syntax, errors naming the line, verdicts and
 * the rule that decided them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "meta/policy.h"

static struct policy *parse_ok(const char *text)
{
	struct policy *p = NULL;
	int rc = policy_parse(text, strlen(text), "policy.conf", &p);
	if (rc)
		fail_msg("policy_parse failed: %s", md_errmsg(rc));
	return p;
}

static void parse_err(const char *text, int code, const char *msg)
{
	struct policy *p = (struct policy *)1;
	md_clearerr();
	int rc = policy_parse(text, strlen(text), "policy.conf", &p);
	assert_int_equal(rc, code);
	assert_null(p);
	if (!strstr(md_errmsg(rc), msg))
		fail_msg("error '%s' does not contain '%s'", md_errmsg(rc), msg);
}

static void eval(const struct policy *p, const char *declared, const char *detected, const char *const *lin,
		 size_t n, enum policy_verdict want, const char *rule)
{
	struct policy_decision d;
	assert_int_equal(policy_evaluate(p, declared, detected, lin, n, &d), 0);
	if (d.verdict != want || (rule && strcmp(d.rule, rule)))
		fail_msg("%s/%s: got %s by '%s', want %s by '%s'", declared ? declared : "NULL",
			 detected ? detected : "NULL", policy_verdict_name(d.verdict), d.rule,
			 policy_verdict_name(want), rule ? rule : "*");
}

static const char *conf =
	"# modeld license policy\n"
	"\n"
	"default = review\n"
	"enforce = true   # refuse denied pulls\n"
	"allow = apache-2.0, MIT, bsd-3-clause ,cc0-1.0\n"
	"allow = @permissive\n"
	"deny = @non-commercial, @no-derivatives\n"
	"review = @restricted-use\n"
	"deny = LicenseRef-Llama-2-*\n"
	"allow = llama3.1\n"
	"review = unknown\n";

static void test_parse_and_evaluate(void **state)
{
	(void)state;
	struct policy *p = parse_ok(conf);
	assert_true(policy_enforce(p));
	/* exact ids, Hub or SPDX spelling, any case */
	eval(p, "apache-2.0", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:5: allow = apache-2.0");
	eval(p, "Apache-2.0", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:5: allow = apache-2.0");
	eval(p, "mit", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:5: allow = MIT");
	/* class rules */
	eval(p, "isc", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:6: allow = @permissive");
	eval(p, "cc-by-nc-4.0", NULL, NULL, 0, POLICY_DENY, "policy.conf:7: deny = @non-commercial");
	eval(p, "CC-BY-ND-4.0", NULL, NULL, 0, POLICY_DENY, "policy.conf:7: deny = @no-derivatives");
	eval(p, "gemma", NULL, NULL, 0, POLICY_REVIEW, "policy.conf:8: review = @restricted-use");
	/* prefix rule beats class rule; exact beats both */
	eval(p, "llama2", NULL, NULL, 0, POLICY_DENY, "policy.conf:9: deny = LicenseRef-Llama-2-*");
	eval(p, "llama3.1", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:10: allow = llama3.1");
	/* a license with no rule: the default, named with its line */
	eval(p, "gpl-3.0", NULL, NULL, 0, POLICY_REVIEW, "policy.conf:3: default = review");
	/* no declared license */
	eval(p, NULL, NULL, NULL, 0, POLICY_REVIEW, "policy.conf:11: review = unknown");
	eval(p, "unknown", NULL, NULL, 0, POLICY_REVIEW, "policy.conf:11: review = unknown");
	/* the detected text and the lineage count: the most severe wins */
	eval(p, "mit", "CC-BY-NC-4.0", NULL, 0, POLICY_DENY, "policy.conf:7: deny = @non-commercial");
	const char *lin[] = { "apache-2.0", NULL, "llama2" };
	struct policy_decision d;
	assert_int_equal(policy_evaluate(p, "mit", NULL, lin, 3, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.license, "LicenseRef-Llama-2-Community");
	assert_string_equal(d.source, "lineage[2]");
	assert_int_equal(d.line, 9);
	policy_free(p);
}

static void test_defaults(void **state)
{
	(void)state;
	struct policy *p = parse_ok("");
	assert_false(policy_enforce(p));
	eval(p, "cc-by-nc-4.0", NULL, NULL, 0, POLICY_ALLOW, "built-in default = allow");
	policy_free(p);
	eval(NULL, "gpl-3.0", NULL, NULL, 0, POLICY_ALLOW, "built-in default = allow");
	p = parse_ok("default = deny\nallow = @permissive\n");
	eval(p, "mit", NULL, NULL, 0, POLICY_ALLOW, NULL);
	eval(p, "gpl-3.0", NULL, NULL, 0, POLICY_DENY, "policy.conf:1: default = deny");
	/* "other" licenses are unknown terms: the default applies unless @unknown */
	eval(p, "LicenseRef-acme-research", NULL, NULL, 0, POLICY_DENY, NULL);
	policy_free(p);
	/* the last line naming an id wins; among classes the most severe */
	p = parse_ok("deny = mit\nallow = mit\nallow = @copyleft\nreview = @non-commercial\n");
	eval(p, "mit", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:2: allow = mit");
	eval(p, "cc-by-nc-sa-4.0", NULL, NULL, 0, POLICY_REVIEW, "policy.conf:4: review = @non-commercial");
	policy_free(p);
}

static void test_errors(void **state)
{
	(void)state;
	parse_err("allow = mit\n\ndney = gpl-3.0\n", MD_EINVAL, "policy.conf:3: unknown key 'dney'");
	parse_err("default = maybe\n", MD_EINVAL, "policy.conf:1: default must be allow, deny or review");
	parse_err("# c\ndeny = @commercial\n", MD_EINVAL, "policy.conf:2: unknown class '@commercial'");
	parse_err("allow =\n", MD_EINVAL, "policy.conf:1: allow has an empty list");
	parse_err("allow = mit,,isc\n", MD_EINVAL, "policy.conf:1: empty entry");
	parse_err("enforce = sometimes\n", MD_EINVAL, "policy.conf:1: enforce must be true or false");
	parse_err("allow mit\n", MD_EINVAL, "policy.conf:1: expected 'KEY = VALUE'");
	parse_err("default = allow\ndefault = deny\n", MD_EINVAL, "policy.conf:2: default set twice (first on line 1)");
	parse_err("enforce = true\nenforce = false\n", MD_EINVAL, "policy.conf:2: enforce set twice");
	parse_err("deny = gpl 3\n", MD_EINVAL, "policy.conf:1: 'gpl 3' is not a license id");
	parse_err("deny = *\n", MD_EINVAL, "policy.conf:1:");
	char *longl = malloc(2000);
	memset(longl, 'a', 1999);
	longl[1999] = '\0';
	memcpy(longl, "allow = ", 8);
	parse_err(longl, MD_EINVAL, "policy.conf:1: line longer than");
	free(longl);
	char *huge = calloc(1, POLICY_MAX_TEXT + 10);
	memset(huge, '#', POLICY_MAX_TEXT + 5);
	parse_err(huge, MD_ETOOBIG, "larger than");
	free(huge);
	/* too many entries */
	size_t cap = 1200 * 24 + 16;
	char *many = malloc(cap);
	many[0] = '\0';
	for (int i = 0; i < 1200; i++) {
		char item[32];
		snprintf(item, sizeof item, "%sLR-%d%s", i % 10 ? "," : "allow = ", i, i % 10 == 9 ? "\n" : "");
		strcat(many, item);
	}
	parse_err(many, MD_ETOOBIG, "more than 1000 entries");
	free(many);
}

/* A policy that is not UTF-8 text is refused naming the line and the byte,
 * never read past: one Latin-1 byte in a comment, a NUL, a sequence cut off
 * at the end of the text. */
static void test_not_text(void **state)
{
	(void)state;
	parse_err("deny = @non-commercial # caf\xe9\n", MD_EINVAL,
		  "policy.conf:1: invalid UTF-8 byte 0xE9 at offset 28");
	parse_err("# ok\ndefault = deny\nallow = mit \xc3\x28\n", MD_EINVAL,
		  "policy.conf:3: invalid UTF-8 byte 0xC3 at offset 32");
	parse_err("# caf\xc3\xa9 ok\nallow = \xed\xa0\x80\n", MD_EINVAL, /* a surrogate */
		  "policy.conf:2: invalid UTF-8 byte 0xED at offset 19");
	parse_err("allow = mit # \xe2\x82", MD_EINVAL, "policy.conf:1: invalid UTF-8 byte 0xE2 at offset 14");
	struct policy *p = (struct policy *)1;
	static const char nul[] = "allow = mit\ndeny = @non-commercial\0 # x\n";
	assert_int_equal(policy_parse(nul, sizeof nul - 1, "policy.conf", &p), MD_EINVAL);
	assert_null(p);
	assert_string_equal(md_errmsg(MD_EINVAL), "policy.conf:2: NUL byte at offset 34");
	/* valid UTF-8 in comments is fine */
	p = parse_ok("deny = @non-commercial # caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n");
	eval(p, "cc-by-nc-4.0", NULL, NULL, 0, POLICY_DENY, "policy.conf:1: deny = @non-commercial");
	policy_free(p);
}

/* Files saved by Windows editors: a UTF-8 byte-order mark and CRLF line
 * ends are the same policy, not "unknown key '\xEF\xBB\xBFdeny'". */
static void test_bom_and_crlf(void **state)
{
	(void)state;
	struct policy *p = parse_ok("\xEF\xBB\xBF" "deny = cc-by-nc-4.0\r\ndefault = review\r\nenforce = true\r\n");
	assert_true(policy_enforce(p));
	eval(p, "cc-by-nc-4.0", NULL, NULL, 0, POLICY_DENY, "policy.conf:1: deny = cc-by-nc-4.0");
	eval(p, "mit", NULL, NULL, 0, POLICY_REVIEW, "policy.conf:2: default = review");
	policy_free(p);
	/* a BOM anywhere else is still an error naming its line */
	parse_err("deny = mit\n\xEF\xBB\xBF" "allow = gpl-3.0\n", MD_EINVAL, "policy.conf:2:");
	/* every declared license is judged (a card listing several) */
	p = parse_ok("deny = cc-by-nc-4.0\n");
	const char *both[] = { "apache-2.0", "cc-by-nc-4.0" };
	struct policy_decision d;
	assert_int_equal(policy_evaluate_list(p, both, 2, NULL, NULL, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_string_equal(d.source, "declared[1]");
	assert_string_equal(d.license, "CC-BY-NC-4.0");
	assert_int_equal(policy_evaluate_list(p, NULL, 0, NULL, NULL, 0, &d), 0);
	assert_string_equal(d.license, "NOASSERTION");
	policy_free(p);
}

static void test_load(void **state)
{
	(void)state;
	char path[] = "/tmp/modeld-policy-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *t = "deny = @non-commercial\n";
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	struct policy *p;
	assert_int_equal(policy_load(path, &p), 0);
	struct policy_decision d;
	assert_int_equal(policy_evaluate(p, "cc-by-nc-sa-4.0", NULL, NULL, 0, &d), 0);
	assert_int_equal(d.verdict, POLICY_DENY);
	assert_non_null(strstr(d.rule, path));
	assert_non_null(strstr(d.rule, ":1: deny = @non-commercial"));
	policy_free(p);
	unlink(path);
	assert_int_equal(policy_load("/nonexistent/policy.conf", &p), MD_ENOENT);
	assert_string_equal(policy_verdict_name(POLICY_REVIEW), "review");
}

/* A rule naming an id one typo away from a known one parses (the id could
 * be a license of one's own) but says so; known ids, Hub ids, LicenseRef-
 * ids, unknown and ids far from every known one say nothing. */
static void test_typo_warnings(void **state)
{
	(void)state;
	struct policy *p = parse_ok("deny = GPL-3.O, apache2.0\n"
				    "allow = MIT, llama3.1, LicenseRef-GPL-3.O, unknown, other\n"
				    "review = MIT-0, EUPL-1.2, Frobnicate-License\n");
	assert_int_equal(policy_nwarnings(p), 2);
	assert_non_null(strstr(policy_warning(p, 0), "policy.conf:1: 'GPL-3.O' is not a license id "
				  "modeld knows; did you mean 'gpl-3.0'?"));
	assert_non_null(strstr(policy_warning(p, 1), "policy.conf:1: 'apache2.0' is not a license id "
				  "modeld knows; did you mean 'Apache-2.0'?"));
	assert_null(policy_warning(p, 2));
	/* the rule still means what it says: only that id */
	eval(p, "other", NULL, NULL, 0, POLICY_ALLOW, "policy.conf:2: allow = other");
	policy_free(p);
	p = parse_ok("allow = MIT, apache-2.0\ndeny = @non-commercial\n");
	assert_int_equal(policy_nwarnings(p), 0);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_evaluate),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_not_text),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_bom_and_crlf),
		cmocka_unit_test(test_typo_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
