"""The ``ecommerce-core`` command: ``simulate`` (the demo) and ``diagram`` (Mermaid).

Run ``ecommerce-core --help`` for the options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ecommerce_core.process import Process
from ecommerce_core.processes import PROCESSES

__all__ = ["main"]


def _diagram(args: argparse.Namespace) -> int:
    names = sorted(PROCESSES) if args.all or not args.process else [args.process]
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        print(
            f"unknown process {unknown[0]!r}; known: {', '.join(sorted(PROCESSES))}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        process: Process = PROCESSES[name]
        text = process.to_mermaid()
        if args.write:
            out = Path(args.write)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.mmd").write_text(text, encoding="utf-8")
            print(f"wrote {out / f'{name}.mmd'}")
        else:
            print(text)
    return 0


def _simulate(_: argparse.Namespace) -> int:
    from ecommerce_core.demo import run_demo  # noqa: PLC0415  # keep `diagram` light

    return run_demo()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="ecommerce-core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    diagram = commands.add_parser("diagram", help="print a process as a Mermaid state diagram")
    diagram.add_argument("process", nargs="?", help="process name, e.g. order.standard")
    diagram.add_argument("--all", action="store_true", help="every process")
    diagram.add_argument("--write", metavar="DIR", help="write NAME.mmd files into DIR")
    diagram.set_defaults(run=_diagram)

    simulate = commands.add_parser("simulate", help="run the demo simulation")
    simulate.set_defaults(run=_simulate)

    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
