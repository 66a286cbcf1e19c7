"""Pricing: promotions, coupons and the pure engine that applies them.

:func:`price` takes the cart's lines, the promotions that may apply (and the coupons the buyer
entered) and a :class:`PricingContext` (time, buyer, usage snapshot of the limits, shipping
fee), and returns a :class:`PricingResult`: every adjustment per promotion and per line, the
final amounts, one :class:`Explanation` per promotion, the entitlements granted after the order
and the limit claims to reserve. It has no side effects: price the same inputs twice and get
the same result.

See ``docs/pricing.md`` for the stages, the explanations, allocation and limits.

Example:
    >>> from datetime import UTC, datetime
    >>> from ecommerce_core.money import Money
    >>> cny = lambda amount: Money.of(amount, "CNY")
    >>> spend_100 = Promotion("spend-100-save-15", Threshold(cny("100"), cny("15")))
    >>> context = PricingContext(datetime(2026, 5, 20, tzinfo=UTC), buyer_id="alice")
    >>> lines = [PricingLine("1", "tea-01", 2, cny("38.00"))]
    >>> price(lines, [spend_100], context).explanation("spend-100-save-15").reason
    'spend 24.00 CNY more'
    >>> lines.append(PricingLine("2", "cup-01", 2, cny("25.00")))
    >>> result = price(lines, [spend_100], context)
    >>> str(result.total), [str(line.discount) for line in result.lines]
    ('111.00 CNY', ['9.05 CNY', '5.95 CNY'])

"""

from __future__ import annotations

from ecommerce_core.promotions.benefits import (
    AmountOff,
    Benefit,
    BuyXGetY,
    FixedPrice,
    FreeShipping,
    PercentOff,
    Points,
    Rebate,
    Stage,
    Threshold,
    Tier,
    Tiered,
)
from ecommerce_core.promotions.engine import limit_keys, price
from ecommerce_core.promotions.rules import (
    BuyerIn,
    Condition,
    Coupon,
    MinAmount,
    MinQuantity,
    Promotion,
    Scope,
    Stacking,
)
from ecommerce_core.promotions.values import (
    Adjustment,
    Entitlement,
    Explanation,
    LineShare,
    PricedLine,
    PricingContext,
    PricingLine,
    PricingResult,
    Shortfall,
    Status,
)

__all__ = [
    "Adjustment",
    "AmountOff",
    "Benefit",
    "BuyXGetY",
    "BuyerIn",
    "Condition",
    "Coupon",
    "Entitlement",
    "Explanation",
    "FixedPrice",
    "FreeShipping",
    "LineShare",
    "MinAmount",
    "MinQuantity",
    "PercentOff",
    "Points",
    "PricedLine",
    "PricingContext",
    "PricingLine",
    "PricingResult",
    "Promotion",
    "Rebate",
    "Scope",
    "Shortfall",
    "Stacking",
    "Stage",
    "Status",
    "Threshold",
    "Tier",
    "Tiered",
    "limit_keys",
    "price",
]
