"""Random sequences of commands against the order service, checked after every step.

Any actor, valid and invalid input, time moving forward, payments that fail. After every step:

- a refused command changed nothing (orders, versions, stock, money, published events);
- an accepted command raised its order's version by exactly one per event;
- stock reserved equals the units on orders awaiting payment, and stock on hand equals what
  was received less the units on paid, uncancelled orders;
- the money the gateway holds per order is its total exactly when it is paid and not cancelled;
- every state is one the process declares, and every deadline matches its state.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ecommerce_core import Actor, CartItem, EcommerceCoreError, Money, OrderPolicy
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryOrderRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.orders import STANDARD_ORDER_PROCESS, TIMERS
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import OrderService

STOCK = 12
PRODUCTS = (
    Product("tea", "m-1", "tea", Money.of("38.00", "CNY")),
    Product("pot", "m-1", "pot", Money.of("168.00", "CNY")),
    Product("cup", "m-2", "cup", Money.of("25.00", "CNY")),
)
SKUS = [p.sku for p in PRODUCTS]
ACTORS = st.sampled_from(
    [
        Actor.buyer("alice"),
        Actor.buyer("bob"),
        Actor.merchant("m-1"),
        Actor.merchant("m-2"),
        Actor.platform(),
        Actor.carrier("SF"),
        Actor.system(),
    ]
)
BUYERS = st.sampled_from([Actor.buyer("alice"), Actor.buyer("bob"), Actor.merchant("m-1")])
QUANTITY = st.one_of(st.integers(1, 6), st.sampled_from([0, -1, 10**6]))
CART = st.lists(
    st.builds(CartItem, st.sampled_from([*SKUS, "ghost"]), st.integers(1, 6)),
    max_size=3,
)
PAID = {"awaiting_shipment", "shipped", "delivered", "completed", "closed"}


class OrderLifecycle(RuleBasedStateMachine):
    orders = Bundle("orders")

    @initialize()
    def start(self) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.service = OrderService(
            orders=InMemoryOrderRepository(),
            inventory=InMemoryInventory(dict.fromkeys(SKUS, STOCK)),
            catalog=InMemoryCatalog(PRODUCTS),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=RecordingPublisher(),
            policy=OrderPolicy(max_line_quantity=50),
        )
        self.repo: InMemoryOrderRepository = self.service.orders  # type: ignore[assignment]
        self.inventory: InMemoryInventory = self.service.inventory  # type: ignore[assignment]
        self.publisher: RecordingPublisher = self.service.publisher  # type: ignore[assignment]

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        orders = tuple(
            (o.id, o.state, o.version, o.deadline, o.payment, o.shipment, o.cancellation)
            for o in self.repo.all()
        )
        stock = tuple(
            (self.inventory.on_hand(s), self.inventory.reserved(s), self.inventory.available(s))
            for s in SKUS
        )
        money = (dict(self.gateway.charged), dict(self.gateway.refunded))
        return orders, stock, money, len(self.publisher.published)

    def versions(self) -> dict[str, int]:
        return {o.id: o.version for o in self.repo.all()}

    def attempt(self, order_id: str | None, action) -> bool:
        before, versions = self.snapshot(), self.versions()
        published = len(self.publisher.published)
        try:
            action()
        except EcommerceCoreError:
            assert self.snapshot() == before, "a refused command changed something"
            return False
        if order_id is not None:
            new_events = [
                e for e in self.publisher.published[published:] if e.aggregate_id == order_id
            ]
            assert (
                self.versions()[order_id]
                == versions[order_id] + len(new_events)
                == (versions[order_id] + 1)
            ), "an accepted command raises the version by exactly one"
            others = {k: v for k, v in self.versions().items() if k != order_id}
            assert others == {k: v for k, v in versions.items() if k != order_id}
        return True

    # ------------------------------------------------------------------ rules

    @rule(target=orders, buyer=BUYERS, sku=st.sampled_from([*SKUS, "ghost"]), quantity=QUANTITY)
    def buy_now(self, buyer, sku, quantity):
        before, count = self.snapshot(), len(self.repo)
        try:
            order = self.service.buy_now(buyer, sku, quantity)
        except EcommerceCoreError:
            assert self.snapshot() == before
            return "missing"
        assert len(self.repo) == count + 1
        assert order.version == 1
        return order.id

    @rule(buyer=BUYERS, items=CART)
    def checkout(self, buyer, items):
        before, count = self.snapshot(), len(self.repo)
        try:
            orders = self.service.checkout(buyer, items)
        except EcommerceCoreError:
            assert self.snapshot() == before
            return
        assert len({o.checkout_id for o in orders}) == 1
        assert len({o.merchant_id for o in orders}) == len(orders) == len(self.repo) - count

    @rule(order_id=orders, actor=ACTORS)
    def pay(self, order_id, actor):
        self.attempt(order_id, lambda: self.service.pay(order_id, actor))

    @rule(outcome=st.sampled_from(list(GatewayStatus)))
    def the_gateway_answers(self, outcome):
        self.outcome = outcome

    @rule(order_id=orders, actor=ACTORS, tracking=st.sampled_from(["SF1", ""]))
    def ship(self, order_id, actor, tracking):
        self.attempt(
            order_id,
            lambda: self.service.ship(order_id, actor, carrier="SF", tracking_number=tracking),
        )

    @rule(order_id=orders, actor=ACTORS)
    def deliver(self, order_id, actor):
        self.attempt(order_id, lambda: self.service.deliver(order_id, actor))

    @rule(order_id=orders, actor=ACTORS)
    def confirm_receipt(self, order_id, actor):
        self.attempt(order_id, lambda: self.service.confirm_receipt(order_id, actor))

    @rule(order_id=orders, actor=ACTORS, reason=st.sampled_from(["changed my mind", ""]))
    def cancel(self, order_id, actor, reason):
        self.attempt(order_id, lambda: self.service.cancel(order_id, actor, reason))

    @rule(minutes=st.integers(0, 60 * 24 * 12))
    def time_passes(self, minutes):
        self.clock.advance(timedelta(minutes=minutes))
        versions = self.versions()
        fired = self.service.expire_due()
        for each in fired:
            assert each.state in STANDARD_ORDER_PROCESS.states
        per_order: dict[str, int] = {}
        for each in fired:
            per_order[each.order_id] = per_order.get(each.order_id, 0) + 1
        after = self.versions()
        for order_id, version in versions.items():
            assert after[order_id] == version + per_order.get(order_id, 0)
        assert self.service.expire_due() == [], "expire_due is idempotent"

    @precondition(lambda self: len(self.repo) > 0)
    @rule()
    def a_stale_writer_conflicts(self):
        order = self.repo.all()[0]
        before = self.snapshot()
        stale = order.version - 1
        try:
            self.repo.save(order, stale)
        except EcommerceCoreError:
            assert self.snapshot() == before
        else:
            raise AssertionError("a stale save was accepted")

    # ------------------------------------------------------------------ invariants

    @invariant()
    def stock_follows_the_orders(self):
        reserved = dict.fromkeys(SKUS, 0)
        sold = dict.fromkeys(SKUS, 0)
        for order in self.repo.all():
            for line in order.lines:
                if order.state == "pending_payment":
                    reserved[line.sku] += line.quantity
                elif order.state in PAID:
                    sold[line.sku] += line.quantity
        for sku in SKUS:
            assert self.inventory.reserved(sku) == reserved[sku]
            assert self.inventory.on_hand(sku) == STOCK - sold[sku]
            assert self.inventory.available(sku) >= 0

    @invariant()
    def money_held_matches_paid_orders(self):
        for order in self.repo.all():
            charged = self.gateway.charged.get(order.id, Money.zero("CNY"))
            refunded = self.gateway.refunded.get(order.id, Money.zero("CNY"))
            expected = order.total if order.state in PAID else Money.zero("CNY")
            assert charged - refunded == expected

    @invariant()
    def states_and_deadlines_are_consistent(self):
        for order in self.repo.all():
            assert order.state in STANDARD_ORDER_PROCESS.states
            timer = TIMERS.get(order.state)
            if timer is None:
                assert order.deadline is None
            else:
                assert order.deadline is not None
                assert order.deadline.trigger == timer[0]
            assert (order.payment is not None) == (
                order.state in PAID
                or (order.cancellation is not None and order.payment is not None)
            )


OrderLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestOrderLifecycle = OrderLifecycle.TestCase
