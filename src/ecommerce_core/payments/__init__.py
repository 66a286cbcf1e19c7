"""Payment methods on a double-entry ledger: online, escrow, cash on delivery, credit.

- :mod:`~ecommerce_core.payments.ledger`: accounts, balanced postings, per-order money views.
- :mod:`~ecommerce_core.payments.policy`: :class:`PaymentMethod` and :class:`PaymentPolicy`.
- :mod:`~ecommerce_core.payments.online`: payments through a provider (在线支付), with captures,
  refunds and provider notifications; :mod:`~ecommerce_core.payments.escrow` holds them until
  receipt is confirmed (担保交易).
- :mod:`~ecommerce_core.payments.cod`: cash on delivery (货到付款).
- :mod:`~ecommerce_core.payments.credit`: credit with installments (授信支付).

Each method picks the order's process (:data:`METHOD_PROCESSES`); the application service
:class:`~ecommerce_core.services.payments.PaymentService` runs the use cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ecommerce_core.orders import STANDARD_ORDER_PROCESS
from ecommerce_core.payments.base import PaymentRecord, Refund, RefundStatus
from ecommerce_core.payments.cod import ORDER_COD_PROCESS, PAYMENT_COD_PROCESS, CodPayment
from ecommerce_core.payments.credit import PAYMENT_CREDIT_PROCESS, CreditPayment, Installment
from ecommerce_core.payments.escrow import ORDER_ESCROW_PROCESS, EscrowPayment
from ecommerce_core.payments.ledger import (
    ORDER_LEVEL,
    Account,
    AccountKind,
    LineMoney,
    Movement,
    OrderMoney,
    Posting,
    order_money,
)
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.payments.online import PAYMENT_GATEWAY_PROCESS, Capture, GatewayPayment
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.process import Process

__all__ = [
    "METHOD_PROCESSES",
    "ORDER_LEVEL",
    "PAYMENT_PROCESSES",
    "Account",
    "AccountKind",
    "Capture",
    "CodPayment",
    "CreditPayment",
    "EscrowPayment",
    "GatewayPayment",
    "Installment",
    "LineMoney",
    "Movement",
    "Notification",
    "NotificationKind",
    "OrderMoney",
    "PaymentMethod",
    "PaymentPolicy",
    "PaymentRecord",
    "Posting",
    "Refund",
    "RefundStatus",
    "order_money",
]

METHOD_PROCESSES: Final[Mapping[PaymentMethod, Process]] = MappingProxyType(
    {
        PaymentMethod.ONLINE: STANDARD_ORDER_PROCESS,
        PaymentMethod.ESCROW: ORDER_ESCROW_PROCESS,
        PaymentMethod.COD: ORDER_COD_PROCESS,
        PaymentMethod.CREDIT: STANDARD_ORDER_PROCESS,
    }
)
"""The order process each payment method follows.

Credit changes nothing in the order's own states (the provider pays at once, like an online
payment); its lifecycle is the installment plan, ``payment.credit``.
"""

PAYMENT_PROCESSES: Final[tuple[Process, ...]] = (
    PAYMENT_GATEWAY_PROCESS,
    PAYMENT_COD_PROCESS,
    PAYMENT_CREDIT_PROCESS,
)
"""The payments' own processes."""
