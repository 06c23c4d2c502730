/*
 * converters/gguf.c — GGUF v2/v3 reader (the "gguf" converter) and GGUF
 * typed key/value records (see gguf.h). Checks follow llama.cpp's
 * gguf_init_from_file: known value and tensor types, no duplicate keys or
 * tensor names, names shorter than 64 bytes, at most 4 dimensions, element
 * counts within int64, innermost dimension a multiple of the block size,
 * general.alignment a u32 power of two, every tensor offset equal to the
 * running sum of padded sizes, all data inside the file; plus: no bytes after
 * the padded data, caps on every count and length. Other versions (1, 4, a
 * big-endian file) are refused, not passed over: a file that says GGUF is
 * never stored unchecked.
 */
#include "converters/gguf.h"
#include "converters/converter.h"
#include "common/err.h"
#include "common/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CUR_BUF (1u << 16)
#define GGUF_MAX_NAME 63          /* llama.cpp: GGML_MAX_NAME (64) incl. NUL */
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGN 32

static const char *const tnames[GGUF_NTYPES] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
	"u64", "i64", "f64",
};
static const unsigned tsizes[GGUF_NTYPES] = { 1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8 };

int gguf_cur_init(struct gguf_cur *c, int fd, const uint8_t *mem, uint64_t pos,
		  uint64_t end, const char *what)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->mem = mem;
	c->pos = pos;
	c->end = end;
	c->what = what;
	if (!mem && !(c->buf = malloc(CUR_BUF)))
		return MD_ENOMEM;
	return 0;
}

void gguf_cur_free(struct gguf_cur *c)
{
	free(c->buf);
	c->buf = NULL;
}

int gguf_get(struct gguf_cur *c, void *dst, size_t n)
{
	if (c->pos > c->end || n > c->end - c->pos)
		return md_fail(MD_ECORRUPT, "%s: truncated at byte %llu (need %zu more bytes)",
			       c->what, (unsigned long long)c->pos, n);
	if (c->mem) {
		memcpy(dst, c->mem + c->pos, n);
		c->pos += n;
		return 0;
	}
	uint8_t *d = dst;
	while (n) {
		if (c->pos >= c->bstart && c->pos < c->bstart + c->blen) {
			size_t o = c->pos - c->bstart, k = c->blen - o;
			if (k > n)
				k = n;
			memcpy(d, c->buf + o, k);
			d += k;
			n -= k;
			c->pos += k;
			continue;
		}
		uint64_t want = c->end - c->pos;
		if (want > CUR_BUF)
			want = CUR_BUF;
		ssize_t r = util_pread_full(c->fd, c->buf, want, (off_t)c->pos);
		if (r < 0)
			return md_fail(MD_EIO, "%s: read error at byte %llu", c->what,
				       (unsigned long long)c->pos);
		if ((uint64_t)r < want && (uint64_t)r < n)
			return md_fail(MD_ECORRUPT, "%s: truncated at byte %llu", c->what,
				       (unsigned long long)(c->pos + (uint64_t)r));
		c->bstart = c->pos;
		c->blen = (size_t)r;
	}
	return 0;
}

int gguf_get_u32(struct gguf_cur *c, uint32_t *v)
{
	uint8_t b[4];
	int rc = gguf_get(c, b, 4);
	if (rc)
		return rc;
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

int gguf_get_u64(struct gguf_cur *c, uint64_t *v)
{
	uint8_t b[8];
	int rc = gguf_get(c, b, 8);
	if (rc)
		return rc;
	*v = 0;
	for (int i = 7; i >= 0; i--)
		*v = *v << 8 | b[i];
	return 0;
}

int gguf_get_str(struct gguf_cur *c, uint64_t max, char **out, uint64_t *len)
{
	uint64_t n;
	uint64_t at = c->pos;
	int rc = gguf_get_u64(c, &n);
	if (rc)
		return rc;
	if (n > max)
		return md_fail(MD_ETOOBIG, "%s: string of %llu bytes at byte %llu (at most %llu)",
			       c->what, (unsigned long long)n, (unsigned long long)at,
			       (unsigned long long)max);
	if (n > c->end - c->pos)
		return md_fail(MD_ECORRUPT, "%s: string of %llu bytes at byte %llu runs past the end",
			       c->what, (unsigned long long)n, (unsigned long long)at);
	char *s = malloc(n + 1);
	if (!s)
		return MD_ENOMEM;
	if ((rc = gguf_get(c, s, n))) {
		free(s);
		return rc;
	}
	s[n] = 0;
	if (!conv_utf8_ok(s, n)) {
		free(s);
		return md_fail(MD_ECORRUPT, "%s: string at byte %llu is not valid UTF-8 or holds NUL",
			       c->what, (unsigned long long)at);
	}
	*out = s;
	if (len)
		*len = n;
	return 0;
}

static json_t *float_json(double d)
{
	if (isnan(d))
		return json_string("nan");
	if (isinf(d))
		return json_string(d > 0 ? "inf" : "-inf");
	return json_real(d);
}

/* One scalar or string of type t as JSON (untyped: the caller wraps it). */
static int read_value(struct gguf_cur *c, uint32_t t, const char *key, json_t **out)
{
	uint8_t b[8];
	int rc;
	if (t == GGUF_STRING) {
		char *s;
		uint64_t n;
		if ((rc = gguf_get_str(c, GGUF_MAX_STRING, &s, &n)))
			return md_fail_prefix(rc, key);
		*out = json_stringn(s, n);
		free(s);
		return *out ? 0 : MD_ENOMEM;
	}
	if ((rc = gguf_get(c, b, tsizes[t])))
		return rc;
	uint64_t u = 0;
	for (int i = (int)tsizes[t] - 1; i >= 0; i--)
		u = u << 8 | b[i];
	json_int_t v;
	switch (t) {
	case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64:
		v = (json_int_t)u; break;
	case GGUF_I8: v = (int8_t)u; break;
	case GGUF_I16: v = (int16_t)u; break;
	case GGUF_I32: v = (int32_t)u; break;
	case GGUF_I64: v = (json_int_t)u; break;
	case GGUF_BOOL:
		if (u > 1)
			return md_fail(MD_ECORRUPT, "%s: %s: bool value %llu", c->what, key,
				       (unsigned long long)u);
		*out = json_boolean(u);
		return 0;
	case GGUF_F32: {
		float f;
		uint32_t w = (uint32_t)u;
		memcpy(&f, &w, 4);
		*out = float_json(f);
		return *out ? 0 : MD_ENOMEM;
	}
	case GGUF_F64: {
		double d;
		memcpy(&d, &u, 8);
		*out = float_json(d);
		return *out ? 0 : MD_ENOMEM;
	}
	default:
		return md_fail(MD_ECORRUPT, "%s: %s: unknown value type %u", c->what, key, t);
	}
	*out = json_integer(v);
	return *out ? 0 : MD_ENOMEM;
}

static int read_kv_value(struct gguf_cur *c, uint32_t t, const char *key, json_t **out)
{
	int rc;
	if (t >= GGUF_NTYPES)
		return md_fail(MD_ECORRUPT, "%s: %s: unknown value type %u", c->what, key, t);
	if (t == GGUF_STRING)
		return read_value(c, t, key, out);
	if (t != GGUF_ARRAY) {
		json_t *v;
		if ((rc = read_value(c, t, key, &v)))
			return rc;
		*out = json_pack("{s:s,s:o}", "type", tnames[t], "value", v);
		return *out ? 0 : MD_ENOMEM;
	}
	uint32_t et;
	uint64_t n;
	if ((rc = gguf_get_u32(c, &et)) || (rc = gguf_get_u64(c, &n)))
		return rc;
	if (et == GGUF_ARRAY)
		return md_fail(MD_ECORRUPT, "%s: %s: nested arrays are not supported", c->what, key);
	if (et >= GGUF_NTYPES)
		return md_fail(MD_ECORRUPT, "%s: %s: unknown array element type %u", c->what, key, et);
	if (n > GGUF_MAX_ELEMS - c->elems)
		return md_fail(MD_ETOOBIG, "%s: %s: array of %llu elements (at most %u in all)",
			       c->what, key, (unsigned long long)n, GGUF_MAX_ELEMS);
	if (n > (c->end - c->pos) / tsizes[et])
		return md_fail(MD_ECORRUPT, "%s: %s: array of %llu elements runs past the end",
			       c->what, key, (unsigned long long)n);
	c->elems += n;
	json_t *arr = json_array();
	if (!arr)
		return MD_ENOMEM;
	for (uint64_t i = 0; i < n; i++) {
		json_t *v;
		if ((rc = read_value(c, et, key, &v))) {
			json_decref(arr);
			return rc;
		}
		if (json_array_append_new(arr, v)) {
			json_decref(arr);
			return MD_ENOMEM;
		}
	}
	*out = json_pack("{s:s,s:s,s:o}", "type", "array", "elem", tnames[et], "value", arr);
	return *out ? 0 : MD_ENOMEM;
}

int gguf_meta_read(struct gguf_cur *c, uint64_t count, json_t **out)
{
	if (count > GGUF_MAX_KV)
		return md_fail(MD_ETOOBIG, "%s: %llu metadata records (at most %u)", c->what,
			       (unsigned long long)count, GGUF_MAX_KV);
	json_t *obj = json_object();
	if (!obj)
		return MD_ENOMEM;
	int rc = 0;
	for (uint64_t i = 0; i < count; i++) {
		char *key = NULL;
		uint64_t klen;
		uint32_t t;
		json_t *v = NULL;
		if ((rc = gguf_get_str(c, GGUF_MAX_KEY, &key, &klen)))
			break;
		if (json_object_get(obj, key)) {
			rc = md_fail(MD_ECORRUPT, "%s: duplicate metadata key %s", c->what, key);
		} else if (!(rc = gguf_get_u32(c, &t)) && !(rc = read_kv_value(c, t, key, &v))) {
			if (json_object_set_new(obj, key, v))
				rc = MD_ENOMEM;
		}
		free(key);
		if (rc)
			break;
	}
	if (rc) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

/* ---- encoding ---- */

struct obuf {
	uint8_t *p;
	size_t n, cap;
	int err;
};

static void put(struct obuf *b, const void *d, size_t n)
{
	if (b->err || n == 0)
		return;
	if (n > GGUF_MAX_META || b->n > GGUF_MAX_META - n) {
		b->err = md_fail(MD_ETOOBIG, "metadata larger than %u bytes", GGUF_MAX_META);
		return;
	}
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->n + n)
			nc *= 2;
		uint8_t *np = realloc(b->p, nc);
		if (!np) {
			b->err = MD_ENOMEM;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_le(struct obuf *b, uint64_t v, unsigned size)
{
	uint8_t x[8];
	for (unsigned i = 0; i < size; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(b, x, size);
}

static void put_str(struct obuf *b, const char *s, size_t n)
{
	put_le(b, n, 8);
	put(b, s, n);
}

static int type_of(const char *s)
{
	for (int i = 0; i < GGUF_NTYPES; i++)
		if (!strcmp(s, tnames[i]))
			return i;
	return -1;
}

static int put_scalar(struct obuf *b, int t, const json_t *v, const char *key)
{
	if (t == GGUF_STRING) {
		if (!json_is_string(v))
			return md_fail(MD_EINVAL, "metadata %s: expected a string", key);
		put_str(b, json_string_value(v), json_string_length(v));
		return 0;
	}
	if (t == GGUF_BOOL) {
		if (!json_is_boolean(v))
			return md_fail(MD_EINVAL, "metadata %s: expected a boolean", key);
		put_le(b, json_is_true(v), 1);
		return 0;
	}
	if (t == GGUF_F32 || t == GGUF_F64) {
		double d;
		if (json_is_number(v))
			d = json_number_value(v);
		else if (json_is_string(v) && !strcmp(json_string_value(v), "nan"))
			d = NAN;
		else if (json_is_string(v) && !strcmp(json_string_value(v), "inf"))
			d = INFINITY;
		else if (json_is_string(v) && !strcmp(json_string_value(v), "-inf"))
			d = -INFINITY;
		else
			return md_fail(MD_EINVAL, "metadata %s: expected a number", key);
		if (t == GGUF_F32) {
			float f = (float)d;
			uint32_t w;
			memcpy(&w, &f, 4);
			put_le(b, w, 4);
		} else {
			uint64_t w;
			memcpy(&w, &d, 8);
			put_le(b, w, 8);
		}
		return 0;
	}
	if (!json_is_integer(v))
		return md_fail(MD_EINVAL, "metadata %s: expected an integer", key);
	put_le(b, (uint64_t)json_integer_value(v), tsizes[t]);
	return 0;
}

static int put_value(struct obuf *b, const json_t *v, const char *key)
{
	if (json_is_string(v)) {
		put_le(b, GGUF_STRING, 4);
		return put_scalar(b, GGUF_STRING, v, key);
	}
	if (json_is_integer(v)) {
		put_le(b, GGUF_I64, 4);
		return put_scalar(b, GGUF_I64, v, key);
	}
	if (json_is_real(v)) {
		put_le(b, GGUF_F64, 4);
		return put_scalar(b, GGUF_F64, v, key);
	}
	if (json_is_boolean(v)) {
		put_le(b, GGUF_BOOL, 4);
		return put_scalar(b, GGUF_BOOL, v, key);
	}
	const json_t *arr = NULL;
	int et = -1;
	if (json_is_array(v)) {
		arr = v;
		et = json_array_size(v) && json_is_string(json_array_get(v, 0)) ? GGUF_STRING : GGUF_I64;
	} else if (json_is_object(v)) {
		const char *ts = json_string_value(json_object_get(v, "type"));
		int t = ts ? type_of(ts) : -1;
		const json_t *val = json_object_get(v, "value");
		if (t < 0 || !val)
			return md_fail(MD_EINVAL, "metadata %s: typed value without a known type", key);
		if (t != GGUF_ARRAY) {
			put_le(b, (uint64_t)t, 4);
			return put_scalar(b, t, val, key);
		}
		const char *es = json_string_value(json_object_get(v, "elem"));
		et = es ? type_of(es) : -1;
		arr = val;
		if (et < 0 || et == GGUF_ARRAY || !json_is_array(arr))
			return md_fail(MD_EINVAL, "metadata %s: bad array", key);
	} else {
		return md_fail(MD_EINVAL, "metadata %s: value has no GGUF form", key);
	}
	put_le(b, GGUF_ARRAY, 4);
	put_le(b, (uint64_t)et, 4);
	put_le(b, json_array_size(arr), 8);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		int rc = put_scalar(b, et, json_array_get(arr, i), key);
		if (rc)
			return rc;
	}
	return 0;
}

int gguf_meta_encode(const json_t *meta, const char *skip_key, uint8_t **out,
		     size_t *len, uint64_t *count)
{
	struct obuf b = { 0 };
	uint64_t n = 0;
	const char *key;
	json_t *v;
	int rc = 0;
	if (meta && !json_is_object(meta))
		return md_fail(MD_EINVAL, "metadata is not an object");
	if (meta) {
		json_object_foreach((json_t *)meta, key, v) {
			if (skip_key && !strcmp(key, skip_key))
				continue;
			size_t kl = strlen(key);
			if (kl > GGUF_MAX_KEY || !conv_utf8_ok(key, kl)) {
				rc = md_fail(MD_EINVAL, "metadata key of %zu bytes is not valid", kl);
				break;
			}
			put_str(&b, key, kl);
			if ((rc = put_value(&b, v, key)))
				break;
			n++;
		}
	}
	if (!rc && n > GGUF_MAX_KV)
		rc = md_fail(MD_ETOOBIG, "%llu metadata records", (unsigned long long)n);
	if (!rc)
		rc = b.err;
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*len = b.n;
	*count = n;
	return 0;
}

/* ---- the converter ---- */

static int gguf_match(const char *path, const uint8_t *head, size_t nhead)
{
	(void)path;
	return nhead >= 4 && !memcmp(head, "GGUF", 4);
}

struct tinfo {
	char *name;
	uint32_t ndim, type;
	uint64_t ne[GGUF_MAX_DIMS];
	uint64_t off, len;
};

static int cmp_name(const void *a, const void *b)
{
	const struct tinfo *x = *(const struct tinfo *const *)a, *y = *(const struct tinfo *const *)b;
	return strcmp(x->name, y->name);
}

static uint32_t plain_dtype(uint32_t t)
{
	switch (t) {
	case 0: return CONV_DT_F32;
	case 1: return CONV_DT_F16;
	case 24: return CONV_DT_I8;
	case 25: return CONV_DT_I16;
	case 26: return CONV_DT_I32;
	case 27: return CONV_DT_I64;
	case 28: return CONV_DT_F64;
	case 30: return CONV_DT_BF16;
	default: return CONV_DT_GGML + t;
	}
}

static int gguf_parse(int fd, uint64_t size, struct conv_info *ci)
{
	struct gguf_cur c;
	struct tinfo *ti = NULL;
	struct tinfo **sorted = NULL;
	uint64_t nt = 0, nkv, i;
	uint32_t version, align = GGUF_DEFAULT_ALIGN;
	uint8_t magic[4];
	int rc = gguf_cur_init(&c, fd, NULL, 0, size, "gguf");
	if (rc)
		return rc;
	ci->format = "gguf";
	if ((rc = gguf_get(&c, magic, 4)) || (rc = gguf_get_u32(&c, &version)))
		goto out;
	if (memcmp(magic, "GGUF", 4)) {
		rc = md_fail(MD_ECORRUPT, "gguf: bad magic");
		goto out;
	}
	if (version != 2 && version != 3) {
		/* a big-endian file reads as a huge version */
		rc = md_fail(MD_EREFUSED, "refused: GGUF version %u (only 2 and 3%s)", version,
			     version > 0xffff ? "; big-endian GGUF is not supported" : "");
		goto out;
	}
	if ((rc = gguf_get_u64(&c, &nt)) || (rc = gguf_get_u64(&c, &nkv)))
		goto out;
	if (nt > CONV_MAX_TENSORS) {
		rc = md_fail(MD_ETOOBIG, "gguf: %llu tensors (at most %d)", (unsigned long long)nt,
			     CONV_MAX_TENSORS);
		goto out;
	}
	/* each tensor info needs at least 8 + 4 + 8 + 4 + 8 bytes */
	if (nt > size / 32) {
		rc = md_fail(MD_ECORRUPT, "gguf: %llu tensors cannot fit in %llu bytes",
			     (unsigned long long)nt, (unsigned long long)size);
		goto out;
	}
	if (nkv > size / 12) {
		rc = md_fail(MD_ECORRUPT, "gguf: %llu metadata records cannot fit in %llu bytes",
			     (unsigned long long)nkv, (unsigned long long)size);
		goto out;
	}
	if ((rc = gguf_meta_read(&c, nkv, &ci->meta)))
		goto out;
	json_t *al = json_object_get(ci->meta, "general.alignment");
	if (al) {
		const char *ty = json_string_value(json_object_get(al, "type"));
		json_t *v = json_object_get(al, "value");
		if (!ty || strcmp(ty, "u32") || !json_is_integer(v)) {
			rc = md_fail(MD_ECORRUPT, "gguf: general.alignment is not a u32");
			goto out;
		}
		json_int_t a = json_integer_value(v);
		if (a <= 0 || (a & (a - 1))) {
			rc = md_fail(MD_ECORRUPT, "gguf: general.alignment %lld is not a power of two",
				     (long long)a);
			goto out;
		}
		align = (uint32_t)a;
	}
	if (nt && !(ti = calloc(nt, sizeof *ti))) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (i = 0; i < nt; i++) {
		struct tinfo *t = &ti[i];
		uint64_t nl;
		if ((rc = gguf_get_str(&c, GGUF_MAX_NAME, &t->name, &nl)))
			goto out;
		if (nl == 0) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %llu has an empty name",
				     (unsigned long long)i);
			goto out;
		}
		if ((rc = gguf_get_u32(&c, &t->ndim)))
			goto out;
		if (t->ndim > GGUF_MAX_DIMS) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: %u dimensions (at most %d)",
				     t->name, t->ndim, GGUF_MAX_DIMS);
			goto out;
		}
		for (uint32_t d = 0; d < t->ndim; d++) {
			if ((rc = gguf_get_u64(&c, &t->ne[d])))
				goto out;
			if (t->ne[d] > INT64_MAX) {
				rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: negative dimension", t->name);
				goto out;
			}
		}
		if ((rc = gguf_get_u32(&c, &t->type)) || (rc = gguf_get_u64(&c, &t->off)))
			goto out;
		uint32_t blck;
		if (!conv_ggml_type(t->type, &blck, NULL, NULL)) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: unknown or removed type %u",
				     t->name, t->type);
			goto out;
		}
		/* llama.cpp: element count within INT64_MAX */
		uint64_t ne = 1;
		for (uint32_t d = 0; d < t->ndim; d++)
			if (__builtin_mul_overflow(ne, t->ne[d], &ne) || ne > INT64_MAX) {
				rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: element count overflows",
					     t->name);
				goto out;
			}
		uint64_t shape[GGUF_MAX_DIMS];
		for (uint32_t d = 0; d < t->ndim; d++)
			shape[d] = t->ne[t->ndim - 1 - d];
		if ((rc = conv_tensor_nbytes(CONV_DT_GGML + t->type, t->ndim, shape, &t->len))) {
			md_fail_prefix(rc, t->name);
			rc = md_fail_prefix(rc, "gguf: tensor");
			goto out;
		}
	}
	/* duplicate names */
	if (nt) {
		if (!(sorted = malloc(nt * sizeof *sorted))) {
			rc = MD_ENOMEM;
			goto out;
		}
		for (i = 0; i < nt; i++)
			sorted[i] = &ti[i];
		qsort(sorted, nt, sizeof *sorted, cmp_name);
		for (i = 1; i < nt; i++)
			if (!strcmp(sorted[i - 1]->name, sorted[i]->name)) {
				rc = md_fail(MD_ECORRUPT, "gguf: duplicate tensor name %s", sorted[i]->name);
				goto out;
			}
	}
	uint64_t info_end = c.pos, data_start, running = 0;
	if (__builtin_add_overflow(info_end, (uint64_t)align - 1, &data_start)) {
		rc = md_fail(MD_ECORRUPT, "gguf: data offset overflows");
		goto out;
	}
	data_start &= ~(uint64_t)(align - 1);
	for (i = 0; i < nt; i++) {
		struct tinfo *t = &ti[i];
		if (t->off != running) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: offset %llu, expected %llu "
				     "(running sum of sizes padded to %u)", t->name,
				     (unsigned long long)t->off, (unsigned long long)running, align);
			goto out;
		}
		uint64_t end, padded;
		if (__builtin_add_overflow(data_start, t->off, &end) ||
		    __builtin_add_overflow(end, t->len, &end) ||
		    __builtin_add_overflow(t->len, (uint64_t)align - 1, &padded) ||
		    __builtin_add_overflow(running, padded & ~(uint64_t)(align - 1), &running)) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: size overflows", t->name);
			goto out;
		}
		if (end > size) {
			rc = md_fail(MD_ECORRUPT, "gguf: tensor %s: data [%llu, %llu) past the end of "
				     "the file (%llu bytes)", t->name,
				     (unsigned long long)(data_start + t->off),
				     (unsigned long long)end, (unsigned long long)size);
			goto out;
		}
	}
	uint64_t max_end = nt ? data_start + running : data_start;
	if (size > max_end) {
		rc = md_fail(MD_ECORRUPT, "gguf: %llu trailing bytes after the tensor data",
			     (unsigned long long)(size - max_end));
		goto out;
	}
	for (i = 0; i < nt; i++) {
		struct tinfo *t = &ti[i];
		uint64_t shape[GGUF_MAX_DIMS];
		for (uint32_t d = 0; d < t->ndim; d++)
			shape[d] = t->ne[t->ndim - 1 - d];
		if ((rc = conv_info_add(ci, t->name, plain_dtype(t->type), t->ndim, shape,
					data_start + t->off, t->len)))
			goto out;
	}
out:
	if (ti)
		for (i = 0; i < nt; i++)
			free(ti[i].name);
	free(ti);
	free(sorted);
	gguf_cur_free(&c);
	return rc;
}

const struct converter conv_gguf = {
	.name = "gguf",
	.match = gguf_match,
	.parse = gguf_parse,
};
