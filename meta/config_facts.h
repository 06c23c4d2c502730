/*
 * meta/config_facts.h — catalog facts from a model's config.json, and the
 * input embedding names a stored lm_head.weight is tied to. A change to
 * what it reports raises DESCRIBE_VERSION (daemon/describe.h).
 *
 * Pure parsers: they read what they are given and know nothing of the
 * store. The input is untrusted.
 *
 * Hard caps (set here):
 *   CONFIG_FACTS_MAX_JSON   config.json examined: at most 4 MiB (a real one is
 *                           a few KiB); longer files yield no facts
 */
#ifndef MD_CONFIG_FACTS_H
#define MD_CONFIG_FACTS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CONFIG_FACTS_MAX_JSON (4u << 20)

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

/* 1 if name is an input embedding whose twin "lm_head.weight" (same shape)
 * is the same weights when the config says tie_word_embeddings
 * ("model.embed_tokens.weight", "transformer.wte.weight"...). */
int config_facts_is_input_embedding(const char *name);

#endif
