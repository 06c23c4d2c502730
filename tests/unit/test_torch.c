/*
 * Unit tests for the PyTorch converter (converters/torch.c), its pickle
 * interpreter (converters/pickle.c) and zip reader (converters/zipread.c).
 *
 * Fixtures come from tests/fixtures/make_torch.py run with /usr/bin/python3
 * (real torch.save) into a temporary directory: every good checkpoint has a
 * JSON list of what torch holds (name, dtype, shape, sha256 of the bytes,
 * alias), every hostile file an expected refusal detail (hostile.json).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"
#include "converters/convert.h"
#include "converters/converter.h"
#include "converters/pack.h"
#include "converters/recipe.h"
#include "converters/pickle.h"
#include "converters/zipread.h"

extern const struct converter conv_torch;

static char fxdir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(fxdir, sizeof fxdir, "/tmp/md-torch-XXXXXX");
	if (!mkdtemp(fxdir))
		return -1;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/fixtures/make_torch.py %s", fxdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fxdir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *fx(const char *name)
{
	static char p[512];
	snprintf(p, sizeof p, "%s/%s", fxdir, name);
	return p;
}

/* Parse a fixture; returns rc, fd left open in *fdp (or -1). */
static int parse_file(const char *path, struct conv_info *ci, int *fdp)
{
	memset(ci, 0, sizeof *ci);
	md_clearerr();
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	int rc = conv_torch.parse(fd, (uint64_t)sb.st_size, ci);
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	return rc;
}

static void range_sha(int fd, uint64_t off, uint64_t len, char hex[65])
{
	uint8_t *b = malloc(len ? len : 1);
	assert_non_null(b);
	assert_int_equal(util_pread_full(fd, b, len, (off_t)off), (ssize_t)len);
	sha256_hex(b, len, hex);
	free(b);
}

static void check_good(const char *name)
{
	char jpath[600];
	snprintf(jpath, sizeof jpath, "%s.json", fx(name));
	json_error_t je;
	json_t *want = json_load_file(jpath, 0, &je);
	assert_non_null(want);
	struct conv_info ci;
	int fd;
	int rc = parse_file(fx(name), &ci, &fd);
	if (rc)
		fail_msg("%s: %s", name, md_errmsg(rc));
	assert_string_equal(ci.format, "torch");
	assert_int_equal(ci.n, json_array_size(want));
	for (size_t i = 0; i < ci.n; i++) {
		json_t *w = json_array_get(want, i);
		struct conv_tensor *t = &ci.t[i];
		assert_string_equal(t->name, json_string_value(json_object_get(w, "name")));
		assert_string_equal(conv_dtype_name(t->dtype), json_string_value(json_object_get(w, "dtype")));
		json_t *shape = json_object_get(w, "shape");
		assert_int_equal(t->ndim, json_array_size(shape));
		uint64_t numel = 1;
		for (uint32_t d = 0; d < t->ndim; d++) {
			assert_int_equal(t->shape[d], json_integer_value(json_array_get(shape, d)));
			numel *= t->shape[d];
		}
		assert_int_equal(t->len, numel * conv_dtype_bits(t->dtype) / 8);
		char hex[65];
		if (t->stride) {   /* a view, gathered as the pack stores it */
			struct stat sb;
			assert_int_equal(fstat(fd, &sb), 0);
			uint8_t *src = malloc((size_t)sb.st_size + 1), *g = malloc(t->len + 1);
			assert_int_equal(util_pread_full(fd, src, (size_t)sb.st_size, 0), sb.st_size);
			conv_gather(src, t, 0, t->len, g);
			sha256_hex(g, t->len, hex);
			free(src);
			free(g);
		} else {
			range_sha(fd, t->src_off, t->len, hex);
		}
		if (strcmp(hex, json_string_value(json_object_get(w, "sha256"))))
			fail_msg("%s: tensor %s: bytes differ from torch's", name, t->name);
		json_t *alias = json_object_get(w, "alias");
		if (json_is_string(alias)) {
			assert_true(t->alias >= 0 && (size_t)t->alias < i);
			assert_string_equal(ci.t[t->alias].name, json_string_value(alias));
		} else {
			assert_int_equal(t->alias, -1);
		}
	}
	close(fd);
	conv_info_free(&ci);
	json_decref(want);
}

static void test_roundtrip(void **state)
{
	(void)state;
	static const char *const good[] = {
		"fp32.pt", "fp16.pt", "bf16.pt", "int8.pt", "tied.pt", "view.pt", "nested.pt",
		"state_dict.pt", "param.pt", "misc.pt", "proto4.pt", "root.pt", "legacy.pt", "zip64.pt", "cd64.pt",
		"v3_u16.pt", "v3_f8.pt", "strided.pt", "resnet50_imagenet_checkpoint_epoch_90_best.pth.tar", "odd_keys.pt",
		"legacy_p4.pt", "legacy_p5.pt",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		check_good(good[i]);
}

/* Non-contiguous views: the pack holds each gathered (row-major, the bytes
 * torch gives), the views are not aliases of the storage they view, and the
 * recipe still reproduces the checkpoint bit-exactly (the viewed storage
 * bytes are its literals). */
static void test_strided_pack(void **state)
{
	(void)state;
	char jpath[600];
	snprintf(jpath, sizeof jpath, "%s.json", fx("strided.pt"));
	json_t *want = json_load_file(jpath, 0, NULL);
	assert_non_null(want);
	int src = open(fx("strided.pt"), O_RDONLY);
	struct stat sb;
	assert_int_equal(fstat(src, &sb), 0);
	int pk = memfd_create("pack", 0), rc = memfd_create("recipe", 0);
	struct conv_result res;
	assert_int_equal(conv_convert(src, (uint64_t)sb.st_size, "strided.pt", NULL, pk, rc, &res), 0);
	struct pack *p;
	assert_int_equal(pack_open(pk, PACK_VERIFY_DATA, &p), 0);
	size_t i;
	json_t *w;
	json_array_foreach(want, i, w) {
		const struct pack_tensor *t = pack_find(p, json_string_value(json_object_get(w, "name")));
		assert_non_null(t);
		assert_int_equal(t->alias, -1);
		uint8_t *b = malloc(t->length + 1);
		char hex[65];
		assert_int_equal(util_pread_full(pk, b, t->length, (off_t)t->offset), (ssize_t)t->length);
		sha256_hex(b, t->length, hex);
		free(b);
		assert_string_equal(hex, json_string_value(json_object_get(w, "sha256")));
	}
	struct recipe *r;
	assert_int_equal(recipe_open(rc, &res.pack_size, 1, &r), 0);
	assert_int_equal(recipe_verify(r, (struct recipe_packs){ &pk, 1 }), 0);
	recipe_close(r);
	pack_close(p);
	close(pk);
	close(rc);
	close(src);
	json_decref(want);
	/* the parse: which are views */
	struct conv_info ci;
	assert_int_equal(parse_file(fx("strided.pt"), &ci, NULL), 0);
	assert_non_null(ci.t[0].stride);    /* t */
	assert_non_null(ci.t[1].stride);    /* cols */
	assert_null(ci.t[4].stride);        /* wide */
	assert_int_equal(ci.t[0].stride[0], 1);
	assert_int_equal(ci.t[0].stride[1], 4);
	conv_info_free(&ci);
}

static void test_specifics(void **state)
{
	(void)state;
	struct conv_info ci;
	/* Tied weights: the second and third names alias the first. */
	assert_int_equal(parse_file(fx("tied.pt"), &ci, NULL), 0);
	assert_int_equal(ci.n, 3);
	assert_int_equal(ci.t[1].alias, 0);
	assert_int_equal(ci.t[2].alias, 0);
	conv_info_free(&ci);
	/* A view with an offset is the sub-range of its storage: "slice" is
	 * base[10:30] of a 100-float storage, "rows" mat[2:4] of a 6x5 one. */
	assert_int_equal(parse_file(fx("view.pt"), &ci, NULL), 0);
	assert_int_equal(ci.n, 4);
	assert_int_equal(ci.t[0].len, 80);
	assert_int_equal(ci.t[1].src_off, ci.t[2].src_off + 10 * 4);
	assert_int_equal(ci.t[1].alias, -1);
	conv_info_free(&ci);
	/* Nested: names joined with '.', non-tensor leaves ignored. */
	assert_int_equal(parse_file(fx("nested.pt"), &ci, NULL), 0);
	assert_string_equal(ci.t[0].name, "model.0.weight");
	assert_string_equal(ci.t[4].name, "optimizer.state.0.step");
	assert_string_equal(ci.t[ci.n - 1].name, "extra.1.0");
	conv_info_free(&ci);
}

static void test_hostile(void **state)
{
	(void)state;
	json_error_t je;
	json_t *list = json_load_file(fx("hostile.json"), 0, &je);
	assert_non_null(list);
	assert_true(json_array_size(list) >= 45);
	size_t i;
	json_t *h;
	int bad = 0;
	json_array_foreach(list, i, h) {
		const char *file = json_string_value(json_object_get(h, "file"));
		const char *expect = json_string_value(json_object_get(h, "expect"));
		struct conv_info ci;
		int rc = parse_file(fx(file), &ci, NULL);
		const char *msg = rc ? md_errmsg(rc) : "(accepted)";
		/* expect may list alternatives separated by '|' */
		int found = 0;
		char alt[512];
		snprintf(alt, sizeof alt, "%s", expect);
		for (char *save = NULL, *tok = strtok_r(alt, "|", &save); tok && !found;
		     tok = strtok_r(NULL, "|", &save))
			found = strstr(msg, tok) != NULL;
		/* MD_EUNSUP would mean "not a weight file": stored unchecked */
		if (rc >= 0 || rc == MD_EUNSUP || !found) {
			print_error("%s: got '%s', want '%s'\n", file, msg, expect);
			bad++;
		}
		conv_info_free(&ci);
	}
	assert_int_equal(bad, 0);
	json_decref(list);
}

/* What the converter recognizes as a torch checkpoint but cannot convert
 * (compressed or encrypted entries, big-endian storages, a tar-format or
 * unknown-version checkpoint, a dtype or a rank we do not store, an expand)
 * is refused through conv_convert with one line naming the file, never
 * MD_EUNSUP (which the importer takes as "not a weight file, store it
 * plain"), and nothing is written. */
static void test_unsupported_refused(void **state)
{
	(void)state;
	static const struct {
		const char *file, *expect;
	} cases[] = {
		{ "deflated_evil.bin", "pytorch_model.bin: refused: zip entry archive/data.pkl is "
				       "compressed (deflate); torch.save stores entries uncompressed" },
		{ "deflated.bin", "pytorch_model.bin: refused: zip entry archive/data.pkl is compressed (deflate)" },
		{ "bzip2.bin", "pytorch_model.bin: refused: zip entry archive/data.pkl is compressed (bzip2)" },
		{ "encrypted.bin", "pytorch_model.bin: refused: zip entry archive/data.pkl is encrypted" },
		{ "big_endian.bin", "pytorch_model.bin: refused: big-endian storages are not supported" },
		{ "legacy_big.bin", "pytorch_model.bin: refused: big-endian storages are not supported" },
		{ "tar.bin", "pytorch_model.bin: refused: tar-format checkpoint (torch < 0.4)" },
		{ "version99.bin", "pytorch_model.bin: refused: torch archive version '99'" },
		{ "d9.pt", "pytorch_model.bin: refused: tensor with 9 dimensions (at most 8)" },
		{ "expand.pt", "pytorch_model.bin: refused: e: non-contiguous tensor" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int src = open(fx(cases[i].file), O_RDONLY);
		assert_true(src >= 0);
		struct stat sb;
		assert_int_equal(fstat(src, &sb), 0);
		int pk = memfd_create("pack", 0), rc = memfd_create("recipe", 0);
		struct conv_result res;
		md_clearerr();
		int r = conv_convert(src, (uint64_t)sb.st_size, "pytorch_model.bin", NULL, pk, rc, &res);
		const char *msg = md_errmsg(r);
		if (r != MD_EREFUSED || strncmp(msg, cases[i].expect, strlen(cases[i].expect)) ||
		    strchr(msg, '\n'))
			fail_msg("%s: rc %d '%s', want MD_EREFUSED '%s'", cases[i].file, r, msg,
				 cases[i].expect);
		assert_int_equal(fstat(pk, &sb), 0);
		assert_int_equal(sb.st_size, 0);
		assert_int_equal(fstat(rc, &sb), 0);
		assert_int_equal(sb.st_size, 0);
		close(pk);
		close(rc);
		close(src);
	}
}

/* Every strict prefix of a good checkpoint is refused, none crashes. */
static void test_truncations(void **state)
{
	(void)state;
	static const char *const files[] = { "fp32.pt", "legacy.pt", "tied.pt" };
	for (size_t f = 0; f < 3; f++) {
		int fd = open(fx(files[f]), O_RDONLY);
		assert_true(fd >= 0);
		struct stat sb;
		assert_int_equal(fstat(fd, &sb), 0);
		for (off_t n = 0; n < sb.st_size; n++) {
			struct conv_info ci = { 0 };
			int rc = conv_torch.parse(fd, (uint64_t)n, &ci);
			if (rc == 0)
				fail_msg("%s: prefix of %lld bytes accepted", files[f], (long long)n);
			conv_info_free(&ci);
		}
		close(fd);
	}
}

static void test_match(void **state)
{
	(void)state;
	uint8_t head[CONV_HEAD_BYTES];
	static const struct {
		const char *file, *as;
		int want;
	} cases[] = {
		{ "fp32.pt", "x/whatever.data", 1 },     /* zip whose first entry is <root>/data.pkl */
		{ "legacy.pt", "x/whatever.data", 1 },   /* legacy magic number */
		/* by content, whatever the name and however long the root folder */
		{ "resnet50_imagenet_checkpoint_epoch_90_best.pth.tar",
		  "resnet50_imagenet_checkpoint_epoch_90_best.pth.tar", 1 },
		{ "longroot_evil.pth.tar", "resnet50_imagenet_checkpoint_epoch_90_best.pth.tar", 1 },
		{ "longroot_evil.pkl", "model_weights_for_inference_final.pkl", 1 },
		{ "version_first.dat", "weights.dat", 1 },
		{ "deflated_evil.bin", "model.zip", 1 },
		{ "legacy_p4.pt", "x/whatever.data", 1 },  /* magic pickled at protocol 4 (FRAME) */
		{ "legacy_p1.pt", "x/whatever.data", 1 },  /* and at protocol 1 (LONG text) */
		{ "tar_torch.bin", "checkpoint.tar", 1 },  /* torch < 0.4 tar: first member "sys_info" */
		{ "tar.bin", "pytorch_model.bin", 1 },
		{ "tar.bin", "backup.tar", 0 },
		{ "os_system_raw.bin", "pytorch_model.bin", 1 },
		{ "os_system_raw.bin", "notes.txt", 0 },
		{ "sevenzip.bin", "pytorch_model.bin", 1 },
		{ "sevenzip.bin", "archive.7z", 0 },
		{ "nested_zip.bin", "data.zip", 1 },      /* has outer/version: torch-like, checked */
		{ "plain.zip", "data.zip", 2 },           /* any zip: tentative, the probe decides */
		{ "plain.zip", "pytorch_model.bin", 1 },  /* by name: refused, not stored */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int fd = open(fx(cases[i].file), O_RDONLY);
		assert_true(fd >= 0);
		ssize_t n = util_read_full(fd, head, sizeof head);
		assert_true(n > 0);
		int tent, tentf;
		const struct converter *c = conv_find(cases[i].as, head, (size_t)n, &tent), *cf;
		/* the daemon's test (conv_find_fd) agrees with the converter's */
		assert_int_equal(conv_find_fd(fd, cases[i].as, &cf, &tentf), 0);
		assert_ptr_equal(c, cf);
		assert_int_equal(tent, tentf);
		close(fd);
		if (cases[i].want && c != &conv_torch)
			fail_msg("%s as %s: not claimed", cases[i].file, cases[i].as);
		if (!cases[i].want && c == &conv_torch)
			fail_msg("%s as %s: claimed", cases[i].file, cases[i].as);
		if (c && tent != (cases[i].want == 2))
			fail_msg("%s as %s: tentative %d", cases[i].file, cases[i].as, tent);
	}
}

/* A zip claimed only tentatively (a name we do not list, torch's records
 * past the head) is probed in full: one with the records is a checkpoint
 * (and refused when hostile), one without is not a weight file. */
static void test_tentative_zip(void **state)
{
	(void)state;
	uint8_t head[CONV_HEAD_BYTES];
	int fd = open(fx("padded_evil.zip"), O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = util_read_full(fd, head, sizeof head);
	assert_true(n == (ssize_t)sizeof head);
	int tent;
	assert_ptr_equal(conv_find("weights.data", head, (size_t)n, &tent), &conv_torch);
	assert_int_equal(tent, 1);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(conv_torch.probe(fd, (uint64_t)st.st_size), 1);
	struct conv_result res;
	int pfd = memfd_create("p", 0), rfd = memfd_create("r", 0);
	int rc = conv_convert(fd, (uint64_t)st.st_size, "weights.data", NULL, pfd, rfd, &res);
	assert_int_equal(rc, MD_EREFUSED);
	assert_non_null(strstr(md_errmsg(rc), "global posix.system"));
	close(fd);
	fd = open(fx("plain.zip"), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(conv_torch.probe(fd, (uint64_t)st.st_size), 0);
	assert_int_equal(conv_convert(fd, (uint64_t)st.st_size, "data.zip", NULL, pfd, rfd, &res), MD_EUNSUP);
	struct stat ps;
	assert_int_equal(fstat(pfd, &ps), 0);
	assert_int_equal(ps.st_size, 0);   /* nothing written */
	close(fd);
	close(pfd);
	close(rfd);
}

/* Direct interpreter checks: caps, truncation flag, memo, allowlist. */
static void test_pickle(void **state)
{
	(void)state;
	struct pk_doc d;
	/* A plain dict of a str and an int. */
	const uint8_t ok[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "aK\x07u.";
	assert_int_equal(pk_load(ok, sizeof ok - 1, &d), 0);
	assert_int_equal(d.root.kind, PK_DICT);
	assert_int_equal(d.used, sizeof ok - 1);
	assert_int_equal(pk_obj(&d, d.root)->n, 2);
	pk_free(&d);
	/* Truncation is flagged so that a caller can read more. */
	assert_int_equal(pk_load(ok, 6, &d), MD_ECORRUPT);
	assert_int_equal(d.used, SIZE_MAX);
	/* Truncated string length. */
	const uint8_t ts[] = "\x80\x02X\xff\xff\xff\x00" "ab";
	assert_int_equal(pk_load(ts, sizeof ts - 1, &d), MD_ECORRUPT);
	/* A string over the cap is refused before reading it. */
	const uint8_t big[] = "\x80\x02X\xff\xff\xff\x7f";
	assert_int_equal(pk_load(big, sizeof big - 1, &d), MD_ETOOBIG);
	/* MARK nesting is capped. */
	uint8_t marks[PK_MAX_MARKS + 10];
	memset(marks, '(', sizeof marks);
	assert_int_equal(pk_load(marks, sizeof marks, &d), MD_ETOOBIG);
	/* Stack underflow inside a MARK frame. */
	const uint8_t uf[] = "\x80\x02](a.";
	assert_int_equal(pk_load(uf, sizeof uf - 1, &d), MD_ECORRUPT);
	/* Every allowed torch global resolves; REDUCE of a dtype is refused. */
	const uint8_t dt[] = "\x80\x02" "ctorch\nbfloat16\n)R.";
	assert_int_equal(pk_load(dt, sizeof dt - 1, &d), MD_EREFUSED);
	assert_non_null(strstr(md_errmsg(MD_EREFUSED), "refused: REDUCE of torch.bfloat16"));
	/* LONG4 and other unlisted opcodes are refused by name. */
	const uint8_t l4[] = "\x80\x02\x8b\x01\x00\x00\x00\x01.";
	assert_int_equal(pk_load(l4, sizeof l4 - 1, &d), MD_EREFUSED);
	assert_non_null(strstr(md_errmsg(MD_EREFUSED), "refused: opcode LONG4"));
	/* NEWOBJ of anything but Parameter is refused. */
	const uint8_t no[] = "\x80\x02\x63\x63ollections\nOrderedDict\n)\x81.";
	assert_int_equal(pk_load(no, sizeof no - 1, &d), MD_EREFUSED);
	assert_non_null(strstr(md_errmsg(MD_EREFUSED), "refused: NEWOBJ of collections.OrderedDict"));
	/* A set through builtins.set (protocol 2 spelling) is data. */
	const uint8_t st[] = "\x80\x02\x63__builtin__\nset\n]K\x01\x61\x85R.";
	assert_int_equal(pk_load(st, sizeof st - 1, &d), 0);
	assert_int_equal(d.root.kind, PK_SET);
	pk_free(&d);
}

static void test_zip(void **state)
{
	(void)state;
	int fd = open(fx("fp32.pt"), O_RDONLY);
	assert_true(fd >= 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	struct zip_archive za;
	assert_int_equal(zip_open(fd, (uint64_t)sb.st_size, &za), 0);
	assert_true(za.zip64); /* torch always writes a ZIP64 end record */
	const struct zip_entry *e = zip_find(&za, "fp32/data.pkl");
	assert_non_null(e);
	assert_int_equal(e->data_off % 64, 0); /* torch aligns records to 64 bytes */
	uint8_t *b;
	assert_int_equal(zip_read(fd, e, 1 << 20, &b), 0);
	assert_int_equal(b[0], 0x80);
	free(b);
	assert_int_equal(zip_read(fd, e, 4, &b), MD_ETOOBIG);
	assert_null(zip_find(&za, "fp32/nope"));
	assert_non_null(zip_find(&za, "fp32/version"));
	zip_close(&za);
	close(fd);
	assert_int_equal(zip_crc32(0, "123456789", 9), 0xcbf43926u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_specifics),
		cmocka_unit_test(test_strided_pack),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_unsupported_refused),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_tentative_zip),
		cmocka_unit_test(test_pickle),
		cmocka_unit_test(test_zip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
