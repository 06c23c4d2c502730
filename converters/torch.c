/*
 * converters/torch.c — PyTorch checkpoints written by torch.save: the zip
 * format (<root>/data.pkl, <root>/data/<key>, <root>/byteorder,
 * <root>/version; any root folder name) and the legacy non-zip format (magic
 * pickle, protocol pickle, sys_info pickle, data pickle, storage key list,
 * then each storage as an 8-byte little-endian element count + raw bytes).
 *
 * Detection (match) is by content first, whatever the file's name, since
 * torch.load reads any name: a zip one of whose local headers in the first
 * CONV_HEAD_BYTES names <root>/data.pkl, <root>/version, <root>/.data/version
 * or <root>/byteorder; the pickle of the legacy magic number (protocol 0 to
 * 5) at the start; a tar whose first member is sys_info, pickle, storages or
 * tensors (torch < 0.4, refused). By name (.bin, .pt, .pth, .ckpt): any zip,
 * 7z, tar or pickle, so that it is checked or refused, never stored plain.
 *
 * The pickles go through converters/pickle.c, which executes nothing. The
 * resulting tree is flattened: dicts (nested state_dicts, {"model": sd,
 * "optimizer": ...}) join keys with '.', lists and tuples use the index;
 * str, int and bool keys name entries; entries under other keys (and sets)
 * are skipped, unless a tensor is among them (key or value): refused naming
 * the key's type ("state_dict key is a tuple, not a string"), never dropped.
 * Non-tensor leaves are ignored (they stay in the recipe's literals). A
 * tensor at the root is named "tensor".
 *
 * Per tensor: dtype from its storage (or the v3 dtype), shape; row-major
 * strides (dimensions of size 1 excepted) give the byte range [storage data
 * + offset * elsize, + numel * elsize); other strides (a transpose, a column
 * slice) give a strided view (conv_tensor.stride) the pack stores gathered,
 * unless its elements overlap (expand: refused naming the tensor). The bytes
 * its elements reach must lie inside its storage. Two row-major tensors with
 * the same range get alias = the earlier one. Refused: big-endian byteorder / sys_info,
 * compressed or encrypted zip entries, a storage key without its data file,
 * a storage whose data file size differs from numel * elsize, one key used
 * with two dtypes or sizes, duplicate tensor names, legacy key lists that
 * disagree with the pickle, trailing bytes after the last legacy storage.
 * A file this converter matched and cannot convert (also for what is merely
 * unsupported: a dtype, more than CONV_MAX_DIMS dimensions, an expand, a
 * tar-format checkpoint, an unknown version record) fails with MD_EREFUSED
 * or MD_ECORRUPT, never MD_EUNSUP, so that it is not stored unchecked.
 *
 * Caps (untrusted input): data.pkl and the legacy pickle area at most
 * TORCH_MAX_PICKLE bytes, nesting TORCH_MAX_DEPTH, min(TORCH_MAX_VISITS, 4 x
 * pickle objects + 1024) entries visited while flattening, names at most CONV_MAX_NAME bytes.
 */
#include "converters/converter.h"
#include "converters/pickle.h"
#include "converters/zipread.h"
#include "common/err.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TORCH_MAX_PICKLE ((uint64_t)256 << 20)
#define TORCH_MAX_DEPTH 64
#define TORCH_MAX_VISITS (1u << 24)
#define TORCH_MAX_SMALL 64 /* bytes in the version / byteorder records */

static const uint8_t legacy_magic[] = { 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
					0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e };

/* 1 if h starts with the pickle of torch's legacy magic number
 * 0x1950a86a20f9469cfc6c (its STOP included): protocol 2 to 5 (PROTO, at 4
 * and 5 a FRAME, LONG1) or protocol 0 and 1 (the LONG text opcode). Sets
 * *len to its length. */
static int legacy_magic_pickle(const uint8_t *h, size_t n, size_t *len)
{
	static const char text[] = "L119547037146038801333356L\n.";
	size_t p = 2;
	if (n >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5) {
		if (h[1] >= 4 && n >= p + 9 && h[p] == 0x95)
			p += 9; /* FRAME and its 8-byte length */
		if (n - p < sizeof legacy_magic || memcmp(h + p, legacy_magic, sizeof legacy_magic))
			return 0;
		*len = p + sizeof legacy_magic;
		return 1;
	}
	if (n >= sizeof text - 1 && !memcmp(h, text, sizeof text - 1)) {
		*len = sizeof text - 1;
		return 1;
	}
	return 0;
}

/* A tensor found while flattening: its name and its PK_TENSOR object. */
struct found {
	char *name;
	uint32_t obj;
};

struct flat {
	const struct pk_doc *d;
	struct found *f;
	size_t nf, capf;
	char **names;       /* every dict entry and tensor name, for duplicates */
	size_t nn, capn;
	size_t visits, max_visits;
	char buf[CONV_MAX_NAME + 1];
};

/* Where a storage's bytes are, resolved from its key by the format. */
struct store_ref {
	uint64_t off, nbytes; /* data range in the file */
	size_t slot;          /* index for the consistency table */
};

struct slot {
	int used;
	uint32_t dtype;
	uint64_t numel;
};

static int valid_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static int add_name(struct flat *fl, char **out)
{
	if (fl->nn == fl->capn) {
		size_t nc = fl->capn ? fl->capn * 2 : 256;
		char **nn = realloc(fl->names, nc * sizeof *nn);
		if (!nn)
			return MD_ENOMEM;
		fl->names = nn;
		fl->capn = nc;
	}
	char *s = strdup(fl->buf);
	if (!s)
		return MD_ENOMEM;
	fl->names[fl->nn++] = s;
	if (out)
		*out = s;
	return 0;
}

static int add_tensor(struct flat *fl, uint32_t obj)
{
	if (fl->nf >= CONV_MAX_TENSORS)
		return md_fail(MD_ETOOBIG, "more than %d tensors", CONV_MAX_TENSORS);
	if (fl->nf == fl->capf) {
		size_t nc = fl->capf ? fl->capf * 2 : 256;
		struct found *nf = realloc(fl->f, nc * sizeof *nf);
		if (!nf)
			return MD_ENOMEM;
		fl->f = nf;
		fl->capf = nc;
	}
	char *name;
	int rc = add_name(fl, &name);
	if (rc)
		return rc;
	fl->f[fl->nf].name = name;
	fl->f[fl->nf].obj = obj;
	fl->nf++;
	return 0;
}

/* Append ".part" (or "part" at the root) to the name in fl->buf. */
static int push_part(struct flat *fl, size_t len, const char *part, size_t plen, size_t *newlen)
{
	size_t need = len + (len ? 1 : 0) + plen;
	if (need > CONV_MAX_NAME)
		return md_fail(MD_ETOOBIG, "tensor name longer than %d bytes under '%.64s'", CONV_MAX_NAME, fl->buf);
	if (len)
		fl->buf[len++] = '.';
	memcpy(fl->buf + len, part, plen);
	fl->buf[len + plen] = 0;
	*newlen = len + plen;
	return 0;
}

static int walk(struct flat *fl, struct pk_val v, size_t len, int depth);

/* *found = 1 if v is or holds a tensor (through dicts, keys included,
 * lists, tuples and sets). Visits count against the same cap as walk. */
static int holds_tensor(struct flat *fl, struct pk_val v, int depth, int *found)
{
	if (v.kind == PK_TENSOR) {
		*found = 1;
		return 0;
	}
	if (v.kind != PK_DICT && v.kind != PK_LIST && v.kind != PK_TUPLE && v.kind != PK_SET)
		return 0;
	if (++fl->visits > fl->max_visits)
		return md_fail(MD_ETOOBIG, "checkpoint structure has more than %zu entries (shared containers?)",
			       fl->max_visits);
	if (depth > TORCH_MAX_DEPTH)
		return md_fail(MD_ETOOBIG, "checkpoint nested deeper than %d at '%.64s'", TORCH_MAX_DEPTH, fl->buf);
	const struct pk_obj *o = pk_obj(fl->d, v);
	for (uint32_t i = 0; i < o->n && !*found; i++) {
		int rc = holds_tensor(fl, o->u.v[i], depth + 1, found);
		if (rc)
			return rc;
	}
	return 0;
}

/* Refuse what would drop a tensor: a tensor under a key that cannot name
 * it, or in a set. what names the container ("state_dict key is a tuple,
 * not a string"). */
static int refuse_if_tensor(struct flat *fl, struct pk_val a, struct pk_val b, size_t len, int depth,
			    const char *what)
{
	int found = 0, rc = holds_tensor(fl, a, depth, &found);
	if (!rc && !found && b.kind != PK_NONE)
		rc = holds_tensor(fl, b, depth, &found);
	if (rc || !found)
		return rc;
	fl->buf[len] = 0;
	return md_fail(MD_EREFUSED, "refused: %s%s%.64s%s", what, len ? " (in '" : "", fl->buf,
		       len ? "')" : "");
}

static int walk_child(struct flat *fl, struct pk_val key, struct pk_val v, size_t len, int depth, int dict)
{
	char num[32];
	const char *part;
	if (!dict && v.kind != PK_TENSOR && v.kind != PK_DICT && v.kind != PK_LIST && v.kind != PK_TUPLE &&
	    v.kind != PK_SET)
		return 0; /* list element that is a plain leaf */
	size_t plen;
	if (key.kind == PK_STR || key.kind == PK_BYTES) {
		const struct pk_obj *ko = pk_obj(fl->d, key);
		if (!valid_utf8(ko->u.s, ko->n)) {
			fl->buf[len] = 0;
			return md_fail(MD_EREFUSED, "refused: key under '%.64s' is not valid UTF-8 or has a NUL",
				       fl->buf);
		}
		for (uint32_t i = 0; i < ko->n; i++)
			if (ko->u.s[i] < 0x20 || ko->u.s[i] == 0x7f) {
				fl->buf[len] = 0;
				return md_fail(MD_EREFUSED, "refused: key under '%.64s' has a control character",
					       fl->buf);
			}
		part = (const char *)ko->u.s;
		plen = ko->n;
	} else if (key.kind == PK_INT || key.kind == PK_BOOL) {
		plen = (size_t)snprintf(num, sizeof num, "%lld", (long long)key.i);
		part = num;
	} else {
		/* a key that cannot name anything (a tuple, a tensor, None...): its
		 * entry is skipped, unless a tensor would go with it */
		char what[80];
		snprintf(what, sizeof what, "state_dict key is %s%s, not a string",
			 key.kind == PK_NONE ? "" : "a ", pk_kind_name(key.kind));
		return refuse_if_tensor(fl, key, v, len, depth, what);
	}
	size_t nl = 0;
	int rc = push_part(fl, len, part, plen, &nl);
	if (rc)
		return rc;
	if (dict && v.kind != PK_TENSOR && (rc = add_name(fl, NULL)))
		return rc;
	return walk(fl, v, nl, depth + 1);
}

static int walk(struct flat *fl, struct pk_val v, size_t len, int depth)
{
	if (v.kind == PK_SET)   /* members have no names */
		return refuse_if_tensor(fl, v, (struct pk_val){ .kind = PK_NONE }, len, depth,
					"a tensor in a set");
	if (v.kind != PK_TENSOR && v.kind != PK_DICT && v.kind != PK_LIST && v.kind != PK_TUPLE)
		return 0; /* non-tensor leaf */
	if (++fl->visits > fl->max_visits)
		return md_fail(MD_ETOOBIG, "checkpoint structure has more than %zu entries (shared containers?)",
			       fl->max_visits);
	if (depth > TORCH_MAX_DEPTH)
		return md_fail(MD_ETOOBIG, "checkpoint nested deeper than %d at '%.64s'", TORCH_MAX_DEPTH, fl->buf);
	fl->buf[len] = 0;
	int rc;
	switch (v.kind) {
	case PK_TENSOR:
		if (!len) {
			memcpy(fl->buf, "tensor", 7);
		}
		return add_tensor(fl, v.ref);
	case PK_DICT: {
		const struct pk_obj *o = pk_obj(fl->d, v);
		for (uint32_t i = 0; i + 1 < o->n; i += 2)
			if ((rc = walk_child(fl, o->u.v[i], o->u.v[i + 1], len, depth, 1)))
				return rc;
		return 0;
	}
	case PK_LIST:
	case PK_TUPLE: {
		const struct pk_obj *o = pk_obj(fl->d, v);
		for (uint32_t i = 0; i < o->n; i++) {
			struct pk_val k = { .kind = PK_INT, .i = i };
			if ((rc = walk_child(fl, k, o->u.v[i], len, depth, 0)))
				return rc;
		}
		return 0;
	}
	default:
		return 0; /* non-tensor leaf */
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void flat_free(struct flat *fl)
{
	for (size_t i = 0; i < fl->nn; i++)
		free(fl->names[i]);
	free(fl->names);
	free(fl->f);
}

static int flatten(const struct pk_doc *d, struct flat *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->d = d;
	/* Each object is visited once unless containers are shared; a DAG of
	 * shared dicts could otherwise make 2^depth paths. */
	fl->max_visits = d->nobj < (TORCH_MAX_VISITS - 1024) / 4 ? 4 * d->nobj + 1024 : TORCH_MAX_VISITS;
	int rc = walk(fl, d->root, 0, 0);
	if (rc)
		return rc;
	if (fl->nn > 1) {
		char **sorted = malloc(fl->nn * sizeof *sorted);
		if (!sorted)
			return MD_ENOMEM;
		memcpy(sorted, fl->names, fl->nn * sizeof *sorted);
		qsort(sorted, fl->nn, sizeof *sorted, cmp_str);
		for (size_t i = 1; i < fl->nn; i++)
			if (!strcmp(sorted[i], sorted[i - 1])) {
				rc = md_fail(MD_EREFUSED, "refused: duplicate name '%.200s'", sorted[i]);
				break;
			}
		free(sorted);
	}
	return rc;
}

typedef int (*resolve_fn)(void *ctx, const struct pk_storage *st, struct store_ref *out);

static int dt_bytes(uint32_t dt)
{
	unsigned b = conv_dtype_bits(dt);
	return b % 8 ? 0 : (int)(b / 8);
}

/* Range of one tensor; adds it to ci. */
static int place(struct conv_info *ci, const struct pk_doc *d, const struct found *f, resolve_fn resolve,
		 void *ctx, struct slot *slots)
{
	const struct pk_tensor *t = d->obj[f->obj].u.t;
	const struct pk_storage *st = d->obj[t->storage].u.st;
	char key[300];
	snprintf(key, sizeof key, "%.*s", (int)st->keylen, (const char *)st->key);
	int tsz = dt_bytes(t->dtype), ssz = dt_bytes(st->dtype);
	if (!tsz || !ssz)
		return md_fail(MD_EREFUSED, "refused: %s: unsupported dtype", f->name);
	struct store_ref r;
	int rc = resolve(ctx, st, &r);
	if (rc)
		return rc;
	struct slot *s = &slots[r.slot];
	if (s->used && (s->dtype != st->dtype || s->numel != st->numel))
		return md_fail(MD_EREFUSED, "refused: storage '%s' declared with two dtypes or sizes", key);
	s->used = 1;
	s->dtype = st->dtype;
	s->numel = st->numel;
	if (st->numel > UINT64_MAX / (uint64_t)ssz || st->numel * (uint64_t)ssz != r.nbytes)
		return md_fail(MD_ECORRUPT, "storage '%s': %llu bytes of data, the pickle says %llu elements of %d bytes",
			       key, (unsigned long long)r.nbytes, (unsigned long long)st->numel, ssz);
	uint64_t base = r.off, avail = r.nbytes;
	if (st->has_view) {
		if (st->view_off > st->numel || st->view_numel > st->numel - st->view_off)
			return md_fail(MD_ECORRUPT, "storage '%s': view outside its storage", key);
		base += st->view_off * (uint64_t)ssz;
		avail = st->view_numel * (uint64_t)ssz;
	}
	uint64_t numel = 1;
	for (uint32_t i = 0; i < t->ndim; i++) {
		if (t->shape[i] && numel > UINT64_MAX / t->shape[i])
			return md_fail(MD_ECORRUPT, "%s: shape product overflows", f->name);
		numel *= t->shape[i];
	}
	uint64_t off = 0, len = 0, span = 0;
	int strided = 0;
	if (numel) {
		uint64_t expect = 1;
		for (uint32_t i = t->ndim; i-- > 0;) {
			if (t->shape[i] != 1 && t->stride[i] != expect)
				strided = 1;
			expect *= t->shape[i]; /* <= numel, no overflow */
		}
		if (numel > UINT64_MAX / (uint64_t)tsz || t->offset > UINT64_MAX / (uint64_t)tsz)
			return md_fail(MD_ECORRUPT, "%s: size overflows", f->name);
		off = t->offset * (uint64_t)tsz;
		len = span = numel * (uint64_t)tsz;
		/* a non-contiguous view (a transpose, a column slice) is stored
		 * gathered; one whose elements overlap (expand) is refused */
		if (strided && (rc = conv_strided_span(t->ndim, t->shape, t->stride,
						       (uint64_t)tsz, &span))) {
			char sh[200] = "", sd[200] = "";
			size_t a = 0, b = 0;
			for (uint32_t j = 0; j < t->ndim; j++) {
				a += (size_t)snprintf(sh + a, sizeof sh - a, "%s%llu", j ? "," : "",
						      (unsigned long long)t->shape[j]);
				b += (size_t)snprintf(sd + b, sizeof sd - b, "%s%llu", j ? "," : "",
						      (unsigned long long)t->stride[j]);
			}
			if (rc == MD_EUNSUP)   /* an expand: torch.load gives what we cannot store */
				return md_fail(MD_EREFUSED, "refused: %s: non-contiguous tensor (shape (%s), "
					       "stride (%s)) whose elements overlap; save it with "
					       ".contiguous()", f->name, sh, sd);
			return md_fail(rc, "%s: non-contiguous tensor (shape (%s), stride (%s)) whose "
				       "strides overflow", f->name, sh, sd);
		}
		if (off > avail || span > avail - off)
			return md_fail(MD_ECORRUPT, "%s: bytes [%llu, +%llu) outside storage '%s' of %llu bytes", f->name,
				       (unsigned long long)off, (unsigned long long)span, key,
				       (unsigned long long)avail);
	}
	if (strided)
		return conv_info_add_strided(ci, f->name, t->dtype, t->ndim, t->shape, t->stride,
					     base + off, len);
	return conv_info_add(ci, f->name, t->dtype, t->ndim, t->shape, base + off, len);
}

static int cmp_range(const void *a, const void *b, void *arg)
{
	const struct conv_tensor *t = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	if (t[x].src_off != t[y].src_off)
		return t[x].src_off < t[y].src_off ? -1 : 1;
	if (t[x].len != t[y].len)
		return t[x].len < t[y].len ? -1 : 1;
	if (!t[x].stride != !t[y].stride)   /* row-major ones next to each other */
		return t[x].stride ? 1 : -1;
	return x < y ? -1 : x > y;
}

static int set_aliases(struct conv_info *ci)
{
	if (ci->n < 2)
		return 0;
	size_t *ix = malloc(ci->n * sizeof *ix);
	if (!ix)
		return MD_ENOMEM;
	for (size_t i = 0; i < ci->n; i++)
		ix[i] = i;
	qsort_r(ix, ci->n, sizeof *ix, cmp_range, ci->t);
	for (size_t i = 1; i < ci->n; i++) {
		struct conv_tensor *a = &ci->t[ix[i - 1]], *b = &ci->t[ix[i]];
		/* strided views hold other bytes than the range they start at */
		if (b->len && a->src_off == b->src_off && a->len == b->len && !a->stride && !b->stride)
			b->alias = a->alias >= 0 ? a->alias : (int64_t)ix[i - 1];
	}
	free(ix);
	return 0;
}

/* Flatten d and place every tensor. */
static int emit(const struct pk_doc *d, resolve_fn resolve, void *ctx, size_t nslots, struct conv_info *out)
{
	struct flat fl;
	int rc = flatten(d, &fl);
	struct slot *slots = calloc(nslots ? nslots : 1, sizeof *slots);
	if (!rc && !slots)
		rc = MD_ENOMEM;
	for (size_t i = 0; !rc && i < fl.nf; i++)
		rc = place(out, d, &fl.f[i], resolve, ctx, slots);
	if (!rc)
		rc = set_aliases(out);
	free(slots);
	flat_free(&fl);
	return rc;
}

/* ---- zip format ---- */

struct zctx {
	const struct zip_archive *za;
	const char *root;
	size_t rootlen;
};

static int zip_resolve(void *ctx, const struct pk_storage *st, struct store_ref *out)
{
	struct zctx *z = ctx;
	char name[ZIP_MAX_NAME + 300];
	if (memchr(st->key, 0, st->keylen))
		return md_fail(MD_EREFUSED, "refused: storage key with a NUL");
	snprintf(name, sizeof name, "%.*s/data/%.*s", (int)z->rootlen, z->root, (int)st->keylen,
		 (const char *)st->key);
	const struct zip_entry *e = zip_find(z->za, name);
	if (!e)
		return md_fail(MD_ECORRUPT, "storage '%.*s' has no data file (%s)", (int)st->keylen,
			       (const char *)st->key, name);
	out->off = e->data_off;
	out->nbytes = e->size;
	out->slot = (size_t)(e - z->za->e);
	return 0;
}

/* Read a small text record (version, byteorder) if present: 1 if read. */
static int small_record(int fd, const struct zip_archive *za, const char *root, size_t rl, const char *rel,
			char *out)
{
	char name[ZIP_MAX_NAME + 32];
	snprintf(name, sizeof name, "%.*s/%s", (int)rl, root, rel);
	const struct zip_entry *e = zip_find(za, name);
	if (!e)
		return 0;
	uint8_t *b;
	int rc = zip_read(fd, e, TORCH_MAX_SMALL, &b);
	if (rc)
		return rc;
	memcpy(out, b, (size_t)e->size + 1);
	free(b);
	return 1;
}

static int parse_zip(int fd, uint64_t size, struct conv_info *out)
{
	struct zip_archive za;
	int rc = zip_open(fd, size, &za);
	if (rc)
		return rc;
	uint8_t *pkl = NULL;
	struct pk_doc doc = { 0 };
	if (!za.n) {
		rc = md_fail(MD_ECORRUPT, "empty zip archive, not a torch checkpoint");
		goto out;
	}
	/* One root folder holds everything; it is not assumed to be "archive". */
	const char *root = za.e[0].name;
	const char *slash = strchr(root, '/');
	if (!slash) {
		rc = md_fail(MD_ECORRUPT, "zip entry %s is not under a root folder: not a torch checkpoint", root);
		goto out;
	}
	size_t rl = (size_t)(slash - root);
	for (size_t i = 1; i < za.n; i++)
		if (strncmp(za.e[i].name, root, rl + 1) != 0) {
			rc = md_fail(MD_ECORRUPT, "zip entries %s and %s are under different root folders",
				     za.e[0].name, za.e[i].name);
			goto out;
		}
	char txt[TORCH_MAX_SMALL + 1];
	rc = small_record(fd, &za, root, rl, "byteorder", txt);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		if (!strcmp(txt, "big")) {
			rc = md_fail(MD_EREFUSED, "refused: big-endian storages are not supported "
				     "(byteorder 'big')");
			goto out;
		}
		if (strcmp(txt, "little")) {
			rc = md_fail(MD_ECORRUPT, "byteorder record is neither 'little' nor 'big'");
			goto out;
		}
	}
	rc = small_record(fd, &za, root, rl, "version", txt);
	if (rc == 0)
		rc = small_record(fd, &za, root, rl, ".data/version", txt);
	if (rc < 0)
		goto out;
	if (rc == 0) {
		rc = md_fail(MD_ECORRUPT, "no %.*s/version record: not a torch checkpoint", (int)rl, root);
		goto out;
	}
	{
		char *end;
		long ver = strtol(txt, &end, 10);
		if (end == txt || (*end && strcmp(end, "\n")) || ver < 1 || ver > 64) {
			char shown[TORCH_MAX_SMALL + 1];
			size_t k = 0;
			for (const char *q = txt; *q && *q != '\n' && k < 16; q++)
				shown[k++] = *q >= 0x20 && *q < 0x7f ? *q : '?';
			shown[k] = 0;
			rc = md_fail(MD_EREFUSED, "refused: torch archive version '%s' (only 1 to 64)",
				     shown);
			goto out;
		}
	}
	char name[ZIP_MAX_NAME + 32];
	snprintf(name, sizeof name, "%.*s/data.pkl", (int)rl, root);
	const struct zip_entry *pe = zip_find(&za, name);
	if (!pe) {
		rc = md_fail(MD_ECORRUPT, "no %s: not a torch checkpoint", name);
		goto out;
	}
	if ((rc = zip_read(fd, pe, TORCH_MAX_PICKLE, &pkl)))
		goto out;
	if ((rc = pk_load(pkl, (size_t)pe->size, &doc)))
		goto out;
	if (doc.used != pe->size) {
		rc = md_fail(MD_ECORRUPT, "data.pkl: %llu bytes after STOP",
			     (unsigned long long)(pe->size - doc.used));
		goto out;
	}
	struct zctx z = { &za, root, rl };
	rc = emit(&doc, zip_resolve, &z, za.n, out);
out:
	pk_free(&doc);
	free(pkl);
	zip_close(&za);
	return rc;
}

/* ---- legacy format ---- */

struct lkey {
	const uint8_t *key;
	uint32_t keylen;
	int es;               /* element size, from the pickle's storages */
	uint64_t numel;
	uint64_t off, nbytes; /* filled once the storage area is walked */
};

struct lctx {
	struct lkey *k;       /* in key-list (= file) order */
	size_t *ix;           /* indexes of k sorted by key */
	size_t n;
};

static int cmp_key(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int ix_cmp(const void *a, const void *b, void *arg)
{
	const struct lkey *k = arg;
	const struct lkey *x = &k[*(const size_t *)a], *y = &k[*(const size_t *)b];
	return cmp_key(x->key, x->keylen, y->key, y->keylen);
}

static struct lkey *lkey_find(struct lctx *l, const uint8_t *key, size_t kl)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct lkey *k = &l->k[l->ix[mid]];
		int c = cmp_key(k->key, k->keylen, key, kl);
		if (!c)
			return k;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

#define KEYFMT(k) (int)((k)->keylen > 64 ? 64 : (k)->keylen), (const char *)(k)->key

static int legacy_resolve(void *ctx, const struct pk_storage *st, struct store_ref *out)
{
	struct lctx *l = ctx;
	struct lkey *k = lkey_find(l, st->key, st->keylen);
	if (!k)
		return md_fail(MD_ECORRUPT, "storage '%.*s' is not in the storage key list", KEYFMT(st));
	out->off = k->off;
	out->nbytes = k->nbytes;
	out->slot = (size_t)(k - l->k);
	return 0;
}

/* Run the five pickles at the start of the file, reading more of it as
 * needed (up to TORCH_MAX_PICKLE). On success *pos is where storages begin. */
static int legacy_pickles(int fd, uint64_t size, uint8_t **bufp, struct pk_doc docs[5], size_t *pos)
{
	uint64_t cap = size < TORCH_MAX_PICKLE ? size : TORCH_MAX_PICKLE;
	uint64_t want = cap < (1u << 20) ? cap : (1u << 20);
	for (;;) {
		uint8_t *nb = realloc(*bufp, want ? (size_t)want : 1);
		if (!nb)
			return MD_ENOMEM;
		*bufp = nb;
		ssize_t got = util_pread_full(fd, nb, (size_t)want, 0);
		if (got < 0 || (uint64_t)got != want)
			return md_fail(MD_EIO, "read error");
		int rc = 0, more = 0;
		*pos = 0;
		for (int i = 0; i < 5; i++)
			pk_free(&docs[i]);
		for (int i = 0; i < 5 && !rc; i++) {
			rc = pk_load(nb + *pos, (size_t)(want - *pos), &docs[i]);
			if (!rc)
				*pos += docs[i].used;
			else
				more = docs[i].used == SIZE_MAX;
		}
		if (!rc || !more)
			return rc;
		if (want == cap)
			return cap == TORCH_MAX_PICKLE ? md_fail(MD_ETOOBIG, "legacy checkpoint pickles longer than %llu bytes",
							       (unsigned long long)TORCH_MAX_PICKLE) : rc;
		want = want * 4 < cap ? want * 4 : cap;
	}
}

static int legacy_check_header(const uint8_t *buf, struct pk_doc docs[5])
{
	/* 0: magic number, 1: protocol version, 2: sys_info, 3: data, 4: keys */
	/* the magic number as torch.save's pickle_protocol (2 by default, 4 and
	 * 5 add a FRAME) pickles it; pk_load then read exactly that pickle */
	size_t ml;
	if (docs[0].root.kind != PK_BIGINT || !legacy_magic_pickle(buf, docs[0].used, &ml) ||
	    ml != docs[0].used)
		return md_fail(MD_ECORRUPT, "legacy checkpoint: bad magic number");
	if (docs[1].root.kind != PK_INT || docs[1].root.i != 1001)
		return md_fail(MD_EREFUSED, "refused: legacy checkpoint: protocol version is not 1001");
	if (docs[2].root.kind != PK_DICT)
		return md_fail(MD_ECORRUPT, "legacy checkpoint: sys_info is not a dict");
	const struct pk_obj *si = pk_obj(&docs[2], docs[2].root);
	for (uint32_t i = 0; i + 1 < si->n; i += 2) {
		struct pk_val k = si->u.v[i], v = si->u.v[i + 1];
		if (k.kind == PK_STR && pk_obj(&docs[2], k)->n == 13 &&
		    !memcmp(pk_obj(&docs[2], k)->u.s, "little_endian", 13) && !(v.kind == PK_BOOL && v.i))
			return md_fail(MD_EREFUSED, "refused: big-endian storages are not supported "
				       "(little_endian False)");
	}
	if (docs[4].root.kind != PK_LIST)
		return md_fail(MD_ECORRUPT, "legacy checkpoint: storage key list is not a list");
	return 0;
}

/* Key list -> l (file order + sorted index); sizes from the data pickle. */
static int legacy_keys(const struct pk_doc docs[5], struct lctx *l)
{
	const struct pk_obj *kl = pk_obj(&docs[4], docs[4].root);
	l->n = kl->n;
	l->k = calloc(l->n ? l->n : 1, sizeof *l->k);
	l->ix = malloc((l->n ? l->n : 1) * sizeof *l->ix);
	if (!l->k || !l->ix)
		return MD_ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		struct pk_val kv = kl->u.v[i];
		if (kv.kind != PK_STR)
			return md_fail(MD_ECORRUPT, "legacy checkpoint: storage key %zu is not a string", i);
		l->k[i].key = pk_obj(&docs[4], kv)->u.s;
		l->k[i].keylen = pk_obj(&docs[4], kv)->n;
		l->ix[i] = i;
	}
	qsort_r(l->ix, l->n, sizeof *l->ix, ix_cmp, l->k);
	for (size_t i = 1; i < l->n; i++)
		if (!ix_cmp(&l->ix[i], &l->ix[i - 1], l->k))
			return md_fail(MD_ECORRUPT, "legacy checkpoint: storage '%.*s' listed twice", KEYFMT(&l->k[l->ix[i]]));
	const struct pk_doc *d = &docs[3];
	for (size_t i = 0; i < d->nobj; i++) {
		if (d->obj[i].kind != PK_STORAGE)
			continue;
		const struct pk_storage *st = d->obj[i].u.st;
		struct lkey *k = lkey_find(l, st->key, st->keylen);
		if (!k)
			continue; /* refused later if a tensor uses it */
		int es = dt_bytes(st->dtype);
		if (!es)
			return md_fail(MD_EREFUSED, "refused: storage '%.*s': unsupported dtype", KEYFMT(k));
		if (k->es && (k->es != es || k->numel != st->numel))
			return md_fail(MD_EREFUSED, "refused: storage '%.*s' declared with two dtypes or sizes", KEYFMT(k));
		k->es = es;
		k->numel = st->numel;
	}
	return 0;
}

/* Walk the storage area in key-list order: count, then bytes, to EOF. */
static int legacy_storages(int fd, uint64_t size, uint64_t at, struct lctx *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct lkey *k = &l->k[i];
		if (!k->es)
			return md_fail(MD_ECORRUPT, "legacy checkpoint: storage '%.*s' is listed but not used", KEYFMT(k));
		uint8_t cnt[8];
		if (size - at < 8 || util_pread_full(fd, cnt, 8, (off_t)at) != 8)
			return md_fail(MD_ECORRUPT, "legacy checkpoint: truncated before storage '%.*s'", KEYFMT(k));
		uint64_t n8 = 0;
		for (int j = 7; j >= 0; j--)
			n8 = n8 << 8 | cnt[j];
		if (n8 != k->numel)
			return md_fail(MD_ECORRUPT, "legacy checkpoint: storage '%.*s' has %llu elements, the pickle says %llu",
				       KEYFMT(k), (unsigned long long)n8, (unsigned long long)k->numel);
		at += 8;
		if (n8 > (size - at) / (uint64_t)k->es)
			return md_fail(MD_ECORRUPT, "legacy checkpoint: storage '%.*s' runs past end of file", KEYFMT(k));
		k->off = at;
		k->nbytes = n8 * (uint64_t)k->es;
		at += k->nbytes;
	}
	if (at != size)
		return md_fail(MD_ECORRUPT, "legacy checkpoint: %llu trailing bytes after the last storage",
			       (unsigned long long)(size - at));
	return 0;
}

static int parse_legacy(int fd, uint64_t size, struct conv_info *out)
{
	uint8_t *buf = NULL;
	struct pk_doc docs[5];
	memset(docs, 0, sizeof docs);
	struct lctx l = { 0 };
	size_t pos = 0;
	int rc = legacy_pickles(fd, size, &buf, docs, &pos);
	if (!rc)
		rc = legacy_check_header(buf, docs);
	if (!rc)
		rc = legacy_keys(docs, &l);
	if (!rc)
		rc = legacy_storages(fd, size, pos, &l);
	if (!rc)
		rc = emit(&docs[3], legacy_resolve, &l, l.n, out);
	for (int i = 0; i < 5; i++)
		pk_free(&docs[i]);
	free(l.k);
	free(l.ix);
	free(buf);
	return rc;
}

/* ---- vtable ---- */

static int has_ext(const char *path)
{
	static const char *const ext[] = { ".bin", ".pt", ".pth", ".ckpt" };
	size_t pl = path ? strlen(path) : 0;
	for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
		size_t el = strlen(ext[i]);
		if (pl > el && !strcasecmp(path + pl - el, ext[i]))
			return 1;
	}
	return 0;
}

static int is_zip(const uint8_t *h, size_t n)
{
	return n >= 4 && h[0] == 'P' && h[1] == 'K' && ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6));
}

static int is_7z(const uint8_t *h, size_t n)
{
	return n >= 6 && !memcmp(h, "7z\xbc\xaf\x27\x1c", 6);
}

/* A POSIX tar ("ustar" at offset 257): torch < 0.4 wrote checkpoints as tars
 * of sys_info, pickle, storages and tensors. */
static int is_tar(const uint8_t *h, size_t n)
{
	return n >= 262 && !memcmp(h + 257, "ustar", 5);
}

static int is_torch_tar(const uint8_t *h, size_t n)
{
	static const char *const first[] = { "sys_info", "pickle", "storages", "tensors" };
	if (!is_tar(h, n))
		return 0;
	for (size_t i = 0; i < sizeof first / sizeof first[0]; i++)
		if (!strncmp((const char *)h, first[i], 100))
			return 1;
	return 0;
}

/* 1 if one of the zip local headers that h[0..n) holds names a record
 * torch.save writes: <root>/data.pkl, <root>/version, <root>/.data/version
 * or <root>/byteorder, whatever the root folder's name (torch.load finds
 * the root the same way). The headers are walked as far as the head and
 * their sizes allow. */
/* 1 if name[0..nl) is <root>/data.pkl, <root>/version, <root>/.data/version
 * or <root>/byteorder for a non-empty root without '/'. */
static int torch_record(const uint8_t *name, size_t nl)
{
	static const char *const recs[] = { "data.pkl", "version", ".data/version", "byteorder" };
	const uint8_t *slash = memchr(name, '/', nl);
	if (!slash || slash == name)
		return 0;
	size_t rl = nl - (size_t)(slash + 1 - name);
	for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++)
		if (rl == strlen(recs[i]) && !memcmp(slash + 1, recs[i], rl))
			return 1;
	return 0;
}

static int torch_zip_head(const uint8_t *h, size_t n)
{
	size_t p = 0;
	while (n - p >= 30 && h[p] == 'P' && h[p + 1] == 'K' && h[p + 2] == 3 && h[p + 3] == 4) {
		uint16_t flags = (uint16_t)(h[p + 6] | h[p + 7] << 8);
		uint64_t csize = (uint64_t)h[p + 18] | (uint64_t)h[p + 19] << 8 |
				 (uint64_t)h[p + 20] << 16 | (uint64_t)h[p + 21] << 24;
		size_t nl = (size_t)(h[p + 26] | h[p + 27] << 8), xl = (size_t)(h[p + 28] | h[p + 29] << 8);
		if (n - p - 30 < nl)
			return 0;
		if (torch_record(h + p + 30, nl))
			return 1;
		/* sizes in a data descriptor or a ZIP64 field: cannot walk on */
		if (flags & 0x0008 || csize == 0xffffffff)
			return 0;
		uint64_t next = (uint64_t)p + 30 + nl + xl + csize;
		if (next > n)
			return 0;
		p = (size_t)next;
	}
	return 0;
}

/* By content first, whatever the file is called: torch.load reads any name. */
static int torch_match(const char *path, const uint8_t *head, size_t nhead)
{
	size_t ml;
	if (torch_zip_head(head, nhead))
		return 1;
	if (legacy_magic_pickle(head, nhead, &ml))
		return 1;
	/* torch.load reads these too: claimed so that they are refused, not
	 * stored unchecked */
	if (is_torch_tar(head, nhead))
		return 1;
	if (!has_ext(path))
		return 0;
	return is_zip(head, nhead) || is_7z(head, nhead) || is_tar(head, nhead) ||
	       (nhead >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5);
}

static int torch_parse(int fd, uint64_t size, struct conv_info *out)
{
	uint8_t h[32] = { 0 };
	size_t n = size < sizeof h ? (size_t)size : sizeof h, ml;
	if (util_pread_full(fd, h, n, 0) != (ssize_t)n)
		return md_fail(MD_EIO, "read error");
	out->format = "torch";
	if (is_zip(h, n))
		return parse_zip(fd, size, out);
	if ((n >= 2 && h[0] == 0x80) || legacy_magic_pickle(h, n, &ml))
		return parse_legacy(fd, size, out);
	if (is_7z(h, n))
		return md_fail(MD_EREFUSED, "refused: 7z archive, not a torch checkpoint");
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return md_fail(MD_EREFUSED, "refused: gzip stream, not a torch checkpoint");
	if (size >= 512) {
		uint8_t t[6];
		if (util_pread_full(fd, t, 6, 257) == 6 && !memcmp(t, "ustar", 5))
			return md_fail(MD_EREFUSED, "refused: tar-format checkpoint (torch < 0.4)");
	}
	return md_fail(MD_ECORRUPT, "not a torch checkpoint (starts with %02x %02x %02x %02x)", h[0], h[1], h[2], h[3]);
}

/* Any zip, under any name: torch.load reads it as a checkpoint when its
 * central directory holds torch's records, which may lie past the head
 * (a first entry of more than CONV_HEAD_BYTES). */
static int torch_maybe(const uint8_t *head, size_t nhead)
{
	return is_zip(head, nhead);
}

static int scan_record(const uint8_t *name, size_t len, void *arg)
{
	(void)arg;
	return torch_record(name, len);
}

static int torch_probe(int fd, uint64_t size)
{
	return zip_scan_names(fd, size, scan_record, NULL);
}

const struct converter conv_torch = {
	.name = "torch",
	.match = torch_match,
	.parse = torch_parse,
	.maybe = torch_maybe,
	.probe = torch_probe,
};
