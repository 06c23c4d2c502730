/* sources/lfs.c — see lfs.h. */
#include "sources/lfs.h"
#include "sources/xfer.h"
#include "common/err.h"
#include "common/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define VERSION_LINE "version https://git-lfs.github.com/spec/v1\n"

int lfs_parse_pointer(const void *vbuf, size_t n, char oid[65], uint64_t *size)
{
	const char *b = vbuf;
	size_t vl = strlen(VERSION_LINE), pl = strlen("version https://git-lfs.github.com/spec/");
	if (n < pl || memcmp(b, VERSION_LINE, pl))
		return 0;
	if (n < vl || memcmp(b, VERSION_LINE, vl))
		return md_fail(MD_ECORRUPT, "not a spec/v1 version line");
	if (n >= LFS_MAX_POINTER)
		return md_fail(MD_ECORRUPT, "pointer of %zu bytes (at most %d)", n, LFS_MAX_POINTER - 1);
	if (memchr(b, 0, n))
		return md_fail(MD_ECORRUPT, "NUL byte in pointer");
	const char *p = b + vl, *end = b + n;
	if ((size_t)(end - p) < 4 + 7 + 64 + 1 || memcmp(p, "oid sha256:", 11))
		return md_fail(MD_ECORRUPT, "second line is not 'oid sha256:<64 hex>'");
	p += 11;
	char o[65];
	memcpy(o, p, 64);
	o[64] = 0;
	if (!util_is_hex(o, 64) || p[64] != '\n')
		return md_fail(MD_ECORRUPT, "oid is not 64 lower-case hex digits");
	p += 65;
	if ((size_t)(end - p) < 7 || memcmp(p, "size ", 5))
		return md_fail(MD_ECORRUPT, "third line is not 'size <bytes>'");
	p += 5;
	const char *d = p;
	uint64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (p - d >= 19)
			return md_fail(MD_ECORRUPT, "size too large");
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == d || (p - d > 1 && *d == '0') || p >= end || *p != '\n' || p + 1 != end)
		return md_fail(MD_ECORRUPT, "size is not a decimal number ending the pointer");
	memcpy(oid, o, 65);
	*size = v;
	return 1;
}

int lfs_endpoint(const char *scheme, const char *clean, char **out)
{
	*out = NULL;
	if (!strcmp(scheme, "file"))
		return 0;
	const char *rest = strstr(clean, "://");
	if (!rest)
		return md_fail(MD_EINVAL, "%s: not a URL", clean);
	rest += 3;
	const char *sch = !strcmp(scheme, "http") ? "http" : "https";
	/* ssh://[user@]host[:port]/path: drop the port, keep the host */
	char *host_path = strdup(rest);
	if (!host_path)
		return MD_ENOMEM;
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		char *slash = strchr(host_path, '/');
		char *colon = strchr(host_path, ':');
		if (colon && slash && colon < slash)
			memmove(colon, slash, strlen(slash) + 1);
	}
	size_t l = strlen(host_path);
	while (l && host_path[l - 1] == '/')
		host_path[--l] = 0;
	int dotgit = l > 4 && !strcmp(host_path + l - 4, ".git");
	int r = asprintf(out, "%s://%s%s/info/lfs", sch, host_path, dotgit ? "" : ".git");
	free(host_path);
	if (r < 0) {
		*out = NULL;
		return MD_ENOMEM;
	}
	return 0;
}

char *lfs_local_path(const char *repo, const char *oid)
{
	const char *forms[] = { "%s/lfs/objects/%.2s/%.2s/%s", "%s/.git/lfs/objects/%.2s/%.2s/%s" };
	for (int i = 0; i < 2; i++) {
		char *p;
		struct stat sb;
		if (asprintf(&p, forms[i], repo, oid, oid + 2, oid) < 0)
			return NULL;
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			return p;
		free(p);
	}
	return NULL;
}

void lfs_objects_clear(struct lfs_object *objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(objs[i].href);
		objs[i].href = NULL;
		for (int h = 0; h < LFS_MAX_HEADERS && objs[i].headers[h]; h++) {
			explicit_bzero(objs[i].headers[h], strlen(objs[i].headers[h]));
			free(objs[i].headers[h]);
			objs[i].headers[h] = NULL;
		}
		objs[i].expires = 0;
	}
}

struct body {
	char *p;
	size_t n;
	int over;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t k = sz * nm;
	if (b->n + k > LFS_MAX_RESPONSE) {
		b->over = 1;
		return 0;
	}
	char *np = realloc(b->p, b->n + k + 1);
	if (!np)
		return 0;
	memcpy(np + b->n, d, k);
	b->p = np;
	b->n += k;
	b->p[b->n] = 0;
	return k;
}

time_t lfs_parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *e = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!e)
		return 0;
	if (*e == '.')
		for (e++; *e >= '0' && *e <= '9'; e++)
			;
	long off = 0;
	if (*e == 'Z' || *e == 'z') {
		e++;
	} else if ((*e == '+' || *e == '-') && isdigit((unsigned char)e[1]) &&
		   isdigit((unsigned char)e[2])) {
		int sign = *e == '-' ? -1 : 1, hh = (e[1] - '0') * 10 + (e[2] - '0'), mm = 0;
		e += 3;
		if (*e == ':')
			e++;
		if (isdigit((unsigned char)e[0]) && isdigit((unsigned char)e[1])) {
			mm = (e[0] - '0') * 10 + (e[1] - '0');
			e += 2;
		}
		if (hh > 23 || mm > 59)
			return 0;
		off = sign * (hh * 3600L + mm * 60L);
	}
	if (*e)
		return 0;
	return timegm(&tm) - off;
}

static int fill(struct lfs_object *objs, size_t n, json_t *resp)
{
	json_t *arr = json_object_get(resp, "objects");
	const char *tr = json_string_value(json_object_get(resp, "transfer"));
	if (tr && strcmp(tr, "basic"))
		return md_fail(MD_EUNSUP, "LFS server chose transfer '%.32s' (only basic)", tr);
	if (!json_is_array(arr))
		return md_fail(MD_EPROTO, "LFS batch response without objects");
	for (size_t i = 0; i < n; i++) {
		json_t *o = NULL, *it;
		size_t k;
		json_array_foreach(arr, k, it) {
			const char *oid = json_string_value(json_object_get(it, "oid"));
			if (oid && !strcmp(oid, objs[i].oid)) {
				o = it;
				break;
			}
		}
		if (!o)
			return md_fail(MD_EPROTO, "%s: LFS server did not answer for object %s",
				       objs[i].path, objs[i].oid);
		json_t *err = json_object_get(o, "error");
		if (err) {
			json_int_t code = json_integer_value(json_object_get(err, "code"));
			const char *msg = json_string_value(json_object_get(err, "message"));
			int mc = code == 404 ? MD_ENOENT : code == 422 ? MD_ECORRUPT
				 : code == 401 || code == 403 ? MD_EAUTH : MD_ENET;
			return md_fail(mc, "%s: LFS object %s (%llu bytes): %s (%lld%s%.120s)",
				       objs[i].path, objs[i].oid, (unsigned long long)objs[i].size,
				       code == 404 ? "missing on the server"
				       : code == 422 ? "size does not match the server's object"
						     : "refused by the server",
				       (long long)code, msg ? ": " : "", msg ? msg : "");
		}
		json_t *sz = json_object_get(o, "size");
		if (json_is_integer(sz) && (uint64_t)json_integer_value(sz) != objs[i].size)
			return md_fail(MD_ECORRUPT, "%s: pointer size %llu, LFS server has %lld",
				       objs[i].path, (unsigned long long)objs[i].size,
				       (long long)json_integer_value(sz));
		json_t *dl = json_object_get(json_object_get(o, "actions"), "download");
		const char *href = json_string_value(json_object_get(dl, "href"));
		if (!href)
			return md_fail(MD_EPROTO, "%s: LFS object %s has no download action",
				       objs[i].path, objs[i].oid);
		if (strncmp(href, "https://", 8) && strncmp(href, "http://", 7))
			return md_fail(MD_EREFUSED, "%s: LFS download href is not http(s)", objs[i].path);
		if (!(objs[i].href = strdup(href)))
			return MD_ENOMEM;
		const char *key;
		json_t *val;
		int h = 0;
		json_object_foreach(json_object_get(dl, "header"), key, val) {
			const char *v = json_string_value(val);
			if (!v || h == LFS_MAX_HEADERS || strpbrk(key, "\r\n:") || strpbrk(v, "\r\n"))
				return md_fail(MD_EPROTO, "%s: bad LFS action header", objs[i].path);
			if (asprintf(&objs[i].headers[h], "%s: %s", key, v) < 0) {
				objs[i].headers[h] = NULL;
				return MD_ENOMEM;
			}
			h++;
		}
		json_t *ein = json_object_get(dl, "expires_in");
		if (json_is_integer(ein))
			objs[i].expires = time(NULL) + (time_t)json_integer_value(ein);
		else
			objs[i].expires = lfs_parse_time(json_string_value(json_object_get(dl, "expires_at")));
	}
	return 0;
}

static int batch_one(const char *endpoint, const char *user, const char *pass,
		     struct lfs_object *objs, size_t n, const char *refname)
{
	json_t *req = json_pack("{s:s,s:[s],s:[]}", "operation", "download", "transfers", "basic",
				"objects");
	if (!req)
		return MD_ENOMEM;
	json_t *arr = json_object_get(req, "objects");
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:I}", "oid", objs[i].oid, "size",
						     (json_int_t)objs[i].size));
	if (refname)
		json_object_set_new(req, "ref", json_pack("{s:s}", "name", refname));
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	char *url = NULL;
	if (!body || asprintf(&url, "%s/objects/batch", endpoint) < 0) {
		free(body);
		return MD_ENOMEM;
	}
	CURL *e = curl_easy_init();
	if (e)
		xfer_apply_tls(e);
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/vnd.git-lfs+json");
	h = curl_slist_append(h, "Content-Type: application/vnd.git-lfs+json");
	struct body b = { 0 };
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;
	if (!e || !h) {
		rc = MD_ENOMEM;
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* redirects are followed as git-lfs does (a 307/308 repeats the
	 * POST); libcurl sends the credentials to the same origin only */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "git-lfs/3 (modeld)");
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	if (user && pass) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
	}
	CURLcode cc = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		rc = b.over ? md_fail(MD_ETOOBIG, "%s: LFS batch response over %d bytes", endpoint,
				      LFS_MAX_RESPONSE)
			    : md_fail(MD_ENET, "%s: LFS batch request failed: %s", endpoint,
				      *errbuf ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	if (status == 401 || status == 403) {
		rc = md_fail(MD_EAUTH, "%s: LFS server refused the credentials (HTTP %ld)", endpoint, status);
		goto out;
	}
	if (status != 200) {
		json_t *ej = b.p ? json_loads(b.p, 0, NULL) : NULL;
		const char *m = json_string_value(json_object_get(ej, "message"));
		rc = md_fail(status == 404 ? MD_ENOENT : MD_ENET, "%s: LFS batch: HTTP %ld%s%.160s",
			     endpoint, status, m ? ": " : "", m ? m : "");
		json_decref(ej);
		goto out;
	}
	json_error_t je;
	json_t *resp = b.p ? json_loadb(b.p, b.n, 0, &je) : NULL;
	if (!resp) {
		rc = md_fail(MD_EPROTO, "%s: LFS batch response is not JSON", endpoint);
		goto out;
	}
	rc = fill(objs, n, resp);
	json_decref(resp);
out:
	curl_slist_free_all(h);
	if (e)
		curl_easy_cleanup(e);
	free(url);
	free(body);
	free(b.p);
	return rc;
}

int lfs_batch(const char *endpoint, const char *user, const char *pass,
	      struct lfs_object *objs, size_t n, const char *refname)
{
	int grc = xfer_global_init();
	if (grc)
		return grc;
	for (size_t i = 0; i < n; i += LFS_BATCH_OBJECTS) {
		size_t k = n - i < LFS_BATCH_OBJECTS ? n - i : LFS_BATCH_OBJECTS;
		int rc = batch_one(endpoint, user, pass, objs + i, k, refname);
		if (rc) {
			lfs_objects_clear(objs, n);
			return rc;
		}
	}
	return 0;
}
