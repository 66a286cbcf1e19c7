"""After-sales use cases: requests, the merchant's answer, returns, arbitration, refunds.

Every command loads the order's :class:`~ecommerce_core.aftersales.OrderAfterSales` (opening
it on the first request), runs the domain command, saves it with the version it loaded, then
acts on the other ports: units go back into stock, an approved refund goes to the refund
handler, and the order is brought along (an open request pauses its auto-confirm deadline;
see :meth:`FulfilmentService.follow_up
<ecommerce_core.services.fulfilment.FulfilmentService.follow_up>`). Events are published after
each save.

**The money seam.** Refunds leave through a :data:`RefundHandler`: a callable given a
:class:`~ecommerce_core.aftersales.RefundInstruction` (order, request, idempotency key, per
line units and amounts, freight, total) that answers the payment side's reference once the
money is on its way back, or ``None`` if it is not (yet): the request then waits in
``refund_approved`` and :meth:`AfterSalesService.settle_refunds` asks again. Every call for
one refund carries the same idempotency key. :func:`ledger_refunds` refunds through a
:class:`~ecommerce_core.services.PaymentService` and its ledger (the production path: per line,
from the lines' stored allocation, freight at order level); :func:`gateway_refunds` adapts a bare
:class:`~ecommerce_core.ports.PaymentGateway` for hosts without a ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.aftersales import (
    AfterSalesItem,
    AfterSalesKind,
    AfterSalesPolicy,
    AfterSalesProgressed,
    AfterSalesReason,
    AfterSalesRequest,
    AfterSalesState,
    FailedParcelRemedy,
    OrderAfterSales,
    RefundInstruction,
)
from ecommerce_core.delivery import (
    FulfilmentStatus,
    ShipmentLine,
    ShipmentPurpose,
    fulfilment_status,
)
from ecommerce_core.errors import InvalidInput, NotFound, RuleViolation, VersionConflict
from ecommerce_core.money import Money
from ecommerce_core.orders import Order
from ecommerce_core.payments.base import RefundStatus
from ecommerce_core.payments.ledger import ORDER_LEVEL
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import (
    AfterSalesRepository,
    Clock,
    EventPublisher,
    IdSource,
    Inventory,
    OrderRepository,
    PaymentGateway,
    RefundRequest,
    ShipmentRepository,
    StockItem,
)
from ecommerce_core.services.fulfilment import FulfilmentService
from ecommerce_core.services.payments import PaymentService
from ecommerce_core.services.pricing import payment_hold_id

__all__ = [
    "AfterSalesService",
    "RefundHandler",
    "gateway_refunds",
    "ledger_refunds",
]

RefundHandler = Callable[[RefundInstruction], "str | None"]
"""Gives an approved refund's money back: answers a reference when done, ``None`` if not yet."""

_SYSTEM = Actor.system("after-sales")

_Command = Callable[[OrderAfterSales, Order, FulfilmentStatus, datetime], AfterSalesRequest]


def gateway_refunds(orders: OrderRepository, gateway: PaymentGateway) -> RefundHandler:
    """A refund handler that refunds through the payment gateway that took the payment.

    Stands in until refunds go through the ledger: one gateway refund of the instruction's
    total against the order's payment, under the instruction's idempotency key.

    Raises:
        RuleViolation: (when called) the order has no payment to refund.

    """

    def refund(instruction: RefundInstruction) -> str | None:
        order = orders.get(instruction.order_id)
        if order.payment is None:
            raise RuleViolation(order.id, "refund", order.state, "the order has no payment")
        result = gateway.refund(
            RefundRequest(
                order.id, order.payment.reference, instruction.total, instruction.idempotency_key
            )
        )
        return result.transaction_id if result.succeeded else None

    return refund


def ledger_refunds(payments: PaymentService) -> RefundHandler:
    """A refund handler that refunds through the payment service and its ledger.

    Each instruction becomes one :meth:`PaymentService.refund
    <ecommerce_core.services.PaymentService.refund>` per line: every line gives back the
    amount after-sales computed from the discount allocation stored on it (never re-prorated),
    and the freight goes back as order-level money. The ledger refuses more than a line can
    still refund, so a line never gives back more than was paid for it. A refund the provider
    has not answered yet answers ``None`` (after-sales asks again with the same key); one it
    declined is asked again under a fresh key the next time. Once everything paid for the order
    has gone back, its promotion holds (coupon uses, budget, campaign quota) are released when
    the :class:`~ecommerce_core.policies.PricingPolicy` says a paid order gives them back.

    Args:
        payments: The payment service that took the order's payment.

    Raises:
        RuleViolation: (when called) nothing was paid for the order.
        InvalidInput: (when called) more than a line can still refund.

    """

    def refund(instruction: RefundInstruction) -> str | None:
        lines: dict[str, Money] = {
            line.line_id: line.amount for line in instruction.lines if line.amount.is_positive
        }
        if instruction.freight.is_positive:
            lines[ORDER_LEVEL] = instruction.freight
        if not lines:
            return f"{instruction.idempotency_key}:nothing"
        key = attempt = instruction.idempotency_key
        failed = {
            done.id.rpartition(":refund:")[2]
            for payment in payments.payments_of(instruction.order_id)
            for done in payment.refunds
            if done.status is RefundStatus.FAILED
        }
        tries = 0
        while attempt in failed:  # a declined refund is asked again under a fresh key
            tries += 1
            attempt = f"{key}#{tries}"
        result = payments.refund(
            instruction.order_id,
            _SYSTEM,
            key=attempt,
            lines=lines,
            reason=f"after-sales {instruction.request_id}",
        )
        if result.status is not RefundStatus.SUCCEEDED:
            return None
        _release_when_all_refunded(payments, instruction.order_id)
        return result.id

    return refund


def _release_when_all_refunded(payments: PaymentService, order_id: str) -> None:
    money = payments.money(order_id)
    if not money.paid_in.is_positive or money.refunded != money.paid_in:
        return
    order = payments.orders.get(order_id)
    ledger = payments.promotion_ledger
    if order.terms is None or ledger is None:
        return
    if not payments.pricing_policy.release_when_paid_order_cancelled:
        return
    ledger.release(order.id)
    ledger.release(payment_hold_id(order.id))


@attrs.define
class AfterSalesService:
    """The after-sales use cases, wired to the host's ports.

    Attributes:
        orders: Where orders are stored.
        shipments: Where shipments are stored.
        after_sales: Where each order's after-sales record is stored.
        refunds: Gives approved refunds' money back (see the module doc).
        clock: The time.
        ids: New ids (kinds ``"after-sales"`` and ``"shipment"``).
        publisher: Where events go after a save.
        inventory: Stock, for returned goods and units refunded before they shipped.
        policy: The after-sales rules (no-reason window, excluded categories, freight).
        order_policy: Order timeouts.

    """

    orders: OrderRepository
    shipments: ShipmentRepository
    after_sales: AfterSalesRepository
    refunds: RefundHandler
    clock: Clock
    ids: IdSource
    publisher: EventPublisher
    inventory: Inventory | None = None
    policy: AfterSalesPolicy = attrs.field(factory=AfterSalesPolicy)
    order_policy: OrderPolicy = attrs.field(factory=OrderPolicy)

    @property
    def fulfilment(self) -> FulfilmentService:
        """The fulfilment service over the same ports (it brings the order along)."""
        return FulfilmentService(
            orders=self.orders,
            shipments=self.shipments,
            clock=self.clock,
            ids=self.ids,
            publisher=self.publisher,
            after_sales=self.after_sales,
            inventory=self.inventory,
            policy=self.order_policy,
        )

    def record(self, order_id: str) -> OrderAfterSales:
        """The after-sales record of an order.

        Raises:
            NotFound: Nothing was ever asked on this order.

        """
        return self.after_sales.get(order_id)

    # ----------------------------------------------------------------- buyer

    def request(
        self,
        order_id: str,
        buyer: Actor,
        *,
        kind: AfterSalesKind | str,
        reason: AfterSalesReason | str,
        items: Sequence[AfterSalesItem],
        description: str = "",
    ) -> AfterSalesRequest:
        """The buyer asks for a refund, a return or an exchange of some units.

        See :meth:`OrderAfterSales.request_after_sales
        <ecommerce_core.aftersales.OrderAfterSales.request_after_sales>` for the rules and
        the errors; nothing is stored when one is raised.
        """
        request_id = self.ids.next_id("after-sales")
        return self._run(
            order_id,
            lambda record, order, status, now: record.request_after_sales(
                buyer,
                request_id=request_id,
                kind=kind,
                reason=reason,
                items=items,
                order=order,
                fulfilment=status,
                now=now,
                policy=self.policy,
                description=description,
            ),
            create=True,
        )

    def ship_back(
        self, order_id: str, request_id: str, buyer: Actor, *, carrier: str, tracking_number: str
    ) -> AfterSalesRequest:
        """The buyer sent the goods back."""
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.ship_back(
                buyer, request_id, carrier=carrier, tracking_number=tracking_number, now=now
            ),
        )

    def dispute(
        self, order_id: str, request_id: str, buyer: Actor, *, reason: str
    ) -> AfterSalesRequest:
        """The buyer disputes the merchant's rejection; the platform will rule."""
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.dispute(buyer, request_id, reason=reason, now=now),
        )

    def withdraw(self, order_id: str, request_id: str, buyer: Actor) -> AfterSalesRequest:
        """The buyer withdraws the request."""
        return self._run(
            order_id, lambda record, _o, _s, now: record.withdraw(buyer, request_id, now=now)
        )

    def close(self, order_id: str, request_id: str, actor: Actor) -> AfterSalesRequest:
        """Close a rejected request without a dispute."""
        return self._run(
            order_id, lambda record, _o, _s, now: record.close(actor, request_id, now=now)
        )

    def complete_exchange(self, order_id: str, request_id: str, actor: Actor) -> AfterSalesRequest:
        """The buyer has the replacement (the replacement's delivery scan does it too)."""
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.complete_exchange(actor, request_id, now=now),
        )

    # ----------------------------------------------------------------- merchant

    def approve(self, order_id: str, request_id: str, merchant: Actor) -> AfterSalesRequest:
        """The merchant agrees; a refund only is refunded at once."""
        return self._run(
            order_id,
            lambda record, _o, status, now: record.approve(
                merchant, request_id, fulfilment=status, now=now, policy=self.policy
            ),
        )

    def reject(
        self, order_id: str, request_id: str, merchant: Actor, *, reason: str
    ) -> AfterSalesRequest:
        """The merchant refuses, with a reason."""
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.reject(merchant, request_id, reason=reason, now=now),
        )

    def receive_return(self, order_id: str, request_id: str, merchant: Actor) -> AfterSalesRequest:
        """The merchant has the returned goods and inspects them."""
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.receive_return(merchant, request_id, now=now),
        )

    def accept_return(
        self, order_id: str, request_id: str, merchant: Actor, *, restock: bool = True
    ) -> AfterSalesRequest:
        """The returned goods pass inspection: refunded (or replaced), and restocked if fit."""
        return self._run(
            order_id,
            lambda record, _o, status, now: record.accept_return(
                merchant,
                request_id,
                restock=restock,
                fulfilment=status,
                now=now,
                policy=self.policy,
            ),
        )

    def send_replacement(
        self, order_id: str, request_id: str, merchant: Actor, *, carrier: str, tracking_number: str
    ) -> AfterSalesRequest:
        """The merchant packs and sends the replacement of an exchange.

        Raises:
            Forbidden: Not the order's merchant.
            TransitionNotAllowed: The exchange is not waiting for a replacement.
            OutOfStock: No stock for the replacement (nothing changed).
            Conflict: The tracking number is used already.

        """
        record = self.after_sales.get(order_id)
        record.ensure_can("send_replacement", merchant, request_id)
        request = record.request(request_id)
        shipment = self.fulfilment.pack_replacement(
            order_id,
            merchant,
            request_id=request_id,
            lines=[ShipmentLine(item.line_id, item.quantity) for item in request.items],
            carrier=carrier,
            tracking_number=tracking_number,
        )
        return self._run(
            order_id,
            lambda record, _o, _s, now: record.send_replacement(
                merchant, request_id, shipment_id=shipment.id, now=now
            ),
        )

    # ----------------------------------------------------------------- platform and money

    def arbitrate(
        self, order_id: str, request_id: str, platform: Actor, *, for_buyer: bool, reason: str
    ) -> AfterSalesRequest:
        """The platform rules on a dispute."""
        return self._run(
            order_id,
            lambda record, _o, status, now: record.arbitrate(
                platform,
                request_id,
                for_buyer=for_buyer,
                reason=reason,
                fulfilment=status,
                now=now,
                policy=self.policy,
            ),
        )

    def resolve_failed_parcel(
        self, order_id: str, shipment_id: str, actor: Actor | None = None
    ) -> AfterSalesRequest | None:
        """Settle a lost or damaged parcel per ``policy.failed_parcel``.

        With :attr:`~ecommerce_core.aftersales.FailedParcelRemedy.RESHIP` (the default) nothing
        happens here: the merchant sends the units again
        (:meth:`FulfilmentService.ship <ecommerce_core.services.FulfilmentService.ship>` with
        ``purpose="reshipment"``), and the order's clock stays held (``delivery:outstanding``)
        until it does. With ``REFUND`` the platform refunds the parcel's units that are still
        owed (not reshipped, not refunded yet) at once, through the refund handler, and the hold
        is lifted. Calling it again, or after a reshipment, changes nothing.

        Args:
            order_id: The order.
            shipment_id: The failed parcel.
            actor: The platform or the system (the system by default).

        Returns:
            The refund request, or ``None`` when nothing was (left) to refund.

        Raises:
            NotFound: No such order or shipment.
            InvalidInput: A shipment of another order.
            RuleViolation: The parcel has not failed, or it is an exchange's replacement.
            Forbidden: Not the platform or the system.

        """
        shipment = self.shipments.get(shipment_id)
        if shipment.order_id != order_id:
            raise InvalidInput("shipment_id", shipment_id, f"not a shipment of {order_id!r}")
        if not shipment.has_failed or shipment.purpose is ShipmentPurpose.REPLACEMENT:
            raise RuleViolation(
                shipment.id, "resolve_failed_parcel", shipment.state, "not a failed parcel"
            )
        if self.policy.failed_parcel is FailedParcelRemedy.RESHIP:
            return None
        order = self.orders.get(order_id)
        record = self._record_or_none(order_id)
        status = fulfilment_status(
            order, self.shipments.for_order(order_id), record.withdrawn if record else None
        )
        pending = record.open_requests if record else ()  # claims not refunded (withdrawn) yet
        items = []
        for line in shipment.lines:
            owed = status.shippable(line.line_id) - sum(
                r.quantity(line.line_id) for r in pending if not r.about_received_goods
            )
            if min(line.quantity, owed) > 0:
                items.append(AfterSalesItem(line.line_id, min(line.quantity, owed)))
        if not items:
            return None
        request_id = self.ids.next_id("after-sales")
        who = _SYSTEM if actor is None else actor
        return self._run(
            order_id,
            lambda record, order, status, now: record.refund_failed_parcel(
                who,
                request_id=request_id,
                items=items,
                order=order,
                fulfilment=status,
                now=now,
                policy=self.policy,
            ),
            create=True,
        )

    def _record_or_none(self, order_id: str) -> OrderAfterSales | None:
        try:
            return self.after_sales.get(order_id)
        except NotFound:
            return None

    def settle_refunds(self, order_id: str) -> list[AfterSalesRequest]:
        """Ask the refund handler again for every approved refund not yet done.

        Safe to call as often as you like (the handler sees the same idempotency keys).

        Returns:
            The requests whose refund is now done.

        """
        record = self.after_sales.get(order_id)
        settled = []
        for request in record.refunds_due:
            done = self._refund(order_id, request.request_id)
            if done is not None:
                settled.append(done)
        if settled:
            self.fulfilment.follow_up(order_id)
        return settled

    # ----------------------------------------------------------------- internals

    def _run(self, order_id: str, command: _Command, *, create: bool = False) -> AfterSalesRequest:
        order = self.orders.get(order_id)
        try:
            record = self.after_sales.get(order_id)
            new = False
        except NotFound:
            if not create:
                raise
            record, new = OrderAfterSales.open(order), True
        version = record.version
        status = fulfilment_status(order, self.shipments.for_order(order_id), record.withdrawn)
        request = command(record, order, status, self.clock.now())
        if new:
            self.after_sales.add(record)
        else:
            self.after_sales.save(record, version)
        events = record.collect_events()
        self._restock(order, events)
        self.publisher.publish(events)
        if request.state == AfterSalesState.REFUND_APPROVED:
            request = self._refund(order_id, request.request_id) or request
        self.fulfilment.follow_up(order_id)
        return request

    def _restock(self, order: Order, events: Sequence[object]) -> None:
        if self.inventory is None:
            return
        sku = {line.line_id: line.sku for line in order.lines}
        for event in events:
            if isinstance(event, AfterSalesProgressed) and event.restock:
                self.inventory.restock(
                    f"{order.id}:after-sales:{event.request_id}:{event.command}",
                    [StockItem(i.line_id, sku[i.line_id], i.quantity) for i in event.restock],
                )

    def _refund(self, order_id: str, request_id: str) -> AfterSalesRequest | None:
        """Hand an approved refund to the handler; record it done if it answers a reference.

        Returns the completed request, or ``None`` if the money is not on its way yet (or a
        concurrent writer got there first: the next :meth:`settle_refunds` finishes it).
        """
        record = self.after_sales.get(order_id)
        request = record.request(request_id)
        if request.state != AfterSalesState.REFUND_APPROVED:
            return None
        reference = self.refunds(RefundInstruction.for_request(order_id, request))
        if reference is None:
            return None
        version = record.version
        done = record.complete_refund(
            _SYSTEM, request_id, reference=reference, now=self.clock.now()
        )
        try:
            self.after_sales.save(record, version)
        except VersionConflict:
            return None
        self.publisher.publish(record.collect_events())
        return done
