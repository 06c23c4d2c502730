"""Weight files through the daemon: converted to packs in the confined
worker, originals reproduced bit-exactly, hostile files refused with nothing
stored, exports readable without our code."""
import hashlib
import json
import os
import pickle
import struct
import subprocess

import pytest

from conftest import blob_bytes, make_model, read_safetensors, safetensors_bytes

PY = "/usr/bin/python3"

TORCH_SCRIPT = r'''
import collections, sys, torch
torch.manual_seed(0)
big = torch.randn(256, 256)
sd = collections.OrderedDict()
sd["embed.weight"] = big
sd["lm_head.weight"] = big                      # tied: same storage
sd["h.0.fp16"] = torch.randn(64, 32).half()
sd["h.0.bf16"] = torch.randn(16, 16).bfloat16()
sd["h.0.int8"] = torch.randint(-100, 100, (300,), dtype=torch.int8)
base = torch.arange(1000, dtype=torch.float32)
sd["h.0.view"] = base[100:400]                  # a view with an offset
torch.save({"model": sd, "epoch": 3}, sys.argv[1])
torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)
'''


def sha(b):
    return hashlib.sha256(b).hexdigest()


def torch_model(path):
    os.makedirs(path, exist_ok=True)
    subprocess.run([PY, "-c", TORCH_SCRIPT, os.path.join(path, "pytorch_model.bin"),
                    os.path.join(path, "legacy.pt")], check=True)
    rnd = os.urandom
    s1 = safetensors_bytes({"a": ("F32", [64, 64], rnd(64 * 64 * 4)),
                            "b": ("BF16", [128], rnd(256))})
    s2 = safetensors_bytes({"c": ("F16", [32, 8], rnd(512)), "d": ("I64", [3], rnd(24))})
    idx = {"metadata": {"total_size": 64 * 64 * 4 + 256 + 512 + 24},
           "weight_map": {"a": "model-00001-of-00002.safetensors",
                          "b": "model-00001-of-00002.safetensors",
                          "c": "model-00002-of-00002.safetensors",
                          "d": "model-00002-of-00002.safetensors"}}
    return make_model(path, {"model-00001-of-00002.safetensors": s1,
                             "model-00002-of-00002.safetensors": s2,
                             "model.safetensors.index.json": json.dumps(idx).encode(),
                             "config.json": b'{"architectures":["LlamaForCausalLM"]}'})


def test_weights_converted_and_bit_exact(daemon, tmp):
    m = torch_model(os.path.join(tmp, "m"))
    daemon.ctl("import", m, "--name", "acme/w")
    show = daemon.ctl("show", "acme/w", "--json").json()
    fmt = {f["path"]: f.get("format") for f in show["files"]}
    assert fmt["pytorch_model.bin"] == "torch" and fmt["legacy.pt"] == "torch"
    assert fmt["model-00001-of-00002.safetensors"] == "safetensors"
    assert fmt["model.safetensors.index.json"] is None and fmt["config.json"] is None
    for f in show["files"]:
        data = daemon.ctl("cat", "acme/w", f["path"], binary=True).out
        orig = open(os.path.join(m, f["path"]), "rb").read()
        assert data == orig, f["path"]
        assert sha(data) == f["sha256"]
    tensors = daemon.ctl("tensors", "acme/w", "--json").json()
    names = {(t["file"], t["name"]) for t in tensors}
    assert ("pytorch_model.bin", "model.embed.weight") in names
    assert ("pytorch_model.bin", "model.h.0.view") in names
    tied = [t for t in tensors if t["file"] == "pytorch_model.bin" and t["name"] == "model.lm_head.weight"]
    assert tied and "alias" in tied[0]
    for t in tensors:
        assert t["offset"] % 4096 == 0
    assert show["facts"]["parameters"] > 256 * 256
    assert "tensors" in daemon.ctl("tensors", "acme/w").out or "NAME" in daemon.ctl("tensors", "acme/w").out
    assert daemon.ctl("verify", "--json").json()["ok"]


def test_pack_named_by_root_and_verified(daemon, tmp):
    """A pack blob is named by its root digest (the trailer's), not by a hash
    of the file; verify reads it whole against that name and names a flipped
    tensor byte or padding byte."""
    rnd = os.urandom
    st = safetensors_bytes({"w": ("F32", [1000], rnd(4000)), "v": ("F16", [8], rnd(16))})
    m = make_model(os.path.join(tmp, "m"), {"model.safetensors": st, "config.json": b"{}"})
    daemon.ctl("import", m, "--name", "acme/root")
    packs = []
    for d, _, fs in os.walk(os.path.join(daemon.store, "blobs")):
        for name in fs:
            with open(os.path.join(d, name), "rb") as fh:
                if fh.read(8) == b"MDPACK\0\1":
                    packs.append(os.path.join(d, name))
    assert len(packs) == 1, packs
    path = packs[0]
    name = os.path.basename(path)
    raw = open(path, "rb").read()
    assert raw[-64:-56] == b"MDPKEND\0"
    assert raw[-48:-16].hex() == name
    assert sha(raw) != name
    assert daemon.ctl("verify", "acme/root", "--json").json()["ok"]
    tensors = daemon.ctl("tensors", "acme/root", "--json").json()
    w = [t for t in tensors if t["name"] == "w"][0]
    for off in (w["offset"] + 17, w["offset"] + w["bytes"] + 5):   # data, then padding
        os.chmod(path, 0o644)
        b = bytearray(raw)
        b[off] ^= 0x40
        open(path, "wb").write(bytes(b))
        v = daemon.ctl("verify", "acme/root", "--json", check=False)
        assert v.rc == 1, v
        errs = v.json()["errors"]
        assert errs and errs[0]["path"] == "model.safetensors", errs
        assert name in errs[0]["error"], errs
    open(path, "wb").write(raw)
    assert daemon.ctl("verify", "acme/root", "--json").json()["ok"]


def test_store_ratio_for_big_tensors(daemon, tmp):
    # weights stored once: packs + recipes cost <= 1% over the originals
    rnd = os.urandom
    st = safetensors_bytes({f"layer.{i}.weight": ("BF16", [1024, 2048], rnd(1024 * 2048 * 2))
                            for i in range(8)})
    m = make_model(os.path.join(tmp, "big"), {"model.safetensors": st})
    daemon.ctl("import", m, "--name", "acme/big")
    ratio = blob_bytes(daemon.store) / len(st)
    assert ratio <= 1.01, ratio
    assert daemon.ctl("cat", "acme/big", "model.safetensors", binary=True).out == st


def evil_pickle():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/modeld-pwned",))
    return pickle.dumps(Evil(), protocol=2)


LONG_NAME = "resnet50_imagenet_checkpoint_epoch_90_best.pth.tar"


def deflated_torch_zip(pkl, root="archive", method=None):
    """A torch-style zip whose entries are deflate-compressed (torch.save
    never writes that; we cannot check what we do not inflate)."""
    import io
    import zipfile
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED if method is None else method) as z:
        z.writestr(root + "/data.pkl", pkl)
        z.writestr(root + "/version", "3\n")
        z.writestr(root + "/byteorder", "little")
    return bio.getvalue()


def torch_zip_stored(pkl, root):
    import zipfile
    return deflated_torch_zip(pkl, root, zipfile.ZIP_STORED)


def padded_torch_zip(pkl, root="archive"):
    """A torch zip whose first entry is 64 KiB of something else, so that no
    record torch.load looks for is in the file's first 4096 bytes."""
    import io
    import zipfile
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_STORED) as z:
        z.writestr(root + "/aaa_padding", b"\0" * 65536)
        z.writestr(root + "/data.pkl", pkl)
        z.writestr(root + "/version", "3\n")
        z.writestr(root + "/byteorder", "little")
    return bio.getvalue()


@pytest.mark.parametrize("case,fname,expect", [
    ("os_system", "pytorch_model.bin", "pytorch_model.bin: refused: global posix.system"),
    # recognized but not convertible: refused, never stored as a plain file
    ("deflated_evil", "pytorch_model.bin",
     "pytorch_model.bin: refused: zip entry archive/data.pkl is compressed (deflate); "
     "torch.save stores entries uncompressed"),
    ("gguf_v1", "model.gguf", "model.gguf: refused: GGUF version 1 (only 2 and 3)"),
    # found by content, however long the zip's root folder, whatever the name
    ("long_root", LONG_NAME, LONG_NAME + ": refused: global posix.system"),
    ("long_root", "model_weights_for_inference_final.pkl",
     "model_weights_for_inference_final.pkl: refused: global posix.system"),
    # torch's records past the first 4096 bytes, under a name we do not list
    ("padded", "weights.data", "weights.data: refused: global posix.system"),
    ("header_4g", "model.safetensors", "model.safetensors"),
    ("overlap", "model.safetensors", "model.safetensors"),
    ("trailing", "model.safetensors", "model.safetensors"),
])
def test_hostile_weights_refused(daemon, tmp, case, fname, expect):
    if case == "os_system":
        data = evil_pickle()
    elif case == "deflated_evil":
        data = deflated_torch_zip(evil_pickle())
    elif case == "long_root":
        data = torch_zip_stored(evil_pickle(), fname.rsplit(".", 1)[0])
    elif case == "padded":
        data = padded_torch_zip(evil_pickle())
    elif case == "gguf_v1":
        data = b"GGUF" + struct.pack("<IQQ", 1, 0, 0)
    elif case == "header_4g":
        data = struct.pack("<Q", 4 << 30) + b"{}"
    elif case == "overlap":
        hdr = json.dumps({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                          "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}}).encode()
        data = struct.pack("<Q", len(hdr)) + hdr + b"x" * 12
    else:
        data = safetensors_bytes({"a": ("U8", [8], b"y" * 8)}) + b"trailing"
    m = make_model(os.path.join(tmp, "evil"), {fname: data, "config.json": b"{}"})
    r = daemon.ctl("import", m, "--name", "acme/evil", check=False)
    assert r.rc == 1, r
    assert expect in r.err, r.err
    assert r.err.count("\n") == 1
    assert not os.path.exists("/tmp/modeld-pwned")
    assert daemon.ctl("list", "--json").json() == []
    daemon.ctl("gc")
    assert blob_bytes(daemon.store) == 0


def test_zip_that_is_no_checkpoint_is_stored_as_it_is(daemon, tmp):
    """Any zip goes to the worker (torch.load reads one under any name), but
    one without torch's records is stored as it is, byte for byte, whatever
    it holds: a compressed zip of assets, an empty one."""
    import io
    import zipfile
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("assets/readme.txt", "hello " * 1000)
        z.writestr("data.pkl", b"not under a root folder")
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    files = {"assets.zip": bio.getvalue(), "empty.zip": empty.getvalue(), "config.json": b"{}"}
    daemon.ctl("import", make_model(os.path.join(tmp, "z"), files), "--name", "acme/zips")
    for path, data in files.items():
        assert daemon.ctl("cat", "acme/zips", path, binary=True).out == data, path
    fmts = {f["path"]: f.get("format") for f in daemon.ctl("show", "acme/zips", "--json").json()["files"]}
    assert fmts["assets.zip"] is None and fmts["empty.zip"] is None, fmts


def test_pack_growth_capped(daemon, tmp):
    """A small file of many tiny tensors would need a 4096-byte slot each:
    refused before anything is written when the pack would exceed twice the
    file plus 64 MiB; a tiny real model still imports."""
    n = 30000
    hdr = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(n)}
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    m = make_model(os.path.join(tmp, "amp"), {"model.safetensors": struct.pack("<Q", len(h)) + h + os.urandom(n)})
    r = daemon.ctl("import", m, "--name", "acme/amp", check=False)
    assert r.rc == 1, r
    assert "model.safetensors: refused: 30000 tensors would need a 1" in r.err, r.err
    assert r.err.count("\n") == 1
    assert daemon.ctl("list", "--json").json() == []
    daemon.ctl("gc")
    assert blob_bytes(daemon.store) == 0
    small = safetensors_bytes({f"layer.{i}.weight": ("F32", [16, 16], os.urandom(1024)) for i in range(100)})
    daemon.ctl("import", make_model(os.path.join(tmp, "small"), {"model.safetensors": small}),
               "--name", "acme/small")
    f = daemon.ctl("show", "acme/small", "--json").json()["files"][0]
    assert f.get("format") == "safetensors" and f.get("tensors") == 100, f


def test_long_named_checkpoint_converted(daemon, tmp):
    """torch.save names the zip's root folder after the file: a long name
    and an extension we do not list must not stop the conversion."""
    m = os.path.join(tmp, "m")
    os.makedirs(m)
    subprocess.run([PY, "-c", "import sys, torch; torch.save({'w': torch.ones(3)}, sys.argv[1])",
                    os.path.join(m, LONG_NAME)], check=True)
    daemon.ctl("import", m, "--name", "acme/long")
    f = daemon.ctl("show", "acme/long", "--json").json()["files"][0]
    assert f["path"] == LONG_NAME and f.get("format") == "torch" and f.get("tensors") == 1, f


def test_ggml_type_names(daemon, tmp):
    """Block-quantized GGUF tensors are named by their ggml type everywhere
    (tensors, show's dtype_bytes, export errors): GGML_Q8_0, not GGML_8."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "unit"))
    from conv_fixtures import gguf_bytes
    q8 = os.urandom(34 * 2)    # 2 blocks of Q8_0: 64 elements
    q4 = os.urandom(18 * 2)    # 2 blocks of Q4_0
    g = gguf_bytes([], [("a", 8, [64], q8), ("b", 2, [64], q4), ("c", 0, [4], os.urandom(16))])
    m = make_model(os.path.join(tmp, "g"), {"model.gguf": g})
    daemon.ctl("import", m, "--name", "acme/g")
    dts = {t["name"]: t["dtype"] for t in daemon.ctl("tensors", "acme/g", "--json").json()}
    assert dts == {"a": "GGML_Q8_0", "b": "GGML_Q4_0", "c": "F32"}, dts
    assert "GGML_Q8_0" in daemon.ctl("tensors", "acme/g").out
    f = daemon.ctl("show", "acme/g", "--json").json()["files"][0]
    assert set(f["dtype_bytes"]) == {"GGML_Q8_0", "GGML_Q4_0", "F32"}, f


def test_export_safetensors_and_gguf(daemon, tmp):
    m = torch_model(os.path.join(tmp, "m"))
    daemon.ctl("import", m, "--name", "acme/x")
    out = os.path.join(tmp, "out")
    daemon.ctl("export", "acme/x", "--format", "safetensors", "-o", out)
    got = read_safetensors(os.path.join(out, "pytorch_model.safetensors"))
    # compare with what torch itself loads (independent of our code)
    check = subprocess.run([PY, "-c", r'''
import sys, json, hashlib, torch
sd = torch.load(sys.argv[1], weights_only=True)["model"]
out = {}
for k, t in sd.items():
    t = t.contiguous()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    out["model." + k] = hashlib.sha256(t.numpy().tobytes()).hexdigest()
print(json.dumps(out))
''', os.path.join(m, "pytorch_model.bin")], capture_output=True, text=True, check=True)
    want = json.loads(check.stdout)
    assert {k: sha(v) for k, v in got.items()} == want
    gdir = os.path.join(tmp, "g")
    daemon.ctl("export", "acme/x", "--format", "gguf", "-o", gdir)
    g = open(os.path.join(gdir, "model-00001-of-00002.gguf"), "rb").read()
    magic, version, ntensors = struct.unpack("<4sIQ", g[:16])
    assert magic == b"GGUF" and version == 3 and ntensors == 2
    r = daemon.ctl("export", "acme/x", "--format", "onnx", "-o", gdir, check=False)
    assert r.rc == 2


def st_with_meta(meta, tensors):
    """A safetensors file in the safetensors library's own form: compact
    header, __metadata__ first, tensors in data order, padded with spaces."""
    hdr, off, data = {"__metadata__": meta}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def test_export_safetensors_keeps_metadata(daemon, tmp):
    """The pack keeps __metadata__ and export writes it back: a file in the
    safetensors library's form exports bit-exactly."""
    meta = {"format": "pt", "note": "h\u00e9llo", "a": "b"}
    st = st_with_meta(meta, {"w": ("F32", [4, 4], os.urandom(64)), "b": ("BF16", [8], os.urandom(16))})
    m = make_model(os.path.join(tmp, "m"), {"model.safetensors": st})
    daemon.ctl("import", m, "--name", "acme/meta")
    out = os.path.join(tmp, "out")
    daemon.ctl("export", "acme/meta", "--format", "safetensors", "-o", out)
    raw = open(os.path.join(out, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    assert json.loads(raw[8:8 + n])["__metadata__"] == meta
    assert raw == st


GGUF_FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_bytes(kvs, tensors, align=32):
    """kvs: [(key, type, value)] (type 9: value (elem type, [values]));
    tensors: [(name, dims innermost first, ggml type, bytes)]."""
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    def val(t, v):
        if t == 8:
            return s(v)
        if t == 9:
            et, vs = v
            return struct.pack("<IQ", et, len(vs)) + b"".join(val(et, e) for e in vs)
        return struct.pack("<" + GGUF_FMT[t], v)
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += s(k) + struct.pack("<I", t) + val(t, v)
    off, data = 0, b""
    for name, dims, t, raw in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", t, off)
        pad = (align - len(raw) % align) % align
        data += raw + b"\0" * pad
        off += len(raw) + pad
    out += b"\0" * ((align - len(out) % align) % align)
    return out + data


def read_gguf(raw):
    """An independent GGUF v3 reader: ({key: (type, value)}, {name: (dims, type, bytes)})."""
    o = 0

    def u(f):
        nonlocal o
        v = struct.unpack_from("<" + f, raw, o)[0]
        o += struct.calcsize("<" + f)
        return v

    def s():
        nonlocal o
        n = u("Q")
        o += n
        return raw[o - n:o].decode()

    def val(t):
        if t == 8:
            return s()
        if t == 9:
            et, n = u("I"), u("Q")
            return (et, [val(et) for _ in range(n)])
        v = u(GGUF_FMT[t])
        return "nan" if v != v else v
    assert raw[:4] == b"GGUF" and struct.unpack_from("<I", raw, 4)[0] == 3
    o = 8
    nt, nkv = u("Q"), u("Q")
    kv = {}
    for _ in range(nkv):
        k = s()
        t = u("I")
        kv[k] = (t, val(t))
    align = kv.get("general.alignment", (4, 32))[1]
    infos = []
    for _ in range(nt):
        name = s()
        dims = [u("Q") for _ in range(u("I"))]
        infos.append((name, dims, u("I"), u("Q")))
    base = (o + align - 1) // align * align
    sizes = {0: 4, 1: 2, 24: 1, 26: 4}
    res, want = {}, 0
    for i, (name, dims, t, off) in enumerate(infos):
        n = sizes[t]
        for d in dims:
            n *= d
        assert off == want and off % align == 0, (name, off, want)
        res[name] = (dims, t, raw[base + off:base + off + n])
        want += (n + align - 1) // align * align
    return kv, res


@pytest.mark.parametrize("align", [None, 64])
def test_export_gguf_keeps_metadata(daemon, tmp, align):
    """Every typed key/value of a GGUF original is in its export (llama.cpp
    needs general.architecture); a general.alignment is kept and the data laid
    out on it."""
    kvs = [("general.architecture", 8, "llama"), ("general.name", 8, "tiny"),
           ("llama.context_length", 4, 2048), ("llama.block_count", 4, 2),
           ("llama.rope.freq_base", 6, 10000.0), ("k.u8", 0, 7), ("k.i8", 1, -3),
           ("k.u16", 2, 65535), ("k.i16", 3, -2), ("k.i32", 5, -70000), ("k.u64", 10, 1 << 40),
           ("k.i64", 11, -(1 << 40)), ("k.f64", 12, 0.5), ("k.bool", 7, True),
           ("tokenizer.ggml.tokens", 9, (8, ["<s>", "</s>", "a"])),
           ("tokenizer.ggml.scores", 9, (6, [0.0, -1.5, 2.25])), ("k.arr_empty", 9, (4, []))]
    if align:
        kvs.append(("general.alignment", 4, align))
    a = align or 32
    tens = [("tok.weight", [4, 3], 0, os.urandom(48)), ("h.f16", [5], 1, os.urandom(10)),
            ("h.i8", [7], 24, os.urandom(7)), ("h.i32", [3], 26, os.urandom(12))]
    g = gguf_bytes(kvs, tens, a)
    m = make_model(os.path.join(tmp, "m"), {"model.gguf": g})
    daemon.ctl("import", m, "--name", "acme/gg")
    out = os.path.join(tmp, "out")
    daemon.ctl("export", "acme/gg", "--format", "gguf", "-o", out)
    got = open(os.path.join(out, "model.gguf"), "rb").read()
    kv0, t0 = read_gguf(g)
    kv1, t1 = read_gguf(got)
    assert kv1 == kv0 and len(kv1) == len(kvs)
    assert kv1["general.architecture"] == (8, "llama")
    assert t1 == t0
    assert got == g


COMPLEX128_SCRIPT = r'''
import collections, sys, torch
torch.manual_seed(0)
sd = collections.OrderedDict()
sd["freqs"] = torch.randn(4, 6, dtype=torch.complex128)
sd["half"] = sd["freqs"][:, 3:]                  # a view with an offset
sd["w"] = torch.randn(3, 3)
torch.save(sd, sys.argv[1])
torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)
'''


def test_complex128_checkpoint_round_trips(daemon, tmp):
    """torch saves complex128 (ComplexDoubleStorage) in a state_dict (rotary
    frequency buffers): it is stored as C128, cat is bit-exact, load_state_dict
    equals torch.load, and the safetensors export, whose spec has no C128,
    refuses it by name."""
    import sys
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "python"))
    import modeld
    m = os.path.join(tmp, "c")
    os.makedirs(m)
    subprocess.run([PY, "-c", COMPLEX128_SCRIPT, os.path.join(m, "pytorch_model.bin"),
                    os.path.join(m, "legacy.pt")], check=True)
    daemon.ctl("import", m, "--name", "acme/c128")
    for f in ("pytorch_model.bin", "legacy.pt"):
        assert daemon.ctl("cat", "acme/c128", f, binary=True).out == open(os.path.join(m, f), "rb").read()
    tensors = daemon.ctl("tensors", "acme/c128", "--json").json()
    fr = [t for t in tensors if t["name"] == "freqs"]
    assert fr and all(t["dtype"] == "C128" and t["shape"] == [4, 6] and t["bytes"] == 4 * 6 * 16
                      for t in fr), fr
    sd = modeld.load_state_dict("acme/c128", socket=daemon.sock, files=["pytorch_model.bin"])
    ref = torch.load(os.path.join(m, "pytorch_model.bin"))
    assert set(sd) == set(ref)
    for k in ref:
        assert sd[k].dtype == ref[k].dtype and torch.equal(sd[k], ref[k]), k
    del sd
    r = daemon.ctl("export", "acme/c128", "--format", "safetensors", "-o", os.path.join(tmp, "o"),
                   check=False)
    assert r.rc == 1 and "freqs" in r.err and "C128" in r.err, r


def test_export_gguf_zero_dims(daemon, tmp):
    """GGUF readers (llama.cpp's gguf_init) divide INT64_MAX by each of
    ne[1..3] to check a tensor's element count, so a zero there kills them
    (SIGFPE). An empty tensor whose zero is the innermost dimension (ne[0])
    exports; one with a zero elsewhere is refused by name, nothing written."""
    ok = safetensors_bytes({"e": ("F32", [0], b""), "w": ("F32", [2, 2], os.urandom(16))})
    bad = safetensors_bytes({"w": ("F32", [2, 2], os.urandom(16)), "cache": ("F16", [0, 4], b"")})
    daemon.ctl("import", make_model(os.path.join(tmp, "ok"), {"model.safetensors": ok}), "--name", "acme/z1")
    daemon.ctl("import", make_model(os.path.join(tmp, "bad"), {"model.safetensors": bad}), "--name", "acme/z2")
    out = os.path.join(tmp, "o1")
    daemon.ctl("export", "acme/z1", "--format", "gguf", "-o", out)
    raw = open(os.path.join(out, "model.gguf"), "rb").read()
    assert raw[:4] == b"GGUF"
    out = os.path.join(tmp, "o2")
    r = daemon.ctl("export", "acme/z2", "--format", "gguf", "-o", out, check=False)
    assert r.rc == 1 and "cache" in r.err and "(0,4)" in r.err, r
    assert not os.path.exists(os.path.join(out, "model.gguf"))


def test_tensor_names_are_printed_inert(daemon, tmp):
    """A tensor's name is whatever the weight file's header says: `tensors`
    prints control characters in it as '?' (no terminal escapes, no forged
    rows); --json and the stored name keep it exactly."""
    name = "w\x1b[2J\nevil.weight\tF32"
    m = make_model(os.path.join(tmp, "m"), {
        "config.json": b"{}",
        "model.safetensors": safetensors_bytes({name: ("F32", [4], bytes(16))})})
    daemon.ctl("import", m, "--name", "acme/names")
    out = daemon.ctl("tensors", "acme/names").out
    assert not [c for c in out if ord(c) < 0x20 and c != "\n"], repr(out)
    assert out.splitlines()[1].startswith("w?[2J?evil.weight?F32 "), repr(out)
    assert len(out.splitlines()) == 2, repr(out)
    assert [t["name"] for t in daemon.ctl("tensors", "acme/names", "--json").json()] == [name]
