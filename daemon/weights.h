/*
 * daemon/weights.h — operations on a revision's converted weight files:
 * the tensor tables (`modelctl tensors`) and exports of packs to fresh
 * safetensors or GGUF files (`modelctl export --format`).
 */
#ifndef MD_WEIGHTS_H
#define MD_WEIGHTS_H

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/ops.h"

/* req {"ref"}: posts the tensors of every weight file, file by file, as
 * {"partial": [...]} frames and a final {"ok":true,"result":[...]}; each
 * tensor {file, name, dtype, shape, bytes, offset, pack, alias?, digest}.
 * Returns an MD_E* code (nothing posted) on failure. */
int weights_tensors(struct daemon *d, struct ops_peer *p, json_t *req);

/* req {"ref"}: the converted files, {"files": [{path, format, tensors}]}. */
int weights_list(struct daemon *d, json_t *req, json_t **res);

/*
 * req {"ref", "format": "safetensors"|"gguf", "files": [path...]} with one
 * writable descriptor per path (the client opened the outputs): writes each
 * export. *res {"written": [{path, format, bytes}]}. MD_EUNSUP when a dtype
 * has no equivalent in the format (detail names the tensor).
 */
int weights_export(struct daemon *d, json_t *req, int *fds, size_t nfds, json_t **res);

#endif
