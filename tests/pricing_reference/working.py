"""The working state of one pricing run: lines as pricing changes them, outcomes, shares.

Internal to :mod:`ecommerce_core.promotions.engine`; nothing here is public API. A working line
tracks what is left of it and which of its units promotions took: units an *exclusive*
promotion took (and what it gave on them) and units other promotions touched, so exclusivity is
kept per unit across every stage.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from fractions import Fraction

from ecommerce_core.limits import Limit, LimitClaim
from ecommerce_core.money import Money, _allocate, allocate_minor
from ecommerce_core.orders import LineAdjustment
from ecommerce_core.promotions.rules import Coupon, Promotion
from ecommerce_core.promotions.values import (
    LineShare,
    PricedLine,
    PricingLine,
    Shortfall,
    Status,
)


def _percent_of(amount: int, rate: Fraction) -> int:
    """``amount * rate`` rounded half up, in integers (rounded once, never per unit)."""
    return (2 * amount * rate.numerator + rate.denominator) // (2 * rate.denominator)


_new = object.__new__
_set = object.__setattr__


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The slot's own setter: sets a field of a frozen slotted class past its ``__setattr__``.

    Cheaper than ``object.__setattr__(obj, name, value)`` (no attribute lookup by name); for
    objects the engine builds from values it has already checked, on its hottest loop.
    """
    setter: Callable[[object, object], None] = cls.__dict__[name].__set__
    return setter


_money_minor = _slot_setter(Money, "minor")
_money_currency = _slot_setter(Money, "currency")
_adjustment_promotion = _slot_setter(LineAdjustment, "promotion_id")
_adjustment_stage = _slot_setter(LineAdjustment, "stage")
_adjustment_amount = _slot_setter(LineAdjustment, "amount")
_adjustment_code = _slot_setter(LineAdjustment, "code")
_share_line = _slot_setter(LineShare, "line_id")
_share_amount = _slot_setter(LineShare, "amount")


class _Line:
    """A line being priced: what is left of it and which of its units are taken."""

    __slots__ = (
        "adjustments",
        "excl_discount",
        "excl_units",
        "index",
        "line_id",
        "qty",
        "remaining",
        "shared_units",
        "source",
        "unit",
    )

    def __init__(self, source: PricingLine, index: int) -> None:
        self.source = source
        self.index = index
        self.line_id = source.line_id
        self.unit = source.unit_price.minor
        self.qty = source.quantity
        self.remaining = self.unit * self.qty
        self.excl_units = 0  # units an exclusive promotion took
        self.excl_discount = 0  # what exclusive promotions gave on those units
        self.shared_units = 0  # units other promotions touched
        self.adjustments: list[LineAdjustment] = []


_Pool = list[tuple[_Line, int, int]]  # (line, units available, amount available)
_Shares = list[tuple[_Line, int, int]]  # (line, discount, units used)


class _Offer:
    """A promotion as priced: its own, or unlocked by a coupon code."""

    __slots__ = ("code", "ends_at", "id", "limits", "promotion", "starts_at")

    def __init__(self, promotion: Promotion, coupon: Coupon | None) -> None:
        self.promotion = promotion
        self.id = promotion.id
        self.code = "" if coupon is None else coupon.code
        if coupon is None:
            self.starts_at, self.ends_at = promotion.starts_at, promotion.ends_at
            self.limits: tuple[Limit, ...] = promotion.limits
        else:
            self.starts_at, self.ends_at = coupon.window
            self.limits = (*promotion.limits, *coupon.limits)


class _Outcome:
    """What evaluating one promotion found: applied with shares, or why not."""

    __slots__ = (
        "claims",
        "entitlement",
        "limit",
        "points",
        "reason",
        "shares",
        "shipping",
        "shortfall",
        "status",
        "units",
    )

    def __init__(
        self,
        status: Status,
        reason: str = "",
        *,
        shares: _Shares | None = None,
        shipping: int = 0,
        entitlement: int = 0,
        points: int = 0,
        units: int = 0,
        shortfall: Shortfall | None = None,
        limit: Limit | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.shares = shares or []
        self.shipping = shipping
        self.entitlement = entitlement
        self.points = points
        self.units = units
        self.shortfall = shortfall
        self.limit = limit
        self.claims: list[LimitClaim] = []

    @property
    def value(self) -> int:
        """Minor units given: line discounts, shipping and cashback."""
        lines: int = sum(map(_discount_of, self.shares))
        return lines + self.shipping + self.entitlement


_discount_of = operator.itemgetter(1)  # a share's discount, read in C
_amount_of = operator.itemgetter(2)  # a pool entry's amount


def _spread(pool: _Pool, total: int) -> _Shares:
    """Split ``total`` over the pool by largest remainder, weighted by what each line costs."""
    if total == 0:
        return [(line, 0, units) for line, units, _ in pool]
    weights = list(map(_amount_of, pool))
    whole = sum(weights)
    if whole > 0 and min(weights) >= 0:  # ints the engine computed: skip allocate_minor's checks
        shares = _allocate(total, weights, whole)
    else:
        shares = allocate_minor(total, weights)
    return [(line, share, units) for (line, units, _), share in zip(pool, shares, strict=True)]


def _money_short(missing: int, currency: str) -> _Outcome:
    shortfall = Shortfall(amount=Money(missing, currency))
    return _Outcome(Status.CONDITION_UNMET, str(shortfall), shortfall=shortfall)


def _units_short(missing: int) -> _Outcome:
    return _Outcome(Status.CONDITION_UNMET, f"buy {missing} more", shortfall=Shortfall(missing))


def _priced(
    source: PricingLine, adjustments: tuple[LineAdjustment, ...], discount: Money
) -> PricedLine:
    """A :class:`PricedLine` from a valid source line and what the engine gave it (hot path)."""
    priced: PricedLine = _new(PricedLine)
    line_id, sku, quantity, unit_price, category, merchant_id, adjusted, discounted = (
        _PRICED_SETTERS
    )
    line_id(priced, source.line_id)
    sku(priced, source.sku)
    quantity(priced, source.quantity)
    unit_price(priced, source.unit_price)
    category(priced, source.category)
    merchant_id(priced, source.merchant_id)
    adjusted(priced, adjustments)
    discounted(priced, discount)
    return priced


_PRICED_SETTERS = tuple(
    _slot_setter(PricedLine, name)
    for name in (
        "line_id",
        "sku",
        "quantity",
        "unit_price",
        "category",
        "merchant_id",
        "adjustments",
        "discount",
    )
)


def _index(line: _Line) -> int:
    return line.index


def _threshold(at: Money | int) -> int:
    return at.minor if isinstance(at, Money) else at


def _amount(minor: int, currency: str) -> str:
    return str(Money(minor, currency))


def _limit_reached(limit: Limit, left: int) -> _Outcome:
    return _Outcome(
        Status.LIMIT_REACHED, f"{limit.describe()}: {left} left for this order", limit=limit
    )


def _cap(outcome: _Outcome, left: int) -> None:
    """Cap what an outcome gives at ``left`` (the rest of a budget), keeping the proportions."""
    if outcome.entitlement:
        outcome.entitlement = min(outcome.entitlement, left)
        return
    if outcome.shipping:
        outcome.shipping = min(outcome.shipping, left)
        return
    weights = [d for _, d, _ in outcome.shares]
    capped = allocate_minor(left, weights)
    outcome.shares = [
        (line, share, units) for (line, _, units), share in zip(outcome.shares, capped, strict=True)
    ]
