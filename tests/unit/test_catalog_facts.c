/* Unit tests for the catalog's pure parsers: config.json facts, the
 * weight files that count, count/size units and search words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/units.h"
#include "meta/config_facts.h"
#include "meta/wlayout.h"
#include "registry/index.h"

static json_t *cfg(const char *s)
{
	json_t *o;
	assert_int_equal(config_facts_parse(s, s ? strlen(s) : 0, &o), 0);
	return o;
}

static json_int_t geti(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_config_llama(void **state)
{
	(void)state;
	json_t *o = cfg("{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\","
			"\"hidden_size\":4096,\"num_hidden_layers\":32,\"num_attention_heads\":32,"
			"\"max_position_embeddings\":131072,\"vocab_size\":128256,"
			"\"tie_word_embeddings\":false}");
	assert_string_equal(json_string_value(json_object_get(o, "architecture")), "LlamaForCausalLM");
	assert_int_equal(geti(o, "hidden_size"), 4096);
	assert_int_equal(geti(o, "num_layers"), 32);
	assert_int_equal(geti(o, "num_heads"), 32);
	assert_int_equal(geti(o, "context_length"), 131072);
	assert_int_equal(geti(o, "vocab_size"), 128256);
	assert_true(json_is_false(json_object_get(o, "tie_word_embeddings")));
	json_decref(o);
}

static void test_config_variants(void **state)
{
	(void)state;
	/* GPT-2 names */
	json_t *o = cfg("{\"model_type\":\"gpt2\",\"n_embd\":768,\"n_layer\":12,\"n_head\":12,"
			"\"n_positions\":1024,\"vocab_size\":50257}");
	assert_string_equal(json_string_value(json_object_get(o, "architecture")), "gpt2");
	assert_int_equal(geti(o, "hidden_size"), 768);
	assert_int_equal(geti(o, "num_layers"), 12);
	assert_int_equal(geti(o, "context_length"), 1024);
	assert_true(json_is_null(json_object_get(o, "tie_word_embeddings")));
	json_decref(o);
	/* seq_length (ChatGLM-style) and text_config (multimodal) */
	o = cfg("{\"architectures\":[\"LlavaForConditionalGeneration\"],\"text_config\":"
		"{\"hidden_size\":4096,\"num_hidden_layers\":32,\"seq_length\":4096,"
		"\"vocab_size\":32064}}");
	assert_int_equal(geti(o, "hidden_size"), 4096);
	assert_int_equal(geti(o, "context_length"), 4096);
	assert_int_equal(geti(o, "vocab_size"), 32064);
	json_decref(o);
}

static void test_config_hostile(void **state)
{
	(void)state;
	const char *bad[] = {
		NULL, "", "not json", "[1,2,3]", "{\"hidden_size\":1,\"hidden_size\":2}",
		"{\"hidden_size\":-5,\"num_hidden_layers\":1e300,\"vocab_size\":\"big\","
		"\"max_position_embeddings\":99999999999999999,\"architectures\":[\"a\\u0007b\"]}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *o = cfg(bad[i]);
		assert_true(json_is_null(json_object_get(o, "hidden_size")));
		assert_true(json_is_null(json_object_get(o, "num_layers")));
		assert_true(json_is_null(json_object_get(o, "vocab_size")));
		assert_true(json_is_null(json_object_get(o, "context_length")));
		assert_true(json_is_null(json_object_get(o, "architecture"))); /* control char */
		json_decref(o);
	}
}

/* One parser for --limit-rate and limit_rate: the same forms, nothing after
 * the unit, M meaning 2^20 as for sizes (MB: 10^6). */
static void test_units_parse_rate(void **state)
{
	(void)state;
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "50M", 50ull << 20 }, { "50m", 50ull << 20 }, { "50MiB", 50ull << 20 },
		{ "50mib", 50ull << 20 }, { "50MB", 50000000ull }, { "1048576", 1048576 },
		{ "100B", 100 }, { "512k", 512ull << 10 }, { "1.5G", 3ull << 29 }, { "0", 0 },
	};
	uint64_t v;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (units_parse_rate(ok[i].s, "limit_rate", &v))
			fail_msg("%s refused: %s", ok[i].s, md_errmsg(MD_EINVAL));
		assert_int_equal(v, ok[i].v);
	}
	const char *bad[] = { "50Mxyz", "50MBx", "50MiBs", "50 M", "M", "", "-5M", "50M/s", "nan", "1e40" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (units_parse_rate(bad[i], "--limit-rate", &v) != MD_EINVAL)
			fail_msg("%s accepted", bad[i]);
		const char *m = md_errmsg(MD_EINVAL);
		assert_int_equal(strncmp(m, "--limit-rate '", 14), 0);
		assert_null(strchr(m, '\n'));
	}
}

static void test_units(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(units_parse_count("7B", &v), 0);
	assert_int_equal(v, 7000000000ull);
	assert_int_equal(units_parse_count("350M", &v), 0);
	assert_int_equal(v, 350000000ull);
	assert_int_equal(units_parse_count("1.5e9", &v), 0);
	assert_int_equal(v, 1500000000ull);
	assert_int_equal(units_parse_count("125k", &v), 0);
	assert_int_equal(v, 125000);
	assert_int_equal(units_parse_count("42", &v), 0);
	assert_int_equal(v, 42);
	/* decimals a user types are exact: 8.03B is 8,030,000,000, not one less
	 * (8.03 * 1e9 is 8029999999.9999995 in binary floating point) */
	assert_int_equal(units_parse_count("8.03B", &v), 0);
	assert_int_equal(v, 8030000000ull);
	for (unsigned i = 0; i < 100000; i++) { /* every X.YYY with each suffix */
		static const char suf[] = "kMBT";
		static const uint64_t mul[] = { 1000ull, 1000000ull, 1000000000ull, 1000000000000ull };
		for (unsigned k = 0; k < 4; k++) {
			char s[32];
			snprintf(s, sizeof s, "%u.%03u%c", i / 1000, i % 1000, suf[k]);
			assert_int_equal(units_parse_count(s, &v), 0);
			assert_int_equal(v, (uint64_t)i * mul[k] / 1000);
			snprintf(s, sizeof s, "%u.%03uGB", i / 1000, i % 1000);
			assert_int_equal(units_parse_bytes(s, &v), 0);
			assert_int_equal(v, (uint64_t)i * 1000000ull);
		}
	}
	assert_int_equal(units_parse_count("1.5", &v), 0); /* a fraction still rounds down */
	assert_int_equal(v, 1);
	const char *badc[] = { "", "B", "-7B", "7X", "7BB", " 7B", "nan", "inf", "1e30", "0x10" };
	for (size_t i = 0; i < sizeof badc / sizeof badc[0]; i++)
		assert_int_equal(units_parse_count(badc[i], &v), MD_EINVAL);
	assert_int_equal(units_parse_bytes("24GiB", &v), 0);
	assert_int_equal(v, 24ull << 30);
	assert_int_equal(units_parse_bytes("24GB", &v), 0);
	assert_int_equal(v, 24000000000ull);
	assert_int_equal(units_parse_bytes("512MiB", &v), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(units_parse_bytes("80G", &v), 0);
	assert_int_equal(v, 80ull << 30);
	assert_int_equal(units_parse_bytes("1.5gib", &v), 0);
	assert_int_equal(v, 3ull << 29);
	const char *badb[] = { "", "GiB", "24 GiB", "24GiBs", "-1GB", "24Gb", "1e40" };
	for (size_t i = 0; i < sizeof badb / sizeof badb[0]; i++)
		assert_int_equal(units_parse_bytes(badb[i], &v), MD_EINVAL);
	uint64_t t[UNITS_MAX_CLASSES];
	size_t n;
	assert_int_equal(units_parse_thresholds(UNITS_DEFAULT_CLASSES, t, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(t[0], 100000000ull);
	assert_int_equal(t[3], 100000000000ull);
	assert_int_equal(units_parse_thresholds("1B,100M", t, &n), MD_EINVAL);
	assert_int_equal(units_parse_thresholds("0,1B", t, &n), MD_EINVAL);
	assert_int_equal(units_parse_thresholds("", t, &n), MD_EINVAL);
	char buf[24];
	units_class_part(100000000, buf, sizeof buf);
	assert_string_equal(buf, "100m");
	units_class_part(1500000000, buf, sizeof buf);
	assert_string_equal(buf, "1.5b");
	units_format_count(7241732096ull, buf, sizeof buf);
	assert_string_equal(buf, "7.24B");
	/* three significant digits also where rounding carries into the next
	 * digit or unit: not "100.0M", "10.00B" or "1000K" */
	static const struct { uint64_t v; const char *want; } fc[] = {
		{ 99990000ull, "100M" }, { 9996000000ull, "10.0B" }, { 999999ull, "1.00M" },
		{ 999499ull, "999K" }, { 99949999ull, "99.9M" }, { 6738415616ull, "6.74B" },
		{ 999999999999999ull, "1000T" }, { 999ull, "999" }, { 1000ull, "1.00K" },
	};
	for (size_t i = 0; i < sizeof fc / sizeof fc[0]; i++) {
		units_format_count(fc[i].v, buf, sizeof buf);
		assert_string_equal(buf, fc[i].want);
	}
}

struct words { char all[512]; };

static int collect(const char *w, size_t len, void *arg)
{
	struct words *ws = arg;
	(void)len;
	strcat(ws->all, w);
	strcat(ws->all, "|");
	return 0;
}

static void test_words(void **state)
{
	(void)state;
	struct words ws = { "" };
	const char *t = "Meta-Llama/Llama-3.1-8B-Instruct: a *chat* model; x ÜberModel";
	assert_int_equal(index_words(t, strlen(t), 2, collect, &ws), 0);
	assert_string_equal(ws.all, "meta|llama|llama|8b|instruct|chat|model|Übermodel|");
	ws.all[0] = 0;   /* names: one-letter words too */
	assert_int_equal(index_words(t, strlen(t), 1, collect, &ws), 0);
	assert_string_equal(ws.all, "meta|llama|llama|3|1|8b|instruct|a|chat|model|x|Übermodel|");
}

static void test_loader_names(void **state)
{
	(void)state;
	static const char *const yes[] = {
		"model.safetensors", "pytorch_model.bin", "diffusion_pytorch_model.safetensors",
		"adapter_model.bin", "model.fp16.safetensors", "model-00001-of-00003.safetensors",
		"pytorch_model-00002-of-00002.bin", "diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
	};
	static const char *const no[] = {
		"consolidated.safetensors", "model.gguf", "model.pt", "mymodel.safetensors",
		"model..safetensors", "model.fp16.bf16.safetensors", "model-1.safetensors",
		"model-00001-of-.safetensors", "model-x-of-2.safetensors", "models.safetensors",
		"model.bin", "pytorch_model.safetensors", "model-00001-of-00002.bin",
		"model.safetensors.index.json", "optimizer.bin", "model-00001-of-00002", ".safetensors",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(wlayout_is_loader(yes[i]));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		if (wlayout_is_loader(no[i]))
			fail_msg("%s taken for a loader file", no[i]);
	}
}

/* The '|'-joined paths that fn (wlayout_alternates or wlayout_defaults)
 * marks, the weight files being the paths with a weight file extension. */
typedef int (*mark_fn)(const char *const *, size_t, const unsigned char *, unsigned char *);

static void marked(mark_fn fn, const char *const *paths, size_t n, char *out)
{
	unsigned char w[32], a[32];
	assert_true(n <= 32);
	for (size_t i = 0; i < n; i++) {
		const char *e = strrchr(paths[i], '.');
		w[i] = e && (!strcmp(e, ".safetensors") || !strcmp(e, ".bin") || !strcmp(e, ".gguf") ||
			     !strcmp(e, ".pth") || !strcmp(e, ".pt") || !strcmp(e, ".ckpt"));
		a[i] = 7;
	}
	assert_int_equal(fn(paths, n, w, a), 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		assert_true(a[i] <= 1 && (w[i] || !a[i]));
		if (a[i])
			strcat(strcat(out, paths[i]), "|");
	}
}

static void alts(const char *const *paths, size_t n, char *out)
{
	marked(wlayout_alternates, paths, n, out);
}

static void test_alternates(void **state)
{
	(void)state;
	char out[1024];
	const char *mistral[] = { "consolidated.safetensors", "model-00001-of-00002.safetensors",
				  "model-00002-of-00002.safetensors", "model.safetensors.index.json",
				  "params.json", "model-Q4_K_M.gguf" };
	alts(mistral, 6, out);
	assert_string_equal(out, "consolidated.safetensors|model-Q4_K_M.gguf|");
	const char *llama[] = { "model.safetensors", "original/consolidated.00.pth",
				"original/params.json", "original/sub/x.safetensors",
				"checkpoint-500/model.safetensors", "checkpoint-500/optimizer.pt",
				"2_Dense/model.safetensors" };
	alts(llama, 7, out);
	assert_string_equal(out, "original/consolidated.00.pth|original/sub/x.safetensors|"
				 "checkpoint-500/optimizer.pt|");
	/* original/ counts where its parent has no loader file, even beside one of its own */
	const char *orig[] = { "original/consolidated.00.pth", "x/original/model.safetensors",
			       "x/model.bin", "y/original/a.pth", "y/model.safetensors" };
	alts(orig, 5, out);
	assert_string_equal(out, "y/original/a.pth|");
	const char *sd[] = { "model_index.json", "v1-5-pruned.ckpt", "v1-5-pruned-emaonly.safetensors",
			     "unet/diffusion_pytorch_model.safetensors",
			     "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.bin",
			     "text_encoder/model.safetensors", "safety_checker/pytorch_model.bin" };
	alts(sd, 8, out);
	assert_string_equal(out, "v1-5-pruned.ckpt|v1-5-pruned-emaonly.safetensors|");
	/* a pipeline pulled with only its single-file checkpoint counts it */
	alts(sd, 3, out);
	assert_string_equal(out, "");
	/* no loader file anywhere: everything counts (GGUF-only, legacy names) */
	const char *gguf[] = { "m-Q8_0.gguf", "m-F16.gguf", "sub/other.safetensors", "README.md" };
	alts(gguf, 4, out);
	assert_string_equal(out, "");
	/* a loader name that is not a weight file (not converted) decides nothing */
	const char *nw[] = { "model.safetensors", "consolidated.safetensors" };
	unsigned char w[2] = { 0, 1 }, a[2];
	assert_int_equal(wlayout_alternates(nw, 2, w, a), 0);
	assert_true(!a[0] && !a[1]);
	assert_int_equal(wlayout_alternates(NULL, 0, NULL, NULL), 0);
}

static void defaults(const char *const *paths, size_t n, char *out)
{
	marked(wlayout_defaults, paths, n, out);
}

static void test_defaults(void **state)
{
	(void)state;
	char out[1024];
	const char *bert[] = { "config.json", "model.safetensors", "pytorch_model.bin",
			       "model.gguf", "adapter_model.bin", "original/x.pth" };
	defaults(bert, 6, out);
	assert_string_equal(out, "model.safetensors|adapter_model.bin|");
	const char *shards[] = { "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
				 "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };
	defaults(shards, 4, out);
	assert_string_equal(out, "model-00001-of-00002.safetensors|model-00002-of-00002.safetensors|");
	const char *unet[] = { "unet/diffusion_pytorch_model.fp16.safetensors",
			       "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin",
			       "vae/diffusion_pytorch_model.fp16.safetensors",
			       "vae/diffusion_pytorch_model.fp16.bin",
			       "te/model.fp16.safetensors", "te/model.bf16.safetensors",
			       "gguf/a-Q4.gguf", "gguf/a-Q8.gguf" };
	defaults(unet, 9, out);
	assert_string_equal(out, "unet/diffusion_pytorch_model.safetensors|"
				 "vae/diffusion_pytorch_model.fp16.safetensors|"
				 "te/model.fp16.safetensors|te/model.bf16.safetensors|"
				 "gguf/a-Q4.gguf|gguf/a-Q8.gguf|");
	assert_int_equal(wlayout_defaults(NULL, 0, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_llama),
		cmocka_unit_test(test_config_variants),
		cmocka_unit_test(test_config_hostile),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_units_parse_rate),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_loader_names),
		cmocka_unit_test(test_alternates),
		cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
