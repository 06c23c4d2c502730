/*
 * registry/share.h — a tensor stored once across packs (DESIGN 2).
 *
 * After a weight file is converted, its stored tensors are looked up by
 * digest: in the tensor index (registry/tindex.h: packs already in the
 * store) and in the share map of the running import (packs it staged
 * itself, not yet indexed). When enough of its bytes are already held
 * elsewhere, the pack and recipe are rewritten (pack_share_write,
 * recipe_rebase) so those tensors refer to the pack holding them: the file
 * entry then lists those packs in "refs" [{"pack", "size"}], which keeps
 * them alive (blob references) and lets readers open them.
 *
 * "Enough": at least SHARE_MIN_SAVED bytes, or an eighth of the pack's
 * data: a rewrite copies the bytes that stay, so sharing one small tensor
 * of a big file is not worth it.
 */
#ifndef MD_SHARE_H
#define MD_SHARE_H

#include <stdint.h>

#include <jansson.h>

#include "registry/store.h"

#define SHARE_MIN_SAVED ((uint64_t)64 << 20)

/* The packs one import has staged, by tensor digest; thread-safe. */
struct share_map;
struct share_map *share_map_new(void);
void share_map_free(struct share_map *m);

/* Add the tensors a pack staged by the import holds itself (an adopted
 * one: a resumed pull's files kept from before) to map. pack_fd borrowed;
 * hex is its name, path its staged file (read again to compare bytes
 * before another file shares them). 0, or the pack's error (then nothing
 * is added). */
int share_map_add(struct share_map *m, const char *hex, int pack_fd, const char *path);

/* Record the map's tensors in the store's tensor index (tindex_put) inside
 * the import's commit txn: the packs this import staged, read once when
 * they were shared or adopted. An entry whose pack was not committed after
 * all is never answered (tindex_get checks). 0, MD_EDB, MD_ENOSPC. */
int share_map_commit(struct share_map *m, struct store *st, MDB_txn *txn);

/* What a rewrite produced. */
struct share_out {
	char pack[65], recipe[65];     /* new root digest, recipe sha256 */
	uint64_t pack_size, recipe_size;
	uint64_t saved;                /* tensor bytes not stored again */
	json_t *refs;                  /* [{"pack","size"}], new reference */
};

/* Opens an empty read-write output file of kind 'p' (pack) or 'r'
 * (recipe): its descriptor (the caller's) or an MD_E* code; the file's path
 * to path[n] when path is not NULL. */
typedef int (*share_open_fn)(void *arg, char kind, char *path, size_t n);

/*
 * Share what can be shared of the converted pack in pack_fd, staged at
 * pack_path (with its recipe in recipe_fd; both borrowed, read from the
 * start). A tensor is shared only after its bytes compare equal to those
 * of the pack that would hold them. open_out is called (with arg) for each
 * of the two output files only when a rewrite is worth it. Returns 1 with
 * *out filled (the outputs are written, not fsync'd; out->refs is the
 * caller's), 0 when the file stays as it is, or an MD_E* code (the caller
 * removes any outputs it opened). Either way the resulting pack's own
 * tensors join map. Calls on one map are serialized (two files of one
 * import share with each other).
 */
int share_pack(struct store *st, struct share_map *map, int pack_fd, const char *pack_path,
	       int recipe_fd, share_open_fn open_out, void *arg, struct share_out *out);

#endif
