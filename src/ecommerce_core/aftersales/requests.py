"""After-sales requests and the values and events around them."""

from __future__ import annotations

from datetime import datetime

import attrs

from ecommerce_core._validation import check_text as _check_text
from ecommerce_core._validation import check_units as _check_units
from ecommerce_core.aftersales.policy import UNRECEIVED_REASONS, AfterSalesKind, AfterSalesReason
from ecommerce_core.aftersales.processes import OPEN_STATES, PROCESS_FOR, RELEASED_STATES
from ecommerce_core.errors import (
    RuleViolation,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import OrderLine
from ecommerce_core.process import Process

__all__ = [
    "AfterSalesItem",
    "AfterSalesProgressed",
    "AfterSalesRequest",
    "AfterSalesRequested",
    "Decision",
    "RefundApproved",
    "RefundCompleted",
    "RefundInstruction",
    "RefundLine",
    "RefundPlan",
    "ReturnParcel",
    "unit_shares",
]


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
        return PROCESS_FOR[self.kind]

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
        return self.state not in RELEASED_STATES

    @property
    def bears_refund(self) -> bool:
        """Whether it asks for money back (refund only, return and refund)."""
        return self.kind is not AfterSalesKind.EXCHANGE

    @property
    def about_received_goods(self) -> bool:
        """Whether it is about units the buyer has (else units never received)."""
        return not (self.kind is AfterSalesKind.REFUND_ONLY and self.reason in UNRECEIVED_REASONS)

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
