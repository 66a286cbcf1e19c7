"""Fulfilment use cases: delivery options at checkout, shipments, carrier tracking, receipt.

The order follows its shipments, never the other way round. After every change to an order's
shipments (or its after-sales), :meth:`FulfilmentService.follow_up` reloads the order and
derives what it must do:

- **ship** it when every unit still owed is in a live shipment (the last parcel of a split
  shipment ships the order; the order records that parcel's tracking number, every parcel
  keeps its own);
- **deliver** it when every unit owed has been delivered;
- **hold** its clock (:meth:`Order.pause_clock <ecommerce_core.orders.Order.pause_clock>`)
  while an after-sales request is open (``aftersales:<request id>``) or a delivery problem
  unfolds (``delivery:<shipment id>`` for a delayed, damaged or refused parcel,
  ``delivery:outstanding`` for units lost and not yet reshipped or refunded), and **lift**
  each of these holds when its cause is gone; the deadline runs again, with the time it had
  left, when the last hold on the order (its own or another component's) is lifted.

``follow_up`` is idempotent and retries on a concurrent change, so the order converges on
what its shipments and after-sales say, whoever wrote last.

Example:
    >>> from ecommerce_core.demo import demo_service
    >>> from ecommerce_core.adapters.memory import InMemoryShipmentRepository
    >>> orders, clock = demo_service()
    >>> fulfilment = FulfilmentService(
    ...     orders.orders, InMemoryShipmentRepository(), clock, orders.ids, orders.publisher
    ... )
    >>> alice, teahouse = Actor.buyer("alice"), Actor.merchant("m-teahouse")
    >>> order = orders.buy_now(alice, "tea-01", 3)
    >>> _ = orders.pay(order.id, alice)
    >>> first = fulfilment.ship(
    ...     order.id, teahouse, carrier="SF", tracking_number="SF1", lines=[ShipmentLine("1", 2)]
    ... )
    >>> orders.orders.get(order.id).state
    'awaiting_shipment'
    >>> second = fulfilment.ship(order.id, teahouse, carrier="SF", tracking_number="SF2")
    >>> orders.orders.get(order.id).state
    'shipped'
    >>> [s.tracking_number for s in fulfilment.shipments_of(order.id)]
    ['SF1', 'SF2']

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.aftersales import AfterSalesState, OrderAfterSales
from ecommerce_core.delivery import (
    DeliveryOption,
    FulfilmentStatus,
    Shipment,
    ShipmentLine,
    ShipmentPurpose,
    ShipmentState,
    TrackingEvent,
    TrackingOutcome,
    choose_delivery_option,
    fulfilment_status,
)
from ecommerce_core.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    QuantityExceeded,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import ReceiptConfirmed
from ecommerce_core.orders import Order, OrderLine, OrderState
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import (
    AfterSalesRepository,
    Carriers,
    Clock,
    EventPublisher,
    IdSource,
    Inventory,
    OrderRepository,
    ShipmentRepository,
    StockItem,
)

__all__ = [
    "AFTERSALES_HOLD",
    "DELIVERY_HOLD",
    "FulfilmentService",
    "TrackingResult",
    "delivery_fees",
    "fulfilment_holds",
]

_SYSTEM = Actor.system("fulfilment")
_FOLLOW_UP_ATTEMPTS = 3
AFTERSALES_HOLD: Final = "aftersales:"
"""Prefix of the clock hold an open after-sales request keeps: ``aftersales:<request id>``."""
DELIVERY_HOLD: Final = "delivery:"
"""Prefix of the clock hold a delivery problem keeps: ``delivery:<shipment id>``, or
``delivery:outstanding`` while units lost or sent back are neither reshipped nor refunded
(units merely not packed yet, in a split shipment, hold nothing)."""
_HOLD_PREFIXES: Final = (AFTERSALES_HOLD, DELIVERY_HOLD)


def fulfilment_holds(
    status: FulfilmentStatus, record: OrderAfterSales | None = None
) -> tuple[str, ...]:
    """The clock holds an order's shipments and after-sales call for, in a stable order.

    One hold per open after-sales request (``aftersales:<request id>``), one per shipment in a
    delivery exception (``delivery:<shipment id>``), and ``delivery:outstanding`` while units
    lost or sent back are neither reshipped nor refunded. :meth:`FulfilmentService.follow_up`
    opens exactly these on the order and lifts its own that are no longer called for, never
    another component's (a refund in flight holds ``refund:<id>`` independently).

    Args:
        status: The order's fulfilment status.
        record: Its after-sales record, if any.

    """
    holds = [f"{DELIVERY_HOLD}{shipment_id}" for shipment_id in status.exceptions]
    if status.outstanding and any(line.failed for line in status.lines.values()):
        holds.append(f"{DELIVERY_HOLD}outstanding")
    if record is not None:
        holds.extend(f"{AFTERSALES_HOLD}{r.request_id}" for r in record.open_requests)
    return tuple(holds)


def delivery_fees(
    carriers: Carriers,
    lines_by_merchant: Mapping[str, Sequence[OrderLine]],
    choices: Mapping[str, str | DeliveryOption],
    *,
    cash_on_delivery: bool = False,
) -> dict[str, DeliveryOption]:
    """Check the buyer's delivery choices at placement: one offered option per merchant.

    The checkout hook: call it with the lines grouped by merchant, just before the orders are
    placed, and pass each option's ``fee`` as that merchant's shipping fee (``shipping_fees``
    of :func:`~ecommerce_core.orders.split_by_merchant`, ``shipping_fee`` of
    :meth:`~ecommerce_core.orders.Order.place`). The options are asked for *now*, so a choice
    withdrawn or repriced since the buyer saw it is refused.

    Args:
        carriers: The carrier port.
        lines_by_merchant: The lines each merchant's order will have.
        choices: Per merchant, the option id (or the whole option the buyer saw).
        cash_on_delivery: ``True`` when the buyer pays on delivery.

    Returns:
        Per merchant, the option to use.

    Raises:
        InvalidInput: A merchant without a choice, or a choice for a merchant not in the cart.
        DeliveryOptionUnavailable: A choice not offered now on those terms.
        CurrencyMismatch: A fee in another currency than the lines.

    """
    missing = sorted(set(lines_by_merchant) - set(choices))
    if missing:
        raise InvalidInput("delivery", missing, "choose a delivery option for every merchant")
    extra = sorted(set(choices) - set(lines_by_merchant))
    if extra:
        raise InvalidInput("delivery", extra, "no lines from these merchants in the cart")
    chosen: dict[str, DeliveryOption] = {}
    for merchant_id, lines in sorted(lines_by_merchant.items()):
        currency = lines[0].unit_price.currency
        offered = carriers.delivery_options(merchant_id, lines)
        chosen[merchant_id] = choose_delivery_option(
            offered, choices[merchant_id], currency=currency, cash_on_delivery=cash_on_delivery
        )
    return chosen


@attrs.frozen
class TrackingResult:
    """What recording a tracking event did.

    Attributes:
        shipment: The shipment as it is now.
        outcome: Applied (it moved), recorded (kept in its history only), or a duplicate.

    """

    shipment: Shipment
    outcome: TrackingOutcome


@attrs.define
class FulfilmentService:
    """The fulfilment use cases, wired to the host's ports.

    Attributes:
        orders: Where orders are stored.
        shipments: Where shipments are stored.
        clock: The time.
        ids: New ids (kind ``"shipment"``).
        publisher: Where events go after a save.
        after_sales: Where after-sales records are stored; without it, refunds and open
            requests are not taken into account.
        inventory: Stock: parcels sent back are restocked, reshipments and replacements
            draw stock. Without it, stock is left alone.
        policy: Order timeouts (the auto-confirm clock starts when the order ships).

    """

    orders: OrderRepository
    shipments: ShipmentRepository
    clock: Clock
    ids: IdSource
    publisher: EventPublisher
    after_sales: AfterSalesRepository | None = None
    inventory: Inventory | None = None
    policy: OrderPolicy = attrs.field(factory=OrderPolicy)

    # ----------------------------------------------------------------- reading

    def shipments_of(self, order_id: str) -> list[Shipment]:
        """Every shipment of an order, by sequence."""
        return self.shipments.for_order(order_id)

    def status(self, order_id: str) -> FulfilmentStatus:
        """Where an order's units are (live, delivered, failed, withdrawn by refunds).

        Raises:
            NotFound: No such order.

        """
        order = self.orders.get(order_id)
        return self._status(order, self.shipments.for_order(order_id))

    # ----------------------------------------------------------------- commands

    def ship(
        self,
        order_id: str,
        merchant: Actor,
        *,
        carrier: str,
        tracking_number: str,
        lines: Sequence[ShipmentLine] | None = None,
        purpose: ShipmentPurpose | str = ShipmentPurpose.ORIGINAL,
        reference: str = "",
    ) -> Shipment:
        """The merchant packs a parcel of some (or all remaining) units of an order.

        Partial shipments are allowed; the parcel that leaves no unit unshipped ships the
        order. A reshipment sends again units of a parcel that was lost, damaged, refused or
        sent back (``reference`` names it) and draws new stock.

        Args:
            order_id: The order.
            merchant: Its merchant.
            carrier: The carrier's id.
            tracking_number: The parcel's tracking number (unique per carrier).
            lines: The lines and units in the parcel; ``None`` for every unit still to ship.
            purpose: Original (default) or reshipment; replacements come from after-sales.
            reference: For a reshipment, the failed shipment it replaces.

        Returns:
            The new shipment.

        Raises:
            NotFound: No such order (or, for a reshipment, no such shipment).
            Forbidden: Not the order's merchant.
            RuleViolation: The order is not ready to ship (unpaid, cancelled, finished), or
                a reshipment of a shipment that did not fail.
            QuantityExceeded: More units of a line than remain to ship.
            InvalidInput: Nothing left to ship, an unknown line, an empty tracking number.
            Conflict: The tracking number is used, or another parcel of this order was packed
                at the same moment (retry).
            OutOfStock: No stock for a reshipment.

        """
        order = self.orders.get(order_id)
        if (
            not isinstance(merchant, Actor)
            or merchant.kind is not ActorKind.MERCHANT
            or merchant.id != order.merchant_id
        ):
            raise Forbidden(str(merchant), "ship", order.id, "only the order's merchant ships it")
        purpose = ShipmentPurpose(purpose)
        existing = self.shipments.for_order(order_id)
        status = self._status(order, existing)
        self._check_ready(order, purpose, reference, existing)
        parcel = self._parcel(order, status, lines)
        now = self.clock.now()
        shipment = Shipment.create(
            shipment_id=self.ids.next_id("shipment"),
            order=order,
            sequence=max((s.sequence for s in existing), default=0) + 1,
            actor=merchant,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=parcel,
            now=now,
            purpose=purpose,
            reference=reference,
        )
        self._add(order, shipment)
        self.publisher.publish(shipment.collect_events())
        self.follow_up(order_id)
        return shipment

    def pack_replacement(
        self,
        order_id: str,
        merchant: Actor,
        *,
        request_id: str,
        lines: Sequence[ShipmentLine],
        carrier: str,
        tracking_number: str,
    ) -> Shipment:
        """Pack the replacement of an exchange (used by the after-sales service).

        It draws new stock, and does not count towards the order's own units.

        Raises:
            Forbidden: Not the order's merchant.
            Conflict: The tracking number is used, or a concurrent parcel took the sequence.
            OutOfStock: No stock for the replacement.

        """
        order = self.orders.get(order_id)
        existing = self.shipments.for_order(order_id)
        shipment = Shipment.create(
            shipment_id=self.ids.next_id("shipment"),
            order=order,
            sequence=max((s.sequence for s in existing), default=0) + 1,
            actor=merchant,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=lines,
            now=self.clock.now(),
            purpose=ShipmentPurpose.REPLACEMENT,
            reference=request_id,
        )
        self._add(order, shipment)
        self.publisher.publish(shipment.collect_events())
        return shipment

    def record_tracking(
        self, event: TrackingEvent, actor: Actor | None = None, *, order_id: str | None = None
    ) -> TrackingResult:
        """Record a carrier's tracking event on its shipment, then bring the order along.

        Safe to call with every delivery of a webhook: a repeat is a no-op, a late or
        backward event is kept in the history and moves nothing.

        Args:
            event: The carrier's report.
            actor: Who reports it (the event's carrier by default).
            order_id: The order the report claims to be about, if the carrier says.

        Raises:
            NotFound: No shipment has this carrier and tracking number.
            Forbidden: A report about another order's shipment, or from another carrier.
            IdempotencyConflict: The event id was recorded with a different payload.
            InvalidInput: An event dated too far in the future.
            VersionConflict: The shipment changed meanwhile (the carrier will retry).

        """
        if not isinstance(event, TrackingEvent):
            raise InvalidInput("event", event, "must be a TrackingEvent")
        shipment = self.shipments.by_tracking_number(event.carrier, event.tracking_number)
        version = shipment.version
        who = Actor.carrier(event.carrier) if actor is None else actor
        outcome = shipment.record(event, actor=who, now=self.clock.now(), order_id=order_id)
        if outcome is TrackingOutcome.DUPLICATE:
            return TrackingResult(shipment, outcome)
        self.shipments.save(shipment, version)
        self.publisher.publish(shipment.collect_events())
        if outcome is TrackingOutcome.APPLIED:
            if shipment.state == ShipmentState.RETURNED_TO_SENDER:
                self._restock_returned(shipment)
            if shipment.is_delivered and shipment.purpose is ShipmentPurpose.REPLACEMENT:
                self._complete_exchange(shipment)
            self.follow_up(shipment.order_id, who)
        return TrackingResult(shipment, outcome)

    def confirm_receipt(self, order_id: str, buyer: Actor) -> Order:
        """The buyer confirms receipt: the order completes, its moving parcels are delivered.

        Raises:
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: Not shipped or delivered (a second confirmation included).

        """
        order = self.orders.get(order_id)
        version = order.version
        now = self.clock.now()
        order.confirm_receipt(buyer, now=now, policy=self.policy)
        self.orders.save(order, version)
        self.publisher.publish(order.collect_events())
        self._receive_parcels(order_id, buyer, now)
        return order

    def extend_auto_confirm(self, order_id: str, buyer: Actor) -> Order:
        """The buyer extends the auto-confirm deadline (延长收货) by the policy's fixed length.

        Raises:
            NotFound: No such order.
            Forbidden: Not the order's buyer.
            TransitionNotAllowed: The order is not shipped or delivered.
            RuleViolation: Every extension is used, or the deadline has passed.
            VersionConflict: The order changed meanwhile (ask again).

        """
        order = self.orders.get(order_id)
        version = order.version
        order.extend_auto_confirm(buyer, now=self.clock.now(), policy=self.policy)
        self.orders.save(order, version)
        self.publisher.publish(order.collect_events())
        return order

    def on_receipt_confirmed(self, event: ReceiptConfirmed) -> list[Shipment]:
        """Handle a :class:`~ecommerce_core.events.ReceiptConfirmed` published elsewhere.

        Feed it the events :meth:`OrderService.expire_due
        <ecommerce_core.services.OrderService.expire_due>` (auto-confirm) and
        ``OrderService.confirm_receipt`` publish: the order's parcels still moving count as
        delivered at the event's time, so after-sales knows what the buyer received. Repeats
        are harmless.

        Returns:
            The shipments it marked delivered.

        """
        if not isinstance(event, ReceiptConfirmed):
            raise InvalidInput("event", event, "must be a ReceiptConfirmed event")
        return self._receive_parcels(event.aggregate_id, _SYSTEM, event.occurred_at)

    def follow_up(self, order_id: str, actor: Actor | None = None) -> Order:
        """Bring the order in line with its shipments and after-sales (see the module doc).

        Idempotent; retried when a concurrent writer changed the order meanwhile.

        Args:
            order_id: The order.
            actor: Who caused it (a carrier delivering it); the system by default.

        Returns:
            The order as saved.

        Raises:
            NotFound: No such order.
            VersionConflict: The order kept changing over every attempt.

        """
        conflict: VersionConflict | None = None
        for _ in range(_FOLLOW_UP_ATTEMPTS):
            order = self.orders.get(order_id)
            version = order.version
            self._converge(order, actor)
            if order.version == version:
                return order
            try:
                self.orders.save(order, version)
            except VersionConflict as error:
                conflict = error
                continue
            self.publisher.publish(order.collect_events())
            return order
        assert conflict is not None  # noqa: S101  # the loop only ends here after conflicts
        raise conflict

    # ----------------------------------------------------------------- internals

    def _record(self, order_id: str) -> OrderAfterSales | None:
        if self.after_sales is None:
            return None
        try:
            return self.after_sales.get(order_id)
        except NotFound:
            return None

    def _status(self, order: Order, shipments: Sequence[Shipment]) -> FulfilmentStatus:
        record = self._record(order.id)
        return fulfilment_status(order, shipments, record.withdrawn if record else None)

    def _converge(self, order: Order, actor: Actor | None) -> None:
        shipments = self.shipments.for_order(order.id)
        record = self._record(order.id)
        status = fulfilment_status(order, shipments, record.withdrawn if record else None)
        now = self.clock.now()
        if status.fully_shipped and "ship" in order.allowed_commands():
            last = max(
                (
                    s
                    for s in shipments
                    if s.is_live and s.purpose is not ShipmentPurpose.REPLACEMENT
                ),
                key=lambda s: s.sequence,
            )
            order.ship(
                Actor.merchant(order.merchant_id),
                carrier=last.carrier,
                tracking_number=last.tracking_number,
                now=now,
                policy=self.policy,
            )
        if status.fully_delivered and "deliver" in order.allowed_commands():
            deliverer = actor if actor is not None and actor.kind is ActorKind.CARRIER else None
            order.deliver(deliverer or _SYSTEM, now=now, policy=self.policy)
        if order.is_final:
            return
        wanted = fulfilment_holds(status, record)
        for hold in wanted:  # open the new ones first: the clock never runs in between
            order.pause_clock(hold, _SYSTEM, now=now)
        for hold in order.holds:
            if hold.startswith(_HOLD_PREFIXES) and hold not in wanted:
                order.resume_clock(hold, _SYSTEM, now=now)

    def _check_ready(
        self,
        order: Order,
        purpose: ShipmentPurpose,
        reference: str,
        existing: Sequence[Shipment],
    ) -> None:
        if purpose is ShipmentPurpose.REPLACEMENT:
            raise InvalidInput("purpose", purpose, "replacements are sent through after-sales")
        ready = "ship" in order.allowed_commands()
        if purpose is ShipmentPurpose.ORIGINAL:
            if not ready:
                raise RuleViolation(
                    order.id, "ship", order.state, "the order is not awaiting shipment"
                )
            return
        replaced = next((s for s in existing if s.id == reference), None)
        if replaced is None:
            raise NotFound("shipment", reference)
        if not replaced.has_failed:
            raise RuleViolation(
                replaced.id, "reship", replaced.state, "only a failed parcel is sent again"
            )
        if not ready and order.state not in {OrderState.SHIPPED, OrderState.DELIVERED}:
            raise RuleViolation(order.id, "reship", order.state, "the order is not in delivery")

    @staticmethod
    def _parcel(
        order: Order, status: FulfilmentStatus, lines: Sequence[ShipmentLine] | None
    ) -> tuple[ShipmentLine, ...]:
        if lines is None:
            parcel = tuple(
                ShipmentLine(line.line_id, status.shippable(line.line_id))
                for line in order.lines
                if status.shippable(line.line_id) > 0
            )
            if not parcel:
                raise InvalidInput("lines", (), "every unit of the order is shipped already")
            return parcel
        parcel = tuple(lines)
        for item in parcel:
            if not isinstance(item, ShipmentLine):
                raise InvalidInput("lines", item, "each line must be a ShipmentLine")
            left = status.shippable(item.line_id)
            if item.quantity > left:
                raise QuantityExceeded(
                    order.id,
                    "ship",
                    order.state,
                    line_id=item.line_id,
                    requested=item.quantity,
                    available=left,
                    limit="left to ship",
                )
        return parcel

    def _add(self, order: Order, shipment: Shipment) -> None:
        """Store a new shipment; a reshipment or replacement first takes its stock."""
        draws = shipment.purpose is not ShipmentPurpose.ORIGINAL and self.inventory is not None
        if draws:
            assert self.inventory is not None  # noqa: S101  # narrowed just above
            items = self._stock_items(order, shipment.lines)
            self.inventory.reserve(shipment.id, items)
            self.inventory.commit(shipment.id)
        try:
            self.shipments.add(shipment)
        except BaseException:
            if draws:
                assert self.inventory is not None  # noqa: S101  # narrowed above
                self.inventory.release(shipment.id)
            raise

    @staticmethod
    def _stock_items(order: Order, lines: Sequence[ShipmentLine]) -> list[StockItem]:
        sku = {line.line_id: line.sku for line in order.lines}
        return [StockItem(item.line_id, sku[item.line_id], item.quantity) for item in lines]

    def _restock_returned(self, shipment: Shipment) -> None:
        if self.inventory is None:
            return
        order = self.orders.get(shipment.order_id)
        self.inventory.restock(
            f"shipment:{shipment.id}:returned", self._stock_items(order, shipment.lines)
        )

    def _complete_exchange(self, shipment: Shipment) -> None:
        record = self._record(shipment.order_id)
        if record is None:
            return
        for request in record.requests:
            if (
                request.replacement_shipment_id == shipment.id
                and request.state == AfterSalesState.REPLACEMENT_SHIPPED
            ):
                assert self.after_sales is not None  # noqa: S101  # a record was loaded
                version = record.version
                record.complete_exchange(_SYSTEM, request.request_id, now=self.clock.now())
                self.after_sales.save(record, version)
                self.publisher.publish(record.collect_events())
                return

    def _receive_parcels(self, order_id: str, actor: Actor, at: datetime) -> list[Shipment]:
        received = []
        for shipment in self.shipments.for_order(order_id):
            version = shipment.version
            if shipment.confirm_receipt(actor, now=at):
                self.shipments.save(shipment, version)
                self.publisher.publish(shipment.collect_events())
                received.append(shipment)
        if received:
            self.follow_up(order_id)
        return received
