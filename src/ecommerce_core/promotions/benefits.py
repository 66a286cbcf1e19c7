"""What a promotion gives, and the pricing stages it gives it in.

Benefits are plain values, checked when the promotion holding them is built: a percentage
above 0 and at most 100 (exact decimals, never floats), positive amounts, thresholds that rise.
Each has a usual :class:`Stage` and the stages it may run in.

Example:
    >>> from ecommerce_core.money import Money
    >>> Threshold(Money.of("100", "CNY"), Money.of("15", "CNY"), repeat=True).describe()
    '15.00 CNY off every 100.00 CNY spent'
    >>> PercentOff("12.5").rate
    Fraction(1, 8)

"""

from __future__ import annotations

import enum
import functools
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar, Final, cast

import attrs

from ecommerce_core.errors import DefinitionError
from ecommerce_core.money import Money

__all__ = [
    "BENEFITS",
    "AmountOff",
    "Benefit",
    "BuyXGetY",
    "FixedPrice",
    "FreeShipping",
    "PercentOff",
    "Points",
    "Rebate",
    "Stage",
    "Threshold",
    "Tier",
    "Tiered",
    "benefit_currencies",
    "check_positive_money",
    "check_whole",
    "threshold_units",
]


class Stage(enum.StrEnum):
    """The pricing stages, in the order they run; each works on what the earlier ones left."""

    BASE_PRICE = "base_price"
    """The sales-mode price (flash sale, rush purchase, team or group tier): one mode per order."""
    ITEM = "item"
    """Discounts on items: percentage or amount off, fixed price, buy X get Y."""
    ORDER = "order"
    """Discounts on the order: threshold (满减), tiers, order-level amounts, most coupons."""
    SHIPPING = "shipping"
    """Discounts on the shipping fee."""
    POST_ORDER = "post_order"
    """Entitlements granted after the order: rebates (cashback) and points."""


def _rate(value: object) -> Fraction | str:
    """Parse a percentage into a fraction of one, or return what is wrong with it."""
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
        return f"a percentage must be a str, int or Decimal (not {type(value).__name__})"
    try:
        percent = Decimal(value)
    except InvalidOperation:
        return f"a percentage must be a number, got {value!r}"
    if not percent.is_finite() or percent <= 0 or percent > 100:  # noqa: PLR2004  # 100 %
        return f"a percentage must be above 0 and at most 100, got {value}"
    return Fraction(percent) / 100


@functools.lru_cache(maxsize=1024)
def _decimal_rate(percent: Decimal) -> Fraction | str:
    return _rate(percent)


def _rate_of(percent: object) -> Fraction | str:
    """:func:`_rate`, remembered for finite decimals: pricing asks every promotion's rate."""
    if type(percent) is Decimal and percent.is_finite():
        return _decimal_rate(percent)
    return _rate(percent)


def _to_decimal(value: Any) -> Any:
    """A percentage as a Decimal when it parses exactly; anything else is left for the checks."""
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value


def _to_optional_decimal(value: Any) -> Any:
    return None if value is None else _to_decimal(value)


def _currencies(*values: object) -> set[str]:
    return {value.currency for value in values if isinstance(value, Money)}


def check_positive_money(name: str, value: object, problems: list[str]) -> None:
    """Add a problem unless ``value`` is positive Money."""
    if not isinstance(value, Money) or not value.is_positive:
        problems.append(f"{name} must be positive Money, got {value!r}")


def check_whole(name: str, value: object, least: int, problems: list[str]) -> None:
    """Add a problem unless ``value`` is an int of at least ``least``."""
    if type(value) is not int or value < least:
        problems.append(f"{name} must be an int of at least {least}, got {value!r}")


# --------------------------------------------------------------------------- benefits

_LINE_STAGES: Final = frozenset({Stage.ITEM, Stage.ORDER})


@attrs.frozen
class PercentOff:
    """Take ``percent`` off the lines in scope (rounded once, half up, then allocated)."""

    percent: Decimal = attrs.field(converter=_to_decimal)
    default_stage: ClassVar[Stage] = Stage.ITEM
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.BASE_PRICE, *_LINE_STAGES})

    @property
    def rate(self) -> Fraction:
        """The rate as a fraction of one (``Fraction(3, 20)`` for 15 %)."""
        rate = _rate_of(self.percent)
        if isinstance(rate, str):  # pragma: no cover - refused when the promotion is built
            raise DefinitionError("PercentOff", [rate])
        return rate

    def problems(self) -> list[str]:
        """What is wrong with it."""
        rate = _rate(self.percent)
        return [rate] if isinstance(rate, str) else []

    def describe(self) -> str:
        """The benefit in words."""
        return f"{Decimal(self.percent)}% off"


@attrs.frozen
class AmountOff:
    """Take ``amount`` off: once per order, or from each unit when ``per_unit``.

    Never takes a line below zero: what a line cannot absorb is not given.
    """

    amount: Money
    per_unit: bool = False
    default_stage: ClassVar[Stage] = Stage.ITEM
    stages: ClassVar[frozenset[Stage]] = _LINE_STAGES

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_positive_money("AmountOff amount", self.amount, problems)
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        return f"{self.amount} off" + (" each unit" if self.per_unit else "")


@attrs.frozen
class FixedPrice:
    """Sell each unit in scope for at most ``unit_price`` (a unit already cheaper is left)."""

    unit_price: Money
    default_stage: ClassVar[Stage] = Stage.ITEM
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.BASE_PRICE, Stage.ITEM})

    def problems(self) -> list[str]:
        """What is wrong with it."""
        if not isinstance(self.unit_price, Money) or self.unit_price.is_negative:
            return [f"a fixed price must be Money, not negative, got {self.unit_price!r}"]
        return []

    def describe(self) -> str:
        """The benefit in words."""
        return f"{self.unit_price} each"


@attrs.frozen
class BuyXGetY:
    """Buy ``buy`` units, get ``get`` more at ``percent`` off (100 = free); cheapest go free.

    Units are pooled across the lines in scope and taken ``buy + get`` at a time, at most
    ``max_applications`` times; the units used are consumed (an exclusive rule after it cannot
    use them again).
    """

    buy: int
    get: int
    percent: Decimal = attrs.field(default=Decimal(100), converter=_to_decimal)
    max_applications: int | None = None
    default_stage: ClassVar[Stage] = Stage.ITEM
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.ITEM})

    @property
    def rate(self) -> Fraction:
        """The rate off the free units as a fraction of one."""
        rate = _rate_of(self.percent)
        if isinstance(rate, str):  # pragma: no cover - refused when the promotion is built
            raise DefinitionError("BuyXGetY", [rate])
        return rate

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_whole("BuyXGetY buy", self.buy, 1, problems)
        check_whole("BuyXGetY get", self.get, 1, problems)
        if self.max_applications is not None:
            check_whole("BuyXGetY max_applications", self.max_applications, 1, problems)
        rate = _rate(self.percent)
        if isinstance(rate, str):
            problems.append(rate)
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        free = Decimal(self.percent) == 100  # noqa: PLR2004  # 100 % off is free
        off = "free" if free else f"{Decimal(self.percent)}% off"
        return f"buy {self.buy} get {self.get} {off}"


@attrs.frozen
class Threshold:
    """满减: spend at least ``spend`` on the lines in scope, get ``off`` off.

    With ``repeat``, the reduction is given once per whole multiple of ``spend`` (at most
    ``max_times``): spend 250 on "every 100, 15 off" and get 30 off.
    """

    spend: Money
    off: Money
    repeat: bool = False
    max_times: int | None = None
    default_stage: ClassVar[Stage] = Stage.ORDER
    stages: ClassVar[frozenset[Stage]] = _LINE_STAGES

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_positive_money("Threshold spend", self.spend, problems)
        check_positive_money("Threshold off", self.off, problems)
        if self.max_times is not None:
            check_whole("Threshold max_times", self.max_times, 1, problems)
            if not self.repeat:
                problems.append("max_times only makes sense with repeat=True")
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        every = "every " if self.repeat else ""
        return f"{self.off} off {every}{self.spend} spent"


@attrs.frozen
class Tier:
    """One step of a :class:`Tiered` benefit: from ``at`` (money spent or units), ``benefit``."""

    at: Money | int
    benefit: PercentOff | AmountOff


@attrs.frozen
class Tiered:
    """The highest tier reached applies: "3 units 10 % off, 5 units 20 % off".

    Tiers are measured in money spent (``Money`` thresholds) or units (``int`` thresholds) on
    the lines in scope, and must rise strictly.
    """

    tiers: tuple[Tier, ...] = attrs.field(converter=tuple[Tier, ...])
    default_stage: ClassVar[Stage] = Stage.ORDER
    stages: ClassVar[frozenset[Stage]] = _LINE_STAGES

    @property
    def by_units(self) -> bool:
        """Whether the tiers count units rather than money."""
        return bool(self.tiers) and not isinstance(self.tiers[0].at, Money)

    def problems(self) -> list[str]:
        """What is wrong with it."""
        if not self.tiers:
            return ["Tiered needs at least one tier"]
        problems: list[str] = []
        kinds = {isinstance(getattr(tier, "at", None), Money) for tier in self.tiers}
        if len(kinds) > 1:
            problems.append("tiers must all count money or all count units")
        previous: Money | int | None = None
        for tier in cast("tuple[object, ...]", self.tiers):
            if not isinstance(tier, Tier):
                problems.append(f"{tier!r} is not a Tier")
                continue
            if isinstance(tier.at, Money):
                check_positive_money("a tier's threshold", tier.at, problems)
            else:
                check_whole("a tier's threshold", tier.at, 1, problems)
            if not isinstance(tier.benefit, (PercentOff, AmountOff)) or (
                isinstance(tier.benefit, AmountOff) and tier.benefit.per_unit
            ):
                problems.append("a tier gives PercentOff or a once-per-order AmountOff")
            else:
                problems.extend(tier.benefit.problems())
            if (
                previous is not None
                and len(kinds) == 1
                and type(previous) is type(tier.at)
                and not _rises(previous, tier.at)
            ):
                problems.append("tier thresholds must rise strictly")
            previous = tier.at
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        return "; ".join(f"from {tier.at}: {tier.benefit.describe()}" for tier in self.tiers)


def threshold_units(at: Money | int) -> int:
    """A tier threshold as an int: minor units of money, or units."""
    return at.minor if isinstance(at, Money) else at


def _rises(lower: Money | int, higher: Money | int) -> bool:
    if isinstance(lower, Money) and isinstance(higher, Money):
        return lower.currency == higher.currency and higher.minor > lower.minor
    return isinstance(lower, int) and isinstance(higher, int) and higher > lower


@attrs.frozen
class FreeShipping:
    """Take the shipping fee off, or at most ``up_to`` of it (包邮)."""

    up_to: Money | None = None
    default_stage: ClassVar[Stage] = Stage.SHIPPING
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.SHIPPING})

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        if self.up_to is not None:
            check_positive_money("FreeShipping up_to", self.up_to, problems)
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        return "free shipping" if self.up_to is None else f"up to {self.up_to} off shipping"


@attrs.frozen
class Rebate:
    """Cashback (返利) granted after the order; it does not change the total.

    ``percent`` of what was paid for the lines in scope, or a fixed ``amount`` (never more than
    was paid). ``funded_by`` says who pays it out: ``"platform"`` (the default) or
    ``"merchant"``; it travels on the order's
    :class:`~ecommerce_core.orders.Entitlement`.
    """

    percent: Decimal | None = attrs.field(default=None, converter=_to_optional_decimal)
    amount: Money | None = None
    funded_by: str = "platform"
    default_stage: ClassVar[Stage] = Stage.POST_ORDER
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.POST_ORDER})

    @property
    def rate(self) -> Fraction:
        """The cashback rate as a fraction of one (for a percentage rebate)."""
        rate = _rate_of(self.percent)
        if isinstance(rate, str):  # pragma: no cover - refused when the promotion is built
            raise DefinitionError("Rebate", [rate])
        return rate

    def problems(self) -> list[str]:
        """What is wrong with it."""
        if (self.percent is None) == (self.amount is None):
            return ["a Rebate gives either a percent or an amount"]
        if self.funded_by not in ("platform", "merchant"):
            return [f"a Rebate is funded_by 'platform' or 'merchant', not {self.funded_by!r}"]
        if self.amount is not None:
            problems: list[str] = []
            check_positive_money("Rebate amount", self.amount, problems)
            return problems
        rate = _rate(self.percent)
        return [rate] if isinstance(rate, str) else []

    def describe(self) -> str:
        """The benefit in words."""
        if self.amount is not None:
            return f"{self.amount} cashback"
        return f"{Decimal(str(self.percent))}% cashback"


@attrs.frozen
class Points:
    """Loyalty points granted after the order: ``points`` for each whole ``per`` paid."""

    per: Money
    points: int = 1
    default_stage: ClassVar[Stage] = Stage.POST_ORDER
    stages: ClassVar[frozenset[Stage]] = frozenset({Stage.POST_ORDER})

    def problems(self) -> list[str]:
        """What is wrong with it."""
        problems: list[str] = []
        check_positive_money("Points per", self.per, problems)
        check_whole("Points points", self.points, 1, problems)
        return problems

    def describe(self) -> str:
        """The benefit in words."""
        return f"{self.points} points per {self.per}"


Benefit = (
    PercentOff
    | AmountOff
    | FixedPrice
    | BuyXGetY
    | Threshold
    | Tiered
    | FreeShipping
    | Rebate
    | Points
)
"""What a promotion gives."""

BENEFITS: Final = (
    PercentOff,
    AmountOff,
    FixedPrice,
    BuyXGetY,
    Threshold,
    Tiered,
    FreeShipping,
    Rebate,
    Points,
)
"""Every benefit type."""


def benefit_currencies(benefit: Benefit) -> set[str]:
    """The currencies of the amounts a benefit names."""
    if isinstance(benefit, Tiered):
        found: set[str] = set()
        for tier in benefit.tiers:
            found |= _currencies(tier.at)
            if isinstance(tier.benefit, AmountOff):
                found |= _currencies(tier.benefit.amount)
        return found
    return {
        value.currency
        for name in _money_fields(type(benefit))
        if isinstance(value := getattr(benefit, name), Money)
    }


_MONEY_FIELDS: Final = ("amount", "unit_price", "spend", "off", "up_to", "per")


_MONEY_FIELDS_OF: dict[type, tuple[str, ...]] = {}


def _money_fields(kind: type) -> tuple[str, ...]:
    """The fields of a benefit type that may hold Money, found once per type.

    (Pricing asks every promotion's currency; looking up six names on each cost more.)
    """
    found = _MONEY_FIELDS_OF.get(kind)
    if found is None:
        names = {field.name for field in attrs.fields(kind)}
        found = _MONEY_FIELDS_OF[kind] = tuple(name for name in _MONEY_FIELDS if name in names)
    return found
