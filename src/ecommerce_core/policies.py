"""Operating policies: the numbers real platforms choose, as plain data with defaults.

Every timeout becomes a *stored deadline* on the aggregate when the clock starts, computed from
the policy in force at that moment; changing a policy later does not move deadlines already set.

Defaults (from ``research/``): payment timeout 30 minutes, auto-confirm receipt 10 days after
shipment, after-sales window 7 days after receipt.
"""

from __future__ import annotations

import enum
from datetime import timedelta

import attrs

from ecommerce_core._validation import to_member
from ecommerce_core.errors import DefinitionError

__all__ = [
    "OrderPolicy",
    "PricingPolicy",
    "Recheck",
]


@attrs.frozen
class OrderPolicy:
    """Timeouts and limits for orders.

    Attributes:
        payment_timeout: How long an unpaid order waits before it is cancelled.
        auto_confirm_after: How long after shipment receipt is confirmed by the system.
        after_sales_window: How long after receipt the buyer may ask for after-sales.
        max_line_quantity: The most units one line may order (a guard against typos and abuse).
        max_lines: The most lines one checkout may hold.
        auto_confirm_extensions: How many times the buyer may extend the auto-confirm deadline
            (延长收货; Taobao offers fixed extensions of 3, 5, 7 or 10 days). 0: never.
        auto_confirm_extension: How much one extension adds.

    Raises:
        DefinitionError: A duration is not a positive ``timedelta``, or a limit is not an
            ``int`` or is below 1 (extensions: 0).

    """

    payment_timeout: timedelta = timedelta(minutes=30)
    auto_confirm_after: timedelta = timedelta(days=10)
    after_sales_window: timedelta = timedelta(days=7)
    max_line_quantity: int = 10_000
    max_lines: int = 500
    auto_confirm_extensions: int = 1
    auto_confirm_extension: timedelta = timedelta(days=5)

    def __attrs_post_init__(self) -> None:
        durations = (
            ("payment_timeout", self.payment_timeout),
            ("auto_confirm_after", self.auto_confirm_after),
            ("after_sales_window", self.after_sales_window),
            ("auto_confirm_extension", self.auto_confirm_extension),
        )
        counts = (
            ("max_line_quantity", self.max_line_quantity),
            ("max_lines", self.max_lines),
            ("auto_confirm_extensions", self.auto_confirm_extensions),
        )
        mistyped = [
            *(
                f"{name} must be a timedelta such as timedelta(minutes=30), got {value!r}"
                for name, value in durations
                if not isinstance(value, timedelta)
            ),
            *(
                f"{name} must be an int, got {value!r}"
                for name, value in counts
                if type(value) is not int
            ),
        ]
        if mistyped:  # nothing below can compare them
            raise DefinitionError("OrderPolicy", mistyped)
        problems = [
            f"{name} must be positive, got {value}"
            for name, value in durations
            if value <= timedelta(0)
        ]
        if self.auto_confirm_extensions < 0:
            problems.append(
                f"auto_confirm_extensions must be at least 0, got {self.auto_confirm_extensions}"
            )
        problems.extend(
            f"{name} must be at least 1, got {value}"
            for name, value in (
                ("max_line_quantity", self.max_line_quantity),
                ("max_lines", self.max_lines),
            )
            if value < 1
        )
        if problems:
            raise DefinitionError("OrderPolicy", problems)


class Recheck(enum.StrEnum):
    """What paying does when the offer an order was priced with has ended since."""

    HONOUR_UNTIL_DEADLINE = "honour_until_deadline"
    """The price reserved at order time stands until the order's payment deadline; a payment
    after the deadline (before the scheduler cancelled it) is refused."""
    REQUIRE_ACTIVE = "require_active"
    """Every promotion the order used must still be running when it is paid."""


def _to_recheck(value: Recheck | str) -> Recheck:
    return to_member(Recheck, value, "recheck_at_payment", definition="PricingPolicy")


@attrs.frozen
class PricingPolicy:
    """How orders priced with promotions or campaigns are treated after placement.

    Attributes:
        recheck_at_payment: Whether a promotion that ended between order and payment is
            honoured until the payment deadline (the default) or refused at payment.
        release_when_paid_order_cancelled: Whether cancelling a *paid* order gives its coupon
            uses, budget and campaign quota back (the default; commercetools does not).

    """

    recheck_at_payment: Recheck = attrs.field(
        default=Recheck.HONOUR_UNTIL_DEADLINE,
        converter=_to_recheck,
    )
    release_when_paid_order_cancelled: bool = True
