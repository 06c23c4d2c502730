/*
 * daemon/serve.h — serving weights to runtimes (docs/serving.md): the `open`
 * and `close` operations and the lease table that pins opened revisions
 * against `rm` (and so against `gc`, which only frees what `rm` unreferenced).
 *
 * A lease is (connection, model, revision). `open` takes one; it ends with
 * `close` {lease} or when the connection closes (serve_conn_closed). The
 * table is process-wide (one daemon per process), guarded by a mutex; `open`
 * runs on the socket loop, `rm` on a job thread.
 */
#ifndef MD_SERVE_H
#define MD_SERVE_H

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"

#define SERVE_MAX_LEASES 65536        /* hard cap on leases, daemon-wide */
#define SERVE_MAX_CONN_LEASES 256     /* hard cap on leases per connection */
#define SERVE_ROWS_FRAME (2u << 20)   /* tensor-row bytes per frame (payload cap 16 MiB) */
#define SERVE_META_MAX (1u << 20)     /* string metadata bytes per pack sent */

/*
 * req {"ref"}: resolve, take a lease, post the tensor table and one read-only
 * descriptor per pack: zero or more {"open_part":{"packs":[..],"tensors":[..]}}
 * frames (at most PROTO_MAX_FDS descriptors each), then the final
 * {"ok":true,"result":{name, revision, lease, packs, tensors}}. Returns an
 * MD_E* code when nothing final was posted: MD_ENOENT, MD_EBUSY (being
 * removed), MD_ETOOBIG (lease caps), MD_ECORRUPT (a pack failed its checks).
 */
int serve_open(struct daemon *d, struct ops_peer *p, json_t *req);

/* req {"lease"}: end one lease of this connection. *res {"lease", "closed"}.
 * MD_ENOENT when the connection holds no such lease. */
int serve_close(struct daemon *d, struct ops_peer *p, json_t *req, json_t **res);

/*
 * Before removing name (rev NULL: every revision; else a ref or revision
 * prefix, resolved here): 0 and the model is marked
 * as being removed (new opens fail with MD_EBUSY) until serve_rm_end(name),
 * or MD_EBUSY with the detail "acme/x is open by N clients (pid 12, 34);
 * close them or retry" when a lease holds it.
 */
int serve_rm_begin(struct daemon *d, const char *name, const char *rev);
void serve_rm_end(const char *name);

/* Drop every lease of a connection (called from ops_conn_closed). */
void serve_conn_closed(uint64_t conn_id);

#endif
