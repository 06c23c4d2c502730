/*
 * libFuzzer harness for the restricted pickle interpreter (converters/pickle.c)
 * and the torch converter's flattening of its result: the input is run by
 * pk_load directly, then as the data.pkl of a small in-memory torch zip (with
 * storages data/0 of 64 bytes and data/1 of 16 bytes) through conv_torch.
 * Seeds: tests/fuzz/corpus/pickle.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_common.h"
#include "converters/converter.h"
#include "converters/pickle.h"
#include "converters/zipread.h"

extern const struct converter conv_torch;

static uint8_t *put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); return p + 2; }
static uint8_t *put32(uint8_t *p, uint32_t v) { p = put16(p, (uint16_t)v); return put16(p, (uint16_t)(v >> 16)); }

/* Append a stored entry; records its central directory record in cd. */
static size_t entry(uint8_t *out, size_t at, const char *name, const uint8_t *d, size_t n,
		    uint8_t *cd, size_t *cdn)
{
	size_t nl = strlen(name);
	uint32_t crc = zip_crc32(0, d, n);
	uint8_t *p = out + at;
	p = put32(p, 0x04034b50); p = put16(p, 20); p = put16(p, 0); p = put16(p, 0);
	p = put32(p, 0); p = put32(p, crc); p = put32(p, (uint32_t)n); p = put32(p, (uint32_t)n);
	p = put16(p, (uint16_t)nl); p = put16(p, 0);
	memcpy(p, name, nl); p += nl;
	if (n)
		memcpy(p, d, n);
	p += n;
	uint8_t *c = cd + *cdn;
	c = put32(c, 0x02014b50); c = put16(c, 20); c = put16(c, 20); c = put16(c, 0); c = put16(c, 0);
	c = put32(c, 0); c = put32(c, crc); c = put32(c, (uint32_t)n); c = put32(c, (uint32_t)n);
	c = put16(c, (uint16_t)nl); c = put16(c, 0); c = put16(c, 0); c = put16(c, 0); c = put16(c, 0);
	c = put32(c, 0); c = put32(c, (uint32_t)at);
	memcpy(c, name, nl); c += nl;
	*cdn = (size_t)(c - cd);
	return (size_t)(p - out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pk_doc d;
	if (pk_load(data, size, &d) == 0)
		pk_free(&d);
	if (size > (1u << 20))
		return 0;
	uint8_t *z = malloc(size + 4096), cd[1024];
	if (!z)
		return 0;
	static const uint8_t s0[64] = { 1, 2, 3 }, s1[16] = { 4, 5, 6 };
	size_t at = 0, cdn = 0;
	at = entry(z, at, "m/data.pkl", data, size, cd, &cdn);
	at = entry(z, at, "m/data/0", s0, sizeof s0, cd, &cdn);
	at = entry(z, at, "m/data/1", s1, sizeof s1, cd, &cdn);
	at = entry(z, at, "m/version", (const uint8_t *)"3\n", 2, cd, &cdn);
	memcpy(z + at, cd, cdn);
	uint8_t *e = z + at + cdn;
	e = put32(e, 0x06054b50); e = put16(e, 0); e = put16(e, 0); e = put16(e, 4); e = put16(e, 4);
	e = put32(e, (uint32_t)cdn); e = put32(e, (uint32_t)at); e = put16(e, 0);
	size_t total = (size_t)(e - z);
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd >= 0 && util_write_all(fd, z, total) == 0) {
		struct conv_info ci = { 0 };
		/* what the parser accepts must convert and reproduce (views
		 * are gathered: the strides reach the pack writer) */
		if (conv_torch.parse(fd, total, &ci) == 0)
			fuzz_convert_accepted(fd, total, &ci);
		conv_info_free(&ci);
	}
	if (fd >= 0)
		close(fd);
	free(z);
	return 0;
}
