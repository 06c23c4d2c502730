/*
 * bench/pull/pull_bench.c — drives sources/hf + sources/xfer directly (the
 * lead will switch the bench to `modelctl pull`): resolve, list, download
 * every file of a repository into OUTDIR with verification, print one line.
 *
 *   pull_bench HUB REPO[@REV] OUTDIR
 * Tuning from the environment: XFER_CONNS, XFER_PARTS, XFER_CHUNK_MB,
 * XFER_NO_FSYNC=1, XFER_HTTP1=1, XFER_HASH_THREADS, BENCH_TRACE=1; HF_TOKEN.
 */
#include "common/err.h"
#include "common/util.h"
#include "sources/hf.h"
#include "sources/xfer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long envl(const char *k, long d)
{
	const char *v = getenv(k);
	return v && *v ? strtol(v, NULL, 10) : d;
}

static double t_start;

/* BENCH_TRACE=1: one line per progress report (seconds, bytes on disk). */
static void trace(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	fprintf(stderr, "%.2f %" PRIu64 "/%" PRIu64 "\n", util_mono() - t_start, done, total);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: pull_bench HUB REPO[@REV] OUTDIR\n");
		return 2;
	}
	char *id, *rev;
	if (util_parse_modelref(argv[2], &id, &rev) < 0) {
		fprintf(stderr, "pull_bench: %s: bad repository\n", argv[2]);
		return 2;
	}
	xfer_global_init();
	double t0 = util_mono();
	t_start = t0;
	struct hf_client *c;
	struct hf_model *m;
	struct hf_tree *t;
	int rc;
	struct hf_opts ho = { .token = getenv("HF_TOKEN") };
	if ((rc = hf_open(argv[1], &ho, &c)) < 0 || (rc = hf_resolve(c, id, rev, &m)) < 0 ||
	    (rc = hf_list(c, id, m->commit, &t)) < 0) {
		fprintf(stderr, "pull_bench: %s\n", md_errmsg(rc));
		return 1;
	}
	struct xfer_item *items;
	size_t n;
	if ((rc = hf_items(c, id, m->commit, t, NULL, 0, NULL, 0, &items, &n)) < 0) {
		fprintf(stderr, "pull_bench: %s\n", md_errmsg(rc));
		return 1;
	}
	struct xfer_opts o = { 0 };
	o.conns = (int)envl("XFER_CONNS", 0);
	o.parts_per_file = (int)envl("XFER_PARTS", 0);
	o.chunk_size = (uint64_t)envl("XFER_CHUNK_MB", 0) << 20;
	o.no_fsync = (int)envl("XFER_NO_FSYNC", 0);
	o.http1 = (int)envl("XFER_HTTP1", 0);
	o.hash_threads = (int)envl("XFER_HASH_THREADS", 0);
	o.label = id;
	o.token = getenv("HF_TOKEN");
	o.auth_origin = hf_hub(c);
	if (envl("BENCH_TRACE", 0)) {
		o.progress = trace;
		o.progress_ms = 500;
	}
	rc = xfer_run(argv[3], items, n, &o);
	double dt = util_mono() - t0;
	if (rc < 0) {
		fprintf(stderr, "pull_bench: %s\n", md_errmsg(rc));
		return 1;
	}
	xfer_clean(argv[3]);
	printf("%" PRIu64 " bytes %zu files %.3f s %.1f MB/s (verified)\n", t->total, t->n, dt,
	       (double)t->total / dt / 1e6);
	hf_items_free(items, n);
	hf_tree_free(t);
	hf_model_free(m);
	hf_close(c);
	free(id);
	free(rev);
	return 0;
}
