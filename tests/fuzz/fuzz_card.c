/*
 * tests/fuzz/fuzz_card.c — libFuzzer harness for the model card parser
 * (meta/card.c: front matter, libyaml events, caps, normalization) and the
 * license text tokenizer (meta/licdetect.c), both fed untrusted README and
 * LICENSE bytes. Seeds: tests/data/cards/ and tests/data/licenses/.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_card.c \
 *       <core objects or libmdcore.a built with the same flags> \
 *       $(pkg-config --libs jansson yaml-0.1 libcrypto) -lpthread
 *
 * Invariants checked: card_parse never fails except for out-of-memory, its
 * result always has a status, a refused card always has a reason, and the
 * result serializes (no cycles from YAML aliases).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "meta/card.h"
#include "meta/licdetect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *o = NULL;
	int rc = card_parse((const char *)data, size, &o);
	if (rc == MD_ENOMEM)
		return 0;
	if (rc != 0 || !o)
		abort();
	const char *st = json_string_value(json_object_get(o, "status"));
	if (!st)
		abort();
	if (strcmp(st, "ok") && !json_string_value(json_object_get(o, "reason")))
		abort();
	char *s = json_dumps(o, JSON_COMPACT);
	if (!s)
		abort();
	free(s);
	json_decref(o);

	struct licdetect_result r;
	if (licdetect_text((const char *)data, size, &r) == 0 && r.matched &&
	    (r.score < LICDETECT_MATCH || r.score > 1.0 + 1e-9))
		abort();
	return 0;
}
