"""In-memory adapters: real implementations of every port, kept in dicts.

They pass the same contract suites as any host adapter (see
:mod:`ecommerce_core.testing.contracts`), so tests and the demo use them instead of mocks.
They are not thread-safe; use one per thread, or the SQLite adapters.
"""

from __future__ import annotations

import bisect
import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ecommerce_core.campaigns.lucky_draw import PublicNumber
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
from ecommerce_core.orders import Order, check_now
from ecommerce_core.ports import (
    ChargeRequest,
    GatewayResult,
    GatewayStatus,
    Product,
    RefundRequest,
    StockItem,
)

__all__ = [
    "InMemoryCatalog",
    "InMemoryInventory",
    "InMemoryOrderRepository",
    "ManualClock",
    "PublishedNumbers",
    "RecordingPublisher",
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


class PublishedNumbers:
    """A randomness source replaying numbers published at known times.

    Implements :class:`~ecommerce_core.ports.RandomnessSource` over a list: a lottery's
    history, or a test's script. :meth:`publish` adds the next draw.
    """

    def __init__(self, numbers: Sequence[PublicNumber] = ()) -> None:
        self._numbers: list[PublicNumber] = []
        for number in numbers:
            self.publish(number)

    def publish(self, number: PublicNumber) -> None:
        """Publish the next number; it may not be older than the last one published.

        Raises:
            InvalidInput: Not a :class:`PublicNumber`, or published before the last one.

        """
        if not isinstance(number, PublicNumber):
            raise InvalidInput("number", number, "must be a PublicNumber")
        if self._numbers and number.published_at < self._numbers[-1].published_at:
            raise InvalidInput("number", number, "published before the last number published")
        self._numbers.append(number)

    def public_number(self, after: datetime) -> PublicNumber | None:
        """The first number published at or after ``after`` (see the port)."""
        check_now(after)
        at = bisect.bisect_left([n.published_at for n in self._numbers], after)
        return self._numbers[at] if at < len(self._numbers) else None
