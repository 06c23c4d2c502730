/*
 * daemon/signing.h — detached signatures of a stored revision's manifest of
 * per-file sha256 digests (meta/sign.h: OpenSSF model-signing layout,
 * Ed25519, DSSE). The key comes as a descriptor the client opened, so the
 * daemon never reads a user path; nothing is stored.
 */
#ifndef MD_SIGNING_H
#define MD_SIGNING_H

#include "daemon/jobs.h"

#define SIGNING_MAX_KEY (16u << 10)   /* bytes of a PEM key read */

/* args {"ref"} + fds[0] = the Ed25519 private key (PEM). *res: the bundle. */
int signing_sign_job(struct daemon *d, struct job *j, json_t **res);

/* args {"ref", "bundle"} + fds[0] = the public key (PEM). *res {"ok":true,
 * "keyid", "files"}; a bad or foreign signature, or a file whose digest
 * differs from the stored one, is an error naming it (MD_EAUTH, MD_ECORRUPT). */
int signing_verify_job(struct daemon *d, struct job *j, json_t **res);

#endif
