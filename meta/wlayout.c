/* meta/wlayout.c — see wlayout.h. */
#include "meta/wlayout.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

static const char *base_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static size_t dir_len(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? (size_t)(s - p) : 0;
}

static int ends_with(const char *s, size_t n, const char *suf, size_t *stem)
{
	size_t k = strlen(suf);
	if (n < k || memcmp(s + n - k, suf, k))
		return 0;
	*stem = n - k;
	return 1;
}

/* s[0..n) is "-DIGITS-of-DIGITS". */
static int shard_suffix(const char *s, size_t n)
{
	size_t i = 1, d;
	if (n < 1 || s[0] != '-')
		return 0;
	for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == d || n - i < 4 || memcmp(s + i, "-of-", 4))
		return 0;
	for (i += 4, d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		;
	return i > d && i == n;
}

/* A loader file name's parts: family (0 transformers: model.safetensors /
 * pytorch_model.bin; 1 diffusers; 2 PEFT), safetensors or bin, variant. */
struct lname {
	int family, st;
	const char *var;
	size_t varlen;
};

static int loader(const char *base, struct lname *out)
{
	static const struct {
		const char *stem;
		int family, st, bin; /* the extensions its loader reads */
	} stems[] = { { "model", 0, 1, 0 }, { "pytorch_model", 0, 0, 1 },
		      { "diffusion_pytorch_model", 1, 1, 1 }, { "adapter_model", 2, 1, 1 } };
	size_t n = strlen(base), core;
	int st = ends_with(base, n, ".safetensors", &core);
	if (!st && !ends_with(base, n, ".bin", &core))
		return 0;
	for (size_t k = 0; k < sizeof stems / sizeof stems[0]; k++) {
		size_t sl = strlen(stems[k].stem);
		if (!(st ? stems[k].st : stems[k].bin) || core < sl || memcmp(base, stems[k].stem, sl))
			continue;
		const char *r = base + sl;
		size_t rn = core - sl, i = 0;
		if (rn && r[0] == '.') { /* a variant: model.fp16.safetensors */
			for (i = 1; i < rn && r[i] != '-' && r[i] != '.'; i++)
				;
			if (i == 1)
				continue;
		}
		if (i != rn && !shard_suffix(r + i, rn - i))
			continue;
		if (out)
			*out = (struct lname){ stems[k].family, st, i ? r + 1 : "", i ? i - 1 : 0 };
		return 1;
	}
	return 0;
}

int wlayout_is_loader(const char *base)
{
	return loader(base, NULL);
}

struct dirs {
	const char **p;
	size_t *len, n;
};

static int has(const struct dirs *L, const char *d, size_t len)
{
	for (size_t i = 0; i < L->n; i++)
		if (L->len[i] == len && !memcmp(L->p[i], d, len))
			return 1;
	return 0;
}

/* Path p lies under a folder "original" whose parent holds a loader file. */
static int under_original(const struct dirs *L, const char *p)
{
	size_t dl = dir_len(p);
	for (size_t s = 0; s < dl;) {
		const char *e = memchr(p + s, '/', dl - s);
		size_t end = e ? (size_t)(e - p) : dl;
		if (end - s == 8 && !memcmp(p + s, "original", 8) && has(L, p, s ? s - 1 : 0))
			return 1;
		s = end + 1;
	}
	return 0;
}

int wlayout_alternates(const char *const *paths, size_t n, const unsigned char *weight,
		       unsigned char *alt)
{
	struct dirs L = { calloc(n ? n : 1, sizeof *L.p), calloc(n ? n : 1, sizeof *L.len), 0 };
	if (!L.p || !L.len) {
		free(L.p);
		free(L.len);
		return MD_ENOMEM;
	}
	int pipeline = 0, components = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(paths[i], "model_index.json"))
			pipeline = 1;
		if (weight[i] && wlayout_is_loader(base_of(paths[i]))) {
			L.p[L.n] = paths[i];
			L.len[L.n] = dir_len(paths[i]);
			components |= L.len[L.n] > 0;
			L.n++;
		}
	}
	int root_loader = has(&L, "", 0);
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i];
		size_t dl = dir_len(p);
		alt[i] = 0;
		if (!weight[i])
			continue;
		if (under_original(&L, p))
			alt[i] = 1;
		else if (has(&L, p, dl))
			alt[i] = !wlayout_is_loader(base_of(p));
		else
			alt[i] = !dl && pipeline && components && !root_loader;
	}
	free(L.p);
	free(L.len);
	return 0;
}

/* 0 no variant + safetensors, 1 no variant + bin, 2 variant + safetensors, 3. */
static int rank(const struct lname *l)
{
	return (l->varlen ? 2 : 0) + !l->st;
}

int wlayout_defaults(const char *const *paths, size_t n, const unsigned char *weight,
		     unsigned char *pick)
{
	unsigned char *alt = calloc(n ? n : 1, 1);
	struct lname *ln = calloc(n ? n : 1, sizeof *ln);
	unsigned char *isl = calloc(n ? n : 1, 1);
	int rc = alt && ln && isl ? wlayout_alternates(paths, n, weight, alt) : MD_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++)
		isl[i] = weight[i] && !alt[i] && loader(base_of(paths[i]), &ln[i]);
	for (size_t i = 0; !rc && i < n; i++) {
		pick[i] = weight[i] && !alt[i];
		if (!isl[i])
			continue;
		/* the best kind of this folder's files of the same loader, and
		 * whether its variant files name one variant */
		size_t dl = dir_len(paths[i]);
		int best = 4, onevar = 1;
		const struct lname *v = NULL;
		for (size_t j = 0; j < n; j++) {
			if (!isl[j] || ln[j].family != ln[i].family || dir_len(paths[j]) != dl ||
			    memcmp(paths[j], paths[i], dl))
				continue;
			best = rank(&ln[j]) < best ? rank(&ln[j]) : best;
			if (ln[j].varlen && v && (v->varlen != ln[j].varlen ||
						  memcmp(v->var, ln[j].var, v->varlen)))
				onevar = 0;
			if (ln[j].varlen)
				v = &ln[j];
		}
		pick[i] = rank(&ln[i]) == best || (best >= 2 && !onevar);
	}
	free(alt);
	free(ln);
	free(isl);
	return rc;
}

int wlayout_mark_files(const json_t *files, int defaults, unsigned char **out)
{
	size_t n = json_array_size(files);
	const char **paths = calloc(n + 1, sizeof *paths);
	unsigned char *w = calloc(n + 1, 1);
	*out = calloc(n + 1, 1);
	int rc = paths && w && *out ? 0 : MD_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		const json_t *f = json_array_get(files, i);
		const char *path = json_string_value(json_object_get(f, "path"));
		paths[i] = path ? path : "";
		w[i] = path && json_string_value(json_object_get(f, "pack"));
	}
	if (!rc)
		rc = (defaults ? wlayout_defaults : wlayout_alternates)(paths, n, w, *out);
	free(paths);
	free(w);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}
