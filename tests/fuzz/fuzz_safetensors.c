/* libFuzzer: the safetensors converter (header length, JSON header, table
 * rules), then pack + recipe for every accepted input; and the placed path
 * a pull takes (conv_plan from the file as head, the file written piece by
 * piece where the plan says, conv_convert_placed), which must give the same
 * pack and recipe, byte for byte, as an ordinary conversion. */
#include "tests/fuzz/fuzz_placed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = fuzz_memfd(data, size);
	struct conv_info ci = { 0 };
	if (conv_safetensors.parse(fd, size, &ci) == 0)
		fuzz_convert_accepted(fd, size, &ci);
	conv_info_free(&ci);
	fuzz_placed(fd, data, size, "fuzz.safetensors");
	close(fd);
	return 0;
}
