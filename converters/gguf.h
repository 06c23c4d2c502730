/*
 * converters/gguf.h — GGUF v3 typed key/value records, shared by the GGUF
 * converter (converters/gguf.c), the pack reader/writer (pack metadata is
 * stored as GGUF records, docs/pack-format.md 1.5) and the GGUF exporter.
 *
 * In memory, metadata is a jansson object: a string value is a JSON string;
 * any other value is {"type": T, "value": V} with T one of u8 i8 u16 i16 u32
 * i32 u64 i64 f32 f64 bool, or {"type": "array", "elem": T, "value": [...]}
 * (T may be "string"). u64 above 2^63-1 is carried as its two's complement
 * bit pattern; non-finite floats as "nan", "inf", "-inf".
 */
#ifndef MD_GGUF_H
#define MD_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum gguf_type {
	GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32,
	GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64,
	GGUF_NTYPES
};

/* Hard caps on untrusted metadata, per call (one file or one pack). */
#define GGUF_MAX_KV       1000000u          /* key/value records */
#define GGUF_MAX_KEY      65535u            /* bytes in a key */
#define GGUF_MAX_STRING   (16u << 20)       /* bytes in one string value */
#define GGUF_MAX_ELEMS    (4u << 20)        /* array elements in total (each
						costs ~64 bytes as JSON) */
#define GGUF_MAX_META     (256u << 20)      /* encoded metadata bytes */

/* A reader over an fd (pread) or a memory buffer; file-local buffering. */
struct gguf_cur {
	int fd;                 /* used when mem is NULL */
	const uint8_t *mem;     /* borrowed */
	uint64_t pos, end;      /* next byte; first byte past the readable range */
	uint8_t *buf;           /* owned: read buffer for fd mode */
	uint64_t bstart;
	size_t blen;
	uint64_t elems;         /* array elements read so far (cap GGUF_MAX_ELEMS) */
	const char *what;       /* "gguf" or "pack": prefix of error details */
};

/* Set up a cursor over fd [pos, end) or mem [pos, end). 0 or MD_ENOMEM.
 * Release with gguf_cur_free. */
int gguf_cur_init(struct gguf_cur *c, int fd, const uint8_t *mem, uint64_t pos,
		  uint64_t end, const char *what);
void gguf_cur_free(struct gguf_cur *c);
/* Read exactly n bytes. 0, MD_ECORRUPT (truncated) or MD_EIO. */
int gguf_get(struct gguf_cur *c, void *dst, size_t n);
int gguf_get_u32(struct gguf_cur *c, uint32_t *v);
int gguf_get_u64(struct gguf_cur *c, uint64_t *v);
/* A GGUF string (u64 length + bytes), at most max bytes, valid UTF-8 without
 * NUL; *out is malloc'd and NUL-terminated (caller frees). */
int gguf_get_str(struct gguf_cur *c, uint64_t max, char **out, uint64_t *len);

/* Read count records into a new object *out (caller decrefs). Duplicate
 * keys, unknown types, nested arrays, bad bools, bad UTF-8 and exceeded caps
 * are MD_ECORRUPT / MD_ETOOBIG with a detail naming the key. */
int gguf_meta_read(struct gguf_cur *c, uint64_t count, json_t **out);

/* Encode a metadata object as GGUF records. *out malloc'd (caller frees),
 * *count records. skip_key (may be NULL) is left out. JSON strings become
 * strings, integers i64, reals f64, booleans bool, plain arrays of all
 * strings / all integers string / i64 arrays. 0, MD_EINVAL (a value that has
 * no GGUF form), MD_ETOOBIG, MD_ENOMEM. */
int gguf_meta_encode(const json_t *meta, const char *skip_key, uint8_t **out,
		     size_t *len, uint64_t *count);

#endif
