/* converters/recipe.c — recipe reader and builder; see recipe.h and
 * docs/pack-format.md section 2. */
#include "converters/recipe.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t MAGIC[8] = { 'M', 'D', 'R', 'E', 'C', 'I', 'P', 'E' };

#define COPY_BUF (1u << 20)

struct recipe {
	int fd;
	uint64_t orig_size, lit_base, lit_len;
	uint8_t orig_sha[32], pack_sha[32];   /* pack_sha: the pack's root digest */
	struct recipe_seg *seg;
	size_t n;
};

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ---- building ---- */

static int add_seg(struct recipe_builder *b, uint32_t kind, uint32_t ref, uint64_t off,
		   uint64_t len, uint64_t orig_off)
{
	if (len == 0)
		return 0;
	if (b->n) {
		struct recipe_seg *l = &b->seg[b->n - 1];
		if (l->kind == kind && l->ref == ref && l->off + l->len == off) {
			l->len += len;
			return 0;
		}
	}
	if (b->n >= RECIPE_MAX_SEGS)
		return md_fail(MD_ETOOBIG, "recipe: more than %u segments", RECIPE_MAX_SEGS);
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 64;
		struct recipe_seg *ns = realloc(b->seg, nc * sizeof *ns);
		if (!ns)
			return MD_ENOMEM;
		b->seg = ns;
		b->cap = nc;
	}
	b->seg[b->n++] = (struct recipe_seg){ kind, ref, off, len, orig_off };
	return 0;
}

int recipe_build(const struct conv_info *ci, const struct pack_layout *lay,
		 struct recipe_builder *b)
{
	uint64_t cov = 0;
	int rc = 0;
	memset(b, 0, sizeof *b);
	b->orig_size = lay->src_size;
	for (size_t k = 0; k < lay->nstored && !rc; k++) {
		size_t i = lay->order[k];
		uint64_t s = ci->t[i].src_off, e = s + ci->t[i].len;
		if (e <= cov || ci->t[i].stride)   /* gathered: its source bytes are literals */
			continue;
		if (s > cov) {
			rc = add_seg(b, RECIPE_LIT, 0, b->lit_len, s - cov, cov);
			b->lit_len += s - cov;
			cov = s;
		}
		if (!rc)
			rc = add_seg(b, RECIPE_PACK, 0, lay->off[i] + (cov - s), e - cov, cov);
		cov = e;
	}
	if (!rc && cov < lay->src_size) {
		rc = add_seg(b, RECIPE_LIT, 0, b->lit_len, lay->src_size - cov, cov);
		b->lit_len += lay->src_size - cov;
	}
	if (rc)
		recipe_builder_free(b);
	return rc;
}

void recipe_builder_free(struct recipe_builder *b)
{
	free(b->seg);
	memset(b, 0, sizeof *b);
}

uint64_t recipe_lit_base(const struct recipe_builder *b)
{
	return RECIPE_HDR_SIZE + (uint64_t)b->n * RECIPE_SEG_SIZE;
}

int recipe_write_index(int fd, const struct recipe_builder *b, const uint8_t orig_sha[32],
		       const uint8_t pack_root[32])
{
	size_t len = RECIPE_HDR_SIZE + b->n * RECIPE_SEG_SIZE;
	uint8_t *p = calloc(1, len);
	if (!p)
		return MD_ENOMEM;
	memcpy(p, MAGIC, 8);
	le32(p + 8, RECIPE_VERSION);
	le64(p + 16, b->orig_size);
	le64(p + 24, b->n);
	le64(p + 32, b->lit_len);
	memcpy(p + 40, orig_sha, 32);
	memcpy(p + 72, pack_root, 32);
	for (size_t i = 0; i < b->n; i++) {
		uint8_t *s = p + RECIPE_HDR_SIZE + i * RECIPE_SEG_SIZE;
		le32(s, b->seg[i].kind);
		le32(s + 4, b->seg[i].ref);
		le64(s + 8, b->seg[i].off);
		le64(s + 16, b->seg[i].len);
	}
	int rc = 0;
	size_t done = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, p + done, len - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "recipe: write: %s",
				     strerror(errno));
			break;
		}
		done += (size_t)w;
	}
	free(p);
	return rc;
}

/* ---- reading ---- */

int recipe_open(int fd, const uint64_t *pack_sizes, size_t npacks, struct recipe **out)
{
	struct stat st;
	uint8_t h[RECIPE_HDR_SIZE];
	uint8_t *tab = NULL;
	struct recipe *r = NULL;
	int rc = 0;
	if (fstat(fd, &st))
		return md_fail(MD_EIO, "recipe: fstat: %s", strerror(errno));
	uint64_t size = (uint64_t)st.st_size;
	if (size < RECIPE_HDR_SIZE)
		return md_fail(MD_ECORRUPT, "recipe: file of %llu bytes is too short",
			       (unsigned long long)size);
	if (util_pread_full(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
		return md_fail(MD_EIO, "recipe: cannot read the header");
	if (memcmp(h, MAGIC, 8))
		return md_fail(MD_ECORRUPT, "recipe: bad magic");
	if (rd32(h + 8) != RECIPE_VERSION)
		return md_fail(MD_EUNSUP, "recipe: version %u", rd32(h + 8));
	if (rd32(h + 12))
		return md_fail(MD_ECORRUPT, "recipe: unknown flags");
	for (unsigned i = 104; i < RECIPE_HDR_SIZE; i++)
		if (h[i])
			return md_fail(MD_ECORRUPT, "recipe: reserved header bytes not zero");
	uint64_t osize = rd64(h + 16), nseg = rd64(h + 24), lit = rd64(h + 32);
	if (nseg > RECIPE_MAX_SEGS)
		return md_fail(MD_ETOOBIG, "recipe: %llu segments (at most %u)",
			       (unsigned long long)nseg, RECIPE_MAX_SEGS);
	uint64_t base = RECIPE_HDR_SIZE + nseg * RECIPE_SEG_SIZE;
	if (base > size || size - base != lit)
		return md_fail(MD_ECORRUPT, "recipe: size %llu does not match its header",
			       (unsigned long long)size);
	if (lit > osize || (nseg == 0) != (osize == 0))
		return md_fail(MD_ECORRUPT, "recipe: literal or segment count inconsistent");
	if (!(r = calloc(1, sizeof *r)) || !(r->seg = calloc(nseg ? nseg : 1, sizeof *r->seg)) ||
	    (nseg && !(tab = malloc(nseg * RECIPE_SEG_SIZE)))) {
		rc = MD_ENOMEM;
		goto fail;
	}
	if (nseg && util_pread_full(fd, tab, nseg * RECIPE_SEG_SIZE, RECIPE_HDR_SIZE) !=
			    (ssize_t)(nseg * RECIPE_SEG_SIZE)) {
		rc = md_fail(MD_EIO, "recipe: cannot read the segment table");
		goto fail;
	}
	r->fd = fd;
	r->orig_size = osize;
	r->lit_base = base;
	r->lit_len = lit;
	r->n = nseg;
	memcpy(r->orig_sha, h + 40, 32);
	memcpy(r->pack_sha, h + 72, 32);
	uint64_t opos = 0, lpos = 0;
	for (size_t i = 0; i < nseg; i++) {
		const uint8_t *s = tab + i * RECIPE_SEG_SIZE;
		uint32_t kind = rd32(s);
		uint32_t ref = rd32(s + 4);
		uint64_t off = rd64(s + 8), len = rd64(s + 16);
		if ((kind != RECIPE_LIT && kind != RECIPE_PACK) || len == 0 ||
		    len > osize - opos || (kind == RECIPE_LIT && ref) || ref > PACK_MAX_REFS ||
		    (npacks && ref >= npacks)) {
			rc = md_fail(MD_ECORRUPT, "recipe: segment %zu is malformed", i);
			goto fail;
		}
		if (kind == RECIPE_LIT) {
			if (off != lpos || len > lit - lpos) {
				rc = md_fail(MD_ECORRUPT, "recipe: literal segment %zu out of order", i);
				goto fail;
			}
			lpos += len;
			off += base;
		} else if (off < PACK_ALIGN ||
			   (npacks && pack_sizes[ref] && (off > pack_sizes[ref] ||
							  len > pack_sizes[ref] - off))) {
			rc = md_fail(MD_ECORRUPT, "recipe: segment %zu lies outside the pack", i);
			goto fail;
		} else if (off > UINT64_MAX - len) {
			rc = md_fail(MD_ECORRUPT, "recipe: segment %zu overflows", i);
			goto fail;
		}
		r->seg[i] = (struct recipe_seg){ kind, ref, off, len, opos };
		opos += len;
	}
	if (opos != osize || lpos != lit) {
		rc = md_fail(MD_ECORRUPT, "recipe: segments cover %llu of %llu bytes",
			     (unsigned long long)opos, (unsigned long long)osize);
		goto fail;
	}
	free(tab);
	*out = r;
	return 0;
fail:
	free(tab);
	recipe_close(r);
	return rc;
}

void recipe_close(struct recipe *r)
{
	if (!r)
		return;
	free(r->seg);
	free(r);
}

uint64_t recipe_orig_size(const struct recipe *r) { return r->orig_size; }
const uint8_t *recipe_orig_sha256(const struct recipe *r) { return r->orig_sha; }
const uint8_t *recipe_pack_root(const struct recipe *r) { return r->pack_sha; }
size_t recipe_nseg(const struct recipe *r) { return r->n; }

const struct recipe_seg *recipe_seg(const struct recipe *r, size_t i)
{
	return i < r->n ? &r->seg[i] : NULL;
}

size_t recipe_find(const struct recipe *r, uint64_t off)
{
	if (off >= r->orig_size)
		return r->n;
	size_t lo = 0, hi = r->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->seg[mid].orig_off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Walk [off, off+len) as (fd, file offset, n) pieces. */
typedef int (*piece_fn)(void *arg, int fd, uint64_t foff, uint64_t n);

static int walk(const struct recipe *r, struct recipe_packs pk, uint64_t off, uint64_t len,
		piece_fn fn, void *arg)
{
	if (off > r->orig_size || len > r->orig_size - off)
		return md_fail(MD_EINVAL, "recipe: range [%llu, +%llu) past the end (%llu bytes)",
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)r->orig_size);
	for (size_t i = recipe_find(r, off); len && i < r->n; i++) {
		const struct recipe_seg *s = &r->seg[i];
		uint64_t skip = off - s->orig_off, n = s->len - skip;
		if (n > len)
			n = len;
		if (s->kind == RECIPE_PACK && s->ref >= pk.n)
			return md_fail(MD_ECORRUPT, "recipe: segment %zu: referenced pack %u not open",
				       i, s->ref);
		int rc = fn(arg, s->kind == RECIPE_LIT ? r->fd : pk.fds[s->ref], s->off + skip, n);
		if (rc)
			return rc;
		off += n;
		len -= n;
	}
	return 0;
}

static int read_piece(void *arg, int fd, uint64_t foff, uint64_t n)
{
	uint8_t **p = arg;
	ssize_t g = util_pread_full(fd, *p, n, (off_t)foff);
	if (g < 0)
		return md_fail(MD_EIO, "recipe: read error at byte %llu", (unsigned long long)foff);
	if ((uint64_t)g != n)
		return md_fail(MD_ECORRUPT, "recipe: pack or recipe shorter than its segments");
	*p += n;
	return 0;
}

int recipe_read(const struct recipe *r, struct recipe_packs pk, uint64_t off, void *buf,
		size_t len)
{
	uint8_t *p = buf;
	return walk(r, pk, off, len, read_piece, &p);
}

static int copy_piece(void *arg, int fd, uint64_t foff, uint64_t n)
{
	int out = *(int *)arg;
	off_t o = (off_t)foff;
	/* sendfile works to files, pipes and sockets */
	while (n) {
		size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t w = sendfile(out, fd, &o, want);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EINVAL || errno == ENOSYS))
			break;
		if (w < 0)
			return md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "recipe: copy: %s",
				       strerror(errno));
		if (w == 0)
			return md_fail(MD_ECORRUPT, "recipe: pack or recipe shorter than its segments");
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
		ssize_t g = util_pread_full(fd, buf, k, o);
		if (g != (ssize_t)k)
			rc = md_fail(g < 0 ? MD_EIO : MD_ECORRUPT, "recipe: short read");
		else if ((rc = util_write_all(out, buf, k)) == 0) {
			n -= k;
			o += (off_t)k;
		}
	}
	free(buf);
	return rc;
}

int recipe_copy(const struct recipe *r, struct recipe_packs pk, uint64_t off, uint64_t len,
		int out_fd)
{
	return walk(r, pk, off, len, copy_piece, &out_fd);
}

struct hash_arg {
	struct sha256 h;
	uint8_t *buf;
};

static int hash_piece(void *arg, int fd, uint64_t foff, uint64_t n)
{
	struct hash_arg *a = arg;
	while (n) {
		size_t k = n > COPY_BUF ? COPY_BUF : (size_t)n;
		ssize_t g = util_pread_full(fd, a->buf, k, (off_t)foff);
		if (g != (ssize_t)k)
			return md_fail(g < 0 ? MD_EIO : MD_ECORRUPT, "recipe: short read");
		sha256_update(&a->h, a->buf, k);
		n -= k;
		foff += k;
	}
	return 0;
}

int recipe_verify(const struct recipe *r, struct recipe_packs pk)
{
	struct hash_arg a;
	uint8_t d[32];
	if (!(a.buf = malloc(COPY_BUF)))
		return MD_ENOMEM;
	if (sha256_init(&a.h)) {
		free(a.buf);
		return MD_ENOMEM;
	}
	int rc = walk(r, pk, 0, r->orig_size, hash_piece, &a);
	if (rc) {
		sha256_free(&a.h);
		free(a.buf);
		return rc;
	}
	sha256_final(&a.h, d);
	free(a.buf);
	if (memcmp(d, r->orig_sha, 32))
		return md_fail(MD_ECORRUPT, "recipe: original sha256 mismatch");
	return 0;
}

int recipe_rebase(const struct recipe *r, const struct pack_move *moves,
		  size_t nmoves, const uint8_t new_root[32], int out_fd)
{
	struct recipe_builder b;
	int rc = 0;
	memset(&b, 0, sizeof b);
	b.orig_size = r->orig_size;
	for (size_t i = 0; i < r->n && !rc; i++) {
		const struct recipe_seg *s = &r->seg[i];
		if (s->kind == RECIPE_LIT) {
			rc = add_seg(&b, RECIPE_LIT, 0, s->off - r->lit_base, s->len, s->orig_off);
			b.lit_len += s->len;
			continue;
		}
		if (s->ref)
			return md_fail(MD_EINVAL, "recipe: already refers to other packs");
		for (uint64_t o = s->off, left = s->len; left && !rc;) {
			size_t lo = 0, hi = nmoves;   /* last move with from <= o */
			while (hi - lo > 1) {
				size_t mid = lo + (hi - lo) / 2;
				if (moves[mid].from <= o)
					lo = mid;
				else
					hi = mid;
			}
			/* zero-length moves share their from with the next one */
			while (lo + 1 < nmoves && moves[lo + 1].from <= o)
				lo++;
			const struct pack_move *m = nmoves ? &moves[lo] : NULL;
			if (!m || m->from > o || o - m->from >= m->len) {
				rc = md_fail(MD_EINVAL, "recipe: segment %zu is not tensor data", i);
				break;
			}
			uint64_t n = m->from + m->len - o;
			if (n > left)
				n = left;
			rc = add_seg(&b, RECIPE_PACK, m->ref, m->to + (o - m->from), n,
				     s->orig_off + (o - s->off));
			o += n;
			left -= n;
		}
	}
	if (!rc)
		rc = recipe_write_index(out_fd, &b, r->orig_sha, new_root);
	/* the literal bytes, in the same order */
	if (!rc && r->lit_len &&
	    (rc = util_copy_range(r->fd, r->lit_base, out_fd, recipe_lit_base(&b), r->lit_len)))
		rc = md_fail(rc, "recipe: copying its literals: %s", md_strerror(rc));
	recipe_builder_free(&b);
	return rc;
}
