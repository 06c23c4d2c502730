/*
 * converters/tdigest.h — the digest of a tensor's bytes in a pack's table
 * (docs/pack-format.md 1.3). The pack's version fixes the algorithm:
 * version 1 packs hold SHA-256 (32 bytes), version 2 packs XXH3-128 (16
 * bytes, canonical big-endian, then 16 zero bytes in the 32-byte field).
 *
 * XXH3 is not a cryptographic hash, and it need not be: a tensor digest
 * detects damage and finds candidates for sharing, and the store never
 * trusts one for more: a tensor is shared only after its bytes compare
 * equal (registry/share.c), and a pack whose name (root digest) is already
 * stored is kept only if the two files are equal (registry/ingest.c). Files
 * stay named by SHA-256 (the hub's LFS oid, recipes, blobs).
 *
 * A struct tdigest is owned by its caller: tdigest_init allocates, and
 * tdigest_final releases (tdigest_free on abandon).
 */
#ifndef MD_TDIGEST_H
#define MD_TDIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"

enum tdigest_alg {
	TDIGEST_SHA256 = 1,   /* pack version 1 */
	TDIGEST_XXH3 = 2      /* pack version 2 (what the writer writes) */
};
#define TDIGEST_WRITE TDIGEST_XXH3
#define TDIGEST_SIZE 32u      /* the field in a table entry */

struct tdigest {
	enum tdigest_alg alg;
	struct sha256 sha;
	void *xxh;            /* XXH3_state_t */
};

/* 0, MD_ENOMEM, MD_EINVAL (unknown alg). */
int tdigest_init(struct tdigest *d, enum tdigest_alg alg);
void tdigest_update(struct tdigest *d, const void *p, size_t n);
/* Writes the 32-byte field (zero-padded) and releases the state. */
void tdigest_final(struct tdigest *d, uint8_t out[TDIGEST_SIZE]);
void tdigest_free(struct tdigest *d);

/* Meaningful bytes of the field (32 or 16), and the name clients see
 * ("sha256", "xxh3-128"); 0 / NULL for an unknown alg. */
size_t tdigest_len(enum tdigest_alg alg);
const char *tdigest_name(enum tdigest_alg alg);

#endif
