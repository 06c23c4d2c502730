/*
 * converters/safetensors.c — the "safetensors" converter.
 *
 * Enforces every rule of the reference implementation (huggingface/
 * safetensors, Metadata::validate): an 8-byte little-endian header length of
 * at most 100 000 000 bytes that fits in the file, a UTF-8 JSON object header
 * starting with '{', "__metadata__" a map of strings, known dtypes, data
 * offsets that, sorted, start at 0 and follow each other with no hole and no
 * overlap, byte lengths equal to the overflow-checked shape product times the
 * dtype size (sub-byte dtypes filling whole bytes), and a file that ends
 * exactly at the last tensor. Stricter than the reference: duplicate keys,
 * names with NUL or invalid UTF-8 and more than CONV_MAX_DIMS dimensions are
 * refused. Like the reference (its TensorInfo is a plain serde derive,
 * without deny_unknown_fields), other keys in a tensor entry are ignored:
 * files its readers load are not refused here, and the header bytes, extra
 * keys included, are kept in the recipe.
 */
#include "converters/converter.h"
#include "converters/gguf.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull   /* the reference's MAX_HEADER_SIZE */

static int st_match(const char *path, const uint8_t *head, size_t nhead)
{
	size_t n = path ? strlen(path) : 0;
	if (n >= 12 && !strcmp(path + n - 12, ".safetensors"))
		return 1;
	/* content sniffing: header length in range, then '{' */
	if (nhead < 10)
		return 0;
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | head[i];
	return hl >= 2 && hl <= ST_MAX_HEADER && head[8] == '{' &&
	       (head[9] == '"' || head[9] == '}' || head[9] == ' ' || head[9] == '\n');
}

struct ent {
	const char *name;
	uint32_t dtype, ndim;
	uint64_t shape[CONV_MAX_DIMS];
	uint64_t b, e;
	size_t idx;
};

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	if (x->e != y->e)
		return x->e < y->e ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static uint32_t dtype_of(const char *s)
{
	for (uint32_t d = CONV_DT_BOOL; d < CONV_DT_GGML; d++) {
		const char *n = conv_dtype_name(d);
		if (!n)
			continue;
		if (!strcmp(n, s))
			return d;
	}
	return 0;
}

static int get_uint(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_entry(const char *name, json_t *v, struct ent *e)
{
	if (!json_is_object(v))
		return md_fail(MD_ECORRUPT, "safetensors: %s: entry is not an object", name);
	/* keys other than dtype, shape and data_offsets are ignored, as by the
	 * reference's serde derive */
	const char *ds = json_string_value(json_object_get(v, "dtype"));
	if (!ds)
		return md_fail(MD_ECORRUPT, "safetensors: %s: missing dtype", name);
	if (!(e->dtype = dtype_of(ds)))
		return md_fail(MD_ECORRUPT, "safetensors: %s: unknown dtype \"%.32s\"", name, ds);
	json_t *sh = json_object_get(v, "shape");
	if (!json_is_array(sh))
		return md_fail(MD_ECORRUPT, "safetensors: %s: missing shape", name);
	if (json_array_size(sh) > CONV_MAX_DIMS)
		return md_fail(MD_ECORRUPT, "safetensors: %s: %zu dimensions (at most %d)", name,
			       json_array_size(sh), CONV_MAX_DIMS);
	e->ndim = (uint32_t)json_array_size(sh);
	for (uint32_t i = 0; i < e->ndim; i++)
		if (get_uint(json_array_get(sh, i), &e->shape[i]))
			return md_fail(MD_ECORRUPT, "safetensors: %s: shape[%u] is not a "
				       "non-negative integer", name, i);
	json_t *off = json_object_get(v, "data_offsets");
	if (!json_is_array(off) || json_array_size(off) != 2 ||
	    get_uint(json_array_get(off, 0), &e->b) || get_uint(json_array_get(off, 1), &e->e))
		return md_fail(MD_ECORRUPT, "safetensors: %s: data_offsets is not two "
			       "non-negative integers", name);
	return 0;
}

static int st_parse(int fd, uint64_t size, struct conv_info *ci)
{
	uint8_t lb[8];
	char *hdr = NULL;
	json_t *root = NULL;
	struct ent *ents = NULL;
	int rc = 0;
	ci->format = "safetensors";
	if (size < 8)
		return md_fail(MD_ECORRUPT, "safetensors: file of %llu bytes is shorter than the "
			       "8-byte header length", (unsigned long long)size);
	if (util_pread_full(fd, lb, 8, 0) != 8)
		return md_fail(MD_EIO, "safetensors: cannot read the header length");
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | lb[i];
	if (n > ST_MAX_HEADER)
		return md_fail(MD_ETOOBIG, "safetensors: header length %llu exceeds %llu bytes",
			       (unsigned long long)n, ST_MAX_HEADER);
	if (n > size - 8)
		return md_fail(MD_ECORRUPT, "safetensors: header length %llu runs past the end of "
			       "the file (%llu bytes)", (unsigned long long)n, (unsigned long long)size);
	if (n == 0 || !(hdr = malloc(n)))
		return n ? MD_ENOMEM : md_fail(MD_ECORRUPT, "safetensors: empty header");
	if (util_pread_full(fd, hdr, n, 8) != (ssize_t)n) {
		rc = md_fail(MD_EIO, "safetensors: cannot read the header");
		goto out;
	}
	/* The reference checks UTF-8 over the whole header; NUL bytes are not
	 * valid JSON anywhere, so refuse them too. */
	if (!conv_utf8_ok(hdr, n)) {
		rc = md_fail(MD_ECORRUPT, "safetensors: header is not valid UTF-8 (or holds NUL)");
		goto out;
	}
	if (hdr[0] != '{') {
		rc = md_fail(MD_ECORRUPT, "safetensors: header does not start with '{'");
		goto out;
	}
	json_error_t jerr;
	root = json_loadb(hdr, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = md_fail(MD_ECORRUPT, "safetensors: header JSON: %s at byte %d", jerr.text,
			     jerr.position);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = md_fail(MD_ECORRUPT, "safetensors: header is not a JSON object");
		goto out;
	}
	size_t cnt = json_object_size(root);
	if (cnt > CONV_MAX_TENSORS + 1) {
		rc = md_fail(MD_ETOOBIG, "safetensors: %zu entries (at most %d)", cnt, CONV_MAX_TENSORS);
		goto out;
	}
	if (cnt && !(ents = calloc(cnt, sizeof *ents))) {
		rc = MD_ENOMEM;
		goto out;
	}
	size_t ne = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		size_t kl = strlen(key);
		if (!strcmp(key, "__metadata__")) {
			if (json_is_null(v))   /* the reference reads Option<HashMap> */
				continue;
			if (!json_is_object(v)) {
				rc = md_fail(MD_ECORRUPT, "safetensors: __metadata__ is not an object");
				goto out;
			}
			const char *mk;
			json_t *mv;
			json_object_foreach(v, mk, mv) {
				if (!json_is_string(mv)) {
					rc = md_fail(MD_ECORRUPT, "safetensors: __metadata__ value "
						     "\"%.64s\" is not a string", mk);
					goto out;
				}
				/* caps of the pack's metadata records (gguf.h) */
				if (strlen(mk) > GGUF_MAX_KEY ||
				    json_string_length(mv) > GGUF_MAX_STRING) {
					rc = md_fail(MD_ETOOBIG, "safetensors: __metadata__ entry "
						     "\"%.64s\" is too large", mk);
					goto out;
				}
			}
			if (json_object_size(v))
				ci->meta = json_incref(v);
			continue;
		}
		/* jansson keys are NUL-terminated: an embedded NUL ("\u0000",
		 * refused by jansson unless JSON_ALLOW_NUL) would show as a
		 * shorter key; check anyway. */
		if (kl == 0 || kl > CONV_MAX_NAME || !conv_utf8_ok(key, kl)) {
			rc = md_fail(MD_ECORRUPT, "safetensors: tensor name of %zu bytes is empty, too "
				     "long or not valid UTF-8", kl);
			goto out;
		}
		ents[ne].name = key;
		ents[ne].idx = ne;
		if ((rc = parse_entry(key, v, &ents[ne])))
			goto out;
		ne++;
	}
	if (ne)
		qsort(ents, ne, sizeof *ents, cmp_ent);
	uint64_t start = 0, base = 8 + n;
	for (size_t i = 0; i < ne; i++) {
		struct ent *e = &ents[i];
		if (e->b != start || e->e < e->b) {
			rc = md_fail(MD_ECORRUPT, "safetensors: %s: data_offsets [%llu, %llu) %s "
				     "(expected to start at %llu)", e->name,
				     (unsigned long long)e->b, (unsigned long long)e->e,
				     e->e < e->b ? "end before they start" :
				     e->b < start ? "overlap the previous tensor" :
				     "leave a hole after the previous tensor",
				     (unsigned long long)start);
			goto out;
		}
		uint64_t len;
		if ((rc = conv_tensor_nbytes(e->dtype, e->ndim, e->shape, &len))) {
			md_fail_prefix(rc, e->name);
			rc = md_fail_prefix(rc, "safetensors");
			goto out;
		}
		if (len != e->e - e->b) {
			rc = md_fail(MD_ECORRUPT, "safetensors: %s: data_offsets hold %llu bytes, "
				     "dtype %s and shape need %llu", e->name,
				     (unsigned long long)(e->e - e->b), conv_dtype_name(e->dtype),
				     (unsigned long long)len);
			goto out;
		}
		start = e->e;
	}
	if (start > size - base || start != size - base) {
		rc = md_fail(MD_ECORRUPT, "safetensors: file is %llu bytes, header describes %llu "
			     "(%s)", (unsigned long long)size,
			     (unsigned long long)(start + base),
			     start > size - base ? "truncated" : "trailing bytes");
		goto out;
	}
	for (size_t i = 0; i < ne; i++) {
		struct ent *e = &ents[i];
		if ((rc = conv_info_add(ci, e->name, e->dtype, e->ndim, e->shape, base + e->b,
					e->e - e->b)))
			goto out;
	}
out:
	free(ents);
	json_decref(root);
	free(hdr);
	return rc;
}

const struct converter conv_safetensors = {
	.name = "safetensors",
	.match = st_match,
	.parse = st_parse,
};
