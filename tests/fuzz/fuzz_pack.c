/* libFuzzer: the pack reader. The root digest is recomputed over the
 * mutated header and index first (when the header allows), so mutations
 * reach the table, name, layout and metadata checks instead of all stopping
 * at the digest. Both the memory and the fd reader run, with data checks. */
#include "tests/fuzz/fuzz_common.h"
#include "common/sha256.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t g64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	if (size >= PACK_ALIGN + PACK_TRAILER) {
		uint64_t toff = g64(b + 64);
		if (toff >= PACK_HDR_SIZE && toff <= size - PACK_TRAILER) {
			struct sha256 h;
			if (sha256_init(&h) == 0) {
				sha256_update(&h, b, PACK_HDR_SIZE);
				sha256_update(&h, b + toff, size - PACK_TRAILER - toff);
				sha256_final(&h, b + size - PACK_TRAILER + 16);
			}
		}
	}
	struct pack *p = NULL;
	if (pack_open_mem(b, size, PACK_VERIFY_DATA, &p) == 0) {
		for (size_t i = 0; i < pack_count(p); i++) {
			const struct pack_tensor *t = pack_tensor(p, i);
			if (pack_find(p, t->name) == NULL)
				abort();
			if (t->offset + t->length > pack_file_size(p))
				abort();
		}
		pack_close(p);
	}
	int fd = fuzz_memfd(b, size);
	if (pack_open(fd, 0, &p) == 0)
		pack_close(p);
	close(fd);
	free(b);
	return 0;
}
