"""The after-sales use cases over the ports: refunds through the seam, stock, the order's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import (
    Actor,
    AfterSalesItem,
    CartItem,
    Conflict,
    Forbidden,
    InvalidInput,
    Money,
    NotFound,
    OutOfStock,
    QuantityExceeded,
    RuleViolation,
    ShipmentLine,
    TrackingEvent,
    TransitionNotAllowed,
    WindowClosed,
)
from ecommerce_core.adapters.memory import (
    InMemoryAfterSalesRepository,
    RecordingRefunds,
    ScriptedPaymentGateway,
)
from ecommerce_core.aftersales import (
    AfterSalesPolicy,
    AfterSalesRequested,
    RefundApproved,
    RefundCompleted,
)
from ecommerce_core.demo import demo_world
from ecommerce_core.events import DeadlinePaused, DeadlineResumed
from ecommerce_core.ports import GatewayStatus, StockItem
from ecommerce_core.services import gateway_refunds

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")
DAY = timedelta(days=1)


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


@pytest.fixture
def refunds():
    return RecordingRefunds()


@pytest.fixture
def world(refunds):
    return demo_world(stock=20, refunds=refunds)


def paid(world, tea=3, pot=1):
    (order,) = world.orders.checkout(ALICE, [CartItem("tea-01", tea), CartItem("pot-01", pot)])
    world.orders.pay(order.id, ALICE)
    return order.id


def delivered(world, tea=3, pot=1):
    order_id = paid(world, tea, pot)
    world.fulfilment.ship(order_id, TEAHOUSE, carrier="SF", tracking_number=f"SF-{order_id}")
    world.fulfilment.record_tracking(
        TrackingEvent("e-1", "SF", f"SF-{order_id}", "delivered", world.clock.now())
    )
    return order_id


def ask(world, order_id, kind, reason, *items):
    return world.after_sales.request(
        order_id,
        ALICE,
        kind=kind,
        reason=reason,
        items=[AfterSalesItem(line, units) for line, units in items],
    )


def order_of(world, order_id):
    return world.orders.orders.get(order_id)


def published(world, kind):
    return [e for e in world.orders.publisher.published if isinstance(e, kind)]


class TestRefundOnly:
    def test_a_refund_before_shipping_goes_to_the_refund_side_and_back_into_stock(
        self, world, refunds
    ):
        order_id = paid(world)
        stock = world.orders.inventory.on_hand("tea-01")
        request = ask(world, order_id, "refund_only", "no_reason", ("1", 2))
        done = world.after_sales.approve(order_id, request.request_id, TEAHOUSE)
        assert (done.state, done.refund_reference) == ("refunded", "rf-1")
        (instruction,) = refunds.instructions
        assert (instruction.order_id, instruction.total, instruction.lines[0].quantity) == (
            order_id,
            cny("76.00"),
            2,
        )
        assert world.orders.inventory.on_hand("tea-01") == stock + 2
        assert [type(e) for e in published(world, (AfterSalesRequested, RefundApproved))] == [
            AfterSalesRequested,
            RefundApproved,
        ]
        assert len(published(world, RefundCompleted)) == 1

    def test_a_refused_first_request_stores_nothing(self, world):
        order_id = paid(world)
        with pytest.raises(QuantityExceeded):
            ask(world, order_id, "return_and_refund", "defective", ("1", 1))
        with pytest.raises(NotFound):
            world.after_sales.record(order_id)

    def test_commands_on_an_order_without_after_sales_are_not_found(self, world):
        order_id = paid(world)
        with pytest.raises(NotFound):
            world.after_sales.approve(order_id, "r-1", TEAHOUSE)


class TestTheMoneySeam:
    def test_while_the_refund_side_is_down_the_refund_waits_and_is_settled_later(self):
        up = {"now": False}
        refunds = RecordingRefunds(lambda _: up["now"])
        world = demo_world(refunds=refunds)
        order_id = paid(world)
        request = ask(world, order_id, "refund_only", "no_reason", ("1", 1))
        waiting = world.after_sales.approve(order_id, request.request_id, TEAHOUSE)
        assert waiting.state == "refund_approved"
        assert world.after_sales.settle_refunds(order_id) == []
        up["now"] = True
        (settled,) = world.after_sales.settle_refunds(order_id)
        assert (settled.state, settled.refund_reference) == ("refunded", "rf-1")
        assert world.after_sales.settle_refunds(order_id) == []
        assert len(refunds.instructions) == 1

    def test_every_retry_of_one_refund_carries_the_same_idempotency_key(self):
        keys = []

        def flaky(instruction):
            keys.append(instruction.idempotency_key)
            return None if len(keys) < 3 else "ledger-7"

        world = demo_world(refunds=flaky)
        order_id = paid(world)
        request = ask(world, order_id, "refund_only", "no_reason", ("1", 1))
        world.after_sales.approve(order_id, request.request_id, TEAHOUSE)
        world.after_sales.settle_refunds(order_id)
        world.after_sales.settle_refunds(order_id)
        assert keys == [f"{order_id}:after-sales:{request.request_id}:refund"] * 3
        assert world.after_sales.record(order_id).request(request.request_id).refund_reference == (
            "ledger-7"
        )

    def test_refunds_through_the_payment_gateway_go_back_against_the_payment(self):
        world = demo_world()
        order_id = paid(world)
        request = ask(world, order_id, "refund_only", "no_reason", ("2", 1))
        world.after_sales.approve(order_id, request.request_id, TEAHOUSE)
        assert world.orders.payments.refunded == {order_id: cny("168.00")}

    def test_a_declined_gateway_refund_leaves_the_refund_waiting(self):
        world = demo_world()
        gateway = ScriptedPaymentGateway(lambda _: GatewayStatus.DECLINED)
        world.after_sales.refunds = gateway_refunds(world.orders.orders, gateway)
        order_id = paid(world)
        request = ask(world, order_id, "refund_only", "no_reason", ("2", 1))
        assert world.after_sales.approve(order_id, request.request_id, TEAHOUSE).state == (
            "refund_approved"
        )

    def test_an_order_without_a_payment_cannot_be_refunded_through_the_gateway(self):
        world = demo_world()
        order = world.orders.buy_now(ALICE, "tea-01", 1)
        refund = gateway_refunds(world.orders.orders, world.orders.payments)
        from ecommerce_core.aftersales import RefundInstruction  # noqa: PLC0415  # one use

        instruction = RefundInstruction(order.id, "r-1", "k", (), cny("0.00"), cny("1.00"))
        with pytest.raises(RuleViolation, match="no payment"):
            refund(instruction)


class TestReturns:
    def test_a_return_pauses_the_orders_clock_until_it_is_refunded(self, world, refunds):
        order_id = delivered(world)
        due = order_of(world, order_id).deadline.at
        world.clock.advance(DAY)
        left = due - world.clock.now()
        request = ask(world, order_id, "return_and_refund", "no_reason", ("1", 1))
        assert order_of(world, order_id).auto_confirm_paused
        assert order_of(world, order_id).holds == (f"aftersales:{request.request_id}",)
        world.clock.advance(30 * DAY)
        assert world.orders.expire_due() == []
        service = world.after_sales
        service.approve(order_id, request.request_id, TEAHOUSE)
        service.ship_back(order_id, request.request_id, ALICE, carrier="YTO", tracking_number="Y")
        service.receive_return(order_id, request.request_id, TEAHOUSE)
        stock = world.orders.inventory.on_hand("tea-01")
        done = service.accept_return(order_id, request.request_id, TEAHOUSE)
        assert done.state == "refunded"
        assert refunds.refunded(order_id, "CNY") == cny("38.00")
        assert world.orders.inventory.on_hand("tea-01") == stock + 1
        order = order_of(world, order_id)
        assert order.deadline.at == world.clock.now() + left
        hold = f"aftersales:{request.request_id}"
        assert [e.hold for e in published(world, DeadlinePaused)] == [hold]
        assert [e.hold for e in published(world, DeadlineResumed)] == [hold]
        assert order.holds == ()

    def test_goods_unfit_to_sell_are_refunded_but_not_restocked(self, world):
        order_id = delivered(world)
        request = ask(world, order_id, "return_and_refund", "defective", ("2", 1))
        service = world.after_sales
        service.approve(order_id, request.request_id, TEAHOUSE)
        service.ship_back(order_id, request.request_id, ALICE, carrier="YTO", tracking_number="Y")
        service.receive_return(order_id, request.request_id, TEAHOUSE)
        stock = world.orders.inventory.on_hand("pot-01")
        service.accept_return(order_id, request.request_id, TEAHOUSE, restock=False)
        assert world.orders.inventory.on_hand("pot-01") == stock

    def test_a_rejection_resumes_the_clock_and_a_dispute_pauses_it_again(self, world):
        order_id = delivered(world)
        request = ask(world, order_id, "refund_only", "other", ("1", 1))
        service = world.after_sales
        service.reject(order_id, request.request_id, TEAHOUSE, reason="it is fine")
        assert not order_of(world, order_id).auto_confirm_paused
        service.dispute(order_id, request.request_id, ALICE, reason="it is not")
        assert order_of(world, order_id).auto_confirm_paused
        ruled = service.arbitrate(
            order_id, request.request_id, Actor.platform(), for_buyer=False, reason="fine"
        )
        assert ruled.state == "closed"
        assert not order_of(world, order_id).auto_confirm_paused

    def test_a_closed_order_takes_no_more_requests_and_nothing_is_stored(self, world):
        order_id = delivered(world)
        world.fulfilment.confirm_receipt(order_id, ALICE)
        world.clock.advance(8 * DAY)
        world.orders.expire_due()
        assert order_of(world, order_id).state == "closed"
        with pytest.raises(WindowClosed):
            ask(world, order_id, "return_and_refund", "defective", ("1", 1))
        with pytest.raises(NotFound):
            world.after_sales.record(order_id)

    def test_the_buyer_withdraws_and_closes_through_the_service(self, world):
        order_id = delivered(world)
        first = ask(world, order_id, "return_and_refund", "defective", ("1", 1))
        assert world.after_sales.withdraw(order_id, first.request_id, ALICE).state == "withdrawn"
        second = ask(world, order_id, "refund_only", "other", ("1", 1))
        world.after_sales.reject(order_id, second.request_id, TEAHOUSE, reason="no")
        assert world.after_sales.close(order_id, second.request_id, ALICE).state == "closed"
        assert not order_of(world, order_id).auto_confirm_paused


class TestExchanges:
    def exchange(self, world):
        order_id = delivered(world)
        request = ask(world, order_id, "exchange", "defective", ("2", 1))
        service = world.after_sales
        service.approve(order_id, request.request_id, TEAHOUSE)
        service.ship_back(order_id, request.request_id, ALICE, carrier="YTO", tracking_number="Y")
        service.receive_return(order_id, request.request_id, TEAHOUSE)
        service.accept_return(order_id, request.request_id, TEAHOUSE, restock=False)
        return order_id, request.request_id

    def test_the_replacement_is_packed_from_stock_and_its_delivery_ends_the_exchange(self, world):
        order_id, request_id = self.exchange(world)
        stock = world.orders.inventory.on_hand("pot-01")
        sent = world.after_sales.send_replacement(
            order_id, request_id, TEAHOUSE, carrier="SF", tracking_number="SF-R"
        )
        assert sent.state == "replacement_shipped"
        assert world.orders.inventory.on_hand("pot-01") == stock - 1
        parcel = world.fulfilment.shipments.get(sent.replacement_shipment_id)
        assert (parcel.purpose.value, parcel.reference, parcel.lines) == (
            "replacement",
            request_id,
            (ShipmentLine("2", 1),),
        )
        assert order_of(world, order_id).auto_confirm_paused
        world.fulfilment.record_tracking(
            TrackingEvent("e-r", "SF", "SF-R", "delivered", world.clock.now())
        )
        assert world.after_sales.record(order_id).request(request_id).state == "exchanged"
        assert not order_of(world, order_id).auto_confirm_paused

    def test_the_buyer_may_confirm_the_replacement_themselves(self, world):
        order_id, request_id = self.exchange(world)
        world.after_sales.send_replacement(
            order_id, request_id, TEAHOUSE, carrier="SF", tracking_number="SF-R"
        )
        done = world.after_sales.complete_exchange(order_id, request_id, ALICE)
        assert done.state == "exchanged"

    def test_no_replacement_is_packed_unless_the_exchange_waits_for_one(self, world):
        order_id = delivered(world)
        request = ask(world, order_id, "exchange", "defective", ("2", 1))
        shipments = len(world.fulfilment.shipments.all())
        with pytest.raises(TransitionNotAllowed):
            world.after_sales.send_replacement(
                order_id, request.request_id, TEAHOUSE, carrier="SF", tracking_number="SF-R"
            )
        with pytest.raises(Forbidden):
            world.after_sales.send_replacement(
                order_id, request.request_id, ALICE, carrier="SF", tracking_number="SF-R"
            )
        assert len(world.fulfilment.shipments.all()) == shipments

    def test_no_replacement_without_stock(self, world):
        order_id, request_id = self.exchange(world)
        left = world.orders.inventory.available("pot-01")
        world.orders.inventory.reserve("someone-else", [StockItem("1", "pot-01", left)])
        with pytest.raises(OutOfStock):
            world.after_sales.send_replacement(
                order_id, request_id, TEAHOUSE, carrier="SF", tracking_number="SF-R"
            )
        assert world.after_sales.record(order_id).request(request_id).state == "replacing"


class TestConcurrency:
    def test_two_first_requests_at_once_conflict_instead_of_overwriting(self, world):
        order_id = paid(world)
        records = world.after_sales.after_sales

        class Racing(InMemoryAfterSalesRepository):
            def get(self, order_id):
                raise NotFound("after-sales record", order_id)

            def add(self, record):
                records.add(record)

        ask(world, order_id, "refund_only", "no_reason", ("1", 1))
        world.after_sales.after_sales = Racing()
        with pytest.raises(Conflict):
            ask(world, order_id, "refund_only", "no_reason", ("1", 1))
        assert len(records.get(order_id).requests) == 1


class TestFailedParcels:
    def lost(self, world, policy):
        world.after_sales.policy = AfterSalesPolicy(failed_parcel=policy)
        (order,) = world.orders.checkout(ALICE, [CartItem("tea-01", 3), CartItem("pot-01", 1)])
        world.orders.pay(order.id, ALICE)
        world.fulfilment.ship(
            order.id, TEAHOUSE, carrier="SF", tracking_number="SF1", lines=[ShipmentLine("1", 2)]
        )
        second = world.fulfilment.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF2")
        world.fulfilment.record_tracking(TrackingEvent("x", "SF", "SF2", "lost", world.clock.now()))
        return order.id, second

    def test_by_default_a_lost_parcel_waits_for_the_merchant_to_send_it_again(self, world, refunds):
        order_id, parcel = self.lost(world, "reship")
        assert world.after_sales.resolve_failed_parcel(order_id, parcel.id) is None
        assert refunds.refunded(order_id, "CNY") == cny("0.00")
        assert order_of(world, order_id).holds == ("delivery:outstanding",)

    def test_with_the_refund_remedy_the_lost_units_are_refunded_at_once(self, world, refunds):
        order_id, parcel = self.lost(world, "refund")
        done = world.after_sales.resolve_failed_parcel(order_id, parcel.id)
        assert (done.kind, done.reason, done.state) == ("refund_only", "not_received", "refunded")
        assert [(i.line_id, i.quantity) for i in done.items] == [("1", 1), ("2", 1)]
        order = order_of(world, order_id)
        line_amounts = {line.line_id: line.amount for line in order.lines}
        assert refunds.refunded_on_line(order_id, "2", "CNY") == line_amounts["2"]
        assert order.holds == ()
        assert world.fulfilment.status(order_id).outstanding == 0
        assert world.after_sales.resolve_failed_parcel(order_id, parcel.id) is None  # once

    def test_after_a_reshipment_there_is_nothing_left_to_refund(self, world, refunds):
        order_id, parcel = self.lost(world, "refund")
        world.fulfilment.ship(
            order_id,
            TEAHOUSE,
            carrier="SF",
            tracking_number="SF3",
            purpose="reshipment",
            reference=parcel.id,
        )
        assert world.after_sales.resolve_failed_parcel(order_id, parcel.id) is None
        assert refunds.refunded(order_id, "CNY") == cny("0.00")

    def test_a_parcel_that_did_not_fail_or_of_another_order_is_refused(self, world):
        order_id, parcel = self.lost(world, "refund")
        (first, _) = world.fulfilment.shipments_of(order_id)
        with pytest.raises(RuleViolation, match="not a failed parcel"):
            world.after_sales.resolve_failed_parcel(order_id, first.id)
        with pytest.raises(InvalidInput):
            world.after_sales.resolve_failed_parcel("order-x", parcel.id)

    def test_only_the_platform_or_the_system_refunds_a_failed_parcel(self, world):
        order_id, parcel = self.lost(world, "refund")
        with pytest.raises(Forbidden):
            world.after_sales.resolve_failed_parcel(order_id, parcel.id, ALICE)
        assert order_of(world, order_id).holds == ("delivery:outstanding",)
