"""modelctl pull git+URL against a real git smart-HTTP host on loopback
(tests/fixtures/githost.py: git http-backend behind nginx + fcgiwrap, and a
Git LFS batch endpoint), and git+file://. Repositories are made here with
git and git-lfs."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import MODELCTL, ROOT, Daemon, tiny_llama, safetensors_bytes

PY = "/usr/bin/python3"
GITHOST = os.path.join(ROOT, "tests/fixtures/githost.py")
ENV = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME="/nonexistent",
           GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")


def git(cwd, *args, input=None):
    p = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, input=input, timeout=60)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout.decode().strip()


class Host:
    def __init__(self, root, auth=None):
        self.root = root
        cmd = [PY, GITHOST, "--root", root] + (["--auth", auth] if auth else [])
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.strip().isdigit(), self.p.stderr.read()
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def batch_log(self):
        p = os.path.join(self.root, "lfs-batch.log")
        return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

    def object_gets(self):
        p = os.path.join(self.root, "run", "access.log")
        return [l for l in open(p) if "/lfs-objects/" in l and "modeld" in l]

    def repo(self, org, name):
        """A working repo with LFS tracking *.safetensors, published as
        ROOT/repos/ORG/NAME.git by publish()."""
        work = os.path.join(self.root, "work", org, name)
        os.makedirs(work)
        git(work, "init", "-q", "-b", "main")
        git(work, "lfs", "install", "--local")
        git(work, "lfs", "track", "*.safetensors")
        return work

    def commit(self, work, msg="c"):
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", msg)
        return git(work, "rev-parse", "HEAD")

    def publish(self, work, org, name):
        bare = os.path.join(self.root, "repos", org, name + ".git")
        if not os.path.exists(bare):
            os.makedirs(os.path.dirname(bare), exist_ok=True)
            git(self.root, "init", "-q", "--bare", "-b", "main", bare)
        git(work, "push", "-q", "--no-verify", "--force", bare, "--all")
        git(work, "push", "-q", "--no-verify", "--force", bare, "--tags")
        objs = os.path.join(work, ".git", "lfs", "objects")
        for d, _, fs in os.walk(objs):
            for f in fs:
                dst = os.path.join(self.root, "lfs", f)
                if not os.path.exists(dst):
                    shutil.copy(os.path.join(d, f), dst)
        return f"git+{self.url}/{org}/{name}.git"

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


@pytest.fixture
def host(tmp_path):
    h = Host(str(tmp_path / "host"))
    yield h
    h.stop()


def published(host, name, seed, **kw):
    """tiny_llama(seed) committed and published as acme/NAME on host:
    (work tree, commit, git+ URL)."""
    work = host.repo("acme", name)
    tiny_llama(work, seed=seed, **kw)
    c = host.commit(work)
    return work, c, host.publish(work, "acme", name)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def files_of(work):
    out = {}
    for d, dirs, fs in os.walk(work):
        dirs[:] = [x for x in dirs if x != ".git"]
        for f in fs:
            p = os.path.join(d, f)
            out[os.path.relpath(p, work)] = sha(open(p, "rb").read())
    return out


def check_stored(daemon, name, work):
    show = daemon.ctl("show", name, "--json").json()
    got = {f["path"]: f["sha256"] for f in show["files"]}
    assert got == files_of(work)
    for path, h in got.items():
        assert sha(daemon.ctl("cat", name, path, binary=True).out) == h, path
    assert daemon.ctl("verify", "--json").json()["ok"]
    return show


def nothing_stored(daemon, name):
    assert name not in daemon.ctl("list").out
    tmp = os.path.join(daemon.store, "tmp")
    left = [d for d in os.listdir(tmp) if d.startswith("pull-")] if os.path.isdir(tmp) else []
    assert not left, left


def test_pull_branch_tag_commit(daemon, host):
    work = host.repo("acme", "tiny")
    tiny_llama(work, seed=1)
    c1 = host.commit(work, "one")
    git(work, "tag", "v1")
    git(work, "tag", "-a", "-m", "annotated", "v1a")
    url = host.publish(work, "acme", "tiny")
    r = daemon.ctl("pull", url, "--json").json()
    assert r["name"] == "acme/tiny" and r["revision"] == c1
    show = check_stored(daemon, "acme/tiny", work)
    fmt = {f["path"]: f.get("format") for f in show["files"]}
    assert fmt["model.safetensors"] == "safetensors"   # LFS object converted
    prov = show["provenance"]
    assert prov["remote"] == url[4:] and prov["ref"] == "main" and prov["commit"] == c1
    assert prov["tree"] == git(work, "rev-parse", "HEAD^{tree}")
    assert show["source"]["type"] == "git"
    kinds = {f["path"]: f["verified_against"] for f in prov["files"]}
    assert kinds["model.safetensors"].startswith("LFS oid") and kinds["config.json"] == "git object id"
    assert show["license"]["spdx"] == "Apache-2.0"
    job = [j for j in daemon.ctl("jobs", "--json").json() if j.get("op") == "pull"][-1]
    assert job["done"] == job["total"], job   # each byte counted once
    log = host.batch_log()
    assert len(log) == 1 and log[0]["operation"] == "download"
    assert log[0]["accept"] == "application/vnd.git-lfs+json"
    assert log[0]["content_type"] == "application/vnd.git-lfs+json"
    assert log[0]["path"] == "/acme/tiny.git/info/lfs/objects/batch"
    assert log[0]["oids"] == [files_of(work)["model.safetensors"]]

    # a second commit on main; v1 stays on the first
    with open(os.path.join(work, "config.json"), "w") as f:
        f.write('{"architectures":["LlamaForCausalLM"],"hidden_size":128}\n')
    c2 = host.commit(work, "two")
    host.publish(work, "acme", "tiny")
    assert daemon.ctl("pull", url + "@main", "--json").json()["revision"] == c2
    check_stored(daemon, "acme/tiny@" + c2, work)
    r1 = daemon.ctl("pull", url + "@v1", "--json").json()
    assert r1["revision"] == c1 and r1.get("existed")
    assert "v1" in daemon.ctl("show", "acme/tiny@v1", "--json").json()["refs"]
    assert daemon.ctl("pull", url + "@v1a", "--json").json()["revision"] == c1   # peeled
    assert daemon.ctl("pull", url + "@" + c1, "--json").json()["revision"] == c1
    assert daemon.ctl("pull", url + "@" + c2[:10], "--json").json()["revision"] == c2
    # --include / --exclude as for hub pulls
    r = daemon.ctl("pull", url + "@v1", "--name", "acme/only-json", "--include", "*.json",
                   "--exclude", "tokenizer*", "--json").json()
    assert {f["path"] for f in daemon.ctl("show", "acme/only-json", "--json").json()["files"]} == {"config.json"}
    # --name and --source git with a plain URL
    r = daemon.ctl("pull", url[4:] + "@v1", "--source", "git", "--name", "other/copy", "--json").json()
    assert r["name"] == "other/copy" and r["revision"] == c1


def test_update_fetches_only_new(daemon, host):
    work, _, url = published(host, "grow", 2)
    daemon.ctl("pull", url)
    n_batch, n_gets = len(host.batch_log()), len(host.object_gets())
    assert n_gets >= 1
    cache = os.path.join(daemon.store, "git")
    packs_before = set(glob.glob(os.path.join(cache, "*.git", "objects", "pack", "*.idx")))
    old_objects = {l.split()[0] for l in git(work, "rev-list", "--objects", "--all").splitlines()}
    # add a second LFS file; the first is unchanged
    extra = safetensors_bytes({"x": ("U8", [4096], os.urandom(4096))})
    with open(os.path.join(work, "extra.safetensors"), "wb") as f:
        f.write(extra)
    c2 = host.commit(work)
    host.publish(work, "acme", "grow")
    assert daemon.ctl("pull", url, "--json").json()["revision"] == c2
    new = host.batch_log()[n_batch:]
    assert [o for e in new for o in e["oids"]] == [sha(extra)]
    gets = host.object_gets()[n_gets:]
    assert len(gets) == 1 and sha(extra) in gets[0]
    check_stored(daemon, "acme/grow", work)
    # the git fetch brought only objects the cache lacked
    new_packs = set(glob.glob(os.path.join(cache, "*.git", "objects", "pack", "*.idx"))) - packs_before
    fetched = set()
    for idx in new_packs:
        out = subprocess.run(["git", "show-index"], stdin=open(idx, "rb"), capture_output=True,
                             text=True, check=True).stdout
        fetched |= {line.split()[1] for line in out.splitlines()}
    want_new = {l.split()[0] for l in git(work, "rev-list", "--objects", "--all").splitlines()} - old_objects
    # (libgit2 completes a thin pack with the local delta bases it used: at
    # most a base or two of the old objects appear in the new pack)
    assert want_new <= fetched and len(fetched & old_objects) <= 2, (fetched, want_new)
    assert len(fetched) < len(old_objects)
    # the bare cache is reused: one cache for this remote
    caches = [d for d in os.listdir(os.path.join(daemon.store, "git")) if d.endswith(".git")]
    assert len(caches) == 1


def test_filtered_pull_is_recorded_partial_and_completed_later(daemon, host):
    """A filtered git pull stores part of a commit and says so in the
    provenance; a later pull of the same commit without filters fetches only
    the LFS objects it lacks and commits the union, not "up to date"."""
    work = host.repo("acme", "part")
    tiny_llama(work, seed=4)
    extra = safetensors_bytes({"x": ("U8", [4096], os.urandom(4096))})
    with open(os.path.join(work, "extra.safetensors"), "wb") as f:
        f.write(extra)
    c = host.commit(work)
    url = host.publish(work, "acme", "part")
    r = daemon.ctl("pull", url, "--include", "*.json", "--include", "extra.safetensors",
                   "--json").json()
    assert r["revision"] == c
    show = daemon.ctl("show", "acme/part", "--json").json()
    first = {f["path"] for f in show["files"]}
    assert first == {"config.json", "tokenizer.json", "extra.safetensors"}, first
    prov = show["provenance"]
    assert prov["partial"] is True and prov["exclude"] == []
    assert prov["include"] == ["*.json", "extra.safetensors"]
    assert "pulled:    partial" in daemon.ctl("show", "acme/part").out
    gets = host.object_gets()
    assert len(gets) == 1 and sha(extra) in gets[0], gets
    # the same filtered pull again: up to date, nothing fetched
    n_batch, n_gets = len(host.batch_log()), len(host.object_gets())
    r2 = daemon.ctl("pull", url, "--include", "*.json")
    assert r2.out.startswith("up to date acme/part@"), r2
    assert host.object_gets()[n_gets:] == [] and host.batch_log()[n_batch:] == []
    # a pull without filters fetches the missing LFS object only
    r3 = daemon.ctl("pull", url)
    assert r3.out.startswith("pulled acme/part@"), r3
    weights = files_of(work)["model.safetensors"]
    assert [o for e in host.batch_log()[n_batch:] for o in e["oids"]] == [weights]
    gets = host.object_gets()[n_gets:]
    assert len(gets) == 1 and weights in gets[0], gets
    show = check_stored(daemon, "acme/part", work)
    for path in files_of(work):
        with open(os.path.join(work, path), "rb") as f:
            assert daemon.ctl("cat", "acme/part", path, binary=True).out == f.read(), path
    prov = show["provenance"]
    assert prov["partial"] is False and prov["include"] == [] and prov["exclude"] == []
    assert prov["previous"]["partial"] is True and "files" not in prov["previous"]
    assert prov["commit"] == c and show["license"]["spdx"] == "Apache-2.0"
    kinds = {f["path"]: f["verified_against"] for f in prov["files"]}
    assert set(kinds) == set(files_of(work))
    assert kinds["model.safetensors"].startswith("LFS oid")
    assert kinds["extra.safetensors"].startswith("LFS oid")   # kept from the first pull
    assert "pulled:    every file" in daemon.ctl("show", "acme/part").out
    # complete: up to date, nothing fetched
    n_batch, n_gets = len(host.batch_log()), len(host.object_gets())
    r4 = daemon.ctl("pull", url, "--json").json()
    assert r4.get("existed") and r4["file_count"] == len(files_of(work))
    assert host.object_gets()[n_gets:] == [] and host.batch_log()[n_batch:] == []
    assert len(daemon.ctl("list", "--json").json()) == 1
    assert daemon.ctl("verify", "--json").json()["ok"]


def test_full_and_filtered_pulls_from_two_remotes_at_once_store_every_file(daemon, host):
    """The same commit behind two remotes, pulled under one --name at once:
    a slow full pull from one and a quick filtered pull from the other. The
    revision ends up with every file, not the filtered pull's part."""
    work = host.repo("acme", "twice")
    tiny_llama(work, seed=12, weights=8 << 20)
    c = host.commit(work)
    url_a = host.publish(work, "acme", "twice-a")
    url_b = host.publish(work, "acme", "twice-b")
    full = daemon.ctl("pull", url_a, "--name", "acme/twice", "--limit-rate", "2M",
                      "--detach", "--json").json()
    for _ in range(200):   # the full pull asked for its weights
        if host.batch_log():
            break
        time.sleep(0.05)
    assert host.batch_log()
    part = daemon.ctl("pull", url_b, "--name", "acme/twice", "--include", "*.json", "--json",
                      timeout=120).json()
    assert part["revision"] == c
    st = None
    for _ in range(600):
        st = [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == full["job"]][-1]
        if st["state"] != "running":
            break
        time.sleep(0.1)
    assert st["state"] == "done", st
    show = check_stored(daemon, "acme/twice", work)
    assert show["provenance"]["partial"] is False, show["provenance"]


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
def test_git_pull_under_valgrind(tmp, host):
    """A git pull (libgit2 fetch, LFS batch and download, conversion) leaves
    the daemon with no memory errors and no definite leaks."""
    work, _, url = published(host, "vg", 13, weights=100000)
    d = Daemon(tmp, valgrind=True).start()
    try:
        d.ctl("pull", url, timeout=120)
        d.ctl("pull", url, "--include", "*.json", timeout=120)
    finally:
        rc = d.stop()
    report = open(d.log + ".vg").read()
    assert rc == 0 and "ERROR SUMMARY: 0 errors" in report, report[-4000:]


def test_batch_endpoint_redirect_followed(daemon, host):
    """A 307 from the LFS batch endpoint is followed (the POST repeated at
    the new address), as git-lfs does."""
    work, _, url = published(host, "moved", 14)
    import urllib.request
    urllib.request.urlopen(host.url + "/acme/moved.git/info/lfs/_ctl/redirect?n=1").read()
    daemon.ctl("pull", url)
    log = host.batch_log()
    assert [e["path"].endswith("?moved=1") for e in log] == [False, True], log
    assert log[1]["operation"] == "download" and log[1]["oids"] == log[0]["oids"]
    check_stored(daemon, "acme/moved", work)


def test_pull_waiting_for_the_same_remote_can_be_canceled(daemon, host):
    """A second pull of a remote whose cache another pull holds waits for
    it, and a cancel stops it while it waits."""
    work, _, url = published(host, "busy", 15, weights=8 << 20)

    def state(job):
        return [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == job][-1]

    first = daemon.ctl("pull", url, "--limit-rate", "1M", "--detach", "--json").json()["job"]
    for _ in range(200):
        if host.batch_log():
            break
        time.sleep(0.05)
    second = daemon.ctl("pull", url, "--include", "*.json", "--detach", "--json").json()["job"]
    time.sleep(0.5)
    assert state(second)["state"] == "running"
    daemon.ctl("cancel", second)
    t0 = time.time()
    while state(second)["state"] == "running" and time.time() - t0 < 10:
        time.sleep(0.05)
    st = state(second)
    assert st["state"] == "canceled" and time.time() - t0 < 3, st
    assert state(first)["state"] == "running"
    daemon.ctl("cancel", first)


def test_filters_selecting_nothing_are_named(daemon, host):
    work, _, url = published(host, "none", 16)
    r = daemon.ctl("pull", url, "--include", "*.nothing", check=False)
    n = len(files_of(work))
    assert r.rc == 1 and "none of its %d files matches --include '*.nothing'" % n in r.err, r
    nothing_stored(daemon, "acme/none")


def test_expired_links_requested_again(daemon, host):
    work, _, url = published(host, "exp", 8)
    import urllib.request
    urllib.request.urlopen(host.url + "/acme/exp.git/info/lfs/_ctl/expire?n=1").read()
    daemon.ctl("pull", url)
    assert len(host.batch_log()) == 2          # the expired answer, then a fresh one
    check_stored(daemon, "acme/exp", work)
    urllib.request.urlopen(host.url + "/acme/exp.git/info/lfs/_ctl/expire?n=5").read()
    work2 = host.repo("acme", "exp2")
    tiny_llama(work2, seed=9)
    host.commit(work2)
    r = daemon.ctl("pull", host.publish(work2, "acme", "exp2"), check=False)
    assert r.rc != 0 and "already expired" in r.err
    nothing_stored(daemon, "acme/exp2")


def test_kill9_mid_lfs_download_resumes(tmp, host):
    work, c, url = published(host, "slow", 10, weights=8 << 20)
    store = os.path.join(tmp, "store")
    d = Daemon(tmp, store=store).start()
    p = subprocess.Popen([MODELCTL, "--socket", d.sock, "-q", "pull", url, "--limit-rate", "2M"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    d.kill9()
    p.wait(30)
    n = len(host.object_gets())
    assert n >= 1
    d2 = Daemon(tmp, store=store).start()
    try:
        d2.ctl("gc")
        assert d2.ctl("pull", url, "--json").json()["revision"] == c
        check_stored(d2, "acme/slow", work)
        after = host.object_gets()[n:]
        assert any('range="bytes=' in l and 'range="bytes=0-' not in l for l in after), after
    finally:
        d2.stop()


def test_file_url_and_lfsconfig(daemon, host):
    work = host.repo("acme", "local")
    tiny_llama(work, seed=3)
    c = host.commit(work)
    r = daemon.ctl("pull", "git+file://" + work, "--json").json()
    assert r["name"] == "acme/local" and r["revision"] == c
    show = check_stored(daemon, "acme/local", work)
    assert show["provenance"]["lfs_transfer"] == "local lfs/objects"
    assert host.batch_log() == []
    # .lfsconfig lfs.url is honoured (objects live on the HTTP host)
    work2 = host.repo("acme", "cfg")
    tiny_llama(work2, seed=4)
    with open(os.path.join(work2, ".lfsconfig"), "w") as f:
        f.write(f'[lfs]\n\turl = "{host.url}/elsewhere/store.git/info/lfs"\n')
    c2 = host.commit(work2)
    host.publish(work2, "acme", "cfg")
    shutil.rmtree(os.path.join(work2, ".git", "lfs"))   # not readable locally
    r = daemon.ctl("pull", "git+file://" + work2, "--json").json()
    assert r["revision"] == c2
    assert host.batch_log()[-1]["path"] == "/elsewhere/store.git/info/lfs/objects/batch"
    assert daemon.ctl("show", "acme/cfg", "--json").json()["provenance"]["lfs_endpoint"] == \
        f"{host.url}/elsewhere/store.git/info/lfs"


def pointer(oid, size):
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def bad_missing(host, work):
    with open(os.path.join(work, "weights.bin"), "wb") as f:
        f.write(pointer("ab" * 32, 123))
    return "weights.bin"


def bad_size(host, work):
    real = safetensors_bytes({"x": ("U8", [64], bytes(64))})
    oid = sha(real)
    open(os.path.join(host.root, "lfs", oid), "wb").write(real)
    with open(os.path.join(work, "w.bin"), "wb") as f:
        f.write(pointer(oid, len(real) + 7))
    return "w.bin"


def bad_submodule(host, work):
    git(work, "add", "-A")
    git(work, "update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",vendor/sub")
    return "vendor/sub"


def bad_symlink(host, work):
    os.symlink("/etc/passwd", os.path.join(work, "link.json"))
    return "link.json"


def bad_dotdot(host, work):
    git(work, "add", "-A")
    blob = git(work, "hash-object", "-w", "--stdin", input=b"x\n")
    inner = git(work, "mktree", input=f"100644 blob {blob}\tevil.txt\n".encode())
    top = git(work, "write-tree")
    entries = git(work, "ls-tree", top) + f"\n040000 tree {inner}\t..\n"
    tree = git(work, "mktree", input=entries.encode())
    c = git(work, "commit-tree", tree, "-m", "evil")
    git(work, "update-ref", "refs/heads/main", c)
    return "..: path refused"


def bad_pointer_syntax(host, work):
    with open(os.path.join(work, "p.bin"), "wb") as f:
        f.write(b"version https://git-lfs.github.com/spec/v1\noid sha256:XYZ\nsize 1\n")
    return "p.bin"


def bad_pickle(host, work):
    subprocess.run(["/usr/bin/python3", "-c", "import argparse, sys, torch; "
                    "torch.save(argparse.Namespace(lr=0.1), sys.argv[1])",
                    os.path.join(work, "training_args.bin")], check=True, timeout=120)
    return "training_args.bin: refused: global argparse.Namespace"


@pytest.mark.parametrize("make,words", [
    (bad_pickle, "(--exclude training_args.bin pulls the rest)"),
    (bad_missing, "missing on the server"),
    (bad_size, "size"),
    (bad_submodule, "submodule"),
    (bad_symlink, "symlink"),
    (bad_dotdot, "path refused"),
    (bad_pointer_syntax, "malformed Git LFS pointer"),
])
def test_bad_repos_refused_nothing_stored(daemon, host, make, words):
    work = host.repo("acme", "bad")
    tiny_llama(work, seed=5)
    what = make(host, work)
    if make not in (bad_dotdot,):
        if make is bad_submodule:
            git(work, "commit", "-q", "-m", "bad")
        else:
            host.commit(work, "bad")
    url = host.publish(work, "acme", "bad")
    r = daemon.ctl("pull", url, check=False)
    assert r.rc != 0
    assert what in r.err and words in r.err, r.err
    nothing_stored(daemon, "acme/bad")


def test_wrong_size_refused_when_the_oid_is_already_stored(daemon, host):
    # the store holds oid X from one repo; another repo's pointer to X with
    # the wrong size is the same error as on a store that must download X
    work = host.repo("acme", "good")
    real = safetensors_bytes({"x": ("U8", [64], bytes(range(64)))})
    with open(os.path.join(work, "w.safetensors"), "wb") as f:
        f.write(real)
    host.commit(work)
    daemon.ctl("pull", host.publish(work, "acme", "good"))
    work2 = host.repo("acme", "bad")
    tiny_llama(work2, seed=5)
    with open(os.path.join(work2, "w.bin"), "wb") as f:
        f.write(pointer(sha(real), len(real) + 7))
    host.commit(work2)
    r = daemon.ctl("pull", host.publish(work2, "acme", "bad"), check=False)
    assert r.rc == 1, r.err
    assert "w.bin" in r.err and "size" in r.err and str(len(real) + 7) in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    nothing_stored(daemon, "acme/bad")


def test_bad_ref_and_urls(daemon, host):
    work, _, url = published(host, "refs", 6)
    r = daemon.ctl("pull", url + "@nosuch", check=False)
    assert r.rc != 0 and "nosuch: no such branch, tag or commit" in r.err
    r = daemon.ctl("pull", url + "@" + "0" * 40, check=False)
    assert r.rc != 0 and "no such branch, tag or commit" in r.err
    r = daemon.ctl("pull", f"git+{host.url}/acme/absent.git", check=False)
    assert r.rc != 0 and "acme/absent.git" in r.err and "404" in r.err
    r = daemon.ctl("pull", "git+ftp://example.org/a/b.git", check=False)
    assert r.rc != 0 and "not supported" in r.err
    r = daemon.ctl("pull", f"git+{host.url}/x.git", check=False)
    assert r.rc != 0 and "--name" in r.err
    nothing_stored(daemon, "acme/refs")


def test_credentials_file_and_userinfo(tmp, tmp_path):
    h = Host(str(tmp_path / "authhost"), auth="bob:s3cr3t-t0ken")
    try:
        work, c, url = published(h, "private", 7)
        d = Daemon(tmp).start()
        try:
            r = d.ctl("pull", url, check=False)
            assert r.rc != 0 and "the server wants credentials" in r.err, r
            nothing_stored(d, "acme/private")
            r = d.ctl("pull", url.replace("http://", "http://bob:wrong@"), check=False)
            assert r.rc != 0 and "refused the credentials" in r.err and "wrong" not in r.err, r
            # the URL's user info
            authed = url.replace("http://", "http://bob:s3cr3t-t0ken@")
            r = d.ctl("pull", authed, "--json").json()
            assert r["revision"] == c
            assert h.batch_log()[-1]["auth"]
            show = d.ctl("show", "acme/private", "--json")
            assert "s3cr3t" not in show.out and "bob" not in show.out
        finally:
            d.stop()
        assert "s3cr3t" not in d.read_log()
        # a credential file named in the config
        cred = os.path.join(tmp, "git-credentials")
        with open(cred, "w") as f:
            f.write(f"# test\nhttp://bob:s3cr3t-t0ken@127.0.0.1:{h.port}\n")
        cfg = os.path.join(tmp, "modeld.conf")
        with open(cfg, "w") as f:
            f.write(f"git_credentials = {cred}\n")
        d2 = Daemon(os.path.join(tmp), extra=["--config", cfg], store=os.path.join(tmp, "store2"))
        d2.start()
        try:
            assert d2.ctl("pull", url, "--json").json()["revision"] == c
            check_stored(d2, "acme/private", work)
        finally:
            d2.stop()
        assert "s3cr3t" not in d2.read_log()
    finally:
        h.stop()


def test_percent_encoded_userinfo(tmp, tmp_path):
    """A token holding '@', ':' or '/' can only be written %-encoded in the
    URL (as git and curl expect); it is decoded before it is sent, for git
    and LFS alike. A failure with user info in the URL still says why,
    without the token."""
    h = Host(str(tmp_path / "authhost"), auth="bob:p@ss/w#rd")
    try:
        work, c, url = published(h, "private", 7)
        d = Daemon(tmp).start()
        try:
            r = d.ctl("pull", url.replace("http://", "http://bob:p%40ss%2Fw%23rd@"), "--json")
            assert r.json()["revision"] == c
            assert h.batch_log()[-1]["auth"]
            check_stored(d, "acme/private", work)
            r = d.ctl("pull", "git+http://bob:t0psecret@127.0.0.1:1/acme/x.git", check=False)
            assert r.rc == 1 and "Connection refused" in r.err and "t0psecret" not in r.err, r
        finally:
            d.stop()
        log = d.read_log()
        assert "p%40ss" not in log and "p@ss" not in log and "t0psecret" not in log
    finally:
        h.stop()


def test_damaged_cache_recovered(daemon, host):
    """A lock file left in the bare cache by a killed fetch, a truncated
    pack and a missing pack do not wedge the remote for good: the lock
    files are stale under modeld's own flock and are removed; a cache that
    fails to fetch for a local reason is dropped and fetched anew. A
    network failure leaves the cache alone."""
    work, _, url = published(host, "dmg", 21)
    daemon.ctl("pull", url)
    cache = glob.glob(os.path.join(daemon.store, "git", "*.git"))[0]

    def bump(n):
        with open(os.path.join(work, "bump.txt"), "w") as f:
            f.write(str(n))
        c = host.commit(work)
        host.publish(work, "acme", "dmg")
        return c

    for n, lock in enumerate(["refs/heads/main.lock", "packed-refs.lock", "config.lock"]):
        open(os.path.join(cache, lock), "w").close()
        c = bump(n)
        assert daemon.ctl("pull", url, "--json").json()["revision"] == c, lock
        assert not os.path.exists(os.path.join(cache, lock))
    pack = glob.glob(os.path.join(cache, "objects", "pack", "*.pack"))[0]
    with open(pack, "r+b") as f:
        f.truncate(os.path.getsize(pack) // 2)
    c = bump(10)
    assert daemon.ctl("pull", url, "--json").json()["revision"] == c
    assert "damaged" in daemon.read_log()
    for p in glob.glob(os.path.join(cache, "objects", "pack", "*.pack")):
        os.unlink(p)
    c = bump(11)
    assert daemon.ctl("pull", url, "--json").json()["revision"] == c
    check_stored(daemon, "acme/dmg", work)
    # the server is gone: a clear network error, the cache kept as it was
    packs = sorted(glob.glob(os.path.join(cache, "objects", "pack", "*")))
    host.stop()
    r = daemon.ctl("pull", url, check=False)
    assert r.rc == 1 and "fetch failed" in r.err and "Connection refused" in r.err, r
    assert sorted(glob.glob(os.path.join(cache, "objects", "pack", "*"))) == packs


def test_empty_repository_and_unborn_default_branch(daemon, host):
    bare = os.path.join(host.root, "repos", "acme", "empty.git")
    os.makedirs(os.path.dirname(bare))
    git(host.root, "init", "-q", "--bare", "-b", "main", bare)
    r = daemon.ctl("pull", f"git+{host.url}/acme/empty.git", check=False)
    assert r.rc == 1 and "empty repository" in r.err, r
    work = host.repo("acme", "dev-only")
    git(work, "checkout", "-q", "-b", "dev")
    tiny_llama(work, seed=22)
    c = host.commit(work)
    url = host.publish(work, "acme", "dev-only")   # HEAD -> main, which has no commits
    r = daemon.ctl("pull", url, check=False)
    assert r.rc == 1 and "default branch (HEAD) has no commits" in r.err and "@REF" in r.err, r
    nothing_stored(daemon, "acme/dev-only")
    assert daemon.ctl("pull", url + "@dev", "--json").json()["revision"] == c


def test_same_lfs_object_under_two_paths_downloaded_once(daemon, host):
    """Two paths whose pointers name one oid: one batch entry, one
    download, both paths stored with the same bytes. Also: names with
    spaces and unicode, case-colliding names, a deep tree, the same
    ordinary blob twice."""
    work = host.repo("acme", "twins")
    tiny_llama(work, seed=23)
    st = open(os.path.join(work, "model.safetensors"), "rb").read()
    os.makedirs(os.path.join(work, "copy dir"))
    with open(os.path.join(work, "copy dir", "mödel twö.safetensors"), "wb") as f:
        f.write(st)
    for name, text in [("A.txt", "upper"), ("a.txt", "lower"), ("same1.txt", "same"),
                       ("same2.txt", "same"), ("empty", "")]:
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    deep = os.path.join(work, *["d%d" % i for i in range(60)])
    os.makedirs(deep)
    with open(os.path.join(deep, "deep.txt"), "w") as f:
        f.write("deep")
    host.commit(work)
    url = host.publish(work, "acme", "twins")
    daemon.ctl("pull", url)
    gets = host.object_gets()
    assert len(gets) == 1 and sha(st) in gets[0], gets
    assert host.batch_log()[-1]["oids"] == [sha(st)]
    check_stored(daemon, "acme/twins", work)
    job = [j for j in daemon.ctl("jobs", "--json").json() if j.get("op") == "pull"][-1]
    assert job["done"] == job["total"], job
    # the same from a file:// remote
    r = daemon.ctl("pull", "git+file://" + work, "--name", "acme/twins-local", "--json").json()
    check_stored(daemon, "acme/twins-local", work)


def test_gc_drops_git_caches_no_revision_needs(daemon, host):
    """The bare cache of a remote stays while a stored revision comes from
    it (updates fetch only new objects); after rm of those revisions, gc
    removes it and says so."""
    urls = {}
    for name, seed in [("keep", 24), ("drop", 25)]:
        work = host.repo("acme", name)
        tiny_llama(work, seed=seed)
        host.commit(work)
        urls[name] = host.publish(work, "acme", name)
        daemon.ctl("pull", urls[name])
    gitdir = os.path.join(daemon.store, "git")
    key = {n: hashlib.sha256(u[4:].encode()).hexdigest() + ".git" for n, u in urls.items()}
    assert {d for d in os.listdir(gitdir) if d.endswith(".git")} == set(key.values())
    r = daemon.ctl("gc", "--json").json()
    assert r["git_caches_removed"] == 0
    daemon.ctl("rm", "acme/drop")
    out = daemon.ctl("gc").out
    assert "1 unused git caches" in out, out
    assert {d for d in os.listdir(gitdir) if d.endswith(".git")} == {key["keep"]}
    assert daemon.ctl("verify", "--json").json()["ok"]
    # pulling the dropped remote again fetches it anew
    daemon.ctl("pull", urls["drop"])
    assert {d for d in os.listdir(gitdir) if d.endswith(".git")} == set(key.values())
