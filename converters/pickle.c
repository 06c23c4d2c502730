/* converters/pickle.c — restricted, non-executing pickle interpreter; see pickle.h. */
#include "converters/pickle.h"
#include "converters/converter.h"
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Storage classes and dtypes a state_dict may name. */
static const struct {
	const char *storage; /* torch.<storage> */
	const char *dtype;   /* torch.<dtype> */
	const char *alias;   /* torch.<alias> dtype spelling, or NULL */
	uint32_t dt;
} types[] = {
	{ "FloatStorage", "float32", "float", CONV_DT_F32 },
	{ "DoubleStorage", "float64", "double", CONV_DT_F64 },
	{ "HalfStorage", "float16", "half", CONV_DT_F16 },
	{ "BFloat16Storage", "bfloat16", NULL, CONV_DT_BF16 },
	{ "ByteStorage", "uint8", NULL, CONV_DT_U8 },
	{ "CharStorage", "int8", NULL, CONV_DT_I8 },
	{ "ShortStorage", "int16", "short", CONV_DT_I16 },
	{ "IntStorage", "int32", "int", CONV_DT_I32 },
	{ "LongStorage", "int64", "long", CONV_DT_I64 },
	{ "BoolStorage", "bool", NULL, CONV_DT_BOOL },
	{ "ComplexFloatStorage", "complex64", "cfloat", CONV_DT_C64 },
	{ "ComplexDoubleStorage", "complex128", "cdouble", CONV_DT_C128 },
	{ "UntypedStorage", NULL, NULL, CONV_DT_U8 },
	{ NULL, "float8_e4m3fn", NULL, CONV_DT_F8_E4M3 },
	{ NULL, "float8_e5m2", NULL, CONV_DT_F8_E5M2 },
	{ NULL, "uint16", NULL, CONV_DT_U16 },
	{ NULL, "uint32", NULL, CONV_DT_U32 },
	{ NULL, "uint64", NULL, CONV_DT_U64 },
};

static const struct {
	const char *name;
	int g;
} globals[] = {
	{ "collections.OrderedDict", PK_G_ODICT },
	{ "torch._utils._rebuild_tensor", PK_G_RT1 },
	{ "torch._utils._rebuild_tensor_v2", PK_G_RT2 },
	{ "torch._utils._rebuild_tensor_v3", PK_G_RT3 },
	{ "torch._utils._rebuild_parameter", PK_G_RP },
	{ "torch._utils._rebuild_parameter_with_state", PK_G_RPS },
	{ "torch.nn.parameter.Parameter", PK_G_PARAM },
	{ "torch.Size", PK_G_SIZE },
	{ "builtins.set", PK_G_SET },
	{ "builtins.frozenset", PK_G_SET },
	{ "__builtin__.set", PK_G_SET },
	{ "__builtin__.frozenset", PK_G_SET },
	{ "_codecs.encode", PK_G_ENCODE },
};

const char *pk_global_name(int g, uint32_t dtype)
{
	static _Thread_local char buf[64];
	if (g == PK_G_STORAGE || g == PK_G_DTYPE) {
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (types[i].dt == dtype && (g == PK_G_STORAGE ? types[i].storage : types[i].dtype)) {
				snprintf(buf, sizeof buf, "torch.%s",
					 g == PK_G_STORAGE ? types[i].storage : types[i].dtype);
				return buf;
			}
		return "torch.?";
	}
	for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
		if (globals[i].g == g)
			return globals[i].name;
	return "?";
}

static const char *const opnames[256] = {
	['('] = "MARK", ['.'] = "STOP", ['0'] = "POP", ['1'] = "POP_MARK", ['2'] = "DUP",
	['F'] = "FLOAT", ['I'] = "INT", ['J'] = "BININT", ['K'] = "BININT1", ['L'] = "LONG",
	['M'] = "BININT2", ['N'] = "NONE", ['P'] = "PERSID", ['Q'] = "BINPERSID", ['R'] = "REDUCE",
	['S'] = "STRING", ['T'] = "BINSTRING", ['U'] = "SHORT_BINSTRING", ['V'] = "UNICODE",
	['X'] = "BINUNICODE", ['a'] = "APPEND", ['b'] = "BUILD", ['c'] = "GLOBAL", ['d'] = "DICT",
	['}'] = "EMPTY_DICT", ['e'] = "APPENDS", ['g'] = "GET", ['h'] = "BINGET", ['i'] = "INST",
	['j'] = "LONG_BINGET", ['l'] = "LIST", [']'] = "EMPTY_LIST", ['o'] = "OBJ", ['p'] = "PUT",
	['q'] = "BINPUT", ['r'] = "LONG_BINPUT", ['s'] = "SETITEM", ['t'] = "TUPLE",
	[')'] = "EMPTY_TUPLE", ['u'] = "SETITEMS", ['G'] = "BINFLOAT",
	[0x80] = "PROTO", [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2", [0x84] = "EXT4",
	[0x85] = "TUPLE1", [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE",
	[0x89] = "NEWFALSE", [0x8a] = "LONG1", [0x8b] = "LONG4", ['B'] = "BINBYTES",
	['C'] = "SHORT_BINBYTES", [0x8c] = "SHORT_BINUNICODE", [0x8d] = "BINUNICODE8",
	[0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET",
	[0x92] = "NEWOBJ_EX", [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME",
	[0x96] = "BYTEARRAY8", [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
};

static const char *const kindnames[] = {
	"None", "bool", "int", "int", "float", "str", "bytes", "tuple", "list", "dict", "set",
	"global", "storage", "tensor",
};

const char *pk_kind_name(int kind)
{
	return kind >= 0 && (size_t)kind < sizeof kindnames / sizeof kindnames[0] ? kindnames[kind] : "?";
}

struct vm {
	const uint8_t *b;
	size_t n, pos;
	struct pk_doc *d;
	struct pk_val *stack;
	size_t sp, scap;
	size_t marks[PK_MAX_MARKS];
	size_t nmarks;
	struct pk_val *memo;
	size_t nmemo, capmemo;
	size_t op_at;        /* offset of the current opcode, for messages */
	int truncated;       /* ran past the end of the buffer */
};

#define UNSET 0xff

static int truncated(struct vm *m)
{
	m->truncated = 1;
	return md_fail(MD_ECORRUPT, "pickle: truncated at byte %zu", m->op_at);
}

static int bad(struct vm *m, const char *what)
{
	return md_fail(MD_ECORRUPT, "pickle: %s at byte %zu (%s)", what, m->op_at,
		       opnames[m->b[m->op_at]] ? opnames[m->b[m->op_at]] : "?");
}

static int need(struct vm *m, size_t k)
{
	return m->n - m->pos >= k ? 0 : truncated(m);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int heap_add(struct vm *m, uint64_t bytes)
{
	m->d->heap += bytes;
	if (m->d->heap > PK_MAX_HEAP)
		return md_fail(MD_ETOOBIG, "pickle: more than %llu bytes of objects",
			       (unsigned long long)PK_MAX_HEAP);
	return 0;
}

/* New heap object; returns its index in *ref. */
static int obj_new(struct vm *m, uint8_t kind, uint32_t *ref)
{
	struct pk_doc *d = m->d;
	if (d->nobj >= PK_MAX_OBJECTS)
		return md_fail(MD_ETOOBIG, "pickle: more than %u objects", PK_MAX_OBJECTS);
	if (d->nobj == d->capobj) {
		size_t nc = d->capobj ? d->capobj * 2 : 256;
		int rc = heap_add(m, (nc - d->capobj) * sizeof *d->obj);
		if (rc)
			return rc;
		struct pk_obj *no = realloc(d->obj, nc * sizeof *no);
		if (!no)
			return MD_ENOMEM;
		d->obj = no;
		d->capobj = nc;
	}
	memset(&d->obj[d->nobj], 0, sizeof d->obj[0]);
	d->obj[d->nobj].kind = kind;
	*ref = (uint32_t)d->nobj++;
	return 0;
}

static int push(struct vm *m, struct pk_val v)
{
	if (m->sp == m->scap) {
		if (m->scap >= PK_MAX_STACK)
			return md_fail(MD_ETOOBIG, "pickle: stack deeper than %u", PK_MAX_STACK);
		size_t nc = m->scap ? m->scap * 2 : 256;
		struct pk_val *ns = realloc(m->stack, nc * sizeof *ns);
		if (!ns)
			return MD_ENOMEM;
		m->stack = ns;
		m->scap = nc;
	}
	m->stack[m->sp++] = v;
	return 0;
}

static struct pk_val mk(uint8_t kind, uint32_t ref, int64_t i)
{
	struct pk_val v = { .kind = kind, .ref = ref, .i = i };
	return v;
}

static int push_obj(struct vm *m, uint8_t kind, uint32_t *ref)
{
	int rc = obj_new(m, kind, ref);
	return rc ? rc : push(m, mk(kind, *ref, 0));
}

/* Values above the innermost mark (or the whole stack when none). */
static size_t frame_base(const struct vm *m)
{
	return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static int pop(struct vm *m, struct pk_val *v)
{
	if (m->sp <= frame_base(m))
		return bad(m, "stack underflow");
	*v = m->stack[--m->sp];
	return 0;
}

static int top(struct vm *m, struct pk_val **v)
{
	if (m->sp <= frame_base(m))
		return bad(m, "stack underflow");
	*v = &m->stack[m->sp - 1];
	return 0;
}

static int pop_mark(struct vm *m, size_t *base)
{
	if (!m->nmarks)
		return bad(m, "no MARK");
	*base = m->marks[--m->nmarks];
	return 0;
}

/* Append k values to a container object. */
static int obj_append(struct vm *m, uint32_t ref, const struct pk_val *v, size_t k)
{
	struct pk_obj *o = &m->d->obj[ref];
	if (k > UINT32_MAX - o->n)
		return md_fail(MD_ETOOBIG, "pickle: container too large");
	if (o->n + k > o->cap) {
		size_t nc = o->cap ? o->cap : 4;
		while (nc < o->n + k)
			nc *= 2;
		if (nc > UINT32_MAX)
			nc = UINT32_MAX;
		int rc = heap_add(m, (nc - o->cap) * sizeof(struct pk_val));
		if (rc)
			return rc;
		struct pk_val *nv = realloc(o->u.v, nc * sizeof *nv);
		if (!nv)
			return MD_ENOMEM;
		o->u.v = nv;
		o->cap = (uint32_t)nc;
	}
	memcpy(o->u.v + o->n, v, k * sizeof *v);
	o->n += (uint32_t)k;
	return 0;
}

/* Make a tuple of the k values at stack[base..] and replace them with it. */
static int make_tuple(struct vm *m, size_t base)
{
	uint32_t ref;
	int rc = obj_new(m, PK_TUPLE, &ref);
	if (rc)
		return rc;
	if (m->sp > base && (rc = obj_append(m, ref, m->stack + base, m->sp - base)))
		return rc;
	m->sp = base;
	return push(m, mk(PK_TUPLE, ref, 0));
}

static int push_str(struct vm *m, uint8_t kind, uint64_t len)
{
	if (len > PK_MAX_STR)
		return md_fail(MD_ETOOBIG, "pickle: string of %llu bytes at byte %zu (at most %u)",
			       (unsigned long long)len, m->op_at, PK_MAX_STR);
	int rc = need(m, (size_t)len);
	if (rc)
		return rc;
	uint32_t ref;
	if ((rc = obj_new(m, kind, &ref)))
		return rc;
	m->d->obj[ref].u.s = m->b + m->pos;
	m->d->obj[ref].n = (uint32_t)len;
	m->pos += (size_t)len;
	return push(m, mk(kind, ref, 0));
}

/* Printable rendering of untrusted text for messages. */
static void clean(char *out, size_t cap, const uint8_t *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f)
			out[o++] = (char)s[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", s[i]);
	}
	out[o] = 0;
}

/* Resolve "module.name" against the allowlist; push the global or refuse. */
static int resolve(struct vm *m, const uint8_t *mod, size_t ml, const uint8_t *name, size_t nl)
{
	char full[600];
	if (ml > 256 || nl > 256 || memchr(mod, 0, ml) || memchr(name, 0, nl)) {
		char cm[128], cn[128];
		clean(cm, sizeof cm, mod, ml < 40 ? ml : 40);
		clean(cn, sizeof cn, name, nl < 40 ? nl : 40);
		return md_fail(MD_EREFUSED, "refused: global %s.%s", cm, cn);
	}
	memcpy(full, mod, ml);
	full[ml] = '.';
	memcpy(full + ml + 1, name, nl);
	full[ml + 1 + nl] = 0;
	for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
		if (!strcmp(full, globals[i].name))
			return push(m, mk(PK_GLOBAL, 0, globals[i].g));
	if (ml == 5 && !memcmp(mod, "torch", 5)) {
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
			if (types[i].storage && !strcmp(full + 6, types[i].storage))
				return push(m, mk(PK_GLOBAL, types[i].dt, PK_G_STORAGE));
			if ((types[i].dtype && !strcmp(full + 6, types[i].dtype)) ||
			    (types[i].alias && !strcmp(full + 6, types[i].alias)))
				return push(m, mk(PK_GLOBAL, types[i].dt, PK_G_DTYPE));
		}
	}
	static const char *const unsup[] = {
		"torch.ComplexHalfStorage", "torch.QInt8Storage",
		"torch.QUInt8Storage", "torch.QInt32Storage", "torch.QUInt4x2Storage",
		"torch.QUInt2x4Storage", "torch.complex32",
		"torch.chalf", "torch.qint8", "torch.quint8", "torch.qint32",
	};
	for (size_t i = 0; i < sizeof unsup / sizeof unsup[0]; i++)
		if (!strcmp(full, unsup[i]))
			return md_fail(MD_EREFUSED, "refused: unsupported dtype %s", full);
	char c[700];
	clean(c, sizeof c, (const uint8_t *)full, ml + 1 + nl);
	return md_fail(MD_EREFUSED, "refused: global %s", c);
}

static int op_global(struct vm *m)
{
	const uint8_t *mod = m->b + m->pos;
	const uint8_t *nl1 = memchr(mod, '\n', m->n - m->pos);
	if (!nl1)
		return truncated(m);
	const uint8_t *name = nl1 + 1;
	const uint8_t *nl2 = memchr(name, '\n', (size_t)(m->b + m->n - name));
	if (!nl2)
		return truncated(m);
	m->pos = (size_t)(nl2 + 1 - m->b);
	return resolve(m, mod, (size_t)(nl1 - mod), name, (size_t)(nl2 - name));
}

static int op_stack_global(struct vm *m)
{
	struct pk_val name, mod;
	int rc;
	if ((rc = pop(m, &name)) || (rc = pop(m, &mod)))
		return rc;
	if ((name.kind != PK_STR && name.kind != PK_BYTES) || (mod.kind != PK_STR && mod.kind != PK_BYTES))
		return md_fail(MD_EREFUSED, "refused: STACK_GLOBAL with a computed name (%s, %s) at byte %zu",
			       kindnames[mod.kind], kindnames[name.kind], m->op_at);
	const struct pk_obj *mo = &m->d->obj[mod.ref], *no = &m->d->obj[name.ref];
	return resolve(m, mo->u.s, mo->n, no->u.s, no->n);
}

static int memo_put(struct vm *m, uint64_t idx)
{
	struct pk_val *v = NULL;
	int rc = top(m, &v);
	if (rc)
		return rc;
	if (idx > m->nmemo)
		return md_fail(MD_EREFUSED, "refused: %s %llu skips memo slots (next is %zu) at byte %zu",
			       opnames[m->b[m->op_at]], (unsigned long long)idx, m->nmemo, m->op_at);
	if (idx < m->nmemo)
		return md_fail(MD_EREFUSED, "refused: %s %llu overwrites a memo slot at byte %zu",
			       opnames[m->b[m->op_at]], (unsigned long long)idx, m->op_at);
	if (m->nmemo >= PK_MAX_MEMO)
		return md_fail(MD_ETOOBIG, "pickle: more than %u memo slots", PK_MAX_MEMO);
	if (m->nmemo == m->capmemo) {
		size_t nc = m->capmemo ? m->capmemo * 2 : 256;
		struct pk_val *nm = realloc(m->memo, nc * sizeof *nm);
		if (!nm)
			return MD_ENOMEM;
		m->memo = nm;
		m->capmemo = nc;
	}
	m->memo[m->nmemo++] = *v;
	return 0;
}

static int memo_get(struct vm *m, uint64_t idx)
{
	if (idx >= m->nmemo)
		return md_fail(MD_EREFUSED, "refused: %s %llu of an empty memo slot at byte %zu",
			       opnames[m->b[m->op_at]], (unsigned long long)idx, m->op_at);
	return push(m, m->memo[idx]);
}

static int is_int(struct pk_val v)
{
	return v.kind == PK_INT || v.kind == PK_BOOL;
}

/* A tuple (or torch.Size, which is a tuple) of at most 8 non-negative ints. */
static int dims(struct vm *m, struct pk_val v, uint64_t *out, uint32_t *nd, const char *what)
{
	if (v.kind != PK_TUPLE)
		return md_fail(MD_EREFUSED, "refused: tensor %s is a %s, not a tuple", what, kindnames[v.kind]);
	const struct pk_obj *o = &m->d->obj[v.ref];
	if (o->n > CONV_MAX_DIMS)
		return md_fail(MD_EREFUSED, "refused: tensor with %u dimensions (at most %d)", o->n,
			       CONV_MAX_DIMS);
	for (uint32_t i = 0; i < o->n; i++) {
		if (!is_int(o->u.v[i]) || o->u.v[i].i < 0)
			return md_fail(MD_EREFUSED, "refused: tensor %s[%u] is not a non-negative int", what, i);
		out[i] = (uint64_t)o->u.v[i].i;
	}
	*nd = o->n;
	return 0;
}

/* Interpret the call func(*args) for an allowlisted func; push the result. */
static int call(struct vm *m, struct pk_val f, struct pk_val args, const char *how)
{
	if (f.kind != PK_GLOBAL)
		return md_fail(MD_EREFUSED, "refused: %s of a %s (not an allowed callable) at byte %zu", how,
			       kindnames[f.kind], m->op_at);
	if (args.kind != PK_TUPLE)
		return md_fail(MD_EREFUSED, "refused: %s of %s with %s arguments at byte %zu", how,
			       pk_global_name((int)f.i, f.ref), kindnames[args.kind], m->op_at);
	const struct pk_obj *ao = &m->d->obj[args.ref];
	const struct pk_val *a = ao->u.v;
	uint32_t na = ao->n;
	const char *fname = pk_global_name((int)f.i, f.ref);
	int rc;
	uint32_t ref;
	if (strcmp(how, "REDUCE") && f.i != PK_G_PARAM)
		return md_fail(MD_EREFUSED, "refused: %s of %s at byte %zu", how, fname, m->op_at);
	switch (f.i) {
	case PK_G_ODICT:
		if (na != 0)
			break;
		if ((rc = push_obj(m, PK_DICT, &ref)))
			return rc;
		m->d->obj[ref].ordered = 1;
		return 0;
	case PK_G_SET:
		if (na > 1 || (na == 1 && a[0].kind != PK_LIST && a[0].kind != PK_TUPLE))
			break;
		if ((rc = obj_new(m, PK_SET, &ref)))
			return rc;
		if (na == 1) {
			const struct pk_obj *lo = &m->d->obj[a[0].ref];
			if (lo->n && (rc = obj_append(m, ref, m->d->obj[a[0].ref].u.v, lo->n)))
				return rc;
		}
		return push(m, mk(PK_SET, ref, 0));
	case PK_G_SIZE:
		if (na != 1 || a[0].kind != PK_TUPLE)
			break;
		return push(m, a[0]);
	case PK_G_ENCODE:
		if (na != 2 || a[0].kind != PK_STR || a[1].kind != PK_STR)
			break;
		if ((rc = obj_new(m, PK_BYTES, &ref)))
			return rc;
		m->d->obj[ref].u.s = m->d->obj[a[0].ref].u.s;
		m->d->obj[ref].n = m->d->obj[a[0].ref].n;
		return push(m, mk(PK_BYTES, ref, 0));
	case PK_G_RP:
	case PK_G_RPS:
		if (na != (f.i == PK_G_RP ? 3u : 4u) || a[0].kind != PK_TENSOR || !is_int(a[1]))
			break;
		return push(m, a[0]);
	case PK_G_PARAM:
		if (na < 1 || na > 2 || a[0].kind != PK_TENSOR || (na == 2 && !is_int(a[1])))
			break;
		return push(m, a[0]);
	case PK_G_RT1:
	case PK_G_RT2:
	case PK_G_RT3: {
		uint32_t lo = f.i == PK_G_RT1 ? 4 : f.i == PK_G_RT2 ? 6 : 7;
		if (na < lo || na > lo + 1 || a[0].kind != PK_STORAGE || !is_int(a[1]) || a[1].i < 0)
			break;
		if (f.i != PK_G_RT1 && !is_int(a[4]))
			break;
		if (f.i == PK_G_RT3 && (a[6].kind != PK_GLOBAL || a[6].i != PK_G_DTYPE))
			break;
		struct pk_tensor t = { .storage = a[0].ref, .offset = (uint64_t)a[1].i };
		uint32_t nd2;
		if ((rc = dims(m, a[2], t.shape, &t.ndim, "size")) ||
		    (rc = dims(m, a[3], t.stride, &nd2, "stride")))
			return rc;
		if (nd2 != t.ndim)
			return md_fail(MD_EREFUSED, "refused: tensor with %u sizes and %u strides", t.ndim, nd2);
		t.dtype = f.i == PK_G_RT3 ? a[6].ref : m->d->obj[a[0].ref].u.st->dtype;
		if ((rc = heap_add(m, sizeof t)) || (rc = obj_new(m, PK_TENSOR, &ref)))
			return rc;
		struct pk_tensor *tp = malloc(sizeof *tp);
		if (!tp)
			return MD_ENOMEM;
		*tp = t;
		m->d->obj[ref].u.t = tp;
		return push(m, mk(PK_TENSOR, ref, 0));
	}
	default:
		return md_fail(MD_EREFUSED, "refused: %s of %s at byte %zu", how, fname, m->op_at);
	}
	return md_fail(MD_EREFUSED, "refused: %s of %s with unexpected arguments at byte %zu", how, fname,
		       m->op_at);
}

static int op_build(struct vm *m)
{
	struct pk_val state, *inst = NULL;
	int rc;
	if ((rc = pop(m, &state)) || (rc = top(m, &inst)))
		return rc;
	if (inst->kind == PK_TENSOR || (inst->kind == PK_DICT && m->d->obj[inst->ref].ordered))
		return 0; /* state (OrderedDict._metadata, Parameter state) is ignored */
	return md_fail(MD_EREFUSED, "refused: BUILD on a %s at byte %zu", kindnames[inst->kind], m->op_at);
}

/* Storage keys are short printable ASCII without '/' (torch writes decimal
 * numbers), so they are safe in file names and messages. */
static int keyok(const uint8_t *k, size_t n)
{
	if (n == 0 || n > 256)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] <= 0x20 || k[i] >= 0x7f || k[i] == '/')
			return 0;
	return 1;
}

/* ('storage', <Storage class>, key, location, numel[, view_metadata]) */
static int op_persid(struct vm *m)
{
	struct pk_val pid;
	int rc = pop(m, &pid);
	if (rc)
		return rc;
	if (pid.kind != PK_TUPLE)
		return md_fail(MD_EREFUSED, "refused: persistent id is a %s at byte %zu", kindnames[pid.kind],
			       m->op_at);
	const struct pk_obj *po = &m->d->obj[pid.ref];
	const struct pk_val *a = po->u.v;
	if (po->n < 1 || (a[0].kind != PK_STR && a[0].kind != PK_BYTES) || m->d->obj[a[0].ref].n != 7 ||
	    memcmp(m->d->obj[a[0].ref].u.s, "storage", 7)) {
		char c[64] = "?";
		if (po->n >= 1 && (a[0].kind == PK_STR || a[0].kind == PK_BYTES))
			clean(c, sizeof c, m->d->obj[a[0].ref].u.s,
			      m->d->obj[a[0].ref].n < 32 ? m->d->obj[a[0].ref].n : 32);
		return md_fail(MD_EREFUSED, "refused: persistent id '%s' (only 'storage') at byte %zu", c, m->op_at);
	}
	if (po->n != 5 && po->n != 6)
		return md_fail(MD_EREFUSED, "refused: storage persistent id with %u fields at byte %zu", po->n,
			       m->op_at);
	if (a[1].kind != PK_GLOBAL || a[1].i != PK_G_STORAGE)
		return md_fail(MD_EREFUSED, "refused: storage persistent id without a storage class at byte %zu",
			       m->op_at);
	if (a[2].kind != PK_STR || !keyok(m->d->obj[a[2].ref].u.s, m->d->obj[a[2].ref].n))
		return md_fail(MD_EREFUSED, "refused: storage key is not a short printable string at byte %zu",
			       m->op_at);
	if (a[3].kind != PK_STR && a[3].kind != PK_BYTES)
		return md_fail(MD_EREFUSED, "refused: storage location is not a string at byte %zu", m->op_at);
	if (a[4].kind != PK_INT || a[4].i < 0)
		return md_fail(MD_EREFUSED, "refused: storage size is not a non-negative int at byte %zu", m->op_at);
	struct pk_storage st = { .key = m->d->obj[a[2].ref].u.s, .keylen = m->d->obj[a[2].ref].n,
				 .dtype = a[1].ref, .numel = (uint64_t)a[4].i };
	if (po->n == 6 && a[5].kind != PK_NONE) {
		const struct pk_obj *vo = a[5].kind == PK_TUPLE ? &m->d->obj[a[5].ref] : NULL;
		if (!vo || vo->n != 3 || vo->u.v[0].kind != PK_STR || vo->u.v[1].kind != PK_INT ||
		    vo->u.v[2].kind != PK_INT || vo->u.v[1].i < 0 || vo->u.v[2].i < 0)
			return md_fail(MD_EREFUSED, "refused: malformed storage view metadata at byte %zu", m->op_at);
		st.has_view = 1;
		st.view_off = (uint64_t)vo->u.v[1].i;
		st.view_numel = (uint64_t)vo->u.v[2].i;
	}
	uint32_t ref;
	if ((rc = heap_add(m, sizeof st)) || (rc = obj_new(m, PK_STORAGE, &ref)))
		return rc;
	struct pk_storage *sp = malloc(sizeof *sp);
	if (!sp)
		return MD_ENOMEM;
	*sp = st;
	m->d->obj[ref].u.st = sp;
	return push(m, mk(PK_STORAGE, ref, 0));
}

static int step(struct vm *m, int *done)
{
	int rc;
	m->op_at = m->pos;
	uint8_t op = m->b[m->pos++];
	struct pk_val v, w, *t = NULL;
	size_t base = 0;
	uint32_t ref;
	switch (op) {
	case 0x80: /* PROTO */
		if ((rc = need(m, 1)))
			return rc;
		if (m->b[m->pos] > 5)
			return bad(m, "unknown protocol");
		m->pos++;
		return 0;
	case 0x95: /* FRAME: a length prefix; the frame's opcodes follow inline */
		if ((rc = need(m, 8)))
			return rc;
		if (rd64(m->b + m->pos) > m->n - m->pos - 8)
			return truncated(m);
		m->pos += 8;
		return 0;
	case '.': /* STOP */
		if (m->nmarks || m->sp != 1)
			return bad(m, "STOP with a MARK open or extra values on the stack");
		m->d->root = m->stack[0];
		*done = 1;
		return 0;
	case '(':
		if (m->nmarks >= PK_MAX_MARKS)
			return md_fail(MD_ETOOBIG, "pickle: MARKs nested deeper than %u", PK_MAX_MARKS);
		m->marks[m->nmarks++] = m->sp;
		return 0;
	case 'N':
		return push(m, mk(PK_NONE, 0, 0));
	case 0x88:
	case 0x89:
		return push(m, mk(PK_BOOL, 0, op == 0x88));
	case 'J':
		if ((rc = need(m, 4)))
			return rc;
		v = mk(PK_INT, 0, (int32_t)rd32(m->b + m->pos));
		m->pos += 4;
		return push(m, v);
	case 'K':
		if ((rc = need(m, 1)))
			return rc;
		return push(m, mk(PK_INT, 0, m->b[m->pos++]));
	case 'M':
		if ((rc = need(m, 2)))
			return rc;
		v = mk(PK_INT, 0, m->b[m->pos] | m->b[m->pos + 1] << 8);
		m->pos += 2;
		return push(m, v);
	case 0x8a: { /* LONG1 */
		if ((rc = need(m, 1)))
			return rc;
		size_t k = m->b[m->pos++];
		if ((rc = need(m, k)))
			return rc;
		if (k <= 8) {
			uint64_t x = 0;
			for (size_t i = 0; i < k; i++)
				x |= (uint64_t)m->b[m->pos + i] << (8 * i);
			if (k && k < 8 && (m->b[m->pos + k - 1] & 0x80))
				x |= ~(uint64_t)0 << (8 * k);
			m->pos += k;
			return push(m, mk(PK_INT, 0, (int64_t)x));
		}
		return push_str(m, PK_BIGINT, k);
	}
	case 'G':
		if ((rc = need(m, 8)))
			return rc;
		{
			uint64_t bits = 0;
			for (int i = 0; i < 8; i++) /* big-endian */
				bits = bits << 8 | m->b[m->pos + (size_t)i];
			m->pos += 8;
			return push(m, mk(PK_FLOAT, 0, (int64_t)bits));
		}
	case 'X':
	case 'T':
	case 'B':
		if ((rc = need(m, 4)))
			return rc;
		m->pos += 4;
		return push_str(m, op == 'B' ? PK_BYTES : PK_STR, rd32(m->b + m->pos - 4));
	case 0x8d:
		if ((rc = need(m, 8)))
			return rc;
		m->pos += 8;
		return push_str(m, PK_STR, rd64(m->b + m->pos - 8));
	case 0x8c:
	case 'U':
	case 'C':
		if ((rc = need(m, 1)))
			return rc;
		m->pos++;
		return push_str(m, op == 'C' ? PK_BYTES : PK_STR, m->b[m->pos - 1]);
	case ')':
		return push_obj(m, PK_TUPLE, &ref);
	case ']':
		return push_obj(m, PK_LIST, &ref);
	case '}':
		return push_obj(m, PK_DICT, &ref);
	case 0x8f:
		return push_obj(m, PK_SET, &ref);
	case 't':
		if ((rc = pop_mark(m, &base)))
			return rc;
		return make_tuple(m, base);
	case 0x85:
	case 0x86:
	case 0x87: {
		size_t k = (size_t)(op - 0x84);
		if (m->sp < frame_base(m) + k)
			return bad(m, "stack underflow");
		return make_tuple(m, m->sp - k);
	}
	case 'a':
		if ((rc = pop(m, &v)) || (rc = top(m, &t)))
			return rc;
		if (t->kind != PK_LIST)
			return md_fail(MD_EREFUSED, "refused: APPEND to a %s at byte %zu", kindnames[t->kind], m->op_at);
		return obj_append(m, t->ref, &v, 1);
	case 'e':
	case 0x90:
	case 'u':
		if ((rc = pop_mark(m, &base)))
			return rc;
		if (base <= frame_base(m))
			return bad(m, "stack underflow");
		t = &m->stack[base - 1];
		if (t->kind != (op == 'e' ? PK_LIST : op == 'u' ? PK_DICT : PK_SET))
			return md_fail(MD_EREFUSED, "refused: %s to a %s at byte %zu", opnames[op],
				       kindnames[t->kind], m->op_at);
		if (op == 'u' && (m->sp - base) % 2)
			return bad(m, "odd number of SETITEMS values");
		if (m->sp > base && (rc = obj_append(m, t->ref, m->stack + base, m->sp - base)))
			return rc;
		m->sp = base;
		return 0;
	case 's': {
		struct pk_val kv[2];
		if ((rc = pop(m, &kv[1])) || (rc = pop(m, &kv[0])) || (rc = top(m, &t)))
			return rc;
		if (t->kind != PK_DICT)
			return md_fail(MD_EREFUSED, "refused: SETITEM on a %s at byte %zu", kindnames[t->kind],
				       m->op_at);
		return obj_append(m, t->ref, kv, 2);
	}
	case 'h':
		if ((rc = need(m, 1)))
			return rc;
		return memo_get(m, m->b[m->pos++]);
	case 'j':
		if ((rc = need(m, 4)))
			return rc;
		m->pos += 4;
		return memo_get(m, rd32(m->b + m->pos - 4));
	case 'q':
		if ((rc = need(m, 1)))
			return rc;
		return memo_put(m, m->b[m->pos++]);
	case 'r':
		if ((rc = need(m, 4)))
			return rc;
		m->pos += 4;
		return memo_put(m, rd32(m->b + m->pos - 4));
	case 0x94:
		return memo_put(m, m->nmemo);
	case 'c':
		return op_global(m);
	case 0x93:
		return op_stack_global(m);
	case 'R':
	case 0x81:
		if ((rc = pop(m, &w)) || (rc = pop(m, &v)))
			return rc;
		return call(m, v, w, op == 'R' ? "REDUCE" : "NEWOBJ");
	case 'b':
		return op_build(m);
	case 'Q':
		return op_persid(m);
	default:
		if (opnames[op])
			return md_fail(MD_EREFUSED, "refused: opcode %s (0x%02x) at byte %zu", opnames[op], op, m->op_at);
		return md_fail(MD_EREFUSED, "refused: unknown opcode 0x%02x at byte %zu", op, m->op_at);
	}
}

void pk_free(struct pk_doc *d)
{
	for (size_t i = 0; i < d->nobj; i++) {
		struct pk_obj *o = &d->obj[i];
		switch (o->kind) {
		case PK_TUPLE: case PK_LIST: case PK_DICT: case PK_SET:
			free(o->u.v);
			break;
		case PK_STORAGE:
			free(o->u.st);
			break;
		case PK_TENSOR:
			free(o->u.t);
			break;
		default:
			break;
		}
	}
	free(d->obj);
	memset(d, 0, sizeof *d);
}

int pk_load(const uint8_t *buf, size_t n, struct pk_doc *doc)
{
	memset(doc, 0, sizeof *doc);
	struct vm m = { .b = buf, .n = n, .d = doc };
	int rc = 0, done = 0;
	while (!rc && !done) {
		if (m.pos >= m.n) {
			m.op_at = m.pos;
			m.truncated = 1;
			rc = md_fail(MD_ECORRUPT, "pickle: truncated at byte %zu (no STOP)", m.pos);
			break;
		}
		rc = step(&m, &done);
	}
	free(m.stack);
	free(m.memo);
	if (rc) {
		pk_free(doc);
		if (m.truncated)
			doc->used = SIZE_MAX;
		return rc;
	}
	doc->used = m.pos;
	return 0;
}
