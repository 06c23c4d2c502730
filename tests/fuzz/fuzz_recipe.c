/* libFuzzer: the recipe reader against a fixed 3-page pack: open, segment
 * lookups, range reads (every byte must come back), range copies, verify. */
#include "tests/fuzz/fuzz_common.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int pack_fd = -1;
	if (pack_fd < 0) {
		static uint8_t pk[3 * PACK_ALIGN];
		for (size_t i = 0; i < sizeof pk; i++)
			pk[i] = (uint8_t)(i * 31);
		pack_fd = fuzz_memfd(pk, sizeof pk);
	}
	/* the pack and one referenced pack (the same bytes) */
	const uint64_t sizes[2] = { 3 * PACK_ALIGN, 3 * PACK_ALIGN };
	const int fds[2] = { pack_fd, pack_fd };
	struct recipe_packs packs = { fds, 2 };
	int fd = fuzz_memfd(data, size);
	struct recipe *r;
	if (recipe_open(fd, sizes, 2, &r) == 0) {
		uint64_t n = recipe_orig_size(r);
		for (size_t i = 0; i < recipe_nseg(r); i++) {
			const struct recipe_seg *s = recipe_seg(r, i);
			if (recipe_find(r, s->orig_off) != i)
				abort();
		}
		if (recipe_find(r, n) != recipe_nseg(r))
			abort();
		uint64_t len = n < 65536 ? n : 65536;
		uint8_t *buf = malloc(len + 1);
		if (buf) {
			if (recipe_read(r, packs, n - len, buf, len) != 0)
				abort();
			if (len > 3 && recipe_read(r, packs, 1, buf, len - 2) != 0)
				abort();
			free(buf);
		}
		int out = memfd_create("out", MFD_CLOEXEC);
		if (recipe_copy(r, packs, 0, len, out) != 0)
			abort();
		close(out);
		(void)recipe_verify(r, packs);
		recipe_close(r);
	}
	close(fd);
	return 0;
}
