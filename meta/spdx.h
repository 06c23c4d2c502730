/*
 * meta/spdx.h — Hugging Face Hub license identifiers -> SPDX identifiers,
 * and license classes for policies.
 *
 * The table (meta/spdx.c, reproduced in docs/licenses.md) covers every
 * identifier of the Hub's documented license list plus the model licenses the
 * Hub added later (llama3.x, llama4, gemma, apple-*, ...). Where SPDX has an
 * identifier it is used; otherwise a LicenseRef- identifier is minted
 * (LicenseRef-Llama-3.1-Community, LicenseRef-Gemma, ...).
 *
 * `gpl-3.0` maps to GPL-3.0-only (likewise gpl-2.0, lgpl-*, agpl-3.0): the Hub
 * identifier names one version and says nothing of "or any later version";
 * without that grant only the named version applies, so -only is the reading
 * that never claims rights the licensor did not give.
 *
 * All functions are thread-safe (the table is constant). Nothing here
 * allocates except spdx_normalize.
 */
#ifndef MD_SPDX_H
#define MD_SPDX_H

#include <stddef.h>

/* License classes: a bit set, a license may carry several. */
enum {
	SPDX_PERMISSIVE = 1u << 0,     /* use, modify, redistribute, commercial ok */
	SPDX_PUBLIC_DOMAIN = 1u << 1,  /* dedication / waiver (also PERMISSIVE) */
	SPDX_WEAK_COPYLEFT = 1u << 2,  /* file/library-level copyleft (LGPL, MPL) */
	SPDX_COPYLEFT = 1u << 3,       /* work-level share-alike (GPL, CC-BY-SA) */
	SPDX_NONCOMMERCIAL = 1u << 4,  /* commercial use not granted */
	SPDX_NODERIVS = 1u << 5,       /* no derivatives (CC-*-ND) */
	SPDX_RESTRICTED = 1u << 6,     /* use-based restrictions / AUP / caps
	                                  (Llama, Gemma, RAIL family) */
	SPDX_UNKNOWN = 1u << 7,        /* unknown, other, unmapped */
	SPDX_CLASS_ALL = (1u << 8) - 1
};

struct spdx_license {
	const char *hub;     /* Hub identifier, lower case ("llama3.1"); NULL if none */
	const char *id;      /* SPDX or LicenseRef- identifier */
	const char *name;    /* full name */
	unsigned classes;    /* SPDX_* bits */
	const char *family;  /* "llama", "gemma", "rail", "gpl", "cc", ... or NULL */
};

/*
 * Look up by Hub identifier or by SPDX/LicenseRef identifier, case-
 * insensitively ("Apache-2.0", "apache-2.0", "APACHE-2.0" all find the same
 * entry). Returns a pointer into the static table (valid forever) or NULL.
 */
const struct spdx_license *spdx_lookup(const char *id);

/*
 * Normalize any license identifier found in a card or a policy to the SPDX
 * or LicenseRef- form, malloc'd into *out (caller frees):
 *   known Hub or SPDX id         -> its table id ("mit" -> "MIT")
 *   "other" with license_name    -> "LicenseRef-" + license_name sanitized to
 *                                   [A-Za-z0-9.-] (e.g. "LicenseRef-my-lic")
 *   "other" without a name       -> "LicenseRef-other"
 *   "unknown", "", NULL          -> "NOASSERTION"
 *   "LicenseRef-..." not in table -> kept, sanitized
 *   anything else                -> "LicenseRef-" + sanitized input
 * Inputs longer than 200 bytes are cut. Returns 0 or MD_ENOMEM.
 */
int spdx_normalize(const char *id, const char *license_name, char **out);

/*
 * Classes of a license id (any form accepted by spdx_normalize; license_name
 * may be NULL). Unknown ids, "other" and NOASSERTION give SPDX_UNKNOWN.
 */
unsigned spdx_classes(const char *id);

/* Family of an id ("llama", ...) or NULL when none or unknown. Static. */
const char *spdx_family(const char *id);

/*
 * Class names as used in policies and JSON: "permissive", "public-domain",
 * "weak-copyleft", "copyleft", "non-commercial", "no-derivatives",
 * "restricted-use", "unknown". spdx_class_name takes one bit; returns NULL
 * for anything else. spdx_class_parse: 0 and *bit, or MD_EINVAL.
 */
const char *spdx_class_name(unsigned bit);
int spdx_class_parse(const char *name, unsigned *bit);

/* The table, for docs and tests. Index < spdx_count(). */
size_t spdx_count(void);
const struct spdx_license *spdx_at(size_t i);

#endif
