/*
 * daemon/facts.h — the catalog facts of a revision that come from its
 * files rather than its card: config.json (architecture, sizes, context
 * length) and the parameter count and bytes per dtype; plus a short card
 * text for search. Called by describe.c at import, on the staged files.
 */
#ifndef MD_FACTS_H
#define MD_FACTS_H

#include <jansson.h>

#include "registry/ingest.h"

#define FACTS_MAX_CARD_TEXT 4096   /* bytes of README body kept for search */
#define FACTS_MAX_README (64u << 10) /* bytes of README.md read for that text */

/*
 * Add to facts (an object the caller owns, from card_facts): architecture,
 * model_type, hidden_size, num_layers, num_heads, context_length,
 * vocab_size from config.json, and parameters + dtype_bytes. weights (may
 * be NULL) is wfacts_compute's result over the converted weight files
 * (registry/wfacts.h): its "parameters" and "dtype_bytes" when it has them
 * ("parameters_source": "converter"; its "tied_head" taken off when the
 * config says tie_word_embeddings; its "alternates", the weight files not
 * counted because they hold the model again, as "parameters_alternates"),
 * else (no weight file) null; a config fact that is null is taken from its
 * "gguf", so a GGUF-only repository has them too. Sets card.text (card may
 * be NULL) to the start of the README body. 0 or MD_ENOMEM.
 */
int facts_add(struct ingest *ing, json_t *facts, json_t *card, const json_t *weights);

#endif
