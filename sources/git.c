/* sources/git.c — see git.h. */
#include "sources/git.h"
#include "sources/lfs.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/sha256.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct gitsrc_repo {
	git_repository *repo;
	int lockfd;
	char *default_branch;
	int empty;   /* the remote advertised no refs at all */
	int rebuilt; /* the cache was damaged and fetched anew */
};

struct cred {
	char *scheme, *host, *user, *pass;
	int port;
};

struct gitsrc_creds {
	struct cred *v;
	size_t n;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void do_init(void)
{
	git_libgit2_init();
	/* file:// remotes may belong to another user than the daemon; libgit2
	 * runs nothing from a repository's config or hooks and nothing is
	 * checked out, so the ownership check (safe.directory) is not needed */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
}

static int gerr(int code, const char *what)
{
	const git_error *e = git_error_last();
	return md_fail(code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

int gitsrc_is_git_ref(const char *s)
{
	return s && !strncmp(s, "git+", 4);
}

void gitsrc_url_free(struct gitsrc_url *u)
{
	if (!u)
		return;
	if (u->url) {
		explicit_bzero(u->url, strlen(u->url));
		free(u->url);
	}
	if (u->pass) {
		explicit_bzero(u->pass, strlen(u->pass));
		free(u->pass);
	}
	free(u->clean);
	free(u->scheme);
	free(u->ref);
	free(u->name);
	free(u->user);
	free(u);
}

/* Split "scheme://[user[:pass]@]host[:port]/path" — authority and path
 * pointers into s. */
static int split_url(const char *s, char **scheme, const char **auth, size_t *authlen,
		     const char **path)
{
	const char *p = strstr(s, "://");
	if (!p || p == s)
		return MD_EINVAL;
	*scheme = strndup(s, (size_t)(p - s));
	*auth = p + 3;
	const char *slash = strchr(*auth, '/');
	*path = slash ? slash : *auth + strlen(*auth);
	*authlen = (size_t)(*path - *auth);
	return *scheme ? 0 : MD_ENOMEM;
}

int gitsrc_url_parse(const char *in, int plain, struct gitsrc_url **out)
{
	*out = NULL;
	if (!in || strlen(in) > GITSRC_MAX_URL)
		return md_fail(MD_EINVAL, "git source: missing or longer than %d bytes", GITSRC_MAX_URL);
	if (!plain) {
		if (!gitsrc_is_git_ref(in))
			return md_fail(MD_EINVAL, "git source must start with git+");
		in += 4;
	}
	for (const char *c = in; *c; c++)
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return md_fail(MD_EINVAL, "git source: control character or space in URL");
	struct gitsrc_url *u = calloc(1, sizeof *u);
	if (!u)
		return MD_ENOMEM;
	const char *auth, *path;
	size_t alen;
	int rc = split_url(in, &u->scheme, &auth, &alen, &path);
	if (rc) {
		gitsrc_url_free(u);
		return rc == MD_ENOMEM ? rc : md_fail(MD_EINVAL, "git source: not a URL (want SCHEME://HOST/PATH)");
	}
	if (strcmp(u->scheme, "https") && strcmp(u->scheme, "http") && strcmp(u->scheme, "ssh") &&
	    strcmp(u->scheme, "git") && strcmp(u->scheme, "file")) {
		rc = md_fail(MD_EUNSUP, "git source: scheme '%.16s' not supported (https, http, ssh, git, file)",
			     u->scheme);
		goto fail;
	}
	/* @REF: from the first '@' of the path part */
	size_t plen = strlen(path);
	const char *at = memchr(path, '@', plen);
	if (at) {
		if (!at[1]) {
			rc = md_fail(MD_EINVAL, "git source: empty ref after '@'");
			goto fail;
		}
		if (!(u->ref = strdup(at + 1))) {
			rc = MD_ENOMEM;
			goto fail;
		}
		if (u->ref[0] == '-' || strstr(u->ref, "..") || strpbrk(u->ref, "~^:?*[\\")) {
			rc = md_fail(MD_EINVAL, "git source: bad ref '%s'", u->ref);
			goto fail;
		}
		plen = (size_t)(at - path);
	}
	if (plen < 2) {
		rc = md_fail(MD_EINVAL, "git source: no repository path in URL");
		goto fail;
	}
	if (!strcmp(u->scheme, "file") && alen) {
		rc = md_fail(MD_EINVAL, "git source: file URLs take no host (file:///path)");
		goto fail;
	}
	/* user info */
	const char *ui_end = NULL;
	for (const char *c = auth; c < auth + alen; c++)
		if (*c == '@')
			ui_end = c;
	const char *host = auth;
	if (ui_end) {
		const char *colon = memchr(auth, ':', (size_t)(ui_end - auth));
		u->user = util_pct_decode(auth, (size_t)((colon ? colon : ui_end) - auth));
		if (colon)
			u->pass = util_pct_decode(colon + 1, (size_t)(ui_end - colon - 1));
		host = ui_end + 1;
		if (!u->user || (colon && !u->pass)) {
			rc = md_fail(MD_EINVAL, "git source: bad %%-escape in the URL's user info");
			goto fail;
		}
	}
	size_t hlen = (size_t)(auth + alen - host);
	if (strcmp(u->scheme, "file") && !hlen) {
		rc = md_fail(MD_EINVAL, "git source: no host in URL");
		goto fail;
	}
	/* HOST:PORT, the port all digits ([v6]:PORT too); "host:org/x.git"
	 * is git's scp-like form, which a URL writes with a '/' */
	const char *hend = host + hlen, *rb = memchr(host, ']', hlen);
	const char *colon = memchr(rb ? rb : host, ':', (size_t)(hend - (rb ? rb : host)));
	if (colon) {
		const char *c = colon + 1;
		while (c < hend && *c >= '0' && *c <= '9')
			c++;
		if (c != hend || c == colon + 1) {
			rc = md_fail(MD_EINVAL, "git source: '%.*s' is no HOST:PORT; git's scp-like "
						"'host:path' is written %s://host/path",
				     (int)hlen, host, u->scheme);
			goto fail;
		}
	}
	if (asprintf(&u->url, "%s://%.*s%.*s", u->scheme, (int)alen, auth, (int)plen, path) < 0 ||
	    asprintf(&u->clean, "%s://%.*s%.*s", u->scheme, (int)hlen, host, (int)plen, path) < 0) {
		u->url = u->clean = NULL;
		rc = MD_ENOMEM;
		goto fail;
	}
	/* name: last two path components, ".git" stripped */
	char *p = strndup(path, plen);
	if (!p) {
		rc = MD_ENOMEM;
		goto fail;
	}
	size_t l = strlen(p);
	while (l && p[l - 1] == '/')
		p[--l] = 0;
	if (l > 4 && !strcmp(p + l - 4, ".git"))
		p[l -= 4] = 0;
	while (l && p[l - 1] == '/')
		p[--l] = 0;
	char *last = strrchr(p, '/');
	if (last && last > p) {
		*last = 0;
		char *org = strrchr(p, '/');
		org = org ? org + 1 : p;
		char *nm;
		if (asprintf(&nm, "%s/%s", org, last + 1) >= 0) {
			if (util_check_model_name(nm) == 0)
				u->name = nm;
			else
				free(nm);
		}
		md_clearerr();
	}
	free(p);
	*out = u;
	return 0;
fail:
	gitsrc_url_free(u);
	return rc;
}

/* ---- credentials ---- */

static int default_port(const char *scheme)
{
	return !strcmp(scheme, "https") ? 443 : !strcmp(scheme, "http") ? 80 : !strcmp(scheme, "ssh") ? 22 : 0;
}

/* scheme, host (lower-cased), port of url; user/pass when wanted. */
static int parse_origin(const char *url, struct cred *o, int want_userinfo)
{
	memset(o, 0, sizeof *o);
	const char *auth, *path;
	size_t alen;
	if (split_url(url, &o->scheme, &auth, &alen, &path))
		return MD_EINVAL;
	const char *host = auth;
	for (const char *c = auth; c < auth + alen; c++)
		if (*c == '@')
			host = c + 1;
	if (want_userinfo && host > auth) {
		const char *colon = memchr(auth, ':', (size_t)(host - 1 - auth));
		if (colon) {
			/* git-credential-store's format: both %-encoded */
			o->user = util_pct_decode(auth, (size_t)(colon - auth));
			o->pass = util_pct_decode(colon + 1, (size_t)(host - 2 - colon));
		}
	}
	const char *end = auth + alen;
	const char *colon = NULL;
	if (*host == '[') {
		const char *rb = memchr(host, ']', (size_t)(end - host));
		if (rb && rb + 1 < end && rb[1] == ':')
			colon = rb + 1;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
	}
	o->host = strndup(host, (size_t)((colon ? colon : end) - host));
	for (char *c = o->host; c && *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	o->port = colon ? atoi(colon + 1) : default_port(o->scheme);
	return o->host ? 0 : MD_ENOMEM;
}

static void cred_wipe(struct cred *c)
{
	if (c->pass) {
		explicit_bzero(c->pass, strlen(c->pass));
		free(c->pass);
	}
	if (c->user) {
		explicit_bzero(c->user, strlen(c->user));
		free(c->user);
	}
	free(c->scheme);
	free(c->host);
	memset(c, 0, sizeof *c);
}

void gitsrc_creds_free(struct gitsrc_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		cred_wipe(&c->v[i]);
	free(c->v);
	free(c);
}

int gitsrc_creds_load(const char *path, struct gitsrc_creds **out)
{
	struct gitsrc_creds *c = calloc(1, sizeof *c);
	*out = NULL;
	if (!c)
		return MD_ENOMEM;
	if (!path) {
		*out = c;
		return 0;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*out = c;
			return 0;
		}
		free(c);
		return md_fail(MD_EIO, "%s: %s", path, strerror(errno));
	}
	char *buf = calloc(1, GITSRC_MAX_CRED_FILE + 2);
	ssize_t n = buf ? util_read_full(fd, buf, GITSRC_MAX_CRED_FILE + 1) : -1;
	close(fd);
	int rc = 0;
	if (n < 0) {
		rc = buf ? md_fail(MD_EIO, "%s: cannot read", path) : MD_ENOMEM;
		goto out;
	}
	if (n > GITSRC_MAX_CRED_FILE) {
		rc = md_fail(MD_ETOOBIG, "%s: credential file over %d bytes", path, GITSRC_MAX_CRED_FILE);
		goto out;
	}
	int lineno = 0;
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		size_t l = strlen(line);
		while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
			line[--l] = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		struct cred cr;
		if (parse_origin(line, &cr, 1) || !cr.user || !cr.pass) {
			cred_wipe(&cr);
			rc = md_fail(MD_EINVAL, "%s: line %d: want https://user:token@host", path, lineno);
			goto out;
		}
		struct cred *nv = realloc(c->v, (c->n + 1) * sizeof *nv);
		if (!nv) {
			cred_wipe(&cr);
			rc = MD_ENOMEM;
			goto out;
		}
		c->v = nv;
		c->v[c->n++] = cr;
	}
out:
	if (buf) {
		explicit_bzero(buf, GITSRC_MAX_CRED_FILE + 2);
		free(buf);
	}
	if (rc) {
		gitsrc_creds_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int gitsrc_creds_find(const struct gitsrc_creds *c, const char *url, const char **user,
		      const char **pass)
{
	*user = *pass = NULL;
	struct cred o;
	if (!c || parse_origin(url, &o, 0))
		return 0;
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].scheme, o.scheme) && !strcmp(c->v[i].host, o.host) &&
		    c->v[i].port == o.port) {
			*user = c->v[i].user;
			*pass = c->v[i].pass;
			break;
		}
	}
	cred_wipe(&o);
	return *user != NULL;
}

/* ---- fetch ---- */

struct fetch_ctx {
	const struct gitsrc_url *u;
	const struct gitsrc_creds *creds;
	atomic_int *cancel;
	int tries;
	int asked; /* the server wanted credentials */
	int none;  /* and there were none to give */
};

static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
		   unsigned int allowed, void *payload)
{
	struct fetch_ctx *f = payload;
	f->asked = 1;
	if (f->tries++ >= 3)
		return GIT_EAUTH;
	if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
		const char *user = f->u->user, *pass = f->u->pass;
		if (!pass)
			gitsrc_creds_find(f->creds, url, &user, &pass);
		if (user && pass)
			return git_credential_userpass_plaintext_new(out, user, pass);
	}
	if (allowed & GIT_CREDENTIAL_SSH_KEY)
		return git_credential_ssh_key_from_agent(out, user_from_url ? user_from_url : "git");
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user_from_url ? user_from_url : "git");
	f->none = 1;
	return GIT_PASSTHROUGH;
}

static int progress_cb(const git_indexer_progress *st, void *payload)
{
	struct fetch_ctx *f = payload;
	(void)st;
	return f->cancel && atomic_load(f->cancel) ? -1 : 0;
}

static int sideband_cb(const char *str, int len, void *payload)
{
	struct fetch_ctx *f = payload;
	(void)str;
	(void)len;
	return f->cancel && atomic_load(f->cancel) ? -1 : 0;
}

void gitsrc_close(struct gitsrc_repo *r)
{
	if (!r)
		return;
	git_repository_free(r->repo);
	if (r->lockfd >= 0)
		close(r->lockfd);
	free(r->default_branch);
	free(r);
}

const char *gitsrc_default_branch(const struct gitsrc_repo *r)
{
	return r->default_branch;
}

/* 1 when msg may hold the URL's password: its user info as written or the
 * password either way. A plain reason ("Connection refused") is passed on. */
static int leaks_userinfo(const struct gitsrc_url *u, const char *msg)
{
	if (!u->user)
		return 0;
	const char *auth = strstr(u->url, "://"), *at = NULL;
	if (!auth)
		return 1;
	auth += 3;
	for (const char *c = auth; *c && *c != '/'; c++)
		if (*c == '@')
			at = c;
	if (!at)
		return 1;
	size_t n = (size_t)(at - auth);
	const char *colon = memchr(auth, ':', n);
	if (!colon)
		return 0; /* a user name alone (ssh://git@host) is no secret */
	char raw[GITSRC_MAX_URL + 1];
	snprintf(raw, sizeof raw, "%.*s", (int)(at - colon - 1), colon + 1);
	int leak = (*raw && strstr(msg, raw)) || (u->pass && *u->pass && strstr(msg, u->pass));
	explicit_bzero(raw, sizeof raw);
	return leak;
}

/* ---- the cache on disk ---- */

static int stale_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	size_t l = strlen(p);
	const char *base = strrchr(p, '/');
	base = base ? base + 1 : p;
	/* libgit2's lock files (refs/heads/x.lock, packed-refs.lock,
	 * config.lock, ...) and an indexer's temporary pack */
	if (type == FTW_F && ((l > 5 && !strcmp(p + l - 5, ".lock")) ||
			      !strncmp(base, "pack_git2_", 10) || !strncmp(base, "tmp_pack_", 9)))
		unlink(p);
	return 0;
}

/* 1 when libgit2's last error came from the network side (the server, the
 * connection, TLS, ssh, our callbacks), 0 when from the cache on disk. */
static int remote_side_error(void)
{
	const git_error *e = git_error_last();
	if (!e)
		return 1;
	switch (e->klass) {
	case GIT_ERROR_NET:
	case GIT_ERROR_HTTP:
	case GIT_ERROR_SSH:
	case GIT_ERROR_SSL:
	case GIT_ERROR_CALLBACK:
		return 1;
	default:
		return 0;
	}
}

/* Open (or create) the bare cache and fetch into it. *local_fail is set
 * when a failure came from the cache rather than the remote. */
static int fetch_into(struct gitsrc_repo *r, const char *cache_dir, const struct gitsrc_url *u,
		      const struct gitsrc_creds *creds, atomic_int *cancel, int *local_fail)
{
	int rc;
	struct stat sb;
	*local_fail = 0;
	/* an existing cache is opened; one that does not open (an interrupted
	 * first fetch) is initialised again in place, keeping its objects */
	if ((stat(cache_dir, &sb) != 0 || git_repository_open_bare(&r->repo, cache_dir) < 0) &&
	    git_repository_init(&r->repo, cache_dir, 1) < 0) {
		*local_fail = 1;
		return gerr(MD_EIO, cache_dir);
	}
	/* the URL as given: no url.*.insteadOf rewriting from the daemon's
	 * git config (whose regex matching also leaks in libgit2 1.5) */
	git_remote *remote = NULL;
	git_remote_create_options ro = GIT_REMOTE_CREATE_OPTIONS_INIT;
	ro.repository = r->repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if (git_remote_create_with_opts(&remote, u->url, &ro) < 0) {
		*local_fail = !remote_side_error();
		return md_fail(MD_EINVAL, "%s: %s", u->clean, "not a remote libgit2 can use");
	}
	struct fetch_ctx fc = { .u = u, .creds = creds, .cancel = cancel };
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	fo.callbacks.credentials = cred_cb;
	fo.callbacks.transfer_progress = progress_cb;
	fo.callbacks.sideband_progress = sideband_cb;
	fo.callbacks.payload = &fc;
	fo.prune = GIT_FETCH_PRUNE;
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	int connected = 0;
	if (git_remote_connect(remote, GIT_DIRECTION_FETCH, &fo.callbacks, &fo.proxy_opts,
			       &fo.custom_headers) < 0)
		goto netfail;
	connected = 1;
	git_buf db = GIT_BUF_INIT;
	if (git_remote_default_branch(&db, remote) == 0 && db.ptr) {
		const char *b = db.ptr;
		if (!strncmp(b, "refs/heads/", 11))
			b += 11;
		r->default_branch = strdup(b);
	}
	git_buf_dispose(&db);
	git_error_clear();
	char *specs[] = { "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*" };
	git_strarray sa = { specs, 2 };
	if (git_remote_download(remote, &sa, &fo) < 0 ||
	    git_remote_update_tips(remote, &fo.callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
				   "modeld fetch") < 0)
		goto netfail;
	{
		const git_remote_head **heads;
		size_t nh = 0;
		r->empty = git_remote_ls(&heads, &nh, remote) == 0 && nh == 0;
	}
	git_remote_disconnect(remote);
	git_remote_free(remote);
	return 0;
netfail:
	if (cancel && atomic_load(cancel)) {
		rc = md_fail(MD_ECANCELED, "%s: fetch canceled", u->clean);
	} else if (fc.none) {
		rc = md_fail(MD_EAUTH, "%s: the server wants credentials: give user:token in the URL "
			     "or in the daemon's git_credentials file", u->clean);
	} else if (fc.asked && fc.tries > 1) {
		rc = md_fail(MD_EAUTH, "%s: the server refused the credentials", u->clean);
	} else {
		/* the server answered, and then the cache failed (libgit2
		 * reports socket errors as GIT_ERROR_OS too: a failure to
		 * connect is never the cache's) */
		*local_fail = connected && !remote_side_error();
		/* libgit2's messages may echo the URL (and its user info): only
		 * without user info is its message passed on */
		const git_error *e = git_error_last();
		const char *msg = e && e->message ? e->message : "fetch failed";
		if (leaks_userinfo(u, msg))
			rc = md_fail(MD_ENET, "%s: fetch failed", u->clean);
		else
			rc = md_fail(MD_ENET, "%s: fetch failed: %.200s", u->clean, msg);
	}
	git_remote_free(remote);
	return rc;
}

int gitsrc_open_fetch(const char *cache_dir, const struct gitsrc_url *u,
		      const struct gitsrc_creds *creds, atomic_int *cancel,
		      struct gitsrc_repo **out)
{
	*out = NULL;
	int rc = md_lib_need(MD_LIB_GIT2, "git");
	if (rc)
		return rc;
	pthread_once(&init_once, do_init);
	struct gitsrc_repo *r = calloc(1, sizeof *r);
	if (!r)
		return MD_ENOMEM;
	r->lockfd = -1;
	char lockp[4200];
	snprintf(lockp, sizeof lockp, "%s.lock", cache_dir);
	if ((r->lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		rc = md_fail(MD_EIO, "%s: %s", lockp, strerror(errno));
		goto fail;
	}
	/* another pull of this remote holds the cache: wait for it, but stay
	 * cancelable (modelctl cancel, daemon shutdown) while waiting */
	while (flock(r->lockfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = md_fail(MD_EIO, "%s: %s", lockp, strerror(errno));
			goto fail;
		}
		if (cancel && atomic_load(cancel)) {
			rc = md_fail(MD_ECANCELED, "canceled while waiting for another pull of %s",
				     u->clean);
			goto fail;
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	/* the flock is ours: any lock file libgit2 left in the cache was left
	 * by a process killed mid-fetch and would refuse every later fetch */
	struct stat sb;
	int existed = stat(cache_dir, &sb) == 0;
	if (existed)
		nftw(cache_dir, stale_cb, 16, FTW_PHYS);
	int local_fail;
	rc = fetch_into(r, cache_dir, u, creds, cancel, &local_fail);
	if (rc && local_fail && existed) {
		/* a damaged cache (truncated pack, missing objects, garbage
		 * config): drop it and fetch everything once more */
		md_clearerr();
		git_repository_free(r->repo);
		r->repo = NULL;
		free(r->default_branch);
		r->default_branch = NULL;
		util_rmtree(cache_dir);
		rc = fetch_into(r, cache_dir, u, creds, cancel, &local_fail);
		if (!rc)
			r->rebuilt = 1;
	}
	if (rc)
		goto fail;
	*out = r;
	return 0;
fail:
	gitsrc_close(r);
	return rc;
}

int gitsrc_rebuilt(const struct gitsrc_repo *r)
{
	return r->rebuilt;
}

int gitsrc_cache_drop(const char *cache_dir, uint64_t *bytes)
{
	*bytes = 0;
	char lockp[4200];
	struct stat sb;
	if (lstat(cache_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return 0;
	snprintf(lockp, sizeof lockp, "%s.lock", cache_dir);
	int fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return md_fail(MD_EIO, "%s: %s", lockp, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return 0;
	}
	*bytes = util_tree_bytes(cache_dir);
	util_rmtree(cache_dir);
	int gone = lstat(cache_dir, &sb) != 0;
	close(fd);
	return gone ? 1 : md_fail(MD_EIO, "%s: could not be removed", cache_dir);
}

int gitsrc_resolve(struct gitsrc_repo *r, const char *ref, char commit[41], char tree[41],
		   char **fullref)
{
	*fullref = NULL;
	const char *want = ref ? ref : r->default_branch;
	if (!want && r->empty)
		return md_fail(MD_ENOENT, "empty repository: no branches or tags to pull");
	if (!want)
		return md_fail(MD_ENOENT, "the remote's default branch (HEAD) has no commits: name a "
			       "branch, tag or commit with @REF");
	git_object *obj = NULL;
	char full[1100];
	if (strlen(want) > 1000)
		return md_fail(MD_EINVAL, "ref too long");
	const char *forms[] = { "refs/heads/%s", "refs/tags/%s" };
	for (int i = 0; i < 2 && !obj; i++) {
		git_reference *gr;
		snprintf(full, sizeof full, forms[i], want);
		if (git_reference_lookup(&gr, r->repo, full) == 0) {
			if (git_reference_peel(&obj, gr, GIT_OBJECT_COMMIT) == 0 &&
			    !(*fullref = strdup(full))) {
				git_object_free(obj);
				git_reference_free(gr);
				return MD_ENOMEM;
			}
			git_reference_free(gr);
		}
	}
	size_t wl = strlen(want);
	if (!obj && wl >= 7 && wl <= 40 && strspn(want, "0123456789abcdef") == wl) {
		git_oid oid;
		if (git_oid_fromstrn(&oid, want, wl) == 0) {
			git_commit *c;
			if (git_commit_lookup_prefix(&c, r->repo, &oid, wl) == 0)
				obj = (git_object *)c;
		}
	}
	git_error_clear();
	if (!obj)
		return md_fail(MD_ENOENT, "%s: no such branch, tag or commit", want);
	git_commit *c = (git_commit *)obj;
	git_oid_tostr(commit, 41, git_commit_id(c));
	git_oid_tostr(tree, 41, git_commit_tree_id(c));
	git_object_free(obj);
	return 0;
}

/* ---- tree listing ---- */

struct walk {
	struct gitsrc_repo *r;
	git_odb *odb;
	struct gitsrc_file *v;
	size_t n, cap;
	int rc;
};

void gitsrc_files_free(struct gitsrc_file *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++)
		free(f[i].path);
	free(f);
}

static int walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct walk *w = payload;
	const char *name = git_tree_entry_name(e);
	char path[8192];
	if ((size_t)snprintf(path, sizeof path, "%s%s", root, name) >= sizeof path) {
		w->rc = md_fail(MD_EREFUSED, "%.200s...: path too long", root);
		return -1;
	}
	git_filemode_t mode = git_tree_entry_filemode(e);
	if (mode == GIT_FILEMODE_COMMIT) {
		w->rc = md_fail(MD_EREFUSED, "%s: submodule (gitlink) in the tree: not supported", path);
		return -1;
	}
	if (mode == GIT_FILEMODE_LINK) {
		w->rc = md_fail(MD_EREFUSED, "%s: symlink in the tree: refused", path);
		return -1;
	}
	/* every component, trees included */
	if (!strcmp(name, "..") || !strcmp(name, ".") || util_check_relpath(path)) {
		w->rc = md_fail(MD_EREFUSED, "%s: path refused (.., absolute or control characters)",
				path);
		return -1;
	}
	if (mode == GIT_FILEMODE_TREE)
		return 0;
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE) {
		w->rc = md_fail(MD_EREFUSED, "%s: unknown tree entry mode %o", path, (unsigned)mode);
		return -1;
	}
	if (w->n == GITSRC_MAX_FILES) {
		w->rc = md_fail(MD_EREFUSED, "tree has more than %d files", GITSRC_MAX_FILES);
		return -1;
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		struct gitsrc_file *nv = realloc(w->v, nc * sizeof *nv);
		if (!nv) {
			w->rc = MD_ENOMEM;
			return -1;
		}
		w->v = nv;
		w->cap = nc;
	}
	struct gitsrc_file *f = &w->v[w->n];
	memset(f, 0, sizeof *f);
	const git_oid *oid = git_tree_entry_id(e);
	git_oid_tostr(f->blob, sizeof f->blob, oid);
	f->executable = mode == GIT_FILEMODE_BLOB_EXECUTABLE;
	size_t sz;
	git_object_t type;
	if (git_odb_read_header(&sz, &type, w->odb, oid) < 0 || type != GIT_OBJECT_BLOB) {
		w->rc = md_fail(MD_ECORRUPT, "%s: blob %s missing from the fetched objects", path, f->blob);
		return -1;
	}
	f->size = sz;
	if (f->size > GITSRC_MAX_BLOB) {
		w->rc = md_fail(MD_EREFUSED, "%s: blob of %zu bytes over the %llu-byte cap (use Git LFS)",
				path, sz, (unsigned long long)GITSRC_MAX_BLOB);
		return -1;
	}
	if (sz < LFS_MAX_POINTER) {
		git_odb_object *o;
		if (git_odb_read(&o, w->odb, oid) < 0) {
			w->rc = md_fail(MD_ECORRUPT, "%s: cannot read blob %s", path, f->blob);
			return -1;
		}
		int lr = lfs_parse_pointer(git_odb_object_data(o), git_odb_object_size(o), f->lfs_oid,
					   &f->lfs_size);
		git_odb_object_free(o);
		if (lr < 0) {
			w->rc = md_fail(lr, "%s: malformed Git LFS pointer (%s)", path, md_errmsg(lr));
			return -1;
		}
		f->lfs = lr == 1;
	}
	if (!(f->path = strdup(path))) {
		w->rc = MD_ENOMEM;
		return -1;
	}
	w->n++;
	return 0;
}

int gitsrc_list(struct gitsrc_repo *r, const char *commit, struct gitsrc_file **files, size_t *n)
{
	*files = NULL;
	*n = 0;
	git_oid oid;
	git_commit *c = NULL;
	git_tree *t = NULL;
	struct walk w = { .r = r };
	if (git_oid_fromstr(&oid, commit) < 0 || git_commit_lookup(&c, r->repo, &oid) < 0)
		return md_fail(MD_ENOENT, "%s: no such commit in the cache", commit);
	if (git_commit_tree(&t, c) < 0 || git_repository_odb(&w.odb, r->repo) < 0) {
		git_commit_free(c);
		git_tree_free(t);
		return gerr(MD_ECORRUPT, commit);
	}
	int grc = git_tree_walk(t, GIT_TREEWALK_PRE, walk_cb, &w);
	if (grc < 0 && !w.rc)
		w.rc = gerr(MD_ECORRUPT, commit);
	git_odb_free(w.odb);
	git_tree_free(t);
	git_commit_free(c);
	if (w.rc) {
		gitsrc_files_free(w.v, w.n);
		return w.rc;
	}
	*files = w.v;
	*n = w.n;
	return 0;
}

int gitsrc_read_blob(struct gitsrc_repo *r, const char *blob, size_t max, char **buf, size_t *n)
{
	git_oid oid;
	git_blob *b;
	*buf = NULL;
	*n = 0;
	if (git_oid_fromstr(&oid, blob) < 0 || git_blob_lookup(&b, r->repo, &oid) < 0)
		return md_fail(MD_ENOENT, "blob %s not in the cache", blob);
	size_t sz = (size_t)git_blob_rawsize(b);
	if (sz > max) {
		git_blob_free(b);
		return md_fail(MD_ETOOBIG, "blob %s over %zu bytes", blob, max);
	}
	*buf = malloc(sz + 1);
	if (!*buf) {
		git_blob_free(b);
		return MD_ENOMEM;
	}
	memcpy(*buf, git_blob_rawcontent(b), sz);
	(*buf)[sz] = 0;
	*n = sz;
	git_blob_free(b);
	return 0;
}

int gitsrc_write_blob(struct gitsrc_repo *r, const char *blob, const char *path, int no_fsync,
		      char sha256[65])
{
	git_oid oid;
	git_blob *b;
	if (git_oid_fromstr(&oid, blob) < 0 || git_blob_lookup(&b, r->repo, &oid) < 0)
		return md_fail(MD_ENOENT, "blob %s not in the cache", blob);
	size_t sz = (size_t)git_blob_rawsize(b);
	const unsigned char *data = git_blob_rawcontent(b);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;
	if (fd < 0) {
		rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	} else {
		if (util_write_all(fd, data, sz) < 0 || (!no_fsync && fdatasync(fd) < 0))
			rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
		if (close(fd) < 0 && !rc)
			rc = md_fail(md_from_errno(errno), "%s: %s", path, strerror(errno));
	}
	if (!rc)
		sha256_hex(data, sz, sha256);
	git_blob_free(b);
	return rc;
}

int gitsrc_lfsconfig_url(struct gitsrc_repo *r, const struct gitsrc_file *files, size_t n,
			 const char *tmpdir, char **url)
{
	*url = NULL;
	const struct gitsrc_file *f = NULL;
	for (size_t i = 0; i < n && !f; i++)
		if (!strcmp(files[i].path, ".lfsconfig"))
			f = &files[i];
	if (!f)
		return 0;
	char *buf;
	size_t len;
	int rc = gitsrc_read_blob(r, f->blob, 64 << 10, &buf, &len);
	if (rc)
		return rc == MD_ETOOBIG ? md_fail(rc, ".lfsconfig: over 64 KiB") : rc;
	char tp[4200];
	snprintf(tp, sizeof tp, "%s/.lfsconfig-XXXXXX", tmpdir);
	int fd = mkstemp(tp);
	if (fd < 0) {
		free(buf);
		return md_fail(MD_EIO, "%s: %s", tp, strerror(errno));
	}
	rc = util_write_all(fd, buf, len) < 0 ? md_fail(MD_EIO, "%s: write failed", tp) : 0;
	close(fd);
	free(buf);
	git_config *cfg = NULL;
	if (!rc && git_config_open_ondisk(&cfg, tp) < 0)
		rc = gerr(MD_EINVAL, ".lfsconfig");
	if (!rc) {
		git_buf b = GIT_BUF_INIT;
		if (git_config_get_string_buf(&b, cfg, "lfs.url") == 0 && b.ptr && *b.ptr)
			*url = strdup(b.ptr);
		git_buf_dispose(&b);
		git_error_clear();
	}
	git_config_free(cfg);
	unlink(tp);
	return rc;
}
