"""Random sequences of commands against the order service, checked after every step.

The machine is the published :class:`ecommerce_core.testing.stateful.OrderLifecycleMachine`,
run here on the in-memory adapters. Any actor, valid and invalid input, time moving forward,
payments that fail. After every step:

- a refused command changed nothing (orders, versions, stock, money, published events);
- an accepted command raised its order's version by exactly one per event;
- stock reserved equals the units on orders awaiting payment, and stock on hand equals what
  was received less the units on paid, uncancelled orders;
- the money the gateway holds per order is its total exactly when it is paid and not cancelled;
- every state is one the process declares, and every deadline matches its state.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from ecommerce_core import Actor
from ecommerce_core.errors import InvalidInput, RuleViolation
from ecommerce_core.ports import GatewayStatus
from ecommerce_core.testing.stateful import OrderLifecycleMachine


class InMemoryOrderLifecycle(OrderLifecycleMachine):
    """The default adapters, with every stored order listed by the repository itself.

    Listing the whole repository (not only the ids the service was given) also catches an
    order stored under an id nobody asked for.
    """

    def stored_orders(self):
        return self.repository.all()


InMemoryOrderLifecycle.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestOrderLifecycle = InMemoryOrderLifecycle.TestCase


class DefaultOrderLifecycle(OrderLifecycleMachine):
    """The machine exactly as published: in-memory adapters, orders found through the port."""


DefaultOrderLifecycle.TestCase.settings = settings(
    max_examples=15, stateful_step_count=30, deadline=None
)
TestDefaultOrderLifecycle = DefaultOrderLifecycle.TestCase


class TestACancelWhoseRefundIsDeclined:
    def test_is_refused_and_leaves_the_order_paid_with_its_money(self):
        machine = OrderLifecycleMachine()
        machine.refunds_may_fail = True
        machine.start()
        order = machine.service.buy_now(Actor.buyer("alice"), "tea", 1)
        machine.service.pay(order.id, Actor.buyer("alice"))
        machine.outcome = GatewayStatus.DECLINED
        before = machine.snapshot()
        with pytest.raises(RuleViolation, match="declined the refund"):
            machine.service.cancel(order.id, Actor.buyer("alice"), "changed my mind")
        assert machine.snapshot() == before
        assert machine.repository.get(order.id).state == "awaiting_shipment"
        machine.money_held_matches_paid_orders()

    def test_a_cancel_refused_for_its_input_never_asks_the_provider(self):
        machine = OrderLifecycleMachine()
        machine.start()
        order = machine.service.buy_now(Actor.buyer("alice"), "tea", 1)
        machine.service.pay(order.id, Actor.buyer("alice"))
        before = machine.snapshot()
        with pytest.raises(InvalidInput):
            machine.service.cancel(order.id, Actor.buyer("alice"), "")
        assert machine.snapshot() == before
        assert order.id not in machine.gateway.refunded

    def test_a_retry_sends_the_same_key_and_never_refunds_twice(self):
        machine = OrderLifecycleMachine()
        machine.refunds_may_fail = True
        machine.start()
        order = machine.service.buy_now(Actor.buyer("alice"), "tea", 1)
        machine.service.pay(order.id, Actor.buyer("alice"))
        machine.outcome = GatewayStatus.DECLINED
        for _ in range(2):
            with pytest.raises(RuleViolation):
                machine.service.cancel(order.id, Actor.buyer("alice"), "changed my mind")
        assert order.id not in machine.gateway.refunded
        machine.money_held_matches_paid_orders()

    def test_with_refunds_that_succeed_the_same_story_cancels_and_refunds(self):
        machine = OrderLifecycleMachine()
        machine.start()
        order = machine.service.buy_now(Actor.buyer("alice"), "tea", 1)
        machine.service.pay(order.id, Actor.buyer("alice"))
        machine.outcome = GatewayStatus.DECLINED
        machine.service.cancel(order.id, Actor.buyer("alice"), "changed my mind")
        machine.money_held_matches_paid_orders()
        assert machine.gateway.refunded == {order.id: order.total}
