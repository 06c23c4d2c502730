/* Unit tests for registry/index.c on a real store: put, query, delete, and
 * the start-up rebuild giving the same answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "registry/catalog.h"
#include "registry/index.h"
#include "registry/ingest.h"

static char root[64];

static json_t *mk(const char *name, char revc, const char *task, const char *lic,
		  json_int_t params, const char *text)
{
	char rev[41];
	memset(rev, revc, 40);
	rev[40] = 0;
	json_t *m = json_pack("{s:s,s:s,s:[],s:I,s:s,s:{s:s,s:s,s:s,s:s,s:I,s:{s:I},s:[s]},s:{s:s}}",
			      "name", name, "revision", rev, "files", "total_size", params * 2,
			      "imported_at", "2026-11-23T08:00:00Z", "facts", "task", task,
			      "provider", "acme", "license", lic, "library", "transformers",
			      "parameters", params, "dtype_bytes", "BF16", params * 2, "tags", "chat",
			      "card", "text", text);
	assert_non_null(m);
	return m;
}

/* name@rev of each hit, "|"-joined, in order. */
static void run(struct store *st, const struct index_query *q, char *out, size_t n)
{
	MDB_txn *txn;
	struct index_hit *h;
	size_t nh;
	out[0] = 0;
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(index_query(st, txn, q, &h, &nh), 0);
	for (size_t i = 0; i < nh; i++) {
		size_t l = strlen(out);
		snprintf(out + l, n - l, "%s@%.1s|", h[i].key, h[i].key + strlen(h[i].key) + 1);
		json_t *row = json_loadb(h[i].row, h[i].rowlen, 0, NULL);
		assert_non_null(row);
		assert_string_equal(json_string_value(json_object_get(row, "name")), h[i].key);
		json_decref(row);
	}
	free(h);
	mdb_txn_abort(txn);
}

static void put(struct store *st, json_t *m, const char *ref)
{
	MDB_txn *txn;
	int existed;
	assert_int_equal(store_txn(st, 1, &txn), 0);
	assert_int_equal(catalog_put_rev(st, txn, m, ref, &existed), 0);
	assert_int_equal(store_commit(txn), 0);
	json_decref(m);
}

static void test_index_lifecycle(void **state)
{
	(void)state;
	struct store *st;
	char out[1024];
	snprintf(root, sizeof root, "/tmp/test-index-XXXXXX");
	assert_non_null(mkdtemp(root));
	assert_int_equal(store_open(root, 0, 0, &st), 0);
	put(st, mk("acme/a", 'a', "text-generation", "MIT", 7000000000, "zebra"), "main");
	put(st, mk("acme/b", 'b', "text-generation", "Apache-2.0", 50000000, "yak"), "main");
	put(st, mk("acme/c", 'c', "translation", "MIT", 300000000, "zebra crossing"), "main");
	put(st, mk("acme/a", 'd', "summarization", "MIT", 8000000000, "okapi"), "main"); /* main moves */

	struct index_query q = { .task = "TEXT-GENERATION" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@a|acme/b@b|");
	q = (struct index_query){ .license = "mit", .sort = INDEX_SORT_PARAMS };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@d|acme/a@a|acme/c@c|");
	q = (struct index_query){ .has_min = 1, .min_params = 100000000, .has_max = 1,
				  .max_params = 7000000000 };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@a|acme/c@c|");
	q = (struct index_query){ .has_mem = 1, .max_mem = 1000000000 };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/b@b|acme/c@c|");
	q = (struct index_query){ .text = "zeb" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@a|acme/c@c|");
	q = (struct index_query){ .text = "zebra cross", .license = "MIT" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/c@c|");

	/* delete one revision: every index forgets it */
	MDB_txn *txn;
	json_t *freed = json_array();
	char rev[41];
	memset(rev, 'a', 40);
	rev[40] = 0;
	assert_int_equal(store_txn(st, 1, &txn), 0);
	assert_int_equal(catalog_del_rev(st, txn, "acme/a", rev, freed), 0);
	assert_int_equal(store_commit(txn), 0);
	json_decref(freed);
	q = (struct index_query){ .text = "zebra" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/c@c|");
	q = (struct index_query){ .task = "text-generation" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/b@b|");
	q = (struct index_query){ .sort = INDEX_SORT_NAME };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@d|acme/b@b|acme/c@c|");

	/* lose the indexes: the start-up check rebuilds the same answers */
	assert_int_equal(store_txn(st, 1, &txn), 0);
	assert_int_equal(mdb_drop(txn, st->idx, 0), 0);
	assert_int_equal(mdb_drop(txn, st->inums, 0), 0);
	assert_int_equal(mdb_drop(txn, st->irows, 0), 0);
	assert_int_equal(mdb_drop(txn, st->iranges, 0), 0);
	assert_int_equal(store_commit(txn), 0);
	q = (struct index_query){ .license = "mit" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "");
	assert_int_equal(catalog_ensure_summaries(st), 0);
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@d|acme/c@c|");
	q = (struct index_query){ .text = "okapi" };
	run(st, &q, out, sizeof out);
	assert_string_equal(out, "acme/a@d|");
	q = (struct index_query){ .text = "!!" };
	struct index_hit *h;
	size_t nh;
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(index_query(st, txn, &q, &h, &nh), MD_EINVAL);
	mdb_txn_abort(txn);
	store_close(st);
	util_rmtree(root);
}

/* More candidates than INDEX_ORDERED_WALK: the sequential walk path. */
static void test_index_large(void **state)
{
	(void)state;
	struct store *st;
	enum { N = 6000 };
	snprintf(root, sizeof root, "/tmp/test-index-XXXXXX");
	assert_non_null(mkdtemp(root));
	assert_int_equal(store_open(root, 0, 0, &st), 0);
	MDB_txn *txn;
	assert_int_equal(store_txn(st, 1, &txn), 0);
	for (int i = 0; i < N; i++) {
		char name[64], rev[41];
		snprintf(name, sizeof name, "org/mx-%05d", (i * 7919) % N); /* not in id order */
		snprintf(rev, sizeof rev, "%040x", i);
		json_t *m = mk(name, 'a', i % 2 ? "text-generation" : "translation", "MIT",
			       1000 + (i * 104729) % 100000, i % 3 ? "common" : "common mx");
		json_object_set_new(m, "revision", json_string(rev));
		int existed;
		assert_int_equal(catalog_put_rev(st, txn, m, NULL, &existed), 0);
		json_decref(m);
	}
	assert_int_equal(store_commit(txn), 0);
	struct index_hit *h;
	size_t n;
	struct index_query q = { .license = "mit" };
	assert_int_equal(store_txn(st, 0, &txn), 0);
	assert_int_equal(index_query(st, txn, &q, &h, &n), 0);
	assert_int_equal(n, N);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(h[i - 1].key, h[i].key) < 0);
	free(h);
	q = (struct index_query){ .license = "mit", .sort = INDEX_SORT_PARAMS, .has_max = 1,
				  .max_params = 50000 };
	assert_int_equal(index_query(st, txn, &q, &h, &n), 0);
	assert_true(n > 4096 / 2 && n < N);
	for (size_t i = 0; i < n; i++)
		assert_true(h[i].num.params <= 50000 && (!i || h[i - 1].num.params >= h[i].num.params));
	free(h);
	/* text: every row matches "common"; "mx" is a name word of all, so the
	 * score ties and name order rules */
	q = (struct index_query){ .text = "common mx" };
	assert_int_equal(index_query(st, txn, &q, &h, &n), 0);
	assert_int_equal(n, N);
	for (size_t i = 1; i < n; i++) {
		assert_int_equal(h[i].score, 1);
		assert_true(strcmp(h[i - 1].key, h[i].key) < 0);
	}
	free(h);
	mdb_txn_abort(txn);
	store_close(st);
	util_rmtree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_lifecycle),
		cmocka_unit_test(test_index_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
