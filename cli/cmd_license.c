/* cli/cmd_license.c — license REF, audit [--policy FILE] [--format F]. */
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLICY_FILE_MAX (1u << 20)

static const char *s_or(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

/* The lineage as a tree: each ancestor under the model whose base_model
 * names it ("via"), one level deeper per generation. The daemon lists every
 * ancestor once (depth <= 8), so this ends. */
static void print_lineage(json_t *lin, const char *via, int depth)
{
	size_t i;
	json_t *x;
	json_array_foreach(lin, i, x) {
		if ((int)json_integer_value(json_object_get(x, "depth")) != depth ||
		    strcmp(s_or(x, "via", ""), via))
			continue;
		if (json_is_true(json_object_get(x, "loop"))) {
			printf("  %*s%s  (loop: already in this lineage, not followed)\n", 2 * (depth - 1), "",
			       cli_text(s_or(x, "name", "?")));
			continue;
		}
		printf("  %*s%s  %s%s%s\n", 2 * (depth - 1), "", cli_text(s_or(x, "name", "?")),
		       cli_text(s_or(x, "license", "unknown")),
		       json_is_true(json_object_get(x, "in_store")) ? "" : " (not in the store)",
		       json_is_true(json_object_get(x, "cut")) ? " (its base models not followed: cap)" : "");
		print_lineage(lin, s_or(x, "name", ""), depth + 1);
	}
}

int cmd_license(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("license takes one ORG/NAME[@REV]");
	if (cli_check_ref(c->argv[0]))
		return EXIT_USAGE;
	json_t *req = json_pack("{s:s,s:s}", "op", "license", "ref", c->argv[0]), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return EXIT_OK;
	}
	json_t *l = json_object_get(res, "license");
	json_t *det = json_object_get(l, "detected");
	printf("model:     %s@%.12s\n", s_or(res, "name", "?"), s_or(res, "revision", "?"));
	/* the card's own words: a hostile card may hold escapes and newlines */
	printf("declared:  %s", cli_text(s_or(l, "declared", "(none)")));
	if (json_object_get(l, "spdx"))
		printf(" -> %s", cli_text(s_or(l, "spdx", "")));
	json_t *all = json_object_get(l, "licenses"), *d;
	size_t k;
	json_array_foreach(all, k, d)
		if (k && json_is_string(d)) /* a card listing several: each applies */
			printf(", %s", cli_text(json_string_value(d)));
	printf("\n");
	if (json_is_object(det))
		printf("detected:  %s (%s, score %.3f) from %s\n", cli_text(s_or(det, "id", "?")),
		       json_is_true(json_object_get(det, "matched")) ? "match" : "no match",
		       json_real_value(json_object_get(det, "score")), cli_text(s_or(det, "file", "?")));
	else
		printf("detected:  (no license file)\n");
	printf("verdict:   %s (%s)\n", s_or(l, "verdict", "unknown"), s_or(l, "rule", "-"));
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(l, "flags"), i, x)
		printf("flag:      %s: %s\n", s_or(x, "kind", "?"), cli_text(s_or(x, "message", "")));
	json_t *lin = json_object_get(res, "lineage");
	if (json_array_size(lin)) {
		printf("lineage:\n");
		print_lineage(lin, s_or(res, "name", ""), 1);
	}
	json_decref(res);
	return EXIT_OK;
}

/* The policy file as text for the request. A file that is not UTF-8 or
 * holds a NUL cannot travel as a JSON string; it fails here naming the line
 * and offset instead of going unsent (the daemon would then decide under its
 * own policy and audit could exit 0). */
static char *read_small(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		md_fail(MD_EIO, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(POLICY_FILE_MAX + 2);
	size_t n = buf ? fread(buf, 1, POLICY_FILE_MAX + 1, f) : 0;
	int err = ferror(f) ? (errno ? errno : EIO) : 0;
	fclose(f);
	if (!buf || err || n > POLICY_FILE_MAX) {
		free(buf);
		if (!buf)
			md_fail(MD_ENOMEM, "%s: out of memory", path);
		else if (err)
			md_fail(MD_EIO, "%s: %s", path, strerror(err));
		else
			md_fail(MD_ETOOBIG, "%s: larger than %u bytes", path, POLICY_FILE_MAX);
		return NULL;
	}
	buf[n] = '\0';
	if (util_check_text(buf, n, path)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* A file name for messages: invalid UTF-8 bytes become '?', so the name is
 * always sent (json_string would refuse it and the key would vanish). */
static json_t *display_name(const char *path)
{
	json_t *j = json_string(path);
	if (j)
		return j;
	char *s = strdup(path);
	for (size_t i = 0; s && s[i]; i++)
		if ((unsigned char)s[i] >= 0x80)
			s[i] = '?';
	j = s ? json_string(s) : NULL;
	free(s);
	return j;
}

int cmd_audit(struct cli *c)
{
	const char *fmt = c->format ? c->format : (c->json ? "json" : "table");
	if (c->argc)
		return cli_usage("audit takes no arguments");
	if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "csv") &&
	    strcmp(fmt, "cyclonedx") && strcmp(fmt, "spdx"))
		return cli_usage("--format: want table, json, csv, cyclonedx or spdx");
	json_t *req = json_pack("{s:s,s:s}", "op", "audit", "format", fmt), *res;
	if (c->policy) {
		size_t n;
		char *text = read_small(c->policy, &n);
		if (!text) {
			json_decref(req);
			return cli_fail(MD_EIO);
		}
		/* never send the request without the policy it was given */
		int bad = json_object_set_new(req, "policy_text", json_stringn(text, n));
		bad |= json_object_set_new(req, "policy_name", display_name(c->policy));
		free(text);
		if (bad) {
			json_decref(req);
			return cli_fail(md_fail(MD_ENOMEM, "%s: could not add the policy to the request",
						c->policy));
		}
	}
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	json_int_t deny = json_integer_value(json_object_get(json_object_get(res, "counts"), "deny"));
	json_t *doc = json_object_get(res, "document"), *w;
	size_t wi;
	json_array_foreach(json_object_get(res, "policy_warnings"), wi, w)
		fprintf(stderr, "modelctl: warning: %s\n", json_string_value(w));
	if (!strcmp(fmt, "csv")) {
		fwrite(json_string_value(doc), 1, json_string_length(doc), stdout);
	} else if (!strcmp(fmt, "cyclonedx") || !strcmp(fmt, "spdx")) {
		cli_print_json(doc);
	} else if (!strcmp(fmt, "json")) {
		json_t *out = json_pack("{s:O,s:O}", "models", json_object_get(res, "models"),
					"counts", json_object_get(res, "counts"));
		if (out && json_object_get(res, "policy_warnings"))
			json_object_set(out, "policy_warnings", json_object_get(res, "policy_warnings"));
		cli_print_json(out);
		json_decref(out);
	} else {
		printf("%-40s %-12s %-22s %-22s %-7s %s\n", "NAME", "REVISION", "DECLARED",
		       "DETECTED", "VERDICT", "FLAGS");
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(res, "models"), i, m) {
			json_t *l = json_object_get(m, "license");
			json_t *det = json_object_get(l, "detected");
			char flags[256] = "";
			size_t j;
			json_t *f;
			json_array_foreach(json_object_get(l, "flags"), j, f) {
				size_t used = strlen(flags);
				snprintf(flags + used, sizeof flags - used, "%s%s", used ? "," : "",
					 s_or(f, "kind", "?"));
			}
			printf("%-40s %-12.12s %-22s %-22s %-7s %s\n", s_or(m, "name", "?"),
			       s_or(m, "commit", "?"), cli_text(s_or(l, "spdx", s_or(l, "declared", "-"))),
			       json_is_true(json_object_get(det, "matched")) ? cli_text(s_or(det, "id", "-")) : "-",
			       s_or(l, "verdict", "?"), flags[0] ? flags : "-");
		}
		json_t *cnt = json_object_get(res, "counts");
		printf("%lld allow, %lld review, %lld deny\n",
		       (long long)json_integer_value(json_object_get(cnt, "allow")),
		       (long long)json_integer_value(json_object_get(cnt, "review")), (long long)deny);
	}
	json_decref(res);
	return deny ? EXIT_FAIL : EXIT_OK;
}
