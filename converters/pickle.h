/*
 * converters/pickle.h — a restricted pickle interpreter for PyTorch
 * checkpoints. It never executes anything: it builds an inert tree of values
 * from the opcodes a state_dict needs and refuses everything else.
 *
 * Accepted opcodes (protocols 2-5 as torch.save writes them): PROTO, FRAME,
 * STOP, MARK, NONE, NEWTRUE, NEWFALSE, BININT, BININT1, BININT2, LONG1,
 * BINFLOAT, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, SHORT_BINSTRING,
 * BINSTRING, SHORT_BINBYTES, BINBYTES, EMPTY_TUPLE, TUPLE, TUPLE1-3,
 * EMPTY_LIST, APPEND, APPENDS, EMPTY_DICT, SETITEM, SETITEMS, EMPTY_SET,
 * ADDITEMS, BINGET, LONG_BINGET, BINPUT, LONG_BINPUT, MEMOIZE, GLOBAL,
 * STACK_GLOBAL, REDUCE, BUILD, NEWOBJ, BINPERSID. Any other opcode is refused
 * by name ("refused: opcode INST (0x69) at byte 12").
 *
 * Accepted globals (torch's weights_only allowlist, reduced to what a
 * state_dict needs): collections.OrderedDict, torch._utils._rebuild_tensor,
 * _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter,
 * _rebuild_parameter_with_state, torch.nn.parameter.Parameter, torch.Size,
 * builtins/__builtin__ set and frozenset, _codecs.encode (bytes at protocol
 * 2), torch.<T>Storage for the dtypes below, torch.<dtype>. Any other global
 * is refused by name ("refused: global posix.system"), whether it comes from
 * GLOBAL or STACK_GLOBAL; STACK_GLOBAL whose operands are not both strings is
 * refused. Allowlisted callables are never called: REDUCE/NEWOBJ of each one
 * is interpreted with its argument types checked (a tensor rebuild makes a
 * PK_TENSOR), REDUCE of anything else is refused by name. BUILD is accepted
 * only on an OrderedDict or a tensor (its state is ignored). BINPERSID only
 * accepts torch's ('storage', <Storage class>, key, location, numel
 * [, view_metadata]) tuples, keys of 1-256 printable ASCII bytes without '/',
 * and makes a PK_STORAGE; anything else is refused.
 * Memo: BINGET of an unset slot, BINPUT over a set slot and BINPUT that skips
 * slots (the pickler numbers them densely) are refused.
 *
 * Hard caps on untrusted input, set here: PK_MAX_STACK values on the stack,
 * PK_MAX_MARKS nested MARKs, PK_MAX_MEMO memo slots, PK_MAX_STR bytes in one
 * string, PK_MAX_OBJECTS heap objects, PK_MAX_HEAP bytes of container storage.
 *
 * Errors (md_fail detail, no path prefix): MD_EREFUSED (disallowed opcode,
 * global, call, BUILD, persistent id or memo trick: detail starts with
 * "refused: "; also a real torch dtype with no conv dtype, e.g.
 * "refused: unsupported dtype torch.ComplexDoubleStorage", or a tensor of
 * more than CONV_MAX_DIMS dimensions), MD_ECORRUPT (truncated or malformed pickle),
 * MD_ETOOBIG (a cap), MD_ENOMEM.
 */
#ifndef MD_PICKLE_H
#define MD_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MARKS 256u
#define PK_MAX_MEMO (1u << 24)
#define PK_MAX_STR (1u << 24)
#define PK_MAX_OBJECTS (1u << 24)
#define PK_MAX_HEAP ((uint64_t)1 << 30)

enum pk_kind {
	PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES,
	PK_TUPLE, PK_LIST, PK_DICT, PK_SET,
	PK_GLOBAL,   /* an allowlisted global: val.i = enum pk_global, val.ref = dtype */
	PK_STORAGE,  /* a persistent-id storage reference */
	PK_TENSOR,   /* a rebuilt tensor (or Parameter) */
};

enum pk_global {
	PK_G_ODICT = 1, PK_G_RT1, PK_G_RT2, PK_G_RT3, PK_G_RP, PK_G_RPS, PK_G_PARAM,
	PK_G_SIZE, PK_G_SET, PK_G_ENCODE, PK_G_STORAGE, PK_G_DTYPE,
};

/*
 * A value. NONE: nothing. BOOL, INT: i. FLOAT: i holds the double's bits.
 * Everything else: ref indexes pk_doc.obj (GLOBAL: ref is the conv dtype).
 */
struct pk_val {
	uint8_t kind;
	uint8_t pad[3];
	uint32_t ref;
	int64_t i;
};

struct pk_storage {
	const uint8_t *key;  /* borrowed from the pickle buffer */
	uint32_t keylen;
	uint32_t dtype;      /* enum conv_dtype of the storage class */
	uint64_t numel;      /* elements of the (root) storage */
	int has_view;        /* legacy view_metadata: a sub-range of the root */
	uint64_t view_off, view_numel; /* in elements */
};

struct pk_tensor {
	uint32_t storage;    /* obj index of a PK_STORAGE */
	uint32_t dtype;      /* enum conv_dtype of the tensor */
	uint64_t offset;     /* storage offset, in tensor elements */
	uint32_t ndim;       /* <= CONV_MAX_DIMS */
	uint64_t shape[8], stride[8];
};

struct pk_obj {
	uint8_t kind;        /* PK_BIGINT, STR, BYTES, TUPLE, LIST, DICT, SET, STORAGE, TENSOR */
	uint8_t ordered;     /* DICT made by OrderedDict() */
	uint32_t n, cap;     /* STR/BYTES/BIGINT: bytes; containers: values (DICT: 2 per item) */
	union {
		const uint8_t *s;        /* borrowed from the pickle buffer */
		struct pk_val *v;        /* owned */
		struct pk_storage *st;   /* owned */
		struct pk_tensor *t;     /* owned */
	} u;
};

struct pk_doc {
	struct pk_obj *obj;  /* owned */
	size_t nobj, capobj;
	struct pk_val root;  /* the value STOP returned */
	size_t used;         /* bytes of the buffer the pickle took, STOP included */
	uint64_t heap;       /* bytes allocated, checked against PK_MAX_HEAP */
};

/*
 * Interpret one pickle at the start of buf (n bytes; it may be followed by
 * other data). doc is zeroed by the callee; it borrows buf (strings point
 * into it), so buf must outlive doc. On failure doc is freed. Returns 0 or
 * an error above; MD_ECORRUPT with detail "pickle: truncated ..." and
 * doc->used set to SIZE_MAX when the pickle runs past n (more bytes might
 * complete it).
 */
int pk_load(const uint8_t *buf, size_t n, struct pk_doc *doc);
void pk_free(struct pk_doc *doc);

/* The object a value refers to (kind >= PK_BIGINT except GLOBAL). */
static inline const struct pk_obj *pk_obj(const struct pk_doc *d, struct pk_val v)
{
	return &d->obj[v.ref];
}

/* Name of a global ("torch._utils._rebuild_tensor_v2"), static. */
const char *pk_global_name(int g, uint32_t dtype);
/* Python's name for a value kind ("tuple", "tensor"...); static. */
const char *pk_kind_name(int kind);

#endif
