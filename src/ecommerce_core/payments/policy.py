"""Payment methods and the payment policy: rates, caps, limits and periods, as plain data.

Defaults come from real platforms (``research/sales-modes-rules.md`` §7) where they publish
them: platform commission capped at 30 % (WeChat profit sharing), installments of 3, 6 or 12
periods with fees of 1.5 %, 2 % and 2.5 %, an overdue penalty of 0.05 % a day capped at the
period's principal and fee, and COD not offered for flash sales, team purchases or lucky draws.
The COD cap, the COD fee and the commission rate have no published anchor: set your own.

Example:
    >>> policy = PaymentPolicy()
    >>> policy.cod_refusal(Money.of("120.00", "CNY"), "ordinary") is None
    True
    >>> policy.cod_refusal(Money.of("120.00", "CNY"), "flash_sale")
    "cash on delivery is not offered for 'flash_sale' sales"
    >>> str(policy.commission_total(Money.of("76.00", "CNY")))
    '3.80 CNY'

"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, Final

import attrs

from ecommerce_core.errors import DefinitionError, InvalidInput
from ecommerce_core.money import Money

__all__ = [
    "MAX_COMMISSION_RATE",
    "PaymentMethod",
    "PaymentPolicy",
    "apply_rate",
]

MAX_COMMISSION_RATE: Final = Decimal("0.30")
"""The highest commission rate a policy may set (WeChat profit sharing caps it at 30 %)."""


class PaymentMethod(enum.StrEnum):
    """How the buyer pays; chosen at checkout, it picks the order's process."""

    ONLINE = "online"
    """在线支付: paid through the provider; the merchant is paid at capture."""
    ESCROW = "escrow"
    """担保交易: paid through the provider into escrow; released once receipt is confirmed."""
    COD = "cod"
    """货到付款: shipped unpaid; the carrier collects cash at the door and remits it."""
    CREDIT = "credit"
    """授信支付: a credit provider pays the merchant; the buyer repays in installments."""


def apply_rate(amount: Money, rate: Decimal, rounding: str = ROUND_HALF_UP) -> Money:
    """``amount * rate`` in whole minor units, rounded as asked (half up by default)."""
    minor = (Decimal(amount.minor) * rate).quantize(Decimal(1), rounding=rounding)
    return Money(int(minor), amount.currency)


def _mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


def _default_cod_limits() -> Mapping[str, Money]:
    return {"CNY": Money.of("5000.00", "CNY")}


def _default_fee_rates() -> Mapping[int, Decimal]:
    return {3: Decimal("0.015"), 6: Decimal("0.02"), 12: Decimal("0.025")}


@attrs.frozen(eq=False)
class PaymentPolicy:
    """Rates, caps and periods for the four payment methods.

    Attributes:
        commission_rate: The platform's cut of what the merchant is paid (at most 30 %).
        commission_caps: The most commission one order pays, per currency (none by default).
        authorization_ttl: How long an authorization holds before it lapses uncaptured.
        cod_limits: The largest order total COD accepts, per currency; a currency not listed
            cannot be paid on delivery.
        cod_excluded_sales_modes: Sales modes that may not use COD.
        cod_fee_rate: The carrier's fee on the cash it remits, paid out of the merchant's part.
        credit_fee_rates: The installment fee rate per number of periods; the keys are the
            period counts offered.
        credit_period: The time between installments; installment ``n`` is due ``n`` periods
            after the draw.
        credit_penalty_rate: The overdue penalty per full day late, on the installment's
            amount, capped at that amount.

    Raises:
        DefinitionError: A rate out of range, a cap in the wrong currency, a period that is not
            positive, or no installment option.

    """

    commission_rate: Decimal = Decimal("0.05")
    commission_caps: Mapping[str, Money] = attrs.field(factory=dict, converter=_mapping)
    authorization_ttl: timedelta = timedelta(days=7)
    cod_limits: Mapping[str, Money] = attrs.field(factory=_default_cod_limits, converter=_mapping)
    cod_excluded_sales_modes: frozenset[str] = attrs.field(
        default=frozenset({"flash_sale", "team_purchase", "lucky_draw"}), converter=frozenset
    )
    cod_fee_rate: Decimal = Decimal("0.01")
    credit_fee_rates: Mapping[int, Decimal] = attrs.field(
        factory=_default_fee_rates, converter=_mapping
    )
    credit_period: timedelta = timedelta(days=30)
    credit_penalty_rate: Decimal = Decimal("0.0005")

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        for name, rate, top in (
            ("commission_rate", self.commission_rate, MAX_COMMISSION_RATE),
            ("cod_fee_rate", self.cod_fee_rate, Decimal(1)),
            ("credit_penalty_rate", self.credit_penalty_rate, Decimal(1)),
            *((f"credit_fee_rates[{n}]", r, Decimal(1)) for n, r in self.credit_fee_rates.items()),
        ):
            if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate <= top:
                problems.append(f"{name} must be a Decimal from 0 to {top}, got {rate!r}")
        for mapping_name, mapping in (
            ("commission_caps", self.commission_caps),
            ("cod_limits", self.cod_limits),
        ):
            for code, cap in mapping.items():
                if not isinstance(cap, Money) or cap.currency != code or cap.is_negative:
                    problems.append(f"{mapping_name}[{code!r}] must be non-negative {code} Money")
        for name, period in (
            ("authorization_ttl", self.authorization_ttl),
            ("credit_period", self.credit_period),
        ):
            if period <= timedelta(0):
                problems.append(f"{name} must be positive, got {period}")
        if not self.credit_fee_rates:
            problems.append("credit_fee_rates must offer at least one number of periods")
        problems.extend(
            f"credit_fee_rates key {n!r} must be a whole number of periods from 1 to 60"
            for n in self.credit_fee_rates
            if type(n) is not int or not 1 <= n <= 60  # noqa: PLR2004  # five years, monthly
        )
        if problems:
            raise DefinitionError("PaymentPolicy", problems)

    def commission_total(self, settled_gross: Money) -> Money:
        """The commission on everything an order settled so far: the rate, rounded half up, capped.

        Commission is figured on the running total, so settling in several steps rounds once,
        not per step; each step charges the difference from what earlier steps charged.
        """
        commission = apply_rate(settled_gross, self.commission_rate)
        cap = self.commission_caps.get(settled_gross.currency)
        return commission if cap is None else min(commission, cap)

    def cod_fee_on(self, remitted: Money) -> Money:
        """The carrier's fee on cash it remits (rounded half up)."""
        return apply_rate(remitted, self.cod_fee_rate)

    def cod_refusal(self, total: Money, sales_mode: str = "ordinary") -> str | None:
        """Why an order of ``total`` sold in ``sales_mode`` may not be paid on delivery, if so."""
        if sales_mode in self.cod_excluded_sales_modes:
            return f"cash on delivery is not offered for {sales_mode!r} sales"
        limit = self.cod_limits.get(total.currency)
        if limit is None:
            return f"cash on delivery is not offered in {total.currency}"
        if total > limit:
            return f"cash on delivery is limited to {limit}; the order total is {total}"
        return None

    def credit_fee(self, principal: Money, periods: int) -> Money:
        """The installment fee on ``principal`` over ``periods`` (rounded half up).

        Raises:
            InvalidInput: ``periods`` is not one of the offered counts.

        """
        rate = self.credit_fee_rates.get(periods)
        if rate is None or type(periods) is not int:
            offered = ", ".join(str(n) for n in sorted(self.credit_fee_rates))
            raise InvalidInput("periods", periods, f"installments come in {offered} periods")
        return apply_rate(principal, rate)

    def penalty(self, amount: Money, days_late: int) -> Money:
        """The overdue penalty on an installment of ``amount`` after ``days_late`` full days.

        ``days * amount * rate``, rounded down, capped at the installment's amount.
        """
        if days_late <= 0:
            return Money.zero(amount.currency)
        return min(apply_rate(amount, self.credit_penalty_rate * days_late, ROUND_DOWN), amount)
