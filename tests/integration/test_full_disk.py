"""A store on a small tmpfs that fills up: every command that writes fails
with one line naming what it wrote and the full disk, the daemon keeps
serving, what was stored before still verifies, and what frees space (rm,
gc) works on a disk that is already full. (A pull that fills the disk is
test_pull.py's test_full_disk_fails_clearly_keeps_what_was_stored_and_resumes.)"""
import os
import shutil
import subprocess

import pytest

from conftest import Daemon, tiny_llama


@pytest.fixture
def small_fs(tmp):
    mt = os.path.join(tmp, "mt")
    os.mkdir(mt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mt],
                       capture_output=True, text=True)
    if m.returncode:
        pytest.skip("cannot mount a small tmpfs here: " + m.stderr.strip())
    yield mt
    subprocess.run(["umount", "-l", mt])


def fill(mt):
    """Take every free byte of the filesystem with a file outside the store."""
    with open(os.path.join(mt, "filler"), "ab") as f:
        while True:
            try:
                f.write(b"\0" * (64 << 10))
                f.flush()
            except OSError:
                break
    assert shutil.disk_usage(mt).free < (64 << 10)


def unfill(mt):
    os.unlink(os.path.join(mt, "filler"))


def alive_and_ok(d, names):
    assert d.proc.poll() is None
    assert sorted(x["name"] for x in d.ctl("list", "--json").json()) == sorted(names)
    v = d.ctl("verify", "--json").json()
    assert v["ok"] and v["stale_staging"] == 0, v
    assert [n for n in os.listdir(os.path.join(d.store, "tmp")) if not n.startswith(".")] == []


def test_rm_frees_space_on_a_full_disk(tmp, small_fs):
    """The disk is full (something else took the last byte) and the catalog
    has no free page left: rm must still remove the model and give its space
    back, not fail with 'catalog commit: no space left on device' (or
    'Input/output error'), which left no way to free the store's space. Twice:
    the room rm used is taken back afterwards."""
    d = Daemon(tmp, store=os.path.join(small_fs, "store")).start()
    try:
        m = [tiny_llama(os.path.join(tmp, "m%d" % i), seed=i, weights=3 << 20) for i in range(2)]
        d.ctl("import", m[0], "--name", "acme/one")
        fill(small_fs)
        r = d.ctl("rm", "acme/one", check=False)
        assert r.rc == 0 and r.err == "", r
        assert shutil.disk_usage(small_fs).free > (2 << 20)
        alive_and_ok(d, [])
        unfill(small_fs)
        d.ctl("import", m[0], "--name", "acme/one")
        d.ctl("import", m[1], "--name", "acme/two")
        fill(small_fs)
        r = d.ctl("rm", "acme/two", "--json", check=False)
        assert r.rc == 0 and r.json()["blobs_freed"] > 0, r
        alive_and_ok(d, ["acme/one"])
        unfill(small_fs)
        d.ctl("import", m[1], "--name", "acme/two")
        alive_and_ok(d, ["acme/one", "acme/two"])
    finally:
        d.stop()
