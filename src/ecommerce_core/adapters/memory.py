"""In-memory adapters: real implementations of every port, kept in dicts.

They pass the same contract suites as any host adapter (see
:mod:`ecommerce_core.testing.contracts`), so tests and the demo use them instead of mocks.
They are not thread-safe; use one per thread, or the SQLite adapters.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ecommerce_core.campaigns import FlashSale, RushPurchase, TimeBoxedSale
from ecommerce_core.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfStock,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.limits import PROMOTION_HOLD_PROCESS, HoldState, LimitClaim, check_claims
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
from ecommerce_core.promotions import Coupon, Promotion

__all__ = [
    "InMemoryCatalog",
    "InMemoryInventory",
    "InMemoryOrderRepository",
    "InMemoryPromotionCatalog",
    "InMemoryPromotionLedger",
    "ManualClock",
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


@attrs.define
class _Hold:
    claims: tuple[LimitClaim, ...]
    kept: dict[str, int]  # kept once committed
    temporary: dict[str, int]  # given back when committed (held until paid)
    state: str = HoldState.RESERVED


class InMemoryPromotionLedger:
    """Limit counters in a dict, with all-or-nothing, idempotent reservations."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._holds: dict[str, _Hold] = {}

    def reserve(self, reservation_id: str, claims: Sequence[LimitClaim]) -> None:
        """Reserve every claim or none; a same-claims repeat of a live reservation is a no-op."""
        claims = tuple(claims)
        totals = check_claims(claims)
        existing = self._holds.get(reservation_id)
        if existing is not None and existing.state != HoldState.RELEASED:
            if existing.claims != claims:
                raise IdempotencyConflict(reservation_id, "different claims")
            return
        for key, (amount, cap) in sorted(totals.items()):
            held = self._held.get(key, 0)
            if held + amount > cap:
                raise LimitExceeded(
                    key, max(0, cap - held), amount, aggregate_id=reservation_id, command="reserve"
                )
        kept: dict[str, int] = {}
        temporary: dict[str, int] = {}
        for claim in claims:
            book = temporary if claim.until_paid else kept
            book[claim.key] = book.get(claim.key, 0) + claim.amount
        for key, (amount, _) in totals.items():
            self._held[key] = self._held.get(key, 0) + amount
        self._holds[reservation_id] = _Hold(claims, kept, temporary)

    def commit(self, reservation_id: str) -> None:
        """Keep the claims; give back those held until paid. A repeat is a no-op."""
        hold = self._holds.get(reservation_id)
        if hold is None:
            raise NotFound("promotion reservation", reservation_id)
        if hold.state == HoldState.COMMITTED:
            return
        state = PROMOTION_HOLD_PROCESS.fire(hold.state, "commit", subject_id=reservation_id)
        for key, amount in hold.temporary.items():
            self._held[key] -= amount
        hold.state = state

    def release(self, reservation_id: str) -> bool:
        """Give back what the reservation holds; ``False`` if nothing was held."""
        hold = self._holds.get(reservation_id)
        if hold is None or hold.state == HoldState.RELEASED:
            return False
        books = [hold.kept] if hold.state == HoldState.COMMITTED else [hold.kept, hold.temporary]
        for book in books:
            for key, amount in book.items():
                self._held[key] -= amount
        hold.state = PROMOTION_HOLD_PROCESS.fire(hold.state, "release", subject_id=reservation_id)
        return True

    def usage(self, keys: Iterable[str]) -> dict[str, int]:
        """What each key holds now."""
        return {key: self._held.get(key, 0) for key in keys}

    def state(self, reservation_id: str) -> str | None:
        """The reservation's state (``reserved``, ``committed``, ``released``), or ``None``."""
        hold = self._holds.get(reservation_id)
        return None if hold is None else hold.state


class InMemoryPromotionCatalog:
    """Promotions, coupons and campaigns in dicts."""

    def __init__(
        self,
        items: Iterable[Promotion | Coupon | FlashSale | RushPurchase] = (),
    ) -> None:
        self._promotions: dict[str, Promotion] = {}
        self._coupons: dict[str, Coupon] = {}
        self._campaigns: dict[str, TimeBoxedSale] = {}
        for item in items:
            self.add(item)

    def add(self, item: Promotion | Coupon | FlashSale | RushPurchase) -> None:
        """Add or replace an automatic promotion, a coupon or a campaign."""
        if isinstance(item, Promotion):
            self._promotions[item.id] = item
        elif isinstance(item, Coupon):
            self._coupons[item.code] = item
        elif isinstance(item, (FlashSale, RushPurchase)):
            self._campaigns[item.id] = item
        else:
            raise InvalidInput("item", item, "must be a Promotion, a Coupon or a campaign")

    def promotions(self, merchant_id: str) -> list[Promotion]:
        """The automatic promotions for this merchant's orders, by id."""
        return [
            self._promotions[key]
            for key in sorted(self._promotions)
            if not self._promotions[key].scope.merchants
            or merchant_id in self._promotions[key].scope.merchants
        ]

    def coupon(self, code: str) -> Coupon:
        """The coupon with this code, or :class:`NotFound`."""
        try:
            return self._coupons[code]
        except (KeyError, TypeError):
            raise NotFound("coupon", code) from None

    def campaign(self, campaign_id: str) -> TimeBoxedSale:
        """The campaign with this id, or :class:`NotFound`."""
        try:
            return self._campaigns[campaign_id]
        except (KeyError, TypeError):
            raise NotFound("campaign", campaign_id) from None
