/* daemon/serve.c — see serve.h. Frames: docs/protocol.md, docs/serving.md. */
#include "daemon/serve.h"
#include "daemon/server.h"
#include "registry/catalog.h"
#include "registry/reader.h"
#include "meta/wlayout.h"
#include "converters/pack.h"
#include "converters/tdigest.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct lease {
	uint64_t id, conn;
	pid_t pid;
	uid_t uid;
	char *name;
	char rev[CATALOG_REV_LEN + 1];
};

/* The lease table and the names being removed; both under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct lease *leases;
static size_t nleases, capleases;
static uint64_t next_lease = 1;
static char **removing;
static size_t nremoving;

static void lease_drop_at(size_t i)
{
	free(leases[i].name);
	leases[i] = leases[--nleases];
}

void serve_conn_closed(uint64_t conn_id)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nleases;)
		if (leases[i].conn == conn_id)
			lease_drop_at(i);
		else
			i++;
	if (!nleases) {
		free(leases);
		leases = NULL;
		capleases = 0;
	}
	pthread_mutex_unlock(&mu);
}

static void lease_release(uint64_t id)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nleases; i++)
		if (leases[i].id == id) {
			lease_drop_at(i);
			break;
		}
	pthread_mutex_unlock(&mu);
}

int serve_close(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res)
{
	(void)d;
	json_t *jl = json_object_get(req, "lease");
	if (!json_is_integer(jl))
		return md_fail(MD_EINVAL, "close: lease must be an integer (the one open returned)");
	json_int_t id = json_integer_value(jl);
	int found = 0;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nleases; i++)
		if (leases[i].id == (uint64_t)id && leases[i].conn == p->conn_id) {
			lease_drop_at(i);
			found = 1;
			break;
		}
	pthread_mutex_unlock(&mu);
	if (!found)
		return md_fail(MD_ENOENT, "lease %lld: not held by this connection", (long long)id);
	*res = json_pack("{s:I,s:b}", "lease", id, "closed", 1);
	return 0;
}

int serve_rm_begin(struct daemon *d, const char *name, const char *rev)
{
	size_t n = 0, shown = 0, len = 0;
	char pids[160] = "", full[CATALOG_REV_LEN + 1] = "";
	pthread_mutex_lock(&mu);
	if (rev) {
		/* a ref ("main") or a prefix: the revision it names now; when it
		 * names none, maint_rm reports that */
		MDB_txn *txn;
		if (!store_txn(d->st, 0, &txn)) {
			if (catalog_resolve(d->st, txn, name, rev, full))
				full[0] = 0;
			mdb_txn_abort(txn);
		}
		md_clearerr();
	}
	for (size_t i = 0; i < nleases; i++) {
		struct lease *l = &leases[i];
		if (strcmp(l->name, name) || (rev && strcmp(l->rev, full)))
			continue;
		n++;
		if (shown < 8 && len < sizeof pids - 16) {
			len += (size_t)snprintf(pids + len, sizeof pids - len, "%s%d", shown ? ", " : "",
						(int)l->pid);
			shown++;
		}
	}
	if (n) {
		pthread_mutex_unlock(&mu);
		return md_fail(MD_EBUSY, "%s is open by %zu client%s (pid %s%s); close them or retry",
			       name, n, n == 1 ? "" : "s", pids, n > shown ? ", ..." : "");
	}
	char **nr = realloc(removing, (nremoving + 1) * sizeof *nr);
	char *dup = strdup(name);
	if (!nr || !dup) {
		if (nr)
			removing = nr;
		free(dup);
		pthread_mutex_unlock(&mu);
		return MD_ENOMEM;
	}
	removing = nr;
	removing[nremoving++] = dup;
	pthread_mutex_unlock(&mu);
	return 0;
}

void serve_rm_end(const char *name)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nremoving; i++)
		if (!strcmp(removing[i], name)) {
			free(removing[i]);
			removing[i] = removing[--nremoving];
			break;
		}
	if (!nremoving) {
		free(removing);
		removing = NULL;
	}
	pthread_mutex_unlock(&mu);
}

/* Resolve name@want and take a lease, atomically with respect to rm. */
static int lease_take(struct daemon *d, struct ops_peer *p, const char *name, const char *want,
		      char rev[CATALOG_REV_LEN + 1], json_t **m, uint64_t *id)
{
	int rc = 0;
	size_t mine = 0;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nremoving; i++)
		if (!strcmp(removing[i], name)) {
			rc = md_fail(MD_EBUSY, "%s is being removed", name);
			goto out;
		}
	for (size_t i = 0; i < nleases; i++)
		mine += leases[i].conn == p->conn_id;
	if (mine >= SERVE_MAX_CONN_LEASES) {
		rc = md_fail(MD_ETOOBIG, "open: more than %d models open on one connection",
			     SERVE_MAX_CONN_LEASES);
		goto out;
	}
	if (nleases >= SERVE_MAX_LEASES) {
		rc = md_fail(MD_ETOOBIG, "open: more than %d leases held", SERVE_MAX_LEASES);
		goto out;
	}
	MDB_txn *txn;
	if ((rc = store_txn(d->st, 0, &txn)))
		goto out;
	if (!(rc = catalog_resolve(d->st, txn, name, want, rev)))
		rc = catalog_get_rev(d->st, txn, name, rev, m);
	mdb_txn_abort(txn);
	if (rc)
		goto out;
	if (nleases == capleases) {
		size_t nc = capleases ? capleases * 2 : 16;
		struct lease *nl = realloc(leases, nc * sizeof *nl);
		if (!nl) {
			rc = MD_ENOMEM;
			goto out_m;
		}
		leases = nl;
		capleases = nc;
	}
	struct lease *l = &leases[nleases];
	if (!(l->name = strdup(name))) {
		rc = MD_ENOMEM;
		goto out_m;
	}
	l->id = *id = next_lease++;
	l->conn = p->conn_id;
	l->pid = p->pid;
	l->uid = p->uid;
	memcpy(l->rev, rev, CATALOG_REV_LEN + 1);
	nleases++;
	goto out;
out_m:
	json_decref(*m);
	*m = NULL;
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

/* The pack's string-valued metadata (safetensors __metadata__), capped. */
static json_t *string_meta(const struct pack *pk)
{
	json_t *o = json_object(), *v;
	const char *k;
	size_t bytes = 0;
	json_object_foreach((json_t *)pack_meta(pk), k, v) {
		if (!json_is_string(v))
			continue;
		bytes += strlen(k) + json_string_length(v);
		if (bytes > SERVE_META_MAX)
			break;
		json_object_set(o, k, v);
	}
	return o;
}

static json_t *row_json(const struct pack_tensor *t, size_t pack, enum tdigest_alg alg)
{
	json_t *shape = json_array();
	for (uint32_t k = 0; k < t->ndim; k++)
		json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
	char dig[65];
	util_hex(t->digest, tdigest_len(alg), dig);
	return json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:s,s:s}", "name", t->name, "dtype",
			 conv_dtype_str(t->dtype), "shape", shape, "pack", (json_int_t)pack,
			 "offset", (json_int_t)t->offset, "length", (json_int_t)t->length,
			 "digest", dig, "digest_alg", tdigest_name(alg));
}

struct chunk {
	json_t *packs, *rows;
	int fds[PROTO_MAX_FDS];
	size_t nfds, bytes;
};

static void chunk_reset(struct chunk *c)
{
	c->packs = json_array();
	c->rows = json_array();
	c->nfds = c->bytes = 0;
}

static void chunk_flush(struct daemon *d, struct ops_peer *p, struct chunk *c)
{
	server_post(d->srv, p->conn_id, json_pack("{s:{s:o,s:o}}", "open_part", "packs", c->packs,
						  "tensors", c->rows), c->fds, c->nfds, 0, 0);
	chunk_reset(c);
}

/* Every open is logged, the refused ones too (who asked for what). */
static int open_refused(const struct ops_peer *p, const char *ref, int rc)
{
	char shown[128];
	log_info("uid %u pid %d: open %s refused: %.400s", (unsigned)p->uid, (int)p->pid,
		 util_printable(ref, shown, sizeof shown), md_errmsg(rc));
	return rc;
}

int serve_open(struct daemon *d, struct ops_peer *p, json_t *req)
{
	const char *ref = json_string_value(json_object_get(req, "ref"));
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	json_t *m = NULL;
	uint64_t id = 0;
	if (!ref)
		return open_refused(p, "", md_fail(MD_EINVAL, "missing model reference"));
	int rc = util_parse_modelref(ref, &name, &want);
	if (rc)
		return open_refused(p, ref, rc);
	if ((rc = lease_take(d, p, name, want, rev, &m, &id))) {
		open_refused(p, ref, rc);
		goto out;
	}
	/* which files a loader reads when not told (meta/wlayout.h) */
	unsigned char *dflt;
	if ((rc = wlayout_mark_files(json_object_get(m, "files"), 1, &dflt))) {
		lease_release(id);
		open_refused(p, ref, rc);
		goto out;
	}
	struct chunk c;
	chunk_reset(&c);
	size_t npacks = 0, ntensors = 0, i;
	uint64_t bytes = 0;
	json_t *f;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *hex = json_string_value(json_object_get(f, "pack"));
		const char *path = json_string_value(json_object_get(f, "path"));
		if (!hex || !path)
			continue;
		char bp[4096];
		store_blob_path(d->st, hex, bp, sizeof bp);
		int fd = open(bp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			rc = md_fail(MD_ECORRUPT, "%s: pack missing from the store: %s", path,
				     strerror(errno));
			break;
		}
		struct pack *pk;
		if ((rc = pack_open(fd, 0, &pk))) {
			close(fd);
			md_fail_prefix(rc, path);
			break;
		}
		/* and the packs holding the tensors it shares with other files */
		int rfds[PACK_MAX_REFS];
		size_t nr = pack_nrefs(pk);
		if ((rc = reader_open_refs(d->st, pk, path, rfds))) {
			pack_close(pk);
			close(fd);
			break;
		}
		if (c.nfds + 1 + nr > PROTO_MAX_FDS)
			chunk_flush(d, p, &c);
		json_array_append_new(c.packs, json_pack("{s:s,s:s,s:s,s:I,s:o,s:b}", "file", path,
			"format", pack_format(pk), "sha256", hex, "size",
			(json_int_t)pack_file_size(pk), "metadata", string_meta(pk), "default",
			dflt[i]));
		c.fds[c.nfds++] = fd;
		for (size_t k = 1; k <= nr; k++) {
			char rhex[65];
			struct stat sb;
			util_hex(pack_ref(pk, k), 32, rhex);
			json_array_append_new(c.packs, json_pack("{s:s,s:s,s:s,s:I,s:b,s:{},s:b}", "file",
				path, "format", pack_format(pk), "sha256", rhex, "size",
				(json_int_t)(fstat(rfds[k - 1], &sb) ? 0 : sb.st_size), "shared", 1,
				"metadata", "default", dflt[i]));
			c.fds[c.nfds++] = rfds[k - 1];
		}
		for (size_t k = 0; k < pack_count(pk); k++) {
			const struct pack_tensor *t = pack_tensor(pk, k);
			json_array_append_new(c.rows, row_json(t, npacks + t->ref, pack_version(pk)));
			c.bytes += 220 + strlen(t->name);
			if (t->alias < 0)
				bytes += t->length;
			ntensors++;
			if (c.bytes >= SERVE_ROWS_FRAME)
				chunk_flush(d, p, &c);
		}
		pack_close(pk);
		npacks += 1 + nr;
	}
	free(dflt);
	if (rc) {
		/* frames already posted are ended by the error frame */
		for (size_t k = 0; k < c.nfds; k++)
			close(c.fds[k]);
		json_decref(c.packs);
		json_decref(c.rows);
		lease_release(id);
		open_refused(p, ref, rc);
		goto out;
	}
	log_info("uid %u pid %d: open %s@%.12s: %zu packs, %zu tensors, %llu bytes (lease %llu)",
		 (unsigned)p->uid, (int)p->pid, name, rev, npacks, ntensors,
		 (unsigned long long)bytes, (unsigned long long)id);
	server_reply_ok(d->srv, p->conn_id, json_pack("{s:s,s:s,s:I,s:o,s:o}", "name", name,
		"revision", rev, "lease", (json_int_t)id, "packs", c.packs, "tensors", c.rows),
		c.fds, c.nfds);
out:
	json_decref(m);
	free(name);
	free(want);
	return rc;
}
