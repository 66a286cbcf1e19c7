"""The order use cases over the ports: placing, paying, cancelling, deadlines, publishing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import (
    Actor,
    CartItem,
    Conflict,
    Forbidden,
    InvalidInput,
    Money,
    NotFound,
    OrderPolicy,
    OutOfStock,
    PaymentNotCompleted,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.adapters.memory import ScriptedPaymentGateway
from ecommerce_core.demo import demo_service
from ecommerce_core.events import OrderCancelled, OrderPaid, OrderPlaced
from ecommerce_core.ports import GatewayStatus

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")


@pytest.fixture
def world():
    return demo_service(stock=5)


def stock(service, sku):
    inv = service.inventory
    return inv.on_hand(sku), inv.reserved(sku), inv.available(sku)


class TestPlacing:
    def test_buy_now_reserves_stock_and_publishes_the_placement(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        assert stock(service, "tea-01") == (5, 2, 3)
        assert [type(e) for e in service.publisher.published] == [OrderPlaced]
        assert service.orders.get(order.id).state == "pending_payment"

    def test_prices_come_from_the_catalogue(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "pot-01", 1)
        assert order.total == Money.of("168.00", "CNY")
        assert order.lines[0].category == "teaware"

    def test_a_cart_across_merchants_becomes_one_order_each(self, world):
        service, _ = world
        orders = service.checkout(
            ALICE, [CartItem("cup-01", 2), CartItem("tea-01", 1), CartItem("pot-01", 1)]
        )
        assert [(o.merchant_id, [ln.sku for ln in o.lines]) for o in orders] == [
            ("m-pottery", ["cup-01"]),
            ("m-teahouse", ["tea-01", "pot-01"]),
        ]
        assert len({o.checkout_id for o in orders}) == 1

    def test_a_cart_short_of_one_sku_reserves_and_stores_nothing(self, world):
        service, _ = world
        with pytest.raises(OutOfStock) as caught:
            service.checkout(ALICE, [CartItem("cup-01", 2), CartItem("tea-01", 6)])
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "tea-01",
            6,
            5,
        )
        assert stock(service, "cup-01") == (5, 0, 5)
        assert len(service.orders) == 0
        assert service.publisher.published == []

    @pytest.mark.parametrize(
        ("items", "error"),
        [
            ([], InvalidInput),
            ([CartItem("tea-01", 1), CartItem("tea-01", 2)], InvalidInput),
            ([CartItem("nope", 1)], NotFound),
            (["tea-01"], InvalidInput),
        ],
    )
    def test_a_bad_cart_is_refused_and_nothing_changes(self, world, items, error):
        service, _ = world
        with pytest.raises(error):
            service.checkout(ALICE, items)
        assert len(service.orders) == 0
        assert stock(service, "tea-01") == (5, 0, 5)

    def test_only_a_buyer_checks_out(self, world):
        service, _ = world
        with pytest.raises(InvalidInput, match="only a buyer"):
            service.buy_now(TEAHOUSE, "tea-01", 1)

    def test_a_huge_quantity_is_refused_before_touching_stock(self, world):
        service, _ = world
        with pytest.raises(InvalidInput, match="more than 10000"):
            service.buy_now(ALICE, "tea-01", 10**9)
        assert stock(service, "tea-01") == (5, 0, 5)


class TestPaying:
    def test_paying_commits_the_reserved_stock(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 2)
        paid = service.pay(order.id, ALICE)
        assert paid.state == "awaiting_shipment"
        assert stock(service, "tea-01") == (3, 0, 3)
        assert service.payments.charged[order.id] == order.total
        assert isinstance(service.publisher.published[-1], OrderPaid)

    @pytest.mark.parametrize("status", [GatewayStatus.DECLINED, GatewayStatus.PENDING])
    def test_a_payment_the_provider_did_not_confirm_changes_nothing(self, status):
        service, _ = demo_service(stock=5)
        service.payments = ScriptedPaymentGateway(lambda _: status)
        order = service.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(PaymentNotCompleted) as caught:
            service.pay(order.id, ALICE)
        assert caught.value.status == status.value
        stored = service.orders.get(order.id)
        assert (stored.state, stored.version) == ("pending_payment", 1)
        assert stock(service, "tea-01") == (5, 1, 4)

    def test_the_provider_is_not_asked_when_the_order_cannot_be_paid(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1)
        service.pay(order.id, ALICE)
        with pytest.raises(TransitionNotAllowed):
            service.pay(order.id, ALICE)
        with pytest.raises(Forbidden):
            service.pay(service.buy_now(ALICE, "cup-01", 1).id, Actor.buyer("bob"))
        assert list(service.payments.charged) == [order.id]

    def test_a_charge_that_loses_a_race_is_refunded(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1)
        original_charge = service.payments.charge

        def charge_while_someone_cancels(request):
            result = original_charge(request)
            service.cancel(order.id, ALICE, "changed my mind")
            return result

        service.payments.charge = charge_while_someone_cancels
        with pytest.raises(VersionConflict):
            service.pay(order.id, ALICE)
        assert service.payments.refunded[order.id] == service.payments.charged[order.id]
        assert service.orders.get(order.id).state == "cancelled"
        assert stock(service, "tea-01") == (5, 0, 5)


class TestCancelling:
    def test_cancelling_an_unpaid_order_releases_its_stock(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 3)
        service.cancel(order.id, ALICE, "changed my mind")
        assert stock(service, "tea-01") == (5, 0, 5)
        assert order.id not in service.payments.refunded

    def test_cancelling_a_paid_order_refunds_it_and_restocks(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 3)
        service.pay(order.id, ALICE)
        service.cancel(order.id, TEAHOUSE, "cannot fulfil")
        assert service.payments.refunded[order.id] == order.total
        assert stock(service, "tea-01") == (5, 0, 5)
        event = service.publisher.published[-1]
        assert isinstance(event, OrderCancelled)
        assert event.was_paid

    def test_a_refused_cancel_publishes_nothing(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1)
        count = len(service.publisher.published)
        with pytest.raises(Forbidden):
            service.cancel(order.id, Actor.merchant("m-pottery"), "not mine")
        assert len(service.publisher.published) == count


class TestDeadlines:
    def test_expire_due_cancels_unpaid_orders_and_releases_stock_once(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 2)
        clock.advance(timedelta(minutes=29))
        assert service.expire_due() == []
        clock.advance(timedelta(minutes=1))
        (fired,) = service.expire_due()
        assert (fired.order_id, fired.trigger, fired.state) == (
            order.id,
            "expire_payment",
            "cancelled",
        )
        assert stock(service, "tea-01") == (5, 0, 5)
        assert service.expire_due() == []
        assert stock(service, "tea-01") == (5, 0, 5)

    def test_a_long_silence_carries_an_order_through_every_deadline(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 1)
        service.pay(order.id, ALICE)
        service.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF9")
        clock.advance(timedelta(days=60))
        assert [f.trigger for f in service.expire_due()] == ["auto_confirm", "close"]
        assert service.orders.get(order.id).state == "closed"

    def test_a_custom_policy_sets_the_deadlines(self):
        service, clock = demo_service(policy=OrderPolicy(payment_timeout=timedelta(minutes=15)))
        order = service.buy_now(ALICE, "tea-01", 1)
        assert order.deadline is not None
        assert order.deadline.at == clock.now() + timedelta(minutes=15)

    def test_expire_due_refuses_a_naive_time(self, world):
        service, clock = world
        with pytest.raises(InvalidInput):
            service.expire_due(clock.now().replace(tzinfo=None))

    def test_an_order_changed_concurrently_is_skipped_and_picked_up_later(self, world):
        service, clock = world
        order = service.buy_now(ALICE, "tea-01", 1)
        clock.advance(timedelta(hours=1))
        repo = service.orders
        original_get = repo.get
        raced = []

        def get_then_race(order_id):
            loaded = original_get(order_id)
            if not raced:
                raced.append(order_id)
                winner = original_get(order_id)
                winner.cancel(ALICE, reason="raced", now=clock.now())
                repo.save(winner, loaded.version)
            return loaded

        repo.get = get_then_race
        assert service.expire_due() == []
        assert repo.get(order.id).cancellation.reason == "raced"


class TestLookups:
    def test_an_unknown_order_is_not_found(self, world):
        service, _ = world
        with pytest.raises(NotFound, match="no order with id 'nope'"):
            service.ship("nope", TEAHOUSE, carrier="SF", tracking_number="1")

    def test_adding_the_same_order_twice_conflicts(self, world):
        service, _ = world
        order = service.buy_now(ALICE, "tea-01", 1)
        with pytest.raises(Conflict):
            service.orders.add(order)
