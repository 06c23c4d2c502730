/* client/modeld.c — libmodeld's public API (modeld.h) over client/rpc.h. */
#include "common/err.h"
#include "client/modeld.h"
#include "client/rpc.h"
#include "common/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MD_MAX_TENSORS 4000000   /* hard cap on rows accepted from one open */
#define MD_MAX_PACKS 100000      /* hard cap on packs accepted from one open */

struct md_conn {
	struct rpc *rpc;
};

struct md_pack {
	char *file;
	int fd;
	int dflt;                /* the open reply's "default" (absent: 1) */
	uint64_t size;
	void *map;               /* NULL until md_tensor_map needs it */
};

struct md_model {
	struct md_conn *c;
	json_t *info;            /* the final result (owns name/revision) */
	json_t *rows;            /* every tensor row, owns the strings */
	struct md_tensor *t;
	size_t nt;
	struct md_pack *packs;
	size_t np, capp;
	int64_t lease;
};

int md_connect(const char *socket_path, struct md_conn **out)
{
	struct md_conn *c = calloc(1, sizeof *c);
	if (!c)
		return MD_ENOMEM;
	int rc = rpc_connect(socket_path, &c->rpc);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void md_disconnect(struct md_conn *c)
{
	if (!c)
		return;
	rpc_close(c->rpc);
	free(c);
}

/* Append a frame's packs (one descriptor each, taken over) and rows. */
static int take_part(struct md_model *m, json_t *o, int *fds, size_t nfds, size_t *used)
{
	json_t *packs = json_object_get(o, "packs"), *rows = json_object_get(o, "tensors"), *p;
	size_t i;
	if (!json_is_array(packs) || !json_is_array(rows) || json_array_size(packs) != nfds)
		return md_fail(MD_EPROTO, "open: %zu descriptors for %zu packs", nfds,
			       json_array_size(packs));
	if (m->np + nfds > MD_MAX_PACKS || json_array_size(m->rows) + json_array_size(rows) >
	    MD_MAX_TENSORS)
		return md_fail(MD_ETOOBIG, "open: too many packs or tensors");
	if (m->np + nfds > m->capp) {
		size_t nc = (m->np + nfds) * 2;
		struct md_pack *np = realloc(m->packs, nc * sizeof *np);
		if (!np)
			return MD_ENOMEM;
		m->packs = np;
		m->capp = nc;
	}
	json_array_foreach(packs, i, p) {
		const char *file = json_string_value(json_object_get(p, "file"));
		struct md_pack *k = &m->packs[m->np];
		k->file = strdup(file ? file : "");
		k->fd = fds[i];
		fds[i] = -1;
		(*used)++;
		k->size = (uint64_t)json_integer_value(json_object_get(p, "size"));
		k->dflt = !json_is_false(json_object_get(p, "default"));
		k->map = NULL;
		m->np++;
		if (!k->file)
			return MD_ENOMEM;
	}
	return json_array_extend(m->rows, rows) ? MD_ENOMEM : 0;
}

static int build_table(struct md_model *m)
{
	size_t n = json_array_size(m->rows), i;
	json_t *r;
	m->t = calloc(n ? n : 1, sizeof *m->t);
	if (!m->t)
		return MD_ENOMEM;
	json_array_foreach(m->rows, i, r) {
		struct md_tensor *t = &m->t[i];
		json_t *shape = json_object_get(r, "shape");
		json_int_t pk = json_integer_value(json_object_get(r, "pack"));
		t->name = json_string_value(json_object_get(r, "name"));
		t->dtype = json_string_value(json_object_get(r, "dtype"));
		t->digest = json_string_value(json_object_get(r, "digest"));
		t->digest_alg = json_string_value(json_object_get(r, "digest_alg"));
		if (!json_object_get(r, "digest_alg"))   /* a modeld from before pack format 2 */
			t->digest_alg = "sha256";
		t->offset = (uint64_t)json_integer_value(json_object_get(r, "offset"));
		t->length = (uint64_t)json_integer_value(json_object_get(r, "length"));
		if (!t->name || !t->dtype || !t->digest || !t->digest_alg || !json_is_array(shape) ||
		    json_array_size(shape) > MD_MAX_DIMS || pk < 0 || (size_t)pk >= m->np)
			return md_fail(MD_EPROTO, "open: malformed tensor row %zu", i);
		t->pack = (uint32_t)pk;
		t->ndim = (uint32_t)json_array_size(shape);
		for (uint32_t k = 0; k < t->ndim; k++)
			t->shape[k] = (uint64_t)json_integer_value(json_array_get(shape, k));
	}
	m->nt = n;
	return 0;
}

int md_open(struct md_conn *c, const char *ref, struct md_model **out)
{
	if (!c || !ref)
		return md_fail(MD_EINVAL, "md_open: no connection or reference");
	struct md_model *m = calloc(1, sizeof *m);
	if (!m || !(m->rows = json_array())) {
		free(m);
		return MD_ENOMEM;
	}
	m->c = c;
	m->lease = -1;
	json_t *req = json_pack("{s:s,s:s}", "op", "open", "ref", ref);
	int rc = req ? rpc_send(c->rpc, req, NULL, 0) : MD_ENOMEM;
	json_decref(req);
	while (!rc) {
		char *payload = NULL;
		size_t len, nfds = 0, used = 0;
		int fds[PROTO_MAX_FDS];
		int r = proto_recv(c->rpc->reader, c->rpc->fd, &payload, &len, fds, &nfds);
		if (r <= 0) {
			rc = r ? r : md_fail(MD_EPROTO, "modeld closed the connection");
			break;
		}
		json_t *msg = json_loadb(payload, len, 0, NULL), *part;
		free(payload);
		if (!json_is_object(msg)) {
			rc = md_fail(MD_EPROTO, "modeld sent a malformed frame");
		} else if ((part = json_object_get(msg, "open_part"))) {
			rc = take_part(m, part, fds, nfds, &used);
		} else if (json_object_get(msg, "ok")) {
			if (!json_is_true(json_object_get(msg, "ok"))) {
				const char *e = json_string_value(json_object_get(msg, "error"));
				json_int_t code = json_integer_value(json_object_get(msg, "code"));
				rc = md_fail(code < 0 && code > MD_ELAST ? (int)code : MD_EPROTO, "%s",
					     e ? e : "?");
			} else {
				json_t *res = json_object_get(msg, "result");
				if (!(rc = take_part(m, res, fds, nfds, &used))) {
					m->info = json_incref(res);
					m->lease = json_integer_value(json_object_get(res, "lease"));
					rc = build_table(m);
				}
				for (size_t k = 0; k < nfds; k++)
					if (fds[k] >= 0)
						close(fds[k]);
				json_decref(msg);
				break;
			}
		} /* progress and unknown frames are skipped */
		for (size_t k = 0; k < nfds; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		json_decref(msg);
		if (rc)
			break;
	}
	if (!rc && !m->info)
		rc = md_fail(MD_EPROTO, "open: no final reply");
	if (rc) {
		md_close(m);
		return rc;
	}
	*out = m;
	return 0;
}

const char *md_model_name(const struct md_model *m)
{
	return json_string_value(json_object_get(m->info, "name"));
}

const char *md_model_revision(const struct md_model *m)
{
	return json_string_value(json_object_get(m->info, "revision"));
}

size_t md_model_count(const struct md_model *m)
{
	return m->nt;
}

const struct md_tensor *md_model_tensor(const struct md_model *m, size_t i)
{
	return i < m->nt ? &m->t[i] : NULL;
}

const struct md_tensor *md_model_find(const struct md_model *m, const char *name)
{
	const struct md_tensor *first = NULL;
	for (size_t i = 0; i < m->nt; i++) {
		if (strcmp(m->t[i].name, name))
			continue;
		if (md_model_pack_default(m, m->t[i].pack))
			return &m->t[i];
		if (!first)
			first = &m->t[i];
	}
	return first;
}

size_t md_model_npacks(const struct md_model *m)
{
	return m->np;
}

const char *md_model_pack_file(const struct md_model *m, size_t i)
{
	return i < m->np ? m->packs[i].file : NULL;
}

int md_model_pack_default(const struct md_model *m, size_t i)
{
	return i < m->np && m->packs[i].dflt;
}

int md_model_pack_fd(const struct md_model *m, size_t i)
{
	return i < m->np ? m->packs[i].fd : -1;
}

int md_tensor_map(struct md_model *m, const struct md_tensor *t, const void **ptr, size_t *len)
{
	if (!m || !t || t < m->t || t >= m->t + m->nt)
		return md_fail(MD_EINVAL, "md_tensor_map: tensor not of this model");
	struct md_pack *p = &m->packs[t->pack];
	if (!p->map) {
		struct stat sb;
		if (fstat(p->fd, &sb) < 0)
			return md_fail(MD_EIO, "%s: %s", p->file, strerror(errno));
		p->size = (uint64_t)sb.st_size;
		void *a = p->size ? mmap(NULL, p->size, PROT_READ, MAP_SHARED, p->fd, 0) : MAP_FAILED;
		if (a == MAP_FAILED)
			return md_fail(MD_EIO, "%s: mmap: %s", p->file, strerror(errno));
		p->map = a;
	}
	if (t->offset > p->size || t->length > p->size - t->offset)
		return md_fail(MD_EINVAL, "%s: tensor %s lies outside its pack", p->file, t->name);
	*ptr = (const char *)p->map + t->offset;
	*len = (size_t)t->length;
	return 0;
}

void md_close(struct md_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->np; i++) {
		if (m->packs[i].map)
			munmap(m->packs[i].map, m->packs[i].size);
		if (m->packs[i].fd >= 0)
			close(m->packs[i].fd);
		free(m->packs[i].file);
	}
	if (m->lease >= 0 && m->c) {
		json_t *req = json_pack("{s:s,s:I}", "op", "close", "lease", (json_int_t)m->lease), *res = NULL;
		int *fds = NULL;
		size_t nfds = 0;
		if (req && !rpc_call(m->c->rpc, req, NULL, 0, NULL, NULL, &res, &fds, &nfds)) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
		}
		free(fds);
		json_decref(res);
		json_decref(req);
	}
	free(m->packs);
	free(m->t);
	json_decref(m->rows);
	json_decref(m->info);
	free(m);
}
