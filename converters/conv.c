/* converters/conv.c — conv_info helpers and dtype tables; see converter.h. */
#include "converters/converter.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void conv_info_free(struct conv_info *ci)
{
	for (size_t i = 0; i < ci->n; i++)
		free(ci->t[i].name);
	free(ci->t);
	json_decref(ci->meta);
	memset(ci, 0, sizeof *ci);
}

int conv_info_add(struct conv_info *ci, const char *name, uint32_t dtype,
		  uint32_t ndim, const uint64_t *shape, uint64_t src_off, uint64_t len)
{
	if (ndim > CONV_MAX_DIMS)
		return md_fail(MD_ETOOBIG, "%s: %u dimensions (at most %d)", name, ndim, CONV_MAX_DIMS);
	if (ci->n >= CONV_MAX_TENSORS)
		return md_fail(MD_ETOOBIG, "more than %d tensors", CONV_MAX_TENSORS);
	if (ci->n == ci->cap) {
		size_t nc = ci->cap ? ci->cap * 2 : 64;
		struct conv_tensor *nt = realloc(ci->t, nc * sizeof *nt);
		if (!nt)
			return MD_ENOMEM;
		ci->t = nt;
		ci->cap = nc;
	}
	struct conv_tensor *t = &ci->t[ci->n];
	memset(t, 0, sizeof *t);
	if (!(t->name = strdup(name)))
		return MD_ENOMEM;
	t->dtype = dtype;
	t->ndim = ndim;
	if (ndim)
		memcpy(t->shape, shape, ndim * sizeof *shape);
	t->src_off = src_off;
	t->len = len;
	t->alias = -1;
	ci->n++;
	return 0;
}

static const struct {
	uint32_t dt;
	unsigned bits;
	const char *name;
} dtypes[] = {
	{ CONV_DT_BOOL, 8, "BOOL" }, { CONV_DT_U8, 8, "U8" }, { CONV_DT_I8, 8, "I8" },
	{ CONV_DT_I16, 16, "I16" }, { CONV_DT_U16, 16, "U16" }, { CONV_DT_I32, 32, "I32" },
	{ CONV_DT_U32, 32, "U32" }, { CONV_DT_I64, 64, "I64" }, { CONV_DT_U64, 64, "U64" },
	{ CONV_DT_F16, 16, "F16" }, { CONV_DT_BF16, 16, "BF16" }, { CONV_DT_F32, 32, "F32" },
	{ CONV_DT_F64, 64, "F64" }, { CONV_DT_F8_E4M3, 8, "F8_E4M3" },
	{ CONV_DT_F8_E5M2, 8, "F8_E5M2" }, { CONV_DT_F8_E8M0, 8, "F8_E8M0" },
	{ CONV_DT_F6_E2M3, 6, "F6_E2M3" }, { CONV_DT_F6_E3M2, 6, "F6_E3M2" },
	{ CONV_DT_F4, 4, "F4" }, { CONV_DT_C64, 64, "C64" },
};

unsigned conv_dtype_bits(uint32_t dtype)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dtype)
			return dtypes[i].bits;
	return 0;
}

const char *conv_dtype_name(uint32_t dtype)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dtype)
			return dtypes[i].name;
	return NULL;
}
