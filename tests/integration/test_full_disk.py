"""A store on a small tmpfs that fills up: every command that writes fails
with one line naming what it wrote and the full disk, the daemon keeps
serving, what was stored before still verifies, and what frees space (rm,
gc) works on a disk that is already full. (A pull that fills the disk is
test_pull.py's test_full_disk_fails_clearly_keeps_what_was_stored_and_resumes.)"""
import os
import shutil
import subprocess

import pytest

from conftest import MODELD, Daemon, tiny_llama


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


def test_bundle_export_to_a_full_disk_says_no_space(tmp, small_fs):
    """export -o FILE.tar on a disk that fills: one line naming the bundle
    entry being written and 'No space left on device' (libarchive's bare
    'Write error' said neither why nor that it was the output), exit 1, no
    FILE.tar nor FILE.tar.part left; with room the same export works."""
    d = Daemon(tmp).start()
    try:
        d.ctl("import", tiny_llama(os.path.join(tmp, "m"), seed=3, weights=8 << 20),
              "--name", "acme/one")
        out = os.path.join(small_fs, "b.tar")
        fill(small_fs)
        unfill_at = os.path.join(small_fs, "filler")
        # leave 2 MiB: the index and sums fit, the weights do not
        with open(unfill_at, "r+b") as f:
            f.truncate(os.path.getsize(unfill_at) - (2 << 20))
        r = d.ctl("export", "acme/one", "-o", out, check=False)
        assert r.rc == 1 and r.out == "", r
        err = r.err.strip()
        assert "\n" not in err and err.startswith("modelctl: "), err
        assert "No space left on device" in err and "model.safetensors" in err, err
        assert "Write error" not in err, err
        assert not os.path.exists(out) and not os.path.exists(out + ".part")
        assert d.proc.poll() is None
        fill(small_fs)
        r = d.ctl("export", "acme/one", "-o", out, check=False)
        assert r.rc == 1 and "No space left on device" in r.err and "Write error" not in r.err, r
        unfill(small_fs)
        d.ctl("export", "acme/one", "-o", out)
        assert "OK" in d.ctl("verify").out
    finally:
        d.stop()


@pytest.mark.parametrize("room_mb", [2, 12])
def test_bundle_import_into_a_full_store_names_the_model(tmp, small_fs, room_mb):
    """import FILE.tar into a store with too little room: with 2 MiB the
    copy of model.safetensors fails, with 12 MiB its conversion to a pack
    does. Either way one line naming the model, the file and the full disk,
    not 'bundle refused' (the bundle is fine); nothing half-imported, the
    store verifies, no staging left; with room the same import works."""
    src = Daemon(os.path.join(tmp, "src"), store=os.path.join(tmp, "src", "store"))
    os.makedirs(src.tmp)
    d = Daemon(tmp, store=os.path.join(small_fs, "store"))
    try:
        src.start()
        src.ctl("import", tiny_llama(os.path.join(tmp, "m"), seed=4, weights=8 << 20),
                "--name", "acme/big")
        b = os.path.join(tmp, "b.tar")
        src.ctl("export", "acme/big", "-o", b)
        d.start()
        d.ctl("import", tiny_llama(os.path.join(tmp, "m1"), seed=1), "--name", "acme/one")
        fill(small_fs)
        filler = os.path.join(small_fs, "filler")
        with open(filler, "r+b") as f:
            f.truncate(os.path.getsize(filler) - (room_mb << 20))
        r = d.ctl("import", b, check=False)
        assert r.rc == 1 and r.out == "", r
        err = r.err.strip()
        assert "\n" not in err and err.startswith("modelctl: acme/big: "), err
        assert "model.safetensors" in err and "no space left on device" in err.lower(), err
        assert "refused" not in err, err
        alive_and_ok(d, ["acme/one"])
        unfill(small_fs)
        d.ctl("import", b)
        alive_and_ok(d, ["acme/one", "acme/big"])
    finally:
        d.stop()
        src.stop()


def test_weights_export_to_a_full_disk_leaves_no_folder(tmp, small_fs):
    """export --format safetensors -o DIR on a disk that fills: one line
    saying no space, exit 1, and neither the files nor the folders this
    export created are left (an empty DIR used to stay behind); a folder that
    was there before stays. With room the same export works."""
    d = Daemon(tmp).start()
    try:
        d.ctl("import", tiny_llama(os.path.join(tmp, "m"), seed=4, weights=8 << 20),
              "--name", "acme/one")
        keep = os.path.join(small_fs, "keep")
        os.mkdir(keep)
        for out in (os.path.join(small_fs, "new", "deeper"), keep):
            fill(small_fs)
            r = d.ctl("export", "acme/one", "--format", "safetensors", "-o", out, check=False)
            assert r.rc == 1 and r.out == "", r
            err = r.err.strip()
            assert "\n" not in err and err.startswith("modelctl: "), err
            assert "No space left on device" in err or "no space left" in err, err
            unfill(small_fs)
        assert not os.path.exists(os.path.join(small_fs, "new"))
        assert os.listdir(keep) == []
        out = os.path.join(small_fs, "new", "deeper")
        d.ctl("export", "acme/one", "--format", "safetensors", "-o", out)
        assert any(n.endswith(".safetensors") for n in os.listdir(out))
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_a_full_catalog_says_so_and_catalog_max_raises_it(tmp):
    """The catalog's size is catalog_max (LMDB's map): an import past it
    fails with one line saying how to raise it, nothing stored before is
    lost, status shows the use, and the same store restarted with a larger
    catalog_max takes the import."""
    conf = os.path.join(tmp, "modeld.conf")
    with open(conf, "w") as f:
        f.write("catalog_max = 1MiB\n")
    d = Daemon(tmp, extra=["-c", conf]).start()
    st = d.ctl("--json", "status").json()["catalog"]
    assert st["max"] == 1 << 20 and 0 < st["used"] < st["max"], st
    assert ", catalog " in d.ctl("status").out and " of 1.0 MiB" in d.ctl("status").out
    d.ctl("import", tiny_llama(os.path.join(tmp, "m")), "--name", "acme/small")
    big = os.path.join(tmp, "big")
    os.makedirs(big)
    for i in range(3000):  # a manifest larger than the whole catalog
        with open(os.path.join(big, "f%05d.json" % i), "w") as f:
            f.write('{"i": %d}' % i)
    r = d.ctl("import", big, "--name", "acme/big", check=False)
    assert r.rc != 0 and r.err.strip().splitlines() == [
        "modelctl: acme/big: catalog write: catalog full: raise catalog_max in modeld.conf "
        "and restart modeld"], r
    alive_and_ok(d, ["acme/small"])
    assert d.stop() == 0
    with open(conf, "w") as f:
        f.write("catalog_max = 64MiB\n")
    d = Daemon(tmp, extra=["-c", conf]).start()
    assert d.ctl("--json", "status").json()["catalog"]["max"] == 64 << 20
    d.ctl("import", big, "--name", "acme/big")
    alive_and_ok(d, ["acme/big", "acme/small"])
    assert d.stop() == 0
    # a catalog that already holds more than catalog_max keeps its size
    with open(conf, "w") as f:
        f.write("catalog_max = 1MiB\n")
    d = Daemon(tmp, extra=["-c", conf]).start()
    alive_and_ok(d, ["acme/big", "acme/small"])
    assert d.stop() == 0
    assert "used: raise catalog_max in modeld.conf before it is full" in d.read_log()
    for bad in ("1KiB", "65TiB", "lots"):
        with open(conf, "w") as f:
            f.write("catalog_max = %s\n" % bad)
        p = subprocess.run([MODELD, "-n", "-c", conf, "--store", d.store], capture_output=True, text=True)
        assert p.returncode == 1 and p.stderr.strip() == \
            "modeld: %s:1: catalog_max '%s': want a size from 1MiB to 64TiB (e.g. 64GiB)" % (conf, bad), p.stderr
