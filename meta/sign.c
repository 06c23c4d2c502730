/*
 * meta/sign.c — OpenSSF model-signing layout: in-toto statement, DSSE,
 * Ed25519 via OpenSSL. See sign.h and docs/signing.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/util.h"
#include "meta/sign.h"

#define STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define BUNDLE_TYPE "application/vnd.dev.sigstore.bundle.v0.3+json"
#define MAX_PAYLOAD_B64 (64u * 1024 * 1024)

struct res {
	const char *name;
	const char *digest;
};

static int cmp_res(const void *a, const void *b)
{
	return strcmp(((const struct res *)a)->name, ((const struct res *)b)->name);
}

/* sha256 over the concatenated raw digests, hex into out[65]. */
static int root_digest(const struct res *r, size_t n, char out[65])
{
	struct sha256 h;
	if (sha256_init(&h))
		return md_fail(MD_ENOMEM, "sign: out of memory");
	for (size_t i = 0; i < n; i++) {
		uint8_t d[32];
		if (util_unhex(r[i].digest, d, 32)) {
			sha256_free(&h);
			return md_fail(MD_ECORRUPT, "%s: digest is not 64 hex digits", r[i].name);
		}
		sha256_update(&h, d, 32);
	}
	uint8_t md[32];
	sha256_final(&h, md);
	util_hex(md, 32, out);
	return 0;
}

/* Collect {path|name, sha256|digest} pairs from an array, sorted, checked. */
static int collect(const json_t *arr, const char *namekey, const char *digkey, int corrupt, struct res **out,
		   size_t *n)
{
	int bad = corrupt ? MD_ECORRUPT : MD_EINVAL;
	*out = NULL;
	*n = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return md_fail(bad, "signature: no files in the manifest");
	size_t cnt = json_array_size(arr);
	if (cnt > SIGN_MAX_RESOURCES)
		return md_fail(MD_ETOOBIG, "signature: more than %d files", SIGN_MAX_RESOURCES);
	struct res *r = calloc(cnt, sizeof *r);
	if (!r)
		return md_fail(MD_ENOMEM, "sign: out of memory");
	for (size_t i = 0; i < cnt; i++) {
		json_t *e = json_array_get(arr, i);
		const char *nm = json_string_value(json_object_get(e, namekey));
		const char *dg = json_string_value(json_object_get(e, digkey));
		if (!nm || util_check_relpath(nm)) {
			free(r);
			return md_fail(bad, "signature: entry %zu: bad path '%.200s'", i, nm ? nm : "(none)");
		}
		if (!dg || !util_is_hex(dg, 64)) {
			free(r);
			return md_fail(bad, "%s: sha256 is not 64 lower-case hex digits", nm);
		}
		if (corrupt) {
			const char *alg = json_string_value(json_object_get(e, "algorithm"));
			if (!alg || strcmp(alg, "sha256")) {
				free(r);
				return md_fail(MD_EUNSUP, "%s: digest algorithm '%s' is not sha256", nm,
					       alg ? alg : "(none)");
			}
		}
		r[i].name = nm;
		r[i].digest = dg;
	}
	qsort(r, cnt, sizeof *r, cmp_res);
	for (size_t i = 1; i < cnt; i++)
		if (!strcmp(r[i - 1].name, r[i].name)) {
			int rc = md_fail(bad, "%s: listed twice", r[i].name);
			free(r);
			return rc;
		}
	*out = r;
	*n = cnt;
	return 0;
}

int sign_statement(const char *name, const json_t *files, json_t **out)
{
	*out = NULL;
	if (!name || !*name)
		return md_fail(MD_EINVAL, "sign: no model name");
	struct res *r;
	size_t n;
	int rc = collect(files, "path", "sha256", 0, &r, &n);
	if (rc)
		return rc;
	char root[65];
	if ((rc = root_digest(r, n, root))) {
		free(r);
		return rc;
	}
	json_t *resources = json_array();
	for (size_t i = 0; resources && i < n; i++)
		if (json_array_append_new(resources, json_pack("{s:s, s:s, s:s}", "name", r[i].name, "algorithm",
							       "sha256", "digest", r[i].digest))) {
			json_decref(resources);
			resources = NULL;
		}
	free(r);
	if (!resources)
		return md_fail(MD_ENOMEM, "sign: out of memory");
	*out = json_pack("{s:s, s:[{s:s, s:{s:s}}], s:s, s:{s:{s:s, s:s, s:b, s:[]}, s:o}}", "_type", STATEMENT_TYPE,
			 "subject", "name", name, "digest", "sha256", root, "predicateType", SIGN_PREDICATE_TYPE,
			 "predicate", "serialization", "method", "files", "hash_type", "sha256", "allow_symlinks", 0,
			 "ignore_paths", "resources", resources);
	return *out ? 0 : md_fail(MD_ENOMEM, "sign: out of memory");
}

/* ---- keys ---------------------------------------------------------------- */

static int load_key(const char *pem, size_t len, int want_private, EVP_PKEY **out)
{
	*out = NULL;
	if (!pem || len == 0 || len > SIGN_MAX_PEM)
		return md_fail(MD_EINVAL, "key: empty or larger than %d bytes", SIGN_MAX_PEM);
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	if (!b)
		return md_fail(MD_ENOMEM, "key: out of memory");
	EVP_PKEY *k = NULL;
	if (!want_private)
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!k) {
		BIO_free(b);
		b = BIO_new_mem_buf(pem, (int)len);
		if (!b)
			return md_fail(MD_ENOMEM, "key: out of memory");
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (!k)
		return md_fail(MD_EINVAL, "key: not a PEM %s key", want_private ? "private" : "public or private");
	if (EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return md_fail(MD_EUNSUP, "key: not an Ed25519 key");
	}
	*out = k;
	return 0;
}

static int keyid(EVP_PKEY *k, char out[65])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	if (n <= 0)
		return md_fail(MD_EIO, "key: cannot encode the public key");
	sha256_hex(der, (size_t)n, out);
	OPENSSL_free(der);
	return 0;
}

int sign_keyid(const char *pub_pem, size_t pub_len, char out[65])
{
	EVP_PKEY *k;
	int rc = load_key(pub_pem, pub_len, 0, &k);
	if (rc)
		return rc;
	rc = keyid(k, out);
	EVP_PKEY_free(k);
	return rc;
}

static char *b64(const unsigned char *in, size_t n)
{
	char *o = malloc(4 * ((n + 2) / 3) + 1);
	if (o)
		EVP_EncodeBlock((unsigned char *)o, in, (int)n);
	return o;
}

/* Strict base64 decode: returns malloc'd bytes and length, or NULL. */
static unsigned char *unb64(const char *s, size_t *n)
{
	size_t l = strlen(s);
	if (l == 0 || l % 4 || l > MAX_PAYLOAD_B64)
		return NULL;
	unsigned char *o = malloc(l / 4 * 3 + 1);
	if (!o)
		return NULL;
	int r = EVP_DecodeBlock(o, (const unsigned char *)s, (int)l);
	if (r < 0) {
		free(o);
		return NULL;
	}
	size_t pad = (s[l - 1] == '=') + (s[l - 2] == '=');
	*n = (size_t)r - pad;
	return o;
}

static unsigned char *pae(const unsigned char *payload, size_t n, size_t *len)
{
	char head[128];
	int h = snprintf(head, sizeof head, "DSSEv1 %zu %s %zu ", strlen(SIGN_PAYLOAD_TYPE), SIGN_PAYLOAD_TYPE, n);
	unsigned char *m = malloc((size_t)h + n);
	if (!m)
		return NULL;
	memcpy(m, head, (size_t)h);
	memcpy(m + h, payload, n);
	*len = (size_t)h + n;
	return m;
}

int sign_bundle(const json_t *statement, const char *key_pem, size_t key_len, json_t **bundle)
{
	*bundle = NULL;
	EVP_PKEY *k;
	int rc = load_key(key_pem, key_len, 1, &k);
	if (rc)
		return rc;
	char kid[65];
	if ((rc = keyid(k, kid))) {
		EVP_PKEY_free(k);
		return rc;
	}
	char *payload = json_dumps(statement, JSON_COMPACT);
	size_t mlen = 0;
	unsigned char *msg = payload ? pae((unsigned char *)payload, strlen(payload), &mlen) : NULL;
	unsigned char sig[64];
	size_t slen = sizeof sig;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	rc = MD_ENOMEM;
	if (msg && ctx) {
		if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 || EVP_DigestSign(ctx, sig, &slen, msg, mlen) != 1)
			rc = MD_EIO;
		else
			rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	free(msg);
	ERR_clear_error();
	if (rc) {
		free(payload);
		return md_fail(rc, "sign: %s", rc == MD_EIO ? "Ed25519 signing failed" : "out of memory");
	}
	char *p64 = b64((unsigned char *)payload, strlen(payload)), *s64 = b64(sig, slen);
	free(payload);
	if (p64 && s64)
		*bundle = json_pack("{s:s, s:{s:{s:s}}, s:{s:s, s:s, s:[{s:s, s:s}]}}", "mediaType", BUNDLE_TYPE,
				    "verificationMaterial", "publicKey", "hint", kid, "dsseEnvelope", "payloadType",
				    SIGN_PAYLOAD_TYPE, "payload", p64, "signatures", "keyid", kid, "sig", s64);
	free(p64);
	free(s64);
	return *bundle ? 0 : md_fail(MD_ENOMEM, "sign: out of memory");
}

static int check_statement(json_t *st, struct res **out, size_t *n)
{
	const char *t = json_string_value(json_object_get(st, "_type"));
	if (!t || strcmp(t, STATEMENT_TYPE))
		return md_fail(MD_ECORRUPT, "signature: statement _type is not %s", STATEMENT_TYPE);
	const char *pt = json_string_value(json_object_get(st, "predicateType"));
	if (!pt || strcmp(pt, SIGN_PREDICATE_TYPE))
		return md_fail(MD_ECORRUPT, "signature: predicateType is not %s", SIGN_PREDICATE_TYPE);
	json_t *subj = json_array_get(json_object_get(st, "subject"), 0);
	const char *sd = json_string_value(json_object_get(json_object_get(subj, "digest"), "sha256"));
	if (!sd || json_array_size(json_object_get(st, "subject")) != 1)
		return md_fail(MD_ECORRUPT, "signature: statement has no single subject with a sha256 digest");
	json_t *resources = json_object_get(json_object_get(st, "predicate"), "resources");
	int rc = collect(resources, "name", "digest", 1, out, n);
	if (rc)
		return rc;
	/* the signed list must already be in canonical (sorted) order */
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*out)[i].name, json_string_value(json_object_get(json_array_get(resources, i), "name")))) {
			free(*out);
			return md_fail(MD_ECORRUPT, "signature: resources are not sorted by name");
		}
	char root[65];
	if ((rc = root_digest(*out, *n, root))) {
		free(*out);
		return rc;
	}
	if (strcmp(root, sd)) {
		free(*out);
		return md_fail(MD_ECORRUPT, "signature: subject digest %.16s... is not the root of the resources (%.16s...)",
			       sd, root);
	}
	return 0;
}

static int compare_files(const struct res *sig, size_t ns, const json_t *files)
{
	struct res *f;
	size_t nf;
	int rc = collect(files, "path", "sha256", 0, &f, &nf);
	if (rc)
		return rc;
	size_t i = 0, j = 0;
	rc = 0;
	while (!rc && (i < ns || j < nf)) {
		int c = i == ns ? 1 : j == nf ? -1 : strcmp(sig[i].name, f[j].name);
		if (c < 0)
			rc = md_fail(MD_ECORRUPT, "%s: signed but not in the model", sig[i].name);
		else if (c > 0)
			rc = md_fail(MD_ECORRUPT, "%s: in the model but not covered by the signature", f[j].name);
		else if (strcmp(sig[i].digest, f[j].digest))
			rc = md_fail(MD_ECORRUPT, "%s: sha256 %.16s... differs from the signed %.16s...", f[j].name,
				     f[j].digest, sig[i].digest);
		else {
			i++;
			j++;
		}
	}
	free(f);
	return rc;
}

int sign_verify(const json_t *bundle, const char *pub_pem, size_t pub_len, const json_t *files,
		json_t **statement)
{
	if (statement)
		*statement = NULL;
	json_t *env = json_object_get(bundle, "dsseEnvelope");
	if (!env && json_object_get(bundle, "payload"))
		env = (json_t *)bundle; /* a bare DSSE envelope */
	const char *ptype = json_string_value(json_object_get(env, "payloadType"));
	const char *p64 = json_string_value(json_object_get(env, "payload"));
	json_t *sigs = json_object_get(env, "signatures");
	if (!ptype || !p64 || !json_array_size(sigs))
		return md_fail(MD_ECORRUPT, "signature: not a DSSE envelope (payloadType, payload, signatures)");
	if (strcmp(ptype, SIGN_PAYLOAD_TYPE))
		return md_fail(MD_ECORRUPT, "signature: payloadType '%.60s' is not %s", ptype, SIGN_PAYLOAD_TYPE);
	EVP_PKEY *k;
	int rc = load_key(pub_pem, pub_len, 0, &k);
	if (rc)
		return rc;
	char kid[65];
	if ((rc = keyid(k, kid))) {
		EVP_PKEY_free(k);
		return rc;
	}
	size_t plen;
	unsigned char *payload = unb64(p64, &plen);
	if (!payload) {
		EVP_PKEY_free(k);
		return md_fail(MD_ECORRUPT, "signature: payload is not base64");
	}
	size_t mlen = 0;
	unsigned char *msg = pae(payload, plen, &mlen);
	int ok = 0;
	size_t i;
	json_t *s;
	json_array_foreach(sigs, i, s) {
		const char *id = json_string_value(json_object_get(s, "keyid"));
		const char *sig64 = json_string_value(json_object_get(s, "sig"));
		if (!msg || !sig64 || (id && *id && strcmp(id, kid)))
			continue;
		size_t sl;
		unsigned char *sig = unb64(sig64, &sl);
		if (!sig)
			continue;
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (ctx && sl == 64 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
		    EVP_DigestVerify(ctx, sig, sl, msg, mlen) == 1)
			ok = 1;
		EVP_MD_CTX_free(ctx);
		free(sig);
		if (ok)
			break;
	}
	ERR_clear_error();
	EVP_PKEY_free(k);
	free(msg);
	if (!ok) {
		free(payload);
		return md_fail(MD_EAUTH, "signature: does not verify with key %.16s...", kid);
	}
	json_error_t jerr;
	json_t *st = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, &jerr);
	free(payload);
	if (!st)
		return md_fail(MD_ECORRUPT, "signature: statement is not JSON: %s", jerr.text);
	struct res *r;
	size_t n;
	if ((rc = check_statement(st, &r, &n))) {
		json_decref(st);
		return rc;
	}
	if (files)
		rc = compare_files(r, n, files);
	free(r);
	if (rc || !statement)
		json_decref(st);
	else
		*statement = st;
	return rc;
}

static char *bio_text(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *o = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (o) {
		memcpy(o, data, (size_t)n);
		o[n] = '\0';
	}
	return o;
}

int sign_keygen(char **priv, char **pub)
{
	*priv = *pub = NULL;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k) {
		ERR_clear_error();
		return md_fail(MD_EIO, "keygen: Ed25519 key generation failed");
	}
	BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
	int rc = MD_ENOMEM;
	if (a && b && PEM_write_bio_PrivateKey(a, k, NULL, NULL, 0, NULL, NULL) == 1 && PEM_write_bio_PUBKEY(b, k) == 1) {
		*priv = bio_text(a);
		*pub = bio_text(b);
		if (*priv && *pub)
			rc = 0;
	}
	BIO_free(a);
	BIO_free(b);
	EVP_PKEY_free(k);
	ERR_clear_error();
	if (rc) {
		free(*priv);
		free(*pub);
		*priv = *pub = NULL;
		return md_fail(rc, "keygen: cannot write the key pair");
	}
	return 0;
}
