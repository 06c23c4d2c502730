/* Unit tests for registry/ingest.c's hand-over of downloaded files
 * (ingest_add_file), keep and adopt, on a real store with the real
 * converter worker (BUILD/modeld-worker). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_file_leaves_the_download, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
