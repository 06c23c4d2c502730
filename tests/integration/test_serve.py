"""Serving weights to runtimes (issue 5, docs/serving.md): the `open`
operation, leases against rm, the Python package python/modeld and the C
library libmodeld, against a real daemon."""
import gc
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import xxhash

from conftest import ROOT, BUILD, blob_bytes, make_model

sys.path.insert(0, os.path.join(ROOT, "python"))
import modeld  # noqa: E402

torch = pytest.importorskip("torch")


def st_file(tensors, metadata=None):
    """A safetensors file from {name: torch tensor}, with optional __metadata__."""
    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16",
             torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8", torch.int8: "I8",
             torch.float64: "F64", torch.bool: "BOOL"}
    hdr, off, data = {}, 0, b""
    if metadata:
        hdr["__metadata__"] = metadata
    for name, t in tensors.items():
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        hdr[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def daemon_fds(d):
    return len(os.listdir("/proc/%d/fd" % d.proc.pid))


def settled_fds(d, timeout=10):
    """The daemon's fd count once it holds still for 0.5 s: a connection
    the previous command closed may still be open in the daemon for a
    moment, and counting it as the baseline made a later, settled count
    look one lower (a failed equality, not a leak)."""
    t0, last, since = time.time(), daemon_fds(d), time.time()
    while time.time() - t0 < timeout:
        time.sleep(0.05)
        n = daemon_fds(d)
        if n != last:
            last, since = n, time.time()
        elif time.time() - since >= 0.5:
            break
    return last


def wait_fds(d, want, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        n = daemon_fds(d)
        if n <= want:
            return n
        time.sleep(0.05)
    return daemon_fds(d)


def fnv(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


@pytest.fixture
def torch_model(tmp, daemon):
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(300, 64, generator=g).to(torch.bfloat16)
    sd = {
        "model.embed.weight": emb,
        "lm_head.weight": emb,                       # tied: one storage
        "model.layers.0.w": torch.randn(64, 64, generator=g),
        "model.layers.0.h": torch.randn(7, 3, generator=g).half(),
        "model.norm.f64": torch.randn(5, generator=g, dtype=torch.float64),
        "pos": torch.arange(100, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }
    sd["model.layers.0.w_t"] = sd["model.layers.0.w"].t()        # a view of w's storage
    sd["model.layers.0.cols"] = sd["model.layers.0.w"][:, 8:24]  # another, with an offset
    src = os.path.join(tmp, "tm")
    os.makedirs(src)
    torch.save(sd, os.path.join(src, "pytorch_model.bin"))
    with open(os.path.join(src, "config.json"), "w") as f:
        f.write("{}")
    daemon.ctl("import", src, "--name", "acme/torchy")
    return torch.load(os.path.join(src, "pytorch_model.bin"))


def test_load_state_dict_equals_torch_load(daemon, torch_model):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the read-only buffer warning is handled
        sd = modeld.load_state_dict("acme/torchy", socket=daemon.sock)
    assert set(sd) == set(torch_model)
    for k, v in torch_model.items():
        assert sd[k].dtype == v.dtype and sd[k].shape == v.shape, k
        assert torch.equal(sd[k], v), k
    # views of the mapping, not copies: tied weights share their bytes
    assert sd["lm_head.weight"].data_ptr() == sd["model.embed.weight"].data_ptr()
    assert sd["model.layers.0.w"].data_ptr() % 4096 == 0
    # dtype= converts floating tensors only
    sd16 = modeld.load_state_dict("acme/torchy", socket=daemon.sock, dtype=torch.float16)
    assert sd16["model.layers.0.w"].dtype == torch.float16
    assert sd16["pos"].dtype == torch.int64
    assert torch.allclose(sd16["model.layers.0.w"].float(), torch_model["model.layers.0.w"],
                          atol=1e-2, rtol=1e-2)
    # the socket is found through $MODELD_SOCKET as modelctl does
    os.environ["MODELD_SOCKET"] = daemon.sock
    try:
        assert torch.equal(modeld.load_state_dict("acme/torchy")["pos"], torch_model["pos"])
    finally:
        del os.environ["MODELD_SOCKET"]
    assert "open acme/torchy@" in daemon.read_log() and "pid %d" % os.getpid() in daemon.read_log()


def test_cuda_pipeline_chunking_without_gpu(daemon, torch_model):
    """The CUDA loader's read/copy pipeline, run into CPU memory: chunks that
    split tensors, several threads, O_DIRECT reads."""
    from modeld import _cuda
    for kw in ({"chunk_mb": 0.01, "threads": 3}, {"chunk_mb": 1, "threads": 1},
               {"chunk_mb": 0.004, "threads": 4, "direct": True}):
        with modeld.open_model("acme/torchy", socket=daemon.sock) as m:
            sd = _cuda.load(m, _simulate=True, **kw)
        assert set(sd) == set(torch_model), kw
        for k, v in torch_model.items():
            assert sd[k].dtype == v.dtype and torch.equal(sd[k], v), (k, kw)


def test_safetensors_and_safe_open(tmp, daemon):
    g = torch.Generator().manual_seed(9)
    shard1 = {"a.weight": torch.randn(33, 17, generator=g).to(torch.bfloat16),
              "a.bias": torch.randn(17, generator=g),
              "ids": torch.arange(-5, 5, dtype=torch.int32)}
    shard2 = {"b.weight": torch.randint(0, 255, (4, 8, 2), generator=g, dtype=torch.uint8),
              "scalar": torch.tensor(3.5, dtype=torch.float64)}
    src = make_model(os.path.join(tmp, "st"), {
        "model-00001-of-00002.safetensors": st_file(shard1, {"format": "pt", "who": "test"}),
        "model-00002-of-00002.safetensors": st_file(shard2),
        "config.json": b"{}",
    })
    daemon.ctl("import", src, "--name", "acme/sharded")
    want = dict(shard1, **shard2)
    sd = modeld.load_state_dict("acme/sharded", socket=daemon.sock)
    assert set(sd) == set(want)
    for k, v in want.items():
        assert sd[k].dtype == v.dtype and sd[k].shape == v.shape and torch.equal(sd[k], v), k

    with modeld.safe_open("acme/sharded", framework="pt", socket=daemon.sock) as f:
        assert f.keys() == sorted(want)
        assert f.metadata() == {"format": "pt", "who": "test"}
        assert torch.equal(f.get_tensor("a.weight"), want["a.weight"])
        sl = f.get_slice("a.weight")
        assert sl.get_shape() == [33, 17] and sl.get_dtype() == "BF16"
        assert torch.equal(sl[3:9, 2:5], want["a.weight"][3:9, 2:5])
        assert f.get_tensor("scalar").shape == torch.Size([])
        with pytest.raises(KeyError):
            f.get_tensor("nope")
    # a glob choosing the weight files
    only = modeld.load_state_dict("acme/sharded", socket=daemon.sock, files=["model-00002-*"])
    assert set(only) == set(shard2)
    # a glob that matches no weight file is an error naming them, not an empty dict
    with pytest.raises(modeld.ModeldError) as e:
        modeld.load_state_dict("acme/sharded", socket=daemon.sock, files=["model-0003*"])
    assert e.value.code == -2 and "no weight file matches files=['model-0003*']" in str(e.value)
    assert "model-00001-of-00002.safetensors, model-00002-of-00002.safetensors" in str(e.value)

    with pytest.raises(modeld.ModeldError) as e:
        modeld.load_state_dict("acme/missing", socket=daemon.sock)
    assert e.value.code == -2 and "acme/missing" in str(e.value)
    with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
        modeld.load_state_dict("acme/sharded", socket=daemon.sock, device="cuda")
    with pytest.raises(ValueError):
        modeld.load_state_dict("acme/sharded", socket=daemon.sock, device="tpu")
    with pytest.raises(modeld.ModeldError) as e:
        modeld.load_state_dict("acme/x", socket=os.path.join(tmp, "nothing.sock"))
    assert "cannot connect" in str(e.value)


def test_no_weight_bytes_cross_the_socket(tmp, daemon):
    big = torch.randn(4 << 20 // 4)   # 4 MiB of float32
    src = make_model(os.path.join(tmp, "big"), {"model.safetensors": st_file({"w": big})})
    daemon.ctl("import", src, "--name", "acme/big")
    m = modeld.open_model("acme/big", socket=daemon.sock)
    try:
        received = m.conn.bytes_received
        assert received < 16 << 10, received     # the table only, not 4 MiB
        assert torch.equal(m.tensor("w"), big)
        mm, off, n = m.buffer("w")
        # the table's digest (pack format 2: XXH3-128, docs/pack-format.md),
        # checked with python3-xxhash over the bytes the descriptor maps
        assert m.tensors["w"]["digest_alg"] == "xxh3-128"
        assert n == big.numel() * 4 and xxhash.xxh3_128(mm[off:off + n]).hexdigest() == \
            m.tensors["w"]["digest"]
        # the descriptor is read-only
        with pytest.raises(OSError):
            os.write(m.packs[0]["fd"], b"x")
    finally:
        m.close()


def test_rm_refused_while_open_then_works(tmp, daemon):
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file({"w": torch.ones(10)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/held")
    with modeld.safe_open("acme/held", socket=daemon.sock) as f:
        t = f.get_tensor("w")
        r = daemon.ctl("rm", "acme/held", check=False)
        assert r.rc == 1
        assert "acme/held is open by 1 client (pid %d); close them or retry" % os.getpid() in r.err
        r = daemon.ctl("rm", "acme/held@main", check=False)
        assert r.rc == 1 and "is open by" in r.err
        daemon.ctl("gc")
        assert torch.equal(f.get_tensor("w"), torch.ones(10))
    # after close: rm works, and tensors already taken stay readable
    daemon.ctl("rm", "acme/held")
    assert torch.equal(t, torch.ones(10))
    with pytest.raises(modeld.ModeldError):
        modeld.safe_open("acme/held", socket=daemon.sock)

    # load_state_dict's tensors hold the lease until they are gone
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/held")
    sd = modeld.load_state_dict("acme/held", socket=daemon.sock)
    assert daemon.ctl("rm", "acme/held", check=False).rc == 1
    del sd, t
    gc.collect()
    daemon.ctl("rm", "acme/held")

    # a client killed while holding a model: its lease ends with it
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/held")
    code = ("import sys,time; sys.path.insert(0,%r); import modeld; "
            "m=modeld.open_model('acme/held', socket=%r); print('ok', flush=True); time.sleep(60)"
            % (os.path.join(ROOT, "python"), daemon.sock))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ok"
    r = daemon.ctl("rm", "acme/held", check=False)
    assert r.rc == 1 and "(pid %d)" % p.pid in r.err
    p.kill()
    p.wait()
    t0 = time.time()
    while daemon.ctl("rm", "acme/held", check=False).rc != 0:
        assert time.time() - t0 < 10, "lease of a dead client not released"
        time.sleep(0.05)


def small_models(daemon, tmp, g, n, rows, per):
    """n models acme/c0.. of `per` float tensors [rows, 64], imported; their
    state dicts by name."""
    models = {}
    for i in range(n):
        sd = {"w%d" % k: torch.randn(rows, 64, generator=g) for k in range(per)}
        make_model(os.path.join(tmp, "c%d" % i), {"model.safetensors": st_file(sd)})
        daemon.ctl("import", os.path.join(tmp, "c%d" % i), "--name", "acme/c%d" % i)
        models["acme/c%d" % i] = sd
    return models


def run_together(n, body):
    """body(i) in n threads released at once; the errors they raised."""
    errors, start = [], threading.Barrier(n)

    def client(i):
        try:
            start.wait()
            body(i)
        except Exception as e:  # collected for the caller to assert on
            errors.append(repr(e))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def md_check(tmp):
    """tests/serve/md_check.c built against the plain libmodeld (also when
    BUILD is build/asan), as a user builds against the library."""
    exe, lib = os.path.join(tmp, "md_check"), os.path.join(ROOT, "build")
    subprocess.run(["cc", "-std=c17", "-Wall", "-Werror", "-o", exe,
                    os.path.join(ROOT, "tests/serve/md_check.c"),
                    "-I" + os.path.join(ROOT, "client"), "-L" + lib, "-lmodeld",
                    "-Wl,-rpath," + lib], check=True)
    return exe


def test_64_clients_during_import_no_fd_leak(tmp, daemon):
    g = torch.Generator().manual_seed(1)
    models = small_models(daemon, tmp, g, 3, 256, 4)
    make_model(os.path.join(tmp, "bulk"), {"model.safetensors": st_file(
        {"x%d" % k: torch.randn(1 << 20, generator=g) for k in range(12)})})
    gc.collect()
    before = settled_fds(daemon)
    imp = subprocess.Popen([os.path.join(BUILD, "modelctl"), "--socket", daemon.sock, "import",
                            os.path.join(tmp, "bulk"), "--name", "acme/bulk"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def client(i):
        name = "acme/c%d" % (i % 3)
        for _ in range(3):
            with modeld.open_model(name, socket=daemon.sock) as m:
                for k, v in models[name].items():
                    mm, off, n = m.buffer(k)
                    assert mm[off:off + n] == v.numpy().tobytes(), (name, k)
                for mm in m.maps:
                    if mm is not None:
                        mm.close()

    errors = run_together(64, client)
    out, err = imp.communicate(timeout=120)
    assert imp.returncode == 0, err
    assert errors == []
    gc.collect()
    after = wait_fds(daemon, before)
    assert after == before, (before, after)
    assert torch.equal(modeld.load_state_dict("acme/bulk", socket=daemon.sock)["x3"].float()
                       .sum().reshape(1), modeld.load_state_dict(
                           "acme/bulk", socket=daemon.sock)["x3"].sum().reshape(1))


def raw_conn(d):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.sock)
    s.settimeout(10)
    return s


def drained(s):
    """Read until the daemon hangs up; True when it did."""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def frame(obj_bytes, version=1, length=None, nfds=0):
    return b"MD" + struct.pack("<HII", version, len(obj_bytes) if length is None else length,
                               nfds) + obj_bytes


def test_hostile_clients_disconnected_daemon_keeps_serving(tmp, daemon):
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file(
        {"w": torch.arange(1000, dtype=torch.float32)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/h")
    gc.collect()
    before = settled_fds(daemon)
    req = json.dumps({"op": "open", "ref": "acme/h"}).encode()
    cases = {
        "garbage": b"GET / HTTP/1.1\r\n\r\n" + os.urandom(64),
        "2 GB length": frame(req, length=2 << 30),
        "bad version": frame(req, version=7),
        "too many fds declared": frame(req, nfds=5000),
        "not json": frame(b"{open"),
    }
    for what, data in cases.items():
        s = raw_conn(daemon)
        s.sendall(data)
        assert drained(s), what + ": not disconnected"
        s.close()
    # clients that die mid-open: the request sent, nothing read
    for _ in range(20):
        s = raw_conn(daemon)
        s.sendall(frame(req))
        s.close()
    # half a frame, then gone
    s = raw_conn(daemon)
    s.sendall(frame(req)[:7])
    s.close()
    # and a killed process in the middle of many opens
    code = ("import sys; sys.path.insert(0,%r); import modeld\n"
            "c=modeld.Connection(%r)\n"
            "for i in range(100000): c.send({'op':'open','ref':'acme/h'})\n"
            % (os.path.join(ROOT, "python"), daemon.sock))
    p = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # still serving, correctly
    sd = modeld.load_state_dict("acme/h", socket=daemon.sock)
    assert torch.equal(sd["w"], torch.arange(1000, dtype=torch.float32))
    del sd
    gc.collect()
    assert wait_fds(daemon, before) == before
    daemon.ctl("rm", "acme/h")   # no lease left behind by any of them
    assert daemon.proc.poll() is None


def test_libmodeld_c_program(tmp, daemon):
    g = torch.Generator().manual_seed(3)
    sd = {"x.weight": torch.randn(40, 12, generator=g).to(torch.bfloat16),
          "y": torch.arange(7, dtype=torch.int64)}
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file(sd)})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/cee")
    exe = md_check(tmp)
    p = subprocess.run([exe, daemon.sock, "acme/cee"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    head = lines[0].split()
    assert head[0] == "model" and head[1] == "acme/cee" and head[3:] == ["2", "1"]
    got = {l.split()[0]: l.split()[1:] for l in lines[1:-1]}
    for k, v in sd.items():
        raw = v.view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 else \
            v.numpy().tobytes()
        dt = {torch.bfloat16: "BF16", torch.int64: "I64"}[v.dtype]
        assert got[k] == [dt, str(v.dim())] + [str(x) for x in v.shape] + [str(len(raw)),
                                                                           fnv(raw)], k
    assert lines[-1] == "closed"
    # two models on one connection; md_close of one ends its lease only
    p = subprocess.run([exe, daemon.sock, "acme/cee", "acme/cee"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
    p = subprocess.run([exe, daemon.sock, "acme/none"], capture_output=True, text=True)
    assert p.returncode == 3 and p.stdout.startswith("error -2 ") and "acme/none" in p.stdout
    p = subprocess.run([exe, os.path.join(tmp, "no.sock"), "acme/cee"], capture_output=True,
                       text=True)
    assert p.returncode == 3 and "error -18 " in p.stdout
    daemon.ctl("rm", "acme/cee")   # every lease ended with the program
    # model.fp16.safetensors sorts first, but md_model_find and a load
    # without files= take the names from model.safetensors (the default)
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in sd.items()}
    make_model(os.path.join(tmp, "v"), {"model.fp16.safetensors": st_file(half),
                                        "model.safetensors": st_file(sd)})
    daemon.ctl("import", os.path.join(tmp, "v"), "--name", "acme/variant")
    p = subprocess.run([exe, daemon.sock, "acme/variant"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-2] == "defaults 1 of 2", p.stdout
    got = modeld.load_state_dict("acme/variant", socket=daemon.sock)
    assert got["x.weight"].dtype == torch.bfloat16 and torch.equal(got["x.weight"], sd["x.weight"])


def test_many_packs_split_across_frames(tmp, daemon):
    """205 weight files (more descriptors than one frame may carry) plus one
    with 10,000 tensors (more rows than one frame holds): python and C
    clients reassemble the table and every descriptor."""
    long = "a_rather_long_tensor_name_to_fill_frames"
    files = {"model-%05d.safetensors" % i: st_file({"layer%d.%s" % (i, long):
                                                    torch.tensor([i, 7], dtype=torch.int32)})
             for i in range(205)}
    files["zz-big.safetensors"] = st_file({"big%05d.%s" % (k, long): torch.tensor([k], dtype=torch.int32)
                                           for k in range(10000)})
    daemon.ctl("import", make_model(os.path.join(tmp, "many"), files), "--name", "acme/many",
               timeout=300)
    c = modeld.Connection(daemon.sock)
    res, parts, fds = c.call({"op": "open", "ref": "acme/many"})
    # split twice: after 200 descriptors, and when the rows pass 2 MiB
    assert len(fds) == 206 and len(parts) >= 2, [len(p["open_part"]["packs"]) for p in parts]
    assert len(parts[0]["open_part"]["packs"]) == 200
    assert all(len(json.dumps(p)) < 4 << 20 for p in parts)
    for fd in fds:
        os.close(fd)
    c.close()
    m = modeld.open_model("acme/many", socket=daemon.sock)
    try:
        assert len(m.packs) == 206 and len(m.tensors) == 205 + 10000
        for i in (0, 199, 200, 204):
            name = "layer%d.%s" % (i, long)
            assert m.tensor(name).tolist() == [i, 7]
            assert m.packs[m.tensors[name]["pack"]]["file"] == "model-%05d.safetensors" % i
        assert m.tensor("big09999.%s" % long).tolist() == [9999]
    finally:
        m.close()
    exe = md_check(tmp)
    p = subprocess.run([exe, daemon.sock, "acme/many"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-2000:]
    assert p.stdout.splitlines()[0].split()[3:] == ["10205", "206"]
    assert "layer204.%s I32 1 2 8 %s" % (long, fnv(struct.pack("<ii", 204, 7))) in p.stdout
    assert "big09999.%s I32 1 1 4 %s" % (long, fnv(struct.pack("<i", 9999))) in p.stdout
    daemon.ctl("rm", "acme/many")


def test_pipelined_requests_of_a_slow_reader_are_not_dropped(tmp, daemon):
    """A client that pipelines many requests whose replies carry no
    descriptors (here: opens of a model that is not stored) and reads them
    only later is slowed down (the daemon stops reading its requests while
    replies wait for it), never disconnected: every request gets its reply."""
    n = 20000
    c = modeld.Connection(daemon.sock)

    def send_all():
        for _ in range(n):
            c.send({"op": "open", "ref": "acme/absent"})
    t = threading.Thread(target=send_all)
    t.start()
    time.sleep(2.0)     # read nothing while the requests pile up
    for _ in range(n):
        msg, fds = c.recv()
        assert not fds and msg["ok"] is False and "acme/absent" in msg["error"], msg
    t.join(timeout=30)
    assert not t.is_alive()
    c.close()
    # the daemon still serves
    assert daemon.ctl("list", "--json").rc == 0


def test_pipelined_opens_without_reading_are_bounded(tmp, daemon):
    """A client that sends 3000 opens and reads nothing: once its socket
    buffer is full the daemon stops reading its requests when 256 descriptors
    wait for it (instead of opening 6000 files, or dropping the client), serves
    everyone else, and resumes when it reads."""
    make_model(os.path.join(tmp, "m"), {
        "a.safetensors": st_file({"a": torch.ones(3)}),
        "b.safetensors": st_file({"b": torch.zeros(3)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/two")
    gc.collect()
    before = settled_fds(daemon)
    c = modeld.Connection(daemon.sock)
    c.sock.setblocking(False)
    sent = 0
    try:
        for _ in range(3000):
            c.send({"op": "open", "ref": "acme/two"})
            sent += 1
    except BlockingIOError:
        pass   # the daemon stopped reading us: the stall
    c.sock.setblocking(True)
    time.sleep(1.0)
    held = daemon_fds(daemon) - before
    assert held <= 256 + 2 + 8, held       # at most the cap (+ its socket)
    # others are served meanwhile
    assert torch.equal(modeld.load_state_dict("acme/two", socket=daemon.sock)["a"], torch.ones(3))
    got = capped = 0
    t0 = time.time()
    for _ in range(sent):
        while True:
            msg, fds = c.recv()
            for fd in fds:
                os.close(fd)
            if "ok" in msg:
                if msg["ok"]:
                    got += len(fds)
                else:   # the lease cap: 256 models open on one connection
                    assert msg["code"] == -15 and "more than 256 models" in msg["error"], msg
                    capped += 1
                break
    assert 256 < sent < 3000 and got == 2 * 256 and capped == sent - 256, (sent, got, capped)
    # held-back requests resume as soon as the client reads (no poll-timeout
    # wait per request)
    assert time.time() - t0 < 10
    c.close()
    gc.collect()
    assert wait_fds(daemon, before) == before
    daemon.ctl("rm", "acme/two")


def test_tensor_whose_stored_bytes_lie_is_not_shared(tmp, daemon):
    """A stored pack whose bytes no longer match the digest its table (and
    the tensor index) holds, as one written by a converter taken over by a
    hostile file would be, never lends those bytes to another model: the
    second model stores its own copy and reads back exactly."""
    g = torch.Generator().manual_seed(23)
    sd = {"embed.weight": torch.randn(512, 512, generator=g)}   # 1 MiB
    daemon.ctl("import", make_model(os.path.join(tmp, "liar"),
               {"model.safetensors": st_file(sd, {"format": "pt"})}), "--name", "acme/liar")
    row = [t for t in daemon.ctl("tensors", "acme/liar", "--json").json()
           if t["name"] == "embed.weight"][0]
    path = os.path.join(daemon.store, "blobs", "sha256", row["pack"][:2], row["pack"])
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(row["offset"] + 100)
        b = f.read(1)
        f.seek(row["offset"] + 100)
        f.write(bytes([b[0] ^ 0xFF]))
    st2 = st_file(sd, {"format": "pt", "note": "honest"})
    daemon.ctl("import", make_model(os.path.join(tmp, "honest"), {"model.safetensors": st2}),
               "--name", "acme/honest")
    assert daemon.ctl("cat", "acme/honest", "model.safetensors", binary=True).out == st2
    rows = daemon.ctl("tensors", "acme/honest", "--json").json()
    assert [t["pack"] for t in rows] != [row["pack"]], rows
    bad = daemon.ctl("verify", "--json", check=False).json()
    assert not bad["ok"] and {e["name"] for e in bad["errors"]} == {"acme/liar"}, bad
    daemon.ctl("rm", "acme/liar")
    daemon.ctl("rm", "acme/honest")
    daemon.ctl("gc")


def test_tensors_stored_once_across_files_and_models(tmp, daemon):
    """DESIGN 2: two files or two models that share a tensor share its bytes.
    A repository shipping the same weights as safetensors and as a torch
    checkpoint stores them once; a second model reusing two of three big
    tensors stores only the new one; both survive rm + gc of the first,
    and everything reads back exactly (cat, open, export, verify)."""
    g = torch.Generator().manual_seed(21)
    sd = {"embed.weight": torch.randn(512, 512, generator=g),      # 1 MiB
          "layers.0.w": torch.randn(512, 256, generator=g),        # 512 KiB
          "norm": torch.randn(512, generator=g)}
    st = st_file(sd, {"format": "pt"})
    binp = os.path.join(tmp, "sd.bin")
    torch.save(sd, binp)
    pt = open(binp, "rb").read()
    src = make_model(os.path.join(tmp, "one"), {"model.safetensors": st,
                                                "pytorch_model.bin": pt, "config.json": b"{}"})
    daemon.ctl("import", src, "--name", "acme/one")
    weights = sum(v.numel() * 4 for v in sd.values())
    stored = blob_bytes(daemon.store)
    assert stored < weights * 1.25, (stored, weights)   # not 2x
    for path, data in (("model.safetensors", st), ("pytorch_model.bin", pt)):
        assert daemon.ctl("cat", "acme/one", path, binary=True).out == data, path
    rows = daemon.ctl("tensors", "acme/one", "--json").json()
    where = {(t["file"], t["name"]): t["pack"] for t in rows}
    assert where[("pytorch_model.bin", "embed.weight")] == where[("model.safetensors", "embed.weight")]
    for f in ("model.safetensors", "pytorch_model.bin", None):  # None: model.safetensors
        got = modeld.load_state_dict("acme/one", socket=daemon.sock, files=f and [f])
        assert set(got) == set(sd)
        for k, v in sd.items():
            assert torch.equal(got[k], v), (f, k)
    # a second model: two of the big tensors again, new metadata, one new tensor
    sd2 = dict(sd)
    sd2["layers.1.w"] = torch.randn(512, 256, generator=g)
    st2 = st_file(sd2, {"format": "pt", "note": "tuned"})
    src2 = make_model(os.path.join(tmp, "two"), {"model.safetensors": st2, "config.json": b"{}"})
    daemon.ctl("import", src2, "--name", "acme/two")
    grew = blob_bytes(daemon.store) - stored
    assert grew < 512 * 256 * 4 + 64 * 1024, grew
    # the first model goes (its tensors hold a lease); what the second refers to stays
    del got
    gc.collect()
    daemon.ctl("rm", "acme/one")
    daemon.ctl("gc")
    assert daemon.ctl("cat", "acme/two", "model.safetensors", binary=True).out == st2
    got = modeld.load_state_dict("acme/two", socket=daemon.sock)
    assert set(got) == set(sd2)
    for k, v in sd2.items():
        assert torch.equal(got[k], v), k
    v = daemon.ctl("verify", "--json").json()
    assert v["ok"], v
    out = os.path.join(tmp, "exp")
    daemon.ctl("export", "acme/two", "--format", "safetensors", "-o", out)
    with open(os.path.join(out, "model.safetensors"), "rb") as fh:
        raw = fh.read()
    hl = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + hl])
    a, b = hdr["embed.weight"]["data_offsets"]
    assert raw[8 + hl + a:8 + hl + b] == sd2["embed.weight"].numpy().tobytes()


def test_missing_referenced_pack_fails_clearly(tmp, daemon):
    """A pack another file's tensors live in, gone from the store (disk
    damage, a hand-made rm): cat, open and export fail in one line naming
    the file and the missing blob, verify reports it, and the model that
    holds the bytes itself is not affected."""
    g = torch.Generator().manual_seed(3)
    sd = {"a.weight": torch.randn(256, 256, generator=g), "b.weight": torch.randn(256, 256, generator=g)}
    daemon.ctl("import", make_model(os.path.join(tmp, "base"), {"model.safetensors": st_file(sd)}),
               "--name", "acme/base")
    sd2 = dict(sd, extra=torch.randn(16, generator=g))
    daemon.ctl("import", make_model(os.path.join(tmp, "tune"), {"model.safetensors": st_file(sd2)}),
               "--name", "acme/tune")
    rows = daemon.ctl("tensors", "acme/tune", "--json").json()
    held = {t["name"]: t["pack"] for t in rows}
    base = daemon.ctl("tensors", "acme/base", "--json").json()[0]["pack"]
    assert held["a.weight"] == base and held["extra"] != base
    blob = os.path.join(daemon.store, "blobs", "sha256", base[:2], base)
    os.rename(blob, blob + ".away")
    try:
        for args in (("cat", "acme/tune", "model.safetensors"),
                     ("export", "acme/tune", "--format", "safetensors", "-o", os.path.join(tmp, "x"))):
            r = daemon.ctl(*args, check=False, binary=True)
            err = r.err.decode()
            assert r.rc == 1 and err.count("\n") == 1, (args, r)
            assert "model.safetensors" in err and base[:12] in err, (args, err)
        with pytest.raises(modeld.ModeldError) as e:
            modeld.load_state_dict("acme/tune", socket=daemon.sock)
        assert "model.safetensors" in str(e.value), e.value
        v = daemon.ctl("verify", "acme/tune", "--json", check=False)
        assert v.rc == 1 and base in json.dumps(v.json()["errors"]), v
    finally:
        os.rename(blob + ".away", blob)
    assert daemon.ctl("cat", "acme/tune", "model.safetensors", binary=True).out == st_file(sd2)
    assert daemon.ctl("verify", "--json").json()["ok"]


def send_with_fds(path, obj, fds):
    """One request carrying descriptors (SCM_RIGHTS); the reply's payload."""
    import array
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(10)
    p = json.dumps(obj).encode()
    s.sendmsg([frame(p, nfds=len(fds))],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    c = modeld.Connection.__new__(modeld.Connection)
    c.sock, c.buf, c.fdq, c.bytes_received = s, bytearray(), [], 0
    msg, got = c.recv()
    for fd in got:
        os.close(fd)
    c.close()
    return msg


def test_refused_requests_do_not_leak_descriptors(tmp, daemon):
    """Descriptors sent along with a request the daemon refuses (an unknown
    operation, or a write from a user without write rights) are closed, not
    kept: a reader of the socket cannot run the daemon out of descriptors."""
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file({"w": torch.ones(3)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/p")
    gc.collect()
    before = settled_fds(daemon)
    fds = [os.open("/etc/hostname", os.O_RDONLY) for _ in range(3)]
    try:
        for _ in range(5):
            msg = send_with_fds(daemon.sock, {"op": "bogus"}, fds)
            assert msg["code"] == -8 and "unknown operation 'bogus'" in msg["error"], msg
    finally:
        for fd in fds:
            os.close(fd)
    assert wait_fds(daemon, before) == before, "descriptors of an unknown op kept"
    # a reader (not the daemon's user) asking for writes with descriptors
    os.chmod(daemon.sock, 0o666)
    code = ("import os, sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
            "from test_serve import send_with_fds\n"
            "fds = [os.open('/etc/hostname', os.O_RDONLY) for _ in range(3)]\n"
            "for obj in ({'op': 'import', 'name': 'acme/q', 'files': [{'path': 'x'}] * 3,"
            " 'more': False}, {'op': 'rm', 'ref': 'acme/p'}) * 5:\n"
            "    msg = send_with_fds(%r, obj, fds)\n"
            "    assert msg['code'] == -6 and 'permission denied' in msg['error'], msg\n"
            "print('refused')\n" % (os.path.dirname(os.path.abspath(__file__)),
                                    os.path.join(ROOT, "python"), daemon.sock))
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp, timeout=60)
    assert p.stdout.strip() == "refused", p.stdout + p.stderr
    assert wait_fds(daemon, before) == before, "descriptors of refused writes kept"
    assert "uid 65534 pid " in daemon.read_log()   # each refusal is logged with the peer
    daemon.ctl("rm", "acme/p")


def test_safe_open_parity_and_argument_checks(tmp, daemon):
    """What a safetensors user writes works the same: device=0 (safetensors'
    own examples), get_tensors(), every slice form, every dtype's name and
    shape on the slice object; a dtype torch lacks names the tensor; dtype=
    must be a floating-point torch dtype (or its name) and is checked before
    anything is opened; the socket is found through $XDG_RUNTIME_DIR."""
    from conftest import safetensors_bytes
    g = torch.Generator().manual_seed(11)
    w = torch.randn(6, 5, generator=g)
    raw = {"w": ("F32", [6, 5], w.numpy().tobytes()),
           "v": ("I64", [10], torch.arange(10, dtype=torch.int64).numpy().tobytes()),
           "f8": ("F8_E4M3", [2, 3], bytes(range(6))),
           "e5": ("F8_E5M2", [4], b"\x01\x02\x03\x04"),
           "mask": ("BOOL", [3], b"\x01\x00\x01"),
           "i16": ("I16", [2], b"\xff\xff\x02\x00"),
           "z": ("BF16", [3, 0], b""),
           "s": ("F64", [], struct.pack("<d", 2.5))}
    make_model(os.path.join(tmp, "m"), {"model.safetensors": safetensors_bytes(raw)})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/par")
    with modeld.safe_open("acme/par", framework="pt", device="cpu", socket=daemon.sock) as f:
        sl = f.get_slice("w")
        for idx in ((slice(None), slice(1, 3)), 0, -1, slice(None, None, 2), (slice(None), -1),
                    (Ellipsis, 2), slice(-3, None), (slice(1, 5, 2), slice(None, None, 3))):
            assert torch.equal(sl[idx], w[idx]), idx
        for k, (dt, shape, _) in raw.items():
            assert f.get_slice(k).get_dtype() == dt and f.get_slice(k).get_shape() == shape, k
        assert f.get_tensor("mask").tolist() == [True, False, True]
        assert f.get_tensor("i16").tolist() == [-1, 2]
        assert f.get_tensor("z").shape == (3, 0) and f.get_tensor("s").item() == 2.5
        if not hasattr(torch, "float8_e4m3fn"):
            with pytest.raises(TypeError, match="acme/par: tensor f8: dtype F8_E4M3 has no torch"):
                f.get_tensor("f8")
            with pytest.raises(TypeError, match="tensor f8"):
                f.get_tensors()
        else:
            assert f.get_tensors()["f8"].shape == (2, 3)
    raw.pop("f8"), raw.pop("e5")
    make_model(os.path.join(tmp, "n"), {"model.safetensors": safetensors_bytes(raw)})
    daemon.ctl("import", os.path.join(tmp, "n"), "--name", "acme/par2")
    with modeld.safe_open("acme/par2", framework="pt", socket=daemon.sock) as f:
        every = f.get_tensors()
        assert list(every) == f.offset_keys() and torch.equal(every["w"], w)
    # device as safetensors takes it: an int is a CUDA device
    with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
        modeld.safe_open("acme/par2", device=0, socket=daemon.sock)
    with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
        modeld.load_state_dict("acme/par2", device=0, socket=daemon.sock)
    # dtype=: a floating-point torch dtype or its name; nothing else
    for dt in (torch.float16, "float16", "torch.float16"):
        sd = modeld.load_state_dict("acme/par2", socket=daemon.sock, dtype=dt)
        assert sd["w"].dtype == torch.float16 and sd["v"].dtype == torch.int64, dt
        assert torch.equal(sd["w"], w.half())
    del sd
    for dt, exc, msg in ((torch.int8, ValueError, "not a floating-point type"),
                         ("float17", TypeError, "must be a torch dtype"),
                         (5, TypeError, "must be a torch dtype")):
        with pytest.raises(exc, match=msg):
            modeld.load_state_dict("acme/par2", socket=daemon.sock, dtype=dt)
    # the default socket: $XDG_RUNTIME_DIR/modeld.sock, as modelctl
    env = {k: v for k, v in os.environ.items() if k != "MODELD_SOCKET"}
    env["XDG_RUNTIME_DIR"] = os.path.dirname(daemon.sock)
    code = ("import sys; sys.path.insert(0, %r); import modeld\n"
            "print(modeld.default_socket(), modeld.load_state_dict('acme/par2')['v'].tolist())"
            % os.path.join(ROOT, "python"))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert p.stdout.split(None, 1) == [daemon.sock, str(list(range(10))) + "\n"], p
    # socket= as a path object, as open() takes one
    import pathlib
    assert modeld.load_state_dict("acme/par2", socket=pathlib.Path(daemon.sock))["v"][3] == 3
    gc.collect()
    daemon.ctl("rm", "acme/par")
    daemon.ctl("rm", "acme/par2")   # no lease left by the refused calls


USER_PROGRAM = r"""
#include <modeld.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	struct md_conn *c;
	struct md_model *m;
	int rc;
	(void)argc;
	if ((rc = md_connect(NULL, &c)) || (rc = md_open(c, argv[1], &m))) {
		printf("error %d %s: %s\n", rc, md_strerror(rc), md_errmsg(rc));
		return 1;
	}
	for (size_t i = 0; i < md_model_count(m); i++) {
		const struct md_tensor *t = md_model_tensor(m, i);
		const void *p;
		size_t n;
		if ((rc = md_tensor_map(m, t, &p, &n)))
			return 2;
		printf("%s %s %zu %u\n", t->name, t->dtype, n, n ? *(const unsigned char *)p : 0u);
	}
	md_close(m);
	md_disconnect(c);
	return 0;
}
"""


def test_libmodeld_installed_builds_with_pkg_config(tmp, daemon):
    """As a user builds against an installed libmodeld: make install
    PREFIX=P, then cc app.c $(pkg-config --cflags --libs modeld) with
    PKG_CONFIG_PATH=P/lib/pkgconfig. The pkg-config file must name P (not
    the prefix the tree happened to be built with), shared and static."""
    prefix = os.path.join(tmp, "pfx")
    p = subprocess.run(["make", "-s", "install", "PREFIX=" + prefix], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "modeld"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert "-I" + os.path.join(prefix, "include") in flags, flags
    assert "-L" + os.path.join(prefix, "lib") in flags, flags
    src = os.path.join(tmp, "app.c")
    with open(src, "w") as f:
        f.write(USER_PROGRAM)
    app = os.path.join(tmp, "app")
    subprocess.run(["cc", "-std=c17", "-Wall", "-Wextra", "-Werror", "-o", app, src] + flags +
                   ["-Wl,-rpath," + os.path.join(prefix, "lib")], check=True)
    static = subprocess.run(["pkg-config", "--static", "--cflags", "--libs", "modeld"], env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    app_static = os.path.join(tmp, "app_static")
    subprocess.run(["cc", "-std=c17", "-o", app_static, src,
                    os.path.join(prefix, "lib", "libmodeld.a")] +
                   [f for f in static if f != "-lmodeld"], check=True)
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file(
        {"w": torch.tensor([7, 8], dtype=torch.uint8), "e": torch.zeros(0, 2)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/pc")
    run_env = dict(os.environ, MODELD_SOCKET=daemon.sock)
    for exe in (app, app_static):
        r = subprocess.run([exe, "acme/pc"], env=run_env, capture_output=True, text=True)
        assert r.returncode == 0 and sorted(r.stdout.splitlines()) == ["e F32 0 0", "w U8 2 7"], r
        r = subprocess.run([exe, "acme/none"], env=run_env, capture_output=True, text=True)
        assert r.returncode == 1 and r.stdout == \
            "error -2 not found: acme/none: no such model\n", r
    daemon.ctl("rm", "acme/pc")


def test_64_clients_during_a_pull_no_fd_leak(tmp, daemon, tmp_path_factory):
    """Issue 5: 64 clients open and read models (Python and libmodeld alike)
    while a pull runs: all succeed, the pull too, and the daemon holds no
    more descriptors afterwards than before."""
    from test_pull import HUBD, Hub
    sys.path.insert(0, os.path.dirname(HUBD))
    import hubd
    root = str(tmp_path_factory.mktemp("hub"))
    hubd.make_model(os.path.join(root, "acme", "tiny"), torch_bin=False)
    hub = Hub(root)
    try:
        g = torch.Generator().manual_seed(64)
        models = small_models(daemon, tmp, g, 2, 128, 3)
        exe = md_check(tmp)
        gc.collect()
        before = settled_fds(daemon)
        pull = subprocess.Popen([os.path.join(BUILD, "modelctl"), "--socket", daemon.sock,
                                 "pull", "acme/tiny", "--hub", hub.url, "--limit-rate", "1M"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while not any(j["op"] == "pull" and j["state"] == "running"
                      for j in daemon.ctl("jobs", "--json").json()):
            assert time.time() - t0 < 30 and pull.poll() is None, pull.communicate()
            time.sleep(0.05)
        def client(i):
            name = "acme/c%d" % (i % 2)
            for _ in range(3):
                if i % 8 == 7:    # the C library
                    p = subprocess.run([exe, daemon.sock, name], capture_output=True,
                                       text=True, timeout=60)
                    assert p.returncode == 0 and p.stdout.endswith("closed\n"), p.stdout
                    continue
                with modeld.safe_open(name, socket=daemon.sock) as f:
                    for k, v in models[name].items():
                        assert torch.equal(f.get_tensor(k), v), (name, k)

        errors = run_together(64, client)
        running = pull.poll() is None
        out, err = pull.communicate(timeout=120)
        assert errors == []
        assert pull.returncode == 0, err
        assert running, "the pull ended before the clients did: nothing ran concurrently"
        gc.collect()
        assert wait_fds(daemon, before) == before
        assert daemon.ctl("verify", "--json").json()["ok"]
        for name in models:
            daemon.ctl("rm", name)   # no lease left behind
    finally:
        hub.stop()


def test_refused_opens_are_logged_with_the_peer(tmp, daemon):
    """Each open is logged with uid, pid and the model: the refused ones
    too (no such model, a bad name, a revision that is not there), one line
    each however long the reference."""
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file({"w": torch.ones(3)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/lg")
    me = "uid %d pid %d: open " % (os.getuid(), os.getpid())
    for ref, why in (("acme/none", "acme/none: no such model"),
                     ("acme/lg@deadbeef", "acme/lg@deadbeef: no such revision"),
                     ("not a name", "not a model name"),
                     ("acme/" + "x" * 100000, "not a model name")):
        with pytest.raises(modeld.ModeldError):
            modeld.load_state_dict(ref, socket=daemon.sock)
        lines = [l for l in daemon.read_log().splitlines() if me + ref[:50] in l]
        assert lines and "refused: " in lines[-1] and why in lines[-1], (ref[:60], lines)
        assert len(lines[-1]) < 1000
    # a name can say anything: it never starts a log line of its own
    with pytest.raises(modeld.ModeldError) as e:
        modeld.load_state_dict("acme/x\nmodeld: info: forged", socket=daemon.sock)
    assert "\n" not in str(e.value) and "not a model name" in str(e.value)
    assert not any(l.startswith("modeld: info: forged") for l in daemon.read_log().splitlines())
    assert me + "acme/x?modeld: info: forged refused" in daemon.read_log()
    sd = modeld.load_state_dict("acme/lg", socket=daemon.sock)
    assert me + "acme/lg@" in daemon.read_log()
    del sd


def test_close_lease_arguments(tmp, daemon):
    """close ends this connection's lease only; a lease that is not an
    integer is a bad argument, not 'lease 0: not held'."""
    make_model(os.path.join(tmp, "m"), {"model.safetensors": st_file({"w": torch.ones(3)})})
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/cl")
    a, b = modeld.Connection(daemon.sock), modeld.Connection(daemon.sock)
    try:
        res, _, fds = a.call({"op": "open", "ref": "acme/cl"})
        for fd in fds:
            os.close(fd)
        lease = res["lease"]
        for conn, req, code, msg in (
                (b, {"op": "close", "lease": lease}, -2, "not held by this connection"),
                (a, {"op": "close", "lease": str(lease)}, -1, "lease must be an integer"),
                (a, {"op": "close"}, -1, "lease must be an integer")):
            with pytest.raises(modeld.ModeldError) as e:
                conn.call(req)
            assert e.value.code == code and msg in str(e.value), (req, e.value)
        assert daemon.ctl("rm", "acme/cl", check=False).rc == 1     # still held
        assert a.call({"op": "close", "lease": lease})[0] == {"lease": lease, "closed": True}
        with pytest.raises(modeld.ModeldError):
            a.call({"op": "close", "lease": lease})
        daemon.ctl("rm", "acme/cl")
    finally:
        a.close()
        b.close()


def test_out_of_descriptors_does_not_spin(tmp):
    """With its descriptors used up by connections, the daemon leaves the
    next ones queued and waits (one warning), instead of spinning on a
    listening socket that stays readable; closing some lets them in."""
    from conftest import Daemon
    d = Daemon(tmp, wrap=["prlimit", "--nofile=40:40"]).start()
    socks = []
    try:
        for _ in range(60):
            s = socket.socket(socket.AF_UNIX)
            s.connect(d.sock)
            socks.append(s)
        time.sleep(0.5)
        stat = lambda: [int(x) for x in open("/proc/%d/stat" % d.proc.pid).read()
                        .rsplit(")", 1)[1].split()[11:13]]
        t0 = sum(stat())
        time.sleep(2)
        used = (sum(stat()) - t0) / os.sysconf("SC_CLK_TCK")
        assert used < 0.5, used   # a spinning loop takes ~2 s of CPU here
        for s in socks[:40]:
            s.close()
        del socks[:40]
        assert d.ctl("status", timeout=30).rc == 0
        log = d.read_log()
        assert 1 <= log.count("new connections wait") <= 3, log[-2000:]   # not a flood
        assert "connections accepted again" in log
    finally:
        for s in socks:
            s.close()
        assert d.stop() == 0


def test_one_user_cannot_take_every_connection(tmp, daemon):
    """Another user may hold 256 connections, not all 1024: the next are
    closed at once, and the daemon's own user still gets in."""
    os.chmod(daemon.sock, 0o666)
    code = ("import json, socket, struct, sys\n"
            "req = json.dumps({'op': 'status'}).encode()\n"
            "frame = b'MD' + struct.pack('<HII', 1, len(req), 0) + req\n"
            "socks, ok = [], 0\n"
            "for _ in range(300):\n"
            "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)\n"
            "for s in socks:\n"
            "    s.settimeout(10)\n"
            "    try:\n"
            "        s.sendall(frame); ok += len(s.recv(16)) > 0\n"
            "    except OSError:\n"
            "        pass\n"
            "print(ok)\n"
            "sys.stdout.flush()\n"
            "sys.stdin.read()\n")
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          sys.executable, "-c", code, daemon.sock], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=tmp)
    try:
        assert int(p.stdout.readline()) == 256
        assert daemon.ctl("status").rc == 0   # held open by nobody meanwhile
    finally:
        p.communicate("", timeout=30)
    assert "connection from uid 65534 refused: it has 256 open" in daemon.read_log()



def test_default_files_are_what_from_pretrained_reads(daemon, tmp):
    """Without files=, a load reads the model once: the transformers shards,
    not the same model again as consolidated.safetensors or under
    original/ (real torch.save); files= still picks any of them."""
    g = torch.Generator().manual_seed(3)
    hf = {"model.embed_tokens.weight": torch.randn(50, 8, generator=g),
          "model.norm.weight": torch.randn(8, generator=g)}
    meta = {"tok_embeddings.weight": hf["model.embed_tokens.weight"], "norm.weight": hf["model.norm.weight"]}
    pth = os.path.join(tmp, "c.pth")
    torch.save(meta, pth)
    src = make_model(os.path.join(tmp, "m"), {
        "model-00001-of-00002.safetensors": st_file({"model.embed_tokens.weight": hf["model.embed_tokens.weight"]}),
        "model-00002-of-00002.safetensors": st_file({"model.norm.weight": hf["model.norm.weight"]}),
        "consolidated.safetensors": st_file(meta), "original/consolidated.00.pth": open(pth, "rb").read(),
        "config.json": b"{}"})
    daemon.ctl("import", src, "--name", "acme/mistral")
    sd = modeld.load_state_dict("acme/mistral", socket=daemon.sock)
    assert sorted(sd) == sorted(hf) and all(torch.equal(sd[k], v) for k, v in hf.items())
    with modeld.safe_open("acme/mistral", socket=daemon.sock) as f:
        assert f.keys() == sorted(hf)
    for files, want in ((["consolidated.safetensors"], meta), (["original/*"], meta)):
        got = modeld.load_state_dict("acme/mistral", socket=daemon.sock, files=files)
        assert sorted(got) == sorted(want) and all(torch.equal(got[k], v) for k, v in want.items())
    # both naming schemes side by side; every file has one tensor name twice
    assert sorted(modeld.load_state_dict("acme/mistral", socket=daemon.sock,
                                         files=["model-*", "consolidated.*"])) == sorted(list(hf) + list(meta))
    with pytest.raises(modeld.ModeldError, match="is in both consolidated.safetensors and original/"):
        modeld.load_state_dict("acme/mistral", socket=daemon.sock, files=["*"])
