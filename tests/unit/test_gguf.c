/* GGUF converter: typed metadata, block types, alignment, round trips,
 * exports read back independently, and the hostile corpus. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/conv_testutil.h"

static json_int_t typed_int(const json_t *meta, const char *key, const char *type)
{
	const json_t *v = json_object_get(meta, key);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "type")), type);
	return json_integer_value(json_object_get(v, "value"));
}

static void test_model(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("model.gguf", &c), 0);
	assert_string_equal(c.res.format, "gguf");
	assert_int_equal(c.res.ntensors, 6);
	fx_check_roundtrip(&c);
	const struct pack_tensor *q = pack_find(c.p, "blk.0.attn_q.weight");
	assert_non_null(q);
	assert_int_equal(q->dtype, CONV_DT_GGML + 8);
	assert_int_equal(q->ndim, 2);
	assert_int_equal(q->shape[0], 4);
	assert_int_equal(q->shape[1], 64);
	assert_int_equal(q->length, 4 * 64 / 32 * 34);
	assert_string_equal(conv_dtype_str(q->dtype), "GGML_Q8_0");
	assert_int_equal(pack_find(c.p, "blk.0.ffn.weight")->length, 2 * 512 / 256 * 144);
	assert_int_equal(pack_find(c.p, "token_embd.weight")->dtype, CONV_DT_F32);
	assert_int_equal(pack_find(c.p, "blk.0.bf")->dtype, CONV_DT_BF16);
	struct pack *quick;
	assert_int_equal(pack_open(c.pack, PACK_SKIP_META, &quick), 0);
	assert_int_equal(json_object_size(pack_meta(quick)), 0);
	assert_int_equal(pack_count(quick), 6);
	pack_close(quick);
	const json_t *m = pack_meta(c.p);
	assert_string_equal(json_string_value(json_object_get(m, "general.architecture")), "llama");
	assert_int_equal(typed_int(m, "general.alignment", "u32"), 64);
	assert_int_equal(typed_int(m, "t.u8", "u8"), 200);
	assert_int_equal(typed_int(m, "t.i8", "i8"), -5);
	assert_int_equal(typed_int(m, "t.u16", "u16"), 60000);
	assert_int_equal(typed_int(m, "t.i16", "i16"), -300);
	assert_int_equal(typed_int(m, "t.u32", "u32"), 4000000000LL);
	assert_int_equal(typed_int(m, "t.i32", "i32"), -7);
	assert_int_equal((uint64_t)typed_int(m, "t.u64", "u64"), UINT64_MAX);
	assert_int_equal(typed_int(m, "t.i64", "i64"), -(1LL << 62));
	const json_t *tok = json_object_get(m, "tokenizer.ggml.tokens");
	assert_string_equal(json_string_value(json_object_get(tok, "elem")), "string");
	assert_int_equal(json_array_size(json_object_get(tok, "value")), 4);
	assert_string_equal(json_string_value(json_array_get(json_object_get(tok, "value"), 2)),
			    "h\xc3\xa9");
	assert_true(json_is_true(json_object_get(json_object_get(m, "t.bool"), "value")));
	assert_true(json_real_value(json_object_get(json_object_get(m, "t.f32"), "value")) == 0.5);
	/* GGUF export: same tensors for an independent reader; converts back to
	 * the same metadata (general.alignment 64 kept) and the same tensor digests */
	int out = fx_tmp();
	assert_int_equal(export_gguf(c.p, &c.pack, out), 0);
	assert_int_equal(fx_save(out, "model-export.gguf"), 0);
	close(out);
	char buf[4096];
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s compare %s/model.gguf "
			       "%s/model-export.gguf 2>&1", fx_script, fx_dir, fx_dir), 0);
	assert_string_equal(buf, "OK 6\n");
	struct fx_conv g;
	assert_int_equal(fx_convert("model-export.gguf", &g), 0);
	json_t *m1 = json_deep_copy(m), *m2 = json_deep_copy(pack_meta(g.p));
	assert_true(json_equal(m1, m2));
	json_decref(m1);
	json_decref(m2);
	for (size_t i = 0; i < pack_count(c.p); i++)
		assert_memory_equal(pack_tensor(c.p, i)->digest, pack_tensor(g.p, i)->digest, 32);
	fx_conv_free(&g);
	/* block types have no safetensors form */
	out = fx_tmp();
	assert_int_equal(export_safetensors(c.p, &c.pack, out), MD_EUNSUP);
	assert_non_null(strstr(md_errmsg(MD_EUNSUP), "blk.0.attn_q.weight"));
	close(out);
	fx_conv_free(&c);
}

static void test_plain_to_safetensors(void **state)
{
	(void)state;
	struct fx_conv c;
	assert_int_equal(fx_convert("plain.gguf", &c), 0);
	fx_check_roundtrip(&c);
	int out = fx_tmp();
	assert_int_equal(export_safetensors(c.p, &c.pack, out), 0);
	assert_int_equal(fx_save(out, "plain-export.safetensors"), 0);
	close(out);
	char buf[4096];
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s compare %s/plain.gguf "
			       "%s/plain-export.safetensors 2>&1", fx_script, fx_dir, fx_dir), 0);
	assert_string_equal(buf, "OK 4\n");
	assert_int_equal(fx_sh(buf, sizeof buf, "/usr/bin/python3 %s numpy "
			       "%s/plain-export.safetensors 2>&1", fx_script, fx_dir), 0);
	/* string metadata carried as __metadata__ */
	assert_non_null(strstr(buf, "OK 4 {\"general.architecture\": \"test\"}"));
	fx_conv_free(&c);
}

static void test_edge_files(void **state)
{
	(void)state;
	const char *names[] = { "notensors.gguf", "unpadded.gguf" };
	for (size_t i = 0; i < 2; i++) {
		struct fx_conv c;
		assert_int_equal(fx_convert(names[i], &c), 0);
		fx_check_roundtrip(&c);
		fx_conv_free(&c);
	}
}

/* A GGUF file is placed like a safetensors one (fx_check_placed): from a
 * head ending where the first tensor's bytes start, and from the whole
 * file. A head shorter than the header fails to plan, and not with
 * MD_EUNSUP, so that a pull asks for more. */
static void test_placed(void **state)
{
	(void)state;
	const char *names[] = { "model.gguf", "plain.gguf", "notensors.gguf", "unpadded.gguf" };
	for (size_t i = 0; i < 4; i++) {
		struct fx_conv c;
		assert_int_equal(fx_convert(names[i], &c), 0);
		uint64_t data = c.size;
		for (size_t k = 0; k < pack_count(c.p); k++)
			if (pack_tensor(c.p, k)->src_off < data)
				data = pack_tensor(c.p, k)->src_off;
		fx_check_placed(names[i], &c, data, 0);
		fx_check_placed(names[i], &c, c.size, 1);
		if (pack_count(c.p)) {
			int head = fx_head(c.src, 40);
			struct pack_seg *seg = NULL;
			size_t nseg;
			uint64_t psize;
			int rc = conv_plan(head, c.size, names[i], &seg, &nseg, &psize);
			assert_true(rc < 0 && rc != MD_EUNSUP);
			assert_null(seg);
			close(head);
		}
		fx_conv_free(&c);
	}
}

static void test_hostile(void **state)
{
	(void)state;
	static const struct {
		const char *file, *needle;
	} cases[] = {
		{ "g_huge_tensors.gguf", "1152921504606846976 tensors (at most 1000000)" },
		{ "g_huge_kv.gguf", "metadata records cannot fit" },
		{ "g_huge_string.gguf", "string of 1099511627776 bytes" },
		{ "g_huge_array.gguf", "array of 1099511627776 elements" },
		{ "g_bad_align.gguf", "general.alignment 48 is not a power of two" },
		{ "g_align_type.gguf", "general.alignment is not a u32" },
		{ "g_align_zero.gguf", "general.alignment 0 is not a power of two" },
		{ "g_unknown_type.gguf", "unknown or removed type 4" },
		{ "g_unknown_type2.gguf", "unknown or removed type 200" },
		{ "g_unknown_kvtype.gguf", "unknown value type 13" },
		{ "g_block.gguf", "not a multiple of the block size 32" },
		{ "g_bad_offset.gguf", "offset 64, expected 0" },
		{ "g_dup.gguf", "duplicate tensor name w" },
		{ "g_dupkey.gguf", "duplicate metadata key k" },
		{ "g_past_end.gguf", "past the end of the file" },
		{ "g_trailing.gguf", "4 trailing bytes" },
		{ "g_version1.gguf", "g_version1.gguf: refused: GGUF version 1 (only 2 and 3)" },
		{ "g_version4.gguf", "g_version4.gguf: refused: GGUF version 4 (only 2 and 3)" },
		{ "g_bigendian.gguf", "refused: GGUF version 50331648 (only 2 and 3; big-endian" },
		{ "g_dims5.gguf", "5 dimensions (at most 4)" },
		{ "g_nested.gguf", "nested arrays" },
		{ "g_ne_overflow.gguf", "element count overflows" },
		{ "g_bool2.gguf", "bool value 2" },
		{ "g_longname.gguf", "string of 64 bytes" },
		{ "g_badutf8.gguf", "not valid UTF-8" },
		{ "g_truncated_hdr.gguf", "truncated" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		fx_expect_refused(cases[i].file, cases[i].needle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_plain_to_safetensors),
		cmocka_unit_test(test_edge_files),
		cmocka_unit_test(test_placed),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
