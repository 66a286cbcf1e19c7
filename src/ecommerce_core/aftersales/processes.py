"""The after-sales processes, one per kind, built from one base by extension."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from ecommerce_core.aftersales.policy import AfterSalesKind
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

if TYPE_CHECKING:
    from ecommerce_core.aftersales.requests import AfterSalesRequest

__all__ = [
    "AFTER_SALES_GUARDS",
    "EXCHANGE",
    "EXCHANGE_PROCESS",
    "OPEN_STATES",
    "PROCESS_FOR",
    "REFUND_ONLY",
    "REFUND_ONLY_PROCESS",
    "RELEASED_STATES",
    "RETURN_AND_REFUND",
    "RETURN_AND_REFUND_PROCESS",
    "AfterSalesState",
]


class AfterSalesState:
    """Names of the after-sales request states (plain strings, as stored)."""

    REQUESTED: Final = "requested"
    REJECTED: Final = "rejected"
    IN_ARBITRATION: Final = "in_arbitration"
    AWAITING_RETURN: Final = "awaiting_return"
    RETURNING: Final = "returning"
    RECEIVED: Final = "received"
    REFUND_APPROVED: Final = "refund_approved"
    REFUNDED: Final = "refunded"
    REPLACING: Final = "replacing"
    REPLACEMENT_SHIPPED: Final = "replacement_shipped"
    EXCHANGED: Final = "exchanged"
    WITHDRAWN: Final = "withdrawn"
    CLOSED: Final = "closed"


def _goods_returned(request: AfterSalesRequest, _: object) -> str | None:
    if request.return_received_at is None:
        return "the merchant has not received the goods back"
    return None


def _goods_not_returned(request: AfterSalesRequest, _: object) -> str | None:
    if request.return_received_at is not None:
        return "the merchant already received the goods back"
    return None


AFTER_SALES_GUARDS: Final = MappingProxyType(
    {"goods_returned": _goods_returned, "goods_not_returned": _goods_not_returned}
)
"""The guards the after-sales processes name."""

_A = AfterSalesState
REFUND_ONLY: Final = ProcessDefinition(
    name="aftersales.refund_only",
    initial=_A.REQUESTED,
    states=(
        State(_A.REQUESTED, description="申请中 waiting for the merchant"),
        State(_A.REJECTED, description="已拒绝 the merchant refused; the buyer may dispute"),
        State(_A.IN_ARBITRATION, description="平台介入 the platform decides"),
        State(_A.REFUND_APPROVED, description="退款中 approved; the money is on its way"),
        State(_A.REFUNDED, final=True, description="已退款 refunded"),
        State(_A.WITHDRAWN, final=True, description="已撤销 withdrawn by the buyer"),
        State(_A.CLOSED, final=True, description="已关闭 closed without a refund"),
    ),
    transitions=(
        Transition("approve", _A.REQUESTED, _A.REFUND_APPROVED),
        Transition("reject", _A.REQUESTED, _A.REJECTED),
        Transition("withdraw", _A.REQUESTED, _A.WITHDRAWN),
        Transition("dispute", _A.REJECTED, _A.IN_ARBITRATION),
        Transition("close", _A.REJECTED, _A.CLOSED),
        Transition("rule_for_buyer", _A.IN_ARBITRATION, _A.REFUND_APPROVED),
        Transition("rule_for_merchant", _A.IN_ARBITRATION, _A.CLOSED),
        Transition("complete_refund", _A.REFUND_APPROVED, _A.REFUNDED),
    ),
)
"""Refund only (仅退款)."""

RETURN_AND_REFUND: Final = REFUND_ONLY.extend(
    "aftersales.return_and_refund",
    states=(
        State(_A.AWAITING_RETURN, description="待退货 approved; the buyer sends the goods back"),
        State(_A.RETURNING, description="退货中 the goods are on their way back"),
        State(_A.RECEIVED, description="待验货 the merchant has them and inspects them"),
    ),
    remove_transitions=(("approve", _A.REQUESTED), ("rule_for_buyer", _A.IN_ARBITRATION)),
    transitions=(
        Transition("approve", _A.REQUESTED, _A.AWAITING_RETURN),
        Transition("withdraw", _A.AWAITING_RETURN, _A.WITHDRAWN),
        Transition("ship_back", _A.AWAITING_RETURN, _A.RETURNING),
        Transition("receive", _A.RETURNING, _A.RECEIVED),
        Transition("accept_return", _A.RECEIVED, _A.REFUND_APPROVED),
        Transition("reject", _A.RECEIVED, _A.REJECTED),
        Transition(
            "rule_for_buyer", _A.IN_ARBITRATION, _A.REFUND_APPROVED, guards="goods_returned"
        ),
        Transition(
            "rule_for_buyer", _A.IN_ARBITRATION, _A.AWAITING_RETURN, guards="goods_not_returned"
        ),
    ),
)
"""Return and refund (退货退款)."""

EXCHANGE: Final = RETURN_AND_REFUND.extend(
    "aftersales.exchange",
    remove_states=(_A.REFUND_APPROVED, _A.REFUNDED),
    states=(
        State(_A.REPLACING, description="待换货 accepted; the merchant sends a replacement"),
        State(_A.REPLACEMENT_SHIPPED, description="换货已发出 the replacement is on its way"),
        State(_A.EXCHANGED, final=True, description="已换货 the buyer has the replacement"),
    ),
    transitions=(
        Transition("accept_return", _A.RECEIVED, _A.REPLACING),
        Transition("rule_for_buyer", _A.IN_ARBITRATION, _A.REPLACING, guards="goods_returned"),
        Transition("send_replacement", _A.REPLACING, _A.REPLACEMENT_SHIPPED),
        Transition("complete_exchange", _A.REPLACEMENT_SHIPPED, _A.EXCHANGED),
    ),
)
"""Exchange (换货)."""

REFUND_ONLY_PROCESS: Final = Process(REFUND_ONLY, AFTER_SALES_GUARDS)
""":data:`REFUND_ONLY`, validated and compiled."""
RETURN_AND_REFUND_PROCESS: Final = Process(RETURN_AND_REFUND, AFTER_SALES_GUARDS)
""":data:`RETURN_AND_REFUND`, validated and compiled."""
EXCHANGE_PROCESS: Final = Process(EXCHANGE, AFTER_SALES_GUARDS)
""":data:`EXCHANGE`, validated and compiled."""

PROCESS_FOR: Final[Mapping[AfterSalesKind, Process]] = MappingProxyType(
    {
        AfterSalesKind.REFUND_ONLY: REFUND_ONLY_PROCESS,
        AfterSalesKind.RETURN_AND_REFUND: RETURN_AND_REFUND_PROCESS,
        AfterSalesKind.EXCHANGE: EXCHANGE_PROCESS,
    }
)

# A request in one of these waits on someone: the order's auto-confirm clock waits with it.
OPEN_STATES: Final = frozenset(
    {
        _A.REQUESTED,
        _A.IN_ARBITRATION,
        _A.AWAITING_RETURN,
        _A.RETURNING,
        _A.RECEIVED,
        _A.REFUND_APPROVED,
        _A.REPLACING,
        _A.REPLACEMENT_SHIPPED,
    }
)
# A request in one of these no longer claims its units.
RELEASED_STATES: Final = frozenset({_A.WITHDRAWN, _A.CLOSED, _A.EXCHANGED})
