/*
 * registry/tindex.h — which stored pack holds a tensor, by the tensor's
 * SHA-256 (the `tensors` database of the catalog), so that a new pack can
 * refer to bytes the store already has instead of storing them again
 * (DESIGN 2: two models that share a tensor share its bytes; registry/
 * share.h does the sharing).
 *
 * Only tensors a pack holds itself (not aliases, not references to other
 * packs) of at least TINDEX_MIN_BYTES are indexed: smaller ones would save
 * less than a page each. An entry may outlive its pack until gc prunes it
 * (tindex_prune): tindex_get only answers with a pack whose blob still has
 * a catalog record, and tindex_put_pack replaces such stale entries.
 */
#ifndef MD_TINDEX_H
#define MD_TINDEX_H

#include <stdint.h>

#include <lmdb.h>

#include "converters/pack.h"
#include "registry/store.h"

#define TINDEX_MIN_BYTES (64u << 10)

struct tindex_hit {
	char pack[65];         /* root digest (hex) of the pack holding the bytes */
	uint64_t offset;       /* where in that pack */
	uint64_t length;
	uint64_t pack_size;    /* the pack blob's size */
};

/* A stored pack holding a tensor with this digest (txn: read or write).
 * 0, MD_ENOENT (none, or only stale entries), MD_EDB. */
int tindex_get(struct store *st, MDB_txn *txn, const uint8_t digest[32], struct tindex_hit *hit);

/* Record that pack hex holds a tensor with this digest at offset, unless a
 * live entry names a pack already (write txn). 0, MD_EINVAL (hex), MD_EDB. */
int tindex_put(struct store *st, MDB_txn *txn, const uint8_t digest[32], const char *hex,
	       uint64_t offset, uint64_t length);

/* tindex_put for the tensors of pack p (whose blob is hex) as above. */
int tindex_put_pack(struct store *st, MDB_txn *txn, const char *hex, const struct pack *p);

/* Drop the entries whose pack has no catalog record any more (gc), in its
 * own write txn; *removed (may be NULL) gets the count. 0, MD_EDB. */
int tindex_prune(struct store *st, uint64_t *removed);

/* Index the packs of every stored revision once (a store written before the
 * index existed): a no-op when the catalog's meta "tensors_index" says it is
 * done. A pack that cannot be opened is skipped (verify reports it). 0,
 * MD_EDB, MD_ENOSPC, MD_ENOMEM. */
int tindex_ensure(struct store *st);

#endif
