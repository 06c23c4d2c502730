/*
 * daemon/find.h — the catalog operations: filtered lists ("find"), local
 * and hub search ("search"), side-by-side comparison ("compare"), the
 * catalog keys of `show`, and a benchmark-only bulk insert ("bench_put").
 * Request and reply shapes: docs/protocol.md; indexes: registry/index.h.
 */
#ifndef MD_FIND_H
#define MD_FIND_H

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"

#define FIND_MAX_COMPARE 16     /* models in one compare */
#define FIND_MAX_LIMIT 10000    /* local search results */
#define FIND_MAX_BENCH_PUT 10000 /* manifests in one bench_put */

/* find / search post their own replies (raw frames, "elapsed_ms" in the
 * final one); search with "hub" runs as a job. 0 or an MD_E* code (the
 * caller replies with the error). */
int find_op_find(struct daemon *d, struct ops_peer *p, json_t *req);
int find_op_search(struct daemon *d, struct ops_peer *p, json_t *req);
/* Inline: *res gets a new reference. */
int find_op_compare(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res);
/* Write op, refused unless modeld runs with MODELD_BENCH_OPS=1: stores
 * synthetic manifests (no files) in one transaction, through
 * catalog_put_rev like an import. */
int find_op_bench_put(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res);

/*
 * Add the catalog keys to a public manifest o (show): parameters,
 * size_class ("small"|"large"), size_tier, memory {stored, fp32, fp16,
 * bf16, int8, int4, estimated?} or null, architecture, context_length,
 * hidden_size, num_layers, num_heads, vocab_size, task, provider, library,
 * languages, datasets, base_model, benchmarks — copied from o.facts.
 */
void find_public_facts(struct daemon *d, json_t *o);

#endif
