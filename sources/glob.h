/*
 * sources/glob.h — --include/--exclude filters over repository paths, with
 * huggingface_hub's semantics (Python's fnmatch: '*' also matches '/', so
 * "*.json" matches "sub/x.json"; '?' and sets match one character, not one
 * byte, so "caf?.json" matches "café.json"; a pattern ending in '/' matches
 * everything under that folder; '\' is literal; a '[' without ']' is
 * literal; only "[!...]" negates ("[^...]" holds '^'); no "[:class:]";
 * case sensitive).
 *
 * Patterns are borrowed; nothing is allocated. Thread-safe.
 */
#ifndef MD_GLOB_H
#define MD_GLOB_H

#include <stddef.h>

/* 1 if path matches pattern, else 0. */
int glob_match(const char *pattern, const char *path);

/*
 * 1 if path passes the filters: it matches at least one of include[0..ni)
 * (or ni == 0) and none of exclude[0..ne).
 */
int glob_filter(const char *path, const char *const *include, size_t ni,
		const char *const *exclude, size_t ne);

/* Check a pattern from a user: 1..1024 bytes, no NUL/control characters.
 * 0 or MD_EINVAL with a detail naming it. */
int glob_check(const char *pattern);

#endif
