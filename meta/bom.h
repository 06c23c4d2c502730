/*
 * meta/bom.h — audit exports: CycloneDX 1.6 ML-BOM, SPDX 3.0.1 JSON-LD (AI
 * profile) and CSV, from model records the caller assembles from the
 * catalog. Pure functions of their input: no store, no I/O.
 *
 * Input: a JSON array of model records; every key is optional except name:
 *   {
 *     "name": "acme/tiny-llama",            (required, string)
 *     "revision": "main",                   requested revision
 *     "commit": "0123abcd...",              resolved commit / digest
 *     "files": [{"path", "size", "sha256"}],
 *     "license": lic_assess() object (declared, spdx, detected, verdict,
 *                rule, flags, lineage),
 *     "provenance": { string/number/bool values: source, url, repo_id,
 *                     retrieved_at, modeld_version, ... },
 *     "lineage": [{"name", "license"}]     ancestors, nearest first (when
 *                                          absent, license.lineage is used)
 *     "card": card_parse() object          (pipeline_tag, datasets, tags,
 *                                           model_index, library_name, ...)
 *   }
 * Records without a string "name" are skipped.
 *
 * CycloneDX: one component of type machine-learning-model per record
 * (bom-ref "model:NAME@REV", purl pkg:huggingface/NAME@COMMIT when a commit
 * is known), its files as nested "file" components with SHA-256 hashes,
 * licenses (declared, and the detected one as "concluded" when it matched),
 * pedigree.ancestors, modelCard (task, datasets, performanceMetrics from
 * model-index), externalReferences and "modeld:*" properties (verdict,
 * rule, score, flags, provenance).
 * SPDX 3.0.1: CreationInfo, a Tool agent, an SpdxDocument, one ai_AIPackage
 * per record with verifiedUsing sha256 per file (software_File elements),
 * Relationships contains / hasDeclaredLicense / hasConcludedLicense /
 * ancestorOf / trainedOn (dataset_DatasetPackage), license expressions as
 * simplelicensing_LicenseExpression elements.
 */
#ifndef MD_BOM_H
#define MD_BOM_H

#include <stddef.h>
#include <jansson.h>

struct bom_opts {
	const char *timestamp; /* "2026-11-23T08:00:00Z"; NULL: now (UTC) */
	const char *uuid;      /* serial/namespace UUID; NULL: random (OpenSSL) */
	const char *tool_version; /* modeld version; NULL: "unknown" */
};

/* Each returns 0 and a new JSON object in *out (caller decrefs), or
 * MD_EINVAL (models not an array), MD_ENOMEM. opts may be NULL. */
int bom_cyclonedx(const json_t *models, const struct bom_opts *opts, json_t **out);
int bom_spdx(const json_t *models, const struct bom_opts *opts, json_t **out);

/*
 * CSV (RFC 4180, header line first, CRLF line ends), malloc'd NUL-terminated
 * into *out with its length in *len (caller frees). Columns: name, revision,
 * commit, declared, spdx, detected, score, verdict, rule, flags (kinds,
 * ';'-separated), base_models (';'), source, files, bytes. Cells that would
 * start with = + - @ are prefixed with ' (spreadsheet formula injection).
 * 0, MD_EINVAL or MD_ENOMEM.
 */
int bom_csv(const json_t *models, char **out, size_t *len);

#endif
