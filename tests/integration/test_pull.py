"""modelctl pull against the fixture hub (tests/fixtures/hubd.py) on
loopback: the happy path, every fault, tokens, resume after kill -9, shared
and deduplicated transfers."""
import hashlib
import json
import os
import re
import shutil
import socket
import signal
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import MODELCTL, MODELD, ROOT, Daemon, blob_bytes, raw_call, safetensors_bytes

PY = "/usr/bin/python3"
HUBD = os.path.join(ROOT, "tests/fixtures/hubd.py")
_models = {}


class Hub:
    def __init__(self, root):
        self.root = root
        self.p = subprocess.Popen([PY, HUBD, "--root", root, "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.p.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def ctl(self, path):
        with urllib.request.urlopen(self.url + "/_ctl/" + path) as r:
            return r.read()

    def fault(self, name, count=1, match="*", arg=""):
        self.ctl(f"fault?name={name}&count={count}&match={urllib.request.quote(match)}&arg={arg}")

    def log(self):
        return json.loads(self.ctl("log"))

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def wait_job(daemon, job, timeout=10):
    """The job's last record once it is no longer running (or at timeout)."""
    st = []
    for _ in range(int(timeout / 0.1)):
        st = [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == job]
        if st and st[-1]["state"] in ("canceled", "failed", "done"):
            break
        time.sleep(0.1)
    return st[-1] if st else {"state": None}


def asked_bytes(hub, show, suffix=""):
    """Bytes the hub's log shows asked for by downloads of files ending in
    suffix (ranged or whole; sizes from `show --json`), and their names."""
    asked, names = 0, set()
    for e in hub.log():
        if e["method"] != "GET" or "/resolve/" not in e["path"] or not e["path"].endswith(suffix):
            continue
        name = e["path"].rsplit("/", 1)[-1]
        names.add(name)
        size = [f["size"] for f in show["files"] if f["path"] == name][0]
        if e["range"]:
            a, b = e["range"].split("=")[1].split("-")
            asked += (int(b) if b else size - 1) - int(a) + 1
        else:
            asked += size
    return asked, names


@pytest.fixture(scope="module")
def hubroot(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hub"))
    subprocess.run([PY, HUBD, "--root", root, "--make", "--export", os.path.join(root, ".x")],
                   check=True, capture_output=True, timeout=300)
    shutil.rmtree(os.path.join(root, ".x"), ignore_errors=True)
    return root


@pytest.fixture
def hub(hubroot):
    h = Hub(hubroot)
    yield h
    h.stop()


def originals(hubroot, repo):
    out = {}
    base = os.path.join(hubroot, repo)
    for d, _, fs in os.walk(base):
        for f in fs:
            if f.startswith(".hubd"):
                continue
            p = os.path.join(d, f)
            out[os.path.relpath(p, base)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def check_pulled(daemon, hubroot, repo="acme/tiny"):
    show = daemon.ctl("show", repo, "--json").json()
    got = {f["path"]: f["sha256"] for f in show["files"]}
    want = originals(hubroot, repo)
    assert got == {k: v for k, v in want.items() if k in got} and set(got) >= set(want) - {".gitattributes"}
    for path in got:
        data = daemon.ctl("cat", repo, path, binary=True).out
        assert hashlib.sha256(data).hexdigest() == got[path], path
    assert daemon.ctl("verify", "--json").json()["ok"]
    return show


def test_pull_happy_path(daemon, hub, hubroot):
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--json").json()
    assert len(r["revision"]) == 40 and r["file_count"] >= 10
    show = check_pulled(daemon, hubroot)
    assert show["source"]["type"] == "hub" and show["source"]["commit"] == r["revision"]
    prov = show["provenance"]
    assert prov["repo_id"] == "acme/tiny" and prov["commit"] == r["revision"]
    assert prov["requested_revision"] == "main" and prov["modeld_version"]
    kinds = {f["path"]: f["verified_against"] for f in prov["files"]}
    assert kinds["model-00001-of-00002.safetensors"] == "LFS sha256"
    assert show["license"]["spdx"] == "Apache-2.0"
    fmts = {f["path"]: f.get("format") for f in show["files"]}
    assert fmts["pytorch_model.bin"] == "torch" and fmts["model-00001-of-00002.safetensors"] == "safetensors"
    # progress ends at exactly the total (each byte counted once)
    job = [j for j in daemon.ctl("jobs", "--json").json() if j.get("op") == "pull"][-1]
    assert job["done"] == job["total"] and job["total"] == sum(f["size"] for f in show["files"]), job
    # pinned: the same pull again downloads nothing
    n = len(hub.log())
    r2 = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--json").json()
    assert r2["revision"] == r["revision"] and r2.get("existed")
    assert not [e for e in hub.log()[n:] if "/resolve/" in e["path"]]
    # pull by tag and by commit pin the same revision
    assert daemon.ctl("pull", "acme/tiny@v1.0", "--hub", hub.url, "--json").json()["revision"] == r["revision"]
    assert "v1.0" in daemon.ctl("show", "acme/tiny@v1.0", "--json").json()["refs"]


def test_hf_endpoint_and_include_exclude(tmp, hub, hubroot):
    d = Daemon(tmp).start()
    try:
        env = dict(os.environ, HF_ENDPOINT=hub.url)
        p = subprocess.run([MODELCTL, "--socket", d.sock, "pull", "acme/tiny", "--include", "*.json",
                            "--include", "*.safetensors", "--exclude", "tokenizer*", "--json"],
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        paths = {f["path"] for f in d.ctl("show", "acme/tiny", "--json").json()["files"]}
        assert "config.json" in paths and "model-00001-of-00002.safetensors" in paths
        assert "tokenizer.json" not in paths and "pytorch_model.bin" not in paths
    finally:
        d.stop()


def test_config_rate_cap_holds_and_limit_rate_0_lifts_it(tmp, hub):
    """limit_rate in modeld.conf caps a pull's download rate; --limit-rate 0
    lifts the cap for one pull (as curl's --limit-rate 0 does), where it used
    to be refused, leaving no way past a configured cap."""
    cfg = os.path.join(tmp, "modeld.conf")
    with open(cfg, "w") as f:
        f.write("limit_rate = 2M\n")
    d = Daemon(tmp, extra=["--config", cfg]).start()
    try:
        args = ("pull", "acme/tiny", "--hub", hub.url, "--include", "*.safetensors")
        t0 = time.monotonic()
        d.ctl(*args, timeout=60)
        capped = time.monotonic() - t0
        size = sum(f["size"] for f in d.ctl("show", "acme/tiny", "--json").json()["files"])
        assert size > 6 << 20 and capped >= 0.8 * size / (2 << 20), (size, capped)
        d.ctl("rm", "acme/tiny")
        d.ctl("gc")
        t0 = time.monotonic()
        d.ctl(*args, "--limit-rate", "0", timeout=60)
        free = time.monotonic() - t0
        assert free < capped / 2, (free, capped)
        # a negative cap from a client that skips modelctl's parser
        r = raw_call(d.sock, {"op": "pull", "ref": "acme/tiny", "hub": hub.url, "limit_rate": -1})
        assert not r["ok"] and "limit_rate" in r["error"], r
    finally:
        d.stop()


@pytest.mark.parametrize("fault,arg,count", [
    ("reset", "", 2), ("status", "500", 3), ("429", "1", 1), ("truncate", "", 2),
    ("corrupt", "", 1), ("redirect", "relative", -1), ("drip", "2000000", 1),
])
def test_faults_recovered(daemon, hub, hubroot, fault, arg, count):
    hub.fault(fault, count=count, match="*.safetensors", arg=arg)
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "-q")
    assert r.rc == 0, r
    check_pulled(daemon, hubroot)


@pytest.mark.parametrize("fault,arg,expect", [
    ("corrupt", "", "model-0000"),
    ("status", "502", "model-0000"),
])
def test_faults_fail_clearly_nothing_committed(daemon, hub, fault, arg, expect):
    hub.fault(fault, count=-1, match="*.safetensors", arg=arg)
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "-q", check=False, timeout=300)
    assert r.rc == 1 and expect in r.err and r.err.count("\n") == 1, r
    assert daemon.ctl("list", "--json").json() == []


def test_hostile_weight_fails_pull_while_others_download(daemon, hubroot):
    """Weight files are converted as soon as each is verified, while the rest
    downloads: a hostile one (its LFS sha256 right) fails the pull with the
    converter's one-line message naming it, nothing is committed, and the
    daemon goes on serving."""
    base = os.path.join(hubroot, "acme", "hostile")
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "model-00001-of-00002.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", 4 << 30) + b"{}" + b" " * 62)
    with open(os.path.join(base, "model-00002-of-00002.safetensors"), "wb") as f:
        f.write(safetensors_bytes({"w": ("F32", [1 << 20], os.urandom(4 << 20))}))
    with open(os.path.join(base, "config.json"), "wb") as f:
        f.write(b"{}")
    hub = Hub(hubroot)   # started after the repository is written: it scans at start
    try:
        hub.fault("drip", count=-1, match="*00002-of*", arg="1000000")   # ~4 s
        t0 = time.monotonic()
        r = daemon.ctl("pull", "acme/hostile", "--hub", hub.url, check=False, timeout=300)
        took = time.monotonic() - t0
    finally:
        hub.stop()
    shutil.rmtree(base)
    assert r.rc == 1 and r.err.count("\n") == 1, r
    assert "model-00001-of-00002.safetensors" in r.err and "header" in r.err, r
    assert took < 3.5, f"the failed conversion did not stop the other download ({took:.1f}s)"
    assert daemon.ctl("list", "--json").json() == []
    assert daemon.ctl("status", "--json").json()


def test_pull_over_https_http2_with_ca_file(tmp, hubroot):
    """An HTTPS hub (nginx on loopback, TLS + HTTP/2, a certificate no system
    CA signed): with ca_file naming it the pull negotiates HTTP/2 and stores
    the right bytes; without it the pull fails on the certificate, one line,
    nothing stored."""
    if not shutil.which("nginx") or not shutil.which("openssl"):
        pytest.skip("needs nginx and openssl")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    www, ng = os.path.join(tmp, "www"), os.path.join(tmp, "ng")
    os.makedirs(os.path.join(ng, "tmp"))
    subprocess.run([PY, HUBD, "--root", hubroot, "--export", www], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([PY, os.path.join(ROOT, "bench/pull/gen_nginx.py"), ng, str(port), www,
                    os.path.join(www, "meta-acme--tiny.json"), "acme/tiny"],
                   env=dict(os.environ, TLS_CERT=cert, TLS_KEY=key), check=True)
    subprocess.run(["nginx", "-p", ng, "-c", os.path.join(ng, "nginx.conf"), "-e",
                    os.path.join(ng, "error.log")], check=True)
    url = f"https://127.0.0.1:{port}"
    for sub in ("a", "b"):
        os.makedirs(os.path.join(tmp, sub))
    try:
        plain = Daemon(os.path.join(tmp, "a")).start()
        try:
            r = plain.ctl("pull", "acme/tiny", "--hub", url, check=False)
            assert r.rc == 1 and r.err.count("\n") == 1 and "certificate" in r.err.lower(), r
            print("without ca_file:", r.err.strip())
            assert plain.ctl("list", "--json").json() == []
        finally:
            plain.stop()
        conf = os.path.join(tmp, "modeld.conf")
        with open(conf, "w") as f:
            f.write(f"ca_file = {cert}\n")
        d = Daemon(os.path.join(tmp, "b"), extra=["--config", conf]).start()
        try:
            d.ctl("pull", "acme/tiny", "--hub", url)
            check_pulled(d, hubroot)
        finally:
            d.stop()
        protos = [l.split()[0] for l in open(os.path.join(ng, "access.log")) if "/resolve/" in l]
        assert protos and set(protos) == {"HTTP/2.0"}, protos
    finally:
        with open(os.path.join(ng, "nginx.pid")) as f:
            os.kill(int(f.read()), signal.SIGTERM)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("ca_file = /nonexistent/ca.pem\n")
    r = subprocess.run([MODELD, "--config", bad, "-n",
                        "--store", os.path.join(tmp, "c")], capture_output=True, text=True)
    assert r.returncode == 1 and "ca_file /nonexistent/ca.pem" in r.stderr, r.stderr


def test_token_never_leaves_the_hub(daemon, hub, tmp):
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("hf_good\n")
    hub.fault("redirect", count=-1, match="*.safetensors", arg="cross")
    r = daemon.ctl("pull", "acme/gated", "--hub", hub.url, "--token-file", tok)
    assert r.rc == 0
    log = hub.log()
    assert any(e["host"].startswith("localhost") for e in log)
    for e in log:
        if e["host"].startswith("localhost"):
            assert e["auth"] is None, e
    assert any(e["auth"] == "Bearer hf_good" for e in log if e["host"].startswith("127.0.0.1"))
    assert "hf_good" not in daemon.read_log()
    assert "hf_good" not in json.dumps(daemon.ctl("show", "acme/gated", "--json").json())
    assert b"hf_good" not in open(os.path.join(daemon.store, "catalog", "data.mdb"), "rb").read()


def test_gated_unknown_and_revision_errors(daemon, hub, tmp):
    r = daemon.ctl("pull", "acme/gated", "--hub", hub.url, check=False)
    assert r.rc == 1 and r.err == "modelctl: acme/gated: gated repository, accept its terms and set HF_TOKEN\n"
    env = dict(os.environ, HF_TOKEN="hf_nogate")
    p = subprocess.run([MODELCTL, "--socket", daemon.sock, "pull", "acme/gated", "--hub", hub.url],
                       env=env, capture_output=True, text=True)
    # a token was given: telling the user to set HF_TOKEN would mislead
    assert p.returncode == 1 and p.stderr == (
        "modelctl: acme/gated: gated repository, the token given has no access: "
        "accept its terms with the token's account\n"), p.stderr
    r = daemon.ctl("pull", "acme/none", "--hub", hub.url, check=False)
    assert r.rc == 1 and "acme/none" in r.err and "not found" in r.err
    r = daemon.ctl("pull", "acme/tiny@v9", "--hub", hub.url, check=False)
    assert r.rc == 1 and "acme/tiny@v9: revision not found" in r.err
    assert daemon.ctl("list", "--json").json() == []


def test_tree_pagination(daemon, hub, hubroot):
    hub.fault("page", count=-1, match="absolute", arg="2")
    daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
    check_pulled(daemon, hubroot)
    assert sum(1 for e in hub.log() if "/tree/" in e["path"]) >= 4


def test_tree_listing_that_lacks_files_the_model_info_names(daemon, hub, hubroot):
    """A mirror whose tree listing lost files (siblings still name them)
    fails the pull naming one; nothing is stored as the whole commit."""
    hub.fault("omit", count=-1, match="model-00002-of-00002.safetensors")
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, check=False)
    assert r.rc == 1 and re.fullmatch(
        r"modelctl: acme/tiny@[0-9a-f]{40}: the hub's tree listing lacks 1 of the \d+ files its "
        r"model info names \(model-00002-of-00002.safetensors\); nothing stored\n", r.err), r
    assert daemon.ctl("list", "--json").json() == []
    assert not [e for e in hub.log() if "/resolve/" in e["path"]]
    hub.ctl("reset")
    daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
    check_pulled(daemon, hubroot)


def hub_with_copy(hubroot, name):
    """acme/tiny copied to acme/NAME (same LFS objects), and a hub started
    over it (the hubroot fixture's hub predates the copy): stop it after."""
    dst = os.path.join(hubroot, "acme", name)
    if not os.path.exists(dst):
        shutil.copytree(os.path.join(hubroot, "acme", "tiny"), dst)
    return Hub(hubroot)


def test_second_model_with_same_weights_downloads_nothing(daemon, hubroot):
    hub = hub_with_copy(hubroot, "tiny-copy")
    try:
        _second_model(daemon, hub, hubroot)
    finally:
        hub.stop()


def _second_model(daemon, hub, hubroot):
    daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
    n = len(hub.log())
    daemon.ctl("pull", "acme/tiny-copy", "--hub", hub.url)
    fetched = [e["path"] for e in hub.log()[n:] if "/resolve/" in e["path"]]
    assert not [p for p in fetched if p.endswith((".safetensors", ".bin"))], fetched
    check_pulled(daemon, hubroot, "acme/tiny-copy")


def test_rm_and_gc_during_a_pull_that_reuses_stored_weights(daemon, hubroot):
    """A pull takes the weights of another model from the store; that model
    is removed and gc'd while the pull still downloads a small file. The
    pull holds on to what it took, completes, and everything reads back."""
    hub = hub_with_copy(hubroot, "tiny-race")
    try:
        daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
        size = os.path.getsize(os.path.join(hubroot, "acme", "tiny-race", "config.json"))
        hub.fault("drip", count=-1, match="config.json", arg=str(max(1, size // 4)))  # ~4 s
        n = len(hub.log())
        r = daemon.ctl("pull", "acme/tiny-race", "--hub", hub.url, "--detach", "--json").json()
        for _ in range(100):
            if [e for e in hub.log()[n:] if e["path"].endswith("/config.json")]:
                break
            time.sleep(0.05)
        gone = daemon.ctl("rm", "acme/tiny", "--json").json()
        assert gone["blobs_freed"] > 0, gone
        daemon.ctl("gc")
        st = wait_job(daemon, r["job"], timeout=60)
        assert st["state"] == "done", st
        fetched = [e["path"] for e in hub.log()[n:] if "/resolve/" in e["path"]]
    finally:
        hub.stop()
    assert not [p for p in fetched if p.endswith((".safetensors", ".bin"))], fetched
    check_pulled(daemon, hubroot, "acme/tiny-race")
    daemon.ctl("rm", "acme/tiny-race")
    daemon.ctl("gc")


def test_refused_pickle_names_the_way_to_pull_the_rest(daemon, hubroot):
    """A repository shipping a pickle that is no state_dict (transformers'
    training_args.bin is torch.save of an object) is refused, naming the
    global, and the message says how to pull the rest; that pull works."""
    dst = os.path.join(hubroot, "acme", "trained")
    if not os.path.exists(dst):
        shutil.copytree(os.path.join(hubroot, "acme", "tiny"), dst)
        subprocess.run([PY, "-c", "import argparse, sys, torch; "
                        "torch.save(argparse.Namespace(lr=0.1), sys.argv[1])",
                        os.path.join(dst, "training_args.bin")], check=True, timeout=120)
    hub = Hub(hubroot)
    try:
        r = daemon.ctl("pull", "acme/trained", "--hub", hub.url, check=False)
        assert r.rc == 1 and r.err.count("\n") == 1, r
        assert "training_args.bin: refused: global argparse.Namespace" in r.err, r.err
        assert "(--exclude training_args.bin pulls the rest)" in r.err, r.err
        assert daemon.ctl("list", "--json").json() == []
        daemon.ctl("pull", "acme/trained", "--hub", hub.url, "--exclude", "training_args.bin")
    finally:
        hub.stop()
    show = daemon.ctl("show", "acme/trained", "--json").json()
    assert "training_args.bin" not in {f["path"] for f in show["files"]}
    assert show["provenance"]["exclude"] == ["training_args.bin"]
    daemon.ctl("rm", "acme/trained")


def test_wrong_size_refused_when_the_sha256_is_already_stored(daemon, hubroot):
    # a listing that names a stored LFS object with another size is refused,
    # not satisfied from the store
    hub = hub_with_copy(hubroot, "tiny-copy2")
    try:
        daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
        lfs = [f for f in daemon.ctl("show", "acme/tiny", "--json").json()["files"]
               if f["path"].endswith(".safetensors")][0]
        entry = {"type": "file", "oid": "1" * 40, "size": lfs["size"] + 7, "path": "extra.safetensors",
                 "lfs": {"oid": lfs["sha256"], "size": lfs["size"] + 7, "pointerSize": 130}}
        hub.fault("inject", arg=urllib.request.quote(json.dumps(entry)))
        r = daemon.ctl("pull", "acme/tiny-copy2", "--hub", hub.url, check=False)
        assert r.rc == 1, r.err
        assert "extra.safetensors" in r.err and "size" in r.err and str(lfs["size"] + 7) in r.err, r.err
        assert "acme/tiny-copy2" not in daemon.ctl("list").out
    finally:
        hub.stop()


def test_concurrent_pulls_share(daemon, hub, hubroot):
    hub.fault("drip", count=2, match="*.safetensors", arg="3000000")
    out = []
    ts = [threading.Thread(target=lambda: out.append(daemon.ctl("pull", "acme/tiny", "--hub", hub.url,
                                                                 "--json", check=False)))
          for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert [r.rc for r in out] == [0, 0]
    assert out[0].json()["revision"] == out[1].json()["revision"]
    gets = [e for e in hub.log() if e["path"].endswith("model-00001-of-00002.safetensors")
            and e["method"] == "GET"]
    ranges = sorted(e["range"] or "" for e in gets)
    assert len(ranges) == len(set(ranges)), ranges   # no byte range fetched twice
    check_pulled(daemon, hubroot)


def test_kill9_mid_pull_resumes(tmp, hub, hubroot):
    store = os.path.join(tmp, "store")
    d = Daemon(tmp, store=store).start()
    hub.fault("drip", count=-1, match="*.safetensors", arg="300000")
    p = subprocess.Popen([MODELCTL, "--socket", d.sock, "-q", "pull", "acme/tiny", "--hub", hub.url],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    d.kill9()
    p.wait(30)
    before = {}
    for e in hub.log():
        if e["method"] == "GET" and e["path"].endswith(".safetensors"):
            before.setdefault(e["path"], []).append(e["range"])
    hub.ctl("reset")
    d2 = Daemon(tmp, store=store).start()
    try:
        d2.ctl("gc")   # an interrupted pull is resume state, not garbage
        d2.ctl("pull", "acme/tiny", "--hub", hub.url)
        check_pulled(d2, hubroot)
        after = [e for e in hub.log() if e["method"] == "GET" and e["path"].endswith(".safetensors")]
        # the resumed pull asks for ranges that start past 0 for what was begun
        assert any(e["range"] and not e["range"].startswith("bytes=0-") for e in after), after
        v = d2.ctl("verify", "--json").json()
        assert v["ok"] and v["stale_staging"] == 0
    finally:
        d2.stop()


@pytest.mark.parametrize("how", ["kill9", "cancel"])
def test_interrupted_pull_keeps_what_it_stored(tmp, hub, hubroot, how):
    """Files are stored (weights converted) while others still download; a
    pull killed or canceled then keeps them for the next run, which fetches
    only what was missing (resuming the partial file)."""
    store = os.path.join(tmp, "store")
    d = Daemon(tmp, store=store).start()
    hub.fault("drip", count=-1, match="*00002-of*", arg="200000")   # ~15 s
    r = d.ctl("pull", "acme/tiny", "--hub", hub.url, "--detach", "--json").json()
    for _ in range(300):
        if "model-00001-of-00002.safetensors stored in" in d.read_log():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("shard 1 never stored: " + d.read_log()[-2000:])
    time.sleep(2)   # shard 2's resume state is written every second
    if how == "kill9":
        d.kill9()
    else:
        d.ctl("cancel", r["job"])
        assert wait_job(d, r["job"])["state"] == "canceled"
        d.stop()
    hub.ctl("reset")
    d2 = Daemon(tmp, store=store).start()
    try:
        d2.ctl("gc")
        d2.ctl("pull", "acme/tiny", "--hub", hub.url)
        check_pulled(d2, hubroot)
        got = [e for e in hub.log() if e["method"] == "GET" and "/resolve/" in e["path"]]
        paths = {e["path"].rsplit("/", 1)[-1] for e in got}
        assert paths == {"model-00002-of-00002.safetensors"}, paths
        assert all(e["range"] and not e["range"].startswith("bytes=0-") for e in got), [e["range"] for e in got]
        prov = {f["path"]: f["verified_against"] for f in
                d2.ctl("show", "acme/tiny", "--json").json()["provenance"]["files"]}
        assert "interruption" in prov["model-00001-of-00002.safetensors"], prov
        v = d2.ctl("verify", "--json").json()
        assert v["ok"] and v["stale_staging"] == 0, v
    finally:
        d2.stop()
        hub.stop()


def test_kill9_mid_multigigabyte_pull_resumes(tmp_path_factory):
    """kill -9 half-way through a 2 GiB pull (4 shards, converted as they
    arrive), restart, pull again: it completes, asks the hub only for what it
    had not stored (at most the last second's bytes again, since resume state
    is written every second), and no stored shard is fetched twice."""
    root = str(tmp_path_factory.mktemp("bighub"))
    subprocess.run([PY, HUBD, "--root", root, "--make-big", os.path.join(root, "acme", "big"),
                    "--size-mb", "2048", "--shards", "4"], check=True, timeout=600,
                   capture_output=True)
    hub = Hub(root)
    tmp = str(tmp_path_factory.mktemp("bigpull"))
    store = os.path.join(tmp, "store")
    d = Daemon(tmp, store=store).start()
    try:
        r = d.ctl("pull", "acme/big", "--hub", hub.url, "--detach", "--json").json()
        job = None
        for _ in range(6000):
            js = [j for j in d.ctl("jobs", "--json").json() if j["id"] == r["job"]]
            if js and js[-1]["total"] and js[-1]["done"] >= js[-1]["total"] // 2:
                job = js[-1]
                break
            time.sleep(0.02)
        assert job and job["state"] == "running", job
        d.kill9()
        stored = re.findall(r"pull: (\S+) stored in", d.read_log())
        total, done = job["total"], job["done"]
        assert total > 2 << 30
        hub.ctl("reset")
        d2 = Daemon(tmp, store=store).start()
        try:
            d2.ctl("pull", "acme/big", "--hub", hub.url, timeout=600)
            show = d2.ctl("show", "acme/big", "--json").json()
            assert show["total_size"] == total
            asked, paths = asked_bytes(hub, show)
            assert not paths & set(stored), (paths, stored)
            assert asked < total - done + (640 << 20), (asked, total, done)
            assert d2.ctl("verify", "acme/big", "--json").json()["ok"]
        finally:
            d2.stop()
    finally:
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_cancel_keeps_nothing_visible(daemon, hub):
    hub.fault("drip", count=-1, match="*.safetensors", arg="500000")
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--detach", "--json").json()
    time.sleep(1)
    daemon.ctl("cancel", r["job"])
    assert wait_job(daemon, r["job"])["state"] == "canceled"
    assert daemon.ctl("list", "--json").json() == []


def test_cancel_ends_a_hub_api_retry_wait(daemon, hub):
    """A hub answering 503 with Retry-After: 30 to the resolve: cancel ends
    the pull at once, not after the wait (nor after the attempts)."""
    hub.fault("api", count=-1, arg="503:30")
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--detach", "--json").json()
    for _ in range(100):
        if [e for e in hub.log() if e["path"].startswith("/api/models/")]:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.monotonic()
    daemon.ctl("cancel", r["job"])
    st = None
    for _ in range(100):
        st = [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == r["job"]]
        if st and st[-1]["state"] in ("canceled", "failed", "done"):
            break
        time.sleep(0.05)
    took = time.monotonic() - t0
    assert st[-1]["state"] == "canceled", st
    assert took < 3, took
    assert len([e for e in hub.log() if e["path"].startswith("/api/models/")]) == 1
    assert daemon.ctl("list", "--json").json() == []


def test_enforced_policy_refuses_before_weights(tmp, hub):
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("enforce = true\ndeny = apache-2.0\n")
    d = Daemon(tmp, extra=["--policy", pol]).start()
    try:
        r = d.ctl("pull", "acme/tiny", "--hub", hub.url, check=False)
        assert r.rc == 1 and "Apache-2.0" in r.err and "policy.conf:2" in r.err, r
        fetched = [e["path"] for e in hub.log() if "/resolve/" in e["path"]]
        assert fetched and not [p for p in fetched if p.endswith((".safetensors", ".bin"))], fetched
    finally:
        d.stop()


def test_full_disk_fails_clearly_keeps_what_was_stored_and_resumes(tmp, small_fs, hub, tmp_path_factory):
    """A store on a 24 MiB tmpfs: a 48 MiB pull fails with one line naming the
    file, the disk and the way out; the model stored before is intact; plain
    gc keeps the failed pull's resume state, gc --partial frees it; with room
    again, a pull continues from what the failed one kept."""
    mt = small_fs
    bigroot = str(tmp_path_factory.mktemp("fullhub"))
    subprocess.run([PY, HUBD, "--root", bigroot, "--make-big", os.path.join(bigroot, "acme", "big"),
                    "--size-mb", "48", "--shards", "2"], check=True, timeout=300,
                   capture_output=True)
    big = Hub(bigroot)
    d = Daemon(tmp, store=os.path.join(mt, "store"))
    try:
        d.start()
        d.ctl("pull", "acme/tiny", "--hub", hub.url)

        def fail_once():
            r = d.ctl("pull", "acme/big", "--hub", big.url, check=False)
            assert r.rc == 1 and r.out == "", r
            err = r.err.strip()
            assert "\n" not in err, err
            assert err.startswith("modelctl: acme/big: ") and ".safetensors" in err, err
            assert "No space left on device" in err and "gc --partial" in err, err
            assert d.proc.poll() is None
            assert [x["name"] for x in d.ctl("list", "--json").json()] == ["acme/tiny"]
            assert "OK" in d.ctl("verify", "acme/tiny").out

        fail_once()
        staging = lambda: [n for n in os.listdir(os.path.join(mt, "store", "tmp")) if n.startswith("pull-")]
        assert staging()
        g = d.ctl("gc", "--json").json()
        assert staging() and g["staging_removed"] == 0, g
        free0 = shutil.disk_usage(mt).free
        g = d.ctl("gc", "--partial", "--json").json()
        assert not staging() and g["staging_removed"] == 1, g
        assert g["staging_bytes_freed"] > 8 << 20, g
        assert shutil.disk_usage(mt).free - free0 > 8 << 20
        assert "OK" in d.ctl("verify", "acme/tiny").out
        r = d.ctl("gc", "--partial", "extra", check=False)
        assert r.rc == 2
        r = d.ctl("list", "--partial", check=False)
        assert r.rc == 2 and "--partial only applies to gc" in r.err, r

        fail_once()
        subprocess.run(["mount", "-o", "remount,size=160m", mt], check=True)
        big.ctl("reset")
        d.ctl("pull", "acme/big", "--hub", big.url)
        show = d.ctl("show", "acme/big", "--json").json()
        asked, _ = asked_bytes(big, show, ".safetensors")
        weights = sum(f["size"] for f in show["files"] if f["path"].endswith(".safetensors"))
        assert 0 < asked < weights - (4 << 20), (asked, weights)
        assert "OK" in d.ctl("verify").out
    finally:
        d.stop()
        big.stop()


TWIN_SCRIPT = r'''
import json, os, struct, sys, torch
g = torch.Generator().manual_seed(5)
sd = {"embed.weight": torch.randn(1024, 512, generator=g),
      "layers.0.w": torch.randn(1024, 512, generator=g)}
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
hdr, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
for k, t in sd.items():
    raw = t.numpy().tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
    off += len(raw)
    data += raw
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(os.path.join(d, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
torch.save(sd, os.path.join(d, "pytorch_model.bin"))
open(os.path.join(d, "config.json"), "w").write("{}")
'''
TWIN_WEIGHTS = 2 * 1024 * 512 * 4


def twin_repo(hubroot):
    """acme/twin: the same weights as model.safetensors and pytorch_model.bin."""
    base = os.path.join(hubroot, "acme", "twin")
    if not os.path.exists(os.path.join(base, "config.json")):
        subprocess.run([PY, "-c", TWIN_SCRIPT, base], check=True, timeout=120)
    return base


def test_pull_stores_shared_tensors_once_even_when_resumed(daemon, hubroot):
    """A repository shipping its weights twice (safetensors and torch) is
    stored once, also when the pull was canceled after one file and resumed:
    the file kept from the first attempt is not fetched again and the other
    shares its tensors."""
    twin_repo(hubroot)
    hub = Hub(hubroot)
    try:
        hub.fault("drip", count=-1, match="*.bin", arg="500000")   # ~8 s
        r = daemon.ctl("pull", "acme/twin", "--hub", hub.url, "--detach", "--json").json()
        for _ in range(100):   # the safetensors file downloaded (and converted)
            done = [e for e in hub.log() if e["path"].endswith("model.safetensors")]
            if done:
                break
            time.sleep(0.05)
        time.sleep(1.5)
        daemon.ctl("cancel", r["job"])
        assert wait_job(daemon, r["job"])["state"] == "canceled"
        hub.ctl("reset")   # the log and the drip
        daemon.ctl("pull", "acme/twin", "--hub", hub.url, timeout=300)
        again = [e["path"] for e in hub.log() if "/resolve/" in e["path"]]
    finally:
        hub.stop()
    assert not [p for p in again if p.endswith(".safetensors")], again
    stored = blob_bytes(daemon.store)
    assert stored < TWIN_WEIGHTS * 1.25, (stored, TWIN_WEIGHTS)
    check_pulled(daemon, hubroot, "acme/twin")
    assert daemon.ctl("verify", "--json").json()["ok"]


def _resolved(hub, since):
    return [e["path"].split("/resolve/", 1)[1].split("/", 1)[1]
            for e in hub.log()[since:] if e["method"] == "GET" and "/resolve/" in e["path"]]


def test_filtered_pull_is_recorded_partial_and_completed_later(daemon, hub, hubroot):
    """A filtered pull stores part of a commit and says so in the provenance;
    a later pull without filters (or with others selecting files it lacks)
    fetches just those and commits the union; "up to date" only when every
    selected file is stored already."""
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--include", "*.json", "--json").json()
    show = daemon.ctl("show", "acme/tiny", "--json").json()
    jsons = {f["path"] for f in show["files"]}
    assert jsons and all(p.endswith(".json") for p in jsons)
    prov = show["provenance"]
    assert prov["partial"] is True and prov["include"] == ["*.json"] and prov["exclude"] == []
    assert "partial" in daemon.ctl("show", "acme/tiny").out
    # other filters selecting files it lacks: only those are fetched
    n = len(hub.log())
    r2 = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--include", "*.safetensors", "--json").json()
    assert r2["revision"] == r["revision"] and not r2.get("existed")
    fetched = _resolved(hub, n)
    assert fetched and all(p.endswith(".safetensors") for p in fetched), fetched
    show = daemon.ctl("show", "acme/tiny", "--json").json()
    assert {f["path"] for f in show["files"]} > jsons
    assert show["provenance"]["partial"] is True
    assert show["provenance"]["previous"]["include"] == ["*.json"]
    # the same filtered pull again: up to date, nothing fetched
    n = len(hub.log())
    r3 = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--include", "*.safetensors")
    assert r3.out.startswith("up to date acme/tiny@"), r3
    assert _resolved(hub, n) == []
    # a pull without filters adds the rest and the revision is complete
    n = len(hub.log())
    r4 = daemon.ctl("pull", "acme/tiny", "--hub", hub.url)
    assert r4.out.startswith("pulled acme/tiny@"), r4
    fetched = _resolved(hub, n)
    assert fetched and not [p for p in fetched if p.endswith((".json", ".safetensors"))], fetched
    show = check_pulled(daemon, hubroot)
    assert show["provenance"]["partial"] is False and show["provenance"]["include"] == []
    assert show["license"]["spdx"] == "Apache-2.0"   # the card pulled last is read
    kinds = {f["path"]: f["verified_against"] for f in show["provenance"]["files"]}
    assert set(kinds) == {f["path"] for f in show["files"]}
    assert kinds["config.json"] != "already stored (same sha256)"
    # complete: up to date without even listing the commit again
    n = len(hub.log())
    r5 = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--json").json()
    assert r5.get("existed") and r5["file_count"] == len(show["files"])
    assert not [e for e in hub.log()[n:] if "/tree/" in e["path"] or "/resolve/" in e["path"]]
    assert len(daemon.ctl("list", "--json").json()) == 1


def test_filtered_and_full_pull_at_once_union(daemon, hub, hubroot):
    """A filtered and a full pull of one model at once: the second waits for
    the first and then fetches what the first left out, not "up to date"."""
    hub.fault("drip", count=-1, match="*.json", arg="2000")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("a", daemon.ctl(
        "pull", "acme/tiny", "--hub", hub.url, "--include", "*.json", check=False)))
    t.start()
    for _ in range(200):
        if any("/resolve/" in e["path"] for e in hub.log()):
            break
        time.sleep(0.05)
    hub.ctl("reset")
    b = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, check=False, timeout=300)
    t.join()
    assert out["a"].rc == 0 and b.rc == 0, (out["a"], b)
    assert b.out.startswith("pulled acme/tiny@"), b
    show = check_pulled(daemon, hubroot)
    assert show["provenance"]["partial"] is False


def test_two_pulls_at_once_fetch_each_file_once(daemon, hub, hubroot):
    """Two pulls of one model at once share one transfer: the second waits
    for the first and then finds everything stored, non-LFS files (which
    have no sha256 in the listing) included."""
    hub.fault("drip", count=-1, match="*.safetensors", arg="2000000")
    out = []
    ts = [threading.Thread(target=lambda: out.append(daemon.ctl("pull", "acme/tiny", "--hub", hub.url,
                                                                 "--json", check=False, timeout=300)))
          for _ in range(2)]
    for t in ts:
        t.start()
        time.sleep(0.3)
    for t in ts:
        t.join()
    assert [r.rc for r in out] == [0, 0], out
    small = [p for p in _resolved(hub, 0) if not p.endswith((".safetensors", ".bin"))]
    assert "config.json" in small and len(small) == len(set(small)), sorted(small)
    check_pulled(daemon, hubroot)


def test_short_commit_is_a_commit_not_a_ref(daemon, hub):
    """REV of 7..39 hex digits that the hub resolves to a commit starting
    with it is that commit: no ref of that name is recorded. A hub that does
    not resolve it, with the commit stored, gets an error that says so."""
    full = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, "--include", "*.json",
                      "--json").json()["revision"]
    short = full[:7]
    r = daemon.ctl("pull", "acme/tiny@" + short, "--hub", hub.url, "--include", "*.json", "--json").json()
    assert r["revision"] == full
    show = daemon.ctl("show", "acme/tiny", "--json").json()
    assert show["refs"] == ["main"], show["refs"]
    assert daemon.ctl("show", "acme/tiny@" + short, "--json").json()["revision"] == full
    # the same through a pull that stores it first
    daemon.ctl("rm", "acme/tiny")
    r = daemon.ctl("pull", "acme/tiny@" + full[:12], "--hub", hub.url, "--include", "*.json",
                   "--json").json()
    assert r["revision"] == full and r.get("refs", []) == []
    assert daemon.ctl("show", "acme/tiny@" + full[:12], "--json").json()["refs"] == []
    # a hub that does not resolve short commits: say what the store has
    hub.fault("noshort", count=-1)
    r = daemon.ctl("pull", "acme/tiny@" + short, "--hub", hub.url, check=False)
    assert r.rc == 1 and r.err.count("\n") == 1, r
    assert "revision not found" in r.err and "acme/tiny@" + full in r.err, r.err
    # a prefix of nothing stored: the hub's answer alone
    r = daemon.ctl("pull", "acme/tiny@abcdef0", "--hub", hub.url, check=False)
    assert r.rc == 1 and "revision not found" in r.err and full not in r.err, r


def test_unreadable_token_file_is_reported(tmp, hub):
    """token_file = in the config: modeld -n and start-up refuse a file they
    cannot read, naming it; a pull that finds it gone fails naming it
    instead of going anonymous ("repository not found")."""
    tok = os.path.join(tmp, "hub-token")
    cfg = os.path.join(tmp, "modeld.conf")
    with open(cfg, "w") as f:
        f.write("store = %s/store\ntoken_file = %s\n" % (tmp, tok))
    for args in (["-n"], ["-f", "--socket", os.path.join(tmp, "x.sock")]):
        p = subprocess.run([MODELD, "--config", cfg] + args, capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and p.stdout == "", p
        assert p.stderr == "modeld: token_file %s: No such file or directory\n" % tok, p.stderr
    with open(tok, "w") as f:
        f.write("\n")
    p = subprocess.run([MODELD, "--config", cfg, "-n"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stderr == "modeld: token_file %s: empty\n" % tok, p.stderr
    with open(tok, "w") as f:
        f.write("hf_good\n")
    p = subprocess.run([MODELD, "--config", cfg, "-n"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "configuration OK\n", p
    d = Daemon(tmp, extra=["--config", cfg]).start()
    try:
        d.ctl("pull", "acme/private", "--hub", hub.url)
        assert any(e["auth"] == "Bearer hf_good" for e in hub.log())
        os.unlink(tok)
        r = d.ctl("pull", "acme/private@" + "0" * 7, "--hub", hub.url, check=False)
        assert r.rc == 1 and r.err.count("\n") == 1, r
        assert "token_file %s: No such file or directory" % tok in r.err, r.err
    finally:
        d.stop()


@pytest.mark.parametrize("path", [".kept", ".kept/" + "ab" * 32 + ".json"])
def test_kept_is_a_reserved_name(daemon, hub, path):
    """The staging directory's .kept/ holds the pull's own records, beside
    the downloads at their repository paths: a listing with a path there is
    refused like one under .partial, nothing committed."""
    entry = {"type": "file", "oid": "2" * 40, "size": 3, "path": path}
    hub.fault("inject", arg=urllib.request.quote(json.dumps(entry)))
    r = daemon.ctl("pull", "acme/tiny", "--hub", hub.url, check=False)
    assert r.rc == 1 and r.err == "modelctl: acme/tiny: %s: reserved name\n" % path, r
    assert not [e for e in hub.log() if "/resolve/" in e["path"]]
    assert daemon.ctl("list", "--json").json() == []


def _no_secret_anywhere(d, secret, name="acme/tiny"):
    """secret is in none of show --json, jobs --json, the log, the store's files."""
    show = d.ctl("show", name, "--json").json()
    assert show["source"]["url"].startswith("http://127.0.0.1:"), show["source"]
    assert show["provenance"]["hub"] == show["source"]["url"]
    assert secret not in json.dumps(show)
    assert secret not in d.ctl("jobs", "--json").out
    assert secret not in d.read_log()
    for base, _, files in os.walk(d.store):
        for f in files:
            with open(os.path.join(base, f), "rb") as fh:
                assert secret.encode() not in fh.read(), os.path.join(base, f)


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_hub_url_credentials_are_used_never_recorded(tmp, hub, how):
    """https://user:pw@hub: sent as Basic auth to the hub only, stored nowhere."""
    cred = f"http://u:sekrit@127.0.0.1:{hub.port}"
    extra, env, args = [], None, []
    if how == "config":
        conf = os.path.join(tmp, "modeld.conf")
        with open(conf, "w") as f:
            f.write(f"hub = {cred}\n")
        extra = ["--config", conf]
    elif how == "env":
        env = dict(os.environ, HF_ENDPOINT=cred)
    else:
        args = ["--hub", cred]
    hub.fault("redirect", count=-1, match="*.safetensors", arg="cross")
    d = Daemon(tmp, extra=extra).start()
    try:
        p = subprocess.run([MODELCTL, "--socket", d.sock, "pull", "acme/tiny", "--json"] + args,
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "sekrit" not in p.stdout + p.stderr
        log = hub.log()
        basic = "Basic dTpzZWtyaXQ="  # base64("u:sekrit")
        assert any(e["auth"] == basic for e in log if e["host"].startswith("127.0.0.1"))
        assert any(e["host"].startswith("localhost") for e in log)
        assert all(e["auth"] is None for e in log if e["host"].startswith("localhost")), log
        # a failing pull's error detail does not carry it either
        if how != "env":
            r = d.ctl("pull", "acme/nope", *args, check=False)
            assert r.rc == 1 and "sekrit" not in r.out + r.err, r
        _no_secret_anywhere(d, "sekrit")
    finally:
        d.stop()


def test_sigterm_tells_a_foreground_pull_modeld_is_stopping(tmp, hub):
    """SIGTERM ends a running pull: the user canceled nothing, so modelctl
    says modeld is shutting down and how to go on, and the job record says
    interrupted, not canceled."""
    hub.fault("drip", count=-1, match="*.safetensors", arg="500000")
    d = Daemon(tmp).start()
    p = subprocess.Popen([MODELCTL, "--socket", d.sock, "pull", "acme/tiny", "--hub", hub.url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if [e for e in hub.log() if e["path"].endswith(".safetensors")]:
                break
            time.sleep(0.05)
        assert d.stop() == 0
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 1, (out, err)
    assert err == "modelctl: acme/tiny: modeld is shutting down; pull again to resume\n", err
    d2 = Daemon(tmp).start()
    try:
        jobs = [j for j in d2.ctl("jobs", "--json").json() if j["op"] == "pull"]
        assert jobs and jobs[-1]["state"] == "interrupted", jobs
    finally:
        d2.stop()


def test_unicode_names_globs_and_an_empty_repository(daemon, tmp):
    """--include as huggingface_hub reads it: '?' is one character of a
    non-ASCII name, a folder pattern takes a deep folder with spaces; an
    empty repository and filters that select nothing each say which."""
    root = os.path.join(tmp, "hub")
    os.makedirs(os.path.join(root, "acme", "empty"))
    uni = os.path.join(root, "acme", "uni")
    files = {"café.json": b"{}", "日本語.txt": b"x", "a b+c%20d#e?f.txt": b"y",
             "dir é/sub dir/a/b/c/d/e/f/deep.json": b"[]"}
    for p, b in files.items():
        os.makedirs(os.path.dirname(os.path.join(uni, p)), exist_ok=True)
        open(os.path.join(uni, p), "wb").write(b)
    h = Hub(root)
    try:
        r = daemon.ctl("pull", "acme/uni", "--hub", h.url, "--include", "caf?.json",
                       "--include", "???.txt", "--include", "dir é/", "--json").json()
        show = daemon.ctl("show", "acme/uni", "--json").json()
        assert sorted(f["path"] for f in show["files"]) == sorted(
            ["café.json", "日本語.txt", "dir é/sub dir/a/b/c/d/e/f/deep.json"]), show["files"]
        assert daemon.ctl("cat", "acme/uni", "dir é/sub dir/a/b/c/d/e/f/deep.json").out == "[]"
        assert show["provenance"]["partial"] is True
        # the rest completes the commit (a '?' and '#' in a name are URL-encoded)
        daemon.ctl("pull", "acme/uni", "--hub", h.url)
        assert daemon.ctl("cat", "acme/uni", "a b+c%20d#e?f.txt").out == "y"
        e = daemon.ctl("pull", "acme/uni", "--hub", h.url, "--include", "*.JSON",
                       "--exclude", "x", "--name", "acme/other", check=False)
        assert e.rc == 1 and e.err == ("modelctl: acme/uni@%s: none of its 4 files matches "
                                       "--include '*.JSON' --exclude 'x'\n" % r["revision"]), e
        e = daemon.ctl("pull", "acme/empty", "--hub", h.url, check=False)
        assert e.rc == 1 and re.fullmatch(
            r"modelctl: acme/empty@[0-9a-f]{40}: the repository has no files at this commit\n",
            e.err), e
        assert "acme/empty" not in daemon.ctl("list").out
    finally:
        h.stop()


def placed_repo(hubroot):
    """acme/placed: a 20 MiB safetensors file whose tensors do not fill
    whole 4 KiB pages (a 1000-float bias between the big ones), so placing
    it pads every tensor after the first."""
    import random
    base = os.path.join(hubroot, "acme", "placed")
    if os.path.exists(os.path.join(base, "model.safetensors")):
        return base
    os.makedirs(base, exist_ok=True)
    rnd = random.Random(11)
    shapes = [("embed.weight", "F16", [2048, 1025]), ("layers.0.bias", "F32", [1000]),
              ("layers.0.weight", "BF16", [2048, 2047]), ("layers.1.weight", "F32", [1500, 1001]),
              ("norm.weight", "F32", [7])]
    size = {"F16": 2, "BF16": 2, "F32": 4}
    hdr, off, data = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dt, shape in shapes:
        n = size[dt]
        for s in shape:
            n *= s
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data.append(rnd.randbytes(n))
        off += n
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(base, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(data))
    with open(os.path.join(base, "config.json"), "w") as f:
        f.write('{"model_type": "llama"}\n')
    return base


def test_placed_download_killed_resumes_into_the_same_pack(tmp, hubroot):
    """A safetensors file of 16 MiB or more is downloaded straight into pack
    layout (its header fetched first with a ranged GET): kill -9 in the
    middle, restart, pull again: it resumes (ranges past 0), and the stored
    pack and the file served back are those of an ordinary import."""
    base = placed_repo(hubroot)
    src = os.path.join(base, "model.safetensors")
    hub = Hub(hubroot)
    store = os.path.join(tmp, "store")
    d = Daemon(tmp, store=store).start()
    hub.fault("drip", count=-1, match="*.safetensors", arg="500000")
    p = subprocess.Popen([MODELCTL, "--socket", d.sock, "-q", "pull", "acme/placed", "--hub", hub.url],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if "model.safetensors: placed in" in d.read_log():
            break
        time.sleep(0.05)
    else:
        raise AssertionError("never placed: " + d.read_log()[-2000:])
    time.sleep(2.5)
    d.kill9()
    p.wait(30)
    heads = [e["range"] for e in hub.log() if "/acme/placed/" in e["path"] and e["path"].endswith("/model.safetensors")]
    assert "bytes=0-1048575" in heads, heads
    hub.ctl("reset")
    d2 = Daemon(tmp, store=store).start()
    try:
        d2.ctl("pull", "acme/placed", "--hub", hub.url)
        check_pulled(d2, hubroot, "acme/placed")
        got = [e["range"] for e in hub.log() if e["method"] == "GET" and e["path"].endswith("/model.safetensors")]
        assert any(r and not r.startswith("bytes=0-") for r in got), got
        show = d2.ctl("show", "acme/placed", "--json").json()
        f = [x for x in show["files"] if x["path"] == "model.safetensors"][0]
        assert f["format"] == "safetensors" and f["tensors"] == 5, f
        # the same pack (same root digest, offsets, tensor digests) as importing the file
        d2.ctl("import", base, "--name", "local/placed")
        pulled = d2.ctl("tensors", "acme/placed", "--json").json()
        local = d2.ctl("tensors", "local/placed", "--json").json()
        assert pulled == local and len(pulled) == 5, (pulled, local)
        v = d2.ctl("verify", "--json").json()
        assert v["ok"] and v["stale_staging"] == 0, v
    finally:
        rc = d2.stop()
        hub.stop()
    if d2.valgrind:   # MODELD_VALGRIND=1: the placed pull's daemon side
        assert rc == 0, "valgrind reported errors: " + open(d2.log + ".vg").read()[-3000:]


@pytest.mark.parametrize("count", [1, -1])
def test_placed_head_answered_whole_downloads_as_it_is(tmp, hubroot, count):
    """A server that ignores Range for the header's ranged GET (count=1), or
    for every request (count=-1), answers 200 with the whole file: the pull
    stops reading after the bytes it asked for, downloads the file as it is
    and converts it to the same pack as a local import."""
    base = placed_repo(hubroot)
    hub = Hub(hubroot)
    d = Daemon(tmp, store=os.path.join(tmp, "store")).start()
    try:
        hub.fault("norange", count=count, match="*.safetensors")
        d.ctl("pull", "acme/placed", "--hub", hub.url)
        check_pulled(d, hubroot, "acme/placed")
        log = d.read_log()
        assert ("model.safetensors: downloaded as it is: model.safetensors: HTTP 200 with more "
                "than the 1048576 bytes asked for") in log, log[-3000:]
        assert "model.safetensors: placed in" not in log
        gets = [e["range"] for e in hub.log()
                if e["method"] == "GET" and e["path"].endswith("/model.safetensors")]
        assert gets[0] == "bytes=0-1048575", gets
        d.ctl("import", base, "--name", "local/placed")
        pulled = d.ctl("tensors", "acme/placed", "--json").json()
        assert pulled == d.ctl("tensors", "local/placed", "--json").json() and len(pulled) == 5
    finally:
        rc = d.stop()
        hub.stop()
    if d.valgrind:   # MODELD_VALGRIND=1
        assert rc == 0, "valgrind reported errors: " + open(d.log + ".vg").read()[-3000:]


@pytest.mark.parametrize("count", [1, -1])
def test_placed_head_other_than_the_file_downloads_it_again(tmp, hubroot, count):
    """A hub whose answer to the header's ranged request is not the file's
    bytes (here the metadata "pt" became "pu": the same plan, another
    header): the placed download verifies, its conversion finds the header
    other than the head, and the file is downloaded again as it is, once;
    the model is that of a local import. A hub that patches every ranged
    answer from byte 0 (count=-1) fails the download's digest too: the pull
    fails naming the file, nothing committed."""
    base = placed_repo(hubroot)
    hub = Hub(hubroot)
    d = Daemon(tmp, store=os.path.join(tmp, "store")).start()
    try:
        hub.fault("headpatch", count=count, match="model.safetensors", arg='"pt"/"pu"')
        r = d.ctl("pull", "acme/placed", "--hub", hub.url, check=False)
        log = d.read_log()
        assert "model.safetensors: placed in" in log
        if count == -1:
            assert r.rc == 1 and r.err.startswith(
                "modelctl: acme/placed: model.safetensors: sha256 mismatch after 2 attempts") \
                and r.err.count("\n") == 1, r
            assert d.ctl("list", "--json").json() == []
            return
        assert r.rc == 0, r
        assert ("model.safetensors: the hub sent other header bytes to a ranged request than "
                "in the file; downloading model.safetensors again as it is") in log, log[-3000:]
        check_pulled(d, hubroot, "acme/placed")
        d.ctl("import", base, "--name", "local/placed")
        pulled = d.ctl("tensors", "acme/placed", "--json").json()
        assert pulled == d.ctl("tensors", "local/placed", "--json").json() and len(pulled) == 5
        v = d.ctl("verify", "--json").json()
        assert v["ok"] and v["stale_staging"] == 0, v
    finally:
        rc = d.stop()
        hub.stop()
    if d.valgrind:   # MODELD_VALGRIND=1
        assert rc == 0, "valgrind reported errors: " + open(d.log + ".vg").read()[-3000:]


def gguf_repo(hubroot, name, ntokens):
    """acme/NAME: a 58 MB GGUF file (F16, Q8_0 blocks, small F32 tensors
    that leave padding, 32-byte alignment) whose header holds ntokens
    tokenizer strings of 16 bytes each."""
    import random
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
    from conv_fixtures import gguf_bytes
    base = os.path.join(hubroot, "acme", name)
    if os.path.exists(os.path.join(base, "model.gguf")):
        return base
    os.makedirs(base, exist_ok=True)
    rnd = random.Random(ntokens)
    kvs = [("general.architecture", 8, "llama"),
           ("tokenizer.ggml.tokens", 9, (8, ["tok%05d" % i for i in range(ntokens)]))]
    tensors = [("token_embd.weight", 1, [2048, 4096], rnd.randbytes(2048 * 4096 * 2)),
               ("blk.0.attn_norm.weight", 0, [1000], rnd.randbytes(4000)),
               ("blk.0.ffn_up.weight", 8, [4096, 2048], rnd.randbytes(4096 * 2048 // 32 * 34)),
               ("blk.0.ffn_down.weight", 1, [4096, 2048], rnd.randbytes(4096 * 2048 * 2)),
               ("output_norm.weight", 0, [7], rnd.randbytes(28)),
               ("output.weight", 1, [2048, 4096], rnd.randbytes(2048 * 4096 * 2))]
    with open(os.path.join(base, "model.gguf"), "wb") as f:
        f.write(gguf_bytes(kvs, tensors))
    return base


@pytest.mark.parametrize("ntokens,asks,placed", [(1000, 1, True), (75000, 2, True),
                                                 (150000, 2, False)])
def test_gguf_download_is_placed(tmp, hubroot, ntokens, asks, placed):
    """A GGUF file of 16 MiB or more is downloaded straight into pack layout,
    like a safetensors one. Its header's length is only known by parsing it:
    a header longer than the first MiB asked for costs one more ranged
    request, for 1/32 of the file; a header longer than that, an ordinary
    download. Either way the pack is that of a local import."""
    base = gguf_repo(hubroot, "gguf%d" % ntokens, ntokens)
    repo = "acme/gguf%d" % ntokens
    size = os.path.getsize(os.path.join(base, "model.gguf"))
    hub = Hub(hubroot)
    d = Daemon(tmp, store=os.path.join(tmp, "store")).start()
    try:
        d.ctl("pull", repo, "--hub", hub.url)
        check_pulled(d, hubroot, repo)
        log = d.read_log()
        assert ("model.gguf: placed in" in log) == placed, log[-3000:]
        gets = [e["range"] for e in hub.log() if e["method"] == "GET" and e["path"].endswith("/model.gguf")]
        heads = ["bytes=0-1048575", "bytes=0-%d" % (size // 32 - 1)]
        assert gets[:asks] == heads[:asks] and (asks == 2 or gets[1] != heads[1]), gets
        if not placed:
            assert "model.gguf: downloaded as it is" in log, log[-3000:]
        show = d.ctl("show", repo, "--json").json()
        f = [x for x in show["files"] if x["path"] == "model.gguf"][0]
        assert f["format"] == "gguf" and f["tensors"] == 6, f
        d.ctl("import", base, "--name", "local/gguf")
        pulled = d.ctl("tensors", repo, "--json").json()
        assert pulled == d.ctl("tensors", "local/gguf", "--json").json() and len(pulled) == 6
    finally:
        rc = d.stop()
        hub.stop()
    if d.valgrind:   # MODELD_VALGRIND=1
        assert rc == 0, "valgrind reported errors: " + open(d.log + ".vg").read()[-3000:]


def test_unreachable_hub_is_named(daemon):
    """Nothing listening at the hub's address: after the retries the pull
    fails naming the host and port it could not reach, not curl's bare
    "Couldn't connect to server"."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = daemon.ctl("pull", "acme/tiny", "--hub", "http://127.0.0.1:%d" % port, check=False)
    assert r.rc == 1, r
    assert r.err.strip() == ("modelctl: acme/tiny: cannot connect to 127.0.0.1 port %d "
                             "after 5 attempts" % port), r
    assert daemon.ctl("list", "--json").json() == []


def test_hub_redirect_to_a_malformed_url_fails_at_once(daemon):
    """A hub whose API answer redirects to a URL libcurl cannot parse: the
    pull fails at once, naming the fault, instead of retrying a request that
    cannot succeed (5 attempts, 7.5 s of back-off)."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://[::1/api/x?sig=secret")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        r = daemon.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:%d" % srv.server_address[1],
                       check=False)
        took = time.monotonic() - t0
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.rc == 1 and r.err.startswith("modelctl: acme/x: ") and "\n" not in r.err.strip(), r
    # the redirect target is named, without its query (a CDN's signature)
    assert "http://[::1/api/x: " in r.err and "secret" not in r.err, r
    assert "attempts" not in r.err and took < 3, (r, took)
