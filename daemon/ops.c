/* daemon/ops.c — see ops.h. Request and reply shapes: docs/protocol.md. */
#include "daemon/ops.h"
#include "daemon/audit.h"
#include "daemon/bundle.h"
#include "daemon/describe.h"
#include "daemon/find.h"
#include "daemon/jobs.h"
#include "daemon/pull.h"
#include "daemon/serve.h"
#include "daemon/server.h"
#include "daemon/signing.h"
#include "daemon/weights.h"
#include "daemon/worker.h"
#include "converters/pack.h"
#include "registry/catalog.h"
#include "registry/ingest.h"
#include "registry/maint.h"
#include "registry/reader.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static const char *str_arg(json_t *req, const char *key)
{
	return json_string_value(json_object_get(req, key));
}

/* "ORG/NAME[@REV]" from req.ref into name/rev (malloc'd). */
static int ref_arg(json_t *req, char **name, char **rev)
{
	const char *ref = str_arg(req, "ref");
	*name = *rev = NULL;
	if (!ref)
		return md_fail(MD_EINVAL, "missing model reference");
	return util_parse_modelref(ref, name, rev);
}

/* A manifest as clients see it: internal fields dropped, refs added. */
static json_t *public_manifest(struct store *st, MDB_txn *txn, json_t *m, int with_files)
{
	json_t *o = json_deep_copy(m);
	const char *name = str_arg(m, "name"), *rev = str_arg(m, "revision");
	json_object_del(o, "v");
	json_t *files = json_object_get(o, "files");
	json_object_set_new(o, "file_count", json_integer((json_int_t)json_array_size(files)));
	if (with_files) {
		size_t i;
		json_t *f;
		json_array_foreach(files, i, f) {
			json_object_del(f, "blob");
			json_object_del(f, "pack");
			json_object_del(f, "recipe");
			json_object_del(f, "refs");
		}
	} else {
		json_object_del(o, "files");
	}
	if (txn && name && rev) {
		json_t *refs = catalog_refs_to(st, txn, name, rev);
		json_object_set_new(o, "refs", refs ? refs : json_array());
	}
	return o;
}

/* ---- inline operations ------------------------------------------------ */

static int op_ping(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)req;
	uint64_t used, max;
	store_catalog_usage(d->st, &used, &max);
	*res = json_pack("{s:s,s:i,s:s,s:s,s:f,s:b,s:i,s:{s:I,s:I}}", "version", MODELD_VERSION,
			 "protocol", PROTO_VERSION, "store", d->st->root, "socket", d->cfg->socket,
			 "uptime", util_mono() - d->started, "can_write", p->can_write,
			 "pid", (int)getpid(), "catalog", "used", (json_int_t)used,
			 "max", (json_int_t)max);
	return 0;
}

struct listctx { struct daemon *d; uint64_t conn; };

static int list_chunk(const char *json, size_t len, int last, void *arg)
{
	struct listctx *l = arg;
	if (last)
		server_post_raw(l->d->srv, l->conn, "{\"ok\":true,\"result\":", json, len, "}", 1);
	else
		server_post_raw(l->d->srv, l->conn, "{\"partial\":", json, len, "}", 0);
	return 0;
}

/* list: summaries straight from the catalog, in frames of at most 4 MiB. */
static int op_list(struct daemon *d, struct ops_peer *p, json_t *req)
{
	MDB_txn *txn;
	const char *only = str_arg(req, "name");
	int rc;
	if (only && (rc = util_check_model_name(only)))
		return rc;
	if ((rc = store_txn(d->st, 0, &txn)))
		return rc;
	struct listctx l = { d, p->conn_id };
	rc = catalog_list_raw(d->st, txn, only, 4u << 20, list_chunk, &l);
	mdb_txn_abort(txn);
	return rc;
}

static int op_show(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	MDB_txn *txn;
	json_t *m = NULL;
	(void)p;
	int rc = ref_arg(req, &name, &want);
	if (rc)
		return rc;
	if ((rc = store_txn(d->st, 0, &txn)))
		goto out;
	if (!(rc = catalog_resolve(d->st, txn, name, want, rev)) &&
	    !(rc = catalog_get_rev(d->st, txn, name, rev, &m))) {
		*res = public_manifest(d->st, txn, m, 1);
		find_public_facts(d, *res);
		/* the license as `license` shows it: lineage, its flags and the
		 * verdict from the catalog as it is now (audit.h) */
		json_t *lic, *chain;
		if (*res && json_object_get(*res, "license") &&
		    !audit_live_license(d, txn, name, m, d->pol, &lic, &chain)) {
			json_object_set_new(*res, "license", lic);
			json_decref(chain);
		}
		json_decref(m);
	}
	mdb_txn_abort(txn);
out:
	free(name);
	free(want);
	return rc;
}

/* cat: the file's bytes travel as descriptors plus a list of segments, so
 * nothing is copied through the socket. */
static int op_cat(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res,
		  int *fds, size_t *nfds)
{
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	MDB_txn *txn;
	json_t *m = NULL;
	const char *path = str_arg(req, "path");
	(void)p;
	if (!path)
		return md_fail(MD_EINVAL, "missing file path");
	int rc = ref_arg(req, &name, &want);
	if (rc)
		return rc;
	if ((rc = store_txn(d->st, 0, &txn)))
		goto out;
	if ((rc = catalog_resolve(d->st, txn, name, want, rev)) ||
	    (rc = catalog_get_rev(d->st, txn, name, rev, &m)))
		goto out_txn;
	json_t *hit = reader_find(m, path);
	if (!hit) {
		rc = md_fail(MD_ENOENT, "%s@%.12s: no file %s", name, rev, path);
		goto out_txn;
	}
	struct reader r;
	if ((rc = reader_open(d->st, hit, &r)))
		goto out_txn;
	json_t *segs = json_array();
	for (size_t i = 0; i < r.nsegs; i++)
		json_array_append_new(segs, json_pack("{s:i,s:I,s:I}", "fd", (int)r.segs[i].fd,
						      "offset", (json_int_t)r.segs[i].off,
						      "length", (json_int_t)r.segs[i].len));
	for (size_t i = 0; i < r.nfds; i++)
		fds[i] = r.fds[i];
	*nfds = r.nfds;
	r.nfds = 0; /* the descriptors travel with the reply */
	*res = json_pack("{s:s,s:s,s:I,s:s,s:o}", "name", name, "revision", rev, "size",
			 (json_int_t)r.size, "sha256", str_arg(hit, "sha256"), "segments", segs);
	reader_close(&r);
out_txn:
	mdb_txn_abort(txn);
	json_decref(m);
out:
	free(name);
	free(want);
	return rc;
}

static int op_jobs(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)p;
	(void)req;
	*res = jobs_list(d->jobs);
	return 0;
}

static int op_cancel(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	(void)p;
	int rc = jobs_cancel(d->jobs, (uint64_t)id);
	if (!rc)
		*res = json_pack("{s:I,s:b}", "id", id, "canceled", 1);
	return rc;
}

static int op_weights(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)p;
	return weights_list(d, req, res);
}

static int op_license(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)p;
	return audit_license(d, req, res);
}

static int op_audit(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)p;
	return audit_run(d, req, res);
}

/* ---- jobs ------------------------------------------------------------- */

static int job_import(struct daemon *d, struct job *j, json_t **res)
{
	struct ingest *ing;
	json_t *files = json_object_get(j->args, "files");
	const char *name = str_arg(j->args, "name");
	uint64_t total = 0;
	for (size_t i = 0; i < j->nfds; i++) {
		struct stat sb;
		if (fstat(j->fds[i], &sb) == 0)
			total += (uint64_t)sb.st_size;
	}
	atomic_store(&j->ctl.total, total);
	int rc = ingest_begin(d->st, &j->ctl, &ing);
	if (rc)
		return rc;
	struct ingest_converter conv;
	worker_converter(&conv, &j->ctl.cancel);
	ingest_set_converter(ing, &conv);
	for (size_t i = 0; i < j->nfds && !rc; i++) {
		const char *path = str_arg(json_array_get(files, i), "path");
		rc = ingest_add_fd(ing, path, j->fds[i]);
		close(j->fds[i]);
		j->fds[i] = -1;
	}
	json_t *m = NULL;
	if (!rc) {
		json_t *extra = json_pack("{s:O}", "source", json_object_get(j->args, "source"));
		/* provenance: where the bytes came from and what vouches for them
		 * (a local folder has no reference digest: computed at import) */
		char now[32];
		util_now_iso(now, sizeof now);
		json_t *pf = json_array(), *f;
		size_t k;
		json_array_foreach(ingest_files(ing), k, f)
			json_array_append_new(pf, json_pack("{s:O,s:O,s:s}", "path",
				json_object_get(f, "path"), "sha256", json_object_get(f, "sha256"),
				"verified_against", "none (computed at import)"));
		json_t *src = json_object_get(j->args, "source");
		json_object_set_new(extra, "provenance", json_pack("{s:s,s:O,s:s,s:s,s:o,s:{s:s,s:s}}",
			"type", "local", "path", json_object_get(src, "path") ? json_object_get(src, "path")
									    : json_null(),
			"retrieved_at", now, "modeld_version", MODELD_VERSION, "files", pf,
			"converters", "pack_format", PACK_VERSION_STR, "recipe_format", "1"));
		rc = describe_revision(d, name, ing, extra);
		if (!rc)
			rc = ingest_commit(ing, name, str_arg(j->args, "revision"), "main", extra, &m);
		json_decref(extra);
	}
	ingest_free(ing);
	if (rc)
		return md_fail_prefix(rc, name);
	*res = public_manifest(d->st, NULL, m, 0);
	json_decref(m);
	return 0;
}

static int job_rm(struct daemon *d, struct job *j, json_t **res)
{
	char *name, *rev;
	int rc = ref_arg(j->args, &name, &rev);
	if (!rc && !(rc = serve_rm_begin(d, name, rev))) { /* refused while a lease holds it */
		rc = maint_rm(d->st, name, rev, res);
		serve_rm_end(name);
	}
	free(name);
	free(rev);
	return rc;
}

static int job_gc(struct daemon *d, struct job *j, json_t **res)
{
	return pull_gc(d, json_is_true(json_object_get(j->args, "partial")), res);
}

static int job_verify(struct daemon *d, struct job *j, json_t **res)
{
	char *name = NULL, *rev = NULL;
	int rc = 0;
	if (json_object_get(j->args, "ref"))
		rc = ref_arg(j->args, &name, &rev);
	if (!rc)
		rc = maint_verify(d->st, name, rev, &j->ctl, res);
	free(name);
	free(rev);
	return rc;
}

static int job_export_weights(struct daemon *d, struct job *j, json_t **res)
{
	return weights_export(d, j->args, j->fds, j->nfds, res);
}

/* ---- import assembly -------------------------------------------------- */

/* descriptors an import leaves for everything else (sockets, the catalog,
 * other jobs' files) */
#define IMPORT_FD_RESERVE 256

struct pending {
	json_t *args;      /* first frame, with "files" grown by later frames */
	int *fds;
	size_t nfds, cap;
};

static void pending_free(struct pending *pd)
{
	if (!pd)
		return;
	close_fds(pd->fds, pd->nfds);
	free(pd->fds);
	json_decref(pd->args);
	free(pd);
}

/* Returns OPS_MORE, or 0 with *job_out ready, or an MD_E* code. */
static int import_chunk(struct ops_peer *p, json_t *req, int *fds,
			size_t nfds, struct job **job_out)
{
	struct pending *pd = p->pending;
	json_t *files = json_object_get(req, "files");
	if (!json_is_array(files) || json_array_size(files) != nfds)
		return md_fail(MD_EPROTO, "import: %zu descriptors for %zu files", nfds,
			       json_array_size(files));
	if (!pd) {
		const char *name = str_arg(req, "name");
		int rc;
		if (!name)
			return md_fail(MD_EINVAL, "import: missing model name");
		if ((rc = util_check_model_name(name)))
			return rc;
		json_t *src = json_object_get(req, "source");
		if (src && !json_is_object(src))
			return md_fail(MD_EPROTO, "import: source must be an object");
		if (!(pd = calloc(1, sizeof *pd)))
			return MD_ENOMEM;
		pd->args = json_pack("{s:s,s:[],s:O,s:b}", "name", name, "files", "source",
				     src ? src : json_object(), "detach",
				     json_is_true(json_object_get(req, "detach")));
		if (!src)
			json_object_set_new(pd->args, "source", json_pack("{s:s}", "type", "local"));
		const char *rev = str_arg(req, "revision"); /* a hub cache snapshot's commit */
		if (rev && !util_is_hex(rev, CATALOG_REV_LEN)) {
			json_decref(pd->args);
			free(pd);
			p->pending = NULL;
			return md_fail(MD_EINVAL, "import: revision must be 40 hex digits");
		}
		if (rev)
			json_object_set_new(pd->args, "revision", json_string(rev));
		p->pending = pd;
	}
	json_t *all = json_object_get(pd->args, "files");
	if (pd->nfds + nfds > INGEST_MAX_FILES)
		return md_fail(MD_ETOOBIG, "import: more than %d files", INGEST_MAX_FILES);
	/* The import holds a descriptor per file until its job ends. Refuse it
	 * with a reply while there is room for the next frame's descriptors:
	 * past the open-file limit the kernel drops them and the connection
	 * could only be cut. */
	struct rlimit rl;
	if (json_is_true(json_object_get(req, "more")) && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    pd->nfds + nfds + 2 * PROTO_MAX_FDS + IMPORT_FD_RESERVE > rl.rlim_cur)
		return md_fail(MD_ETOOBIG, "import: more than %llu files: over the daemon's open-file "
			       "limit (%llu; raise ulimit -n or LimitNOFILE=)",
			       (unsigned long long)(pd->nfds + nfds),
			       (unsigned long long)rl.rlim_cur);
	if (pd->nfds + nfds > pd->cap) {
		size_t nc = (pd->nfds + nfds) * 2;
		int *nf = realloc(pd->fds, nc * sizeof *nf);
		if (!nf)
			return MD_ENOMEM;
		pd->fds = nf;
		pd->cap = nc;
	}
	size_t i;
	json_t *f;
	json_array_foreach(files, i, f) {
		const char *path = str_arg(f, "path");
		int rc = path ? util_check_relpath(path) : md_fail(MD_EPROTO, "import: file without path");
		if (rc)
			return rc;
		json_array_append_new(all, json_pack("{s:s}", "path", path));
		pd->fds[pd->nfds++] = fds[i];
		fds[i] = -1;
	}
	if (json_is_true(json_object_get(req, "more")))
		return OPS_MORE;
	p->pending = NULL;
	*job_out = jobs_new("import", str_arg(pd->args, "name"), json_incref(pd->args), pd->fds,
			    pd->nfds, p->conn_id, p->uid, job_import);
	pd->fds = NULL;
	pd->nfds = 0;
	pending_free(pd);
	return *job_out ? 0 : MD_ENOMEM;
}

/* ---- dispatch --------------------------------------------------------- */

/* Queue a job; a detached one is answered at once with its id. */
static void submit(struct daemon *d, struct job *j)
{
	uint64_t conn = j->conn_id;
	int detach = j->detach;
	if (detach)
		j->conn_id = 0;
	uint64_t id = jobs_submit(d->jobs, j); /* j belongs to the pool now */
	if (!detach)
		return;
	server_reply_ok(d->srv, conn, json_pack("{s:I,s:b}", "job", (json_int_t)id,
						"detached", 1), NULL, 0);
}

/* Copy a URL-like ref without its user info ("scheme://user:pw@host/p" ->
 * "scheme://host/p") into out; 1 when something was removed. */
static int redact_userinfo(const char *in, char *out, size_t n)
{
	const char *sep = strstr(in, "://");
	if (!sep)
		return 0;
	const char *auth = sep + 3, *end = auth + strcspn(auth, "/"), *at = NULL;
	for (const char *c = auth; c < end; c++)
		if (*c == '@')
			at = c;
	if (!at)
		return 0;
	snprintf(out, n, "%.*s%s", (int)(auth - in), in, at + 1);
	return 1;
}

struct op {
	const char *name;
	int write;                                 /* needs owner or root */
	int (*inline_fn)(struct daemon *, struct ops_peer *, json_t *, json_t **);
	job_fn *job;
	int (*raw_fn)(struct daemon *, struct ops_peer *, json_t *); /* posts its replies */
	int fds;                                   /* the job takes the request's descriptors */
};

static const struct op ops[] = {
	{ "ping", 0, op_ping, NULL },
	{ "list", 0, NULL, NULL, op_list },
	{ "show", 0, op_show, NULL },
	{ "cat", 0, NULL, NULL },                  /* special: returns descriptors */
	{ "jobs", 0, op_jobs, NULL },
	{ "license", 0, op_license, NULL },
	{ "weights", 0, op_weights, NULL },
	{ "tensors", 0, NULL, NULL, weights_tensors },
	{ "export_weights", 0, NULL, job_export_weights, NULL, 1 },  /* daemon/weights.c */
	{ "audit", 0, op_audit, NULL },
	{ "verify", 0, NULL, job_verify },
	{ "import", 1, NULL, NULL },               /* special: multi-frame */
	{ "rm", 1, NULL, job_rm },
	{ "gc", 1, NULL, job_gc },
	{ "pull", 1, NULL, pull_job },
	{ "cancel", 1, op_cancel, NULL },
	{ "bundle_export", 0, NULL, bundle_export_job, NULL, 1 },  /* daemon/bundle.c */
	{ "bundle_import", 1, NULL, bundle_import_job, NULL, 1 },
	{ "sign", 0, NULL, signing_sign_job, NULL, 1 },        /* daemon/signing.c */
	{ "verify_signature", 0, NULL, signing_verify_job, NULL, 1 },
	{ "find", 0, NULL, NULL, find_op_find },
	{ "search", 0, NULL, NULL, find_op_search },
	{ "compare", 0, find_op_compare, NULL },
	{ "bench_put", 1, find_op_bench_put, NULL },
	{ "open", 0, NULL, NULL, serve_open },     /* daemon/serve.h: descriptors + lease */
	{ "close", 0, serve_close, NULL },
};

int ops_handle(struct daemon *d, struct ops_peer *p, const char *payload, size_t len,
	       int *fds, size_t nfds)
{
	json_error_t e;
	json_t *req = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
	md_clearerr();
	if (!req || !json_is_object(req)) {
		close_fds(fds, nfds);
		json_decref(req);
		server_reply_err(d->srv, p->conn_id, MD_EPROTO, "malformed request");
		return OPS_CLOSE;
	}
	const char *name = str_arg(req, "op");
	const struct op *op = NULL;
	for (size_t i = 0; name && i < sizeof ops / sizeof ops[0]; i++)
		if (!strcmp(ops[i].name, name))
			op = &ops[i];
	int rc, ret = OPS_REPLIED;
	json_t *res = NULL;
	if (!op) {
		close_fds(fds, nfds); /* the descriptors a refused request brought */
		rc = md_fail(MD_EPROTO, "unknown operation '%s'", name ? name : "");
		goto fail;
	}
	if (op->write && !p->can_write) {
		close_fds(fds, nfds);
		log_info("uid %u pid %d: %s refused: permission denied", (unsigned)p->uid,
			 (int)p->pid, op->name);
		rc = md_fail(MD_EPERM, "permission denied: %s needs the daemon's user or root",
			     op->name);
		goto fail;
	}
	if (!strcmp(op->name, "import")) {
		struct job *j = NULL;
		rc = import_chunk(p, req, fds, nfds, &j);
		close_fds(fds, nfds);
		if (rc == OPS_MORE) {
			json_decref(req);
			return OPS_MORE;
		}
		if (rc) {
			pending_free(p->pending);
			p->pending = NULL;
			server_reply_err(d->srv, p->conn_id, rc, md_errmsg(rc));
			json_decref(req);
			return OPS_CLOSE; /* later chunks of this import would be orphans */
		}
		log_info("uid %u pid %d: import %s (%zu files)", (unsigned)p->uid, (int)p->pid,
			 j->target, j->nfds);
		submit(d, j);
		json_decref(req);
		return OPS_REPLIED;
	}
	if (op->job && op->fds) { /* bundles: the job reads/writes the client's descriptors */
		int *own = malloc((nfds ? nfds : 1) * sizeof *own);
		if (!own) {
			close_fds(fds, nfds);
			rc = MD_ENOMEM;
			goto fail;
		}
		if (nfds)
			memcpy(own, fds, nfds * sizeof *own);
		const char *target = str_arg(req, "ref");
		log_info("uid %u pid %d: %s %s", (unsigned)p->uid, (int)p->pid, op->name,
			 target ? target : "");
		struct job *j = jobs_new(op->name, target, req, own, nfds, p->conn_id, p->uid, op->job);
		if (!j) {
			server_reply_err(d->srv, p->conn_id, MD_ENOMEM, NULL);
			return OPS_REPLIED;
		}
		submit(d, j);
		return OPS_REPLIED;
	}
	close_fds(fds, nfds);
	if (!strcmp(op->name, "cat")) {
		int out[READER_MAX_FDS];
		size_t nout = 0;
		if ((rc = op_cat(d, p, req, &res, out, &nout)))
			goto fail;
		server_reply_ok(d->srv, p->conn_id, res, out, nout);
		json_decref(req);
		return OPS_REPLIED;
	}
	if (op->raw_fn) {
		if ((rc = op->raw_fn(d, p, req)))
			goto fail;
		json_decref(req);
		return OPS_REPLIED;
	}
	if (op->job) {
		const char *target = str_arg(req, "ref");
		char safe[4200];
		if (target && redact_userinfo(target, safe, sizeof safe))
			target = safe; /* git+https://user:token@host/...: never logged */
		if (op->write)
			log_info("uid %u pid %d: %s %s", (unsigned)p->uid, (int)p->pid, op->name,
				 target ? target : "");
		struct job *j = jobs_new(op->name, target, req, NULL, 0, p->conn_id, p->uid, op->job);
		if (!j) {
			server_reply_err(d->srv, p->conn_id, MD_ENOMEM, NULL);
			return OPS_REPLIED;
		}
		submit(d, j);
		return ret;
	}
	if ((rc = op->inline_fn(d, p, req, &res)))
		goto fail;
	server_reply_ok(d->srv, p->conn_id, res, NULL, 0);
	json_decref(req);
	return ret;
fail:
	server_reply_err(d->srv, p->conn_id, rc, md_errmsg(rc));
	json_decref(req);
	return ret;
}

void ops_conn_closed(struct daemon *d, struct ops_peer *p)
{
	(void)d;
	serve_conn_closed(p->conn_id);
	pending_free(p->pending);
	p->pending = NULL;
}
