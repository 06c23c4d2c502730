/*
 * common/proto.h — framing of the control-socket protocol (docs/protocol.md).
 *
 * A frame is a 12-byte header followed by a JSON payload:
 *   bytes 0-1  'M' 'D'      magic
 *   bytes 2-3  u16 LE       protocol version (PROTO_VERSION)
 *   bytes 4-7  u32 LE       payload length, <= PROTO_MAX_PAYLOAD
 *   bytes 8-11 u32 LE       number of file descriptors sent with the frame
 *                           (SCM_RIGHTS on the header's sendmsg), <= PROTO_MAX_FDS
 * Both sides use the same framing; the peer is always untrusted.
 */
#ifndef MD_PROTO_H
#define MD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_HDR 12
#define PROTO_MAX_PAYLOAD (16u << 20) /* hard cap on one message: 16 MiB */
#define PROTO_MAX_FDS 200             /* under the kernel's SCM_MAX_FD (253) */

void proto_hdr_encode(uint8_t hdr[PROTO_HDR], uint32_t len, uint32_t nfds);

/*
 * Send one whole frame on a blocking socket. fds are borrowed (the kernel
 * duplicates them). 0, MD_EINVAL (too big), MD_EIO.
 */
int proto_send(int sock, const void *payload, size_t len, const int *fds, size_t nfds);

/* Receive buffer plus the queue of descriptors that arrived with it. */
struct proto_reader {
	uint8_t *buf;
	size_t len, cap;
	int fdq[PROTO_MAX_FDS * 2];
	size_t nfdq;
};

void proto_reader_init(struct proto_reader *r);
/* Closes queued descriptors and frees the buffer. */
void proto_reader_free(struct proto_reader *r);

/*
 * One recvmsg into the reader (non-blocking sockets return MD_EBUSY when
 * nothing is there). Returns bytes read (0 = peer closed), MD_EBUSY, MD_EIO,
 * or MD_EPROTO (descriptor overflow or truncated control data).
 */
long proto_reader_fill(struct proto_reader *r, int sock);

/*
 * Extract the next complete frame. Returns 1 and sets *payload (malloc'd,
 * NUL-terminated, caller frees) / *len / fds (caller owns, up to
 * PROTO_MAX_FDS) / *nfds; 0 when more bytes are needed; MD_EPROTO on a bad
 * magic, version, length or descriptor count (the connection is then dead).
 */
int proto_reader_next(struct proto_reader *r, char **payload, size_t *len,
		      int *fds, size_t *nfds);

/*
 * Blocking: fill until one frame is complete. Returns 1 with a frame, 0 if the
 * peer closed cleanly between frames, or a negative MD_E* code.
 */
int proto_recv(struct proto_reader *r, int sock, char **payload, size_t *len,
	       int *fds, size_t *nfds);

#endif
