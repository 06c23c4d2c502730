/* cli/cmd_catalog.c — the catalog commands: list with filters, search,
 * compare, and the catalog part of show. See modelctl(1). */
#include "cli/cli.h"
#include "common/err.h"
#include "common/units.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_has_filters(const struct cli *c)
{
	return c->task || c->provider || c->license || c->library || c->size || c->min_params ||
	       c->max_params || c->fits;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Filters into the request; 0 or EXIT_USAGE (message printed). */
static int add_filters(struct cli *c, json_t *req)
{
	const char *strs[][2] = { { "task", c->task }, { "provider", c->provider },
				  { "license", c->license }, { "library", c->library },
				  { "size", c->size }, { "sort", c->sort } };
	for (size_t i = 0; i < 6; i++)
		if (strs[i][1])
			json_object_set_new(req, strs[i][0], json_string(strs[i][1]));
	const char *cnt[][2] = { { "min_params", c->min_params }, { "max_params", c->max_params } };
	for (size_t i = 0; i < 2; i++) {
		uint64_t v;
		if (!cnt[i][1])
			continue;
		if (units_parse_count(cnt[i][1], &v))
			return cli_usage(md_errmsg(MD_EINVAL));
		json_object_set_new(req, cnt[i][0], json_integer((json_int_t)v));
	}
	if (c->fits) {
		uint64_t v;
		if (units_parse_bytes(c->fits, &v))
			return cli_usage(md_errmsg(MD_EINVAL));
		json_object_set_new(req, "fits", json_integer((json_int_t)v));
	}
	return 0;
}

static void fmt_params(json_t *o, char *out, size_t n)
{
	json_t *p = json_object_get(o, "parameters");
	if (json_is_integer(p))
		units_format_count((uint64_t)json_integer_value(p), out, n);
	else
		snprintf(out, n, "-");
}

/* A row's memory at the stored dtype ("~" when estimated from parameters). */
static void fmt_mem(json_t *row, char *out, size_t n)
{
	json_t *m = json_object_get(row, "memory");
	if (!json_is_integer(m)) {
		snprintf(out, n, "-");
		return;
	}
	char h[32];
	util_human_size((uint64_t)json_integer_value(m), h, sizeof h);
	snprintf(out, n, "%s%s", json_is_true(json_object_get(row, "memory_estimated")) ? "~" : "", h);
}

/* Widest of a column's cells (at least min, at most max columns). */
static int col_width(json_t *arr, const char *key, int min, int max)
{
	size_t i;
	json_t *m;
	int w = min;
	json_array_foreach(arr, i, m) {
		int x = cli_width(cli_text(jstr(m, key)));
		if (x > w)
			w = x;
	}
	return max && w > max ? max : w;
}

/* Rows (registry/index.h) as a table: columns as wide as their longest
 * cell in terminal columns (names are never cut; a task or license over 40
 * columns is), so long names and non-ASCII text keep the table aligned. */
static void print_rows(json_t *arr, int score)
{
	int nw = col_width(arr, "name", 40, 0), tw = col_width(arr, "task", 20, 40);
	int lw = col_width(arr, "license", 14, 40);
	printf("%-*s %-12s %8s %10s %10s %-*s %-*s%s\n", nw, "NAME", "REVISION", "PARAMS", "SIZE",
	       "MEMORY", tw, "TASK", lw, "LICENSE", score ? "" : " IMPORTED");
	size_t i;
	json_t *m;
	json_array_foreach(arr, i, m) {
		char p[32], mem[40], sz[32], when[32];
		fmt_params(m, p, sizeof p);
		fmt_mem(m, mem, sizeof mem);
		util_human_size((uint64_t)json_integer_value(json_object_get(m, "total_size")), sz,
				sizeof sz);
		cli_short_time(jstr(m, "imported_at"), when, sizeof when);
		cli_cell(cli_text(jstr(m, "name")), nw, 0);
		printf(" %-12.12s %8s %10s %10s ", cli_text(jstr(m, "revision")), p, sz, mem);
		cli_cell(cli_text(jstr(m, "task")), tw, 40);
		printf(" ");
		cli_cell(cli_text(jstr(m, "license")), score ? 0 : lw, 40);
		printf("%s%s\n", score ? "" : " ", score ? "" : when);
	}
}

int cmd_find(struct cli *c)
{
	if (c->argc)
		return cli_usage("list with filters takes no model name");
	json_t *req = json_pack("{s:s}", "op", "find"), *res;
	int rc = add_filters(c, req);
	if (rc) {
		json_decref(req);
		return rc;
	}
	/* filters and --sort are checked by the daemon (the size classes are
	 * its configuration): a bad one is a usage error */
	c->einval_is_usage = 1;
	rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(res);
	else
		print_rows(res, 0);
	json_decref(res);
	return EXIT_OK;
}

static void print_hub(json_t *res)
{
	json_t *arr = json_object_get(res, "results");
	int iw = col_width(arr, "id", 48, 0), tw = col_width(arr, "pipeline_tag", 22, 40);
	int lw = col_width(arr, "library_name", 14, 40);
	printf("%-*s %-6s %-*s %-*s %10s %7s %8s\n", iw, "ID", "STORED", tw, "TASK", lw, "LIBRARY",
	       "DOWNLOADS", "LIKES", "PARAMS");
	size_t i;
	json_t *m;
	json_array_foreach(arr, i, m) {
		char p[32];
		fmt_params(m, p, sizeof p);
		cli_cell(cli_text(jstr(m, "id")), iw, 0);
		printf(" %-6s ", json_is_true(json_object_get(m, "stored")) ? "yes" : "-");
		cli_cell(cli_text(jstr(m, "pipeline_tag")), tw, 40);
		printf(" ");
		cli_cell(cli_text(jstr(m, "library_name")), lw, 40);
		printf(" %10lld %7lld %8s\n",
		       (long long)json_integer_value(json_object_get(m, "downloads")),
		       (long long)json_integer_value(json_object_get(m, "likes")), p);
	}
	printf("%zu results from %s (%lld pages)\n", json_array_size(arr), cli_text(jstr(res, "hub")),
	       (long long)json_integer_value(json_object_get(res, "pages")));
}

int cmd_search(struct cli *c)
{
	if (c->argc != 1)
		return cli_usage("search takes one QUERY (quote several words)");
	json_t *req = json_pack("{s:s,s:s}", "op", "search", "query", c->argv[0]), *res;
	const char *sort = c->sort;
	if (c->hub && sort && strcmp(sort, "name") && strcmp(sort, "params") && strcmp(sort, "size") &&
	    strcmp(sort, "imported")) { /* a hub's own order: downloads, likes, ... */
		json_object_set_new(req, "hub_sort", json_string(sort));
		c->sort = NULL;
	}
	int rc = add_filters(c, req);
	if (!rc && c->hub)
		json_object_set_new(req, "hub", json_string(c->hub));
	if (!rc && c->limit) {
		char *end;
		long n = strtol(c->limit, &end, 10);
		if (*end || n < 1 || n > 10000)
			rc = cli_usage("--limit: want 1..10000");
		else
			json_object_set_new(req, "limit", json_integer(n));
	}
	if (rc) {
		json_decref(req);
		return rc;
	}
	c->einval_is_usage = !c->hub; /* a hub's errors are not ours to call usage */
	rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(res);
	else if (c->hub)
		print_hub(res);
	else {
		print_rows(json_object_get(res, "results"), 1);
		printf("%zu shown of %lld matches\n", json_array_size(json_object_get(res, "results")),
		       (long long)json_integer_value(json_object_get(res, "matches")));
	}
	json_decref(res);
	return EXIT_OK;
}

/* ---- compare and show ------------------------------------------------------ */

static void fmt_val(json_t *v, char *out, size_t n)
{
	if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%.4g", json_real_value(v));
	else if (json_is_string(v))
		snprintf(out, n, "%s", cli_safe(json_string_value(v), (char[64]){ 0 }, 64));
	else
		snprintf(out, n, "%s", ""); /* a gap is a gap */
}

static void fmt_bytes(json_t *v, char *out, size_t n)
{
	if (json_is_integer(v))
		util_human_size((uint64_t)json_integer_value(v), out, n);
	else
		snprintf(out, n, "-");
}

/* "task / dataset / metric", the dataset with its config when the card
 * names one: "text-classification / glue (mnli) / accuracy". */
static void bench_label(json_t *b, char *out, size_t n)
{
	const char *cfg = jstr(b, "config");
	snprintf(out, n, "%s / %s%s%s%s / %s", cli_text(jstr(b, "task")), cli_text(jstr(b, "dataset")),
		 cfg ? " (" : "", cfg ? cli_text(cfg) : "", cfg ? ")" : "", cli_text(jstr(b, "metric")));
}

int cmd_compare(struct cli *c)
{
	if (c->argc < 2)
		return cli_usage("compare takes two or more ORG/NAME[@REV]");
	if (c->argc > 16) /* the daemon's FIND_MAX_COMPARE, modelctl(1) */
		return cli_usage("compare takes at most 16 ORG/NAME[@REV]");
	for (int i = 0; i < c->argc; i++)
		if (cli_check_ref(c->argv[i]))
			return EXIT_USAGE;
	json_t *refs = json_array();
	for (int i = 0; i < c->argc; i++)
		json_array_append_new(refs, json_string(c->argv[i]));
	json_t *req = json_pack("{s:s,s:o}", "op", "compare", "refs", refs), *res;
	int rc = cli_call(c, req, &res, NULL, NULL);
	json_decref(req);
	if (rc)
		return rc;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return EXIT_OK;
	}
	json_t *ms = json_object_get(res, "models");
	json_t *bs = json_object_get(res, "benchmarks");
	size_t n = json_array_size(ms), i;
	json_t *m, *b;
	const int w = 26;
	int lw = 16; /* the label column fits the longest benchmark label (<= 60) */
	json_array_foreach(bs, i, b) {
		char label[800];
		bench_label(b, label, sizeof label);
		int l = cli_width(label);
		if (l + 2 > lw)
			lw = l + 2 > 60 ? 60 : l + 2;
	}
	printf("%-*s", lw, "");
	json_array_foreach(ms, i, m) {
		printf(" ");
		cli_cell(cli_text(jstr(m, "name")), w, w);
	}
	printf("\n");
	static const char *const rows[] = { "revision", "parameters", "size_class", "size_tier",
					    "memory.stored", "memory.fp16", "memory.bf16",
					    "memory.int8", "memory.int4", "architecture",
					    "context_length", "license", "verdict", "task",
					    "provider", NULL };
	for (size_t r = 0; rows[r]; r++) {
		printf("%-*s", lw, rows[r]);
		json_array_foreach(ms, i, m) {
			char cell[64];
			if (!strncmp(rows[r], "memory.", 7))
				fmt_bytes(json_object_get(json_object_get(m, "memory"), rows[r] + 7), cell,
					  sizeof cell);
			else if (!strcmp(rows[r], "parameters") && json_is_integer(json_object_get(m, "parameters")))
				units_format_count((uint64_t)json_integer_value(json_object_get(m, "parameters")),
						   cell, sizeof cell);
			else if (!strcmp(rows[r], "license"))
				snprintf(cell, sizeof cell, "%s", cli_text(jstr(m, "license_id")));
			else if (!strcmp(rows[r], "revision"))
				snprintf(cell, sizeof cell, "%.12s", cli_text(jstr(m, "revision")));
			else {
				fmt_val(json_object_get(m, rows[r]), cell, sizeof cell);
				if (!cell[0])
					snprintf(cell, sizeof cell, "-");
			}
			printf(" ");
			cli_cell(cell, w, w);
		}
		printf("\n");
	}
	if (json_array_size(bs))
		printf("benchmarks (task / dataset / metric; blank: the card does not say)\n");
	json_array_foreach(bs, i, b) {
		char label[800];
		bench_label(b, label, sizeof label);
		cli_cell(label, lw, lw - 1);
		for (size_t k = 0; k < n; k++) {
			char cell[64];
			fmt_val(json_array_get(json_object_get(b, "values"), k), cell, sizeof cell);
			printf(" ");
			cli_cell(cell, w, w);
		}
		printf("\n");
	}
	json_decref(res);
	return EXIT_OK;
}

void cli_show_facts(json_t *m)
{
	json_t *p = json_object_get(m, "parameters");
	if (json_is_integer(p)) {
		char h[32];
		units_format_count((uint64_t)json_integer_value(p), h, sizeof h);
		printf("params:    %s (%lld), size class %s (%s)\n", h, (long long)json_integer_value(p),
		       cli_text(jstr(m, "size_class")), cli_text(jstr(m, "size_tier")));
	} else {
		printf("params:    -\n");
	}
	/* weight files not counted: the model again under other names */
	json_t *alts = json_object_get(json_object_get(m, "facts"), "parameters_alternates");
	size_t na = json_array_size(alts);
	for (size_t i = 0; i < na && i < 4; i++)
		printf("%s%s", i ? ", " : "           not counted (the model again): ",
		       cli_text(json_string_value(json_array_get(alts, i))));
	if (na > 4)
		printf(" and %zu more", na - 4);
	if (na)
		printf("\n");
	json_t *mem = json_object_get(m, "memory");
	if (json_is_object(mem)) {
		static const char *const k[] = { "stored", "fp16", "bf16", "int8", "int4" };
		printf("memory:   ");
		for (size_t i = 0; i < 5; i++) {
			char h[32];
			fmt_bytes(json_object_get(mem, k[i]), h, sizeof h);
			printf(" %s %s%s%s", k[i], json_is_true(json_object_get(mem, "estimated")) && !i ? "~" : "",
			       h, i < 4 ? "," : "");
		}
		printf("  (weights only)\n");
	}
	printf("arch:      %s", cli_text(jstr(m, "architecture")));
	static const char *const dims[][2] = { { "context_length", "context" },
					       { "hidden_size", "hidden" }, { "num_layers", "layers" },
					       { "num_heads", "heads" }, { "vocab_size", "vocab" } };
	for (size_t i = 0; i < 5; i++) {
		json_t *v = json_object_get(m, dims[i][0]);
		if (json_is_integer(v))
			printf(", %s %lld", dims[i][1], (long long)json_integer_value(v));
	}
	printf("\n");
	printf("task:      %s; provider %s; library %s\n", cli_text(jstr(m, "task")), cli_text(jstr(m, "provider")),
	       cli_text(jstr(m, "library")));
	static const char *const lists[][2] = { { "languages", "languages" },
						{ "datasets", "datasets" },
						{ "base_model", "base model" } };
	for (size_t l = 0; l < 3; l++) {
		json_t *a = json_object_get(m, lists[l][0]);
		if (!json_array_size(a))
			continue;
		printf("%-10s ", lists[l][1]);
		size_t i;
		json_t *x;
		json_array_foreach(a, i, x) {
			if (i == 12) {
				printf(", ... (%zu)", json_array_size(a));
				break;
			}
			printf("%s%s", i ? ", " : "", cli_text(json_string_value(x)));
		}
		printf("\n");
	}
	/* a card refused as broken or hostile, or fields of it dropped: say so,
	 * or the empty task, license and benchmarks above look like the card's */
	json_t *card = json_object_get(m, "card");
	const char *cst = jstr(card, "status");
	if (cst && !strcmp(cst, "unknown"))
		printf("card:      ignored, README.md front matter unusable: %s\n",
		       cli_text(jstr(card, "reason")));
	json_t *ws = json_object_get(card, "warnings");
	for (size_t i = 0; i < json_array_size(ws); i++) {
		if (i == 5) {
			printf("           ... (%zu warnings)\n", json_array_size(ws));
			break;
		}
		printf("%s%s\n", i ? "           " : "card:      ",
		       cli_text(json_string_value(json_array_get(ws, i))));
	}
	json_t *bs = json_object_get(m, "benchmarks");
	if (json_array_size(bs)) {
		printf("benchmarks:\n");
		size_t i;
		json_t *b;
		json_array_foreach(bs, i, b) {
			char v[64], ds[600];
			const char *cfg = jstr(b, "dataset_config");
			fmt_val(json_object_get(b, "value"), v, sizeof v);
			snprintf(ds, sizeof ds, "%s%s%s%s", cli_text(jstr(b, "dataset")), cfg ? " (" : "",
				 cfg ? cli_text(cfg) : "", cfg ? ")" : "");
			printf("  ");
			cli_cell(cli_text(jstr(b, "task")), 24, 0);
			printf(" ");
			cli_cell(ds, 28, 0);
			printf(" ");
			cli_cell(cli_text(jstr(b, "metric")), 16, 0);
			printf(" %s\n", v);
		}
	}
}
