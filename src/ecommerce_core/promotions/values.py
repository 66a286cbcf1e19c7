"""The inputs and the result of pricing: lines, context, adjustments, explanations.

:func:`~ecommerce_core.promotions.price` reads :class:`PricingLine` s and a
:class:`PricingContext` and returns a :class:`PricingResult`: every adjustment (per promotion,
with its share of each line), the final amounts, one :class:`Explanation` per promotion, the
entitlements granted after the order, and the :class:`~ecommerce_core.limits.LimitClaim` s the
result needs reserved.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from ecommerce_core.errors import InvalidInput, NotFound
from ecommerce_core.limits import Limit, LimitClaim, StockTiming
from ecommerce_core.money import Money
from ecommerce_core.orders import Entitlement, LineAdjustment, OrderLine, PricingTerms, check_now
from ecommerce_core.promotions.benefits import Stage

__all__ = [
    "Adjustment",
    "Entitlement",
    "Explanation",
    "LineShare",
    "PricedLine",
    "PricingContext",
    "PricingLine",
    "PricingResult",
    "Shortfall",
    "Status",
]


class Status(enum.StrEnum):
    """What happened to one promotion when a cart was priced."""

    APPLIED = "applied"
    """It gave something."""
    NOT_STARTED = "not_started"
    """Its window has not opened yet."""
    EXPIRED = "expired"
    """Its window has closed (windows end exclusive)."""
    CONDITION_UNMET = "condition_unmet"
    """A condition does not hold; the explanation says what is missing."""
    LIMIT_REACHED = "limit_reached"
    """A use, unit or budget limit has nothing left for this order."""
    STOPPED_BY = "stopped_by"
    """An earlier promotion that stops the ones after it applied."""
    LOST_TO_BETTER = "lost_to_better"
    """Another promotion of its best-of group gave more."""
    NO_VALUE = "no_value"
    """It would apply, but there is nothing left to take off (it uses no limit)."""


@attrs.frozen
class Shortfall:
    """What a cart lacks to meet a promotion's condition.

    Attributes:
        units: Units to add (0 when the shortfall is money).
        amount: Money to add to the lines in scope (``None`` when the shortfall is units).

    """

    units: int = 0
    amount: Money | None = None

    def __str__(self) -> str:
        if self.amount is not None:
            return f"spend {self.amount.amount} {self.amount.currency} more"
        return f"buy {self.units} more"


@attrs.frozen
class Explanation:
    """Why a promotion did or did not apply, for people and for code.

    Attributes:
        promotion_id: The promotion.
        stage: The stage it runs in.
        status: What happened.
        reason: One sentence, e.g. ``"spend 12.00 CNY more"``.
        discount: What it took off (lines and shipping) when it applied, else zero.
        shortfall: What is missing, when a condition is unmet.
        by: The promotion that stopped it or beat it.
        limit: The limit that was reached.
        code: The coupon code, when it came with one.

    """

    promotion_id: str
    stage: Stage
    status: Status
    reason: str
    discount: Money | None = None
    shortfall: Shortfall | None = None
    by: str = ""
    limit: Limit | None = None
    code: str = ""

    @property
    def applied(self) -> bool:
        """Whether the promotion gave something."""
        return self.status is Status.APPLIED

    def __str__(self) -> str:
        return f"{self.promotion_id}: {self.status.value}: {self.reason}"


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")
    return value


@attrs.frozen
class PricingLine:
    """One line to price: a cart item or an order line, with what promotions look at.

    Attributes:
        line_id: Unique among the lines priced together.
        sku: The stock-keeping unit.
        quantity: Units (at least 1).
        unit_price: The list price of one unit, from the catalogue.
        category: The product's category.
        merchant_id: The merchant selling it.

    """

    line_id: str
    sku: str
    quantity: int
    unit_price: Money
    category: str = ""
    merchant_id: str = ""

    def __attrs_post_init__(self) -> None:
        _text("line_id", self.line_id)
        _text("sku", self.sku)
        if type(self.quantity) is not int or self.quantity < 1:
            raise InvalidInput("quantity", self.quantity, "must be a whole number of at least 1")
        if not isinstance(self.unit_price, Money) or self.unit_price.is_negative:
            raise InvalidInput("unit_price", self.unit_price, "must be Money, not negative")

    @classmethod
    def of(cls, line: OrderLine, merchant_id: str = "") -> PricingLine:
        """The pricing view of an order line (its list price; earlier discounts ignored)."""
        return cls(
            line.line_id, line.sku, line.quantity, line.unit_price, line.category, merchant_id
        )

    @property
    def list_amount(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price * self.quantity


def _to_segments(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidInput("segments", value, "pass a collection of segment names")
    return frozenset(value)


def _usage(value: Mapping[str, int] | None) -> Mapping[str, int]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(eq=False)
class PricingContext:
    """Everything pricing needs beside the lines and promotions: no clock, no I/O.

    Attributes:
        now: The time to price at (timezone-aware).
        buyer_id: The buyer; per-buyer limits are counted for them.
        segments: The buyer's segments (members, new buyers...), for :class:`BuyerIn`.
        usage: What each limit counter holds now (reserved and committed), from the
            :class:`~ecommerce_core.ports.PromotionLedger`; missing keys hold nothing.
        shipping_fee: The shipping fee before discounts (zero when omitted).
        merchant_id: The merchant of :class:`~ecommerce_core.orders.OrderLine` s priced
            directly (pricing lines carry their own).

    """

    now: datetime
    buyer_id: str = ""
    segments: frozenset[str] = attrs.field(default=frozenset(), converter=_to_segments)
    usage: Mapping[str, int] = attrs.field(default=None, converter=_usage)
    shipping_fee: Money | None = None
    merchant_id: str = ""

    def __attrs_post_init__(self) -> None:
        check_now(self.now)
        if not isinstance(self.buyer_id, str):
            raise InvalidInput("buyer_id", self.buyer_id, "must be a string")
        for key, used in self.usage.items():
            if type(used) is not int or used < 0:
                raise InvalidInput("usage", {key: used}, "each counter holds an int, not below 0")
        if self.shipping_fee is not None and (
            not isinstance(self.shipping_fee, Money) or self.shipping_fee.is_negative
        ):
            raise InvalidInput("shipping_fee", self.shipping_fee, "must be Money, not negative")


@attrs.frozen
class LineShare:
    """One line's share of an adjustment.

    Attributes:
        line_id: The line.
        amount: Its share (positive).

    """

    line_id: str
    amount: Money


@attrs.frozen
class Adjustment:
    """What one promotion took off, in total and line by line.

    Attributes:
        promotion_id: The promotion.
        stage: The stage it ran in.
        amount: The total it took off (lines and shipping).
        shares: Each line's share (they add up to ``amount`` less ``shipping``).
        shipping: What it took off the shipping fee.
        code: The coupon code, when it came with one.

    """

    promotion_id: str
    stage: Stage
    amount: Money
    shares: tuple[LineShare, ...] = ()
    shipping: Money | None = None
    code: str = ""


@attrs.frozen
class PricedLine:
    """A line after pricing: its list price and every adjustment that reached it.

    Attributes:
        line_id: The line.
        sku: The stock-keeping unit.
        quantity: Units.
        unit_price: The list price of one unit.
        category: The category.
        merchant_id: The merchant.
        adjustments: What each promotion took off this line, in the order they ran.
        discount: Their sum.

    """

    line_id: str
    sku: str
    quantity: int
    unit_price: Money
    category: str
    merchant_id: str
    adjustments: tuple[LineAdjustment, ...]
    discount: Money

    @property
    def list_amount(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price * self.quantity

    @property
    def amount(self) -> Money:
        """What the buyer pays for the line."""
        return self.list_amount - self.discount

    def to_order_line(self) -> OrderLine:
        """The order line to place, carrying the discount and its adjustments."""
        return OrderLine(
            self.line_id,
            self.sku,
            self.quantity,
            self.unit_price,
            discount=self.discount,
            category=self.category,
            adjustments=self.adjustments,
        )


@attrs.frozen
class PricingResult:
    """The outcome of pricing a cart: amounts, adjustments, explanations and claims.

    Attributes:
        currency: The currency of every amount.
        lines: The lines, in the order they were given.
        adjustments: One per promotion that applied, in the order they ran.
        entitlements: Rebates and points granted after the order.
        explanations: One per promotion considered, in the order they were evaluated.
        claims: The limit claims the result needs reserved (none for zero-value
            applications).
        shipping_fee: The shipping fee before discounts.
        shipping_discount: What promotions took off it.
        sales_mode: The sales mode of the base price (``"standard"`` when none applied).
        offer_ends_at: When the first applied promotion ends (``None`` if none ends).

    """

    currency: str
    lines: tuple[PricedLine, ...]
    adjustments: tuple[Adjustment, ...]
    entitlements: tuple[Entitlement, ...]
    explanations: tuple[Explanation, ...]
    claims: tuple[LimitClaim, ...]
    shipping_fee: Money
    shipping_discount: Money
    sales_mode: str = "standard"
    offer_ends_at: datetime | None = None

    @property
    def list_total(self) -> Money:
        """Every line at list price, plus the shipping fee: the most the buyer could owe."""
        return sum((line.list_amount for line in self.lines), self.shipping_fee)

    @property
    def subtotal(self) -> Money:
        """What the buyer pays for the lines."""
        return sum((line.amount for line in self.lines), Money.zero(self.currency))

    @property
    def shipping_total(self) -> Money:
        """What the buyer pays for shipping."""
        return self.shipping_fee - self.shipping_discount

    @property
    def discount_total(self) -> Money:
        """Everything promotions took off, lines and shipping."""
        return sum((line.discount for line in self.lines), self.shipping_discount)

    @property
    def total(self) -> Money:
        """What the buyer pays: lines after discounts plus shipping after discounts."""
        return self.subtotal + self.shipping_total

    @property
    def applied(self) -> tuple[str, ...]:
        """The ids of the promotions that applied, in the order they ran."""
        return tuple(e.promotion_id for e in self.explanations if e.applied)

    def explanation(self, promotion_id: str) -> Explanation:
        """The explanation for one promotion.

        Raises:
            NotFound: The promotion was not among those priced.

        """
        for explanation in self.explanations:
            if explanation.promotion_id == promotion_id:
                return explanation
        raise NotFound("promotion", promotion_id)

    def order_lines(self) -> list[OrderLine]:
        """The lines to place, each with its discount and adjustments stored on it."""
        return [line.to_order_line() for line in self.lines]

    def terms(self, **overrides: Any) -> PricingTerms | None:
        """The :class:`~ecommerce_core.orders.PricingTerms` to place the order with.

        ``None`` when nothing applied and nothing is claimed (the order is an ordinary one).
        ``overrides`` set what the sales campaign decides (``stock_timing``,
        ``cod_allowed``).
        """
        if not self.applied and not self.claims and not overrides:
            return None
        values: dict[str, Any] = {
            "sales_mode": self.sales_mode,
            "claims": self.claims,
            "promotion_ids": self.applied,
            "offer_ends_at": self.offer_ends_at,
            "stock_timing": StockTiming.ON_ORDER,
            "entitlements": self.entitlements,
        }
        values.update(overrides)
        return PricingTerms(**values)
