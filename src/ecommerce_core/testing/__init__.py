"""The testing kit: contract suites that prove an adapter keeps its port's promises.

Needs the ``test`` extra (pytest and Hypothesis). See :mod:`ecommerce_core.testing.contracts`
(one contract per port), :mod:`ecommerce_core.testing.stateful` (the whole lifecycle as a
stateful test, on your adapters) and :mod:`ecommerce_core.testing.flash_sale` (a flash sale
from several processes on one SQLite file).
"""

from __future__ import annotations

from ecommerce_core.testing.contracts import (
    CONTRACT_TIME,
    AfterSalesRepositoryContract,
    CarriersContract,
    CatalogContract,
    ClockContract,
    EventPublisherContract,
    IdempotencyStoreContract,
    IdSourceContract,
    InventoryContract,
    OrderRepositoryContract,
    PaymentGatewayContract,
    PaymentGatewayFlowContract,
    PromotionCatalogContract,
    PromotionLedgerContract,
    RandomnessSourceContract,
    ShipmentRepositoryContract,
    assert_same_after_sales,
    assert_same_order,
    assert_same_shipment,
    make_order,
    make_priced_order,
    make_shipment,
    run_idempotency_store_contract,
    run_inventory_contract,
    run_promotion_ledger_contract,
)
from ecommerce_core.testing.payment_contracts import (
    CreditLinesContract,
    LedgerContract,
    PaymentRepositoryContract,
    make_payment,
    run_ledger_contract,
)

__all__ = [
    "CONTRACT_TIME",
    "AfterSalesRepositoryContract",
    "CarriersContract",
    "CatalogContract",
    "ClockContract",
    "CreditLinesContract",
    "EventPublisherContract",
    "IdSourceContract",
    "IdempotencyStoreContract",
    "InventoryContract",
    "LedgerContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "PaymentGatewayFlowContract",
    "PaymentRepositoryContract",
    "PromotionCatalogContract",
    "PromotionLedgerContract",
    "RandomnessSourceContract",
    "ShipmentRepositoryContract",
    "assert_same_after_sales",
    "assert_same_order",
    "assert_same_shipment",
    "make_order",
    "make_payment",
    "make_priced_order",
    "make_shipment",
    "run_idempotency_store_contract",
    "run_inventory_contract",
    "run_ledger_contract",
    "run_promotion_ledger_contract",
]
