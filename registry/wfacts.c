/* registry/wfacts.c — see wfacts.h. */
#include "registry/wfacts.h"
#include "converters/converter.h"
#include "converters/pack.h"
#include "meta/config_facts.h"
#include "meta/wlayout.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WF_MAX_INT (1ull << 40)

/* A converted weight file's record, and whether it is an alternate. */
struct wfile {
	const json_t *f;
	unsigned char alt;
};

static int by_path(const void *a, const void *b)
{
	const json_t *x = ((const struct wfile *)a)->f, *y = ((const struct wfile *)b)->f;
	return strcmp(json_string_value(json_object_get(x, "path")),
		      json_string_value(json_object_get(y, "path")));
}

/* A GGUF metadata integer (any integer type) in 1..2^40, or 0. */
static json_int_t meta_int(const json_t *meta, const char *key)
{
	const json_t *v = json_object_get(json_object_get(meta, key), "value");
	const char *t = json_string_value(json_object_get(json_object_get(meta, key), "type"));
	if (!t || !json_is_integer(v) || (t[0] != 'u' && t[0] != 'i'))
		return 0;
	json_int_t n = json_integer_value(v);
	return n >= 1 && (uint64_t)n <= WF_MAX_INT ? n : 0;
}

/* The architecture facts of a GGUF pack's metadata into *out (new), or
 * leaves *out NULL when it names no architecture. */
static int gguf_facts(const json_t *meta, json_t **out)
{
	const char *arch = json_string_value(json_object_get(meta, "general.architecture"));
	if (!arch || !*arch || strlen(arch) > 64)
		return 0;
	json_t *g = json_pack("{s:s,s:s}", "architecture", arch, "model_type", arch);
	if (!g)
		return MD_ENOMEM;
	static const struct {
		const char *fact, *key;
	} keys[] = {
		{ "hidden_size", "embedding_length" }, { "num_layers", "block_count" },
		{ "num_heads", "attention.head_count" }, { "context_length", "context_length" },
		{ "vocab_size", "vocab_size" },
	};
	char k[128];
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		snprintf(k, sizeof k, "%s.%s", arch, keys[i].key);
		json_int_t n = meta_int(meta, k);
		if (n)
			json_object_set_new(g, keys[i].fact, json_integer(n));
	}
	if (!json_object_get(g, "vocab_size")) {
		const json_t *tok = json_object_get(meta, "tokenizer.ggml.tokens");
		size_t n = json_array_size(json_object_get(tok, "value"));
		if (n >= 1 && n <= WF_MAX_INT)
			json_object_set_new(g, "vocab_size", json_integer((json_int_t)n));
	}
	*out = g;
	return 0;
}

/* lm_head.weight and the input embeddings, as counted: whether the head
 * is a stored twin of an embedding (config_facts_is_input_embedding). */
struct tie {
	int head, emb;            /* seen */
	uint32_t hndim;
	uint64_t hshape[CONV_MAX_DIMS], hparams, hbytes;
	char hdtype[32];
	uint32_t endim[8];
	uint64_t eshape[8][CONV_MAX_DIMS];
};

static void note_tie(struct tie *tw, const struct pack_tensor *t, uint64_t ne, const char *dt)
{
	if (!strcmp(t->name, "lm_head.weight")) {
		tw->head = 1;
		tw->hndim = t->ndim;
		memcpy(tw->hshape, t->shape, sizeof tw->hshape);
		tw->hparams = ne;
		tw->hbytes = t->length;
		snprintf(tw->hdtype, sizeof tw->hdtype, "%s", dt);
	} else if (tw->emb < 8 && config_facts_is_input_embedding(t->name)) {
		tw->endim[tw->emb] = t->ndim;
		memcpy(tw->eshape[tw->emb], t->shape, sizeof tw->eshape[0]);
		tw->emb++;
	}
}

static int tied_twin(const struct tie *tw)
{
	for (int i = 0; tw->head && i < tw->emb; i++)
		if (tw->endim[i] == tw->hndim &&
		    !memcmp(tw->eshape[i], tw->hshape, tw->hndim * sizeof tw->hshape[0]))
			return 1;
	return 0;
}

/* Count the stored tensors of one pack whose names are not in seen yet. */
static int count_pack(const struct pack *p, json_t *seen, uint64_t *params, json_t *dtb,
		      struct tie *tw)
{
	for (size_t i = 0; i < pack_count(p); i++) {
		const struct pack_tensor *t = pack_tensor(p, i);
		if (t->alias >= 0 || json_object_get(seen, t->name))
			continue;
		if (json_object_set_new(seen, t->name, json_true()))
			return MD_ENOMEM;
		uint64_t ne = 1;
		for (uint32_t d = 0; d < t->ndim; d++)
			ne *= t->shape[d];   /* checked by pack_open */
		*params += ne;
		char buf[32];
		const char *n = conv_dtype_key(t->dtype, buf);
		note_tie(tw, t, ne, n);
		json_int_t had = json_integer_value(json_object_get(dtb, n));
		if (json_object_set_new(dtb, n, json_integer(had + (json_int_t)t->length)))
			return MD_ENOMEM;
	}
	return 0;
}

int wfacts_compute(const json_t *files, stindex_open_fn open_blob, void *arg, json_t **out)
{
	size_t n = json_array_size(files), nw = 0;
	struct wfile *w = calloc(n ? n : 1, sizeof *w);
	unsigned char *alt = NULL; /* per record of files (meta/wlayout.h) */
	json_t *seen = json_object(), *dtb = json_object(), *gguf = NULL, *alts = json_array();
	int rc = w && seen && dtb && alts ? wlayout_mark_files(files, 0, &alt) : MD_ENOMEM;
	uint64_t params = 0;
	struct tie tw = { 0 };
	*out = NULL;
	for (size_t i = 0; !rc && i < n; i++) {
		const json_t *f = json_array_get(files, i);
		if (json_string_value(json_object_get(f, "pack")) &&
		    json_string_value(json_object_get(f, "path")))
			w[nw++] = (struct wfile){ f, alt[i] };
	}
	if (!rc)
		qsort(w, nw, sizeof *w, by_path);
	size_t counted = 0;
	for (size_t i = 0; !rc && i < nw; i++) {
		const char *path = json_string_value(json_object_get(w[i].f, "path"));
		const char *hex = json_string_value(json_object_get(w[i].f, "pack"));
		const char *fmt = json_string_value(json_object_get(w[i].f, "format"));
		int want_meta = !gguf && fmt && !strcmp(fmt, "gguf");
		if (w[i].alt && json_array_append_new(alts, json_string(path))) {
			rc = MD_ENOMEM;
			break;
		}
		if (w[i].alt && !want_meta) /* an alternate still tells the architecture */
			continue;
		int fd = open_blob(arg, w[i].f, hex);
		if (fd < 0) {
			rc = md_fail_prefix(fd, path);
			break;
		}
		struct pack *p;
		rc = pack_open(fd, want_meta ? 0 : PACK_SKIP_META, &p);
		close(fd);
		if (rc) {
			md_fail_prefix(rc, path);
			break;
		}
		if (!w[i].alt) {
			rc = count_pack(p, seen, &params, dtb, &tw);
			counted++;
		}
		if (!rc && want_meta)
			rc = gguf_facts(pack_meta(p), &gguf);
		pack_close(p);
	}
	json_t *o = rc ? NULL : json_object();
	if (!rc && !o)
		rc = MD_ENOMEM;
	if (!rc && counted) {
		json_object_set_new(o, "parameters", json_integer((json_int_t)params));
		json_object_set(o, "dtype_bytes", dtb);
	}
	if (!rc && json_array_size(alts))
		json_object_set(o, "alternates", alts);
	if (!rc && gguf)
		json_object_set(o, "gguf", gguf);
	if (!rc && tied_twin(&tw) &&
	    json_object_set_new(o, "tied_head", json_pack("{s:I,s:s,s:I}", "parameters",
							  (json_int_t)tw.hparams, "dtype", tw.hdtype,
							  "bytes", (json_int_t)tw.hbytes)))
		rc = MD_ENOMEM;
	free(w);
	free(alt);
	json_decref(seen);
	json_decref(dtb);
	json_decref(gguf);
	json_decref(alts);
	if (rc)
		json_decref(o);
	else
		*out = o;
	return rc;
}
