/*
 * converters/converter.h — the slots every weight-format converter fills.
 *
 * A converter parses one untrusted weight file (safetensors, torch zip or
 * legacy pickle, GGUF) and reports its tensors: name, dtype, shape and the
 * byte range of each tensor's data inside the source file. It never executes
 * anything from the file, bounds every length before use, and knows nothing
 * of LMDB or sockets (DESIGN 1, 4). The pack writer (converters/pack.h) and
 * the recipe builder turn that report into an aligned pack plus a recipe
 * that reproduces the original bit-exactly: bytes of the source covered by
 * tensor ranges come from the pack, every other byte is kept as a literal.
 *
 * One converter per file (converters/<format>.c), each exporting one const
 * struct converter; converters/registry.c lists them. Adding a format touches
 * no other converter.
 */
#ifndef MD_CONVERTER_H
#define MD_CONVERTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Element types. Values are stored in packs: never renumber. */
enum conv_dtype {
	CONV_DT_BOOL = 1,
	CONV_DT_U8, CONV_DT_I8, CONV_DT_I16, CONV_DT_U16, CONV_DT_I32, CONV_DT_U32,
	CONV_DT_I64, CONV_DT_U64,
	CONV_DT_F16, CONV_DT_BF16, CONV_DT_F32, CONV_DT_F64,
	CONV_DT_F8_E4M3, CONV_DT_F8_E5M2, CONV_DT_F8_E8M0,
	CONV_DT_F6_E2M3, CONV_DT_F6_E3M2, CONV_DT_F4,
	CONV_DT_C64,
	CONV_DT_C128,            /* torch complex128; not a safetensors dtype */
	/* GGUF/ggml block-quantized types are opaque blocks: CONV_DT_GGML + the
	 * ggml type id (0..255). */
	CONV_DT_GGML = 0x100,
};

#define CONV_MAX_DIMS 8
#define CONV_MAX_NAME 1024        /* bytes in a tensor name */
#define CONV_MAX_TENSORS 1000000  /* tensors in one file */

struct conv_tensor {
	char *name;                    /* owned by the conv_info; UTF-8, no NUL */
	uint32_t dtype;                /* enum conv_dtype */
	uint32_t ndim;
	uint64_t shape[CONV_MAX_DIMS];
	uint64_t src_off;              /* data's first byte in the source file */
	uint64_t len;                  /* data bytes */
	uint64_t *stride;              /* owned, or NULL: the bytes are
					  [src_off, +len) in row-major order.
					  Else a strided view (torch): element
					  (i0..ik) is at src_off + sum(i_d *
					  stride[d]) elements, strides checked
					  not to overlap (conv_strided_span);
					  the pack stores it gathered */
	int64_t alias;                 /* index of an earlier tensor with the same
					  bytes (tied weights), or -1 */
};

struct conv_info {
	const char *format;            /* static: "safetensors", "torch", "gguf" */
	struct conv_tensor *t;         /* owned */
	size_t n, cap;
	json_t *meta;                  /* owned: format metadata (string map for
					  safetensors __metadata__, typed for GGUF) or NULL */
};

struct converter {
	const char *name;              /* "safetensors", "torch", "gguf" */
	/* 1 if this converter should handle the file, from its path and its
	 * first nhead bytes (nhead may be short for tiny files). Pure. */
	int (*match)(const char *path, const uint8_t *head, size_t nhead);
	/* Parse and validate the whole file behind fd (size bytes; read with
	 * pread, never mmap'd writable). Fills out (zeroed by the caller) and
	 * returns 0, or a negative MD_E* code with an md_fail detail naming the
	 * problem, e.g. "refused: global posix.system". A file match() claimed
	 * is this converter's to check: what it cannot convert, even for want
	 * of a feature (a compressed zip entry, big-endian data, a version it
	 * does not read), is MD_EREFUSED ("refused: ...") or MD_ECORRUPT, never
	 * MD_EUNSUP, which would let the file be stored unchecked
	 * (conv_convert turns a stray MD_EUNSUP into MD_EREFUSED). On failure
	 * out is freed by the caller with conv_info_free. */
	int (*parse)(int fd, uint64_t size, struct conv_info *out);
	/* Optional, for files match() does not claim but the format's readers
	 * would still load (torch.load reads a zip under any name, and its
	 * records may sit past the head): maybe() says from the head that the
	 * file could be one (pure), and probe() looks further, in the worker,
	 * before any parse: 1 it is (then parse() decides as for a match), 0 it
	 * is not (the file is stored as it is), or a negative MD_E* code (it is
	 * not readable as one either: stored as it is too). */
	int (*maybe)(const uint8_t *head, size_t nhead);
	int (*probe)(int fd, uint64_t size);
};

/* Free everything a conv_info owns; leaves it zeroed. */
void conv_info_free(struct conv_info *ci);
/* Append a tensor (name copied). 0, MD_ENOMEM, MD_ETOOBIG. */
int conv_info_add(struct conv_info *ci, const char *name, uint32_t dtype,
		  uint32_t ndim, const uint64_t *shape, uint64_t src_off, uint64_t len);
/* Append a strided view: as conv_info_add with stride[ndim] (elements) and
 * span, the bytes from src_off its elements reach (conv_strided_span). */
int conv_info_add_strided(struct conv_info *ci, const char *name, uint32_t dtype,
			  uint32_t ndim, const uint64_t *shape, const uint64_t *stride,
			  uint64_t src_off, uint64_t len);

/* Bytes from its first element to the end of its last one of a view with
 * element size esize: 0 with *span set when no two elements overlap (dims
 * of size > 1 sorted by stride, each stride at least the extent of the
 * smaller ones) and nothing overflows; MD_EUNSUP (overlapping: a broadcast
 * or an overlapping window), MD_ECORRUPT (overflow). */
int conv_strided_span(uint32_t ndim, const uint64_t *shape, const uint64_t *stride,
		      uint64_t esize, uint64_t *span);

/* Gather bytes [off, off+n) of strided tensor t (in row-major order of its
 * shape) from the source mapped at src into out. off and n are multiples
 * of the element size. */
void conv_gather(const uint8_t *src, const struct conv_tensor *t, uint64_t off, uint64_t n,
		 uint8_t *out);

/* Element size in bits for plain dtypes (F4 = 4, F6 = 6), 0 for GGML/unknown. */
unsigned conv_dtype_bits(uint32_t dtype);
/* Name as safetensors spells it ("BF16"), or NULL (also for C128, which
 * the safetensors spec lacks). */
const char *conv_dtype_name(uint32_t dtype);
/* Name of any plain dtype: conv_dtype_name, or "C128"; NULL if unknown. */
const char *conv_dtype_label(uint32_t dtype);

/* Byte length of a tensor from its dtype and shape (shape in row-major
 * order: shape[ndim-1] is the innermost dimension, GGUF's ne[0]). Plain
 * dtypes: product * bits must be a multiple of 8. ggml block types: the
 * innermost dimension must be a multiple of the block size. Every product is
 * overflow-checked. 0 with *len set, or MD_ECORRUPT (md_fail detail, no
 * tensor name: callers prefix it). */
int conv_tensor_nbytes(uint32_t dtype, uint32_t ndim, const uint64_t *shape, uint64_t *len);
/* ggml type t (0..255): 1 with block size, bytes per block and name
 * ("Q4_K") if known and still supported by GGUF readers, else 0. Any out
 * pointer may be NULL. */
int conv_ggml_type(uint32_t t, uint32_t *blck, uint32_t *tsize, const char **name);
/* 1 if dtype is a known plain dtype or CONV_DT_GGML + a known ggml type. */
int conv_dtype_known(uint32_t dtype);
/* Printable dtype name: conv_dtype_name, or "GGML_Q4_K" for block types,
 * or "?" ; static. */
const char *conv_dtype_str(uint32_t dtype);
/* The name tables and bytes-per-dtype maps key on: conv_dtype_str, or
 * "GGML_<id>" (written into buf) for a block type it does not name. */
const char *conv_dtype_key(uint32_t dtype, char buf[32]);
/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF)
 * without NUL bytes. */
int conv_utf8_ok(const char *s, size_t n);

/* The converters this library provides (converters/<name>.c). */
extern const struct converter conv_safetensors;
extern const struct converter conv_gguf;

/* Bytes of a file's start that match() sees: enough for a torch zip's first
 * local header with a long root folder name (up to ZIP_MAX_NAME), a tar
 * header, a GGUF or safetensors header length. Every caller deciding whether
 * a file is a weight file must show the same bytes (conv_find_fd), or one
 * may pass over what another would convert. */
#define CONV_HEAD_BYTES 4096

/* The converter for a file, or NULL when none claims it (not a weight file).
 * When only a converter's maybe() claims it, *tentative (may be NULL) is
 * set to 1: the converter's probe() decides (conv_convert does), else 0. */
const struct converter *conv_find(const char *path, const uint8_t *head, size_t nhead,
				  int *tentative);
/* conv_find over the first CONV_HEAD_BYTES of fd (read with pread; fewer for
 * a shorter file): 0 with *cv set (NULL: not a weight file), or MD_EIO. */
int conv_find_fd(int fd, const char *path, const struct converter **cv, int *tentative);

#endif
