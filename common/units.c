/* common/units.c — see units.h. */
#include "common/units.h"
#include "common/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UNITS_MAX 4611686018427387904.0 /* 2^62 */

static int number(const char *s, double *d, const char **rest)
{
	char *end;
	if (!s || !*s || !(*s == '.' || (*s >= '0' && *s <= '9')))
		return -1;
	errno = 0;
	*d = strtod(s, &end);
	if (errno || end == s || !isfinite(*d) || *d < 0)
		return -1;
	for (const char *p = s; p < end; p++) /* decimal only: no hex, inf or nan */
		if (!strchr("0123456789.eE+-", *p))
			return -1;
	*rest = end;
	return 0;
}

static int finish(double v, const char *s, const char *what, uint64_t *out)
{
	if (!(v >= 0) || v > UNITS_MAX)
		return md_fail(MD_EINVAL, "%s '%.64s': out of range", what, s);
	/* a decimal times its unit is a whole number the user meant exactly
	 * ("8.03B"), but binary floating point may land just below it
	 * (8029999999.9999995): within 1e-12 of a whole number is that number;
	 * a real fraction ("1.5") is still rounded down */
	double r = (double)(uint64_t)(v + 0.5), d = v > r ? v - r : r - v;
	if (d <= r * 1e-12)
		v = r;
	*out = (uint64_t)v;
	return 0;
}

int units_parse_count(const char *s, uint64_t *out)
{
	double d;
	const char *r;
	if (number(s, &d, &r))
		return md_fail(MD_EINVAL, "count '%.64s': want a number such as 7B, 350M or 1.5e9",
			       s ? s : "");
	double mul = 1;
	if (*r) {
		switch (*r) {
		case 'k': case 'K': mul = 1e3; break;
		case 'm': case 'M': mul = 1e6; break;
		case 'b': case 'B': case 'g': case 'G': mul = 1e9; break;
		case 't': case 'T': mul = 1e12; break;
		default: mul = 0;
		}
		if (!mul || r[1])
			return md_fail(MD_EINVAL, "count '%.64s': unknown suffix (want k, M, B or T)", s);
	}
	return finish(d * mul, s, "count", out);
}

int units_parse_bytes(const char *s, uint64_t *out)
{
	static const struct { const char *suf; double mul; } sufs[] = {
		{ "", 1 }, { "B", 1 },
		{ "K", 1024.0 }, { "KiB", 1024.0 }, { "kB", 1e3 }, { "KB", 1e3 },
		{ "M", 1048576.0 }, { "MiB", 1048576.0 }, { "MB", 1e6 },
		{ "G", 1073741824.0 }, { "GiB", 1073741824.0 }, { "GB", 1e9 },
		{ "T", 1099511627776.0 }, { "TiB", 1099511627776.0 }, { "TB", 1e12 },
		{ "k", 1024.0 }, { "m", 1048576.0 }, { "g", 1073741824.0 }, { "t", 1099511627776.0 },
	};
	double d;
	const char *r;
	if (number(s, &d, &r))
		return md_fail(MD_EINVAL, "size '%.64s': want a size such as 24GiB, 24GB or 512MiB",
			       s ? s : "");
	for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
		if (!strcmp(r, sufs[i].suf) || (strlen(r) > 1 && !strcasecmp(r, sufs[i].suf) &&
						 strchr(sufs[i].suf, 'i')))
			return finish(d * sufs[i].mul, s, "size", out);
	return md_fail(MD_EINVAL, "size '%.64s': unknown unit (want KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s);
}

int units_parse_rate(const char *s, const char *what, uint64_t *out)
{
	if (units_parse_bytes(s, out))
		return md_fail(MD_EINVAL, "%s '%.64s': want bytes per second such as 50M or 50MiB "
					  "(2^20), 50MB (10^6) or 1048576", what, s ? s : "");
	return 0;
}

void units_format_count(uint64_t v, char *out, size_t n)
{
	static const struct { double div; const char *suf; } u[] = {
		{ 1e12, "T" }, { 1e9, "B" }, { 1e6, "M" }, { 1e3, "K" },
	};
	for (size_t i = 0; i < 4; i++) {
		/* the unit and the decimals are chosen on the value as printed
		 * (3 significant digits), so 999,999 is "1.00M" and 99,990,000
		 * "100M", not "1000K" and "100.0M" (a unit's x >= 0.9995 here
		 * means the next unit's was under 999.5) */
		double x = (double)v / u[i].div;
		if (x < 0.9995 && i < 3)
			continue;
		if (x < 0.9995) /* under 999.5: the plain number */
			break;
		int prec = x >= 99.95 ? 0 : x >= 9.995 ? 1 : 2;
		snprintf(out, n, "%.*f%s", prec, x, u[i].suf);
		return;
	}
	snprintf(out, n, "%llu", (unsigned long long)v);
}

int units_parse_thresholds(const char *s, uint64_t t[UNITS_MAX_CLASSES], size_t *n)
{
	char buf[256];
	*n = 0;
	if (!s || strlen(s) >= sizeof buf)
		return md_fail(MD_EINVAL, "size_classes: want thresholds such as %s",
			       UNITS_DEFAULT_CLASSES);
	snprintf(buf, sizeof buf, "%s", s);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		uint64_t v;
		if (*n == UNITS_MAX_CLASSES)
			return md_fail(MD_EINVAL, "size_classes: at most %d thresholds", UNITS_MAX_CLASSES);
		if (units_parse_count(tok, &v))
			return md_fail(MD_EINVAL, "size_classes: '%.64s' is not a count such as 100M", tok);
		if (v == 0 || (*n && v <= t[*n - 1]))
			return md_fail(MD_EINVAL, "size_classes: thresholds must increase from above 0");
		t[(*n)++] = v;
	}
	if (!*n)
		return md_fail(MD_EINVAL, "size_classes: want thresholds such as %s",
			       UNITS_DEFAULT_CLASSES);
	return 0;
}

void units_class_part(uint64_t v, char *out, size_t n)
{
	static const struct { uint64_t div; char suf; } u[] = {
		{ 1000000000000ull, 't' }, { 1000000000ull, 'b' }, { 1000000ull, 'm' }, { 1000ull, 'k' },
	};
	for (size_t i = 0; i < 4; i++) {
		if (v >= u[i].div) {
			if (v % u[i].div == 0)
				snprintf(out, n, "%llu%c", (unsigned long long)(v / u[i].div), u[i].suf);
			else
				snprintf(out, n, "%g%c", (double)v / (double)u[i].div, u[i].suf);
			return;
		}
	}
	snprintf(out, n, "%llu", (unsigned long long)v);
}
