/*
 * meta/policy.h — license policy files and verdicts.
 *
 * Syntax (docs/licenses.md has the full text):
 *   # comment                      (also after a value)
 *   allow  = ID[, ID...]
 *   deny   = ID[, ID...]
 *   review = ID[, ID...]
 *   default = allow | deny | review          (built-in default: allow)
 *   enforce = true | false                   (built-in default: false)
 * ID is an SPDX id, a LicenseRef- id or a Hub identifier, compared case-
 * insensitively after spdx_normalize (so "llama3.1" and
 * "LicenseRef-Llama-3.1-Community" are the same). Richer forms:
 *   @CLASS    every license of that class: @permissive @public-domain
 *             @weak-copyleft @copyleft @non-commercial @no-derivatives
 *             @restricted-use @unknown  (spdx.h)
 *   PREFIX*   every id starting with PREFIX ("LicenseRef-Llama-*")
 *   unknown   the card declares no license (also matched by @unknown)
 *
 * Evaluation: every license that applies to the model — the declared one,
 * the detected one (when a LICENSE text matched) and each ancestor's in the
 * lineage — gets a verdict: an exact-id rule decides (the last line naming
 * it wins), else a PREFIX* rule (last wins), else class rules (the most
 * severe wins), else the default. The model's verdict is the most severe of
 * them (deny > review > allow); the decision names that license, where it
 * came from and the rule (file:line) that decided.
 *
 * Caps: policy text <= 64 KiB, <= 1000 entries, lines <= 1024 bytes.
 * A struct policy is immutable after parsing: share it between threads.
 */
#ifndef MD_POLICY_H
#define MD_POLICY_H

#include <stddef.h>

#define POLICY_MAX_TEXT (64 * 1024)
#define POLICY_MAX_ENTRIES 1000
#define POLICY_MAX_LINE 1024

enum policy_verdict { POLICY_ALLOW = 0, POLICY_REVIEW = 1, POLICY_DENY = 2 };

struct policy; /* opaque */

struct policy_decision {
	enum policy_verdict verdict;
	char license[128]; /* normalized id that decided ("" when none applied) */
	char source[32];   /* "declared", "detected", "lineage[N]" */
	char rule[256];    /* "policy.conf:3: deny = @non-commercial" or
	                      "policy.conf:1: default = review" or
	                      "built-in default = allow" */
	int line;          /* line of the deciding rule, 0 for the built-in */
};

/*
 * Parse policy text text[0..len). origin names it in messages ("policy.conf",
 * a path; may be NULL: "policy"). On success *out is a new policy (free with
 * policy_free). Errors: MD_EINVAL with detail "ORIGIN:LINE: what is wrong",
 * MD_ETOOBIG (text over POLICY_MAX_TEXT or too many entries), MD_ENOMEM.
 * The text must be UTF-8 without NUL bytes (util_check_text: the detail
 * names the line and byte offset), even in comments. An empty text is a valid policy: default allow, enforce false.
 */
int policy_parse(const char *text, size_t len, const char *origin, struct policy **out);

/* Read and parse a file. Errors as policy_parse, plus MD_ENOENT / MD_EIO. */
int policy_load(const char *path, struct policy **out);

void policy_free(struct policy *p);

/* Warnings about rules that parse but likely do not mean what was written:
 * an id the license table does not know that is one or two edits from one
 * it does ("ORIGIN:LINE: 'GPL-3.O' is not a license id modeld knows; did you
 * mean 'gpl-3.0'? ..."). policy_nwarnings() counts them (0 for NULL);
 * policy_warning() returns the i-th, borrowed, or NULL past the end. */
size_t policy_nwarnings(const struct policy *p);
const char *policy_warning(const struct policy *p, size_t i);

/* Whether `enforce = true` was set: the daemon then refuses denied pulls. */
int policy_enforce(const struct policy *p);

/*
 * Evaluate. declared: the card's license (any id form; NULL or "" means the
 * card declares none, evaluated as "NOASSERTION"/@unknown). detected: the
 * matched id of the LICENSE text, or NULL. lineage: nlineage ancestor
 * license ids (entries may be NULL: skipped). p may be NULL: built-in
 * default (allow). Fills *d. Returns 0 or MD_ENOMEM.
 */
int policy_evaluate(const struct policy *p, const char *declared, const char *detected,
		    const char *const *lineage, size_t nlineage, struct policy_decision *d);

/*
 * The same with every license the card declares: a card may list several
 * (`license: [apache-2.0, cc-by-nc-4.0]`), and each one applies, so each is
 * evaluated like the declared one (sources "declared", "declared[1]", ...).
 * ndeclared 0 means the card declares none. Returns 0 or MD_ENOMEM.
 */
int policy_evaluate_list(const struct policy *p, const char *const *declared, size_t ndeclared,
			 const char *detected, const char *const *lineage, size_t nlineage,
			 struct policy_decision *d);

/* "allow", "review", "deny". */
const char *policy_verdict_name(enum policy_verdict v);

#endif
