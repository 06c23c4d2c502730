/* daemon/pull.c — see pull.h. */
#include "daemon/pull.h"
#include "registry/maint.h"
#include "daemon/describe.h"
#include "daemon/pull_git.h"
#include "daemon/worker.h"
#include "converters/pack.h"
#include "registry/catalog.h"
#include "registry/ingest.h"
#include "meta/policy.h"
#include "sources/hf.h"
#include "sources/xfer.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Pulls in progress, by staging key: a second pull of the same commit waits. */
static pthread_mutex_t busy_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cv = PTHREAD_COND_INITIALIZER;
static json_t *busy;

int pull_init(void)
{
	/* libcurl itself is initialised on the first pull (xfer_global_init) */
	busy = json_object();
	return busy ? 0 : MD_ENOMEM;
}

static int claim_key(const char *key, _Atomic int *cancel)
{
	pthread_mutex_lock(&busy_mu);
	while (json_object_get(busy, key) && !atomic_load(cancel)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&busy_cv, &busy_mu, &ts);
	}
	int ok = !atomic_load(cancel);
	if (ok)
		json_object_set_new(busy, key, json_true());
	pthread_mutex_unlock(&busy_mu);
	return ok ? 0 : md_fail(MD_ECANCELED, "canceled while waiting for the same pull");
}

static void release_key(const char *key)
{
	pthread_mutex_lock(&busy_mu);
	json_object_del(busy, key);
	pthread_cond_broadcast(&busy_cv);
	pthread_mutex_unlock(&busy_mu);
}

int pull_claim_rev(const char *name, const char *commit, _Atomic int *cancel, char key[65])
{
	char kin[1024], hex[65];
	snprintf(kin, sizeof kin, "%s\n%s", name, commit);
	sha256_hex(kin, strlen(kin), hex);
	/* "rev-" keys never match a staging directory (staging_busy) */
	snprintf(key, 65, "rev-%.24s", hex);
	return claim_key(key, cancel);
}

void pull_release_rev(const char *key)
{
	release_key(key);
}

/* maint_gc_opts.in_use: a "pull-KEY" staging directory of a pull running
 * now (called with busy_mu held by pull_gc) */
static int staging_busy(void *arg, const char *name)
{
	(void)arg;
	return !strncmp(name, "pull-", 5) && json_object_get(busy, name + 5) != NULL;
}

int pull_gc(struct daemon *d, int partial, json_t **res)
{
	struct maint_gc_opts o = { .partial = partial, .in_use = staging_busy };
	/* no pull claims a staging directory while gc decides about it */
	pthread_mutex_lock(&busy_mu);
	int rc = maint_gc(d->st, &o, res);
	pthread_mutex_unlock(&busy_mu);
	if (!rc && (rc = pull_git_gc(d, *res))) {
		json_decref(*res);
		*res = NULL;
	}
	return rc;
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	struct job *j = arg;
	(void)total;
	atomic_store(&j->ctl.done, j->ctl_base + done);
}

int pull_read_token_file(const char *file, char **out)
{
	char what[4200];
	snprintf(what, sizeof what, "token_file %s", file);
	return util_read_token_file(file, what, PULL_MAX_TOKEN, out);
}

/* The token: the request's, else the configured token_file's (*out
 * malloc'd, or NULL: anonymous); never logged. A token_file that cannot be
 * read fails the pull naming it, as --token-file does. */
static int get_token(struct daemon *d, json_t *args, char **out)
{
	const char *t = json_string_value(json_object_get(args, "token"));
	*out = NULL;
	if (t && *t)
		return (*out = strdup(t)) ? 0 : MD_ENOMEM;
	if (!d->cfg->token_file)
		return 0;
	return pull_read_token_file(d->cfg->token_file, out);
}

static const char **globs(json_t *a, size_t *n)
{
	*n = json_array_size(a);
	const char **v = calloc(*n ? *n : 1, sizeof *v);
	for (size_t i = 0; v && i < *n; i++)
		v[i] = json_string_value(json_array_get(a, i));
	return v;
}

static int is_license_name(const char *p)
{
	return !strcasecmp(p, "README.md") || !strncasecmp(p, "LICENSE", 7) ||
	       !strncasecmp(p, "LICENCE", 7) || !strncasecmp(p, "COPYING", 7);
}

/* Files are added to the ingest (weight files converted, in modeld-worker)
 * by ADD_THREADS threads as soon as xfer verifies each, while the rest
 * downloads: two conversions at once keep both cores busy through each
 * one's serial parts (worker start, parse, fsync). The ingest is theirs
 * alone until they are joined. */
#define ADD_THREADS 2

/* A placed download's plan (see plan_placed). */
struct placed {
	int head;                 /* memfd with the file's head, or -1: not placed */
	struct xfer_seg *segs;
};

struct addq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ingest *ing;
	const char *dir;
	struct xfer_item *todo;
	const struct placed *pl;  /* [nt] */
	size_t nt, *queue, nq, head;
	unsigned char *added;     /* [nt]: handed to the ingest */
	unsigned char *redo;      /* [nt]: placed, to download again as it is;
				     NULL: no second try */
	int closed, rc;
	char *err;                /* rc's detail (md_fail is per thread) */
	atomic_int *job_cancel;   /* the job's flag */
	atomic_int stop;          /* xfer's: the job's, or a failed add */
};

int pull_refused_hint(int rc, const char *path)
{
	if (rc != MD_EREFUSED || strpbrk(path, "*?[]\\") || strlen(path) > 512)
		return rc;
	return md_fail(MD_EREFUSED, "%s (--exclude %s pulls the rest)", md_errmsg(rc), path);
}

/* Add a downloaded file, then keep what was stored in dir/.kept so that a
 * pull interrupted before its commit (kill, cancel, a failure elsewhere)
 * does not fetch it again (ingest_keep/ingest_adopt). */
static int add_and_keep(struct ingest *ing, const char *dir, const struct xfer_item *it,
			int head_fd)
{
	char p[8400], kept[4300], key[65];
	snprintf(p, sizeof p, "%s/%s", dir, it->dest);
	int rc = it->place ? ingest_add_placed(ing, it->dest, p, head_fd, it->size, it->sha256_out)
			   : ingest_add_file(ing, it->dest, p, it->sha256_out);
	if (rc)
		return pull_refused_hint(rc, it->dest);
	snprintf(kept, sizeof kept, "%s/" PULL_KEPT_DIR, dir);
	sha256_hex(it->dest, strlen(it->dest), key);
	if ((mkdir(kept, 0755) < 0 && errno != EEXIST) ||
	    ingest_keep(ing, it->dest, kept, key))
		log_debug("pull: %s: not kept for a resume: %s", it->dest, md_errmsg(MD_EIO));
	md_clearerr();
	/* only now: a kill before the keep finds the download and uses it */
	unlink(p);
	return 0;
}

/* A file an interrupted run of this pull stored already: 1 when adopted. */
static int adopt_kept(struct ingest *ing, const char *dir, const struct xfer_item *it)
{
	char kept[4300], key[65];
	snprintf(kept, sizeof kept, "%s/" PULL_KEPT_DIR, dir);
	sha256_hex(it->dest, strlen(it->dest), key);
	int rc = ingest_adopt(ing, it->dest, kept, key, it->sha256, it->size);
	md_clearerr();
	return rc == 0;
}

/* Add todo[i]. A placed file whose conversion finds it corrupt (the
 * download's header is not the head the plan was made from: a hub whose
 * ranged answer was not the file's bytes; nothing else can be, as the same
 * header parsed for the plan) is downloaded again as it is, once, like a
 * file that failed its digest: marked in redo and left out. */
static int add_one(struct addq *q, size_t i)
{
	int rc = add_and_keep(q->ing, q->dir, &q->todo[i], q->pl[i].head);
	if (rc == MD_ECORRUPT && q->todo[i].place && q->redo) {
		log_info("pull: %s; downloading %s again as it is", md_errmsg(rc), q->todo[i].dest);
		md_clearerr();
		q->redo[i] = 1;
		rc = 0;
	}
	return rc;
}

static void addq_push(void *arg, size_t i)
{
	struct addq *q = arg;
	pthread_mutex_lock(&q->mu);
	if (q->nq < q->nt)
		q->queue[q->nq++] = i;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void *addq_thread(void *arg)
{
	struct addq *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (atomic_load(q->job_cancel))
			atomic_store(&q->stop, 1);
		if (q->head == q->nq) {
			if (q->closed)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&q->cv, &q->mu, &ts);
			continue;
		}
		size_t i = q->queue[q->head++];
		if (q->rc)
			continue;
		pthread_mutex_unlock(&q->mu);
		double t0 = util_mono();
		int rc = add_one(q, i);
		log_debug("pull: %s stored in %.3f s", q->todo[i].dest, util_mono() - t0);
		pthread_mutex_lock(&q->mu);
		q->added[i] = 1;
		if (rc) {
			q->rc = rc;
			q->err = strdup(md_errmsg(rc));
			atomic_store(&q->stop, 1);
		}
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Placed downloads: a safetensors or GGUF file of at least PLACE_MIN bytes
 * is downloaded straight into pack layout (the worker plans where each
 * byte goes from the file's header, fetched first with a ranged GET), so
 * its conversion hashes the tensors where they lie instead of copying them. */
#define PLACE_MIN (16u << 20)
#define PLACE_HEAD (1u << 20)   /* bytes asked for first; more if the header is longer */
#define PLACE_HEAD_MAX HF_MAX_JSON

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n > k && !strcasecmp(s + n - k, suf);
}

static int placeable(const struct xfer_item *it)
{
	return it->sha256 && it->size >= PLACE_MIN &&
	       (has_suffix(it->dest, ".safetensors") || has_suffix(it->dest, ".gguf"));
}

/* The head's length: a safetensors file says its header's length in its
 * first 8 bytes (0 when it is no safetensors file that can be placed); a
 * GGUF header is only known by parsing it, so after a first MiB too short
 * the pull asks once more, for at most 1/32 of the file (a 4 GiB file: 32
 * MiB), so that a plan never costs more than 3% of the download. */
static uint64_t head_want(const struct xfer_item *it, const uint8_t *b, size_t len)
{
	if (!has_suffix(it->dest, ".safetensors")) {
		uint64_t w = it->size / 32;
		return w > PLACE_HEAD_MAX ? PLACE_HEAD_MAX : w;
	}
	uint64_t hl = 0;
	for (int k = 7; len >= 8 && k >= 0; k--)
		hl = hl << 8 | b[k];
	return len < 8 || hl > PLACE_HEAD_MAX - 8 || hl > it->size - 8 ? 0 : 8 + hl;
}

/* Plan from a head of len bytes: 0 with *psize and the pieces, or the
 * worker's error. */
static int plan_head(struct job *j, struct xfer_item *it, const uint8_t *b, size_t len,
		     struct placed *pl, uint64_t *psize)
{
	int fd = memfd_create("head", MFD_CLOEXEC), rc;
	if (fd < 0 || util_write_all(fd, b, len)) {
		rc = md_fail(MD_EIO, "head: %s", strerror(errno));
	} else if (!(rc = worker_plan(fd, it->size, it->dest, &j->ctl.cancel, &pl->segs,
				      &it->nplace, psize))) {
		pl->head = fd;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	free(pl->segs);
	pl->segs = NULL;
	it->nplace = 0;
	return rc;
}

/* Plan it (see above); 0 when placed or left as it is, MD_ECANCELED. Any
 * other failure only means a plain download (a bad header fails the
 * conversion later, with its own message). */
static int plan_placed(struct job *j, struct hf_client *hc, struct xfer_item *it,
		       struct placed *pl)
{
	uint8_t *b = NULL;
	size_t len = 0;
	uint64_t want = it->size < PLACE_HEAD ? it->size : PLACE_HEAD, psize, more;
	int rc = hf_file_head(hc, it->url, it->dest, want, &b, &len);
	if (!rc && has_suffix(it->dest, ".safetensors")) {
		more = head_want(it, b, len);
		if (!more) {
			rc = md_fail(MD_EUNSUP, "%s: no safetensors header length", it->dest);
		} else if (more > len) {
			free(b);
			b = NULL;
			rc = hf_file_head(hc, it->url, it->dest, more, &b, &len);
		}
	}
	if (!rc)
		rc = plan_head(j, it, b, len, pl, &psize);
	if (rc && rc != MD_EUNSUP && rc != MD_ECANCELED && !atomic_load(&j->ctl.cancel) &&
	    len == want && (more = head_want(it, b, len)) > len) {
		/* a GGUF header longer than the first MiB */
		log_debug("pull: %s: %s; asking for %llu bytes", it->dest, md_errmsg(rc),
			  (unsigned long long)more);
		md_clearerr();
		free(b);
		b = NULL;
		if (!(rc = hf_file_head(hc, it->url, it->dest, more, &b, &len)))
			rc = plan_head(j, it, b, len, pl, &psize);
	}
	free(b);
	if (!rc && atomic_load(&j->ctl.cancel)) {
		close(pl->head);
		pl->head = -1;
		free(pl->segs);
		pl->segs = NULL;
		it->nplace = 0;
	}
	if (rc == MD_ECANCELED || atomic_load(&j->ctl.cancel))
		return md_fail(MD_ECANCELED, "canceled");
	if (rc) {
		log_debug("pull: %s: downloaded as it is: %s", it->dest, md_errmsg(rc));
		md_clearerr();
		return 0;
	}
	it->place = pl->segs;
	it->placed_size = psize;
	log_debug("pull: %s: placed in %zu pieces", it->dest, it->nplace);
	return 0;
}

static int fetch_and_add(struct job *j, struct ingest *ing, const char *dir,
			 struct xfer_item *todo, const struct placed *pl, size_t nt,
			 struct xfer_opts *xo, int second);

/* The nr items of todo[0..nt) marked in redo, downloaded again as they are
 * (no placement) and added; their digests copied back into todo. */
static int fetch_unplaced(struct job *j, struct ingest *ing, const char *dir,
			  struct xfer_item *todo, const unsigned char *redo, size_t nt, size_t nr,
			  struct xfer_opts *xo)
{
	struct xfer_item *sub = calloc(nr, sizeof *sub);
	struct placed *pl = calloc(nr, sizeof *pl);
	size_t *idx = calloc(nr, sizeof *idx), k = 0;
	uint64_t again = 0;
	int rc = MD_ENOMEM;
	if (sub && pl && idx) {
		for (size_t i = 0; i < nt; i++) {
			if (!redo[i])
				continue;
			char p[8400];
			snprintf(p, sizeof p, "%s/%s", dir, todo[i].dest);
			unlink(p);
			sub[k] = (struct xfer_item){ .url = todo[i].url, .dest = todo[i].dest,
						     .size = todo[i].size, .sha256 = todo[i].sha256,
						     .blob_sha1 = todo[i].blob_sha1,
						     .no_fsync = todo[i].no_fsync, .status = 1 };
			pl[k].head = -1;
			idx[k++] = i;
			again += todo[i].size;
		}
		uint64_t done = atomic_load(&j->ctl.done);
		j->ctl_base = done > again ? done - again : 0;
		rc = fetch_and_add(j, ing, dir, sub, pl, nr, xo, 1);
		for (k = 0; k < nr; k++) {
			todo[idx[k]].status = sub[k].status;
			memcpy(todo[idx[k]].sha256_out, sub[k].sha256_out, sizeof sub[k].sha256_out);
		}
	}
	free(sub);
	free(pl);
	free(idx);
	return rc;
}

/* Download todo[0..nt) into dir and add each file to ing as it completes;
 * placed files found corrupt are downloaded again as they are (add_one),
 * unless this is that second run. */
static int fetch_and_add(struct job *j, struct ingest *ing, const char *dir,
			 struct xfer_item *todo, const struct placed *pl, size_t nt,
			 struct xfer_opts *xo, int second)
{
	struct addq q = { .ing = ing, .dir = dir, .todo = todo, .pl = pl, .nt = nt,
			  .job_cancel = &j->ctl.cancel };
	pthread_t th[ADD_THREADS];
	int started = 0;
	q.queue = calloc(nt, sizeof *q.queue);
	q.added = calloc(nt, 1);
	q.redo = second ? NULL : calloc(nt, 1);
	if (!q.queue || !q.added || (!second && !q.redo)) {
		free(q.queue);
		free(q.added);
		free(q.redo);
		return MD_ENOMEM;
	}
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	while (started < ADD_THREADS && pthread_create(&th[started], NULL, addq_thread, &q) == 0)
		started++;
	if (started) {
		xo->cancel = &q.stop;
		xo->file_done = addq_push;
		xo->file_done_arg = &q;
	}
	double t0 = util_mono();
	int rc = xfer_run(dir, todo, nt, xo);
	log_debug("pull: %zu files downloaded in %.3f s", nt, util_mono() - t0);
	if (started) {
		pthread_mutex_lock(&q.mu);
		q.closed = 1;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		xo->cancel = &j->ctl.cancel;
		xo->file_done = NULL;
	}
	if (q.rc) {
		rc = md_fail(q.rc, "%s", q.err ? q.err : md_strerror(q.rc));
	} else if (rc == MD_ECANCELED || atomic_load(&j->ctl.cancel)) {
		rc = md_fail(MD_ECANCELED, "canceled");
	} else {
		/* anything xfer finished that the thread did not take (none when
		 * it started) */
		for (size_t i = 0; i < nt && !rc; i++) {
			if (!q.added[i])
				rc = add_one(&q, i);
		}
	}
	size_t nr = 0;
	for (size_t i = 0; !rc && q.redo && i < nt; i++)
		nr += q.redo[i];
	if (nr)
		rc = fetch_unplaced(j, ing, dir, todo, q.redo, nt, nr, xo);
	free(q.err);
	free(q.queue);
	free(q.added);
	free(q.redo);
	pthread_mutex_destroy(&q.mu);
	pthread_cond_destroy(&q.cv);
	return rc;
}

int pull_repoint(struct daemon *d, const char *name, const char *commit, const char *ref,
		   json_t **res)
{
	MDB_txn *txn;
	json_t *m;
	int existed, rc = store_txn(d->st, 1, &txn);
	if (rc)
		return rc;
	if ((rc = catalog_get_rev(d->st, txn, name, commit, &m))) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = catalog_put_rev(d->st, txn, m, ref, &existed))) {
		mdb_txn_abort(txn);
		json_decref(m);
		return rc;
	}
	if ((rc = store_commit(txn))) { /* the commit frees txn either way */
		json_decref(m);
		return rc;
	}
	json_object_set_new(m, "file_count",
			    json_integer((json_int_t)json_array_size(json_object_get(m, "files"))));
	json_object_del(m, "files");
	json_object_del(m, "card");
	json_object_del(m, "v");
	json_object_set_new(m, "existed", json_true());
	*res = m;
	return 0;
}

json_t *pull_stored_rev(struct daemon *d, const char *name, const char *commit)
{
	MDB_txn *txn;
	json_t *have = NULL;
	if (store_txn(d->st, 0, &txn) == 0) {
		catalog_get_rev(d->st, txn, name, commit, &have);
		mdb_txn_abort(txn);
	}
	md_clearerr();
	return have;
}

int pull_rev_complete(json_t *have)
{
	return json_is_false(json_object_get(json_object_get(have, "provenance"), "partial"));
}

json_t *pull_rev_files(json_t *m)
{
	if (!m)
		return NULL;
	json_t *o = json_object(), *f;
	size_t i;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));
		if (o && p)
			json_object_set(o, p, f);
	}
	return o;
}

int pull_add_stored_files(struct ingest *ing, json_t *have, json_t *prov_files)
{
	size_t i, k;
	json_t *f, *pf;
	json_t *old = json_object_get(json_object_get(have, "provenance"), "files");
	json_array_foreach(json_object_get(have, "files"), i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		int rc = path ? ingest_add_existing(ing, path, f) : MD_ECORRUPT;
		if (rc)
			return rc;
		json_t *rec = NULL;
		json_array_foreach(old, k, pf) {
			const char *pp = json_string_value(json_object_get(pf, "path"));
			if (pp && !strcmp(pp, path)) {
				rec = json_deep_copy(pf);
				break;
			}
		}
		if (!rec)
			rec = json_pack("{s:s,s:O,s:s}", "path", path, "sha256",
					json_object_get(f, "sha256"), "verified_against",
					"stored by an earlier pull");
		json_array_append_new(prov_files, rec);
	}
	return 0;
}

/* The hub failed to resolve want (rc, its detail set): when want is a
 * commit prefix (7..39 hex) that a revision of name already stored starts
 * with, say so in the detail, as the hub may not resolve short commits. */
static void stored_prefix_hint(struct daemon *d, const char *name, const char *want, int rc)
{
	size_t wl = want ? strlen(want) : 0;
	if (wl < 7 || wl >= CATALOG_REV_LEN || !util_is_hex(want, wl))
		return;
	char *why = strdup(md_errmsg(rc)), rev[CATALOG_REV_LEN + 1];
	MDB_txn *txn;
	int found = 0;
	if (why && store_txn(d->st, 0, &txn) == 0) {
		found = catalog_resolve(d->st, txn, name, want, rev) == 0 &&
			!strncasecmp(rev, want, wl);
		mdb_txn_abort(txn);
	}
	if (found)
		md_fail(rc, "%s (the hub did not resolve the short commit %s; the store has %s@%s: "
			"pull %s@%s to check it against the hub)", why, want, name, rev, name, rev);
	else
		md_fail(rc, "%s", why ? why : md_strerror(rc));
	free(why);
}

void pull_record_filters(json_t *prov, json_t *args, int partial, json_t *have)
{
	json_t *fi = json_object_get(args, "include"), *fe = json_object_get(args, "exclude");
	json_object_set_new(prov, "include", json_is_array(fi) ? json_deep_copy(fi) : json_array());
	json_object_set_new(prov, "exclude", json_is_array(fe) ? json_deep_copy(fe) : json_array());
	json_object_set_new(prov, "partial", json_boolean(partial));
	if (have && json_is_object(json_object_get(have, "provenance"))) {
		json_t *prev = json_deep_copy(json_object_get(have, "provenance"));
		json_object_del(prev, "files");
		json_object_set_new(prov, "previous", prev);
	}
}

static int cmp_path(const void *k, const void *e)
{
	return strcmp(k, ((const struct hf_entry *)e)->path);
}

/* Every file the model info names (siblings, when the hub gives them) must
 * be in the tree listing: a listing that lost files (a mirror's broken
 * pagination) would otherwise be stored as the whole commit. MD_EPROTO
 * naming the first one missing. */
static int check_siblings(const struct hf_model *m, const struct hf_tree *t)
{
	json_t *sib = json_object_get(m->info, "siblings"), *s;
	size_t i, lost = 0;
	const char *first = NULL;
	json_array_foreach(sib, i, s) {
		const char *p = json_string_value(json_object_get(s, "rfilename"));
		if (p && !bsearch(p, t->v, t->n, sizeof *t->v, cmp_path) && !lost++)
			first = p;
	}
	if (!lost)
		return 0;
	return md_fail(MD_EPROTO, "%s@%s: the hub's tree listing lacks %zu of the %zu files its "
		       "model info names (%.200s%s); nothing stored", m->id, m->commit, lost,
		       json_array_size(sib), first, lost > 1 ? ", ..." : "");
}

int pull_no_match(const char *id, const char *commit, size_t n, json_t *args)
{
	if (!n)
		return md_fail(MD_ENOENT, "%s@%s: the repository has no files at this commit", id,
			       commit);
	char f[600] = "";
	size_t l = 0, i;
	json_t *g;
	const char *opt[] = { "include", "exclude" };
	for (int k = 0; k < 2; k++)
		json_array_foreach(json_object_get(args, opt[k]), i, g) {
			int w = snprintf(f + l, sizeof f - l, " --%s '%s'", opt[k],
					 json_string_value(g));
			if (w < 0 || (size_t)w >= sizeof f - l) {
				memcpy(f + sizeof f - 5, " ...", 5); /* cut short */
				goto done;
			}
			l += (size_t)w;
		}
done:
	return md_fail(MD_ENOENT, "%s@%s: none of its %zu files matches%s", id, commit, n, f);
}

int pull_rate(const struct daemon *d, json_t *args, uint64_t *rate)
{
	json_t *v = json_object_get(args, "limit_rate");
	*rate = d->cfg->limit_rate;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return md_fail(MD_EINVAL, "limit_rate: want bytes per second, 0 for no cap");
	*rate = (uint64_t)json_integer_value(v);
	return 0;
}

int pull_job(struct daemon *d, struct job *j, json_t **res)
{
	json_t *a = j->args;
	char *id = NULL, *want = NULL, *token = NULL, key[65], revkey[65], dir[4200];
	struct hf_client *hc = NULL;
	struct hf_model *model = NULL;
	struct hf_tree *tree = NULL;
	struct xfer_item *items = NULL;
	size_t nitems = 0;
	struct ingest *ing = NULL;
	int rc, keyed = 0, revkeyed = 0, done_ok = 0;
	json_t *extra = NULL, *m = NULL, *prov_files = NULL, *have = NULL, *stored = NULL;

	const char *refarg = json_string_value(json_object_get(a, "ref"));
	const char *src = json_string_value(json_object_get(a, "source"));
	uint64_t rate;
	if ((rc = pull_rate(d, a, &rate)))
		return rc;
	if ((refarg && !strncmp(refarg, "git+", 4)) || (src && !strcmp(src, "git")))
		return pull_git_job(d, j, rate, res); /* daemon/pull_git.c */
	if (!(prov_files = json_array())) {
		rc = MD_ENOMEM;
		goto out;
	}
	if ((rc = md_lib_need(MD_LIB_CURL, "pull")) ||
	    (rc = util_parse_modelref(refarg ? refarg : "", &id, &want)))
		goto out;
	const char *name = json_string_value(json_object_get(a, "name"));
	if (!name)
		name = id;
	else if ((rc = util_check_model_name(name)))
		goto out;
	const char *hub = json_string_value(json_object_get(a, "hub"));
	if (!hub)
		hub = d->cfg->hub;
	if ((rc = get_token(d, a, &token)))
		goto out;
	struct hf_opts ho = { .token = token, .cancel = &j->ctl.cancel };
	if ((rc = hf_open(hub, &ho, &hc)))
		goto out;
	if ((rc = hf_resolve(hc, id, want, &model))) {
		stored_prefix_hint(d, name, want, rc);
		goto out;
	}
	/* REV names a ref (recorded) unless it is the commit itself or a
	 * prefix of it (7..39 hex digits that the commit starts with) */
	const char *ref = want ? want : "main";
	size_t wl = want ? strlen(want) : 0;
	if (want && wl >= 7 && wl <= 40 && util_is_hex(want, wl) &&
	    !strncasecmp(model->commit, want, wl))
		ref = NULL;

	/* stored with every file of the commit: only the ref moves */
	MDB_txn *txn;
	have = pull_stored_rev(d, name, model->commit);
	if (have && pull_rev_complete(have)) {
		rc = pull_repoint(d, name, model->commit, ref, res);
		goto out;
	}

	/* one staging directory per hub + repository + commit: resumable */
	char kin[8192];
	snprintf(kin, sizeof kin, "%s\n%s\n%s", hf_hub(hc), id, model->commit);
	sha256_hex(kin, strlen(kin), key);
	key[24] = 0;
	snprintf(dir, sizeof dir, "%s/tmp/pull-%s", d->st->root, key);
	if ((rc = claim_key(key, &j->ctl.cancel)))
		goto out;
	keyed = 1;
	if ((rc = pull_claim_rev(name, model->commit, &j->ctl.cancel, revkey)))
		goto out;
	revkeyed = 1;
	/* a pull of the same commit (from this hub, or another source under
	 * the same name) may have stored it, or part of it, while this one
	 * waited: start from what it stored */
	json_decref(have);
	have = pull_stored_rev(d, name, model->commit);
	if (have && pull_rev_complete(have)) {
		rc = pull_repoint(d, name, model->commit, ref, res);
		goto out;
	}
	if ((rc = util_mkdir_p(dir, 0755)) || (rc = hf_list(hc, id, model->commit, &tree)) ||
	    (rc = check_siblings(model, tree)))
		goto out;
	size_t ni, ne;
	const char **inc = globs(json_object_get(a, "include"), &ni);
	const char **exc = globs(json_object_get(a, "exclude"), &ne);
	rc = hf_items(hc, id, model->commit, tree, inc, ni, exc, ne, &items, &nitems);
	free(inc);
	free(exc);
	if (rc)
		goto out;
	if (!nitems) {
		rc = pull_no_match(id, model->commit, tree->n, a);
		goto out;
	}
	/* DIR/.kept holds this pull's own records (add_and_keep), beside the
	 * downloads at their repository paths: a repository path there is
	 * hostile, as one under xfer's .partial is */
	for (size_t i = 0; i < nitems; i++) {
		if (!strncmp(items[i].dest, PULL_KEPT_DIR, strlen(PULL_KEPT_DIR)) &&
		    (items[i].dest[strlen(PULL_KEPT_DIR)] == 0 ||
		     items[i].dest[strlen(PULL_KEPT_DIR)] == '/')) {
			rc = md_fail(MD_EREFUSED, "%s: reserved name", items[i].dest);
			goto out;
		}
	}
	/* the revision is stored in part (a filtered pull): fetch only the
	 * selected files it lacks; "up to date" when it lacks none */
	json_t *selected = json_object();
	stored = pull_rev_files(have);
	if (!selected || (have && !stored)) {
		json_decref(selected);
		rc = MD_ENOMEM;
		goto out;
	}
	size_t missing = 0;
	for (size_t i = 0; i < nitems; i++) {
		json_object_set_new(selected, items[i].dest, json_true());
		missing += !json_object_get(stored, items[i].dest);
	}
	/* partial: files of the commit neither stored nor selected now */
	int partial = 0;
	for (size_t i = 0; i < tree->n && !partial; i++)
		partial = !json_object_get(selected, tree->v[i].path) &&
			  !json_object_get(stored, tree->v[i].path);
	json_decref(selected);
	if (!missing) {
		rc = pull_repoint(d, name, model->commit, ref, res);
		goto out;
	}
	/* progress is the download's (xfer): the ingest would count each file
	 * a second time as it stores it */
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
	for (size_t i = 0; i < nitems; i++)
		if (!json_object_get(stored, items[i].dest))
			total += items[i].size;
	atomic_store(&j->ctl.total, total);
	struct xfer_opts xo = { .token = token, .auth_origin = hf_hub(hc),
				.auth_headers = hf_auth_headers(hc), .label = id,
				.rate_limit = rate,
				.progress = progress, .progress_arg = j, .cancel = &j->ctl.cancel };

	/* Phase 1: the card and license first, so an enforced policy refuses a
	 * model before its weights are downloaded. Phase 2: everything else
	 * the store does not already hold. */
	for (int phase = 1; phase <= 2 && !rc; phase++) {
		struct xfer_item *todo = calloc(nitems, sizeof *todo);
		size_t nt = 0;
		if (!todo) {
			rc = MD_ENOMEM;
			break;
		}
		for (size_t i = 0; i < nitems && !rc; i++) {
			if ((phase == 1) != (is_license_name(items[i].dest) != 0))
				continue;
			if (json_object_get(stored, items[i].dest))
				continue; /* stored by an earlier pull of this commit */
			json_t *ent = NULL;
			if (items[i].sha256 && store_txn(d->st, 0, &txn) == 0) {
				catalog_origin(d->st, txn, items[i].sha256, &ent);
				mdb_txn_abort(txn);
			}
			if (ent && (uint64_t)json_integer_value(json_object_get(ent, "size")) !=
					   items[i].size) {
				/* same sha256, other size: the hub's listing is wrong */
				rc = md_fail(MD_ECORRUPT,
					     "%s: the hub's size %llu does not match the stored object %s (%llu bytes)",
					     items[i].dest, (unsigned long long)items[i].size,
					     items[i].sha256,
					     (unsigned long long)json_integer_value(json_object_get(ent, "size")));
				json_decref(ent);
				break;
			}
			if (ent) {
				rc = ingest_add_existing(ing, items[i].dest, ent);
				atomic_fetch_add(&j->ctl.done, items[i].size);
				json_array_append_new(prov_files, json_pack("{s:s,s:s,s:s}", "path",
					items[i].dest, "sha256", items[i].sha256, "verified_against",
					"already stored (same sha256)"));
				json_decref(ent);
				continue;
			}
			if (adopt_kept(ing, dir, &items[i])) {
				json_array_append_new(prov_files, json_pack("{s:s,s:s?,s:s}", "path",
					items[i].dest, "sha256", items[i].sha256, "verified_against",
					items[i].sha256 ? "LFS sha256 (stored before an interruption)"
							: "stored before an interruption"));
				atomic_fetch_add(&j->ctl.done, items[i].size);
				continue;
			}
			todo[nt] = items[i];
			/* verified by sha256: no fdatasync of the download, whose
			 * bytes become a pack (fsync'd) or a blob ingest_add_file
			 * fsyncs; a resume after a power loss re-checks the hash */
			todo[nt].no_fsync = todo[nt].sha256 != NULL;
			nt++;
		}
		struct placed *pl = calloc(nt ? nt : 1, sizeof *pl);
		if (!pl)
			rc = MD_ENOMEM;
		for (size_t i = 0; pl && i < nt; i++)
			pl[i].head = -1;
		for (size_t i = 0; i < nt && !rc; i++)
			if (placeable(&todo[i]))
				rc = plan_placed(j, hc, &todo[i], &pl[i]);
		if (!rc && nt) {
			j->ctl_base = atomic_load(&j->ctl.done);
			rc = fetch_and_add(j, ing, dir, todo, pl, nt, &xo, 0);
		}
		for (size_t i = 0; pl && i < nt; i++) {
			if (pl[i].head >= 0)
				close(pl[i].head);
			free(pl[i].segs);
		}
		free(pl);
		for (size_t i = 0; i < nt && !rc; i++) {
			json_array_append_new(prov_files, json_pack("{s:s,s:s,s:s}", "path", todo[i].dest,
				"sha256", todo[i].sha256_out, "verified_against",
				todo[i].sha256 ? "LFS sha256" : todo[i].blob_sha1 ? "git blob sha1 and size"
										: "size"));
		}
		free(todo);
		if (!rc && phase == 1 && d->pol && policy_enforce(d->pol)) {
			json_t *probe = json_object();
			rc = describe_revision(d, name, ing, probe); /* refuses a denied model */
			json_decref(probe);
		}
	}
	if (rc)
		goto out;
	char now[32];
	util_now_iso(now, sizeof now);
	extra = json_pack("{s:{s:s,s:s,s:s,s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:{s:s}}}",
		"source", "type", "hub", "url", hf_hub(hc), "repo_id", id, "revision",
		want ? want : "main", "commit", model->commit,
		"provenance", "hub", hf_hub(hc), "repo_id", id, "requested_revision",
		want ? want : "main", "commit", model->commit, "retrieved_at", now,
		"modeld_version", MODELD_VERSION, "files", prov_files, "converters", "pack_format", PACK_VERSION_STR);
	prov_files = NULL;
	pull_record_filters(json_object_get(extra, "provenance"), a, partial, have);
	if ((rc = describe_revision(d, name, ing, extra)) ||
	    (rc = ingest_commit(ing, name, model->commit, ref, extra, &m)))
		goto out;
	json_object_set_new(m, "file_count",
			    json_integer((json_int_t)json_array_size(json_object_get(m, "files"))));
	json_object_del(m, "files");
	json_object_del(m, "card");
	json_object_del(m, "v");
	*res = m;
	done_ok = 1;
out:
	if (done_ok) {
		xfer_clean(dir);
		util_rmtree(dir);
	}
	ingest_free(ing);
	if (revkeyed)
		pull_release_rev(revkey);
	if (keyed)
		release_key(key);
	hf_items_free(items, nitems);
	hf_tree_free(tree);
	hf_model_free(model);
	hf_close(hc);
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	json_decref(extra);
	json_decref(prov_files);
	json_decref(have);
	json_decref(stored);
	if (rc == MD_ENOSPC) {
		char *why = strdup(md_errmsg(rc));
		if (why) {
			md_fail(rc, "%s (store %s: pull again to continue once there is room, "
				"or 'modelctl gc --partial' drops what this pull kept)", why, d->st->root);
			free(why);
		}
	}
	if (rc && id && !strstr(md_errmsg(rc), id))
		md_fail_prefix(rc, refarg);
	free(id);
	free(want);
	return rc;
}

int pull_through(void *arg, const char *repo, const char *rev, const char *path)
{
	struct daemon *d = arg;
	if (!d->cfg->upstream || atomic_load(&d->stopping))
		return MD_ENOENT;
	char ref[512];
	int asked = rev && strcmp(rev, "HEAD");
	snprintf(ref, sizeof ref, "%s%s%s", repo, asked ? "@" : "", asked ? rev : "");
	if (path) {
		/* the revision may be stored already: then the file does not exist */
		char *name, *want, r[CATALOG_REV_LEN + 1];
		MDB_txn *txn;
		int stored = 0;
		if (util_parse_modelref(ref, &name, &want) == 0) {
			if (store_txn(d->st, 0, &txn) == 0) {
				stored = catalog_resolve(d->st, txn, name, want, r) == 0;
				mdb_txn_abort(txn);
			}
			free(name);
			free(want);
		}
		if (stored)
			return MD_ENOENT;
	}
	json_t *args = json_pack("{s:s,s:s}", "ref", ref, "hub", d->cfg->upstream);
	struct job *j = jobs_new("pull", ref, args, NULL, 0, 0, 0, pull_job);
	if (!j)
		return MD_ENOMEM;
	json_t *res = NULL;
	int rc = pull_job(d, j, &res);
	char up[4096]; /* upstream = https://user:pw@host: the password is never logged */
	if (util_url_strip_userinfo(d->cfg->upstream, up, sizeof up, NULL) < 0)
		snprintf(up, sizeof up, "the upstream");
	if (rc)
		log_info("pull-through %s from %s: %s", ref, up, md_errmsg(rc));
	else
		log_info("pull-through %s from %s: stored", ref, up);
	json_decref(res);
	jobs_free(j);
	return rc;
}
