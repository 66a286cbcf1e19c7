"""Checkout with a delivery option: the chosen option's fee is the order's shipping fee."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, CartItem, DeliveryOptionUnavailable, InvalidInput, Money
from ecommerce_core.adapters.memory import InMemoryCarriers
from ecommerce_core.delivery import DeliveryOption
from ecommerce_core.demo import DEMO_DELIVERY_OPTIONS, demo_payment_service, demo_world

ALICE = Actor.buyer("alice")
CART = [CartItem("tea-01", 2), CartItem("cup-01", 1)]


def cny(amount):
    return Money.of(amount, "CNY")


@pytest.fixture
def world():
    world = demo_world()
    world.orders.carriers = world.carriers
    return world


def stored(world):
    return (
        [(o.id, o.version) for o in world.orders.orders.all()],
        {sku: world.orders.inventory.available(sku) for sku in ("tea-01", "cup-01")},
        len(world.orders.publisher.published),
    )


class TestChoosingAtCheckout:
    def test_each_merchants_option_fee_becomes_its_orders_shipping_fee_and_total(self, world):
        orders = world.orders.checkout(
            ALICE, CART, delivery={"m-teahouse": "sf-exp", "m-pottery": "zto"}
        )
        assert [(o.merchant_id, str(o.shipping_fee), str(o.total)) for o in orders] == [
            ("m-pottery", "8.00 CNY", "33.00 CNY"),
            ("m-teahouse", "22.00 CNY", "98.00 CNY"),
        ]

    def test_the_option_as_the_buyer_saw_it_is_accepted_while_it_is_still_offered(self, world):
        shown = world.carriers.delivery_options("m-teahouse", [])[2]
        (order,) = world.orders.checkout(
            ALICE, [CartItem("tea-01", 1)], delivery={"m-teahouse": shown}
        )
        assert order.shipping_fee == cny("0.00")

    def test_without_a_choice_the_checkout_is_as_before(self, world):
        (order,) = world.orders.checkout(ALICE, [CartItem("tea-01", 1)])
        assert order.shipping_fee == cny("0.00")

    @settings(max_examples=10, deadline=None)
    @given(choice=st.sampled_from([o.option_id for o in DEMO_DELIVERY_OPTIONS["m-teahouse"]]))
    def test_the_total_is_the_lines_plus_the_chosen_fee(self, choice):
        world = demo_world()
        world.orders.carriers = world.carriers
        (order,) = world.orders.checkout(
            ALICE, [CartItem("pot-01", 1)], delivery={"m-teahouse": choice}
        )
        fee = next(o.fee for o in DEMO_DELIVERY_OPTIONS["m-teahouse"] if o.option_id == choice)
        assert order.total == cny("168.00") + fee


class TestRefusals:
    def test_an_option_withdrawn_before_placement_is_refused_and_nothing_is_stored(self, world):
        before = stored(world)
        world.carriers.withdraw("m-teahouse", "sf-exp")
        with pytest.raises(DeliveryOptionUnavailable):
            world.orders.checkout(
                ALICE, CART, delivery={"m-teahouse": "sf-exp", "m-pottery": "zto"}
            )
        assert stored(world) == before

    def test_an_option_repriced_since_the_buyer_saw_it_is_refused(self, world):
        shown = world.carriers.delivery_options("m-teahouse", [])[0]
        world.carriers.withdraw("m-teahouse", "sf-std")
        world.carriers.offer(
            "m-teahouse",
            DeliveryOption("sf-std", "SF", "standard", cny("15.00"), 2, cod_supported=True),
        )
        before = stored(world)
        with pytest.raises(DeliveryOptionUnavailable):
            world.orders.checkout(ALICE, [CartItem("tea-01", 1)], delivery={"m-teahouse": shown})
        assert stored(world) == before

    def test_an_unknown_option_or_a_merchant_left_out_is_refused(self, world):
        before = stored(world)
        with pytest.raises(DeliveryOptionUnavailable):
            world.orders.checkout(ALICE, CART, delivery={"m-teahouse": "drone", "m-pottery": "zto"})
        with pytest.raises(InvalidInput):
            world.orders.checkout(ALICE, CART, delivery={"m-teahouse": "sf-std"})
        assert stored(world) == before

    def test_a_delivery_choice_without_carriers_configured_is_refused(self):
        world = demo_world()
        with pytest.raises(InvalidInput, match="no carriers"):
            world.orders.checkout(
                ALICE, CART, delivery={"m-teahouse": "sf-std", "m-pottery": "zto"}
            )


class TestCashOnDelivery:
    def service(self):
        service, _ = demo_payment_service()
        service.carriers = InMemoryCarriers(dict(DEMO_DELIVERY_OPTIONS))
        return service

    def test_cash_on_delivery_takes_an_option_that_supports_it(self):
        service = self.service()
        (order,) = service.checkout(
            ALICE, [CartItem("tea-01", 1)], "cod", delivery={"m-teahouse": "sf-std"}
        )
        assert (order.payment_method, str(order.total)) == ("cod", "50.00 CNY")

    def test_cash_on_delivery_with_an_option_without_it_is_refused(self):
        service = self.service()
        with pytest.raises(DeliveryOptionUnavailable):
            service.checkout(
                ALICE, [CartItem("tea-01", 1)], "cod", delivery={"m-teahouse": "sf-exp"}
            )
        assert service.orders.all() == []
