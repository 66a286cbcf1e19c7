"""The Order aggregate, its standard process, and checkout (buy now, cart split by merchant).

An :class:`Order` stores one state, named by its :class:`~ecommerce_core.process.Process`; the
standard process is::

    pending_payment 待付款 ─pay→ awaiting_shipment 待发货 ─ship→ shipped 已发货 ─deliver→
    delivered 已送达 ─confirm_receipt / auto_confirm→ completed 已完成 ─close→ closed

with ``cancel`` (buyer, merchant or platform, before shipment) and ``expire_payment`` (the
payment deadline) leading to ``cancelled``. Payment methods and sales modes extend it
(:meth:`~ecommerce_core.process.ProcessDefinition.extend`).

Every command names its :class:`~ecommerce_core.actors.Actor` and the time ``now``; it checks
the actor, the input and the transition *before* changing anything, so a refused command
leaves the order, its version and its events exactly as they were. An accepted command moves
the state, raises the version by one and appends one event.

Timeouts are stored deadlines: entering a timed state sets :attr:`Order.deadline`, and
:meth:`Order.expire` fires the deadline's trigger once ``now`` has reached it. A *hold*
(:meth:`Order.pause_clock`: an open refund, a payment in flight, an after-sales request) pauses
the running deadline and keeps its remaining time until the last hold is lifted
(:meth:`Order.resume_clock`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

import attrs

from ecommerce_core import _slots
from ecommerce_core._slots import event as _event
from ecommerce_core._slots import new
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    CurrencyMismatch,
    Forbidden,
    InvalidInput,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.events import (
    AutoConfirmExtended,
    DeadlinePaused,
    DeadlineResumed,
    DomainEvent,
    OrderCancelled,
    OrderClosed,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderRepriced,
    OrderShipped,
    ReceiptConfirmed,
)
from ecommerce_core.limits import LimitClaim, StockTiming
from ecommerce_core.money import _ZEROS, Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "STANDARD_ORDER",
    "STANDARD_ORDER_PROCESS",
    "Cancellation",
    "CartItem",
    "Deadline",
    "Entitlement",
    "LineAdjustment",
    "Order",
    "OrderLine",
    "OrderState",
    "PausedClock",
    "Payment",
    "PricingTerms",
    "ShipmentInfo",
    "check_now",
    "split_by_merchant",
]


class OrderState:
    """Names of the standard order states (plain strings, as stored)."""

    PENDING_PAYMENT: Final = "pending_payment"
    AWAITING_SHIPMENT: Final = "awaiting_shipment"
    SHIPPED: Final = "shipped"
    DELIVERED: Final = "delivered"
    COMPLETED: Final = "completed"
    CLOSED: Final = "closed"
    CANCELLED: Final = "cancelled"


def _payment_covers_total(order: Order, amount: Money) -> str | None:
    total = order.total
    if type(amount) is Money and type(total) is Money:  # Money's ==, without the call
        if amount.minor == total.minor and amount.currency == total.currency:
            return None
    elif amount == total:
        return None
    return f"paid {amount} but the order total is {order.total}"


ORDER_GUARDS: Final = MappingProxyType({"payment_covers_total": _payment_covers_total})

S = OrderState
STANDARD_ORDER: Final = ProcessDefinition(
    name="order.standard",
    initial=S.PENDING_PAYMENT,
    states=(
        State(S.PENDING_PAYMENT, description="待付款 placed, awaiting payment"),
        State(S.AWAITING_SHIPMENT, description="待发货 paid, awaiting shipment"),
        State(S.SHIPPED, description="已发货 handed to the carrier"),
        State(S.DELIVERED, description="已送达 the carrier reports it delivered"),
        State(S.COMPLETED, description="已完成 receipt confirmed; after-sales window open"),
        State(S.CLOSED, final=True, description="已关闭 after-sales window over"),
        State(S.CANCELLED, final=True, description="已取消 cancelled before shipment"),
    ),
    transitions=(
        Transition("pay", S.PENDING_PAYMENT, S.AWAITING_SHIPMENT, guards="payment_covers_total"),
        Transition("expire_payment", S.PENDING_PAYMENT, S.CANCELLED),
        Transition("cancel", (S.PENDING_PAYMENT, S.AWAITING_SHIPMENT), S.CANCELLED),
        Transition("ship", S.AWAITING_SHIPMENT, S.SHIPPED),
        Transition("deliver", S.SHIPPED, S.DELIVERED),
        Transition("confirm_receipt", (S.SHIPPED, S.DELIVERED), S.COMPLETED),
        Transition("auto_confirm", (S.SHIPPED, S.DELIVERED), S.COMPLETED),
        Transition("close", S.COMPLETED, S.CLOSED),
    ),
)
"""The standard order process (online payment, ordinary sale)."""

STANDARD_ORDER_PROCESS: Final = Process(STANDARD_ORDER, ORDER_GUARDS)
""":data:`STANDARD_ORDER`, validated and compiled."""

# Which states run a clock: state -> (trigger fired when due, OrderPolicy attribute).
TIMERS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        S.PENDING_PAYMENT: ("expire_payment", "payment_timeout"),
        S.SHIPPED: ("auto_confirm", "auto_confirm_after"),
        S.DELIVERED: ("auto_confirm", "auto_confirm_after"),
        S.COMPLETED: ("close", "after_sales_window"),
    }
)

_TIMERS: Final[dict[str, tuple[str, str]]] = dict(TIMERS)

# Who may open and lift holds on the order's clock.
_HOLDERS: Final = frozenset({ActorKind.PLATFORM, ActorKind.SYSTEM})

# Who may run each command; buyers and merchants must also own the order.
_MAY: Final[Mapping[str, frozenset[ActorKind]]] = MappingProxyType(
    {
        "pay": frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "cancel": frozenset({ActorKind.BUYER, ActorKind.MERCHANT, ActorKind.PLATFORM}),
        "ship": frozenset({ActorKind.MERCHANT}),
        "deliver": frozenset({ActorKind.CARRIER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "confirm_receipt": frozenset({ActorKind.BUYER}),
        "expire": frozenset({ActorKind.SYSTEM}),
    }
)


def check_now(now: object) -> datetime:
    """Return ``now`` if it is a timezone-aware datetime, else raise :class:`InvalidInput`."""
    if type(now) is datetime and now.tzinfo is UTC:  # the usual case: aware, offset zero
        return now
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now", now, "must be a timezone-aware datetime")
    return now


def _plain_text(value: object) -> bool:
    """Whether :func:`_text` passes ``value`` as it is (a plain, non-blank ``str`` <= 200)."""
    # not value.strip() is len(value) == 0 or value.isspace(): the same whitespace test
    return type(value) is str and 0 < len(value) <= _MAX_TEXT and not value.isspace()


_MAX_TEXT: Final = 200  # _text's default limit


def _text(field: str, value: object, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidInput(field, value[:20] + "...", f"longer than {max_length} characters")
    return value


def _positive_quantity(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int:
        raise InvalidInput(attribute.name, value, "must be a whole number of units")
    if value < 1:
        raise InvalidInput(attribute.name, value, "must be at least 1")


def _non_negative_money(_: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise InvalidInput(attribute.name, value, "must be Money")
    if value.is_negative:
        raise InvalidInput(attribute.name, value, "must not be negative")


def _to_adjustments(value: Iterable[LineAdjustment]) -> tuple[LineAdjustment, ...]:
    return tuple(value)


@attrs.frozen
class OrderLine:
    """One line of an order: a SKU, a quantity and what it costs.

    Attributes:
        line_id: The line's id within the order (``"1"``, ``"2"``, ...).
        sku: The stock-keeping unit.
        quantity: Units ordered (at least 1).
        unit_price: The list price of one unit.
        discount: The part of every discount allocated to this line, in total for the line.
            Pricing stores it here so refunds reverse exactly what was given.
        category: The product category (used by promotions and return rules).
        adjustments: What each promotion gave this line (:class:`LineAdjustment`), adding
            up to ``discount``; a refund reverses them as stored, never re-prorated. When
            ``discount`` is omitted it is their sum.

    """

    line_id: str
    sku: str
    quantity: int = attrs.field(validator=_positive_quantity)
    unit_price: Money = attrs.field(validator=_non_negative_money)
    discount: Money | None = attrs.field(default=None, kw_only=True)
    category: str = attrs.field(default="", kw_only=True)
    adjustments: tuple[LineAdjustment, ...] = attrs.field(
        default=(), kw_only=True, converter=_to_adjustments
    )

    def __attrs_post_init__(self) -> None:
        _text("line_id", self.line_id)
        _text("sku", self.sku)
        if self.adjustments:
            _check_adjustments(self)
        if self.discount is None:
            object.__setattr__(self, "discount", Money.zero(self.unit_price.currency))
            return
        if not isinstance(self.discount, Money) or self.discount.is_negative:
            raise InvalidInput("discount", self.discount, "must be Money, not negative")
        if self.discount.currency != self.unit_price.currency:
            raise CurrencyMismatch(self.unit_price.currency, self.discount.currency)
        if self.discount > self.list_amount:
            raise InvalidInput(
                "discount", self.discount, f"exceeds the line's list amount {self.list_amount}"
            )

    @property
    def list_amount(self) -> Money:
        """Unit price times quantity, before discounts."""
        return self.unit_price * self.quantity

    @property
    def amount(self) -> Money:
        """What the buyer pays for this line: list amount less its discount."""
        assert self.discount is not None  # noqa: S101  # set in __attrs_post_init__
        return self.list_amount - self.discount


@attrs.frozen
class CartItem:
    """A buyer's request for units of a SKU: the input of buy-now and cart checkout.

    Attributes:
        sku: The stock-keeping unit.
        quantity: Units wanted (at least 1).

    """

    sku: str
    quantity: int = attrs.field(validator=_positive_quantity)

    def __attrs_post_init__(self) -> None:
        _text("sku", self.sku)


@attrs.frozen(weakref_slot=False)  # one per order at rest: no room for weak references
class Deadline:
    """A stored timeout: when ``at`` is reached, ``trigger`` fires.

    Attributes:
        at: The moment it falls due.
        trigger: The transition it fires (``"expire_payment"``, ``"auto_confirm"``, ...).

    """

    at: datetime
    trigger: str


@attrs.frozen
class PausedClock:
    """A deadline on hold: which trigger it fires and how much time it had left.

    Attributes:
        trigger: The transition it fires once it runs again and falls due.
        remaining: The time it had left when it was paused (never negative).

    """

    trigger: str
    remaining: timedelta


@attrs.frozen
class Payment:
    """The payment that settled an order.

    Attributes:
        reference: The gateway's transaction id.
        amount: The amount paid.
        paid_at: When it was recorded.

    """

    reference: str
    amount: Money
    paid_at: datetime


@attrs.frozen
class ShipmentInfo:
    """How the order was shipped.

    Attributes:
        carrier: The carrier's id.
        tracking_number: The carrier's tracking number.
        shipped_at: When it was handed over.

    """

    carrier: str
    tracking_number: str
    shipped_at: datetime


@attrs.frozen
class Cancellation:
    """Why and by whom an order was cancelled.

    Attributes:
        reason: The reason given.
        by: The actor, as ``"kind:id"``.
        at: When.

    """

    reason: str
    by: str
    at: datetime


@attrs.define(eq=False, weakref_slot=False)  # nothing holds orders weakly; 8 bytes each
class Order:
    """The order aggregate.

    Build orders with :meth:`place` (or :func:`split_by_merchant` for a cart), never by hand:
    ``place`` validates the lines and starts the process. Run commands through its methods;
    read the rest.

    Attributes:
        id: The order id.
        checkout_id: The checkout it came from (shared by orders split from one cart).
        buyer_id: The buyer who owns it.
        merchant_id: The merchant who sells it.
        lines: Its lines, in order.
        shipping_fee: The delivery fee the buyer pays.
        total: What the buyer owes: line amounts plus the shipping fee.
        process: The process it follows.
        state: The one stored state.
        placed_at: When it was placed.
        version: Raised by one by every accepted command (optimistic concurrency).
        deadline: The running timeout, if the state has one.
        payment: The settling payment, once paid.
        shipment: How it shipped, once shipped.
        cancellation: Why it was cancelled, if it was.
        events: Events raised since the last :meth:`collect_events`.
        payment_method: How the buyer pays (``"online"`` unless chosen at checkout).
        holds: The open holds (:meth:`pause_clock`); while any is open the deadline is paused.
        paused: The paused deadline, while holds are open and the state has a timer.
        terms: How pricing sold it (sales mode, limit claims, stock timing, COD), if any
            promotion or campaign was involved.
        extensions: How many times the buyer extended the auto-confirm deadline.

    """

    id: str
    checkout_id: str
    buyer_id: str
    merchant_id: str
    lines: tuple[OrderLine, ...]
    shipping_fee: Money
    total: Money
    process: Process = attrs.field(repr=False)
    state: str
    placed_at: datetime
    version: int = 0
    deadline: Deadline | None = None
    payment: Payment | None = None
    shipment: ShipmentInfo | None = None
    cancellation: Cancellation | None = None
    events: tuple[DomainEvent, ...] = ()
    payment_method: str = "online"
    holds: tuple[str, ...] = ()
    paused: PausedClock | None = None
    terms: PricingTerms | None = None
    extensions: int = 0

    # ----------------------------------------------------------------- creation

    @classmethod
    def place(
        cls,
        *,
        order_id: str,
        buyer_id: str,
        merchant_id: str,
        lines: Sequence[OrderLine],
        now: datetime,
        policy: OrderPolicy,
        shipping_fee: Money | None = None,
        checkout_id: str | None = None,
        process: Process = STANDARD_ORDER_PROCESS,
        payment_method: str = "online",
        terms: PricingTerms | None = None,
    ) -> Order:
        """Place a new order in its process's initial state.

        Args:
            order_id: The new order's id.
            buyer_id: Who buys.
            merchant_id: Who sells; every line must be this merchant's.
            lines: At least one line, each SKU once, all in one currency.
            now: The time of placement.
            policy: Limits and the payment timeout.
            shipping_fee: The delivery fee (zero if omitted).
            checkout_id: The checkout it belongs to (the order id if omitted).
            process: The process it follows (the standard one by default).
            payment_method: How the buyer pays; the caller picks the matching ``process``.
            terms: How pricing sold it (see :class:`PricingTerms`); ``None`` for none.

        Returns:
            The order, at version 1, with an :class:`~ecommerce_core.events.OrderPlaced` event.

        Raises:
            InvalidInput: Empty or duplicate lines, too many units or lines, a bad id or time.
            CurrencyMismatch: Lines or the fee in different currencies.

        """
        return _place(
            cls,
            order_id,
            buyer_id,
            merchant_id,
            lines,
            now,
            policy,
            shipping_fee,
            checkout_id,
            process,
            payment_method,
            terms,
        )

    # ----------------------------------------------------------------- reading

    @property
    def currency(self) -> str:
        """The order's currency code."""
        return self.total.currency

    @property
    def sales_mode(self) -> str:
        """How it was sold: ``"standard"``, ``"flash_sale"``, ``"rush_purchase"``, ..."""
        return "standard" if self.terms is None else self.terms.sales_mode

    @property
    def is_final(self) -> bool:
        """Whether the order reached a terminal state."""
        return self.process.is_final(self.state)

    @property
    def quantities(self) -> dict[str, int]:
        """Units ordered per SKU."""
        return {line.sku: line.quantity for line in self.lines}

    def allowed_commands(self) -> tuple[str, ...]:
        """The process triggers available from the current state (guards not evaluated)."""
        return self.process.triggers(self.state)

    def ensure_can(self, command: str, actor: Actor, context: object = None) -> None:
        """Raise what ``command`` by ``actor`` would raise, without changing anything.

        Services call it before asking an outside party (a payment provider) to act.

        Raises:
            Forbidden: The actor may not run the command on this order.
            TransitionNotAllowed: The command has no transition from the current state.
            GuardRefused: A guard refuses it with this ``context``.

        """
        self._authorize(command, actor)
        self.process.fire(self.state, command, self, context, subject_id=self.id)

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    # ----------------------------------------------------------------- commands

    def pay(self, actor: Actor, *, amount: Money, reference: str, now: datetime) -> None:
        """Record the payment that settles the order.

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            CurrencyMismatch: Paid in another currency.
            TransitionNotAllowed: The order is not awaiting payment.
            GuardRefused: The amount is not the order total.

        """
        # The usual case (the order's buyer, a UTC time, a plain reference) passes each check
        # on one line; anything else takes the full check, which raises or passes it.
        if type(actor) is not Actor or actor.kind is not _BUYER or actor.id != self.buyer_id:
            self._authorize("pay", actor)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        if not (  # _plain_text(reference), inline
            type(reference) is str and 0 < len(reference) <= _MAX_TEXT and not reference.isspace()
        ):
            _text("reference", reference)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != self.total.currency:  # self.currency, without the property
            raise CurrencyMismatch(self.currency, amount.currency, "pay")
        dest = self.process.fire(self.state, "pay", self, amount, subject_id=self.id)
        self.payment = _payment(reference, amount, now)
        self.state = dest  # _move, inline on the four commands of every lifecycle
        self._set_timer(dest, now, None)
        self.version = version = self.version + 1  # _record, inline, the event slot by slot
        label = actor.label if type(actor) is Actor else str(actor)
        self.events = (*self.events, _paid(self.id, version, now, label, amount, reference))

    def ship(
        self,
        actor: Actor,
        *,
        carrier: str,
        tracking_number: str,
        now: datetime,
        policy: OrderPolicy,
    ) -> None:
        """Hand the order to a carrier; starts the auto-confirm deadline.

        Raises:
            Forbidden: Not the order's merchant.
            InvalidInput: Empty carrier or tracking number.
            TransitionNotAllowed: The order is not awaiting shipment.

        """
        if type(actor) is not Actor or actor.kind is not _MERCHANT or actor.id != self.merchant_id:
            self._authorize("ship", actor)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        if not (  # _plain_text of both, inline
            type(carrier) is str
            and 0 < len(carrier) <= _MAX_TEXT
            and not carrier.isspace()
            and type(tracking_number) is str
            and 0 < len(tracking_number) <= _MAX_TEXT
            and not tracking_number.isspace()
        ):
            _text("carrier", carrier)
            _text("tracking_number", tracking_number)
        dest = self.process.fire(self.state, "ship", self, subject_id=self.id)
        self.shipment = _shipment(carrier, tracking_number, now)
        self.state = dest
        self._set_timer(dest, now, policy)
        self.version = version = self.version + 1
        label = actor.label if type(actor) is Actor else str(actor)
        self.events = (
            *self.events,
            _shipped(self.id, version, now, label, carrier, tracking_number),
        )

    def deliver(self, actor: Actor, *, now: datetime, policy: OrderPolicy) -> None:
        """Record the carrier's report that the parcel was delivered.

        Raises:
            Forbidden: Not a carrier, the platform or the system.
            TransitionNotAllowed: The order is not shipped.

        """
        if type(actor) is not Actor or actor.kind is not _CARRIER:  # any carrier may report
            self._authorize("deliver", actor)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        dest = self.process.fire(self.state, "deliver", self, subject_id=self.id)
        self.state = dest
        self._set_timer(dest, now, policy)
        self.version = version = self.version + 1
        label = actor.label if type(actor) is Actor else str(actor)
        self.events = (*self.events, _delivered(self.id, version, now, label))

    def confirm_receipt(self, actor: Actor, *, now: datetime, policy: OrderPolicy) -> None:
        """The buyer confirms receipt: the order completes and the after-sales window opens.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: Not shipped or delivered (a second confirmation included).

        """
        if type(actor) is not Actor or actor.kind is not _BUYER or actor.id != self.buyer_id:
            self._authorize("confirm_receipt", actor)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        dest = self.process.fire(self.state, "confirm_receipt", self, subject_id=self.id)
        self.state = dest
        self._set_timer(dest, now, policy)
        self.version = version = self.version + 1
        label = actor.label if type(actor) is Actor else str(actor)
        self.events = (*self.events, _confirmed(self.id, version, now, label, False))  # noqa: FBT003  # the event's automatic field

    def cancel(self, actor: Actor, *, reason: str, now: datetime) -> None:
        """Cancel the order before shipment (buyer, merchant or platform), with a reason.

        Raises:
            Forbidden: A buyer or merchant who does not own the order, or a carrier or system.
            InvalidInput: An empty reason.
            TransitionNotAllowed: Already shipped, completed or cancelled.

        """
        self._authorize("cancel", actor)
        check_now(now)
        _text("reason", reason, 500)
        dest = self.process.fire(self.state, "cancel", self, subject_id=self.id)
        self._cancel(dest, reason, actor, now)

    def expire(self, now: datetime, policy: OrderPolicy, actor: Actor | None = None) -> str | None:
        """Fire the running deadline if ``now`` has reached it.

        Idempotent: an order with no deadline due is left untouched and ``None`` is returned,
        so calling it twice, or on an order a person just moved on, is harmless.

        Returns:
            The trigger that fired (``"expire_payment"``, ``"auto_confirm"``, ``"close"``),
            or ``None``.

        """
        actor = Actor.system() if actor is None else actor
        self._authorize("expire", actor)
        check_now(now)
        deadline = self.deadline
        if deadline is None or now < deadline.at:
            return None
        # The transition happened when the deadline fell due, however late the host asks:
        # the next clock starts from there, so a late scheduler never lengthens a window.
        at = deadline.at
        trigger = deadline.trigger
        dest = self.process.fire(self.state, trigger, self, subject_id=self.id)
        if trigger == "expire_payment":
            self._cancel(dest, "payment timeout", actor, at)
        elif trigger == "auto_confirm":
            self._move(dest, at, policy)
            self._record(ReceiptConfirmed, at, actor, automatic=True)
        else:
            self._move(dest, at, policy)
            self._record(OrderClosed, at, actor)
        return trigger

    def advance(
        self,
        trigger: str,
        actor: Actor,
        *,
        allowed: Collection[ActorKind],
        now: datetime,
        policy: OrderPolicy,
        event: type[DomainEvent],
        context: object = None,
        **fields: object,
    ) -> None:
        """Fire a trigger that a payment method or sales mode composed into the process.

        The standard commands have their own methods; an extension (COD's ``collect``, escrow's
        ``release``) fires its triggers here, saying who may fire them and which event records
        it. The same checks run: actor, ownership, transition, guards; a refusal changes nothing.

        Args:
            trigger: The process trigger.
            actor: Who fires it; a buyer or merchant must own the order.
            allowed: The kinds of actor that may fire it.
            now: When.
            policy: Starts the clock of the state it reaches, if that state has one.
            event: The event type that records it (a :class:`DomainEvent` subclass).
            context: Passed to the transition's guards.
            **fields: The event's own fields.

        Raises:
            Forbidden: The actor may not fire it.
            TransitionNotAllowed: No such transition from the current state.
            GuardRefused: A guard refused it.

        """
        self._authorize(trigger, actor, allowed)
        check_now(now)
        dest = self.process.fire(self.state, trigger, self, context, subject_id=self.id)
        self._move(dest, now, policy)
        self._record(event, now, actor, **fields)

    def pause_clock(self, hold: str, actor: Actor, *, now: datetime) -> bool:
        """Open a hold: the running deadline stops and keeps its remaining time.

        Holds are keyed; the deadline runs again only when the last one is lifted. Opening a
        hold that is already open changes nothing. A state entered while holds are open starts
        its clock paused.

        Args:
            hold: The hold's key, e.g. ``"refund:r-1"``.
            actor: The platform or the system.
            now: When.

        Returns:
            ``True`` if the hold was opened now, ``False`` if it was already open.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: An empty hold key.
            TransitionNotAllowed: The order is in a final state.

        """
        # The usual case (the platform or the system, a UTC time, a plain key) passes each
        # check on one line; anything else takes the full check, which raises or passes it.
        if type(actor) is not Actor or actor.kind not in _HOLDERS:
            self._authorize("hold", actor, _HOLDERS)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        if not (type(hold) is str and 0 < len(hold) <= _MAX_TEXT and not hold.isspace()):
            _text("hold", hold)
        holds = self.holds
        if hold in holds:
            return False
        if self.is_final:
            raise TransitionNotAllowed(self.id, "pause_clock", self.state, ())
        deadline = self.deadline
        if not holds and deadline is not None:
            left = max(deadline.at - now, _NO_TIME)
            self.paused = _paused_clock(deadline.trigger, left)
            self.deadline = None
        self.holds = (*holds, hold)
        paused = self.paused
        self.version = version = self.version + 1  # _record, inline, the event slot by slot
        label = actor.label if type(actor) is Actor else str(actor)
        if paused is None:
            event = _deadline_paused(self.id, version, now, label, hold, None, None)
        else:
            event = _deadline_paused(
                self.id, version, now, label, hold, paused.trigger, paused.remaining
            )
        self.events = (*self.events, event)
        return True

    def resume_clock(self, hold: str, actor: Actor, *, now: datetime) -> bool:
        """Lift a hold; when it is the last one, the paused deadline runs again from ``now``.

        Lifting a hold that is not open changes nothing, so a retry is harmless.

        Returns:
            ``True`` if the hold was lifted now, ``False`` if it was not open.

        Raises:
            Forbidden: Not the platform or the system.

        """
        if type(actor) is not Actor or actor.kind not in _HOLDERS:  # as in pause_clock
            self._authorize("hold", actor, _HOLDERS)
        if type(now) is not datetime or now.tzinfo is not UTC:
            check_now(now)
        holds = self.holds
        if hold not in holds:
            return False
        # the last hold (the usual case) leaves none; otherwise every other one stays
        self.holds = holds = () if len(holds) == 1 else tuple([h for h in holds if h != hold])
        paused = self.paused
        if not holds and paused is not None:
            self.deadline = _deadline(now + paused.remaining, paused.trigger)
            self.paused = None
        deadline = self.deadline
        resumed = None if holds or deadline is None else deadline.at
        self.version = version = self.version + 1  # _record, inline, the event slot by slot
        label = actor.label if type(actor) is Actor else str(actor)
        self.events = (*self.events, _deadline_resumed(self.id, version, now, label, hold, resumed))
        return True

    # ----------------------------------------------------------------- internals

    def _authorize(
        self, command: str, actor: Actor, kinds: Collection[ActorKind] | None = None
    ) -> None:
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in (_MAY[command] if kinds is None else kinds):
            raise Forbidden(str(actor), command, self.id, f"a {actor.kind} may not {command}")
        if actor.kind is ActorKind.BUYER and actor.id != self.buyer_id:
            raise Forbidden(str(actor), command, self.id, "it is another buyer's order")
        if actor.kind is ActorKind.MERCHANT and actor.id != self.merchant_id:
            raise Forbidden(str(actor), command, self.id, "it is another merchant's order")

    def _cancel(self, dest: str, reason: str, actor: Actor, now: datetime) -> None:
        self.cancellation = Cancellation(reason, str(actor), now)
        self._move(dest, now, None)
        self._record(OrderCancelled, now, actor, reason=reason, was_paid=self.payment is not None)

    def _move(self, dest: str, now: datetime, policy: OrderPolicy | None) -> None:
        self.state = dest
        self._set_timer(dest, now, policy)

    def _set_timer(self, state: str, now: datetime, policy: OrderPolicy | None) -> None:
        timer = _TIMERS.get(state)  # TIMERS, as a plain dict (one lookup cheaper)
        if timer is None:
            self.deadline = None
            self.paused = None
            return
        trigger, duration_name = timer
        if self.deadline is not None and self.deadline.trigger == trigger:
            return  # the same clock keeps running (shipped -> delivered)
        if self.paused is not None and self.paused.trigger == trigger:
            return  # the same clock stays paused
        if self.holds and policy is not None:  # a new clock starts paused while holds are open
            self.paused = PausedClock(trigger, getattr(policy, duration_name))
            self.deadline = None
            return
        if policy is None:  # pragma: no cover - every timed state is entered with a policy
            msg = f"entering {state!r} needs a policy to start its clock"
            raise AssertionError(msg)
        duration: timedelta = getattr(policy, duration_name)
        self.deadline = _deadline(now + duration, trigger)

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor | str, **fields: object
    ) -> None:
        self.version += 1
        label = actor.label if type(actor) is Actor else str(actor)  # label: built once
        event = _event(event_type, self.id, self.version, now, label, fields)  # slot by slot
        self.events = (*self.events, event)

    # ----------------------------------------------------------------- auto-confirm pause

    @property
    def auto_confirm_paused(self) -> bool:
        """Whether the auto-confirm deadline is held (read-only, derived from :attr:`holds`).

        An open after-sales request or a delivery problem holds the clock through
        :meth:`pause_clock` (keys ``aftersales:<request id>``, ``delivery:<shipment id>``), the
        same keyed holds a refund in flight uses; this says whether the clock held is the one
        that would confirm receipt for the buyer.
        """
        return self.paused is not None and self.paused.trigger == "auto_confirm"

    def extend_auto_confirm(self, actor: Actor, *, now: datetime, policy: OrderPolicy) -> None:
        """The buyer extends the auto-confirm deadline (延长收货) by the policy's fixed length.

        The policy allows a fixed number of extensions (``auto_confirm_extensions`` of
        ``auto_confirm_extension`` each). While the clock is held, the extension is added to the
        time it has left when it runs again.

        Raises:
            Forbidden: Not the order's buyer.
            InvalidInput: A naive time.
            TransitionNotAllowed: The order is not shipped or delivered (no auto-confirm clock).
            RuleViolation: Every extension is used, or the deadline has passed (receipt was
                confirmed for the buyer when it fell due, however late the scheduler runs).

        """
        self._authorize("confirm_receipt", actor)
        check_now(now)
        command = "extend_auto_confirm"
        clock = self.deadline if self.paused is None else self.paused
        if clock is None or clock.trigger != "auto_confirm":
            raise TransitionNotAllowed(self.id, command, self.state, ())
        if self.extensions >= policy.auto_confirm_extensions:
            reason = f"all {policy.auto_confirm_extensions} extensions are used"
            raise RuleViolation(self.id, command, self.state, reason)
        overdue = (
            self.paused.remaining <= timedelta(0)
            if self.paused is not None
            else self.deadline is not None and now >= self.deadline.at
        )
        if overdue:
            raise RuleViolation(self.id, command, self.state, "the deadline has passed")
        extension = policy.auto_confirm_extension
        if self.paused is not None:
            self.paused = PausedClock(self.paused.trigger, self.paused.remaining + extension)
        elif self.deadline is not None:  # pragma: no branch - one of the two is set
            self.deadline = Deadline(self.deadline.at + extension, self.deadline.trigger)
        self.extensions += 1
        at = None if self.deadline is None else self.deadline.at
        self._record(
            AutoConfirmExtended, now, actor, extension=extension, used=self.extensions, deadline=at
        )

    # ----------------------------------------------------------------- price after payment

    def lower_price(
        self,
        actor: Actor,
        *,
        promotion_id: str,
        reductions: Mapping[str, Money],
        now: datetime,
    ) -> bool:
        """Lower a paid order's price: each line by its reduction (a group buy's final tier).

        Each line records its reduction as a :class:`LineAdjustment` (stage
        ``"after_payment"``) and its discount grows by it, so a refund of the line later gives
        back what its units finally cost; the total falls by the sum. The money itself goes
        back through the payment (the caller refunds it). Repeating the same reductions under
        the same ``promotion_id`` changes nothing.

        Args:
            actor: The platform or the system.
            promotion_id: What lowered the price (a campaign's offer).
            reductions: Per line id, how much comes off the line (zero: none).
            now: When.

        Returns:
            ``True`` if lowered now, ``False`` if ``promotion_id`` already lowered it so.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: An empty promotion id; no positive reduction; an unknown line; a
                reduction that is not Money, is negative, or is more than the line still
                costs; a line whose discount is not itemised by adjustments (the reduction
                could not be told apart from it); other reductions under a promotion id that
                already lowered it.
            CurrencyMismatch: A reduction in another currency.
            RuleViolation: The order is not paid.
            TransitionNotAllowed: The order is in a final state.

        """
        command = "lower_price"
        self._authorize(command, actor, _HOLDERS)
        check_now(now)
        _text("promotion_id", promotion_id)
        if not isinstance(reductions, Mapping):
            raise InvalidInput("reductions", reductions, "must map line ids to Money")
        known = {line.line_id for line in self.lines}
        for line_id in reductions:
            if line_id not in known:
                raise InvalidInput("reductions", line_id, "no such line on the order")
        wanted: list[tuple[str, Money]] = []
        for line in self.lines:
            amount = reductions.get(line.line_id)
            if amount is None:
                continue
            if not isinstance(amount, Money) or amount.is_negative:
                raise InvalidInput("reductions", amount, "a reduction is Money, not negative")
            if amount.currency != self.currency:
                raise CurrencyMismatch(self.currency, amount.currency, command)
            if amount.is_positive:
                wanted.append((line.line_id, amount))
        if not wanted:
            raise InvalidInput("reductions", reductions, "nothing to take off")
        done = [
            (line.line_id, adjustment.amount)
            for line in self.lines
            for adjustment in line.adjustments
            if adjustment.promotion_id == promotion_id and adjustment.stage == _AFTER_PAYMENT
        ]
        if done:
            if done == wanted:
                return False
            raise InvalidInput(
                "reductions", reductions, f"{promotion_id!r} already lowered it by {done}"
            )
        by_id = {line.line_id: line for line in self.lines}
        for line_id, amount in wanted:
            line = by_id[line_id]
            if amount > line.amount:
                raise InvalidInput(
                    "reductions", amount, f"more than line {line_id} costs ({line.amount})"
                )
            itemised = sum((a.amount for a in line.adjustments), Money.zero(self.currency))
            if itemised != line.discount:  # the cut could not be told from the discount
                raise InvalidInput(
                    "reductions",
                    line_id,
                    f"line {line_id}'s discount is not itemised by adjustments, so a reduction"
                    " could not be recorded on it",
                )
        if self.payment is None:
            raise RuleViolation(self.id, command, self.state, "only a paid order is repriced")
        if self.is_final:
            raise TransitionNotAllowed(self.id, command, self.state, ())
        cuts = dict(wanted)
        self.lines = tuple(
            _lowered(line, promotion_id, cuts.get(line.line_id)) for line in self.lines
        )
        self.total = self.total - sum((amount for _, amount in wanted), Money.zero(self.currency))
        self._record(
            OrderRepriced,
            now,
            actor,
            promotion_id=promotion_id,
            reductions=tuple(wanted),
            total=self.total,
        )
        return True

    def record_payment(self, actor: Actor, *, amount: Money, reference: str, now: datetime) -> bool:
        """Record the payment a sales mode took outside :meth:`pay`, once it is complete.

        A group-buy deposit order is paid by a deposit and a balance (ledger postings, its own
        trigger moves it on): once the balance is in, this records what it paid as
        :attr:`payment`, so after-sales and :meth:`lower_price` see a paid order. No
        transition fires; :class:`~ecommerce_core.events.OrderPaid` is recorded. Recording
        the same payment again changes nothing. Only an order of the deposit group-buy
        process (``order.group_buy_deposit``) takes it: every other order is paid by
        :meth:`pay` (online, escrow, COD and credit alike).

        Args:
            actor: The platform or the system.
            amount: What was paid in all.
            reference: The mode's reference for the money (e.g. the balance's payment id).
            now: When.

        Returns:
            ``True`` if recorded now, ``False`` if this very payment was recorded already.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: An empty reference; an amount that is not positive Money.
            CurrencyMismatch: Paid in another currency.
            RuleViolation: The order is not of the deposit group-buy process; it is still
                pending payment, or was paid by another payment.
            TransitionNotAllowed: The order is in a final state.

        """
        command = "record_payment"
        self._authorize(command, actor, _HOLDERS)
        if self.process.name not in _PAID_OUTSIDE_PAY:
            raise RuleViolation(
                self.id,
                command,
                self.state,
                f"only an order of {' or '.join(sorted(_PAID_OUTSIDE_PAY))} records a payment "
                f"taken outside pay; this one follows {self.process.name}",
            )
        check_now(now)
        _text("reference", reference)
        if not isinstance(amount, Money) or not amount.is_positive:
            raise InvalidInput("amount", amount, "must be positive Money")
        if amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, amount.currency, command)
        paid = self.payment
        if paid is not None:
            if (paid.reference, paid.amount) == (reference, amount):
                return False
            raise RuleViolation(self.id, command, self.state, "already paid by another payment")
        if self.is_final:
            raise TransitionNotAllowed(self.id, command, self.state, ())
        if self.state == OrderState.PENDING_PAYMENT:
            raise RuleViolation(self.id, command, self.state, "the order is still unpaid")
        self.payment = _payment(reference, amount, now)
        self._record(OrderPaid, now, actor, amount=amount, payment_ref=reference)
        return True


# The processes whose orders are paid outside pay (Order.record_payment): a group-buy deposit
# order (ecommerce_core.campaigns.group_buy.GROUP_BUY_DEPOSIT_ORDER; named, not imported: the
# campaigns import this module).
_PAID_OUTSIDE_PAY: Final = frozenset({"order.group_buy_deposit"})
# Placing an order and moving it on build a deadline and an event each time, from values the
# command has checked: slot by slot (see ecommerce_core._slots), equal to calling the class.
_EVENT: Final = ("aggregate_id", "version", "occurred_at", "actor")
_paid: Final = _slots.builder(OrderPaid, (*_EVENT, "amount", "payment_ref"))
_shipped: Final = _slots.builder(OrderShipped, (*_EVENT, "carrier", "tracking_number"))
_delivered: Final = _slots.builder(OrderDelivered, _EVENT)
_confirmed: Final = _slots.builder(ReceiptConfirmed, (*_EVENT, "automatic"))
_payment: Final = _slots.builder(Payment, ("reference", "amount", "paid_at"))
_shipment: Final = _slots.builder(ShipmentInfo, ("carrier", "tracking_number", "shipped_at"))
_BUYER: Final = ActorKind.BUYER
_MERCHANT: Final = ActorKind.MERCHANT
_CARRIER: Final = ActorKind.CARRIER
# Mutable stand-ins of the frozen classes the hot paths build (see ecommerce_core._slots.twin):
# plain stores, then the class switch, a third of the cost of a slot setter per field.
_DEADLINE_TWIN: Final = _slots.stand_in(Deadline)
_PLACED_TWIN: Final = _slots.stand_in(OrderPlaced)
_LINE_TWIN: Final = _slots.stand_in(OrderLine)
_CART_ITEM_TWIN: Final = _slots.stand_in(CartItem)


_ORDER_FIELDS: Final = (
    "id",
    "checkout_id",
    "buyer_id",
    "merchant_id",
    "lines",
    "shipping_fee",
    "total",
    "process",
    "state",
    "placed_at",
    "version",
    "deadline",
    "payment",
    "shipment",
    "cancellation",
    "events",
    "payment_method",
    "holds",
    "paused",
    "terms",
    "extensions",
)
_build_order: Final = _slots.builder(Order, _ORDER_FIELDS)  # Order(**every field), by position


def _deadline(at: datetime, trigger: str) -> Deadline:
    """``Deadline(at, trigger)``."""
    deadline: Any = new(_DEADLINE_TWIN)
    deadline.at = at
    deadline.trigger = trigger
    deadline.__class__ = Deadline
    return deadline  # type: ignore[no-any-return]


def _order_placed(  # noqa: PLR0917  # one parameter per field of the event
    order_id: str,
    now: datetime,
    actor: str,
    checkout_id: str,
    buyer_id: str,
    merchant_id: str,
    total: Money,
    process: str,
    payment_method: str,
) -> OrderPlaced:
    """The :class:`OrderPlaced` event of an order placed at version 1."""
    event: Any = new(_PLACED_TWIN)
    event.aggregate_id = order_id
    event.version = 1
    event.occurred_at = now
    event.actor = actor
    event.checkout_id = checkout_id
    event.buyer_id = buyer_id
    event.merchant_id = merchant_id
    event.total = total
    event.process = process
    event.payment_method = payment_method
    event.__class__ = OrderPlaced
    return event  # type: ignore[no-any-return]


def _order_line(
    line_id: str, sku: str, quantity: int, unit_price: Money, category: str
) -> OrderLine:
    """``OrderLine(line_id, sku, quantity, unit_price, category=category)``, no discount.

    Checkout builds one per cart item: when every check the class runs passes at a glance
    (ids plain text, a whole positive quantity, a non-negative ``Money`` price), slot by slot;
    anything else through the class, which raises what it raises.
    """
    if (
        type(quantity) is int
        and quantity >= 1
        and type(unit_price) is Money
        and unit_price.minor >= 0
        and type(line_id) is str  # _plain_text(line_id) and _plain_text(sku), inline
        and 0 < len(line_id) <= _MAX_TEXT
        and not line_id.isspace()
        and type(sku) is str
        and 0 < len(sku) <= _MAX_TEXT
        and not sku.isspace()
    ):
        line: Any = new(_LINE_TWIN)
        line.line_id = line_id
        line.sku = sku
        line.quantity = quantity
        line.unit_price = unit_price
        line.discount = _ZEROS.get(unit_price.currency) or Money.zero(unit_price.currency)
        line.category = category
        line.adjustments = ()
        line.__class__ = OrderLine
        return line  # type: ignore[no-any-return]
    return OrderLine(line_id, sku, quantity, unit_price, category=category)


def _cart_item(sku: str, quantity: int) -> CartItem:
    """``CartItem(sku, quantity)``: slot by slot when both pass at a glance, else the class."""
    if (
        type(quantity) is int
        and quantity >= 1
        and type(sku) is str  # _plain_text(sku), inline
        and 0 < len(sku) <= _MAX_TEXT
        and not sku.isspace()
    ):
        item: Any = new(_CART_ITEM_TWIN)
        item.sku = sku
        item.quantity = quantity
        item.__class__ = CartItem
        return item  # type: ignore[no-any-return]
    return CartItem(sku, quantity)


def _place(  # noqa: PLR0915, PLR0917  # Order.place, its arguments by position, checks inline
    cls: type[Order],
    order_id: str,
    buyer_id: str,
    merchant_id: str,
    lines: Sequence[OrderLine],
    now: datetime,
    policy: OrderPolicy,
    shipping_fee: Money | None,
    checkout_id: str | None,
    process: Process,
    payment_method: str,
    terms: PricingTerms | None,
) -> Order:
    """:meth:`Order.place`, its arguments by position (no keyword parsing on checkout)."""
    if not (  # the usual case passes here (_plain_text inline); else the checks in order
        type(now) is datetime
        and now.tzinfo is UTC
        and type(order_id) is str
        and 0 < len(order_id) <= _MAX_TEXT
        and not order_id.isspace()
        and type(buyer_id) is str
        and 0 < len(buyer_id) <= _MAX_TEXT
        and not buyer_id.isspace()
        and type(merchant_id) is str
        and 0 < len(merchant_id) <= _MAX_TEXT
        and not merchant_id.isspace()
        and type(payment_method) is str
        and 0 < len(payment_method) <= _MAX_TEXT
        and not payment_method.isspace()
    ):
        check_now(now)
        _text("order_id", order_id)
        _text("buyer_id", buyer_id)
        _text("merchant_id", merchant_id)
        _text("payment_method", payment_method)
    lines = tuple(lines)
    if not lines:
        raise InvalidInput("lines", lines, "an order needs at least one line")
    if len(lines) > policy.max_lines:
        raise InvalidInput("lines", len(lines), f"more than {policy.max_lines} lines")
    currency = lines[0].unit_price.currency
    max_quantity = policy.max_line_quantity
    skus: set[str] = set()
    line_ids: set[str] = set()
    total_minor = 0
    for line in lines:
        if line.__class__ is not OrderLine:
            raise InvalidInput("lines", line, "each line must be an OrderLine")
        sku, line_id, quantity, unit_price = (
            line.sku,
            line.line_id,
            line.quantity,
            line.unit_price,
        )
        if sku in skus:
            raise InvalidInput("lines", sku, "the same SKU appears on two lines")
        if line_id in line_ids:
            raise InvalidInput("lines", line_id, "line ids must be unique")
        skus.add(sku)
        line_ids.add(line_id)
        if quantity > max_quantity:
            raise InvalidInput("quantity", quantity, f"more than {max_quantity} units")
        if unit_price.currency != currency:
            raise CurrencyMismatch(currency, unit_price.currency)
        total_minor += unit_price.minor * quantity - line.discount.minor  # type: ignore[union-attr]  # set in OrderLine.__attrs_post_init__
    if shipping_fee is None:
        fee = _ZEROS.get(currency) or Money.zero(currency)  # Money.zero, its cache first
    elif not isinstance(shipping_fee, Money) or shipping_fee.is_negative:
        raise InvalidInput("shipping_fee", shipping_fee, "must be Money, not negative")
    elif shipping_fee.currency != currency:
        raise CurrencyMismatch(currency, shipping_fee.currency)
    else:
        fee = shipping_fee
    if terms is not None and not isinstance(terms, PricingTerms):
        raise InvalidInput("terms", terms, "must be PricingTerms or None")
    total = _money(total_minor + fee.minor, currency)  # the currency is a line's: valid
    if checkout_id is None:
        checkout = order_id
    elif (  # _plain_text(checkout_id), inline
        type(checkout_id) is str and 0 < len(checkout_id) <= _MAX_TEXT and not checkout_id.isspace()
    ):
        checkout = checkout_id
    else:
        checkout = _text("checkout_id", checkout_id)
    initial = process.definition.initial
    timer = _TIMERS.get(initial)  # a new order has no holds: its clock starts running
    deadline = None if timer is None else _deadline(now + getattr(policy, timer[1]), timer[0])
    # The first event is built here rather than through _record: the order starts at
    # version 1 with it, which is what _record would leave.
    placed = _order_placed(
        order_id,
        now,
        f"buyer:{buyer_id}",
        checkout,
        buyer_id,
        merchant_id,
        total,
        process.definition.name,
        payment_method,
    )
    if cls is not Order:  # a subclass: its own constructor, its own defaults for the rest
        return cls(
            id=order_id,
            checkout_id=checkout,
            buyer_id=buyer_id,
            merchant_id=merchant_id,
            lines=lines,
            shipping_fee=fee,
            total=total,
            process=process,
            state=initial,
            placed_at=now,
            version=1,
            events=(placed,),
            deadline=deadline,
            payment_method=payment_method,
            terms=terms,
        )
    # Every field at once, slot by slot (see ecommerce_core._slots.builder): equal to the call
    # above, the other fields at their defaults.
    return _build_order(  # type: ignore[no-any-return]
        order_id,
        checkout,
        buyer_id,
        merchant_id,
        lines,
        fee,
        total,
        process,
        initial,
        now,
        1,
        deadline,
        None,
        None,
        None,
        (placed,),
        payment_method,
        (),
        None,
        terms,
        0,
    )


def split_by_merchant(
    *,
    checkout_id: str,
    buyer_id: str,
    lines_by_merchant: Mapping[str, Sequence[OrderLine]],
    order_ids: Sequence[str],
    now: datetime,
    policy: OrderPolicy,
    shipping_fees: Mapping[str, Money] | None = None,
    process: Process = STANDARD_ORDER_PROCESS,
    payment_method: str = "online",
    terms: Mapping[str, PricingTerms] | None = None,
) -> list[Order]:
    """Turn one cart checkout into one order per merchant, all sharing ``checkout_id``.

    Merchants are taken in sorted order so the split is deterministic; ``order_ids`` gives one
    id per merchant in that order. ``terms`` gives each merchant's order its pricing terms.

    Raises:
        InvalidInput: No merchants, a merchant with no lines, or too few order ids.

    """
    return _split(
        checkout_id,
        buyer_id,
        lines_by_merchant,
        order_ids,
        now,
        policy,
        shipping_fees,
        process,
        payment_method,
        terms,
    )


def _split(  # noqa: PLR0917  # split_by_merchant's arguments, by position (checkout)
    checkout_id: str,
    buyer_id: str,
    lines_by_merchant: Mapping[str, Sequence[OrderLine]],
    order_ids: Sequence[str],
    now: datetime,
    policy: OrderPolicy,
    shipping_fees: Mapping[str, Money] | None,
    process: Process,
    payment_method: str,
    terms: Mapping[str, PricingTerms] | None,
) -> list[Order]:
    """:func:`split_by_merchant`, its arguments by position."""
    merchants = sorted(lines_by_merchant) if len(lines_by_merchant) != 1 else [*lines_by_merchant]
    if not merchants:
        raise InvalidInput("cart", {}, "a checkout needs at least one line")
    if len(order_ids) < len(merchants):
        raise InvalidInput("order_ids", list(order_ids), f"need {len(merchants)} ids")
    orders: list[Order] = []
    for merchant, order_id in zip(merchants, order_ids, strict=False):
        orders.append(  # Order.place(order_id=order_id, ...), its arguments by position
            _place(
                Order,
                order_id,
                buyer_id,
                merchant,
                lines_by_merchant[merchant],
                now,
                policy,
                shipping_fees.get(merchant) if shipping_fees else None,
                checkout_id,
                process,
                payment_method,
                terms.get(merchant) if terms else None,
            )
        )
    return orders


@attrs.frozen
class LineAdjustment:
    """What one promotion took off one order line, in total for the line.

    Stored on :attr:`OrderLine.adjustments` when the order is placed, so a refund reverses
    exactly what each promotion gave (per promotion, per line), never a re-proration.

    Attributes:
        promotion_id: The promotion (or campaign offer) that gave it.
        stage: The pricing stage it was given in (``"base_price"``, ``"item"``, ``"order"``).
        amount: How much, positive, in the line's currency.
        code: The coupon code the buyer entered for it, if any.

    """

    promotion_id: str
    stage: str
    amount: Money
    code: str = ""

    def __attrs_post_init__(self) -> None:
        _text("promotion_id", self.promotion_id)
        _text("stage", self.stage)
        if not isinstance(self.amount, Money) or not self.amount.is_positive:
            raise InvalidInput("amount", self.amount, "an adjustment must be positive Money")


_AFTER_PAYMENT: Final = "after_payment"


def _lowered(line: OrderLine, promotion_id: str, amount: Money | None) -> OrderLine:
    """``line`` with ``amount`` more taken off, recorded as an adjustment (checked: itemised)."""
    if amount is None:
        return line
    assert line.discount is not None  # noqa: S101  # set in OrderLine.__attrs_post_init__
    adjustment = LineAdjustment(promotion_id, _AFTER_PAYMENT, amount)
    return attrs.evolve(
        line, discount=line.discount + amount, adjustments=(*line.adjustments, adjustment)
    )


def _check_adjustments(line: OrderLine) -> None:
    """Check a line's adjustments and derive its discount from them when it was omitted."""
    currency = line.unit_price.currency
    total = 0
    for adjustment in line.adjustments:
        if not isinstance(adjustment, LineAdjustment):
            raise InvalidInput("adjustments", adjustment, "each must be a LineAdjustment")
        if adjustment.amount.currency != currency:
            raise CurrencyMismatch(currency, adjustment.amount.currency)
        total += adjustment.amount.minor
    if line.discount is None:
        object.__setattr__(line, "discount", Money(total, currency))
    elif not isinstance(line.discount, Money) or line.discount.minor != total:
        raise InvalidInput(
            "discount", line.discount, f"the adjustments add up to {Money(total, currency)}"
        )


@attrs.frozen
class Entitlement:
    """Something granted after the order (post-order stage): a rebate or points.

    Pricing computes it; :attr:`PricingTerms.entitlements` keeps it on the order, for the
    rebate and loyalty processes to grant once the order completes (or claw back).

    Attributes:
        promotion_id: The promotion that grants it.
        kind: ``"rebate"`` or ``"points"``.
        amount: The cashback, for a rebate.
        points: The points, for points.
        code: The coupon code, when it came with one.
        funded_by: Who pays a rebate: ``"platform"`` (its rebate budget) or ``"merchant"``
            (the order's merchant, from its proceeds).

    """

    promotion_id: str
    kind: str
    amount: Money | None = None
    points: int = 0
    code: str = ""
    funded_by: str = "platform"


@attrs.frozen
class PricingTerms:
    """How pricing sold an order: what the payment, cancellation and expiry paths must honour.

    Attributes:
        sales_mode: ``"standard"``, ``"flash_sale"``, ``"rush_purchase"``, ... Payment
            methods read it (no cash on delivery for a flash sale).
        stock_timing: When the order takes its stock: on order (reserved at placement) or on
            payment (rush purchase: unpaid orders hold nothing).
        claims: The limit claims the order holds in the promotion ledger: those marked
            ``at_payment`` are taken when it is paid, the others when it is placed.
        promotion_ids: The promotions that gave it something.
        offer_ends_at: When the earliest of those promotions ends; a payment re-check
            compares against it.
        cod_allowed: Whether cash on delivery may be offered for it.
        entitlements: Rebates and points its promotions grant after the order.

    """

    sales_mode: str = "standard"
    stock_timing: StockTiming = attrs.field(default=StockTiming.ON_ORDER, converter=StockTiming)
    claims: tuple[LimitClaim, ...] = attrs.field(default=(), converter=tuple[LimitClaim, ...])
    promotion_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple[str, ...])
    offer_ends_at: datetime | None = None
    cod_allowed: bool = True
    entitlements: tuple[Entitlement, ...] = attrs.field(
        default=(), converter=tuple[Entitlement, ...]
    )

    @property
    def order_claims(self) -> tuple[LimitClaim, ...]:
        """The claims reserved when the order is placed."""
        return tuple(c for c in self.claims if not c.at_payment)

    @property
    def payment_claims(self) -> tuple[LimitClaim, ...]:
        """The claims taken when the order is paid."""
        return tuple(c for c in self.claims if c.at_payment)


# pause_clock / resume_clock (the hold every payment through a provider opens and lifts) build
# their events and the paused clock slot by slot too (see ecommerce_core._slots.builder).
_deadline_paused: Final = _slots.builder(DeadlinePaused, (*_EVENT, "hold", "trigger", "remaining"))
_deadline_resumed: Final = _slots.builder(DeadlineResumed, (*_EVENT, "hold", "deadline"))
_paused_clock: Final = _slots.builder(PausedClock, ("trigger", "remaining"))
_NO_TIME: Final = timedelta(0)
