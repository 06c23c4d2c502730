/*
 * converters/pack.h — the pack file: writer and strict reader
 * (format: docs/pack-format.md).
 *
 * Writing: pack_layout_init() checks a struct conv_info from a converter
 * (names, dtypes, lengths, ranges, aliases) and fixes where every tensor goes;
 * pack_write() then maps the source read-only and writes the pack, hashing
 * every tensor (worker threads, one per CPU, tensors taken in source order)
 * and, unless the caller knows it, the whole source; it hands every source
 * byte not covered by a stored tensor to a callback (the recipe's literals).
 * A pack's name in the store is its root digest (not a hash of the file):
 * the root commits to every tensor digest and padding must be zero, so it
 * names the content as surely, without a third pass over the bytes.
 * converters/convert.h wraps both.
 *
 * Reading: pack_open() / pack_open_mem() validate a pack as strictly as a
 * foreign file and expose its tensor table. A struct pack holds only the
 * index (table, names, metadata); tensor bytes stay in the file.
 */
#ifndef MD_PACK_H
#define MD_PACK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "converters/converter.h"

#define PACK_ALIGN     4096u
#define PACK_HDR_SIZE  128u
#define PACK_ENTRY     160u
#define PACK_TRAILER   64u
#define PACK_VERSION   2u     /* written; 1 (SHA-256 tensor digests) is still read */
#define PACK_VERSION_STR "2"  /* as provenance records it ("converters") */
#define PACK_F_REFS    1u     /* header flag: some tensors' bytes live in other packs */
#define PACK_MAX_REFS  64u    /* packs one pack may refer to (cap) */
#define PACK_MAX_STRTAB (256u << 20)   /* string table bytes (cap) */
/* Cap on the tensor bytes a pack may hold for a source of n bytes (padding
 * not counted): overlapping views are stored as copies, so bound the blow-up. */
#define PACK_MAX_GROWTH(n) (2 * (uint64_t)(n) + ((uint64_t)64 << 20))

/* ---- writing ---- */

struct pack_layout {
	size_t n;              /* tensors (== ci->n) */
	uint64_t *off;         /* [n] data offset in the pack */
	int64_t *alias;        /* [n] -1 if stored, else index of the stored tensor
				  with the same bytes (the converter's alias, or a
				  tensor with the same source range) */
	size_t *order;         /* [nstored] stored tensors by (src_off, index) */
	size_t nstored;
	int overlap;           /* 1 if stored source ranges overlap */
	uint64_t src_size, data_end, table_off, file_size;
	uint8_t *strtab;       /* names, concatenated */
	uint64_t strtab_len;
	uint32_t *name_off;    /* [n] */
	uint8_t *meta;         /* u64 count + GGUF records */
	uint64_t meta_len;
	char format[16];
};

/* Validate ci against src_size and lay the pack out. ci is borrowed and must
 * outlive lay. 0, MD_EINVAL (a converter bug or a bad file the converter let
 * through: detail names the tensor), MD_ETOOBIG, MD_ENOMEM. Free with
 * pack_layout_free (also after failure). */
int pack_layout_init(const struct conv_info *ci, uint64_t src_size, struct pack_layout *lay);
void pack_layout_free(struct pack_layout *lay);

/* Called with source bytes [src_off, src_off+n) that no stored tensor
 * covers, in increasing order; returns 0 or an MD_E* code that aborts. */
typedef int (*pack_gap_fn)(void *arg, uint64_t src_off, const uint8_t *p, size_t n);

struct pack_written {
	uint8_t src_sha256[32];   /* of the whole source (the caller's, when given) */
	uint8_t root[32];         /* the pack's root digest: its name */
	uint64_t size;            /* pack file size */
};

/* Write the pack for (ci, lay) to pack_fd (an empty regular file opened
 * read-write, not O_APPEND; borrowed) from src_fd [0, src_size), a regular
 * file mapped read-only for the call: if another process truncates it
 * meanwhile the caller gets SIGBUS, so run this in a process that may die
 * (the daemon runs it in modeld-worker). src_sha256, when not NULL, is the
 * source's digest the caller already verified; it is copied to out instead
 * of hashing the source again. gap may be NULL. 0 or MD_EIO / MD_ENOSPC /
 * MD_ENOMEM / MD_ECORRUPT (source shorter than src_size, or changed size or
 * times during the call) / the gap callback's code. On failure the pack
 * file's contents are unspecified. */
int pack_write(int src_fd, const struct conv_info *ci, const struct pack_layout *lay,
	       const uint8_t *src_sha256, int pack_fd, pack_gap_fn gap, void *arg,
	       struct pack_written *out);

/* ---- placed files ----
 *
 * A pull can write a safetensors file straight into pack layout instead of
 * downloading it and copying every tensor: pack_place() says where each byte
 * of the source goes: a stored tensor's bytes to its place in the pack, the
 * bytes no tensor covers (the header, holes) one after another from
 * align4096(lay->file_size) on (the tail). Header, padding and index are left
 * for pack_write_placed(). */
struct pack_seg {
	uint64_t src, dst, len;   /* source bytes [src, src+len) go to [dst, dst+len) */
};
#define PACK_PLACE_MAX_SEGS 16384u   /* cap on the pieces of one placed file */

/* The pieces, in source order, adjacent ones merged (malloc'd in *segs, the
 * caller frees), covering [0, src_size) exactly once; *placed_size is the
 * placed file's size (the tail's end). 0, MD_EUNSUP (a strided view,
 * overlapping tensors, more than PACK_PLACE_MAX_SEGS pieces), MD_ENOMEM. */
int pack_place(const struct conv_info *ci, const struct pack_layout *lay, struct pack_seg **segs,
	       size_t *nseg, uint64_t *placed_size);

/* Turn fd (read-write; borrowed), a file holding the source placed as
 * pack_place says, into the pack for (ci, lay): every tensor hashed where
 * it lies, the tail handed to gap in source order, header, padding and index
 * written, the file fdatasync'd, then cut to lay->file_size (until then it
 * still holds every source byte where pack_place put it). src_sha256 as for
 * pack_write (NULL: hash the pieces in source order). Same errors as
 * pack_write, and MD_ECORRUPT when fd is shorter than the placed size. On
 * failure the file's contents are unspecified. */
int pack_write_placed(int fd, const struct conv_info *ci, const struct pack_layout *lay,
		      const uint8_t *src_sha256, pack_gap_fn gap, void *arg,
		      struct pack_written *out);

/* ---- reading ---- */

struct pack_tensor {
	const char *name;      /* NUL-terminated, owned by the struct pack */
	uint32_t dtype;        /* enum conv_dtype */
	uint32_t ndim;
	uint64_t shape[CONV_MAX_DIMS];
	uint64_t offset;       /* data offset in the pack file (4096-aligned) */
	uint64_t length;       /* data bytes */
	uint64_t src_off;      /* where the bytes were in the source file */
	int64_t alias;         /* index of the stored tensor holding the bytes, or -1 */
	uint32_t ref;          /* 0: the bytes are in this pack at offset; k >= 1: in
				  the k-th referenced pack (pack_ref) at offset */
	uint8_t digest[32];    /* of the data: converters/tdigest.h, by pack_version */
};

struct pack;

#define PACK_VERIFY_DATA 1u  /* also read all data: tensor digests, zero padding */
#define PACK_SKIP_META   2u  /* do not decode the metadata (pack_meta is empty):
				for quick table listings of packs already
				verified at import; the root digest still covers it */

/* Validate the pack in fd (borrowed; only used during the call) and load its
 * index. *out is owned by the caller (pack_close). 0, MD_ECORRUPT (detail
 * names the broken rule: "pack: tensor 3 (x): digest mismatch"), MD_ETOOBIG,
 * MD_EUNSUP (a version after PACK_VERSION), MD_EIO, MD_ENOMEM. */
int pack_open(int fd, unsigned flags, struct pack **out);
/* Same over a read-only mapping or buffer of n bytes (borrowed, only during
 * the call). */
int pack_open_mem(const void *p, size_t n, unsigned flags, struct pack **out);
void pack_close(struct pack *p);

size_t pack_count(const struct pack *p);
/* Entry i (< pack_count), in table order; borrowed until pack_close. */
const struct pack_tensor *pack_tensor(const struct pack *p, size_t i);
/* Entry by name, or NULL; borrowed until pack_close. */
const struct pack_tensor *pack_find(const struct pack *p, const char *name);
/* "safetensors", "torch", "gguf"...; borrowed until pack_close. */
const char *pack_format(const struct pack *p);
/* Metadata object (gguf.h representation; empty object if none); borrowed
 * until pack_close. */
const json_t *pack_meta(const struct pack *p);
uint64_t pack_file_size(const struct pack *p);
uint64_t pack_src_size(const struct pack *p);
uint64_t pack_data_end(const struct pack *p);
const uint8_t *pack_root(const struct pack *p);   /* 32 bytes */
/* 1 or 2: also the tensor digests' enum tdigest_alg (converters/tdigest.h). */
uint32_t pack_version(const struct pack *p);

/* ---- tensors stored once across packs ----
 *
 * A pack may refer to up to PACK_MAX_REFS other packs (by root digest) for
 * tensors whose bytes another pack already holds: such an entry has ref k
 * and its offset is in the k-th referenced pack. The reader checks the
 * entries' form; whether the referenced pack really holds those bytes is
 * pack_check_ref's job (modelctl verify), since it needs the other file. */

/* Number of referenced packs, and the root of the k-th (1..pack_nrefs; NULL
 * otherwise; 32 bytes borrowed until pack_close). */
size_t pack_nrefs(const struct pack *p);
const uint8_t *pack_ref(const struct pack *p, size_t k);

/* Check that every entry of p with ref k names bytes q holds itself: a
 * tensor of q with ref 0 at the same offset with the same length and
 * digest (q's data is checked by opening q with PACK_VERIFY_DATA). 0 or
 * MD_ECORRUPT naming the entry (or q being of another version), MD_EINVAL (q is not p's k-th pack),
 * MD_ENOMEM. */
int pack_check_ref(const struct pack *p, size_t k, const struct pack *q);

/* Which stored tensors of a pack to take from other packs instead. */
struct pack_share {
	size_t nrefs;                  /* 1..PACK_MAX_REFS */
	const uint8_t (*refs)[32];     /* [nrefs] roots of the packs referred to */
	const uint32_t *ref;           /* [pack_count]: 0 keep the bytes, k: in refs[k-1] */
	const uint64_t *off;           /* [pack_count]: offset there (ref != 0) */
};

/* Where a stored byte range of the old pack went: to `to` in this pack
 * (ref 0) or in the ref-th referenced pack. */
struct pack_move {
	uint64_t from, len;
	uint32_t ref;
	uint64_t to;
};

/*
 * Rewrite pack p (opened from in_fd, which has no references itself) into
 * out_fd (empty, read-write) with the stored tensors that sh marks taken
 * from other packs: their entries refer there and their bytes are not
 * copied; aliases follow their target; the other tensors are copied
 * (copy_file_range) to a new, gapless layout. *moves (malloc'd, *nmoves
 * entries, sorted by from) maps each old stored tensor to its new place,
 * for recipe_rebase. out gets the new root and size (src_sha256 is left
 * zero). Every referenced pack must be used by some entry. 0, MD_EINVAL
 * (bad sh), MD_EIO, MD_ENOSPC, MD_ENOMEM.
 */
int pack_share_write(int in_fd, const struct pack *p, const struct pack_share *sh, int out_fd,
		     struct pack_move **moves, size_t *nmoves, struct pack_written *out);

#endif
