"""modelctl export --format: output names unique within one export, and an
existing file never overwritten (modelctl(1))."""
import os
import subprocess
import time

from conftest import MODELCTL, make_model, read_safetensors, safetensors_bytes

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


def test_export_with_modelctl_killed_leaves_no_half_file_and_reruns(daemon, tmp):
    """kill -9 of modelctl once it has created its outputs: no file appears
    under an output's own name (only NAME.part), the daemon's job ends, and
    the same export run again succeeds with whole files."""
    m = os.path.join(tmp, "m")
    st = safetensors_bytes({f"t{i}": ("U8", [4 << 20], os.urandom(4 << 20)) for i in range(16)})
    make_model(m, {"model.safetensors": st, "config.json": b"{}"})
    daemon.ctl("import", m, "--name", "acme/kill")
    ref = os.path.join(tmp, "ref")
    daemon.ctl("export", "acme/kill", "--format", "safetensors", "-o", ref)
    want = open(os.path.join(ref, "model.safetensors"), "rb").read()
    out = os.path.join(tmp, "out")
    p = subprocess.Popen([MODELCTL, "--socket", daemon.sock, "export", "acme/kill",
                          "--format", "safetensors", "-o", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (os.path.isdir(out) and os.listdir(out)) and time.time() - t0 < 30:
        time.sleep(0.001)
    p.kill()
    p.wait()
    assert os.listdir(out), "modelctl created no output before it was killed"
    for _ in range(300):
        jobs = daemon.ctl("jobs", "--json").json()
        if all(j["state"] != "running" for j in jobs):
            break
        time.sleep(0.1)
    assert all(j["state"] != "running" for j in jobs), jobs
    assert "model.safetensors" not in os.listdir(out), os.listdir(out)
    r = daemon.ctl("export", "acme/kill", "--format", "safetensors", "-o", out, check=False)
    assert r.rc == 0, r
    assert os.listdir(out) == ["model.safetensors"]
    assert open(os.path.join(out, "model.safetensors"), "rb").read() == want
