"""Exact money: integer minor units tagged with an ISO 4217 currency.

Amounts are held as an ``int`` count of minor units (cents, fen, fils), never as a float.
Arithmetic only combines amounts of one currency; there is no division, only
:meth:`Money.allocate`, which splits an amount by integer weights so the shares always add up
to the whole.
"""

from __future__ import annotations

import decimal
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from ecommerce_core._slots import twin
from ecommerce_core.errors import CurrencyMismatch, InvalidInput, UnknownCurrency

__all__ = [
    "CURRENCIES",
    "MAX_MINOR_UNITS",
    "Currency",
    "Money",
    "allocate_minor",
]

MAX_MINOR_UNITS = 10**18
"""The largest magnitude, in minor units, a :class:`Money` may hold."""

# ISO 4217 codes grouped by exponent (the number of minor-unit digits).
_CODES_BY_EXPONENT: dict[int, str] = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: (
        "AED ARS AUD BDT BGN BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR KES "
        "MAD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD "
        "ZAR"
    ),
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}

_ROUNDINGS = frozenset(mode for name, mode in vars(decimal).items() if name.startswith("ROUND_"))
# Plain decimal notation only: no exponents, underscores, spaces or non-ASCII digits.
_AMOUNT_PATTERN = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
# Wide enough that no amount below the magnitude limit is ever rounded by the context itself.
_CONTEXT = decimal.Context(prec=64, traps=[decimal.InvalidOperation, decimal.Overflow])


@attrs.frozen
class Currency:
    """An ISO 4217 currency and how many minor-unit digits it has.

    Obtain instances with :meth:`Currency.of`, which returns one shared object per code.

    Attributes:
        code: The upper-case three-letter ISO 4217 code, e.g. ``"CNY"``.
        exponent: The number of minor-unit digits (2 for CNY, 0 for JPY, 3 for KWD).

    """

    code: str
    exponent: int

    @classmethod
    def of(cls, code: object) -> Currency:
        """Look up a currency by its exact ISO 4217 code.

        Args:
            code: An upper-case three-letter code such as ``"USD"``.

        Returns:
            The shared :class:`Currency` for that code.

        Raises:
            UnknownCurrency: If ``code`` is not a ``str`` naming a known currency; lower-case
                or padded codes are not accepted.

        """
        currency = _CURRENCIES.get(code) if type(code) is str else None
        if currency is None:
            near = code.strip().upper() if isinstance(code, str) else None
            raise UnknownCurrency(code, near if near in _CURRENCIES else None)
        return currency


_CURRENCIES: dict[str, Currency] = {
    code: Currency(code, exponent)
    for exponent, codes in _CODES_BY_EXPONENT.items()
    for code in codes.split()
}
CURRENCIES: Mapping[str, Currency] = MappingProxyType(_CURRENCIES)
"""Every known currency, by code (read-only)."""


def _check_minor(_instance: object, _attribute: object, value: Any) -> None:
    if type(value) is not int:
        raise InvalidInput(
            "amount",
            value,
            "must be an int count of minor units (not a bool); floats are refused, "
            "use Money.of with a str or Decimal for major units",
        )
    if abs(value) > MAX_MINOR_UNITS:
        raise InvalidInput("amount", value, f"too large: at most {MAX_MINOR_UNITS} minor units")


def _check_currency(_instance: object, _attribute: object, value: Any) -> None:
    Currency.of(value)


def _result(minor: int, currency: str) -> Money:
    """Build the result of arithmetic on valid Money: only the magnitude can go wrong.

    Skips the constructor's validators (the int and the currency are already known good);
    arithmetic is on every hot path (totals, allocation, the ledger).
    """
    if -MAX_MINOR_UNITS <= minor <= MAX_MINOR_UNITS:
        money: Any = _new(_MONEY_TWIN)  # plain stores, then a Money (see _slots.twin)
        money.minor = minor
        money.currency = currency
        money.__class__ = Money
        return money  # type: ignore[no-any-return]  # a Money now
    raise InvalidInput("amount", minor, f"too large: at most {MAX_MINOR_UNITS} minor units")


_new = object.__new__
_ZEROS: dict[str, Money] = {}  # Money is immutable, so one zero per currency is shared


def _check_same_currency(left: Money, right: Money, operation: str) -> None:
    if left.currency != right.currency:
        raise CurrencyMismatch(left.currency, right.currency, operation)


def _parse_amount(amount: object) -> Decimal:
    if isinstance(amount, (float, bool)) or not isinstance(amount, (Decimal, str, int)):
        raise InvalidInput(
            "amount", amount, "floats are refused; pass a str such as '12.34' or a Decimal"
        )
    if isinstance(amount, str):
        if _AMOUNT_PATTERN.fullmatch(amount) is None:
            raise InvalidInput("amount", amount, "not a plain decimal number such as '12.34'")
        return Decimal(amount)
    if isinstance(amount, int):
        return Decimal(amount)
    if not amount.is_finite():
        raise InvalidInput("amount", amount, "must be a finite number")
    return amount


@attrs.frozen(slots=True, order=False, eq=True, hash=True, repr=False, str=False)
class Money:
    """An exact amount of one currency, held as integer minor units.

    Construct from minor units (``Money(1234, "CNY")`` is 12.34 CNY) or from a major-unit
    amount with :meth:`Money.of`. Instances are immutable and hashable; ``==`` compares the
    minor units and the currency, so amounts in different currencies are simply unequal.

    Attributes:
        minor: The amount in minor units; negative for a debit, e.g. after subtraction.
        currency: The ISO 4217 code of a known currency.

    Raises:
        InvalidInput: If ``minor`` is not an ``int`` (floats and bools are refused) or its
            magnitude exceeds :data:`MAX_MINOR_UNITS`.
        UnknownCurrency: If ``currency`` is not a known code.

    """

    minor: int = attrs.field(validator=_check_minor)
    currency: str = attrs.field(validator=_check_currency)

    def __init__(self, minor: int, currency: str) -> None:
        # Hand-written (attrs keeps it) because Money is built on every hot path: the common
        # case is two cheap checks; anything unusual goes through the fields' own validators,
        # which raise exactly as the generated constructor did.
        if type(minor) is not int or not -MAX_MINOR_UNITS <= minor <= MAX_MINOR_UNITS:
            _check_minor(self, None, minor)
        if type(currency) is not str or currency not in _CURRENCIES:
            _check_currency(self, None, currency)
        _set_minor(self, minor)
        _set_currency(self, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return no money in ``currency``.

        Args:
            currency: The ISO 4217 code.

        Returns:
            A zero amount.

        Raises:
            UnknownCurrency: If ``currency`` is not a known code.

        """
        zero = _ZEROS.get(currency)
        if zero is None:
            zero = _ZEROS[currency] = cls(0, currency)
        return zero

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str, rounding: str | None = None) -> Money:
        """Build money from a major-unit amount such as ``"12.34"``.

        Args:
            amount: A plain decimal string, a finite ``Decimal`` or an ``int`` of major units.
                Floats are refused: they cannot hold most decimal amounts exactly.
            currency: The ISO 4217 code.
            rounding: A ``decimal.ROUND_*`` mode used when ``amount`` has more decimal places
                than the currency allows; ``None`` refuses such amounts instead.

        Returns:
            The amount in minor units of ``currency``.

        Raises:
            InvalidInput: If ``amount`` is a float, malformed, not finite, too large, or needs
                rounding that was not asked for; or if ``rounding`` is not a known mode.
            UnknownCurrency: If ``currency`` is not a known code.

        """
        info = Currency.of(currency)
        if rounding is not None and rounding not in _ROUNDINGS:
            raise InvalidInput("rounding", rounding, "must be one of the decimal.ROUND_* modes")
        value = _parse_amount(amount)
        if value and value.adjusted() >= len(str(MAX_MINOR_UNITS)):
            raise InvalidInput(
                "amount", amount, f"too large: at most {MAX_MINOR_UNITS} minor units"
            )
        unit = Decimal(1).scaleb(-info.exponent)
        exact = value.quantize(unit, rounding=decimal.ROUND_DOWN, context=_CONTEXT)
        if exact != value:
            if rounding is None:
                raise InvalidInput(
                    "amount",
                    amount,
                    f"{info.code} has {info.exponent} decimal places; pass "
                    "rounding=decimal.ROUND_HALF_EVEN (or another decimal.ROUND_* mode) to round",
                )
            exact = value.quantize(unit, rounding=rounding, context=_CONTEXT)
        return cls(int(exact.scaleb(info.exponent, context=_CONTEXT)), info.code)

    @property
    def currency_info(self) -> Currency:
        """The :class:`Currency` of this amount."""
        return Currency.of(self.currency)

    @property
    def amount(self) -> Decimal:
        """The exact amount in major units, with the currency's number of decimal places."""
        sign, digits, _ = Decimal(self.minor).as_tuple()
        return Decimal((sign, digits, -self.currency_info.exponent))

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.minor == 0

    @property
    def is_positive(self) -> bool:
        """Whether the amount is greater than zero."""
        return self.minor > 0

    @property
    def is_negative(self) -> bool:
        """Whether the amount is less than zero."""
        return self.minor < 0

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency, "add")
        return _result(self.minor + other.minor, self.currency)

    def __radd__(self, other: object) -> Money:
        # Lets sum() start from its default int 0; any other left operand is not supported.
        if type(other) is int and other == 0:
            return self
        return NotImplemented

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if self.currency != other.currency:
            raise CurrencyMismatch(self.currency, other.currency, "subtract")
        return _result(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return _result(-self.minor, self.currency)

    def __mul__(self, other: object) -> Money:
        if type(other) is int:
            return _result(self.minor * other, self.currency)
        if isinstance(other, numbers.Number):
            raise InvalidInput("quantity", other, "money can only be multiplied by an int quantity")
        return NotImplemented

    __rmul__ = __mul__

    def _minor_to_compare(self, other: object) -> int | None:
        if not isinstance(other, Money):
            return None
        _check_same_currency(self, other, "compare")
        return other.minor

    def __lt__(self, other: object) -> bool:
        theirs = self._minor_to_compare(other)
        return NotImplemented if theirs is None else self.minor < theirs

    def __le__(self, other: object) -> bool:
        theirs = self._minor_to_compare(other)
        return NotImplemented if theirs is None else self.minor <= theirs

    def __gt__(self, other: object) -> bool:
        theirs = self._minor_to_compare(other)
        return NotImplemented if theirs is None else self.minor > theirs

    def __ge__(self, other: object) -> bool:
        theirs = self._minor_to_compare(other)
        return NotImplemented if theirs is None else self.minor >= theirs

    def __str__(self) -> str:
        # The digits of str(self.amount), from ints (pricing explains every promotion in words).
        exponent = _CURRENCIES[self.currency].exponent
        if not exponent:
            return f"{self.minor} {self.currency}"
        whole, fraction = divmod(abs(self.minor), 10**exponent)
        sign = "-" if self.minor < 0 else ""
        return f"{sign}{whole}.{fraction:0{exponent}d} {self.currency}"

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency!r})"

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        """Split this amount by integer weights so the shares add up exactly to it.

        Uses the largest-remainder method in minor units; see :func:`allocate_minor`.

        Args:
            weights: One non-negative ``int`` weight per share, with a positive sum.

        Returns:
            One share per weight, in the same order and currency.

        Raises:
            InvalidInput: If this amount is negative or the weights are invalid.

        """
        if self.minor < 0:
            raise InvalidInput("amount", self, "only a non-negative amount can be allocated")
        return [_result(share, self.currency) for share in allocate_minor(self.minor, weights)]


# The slots' own setters, past the frozen ``__setattr__``: about half the cost of
# ``object.__setattr__(money, "minor", value)``, which looks the name up and checks the type's
# setattr chain on every call. Only for values already checked (the constructor, _result).
_set_minor: Callable[[Money, int], None] = Money.__dict__["minor"].__set__
_set_currency: Callable[[Money, str], None] = Money.__dict__["currency"].__set__
_MONEY_TWIN: type = twin(Money)  # _result's builder: cheaper still than the two setters


def allocate_minor(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` units by integer weights using the largest-remainder method.

    Each share is ``floor(total * w / W)`` (``W`` the sum of weights), plus one unit for the
    shares with the largest remainders until the shares sum to ``total``. Ties go to the larger
    weight, then to the lower index, so which share a weight gets does not depend on the order
    the weights are listed in. A zero weight always gets zero.

    Args:
        total: The non-negative number of units to split.
        weights: At least one non-negative ``int`` weight (not ``bool``), with a positive sum.

    Returns:
        The shares, in the order of ``weights``, summing to ``total``.

    Raises:
        InvalidInput: If ``total`` is negative or not an ``int``, or the weights are not a
            non-empty sequence of non-negative ``int`` with a positive sum.

    """
    if type(total) is not int or total < 0:
        raise InvalidInput("total", total, "must be a non-negative int")
    if not isinstance(weights, Sequence):
        raise InvalidInput("weights", weights, "must be a sequence of ints (order matters)")
    if not weights:
        raise InvalidInput("weights", weights, "at least one weight is needed")
    if set(map(type, weights)) != {int} or min(weights) < 0:  # checked in C; then find which
        for weight in weights:
            if type(weight) is not int or weight < 0:
                raise InvalidInput("weights", weights, f"{weight!r} is not a non-negative int")
    whole = sum(weights)
    if whole == 0:
        raise InvalidInput("weights", weights, "the weights must not all be zero")
    return _allocate(total, weights, whole)


def _allocate(total: int, weights: Sequence[int], whole: int) -> list[int]:
    """:func:`allocate_minor` for checked input: weights non-negative ints summing to ``whole`` > 0.

    For callers that built the weights themselves (the pricing engine, once per promotion).
    """
    shares = [total * weight // whole for weight in weights]
    leftover = total - sum(shares)
    if leftover:
        # Rank by remainder, then weight, both largest first, as one int key per share
        # (remainder * (largest weight + 1) + weight); a stable sort keeps lower indexes
        # first among equal keys, even reversed. Sorting ints is several times cheaper than
        # sorting (remainder, weight, index) tuples, and allocation runs once per promotion.
        scale = max(weights) + 1
        keys = [total * weight % whole * scale + weight for weight in weights]
        ranked = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
        for index in ranked[:leftover]:
            shares[index] += 1
    return shares
