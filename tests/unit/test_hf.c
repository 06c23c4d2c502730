/*
 * Unit tests for sources/hf: resolve, list (pagination), error mapping,
 * token confinement and hostile listings, against tests/fixtures/hubd.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fnmatch.h>

#include "common/err.h"
#include "common/util.h"
#include "sources/hf.h"
#include "sources/xfer.h"
#include "tests/unit/hubfix.h"

static struct hubfix hub;

static int setup(void **state)
{
	(void)state;
	if (xfer_global_init() < 0 || hubfix_start(&hub) < 0) {
		fprintf(stderr, "cannot start tests/fixtures/hubd.py\n");
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hubfix_stop(&hub);
	return 0;
}

static struct hf_client *client(const char *url, const char *token)
{
	struct hf_opts o = { .token = token, .backoff_ms = 10 };
	struct hf_client *c;
	assert_int_equal(hf_open(url, &o, &c), 0);
	return c;
}

static void fault(const char *q)
{
	char b[1100];
	snprintf(b, sizeof b, "fault?%s", q);
	assert_int_equal(hubfix_ctl(&hub, b), 0);
}

static void test_resolve(void **state)
{
	(void)state;
	hubfix_ctl(&hub, "reset");
	struct hf_client *c = client(hub.url, NULL);
	struct hf_model *m;
	assert_int_equal(hf_resolve(c, "acme/tiny", NULL, &m), 0);
	assert_true(util_is_hex(m->commit, 40));
	assert_string_equal(m->rev, "main");
	assert_null(m->gated);
	assert_string_equal(m->pipeline_tag, "text-generation");
	assert_string_equal(m->library_name, "transformers");
	assert_string_equal(m->license, "apache-2.0");
	assert_true(json_array_size(json_object_get(m->info, "siblings")) >= 9);
	char c1[41];
	memcpy(c1, m->commit, 41);
	hf_model_free(m);
	/* a tag and the commit itself resolve to the same commit */
	assert_int_equal(hf_resolve(c, "acme/tiny", "v1.0", &m), 0);
	assert_string_equal(m->commit, c1);
	hf_model_free(m);
	assert_int_equal(hf_resolve(c, "acme/tiny", c1, &m), 0);
	assert_string_equal(m->commit, c1);
	hf_model_free(m);
	/* gated metadata is public */
	assert_int_equal(hf_resolve(c, "acme/gated", NULL, &m), 0);
	assert_string_equal(m->gated, "auto");
	hf_model_free(m);
	hf_close(c);
}

static void test_errors(void **state)
{
	(void)state;
	hubfix_ctl(&hub, "reset");
	struct hf_client *c = client(hub.url, NULL);
	struct hf_model *m = NULL;
	int rc = hf_resolve(c, "acme/tiny", "v9", &m);
	assert_int_equal(rc, MD_ENOENT);
	assert_string_equal(md_errmsg(rc), "acme/tiny@v9: revision not found");
	rc = hf_resolve(c, "acme/nope", NULL, &m);
	assert_int_equal(rc, MD_ENOENT);
	assert_string_equal(md_errmsg(rc), "acme/nope: repository not found (or private: set HF_TOKEN)");
	rc = hf_resolve(c, "acme/private", NULL, &m);
	assert_int_equal(rc, MD_ENOENT);
	assert_null(m);
	rc = hf_resolve(c, "../etc", NULL, &m);
	assert_int_equal(rc, MD_EINVAL);
	rc = hf_resolve(c, "acme/tiny", "../../x", &m);
	assert_int_equal(rc, MD_EINVAL);
	hf_close(c);

	/* a refused token */
	c = client(hub.url, "hf_bogus_secret");
	rc = hf_resolve(c, "acme/tiny", NULL, &m);
	assert_int_equal(rc, MD_EAUTH);
	assert_string_equal(md_errmsg(rc), "acme/tiny: token refused (HTTP 401)");
	assert_null(strstr(md_errmsg(rc), "hf_bogus_secret"));
	rc = hf_resolve(c, "acme/nope", NULL, &m);
	assert_int_equal(rc, MD_EAUTH);
	hf_close(c);

	/* a good token reads the private repo; unknown is plain not found */
	c = client(hub.url, "hf_good");
	assert_int_equal(hf_resolve(c, "acme/private", NULL, &m), 0);
	hf_model_free(m);
	rc = hf_resolve(c, "acme/nope", NULL, &m);
	assert_int_equal(rc, MD_ENOENT);
	assert_string_equal(md_errmsg(rc), "acme/nope: repository not found");
	hf_close(c);

	/* nothing listening */
	c = client("http://127.0.0.1:1", NULL);
	struct hf_opts o = { .max_attempts = 2, .backoff_ms = 1 };
	hf_close(c);
	assert_int_equal(hf_open("http://127.0.0.1:1", &o, &c), 0);
	rc = hf_resolve(c, "acme/tiny", NULL, &m);
	assert_int_equal(rc, MD_ENET);
	assert_non_null(strstr(md_errmsg(rc), "acme/tiny: "));
	assert_non_null(strstr(md_errmsg(rc), "after 2 attempts"));
	hf_close(c);
	assert_int_equal(hf_open("ftp://x", NULL, &c), MD_EINVAL);
	assert_int_equal(hf_open("http://x\r\nHost: y", NULL, &c), MD_EINVAL);
}

static void test_api_retries(void **state)
{
	(void)state;
	hubfix_ctl(&hub, "reset");
	fault("name=api&arg=500&count=2");
	struct hf_client *c = client(hub.url, NULL);
	struct hf_model *m;
	assert_int_equal(hf_resolve(c, "acme/tiny", NULL, &m), 0);
	hf_model_free(m);
	/* 429 with Retry-After: 1 is honoured (backoff alone is 10 ms) */
	fault("name=api&arg=429&count=1");
	double t0 = util_mono();
	assert_int_equal(hf_resolve(c, "acme/tiny", NULL, &m), 0);
	assert_true(util_mono() - t0 >= 0.9);
	hf_model_free(m);
	fault("name=api&arg=503&count=-1");
	int rc = hf_resolve(c, "acme/tiny", NULL, &m);
	assert_int_equal(rc, MD_ENET);
	/* a reset on every try is named as one, as downloads name it */
	hubfix_ctl(&hub, "reset");
	fault("name=api&arg=reset&count=-1");
	rc = hf_resolve(c, "acme/tiny", NULL, &m);
	assert_int_equal(rc, MD_ENET);
	assert_non_null(strstr(md_errmsg(rc), "connection reset by peer after"));
	hubfix_ctl(&hub, "reset");
	hf_close(c);
}

static struct hf_tree *list_tiny(struct hf_client *c, int *rc_out)
{
	struct hf_model *m;
	assert_int_equal(hf_resolve(c, "acme/tiny", NULL, &m), 0);
	struct hf_tree *t = NULL;
	int rc = hf_list(c, "acme/tiny", m->commit, &t);
	hf_model_free(m);
	if (rc_out)
		*rc_out = rc;
	else if (rc)
		fail_msg("hf_list: %s", md_errmsg(rc));
	return t;
}

static const struct hf_entry *find(const struct hf_tree *t, const char *p)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].path, p))
			return &t->v[i];
	return NULL;
}

static void test_list(void **state)
{
	(void)state;
	hubfix_ctl(&hub, "reset");
	struct hf_client *c = client(hub.url, NULL);
	struct hf_tree *t = list_tiny(c, NULL);
	assert_int_equal(t->n, 11); /* 10 at the top + onnx/notes (v1).txt */
	assert_int_equal(t->pages, 1);
	const struct hf_entry *e = find(t, "model-00001-of-00002.safetensors");
	assert_non_null(e);
	assert_true(e->lfs);
	assert_true(util_is_hex(e->sha256, 64));
	assert_string_equal(e->blob_sha1, "");
	e = find(t, "config.json");
	assert_false(e->lfs);
	assert_true(util_is_hex(e->blob_sha1, 40));
	assert_non_null(find(t, "pytorch_model.bin"));
	assert_non_null(find(t, "onnx/notes (v1).txt"));
	assert_null(find(t, "onnx"));
	uint64_t sum = 0;
	for (size_t i = 0; i < t->n; i++)
		sum += t->v[i].size;
	assert_int_equal(sum, t->total);
	char *u;
	assert_int_equal(hf_file_url(c, "acme/tiny", "main", "onnx/notes (v1).txt", &u), 0);
	char want[200];
	snprintf(want, sizeof want, "%s/acme/tiny/resolve/main/onnx/notes%%20%%28v1%%29.txt", hub.url);
	assert_string_equal(u, want);
	free(u);
	assert_int_equal(hf_file_url(c, "acme/tiny", "refs/pr/1", "a.json", &u), 0);
	assert_non_null(strstr(u, "/resolve/refs%2Fpr%2F1/a.json"));
	free(u);
	assert_int_equal(hf_file_url(c, "acme/tiny", "main", "../x", &u), MD_EINVAL);
	hf_tree_free(t);
	hf_close(c);
}

static void test_pagination(void **state)
{
	(void)state;
	struct hf_client *c = client(hub.url, NULL);
	struct hf_tree *one = list_tiny(c, NULL);
	const char *kinds[] = { "relative", "absolute" };
	for (int k = 0; k < 2; k++) {
		hubfix_ctl(&hub, "reset");
		char q[128];
		snprintf(q, sizeof q, "name=page&arg=3&count=-1&match=%s", kinds[k]);
		fault(q);
		struct hf_tree *t = list_tiny(c, NULL);
		assert_int_equal(t->n, one->n);
		assert_int_equal(t->pages, 4); /* 12 entries (one a directory), 3 a page */
		for (size_t i = 0; i < t->n; i++) {
			assert_string_equal(t->v[i].path, one->v[i].path);
			assert_int_equal(t->v[i].size, one->v[i].size);
		}
		hf_tree_free(t);
	}
	hubfix_ctl(&hub, "reset");
	hf_tree_free(one);
	hf_close(c);
}

static void test_token_stays_on_hub_host(void **state)
{
	(void)state;
	/* the hub is "localhost"; the fixture's absolute next links point at
	 * 127.0.0.1, another host: those pages must go without the token */
	hubfix_ctl(&hub, "reset");
	fault("name=page&arg=5&count=-1&match=absolute");
	struct hf_client *c = client(hub.url_alt, "hf_good");
	struct hf_tree *t = list_tiny(c, NULL);
	assert_int_equal(t->pages, 3);
	hf_tree_free(t);
	hf_close(c);
	json_t *log = hubfix_log(&hub);
	size_t i;
	json_t *r;
	int with = 0, without = 0;
	char alt[64];
	snprintf(alt, sizeof alt, "localhost:%d", hub.port);
	json_array_foreach(log, i, r) {
		const char *h = json_string_value(json_object_get(r, "host"));
		const char *p = json_string_value(json_object_get(r, "path"));
		json_t *a = json_object_get(r, "auth");
		if (!p || strncmp(p, "/api/", 5))
			continue;
		if (!strcmp(h, alt)) {
			assert_string_equal(json_string_value(a), "Bearer hf_good");
			with++;
		} else {
			if (!json_is_null(a))
				fail_msg("token sent to %s", h);
			without++;
		}
	}
	json_decref(log);
	assert_int_equal(with, 2);    /* resolve + first page */
	assert_int_equal(without, 2); /* the two next pages on 127.0.0.1 */
	hubfix_ctl(&hub, "reset");
}

static void expect_refused(const char *entry, int code, const char *needle)
{
	hubfix_ctl(&hub, "reset");
	char *enc = hf_urlencode(entry, 0);
	char q[1024];
	snprintf(q, sizeof q, "name=inject&count=1&arg=%s", enc);
	free(enc);
	fault(q);
	struct hf_client *c = client(hub.url, NULL);
	int rc;
	struct hf_tree *t = list_tiny(c, &rc);
	assert_null(t);
	if (rc != code)
		fail_msg("%s: got %d (%s), wanted %d", entry, rc, md_errmsg(rc), code);
	if (!strstr(md_errmsg(rc), needle))
		fail_msg("%s: detail '%s' lacks '%s'", entry, md_errmsg(rc), needle);
	hf_close(c);
}

static void test_hostile_listing(void **state)
{
	(void)state;
	const char *sha = "\"0123456789012345678901234567890123456789\"";
	char b[512];
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"../../etc/passwd\"}", sha);
	expect_refused(b, MD_EREFUSED, "acme/tiny: hub listed a bad path");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"/etc/passwd\"}", sha);
	expect_refused(b, MD_EREFUSED, "bad path");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"a//b\"}", sha);
	expect_refused(b, MD_EREFUSED, "bad path");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":-5,\"path\":\"x\"}", sha);
	expect_refused(b, MD_EREFUSED, "x: bad size");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1e30,\"path\":\"x\"}", sha);
	expect_refused(b, MD_EREFUSED, "x: bad size");
	expect_refused("{\"type\":\"file\",\"oid\":\"zz\",\"size\":1,\"path\":\"x\"}", MD_EREFUSED,
		       "x: bad git oid");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"x\","
		 "\"lfs\":{\"oid\":\"abc\",\"size\":1}}", sha);
	expect_refused(b, MD_EREFUSED, "x: bad LFS oid");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"x\","
		 "\"lfs\":{\"oid\":\"%064d\",\"size\":2}}", sha, 0);
	expect_refused(b, MD_EREFUSED, "x: size and LFS size differ");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"config.json\"}", sha);
	expect_refused(b, MD_EREFUSED, "config.json listed twice");
	snprintf(b, sizeof b, "{\"type\":\"file\",\"oid\":%s,\"size\":1,\"path\":\"config.json/x\"}", sha);
	expect_refused(b, MD_EREFUSED, "config.json is both a file and a directory");
	expect_refused("[1,2]", MD_EPROTO, "not an object");
	hubfix_ctl(&hub, "reset");
}

static void test_items_filters(void **state)
{
	(void)state;
	hubfix_ctl(&hub, "reset");
	struct hf_client *c = client(hub.url, NULL);
	struct hf_model *m;
	assert_int_equal(hf_resolve(c, "acme/tiny", NULL, &m), 0);
	struct hf_tree *t;
	assert_int_equal(hf_list(c, "acme/tiny", m->commit, &t), 0);
	const char *inc[] = { "*.safetensors", "*.json" }, *exc[] = { "tokenizer*" };
	struct xfer_item *it;
	size_t n;
	assert_int_equal(hf_items(c, "acme/tiny", m->commit, t, inc, 2, exc, 1, &it, &n), 0);
	/* 2 shards + config, generation_config, index (tokenizer.json excluded) */
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		assert_null(strstr(it[i].dest, "tokenizer"));
		size_t l = strlen(it[i].dest);
		if (l > 12 && !strcmp(it[i].dest + l - 12, ".safetensors")) {
			assert_non_null(it[i].sha256);
			assert_null(it[i].blob_sha1);
		} else {
			assert_null(it[i].sha256);
			assert_non_null(it[i].blob_sha1);
		}
		assert_non_null(strstr(it[i].url, m->commit));
	}
	hf_items_free(it, n);
	/* no filters: everything; a folder pattern */
	assert_int_equal(hf_items(c, "acme/tiny", m->commit, t, NULL, 0, NULL, 0, &it, &n), 0);
	assert_int_equal(n, t->n);
	hf_items_free(it, n);
	const char *dir[] = { "onnx/" };
	assert_int_equal(hf_items(c, "acme/tiny", m->commit, t, dir, 1, NULL, 0, &it, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(it[0].dest, "onnx/notes (v1).txt");
	hf_items_free(it, n);
	const char *bad[] = { "a\nb" };
	assert_int_equal(hf_items(c, "acme/tiny", m->commit, t, bad, 1, NULL, 0, &it, &n), MD_EINVAL);
	hf_tree_free(t);
	hf_model_free(m);
	hf_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_api_retries),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_pagination),
		cmocka_unit_test(test_token_stays_on_hub_host),
		cmocka_unit_test(test_hostile_listing),
		cmocka_unit_test(test_items_filters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
