"""ecommerce-core: the life of an e-commerce order as pure domain objects and formal processes.

The public API is re-exported here; see ``docs/`` for concepts and examples.

Example:
    >>> from ecommerce_core import Money
    >>> str(Money.of("12.50", "CNY") * 3)
    '37.50 CNY'

"""

from __future__ import annotations

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    Conflict,
    CreditLimitExceeded,
    CurrencyMismatch,
    DefinitionError,
    EcommerceCoreError,
    Forbidden,
    GuardRefused,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    PromotionRefused,
    RuleViolation,
    TransitionNotAllowed,
    UnknownCurrency,
    VersionConflict,
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
from ecommerce_core.services import Expired, OrderService, PaymentService

__all__ = [
    "PROCESSES",
    "STANDARD_ORDER",
    "STANDARD_ORDER_PROCESS",
    "Actor",
    "ActorKind",
    "CartItem",
    "Conflict",
    "CreditLimitExceeded",
    "Currency",
    "CurrencyMismatch",
    "DefinitionError",
    "DomainEvent",
    "EcommerceCoreError",
    "Expired",
    "Forbidden",
    "GuardRefused",
    "IdempotencyConflict",
    "InvalidInput",
    "LimitExceeded",
    "LineAdjustment",
    "Money",
    "NotFound",
    "Order",
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
    "ReceiptConfirmed",
    "RuleViolation",
    "State",
    "Transition",
    "TransitionNotAllowed",
    "UnknownCurrency",
    "VersionConflict",
    "allocate_minor",
]
