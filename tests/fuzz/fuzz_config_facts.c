/*
 * tests/fuzz/fuzz_config_facts.c — libFuzzer harness for meta/config_facts.c:
 * the input is parsed as a config.json. Seeds: any config.json.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_config_facts.c \
 *       <core objects or libmdcore.a built with the same flags> \
 *       $(pkg-config --libs jansson) -lpthread
 *
 * Invariants: config_facts_parse never fails except for out-of-memory and
 * always yields its eight keys.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
	return 0;
}
