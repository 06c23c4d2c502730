/*
 * registry/wfacts.h — catalog facts from the packs of one import's
 * converted weight files (docs/catalog.md, "Parameters"). A change to what
 * it reports raises DESCRIBE_VERSION (daemon/describe.h), so that stored
 * revisions are counted again at the next start.
 *
 * Parameters and bytes per dtype come from the tensor tables: every tensor
 * name is counted once over all the files, so that one checkpoint kept in
 * two formats (model.safetensors and pytorch_model.bin) or in several
 * quantizations (one GGUF file each) is one model's count, while shards and
 * the components of a multi-model repository (unet/, vae/...) add up. Tied
 * weights (aliases) count once. The files are visited in path order, so a
 * name's dtype is that of its first file by path. A weight file that holds
 * the model again under other names (meta/wlayout.h: Mistral's
 * consolidated.safetensors, original/, a GGUF file beside
 * model.safetensors) is an alternate and not counted.
 *
 * A GGUF file also states its architecture: general.architecture and the
 * llama.cpp keys ARCH.embedding_length, ARCH.block_count,
 * ARCH.attention.head_count, ARCH.context_length and ARCH.vocab_size (else
 * the length of tokenizer.ggml.tokens). Those of the first GGUF file by
 * path that names an architecture are reported, for a repository without a
 * config.json (daemon/facts.c).
 *
 * A stored "lm_head.weight" of the same shape as a stored input embedding
 * (config_facts_is_input_embedding) is reported as "tied_head": it is the
 * embedding again when config.json says tie_word_embeddings, and then not
 * counted (daemon/facts.c).
 */
#ifndef MD_WFACTS_H
#define MD_WFACTS_H

#include <jansson.h>

#include "registry/stindex.h"

/*
 * files: an import's file records (registry/ingest.h); the converted ones
 * are those with "pack". open_blob opens a pack by its digest. *out (new,
 * the caller decrefs) gets "parameters" (integer) and "dtype_bytes" ({"BF16":
 * bytes, "GGML_Q8_0": bytes...}) when there is a converted file, and "gguf"
 * ({"architecture", "model_type", "hidden_size", "num_layers", "num_heads",
 * "context_length", "vocab_size"}: each present only when stated, integers
 * in 1..2^40) when a GGUF file (alternates too) names an architecture,
 * "alternates" (the paths of the alternates, by path) when there are any,
 * and "tied_head"
 * ({"parameters", "dtype", "bytes"}: lm_head.weight's, counted in the
 * totals) when it is an embedding's twin (above). 0, or the error of
 * opening or reading a pack (MD_ECORRUPT, MD_EIO...), MD_ENOMEM.
 */
int wfacts_compute(const json_t *files, stindex_open_fn open_blob, void *arg, json_t **out);

#endif
