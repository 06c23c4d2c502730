/* common/proto.c — see proto.h. */
#include "common/proto.h"
#include "common/err.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void proto_hdr_encode(uint8_t h[PROTO_HDR], uint32_t len, uint32_t nfds)
{
	h[0] = 'M';
	h[1] = 'D';
	h[2] = PROTO_VERSION & 0xff;
	h[3] = PROTO_VERSION >> 8;
	for (int i = 0; i < 4; i++) {
		h[4 + i] = (uint8_t)(len >> (8 * i));
		h[8 + i] = (uint8_t)(nfds >> (8 * i));
	}
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int proto_send(int sock, const void *payload, size_t len, const int *fds, size_t nfds)
{
	uint8_t hdr[PROTO_HDR];
	if (len > PROTO_MAX_PAYLOAD || nfds > PROTO_MAX_FDS)
		return md_fail(MD_ETOOBIG, "message of %zu bytes and %zu descriptors too large", len, nfds);
	proto_hdr_encode(hdr, (uint32_t)len, (uint32_t)nfds);
	struct iovec iov[2] = { { hdr, PROTO_HDR }, { (void *)payload, len } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	if (nfds) {
		memset(&cm, 0, sizeof cm);
		msg.msg_control = cm.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	size_t total = PROTO_HDR + len, sent = 0;
	while (sent < total) {
		ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return md_fail(MD_EIO, "send: %s", strerror(errno));
		}
		sent += (size_t)w;
		/* descriptors went with the first bytes; advance the iovecs */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		size_t skip = (size_t)w;
		while (skip && msg.msg_iovlen) {
			if (skip >= msg.msg_iov[0].iov_len) {
				skip -= msg.msg_iov[0].iov_len;
				msg.msg_iov++;
				msg.msg_iovlen--;
			} else {
				msg.msg_iov[0].iov_base = (char *)msg.msg_iov[0].iov_base + skip;
				msg.msg_iov[0].iov_len -= skip;
				skip = 0;
			}
		}
	}
	return 0;
}

void proto_reader_init(struct proto_reader *r)
{
	memset(r, 0, sizeof *r);
}

void proto_reader_free(struct proto_reader *r)
{
	for (size_t i = 0; i < r->nfdq; i++)
		close(r->fdq[i]);
	free(r->buf);
	memset(r, 0, sizeof *r);
}

long proto_reader_fill(struct proto_reader *r, int sock)
{
	if (r->cap - r->len < 65536) {
		size_t ncap = r->cap ? r->cap * 2 : 65536;
		if (ncap > PROTO_HDR + PROTO_MAX_PAYLOAD + 65536)
			ncap = PROTO_HDR + PROTO_MAX_PAYLOAD + 65536;
		if (ncap <= r->len)
			return md_fail(MD_EPROTO, "receive buffer overflow");
		uint8_t *nb = realloc(r->buf, ncap);
		if (!nb)
			return MD_ENOMEM;
		r->buf = nb;
		r->cap = ncap;
	}
	union {
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { r->buf + r->len, r->cap - r->len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
	ssize_t n;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return MD_EBUSY;
		return md_fail(MD_EIO, "receive: %s", strerror(errno));
	}
	int bad = (msg.msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fd = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			if (r->nfdq < sizeof r->fdq / sizeof r->fdq[0])
				r->fdq[r->nfdq++] = fd[i];
			else {
				close(fd[i]);
				bad = 1;
			}
		}
	}
	if (bad)
		return md_fail(MD_EPROTO, "too many file descriptors in one message");
	r->len += (size_t)n;
	return (long)n;
}

int proto_reader_next(struct proto_reader *r, char **payload, size_t *len,
		      int *fds, size_t *nfds)
{
	if (r->len < PROTO_HDR)
		return 0;
	if (r->buf[0] != 'M' || r->buf[1] != 'D')
		return md_fail(MD_EPROTO, "bad message magic");
	unsigned ver = r->buf[2] | (unsigned)r->buf[3] << 8;
	if (ver != PROTO_VERSION)
		return md_fail(MD_EPROTO, "protocol version %u not supported (want %u)", ver, PROTO_VERSION);
	uint32_t n = le32(r->buf + 4), nf = le32(r->buf + 8);
	if (n > PROTO_MAX_PAYLOAD)
		return md_fail(MD_EPROTO, "message length %u over the %u-byte cap", n, PROTO_MAX_PAYLOAD);
	if (nf > PROTO_MAX_FDS)
		return md_fail(MD_EPROTO, "message declares %u descriptors", nf);
	if (r->len < PROTO_HDR + (size_t)n)
		return 0;
	if (r->nfdq < nf)
		return md_fail(MD_EPROTO, "message declares %u descriptors, %zu arrived", nf, r->nfdq);
	char *p = malloc((size_t)n + 1);
	if (!p)
		return MD_ENOMEM;
	memcpy(p, r->buf + PROTO_HDR, n);
	p[n] = 0;
	memmove(r->buf, r->buf + PROTO_HDR + n, r->len - PROTO_HDR - n);
	r->len -= PROTO_HDR + n;
	memcpy(fds, r->fdq, nf * sizeof(int));
	memmove(r->fdq, r->fdq + nf, (r->nfdq - nf) * sizeof(int));
	r->nfdq -= nf;
	*payload = p;
	*len = n;
	*nfds = nf;
	return 1;
}

int proto_recv(struct proto_reader *r, int sock, char **payload, size_t *len,
	       int *fds, size_t *nfds)
{
	for (;;) {
		int rc = proto_reader_next(r, payload, len, fds, nfds);
		if (rc)
			return rc;
		long n = proto_reader_fill(r, sock);
		if (n == MD_EBUSY) {
			/* blocking caller on a socket with no data yet: wait */
			struct pollfd pfd = { .fd = sock, .events = POLLIN };
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return md_fail(MD_EIO, "receive: %s", strerror(errno));
			continue;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return r->len ? md_fail(MD_EPROTO, "connection closed mid-message") : 0;
	}
}
