"""The operator's view of modeld: configuration files, flags, discovery,
and the store under hostile conditions (kill -9, full disk, foreign owner)."""
import json
import os
import subprocess

import pytest

from conftest import MODELCTL, MODELD, Daemon, make_model, tiny_llama


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
