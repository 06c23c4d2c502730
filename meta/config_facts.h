/*
 * meta/config_facts.h — catalog facts from a model's config.json, and (as a
 * FALLBACK until the converters record their tensor tables in the manifest)
 * parameter counts and bytes per dtype from safetensors headers.
 *
 * Pure parsers: they read what they are given and know nothing of the
 * store. Both inputs are untrusted.
 *
 * Hard caps (set here):
 *   CONFIG_FACTS_MAX_JSON   config.json examined: at most 4 MiB (a real one is
 *                           a few KiB); longer files yield no facts
 *   CONFIG_FACTS_MAX_HEADER a safetensors JSON header: at most 100 MB (the
 *                           format's own limit); a larger declared length
 *                           is refused before anything is allocated
 *   CONFIG_FACTS_MAX_TENSORS distinct tensor names remembered for the tied /
 *                           duplicate check: 1,000,000
 */
#ifndef MD_CONFIG_FACTS_H
#define MD_CONFIG_FACTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CONFIG_FACTS_MAX_JSON (4u << 20)
#define CONFIG_FACTS_MAX_HEADER (100u * 1000 * 1000)
#define CONFIG_FACTS_MAX_TENSORS 1000000

/*
 * Parse config.json bytes buf[0..len) into a new object *out (caller
 * decrefs) with these keys, each null when the config does not say:
 *   "architecture"   architectures[0], else model_type
 *   "model_type"     string
 *   "hidden_size"    hidden_size | n_embd | d_model | dim
 *   "num_layers"     num_hidden_layers | n_layer | num_layers | n_layers
 *   "num_heads"      num_attention_heads | n_head | num_heads | n_heads
 *   "context_length" max_position_embeddings | n_positions | seq_length |
 *                    max_seq_len | max_sequence_length | n_ctx
 *   "vocab_size"     vocab_size | n_vocab | padded_vocab_size
 *   "tie_word_embeddings" bool (absent: null)
 * When the top-level object lacks a key, "text_config" (multimodal configs)
 * is consulted. Integers must be in 1..2^40 to count. Never fails because of
 * the content (broken JSON gives all nulls). 0, MD_ENOMEM.
 */
int config_facts_parse(const char *buf, size_t len, json_t **out);

/*
 * FALLBACK parameter counting from safetensors headers (used only while the
 * manifest carries no facts.parameters from the converters).
 *
 * An accumulator over the weight files of one revision: each tensor name is
 * counted once over all files (a tensor repeated in two shards is one
 * tensor), and when tie_word_embeddings is true an "lm_head.weight" of the
 * same shape as the input embedding is not counted (tied weights once).
 */
struct config_facts_acc;

/* New accumulator, NULL on ENOMEM. Free with config_facts_acc_free. */
struct config_facts_acc *config_facts_acc_new(void);
void config_facts_acc_free(struct config_facts_acc *a);

/*
 * Read the 8-byte little-endian header length and the JSON header of one
 * safetensors file from fd (from offset 0, with pread; fd is not closed)
 * and add its tensors. what names the file in error details.
 * Errors: MD_ECORRUPT (short file, header length over the cap or past the
 * end of the file, not JSON, a tensor without dtype/shape/data_offsets, a
 * shape whose element count overflows 2^62 or, for whole-byte dtypes,
 * does not match its data_offsets), MD_EIO, MD_ENOMEM.
 * On error nothing from this file is kept.
 */
int config_facts_add_safetensors(struct config_facts_acc *a, int fd, const char *what);

/*
 * The totals: *params (elements of the counted tensors) and a new object
 * *dtype_bytes {"BF16": bytes, ...} (caller decrefs; bytes are the data
 * ranges of the counted tensors). tie is the config's tie_word_embeddings
 * (1 true, 0 false or unknown). Returns 0 with *params = 0 and an empty
 * object when no tensor was added. MD_ENOMEM.
 */
int config_facts_acc_result(struct config_facts_acc *a, int tie, uint64_t *params,
			    json_t **dtype_bytes);

/* 1 if name is an input embedding whose twin "lm_head.weight" (same shape)
 * is the same weights when the config says tie_word_embeddings
 * ("model.embed_tokens.weight", "transformer.wte.weight"...). */
int config_facts_is_input_embedding(const char *name);

#endif
