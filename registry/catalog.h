/*
 * registry/catalog.h — model, revision and ref records in the LMDB catalog
 * (docs/catalog.md). All functions take a transaction the caller owns;
 * writers must pass a write transaction. Records are JSON with "v" = schema.
 *
 * Keys: models "ORG/NAME"; revisions and refs "ORG/NAME\0REV" and
 * "ORG/NAME\0REF", so one model's revisions are adjacent.
 */
#ifndef MD_CATALOG_H
#define MD_CATALOG_H

#include "registry/store.h"

#define CATALOG_REV_LEN 40     /* revision ids are 40 lower-case hex digits */
#define CATALOG_MAX_VALUE (64u << 20) /* cap on one record we parse */

/*
 * Resolve what a user wrote after '@' (or NULL) to a stored revision id:
 * NULL -> ref "main", else the most recently imported revision; a 40-hex
 * id -> itself if stored; a ref name -> its target; 7..39 hex digits -> the
 * unique stored revision with that prefix. rev receives 41 bytes.
 * Returns 0, MD_ENOENT (detail "acme/x@v2: no such revision"), MD_EDB.
 */
int catalog_resolve(struct store *st, MDB_txn *txn, const char *name,
		    const char *want, char rev[CATALOG_REV_LEN + 1]);

/* The manifest of name@rev; *out is a new reference the caller decrefs.
 * 0, MD_ENOENT, MD_ECORRUPT, MD_EDB. */
int catalog_get_rev(struct store *st, MDB_txn *txn, const char *name,
		    const char *rev, json_t **out);

/*
 * Store a manifest (must hold "name" and "revision") and point ref at it
 * (ref may be NULL). Takes a reference on each blob its files name unless
 * that exact revision is already stored (then only the ref moves and
 * *existed is set). 0, MD_EDB, MD_ENOSPC.
 */
int catalog_put_rev(struct store *st, MDB_txn *txn, json_t *manifest,
		    const char *ref, int *existed);

/*
 * catalog_put_rev, except that a stored name@revision is replaced by this
 * manifest (*existed set): the new files' blobs are referenced, the old
 * ones' released, the indexes moved to the new manifest. For a revision
 * completed by a later pull (a filtered pull stores only part of a
 * commit). 0, MD_EDB, MD_ENOSPC.
 */
int catalog_replace_rev(struct store *st, MDB_txn *txn, json_t *manifest,
			const char *ref, int *existed);

/*
 * Delete name@rev, the refs that point at it, the model record when it was
 * the last revision, and one reference per blob its files name. Appends the
 * hex of every blob whose last reference went to freed (an array).
 * 0, MD_ENOENT, MD_EDB.
 */
int catalog_del_rev(struct store *st, MDB_txn *txn, const char *name,
		    const char *rev, json_t *freed);

/* Call fn for each stored revision (of one model, or all when name is NULL),
 * in key order. The manifest is borrowed for the call. A nonzero return from
 * fn stops the walk and is returned. */
typedef int catalog_rev_fn(const char *name, const char *rev, json_t *manifest, void *arg);
int catalog_foreach_rev(struct store *st, MDB_txn *txn, const char *name,
			catalog_rev_fn *fn, void *arg);

/* New array of the ref names pointing at name@rev. NULL on ENOMEM. */
json_t *catalog_refs_to(struct store *st, MDB_txn *txn, const char *name, const char *rev);

/*
 * The summaries of every revision (of one model, or all when name is NULL),
 * as raw JSON array text in pieces of at most chunk bytes: fn gets each
 * piece (a complete JSON array; borrowed for the call) with last = 1 on the
 * final one. Nothing is parsed, so this is as fast as the cursor walk.
 */
typedef int catalog_chunk_fn(const char *json, size_t len, int last, void *arg);
int catalog_list_raw(struct store *st, MDB_txn *txn, const char *name, size_t chunk,
		     catalog_chunk_fn *fn, void *arg);

/* Rebuild the summaries database when it does not match the revisions
 * (it is derived data). 0, MD_EDB. */
int catalog_ensure_summaries(struct store *st);

/*
 * The file entry ({size, sha256, blob} or {size, sha256, pack, recipe,
 * format, ...}, without "path") under which a file with this sha256 is
 * already stored, when every blob it needs still has a record. *out is a
 * new reference. 0 or MD_ENOENT.
 */
int catalog_origin(struct store *st, MDB_txn *txn, const char *sha256, json_t **out);

/* 1 if any revision of name is stored. */
int catalog_has_model(struct store *st, MDB_txn *txn, const char *name);

#endif
