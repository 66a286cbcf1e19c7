"""ecommerce-core: the life of an e-commerce order as pure domain objects and formal processes.

The public API is re-exported here; see ``docs/`` for concepts and examples.

Example:
    >>> from ecommerce_core import Money
    >>> str(Money.of("12.50", "CNY") * 3)
    '37.50 CNY'

"""

from __future__ import annotations

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.aftersales import (
    AfterSalesItem,
    AfterSalesKind,
    AfterSalesPolicy,
    AfterSalesReason,
    AfterSalesRequest,
    FreightRefund,
    OrderAfterSales,
    RefundInstruction,
)
from ecommerce_core.delivery import (
    DeliveryMethod,
    DeliveryOption,
    Shipment,
    ShipmentLine,
    ShipmentPurpose,
    TrackingEvent,
    TrackingOutcome,
    TrackingStatus,
    choose_delivery_option,
)
from ecommerce_core.errors import (
    AlreadyRefunded,
    Conflict,
    CreditLimitExceeded,
    CurrencyMismatch,
    DefinitionError,
    DeliveryOptionUnavailable,
    EcommerceCoreError,
    Forbidden,
    GuardRefused,
    IdempotencyConflict,
    IncompatibleSchema,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    PromotionRefused,
    QuantityExceeded,
    RuleViolation,
    StorageBusy,
    TransitionNotAllowed,
    UnknownCurrency,
    VersionConflict,
    WindowClosed,
)
from ecommerce_core.events import (
    DomainEvent,
    OrderCancelled,
    OrderClosed,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ReceiptConfirmed,
)
from ecommerce_core.money import Currency, Money, allocate_minor
from ecommerce_core.orders import (
    STANDARD_ORDER,
    STANDARD_ORDER_PROCESS,
    CartItem,
    LineAdjustment,
    Order,
    OrderLine,
    OrderState,
    PricingTerms,
)
from ecommerce_core.payments import OrderMoney, PaymentMethod, PaymentPolicy
from ecommerce_core.policies import OrderPolicy, PricingPolicy
from ecommerce_core.process import Process, ProcessDefinition, State, Transition
from ecommerce_core.processes import PROCESSES
from ecommerce_core.services import (
    AfterSalesService,
    Expired,
    FulfilmentService,
    OrderService,
    PaymentService,
)

__all__ = [
    "PROCESSES",
    "STANDARD_ORDER",
    "STANDARD_ORDER_PROCESS",
    "Actor",
    "ActorKind",
    "AfterSalesItem",
    "AfterSalesKind",
    "AfterSalesPolicy",
    "AfterSalesReason",
    "AfterSalesRequest",
    "AfterSalesService",
    "AlreadyRefunded",
    "CartItem",
    "Conflict",
    "CreditLimitExceeded",
    "Currency",
    "CurrencyMismatch",
    "DefinitionError",
    "DeliveryMethod",
    "DeliveryOption",
    "DeliveryOptionUnavailable",
    "DomainEvent",
    "EcommerceCoreError",
    "Expired",
    "Forbidden",
    "FreightRefund",
    "FulfilmentService",
    "GuardRefused",
    "IdempotencyConflict",
    "IncompatibleSchema",
    "InvalidInput",
    "LimitExceeded",
    "LineAdjustment",
    "Money",
    "NotFound",
    "Order",
    "OrderAfterSales",
    "OrderCancelled",
    "OrderClosed",
    "OrderDelivered",
    "OrderLine",
    "OrderMoney",
    "OrderPaid",
    "OrderPlaced",
    "OrderPolicy",
    "OrderService",
    "OrderShipped",
    "OrderState",
    "OutOfStock",
    "PaymentMethod",
    "PaymentNotCompleted",
    "PaymentPolicy",
    "PaymentService",
    "PricingPolicy",
    "PricingTerms",
    "Process",
    "ProcessDefinition",
    "PromotionRefused",
    "QuantityExceeded",
    "ReceiptConfirmed",
    "RefundInstruction",
    "RuleViolation",
    "Shipment",
    "ShipmentLine",
    "ShipmentPurpose",
    "State",
    "StorageBusy",
    "TrackingEvent",
    "TrackingOutcome",
    "TrackingStatus",
    "Transition",
    "TransitionNotAllowed",
    "UnknownCurrency",
    "VersionConflict",
    "WindowClosed",
    "allocate_minor",
    "choose_delivery_option",
]
