/*
 * converters/convert.h — one call from an untrusted weight file to a pack
 * plus a recipe (the registry's entry point to converters/).
 *
 * conv_convert() picks the converter (conv_find), parses and validates the
 * whole file, writes the pack and the recipe, and reports what the catalog
 * needs. The source is mapped once for the conversion (plus the converter's
 * own reads of the header region); tensors are hashed and copied on one
 * thread per CPU, the whole source hashed alongside unless its digest is
 * given.
 */
#ifndef MD_CONVERT_H
#define MD_CONVERT_H

#include <stdint.h>

#include "converters/converter.h"

#define CONV_RESULT_MAX_DTYPES 64
/* Hard cap (DESIGN 7) on the padding an untrusted file can make us write:
 * a pack may be at most 2 x its source's size + CONV_PACK_SLACK bytes, or
 * the file is refused (MD_EREFUSED) before anything is written. */
#define CONV_PACK_SLACK ((uint64_t)64 << 20)

struct conv_dtype_stat {
	uint32_t dtype;          /* enum conv_dtype */
	uint64_t tensors;        /* stored tensors of this dtype (aliases not counted) */
	uint64_t bytes;          /* their bytes */
};

struct conv_result {
	char format[16];         /* converter name: "safetensors", "gguf", "torch" */
	uint64_t ntensors;       /* tensor table entries, aliases included */
	uint64_t nstored;        /* tensors whose bytes are stored (aliases excluded) */
	uint64_t params;         /* sum of element counts, tied weights counted once */
	uint64_t src_size, pack_size, recipe_size;
	uint8_t src_sha256[32], recipe_sha256[32];
	uint8_t pack_root[32];   /* the pack's root digest: its name in the store */
	char src_hex[65], pack_hex[65], recipe_hex[65];   /* lower-case hex; pack_hex
							     is the root's */
	uint64_t recipe_literal; /* literal (non-tensor) bytes kept in the recipe */
	size_t ndtypes;
	struct conv_dtype_stat dtypes[CONV_RESULT_MAX_DTYPES];
};

/*
 * Convert the weight file behind src_fd (src_size bytes; borrowed; parsed
 * with pread, then mapped read-only to copy the tensors: see pack_write for
 * what a truncation meanwhile does). path is the file's relative path in the
 * model (used to pick the converter, and in messages); may be NULL.
 * src_sha256 (may be NULL) is the file's digest when the caller verified it
 * already (a pull hashes while downloading): the file is then not hashed
 * again, and it is what out->src_sha256 reports. pack_fd and recipe_fd
 * are empty regular files opened O_RDWR without O_APPEND, owned by the
 * caller (the registry fsyncs and renames them into the store).
 *
 * Returns 0 with *out filled, or:
 *   MD_EUNSUP   no converter claims the file (not a weight file): nothing was
 *               written; store the file as a plain blob. Only then: a file
 *               a converter claims and cannot convert is never MD_EUNSUP.
 *   MD_ECORRUPT / MD_ETOOBIG / MD_EREFUSED
 *               the file claims to be a weight file but breaks a rule or
 *               uses what we do not convert (a compressed zip entry,
 *               big-endian storages, GGUF v1): the detail (md_errmsg) says
 *               which, prefixed with the path, e.g. "model.safetensors:
 *               safetensors: header length 4294967296 exceeds 100000000
 *               bytes", "model.gguf: refused: GGUF version 1 (only 2 and
 *               3)", or a pack that would outgrow the file (CONV_PACK_SLACK:
 *               "refused: 50000 tensors would need a 218 MB pack for a
 *               3.6 MB file"). The import must fail.
 *   MD_EIO, MD_ENOSPC, MD_ENOMEM
 * On any failure both output files are truncated to 0 bytes.
 */
int conv_convert(int src_fd, uint64_t src_size, const char *path, const uint8_t *src_sha256,
		 int pack_fd, int recipe_fd, struct conv_result *out);

/* The second half of conv_convert: pack + recipe for a conv_info a
 * converter already produced (borrowed). Same outputs and errors (no path
 * prefix). */
int conv_convert_info(int src_fd, uint64_t src_size, const struct conv_info *ci,
		      const uint8_t *src_sha256, int pack_fd, int recipe_fd,
		      struct conv_result *out);

/* ---- placed files (a pull writes a safetensors file in pack layout) ----
 * head_fd holds the file's first bytes (at least its header; more is
 * fine), src_size is the whole file's size. */
struct pack_seg;

/* Where each source byte goes (pack_place, converters/pack.h): *segs
 * malloc'd (free), *placed_size the placed file's size. Same errors as
 * conv_convert's parsing (a head too short for the file's header is one of
 * them), and MD_EUNSUP for a file that is neither safetensors nor GGUF or
 * cannot be placed (then download it as it is). */
int conv_plan(int head_fd, uint64_t src_size, const char *path, struct pack_seg **segs,
	      size_t *nseg, uint64_t *placed_size);

/* conv_convert for a file downloaded as conv_plan said: placed_fd
 * (read-write, borrowed) becomes the pack, in place (pack_write_placed);
 * the header in head_fd (its first piece) must equal the placed file's
 * (MD_ECORRUPT otherwise: a hub that served two versions). src_sha256 as for
 * conv_convert. On failure the placed file and the recipe are truncated. */
int conv_convert_placed(int head_fd, int placed_fd, uint64_t src_size, const char *path,
			const uint8_t *src_sha256, int recipe_fd, struct conv_result *out);

#endif
