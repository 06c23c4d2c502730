/*
 * libFuzzer harness for the strict zip reader (converters/zipread.c) and the
 * whole torch converter: the input is a file handed to zip_open (then every
 * small entry is read back with its CRC checked), to the names-only walk
 * (zip_scan_names, conv_torch.probe) and to conv_torch.parse.
 * Seeds: tests/fuzz/corpus/zip (small torch.save checkpoints and hostile zips).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_common.h"
#include "converters/converter.h"
#include "converters/zipread.h"

extern const struct converter conv_torch;

static int any_name(const uint8_t *name, size_t len, void *arg)
{
	(void)arg;
	return len == 0 || name[len - 1] == 0x7f;   /* visit every name, stop on a few */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (util_write_all(fd, data, size) == 0) {
		struct zip_archive za;
		if (zip_open(fd, size, &za) == 0) {
			for (size_t i = 0; i < za.n; i++) {
				uint8_t *b;
				if (zip_find(&za, za.e[i].name) != &za.e[i])
					abort();
				if (zip_read(fd, &za.e[i], 1 << 16, &b) == 0)
					free(b);
			}
			zip_close(&za);
		}
		(void)zip_scan_names(fd, size, any_name, NULL);
		(void)conv_torch.probe(fd, size);
		struct conv_info ci = { 0 };
		if (conv_torch.parse(fd, size, &ci) == 0)
			fuzz_convert_accepted(fd, size, &ci);   /* converts, reproduces */
		conv_info_free(&ci);
	}
	close(fd);
	return 0;
}
