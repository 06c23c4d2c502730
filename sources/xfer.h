/*
 * sources/xfer.h — the transfer engine: downloads a list of files over
 * HTTP(S) with libcurl's multi interface into a staging directory, resumably,
 * and verifies every byte before a file becomes visible there.
 *
 * Knows nothing of hubs, LMDB or sockets. One call, xfer_run(), does a whole
 * batch in the calling thread (plus hashing threads it owns) and returns
 * when every file is verified in place, or at the first file that failed for
 * good, or when *cancel becomes non-zero.
 *
 * Per file (item):
 *   - It is split into chunks of opts->chunk_size bytes (a geometric tail of
 *     smaller ones at the end, see docs/pull.md); each chunk is one
 *     "Range: bytes=a-b" request. Up to opts->conns requests run at once over
 *     all files, at most opts->parts_per_file of them on one file.
 *   - Bytes land in DIR/.partial/<sha256(dest)>.part (pwrite at their offset);
 *     progress per chunk is kept in DIR/.partial/<sha256(dest)>.state, a small
 *     text file rewritten (after fdatasync of the .part) every second or so,
 *     after every 256 MiB received, and on exit. A later xfer_run over the same DIR and item continues each
 *     chunk from the bytes recorded there (a Range request starting at that
 *     offset). State written for another size, digest or chunk size is
 *     discarded. See docs/pull.md for the format.
 *   - SHA-256 of every file is computed (as the contiguous prefix grows, by
 *     hashing threads; see hash_threads) and compared with item->sha256 when given; the git blob
 *     SHA-1 is compared with item->blob_sha1 when given; the size always.
 *     A mismatch discards the bytes and downloads the file once more; a second
 *     mismatch fails the run naming the file (MD_ECORRUPT).
 *   - When verified, the .part is fdatasync'd (unless opts->no_fsync) and
 *     renamed to DIR/<dest> (parent directories created, 0755/0644), and the
 *     state file removed. A file already at DIR/<dest> with the right size is
 *     re-hashed and, if it verifies, kept without any request.
 *
 * Network behaviour: HTTP/2 over TLS where offered (opts->h2_streams
 * transfers per connection, default 1), keep-alive
 * and connection reuse, redirects followed by xfer itself (at most 10 hops,
 * http/https only, relative or absolute, any host); the token is sent as
 * "Authorization: Bearer" only on requests whose scheme, host and port equal
 * those of opts->auth_origin, never to a redirect target elsewhere. Stalls
 * (less than stall_bytes/s for stall_seconds), connection resets, truncated
 * bodies, 408/429/5xx are retried with exponential backoff (base doubled per
 * consecutive failure, capped, with jitter); Retry-After (seconds or HTTP
 * date, capped at retry_after_max) is honoured on 429 and 503. 401/403/404
 * and other 4xx fail the file at once. A rate cap is split evenly across the
 * running transfers.
 *
 * Thread-safety: xfer_run may run in several threads at once on different
 * DIRs (two runs on the same DIR at once are refused with MD_EBUSY through a
 * lock file DIR/.partial/lock). curl_global_init must have been called once
 * by the process (xfer_global_init does it; call it before threads start).
 */
#ifndef MD_XFER_H
#define MD_XFER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A piece of a placed file: bytes [src, src+len) of the file as served are
 * written at [dst, dst+len) on disk (xfer_item.place). */
struct xfer_seg {
	uint64_t src, dst, len;
};
#define XFER_MAX_PLACE 65536u   /* cap on the pieces of one placed item */

/* One file to fetch. The caller fills the inputs; xfer_run fills the outputs. */
struct xfer_item {
	/* inputs, borrowed for the duration of xfer_run */
	const char *url;       /* absolute http(s) URL */
	const char *dest;      /* relative path under DIR (util_check_relpath);
	                          its first component must not be ".partial" */
	uint64_t size;         /* exact expected size in bytes */
	const char *sha256;    /* 64 lower-case hex, or NULL */
	const char *blob_sha1; /* 40 lower-case hex (git blob id), or NULL */
	int no_fsync;          /* 1: never fdatasync this file (the caller makes
	                          what it keeps durable itself). Safe only with
	                          sha256 set: after a power loss the resume finds
	                          bytes the state file promised missing by the
	                          hash, and fetches the file again */

	/* NULL, or a placed file (nplace pieces, in source order, covering
	 * [0, size) exactly once, their dst ranges disjoint and below
	 * placed_size): each byte lands where its piece says, and the file
	 * on disk (.part, then DIR/<dest>) is placed_size bytes, zero where
	 * no piece goes. Digests and size checks are of the bytes as served.
	 * A pull writes a safetensors or GGUF file straight into pack layout
	 * so. */
	const struct xfer_seg *place;
	size_t nplace;
	uint64_t placed_size;

	/* outputs */
	int status;            /* 0 verified in place, MD_E* failure, or 1 not
	                          finished (run failed elsewhere or canceled) */
	char sha256_out[65];   /* computed SHA-256 (hex) when status == 0 */
	uint64_t fetched;      /* bytes received over the network in this run */
	uint64_t resumed;      /* bytes found on disk and not fetched again */
};

/* Progress: bytes verified-or-on-disk so far and the total of all items.
 * Called from the xfer_run thread at most every progress_ms and once at the
 * end; must not call back into xfer. */
typedef void (*xfer_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct xfer_opts {
	/* Token, sent as "Authorization: Bearer TOKEN" only to auth_origin
	 * (a URL; only its scheme, host and port are used). Borrowed; never
	 * copied into error details. Either may be NULL (no token sent). */
	const char *token;
	const char *auth_origin;
	/* Extra "Name: value" header lines sent, like the token, only to
	 * auth_origin (LFS batch "header" actions); NULL-terminated, borrowed,
	 * may be NULL. Never copied into error details. */
	const char *const *auth_headers;
	/* Used as the start of error details for repository-wide failures
	 * ("acme/x: gated repository, ..."); NULL: the failing file's dest. */
	const char *label;
	const char *user_agent;   /* NULL: "modeld/<version>" */

	int conns;                /* transfers at once; 0: 16 (1..64) */
	int parts_per_file;       /* ranged parts of one file at once; 0: conns */
	uint64_t chunk_size;      /* bytes per ranged request (>= 1 MiB); 0: per
	                             file, its size / parts_per_file within
	                             16..64 MiB */
	uint64_t rate_limit;      /* bytes/s over all transfers; 0: unlimited */
	long connect_timeout_s;   /* 0: 30 */
	long stall_seconds;       /* 0: 60 */
	long stall_bytes;         /* 0: 1024 (bytes/s) */
	int max_retries;          /* consecutive failures of one chunk; 0: 8;
	                             < 0: no retry */
	long backoff_ms;          /* first retry delay; 0: 500 */
	long backoff_max_ms;      /* 0: 30000 */
	long retry_after_max_s;   /* cap on Retry-After; 0: 120 */
	long state_interval_ms;   /* state file rewrite period; 0: 1000 */
	uint64_t state_bytes;     /* rewrite also after this many bytes received
	                             (over all files); 0: 256 MiB */
	long progress_ms;         /* 0: 200 */
	int no_fsync;             /* 1: skip fdatasync of .part data */
	int http1;                /* 1: HTTP/1.1 only */
	int h2_streams;           /* HTTP/2 transfers sharing one connection;
	                             0: 1 (one connection per transfer) */
	int hash_threads;         /* 0: auto (1 plus hashing in the loop on <= 2
	                             CPUs, else CPUs/2, at most 8) */
	xfer_progress_fn progress;
	void *progress_arg;
	/* Called from the xfer_run thread as soon as items[index] is verified
	 * in place (status 0), so the caller can start on it while the rest
	 * downloads; must be quick and must not call back into xfer. */
	void (*file_done)(void *arg, size_t index);
	void *file_done_arg;
	/* Checked every 100 ms or less; non-zero: stop, keep partial state,
	 * return MD_ECANCELED. */
	atomic_int *cancel;
};

/* "Authorization: Basic base64(userpass)" for userpass "user:password"
 * (already decoded), malloc'd; the caller frees it (explicit_bzero first:
 * it is a credential). NULL when out of memory. Every intermediate copy is
 * wiped. */
char *xfer_basic_auth(const char *userpass);

/* What ended a request with a transient error, in words for the user:
 * a reset is named as such ("connection reset by peer"), not as curl's
 * "failure when receiving data", and a failed connect or lookup names the
 * host ("cannot connect to 127.0.0.1 port 1", "cannot resolve host h");
 * cc is a CURLcode, curlerr the transfer's CURLOPT_ERRORBUFFER text ("" if
 * none). A static string (thread-local where it names a host). */
const char *xfer_transient_cause(int cc, const char *curlerr);

/* Whether a CURLcode is worth retrying (connects, lookups, resets, stalls,
 * truncation, TLS handshakes); a malformed URL or a refused option is not. */
int xfer_transient_curl(int cc);

/* The hub's GatedRepo answer in words, as huggingface_hub tells the two
 * cases apart: with a token, that token's account has not accepted the
 * terms; without one, accept them and set HF_TOKEN. who names the repo. */
void xfer_gated_text(char *buf, size_t n, const char *who, int has_token);

/* curl_global_init once per process, after md_lib_need(MD_LIB_CURL)
 * (common/lazylib.h). 0, MD_EUNSUP (libcurl cannot be loaded) or MD_ENOMEM,
 * with the detail. Idempotent and thread-safe (pthread_once); xfer_run,
 * hf_open, lfs_batch and the hub search call it themselves on first use. */
int xfer_global_init(void);

/* CA certificates (a PEM file) that every HTTPS request of sources/ (hub
 * API, downloads, LFS batch, hub search) trusts instead of the system's;
 * NULL: the system's. Process-wide: set it before any request runs (modeld
 * sets the ca_file config key at start). The path is copied. 0, MD_ENOMEM. */
int xfer_set_ca_file(const char *path);
/* Apply it to a curl easy handle (CURL *). */
void xfer_apply_tls(void *curl);

/*
 * Fetch items[0..n) into dir (which must exist). opts may be NULL (all
 * defaults). Returns 0 when every item has status 0; otherwise the first
 * failure's code with a one-line detail naming the file (dest) or, for
 * repository-wide failures, opts->label, and the cause ("model.safetensors:
 * sha256 mismatch after 2 attempts", "config.json: HTTP 500 after 9
 * attempts", "acme/x: gated repository, accept its terms and set HF_TOKEN").
 * Errors: MD_EINVAL (bad item or option), MD_EREFUSED (hostile dest, bad
 * redirect), MD_ENET (network, 5xx, 429, stalls after retries, other 4xx),
 * MD_EAUTH (401/403, gated), MD_ENOENT (404), MD_ECORRUPT (digest, size or
 * Content-Range mismatch), MD_EIO/MD_ENOSPC (local files), MD_ENOMEM,
 * MD_ECANCELED, MD_EBUSY (dir in use by another run).
 * The token never appears in a detail.
 */
int xfer_run(const char *dir, struct xfer_item *items, size_t n,
	     const struct xfer_opts *opts);

/*
 * Remove DIR/.partial (all resume state) after the caller has taken the
 * verified files. 0 or MD_EIO.
 */
int xfer_clean(const char *dir);

/* 1 if URLs a and b have the same scheme, host (case-insensitive) and
 * port (default ports filled in); 0 otherwise or if either cannot be
 * parsed. */
int xfer_same_origin(const char *a, const char *b);

/*
 * Parse a Retry-After value (delta-seconds or an HTTP date) into seconds
 * from now, clamped to [0, cap]. -1 if it cannot be parsed.
 */
long xfer_parse_retry_after(const char *v, long cap);

#endif
