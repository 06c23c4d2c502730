/*
 * registry/maint.h — removing revisions, collecting garbage, verifying.
 * Results are new JSON objects the caller decrefs.
 */
#ifndef MD_MAINT_H
#define MD_MAINT_H

#include "registry/ingest.h"
#include "registry/store.h"

/* gc keeps the staging directory of an interrupted pull (STORE/tmp/pull-*,
 * resume state) for this long after its last change. */
#define MAINT_PULL_KEEP_S (7L * 24 * 3600)

/*
 * Remove name@rev (rev as the user wrote it, resolved like catalog_resolve),
 * or every revision of name when rev is NULL, in one transaction; then unlink
 * blobs nothing refers to any more. *result: {"name","removed":[revs],
 * "blobs_freed":N,"bytes_freed":N}. On a full disk the commit uses the room
 * of STORE/reserve (store.h), which is made again afterwards.
 * 0, MD_ENOENT, MD_EDB, MD_ENOSPC.
 */
int maint_rm(struct store *st, const char *name, const char *rev, json_t **result);

struct maint_gc_opts {
	int partial;   /* also drop interrupted pulls' resume state (STORE/tmp/
	                  pull-*), which is otherwise kept for a week */
	/* NULL, or nonzero when the staging directory named name ("pull-KEY")
	 * belongs to a pull in progress: it is kept whatever its lock says */
	int (*in_use)(void *arg, const char *name);
	void *arg;
};

/*
 * Remove garbage: blob files with no catalog record and staging directories
 * nobody holds (o may be NULL: no partial, no in_use). Holds the catalog
 * writer while it scans blobs/. *result: {"blobs_removed","bytes_freed",
 * "staging_removed","staging_bytes_freed"} (bytes_freed: the blobs';
 * staging_bytes_freed: blocks of the staging files, those also linked
 * elsewhere not counted). Then makes STORE/reserve (store.h) again if it is
 * missing and there is room.
 */
int maint_gc(struct store *st, const struct maint_gc_opts *o, json_t **result);

/*
 * The staging part of maint_gc alone, for the daemon's start: removes the
 * staging directories of imports that died with an earlier run (their
 * lock is free), not the resume state of interrupted pulls, nor blobs.
 * *count and *bytes get what was removed. 0 or MD_EIO.
 */
int maint_clean_staging(struct store *st, uint64_t *count, uint64_t *bytes);

/*
 * Re-hash every blob the selected revisions refer to (all revisions when
 * name is NULL) and check sizes, digests and reference counts.
 * *result: {"revisions","files","bytes","errors":[{"name","revision","path",
 * "error"}],"orphans":N,"stale_staging":N,"ok":bool}. ctl reports progress
 * and cancels (may be NULL). 0 even when errors were found; MD_ENOENT when
 * name matches nothing.
 */
int maint_verify(struct store *st, const char *name, const char *rev,
		 struct ingest_ctl *ctl, json_t **result);

#endif
