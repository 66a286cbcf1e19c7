"""Contract suites for the ports: an adapter is correct when it passes its port's contract.

Each class holds every behaviour its port promises, error cases included, as ``test_*``
methods, and one factory method the host fills in. Subclass it in a test module under a name
pytest collects::

    from ecommerce_core.testing.contracts import OrderRepositoryContract


    class TestPostgresOrderRepository(OrderRepositoryContract):
        def make_repository(self) -> OrderRepository:
            return PostgresOrderRepository(fresh_schema())

The contracts themselves carry no ``Test`` prefix, so pytest never collects them on their
own. Each factory call must return a fresh, empty adapter. The contracts check the ports'
promises only; what an adapter adds beside them (a manual clock's ``advance``, a recording
publisher's list) is for the adapter's own tests.
"""

# ruff: noqa: S101, PLR2004  # the testing kit asserts literal expectations, as tests do.

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, cast

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ecommerce_core.actors import Actor
from ecommerce_core.demo import DEMO_PRODUCTS
from ecommerce_core.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
    OutOfStock,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import (
    Catalog,
    ChargeRequest,
    Clock,
    EventPublisher,
    GatewayStatus,
    IdSource,
    Inventory,
    OrderRepository,
    PaymentGateway,
    Product,
    PublicNumber,
    RandomnessSource,
    RefundRequest,
    StockItem,
)

__all__ = [
    "CONTRACT_TIME",
    "CatalogContract",
    "ClockContract",
    "EventPublisherContract",
    "IdSourceContract",
    "InventoryContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "RandomnessSourceContract",
    "assert_same_order",
    "make_order",
    "run_inventory_contract",
]

CONTRACT_TIME: Final = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
"""The time the contracts place orders at."""

_POLICY: Final = OrderPolicy()
_MINUTE: Final = timedelta(minutes=1)


def make_order(
    order_id: str = "o-1",
    *,
    now: datetime = CONTRACT_TIME,
    buyer_id: str = "b-1",
    merchant_id: str = "m-1",
    quantity: int = 2,
) -> Order:
    """A new standard order for ``quantity`` boxes of tea, pending payment, at version 1."""
    return Order.place(
        order_id=order_id,
        buyer_id=buyer_id,
        merchant_id=merchant_id,
        lines=[OrderLine("1", "tea-01", quantity, Money.of("38.00", "CNY"))],
        now=now,
        policy=_POLICY,
    )


def _pay(order: Order, now: datetime = CONTRACT_TIME) -> None:
    order.pay(Actor.buyer(order.buyer_id), amount=order.total, reference="txn-1", now=now)


def _cancel(order: Order, now: datetime = CONTRACT_TIME) -> None:
    order.cancel(Actor.buyer(order.buyer_id), reason="changed my mind", now=now)


def _stored_fields(order: Order) -> dict[str, object]:
    return {
        "id": order.id,
        "checkout_id": order.checkout_id,
        "buyer_id": order.buyer_id,
        "merchant_id": order.merchant_id,
        "lines": order.lines,
        "shipping_fee": order.shipping_fee,
        "total": order.total,
        "process": order.process.name,
        "state": order.state,
        "placed_at": order.placed_at,
        "version": order.version,
        "deadline": order.deadline,
        "payment": order.payment,
        "shipment": order.shipment,
        "cancellation": order.cancellation,
    }


def assert_same_order(actual: Order, expected: Order) -> None:
    """Assert that two orders hold the same stored data (their pending events aside)."""
    assert _stored_fields(actual) == _stored_fields(expected)


class OrderRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.OrderRepository`."""

    def make_repository(self) -> OrderRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_order(self) -> None:
        """An added order loads back with the same id, version, state, lines and deadline."""
        repository, order = self.make_repository(), make_order()
        repository.add(order)
        loaded = repository.get("o-1")
        assert loaded is not order
        assert_same_order(loaded, order)
        assert (loaded.version, loaded.state) == (1, OrderState.PENDING_PAYMENT)

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound naming the id."""
        repository = self.make_repository()
        repository.add(make_order("o-1"))
        with pytest.raises(NotFound) as caught:
            repository.get("o-missing")
        assert caught.value.key == "o-missing"

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict and the first order stays stored."""
        repository, first = self.make_repository(), make_order("o-1", quantity=2)
        repository.add(first)
        with pytest.raises(Conflict):
            repository.add(make_order("o-1", quantity=5))
        assert_same_order(repository.get("o-1"), first)

    def test_changing_a_loaded_order_changes_nothing_stored_until_save(self) -> None:
        """Running a command on a loaded order leaves the stored order as it was."""
        repository, order = self.make_repository(), make_order()
        repository.add(order)
        loaded = repository.get("o-1")
        _pay(loaded)
        assert loaded.state == OrderState.AWAITING_SHIPMENT
        assert_same_order(repository.get("o-1"), order)

    def test_changing_an_added_order_afterwards_changes_nothing_stored(self) -> None:
        """Running a command on the order passed to add leaves the stored order as it was."""
        repository, order = self.make_repository(), make_order()
        repository.add(order)
        expected = repository.get("o-1")
        _cancel(order)
        assert_same_order(repository.get("o-1"), expected)
        assert repository.get("o-1").state == OrderState.PENDING_PAYMENT

    def test_save_with_the_expected_version_stores_the_order(self) -> None:
        """A save from the stored version is what the next get returns, save after save."""
        repository = self.make_repository()
        repository.add(make_order())
        order = repository.get("o-1")
        _pay(order)
        repository.save(order, 1)
        assert_same_order(repository.get("o-1"), order)
        merchant = Actor.merchant("m-1")
        order.ship(merchant, carrier="SF", tracking_number="SF1", now=CONTRACT_TIME, policy=_POLICY)
        repository.save(order, 2)
        loaded = repository.get("o-1")
        assert_same_order(loaded, order)
        assert (loaded.version, loaded.state) == (3, OrderState.SHIPPED)

    def test_save_expecting_any_other_version_raises_version_conflict(self) -> None:
        """A save expecting an older or newer version raises and the stored order stays."""
        repository = self.make_repository()
        repository.add(make_order())
        stale, fresh = repository.get("o-1"), repository.get("o-1")
        _pay(fresh)
        repository.save(fresh, 1)
        _cancel(stale)
        for expected in (1, 0, 3):
            with pytest.raises(VersionConflict) as caught:
                repository.save(stale, expected)
            assert (caught.value.aggregate_id, caught.value.expected) == ("o-1", expected)
            assert caught.value.actual == 2
            assert_same_order(repository.get("o-1"), fresh)

    def test_save_of_an_order_never_added_raises_version_conflict(self) -> None:
        """Saving an order that was never added raises VersionConflict and stores nothing."""
        repository = self.make_repository()
        with pytest.raises(VersionConflict) as caught:
            repository.save(make_order("o-new"), 1)
        assert (caught.value.aggregate_id, caught.value.actual) == ("o-new", None)
        with pytest.raises(NotFound):
            repository.get("o-new")

    def test_of_two_writers_from_one_version_the_first_save_wins(self) -> None:
        """Two writers load version 1; the first save is stored, the second conflicts."""
        repository = self.make_repository()
        repository.add(make_order())
        first, second = repository.get("o-1"), repository.get("o-1")
        _pay(first)
        _cancel(second)
        repository.save(first, 1)
        with pytest.raises(VersionConflict) as caught:
            repository.save(second, 1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        loaded = repository.get("o-1")
        assert_same_order(loaded, first)
        assert loaded.state == OrderState.AWAITING_SHIPMENT

    def test_events_are_neither_stored_nor_taken_from_the_caller(self) -> None:
        """Loaded orders carry no events, and add and save leave the caller's events alone."""
        repository, order = self.make_repository(), make_order()
        repository.add(order)
        assert [event.name for event in order.events] == ["OrderPlaced"]
        assert repository.get("o-1").events == ()
        loaded = repository.get("o-1")
        _pay(loaded)
        repository.save(loaded, 1)
        assert [event.name for event in loaded.events] == ["OrderPaid"]
        assert repository.get("o-1").events == ()

    def test_due_lists_orders_whose_deadline_has_come_earliest_first(self) -> None:
        """Due returns every order whose deadline is at or before now, earliest first."""
        repository = self.make_repository()
        for order_id, minutes in (("o-late", 10), ("o-early", 0), ("o-middle", 5)):
            repository.add(make_order(order_id, now=CONTRACT_TIME + minutes * _MINUTE))
        now = CONTRACT_TIME + _POLICY.payment_timeout + 10 * _MINUTE
        assert repository.due(now) == ["o-early", "o-middle", "o-late"]

    def test_due_includes_a_deadline_exactly_now_and_excludes_later_ones(self) -> None:
        """An order due exactly now is listed; one due a minute later is not."""
        repository = self.make_repository()
        repository.add(make_order("o-now"))
        repository.add(make_order("o-later", now=CONTRACT_TIME + _MINUTE))
        now = CONTRACT_TIME + _POLICY.payment_timeout
        assert repository.due(now) == ["o-now"]
        assert repository.due(now - timedelta(seconds=1)) == []

    def test_due_excludes_orders_without_a_deadline(self) -> None:
        """Paid and cancelled orders have no deadline and are never due."""
        repository = self.make_repository()
        assert repository.due(CONTRACT_TIME + timedelta(days=365)) == []
        paid, cancelled = make_order("o-paid"), make_order("o-cancelled")
        _pay(paid)
        _cancel(cancelled)
        assert (paid.deadline, cancelled.deadline) == (None, None)
        for order in (paid, cancelled, make_order("o-open")):
            repository.add(order)
        assert repository.due(CONTRACT_TIME + timedelta(days=365)) == ["o-open"]

    def test_due_returns_at_most_limit_ids(self) -> None:
        """Due returns the earliest limit ids when more orders are due."""
        repository = self.make_repository()
        for index in range(5):
            repository.add(make_order(f"o-{index}", now=CONTRACT_TIME + index * _MINUTE))
        now = CONTRACT_TIME + timedelta(days=1)
        assert repository.due(now, limit=2) == ["o-0", "o-1"]
        assert repository.due(now, limit=5) == [f"o-{index}" for index in range(5)]
        assert repository.due(now, limit=1) == ["o-0"]

    def test_due_forgets_an_order_once_a_save_clears_its_deadline(self) -> None:
        """After a saved payment clears its deadline the order is no longer due."""
        repository = self.make_repository()
        repository.add(make_order("o-1"))
        repository.add(make_order("o-2"))
        now = CONTRACT_TIME + timedelta(hours=1)
        assert repository.due(now) == ["o-1", "o-2"]
        order = repository.get("o-1")
        _pay(order)
        repository.save(order, 1)
        assert repository.due(now) == ["o-2"]

    def test_due_with_a_naive_time_raises_invalid_input(self) -> None:
        """Due refuses a datetime without a timezone."""
        repository = self.make_repository()
        repository.add(make_order())
        with pytest.raises(InvalidInput):
            repository.due(CONTRACT_TIME.replace(tzinfo=None) + timedelta(days=1))


def _levels(inventory: Inventory, skus: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """Available, reserved and on-hand units per SKU."""
    return {
        sku: (inventory.available(sku), inventory.reserved(sku), inventory.on_hand(sku))
        for sku in skus
    }


_SKUS: Final = ("sku-a", "sku-b")
_RESERVATION_IDS: Final = ("r-1", "r-2", "r-3")
_ITEMS: Final = st.lists(
    st.tuples(st.sampled_from(_SKUS), st.integers(min_value=1, max_value=4)),
    min_size=1,
    max_size=3,
)


class _InventoryMachine(RuleBasedStateMachine):
    """Random receive, reserve, commit and release, checked against a plain-dict model."""

    def __init__(self, inventory: Inventory) -> None:
        super().__init__()
        self.inventory = inventory
        self.on_hand = dict.fromkeys(_SKUS, 0)
        self.reserved = dict.fromkeys(_SKUS, 0)
        self.reservations: dict[str, tuple[tuple[StockItem, ...], str]] = {}

    def _refused(
        self,
        errors: type[Exception] | tuple[type[Exception], ...],
        action: Callable[[], object],
    ) -> None:
        before = _levels(self.inventory, _SKUS)
        with pytest.raises(errors):
            action()
        assert _levels(self.inventory, _SKUS) == before

    def _move(self, items: Sequence[StockItem], *, reserved: int, on_hand: int) -> None:
        for item in items:
            self.reserved[item.sku] += reserved * item.quantity
            self.on_hand[item.sku] += on_hand * item.quantity

    def _known(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.reservations)), label="reservation_id")

    def _any(self, data: st.DataObject) -> str:
        """A used reservation id, or one never used."""
        choices = [*sorted(self.reservations), "r-unknown"]
        return data.draw(st.sampled_from(choices), label="reservation_id")

    @initialize(stock=st.tuples(*(st.integers(min_value=0, max_value=8) for _ in _SKUS)))
    def start(self, stock: tuple[int, ...]) -> None:
        """Start with some units of every SKU."""
        for sku, quantity in zip(_SKUS, stock, strict=True):
            if quantity:
                self.receive(sku, quantity)

    @rule(sku=st.sampled_from(_SKUS), quantity=st.integers(min_value=1, max_value=10))
    def receive(self, sku: str, quantity: int) -> None:
        """Receive units."""
        self.inventory.receive(sku, quantity)
        self.on_hand[sku] += quantity

    @rule(reservation_id=st.sampled_from(_RESERVATION_IDS), lines=_ITEMS)
    def reserve(self, reservation_id: str, lines: list[tuple[str, int]]) -> None:
        """Reserve items, expecting exactly what the model says."""
        items = tuple(StockItem(str(n), sku, qty) for n, (sku, qty) in enumerate(lines, 1))
        existing = self.reservations.get(reservation_id)
        wanted = Counter[str]()
        for item in items:
            wanted[item.sku] += item.quantity
        action = functools.partial(self.inventory.reserve, reservation_id, items)
        if existing is not None and existing[0] != items:
            self._refused(IdempotencyConflict, action)
        elif existing is not None:
            action()
        elif any(self.on_hand[sku] - self.reserved[sku] < n for sku, n in wanted.items()):
            self._refused(OutOfStock, action)
        else:
            action()
            self._move(items, reserved=1, on_hand=0)
            self.reservations[reservation_id] = (items, "reserved")

    @rule(
        reservation_id=st.sampled_from(_RESERVATION_IDS),
        quantity=st.sampled_from([0, -1, True, 1.5]),
    )
    def reserve_malformed(self, reservation_id: str, quantity: object) -> None:
        """Reserve with a malformed quantity: refused, nothing changes."""
        items = (StockItem("1", _SKUS[0], 1), StockItem("2", _SKUS[1], cast("int", quantity)))
        # A malformed reuse of a used id may be refused for either reason.
        used = reservation_id in self.reservations
        errors = (InvalidInput, IdempotencyConflict) if used else InvalidInput
        self._refused(errors, functools.partial(self.inventory.reserve, reservation_id, items))

    @precondition(lambda self: bool(self.reservations))
    @rule(data=st.data())
    def repeat_reservation(self, data: st.DataObject) -> None:
        """Repeat an earlier reservation with its own items: nothing changes."""
        reservation_id = self._known(data)
        before = _levels(self.inventory, _SKUS)
        self.inventory.reserve(reservation_id, self.reservations[reservation_id][0])
        assert _levels(self.inventory, _SKUS) == before

    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        """Commit a reservation, expecting what the model says."""
        reservation_id = self._any(data)
        if reservation_id not in self.reservations:
            self._refused(NotFound, functools.partial(self.inventory.commit, reservation_id))
            return
        items, status = self.reservations[reservation_id]
        if status == "released":
            self._refused(RuleViolation, functools.partial(self.inventory.commit, reservation_id))
            return
        self.inventory.commit(reservation_id)
        if status == "reserved":
            self._move(items, reserved=-1, on_hand=-1)
            self.reservations[reservation_id] = (items, "committed")

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        """Release a reservation, expecting what the model says."""
        reservation_id = self._any(data)
        if reservation_id not in self.reservations:
            self._refused(NotFound, functools.partial(self.inventory.release, reservation_id))
            return
        items, status = self.reservations[reservation_id]
        assert self.inventory.release(reservation_id) is (status != "released")
        if status == "reserved":
            self._move(items, reserved=-1, on_hand=0)
        elif status == "committed":
            self._move(items, reserved=0, on_hand=1)
        self.reservations[reservation_id] = (items, "released")

    @invariant()
    def stock_matches_the_model(self) -> None:
        """Every SKU's levels equal the model's, and nothing is ever oversold."""
        for sku, (available, reserved, on_hand) in _levels(self.inventory, _SKUS).items():
            assert (reserved, on_hand) == (self.reserved[sku], self.on_hand[sku]), sku
            assert available == on_hand - reserved, sku
            assert available >= 0, sku


def run_inventory_contract(
    factory: Callable[[], Inventory], settings: hypothesis.settings | None = None
) -> None:
    """Drive fresh inventories from ``factory`` through random operations against a model.

    For hosts who build adapters from fixtures rather than by subclassing
    :class:`InventoryContract`. Fails with Hypothesis's minimal failing sequence.
    """
    chosen = settings or hypothesis.settings(max_examples=50, stateful_step_count=30, deadline=None)

    class _Machine(_InventoryMachine):
        def __init__(self) -> None:
            super().__init__(factory())

    run_state_machine_as_test(_Machine, settings=chosen)


class InventoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.Inventory`."""

    def make_inventory(self) -> Inventory:
        """A new inventory with no stock."""
        raise NotImplementedError

    def _stocked(self, **units: int) -> Inventory:
        inventory = self.make_inventory()
        for sku, quantity in units.items():
            inventory.receive(sku, quantity)
        return inventory

    def test_receive_adds_units_on_hand(self) -> None:
        """Receiving twice adds both amounts on hand; a SKU never received has nothing."""
        inventory = self._stocked(tea=5)
        inventory.receive("tea", 3)
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (8, 0, 8), "cup": (0, 0, 0)}

    def test_reserve_lowers_available_and_raises_reserved(self) -> None:
        """A reservation moves units from available to reserved, on hand unchanged."""
        inventory = self._stocked(tea=5, cup=4)
        inventory.reserve("r-1", [StockItem("1", "tea", 2), StockItem("2", "cup", 4)])
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (3, 2, 5), "cup": (0, 4, 4)}

    def test_reserve_is_all_or_nothing(self) -> None:
        """When one SKU is short, OutOfStock names it and no SKU is reserved."""
        inventory = self._stocked(tea=5, cup=1)
        with pytest.raises(OutOfStock) as caught:
            inventory.reserve("r-1", [StockItem("1", "tea", 2), StockItem("2", "cup", 3)])
        error = caught.value
        assert (error.sku, error.requested, error.available) == ("cup", 3, 1)
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (5, 0, 5), "cup": (1, 0, 1)}
        inventory.reserve("r-1", [StockItem("1", "tea", 2), StockItem("2", "cup", 1)])
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (3, 2, 5), "cup": (0, 1, 1)}

    def test_reserve_may_take_every_available_unit_and_no_more(self) -> None:
        """Reserving exactly what is available succeeds; one unit more is out of stock."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        with pytest.raises(OutOfStock) as caught:
            inventory.reserve("r-2", [StockItem("1", "tea", 3)])
        assert (caught.value.requested, caught.value.available) == (3, 2)
        inventory.reserve("r-3", [StockItem("1", "tea", 2)])
        assert _levels(inventory, ["tea"]) == {"tea": (0, 5, 5)}

    def test_reserve_of_an_unknown_sku_raises_out_of_stock(self) -> None:
        """Reserving a SKU never received raises OutOfStock with nothing available."""
        inventory = self._stocked(tea=5)
        with pytest.raises(OutOfStock) as caught:
            inventory.reserve("r-1", [StockItem("1", "cup", 1)])
        assert (caught.value.sku, caught.value.available) == ("cup", 0)

    def test_repeating_a_reservation_with_the_same_items_changes_nothing(self) -> None:
        """A second reserve with the same id and items is a no-op."""
        inventory = self._stocked(tea=5)
        items = [StockItem("1", "tea", 3)]
        inventory.reserve("r-1", items)
        inventory.reserve("r-1", list(items))
        assert _levels(inventory, ["tea"]) == {"tea": (2, 3, 5)}

    def test_reusing_a_reservation_id_with_other_items_raises_idempotency_conflict(self) -> None:
        """A reserve with a used id and different items raises and changes nothing."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        with pytest.raises(IdempotencyConflict) as caught:
            inventory.reserve("r-1", [StockItem("1", "tea", 1)])
        assert caught.value.key == "r-1"
        assert _levels(inventory, ["tea"]) == {"tea": (2, 3, 5)}

    def test_reserve_refuses_an_empty_list_of_items(self) -> None:
        """A reservation without items raises InvalidInput."""
        inventory = self._stocked(tea=5)
        with pytest.raises(InvalidInput):
            inventory.reserve("r-1", [])
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    @pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "1"])
    def test_reserve_refuses_a_quantity_that_is_not_a_whole_number_above_zero(
        self, quantity: object
    ) -> None:
        """A zero, negative, boolean, fractional or text quantity raises InvalidInput."""
        inventory = self._stocked(tea=5, cup=5)
        bad = StockItem("2", "cup", cast("int", quantity))
        with pytest.raises(InvalidInput):
            inventory.reserve("r-1", [StockItem("1", "tea", 1), bad])
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (5, 0, 5), "cup": (5, 0, 5)}
        inventory.reserve("r-1", [StockItem("1", "tea", 1)])
        assert inventory.reserved("tea") == 1

    def test_commit_deducts_reserved_units_from_stock_once(self) -> None:
        """Committing takes the units off hand and out of reserved; a repeat is a no-op."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        inventory.commit("r-1")
        assert _levels(inventory, ["tea"]) == {"tea": (2, 0, 2)}
        inventory.commit("r-1")
        assert _levels(inventory, ["tea"]) == {"tea": (2, 0, 2)}

    def test_commit_of_an_unknown_reservation_raises_not_found(self) -> None:
        """Committing a reservation id never used raises NotFound."""
        inventory = self._stocked(tea=5)
        with pytest.raises(NotFound):
            inventory.commit("r-missing")
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_commit_after_release_raises_rule_violation(self) -> None:
        """Committing a released reservation raises RuleViolation and changes nothing."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        inventory.release("r-1")
        with pytest.raises(RuleViolation):
            inventory.commit("r-1")
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_release_of_a_reservation_makes_its_units_available_again(self) -> None:
        """Releasing reserved units returns True and makes them available."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        assert inventory.release("r-1") is True
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_releasing_twice_returns_false_and_changes_nothing(self) -> None:
        """A second release returns False and gives nothing back twice."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        inventory.reserve("r-2", [StockItem("1", "tea", 2)])
        inventory.release("r-1")
        assert inventory.release("r-1") is False
        assert _levels(inventory, ["tea"]) == {"tea": (3, 2, 5)}

    def test_release_of_a_committed_reservation_puts_its_units_back_on_hand(self) -> None:
        """Releasing committed units puts them back on hand and available."""
        inventory = self._stocked(tea=5)
        inventory.reserve("r-1", [StockItem("1", "tea", 3)])
        inventory.commit("r-1")
        assert inventory.release("r-1") is True
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}
        assert inventory.release("r-1") is False
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_release_of_an_unknown_reservation_raises_not_found(self) -> None:
        """Releasing a reservation id never used raises NotFound."""
        inventory = self._stocked(tea=5)
        with pytest.raises(NotFound):
            inventory.release("r-missing")
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_one_sku_on_two_lines_of_a_reservation_counts_both(self) -> None:
        """Two lines of one SKU reserve, commit and release their sum."""
        inventory = self._stocked(tea=5)
        with pytest.raises(OutOfStock) as caught:
            inventory.reserve("r-1", [StockItem("1", "tea", 3), StockItem("2", "tea", 3)])
        assert (caught.value.requested, caught.value.available) == (6, 5)
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}
        inventory.reserve("r-2", [StockItem("1", "tea", 2), StockItem("2", "tea", 3)])
        assert _levels(inventory, ["tea"]) == {"tea": (0, 5, 5)}
        inventory.commit("r-2")
        assert _levels(inventory, ["tea"]) == {"tea": (0, 0, 0)}
        inventory.release("r-2")
        assert _levels(inventory, ["tea"]) == {"tea": (5, 0, 5)}

    def test_available_never_goes_negative(self) -> None:
        """Competing reservations, commits and releases never oversell a SKU."""
        inventory = self._stocked(tea=4)
        outcomes = []
        for index in range(6):
            try:
                inventory.reserve(f"r-{index}", [StockItem("1", "tea", 1)])
            except OutOfStock:
                outcomes.append("out")
            else:
                outcomes.append("reserved")
            assert inventory.available("tea") >= 0
        assert outcomes == ["reserved"] * 4 + ["out"] * 2
        inventory.commit("r-0")
        inventory.release("r-1")
        assert _levels(inventory, ["tea"]) == {"tea": (1, 2, 3)}

    def test_random_operations_never_oversell(self) -> None:
        """Random operations keep the stock equal to a simple model and never negative."""
        run_inventory_contract(self.make_inventory)


class CatalogContract:
    """The behaviour of :class:`~ecommerce_core.ports.Catalog`."""

    def make_catalog(self, products: Sequence[Product]) -> Catalog:
        """A catalog holding exactly ``products``."""
        raise NotImplementedError

    def test_product_returns_what_was_stored(self) -> None:
        """Each stored SKU returns its product, every field intact."""
        catalog = self.make_catalog(DEMO_PRODUCTS)
        for product in DEMO_PRODUCTS:
            assert catalog.product(product.sku) == product

    def test_an_unknown_sku_raises_not_found(self) -> None:
        """Looking up a SKU not stored, or any SKU in an empty catalog, raises NotFound."""
        with pytest.raises(NotFound) as caught:
            self.make_catalog(DEMO_PRODUCTS).product("nope-01")
        assert caught.value.key == "nope-01"
        with pytest.raises(NotFound):
            self.make_catalog([]).product(DEMO_PRODUCTS[0].sku)


def _charge(amount: str = "76.00", key: str = "k-1", order_id: str = "o-1") -> ChargeRequest:
    return ChargeRequest(order_id, Money.of(amount, "CNY"), key)


def _refund(amount: str, *, transaction_id: str, key: str = "rk-1") -> RefundRequest:
    return RefundRequest("o-1", transaction_id, Money.of(amount, "CNY"), key)


class PaymentGatewayContract:
    """The behaviour of :class:`~ecommerce_core.ports.PaymentGateway`."""

    def make_gateway(self) -> PaymentGateway:
        """A new gateway that answers SUCCEEDED to ordinary requests."""
        raise NotImplementedError

    def test_charge_succeeds_with_a_transaction_id_and_the_amount(self) -> None:
        """A charge succeeds, names a transaction and echoes the amount."""
        result = self.make_gateway().charge(_charge("76.00"))
        assert result.status is GatewayStatus.SUCCEEDED
        assert result.succeeded
        assert isinstance(result.transaction_id, str)
        assert result.transaction_id
        assert result.amount == Money.of("76.00", "CNY")

    def test_a_retried_charge_returns_the_first_answer(self) -> None:
        """The same key returns the identical result; another key is another charge."""
        gateway = self.make_gateway()
        first = gateway.charge(_charge())
        assert gateway.charge(_charge()) == first
        assert gateway.charge(_charge(key="k-2")).transaction_id != first.transaction_id

    def test_a_charge_key_reused_with_another_amount_raises_idempotency_conflict(self) -> None:
        """Reusing a charge key for another amount raises, and the first answer stands."""
        gateway = self.make_gateway()
        first = gateway.charge(_charge("76.00"))
        with pytest.raises(IdempotencyConflict) as caught:
            gateway.charge(_charge("10.00"))
        assert caught.value.key == "k-1"
        assert gateway.charge(_charge("76.00")) == first

    def test_refund_succeeds_with_a_transaction_id_and_the_amount(self) -> None:
        """A refund of a charge succeeds, names a transaction and echoes the amount."""
        gateway = self.make_gateway()
        charged = gateway.charge(_charge("76.00"))
        result = gateway.refund(_refund("30.00", transaction_id=charged.transaction_id))
        assert result.status is GatewayStatus.SUCCEEDED
        assert result.transaction_id
        assert result.amount == Money.of("30.00", "CNY")

    def test_a_retried_refund_returns_the_first_answer(self) -> None:
        """The same refund key and request return the identical result."""
        gateway = self.make_gateway()
        charged = gateway.charge(_charge("76.00"))
        request = _refund("30.00", transaction_id=charged.transaction_id)
        first = gateway.refund(request)
        assert gateway.refund(request) == first

    def test_a_refund_key_reused_with_another_amount_raises_idempotency_conflict(self) -> None:
        """Reusing a refund key for another amount raises, and the first answer stands."""
        gateway = self.make_gateway()
        charged = gateway.charge(_charge("76.00"))
        first = gateway.refund(_refund("30.00", transaction_id=charged.transaction_id))
        with pytest.raises(IdempotencyConflict) as caught:
            gateway.refund(_refund("20.00", transaction_id=charged.transaction_id))
        assert caught.value.key == "rk-1"
        assert gateway.refund(_refund("30.00", transaction_id=charged.transaction_id)) == first

    @pytest.mark.parametrize("amount", ["0.00", "-1.00"])
    def test_charge_refuses_an_amount_that_is_not_positive(self, amount: str) -> None:
        """A zero or negative charge raises InvalidInput."""
        with pytest.raises(InvalidInput):
            self.make_gateway().charge(_charge(amount))

    @pytest.mark.parametrize("amount", ["0.00", "-1.00"])
    def test_refund_refuses_an_amount_that_is_not_positive(self, amount: str) -> None:
        """A zero or negative refund raises InvalidInput."""
        gateway = self.make_gateway()
        charged = gateway.charge(_charge("76.00"))
        with pytest.raises(InvalidInput):
            gateway.refund(_refund(amount, transaction_id=charged.transaction_id))


class ClockContract:
    """The behaviour of :class:`~ecommerce_core.ports.Clock`."""

    def make_clock(self) -> Clock:
        """A clock."""
        raise NotImplementedError

    def test_now_is_a_timezone_aware_datetime(self) -> None:
        """Now returns a datetime with a timezone and a UTC offset."""
        now = self.make_clock().now()
        assert isinstance(now, datetime)
        assert now.tzinfo is not None
        assert now.utcoffset() is not None


class IdSourceContract:
    """The behaviour of :class:`~ecommerce_core.ports.IdSource`."""

    def make_ids(self) -> IdSource:
        """A new id source."""
        raise NotImplementedError

    def test_ids_are_non_empty_strings(self) -> None:
        """Every id is a non-blank string."""
        ids = self.make_ids()
        for kind in ("order", "checkout", "refund"):
            new_id = ids.next_id(kind)
            assert isinstance(new_id, str)
            assert new_id.strip()

    def test_ids_are_unique_per_kind_across_a_thousand_calls(self) -> None:
        """A thousand ids of one kind, interleaved with another kind, are all distinct."""
        ids = self.make_ids()
        orders = [ids.next_id("order") for _ in range(1000)]
        checkouts = [ids.next_id("checkout") for _ in range(1000)]
        orders += [ids.next_id("order") for _ in range(10)]
        assert len(set(orders)) == len(orders)
        assert len(set(checkouts)) == len(checkouts)


class EventPublisherContract:
    """The behaviour of :class:`~ecommerce_core.ports.EventPublisher`."""

    def make_publisher(self) -> EventPublisher:
        """A new publisher."""
        raise NotImplementedError

    def test_publish_accepts_a_sequence_of_events(self) -> None:
        """Publishing the events of a placed and paid order, as list or tuple, succeeds."""
        order = make_order()
        _pay(order)
        events = order.collect_events()
        assert [event.name for event in events] == ["OrderPlaced", "OrderPaid"]
        publisher = self.make_publisher()
        publisher.publish(events)
        publisher.publish(list(make_order("o-2").events))

    def test_publish_accepts_an_empty_sequence(self) -> None:
        """Publishing no events succeeds."""
        publisher = self.make_publisher()
        publisher.publish(())
        publisher.publish([])


class RandomnessSourceContract:
    """The behaviour of :class:`~ecommerce_core.ports.RandomnessSource`.

    The factory returns a source with at least one number published within 30 days of
    :data:`CONTRACT_TIME` (for an adapter over a real lottery or beacon: its recorded history
    around that time). The contract asks it about moments across those two months.
    """

    def make_source(self) -> RandomnessSource:
        """A source with numbers published around :data:`CONTRACT_TIME`."""
        raise NotImplementedError

    @staticmethod
    def _moments() -> list[datetime]:
        return [CONTRACT_TIME + timedelta(hours=hours) for hours in range(-24 * 30, 24 * 30, 7)]

    def test_some_number_is_published_around_the_contract_time(self) -> None:
        """The source is not silent over the sampled months (else the contract proves nothing)."""
        source = self.make_source()
        assert any(source.public_number(moment) is not None for moment in self._moments())

    def test_a_number_is_published_at_or_after_the_moment_asked_about(self) -> None:
        """Every answer is a PublicNumber published no earlier than ``after``, or None."""
        source = self.make_source()
        for moment in self._moments():
            number = source.public_number(moment)
            assert number is None or isinstance(number, PublicNumber)
            if number is not None:
                assert number.published_at >= moment
                assert number.value >= 0
                assert number.source

    def test_the_same_question_gets_the_same_answer(self) -> None:
        """A published number never changes: asking twice returns equal answers."""
        source = self.make_source()
        for moment in self._moments():
            assert source.public_number(moment) == source.public_number(moment)

    def test_a_later_moment_never_gets_an_earlier_number(self) -> None:
        """Answers move forward in time with the moment asked about."""
        source = self.make_source()
        answers = [source.public_number(moment) for moment in self._moments()]
        published = [a.published_at for a in answers if a is not None]
        assert published == sorted(published)
        seen_none = False
        for answer in answers:
            seen_none = seen_none or answer is None
            assert not (seen_none and answer is not None), "a number after no number"

    def test_a_naive_moment_raises_invalid_input(self) -> None:
        """A time without a timezone is refused."""
        with pytest.raises(InvalidInput):
            self.make_source().public_number(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001
