"""In-memory adapters: real implementations of every port, kept in dicts.

They pass the same contract suites as any host adapter (see
:mod:`ecommerce_core.testing.contracts`), so tests and the demo use them instead of mocks.
They are not thread-safe; use one per thread, or the SQLite adapters.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ecommerce_core.aftersales import OrderAfterSales, RefundInstruction
from ecommerce_core.delivery import DeliveryOption, Shipment
from ecommerce_core.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    OutOfStock,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, check_now
from ecommerce_core.ports import (
    ChargeRequest,
    GatewayResult,
    GatewayStatus,
    Product,
    RefundRequest,
    StockItem,
)

__all__ = [
    "InMemoryAfterSalesRepository",
    "InMemoryCarriers",
    "InMemoryCatalog",
    "InMemoryInventory",
    "InMemoryOrderRepository",
    "InMemoryShipmentRepository",
    "ManualClock",
    "RecordingPublisher",
    "RecordingRefunds",
    "ScriptedPaymentGateway",
    "SequentialIds",
]


class InMemoryOrderRepository:
    """Orders in a dict, with optimistic concurrency and a deadline index."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}

    def add(self, order: Order) -> None:
        """Store a new order (see :class:`~ecommerce_core.ports.OrderRepository`)."""
        if order.id in self._orders:
            raise Conflict(f"an order with id {order.id!r} is already stored")
        self._orders[order.id] = self._snapshot(order)

    def get(self, order_id: str) -> Order:
        """Load a copy of an order."""
        try:
            stored = self._orders[order_id]
        except (KeyError, TypeError):
            raise NotFound("order", order_id) from None
        return copy.copy(stored)

    def save(self, order: Order, expected_version: int) -> None:
        """Store ``order`` if nobody saved it since ``expected_version``."""
        stored = self._orders.get(order.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                order.id, expected_version, None if stored is None else stored.version
            )
        self._orders[order.id] = self._snapshot(order)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of orders whose deadline has come, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (o.deadline.at, o.id)
            for o in self._orders.values()
            if o.deadline is not None and o.deadline.at <= now
        )
        return [order_id for _, order_id in due[:limit]]

    def all(self) -> list[Order]:
        """Copies of every stored order, by id (for reports and tests)."""
        return [copy.copy(self._orders[k]) for k in sorted(self._orders)]

    def __len__(self) -> int:
        return len(self._orders)

    @staticmethod
    def _snapshot(order: Order) -> Order:
        stored = copy.copy(order)
        stored.events = ()  # events are published, not stored
        return stored


@attrs.define
class _Reservation:
    items: tuple[StockItem, ...]
    status: str = "reserved"  # reserved | committed | released (from reserved or committed)


class InMemoryInventory:
    """Stock per SKU with all-or-nothing, idempotent reservations."""

    def __init__(self, stock: dict[str, int] | None = None) -> None:
        self._on_hand: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._restocks: dict[str, tuple[StockItem, ...]] = {}
        for sku, quantity in (stock or {}).items():
            if quantity:
                self.receive(sku, quantity)
            else:
                self._on_hand[sku] = 0

    def receive(self, sku: str, quantity: int) -> None:
        """Add units on hand."""
        _check_quantity(quantity)
        self._on_hand[sku] = self._on_hand.get(sku, 0) + quantity

    def reserve(self, reservation_id: str, items: Sequence[StockItem]) -> None:
        """Reserve all items or none; a same-payload repeat is a no-op."""
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a reservation needs at least one item")
        for item in items:
            _check_quantity(item.quantity)
        existing = self._reservations.get(reservation_id)
        if existing is not None:
            if existing.items != items:
                raise IdempotencyConflict(reservation_id, "different items")
            return
        wanted: dict[str, int] = {}
        for item in items:
            wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
        for sku, quantity in sorted(wanted.items()):
            if self.available(sku) < quantity:
                raise OutOfStock(sku, quantity, self.available(sku))
        for sku, quantity in wanted.items():
            self._reserved[sku] = self._reserved.get(sku, 0) + quantity
        self._reservations[reservation_id] = _Reservation(items)

    def commit(self, reservation_id: str) -> None:
        """Deduct reserved units from stock; a repeat is a no-op."""
        reservation = self._get(reservation_id)
        if reservation.status == "committed":
            return
        if reservation.status != "reserved":
            raise RuleViolation(reservation_id, "commit", reservation.status, "it was released")
        for item in reservation.items:
            self._reserved[item.sku] -= item.quantity
            self._on_hand[item.sku] -= item.quantity
        reservation.status = "committed"

    def release(self, reservation_id: str) -> bool:
        """Give units back; ``False`` if they were already given back."""
        reservation = self._get(reservation_id)
        if reservation.status == "released":
            return False
        for item in reservation.items:
            if reservation.status == "reserved":
                self._reserved[item.sku] -= item.quantity
            else:
                self._on_hand[item.sku] += item.quantity
        reservation.status = "released"
        return True

    def available(self, sku: str) -> int:
        """Units that can still be reserved."""
        return self._on_hand.get(sku, 0) - self._reserved.get(sku, 0)

    def reserved(self, sku: str) -> int:
        """Units reserved, not yet committed or released."""
        return self._reserved.get(sku, 0)

    def on_hand(self, sku: str) -> int:
        """Units in stock, reserved ones included."""
        return self._on_hand.get(sku, 0)

    def restock(self, restock_id: str, items: Sequence[StockItem]) -> bool:
        """Put units back on hand, once per ``restock_id``."""
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a restock needs at least one item")
        for item in items:
            _check_quantity(item.quantity)
        existing = self._restocks.get(restock_id)
        if existing is not None:
            if existing != items:
                raise IdempotencyConflict(restock_id, "different items")
            return False
        for item in items:
            self._on_hand[item.sku] = self._on_hand.get(item.sku, 0) + item.quantity
        self._restocks[restock_id] = items
        return True

    def _get(self, reservation_id: str) -> _Reservation:
        try:
            return self._reservations[reservation_id]
        except KeyError:
            raise NotFound("reservation", reservation_id) from None


def _check_quantity(quantity: object) -> None:
    if type(quantity) is not int or quantity < 1:
        raise InvalidInput("quantity", quantity, "must be a whole number of at least 1")


class InMemoryCatalog:
    """Products in a dict."""

    def __init__(self, products: Sequence[Product] = ()) -> None:
        self._products = {p.sku: p for p in products}

    def add(self, product: Product) -> None:
        """Add or replace a product."""
        self._products[product.sku] = product

    def product(self, sku: str) -> Product:
        """The product with this SKU, or :class:`NotFound`."""
        try:
            return self._products[sku]
        except (KeyError, TypeError):
            raise NotFound("sku", sku) from None


class ScriptedPaymentGateway:
    """A payment provider whose answers a test or the simulation decides.

    By default every charge and refund succeeds. ``decide`` may return another status per
    request (to decline, or to leave a payment pending as a time-out would). Answers are
    remembered per idempotency key: a retry gets the first answer, and a retry with another
    amount is an :class:`IdempotencyConflict`.
    """

    def __init__(
        self,
        decide: Callable[[ChargeRequest | RefundRequest], GatewayStatus] | None = None,
    ) -> None:
        self._decide = decide or (lambda _: GatewayStatus.SUCCEEDED)
        self._answers: dict[str, tuple[ChargeRequest | RefundRequest, GatewayResult]] = {}
        self._ids = itertools.count(1)
        self.charged: dict[str, Money] = {}
        self.refunded: dict[str, Money] = {}

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Take money, once per idempotency key."""
        return self._answer(request, "ch", self.charged)

    def refund(self, request: RefundRequest) -> GatewayResult:
        """Give money back, once per idempotency key."""
        return self._answer(request, "re", self.refunded)

    def _answer(
        self, request: ChargeRequest | RefundRequest, prefix: str, book: dict[str, Money]
    ) -> GatewayResult:
        if not request.amount.is_positive:
            raise InvalidInput("amount", request.amount, "must be positive")
        previous = self._answers.get(request.idempotency_key)
        if previous is not None:
            if previous[0] != request:
                raise IdempotencyConflict(request.idempotency_key, "different request")
            return previous[1]
        status = self._decide(request)
        transaction_id = (
            f"{prefix}-{next(self._ids)}" if status is not GatewayStatus.DECLINED else ""
        )
        result = GatewayResult(status, transaction_id, request.amount, status.value)
        if result.succeeded:
            book[request.order_id] = (
                book.get(request.order_id, Money.zero(request.amount.currency)) + request.amount
            )
        self._answers[request.idempotency_key] = (request, result)
        return result


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = check_now(start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC))

    def now(self) -> datetime:
        """The current simulated time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never back) and return the new time."""
        if not isinstance(delta, timedelta) or delta < timedelta(0):
            raise InvalidInput("delta", delta, "a clock never moves backwards")
        self._now += delta
        return self._now


class SequentialIds:
    """Ids like ``order-1``, ``order-2``, one counter per kind."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def next_id(self, kind: str) -> str:
        """The next id for ``kind``."""
        counter = self._counters.setdefault(kind, itertools.count(1))
        return f"{kind}-{next(counter)}"


class RecordingPublisher:
    """Keeps every published event in :attr:`published`, in order."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Append ``events``."""
        self.published.extend(events)


class InMemoryCarriers:
    """The delivery options each merchant offers, in a dict; change them to test checkout."""

    def __init__(self, offers: dict[str, Sequence[DeliveryOption]] | None = None) -> None:
        self._offers: dict[str, dict[str, DeliveryOption]] = {}
        for merchant_id, options in (offers or {}).items():
            for option in options:
                self.offer(merchant_id, option)

    def offer(self, merchant_id: str, option: DeliveryOption) -> None:
        """Offer ``option`` (replacing one with its id) for ``merchant_id`` 's orders."""
        self._offers.setdefault(merchant_id, {})[option.option_id] = option

    def withdraw(self, merchant_id: str, option_id: str) -> None:
        """Stop offering an option (a no-op if it was not offered)."""
        self._offers.get(merchant_id, {}).pop(option_id, None)

    def delivery_options(
        self, merchant_id: str, lines: Sequence[OrderLine]
    ) -> list[DeliveryOption]:
        """The options offered now, in the order they were first offered."""
        del lines  # the same options for every order of a merchant
        return list(self._offers.get(merchant_id, {}).values())


class InMemoryShipmentRepository:
    """Shipments in a dict, with optimistic concurrency and the two uniqueness rules."""

    def __init__(self) -> None:
        self._shipments: dict[str, Shipment] = {}
        self._by_tracking: dict[tuple[str, str], str] = {}
        self._by_order: dict[str, dict[int, str]] = {}

    def add(self, shipment: Shipment) -> None:
        """Store a new shipment (see :class:`~ecommerce_core.ports.ShipmentRepository`)."""
        tracking = (shipment.carrier, shipment.tracking_number)
        if shipment.id in self._shipments:
            raise Conflict(f"a shipment with id {shipment.id!r} is already stored")
        if shipment.sequence in self._by_order.get(shipment.order_id, {}):
            raise Conflict(
                f"order {shipment.order_id!r} already has shipment number {shipment.sequence}"
            )
        if tracking in self._by_tracking:
            raise Conflict(f"tracking number {tracking[1]!r} of {tracking[0]!r} is already used")
        self._shipments[shipment.id] = self._snapshot(shipment)
        self._by_tracking[tracking] = shipment.id
        self._by_order.setdefault(shipment.order_id, {})[shipment.sequence] = shipment.id

    def get(self, shipment_id: str) -> Shipment:
        """Load a copy of a shipment."""
        try:
            return copy.copy(self._shipments[shipment_id])
        except (KeyError, TypeError):
            raise NotFound("shipment", shipment_id) from None

    def by_tracking_number(self, carrier: str, tracking_number: str) -> Shipment:
        """Load the shipment with this carrier and tracking number."""
        try:
            shipment_id = self._by_tracking[carrier, tracking_number]
        except (KeyError, TypeError):
            raise NotFound("tracking number", f"{carrier}:{tracking_number}") from None
        return self.get(shipment_id)

    def for_order(self, order_id: str) -> list[Shipment]:
        """Copies of an order's shipments, by sequence."""
        numbers = self._by_order.get(order_id, {})
        return [self.get(numbers[n]) for n in sorted(numbers)]

    def save(self, shipment: Shipment, expected_version: int) -> None:
        """Store ``shipment`` if nobody saved it since ``expected_version``."""
        stored = self._shipments.get(shipment.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                shipment.id, expected_version, None if stored is None else stored.version
            )
        self._shipments[shipment.id] = self._snapshot(shipment)

    def all(self) -> list[Shipment]:
        """Copies of every stored shipment, by id (for reports and tests)."""
        return [copy.copy(self._shipments[k]) for k in sorted(self._shipments)]

    @staticmethod
    def _snapshot(shipment: Shipment) -> Shipment:
        stored = copy.copy(shipment)
        stored.events = ()
        return stored


class InMemoryAfterSalesRepository:
    """After-sales records in a dict, one per order, with optimistic concurrency."""

    def __init__(self) -> None:
        self._records: dict[str, OrderAfterSales] = {}

    def add(self, record: OrderAfterSales) -> None:
        """Store an order's first record (see :class:`~.ports.AfterSalesRepository`)."""
        if record.order_id in self._records:
            raise Conflict(f"order {record.order_id!r} already has an after-sales record")
        self._records[record.order_id] = self._snapshot(record)

    def get(self, order_id: str) -> OrderAfterSales:
        """Load a copy of an order's record."""
        try:
            return copy.copy(self._records[order_id])
        except (KeyError, TypeError):
            raise NotFound("after-sales record", order_id) from None

    def save(self, record: OrderAfterSales, expected_version: int) -> None:
        """Store ``record`` if nobody saved it since ``expected_version``."""
        stored = self._records.get(record.order_id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                record.id, expected_version, None if stored is None else stored.version
            )
        self._records[record.order_id] = self._snapshot(record)

    def all(self) -> list[OrderAfterSales]:
        """Copies of every stored record, by order id (for reports and tests)."""
        return [copy.copy(self._records[k]) for k in sorted(self._records)]

    @staticmethod
    def _snapshot(record: OrderAfterSales) -> OrderAfterSales:
        stored = copy.copy(record)
        stored.events = ()
        return stored


class RecordingRefunds:
    """A refund handler for :class:`~ecommerce_core.services.AfterSalesService` that records.

    It stands in for the payment side until refunds go through the ledger: each call records
    the instruction and answers a reference, once per idempotency key (a retry gets the same
    reference; the same key with another instruction is an :class:`IdempotencyConflict`).
    ``decide`` may answer ``False`` to leave a refund not done yet (it answers ``None``).
    """

    def __init__(self, decide: Callable[[RefundInstruction], bool] | None = None) -> None:
        self._decide = decide or (lambda _: True)
        self._done: dict[str, tuple[RefundInstruction, str]] = {}
        self.instructions: list[RefundInstruction] = []

    def __call__(self, instruction: RefundInstruction) -> str | None:
        """Refund ``instruction`` and return a reference, or ``None`` if not done yet."""
        previous = self._done.get(instruction.idempotency_key)
        if previous is not None:
            if previous[0] != instruction:
                raise IdempotencyConflict(instruction.idempotency_key, "another refund")
            return previous[1]
        if not self._decide(instruction):
            return None
        reference = f"rf-{len(self._done) + 1}"
        self._done[instruction.idempotency_key] = (instruction, reference)
        self.instructions.append(instruction)
        return reference

    def refunded(self, order_id: str, currency: str) -> Money:
        """Everything refunded on an order."""
        return sum(
            (i.total for i in self.instructions if i.order_id == order_id), Money.zero(currency)
        )

    def refunded_on_line(self, order_id: str, line_id: str, currency: str) -> Money:
        """Everything refunded on one line of an order (freight aside)."""
        return sum(
            (
                line.amount
                for i in self.instructions
                if i.order_id == order_id
                for line in i.lines
                if line.line_id == line_id
            ),
            Money.zero(currency),
        )
