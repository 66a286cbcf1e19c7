"""A stateful test of the whole order lifecycle that a host runs against its own adapters.

:class:`OrderLifecycleMachine` drives an :class:`~ecommerce_core.services.OrderService`
through random sequences of commands: buy now, cart checkout, pay (with the provider
succeeding, declining or not answering), ship, deliver, confirm, cancel, time passing (with
``expire_due``), and stale writers; by any actor, with valid and invalid input. After every
step it checks:

- a refused command changed nothing (orders, versions, stock, money, published events);
- an accepted command raised its order's version by exactly one per event, and no other
  order's version;
- stock reserved equals the units on orders awaiting payment, and stock on hand equals what
  was received less the units on paid, uncancelled orders;
- the money the gateway holds per order is its total exactly when it is paid and not
  cancelled;
- every state is one the process declares, and every deadline matches its state;
- ``expire_due`` is idempotent, and a stale save is refused.

It runs on the in-memory adapters by default. To run it on yours, subclass it, override the
factories for the ports you implement, and expose its ``TestCase`` to pytest::

    from ecommerce_core.testing.stateful import OrderLifecycleMachine


    class PostgresLifecycle(OrderLifecycleMachine):
        def make_repository(self) -> OrderRepository:
            return PostgresOrderRepository(fresh_schema())

        def make_inventory(self) -> Inventory:
            return PostgresInventory(fresh_schema())


    TestPostgresLifecycle = PostgresLifecycle.TestCase

Each factory is called once per test case (each Hypothesis example) and must return a fresh,
empty adapter. The payment gateway and the clock are the machine's own
(:class:`~ecommerce_core.adapters.memory.ScriptedPaymentGateway`,
:class:`~ecommerce_core.adapters.memory.ManualClock`): it decides the provider's answers and
moves time. The machine only calls the ports, so any correct adapter passes; override
:meth:`~OrderLifecycleMachine.stored_orders` if your repository can list every order, to
check that no command stored an order under an id it was not given. Release resources (a
database connection) in :meth:`~OrderLifecycleMachine.teardown`.
"""

# ruff: noqa: S101  # the testing kit asserts, as tests do.

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import ClassVar, Final

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryOrderRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.errors import EcommerceCoreError, NotFound
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import STANDARD_ORDER_PROCESS, TIMERS, CartItem, Order
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import (
    Catalog,
    EventPublisher,
    GatewayStatus,
    IdSource,
    Inventory,
    OrderRepository,
    Product,
    RefundRequest,
)
from ecommerce_core.services import OrderService

__all__ = [
    "LIFECYCLE_PRODUCTS",
    "LIFECYCLE_STOCK",
    "OrderLifecycleMachine",
    "RefusalsChangeNothing",
]

LIFECYCLE_STOCK: Final = 12
"""Units of each product the machine receives into a fresh inventory."""

LIFECYCLE_PRODUCTS: Final = (
    Product("tea", "m-1", "tea", Money.of("38.00", "CNY")),
    Product("pot", "m-1", "pot", Money.of("168.00", "CNY")),
    Product("cup", "m-2", "cup", Money.of("25.00", "CNY")),
)
"""The products the machine sells: two merchants, so carts split."""

_SKUS: Final = [p.sku for p in LIFECYCLE_PRODUCTS]
_ACTORS: Final = st.sampled_from(
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
_BUYERS: Final = st.sampled_from([Actor.buyer("alice"), Actor.buyer("bob"), Actor.merchant("m-1")])
# Valid quantities twice as often as invalid ones, so enough orders are placed.
_QUANTITY: Final = st.one_of(st.integers(1, 6), st.integers(1, 3), st.sampled_from([0, -1, 10**6]))
_CART: Final = st.lists(
    st.builds(CartItem, st.sampled_from([*_SKUS, "ghost"]), st.integers(1, 6)),
    max_size=3,
)
_PAID: Final = {"awaiting_shipment", "shipped", "delivered", "completed", "closed"}
# Mostly short steps (an order lives long enough to be paid and shipped), sometimes long ones
# (deadlines fall due, several in a row).
_MINUTES: Final = st.one_of(st.integers(0, 20), st.integers(0, 20), st.integers(0, 60 * 24 * 12))
# Success twice as likely as each failure, so orders get paid.
_ANSWERS: Final = st.sampled_from(
    [
        GatewayStatus.SUCCEEDED,
        GatewayStatus.SUCCEEDED,
        GatewayStatus.DECLINED,
        GatewayStatus.PENDING,
    ]
)
_COMMANDS: Final = ("pay", "ship", "deliver", "confirm_receipt", "cancel")
_NEXT_STEP: Final = {
    "pending_payment": "pay",
    "awaiting_shipment": "ship",
    "shipped": "deliver",
    "delivered": "confirm_receipt",
}


class _RecordingIds:
    """Passes ids through and remembers them, so the machine can find every order."""

    def __init__(self, ids: IdSource) -> None:
        self.ids = ids
        self.issued: dict[str, list[str]] = {}

    def next_id(self, kind: str) -> str:
        new_id = self.ids.next_id(kind)
        self.issued.setdefault(kind, []).append(new_id)
        return new_id


class _Tee:
    """Records what the service publishes, then hands it to the adapter under test."""

    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher
        self.published: list[DomainEvent] = []

    def publish(self, events: Sequence[DomainEvent]) -> None:
        events = tuple(events)
        self.published.extend(events)
        self.publisher.publish(events)


class OrderLifecycleMachine(RuleBasedStateMachine):
    """Random command sequences against an :class:`OrderService`, checked after every step.

    Attributes:
        service: The service under test, wired to the factories' adapters.
        repository: The repository from :meth:`make_repository`.
        inventory: The inventory from :meth:`make_inventory`.
        publisher: The publisher from :meth:`make_publisher`.
        gateway: The machine's scripted payment provider.
        clock: The machine's manual clock.
        published: Every event the service published, in order.

    """

    orders = Bundle("orders")
    policy: ClassVar[OrderPolicy] = OrderPolicy(max_line_quantity=50)
    refunds_may_fail: ClassVar[bool] = False
    """Whether the provider may decline refunds, or leave them pending, not only charges.

    Off by default. A declined refund refuses the cancel and leaves the order paid
    (:meth:`~ecommerce_core.services.OrderService.cancel`), but a refund left pending cancels
    the order while the provider still holds the money until it settles, which the money
    invariant checked after every step would report: the plain service keeps no record of
    refunds (:class:`~ecommerce_core.services.PaymentService` does).
    """

    # ------------------------------------------------------------------ factories

    def make_repository(self) -> OrderRepository:
        """A fresh, empty order repository (in-memory unless overridden)."""
        return InMemoryOrderRepository()

    def make_inventory(self) -> Inventory:
        """A fresh inventory with no stock (in-memory unless overridden)."""
        return InMemoryInventory()

    def make_catalog(self, products: Sequence[Product]) -> Catalog:
        """A catalog holding exactly ``products`` (in-memory unless overridden)."""
        return InMemoryCatalog(products)

    def make_ids(self) -> IdSource:
        """A fresh id source (sequential unless overridden)."""
        return SequentialIds()

    def make_publisher(self) -> EventPublisher:
        """A fresh event publisher (a recording one unless overridden)."""
        return RecordingPublisher()

    def stored_orders(self) -> list[Order]:
        """Every stored order, sorted by id.

        By default: every order id the service was given, looked up through the repository
        port. Override it to list the whole repository if yours can.
        """
        found = []
        for order_id in self._ids.issued.get("order", ()):
            try:
                found.append(self.repository.get(order_id))
            except NotFound:
                continue
        return sorted(found, key=lambda order: order.id)

    # ------------------------------------------------------------------ set-up

    @initialize()
    def start(self) -> None:
        """Wire a service to fresh adapters and stock every product."""
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(self._answer)
        self.repository = self.make_repository()
        self.inventory = self.make_inventory()
        for sku in _SKUS:
            self.inventory.receive(sku, LIFECYCLE_STOCK)
        self.publisher = self.make_publisher()
        self._ids = _RecordingIds(self.make_ids())
        self._tee = _Tee(self.publisher)
        self.published = self._tee.published
        self.service = OrderService(
            orders=self.repository,
            inventory=self.inventory,
            catalog=self.make_catalog(LIFECYCLE_PRODUCTS),
            payments=self.gateway,
            clock=self.clock,
            ids=self._ids,
            publisher=self._tee,
            policy=self.policy,
        )

    def _answer(self, request: object) -> GatewayStatus:
        if isinstance(request, RefundRequest) and not self.refunds_may_fail:
            return GatewayStatus.SUCCEEDED
        return self.outcome

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        """Everything a refused command must leave as it was."""
        orders = tuple(
            (o.id, o.state, o.version, o.deadline, o.payment, o.shipment, o.cancellation)
            for o in self.stored_orders()
        )
        stock = tuple(
            (self.inventory.on_hand(s), self.inventory.reserved(s), self.inventory.available(s))
            for s in _SKUS
        )
        money = (dict(self.gateway.charged), dict(self.gateway.refunded))
        return orders, stock, money, len(self.published)

    def versions(self) -> dict[str, int]:
        """Each stored order's version."""
        return {o.id: o.version for o in self.stored_orders()}

    def attempt(self, order_id: str | None, action: Callable[[], object]) -> bool:
        """Run a command: refused, nothing changed; accepted, one version step on one order."""
        before, versions = self.snapshot(), self.versions()
        published = len(self.published)
        try:
            action()
        except EcommerceCoreError:
            assert self.snapshot() == before, "a refused command changed something"
            return False
        if order_id is not None:
            new_events = [e for e in self.published[published:] if e.aggregate_id == order_id]
            assert (
                self.versions()[order_id]
                == versions[order_id] + len(new_events)
                == (versions[order_id] + 1)
            ), "an accepted command raises the version by exactly one"
            others = {k: v for k, v in self.versions().items() if k != order_id}
            assert others == {k: v for k, v in versions.items() if k != order_id}
        return True

    def rightful(self, order_id: str, command: str, actor: Actor, *, owner: bool) -> Actor:
        """``actor``, or (when ``owner``) the actor whose command it is on this order.

        Random actors are mostly the wrong ones; without a fair share of rightful actors,
        orders would rarely get past payment and the deep states would go untested.
        """
        if not owner:
            return actor
        order = self.repository.get(order_id)
        if command == "ship":
            return Actor.merchant(order.merchant_id)
        if command == "deliver":
            return Actor.carrier("SF")
        return Actor.buyer(order.buyer_id)

    # ------------------------------------------------------------------ rules

    @rule(target=orders, buyer=_BUYERS, sku=st.sampled_from([*_SKUS, "ghost"]), quantity=_QUANTITY)
    def buy_now(self, buyer: Actor, sku: str, quantity: int) -> MultipleResults[str]:
        """Buy one SKU now; refused, nothing changes; accepted, one new order at version 1."""
        before, count = self.snapshot(), len(self.stored_orders())
        try:
            order = self.service.buy_now(buyer, sku, quantity)
        except EcommerceCoreError:
            assert self.snapshot() == before
            return multiple()
        assert len(self.stored_orders()) == count + 1
        assert order.version == 1
        return multiple(order.id)

    @rule(target=orders, buyer=_BUYERS, items=_CART)
    def checkout(self, buyer: Actor, items: list[CartItem]) -> MultipleResults[str]:
        """Check a cart out: one order per merchant sharing one checkout id, or nothing."""
        before, count = self.snapshot(), len(self.stored_orders())
        try:
            orders = self.service.checkout(buyer, items)
        except EcommerceCoreError:
            assert self.snapshot() == before
            return multiple()
        assert len({o.checkout_id for o in orders}) == 1
        assert (
            len({o.merchant_id for o in orders}) == len(orders) == len(self.stored_orders()) - count
        )
        return multiple(*(o.id for o in orders))

    @rule(order_id=orders, actor=_ACTORS, owner=st.booleans())
    def pay(self, order_id: str, actor: Actor, owner: bool) -> None:
        """Pay an order."""
        actor = self.rightful(order_id, "pay", actor, owner=owner)
        self.attempt(order_id, lambda: self.service.pay(order_id, actor))

    @rule(outcome=_ANSWERS)
    def the_gateway_answers(self, outcome: GatewayStatus) -> None:
        """The provider's next answers: success, decline, or no answer."""
        self.outcome = outcome

    @rule(
        order_id=orders, actor=_ACTORS, owner=st.booleans(), tracking=st.sampled_from(["SF1", ""])
    )
    def ship(self, order_id: str, actor: Actor, owner: bool, tracking: str) -> None:
        """Ship an order (an empty tracking number is refused)."""
        actor = self.rightful(order_id, "ship", actor, owner=owner)
        self.attempt(
            order_id,
            lambda: self.service.ship(order_id, actor, carrier="SF", tracking_number=tracking),
        )

    @rule(order_id=orders, actor=_ACTORS, owner=st.booleans())
    def deliver(self, order_id: str, actor: Actor, owner: bool) -> None:
        """Report an order delivered."""
        actor = self.rightful(order_id, "deliver", actor, owner=owner)
        self.attempt(order_id, lambda: self.service.deliver(order_id, actor))

    @rule(order_id=orders, actor=_ACTORS, owner=st.booleans())
    def confirm_receipt(self, order_id: str, actor: Actor, owner: bool) -> None:
        """Confirm receipt of an order."""
        actor = self.rightful(order_id, "confirm_receipt", actor, owner=owner)
        self.attempt(order_id, lambda: self.service.confirm_receipt(order_id, actor))

    @rule(
        order_id=orders,
        actor=_ACTORS,
        owner=st.booleans(),
        reason=st.sampled_from(["changed my mind", ""]),
    )
    def cancel(self, order_id: str, actor: Actor, owner: bool, reason: str) -> None:
        """Cancel an order (an empty reason is refused)."""
        actor = self.rightful(order_id, "cancel", actor, owner=owner)
        self.attempt(order_id, lambda: self.service.cancel(order_id, actor, reason))

    def live_orders(self) -> list[str]:
        """Ids of stored orders not yet in a final state."""
        return [order.id for order in self.stored_orders() if not order.is_final]

    @precondition(lambda self: bool(self.live_orders()))
    @rule(data=st.data(), turn=st.sampled_from(["forward", "forward", "back"]))
    def the_order_moves_on(self, data: st.DataObject, turn: str) -> None:
        """The rightful actor runs a live order's next step: forward, or cancel.

        Random commands by random actors are mostly refused; this rule carries orders to the
        deep states (shipped, delivered, completed, closed, cancelled after payment) so their
        checks are exercised too.
        """
        order_id = data.draw(st.sampled_from(self.live_orders()), label="order_id")
        state = self.repository.get(order_id).state
        step = "cancel" if turn == "back" else _NEXT_STEP.get(state)
        if step is None or step not in self.service.process.triggers(state):
            return
        actor = self.rightful(order_id, step, Actor.platform(), owner=True)
        run: dict[str, Callable[[], object]] = {
            "cancel": lambda: self.service.cancel(order_id, actor, "changed my mind"),
            "pay": lambda: self.service.pay(order_id, actor),
            "ship": lambda: self.service.ship(order_id, actor, carrier="SF", tracking_number="SF1"),
            "deliver": lambda: self.service.deliver(order_id, actor),
            "confirm_receipt": lambda: self.service.confirm_receipt(order_id, actor),
        }
        self.attempt(order_id, run[step])

    @rule(command=st.sampled_from(_COMMANDS), actor=_ACTORS)
    def a_command_on_an_unknown_order_is_refused(self, command: str, actor: Actor) -> None:
        """Any command on an order id never issued is refused and changes nothing."""
        run: dict[str, Callable[[], object]] = {
            "pay": lambda: self.service.pay("missing", actor),
            "ship": lambda: self.service.ship("missing", actor, carrier="SF", tracking_number="1"),
            "deliver": lambda: self.service.deliver("missing", actor),
            "confirm_receipt": lambda: self.service.confirm_receipt("missing", actor),
            "cancel": lambda: self.service.cancel("missing", actor, "changed my mind"),
        }
        assert not self.attempt(None, run[command]), "a command on an unknown order succeeded"

    @rule(minutes=_MINUTES)
    def time_passes(self, minutes: int) -> None:
        """Move the clock and fire due deadlines: one version step per deadline, idempotent."""
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

    @precondition(lambda self: len(self.stored_orders()) > 0)
    @rule()
    def a_stale_writer_conflicts(self) -> None:
        """Saving a stored order from an older version is refused and changes nothing."""
        order = self.stored_orders()[0]
        before = self.snapshot()
        stale = order.version - 1
        try:
            self.repository.save(order, stale)
        except EcommerceCoreError:
            assert self.snapshot() == before
        else:
            msg = "a stale save was accepted"
            raise AssertionError(msg)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def stock_follows_the_orders(self) -> None:
        """Reserved stock is what unpaid orders hold; on hand is stock less what was paid."""
        reserved = dict.fromkeys(_SKUS, 0)
        sold = dict.fromkeys(_SKUS, 0)
        for order in self.stored_orders():
            for line in order.lines:
                if order.state == "pending_payment":
                    reserved[line.sku] += line.quantity
                elif order.state in _PAID:
                    sold[line.sku] += line.quantity
        for sku in _SKUS:
            assert self.inventory.reserved(sku) == reserved[sku]
            assert self.inventory.on_hand(sku) == LIFECYCLE_STOCK - sold[sku]
            assert self.inventory.available(sku) >= 0

    @invariant()
    def money_held_matches_paid_orders(self) -> None:
        """The provider holds each order's total exactly while it is paid and not cancelled."""
        for order in self.stored_orders():
            charged = self.gateway.charged.get(order.id, Money.zero("CNY"))
            refunded = self.gateway.refunded.get(order.id, Money.zero("CNY"))
            expected = order.total if order.state in _PAID else Money.zero("CNY")
            assert charged - refunded == expected

    @invariant()
    def states_and_deadlines_are_consistent(self) -> None:
        """Every state is declared, and a deadline runs exactly in the timed states."""
        for order in self.stored_orders():
            assert order.state in STANDARD_ORDER_PROCESS.states
            timer = TIMERS.get(order.state)
            if timer is None:
                assert order.deadline is None
            else:
                assert order.deadline is not None
                assert order.deadline.trigger == timer[0]
            assert (order.payment is not None) == (
                order.state in _PAID
                or (order.cancellation is not None and order.payment is not None)
            )


class RefusalsChangeNothing:
    """For a stateful test: run a command, and if it is refused, check that nothing changed.

    Mix it into a :class:`~hypothesis.stateful.RuleBasedStateMachine` that defines
    :meth:`snapshot` (everything a refused command must leave as it was: aggregates with their
    versions, stock, ledger postings, the provider's books).

    Example:
        >>> from ecommerce_core.errors import InvalidInput
        >>> class Counter(RefusalsChangeNothing):
        ...     def __init__(self) -> None:
        ...         self.count = 0
        ...     def snapshot(self) -> object:
        ...         return self.count
        ...     def refuse(self) -> None:
        ...         raise InvalidInput("n", -1, "must be positive")
        >>> Counter().attempt_unchanged(Counter().refuse)
        False

    """

    def snapshot(self) -> object:
        """Everything a refused command must leave as it was."""
        raise NotImplementedError

    def attempt_unchanged(self, action: Callable[[], object]) -> bool:
        """Run ``action``; if it raises a library error, assert :meth:`snapshot` is unchanged.

        Returns:
            ``True`` if the command was accepted, ``False`` if it was refused.

        """
        before = self.snapshot()
        try:
            action()
        except EcommerceCoreError:
            assert self.snapshot() == before, "a refused command changed something"  # a test helper
            return False
        return True
