"""Issue 7: bundles (export/import between two stores, hostile archives),
huggingface_hub cache folders, and the HF-compatible mirror (raw HTTP checks
of every endpoint and header, then the official @huggingface/hub client)."""
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import safetensors_bytes, ROOT, Daemon, tiny_llama, make_model

NPM_PREFIX = os.path.join(ROOT, "build", "npm")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def keypair(tmp, name="k"):
    priv = os.path.join(tmp, name + ".pem")
    pub = os.path.join(tmp, name + ".pub")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", priv], check=True,
                   capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return priv, pub


def files_of(d, ref):
    return {f["path"]: (f["size"], f["sha256"]) for f in d.ctl("--json", "show", ref).json()["files"]}


def store_is_clean(d):
    """Nothing stored: no revision, no blob, no staging directory left."""
    assert d.ctl("--json", "list").json() == []
    blobs = [f for _, _, fs in os.walk(os.path.join(d.store, "blobs")) for f in fs]
    assert blobs == [], blobs
    tmpd = os.path.join(d.store, "tmp")
    assert not os.path.isdir(tmpd) or os.listdir(tmpd) == []


@pytest.fixture
def two(tmp):
    a_dir, b_dir = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    os.makedirs(a_dir)
    os.makedirs(b_dir)
    port = free_port()
    a = Daemon(a_dir, extra=["--http", f"127.0.0.1:{port}"]).start()
    a.port = port
    b = Daemon(b_dir).start()
    yield a, b
    rcs = [a.stop(), b.stop()]  # stop both before judging either
    for d, rc in zip((a, b), rcs):  # a clean exit: under ASan, no leak reports either
        assert rc == 0, d.read_log()[-3000:]


def seed(a, tmp, name="acme/tiny", seed_=1):
    src = tiny_llama(os.path.join(tmp, "src-" + name.replace("/", "_")), seed=seed_)
    a.ctl("import", src, "--name", name)
    return src


# ---- bundles --------------------------------------------------------------

@pytest.mark.parametrize("suffix,sign", [(".tar", False), (".tar.zst", False), (".tar.zst", True),
                                         (".tar", True)])
def test_bundle_round_trip(two, tmp, suffix, sign):
    a, b = two
    src = seed(a, tmp)
    seed(a, tmp, "acme/other", 2)
    out = os.path.join(tmp, "x" + suffix)
    args = ["export", "acme/tiny", "acme/other@main", "-o", out]
    iargs = ["import", out]
    if sign:
        priv, pub = keypair(tmp)
        args += ["--sign", priv]
        iargs += ["--verify-key", pub]
    r = a.ctl("--json", *args).json()
    assert r["signed"] == sign and r["files"] == 10 and len(r["revisions"]) == 2
    with open(out, "rb") as f:
        magic = f.read(4)
    assert (magic == b"\x28\xb5\x2f\xfd") == suffix.endswith(".zst")
    names = tarfile.open(out).getnames() if not suffix.endswith(".zst") else None
    if names:
        assert names[:2] == ["modeld-bundle.json", "SHA256SUMS"]
        assert ("SHA256SUMS.sig" in names) == sign
        assert "r0/files/model.safetensors" in names and "r0/provenance.json" in names
        assert "r0/licenses/Apache-2.0.txt" in names
    r = b.ctl("--json", *iargs).json()
    assert r["signature"] == ("verified" if sign else "none")
    for ref in ("acme/tiny", "acme/other"):
        sa, sb = a.ctl("--json", "show", ref).json(), b.ctl("--json", "show", ref).json()
        assert sa["revision"] == sb["revision"] and sa["files"] == sb["files"]
        assert sb["source"]["type"] == "bundle" and sb["refs"] == ["main"]
    # provenance: the origin's record as it was, plus how it arrived here
    bundle_sha = hashlib.sha256(open(out, "rb").read()).hexdigest()
    keyid = None
    if sign:
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        keyid = hashlib.sha256(der).hexdigest()
    for ref in ("acme/tiny", "acme/other"):
        sa, sb = a.ctl("--json", "show", ref).json(), b.ctl("--json", "show", ref).json()
        p = sb["provenance"]
        assert p["type"] == "bundle" and p["origin"] == sa["provenance"], p
        assert p["bundle_sha256"] == bundle_sha
        assert p["signature"] == ("verified" if sign else "none")
        assert p.get("signer_keyid") == keyid
        assert p["retrieved_at"] and p["exported_at"] and p["modeld_version"]
        assert {f["path"]: f["sha256"] for f in p["files"]} == {f["path"]: f["sha256"] for f in sb["files"]}
        assert all("SHA256SUMS" in f["verified_against"] for f in p["files"])
    got = b.ctl("cat", "acme/tiny", "model.safetensors", binary=True).out
    assert got == open(os.path.join(src, "model.safetensors"), "rb").read()
    assert b.ctl("verify").rc == 0
    # importing again changes nothing
    r = b.ctl("--json", *iargs).json()
    assert all(x.get("existed") for x in r["revisions"])


def test_bundle_carries_tags_and_branches(two, tmp):
    """Refs other than main that the source had on a revision (a tag, a
    branch) are created on import; one that reads as a commit prefix is
    not (it would not resolve as a ref)."""
    a, b = two
    seed(a, tmp)
    out = os.path.join(tmp, "t.tar")
    a.ctl("export", "acme/tiny", "-o", out)
    # the source store's refs, as an exporting store with tags would list them
    members = []
    with tarfile.open(out) as t:
        for m in t.getmembers():
            members.append((m, t.extractfile(m).read() if m.isfile() else None))
    data = dict((m.name, d) for m, d in members)
    idx = json.loads(data["modeld-bundle.json"])
    idx["revisions"][0]["refs"] = ["main", "v1.0", "release/2", "abcdef1234"]
    data["modeld-bundle.json"] = json.dumps(idx).encode()
    sums = []
    for line in data["SHA256SUMS"].decode().splitlines():
        h, name = line.split("  ", 1)
        if name == "modeld-bundle.json":
            h = hashlib.sha256(data[name]).hexdigest()
        sums.append(h + "  " + name)
    data["SHA256SUMS"] = ("\n".join(sums) + "\n").encode()
    out2 = os.path.join(tmp, "t2.tar")
    with tarfile.open(out2, "w", format=tarfile.PAX_FORMAT) as t:
        for m, _ in members:
            d = data[m.name]
            if d is not None:
                m.size = len(d)
            t.addfile(m, io.BytesIO(d) if d is not None else None)
    r = b.ctl("--json", "import", out2).json()
    assert r["revisions"][0]["refs_set"] == ["v1.0", "release/2"], r
    show = b.ctl("--json", "show", "acme/tiny").json()
    assert sorted(show["refs"]) == ["main", "release/2", "v1.0"], show["refs"]
    assert b.ctl("--json", "show", "acme/tiny@v1.0").json()["revision"] == show["revision"]
    assert b.ctl("verify").rc == 0


def test_bundle_round_trip_unicode_paths(two, tmp):
    """Store paths are UTF-8; the daemon runs in the C locale, where
    libarchive could not write 'ü' ("Can't translate pathname")."""
    a, b = two
    src = os.path.join(tmp, "uni")
    files = {"config.json": b'{"model_type":"llama"}', "sub dir/\u00fc/a b#c?.txt": b"hello\n",
             "\u65e5\u672c/100%.txt": b"percent\n"}
    make_model(src, files)
    a.ctl("import", src, "--name", "acme/uni")
    out = os.path.join(tmp, "u.tar")
    a.ctl("export", "acme/uni", "-o", out)
    assert "r0/files/sub dir/\u00fc/a b#c?.txt" in tarfile.open(out).getnames()
    b.ctl("import", out)
    for rel, data in files.items():
        assert b.ctl("cat", "acme/uni", rel, binary=True).out == data, rel
    assert b.ctl("verify").rc == 0


def test_bundle_refused_by_policy_keeps_refs(tmp):
    """A bundle whose second model the importing store's license policy
    denies: nothing is committed, and the first model's existing main still
    points where it did (the rollback used to remove that ref)."""
    a_dir, b_dir = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    os.makedirs(a_dir)
    os.makedirs(b_dir)
    pol = os.path.join(tmp, "policy.conf")
    with open(pol, "w") as f:
        f.write("enforce = true\ndeny = cc-by-nc-4.0\n")
    a = Daemon(a_dir).start()
    b = Daemon(b_dir, extra=["--policy", pol]).start()
    try:
        old = tiny_llama(os.path.join(tmp, "old"), seed=1)
        a.ctl("import", old, "--name", "acme/tiny")
        a.ctl("import", tiny_llama(os.path.join(tmp, "new"), seed=2), "--name", "acme/tiny")
        nc = make_model(os.path.join(tmp, "nc"), {"README.md": b"---\nlicense: cc-by-nc-4.0\n---\n",
                                                  "config.json": b"{}"})
        a.ctl("import", nc, "--name", "acme/nc")
        b.ctl("import", old, "--name", "acme/tiny")
        before = b.ctl("--json", "show", "acme/tiny").json()
        assert before["refs"] == ["main"]
        out = os.path.join(tmp, "mixed.tar")
        a.ctl("export", "acme/tiny", "acme/nc", "-o", out)
        r = b.ctl("import", out, check=False)
        assert r.rc == 1 and "CC-BY-NC-4.0" in r.err, r
        assert len(r.err.strip().splitlines()) == 1 and r.err.count("acme/nc") == 1, r.err
        assert [(x["name"], x["revision"]) for x in b.ctl("--json", "list").json()] == \
            [("acme/tiny", before["revision"])]
        after = b.ctl("--json", "show", "acme/tiny").json()
        assert after["revision"] == before["revision"] and after["refs"] == ["main"], after
        assert b.ctl("verify").rc == 0
    finally:
        rcs = [a.stop(), b.stop()]
    assert rcs == [0, 0]


def test_bundle_round_trip_longest_paths(two, tmp):
    """A store path may be 1024 bytes; its bundle entry 'r0/files/PATH' is
    longer, and import refused it as an unsafe path. A longer name is
    still refused, naming it."""
    a, b = two
    rel = "/".join(["d" * 200] * 4) + "/" + "f" * (1024 - 4 * 201)
    assert len(rel) == 1024
    src = make_model(os.path.join(tmp, "long"), {"config.json": b"{}", rel: b"x"})
    a.ctl("import", src, "--name", "acme/long")
    out = os.path.join(tmp, "long.tar")
    a.ctl("export", "acme/long", "-o", out)
    r = b.ctl("import", out, check=False)
    assert r.rc == 0, r
    assert b.ctl("cat", "acme/long", rel).out == "x"
    b.ctl("rm", "acme/long")
    b.ctl("gc")
    bad = rewrite(out, os.path.join(tmp, "longer.tar"), add=[entry("r0/files/" + rel + "g", b"x")])
    r = b.ctl("import", bad, check=False)
    assert r.rc == 1 and "bundle refused: unsafe path 'r0/files/ddd" in r.err, r
    store_is_clean(b)


def test_bundle_import_detach_prints_the_job_id(two, tmp):
    a, b = two
    seed(a, tmp)
    out = os.path.join(tmp, "d.tar")
    a.ctl("export", "acme/tiny", "-o", out)
    r = b.ctl("import", out, "--detach")
    m = re.fullmatch(r"job (\d+)\n", r.out)
    assert m, r.out
    job = int(m.group(1))
    for _ in range(200):
        st = [j for j in b.ctl("jobs", "--json").json() if j["id"] == job]
        if st and st[-1]["state"] in ("done", "canceled", "failed"):
            break
        time.sleep(0.05)
    assert st[-1]["state"] == "done", st
    assert b.ctl("--json", "show", "acme/tiny").json()["source"]["type"] == "bundle"
    # export writes FILE.part and renames it when the job ends: no detached form
    r = a.ctl("export", "acme/tiny", "-o", os.path.join(tmp, "e.tar"), "--detach", check=False)
    assert r.rc == 2 and "--detach" in r.err, r


def test_bundle_signature_refusals(two, tmp):
    a, b = two
    seed(a, tmp)
    priv, pub = keypair(tmp)
    _, other = keypair(tmp, "other")
    signed, plain = os.path.join(tmp, "s.tar"), os.path.join(tmp, "p.tar")
    a.ctl("export", "acme/tiny", "-o", signed, "--sign", priv)
    a.ctl("export", "acme/tiny", "-o", plain)
    r = b.ctl("import", signed, "--verify-key", other, check=False)
    assert r.rc == 1 and "signature" in r.err, r
    store_is_clean(b)
    r = b.ctl("import", plain, "--verify-key", pub, check=False)
    assert r.rc == 1 and "not signed" in r.err, r
    store_is_clean(b)
    # a signed bundle whose SHA256SUMS was edited after signing
    bad = rewrite(signed, os.path.join(tmp, "edited.tar"),
                  edit={"SHA256SUMS": lambda d: d.replace(b"  r0/files/README.md", b"  r0/files/README.mdx")})
    r = b.ctl("import", bad, "--verify-key", pub, check=False)
    assert r.rc == 1 and "refused" in r.err, r
    store_is_clean(b)


def rewrite(src, dst, edit=None, drop=(), add=(), mutate=None, fmt=tarfile.PAX_FORMAT):
    """Copy a bundle entry by entry, editing data, dropping or adding entries."""
    edit = edit or {}
    with tarfile.open(src) as tin, tarfile.open(dst, "w", format=fmt) as tout:
        for m in tin.getmembers():
            if m.name in drop:
                continue
            data = tin.extractfile(m).read()
            if m.name in edit:
                data = edit[m.name](data)
                m.size = len(data)
            if mutate:
                mutate(m)
            tout.addfile(m, io.BytesIO(data))
        for m, data in add:
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    return dst


def entry(name, data=b"", type_=tarfile.REGTYPE, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.size = len(data) if type_ == tarfile.REGTYPE else 0
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti, data if type_ == tarfile.REGTYPE else None


def flip(data):
    return bytes([data[0] ^ 1]) + data[1:]


HOSTILE = {
    "absolute path": (dict(add=[entry("/etc/evil", b"x")]), "bundle refused: unsafe path '/etc/evil'"),
    "dot-dot": (dict(add=[entry("r0/files/../../evil", b"x")]),
                "bundle refused: unsafe path 'r0/files/../../evil'"),
    "directory dot-dot": (dict(add=[entry("r0/files/../../evil", type_=tarfile.DIRTYPE)]),
                          "bundle refused: unsafe path 'r0/files/../../evil'"),
    "symlink": (dict(add=[entry("r0/files/link", type_=tarfile.SYMTYPE, linkname="/etc/passwd")]),
                "symbolic link"),
    "hardlink": (dict(add=[entry("r0/files/hard", type_=tarfile.LNKTYPE, linkname="r0/files/config.json")]),
                 "hard link"),
    "device": (dict(add=[entry("r0/files/dev", type_=tarfile.CHRTYPE, devmajor=1, devminor=3)]),
               "device file"),
    "duplicate": (dict(add=[entry("r0/files/config.json", b"{}")]), "duplicate"),
    "checksum": (dict(edit={"r0/files/model.safetensors": flip}), "does not match"),
    "unlisted": (dict(add=[entry("r0/files/extra.bin", b"zz")]), "extra.bin: not in"),
    "unlisted meta": (dict(add=[entry("r0/notes.txt", b"zz")]), "not listed in SHA256SUMS"),
    "missing file": (dict(drop=["r0/files/config.json"]), "missing"),
    "index edited": (dict(edit={"modeld-bundle.json": lambda d: d.replace(b"acme/tiny", b"acme/tinx")}),
                     "does not match"),
    "out of order": (dict(drop=["modeld-bundle.json"]), "expected modeld-bundle.json"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundles_refused(two, tmp, case):
    a, b = two
    seed(a, tmp)
    good = os.path.join(tmp, "good.tar")
    a.ctl("export", "acme/tiny", "-o", good)
    kw, msg = HOSTILE[case]
    bad = rewrite(good, os.path.join(tmp, "bad.tar"), **kw)
    r = b.ctl("import", bad, check=False)
    assert r.rc == 1 and "refused" in r.err and msg in r.err, (case, r)
    # one line, the reason said once (it was once wrapped in itself)
    assert len(r.err.strip().splitlines()) == 1 and r.err.count("bundle refused") == 1, (case, r.err)
    store_is_clean(b)


def test_bundle_directory_entries_are_skipped(two, tmp):
    """tar stores directory names as 'r0/': such entries are skipped (as
    docs/airgap.md says), not refused as an unsafe path."""
    a, b = two
    seed(a, tmp)
    good = os.path.join(tmp, "good.tar")
    a.ctl("export", "acme/tiny", "-o", good)
    dirs = rewrite(good, os.path.join(tmp, "dirs.tar"),
                   add=[entry("r0", type_=tarfile.DIRTYPE), entry("r0/files/sub", type_=tarfile.DIRTYPE)])
    assert "r0/files/sub" in tarfile.open(dirs).getnames()
    r = b.ctl("import", dirs, check=False)
    assert r.rc == 0, r
    assert files_of(a, "acme/tiny") == files_of(b, "acme/tiny")


def test_truncated_bundle_refused(two, tmp):
    a, b = two
    seed(a, tmp)
    for suffix in (".tar", ".tar.zst"):
        good = os.path.join(tmp, "good" + suffix)
        a.ctl("export", "acme/tiny", "-o", good)
        data = open(good, "rb").read()
        for cut in (len(data) // 2, len(data) - 1100):
            bad = os.path.join(tmp, "cut" + suffix)
            with open(bad, "wb") as f:
                f.write(data[:cut])
            r = b.ctl("import", bad, check=False)
            assert r.rc == 1 and "refused" in r.err and ("truncated" in r.err or "missing" in r.err), (cut, r)
            store_is_clean(b)


def test_file_that_is_no_bundle_is_named(two, tmp):
    _, b = two
    for name, data, why in (("garbage.tar", os.urandom(5000), "no tar, zstd, gzip or xz header"),
                            ("empty.tar", b"", "empty file")):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        r = b.ctl("import", p, check=False)
        assert r.rc == 1 and r.err == f"modelctl: {p}: not a tar archive ({why})\n", r.err
        store_is_clean(b)


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def test_decompression_bomb_refused(two, tmp):
    """A well-formed bundle whose one file is 300 MiB of zeros: zstd makes it
    tiny, so the ratio cap stops it long before it is written out."""
    _, b = two
    n = 300 << 20
    zero_sha = hashlib.sha256()
    chunk = bytes(1 << 20)
    for _ in range(n >> 20):
        zero_sha.update(chunk)
    h = zero_sha.hexdigest()
    man = json.dumps({"name": "evil/bomb", "revision": "a" * 40, "total_size": n,
                      "files": [{"path": "w.bin", "size": n, "sha256": h}]}).encode()
    index = json.dumps({"format": "modeld-bundle", "version": 1, "created": "2026-01-01T00:00:00Z",
                        "revisions": [{"name": "evil/bomb", "revision": "a" * 40, "refs": ["main"],
                                       "dir": "r0", "file_count": 1, "total_size": n}]}).encode()
    sums = (f"{hashlib.sha256(index).hexdigest()}  modeld-bundle.json\n"
            f"{hashlib.sha256(man).hexdigest()}  r0/manifest.json\n"
            f"{h}  r0/files/w.bin\n").encode()
    raw = os.path.join(tmp, "bomb.tar")
    with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("modeld-bundle.json", index), ("SHA256SUMS", sums), ("r0/manifest.json", man)):
            ti, d = entry(name, data)
            t.addfile(ti, io.BytesIO(d))
        ti = tarfile.TarInfo("r0/files/w.bin")
        ti.size = n
        t.addfile(ti, io.BufferedReader(Zeros(n)))
    subprocess.run(["zstd", "-q", "-19", "--rm", raw, "-o", raw + ".zst"], check=True)
    assert os.path.getsize(raw + ".zst") < 200 << 10
    r = b.ctl("import", raw + ".zst", check=False)
    assert r.rc == 1 and "decompression bomb" in r.err and "ratio" in r.err, r
    store_is_clean(b)


def test_bundle_export_errors(two, tmp):
    a, _ = two
    r = a.ctl("export", "acme/none", "-o", os.path.join(tmp, "n.tar"), check=False)
    assert r.rc == 1 and not os.path.exists(os.path.join(tmp, "n.tar"))
    r = a.ctl("export", "acme/none", check=False)
    assert r.rc == 2
    # a failed export leaves an existing file alone and no .part behind
    keep = os.path.join(tmp, "keep.tar")
    with open(keep, "wb") as f:
        f.write(b"old")
    r = a.ctl("export", "acme/none", "-o", keep, check=False)
    assert r.rc == 1 and open(keep, "rb").read() == b"old" and not os.path.exists(keep + ".part")
    r = a.ctl("export", "acme/x", "-o", keep, "--sign", os.path.join(tmp, "nokey"), check=False)
    assert r.rc == 1 and "nokey" in r.err


# ---- huggingface_hub cache folders -----------------------------------------

def make_hf_cache(root, repo, commit, files):
    top = os.path.join(root, "models--" + repo.replace("/", "--"))
    snap = os.path.join(top, "snapshots", commit)
    os.makedirs(os.path.join(top, "blobs"))
    os.makedirs(os.path.join(top, "refs"))
    for rel, data in files.items():
        h = hashlib.sha256(data).hexdigest()
        with open(os.path.join(top, "blobs", h), "wb") as f:
            f.write(data)
        p = os.path.join(snap, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.symlink(os.path.relpath(os.path.join(top, "blobs", h), os.path.dirname(p)), p)
    with open(os.path.join(top, "refs", "main"), "w") as f:
        f.write(commit)
    return top


def test_import_hf_cache(daemon, tmp):
    commit = "0123456789abcdef0123456789abcdef01234567"
    files = {"config.json": b'{"a":1}\n', "sub/tok.json": b"{}", "model.safetensors": safetensors_bytes({"w": ("U8", [4000], os.urandom(4000))})}
    top = make_hf_cache(tmp, "org/name", commit, files)
    r = daemon.ctl("--json", "import", top).json()
    assert r["name"] == "org/name" and r["revision"] == commit
    assert daemon.ctl("cat", "org/name@" + commit[:8], "sub/tok.json").out == "{}"
    m = daemon.ctl("--json", "show", "org/name").json()
    assert m["source"]["type"] == "hf-cache" and m["source"]["commit"] == commit
    # a symlink leaving the cache folder is still refused
    os.symlink("/etc/passwd", os.path.join(top, "snapshots", commit, "evil"))
    r = daemon.ctl("import", top, check=False)
    assert r.rc == 1 and "outside" in r.err
    # refs/main that is not a commit
    os.unlink(os.path.join(top, "snapshots", commit, "evil"))
    with open(os.path.join(top, "refs", "main"), "w") as f:
        f.write("../../etc")
    r = daemon.ctl("import", top, check=False)
    assert r.rc == 1 and "refs/main" in r.err


# ---- the mirror: raw HTTP ----------------------------------------------------

def req(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def no_xet(hdrs, body):
    assert not any("xet" in k for k in hdrs), hdrs
    assert b"xet" not in body.lower()


def test_mirror_endpoints(two, tmp):
    a, _ = two
    src = seed(a, tmp)
    big = os.urandom(11 << 20)  # an LFS-sized file with a non-LFS extension
    with open(os.path.join(src, "big.dat"), "wb") as f:
        f.write(big)
    a.ctl("import", src, "--name", "acme/tiny")
    rev = a.ctl("--json", "show", "acme/tiny").json()["revision"]
    P = a.port
    orig = {p: open(os.path.join(src, p), "rb").read() for p in
            ("config.json", "README.md", "model.safetensors", "sub/notes.txt", "big.dat")}

    # model info, HEAD / main / full sha / %2F-encoded
    for path in ("/api/models/acme/tiny", "/api/models/acme/tiny/revision/HEAD",
                 "/api/models/acme/tiny/revision/main", f"/api/models/acme/tiny/revision/{rev}"):
        st, h, body = req(P, "GET", path + "?expand[]=sha&expand[]=gated")
        assert st == 200, (path, body)
        j = json.loads(body)
        no_xet(h, body)
        assert j["id"] == "acme/tiny" and j["sha"] == rev and len(j["_id"]) == 24
        assert j["gated"] is False and j["cardData"]["license"] == "apache-2.0"
        assert j["lastModified"].endswith(".000Z") and "pipeline_tag" not in j or True
        assert sorted(s["rfilename"] for s in j["siblings"]) == sorted(orig) + ["tokenizer.json"]
    st, h, body = req(P, "GET", "/api/models/acme/tiny?blobs=true")
    sib = {s["rfilename"]: s for s in json.loads(body)["siblings"]}
    assert sib["config.json"]["blobId"] == git_blob_sha1(orig["config.json"])
    assert sib["model.safetensors"]["lfs"]["sha256"] == hashlib.sha256(orig["model.safetensors"]).hexdigest()
    st, h, body = req(P, "GET", "/api/models/acme/tiny/revision/refs%2Fpr%2F1")
    assert st == 404 and h["x-error-code"] == "RevisionNotFound" and json.loads(body)["error"]
    st, h, body = req(P, "GET", "/api/models/acme/nope")
    assert st == 404 and h["x-error-code"] == "RepoNotFound" and "error" in json.loads(body)
    st, h, body = req(P, "GET", "/api/models/acme/tiny/revision/deadbeef00")
    assert st == 404 and h["x-error-code"] == "RevisionNotFound"

    # tree: recursive, paged with absolute Link headers, sub-path
    st, h, body = req(P, "GET", "/api/models/acme/tiny/tree/main?recursive=true")
    full = json.loads(body)
    byp = {e["path"]: e for e in full}
    assert byp["sub"]["type"] == "directory" and byp["sub/notes.txt"]["type"] == "file"
    assert byp["config.json"]["oid"] == git_blob_sha1(orig["config.json"]) and "lfs" not in byp["config.json"]
    lfs = byp["model.safetensors"]["lfs"]
    assert lfs["oid"] == hashlib.sha256(orig["model.safetensors"]).hexdigest()
    assert lfs["size"] == len(orig["model.safetensors"]) and lfs["pointerSize"] > 100
    assert "lfs" in byp["big.dat"]
    no_xet(h, body)
    pages, url = [], f"/api/models/acme/tiny/tree/{rev}?recursive=true&limit=2"
    while url:
        st, h, body = req(P, "GET", url)
        assert st == 200
        pages += json.loads(body)
        link = h.get("link")
        if link:
            target = link.split(";")[0].strip("<>")
            assert target.startswith(f"http://127.0.0.1:{P}/api/models/acme/tiny/tree/") and 'rel="next"' in link
            url = target[len(f"http://127.0.0.1:{P}"):]
        else:
            url = None
    assert pages == full and len(pages) > 2
    st, h, body = req(P, "GET", "/api/models/acme/tiny/tree/main")  # not recursive
    assert "sub/notes.txt" not in [e["path"] for e in json.loads(body)]
    st, h, body = req(P, "GET", "/api/models/acme/tiny/tree/main/sub")
    assert [e["path"] for e in json.loads(body)] == ["sub/notes.txt"]
    st, h, body = req(P, "GET", "/api/models/acme/tiny/tree/main/nodir")
    assert st == 404 and h["x-error-code"] == "EntryNotFound"

    # paths-info, JSON and form bodies
    st, h, body = req(P, "POST", "/api/models/acme/tiny/paths-info/main",
                      json.dumps({"paths": ["config.json", "sub", "absent"], "expand": True}),
                      {"Content-Type": "application/json"})
    j = json.loads(body)
    assert st == 200 and [e["path"] for e in j] == ["config.json", "sub"] and j[0]["lastCommit"]["id"] == rev
    st, h, body = req(P, "POST", f"/api/models/acme/tiny/paths-info/{rev}",
                      "paths=model.safetensors&paths=sub%2Fnotes.txt",
                      {"Content-Type": "application/x-www-form-urlencoded"})
    j = json.loads(body)
    assert [e["path"] for e in j] == ["model.safetensors", "sub/notes.txt"] and "lfs" in j[0]

    # resolve: HEAD and GET, headers, ranges
    for p, data in orig.items():
        is_lfs = p in ("model.safetensors", "big.dat")
        etag = hashlib.sha256(data).hexdigest() if is_lfs else git_blob_sha1(data)
        st, h, _ = req(P, "HEAD", f"/acme/tiny/resolve/main/{urllib.parse.quote(p)}")
        assert st == 200 and h["etag"] == f'"{etag}"' and h["x-repo-commit"] == rev
        assert h["content-length"] == str(len(data)) and h["accept-ranges"] == "bytes"
        if is_lfs:
            assert h["x-linked-etag"] == f'"{etag}"' and h["x-linked-size"] == str(len(data))
        no_xet(h, b"")
        st, h, body = req(P, "GET", f"/acme/tiny/resolve/{rev}/{urllib.parse.quote(p, safe='')}")
        assert st == 200 and body == data
    data = orig["big.dat"]
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/big.dat", headers={"Range": "bytes=1000-1999"})
    assert st == 206 and body == data[1000:2000] and h["content-range"] == f"bytes 1000-1999/{len(data)}"
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/big.dat", headers={"Range": "bytes=-10"})
    assert st == 206 and body == data[-10:]
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/big.dat", headers={"Range": f"bytes={len(data) - 5}-"})
    assert st == 206 and body == data[-5:]
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/config.json", headers={"Range": "bytes=0-0"})
    assert st == 206 and h["content-range"] == f"bytes 0-0/{len(orig['config.json'])}"
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/big.dat", headers={"Range": f"bytes={len(data)}-"})
    assert st == 416 and h["content-range"] == f"bytes */{len(data)}"
    st, h, body = req(P, "GET", "/acme/tiny/resolve/main/nope.bin")
    assert st == 404 and h["x-error-code"] == "EntryNotFound" and json.loads(body)["error"]
    st, h, body = req(P, "GET", "/acme/nope/resolve/main/x")
    assert st == 404 and h["x-error-code"] == "RepoNotFound"
    st, h, body = req(P, "GET", "/acme/tiny/resolve/v9/config.json")
    assert st == 404 and h["x-error-code"] == "RevisionNotFound"
    st, h, body = req(P, "DELETE", "/acme/tiny/resolve/main/config.json")
    assert st == 405
    st, h, body = req(P, "POST", "/api/models/acme/tiny/paths-info/main", "x" * (2 << 20),
                      {"Content-Type": "application/json"})
    assert st == 413


def test_mirror_raw_route_and_unencoded_percent(two, tmp):
    """@huggingface/hub's fileExists() sends HEAD /{id}/raw/{rev}/{path}
    (it was a 404, so fileExists said false for every file), and its
    downloadFile() puts paths into URLs unencoded, so a file named
    '100%.txt' arrives as '.../100%.txt' (it was a 400 'bad escape')."""
    a, _ = two
    src = seed(a, tmp)
    make_model(src, {"sub dir/100%.txt": b"percent\n"})
    a.ctl("import", src, "--name", "acme/pct")
    rev = a.ctl("--json", "show", "acme/pct").json()["revision"]
    weights = open(os.path.join(src, "model.safetensors"), "rb").read()
    sha = hashlib.sha256(weights).hexdigest()
    # raw of a small file: its bytes, like resolve
    st, h, body = req(a.port, "GET", "/acme/pct/raw/main/config.json")
    assert st == 200 and body == open(os.path.join(src, "config.json"), "rb").read()
    assert h["x-repo-commit"] == rev
    # raw of an LFS file: the pointer git holds, as the Hub answers
    st, h, body = req(a.port, "GET", "/acme/pct/raw/main/model.safetensors")
    ptr = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(weights)}\n".encode()
    assert st == 200 and body == ptr, (st, body)
    assert h["etag"] == '"%s"' % git_blob_sha1(ptr) and "x-linked-etag" not in h
    st, h, _ = req(a.port, "HEAD", "/acme/pct/raw/main/model.safetensors")
    assert st == 200 and h["content-length"] == str(len(ptr))
    st, h, _ = req(a.port, "HEAD", "/acme/pct/raw/main/nope.txt")
    assert st == 404 and h["x-error-code"] == "EntryNotFound"
    # '%' not followed by two hex digits stands for itself; %25 still decodes
    for url in ("/acme/pct/resolve/main/sub%20dir/100%.txt", "/acme/pct/resolve/main/sub%20dir/100%25.txt"):
        st, _, body = req(a.port, "GET", url)
        assert st == 200 and body == b"percent\n", (url, st, body)
    st, h, _ = req(a.port, "GET", "/acme/pct/resolve/main/%zz")
    assert st == 404 and h["x-error-code"] == "EntryNotFound"
    st, _, _ = req(a.port, "GET", "/acme/pct/resolve/main/config.json%00")
    assert st == 400


def test_mirror_token(tmp):
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("s3cret-token\n")
    cfg = os.path.join(tmp, "modeld.conf")
    port = free_port()
    with open(cfg, "w") as f:
        f.write(f"http = 127.0.0.1:{port}\nhttp_token_file = {tok}\n")
    d = Daemon(tmp, extra=["--config", cfg]).start()
    try:
        d.ctl("import", tiny_llama(os.path.join(tmp, "m")), "--name", "acme/t")
        st, h, body = req(port, "GET", "/api/models/acme/t")
        assert st == 401 and "error" in json.loads(body)
        st, h, body = req(port, "GET", "/api/models/acme/t", headers={"Authorization": "Bearer wrong"})
        assert st == 401
        st, h, body = req(port, "GET", "/api/models/acme/t",
                          headers={"Authorization": "Bearer s3cret-token"})
        assert st == 200 and json.loads(body)["id"] == "acme/t"
    finally:
        assert d.stop() == 0, d.read_log()[-3000:]


def test_mirror_bad_address(tmp):
    r = subprocess.run([os.path.join(ROOT, os.environ.get("MODELD_BUILD", "build"), "modeld"), "-f",
                        "--store", os.path.join(tmp, "s"), "--socket", os.path.join(tmp, "s.sock"),
                        "--http", "localhost-ish"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "ADDR:PORT" in r.stderr


# ---- the official @huggingface/hub client --------------------------------------

NODE_SCRIPT = r"""
const hub = await import(process.argv[2]);
const [hubUrl, cacheDir, repo] = process.argv.slice(3);
const dir = await hub.snapshotDownload({ repo, hubUrl, cacheDir });
const blob = await hub.downloadFile({ repo, path: "sub/notes.txt", hubUrl });
const info = await hub.modelInfo({ name: repo, hubUrl, additionalFields: ["sha"] });
const files = [];
for await (const f of hub.listFiles({ repo, hubUrl, recursive: true })) files.push(f.path);
const exists = [await hub.fileExists({ repo, hubUrl, path: "model.safetensors" }),
                await hub.fileExists({ repo, hubUrl, path: "config.json" }),
                await hub.fileExists({ repo, hubUrl, path: "nope.txt" })];
console.log(JSON.stringify({ dir, notes: await blob.text(), sha: info.sha, files, exists }));
"""


def npm_hub():
    entry_ = os.path.join(NPM_PREFIX, "node_modules", "@huggingface", "hub", "dist", "index.mjs")
    if not os.path.exists(entry_):
        try:
            subprocess.run(["npm", "install", "--prefix", NPM_PREFIX, "--no-audit", "--no-fund",
                            "@huggingface/hub"], check=True, capture_output=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError) as e:
            pytest.skip(f"npm registry unreachable, @huggingface/hub not installed: {e}")
    return entry_


def test_official_hf_js_client(two, tmp):
    a, b = two
    mod = npm_hub()
    src = seed(a, tmp)
    rev = a.ctl("--json", "show", "acme/tiny").json()["revision"]
    cache = os.path.join(tmp, "hfcache")
    script = os.path.join(tmp, "dl.mjs")
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    r = subprocess.run(["node", script, mod, f"http://127.0.0.1:{a.port}", cache, "acme/tiny"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["sha"] == rev and out["notes"] == "hello\n"
    assert out["exists"] == [True, True, False], out["exists"]  # fileExists uses /raw/
    assert out["dir"].endswith(f"models--acme--tiny/snapshots/{rev}")
    for root, _, fs in os.walk(src):
        for fn in fs:
            rel = os.path.relpath(os.path.join(root, fn), src)
            with open(os.path.join(root, fn), "rb") as x, open(os.path.join(out["dir"], rel), "rb") as y:
                assert x.read() == y.read(), rel
    # and that cache folder imports into the second store as the same revision
    r = b.ctl("--json", "import", os.path.join(cache, "models--acme--tiny")).json()
    assert r["name"] == "acme/tiny" and r["revision"] == rev
    assert files_of(a, "acme/tiny") == files_of(b, "acme/tiny")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_export_import_and_serving_memory_flat(two, tmp):
    """A 256 MiB file goes through export, import and the mirror without the
    daemons' peak RSS growing by more than a few MiB (streamed, not buffered)."""
    a, b = two
    if a.valgrind:
        pytest.skip("RSS under valgrind means nothing")
    src = os.path.join(tmp, "big")
    os.makedirs(src)
    with open(os.path.join(src, "w.safetensors"), "wb") as f:
        # a valid safetensors file (weight files are parsed), streamed out
        hdr = json.dumps({"w": {"dtype": "U8", "shape": [256 << 20],
                                "data_offsets": [0, 256 << 20]}}).encode()
        hdr += b" " * ((8 - len(hdr) % 8) % 8)
        f.write(struct.pack("<Q", len(hdr)) + hdr)
        for _ in range(256):
            f.write(os.urandom(1 << 20))
    a.ctl("import", src, "--name", "acme/big")
    before = vm_hwm_kib(a.proc.pid)
    out = os.path.join(tmp, "big.tar.zst")
    a.ctl("export", "acme/big", "-o", out)
    st, h, _ = req(a.port, "HEAD", "/acme/big/resolve/main/w.safetensors")
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    c.request("GET", "/acme/big/resolve/main/w.safetensors")
    r = c.getresponse()
    n = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
    c.close()
    assert n == os.path.getsize(os.path.join(src, "w.safetensors"))
    grow = vm_hwm_kib(a.proc.pid) - before
    assert grow < 48 << 10, f"exporting/serving 256 MiB raised peak RSS by {grow} KiB"
    b_before = vm_hwm_kib(b.proc.pid)
    b.ctl("import", out)
    grow = vm_hwm_kib(b.proc.pid) - b_before
    assert grow < 48 << 10, f"importing a 256 MiB bundle raised peak RSS by {grow} KiB"


def test_large_file_checksum_mismatch_refused(two, tmp):
    """Files of 4 MiB and more are hashed by a second thread following the
    staged file: a flipped byte deep inside is still caught."""
    a, b = two
    src = make_model(os.path.join(tmp, "m"), {"config.json": b"{}", "w.bin": os.urandom(9 << 20)})
    a.ctl("import", src, "--name", "acme/large")
    good = os.path.join(tmp, "good.tar")
    a.ctl("export", "acme/large", "-o", good)

    def flip_late(d):
        return d[:7 << 20] + bytes([d[7 << 20] ^ 0x80]) + d[(7 << 20) + 1:]
    bad = rewrite(good, os.path.join(tmp, "bad.tar"), edit={"r0/files/w.bin": flip_late})
    r = b.ctl("import", bad, check=False)
    assert r.rc == 1 and "w.bin" in r.err and "does not match" in r.err, r
    store_is_clean(b)
    b.ctl("import", good)
    assert files_of(a, "acme/large") == files_of(b, "acme/large")


# ---- a modeld as another modeld's hub ----------------------------------------

def test_second_modeld_pulls_from_the_first(two, tmp):
    a, b = two
    src = seed(a, tmp)
    r = b.ctl("pull", "acme/tiny", "--hub", f"http://127.0.0.1:{a.port}", "--json").json()
    assert r["revision"] == a.ctl("--json", "show", "acme/tiny").json()["revision"]
    assert files_of(b, "acme/tiny") == files_of(a, "acme/tiny")
    for p in ("model.safetensors", "config.json", "sub/notes.txt"):
        assert b.ctl("cat", "acme/tiny", p, binary=True).out == open(os.path.join(src, p), "rb").read()
    assert b.ctl("--json", "verify").json()["ok"]


def test_mirror_pulls_through_from_upstream(two, tmp):
    a, _ = two
    seed(a, tmp, "acme/far")
    port = free_port()
    c = Daemon(os.path.join(tmp, "c"), extra=["--http", f"127.0.0.1:{port}",
                                               "--upstream", f"http://127.0.0.1:{a.port}"])
    os.makedirs(c.tmp, exist_ok=True)
    c.start()
    try:
        # c does not have it: the API request pulls it through from a
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models/acme/far", timeout=60) as r:
            info = json.loads(r.read())
        assert info["id"] == "acme/far" and len(info["sha"]) == 40
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/acme/far/resolve/main/config.json",
                                    timeout=60) as r:
            assert r.read() == a.ctl("cat", "acme/far", "config.json", binary=True).out
        assert c.ctl("--json", "list").json()[0]["name"] == "acme/far"
        # an unknown repository stays a 404 with the hub's error code
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models/acme/none", timeout=60)
            assert False
        except urllib.error.HTTPError as e:
            assert e.code in (401, 404) and e.headers["X-Error-Code"] == "RepoNotFound"
    finally:
        assert c.stop() == 0
