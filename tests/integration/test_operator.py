"""The operator's view of modeld: configuration files, flags, discovery,
and the store under hostile conditions (kill -9, full disk, foreign owner)."""
import json
import os
import subprocess

import pytest

from conftest import MODELCTL, MODELD, ROOT, Daemon, make_model, tiny_llama


def check_config(tmp, text):
    cfg = os.path.join(tmp, "modeld.conf")
    with open(cfg, "wb") as f:
        f.write(text)
    return subprocess.run([MODELD, "-n", "--config", cfg, "--store", os.path.join(tmp, "st")],
                          capture_output=True, text=True, errors="replace")


@pytest.mark.parametrize("text,words", [
    (b"workers = 3\nworkers = 5\n", "modeld.conf:2: duplicate key 'workers' (first on line 1)"),
    (b"# x\nstore =\n", "modeld.conf:2: store '': want a value"),
    (b"log_level = info\nhub = https://h\xff/\n", "modeld.conf:2: invalid UTF-8 byte 0xFF"),
    (b"workers = 2\x00\n", "modeld.conf:1: NUL byte"),
])
def test_config_file_errors_name_file_and_line(tmp, text, words):
    p = check_config(tmp, text)
    assert p.returncode == 1 and p.stdout == "" and words in p.stderr, p
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_config_with_a_byte_order_mark_is_read(tmp):
    """Windows editors start a UTF-8 file with a byte-order mark: it is no
    part of the first key (the policy file reads it the same way)."""
    p = check_config(tmp, b"\xef\xbb\xbfworkers = 2\n")
    assert p.returncode == 0 and p.stdout == "configuration OK\n", p


def test_config_directory_is_an_error(tmp):
    d = os.path.join(tmp, "conf.d")
    os.mkdir(d)
    p = subprocess.run([MODELD, "-n", "--config", d, "--store", os.path.join(tmp, "st")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "" and "conf.d: is a directory" in p.stderr, p
    # an empty configuration is fine: /dev/null reads as one
    p = subprocess.run([MODELD, "-n", "--config", "/dev/null", "--store", os.path.join(tmp, "st")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "configuration OK\n", p


def test_help_and_version_of_both_binaries(tmp):
    for exe in (MODELD, MODELCTL):
        name = os.path.basename(exe)
        p = subprocess.run([exe, "--version"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout == name + " 0.1.0\n" and p.stderr == "", p
        p = subprocess.run([exe, "--help"], capture_output=True, text=True)
        assert p.returncode == 0 and p.stdout.startswith("usage: " + name) and p.stderr == "", p
    # --json makes it a document; no daemon is needed for either
    p = subprocess.run([MODELCTL, "--socket", os.path.join(tmp, "none.sock"), "--version", "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout) == {"version": "0.1.0"}, p


@pytest.mark.parametrize("fname,shown", [
    (b"new\nline", "new?line: path with a control character or backslash refused"),
    (b"back\\slash", "back\\slash: path with a control character or backslash refused"),
    (b"bad\xff.json", "bad\\xFF...: path with invalid UTF-8 refused"),
])
def test_import_refused_file_name_is_named(daemon, tmp, fname, shown):
    m = make_model(os.path.join(tmp, "m"), {"config.json": b"{}\n"})
    with open(os.path.join(m.encode(), fname), "wb") as f:
        f.write(b"x")
    r = daemon.ctl("import", m, "--name", "acme/m", check=False)
    assert r.rc == 1 and r.err == "modelctl: " + shown + "\n", r
    assert daemon.ctl("list", "--json").json() == []


def test_import_default_name_from_dotted_folder(daemon, tmp):
    m = make_model(os.path.join(tmp, "my model..v2"), {"config.json": b"{}\n"})
    r = daemon.ctl("import", m, "--json").json()
    assert r["name"] == "local/my-model.v2", r


def test_import_over_the_open_file_limit_is_refused_with_a_reply(tmp):
    """Each imported file is a descriptor the daemon holds until the job
    ends: past its RLIMIT_NOFILE the import must fail with the reason, not
    a reset connection."""
    import resource
    d = Daemon(tmp)
    d.logf = open(d.log, "ab")
    d.proc = subprocess.Popen(
        [MODELD, "-f", "--store", d.store, "--socket", d.sock],
        stdout=d.logf, stderr=d.logf,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
    try:
        d.wait_ready()
        m = make_model(os.path.join(tmp, "many"), {"f%04d.txt" % i: b"%d" % i for i in range(1500)})
        r = d.ctl("import", m, "--name", "acme/many", check=False)
        assert r.rc == 1 and "over the daemon's open-file limit (1024" in r.err, r
        assert len(r.err.strip().splitlines()) == 1, r.err
        r = d.ctl("import", m, "--name", "acme/many", "--json", check=False)
        assert r.rc == 1 and "open-file limit" in r.json()["error"]["message"], r
        # a smaller import on the same daemon still works
        small = make_model(os.path.join(tmp, "small"), {"f%03d.txt" % i: b"%d" % i for i in range(300)})
        assert d.ctl("import", small, "--name", "acme/small", "--json").json()["file_count"] == 300
        assert [e["name"] for e in d.ctl("list", "--json").json()] == ["acme/small"]
    finally:
        d.stop()


def test_socket_in_a_directory_others_can_write_is_refused(tmp):
    """Another user who can write the socket's directory could put their
    own socket there and be handed modelctl import's descriptors."""
    ww = os.path.join(tmp, "ww")
    os.mkdir(ww)
    os.chmod(ww, 0o777)
    p = subprocess.run([MODELD, "-f", "--store", os.path.join(tmp, "st"), "--socket",
                        os.path.join(ww, "modeld.sock")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "ww: socket directory writable by others (mode 0777)" in p.stderr, p
    assert not os.path.exists(os.path.join(ww, "modeld.sock"))
    other = os.path.join(tmp, "other")
    os.mkdir(other)
    os.chown(other, 65534, 65534)
    p = subprocess.run([MODELD, "-f", "--store", os.path.join(tmp, "st"), "--socket",
                        os.path.join(other, "modeld.sock")], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "other: socket directory owned by uid 65534" in p.stderr, p
    # the client's default path ($XDG_RUNTIME_DIR/modeld.sock) is checked the same way
    env = {k: v for k, v in os.environ.items() if k != "MODELD_SOCKET"}
    env["XDG_RUNTIME_DIR"] = ww
    p = subprocess.run([MODELCTL, "--json", "list"], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "socket directory writable by others" in p.stderr, p
    assert "writable by others" in json.loads(p.stdout)["error"]["message"]
    # and by the Python client, for its default path
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import modeld\n"
            "try:\n"
            "    modeld.Connection()\n"
            "except modeld.ModeldError as e:\n"
            "    print(e.code, e)\n" % os.path.join(ROOT, "python"))
    p = subprocess.run(["/usr/bin/python3", "-c", code], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.startswith("-6 ") and "socket directory writable by others" in p.stdout, p
    # a sticky directory writable by all (/tmp) is fine
    d = Daemon(tmp)
    d.sock = os.path.join(tmp, "sticky", "modeld.sock")
    os.mkdir(os.path.dirname(d.sock))
    os.chmod(os.path.dirname(d.sock), 0o1777)
    d.start()
    try:
        assert d.ctl("list", "--json").json() == []
    finally:
        d.stop()


def _unit_syscalls():
    """The syscalls modeld.service's SystemCallFilter= lines allow, expanded
    with systemd-analyze as systemd does (allow lists joined, ~ lists taken
    out)."""
    import shutil
    if not shutil.which("systemd-analyze"):
        pytest.skip("no systemd-analyze")

    def expand(word, seen):
        if not word.startswith("@"):
            return {word}
        out = subprocess.run(["systemd-analyze", "syscall-filter", word],
                             capture_output=True, text=True).stdout
        names = set()
        for line in out.splitlines()[1:]:
            w = line.strip()
            if w and not w.startswith("#") and w not in seen:
                seen.add(w)
                names |= expand(w, seen)
        return names

    unit = os.path.join(ROOT, "systemd", "modeld.service")
    allow, deny = set(), set()
    for line in open(unit):
        if line.startswith("SystemCallFilter="):
            v = line.split("=", 1)[1].strip()
            target = deny if v.startswith("~") else allow
            for w in v.lstrip("~").split():
                target |= expand(w, set())
    return sorted(allow - deny)


def test_unit_syscall_filter_lets_the_worker_confine_itself(tmp):
    """Run modeld under the unit's SystemCallFilter= (a seccomp allow list
    whose default kills, as systemd installs it): an import that converts
    a weight file in modeld-worker must succeed."""
    import ctypes
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    nrs = [n for n in (lib.seccomp_syscall_resolve_name(s.encode()) for s in _unit_syscalls())
           if n >= 0]

    def confine():
        ctx = lib.seccomp_init(0x80000000)       # SCMP_ACT_KILL_PROCESS
        for n in nrs:
            lib.seccomp_rule_add(ctx, 0x7fff0000, n, 0)   # SCMP_ACT_ALLOW
        if lib.seccomp_load(ctx):
            os._exit(99)

    d = Daemon(tmp)
    d.logf = open(d.log, "ab")
    d.proc = subprocess.Popen([MODELD, "-f", "--store", d.store, "--socket", d.sock],
                              stdout=d.logf, stderr=d.logf, preexec_fn=confine)
    try:
        d.wait_ready()
        m = tiny_llama(os.path.join(tmp, "m"), seed=3)
        r = d.ctl("import", m, "--name", "acme/x", check=False)
        assert r.rc == 0, r
        assert d.ctl("verify", "acme/x").rc == 0
    finally:
        d.stop()
