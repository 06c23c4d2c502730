/* Unit tests for registry/ingest.c's hand-over of downloaded files
 * (ingest_add_file), keep and adopt, on a real store with the real
 * converter worker (BUILD/modeld-worker). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"
#include "daemon/worker.h"
#include "registry/ingest.h"
#include "registry/store.h"

static char root[64], dl[128];

static int setup(void **state)
{
	(void)state;
	char exe[PATH_MAX], w[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;   /* BUILD/tests */
	*strrchr(exe, '/') = 0;   /* BUILD */
	snprintf(w, sizeof w, "%s/modeld-worker", exe);
	setenv("MODELD_WORKER", w, 1);
	snprintf(root, sizeof root, "/tmp/md-ingest-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	snprintf(dl, sizeof dl, "%s/dl", root);
	return mkdir(dl, 0755);
}

static int teardown(void **state)
{
	(void)state;
	util_rmtree(root);
	return 0;
}

/* Write bytes to dl/name; its sha256 hex into hex. */
static void put_file(const char *name, const void *b, size_t n, char *path, char hex[65])
{
	snprintf(path, 256, "%s/%s", dl, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	sha256_hex(b, n, hex);
}

/* A one-tensor safetensors file: F32 [4]. */
static size_t tiny_safetensors(uint8_t *out)
{
	const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
	size_t hl = strlen(hdr), pad = (8 - hl % 8) % 8;
	uint64_t len = hl + pad;
	memcpy(out, &len, 8);
	memcpy(out + 8, hdr, hl);
	memset(out + 8 + hl, ' ', pad);
	float v[4] = { 1.0f, -2.0f, 0.5f, 4.0f };
	memcpy(out + 8 + len, v, sizeof v);
	return 8 + len + sizeof v;
}

/*
 * The download a pull hands over stays where it is until the pull removes
 * it after ingest_keep: a daemon killed between the hand-over and the keep
 * must find the file and not fetch it again (a kill there once cost a
 * whole 512 MiB shard). Both ways in: a plain file (hard-linked, same
 * bytes) and a weight file (converted). The kept records are then adopted
 * by a second ingest, which commits the model.
 */
static void test_add_file_leaves_the_download(void **state)
{
	(void)state;
	struct store *st;
	struct ingest *ing;
	struct ingest_converter conv;
	_Atomic int cancel = 0;
	char plain[256], weights[256], hp[65], hw[65], kept[256];
	uint8_t sf[256];
	size_t sfn = tiny_safetensors(sf);
	put_file("config.json", "{\"model_type\":\"x\"}\n", 19, plain, hp);
	put_file("model.safetensors", sf, sfn, weights, hw);
	snprintf(kept, sizeof kept, "%s/kept", root);
	assert_int_equal(mkdir(kept, 0755), 0);

	assert_int_equal(store_open(root, 0, 0, &st), 0);
	assert_int_equal(ingest_begin(st, NULL, &ing), 0);
	worker_converter(&conv, &cancel);
	ingest_set_converter(ing, &conv);
	assert_int_equal(ingest_add_file(ing, "config.json", plain, hp), 0);
	assert_int_equal(ingest_add_file(ing, "model.safetensors", weights, hw), 0);
	struct stat sb;
	assert_int_equal(stat(plain, &sb), 0);
	assert_int_equal(sb.st_size, 19);
	assert_int_equal(sb.st_nlink, 2);           /* the staged blob is the same inode */
	assert_int_equal(stat(weights, &sb), 0);
	assert_int_equal((size_t)sb.st_size, sfn);  /* converted, the source untouched */
	assert_int_equal(ingest_keep(ing, "config.json", kept, "k1"), 0);
	assert_int_equal(ingest_keep(ing, "model.safetensors", kept, "k2"), 0);
	/* the daemon "dies": its staging goes, what was kept stays */
	ingest_free(ing);

	assert_int_equal(ingest_begin(st, NULL, &ing), 0);
	ingest_set_converter(ing, &conv);
	assert_int_equal(ingest_adopt(ing, "config.json", kept, "k1", hp, 19), 0);
	assert_int_equal(ingest_adopt(ing, "model.safetensors", kept, "k2", hw, sfn), 0);
	json_t *m = NULL;
	assert_int_equal(ingest_commit(ing, "acme/tiny", NULL, "main", NULL, &m), 0);
	assert_int_equal(json_array_size(json_object_get(m, "files")), 2);
	json_t *f;
	size_t i;
	int converted = 0;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *p = json_string_value(json_object_get(f, "path"));
		assert_string_equal(json_string_value(json_object_get(f, "sha256")),
				    !strcmp(p, "config.json") ? hp : hw);
		converted += json_object_get(f, "pack") != NULL;
	}
	assert_int_equal(converted, 1);
	json_decref(m);
	ingest_free(ing);
	store_close(st);
}

/* A safetensors file with one U8 tensor "w" of n bytes (byte k is k*7+seed)
 * and __metadata__ {"v": tag}. */
static size_t big_safetensors(uint8_t *out, size_t n, int seed, const char *tag)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof hdr,
			  "{\"__metadata__\":{\"v\":\"%s\"},\"w\":{\"dtype\":\"U8\","
			  "\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", tag, n, n);
	size_t pad = (8 - (size_t)hl % 8) % 8;
	uint64_t len = (size_t)hl + pad;
	memcpy(out, &len, 8);
	memcpy(out + 8, hdr, (size_t)hl);
	memset(out + 8 + hl, ' ', pad);
	for (size_t k = 0; k < n; k++)
		out[8 + len + k] = (uint8_t)(k * 7 + (size_t)seed);
	return 8 + len + n;
}

/* The worker's converter, but the pack of any file whose path starts with
 * "bad" gets its first data byte flipped afterwards: same table, same
 * digests, same root, other bytes. What a converter taken over by a
 * hostile file could write, and what a collision of the tensor digest
 * (XXH3, converters/tdigest.h) would look like to the store. */
static struct ingest_converter real;

static int lying_convert(void *arg, int src_fd, uint64_t size, const char *relpath,
			 const char *sha256, int pack_fd, int recipe_fd, json_t **info)
{
	int rc = real.convert(arg, src_fd, size, relpath, sha256, pack_fd, recipe_fd, info);
	uint8_t b;
	if (!rc && !strncmp(relpath, "bad", 3)) {
		assert_int_equal(pread(pack_fd, &b, 1, 4096), 1);
		b ^= 1;
		assert_int_equal(pwrite(pack_fd, &b, 1, 4096), 1);
	}
	return rc;
}

static int add_bytes(struct ingest *ing, const char *relpath, const uint8_t *b, size_t n)
{
	char path[256], hex[65];
	put_file("x", b, n, path, hex);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	int rc = ingest_add_fd(ing, relpath, fd);
	close(fd);
	unlink(path);
	return rc;
}

static const char *file_pack(json_t *m, const char *relpath)
{
	json_t *f;
	size_t i;
	json_array_foreach(json_object_get(m, "files"), i, f)
		if (!strcmp(json_string_value(json_object_get(f, "path")), relpath))
			return json_string_value(json_object_get(f, "pack"));
	return NULL;
}

/*
 * A pack is named by its root digest, which commits to the tensors only
 * through their digests. A second pack with that name but other bytes
 * (stored already, or staged twice by one import) fails the import naming
 * the file, and what is stored stays as it was; a tensor of one file is
 * shared with another only when the bytes are equal.
 */
static void test_equal_digests_other_bytes(void **state)
{
	(void)state;
	struct store *st;
	struct ingest *ing;
	struct ingest_converter conv;
	_Atomic int cancel = 0;
	const size_t n = 1u << 20;
	uint8_t *b1 = malloc(n + 256), *b2 = malloc(n + 256);
	assert_non_null(b1);
	assert_non_null(b2);
	size_t n1 = big_safetensors(b1, n, 1, "one"), n2 = big_safetensors(b2, n, 1, "two");
	assert_int_equal(store_open(root, 0, 0, &st), 0);
	worker_converter(&real, &cancel);
	conv = real;
	conv.convert = lying_convert;

	/* the file stored honestly */
	json_t *m = NULL;
	assert_int_equal(ingest_begin(st, NULL, &ing), 0);
	ingest_set_converter(ing, &conv);
	assert_int_equal(add_bytes(ing, "model.safetensors", b1, n1), 0);
	assert_int_equal(ingest_commit(ing, "acme/good", NULL, "main", NULL, &m), 0);
	ingest_free(ing);
	char pk[65], path[4096], before[65], after[65];
	snprintf(pk, sizeof pk, "%s", file_pack(m, "model.safetensors"));
	json_decref(m);
	store_blob_path(st, pk, path, sizeof path);
	int fd = open(path, O_RDONLY);
	uint8_t d[32];
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sha256_fd(fd, (uint64_t)sb.st_size, d), 0);
	util_hex(d, 32, before);
	close(fd);

	/* the same file, its pack's bytes changed under the same name */
	assert_int_equal(ingest_begin(st, NULL, &ing), 0);
	ingest_set_converter(ing, &conv);
	assert_int_equal(add_bytes(ing, "bad.safetensors", b1, n1), 0);
	assert_int_equal(ingest_commit(ing, "acme/evil", NULL, "main", NULL, &m), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "bad.safetensors: converted to a pack"));
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "tensor digest collision"));
	ingest_free(ing);
	fd = open(path, O_RDONLY);
	assert_int_equal(sha256_fd(fd, (uint64_t)sb.st_size, d), 0);
	util_hex(d, 32, after);
	close(fd);
	assert_string_equal(before, after);

	/* twice in one import, nothing stored: the same */
	size_t n3 = big_safetensors(b2, n, 9, "three");
	assert_int_equal(ingest_begin(st, NULL, &ing), 0);
	ingest_set_converter(ing, &conv);
	assert_int_equal(add_bytes(ing, "a.safetensors", b2, n3), 0);
	assert_int_equal(add_bytes(ing, "bad.safetensors", b2, n3), 0);
	assert_int_equal(ingest_commit(ing, "acme/evil", NULL, "main", NULL, &m), MD_ECORRUPT);
	assert_non_null(strstr(md_errmsg(MD_ECORRUPT), "tensor digest collision"));
	ingest_free(ing);

	/* one tensor in two files of one import (other headers, other
	 * packs): shared when equal, not when the bytes differ */
	n2 = big_safetensors(b2, n, 1, "two");
	for (int lie = 0; lie < 2; lie++) {
		assert_int_equal(ingest_begin(st, NULL, &ing), 0);
		ingest_set_converter(ing, &conv);
		assert_int_equal(add_bytes(ing, "a.safetensors", b1, n1), 0);
		assert_int_equal(add_bytes(ing, lie ? "bad.safetensors" : "b.safetensors", b2, n2), 0);
		assert_int_equal(ingest_commit(ing, lie ? "acme/two-bad" : "acme/two", NULL, "main",
					       NULL, &m), 0);
		json_t *f;
		size_t i, refs = 0;
		json_array_foreach(json_object_get(m, "files"), i, f)
			refs += json_array_size(json_object_get(f, "refs"));
		assert_int_equal(refs, lie ? 0 : 1);
		json_decref(m);
		ingest_free(ing);
	}
	free(b1);
	free(b2);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_file_leaves_the_download, setup, teardown),
		cmocka_unit_test_setup_teardown(test_equal_digests_other_bytes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
