/* meta/config_facts.c — see config_facts.h. */
#include "meta/config_facts.h"
#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- config.json ---------------------------------------------------------- */

#define MAX_DIM ((json_int_t)1 << 40)

/* The first of keys that holds an integer in 1..2^40, in o or text_config. */
static json_t *first_int(json_t *cfg, const char *const *keys)
{
	json_t *objs[2] = { cfg, json_object_get(cfg, "text_config") };
	for (int k = 0; k < 2; k++) {
		if (!json_is_object(objs[k]))
			continue;
		for (size_t i = 0; keys[i]; i++) {
			json_t *v = json_object_get(objs[k], keys[i]);
			if (json_is_integer(v) && json_integer_value(v) > 0 &&
			    json_integer_value(v) <= MAX_DIM)
				return json_integer(json_integer_value(v));
		}
	}
	return json_null();
}

/* A short printable string (<= 200 bytes, no control characters), or NULL. */
static const char *clean_str(json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) > 200)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	return s;
}

int config_facts_parse(const char *buf, size_t len, json_t **out)
{
	static const char *const hidden[] = { "hidden_size", "n_embd", "d_model", "dim", NULL };
	static const char *const layers[] = { "num_hidden_layers", "n_layer", "num_layers",
					      "n_layers", NULL };
	static const char *const heads[] = { "num_attention_heads", "n_head", "num_heads",
					     "n_heads", NULL };
	static const char *const ctx[] = { "max_position_embeddings", "n_positions", "seq_length",
					   "max_seq_len", "max_sequence_length", "n_ctx", NULL };
	static const char *const vocab[] = { "vocab_size", "n_vocab", "padded_vocab_size", NULL };
	json_t *cfg = NULL;
	*out = NULL;
	if (buf && len <= CONFIG_FACTS_MAX_JSON)
		cfg = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (cfg && !json_is_object(cfg)) {
		json_decref(cfg);
		cfg = NULL;
	}
	json_t *o = json_object();
	if (!o) {
		json_decref(cfg);
		return md_fail(MD_ENOMEM, "config.json: out of memory");
	}
	const char *arch = clean_str(json_array_get(json_object_get(cfg, "architectures"), 0));
	const char *mtype = clean_str(json_object_get(cfg, "model_type"));
	json_t *tie = json_object_get(cfg, "tie_word_embeddings");
	if (!json_is_boolean(tie))
		tie = json_object_get(json_object_get(cfg, "text_config"), "tie_word_embeddings");
	int bad = 0;
	bad |= json_object_set_new(o, "architecture",
				   arch ? json_string(arch) : mtype ? json_string(mtype) : json_null());
	bad |= json_object_set_new(o, "model_type", mtype ? json_string(mtype) : json_null());
	bad |= json_object_set_new(o, "hidden_size", first_int(cfg, hidden));
	bad |= json_object_set_new(o, "num_layers", first_int(cfg, layers));
	bad |= json_object_set_new(o, "num_heads", first_int(cfg, heads));
	bad |= json_object_set_new(o, "context_length", first_int(cfg, ctx));
	bad |= json_object_set_new(o, "vocab_size", first_int(cfg, vocab));
	bad |= json_object_set_new(o, "tie_word_embeddings",
				   json_is_boolean(tie) ? json_boolean(json_is_true(tie)) : json_null());
	json_decref(cfg);
	if (bad) {
		json_decref(o);
		return md_fail(MD_ENOMEM, "config.json: out of memory");
	}
	*out = o;
	return 0;
}

/* ---- tied embeddings -------------------------------------------------------- */

/* Input embeddings whose twin lm_head.weight is dropped when tied. */
static const char *const embeddings[] = {
	"model.embed_tokens.weight", "transformer.wte.weight", "embed_tokens.weight",
	"transformer.word_embeddings.weight", "gpt_neox.embed_in.weight",
	"model.decoder.embed_tokens.weight", "transformer.embedding.word_embeddings.weight",
	NULL,
};

int config_facts_is_input_embedding(const char *name)
{
	for (size_t i = 0; embeddings[i]; i++)
		if (!strcmp(name, embeddings[i]))
			return 1;
	return 0;
}
