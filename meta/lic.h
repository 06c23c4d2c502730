/*
 * meta/lic.h — a revision's license record: declared (card), detected
 * (LICENSE text), lineage (ancestors' licenses, supplied by the caller from
 * the catalog), disagreement flags and the policy verdict.
 *
 * This module knows nothing of the store or LMDB: the caller passes the
 * parsed card, the LICENSE bytes and the ancestors' licenses, and stores the
 * JSON it gets back (it is the "license" object of `modelctl show --json`).
 */
#ifndef MD_LIC_H
#define MD_LIC_H

#include <stddef.h>
#include <jansson.h>

#include "meta/licdetect.h"
#include "meta/policy.h"

/* The lineage is followed this many base_model generations deep and up to
 * this many ancestors (breadth-first, nearest first); an ancestor whose own
 * base models were not followed is marked "cut" and flagged. */
#define LIC_MAX_DEPTH 8
#define LIC_MAX_ANCESTORS 64

/* One ancestor through base_model, any generation (nearest first). */
struct lic_ancestor {
	const char *name;    /* "meta-llama/Llama-3.1-8B" */
	const char *license; /* its declared license, any id form; NULL when the
	                        ancestor is not in the store (unknown) or loop */
	const char *via;     /* the model whose base_model names it (the model
	                        itself for a direct base); NULL: unknown */
	unsigned depth;      /* 1 direct base model, 2 its base, ...; 0 = 1 */
	int loop;            /* it is the model itself or one of its own
	                        descendants in the chain: a cycle, not followed */
	int cut;             /* stored, but its base models were not followed
	                        (LIC_MAX_DEPTH / LIC_MAX_ANCESTORS reached) */
	const json_t *licenses; /* every license it declares (its record's
	                        "licenses", normalized ids) when it lists more
	                        than one, else NULL; each enters the verdict */
};

/* A LICENSE text is "modified" (flag license-text-modified) when it has at
 * least this many bigrams not in the matched license and they are at least
 * LIC_EXTRA_SHARE of the license's own bigrams. */
#define LIC_EXTRA_MIN 12
#define LIC_EXTRA_SHARE 0.05

/*
 * Disagreement flags, as a new JSON array (*out, caller decrefs) of
 * {"kind": K, "message": M} with K one of:
 *   "no-license"             the card declares no license (or "unknown")
 *   "declared-vs-detected"   the LICENSE text matched a license other than
 *                            the declared one (card says mit, text is Llama 3)
 *   "license-text-unmatched" a LICENSE text exists but matches nothing
 *   "license-text-modified"  it matched, but carries text the license lacks
 *   "declared-vs-lineage"    an ancestor's license carries obligations to
 *                            derivatives (restricted-use, non-commercial,
 *                            copyleft, no-derivatives) and the card declares
 *                            a license of another family (card says
 *                            apache-2.0, base model is Llama-licensed)
 *   "lineage-unknown"        an ancestor is not in the store, or the chain
 *                            was cut (LIC_MAX_DEPTH, LIC_MAX_ANCESTORS)
 *   "lineage-cycle"          base_model names the model itself, or the
 *                            chain loops back to a descendant
 * Ancestors past the direct base models count like direct ones; messages
 * name them as "ancestor X (base model of Y)".
 * declared / license_name: the card's fields (may be NULL). det: detection
 * result or NULL when there is no LICENSE text. anc/nanc: ancestors.
 * Returns 0 or MD_ENOMEM.
 */
int lic_flags(const char *declared, const char *license_name, const struct licdetect_result *det,
	      const struct lic_ancestor *anc, size_t nanc, json_t **out);

/*
 * The full record, a new JSON object in *out (caller decrefs):
 *  { "declared": hub id or null, "license_name", "license_link",
 *    "spdx": normalized declared id, "classes": [class names],
 *    "licenses": [every declared license, normalized: the entries of a
 *                 `license` list, else [spdx]; each enters the verdict],
 *    "detected": null | { "file", "id", "score", "coverage", "matched",
 *                         "runner_up", "runner_up_score", "extra" },
 *    "lineage": [{ "name", "license" (normalized or null), "classes",
 *                  "depth", "via", and "loop" / "cut" when true }],
 *    "verdict": "allow"|"review"|"deny", "rule": "...",
 *    "decided_by": { "license", "source" }, "enforce": bool,
 *    "flags": [...] (lic_flags) }
 * card: card_parse output or NULL. text/text_len: LICENSE bytes or NULL.
 * license_file: its path in the repo ("LICENSE", "LICENSE.md", or the file
 * license_link points to) for the report, or NULL. pol may be NULL (built-in
 * default: allow). Only the detected license enters the verdict when it
 * matched. Returns 0 or MD_ENOMEM.
 */
int lic_assess(const json_t *card, const char *text, size_t text_len, const char *license_file,
	       const struct lic_ancestor *anc, size_t nanc, const struct policy *pol, json_t **out);

/*
 * Re-decide a stored record (lic_assess output) under another policy (audit
 * --policy FILE) without the LICENSE text: uses its "spdx", the detected id
 * when "matched", and the "lineage" licenses; replaces "verdict", "rule",
 * "decided_by" and "enforce" in place. pol may be NULL (built-in default).
 * Returns 0, MD_EINVAL (record not an object) or MD_ENOMEM.
 */
int lic_reevaluate(json_t *record, const struct policy *pol);

/*
 * Replace the lineage of a stored record (lic_assess output) with anc/nanc,
 * the chain as the catalog holds it now: its "lineage", the lineage flags
 * ("declared-vs-lineage", "lineage-unknown", "lineage-cycle"; the others are
 * kept) and the verdict under pol (as lic_reevaluate). A record that is not
 * an object is replaced by nothing: MD_EINVAL. Returns 0 or MD_ENOMEM.
 */
int lic_relineage(json_t *record, const struct lic_ancestor *anc, size_t nanc, const struct policy *pol);

/*
 * One line for users, from a record: "deny: CC-BY-NC-4.0 (declared) by
 * policy.conf:3: deny = @non-commercial" — what the daemon says when it
 * refuses a pull under enforce = true. Writes at most n bytes to buf.
 */
void lic_verdict_message(const json_t *record, char *buf, size_t n);

/*
 * Which file of a repository to run detection on: the file license_link
 * names when it is a relative path inside the repo, or a hub URL of a file
 * in this repository ("https://huggingface.co/REPO/blob/main/LICENSE-MODEL",
 * also resolve/ and raw/, REPO = repo in any case; repo may be NULL), else
 * the first of LICENSE, LICENSE.md, LICENSE.txt, LICENCE, LICENCE.md,
 * LICENCE.txt, COPYING present in files (nfiles repo-relative paths).
 * Returns a pointer into files (borrowed) or NULL.
 */
const char *lic_pick_file(const char *const *files, size_t nfiles, const char *license_link,
			  const char *repo);

#endif
