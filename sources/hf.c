/* sources/hf.c — see hf.h and docs/pull.md. */
#include "sources/hf.h"
#include "sources/glob.h"
#include "sources/xfer.h"
#include "common/err.h"
#include "common/util.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_HOPS 10
#define MAX_LINK 8192           /* cap on a Link header we keep */
#define MAX_HDR 128             /* cap on other headers we keep */
#define MAX_URL 8192
#define MAX_SIZE (4ull << 40)   /* 4 TiB: larger listed files are refused */

struct hf_client {
	char *hub;
	char *token; /* NULL when anonymous */
	char *basic; /* "Authorization: Basic ..." from the hub URL's user info, or NULL */
	const char *auth_hdrs[2];
	struct curl_slist *h_auth, *h_plain;
	struct hf_opts o;
	char *ua;
	CURL *e;
};

struct resp {
	long status;
	char *body;
	size_t len;
	size_t cap; /* most body bytes taken (HF_MAX_JSON, or a range's length) */
	int over;
	char *url; /* URL of the final hop (owned) */
	char errcode[MAX_HDR];
	char retry_after[MAX_HDR];
	char link[MAX_LINK];
	int link_over;
};

static long dflt(long v, long d) { return v > 0 ? v : d; }

char *hf_urlencode(const char *s, int keep_slash)
{
	static const char hx[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *o = malloc(n * 3 + 1), *p = o;
	if (!o)
		return NULL;
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		unsigned char ch = *q;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/')) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hx[ch >> 4];
			*p++ = hx[ch & 15];
		}
	}
	*p = 0;
	return o;
}

/* *out = "Authorization: Basic base64(user:pass)" from URL user info
 * "user[:pass]" (percent-encoded), malloc'd. 0, MD_EINVAL, MD_ENOMEM. */
static int basic_header(const char *ui, char **out)
{
	*out = NULL;
	const char *colon = strchr(ui, ':');
	size_t un = colon ? (size_t)(colon - ui) : strlen(ui);
	char *user = util_pct_decode(ui, un);
	char *pass = colon ? util_pct_decode(colon + 1, strlen(colon + 1)) : NULL;
	char *up = NULL;
	int rc = 0;
	if (!user || (colon && !pass))
		rc = md_fail(MD_EINVAL, "hub: bad %%-escape in the URL's user info");
	else if (strpbrk(user, "\r\n:") || (pass && strpbrk(pass, "\r\n")))
		rc = md_fail(MD_EINVAL, "hub: user info contains a line break or a ':' in the user");
	else if (asprintf(&up, "%s:%s", user, pass ? pass : "") < 0) {
		up = NULL;
		rc = MD_ENOMEM;
	}
	if (!rc && !(*out = xfer_basic_auth(up)))
		rc = MD_ENOMEM;
	if (user)
		explicit_bzero(user, strlen(user));
	if (pass)
		explicit_bzero(pass, strlen(pass));
	if (up)
		explicit_bzero(up, strlen(up));
	free(user);
	free(pass);
	free(up);
	return rc;
}

int hf_open(const char *hub, const struct hf_opts *opts, struct hf_client **out)
{
	int grc = xfer_global_init();
	if (grc)
		return grc;
	*out = NULL;
	const char *why = util_hub_url_problem(hub);
	if (why)
		return md_fail(MD_EINVAL, "hub '%.200s': %s", hub ? hub : "(null)", why);
	struct hf_client *c = calloc(1, sizeof *c);
	if (!c)
		return MD_ENOMEM;
	if (opts)
		c->o = *opts;
	c->o.token = NULL;
	char *ui = NULL;
	size_t hl = strlen(hub) + 1;
	c->hub = malloc(hl);
	if (!c->hub)
		goto nomem;
	int sr = util_url_strip_userinfo(hub, c->hub, hl, &ui);
	if (sr < 0) {
		free(ui);
		hf_close(c);
		return sr == MD_ENOMEM ? MD_ENOMEM : md_fail(MD_EINVAL, "hub must be an http(s) URL");
	}
	if (ui && !(opts && opts->token && *opts->token)) {
		int br = basic_header(ui, &c->basic);
		if (br) {
			explicit_bzero(ui, strlen(ui));
			free(ui);
			hf_close(c);
			return br;
		}
		c->auth_hdrs[0] = c->basic;
	}
	if (ui) {
		explicit_bzero(ui, strlen(ui));
		free(ui);
	}
	c->ua = strdup(opts && opts->user_agent ? opts->user_agent : "modeld/0.1");
	c->o.user_agent = NULL;
	if (!c->hub || !c->ua)
		goto nomem;
	size_t l = strlen(c->hub);
	while (l > 8 && c->hub[l - 1] == '/')
		c->hub[--l] = 0;
	c->h_plain = curl_slist_append(NULL, "Accept: application/json");
	if (!c->h_plain)
		goto nomem;
	if (c->basic) {
		c->h_auth = curl_slist_append(NULL, "Accept: application/json");
		if (c->h_auth)
			c->h_auth = curl_slist_append(c->h_auth, c->basic);
		if (!c->h_auth)
			goto nomem;
	} else if (opts && opts->token && *opts->token) {
		if (strpbrk(opts->token, "\r\n")) {
			hf_close(c);
			return md_fail(MD_EINVAL, "token contains a line break");
		}
		c->token = strdup(opts->token);
		char *h = NULL;
		if (!c->token || asprintf(&h, "Authorization: Bearer %s", c->token) < 0)
			goto nomem;
		c->h_auth = curl_slist_append(NULL, "Accept: application/json");
		if (c->h_auth)
			c->h_auth = curl_slist_append(c->h_auth, h);
		explicit_bzero(h, strlen(h));
		free(h);
		if (!c->h_auth)
			goto nomem;
	}
	c->e = curl_easy_init();
	if (!c->e)
		goto nomem;
	*out = c;
	return 0;
nomem:
	hf_close(c);
	return MD_ENOMEM;
}

void hf_close(struct hf_client *c)
{
	if (!c)
		return;
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	if (c->basic) {
		explicit_bzero(c->basic, strlen(c->basic));
		free(c->basic);
	}
	curl_slist_free_all(c->h_auth); /* libcurl copies; our copy is wiped above */
	curl_slist_free_all(c->h_plain);
	if (c->e)
		curl_easy_cleanup(c->e);
	free(c->hub);
	free(c->ua);
	free(c);
}

const char *hf_hub(const struct hf_client *c) { return c->hub; }

const char *const *hf_auth_headers(const struct hf_client *c)
{
	return c->basic ? c->auth_hdrs : NULL;
}

/* ---------- HTTP GET with our own redirects, caps and retries ---------- */

static size_t on_body(char *b, size_t sz, size_t nm, void *arg)
{
	struct resp *r = arg;
	size_t n = sz * nm;
	if (r->len + n > r->cap) {
		r->over = 1;
		return 0;
	}
	char *nb = realloc(r->body, r->len + n + 1);
	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, b, n);
	r->len += n;
	r->body[r->len] = 0;
	return n;
}

static void keep(char *dst, size_t cap, const char *v, size_t vl, int *over)
{
	if (vl >= cap) {
		vl = cap - 1;
		if (over)
			*over = 1;
	}
	memcpy(dst, v, vl);
	dst[vl] = 0;
}

static size_t on_header(char *b, size_t sz, size_t nm, void *arg)
{
	struct resp *r = arg;
	size_t n = sz * nm;
	if (n >= 5 && !memcmp(b, "HTTP/", 5)) {
		r->errcode[0] = r->retry_after[0] = r->link[0] = 0;
		r->link_over = 0;
		return n;
	}
	const char *colon = memchr(b, ':', n);
	if (!colon)
		return n;
	size_t kl = (size_t)(colon - b);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	while (vl && (*v == ' ' || *v == '\t'))
		v++, vl--;
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (kl == 12 && !strncasecmp(b, "x-error-code", kl))
		keep(r->errcode, sizeof r->errcode, v, vl, NULL);
	else if (kl == 11 && !strncasecmp(b, "retry-after", kl))
		keep(r->retry_after, sizeof r->retry_after, v, vl, NULL);
	else if (kl == 4 && !strncasecmp(b, "link", kl))
		keep(r->link, sizeof r->link, v, vl, &r->link_over);
	return n;
}

static void resp_reset(struct resp *r)
{
	free(r->body);
	free(r->url);
	memset(r, 0, sizeof *r);
}

static int canceled(const struct hf_client *c)
{
	return c->o.cancel && atomic_load(c->o.cancel);
}

/* curl's progress callback: a nonzero return aborts the request */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return canceled(arg);
}

/* Sleep ms, in slices of 100 ms so that a cancel ends it. */
static void sleep_ms(const struct hf_client *c, long ms)
{
	while (ms > 0 && !canceled(c)) {
		long s = ms < 100 ? ms : 100;
		struct timespec ts = { 0, s * 1000000L };
		while (nanosleep(&ts, &ts) < 0)
			;
		ms -= s;
	}
}

/*
 * GET url; follows redirects; retries transient failures. On return 0 the
 * caller looks at out->status (any non-transient status, 2xx or 4xx).
 * label names the repository in details. At most cap body bytes are taken
 * (HF_MAX_JSON for API answers; a range's length, so that a server ignoring
 * Range stops being read there: MD_EUNSUP).
 */
static int http_get(struct hf_client *c, const char *url, const char *label, const char *range,
		    size_t cap, struct resp *out)
{
	int attempts = c->o.max_attempts > 0 ? c->o.max_attempts : 5;
	long back = dflt(c->o.backoff_ms, 500);
	char cause[200] = "";
	memset(out, 0, sizeof *out);
	for (int a = 1; a <= attempts; a++) {
		char *cur = strdup(url);
		if (!cur)
			return MD_ENOMEM;
		long ra = -1;
		int hops = 0;
		CURLcode cc;
		char errbuf[CURL_ERROR_SIZE];
		for (;;) {
			resp_reset(out);
			out->cap = cap;
			CURL *e = c->e;
			curl_easy_reset(e);
			xfer_apply_tls(e);
			errbuf[0] = 0;
			curl_easy_setopt(e, CURLOPT_URL, cur);
			curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
			curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
			curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(e, CURLOPT_USERAGENT, c->ua);
			curl_easy_setopt(e, CURLOPT_TIMEOUT, dflt(c->o.timeout_s, 60));
			curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
			curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
			if (range)
				curl_easy_setopt(e, CURLOPT_RANGE, range);
			curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
					 c->o.http1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS);
			int auth = c->h_auth && xfer_same_origin(cur, c->hub);
			curl_easy_setopt(e, CURLOPT_HTTPHEADER, auth ? c->h_auth : c->h_plain);
			curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
			curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
			curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
			curl_easy_setopt(e, CURLOPT_HEADERDATA, out);
			curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
			curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
			curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
			curl_easy_setopt(e, CURLOPT_XFERINFODATA, c);
			cc = curl_easy_perform(e);
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
			if (canceled(c)) {
				free(cur);
				resp_reset(out);
				return md_fail(MD_ECANCELED, "%s: canceled", label);
			}
			if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
			    cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_CERTPROBLEM) {
				/* not transient: retrying cannot help */
				free(cur);
				resp_reset(out);
				return md_fail(MD_EREFUSED, "%s: TLS certificate not trusted: %s (for a "
					       "private CA, set ca_file in modeld's configuration)",
					       label, errbuf[0] ? errbuf : curl_easy_strerror(cc));
			}
			out->url = cur;
			cur = NULL;
			if (out->over) {
				long st = out->status;
				resp_reset(out);
				if (cap < HF_MAX_JSON)   /* a ranged request answered whole */
					return md_fail(MD_EUNSUP, "%s: HTTP %ld with more than the "
						       "%zu bytes asked for", label, st, cap);
				return md_fail(MD_ETOOBIG, "%s: hub response over %u MiB", label,
					       HF_MAX_JSON >> 20);
			}
			if (cc != CURLE_OK)
				break;
			if (out->status >= 300 && out->status < 400 && out->status != 304) {
				char *loc = NULL;
				curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc);
				if (!loc || strlen(loc) > MAX_URL ||
				    (strncasecmp(loc, "http://", 7) && strncasecmp(loc, "https://", 8))) {
					resp_reset(out);
					return md_fail(MD_EREFUSED, "%s: bad redirect from the hub", label);
				}
				if (++hops > MAX_HOPS) {
					resp_reset(out);
					return md_fail(MD_EREFUSED, "%s: too many redirects", label);
				}
				cur = strdup(loc);
				if (!cur) {
					resp_reset(out);
					return MD_ENOMEM;
				}
				continue;
			}
			break;
		}
		if (cc == CURLE_OK) {
			long st = out->status;
			if (st != 408 && st != 429 && st < 500)
				return 0;
			snprintf(cause, sizeof cause, "HTTP %ld", st);
			if (st == 429 || st == 503)
				ra = xfer_parse_retry_after(out->retry_after, dflt(c->o.retry_after_max_s, 60));
		} else {
			snprintf(cause, sizeof cause, "%s", xfer_transient_cause(cc, errbuf));
			if (!xfer_transient_curl(cc)) {   /* the same again would fail the same */
				/* name the URL (the last hop's: a redirect may be at
				 * fault), without user info, query or fragment */
				char shown[512] = "";
				const char *u = out->url ? out->url : url;
				if (util_url_strip_userinfo(u, shown, sizeof shown, NULL) >= 0)
					shown[strcspn(shown, "?#")] = 0;
				int rc = md_fail(MD_ENET, "%s: %s: %s", label, shown,
						 errbuf[0] ? errbuf : cause);
				resp_reset(out);
				return rc;
			}
		}
		if (a == attempts)
			break;
		long d = back;
		for (int i = 1; i < a && d < 30000; i++)
			d *= 2;
		if (ra >= 0 && ra * 1000 > d)
			d = ra * 1000;
		sleep_ms(c, d);
		if (canceled(c)) {
			resp_reset(out);
			return md_fail(MD_ECANCELED, "%s: canceled", label);
		}
	}
	resp_reset(out);
	return md_fail(MD_ENET, "%s: %s after %d attempts", label, cause, attempts);
}

/* Map a non-2xx answer to an MD_E* code and a detail. */
static int map_error(struct hf_client *c, const struct resp *r, const char *id, const char *rev,
		     const char *path)
{
	const char *ec = r->errcode;
	long st = r->status;
	if (!strcmp(ec, "GatedRepo")) {
		char m[600];
		xfer_gated_text(m, sizeof m, id, c->token || c->basic);
		return md_fail(MD_EAUTH, "%s", m);
	}
	if (!strcmp(ec, "RevisionNotFound"))
		return md_fail(MD_ENOENT, "%s@%s: revision not found", id, rev ? rev : "main");
	if (!strcmp(ec, "EntryNotFound"))
		return md_fail(MD_ENOENT, "%s: %s: entry not found", id, path ? path : "(file)");
	if (!strcmp(ec, "DisabledRepo"))
		return md_fail(MD_EPERM, "%s: repository disabled", id);
	if (!strcmp(ec, "RepoNotFound") || st == 404 || (st == 401 && !c->token))
		return md_fail(MD_ENOENT, "%s: repository not found%s", id,
			       st == 401 && !c->token ? " (or private: set HF_TOKEN)" : "");
	if (st == 401)
		return md_fail(MD_EAUTH, "%s: token refused (HTTP 401)", id);
	if (st == 403)
		return md_fail(MD_EAUTH, "%s: access denied (HTTP 403)", id);
	return md_fail(MD_ENET, "%s: HTTP %ld", id, st);
}

static int parse_json(const struct resp *r, const char *label, json_t **out)
{
	json_error_t je;
	*out = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return md_fail(MD_EPROTO, "%s: malformed JSON from the hub (line %d: %.80s)", label,
			       je.line, je.text);
	return 0;
}

/* ---------- resolve ---------- */

static char *dup_str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	return strlen(s) <= 256 ? strdup(s) : NULL;
}

void hf_model_free(struct hf_model *m)
{
	if (!m)
		return;
	free(m->id);
	free(m->rev);
	free(m->gated);
	free(m->pipeline_tag);
	free(m->library_name);
	free(m->license);
	json_decref(m->info);
	free(m);
}

int hf_resolve(struct hf_client *c, const char *id, const char *rev, struct hf_model **out)
{
	*out = NULL;
	if (!id || util_check_model_name(id) < 0)
		return md_fail(MD_EINVAL, "%s: not a repository id (ORG/NAME)", id ? id : "(null)");
	if (!rev)
		rev = "main";
	if (util_check_ref(rev) < 0)
		return md_fail(MD_EINVAL, "%s@%s: bad revision", id, rev);
	char *erev = hf_urlencode(rev, 0), *url = NULL;
	if (!erev || asprintf(&url, "%s/api/models/%s/revision/%s", c->hub, id, erev) < 0) {
		free(erev);
		return MD_ENOMEM;
	}
	free(erev);
	struct resp r;
	int rc = http_get(c, url, id, NULL, HF_MAX_JSON, &r);
	free(url);
	if (rc < 0)
		return rc;
	if (r.status < 200 || r.status >= 300) {
		rc = map_error(c, &r, id, rev, NULL);
		resp_reset(&r);
		return rc;
	}
	json_t *j;
	rc = parse_json(&r, id, &j);
	resp_reset(&r);
	if (rc < 0)
		return rc;
	struct hf_model *m = calloc(1, sizeof *m);
	if (!m) {
		json_decref(j);
		return MD_ENOMEM;
	}
	m->info = j;
	if (!json_is_object(j)) {
		hf_model_free(m);
		return md_fail(MD_EPROTO, "%s: hub answer is not an object", id);
	}
	const char *sha = json_string_value(json_object_get(j, "sha"));
	if (!sha || !util_is_hex(sha, 40)) {
		hf_model_free(m);
		return md_fail(MD_EPROTO, "%s@%s: hub gave no valid commit sha", id, rev);
	}
	memcpy(m->commit, sha, 41);
	m->id = strdup(id);
	m->rev = strdup(rev);
	if (!m->id || !m->rev) {
		hf_model_free(m);
		return MD_ENOMEM;
	}
	json_t *g = json_object_get(j, "gated");
	if (json_is_string(g))
		m->gated = dup_str(j, "gated");
	else if (json_is_true(g))
		m->gated = strdup("true");
	m->pipeline_tag = dup_str(j, "pipeline_tag");
	m->library_name = dup_str(j, "library_name");
	json_t *cd = json_object_get(j, "cardData");
	json_t *lic = json_object_get(cd, "license");
	if (json_is_string(lic))
		m->license = dup_str(cd, "license");
	else if (json_is_array(lic) && json_is_string(json_array_get(lic, 0)) &&
		 strlen(json_string_value(json_array_get(lic, 0))) <= 256)
		m->license = strdup(json_string_value(json_array_get(lic, 0)));
	if (!m->license) {
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(j, "tags"), i, t) {
			const char *s = json_string_value(t);
			if (s && !strncmp(s, "license:", 8) && strlen(s) <= 256) {
				m->license = strdup(s + 8);
				break;
			}
		}
	}
	*out = m;
	return 0;
}

/* ---------- list ---------- */

void hf_tree_free(struct hf_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	free(t);
}

static int get_size(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v))
		return -1;
	json_int_t x = json_integer_value(v);
	if (x < 0 || (uint64_t)x > MAX_SIZE)
		return -1;
	*out = (uint64_t)x;
	return 0;
}

static int add_entry(struct hf_tree *t, size_t *cap, json_t *e, const char *id)
{
	if (!json_is_object(e))
		return md_fail(MD_EPROTO, "%s: tree entry is not an object", id);
	const char *type = json_string_value(json_object_get(e, "type"));
	const char *path = json_string_value(json_object_get(e, "path"));
	if (!type || !path)
		return md_fail(MD_EPROTO, "%s: tree entry without type or path", id);
	if (util_check_relpath(path) < 0)
		return md_fail(MD_EREFUSED, "%s: hub listed a bad path: %s", id, md_errmsg(MD_EREFUSED));
	if (strcmp(type, "file"))
		return 0; /* directories (and anything else) carry no bytes */
	if (t->n >= HF_MAX_ENTRIES)
		return md_fail(MD_ETOOBIG, "%s: more than %d files", id, HF_MAX_ENTRIES);
	struct hf_entry en;
	memset(&en, 0, sizeof en);
	uint64_t sz = 0;
	json_t *jsz = json_object_get(e, "size");
	if (jsz && get_size(jsz, &sz) < 0)
		return md_fail(MD_EREFUSED, "%s: %s: bad size", id, path);
	json_t *lfs = json_object_get(e, "lfs");
	if (lfs && !json_is_null(lfs)) {
		const char *oid = json_string_value(json_object_get(lfs, "oid"));
		uint64_t ls;
		if (!oid || !util_is_hex(oid, 64))
			return md_fail(MD_EREFUSED, "%s: %s: bad LFS oid", id, path);
		if (get_size(json_object_get(lfs, "size"), &ls) < 0)
			return md_fail(MD_EREFUSED, "%s: %s: bad LFS size", id, path);
		if (jsz && ls != sz)
			return md_fail(MD_EREFUSED, "%s: %s: size and LFS size differ", id, path);
		en.lfs = 1;
		en.size = ls;
		memcpy(en.sha256, oid, 65);
	} else {
		const char *oid = json_string_value(json_object_get(e, "oid"));
		if (!jsz)
			return md_fail(MD_EREFUSED, "%s: %s: no size", id, path);
		if (oid && !util_is_hex(oid, 40))
			return md_fail(MD_EREFUSED, "%s: %s: bad git oid", id, path);
		if (oid)
			memcpy(en.blob_sha1, oid, 41);
		en.size = sz;
	}
	if (t->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct hf_entry *nv = realloc(t->v, nc * sizeof *nv);
		if (!nv)
			return MD_ENOMEM;
		t->v = nv;
		*cap = nc;
	}
	en.path = strdup(path);
	if (!en.path)
		return MD_ENOMEM;
	t->v[t->n++] = en;
	t->total += en.size;
	return 0;
}

/* Find rel="next" in a Link header; *out malloc'd absolute URL or NULL. */
static int next_link(const char *link, const char *base, char **out)
{
	*out = NULL;
	const char *p = link;
	while ((p = strchr(p, '<'))) {
		const char *e = strchr(p, '>');
		if (!e)
			return MD_EPROTO;
		const char *params = e + 1;
		const char *stop = strchr(params, ',');
		size_t pl = stop ? (size_t)(stop - params) : strlen(params);
		char pbuf[256];
		snprintf(pbuf, sizeof pbuf, "%.*s", (int)(pl < 255 ? pl : 255), params);
		for (char *q = pbuf; *q; q++)
			if (*q == ' ' || *q == '"')
				memmove(q, q + 1, strlen(q)), q--;
		if (strcasestr(pbuf, ";rel=next") && !strcasestr(pbuf, ";rel=nexts")) {
			char *u = strndup(p + 1, (size_t)(e - p - 1));
			if (!u)
				return MD_ENOMEM;
			CURLU *h = curl_url();
			char *abs = NULL;
			int ok = h && curl_url_set(h, CURLUPART_URL, base, 0) == CURLUE_OK &&
				 curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK &&
				 curl_url_get(h, CURLUPART_URL, &abs, 0) == CURLUE_OK;
			free(u);
			curl_url_cleanup(h);
			if (!ok) {
				curl_free(abs);
				return MD_EPROTO;
			}
			if (strncasecmp(abs, "http://", 7) && strncasecmp(abs, "https://", 8)) {
				curl_free(abs);
				return MD_EPROTO;
			}
			*out = strdup(abs);
			curl_free(abs);
			return *out ? 0 : MD_ENOMEM;
		}
		p = e + 1;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct hf_entry *)a)->path, ((const struct hf_entry *)b)->path);
}

int hf_list(struct hf_client *c, const char *id, const char *commit, struct hf_tree **out)
{
	*out = NULL;
	if (!id || util_check_model_name(id) < 0)
		return md_fail(MD_EINVAL, "%s: not a repository id (ORG/NAME)", id ? id : "(null)");
	if (!commit || !util_is_hex(commit, 40))
		return md_fail(MD_EINVAL, "%s: list needs a 40-hex commit", id);
	struct hf_tree *t = calloc(1, sizeof *t);
	if (!t)
		return MD_ENOMEM;
	size_t cap = 0;
	char *url = NULL;
	int rc = 0;
	if (asprintf(&url, "%s/api/models/%s/tree/%s?recursive=true", c->hub, id, commit) < 0) {
		url = NULL;
		rc = MD_ENOMEM;
		goto fail;
	}
	while (url) {
		if (t->pages >= HF_MAX_PAGES) {
			rc = md_fail(MD_ETOOBIG, "%s: listing has more than %d pages", id, HF_MAX_PAGES);
			goto fail;
		}
		struct resp r;
		rc = http_get(c, url, id, NULL, HF_MAX_JSON, &r);
		free(url);
		url = NULL;
		if (rc < 0)
			goto fail;
		t->pages++;
		if (r.status < 200 || r.status >= 300) {
			rc = map_error(c, &r, id, commit, NULL);
			resp_reset(&r);
			goto fail;
		}
		if (r.link_over) {
			resp_reset(&r);
			rc = md_fail(MD_ETOOBIG, "%s: Link header over %d bytes", id, MAX_LINK);
			goto fail;
		}
		json_t *j;
		rc = parse_json(&r, id, &j);
		if (rc == 0 && r.link[0] && (rc = next_link(r.link, r.url, &url)) == MD_EPROTO)
			md_fail(rc, "%s: bad Link header from the hub", id);
		resp_reset(&r);
		if (rc < 0) {
			json_decref(j); /* NULL-safe */
			goto fail;
		}
		if (!json_is_array(j)) {
			json_decref(j);
			rc = md_fail(MD_EPROTO, "%s: tree page is not a list", id);
			goto fail;
		}
		size_t i;
		json_t *e;
		json_array_foreach(j, i, e) {
			if ((rc = add_entry(t, &cap, e, id)) < 0)
				break;
		}
		json_decref(j);
		if (rc < 0)
			goto fail;
	}
	if (t->n)
		qsort(t->v, t->n, sizeof *t->v, cmp_entry);
	for (size_t i = 1; i < t->n; i++)
		if (!strcmp(t->v[i - 1].path, t->v[i].path)) {
			rc = md_fail(MD_EREFUSED, "%s: %s listed twice", id, t->v[i].path);
			goto fail;
		}
	/* a path that is also a directory of another ("a" and "a/b") */
	for (size_t i = 0; i < t->n; i++) {
		const char *p = t->v[i].path;
		char dir[1100]; /* paths are <= 1024 bytes (util_check_relpath) */
		for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
			snprintf(dir, sizeof dir, "%.*s", (int)(s - p), p);
			struct hf_entry key = { .path = dir };
			if (bsearch(&key, t->v, t->n, sizeof *t->v, cmp_entry)) {
				rc = md_fail(MD_EREFUSED, "%s: %s is both a file and a directory", id, dir);
				goto fail;
			}
		}
	}
	*out = t;
	return 0;
fail:
	free(url);
	hf_tree_free(t);
	return rc;
}

int hf_file_url(const struct hf_client *c, const char *id, const char *commit, const char *path,
		char **out)
{
	*out = NULL;
	if (util_check_model_name(id) < 0 || util_check_ref(commit) < 0 || util_check_relpath(path) < 0)
		return md_fail(MD_EINVAL, "%s: bad file URL parts", id);
	char *ep = hf_urlencode(path, 1), *ec = hf_urlencode(commit, 0);
	int rc = 0;
	if (!ep || !ec || asprintf(out, "%s/%s/resolve/%s/%s", c->hub, id, ec, ep) < 0) {
		*out = NULL;
		rc = MD_ENOMEM;
	}
	free(ep);
	free(ec);
	return rc;
}

int hf_items(const struct hf_client *c, const char *id, const char *commit,
	     const struct hf_tree *t, const char *const *include, size_t ni,
	     const char *const *exclude, size_t ne, struct xfer_item **items, size_t *n)
{
	*items = NULL;
	*n = 0;
	for (size_t i = 0; i < ni; i++)
		if (glob_check(include[i]) < 0)
			return md_fail(MD_EINVAL, "--include %s: bad pattern", include[i]);
	for (size_t i = 0; i < ne; i++)
		if (glob_check(exclude[i]) < 0)
			return md_fail(MD_EINVAL, "--exclude %s: bad pattern", exclude[i]);
	struct xfer_item *v = calloc(t->n ? t->n : 1, sizeof *v);
	if (!v)
		return MD_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct hf_entry *e = &t->v[i];
		if (!glob_filter(e->path, include, ni, exclude, ne))
			continue;
		char *u;
		int rc = hf_file_url(c, id, commit, e->path, &u);
		if (rc < 0) {
			hf_items_free(v, k);
			return rc;
		}
		v[k].url = u;
		v[k].dest = e->path;
		v[k].size = e->size;
		v[k].sha256 = e->lfs ? e->sha256 : NULL;
		v[k].blob_sha1 = !e->lfs && e->blob_sha1[0] ? e->blob_sha1 : NULL;
		k++;
	}
	*items = v;
	*n = k;
	return 0;
}

void hf_items_free(struct xfer_item *items, size_t n)
{
	if (!items)
		return;
	for (size_t i = 0; i < n; i++)
		free((char *)items[i].url);
	free(items);
}

int hf_file_head(struct hf_client *c, const char *url, const char *label, uint64_t n,
		 uint8_t **out, size_t *len)
{
	char range[48];
	struct resp r;
	*out = NULL;
	*len = 0;
	if (n == 0 || n > HF_MAX_JSON)
		return md_fail(MD_EINVAL, "%s: bad head length", label);
	snprintf(range, sizeof range, "0-%" PRIu64, n - 1);
	int rc = http_get(c, url, label, range, (size_t)n, &r);
	if (rc)
		return rc;
	if (r.status != 206 && !(r.status == 200 && r.len <= n)) {
		rc = md_fail(r.status == 200 ? MD_EUNSUP : MD_ENET, "%s: HTTP %ld to a ranged request",
			     label, r.status);
		resp_reset(&r);
		return rc;
	}
	if (r.len > n) {
		rc = md_fail(MD_EPROTO, "%s: %zu bytes for a range of %" PRIu64, label, r.len, n);
		resp_reset(&r);
		return rc;
	}
	*out = (uint8_t *)r.body;
	*len = r.len;
	r.body = NULL;
	resp_reset(&r);
	return 0;
}
