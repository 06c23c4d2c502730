/* daemon/signing.c — see signing.h. */
#include "daemon/signing.h"
#include "registry/catalog.h"
#include "meta/sign.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The manifest of ref and its name; new reference. */
static int manifest(struct daemon *d, json_t *args, json_t **m)
{
	char *name, *want, rev[CATALOG_REV_LEN + 1];
	const char *ref = json_string_value(json_object_get(args, "ref"));
	if (!ref)
		return md_fail(MD_EINVAL, "missing model reference");
	int rc = util_parse_modelref(ref, &name, &want);
	if (rc)
		return rc;
	MDB_txn *txn;
	if (!(rc = store_txn(d->st, 0, &txn))) {
		if (!(rc = catalog_resolve(d->st, txn, name, want, rev)))
			rc = catalog_get_rev(d->st, txn, name, rev, m);
		mdb_txn_abort(txn);
	}
	free(name);
	free(want);
	return rc;
}

static char *read_key(struct job *j, size_t *len)
{
	if (j->nfds != 1) {
		md_fail(MD_EPROTO, "expected the key's descriptor");
		return NULL;
	}
	char *buf = malloc(SIGNING_MAX_KEY + 1);
	ssize_t n = buf ? util_pread_full(j->fds[0], buf, SIGNING_MAX_KEY + 1, 0) : -1;
	if (n < 0 || (size_t)n > SIGNING_MAX_KEY) {
		free(buf);
		md_fail(MD_EINVAL, "key: unreadable or larger than %u bytes", SIGNING_MAX_KEY);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

int signing_sign_job(struct daemon *d, struct job *j, json_t **res)
{
	json_t *m, *st = NULL;
	size_t klen;
	int rc = manifest(d, j->args, &m);
	if (rc)
		return rc;
	char *key = read_key(j, &klen);
	if (!key) {
		json_decref(m);
		return MD_EINVAL;
	}
	const char *name = json_string_value(json_object_get(m, "name"));
	if (!(rc = sign_statement(name, json_object_get(m, "files"), &st)))
		rc = sign_bundle(st, key, klen, res);
	explicit_bzero(key, klen);
	free(key);
	json_decref(st);
	json_decref(m);
	return rc;
}

int signing_verify_job(struct daemon *d, struct job *j, json_t **res)
{
	json_t *m, *st = NULL;
	size_t klen;
	json_t *bundle = json_object_get(j->args, "bundle");
	if (!json_is_object(bundle))
		return md_fail(MD_EINVAL, "missing signature bundle");
	int rc = manifest(d, j->args, &m);
	if (rc)
		return rc;
	char *key = read_key(j, &klen);
	if (!key) {
		json_decref(m);
		return MD_EINVAL;
	}
	rc = sign_verify(bundle, key, klen, json_object_get(m, "files"), &st);
	free(key);
	if (!rc)
		*res = json_pack("{s:b,s:O,s:O,s:I}", "ok", 1, "name", json_object_get(m, "name"),
				 "revision", json_object_get(m, "revision"), "files",
				 (json_int_t)json_array_size(json_object_get(m, "files")));
	json_decref(st);
	json_decref(m);
	return rc;
}
