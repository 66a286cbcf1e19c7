from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"


def test_the_benchmark_script_runs_quickly_and_prints_every_section(capsys):
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # importing it must not run it
    assert capsys.readouterr().out == ""
    titles = list(bench.SECTIONS)
    assert titles

    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    result = subprocess.run(  # noqa: S603  # our own script, run by this interpreter
        [sys.executable, str(BENCH), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Python" in result.stdout
    for title in titles:
        assert title in result.stdout


INSTRUCTIONS = ROOT / "benchmarks" / "instructions.py"


def test_every_instruction_count_scenario_runs_once_without_valgrind():
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    for name in ("orders", "online", "escrow", "cod", "credit", "pricing"):
        result = subprocess.run(  # noqa: S603  # our own script, run by this interpreter
            [sys.executable, str(INSTRUCTIONS), "--inside", name, "--count", "1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (name, result.stderr)


def test_an_instruction_count_of_no_repetitions_is_refused():
    result = subprocess.run(  # noqa: S603  # our own script, run by this interpreter
        [sys.executable, str(INSTRUCTIONS), "orders", "--count", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "--count must be at least 1" in result.stderr


def test_the_count_is_the_operations_minus_the_set_up_alone(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("instructions", INSTRUCTIONS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    asked: list[tuple[str, int]] = []

    def counted(name: str, count: int) -> int:  # what valgrind would count: set-up + 7 per op
        asked.append((name, count))
        return 1_000 + 7 * count

    monkeypatch.setattr(module, "instructions", counted)
    assert module.main(["orders", "--count", "3"]) == 0
    assert sorted(asked) == [("orders", 0), ("orders", 3)]  # the set-up alone is a count of 0
    assert "orders: 7 instructions per operation (3 counted)" in capsys.readouterr().out


def test_the_set_up_alone_runs_inside_without_repetitions():
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    result = subprocess.run(  # noqa: S603  # our own script, run by this interpreter
        [sys.executable, str(INSTRUCTIONS), "--inside", "orders", "--count", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
