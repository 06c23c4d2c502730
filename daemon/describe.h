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
/* Bump when what describe records, or how it reads the files (the
 * parameter count's rules, the card's facts), changes: revisions recorded
 * with a lower "described" are described again at start-up. */
#define DESCRIBE_VERSION 1

/*
 * Add "card", "license", "facts" and "described" (DESCRIBE_VERSION) to
 * extra (an object the caller owns).
 * A broken card never fails this (its reason is recorded). With a policy
 * that says enforce = true, a model whose verdict is deny is refused:
 * MD_EREFUSED with "NAME: license deny: ... by FILE:LINE: rule".
 * Other errors: MD_ENOMEM, MD_EIO.
 */
int describe_revision(struct daemon *d, const char *name, struct ingest *ing, json_t *extra);

/*
 * At start-up, before jobs run: describe every stored revision whose
 * "described" is below DESCRIBE_VERSION again from its stored files, as an
 * import would now (the policy is not enforced: nothing stored is
 * removed), and store the new card, license and facts (the summaries and
 * indexes follow). A revision that fails is logged with its reason, keeps
 * what it had and is tried at the next start; *updated and *failed count.
 * Once none is left, the catalog's meta records the version and later
 * starts skip the scan. 0, MD_EDB, MD_ENOSPC, MD_ENOMEM.
 */
int describe_refresh(struct daemon *d, size_t *updated, size_t *failed);

#endif
