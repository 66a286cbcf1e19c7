"""After-sales refunds through the payment service's ledger (``ledger_refunds``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, AfterSalesItem, CartItem, Money, ShipmentLine, TrackingEvent
from ecommerce_core.adapters.memory import (
    InMemoryAfterSalesRepository,
    InMemoryCarriers,
    InMemoryPromotionCatalog,
    InMemoryPromotionLedger,
    InMemoryShipmentRepository,
)
from ecommerce_core.aftersales import AfterSalesPolicy, RefundInstruction, RefundLine
from ecommerce_core.demo import DEMO_DELIVERY_OPTIONS, demo_payment_service
from ecommerce_core.errors import InvalidInput, RuleViolation
from ecommerce_core.limits import Limit
from ecommerce_core.payments import RefundStatus
from ecommerce_core.payments.ledger import ORDER_LEVEL
from ecommerce_core.policies import PricingPolicy
from ecommerce_core.ports import GatewayStatus
from ecommerce_core.promotions import AmountOff, Promotion, Scope
from ecommerce_core.services import AfterSalesService, FulfilmentService
from ecommerce_core.services.aftersales import ledger_refunds

ALICE = Actor.buyer("alice")
TEAHOUSE = Actor.merchant("m-teahouse")
WELCOME = "welcome:uses:buyer:alice"


def cny(amount):
    return Money.of(amount, "CNY")


class World:
    """A payment service with a ledger, fulfilment and after-sales refunding through it."""

    def __init__(self, *, release_when_paid=True):
        self.payments, self.clock = demo_payment_service(stock=20)
        self.payments.promotions = InMemoryPromotionCatalog(
            [
                Promotion(
                    "welcome",
                    AmountOff(cny("10.00")),
                    scope=Scope(merchants={"m-teahouse"}),
                    limits=[Limit.uses_per_buyer(1)],
                )
            ]
        )
        self.payments.promotion_ledger = InMemoryPromotionLedger()
        self.payments.pricing_policy = PricingPolicy(
            release_when_paid_order_cancelled=release_when_paid
        )
        shipments, records = InMemoryShipmentRepository(), InMemoryAfterSalesRepository()
        common = {
            "orders": self.payments.orders,
            "shipments": shipments,
            "clock": self.clock,
            "ids": self.payments.ids,
            "publisher": self.payments.publisher,
            "inventory": self.payments.inventory,
        }
        self.fulfilment = FulfilmentService(
            after_sales=records, policy=self.payments.policy, **common
        )
        self.after_sales = AfterSalesService(
            after_sales=records,
            refunds=ledger_refunds(self.payments),
            policy=AfterSalesPolicy(),
            order_policy=self.payments.policy,
            **common,
        )

    def paid(self, tea=3, pot=1):
        (order,) = self.payments.checkout(ALICE, [CartItem("tea-01", tea), CartItem("pot-01", pot)])
        self.payments.pay(order.id, ALICE)
        return order.id

    def ship_split(self, order_id, tea):
        self.fulfilment.ship(
            order_id, TEAHOUSE, carrier="SF", tracking_number="SF1", lines=[ShipmentLine("1", tea)]
        )
        self.fulfilment.ship(order_id, TEAHOUSE, carrier="SF", tracking_number="SF2")
        for n, tracking in enumerate(("SF2", "SF1")):  # delivered out of order
            self.fulfilment.record_tracking(
                TrackingEvent(f"e{n}", "SF", tracking, "delivered", self.clock.now())
            )

    def return_units(self, order_id, *items, restock=True):
        service = self.after_sales
        request = service.request(
            order_id,
            ALICE,
            kind="return_and_refund",
            reason="no_reason",
            items=[AfterSalesItem(line, units) for line, units in items],
        )
        service.approve(order_id, request.request_id, TEAHOUSE)
        service.ship_back(
            order_id, request.request_id, ALICE, carrier="YTO", tracking_number=request.request_id
        )
        service.receive_return(order_id, request.request_id, TEAHOUSE)
        return service.accept_return(order_id, request.request_id, TEAHOUSE, restock=restock)

    def usage(self):
        return self.payments.promotion_ledger.usage([WELCOME])[WELCOME]


def conserved_and_capped(world, order_id):
    """The ledger balances per line and no line gave back more than was paid for it."""
    money = world.payments.money(order_id)
    record = world.after_sales.record(order_id)
    assert money.balanced
    for line_id, line in money.lines.items():
        assert line.balanced, line_id
        assert line.refunded <= line.paid_in, line_id
    for line in world.payments.orders.get(order_id).lines:
        assert money.lines[line.line_id].refunded == record.refunded_amount(line.line_id)
    return money


class TestRefundsThroughTheLedger:
    def test_a_partial_return_after_a_split_shipment_refunds_the_lines_stored_share(self):
        world = World()
        order_id = world.paid()
        world.ship_split(order_id, tea=2)
        stock = world.payments.inventory.on_hand("tea-01")
        done = world.return_units(order_id, ("1", 1))
        assert done.state == "refunded"
        order = world.payments.orders.get(order_id)
        tea = order.lines[0]
        share = done.refund.lines[0].amount
        assert share < tea.unit_price  # the discount stays on the line, never re-prorated
        money = conserved_and_capped(world, order_id)
        assert money.lines["1"].refunded == share
        assert money.lines["2"].refunded == cny("0.00")
        assert money.refunded == share
        assert world.payments.inventory.on_hand("tea-01") == stock + 1
        assert done.refund_reference is not None
        assert world.usage() == 1  # a partial refund keeps the promotion's use

    def test_refunding_everything_releases_the_promotion_use_when_the_policy_says(self):
        world = World()
        order_id = world.paid()
        world.ship_split(order_id, tea=1)
        world.return_units(order_id, ("1", 2))
        assert world.usage() == 1
        world.return_units(order_id, ("1", 1), ("2", 1), restock=False)
        money = conserved_and_capped(world, order_id)
        assert money.refunded == money.paid_in
        assert world.usage() == 0

    def test_a_full_refund_keeps_the_promotion_use_when_the_policy_keeps_it(self):
        world = World(release_when_paid=False)
        order_id = world.paid()
        world.ship_split(order_id, tea=3)
        world.return_units(order_id, ("1", 3), ("2", 1))
        assert world.payments.money(order_id).refunded == world.payments.money(order_id).paid_in
        assert world.usage() == 1

    @settings(max_examples=15, deadline=None)
    @given(
        first=st.integers(1, 3),
        returns=st.lists(
            st.tuples(st.sampled_from("12"), st.integers(1, 3)), min_size=1, max_size=4
        ),
    )
    def test_any_sequence_of_returns_conserves_money_and_never_over_refunds_a_line(
        self, first, returns
    ):
        world = World()
        order_id = world.paid(tea=3, pot=2)
        world.ship_split(order_id, tea=first)
        left = {"1": 3, "2": 2}
        for line, asked in returns:
            units = min(asked, left[line])
            if units == 0:
                continue
            world.return_units(order_id, (line, units))
            left[line] -= units
        money = conserved_and_capped(world, order_id)
        if left == {"1": 0, "2": 0}:
            assert money.refunded == money.paid_in


class TestFreightThroughTheLedger:
    def test_freight_goes_back_at_order_level_when_the_merchant_is_at_fault(self):
        world = World()
        world.payments.carriers = InMemoryCarriers(dict(DEMO_DELIVERY_OPTIONS))
        (order,) = world.payments.checkout(
            ALICE, [CartItem("tea-01", 2)], delivery={"m-teahouse": "sf-std"}
        )
        world.payments.pay(order.id, ALICE)
        world.fulfilment.ship(order.id, TEAHOUSE, carrier="SF", tracking_number="SF1")
        world.fulfilment.record_tracking(
            TrackingEvent("e", "SF", "SF1", "delivered", world.clock.now())
        )
        service = world.after_sales
        request = service.request(
            order.id, ALICE, kind="refund_only", reason="defective", items=[AfterSalesItem("1", 2)]
        )
        done = service.approve(order.id, request.request_id, TEAHOUSE)
        assert done.refund.freight == cny("12.00")
        money = world.payments.money(order.id)
        assert money.lines[ORDER_LEVEL].refunded == cny("12.00")
        assert money.refunded == money.paid_in
        assert money.balanced


class TestTheHandler:
    def test_asking_again_with_the_same_key_refunds_once(self):
        world = World()
        order_id = world.paid()
        handler = ledger_refunds(world.payments)
        instruction = RefundInstruction(
            order_id, "as-x", "as-x:refund", (RefundLine("1", 1, cny("5.00")),), cny("0"), cny("5")
        )
        first = handler(instruction)
        assert handler(instruction) == first
        assert world.payments.money(order_id).refunded == cny("5.00")

    def test_freight_goes_back_as_order_level_money_and_an_empty_refund_moves_nothing(self):
        world = World()
        order_id = world.paid()
        handler = ledger_refunds(world.payments)
        nothing = RefundInstruction(order_id, "as-0", "k0", (), cny("0"), cny("0"))
        assert handler(nothing) == "k0:nothing"
        assert world.payments.money(order_id).refunded == cny("0.00")
        freight = RefundInstruction(order_id, "as-f", "kf", (), cny("1.00"), cny("1.00"))
        with pytest.raises(InvalidInput):  # no shipping fee was paid on this order
            handler(freight)
        assert world.payments.money(order_id).refunded == cny("0.00")

    def test_more_than_a_line_can_still_refund_is_refused_and_nothing_moves(self):
        world = World()
        order_id = world.paid()
        paid = world.payments.money(order_id).lines["1"].paid_in
        handler = ledger_refunds(world.payments)
        too_much = RefundInstruction(
            order_id, "as-x", "k", (RefundLine("1", 3, paid + cny("0.01")),), cny("0"), paid
        )
        with pytest.raises(InvalidInput):
            handler(too_much)
        assert world.payments.money(order_id).refunded == cny("0.00")

    def test_an_unpaid_order_cannot_be_refunded(self):
        world = World()
        (order,) = world.payments.checkout(ALICE, [CartItem("tea-01", 1)])
        handler = ledger_refunds(world.payments)
        instruction = RefundInstruction(
            order.id, "as-x", "k", (RefundLine("1", 1, cny("1.00")),), cny("0"), cny("1.00")
        )
        with pytest.raises(RuleViolation):
            handler(instruction)

    def test_a_declined_refund_waits_and_is_asked_again_under_a_fresh_key(self):
        world = World()
        order_id = world.paid()
        gateway = world.payments.payments
        handler = ledger_refunds(world.payments)
        instruction = RefundInstruction(
            order_id, "as-x", "k", (RefundLine("1", 1, cny("5.00")),), cny("0"), cny("5.00")
        )
        gateway.decide = lambda _: GatewayStatus.DECLINED
        assert handler(instruction) is None
        gateway.decide = lambda _: GatewayStatus.SUCCEEDED
        (payment,) = world.payments.payments_of(order_id)
        assert [r.status for r in payment.refunds] == [RefundStatus.FAILED]
        assert handler(instruction) is not None
        (payment,) = world.payments.payments_of(order_id)
        assert [r.status for r in payment.refunds] == [RefundStatus.FAILED, RefundStatus.SUCCEEDED]
        assert world.payments.money(order_id).refunded == cny("5.00")
