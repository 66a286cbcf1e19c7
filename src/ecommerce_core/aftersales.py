"""After-sales: refund only, return and refund, exchange; rejection, arbitration, windows.

An :class:`OrderAfterSales` holds every :class:`AfterSalesRequest` of one order. It is the
consistency boundary for what they claim: units returned never exceed units delivered, units
refunded never exceed units bought, and money refunded on a line never exceeds what the buyer
paid for it, however many requests come, in whatever order, concurrently (one version per
order serialises them).

Each request follows the process of its kind:

- **refund only** (仅退款, :data:`REFUND_ONLY_PROCESS`): for goods not received (or not wanted
  before they arrive), or for received goods the buyer keeps, with the merchant's consent:
  ``requested ─approve→ refund_approved ─complete_refund→ refunded``;
- **return and refund** (退货退款, :data:`RETURN_AND_REFUND_PROCESS`): ``requested ─approve→
  awaiting_return ─ship_back→ returning ─receive→ received ─accept_return→ refund_approved
  ─complete_refund→ refunded``;
- **exchange** (换货, :data:`EXCHANGE_PROCESS`): as a return, then ``received ─accept_return→
  replacing ─send_replacement→ replacement_shipped ─complete_exchange→ exchanged``.

The merchant may ``reject`` with a reason (at the request, or after inspecting the returned
goods); the buyer may then ``dispute`` it and the platform rules (``rule_for_buyer`` /
``rule_for_merchant``), or the rejection is ``close`` d. The buyer may ``withdraw`` a request
before the goods go back.

**Amounts** come from the lines: a line's amount is already net of its allocated discount, and
the refund for ``q`` of its ``Q`` units is ``q`` consecutive shares of
``line.amount.allocate([1] * Q)``, taken in the order refunds are approved, so every unit is
refunded at most once and all ``Q`` add up to the line amount exactly; nothing is re-prorated.
The shipping fee is refunded once, per :class:`AfterSalesPolicy`, with the refund that leaves
the whole order refunded.

**The money side** is not done here: an approved refund raises :class:`RefundApproved` and the
request waits in ``refund_approved`` until the payment side reports it done
(:meth:`OrderAfterSales.complete_refund`); :class:`RefundInstruction` is what it is told.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.delivery import FulfilmentStatus
from ecommerce_core.errors import (
    AlreadyRefunded,
    DefinitionError,
    Forbidden,
    InvalidInput,
    NotFound,
    QuantityExceeded,
    RuleViolation,
    WindowClosed,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState, check_now
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "AFTER_SALES_GUARDS",
    "EXCHANGE",
    "EXCHANGE_PROCESS",
    "MERCHANT_FAULT_REASONS",
    "REFUND_ONLY",
    "REFUND_ONLY_PROCESS",
    "RETURN_AND_REFUND",
    "RETURN_AND_REFUND_PROCESS",
    "AfterSalesItem",
    "AfterSalesKind",
    "AfterSalesPolicy",
    "AfterSalesProgressed",
    "AfterSalesReason",
    "AfterSalesRequest",
    "AfterSalesRequested",
    "AfterSalesState",
    "Decision",
    "FreightRefund",
    "OrderAfterSales",
    "RefundApproved",
    "RefundCompleted",
    "RefundInstruction",
    "RefundLine",
    "RefundPlan",
    "ReturnParcel",
    "after_sales_id",
    "unit_shares",
]


def _text(field: str, value: object, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidInput(field, value[:20] + "...", f"longer than {max_length} characters")
    return value


def _check_text(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    _text(attribute.name, value)


def _check_units(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise InvalidInput(attribute.name, value, "must be a whole number of at least 1")


# =========================================================================== vocabulary


class AfterSalesKind(enum.StrEnum):
    """What the buyer asks for."""

    REFUND_ONLY = "refund_only"  # 仅退款
    RETURN_AND_REFUND = "return_and_refund"  # 退货退款
    EXCHANGE = "exchange"  # 换货


class AfterSalesReason(enum.StrEnum):
    """Why the buyer asks."""

    NO_REASON = "no_reason"  # 七天无理由 (or, before delivery, 不想要了)
    NOT_RECEIVED = "not_received"  # 未收到货
    DEFECTIVE = "defective"  # 质量问题
    NOT_AS_DESCRIBED = "not_as_described"  # 与描述不符 / 发错货
    DAMAGED = "damaged"  # 破损
    OTHER = "other"  # 协商一致: anything the merchant agrees to


MERCHANT_FAULT_REASONS: Final = frozenset(
    {
        AfterSalesReason.NOT_RECEIVED,
        AfterSalesReason.DEFECTIVE,
        AfterSalesReason.NOT_AS_DESCRIBED,
        AfterSalesReason.DAMAGED,
    }
)
"""Reasons that put the fault with the merchant (or its carrier), not the buyer."""

# Refund-only requests for these reasons are about units the buyer has not received.
_UNRECEIVED_REASONS: Final = frozenset({AfterSalesReason.NOT_RECEIVED, AfterSalesReason.NO_REASON})


class FreightRefund(enum.StrEnum):
    """When the order's shipping fee goes back with the refund that leaves it fully refunded."""

    NEVER = "never"
    MERCHANT_FAULT = "merchant_fault"  # if the merchant is at fault, or nothing ever shipped
    ALWAYS = "always"


@attrs.frozen
class AfterSalesPolicy:
    """The after-sales rules a platform chooses, as data.

    Defaults follow the Consumer Rights Protection Law §25 (消费者权益保护法): seven days to
    return without a reason from receipt, except made-to-order, perishable, opened digital
    goods and newspapers.

    Attributes:
        no_reason_window: How long after delivery goods may be returned without a reason.
        no_reason_excluded_categories: Product categories (``OrderLine.category``) that may
            not be returned without a reason.
        freight_refund: When the shipping fee is refunded.

    Raises:
        DefinitionError: A window that is not positive, or a blank category.

    """

    no_reason_window: timedelta = timedelta(days=7)
    no_reason_excluded_categories: frozenset[str] = attrs.field(
        default=frozenset({"custom-made", "fresh", "digital", "newspaper"}), converter=frozenset
    )
    freight_refund: FreightRefund = attrs.field(
        default=FreightRefund.MERCHANT_FAULT, converter=FreightRefund
    )

    def __attrs_post_init__(self) -> None:
        problems = []
        if not isinstance(self.no_reason_window, timedelta) or self.no_reason_window <= timedelta(
            0
        ):
            problems.append(f"no_reason_window must be positive, got {self.no_reason_window}")
        problems.extend(
            f"excluded category {category!r} must be a non-empty string"
            for category in sorted(self.no_reason_excluded_categories, key=repr)
            if not isinstance(category, str) or not category.strip()
        )
        if problems:
            raise DefinitionError("AfterSalesPolicy", problems)


# =========================================================================== processes


class AfterSalesState:
    """Names of the after-sales request states (plain strings, as stored)."""

    REQUESTED: Final = "requested"
    REJECTED: Final = "rejected"
    IN_ARBITRATION: Final = "in_arbitration"
    AWAITING_RETURN: Final = "awaiting_return"
    RETURNING: Final = "returning"
    RECEIVED: Final = "received"
    REFUND_APPROVED: Final = "refund_approved"
    REFUNDED: Final = "refunded"
    REPLACING: Final = "replacing"
    REPLACEMENT_SHIPPED: Final = "replacement_shipped"
    EXCHANGED: Final = "exchanged"
    WITHDRAWN: Final = "withdrawn"
    CLOSED: Final = "closed"


def _goods_returned(request: AfterSalesRequest, _: object) -> str | None:
    if request.return_received_at is None:
        return "the merchant has not received the goods back"
    return None


def _goods_not_returned(request: AfterSalesRequest, _: object) -> str | None:
    if request.return_received_at is not None:
        return "the merchant already received the goods back"
    return None


AFTER_SALES_GUARDS: Final = MappingProxyType(
    {"goods_returned": _goods_returned, "goods_not_returned": _goods_not_returned}
)
"""The guards the after-sales processes name."""

_A = AfterSalesState
_MAX_DESCRIPTION: Final = 1000
REFUND_ONLY: Final = ProcessDefinition(
    name="aftersales.refund_only",
    initial=_A.REQUESTED,
    states=(
        State(_A.REQUESTED, description="申请中 waiting for the merchant"),
        State(_A.REJECTED, description="已拒绝 the merchant refused; the buyer may dispute"),
        State(_A.IN_ARBITRATION, description="平台介入 the platform decides"),
        State(_A.REFUND_APPROVED, description="退款中 approved; the money is on its way"),
        State(_A.REFUNDED, final=True, description="已退款 refunded"),
        State(_A.WITHDRAWN, final=True, description="已撤销 withdrawn by the buyer"),
        State(_A.CLOSED, final=True, description="已关闭 closed without a refund"),
    ),
    transitions=(
        Transition("approve", _A.REQUESTED, _A.REFUND_APPROVED),
        Transition("reject", _A.REQUESTED, _A.REJECTED),
        Transition("withdraw", _A.REQUESTED, _A.WITHDRAWN),
        Transition("dispute", _A.REJECTED, _A.IN_ARBITRATION),
        Transition("close", _A.REJECTED, _A.CLOSED),
        Transition("rule_for_buyer", _A.IN_ARBITRATION, _A.REFUND_APPROVED),
        Transition("rule_for_merchant", _A.IN_ARBITRATION, _A.CLOSED),
        Transition("complete_refund", _A.REFUND_APPROVED, _A.REFUNDED),
    ),
)
"""Refund only (仅退款)."""

RETURN_AND_REFUND: Final = REFUND_ONLY.extend(
    "aftersales.return_and_refund",
    states=(
        State(_A.AWAITING_RETURN, description="待退货 approved; the buyer sends the goods back"),
        State(_A.RETURNING, description="退货中 the goods are on their way back"),
        State(_A.RECEIVED, description="待验货 the merchant has them and inspects them"),
    ),
    remove_transitions=(("approve", _A.REQUESTED), ("rule_for_buyer", _A.IN_ARBITRATION)),
    transitions=(
        Transition("approve", _A.REQUESTED, _A.AWAITING_RETURN),
        Transition("withdraw", _A.AWAITING_RETURN, _A.WITHDRAWN),
        Transition("ship_back", _A.AWAITING_RETURN, _A.RETURNING),
        Transition("receive", _A.RETURNING, _A.RECEIVED),
        Transition("accept_return", _A.RECEIVED, _A.REFUND_APPROVED),
        Transition("reject", _A.RECEIVED, _A.REJECTED),
        Transition(
            "rule_for_buyer", _A.IN_ARBITRATION, _A.REFUND_APPROVED, guards="goods_returned"
        ),
        Transition(
            "rule_for_buyer", _A.IN_ARBITRATION, _A.AWAITING_RETURN, guards="goods_not_returned"
        ),
    ),
)
"""Return and refund (退货退款)."""

EXCHANGE: Final = RETURN_AND_REFUND.extend(
    "aftersales.exchange",
    remove_states=(_A.REFUND_APPROVED, _A.REFUNDED),
    states=(
        State(_A.REPLACING, description="待换货 accepted; the merchant sends a replacement"),
        State(_A.REPLACEMENT_SHIPPED, description="换货已发出 the replacement is on its way"),
        State(_A.EXCHANGED, final=True, description="已换货 the buyer has the replacement"),
    ),
    transitions=(
        Transition("accept_return", _A.RECEIVED, _A.REPLACING),
        Transition("rule_for_buyer", _A.IN_ARBITRATION, _A.REPLACING, guards="goods_returned"),
        Transition("send_replacement", _A.REPLACING, _A.REPLACEMENT_SHIPPED),
        Transition("complete_exchange", _A.REPLACEMENT_SHIPPED, _A.EXCHANGED),
    ),
)
"""Exchange (换货)."""

REFUND_ONLY_PROCESS: Final = Process(REFUND_ONLY, AFTER_SALES_GUARDS)
""":data:`REFUND_ONLY`, validated and compiled."""
RETURN_AND_REFUND_PROCESS: Final = Process(RETURN_AND_REFUND, AFTER_SALES_GUARDS)
""":data:`RETURN_AND_REFUND`, validated and compiled."""
EXCHANGE_PROCESS: Final = Process(EXCHANGE, AFTER_SALES_GUARDS)
""":data:`EXCHANGE`, validated and compiled."""

_PROCESS_FOR: Final[Mapping[AfterSalesKind, Process]] = MappingProxyType(
    {
        AfterSalesKind.REFUND_ONLY: REFUND_ONLY_PROCESS,
        AfterSalesKind.RETURN_AND_REFUND: RETURN_AND_REFUND_PROCESS,
        AfterSalesKind.EXCHANGE: EXCHANGE_PROCESS,
    }
)

# A request in one of these waits on someone: the order's auto-confirm clock waits with it.
OPEN_STATES: Final = frozenset(
    {
        _A.REQUESTED,
        _A.IN_ARBITRATION,
        _A.AWAITING_RETURN,
        _A.RETURNING,
        _A.RECEIVED,
        _A.REFUND_APPROVED,
        _A.REPLACING,
        _A.REPLACEMENT_SHIPPED,
    }
)
# A request in one of these no longer claims its units.
_RELEASED_STATES: Final = frozenset({_A.WITHDRAWN, _A.CLOSED, _A.EXCHANGED})

_MAY: Final[Mapping[str, frozenset[ActorKind]]] = MappingProxyType(
    {
        "request": frozenset({ActorKind.BUYER}),
        "withdraw": frozenset({ActorKind.BUYER}),
        "dispute": frozenset({ActorKind.BUYER}),
        "ship_back": frozenset({ActorKind.BUYER}),
        "close": frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "approve": frozenset({ActorKind.MERCHANT}),
        "reject": frozenset({ActorKind.MERCHANT}),
        "receive": frozenset({ActorKind.MERCHANT}),
        "accept_return": frozenset({ActorKind.MERCHANT}),
        "send_replacement": frozenset({ActorKind.MERCHANT}),
        "rule_for_buyer": frozenset({ActorKind.PLATFORM}),
        "rule_for_merchant": frozenset({ActorKind.PLATFORM}),
        "complete_refund": frozenset({ActorKind.PLATFORM, ActorKind.SYSTEM}),
        "complete_exchange": frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM}),
    }
)


# =========================================================================== values


@attrs.frozen
class AfterSalesItem:
    """Units of one order line a request is about.

    Attributes:
        line_id: The order line.
        quantity: Units (at least 1).

    """

    line_id: str = attrs.field(validator=_check_text)
    quantity: int = attrs.field(validator=_check_units)


@attrs.frozen
class RefundLine:
    """What one line gives back in a refund.

    Attributes:
        line_id: The order line.
        quantity: Units refunded.
        amount: Their share of the line amount (discount already taken off).

    """

    line_id: str
    quantity: int
    amount: Money


@attrs.frozen
class RefundPlan:
    """The money an approved request gives back, fixed when it was approved.

    Attributes:
        lines: Per line, the units and their amount.
        freight: The part of the shipping fee given back (zero unless the policy says).
        total: The lines and the freight together.

    """

    lines: tuple[RefundLine, ...]
    freight: Money
    total: Money


@attrs.frozen
class ReturnParcel:
    """The parcel the buyer sends back.

    Attributes:
        carrier: The carrier's id.
        tracking_number: Its tracking number.
        shipped_at: When the buyer sent it.

    """

    carrier: str
    tracking_number: str
    shipped_at: datetime


@attrs.frozen
class Decision:
    """A decision someone made on a request: a rejection, a dispute, a ruling.

    Attributes:
        by: Who, as ``"kind:id"``.
        at: When.
        reason: Why, in their words.

    """

    by: str
    at: datetime
    reason: str


def unit_shares(line: OrderLine) -> list[Money]:
    """The line amount split over its units by :meth:`Money.allocate` (largest remainder).

    Refunds take these shares in order, so refunding every unit gives back the line amount
    exactly, and no unit is refunded twice.

    Example:
        >>> from ecommerce_core.money import Money
        >>> cny = lambda amount: Money.of(amount, "CNY")
        >>> line = OrderLine("1", "tea", 3, cny("10.00"), discount=cny("0.01"))
        >>> [str(share) for share in unit_shares(line)]
        ['10.00 CNY', '10.00 CNY', '9.99 CNY']

    """
    return line.amount.allocate([1] * line.quantity)


@attrs.frozen
class AfterSalesRequest:
    """One after-sales request: what is asked, for which units, and how far it has got.

    Requests are values inside :class:`OrderAfterSales`; each command replaces one.

    Attributes:
        request_id: Its id.
        kind: Refund only, return and refund, or exchange.
        reason: Why the buyer asks.
        items: The lines and units it is about.
        state: Its one stored state (see :attr:`process`).
        requested_at: When the buyer asked.
        description: The buyer's own words.
        rejection: The merchant's rejection, if any (the latest).
        dispute: The buyer's dispute of it, if any.
        ruling: The platform's ruling, if any.
        return_parcel: The parcel the buyer sent back, for returns and exchanges.
        return_received_at: When the merchant got the goods back.
        refund: The money it gives back, once approved.
        refund_reference: The payment side's reference for the refund, once done.
        restock: Units to put back in stock (returned and resalable, or never shipped).
        replacement_shipment_id: The replacement's shipment, for an exchange.
        updated_at: When it last changed.

    """

    request_id: str
    kind: AfterSalesKind
    reason: AfterSalesReason
    items: tuple[AfterSalesItem, ...]
    state: str
    requested_at: datetime
    description: str = ""
    rejection: Decision | None = None
    dispute: Decision | None = None
    ruling: Decision | None = None
    return_parcel: ReturnParcel | None = None
    return_received_at: datetime | None = None
    refund: RefundPlan | None = None
    refund_reference: str | None = None
    restock: tuple[AfterSalesItem, ...] = ()
    replacement_shipment_id: str | None = None
    updated_at: datetime | None = None

    @property
    def process(self) -> Process:
        """The process of its kind."""
        return _PROCESS_FOR[self.kind]

    @property
    def is_open(self) -> bool:
        """Whether it waits on someone (and so holds the order's auto-confirm clock)."""
        return self.state in OPEN_STATES

    @property
    def is_final(self) -> bool:
        """Whether it reached a terminal state."""
        return self.process.is_final(self.state)

    @property
    def holds_claim(self) -> bool:
        """Whether its units still count as claimed (not withdrawn, closed or exchanged)."""
        return self.state not in _RELEASED_STATES

    @property
    def bears_refund(self) -> bool:
        """Whether it asks for money back (refund only, return and refund)."""
        return self.kind is not AfterSalesKind.EXCHANGE

    @property
    def about_received_goods(self) -> bool:
        """Whether it is about units the buyer has (else units never received)."""
        return not (self.kind is AfterSalesKind.REFUND_ONLY and self.reason in _UNRECEIVED_REASONS)

    def quantity(self, line_id: str) -> int:
        """Units of ``line_id`` it is about (0 if none)."""
        return sum(item.quantity for item in self.items if item.line_id == line_id)


@attrs.frozen
class RefundInstruction:
    """What the payment side is asked to refund for one approved request.

    Attributes:
        order_id: The order.
        request_id: The after-sales request.
        idempotency_key: The same for every retry of this refund: never refund it twice.
        lines: Per line, units and amounts.
        freight: The part of the shipping fee.
        total: Everything together.

    """

    order_id: str
    request_id: str
    idempotency_key: str
    lines: tuple[RefundLine, ...]
    freight: Money
    total: Money

    @classmethod
    def for_request(cls, order_id: str, request: AfterSalesRequest) -> RefundInstruction:
        """The instruction for an approved request.

        Raises:
            RuleViolation: The request has no approved refund.

        """
        if request.refund is None:
            raise RuleViolation(
                request.request_id, "refund", request.state, "no refund has been approved"
            )
        return cls(
            order_id=order_id,
            request_id=request.request_id,
            idempotency_key=f"{order_id}:after-sales:{request.request_id}:refund",
            lines=request.refund.lines,
            freight=request.refund.freight,
            total=request.refund.total,
        )


# =========================================================================== events


@attrs.frozen(kw_only=True)
class AfterSalesRequested(DomainEvent):
    """The buyer asked for after-sales.

    Attributes:
        order_id: The order.
        request_id: The request.
        kind: What is asked for.
        reason: Why.
        items: For which units.

    """

    order_id: str
    request_id: str
    kind: AfterSalesKind
    reason: AfterSalesReason
    items: tuple[AfterSalesItem, ...]


@attrs.frozen(kw_only=True)
class AfterSalesProgressed(DomainEvent):
    """An after-sales request moved on.

    Attributes:
        order_id: The order.
        request_id: The request.
        command: What moved it (``"approve"``, ``"reject"``, ``"ship_back"``, ...).
        from_state: Where it was.
        state: Where it is now.
        note: The reason or remark given with the command, if any.
        restock: Units that go back into stock with this step.

    """

    order_id: str
    request_id: str
    command: str
    from_state: str
    state: str
    note: str = ""
    restock: tuple[AfterSalesItem, ...] = ()


@attrs.frozen(kw_only=True)
class RefundApproved(AfterSalesProgressed):
    """A refund was approved: the payment side should now give the money back.

    Attributes:
        lines: Per line, units and amounts.
        freight: The part of the shipping fee.
        total: Everything together.
        order_fully_refunded: Whether every unit of the order is now refunded.

    """

    lines: tuple[RefundLine, ...]
    freight: Money
    total: Money
    order_fully_refunded: bool


@attrs.frozen(kw_only=True)
class RefundCompleted(AfterSalesProgressed):
    """The payment side reported the refund done.

    Attributes:
        reference: Its reference for the refund.
        total: The amount refunded.

    """

    reference: str
    total: Money


# =========================================================================== aggregate


def after_sales_id(order_id: str) -> str:
    """The id of the :class:`OrderAfterSales` of an order."""
    return f"{order_id}/after-sales"


@attrs.define(eq=False)
class OrderAfterSales:
    """Every after-sales request of one order, and what they claim and refund.

    Open it with :meth:`open` for a paid order; run commands through its methods. A refused
    command changes nothing; an accepted one raises the version by one and appends one event.

    Attributes:
        id: Its id (:func:`after_sales_id` of the order).
        order_id: The order.
        buyer_id: The order's buyer.
        merchant_id: The order's merchant.
        lines: The order's lines, as bought (amounts net of discounts).
        shipping_fee: The order's shipping fee.
        requests: Every request, oldest first.
        version: Raised by one by every accepted command.
        events: Events raised since the last :meth:`collect_events`.

    """

    id: str
    order_id: str
    buyer_id: str
    merchant_id: str
    lines: tuple[OrderLine, ...]
    shipping_fee: Money
    requests: tuple[AfterSalesRequest, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def open(cls, order: Order) -> OrderAfterSales:
        """An empty after-sales record for ``order``, at version 0."""
        return cls(
            id=after_sales_id(order.id),
            order_id=order.id,
            buyer_id=order.buyer_id,
            merchant_id=order.merchant_id,
            lines=order.lines,
            shipping_fee=order.shipping_fee,
        )

    # ----------------------------------------------------------------- reading

    @property
    def currency(self) -> str:
        """The order's currency."""
        return self.shipping_fee.currency

    def request(self, request_id: str) -> AfterSalesRequest:
        """The request with this id.

        Raises:
            NotFound: No such request on this order.

        """
        for each in self.requests:
            if each.request_id == request_id:
                return each
        raise NotFound("after-sales request", request_id)

    @property
    def open_requests(self) -> tuple[AfterSalesRequest, ...]:
        """The requests that wait on someone."""
        return tuple(each for each in self.requests if each.is_open)

    @property
    def refunds_due(self) -> tuple[AfterSalesRequest, ...]:
        """The requests whose refund is approved and not yet reported done."""
        return tuple(each for each in self.requests if each.state == _A.REFUND_APPROVED)

    def refunded_units(self, line_id: str) -> int:
        """Units of the line with an approved refund (done or on its way)."""
        return sum(
            item.quantity
            for each in self.requests
            if each.refund is not None
            for item in each.refund.lines
            if item.line_id == line_id
        )

    def refunded_amount(self, line_id: str) -> Money:
        """Money approved back on the line (done or on its way)."""
        return sum(
            (
                item.amount
                for each in self.requests
                if each.refund is not None
                for item in each.refund.lines
                if item.line_id == line_id
            ),
            Money.zero(self.currency),
        )

    @property
    def refunded_total(self) -> Money:
        """Money approved back on the whole order, freight included."""
        return sum(
            (each.refund.total for each in self.requests if each.refund is not None),
            Money.zero(self.currency),
        )

    @property
    def freight_refunded(self) -> bool:
        """Whether the shipping fee was given back."""
        return any(
            each.refund is not None and each.refund.freight.is_positive for each in self.requests
        )

    def claimed_units(self, line_id: str, *, received: bool) -> int:
        """Units of the line claimed by requests about received (or never received) goods."""
        return sum(
            each.quantity(line_id)
            for each in self.requests
            if each.holds_claim and each.about_received_goods is received
        )

    def returned_units(self, line_id: str) -> int:
        """Units of the line claimed for return (returns and exchanges not withdrawn/closed)."""
        return sum(
            each.quantity(line_id)
            for each in self.requests
            if each.kind is not AfterSalesKind.REFUND_ONLY
            and each.state not in {_A.WITHDRAWN, _A.CLOSED}
        )

    @property
    def withdrawn(self) -> dict[str, int]:
        """Per line, units refunded before they were received: the merchant owes them no more."""
        withdrawn: dict[str, int] = {}
        for each in self.requests:
            if each.refund is not None and not each.about_received_goods:
                for item in each.items:
                    withdrawn[item.line_id] = withdrawn.get(item.line_id, 0) + item.quantity
        return withdrawn

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    def ensure_can(self, command: str, actor: Actor, request_id: str) -> None:
        """Raise what ``command`` on the request would raise for ``actor``, changing nothing.

        Services call it before acting on another port (packing a replacement).

        Raises:
            Forbidden: The actor may not run it.
            NotFound: No such request.
            TransitionNotAllowed: Not from the request's state.

        """
        self._authorize(command, actor)
        current = self.request(request_id)
        current.process.fire(current.state, command, current, None, subject_id=request_id)

    # ----------------------------------------------------------------- asking

    def request_after_sales(
        self,
        actor: Actor,
        *,
        request_id: str,
        kind: AfterSalesKind | str,
        reason: AfterSalesReason | str,
        items: Sequence[AfterSalesItem],
        order: Order,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
        description: str = "",
    ) -> AfterSalesRequest:
        """The buyer asks for a refund, a return or an exchange of some units.

        Args:
            actor: The order's buyer.
            request_id: A new id for the request.
            kind: Refund only, return and refund, or exchange.
            reason: Why. Refund only for ``not_received`` or ``no_reason`` is about units not
                received; every other request is about units the buyer has.
            items: The lines and units.
            order: The order as it is now (its state bounds the after-sales window).
            fulfilment: Where the order's units are (from its shipments).
            now: When the buyer asks.
            policy: The after-sales rules.
            description: The buyer's own words.

        Returns:
            The new request, in its process's initial state.

        Raises:
            Forbidden: Not the order's buyer.
            InvalidInput: A bad id, kind, reason or item, a line twice, a reason that does
                not go with the kind (returning goods never received).
            RuleViolation: The order was not paid, or was cancelled.
            WindowClosed: The order is closed, or a no-reason return comes after the window.
            AlreadyRefunded: More units than remain unrefunded on a line.
            QuantityExceeded: More units than were delivered (or not delivered), less those
                other requests already claim.

        """
        self._authorize("request", actor)
        check_now(now)
        _text("request_id", request_id)
        kind, reason = self._kind_and_reason(kind, reason)
        if any(each.request_id == request_id for each in self.requests):
            raise InvalidInput("request_id", request_id, "already used on this order")
        items = self._items(items)
        if not isinstance(description, str) or len(description) > _MAX_DESCRIPTION:
            raise InvalidInput(
                "description", description, f"must be text of at most {_MAX_DESCRIPTION} characters"
            )
        if order.id != self.order_id or fulfilment.order_id != self.order_id:
            raise InvalidInput("order", order.id, f"this record is for {self.order_id!r}")
        draft = AfterSalesRequest(
            request_id=request_id,
            kind=kind,
            reason=reason,
            items=items,
            state=_PROCESS_FOR[kind].initial,
            requested_at=now,
            description=description,
            updated_at=now,
        )
        self._check_order(order)
        for item in items:
            self._check_item(item, draft, fulfilment, now, policy)
        self.requests = (*self.requests, draft)
        self._record(
            AfterSalesRequested,
            now,
            actor,
            request_id=request_id,
            kind=kind,
            reason=reason,
            items=items,
        )
        return draft

    # ----------------------------------------------------------------- merchant

    def approve(
        self,
        actor: Actor,
        request_id: str,
        *,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The merchant agrees: a refund only is refunded, a return or exchange awaits the goods.

        Units refunded before they were shipped at all go back into stock.

        Raises:
            Forbidden: Not the order's merchant.
            NotFound: No such request.
            TransitionNotAllowed: The request is not waiting for the merchant.

        """
        return self._step("approve", actor, request_id, now, fulfilment=fulfilment, policy=policy)

    def reject(
        self, actor: Actor, request_id: str, *, reason: str, now: datetime
    ) -> AfterSalesRequest:
        """The merchant refuses, with a reason (at the request, or after inspecting the goods).

        Raises:
            Forbidden: Not the order's merchant.
            InvalidInput: An empty reason.
            TransitionNotAllowed: Nothing to refuse in this state.

        """
        _text("reason", reason, 500)
        return self._step("reject", actor, request_id, now, note=reason)

    def receive_return(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """The merchant has the returned goods and inspects them.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: No return is on its way.

        """
        return self._step("receive", actor, request_id, now)

    def accept_return(
        self,
        actor: Actor,
        request_id: str,
        *,
        restock: bool,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The returned goods pass inspection: refund them, or send a replacement.

        Args:
            actor: The order's merchant.
            request_id: The request.
            restock: Whether the goods can be sold again (they go back into stock).
            fulfilment: Where the order's units are.
            now: When.
            policy: The after-sales rules (for the freight).

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The goods have not been received back.

        """
        return self._step(
            "accept_return",
            actor,
            request_id,
            now,
            fulfilment=fulfilment,
            policy=policy,
            restock=restock,
        )

    def send_replacement(
        self, actor: Actor, request_id: str, *, shipment_id: str, now: datetime
    ) -> AfterSalesRequest:
        """The merchant sent the replacement of an exchange.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The exchange is not waiting for a replacement.

        """
        _text("shipment_id", shipment_id)
        return self._step("send_replacement", actor, request_id, now, shipment_id=shipment_id)

    # ----------------------------------------------------------------- buyer

    def ship_back(
        self, actor: Actor, request_id: str, *, carrier: str, tracking_number: str, now: datetime
    ) -> AfterSalesRequest:
        """The buyer sent the goods back, with the carrier's tracking number.

        Raises:
            Forbidden: Not the order's buyer.
            InvalidInput: An empty carrier or tracking number.
            TransitionNotAllowed: The return was not approved (or the goods were sent already).

        """
        parcel = ReturnParcel(
            _text("carrier", carrier), _text("tracking_number", tracking_number), now
        )
        return self._step("ship_back", actor, request_id, now, parcel=parcel)

    def dispute(
        self, actor: Actor, request_id: str, *, reason: str, now: datetime
    ) -> AfterSalesRequest:
        """The buyer disputes the merchant's rejection: the platform will rule.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: The request was not rejected.

        """
        _text("reason", reason, 500)
        return self._step("dispute", actor, request_id, now, note=reason)

    def withdraw(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """The buyer withdraws the request; its units are free to claim again.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: Too late: the goods went back, or it was decided.

        """
        return self._step("withdraw", actor, request_id, now)

    def close(self, actor: Actor, request_id: str, *, now: datetime) -> AfterSalesRequest:
        """Close a rejected request without a dispute (the buyer accepts it, or time ran out).

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: The request is not rejected.

        """
        return self._step("close", actor, request_id, now)

    def complete_exchange(
        self, actor: Actor, request_id: str, *, now: datetime
    ) -> AfterSalesRequest:
        """The buyer has the replacement: the exchange is done and its units free again.

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: No replacement was sent.

        """
        return self._step("complete_exchange", actor, request_id, now)

    # ----------------------------------------------------------------- platform and money

    def arbitrate(
        self,
        actor: Actor,
        request_id: str,
        *,
        for_buyer: bool,
        reason: str,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> AfterSalesRequest:
        """The platform rules on a dispute.

        For the buyer, the request goes on where the merchant stopped it: a refund only is
        refunded; a return awaits the goods, or is refunded (or replaced) if the merchant has
        them already. For the merchant, it is closed.

        Raises:
            Forbidden: Not the platform.
            InvalidInput: An empty reason, or ``for_buyer`` not a bool.
            TransitionNotAllowed: The request is not in arbitration.

        """
        if not isinstance(for_buyer, bool):
            raise InvalidInput("for_buyer", for_buyer, "must be True or False")
        _text("reason", reason, 500)
        trigger = "rule_for_buyer" if for_buyer else "rule_for_merchant"
        return self._step(
            trigger, actor, request_id, now, note=reason, fulfilment=fulfilment, policy=policy
        )

    def complete_refund(
        self, actor: Actor, request_id: str, *, reference: str, now: datetime
    ) -> AfterSalesRequest:
        """The payment side reports the approved refund done.

        Raises:
            Forbidden: Not the platform or the system.
            InvalidInput: An empty reference.
            TransitionNotAllowed: No refund is approved and waiting.

        """
        _text("reference", reference)
        return self._step("complete_refund", actor, request_id, now, reference=reference)

    # ----------------------------------------------------------------- internals

    def _authorize(self, command: str, actor: Actor) -> None:
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in _MAY[command]:
            raise Forbidden(str(actor), command, self.id, f"a {actor.kind} may not {command}")
        if actor.kind is ActorKind.BUYER and actor.id != self.buyer_id:
            raise Forbidden(str(actor), command, self.id, "it is another buyer's order")
        if actor.kind is ActorKind.MERCHANT and actor.id != self.merchant_id:
            raise Forbidden(str(actor), command, self.id, "it is another merchant's order")

    @staticmethod
    def _kind_and_reason(kind: str, reason: str) -> tuple[AfterSalesKind, AfterSalesReason]:
        try:
            chosen_kind = AfterSalesKind(kind)
        except ValueError:
            raise InvalidInput("kind", kind, "not an after-sales kind") from None
        try:
            chosen_reason = AfterSalesReason(reason)
        except ValueError:
            raise InvalidInput("reason", reason, "not an after-sales reason") from None
        if (
            chosen_kind is not AfterSalesKind.REFUND_ONLY
            and chosen_reason is AfterSalesReason.NOT_RECEIVED
        ):
            raise InvalidInput(
                "reason", chosen_reason, f"goods never received cannot go back ({chosen_kind})"
            )
        return chosen_kind, chosen_reason

    def _items(self, items: Sequence[AfterSalesItem]) -> tuple[AfterSalesItem, ...]:
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a request is about at least one line")
        known = {line.line_id for line in self.lines}
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, AfterSalesItem):
                raise InvalidInput("items", item, "each item must be an AfterSalesItem")
            if item.line_id not in known:
                raise InvalidInput("line_id", item.line_id, "the order has no such line")
            if item.line_id in seen:
                raise InvalidInput("items", item.line_id, "the same line appears twice")
            seen.add(item.line_id)
        return items

    def _check_order(self, order: Order) -> None:
        if order.state == OrderState.CLOSED:
            raise WindowClosed(
                self.id, "request", order.state, "the order is closed: after-sales is over"
            )
        if order.state == OrderState.CANCELLED:
            raise RuleViolation(
                self.id, "request", order.state, "a cancelled order is refunded by cancelling"
            )
        if order.payment is None:
            raise RuleViolation(self.id, "request", order.state, "the order was not paid")

    def _check_item(
        self,
        item: AfterSalesItem,
        draft: AfterSalesRequest,
        fulfilment: FulfilmentStatus,
        now: datetime,
        policy: AfterSalesPolicy,
    ) -> None:
        line = self._line(item.line_id)
        status = fulfilment.line(item.line_id)
        state = draft.state

        def exceeded(error: type[QuantityExceeded], available: int, limit: str) -> None:
            raise error(
                self.id,
                "request",
                state,
                line_id=item.line_id,
                requested=item.quantity,
                available=max(0, available),
                limit=limit,
            )

        if draft.bears_refund:
            refundable = line.quantity - sum(
                each.quantity(item.line_id)
                for each in self.requests
                if each.bears_refund and each.holds_claim
            )
            if item.quantity > refundable:
                exceeded(AlreadyRefunded, refundable, "not yet refunded or asked to be")
        if not draft.about_received_goods:
            undelivered = status.undelivered_units - self.claimed_units(
                item.line_id, received=False
            )
            if item.quantity > undelivered:
                exceeded(QuantityExceeded, undelivered, "not delivered and not yet claimed")
            return
        claimed = self.claimed_units(item.line_id, received=True)
        available = status.delivered_units - claimed
        if item.quantity > available:
            exceeded(QuantityExceeded, available, "delivered and not yet claimed")
        if draft.reason is not AfterSalesReason.NO_REASON:
            return
        if line.category in policy.no_reason_excluded_categories:
            raise RuleViolation(
                self.id,
                "request",
                state,
                f"line {item.line_id!r}: category {line.category!r} may not be returned "
                "without a reason",
            )
        window = policy.no_reason_window
        inside = sum(b.quantity for b in status.delivered if now <= b.at + window)
        outside = status.delivered_units - inside
        # Earlier claims are counted against the oldest units first, as favours the buyer.
        eligible = inside - max(0, claimed - outside)
        if item.quantity > eligible:
            closed_at = status.delivered[-1].at + window
            raise WindowClosed(
                self.id,
                "request",
                state,
                f"line {item.line_id!r}: {item.quantity} units asked, {max(0, eligible)} "
                f"delivered within the {window.days}-day no-reason window",
                closed_at,
            )

    def _line(self, line_id: str) -> OrderLine:
        return next(line for line in self.lines if line.line_id == line_id)

    def _step(
        self,
        trigger: str,
        actor: Actor,
        request_id: str,
        now: datetime,
        *,
        note: str = "",
        fulfilment: FulfilmentStatus | None = None,
        policy: AfterSalesPolicy | None = None,
        restock: bool = False,
        parcel: ReturnParcel | None = None,
        shipment_id: str | None = None,
        reference: str | None = None,
    ) -> AfterSalesRequest:
        self._authorize(trigger, actor)
        check_now(now)
        current = self.request(request_id)
        dest = current.process.fire(current.state, trigger, current, None, subject_id=request_id)
        changes: dict[str, object] = {"state": dest, "updated_at": now}
        decision = Decision(str(actor), now, note) if note else None
        if trigger == "reject":
            changes["rejection"] = decision
        elif trigger == "dispute":
            changes["dispute"] = decision
        elif trigger.startswith("rule_for_"):
            changes["ruling"] = decision
        elif trigger == "ship_back":
            changes["return_parcel"] = parcel
        elif trigger == "receive":
            changes["return_received_at"] = now
        elif trigger == "send_replacement":
            changes["replacement_shipment_id"] = shipment_id
        elif trigger == "complete_refund":
            changes["refund_reference"] = reference
        restocked: tuple[AfterSalesItem, ...] = ()
        if trigger == "accept_return" and restock:
            restocked = current.items
        plan: RefundPlan | None = None
        if dest == _A.REFUND_APPROVED:
            assert fulfilment is not None  # noqa: S101  # every approving command passes it
            assert policy is not None  # noqa: S101  # likewise
            plan = self._plan_refund(current, fulfilment, policy)
            changes["refund"] = plan
            if not current.about_received_goods:
                restocked = self._unshipped(current, fulfilment)
        if restocked:
            changes["restock"] = restocked
        updated = attrs.evolve(current, **changes)  # type: ignore[arg-type]  # checked above
        self.requests = tuple(updated if r is current else r for r in self.requests)
        common = {
            "request_id": request_id,
            "command": trigger,
            "from_state": current.state,
            "state": dest,
            "note": note,
            "restock": restocked,
        }
        if plan is not None:
            fully = all(self.refunded_units(ln.line_id) == ln.quantity for ln in self.lines)
            self._record(
                RefundApproved,
                now,
                actor,
                **common,
                lines=plan.lines,
                freight=plan.freight,
                total=plan.total,
                order_fully_refunded=fully,
            )
        elif trigger == "complete_refund":
            assert updated.refund is not None  # noqa: S101  # only refund_approved completes
            self._record(
                RefundCompleted,
                now,
                actor,
                **common,
                reference=reference,
                total=updated.refund.total,
            )
        else:
            self._record(AfterSalesProgressed, now, actor, **common)
        return updated

    def _plan_refund(
        self, request: AfterSalesRequest, fulfilment: FulfilmentStatus, policy: AfterSalesPolicy
    ) -> RefundPlan:
        zero = Money.zero(self.currency)
        lines: list[RefundLine] = []
        after: dict[str, int] = {}
        for item in request.items:
            line = self._line(item.line_id)
            done = self.refunded_units(item.line_id)
            if done + item.quantity > line.quantity:  # pragma: no cover - claims prevent it
                raise AlreadyRefunded(
                    self.id,
                    "refund",
                    request.state,
                    line_id=item.line_id,
                    requested=item.quantity,
                    available=line.quantity - done,
                    limit="not yet refunded",
                )
            shares = unit_shares(line)[done : done + item.quantity]
            lines.append(RefundLine(item.line_id, item.quantity, sum(shares, zero)))
            after[item.line_id] = done + item.quantity
        everything = all(
            after.get(ln.line_id, self.refunded_units(ln.line_id)) == ln.quantity
            for ln in self.lines
        )
        freight = zero
        if everything and not self.freight_refunded and self.shipping_fee.is_positive:
            nothing_shipped = not any(ln.packed for ln in fulfilment.lines.values())
            if policy.freight_refund is FreightRefund.ALWAYS or (
                policy.freight_refund is FreightRefund.MERCHANT_FAULT
                and (request.reason in MERCHANT_FAULT_REASONS or nothing_shipped)
            ):
                freight = self.shipping_fee
        total = sum((ln.amount for ln in lines), zero) + freight
        return RefundPlan(tuple(lines), freight, total)

    def _unshipped(
        self, request: AfterSalesRequest, fulfilment: FulfilmentStatus
    ) -> tuple[AfterSalesItem, ...]:
        """Units of a refund for goods not received that never left the warehouse.

        Payment committed the ordered units; original shipments took them out. A parcel sent
        back is restocked when it arrives, and a reshipment draws new stock, so the units
        still held for the order are the ordered ones no original shipment carried.
        """
        restock: list[AfterSalesItem] = []
        for item in request.items:
            line = fulfilment.line(item.line_id)
            earlier = sum(
                restocked.quantity
                for each in self.requests
                if each is not request and not each.about_received_goods
                for restocked in each.restock
                if restocked.line_id == item.line_id
            )
            units = min(item.quantity, line.ordered - line.original - earlier)
            if units > 0:
                restock.append(AfterSalesItem(item.line_id, units))
        return tuple(restock)

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor, **fields: object
    ) -> None:
        self.version += 1
        fields["order_id"] = self.order_id
        event = event_type(
            aggregate_id=self.id, version=self.version, occurred_at=now, actor=str(actor), **fields
        )
        self.events = (*self.events, event)
