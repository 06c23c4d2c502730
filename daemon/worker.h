/*
 * daemon/worker.h — running modeld-worker: each weight file is parsed and
 * converted in a fresh confined process fed by descriptors (DESIGN 4), so a
 * parser bug in hostile input cannot reach the daemon, the store or the
 * network.
 */
#ifndef MD_WORKER_H
#define MD_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "sources/xfer.h"

#define WORKER_MAX_OUTPUT (1u << 20) /* bytes of worker output read */

/* Find modeld-worker next to the running modeld (or $MODELD_WORKER).
 * 0 or MD_ENOENT. Call once at start-up. */
int worker_init(void);

/*
 * Convert src_fd (size bytes) into pack_fd and recipe_fd in a worker.
 * sha256 (64 hex digits, may be NULL) is the source's digest when the caller
 * verified it already: the worker then does not hash the source again.
 * cancel (may be NULL) is polled; when set the worker is killed.
 * Returns 0 with *info (the worker's JSON result: format, tensors, params,
 * sha256, pack, recipe, sizes, dtype_bytes), MD_EUNSUP when the file is not a
 * weight file after all, or the worker's error (code and one-line detail
 * naming the file), MD_ECORRUPT when the file shrank under the worker's
 * mapping (SIGBUS), or MD_EIO when the worker died ("killed by signal N").
 */
int worker_convert(int src_fd, uint64_t size, const char *path, const char *sha256,
		   int pack_fd, int recipe_fd, _Atomic int *cancel, json_t **info);

/*
 * Ask a worker where each byte of a safetensors file of size bytes should
 * be written so that the download is already in pack layout (conv_plan):
 * head_fd holds at least the file's header. 0 with *segs (malloc'd, free)
 * and *placed_size, MD_EUNSUP when the file cannot be placed (download it
 * as it is), or a parse error of the head.
 */
int worker_plan(int head_fd, uint64_t size, const char *path, _Atomic int *cancel,
		struct xfer_seg **segs, size_t *nseg, uint64_t *placed_size);

/* worker_convert for a file downloaded as worker_plan said: placed_fd
 * (read-write) becomes the pack in place (conv_convert_placed); head_fd is
 * the head the plan was made from. Same results as worker_convert. */
int worker_convert_placed(int head_fd, int placed_fd, uint64_t size, const char *path,
			  const char *sha256, int recipe_fd, _Atomic int *cancel, json_t **info);

/* Fill conv (a struct ingest_converter, registry/ingest.h) with hooks that
 * send the files a converter claims (conv_find_fd: path and the first
 * CONV_HEAD_BYTES, as the worker itself decides) to
 * worker_convert, canceled through cancel (the job's flag). */
struct ingest_converter;
void worker_converter(struct ingest_converter *conv, _Atomic int *cancel);

#endif
