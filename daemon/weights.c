/* daemon/weights.c — see weights.h. */
#include "daemon/weights.h"
#include "daemon/server.h"
#include "registry/catalog.h"
#include "registry/reader.h"
#include "converters/export.h"
#include "converters/pack.h"
#include "converters/tdigest.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TENSORS_FRAME (2u << 20)   /* bytes of tensor rows per partial frame */

/* The manifest of req.ref; new reference. */
static int manifest_of(struct daemon *d, json_t *req, json_t **m)
{
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	const char *ref = json_string_value(json_object_get(req, "ref"));
	if (!ref)
		return md_fail(MD_EINVAL, "missing model reference");
	int rc = util_parse_modelref(ref, &name, &want);
	if (rc)
		return rc;
	MDB_txn *txn;
	if (!(rc = store_txn(d->st, 0, &txn))) {
		if (!(rc = catalog_resolve(d->st, txn, name, want, rev)))
			rc = catalog_get_rev(d->st, txn, name, rev, m);
		mdb_txn_abort(txn);
	}
	free(name);
	free(want);
	return rc;
}

/* flags: PACK_SKIP_META for table listings; an export needs the metadata
 * (it becomes the safetensors __metadata__ or the GGUF key/values). */
static int open_pack(struct daemon *d, json_t *f, unsigned flags, int *fd, struct pack **p)
{
	const char *hex = json_string_value(json_object_get(f, "pack"));
	const char *path = json_string_value(json_object_get(f, "path"));
	char bp[4096];
	store_blob_path(d->st, hex, bp, sizeof bp);
	if ((*fd = open(bp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return md_fail(MD_ECORRUPT, "%s: pack missing from the store: %s", path, strerror(errno));
	int rc = pack_open(*fd, flags, p);
	if (rc) {
		close(*fd);
		return md_fail_prefix(rc, path);
	}
	return 0;
}

static json_t *tensor_json(const char *path, const char *pack, const struct pack_tensor *t,
			   enum tdigest_alg alg)
{
	json_t *shape = json_array();
	for (uint32_t k = 0; k < t->ndim; k++)
		json_array_append_new(shape, json_integer((json_int_t)t->shape[k]));
	/* the name everything else uses (export errors, the serving protocol):
	 * "GGML_Q4_0", not the bare id */
	char buf[32], dig[65];
	const char *dt = conv_dtype_key(t->dtype, buf);
	util_hex(t->digest, tdigest_len(alg), dig);
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:s,s:s,s:s}", "file", path, "name",
			      t->name, "dtype", dt, "shape", shape, "bytes", (json_int_t)t->length,
			      "offset", (json_int_t)t->offset, "pack", pack, "digest", dig,
			      "digest_alg", tdigest_name(alg));
	if (t->alias >= 0)
		json_object_set_new(o, "alias", json_integer(t->alias));
	return o;
}

int weights_tensors(struct daemon *d, struct ops_peer *p, json_t *req)
{
	json_t *m;
	int rc = manifest_of(d, req, &m);
	if (rc)
		return rc;
	json_t *rows = json_array(), *f;
	size_t i, bytes = 0;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		if (!json_object_get(f, "pack"))
			continue;
		int fd;
		struct pack *pk;
		if ((rc = open_pack(d, f, PACK_SKIP_META, &fd, &pk)))
			break;
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *hex = json_string_value(json_object_get(f, "pack"));
		for (size_t k = 0; k < pack_count(pk); k++) {
			const struct pack_tensor *t = pack_tensor(pk, k);
			char where[65];
			if (t->ref)   /* the pack that holds its bytes */
				util_hex(pack_ref(pk, t->ref), 32, where);
			json_array_append_new(rows, tensor_json(path, t->ref ? where : hex, t,
								 pack_version(pk)));
			bytes += 200 + strlen(pack_tensor(pk, k)->name);
			if (bytes >= TENSORS_FRAME) {
				server_post(d->srv, p->conn_id, json_pack("{s:o}", "partial", rows),
					    NULL, 0, 0, 0);
				rows = json_array();
				bytes = 0;
			}
		}
		pack_close(pk);
		close(fd);
	}
	json_decref(m);
	if (rc) {
		/* partial frames may be out: the final error frame ends the request */
		json_decref(rows);
		return rc;
	}
	server_reply_ok(d->srv, p->conn_id, rows, NULL, 0);
	return 0;
}

int weights_list(struct daemon *d, json_t *req, json_t **res)
{
	json_t *m;
	int rc = manifest_of(d, req, &m);
	if (rc)
		return rc;
	json_t *files = json_array(), *f;
	size_t i;
	json_array_foreach(json_object_get(m, "files"), i, f)
		if (json_object_get(f, "pack"))
			json_array_append_new(files, json_pack("{s:O,s:O,s:O}", "path",
				json_object_get(f, "path"), "format", json_object_get(f, "format"),
				"tensors", json_object_get(f, "tensors")));
	*res = json_pack("{s:O,s:O,s:o}", "name", json_object_get(m, "name"), "revision",
			 json_object_get(m, "revision"), "files", files);
	json_decref(m);
	return 0;
}

int weights_export(struct daemon *d, json_t *req, int *fds, size_t nfds, json_t **res)
{
	const char *fmt = json_string_value(json_object_get(req, "format"));
	json_t *want = json_object_get(req, "files");
	if (!fmt || (strcmp(fmt, "safetensors") && strcmp(fmt, "gguf")))
		return md_fail(MD_EINVAL, "format: want safetensors or gguf");
	if (!json_is_array(want) || json_array_size(want) != nfds)
		return md_fail(MD_EPROTO, "export: %zu descriptors for %zu files", nfds,
			       json_array_size(want));
	json_t *m;
	int rc = manifest_of(d, req, &m);
	if (rc)
		return rc;
	json_t *written = json_array(), *w;
	size_t i;
	json_array_foreach(want, i, w) {
		const char *path = json_string_value(w);
		json_t *f = path ? reader_find(m, path) : NULL;
		if (!f || !json_object_get(f, "pack")) {
			rc = md_fail(MD_ENOENT, "%s: not a converted weight file of this revision",
				     path ? path : "?");
			break;
		}
		struct stat sb;
		if (fstat(fds[i], &sb) < 0 || !S_ISREG(sb.st_mode)) {
			rc = md_fail(MD_EINVAL, "%s: output is not a regular file", path);
			break;
		}
		int pfds[1 + PACK_MAX_REFS];
		struct pack *pk;
		if ((rc = open_pack(d, f, 0, &pfds[0], &pk)))
			break;
		if ((rc = reader_open_refs(d->st, pk, path, pfds + 1)) == 0) {
			rc = !strcmp(fmt, "gguf") ? export_gguf(pk, pfds, fds[i])
						  : export_safetensors(pk, pfds, fds[i]);
			for (size_t k = 1; k <= pack_nrefs(pk); k++)
				close(pfds[k]);
		}
		pack_close(pk);
		close(pfds[0]);
		if (rc) {
			md_fail_prefix(rc, path);
			break;
		}
		off_t end = lseek(fds[i], 0, SEEK_CUR);
		json_array_append_new(written, json_pack("{s:s,s:s,s:I}", "path", path, "format", fmt,
							 "bytes", (json_int_t)end));
	}
	json_decref(m);
	if (rc) {
		json_decref(written);
		return rc;
	}
	*res = json_pack("{s:o}", "written", written);
	return 0;
}
