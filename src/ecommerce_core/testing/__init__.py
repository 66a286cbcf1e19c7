"""The testing kit: contract suites that prove an adapter keeps its port's promises.

Needs the ``test`` extra (pytest and Hypothesis). See :mod:`ecommerce_core.testing.contracts`.
"""

from __future__ import annotations

from ecommerce_core.testing.contracts import (
    CONTRACT_TIME,
    AfterSalesRepositoryContract,
    CarriersContract,
    CatalogContract,
    ClockContract,
    EventPublisherContract,
    IdSourceContract,
    InventoryContract,
    OrderRepositoryContract,
    PaymentGatewayContract,
    ShipmentRepositoryContract,
    assert_same_after_sales,
    assert_same_order,
    assert_same_shipment,
    make_order,
    make_shipment,
    run_inventory_contract,
)

__all__ = [
    "CONTRACT_TIME",
    "AfterSalesRepositoryContract",
    "CarriersContract",
    "CatalogContract",
    "ClockContract",
    "EventPublisherContract",
    "IdSourceContract",
    "InventoryContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "ShipmentRepositoryContract",
    "assert_same_after_sales",
    "assert_same_order",
    "assert_same_shipment",
    "make_order",
    "make_shipment",
    "run_inventory_contract",
]
