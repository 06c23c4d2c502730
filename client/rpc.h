/*
 * client/rpc.h — the client side of the control protocol (docs/protocol.md),
 * part of libmodeld. One request at a time per connection.
 */
#ifndef MD_RPC_H
#define MD_RPC_H

#include <stddef.h>

#include <jansson.h>

struct rpc {
	int fd;
	void *reader;    /* struct proto_reader, owned */
};

/*
 * Connect to the daemon. path NULL means the default (paths_client_socket).
 * 0 and *out (free with rpc_close), MD_ECONN (not running: detail says
 * where it looked), MD_EPERM (socket not accessible), MD_ENOMEM.
 */
int rpc_connect(const char *path, struct rpc **out);
void rpc_close(struct rpc *c);

/* Send one request frame; req and fds are borrowed. 0 or MD_EIO. */
int rpc_send(struct rpc *c, json_t *req, const int *fds, size_t nfds);

/* Called for every progress frame ({"progress":{...}}); borrowed. */
typedef void rpc_progress_fn(json_t *progress, void *arg);

/*
 * Wait for the final reply. On {"ok":true} returns 0 with *result (new
 * reference; "partial" frames are concatenated into an array result) and
 * the descriptors that came with it in *fds (malloc'd array the caller
 * frees and closes; may be NULL when none). On {"ok":false} returns the
 * daemon's code with its message as the md_fail detail. MD_EPROTO/MD_EIO
 * when the daemon hung up or spoke nonsense.
 */
int rpc_wait(struct rpc *c, rpc_progress_fn *cb, void *arg, json_t **result,
	     int **fds, size_t *nfds);

/*
 * rpc_wait for a reply without descriptors or partial frames whose result
 * is only to be printed: *text (malloc'd, NUL-terminated) is the result as
 * the daemon wrote it (compact JSON), not parsed and dumped again — for
 * results of megabytes (list --json of 10,000 models). Errors as rpc_wait.
 */
int rpc_wait_text(struct rpc *c, rpc_progress_fn *cb, void *arg, char **text);

/* rpc_send then rpc_wait. */
int rpc_call(struct rpc *c, json_t *req, const int *fds, size_t nfds, rpc_progress_fn *cb,
	     void *arg, json_t **result, int **rfds, size_t *nrfds);

#endif
