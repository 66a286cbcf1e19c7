"""A small mutation tester: does the suite notice when the code is subtly wrong?

It changes one thing at a time in a module (a comparison flipped ``<`` to ``<=``, ``==`` to
``!=``; ``+`` to ``-``; ``and`` to ``or``; a ``not`` dropped; an int constant plus one; a bool
constant negated), runs the given tests against each change, and lists the changes no test
noticed (the "survivors"). Run it on a scratch copy: it rewrites the module in place while it
works (and puts it back at the end, also on Ctrl-C)::

    git archive HEAD | tar -x -C /tmp/mut && cd /tmp/mut
    PYTHONPATH=src python tools/mutate.py src/ecommerce_core/money.py tests/test_money.py

A survivor is a change no test catches: a missing boundary test, an unchecked return value,
or (often, on this code base) an *equivalent* change, such as a fast path's guard whose slow
path gives the same answer. Read each one before writing a test for it. ``--only LINE:KIND``
re-runs chosen survivors against more tests. Survivors cost a whole run of the tests each;
pick test files that run in seconds (``--hypothesis-profile=dev`` in ``addopts`` helps).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_OPERATORS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _sites(tree: ast.AST) -> Iterator[tuple[int, str, int]]:
    """Each change as (the node's index in ``ast.walk`` order, its kind, the operand index)."""
    skip = _docstrings(tree)
    for index, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare):
            for operand, op in enumerate(node.ops):
                if type(op) in _SWAPS:
                    yield index, "compare", operand
        elif isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            yield index, "arithmetic", 0
        elif isinstance(node, ast.BoolOp):
            yield index, "and-or", 0
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield index, "drop-not", 0
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if type(node.value) is int:
                yield index, "int", 0
            elif type(node.value) is bool:
                yield index, "bool", 0


def _mutant(source: str, site: tuple[int, str, int]) -> tuple[str, int]:
    """The source with one change made, and the original line of the change."""
    tree = ast.parse(source)
    wanted, kind, operand = site
    for index, node in enumerate(ast.walk(tree)):
        if index != wanted:
            continue
        line = getattr(node, "lineno", 0)
        if kind == "compare":
            assert isinstance(node, ast.Compare)  # noqa: S101  # found as one above
            node.ops[operand] = _SWAPS[type(node.ops[operand])]()
        elif kind == "arithmetic":
            assert isinstance(node, ast.BinOp)  # noqa: S101
            node.op = _OPERATORS[type(node.op)]()
        elif kind == "and-or":
            assert isinstance(node, ast.BoolOp)  # noqa: S101
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif kind == "drop-not":
            tree = _DropNot(node).visit(tree)
        elif isinstance(node, ast.Constant):
            node.value = (not node.value) if kind == "bool" else node.value + 1
        return ast.unparse(ast.fix_missing_locations(tree)), line
    raise LookupError(site)


class _DropNot(ast.NodeTransformer):
    def __init__(self, target: ast.AST) -> None:
        self.target = target

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        return node.operand if node is self.target else node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", type=Path, help="the module to mutate (rewritten in place)")
    parser.add_argument("tests", nargs="+", help="test files or node ids to run per change")
    parser.add_argument("--only", default="", help="LINE:KIND,... : only these changes")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per test run")
    args = parser.parse_args(argv)
    source = args.module.read_text(encoding="utf-8")
    lines = source.splitlines()
    only = {tuple(item.rsplit(":", 1)) for item in args.only.split(",") if item}
    killed = survived = 0
    began = time.monotonic()
    try:
        for site in _sites(ast.parse(source)):
            mutated, line = _mutant(source, site)
            if only and (str(line), site[1]) not in only:
                continue
            args.module.write_text(mutated, encoding="utf-8")
            command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
            try:
                run = subprocess.run(  # noqa: S603  # pytest, by this interpreter
                    [*command, *args.tests], capture_output=True, timeout=args.timeout, check=False
                )
                noticed = run.returncode != 0
            except subprocess.TimeoutExpired:
                noticed = True  # an endless loop is noticed too
            if noticed:
                killed += 1
            else:
                survived += 1
                text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
                print(f"survived  line {line}  {site[1]}: {text}", flush=True)
    finally:
        args.module.write_text(source, encoding="utf-8")
    total = killed + survived
    share = 100 * killed / total if total else 100.0
    seconds = time.monotonic() - began
    print(f"{args.module}: {killed} of {total} changes noticed ({share:.0f} %) in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
