"""The foundation's contract, end to end: import, list, show, cat, verify,
rm, gc, exit codes, JSON shapes, bad input, permissions."""
import hashlib
import json
import os
import re
import socket
import stat
import struct
import subprocess
import time

import pytest

from conftest import MODELCTL, MODELD, Daemon, make_model, tiny_llama


def sha(data):
    return hashlib.sha256(data).hexdigest()


def blob_files(store):
    out = []
    for d, _, fs in os.walk(os.path.join(store, "blobs")):
        out += [os.path.join(d, f) for f in fs]
    return out


def test_roundtrip(daemon, tmp):
    m = tiny_llama(os.path.join(tmp, "tiny-llama"), seed=1)
    r = daemon.ctl("import", m, "--name", "acme/tiny-llama", "--json").json()
    assert r["name"] == "acme/tiny-llama"
    assert len(r["revision"]) == 40
    rev = r["revision"]

    lst = daemon.ctl("list", "--json").json()
    assert isinstance(lst, list) and len(lst) == 1
    e = lst[0]
    for k in ("name", "revision", "total_size", "imported_at", "source"):
        assert k in e, k
    assert "files" not in e
    assert e["total_size"] == sum(os.path.getsize(os.path.join(dp, f))
                                  for dp, _, fs in os.walk(m) for f in fs)

    text = daemon.ctl("list").out
    assert text.split("\n")[0].split() == ["NAME", "REVISION", "FILES", "SIZE", "LICENSE", "IMPORTED"]
    assert "acme/tiny-llama" in text

    show = daemon.ctl("show", "acme/tiny-llama", "--json").json()
    for k in ("name", "revision", "files", "total_size", "imported_at", "source"):
        assert k in show, k
    assert show["source"]["type"] == "local"
    paths = sorted(f["path"] for f in show["files"])
    assert paths == ["README.md", "config.json", "model.safetensors", "sub/notes.txt", "tokenizer.json"]
    for f in show["files"]:
        data = open(os.path.join(m, f["path"]), "rb").read()
        assert f["size"] == len(data) and f["sha256"] == sha(data)
        assert set(f) >= {"path", "size", "sha256"}

    assert daemon.ctl("show", f"acme/tiny-llama@{rev}", "--json").json()["revision"] == rev
    assert daemon.ctl("show", "acme/tiny-llama@main", "--json").json()["revision"] == rev
    assert daemon.ctl("show", f"acme/tiny-llama@{rev[:10]}", "--json").json()["revision"] == rev

    for p in paths:
        out = daemon.ctl("cat", "acme/tiny-llama", p, binary=True).out
        assert out == open(os.path.join(m, p), "rb").read()

    v = daemon.ctl("verify", "--json").json()
    assert v["ok"] is True and v["files"] == 5 and v["errors"] == []
    assert daemon.ctl("verify", "acme/tiny-llama").rc == 0

    rm = daemon.ctl("rm", "acme/tiny-llama", "--json").json()
    assert rm["removed"] == [rev]
    assert daemon.ctl("list", "--json").json() == []
    daemon.ctl("gc")
    assert blob_files(daemon.store) == []
    r = daemon.ctl("show", "acme/tiny-llama", check=False)
    assert r.rc == 1 and "acme/tiny-llama" in r.err and "no such model" in r.err


def test_same_bytes_same_revision_and_dedup(daemon, tmp):
    a = tiny_llama(os.path.join(tmp, "a"), seed=2)
    b = tiny_llama(os.path.join(tmp, "b"), seed=2)
    r1 = daemon.ctl("import", a, "--name", "acme/a", "--json").json()
    r2 = daemon.ctl("import", b, "--name", "acme/b", "--json").json()
    assert r1["revision"] == r2["revision"]
    # identical files across models are stored once (4 plain files, and the
    # weights as one pack + one recipe)
    assert len(blob_files(daemon.store)) == 6
    # same model again: unchanged
    r3 = daemon.ctl("import", a, "--name", "acme/a", "--json").json()
    assert r3["revision"] == r1["revision"] and r3.get("existed") is True
    # new content: a second revision; main moves; the old one stays addressable
    with open(os.path.join(a, "config.json"), "wb") as f:
        f.write(b'{"changed":true}')
    r4 = daemon.ctl("import", a, "--name", "acme/a", "--json").json()
    assert r4["revision"] != r1["revision"]
    assert daemon.ctl("show", "acme/a", "--json").json()["revision"] == r4["revision"]
    assert daemon.ctl("show", f"acme/a@{r1['revision']}", "--json").json()["refs"] == []
    assert len(daemon.ctl("list", "--json").json()) == 3
    # rm one revision: shared blobs survive for acme/b
    daemon.ctl("rm", f"acme/a@{r1['revision']}")
    assert daemon.ctl("cat", "acme/b", "config.json").out.startswith('{"architectures"')
    daemon.ctl("rm", "acme/a")
    daemon.ctl("gc")
    assert daemon.ctl("verify", "--json").json()["ok"]
    assert len(blob_files(daemon.store)) == 6


@pytest.mark.parametrize("case", ["empty", "fifo", "symlink_out", "missing", "not_dir",
                                  "broken_link", "socket"])
def test_bad_folders_store_nothing(daemon, tmp, case):
    m = os.path.join(tmp, "m")
    os.makedirs(m)
    culprit = None
    if case != "empty":
        tiny_llama(m, seed=3, weights=1000)
    if case == "fifo":
        os.mkfifo(os.path.join(m, "pipe"))
        culprit = "pipe"
    elif case == "symlink_out":
        os.symlink("/etc/passwd", os.path.join(m, "passwd"))
        culprit = "passwd"
    elif case == "broken_link":
        os.symlink("nowhere", os.path.join(m, "dangling"))
        culprit = "dangling"
    elif case == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(m, "sock"))
        culprit = "sock"
    elif case == "missing":
        m = os.path.join(tmp, "nope")
        culprit = "nope"
    elif case == "not_dir":
        m = os.path.join(m, "config.json")
        culprit = "config.json"
    r = daemon.ctl("import", m, "--name", "acme/bad", check=False)
    assert r.rc == 1, r
    assert r.err.startswith("modelctl: ") and r.err.count("\n") == 1, r.err
    if culprit:
        assert culprit in r.err
    assert daemon.ctl("list", "--json").json() == []
    assert blob_files(daemon.store) == []


def test_symlink_inside_folder_is_followed(daemon, tmp):
    m = tiny_llama(os.path.join(tmp, "m"), seed=4, weights=100)
    os.symlink("config.json", os.path.join(m, "alias.json"))
    r = daemon.ctl("import", m, "--name", "acme/ln", "--json").json()
    assert r["file_count"] == 6


def test_unreadable_file_named(tmp):
    d = Daemon(tmp).start()
    try:
        os.chmod(d.sock, 0o666)
        m = tiny_llama(os.path.join(tmp, "m"), seed=5, weights=100)
        os.chmod(os.path.join(m, "tokenizer.json"), 0o000)
        # nobody cannot read it; it cannot import either, but the walk
        # reports the unreadable file first, before asking the daemon
        r = d.ctl("import", m, "--name", "acme/x", check=False, user="nobody")
        assert r.rc == 1 and "tokenizer.json" in r.err
    finally:
        d.stop()


def test_usage_errors_exit_2(daemon):
    for args in (["frobnicate"], [], ["show"], ["cat", "acme/x"], ["import"],
                 ["import", "/tmp", "--name", "not-a-name"], ["list", "--bogus"],
                 ["cancel", "abc"], ["gc", "extra"]):
        r = daemon.ctl(*args, check=False)
        assert r.rc == 2, (args, r)
        if args:   # one line naming the fault, not the whole usage after it
            assert r.err.startswith("modelctl: ") and r.err.count("\n") == 1, (args, r)
        else:      # no command at all: the summary of commands
            assert r.err.startswith("usage: modelctl") and "commands:" in r.err, r


def test_bad_option_message_names_the_word_at_fault(daemon):
    """'-acme/tiny' is parsed as the cluster -a -c -m ...: the message names
    that word, not the word before it."""
    for args, bad in ((["pull", "-acme/tiny"], "-acme/tiny"), (["list", "--bogus"], "--bogus"),
                      (["-qZ", "list"], "-qZ"), (["pull", "--hub"], "--hub"),
                      (["export", "acme/x", "-o"], "-o")):
        r = daemon.ctl(*args, check=False)
        assert r.rc == 2, (args, r)
        assert r.err.splitlines()[0] == (
            f"modelctl: unknown or incomplete option '{bad}' (see modelctl --help)"), (args, r)


def test_json_failures_print_one_error_document(daemon, tmp):
    """Issue 2: every command with --json prints exactly one JSON document,
    failures included; the one-line stderr message and the exit code stay."""
    m = tiny_llama(os.path.join(tmp, "m"), seed=11, weights=100)
    daemon.ctl("import", m, "--name", "acme/j")
    cases = [
        (["rm", "--json", "acme/nope"], 1, -2),
        (["show", "acme/nope", "--json"], 1, -2),
        (["--json", "cancel", "999999"], 1, -2),
        (["--json", "frobnicate"], 2, -1),
        (["pull", "-acme/tiny", "--json"], 2, -1),
        (["list", "--json", "--bogus"], 2, -1),
        (["cat", "acme/j", "config.json", "--json"], 2, -1),
    ]
    for args, rc, code in cases:
        r = daemon.ctl(*args, check=False)
        assert r.rc == rc, (args, r)
        line = r.err.splitlines()[0]
        assert line.startswith("modelctl: "), (args, r)
        doc = json.loads(r.out)  # exactly one document: json.loads refuses extra data
        assert doc == {"error": {"code": code, "message": line[len("modelctl: "):]}}, (args, doc)
    # no daemon: the connect failure is a document too
    r = subprocess.run([MODELCTL, "--socket", os.path.join(tmp, "none.sock"), "list", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == -18, r
    # without --json, stdout stays empty on a failure
    r = daemon.ctl("rm", "acme/nope", check=False)
    assert r.rc == 1 and r.out == "" and r.err.count("\n") == 1, r
    # success is still the command's own one document
    assert daemon.ctl("show", "acme/j", "--json").json()["name"] == "acme/j"


def test_bad_references_exit_1(daemon):
    for ref in ("acme/none", "acme/none@main", "../etc@x"):
        r = daemon.ctl("show", ref, check=False)
        assert r.rc in (1, 2) and r.err.startswith("modelctl: ")


def test_no_daemon_is_a_clear_failure(tmp):
    p = subprocess.run([MODELCTL, "--socket", os.path.join(tmp, "none.sock"), "list"],
                       capture_output=True, text=True)
    assert p.returncode == 1
    assert "cannot connect to modeld" in p.stderr and "none.sock" in p.stderr


def test_socket_mode_and_env(daemon, tmp):
    assert stat.S_IMODE(os.stat(daemon.sock).st_mode) == 0o660
    env = dict(os.environ, MODELD_SOCKET=daemon.sock)
    p = subprocess.run([MODELCTL, "list", "--json"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout) == []


def test_check_config(tmp):
    cfg = os.path.join(tmp, "modeld.conf")
    with open(cfg, "w") as f:
        f.write("# test\nstore = %s/st\nlog_level = debug\nworkers = 2\n" % tmp)
    p = subprocess.run([MODELD, "-n", "--config", cfg], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "configuration OK\n"
    with open(cfg, "a") as f:
        f.write("bogus_key = 1\n")
    p = subprocess.run([MODELD, "-n", "--config", cfg], capture_output=True, text=True)
    assert p.returncode == 1 and "modeld.conf:5" in p.stderr and "bogus_key" in p.stderr
    p = subprocess.run([MODELD, "--frob"], capture_output=True, text=True)
    assert p.returncode == 2


@pytest.mark.parametrize("args,words", [
    (["--workers", "0"], "--workers '0': want 1..64"),
    (["--workers", "abc"], "--workers 'abc': want 1..64"),
    (["--workers", "4x"], "--workers '4x'"),
    (["--http", "999.1.1.1:80"], "--http '999.1.1.1:80'"),
    (["--http", "127.0.0.1:99999"], "--http '127.0.0.1:99999': port"),
    (["--http", "notanaddr"], "--http 'notanaddr': want ADDR:PORT"),
    (["--upstream", "ftp://x"], "--upstream 'ftp://x'"),
])
def test_check_refuses_what_startup_refuses_flags(tmp, args, words):
    base = [MODELD, "--store", os.path.join(tmp, "st"), "--socket", os.path.join(tmp, "s.sock")]
    p = subprocess.run(base + ["-n"] + args, capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "" and words in p.stderr, p
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    # and start-up refuses it the same way (before binding anything)
    p = subprocess.run(base + ["-f"] + args, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and words in p.stderr, p


@pytest.mark.parametrize("line,words", [
    ("http = notanaddr", "modeld.conf:2: http 'notanaddr': want ADDR:PORT"),
    ("workers = 0", "modeld.conf:2: workers '0'"),
    ("limit_rate = nan", "modeld.conf:2: limit_rate 'nan'"),
    ("limit_rate = 50Mxyz", "modeld.conf:2: limit_rate '50Mxyz': want bytes per second"),
    ("limit_rate = 50MBx", "modeld.conf:2: limit_rate '50MBx'"),
    ("hub = huggingface.co", "modeld.conf:2: hub 'huggingface.co'"),
    ("http_token_file = /nonexistent/tok\nhttp = 127.0.0.1:8088", "http_token_file /nonexistent/tok"),
    ("socket_group = no-such-group-x", "socket_group no-such-group-x: no such group"),
])
def test_check_refuses_what_startup_refuses_config(tmp, line, words):
    cfg = os.path.join(tmp, "modeld.conf")
    with open(cfg, "w") as f:
        f.write("store = %s/st\n%s\n" % (tmp, line))
    p = subprocess.run([MODELD, "-n", "--config", cfg], capture_output=True, text=True)
    assert p.returncode == 1 and p.stdout == "" and words in p.stderr, p


def test_rate_forms_are_the_same_for_config_and_cli(tmp):
    """limit_rate and --limit-rate take the same forms (one parser)."""
    cfg = os.path.join(tmp, "modeld.conf")
    for form in ("50M", "50m", "50MB", "50MiB", "52428800", "0"):   # 0: no cap
        with open(cfg, "w") as f:
            f.write("store = %s/st\nlimit_rate = %s\n" % (tmp, form))
        p = subprocess.run([MODELD, "-n", "--config", cfg], capture_output=True, text=True)
        assert p.returncode == 0 and "configuration OK" in p.stdout, (form, p)
        # the CLI parses it before connecting: exit 1 (no daemon), not 2
        p = subprocess.run([MODELCTL, "--socket", os.path.join(tmp, "none.sock"), "pull",
                            "acme/x", "--limit-rate", form], capture_output=True, text=True)
        assert p.returncode == 1, (form, p)
    for form in ("50Mxyz", "50MBx", "-1"):
        p = subprocess.run([MODELCTL, "--socket", os.path.join(tmp, "none.sock"), "pull",
                            "acme/x", "--limit-rate", form], capture_output=True, text=True)
        assert p.returncode == 2, (form, p)
        assert p.stderr.splitlines()[0].startswith(f"modelctl: --limit-rate '{form}'"), p.stderr


def test_permissions(tmp):
    d = Daemon(tmp).start()
    try:
        m = tiny_llama(os.path.join(tmp, "m"), seed=6, weights=100)
        d.ctl("import", m, "--name", "acme/p")
        # others cannot even connect to a 0660 root-owned socket
        r = d.ctl("list", check=False, user="nobody")
        assert r.rc == 1 and "permission denied" in r.err
        os.chmod(d.sock, 0o666)
        # reads work for any uid that can open the socket
        assert d.ctl("list", "--json", user="nobody").json()[0]["name"] == "acme/p"
        assert d.ctl("cat", "acme/p", "config.json", user="nobody").rc == 0
        # writes do not
        for args in (["rm", "acme/p"], ["gc"], ["import", m, "--name", "acme/q"], ["cancel", "1"]):
            r = d.ctl(*args, check=False, user="nobody")
            assert r.rc == 1 and "permission denied" in r.err, (args, r)
        assert len(d.ctl("list", "--json").json()) == 1
        assert "refused: permission denied" in d.read_log()
    finally:
        d.stop()


def test_daemon_owner_may_write(tmp):
    os.chown(tmp, 65534, 65534)   # the daemon's own directory (a 0777 one is refused)
    d = Daemon(tmp, user="nobody").start(wait=False)
    try:
        for _ in range(200):
            if os.path.exists(d.sock):
                break
            time.sleep(0.05)
        # root may write to a daemon running as another user
        m = tiny_llama(os.path.join(tmp, "m"), seed=7, weights=100)
        assert d.ctl("import", m, "--name", "acme/own").rc == 0
        assert d.ctl("list", "--json", user="nobody").json()[0]["name"] == "acme/own"
        assert d.ctl("rm", "acme/own", user="nobody").rc == 0
    finally:
        d.stop()


def test_verify_finds_corruption(daemon, tmp):
    m = tiny_llama(os.path.join(tmp, "m"), seed=8, weights=4096)
    r = daemon.ctl("import", m, "--name", "acme/c", "--json").json()
    # the weights are stored as a pack + recipe: damage the largest blob
    p = max(blob_files(daemon.store), key=os.path.getsize)
    os.chmod(p, 0o644)
    with open(p, "r+b") as f:
        f.seek(100)
        f.write(b"\xff\x00\xff")
    v = daemon.ctl("verify", check=False)
    assert v.rc == 1 and "model.safetensors" in v.err
    vj = daemon.ctl("verify", "--json", check=False).json()
    assert vj["ok"] is False and vj["errors"][0]["path"] == "model.safetensors"
    assert r["revision"] in json.dumps(vj)


def test_protocol_abuse_keeps_serving(daemon):
    def raw(data):
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.sock)
        s.sendall(data)
        s.settimeout(5)
        try:
            got = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            got = b""
        s.close()
        return got

    raw(b"garbage garbage garbage")                      # bad magic
    raw(b"MD" + struct.pack("<HII", 1, 0x80000000, 0))  # 2 GB length prefix
    raw(b"MD" + struct.pack("<HII", 7, 2, 0) + b"{}")   # bad version
    body = b"not json"
    raw(b"MD" + struct.pack("<HII", 1, len(body), 0) + body)
    body = b'{"op":"launch-missiles"}'
    got = raw(b"MD" + struct.pack("<HII", 1, len(body), 0) + body)
    assert b"unknown operation" in got
    s = socket.socket(socket.AF_UNIX)       # a client that dies mid-message
    s.connect(daemon.sock)
    s.sendall(b"MD" + struct.pack("<HII", 1, 100, 0) + b"{")
    s.close()
    assert daemon.ctl("status").rc == 0
    assert "disconnected" in daemon.read_log()


def test_list_answers_during_a_big_import(daemon, tmp):
    m = os.path.join(tmp, "big")
    os.makedirs(m)
    with open(os.path.join(m, "model.bin"), "wb") as f:
        for _ in range(48):
            f.write(os.urandom(8 << 20))
    p = subprocess.Popen([MODELCTL, "--socket", daemon.sock, "import", m, "--name", "acme/big"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.05)
    t0 = time.time()
    r = daemon.ctl("list", "--json")
    took = time.time() - t0
    busy = p.poll() is None
    assert p.wait(120) == 0
    assert took < 0.5, took
    if busy:
        jobs = daemon.ctl("jobs", "--json").json()
        assert any(j["op"] == "import" for j in jobs)
    assert r.json() == [] or r.json()[0]["name"] == "acme/big"


def test_detach_jobs_cancel(daemon, tmp):
    m = os.path.join(tmp, "big")
    os.makedirs(m)
    with open(os.path.join(m, "model.bin"), "wb") as f:
        for _ in range(64):
            f.write(os.urandom(8 << 20))
    r = daemon.ctl("import", m, "--name", "acme/detached", "--detach", "--json").json()
    job = r["job"]
    daemon.ctl("cancel", job, check=False)
    for _ in range(200):
        st = [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == job]
        if st and st[-1]["state"] in ("done", "canceled", "failed"):
            break
        time.sleep(0.05)
    assert st[-1]["state"] in ("canceled", "done")
    if st[-1]["state"] == "canceled":
        assert daemon.ctl("list", "--json").json() == []
    # a job that ended is not "no such job": say how it ended
    r = daemon.ctl("cancel", job, check=False)
    assert r.rc == 1 and "job %d: already ended (%s)" % (job, st[-1]["state"]) in r.err, r
    r = daemon.ctl("cancel", "999999", check=False)
    assert r.rc == 1 and "job 999999: no such running job" in r.err, r


def test_summaries_count_in_the_singular_too(daemon, tmp):
    m = os.path.join(tmp, "one")
    os.makedirs(m)
    with open(os.path.join(m, "a.txt"), "w") as f:
        f.write("x")
    r = daemon.ctl("import", m, "--name", "acme/one")
    assert r.out.startswith("imported acme/one@") and ": 1 file, " in r.out, r
    assert "verified 1 file (" in daemon.ctl("verify", "acme/one").out
    daemon.ctl("rm", "acme/one")
    daemon.ctl("gc")
    v = daemon.ctl("verify", "--json").json()
    assert v["ok"] and v["orphans"] == 0 and v["stale_staging"] == 0


def test_detach_in_text_mode_prints_the_job_id(daemon, tmp):
    src = tiny_llama(os.path.join(tmp, "m"))
    r = daemon.ctl("import", src, "--name", "acme/det", "--detach")
    m = re.fullmatch(r"job (\d+)\n", r.out)
    assert m, r.out
    job = int(m.group(1))
    for _ in range(200):
        st = [j for j in daemon.ctl("jobs", "--json").json() if j["id"] == job]
        if st and st[-1]["state"] in ("done", "canceled", "failed"):
            break
        time.sleep(0.05)
    assert st[-1]["state"] == "done" and st[-1]["op"] == "import"
    assert "acme/det" in daemon.ctl("list").out
    r = daemon.ctl("verify", "--detach")
    assert re.fullmatch(r"job \d+\n", r.out), r.out
    # commands that have no detached form say so
    for args in (["gc", "--detach"], ["rm", "acme/det", "--detach"], ["list", "--detach"]):
        r = daemon.ctl(*args, check=False)
        assert r.rc == 2 and "--detach" in r.err, (args, r)


def test_sigterm_mid_import_exits_0_and_stays_consistent(tmp):
    d = Daemon(tmp).start()
    m = os.path.join(tmp, "big")
    os.makedirs(m)
    for i in range(4):
        with open(os.path.join(m, f"shard{i}.bin"), "wb") as f:
            f.write(os.urandom(32 << 20))
    p = subprocess.Popen([MODELCTL, "--socket", d.sock, "import", m, "--name", "acme/t"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.1)
    assert d.stop() == 0
    out, err = p.communicate(timeout=30)
    d2 = Daemon(tmp).start()
    try:
        lst = d2.ctl("list", "--json").json()
        if p.returncode == 0:
            assert lst and lst[0]["name"] == "acme/t"
        else:
            assert lst == [] and err.startswith("modelctl: ")
        assert d2.ctl("verify", "--json").json()["ok"]
    finally:
        d2.stop()


def test_second_daemon_on_same_store_refused(daemon, tmp):
    p = subprocess.run([MODELD, "-f", "--store", daemon.store, "--socket",
                        os.path.join(tmp, "other.sock")], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 1 and "in use" in p.stderr


def test_sighup_reloads_log_level(tmp):
    cfg = os.path.join(tmp, "c.conf")
    with open(cfg, "w") as f:
        f.write("log_level = info\n")
    d = Daemon(tmp, extra=["--config", cfg])
    d.extra = ["--config", cfg]
    d.start()
    try:
        with open(cfg, "w") as f:
            f.write("log_level = error\n")
        d.proc.send_signal(1)
        for _ in range(100):
            if "configuration reloaded" in d.read_log():
                break
            time.sleep(0.05)
        assert "configuration reloaded" in d.read_log()
    finally:
        d.stop()


def test_readiness_notification(tmp):
    """Type=notify: READY=1 with MAINPID once the socket answers, STOPPING=1
    on SIGTERM (daemon/sdnotify.c speaks sd_notify(3) without libsystemd);
    an abstract @name works too."""
    for name in (os.path.join(tmp, "notify.sock"), "@modeld-test-%d" % os.getpid()):
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(name if name[0] == "/" else "\0" + name[1:])
        ns.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=name)
        sock = os.path.join(tmp, "n.sock")
        p = subprocess.Popen([MODELD, "-f", "--store", os.path.join(tmp, "st"), "--socket", sock],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            msg = ns.recv(4096).decode()
            assert "READY=1" in msg.split("\n") and f"MAINPID={p.pid}" in msg.split("\n"), msg
            r = subprocess.run([MODELCTL, "--socket", sock, "status"], capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
            p.terminate()
            assert ns.recv(4096).decode() == "STOPPING=1"
            assert p.wait(30) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            ns.close()


def test_socket_activation(tmp):
    sock = os.path.join(tmp, "act.sock")
    log = open(os.path.join(tmp, "act.log"), "w")
    p = subprocess.Popen(["systemd-socket-activate", "-l", sock, MODELD, "-f", "--store",
                          os.path.join(tmp, "st")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        r = subprocess.run([MODELCTL, "--socket", sock, "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["store"] == os.path.join(tmp, "st")
    finally:
        p.terminate()
        p.wait(30)
