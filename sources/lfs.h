/*
 * sources/lfs.h — Git LFS: strict pointer parsing, endpoint discovery and
 * the batch API (download, basic transfer). The objects themselves are
 * fetched by sources/xfer.h (verified against the oid, which is the
 * object's sha256). Errors 0 or MD_E* with md_fail details; credentials and
 * action headers never appear in a detail.
 */
#ifndef MD_LFS_H
#define MD_LFS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define LFS_MAX_POINTER 1024          /* a pointer blob is smaller than this */
#define LFS_MAX_RESPONSE (16 << 20)   /* bytes of one batch response */
#define LFS_BATCH_OBJECTS 100         /* objects per batch request */
#define LFS_MAX_HEADERS 16            /* action headers kept per object */

/*
 * buf[0..n): 1 when it is a pointer ("version https://git-lfs.github.com/
 * spec/v1\noid sha256:<64 hex>\nsize <decimal>\n", exactly these lines in
 * this order, n < LFS_MAX_POINTER), with oid and *size set; 0 when it does
 * not start with "version https://git-lfs.github.com/spec/" (an ordinary
 * blob); MD_ECORRUPT when it does but does not parse strictly.
 */
int lfs_parse_pointer(const void *buf, size_t n, char oid[65], uint64_t *size);

/* An RFC 3339 time as LFS servers send expires_at ("2026-11-24T10:00:00Z",
 * fractional seconds, a "+01:00" or "-0500" offset; no zone reads as UTC):
 * seconds since the epoch, 0 when s is NULL or not such a time. */
time_t lfs_parse_time(const char *s);

/*
 * The LFS endpoint for a remote (clean URL, no user info) when .lfsconfig
 * names none: http(s): URL with ".git" appended when missing, plus
 * "/info/lfs"; ssh:// and git://: the same over https. file://: NULL with
 * 0 (objects are read from the remote's lfs/objects directory, see
 * lfs_local_path). malloc'd into *out.
 */
int lfs_endpoint(const char *scheme, const char *clean_url, char **out);

/* file:// remotes: the object's path in the remote repository
 * (REPO/lfs/objects/aa/bb/OID, else REPO/.git/lfs/objects/...), malloc'd,
 * or NULL when neither exists. */
char *lfs_local_path(const char *repo_path, const char *oid);

/* One object of a batch: inputs oid, size, path (for errors); outputs from
 * the server's "download" action. */
struct lfs_object {
	const char *oid;       /* borrowed, 64 hex */
	uint64_t size;
	const char *path;      /* borrowed: the file in the tree, for details */
	char *href;            /* malloc'd */
	char *headers[LFS_MAX_HEADERS + 1]; /* "Name: value", malloc'd, NULL-ended */
	time_t expires;        /* 0: no expiry given */
};

/*
 * POST endpoint + "/objects/batch" (Accept and Content-Type
 * application/vnd.git-lfs+json, transfers ["basic"]) for objs[0..n) in
 * groups of LFS_BATCH_OBJECTS; user/pass (may be NULL) as HTTP basic auth.
 * Fills href, headers, expires of every object. A per-object error is
 * MD_ENOENT (404: "PATH: LFS object OID missing on the server") or
 * MD_ECORRUPT (422 or a different size: "PATH: pointer size N, server has
 * M") naming the file; 401/403 MD_EAUTH; other failures MD_ENET/MD_EPROTO.
 * Only http(s) hrefs are accepted (MD_EREFUSED).
 */
int lfs_batch(const char *endpoint, const char *user, const char *pass,
	      struct lfs_object *objs, size_t n, const char *refname);

/* Free what lfs_batch filled in objs[0..n). */
void lfs_objects_clear(struct lfs_object *objs, size_t n);

#endif
