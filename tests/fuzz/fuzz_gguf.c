/* libFuzzer: the GGUF reader (header, typed metadata, tensor infos,
 * alignment), then pack (typed metadata re-encoded) + recipe for every
 * accepted input; and the placed path a pull takes (fuzz_placed.h). */
#include "tests/fuzz/fuzz_placed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = fuzz_memfd(data, size);
	struct conv_info ci = { 0 };
	if (conv_gguf.parse(fd, size, &ci) == 0)
		fuzz_convert_accepted(fd, size, &ci);
	conv_info_free(&ci);
	fuzz_placed(fd, data, size, "fuzz.gguf");
	close(fd);
	return 0;
}
