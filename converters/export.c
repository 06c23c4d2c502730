/* converters/export.c — pack -> safetensors / GGUF; see export.h. */
#include "converters/export.h"
#include "converters/gguf.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define COPY_BUF (1u << 20)
#define GGUF_ALIGN 32u

static int copy_range(int in, uint64_t off, uint64_t n, int out)
{
	off_t o = (off_t)off;
	while (n) {
		size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t w = sendfile(out, in, &o, want);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EINVAL || errno == ENOSYS))
			break;
		if (w < 0)
			return md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "export: %s",
				       strerror(errno));
		if (w == 0)
			return md_fail(MD_ECORRUPT, "export: pack shorter than its table");
		n -= (uint64_t)w;
	}
	if (!n)
		return 0;
	uint8_t *buf = malloc(COPY_BUF);
	if (!buf)
		return MD_ENOMEM;
	int rc = 0;
	while (n && !rc) {
		size_t k = n > COPY_BUF ? COPY_BUF : (size_t)n;
		ssize_t g = util_pread_full(in, buf, k, o);
		if (g != (ssize_t)k)
			rc = md_fail(g < 0 ? MD_EIO : MD_ECORRUPT, "export: short read from the pack");
		else if (!(rc = util_write_all(out, buf, k))) {
			n -= k;
			o += (off_t)k;
		}
	}
	free(buf);
	return rc;
}

int export_safetensors(const struct pack *p, const int *pack_fds, int out_fd)
{
	json_t *root = json_object(), *md = NULL;
	char *hdr = NULL;
	int rc = 0;
	if (!root)
		return MD_ENOMEM;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)pack_meta(p), k, v) {
		if (!json_is_string(v))
			continue;
		if (!md && !(md = json_object())) {
			rc = MD_ENOMEM;
			goto out;
		}
		if (json_object_set(md, k, v)) {
			rc = MD_ENOMEM;
			goto out;
		}
	}
	if (md && json_object_set_new(root, "__metadata__", md)) {
		md = NULL;
		rc = MD_ENOMEM;
		goto out;
	}
	md = NULL;
	uint64_t pos = 0;
	for (size_t i = 0; i < pack_count(p); i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		const char *dn = t->dtype < CONV_DT_GGML ? conv_dtype_name(t->dtype) : NULL;
		if (!strcmp(t->name, "__metadata__")) {
			rc = md_fail(MD_EUNSUP, "export: a tensor named __metadata__ has no "
				     "safetensors form");
			goto out;
		}
		if (!dn) {
			rc = md_fail(MD_EUNSUP, "export: tensor %s: dtype %s has no safetensors form",
				     t->name, conv_dtype_str(t->dtype));
			goto out;
		}
		json_t *shape = json_array();
		for (uint32_t d = 0; shape && d < t->ndim; d++)
			if (json_array_append_new(shape, json_integer((json_int_t)t->shape[d])))
				json_decref(shape), shape = NULL;
		json_t *e = shape ? json_pack("{s:s,s:o,s:[I,I]}", "dtype", dn, "shape", shape,
					      "data_offsets", (json_int_t)pos,
					      (json_int_t)(pos + t->length)) : NULL;
		if (!e || json_object_set_new(root, t->name, e)) {
			rc = MD_ENOMEM;
			goto out;
		}
		pos += t->length;
	}
	if (!(hdr = json_dumps(root, JSON_COMPACT))) {
		rc = MD_ENOMEM;
		goto out;
	}
	size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
	char *h2 = realloc(hdr, padded + 8);
	if (!h2) {
		rc = MD_ENOMEM;
		goto out;
	}
	hdr = h2;
	memmove(hdr + 8, hdr, hl);
	memset(hdr + 8 + hl, ' ', padded - hl);
	for (int i = 0; i < 8; i++)
		hdr[i] = (char)((uint64_t)padded >> (8 * i));
	if ((rc = util_write_all(out_fd, hdr, padded + 8)))
		goto out;
	for (size_t i = 0; i < pack_count(p) && !rc; i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		rc = copy_range(pack_fds[t->ref], t->offset, t->length, out_fd);
	}
out:
	free(hdr);
	json_decref(md);
	json_decref(root);
	return rc;
}

static int gguf_type_of(uint32_t dt, uint32_t *t)
{
	switch (dt) {
	case CONV_DT_F32: *t = 0; return 0;
	case CONV_DT_F16: *t = 1; return 0;
	case CONV_DT_I8: *t = 24; return 0;
	case CONV_DT_I16: *t = 25; return 0;
	case CONV_DT_I32: *t = 26; return 0;
	case CONV_DT_I64: *t = 27; return 0;
	case CONV_DT_F64: *t = 28; return 0;
	case CONV_DT_BF16: *t = 30; return 0;
	default:
		if (dt >= CONV_DT_GGML && conv_dtype_known(dt)) {
			*t = dt - CONV_DT_GGML;
			return 0;
		}
		return -1;
	}
}

struct wbuf {
	uint8_t *p;
	size_t n, cap;
	int err;
};

static void wput(struct wbuf *b, const void *d, size_t n)
{
	if (b->err || n == 0)
		return;
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

static void wle(struct wbuf *b, uint64_t v, unsigned size)
{
	uint8_t x[8];
	for (unsigned i = 0; i < size; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	wput(b, x, size);
}

/* The pack's general.alignment when it is a u32 power of two (a GGUF
 * original's: kept, so the export has its key/values and its layout), else
 * 0: the key is left out and the GGUF default 32 applies. */
static uint32_t meta_alignment(const json_t *meta)
{
	json_t *al = json_object_get(meta, "general.alignment");
	const char *ty = json_string_value(json_object_get(al, "type"));
	json_t *v = json_object_get(al, "value");
	if (!ty || strcmp(ty, "u32") || !json_is_integer(v))
		return 0;
	json_int_t a = json_integer_value(v);
	return a > 0 && a <= UINT32_MAX && !(a & (a - 1)) ? (uint32_t)a : 0;
}

static int write_zeros(int fd, uint64_t n)
{
	static const uint8_t z[4096];
	int rc = 0;
	while (n && !rc) {
		size_t k = n > sizeof z ? sizeof z : (size_t)n;
		rc = util_write_all(fd, z, k);
		n -= k;
	}
	return rc;
}

int export_gguf(const struct pack *p, const int *pack_fds, int out_fd)
{
	struct wbuf b = { 0 };
	uint8_t *kv = NULL;
	size_t kvlen;
	uint64_t kvcount;
	uint32_t kept = meta_alignment(pack_meta(p));
	uint64_t align = kept ? kept : GGUF_ALIGN;
	int rc = gguf_meta_encode(pack_meta(p), kept ? NULL : "general.alignment", &kv, &kvlen,
				  &kvcount);
	if (rc)
		return md_fail_prefix(rc, "export");
	wput(&b, "GGUF", 4);
	wle(&b, 3, 4);
	wle(&b, pack_count(p), 8);
	wle(&b, kvcount, 8);
	wput(&b, kv, kvlen);
	free(kv);
	uint64_t pos = 0;
	for (size_t i = 0; i < pack_count(p); i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		uint32_t ty;
		size_t nl = strlen(t->name);
		if (gguf_type_of(t->dtype, &ty)) {
			rc = md_fail(MD_EUNSUP, "export: tensor %s: dtype %s has no GGUF type", t->name,
				     conv_dtype_str(t->dtype));
			goto out;
		}
		if (nl >= 64 || t->ndim > 4) {
			rc = md_fail(MD_EUNSUP, "export: tensor %s: name of 64 bytes or more, or more "
				     "than 4 dimensions (GGUF limits)", t->name);
			goto out;
		}
		/* llama.cpp's gguf_init divides INT64_MAX by ne[1], ne[2] and
		 * ne[3] (all but the innermost row-major dimension): a zero there
		 * crashes it. */
		for (uint32_t d = 0; d + 1 < t->ndim; d++)
			if (!t->shape[d]) {
				char sh[8 * 21 + 1];
				size_t k = 0;
				for (uint32_t j = 0; j < t->ndim; j++)
					k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%llu", j ? "," : "",
							      (unsigned long long)t->shape[j]);
				rc = md_fail(MD_EUNSUP, "export: tensor %s: shape (%s) has a zero "
					     "dimension other than the innermost, which GGUF readers "
					     "cannot load", t->name, sh);
				goto out;
			}
		wle(&b, nl, 8);
		wput(&b, t->name, nl);
		uint32_t nd = t->ndim ? t->ndim : 1;
		wle(&b, nd, 4);
		if (!t->ndim)
			wle(&b, 1, 8);
		for (uint32_t d = 0; d < t->ndim; d++)
			wle(&b, t->shape[t->ndim - 1 - d], 8);
		wle(&b, ty, 4);
		wle(&b, pos, 8);
		pos += (t->length + align - 1) & ~(align - 1);
	}
	if ((rc = b.err))
		goto out;
	if ((rc = util_write_all(out_fd, b.p, b.n)) ||
	    (rc = write_zeros(out_fd, (align - b.n % align) % align)))
		goto out;
	for (size_t i = 0; i < pack_count(p) && !rc; i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		rc = copy_range(pack_fds[t->ref], t->offset, t->length, out_fd);
		if (!rc)
			rc = write_zeros(out_fd, (align - t->length % align) % align);
	}
out:
	free(b.p);
	return rc;
}
