/* converters/dtype.c — tensor byte lengths, ggml block types, UTF-8 checks;
 * see converter.h. */
#include "converters/converter.h"
#include "common/err.h"

#include <stdio.h>
#include <string.h>

/* ggml type traits: block size (elements) and bytes per block. Ids 4, 5,
 * 31..33 and 36..38 were removed from GGUF and are refused. */
static const struct {
	uint8_t id;
	uint16_t blck, tsize;
	const char *name;
} ggml[] = {
	{ 0, 1, 4, "F32" }, { 1, 1, 2, "F16" }, { 2, 32, 18, "Q4_0" },
	{ 3, 32, 20, "Q4_1" }, { 6, 32, 22, "Q5_0" }, { 7, 32, 24, "Q5_1" },
	{ 8, 32, 34, "Q8_0" }, { 9, 32, 36, "Q8_1" }, { 10, 256, 84, "Q2_K" },
	{ 11, 256, 110, "Q3_K" }, { 12, 256, 144, "Q4_K" }, { 13, 256, 176, "Q5_K" },
	{ 14, 256, 210, "Q6_K" }, { 15, 256, 292, "Q8_K" }, { 16, 256, 66, "IQ2_XXS" },
	{ 17, 256, 74, "IQ2_XS" }, { 18, 256, 98, "IQ3_XXS" }, { 19, 256, 50, "IQ1_S" },
	{ 20, 32, 18, "IQ4_NL" }, { 21, 256, 110, "IQ3_S" }, { 22, 256, 82, "IQ2_S" },
	{ 23, 256, 136, "IQ4_XS" }, { 24, 1, 1, "I8" }, { 25, 1, 2, "I16" },
	{ 26, 1, 4, "I32" }, { 27, 1, 8, "I64" }, { 28, 1, 8, "F64" },
	{ 29, 256, 56, "IQ1_M" }, { 30, 1, 2, "BF16" }, { 34, 256, 54, "TQ1_0" },
	{ 35, 256, 66, "TQ2_0" }, { 39, 32, 17, "MXFP4" },
};

int conv_ggml_type(uint32_t t, uint32_t *blck, uint32_t *tsize, const char **name)
{
	for (size_t i = 0; i < sizeof ggml / sizeof ggml[0]; i++)
		if (ggml[i].id == t) {
			if (blck)
				*blck = ggml[i].blck;
			if (tsize)
				*tsize = ggml[i].tsize;
			if (name)
				*name = ggml[i].name;
			return 1;
		}
	return 0;
}

int conv_dtype_known(uint32_t dtype)
{
	if (dtype >= CONV_DT_GGML)
		return dtype - CONV_DT_GGML <= 255 &&
		       conv_ggml_type(dtype - CONV_DT_GGML, NULL, NULL, NULL);
	return conv_dtype_bits(dtype) != 0;
}

const char *conv_dtype_str(uint32_t dtype)
{
	if (dtype >= CONV_DT_GGML && dtype - CONV_DT_GGML <= 255) {
		static const char *const full[] = {
			"GGML_F32", "GGML_F16", "GGML_Q4_0", "GGML_Q4_1", NULL, NULL,
			"GGML_Q5_0", "GGML_Q5_1", "GGML_Q8_0", "GGML_Q8_1", "GGML_Q2_K",
			"GGML_Q3_K", "GGML_Q4_K", "GGML_Q5_K", "GGML_Q6_K", "GGML_Q8_K",
			"GGML_IQ2_XXS", "GGML_IQ2_XS", "GGML_IQ3_XXS", "GGML_IQ1_S",
			"GGML_IQ4_NL", "GGML_IQ3_S", "GGML_IQ2_S", "GGML_IQ4_XS", "GGML_I8",
			"GGML_I16", "GGML_I32", "GGML_I64", "GGML_F64", "GGML_IQ1_M",
			"GGML_BF16", NULL, NULL, NULL, "GGML_TQ1_0", "GGML_TQ2_0", NULL,
			NULL, NULL, "GGML_MXFP4",
		};
		uint32_t t = dtype - CONV_DT_GGML;
		if (t < sizeof full / sizeof full[0] && full[t])
			return full[t];
		return "?";
	}
	const char *n = conv_dtype_label(dtype);
	return n ? n : "?";
}

const char *conv_dtype_key(uint32_t dtype, char buf[32])
{
	const char *n = conv_dtype_str(dtype);
	if (strcmp(n, "?"))
		return n;
	snprintf(buf, 32, "GGML_%u", dtype - CONV_DT_GGML);
	return buf;
}

int conv_tensor_nbytes(uint32_t dtype, uint32_t ndim, const uint64_t *shape, uint64_t *len)
{
	if (ndim > CONV_MAX_DIMS)
		return md_fail(MD_ECORRUPT, "%u dimensions (at most %d)", ndim, CONV_MAX_DIMS);
	uint64_t n = 1;
	for (uint32_t i = 0; i < ndim; i++)
		if (__builtin_mul_overflow(n, shape[i], &n))
			return md_fail(MD_ECORRUPT, "shape product overflows 64 bits");
	if (dtype >= CONV_DT_GGML) {
		uint32_t blck, tsize;
		if (dtype - CONV_DT_GGML > 255 ||
		    !conv_ggml_type(dtype - CONV_DT_GGML, &blck, &tsize, NULL))
			return md_fail(MD_ECORRUPT, "unknown ggml type %u", dtype - CONV_DT_GGML);
		uint64_t inner = ndim ? shape[ndim - 1] : 1;
		if (inner % blck)
			return md_fail(MD_ECORRUPT, "innermost dimension %llu is not a multiple of "
				       "the block size %u", (unsigned long long)inner, blck);
		if (__builtin_mul_overflow(n / blck, (uint64_t)tsize, len))
			return md_fail(MD_ECORRUPT, "byte length overflows 64 bits");
		return 0;
	}
	unsigned bits = conv_dtype_bits(dtype);
	if (!bits)
		return md_fail(MD_ECORRUPT, "unknown dtype %u", dtype);
	uint64_t nbits;
	if (__builtin_mul_overflow(n, (uint64_t)bits, &nbits))
		return md_fail(MD_ECORRUPT, "shape product overflows 64 bits");
	if (nbits % 8)
		return md_fail(MD_ECORRUPT, "%llu elements of %u bits do not fill whole bytes",
			       (unsigned long long)n, bits);
	*len = nbits / 8;
	return 0;
}

int conv_utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		unsigned cp, min;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1; cp = c & 0x1f; min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2; cp = c & 0x0f; min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3; cp = c & 0x07; min = 0x10000;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}
