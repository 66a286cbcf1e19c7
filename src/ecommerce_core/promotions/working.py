"""The working state of one pricing run: lines as pricing changes them, outcomes, shares.

Internal to :mod:`ecommerce_core.promotions.engine`; nothing here is public API. A working line
tracks what is left of it and which of its units promotions took: units an *exclusive*
promotion took (and what it gave on them) and units other promotions touched, so exclusivity is
kept per unit across every stage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from itertools import repeat, starmap
from operator import attrgetter
from typing import Any

import attrs

from ecommerce_core.limits import Limit, LimitClaim
from ecommerce_core.money import CURRENCIES, Money, _allocate, allocate_minor
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import LineAdjustment
from ecommerce_core.promotions.rules import (
    BuyerIn,
    Coupon,
    MinAmount,
    MinQuantity,
    Promotion,
    Scope,
)
from ecommerce_core.promotions.values import (
    Adjustment,
    Explanation,
    LineShare,
    PricedLine,
    PricingLine,
    Shortfall,
    Status,
)

# The statuses as module globals: reading a member off an enum class (``Status.APPLIED``) is
# a Python-level lookup through the enum's metaclass, about as costly as a small function
# call, and the engine compares statuses several times per promotion.
_APPLIED = Status.APPLIED
_CONDITION_UNMET = Status.CONDITION_UNMET
_LIMIT_REACHED = Status.LIMIT_REACHED
_NO_VALUE = Status.NO_VALUE


def _percent_of(amount: int, rate: Fraction) -> int:
    """``amount * rate`` rounded half up, in integers (rounded once, never per unit)."""
    return (2 * amount * rate.numerator + rate.denominator) // (2 * rate.denominator)


_new = object.__new__


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
    """A line being priced: what is left of it and which of its units are taken.

    The engine keeps what each kind of promotion may still use up to date as promotions apply
    (rather than recomputing it from the units taken on every look), so a pool is read with
    one attribute getter per list:

    * ``open_units`` / ``open_amount``: what a non-exclusive promotion may use, the units no
      exclusive promotion took and what they still cost;
    * ``free_units``: what an exclusive promotion may use, the units no promotion touched
      (their amount is ``free_units * unit``, at list price);
    * ``shared_units``: the most units one non-exclusive promotion touched.
    """

    __slots__ = (
        "adjustments",
        "discount",
        "free_units",
        "index",
        "line_id",
        "open_amount",
        "open_units",
        "qty",
        "shared_units",
        "source",
        "unit",
    )

    # Set by _Pricing for every line at once (see its __init__), not by a constructor.
    source: PricingLine
    index: int  # its place in the canonical order (by line id)
    line_id: str
    unit: int  # the list price of one unit, in minor units
    qty: int
    discount: int  # what every promotion took off it
    open_units: int  # units no exclusive promotion took
    open_amount: int  # what they cost now
    free_units: int  # units no promotion touched
    shared_units: int  # the most units one non-exclusive promotion touched
    adjustments: list[LineAdjustment]  # filled when the result is built


# Parallel lists, one entry per line (cheaper to build and to sum than a tuple per line):
_Pool = tuple[list[_Line], list[int], list[int]]  # lines, units available, amounts available
_Shares = tuple[list[_Line], list[int], list[int]]  # lines, discounts, units used


class _Offer:
    """A promotion as priced: its own, or unlocked by a coupon code.

    Besides the window and limits, it holds what the engine reads on every look at the
    promotion, worked out once per pricing run: how its scope finds its lines
    (``lookup``: the index field, or ``""`` for every line; the names to look up; whether
    the lines found still need :meth:`Scope.covers <ecommerce_core.promotions.Scope.covers>`),
    and its conditions split by when they are checked.
    """

    __slots__ = (
        "buyer_conditions",
        "code",
        "ends_at",
        "exclusive",
        "id",
        "limits",
        "lookup",
        "measure_conditions",
        "promotion",
        "starts_at",
    )

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
        self.exclusive = promotion.exclusive
        conditions = promotion.conditions
        if conditions:
            self.buyer_conditions: tuple[BuyerIn, ...] = tuple(
                c for c in conditions if isinstance(c, BuyerIn)
            )
            self.measure_conditions: tuple[MinQuantity | MinAmount, ...] = tuple(
                c for c in conditions if isinstance(c, MinQuantity | MinAmount)
            )
        else:
            self.buyer_conditions = self.measure_conditions = ()
        self.lookup = _lookup(promotion.scope)


def _lookup(scope: Scope) -> tuple[str, tuple[str, ...], bool]:
    """How a scope finds its lines: ``(index field or "", names, whether to filter)``.

    The first criterion given picks the index; the others (and the excluded SKUs) filter
    what it found. No criterion: every line, filtered only when SKUs are excluded.
    """
    skus, categories, merchants = scope.skus, scope.categories, scope.merchants
    if not (skus or categories or merchants):
        return "", (), bool(scope.exclude_skus)
    field, names = (
        ("sku", skus)
        if skus
        else ("category", categories)
        if categories
        else ("merchant_id", merchants)
    )
    criteria = bool(skus) + bool(categories) + bool(merchants)
    return field, tuple(names), criteria > 1 or bool(scope.exclude_skus)


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
        "value",
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
        self.shares = shares if shares is not None else ([], [], [])
        self.shipping = shipping
        self.entitlement = entitlement
        self.points = points
        self.units = units
        self.shortfall = shortfall
        self.limit = limit
        self.claims: list[LimitClaim] = []
        # Minor units given: line discounts, shipping and cashback (kept up to date by _cap).
        self.value = sum(self.shares[1]) + shipping + entitlement


def _spread(pool: _Pool, total: int, whole: int) -> _Shares:
    """Split ``total`` over the pool by largest remainder, weighted by what each line costs.

    ``whole`` is the sum of the pool's amounts, which :meth:`_Pricing.pool` already added up.
    """
    lines, units, weights = pool
    if total == 0:
        return lines, [0] * len(lines), units
    if whole > 0 and min(weights) >= 0:  # ints the engine computed: skip allocate_minor's checks
        shares = _largest_remainder(total, weights, whole)
    else:
        shares = allocate_minor(total, weights)
    return lines, shares, units


def _largest_remainder(total: int, weights: list[int], whole: int) -> list[int]:
    """``money._allocate(total, weights, whole)``, ranking by the remainders alone.

    ``money._allocate`` gives the leftover units to the largest remainders, then the largest
    weights, then the earlier shares, sorting one int key per share that packs remainder and
    weight (an int of several digits, slow to compare). Weights and positions only matter
    between shares whose remainders tie across the cut (the last share that gets a unit and
    the first that does not); every other share is placed by its remainder alone, a small int
    compared fast. So this sorts by remainder and, in the rare case of a tie across the cut,
    hands the whole allocation to ``money._allocate``.
    """
    products = [total * weight for weight in weights]
    shares = [product // whole for product in products]
    leftover = total - sum(shares)
    if leftover:
        remainders = [product % whole for product in products]
        ranked = sorted(range(len(remainders)), key=remainders.__getitem__, reverse=True)
        if leftover < len(ranked) and (
            remainders[ranked[leftover]] == remainders[ranked[leftover - 1]]
        ):
            return _allocate(total, weights, whole)  # a tie across the cut: weights decide
        for index in ranked[:leftover]:
            shares[index] += 1
    return shares


def _money_short(missing: int, currency: str) -> _Outcome:
    shortfall = Shortfall(amount=Money(missing, currency))
    return _Outcome(_CONDITION_UNMET, str(shortfall), shortfall=shortfall)


def _units_short(missing: int) -> _Outcome:
    return _Outcome(_CONDITION_UNMET, f"buy {missing} more", shortfall=Shortfall(missing))


# The slots of an Explanation and of an Adjustment, in the order of their constructors'
# arguments (the order the engine records their values in).
_EXPLANATION_SETTERS = tuple(
    _slot_setter(Explanation, field.name) for field in attrs.fields(Explanation)
)
_ADJUSTMENT_SETTERS = tuple(
    _slot_setter(Adjustment, field.name) for field in attrs.fields(Adjustment)
)

# The slots of a PricedLine, in the order result() sets them (hot path: one per line).
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
    """``str(Money(minor, currency))``, from the ints (no Money built, no method looked up)."""
    exponent = _EXPONENTS.get(currency)
    if exponent is None:
        exponent = _EXPONENTS[currency] = CURRENCIES[currency].exponent
    if minor < 0 or not exponent:
        return str(_money(minor, currency))
    whole, fraction = divmod(minor, _POWERS[exponent])
    return f"{whole}.{fraction:0{exponent}d} {currency}"


_EXPONENTS: dict[str, int] = {}  # the known currencies' exponents, as pricing meets them
_POWERS = {exponent: 10**exponent for exponent in range(10)}


def _limit_reached(limit: Limit, left: int) -> _Outcome:
    return _Outcome(_LIMIT_REACHED, f"{limit.describe()}: {left} left for this order", limit=limit)


def _cap(outcome: _Outcome, left: int) -> None:
    """Cap what an outcome gives at ``left`` (the rest of a budget), keeping the proportions."""
    if outcome.entitlement:
        outcome.entitlement = min(outcome.entitlement, left)
    elif outcome.shipping:
        outcome.shipping = min(outcome.shipping, left)
    else:
        lines, discounts, units = outcome.shares
        outcome.shares = (lines, allocate_minor(left, discounts), units)
    outcome.value = sum(outcome.shares[1]) + outcome.shipping + outcome.entitlement


# Attribute getters for reading one field of many working lines with ``map`` (pools).
_open_units_of = attrgetter("open_units")
_open_amount_of = attrgetter("open_amount")
_free_units_of = attrgetter("free_units")
_unit_of = attrgetter("unit")


_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend
"""Run an iterator of calls (``map(setter, objects, values)``) to its end, in C, keeping nothing."""


def _built(cls: type, count: int) -> list[Any]:
    """``count`` new instances of ``cls`` with no field set yet (set every one before use).

    ``starmap`` over ``zip``: one reused argument tuple for every call (see
    :meth:`_Pricing.result <ecommerce_core.promotions.engine._Pricing.result>`).
    """
    # starmap over zip, not map: zip hands starmap one reused argument tuple, where map would
    # pack a new one for every call of object.__new__ (which takes no vectorcall).
    return list(starmap(_new, zip(repeat(cls, count))))  # noqa: RUF058  # see above


def _from_rows(
    kind: type, setters: tuple[Callable[[Any, Any], None], ...], rows: list[tuple[Any, ...]]
) -> tuple[Any, ...]:
    """Instances of ``kind``, one per row of field values (in the order of ``setters``).

    For frozen classes that only set their fields (no validator, converter or post-init:
    the engine's rows hold values it built and checked), a column at a time, like
    :func:`_built`.
    """
    instances = _built(kind, len(rows))
    for setter, column in zip(setters, zip(*rows, strict=True), strict=False):  # no rows: none
        _consume(starmap(setter, zip(instances, column, strict=True)))
    return tuple(instances)
