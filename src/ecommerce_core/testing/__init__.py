"""The testing kit: contract suites that prove an adapter keeps its port's promises.

Needs the ``test`` extra (pytest and Hypothesis). See :mod:`ecommerce_core.testing.contracts`
(one contract per port), :mod:`ecommerce_core.testing.stateful` (the whole lifecycle as a
stateful test, on your adapters) and :mod:`ecommerce_core.testing.flash_sale` (a flash sale
from several processes on one SQLite file).
"""

from __future__ import annotations

from ecommerce_core.testing.contracts import (
    CONTRACT_TIME,
    CatalogContract,
    ClockContract,
    EventPublisherContract,
    IdempotencyStoreContract,
    IdSourceContract,
    InventoryContract,
    OrderRepositoryContract,
    PaymentGatewayContract,
    assert_same_order,
    make_order,
    run_idempotency_store_contract,
    run_inventory_contract,
)

__all__ = [
    "CONTRACT_TIME",
    "CatalogContract",
    "ClockContract",
    "EventPublisherContract",
    "IdSourceContract",
    "IdempotencyStoreContract",
    "InventoryContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "assert_same_order",
    "make_order",
    "run_idempotency_store_contract",
    "run_inventory_contract",
]
