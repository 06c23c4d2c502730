/*
 * daemon/pull.h — the pull job: resolve a repository on a Hugging Face-style
 * hub to a commit, download what the store does not already hold (resumable,
 * verified: sources/xfer.h), convert weight files, record card, license and
 * provenance, and commit the revision pinned to that commit.
 */
#ifndef MD_PULL_H
#define MD_PULL_H

#include "daemon/jobs.h"

struct ingest;

#define PULL_MAX_TOKEN 4096        /* bytes of a token file read */
#define PULL_STAGING_DAYS 7        /* gc keeps an interrupted pull this long */
#define PULL_KEPT_DIR ".kept"      /* in the staging directory: what was stored
				      (a repository path under it is refused) */

/*
 * args: {"ref": "ORG/NAME[@REV]", "name"?, "hub"?, "token"?, "include"?: [glob],
 * "exclude"?: [glob], "limit_rate"?: bytes/s}. The token is never logged,
 * stored or sent to another host than the hub. A commit already stored
 * with every selected file: only the ref moves ("existed"); stored in part
 * (an earlier filtered pull; provenance "partial"): the missing selected
 * files are fetched and the revision is committed again with the union.
 * Two pulls of the same repository and commit at once: the second waits
 * for the first and starts from what it stored. Interrupted pulls keep
 * STORE/tmp/pull-KEY and continue from it.
 */
/* The cap for a pull: its "limit_rate" (0: none, even when the config sets
 * one), else the config's limit_rate; MD_EINVAL for a negative or non-integer
 * value. */
int pull_rate(const struct daemon *d, json_t *args, uint64_t *rate);
int pull_job(struct daemon *d, struct job *j, json_t **res);

/*
 * The mirror's pull-through (daemon/mirror.h mirror_miss_fn; arg is the
 * struct daemon): pull repo@rev from the configured upstream hub, in the
 * calling thread. A file missing from a stored revision is not pulled again.
 */
int pull_through(void *arg, const char *repo, const char *rev, const char *path);

/* A re-pull of a stored commit: move ref to name@commit. *res: the
 * revision's summary with "existed": true. 0, MD_ENOENT, MD_EDB, MD_ENOSPC. */
int pull_repoint(struct daemon *d, const char *name, const char *commit, const char *ref,
		 json_t **res);

/*
 * Shared by the hub and git pulls (pull_git.c): a pull of a commit already
 * stored in part by a filtered pull completes it instead of only moving
 * the ref.
 *
 * pull_stored_rev: the stored manifest of name@commit, or NULL (the error
 * cleared).
 * pull_rev_complete: 1 when a stored revision holds every file of its
 * commit: its provenance says "partial": false. A revision stored before
 * pulls recorded that is checked against the listing instead.
 * pull_rev_files: the files of manifest m by path, a new object (NULL when
 * m is).
 * pull_add_stored_files: add the files of the stored revision have to ing
 * (not fetched again; the caller ingest_set_replace's ing) and their
 * provenance records, kept from have's provenance, to prov_files.
 * pull_record_filters: set the pull's "include", "exclude" (args' arrays,
 * else []), "partial" (files of the commit neither selected nor stored)
 * and "previous" (have's provenance without "files", when have) in prov.
 */
json_t *pull_stored_rev(struct daemon *d, const char *name, const char *commit);
int pull_rev_complete(json_t *have);
/* Nothing to fetch at id@commit: say whether the commit has no files at
 * all or the filters in args (named) left none of its n. MD_ENOENT. */
int pull_no_match(const char *id, const char *commit, size_t n, json_t *args);

/* A file the converter refused (MD_EREFUSED: a pickle with a global no
 * state_dict needs, say): the message gains how to pull without it. Other
 * codes are returned as they are. */
int pull_refused_hint(int rc, const char *path);

/*
 * Pulls that store the same revision name@commit (from different hubs or
 * git remotes) run their storing part one at a time, so that the later one
 * reads what the earlier stored (pull_stored_rev) after its claim, and a
 * full pull is never committed as a filtered one's partial revision.
 * pull_claim_rev waits for the claim and fills key (for pull_release_rev);
 * 0 or MD_ECANCELED when cancel is set while it waits.
 */
int pull_claim_rev(const char *name, const char *commit, _Atomic int *cancel, char key[65]);
void pull_release_rev(const char *key);
json_t *pull_rev_files(json_t *m);
int pull_add_stored_files(struct ingest *ing, json_t *have, json_t *prov_files);
void pull_record_filters(json_t *prov, json_t *args, int partial, json_t *have);

/*
 * The gc job: maint_gc, keeping the staging directories of pulls running
 * now; partial: also drop interrupted pulls' resume state (what a pull
 * keeps to continue later), e.g. to free a full disk.
 */
int pull_gc(struct daemon *d, int partial, json_t **res);

/*
 * Read the hub token of the config's token_file (trailing newline and
 * spaces cut): *out malloc'd. MD_EIO ("token_file FILE: Permission
 * denied"), MD_EINVAL ("token_file FILE: empty"), MD_ENOMEM. A pull fails
 * with that detail; modeld -n and start-up check the file with it.
 */
int pull_read_token_file(const char *file, char **out);

/* Process set-up: libcurl's global state (before threads start). */
int pull_init(void);

#endif
