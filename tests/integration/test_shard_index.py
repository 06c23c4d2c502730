"""Sharded safetensors: a *.safetensors.index.json is checked against the
shards of the same import (docs/pack-format.md section 5); a violation
refuses the whole import in one line and nothing is stored."""
import json
import os

import pytest

from conftest import blob_bytes, make_model, safetensors_bytes


S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
IDX = "model.safetensors.index.json"


def sharded(wm, s2=None, idx=None, extra=None, prefix=""):
    """Two shards (a, b | c) and an index with weight map wm."""
    s1 = safetensors_bytes({"a": ("U8", [4], b"aaaa"), "b": ("U8", [4], b"bbbb")})
    s2 = s2 or safetensors_bytes({"c": ("U8", [4], b"cccc")})
    name = idx or IDX
    body = wm if isinstance(wm, bytes) else json.dumps(
        {"metadata": {"total_size": 12}, "weight_map": wm}).encode()
    files = {prefix + S1: s1, prefix + S2: s2, prefix + name: body, "config.json": b"{}"}
    files.update(extra or {})
    return files


GOOD_WM = {"a": S1, "b": S1, "c": S2}


@pytest.mark.parametrize("case,files,expect", [
    ("not_json", sharded(b"{nope"), "not a valid JSON index"),
    ("not_object", sharded(b"[1, 2]"), 'not a JSON object with a "weight_map" object'),
    ("no_weight_map", sharded(b'{"metadata": {}}'), '"weight_map" object'),
    ("weight_map_list", sharded(b'{"weight_map": [1, 2]}'), '"weight_map" object'),
    ("dup_key", sharded(b'{"weight_map": {"a": "%s", "a": "%s"}}' % (S1.encode(), S2.encode())),
     "not a valid JSON index: duplicate object key"),
    ("not_string", sharded(dict(GOOD_WM, c=3)), "tensor c: shard is not a string"),
    ("traversal", sharded(dict(GOOD_WM, c="../../../etc/passwd")),
     "tensor c: shard path '../../../etc/passwd' refused"),
    ("absolute", sharded(dict(GOOD_WM, c="/etc/passwd")), "tensor c: shard path '/etc/passwd' refused"),
    ("other_folder", sharded(dict(GOOD_WM, c="sub/" + S2), extra={"sub/" + S2: safetensors_bytes({"c": ("U8", [4], b"cccc")})}),
     "tensor c: shard path 'sub/%s' refused" % S2),
    ("dot", sharded(dict(GOOD_WM, c=".")), "tensor c: shard path '.' refused"),
    ("empty", sharded(dict(GOOD_WM, c="")), "tensor c: shard path '' refused"),
    ("absent_from_shard", sharded(dict(GOOD_WM, zz=S2)), "tensor zz: not in " + S2),
    ("wrong_shard", sharded(dict(GOOD_WM, a=S2)),
     "tensor a: in %s, but the index maps it to %s" % (S1, S2)),
    ("wrong_shard_absent", {k: v for k, v in sharded(dict(GOOD_WM, a=S2)).items() if k != S2},
     "tensor a: in %s, but the index maps it to %s" % (S1, S2)),
    ("in_two_shards", sharded(GOOD_WM, s2=safetensors_bytes({"a": ("U8", [4], b"AAAA"),
                                                              "c": ("U8", [4], b"cccc")})),
     "tensor a: in both %s and %s" % (S1, S2)),
    ("not_safetensors", sharded(dict(GOOD_WM, c="config.json")),
     "shard config.json is not a safetensors weight file"),
    ("diffusers", sharded(dict(GOOD_WM, zz=S2), idx="diffusion_pytorch_model.safetensors.index.json",
                          prefix="unet/"), "unet/diffusion_pytorch_model.safetensors.index.json: "
     "tensor zz: not in unet/" + S2),
])
def test_shard_index_refused(daemon, tmp, case, files, expect):
    """A *.safetensors.index.json is checked against the shards of the same
    import: any violation refuses the whole import in one line naming the
    index and the tensor or shard, and nothing is stored."""
    m = make_model(os.path.join(tmp, case), files)
    r = daemon.ctl("import", m, "--name", "acme/shard", check=False)
    assert r.rc == 1, r
    assert r.err.count("\n") == 1, r.err
    assert expect in r.err, r.err
    assert ".safetensors.index.json: " in r.err, r.err
    assert daemon.ctl("list", "--json").json() == []
    daemon.ctl("gc")
    assert blob_bytes(daemon.store) == 0


def test_shard_index_too_big_refused(daemon, tmp):
    big = b'{"weight_map": {}, "pad": "' + b"x" * (32 << 20) + b'"}'
    m = make_model(os.path.join(tmp, "big"), sharded(big))
    r = daemon.ctl("import", m, "--name", "acme/shard", check=False)
    assert r.rc == 1 and r.err.count("\n") == 1, r
    assert IDX + ": index of %d bytes refused" % len(big) in r.err, r.err
    assert daemon.ctl("list", "--json").json() == []


def test_shard_index_valid_imports(daemon, tmp):
    """Valid indexes import: all shards; one shard left out (a pull with
    --include); a tensor the index does not list; a wrong total_size; a
    diffusers index in a subfolder."""
    cases = {
        "all": sharded(GOOD_WM),
        "missing_shard": {k: v for k, v in sharded(GOOD_WM).items() if k != S2},
        "unlisted": sharded({"a": S1, "c": S2}),
        "diffusers": sharded(GOOD_WM, idx="diffusion_pytorch_model.safetensors.index.json",
                             prefix="unet/"),
    }
    for case, files in cases.items():
        m = make_model(os.path.join(tmp, case), files)
        name = "acme/" + case.replace("_", "-")
        daemon.ctl("import", m, "--name", name)
        for rel, data in files.items():
            assert daemon.ctl("cat", name, rel, binary=True).out == data, (case, rel)
