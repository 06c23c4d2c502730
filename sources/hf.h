/*
 * sources/hf.h — client for the Hugging Face hub HTTP API (and mirrors that
 * speak it): resolve a revision to its commit, list the files of a commit,
 * build download URLs. Downloads themselves go through sources/xfer.h.
 *
 * Everything a hub sends is untrusted: JSON bodies are capped (HF_MAX_JSON),
 * paths are checked with util_check_relpath, commits must be 40 hex, LFS oids
 * 64 hex, git blob oids 40 hex, sizes integers in [0, 4 TiB]; a listing is
 * capped at HF_MAX_PAGES pages and HF_MAX_ENTRIES files. Anything else is
 * refused with MD_EREFUSED or MD_EPROTO and a detail naming the repository.
 *
 * The token is sent as "Authorization: Bearer" only on requests whose scheme,
 * host and port equal the hub's (a redirect or a "next" page elsewhere goes
 * without it); it never appears in an error detail. Redirects are followed
 * by hf itself (at most 10, http/https only).
 *
 * Errors (mapped as huggingface_hub's hf_raise_for_status does):
 *   X-Error-Code RepoNotFound, or 404, or 401 without a token
 *       -> MD_ENOENT  "acme/x: repository not found"
 *          (with a 401 and no token: "... (or private: set HF_TOKEN)")
 *   X-Error-Code RevisionNotFound -> MD_ENOENT "acme/x@v9: revision not found"
 *   X-Error-Code EntryNotFound    -> MD_ENOENT "acme/x: PATH: entry not found"
 *   X-Error-Code GatedRepo        -> MD_EAUTH  "acme/x: gated repository,
 *                                    accept its terms and set HF_TOKEN"
 *                                    (with a token: "..., the token given has
 *                                    no access: accept its terms with the
 *                                    token's account")
 *   X-Error-Code DisabledRepo     -> MD_EPERM  "acme/x: repository disabled"
 *   401 with a token              -> MD_EAUTH  "acme/x: token refused (HTTP 401)"
 *   403                           -> MD_EAUTH  "acme/x: access denied (HTTP 403)"
 *   429, 5xx, 408, connection errors: retried (backoff, Retry-After), then
 *                                    MD_ENET "acme/x: HTTP 503 after 5 attempts"
 *   other 4xx                     -> MD_ENET   "acme/x: HTTP 418"
 *   body over the cap             -> MD_ETOOBIG; bad JSON -> MD_EPROTO
 *
 * Thread-safety: an hf_client may be used by one thread at a time; separate
 * clients are independent. xfer_global_init() must have run.
 */
#ifndef MD_HF_H
#define MD_HF_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sources/xfer.h"

#define HF_MAX_JSON (32u << 20)  /* bytes of one API response body */
#define HF_MAX_PAGES 1000        /* tree pages followed */
#define HF_MAX_ENTRIES 200000    /* files in one listing */
#define HF_DEFAULT_HUB "https://huggingface.co"

struct hf_client;

struct hf_opts {
	const char *token;        /* NULL or "": anonymous. Copied; wiped on close. */
	const char *user_agent;   /* NULL: "modeld/0.1" */
	long timeout_s;           /* whole API request; 0: 60 */
	int max_attempts;         /* 0: 5 (429/5xx/network) */
	long backoff_ms;          /* 0: 500, doubled per attempt */
	long retry_after_max_s;   /* 0: 60 */
	int http1;                /* 1: HTTP/1.1 only */
	atomic_int *cancel;       /* NULL, or set to stop: a request in flight
	                             and a retry's wait end within ~100 ms,
	                             failing with MD_ECANCELED */
};

/*
 * New client for hub (e.g. "https://huggingface.co" or "http://127.0.0.1:8080",
 * trailing '/' allowed, no query). opts may be NULL. *out owned by the caller:
 * hf_close it. 0, MD_EINVAL (not an http(s) URL), MD_ENOMEM.
 * User info in hub ("https://user:pw@host") is taken out of the URL: it is
 * sent as "Authorization: Basic" to the hub's origin only, unless a token is
 * given (the token wins), and appears in no URL the client reports.
 */
int hf_open(const char *hub, const struct hf_opts *opts, struct hf_client **out);
void hf_close(struct hf_client *c);

/* The hub base URL without trailing '/' and without user info. Borrowed,
 * lives as long as c. */
const char *hf_hub(const struct hf_client *c);

/* Header lines for xfer_opts.auth_headers carrying the hub URL's user info
 * (NULL-terminated; NULL when there is none or a token is used). Borrowed,
 * lives as long as c. */
const char *const *hf_auth_headers(const struct hf_client *c);

struct hf_model {
	char *id;            /* "acme/x" as asked */
	char *rev;           /* revision as asked ("main" when NULL was given) */
	char commit[41];     /* resolved commit, 40 lower-case hex */
	char *gated;         /* NULL (not gated), "auto", "manual" or "true" */
	char *pipeline_tag;  /* or NULL */
	char *library_name;  /* or NULL */
	char *license;       /* cardData.license or a "license:X" tag, or NULL */
	json_t *info;        /* the whole response (owned by the hf_model) */
};

/*
 * Resolve id ("org/name", util_check_model_name) at rev (NULL: "main"; may
 * be a branch, tag, "refs/pr/1" or a commit) via
 * GET {hub}/api/models/{id}/revision/{rev}. *out owned by the caller:
 * hf_model_free. Errors above; MD_EINVAL for a bad id or rev.
 */
int hf_resolve(struct hf_client *c, const char *id, const char *rev, struct hf_model **out);
void hf_model_free(struct hf_model *m);

struct hf_entry {
	char *path;          /* checked relative path */
	uint64_t size;       /* bytes of the file (the LFS object's for LFS) */
	int lfs;             /* 1: stored in LFS; sha256 set */
	char sha256[65];     /* LFS oid, "" when not LFS */
	char blob_sha1[41];  /* git blob id (non-LFS files), "" for LFS files */
};

struct hf_tree {
	struct hf_entry *v;  /* sorted by path */
	size_t n;
	uint64_t total;      /* sum of sizes */
	int pages;           /* pages fetched */
};

/*
 * List every file of commit (40 hex) recursively via
 * GET {hub}/api/models/{id}/tree/{commit}?recursive=true, following
 * Link rel="next" (absolute or relative). Directories are skipped. Refuses
 * duplicate paths and mismatching lfs.size/size. *out owned by the caller:
 * hf_tree_free. Errors above.
 */
int hf_list(struct hf_client *c, const char *id, const char *commit, struct hf_tree **out);
void hf_tree_free(struct hf_tree *t);

/*
 * Download URL "{hub}/{id}/resolve/{commit}/{path}" with every path
 * segment percent-encoded (RFC 3986 unreserved kept). *out malloc'd, caller
 * frees. 0, MD_EINVAL, MD_ENOMEM.
 */
int hf_file_url(const struct hf_client *c, const char *id, const char *commit,
		const char *path, char **out);

/*
 * The download list for xfer_run: one item per entry of t whose path passes
 * glob_filter(path, include, ni, exclude, ne) (sources/glob.h), in t's
 * order: url = hf_file_url(...), dest = the entry's path, size, sha256 (LFS
 * entries) or blob_sha1 (others). *items and each item's url are malloc'd
 * (free with hf_items_free); dest, sha256 and blob_sha1 borrow from t,
 * which must outlive the items. *n may be 0 (nothing matched; *items is
 * still allocated). 0, MD_EINVAL (bad pattern), MD_ENOMEM.
 */
int hf_items(const struct hf_client *c, const char *id, const char *commit,
	     const struct hf_tree *t, const char *const *include, size_t ni,
	     const char *const *exclude, size_t ne, struct xfer_item **items, size_t *n);
void hf_items_free(struct xfer_item *items, size_t n);

/*
 * The first n bytes (1..HF_MAX_JSON) of a file: GET url (a download URL)
 * with "Range: bytes=0-(n-1)", following redirects, retrying like the API
 * calls; the token goes only to the hub, as for them. *out (malloc'd) holds
 * *len <= n bytes (fewer when the file is shorter). 0; MD_EUNSUP when the
 * server ignores the range (a 200 with more bytes); the errors of an API
 * call otherwise, named by label. For a file's header before its download.
 */
int hf_file_head(struct hf_client *c, const char *url, const char *label, uint64_t n,
		 uint8_t **out, size_t *len);

/* Percent-encode s (all but A-Za-z0-9-._~, and '/' when keep_slash).
 * malloc'd or NULL. */
char *hf_urlencode(const char *s, int keep_slash);

#endif
