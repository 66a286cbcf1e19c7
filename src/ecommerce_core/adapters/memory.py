"""In-memory adapters: real implementations of every port, kept in dicts.

They pass the same contract suites as any host adapter (see
:mod:`ecommerce_core.testing.contracts`), so tests and the demo use them instead of mocks.
They are not thread-safe; use one per thread, or the SQLite adapters.
"""

from __future__ import annotations

import bisect
import copy
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import attrs

from ecommerce_core._slots import builder as _builder
from ecommerce_core.aftersales import OrderAfterSales, RefundInstruction
from ecommerce_core.auctions import Auction
from ecommerce_core.campaigns import FlashSale, RushPurchase, TimeBoxedSale
from ecommerce_core.campaigns.group_buy import GroupBuy
from ecommerce_core.campaigns.lucky_draw import DrawRound, DrawRoundState, PublicNumber
from ecommerce_core.campaigns.rebate import Rebate
from ecommerce_core.campaigns.team import Team
from ecommerce_core.delivery import DeliveryOption, Shipment
from ecommerce_core.errors import (
    Conflict,
    CreditLimitExceeded,
    CurrencyMismatch,
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
from ecommerce_core.orders import Order, OrderLine, check_now
from ecommerce_core.payments.base import PaymentRecord
from ecommerce_core.payments.ledger import Account, Posting
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.ports import (
    AuthorizeRequest,
    CaptureRequest,
    ChargeRequest,
    GatewayResult,
    GatewayStatus,
    Product,
    RefundRequest,
    StockItem,
    VoidRequest,
)
from ecommerce_core.promotions import Coupon, Promotion

__all__ = [
    "GatewayRequest",
    "InMemoryAfterSalesRepository",
    "InMemoryAuctionRepository",
    "InMemoryCarriers",
    "InMemoryCatalog",
    "InMemoryCreditLines",
    "InMemoryDrawRoundRepository",
    "InMemoryGroupBuyRepository",
    "InMemoryIdempotencyStore",
    "InMemoryInventory",
    "InMemoryLedger",
    "InMemoryOrderRepository",
    "InMemoryPaymentRepository",
    "InMemoryPromotionCatalog",
    "InMemoryPromotionLedger",
    "InMemoryRebateRepository",
    "InMemoryShipmentRepository",
    "InMemoryTeamRepository",
    "ManualClock",
    "PublishedNumbers",
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
        self._orders[order.id] = (_STORERS.get(type(order)) or _storer(type(order)))(order)

    def get(self, order_id: str) -> Order:
        """Load a copy of an order."""
        try:
            stored = self._orders[order_id]
        except (KeyError, TypeError):
            raise NotFound("order", order_id) from None
        copy_of: Callable[[Order], Order] = _COPIERS.get(type(stored)) or _copier(type(stored))
        return copy_of(stored)

    def save(self, order: Order, expected_version: int) -> None:
        """Store ``order`` if nobody saved it since ``expected_version``."""
        stored = self._orders.get(order.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                order.id, expected_version, None if stored is None else stored.version
            )
        # the stored copy, without the events (they are published, not stored)
        self._orders[order.id] = (_STORERS.get(type(order)) or _storer(type(order)))(order)

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
        return [_clone(self._orders[k]) for k in sorted(self._orders)]

    def __len__(self) -> int:
        return len(self._orders)


@attrs.define
class _Reservation:
    items: tuple[StockItem, ...]
    status: str = "reserved"  # reserved | committed | released (from reserved or committed)


# _Reservation(items, status), field by field (a plain record: nothing to check).
_new_reservation: Callable[[tuple[StockItem, ...], str], _Reservation] = _builder(
    _Reservation, ("items", "status")
)


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
            quantity = item.quantity
            if type(quantity) is not int or quantity < 1:  # _check_quantity's test, inline
                _check_quantity(quantity)
        existing = self._reservations.get(reservation_id)
        if existing is not None:
            if existing.items != items:
                raise IdempotencyConflict(reservation_id, "different items")
            return
        on_hand, reserved = self._on_hand, self._reserved
        if len(items) == 1:  # one SKU: what the loops below do, without the dict
            sku, quantity = items[0].sku, items[0].quantity
            if on_hand.get(sku, 0) - reserved.get(sku, 0) < quantity:  # self.available(sku)
                raise OutOfStock(sku, quantity, self.available(sku))
            reserved[sku] = reserved.get(sku, 0) + quantity
            self._reservations[reservation_id] = _new_reservation(items, "reserved")
            return
        wanted: dict[str, int] = {}
        for item in items:
            wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
        for sku, quantity in sorted(wanted.items()):
            if on_hand.get(sku, 0) - reserved.get(sku, 0) < quantity:  # self.available(sku)
                raise OutOfStock(sku, quantity, self.available(sku))
        for sku, quantity in wanted.items():
            reserved[sku] = reserved.get(sku, 0) + quantity
        self._reservations[reservation_id] = _new_reservation(items, "reserved")

    def commit(self, reservation_id: str) -> None:
        """Deduct reserved units from stock; a repeat is a no-op."""
        reservation = self._reservations.get(reservation_id) or self._get(reservation_id)
        if reservation.status == "committed":
            return
        if reservation.status != "reserved":
            raise RuleViolation(reservation_id, "commit", reservation.status, "it was released")
        reserved, on_hand = self._reserved, self._on_hand
        for item in reservation.items:
            reserved[item.sku] -= item.quantity
            on_hand[item.sku] -= item.quantity
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


GatewayRequest = ChargeRequest | AuthorizeRequest | CaptureRequest | VoidRequest | RefundRequest
"""Any request the payment gateway port takes."""


@attrs.define
class _ProviderPayment:
    """What the scripted provider knows of one payment (or one legacy charge)."""

    order_id: str
    currency: str
    authorized: int = 0
    captured: int = 0
    refunded: int = 0
    voided: bool = False
    reserved: int = 0  # asked by refunds still pending: not refundable again until they settle


class ScriptedPaymentGateway:
    """A payment provider whose answers a test or the simulation decides.

    By default every request succeeds. ``decide`` may return another status per request (to
    decline, or to leave it pending as a time-out would). Answers are remembered per idempotency
    key: a retry gets the first answer, and a retry with another request is an
    :class:`IdempotencyConflict`. Like a real provider it declines, whatever ``decide`` says, a
    capture beyond the authorization, a void after a capture and a refund beyond what was
    captured (less what refunds still pending ask: a pending refund reserves its amount).

    A request answered ``PENDING`` stays pending at the provider until :meth:`settle_pending`
    completes it and returns the notification the provider would send; :meth:`report_capture`
    and :meth:`notification` build other callbacks (a capture nobody asked for, a repeat).

    Attributes:
        decide: What the provider answers a request it would accept (change it at any time).
        charged: Money captured, per order id.
        refunded: Money refunded, per order id.

    """

    def __init__(self, decide: Callable[[GatewayRequest], GatewayStatus] | None = None) -> None:
        self.decide = decide or _always_succeed
        self._answers: dict[str, tuple[GatewayRequest, GatewayResult]] = {}
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._books: dict[str, _ProviderPayment] = {}
        self._by_transaction: dict[str, str] = {}
        self.charged: dict[str, Money] = {}
        self.refunded: dict[str, Money] = {}

    # ----------------------------------------------------------------- the port

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Authorize and capture at once, once per idempotency key."""
        if type(request) is not ChargeRequest:
            return self._answer(request, "ch", None)
        # A first charge under its key, answered SUCCEEDED: what _answer and _apply do for it,
        # in one frame. Anything else (a repeat, a refusal) takes _answer.
        amount = request.amount
        key = request.idempotency_key
        if type(amount) is not Money or amount.minor <= 0 or key in self._answers:
            return self._answer(request, "ch", None)
        status = self.decide(request)
        if status is not GatewayStatus.SUCCEEDED:
            result = self._apply(request, "ch", status, None)
            self._answers[key] = (request, result)
            return result
        transaction_id = f"ch-{next(self._ids)}"
        result = _gateway_result(status, transaction_id, amount, _STATUS_TEXT[status])
        book_key = request.payment_id or transaction_id  # a legacy charge: its own book
        book = self._books.get(book_key)
        if book is None:
            book = _provider_payment(request.order_id, amount.currency, 0, 0, 0, False, 0)  # noqa: FBT003  # voided
            self._books[book_key] = book
        self._by_transaction[transaction_id] = book_key
        book.authorized += amount.minor
        book.captured += amount.minor
        self._add(self.charged, request.order_id, amount)
        self._answers[key] = (request, result)
        return result

    def authorize(self, request: AuthorizeRequest) -> GatewayResult:
        """Authorize an amount, once per idempotency key."""
        return self._answer(request, "au", None)

    def capture(self, request: CaptureRequest) -> GatewayResult:
        """Capture from an authorization; more than is left is declined."""
        book = self._book_of(request.payment_id, request.transaction_id)
        if book is None:
            refusal: str | None = "no such authorization"
        elif book.voided:
            refusal = "the authorization was voided"
        elif request.amount.minor > book.authorized - book.captured:
            refusal = "more than is left of the authorization"
        else:
            refusal = None
        return self._answer(request, "cp", refusal)

    def void(self, request: VoidRequest) -> GatewayResult:
        """Void before any capture; a captured payment is declined."""
        book = self._book_of(request.payment_id, request.transaction_id)
        refusal = "already captured" if book is not None and book.captured else None
        return self._answer(request, "vd", refusal)

    def refund(self, request: RefundRequest) -> GatewayResult:
        """Give money back, once per idempotency key; more than is left is declined.

        What is left of a payment is what was captured less what was refunded and what
        refunds still pending ask: a refund answered ``PENDING`` reserves its amount until
        :meth:`settle_pending` completes it (refunded) or fails it (free again).
        """
        book = self._book_of(request.payment_id, request.transaction_id)
        if book is None:
            refusal: str | None = "no such payment"
        elif request.amount.minor > book.captured - book.refunded - book.reserved:
            refusal = "more than is left to refund"
        else:
            refusal = None
        return self._answer(request, "re", refusal)

    def parse_notification(self, payload: Mapping[str, str]) -> Notification:
        """Check a callback's signature and normalise it.

        Raises:
            InvalidInput: A missing field, a bad amount, kind or signature.

        """
        if not isinstance(payload, Mapping):
            raise InvalidInput("payload", payload, "a notification is a mapping of fields")
        missing = [
            f
            for f in ("event_id", "payment_id", "kind", "amount", "currency")
            if not payload.get(f)
        ]
        if missing:
            raise InvalidInput("payload", dict(payload), f"missing {', '.join(missing)}")
        if payload.get("signature") != _signature(payload["event_id"]):
            raise InvalidInput("signature", payload.get("signature"), "not signed by this provider")
        try:
            kind = NotificationKind(payload["kind"])
        except ValueError:
            raise InvalidInput("kind", payload["kind"], "not a notification kind") from None
        return Notification(
            event_id=payload["event_id"],
            payment_id=payload["payment_id"],
            kind=kind,
            amount=Money.of(payload["amount"], payload["currency"]),
            transaction_id=payload.get("transaction_id", ""),
            request_key=payload.get("request_key", ""),
            reason=payload.get("reason", ""),
        )

    # ----------------------------------------------------------------- scripting

    def pending_keys(self) -> list[str]:
        """Idempotency keys of the requests still answered ``PENDING``, sorted.

        Example:
            >>> from ecommerce_core.ports import GatewayStatus
            >>> ScriptedPaymentGateway(lambda _: GatewayStatus.PENDING).pending_keys()
            []

        """
        return sorted(
            key
            for key, (_, result) in self._answers.items()
            if result.status is GatewayStatus.PENDING
        )

    def settle_pending(self, idempotency_key: str, *, succeeded: bool = True) -> dict[str, str]:
        """Complete a request answered ``PENDING`` and return the provider's callback for it.

        Raises:
            NotFound: No request with this key is pending.

        """
        found = self._answers.get(idempotency_key)
        if found is None or found[1].status is not GatewayStatus.PENDING:
            raise NotFound("pending request", idempotency_key)
        request, _ = found
        status = GatewayStatus.SUCCEEDED if succeeded else GatewayStatus.DECLINED
        if isinstance(request, RefundRequest):  # no longer reserved: refunded, or free again
            book = self._book_of(request.payment_id, request.transaction_id)
            if book is not None:
                book.reserved -= request.amount.minor
        result = self._apply(request, _PREFIX[type(request)], status)
        self._answers[idempotency_key] = (request, result)
        kind = _KIND[type(request)] if succeeded else NotificationKind.FAILED
        amount = getattr(request, "amount", None) or Money.zero(self._currency_of(request))
        return self.notification(
            kind,
            request.payment_id,
            amount,
            transaction_id=result.transaction_id,
            request_key=idempotency_key,
        )

    def report_capture(self, payment_id: str, amount: Money) -> dict[str, str]:
        """The provider captured money nobody asked for (a late or duplicate payment).

        Returns:
            Its callback.

        """
        book = self._books.setdefault(payment_id, _ProviderPayment("", amount.currency))
        book.authorized += amount.minor
        book.captured += amount.minor
        self._add(self.charged, book.order_id or payment_id, amount)
        transaction_id = f"cp-{next(self._ids)}"
        self._by_transaction[transaction_id] = payment_id
        return self.notification(
            NotificationKind.CAPTURED, payment_id, amount, transaction_id=transaction_id
        )

    def notification(
        self,
        kind: NotificationKind | str,
        payment_id: str,
        amount: Money,
        *,
        event_id: str | None = None,
        transaction_id: str = "",
        request_key: str = "",
        reason: str = "",
    ) -> dict[str, str]:
        """A signed callback payload as this provider sends it (changes nothing here)."""
        event = event_id or f"ev-{next(self._events)}"
        return {
            "event_id": event,
            "payment_id": payment_id,
            "kind": str(NotificationKind(kind)),
            "amount": str(amount.amount),
            "currency": amount.currency,
            "transaction_id": transaction_id,
            "request_key": request_key,
            "reason": reason,
            "signature": _signature(event),
        }

    # ----------------------------------------------------------------- internals

    def _answer(self, request: GatewayRequest, prefix: str, refusal: str | None) -> GatewayResult:
        amount = getattr(request, "amount", None)
        if amount is not None and amount.minor <= 0:  # not amount.is_positive
            raise InvalidInput("amount", amount, "must be positive")
        previous = self._answers.get(request.idempotency_key)
        if previous is not None:
            if previous[0] != request:
                raise IdempotencyConflict(request.idempotency_key, "different request")
            return previous[1]
        status = GatewayStatus.DECLINED if refusal else self.decide(request)
        result = self._apply(request, prefix, status, refusal)
        self._answers[request.idempotency_key] = (request, result)
        return result

    def _apply(
        self,
        request: GatewayRequest,
        prefix: str,
        status: GatewayStatus,
        refusal: str | None = None,
    ) -> GatewayResult:
        currency = self._currency_of(request)
        amount = getattr(request, "amount", None) or Money.zero(currency)
        declined = status is GatewayStatus.DECLINED
        transaction_id = "" if declined else f"{prefix}-{next(self._ids)}"
        text = _STATUS_TEXT[status] if type(status) is GatewayStatus else status.value
        message = refusal or text  # status.value, without the enum's property
        result = _gateway_result(status, transaction_id, amount, message)
        if isinstance(request, (ChargeRequest, AuthorizeRequest)):
            key = request.payment_id or transaction_id or request.idempotency_key
            book = self._books.get(key)
            if book is None:  # _ProviderPayment(request.order_id, currency), field by field
                book = _provider_payment(request.order_id, currency, 0, 0, 0, False, 0)  # noqa: FBT003  # voided
                self._books[key] = book
            if status is not GatewayStatus.SUCCEEDED:  # not result.succeeded
                return result
            self._by_transaction[transaction_id] = request.payment_id or transaction_id
            book.authorized += amount.minor
            if isinstance(request, ChargeRequest):
                book.captured += amount.minor
                self._add(self.charged, request.order_id, amount)
            return result
        if not result.succeeded:
            if status is GatewayStatus.PENDING and isinstance(request, RefundRequest):
                pending = self._book_of(request.payment_id, request.transaction_id)
                if pending is not None:  # reserved until settle_pending: refunded or freed
                    pending.reserved += amount.minor
            return result
        book_or_none = self._book_of(request.payment_id, request.transaction_id)
        if book_or_none is None:  # a void of a payment the provider never saw: nothing to undo
            return result
        book = book_or_none
        if isinstance(request, CaptureRequest):
            book.captured += amount.minor
            self._add(self.charged, book.order_id, amount)
        elif isinstance(request, RefundRequest):
            book.refunded += amount.minor
            self._add(self.refunded, request.order_id, amount)
        else:
            book.voided = True
        return result

    def _book_of(self, payment_id: str, transaction_id: str) -> _ProviderPayment | None:
        key = payment_id or self._by_transaction.get(transaction_id, "")
        return self._books.get(key)

    def _currency_of(self, request: GatewayRequest) -> str:
        if not isinstance(request, VoidRequest):
            return request.amount.currency
        book = self._book_of(request.payment_id, request.transaction_id)
        return "CNY" if book is None else book.currency

    @staticmethod
    def _add(book: dict[str, Money], order_id: str, amount: Money) -> None:
        so_far = book.get(order_id)
        if so_far is None and type(amount) is Money:  # zero + amount is amount (immutable)
            book[order_id] = amount
        else:
            book[order_id] = (so_far or Money.zero(amount.currency)) + amount


_PREFIX: Final = {
    ChargeRequest: "ch",
    AuthorizeRequest: "au",
    CaptureRequest: "cp",
    VoidRequest: "vd",
    RefundRequest: "re",
}
_KIND: Final = {
    ChargeRequest: NotificationKind.CAPTURED,
    AuthorizeRequest: NotificationKind.AUTHORIZED,
    CaptureRequest: NotificationKind.CAPTURED,
    VoidRequest: NotificationKind.FAILED,
    RefundRequest: NotificationKind.REFUNDED,
}


# _ProviderPayment(order_id, currency, authorized, captured, refunded, voided,
# reserved), field by field.
_provider_payment: Callable[[str, str, int, int, int, bool, int], _ProviderPayment] = _builder(
    _ProviderPayment,
    ("order_id", "currency", "authorized", "captured", "refunded", "voided", "reserved"),
)
_STATUS_TEXT: Final = {status: status.value for status in GatewayStatus}
# GatewayResult(status, transaction_id, amount, message), slot by slot (a plain answer).
_gateway_result: Callable[[GatewayStatus, str, Money, str], GatewayResult] = _builder(
    GatewayResult, ("status", "transaction_id", "amount", "message")
)


def _always_succeed(_: GatewayRequest) -> GatewayStatus:
    return GatewayStatus.SUCCEEDED


def _signature(event_id: str) -> str:
    return f"scripted:{event_id}"


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
        counter = self._counters.get(kind)
        if counter is None:  # a new kind: its own counter (built once, not on every call)
            counter = self._counters[kind] = itertools.count(1)
        return f"{kind}-{next(counter)}"


class RecordingPublisher:
    """Keeps every published event in :attr:`published`, in order."""

    def __init__(self) -> None:
        self.published: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Append ``events``."""
        self.published.extend(events)


class InMemoryLedger:
    """Postings in a list, indexed by key and by order, with running balances.

    Balances are folded from the postings appended since the last question about them, each
    posting once: appending stays a few dict writes.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, Posting] = {}
        self._by_order: dict[str, list[Posting]] = {}
        self._balances: dict[tuple[Account, str], int] = {}
        self._unfolded: list[Posting] = []  # appended, not yet in the balances

    def append(self, postings: Sequence[Posting]) -> int:
        """Append every posting or none; known keys with the same posting are skipped."""
        by_key = self._by_key
        fresh: dict[str, Posting] = {}
        for posting in postings:
            if type(posting) is not Posting and not isinstance(posting, Posting):
                raise InvalidInput("postings", posting, "the ledger takes Postings only")
            key = posting.key
            known = by_key.get(key) or fresh.get(key)
            if known is None:
                fresh[key] = posting
            elif known is not posting and known != posting:
                if key in fresh:
                    raise InvalidInput("postings", key, "one key twice in the batch")
                raise IdempotencyConflict(key, "another posting is stored under it")
        if not fresh:
            return 0
        by_order = self._by_order
        for key, posting in fresh.items():
            by_key[key] = posting
            listed = by_order.get(posting.order_id)
            if listed is None:
                by_order[posting.order_id] = [posting]
            else:
                listed.append(posting)
        self._unfolded.extend(fresh.values())
        return len(fresh)

    def _fold(self) -> dict[tuple[Account, str], int]:
        """The running balances, with the postings appended since the last call folded in."""
        balances = self._balances
        for posting in self._unfolded:
            currency, minor = posting.amount.currency, posting.amount.minor
            source, target = (posting.source, currency), (posting.target, currency)
            balances[source] = balances.get(source, 0) - minor
            balances[target] = balances.get(target, 0) + minor
        self._unfolded.clear()
        return balances

    def postings(self, order_id: str) -> list[Posting]:
        """An order's postings, in append order."""
        return list(self._by_order.get(order_id, ()))

    def balance(self, account: Account, currency: str) -> Money:
        """The account's balance in ``currency``."""
        return Money(self._fold().get((account, currency), 0), currency)

    def balances(self, currency: str) -> dict[Account, Money]:
        """Every account that moved money in ``currency``, with its balance."""
        return {
            account: Money(minor, currency)
            for (account, code), minor in sorted(self._fold().items())
            if code == currency
        }

    def all(self) -> list[Posting]:
        """Every posting, in append order (for reports and tests)."""
        return list(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


class InMemoryPaymentRepository:
    """Payment aggregates in a dict, with optimistic concurrency and a deadline index."""

    def __init__(self) -> None:
        self._payments: dict[str, PaymentRecord] = {}
        self._by_order: dict[str, list[str]] = {}

    def add(self, payment: PaymentRecord) -> None:
        """Store a new payment."""
        if payment.id in self._payments:
            raise Conflict(f"a payment with id {payment.id!r} is already stored")
        self._payments[payment.id] = (_STORERS.get(type(payment)) or _storer(type(payment)))(
            payment
        )
        self._by_order.setdefault(payment.order_id, []).append(payment.id)

    def get(self, payment_id: str) -> PaymentRecord:
        """Load a copy of a payment."""
        try:
            stored = self._payments[payment_id]
        except (KeyError, TypeError):
            raise NotFound("payment", payment_id) from None
        copy_of: Callable[[PaymentRecord], PaymentRecord] = _COPIERS.get(type(stored)) or _copier(
            type(stored)
        )
        return copy_of(stored)

    def save(self, payment: PaymentRecord, expected_version: int) -> None:
        """Store ``payment`` if nobody saved it since ``expected_version``."""
        stored = self._payments.get(payment.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                payment.id, expected_version, None if stored is None else stored.version
            )
        self._payments[payment.id] = (_STORERS.get(type(payment)) or _storer(type(payment)))(
            payment
        )

    def for_order(self, order_id: str) -> list[str]:
        """Ids of an order's payments, oldest first."""
        return list(self._by_order.get(order_id, ()))

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of payments whose deadline has come, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (p.deadline, p.id)
            for p in self._payments.values()
            if p.deadline is not None and p.deadline <= now
        )
        return [payment_id for _, payment_id in due[:limit]]

    def all(self) -> list[PaymentRecord]:
        """Copies of every payment, by id."""
        return [_clone(self._payments[k]) for k in sorted(self._payments)]


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slots(cls: type) -> tuple[str, ...]:
    found = _SLOTS.get(cls)
    if found is None:
        names = (n for c in cls.__mro__ for n in getattr(c, "__slots__", ()))
        found = _SLOTS[cls] = tuple(dict.fromkeys(n for n in names if not n.startswith("__")))
    return found


_A = TypeVar("_A")
_CLONERS: dict[tuple[type, bool], Callable[[Any], Any]] = {}


def _cloner(cls: type, *, without_events: bool) -> Callable[[Any], Any]:
    """Generate a field-by-field shallow copy of a slotted aggregate (cached per class).

    Much cheaper than :func:`copy.copy` (which goes through ``__reduce_ex__`` and a state
    dict). ``without_events`` sets ``events`` to ``()`` instead of copying it, for snapshots.
    A class that is not fully slotted (instances with a ``__dict__``) falls back to
    :func:`copy.copy`.
    """
    found: Callable[[Any], Any]
    if any("__dict__" in getattr(c, "__slots__", ("__dict__",)) for c in cls.__mro__[:-1]):

        def found(source: Any) -> Any:
            clone = copy.copy(source)
            if without_events:
                clone.events = ()
            return clone

    else:
        direct = cls.__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
        lines = ["def clone(source):", "    target = _new(_cls)"]
        for name in _slots(cls):
            value = "()" if without_events and name == "events" else f"source.{name}"
            if direct:
                lines.append(f"    target.{name} = {value}")
            else:
                lines.append(f"    _set(target, {name!r}, {value})")
        lines.append("    return target")
        namespace: dict[str, Any] = {
            "_new": object.__new__,
            "_cls": cls,
            "_set": object.__setattr__,
        }
        exec("\n".join(lines), namespace)  # noqa: S102  # generated from the class's own slot names
        found = namespace["clone"]
    _CLONERS[cls, without_events] = found
    (_STORERS if without_events else _COPIERS)[cls] = found
    return found


_COPIERS: dict[type, Callable[[Any], Any]] = {}  # per class: _clone's cloner, one lookup
_STORERS: dict[type, Callable[[Any], Any]] = {}  # per class: _stored's cloner


def _copier(cls: type) -> Callable[[Any], Any]:
    """The cloner :func:`_clone` uses for ``cls`` (repositories call it inline)."""
    return _COPIERS.get(cls) or _cloner(cls, without_events=False)


def _storer(cls: type) -> Callable[[Any], Any]:
    """The cloner :func:`_stored` uses for ``cls`` (repositories call it inline)."""
    return _STORERS.get(cls) or _cloner(cls, without_events=True)


def _clone(aggregate: _A) -> _A:
    """A shallow copy of a slotted aggregate (its fields are immutable values or tuples)."""
    clone: _A = _copier(type(aggregate))(aggregate)
    return clone


def _stored(aggregate: _A) -> _A:
    """The copy a repository stores: :func:`_clone` without the unpublished ``events``."""
    stored: _A = _storer(type(aggregate))(aggregate)
    return stored


class InMemoryCreditLines:
    """Credit lines per buyer, with keyed, idempotent draws and restorations."""

    def __init__(self, limits: Mapping[str, Money] | None = None) -> None:
        self._limits: dict[str, Money] = {}
        self._drawn: dict[str, int] = {}
        self._keys: dict[str, tuple[str, str, Money]] = {}
        for buyer_id, limit in (limits or {}).items():
            self.grant(buyer_id, limit)

    def grant(self, buyer_id: str, limit: Money) -> None:
        """Open or change a buyer's credit line."""
        if not isinstance(limit, Money) or limit.is_negative:
            raise InvalidInput("limit", limit, "must be Money, not negative")
        current = self._limits.get(buyer_id)
        if current is not None and current.currency != limit.currency:
            raise CurrencyMismatch(current.currency, limit.currency, "grant")
        self._limits[buyer_id] = limit

    def limit(self, buyer_id: str) -> Money:
        """The buyer's limit."""
        try:
            return self._limits[buyer_id]
        except (KeyError, TypeError):
            raise NotFound("credit line", buyer_id) from None

    def drawn(self, buyer_id: str) -> Money:
        """What the buyer owes on the line."""
        return Money(self._drawn.get(buyer_id, 0), self.limit(buyer_id).currency)

    def available(self, buyer_id: str) -> Money:
        """What the buyer may still draw (never below zero)."""
        left = self.limit(buyer_id) - self.drawn(buyer_id)
        return max(left, Money.zero(left.currency))

    def draw(self, key: str, buyer_id: str, amount: Money) -> None:
        """Draw, once per key; never beyond what is available."""
        if self._repeat(key, "draw", buyer_id, amount):
            return
        available = self.available(buyer_id)
        if amount > available:
            raise CreditLimitExceeded(buyer_id, available, amount)
        self._drawn[buyer_id] = self._drawn.get(buyer_id, 0) + amount.minor
        self._keys[key] = ("draw", buyer_id, amount)

    def restore(self, key: str, buyer_id: str, amount: Money) -> None:
        """Give back, once per key; never more than is drawn."""
        if self._repeat(key, "restore", buyer_id, amount):
            return
        if amount > self.drawn(buyer_id):
            raise InvalidInput("amount", amount, f"more than the {self.drawn(buyer_id)} drawn")
        self._drawn[buyer_id] -= amount.minor
        self._keys[key] = ("restore", buyer_id, amount)

    def _repeat(self, key: str, what: str, buyer_id: str, amount: Money) -> bool:
        limit = self.limit(buyer_id)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != limit.currency:
            raise CurrencyMismatch(limit.currency, amount.currency, what)
        if not amount.is_positive:
            raise InvalidInput("amount", amount, "must be positive")
        known = self._keys.get(key)
        if known is None:
            return False
        if known != (what, buyer_id, amount):
            raise IdempotencyConflict(key, f"first used for {known[0]} of {known[2]}")
        return True


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


def _check_idempotency_input(key: object, fingerprint: object, result: object = "") -> None:
    for field, value in (("key", key), ("fingerprint", fingerprint)):
        if type(value) is not str or not value:
            raise InvalidInput(field, value, "must be a non-empty string")
    if type(result) is not str:
        raise InvalidInput("result", result, "must be a string (encode it, as JSON say)")


class InMemoryIdempotencyStore:
    """Idempotency keys in a dict: ``key -> (fingerprint, result)``."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, str]] = {}

    def remember(self, key: str, fingerprint: str, result: str) -> str:
        """Remember ``result`` under a new key, or return the key's first result."""
        _check_idempotency_input(key, fingerprint, result)
        stored = self._entries.setdefault(key, (fingerprint, result))
        if stored[0] != fingerprint:
            raise IdempotencyConflict(key, "different fingerprint")
        return stored[1]

    def lookup(self, key: str, fingerprint: str) -> str | None:
        """The result remembered under ``key``, or ``None``."""
        _check_idempotency_input(key, fingerprint)
        stored = self._entries.get(key)
        if stored is None:
            return None
        if stored[0] != fingerprint:
            raise IdempotencyConflict(key, "different fingerprint")
        return stored[1]

    def __len__(self) -> int:
        return len(self._entries)


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


class InMemoryTeamRepository:
    """Teams in a dict, with optimistic concurrency, a deadline index and an order index."""

    def __init__(self) -> None:
        self._teams: dict[str, Team] = {}
        self._by_order: dict[str, str] = {}

    def add(self, team: Team) -> None:
        """Store a new team (see :class:`~ecommerce_core.ports.TeamRepository`)."""
        if team.id in self._teams:
            raise Conflict(f"a team with id {team.id!r} is already stored")
        self._store(team)

    def get(self, team_id: str) -> Team:
        """Load a copy of a team."""
        try:
            stored = self._teams[team_id]
        except (KeyError, TypeError):
            raise NotFound("team", team_id) from None
        return copy.deepcopy(stored)

    def save(self, team: Team, expected_version: int) -> None:
        """Store ``team`` if nobody saved it since ``expected_version``."""
        stored = self._teams.get(team.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                team.id, expected_version, None if stored is None else stored.version
            )
        self._store(team)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of forming teams whose deadline has come, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (t.due_at, t.id)
            for t in self._teams.values()
            if t.due_at is not None and t.due_at <= now
        )
        return [team_id for _, team_id in due[:limit]]

    def team_of(self, order_id: str) -> str | None:
        """The team a member's order took a place in."""
        return self._by_order.get(order_id)

    def _store(self, team: Team) -> None:
        stored = copy.deepcopy(team)
        stored.events = ()  # events are published, not stored
        self._teams[team.id] = stored
        for member in stored.members:
            self._by_order[member.order_id] = team.id


class InMemoryDrawRoundRepository:
    """Lucky-draw rounds in a dict, with optimistic concurrency, a due index and an order index."""

    def __init__(self) -> None:
        self._rounds: dict[str, DrawRound] = {}
        self._by_order: dict[str, str] = {}

    def add(self, draw_round: DrawRound) -> None:
        """Store a new round (see :class:`~ecommerce_core.ports.DrawRoundRepository`)."""
        if draw_round.id in self._rounds:
            raise Conflict(f"a draw round with id {draw_round.id!r} is already stored")
        self._store(draw_round)

    def get(self, round_id: str) -> DrawRound:
        """Load a copy of a round."""
        try:
            stored = self._rounds[round_id]
        except (KeyError, TypeError):
            raise NotFound("draw round", round_id) from None
        return copy.deepcopy(stored)

    def save(self, draw_round: DrawRound, expected_version: int) -> None:
        """Store ``draw_round`` if nobody saved it since ``expected_version``."""
        stored = self._rounds.get(draw_round.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                draw_round.id, expected_version, None if stored is None else stored.version
            )
        self._store(draw_round)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of rounds past their deadline, or sold out and waiting for their draw."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (at, r.id)
            for r in self._rounds.values()
            if (at := _round_due_at(r)) is not None and at <= now
        )
        return [round_id for _, round_id in due[:limit]]

    def round_of(self, order_id: str) -> str | None:
        """The round a share order reserved shares in."""
        return self._by_order.get(order_id)

    def _store(self, draw_round: DrawRound) -> None:
        stored = copy.deepcopy(draw_round)
        stored.events = ()  # events are published, not stored
        self._rounds[draw_round.id] = stored
        for purchase in stored.purchases:
            self._by_order[purchase.order_id] = draw_round.id


def _round_due_at(draw_round: DrawRound) -> datetime | None:
    """When a round is due: its deadline, or its sell-out while it waits for the draw."""
    if draw_round.state == DrawRoundState.SOLD_OUT:
        return draw_round.sold_out_at
    return draw_round.due_at


class InMemoryGroupBuyRepository:
    """Group-buy campaigns in a dict, with optimistic concurrency and a deadline index."""

    def __init__(self) -> None:
        self._campaigns: dict[str, GroupBuy] = {}

    def add(self, campaign: GroupBuy) -> None:
        """Store a new campaign (see :class:`~ecommerce_core.ports.GroupBuyRepository`)."""
        if campaign.id in self._campaigns:
            raise Conflict(f"a group buy with id {campaign.id!r} is already stored")
        self._store(campaign)

    def get(self, campaign_id: str) -> GroupBuy:
        """Load a copy of a campaign."""
        try:
            stored = self._campaigns[campaign_id]
        except (KeyError, TypeError):
            raise NotFound("group buy", campaign_id) from None
        return copy.deepcopy(stored)

    def save(self, campaign: GroupBuy, expected_version: int) -> None:
        """Store ``campaign`` if nobody saved it since ``expected_version``."""
        stored = self._campaigns.get(campaign.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                campaign.id, expected_version, None if stored is None else stored.version
            )
        self._store(campaign)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of running campaigns whose window has ended, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (c.due_at, c.id)
            for c in self._campaigns.values()
            if c.due_at is not None and c.due_at <= now
        )
        return [campaign_id for _, campaign_id in due[:limit]]

    def _store(self, campaign: GroupBuy) -> None:
        stored = copy.deepcopy(campaign)
        stored.events = ()  # events are published, not stored
        self._campaigns[campaign.id] = stored


class InMemoryRebateRepository:
    """Rebates in a dict, with optimistic concurrency, a thaw-time index and an order index."""

    def __init__(self) -> None:
        self._rebates: dict[str, Rebate] = {}
        self._by_order: dict[str, set[str]] = {}

    def add(self, rebate: Rebate) -> None:
        """Store a new rebate (see :class:`~ecommerce_core.ports.RebateRepository`)."""
        if rebate.id in self._rebates:
            raise Conflict(f"a rebate with id {rebate.id!r} is already stored")
        self._store(rebate)

    def get(self, rebate_id: str) -> Rebate:
        """Load a copy of a rebate."""
        try:
            stored = self._rebates[rebate_id]
        except (KeyError, TypeError):
            raise NotFound("rebate", rebate_id) from None
        return _clone(stored)  # every field of a rebate is an immutable value

    def save(self, rebate: Rebate, expected_version: int) -> None:
        """Store ``rebate`` if nobody saved it since ``expected_version``."""
        stored = self._rebates.get(rebate.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                rebate.id, expected_version, None if stored is None else stored.version
            )
        self._store(rebate)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of frozen rebates whose thaw time has come, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (r.due_at, r.id)
            for r in self._rebates.values()
            if r.due_at is not None and r.due_at <= now
        )
        return [rebate_id for _, rebate_id in due[:limit]]

    def for_order(self, order_id: str) -> list[str]:
        """The rebates granted on an order, sorted by id."""
        return sorted(self._by_order.get(order_id, ()))

    def _store(self, rebate: Rebate) -> None:
        self._rebates[rebate.id] = _stored(rebate)  # events are published, not stored
        self._by_order.setdefault(rebate.order_id, set()).add(rebate.id)


class InMemoryAuctionRepository:
    """Auctions in a dict, with optimistic concurrency and a deadline index."""

    def __init__(self) -> None:
        self._auctions: dict[str, Auction] = {}

    def add(self, auction: Auction) -> None:
        """Store a new auction (see :class:`~ecommerce_core.ports.AuctionRepository`)."""
        if auction.id in self._auctions:
            raise Conflict(f"an auction with id {auction.id!r} is already stored")
        self._store(auction)

    def get(self, auction_id: str) -> Auction:
        """Load a copy of an auction."""
        try:
            stored = self._auctions[auction_id]
        except (KeyError, TypeError):
            raise NotFound("auction", auction_id) from None
        return copy.deepcopy(stored)

    def save(self, auction: Auction, expected_version: int) -> None:
        """Store ``auction`` if nobody saved it since ``expected_version``."""
        stored = self._auctions.get(auction.id)
        if stored is None or stored.version != expected_version:
            raise VersionConflict(
                auction.id, expected_version, None if stored is None else stored.version
            )
        self._store(auction)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of auctions whose end or payment deadline has come, earliest first."""
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        due = sorted(
            (a.due_at, a.id)
            for a in self._auctions.values()
            if a.due_at is not None and a.due_at <= now
        )
        return [auction_id for _, auction_id in due[:limit]]

    def all(self) -> list[Auction]:
        """Copies of every stored auction (for tests and the demo)."""
        return [copy.deepcopy(a) for a in self._auctions.values()]

    def _store(self, auction: Auction) -> None:
        stored = copy.deepcopy(auction)
        stored.events = ()  # events are published, not stored
        self._auctions[auction.id] = stored
