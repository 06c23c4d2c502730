/*
 * converters/recipe.h — recipes: the original file as segments over a pack
 * plus literal bytes (format: docs/pack-format.md section 2).
 *
 * A recipe reproduces its original bit-exactly. The daemon streams an
 * original by walking the segments (recipe_seg: which file, where, how long)
 * with sendfile/copy_file_range or by passing both fds; recipe_read /
 * recipe_copy reproduce any byte range [off, off+len) (HTTP Range).
 *
 * Building is done by converters/convert.c: recipe_build() derives the
 * segments from a pack layout, the pack writer's gap callback stores the
 * literal bytes at recipe_lit_base(), recipe_write_index() writes the header
 * and the segment table last.
 */
#ifndef MD_RECIPE_H
#define MD_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "converters/converter.h"
#include "converters/pack.h"

#define RECIPE_HDR_SIZE 128u
#define RECIPE_SEG_SIZE 24u
#define RECIPE_VERSION  1u
#define RECIPE_MAX_SEGS (2u * CONV_MAX_TENSORS + 1u)   /* cap on nseg */

enum { RECIPE_LIT = 0, RECIPE_PACK = 1 };

struct recipe_seg {
	uint32_t kind;       /* RECIPE_LIT: bytes of the recipe file itself;
				RECIPE_PACK: bytes of the pack file */
	uint32_t ref;        /* RECIPE_PACK: 0 the recipe's pack, k >= 1 that
				pack's k-th referenced pack (pack_ref) */
	uint64_t off;        /* absolute offset in that file */
	uint64_t len;        /* > 0 */
	uint64_t orig_off;   /* where the segment starts in the original */
};

/* ---- reading ---- */

struct recipe;

/* Validate the recipe in fd and load its segment table. fd is borrowed and
 * must stay open while the recipe is used (literals are read from it).
 * pack_sizes[0]: size of the pack the recipe refers to, pack_sizes[k] of
 * that pack's k-th referenced pack, to check pack segments against (a size
 * of 0 is not checked); npacks 0 checks nothing, else a segment with ref >=
 * npacks is refused. *out owned by the caller (recipe_close).
 * 0, MD_ECORRUPT (detail names the rule), MD_ETOOBIG, MD_EUNSUP, MD_EIO,
 * MD_ENOMEM. */
int recipe_open(int fd, const uint64_t *pack_sizes, size_t npacks, struct recipe **out);
void recipe_close(struct recipe *r);

uint64_t recipe_orig_size(const struct recipe *r);
const uint8_t *recipe_orig_sha256(const struct recipe *r);  /* 32 bytes, borrowed */
const uint8_t *recipe_pack_root(const struct recipe *r);  /* the pack's name (root digest), 32 bytes, borrowed */
size_t recipe_nseg(const struct recipe *r);
/* Segment i (< recipe_nseg) in order; borrowed until recipe_close. */
const struct recipe_seg *recipe_seg(const struct recipe *r, size_t i);
/* Index of the segment holding original byte off, or recipe_nseg if off is
 * at or past the end. */
size_t recipe_find(const struct recipe *r, uint64_t off);

/* The pack descriptors a recipe reads from: fds[0] its pack, fds[k] that
 * pack's k-th referenced pack; borrowed. A segment whose ref is >= n is
 * MD_ECORRUPT. */
struct recipe_packs {
	const int *fds;
	size_t n;
};

/* Original bytes [off, off+len) into buf. 0, MD_EINVAL (range past the
 * end), MD_EIO, MD_ECORRUPT (a file shorter than its segments). */
int recipe_read(const struct recipe *r, struct recipe_packs pk, uint64_t off, void *buf,
		size_t len);
/* Original bytes [off, off+len) written to out_fd (a file, pipe or socket;
 * copy_file_range/sendfile where the kernel can). 0, MD_EINVAL, MD_EIO,
 * MD_ENOSPC, MD_ECORRUPT. */
int recipe_copy(const struct recipe *r, struct recipe_packs pk, uint64_t off, uint64_t len,
		int out_fd);
/* Reproduce the whole original and compare its SHA-256 with the recipe's.
 * 0 or MD_ECORRUPT ("recipe: original sha256 mismatch"), MD_EIO. */
int recipe_verify(const struct recipe *r, struct recipe_packs pk);

/*
 * The recipe r over a pack rewritten by pack_share_write:
 * each pack segment is cut where the old tensors end and pointed where
 * moves (sorted by from) put them; literals are copied. Written to out_fd
 * (empty) naming new_root as its pack. 0, MD_EINVAL (a segment outside
 * every moved range), MD_ETOOBIG, MD_EIO, MD_ENOSPC, MD_ENOMEM.
 */
int recipe_rebase(const struct recipe *r, const struct pack_move *moves,
		  size_t nmoves, const uint8_t new_root[32], int out_fd);

/* ---- building ---- */

struct recipe_builder {
	struct recipe_seg *seg;   /* owned; off of literals relative to the
				     literal area until written */
	size_t n, cap;
	uint64_t lit_len, orig_size;
};

/* Segments for a source of src_size bytes converted with lay. 0 or
 * MD_ENOMEM / MD_ETOOBIG. Free with recipe_builder_free. */
int recipe_build(const struct conv_info *ci, const struct pack_layout *lay,
		 struct recipe_builder *b);
void recipe_builder_free(struct recipe_builder *b);
/* Where the literal bytes start in the recipe file. */
uint64_t recipe_lit_base(const struct recipe_builder *b);
/* Write header and segment table (literals must already be in place).
 * 0, MD_EIO, MD_ENOSPC. */
int recipe_write_index(int fd, const struct recipe_builder *b, const uint8_t orig_sha[32],
		       const uint8_t pack_root[32]);

#endif
