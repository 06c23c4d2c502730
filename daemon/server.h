/*
 * daemon/server.h — the control socket: one poll loop on the main thread,
 * non-blocking connections, frames (common/proto.h), peer credentials.
 */
#ifndef MD_SERVER_H
#define MD_SERVER_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "daemon/daemon.h"

/* Maximum simultaneous connections; more are accepted and closed at once. */
#define SERVER_MAX_CONNS 1024
/* ... of which a user other than root and the daemon's own may hold these. */
#define SERVER_MAX_CONNS_PER_UID 256
/* Out of descriptors (EMFILE, ENFILE): new connections wait in the listen
 * queue and are tried again after this many ms, not in a busy loop. */
#define SERVER_ACCEPT_PAUSE_MS 100

/* listen_fd is taken over (already bound and listening). 0 or MD_ENOMEM/EIO. */
int server_init(struct daemon *d, int listen_fd, struct server **out);
/* Loop until daemon->stopping; returns 0. */
int server_run(struct server *srv);
void server_free(struct server *srv);
/* Wake the loop (thread- and async-signal-safe). */
void server_wake(struct server *srv);

/*
 * Queue a frame for connection conn_id from any thread. msg is taken over;
 * fds are taken over (closed after sending, or when the connection is gone).
 * final marks the end of the current request (the connection may then read
 * its next one). droppable frames (progress) are skipped when the
 * connection still has output pending.
 */
void server_post(struct server *srv, uint64_t conn_id, json_t *msg, int *fds, size_t nfds,
		 int final, int droppable);

/* Queue a frame whose payload is prefix + json + suffix, copied as they are
 * (json must already be valid JSON text). */
void server_post_raw(struct server *srv, uint64_t conn_id, const char *prefix, const char *json,
		     size_t len, const char *suffix, int final);

/* Final reply helpers: {"ok":true,"result":result} (result taken over) or
 * {"ok":false,"code":rc,"error":msg}. */
void server_reply_ok(struct server *srv, uint64_t conn_id, json_t *result, int *fds, size_t nfds);
void server_reply_err(struct server *srv, uint64_t conn_id, int rc, const char *msg);

#endif
