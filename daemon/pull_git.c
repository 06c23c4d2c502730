/* daemon/pull_git.c — see pull_git.h. */
#include "daemon/pull_git.h"
#include "daemon/pull.h"
#include "daemon/describe.h"
#include "daemon/worker.h"
#include "converters/pack.h"
#include "registry/catalog.h"
#include "registry/ingest.h"
#include "meta/policy.h"
#include "sources/git.h"
#include "sources/glob.h"
#include "sources/lfs.h"
#include "sources/xfer.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static void progress(void *arg, uint64_t done, uint64_t total)
{
	struct job *j = arg;
	(void)total;
	atomic_store(&j->ctl.done, j->ctl_base + done);
}

static int is_license_name(const char *p)
{
	return !strcasecmp(p, "README.md") || !strncasecmp(p, "LICENSE", 7) ||
	       !strncasecmp(p, "LICENCE", 7) || !strncasecmp(p, "COPYING", 7);
}

static void slim(json_t *m)
{
	json_object_set_new(m, "file_count",
			    json_integer((json_int_t)json_array_size(json_object_get(m, "files"))));
	json_object_del(m, "files");
	json_object_del(m, "card");
	json_object_del(m, "v");
}


/* mkdir -p of path's parent. */
static int mkparent(const char *path)
{
	char tmp[8400];
	snprintf(tmp, sizeof tmp, "%s", path);
	char *s = strrchr(tmp, '/');
	if (!s)
		return 0;
	*s = 0;
	return util_mkdir_p(tmp, 0755);
}

/* Copy an object from a file:// remote's lfs/objects, verifying size and
 * oid while copying. */
static int copy_local(const char *src, const char *dst, const struct gitsrc_file *f,
		      char sha_out[65])
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	struct sha256 h;
	uint64_t got = 0;
	char *buf = malloc(1 << 20);
	if (in < 0 || !buf) {
		free(buf);
		if (in >= 0)
			close(in);
		return buf ? md_fail(MD_EIO, "%s: %s", f->path, strerror(errno)) : MD_ENOMEM;
	}
	if ((rc = mkparent(dst)) || (rc = sha256_init(&h)))
		goto out;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		sha256_free(&h);
		rc = md_fail(MD_EIO, "%s: %s", dst, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = read(in, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && util_write_all(out, buf, (size_t)n) < 0)) {
			sha256_free(&h);
			rc = md_fail(MD_EIO, "%s: %s", f->path, strerror(errno));
			goto out;
		}
		if (!n)
			break;
		sha256_update(&h, buf, (size_t)n);
		got += (uint64_t)n;
		if (got > f->lfs_size)
			break;
	}
	uint8_t dg[32];
	sha256_final(&h, dg);
	util_hex(dg, 32, sha_out);
	if (got != f->lfs_size)
		rc = md_fail(MD_ECORRUPT, "%s: LFS pointer says %llu bytes, the object has %s%llu",
			     f->path, (unsigned long long)f->lfs_size, got > f->lfs_size ? "more than " : "",
			     (unsigned long long)got);
	else if (strcmp(sha_out, f->lfs_oid))
		rc = md_fail(MD_ECORRUPT, "%s: LFS object does not match its oid %s", f->path, f->lfs_oid);
	else if (fdatasync(out) < 0)
		rc = md_fail(MD_EIO, "%s: %s", dst, strerror(errno));
out:
	if (out >= 0)
		close(out);
	close(in);
	free(buf);
	return rc;
}

/* "Authorization: Basic base64(user:pass)", malloc'd. */
static char *basic_header(const char *user, const char *pass)
{
	char *up = NULL;
	if (asprintf(&up, "%s:%s", user, pass) < 0)
		return NULL;
	size_t n = strlen(up);
	char *h = xfer_basic_auth(up);
	explicit_bzero(up, n);
	free(up);
	return h;
}

struct lfs_job {
	struct daemon *d;
	struct job *j;
	const struct gitsrc_url *u;
	const struct gitsrc_creds *creds;
	const char *endpoint;
	const char *refname;
	const char *dir;   /* STAGE/lfs */
	uint64_t rate;
};

static int headers_equal(char *const *a, char *const *b)
{
	for (int i = 0;; i++) {
		if (!a[i] || !b[i])
			return !a[i] && !b[i];
		if (strcmp(a[i], b[i]))
			return 0;
	}
}

/* Batch, then download in groups of equal origin and headers. */
static int lfs_fetch(struct lfs_job *L, struct gitsrc_file **todo, size_t n)
{
	struct lfs_object *objs = calloc(n, sizeof *objs);
	struct xfer_item *items = calloc(n, sizeof *items);
	const char *user = NULL, *pass = NULL;
	int rc = 0;
	if (!objs || !items) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		objs[i].oid = todo[i]->lfs_oid;
		objs[i].size = todo[i]->lfs_size;
		objs[i].path = todo[i]->path;
	}
	if (L->u->pass && xfer_same_origin(L->endpoint, L->u->clean)) {
		user = L->u->user;
		pass = L->u->pass;
	} else {
		gitsrc_creds_find(L->creds, L->endpoint, &user, &pass);
	}
	for (int attempt = 0;; attempt++) {
		if ((rc = lfs_batch(L->endpoint, user, pass, objs, n, L->refname)))
			goto out;
		int expired = 0;
		time_t now = time(NULL);
		for (size_t i = 0; i < n; i++)
			if (objs[i].expires && objs[i].expires <= now + 5)
				expired = 1;
		if (!expired)
			break;
		lfs_objects_clear(objs, n);
		if (attempt == 1) {
			rc = md_fail(MD_EPROTO, "%s: LFS server hands out download links that have already expired",
				     L->endpoint);
			goto out;
		}
	}
	char *done = calloc(n, 1);
	if (!done) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (size_t g = 0; g < n && !rc; g++) {
		if (done[g])
			continue;
		size_t ni = 0;
		for (size_t i = g; i < n; i++) {
			if (done[i] || !xfer_same_origin(objs[i].href, objs[g].href) ||
			    !headers_equal(objs[i].headers, objs[g].headers))
				continue;
			done[i] = 1;
			items[ni] = (struct xfer_item){ .url = objs[i].href, .dest = todo[i]->path,
							.size = objs[i].size, .sha256 = objs[i].oid };
			ni++;
		}
		/* no headers from the server: the credentials of that origin, if any */
		char *extra[LFS_MAX_HEADERS + 2] = { 0 };
		const char *hv[LFS_MAX_HEADERS + 2] = { 0 };
		int k = 0;
		for (; objs[g].headers[k]; k++)
			hv[k] = objs[g].headers[k];
		const char *hu = NULL, *hp = NULL;
		if (!k && gitsrc_creds_find(L->creds, objs[g].href, &hu, &hp))
			hv[k++] = extra[0] = basic_header(hu, hp);
		else if (!k && L->u->pass && xfer_same_origin(objs[g].href, L->u->clean))
			hv[k++] = extra[0] = basic_header(L->u->user, L->u->pass);
		struct xfer_opts xo = { .auth_origin = objs[g].href, .auth_headers = k ? hv : NULL,
					.label = L->u->clean, .rate_limit = L->rate,
					.progress = progress, .progress_arg = L->j,
					.cancel = &L->j->ctl.cancel };
		L->j->ctl_base = atomic_load(&L->j->ctl.done);
		rc = xfer_run(L->dir, items, ni, &xo);
		if (extra[0]) {
			explicit_bzero(extra[0], strlen(extra[0]));
			free(extra[0]);
		}
		for (size_t i = 0; i < ni && !rc; i++)
			if (strcmp(items[i].sha256_out, items[i].sha256))
				rc = md_fail(MD_ECORRUPT, "%s: LFS object does not match its oid", items[i].dest);
	}
	free(done);
out:
	if (objs)
		lfs_objects_clear(objs, n);
	free(objs);
	free(items);
	return rc;
}

int pull_git_job(struct daemon *d, struct job *j, uint64_t rate, json_t **res)
{
	json_t *a = j->args;
	struct gitsrc_url *u = NULL;
	struct gitsrc_creds *creds = NULL;
	struct gitsrc_repo *repo = NULL;
	struct gitsrc_file *files = NULL;
	struct gitsrc_file **lfs_todo = NULL, **uniq = NULL;
	size_t nfiles = 0, nlfs = 0, nuniq = 0;
	struct ingest *ing = NULL;
	char *lfsurl = NULL, *endpoint = NULL, *fullref = NULL, *skip = NULL;
	json_t *extra = NULL, *m = NULL, *prov_files = json_array(), *have = NULL, *stored = NULL;
	char dir[4200] = "", sub[4300], cache[4200], key[65], commit[41], tree[41];
	char revkey[65];
	int rc, done_ok = 0, revkeyed = 0;

	const char *refarg = json_string_value(json_object_get(a, "ref"));
	const char *source = json_string_value(json_object_get(a, "source"));
	int plain = source && !strcmp(source, "git") && !gitsrc_is_git_ref(refarg);
	if ((rc = md_lib_need(MD_LIB_GIT2, "pull")) || (rc = gitsrc_url_parse(refarg, plain, &u)))
		goto out;
	const char *name = json_string_value(json_object_get(a, "name"));
	if (name) {
		if ((rc = util_check_model_name(name)))
			goto out;
	} else if (!(name = u->name)) {
		rc = md_fail(MD_EINVAL, "%s: cannot derive ORG/NAME from the URL: use --name", u->clean);
		goto out;
	}
	if ((rc = gitsrc_creds_load(d->cfg->git_credentials, &creds)))
		goto out;

	/* the bare cache: STORE/git/<sha256 of the clean URL>.git */
	sha256_hex(u->clean, strlen(u->clean), key);
	snprintf(cache, sizeof cache, "%s/git", d->st->root);
	if ((rc = util_mkdir_p(cache, 0755)))
		goto out;
	snprintf(cache, sizeof cache, "%s/git/%s.git", d->st->root, key);
	if ((rc = gitsrc_open_fetch(cache, u, creds, &j->ctl.cancel, &repo)))
		goto out;
	if (gitsrc_rebuilt(repo))
		log_warn("%s: the git cache %s was damaged: dropped and fetched anew", u->clean, cache);
	if ((rc = gitsrc_resolve(repo, u->ref, commit, tree, &fullref)))
		goto out;
	const char *refname = u->ref ? u->ref : gitsrc_default_branch(repo);
	/* the catalog ref: the branch or tag name, none for a commit id */
	const char *cref = fullref && util_check_ref(refname) == 0 ? refname : NULL;
	md_clearerr();

	/* stored with every file of the commit: only the ref moves. The cache
	 * lock (gitsrc_open_fetch) makes a pull of the same remote wait for
	 * this one, so what is read here is not stored again meanwhile. */
	MDB_txn *txn;
	/* ... and a pull of the same name and commit from another remote (or
	 * a hub) for this one: it then starts from what that one stored */
	if ((rc = pull_claim_rev(name, commit, &j->ctl.cancel, revkey)))
		goto out;
	revkeyed = 1;
	have = pull_stored_rev(d, name, commit);
	if (have && pull_rev_complete(have)) {
		rc = pull_repoint(d, name, commit, cref, res);
		goto out;
	}
	if ((rc = gitsrc_list(repo, commit, &files, &nfiles)))
		goto out;
	/* --include / --exclude (huggingface_hub's rules, sources/glob.h) */
	skip = calloc(nfiles ? nfiles : 1, 1);
	if (!skip) {
		rc = MD_ENOMEM;
		goto out;
	}
	{
		json_t *ji = json_object_get(a, "include"), *je = json_object_get(a, "exclude");
		size_t ni = json_array_size(ji), ne = json_array_size(je), kept = 0;
		const char *inc[64], *exc[64];
		if (ni > 64 || ne > 64) {
			rc = md_fail(MD_EINVAL, "at most 64 --include and 64 --exclude patterns");
			goto out;
		}
		for (size_t i = 0; i < ni + ne; i++) {
			const char *g = json_string_value(json_array_get(i < ni ? ji : je, i < ni ? i : i - ni));
			if (!g)
				rc = md_fail(MD_EINVAL, "include/exclude patterns must be strings");
			else if (!(rc = glob_check(g)))
				*(i < ni ? &inc[i] : &exc[i - ni]) = g;
			if (rc)
				goto out;
		}
		for (size_t i = 0; i < nfiles; i++) {
			skip[i] = !glob_filter(files[i].path, inc, ni, exc, ne);
			kept += !skip[i];
		}
		if (!kept) {
			rc = pull_no_match(u->clean, commit, nfiles, a);
			goto out;
		}
	}
	/* the revision is stored in part (a filtered pull): take only the
	 * selected files it lacks; "up to date" when it lacks none. partial:
	 * files of the commit neither stored nor selected now */
	stored = pull_rev_files(have);
	if (have && !stored) {
		rc = MD_ENOMEM;
		goto out;
	}
	size_t missing = 0;
	int partial = 0;
	for (size_t i = 0; i < nfiles; i++) {
		int in = json_object_get(stored, files[i].path) != NULL;
		partial |= skip[i] && !in;
		missing += !skip[i] && !in;
		skip[i] |= in; /* stored by an earlier pull of this commit */
	}
	if (!missing) {
		rc = pull_repoint(d, name, commit, cref, res);
		goto out;
	}

	/* staging: STORE/tmp/pull-KEY/{git,lfs}, per remote and commit, resumable */
	char kin[8192], skey[65];
	snprintf(kin, sizeof kin, "git\n%s\n%s", u->clean, commit);
	sha256_hex(kin, strlen(kin), skey);
	skey[24] = 0;
	snprintf(dir, sizeof dir, "%s/tmp/pull-%s", d->st->root, skey);
	snprintf(sub, sizeof sub, "%s/git", dir);
	if ((rc = util_mkdir_p(sub, 0755)))
		goto out;
	snprintf(sub, sizeof sub, "%s/lfs", dir);
	if ((rc = util_mkdir_p(sub, 0755)))
		goto out;
	/* progress is counted here, per file: the ingest would count each
	 * stored file a second time */
	if ((rc = ingest_begin(d->st, NULL, &ing)))
		goto out;
	struct ingest_converter conv;
	worker_converter(&conv, &j->ctl.cancel);
	ingest_set_converter(ing, &conv);
	if (have) {
		/* the manifest committed is the union: stored + fetched now */
		ingest_set_replace(ing);
		if ((rc = pull_add_stored_files(ing, have, prov_files)))
			goto out;
	}

	uint64_t total = 0;
	for (size_t i = 0; i < nfiles; i++)
		if (!skip[i])
			total += files[i].lfs ? files[i].lfs_size : files[i].size;
	atomic_store(&j->ctl.total, total);

	/* 1: ordinary blobs, card and license first (an enforced policy
	 * refuses before any LFS download) */
	for (int pass = 0; pass < 2 && !rc; pass++) {
		for (size_t i = 0; i < nfiles && !rc; i++) {
			struct gitsrc_file *f = &files[i];
			if (skip[i] || f->lfs || (pass == 0) != (is_license_name(f->path) != 0))
				continue;
			char p[8400], sha[65];
			snprintf(p, sizeof p, "%s/git/%s", dir, f->path);
			if ((rc = mkparent(p)) || (rc = gitsrc_write_blob(repo, f->blob, p, 0, sha)) ||
			    (rc = pull_refused_hint(ingest_add_file(ing, f->path, p, sha), f->path)))
				break;
			unlink(p);
			atomic_fetch_add(&j->ctl.done, f->size);
			json_array_append_new(prov_files, json_pack("{s:s,s:s,s:s,s:s}", "path", f->path,
				"sha256", sha, "git_blob", f->blob, "verified_against", "git object id"));
		}
	}
	if (rc)
		goto out;
	if (d->pol && policy_enforce(d->pol)) {
		json_t *probe = json_object();
		rc = describe_revision(d, name, ing, probe);
		json_decref(probe);
		if (rc)
			goto out;
	}

	/* 2: LFS objects the store does not hold yet */
	lfs_todo = calloc(nfiles, sizeof *lfs_todo);
	if (!lfs_todo) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nfiles && !rc; i++) {
		struct gitsrc_file *f = &files[i];
		if (skip[i] || !f->lfs)
			continue;
		json_t *ent = NULL;
		if (store_txn(d->st, 0, &txn) == 0) {
			catalog_origin(d->st, txn, f->lfs_oid, &ent);
			mdb_txn_abort(txn);
		}
		md_clearerr();
		if (ent) {
			/* the oid names the bytes, so the pointer's size must be
			 * the stored object's: a pointer that disagrees is as
			 * wrong here as on a store that must download it */
			uint64_t ssize = (uint64_t)json_integer_value(json_object_get(ent, "size"));
			if (ssize != f->lfs_size) {
				rc = md_fail(MD_ECORRUPT,
					     "%s: LFS pointer size %llu does not match the stored object %s (%llu bytes)",
					     f->path, (unsigned long long)f->lfs_size, f->lfs_oid,
					     (unsigned long long)ssize);
				json_decref(ent);
				break;
			}
			rc = ingest_add_existing(ing, f->path, ent);
			json_array_append_new(prov_files, json_pack("{s:s,s:s,s:s,s:s}", "path", f->path,
				"sha256", f->lfs_oid, "git_blob", f->blob,
				"verified_against", "already stored (same LFS oid)"));
			json_decref(ent);
			atomic_fetch_add(&j->ctl.done, f->lfs_size);
			continue;
		}
		lfs_todo[nlfs++] = f;
	}
	if (rc)
		goto out;
	/* one download per oid: the same object under two paths is fetched
	 * once and staged for the other path as a hard link */
	uniq = calloc(nlfs ? nlfs : 1, sizeof *uniq);
	if (!uniq) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nlfs; i++) {
		size_t k = 0;
		while (k < nuniq && strcmp(uniq[k]->lfs_oid, lfs_todo[i]->lfs_oid))
			k++;
		if (k == nuniq)
			uniq[nuniq++] = lfs_todo[i];
	}
	const char *lfs_how = NULL;
	if (nlfs) {
		if ((rc = gitsrc_lfsconfig_url(repo, files, nfiles, dir, &lfsurl)))
			goto out;
		if (lfsurl) {
			if (strncmp(lfsurl, "https://", 8) && strncmp(lfsurl, "http://", 7)) {
				rc = md_fail(MD_EUNSUP, ".lfsconfig: lfs.url must be http(s)");
				goto out;
			}
			endpoint = strdup(lfsurl);
		} else if ((rc = lfs_endpoint(u->scheme, u->clean, &endpoint))) {
			goto out;
		}
		if (!endpoint && strcmp(u->scheme, "file")) {
			rc = MD_ENOMEM;
			goto out;
		}
		if (!endpoint) {
			/* file:// without lfs.url: the remote's own lfs/objects */
			const char *rp = u->url + strlen("file://");
			lfs_how = "local lfs/objects";
			for (size_t i = 0; i < nuniq && !rc; i++) {
				char *src = lfs_local_path(rp, uniq[i]->lfs_oid), sha[65];
				if (!src) {
					rc = md_fail(MD_ENOENT, "%s: LFS object %s missing in the remote's lfs/objects",
						     uniq[i]->path, uniq[i]->lfs_oid);
					break;
				}
				char p[8400];
				snprintf(p, sizeof p, "%s/lfs/%s", dir, uniq[i]->path);
				rc = copy_local(src, p, uniq[i], sha);
				free(src);
				atomic_fetch_add(&j->ctl.done, uniq[i]->lfs_size);
			}
		} else {
			lfs_how = "LFS batch API";
			if ((rc = md_lib_need(MD_LIB_CURL, "pull")))
				goto out;
			snprintf(sub, sizeof sub, "%s/lfs", dir);
			struct lfs_job L = { .d = d, .j = j, .u = u, .creds = creds, .endpoint = endpoint,
					     .refname = fullref, .dir = sub, .rate = rate };
			rc = lfs_fetch(&L, uniq, nuniq);
		}
		for (size_t i = 0; i < nlfs && !rc; i++) {
			size_t k = 0;
			while (k < nuniq && uniq[k] != lfs_todo[i] &&
			       strcmp(uniq[k]->lfs_oid, lfs_todo[i]->lfs_oid))
				k++;
			if (uniq[k] == lfs_todo[i])
				continue;
			char from[8400], to[8400];
			snprintf(from, sizeof from, "%s/lfs/%s", dir, uniq[k]->path);
			snprintf(to, sizeof to, "%s/lfs/%s", dir, lfs_todo[i]->path);
			unlink(to);
			if ((rc = mkparent(to)) == 0 && link(from, to) < 0)
				rc = md_fail(md_from_errno(errno), "%s: %s", to, strerror(errno));
			atomic_fetch_add(&j->ctl.done, lfs_todo[i]->lfs_size);
		}
		for (size_t i = 0; i < nlfs && !rc; i++) {
			char p[8400];
			snprintf(p, sizeof p, "%s/lfs/%s", dir, lfs_todo[i]->path);
			rc = pull_refused_hint(ingest_add_file(ing, lfs_todo[i]->path, p,
							       lfs_todo[i]->lfs_oid),
					       lfs_todo[i]->path);
			if (!rc)
				unlink(p);
			json_array_append_new(prov_files, json_pack("{s:s,s:s,s:s,s:s}", "path",
				lfs_todo[i]->path, "sha256", lfs_todo[i]->lfs_oid, "git_blob",
				lfs_todo[i]->blob, "verified_against", "LFS oid (sha256) and size"));
		}
		if (rc)
			goto out;
	}

	char now[32];
	util_now_iso(now, sizeof now);
	extra = json_pack("{s:{s:s,s:s,s:s?,s:s},s:{s:s,s:s?,s:s,s:s,s:s?,s:s?,s:s,s:s,s:o,s:{s:s}}}",
		"source", "type", "git", "url", u->clean, "ref", refname, "commit", commit,
		"provenance", "remote", u->clean, "requested_ref", u->ref, "commit", commit,
		"tree", tree, "lfs_endpoint", endpoint, "lfs_transfer", lfs_how,
		"retrieved_at", now, "modeld_version", MODELD_VERSION, "files", prov_files,
		"converters", "pack_format", PACK_VERSION_STR);
	prov_files = NULL;
	if (!extra) {
		rc = MD_ENOMEM;
		goto out;
	}
	json_object_set_new(json_object_get(extra, "provenance"), "ref",
			    refname ? json_string(refname) : json_null());
	/* what this pull selected, and whether files of the commit are left
	 * out (then a later pull without those filters adds them) */
	pull_record_filters(json_object_get(extra, "provenance"), a, partial, have);
	if ((rc = describe_revision(d, name, ing, extra)) ||
	    (rc = ingest_commit(ing, name, commit, cref, extra, &m)))
		goto out;
	slim(m);
	*res = m;
	done_ok = 1;
out:
	if (*dir && (done_ok || (rc != MD_ENET && rc != MD_ECANCELED))) {
		/* only a network failure or a cancel keeps the partial transfers
		 * for the next attempt; a refused, corrupt or unauthorised source
		 * leaves nothing behind */
		snprintf(sub, sizeof sub, "%s/lfs", dir);
		xfer_clean(sub);
		util_rmtree(dir);
	}
	ingest_free(ing);
	if (revkeyed)
		pull_release_rev(revkey);
	free(lfs_todo);
	free(uniq);
	free(skip);
	gitsrc_files_free(files, nfiles);
	gitsrc_close(repo);
	gitsrc_creds_free(creds);
	free(lfsurl);
	free(endpoint);
	free(fullref);
	json_decref(extra);
	json_decref(prov_files);
	json_decref(have);
	json_decref(stored);
	if (rc && u && !strstr(md_errmsg(rc), u->clean))
		md_fail_prefix(rc, u->clean);
	gitsrc_url_free(u);
	return rc;
}

static int keep_cb(const char *name, const char *rev, json_t *m, void *arg)
{
	(void)name;
	(void)rev;
	json_t *src = json_object_get(m, "source");
	const char *url = json_string_value(json_object_get(src, "url"));
	const char *type = json_string_value(json_object_get(src, "type"));
	if (!url || !type || strcmp(type, "git"))
		return 0;
	char key[65];
	sha256_hex(url, strlen(url), key);
	return json_object_set_new(arg, key, json_true()) ? MD_ENOMEM : 0;
}

int pull_git_gc(struct daemon *d, json_t *res)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/git", d->st->root);
	json_t *keep = json_object();
	uint64_t n = 0, bytes = 0;
	MDB_txn *txn;
	int rc = keep ? store_txn(d->st, 0, &txn) : MD_ENOMEM;
	if (rc) {
		json_decref(keep);
		return rc;
	}
	rc = catalog_foreach_rev(d->st, txn, NULL, keep_cb, keep);
	mdb_txn_abort(txn);
	DIR *dh = rc ? NULL : opendir(dir);
	for (struct dirent *e; dh && (e = readdir(dh));) {
		size_t l = strlen(e->d_name);
		char key[65];
		if (l != 68 || strcmp(e->d_name + 64, ".git"))
			continue;
		memcpy(key, e->d_name, 64);
		key[64] = 0;
		if (!util_is_hex(key, 64) || json_object_get(keep, key))
			continue;
		char p[4500];   /* dir + "/" + a d_name of up to 255 bytes */
		uint64_t b;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		int r = gitsrc_cache_drop(p, &b);
		if (r < 0) {
			rc = r;
			break;
		}
		if (r == 1) {
			n++;
			bytes += b;
			log_info("gc: removed the git cache %s (%llu bytes): no stored revision comes from its remote",
				 p, (unsigned long long)b);
		}
	}
	if (dh)
		closedir(dh);
	json_decref(keep);
	if (!rc) {
		json_object_set_new(res, "git_caches_removed", json_integer((json_int_t)n));
		json_object_set_new(res, "git_cache_bytes_freed", json_integer((json_int_t)bytes));
	}
	return rc;
}
