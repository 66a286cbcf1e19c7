"""The `ecommerce-core` command: the demo and the diagrams."""

from __future__ import annotations

import pytest

from ecommerce_core.cli import main
from ecommerce_core.demo import run_demo
from ecommerce_core.orders import STANDARD_ORDER_PROCESS
from ecommerce_core.processes import PROCESSES


def test_diagram_prints_the_mermaid_of_a_process(capsys):
    assert main(["diagram", "order.standard"]) == 0
    assert capsys.readouterr().out == STANDARD_ORDER_PROCESS.to_mermaid() + "\n"


def test_diagram_of_an_unknown_process_fails_with_the_known_names(capsys):
    assert main(["diagram", "order.nope"]) == 2
    err = capsys.readouterr().err
    assert f"known: {', '.join(sorted(PROCESSES))}" in err
    assert "order.standard" in err


def test_diagram_writes_one_page_per_process(tmp_path, capsys):
    assert main(["diagram", "--all", "--write", str(tmp_path)]) == 0
    page = (tmp_path / "order.standard.md").read_text(encoding="utf-8")
    assert "```mermaid\nstateDiagram-v2" in page
    assert "| `cancelled` | final |" in page


def test_simulate_walks_the_demo_and_exits_zero(capsys):
    assert main(["simulate", "--walkthrough"]) == 0
    out = capsys.readouterr().out
    assert "all steps behaved as expected" in out
    assert "-> closed" in out
    assert "refused: bob confirms alice's receipt: Forbidden" in out


def test_the_demo_shows_each_refusal_it_stages():
    lines: list[str] = []
    assert run_demo(lines.append) == 0
    refusals = [line for line in lines if "refused:" in line]
    assert [r.split("refused: ")[1].split(":")[0] for r in refusals] == [
        "bob confirms alice's receipt",
        "alice confirms again",
        "pottery ships an unpaid order",
        "too many units",
    ]


def test_a_command_is_required():
    with pytest.raises(SystemExit):
        main([])
