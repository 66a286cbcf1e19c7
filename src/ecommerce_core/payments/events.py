"""Events of the payment aggregates, and of the order triggers payment methods add.

Payment events name the payment as their aggregate; the order events (:class:`OrderSettled`,
:class:`OrderCollected`, :class:`OrderRefused`, :class:`OrderReturned`) name the order, and are
recorded by :meth:`~ecommerce_core.orders.Order.advance` when escrow or COD moves the order on.
"""

from __future__ import annotations

import attrs

from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money

__all__ = [
    "AuthorizationExpired",
    "CaptureFailed",
    "CaptureRequested",
    "CashCollected",
    "CashRemitted",
    "CodRefused",
    "CreditDrawn",
    "EscrowReleased",
    "InstallmentRepaid",
    "NotificationIgnored",
    "OrderCollected",
    "OrderRefused",
    "OrderReturned",
    "OrderSettled",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentDeclined",
    "PaymentFailed",
    "PaymentStarted",
    "PaymentVoided",
    "RefundFailed",
    "RefundRequested",
    "RefundSucceeded",
]


@attrs.frozen(kw_only=True)
class PaymentStarted(DomainEvent):
    """A payment was started for an order.

    Attributes:
        order_id: The order.
        method: The payment method.
        amount: What it is to collect.

    """

    order_id: str
    method: str
    amount: Money


@attrs.frozen(kw_only=True)
class PaymentAuthorized(DomainEvent):
    """The provider authorized the amount (holds it on the buyer's account).

    Attributes:
        amount: The amount authorized.
        transaction_id: The provider's id of the payment.

    """

    amount: Money
    transaction_id: str


@attrs.frozen(kw_only=True)
class CaptureRequested(DomainEvent):
    """A capture was asked of the provider and counts against the authorization until answered.

    Attributes:
        capture_key: The capture's idempotency key.
        amount: How much.

    """

    capture_key: str
    amount: Money


@attrs.frozen(kw_only=True)
class PaymentCaptured(DomainEvent):
    """Money was captured: it moved from the buyer.

    Attributes:
        capture_key: The capture's key (``"txn:<id>"`` for one the provider reported unasked).
        amount: How much.
        transaction_id: The provider's id of the capture.

    """

    capture_key: str
    amount: Money
    transaction_id: str


@attrs.frozen(kw_only=True)
class CaptureFailed(DomainEvent):
    """The provider refused a capture; it no longer counts.

    Attributes:
        capture_key: The capture's key.
        amount: How much was asked.

    """

    capture_key: str
    amount: Money


@attrs.frozen(kw_only=True)
class PaymentDeclined(DomainEvent):
    """The provider declined the payment.

    Attributes:
        reason: The provider's words.

    """

    reason: str


@attrs.frozen(kw_only=True)
class PaymentFailed(DomainEvent):
    """The provider reported the payment failed or closed.

    Attributes:
        reason: The provider's words.

    """

    reason: str


@attrs.frozen(kw_only=True)
class PaymentVoided(DomainEvent):
    """The payment was voided before any capture."""


@attrs.frozen(kw_only=True)
class AuthorizationExpired(DomainEvent):
    """The authorization lapsed; what was not captured can no longer be.

    Attributes:
        lapsed: The authorized amount that lapsed uncaptured.

    """

    lapsed: Money


@attrs.frozen(kw_only=True)
class RefundRequested(DomainEvent):
    """A refund was opened; it counts against what is refundable until it settles.

    Attributes:
        refund_id: The refund's id (its idempotency key).
        amount: How much.
        automatic: Whether the library opened it (a late or surplus capture, a cancellation).

    """

    refund_id: str
    amount: Money
    automatic: bool


@attrs.frozen(kw_only=True)
class RefundSucceeded(DomainEvent):
    """A refund went through: the money went back to whoever paid it.

    Attributes:
        refund_id: The refund's id.
        amount: How much.
        transaction_id: The provider's id of the refund (empty when none was involved).

    """

    refund_id: str
    amount: Money
    transaction_id: str


@attrs.frozen(kw_only=True)
class RefundFailed(DomainEvent):
    """A refund failed; it does not count, and its amount is refundable again.

    Attributes:
        refund_id: The refund's id.
        amount: How much it was for.

    """

    refund_id: str
    amount: Money


@attrs.frozen(kw_only=True)
class NotificationIgnored(DomainEvent):
    """A provider notification arrived that the payment's history already covers.

    Recorded so a repeat of it is recognised; nothing else changed.

    Attributes:
        event_id: The provider's event id.
        reason: Why it changed nothing.

    """

    event_id: str
    reason: str


@attrs.frozen(kw_only=True)
class EscrowReleased(DomainEvent):
    """Escrow was released to the merchant, less commission.

    Attributes:
        amount: What left escrow.
        commission: The platform's part of it.
        lines: The lines released.

    """

    amount: Money
    commission: Money
    lines: tuple[str, ...]


@attrs.frozen(kw_only=True)
class CashCollected(DomainEvent):
    """A carrier collected the order's cash at the door.

    Attributes:
        amount: How much.
        carrier: The carrier.

    """

    amount: Money
    carrier: str


@attrs.frozen(kw_only=True)
class CodRefused(DomainEvent):
    """The buyer refused the parcel at the door (拒收); nothing was collected.

    Attributes:
        reason: Why, as reported.

    """

    reason: str


@attrs.frozen(kw_only=True)
class CashRemitted(DomainEvent):
    """The carrier remitted the cash it collected to the merchant, keeping its fee.

    Attributes:
        amount: What the merchant received.
        fee: What the carrier kept.

    """

    amount: Money
    fee: Money


@attrs.frozen(kw_only=True)
class CreditDrawn(DomainEvent):
    """A credit provider paid for the order; the buyer owes an installment plan.

    Attributes:
        provider: The credit provider.
        principal: What was drawn.
        fee: The installment fee.
        periods: The number of installments.

    """

    provider: str
    principal: Money
    fee: Money
    periods: int


@attrs.frozen(kw_only=True)
class InstallmentRepaid(DomainEvent):
    """The buyer repaid an installment, with any overdue penalty.

    Attributes:
        number: The installment (1-based).
        amount: The installment's amount.
        penalty: The overdue penalty paid with it.
        days_late: Full days after its due date.

    """

    number: int
    amount: Money
    penalty: Money
    days_late: int


@attrs.frozen(kw_only=True)
class OrderSettled(DomainEvent):
    """Escrow for the order was released; the order is completed.

    Attributes:
        released: What the merchant received in total.

    """

    released: Money


@attrs.frozen(kw_only=True)
class OrderCollected(DomainEvent):
    """COD: the carrier collected the cash and the buyer signed for the parcel (签收).

    Attributes:
        amount: The cash collected.

    """

    amount: Money


@attrs.frozen(kw_only=True)
class OrderRefused(DomainEvent):
    """COD: the buyer refused the parcel at the door (拒收); it goes back to the merchant.

    Attributes:
        reason: Why, as reported.

    """

    reason: str


@attrs.frozen(kw_only=True)
class OrderReturned(DomainEvent):
    """A refused parcel arrived back with the merchant; its stock is back on hand."""
