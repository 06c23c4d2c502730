/*
 * daemon/audit.h — the license and audit operations: a revision's license
 * record with its lineage through base_model, and the audit of every stored
 * revision under a policy, rendered as JSON, CSV, CycloneDX 1.6 or SPDX 3.0.
 */
#ifndef MD_AUDIT_H
#define MD_AUDIT_H

#include <jansson.h>

#include "daemon/daemon.h"

#define AUDIT_MAX_DEPTH 8          /* base_model generations followed */
#define AUDIT_MAX_POLICY (1u << 20) /* bytes of policy text a client may send */

/*
 * req: {"ref"}. *res: {"name","revision","license": record,
 * "lineage": [{"name","depth","in_store","revision","license","verdict"}]}.
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
