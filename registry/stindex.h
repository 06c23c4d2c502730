/*
 * registry/stindex.h — sharded safetensors: every *.safetensors.index.json
 * of an import (model.safetensors.index.json,
 * diffusion_pytorch_model.safetensors.index.json...) checked against the
 * shards of the same import before anything is committed
 * (docs/pack-format.md section 5).
 *
 * The index is untrusted JSON of at most STINDEX_MAX_BYTES: a JSON object
 * (no duplicate keys) whose "weight_map" is an object of tensor name ->
 * shard, each shard a plain file name in the index's own folder (no '/',
 * not "." or "..", a valid relative path). For every shard the index names
 * that is part of the import: it is a converted safetensors file, every
 * tensor the index maps to it is in it, none of its tensors is one the
 * index maps to another shard, and no tensor name is in two shards. A shard
 * the index names but the import lacks is allowed (a pull with --include
 * may leave some out); a shard's tensor the index does not list is allowed;
 * "metadata" (total_size) is not checked.
 */
#ifndef MD_STINDEX_H
#define MD_STINDEX_H

#include <jansson.h>

#define STINDEX_MAX_BYTES (32u << 20)
#define STINDEX_SUFFIX ".safetensors.index.json"

/* Opens the content of blob hex of file entry f for reading: a descriptor
 * the caller closes, or an MD_E* code. */
typedef int (*stindex_open_fn)(void *arg, const json_t *f, const char *hex);

/* 1 when relpath names a safetensors index (its last component ends with
 * STINDEX_SUFFIX). */
int stindex_is_index(const char *relpath);

/*
 * Check every index among files (an ingest's file entries {path, blob |
 * pack+format...}; borrowed) against the shards among them. 0, or
 * MD_EREFUSED with one line naming the index file and the tensor or shard
 * at fault ("model.safetensors.index.json: tensor x: not in
 * model-00002-of-00002.safetensors"), MD_ETOOBIG, MD_ENOMEM, or the
 * opener's or the pack reader's code.
 */
int stindex_check(const json_t *files, stindex_open_fn open_blob, void *arg);

#endif
