"""tools/mutate.py, the mutation tester: it reports what the tests miss and restores the module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "mutate.py"
MODULE = "def positive(x):\n    return x > 0\n"
TESTS = (
    "from m import positive\n\n\n"
    "def test_signs():\n    assert positive(1)\n    assert not positive(-1)\n"
)


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "m.py").write_text(MODULE, encoding="utf-8")
    (tmp_path / "test_m.py").write_text(TESTS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(  # noqa: S603  # our own tool, run by this interpreter
        [sys.executable, str(TOOL), "m.py", "test_m.py", *extra],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_change_no_test_notices_is_reported_and_the_module_is_put_back(tmp_path):
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    # x >= 0 passes both asserts (nothing tests zero); x > 1 fails positive(1)
    assert "survived  line 2  compare: return x > 0" in result.stdout
    assert "1 of 2 changes noticed" in result.stdout
    assert (tmp_path / "m.py").read_text(encoding="utf-8") == MODULE


def test_only_runs_the_changes_it_names(tmp_path):
    result = run(tmp_path, "--only", "2:int")
    assert "1 of 1 changes noticed" in result.stdout
    assert "survived" not in result.stdout
