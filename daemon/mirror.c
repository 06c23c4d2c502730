/* daemon/mirror.c — see mirror.h; endpoints in docs/airgap.md. */
#include "daemon/mirror.h"
#include "daemon/config.h"
#include "registry/catalog.h"
#include "registry/reader.h"
#include "common/err.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define URL_MAX 8192
#define SHA1_CACHE_MAX 20000   /* git blob ids remembered (sha256 -> sha1) */

struct mirror {
	struct daemon *d;
	struct MHD_Daemon *mhd;
	char *token;               /* bearer token, or NULL */
	char self[300];            /* host:port for Link headers when Host is unusable */
	mirror_miss_fn *miss;
	void *miss_arg;
	pthread_mutex_t mu;
	json_t *sha1;              /* sha256 hex -> git blob sha1 hex (small files) */
};

struct req {
	char *body;
	size_t len;
	int too_big;
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- small helpers ---------------------------------------------------- */

/* %XX decoding (and '+' as space when form); -1 on %00 or when out is too
 * small. A '%' not followed by two hex digits stands for itself: clients
 * such as @huggingface/hub put file paths into URLs unencoded, so a file
 * named "100%.txt" arrives as ".../100%.txt". */
static int pct_decode(const char *in, size_t n, char *out, size_t cap, int form)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k + 1 >= cap)
			return -1;
		char ch = in[i];
		if (ch == '%' && i + 2 < n && isxdigit((unsigned char)in[i + 1]) &&
		    isxdigit((unsigned char)in[i + 2])) {
			char hx[3] = { in[i + 1], in[i + 2], 0 };
			ch = (char)strtol(hx, NULL, 16);
			if (!ch)
				return -1;
			i += 2;
		} else if (form && ch == '+') {
			ch = ' ';
		}
		out[k++] = ch;
	}
	out[k] = 0;
	return 0;
}

static void pct_encode(const char *in, char *out, size_t cap, int keep_slash)
{
	size_t k = 0;
	for (; *in && k + 4 < cap; in++) {
		unsigned char ch = (unsigned char)*in;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
		    (keep_slash && ch == '/'))
			out[k++] = (char)ch;
		else
			k += (size_t)snprintf(out + k, cap - k, "%%%02X", ch);
	}
	out[k] = 0;
}

static void sha1_hex(const void *a, size_t an, const void *b, size_t bn, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, a, an) &&
	    (!bn || EVP_DigestUpdate(c, b, bn)) && EVP_DigestFinal_ex(c, md, &len) && len == 20)
		util_hex(md, 20, out);
	else
		memset(out, '0', 40), out[40] = 0;
	EVP_MD_CTX_free(c);
}

static int is_lfs(json_t *f)
{
	/* the Hub's default .gitattributes, plus .gguf */
	static const char *ext[] = { ".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt",
				     ".h5", ".onnx", ".msgpack", ".npy", ".npz", ".tflite",
				     ".pkl", ".pickle", ".joblib", ".model", ".mlmodel", ".ot",
				     ".pb", ".arrow", ".parquet", ".ftz", ".wasm", ".7z", ".rar",
				     ".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".zst", NULL };
	const char *p = jstr(f, "path");
	if ((uint64_t)json_integer_value(json_object_get(f, "size")) >= MIRROR_LFS_SIZE)
		return 1;
	size_t n = p ? strlen(p) : 0;
	for (int i = 0; ext[i]; i++) {
		size_t k = strlen(ext[i]);
		if (n > k && !strcmp(p + n - k, ext[i]))
			return 1;
	}
	return 0;
}

/* The LFS pointer file git would store for f; returns its length. */
static int lfs_pointer(json_t *f, char *out, size_t cap)
{
	return snprintf(out, cap, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %lld\n",
			jstr(f, "sha256"), (long long)json_integer_value(json_object_get(f, "size")));
}

/* The git blob id of f: of its LFS pointer, or of its content (computed
 * through the reader on first use and remembered). */
static int git_oid(struct mirror *m, json_t *f, char out[41])
{
	char ptr[256], hdr[64];
	if (is_lfs(f)) {
		int n = lfs_pointer(f, ptr, sizeof ptr);
		int h = snprintf(hdr, sizeof hdr, "blob %d", n);
		sha1_hex(hdr, (size_t)h + 1, ptr, (size_t)n, out);
		return 0;
	}
	const char *sha = jstr(f, "sha256");
	pthread_mutex_lock(&m->mu);
	const char *hit = jstr(m->sha1, sha ? sha : "");
	if (hit)
		memcpy(out, hit, 41);
	pthread_mutex_unlock(&m->mu);
	if (hit)
		return 0;
	struct reader r;
	int rc = reader_open(m->d->st, f, &r);
	if (rc)
		return rc;
	int h = snprintf(hdr, sizeof hdr, "blob %llu", (unsigned long long)r.size);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char *buf = malloc(1u << 20);
	if (!c || !buf || !EVP_DigestInit_ex(c, EVP_sha1(), NULL)) {
		EVP_MD_CTX_free(c);
		free(buf);
		reader_close(&r);
		return MD_ENOMEM;
	}
	EVP_DigestUpdate(c, hdr, (size_t)h + 1);
	for (uint64_t off = 0; off < r.size && !rc;) {
		ssize_t n = reader_pread(&r, buf, 1u << 20, off);
		if (n <= 0) {
			rc = n < 0 ? (int)n : md_fail(MD_ECORRUPT, "%s: short read", jstr(f, "path"));
			break;
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
		off += (uint64_t)n;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	EVP_DigestFinal_ex(c, md, &len);
	EVP_MD_CTX_free(c);
	free(buf);
	reader_close(&r);
	if (rc)
		return rc;
	util_hex(md, 20, out);
	pthread_mutex_lock(&m->mu);
	if (json_object_size(m->sha1) >= SHA1_CACHE_MAX)
		json_object_clear(m->sha1);
	if (sha)
		json_object_set_new(m->sha1, sha, json_string(out));
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* ---- responses -------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *body,
				 const char *link, const char *commit)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	if (link)
		MHD_add_response_header(r, "Link", link);
	if (commit)
		MHD_add_response_header(r, "X-Repo-Commit", commit);
	return queue(c, status, r);
}

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned status, const char *code,
				const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return MHD_NO;
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	if (code)
		MHD_add_response_header(r, "X-Error-Code", code);
	char clean[256];
	size_t k = 0;
	for (const char *p = msg; *p && k < sizeof clean - 1; p++)
		clean[k++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	clean[k] = 0;
	MHD_add_response_header(r, "X-Error-Message", clean);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"modeld\"");
	return queue(c, status, r);
}

/* ---- lookups ---------------------------------------------------------- */

struct look {
	char name[420];
	char rev[CATALOG_REV_LEN + 1];
	json_t *man;               /* owned */
	const char *code;          /* error: X-Error-Code */
	char msg[300];
};

/* Resolve name@want; 0 or 404 with look->code/msg set. */
static int lookup_once(struct mirror *m, struct look *l, const char *want)
{
	MDB_txn *txn;
	if (util_check_model_name(l->name)) {
		l->code = "RepoNotFound";
		snprintf(l->msg, sizeof l->msg, "Repository not found");
		return 404;
	}
	if (store_txn(m->d->st, 0, &txn)) {
		l->code = NULL;
		snprintf(l->msg, sizeof l->msg, "catalog unavailable");
		return 500;
	}
	int has = catalog_has_model(m->d->st, txn, l->name), rc = -1;
	const char *w = !want || !strcmp(want, "HEAD") ? NULL : want;
	if (has && (!w || util_check_ref(w) == 0) &&
	    (rc = catalog_resolve(m->d->st, txn, l->name, w, l->rev)) == 0)
		rc = catalog_get_rev(m->d->st, txn, l->name, l->rev, &l->man);
	mdb_txn_abort(txn);
	if (!has) {
		l->code = "RepoNotFound";
		snprintf(l->msg, sizeof l->msg, "Repository not found");
		return 404;
	}
	if (rc) {
		l->code = "RevisionNotFound";
		snprintf(l->msg, sizeof l->msg, "Invalid rev id: %.200s", want ? want : "HEAD");
		return 404;
	}
	return 0;
}

static int lookup(struct mirror *m, struct look *l, const char *want, const char *path)
{
	int st = lookup_once(m, l, want);
	if (st == 404 && m->miss && m->miss(m->miss_arg, l->name, want ? want : "HEAD", path) == 0)
		st = lookup_once(m, l, want);
	return st;
}

/* ---- JSON shapes ------------------------------------------------------ */

static void iso_ms(const char *iso, char *out, size_t n)
{
	/* "2026-11-23T08:13:37Z" -> "2026-11-23T08:13:37.000Z" (what the Hub sends) */
	if (iso && strlen(iso) == 20 && iso[19] == 'Z')
		snprintf(out, n, "%.19s.000Z", iso);
	else
		snprintf(out, n, "%s", iso ? iso : "1970-01-01T00:00:00.000Z");
}

static json_t *file_json(struct mirror *m, json_t *f, const char *rev, const char *date, int expand)
{
	char oid[41];
	if (git_oid(m, f, oid))
		return NULL;
	json_t *o = json_pack("{s:s,s:s,s:O,s:s}", "type", "file", "oid", oid, "size",
			      json_object_get(f, "size"), "path", jstr(f, "path"));
	if (is_lfs(f)) {
		char ptr[256];
		int n = lfs_pointer(f, ptr, sizeof ptr);
		json_object_set_new(o, "lfs", json_pack("{s:s,s:O,s:i}", "oid", jstr(f, "sha256"),
							"size", json_object_get(f, "size"),
							"pointerSize", n));
	}
	if (expand)
		json_object_set_new(o, "lastCommit", json_pack("{s:s,s:s,s:s}", "id", rev, "title",
							       "Imported into modeld", "date", date));
	return o;
}

static json_t *dir_json(const char *path, const char *rev, const char *date, int expand)
{
	char oid[41];
	sha1_hex(rev, strlen(rev), path, strlen(path), oid); /* stable, not a git tree id */
	json_t *o = json_pack("{s:s,s:s,s:i,s:s}", "type", "directory", "oid", oid, "size", 0,
			      "path", path);
	if (expand)
		json_object_set_new(o, "lastCommit", json_pack("{s:s,s:s,s:s}", "id", rev, "title",
							       "Imported into modeld", "date", date));
	return o;
}

static json_t *model_json(struct mirror *m, struct look *l, int blobs)
{
	json_t *man = l->man, *card = json_object_get(man, "card");
	json_t *cd = json_object();
	static const char *keep[] = { "license", "license_name", "license_link", "base_model",
				      "base_model_relation", "datasets", "tags", "language",
				      "pipeline_tag", "library_name", "model_name", NULL };
	for (int i = 0; keep[i]; i++)
		if (json_object_get(card, keep[i]))
			json_object_set(cd, keep[i], json_object_get(card, keep[i]));
	char id[65], date[40], org[100];
	sha256_hex(l->name, strlen(l->name), id);
	id[24] = 0;
	iso_ms(jstr(man, "imported_at"), date, sizeof date);
	snprintf(org, sizeof org, "%.*s", (int)strcspn(l->name, "/"), l->name);
	json_t *sib = json_array(), *tags = json_object_get(card, "tags");
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(man, "files"), i, f) {
		json_t *s = json_pack("{s:s}", "rfilename", jstr(f, "path"));
		char oid[41];
		if (blobs && git_oid(m, f, oid) == 0) {
			json_object_set_new(s, "blobId", json_string(oid));
			json_object_set(s, "size", json_object_get(f, "size"));
			if (is_lfs(f)) {
				char ptr[256];
				int n = lfs_pointer(f, ptr, sizeof ptr);
				json_object_set_new(s, "lfs", json_pack("{s:s,s:O,s:i}", "sha256",
					jstr(f, "sha256"), "size", json_object_get(f, "size"),
					"pointerSize", n));
			}
		}
		json_array_append_new(sib, s);
	}
	tags = json_is_array(tags) ? json_incref(tags) : json_array();
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:b,s:i,s:i,s:o,s:o,s:o,s:[],s:O}",
			      "_id", id, "id", l->name, "modelId", l->name, "author", org, "sha",
			      l->rev, "lastModified", date, "createdAt", date, "private", 0,
			      "disabled", 0, "gated", 0, "downloads", 0, "likes", 0, "tags",
			      tags, "cardData", cd,
			      "siblings", sib, "spaces", "usedStorage",
			      json_object_get(man, "total_size"));
	const char *pt = jstr(card, "pipeline_tag"), *lib = jstr(card, "library_name");
	if (pt)
		json_object_set_new(o, "pipeline_tag", json_string(pt));
	if (lib)
		json_object_set_new(o, "library_name", json_string(lib));
	return o;
}

/* ---- tree and paths-info ---------------------------------------------- */

struct item {
	const char *path;   /* borrowed: manifest or dirs object key */
	json_t *file;       /* NULL for a directory */
};

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

/* Every file and directory of a manifest; dirs is an object used as a set
 * (keeps the directory strings alive). Caller frees *out. */
static int all_items(json_t *man, json_t *dirs, struct item **out, size_t *n)
{
	json_t *files = json_object_get(man, "files"), *f;
	size_t i;
	json_array_foreach(files, i, f) {
		char p[1100];
		snprintf(p, sizeof p, "%s", jstr(f, "path"));
		for (char *s = strrchr(p, '/'); s; s = strrchr(p, '/')) {
			*s = 0;
			json_object_set_new(dirs, p, json_true());
		}
	}
	size_t cnt = json_array_size(files) + json_object_size(dirs), k = 0;
	struct item *it = malloc((cnt ? cnt : 1) * sizeof *it);
	if (!it)
		return MD_ENOMEM;
	json_array_foreach(files, i, f)
		it[k++] = (struct item){ jstr(f, "path"), f };
	const char *key;
	json_t *v;
	json_object_foreach(dirs, key, v)
		it[k++] = (struct item){ key, NULL };
	qsort(it, k, sizeof *it, item_cmp);
	*out = it;
	*n = k;
	return 0;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static int truthy(const char *v)
{
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

/* The scheme://host the client used, for absolute Link URLs. */
static void base_url(struct mirror *m, struct MHD_Connection *c, char *out, size_t n)
{
	const char *proto = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Proto");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-Host");
	if (!host)
		host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	int ok = host && *host && strlen(host) < 256;
	for (const char *p = host; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr(".-:[]_", *p);
	if (!proto || (strcmp(proto, "https") && strcmp(proto, "http")))
		proto = "http";
	snprintf(out, n, "%s://%s", proto, ok ? host : m->self);
}

static enum MHD_Result do_tree(struct mirror *m, struct MHD_Connection *c, struct look *l,
			       const char *want_raw, const char *dir_raw, const char *dir)
{
	int rec = truthy(arg(c, "recursive")), expand = truthy(arg(c, "expand"));
	const char *cur = arg(c, "cursor"), *lim = arg(c, "limit");
	long off = cur ? strtol(cur, NULL, 10) : 0, limit = lim ? strtol(lim, NULL, 10) : MIRROR_PAGE;
	if (off < 0)
		off = 0;
	if (limit <= 0 || limit > MIRROR_PAGE)
		limit = MIRROR_PAGE;
	json_t *dirs = json_object();
	struct item *it;
	size_t n;
	if (all_items(l->man, dirs, &it, &n)) {
		json_decref(dirs);
		return send_err(c, 500, NULL, "out of memory");
	}
	size_t dl = strlen(dir);
	if (dl && !json_object_get(dirs, dir)) {
		free(it);
		json_decref(dirs);
		return send_err(c, 404, "EntryNotFound", "Entry not found");
	}
	char date[40];
	iso_ms(jstr(l->man, "imported_at"), date, sizeof date);
	json_t *page = json_array();
	long idx = 0;
	int more = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = it[i].path;
		if (dl && (strncmp(p, dir, dl) || p[dl] != '/'))
			continue;
		const char *rest = dl ? p + dl + 1 : p;
		if (!rec && strchr(rest, '/'))
			continue;
		if (idx++ < off)
			continue;
		if ((long)json_array_size(page) == limit) {
			more = 1;
			break;
		}
		json_t *e = it[i].file ? file_json(m, it[i].file, l->rev, date, expand)
				       : dir_json(p, l->rev, date, expand);
		if (e)
			json_array_append_new(page, e);
	}
	free(it);
	json_decref(dirs);
	char link[URL_MAX + 600];
	if (more) {
		char base[600], nm[400];
		base_url(m, c, base, sizeof base);
		pct_encode(l->name, nm, sizeof nm, 1);
		snprintf(link, sizeof link, "<%s/api/models/%s/tree/%s%s%s?recursive=%s&expand=%s&cursor=%ld%s%s>; rel=\"next\"",
			 base, nm, want_raw, *dir_raw ? "/" : "", dir_raw, rec ? "true" : "false",
			 expand ? "true" : "false", off + limit, lim ? "&limit=" : "", lim ? lim : "");
	}
	return send_json(c, 200, page, more ? link : NULL, l->rev);
}

static int add_path(json_t *paths, const char *s)
{
	if (json_array_size(paths) >= MIRROR_MAX_PATHS)
		return -1;
	json_array_append_new(paths, json_string(s));
	return 0;
}

static enum MHD_Result do_paths_info(struct mirror *m, struct MHD_Connection *c, struct look *l,
				     struct req *rq)
{
	json_t *paths = json_array();
	int expand = 0;
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (rq->too_big) {
		json_decref(paths);
		return send_err(c, 413, NULL, "request body too large");
	}
	if (ct && strstr(ct, "application/json")) {
		json_error_t e;
		json_t *b = json_loadb(rq->body ? rq->body : "", rq->len, 0, &e);
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(b, "paths"), i, p)
			if (json_is_string(p) && add_path(paths, json_string_value(p)))
				break;
		expand = json_is_true(json_object_get(b, "expand"));
		json_decref(b);
		if (!b) {
			json_decref(paths);
			return send_err(c, 400, NULL, "body is not JSON");
		}
	} else if (rq->body) { /* application/x-www-form-urlencoded: paths=a&paths=b&expand=true */
		char *save = NULL;
		for (char *kv = strtok_r(rq->body, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');
			if (!eq)
				continue;
			*eq = 0;
			char v[1100];
			if (pct_decode(eq + 1, strlen(eq + 1), v, sizeof v, 1))
				continue;
			if (!strcmp(kv, "paths") || !strcmp(kv, "paths%5B%5D") || !strcmp(kv, "paths[]"))
				add_path(paths, v);
			else if (!strcmp(kv, "expand"))
				expand = truthy(v);
		}
	}
	json_t *dirs = json_object();
	struct item *it;
	size_t n;
	if (all_items(l->man, dirs, &it, &n)) {
		json_decref(dirs);
		json_decref(paths);
		return send_err(c, 500, NULL, "out of memory");
	}
	char date[40];
	iso_ms(jstr(l->man, "imported_at"), date, sizeof date);
	json_t *out = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(paths, i, p) {
		struct item key = { json_string_value(p), NULL };
		while (key.path[0] == '/')
			key.path++;
		struct item *hit = bsearch(&key, it, n, sizeof *it, item_cmp);
		if (!hit)
			continue;
		json_t *e = hit->file ? file_json(m, hit->file, l->rev, date, expand)
				      : dir_json(hit->path, l->rev, date, expand);
		if (e)
			json_array_append_new(out, e);
	}
	free(it);
	json_decref(dirs);
	json_decref(paths);
	return send_json(c, 200, out, NULL, l->rev);
}

/* ---- resolve: the file's bytes ---------------------------------------- */

struct stream {
	struct reader r;
	uint64_t start;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	ssize_t n = reader_pread(&s->r, buf, max, s->start + pos);
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;
	reader_close(&s->r);
	free(s);
}

/* "bytes=a-b" / "bytes=a-" / "bytes=-n" -> [*from, *to]; 0 ok, 1 ignore
 * (absent, malformed, several ranges: the whole file), -1 unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 1;
	const char *s = h + 6;
	char *end;
	if (*s == '-') {
		unsigned long long k = strtoull(s + 1, &end, 10);
		if (end == s + 1 || *end)
			return 1;
		if (!k || !size)
			return -1;
		*from = k >= size ? 0 : size - k;
		*to = size - 1;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return 1;
	unsigned long long a = strtoull(s, &end, 10), b;
	if (*end != '-')
		return 1;
	const char *bs = end + 1;
	if (!*bs) {
		b = size ? size - 1 : 0;
	} else {
		b = strtoull(bs, &end, 10);
		if (*end || !isdigit((unsigned char)*bs))
			return 1;
		if (b < a)
			return 1;
		if (size && b >= size)
			b = size - 1;
	}
	if (a >= size)
		return -1;
	*from = a;
	*to = b;
	return 0;
}

/* /raw/ of an LFS file: the pointer file git holds, as the Hub answers. */
static enum MHD_Result send_pointer(struct mirror *m, struct MHD_Connection *c, struct look *l,
				    json_t *f)
{
	char ptr[256], oid[41], q[44];
	int n = lfs_pointer(f, ptr, sizeof ptr);
	if (n < 0 || (size_t)n >= sizeof ptr || git_oid(m, f, oid))
		return send_err(c, 500, NULL, "store read error");
	snprintf(q, sizeof q, "\"%s\"", oid);
	struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, ptr, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "ETag", q);
	MHD_add_response_header(r, "X-Repo-Commit", l->rev);
	return queue(c, 200, r);
}

static enum MHD_Result do_resolve(struct mirror *m, struct MHD_Connection *c, struct look *l,
				  const char *path, int raw)
{
	json_t *f = reader_find(l->man, path);
	if (!f)
		return send_err(c, 404, "EntryNotFound", "Entry not found");
	char etag[80], oid[41], q[90];
	int lfs = is_lfs(f);
	if (raw && lfs)
		return send_pointer(m, c, l, f);
	if (lfs) {
		snprintf(etag, sizeof etag, "%s", jstr(f, "sha256"));
	} else {
		if (git_oid(m, f, oid))
			return send_err(c, 500, NULL, "store read error");
		snprintf(etag, sizeof etag, "%s", oid);
	}
	snprintf(q, sizeof q, "\"%s\"", etag);
	struct stream *s = calloc(1, sizeof *s);
	if (!s)
		return MHD_NO;
	if (reader_open(m->d->st, f, &s->r)) {
		free(s);
		return send_err(c, 500, NULL, "stored file unreadable (run modelctl verify)");
	}
	uint64_t size = s->r.size, from = 0, to = size ? size - 1 : 0;
	const char *rh = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	int pr = parse_range(rh, size, &from, &to);
	unsigned status = 200;
	char cr[100] = "";
	if (inm && (!strcmp(inm, q) || !strcmp(inm, etag))) {
		stream_free(s);
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "ETag", q);
		MHD_add_response_header(r, "X-Repo-Commit", l->rev);
		return queue(c, 304, r);
	}
	if (pr < 0 && size) {
		stream_free(s);
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
		MHD_add_response_header(r, "Content-Range", cr);
		return queue(c, 416, r);
	}
	if (pr == 0 && size) {
		status = 206;
		snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)from,
			 (unsigned long long)to, (unsigned long long)size);
	} else if (!size && rh) {
		snprintf(cr, sizeof cr, "bytes */0"); /* clients read the size from it */
	}
	uint64_t len = size ? to - from + 1 : 0;
	struct reader_seg seg[2];
	size_t nseg = len ? reader_range(&s->r, from, len, seg, 2) : 0;
	struct MHD_Response *r;
	if (nseg == 1) { /* contiguous: sendfile straight from the store */
		int fd = s->r.fds[seg[0].fd];
		s->r.fds[seg[0].fd] = -1;
		stream_free(s);
		r = MHD_create_response_from_fd_at_offset64(len, fd, seg[0].off);
		if (!r)
			close(fd);
	} else if (!len) {
		stream_free(s);
		r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	} else {
		s->start = from;
		r = MHD_create_response_from_callback(len, 1u << 20, stream_read, s, stream_free);
		if (!r)
			stream_free(s);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	MHD_add_response_header(r, "ETag", q);
	MHD_add_response_header(r, "X-Repo-Commit", l->rev);
	if (lfs) {
		char sz[32];
		snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
		MHD_add_response_header(r, "X-Linked-Etag", q);
		MHD_add_response_header(r, "X-Linked-Size", sz);
	}
	if (cr[0])
		MHD_add_response_header(r, "Content-Range", cr);
	return queue(c, status, r);
}

/* ---- routing ---------------------------------------------------------- */

static int auth_ok(struct mirror *m, struct MHD_Connection *c)
{
	if (!m->token)
		return 1;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7))
		return 0;
	h += 7;
	size_t n = strlen(h), k = strlen(m->token);
	return n == k && CRYPTO_memcmp(h, m->token, k) == 0;
}

/* Split the raw URL into at most max '/'-separated segments (no decoding). */
static size_t split(char *u, char **seg, size_t max)
{
	size_t n = 0;
	while (*u == '/')
		u++;
	while (*u && n < max) {
		seg[n++] = u;
		char *s = strchr(u, '/');
		if (!s)
			break;
		*s = 0;
		u = s + 1;
	}
	return n;
}

/* Re-join seg[from..n) with '/' (they were split in place). */
static const char *rest_of(char **seg, size_t n, size_t from)
{
	if (from >= n)
		return "";
	for (size_t i = from; i + 1 < n; i++)
		seg[i][strlen(seg[i])] = '/';
	return seg[from];
}

static enum MHD_Result route(struct mirror *m, struct MHD_Connection *c, const char *url,
			     const char *method, struct req *rq)
{
	char u[URL_MAX], *seg[64], want[512], path[URL_MAX], a[200], b[200];
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	if (strlen(url) >= sizeof u)
		return send_err(c, 414, NULL, "URL too long");
	snprintf(u, sizeof u, "%s", url);
	size_t n = split(u, seg, 64);
	struct look l = { 0 };
	enum MHD_Result ret;
	int st;
	if (n >= 4 && !strcmp(seg[0], "api") && !strcmp(seg[1], "models")) {
		/* /api/models/ORG/NAME[/revision/REV | /tree/REV[/PATH] | /paths-info/REV] */
		if (pct_decode(seg[2], strlen(seg[2]), a, sizeof a, 0) ||
		    pct_decode(seg[3], strlen(seg[3]), b, sizeof b, 0))
			return send_err(c, 404, "RepoNotFound", "Repository not found");
		snprintf(l.name, sizeof l.name, "%s/%s", a, b);
		const char *what = n > 4 ? seg[4] : "";
		int tree = !strcmp(what, "tree"), pinfo = !strcmp(what, "paths-info");
		int info = n == 4 || (!strcmp(what, "revision") && n >= 6);
		if (!(tree || pinfo || info) || (tree && n < 6) || (pinfo && n != 6))
			return send_err(c, 404, NULL, "Sorry, we can't find the page you are looking for.");
		if ((pinfo && !post) || (!pinfo && !get))
			return send_err(c, 405, NULL, "method not allowed");
		const char *want_raw = n >= 6 ? seg[5] : "HEAD";
		const char *dir_raw = "";
		if (info && n > 6)
			want_raw = rest_of(seg, n, 5);
		else if (tree)
			dir_raw = rest_of(seg, n, 6);
		char dir[URL_MAX];
		if (pct_decode(want_raw, strlen(want_raw), want, sizeof want, 0) ||
		    pct_decode(dir_raw, strlen(dir_raw), dir, sizeof dir, 0))
			return send_err(c, 400, NULL, "bad escape in URL");
		size_t dl = strlen(dir);
		while (dl && dir[dl - 1] == '/')
			dir[--dl] = 0;
		if ((st = lookup(m, &l, want, NULL)))
			return send_err(c, (unsigned)st, l.code, l.msg);
		if (info) {
			const char *bl = arg(c, "blobs");
			ret = send_json(c, 200, model_json(m, &l, truthy(bl)), NULL, NULL);
		} else if (tree) {
			char wr[512];
			pct_encode(want, wr, sizeof wr, 0);
			ret = do_tree(m, c, &l, wr, dir_raw, dir);
		} else {
			ret = do_paths_info(m, c, &l, rq);
		}
		json_decref(l.man);
		return ret;
	}
	if (n >= 1 && (!strcmp(seg[0], "datasets") || !strcmp(seg[0], "spaces")))
		return send_err(c, 404, "RepoNotFound", "Repository not found");
	if (n >= 5 && (!strcmp(seg[2], "resolve") || !strcmp(seg[2], "raw"))) {
		/* /ORG/NAME/resolve/REV/PATH, and /raw/ (LFS files: their pointer) */
		int raw = !strcmp(seg[2], "raw");
		if (!get)
			return send_err(c, 405, NULL, "method not allowed");
		if (pct_decode(seg[0], strlen(seg[0]), a, sizeof a, 0) ||
		    pct_decode(seg[1], strlen(seg[1]), b, sizeof b, 0))
			return send_err(c, 404, "RepoNotFound", "Repository not found");
		snprintf(l.name, sizeof l.name, "%s/%s", a, b);
		const char *praw = rest_of(seg, n, 4);
		if (pct_decode(seg[3], strlen(seg[3]), want, sizeof want, 0) ||
		    pct_decode(praw, strlen(praw), path, sizeof path, 0))
			return send_err(c, 400, NULL, "bad escape in URL");
		if ((st = lookup(m, &l, want, path)))
			return send_err(c, (unsigned)st, l.code, l.msg);
		if (!reader_find(l.man, path) && m->miss &&
		    m->miss(m->miss_arg, l.name, want, path) == 0) {
			json_decref(l.man);
			l.man = NULL;
			if ((st = lookup_once(m, &l, want)))
				return send_err(c, (unsigned)st, l.code, l.msg);
		}
		ret = do_resolve(m, c, &l, path, raw);
		json_decref(l.man);
		return ret;
	}
	return send_err(c, 404, NULL, "Sorry, we can't find the page you are looking for.");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct mirror *m = cls;
	struct req *rq = *con_cls;
	(void)version;
	if (!rq) {
		if (!(rq = calloc(1, sizeof *rq)))
			return MHD_NO;
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_big && rq->len + *upload_size <= MIRROR_MAX_BODY) {
			char *nb = realloc(rq->body, rq->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			memcpy(nb + rq->len, upload, *upload_size);
			rq->body = nb;
			rq->len += *upload_size;
			rq->body[rq->len] = 0;
		} else {
			rq->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	log_debug("http %s %s", method, url);
	if (!auth_ok(m, c))
		return send_err(c, 401, "Unauthorized", "Invalid credentials in Authorization header");
	return route(m, c, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* MHD would turn %2F into '/' before we split the path: keep URLs raw and
 * decode each piece ourselves. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* ---- start / stop ----------------------------------------------------- */

int mirror_read_token(const char *file, char **out)
{
	char what[4200];
	snprintf(what, sizeof what, "http_token_file %s", file);
	return util_read_token_file(file, what, MIRROR_MAX_TOKEN, out);
}

int mirror_start(struct daemon *d, const char *addr, const char *token_file, struct mirror **out)
{
	int rc = md_lib_need(MD_LIB_MHD, "mirror");
	struct addrinfo *ai = NULL;
	if (rc || (rc = config_http_addr(addr, &ai)))
		return rc;
	struct mirror *m = calloc(1, sizeof *m);
	if (!m) {
		freeaddrinfo(ai);
		return MD_ENOMEM;
	}
	m->d = d;
	m->sha1 = json_object();
	pthread_mutex_init(&m->mu, NULL);
	snprintf(m->self, sizeof m->self, "%s", addr[0] == ':' ? "127.0.0.1" : addr);
	if (addr[0] == ':')
		snprintf(m->self, sizeof m->self, "127.0.0.1%s", addr);
	if (token_file && (rc = mirror_read_token(token_file, &m->token))) {
		freeaddrinfo(ai);
		mirror_stop(m);
		return rc;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_POLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, m,
				  MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)MIRROR_MAX_CONNS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
				  MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				  MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!m->mhd) {
		rc = md_fail(MD_EIO, "http %s: cannot listen (address in use or not available)", addr);
		mirror_stop(m);
		return rc;
	}
	*out = m;
	return 0;
}

void mirror_set_upstream(struct mirror *m, mirror_miss_fn *fn, void *arg)
{
	m->miss = fn;
	m->miss_arg = arg;
}

void mirror_stop(struct mirror *m)
{
	if (!m)
		return;
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	if (m->token) {
		explicit_bzero(m->token, strlen(m->token));
		free(m->token);
	}
	json_decref(m->sha1);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
