/* sources/glob.c — see glob.h. */
#include "sources/glob.h"
#include "common/err.h"
#include "common/util.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define GLOB_MAX 1024

/* fnmatch compares characters, not bytes, only in a UTF-8 locale: "?" must
 * match "é" in "café.json" as Python's fnmatch does (util_utf8_enter). */
/*
 * Python's fnmatch syntax as glibc fnmatch (escapes on) reads it: '\' is a
 * literal character; a '[' without its ']' is literal; in a set, only a
 * leading '!' negates ('^' is literal) and "[:alpha:]" is no class.
 * out has room for 2 * strlen(pat) + 2 bytes.
 */
static void translate(const char *pat, char *out)
{
	size_t n = strlen(pat), i = 0;
	char *o = out;
	while (i < n) {
		char c = pat[i++];
		if (c == '[') {
			size_t j = i;
			if (j < n && pat[j] == '!')
				j++;
			if (j < n && pat[j] == ']')
				j++;
			while (j < n && pat[j] != ']')
				j++;
			if (j >= n) { /* no closing ']': a literal '[' */
				*o++ = '\\';
				*o++ = '[';
				continue;
			}
			*o++ = '[';
			size_t k = i;
			if (pat[k] == '!')
				*o++ = pat[k++];
			for (; k < j; k++) {
				if (pat[k] == '\\' || pat[k] == '[' || pat[k] == '^')
					*o++ = '\\';
				*o++ = pat[k];
			}
			*o++ = ']';
			i = j + 1;
		} else {
			if (c == '\\')
				*o++ = '\\';
			*o++ = c;
		}
	}
	*o = 0;
}

int glob_match(const char *pattern, const char *path)
{
	size_t l = strlen(pattern);
	if (!l || l > GLOB_MAX)
		return 0;
	char p[GLOB_MAX + 2], t[2 * (GLOB_MAX + 1) + 2];
	/* a folder ("onnx/") means everything under it, as in huggingface_hub */
	snprintf(p, sizeof p, "%s%s", pattern, pattern[l - 1] == '/' ? "*" : "");
	translate(p, t);
	locale_t old = util_utf8_enter();
	int m = fnmatch(t, path, 0) == 0;
	util_utf8_leave(old);
	return m;
}

int glob_filter(const char *path, const char *const *include, size_t ni,
		const char *const *exclude, size_t ne)
{
	int in = ni == 0;
	for (size_t i = 0; i < ni && !in; i++)
		in = glob_match(include[i], path);
	if (!in)
		return 0;
	for (size_t i = 0; i < ne; i++)
		if (glob_match(exclude[i], path))
			return 0;
	return 1;
}

int glob_check(const char *pattern)
{
	size_t l = pattern ? strlen(pattern) : 0;
	if (l == 0 || l > GLOB_MAX)
		return md_fail(MD_EINVAL, "pattern must be 1..%d bytes", GLOB_MAX);
	for (const unsigned char *p = (const unsigned char *)pattern; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return md_fail(MD_EINVAL, "pattern has a control character");
	return 0;
}
