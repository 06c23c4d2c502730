/* sources/hubsearch.c — see hubsearch.h. */
#include "sources/hubsearch.h"
#include "sources/xfer.h"
#include "common/err.h"
#include "common/util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct resp {
	char *body;
	size_t len;
	int too_big;
	char next[HUBSEARCH_MAX_HEADER];
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t add = sz * n;
	if (r->len + add > HUBSEARCH_MAX_BODY) {
		r->too_big = 1;
		return 0; /* aborts the transfer */
	}
	char *nb = realloc(r->body, r->len + add + 1);
	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, add);
	r->len += add;
	return add;
}

/* Link: <URL>; rel="next", <URL2>; rel="prev" -> the next URL. */
static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t len = sz * n;
	if (len < 5 || len > HUBSEARCH_MAX_HEADER || strncasecmp(p, "link:", 5))
		return len;
	char line[HUBSEARCH_MAX_HEADER + 1];
	memcpy(line, p, len);
	line[len] = 0;
	char *s = line + 5;
	while (s && *s) {
		char *lt = strchr(s, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		if (!gt)
			break;
		char *end = strchr(gt, ','); /* this link's parameters end here */
		if (end)
			*end = 0;
		if (strstr(gt, "rel=\"next\"") || strstr(gt, "rel=next")) {
			size_t ul = (size_t)(gt - lt - 1);
			if (ul < sizeof r->next) {
				memcpy(r->next, lt + 1, ul);
				r->next[ul] = 0;
			}
			break;
		}
		s = end ? end + 1 : NULL;
	}
	return len;
}

/* "scheme://host[:port]" of url into out; 0 or -1. */
static int origin(const char *url, char *out, size_t n)
{
	const char *s = strstr(url, "://");
	if (!s)
		return -1;
	const char *e = strchr(s + 3, '/');
	size_t l = e ? (size_t)(e - url) : strlen(url);
	if (l >= n)
		return -1;
	memcpy(out, url, l);
	out[l] = 0;
	return 0;
}

static const char *str_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (!s || strlen(s) > 256)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	return s;
}

/* A repository id: NAME or ORG/NAME, neither part empty, "." or "..". */
static int repo_id_ok(const char *id)
{
	const char *slash = strchr(id, '/');
	if (slash && strchr(slash + 1, '/'))
		return 0;
	for (const char *p = id; p;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p = end ? end + 1 : NULL;
	}
	return 1;
}

/* One hub entry -> our shape, or NULL to drop it. */
static json_t *entry(json_t *e)
{
	const char *id = str_of(e, "id");
	if (!id)
		id = str_of(e, "modelId");
	if (!json_is_object(e) || !id || !repo_id_ok(id))
		return NULL;
	json_t *o = json_pack("{s:s}", "id", id);
	static const char *const keys[][2] = {
		{ "author", "author" }, { "pipeline_tag", "pipeline_tag" },
		{ "library_name", "library_name" }, { "lastModified", "last_modified" },
	};
	for (size_t i = 0; o && i < 4; i++) {
		const char *v = str_of(e, keys[i][0]);
		if (v)
			json_object_set_new(o, keys[i][1], json_string(v));
	}
	static const char *const nums[] = { "downloads", "likes" };
	for (size_t i = 0; o && i < 2; i++) {
		json_t *v = json_object_get(e, nums[i]);
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			json_object_set_new(o, nums[i], json_integer(json_integer_value(v)));
	}
	json_t *st = json_object_get(json_object_get(e, "safetensors"), "total");
	if (o && json_is_integer(st) && json_integer_value(st) >= 0)
		json_object_set_new(o, "parameters", json_integer(json_integer_value(st)));
	json_t *tags = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(e, "tags"), i, t) {
		const char *s = json_string_value(t);
		int ctl = 0;
		for (const unsigned char *q = (const unsigned char *)s; s && *q; q++)
			ctl |= *q < 0x20 || *q == 0x7f;
		if (!s || ctl || strlen(s) > 128 || json_array_size(tags) >= 64)
			continue;
		json_array_append_new(tags, json_string(s));
		if (!strncmp(s, "license:", 8) && !json_object_get(o, "license"))
			json_object_set_new(o, "license", json_string(s + 8));
	}
	if (!o || !tags) {
		json_decref(o);
		json_decref(tags);
		return NULL;
	}
	json_object_set_new(o, "tags", tags);
	return o;
}

static int add_param(CURL *c, char *url, size_t n, const char *k, const char *v)
{
	if (!v || !*v)
		return 0;
	char *e = curl_easy_escape(c, v, 0);
	if (!e)
		return MD_ENOMEM;
	size_t l = strlen(url);
	int w = snprintf(url + l, n - l, "%s%s=%s", strchr(url, '?') ? "&" : "?", k, e);
	curl_free(e);
	return w < 0 || (size_t)w >= n - l ? md_fail(MD_EINVAL, "hub search: query too long") : 0;
}

static int fetch(CURL *c, const char *url, struct resp *r)
{
	char err[CURL_ERROR_SIZE] = "", shown[HUBSEARCH_MAX_HEADER];
	/* details name the URL without user info: the password is never shown */
	if (util_url_strip_userinfo(url, shown, sizeof shown, NULL) < 0)
		snprintf(shown, sizeof shown, "hub search");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "modeld/0.1 (hub search)");
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	CURLcode cc = curl_easy_perform(c);
	if (r->too_big)
		return md_fail(MD_ETOOBIG, "%s: response over %u bytes", shown, HUBSEARCH_MAX_BODY);
	if (cc != CURLE_OK)
		return md_fail(MD_ENET, "%s: %s", shown, err[0] ? err : curl_easy_strerror(cc));
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 401 || status == 403)
		return md_fail(MD_EAUTH, "%s: HTTP %ld", shown, status);
	if (status != 200)
		return md_fail(MD_ENET, "%s: HTTP %ld", shown, status);
	return 0;
}

int hubsearch_query(const struct hubsearch_req *r, json_t **out, int *pages)
{
	int grc = xfer_global_init();
	if (grc)
		return grc;
	char url[HUBSEARCH_MAX_HEADER], org[1024];
	*out = NULL;
	*pages = 0;
	const char *why = util_hub_url_problem(r->hub);
	if (!why && (strlen(r->hub) > 1024 || origin(r->hub, org, sizeof org)))
		why = "want an http:// or https:// URL of at most 1024 bytes";
	if (why)
		return md_fail(MD_EINVAL, "hub '%.200s': %s", r->hub ? r->hub : "", why);
	size_t limit = r->limit ? r->limit : 20;
	if (limit > HUBSEARCH_MAX_LIMIT)
		limit = HUBSEARCH_MAX_LIMIT;
	CURL *c = curl_easy_init();
	if (c)
		xfer_apply_tls(c);
	json_t *res = json_array();
	json_t *seen = json_object(); /* ids already in res */
	if (!c || !res || !seen) {
		if (c)
			curl_easy_cleanup(c);
		json_decref(res);
		json_decref(seen);
		return md_fail(MD_ENOMEM, "hub search: out of memory");
	}
	size_t hl = strlen(r->hub);
	snprintf(url, sizeof url, "%.*s/api/models", (int)(hl && r->hub[hl - 1] == '/' ? hl - 1 : hl),
		 r->hub);
	char lim[32];
	snprintf(lim, sizeof lim, "%zu", limit > 100 ? (size_t)100 : limit);
	int rc = add_param(c, url, sizeof url, "search", r->search);
	if (!rc)
		rc = add_param(c, url, sizeof url, "author", r->author);
	for (size_t i = 0; !rc && i < 4 && r->filter[i]; i++)
		rc = add_param(c, url, sizeof url, "filter", r->filter[i]);
	if (!rc)
		rc = add_param(c, url, sizeof url, "sort", r->sort);
	if (!rc)
		rc = add_param(c, url, sizeof url, "limit", lim);
	while (!rc && json_array_size(res) < limit) {
		if (*pages >= HUBSEARCH_MAX_PAGES)
			break; /* enough: a hub that pages forever does not keep us */
		struct resp rp = { 0 };
		rc = fetch(c, url, &rp);
		++*pages;
		json_t *arr = NULL;
		if (!rc) {
			arr = json_loadb(rp.body ? rp.body : "", rp.len, 0, NULL);
			if (!json_is_array(arr))
				{
				char shown[HUBSEARCH_MAX_HEADER];
				if (util_url_strip_userinfo(url, shown, sizeof shown, NULL) < 0)
					snprintf(shown, sizeof shown, "hub search");
				rc = md_fail(MD_ECORRUPT, "%s: response is not a JSON array of models",
					     shown);
			}
		}
		/* a model the hub already listed (a page repeated, a next link
		 * back to an earlier page) is listed once; a page with nothing
		 * new ends the paging instead of looping to the page cap */
		size_t i, fresh = 0;
		json_t *e;
		json_array_foreach(arr, i, e) {
			if (rc || json_array_size(res) >= limit)
				break;
			json_t *o = entry(e);
			const char *id = json_string_value(json_object_get(o, "id"));
			if (!o || json_object_get(seen, id)) {
				json_decref(o);
				continue;
			}
			if (json_object_set_new(seen, id, json_true()) || json_array_append_new(res, o)) {
				rc = md_fail(MD_ENOMEM, "hub search: out of memory");
				break;
			}
			fresh++;
		}
		size_t got = json_array_size(arr);
		json_decref(arr);
		free(rp.body);
		if (rc || !rp.next[0] || !got || !fresh || !strcmp(rp.next, url))
			break;
		char no[1024];
		if (origin(rp.next, no, sizeof no) || strcasecmp(no, org)) {
			rc = md_fail(MD_EREFUSED, "hub: next page link to another origin (%.200s)",
				     rp.next);
			break;
		}
		snprintf(url, sizeof url, "%s", rp.next);
	}
	curl_easy_cleanup(c);
	json_decref(seen);
	if (rc) {
		json_decref(res);
		return rc;
	}
	*out = res;
	return 0;
}
