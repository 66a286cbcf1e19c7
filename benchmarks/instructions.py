"""CPU instructions per operation, counted by valgrind: a measure the machine's load cannot move.

Timings on a shared machine swing with the neighbours; the number of instructions a piece of
code executes does not. This script runs one scenario ``count`` times under
``valgrind --tool=cachegrind`` and once with none, and prints the difference per operation
(the interpreter's start-up and the scenario's set-up cancel out)::

    python benchmarks/instructions.py orders      # an OrderService lifecycle (section 9)
    python benchmarks/instructions.py online      # a PaymentService online lifecycle + ledger
    python benchmarks/instructions.py pricing     # 1,000 lines x 100 promotions (section 9)

``--count N`` sets the repetitions. Needs ``valgrind`` on the PATH; ``PYTHONHASHSEED`` is
fixed so both runs hash alike. Compare two versions by running it on each checkout.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_COUNTS = {"orders": 500, "online": 200, "escrow": 200, "cod": 200, "credit": 200}
DEFAULT_COUNTS["pricing"] = 5


def scenario(name: str) -> Callable[[], object]:
    """The operation to count, its set-up done (and run once, to warm caches and tables)."""
    sys.path.insert(0, str(HERE))
    import bench  # noqa: PLC0415  # the benchmark's own set-ups, so the figures match it

    if name == "orders":
        service = bench.wired(
            bench.InMemoryOrderRepository(), bench.InMemoryInventory(), bench.RecordingPublisher()
        )
        operation: Callable[[], object] = lambda: bench.storage_lifecycle(service)  # noqa: E731  # a one-line scenario
    elif name == "pricing":
        from ecommerce_core.promotions import PricingContext, price  # noqa: PLC0415

        cart, offers = bench.pricing_cart(1_000), bench.pricing_promotions(100)
        context = PricingContext(bench.NOW, "b-1", shipping_fee=bench.Money.of("8.00", "CNY"))
        operation = lambda: price(cart, offers, context)  # noqa: E731
    else:
        payments = bench.payment_service(ledger=True)
        operation = lambda: bench.method_lifecycle(payments, name)  # noqa: E731
    for _ in range(3):
        operation()
    return operation


def run_inside(name: str, count: int) -> None:
    """The child: set up, then run the operation ``count`` times with the collector off."""
    operation = scenario(name)
    gc.disable()
    for _ in range(count):
        operation()


def instructions(name: str, count: int) -> int:
    """Instructions valgrind counted for the whole child process."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("valgrind is not on the PATH")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(  # noqa: S603  # valgrind on this very script
        [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--inside",
            name,
            "--count",
            str(count),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if found is None:
        sys.exit(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=[*DEFAULT_COUNTS])
    parser.add_argument("--count", type=int, help="repetitions (default: per scenario)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    count = DEFAULT_COUNTS[args.scenario] if args.count is None else args.count
    if args.inside:  # the child: count 0 is the set-up alone, subtracted by the parent
        run_inside(args.scenario, count)
        return 0
    if count < 1:
        parser.error("--count must be at least 1")
    spent = instructions(args.scenario, count) - instructions(args.scenario, 0)
    print(f"{args.scenario}: {spent / count:,.0f} instructions per operation ({count} counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
