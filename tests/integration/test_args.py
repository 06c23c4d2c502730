"""Wrong arguments to modelctl and modeld: one line naming the argument at
fault, the exit status modelctl(1) and modeld(8) document (2 for a usage
error: a missing argument or a bad argument value, whether modelctl or the
daemon checks it; 1 for an operation that failed), and nothing stored."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import MODELCTL, MODELD, tiny_llama

BAD_REFS = ["", "acme", "acme/", "/tiny", "acme/a b", "acme/t\u00efny", "acme/..", "acme/-x", "acme/x@-main", "../x",
            "acme/tiny/", "acme/" + "a" * 300, "acme/tiny@", "acme/tiny@main@x", "acme/tiny@a..b"]


def _one_ref_cmds(ref, tmp):
    return [["show", ref], ["cat", ref, "config.json"], ["verify", ref], ["rm", ref],
            ["license", ref], ["tensors", ref], ["compare", "acme/tiny", ref],
            ["export", ref, "--format", "safetensors", "-o", os.path.join(tmp, "out")]]


def _store_files(store):
    return sorted(os.path.join(d, f)[len(store):] for d, _, fs in os.walk(store) for f in fs
                  if not f.startswith("lock") and "catalog" not in d)


@pytest.mark.parametrize("ref", BAD_REFS)
def test_malformed_reference_is_a_usage_error(daemon, tmp, ref):
    """A reference that is not ORG/NAME[@REV] is a bad argument value: exit
    2, and the message names it (quoted when empty) whatever the command."""
    tiny_llama(os.path.join(tmp, "m"))
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/tiny")
    before = _store_files(daemon.store)
    for args in _one_ref_cmds(ref, tmp):
        r = daemon.ctl(*args, check=False)
        assert r.rc == 2, (args, r)
        first = r.err.splitlines()[0]
        assert first.startswith("modelctl: ") and ("not a model name" in first or
                                                    "not a revision" in first), (args, r)
        shown = ref[:100] if ref else "''"
        assert shown in first, (args, r)
        r = daemon.ctl("--json", *args, check=False)
        assert r.rc == 2 and r.json()["error"]["code"] == -1, (args, r)
    assert not os.path.exists(os.path.join(tmp, "out"))
    assert _store_files(daemon.store) == before
    assert daemon.ctl("show", "acme/tiny").rc == 0


def test_compare_over_sixteen_is_a_usage_error(daemon, tmp):
    tiny_llama(os.path.join(tmp, "m"))
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/tiny")
    r = daemon.ctl("compare", *(["acme/tiny"] * 17), check=False)
    assert r.rc == 2 and "16" in r.err.splitlines()[0], r
    assert daemon.ctl("compare", *(["acme/tiny"] * 16)).rc == 0


@pytest.mark.parametrize("args,flag", [
    (["import", "M", "--name", "acme/x", "--name", "acme/y"], "--name"),
    (["export", "acme/tiny", "--format", "safetensors", "-o", "O1", "-o", "O2"], "-o"),
    (["list", "--task", "a", "--task", "b"], "--task"),
    (["audit", "--format", "csv", "--format", "json"], "--format"),
    (["--socket", "SOCK", "status"], "--socket"),  # the fixture gives one already
])
def test_single_value_option_given_twice_is_a_usage_error(daemon, tmp, args, flag):
    """Which of two values was meant would be a guess: the last one used to
    win silently (an import stored under the second --name)."""
    tiny_llama(os.path.join(tmp, "M"))
    sub = {"M": os.path.join(tmp, "M"), "O1": os.path.join(tmp, "o1"),
           "O2": os.path.join(tmp, "o2"), "SOCK": daemon.sock}
    args = [sub.get(a, a) for a in args]
    daemon.ctl("import", os.path.join(tmp, "M"), "--name", "acme/tiny")
    before = daemon.ctl("list", "--json").json()
    r = daemon.ctl(*args, check=False)
    assert r.rc == 2 and r.err.startswith("modelctl: %s given twice" % flag), r
    assert daemon.ctl("list", "--json").json() == before
    assert not os.path.exists(os.path.join(tmp, "o1")) and not os.path.exists(os.path.join(tmp, "o2"))
    if flag != "--name":
        return
    # the repeatable ones stay repeatable
    r = daemon.ctl("pull", "acme/x", "--hub", "http://127.0.0.1:1", "--include", "a",
                   "--include", "b", check=False, timeout=60)
    assert "given twice" not in r.err, r


@pytest.mark.parametrize("cmd", [["pull", "acme/x"], ["search", "llama"]])
@pytest.mark.parametrize("hub", ["", "ftp://h", "notaurl"])
def test_bad_hub_is_a_usage_error(daemon, cmd, hub):
    """--hub must be an http(s) URL; an empty one used to fall back to the
    default hub (and a pull then tried huggingface.co)."""
    r = daemon.ctl(*cmd, "--hub", hub, check=False, timeout=30)
    assert r.rc == 2 and r.err.splitlines()[0] == (
        "modelctl: --hub '%s': want an http:// or https:// URL" % hub if hub
        else "modelctl: --hub: empty value"), r
    r = daemon.ctl("--json", *cmd, "--hub", hub, check=False, timeout=30)
    assert r.rc == 2 and r.json()["error"]["code"] == -1, r


@pytest.mark.parametrize("hub,why", [
    ("http://", "no host in the URL"),
    ("https://user@/x", "no host in the URL"),
    ("http://[::1", "bad IPv6 address in the URL (want [ADDRESS])"),
    ("http://h:99999", "bad port in the URL"),
    ("http://h:", "bad port in the URL"),
    ("http://a b", "space or control character in the URL"),
    ("http://h/?q=1", "a hub URL takes no query or fragment"),
])
def test_malformed_hub_url_is_a_usage_error(daemon, hub, why):
    """An http(s) URL with no host, a bad port or an unclosed [IPv6] was sent
    on to the daemon, which tried it 5 times ("cannot resolve host api",
    "URL using bad/illegal format"): now refused at once, saying what is
    wrong; from $HF_ENDPOINT too."""
    r = daemon.ctl("pull", "acme/x", "--hub", hub, check=False, timeout=30)
    assert r.rc == 2 and r.err.splitlines()[0] == "modelctl: --hub '%s': %s" % (hub, why), r
    p = subprocess.run([MODELCTL, "--socket", daemon.sock, "pull", "acme/x"], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, HF_ENDPOINT=hub))
    assert p.returncode == 2 and p.stderr.splitlines()[0] == (
        "modelctl: $HF_ENDPOINT '%s': %s" % (hub, why)), p


def test_verify_key_without_signature_is_a_usage_error(daemon, tmp):
    """--key belongs to verify --signature; without it the key was ignored and
    a plain verify reported OK, as if a signature had been checked."""
    tiny_llama(os.path.join(tmp, "m"))
    daemon.ctl("import", os.path.join(tmp, "m"), "--name", "acme/tiny")
    r = daemon.ctl("verify", "acme/tiny", "--key", os.path.join(tmp, "pub.pem"), check=False)
    assert r.rc == 2 and "--signature" in r.err.splitlines()[0] and r.out == "", r


@pytest.mark.parametrize("args,line", [
    (["--bogus"], "modeld: unknown option '--bogus'"),
    (["-x"], "modeld: unknown option '-x'"),
    (["extra"], "modeld: unexpected argument 'extra'"),
    (["--workers"], "modeld: --workers: missing value"),
])
def test_modeld_bad_command_line_one_line_naming_it(tmp, args, line):
    """modeld(8): a bad command line exits 2 (1 with -n) with one line naming
    the flag; getopt's own message (with the binary's full path) and the
    usage text named nothing for a stray operand, and -n exited 2."""
    base = [MODELD, "--store", os.path.join(tmp, "st"), "--socket", os.path.join(tmp, "s.sock")]
    for check, want in ((["-n"], 1), ([], 2)):
        p = subprocess.run(base + check + args, capture_output=True, text=True, timeout=30)
        assert p.returncode == want and p.stdout == "", (check, p)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith(line), (check, p)
    assert not os.path.exists(os.path.join(tmp, "s.sock"))


def test_modeld_check_creates_no_store(tmp):
    """-n checks that a missing store could be created, and creates nothing
    (it used to make STORE with its blobs/, catalog/ and tmp/); a store under
    a folder the daemon's user may not write is named."""
    store = os.path.join(tmp, "new", "store")
    p = subprocess.run([MODELD, "-n", "--store", store, "--socket", os.path.join(tmp, "s.sock")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "configuration OK\n", p
    assert not os.path.exists(os.path.join(tmp, "new")), p
    ro = tempfile.mkdtemp(prefix="modeld-ro-")   # under /tmp: 'nobody' can reach it
    try:
        os.chmod(ro, 0o555)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            MODELD, "-n", "--store", os.path.join(ro, "a", "store"),
                            "--socket", os.path.join(ro, "s.sock")],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 1 and p.stdout == "", p
        assert p.stderr == "modeld: store %s/a/store: cannot be created: %s: Permission denied\n" % (
            ro, ro), p
        assert os.listdir(ro) == []
    finally:
        os.chmod(ro, 0o755)
        shutil.rmtree(ro)


def test_modeld_socket_path_longer_than_sun_path(tmp):
    """-n checks what start-up would refuse: a socket path that does not fit
    sun_path (107 bytes) said 'configuration OK' and start then failed."""
    long_sock = os.path.join(tmp, "s" * 120 + ".sock")
    base = [MODELD, "--store", os.path.join(tmp, "st")]
    p = subprocess.run(base + ["-n", "--socket", long_sock], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stdout == "" and p.stderr.count("\n") == 1, p
    assert p.stderr.startswith("modeld: --socket '") and "longer than a Unix socket path" in p.stderr, p
    cfg = os.path.join(tmp, "m.conf")
    with open(cfg, "w") as f:
        f.write("workers = 2\nsocket = %s\n" % long_sock)
    p = subprocess.run(base + ["-n", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and p.stderr.startswith("modeld: %s:2: socket '" % cfg), p
    p = subprocess.run(base + ["-f", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stderr.startswith("modeld: %s:2: socket '" % cfg), p
    ok = os.path.join(tmp, "s" * 40 + ".sock")  # well under the limit
    p = subprocess.run(base + ["-n", "--socket", ok], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "configuration OK\n", p


@pytest.mark.parametrize("jid", ["99999999999999999999", "abc", "0", "1e5", " 5", "+5", ""])
def test_cancel_bad_job_id_names_it(daemon, jid):
    """A job id out of range was clamped to LLONG_MAX and reported as 'job
    9223372036854775807: no such running job', naming a number never given."""
    r = daemon.ctl("cancel", jid, check=False)
    assert r.rc == 2 and r.err.splitlines()[0] == (
        "modelctl: cancel: job id '%s': want a positive whole number (see modelctl jobs)" % jid), r


@pytest.mark.parametrize("args", [["export", "acme/x", "-o", ""],
                                  ["list", "--task", ""], ["audit", "--policy", ""],
                                  ["import", "/tmp", "--name", ""], ["sign", "acme/x", "--key", ""]])
def test_empty_option_value_is_named(daemon, args):
    """An empty value for an option that takes one used to reach messages
    that named nothing (': path too long', 'cannot connect to modeld at :')."""
    r = daemon.ctl(*args, check=False, timeout=30)
    flag = [a for a in args if a.startswith("-")][0]
    assert r.rc == 2 and r.err.splitlines()[0] == "modelctl: %s: empty value" % flag, r
    p = subprocess.run([MODELCTL, "--socket", "", "list"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stderr.splitlines()[0] == "modelctl: --socket: empty value", p


@pytest.mark.parametrize("args", [["--workers", "2", "--workers=3"], ["-c", "a", "--config", "b"]])
def test_modeld_option_given_twice(tmp_path, args):
    """As a repeated key in the configuration file: the last one used to win
    silently."""
    p = subprocess.run([MODELD, "-n", "--store", str(tmp_path / "st")] + args,
                       capture_output=True, text=True, timeout=30)
    flag = "--workers" if "--workers" in args else "--config"
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p
    assert p.stderr.startswith("modeld: %s given twice (" % flag), p
