"""Domain events: facts, in the past tense, frozen.

Aggregates collect events as commands succeed; application services publish them through the
:class:`~ecommerce_core.ports.EventPublisher` port *after* the aggregate is saved, so a subscriber
never hears of a change that was rolled back.

Every event names the aggregate, the version the aggregate reached with it, when it happened
(the time passed to the command, never a wall clock) and the actor who caused it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ecommerce_core.money import Money

__all__ = [
    "AutoConfirmExtended",
    "DeadlinePaused",
    "DeadlineResumed",
    "DomainEvent",
    "OrderCancelled",
    "OrderClosed",
    "OrderDelivered",
    "OrderPaid",
    "OrderPlaced",
    "OrderRepriced",
    "OrderShipped",
    "ReceiptConfirmed",
]


@attrs.frozen(kw_only=True)
class DomainEvent:
    """Base of every domain event.

    Attributes:
        aggregate_id: The id of the aggregate the event belongs to.
        version: The aggregate's version once this event happened.
        occurred_at: When it happened (the command's ``now``).
        actor: Who caused it, as ``"kind:id"``.

    """

    aggregate_id: str
    version: int
    occurred_at: datetime
    actor: str

    @property
    def name(self) -> str:
        """The event's type name, e.g. ``"OrderPlaced"``."""
        return type(self).__name__


@attrs.frozen(kw_only=True)
class OrderPlaced(DomainEvent):
    """An order was placed (by buy-now or as one merchant's part of a cart checkout).

    Attributes:
        checkout_id: The checkout it came from; orders split from one cart share it.
        buyer_id: The buyer.
        merchant_id: The merchant.
        total: What the buyer owes (lines after discounts, plus shipping).
        process: The name of the process the order follows.
        payment_method: How the buyer pays (``"online"``, ``"escrow"``, ``"cod"``, ``"credit"``).

    """

    checkout_id: str
    buyer_id: str
    merchant_id: str
    total: Money
    process: str
    payment_method: str = "online"


@attrs.frozen(kw_only=True)
class OrderPaid(DomainEvent):
    """The order's payment succeeded.

    Attributes:
        amount: The amount paid.
        payment_ref: The payment's reference (the gateway's transaction id).

    """

    amount: Money
    payment_ref: str


@attrs.frozen(kw_only=True)
class OrderShipped(DomainEvent):
    """The merchant handed the order to a carrier.

    Attributes:
        carrier: The carrier's id.
        tracking_number: The carrier's tracking number.

    """

    carrier: str
    tracking_number: str


@attrs.frozen(kw_only=True)
class OrderDelivered(DomainEvent):
    """The carrier reported the parcel delivered."""


@attrs.frozen(kw_only=True)
class ReceiptConfirmed(DomainEvent):
    """Receipt was confirmed and the order completed: by the buyer, or by the deadline.

    Attributes:
        automatic: ``True`` when the auto-confirm deadline confirmed it.

    """

    automatic: bool


@attrs.frozen(kw_only=True)
class OrderClosed(DomainEvent):
    """The after-sales window ended; the order is closed for good."""


@attrs.frozen(kw_only=True)
class OrderCancelled(DomainEvent):
    """The order was cancelled before shipment.

    Attributes:
        reason: Why, in words (``"payment timeout"``, the buyer's reason, ...).
        was_paid: Whether it had been paid, so a refund is due.

    """

    reason: str
    was_paid: bool


@attrs.frozen(kw_only=True)
class DeadlinePaused(DomainEvent):
    """A hold was put on the order; while any hold is open its deadline does not run.

    Attributes:
        hold: The hold's key (``"refund:r-1"``, ``"payment:p-1"``, ``"aftersales:a-1"``).
        trigger: The paused deadline's trigger, if a deadline was running (or already paused).
        remaining: The time that deadline had left, kept until the last hold is lifted.

    """

    hold: str
    trigger: str | None
    remaining: timedelta | None


@attrs.frozen(kw_only=True)
class DeadlineResumed(DomainEvent):
    """A hold was lifted; when it was the last one, the paused deadline runs again.

    Attributes:
        hold: The hold's key.
        deadline: When the resumed deadline now falls due (``None`` while other holds stay open,
            or when no deadline was paused).

    """

    hold: str
    deadline: datetime | None


@attrs.frozen(kw_only=True)
class AutoConfirmExtended(DomainEvent):
    """The buyer extended the auto-confirm deadline (延长收货).

    Attributes:
        extension: How much was added.
        used: How many extensions the order has used, this one included.
        deadline: When receipt is now confirmed for the buyer (``None`` while the clock is
            held: it then has ``extension`` more left when it runs again).

    """

    extension: timedelta
    used: int
    deadline: datetime | None


@attrs.frozen(kw_only=True)
class OrderRepriced(DomainEvent):
    """A paid order's price was lowered after payment (a group buy's final tier, say).

    The difference goes back to the buyer through the payment; the lines carry the reduction
    as an adjustment, so a later refund gives back what the goods finally cost.

    Attributes:
        promotion_id: What lowered it (recorded on each line's adjustment).
        reductions: Per line: its id and how much was taken off it.
        total: The order's total now.

    """

    promotion_id: str
    reductions: tuple[tuple[str, Money], ...]
    total: Money
