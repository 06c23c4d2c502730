"""modelctl export --format: output names unique within one export, and an
existing file never overwritten (modelctl(1))."""
import os
import subprocess

from conftest import make_model, read_safetensors, safetensors_bytes

PY = "/usr/bin/python3"


def test_export_names_unique_and_never_overwrite(daemon, tmp):
    """Two files with one stem (model.safetensors, model.bin) export to two
    files: the one with the extension keeps its name, the other is named from
    its whole name; an existing output is refused, not overwritten, and a
    failed export leaves nothing of its own behind."""
    m = os.path.join(tmp, "m")
    make_model(m, {"model.safetensors": safetensors_bytes({"x": ("F32", [4], b"1" * 16)})})
    subprocess.run([PY, "-c", "import torch,sys; torch.save({'z': torch.ones(3)}, sys.argv[1])",
                    os.path.join(m, "model.bin")], check=True)
    daemon.ctl("import", m, "--name", "acme/stem")
    out = os.path.join(tmp, "out")
    r = daemon.ctl("export", "acme/stem", "--format", "safetensors", "-o", out)
    assert sorted(os.listdir(out)) == ["model.bin.safetensors", "model.safetensors"], r
    assert r.out.count("wrote ") == 2 and len(set(r.out.split())) == 3, r.out
    assert set(read_safetensors(os.path.join(out, "model.safetensors"))) == {"x"}
    assert set(read_safetensors(os.path.join(out, "model.bin.safetensors"))) == {"z"}
    # a second export into the same folder overwrites nothing
    before = {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)}
    os.unlink(os.path.join(out, "model.safetensors"))
    del before["model.safetensors"]
    r = daemon.ctl("export", "acme/stem", "--format", "safetensors", "-o", out, check=False)
    assert r.rc == 1 and r.err.count("\n") == 1, r
    assert "model.bin.safetensors: exists" in r.err, r.err
    assert {f: open(os.path.join(out, f), "rb").read() for f in os.listdir(out)} == before
    # gguf: neither has the extension; in path order model.bin takes the stem
    g = os.path.join(tmp, "g")
    daemon.ctl("export", "acme/stem", "--format", "gguf", "-o", g)
    assert sorted(os.listdir(g)) == ["model.gguf", "model.safetensors.gguf"]
