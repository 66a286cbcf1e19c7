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
    AlreadyJoined,
    AlreadyLeading,
    BidTooLow,
    Conflict,
    CurrencyMismatch,
    DeadlinePassed,
    DefinitionError,
    DepositRequired,
    DrawInputsMissing,
    EcommerceCoreError,
    Forbidden,
    GuardRefused,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    RuleViolation,
    TeamFull,
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
    Order,
    OrderLine,
    OrderState,
)
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.process import Process, ProcessDefinition, State, Transition
from ecommerce_core.processes import PROCESSES
from ecommerce_core.services import Expired, OrderService

__all__ = [
    "PROCESSES",
    "STANDARD_ORDER",
    "STANDARD_ORDER_PROCESS",
    "Actor",
    "ActorKind",
    "AlreadyJoined",
    "AlreadyLeading",
    "BidTooLow",
    "CartItem",
    "Conflict",
    "Currency",
    "CurrencyMismatch",
    "DeadlinePassed",
    "DefinitionError",
    "DepositRequired",
    "DomainEvent",
    "DrawInputsMissing",
    "EcommerceCoreError",
    "Expired",
    "Forbidden",
    "GuardRefused",
    "IdempotencyConflict",
    "InvalidInput",
    "LimitExceeded",
    "Money",
    "NotFound",
    "Order",
    "OrderCancelled",
    "OrderClosed",
    "OrderDelivered",
    "OrderLine",
    "OrderPaid",
    "OrderPlaced",
    "OrderPolicy",
    "OrderService",
    "OrderShipped",
    "OrderState",
    "OutOfStock",
    "PaymentNotCompleted",
    "Process",
    "ProcessDefinition",
    "ReceiptConfirmed",
    "RuleViolation",
    "State",
    "TeamFull",
    "Transition",
    "TransitionNotAllowed",
    "UnknownCurrency",
    "VersionConflict",
    "allocate_minor",
]
