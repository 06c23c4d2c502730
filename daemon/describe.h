/*
 * daemon/describe.h — what modeld records about a revision besides its
 * bytes: the model card (README.md front matter), the license record
 * (declared, detected from the LICENSE text, lineage through base_model,
 * policy verdict) and the catalog facts. Uses meta/ (which knows nothing of
 * the store) and reads the staged files of an ingest.
 */
#ifndef MD_DESCRIBE_H
#define MD_DESCRIBE_H

#include <jansson.h>

#include "daemon/daemon.h"
#include "registry/ingest.h"

#define DESCRIBE_MAX_LICENSE (1u << 20) /* bytes of a LICENSE text examined */

/*
 * Add "card", "license" and "facts" to extra (an object the caller owns).
 * A broken card never fails this (its reason is recorded). With a policy
 * that says enforce = true, a model whose verdict is deny is refused:
 * MD_EREFUSED with "NAME: license deny: ... by FILE:LINE: rule".
 * Other errors: MD_ENOMEM, MD_EIO.
 */
int describe_revision(struct daemon *d, const char *name, struct ingest *ing, json_t *extra);

#endif
