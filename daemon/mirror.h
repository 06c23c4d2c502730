/*
 * daemon/mirror.h — a read-only, Hugging Face-compatible HTTP endpoint over
 * the store (libmicrohttpd), so huggingface_hub, transformers and
 * @huggingface/hub work unchanged with HF_ENDPOINT / hubUrl pointing here.
 * Endpoints and headers: docs/airgap.md. Opt-in (`http = ADDR:PORT`).
 *
 * Files are served from registry/reader.h segments: a file that is one
 * contiguous segment goes out with sendfile (MHD fd responses), others are
 * read piecewise; nothing is buffered whole. Request bodies (paths-info)
 * are capped at MIRROR_MAX_BODY; tree pages at MIRROR_PAGE entries.
 */
#ifndef MD_MIRROR_H
#define MD_MIRROR_H

#include "daemon/daemon.h"

#define MIRROR_MAX_BODY (1u << 20)       /* POST body bytes */
#define MIRROR_MAX_PATHS 10000           /* paths in one paths-info request */
#define MIRROR_PAGE 1000                 /* tree entries per page */
#define MIRROR_MAX_CONNS 256             /* simultaneous connections */
#define MIRROR_LFS_SIZE (10u << 20)      /* files this large are LFS (ETag sha256) */
#define MIRROR_MAX_TOKEN 4096            /* bytes of http_token_file */

struct mirror;

/*
 * Listen on addr ("127.0.0.1:8088", "[::1]:8088", ":8088" for all
 * addresses) and serve the store of d. token_file (may be NULL): when set,
 * every request must carry "Authorization: Bearer <its first line>".
 * 0 and *out, or MD_EINVAL (bad address or token file), MD_EIO (cannot
 * listen: detail names the address).
 */
int mirror_start(struct daemon *d, const char *addr, const char *token_file, struct mirror **out);

/*
 * The bearer token in file (its first line; no spaces or control
 * characters, not empty): *out malloc'd (caller wipes and frees). 0 or
 * MD_EINVAL ("http_token_file FILE: ..."), MD_ENOMEM. modeld -n checks the
 * file with it.
 */
int mirror_read_token(const char *file, char **out);

/* Stop serving (waits for the connection threads) and free. NULL is fine. */
void mirror_stop(struct mirror *m);

/*
 * Pull-through hook, for the pull engine (sources/): called on a miss
 * (repo, revision or file not in the store) from a connection thread with
 * the repo id, the revision as asked ("HEAD" for the default) and the file
 * path (NULL for repo/revision lookups). Return 0 once the revision is in
 * the store (the lookup is then retried once), or an MD_E* code (the client
 * gets the original 404). fn NULL disables it (the default). modeld sets it
 * to pull_through (daemon/pull.h) when `upstream` is configured.
 */
typedef int mirror_miss_fn(void *arg, const char *repo, const char *rev, const char *path);
void mirror_set_upstream(struct mirror *m, mirror_miss_fn *fn, void *arg);

#endif
