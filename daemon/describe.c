/* daemon/describe.c — see describe.h. */
#include "daemon/describe.h"
#include "daemon/audit.h"
#include "daemon/facts.h"
#include "registry/catalog.h"
#include "meta/card.h"
#include "meta/lic.h"
#include "common/err.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int describe_revision(struct daemon *d, const char *name, struct ingest *ing, json_t *extra)
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
	if (d->pol && policy_enforce(d->pol) && verdict && !strcmp(verdict, "deny")) {
		char msg[512];
		lic_verdict_message(license, msg, sizeof msg);
		rc = md_fail(MD_EREFUSED, "%s: license %s", name, msg);
		goto out;
	}
	json_object_set(extra, "card", card ? card : json_null());
	json_object_set(extra, "license", license);
	json_object_set(extra, "facts", facts);
out:
	json_decref(card);
	json_decref(license);
	json_decref(facts);
	free(text);
	free(files);
	return rc;
}
