/*
 * Unit tests for sources/xfer: downloads from tests/fixtures/hubd.py on
 * loopback, under every fault the fixture can inject. Each test asserts the
 * transfer ends right: every file complete with the hub's bytes, or a clear
 * failure naming the file with nothing unverified in place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"
#include "sources/glob.h"
#include "sources/hf.h"
#include "sources/xfer.h"
#include "tests/unit/hubfix.h"

static struct hubfix hub;
static struct hf_client *cli;
static struct hf_tree *tree;
static char commit[41];

static int setup(void **state)
{
	(void)state;
	if (xfer_global_init() < 0 || hubfix_start(&hub) < 0) {
		fprintf(stderr, "cannot start tests/fixtures/hubd.py\n");
		return -1;
	}
	struct hf_opts o = { .token = "hf_good" };
	struct hf_model *m;
	int rc;
	if ((rc = hf_open(hub.url, &o, &cli)) < 0 ||
	    (rc = hf_resolve(cli, "acme/tiny", NULL, &m)) < 0) {
		fprintf(stderr, "setup: %s\n", md_errmsg(rc));
		return -1;
	}
	memcpy(commit, m->commit, 41);
	hf_model_free(m);
	if ((rc = hf_list(cli, "acme/tiny", commit, &tree)) < 0) {
		fprintf(stderr, "setup: %s\n", md_errmsg(rc));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hf_tree_free(tree);
	hf_close(cli);
	hubfix_stop(&hub);
	return 0;
}

struct job {
	char dir[64];
	struct xfer_item *items;
	char **urls;
	size_t n;
};

/* Items for the files of acme/tiny matching glob (NULL: all), into a new
 * staging dir. */
static void job_make(struct job *j, const char *repo, const char *cm, struct hf_tree *t,
		     const char *glob)
{
	memset(j, 0, sizeof *j);
	snprintf(j->dir, sizeof j->dir, "/tmp/md-xfer-XXXXXX");
	assert_non_null(mkdtemp(j->dir));
	j->items = calloc(t->n, sizeof *j->items);
	j->urls = calloc(t->n, sizeof *j->urls);
	for (size_t i = 0; i < t->n; i++) {
		struct hf_entry *e = &t->v[i];
		if (glob && !glob_match(glob, e->path))
			continue;
		struct xfer_item *it = &j->items[j->n];
		assert_int_equal(hf_file_url(cli, repo, cm, e->path, &j->urls[j->n]), 0);
		it->url = j->urls[j->n];
		it->dest = e->path;
		it->size = e->size;
		it->sha256 = e->lfs ? e->sha256 : NULL;
		it->blob_sha1 = e->lfs ? NULL : e->blob_sha1;
		j->n++;
	}
	assert_true(j->n > 0);
}

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->urls[i]);
	free(j->urls);
	free(j->items);
	hubfix_rm(j->dir);
}

/* Every item is in place with the hub's bytes. */
static void job_check(struct job *j, const char *repo)
{
	for (size_t i = 0; i < j->n; i++) {
		char a[512], b[512];
		snprintf(a, sizeof a, "%s/%s", j->dir, j->items[i].dest);
		snprintf(b, sizeof b, "%s/%s/%s", hub.root, repo, j->items[i].dest);
		assert_int_equal(j->items[i].status, 0);
		if (!hubfix_same(a, b))
			fail_msg("%s differs from the hub's copy", j->items[i].dest);
		if (j->items[i].sha256)
			assert_string_equal(j->items[i].sha256_out, j->items[i].sha256);
	}
}

static struct xfer_opts fast_opts(void)
{
	struct xfer_opts o = { 0 };
	o.backoff_ms = 10;
	o.backoff_max_ms = 50;
	o.chunk_size = 1 << 20;
	o.parts_per_file = 4;
	o.conns = 8;
	o.token = "hf_good";
	o.auth_origin = hub.url;
	o.label = "acme/tiny";
	o.state_interval_ms = 50;
	return o;
}

/* Count log requests for paths matching glob (and, if host != NULL, Host). */
static int count_req(const char *glob, const char *host)
{
	json_t *log = hubfix_log(&hub);
	size_t i;
	json_t *r;
	int n = 0;
	json_array_foreach(log, i, r) {
		const char *p = json_string_value(json_object_get(r, "path"));
		const char *h = json_string_value(json_object_get(r, "host"));
		if (p && !fnmatch(glob, p, 0) && (!host || (h && !strcmp(h, host))))
			n++;
	}
	json_decref(log);
	return n;
}

static void reset_hub(void)
{
	assert_int_equal(hubfix_ctl(&hub, "reset"), 0);
}

static void fault(const char *q)
{
	char b[512];
	snprintf(b, sizeof b, "fault?%s", q);
	assert_int_equal(hubfix_ctl(&hub, b), 0);
}

/* ---------- tests ---------- */

static void test_all_files_parallel_parts(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, NULL);
	struct xfer_opts o = fast_opts();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	if (rc)
		fail_msg("xfer_run: %s", md_errmsg(rc));
	job_check(&j, "acme/tiny");
	/* the 3 MiB shards went as several 1 MiB ranged parts */
	assert_true(count_req("*/model-00001-of-00002.safetensors", NULL) >= 3);
	/* nothing left of the resume state but the directory itself */
	char p[128];
	snprintf(p, sizeof p, "%s/.partial/lock", j.dir);
	assert_int_equal(xfer_clean(j.dir), 0);
	struct stat st;
	assert_int_not_equal(stat(p, &st), 0);
	/* a second run finds the verified files in place: no file request */
	reset_hub();
	o.hash_threads = 2;
	rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, 0);
	assert_int_equal(count_req("*/resolve/*", NULL), 0);
	/* and a fresh download with parallel hashing threads */
	struct job j2;
	job_make(&j2, "acme/tiny", commit, tree, NULL);
	o.hash_threads = 4;
	o.chunk_size = 1 << 20;
	rc = xfer_run(j2.dir, j2.items, j2.n, &o);
	if (rc)
		fail_msg("xfer_run: %s", md_errmsg(rc));
	job_check(&j2, "acme/tiny");
	job_free(&j2);
	for (size_t i = 0; i < j.n; i++)
		assert_int_equal(j.items[i].fetched, 0);
	job_free(&j);
}

static void test_reset_mid_body(void **state)
{
	(void)state;
	reset_hub();
	fault("name=reset&count=2&match=model-00001*");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00001*");
	struct xfer_opts o = fast_opts();
	o.parts_per_file = 1;
	o.chunk_size = 8 << 20; /* one request for the whole file */
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	/* the retry continued mid-file: a Range not starting at 0 */
	json_t *log = hubfix_log(&hub);
	size_t i;
	json_t *r;
	int mid = 0;
	json_array_foreach(log, i, r) {
		const char *rg = json_string_value(json_object_get(r, "range"));
		if (rg && strncmp(rg, "bytes=0-", 8))
			mid++;
	}
	json_decref(log);
	assert_true(mid >= 1);
	assert_true(j.items[0].fetched == j.items[0].size);
	job_free(&j);
}

static void test_500_then_ok(void **state)
{
	(void)state;
	reset_hub();
	fault("name=status&arg=500&count=3&match=config.json");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*.json");
	struct xfer_opts o = fast_opts();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	assert_int_equal(count_req("*/config.json", NULL), 4);
	job_free(&j);
}

static void test_500_forever_fails_naming_file(void **state)
{
	(void)state;
	reset_hub();
	fault("name=status&arg=502&count=-1&match=tokenizer.json");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*.json");
	struct xfer_opts o = fast_opts();
	o.max_retries = 2;
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ENET);
	const char *m = md_errmsg(rc);
	assert_non_null(strstr(m, "tokenizer.json"));
	assert_non_null(strstr(m, "HTTP 502"));
	assert_null(strstr(m, "hf_good"));
	char p[256];
	struct stat st;
	snprintf(p, sizeof p, "%s/tokenizer.json", j.dir);
	assert_int_not_equal(stat(p, &st), 0); /* nothing unverified in place */
	assert_int_equal(count_req("*/tokenizer.json", NULL), 3);
	job_free(&j);
}

/* A connection reset on every try is reported as such, not as a truncated
 * body (curl's "partial file" after a reset is the reset). */
static void test_reset_forever_names_the_reset(void **state)
{
	(void)state;
	reset_hub();
	fault("name=reset&arg=0&count=-1&match=tokenizer.json");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "tokenizer.json");
	struct xfer_opts o = fast_opts();
	o.max_retries = 2;
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ENET);
	const char *m = md_errmsg(rc);
	if (!strstr(m, "tokenizer.json: connection reset by peer after 3 attempts"))
		fail_msg("message: %s", m);
	assert_null(strstr(m, "truncated"));
	job_free(&j);
}

static void test_429_retry_after(void **state)
{
	(void)state;
	reset_hub();
	fault("name=429&arg=1&count=1&match=config.json");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "config.json");
	struct xfer_opts o = fast_opts();
	double t0 = util_mono();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	double dt = util_mono() - t0;
	job_check(&j, "acme/tiny");
	/* backoff is 10 ms here: only Retry-After explains a wait of ~1 s */
	assert_true(dt >= 0.9);
	assert_int_equal(count_req("*/config.json", NULL), 2);
	job_free(&j);
}

static void test_truncated_body(void **state)
{
	(void)state;
	reset_hub();
	fault("name=truncate&count=1&match=*.bin");
	fault("name=truncate&count=1&match=LICENSE");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*");
	struct xfer_opts o = fast_opts();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	assert_true(count_req("*/pytorch_model.bin", NULL) >= 2);
	job_free(&j);
}

static void test_corrupt_once_then_ok(void **state)
{
	(void)state;
	reset_hub();
	fault("name=corrupt&count=1&match=model-00002*");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00002*");
	struct xfer_opts o = fast_opts();
	o.hash_threads = 3; /* the many-CPU path: threads read back, no inline hashing */
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	/* discarded and fetched again in full */
	assert_true(j.items[0].fetched > j.items[0].size);
	job_free(&j);
}

static void test_corrupt_always_fails(void **state)
{
	(void)state;
	reset_hub();
	fault("name=corrupt&count=-1&match=pytorch_model.bin");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*.bin");
	struct xfer_opts o = fast_opts();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(rc), "pytorch_model.bin: sha256 mismatch"));
	char p[256];
	struct stat st;
	snprintf(p, sizeof p, "%s/pytorch_model.bin", j.dir);
	assert_int_not_equal(stat(p, &st), 0);
	assert_int_equal(count_req("*/pytorch_model.bin", NULL), 2);
	job_free(&j);
}

static void test_corrupt_nonlfs_blob_sha1(void **state)
{
	(void)state;
	reset_hub();
	fault("name=corrupt&count=-1&match=README.md");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "README.md");
	struct xfer_opts o = fast_opts();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(rc), "README.md: git blob sha1 mismatch"));
	job_free(&j);
}

static void test_cross_host_redirect_drops_token(void **state)
{
	(void)state;
	reset_hub();
	fault("name=redirect&arg=cross&count=-1&match=*.safetensors");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*.safetensors");
	struct xfer_opts o = fast_opts();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	char alt[64], main_host[64];
	snprintf(alt, sizeof alt, "localhost:%d", hub.port);
	snprintf(main_host, sizeof main_host, "127.0.0.1:%d", hub.port);
	json_t *log = hubfix_log(&hub);
	size_t i;
	json_t *r;
	int at_cdn = 0, at_hub = 0;
	json_array_foreach(log, i, r) {
		const char *h = json_string_value(json_object_get(r, "host"));
		json_t *a = json_object_get(r, "auth");
		if (h && !strcmp(h, alt)) {
			at_cdn++;
			if (!json_is_null(a))
				fail_msg("the token went to %s", h);
		} else if (h && !strcmp(h, main_host) &&
			   strstr(json_string_value(json_object_get(r, "path")), "/resolve/")) {
			at_hub++;
			assert_string_equal(json_string_value(a), "Bearer hf_good");
		}
	}
	json_decref(log);
	assert_true(at_cdn >= 2);
	assert_true(at_hub >= 2);
	job_free(&j);
}

static void test_relative_redirect(void **state)
{
	(void)state;
	reset_hub();
	fault("name=redirect&arg=relative&count=-1&match=*.safetensors");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "*.safetensors");
	struct xfer_opts o = fast_opts();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	assert_true(count_req("/cdn/*", NULL) >= 2);
	job_free(&j);
}

static void test_gated_without_token(void **state)
{
	(void)state;
	reset_hub();
	struct hf_tree *gt;
	struct hf_model *m;
	assert_int_equal(hf_resolve(cli, "acme/gated", NULL, &m), 0);
	assert_int_equal(hf_list(cli, "acme/gated", m->commit, &gt), 0);
	struct job j;
	job_make(&j, "acme/gated", m->commit, gt, "config.json");
	struct xfer_opts o = fast_opts();
	o.token = NULL;
	o.label = "acme/gated";
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_EAUTH);
	assert_string_equal(md_errmsg(rc), "acme/gated: gated repository, accept its terms and set HF_TOKEN");
	/* with a token that did not accept the terms: the same */
	o.token = "hf_nogate";
	rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_EAUTH);
	assert_null(strstr(md_errmsg(rc), "hf_nogate"));
	o.token = "hf_good";
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/gated");
	job_free(&j);
	hf_tree_free(gt);
	hf_model_free(m);
}

static void test_missing_file_404(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "config.json");
	free(j.urls[0]);
	assert_int_equal(hf_file_url(cli, "acme/tiny", commit, "nope.json", &j.urls[0]), 0);
	j.items[0].url = j.urls[0];
	struct xfer_opts o = fast_opts();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ENOENT);
	assert_non_null(strstr(md_errmsg(rc), "config.json"));
	job_free(&j);
}

static void test_slow_drip(void **state)
{
	(void)state;
	/* a slow but steady server completes */
	reset_hub();
	fault("name=drip&arg=40000&count=1&match=pytorch_model.bin");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "pytorch_model.bin");
	struct xfer_opts o = fast_opts();
	o.stall_seconds = 2;
	o.stall_bytes = 100;
	int rc0 = xfer_run(j.dir, j.items, j.n, &o);
	if (rc0)
		fail_msg("xfer_run: %s", md_errmsg(rc0));
	job_check(&j, "acme/tiny");
	job_free(&j);
	/* one under the stall limit is cut off and, after the retries, fails */
	reset_hub();
	fault("name=drip&arg=2000&count=-1&match=pytorch_model.bin");
	job_make(&j, "acme/tiny", commit, tree, "pytorch_model.bin");
	o.stall_seconds = 1;
	o.stall_bytes = 5000;
	o.max_retries = 1;
	double t0 = util_mono();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	if (rc != MD_ENET)
		fail_msg("xfer_run: %d %s", rc, md_errmsg(rc));
	assert_int_equal(rc, MD_ENET);
	assert_non_null(strstr(md_errmsg(rc), "pytorch_model.bin: transfer stalled"));
	assert_true(util_mono() - t0 < 10);
	job_free(&j);
}

static void test_server_ignores_range(void **state)
{
	(void)state;
	reset_hub();
	fault("name=norange&count=-1&match=model-00001*");
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00001*");
	struct xfer_opts o = fast_opts();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	job_free(&j);
}

static void test_size_mismatch(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00002*");
	j.items[0].size -= 10;
	j.items[0].sha256 = NULL;
	struct xfer_opts o = fast_opts();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(rc), "model-00002-of-00002.safetensors: size mismatch"));
	job_free(&j);
}

static void test_hostile_items(void **state)
{
	(void)state;
	struct xfer_item it = { .url = "http://127.0.0.1:1/x", .dest = "../etc/passwd", .size = 1 };
	char dir[] = "/tmp/md-xfer-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(xfer_run(dir, &it, 1, NULL), MD_EREFUSED);
	it.dest = ".partial/x";
	assert_int_equal(xfer_run(dir, &it, 1, NULL), MD_EREFUSED);
	it.dest = "ok";
	it.url = "file:///etc/passwd";
	assert_int_equal(xfer_run(dir, &it, 1, NULL), MD_EINVAL);
	it.url = "http://127.0.0.1:1/x";
	it.sha256 = "XYZ";
	assert_int_equal(xfer_run(dir, &it, 1, NULL), MD_EINVAL);
	hubfix_rm(dir);
}

static void test_empty_file(void **state)
{
	(void)state;
	/* nothing to fetch: no request at all (nothing listens there), and the
	 * empty file still verifies against its digests */
	struct xfer_item it = { .url = "http://127.0.0.1:1/x", .dest = "pkg/__init__.py", .size = 0,
				.blob_sha1 = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391" };
	char dir[] = "/tmp/md-xfer-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_int_equal(xfer_run(dir, &it, 1, NULL), 0);
	assert_string_equal(it.sha256_out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	char p[128];
	struct stat st;
	snprintf(p, sizeof p, "%s/pkg/__init__.py", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 0);
	hubfix_rm(dir);
}

static void test_rate_limit(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00001*");
	struct xfer_opts o = fast_opts();
	o.rate_limit = 2 << 20; /* 3 MiB at 2 MiB/s: >= 1.5 s minus slack */
	double t0 = util_mono();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	double dt = util_mono() - t0;
	job_check(&j, "acme/tiny");
	if (dt < 1.2)
		fail_msg("3 MiB at 2 MiB/s took %.2f s", dt);
	job_free(&j);
}

static void cancel_at_half(void *arg, uint64_t done, uint64_t total)
{
	atomic_int *c = arg;
	if (done * 2 >= total)
		atomic_store(c, 1);
}

/* Options that slow the run down and cancel it halfway through. */
static struct xfer_opts cancel_half_opts(atomic_int *cancel)
{
	struct xfer_opts o = fast_opts();
	o.rate_limit = 4 << 20;
	o.progress = cancel_at_half;
	o.progress_arg = cancel;
	o.cancel = cancel;
	o.progress_ms = 20;
	return o;
}

static void test_cancel_and_resume(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00001*");
	atomic_int cancel = 0;
	struct xfer_opts o = cancel_half_opts(&cancel);
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	assert_int_equal(rc, MD_ECANCELED);
	uint64_t first = j.items[0].fetched;
	assert_true(first > 0 && first < j.items[0].size);
	o.progress = NULL;
	o.cancel = NULL;
	o.rate_limit = 0;
	reset_hub();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	assert_true(j.items[0].resumed > 0);
	assert_true(j.items[0].fetched + j.items[0].resumed == j.items[0].size);
	job_free(&j);
}

/* A placed item lands piece by piece where its pieces say, through a
 * cancel and a resume, verified over the bytes as served; a second run
 * finds it in place; a bad placement is refused before any request. */
static void test_placed_item(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "model-00001*");
	uint64_t n = j.items[0].size, q = n / 4;
	/* four pieces, stored in reverse order with a gap before each */
	struct xfer_seg seg[4];
	for (int k = 0; k < 4; k++) {
		uint64_t len = k < 3 ? q : n - 3 * q;
		seg[k] = (struct xfer_seg){ (uint64_t)k * q, (uint64_t)(3 - k) * (q + 8192) + 4096, len };
	}
	j.items[0].place = seg;
	j.items[0].nplace = 4;
	j.items[0].placed_size = 3 * (q + 8192) + 4096 + seg[3].len + 100;
	atomic_int cancel = 0;
	struct xfer_opts o = cancel_half_opts(&cancel);
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), MD_ECANCELED);
	assert_true(j.items[0].fetched > 0 && j.items[0].fetched < n);
	o.progress = NULL;
	o.cancel = NULL;
	o.rate_limit = 0;
	reset_hub();
	int rc = xfer_run(j.dir, j.items, j.n, &o);
	if (rc)
		fail_msg("xfer_run: %s", md_errmsg(rc));
	assert_true(j.items[0].resumed > 0);
	assert_string_equal(j.items[0].sha256_out, j.items[0].sha256);
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/%s", j.dir, j.items[0].dest);
	snprintf(b, sizeof b, "%s/acme/tiny/%s", hub.root, j.items[0].dest);
	size_t an, bn;
	char *got = hubfix_slurp(a, &an), *want = hubfix_slurp(b, &bn);
	assert_int_equal(an, j.items[0].placed_size);
	assert_int_equal(bn, n);
	for (int k = 0; k < 4; k++)
		assert_memory_equal(got + seg[k].dst, want + seg[k].src, seg[k].len);
	for (uint64_t i = 0; i < 4096; i++)
		assert_int_equal(got[i], 0);
	free(got);
	free(want);
	reset_hub();
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	assert_int_equal(count_req("*/resolve/*", NULL), 0);
	/* overlapping pieces on disk */
	seg[1].dst = seg[0].dst + 1;
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), MD_EINVAL);
	assert_non_null(strstr(md_errmsg(MD_EINVAL), "bad placement"));
	job_free(&j);
}

/* Parse "<i> <done>" lines of the state file; returns bytes of chunk i. */
static long long state_done(const char *dir, const char *dest, size_t ci)
{
	char hx[65], p[512];
	sha256_hex(dest, strlen(dest), hx);
	snprintf(p, sizeof p, "%s/.partial/%s.state", dir, hx);
	size_t n;
	char *b = hubfix_slurp(p, &n);
	if (!b)
		return -1;
	char key[32];
	snprintf(key, sizeof key, "\n%zu ", ci);
	char *k = strstr(b, "chunks ");
	k = k ? strstr(k, key) : NULL;
	long long v = k ? atoll(k + strlen(key)) : -1;
	free(b);
	return v;
}

/* xfer_run in a child over model-00002 (3 MiB in three 1 MiB chunks, the
 * tail layout of a 4 MiB chunk size), one chunk after the other at 1 MiB/s,
 * for the parent to watch its state file and SIGKILL it. state_bytes: 0
 * for the defaults, else the state is written after that many bytes and
 * never by time. */
static pid_t slow_run_forked(struct job *j, struct xfer_opts *o, uint64_t state_bytes)
{
	job_make(j, "acme/tiny", commit, tree, "model-00002*");
	*o = fast_opts();
	o->chunk_size = 4 << 20;
	o->parts_per_file = 1;
	o->rate_limit = 1 << 20;
	if (state_bytes) {
		o->state_interval_ms = 3600 * 1000;
		o->state_bytes = state_bytes;
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		xfer_run(j->dir, j->items, j->n, o);
		_exit(0);
	}
	return pid;
}

static void test_kill_and_resume(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	struct xfer_opts o;
	pid_t pid = slow_run_forked(&j, &o, 0);
	/* wait until the state file records chunk 0 done and part of chunk 1,
	 * then SIGKILL: no chance to write anything more */
	for (int i = 0; i < 1000; i++) {
		if (state_done(j.dir, j.items[0].dest, 1) >= (256 << 10))
			break;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* whatever the exact kill point, the state says what is on disk */
	uint64_t size = j.items[0].size, len[3] = { 1 << 20, 1 << 20, size - (2 << 20) };
	long long d[3];
	uint64_t have = 0;
	for (int k = 0; k < 3; k++) {
		d[k] = state_done(j.dir, j.items[0].dest, (size_t)k);
		assert_true(d[k] >= 0 && (uint64_t)d[k] <= len[k]);
		have += (uint64_t)d[k];
	}
	assert_int_equal(d[0], 1 << 20);
	assert_true(have >= (1 << 20) + (256 << 10) && have < size);
	reset_hub();
	o.rate_limit = 0;
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	/* the server saw each unfinished chunk asked from where the state
	 * said it stopped, and nothing of what was complete */
	int want_n = 0, seen = 0, other = 0;
	char want[3][64];
	for (int k = 0; k < 3; k++)
		if ((uint64_t)d[k] < len[k])
			snprintf(want[want_n++], sizeof want[0], "bytes=%llu-",
				 (unsigned long long)((uint64_t)k * (1 << 20) + (uint64_t)d[k]));
	json_t *log = hubfix_log(&hub);
	size_t i;
	json_t *r;
	json_array_foreach(log, i, r) {
		const char *rg = json_string_value(json_object_get(r, "range"));
		if (!rg)
			continue;
		int hit = 0;
		for (int k = 0; k < want_n; k++)
			if (!strncmp(rg, want[k], strlen(want[k])))
				hit = 1;
		if (hit)
			seen++;
		else {
			fprintf(stderr, "unexpected %s\n", rg);
			other++;
		}
	}
	json_decref(log);
	assert_int_equal(seen, want_n);
	assert_int_equal(other, 0);
	assert_int_equal(j.items[0].resumed, have);
	job_free(&j);
}

/* On a fast link the resume state is written after every state_bytes
 * received, not only every state_interval_ms: a kill then loses at most
 * that much, however many bytes a second brings. */
static void test_state_written_by_bytes(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	struct xfer_opts o;
	pid_t pid = slow_run_forked(&j, &o, 256 << 10);
	long long d0 = -1;
	for (int i = 0; i < 500 && d0 < (512 << 10); i++) {
		usleep(10000);
		d0 = state_done(j.dir, j.items[0].dest, 0);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_true(d0 >= (512 << 10));
	job_free(&j);
}

static void test_stale_state_is_discarded(void **state)
{
	(void)state;
	reset_hub();
	struct job j;
	job_make(&j, "acme/tiny", commit, tree, "config.json");
	struct xfer_opts o = fast_opts();
	/* plant a .part with garbage and a state claiming it for another size */
	char hx[65], p[512];
	sha256_hex("config.json", 11, hx);
	snprintf(p, sizeof p, "%s/.partial", j.dir);
	assert_int_equal(util_mkdir_p(p, 0755), 0);
	snprintf(p, sizeof p, "%s/.partial/%s.part", j.dir, hx);
	FILE *f = fopen(p, "w");
	fputs("garbage garbage garbage", f);
	fclose(f);
	snprintf(p, sizeof p, "%s/.partial/%s.state", j.dir, hx);
	f = fopen(p, "w");
	fputs("modeld-xfer-state 1\nsize 99999\nsha256 -\nsha1 -\nchunk 1048576\nchunks 1\n0 23\n", f);
	fclose(f);
	assert_int_equal(xfer_run(j.dir, j.items, j.n, &o), 0);
	job_check(&j, "acme/tiny");
	assert_int_equal(j.items[0].resumed, 0);
	job_free(&j);
}

static void test_helpers(void **state)
{
	(void)state;
	assert_true(xfer_same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b?c"));
	assert_true(xfer_same_origin("https://HuggingFace.co/x", "https://huggingface.co:443/y"));
	assert_false(xfer_same_origin("http://127.0.0.1:8080/a", "http://localhost:8080/a"));
	assert_false(xfer_same_origin("http://h:1/a", "http://h:2/a"));
	assert_false(xfer_same_origin("http://h/a", "https://h/a"));
	assert_false(xfer_same_origin("http://h/a", NULL));
	assert_int_equal(xfer_parse_retry_after("5", 60), 5);
	assert_int_equal(xfer_parse_retry_after("500", 60), 60);
	assert_int_equal(xfer_parse_retry_after("x", 60), -1);
	assert_int_equal(xfer_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60), 0);
	assert_true(glob_match("*.safetensors", "sub/x.safetensors"));
	assert_true(glob_match("onnx/", "onnx/model.onnx"));
	assert_false(glob_match("*.json", "model.safetensors"));
	const char *inc[] = { "*.safetensors", "*.json" }, *exc[] = { "tokenizer*" };
	assert_true(glob_filter("config.json", inc, 2, exc, 1));
	assert_false(glob_filter("tokenizer.json", inc, 2, exc, 1));
	assert_false(glob_filter("pytorch_model.bin", inc, 2, exc, 1));
	assert_true(glob_filter("anything", NULL, 0, NULL, 0));
	assert_int_equal(glob_check(""), MD_EINVAL);
	assert_int_equal(glob_check("a\nb"), MD_EINVAL);
}

/* Python's fnmatch (huggingface_hub's allow_patterns) on the points where
 * glibc's fnmatch in the C locale differs */
static void test_glob_python(void **state)
{
	(void)state;
	assert_true(glob_match("caf?.json", "caf\u00e9.json"));      /* one character, two bytes */
	assert_true(glob_match("caf[\u00e9e].json", "caf\u00e9.json"));
	assert_true(glob_match("???.txt", "\u65e5\u672c\u8a9e.txt"));
	assert_false(glob_match("????.txt", "\u65e5\u672c\u8a9e.txt"));
	assert_true(glob_match("dir \u00e9/", "dir \u00e9/sub dir/a/deep.json"));
	assert_false(glob_match("[^a]*.json", "config.json")); /* '^' is literal */
	assert_true(glob_match("[^a]*.json", "^x.json"));
	assert_true(glob_match("[!a]*.json", "config.json"));
	assert_false(glob_match("[!a]*.json", "a.json"));
	assert_true(glob_match("x[a-", "x[a-"));               /* no ']': literal */
	assert_false(glob_match("[[:alpha:]]*", "config.json")); /* no classes */
	assert_true(glob_match("a\\*b", "a\\xb"));             /* '\\' is literal */
	assert_false(glob_match("a\\*b", "a*b"));
	assert_true(glob_match("[]]x", "]x"));
	assert_true(glob_match("[!]]x", "bx"));
	assert_false(glob_match("*.JSON", "config.json"));    /* case sensitive */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_placed_item),
		cmocka_unit_test(test_all_files_parallel_parts),
		cmocka_unit_test(test_reset_mid_body),
		cmocka_unit_test(test_500_then_ok),
		cmocka_unit_test(test_500_forever_fails_naming_file),
		cmocka_unit_test(test_reset_forever_names_the_reset),
		cmocka_unit_test(test_429_retry_after),
		cmocka_unit_test(test_truncated_body),
		cmocka_unit_test(test_corrupt_once_then_ok),
		cmocka_unit_test(test_corrupt_always_fails),
		cmocka_unit_test(test_corrupt_nonlfs_blob_sha1),
		cmocka_unit_test(test_cross_host_redirect_drops_token),
		cmocka_unit_test(test_relative_redirect),
		cmocka_unit_test(test_gated_without_token),
		cmocka_unit_test(test_glob_python),
		cmocka_unit_test(test_missing_file_404),
		cmocka_unit_test(test_slow_drip),
		cmocka_unit_test(test_server_ignores_range),
		cmocka_unit_test(test_size_mismatch),
		cmocka_unit_test(test_hostile_items),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_cancel_and_resume),
		cmocka_unit_test(test_kill_and_resume),
		cmocka_unit_test(test_state_written_by_bytes),
		cmocka_unit_test(test_stale_state_is_discarded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
