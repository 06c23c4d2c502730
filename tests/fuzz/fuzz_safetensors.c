/* libFuzzer: the safetensors converter (header length, JSON header, table
 * rules), then pack + recipe for every accepted input. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = fuzz_memfd(data, size);
	struct conv_info ci = { 0 };
	if (conv_safetensors.parse(fd, size, &ci) == 0)
		fuzz_convert_accepted(fd, size, &ci);
	conv_info_free(&ci);
	close(fd);
	return 0;
}
