"""The testing kit: contract suites that prove an adapter keeps its port's promises.

Needs the ``test`` extra (pytest and Hypothesis). See :mod:`ecommerce_core.testing.contracts`.
"""

from __future__ import annotations

from ecommerce_core.testing.contracts import (
    CONTRACT_TIME,
    CatalogContract,
    ClockContract,
    EventPublisherContract,
    IdSourceContract,
    InventoryContract,
    OrderRepositoryContract,
    PaymentGatewayContract,
    RandomnessSourceContract,
    assert_same_order,
    make_order,
    run_inventory_contract,
)

__all__ = [
    "CONTRACT_TIME",
    "CatalogContract",
    "ClockContract",
    "EventPublisherContract",
    "IdSourceContract",
    "InventoryContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "RandomnessSourceContract",
    "assert_same_order",
    "make_order",
    "run_inventory_contract",
]
