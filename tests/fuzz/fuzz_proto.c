/* libFuzzer: the control-protocol reader (common/proto.c) on bytes a hostile
 * client sends, split into frames, and each payload parsed as the daemon
 * does (JSON object with duplicate keys refused). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_reader r;
	proto_reader_init(&r);
	/* feed the bytes in two uneven pieces, as a stream socket may */
	size_t cut = size ? data[0] % (size + 1) : 0;
	for (int piece = 0; piece < 2; piece++) {
		const uint8_t *p = piece ? data + cut : data;
		size_t n = piece ? size - cut : cut;
		if (r.cap - r.len < n) {
			uint8_t *nb = realloc(r.buf, r.len + n + 1);
			if (!nb)
				abort();
			r.buf = nb;
			r.cap = r.len + n + 1;
		}
		if (n)
			memcpy(r.buf + r.len, p, n);
		r.len += n;
		for (;;) {
			char *payload;
			size_t len, nfds;
			int fds[PROTO_MAX_FDS];
			int rc = proto_reader_next(&r, &payload, &len, fds, &nfds);
			if (rc != 1)
				break;
			json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
			json_decref(j);
			free(payload);
		}
	}
	proto_reader_free(&r);
	return 0;
}
