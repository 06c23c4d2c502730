/*
 * registry/store.h — the content-addressed store on disk and its LMDB
 * catalog (DESIGN 2; schema in docs/catalog.md).
 *
 *   STORE/blobs/sha256/ab/<hex>   immutable blobs, 0444
 *   STORE/tmp/                    staging directories of running imports
 *   STORE/catalog/                the LMDB environment
 *   STORE/lock                    flock'd by the one modeld using the store
 *   STORE/reserve                 STORE_RESERVE allocated bytes that rm gives
 *                                 up when the disk is full (store_reserve_*)
 *
 * A struct store is thread-safe: any thread may read (LMDB readers never
 * block) and writes are serialized by LMDB's single writer. Blobs enter
 * blobs/ only inside a catalog write transaction (ingest.c), so a blob file
 * with no catalog record is garbage that gc may remove while it holds the
 * writer, and a crash leaves the previous state plus such garbage.
 */
#ifndef MD_STORE_H
#define MD_STORE_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <lmdb.h>

#define STORE_SCHEMA 1

struct store {
	char *root;            /* owned */
	MDB_env *env;
	MDB_dbi models;        /* name -> {"v":1,"name","created","updated"} */
	MDB_dbi revs;          /* name \0 rev -> manifest JSON ({"v":1,...}) */
	MDB_dbi sums;          /* name \0 rev -> summary JSON: the manifest without
				  "files", plus "file_count" and "refs" (list) */
	MDB_dbi refs;          /* name \0 ref -> {"v":1,"rev"} */
	MDB_dbi blobs;         /* sha256 (32 bytes) -> struct store_blobrec */
	MDB_dbi jobs;          /* job id (u64 big-endian) -> job JSON */
	MDB_dbi meta;          /* "schema" -> u32; "index" -> u32 (registry/index.h) */
	MDB_dbi idx;           /* catalog index (dupsort, u64 ids): "FIELD\0VALUE" -> id */
	MDB_dbi inums;         /* name \0 rev -> struct index_num + row JSON (registry/index.h) */
	MDB_dbi irows;         /* u64 id -> name \0 rev */
	MDB_dbi iranges;       /* KIND u64be(value) u64be(id) -> "" (ordered ranges) */
	MDB_dbi origins;       /* sha256 of an original file (32 bytes) -> the
				  manifest file entry that stores it (JSON),
				  so a pull skips what is already stored */
	MDB_dbi tensors;       /* tensor digest (32 bytes) -> pack root (32) +
				  offset (u64 LE) + length (u64 LE): a stored
				  pack holding those bytes (registry/tindex.h) */
	int lock_fd;
};

/* Value of the blobs database (little-endian on disk, host order here). */
struct store_blobrec {
	uint32_t version;      /* STORE_SCHEMA */
	uint32_t flags;
	uint64_t refs;         /* manifest entries referring to the blob */
	uint64_t size;         /* bytes */
};

/* Give the pages of the catalog's mapping back to the kernel (they stay in
 * the page cache); called when the daemon goes idle. */
void store_release_memory(struct store *st);

/* Catalog size when none is configured: virtual address space the
 * catalog may use; LMDB grows the file on demand. */
#define STORE_MAPSIZE ((uint64_t)16 << 30)

/* Open flags. */
#define STORE_NOLOCK 1         /* do not take STORE/lock (tools, -n checks) */

/*
 * Create the layout if missing and open the catalog. Takes an exclusive
 * flock on STORE/lock unless STORE_NOLOCK: a second modeld on the same store
 * gets MD_EBUSY. mapsize: the most bytes the catalog may hold (0:
 * STORE_MAPSIZE); a catalog that holds more already keeps its size. A
 * commit past it is MD_ENOSPC "catalog full". Returns 0 and *out (free
 * with store_close), or MD_EIO, MD_EPERM, MD_EBUSY, MD_EDB, MD_EUNSUP
 * (newer schema) with detail.
 */
int store_open(const char *root, int flags, uint64_t mapsize, struct store **out);

/* Bytes the catalog uses (its pages up to the last one written) and may
 * use (the map size). */
void store_catalog_usage(struct store *st, uint64_t *used, uint64_t *max);

/* Whether store_open could create a store at ROOT, which does not exist:
 * its nearest existing ancestor is a directory this process may write.
 * Creates nothing (modeld -n). 0, or MD_EPERM / MD_EIO naming that
 * ancestor. */
int store_creatable(const char *root);
void store_close(struct store *st);

/* Path of a blob: ROOT/blobs/sha256/ab/<hex>. out must hold 4096 bytes. */
void store_blob_path(const struct store *st, const char *hex, char *out, size_t n);

/*
 * Room kept for the catalog commit of an rm on a full disk. A commit needs
 * new pages (LMDB copies on write), so with no free page in the catalog and
 * no free byte on the filesystem even a removal fails, and the store's space
 * could not be given back at all. The owning modeld (not STORE_NOLOCK) keeps
 * STORE/reserve allocated; maint_rm removes it and tries again when its
 * commit finds no room, and fills it again once the removal freed space.
 */
#define STORE_RESERVE ((off_t)4 << 20)
/* Below this many free bytes a commit's EIO (LMDB's short write) is ENOSPC. */
#define STORE_FULL_BELOW ((uint64_t)1 << 20)
/* Create STORE/reserve with STORE_RESERVE allocated bytes (no-op when it is
 * there). 0, MD_ENOSPC (nothing is left behind), MD_EIO, MD_EPERM. */
int store_reserve_fill(struct store *st);
/* Remove STORE/reserve: 1 when that freed it, 0 when there was none. */
int store_reserve_release(struct store *st);

/* Begin a transaction; MD_EDB with detail on failure. */
int store_txn(struct store *st, int write, MDB_txn **txn);
/* Commit; maps MDB_MAP_FULL, ENOSPC, and EIO on a full filesystem (LMDB's
 * short write) to MD_ENOSPC. */
int store_commit(MDB_txn *txn);

/* Map an LMDB return code to MD_E* with a detail prefixed by what. */
int store_mdb_err(int rc, const char *what);

/* Blob refcount records inside a write txn. */
int store_blob_get(struct store *st, MDB_txn *txn, const char *hex, struct store_blobrec *rec);
int store_blob_ref(struct store *st, MDB_txn *txn, const char *hex, uint64_t size);
/* Drop one reference; sets *freed to 1 when it was the last (the record is
 * deleted; the file stays until store_blobs_reap or gc). */
int store_blob_unref(struct store *st, MDB_txn *txn, const char *hex, int *freed);

/*
 * For each hex in the array whose blob has no record any more, unlink its
 * file. Runs its own write txn so that it cannot race an import commit.
 */
int store_blobs_reap(struct store *st, json_t *hexes);

/* The blobs (hex strings) a manifest file entry refers to, with their sizes
 * ("blob": size; "pack": pack_size; "recipe": recipe_size; then each of
 * "refs": [{"pack", "size"}], the packs holding tensors its pack refers to);
 * hex borrowed from entry. Writes up to max (STORE_ENTRY_MAX_BLOBS holds
 * them all), returns the count. sizes may be NULL. */
#define STORE_ENTRY_MAX_BLOBS (3 + 64)   /* 3 + PACK_MAX_REFS */
size_t store_entry_blobs(json_t *entry, const char **out, uint64_t *sizes, size_t max);

#endif
