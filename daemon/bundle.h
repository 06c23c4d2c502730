/*
 * daemon/bundle.h — bundles: one tar (optionally zstd) archive carrying
 * revisions between stores that share no network (docs/airgap.md).
 *
 * Layout, in this order (the importer insists on it, so it can check the
 * signature and the sizes before it accepts a byte of file data):
 *
 *   modeld-bundle.json        index {"format":"modeld-bundle","version":1,
 *                             "created","created_by","revisions":[{"name",
 *                             "revision","refs","dir","file_count","total_size"}]}
 *   SHA256SUMS                "HEX  PATH" (sha256sum format) for every other
 *                             entry of the archive, the index included
 *   SHA256SUMS.sig            optional: meta/sign.h bundle (in-toto + DSSE,
 *                             Ed25519) whose resources are exactly SHA256SUMS
 *   rN/manifest.json          the revision's manifest (name, revision, files
 *                             [{path,size,sha256}], card, license, facts...)
 *   rN/provenance.json        where it came from, when it was imported/exported
 *   rN/licenses/ID.txt        the corpus text of its declared/detected license
 *   rN/files/PATH             the original bytes of every file
 *
 * Both directions run as jobs on descriptors the client opened: the daemon
 * never opens a user path. Export job: fds[0] = the output file, fds[1] =
 * the signing key (PEM) when args.sign. Import job: fds[0] = the archive,
 * fds[1] = the public key (PEM) when args.verify.
 */
#ifndef MD_BUNDLE_H
#define MD_BUNDLE_H

#include <jansson.h>

#include "daemon/daemon.h"
#include "daemon/jobs.h"

#define BUNDLE_MAX_META (64u << 20)        /* one metadata entry held in memory */
#define BUNDLE_MAX_REVS 1000               /* revisions in one bundle */
#define BUNDLE_MAX_RATIO 1000              /* uncompressed : compressed bytes ... */
#define BUNDLE_RATIO_GRACE (64ull << 20)   /* ... checked once this much came out */
#define BUNDLE_MAX_TOTAL (4ull << 40)      /* uncompressed bytes of one bundle */
#define BUNDLE_SLACK (256ull << 20)        /* headers + metadata over the declared sizes */
#define BUNDLE_INDEX "modeld-bundle.json"
#define BUNDLE_SUMS "SHA256SUMS"
#define BUNDLE_SIG "SHA256SUMS.sig"

/*
 * Export job. args: {"refs":[ "ORG/NAME[@REV]", ...], "compression":
 * "none"|"zstd", "level": 1..19, "sign": bool}. Streams every file through
 * registry/reader.h in 1 MiB pieces (memory stays flat). *res: {"revisions":
 * [{name,revision}], "files", "bytes", "signed", "compression"}.
 * Errors: MD_ENOENT (a ref), MD_EINVAL (bad args or key), MD_EIO, MD_ENOSPC,
 * MD_ECANCELED, MD_ECORRUPT (a stored blob is damaged).
 */
int bundle_export_job(struct daemon *d, struct job *j, json_t **res);

/*
 * Import job. args: {"verify": bool}. Reads the archive once; refuses,
 * with nothing stored, any entry out of order or not listed in SHA256SUMS,
 * an absolute or ".." path, a link, a device, a duplicate, a file whose size
 * or sha256 differs from the manifest and SHA256SUMS, a missing file, a
 * truncated archive, a decompression bomb (ratio over BUNDLE_MAX_RATIO or
 * more than the declared sizes + BUNDLE_SLACK), a bad signature.
 * Every revision is staged and verified before the first commit; a commit
 * that fails removes the revisions this bundle added before it (all or
 * nothing per bundle). *res: {"revisions":[summary...], "signature":
 * "verified"|"unverified"|"none"}. Errors: MD_EREFUSED (hostile or
 * inconsistent), MD_ECORRUPT (checksum, truncation), MD_EAUTH (signature),
 * MD_ETOOBIG (bomb), MD_EIO, MD_ENOSPC, MD_ECANCELED, MD_EDB.
 */
int bundle_import_job(struct daemon *d, struct job *j, json_t **res);

#endif
