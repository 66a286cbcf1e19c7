"""What an abandoned purchase gives back, as data the services act on exactly once.

Every path that abandons a purchase (a team that expired, a lucky-draw round that did not sell
out, a group buy that missed its minimum, an auction left unpaid or unsold) ends with one
command on its aggregate. That command moves the aggregate into a state it never leaves the
same way again, and returns the list of :class:`Release` items: the stock reservation, the
campaign quota, the coupon uses, the pending rebate and the money of each abandoned order, and
any bidder deposits. The same list is carried by the event the command records.

A second attempt is refused by the aggregate's process (or finds nothing due), so each item is
produced once. Each item also carries a :attr:`Release.key`, stable and unique, that the
service passes on as the idempotency key when it acts (inventory release, payment refund,
deposit release), so a retried service call cannot act twice either.

Example:
    >>> from ecommerce_core.money import Money
    >>> items = releases_for_order(
    ...     "team-1", order_id="o-7", buyer_id="bob",
    ...     paid=Money.of("9.90", "CNY"), payment_ref="tx-7",
    ... )
    >>> [item.kind.value for item in items]
    ['stock', 'quota', 'coupon_uses', 'rebate', 'refund']
    >>> items[-1].key, str(items[-1].amount), items[-1].payment_ref
    ('team-1:refund:o-7', '9.90 CNY', 'tx-7')

"""

from __future__ import annotations

import enum

import attrs

from ecommerce_core.errors import InvalidInput
from ecommerce_core.money import Money

__all__ = [
    "Release",
    "ReleaseKind",
    "releases_for_order",
    "releases_for_stock",
]


class ReleaseKind(enum.StrEnum):
    """What is given back."""

    STOCK = "stock"
    """The stock reservation held under :attr:`Release.reference` (an order, or an item)."""
    QUOTA = "quota"
    """The campaign quota the order took (flash-sale and campaign limits)."""
    COUPON_USES = "coupon_uses"
    """The coupon uses the order consumed."""
    REBATE = "rebate"
    """The order's pending rebate: void it (never pay a rebate on an abandoned order)."""
    REFUND = "refund"
    """Money back to the buyer, against the order's *own* payment (:attr:`Release.payment_ref`)."""
    DEPOSIT = "deposit"
    """A held deposit (保证金) back to its owner, un-forfeited."""


@attrs.frozen
class Release:
    """One thing an abandoned purchase gives back.

    Attributes:
        source_id: The aggregate whose abandonment produced it (team, round, campaign, auction).
        kind: What to give back.
        reference: What it is keyed by: the order id for stock, quota, coupons, rebate and
            refund; the item's reservation id for an item's stock; the deposit's hold
            reference for a deposit.
        buyer_id: Whose it is (empty for an item's stock).
        amount: How much, for a refund or a deposit; ``None`` otherwise.
        payment_ref: For a refund, the payment it is refunded against (the order's own).

    """

    source_id: str
    kind: ReleaseKind
    reference: str
    buyer_id: str = ""
    amount: Money | None = None
    payment_ref: str | None = None

    @property
    def key(self) -> str:
        """A stable, unique key: use it as the idempotency key when acting on this item."""
        return f"{self.source_id}:{self.kind.value}:{self.reference}"


def releases_for_order(
    source_id: str,
    *,
    order_id: str,
    buyer_id: str,
    paid: Money | None = None,
    payment_ref: str | None = None,
) -> tuple[Release, ...]:
    """Everything one abandoned order gives back.

    An unpaid order gives back its stock, quota and coupon uses. A paid one also voids its
    pending rebate and is refunded ``paid`` against ``payment_ref``, its own payment.

    Args:
        source_id: The aggregate abandoning it.
        order_id: The order.
        buyer_id: Its buyer.
        paid: What was paid on it (``None`` or zero when unpaid).
        payment_ref: The payment to refund against; required when ``paid`` is positive.

    Returns:
        The releases, stock first, the refund last.

    Raises:
        InvalidInput: A positive ``paid`` without a ``payment_ref``, or a negative ``paid``.

    """
    items = [
        Release(source_id, kind, order_id, buyer_id)
        for kind in (ReleaseKind.STOCK, ReleaseKind.QUOTA, ReleaseKind.COUPON_USES)
    ]
    if paid is not None and paid.is_negative:
        raise InvalidInput("paid", paid, "must not be negative")
    if paid is not None and paid.is_positive:
        if not payment_ref:
            raise InvalidInput("payment_ref", payment_ref, "a refund needs the payment it undoes")
        items.append(Release(source_id, ReleaseKind.REBATE, order_id, buyer_id))
        items.append(Release(source_id, ReleaseKind.REFUND, order_id, buyer_id, paid, payment_ref))
    return tuple(items)


def releases_for_stock(source_id: str, reservation_id: str) -> tuple[Release, ...]:
    """The release of an item's own stock reservation (an auction lot, a lucky-draw prize)."""
    return (Release(source_id, ReleaseKind.STOCK, reservation_id),)
