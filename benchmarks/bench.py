"""Side-by-side benchmarks: ecommerce_core against plain baselines, as ratios.

Run with ``make bench`` (or ``python benchmarks/bench.py [--quick]``). Every number is the
median of several repeats, each timing a ``timeit``-style inner loop with the garbage collector
off. Machines are noisy: compare the ratios within one run, not absolute times across runs.
Targets are printed beside the results (PASS/MISS) for information; the script exits 0 unless
something raises.

To add a section, write a function that takes the :class:`Sizes` and returns a filled
:class:`Section`, and register it with ``@section("N. Title")``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import platform
import random
import statistics
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter_ns, process_time_ns
from typing import Any

import attrs
from transitions import Machine

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryOrderRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.delivery import Shipment, ShipmentLine, TrackingEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import STANDARD_ORDER, STANDARD_ORDER_PROCESS, Order, OrderLine
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import Inventory, OrderRepository, Product
from ecommerce_core.services import OrderService
from ecommerce_core.testing.flash_sale import run_flash_sale

REPEATS = 7

# ----------------------------------------------------------------------------- measuring


def measure(fn: Callable[..., object], number: int, *args: Any, repeats: int = REPEATS) -> float:
    """Median nanoseconds per call of ``fn(*args)``, timing ``number`` calls per repeat."""
    samples = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            loop = range(number)
            start = perf_counter_ns()
            for _ in loop:
                fn(*args)
            samples.append((perf_counter_ns() - start) / number)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(samples)


def measure_interleaved(
    first: Callable[[], object],
    first_number: int,
    second: Callable[[], object],
    second_number: int,
    repeats: int = REPEATS,
) -> tuple[float, float, float]:
    """Median CPU nanoseconds per call of each, and the median of per-repeat ratios second/first.

    The two are timed turn about within each repeat, so a change in the machine's load hits
    both sides of a ratio alike (these machines are shared).
    """
    firsts, seconds, ratios = [], [], []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = process_time_ns()
            for _ in range(first_number):
                first()
            a = (process_time_ns() - start) / first_number
            start = process_time_ns()
            for _ in range(second_number):
                second()
            b = (process_time_ns() - start) / second_number
            firsts.append(a)
            seconds.append(b)
            ratios.append(b / a)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(firsts), statistics.median(seconds), statistics.median(ratios)


def measure_each(
    fn: Callable[[Any], object],
    make_inputs: Callable[[int], list[Any]],
    number: int,
    repeats: int = REPEATS,
) -> float:
    """Median nanoseconds per call of ``fn(item)`` over fresh inputs built (untimed) per repeat.

    For operations that consume their input (shipping an order moves it on, so the next call
    needs another paid order).
    """
    samples = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            items = make_inputs(number)
            gc.collect()
            gc.disable()
            start = perf_counter_ns()
            for item in items:
                fn(item)
            samples.append((perf_counter_ns() - start) / len(items))
            gc.enable()
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    return statistics.median(samples)


def bytes_each(make: Callable[[int], object], count: int) -> float:
    """Bytes still allocated per object after building ``count`` of them (``tracemalloc``)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(count)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before - sys.getsizeof(kept)) / count  # the list holding them is not theirs


# ----------------------------------------------------------------------------- reporting


@attrs.frozen
class Target:
    """A goal for a row's ratio: ``op`` is ``"<="`` or ``">="``."""

    op: str
    limit: float

    def met(self, ratio: float) -> bool:
        return ratio <= self.limit if self.op == "<=" else ratio >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}x"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@attrs.define
class Section:
    """One table: rows of ``label | value unit | ratio to the baseline | target | PASS/MISS``."""

    title: str
    note: str = ""
    value_header: str = "median"
    ratio_header: str = "ratio"
    rows: list[tuple[str, str, str, str, str]] = attrs.Factory(list)

    def add(
        self,
        label: str,
        value: float,
        unit: str,
        *,
        ratio: float | None = None,
        target: Target | None = None,
    ) -> None:
        ratio_text = "" if ratio is None else f"{ratio:.2f}x"
        verdict = (
            "" if target is None or ratio is None else ("PASS" if target.met(ratio) else "MISS")
        )
        target_text = "" if target is None else f"target {target}"
        self.rows.append((label, f"{_number(value)} {unit}", ratio_text, target_text, verdict))

    def render(self) -> str:
        ratios = any(row[2] for row in self.rows)
        header = ("", self.value_header, self.ratio_header if ratios else "", "", "")
        widths = [max(len(row[i]) for row in (header, *self.rows)) for i in range(5)]
        lines = [self.title, "-" * len(self.title)]
        if self.note:
            lines.append(self.note)
        for row in (header, *self.rows):
            label, value, ratio, target, verdict = row
            lines.append(
                f"  {label:<{widths[0]}}  {value:>{widths[1]}}  {ratio:>{widths[2]}}"
                f"  {target:<{widths[3]}}  {verdict}".rstrip()
            )
        return "\n".join(lines)


@attrs.frozen
class Sizes:
    """Loop and population sizes; ``--quick`` shrinks them for a smoke test."""

    fire: int = 200_000
    command: int = 2_000
    place: int = 2_000
    machines: int = 300
    memory: int = 10_000
    memory_machines: int = 500


QUICK = Sizes(fire=2_000, command=50, place=50, machines=10, memory=300, memory_machines=20)

SECTIONS: dict[str, Callable[[Sizes], Section]] = {}


def section(title: str) -> Callable[[Callable[[Sizes], Section]], Callable[[Sizes], Section]]:
    """Register a benchmark section under ``title``; sections run in registration order."""

    def register(fn: Callable[[Sizes], Section]) -> Callable[[Sizes], Section]:
        SECTIONS[title] = fn
        return fn

    return register


# ----------------------------------------------------------------------------- workloads

NOW = datetime(2024, 11, 11, 20, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)
POLICY = OrderPolicy()
BUYER = Actor.buyer("b-1")
MERCHANT = Actor.merchant("m-1")
CARRIER = Actor.carrier("SF")

# The standard order process, as ``transitions`` takes it.
MACHINE_STATES = [{"name": s.name, "final": s.final} for s in STANDARD_ORDER.states]
MACHINE_TRANSITIONS = [
    {"trigger": t.trigger, "source": list(t.source), "dest": t.dest, "conditions": list(t.guards)}
    for t in STANDARD_ORDER.transitions
]

# The baseline for firing: a plain dict of the unguarded transitions.
TABLE = {
    (source, t.trigger): t.dest
    for t in STANDARD_ORDER.transitions
    if not t.guards
    for source in t.source
}


def fire(state: str, event: str) -> str:
    return TABLE[state, event]


class PlainOrder:
    """A bare model object for ``transitions`` to bind its triggers and state to."""


def machine_object(initial: str = STANDARD_ORDER.initial) -> PlainOrder:
    """One object with its own ``transitions.Machine``, the way that library is usually used."""
    model = PlainOrder()
    Machine(
        model=model,
        states=MACHINE_STATES,
        transitions=MACHINE_TRANSITIONS,
        initial=initial,
        auto_transitions=False,
    )
    return model


def make_lines() -> tuple[OrderLine, ...]:
    return (
        OrderLine("1", "tea-01", 2, Money.of("38.00", "CNY"), category="tea"),
        OrderLine("2", "cup-01", 4, Money.of("25.00", "CNY"), category="teaware"),
    )


def place(i: int, lines: tuple[OrderLine, ...] | None = None) -> Order:
    return Order.place(
        order_id=f"o-{i}",
        buyer_id=BUYER.id,
        merchant_id=MERCHANT.id,
        lines=make_lines() if lines is None else lines,
        now=NOW,
        policy=POLICY,
    )


def pay(order: Order) -> None:
    order.pay(BUYER, amount=order.total, reference=f"pay-{order.id}", now=NOW)


def ship(order: Order) -> None:
    order.ship(MERCHANT, carrier="SF", tracking_number="SF1001", now=LATER, policy=POLICY)


def placed_orders(count: int) -> list[Order]:
    orders = [place(i) for i in range(count)]
    for order in orders:
        order.collect_events()
    return orders


def paid_orders(count: int) -> list[Order]:
    orders = placed_orders(count)
    for order in orders:
        pay(order)
        order.collect_events()
    return orders


def lifecycle(order: Order) -> None:
    pay(order)
    ship(order)
    order.deliver(CARRIER, now=LATER, policy=POLICY)
    order.confirm_receipt(BUYER, now=LATER, policy=POLICY)


@attrs.define
class BareOrder:
    """The data an order holds, with no process, version, deadline or events."""

    id: str
    checkout_id: str
    buyer_id: str
    merchant_id: str
    lines: tuple[OrderLine, ...]
    shipping_fee: Money
    total: Money
    state: str
    placed_at: datetime


def bare_order(i: int) -> BareOrder:
    order_id = f"o-{i}"
    lines = make_lines()
    fee = Money.zero("CNY")
    return BareOrder(
        id=order_id,
        checkout_id=order_id,
        buyer_id=BUYER.id,
        merchant_id=MERCHANT.id,
        lines=lines,
        shipping_fee=fee,
        total=sum((line.amount for line in lines), fee),
        state=STANDARD_ORDER.initial,
        placed_at=NOW,
    )


def order_at_rest(i: int) -> Order:
    order = place(i)
    order.collect_events()
    return order


CARRIER = Actor.carrier("SF")


def scan(shipment: Shipment, minute: int, status: str = "in_transit") -> TrackingEvent:
    return TrackingEvent(
        f"e-{minute}", "SF", shipment.tracking_number, status, NOW + timedelta(minutes=minute)
    )


def parcel(history: int) -> Shipment:
    """A parcel of a paid order with ``history`` in-transit scans recorded."""
    order = place(0)
    order.pay(Actor.buyer(order.buyer_id), amount=order.total, reference="tx", now=NOW)
    shipment = Shipment.create(
        shipment_id="s-1",
        order=order,
        sequence=1,
        actor=Actor.merchant(order.merchant_id),
        carrier="SF",
        tracking_number="SF1",
        lines=[ShipmentLine(order.lines[0].line_id, 1)],
        now=NOW,
    )
    for minute in range(history):
        shipment.record(scan(shipment, minute), actor=CARRIER, now=LATER)
    shipment.collect_events()
    return shipment


# ----------------------------------------------------------------------------- sections


@section("1. Firing a transition")
def firing(sizes: Sizes) -> Section:
    out = Section(
        "1. Firing a transition",
        "  awaiting_shipment --ship--> shipped; ratio = time / the plain dict look-up",
    )
    baseline = measure(fire, sizes.fire, "awaiting_shipment", "ship")
    out.add("dict look-up fire(state, event) (baseline)", baseline, "ns", ratio=1.0)
    process = STANDARD_ORDER_PROCESS
    ours = measure(process.fire, sizes.fire, "awaiting_shipment", "ship")
    out.add(
        "Process.fire, unguarded (ship)",
        ours,
        "ns",
        ratio=ours / baseline,
        target=Target("<=", 1.5),
    )
    order = placed_orders(1)[0]
    guarded = measure(process.fire, sizes.fire, "pending_payment", "pay", order, order.total)
    out.add("Process.fire, guarded (pay, order + amount)", guarded, "ns", ratio=guarded / baseline)
    theirs = measure_each(
        lambda model: model.ship(),
        lambda n: [machine_object("awaiting_shipment") for _ in range(n)],
        sizes.machines,
    )
    out.add(
        "transitions, one Machine per object: obj.ship()", theirs, "ns", ratio=theirs / baseline
    )
    return out


@section("2. A whole command on the Order aggregate")
def commands(sizes: Sizes) -> Section:
    out = Section(
        "2. A whole command on the Order aggregate",
        "  checks, state change, version bump and event; fresh orders built untimed per repeat",
    )
    shipping = measure_each(ship, paid_orders, sizes.command)
    out.add("Order.ship on a paid order", shipping / 1000, "us")
    full = measure_each(lifecycle, placed_orders, sizes.command)
    out.add("lifecycle pay -> ship -> deliver -> confirm_receipt", full / 1000, "us/order")
    out.add("  the same, as throughput", 1e9 / full, "orders/s")
    return out


@section("3. Construction: a new order vs a transitions Machine per object")
def construction(sizes: Sizes) -> Section:
    out = Section(
        "3. Construction: a new order vs a transitions Machine per object",
        "  Order.place with prebuilt lines (validated, total, deadline, event); CPU time, the two"
        " timed turn about per repeat; ratio = median of per-repeat time / Order.place",
    )
    lines = make_lines()
    placing, machine, ratio = measure_interleaved(
        lambda: place(0, lines), sizes.place, machine_object, sizes.machines
    )
    out.add("Order.place (baseline)", placing / 1000, "us", ratio=1.0)
    out.add(
        "transitions.Machine(model=obj, ...) per object",
        machine / 1000,
        "us",
        ratio=ratio,
        target=Target(">=", 20),
    )
    return out


@section("4. Memory at rest per order")
def memory(sizes: Sizes) -> Section:
    out = Section(
        "4. Memory at rest per order",
        f"  tracemalloc, {sizes.memory:,} orders (events collected) with their lines; "
        "ratio = bytes / BareOrder",
        value_header="bytes each",
    )
    bare = bytes_each(bare_order, sizes.memory)
    out.add("BareOrder: attrs data fields only (baseline)", bare, "B", ratio=1.0)
    ours = bytes_each(order_at_rest, sizes.memory)
    out.add("Order.place(...)", ours, "B", ratio=ours / bare, target=Target("<=", 1.3))
    machines = bytes_each(lambda _: machine_object(), sizes.memory_machines)
    out.add(
        f"object + its own transitions.Machine ({sizes.memory_machines:,} objects)",
        machines,
        "B",
        ratio=machines / bare,
    )
    return out


# ----------------------------------------------------------------------------- payments

# Every transition of the standard process, guarded or not: the dict-table baseline's table.
FULL_TABLE = {
    (source, t.trigger): t.dest for t in STANDARD_ORDER.transitions for source in t.source
}
LIFECYCLE_EVENTS = ("pay", "ship", "deliver", "confirm_receipt")


def dict_table_lifecycle(books: dict[int, int], i: int) -> None:
    """The baseline: an order as a dict walked through a dict table, money as one int."""
    order = {"id": i, "state": "pending_payment", "total": 17_600}
    for event in LIFECYCLE_EVENTS:
        order["state"] = FULL_TABLE[order["state"], event]
    books[i] = order["total"]


def payment_service(*, ledger: bool, database: SqliteDatabase | None = None) -> Any:
    """A service with stock enough for any run (built untimed).

    On the in-memory adapters, or with ``database`` (and ``ledger``) every port the library
    stores through on SQLite: orders, inventory, the event outbox, payment records, the ledger
    and the credit lines. The catalog, the provider, the clock and the ids stay in memory:
    they stand for the host's services, which the library does not store.
    """
    from ecommerce_core.adapters.memory import (  # noqa: PLC0415  # only this section needs them
        InMemoryCatalog,
        InMemoryCreditLines,
        InMemoryInventory,
        InMemoryLedger,
        InMemoryOrderRepository,
        InMemoryPaymentRepository,
        ManualClock,
        RecordingPublisher,
        ScriptedPaymentGateway,
        SequentialIds,
    )
    from ecommerce_core.ports import Product  # noqa: PLC0415
    from ecommerce_core.services import OrderService, PaymentService  # noqa: PLC0415

    ports: dict[str, Any] = {
        "orders": InMemoryOrderRepository(),
        "inventory": InMemoryInventory({"tea-01": 10**9, "cup-01": 10**9}),
        "catalog": InMemoryCatalog(
            [
                Product("tea-01", MERCHANT.id, "tea", Money.of("38.00", "CNY")),
                Product("cup-01", MERCHANT.id, "cup", Money.of("25.00", "CNY")),
            ]
        ),
        "payments": ScriptedPaymentGateway(),
        "clock": ManualClock(NOW),
        "ids": SequentialIds(),
        "publisher": RecordingPublisher(),
        "policy": POLICY,
    }
    if not ledger:
        return OrderService(**ports)
    limits = {BUYER.id: Money(10**15, "CNY")}  # a credit line that never runs out
    if database is not None:
        from ecommerce_core.adapters.sqlite_aggregates import (  # noqa: PLC0415
            SqlitePaymentRepository,
        )
        from ecommerce_core.adapters.sqlite_books import (  # noqa: PLC0415
            SqliteCreditLines,
            SqliteLedger,
        )

        inventory = SqliteInventory(database)
        for sku in ("tea-01", "cup-01"):
            inventory.receive(sku, 10**9)
        ports |= {
            "orders": SqliteOrderRepository(database),
            "inventory": inventory,
            "publisher": SqliteOutbox(database, RecordingPublisher()),
        }
        return PaymentService(
            **ports,
            ledger=SqliteLedger(database),
            payment_records=SqlitePaymentRepository(database),
            credit_lines=SqliteCreditLines(database, limits),
        )
    return PaymentService(
        **ports,
        ledger=InMemoryLedger(),
        payment_records=InMemoryPaymentRepository(),
        credit_lines=InMemoryCreditLines(limits),
    )


def service_lifecycle(service: Any, method: str) -> None:
    """Buy two lines, pay, ship, deliver, confirm receipt (escrow: and release)."""
    from ecommerce_core.orders import CartItem  # noqa: PLC0415

    (order,) = service.checkout(BUYER, [CartItem("tea-01", 2), CartItem("cup-01", 4)], method)
    service.pay(order.id, BUYER)
    service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1001")
    service.deliver(order.id, CARRIER)
    service.confirm_receipt(order.id, BUYER)


def method_lifecycle(service: Any, method: str) -> None:
    """One order's whole life through a PaymentService, the way its payment method goes.

    online, escrow: checkout (2 lines) -> pay (sale through the provider) -> ship -> deliver ->
    confirm_receipt (escrow: the release to the merchant, through reconcile); cod: checkout ->
    ship (collection starts) -> collect_cod (the order completes) -> remit_cod (cash to the
    merchant less the carrier's fee); credit: checkout -> pay_with_credit (3 periods; the
    provider pays the merchant) -> ship -> deliver -> confirm_receipt (no repayments).
    Every money movement is posted to the ledger.
    """
    from ecommerce_core.orders import CartItem  # noqa: PLC0415

    (order,) = service.checkout(BUYER, [CartItem("tea-01", 2), CartItem("cup-01", 4)], method)
    if method == "cod":
        service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1001")
        service.collect_cod(order.id, CARRIER, amount=order.total, key="door")
        service.remit_cod(order.id, CARRIER)
        return
    if method == "credit":
        service.pay_with_credit(order.id, BUYER, periods=3)
    else:
        service.pay(order.id, BUYER)
    service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1001")
    service.deliver(order.id, CARRIER)
    service.confirm_receipt(order.id, BUYER)


@section("5. Payments on the ledger: whole order lifecycles through the service")
def payments(sizes: Sizes) -> Section:
    out = Section(
        "5. Payments on the ledger: whole order lifecycles through the service",
        "  checkout (2 lines) -> pay -> ship -> deliver -> confirm_receipt on in-memory adapters;"
        "\n  ratio = time / the dict-table baseline (an order as a dict, a dict table, an int)",
    )
    number = max(sizes.command // 4, 10)
    books: dict[int, int] = {}
    baseline = measure(lambda: dict_table_lifecycle(books, len(books)), number * 10)
    out.add("dict-table lifecycle (baseline)", 1e9 / baseline, "orders/s", ratio=1.0)
    aggregate = measure_each(lifecycle, placed_orders, sizes.command)
    out.add(
        "Order aggregate alone (section 2)", 1e9 / aggregate, "orders/s", ratio=aggregate / baseline
    )
    rows = (
        ("OrderService, online, no ledger", False, "online"),
        ("PaymentService, online payment + ledger", True, "online"),
        ("PaymentService, escrow: hold, release + ledger", True, "escrow"),
    )
    for label, with_ledger, method in rows:
        service = payment_service(ledger=with_ledger)
        per_order = measure(lambda s=service, m=method: service_lifecycle(s, m), number)
        out.add(label, 1e9 / per_order, "orders/s", ratio=per_order / baseline)
    return out


@section("6. Pricing a cart")
def pricing(sizes: Sizes) -> Section:
    from ecommerce_core.promotions import PricingContext, price  # noqa: PLC0415  # own section

    quick = sizes.place < Sizes().place  # --quick: a smaller cart, fewer repeats
    lines, promotions, runs = (100, 10, 2) if quick else (1_000, 100, 10)
    out = Section(
        "6. Pricing a cart",
        f"  price(): {lines:,} lines in 50 categories against {promotions} promotions "
        "(percent, per-unit, buy-x-get-y, 满减 and tiers by category, fixed prices by SKU, "
        "an order-wide 满减, free shipping);\n  ratio = time / the first row (a doubled cart: the"
        " median of per-repeat ratios, timed turn\n  about with the first); CPU time"
        " (time.process_time), as section 9 judges the targets:\n  other processes do not count",
        value_header="median CPU",
    )
    context = PricingContext(NOW, "b-1", shipping_fee=Money.of("8.00", "CNY"))

    def run(n_lines: int, n_promotions: int) -> float:
        cart, offers = pricing_cart(n_lines), pricing_promotions(n_promotions)
        gc.collect()  # start each row from a collected heap (earlier sections leave garbage)
        price(cart, offers, context)  # warm up: the first call allocates what later ones reuse
        return cpu_and_wall(lambda: price(cart, offers, context), runs)[0]

    def pricer(n_lines: int, n_promotions: int) -> Callable[[], object]:
        cart, offers = pricing_cart(n_lines), pricing_promotions(n_promotions)
        price(cart, offers, context)  # warm up
        return lambda: price(cart, offers, context)

    base = run(lines, promotions)
    out.add(f"{lines:,} lines x {promotions} promotions (baseline)", base / 1e6, "ms", ratio=1.0)
    base_call = pricer(lines, promotions)
    for label, n_lines, n_promotions in (
        (f"{2 * lines:,} lines x {promotions} promotions", 2 * lines, promotions),
        (f"{lines:,} lines x {2 * promotions} promotions", lines, 2 * promotions),
    ):
        gc.collect()
        # turn about with the baseline cart: the machine's drift cancels out of the ratio
        _, doubled, ratio = measure_interleaved(
            base_call, runs, pricer(n_lines, n_promotions), runs
        )
        out.add(label, doubled / 1e6, "ms", ratio=ratio, target=Target("<=", 2.2))
    bare = run(lines, 0)
    out.add(f"{lines:,} lines, no promotion (the cost of the lines alone)", bare / 1e6, "ms")
    if not quick:
        out.add(
            "the baseline against 10 ms",
            base / 1e6,
            "ms",
            ratio=base / 1e7,
            target=Target("<=", 1.0),
        )
    return out


def pricing_cart(count: int) -> list[Any]:
    """``count`` lines over 50 categories, 1 to 3 units at 1.00 to 500.00 each (seeded)."""
    from ecommerce_core.promotions import PricingLine  # noqa: PLC0415  # own section

    rnd = random.Random(count)
    return [
        PricingLine(
            f"{i:05}",
            f"sku-{i}",
            rnd.randint(1, 3),
            Money(rnd.randint(100, 50_000), "CNY"),
            f"cat-{i % 50}",
            "m-1",
        )
        for i in range(count)
    ]


def pricing_promotions(count: int) -> list[Any]:
    """``count`` promotions, mostly scoped to one category or SKU, plus two order-wide ones."""
    from ecommerce_core import promotions as p  # noqa: PLC0415  # own section

    cny = functools.partial(Money.of, currency="CNY")
    made: list[Any] = []
    for i in range(count):
        kind, category = i % 10, p.Scope(categories={f"cat-{i % 50}"})
        pid = f"p{i:04}"
        if kind < 4:
            made.append(p.Promotion(pid, p.PercentOff(5 + i % 20), scope=category, priority=i % 7))
        elif kind < 6:
            made.append(p.Promotion(pid, p.AmountOff(cny("1.00"), per_unit=True), scope=category))
        elif kind == 6:
            made.append(p.Promotion(pid, p.BuyXGetY(2, 1), scope=category, exclusive=True))
        elif kind == 7:
            made.append(
                p.Promotion(pid, p.Threshold(cny("100"), cny("10"), repeat=True), scope=category)
            )
        elif kind == 8:
            made.append(
                p.Promotion(pid, p.FixedPrice(cny("50.00")), scope=p.Scope(skus={f"sku-{i * 7}"}))
            )
        else:
            tiers = p.Tiered([p.Tier(2, p.PercentOff(5)), p.Tier(5, p.PercentOff(10))])
            made.append(p.Promotion(pid, tiers, scope=category))
    if count:
        made.append(p.Promotion("order-mj", p.Threshold(cny("200"), cny("20"), repeat=True)))
        made.append(p.Promotion("ship", p.FreeShipping()))
    return made


@section("7. Carrier tracking on a shipment")
def tracking(sizes: Sizes) -> Section:
    out = Section(
        "7. Carrier tracking on a shipment",
        "  one event arriving: TrackingEvent built, then Shipment.record on a parcel with N "
        "events recorded already (dedup by id, history kept sorted); ratio = time / baseline",
    )
    fresh = measure_each(
        lambda s: s.record(scan(s, 110, "delivered"), actor=CARRIER, now=LATER),
        lambda n: [parcel(0) for _ in range(n)],
        sizes.command,
    )
    out.add("new event, empty history (baseline)", fresh / 1000, "us", ratio=1.0)
    for history in (10, 100):
        newer = measure_each(
            lambda s: s.record(scan(s, 110, "delivered"), actor=CARRIER, now=LATER),
            lambda n, h=history: [parcel(h) for _ in range(n)],
            sizes.command,
        )
        out.add(f"new event, {history} in history", newer / 1000, "us", ratio=newer / fresh)
    repeat = parcel(10)
    seen = repeat.tracking[5]
    duplicate = measure(lambda: repeat.record(seen, actor=CARRIER, now=LATER), sizes.command)
    out.add(
        "repeated event (no-op), 10 in history", duplicate / 1000, "us", ratio=duplicate / fresh
    )
    return out


# The order service over the adapters: full lifecycles, stored orders, a flash sale.

TEA = Product("tea-01", MERCHANT.id, "tea", Money.of("38.00", "CNY"), "tea")


def wired(orders: OrderRepository, inventory: Inventory, publisher: Any) -> OrderService:
    inventory.receive(TEA.sku, 10**9)
    return OrderService(
        orders=orders,
        inventory=inventory,
        catalog=InMemoryCatalog([TEA]),
        payments=ScriptedPaymentGateway(),
        clock=ManualClock(NOW),
        ids=SequentialIds(),
        publisher=publisher,
    )


def storage_lifecycle(service: OrderService) -> None:
    order = service.buy_now(BUYER, TEA.sku, 2)
    service.pay(order.id, BUYER)
    service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1001")
    service.deliver(order.id, CARRIER)
    service.confirm_receipt(order.id, BUYER)


def stored_bytes(count: int) -> float:
    """Bytes an InMemoryOrderRepository holds per order (the placed order itself dropped)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        repository = InMemoryOrderRepository()
        for i in range(count):
            repository.add(order_at_rest(i))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


@section("8. Storage: OrderService lifecycles, stored orders, a flash sale")
def storage(sizes: Sizes) -> Section:
    out = Section(
        "8. Storage: OrderService lifecycles, stored orders, a flash sale",
        "  lifecycle = buy_now -> pay -> ship -> deliver -> confirm_receipt through OrderService;"
        "\n  ratio = time / the in-memory adapters; SQLite rows are medians of 3 repeats",
    )
    with tempfile.TemporaryDirectory() as folder:
        files = (Path(folder) / f"bench-{n}.db" for n in range(10**6))
        opened: list[SqliteDatabase] = []

        def on_sqlite(synchronous: str) -> Callable[[int], list[OrderService]]:
            def make(count: int) -> list[OrderService]:
                database = SqliteDatabase(next(files), synchronous=synchronous)
                opened.append(database)
                service = wired(
                    SqliteOrderRepository(database),
                    SqliteInventory(database),
                    SqliteOutbox(database, RecordingPublisher()),
                )
                return [service] * count

            return make

        def in_memory(count: int) -> list[OrderService]:
            service = wired(InMemoryOrderRepository(), InMemoryInventory(), RecordingPublisher())
            return [service] * count

        try:
            memory_ns = measure_each(storage_lifecycle, in_memory, sizes.command)
            out.add("in-memory adapters (baseline)", memory_ns / 1000, "us", ratio=1.0)
            out.add("  the same, as throughput", 1e9 / memory_ns, "orders/s")
            sqlite_ns = measure_each(
                storage_lifecycle, on_sqlite("NORMAL"), sizes.command, repeats=3
            )
            out.add(
                "SQLite file, WAL, synchronous=NORMAL (default)",
                sqlite_ns / 1000,
                "us",
                ratio=sqlite_ns / memory_ns,
            )
            out.add("  the same, as throughput", 1e9 / sqlite_ns, "orders/s")
            full_ns = measure_each(
                storage_lifecycle, on_sqlite("FULL"), max(sizes.command // 10, 5), repeats=3
            )
            out.add(
                "SQLite file, WAL, synchronous=FULL (fsync per commit)",
                full_ns / 1000,
                "us",
                ratio=full_ns / memory_ns,
            )
            database = SqliteDatabase(next(files))
            opened.append(database)
            repository = SqliteOrderRepository(database)
            for i in range(sizes.memory):
                repository.add(order_at_rest(i))
            ((pages, page_size),) = database.read(
                "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size"
            )
        finally:
            for each in opened:
                each.close()
        out.add(
            f"memory per stored order, InMemoryOrderRepository ({sizes.memory:,} orders)",
            stored_bytes(sizes.memory),
            "B",
        )
        out.add(
            f"SQLite file size per stored order ({sizes.memory:,} orders, with outbox rows)",
            pages * page_size / sizes.memory,
            "B",
        )
        buyers = sizes.memory
        sale = run_flash_sale(
            Path(folder) / "flash-sale.db", units=max(buyers // 100, 1), buyers=buyers, processes=4
        )
    out.add(
        f"flash sale: {sale.units:,} units, {buyers:,} buyers, 4 processes, one file",
        sale.attempts_per_second,
        "reservations/s",
    )
    out.add(
        f"  sold {sale.sold:,}, refused (out of stock) {sale.refused:,}, other errors "
        f"{sum(sale.errors.values())}, in",
        sale.seconds,
        "s",
    )
    return out


# The two performance targets of the perf issue, CPU time and wall time side by side.


def cpu_and_wall(
    fn: Callable[[], object], number: int, repeats: int = REPEATS
) -> tuple[float, float]:
    """Median CPU (``process_time``) and wall nanoseconds per call, GC off while timing.

    On a shared machine the wall time counts the other processes too; the CPU time is what
    this process spent, so the targets are judged on it.
    """
    cpu, wall = [], []
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start_cpu, start_wall = process_time_ns(), perf_counter_ns()
            for _ in range(number):
                fn()
            cpu.append((process_time_ns() - start_cpu) / number)
            wall.append((perf_counter_ns() - start_wall) / number)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(cpu), statistics.median(wall)


@section("9. Performance targets: lifecycles per second and pricing a big cart (CPU time)")
def targets(sizes: Sizes) -> Section:
    from ecommerce_core.promotions import PricingContext, price  # noqa: PLC0415  # own section

    out = Section(
        "9. Performance targets: lifecycles per second and pricing a big cart (CPU time)",
        "  values are CPU time (time.process_time), wall time beside them; lifecycle ratios are"
        "\n  speed / the dict-table baseline's, pricing ratios are time / the first pricing run's."
        "\n  Per payment method, one PaymentService on the in-memory adapters, every money"
        "\n  movement posted to the ledger and reconciled, events published (method_lifecycle)."
        "\n  A doubled cart is timed turn about with the baseline cart; its ratio is the median"
        "\n  of the per-repeat ratios.",
        value_header="CPU (wall)",
    )
    number = max(sizes.command // 2, 10)
    books: dict[int, int] = {}
    base_cpu, base_wall = cpu_and_wall(lambda: dict_table_lifecycle(books, len(books)), number * 10)

    def rate(label: str, cpu: float, wall: float, target: float | None = None) -> None:
        value = f"{_number(1e9 / cpu)} orders/s ({_number(1e9 / wall)})"
        ratio = base_cpu / cpu
        verdict = "" if target is None else ("PASS" if 1e9 / cpu >= target else "MISS")
        target_text = "" if target is None else f"target >= {target:,.0f} orders/s"
        out.rows.append((label, value, f"{ratio:.3f}x", target_text, verdict))

    rate("dict-table lifecycle (baseline)", base_cpu, base_wall)
    service = wired(InMemoryOrderRepository(), InMemoryInventory(), RecordingPublisher())
    rate(
        "OrderService buy_now -> ... -> confirm_receipt, in memory",
        *cpu_and_wall(lambda: storage_lifecycle(service), number),
        target=20_000,
    )
    ledger = payment_service(ledger=True)
    rate(
        "PaymentService checkout -> ... -> confirm_receipt + ledger",
        *cpu_and_wall(lambda: service_lifecycle(ledger, "online"), max(number // 4, 10)),
    )
    for method, label, target in (
        ("online", "  online: checkout, pay (sale), ship, deliver, confirm", 20_000),
        ("escrow", "  escrow: the same, then the release from escrow", None),
        ("cod", "  COD: checkout, ship, collect_cod, remit_cod", None),
        ("credit", "  credit: checkout, pay_with_credit, ship, deliver, confirm", None),
    ):
        each = payment_service(ledger=True)  # a fresh service per method: no shared history
        rate(
            label,
            *cpu_and_wall(lambda s=each, m=method: method_lifecycle(s, m), max(number // 4, 10)),
            target=target,
        )
    quick = sizes.place < Sizes().place
    lines, promotions, runs = (100, 10, 2) if quick else (1_000, 100, 5)
    context = PricingContext(NOW, "b-1", shipping_fee=Money.of("8.00", "CNY"))

    def pricer(n_lines: int, n_promotions: int) -> Callable[[], object]:
        cart, offers = pricing_cart(n_lines), pricing_promotions(n_promotions)
        price(cart, offers, context)  # warm up, as in section 6
        return lambda: price(cart, offers, context)

    base_call = pricer(lines, promotions)
    pricing_cpu, pricing_wall = cpu_and_wall(base_call, runs, repeats=5)
    out.rows.append(
        (
            f"pricing {lines:,} lines x {promotions} promotions (baseline)",
            f"{pricing_cpu / 1e6:.2f} ms ({pricing_wall / 1e6:.2f})",
            "1.00x",
            "" if quick else "target <= 10 ms",
            "" if quick else ("PASS" if pricing_cpu <= 1e7 else "MISS"),
        )
    )
    for label, n_lines, n_promotions in (
        (f"pricing {2 * lines:,} lines x {promotions} promotions", 2 * lines, promotions),
        (f"pricing {lines:,} lines x {2 * promotions} promotions", lines, 2 * promotions),
    ):
        # timed turn about with the baseline in each repeat: the machine's speed, which
        # drifts between rows on a shared host, cancels out of the ratio
        _, cpu, ratio = measure_interleaved(
            base_call, runs, pricer(n_lines, n_promotions), runs, repeats=5
        )
        out.rows.append(
            (
                label,
                f"{cpu / 1e6:.2f} ms (turn about)",
                f"{ratio:.2f}x",
                "target <= 2.2x",
                "PASS" if ratio <= 2.2 else "MISS",  # the doubling bound
            )
        )
    return out


# Where a lifecycle's time goes: the same lifecycles as section 9, command by command.


def command_batches(
    steps: list[tuple[str, Callable[[Any], object]]], start: Callable[[], Any], count: int
) -> list[tuple[str, float]]:
    """CPU nanoseconds per call of each step: ``count`` orders, one step at a time for all.

    ``start()`` places one order and answers it; each step is timed over all ``count`` orders
    at once (one timer pair per batch, GC off), so no timer runs inside a command.
    """
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        began = process_time_ns()
        orders = [start() for _ in range(count)]
        spent = [(steps[0][0], (process_time_ns() - began) / count)]
        for label, step in steps[1:]:
            began = process_time_ns()
            for order in orders:
                step(order)
            spent.append((label, (process_time_ns() - began) / count))
    finally:
        if enabled:
            gc.enable()
    return spent


@section("10. Where the time goes: CPU per command of a lifecycle")
def per_command(sizes: Sizes) -> Section:
    from ecommerce_core.orders import CartItem  # noqa: PLC0415  # only this section needs it

    out = Section(
        "10. Where the time goes: CPU per command of a lifecycle",
        "  section 9's lifecycles, each command timed over a batch of orders (CPU time, GC"
        "\n  off; best of 3 batches); share = the command's part of its lifecycle",
        value_header="CPU per call",
        ratio_header="share",
    )
    count = max(sizes.command // 4, 10)
    cart = [CartItem("tea-01", 2), CartItem("cup-01", 4)]

    def ship(service: Any) -> Callable[[Any], object]:
        return lambda o: service.ship(o.id, MERCHANT, carrier="SF", tracking_number="SF1001")

    def plan(service: Any, method: str) -> list[tuple[str, Callable[[Any], object]]]:
        if method == "cod":
            return [
                ("ship", ship(service)),
                (
                    "collect_cod",
                    lambda o: service.collect_cod(o.id, CARRIER, amount=o.total, key="door"),
                ),
                ("remit_cod", lambda o: service.remit_cod(o.id, CARRIER)),
            ]
        pay: Callable[[Any], object] = (
            (lambda o: service.pay_with_credit(o.id, BUYER, periods=3))
            if method == "credit"
            else (lambda o: service.pay(o.id, BUYER))
        )
        return [
            ("pay_with_credit" if method == "credit" else "pay", pay),
            ("ship", ship(service)),
            ("deliver", lambda o: service.deliver(o.id, CARRIER)),
            ("confirm_receipt", lambda o: service.confirm_receipt(o.id, BUYER)),
        ]

    plain = wired(InMemoryOrderRepository(), InMemoryInventory(), RecordingPublisher())
    runs: list[tuple[str, Any, Callable[[], Any], str]] = [
        (
            "OrderService, online (section 9's first row)",
            plain,
            lambda: plain.buy_now(BUYER, TEA.sku, 2),
            "buy_now",
        ),
    ]
    for method in ("online", "escrow", "cod", "credit"):
        service = payment_service(ledger=True)
        runs.append(
            (
                f"PaymentService + ledger, {method}",
                service,
                lambda s=service, m=method: s.checkout(BUYER, cart, m)[0],
                "checkout",
            )
        )
    for title, service, start, first in runs:
        method = "online" if title.startswith("OrderService") else title.rpartition(" ")[2]
        steps = [(first, lambda o: o), *plan(service, method)]
        command_batches(steps, start, max(count // 10, 2))  # warm up
        best: dict[str, float] = {}
        for _ in range(3):
            for label, spent in command_batches(steps, start, count):
                best[label] = min(best.get(label, spent), spent)
        total = sum(best.values())
        out.rows.append((title, f"{total / 1e3:,.1f} us", "100 %", "", ""))
        for label, spent in best.items():
            out.rows.append(
                (f"  {label}", f"{spent / 1e3:,.1f} us", f"{100 * spent / total:.0f} %", "", "")
            )
    return out


@section("11. Payment methods on SQLite: whole lifecycles, every port stored")
def methods_on_sqlite(sizes: Sizes) -> Section:
    out = Section(
        "11. Payment methods on SQLite: whole lifecycles, every port stored",
        "  section 9's lifecycle per payment method through PaymentService, on the in-memory"
        "\n  adapters and on one SQLite file (WAL, synchronous=NORMAL) holding the orders,"
        "\n  inventory, outbox, payment records, ledger and credit lines; wall time, median of"
        "\n  3 repeats; ratio = SQLite / in memory",
    )
    number = max(sizes.command // 20, 5)
    with tempfile.TemporaryDirectory() as folder:
        for method in ("online", "escrow", "cod", "credit"):
            in_memory = payment_service(ledger=True)
            memory_ns = measure(method_lifecycle, number * 4, in_memory, method, repeats=3)
            database = SqliteDatabase(Path(folder) / f"{method}.db")
            try:
                on_sqlite = payment_service(ledger=True, database=database)
                method_lifecycle(on_sqlite, method)  # warm up: statements prepared, pages read
                sqlite_ns = measure(method_lifecycle, number, on_sqlite, method, repeats=3)
            finally:
                database.close()
            out.add(f"{method}, in memory", memory_ns / 1000, "us", ratio=1.0)
            out.add(
                f"{method}, SQLite ({_number(1e9 / sqlite_ns)} orders/s)",
                sqlite_ns / 1000,
                "us",
                ratio=sqlite_ns / memory_ns,
            )
    return out


# ----------------------------------------------------------------------------- main


def run(sizes: Sizes, titles: Iterable[str] | None = None) -> None:
    print(
        f"ecommerce_core benchmarks: Python {platform.python_version()} "
        f"({platform.python_implementation()}, {platform.system()} {platform.machine()}), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"medians of {REPEATS} repeats; compare ratios within this run only\n")
    for title in titles or SECTIONS:
        print(SECTIONS[title](sizes).render(), end="\n\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--only",
        action="append",
        metavar="N",
        help="run only the section(s) numbered N (repeatable), e.g. --only 3 --only 6",
    )
    args = parser.parse_args(argv)
    titles = None
    if args.only:
        titles = [title for title in SECTIONS if title.split(".", 1)[0] in args.only]
        if not titles:
            parser.error(f"no section numbered {', '.join(args.only)}")
    run(QUICK if args.quick else Sizes(), titles)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
