/* sources/xfer.c — see xfer.h and docs/pull.md. */
#include "sources/xfer.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/sha256.h"
#include "common/util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PARTIAL_DIR ".partial"
#define MAX_HOPS 10
#define MAX_URL 8192           /* cap on a redirect target we follow */
#define MAX_HDR_VAL 256        /* cap on each response header we keep */
#define MAX_ERR_BODY 65536     /* cap on an error body we read and drop */
#define MAX_STATE_BYTES (48u << 20) /* cap on a state file we read (MAX_CHUNKS lines) */
#define MAX_CHUNKS 1000000     /* cap on chunks per file */
#define HASH_BLOCK (4u << 20)  /* bytes hashed per read */
#define MAX_FILE_SIZE (4ull << 40) /* 4 TiB: refuse larger items */
#define XFER_MAX_HASHERS 8

enum { F_IDLE, F_RUN, F_VERIFY, F_DONE, F_FAILED };

struct chunk {
	uint64_t start, len;
	_Atomic uint64_t done; /* contiguous bytes on disk from start */
	int active;            /* claimed by a running transfer */
	int fails;             /* consecutive failures */
	double not_before;     /* util_mono() time before which not to start */
};

struct file {
	struct xfer_item *it;
	char *part_path, *state_path, *final_path;
	int fd;
	struct chunk *ch;
	size_t nch;
	uint64_t cs;      /* its chunk size (file_chunk) */
	int state;
	int active;       /* running transfers on this file */
	int verify_fails;
	int no_range;     /* server ignored Range: fetch sequentially */
	int in_place;     /* fd is the final file found already there */
	char place_id[65];/* placed file (it->place): sha256 of its pieces, "" if not */
	int dirty;        /* state file out of date */
	char *redir;      /* cached redirect target (after the hub) */
	/* hashing, shared with the hasher thread under run.hm */
	int hash_on;      /* hasher may read fd */
	int complete;     /* every byte is on disk */
	int hash_ready;   /* digests below are final */
	int hash_busy;    /* a thread is feeding the digests (outside the lock) */
	int hash_err;     /* read error (errno) */
	uint64_t hashed;
	struct sha256 h256;
	EVP_MD_CTX *h1;
	char got256[65], got1[41];
};

struct conn {
	CURL *e;
	struct run *r;
	struct file *f;
	size_t c0, c1;       /* claimed chunks, inclusive */
	uint64_t pos, end;   /* next offset to write, end (exclusive) */
	uint64_t range_start;/* offset requested (Range), 0 if none */
	uint64_t body_off;   /* file offset of the next body byte */
	uint64_t got;        /* payload bytes written in this attempt */
	char *url;           /* current request URL (owned) */
	int hops;
	int busy;
	int paused;          /* by the rate cap */
	long status;
	int hdr_done;        /* end of headers seen for the final response */
	int over;            /* chunk range complete, surplus body dropped */
	int fatal;           /* MD_E* from a local/protocol error, 0 none */
	char fatal_msg[300];
	uint64_t err_body;
	char retry_after[MAX_HDR_VAL], crange[MAX_HDR_VAL], errcode[MAX_HDR_VAL];
	char curlerr[CURL_ERROR_SIZE];
};

struct run {
	const char *dir;
	const struct xfer_opts *o;
	struct file *files;
	size_t nfiles;
	struct conn *conns;
	int nconns, nactive;
	CURLM *m;
	struct curl_slist *hdr_auth, *hdr_plain;
	uint64_t chunk_size;
	int ppf;
	int fail_code;
	char fail_msg[512];
	unsigned seed;
	double tokens, last_refill; /* rate cap bucket (bytes) */
	uint64_t unflushed;         /* bytes written since the resume state was */
	int rr;
	/* hashing threads */
	pthread_t ht[XFER_MAX_HASHERS];
	int ht_started;      /* how many run */
	int inline_hash;     /* the loop hashes in-order bytes itself */
	pthread_mutex_t hm;
	pthread_cond_t hc;
	int hstop;
};

/* ---------- small helpers ---------- */

static void set_fail(struct run *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_fail(struct run *r, int code, const char *fmt, ...)
{
	if (r->fail_code)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->fail_msg, sizeof r->fail_msg, fmt, ap);
	va_end(ap);
	r->fail_code = code;
}

static long dflt(long v, long d) { return v > 0 ? v : d; }

/* Once per process, on first use: libcurl (and the TLS library under it)
 * is initialised only when a transfer is about to happen, so an idle modeld
 * does not carry its pages. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : MD_ENOMEM;
}

static char *ca_file;

int xfer_set_ca_file(const char *path)
{
	char *p = path ? strdup(path) : NULL;
	if (path && !p)
		return MD_ENOMEM;
	free(ca_file);
	ca_file = p;
	return 0;
}

void xfer_apply_tls(void *curl)
{
	if (ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
}

char *xfer_basic_auth(const char *userpass)
{
	size_t n = strlen(userpass);
	char *h = NULL;
	unsigned char *b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (!b64)
		return NULL;
	EVP_EncodeBlock(b64, (const unsigned char *)userpass, (int)n);
	if (asprintf(&h, "Authorization: Basic %s", b64) < 0)
		h = NULL;
	explicit_bzero(b64, strlen((char *)b64));
	free(b64);
	return h;
}

int xfer_global_init(void)
{
	int rc = md_lib_need(MD_LIB_CURL, "transfer");
	if (rc)
		return rc;
	pthread_once(&global_once, global_init_once);
	return global_rc ? md_fail(global_rc, "libcurl initialisation failed") : 0;
}

static int origin_of(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u = curl_url();
	if (!u)
		return -1;
	char *p = NULL;
	*scheme = *host = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		curl_free(*scheme);
		curl_free(*host);
		curl_url_cleanup(u);
		return -1;
	}
	*port = strtol(p, NULL, 10);
	curl_free(p);
	curl_url_cleanup(u);
	return 0;
}

int xfer_same_origin(const char *a, const char *b)
{
	if (!a || !b)
		return 0;
	char *s1, *h1, *s2, *h2;
	long p1, p2;
	if (origin_of(a, &s1, &h1, &p1) < 0)
		return 0;
	if (origin_of(b, &s2, &h2, &p2) < 0) {
		curl_free(s1);
		curl_free(h1);
		return 0;
	}
	int same = !strcasecmp(s1, s2) && !strcasecmp(h1, h2) && p1 == p2;
	curl_free(s1);
	curl_free(h1);
	curl_free(s2);
	curl_free(h2);
	return same;
}

long xfer_parse_retry_after(const char *v, long cap)
{
	if (!v)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (!*v)
		return -1;
	long s;
	if (*v >= '0' && *v <= '9') {
		char *end;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end || errno)
			return -1;
		s = x > cap ? cap : (long)x;
	} else {
		time_t t = curl_getdate(v, NULL);
		if (t == -1)
			return -1;
		time_t now = time(NULL);
		s = t <= now ? 0 : (t - now > cap ? cap : (long)(t - now));
	}
	return s < 0 ? 0 : s;
}

/* ---------- state files ---------- */

/* The state file's first lines: what the progress lines below them are of
 * (a loaded state must match them exactly). Returns its length. */
#define STATE_HEADER_MAX 400
static size_t state_header(const struct file *f, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
		"modeld-xfer-state 1\nsize %" PRIu64 "\nsha256 %s\nsha1 %s\nchunk %" PRIu64 "\nchunks %zu\n%s%s%s",
		f->it->size, f->it->sha256 ? f->it->sha256 : "-",
		f->it->blob_sha1 ? f->it->blob_sha1 : "-", f->cs, f->nch,
		f->place_id[0] ? "placed " : "", f->place_id, f->place_id[0] ? "\n" : "");
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The state file and its spare (see write_state). */
static void unlink_state(struct file *f)
{
	char tmp[PATH_MAX];
	unlink(f->state_path);
	if (snprintf(tmp, sizeof tmp, "%s.tmp", f->state_path) < (int)sizeof tmp)
		unlink(tmp);
}

/*
 * Rewrite f's state file: the new text goes into the spare (STATE.tmp, in
 * place, fixed-width numbers so its length never changes for a file), which
 * is then exchanged with STATE (renameat2 RENAME_EXCHANGE) and so keeps the
 * old state's blocks as the next spare. Once both exist, a state update
 * allocates nothing: a pull that filled the disk still records how far it
 * got, and the next run continues from there.
 */
static int write_state(struct run *r, struct file *f)
{
	if (f->in_place || f->fd < 0)
		return 0;
	if (!r->o->no_fsync && !f->it->no_fsync && fdatasync(f->fd) < 0)
		return md_fail(md_from_errno(errno), "%s: fdatasync: %s", f->it->dest, strerror(errno));
	size_t cap = STATE_HEADER_MAX + f->nch * 44;  /* a line: index, space, 20 digits, newline */
	char *buf = malloc(cap);
	if (!buf)
		return MD_ENOMEM;
	size_t n = state_header(f, buf, cap);
	for (size_t i = 0; i < f->nch; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%zu %020" PRIu64 "\n", i,
				      atomic_load(&f->ch[i].done));
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp", f->state_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	int rc = 0;
	struct stat st;
	if (fd < 0 || util_write_all(fd, buf, n) < 0 || fstat(fd, &st) < 0 ||
	    ((uint64_t)st.st_size > n && ftruncate(fd, (off_t)n) < 0) || close(fd) < 0) {
		rc = md_fail(md_from_errno(errno), "%s: resume state: %s", f->it->dest, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, f->state_path, RENAME_EXCHANGE) < 0 &&
		   rename(tmp, f->state_path) < 0) {
		/* no STATE yet (ENOENT), or a filesystem without exchange */
		rc = md_fail(md_from_errno(errno), "%s: resume state: %s", f->it->dest, strerror(errno));
	}
	free(buf);
	if (rc == 0)
		f->dirty = 0;
	return rc;
}

/* Load resume state into f->ch[].done. Returns 1 if loaded, 0 if absent or
 * unusable (the caller then starts from zero). */
static int load_state(struct file *f, uint64_t part_size)
{
	int fd = open(f->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= MAX_STATE_BYTES)
		buf = malloc((size_t)st.st_size + 2);
	if (!buf) {
		close(fd);
		return 0;
	}
	ssize_t n = util_read_full(fd, buf, (size_t)st.st_size + 1);
	close(fd);
	int ok = 0;
	if (n <= 0 || n > st.st_size)
		goto out;
	buf[n] = 0;
	char want[STATE_HEADER_MAX];
	size_t wl = state_header(f, want, sizeof want);
	if ((size_t)n < wl || memcmp(buf, want, wl))
		goto out;
	char *p = buf + wl;
	for (size_t i = 0; i < f->nch; i++) {
		char *end;
		errno = 0;
		unsigned long long idx = strtoull(p, &end, 10);
		if (errno || end == p || *end != ' ' || idx != i)
			goto out;
		p = end + 1;
		unsigned long long d = strtoull(p, &end, 10);
		if (errno || end == p || *end != '\n')
			goto out;
		p = end + 1;
		if (d > f->ch[i].len)
			goto out;
		/* never trust more bytes than the .part file holds */
		if (f->ch[i].start + d > part_size)
			d = part_size > f->ch[i].start ? part_size - f->ch[i].start : 0;
		atomic_store(&f->ch[i].done, d);
	}
	ok = *p == 0;
out:
	if (!ok)
		for (size_t i = 0; i < f->nch; i++)
			atomic_store(&f->ch[i].done, 0);
	free(buf);
	return ok;
}

/* ---------- placed files ---------- */

/* The piece of a placed file holding source offset off (pieces are in
 * source order and cover [0, size)). */
static const struct xfer_seg *piece(const struct file *f, uint64_t off)
{
	size_t lo = 0, hi = f->it->nplace;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->it->place[mid].src <= off)
			lo = mid;
		else
			hi = mid;
	}
	return &f->it->place[lo];
}

/* pwrite of source bytes [off, off+n) to where they go: 0 or an errno. */
static int place_write(struct file *f, const char *p, size_t n, uint64_t off)
{
	while (n) {
		size_t k = n;
		uint64_t at = off;
		if (f->it->place) {
			const struct xfer_seg *s = piece(f, off);
			at = s->dst + (off - s->src);
			if (k > s->src + s->len - off)
				k = (size_t)(s->src + s->len - off);
		}
		ssize_t w = pwrite(f->fd, p, k, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w, n -= (size_t)w, off += (uint64_t)w;
	}
	return 0;
}

/* pread of source bytes [off, off+n): n, or less at the end of the file,
 * or -1. */
static ssize_t place_read(struct file *f, int fd, uint8_t *buf, size_t n, uint64_t off)
{
	if (!f->it->place)
		return util_pread_full(fd, buf, n, (off_t)off);
	size_t done = 0;
	while (done < n) {
		const struct xfer_seg *s = piece(f, off);
		size_t k = n - done;
		if (k > s->src + s->len - off)
			k = (size_t)(s->src + s->len - off);
		ssize_t g = util_pread_full(fd, buf + done, k, (off_t)(s->dst + (off - s->src)));
		if (g < 0)
			return -1;
		done += (size_t)g;
		off += (uint64_t)g;
		if ((size_t)g < k)
			break;
	}
	return (ssize_t)done;
}

/* The size the file has on disk. */
static uint64_t disk_size(const struct file *f)
{
	return f->it->place ? f->it->placed_size : f->it->size;
}

static int cmp_dst(const void *a, const void *b)
{
	const struct xfer_seg *x = a, *y = b;
	return x->dst < y->dst ? -1 : x->dst > y->dst;
}

/* Empty the .part and give a placed one its size (its pieces land
 * anywhere in it): 0 or an errno. */
static int part_reset(struct file *f)
{
	if (ftruncate(f->fd, 0) < 0 ||
	    (f->it->place && ftruncate(f->fd, (off_t)f->it->placed_size) < 0))
		return errno;
	return 0;
}

/* Check an item's pieces and name them (place_id, in the state file). */
static int check_place(struct file *f)
{
	const struct xfer_item *it = f->it;
	f->place_id[0] = 0;
	if (!it->place)
		return 0;
	uint64_t pos = 0, cap = 3 * it->size + (64u << 20) + 8192;
	if (!it->nplace || it->nplace > XFER_MAX_PLACE || it->placed_size > cap)
		return md_fail(MD_EINVAL, "%s: bad placement", it->dest);
	struct xfer_seg *v = malloc(it->nplace * sizeof *v);
	struct sha256 h;
	if (!v || sha256_init(&h)) {
		free(v);
		return MD_ENOMEM;
	}
	int rc = 0;
	for (size_t i = 0; i < it->nplace && !rc; i++) {
		const struct xfer_seg *s = &it->place[i];
		if (s->src != pos || !s->len || s->len > it->size - pos ||
		    s->dst > it->placed_size || s->len > it->placed_size - s->dst)
			rc = md_fail(MD_EINVAL, "%s: bad placement", it->dest);
		pos += s->len;
		v[i] = *s;
		sha256_update(&h, s, sizeof *s);
	}
	if (!rc && pos != it->size)
		rc = md_fail(MD_EINVAL, "%s: bad placement", it->dest);
	/* disjoint on disk */
	if (!rc)
		qsort(v, it->nplace, sizeof *v, cmp_dst);
	for (size_t i = 1; i < it->nplace && !rc; i++)
		if (v[i - 1].dst + v[i - 1].len > v[i].dst)
			rc = md_fail(MD_EINVAL, "%s: bad placement", it->dest);
	uint8_t d[32];
	sha256_update(&h, &it->placed_size, sizeof it->placed_size);
	sha256_final(&h, d);
	util_hex(d, 32, f->place_id);
	free(v);
	return rc;
}

/* ---------- hashing ---------- */

static int hash_reset(struct file *f)
{
	sha256_free(&f->h256);
	if (sha256_init(&f->h256) < 0)
		return MD_ENOMEM;
	f->hashed = 0;
	f->hash_ready = 0;
	f->hash_err = 0;
	f->complete = 0;
	if (f->it->blob_sha1) {
		if (!f->h1)
			f->h1 = EVP_MD_CTX_new();
		if (!f->h1 || EVP_DigestInit_ex(f->h1, EVP_sha1(), NULL) != 1)
			return MD_ENOMEM;
		char pre[64];
		int k = snprintf(pre, sizeof pre, "blob %" PRIu64, f->it->size);
		EVP_DigestUpdate(f->h1, pre, (size_t)k + 1); /* includes the NUL */
	}
	return 0;
}

static uint64_t prefix_done(const struct file *f)
{
	uint64_t p = 0;
	for (size_t i = 0; i < f->nch; i++) {
		uint64_t d = atomic_load_explicit(&f->ch[i].done, memory_order_acquire);
		p += d;
		if (d < f->ch[i].len)
			break;
	}
	return p;
}

/*
 * Hashing threads: each takes a file nobody is hashing (hash_busy), reads
 * the next block of its on-disk prefix back from the page cache and feeds
 * the digests outside the lock; several threads hash several files at once.
 * When a file is complete and fully hashed, the digests are finished and
 * the data fdatasync'd (still marked busy), then hash_ready wakes the loop.
 */
static void *hasher(void *arg)
{
	struct run *r = arg;
	uint8_t *buf = malloc(HASH_BLOCK);
	pthread_mutex_lock(&r->hm);
	while (!r->hstop) {
		struct file *w = NULL;
		uint64_t avail = 0;
		for (size_t i = 0; buf && i < r->nfiles; i++) {
			struct file *f = &r->files[i];
			if (!f->hash_on || f->hash_ready || f->hash_busy)
				continue;
			uint64_t p = prefix_done(f);
			if (p > f->hashed || (f->complete && f->hashed == f->it->size)) {
				w = f;
				avail = p > f->hashed ? p - f->hashed : 0;
				break;
			}
		}
		if (!w) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->hc, &r->hm, &ts);
			continue;
		}
		w->hash_busy = 1;
		int fd = w->fd;
		if (avail) {
			size_t want = avail > HASH_BLOCK ? HASH_BLOCK : (size_t)avail;
			uint64_t off = w->hashed;
			pthread_mutex_unlock(&r->hm);
			ssize_t got = place_read(w, fd, buf, want, off);
			if (got == (ssize_t)want) {
				sha256_update(&w->h256, buf, want);
				if (w->h1)
					EVP_DigestUpdate(w->h1, buf, want);
			}
			pthread_mutex_lock(&r->hm);
			w->hash_busy = 0;
			if (got != (ssize_t)want) {
				w->hash_err = got < 0 ? EIO : EPIPE;
				w->hash_ready = 1;
				curl_multi_wakeup(r->m);
				continue;
			}
			w->hashed += want;
			continue;
		}
		/* complete and fully hashed: finish */
		pthread_mutex_unlock(&r->hm);
		uint8_t d[32];
		sha256_final(&w->h256, d);
		util_hex(d, 32, w->got256);
		if (w->h1) {
			unsigned len = 20;
			EVP_DigestFinal_ex(w->h1, d, &len);
			util_hex(d, 20, w->got1);
		}
		int e = 0;
		if (!r->o->no_fsync && !w->it->no_fsync && !w->in_place && fdatasync(fd) < 0)
			e = errno;
		pthread_mutex_lock(&r->hm);
		w->hash_err = e;
		w->hash_busy = 0;
		w->hash_ready = 1;
		curl_multi_wakeup(r->m);
	}
	pthread_mutex_unlock(&r->hm);
	free(buf);
	return NULL;
}

/* ---------- per-file setup ---------- */

static int dest_ok(const char *d)
{
	if (util_check_relpath(d) < 0)
		return MD_EREFUSED;
	size_t l = strlen(PARTIAL_DIR);
	if (!strncmp(d, PARTIAL_DIR, l) && (d[l] == 0 || d[l] == '/'))
		return md_fail(MD_EREFUSED, "%s: reserved name", d);
	return 0;
}

static int mkparents(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	char *s = strrchr(tmp, '/');
	if (!s)
		return 0;
	*s = 0;
	return util_mkdir_p(tmp, 0755);
}

/* Open (or create) the .part file and load its state; or notice a final
 * file already in place. */
static int file_open(struct run *r, struct file *f)
{
	struct stat st;
	int rc;
	if ((rc = hash_reset(f)) < 0)
		return rc;
	if (!f->in_place && f->verify_fails == 0 && stat(f->final_path, &st) == 0 &&
	    S_ISREG(st.st_mode) && (uint64_t)st.st_size == disk_size(f)) {
		f->fd = open(f->final_path, O_RDONLY | O_CLOEXEC);
		if (f->fd >= 0) {
			f->in_place = 1;
			for (size_t i = 0; i < f->nch; i++)
				atomic_store(&f->ch[i].done, f->ch[i].len);
			f->it->resumed = f->it->size;
			return 0;
		}
	}
	f->fd = open(f->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f->fd < 0)
		return md_fail(md_from_errno(errno), "%s: %s", f->it->dest, strerror(errno));
	if (fstat(f->fd, &st) < 0)
		return md_fail(MD_EIO, "%s: %s", f->it->dest, strerror(errno));
	/* a placed file is sized at once: a state is only trusted for a file
	 * of that size */
	if ((f->it->place && (uint64_t)st.st_size != f->it->placed_size) ||
	    !load_state(f, f->it->place ? f->it->size : (uint64_t)st.st_size)) {
		int e = st.st_size || f->it->place ? part_reset(f) : 0;
		if (e)
			return md_fail(md_from_errno(e), "%s: %s", f->it->dest, strerror(e));
		unlink_state(f);
		/* a file of several parts starting from zero gets its state
		 * and spare now, while there is room (write_state): failures
		 * here are not fatal, the state is rewritten every
		 * state_interval_ms */
		if (f->nch > 1 && write_state(r, f) == 0 && write_state(r, f) < 0)
			md_clearerr();
	}
	uint64_t have = 0;
	for (size_t i = 0; i < f->nch; i++)
		have += atomic_load(&f->ch[i].done);
	f->it->resumed = have;
	return 0;
}

static void file_discard(struct file *f)
{
	if (f->fd >= 0 && !f->in_place && part_reset(f)) {
		/* the bytes are reset below either way (a short placed file
		 * fails its digest) */
	}
	for (size_t i = 0; i < f->nch; i++) {
		atomic_store(&f->ch[i].done, 0);
		f->ch[i].fails = 0;
	}
	unlink_state(f);
	f->dirty = 0;
	f->it->resumed = 0;
}

/* ---------- transfers ---------- */

static size_t on_header(char *b, size_t sz, size_t nm, void *arg)
{
	struct conn *c = arg;
	size_t n = sz * nm;
	if (n >= 5 && !memcmp(b, "HTTP/", 5)) {
		const char *sp = memchr(b, ' ', n);
		c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		c->retry_after[0] = c->crange[0] = c->errcode[0] = 0;
		c->hdr_done = 0;
		return n;
	}
	if (n <= 2) { /* blank line ends a header block */
		if (c->status >= 200)
			c->hdr_done = 1;
		return n;
	}
	const char *colon = memchr(b, ':', n);
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - b);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	char *dst = NULL;
	if (kl == 11 && !strncasecmp(b, "retry-after", kl))
		dst = c->retry_after;
	else if (kl == 13 && !strncasecmp(b, "content-range", kl))
		dst = c->crange;
	else if (kl == 12 && !strncasecmp(b, "x-error-code", kl))
		dst = c->errcode;
	if (dst) {
		if (vl >= MAX_HDR_VAL)
			vl = MAX_HDR_VAL - 1;
		memcpy(dst, v, vl);
		dst[vl] = 0;
	}
	return n;
}

/* First body byte of a 2xx: check Content-Range and place body_off. */
static int body_start(struct conn *c)
{
	struct file *f = c->f;
	if (c->status == 206) {
		unsigned long long a, b, tot;
		char star;
		if (sscanf(c->crange, "bytes %llu-%llu/%llu", &a, &b, &tot) == 3) {
			if (tot != f->it->size) {
				c->fatal = MD_ECORRUPT;
				snprintf(c->fatal_msg, sizeof c->fatal_msg,
					 "%s: size mismatch (hub listed %" PRIu64 ", server has %llu)",
					 f->it->dest, f->it->size, tot);
				return -1;
			}
		} else if (sscanf(c->crange, "bytes %llu-%llu/%c", &a, &b, &star) != 3 || star != '*') {
			c->fatal = MD_EPROTO;
			snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s: bad Content-Range", f->it->dest);
			return -1;
		}
		if (a != c->range_start || b < a) {
			c->fatal = MD_EPROTO;
			snprintf(c->fatal_msg, sizeof c->fatal_msg,
				 "%s: Content-Range does not match the request", f->it->dest);
			return -1;
		}
		c->body_off = a;
	} else {
		c->body_off = 0;
		curl_off_t cl = -1;
		curl_easy_getinfo(c->e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (cl >= 0 && (uint64_t)cl != f->it->size) {
			c->fatal = MD_ECORRUPT;
			snprintf(c->fatal_msg, sizeof c->fatal_msg,
				 "%s: size mismatch (hub listed %" PRIu64 ", server sent %" PRId64 ")",
				 f->it->dest, f->it->size, (int64_t)cl);
			return -1;
		}
		if (c->range_start > 0 && !f->no_range)
			f->no_range = 1; /* server ignores Range: go sequential */
	}
	return 0;
}

static size_t on_body(char *b, size_t sz, size_t nm, void *arg)
{
	struct conn *c = arg;
	struct file *f = c->f;
	size_t n = sz * nm;
	if (c->status < 200 || c->status >= 300) {
		c->err_body += n;
		return c->err_body > MAX_ERR_BODY ? 0 : n;
	}
	if (c->body_off == UINT64_MAX && body_start(c) < 0)
		return 0;
	if (c->r->o->rate_limit) {
		if (c->r->tokens <= 0) {
			c->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		c->r->tokens -= (double)n;
	}
	size_t i = 0;
	if (c->body_off < c->pos) { /* bytes before what we want (200 to a Range) */
		uint64_t skip = c->pos - c->body_off;
		if (skip >= n) {
			c->body_off += n;
			return n;
		}
		i = (size_t)skip;
		c->body_off += skip;
	}
	if (c->body_off > c->pos) {
		c->fatal = MD_EPROTO;
		snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s: body out of order", f->it->dest);
		return 0;
	}
	size_t take = n - i;
	if (take > c->end - c->pos)
		take = (size_t)(c->end - c->pos);
	if (take) {
		int werr = place_write(f, b + i, take, c->pos);
		if (werr) {
			c->fatal = md_from_errno(werr);
			snprintf(c->fatal_msg, sizeof c->fatal_msg, "%s: write: %s", f->it->dest,
				 strerror(werr));
			return 0;
		}
		/* advance chunk progress over [pos, pos+take) */
		uint64_t s = c->pos, e = c->pos + take;
		size_t ci = c->c0; /* chunks are sorted and contiguous */
		while (ci < f->nch && f->ch[ci].start + f->ch[ci].len <= s)
			ci++;
		while (s < e && ci < f->nch) {
			struct chunk *ch = &f->ch[ci];
			uint64_t ce = ch->start + ch->len;
			uint64_t upto = (e < ce ? e : ce) - ch->start;
			if (upto > atomic_load(&ch->done))
				atomic_store_explicit(&ch->done, upto, memory_order_release);
			s = ce;
			ci++;
		}
		/* in-order bytes are hashed here, from the buffer, while hot;
		 * the hashing thread reads back only what arrived out of order */
		if (f->hash_on && c->r->inline_hash) {
			struct run *r = c->r;
			pthread_mutex_lock(&r->hm);
			if (!f->hash_busy && !f->hash_ready && f->hashed == c->pos) {
				f->hash_busy = 1;
				pthread_mutex_unlock(&r->hm);
				sha256_update(&f->h256, b + i, take);
				if (f->h1)
					EVP_DigestUpdate(f->h1, b + i, take);
				pthread_mutex_lock(&r->hm);
				f->hashed += take;
				f->hash_busy = 0;
			}
			pthread_mutex_unlock(&r->hm);
		}
		c->pos += take;
		c->body_off += take;
		c->got += take;
		c->r->unflushed += take;
		f->dirty = 1;
	}
	if (i + take < n) { /* surplus beyond what we asked for */
		c->over = 1;
		return 0;
	}
	return n;
}

static int conn_request(struct run *r, struct conn *c, const char *url)
{
	char *u = strdup(url);
	if (!u)
		return MD_ENOMEM;
	free(c->url);
	c->url = u;
	c->status = 0;
	c->hdr_done = 0;
	c->body_off = UINT64_MAX;
	c->err_body = 0;
	c->over = 0;
	c->fatal = 0;
	c->curlerr[0] = 0;
	c->retry_after[0] = c->crange[0] = c->errcode[0] = 0;
	CURL *e = c->e;
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	int auth = r->hdr_auth && xfer_same_origin(c->url, r->o->auth_origin);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, auth ? r->hdr_auth : r->hdr_plain);
	char range[64];
	c->range_start = c->pos;
	if (c->pos == 0 && c->end == c->f->it->size && c->f->no_range) {
		curl_easy_setopt(e, CURLOPT_RANGE, NULL);
	} else {
		if (c->f->no_range)
			snprintf(range, sizeof range, "%" PRIu64 "-", c->pos);
		else
			snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, c->pos, c->end - 1);
		curl_easy_setopt(e, CURLOPT_RANGE, range);
	}
	if (curl_multi_add_handle(r->m, e) != CURLM_OK)
		return md_fail(MD_ENOMEM, "curl_multi_add_handle failed");
	return 0;
}

/*
 * Bandwidth cap: a token bucket shared by all transfers, refilled in the
 * loop; a write callback that finds it empty pauses its transfer
 * (CURL_WRITEFUNC_PAUSE, curl keeps the bytes) and the loop resumes paused
 * transfers round-robin as tokens come back. Burst: 50 ms worth.
 */
static void refill(struct run *r, double now)
{
	if (!r->o->rate_limit)
		return;
	double rate = (double)r->o->rate_limit;
	r->tokens += (now - r->last_refill) * rate;
	if (r->tokens > rate * 0.05)
		r->tokens = rate * 0.05;
	r->last_refill = now;
	if (r->tokens <= 0)
		return;
	for (int k = 0; k < r->nconns && r->tokens > 0; k++) {
		struct conn *c = &r->conns[(r->rr + k) % r->nconns];
		if (c->busy && c->paused) {
			c->paused = 0;
			curl_easy_pause(c->e, CURLPAUSE_CONT); /* may call on_body */
		}
	}
	r->rr = (r->rr + 1) % r->nconns;
}

static int conn_init(struct run *r, struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->r = r;
	c->e = curl_easy_init();
	if (c->e)
		xfer_apply_tls(c->e);
	if (!c->e)
		return MD_ENOMEM;
	const struct xfer_opts *o = r->o;
	CURL *e = c->e;
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 o->http1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : "modeld/0.1");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, dflt(o->connect_timeout_s, 30));
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, dflt(o->stall_seconds, 60));
	long low = dflt(o->stall_bytes, 1024);
	if (o->rate_limit && (uint64_t)low * 2 * (uint64_t)r->nconns > o->rate_limit)
		low = (long)(o->rate_limit / 2 / (uint64_t)r->nconns); /* a capped transfer is no stall */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, low > 0 ? low : 1);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L * 1024); /* fewer, larger reads */
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, NULL); /* identity: bytes as stored */
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curlerr);
	return 0;
}

/* Pick the next chunk range to fetch; start a transfer. 1 started, 0 none. */
static int schedule_one(struct run *r, double now, double *next_wake)
{
	struct conn *c = NULL;
	for (int i = 0; i < r->nconns; i++)
		if (!r->conns[i].busy) {
			c = &r->conns[i];
			break;
		}
	if (!c)
		return 0;
	/* First every one-chunk file gets its transfer (in order), so small
	 * files are not stuck behind big ones; then big files in order, each
	 * up to parts_per_file parts before the next starts: files complete one
	 * after another, and the caller can work on each (convert it) while
	 * the rest downloads (file_done), instead of all at the end. */
	for (size_t k = 0; k < 2 * r->nfiles; k++) {
		size_t fi = k % r->nfiles;
		struct file *f = &r->files[fi];
		if (f->state == F_DONE || f->state == F_FAILED || f->state == F_VERIFY)
			continue;
		int cap = f->no_range ? 1 : r->ppf;
		if (f->active >= cap || (k < r->nfiles && (f->active > 0 || f->nch > 1)))
			continue;
		if (f->state == F_IDLE) {
			int rc = file_open(r, f);
			if (rc < 0) {
				set_fail(r, rc, "%s", md_errmsg(rc));
				f->state = F_FAILED;
				f->it->status = rc;
				return 0;
			}
			pthread_mutex_lock(&r->hm);
			f->hash_on = 1;
			pthread_mutex_unlock(&r->hm);
			f->state = F_RUN;
		}
		for (size_t ci = 0; ci < f->nch; ci++) {
			struct chunk *ch = &f->ch[ci];
			if (ch->active || atomic_load(&ch->done) >= ch->len)
				continue;
			if (ch->not_before > now) {
				if (*next_wake == 0 || ch->not_before < *next_wake)
					*next_wake = ch->not_before;
				continue;
			}
			size_t last = ci;
			if (f->no_range) { /* one sequential transfer to the end */
				if (f->active)
					break;
				last = f->nch - 1;
			}
			for (size_t q = ci; q <= last; q++)
				f->ch[q].active = 1;
			c->f = f;
			c->c0 = ci;
			c->c1 = last;
			c->pos = ch->start + atomic_load(&ch->done);
			c->end = f->ch[last].start + f->ch[last].len;
			c->got = 0;
			c->hops = 0;
			c->busy = 1;
			f->active++;
			r->nactive++;
			int rc = conn_request(r, c, f->redir ? f->redir : f->it->url);
			if (rc < 0) {
				set_fail(r, rc, "%s: %s", f->it->dest, md_errmsg(rc));
				return 0;
			}
			return 1;
		}
	}
	return 0;
}

static void conn_release(struct run *r, struct conn *c)
{
	struct file *f = c->f;
	curl_multi_remove_handle(r->m, c->e);
	for (size_t k = c->c0; k <= c->c1; k++)
		f->ch[k].active = 0;
	f->active--;
	r->nactive--;
	c->busy = 0;
	c->paused = 0;
}

static long backoff_ms(struct run *r, int fails)
{
	long base = dflt(r->o->backoff_ms, 500), cap = dflt(r->o->backoff_max_ms, 30000);
	long d = base;
	for (int i = 1; i < fails && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* jitter: 75%..125% */
	long j = d / 2 ? (long)(rand_r(&r->seed) % (unsigned)(d / 2 + 1)) : 0;
	return d * 3 / 4 + j;
}

int xfer_transient_curl(int cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR: case CURLE_OPERATION_TIMEDOUT: case CURLE_GOT_NOTHING:
	case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_SSL_CONNECT_ERROR:
	case CURLE_COULDNT_RESOLVE_HOST: case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_AGAIN: case CURLE_HTTP3: case CURLE_QUIC_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

static void file_fail(struct run *r, struct file *f, int code, const char *msg)
{
	f->state = F_FAILED;
	f->it->status = code;
	set_fail(r, code, "%s", msg);
}

/*
 * Throw away every byte of f while it is being fetched: stop its other
 * transfers (they would mark truncated bytes as done), wait for the hashing
 * thread to let go of it, truncate, reset progress and digests.
 */
static void file_restart(struct run *r, struct file *f)
{
	for (int i = 0; i < r->nconns; i++) {
		struct conn *o = &r->conns[i];
		if (o->busy && o->f == f) {
			f->it->fetched += o->got;
			conn_release(r, o);
		}
	}
	pthread_mutex_lock(&r->hm);
	while (f->hash_busy) {
		pthread_mutex_unlock(&r->hm);
		usleep(1000);
		pthread_mutex_lock(&r->hm);
	}
	file_discard(f);
	if (hash_reset(f) < 0)
		f->hash_err = ENOMEM;
	pthread_mutex_unlock(&r->hm);
}

void xfer_gated_text(char *buf, size_t n, const char *who, int has_token)
{
	snprintf(buf, n, has_token ? "%s: gated repository, the token given has no access: accept "
				     "its terms with the token's account"
				   : "%s: gated repository, accept its terms and set HF_TOKEN", who);
}

const char *xfer_transient_cause(int cc, const char *curlerr)
{
	static _Thread_local char named[300];
	/* libcurl's own text names the host ("Failed to connect to H port P
	 * after N ms: ...", "Could not resolve host: H"); its strerror does not */
	static const char conn[] = "Failed to connect to ", res[] = "Could not resolve host: ";
	if (cc == CURLE_COULDNT_CONNECT && !strncmp(curlerr, conn, sizeof conn - 1)) {
		const char *h = curlerr + sizeof conn - 1, *e = strstr(h, " after ");
		snprintf(named, sizeof named, "cannot connect to %.*s",
			 (int)(e ? (size_t)(e - h) : strlen(h)), h);
		return named;
	}
	if (cc == CURLE_COULDNT_RESOLVE_HOST && !strncmp(curlerr, res, sizeof res - 1)) {
		snprintf(named, sizeof named, "cannot resolve host %.200s", curlerr + sizeof res - 1);
		return named;
	}
	if ((cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR) && strcasestr(curlerr, "reset by peer"))
		return "connection reset by peer";
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return "transfer stalled or timed out";
	if (cc == CURLE_PARTIAL_FILE)
		return "truncated body (the server closed the connection early)";
	return curl_easy_strerror(cc);
}

/* A transfer ended: decide success, redirect, retry or failure. */
static void conn_done(struct run *r, struct conn *c, CURLcode cc)
{
	struct file *f = c->f;
	const char *dest = f->it->dest;
	struct chunk *ch = &f->ch[c->c0];
	char msg[400];
	f->it->fetched += c->got;

	if (c->fatal) { /* local write error or protocol violation */
		conn_release(r, c);
		if (c->fatal == MD_ECORRUPT) {
			/* the server's file is not the one listed: count as a
			 * verification failure (discard, one more try) */
			file_restart(r, f);
			if (++f->verify_fails < 2) {
				free(f->redir);
				f->redir = NULL;
				return;
			}
		}
		file_fail(r, f, c->fatal, c->fatal_msg);
		return;
	}
	int complete = c->pos >= c->end || (c->over && c->pos >= c->end);
	long st = c->status;
	if (complete && st >= 200 && st < 300) {
		conn_release(r, c);
		for (size_t k = c->c0; k <= c->c1; k++)
			f->ch[k].fails = 0;
		return;
	}
	if (cc == CURLE_OK && st >= 300 && st < 400 && st != 304) {
		char *loc = NULL;
		curl_easy_getinfo(c->e, CURLINFO_REDIRECT_URL, &loc);
		if (!loc || strlen(loc) > MAX_URL ||
		    (strncasecmp(loc, "http://", 7) && strncasecmp(loc, "https://", 8))) {
			conn_release(r, c);
			snprintf(msg, sizeof msg, "%s: bad redirect (HTTP %ld)", dest, st);
			file_fail(r, f, MD_EREFUSED, msg);
			return;
		}
		if (++c->hops > MAX_HOPS) {
			conn_release(r, c);
			snprintf(msg, sizeof msg, "%s: more than %d redirects", dest, MAX_HOPS);
			file_fail(r, f, MD_EREFUSED, msg);
			return;
		}
		char *nu = strdup(loc); /* loc dies with the next request */
		curl_multi_remove_handle(r->m, c->e);
		if (!nu || conn_request(r, c, nu) < 0) {
			free(nu);
			c->busy = 1; /* conn_release expects it in the multi: harmless */
			conn_release(r, c);
			file_fail(r, f, MD_ENOMEM, "out of memory");
			return;
		}
		free(f->redir);
		f->redir = nu; /* later chunks go straight there */
		return;
	}
	conn_release(r, c);

	int transient = 0;
	long ra = -1;
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && st >= 400)) {
		if (st >= 200 && st < 300) { /* ended early without an error */
			transient = 1;
			snprintf(msg, sizeof msg, "%s: truncated body", dest);
		} else if (st == 408 || st == 429 || st >= 500) {
			transient = 1;
			if (st == 429 || st == 503)
				ra = xfer_parse_retry_after(c->retry_after, dflt(r->o->retry_after_max_s, 120));
			snprintf(msg, sizeof msg, "%s: HTTP %ld", dest, st);
		} else if (!strcmp(c->errcode, "GatedRepo")) {
			xfer_gated_text(msg, sizeof msg, r->o->label ? r->o->label : dest,
					r->o->token && *r->o->token);
			file_fail(r, f, MD_EAUTH, msg);
			return;
		} else if (!strcmp(c->errcode, "RepoNotFound")) {
			snprintf(msg, sizeof msg, "%s: repository not found", r->o->label ? r->o->label : dest);
			file_fail(r, f, MD_ENOENT, msg);
			return;
		} else if (!strcmp(c->errcode, "RevisionNotFound")) {
			snprintf(msg, sizeof msg, "%s: revision not found", r->o->label ? r->o->label : dest);
			file_fail(r, f, MD_ENOENT, msg);
			return;
		} else if (st == 403 && f->redir && !xfer_same_origin(c->url, f->it->url) &&
			   ch->fails == 0) {
			/* an expired signed URL at a CDN: ask the hub again */
			transient = 1;
			snprintf(msg, sizeof msg, "%s: HTTP 403 from the redirect target", dest);
		} else if (st == 401 || st == 403) {
			snprintf(msg, sizeof msg, "%s: HTTP %ld, access denied (token missing or refused)",
				 dest, st);
			file_fail(r, f, MD_EAUTH, msg);
			return;
		} else if (st == 404 || !strcmp(c->errcode, "EntryNotFound")) {
			snprintf(msg, sizeof msg, "%s: not found on the server (HTTP %ld)", dest, st);
			file_fail(r, f, MD_ENOENT, msg);
			return;
		} else {
			snprintf(msg, sizeof msg, "%s: HTTP %ld", dest, st);
			file_fail(r, f, MD_ENET, msg);
			return;
		}
	} else if (xfer_transient_curl(cc) || (cc == CURLE_WRITE_ERROR && c->over)) {
		transient = 1;
		snprintf(msg, sizeof msg, "%s: %s", dest, xfer_transient_cause(cc, c->curlerr));
	} else {
		snprintf(msg, sizeof msg, "%s: %s", dest, curl_easy_strerror(cc));
		file_fail(r, f, MD_ENET, msg);
		return;
	}
	(void)transient;
	/* transient: back off and retry the same chunk from where it got to */
	free(f->redir);
	f->redir = NULL;
	if (c->got > 0 && cc != CURLE_OPERATION_TIMEDOUT)
		ch->fails = 1; /* progress was made: keep going, short delay */
	else
		ch->fails++; /* a stall counts even if a trickle got through */
	int maxr = r->o->max_retries < 0 ? 0 : (r->o->max_retries ? r->o->max_retries : 8);
	if (ch->fails > maxr) {
		char m2[480];
		snprintf(m2, sizeof m2, "%s after %d attempts", msg, ch->fails);
		file_fail(r, f, MD_ENET, m2);
		return;
	}
	long d = backoff_ms(r, ch->fails);
	if (ra >= 0 && ra * 1000 > d)
		d = ra * 1000;
	ch->not_before = util_mono() + (double)d / 1000.0;
}

/* All chunks of f on disk: hand it to the hasher. */
static void check_complete(struct run *r, struct file *f)
{
	if (f->state != F_RUN || f->active)
		return;
	for (size_t i = 0; i < f->nch; i++)
		if (atomic_load(&f->ch[i].done) < f->ch[i].len)
			return;
	f->state = F_VERIFY;
	pthread_mutex_lock(&r->hm);
	f->complete = 1;
	pthread_cond_broadcast(&r->hc);
	pthread_mutex_unlock(&r->hm);
}

/* Hasher finished f: compare, then rename into place or discard. */
static void finish_verify(struct run *r, struct file *f)
{
	char msg[400];
	const char *dest = f->it->dest;
	pthread_mutex_lock(&r->hm);
	f->hash_on = 0;
	pthread_mutex_unlock(&r->hm);
	if (f->hash_err) {
		snprintf(msg, sizeof msg, "%s: reading back: %s", dest,
			 f->hash_err == EPIPE ? "file shrank" : strerror(f->hash_err));
		file_fail(r, f, MD_EIO, msg);
		return;
	}
	const char *bad = NULL, *want = NULL, *got = NULL;
	if (f->it->sha256 && strcmp(f->it->sha256, f->got256))
		bad = "sha256", want = f->it->sha256, got = f->got256;
	else if (f->it->blob_sha1 && strcmp(f->it->blob_sha1, f->got1))
		bad = "git blob sha1", want = f->it->blob_sha1, got = f->got1;
	if (bad) {
		int was_in_place = f->in_place;
		if (f->in_place) { /* a stale file in the way: drop it, fetch */
			close(f->fd);
			f->fd = -1;
			unlink(f->final_path);
			f->in_place = 0;
		} else {
			file_discard(f);
			f->verify_fails++;
		}
		if (f->verify_fails >= 2) {
			snprintf(msg, sizeof msg, "%s: %s mismatch after 2 attempts (expected %.12s..., got %.12s...)",
				 dest, bad, want, got);
			file_fail(r, f, MD_ECORRUPT, msg);
			return;
		}
		free(f->redir);
		f->redir = NULL;
		int rc = was_in_place ? file_open(r, f) : hash_reset(f);
		if (rc < 0) {
			file_fail(r, f, rc, md_errmsg(rc));
			return;
		}
		pthread_mutex_lock(&r->hm);
		f->hash_on = 1;
		pthread_mutex_unlock(&r->hm);
		f->state = F_RUN;
		return;
	}
	memcpy(f->it->sha256_out, f->got256, 65);
	if (!f->in_place) {
		if (mkparents(f->final_path) < 0 || rename(f->part_path, f->final_path) < 0) {
			snprintf(msg, sizeof msg, "%s: %s", dest, md_errmsg(MD_EIO));
			if (errno)
				snprintf(msg, sizeof msg, "%s: rename into place: %s", dest, strerror(errno));
			file_fail(r, f, MD_EIO, msg);
			return;
		}
		unlink_state(f);
	}
	close(f->fd);
	f->fd = -1;
	f->state = F_DONE;
	f->it->status = 0;
	f->dirty = 0;
	if (r->o->file_done)
		r->o->file_done(r->o->file_done_arg, (size_t)(f - r->files));
}

static void report(struct run *r)
{
	if (!r->o->progress)
		return;
	uint64_t done = 0, total = 0;
	for (size_t i = 0; i < r->nfiles; i++) {
		struct file *f = &r->files[i];
		total += f->it->size;
		if (f->state == F_DONE)
			done += f->it->size;
		else
			for (size_t k = 0; k < f->nch; k++)
				done += atomic_load(&f->ch[k].done);
	}
	r->o->progress(r->o->progress_arg, done, total);
}

static void flush_states(struct run *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		struct file *f = &r->files[i];
		if (f->dirty && f->fd >= 0 && (f->state == F_RUN || f->state == F_FAILED)) {
			int rc = write_state(r, f);
			if (rc < 0 && rc != MD_ENOMEM)
				set_fail(r, rc, "%s", md_errmsg(rc));
		}
	}
}

/* ---------- the run ---------- */

/*
 * Chunk layout (deterministic from size and chunk_size, so a state file
 * written by an earlier run lines up): chunks of chunk_size while more than
 * 4 of them remain, then a geometric tail of quarters of what remains, no
 * smaller than t = max(1 MiB, chunk_size/16) (a remainder under t joins
 * the last chunk). The last pieces of a file are
 * small, so that the end of a pull is not one connection finishing a whole
 * chunk while the others sit idle (this matters where each connection is
 * capped, as at a CDN edge).
 */
static uint64_t chunk_len(uint64_t rem, uint64_t cs)
{
	if (rem > 4 * cs)
		return cs;
	uint64_t t = cs / 16 > (1u << 20) ? cs / 16 : (1u << 20);
	uint64_t l = rem / 4 > t ? rem / 4 : t;
	return l + t <= rem ? l : rem; /* no crumb smaller than t at the end */
}

/*
 * A file's chunk size: opts->chunk_size when given; by default the file in
 * about parts_per_file chunks, 16..64 MiB each, so that even a shard of a
 * few hundred MiB gets all its parts at once and shards complete one after
 * another (each converted while the next downloads) rather than together
 * at the end; 64 MiB at most keeps the per-request round trip small
 * against the transfer over a real network.
 */
static uint64_t file_chunk(const struct run *r, uint64_t size)
{
	if (r->chunk_size)
		return r->chunk_size;
	uint64_t mib = 1u << 20, cs = (size / (uint64_t)r->ppf + mib - 1) / mib * mib;
	return cs < 16 * mib ? 16 * mib : cs > 64 * mib ? 64 * mib : cs;
}

static int setup_files(struct run *r, const char *dir, struct xfer_item *items, size_t n)
{
	r->files = calloc(n ? n : 1, sizeof *r->files);
	if (!r->files)
		return MD_ENOMEM;
	r->nfiles = n;
	for (size_t i = 0; i < n; i++) {
		struct file *f = &r->files[i];
		struct xfer_item *it = &items[i];
		f->it = it;
		f->fd = -1;
		it->status = 1;
		it->sha256_out[0] = 0;
		it->fetched = it->resumed = 0;
		if (!it->url || !it->dest)
			return md_fail(MD_EINVAL, "item %zu: url and dest are required", i);
		int rc = dest_ok(it->dest);
		if (rc < 0)
			return rc;
		if (strncasecmp(it->url, "http://", 7) && strncasecmp(it->url, "https://", 8))
			return md_fail(MD_EINVAL, "%s: not an http(s) URL", it->dest);
		if (it->sha256 && !util_is_hex(it->sha256, 64))
			return md_fail(MD_EINVAL, "%s: bad sha256", it->dest);
		if (it->blob_sha1 && !util_is_hex(it->blob_sha1, 40))
			return md_fail(MD_EINVAL, "%s: bad git blob sha1", it->dest);
		if (it->size > MAX_FILE_SIZE)
			return md_fail(MD_ETOOBIG, "%s: %" PRIu64 " bytes is over the 4 TiB cap", it->dest, it->size);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(items[j].dest, it->dest))
				return md_fail(MD_EINVAL, "%s: listed twice", it->dest);
		char hx[65];
		sha256_hex(it->dest, strlen(it->dest), hx);
		if (asprintf(&f->part_path, "%s/" PARTIAL_DIR "/%s.part", dir, hx) < 0 ||
		    asprintf(&f->state_path, "%s/" PARTIAL_DIR "/%s.state", dir, hx) < 0 ||
		    asprintf(&f->final_path, "%s/%s", dir, it->dest) < 0) {
			f->part_path = f->state_path = f->final_path = NULL;
			return MD_ENOMEM;
		}
		uint64_t nch = 0;
		f->cs = file_chunk(r, it->size);
		for (uint64_t off = 0; off < it->size; off += chunk_len(it->size - off, f->cs))
			nch++;
		if ((rc = check_place(f)) < 0)
			return rc;
		if (nch > MAX_CHUNKS)
			return md_fail(MD_ETOOBIG, "%s: too many chunks, raise chunk_size", it->dest);
		f->nch = (size_t)nch;
		f->ch = calloc(nch ? nch : 1, sizeof *f->ch);
		if (!f->ch)
			return MD_ENOMEM;
		uint64_t off = 0;
		for (size_t k = 0; k < f->nch; k++) {
			f->ch[k].start = off;
			f->ch[k].len = chunk_len(it->size - off, f->cs);
			off += f->ch[k].len;
		}
	}
	return 0;
}

static void stop_hashers(struct run *r)
{
	pthread_mutex_lock(&r->hm);
	r->hstop = 1;
	pthread_cond_broadcast(&r->hc);
	pthread_mutex_unlock(&r->hm);
	for (int i = 0; i < r->ht_started; i++)
		pthread_join(r->ht[i], NULL);
	r->ht_started = 0;
}

static void teardown(struct run *r)
{
	stop_hashers(r);
	for (int i = 0; r->conns && i < r->nconns; i++) {
		if (r->conns[i].busy)
			curl_multi_remove_handle(r->m, r->conns[i].e);
		curl_easy_cleanup(r->conns[i].e);
		free(r->conns[i].url);
	}
	free(r->conns);
	if (r->m)
		curl_multi_cleanup(r->m);
	for (size_t i = 0; i < r->nfiles; i++) {
		struct file *f = &r->files[i];
		if (f->fd >= 0)
			close(f->fd);
		sha256_free(&f->h256);
		EVP_MD_CTX_free(f->h1);
		free(f->ch);
		free(f->part_path);
		free(f->state_path);
		free(f->final_path);
		free(f->redir);
	}
	free(r->files);
	curl_slist_free_all(r->hdr_auth);
	curl_slist_free_all(r->hdr_plain);
	pthread_mutex_destroy(&r->hm);
	pthread_cond_destroy(&r->hc);
}

int xfer_run(const char *dir, struct xfer_item *items, size_t n, const struct xfer_opts *opts)
{
	int grc = xfer_global_init();
	if (grc)
		return grc;
	static const struct xfer_opts zero;
	struct run run, *r = &run;
	memset(r, 0, sizeof *r);
	r->o = opts ? opts : &zero;
	r->dir = dir;
	r->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	pthread_mutex_init(&r->hm, NULL);
	pthread_cond_init(&r->hc, NULL);
	const struct xfer_opts *o = r->o;
	int rc = 0, lockfd = -1;

	if (!dir || (n && !items))
		return md_fail(MD_EINVAL, "xfer_run: no directory or items");
	if (o->conns < 0 || o->conns > 64 || o->parts_per_file < 0 ||
	    (o->chunk_size && o->chunk_size < (1u << 20))) {
		pthread_mutex_destroy(&r->hm);
		pthread_cond_destroy(&r->hc);
		return md_fail(MD_EINVAL, "xfer: conns must be 1..64, chunk_size >= 1 MiB");
	}
	r->chunk_size = o->chunk_size;
	r->nconns = o->conns ? o->conns : 16;
	/* by default one big file takes every connection before the next
	 * starts: files complete in order (see file_chunk) */
	r->ppf = o->parts_per_file ? o->parts_per_file : r->nconns;

	char pdir[PATH_MAX];
	if (snprintf(pdir, sizeof pdir, "%s/" PARTIAL_DIR, dir) >= (int)sizeof pdir) {
		rc = md_fail(MD_EINVAL, "%s: path too long", dir);
		goto out;
	}
	if ((rc = setup_files(r, dir, items, n)) < 0)
		goto out;
	if ((rc = util_mkdir_p(pdir, 0755)) < 0)
		goto out;
	char lp[PATH_MAX + 8];
	snprintf(lp, sizeof lp, "%s/lock", pdir);
	lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lockfd < 0) {
		rc = md_fail(md_from_errno(errno), "%s: %s", lp, strerror(errno));
		goto out;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = md_fail(MD_EBUSY, "%s: another transfer is using this directory", dir);
		goto out;
	}

	/* headers: with and without the token (the token is never logged) */
	r->hdr_plain = curl_slist_append(NULL, "Accept-Encoding: identity");
	if (((o->token && *o->token) || (o->auth_headers && o->auth_headers[0])) && o->auth_origin) {
		r->hdr_auth = curl_slist_append(NULL, "Accept-Encoding: identity");
		for (size_t i = 0; o->auth_headers && o->auth_headers[i] && r->hdr_auth; i++) {
			if (strpbrk(o->auth_headers[i], "\r\n") || !strchr(o->auth_headers[i], ':')) {
				rc = md_fail(MD_EINVAL, "bad transfer header");
				goto out;
			}
			r->hdr_auth = curl_slist_append(r->hdr_auth, o->auth_headers[i]);
		}
	}
	if (o->token && *o->token && o->auth_origin) {
		if (strpbrk(o->token, "\r\n")) {
			rc = md_fail(MD_EINVAL, "token contains a line break");
			goto out;
		}
		char *h;
		if (asprintf(&h, "Authorization: Bearer %s", o->token) < 0) {
			rc = MD_ENOMEM;
			goto out;
		}
		if (r->hdr_auth)
			r->hdr_auth = curl_slist_append(r->hdr_auth, h);
		explicit_bzero(h, strlen(h));
		free(h);
	}
	r->m = curl_multi_init();
	r->conns = calloc((size_t)r->nconns, sizeof *r->conns);
	if (!r->hdr_plain || !r->m || !r->conns ||
	    (o->token && *o->token && o->auth_origin && !r->hdr_auth)) {
		rc = MD_ENOMEM;
		goto out;
	}
	curl_multi_setopt(r->m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(r->m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)r->nconns);
	/* HTTP/2 streams per connection: parallel parts exist to get past
	 * per-connection limits (CDN edges, TCP windows), so by default each
	 * transfer gets its own connection even over HTTP/2 */
	curl_multi_setopt(r->m, CURLMOPT_MAX_CONCURRENT_STREAMS,
			  (long)(o->h2_streams > 0 ? o->h2_streams : 1));
	for (int i = 0; i < r->nconns; i++)
		if ((rc = conn_init(r, &r->conns[i])) < 0)
			goto out;
	/* hashing: on one CPU the loop hashes in-order bytes itself (no
	 * read-back) and one thread does the rest; on more, threads hash
	 * (reading back from the page cache) and the loop only moves bytes:
	 * on two CPUs that is faster (bench/pull/run.sh: 1 GiB in a median
	 * 1.27 s against 1.38 s inline), as the loop alone is the bottleneck */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nh = o->hash_threads > 0 ? o->hash_threads : (ncpu > 2 ? (int)(ncpu / 2) : 1);
	if (nh > XFER_MAX_HASHERS)
		nh = XFER_MAX_HASHERS;
	r->inline_hash = o->hash_threads > 0 ? 0 : ncpu <= 1;
	for (int i = 0; i < nh; i++) {
		if (pthread_create(&r->ht[i], NULL, hasher, r) != 0) {
			rc = md_fail(MD_ENOMEM, "cannot start a hashing thread");
			goto out;
		}
		r->ht_started++;
	}

	double last_state = util_mono(), last_prog = 0;
	r->last_refill = last_state;
	long st_iv = dflt(o->state_interval_ms, 1000), pr_iv = dflt(o->progress_ms, 200);
	uint64_t st_bytes = o->state_bytes ? o->state_bytes : (uint64_t)256 << 20;
	for (;;) {
		if (r->fail_code)
			break;
		if (o->cancel && atomic_load(o->cancel)) {
			set_fail(r, MD_ECANCELED, "%s: canceled", o->label ? o->label : dir);
			break;
		}
		/* verification results */
		size_t ndone = 0;
		for (size_t i = 0; i < r->nfiles; i++) {
			struct file *f = &r->files[i];
			if (f->state == F_RUN)
				check_complete(r, f);
			if (f->state == F_VERIFY) {
				pthread_mutex_lock(&r->hm);
				int ready = f->hash_ready;
				pthread_mutex_unlock(&r->hm);
				if (ready)
					finish_verify(r, f);
			}
			if (f->state == F_DONE)
				ndone++;
		}
		if (r->fail_code)
			break;
		if (ndone == r->nfiles)
			break;
		double now = util_mono(), wake = 0;
		while (r->nactive < r->nconns && schedule_one(r, now, &wake))
			;
		if (r->fail_code)
			break;
		int running = 0;
		curl_multi_perform(r->m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(r->m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct conn *c = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			conn_done(r, c, msg->data.result);
		}
		now = util_mono();
		refill(r, now);
		/* every st_iv, and after every st_bytes: on a fast link a
		 * second's bytes would be a lot to fetch again after a kill */
		if ((now - last_state) * 1000 >= st_iv || r->unflushed >= st_bytes) {
			flush_states(r);
			last_state = now;
			r->unflushed = 0;
		}
		if ((now - last_prog) * 1000 >= pr_iv) {
			report(r);
			last_prog = now;
		}
		int timeout = 100;
		if (wake > 0) {
			int w = (int)((wake - now) * 1000) + 1;
			if (w < timeout)
				timeout = w < 1 ? 1 : w;
		}
		for (int i = 0; i < r->nconns; i++)
			if (r->conns[i].paused && timeout > 5)
				timeout = 5;
		/* also wake soon when verification may be pending */
		for (size_t i = 0; i < r->nfiles; i++)
			if (r->files[i].state == F_VERIFY || (r->files[i].state == F_RUN && !r->files[i].active)) {
				if (timeout > 20)
					timeout = 20;
				break;
			}
		curl_multi_poll(r->m, NULL, 0, timeout, NULL);
	}
	/* stop transfers, then record what is on disk for the next run */
	for (int i = 0; i < r->nconns; i++)
		if (r->conns[i].busy) {
			struct conn *c = &r->conns[i];
			c->f->it->fetched += c->got;
			conn_release(r, c);
		}
	stop_hashers(r);
	for (size_t i = 0; i < r->nfiles; i++) {
		struct file *f = &r->files[i];
		if (f->dirty && f->fd >= 0 && f->state != F_DONE)
			write_state(r, f);
	}
	report(r);
	rc = r->fail_code;
	if (rc)
		md_fail(rc, "%s", r->fail_msg);
out:
	teardown(r);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

int xfer_clean(const char *dir)
{
	if (!dir)
		return MD_EINVAL;
	char pdir[PATH_MAX];
	if (snprintf(pdir, sizeof pdir, "%s/" PARTIAL_DIR, dir) >= (int)sizeof pdir)
		return md_fail(MD_EINVAL, "%s: path too long", dir);
	DIR *d = opendir(pdir);
	if (!d)
		return errno == ENOENT ? 0 : md_fail(MD_EIO, "%s: %s", pdir, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) { /* .partial holds only flat files */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			rc = md_fail(MD_EIO, "%s/%s: %s", pdir, de->d_name, strerror(errno));
	}
	closedir(d);
	if (rc == 0 && rmdir(pdir) < 0 && errno != ENOENT)
		rc = md_fail(MD_EIO, "%s: %s", pdir, strerror(errno));
	return rc;
}
