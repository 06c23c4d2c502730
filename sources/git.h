/*
 * sources/git.h — git-hosted model repositories through libgit2 (never a git
 * binary): parse a git+URL, fetch it into a bare cache repository, resolve a
 * ref to a commit, list the commit's tree without checking anything out and
 * write single blobs out of the object database. Git LFS lives in
 * sources/lfs.h.
 *
 * Prefix: gitsrc_ (libgit2 owns git_). Knows nothing of LMDB or jobs.
 * Errors are 0 or negative MD_E* with md_fail details; credentials never
 * appear in a detail (URLs are reported without their user info).
 *
 * libgit2 1.5 (Debian 12) has no shallow fetch (depth arrived in 1.7): the
 * cache holds full history; a second fetch of the same remote negotiates
 * and transfers only objects the cache lacks.
 */
#ifndef MD_GITSRC_H
#define MD_GITSRC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GITSRC_MAX_URL 4096             /* bytes of a source URL */
#define GITSRC_MAX_FILES 100000         /* blobs in one tree */
#define GITSRC_MAX_BLOB (2ULL << 30)    /* bytes of one non-LFS blob (held in memory
                                           while it is written out) */
#define GITSRC_MAX_CRED_FILE (1 << 20)  /* bytes of a credential file */

/* A parsed source. All strings malloc'd, owned by the struct. */
struct gitsrc_url {
	char *url;      /* what libgit2 fetches (user info kept), no "git+", no @REF */
	char *clean;    /* the same without user info: safe for logs, provenance, keys */
	char *scheme;   /* "https", "http", "ssh", "file", "git" */
	char *ref;      /* requested REF or NULL (the remote's default branch) */
	char *name;     /* default model name: last two path components, .git stripped
	                   (NULL when they do not form a valid ORG/NAME) */
	char *user, *pass; /* user info from the URL, or NULL */
};

/*
 * Parse "git+SCHEME://HOST/PATH[@REF]" (or, with plain = 1, a URL without
 * the "git+" prefix, for --source git). Schemes: https, http, ssh, git, file.
 * REF is everything after the first '@' in the path part. *out is freed with
 * gitsrc_url_free. MD_EINVAL naming the problem (never echoing user info).
 */
int gitsrc_url_parse(const char *s, int plain, struct gitsrc_url **out);
void gitsrc_url_free(struct gitsrc_url *u);
/* 1 when s starts with "git+". */
int gitsrc_is_git_ref(const char *s);

/* Credentials: lines "https://user:token@host[:port]" (blank lines and
 * '#' comments skipped); at most GITSRC_MAX_CRED_FILE bytes. */
struct gitsrc_creds;
/* path NULL or missing file: an empty set. MD_EIO / MD_EINVAL (naming the
 * line number only) / MD_ENOMEM. */
int gitsrc_creds_load(const char *path, struct gitsrc_creds **out);
/* user and password for url (scheme, host and port equal), or 0 with both
 * NULL. Borrowed until gitsrc_creds_free. */
int gitsrc_creds_find(const struct gitsrc_creds *c, const char *url, const char **user,
		      const char **pass);
/* Frees and wipes. NULL is fine. */
void gitsrc_creds_free(struct gitsrc_creds *c);

struct gitsrc_repo;

/*
 * Open (creating when absent) the bare cache repository at cache_dir
 * (STORE/git/<sha256 of u->clean>.git), lock it (flock, waits), and fetch
 * all branches and tags of u into it (refs/heads/..., refs/tags/...; only what
 * the cache lacks is transferred). The URL's user info, else creds, answer
 * an HTTP authentication challenge; ssh uses the ssh agent. *cancel (may be
 * NULL) non-zero aborts the transfer. On success *out holds the repository
 * and the lock until gitsrc_close, and the remote's default branch.
 * MD_ENET (cannot reach or fetch, detail names u->clean), MD_EAUTH,
 * MD_ECANCELED, MD_EIO, MD_ENOMEM.
 */
int gitsrc_open_fetch(const char *cache_dir, const struct gitsrc_url *u,
		      const struct gitsrc_creds *creds, atomic_int *cancel,
		      struct gitsrc_repo **out);
void gitsrc_close(struct gitsrc_repo *r);
/* 1 when the cache was found damaged (a truncated or missing pack, missing
 * objects, a config that does not parse) and was dropped and fetched anew.
 * Lock files a killed fetch left behind are removed before every fetch. */
int gitsrc_rebuilt(const struct gitsrc_repo *r);

/*
 * Remove the bare cache at cache_dir (made by gitsrc_open_fetch) unless a
 * pull holds it: its lock is tried without waiting. The 0-byte lock file
 * stays (a pull waiting on it must keep locking the same file). 1 removed
 * (*bytes: what it held), 0 in use or absent, MD_EIO.
 */
int gitsrc_cache_drop(const char *cache_dir, uint64_t *bytes);
/* The remote's default branch ("main"), borrowed; NULL when unknown. */
const char *gitsrc_default_branch(const struct gitsrc_repo *r);

/*
 * Resolve ref (NULL: the default branch) to a commit: a branch, then a tag
 * (peeled), then a full 40-hex or abbreviated (>= 7) commit id present in
 * the cache. commit and tree get 40 hex each; *fullref the full ref name
 * ("refs/heads/main", "refs/tags/v1"), malloc'd, or NULL for a commit id.
 * MD_ENOENT "REF: no such branch, tag or commit".
 */
int gitsrc_resolve(struct gitsrc_repo *r, const char *ref, char commit[41], char tree[41],
		   char **fullref);

/* One blob of a tree. */
struct gitsrc_file {
	char *path;          /* relative path, checked with util_check_relpath */
	char blob[41];       /* blob id */
	uint64_t size;       /* blob size */
	int executable;
	int lfs;             /* 1: an LFS pointer; lfs_oid/lfs_size describe the object */
	char lfs_oid[65];
	uint64_t lfs_size;
};

/*
 * List every blob of the commit's tree (recursively). Refused with
 * MD_EREFUSED naming the path and nothing listed: a submodule (gitlink), a
 * symlink, a path util_check_relpath refuses (.., absolute, control
 * characters), more than GITSRC_MAX_FILES blobs, a blob over
 * GITSRC_MAX_BLOB; a blob that starts like an LFS pointer but does not
 * parse strictly: MD_ECORRUPT naming it. *files freed with
 * gitsrc_files_free.
 */
int gitsrc_list(struct gitsrc_repo *r, const char *commit, struct gitsrc_file **files,
		size_t *n);
void gitsrc_files_free(struct gitsrc_file *f, size_t n);

/* Write blob (40 hex) to path (created 0644, fsync'd unless no_fsync) and
 * compute its sha256. MD_ENOENT, MD_EIO, MD_ENOSPC. */
int gitsrc_write_blob(struct gitsrc_repo *r, const char *blob, const char *path,
		      int no_fsync, char sha256[65]);

/* A small blob's bytes (at most max): malloc'd into *buf, *n its size.
 * Used for .lfsconfig. MD_ENOENT when absent, MD_ETOOBIG. */
int gitsrc_read_blob(struct gitsrc_repo *r, const char *blob, size_t max, char **buf,
		     size_t *n);

/*
 * lfs.url from the tree's .lfsconfig (git config syntax, parsed by libgit2;
 * at most 64 KiB), found among files[0..n). *url malloc'd, or NULL when
 * there is no .lfsconfig or no lfs.url in it. tmpdir: where the blob is
 * written for the parser. MD_ETOOBIG, MD_EINVAL (does not parse), MD_EIO.
 */
int gitsrc_lfsconfig_url(struct gitsrc_repo *r, const struct gitsrc_file *files, size_t n,
			 const char *tmpdir, char **url);

#endif
