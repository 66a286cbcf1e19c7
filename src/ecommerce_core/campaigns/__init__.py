"""Sales modes run as campaigns: how goods are offered beyond an ordinary sale.

A campaign sets the *base price* of what it sells (the first pricing stage, one sales mode per
order) and adds its own rules: sessions, quotas, per-buyer limits, a payment timeout, whether
cash on delivery is offered, when stock is taken. This package holds the time-boxed modes,
flash sale (秒杀) and rush purchase (抢购), in :mod:`ecommerce_core.campaigns.flash`; the
collective modes (group buying, team purchase, lucky draw, rebate) sit beside them.
"""

from __future__ import annotations

from ecommerce_core.campaigns.flash import (
    FLASH_SALE,
    RUSH_PURCHASE,
    FlashItem,
    FlashSale,
    RushItem,
    RushPurchase,
    Session,
    TimeBoxedSale,
    daily_sessions,
)

__all__ = [
    "FLASH_SALE",
    "RUSH_PURCHASE",
    "FlashItem",
    "FlashSale",
    "RushItem",
    "RushPurchase",
    "Session",
    "TimeBoxedSale",
    "daily_sessions",
]
