"""make install honours PREFIX and DESTDIR and installs binaries, man pages and
systemd units that systemd-analyze accepts."""
import os
import shutil
import subprocess

from conftest import ROOT


def test_make_install(tmp):
    dest = os.path.join(tmp, "dest")
    p = subprocess.run(["make", "-s", "install", "PREFIX=/usr", "DESTDIR=" + dest],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    for f in ("usr/bin/modeld", "usr/bin/modelctl", "usr/share/man/man1/modelctl.1",
              "usr/share/man/man8/modeld.8", "usr/lib/systemd/system/modeld.service",
              "usr/lib/systemd/system/modeld.socket", "usr/lib/sysusers.d/modeld.conf",
              "usr/lib/tmpfiles.d/modeld.conf"):
        assert os.path.exists(os.path.join(dest, f)), f
    unit = open(os.path.join(dest, "usr/lib/systemd/system/modeld.service")).read()
    assert "ExecStart=/usr/bin/modeld -f" in unit and "Type=notify" in unit
    assert "ProtectSystem=strict" in unit and "NoNewPrivileges=yes" in unit


def test_units_verify(tmp):
    if not shutil.which("systemd-analyze"):
        return
    prefix = os.path.join(tmp, "pfx")
    p = subprocess.run(["make", "-s", "install", "PREFIX=" + prefix], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    d = os.path.join(prefix, "lib/systemd/system")
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", "./modeld.service",
                        "./modeld.socket"], cwd=d, capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr.strip() == "", p.stderr
