/*
 * meta/card.h — model card (README.md) front matter -> normalized facts.
 *
 * A card is untrusted input. Parsing never fails because of the card's
 * content: a broken or hostile card yields {"status": "unknown", "reason":
 * "..."} and the import goes on. Only out-of-memory (and I/O errors for
 * card_parse_fd) are returned as errors.
 *
 * Hard caps (set here, enforced in card.c):
 *   CARD_MAX_FRONT    front matter (between the leading "---" lines) <= 1 MiB;
 *                     only the first CARD_MAX_FRONT + 8 bytes of a README are
 *                     ever examined, so a 100 MB card costs one 1 MiB scan.
 *   CARD_MAX_DEPTH    nesting depth of YAML collections <= 32
 *   CARD_MAX_NODES    YAML nodes <= 20000, counting every alias as the size of
 *                     the node it repeats (billion-laughs expansion)
 *   CARD_MAX_ALIASES  alias uses (*name) <= 64; anchors (&name) <= 256. Aliases
 *                     are allowed (harmless ones occur in real cards) but each
 *                     use is charged its expanded size against CARD_MAX_NODES,
 *                     so exponential expansion is refused after a few hundred
 *                     bytes of input. An alias to an anchor whose node is not
 *                     complete (a cycle) is refused.
 *   Binary junk: NUL bytes, invalid UTF-8 or control characters make the
 *   card "unknown" with the reason (libyaml's own message for UTF-8).
 *
 * Output object (card_parse; keys present only when the card has them):
 *   "status": "ok" | "none" (no front matter) | "unknown" (refused/broken)
 *   "reason": string                 when status is not "ok"
 *   "warnings": [string]             fields that were dropped, and why; a
 *                                    key repeated in a mapping (the last
 *                                    value is kept) is one of them
 *   "license": string                Hub identifier as written ("apache-2.0")
 *   "license_spdx": string           spdx_normalize(license, license_name)
 *   "license_name", "license_link": string
 *   "base_model": [string]           a string or a list in the card
 *   "base_model_relation": "finetune" | "quantized" | "merge" | "adapter"
 *   "datasets", "tags", "language": [string]
 *   "pipeline_tag", "library_name", "model_name": string
 *   "model_index": [{ "task", "dataset", "metric": string, "value": number
 *                     or string, and when present "task_name", "dataset_name",
 *                     "dataset_config", "split", "metric_name", "verified",
 *                     "source_name", "source_url" }]  (<= 4096 entries)
 *   "gated": true | false | "auto" | "manual"
 *   "extra_gated": { SUFFIX: value } for each extra_gated_SUFFIX key
 *                   ("prompt", "fields", "heading", "description",
 *                    "button_content", ...), values copied as JSON
 */
#ifndef MD_CARD_H
#define MD_CARD_H

#include <stddef.h>
#include <jansson.h>

#define CARD_MAX_FRONT (1024 * 1024)
#define CARD_MAX_DEPTH 32
#define CARD_MAX_NODES 20000
#define CARD_MAX_ALIASES 64
#define CARD_MAX_ANCHORS 256
#define CARD_MAX_LIST 1000   /* items kept per list field */
#define CARD_MAX_RESULTS 4096 /* model_index entries kept */
#define CARD_MAX_STRING 4096 /* bytes of an id-like string field */

/*
 * Parse the README bytes buf[0..len) (need not be NUL-terminated; not
 * retained). On success *out is a new reference (caller json_decref's) and 0
 * is returned, whatever the card contains. Errors: MD_EINVAL (NULL
 * arguments), MD_ENOMEM.
 */
int card_parse(const char *buf, size_t len, json_t **out);

/*
 * Read at most CARD_MAX_FRONT + 8 bytes from fd (from its current offset)
 * and card_parse them. Errors: those of card_parse, MD_EIO on a read error.
 * fd is not closed.
 */
int card_parse_fd(int fd, json_t **out);

/*
 * The catalog facts a card gives (issue: catalog), for `show --json` and the
 * list filters, as a new object in *out (caller decrefs):
 *   { "task": pipeline_tag, "library": library_name, "languages": [...],
 *     "datasets": [...], "base_model": [...], "provider": the ORG of
 *     model_name "ORG/NAME" (NULL model_name: null), "license": license_spdx
 *     ("NOASSERTION" when the card declares none), "tags": [...],
 *     "gated": value or false, "benchmarks": model_index (each with task,
 *     dataset, metric, value and the optional keys), "card_status": status }
 * Missing facts are null (strings) or [] (lists). card may be NULL or an
 * "unknown"/"none" card. 0 or MD_ENOMEM.
 */
int card_facts(const json_t *card, const char *model_name, json_t **out);

#endif
