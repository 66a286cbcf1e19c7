"""Delivery options: what a merchant offers, and checking the buyer's choice at placement."""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from ecommerce_core._validation import check_text as _check_text
from ecommerce_core._validation import to_member
from ecommerce_core.errors import (
    CurrencyMismatch,
    DeliveryOptionUnavailable,
    InvalidInput,
)
from ecommerce_core.money import Money

__all__ = [
    "DeliveryMethod",
    "DeliveryOption",
    "choose_delivery_option",
]


class DeliveryMethod(enum.StrEnum):
    """How the goods reach the buyer."""

    COURIER = "courier"  # 快递: delivered to the buyer's address
    PICKUP = "pickup"  # 门店自提 / 自提点: the buyer collects them


def _check_fee(_: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money) or value.is_negative:
        raise InvalidInput(attribute.name, value, "must be Money, not negative")


def _check_days(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise InvalidInput(attribute.name, value, "must be a whole number of days, 0 or more")


def _to_method(value: DeliveryMethod | str) -> DeliveryMethod:
    return to_member(DeliveryMethod, value, "method")


@attrs.frozen
class DeliveryOption:
    """One way a merchant offers to deliver an order.

    Attributes:
        option_id: Its id, unique among the options offered for one order.
        carrier: The carrier's id (``"SF"``, ``"ZTO"``, a store for pickup).
        service_level: The carrier's service (``"standard"``, ``"express"``, ``"same-day"``).
        fee: What the buyer pays for it; becomes the order's shipping fee.
        estimated_days: Days to deliver, as the carrier estimates.
        cod_supported: Whether the carrier collects cash on delivery (货到付款) with it.
        method: Courier to the door, or pickup by the buyer.

    Raises:
        InvalidInput: An empty id or carrier, a negative fee or number of days.

    """

    option_id: str = attrs.field(validator=_check_text)
    carrier: str = attrs.field(validator=_check_text)
    service_level: str = attrs.field(validator=_check_text)
    fee: Money = attrs.field(validator=_check_fee)
    estimated_days: int = attrs.field(validator=_check_days)
    cod_supported: bool = False
    method: DeliveryMethod = attrs.field(default=DeliveryMethod.COURIER, converter=_to_method)


def choose_delivery_option(
    offered: Sequence[DeliveryOption],
    chosen: str | DeliveryOption,
    *,
    currency: str,
    cash_on_delivery: bool = False,
) -> DeliveryOption:
    """Check the buyer's choice against the options offered now, and return the one to use.

    Call it when the order is placed, with the options the carrier port offers *then*: an
    option the buyer saw earlier may have been withdrawn or repriced since.

    Args:
        offered: The options offered now (from :class:`~ecommerce_core.ports.Carriers`).
        chosen: The option id, or the whole option the buyer saw (then its terms must be
            unchanged: same carrier, service, fee, days, COD and method).
        currency: The order's currency.
        cash_on_delivery: ``True`` when the buyer pays on delivery: the option must support it.

    Returns:
        The offered option; its ``fee`` is the order's shipping fee.

    Raises:
        DeliveryOptionUnavailable: Not offered, offered on other terms, or no COD when needed.
        CurrencyMismatch: The fee is in another currency than the order.
        InvalidInput: ``chosen`` is neither an id nor an option.

    Example:
        >>> sf = DeliveryOption("sf-std", "SF", "standard", Money.of("12.00", "CNY"), 2)
        >>> str(choose_delivery_option([sf], "sf-std", currency="CNY").fee)
        '12.00 CNY'

    """
    if isinstance(chosen, DeliveryOption):
        option_id = chosen.option_id
    elif isinstance(chosen, str) and chosen.strip():
        option_id = chosen
    else:
        raise InvalidInput("delivery_option", chosen, "must be an option id or a DeliveryOption")
    ids = [option.option_id for option in offered]
    match = next((option for option in offered if option.option_id == option_id), None)
    if match is None:
        raise DeliveryOptionUnavailable(option_id, ids, "it is not offered for this order")
    if isinstance(chosen, DeliveryOption) and chosen != match:
        changed = [
            f"{field.name} {getattr(chosen, field.name)} -> {getattr(match, field.name)}"
            for field in attrs.fields(DeliveryOption)
            if getattr(chosen, field.name) != getattr(match, field.name)
        ]
        raise DeliveryOptionUnavailable(option_id, ids, "its terms changed: " + ", ".join(changed))
    if cash_on_delivery and not match.cod_supported:
        raise DeliveryOptionUnavailable(option_id, ids, "it does not collect cash on delivery")
    if match.fee.currency != currency:
        raise CurrencyMismatch(currency, match.fee.currency, "charge")
    return match
