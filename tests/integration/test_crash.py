"""kill -9 of modeld at random moments of many imports: afterwards the store
holds the old state or the new one, never half a model; verify is clean and
gc removes the garbage."""
import hashlib
import os
import random
import subprocess
import time

from conftest import MODELCTL, Daemon

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "24"))


def test_kill9_during_imports(tmp):
    rng = random.Random(1234)
    store = os.path.join(tmp, "store")
    expected = {}   # name -> {path: sha256}
    killed_mid = 0
    for i in range(ROUNDS):
        d = Daemon(tmp, store=store).start()
        m = os.path.join(tmp, f"m{i}")
        os.makedirs(m)
        files = {}
        for k in range(rng.randint(1, 4)):
            data = os.urandom(rng.choice([1000, 1 << 20, 6 << 20, 12 << 20]))
            files[f"part{k}.bin"] = data
            with open(os.path.join(m, f"part{k}.bin"), "wb") as f:
                f.write(data)
        name = f"acme/m{i}"
        p = subprocess.Popen([MODELCTL, "--socket", d.sock, "-q", "import", m, "--name", name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.12))
        d.kill9()
        rc = p.wait(30)
        if rc == 0:
            expected[name] = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
        else:
            killed_mid += 1
            expected.setdefault(name, None)   # either state is allowed
        d2 = Daemon(tmp, store=store).start()
        try:
            stored = {e["name"] for e in d2.ctl("list", "--json").json()}
            for n, want in expected.items():
                if want is not None:
                    assert n in stored, n
                if n in stored:
                    show = d2.ctl("show", n, "--json").json()
                    got = {f["path"]: f["sha256"] for f in show["files"]}
                    if want is not None:
                        assert got == want
                    for path in got:   # every file of a visible model is whole
                        data = d2.ctl("cat", n, path, binary=True).out
                        assert hashlib.sha256(data).hexdigest() == got[path]
            v = d2.ctl("verify", "--json").json()
            assert v["ok"], v["errors"]
            d2.ctl("gc")
            v = d2.ctl("verify", "--json").json()
            assert v["ok"] and v["orphans"] == 0 and v["stale_staging"] == 0, v
        finally:
            assert d2.stop() == 0
    # the test is only meaningful if some kills landed mid-import
    assert killed_mid > 0


def test_start_removes_dead_import_staging_keeps_pull_resume_state(tmp):
    """What an import killed with the daemon left in STORE/tmp is removed at
    the next start (and said in the log); an interrupted pull's resume
    state is kept for the next pull."""
    store = os.path.join(tmp, "store")
    Daemon(tmp, store=store).start().stop()
    dead = os.path.join(store, "tmp", "ing-dead01")
    os.makedirs(dead)
    with open(os.path.join(dead, "f000000"), "wb") as f:
        f.write(os.urandom(1 << 20))
    resume = os.path.join(store, "tmp", "pull-0123456789abcdef01234567")
    os.makedirs(os.path.join(resume, ".partial"))
    with open(os.path.join(resume, ".partial", "lock"), "w"):
        pass
    d = Daemon(tmp, store=store).start()
    try:
        assert not os.path.exists(dead)
        assert os.path.isdir(resume)
        assert "removed 1 staging entries" in d.read_log()
        v = d.ctl("verify", "--json").json()
        assert v["ok"] and v["stale_staging"] == 0, v
    finally:
        assert d.stop() == 0

