/*
 * daemon/audit.h — the license and audit operations: a revision's license
 * record with its lineage through base_model, and the audit of every stored
 * revision under a policy, rendered as JSON, CSV, CycloneDX 1.6 or SPDX 3.0.
 */
#ifndef MD_AUDIT_H
#define MD_AUDIT_H

#include <jansson.h>

#include "daemon/daemon.h"

#include "meta/lic.h"
#include "registry/store.h"

#define AUDIT_MAX_POLICY (1u << 20) /* bytes of policy text a client may send */

/*
 * The lineage of model name (card: its parsed card) as the catalog in txn
 * holds it now: breadth-first through base_model, every generation, nearest
 * first, each ancestor once, at most LIC_MAX_DEPTH generations and
 * LIC_MAX_ANCESTORS entries (meta/lic.h). *chain: a new array of
 * {"name","depth","via" (the model whose base_model names it),"in_store",
 * "license" (declared id or null),"revision","verdict" (its own license's,
 * under pol), "loop": true (a base model that is the model itself or one of
 * its descendants: not followed), "cut": true (its bases not followed: cap)}.
 * *anc (malloc'd, nanc entries) borrows its strings from *chain.
 * 0 or MD_ENOMEM.
 */
int audit_lineage(struct daemon *d, MDB_txn *txn, const char *name, const json_t *card,
		  const struct policy *pol, json_t **chain, struct lic_ancestor **anc, size_t *nanc);

/*
 * The license record of a stored revision m of name with its lineage, the
 * lineage flags and the verdict recomputed from the catalog as it is now
 * (lic_relineage) under pol: the stored record was made at import, when a
 * base model may not have been stored yet. *license and *chain (as
 * audit_lineage) are new. 0 or MD_ENOMEM.
 */
int audit_live_license(struct daemon *d, MDB_txn *txn, const char *name, json_t *m,
		       const struct policy *pol, json_t **license, json_t **chain);

/*
 * req: {"ref"}. *res: {"name","revision","license": record (live, under the
 * daemon's policy), "lineage": chain (audit_lineage)}.
 * 0, MD_ENOENT, MD_EINVAL, MD_EDB.
 */
int audit_license(struct daemon *d, json_t *req, json_t **res);

/*
 * req: {"policy_text"?, "policy_name"?, "format": "table"|"json"|"csv"|
 * "cyclonedx"|"spdx"}. *res: {"models": [records], "counts": {allow,
 * review, deny}, "document": text (csv) or object (cyclonedx, spdx)}.
 * Verdicts are re-decided under the given policy (else the daemon's).
 * 0, MD_EINVAL (bad policy: detail names the line), MD_ENOMEM, MD_EDB.
 */
int audit_run(struct daemon *d, json_t *req, json_t **res);

#endif
