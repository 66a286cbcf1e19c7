"""The after-sales vocabulary (kinds, reasons) and the policy a platform chooses."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Final

import attrs

from ecommerce_core._validation import to_member
from ecommerce_core.errors import (
    DefinitionError,
)

__all__ = [
    "MERCHANT_FAULT_REASONS",
    "UNRECEIVED_REASONS",
    "AfterSalesKind",
    "AfterSalesPolicy",
    "AfterSalesReason",
    "FailedParcelRemedy",
    "FreightRefund",
]


class AfterSalesKind(enum.StrEnum):
    """What the buyer asks for."""

    REFUND_ONLY = "refund_only"  # 仅退款
    RETURN_AND_REFUND = "return_and_refund"  # 退货退款
    EXCHANGE = "exchange"  # 换货


class AfterSalesReason(enum.StrEnum):
    """Why the buyer asks."""

    NO_REASON = "no_reason"  # 七天无理由 (or, before delivery, 不想要了)
    NOT_RECEIVED = "not_received"  # 未收到货
    DEFECTIVE = "defective"  # 质量问题
    NOT_AS_DESCRIBED = "not_as_described"  # 与描述不符 / 发错货
    DAMAGED = "damaged"  # 破损
    OTHER = "other"  # 协商一致: anything the merchant agrees to


MERCHANT_FAULT_REASONS: Final = frozenset(
    {
        AfterSalesReason.NOT_RECEIVED,
        AfterSalesReason.DEFECTIVE,
        AfterSalesReason.NOT_AS_DESCRIBED,
        AfterSalesReason.DAMAGED,
    }
)
"""Reasons that put the fault with the merchant (or its carrier), not the buyer."""

# Refund-only requests for these reasons are about units the buyer has not received.
UNRECEIVED_REASONS: Final = frozenset({AfterSalesReason.NOT_RECEIVED, AfterSalesReason.NO_REASON})


class FreightRefund(enum.StrEnum):
    """When the order's shipping fee goes back with the refund that leaves it fully refunded."""

    NEVER = "never"
    MERCHANT_FAULT = "merchant_fault"  # if the merchant is at fault, or nothing ever shipped
    ALWAYS = "always"


class FailedParcelRemedy(enum.StrEnum):
    """What happens to units a carrier lost or damaged (丢件/破损)."""

    RESHIP = "reship"  # the merchant sends them again (补发); no money moves
    REFUND = "refund"  # the platform refunds them at once (仅退款, not received)


def _to_freight_refund(value: FreightRefund | str) -> FreightRefund:
    return to_member(FreightRefund, value, "freight_refund", definition="AfterSalesPolicy")


def _to_failed_parcel(value: FailedParcelRemedy | str) -> FailedParcelRemedy:
    return to_member(FailedParcelRemedy, value, "failed_parcel", definition="AfterSalesPolicy")


@attrs.frozen
class AfterSalesPolicy:
    """The after-sales rules a platform chooses, as data.

    Defaults follow the Consumer Rights Protection Law §25 (消费者权益保护法): seven days to
    return without a reason from receipt, except made-to-order, perishable, opened digital
    goods and newspapers.

    Attributes:
        no_reason_window: How long after delivery goods may be returned without a reason.
        no_reason_excluded_categories: Product categories (``OrderLine.category``) that may
            not be returned without a reason.
        freight_refund: When the shipping fee is refunded.
        failed_parcel: What happens to units a carrier lost or damaged: reshipped by the
            merchant (the default) or refunded at once by the platform.

    Raises:
        DefinitionError: A window that is not positive, or a blank category.

    """

    no_reason_window: timedelta = timedelta(days=7)
    no_reason_excluded_categories: frozenset[str] = attrs.field(
        default=frozenset({"custom-made", "fresh", "digital", "newspaper"}), converter=frozenset
    )
    freight_refund: FreightRefund = attrs.field(
        default=FreightRefund.MERCHANT_FAULT,
        converter=_to_freight_refund,
    )
    failed_parcel: FailedParcelRemedy = attrs.field(
        default=FailedParcelRemedy.RESHIP,
        converter=_to_failed_parcel,
    )

    def __attrs_post_init__(self) -> None:
        problems = []
        if not isinstance(self.no_reason_window, timedelta) or self.no_reason_window <= timedelta(
            0
        ):
            problems.append(f"no_reason_window must be positive, got {self.no_reason_window}")
        problems.extend(
            f"excluded category {category!r} must be a non-empty string"
            for category in sorted(self.no_reason_excluded_categories, key=repr)
            if not isinstance(category, str) or not category.strip()
        )
        if problems:
            raise DefinitionError("AfterSalesPolicy", problems)
