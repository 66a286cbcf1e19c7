"""Every process the library defines, by name: the catalogue ``ecommerce-core diagram`` draws.

Hosts that persist orders resolve a stored process name through this mapping (or their own
mapping, extended with processes they define).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ecommerce_core.aftersales import (
    EXCHANGE_PROCESS,
    REFUND_ONLY_PROCESS,
    RETURN_AND_REFUND_PROCESS,
)
from ecommerce_core.auctions import AUCTION_ORDER_PROCESS, AUCTION_PROCESS
from ecommerce_core.campaigns.group_buy import (
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GROUP_BUY_ORDER_PROCESS,
    GROUP_BUY_PROCESS,
)
from ecommerce_core.campaigns.lucky_draw import DRAW_ROUND_PROCESS, LUCKY_DRAW_ORDER_PROCESS
from ecommerce_core.campaigns.rebate import REBATE_PROCESS
from ecommerce_core.campaigns.team import TEAM_ORDER_PROCESS, TEAM_PROCESS
from ecommerce_core.delivery import SHIPMENT_PROCESS
from ecommerce_core.limits import PROMOTION_HOLD_PROCESS
from ecommerce_core.orders import STANDARD_ORDER_PROCESS
from ecommerce_core.payments import METHOD_PROCESSES, PAYMENT_PROCESSES
from ecommerce_core.process import Process

__all__ = [
    "PROCESSES",
]

PROCESSES: Final[Mapping[str, Process]] = MappingProxyType(
    {
        process.name: process
        for process in (
            STANDARD_ORDER_PROCESS,
            *METHOD_PROCESSES.values(),
            *PAYMENT_PROCESSES,
            PROMOTION_HOLD_PROCESS,
            SHIPMENT_PROCESS,
            REFUND_ONLY_PROCESS,
            RETURN_AND_REFUND_PROCESS,
            EXCHANGE_PROCESS,
            # collective sales modes and auctions: each mode's own process, and the order
            # process its orders follow
            TEAM_PROCESS,
            TEAM_ORDER_PROCESS,
            GROUP_BUY_PROCESS,
            GROUP_BUY_ORDER_PROCESS,
            GROUP_BUY_DEPOSIT_ORDER_PROCESS,
            DRAW_ROUND_PROCESS,
            LUCKY_DRAW_ORDER_PROCESS,
            REBATE_PROCESS,
            AUCTION_PROCESS,
            AUCTION_ORDER_PROCESS,
        )
    }
)
"""Every built-in process, keyed by name."""
