"""After-sales: refund only, return and refund, exchange; rejection, arbitration, windows.

An :class:`OrderAfterSales` holds every :class:`AfterSalesRequest` of one order. It is the
consistency boundary for what they claim: units returned never exceed units delivered, units
refunded never exceed units bought, and money refunded on a line never exceeds what the buyer
paid for it, however many requests come, in whatever order, concurrently (one version per
order serialises them).

Each request follows the process of its kind:

- **refund only** (仅退款, :data:`REFUND_ONLY_PROCESS`): for goods not received (or not wanted
  before they arrive), or for received goods the buyer keeps, with the merchant's consent:
  ``requested ─approve→ refund_approved ─complete_refund→ refunded``;
- **return and refund** (退货退款, :data:`RETURN_AND_REFUND_PROCESS`): ``requested ─approve→
  awaiting_return ─ship_back→ returning ─receive→ received ─accept_return→ refund_approved
  ─complete_refund→ refunded``;
- **exchange** (换货, :data:`EXCHANGE_PROCESS`): as a return, then ``received ─accept_return→
  replacing ─send_replacement→ replacement_shipped ─complete_exchange→ exchanged``.

The merchant may ``reject`` with a reason (at the request, or after inspecting the returned
goods); the buyer may then ``dispute`` it and the platform rules (``rule_for_buyer`` /
``rule_for_merchant``), or the rejection is ``close`` d. The buyer may ``withdraw`` a request
before the goods go back.

**Amounts** come from the lines: a line's amount is already net of its allocated discount, and
the refund for ``q`` of its ``Q`` units is ``q`` consecutive shares of
``line.amount.allocate([1] * Q)``, taken in the order refunds are approved, so every unit is
refunded at most once and all ``Q`` add up to the line amount exactly; nothing is re-prorated.
The shipping fee is refunded once, per :class:`AfterSalesPolicy`, with the refund that leaves
the whole order refunded.

**The money side** is not done here: an approved refund raises :class:`RefundApproved` and the
request waits in ``refund_approved`` until the payment side reports it done
(:meth:`OrderAfterSales.complete_refund`); :class:`RefundInstruction` is what it is told.
"""

from __future__ import annotations

from ecommerce_core.aftersales.policy import (
    MERCHANT_FAULT_REASONS,
    AfterSalesKind,
    AfterSalesPolicy,
    AfterSalesReason,
    FailedParcelRemedy,
    FreightRefund,
)
from ecommerce_core.aftersales.processes import (
    AFTER_SALES_GUARDS,
    EXCHANGE,
    EXCHANGE_PROCESS,
    REFUND_ONLY,
    REFUND_ONLY_PROCESS,
    RETURN_AND_REFUND,
    RETURN_AND_REFUND_PROCESS,
    AfterSalesState,
)
from ecommerce_core.aftersales.record import (
    OrderAfterSales,
    after_sales_id,
)
from ecommerce_core.aftersales.requests import (
    AfterSalesItem,
    AfterSalesProgressed,
    AfterSalesRequest,
    AfterSalesRequested,
    Decision,
    RefundApproved,
    RefundCompleted,
    RefundInstruction,
    RefundLine,
    RefundPlan,
    ReturnParcel,
    unit_shares,
)

__all__ = [
    "AFTER_SALES_GUARDS",
    "EXCHANGE",
    "EXCHANGE_PROCESS",
    "MERCHANT_FAULT_REASONS",
    "REFUND_ONLY",
    "REFUND_ONLY_PROCESS",
    "RETURN_AND_REFUND",
    "RETURN_AND_REFUND_PROCESS",
    "AfterSalesItem",
    "AfterSalesKind",
    "AfterSalesPolicy",
    "AfterSalesProgressed",
    "AfterSalesReason",
    "AfterSalesRequest",
    "AfterSalesRequested",
    "AfterSalesState",
    "Decision",
    "FailedParcelRemedy",
    "FreightRefund",
    "OrderAfterSales",
    "RefundApproved",
    "RefundCompleted",
    "RefundInstruction",
    "RefundLine",
    "RefundPlan",
    "ReturnParcel",
    "after_sales_id",
    "unit_shares",
]
