/*
 * meta/sign.h — detached signatures over a model's per-file sha256
 * manifest in the OpenSSF model-signing layout, with Ed25519 keys
 * (OpenSSL). docs/signing.md explains how a third party checks one.
 *
 * Statement (in-toto v1, the DSSE payload):
 *   { "_type": "https://in-toto.io/Statement/v1",
 *     "subject": [{ "name": MODEL, "digest": { "sha256": ROOT } }],
 *     "predicateType": "https://model_signing/signature/v1.0",
 *     "predicate": {
 *       "serialization": { "method": "files", "hash_type": "sha256",
 *                          "allow_symlinks": false, "ignore_paths": [] },
 *       "resources": [{ "name": PATH, "algorithm": "sha256",
 *                       "digest": HEX }, ...]   sorted by name (bytewise)
 *     } }
 *   ROOT = sha256 of the concatenated 32-byte digests of the resources, in
 *   that order (lower-case hex).
 * Envelope (DSSE): { "payloadType": "application/vnd.in-toto+json",
 *   "payload": base64(statement JSON), "signatures": [{ "keyid": KEYID,
 *   "sig": base64(Ed25519(PAE)) }] } with
 *   PAE = "DSSEv1 " LEN(type) " " type " " LEN(payload) " " payload
 *   (LEN in ASCII decimal, payload = the raw statement bytes) and
 *   KEYID = lower-case hex sha256 of the public key's DER SubjectPublicKeyInfo.
 * Bundle (what sign_bundle returns and verify takes), Sigstore bundle v0.3
 * shape: { "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
 *   "verificationMaterial": { "publicKey": { "hint": KEYID } },
 *   "dsseEnvelope": ENVELOPE }
 *
 * Caps: at most SIGN_MAX_RESOURCES files; key PEM <= 16 KiB; bundle payload
 * <= 64 MiB decoded. All functions are thread-safe.
 */
#ifndef MD_SIGN_H
#define MD_SIGN_H

#include <stddef.h>
#include <jansson.h>

#define SIGN_MAX_RESOURCES 100000
#define SIGN_MAX_PEM (16 * 1024)
#define SIGN_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define SIGN_PREDICATE_TYPE "https://model_signing/signature/v1.0"

/*
 * Build the statement for model `name` from files: a JSON array of
 * {"path", "sha256"} (the manifest; other keys ignored). *out: new object.
 * Errors: MD_EINVAL (a path that fails util_check_relpath, a digest that is
 * not 64 hex digits, a duplicate path, no files) with the path named,
 * MD_ETOOBIG, MD_ENOMEM.
 */
int sign_statement(const char *name, const json_t *files, json_t **out);

/*
 * Sign a statement with an Ed25519 private key (PEM, PKCS#8, unencrypted:
 * what `openssl genpkey -algorithm ed25519` writes). *bundle: new object.
 * Errors: MD_EINVAL (unreadable key), MD_EUNSUP (not Ed25519), MD_ENOMEM.
 */
int sign_bundle(const json_t *statement, const char *key_pem, size_t key_len, json_t **bundle);

/*
 * Verify a bundle with an Ed25519 public key (PEM SubjectPublicKeyInfo, or a
 * private key PEM: its public half is used). Checks: the envelope shape and
 * payload type, the signature over PAE, the keyid, the statement type and
 * predicate type, and that the subject digest is the root of the listed
 * resources. When files is not NULL, also that the resources are exactly
 * those files with those sha256 digests (each difference named).
 * *statement (when not NULL) receives the verified statement (new ref).
 * Errors: MD_EAUTH (bad signature or wrong key), MD_ECORRUPT (malformed
 * bundle, digest mismatch, missing or extra file — detail names it),
 * MD_EINVAL (unreadable key), MD_EUNSUP (not Ed25519), MD_ENOMEM.
 */
int sign_verify(const json_t *bundle, const char *pub_pem, size_t pub_len, const json_t *files,
		json_t **statement);

/*
 * The key id (lower-case hex sha256 of the DER SubjectPublicKeyInfo, as in
 * "keyid") of an Ed25519 public key PEM (or of a private key's public half).
 * 0, MD_EINVAL (unreadable key), MD_EUNSUP (not Ed25519), MD_EIO.
 */
int sign_keyid(const char *pub_pem, size_t pub_len, char out[65]);

/*
 * A new Ed25519 key pair as PEM text: *priv (PKCS#8) and *pub (SPKI),
 * malloc'd NUL-terminated (caller frees; the private key should be written
 * 0600). 0, MD_ENOMEM or MD_EIO (OpenSSL failure).
 */
int sign_keygen(char **priv, char **pub);

#endif
