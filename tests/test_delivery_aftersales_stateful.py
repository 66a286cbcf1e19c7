"""Random shipments, carrier tracking, receipt, deadlines and after-sales, checked every step.

Orders (with uneven discounts, so refunds split amounts unevenly) are paid, then shipped in
random parcels; carriers report random events, which arrive duplicated, held back and late;
buyers confirm receipt, time passes (deadlines fire), and buyers, merchants and the platform
run after-sales requests with random kinds, reasons and units, while the refund side is
sometimes down. After every step:

- a refused command changed nothing (orders, shipments, after-sales, stock, refunds, events);
- no shipment ever moved backwards, and a final shipment never moves again; every shipment's
  tracking history is sorted by the carrier's timestamps with each event id once;
- units claimed as received (returned, exchanged, kept with a refund) never exceed the units
  delivered, and units refunded never exceed units bought, per line;
- money refunded per line never exceeds what the buyer paid for it, and is exactly what the
  approved requests say; the refund side saw exactly the completed refunds;
- every order's deadline matches its state, and its auto-confirm clock is paused exactly while
  an after-sales request is open or a delivery problem unfolds;
- the order is shipped once every unit owed is in a live parcel, delivered once every one
  arrived; stock on hand is what payment, parcels, returns and restocks left.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from ecommerce_core import (
    Actor,
    AfterSalesItem,
    AfterSalesPolicy,
    EcommerceCoreError,
    Forbidden,
    IdempotencyConflict,
    Money,
    NotFound,
    Order,
    OrderLine,
    ShipmentLine,
    TrackingEvent,
    TrackingOutcome,
)
from ecommerce_core.adapters.memory import RecordingRefunds
from ecommerce_core.delivery import SHIPMENT_PROCESS, SHIPMENT_PROGRESS, fulfilment_status
from ecommerce_core.demo import DEMO_PRODUCTS, demo_world
from ecommerce_core.events import ReceiptConfirmed
from ecommerce_core.orders import TIMERS
from ecommerce_core.ports import StockItem
from ecommerce_core.services import delivery_fees
from ecommerce_core.services.fulfilment import fulfilment_holds

STOCK = 200
TEAHOUSE = Actor.merchant("m-teahouse")
ALICE = Actor.buyer("alice")
PRICES = {p.sku: p.unit_price for p in DEMO_PRODUCTS}
CATEGORY = {p.sku: p.category for p in DEMO_PRODUCTS}
STATUSES = st.sampled_from(
    [
        "handed_to_carrier",
        "in_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "delivered",
        "delivered",
        "delayed",
        "lost",
        "damaged",
        "refused_by_buyer",
        "returned_to_sender",
    ]
)
KINDS = st.sampled_from(["refund_only", "return_and_refund", "exchange"])
REASONS = st.sampled_from(["no_reason", "not_received", "defective", "damaged", "other"])
BUYER_SIDE = st.sampled_from([ALICE, Actor.buyer("bob"), TEAHOUSE])
MERCHANT_SIDE = st.sampled_from([TEAHOUSE, Actor.merchant("m-pottery"), ALICE])
LINE_SPECS = st.lists(
    st.tuples(
        st.sampled_from(["tea-01", "pot-01"]),
        st.integers(1, 4),
        st.integers(0, 97),  # discount, percent of the list amount, so amounts split unevenly
    ),
    min_size=1,
    max_size=2,
    unique_by=lambda spec: spec[0],
)


class DeliveryAndAfterSales(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.refunds_work = True
        self.refunds = RecordingRefunds(lambda _: self.refunds_work)
        self.world = demo_world(
            stock=STOCK,
            after_sales_policy=AfterSalesPolicy(no_reason_excluded_categories={"teaware"}),
            refunds=self.refunds,
        )
        self.clock = self.world.clock
        self.repo = self.world.orders.orders
        self.shipment_repo = self.world.fulfilment.shipments
        self.records = self.world.after_sales.after_sales
        self.inventory = self.world.orders.inventory
        self.publisher = self.world.orders.publisher
        self.event_ids = itertools.count(1)
        self.delivered_events: list[TrackingEvent] = []  # sent and delivered at least once
        self.held_events: list[TrackingEvent] = []  # sent, not delivered yet (late)
        self.progress: dict[str, int] = {}
        self.finals: dict[str, str] = {}
        self.seen_published = 0

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        orders = tuple((o.id, o.state, o.version, o.deadline) for o in self.repo.all())
        shipments = tuple(
            (s.id, s.state, s.version, s.tracking, s.delivered_at) for s in self.shipment_repo.all()
        )
        records = tuple((r.order_id, r.version, r.requests) for r in self.records.all())
        stock = tuple(
            (self.inventory.on_hand(sku), self.inventory.available(sku)) for sku in PRICES
        )
        return (
            orders,
            shipments,
            records,
            stock,
            len(self.refunds.instructions),
            len(self.publisher.published),
        )

    def attempt(self, action) -> object | None:
        before = self.snapshot()
        try:
            return action()
        except EcommerceCoreError:
            assert self.snapshot() == before, "a refused command changed something"
            return None

    def shipments(self):
        return self.shipment_repo.all()

    def requests(self):
        return [(r.order_id, q.request_id) for r in self.records.all() for q in r.requests]

    def pick_request(self, data):
        return data.draw(st.sampled_from(self.requests()), label="request")

    def new_event(self, shipment, status, minutes_ago) -> TrackingEvent:
        return TrackingEvent(
            f"ev-{next(self.event_ids)}",
            shipment.carrier,
            shipment.tracking_number,
            status,
            self.clock.now() - timedelta(minutes=minutes_ago),
        )

    def deliver_event(self, event: TrackingEvent):
        shipment = self.shipment_repo.by_tracking_number(event.carrier, event.tracking_number)
        before = shipment.progress
        result = self.world.fulfilment.record_tracking(event)
        assert result.shipment.progress >= before
        if result.outcome is TrackingOutcome.APPLIED:
            assert result.shipment.state != shipment.state
        else:
            assert result.shipment.state == shipment.state
        return result

    def feed_receipts(self) -> None:
        """Hand ReceiptConfirmed events (auto-confirm included) to fulfilment, as a host does."""
        fresh = self.publisher.published[self.seen_published :]
        self.seen_published = len(self.publisher.published)
        for event in fresh:
            if isinstance(event, ReceiptConfirmed):
                self.world.fulfilment.on_receipt_confirmed(event)

    # ------------------------------------------------------------------ orders and parcels

    @initialize(target=orders, specs=st.lists(LINE_SPECS, min_size=1, max_size=3))
    def some_orders_are_paid(self, specs):
        """Every run starts with paid orders, so parcels and after-sales get going at once."""
        return multiple(*(self.place_and_pay(spec, "sf-std") for spec in specs))

    @rule(target=orders, specs=LINE_SPECS, option=st.sampled_from(["sf-std", "sf-exp", "shop"]))
    def place_and_pay(self, specs, option):
        lines = []
        for number, (sku, quantity, percent) in enumerate(specs, 1):
            list_amount = PRICES[sku] * quantity
            discount = Money(list_amount.minor * percent // 100 + percent % 3, "CNY")
            lines.append(
                OrderLine(
                    str(number),
                    sku,
                    quantity,
                    PRICES[sku],
                    discount=min(discount, list_amount),
                    category=CATEGORY[sku],
                )
            )
        (chosen,) = delivery_fees(
            self.world.carriers, {"m-teahouse": lines}, {"m-teahouse": option}
        ).values()
        if any(self.inventory.available(ln.sku) < ln.quantity for ln in lines):
            return multiple()
        order_id = self.world.orders.ids.next_id("order")
        order = Order.place(
            order_id=order_id,
            buyer_id="alice",
            merchant_id="m-teahouse",
            lines=lines,
            now=self.clock.now(),
            policy=self.world.orders.policy,
            shipping_fee=chosen.fee,
        )
        self.inventory.reserve(
            order_id, [StockItem(ln.line_id, ln.sku, ln.quantity) for ln in order.lines]
        )
        self.repo.add(order)
        self.world.orders.pay(order_id, ALICE)
        return order_id

    @rule(order_id=orders, merchant=MERCHANT_SIDE, parts=st.lists(st.integers(1, 4), max_size=2))
    def ship(self, order_id, merchant, parts):
        order = self.repo.get(order_id)
        lines = [ShipmentLine(ln.line_id, q) for ln, q in zip(order.lines, parts, strict=False)]
        tracking = f"SF{next(self.event_ids)}"
        self.attempt(
            lambda: self.world.fulfilment.ship(
                order_id, merchant, carrier="SF", tracking_number=tracking, lines=lines or None
            )
        )

    @rule(order_id=orders)
    def the_merchant_ships_everything_left(self, order_id):
        tracking = f"SF{next(self.event_ids)}"
        self.attempt(
            lambda: self.world.fulfilment.ship(
                order_id, TEAHOUSE, carrier="SF", tracking_number=tracking
            )
        )

    @precondition(lambda self: any(s.has_failed for s in self.shipments()))
    @rule(data=st.data())
    def reship(self, data):
        failed = [s for s in self.shipments() if s.has_failed]
        shipment = data.draw(st.sampled_from(failed), label="failed shipment")
        tracking = f"YT{next(self.event_ids)}"
        self.attempt(
            lambda: self.world.fulfilment.ship(
                shipment.order_id,
                TEAHOUSE,
                carrier="SF",
                tracking_number=tracking,
                purpose="reshipment",
                reference=shipment.id,
            )
        )

    # ------------------------------------------------------------------ carrier tracking

    @precondition(lambda self: bool(self.shipment_repo.all()))
    @rule(
        data=st.data(),
        status=STATUSES,
        minutes_ago=st.integers(0, 60 * 48),
        hold=st.booleans(),
    )
    def carrier_reports(self, data, status, minutes_ago, hold):
        shipment = data.draw(st.sampled_from(self.shipments()), label="shipment")
        event = self.new_event(shipment, status, minutes_ago)
        if hold:
            self.held_events.append(event)  # it will arrive late, after newer ones
            return
        self.deliver_event(event)
        self.delivered_events.append(event)

    @precondition(lambda self: any(s.is_live for s in self.shipment_repo.all()))
    @rule(data=st.data(), minutes_ago=st.integers(0, 60), jump=st.sampled_from([1, 2, 4]))
    def a_parcel_moves_on(self, data, minutes_ago, jump):
        """The carrier reports the next step of a moving parcel (or skips one)."""
        moving = [s for s in self.shipments() if s.is_live and not s.is_delivered]
        if not moving:
            return
        shipment = data.draw(st.sampled_from(moving), label="shipment")
        path = ["created", "handed_to_carrier", "in_transit", "out_for_delivery", "delivered"]
        here = path.index(shipment.state) if shipment.state in path else 2
        status = path[min(len(path) - 1, here + jump)]
        event = self.new_event(shipment, status, minutes_ago)
        self.deliver_event(event)
        self.delivered_events.append(event)

    @precondition(lambda self: any(s.is_live for s in self.shipment_repo.all()))
    @rule(
        data=st.data(),
        problem=st.sampled_from(
            [("lost",), ("delayed",), ("damaged", "returned_to_sender"), ("refused_by_buyer",)]
        ),
        back=st.booleans(),
    )
    def a_parcel_goes_wrong(self, data, problem, back):
        """The carrier reports a problem with a moving parcel (and, maybe, sends it back)."""
        moving = [s for s in self.shipments() if s.is_live and not s.is_delivered]
        if not moving:
            return
        shipment = data.draw(st.sampled_from(moving), label="shipment")
        for status in problem if back else problem[:1]:
            event = self.new_event(shipment, status, 0)
            self.clock.advance(timedelta(minutes=1))
            self.deliver_event(event)
            self.delivered_events.append(event)

    @precondition(lambda self: bool(self.held_events))
    @rule(data=st.data())
    def a_held_back_event_arrives_late(self, data):
        event = data.draw(st.sampled_from(self.held_events), label="late event")
        self.held_events.remove(event)
        self.deliver_event(event)
        self.delivered_events.append(event)

    @rule(
        data=st.data(),
        how=st.sampled_from(["repeat", "edited", "unknown", "other_order"]),
        status=STATUSES,
    )
    def a_carrier_misbehaves(self, data, how, status):
        """A repeat is a no-op; an edited repeat, an unknown parcel, another order: refused."""
        if how in {"repeat", "edited"} and self.delivered_events:
            event = data.draw(st.sampled_from(self.delivered_events), label="event")
            if how == "edited":
                event = attrs.evolve(event, description="edited")
            expected, order_id = IdempotencyConflict, None
        elif how == "other_order" and self.shipment_repo.all():
            shipment = data.draw(st.sampled_from(self.shipments()), label="shipment")
            event = self.new_event(shipment, status, 0)
            expected, order_id = Forbidden, f"not-{shipment.order_id}"
        else:
            event = TrackingEvent("ev-x", "SF", "NOPE", status, self.clock.now())
            expected, order_id = NotFound, None
        before = self.snapshot()
        if how == "repeat" and expected is IdempotencyConflict:
            assert self.world.fulfilment.record_tracking(event).outcome is TrackingOutcome.DUPLICATE
        else:
            try:
                self.world.fulfilment.record_tracking(event, order_id=order_id)
            except expected:
                pass
            else:
                raise AssertionError(f"{how}: the carrier's report was accepted")
        assert self.snapshot() == before

    # ------------------------------------------------------------------ receipt and time

    @rule(order_id=orders, buyer=BUYER_SIDE)
    def confirm_receipt(self, order_id, buyer):
        self.attempt(lambda: self.world.fulfilment.confirm_receipt(order_id, buyer))
        self.feed_receipts()

    @rule(order_id=orders, buyer=BUYER_SIDE)
    def the_buyer_extends_the_deadline(self, order_id, buyer):
        before = self.repo.get(order_id)
        extended = self.attempt(lambda: self.world.fulfilment.extend_auto_confirm(order_id, buyer))
        if extended is not None:
            assert extended.extensions == before.extensions + 1
            assert extended.extensions <= self.world.orders.policy.auto_confirm_extensions

    @rule(data=st.data(), remedy=st.sampled_from(["reship", "refund"]))
    def the_platform_settles_a_failed_parcel(self, data, remedy):
        failed = [s for s in self.shipments() if s.has_failed]
        if not failed:
            return
        parcel = data.draw(st.sampled_from(failed))
        service = self.world.after_sales
        service.policy = attrs.evolve(service.policy, failed_parcel=remedy)
        done = self.attempt(lambda: service.resolve_failed_parcel(parcel.order_id, parcel.id))
        if done is not None:
            assert (remedy, done.kind, done.reason) == ("refund", "refund_only", "not_received")

    @rule(minutes=st.integers(0, 60 * 24 * 4))
    def time_passes(self, minutes):
        self.clock.advance(timedelta(minutes=minutes))
        self.world.orders.expire_due()
        assert self.world.orders.expire_due() == []
        self.feed_receipts()

    # ------------------------------------------------------------------ after-sales

    @rule(
        data=st.data(),
        order_id=orders,
        buyer=st.sampled_from([ALICE, ALICE, ALICE, Actor.buyer("bob"), TEAHOUSE]),
        kind=KINDS,
        reason=REASONS,
    )
    def ask_for_after_sales(self, data, order_id, buyer, kind, reason):
        order = self.repo.get(order_id)
        lines = data.draw(
            st.lists(st.sampled_from(order.lines), min_size=1, unique_by=lambda ln: ln.line_id),
            label="lines",
        )
        items = [
            AfterSalesItem(ln.line_id, data.draw(st.integers(1, ln.quantity + 1), label="units"))
            for ln in lines
        ]
        self.attempt(
            lambda: self.world.after_sales.request(
                order_id, buyer, kind=kind, reason=reason, items=items
            )
        )

    @rule(
        data=st.data(),
        order_id=orders,
        kind=st.sampled_from(["return_and_refund", "exchange", "refund_only"]),
        reason=st.sampled_from(["no_reason", "defective", "not_as_described"]),
    )
    def the_buyer_asks_about_what_they_have(self, data, order_id, kind, reason):
        """A request the buyer may well be entitled to: received units, or units not received."""
        order = self.repo.get(order_id)
        try:
            withdrawn = self.records.get(order_id).withdrawn
        except NotFound:
            withdrawn = {}
        status = fulfilment_status(order, self.shipment_repo.for_order(order_id), withdrawn)
        line = data.draw(st.sampled_from(order.lines), label="line")
        delivered = status.line(line.line_id).delivered_units
        if delivered:
            units = data.draw(st.integers(1, delivered), label="units")
        else:
            kind, reason, units = "refund_only", "not_received", 1
        self.attempt(
            lambda: self.world.after_sales.request(
                order_id,
                ALICE,
                kind=kind,
                reason=reason,
                items=[AfterSalesItem(line.line_id, units)],
            )
        )

    @precondition(lambda self: bool(self.requests()))
    @rule(data=st.data(), yes=st.booleans())
    def a_request_moves_on(self, data, yes):
        """The party whose turn it is takes the natural next step (agreeing, or not)."""
        pending = [
            (r.order_id, q.request_id)
            for r in self.records.all()
            for q in r.requests
            if not q.is_final
        ]
        if not pending:
            return
        order_id, request_id = data.draw(st.sampled_from(pending), label="pending request")
        state = self.records.get(order_id).request(request_id).state
        service = self.world.after_sales
        steps = {
            "requested": lambda: (
                service.approve(order_id, request_id, TEAHOUSE)
                if yes
                else service.reject(order_id, request_id, TEAHOUSE, reason="no")
            ),
            "awaiting_return": lambda: service.ship_back(
                order_id, request_id, ALICE, carrier="YTO", tracking_number="Y1"
            ),
            "returning": lambda: service.receive_return(order_id, request_id, TEAHOUSE),
            "received": lambda: (
                service.accept_return(
                    order_id, request_id, TEAHOUSE, restock=data.draw(st.booleans())
                )
                if yes
                else service.reject(order_id, request_id, TEAHOUSE, reason="worn")
            ),
            "rejected": lambda: (
                service.dispute(order_id, request_id, ALICE, reason="unfair")
                if yes
                else service.close(order_id, request_id, ALICE)
            ),
            "in_arbitration": lambda: service.arbitrate(
                order_id, request_id, Actor.platform(), for_buyer=yes, reason="ruled"
            ),
            "replacing": lambda: service.send_replacement(
                order_id,
                request_id,
                TEAHOUSE,
                carrier="SF",
                tracking_number=f"RP{next(self.event_ids)}",
            ),
            "replacement_shipped": lambda: service.complete_exchange(order_id, request_id, ALICE),
            "refund_approved": lambda: service.settle_refunds(order_id),
        }
        if state in steps:
            self.attempt(steps[state])

    @precondition(lambda self: bool(self.requests()))
    @rule(
        data=st.data(),
        actor=st.sampled_from([ALICE, TEAHOUSE, Actor.platform(), Actor.buyer("bob")]),
        action=st.sampled_from(
            [
                "approve",
                "reject",
                "receive",
                "accept",
                "replace",
                "ship_back",
                "dispute",
                "withdraw",
                "close",
                "exchanged",
                "rule_for_buyer",
                "rule_for_merchant",
            ]
        ),
    )
    def someone_acts_on_a_request(self, data, actor, action):
        """Any command by any actor on any request: accepted, or refused changing nothing."""
        order_id, request_id = self.pick_request(data)
        service = self.world.after_sales
        tracking = f"RP{next(self.event_ids)}"
        commands = {
            "approve": lambda: service.approve(order_id, request_id, actor),
            "reject": lambda: service.reject(order_id, request_id, actor, reason="no"),
            "receive": lambda: service.receive_return(order_id, request_id, actor),
            "accept": lambda: service.accept_return(order_id, request_id, actor),
            "replace": lambda: service.send_replacement(
                order_id, request_id, actor, carrier="SF", tracking_number=tracking
            ),
            "ship_back": lambda: service.ship_back(
                order_id, request_id, actor, carrier="YTO", tracking_number="Y1"
            ),
            "dispute": lambda: service.dispute(order_id, request_id, actor, reason="unfair"),
            "withdraw": lambda: service.withdraw(order_id, request_id, actor),
            "close": lambda: service.close(order_id, request_id, actor),
            "exchanged": lambda: service.complete_exchange(order_id, request_id, actor),
            "rule_for_buyer": lambda: service.arbitrate(
                order_id, request_id, actor, for_buyer=True, reason="ruled"
            ),
            "rule_for_merchant": lambda: service.arbitrate(
                order_id, request_id, actor, for_buyer=False, reason="ruled"
            ),
        }
        self.attempt(commands[action])

    @rule(works=st.booleans())
    def the_refund_side_goes_up_or_down(self, works):
        self.refunds_work = works

    @precondition(lambda self: bool(self.records.all()))
    @rule(data=st.data())
    def refunds_are_settled(self, data):
        record = data.draw(st.sampled_from(self.records.all()), label="record")
        settled = self.world.after_sales.settle_refunds(record.order_id)
        assert all(r.state == "refunded" for r in settled)
        if self.refunds_work:
            assert self.records.get(record.order_id).refunds_due == ()

    # ------------------------------------------------------------------ invariants

    @invariant()
    def shipments_never_move_backwards(self):
        for shipment in self.shipment_repo.all():
            assert shipment.state in SHIPMENT_PROCESS.states
            progress = SHIPMENT_PROGRESS[shipment.state]
            assert progress >= self.progress.get(shipment.id, 0), shipment.id
            self.progress[shipment.id] = progress
            if shipment.id in self.finals:
                assert shipment.state == self.finals[shipment.id], "a final shipment moved"
            elif SHIPMENT_PROCESS.is_final(shipment.state):
                self.finals[shipment.id] = shipment.state
            keys = [(e.occurred_at, e.event_id) for e in shipment.tracking]
            assert keys == sorted(keys)
            assert len({e.event_id for e in shipment.tracking}) == len(keys)
            assert (shipment.delivered_at is not None) == shipment.is_delivered

    @invariant()
    def units_claimed_never_exceed_units_delivered_or_bought(self):
        for record in self.records.all():
            order = self.repo.get(record.order_id)
            status = fulfilment_status(
                order, self.shipment_repo.for_order(order.id), record.withdrawn
            )
            for line in order.lines:
                delivered = status.line(line.line_id).delivered_units
                assert record.returned_units(line.line_id) <= delivered
                assert record.claimed_units(line.line_id, received=True) <= delivered
                assert record.refunded_units(line.line_id) <= line.quantity

    @invariant()
    def refunds_never_exceed_what_was_paid(self):
        for record in self.records.all():
            order = self.repo.get(record.order_id)
            paid = order.payment.amount
            assert record.refunded_total <= paid
            sent = self.refunds.refunded(order.id, "CNY")
            completed = sum(
                (r.refund.total for r in record.requests if r.refund_reference is not None),
                Money.zero("CNY"),
            )
            assert sent == completed, "the refund side saw exactly the completed refunds"
            assert sent <= record.refunded_total
            for line in order.lines:
                on_line = self.refunds.refunded_on_line(order.id, line.line_id, "CNY")
                assert on_line <= record.refunded_amount(line.line_id) <= line.amount
                if record.refunded_units(line.line_id) == line.quantity:
                    assert record.refunded_amount(line.line_id) == line.amount

    @invariant()
    def deadlines_follow_the_state(self):
        for order in self.repo.all():
            timer = TIMERS.get(order.state)
            if timer is None:
                assert order.deadline is None
                assert order.paused is None
                continue
            clock = order.deadline if order.paused is None else order.paused
            assert clock is not None
            assert clock.trigger == timer[0]
            assert (order.paused is not None) == bool(order.holds), (order.id, order.holds)
            try:
                record = self.records.get(order.id)
            except NotFound:
                record = None
            withdrawn = record.withdrawn if record else None
            status = fulfilment_status(order, self.shipment_repo.for_order(order.id), withdrawn)
            held = bool(record and record.open_requests) or status.delivery_problem is not None
            assert set(order.holds) == set(fulfilment_holds(status, record)), order.id
            if order.state not in {"shipped", "delivered"}:
                assert not order.auto_confirm_paused
                continue
            assert order.auto_confirm_paused == held, (order.id, order.deadline)
            if order.paused is not None:
                assert timedelta(0) < order.paused.remaining
                policy = self.world.orders.policy
                longest = (
                    policy.auto_confirm_after + order.extensions * policy.auto_confirm_extension
                )
                assert order.paused.remaining <= longest
            else:
                assert order.deadline.at > self.clock.now()

    @invariant()
    def the_order_follows_its_shipments(self):
        for order in self.repo.all():
            try:
                withdrawn = self.records.get(order.id).withdrawn
            except NotFound:
                withdrawn = {}
            status = fulfilment_status(order, self.shipment_repo.for_order(order.id), withdrawn)
            if order.state == "awaiting_shipment":
                assert not status.fully_shipped
            if order.state == "shipped":
                assert not status.fully_delivered

    @invariant()
    def stock_is_what_payment_parcels_and_returns_left(self):
        expected = dict.fromkeys(PRICES, STOCK)
        sku_of = {}
        for order in self.repo.all():
            for line in order.lines:
                expected[line.sku] -= line.quantity
                sku_of[order.id, line.line_id] = line.sku
        for shipment in self.shipment_repo.all():
            for item in shipment.lines:
                sku = sku_of[shipment.order_id, item.line_id]
                if shipment.purpose.value != "original":
                    expected[sku] -= item.quantity
                if shipment.state == "returned_to_sender":
                    expected[sku] += item.quantity
        for record in self.records.all():
            for request in record.requests:
                for item in request.restock:
                    expected[sku_of[record.order_id, item.line_id]] += item.quantity
        for sku, units in expected.items():
            assert self.inventory.on_hand(sku) == units, sku
            assert self.inventory.available(sku) >= 0


DeliveryAndAfterSales.TestCase.settings = settings(
    max_examples=35, stateful_step_count=60, deadline=None
)
TestDeliveryAndAfterSales = DeliveryAndAfterSales.TestCase
