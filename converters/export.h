/*
 * converters/export.h — write a fresh safetensors or GGUF file from a pack
 * (docs/pack-format.md section 3). For the bit-exact original of a converted
 * file use its recipe (recipe.h); exports are for producing a file in another
 * format (a GGUF from safetensors, a safetensors from a torch checkpoint...).
 *
 * Both write sequentially to out_fd (a file, pipe or socket; borrowed) and
 * read tensor bytes from pack_fds (borrowed): [0] the file p was opened
 * from, [k] its k-th referenced pack (pack_ref), pack_nrefs(p) + 1 of them.
 */
#ifndef MD_EXPORT_H
#define MD_EXPORT_H

#include "converters/pack.h"

/* safetensors: tensors in table order, aliases written as copies, header
 * padded with spaces to a multiple of 8, __metadata__ from the pack's
 * string-valued metadata (other values are left out). 0, MD_EUNSUP (a ggml
 * block type: detail names the tensor), MD_EIO, MD_ENOSPC, MD_ENOMEM. */
int export_safetensors(const struct pack *p, const int *pack_fds, int out_fd);

/* GGUF v3: the pack's metadata (typed values kept), tensor infos in table
 * order with dimensions innermost first. The alignment is the pack's
 * general.alignment when that is a u32 power of two (a GGUF original's, kept
 * as a key); otherwise 32, and a general.alignment of another form is left
 * out. dtypes F32 F16 BF16 F64 I8 I16 I32 I64 and every ggml
 * block type. 0, MD_EUNSUP (a dtype GGUF has no type for, e.g. U8 or
 * F8_E4M3: detail names the tensor; a name of 64 bytes or more), MD_EIO,
 * MD_ENOSPC, MD_ENOMEM. */
int export_gguf(const struct pack *p, const int *pack_fds, int out_fd);

#endif
