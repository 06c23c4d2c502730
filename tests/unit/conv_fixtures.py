#!/usr/bin/python3
"""Fixtures and independent readers for the converter tests (test_pack.c,
test_safetensors.c, test_gguf.c). Writes safetensors and GGUF bytes by hand
with struct + numpy, and reads them back without any of our C code.

  conv_fixtures.py make DIR       valid fixtures (see make())
  conv_fixtures.py hostile DIR    hostile corpus: one file per case
  conv_fixtures.py compare A B    same tensors (name, dtype, shape, bytes)?
                                  A, B: safetensors or GGUF; prints OK
  conv_fixtures.py numpy FILE     load every plain tensor with numpy; prints OK
"""
import json
import os
import struct
import sys

import numpy as np

ALIGN_DEFAULT = 32

# ---------------------------------------------------------------- safetensors


def st_bytes(tensors, meta=None, pad=True):
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = meta
    off, data = 0, b""
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        data += b
    h = json.dumps(hdr).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def st_raw(header, data=b"", hlen=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def read_st(b):
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", None)
    out, end = {}, 0
    for k, v in h.items():
        s, e = v["data_offsets"]
        end = max(end, e)
        out[k] = (v["dtype"], list(v["shape"]), b[8 + n + s:8 + n + e])
    assert 8 + n + end == len(b), "safetensors: size mismatch"
    return meta, out

# ----------------------------------------------------------------------- GGUF


SFMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B",
        10: "<Q", 11: "<q", 12: "<d"}
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 8: ("Q8_0", 32, 34),
        12: ("Q4_K", 256, 144), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4),
        27: ("I64", 1, 8), 28: ("F64", 1, 8), 30: ("BF16", 1, 2)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gval(t, v):
    if t == 8:
        return gstr(v)
    if t == 9:
        et, arr = v
        return struct.pack("<IQ", et, len(arr)) + b"".join(gval(et, x) for x in arr)
    return struct.pack(SFMT[t], v)


def pad(n, a):
    return (a - n % a) % a


def gguf_bytes(kvs, tensors, align=ALIGN_DEFAULT, version=3, nt=None, nkv=None,
               offsets=None, tail=b"", cut=0):
    b = b"GGUF" + struct.pack("<I", version)
    b += struct.pack("<QQ", len(tensors) if nt is None else nt, len(kvs) if nkv is None else nkv)
    for k, t, v in kvs:
        b += gstr(k) + struct.pack("<I", t) + (v if isinstance(v, bytes) else gval(t, v))
    off, datas = 0, b""
    for i, (name, t, ne, data) in enumerate(tensors):
        o = off if offsets is None else offsets[i]
        b += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        b += struct.pack("<IQ", t, o)
        datas += data + b"\0" * pad(len(data), align)
        off += len(data) + pad(len(data), align)
    b += b"\0" * pad(len(b), align)
    b += datas + tail
    return b[:len(b) - cut] if cut else b


class R:
    def __init__(self, b):
        self.b, self.p = b, 0

    def get(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def s(self):
        n = self.get("<Q")
        v = self.b[self.p:self.p + n].decode()
        self.p += n
        return v

    def val(self, t):
        if t == 8:
            return self.s()
        if t == 9:
            et, n = self.get("<I"), self.get("<Q")
            return [self.val(et) for _ in range(n)]
        return self.get(SFMT[t])


def read_gguf(b):
    r = R(b)
    assert r.b[:4] == b"GGUF"
    r.p = 4
    assert r.get("<I") == 3
    nt, nkv = r.get("<Q"), r.get("<Q")
    kv = {}
    for _ in range(nkv):
        k = r.s()
        kv[k] = r.val(r.get("<I"))
    infos = []
    for _ in range(nt):
        name = r.s()
        nd = r.get("<I")
        ne = [r.get("<Q") for _ in range(nd)]
        t, o = r.get("<I"), r.get("<Q")
        infos.append((name, t, ne, o))
    align = kv.get("general.alignment", ALIGN_DEFAULT)
    start = r.p + pad(r.p, align)
    out = {}
    for name, t, ne, o in infos:
        tn, blck, ts = GGML.get(t, ("GGML_%d" % t, None, None))
        n = int(np.prod(ne, dtype=np.uint64)) if ne else 1
        if blck is None:
            raise SystemExit("gguf: test reader does not know type %d" % t)
        size = n // blck * ts
        assert o % align == 0
        out[name] = (tn if blck == 1 else "GGML_" + tn, list(reversed(ne)),
                     b[start + o:start + o + size])
    return kv, out


def load(path):
    b = open(path, "rb").read()
    if b[:4] == b"GGUF":
        return read_gguf(b)
    return read_st(b)

# -------------------------------------------------------------------- fixtures


def rnd(shape, dt, seed):
    g = np.random.default_rng(seed)
    return g.standard_normal(shape).astype(dt)


def make(d):
    f32 = rnd((16, 33), np.float32, 1)
    f16 = rnd((7, 5), np.float16, 2)
    bf16 = (rnd((64, 64), np.float32, 3).view(np.uint32) >> 16).astype(np.uint16)
    i8 = np.arange(-50, 50, dtype=np.int8).reshape(10, 10)
    u8 = np.arange(0, 200, dtype=np.uint8)
    i64 = np.arange(9, dtype=np.int64).reshape(3, 3)
    boo = np.array([True, False, True])
    f8 = np.arange(256, dtype=np.uint8).reshape(16, 16)     # F8_E4M3 bit patterns
    f4 = np.arange(16, dtype=np.uint8)                      # 32 F4 values
    big = rnd((2048, 1100), np.float32, 4)                  # 9 MB: spans 8 MiB chunks
    tensors = [
        ("model.embed.weight", "F32", f32.shape, f32.tobytes()),
        ("layers.0.f16", "F16", f16.shape, f16.tobytes()),
        ("layers.0.bf16", "BF16", bf16.shape, bf16.tobytes()),
        ("layers.0.i8", "I8", i8.shape, i8.tobytes()),
        ("u8", "U8", u8.shape, u8.tobytes()),
        ("i64", "I64", i64.shape, i64.tobytes()),
        ("mask", "BOOL", boo.shape, boo.tobytes()),
        ("fp8.weight", "F8_E4M3", f8.shape, f8.tobytes()),
        ("fp4.weight", "F4", (32,), f4.tobytes()),
        ("scalar", "F32", (), np.float32(3.5).tobytes()),
        ("empty", "F32", (0, 4), b""),
        ("big.weight", "F32", big.shape, big.tobytes()),
        ("d\u00e9j\u00e0.vu", "F16", (2,), np.float16([1, 2]).tobytes()),
    ]
    open(os.path.join(d, "model.safetensors"), "wb").write(
        st_bytes(tensors, {"format": "pt", "note": "caf\u00e9"}))
    # tensors model.safetensors holds too (big.weight, twice, under other
    # names) next to its own: stored once across packs (test_pack.c)
    own = rnd((256, 256), np.float32, 11)
    open(os.path.join(d, "share.safetensors"), "wb").write(st_bytes([
        ("other.big", "F32", big.shape, big.tobytes()),
        ("own", "F32", own.shape, own.tobytes()),
        ("small", "F16", (3,), np.float16([1, 2, 3]).tobytes()),
        ("big.again", "F32", big.shape, big.tobytes()),
    ], {"format": "pt"}))
    # plain types only (exportable to GGUF)
    plain = [t for t in tensors if t[1] in ("F32", "F16", "BF16", "I8", "I64")
             and t[0] not in ("empty", "scalar")]
    open(os.path.join(d, "plain.safetensors"), "wb").write(st_bytes(plain, {"format": "pt"}))
    # no metadata, one tensor, unpadded header
    open(os.path.join(d, "tiny.safetensors"), "wb").write(
        st_bytes([("w", "F32", (2, 2), rnd((2, 2), np.float32, 5).tobytes())], pad=False))
    # "__metadata__": null (accepted by the reference), F6 and F8_E8M0 dtypes
    open(os.path.join(d, "nullmeta.safetensors"), "wb").write(st_raw(json.dumps({
        "__metadata__": None,
        "f6": {"dtype": "F6_E2M3", "shape": [2, 4], "data_offsets": [0, 6]},
        "e8": {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [6, 8]}}), b"abcdefgh"))
    # an empty metadata key (legal in safetensors; found by fuzzing)
    open(os.path.join(d, "emptykey.safetensors"), "wb").write(
        st_bytes([("w", "U8", (3,), b"xyz")], {"": "empty", "k": ""}))
    # a shard of a sharded checkpoint
    open(os.path.join(d, "model-00001-of-00002.safetensors"), "wb").write(
        st_bytes([("a", "F16", (4,), np.float16([1, 2, 3, 4]).tobytes())]))
    # GGUF with every metadata type, plain and block types, alignment 64
    kvs = [
        ("general.architecture", 8, "llama"),
        ("general.alignment", 4, 64),
        ("t.u8", 0, 200), ("t.i8", 1, -5), ("t.u16", 2, 60000), ("t.i16", 3, -300),
        ("t.u32", 4, 4000000000), ("t.i32", 5, -7), ("t.f32", 6, 0.5), ("t.bool", 7, 1),
        ("t.u64", 10, 2 ** 64 - 1), ("t.i64", 11, -(2 ** 62)), ("t.f64", 12, 2.25),
        ("tokenizer.ggml.tokens", 9, (8, ["<s>", "</s>", "h\u00e9", "x" * 300])),
        ("tokenizer.ggml.scores", 9, (6, [0.0, -1.5, 2.0, 3.0])),
        ("t.empty", 9, (4, [])),
    ]
    g = np.random.default_rng(9)
    q8 = g.integers(0, 256, size=(4 * 64 // 32) * 34, dtype=np.uint8).tobytes()
    q4k = g.integers(0, 256, size=(2 * 512 // 256) * 144, dtype=np.uint8).tobytes()
    gt = [
        ("token_embd.weight", 0, [33, 16], rnd((16, 33), np.float32, 6).tobytes()),
        ("blk.0.attn_q.weight", 8, [64, 4], q8),
        ("blk.0.ffn.weight", 12, [512, 2], q4k),
        ("blk.0.norm", 1, [5], rnd((5,), np.float16, 7).tobytes()),
        ("blk.0.idx", 26, [3, 2], np.arange(6, dtype=np.int32).tobytes()),
        ("blk.0.bf", 30, [8], np.arange(8, dtype=np.uint16).tobytes()),
    ]
    open(os.path.join(d, "model.gguf"), "wb").write(gguf_bytes(kvs, gt, align=64))
    # GGUF of plain types (exportable to safetensors), default alignment
    open(os.path.join(d, "plain.gguf"), "wb").write(gguf_bytes(
        [("general.architecture", 8, "test")],
        [t for t in gt if t[1] in (0, 1, 26, 30)]))
    # a GGUF without tensors, and one with the last tensor unpadded
    open(os.path.join(d, "notensors.gguf"), "wb").write(
        gguf_bytes([("general.name", 8, "x")], []))
    b = gguf_bytes([], [("w", 0, [3], np.float32([1, 2, 3]).tobytes())])
    open(os.path.join(d, "unpadded.gguf"), "wb").write(b[:len(b) - 20])
    # a tiny real model: 100 small tensors in a 100 kB file still convert
    # (a 400 kB pack: the growth cap's 64 MiB slack)
    open(os.path.join(d, "small_many.safetensors"), "wb").write(st_bytes(
        [(f"layer.{i}.weight", "F32", [16, 16], rnd((16, 16), np.float32, 100 + i).tobytes())
         for i in range(100)]))
    # not weight files: they stay plain blobs
    open(os.path.join(d, "config.json"), "w").write('{"hidden_size": 8}\n')
    open(os.path.join(d, "model.safetensors.index.json"), "w").write(json.dumps(
        {"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}))


def hostile(d):
    f32 = np.float32([1, 2, 3, 4]).tobytes()
    good = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    cases = {
        "st_hdr4g.safetensors": st_raw("{}", b"", hlen=4 << 30),
        "st_hdrpast.safetensors": st_raw("{}", b"", hlen=1000),
        "st_overlap.safetensors": st_raw(json.dumps({
            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}), b"\0" * 24),
        "st_hole.safetensors": st_raw(json.dumps({
            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": [20, 36]}}), b"\0" * 36),
        "st_overflow.safetensors": st_raw(json.dumps({
            "a": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32, 16], "data_offsets": [0, 16]}}),
            b"\0" * 16),
        "st_trailing.safetensors": st_raw(json.dumps(good), f32 + b"extra"),
        "st_truncated.safetensors": st_raw(json.dumps(good), f32[:10]),
        "st_dup.safetensors": st_raw(
            '{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
            '"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', f32),
        "st_badutf8.safetensors": st_raw(
            b'{"w\xff": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', f32),
        "st_nul.safetensors": st_raw(
            '{"w\\u0000x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', f32),
        "st_baddtype.safetensors": st_raw(json.dumps({
            "w": {"dtype": "F7", "shape": [4], "data_offsets": [0, 16]}}), f32),
        "st_metanotstr.safetensors": st_raw(json.dumps(
            {"__metadata__": {"a": 1}, **good}), f32),
        "st_notobject.safetensors": st_raw("[1, 2]", b""),
        "st_lenmismatch.safetensors": st_raw(json.dumps({
            "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}), f32[:12]),
        "st_negshape.safetensors": st_raw(json.dumps({
            "w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}}), f32),
        "st_f4odd.safetensors": st_raw(json.dumps({
            "w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}), b"\0\0"),
        "st_extrakey.safetensors": st_raw(json.dumps({
            "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "x": 1}}), f32),
        "st_badjson.safetensors": st_raw('{"w": ', b""),
        "st_short.safetensors": b"\x10\0\0\0",
        "st_backwards.safetensors": st_raw(json.dumps({
            "w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}}), b"\0" * 4),
        "st_dims9.safetensors": st_raw(json.dumps({
            "w": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 1]}}), b"\0"),
    }
    w = ("w", 0, [4], f32)
    cases.update({
        "g_huge_tensors.gguf": gguf_bytes([], [], nt=1 << 60),
        "g_huge_kv.gguf": gguf_bytes([], [], nkv=1 << 60),
        "g_huge_string.gguf": gguf_bytes([("k", 8, struct.pack("<Q", 1 << 40) + b"abc")], []),
        "g_huge_array.gguf": gguf_bytes([("k", 9, struct.pack("<IQ", 4, 1 << 40))], []),
        "g_bad_align.gguf": gguf_bytes([("general.alignment", 4, 48)], [w]),
        "g_align_type.gguf": gguf_bytes([("general.alignment", 8, "32")], [w]),
        "g_align_zero.gguf": gguf_bytes([("general.alignment", 4, 0)], [w]),
        "g_unknown_type.gguf": gguf_bytes([], [("w", 4, [32], b"\0" * 20)]),
        "g_unknown_type2.gguf": gguf_bytes([], [("w", 200, [32], b"\0" * 20)]),
        "g_unknown_kvtype.gguf": gguf_bytes([("k", 13, b"\0" * 8)], []),
        "g_block.gguf": gguf_bytes([], [("w", 2, [33], b"\0" * 18)]),
        "g_bad_offset.gguf": gguf_bytes([], [w], offsets=[64]),
        "g_dup.gguf": gguf_bytes([], [w, w]),
        "g_dupkey.gguf": gguf_bytes([("k", 4, 1), ("k", 4, 2)], []),
        "g_past_end.gguf": gguf_bytes([], [w], cut=20),
        "g_trailing.gguf": gguf_bytes([], [w], tail=b"junk"),
        "g_version1.gguf": gguf_bytes([], [], version=1),
        "g_version4.gguf": gguf_bytes([], [], version=4),
        "g_bigendian.gguf": b"GGUF" + struct.pack(">IQQ", 3, 0, 0),
        "g_dims5.gguf": gguf_bytes([], [("w", 0, [1, 1, 1, 1, 1], b"\0" * 4)]),
        "g_nested.gguf": gguf_bytes([("k", 9, struct.pack("<IQ", 9, 1) +
                                      struct.pack("<IQ", 4, 0))], []),
        "g_ne_overflow.gguf": gguf_bytes([], [("w", 0, [1 << 40, 1 << 40], b"")]),
        "g_bool2.gguf": gguf_bytes([("k", 7, 2)], []),
        "g_longname.gguf": gguf_bytes([], [("x" * 64, 0, [4], f32)]),
        "g_badutf8.gguf": gguf_bytes([("k\xff".encode("latin1"), 4, 1)], []),
        "g_truncated_hdr.gguf": b"GGUF\3\0\0\0\1\0",
    })
    for name, b in cases.items():
        open(os.path.join(d, name), "wb").write(b)
    # 50,000 one-byte tensors: 3.6 MB that would take a ~213 MB pack
    n = 50000
    hdr = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(n)}
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(os.path.join(d, "st_manytiny.safetensors"), "wb").write(
        struct.pack("<Q", len(h)) + h + bytes(range(256)) * (n // 256) + bytes(n % 256))


def compare(a, b):
    _, ta = load(a)
    _, tb = load(b)
    if set(ta) != set(tb):
        raise SystemExit("names differ: %s vs %s" % (sorted(ta), sorted(tb)))
    for k in ta:
        da, sa, ba = ta[k]
        db, sb, bb = tb[k]
        if da != db or list(sa) != list(sb) or ba != bb:
            raise SystemExit("tensor %s differs: %s %s %d vs %s %s %d" %
                             (k, da, sa, len(ba), db, sb, len(bb)))
    print("OK %d" % len(ta))


NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I8": np.int8,
      "U8": np.uint8, "I16": np.int16, "I32": np.int32, "I64": np.int64, "BOOL": np.bool_,
      "BF16": np.uint16, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64}


def numpy_load(path):
    meta, t = load(path)
    n = 0
    for k, (dt, shape, b) in t.items():
        if dt in NP:
            a = np.frombuffer(b, dtype=NP[dt]).reshape(shape)
            assert a.nbytes == len(b)
            n += 1
    print("OK %d" % n, json.dumps(meta if not isinstance(meta, dict) else
                                  {k: v for k, v in meta.items() if isinstance(v, str)}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "hostile":
        hostile(sys.argv[2])
    elif cmd == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif cmd == "numpy":
        numpy_load(sys.argv[2])
    else:
        raise SystemExit(__doc__)
