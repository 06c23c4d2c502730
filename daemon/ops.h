/*
 * daemon/ops.h — the operations of the control protocol (docs/protocol.md):
 * decoding a request, checking the peer's rights, answering inline (reads)
 * or as a job (import, rm, gc, verify, ...).
 */
#ifndef MD_OPS_H
#define MD_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/daemon.h"

/* Who is asking: filled by the server from SO_PEERCRED. */
struct ops_peer {
	uint64_t conn_id;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int can_write;       /* the daemon's own uid or root */
	void *pending;       /* an import being assembled over several frames */
};

enum {
	OPS_REPLIED = 0,     /* a final reply was (or will be) posted */
	OPS_MORE = 1,        /* a chunk of a multi-frame request: no reply yet */
	OPS_CLOSE = 2,       /* reply posted; close the connection after it */
};

/*
 * Handle one request frame (payload is borrowed, fds are taken over).
 * Always posts exactly one final reply unless OPS_MORE is returned.
 */
int ops_handle(struct daemon *d, struct ops_peer *peer, const char *payload, size_t len,
	       int *fds, size_t nfds);

/* The connection is gone: drop what ops kept for it. */
void ops_conn_closed(struct daemon *d, struct ops_peer *peer);

#endif
