/*
 * modeld.h — libmodeld, the client library of modeld (docs/serving.md).
 *
 * Open a stored model and read its tensors straight from read-only mappings
 * of the store's pack files: the daemon hands over descriptors, no weight
 * byte crosses the socket.
 *
 *   struct md_conn *c;  struct md_model *m;  int rc;
 *   if ((rc = md_connect(NULL, &c)) || (rc = md_open(c, "acme/llama@main", &m))) {
 *           fprintf(stderr, "%s\n", md_errmsg(rc)); ...
 *   }
 *   for (size_t i = 0; i < md_model_count(m); i++) {
 *           const struct md_tensor *t = md_model_tensor(m, i);
 *           const void *p; size_t n;
 *           if (md_tensor_map(m, t, &p, &n) == 0) use(t->name, t->dtype, p, n);
 *   }
 *   md_close(m);  md_disconnect(c);
 *
 * Build: cc app.c $(pkg-config --cflags --libs modeld)
 *
 * Errors: functions return 0 or a negative MD_E* code; md_strerror(code) is
 * the code's static text, md_errmsg(code) the calling thread's one-line
 * detail ("acme/x: no such model"). Not thread-safe per object: use one
 * md_conn per thread (a struct md_model may be read from any thread once
 * opened; md_tensor_map of distinct packs may race on first mapping, so map
 * from one thread or call md_tensor_map once per pack first).
 */
#ifndef MODELD_H
#define MODELD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The error codes (the same values as modeld's common/err.h). */
#ifndef MD_ERR_H
#define MD_ERR_H
enum {
	MD_OK = 0,
	MD_EINVAL = -1,     /* bad argument */
	MD_ENOENT = -2,     /* no such model, revision or tensor */
	MD_EEXIST = -3,
	MD_EIO = -4,        /* I/O error (mmap, socket) */
	MD_ENOMEM = -5,
	MD_EPERM = -6,      /* the socket is not accessible to this user */
	MD_ECORRUPT = -7,   /* a pack failed its checks */
	MD_EPROTO = -8,     /* the daemon spoke nonsense or hung up */
	MD_EBUSY = -9,      /* the model is being removed */
	MD_ECANCELED = -10,
	MD_ENOSPC = -11,
	MD_EDB = -12,
	MD_ENET = -13,
	MD_EUNSUP = -14,
	MD_ETOOBIG = -15,   /* a cap was exceeded (too many open models) */
	MD_EREFUSED = -16,
	MD_EAUTH = -17,
	MD_ECONN = -18,     /* modeld is not running at that socket */
	MD_ELAST = -19
};
const char *md_strerror(int code);
const char *md_errmsg(int code);
#endif

#define MD_MAX_DIMS 8

/* One tensor of an opened model; borrowed from the model until md_close. */
struct md_tensor {
	const char *name;       /* unique within its weight file */
	const char *dtype;      /* "BF16", "F32", "I64", ... or "GGML_Q4_K" (raw blocks) */
	uint32_t ndim;
	uint64_t shape[MD_MAX_DIMS]; /* row-major, shape[ndim-1] innermost */
	uint32_t pack;          /* index of the pack (weight file) holding it */
	uint64_t offset;        /* byte offset in the pack, 4096-aligned */
	uint64_t length;        /* bytes */
	const char *digest;     /* of the bytes, hex, by digest_alg */
	const char *digest_alg; /* "xxh3-128" (32 hex digits; packs written since
				   pack format 2) or "sha256" (64 hex digits) */
};

struct md_conn;
struct md_model;

/* Connect to modeld. socket_path NULL: $MODELD_SOCKET, else
 * $XDG_RUNTIME_DIR/modeld.sock (root: /run/modeld/modeld.sock), else the
 * system socket. 0 and *out (md_disconnect), MD_ECONN, MD_EPERM, MD_ENOMEM. */
int md_connect(const char *socket_path, struct md_conn **out);
/* Close the connection: every lease it holds ends. Close its models first. */
void md_disconnect(struct md_conn *c);

/*
 * Open "ORG/NAME[@REV]": the tensor table and one read-only descriptor per
 * pack, under a lease (`modelctl rm` of the model fails while it is held).
 * 0 and *out (md_close), MD_ENOENT, MD_EBUSY, MD_ETOOBIG, MD_ECORRUPT,
 * MD_EPROTO, MD_ECONN. The model borrows c: close it before md_disconnect.
 */
int md_open(struct md_conn *c, const char *ref, struct md_model **out);

/* Name and revision (40 hex) of an opened model; borrowed until md_close. */
const char *md_model_name(const struct md_model *m);
const char *md_model_revision(const struct md_model *m);

/* Tensors in table order (pack by pack); i < md_model_count. */
size_t md_model_count(const struct md_model *m);
const struct md_tensor *md_model_tensor(const struct md_model *m, size_t i);
/* The tensor with that name: the first in a default pack
 * (md_model_pack_default), else the first at all; NULL when none. */
const struct md_tensor *md_model_find(const struct md_model *m, const char *name);

/* Packs: the weight file each came from ("model-00001-of-00002.safetensors"),
 * and its read-only descriptor (borrowed; valid until md_close). */
size_t md_model_npacks(const struct md_model *m);
const char *md_model_pack_file(const struct md_model *m, size_t i);
int md_model_pack_fd(const struct md_model *m, size_t i);
/* 1 when pack i's file is one a loader reads when not told which (what
 * from_pretrained reads: model.safetensors rather than pytorch_model.bin
 * beside it, not consolidated.safetensors or original/; docs/serving.md),
 * else 0. */
int md_model_pack_default(const struct md_model *m, size_t i);

/*
 * *ptr, *len: the tensor's bytes inside a read-only, shared mapping of its
 * pack (mapped on first use; never copied). Valid until md_close. Writing
 * through ptr faults. 0, MD_EINVAL (t not of m, or out of the pack's
 * bounds), MD_EIO (mmap failed).
 */
int md_tensor_map(struct md_model *m, const struct md_tensor *t, const void **ptr,
		  size_t *len);

/* Unmap, close the descriptors and end the lease (a `close` request on the
 * connection). NULL is ignored. */
void md_close(struct md_model *m);

#ifdef __cplusplus
}
#endif
#endif
