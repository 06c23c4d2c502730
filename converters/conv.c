/* converters/conv.c — conv_info helpers and dtype tables; see converter.h. */
#include "converters/converter.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void conv_info_free(struct conv_info *ci)
{
	for (size_t i = 0; i < ci->n; i++) {
		free(ci->t[i].name);
		free(ci->t[i].stride);
	}
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

int conv_info_add_strided(struct conv_info *ci, const char *name, uint32_t dtype,
			  uint32_t ndim, const uint64_t *shape, const uint64_t *stride,
			  uint64_t src_off, uint64_t len)
{
	uint64_t *st = malloc((ndim ? ndim : 1) * sizeof *st);
	if (!st)
		return MD_ENOMEM;
	if (ndim)
		memcpy(st, stride, ndim * sizeof *st);
	int rc = conv_info_add(ci, name, dtype, ndim, shape, src_off, len);
	if (rc) {
		free(st);
		return rc;
	}
	ci->t[ci->n - 1].stride = st;
	return 0;
}

int conv_strided_span(uint32_t ndim, const uint64_t *shape, const uint64_t *stride,
		      uint64_t esize, uint64_t *span)
{
	uint32_t ix[CONV_MAX_DIMS], m = 0;
	if (ndim > CONV_MAX_DIMS)
		return md_fail(MD_ECORRUPT, "%u dimensions", ndim);
	for (uint32_t d = 0; d < ndim; d++) {
		if (shape[d] == 0) {
			*span = 0;
			return 0;
		}
		if (shape[d] > 1)
			ix[m++] = d;
	}
	/* dims of size > 1 by stride, smallest first (insertion sort: <= 8) */
	for (uint32_t i = 1; i < m; i++)
		for (uint32_t j = i; j > 0 && stride[ix[j]] < stride[ix[j - 1]]; j--) {
			uint32_t t = ix[j];
			ix[j] = ix[j - 1];
			ix[j - 1] = t;
		}
	uint64_t extent = 1;   /* elements the smaller dims reach */
	for (uint32_t i = 0; i < m; i++) {
		uint64_t s = stride[ix[i]], reach;
		if (s < extent)
			return md_fail(MD_EUNSUP, "overlapping elements");
		if (__builtin_mul_overflow(shape[ix[i]] - 1, s, &reach) ||
		    __builtin_add_overflow(reach, extent, &extent))
			return md_fail(MD_ECORRUPT, "strides overflow");
	}
	if (__builtin_mul_overflow(extent, esize, span))
		return md_fail(MD_ECORRUPT, "strides overflow");
	return 0;
}

void conv_gather(const uint8_t *src, const struct conv_tensor *t, uint64_t off, uint64_t n,
		 uint8_t *out)
{
	uint64_t es = conv_dtype_bits(t->dtype) / 8, idx[CONV_MAX_DIMS], first = off / es,
		 count = n / es;
	uint32_t nd = t->ndim;
	if (!es)
		return;   /* strided views are of whole-byte dtypes (torch) */
	/* the multi-index of element `first` */
	for (uint32_t d = nd; d-- > 0;) {
		idx[d] = t->shape[d] ? first % t->shape[d] : 0;
		first = t->shape[d] ? first / t->shape[d] : 0;
	}
	uint64_t pos = 0;
	for (uint32_t d = 0; d < nd; d++)
		pos += idx[d] * t->stride[d];
	const uint8_t *base = src + t->src_off;
	while (count) {
		/* a run along the innermost dimension */
		uint64_t inner = nd ? t->shape[nd - 1] - idx[nd - 1] : 1;
		uint64_t k = inner < count ? inner : count;
		if (!nd || t->stride[nd - 1] == 1) {
			memcpy(out, base + pos * es, k * es);
			out += k * es;
		} else {
			for (uint64_t j = 0; j < k; j++, out += es)
				memcpy(out, base + (pos + j * t->stride[nd - 1]) * es, es);
		}
		count -= k;
		if (!nd)
			break;
		/* step the index past the run, carrying into outer dims */
		idx[nd - 1] += k;
		pos += k * t->stride[nd - 1];
		for (uint32_t d = nd - 1; d > 0 && idx[d] == t->shape[d]; d--) {
			pos -= idx[d] * t->stride[d];
			idx[d] = 0;
			idx[d - 1]++;
			pos += t->stride[d - 1];
		}
	}
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
	{ CONV_DT_C128, 128, "C128" },
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
	if (dtype == CONV_DT_C128)   /* ours (torch's complex128), not the spec's */
		return NULL;
	return conv_dtype_label(dtype);
}

const char *conv_dtype_label(uint32_t dtype)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dt == dtype)
			return dtypes[i].name;
	return NULL;
}
