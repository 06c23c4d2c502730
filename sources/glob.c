/* sources/glob.c — see glob.h. */
#include "sources/glob.h"
#include "common/err.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define GLOB_MAX 1024

int glob_match(const char *pattern, const char *path)
{
	size_t l = strlen(pattern);
	if (l && l < GLOB_MAX && pattern[l - 1] == '/') {
		char p[GLOB_MAX + 2];
		snprintf(p, sizeof p, "%s*", pattern);
		return fnmatch(p, path, FNM_NOESCAPE) == 0;
	}
	return fnmatch(pattern, path, FNM_NOESCAPE) == 0;
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
