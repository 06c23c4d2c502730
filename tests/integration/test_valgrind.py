"""The daemon's main paths under valgrind: no memory errors, no definite
leaks, clean exit on SIGTERM."""
import os
import shutil

import pytest

from conftest import Daemon, tiny_llama


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind not installed")
def test_daemon_under_valgrind(tmp):
    d = Daemon(tmp, valgrind=True).start()
    m = tiny_llama(os.path.join(tmp, "m"), seed=9, weights=200000)
    d.ctl("import", m, "--name", "acme/vg")
    d.ctl("list")
    d.ctl("show", "acme/vg", "--json")
    d.ctl("cat", "acme/vg", "config.json")
    d.ctl("verify")
    d.ctl("show", "acme/nope", check=False)
    d.ctl("jobs")
    # libarchive and libcurl, dlopen()ed on first use (lazy/)
    d.ctl("export", "acme/vg", "-o", os.path.join(tmp, "vg.tar"))
    assert d.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:9", check=False).rc == 1
    d.ctl("rm", "acme/vg")
    d.ctl("gc")
    rc = d.stop()
    report = open(d.log + ".vg").read()
    assert rc == 0, report[-4000:]
    assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
