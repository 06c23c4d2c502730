"""Fixtures for the integration tests: a real modeld on a temporary store and
socket, and modelctl run as a subprocess (the contract users see).

MODELD_BUILD selects the build directory (default build/; build/asan works).
MODELD_VALGRIND=1 runs every daemon under valgrind (slow)."""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("MODELD_BUILD", "build"))
MODELD = os.path.join(BUILD, "modeld")
MODELCTL = os.path.join(BUILD, "modelctl")


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[:500]!r} err={self.err[:500]!r}>"


class Daemon:
    def __init__(self, tmp, extra=(), valgrind=None, user=None, store=None, env=None, wrap=()):
        self.tmp = tmp
        self.store = store or os.path.join(tmp, "store")
        self.sock = os.path.join(tmp, "modeld.sock")
        self.log = os.path.join(tmp, "modeld.log")
        self.extra = list(extra)
        self.valgrind = os.environ.get("MODELD_VALGRIND") == "1" if valgrind is None else valgrind
        self.user = user
        self.env = env  # extra environment for the daemon only
        self.wrap = list(wrap)  # a command the daemon runs under (prlimit ...)
        self.proc = None

    def start(self, wait=True):
        cmd = [MODELD, "-f", "--store", self.store, "--socket", self.sock,
               "--log-level", "debug"] + self.extra
        if self.valgrind:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--track-fds=no",
                   "--log-file=" + self.log + ".vg"] + cmd
        if self.user:
            cmd = ["setpriv", "--reuid=" + self.user, "--regid=" + ("nogroup" if self.user == "nobody" else self.user),
                   "--clear-groups"] + cmd
        cmd = self.wrap + cmd
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf,
                                     env=dict(os.environ, **self.env) if self.env else None)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("modeld exited: " + self.read_log())
            r = self.ctl("status", check=False)
            if r.rc == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("modeld not ready: " + self.read_log())

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def ctl(self, *args, check=True, user=None, input=None, timeout=120, binary=False):
        cmd = [MODELCTL, "--socket", self.sock] + [str(a) for a in args]
        if user:
            cmd = ["setpriv", "--reuid=" + user, "--regid=" + ("nogroup" if user == "nobody" else user), "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=not binary, input=input,
                           timeout=timeout)
        r = Result(p)
        if check and r.rc != 0:
            raise AssertionError(f"modelctl {' '.join(map(str, args))} failed: {r}")
        return r

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="modeld-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def small_fs(tmp):
    """A 24 MiB tmpfs under tmp, for full-disk tests (skipped where mount is
    not allowed)."""
    mt = os.path.join(tmp, "mt")
    os.mkdir(mt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mt],
                       capture_output=True, text=True)
    if m.returncode:
        pytest.skip("cannot mount a small tmpfs here: " + m.stderr.strip())
    yield mt
    subprocess.run(["umount", "-l", mt])


@pytest.fixture
def daemon(tmp):
    d = Daemon(tmp).start()
    yield d
    rc = d.stop()
    if d.valgrind:
        assert rc == 0, "valgrind reported errors: " + open(d.log + ".vg").read()[-3000:]


def read_safetensors(p):
    """{name: bytes} of a safetensors file, read independently of our code."""
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    base = 8 + n
    return {k: raw[base + v["data_offsets"][0]: base + v["data_offsets"][1]] for k, v in hdr.items()}


def make_model(path, files):
    """files: {relpath: bytes}"""
    for rel, data in files.items():
        p = os.path.join(path, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return path


def blob_bytes(store):
    """Bytes of every blob file in a store."""
    n = 0
    for d, _, fs in os.walk(os.path.join(store, "blobs")):
        n += sum(os.path.getsize(os.path.join(d, f)) for f in fs)
    return n


def safetensors_bytes(tensors):
    """tensors: {name: (dtype, shape, bytes)} -> a valid safetensors file."""
    hdr, off, data = {}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tiny_llama(path, seed=0, weights=1 << 20):
    rnd = os.urandom if seed is None else random.Random(seed).randbytes
    half = weights // 2
    st = safetensors_bytes({"embed.weight": ("U8", [half], rnd(half)),
                            "lm_head.weight": ("U8", [weights - half], rnd(weights - half))})
    return make_model(path, {
        "config.json": b'{"architectures":["LlamaForCausalLM"],"hidden_size":64}\n',
        "tokenizer.json": b'{"version":"1.0"}\n',
        "README.md": b"---\nlicense: apache-2.0\n---\n# tiny\n",
        "model.safetensors": st,
        "sub/notes.txt": b"hello\n",
    })


def raw_call(sock, req):
    """One request to the daemon's socket as a client that skips modelctl's
    checks would send it (docs/protocol.md framing); the reply document."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    b = json.dumps(req).encode()
    s.sendall(b"MD" + struct.pack("<HII", 1, len(b), 0) + b)
    h = s.recv(12, socket.MSG_WAITALL)
    n = struct.unpack("<I", h[4:8])[0]
    msg = json.loads(s.recv(n, socket.MSG_WAITALL))
    s.close()
    return msg
