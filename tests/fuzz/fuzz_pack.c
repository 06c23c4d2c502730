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

static void p64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	if (size >= PACK_ALIGN + PACK_TRAILER) {
		/* make the section arithmetic consistent so that mutations of
		 * counts and lengths reach the table and metadata checks */
		uint64_t nt = g64(b + 32), sl = g64(b + 80), ml = g64(b + 96), nr = g64(b + 112);
		/* the referenced packs' roots sit between metadata and trailer */
		uint64_t room = size - PACK_TRAILER - (nr <= PACK_MAX_REFS ? 32 * nr : 0);
		if (nt <= room / PACK_ENTRY && sl <= room && ml <= room &&
		    nt * PACK_ENTRY + sl + ml <= room - PACK_ALIGN) {
			/* table at a page boundary; the string table absorbs the rest */
			uint64_t t = (room - ml - sl - nt * PACK_ENTRY) & ~(uint64_t)(PACK_ALIGN - 1);
			sl = room - ml - nt * PACK_ENTRY - t;
			p64(b + 80, sl);
			uint64_t dend = g64(b + 56);
			if (dend < PACK_ALIGN || dend > t || ((dend + PACK_ALIGN - 1) & ~(uint64_t)(PACK_ALIGN - 1)) != t)
				dend = t;
			if (t >= PACK_ALIGN) {
				p64(b + 40, size);
				p64(b + 48, PACK_ALIGN);
				p64(b + 56, dend);
				p64(b + 64, t);
				p64(b + 72, t + nt * PACK_ENTRY);
				p64(b + 88, t + nt * PACK_ENTRY + sl);
			}
		}
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
			if (!t->ref && t->offset + t->length > pack_file_size(p))
				abort();
			if (t->ref && !pack_ref(p, t->ref))
				abort();
		}
		/* not its own referenced pack: refused, never a crash */
		if (pack_nrefs(p) && pack_check_ref(p, 1, p) != MD_EINVAL)
			abort();
		pack_close(p);
	}
	int fd = fuzz_memfd(data, size);
	if (pack_open(fd, 0, &p) == 0)
		pack_close(p);
	close(fd);
	free(b);
	return 0;
}
