/* daemon/describe.c — see describe.h. */
#include "daemon/describe.h"
#include "daemon/audit.h"
#include "daemon/facts.h"
#include "registry/catalog.h"
#include "meta/card.h"
#include "meta/lic.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int describe(struct daemon *d, const char *name, struct ingest *ing, json_t *extra,
		    int enforce)
{
	json_t *card = NULL, *license = NULL, *facts = NULL;
	char *text = NULL;
	ssize_t tlen = 0;
	int rc = 0;
	json_t *paths = ingest_paths(ing);
	size_t n = json_array_size(paths);
	const char **files = calloc(n ? n : 1, sizeof *files);
	if (!files) {
		rc = MD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		files[i] = json_string_value(json_array_get(paths, i));
	int fd = ingest_open(ing, "README.md");
	if (fd >= 0) {
		rc = card_parse_fd(fd, &card);
		close(fd);
		if (rc)
			goto out;
	}
	/* a hub URL into this repository: the repo id a pull came from, else the name */
	const char *repo = json_string_value(json_object_get(json_object_get(extra, "source"), "repo_id"));
	const char *lfile = lic_pick_file(files, n, json_string_value(json_object_get(card, "license_link")),
					  repo ? repo : name);
	if (lfile && (fd = ingest_open(ing, lfile)) >= 0) {
		text = malloc(DESCRIBE_MAX_LICENSE);
		tlen = text ? util_read_full(fd, text, DESCRIBE_MAX_LICENSE) : -1;
		close(fd);
		if (tlen < 0) {
			free(text);
			text = NULL;
			tlen = 0;
		}
	}
	/* the whole chain through base_model as the catalog holds it now; the
	 * license and audit commands recompute it when they run (audit.h) */
	struct lic_ancestor *anc = NULL;
	size_t nanc = 0;
	json_t *chain = NULL;
	MDB_txn *txn = NULL;
	if (json_array_size(json_object_get(card, "base_model")) && store_txn(d->st, 0, &txn) == 0) {
		rc = audit_lineage(d, txn, name, card, d->pol, &chain, &anc, &nanc);
		mdb_txn_abort(txn);
		if (rc)
			goto out;
	}
	rc = lic_assess(card, text, (size_t)tlen, text ? lfile : NULL, anc, nanc, d->pol, &license);
	free(anc); /* its strings live in chain */
	json_decref(chain);
	if (rc || (rc = card_facts(card, name, &facts)))
		goto out;
	/* parameters and bytes per dtype from the converted weight files'
	 * tensor tables, each tensor name once, alternates left out
	 * (registry/wfacts.h) */
	json_t *wf = NULL;
	if ((rc = ingest_weight_facts(ing, &wf)))
		goto out;
	/* with config.json facts and the card text; a GGUF file's
	 * architecture where there is no config.json (daemon/facts.h) */
	rc = facts_add(ing, facts, card, wf);
	json_decref(wf);
	if (rc)
		goto out;
	const char *verdict = json_string_value(json_object_get(license, "verdict"));
	if (enforce && d->pol && policy_enforce(d->pol) && verdict && !strcmp(verdict, "deny")) {
		char msg[512];
		lic_verdict_message(license, msg, sizeof msg);
		rc = md_fail(MD_EREFUSED, "%s: license %s", name, msg);
		goto out;
	}
	json_object_set(extra, "card", card ? card : json_null());
	json_object_set(extra, "license", license);
	json_object_set(extra, "facts", facts);
	json_object_set_new(extra, "described", json_integer(DESCRIBE_VERSION));
out:
	json_decref(card);
	json_decref(license);
	json_decref(facts);
	free(text);
	free(files);
	return rc;
}

int describe_revision(struct daemon *d, const char *name, struct ingest *ing, json_t *extra)
{
	return describe(d, name, ing, extra, 1);
}

/* A stored revision described again from its stored files: *out a copy of
 * its manifest with new card, license, facts and "described". */
static int redescribe(struct daemon *d, const char *name, const char *rev, json_t **out)
{
	MDB_txn *txn;
	json_t *m = NULL;
	struct ingest *ing = NULL;
	int rc = store_txn(d->st, 0, &txn);
	if (rc)
		return rc;
	rc = catalog_get_rev(d->st, txn, name, rev, &m);
	mdb_txn_abort(txn);
	if (rc || (rc = ingest_begin(d->st, NULL, &ing)))
		goto out;
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(m, "files"), i, f) {
		const char *path = json_string_value(json_object_get(f, "path"));
		if ((rc = path ? ingest_add_existing(ing, path, f)
			       : md_fail(MD_ECORRUPT, "a file without a path")))
			goto out;
	}
	rc = describe(d, name, ing, m, 0);
out:
	ingest_free(ing);
	if (rc)
		json_decref(m);
	else
		*out = m;
	return rc;
}

/* Store the redescribed manifests new[0..n-1] in one transaction, each
 * only when its revision is still stored with the same files. */
static int put_redescribed(struct daemon *d, json_t **new, size_t n)
{
	MDB_txn *txn;
	int rc = store_txn(d->st, 1, &txn);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *name = json_string_value(json_object_get(new[i], "name"));
		const char *rev = json_string_value(json_object_get(new[i], "revision"));
		json_t *cur = NULL;
		int existed;
		if (catalog_get_rev(d->st, txn, name, rev, &cur) == 0 &&
		    json_equal(json_object_get(cur, "files"), json_object_get(new[i], "files")))
			rc = catalog_replace_rev(d->st, txn, new[i], NULL, &existed);
		json_decref(cur);
	}
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return store_commit(txn);
}

static int collect_stale(const char *name, const char *rev, json_t *m, void *arg)
{
	if (json_integer_value(json_object_get(m, "described")) >= DESCRIBE_VERSION)
		return 0;
	return json_array_append_new(arg, json_pack("[s,s]", name, rev)) ? MD_ENOMEM : 0;
}

#define REDESCRIBE_BATCH 64 /* revisions per write transaction */

int describe_refresh(struct daemon *d, size_t *updated, size_t *failed)
{
	MDB_txn *txn;
	uint32_t ver = 0, want = DESCRIBE_VERSION;
	MDB_val vk = { 17, "described_version" }, vv;
	json_t *stale = json_array();
	*updated = *failed = 0;
	int rc = stale ? store_txn(d->st, 0, &txn) : MD_ENOMEM;
	if (rc) {
		json_decref(stale);
		return rc;
	}
	if (mdb_get(txn, d->st->meta, &vk, &vv) == 0 && vv.mv_size == sizeof ver)
		memcpy(&ver, vv.mv_data, sizeof ver);
	rc = ver == want ? 0 : catalog_foreach_rev(d->st, txn, NULL, collect_stale, stale);
	mdb_txn_abort(txn);
	if (rc || ver == want) {
		json_decref(stale);
		return rc;
	}
	if (json_array_size(stale))
		log_info("describing %zu stored revisions again (recorded by an earlier modeld)",
			 json_array_size(stale));
	json_t *batch[REDESCRIBE_BATCH];
	size_t nb = 0, i;
	json_t *e;
	json_array_foreach(stale, i, e) {
		const char *name = json_string_value(json_array_get(e, 0));
		const char *rev = json_string_value(json_array_get(e, 1));
		int r = redescribe(d, name, rev, &batch[nb]);
		if (r) {
			log_warn("%s@%.12s: not described again: %s", name, rev, md_errmsg(r));
			++*failed;
		} else {
			nb++;
		}
		if (nb == REDESCRIBE_BATCH || (nb && i + 1 == json_array_size(stale))) {
			rc = put_redescribed(d, batch, nb);
			for (size_t k = 0; k < nb; k++)
				json_decref(batch[k]);
			if (rc)
				break;
			*updated += nb;
			nb = 0;
		}
	}
	json_decref(stale);
	if (rc || *failed)
		return rc;
	/* every revision is described by this version's rules: later starts skip the scan */
	if ((rc = store_txn(d->st, 1, &txn)))
		return rc;
	vv.mv_size = sizeof want;
	vv.mv_data = &want;
	if ((rc = mdb_put(txn, d->st->meta, &vk, &vv, 0))) {
		mdb_txn_abort(txn);
		return store_mdb_err(rc, "catalog");
	}
	return store_commit(txn);
}
