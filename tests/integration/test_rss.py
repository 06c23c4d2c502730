"""Issue 2: an idle modeld under 10 MB of RSS. modeld loads libcurl, libgit2,
libarchive and libmicrohttpd only when an operation first needs them
(lazy/, common/lazylib.h); a library that cannot be loaded fails that
operation with one line, and the daemon runs on."""
import os
import socket
import subprocess
import time

import pytest

from conftest import MODELD, Daemon, tiny_llama

LAZY = ("libcurl", "libgit2", "libarchive", "libmicrohttpd")


def ldd(path):
    return subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout


def sanitized():
    return "libasan" in ldd(MODELD) or os.environ.get("MODELD_VALGRIND") == "1"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no " + field)


def mapped(pid):
    """Basenames of the files pid maps."""
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


def loaded(pid, lib):
    return any(m.startswith(lib + ".so") for m in mapped(pid))


def idle_rss_kib(d):
    # the socket loop trims (malloc_trim, catalog pages) after 200 ms idle
    time.sleep(1.0)
    return status_kib(d.proc.pid, "VmRSS")


def test_modeld_does_not_link_the_lazy_libraries():
    out = ldd(MODELD)
    for lib in LAZY + ("libsystemd",):
        assert lib not in out, out


def test_idle_rss_under_10mb(daemon, tmp):
    if sanitized():
        pytest.skip("RSS under ASan or valgrind means nothing")
    rss = idle_rss_kib(daemon)
    assert rss < 10240, f"idle RSS on an empty store: {rss} KiB"
    for i in range(3):
        daemon.ctl("import", tiny_llama(os.path.join(tmp, f"m{i}"), seed=i, weights=4096),
                   "--name", f"acme/m{i}")
    for _ in range(3):
        daemon.ctl("--json", "list")
    rss = idle_rss_kib(daemon)
    assert rss < 10240, f"idle RSS after imports and lists: {rss} KiB"
    for lib in LAZY:
        assert not loaded(daemon.proc.pid, lib), f"{lib} loaded by imports and lists"


def test_each_library_loads_on_first_use(daemon, tmp):
    pid = daemon.proc.pid
    daemon.ctl("import", tiny_llama(os.path.join(tmp, "m"), weights=4096), "--name", "acme/t")
    assert not any(loaded(pid, lib) for lib in LAZY)
    daemon.ctl("export", "acme/t", "-o", os.path.join(tmp, "t.tar"))
    assert loaded(pid, "libarchive")
    assert not loaded(pid, "libcurl") and not loaded(pid, "libgit2")
    # a pull from a hub that is not there: libcurl is loaded, the pull fails
    r = daemon.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:9", check=False)
    assert r.rc == 1 and "cannot load" not in r.err, r
    assert loaded(pid, "libcurl") and not loaded(pid, "libgit2")
    r = daemon.ctl("pull", "git+file://" + os.path.join(tmp, "nope.git"), "--name", "acme/g",
                   check=False)
    assert r.rc == 1 and "cannot load" not in r.err, r
    assert loaded(pid, "libgit2") and not loaded(pid, "libmicrohttpd")


@pytest.fixture
def broken_libs(tmp):
    """A directory for modeld's LD_LIBRARY_PATH (not modelctl's: the ASan
    build links them) where every lazy library is an empty file: dlopen
    finds it first and fails ("file too short")."""
    lib = os.path.join(tmp, "lib")
    os.makedirs(lib)
    for so in ("libcurl.so.4", "libgit2.so.1.5", "libarchive.so.13", "libmicrohttpd.so.12"):
        open(os.path.join(lib, so), "w").close()
    return lib


def test_missing_library_fails_the_operation_not_the_daemon(tmp, broken_libs):
    d = Daemon(tmp, env={"LD_LIBRARY_PATH": broken_libs}).start()
    try:
        d.ctl("import", tiny_llama(os.path.join(tmp, "m"), weights=4096), "--name", "acme/t")
        r = d.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:9", check=False)
        assert r.rc == 1 and "pull: cannot load libcurl.so.4: " in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r
        r = d.ctl("pull", "git+file://" + os.path.join(tmp, "nope.git"), "--name", "acme/g",
                  check=False)
        assert r.rc == 1 and "pull: cannot load libgit2.so.1.5: " in r.err, r
        r = d.ctl("search", "llama", "--hub", "http://127.0.0.1:9", check=False)
        assert r.rc == 1 and "search: cannot load libcurl.so.4: " in r.err, r
        r = d.ctl("export", "acme/t", "-o", os.path.join(tmp, "t.tar"), check=False)
        assert r.rc == 1 and "export: cannot load libarchive.so.13: " in r.err, r
        # the daemon runs on, and tries again: the library, once there, loads
        d.ctl("status")
        os.unlink(os.path.join(broken_libs, "libarchive.so.13"))
        d.ctl("export", "acme/t", "-o", os.path.join(tmp, "t.tar"))
        d.ctl("--json", "list")
    finally:
        assert d.stop() == 0, d.read_log()[-3000:]


def test_mirror_without_libmicrohttpd_refuses_to_start(tmp, broken_libs):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = subprocess.run([MODELD, "-f", "--store", os.path.join(tmp, "s"),
                        "--socket", os.path.join(tmp, "s.sock"), "--http", f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LD_LIBRARY_PATH=broken_libs))
    assert r.returncode == 1 and "mirror: cannot load libmicrohttpd.so.12: " in r.stderr, r
