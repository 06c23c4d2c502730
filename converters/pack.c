/* converters/pack.c — pack writer and strict reader; see pack.h and
 * docs/pack-format.md. */
#include "converters/pack.h"
#include "converters/gguf.h"
#include "converters/tdigest.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t MAGIC[8] = { 'M', 'D', 'P', 'A', 'C', 'K', 0, 1 };
static const uint8_t TMAGIC[8] = { 'M', 'D', 'P', 'K', 'E', 'N', 'D', 0 };

#define CHUNK (8u << 20)   /* source bytes hashed between checks */

static uint64_t align_up(uint64_t x)
{
	return (x + PACK_ALIGN - 1) & ~(uint64_t)(PACK_ALIGN - 1);
}

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

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "pack: write: %s",
				       strerror(errno));
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int format_ok(const char *f)
{
	size_t n = f ? strlen(f) : 0;
	if (n == 0 || n > 15)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((f[i] >= 'a' && f[i] <= 'z') || (f[i] >= '0' && f[i] <= '9') ||
		      f[i] == '_' || f[i] == '-'))
			return 0;
	return 1;
}

/* ---- layout ---- */

static const struct conv_tensor *sort_t;

static int cmp_name_idx(const void *a, const void *b)
{
	return strcmp(sort_t[*(const size_t *)a].name, sort_t[*(const size_t *)b].name);
}

static int cmp_range_idx(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct conv_tensor *x = &sort_t[i], *y = &sort_t[j];
	if (x->src_off != y->src_off)
		return x->src_off < y->src_off ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return i < j ? -1 : i > j;
}

static int cmp_src_idx(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct conv_tensor *x = &sort_t[i], *y = &sort_t[j];
	if (x->src_off != y->src_off)
		return x->src_off < y->src_off ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* qsort has no context argument in C17; layout is not hot, so serialize. */
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

void pack_layout_free(struct pack_layout *lay)
{
	free(lay->off);
	free(lay->alias);
	free(lay->order);
	free(lay->strtab);
	free(lay->name_off);
	free(lay->meta);
	memset(lay, 0, sizeof *lay);
}

int pack_layout_init(const struct conv_info *ci, uint64_t src_size, struct pack_layout *lay)
{
	size_t n = ci->n, i;
	size_t *idx = NULL;
	int rc = 0;
	memset(lay, 0, sizeof *lay);
	lay->n = n;
	lay->src_size = src_size;
	if (!format_ok(ci->format))
		return md_fail(MD_EINVAL, "pack: bad format name");
	strcpy(lay->format, ci->format);
	if (n > CONV_MAX_TENSORS)
		return md_fail(MD_ETOOBIG, "pack: %zu tensors", n);
	lay->off = calloc(n ? n : 1, sizeof *lay->off);
	lay->alias = calloc(n ? n : 1, sizeof *lay->alias);
	lay->order = calloc(n ? n : 1, sizeof *lay->order);
	lay->name_off = calloc(n ? n : 1, sizeof *lay->name_off);
	idx = calloc(n ? n : 1, sizeof *idx);
	if (!lay->off || !lay->alias || !lay->order || !lay->name_off || !idx) {
		rc = MD_ENOMEM;
		goto out;
	}
	uint64_t strtab_len = 0;
	for (i = 0; i < n; i++) {
		const struct conv_tensor *t = &ci->t[i];
		size_t nl = t->name ? strlen(t->name) : 0;
		if (nl == 0 || nl > CONV_MAX_NAME || !conv_utf8_ok(t->name, nl)) {
			rc = md_fail(MD_EINVAL, "pack: tensor %zu: name empty, too long or not UTF-8", i);
			goto out;
		}
		uint64_t want, end;
		if ((rc = conv_tensor_nbytes(t->dtype, t->ndim, t->shape, &want))) {
			md_fail_prefix(rc, t->name);
			rc = md_fail_prefix(MD_EINVAL, "pack: tensor");
			goto out;
		}
		if (want != t->len) {
			rc = md_fail(MD_EINVAL, "pack: tensor %s: %llu bytes, dtype and shape need %llu",
				     t->name, (unsigned long long)t->len, (unsigned long long)want);
			goto out;
		}
		uint64_t span = t->len;
		if (t->stride && (!(conv_dtype_bits(t->dtype) % 8 == 0 && conv_dtype_bits(t->dtype)) ||
				  conv_strided_span(t->ndim, t->shape, t->stride,
						    conv_dtype_bits(t->dtype) / 8, &span) ||
				  span < t->len)) {
			rc = md_fail(MD_EINVAL, "pack: tensor %s: bad strides", t->name);
			goto out;
		}
		if (__builtin_add_overflow(t->src_off, span, &end) || end > src_size) {
			rc = md_fail(MD_EINVAL, "pack: tensor %s: source range past the end", t->name);
			goto out;
		}
		lay->alias[i] = -1;
		if (t->alias >= 0) {
			const struct conv_tensor *a;
			if ((uint64_t)t->alias >= i || t->stride ||
			    (a = &ci->t[t->alias], a->src_off != t->src_off || a->len != t->len ||
			     a->stride)) {
				rc = md_fail(MD_EINVAL, "pack: tensor %s: alias %lld is not an earlier "
					     "tensor with the same source range", t->name,
					     (long long)t->alias);
				goto out;
			}
			lay->alias[i] = lay->alias[t->alias] >= 0 ? lay->alias[t->alias] : t->alias;
		} else if (t->alias != -1) {
			rc = md_fail(MD_EINVAL, "pack: tensor %s: bad alias", t->name);
			goto out;
		}
		lay->name_off[i] = (uint32_t)strtab_len;
		strtab_len += nl;
		if (strtab_len > PACK_MAX_STRTAB) {
			rc = md_fail(MD_ETOOBIG, "pack: names exceed %u bytes", PACK_MAX_STRTAB);
			goto out;
		}
		idx[i] = i;
	}
	pthread_mutex_lock(&sort_mu);
	sort_t = ci->t;
	qsort(idx, n, sizeof *idx, cmp_name_idx);
	for (i = 1; i < n; i++)
		if (!strcmp(ci->t[idx[i - 1]].name, ci->t[idx[i]].name))
			break;
	if (i < n) {
		pthread_mutex_unlock(&sort_mu);
		rc = md_fail(MD_EINVAL, "pack: duplicate tensor name %s", ci->t[idx[i]].name);
		goto out;
	}
	/* tensors with the same source range hold the same bytes: store once */
	size_t m = 0;
	for (i = 0; i < n; i++)
		if (lay->alias[i] < 0 && ci->t[i].len && !ci->t[i].stride)
			idx[m++] = i;
	qsort(idx, m, sizeof *idx, cmp_range_idx);
	for (i = 1; i < m; i++) {
		const struct conv_tensor *a = &ci->t[idx[i - 1]], *b = &ci->t[idx[i]];
		if (a->src_off == b->src_off && a->len == b->len)
			lay->alias[idx[i]] = lay->alias[idx[i - 1]] >= 0 ? lay->alias[idx[i - 1]]
									  : (int64_t)idx[i - 1];
	}
	m = 0;
	for (i = 0; i < n; i++)
		if (lay->alias[i] < 0)
			lay->order[m++] = i;
	qsort(lay->order, m, sizeof *lay->order, cmp_src_idx);
	pthread_mutex_unlock(&sort_mu);
	lay->nstored = m;
	uint64_t pos = PACK_ALIGN, maxend = 0;
	lay->data_end = PACK_ALIGN;
	for (i = 0; i < m; i++) {
		const struct conv_tensor *t = &ci->t[lay->order[i]];
		if (t->len && !t->stride && t->src_off < maxend)
			lay->overlap = 1;
		if (!t->stride && t->src_off + t->len > maxend)
			maxend = t->src_off + t->len;
		lay->off[lay->order[i]] = pos;
		if (__builtin_add_overflow(pos, t->len, &lay->data_end) ||
		    lay->data_end > UINT64_MAX - PACK_ALIGN) {
			rc = md_fail(MD_ETOOBIG, "pack: data size overflows");
			goto out;
		}
		pos = align_up(lay->data_end);
	}
	/* Overlapping views (torch) are stored as copies: bound the blow-up so a
	 * hostile file cannot turn into a pack many times its size. */
	uint64_t stored = 0, cap = PACK_MAX_GROWTH(src_size);
	for (i = 0; i < m && stored <= cap; i++)
		stored += ci->t[lay->order[i]].len;   /* each <= src_size: no overflow
							 before crossing cap */
	if (stored > cap) {
		rc = md_fail(MD_ETOOBIG, "pack: overlapping tensors would store %llu bytes for a "
			     "source of %llu", (unsigned long long)stored,
			     (unsigned long long)src_size);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (lay->alias[i] >= 0)
			lay->off[i] = lay->off[lay->alias[i]];
	lay->table_off = align_up(lay->data_end);
	lay->strtab_len = strtab_len;
	if (!(lay->strtab = malloc(strtab_len ? strtab_len : 1))) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		memcpy(lay->strtab + lay->name_off[i], ci->t[i].name, strlen(ci->t[i].name));
	uint8_t *kv;
	size_t kvlen;
	uint64_t kvcount;
	if ((rc = gguf_meta_encode(ci->meta, NULL, &kv, &kvlen, &kvcount))) {
		md_fail_prefix(rc, "pack");
		goto out;
	}
	if (!(lay->meta = malloc(kvlen + 8))) {
		free(kv);
		rc = MD_ENOMEM;
		goto out;
	}
	le64(lay->meta, kvcount);
	if (kvlen)
		memcpy(lay->meta + 8, kv, kvlen);
	free(kv);
	lay->meta_len = kvlen + 8;
	lay->file_size = lay->table_off + (uint64_t)n * PACK_ENTRY + lay->strtab_len +
			 lay->meta_len + PACK_TRAILER;
out:
	free(idx);
	return rc;
}

/* ---- index ---- */

static void build_header(const struct pack_layout *lay, uint8_t h[PACK_HDR_SIZE])
{
	memset(h, 0, PACK_HDR_SIZE);
	memcpy(h, MAGIC, 8);
	le32(h + 8, PACK_VERSION);
	memcpy(h + 16, lay->format, strlen(lay->format));
	le64(h + 32, lay->n);
	le64(h + 40, lay->file_size);
	le64(h + 48, PACK_ALIGN);
	le64(h + 56, lay->data_end);
	le64(h + 64, lay->table_off);
	le64(h + 72, lay->table_off + (uint64_t)lay->n * PACK_ENTRY);
	le64(h + 80, lay->strtab_len);
	le64(h + 88, lay->table_off + (uint64_t)lay->n * PACK_ENTRY + lay->strtab_len);
	le64(h + 96, lay->meta_len);
	le64(h + 104, lay->src_size);
}

/* The root digest: SHA-256 of the header and the n index bytes before the
 * trailer (table, strings, metadata, referenced packs). 0 or MD_ENOMEM. */
static int root_digest(const uint8_t *hdr, const uint8_t *idx, size_t n, uint8_t out[32])
{
	struct sha256 h;
	if (sha256_init(&h))
		return MD_ENOMEM;
	sha256_update(&h, hdr, PACK_HDR_SIZE);
	sha256_update(&h, idx, n);
	sha256_final(&h, out);
	return 0;
}

/* Fill the trailer, the last PACK_TRAILER of the len index bytes, with the
 * root digest (also written to root). 0 or MD_ENOMEM. */
static int seal(const uint8_t *hdr, uint8_t *idx, size_t len, uint64_t ntensors, uint8_t root[32])
{
	if (root_digest(hdr, idx, len - PACK_TRAILER, root))
		return MD_ENOMEM;
	uint8_t *tr = idx + len - PACK_TRAILER;
	memcpy(tr, TMAGIC, 8);
	le64(tr + 8, ntensors);
	memcpy(tr + 16, root, 32);
	return 0;
}

/* Table + strings + metadata + trailer, malloc'd. */
static int build_index(const struct conv_info *ci, const struct pack_layout *lay,
		       const uint8_t *hdr, uint8_t (*digest)[32], uint8_t **out, size_t *len,
		       uint8_t root[32])
{
	size_t tl = lay->n * PACK_ENTRY;
	size_t total = tl + lay->strtab_len + lay->meta_len + PACK_TRAILER;
	uint8_t *b = calloc(1, total);
	if (!b)
		return MD_ENOMEM;
	for (size_t i = 0; i < lay->n; i++) {
		const struct conv_tensor *t = &ci->t[i];
		uint8_t *e = b + i * PACK_ENTRY;
		le32(e, lay->name_off[i]);
		le32(e + 4, (uint32_t)strlen(t->name));
		le32(e + 8, t->dtype);
		le32(e + 12, t->ndim);
		for (uint32_t d = 0; d < t->ndim; d++)
			le64(e + 16 + 8 * d, t->shape[d]);
		le64(e + 80, lay->off[i]);
		le64(e + 88, t->len);
		le64(e + 96, t->src_off);
		le64(e + 104, (uint64_t)lay->alias[i]);
		size_t s = lay->alias[i] >= 0 ? (size_t)lay->alias[i] : i;
		memcpy(e + 112, digest[s], 32);
	}
	memcpy(b + tl, lay->strtab, lay->strtab_len);
	memcpy(b + tl + lay->strtab_len, lay->meta, lay->meta_len);
	if (seal(hdr, b, total, lay->n, root)) {
		free(b);
		return MD_ENOMEM;
	}
	*out = b;
	*len = total;
	return 0;
}

/* ---- parallel writer ----
 *
 * The source is mapped read-only. Stored tensors are jobs taken in source
 * order by NTHREADS workers: each hashes its tensor's bytes and writes them
 * into the pack from the mapping, a step at a time, so the bytes hashed are
 * the bytes written (one copy per byte, no read buffer). Meanwhile the
 * calling thread hands the gaps to the callback and, unless the caller
 * already knows it, hashes the whole source. No whole-pack hash: the pack's
 * name is its root digest, which commits to every tensor digest. */

#define STEP (256u << 10)   /* bytes hashed then written at a time (stays in cache) */
#define MAX_THREADS 16

struct wstate {
	const struct conv_info *ci;
	const struct pack_layout *lay;
	const uint8_t *src;      /* the mapping */
	int placed;              /* 1: src maps a placed file (pack_write_placed):
				    tensors are hashed where they lie, not copied */
	int pack_fd;
	pthread_mutex_t mu;
	pthread_mutex_t wmu;     /* one pwrite at a time (see write_tensor) */
	size_t next;             /* next job (index into lay->order) */
	int err;                 /* first failure; stops everyone */
	uint8_t (*digest)[32];   /* [n] */
};

static int failed(struct wstate *s)
{
	pthread_mutex_lock(&s->mu);
	int e = s->err;
	pthread_mutex_unlock(&s->mu);
	return e;
}

static void set_err(struct wstate *s, int rc)
{
	pthread_mutex_lock(&s->mu);
	if (!s->err)
		s->err = rc;
	pthread_mutex_unlock(&s->mu);
}

static int write_tensor(struct wstate *s, size_t ti)
{
	const struct conv_tensor *t = &s->ci->t[ti];
	struct tdigest h;
	if (tdigest_init(&h, TDIGEST_WRITE))
		return MD_ENOMEM;
	int rc = 0;
	uint8_t *buf = NULL;
	if (t->stride && !(buf = malloc(STEP))) {
		tdigest_free(&h);
		return MD_ENOMEM;
	}
	/* a strided view is gathered a step at a time (STEP is a multiple of
	 * every element size) */
	for (uint64_t o = 0; o < t->len && !rc; o += STEP) {
		size_t n = t->len - o < STEP ? (size_t)(t->len - o) : STEP;
		const uint8_t *p = s->src + (s->placed ? s->lay->off[ti] : t->src_off) + o;
		if (s->placed) {
			tdigest_update(&h, p, n);
			if ((o & ((64u << 20) - 1)) == 0)
				rc = failed(s);
			continue;
		}
		if (buf) {
			conv_gather(s->src, t, o, n, buf);
			p = buf;
		}
		tdigest_update(&h, p, n);
		/* ext4 (and others) serialise buffered writes to one file on
		 * the inode lock, and its waiters spin: two workers writing at
		 * once burnt a third of the CPU spinning. Waiting here sleeps
		 * instead, and the spare worker (nthreads) hashes meanwhile. */
		pthread_mutex_lock(&s->wmu);
		rc = pwrite_all(s->pack_fd, p, n, s->lay->off[ti] + o);
		pthread_mutex_unlock(&s->wmu);
		if (!rc && (o & ((64u << 20) - 1)) == 0)
			rc = failed(s);
	}
	free(buf);
	if (rc) {
		tdigest_free(&h);
		return rc;
	}
	tdigest_final(&h, s->digest[ti]);
	return 0;
}

static void *tensor_worker(void *arg)
{
	struct wstate *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		size_t j = s->next++;
		int stop = s->err || j >= s->lay->nstored;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		int rc = write_tensor(s, s->lay->order[j]);
		if (rc) {
			set_err(s, rc);
			break;
		}
	}
	return NULL;
}

/* One worker per CPU, plus one to hash while another waits to write. */
static int nthreads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN) + 1;
	return n < 2 ? 2 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* Start up to want tensor workers (no more than there are tensors); how
 * many started. */
static int start_workers(struct wstate *s, pthread_t *thr, int want)
{
	if ((size_t)want > s->lay->nstored)
		want = (int)s->lay->nstored;
	int nt = 0;
	while (nt < want && pthread_create(&thr[nt], NULL, tensor_worker, s) == 0)
		nt++;
	return nt;
}

/* Gaps in source order, then (when wanted) the whole-source hash. */
static int gaps_and_source(struct wstate *s, pack_gap_fn gap, void *arg, struct sha256 *sh)
{
	const struct pack_layout *lay = s->lay;
	int rc = 0;
	if (gap) {
		uint64_t cov = 0;
		for (size_t j = 0; j < lay->nstored && !rc; j++) {
			const struct conv_tensor *t = &s->ci->t[lay->order[j]];
			if (t->len == 0 || t->stride)   /* a gathered view covers no range */
				continue;
			if (t->src_off > cov)
				rc = gap(arg, cov, s->src + cov, t->src_off - cov);
			if (t->src_off + t->len > cov)
				cov = t->src_off + t->len;
		}
		if (!rc && cov < lay->src_size)
			rc = gap(arg, cov, s->src + cov, lay->src_size - cov);
	}
	for (uint64_t o = 0; sh && o < lay->src_size && !rc; o += CHUNK) {
		size_t n = lay->src_size - o < CHUNK ? (size_t)(lay->src_size - o) : CHUNK;
		sha256_update(sh, s->src + o, n);
		rc = failed(s);
	}
	return rc;
}

/* The digests of zero-length tensors, then the index (built over hdr and
 * every digest) written at lay->table_off; its root goes to root. */
static int write_index(int fd, const struct conv_info *ci, const struct pack_layout *lay,
		       const uint8_t *hdr, uint8_t (*digest)[32], uint8_t root[32])
{
	for (size_t i = 0; i < lay->nstored; i++) {
		size_t ti = lay->order[i];
		struct tdigest h;
		if (ci->t[ti].len == 0) {
			if (tdigest_init(&h, TDIGEST_WRITE))
				return MD_ENOMEM;
			tdigest_final(&h, digest[ti]);
		}
	}
	uint8_t *idx;
	size_t idxlen;
	int rc = build_index(ci, lay, hdr, digest, &idx, &idxlen, root);
	if (rc)
		return rc;
	rc = pwrite_all(fd, idx, idxlen, lay->table_off);
	free(idx);
	return rc;
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Give the empty pack its size with its blocks allocated up front: on ext4
 * writing into a file without blocks costs a delayed-allocation reservation
 * per page, which made a quarter of a conversion's time (bench/torch.sh:
 * 0.275 s -> 0.20 s per GiB, and the same fdatasync after), and a full disk
 * is found before any byte is written. Where the filesystem cannot
 * (EOPNOTSUPP), a sparse ftruncate. -1 with errno on failure. */
static int size_pack(int fd, uint64_t size)
{
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -1;
	return ftruncate(fd, (off_t)size);
}

/* The result fields both writers end with: the source's digest (given, or
 * the one hashed meanwhile) and the pack's size. */
static void finish_written(struct pack_written *out, const uint8_t *src_sha256,
			   struct sha256 *sh, uint64_t size)
{
	if (src_sha256)
		memcpy(out->src_sha256, src_sha256, 32);
	else
		sha256_final(sh, out->src_sha256);
	out->size = size;
}

/* What both writers free, whether they finished or not. */
static void wstate_free(struct wstate *s, struct sha256 *sh)
{
	if (sh->ctx)
		sha256_free(sh);
	free(s->digest);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->wmu);
}

int pack_write(int src_fd, const struct conv_info *ci, const struct pack_layout *lay,
	       const uint8_t *src_sha256, int pack_fd, pack_gap_fn gap, void *arg,
	       struct pack_written *out)
{
	struct wstate s;
	struct sha256 sh = { 0 };
	struct stat st0, st1;
	uint8_t hdr[PACK_HDR_SIZE];
	pthread_t thr[MAX_THREADS];
	int nt = 0, rc = 0;
	void *map = MAP_FAILED;
	memset(&s, 0, sizeof s);
	s.ci = ci;
	s.lay = lay;
	s.pack_fd = pack_fd;
	pthread_mutex_init(&s.mu, NULL);
	pthread_mutex_init(&s.wmu, NULL);
	if (fstat(src_fd, &st0) < 0) {
		rc = md_fail(MD_EIO, "pack: cannot stat the source: %s", strerror(errno));
		goto out;
	}
	if ((uint64_t)st0.st_size < lay->src_size) {
		rc = md_fail(MD_ECORRUPT, "pack: source shorter than %llu bytes",
			     (unsigned long long)lay->src_size);
		goto out;
	}
	if (lay->src_size) {
		map = mmap(NULL, (size_t)lay->src_size, PROT_READ, MAP_SHARED, src_fd, 0);
		if (map == MAP_FAILED) {
			rc = md_fail(errno == ENOMEM ? MD_ENOMEM : MD_EIO,
				     "pack: cannot map the source: %s", strerror(errno));
			goto out;
		}
		/* not MADV_SEQUENTIAL: the tensor workers and the source hash
		 * read each page at different times; drop-behind would evict
		 * it in between */
		madvise(map, (size_t)lay->src_size, MADV_WILLNEED);
		s.src = map;
	}
	if (!(s.digest = calloc(lay->n ? lay->n : 1, sizeof *s.digest))) {
		rc = MD_ENOMEM;
		goto out;
	}
	if (!src_sha256 && sha256_init(&sh)) {
		rc = MD_ENOMEM;
		goto out;
	}
	build_header(lay, hdr);
	/* (no ftruncate to 0 of an empty file: on ext4 that arms a flush of
	 * the whole pack at close, auto_da_alloc) */
	struct stat pst;
	if (fstat(pack_fd, &pst) < 0 || (pst.st_size && ftruncate(pack_fd, 0)) ||
	    size_pack(pack_fd, lay->file_size)) {
		rc = md_fail(errno == ENOSPC || errno == EFBIG ? MD_ENOSPC : MD_EIO,
			     "pack: cannot size the pack: %s", strerror(errno));
		goto out;
	}
	if ((rc = pwrite_all(pack_fd, hdr, PACK_HDR_SIZE, 0)))
		goto out;
	nt = start_workers(&s, thr, nthreads());
	if (nt == 0 && lay->nstored) {
		rc = md_fail(MD_ENOMEM, "pack: cannot start a thread");
		goto out;
	}
	rc = gaps_and_source(&s, gap, arg, src_sha256 ? NULL : &sh);
	if (rc)
		set_err(&s, rc);
	for (int i = 0; i < nt; i++)
		pthread_join(thr[i], NULL);
	nt = 0;
	if ((rc = s.err))
		goto out;
	if (fstat(src_fd, &st1) < 0 || !same_file_state(&st0, &st1)) {
		rc = md_fail(MD_ECORRUPT, "pack: the source changed while being converted");
		goto out;
	}
	if ((rc = write_index(pack_fd, ci, lay, hdr, s.digest, out->root)))
		goto out;
	finish_written(out, src_sha256, &sh, lay->file_size);
out:
	wstate_free(&s, &sh);
	if (map != MAP_FAILED)
		munmap(map, (size_t)lay->src_size);
	return rc;
}

/* ---- placed files ---- */

static int seg_add(struct pack_seg **v, size_t *n, size_t *cap, uint64_t src, uint64_t dst,
		   uint64_t len)
{
	if (!len)
		return 0;
	struct pack_seg *l = *n ? &(*v)[*n - 1] : NULL;
	if (l && l->src + l->len == src && l->dst + l->len == dst) {
		l->len += len;
		return 0;
	}
	if (*n == PACK_PLACE_MAX_SEGS)
		return md_fail(MD_EUNSUP, "pack: more than %u pieces to place", PACK_PLACE_MAX_SEGS);
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct pack_seg *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return MD_ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct pack_seg){ src, dst, len };
	return 0;
}

int pack_place(const struct conv_info *ci, const struct pack_layout *lay, struct pack_seg **segs,
	       size_t *nseg, uint64_t *placed_size)
{
	struct pack_seg *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t cov = 0, tail = align_up(lay->file_size), t0 = tail;
	int rc = 0;
	*segs = NULL;
	*nseg = 0;
	if (lay->overlap)
		return md_fail(MD_EUNSUP, "pack: tensors overlap in the source");
	for (size_t j = 0; j < lay->nstored && !rc; j++) {
		size_t ti = lay->order[j];
		const struct conv_tensor *t = &ci->t[ti];
		if (t->stride)
			rc = md_fail(MD_EUNSUP, "pack: %s is a strided view", t->name);
		else if (t->len == 0)
			continue;
		else if (t->src_off > cov && !(rc = seg_add(&v, &n, &cap, cov, tail, t->src_off - cov)))
			tail += t->src_off - cov;
		if (!rc)
			rc = seg_add(&v, &n, &cap, t->src_off, lay->off[ti], t->len);
		cov = t->src_off + t->len;
	}
	if (!rc && cov < lay->src_size && !(rc = seg_add(&v, &n, &cap, cov, tail, lay->src_size - cov)))
		tail += lay->src_size - cov;
	if (rc) {
		free(v);
		return rc;
	}
	*segs = v;
	*nseg = n;
	*placed_size = tail > t0 ? tail : lay->file_size;
	return 0;
}

int pack_write_placed(int fd, const struct conv_info *ci, const struct pack_layout *lay,
		      const uint8_t *src_sha256, pack_gap_fn gap, void *arg,
		      struct pack_written *out)
{
	struct wstate s;
	struct sha256 sh = { 0 };
	struct pack_seg *seg = NULL;
	size_t nseg = 0;
	uint64_t psize = 0;
	uint8_t *blk = NULL;
	pthread_t thr[MAX_THREADS];
	int nt = 0, rc;
	void *map = MAP_FAILED;
	struct stat st;
	memset(&s, 0, sizeof s);
	s.ci = ci;
	s.lay = lay;
	s.placed = 1;
	s.pack_fd = fd;
	pthread_mutex_init(&s.mu, NULL);
	pthread_mutex_init(&s.wmu, NULL);
	if ((rc = pack_place(ci, lay, &seg, &nseg, &psize)))
		goto out;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < psize) {
		rc = md_fail(MD_ECORRUPT, "pack: placed file shorter than %llu bytes",
			     (unsigned long long)psize);
		goto out;
	}
	map = mmap(NULL, (size_t)psize, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = md_fail(errno == ENOMEM ? MD_ENOMEM : MD_EIO, "pack: cannot map the file: %s",
			     strerror(errno));
		goto out;
	}
	madvise(map, (size_t)psize, MADV_WILLNEED);
	s.src = map;
	if (!(s.digest = calloc(lay->n ? lay->n : 1, sizeof *s.digest)) ||
	    !(blk = calloc(1, PACK_ALIGN)) || (!src_sha256 && sha256_init(&sh))) {
		rc = MD_ENOMEM;
		goto out;
	}
	nt = start_workers(&s, thr, nthreads() - 1);
	if (nt == 0 && lay->nstored) {
		rc = md_fail(MD_ENOMEM, "pack: cannot start a thread");
		set_err(&s, rc);
	}
	/* meanwhile: the bytes no tensor covers (in the tail), in source
	 * order, and the source's digest over the pieces in that order */
	for (size_t i = 0; i < nseg && !failed(&s); i++) {
		const uint8_t *p = s.src + seg[i].dst;
		if (gap && seg[i].dst >= lay->file_size && (rc = gap(arg, seg[i].src, p, seg[i].len)))
			set_err(&s, rc);
		for (uint64_t o = 0; !src_sha256 && o < seg[i].len && !failed(&s); o += CHUNK)
			sha256_update(&sh, p + o, seg[i].len - o < CHUNK ? seg[i].len - o : CHUNK);
	}
	for (int i = 0; i < nt; i++)
		pthread_join(thr[i], NULL);
	nt = 0;
	if ((rc = s.err))
		goto out;
	/* padding is zero in a pack: write it, whatever the file held */
	for (size_t j = 0; j < lay->nstored && !rc; j++) {
		size_t ti = lay->order[j];
		uint64_t e = lay->off[ti] + ci->t[ti].len, pe = align_up(e);
		if (ci->t[ti].len && pe > e && e < lay->table_off)
			rc = pwrite_all(fd, blk, (size_t)(pe - e), e);
	}
	build_header(lay, blk);
	if (rc || (rc = pwrite_all(fd, blk, PACK_ALIGN, 0)) ||
	    (rc = write_index(fd, ci, lay, blk, s.digest, out->root)))
		goto out;
	munmap(map, (size_t)psize);
	map = MAP_FAILED;
	/* Until the cut, the file still holds every source byte (a killed
	 * pull finds it, verifies it and converts it again); after it, only
	 * the pack and the recipe do, and the caller must record them before
	 * a kill costs a download. Syncing first keeps that window short. */
	if (fdatasync(fd) < 0) {
		rc = md_fail(errno == ENOSPC ? MD_ENOSPC : MD_EIO, "pack: fsync: %s", strerror(errno));
		goto out;
	}
	if (ftruncate(fd, (off_t)lay->file_size) < 0) {
		rc = md_fail(MD_EIO, "pack: cannot cut the placed file: %s", strerror(errno));
		goto out;
	}
	finish_written(out, src_sha256, &sh, lay->file_size);
out:
	for (int i = 0; i < nt; i++)
		pthread_join(thr[i], NULL);
	wstate_free(&s, &sh);
	free(blk);
	free(seg);
	if (map != MAP_FAILED)
		munmap(map, (size_t)psize);
	return rc;
}

/* ---- reader ---- */

struct pack {
	size_t n;
	uint32_t version;        /* 1: SHA-256 tensor digests, 2: XXH3-128 */
	struct pack_tensor *t;
	size_t nrefs;
	uint8_t (*refs)[32];     /* [nrefs] roots of the packs referred to */
	char *names;             /* NUL-terminated names, back to back */
	size_t *by_name;         /* [n] indices sorted by name */
	char format[16];
	json_t *meta;
	uint64_t file_size, src_size, data_end;
	uint8_t root[32];
};

struct rsrc {
	int fd;
	const uint8_t *mem;
	uint64_t size;
};

static int rs_read(const struct rsrc *s, void *buf, size_t n, uint64_t off)
{
	if (off > s->size || n > s->size - off)
		return md_fail(MD_ECORRUPT, "pack: truncated");
	if (s->mem) {
		memcpy(buf, s->mem + off, n);
		return 0;
	}
	ssize_t r = util_pread_full(s->fd, buf, n, (off_t)off);
	if (r < 0)
		return md_fail(MD_EIO, "pack: read error at byte %llu", (unsigned long long)off);
	if ((size_t)r != n)
		return md_fail(MD_ECORRUPT, "pack: truncated at byte %llu",
			       (unsigned long long)(off + (uint64_t)r));
	return 0;
}

void pack_close(struct pack *p)
{
	if (!p)
		return;
	free(p->t);
	free(p->refs);
	free(p->names);
	free(p->by_name);
	json_decref(p->meta);
	free(p);
}

static const struct pack *sort_p;

static int cmp_pname(const void *a, const void *b)
{
	return strcmp(sort_p->t[*(const size_t *)a].name, sort_p->t[*(const size_t *)b].name);
}

static int cmp_poff(const void *a, const void *b)
{
	const struct pack_tensor *x = &sort_p->t[*(const size_t *)a],
				 *y = &sort_p->t[*(const size_t *)b];
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->length != y->length)
		return x->length < y->length ? -1 : 1;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	return i < j ? -1 : i > j;
}

static int check_data(const struct rsrc *s, struct pack *p, const size_t *stored, size_t m,
		      uint64_t table_off)
{
	uint8_t *buf = NULL;
	int rc = 0;
	if (!s->mem && !(buf = malloc(CHUNK)))
		return MD_ENOMEM;
	uint64_t pos = PACK_ALIGN;
	for (size_t k = 0; k <= m && !rc; k++) {
		uint64_t next = k < m ? p->t[stored[k]].offset : table_off;
		/* padding between pos and next must be zero */
		for (uint64_t o = pos; o < next && !rc;) {
			size_t n = next - o < CHUNK ? (size_t)(next - o) : CHUNK;
			const uint8_t *d = s->mem ? s->mem + o : buf;
			if (!s->mem && (rc = rs_read(s, buf, n, o)))
				break;
			if (!all_zero(d, n))
				rc = md_fail(MD_ECORRUPT, "pack: nonzero padding near byte %llu",
					     (unsigned long long)o);
			o += n;
		}
		if (rc || k == m)
			break;
		const struct pack_tensor *t = &p->t[stored[k]];
		struct tdigest h;
		uint8_t d[32];
		if (tdigest_init(&h, p->version)) {
			rc = MD_ENOMEM;
			break;
		}
		for (uint64_t o = 0; o < t->length;) {
			size_t n = t->length - o < CHUNK ? (size_t)(t->length - o) : CHUNK;
			if (s->mem) {
				tdigest_update(&h, s->mem + t->offset + o, n);
			} else {
				if ((rc = rs_read(s, buf, n, t->offset + o)))
					break;
				tdigest_update(&h, buf, n);
			}
			o += n;
		}
		if (rc) {
			tdigest_free(&h);
			break;
		}
		tdigest_final(&h, d);
		if (memcmp(d, t->digest, 32))
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): digest mismatch", stored[k],
				     t->name);
		pos = t->offset + t->length;
	}
	free(buf);
	return rc;
}

static int open_impl(const struct rsrc *s, unsigned flags, struct pack **out)
{
	uint8_t h[PACK_HDR_SIZE];
	uint8_t *idx = NULL, *pad = NULL;
	size_t *stored = NULL;
	struct pack *p = NULL;
	int rc;
	if (s->size < PACK_ALIGN + PACK_TRAILER)
		return md_fail(MD_ECORRUPT, "pack: file of %llu bytes is too short",
			       (unsigned long long)s->size);
	if ((rc = rs_read(s, h, PACK_HDR_SIZE, 0)))
		return rc;
	if (memcmp(h, MAGIC, 8))
		return md_fail(MD_ECORRUPT, "pack: bad magic");
	uint32_t version = rd32(h + 8);
	if (version < 1 || version > PACK_VERSION)
		return md_fail(MD_EUNSUP, "pack: version %u (this reader knows 1 to %u)", version,
			       PACK_VERSION);
	uint32_t hflags = rd32(h + 12);
	if (hflags & ~PACK_F_REFS)
		return md_fail(MD_ECORRUPT, "pack: unknown flags %#x", hflags);
	char fmt[17] = { 0 };
	memcpy(fmt, h + 16, 16);
	if (!format_ok(fmt) || !all_zero(h + 16 + strlen(fmt), 16 - strlen(fmt)))
		return md_fail(MD_ECORRUPT, "pack: bad format name");
	uint64_t nt = rd64(h + 32), fsize = rd64(h + 40), doff = rd64(h + 48),
		 dend = rd64(h + 56), toff = rd64(h + 64), soff = rd64(h + 72),
		 slen = rd64(h + 80), moff = rd64(h + 88), mlen = rd64(h + 96),
		 srcsize = rd64(h + 104), nrefs = rd64(h + 112);
	if (!all_zero(h + 120, 8))
		return md_fail(MD_ECORRUPT, "pack: reserved header bytes are not zero");
	if ((hflags & PACK_F_REFS) ? nrefs == 0 || nrefs > PACK_MAX_REFS : nrefs != 0)
		return md_fail(MD_ECORRUPT, "pack: %llu referenced packs with flags %#x",
			       (unsigned long long)nrefs, hflags);
	if (nt > CONV_MAX_TENSORS)
		return md_fail(MD_ETOOBIG, "pack: %llu tensors (at most %d)", (unsigned long long)nt,
			       CONV_MAX_TENSORS);
	if (slen > PACK_MAX_STRTAB || mlen > (uint64_t)GGUF_MAX_META + 8 || mlen < 8)
		return md_fail(MD_ETOOBIG, "pack: string table or metadata too large");
	if (fsize != s->size)
		return md_fail(MD_ECORRUPT, "pack: header says %llu bytes, file has %llu",
			       (unsigned long long)fsize, (unsigned long long)s->size);
	if (doff != PACK_ALIGN || dend < PACK_ALIGN || dend > fsize ||
	    toff != align_up(dend) || soff != toff + nt * PACK_ENTRY || moff != soff + slen ||
	    soff < toff || moff > fsize || mlen > fsize - moff ||
	    fsize - moff - mlen != PACK_TRAILER + 32 * nrefs)
		return md_fail(MD_ECORRUPT, "pack: section offsets are inconsistent");
	/* header padding */
	if (!(pad = malloc(PACK_ALIGN - PACK_HDR_SIZE)))
		return MD_ENOMEM;
	if ((rc = rs_read(s, pad, PACK_ALIGN - PACK_HDR_SIZE, PACK_HDR_SIZE)))
		goto fail;
	if (!all_zero(pad, PACK_ALIGN - PACK_HDR_SIZE)) {
		rc = md_fail(MD_ECORRUPT, "pack: nonzero bytes after the header");
		goto fail;
	}
	size_t ilen = (size_t)(fsize - toff);
	if (!(idx = malloc(ilen))) {
		rc = MD_ENOMEM;
		goto fail;
	}
	if ((rc = rs_read(s, idx, ilen, toff)))
		goto fail;
	const uint8_t *tab = idx, *str = idx + nt * PACK_ENTRY, *meta = str + slen,
		      *tr = idx + ilen - PACK_TRAILER, *refs = tr - 32 * nrefs;
	if (memcmp(tr, TMAGIC, 8) || rd64(tr + 8) != nt || !all_zero(tr + 48, 16)) {
		rc = md_fail(MD_ECORRUPT, "pack: bad trailer");
		goto fail;
	}
	uint8_t root[32];
	if ((rc = root_digest(h, idx, ilen - PACK_TRAILER, root)))
		goto fail;
	if (memcmp(root, tr + 16, 32)) {
		rc = md_fail(MD_ECORRUPT, "pack: root digest mismatch");
		goto fail;
	}
	if (!(p = calloc(1, sizeof *p)) || !(p->t = calloc(nt ? nt : 1, sizeof *p->t)) ||
	    !(p->by_name = calloc(nt ? nt : 1, sizeof *p->by_name)) ||
	    !(stored = calloc(nt ? nt : 1, sizeof *stored)) ||
	    !(p->refs = calloc(nrefs ? nrefs : 1, sizeof *p->refs)) ||
	    !(p->names = malloc(slen + nt + 1))) {
		rc = MD_ENOMEM;
		goto fail;
	}
	p->n = nt;
	p->version = version;
	memcpy(p->format, fmt, 16);
	p->file_size = fsize;
	p->src_size = srcsize;
	p->data_end = dend;
	memcpy(p->root, root, 32);
	p->nrefs = nrefs;
	memcpy(p->refs, refs, 32 * nrefs);
	for (size_t k = 0; k < nrefs; k++)
		for (size_t j = 0; j < k; j++)
			if (!memcmp(p->refs[j], p->refs[k], 32)) {
				rc = md_fail(MD_ECORRUPT, "pack: referenced pack %zu is listed twice",
					     k + 1);
				goto fail;
			}
	uint64_t used = 0;   /* bit k-1: ref k has an entry */
	size_t npos = 0, m = 0;
	uint64_t spos = 0;
	for (size_t i = 0; i < nt; i++) {
		const uint8_t *e = tab + i * PACK_ENTRY;
		struct pack_tensor *t = &p->t[i];
		uint32_t no = rd32(e), nl = rd32(e + 4);
		/* names are stored back to back in table order */
		if (nl == 0 || nl > CONV_MAX_NAME || no != spos || nl > slen - no ||
		    !conv_utf8_ok((const char *)str + no, nl)) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu: bad name", i);
			goto fail;
		}
		memcpy(p->names + npos, str + no, nl);
		p->names[npos + nl] = 0;
		t->name = p->names + npos;
		npos += nl + 1;
		spos += nl;
		t->dtype = rd32(e + 8);
		t->ndim = rd32(e + 12);
		if (t->ndim > CONV_MAX_DIMS) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): %u dimensions", i, t->name,
				     t->ndim);
			goto fail;
		}
		for (uint32_t d = 0; d < CONV_MAX_DIMS; d++) {
			uint64_t v = rd64(e + 16 + 8 * d);
			if (d >= t->ndim && v) {
				rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): unused dimension "
					     "not zero", i, t->name);
				goto fail;
			}
			if (d < t->ndim)
				t->shape[d] = v;
		}
		t->offset = rd64(e + 80);
		t->length = rd64(e + 88);
		t->src_off = rd64(e + 96);
		t->alias = (int64_t)rd64(e + 104);
		memcpy(t->digest, e + 112, 32);
		t->ref = rd32(e + 144);
		if (!all_zero(e + 148, 12) ||
		    !all_zero(e + 112 + tdigest_len(version), TDIGEST_SIZE - tdigest_len(version))) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): reserved bytes not zero", i,
				     t->name);
			goto fail;
		}
		uint64_t want;
		if (!conv_dtype_known(t->dtype)) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): unknown dtype %u", i, t->name,
				     t->dtype);
			goto fail;
		}
		if ((rc = conv_tensor_nbytes(t->dtype, t->ndim, t->shape, &want)) ||
		    want != t->length) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): length %llu does not match "
				     "dtype and shape", i, t->name, (unsigned long long)t->length);
			goto fail;
		}
		if (t->src_off > srcsize || t->length > srcsize - t->src_off) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): source range past the "
				     "source size", i, t->name);
			goto fail;
		}
		if (t->ref > nrefs || (t->ref && (t->offset < PACK_ALIGN ||
						   t->offset != align_up(t->offset) ||
						   t->length > UINT64_MAX - t->offset))) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): bad reference %u at %llu", i,
				     t->name, t->ref, (unsigned long long)t->offset);
			goto fail;
		}
		if (t->ref)
			used |= 1ull << (t->ref - 1);
		if (t->alias != -1) {
			const struct pack_tensor *a;
			if (t->alias < 0 || (uint64_t)t->alias >= i ||
			    (a = &p->t[t->alias], a->alias != -1 || a->offset != t->offset ||
			     a->ref != t->ref ||
			     a->length != t->length || memcmp(a->digest, t->digest, 32))) {
				rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): bad alias %lld", i,
					     t->name, (long long)t->alias);
				goto fail;
			}
		} else if (!t->ref) {
			stored[m++] = i;
		}
		p->by_name[i] = i;
	}
	if (nrefs && used != (nrefs == 64 ? ~0ull : (1ull << nrefs) - 1)) {
		rc = md_fail(MD_ECORRUPT, "pack: a referenced pack is not used by any tensor");
		goto fail;
	}
	if (spos != slen) {
		rc = md_fail(MD_ECORRUPT, "pack: string table has %llu unused bytes",
			     (unsigned long long)(slen - spos));
		goto fail;
	}
	pthread_mutex_lock(&sort_mu);
	sort_p = p;
	qsort(p->by_name, nt, sizeof *p->by_name, cmp_pname);
	qsort(stored, m, sizeof *stored, cmp_poff);
	pthread_mutex_unlock(&sort_mu);
	for (size_t i = 1; i < nt; i++)
		if (!strcmp(p->t[p->by_name[i - 1]].name, p->t[p->by_name[i]].name)) {
			rc = md_fail(MD_ECORRUPT, "pack: duplicate tensor name %s",
				     p->t[p->by_name[i]].name);
			goto fail;
		}
	uint64_t pos = PACK_ALIGN, end = PACK_ALIGN;
	for (size_t k = 0; k < m; k++) {
		const struct pack_tensor *t = &p->t[stored[k]];
		if (t->offset != pos || t->offset > dend || t->length > dend - t->offset) {
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): offset %llu, expected %llu",
				     stored[k], t->name, (unsigned long long)t->offset,
				     (unsigned long long)pos);
			goto fail;
		}
		end = t->offset + t->length;
		pos = align_up(end);
	}
	if (end != dend) {
		rc = md_fail(MD_ECORRUPT, "pack: data ends at %llu, header says %llu",
			     (unsigned long long)end, (unsigned long long)dend);
		goto fail;
	}
	if (flags & PACK_SKIP_META) {
		if (!(p->meta = json_object())) {
			rc = MD_ENOMEM;
			goto fail;
		}
	} else {
		struct gguf_cur c;
		uint64_t count = rd64(meta);
		if ((rc = gguf_cur_init(&c, -1, meta, 8, mlen, "pack: metadata")))
			goto fail;
		rc = gguf_meta_read(&c, count, &p->meta);
		if (!rc && c.pos != mlen)
			rc = md_fail(MD_ECORRUPT, "pack: %llu bytes after the metadata records",
				     (unsigned long long)(mlen - c.pos));
		gguf_cur_free(&c);
		if (rc)
			goto fail;
	}
	if ((flags & PACK_VERIFY_DATA) && (rc = check_data(s, p, stored, m, toff)))
		goto fail;
	free(idx);
	free(pad);
	free(stored);
	*out = p;
	return 0;
fail:
	free(idx);
	free(pad);
	free(stored);
	pack_close(p);
	return rc;
}

int pack_open(int fd, unsigned flags, struct pack **out)
{
	struct stat st;
	if (fstat(fd, &st))
		return md_fail(MD_EIO, "pack: fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return md_fail(MD_EINVAL, "pack: not a regular file");
	struct rsrc s = { fd, NULL, (uint64_t)st.st_size };
	return open_impl(&s, flags, out);
}

int pack_open_mem(const void *p, size_t n, unsigned flags, struct pack **out)
{
	struct rsrc s = { -1, p, n };
	return open_impl(&s, flags, out);
}

size_t pack_count(const struct pack *p) { return p->n; }
const struct pack_tensor *pack_tensor(const struct pack *p, size_t i)
{
	return i < p->n ? &p->t[i] : NULL;
}
const char *pack_format(const struct pack *p) { return p->format; }
const json_t *pack_meta(const struct pack *p) { return p->meta; }
uint64_t pack_file_size(const struct pack *p) { return p->file_size; }
uint64_t pack_src_size(const struct pack *p) { return p->src_size; }
uint64_t pack_data_end(const struct pack *p) { return p->data_end; }
const uint8_t *pack_root(const struct pack *p) { return p->root; }
uint32_t pack_version(const struct pack *p) { return p->version; }
size_t pack_nrefs(const struct pack *p) { return p->nrefs; }
const uint8_t *pack_ref(const struct pack *p, size_t k)
{
	return k >= 1 && k <= p->nrefs ? p->refs[k - 1] : NULL;
}

const struct pack_tensor *pack_find(const struct pack *p, const char *name)
{
	size_t lo = 0, hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, p->t[p->by_name[mid]].name);
		if (!c)
			return &p->t[p->by_name[mid]];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- tensors stored once across packs ---- */

/* Indices of p's own stored tensors (ref 0, alias -1) sorted by offset;
 * malloc'd. */
static size_t *local_by_offset(const struct pack *p, size_t *m)
{
	size_t *ix = malloc((p->n ? p->n : 1) * sizeof *ix);
	if (!ix)
		return NULL;
	*m = 0;
	for (size_t i = 0; i < p->n; i++)
		if (!p->t[i].ref && p->t[i].alias == -1)
			ix[(*m)++] = i;
	pthread_mutex_lock(&sort_mu);
	sort_p = p;
	qsort(ix, *m, sizeof *ix, cmp_poff);
	pthread_mutex_unlock(&sort_mu);
	return ix;
}

int pack_check_ref(const struct pack *p, size_t k, const struct pack *q)
{
	if (k < 1 || k > p->nrefs || memcmp(p->refs[k - 1], q->root, 32))
		return md_fail(MD_EINVAL, "pack: not referenced pack %zu", k);
	if (q->version != p->version)   /* digests of one algorithm only compare */
		return md_fail(MD_ECORRUPT, "pack: referenced pack %zu is of version %u, not %u",
			       k, q->version, p->version);
	size_t m, *ix = local_by_offset(q, &m);
	if (!ix)
		return MD_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < p->n && !rc; i++) {
		const struct pack_tensor *t = &p->t[i];
		if (t->ref != k)
			continue;
		size_t lo = 0, hi = m;
		while (lo < hi) {   /* first local tensor at or after t->offset */
			size_t mid = lo + (hi - lo) / 2;
			if (q->t[ix[mid]].offset < t->offset)
				lo = mid + 1;
			else
				hi = mid;
		}
		int ok = 0;
		for (; lo < m && q->t[ix[lo]].offset == t->offset && !ok; lo++) {
			const struct pack_tensor *u = &q->t[ix[lo]];
			ok = u->length == t->length && !memcmp(u->digest, t->digest, 32);
		}
		if (!ok)
			rc = md_fail(MD_ECORRUPT, "pack: tensor %zu (%s): referenced pack %zu has no "
				     "such tensor at %llu", i, t->name, k,
				     (unsigned long long)t->offset);
	}
	free(ix);
	return rc;
}

int pack_share_write(int in_fd, const struct pack *p, const struct pack_share *sh, int out_fd,
		     struct pack_move **moves, size_t *nmoves, struct pack_written *out)
{
	uint8_t h[PACK_HDR_SIZE];
	uint8_t *idx = NULL;
	uint64_t *noff = NULL;
	uint32_t *nref = NULL;
	size_t m = 0, *ix = NULL;
	struct pack_move *mv = NULL;
	int rc = 0;
	*moves = NULL;
	*nmoves = 0;
	memset(out, 0, sizeof *out);
	if (p->nrefs || !sh->nrefs || sh->nrefs > PACK_MAX_REFS)
		return md_fail(MD_EINVAL, "pack: cannot share: bad reference count");
	if (util_pread_full(in_fd, h, sizeof h, 0) != (ssize_t)sizeof h)
		return md_fail(MD_EIO, "pack: cannot read the header");
	uint64_t otoff = rd64(h + 64), slen = rd64(h + 80), moff = rd64(h + 88),
		 mlen = rd64(h + 96);
	if (rd64(h + 40) != p->file_size || slen > PACK_MAX_STRTAB || mlen > p->file_size ||
	    otoff > p->file_size || moff > p->file_size)
		return md_fail(MD_ECORRUPT, "pack: changed since it was opened");
	size_t n = p->n, tl = n * PACK_ENTRY;
	if (!(noff = calloc(n ? n : 1, sizeof *noff)) || !(nref = calloc(n ? n : 1, sizeof *nref)) ||
	    !(ix = local_by_offset(p, &m)) || !(mv = calloc(m ? m : 1, sizeof *mv))) {
		rc = MD_ENOMEM;
		goto out;
	}
	uint64_t pos = PACK_ALIGN, end = PACK_ALIGN, used = 0;
	for (size_t k = 0; k < m; k++) {
		size_t i = ix[k];
		const struct pack_tensor *t = &p->t[i];
		if (sh->ref[i] > sh->nrefs ||
		    (sh->ref[i] && (sh->off[i] < PACK_ALIGN || sh->off[i] != align_up(sh->off[i])))) {
			rc = md_fail(MD_EINVAL, "pack: cannot share tensor %s", t->name);
			goto out;
		}
		nref[i] = sh->ref[i];
		if (nref[i]) {
			noff[i] = sh->off[i];
			used |= 1ull << (nref[i] - 1);
		} else {
			noff[i] = pos;
			end = pos + t->length;
			pos = align_up(end);
		}
		mv[k] = (struct pack_move){ t->offset, t->length, nref[i], noff[i] };
	}
	if (used != (sh->nrefs == 64 ? ~0ull : (1ull << sh->nrefs) - 1)) {
		rc = md_fail(MD_EINVAL, "pack: cannot share: a referenced pack is unused");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (p->t[i].alias >= 0) {
			noff[i] = noff[p->t[i].alias];
			nref[i] = nref[p->t[i].alias];
		}
	uint64_t dend = end, toff = align_up(dend), soff = toff + tl, nmoff = soff + slen,
		 roff = nmoff + mlen, fsize = roff + 32 * sh->nrefs + PACK_TRAILER;
	size_t ilen = (size_t)(fsize - toff);
	if (!(idx = calloc(1, ilen))) {
		rc = MD_ENOMEM;
		goto out;
	}
	/* entries, names and metadata as they were, entries re-pointed */
	if (util_pread_full(in_fd, idx, tl + slen, (off_t)otoff) != (ssize_t)(tl + slen) ||
	    util_pread_full(in_fd, idx + tl + slen, mlen, (off_t)moff) != (ssize_t)mlen) {
		rc = md_fail(MD_EIO, "pack: cannot read the index");
		goto out;
	}
	/* the bytes read now are the ones p was validated from */
	uint8_t was[32];
	if ((rc = root_digest(h, idx, tl + slen + mlen, was)))
		goto out;
	if (memcmp(was, p->root, 32)) {
		rc = md_fail(MD_ECORRUPT, "pack: changed since it was opened");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		le64(idx + i * PACK_ENTRY + 80, noff[i]);
		le32(idx + i * PACK_ENTRY + 144, nref[i]);
	}
	memcpy(idx + tl + slen + mlen, sh->refs, 32 * sh->nrefs);
	le32(h + 12, PACK_F_REFS);
	le64(h + 40, fsize);
	le64(h + 56, dend);
	le64(h + 64, toff);
	le64(h + 72, soff);
	le64(h + 88, nmoff);
	le64(h + 112, sh->nrefs);
	if ((rc = seal(h, idx, ilen, n, out->root)))
		goto out;
	if (ftruncate(out_fd, (off_t)fsize) < 0) {
		rc = md_fail(errno == ENOSPC || errno == EFBIG ? MD_ENOSPC : MD_EIO,
			     "pack: cannot size the pack: %s", strerror(errno));
		goto out;
	}
	for (size_t k = 0; k < m && !rc; k++)
		if (!mv[k].ref && mv[k].len)
			if ((rc = util_copy_range(in_fd, mv[k].from, out_fd, mv[k].to, mv[k].len)))
				rc = md_fail(rc, "pack: copy: %s", md_strerror(rc));
	if (rc || (rc = pwrite_all(out_fd, h, PACK_HDR_SIZE, 0)) ||
	    (rc = pwrite_all(out_fd, idx, ilen, toff)))
		goto out;
	out->size = fsize;
	*moves = mv;
	*nmoves = m;
	mv = NULL;
out:
	free(idx);
	free(noff);
	free(nref);
	free(ix);
	free(mv);
	return rc;
}
