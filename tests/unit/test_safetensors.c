/* safetensors converter: round trips (pack bytes, recipe bit-exact, exports
 * read back by an independent python reader) and the hostile corpus. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/conv_testutil.h"

static void test_model_roundtrip(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("model.safetensors", &c), 0);
	assert_string_equal(c.res.format, "safetensors");
	assert_int_equal(c.res.ntensors, 13);
	assert_int_equal(c.res.nstored, 13);
	uint64_t params = 16 * 33 + 35 + 64 * 64 + 100 + 200 + 9 + 3 + 256 + 32 + 1 + 0 +
			  2048 * 1100 + 2;
	assert_int_equal(c.res.params, params);
	int f32 = 0;
	for (size_t i = 0; i < c.res.ndtypes; i++)
		if (c.res.dtypes[i].dtype == CONV_DT_F32) {
			f32 = 1;
			assert_int_equal(c.res.dtypes[i].tensors, 4);
			assert_int_equal(c.res.dtypes[i].bytes, (16 * 33 + 1 + 2048 * 1100) * 4);
		}
	assert_true(f32);
	/* the recipe keeps only the header bytes as literals */
	assert_true(c.res.recipe_literal < 4096);
	assert_true(c.res.pack_size < c.size + 14 * 4096 + 8192);
	fx_check_roundtrip(&c);
	/* table order is file order; metadata kept */
	assert_string_equal(pack_tensor(c.p, 0)->name, "model.embed.weight");
	assert_int_equal(pack_tensor(c.p, 0)->ndim, 2);
	assert_int_equal(pack_tensor(c.p, 0)->shape[1], 33);
	const struct pack_tensor *e = pack_find(c.p, "empty");
	assert_non_null(e);
	assert_int_equal(e->length, 0);
	assert_non_null(pack_find(c.p, "d\xc3\xa9j\xc3\xa0.vu"));
	assert_int_equal(pack_find(c.p, "fp4.weight")->dtype, CONV_DT_F4);
	assert_int_equal(pack_find(c.p, "fp4.weight")->length, 16);
	assert_string_equal(json_string_value(json_object_get(pack_meta(c.p), "note")),
			    "caf\xc3\xa9");
	assert_string_equal(pack_format(c.p), "safetensors");
	/* fresh safetensors export: an independent reader sees the same tensors */
	int out = fx_tmp();
	assert_int_equal(export_safetensors(c.p, &c.pack, out), 0);
	assert_int_equal(fx_save(out, "export.safetensors"), 0);
	close(out);
	char buf[4096];
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s compare %s/model.safetensors "
			       "%s/export.safetensors 2>&1", fx_script, fx_dir, fx_dir), 0);
	assert_string_equal(buf, "OK 13\n");
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s numpy %s/export.safetensors "
			       "2>&1", fx_script, fx_dir), 0);
	assert_non_null(strstr(buf, "OK 11 {\"format\": \"pt\", \"note\": \"caf\\u00e9\"}"));
	/* GGUF has no U8/BOOL/F8/F4 types: refused, naming the tensor */
	out = fx_tmp();
	assert_int_equal(export_gguf(c.p, &c.pack, out), MD_EUNSUP);
	assert_non_null(strstr(md_errmsg(MD_EUNSUP), "u8"));
	close(out);
	fx_conv_free(&c);
}

/* Placed files (conv_testutil.h: fx_check_placed), from a head holding
 * just the header and from the whole file. */
static void test_placed(void **state)
{
	(void)state;
	const char *names[] = { "model.safetensors", "tiny.safetensors", "plain.safetensors",
				"nullmeta.safetensors" };
	for (size_t i = 0; i < 4; i++) {
		struct fx_conv c;
		assert_int_equal(fx_convert(names[i], &c), 0);
		uint8_t lb[8];
		assert_int_equal(util_pread_full(c.src, lb, 8, 0), 8);
		uint64_t hl = 0;
		for (int k = 7; k >= 0; k--)
			hl = hl << 8 | lb[k];
		fx_check_placed(names[i], &c, 8 + hl, 0);
		fx_check_placed(names[i], &c, c.size, 1);
		fx_conv_free(&c);
	}
}

static void test_small_files(void **state)
{
	(void)state;
	const char *names[] = { "tiny.safetensors", "model-00001-of-00002.safetensors",
				"plain.safetensors", "nullmeta.safetensors",
				"emptykey.safetensors" };
	for (size_t i = 0; i < 5; i++) {
		struct fx_conv c;
		assert_int_equal(fx_convert(names[i], &c), 0);
		fx_check_roundtrip(&c);
		fx_conv_free(&c);
	}
}

static void test_export_gguf(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("plain.safetensors", &c), 0);
	int out = fx_tmp();
	assert_int_equal(export_gguf(c.p, &c.pack, out), 0);
	assert_int_equal(fx_save(out, "plain-export.gguf"), 0);
	close(out);
	char buf[4096];
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s compare %s/plain.safetensors "
			       "%s/plain-export.gguf 2>&1", fx_script, fx_dir, fx_dir), 0);
	assert_string_equal(buf, "OK 7\n");
	/* and the exported GGUF converts again, to the same tensors */
	struct fx_conv g;
	assert_int_equal(fx_convert("plain-export.gguf", &g), 0);
	fx_check_roundtrip(&g);
	for (size_t i = 0; i < pack_count(c.p); i++) {
		const struct pack_tensor *a = pack_tensor(c.p, i);
		const struct pack_tensor *b = pack_find(g.p, a->name);
		assert_non_null(b);
		assert_memory_equal(a->digest, b->digest, 32);
	}
	fx_conv_free(&g);
	fx_conv_free(&c);
}

static void test_not_weights(void **state)
{
	(void)state;
	const char *names[] = { "config.json", "model.safetensors.index.json" };
	for (size_t i = 0; i < 2; i++) {
		struct fx_conv c;
		assert_int_equal(fx_convert(names[i], &c), MD_EUNSUP);
		assert_non_null(strstr(md_errmsg(MD_EUNSUP), "not a weight file"));
		struct stat st;
		assert_int_equal(fstat(c.pack, &st), 0);
		assert_int_equal(st.st_size, 0);
		assert_int_equal(fstat(c.recipe, &st), 0);
		assert_int_equal(st.st_size, 0);
		fx_conv_free(&c);
	}
}

/* Extra keys in a tensor entry are ignored, as the reference crate does
 * (TensorInfo derives Deserialize without deny_unknown_fields); the
 * original, extra key included, is still reproduced bit-exactly. */
static void test_extra_key(void **state)
{
	(void)state;
	struct fx_conv c;
	int rc = fx_convert("st_extrakey.safetensors", &c);
	if (rc)
		fail_msg("%s", md_errmsg(rc));
	assert_int_equal(c.res.ntensors, 1);
	assert_string_equal(pack_tensor(c.p, 0)->name, "w");
	fx_check_roundtrip(&c);
	fx_conv_free(&c);
}

/* DESIGN 7: a file cannot make the store grow past 2 x its size + 64 MiB
 * (CONV_PACK_SLACK); small real models are far inside that. */
static void test_pack_growth(void **state)
{
	(void)state;
	fx_expect_refused("st_manytiny.safetensors",
			  "st_manytiny.safetensors: refused: 50000 tensors would need a 2");
	struct fx_conv c;
	int rc = fx_convert("st_manytiny.safetensors", &c);
	assert_int_equal(rc, MD_EREFUSED);
	assert_non_null(strstr(md_errmsg(rc), " MB pack for a 3."));
	fx_conv_free(&c);
	assert_int_equal(fx_convert("small_many.safetensors", &c), 0);
	assert_int_equal(c.res.ntensors, 100);
	assert_true(c.res.pack_size > c.size);   /* padded, yet allowed */
	fx_check_roundtrip(&c);
	fx_conv_free(&c);
}

static void test_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *file, *needle;
	} cases[] = {
		{ "st_hdr4g.safetensors", "header length 4294967296 exceeds 100000000" },
		{ "st_hdrpast.safetensors", "runs past the end" },
		{ "st_overlap.safetensors", "overlap the previous tensor" },
		{ "st_hole.safetensors", "leave a hole" },
		{ "st_overflow.safetensors", "overflows" },
		{ "st_trailing.safetensors", "trailing bytes" },
		{ "st_truncated.safetensors", "truncated" },
		{ "st_dup.safetensors", "duplicate object key" },
		{ "st_badutf8.safetensors", "not valid UTF-8" },
		{ "st_nul.safetensors", "header JSON" },
		{ "st_baddtype.safetensors", "unknown dtype \"F7\"" },
		{ "st_metanotstr.safetensors", "__metadata__ value \"a\" is not a string" },
		{ "st_notobject.safetensors", "does not start with '{'" },
		{ "st_lenmismatch.safetensors", "need 16" },
		{ "st_negshape.safetensors", "shape[0] is not a non-negative integer" },
		{ "st_f4odd.safetensors", "do not fill whole bytes" },
		{ "st_badjson.safetensors", "header JSON" },
		{ "st_short.safetensors", "shorter than the 8-byte header length" },
		{ "st_backwards.safetensors", "end before they start" },
		{ "st_dims9.safetensors", "9 dimensions" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		fx_expect_refused(cases[i].file, cases[i].needle);
	/* the message starts with the path */
	struct fx_conv c;
	int rc = fx_convert("st_hdr4g.safetensors", &c);
	assert_int_equal(rc, MD_ETOOBIG);
	assert_int_equal(strncmp(md_errmsg(rc), "st_hdr4g.safetensors: safetensors: ", 35), 0);
	fx_conv_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_roundtrip),
		cmocka_unit_test(test_small_files),
		cmocka_unit_test(test_placed),
		cmocka_unit_test(test_export_gguf),
		cmocka_unit_test(test_not_weights),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_pack_growth),
		cmocka_unit_test(test_extra_key),
	};
	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
