/*
 * tests/fuzz/fuzz_config_facts.c — libFuzzer harness for meta/config_facts.c:
 * the input is parsed as a config.json and, through a memfd, as a
 * safetensors file (8-byte length + JSON header + data). Seeds: any
 * config.json and the first KiB of any .safetensors file.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_config_facts.c \
 *       <core objects or libmdcore.a built with the same flags> \
 *       $(pkg-config --libs jansson) -lpthread
 *
 * Invariants: config_facts_parse never fails except for out-of-memory and
 * always yields the seven keys; a safetensors input is either refused with
 * MD_ECORRUPT/MD_ETOOBIG or counted, and the total bytes per dtype never
 * exceed the file's data section.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "meta/config_facts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *o = NULL;
	int rc = config_facts_parse((const char *)data, size, &o);
	if (rc == MD_ENOMEM)
		return 0;
	if (rc || !o || json_object_size(o) != 8)
		abort();
	json_decref(o);

	int fd = memfd_create("st", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	struct config_facts_acc *a = config_facts_acc_new();
	rc = config_facts_add_safetensors(a, fd, "fuzz.safetensors");
	if (rc && rc != MD_ECORRUPT && rc != MD_ETOOBIG && rc != MD_ENOMEM)
		abort();
	uint64_t params;
	json_t *db;
	if (config_facts_acc_result(a, 1, &params, &db) == 0) {
		json_int_t total = 0;
		const char *k;
		json_t *v;
		json_object_foreach(db, k, v)
			total += json_integer_value(v);
		if (rc == 0 && (total < 0 || (uint64_t)total > size))
			abort();
		if (rc != 0 && (params || total))
			abort();
		json_decref(db);
	}
	config_facts_acc_free(a);
	close(fd);
	return 0;
}
