"""`make fuzz` stays usable: every libFuzzer harness under tests/fuzz/ builds
and runs (1 s each, in a build directory of its own). A harness whose code
the runner does not link broke `make fuzz` for every harness after it."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT


@pytest.mark.skipif(not shutil.which("clang"), reason="clang (libFuzzer) not installed")
def test_every_fuzz_harness_builds_and_runs(tmp):
    harnesses = sorted(f[len("fuzz_"):-2] for f in os.listdir(os.path.join(ROOT, "tests/fuzz"))
                       if f.startswith("fuzz_") and f.endswith(".c"))
    assert len(harnesses) >= 5, harnesses
    p = subprocess.run([os.path.join(ROOT, "tests/fuzz/run.sh"), "1"], cwd=ROOT,
                       env=dict(os.environ, FUZZ_BUILD=os.path.join(tmp, "fuzz")),
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    lines = {l.split(":", 1)[0]: l for l in p.stdout.splitlines() if l.startswith("fuzz_")}
    for h in harnesses:
        assert "no crash" in lines.get("fuzz_" + h, ""), p.stdout
