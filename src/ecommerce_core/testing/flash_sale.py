"""A flash sale on one SQLite file from several processes: the contention check.

:func:`run_flash_sale` stocks ``units`` of one product, then starts ``processes`` worker
processes at the same moment; each opens its own connection to the file and runs
:meth:`OrderService.buy_now <ecommerce_core.services.OrderService.buy_now>` for its share of
``buyers`` (one unit each), through the SQLite repository, inventory and outbox. It returns
what the buyers were told (sold, refused with :class:`~ecommerce_core.errors.OutOfStock`,
anything else by error name) and how long it took, and leaves the file for the caller to
check: stock never oversold, one stored order per sale, stock and orders consistent.

Run it on your own hardware (and file system) to see what SQLite sustains there::

    result = run_flash_sale("sale.db", units=100, buyers=10_000, processes=4)
    assert (result.sold, result.refused, dict(result.errors)) == (100, 9_900, {})

Workers are started with the ``spawn`` method, so this works the same on every platform and
never forks a process that holds threads or connections.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import InMemoryCatalog, ManualClock, ScriptedPaymentGateway
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.errors import EcommerceCoreError, InvalidInput, OutOfStock
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.ports import Product
from ecommerce_core.services import OrderService

__all__ = [
    "FLASH_SALE_PRODUCT",
    "FlashSaleResult",
    "run_flash_sale",
]

FLASH_SALE_PRODUCT: Final = Product(
    "flash-01", "m-flash", "Limited edition teapot", Money.of("9.90", "CNY"), "teaware"
)
"""The one product on sale."""

_BUSY_TIMEOUT: Final = 30.0  # generous: a refusal must be OutOfStock, never a timeout


@attrs.frozen
class FlashSaleResult:
    """What a flash sale's buyers were told, and how long it took.

    Attributes:
        units: Units on sale.
        buyers: Buyers who tried, one unit each.
        processes: Worker processes.
        sold: Purchases that succeeded (orders placed, stock reserved).
        refused: Purchases refused with :class:`~ecommerce_core.errors.OutOfStock`.
        errors: Any other outcome, by error class name, with its count.
        published: Events the workers' outboxes delivered to their sinks.
        seconds: Wall time from the common start to the last worker's end.

    """

    units: int
    buyers: int
    processes: int
    sold: int
    refused: int
    errors: Mapping[str, int]
    published: int
    seconds: float

    @property
    def attempts_per_second(self) -> float:
        """Purchase attempts (each a reservation attempt) handled per second, all workers."""
        return self.buyers / self.seconds if self.seconds > 0 else float("inf")


class _PrefixedIds:
    """Ids unique across processes: ``w1-order-7``."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._counts: Counter[str] = Counter()

    def next_id(self, kind: str) -> str:
        self._counts[kind] += 1
        return f"{self._prefix}-{kind}-{self._counts[kind]}"


class _CountingSink:
    def __init__(self) -> None:
        self.count = 0

    def publish(self, events: Sequence[DomainEvent]) -> None:
        self.count += len(events)


def _worker(
    path: str,
    *,
    worker: int,
    workers: int,
    buyers: int,
    start: Any,
    results: Any,
) -> None:
    tally: dict[str, Any] = {"worker": worker, "sold": 0, "refused": 0, "errors": Counter()}
    try:
        with SqliteDatabase(path, busy_timeout=_BUSY_TIMEOUT) as database:
            sink = _CountingSink()
            service = OrderService(
                orders=SqliteOrderRepository(database),
                inventory=SqliteInventory(database),
                catalog=InMemoryCatalog([FLASH_SALE_PRODUCT]),
                payments=ScriptedPaymentGateway(),
                clock=ManualClock(),
                ids=_PrefixedIds(f"w{worker}"),
                publisher=SqliteOutbox(database, sink),
            )
            mine = [Actor.buyer(f"buyer-{n}") for n in range(worker, buyers, workers)]
            start.wait()
            tally["started"] = time.monotonic()
            for buyer in mine:
                try:
                    service.buy_now(buyer, FLASH_SALE_PRODUCT.sku, 1)
                except OutOfStock:
                    tally["refused"] += 1
                except EcommerceCoreError as error:
                    tally["errors"][type(error).__name__] += 1
                else:
                    tally["sold"] += 1
            tally["ended"] = time.monotonic()
            tally["published"] = sink.count
    except BaseException:  # noqa: BLE001  # reported to the parent, which raises it
        tally["crash"] = traceback.format_exc()
    results.put(tally)


def run_flash_sale(
    path: str | os.PathLike[str],
    *,
    units: int = 100,
    buyers: int = 10_000,
    processes: int = 4,
    timeout: float = 300.0,
) -> FlashSaleResult:
    """Sell ``units`` of one product to ``buyers`` from ``processes`` processes on one file.

    The file must be new or hold no stock of :data:`FLASH_SALE_PRODUCT` yet; the sale's
    orders, reservations and outbox stay in it for the caller to inspect.

    Args:
        path: The SQLite file.
        units: Units on sale.
        buyers: Buyers, one unit each, split evenly between the processes.
        processes: Worker processes, each with its own connection.
        timeout: Seconds to wait for the workers before giving up.

    Returns:
        What the buyers were told, and the time it took.

    Raises:
        InvalidInput: A count below 1, or stock of the product already in the file.
        RuntimeError: A worker crashed (the message holds its traceback) or timed out.

    """
    for field, value in (("units", units), ("buyers", buyers), ("processes", processes)):
        if type(value) is not int or value < 1:
            raise InvalidInput(field, value, "must be a whole number of at least 1")
    location = os.fspath(path)
    with SqliteDatabase(location) as database:
        inventory = SqliteInventory(database)
        if inventory.on_hand(FLASH_SALE_PRODUCT.sku):
            raise InvalidInput("path", location, "it already holds stock of the product")
        inventory.receive(FLASH_SALE_PRODUCT.sku, units)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(location,),
            kwargs={
                "worker": worker,
                "workers": processes,
                "buyers": buyers,
                "start": start,
                "results": results,
            },
            daemon=True,
        )
        for worker in range(processes)
    ]
    for process in workers:
        process.start()
    try:
        tallies = [results.get(timeout=timeout) for _ in workers]
    except Exception as error:
        msg = f"the flash sale's workers did not finish within {timeout:g} s"
        raise RuntimeError(msg) from error
    finally:
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():  # pragma: no cover - only after a timeout
                process.kill()
                process.join()
    return _combine(tallies, units=units, buyers=buyers)


def _combine(tallies: list[dict[str, Any]], *, units: int, buyers: int) -> FlashSaleResult:
    crashes = [tally["crash"] for tally in tallies if "crash" in tally]
    if crashes:
        raise RuntimeError("a flash-sale worker crashed:\n" + "\n".join(crashes))
    errors: Counter[str] = Counter()
    for tally in tallies:
        errors.update(tally["errors"])
    return FlashSaleResult(
        units=units,
        buyers=buyers,
        processes=len(tallies),
        sold=sum(tally["sold"] for tally in tallies),
        refused=sum(tally["refused"] for tally in tallies),
        errors=dict(errors),
        published=sum(tally["published"] for tally in tallies),
        seconds=max(t["ended"] for t in tallies) - min(t["started"] for t in tallies),
    )
