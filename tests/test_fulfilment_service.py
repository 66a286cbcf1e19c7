"""The fulfilment use cases: delivery choice at checkout, parcels, tracking, receipt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import (
    Actor,
    AfterSalesItem,
    CartItem,
    Conflict,
    DeliveryOptionUnavailable,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    Money,
    NotFound,
    OrderLine,
    OutOfStock,
    QuantityExceeded,
    RuleViolation,
    ShipmentLine,
    TrackingEvent,
    TrackingOutcome,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.adapters.memory import InMemoryOrderRepository
from ecommerce_core.delivery import ShipmentCreated, TrackingEventRecorded
from ecommerce_core.demo import demo_world
from ecommerce_core.events import (
    DeadlinePaused,
    DeadlineResumed,
    OrderDelivered,
    OrderShipped,
    ReceiptConfirmed,
)
from ecommerce_core.orders import split_by_merchant
from ecommerce_core.services import FulfilmentService, delivery_fees

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")
SF = Actor.carrier("SF")
SKUS = ("tea-01", "pot-01")


@pytest.fixture
def world():
    return demo_world(stock=20)


def paid(world, tea=3, pot=1):
    (order,) = world.orders.checkout(ALICE, [CartItem("tea-01", tea), CartItem("pot-01", pot)])
    world.orders.pay(order.id, ALICE)
    return order.id


def ship(world, order_id, tracking, lines=None):
    return world.fulfilment.ship(
        order_id, TEAHOUSE, carrier="SF", tracking_number=tracking, lines=lines
    )


def report(world, tracking, status, *, minutes_ago=0, event_id=None, carrier="SF"):
    event = TrackingEvent(
        event_id or f"{tracking}-{status}-{minutes_ago}",
        carrier,
        tracking,
        status,
        world.clock.now() - timedelta(minutes=minutes_ago),
    )
    return world.fulfilment.record_tracking(event)


def order_of(world, order_id):
    return world.orders.orders.get(order_id)


def state(world):
    orders = world.orders
    return (
        [(o.id, o.state, o.version, o.deadline) for o in orders.orders.all()],
        [(s.id, s.state, s.version, s.tracking) for s in world.fulfilment.shipments.all()],
        [(orders.inventory.on_hand(sku), orders.inventory.available(sku)) for sku in SKUS],
        len(orders.publisher.published),
    )


class TestChoosingDelivery:
    def test_the_chosen_options_fee_becomes_the_orders_shipping_fee_and_total(self, world):
        lines = {
            "m-teahouse": [OrderLine("1", "tea-01", 2, Money.of("38.00", "CNY"))],
            "m-pottery": [OrderLine("1", "cup-01", 1, Money.of("25.00", "CNY"))],
        }
        chosen = delivery_fees(world.carriers, lines, {"m-teahouse": "sf-exp", "m-pottery": "zto"})
        orders = split_by_merchant(
            checkout_id="c-1",
            buyer_id="alice",
            lines_by_merchant=lines,
            order_ids=["o-1", "o-2"],
            now=world.clock.now(),
            policy=world.orders.policy,
            shipping_fees={merchant: option.fee for merchant, option in chosen.items()},
        )
        assert [(o.merchant_id, str(o.shipping_fee), str(o.total)) for o in orders] == [
            ("m-pottery", "8.00 CNY", "33.00 CNY"),
            ("m-teahouse", "22.00 CNY", "98.00 CNY"),
        ]

    def test_an_option_withdrawn_before_the_order_is_placed_is_refused(self, world):
        lines = {"m-teahouse": [OrderLine("1", "tea-01", 1, Money.of("38.00", "CNY"))]}
        seen = world.carriers.delivery_options("m-teahouse", lines["m-teahouse"])[1]
        world.carriers.withdraw("m-teahouse", "sf-exp")
        with pytest.raises(DeliveryOptionUnavailable) as refused:
            delivery_fees(world.carriers, lines, {"m-teahouse": seen})
        assert refused.value.offered == ("sf-std", "shop")

    def test_every_merchant_needs_a_choice_and_no_other_merchant_may_have_one(self, world):
        lines = {"m-teahouse": [OrderLine("1", "tea-01", 1, Money.of("38.00", "CNY"))]}
        with pytest.raises(InvalidInput, match="every merchant"):
            delivery_fees(world.carriers, lines, {})
        with pytest.raises(InvalidInput, match="no lines"):
            delivery_fees(world.carriers, lines, {"m-teahouse": "sf-std", "m-pottery": "zto"})

    def test_cash_on_delivery_is_checked_for_every_merchant(self, world):
        lines = {"m-teahouse": [OrderLine("1", "tea-01", 1, Money.of("38.00", "CNY"))]}
        choices = {"m-teahouse": "sf-exp"}
        with pytest.raises(DeliveryOptionUnavailable, match="cash on delivery"):
            delivery_fees(world.carriers, lines, choices, cash_on_delivery=True)


class TestShipping:
    def test_a_partial_shipment_leaves_the_order_awaiting_the_rest(self, world):
        order_id = paid(world)
        parcel = ship(world, order_id, "SF1", [ShipmentLine("1", 2)])
        assert (parcel.sequence, parcel.lines) == (1, (ShipmentLine("1", 2),))
        assert order_of(world, order_id).state == "awaiting_shipment"
        assert world.fulfilment.status(order_id).shippable("1") == 1

    def test_the_last_parcel_ships_the_order_with_its_tracking_number(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1", [ShipmentLine("1", 2)])
        last = ship(world, order_id, "SF2")
        assert last.lines == (ShipmentLine("1", 1), ShipmentLine("2", 1))
        order = order_of(world, order_id)
        assert (order.state, order.shipment.tracking_number) == ("shipped", "SF2")
        assert order.deadline.at == world.clock.now() + world.orders.policy.auto_confirm_after
        kinds = [
            type(e)
            for e in world.orders.publisher.published
            if isinstance(e, (ShipmentCreated, OrderShipped))
        ]
        assert kinds == [ShipmentCreated, ShipmentCreated, OrderShipped]
        assert [s.tracking_number for s in world.fulfilment.shipments_of(order_id)] == [
            "SF1",
            "SF2",
        ]

    def test_more_units_than_are_left_to_ship_are_refused_and_nothing_changes(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1", [ShipmentLine("1", 2)])
        before = state(world)
        with pytest.raises(QuantityExceeded) as refused:
            ship(world, order_id, "SF2", [ShipmentLine("1", 2)])
        assert (refused.value.line_id, refused.value.available) == ("1", 1)
        assert state(world) == before

    def test_nothing_left_to_ship_is_refused(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        with pytest.raises(RuleViolation, match="not awaiting shipment"):
            ship(world, order_id, "SF2")

    @pytest.mark.parametrize("actor", [Actor.merchant("m-pottery"), ALICE, Actor.platform()])
    def test_only_the_orders_merchant_ships_it(self, world, actor):
        order_id = paid(world)
        before = state(world)
        with pytest.raises(Forbidden):
            world.fulfilment.ship(order_id, actor, carrier="SF", tracking_number="SF1")
        assert state(world) == before

    def test_an_unpaid_order_is_not_shipped(self, world):
        order = world.orders.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(RuleViolation, match="not awaiting shipment"):
            ship(world, order.id, "SF1")

    def test_a_tracking_number_used_already_is_a_conflict_and_stores_nothing(self, world):
        first, second = paid(world), paid(world)
        ship(world, first, "SF1", [ShipmentLine("1", 1)])
        before = state(world)
        with pytest.raises(Conflict):
            ship(world, second, "SF1")
        assert state(world) == before

    def test_replacements_are_not_sent_from_here(self, world):
        order_id = paid(world)
        with pytest.raises(InvalidInput, match="after-sales"):
            world.fulfilment.ship(
                order_id, TEAHOUSE, carrier="SF", tracking_number="SF1", purpose="replacement"
            )

    def test_units_refunded_before_shipping_need_not_ship(self, world):
        order_id = paid(world)
        request = world.after_sales.request(
            order_id,
            ALICE,
            kind="refund_only",
            reason="no_reason",
            items=[AfterSalesItem("1", 1)],
        )
        world.after_sales.approve(order_id, request.request_id, TEAHOUSE)
        assert world.fulfilment.status(order_id).shippable("1") == 2
        ship(world, order_id, "SF1")
        assert order_of(world, order_id).state == "shipped"


class TestReshipping:
    def test_a_lost_parcel_pauses_the_order_until_it_is_sent_again_with_new_stock(self, world):
        order_id = paid(world)
        first = ship(world, order_id, "SF1")
        report(world, "SF1", "lost")
        order = order_of(world, order_id)
        assert order.auto_confirm_paused
        assert order.holds == ("delivery:outstanding",)
        assert world.fulfilment.status(order_id).outstanding == 4
        stock = world.orders.inventory.on_hand("tea-01")
        world.fulfilment.ship(
            order_id,
            TEAHOUSE,
            carrier="SF",
            tracking_number="SF2",
            purpose="reshipment",
            reference=first.id,
        )
        assert world.orders.inventory.on_hand("tea-01") == stock - 3
        assert not order_of(world, order_id).auto_confirm_paused
        assert order_of(world, order_id).holds == ()
        resumed = [e for e in world.orders.publisher.published if isinstance(e, DeadlineResumed)]
        assert [e.hold for e in resumed] == ["delivery:outstanding"]

    def test_follow_up_lifts_only_its_own_holds_never_another_components(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        repo = world.orders.orders
        order = repo.get(order_id)
        version = order.version
        order.pause_clock("refund:r-1", Actor.system("payments"), now=world.clock.now())
        repo.save(order, version)
        report(world, "SF1", "delayed")
        assert order_of(world, order_id).holds == ("refund:r-1", "delivery:shipment-1")
        world.clock.advance(timedelta(hours=1))
        report(world, "SF1", "in_transit")
        order = order_of(world, order_id)
        assert order.holds == ("refund:r-1",)
        assert order.auto_confirm_paused
        world.clock.advance(timedelta(days=60))
        assert world.orders.expire_due() == []

    def test_only_a_failed_parcel_of_the_order_is_sent_again(self, world):
        order_id = paid(world)
        first = ship(world, order_id, "SF1")
        reship = {"purpose": "reshipment", "carrier": "SF", "tracking_number": "SF2"}
        with pytest.raises(RuleViolation, match="only a failed parcel"):
            world.fulfilment.ship(order_id, TEAHOUSE, reference=first.id, **reship)
        with pytest.raises(NotFound):
            world.fulfilment.ship(order_id, TEAHOUSE, reference="s-none", **reship)

    def test_a_reshipment_without_stock_is_refused_and_nothing_changes(self):
        world = demo_world(stock=3)
        order_id = paid(world, tea=3, pot=1)
        first = ship(world, order_id, "SF1")
        report(world, "SF1", "lost")
        before = state(world)
        with pytest.raises(OutOfStock):
            world.fulfilment.ship(
                order_id,
                TEAHOUSE,
                carrier="SF",
                tracking_number="SF2",
                purpose="reshipment",
                reference=first.id,
            )
        assert state(world) == before

    def test_a_reshipment_under_a_used_tracking_number_gives_its_stock_back(self, world):
        order_id, other = paid(world), paid(world)
        ship(world, other, "SF9", [ShipmentLine("1", 1)])
        first = ship(world, order_id, "SF1")
        report(world, "SF1", "lost")
        stock = world.orders.inventory.on_hand("tea-01")
        with pytest.raises(Conflict):
            world.fulfilment.ship(
                order_id,
                TEAHOUSE,
                carrier="SF",
                tracking_number="SF9",
                purpose="reshipment",
                reference=first.id,
            )
        assert world.orders.inventory.on_hand("tea-01") == stock

    def test_a_parcel_sent_back_goes_back_into_stock_once(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        stock = world.orders.inventory.on_hand("tea-01")
        report(world, "SF1", "refused_by_buyer", minutes_ago=5)
        report(world, "SF1", "returned_to_sender")
        report(world, "SF1", "returned_to_sender")
        assert world.orders.inventory.on_hand("tea-01") == stock + 3


class TestTracking:
    def test_an_unknown_tracking_number_is_not_found_and_changes_nothing(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        before = state(world)
        with pytest.raises(NotFound):
            report(world, "SF404", "delivered")
        with pytest.raises(NotFound):
            report(world, "SF1", "delivered", carrier="ZTO")
        assert state(world) == before

    def test_a_report_about_another_orders_parcel_is_refused(self, world):
        first, second = paid(world), paid(world)
        ship(world, first, "SF1")
        event = TrackingEvent("e-1", "SF", "SF1", "delivered", world.clock.now())
        before = state(world)
        with pytest.raises(Forbidden):
            world.fulfilment.record_tracking(event, order_id=second)
        assert state(world) == before

    def test_a_repeated_event_is_a_no_op_that_saves_and_publishes_nothing(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        report(world, "SF1", "in_transit", event_id="e-1")
        before = state(world)
        assert report(world, "SF1", "in_transit", event_id="e-1").outcome is (
            TrackingOutcome.DUPLICATE
        )
        assert state(world) == before
        with pytest.raises(IdempotencyConflict):
            report(world, "SF1", "delivered", event_id="e-1")
        assert state(world) == before

    def test_a_late_event_is_recorded_and_published_but_moves_nothing(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        report(world, "SF1", "out_for_delivery", minutes_ago=10)
        result = report(world, "SF1", "in_transit", minutes_ago=60)
        assert (result.outcome, result.shipment.state) == (
            TrackingOutcome.RECORDED,
            "out_for_delivery",
        )
        last = world.orders.publisher.published[-1]
        assert isinstance(last, TrackingEventRecorded)
        assert last.applied is False

    def test_the_order_is_delivered_when_its_last_parcel_is(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1", [ShipmentLine("1", 3)])
        ship(world, order_id, "SF2")
        report(world, "SF1", "delivered")
        assert order_of(world, order_id).state == "shipped"
        report(world, "SF2", "delivered")
        assert order_of(world, order_id).state == "delivered"
        delivered = [e for e in world.orders.publisher.published if isinstance(e, OrderDelivered)]
        assert [e.actor for e in delivered] == ["carrier:SF"]

    def test_a_delayed_parcel_pauses_the_auto_confirm_clock_until_it_moves_on(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        world.clock.advance(timedelta(days=2))
        report(world, "SF1", "delayed")
        order = order_of(world, order_id)
        assert order.deadline is None
        assert order.paused.remaining == timedelta(days=8)
        world.clock.advance(timedelta(days=30))
        assert world.orders.expire_due() == []
        report(world, "SF1", "in_transit")
        order = order_of(world, order_id)
        assert order.deadline.at == world.clock.now() + timedelta(days=8)
        paused = [e for e in world.orders.publisher.published if isinstance(e, DeadlinePaused)]
        assert [(e.hold, e.trigger) for e in paused] == [("delivery:shipment-1", "auto_confirm")]
        assert order.holds == ()


class TestReceipt:
    def test_confirming_receipt_completes_the_order_and_delivers_moving_parcels(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1", [ShipmentLine("1", 3)])
        ship(world, order_id, "SF2")
        report(world, "SF1", "delivered", minutes_ago=30)
        world.fulfilment.confirm_receipt(order_id, ALICE)
        assert order_of(world, order_id).state == "completed"
        parcels = world.fulfilment.shipments_of(order_id)
        assert [(s.state, s.delivered_at) for s in parcels] == [
            ("delivered", world.clock.now() - timedelta(minutes=30)),
            ("delivered", world.clock.now()),
        ]

    def test_a_second_confirmation_is_refused_and_changes_nothing(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        world.fulfilment.confirm_receipt(order_id, ALICE)
        before = state(world)
        with pytest.raises(TransitionNotAllowed):
            world.fulfilment.confirm_receipt(order_id, ALICE)
        with pytest.raises(Forbidden):
            world.fulfilment.confirm_receipt(order_id, Actor.buyer("bob"))
        assert state(world) == before

    def test_an_auto_confirmed_orders_parcels_count_as_delivered_at_the_deadline(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        due = order_of(world, order_id).deadline.at
        world.clock.advance(timedelta(days=11))
        world.orders.expire_due()
        (confirmed,) = [
            e for e in world.orders.publisher.published if isinstance(e, ReceiptConfirmed)
        ]
        received = world.fulfilment.on_receipt_confirmed(confirmed)
        assert [(s.state, s.delivered_at) for s in received] == [("delivered", due)]
        assert world.fulfilment.on_receipt_confirmed(confirmed) == []

    def test_only_receipt_events_are_handled(self, world):
        with pytest.raises(InvalidInput):
            world.fulfilment.on_receipt_confirmed("order-1")


class _FlakyOrders(InMemoryOrderRepository):
    """Orders whose next saves fail as if another writer got there first."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def save(self, order, expected_version):
        if self.conflicts:
            self.conflicts -= 1
            raise VersionConflict(order.id, expected_version, expected_version + 1)
        super().save(order, expected_version)


class TestFollowingUp:
    def make(self, world):
        orders = _FlakyOrders()
        for order in world.orders.orders.all():
            orders.add(order)
        service = FulfilmentService(
            orders,
            world.fulfilment.shipments,
            world.clock,
            world.orders.ids,
            world.orders.publisher,
            after_sales=world.after_sales.after_sales,
        )
        return orders, service

    def test_a_concurrent_change_is_retried_until_the_order_follows(self, world):
        order_id = paid(world)
        orders, service = self.make(world)
        orders.conflicts = 2
        service.ship(order_id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        assert orders.get(order_id).state == "shipped"

    def test_an_order_that_keeps_changing_raises_the_conflict(self, world):
        order_id = paid(world)
        orders, service = self.make(world)
        service.ship(order_id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        orders.conflicts = 3
        with pytest.raises(VersionConflict):
            service.record_tracking(
                TrackingEvent("e-1", "SF", "SF1", "delivered", world.clock.now())
            )
        assert orders.get(order_id).state == "shipped"
        assert service.follow_up(order_id).state == "delivered"

    def test_following_up_an_order_in_line_changes_nothing(self, world):
        order_id = paid(world)
        version = order_of(world, order_id).version
        assert world.fulfilment.follow_up(order_id).version == version

    def test_without_after_sales_or_inventory_the_service_still_ships(self, world):
        order_id = paid(world)
        service = FulfilmentService(
            world.orders.orders,
            world.fulfilment.shipments,
            world.clock,
            world.orders.ids,
            world.orders.publisher,
        )
        first = service.ship(order_id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        service.record_tracking(TrackingEvent("e-1", "SF", "SF1", "lost", world.clock.now()))
        service.ship(
            order_id,
            TEAHOUSE,
            carrier="SF",
            tracking_number="SF2",
            purpose="reshipment",
            reference=first.id,
        )
        assert service.status(order_id).outstanding == 0


class TestExtendingReceipt:
    def test_an_extension_through_the_service_delays_the_automatic_confirmation(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        due = order_of(world, order_id).deadline.at
        world.fulfilment.extend_auto_confirm(order_id, ALICE)
        world.clock.advance(due - world.clock.now())
        assert world.orders.expire_due() == []
        world.clock.advance(world.fulfilment.policy.auto_confirm_extension)
        assert [e.trigger for e in world.orders.expire_due()] == ["auto_confirm"]

    def test_a_refused_extension_through_the_service_stores_and_publishes_nothing(self, world):
        order_id = paid(world)
        ship(world, order_id, "SF1")
        world.fulfilment.extend_auto_confirm(order_id, ALICE)
        before = state(world)
        with pytest.raises(RuleViolation):
            world.fulfilment.extend_auto_confirm(order_id, ALICE)
        assert state(world) == before
