/*
 * meta/policy.c — policy file parsing and evaluation. See policy.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "meta/policy.h"
#include "meta/spdx.h"

enum kind { K_ID, K_PREFIX, K_CLASS };

struct rule {
	enum policy_verdict verdict;
	enum kind kind;
	char *id;        /* K_ID: normalized id; K_PREFIX: prefix (as written) */
	unsigned cls;    /* K_CLASS */
	int line;
	char text[96];   /* "deny = @non-commercial" for messages */
};

struct policy {
	struct rule *rules;
	size_t n;
	enum policy_verdict def;
	int def_line;
	int enforce;
	char origin[128];
	char **warnings; /* "ORIGIN:LINE: ..." */
	size_t nwarnings;
};

const char *policy_verdict_name(enum policy_verdict v)
{
	return v == POLICY_DENY ? "deny" : v == POLICY_REVIEW ? "review" : "allow";
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->rules[i].id);
	free(p->rules);
	for (size_t i = 0; i < p->nwarnings; i++)
		free(p->warnings[i]);
	free(p->warnings);
	free(p);
}

size_t policy_nwarnings(const struct policy *p)
{
	return p ? p->nwarnings : 0;
}

const char *policy_warning(const struct policy *p, size_t i)
{
	return p && i < p->nwarnings ? p->warnings[i] : NULL;
}

static int add_warning(struct policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_warning(struct policy *p, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	char **w = n < 0 ? NULL : realloc(p->warnings, (p->nwarnings + 1) * sizeof *w);
	if (!w) {
		free(n < 0 ? NULL : line);
		return md_fail(MD_ENOMEM, "policy: out of memory");
	}
	w[p->nwarnings++] = line;
	p->warnings = w;
	return 0;
}

/* Edit distance between a and b, ASCII case folded; stops counting past
 * cap (returns cap + 1). */
static size_t distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 200 || lb > 200 || (la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	size_t row[201];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0], best = row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t sub = diag + (tolower((unsigned char)a[i - 1]) !=
					     tolower((unsigned char)b[j - 1]));
			size_t v = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
			row[j] = sub < v ? sub : v;
			diag = up;
			if (row[j] < best)
				best = row[j];
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb];
}

/* The table id (or Hub id) nearest to item when it is a likely typo of
 * one: within 1 edit for a short item, 2 for one of 6 characters or more.
 * NULL when none is that close. */
static const char *near_id(const char *item)
{
	size_t cap = strlen(item) >= 6 ? 2 : 1, best = cap + 1;
	const char *hit = NULL;
	for (size_t i = 0; i < spdx_count(); i++) {
		const struct spdx_license *l = spdx_at(i);
		const char *cand[2] = { l->id, l->hub };
		for (int k = 0; k < 2; k++) {
			size_t d = cand[k] ? distance(item, cand[k], cap) : cap + 1;
			if (d < best) {
				best = d;
				hit = cand[k];
			}
		}
	}
	return hit;
}

int policy_enforce(const struct policy *p)
{
	return p && p->enforce;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int valid_id_chars(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '+' || c == '_'))
			return 0;
	}
	return 1;
}

static int add_rule(struct policy *p, enum policy_verdict v, const char *item, int line, const char *origin)
{
	if (p->n == POLICY_MAX_ENTRIES)
		return md_fail(MD_ETOOBIG, "%s:%d: more than %d entries", origin, line, POLICY_MAX_ENTRIES);
	struct rule r = { .verdict = v, .line = line };
	snprintf(r.text, sizeof r.text, "%s = %s", policy_verdict_name(v), item);
	size_t n = strlen(item);
	if (item[0] == '@') {
		if (spdx_class_parse(item + 1, &r.cls))
			return md_fail(MD_EINVAL,
				       "%s:%d: unknown class '%s' (permissive, public-domain, weak-copyleft, "
				       "copyleft, non-commercial, no-derivatives, restricted-use, unknown)",
				       origin, line, item);
		r.kind = K_CLASS;
	} else if (n > 1 && item[n - 1] == '*') {
		char pre[POLICY_MAX_LINE];
		snprintf(pre, sizeof pre, "%.*s", (int)(n - 1), item);
		if (!valid_id_chars(pre))
			return md_fail(MD_EINVAL, "%s:%d: '%s' is not a license id or prefix", origin, line, item);
		r.kind = K_PREFIX;
		if (!(r.id = strdup(pre)))
			return md_fail(MD_ENOMEM, "policy: out of memory");
	} else {
		if (!valid_id_chars(item) || n > 200)
			return md_fail(MD_EINVAL, "%s:%d: '%s' is not a license id (SPDX, LicenseRef- or Hub id)",
				       origin, line, item);
		r.kind = K_ID;
		if (spdx_normalize(item, NULL, &r.id))
			return MD_ENOMEM;
		/* an id the table does not know, not written as LicenseRef-:
		 * a rule that silently matches nothing is worth a word when
		 * the id is one typo away from a known one */
		const char *near = NULL;
		if (!spdx_lookup(item) && strncasecmp(item, "LicenseRef-", 11) &&
		    strcasecmp(item, "unknown") && strcasecmp(item, "NOASSERTION") &&
		    strcasecmp(item, "other") &&
		    (near = near_id(item)) &&
		    add_warning(p, "%s:%d: '%s' is not a license id modeld knows; did you mean '%s'? "
			        "(as written it matches only a license declared as '%s')",
			        origin, line, item, near, item)) {
			free(r.id);
			return MD_ENOMEM;
		}
	}
	struct rule *nr = realloc(p->rules, (p->n + 1) * sizeof *nr);
	if (!nr) {
		free(r.id);
		return md_fail(MD_ENOMEM, "policy: out of memory");
	}
	p->rules = nr;
	p->rules[p->n++] = r;
	return 0;
}

static int parse_line(struct policy *p, char *line, int ln, const char *origin, int *seen_default,
		      int *seen_enforce)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *s = trim(line);
	if (!*s)
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return md_fail(MD_EINVAL, "%s:%d: expected 'KEY = VALUE', got '%.60s'", origin, ln, s);
	*eq = '\0';
	char *key = trim(s), *val = trim(eq + 1);
	if (!strcasecmp(key, "default")) {
		if (*seen_default)
			return md_fail(MD_EINVAL, "%s:%d: default set twice (first on line %d)", origin, ln,
				       *seen_default);
		if (!strcasecmp(val, "allow"))
			p->def = POLICY_ALLOW;
		else if (!strcasecmp(val, "deny"))
			p->def = POLICY_DENY;
		else if (!strcasecmp(val, "review"))
			p->def = POLICY_REVIEW;
		else
			return md_fail(MD_EINVAL, "%s:%d: default must be allow, deny or review, not '%.40s'",
				       origin, ln, val);
		*seen_default = ln;
		p->def_line = ln;
		return 0;
	}
	if (!strcasecmp(key, "enforce")) {
		if (*seen_enforce)
			return md_fail(MD_EINVAL, "%s:%d: enforce set twice (first on line %d)", origin, ln,
				       *seen_enforce);
		if (!strcasecmp(val, "true") || !strcasecmp(val, "yes"))
			p->enforce = 1;
		else if (!strcasecmp(val, "false") || !strcasecmp(val, "no"))
			p->enforce = 0;
		else
			return md_fail(MD_EINVAL, "%s:%d: enforce must be true or false, not '%.40s'", origin,
				       ln, val);
		*seen_enforce = ln;
		return 0;
	}
	enum policy_verdict v;
	if (!strcasecmp(key, "allow"))
		v = POLICY_ALLOW;
	else if (!strcasecmp(key, "deny"))
		v = POLICY_DENY;
	else if (!strcasecmp(key, "review"))
		v = POLICY_REVIEW;
	else
		return md_fail(MD_EINVAL, "%s:%d: unknown key '%.40s' (allow, deny, review, default, enforce)",
			       origin, ln, key);
	if (!*val)
		return md_fail(MD_EINVAL, "%s:%d: %s has an empty list", origin, ln, key);
	int count = 0;
	for (char *it = val, *next; it; it = next) {
		next = strchr(it, ',');
		if (next)
			*next++ = '\0';
		char *item = trim(it);
		if (!*item)
			return md_fail(MD_EINVAL, "%s:%d: empty entry in the %s list", origin, ln, key);
		int rc = add_rule(p, v, item, ln, origin);
		if (rc)
			return rc;
		count++;
	}
	if (!count)
		return md_fail(MD_EINVAL, "%s:%d: %s has an empty list", origin, ln, key);
	return 0;
}

int policy_parse(const char *text, size_t len, const char *origin, struct policy **out)
{
	*out = NULL;
	if (!origin)
		origin = "policy";
	if (len > POLICY_MAX_TEXT)
		return md_fail(MD_ETOOBIG, "%s: larger than %d bytes", origin, POLICY_MAX_TEXT);
	int rc;
	if (text && (rc = util_check_text(text, len, origin)))
		return rc; /* names the line and offset of a NUL or invalid UTF-8 byte */
	struct policy *p = calloc(1, sizeof *p);
	if (!p)
		return md_fail(MD_ENOMEM, "policy: out of memory");
	snprintf(p->origin, sizeof p->origin, "%s", origin);
	p->def = POLICY_ALLOW;
	int seen_default = 0, seen_enforce = 0, ln = 0;
	size_t i = util_bom_len(text, len);
	char line[POLICY_MAX_LINE + 1];
	while (text && i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - (text + i)) : len - i;
		ln++;
		if (ll > POLICY_MAX_LINE) {
			policy_free(p);
			return md_fail(MD_EINVAL, "%s:%d: line longer than %d bytes", origin, ln, POLICY_MAX_LINE);
		}
		memcpy(line, text + i, ll);
		line[ll] = '\0';
		rc = parse_line(p, line, ln, p->origin, &seen_default, &seen_enforce);
		if (rc) {
			policy_free(p);
			return rc;
		}
		i += ll + 1;
	}
	*out = p;
	return 0;
}

int policy_load(const char *path, struct policy **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return md_fail(errno == ENOENT ? MD_ENOENT : MD_EIO, "%s: %s", path, strerror(errno));
	char *buf = malloc(POLICY_MAX_TEXT + 1);
	if (!buf) {
		close(fd);
		return md_fail(MD_ENOMEM, "policy: out of memory");
	}
	ssize_t n = util_read_full(fd, buf, POLICY_MAX_TEXT + 1);
	close(fd);
	if (n < 0) {
		int e = errno;
		free(buf);
		return md_fail(MD_EIO, "%s: %s", path, strerror(e));
	}
	int rc = policy_parse(buf, (size_t)n, path, out);
	free(buf);
	return rc;
}

/* Verdict for one normalized id; fills rule text and line. */
static enum policy_verdict one(const struct policy *p, const char *id, char *rule, size_t rsz, int *line)
{
	const struct rule *hit = NULL;
	for (size_t i = 0; p && i < p->n; i++)
		if (p->rules[i].kind == K_ID && !strcasecmp(p->rules[i].id, id))
			hit = &p->rules[i];
	if (!hit)
		for (size_t i = 0; p && i < p->n; i++)
			if (p->rules[i].kind == K_PREFIX &&
			    !strncasecmp(p->rules[i].id, id, strlen(p->rules[i].id)))
				hit = &p->rules[i];
	if (!hit) {
		unsigned cls = spdx_classes(id);
		if (!spdx_lookup(id))
			cls = SPDX_UNKNOWN; /* LicenseRef-<name> from "other": unknown terms */
		for (size_t i = 0; p && i < p->n; i++)
			if (p->rules[i].kind == K_CLASS && (p->rules[i].cls & cls) &&
			    (!hit || p->rules[i].verdict > hit->verdict))
				hit = &p->rules[i];
	}
	if (hit) {
		snprintf(rule, rsz, "%s:%d: %s", p->origin, hit->line, hit->text);
		*line = hit->line;
		return hit->verdict;
	}
	if (p && p->def_line) {
		snprintf(rule, rsz, "%s:%d: default = %s", p->origin, p->def_line, policy_verdict_name(p->def));
		*line = p->def_line;
	} else {
		snprintf(rule, rsz, "built-in default = %s", policy_verdict_name(p ? p->def : POLICY_ALLOW));
		*line = 0;
	}
	return p ? p->def : POLICY_ALLOW;
}

static int consider(const struct policy *p, const char *raw, const char *source, struct policy_decision *d,
		    int *have)
{
	char *id;
	if (spdx_normalize(raw, NULL, &id))
		return MD_ENOMEM;
	char rule[sizeof d->rule];
	int line;
	enum policy_verdict v = one(p, id, rule, sizeof rule, &line);
	if (!*have || v > d->verdict) {
		d->verdict = v;
		snprintf(d->license, sizeof d->license, "%s", id);
		snprintf(d->source, sizeof d->source, "%s", source);
		snprintf(d->rule, sizeof d->rule, "%s", rule);
		d->line = line;
		*have = 1;
	}
	free(id);
	return 0;
}

int policy_evaluate(const struct policy *p, const char *declared, const char *detected,
		    const char *const *lineage, size_t nlineage, struct policy_decision *d)
{
	return policy_evaluate_list(p, &declared, 1, detected, lineage, nlineage, d);
}

int policy_evaluate_list(const struct policy *p, const char *const *declared, size_t ndeclared,
			 const char *detected, const char *const *lineage, size_t nlineage,
			 struct policy_decision *d)
{
	memset(d, 0, sizeof *d);
	int have = 0, rc;
	if (!ndeclared && (rc = consider(p, "", "declared", d, &have)))
		return rc;
	for (size_t i = 0; i < ndeclared; i++) {
		char src[32] = "declared";
		if (i)
			snprintf(src, sizeof src, "declared[%zu]", i);
		if ((rc = consider(p, declared[i] ? declared[i] : "", src, d, &have)))
			return rc;
	}
	if (detected && *detected && (rc = consider(p, detected, "detected", d, &have)))
		return rc;
	for (size_t i = 0; i < nlineage; i++) {
		if (!lineage[i] || !*lineage[i])
			continue;
		char src[32];
		snprintf(src, sizeof src, "lineage[%zu]", i);
		if ((rc = consider(p, lineage[i], src, d, &have)))
			return rc;
	}
	return 0;
}
