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

/* ---- FALLBACK: safetensors headers ------------------------------------------ */

struct config_facts_acc {
	json_t *tensors;   /* name -> [dtype, elements, bytes, "d0,d1,..."] */
};

struct config_facts_acc *config_facts_acc_new(void)
{
	struct config_facts_acc *a = calloc(1, sizeof *a);
	if (a && !(a->tensors = json_object())) {
		free(a);
		a = NULL;
	}
	return a;
}

void config_facts_acc_free(struct config_facts_acc *a)
{
	if (!a)
		return;
	json_decref(a->tensors);
	free(a);
}

#define MAX_ELEMS ((uint64_t)1 << 62)

/* Bytes per element of the safetensors dtypes with whole-byte elements; 0
 * for others (F4, F6_*: packed sub-byte types, not cross-checked). */
static unsigned dtype_size(const char *dt)
{
	static const struct { const char *n; unsigned sz; } t[] = {
		{ "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
		{ "I16", 2 }, { "I8", 1 }, { "U64", 8 }, { "U32", 4 }, { "U16", 2 }, { "U8", 1 },
		{ "BOOL", 1 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 }, { "F8_E8M0", 1 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(dt, t[i].n))
			return t[i].sz;
	return 0;
}

/* One tensor entry -> [dtype, elements, bytes, shape] or an error. */
static int tensor_entry(const char *what, const char *name, json_t *t, uint64_t data_len,
			json_t **out)
{
	const char *dt = clean_str(json_object_get(t, "dtype"));
	json_t *shape = json_object_get(t, "shape"), *offs = json_object_get(t, "data_offsets");
	if (!json_is_object(t) || !dt || strlen(dt) > 16 || !json_is_array(shape) ||
	    json_array_size(shape) > 64 || !json_is_array(offs) || json_array_size(offs) != 2)
		return md_fail(MD_ECORRUPT, "%s: tensor %.100s: bad header entry", what, name);
	json_int_t b0 = json_integer_value(json_array_get(offs, 0));
	json_int_t b1 = json_integer_value(json_array_get(offs, 1));
	if (!json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)) ||
	    b0 < 0 || b1 < b0 || (uint64_t)b1 > data_len)
		return md_fail(MD_ECORRUPT, "%s: tensor %.100s: data_offsets out of range", what, name);
	uint64_t n = 1;
	char sk[64 * 21 + 1];
	size_t sl = 0;
	size_t i;
	json_t *d;
	sk[0] = 0;
	json_array_foreach(shape, i, d) {
		json_int_t v = json_integer_value(d);
		if (!json_is_integer(d) || v < 0)
			return md_fail(MD_ECORRUPT, "%s: tensor %.100s: bad shape", what, name);
		if (v && n > MAX_ELEMS / (uint64_t)v)
			return md_fail(MD_ECORRUPT, "%s: tensor %.100s: shape overflows", what, name);
		n *= (uint64_t)v;
		sl += (size_t)snprintf(sk + sl, sizeof sk - sl, "%s%lld", i ? "," : "", (long long)v);
	}
	unsigned es = dtype_size(dt);
	if (es && (n > MAX_ELEMS / es || n * es != (uint64_t)(b1 - b0)))
		return md_fail(MD_ECORRUPT, "%s: tensor %.100s: %lld bytes for shape [%s] of %s", what,
			       name, (long long)(b1 - b0), sk, dt);
	*out = json_pack("[s,I,I,s]", dt, (json_int_t)n, (json_int_t)(b1 - b0), sk);
	return *out ? 0 : md_fail(MD_ENOMEM, "%s: out of memory", what);
}

int config_facts_add_safetensors(struct config_facts_acc *a, int fd, const char *what)
{
	struct stat sb;
	unsigned char lb[8];
	if (fstat(fd, &sb) < 0)
		return md_fail(MD_EIO, "%s: %s", what, strerror(errno));
	if (util_pread_full(fd, lb, 8, 0) != 8)
		return md_fail(MD_ECORRUPT, "%s: shorter than a safetensors header", what);
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | lb[i];
	/* bound the length read from the file before using it */
	if (hl < 2 || hl > CONFIG_FACTS_MAX_HEADER)
		return md_fail(MD_ECORRUPT, "%s: safetensors header of %llu bytes (cap %u)", what,
			       (unsigned long long)hl, CONFIG_FACTS_MAX_HEADER);
	if ((uint64_t)sb.st_size < 8 + hl)
		return md_fail(MD_ECORRUPT, "%s: safetensors header runs past the end of the file",
			       what);
	char *buf = malloc(hl);
	if (!buf)
		return md_fail(MD_ENOMEM, "%s: out of memory", what);
	if (util_pread_full(fd, buf, hl, 8) != (ssize_t)hl) {
		free(buf);
		return md_fail(MD_EIO, "%s: short read", what);
	}
	json_error_t e;
	json_t *h = json_loadb(buf, hl, JSON_REJECT_DUPLICATES, &e);
	free(buf);
	if (!json_is_object(h)) {
		json_decref(h);
		return md_fail(MD_ECORRUPT, "%s: safetensors header is not a JSON object", what);
	}
	uint64_t data_len = (uint64_t)sb.st_size - 8 - hl;
	json_t *add = json_object();
	const char *name;
	json_t *t;
	int rc = add ? 0 : md_fail(MD_ENOMEM, "%s: out of memory", what);
	json_object_foreach(h, name, t) {
		if (rc)
			break;
		if (!strcmp(name, "__metadata__"))
			continue;
		json_t *ent;
		if ((rc = tensor_entry(what, name, t, data_len, &ent)))
			break;
		if (json_object_set_new(add, name, ent))
			rc = md_fail(MD_ENOMEM, "%s: out of memory", what);
	}
	if (!rc && json_object_size(a->tensors) + json_object_size(add) > CONFIG_FACTS_MAX_TENSORS)
		rc = md_fail(MD_ETOOBIG, "%s: more than %d tensors", what, CONFIG_FACTS_MAX_TENSORS);
	/* a tensor already seen in another shard keeps its first entry */
	if (!rc && json_object_update_missing(a->tensors, add))
		rc = md_fail(MD_ENOMEM, "%s: out of memory", what);
	json_decref(add);
	json_decref(h);
	return rc;
}

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

int config_facts_acc_result(struct config_facts_acc *a, int tie, uint64_t *params,
			    json_t **dtype_bytes)
{
	*params = 0;
	*dtype_bytes = json_object();
	if (!*dtype_bytes)
		return md_fail(MD_ENOMEM, "out of memory");
	const char *skip = NULL;
	json_t *head = json_object_get(a->tensors, "lm_head.weight");
	if (tie && head) {
		for (size_t i = 0; embeddings[i]; i++) {
			json_t *emb = json_object_get(a->tensors, embeddings[i]);
			if (emb && json_equal(json_array_get(emb, 3), json_array_get(head, 3))) {
				skip = "lm_head.weight";
				break;
			}
		}
	}
	const char *name;
	json_t *t;
	json_object_foreach(a->tensors, name, t) {
		if (skip && !strcmp(name, skip))
			continue;
		const char *dt = json_string_value(json_array_get(t, 0));
		*params += (uint64_t)json_integer_value(json_array_get(t, 1));
		json_int_t b = json_integer_value(json_array_get(t, 2));
		json_int_t have = json_integer_value(json_object_get(*dtype_bytes, dt));
		if (json_object_set_new(*dtype_bytes, dt, json_integer(have + b))) {
			json_decref(*dtype_bytes);
			*dtype_bytes = NULL;
			return md_fail(MD_ENOMEM, "out of memory");
		}
	}
	return 0;
}
