"""Application services: the use cases, one method each, over the ports.

Every command follows the same steps: load the aggregate through its repository, run the
domain command (which checks actor, input and state before changing anything), save with the
version it was loaded at (a concurrent writer gets
:class:`~ecommerce_core.errors.VersionConflict`), act on the other ports, and only then publish
the events the aggregate collected.
"""

from __future__ import annotations

from ecommerce_core.services.aftersales import (
    AfterSalesService,
    RefundHandler,
    gateway_refunds,
    ledger_refunds,
)
from ecommerce_core.services.campaigns import CampaignService
from ecommerce_core.services.fulfilment import FulfilmentService, TrackingResult, delivery_fees
from ecommerce_core.services.orders import Expired, OrderService
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "AfterSalesService",
    "CampaignService",
    "Expired",
    "FulfilmentService",
    "NotificationOutcome",
    "OrderService",
    "PaymentService",
    "RefundHandler",
    "TrackingResult",
    "delivery_fees",
    "gateway_refunds",
    "ledger_refunds",
]
