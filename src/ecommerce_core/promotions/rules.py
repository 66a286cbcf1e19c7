"""Promotions as data: what they cover, when they apply, what they give, how they combine.

A :class:`Promotion` joins a **scope** (the lines it looks at), **conditions** (all must hold),
a **benefit** (what it gives), a **stage** (when, among the pricing stages, it runs), a time
window (end exclusive), **limits** (reserved, see :mod:`ecommerce_core.limits`) and its
place in **conflict resolution** (priority, exclusivity, stacking group). A :class:`Coupon`
is a code a buyer enters that unlocks a promotion, with its own validity window and limits.

Everything is checked when it is built: a negative or over-100 % rate, a window that ends
before it starts, mixed currencies, a condition that no cart could ever meet raise
:class:`~ecommerce_core.errors.DefinitionError` listing every problem. Nothing here prices
anything; :func:`ecommerce_core.promotions.price` does.

Example:
    >>> from ecommerce_core.money import Money
    >>> from ecommerce_core.promotions.benefits import PercentOff, Threshold
    >>> cny = lambda amount: Money.of(amount, "CNY")
    >>> full_reduction = Promotion("spend-100-save-15", Threshold(cny("100"), cny("15")))
    >>> full_reduction.stage
    <Stage.ORDER: 'order'>
    >>> Promotion("bad", PercentOff("120"))
    Traceback (most recent call last):
    ...
    ecommerce_core.errors.DefinitionError: invalid definition 'bad': a percentage must be ...

"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import attrs

from ecommerce_core._validation import to_member
from ecommerce_core.errors import DefinitionError
from ecommerce_core.limits import Limit, Measure
from ecommerce_core.money import Money
from ecommerce_core.promotions.benefits import (
    BENEFITS,
    Benefit,
    BuyXGetY,
    Points,
    Stage,
    Tiered,
    benefit_currencies,
    check_positive_money,
    check_whole,
    threshold_units,
)

__all__ = [
    "BuyerIn",
    "Condition",
    "Coupon",
    "MinAmount",
    "MinQuantity",
    "Promotion",
    "Scope",
    "Stacking",
]


class Stacking(enum.StrEnum):
    """How a promotion combines with the promotions after it in its stage."""

    STACK = "stack"
    """It applies and the ones after it still may."""
    STOP_AFTER = "stop_after"
    """If it applies, the ones after it (in its group, or all if it has none) do not."""
    BEST_OF_GROUP = "best_of_group"
    """Only the best of its group applies; the group competes at its first member's place."""


def _frozen_names(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value,))
    return frozenset(value)


# --------------------------------------------------------------------------- scope


@attrs.frozen
class Scope:
    """Which lines a promotion looks at. Empty sets mean "any"; all given sets must match.

    Attributes:
        skus: Only these SKUs.
        categories: Only these categories.
        merchants: Only these merchants' lines.
        exclude_skus: Never these SKUs.

    """

    skus: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)
    categories: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)
    merchants: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)
    exclude_skus: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)

    @property
    def everything(self) -> bool:
        """Whether it covers every line."""
        return not (self.skus or self.categories or self.merchants or self.exclude_skus)

    def covers(self, sku: str, category: str, merchant_id: str) -> bool:
        """Whether a line with this SKU, category and merchant is in scope."""
        return (
            (not self.skus or sku in self.skus)
            and (not self.categories or category in self.categories)
            and (not self.merchants or merchant_id in self.merchants)
            and sku not in self.exclude_skus
        )

    def problems(self) -> list[str]:
        """What makes this scope cover nothing, whatever the cart."""
        if self.skus and self.skus <= self.exclude_skus:
            return ["its scope excludes every SKU it names, so it covers nothing"]
        return []

    def describe(self) -> str:
        """The scope in words."""
        parts = [
            f"{label} {', '.join(sorted(names))}"
            for label, names in (
                ("SKUs", self.skus),
                ("categories", self.categories),
                ("merchants", self.merchants),
            )
            if names
        ]
        return " and ".join(parts) if parts else "every item"


# --------------------------------------------------------------------------- conditions


@attrs.frozen
class MinQuantity:
    """At least ``units`` units in scope ("buy 3 or more")."""

    units: int

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_whole("MinQuantity units", self.units, 1, problems)
        return problems


@attrs.frozen
class MinAmount:
    """At least ``amount`` spent on the lines in scope, after the earlier stages."""

    amount: Money

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_positive_money("MinAmount amount", self.amount, problems)
        return problems


@attrs.frozen
class BuyerIn:
    """The buyer belongs to one of ``segments`` (members, new buyers, a VIP level...)."""

    segments: frozenset[str] = attrs.field(converter=_frozen_names)

    def problems(self) -> list[str]:
        """What is wrong with it."""
        return [] if self.segments else ["BuyerIn names no segment, so no buyer qualifies"]


Condition = MinQuantity | MinAmount | BuyerIn
"""A condition a promotion needs; all of a promotion's conditions must hold."""

_CONDITIONS: Final = (MinQuantity, MinAmount, BuyerIn)


# --------------------------------------------------------------------------- promotion


def _aware(name: str, value: object, problems: list[str]) -> None:
    if value is not None and (
        not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None
    ):
        problems.append(f"{name} must be a timezone-aware datetime, got {value!r}")


def _window_problems(starts_at: object, ends_at: object, problems: list[str]) -> None:
    found: list[str] = []
    _aware("starts_at", starts_at, found)
    _aware("ends_at", ends_at, found)
    if (
        not found
        and isinstance(starts_at, datetime)
        and isinstance(ends_at, datetime)
        and ends_at <= starts_at
    ):
        found.append(f"its window must end after it starts ({starts_at}), not at {ends_at}")
    problems.extend(found)


def _default_stage(promotion: Promotion) -> Stage:
    return getattr(promotion.benefit, "default_stage", Stage.ITEM)


def _to_stage(value: Any) -> Any:
    """A stage name as a :class:`Stage`; anything else is left for the checks to report."""
    try:
        return Stage(value)
    except ValueError:
        return value


def _to_stacking(value: Stacking | str) -> Stacking:
    return to_member(Stacking, value, "stacking", definition="Promotion")


@attrs.frozen
class Promotion:
    """A promotion: scope, conditions, benefit, stage, window, limits and how it combines.

    Attributes:
        id: A unique id; it names the limits' counters and the explanations.
        benefit: What it gives.
        name: A display name.
        stage: When it runs; by default the benefit's usual stage (fixed price and percent
            off at the item stage, thresholds and tiers at the order stage...).
        scope: The lines it looks at (every line by default).
        conditions: What must hold, all of it, measured on the lines in scope.
        starts_at: When it starts (inclusive); ``None`` for always.
        ends_at: When it ends (exclusive: a promotion ending at 12:00 does not apply at 12:00).
        priority: Higher runs first within a stage; ties are broken by ``id``.
        exclusive: Its units are used by no other promotion, and it uses no unit another
            promotion touched (per unit, across stages).
        stacking: Stack, stop the ones after it, or compete for the best of its group.
        group: The stacking group (needed for best-of-group).
        limits: Uses, budget and unit limits, reserved when an order is placed.
        sales_mode: For a base-price promotion, the sales mode it sells in
            (``"flash_sale"``...); an order has one sales mode.

    Raises:
        DefinitionError: Listing every problem: bad benefit or condition, a stage the
            benefit cannot run in, a window ending before it starts, mixed currencies, a
            limit or condition no cart could ever meet.

    """

    id: str
    benefit: Benefit
    name: str = ""
    stage: Stage = attrs.field(
        default=attrs.Factory(_default_stage, takes_self=True), converter=_to_stage
    )
    scope: Scope = Scope()
    conditions: tuple[Condition, ...] = attrs.field(default=(), converter=tuple[Condition, ...])
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: int = 0
    exclusive: bool = False
    stacking: Stacking = attrs.field(default=Stacking.STACK, converter=_to_stacking)
    group: str = ""
    limits: tuple[Limit, ...] = attrs.field(default=(), converter=tuple[Limit, ...])
    sales_mode: str = ""

    def __attrs_post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise DefinitionError(str(self.id), problems)

    def _problems(self) -> list[str]:
        # The fields are typed, but hosts build promotions from stored data: check them all.
        given: Any = self
        problems: list[str] = []
        if not isinstance(given.id, str) or not given.id.strip():
            problems.append("its id must be a non-empty string")
        if not isinstance(given.benefit, BENEFITS):
            problems.append(f"{given.benefit!r} is not a benefit")
            return problems
        problems.extend(self.benefit.problems())
        if not isinstance(given.stage, Stage):
            problems.append(f"{given.stage!r} is not a stage")
        elif self.stage not in self.benefit.stages:
            allowed = ", ".join(sorted(s.value for s in self.benefit.stages))
            problems.append(
                f"{type(self.benefit).__name__} cannot run at the {self.stage} stage "
                f"(only {allowed})"
            )
        if (self.stage is Stage.BASE_PRICE) != bool(self.sales_mode):
            problems.append("a base-price promotion names its sales mode, and only it does")
        if not isinstance(given.scope, Scope):
            problems.append(f"{given.scope!r} is not a Scope")
        else:
            problems.extend(self.scope.problems())
        for condition in given.conditions:
            if isinstance(condition, _CONDITIONS):
                problems.extend(condition.problems())
            else:
                problems.append(f"{condition!r} is not a condition")
        _window_problems(self.starts_at, self.ends_at, problems)
        if type(given.priority) is not int:
            problems.append(f"its priority must be an int, got {given.priority!r}")
        if self.stacking is Stacking.BEST_OF_GROUP and not self.group:
            problems.append("best-of-group stacking needs a group")
        problems.extend(
            f"{limit!r} is not a Limit" for limit in given.limits if not isinstance(limit, Limit)
        )
        if not problems:
            problems.extend(self._currency_problems())
            problems.extend(self._unmeetable())
        return problems

    def _currency_problems(self) -> list[str]:
        found = benefit_currencies(self.benefit)
        for condition in self.conditions:
            if isinstance(condition, MinAmount):
                found.add(condition.amount.currency)
        found |= {limit.currency for limit in self.limits if limit.currency}
        if len(found) > 1:
            return [f"it mixes currencies: {', '.join(sorted(found))}"]
        if isinstance(self.benefit, Points) and any(
            limit.measure is Measure.AMOUNT for limit in self.limits
        ):
            return ["points are not money: a budget cannot limit them"]
        return []

    def _unmeetable(self) -> list[str]:
        """Conditions and limits that no cart could ever satisfy together."""
        unit_caps = [
            limit.cap
            for limit in self.limits
            if limit.measure is Measure.UNITS and not limit.until_paid
        ]
        needed = [c.units for c in self.conditions if isinstance(c, MinQuantity)]
        if isinstance(self.benefit, BuyXGetY):
            needed.append(self.benefit.buy + self.benefit.get)
        if isinstance(self.benefit, Tiered) and self.benefit.by_units:
            needed.append(min(threshold_units(t.at) for t in self.benefit.tiers))
        if unit_caps and needed and max(needed) > min(unit_caps):
            most, allowed = max(needed), min(unit_caps)
            return [f"it needs {most} units but its limits allow {allowed}: it can never be met"]
        return []

    @property
    def currency(self) -> str | None:
        """The currency its amounts are in, or ``None`` when it names no money (a percentage)."""
        found = benefit_currencies(self.benefit)
        for condition in self.conditions:
            if isinstance(condition, MinAmount):
                found.add(condition.amount.currency)
        return next(iter(found), None)

    def describe(self) -> str:
        """The promotion in words: its benefit and scope."""
        return f"{self.benefit.describe()} on {self.scope.describe()}"


@attrs.frozen
class Coupon:
    """A code a buyer enters to unlock a promotion (优惠券).

    The code's own window narrows the promotion's; its limits add to the promotion's (a
    promotion's global budget is shared by all of its codes).

    Attributes:
        code: What the buyer types.
        promotion: What it unlocks.
        starts_at: When the code becomes valid (inclusive), if it narrows the promotion's.
        ends_at: When it stops being valid (exclusive).
        max_uses: How many orders may use this code in total (1: single use).
        max_uses_per_buyer: How many orders each buyer may use it on.

    Raises:
        DefinitionError: An empty code, a cap below 1, or a validity window that ends before
            it starts or never overlaps the promotion's.

    """

    code: str
    promotion: Promotion
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_uses: int | None = None
    max_uses_per_buyer: int | None = None

    def __attrs_post_init__(self) -> None:
        given: Any = self
        problems: list[str] = []
        if not isinstance(given.code, str) or not given.code.strip():
            problems.append("a coupon code must be a non-empty string")
        if not isinstance(given.promotion, Promotion):
            problems.append(f"{given.promotion!r} is not a Promotion")
        for name, cap in (
            ("max_uses", self.max_uses),
            ("max_uses_per_buyer", self.max_uses_per_buyer),
        ):
            if cap is not None:
                check_whole(name, cap, 1, problems)
        _window_problems(self.starts_at, self.ends_at, problems)
        if not problems:
            start, end = self.window
            if start is not None and end is not None and end <= start:
                problems.append("its validity never overlaps its promotion's window")
        if problems:
            raise DefinitionError(f"coupon {self.code!r}", problems)

    @classmethod
    def single_use(cls, code: str, promotion: Promotion, **window: Any) -> Coupon:
        """A code that one order, by anyone, may use."""
        return cls(code, promotion, max_uses=1, **window)

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """When the code works: its window within the promotion's."""
        starts = [t for t in (self.starts_at, self.promotion.starts_at) if t is not None]
        ends = [t for t in (self.ends_at, self.promotion.ends_at) if t is not None]
        return (max(starts) if starts else None, min(ends) if ends else None)

    @property
    def limits(self) -> tuple[Limit, ...]:
        """The code's own limits (counted under ``coupon:CODE``)."""
        namespace = f"coupon:{self.code}"
        limits = []
        if self.max_uses is not None:
            limits.append(Limit(Measure.USES, self.max_uses, namespace=namespace))
        if self.max_uses_per_buyer is not None:
            limits.append(
                Limit(Measure.USES, self.max_uses_per_buyer, per_buyer=True, namespace=namespace)
            )
        return tuple(limits)
