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
from collections.abc import Callable, Mapping, Sequence
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
from ecommerce_core.aftersales import AfterSalesItem, AfterSalesPolicy, OrderAfterSales
from ecommerce_core.auctions import Auction, AuctionTerms
from ecommerce_core.campaigns import FlashItem, FlashSale, RushItem, RushPurchase, Session
from ecommerce_core.campaigns.group_buy import GroupBuy, GroupBuyTerms, PriceTier
from ecommerce_core.campaigns.lucky_draw import DrawRound, DrawTerms
from ecommerce_core.campaigns.rebate import Rebate
from ecommerce_core.campaigns.team import Team, TeamTerms
from ecommerce_core.delivery import (
    DeliveryOption,
    Shipment,
    ShipmentLine,
    TrackingEvent,
    fulfilment_status,
)
from ecommerce_core.demo import DEMO_PRODUCTS
from ecommerce_core.errors import (
    Conflict,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfStock,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.limits import LimitClaim, StockTiming
from ecommerce_core.money import Money
from ecommerce_core.orders import (
    Entitlement,
    LineAdjustment,
    Order,
    OrderLine,
    OrderState,
    PricingTerms,
)
from ecommerce_core.payments.notifications import NotificationKind
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import (
    AfterSalesRepository,
    AuctionRepository,
    AuthorizeRequest,
    CaptureRequest,
    Carriers,
    Catalog,
    ChargeRequest,
    Clock,
    DrawRoundRepository,
    EventPublisher,
    GatewayStatus,
    GroupBuyRepository,
    IdempotencyStore,
    IdSource,
    Inventory,
    OrderRepository,
    PaymentGateway,
    Product,
    PromotionCatalog,
    PromotionLedger,
    PublicNumber,
    RandomnessSource,
    RebateRepository,
    RefundRequest,
    ShipmentRepository,
    StockItem,
    TeamRepository,
    VoidRequest,
)
from ecommerce_core.promotions import Coupon, PercentOff, Promotion, Scope

__all__ = [
    "CONTRACT_TIME",
    "AfterSalesRepositoryContract",
    "AuctionRepositoryContract",
    "CarriersContract",
    "CatalogContract",
    "ClockContract",
    "DrawRoundRepositoryContract",
    "EventPublisherContract",
    "GroupBuyRepositoryContract",
    "IdSourceContract",
    "IdempotencyStoreContract",
    "InventoryContract",
    "OrderRepositoryContract",
    "PaymentGatewayContract",
    "PaymentGatewayFlowContract",
    "PromotionCatalogContract",
    "PromotionLedgerContract",
    "RandomnessSourceContract",
    "RebateRepositoryContract",
    "ShipmentRepositoryContract",
    "TeamRepositoryContract",
    "assert_same_after_sales",
    "assert_same_order",
    "assert_same_shipment",
    "make_auction",
    "make_draw_round",
    "make_group_buy",
    "make_order",
    "make_priced_order",
    "make_rebate",
    "make_shipment",
    "make_team",
    "run_idempotency_store_contract",
    "run_inventory_contract",
    "run_promotion_ledger_contract",
]

CONTRACT_TIME: Final = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
"""The time the contracts place orders at."""

_POLICY: Final = OrderPolicy()
_AFTER_SALES_POLICY: Final = AfterSalesPolicy()
_MINUTE: Final = timedelta(minutes=1)
_SYSTEM: Final = Actor.system()


def make_order(
    order_id: str = "o-1",
    *,
    now: datetime = CONTRACT_TIME,
    buyer_id: str = "b-1",
    merchant_id: str = "m-1",
    quantity: int = 2,
    payment_method: str = "online",
) -> Order:
    """A new standard order for ``quantity`` boxes of tea, pending payment, at version 1."""
    return Order.place(
        order_id=order_id,
        buyer_id=buyer_id,
        merchant_id=merchant_id,
        lines=[OrderLine("1", "tea-01", quantity, Money.of("38.00", "CNY"))],
        now=now,
        policy=_POLICY,
        payment_method=payment_method,
    )


def make_priced_order(order_id: str = "o-priced") -> Order:
    """An order sold in a flash sale: a discount per promotion on its line, pricing terms."""
    cny = functools.partial(Money.of, currency="CNY")
    line = OrderLine(
        "1",
        "tea-01",
        2,
        cny("38.00"),
        adjustments=[
            LineAdjustment("flash:s1:tea-01", "base_price", cny("36.20")),
            LineAdjustment("welcome", "order", cny("5.00"), code="HELLO"),
        ],
    )
    terms = PricingTerms(
        sales_mode="flash_sale",
        stock_timing=StockTiming.ON_ORDER,
        claims=[LimitClaim("flash:s1:tea-01:units", 2, 100)],
        promotion_ids=["flash:s1:tea-01", "welcome"],
        offer_ends_at=CONTRACT_TIME + timedelta(hours=2),
        cod_allowed=False,
        entitlements=[Entitlement("welcome-points", "points", points=39)],
    )
    return Order.place(
        order_id=order_id,
        buyer_id="b-1",
        merchant_id="m-1",
        lines=[line],
        now=CONTRACT_TIME,
        policy=_POLICY,
        terms=terms,
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
        "payment_method": order.payment_method,
        "holds": order.holds,
        "paused": order.paused,
        "terms": order.terms,
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

    def test_a_priced_order_keeps_its_line_adjustments_and_pricing_terms(self) -> None:
        """An order placed with discounts per promotion and pricing terms loads back with them."""
        repository, order = self.make_repository(), make_priced_order()
        repository.add(order)
        loaded = repository.get(order.id)
        assert_same_order(loaded, order)
        assert loaded.lines[0].adjustments == order.lines[0].adjustments
        assert loaded.terms == order.terms
        assert loaded.sales_mode == "flash_sale"

    def test_due_with_a_naive_time_raises_invalid_input(self) -> None:
        """Due refuses a datetime without a timezone."""
        repository = self.make_repository()
        repository.add(make_order())
        with pytest.raises(InvalidInput):
            repository.due(CONTRACT_TIME.replace(tzinfo=None) + timedelta(days=1))

    def test_holds_the_paused_deadline_and_the_payment_method_are_stored(self) -> None:
        """An order on hold loads back with its holds and paused clock, and is never due."""
        repository = self.make_repository()
        repository.add(make_order("o-1", payment_method="escrow"))
        order = repository.get("o-1")
        order.pause_clock("refund:r-1", _SYSTEM, now=CONTRACT_TIME + 10 * _MINUTE)
        repository.save(order, 1)
        loaded = repository.get("o-1")
        assert_same_order(loaded, order)
        assert (loaded.payment_method, loaded.holds) == ("escrow", ("refund:r-1",))
        assert loaded.paused is not None
        assert loaded.paused.remaining == _POLICY.payment_timeout - 10 * _MINUTE
        assert repository.due(CONTRACT_TIME + timedelta(days=30)) == []
        loaded.resume_clock("refund:r-1", _SYSTEM, now=CONTRACT_TIME + timedelta(days=1))
        repository.save(loaded, 2)
        assert repository.due(CONTRACT_TIME + timedelta(days=2)) == ["o-1"]

    def test_get_of_an_id_that_is_not_a_string_raises_not_found(self) -> None:
        """An int, None or a tuple as id raises NotFound naming it, never TypeError or KeyError.

        The services pass a caller's order id straight to ``get``, so this is what a careless
        ``service.pay(42, buyer)`` answers.
        """
        repository = self.make_repository()
        repository.add(make_order("o-1"))
        for wrong in (1, None, ("o-1",)):
            with pytest.raises(NotFound) as caught:
                repository.get(cast("str", wrong))
            assert caught.value.key == wrong
        assert repository.get("o-1").id == "o-1"


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

    def test_restock_puts_units_back_on_hand_and_available(self) -> None:
        """A restock adds its units on hand (and so available), reservations untouched."""
        inventory = self._stocked(tea=5, cup=1)
        inventory.reserve("r-1", [StockItem("1", "tea", 2)])
        inventory.commit("r-1")
        inventory.reserve("r-2", [StockItem("1", "tea", 1)])
        assert inventory.restock("back-1", [StockItem("1", "tea", 2), StockItem("2", "cup", 1)])
        assert _levels(inventory, ["tea", "cup"]) == {"tea": (4, 1, 5), "cup": (2, 0, 2)}

    def test_restock_of_a_sku_never_received_stocks_it(self) -> None:
        """Restocking a SKU the inventory never had puts it on hand."""
        inventory = self.make_inventory()
        assert inventory.restock("back-1", [StockItem("1", "vase", 3)]) is True
        assert _levels(inventory, ["vase"]) == {"vase": (3, 0, 3)}

    def test_repeating_a_restock_returns_false_and_adds_nothing(self) -> None:
        """A second restock with the same id and items is a no-op that returns False."""
        inventory = self._stocked(tea=1)
        items = [StockItem("1", "tea", 2)]
        assert inventory.restock("back-1", items) is True
        assert inventory.restock("back-1", list(items)) is False
        assert _levels(inventory, ["tea"]) == {"tea": (3, 0, 3)}

    def test_reusing_a_restock_id_with_other_items_raises_idempotency_conflict(self) -> None:
        """A restock id reused with different items raises and adds nothing."""
        inventory = self._stocked(tea=1)
        inventory.restock("back-1", [StockItem("1", "tea", 2)])
        with pytest.raises(IdempotencyConflict) as caught:
            inventory.restock("back-1", [StockItem("1", "tea", 1)])
        assert caught.value.key == "back-1"
        assert _levels(inventory, ["tea"]) == {"tea": (3, 0, 3)}

    @pytest.mark.parametrize("quantity", [0, -1, True, 1.5])
    def test_restock_refuses_malformed_items(self, quantity: object) -> None:
        """No items, or a quantity that is not a whole number above zero, raise InvalidInput."""
        inventory = self._stocked(tea=1)
        with pytest.raises(InvalidInput):
            inventory.restock("back-1", [])
        with pytest.raises(InvalidInput):
            inventory.restock(
                "back-2", [StockItem("1", "tea", 1), StockItem("2", "tea", cast("int", quantity))]
            )
        assert _levels(inventory, ["tea"]) == {"tea": (1, 0, 1)}
        assert inventory.restock("back-2", [StockItem("1", "tea", 1)]) is True


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


def _cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


class PaymentGatewayFlowContract(PaymentGatewayContract):
    """Authorizations, captures, voids and notifications of the payment gateway.

    On top of :class:`PaymentGatewayContract` (charge and refund).

    Besides :meth:`make_gateway`, fill in :meth:`make_notification`: a callback payload exactly
    as your provider sends it (signed), so the contract checks ``parse_notification`` on the
    real format.
    """

    def make_notification(
        self,
        gateway: PaymentGateway,
        *,
        kind: NotificationKind,
        payment_id: str,
        amount: Money,
        event_id: str,
        transaction_id: str,
        request_key: str,
    ) -> Mapping[str, str]:
        """A signed callback payload as the provider behind ``gateway`` sends it."""
        raise NotImplementedError

    def _authorized(self, gateway: PaymentGateway, amount: str = "76.00") -> str:
        result = gateway.authorize(AuthorizeRequest("p-1", "o-1", _cny(amount), "a-1"))
        assert result.status is GatewayStatus.SUCCEEDED
        return result.transaction_id

    def test_authorize_succeeds_with_a_transaction_id_and_the_amount(self) -> None:
        """An authorization succeeds, names a transaction and echoes the amount."""
        result = self.make_gateway().authorize(AuthorizeRequest("p-1", "o-1", _cny("76.00"), "a"))
        assert (result.status, result.amount) == (GatewayStatus.SUCCEEDED, _cny("76.00"))
        assert result.transaction_id

    def test_captures_succeed_up_to_the_authorization_and_beyond_it_are_declined(self) -> None:
        """Two partial captures fill the authorization; one cent more is declined, not raised."""
        gateway = self.make_gateway()
        authorization = self._authorized(gateway)
        for key, amount in (("c-1", "30.00"), ("c-2", "46.00")):
            result = gateway.capture(CaptureRequest("p-1", authorization, _cny(amount), key))
            assert result.status is GatewayStatus.SUCCEEDED
            assert result.transaction_id
        over = gateway.capture(CaptureRequest("p-1", authorization, _cny("0.01"), "c-3"))
        assert over.status is GatewayStatus.DECLINED

    def test_a_retried_capture_returns_the_first_answer_and_captures_once(self) -> None:
        """The same capture key returns the same result; the authorization is spent once."""
        gateway = self.make_gateway()
        authorization = self._authorized(gateway)
        request = CaptureRequest("p-1", authorization, _cny("76.00"), "c-1")
        first = gateway.capture(request)
        assert gateway.capture(request) == first
        with pytest.raises(IdempotencyConflict):
            gateway.capture(CaptureRequest("p-1", authorization, _cny("1.00"), "c-1"))

    def test_a_void_before_capture_succeeds_and_after_capture_is_declined(self) -> None:
        """Voiding an authorization succeeds; voiding a captured payment is declined."""
        gateway = self.make_gateway()
        authorization = self._authorized(gateway)
        voided = gateway.void(VoidRequest("p-1", authorization, "v-1"))
        assert voided.status is GatewayStatus.SUCCEEDED
        after = gateway.capture(CaptureRequest("p-1", authorization, _cny("1.00"), "c-1"))
        assert after.status is GatewayStatus.DECLINED
        other = self.make_gateway()
        sale = other.charge(ChargeRequest("o-2", _cny("76.00"), "s-1", "p-2"))
        declined = other.void(VoidRequest("p-2", sale.transaction_id, "v-2"))
        assert declined.status is GatewayStatus.DECLINED

    def test_a_refund_beyond_what_was_captured_is_declined(self) -> None:
        """Refunds succeed up to what was captured; one cent more is declined."""
        gateway = self.make_gateway()
        sale = gateway.charge(ChargeRequest("o-1", _cny("76.00"), "s-1", "p-1"))
        refund = RefundRequest("o-1", sale.transaction_id, _cny("76.00"), "r-1", "p-1")
        assert gateway.refund(refund).status is GatewayStatus.SUCCEEDED
        again = RefundRequest("o-1", sale.transaction_id, _cny("0.01"), "r-2", "p-1")
        assert gateway.refund(again).status is GatewayStatus.DECLINED

    @pytest.mark.parametrize("amount", ["0.00", "-1.00"])
    def test_authorize_and_capture_refuse_an_amount_that_is_not_positive(self, amount: str) -> None:
        """A zero or negative authorization or capture raises InvalidInput."""
        gateway = self.make_gateway()
        with pytest.raises(InvalidInput):
            gateway.authorize(AuthorizeRequest("p-1", "o-1", _cny(amount), "a-0"))
        authorization = self._authorized(gateway)
        with pytest.raises(InvalidInput):
            gateway.capture(CaptureRequest("p-1", authorization, _cny(amount), "c-0"))

    @pytest.mark.parametrize("kind", list(NotificationKind))
    def test_parse_notification_normalises_the_providers_callback(
        self, kind: NotificationKind
    ) -> None:
        """Every kind of callback parses into a Notification with the same ids and amount."""
        gateway = self.make_gateway()
        payload = self.make_notification(
            gateway,
            kind=kind,
            payment_id="p-1",
            amount=_cny("76.00"),
            event_id="ev-1",
            transaction_id="tx-1",
            request_key="p-1:sale",
        )
        notification = gateway.parse_notification(payload)
        assert (notification.event_id, notification.payment_id) == ("ev-1", "p-1")
        assert (notification.kind, notification.amount) == (kind, _cny("76.00"))
        assert (notification.transaction_id, notification.request_key) == ("tx-1", "p-1:sale")

    def test_parse_notification_refuses_a_payload_it_cannot_read(self) -> None:
        """An empty or unrelated payload raises InvalidInput."""
        gateway = self.make_gateway()
        for payload in ({}, {"hello": "world"}):
            with pytest.raises(InvalidInput):
                gateway.parse_notification(payload)

    def make_gateway_leaving_refunds_pending(self) -> PaymentGateway:
        """A new gateway that captures charges but leaves every refund it accepts pending.

        As a provider still processing refunds answers (a time-out, an asynchronous refund).
        """
        raise NotImplementedError

    def settle_refund(
        self, gateway: PaymentGateway, request: RefundRequest, *, succeeded: bool
    ) -> None:
        """Have the provider behind ``gateway`` finish the pending ``request`` (or fail it)."""
        raise NotImplementedError

    def test_a_pending_refund_counts_against_the_charge_until_it_settles(self) -> None:
        """A pending refund reserves its amount: more than is left beside it is declined.

        A pending refund that fails frees its amount again; one that succeeds is refunded.
        """
        gateway = self.make_gateway_leaving_refunds_pending()
        sale = gateway.charge(ChargeRequest("o-1", _cny("76.00"), "s-1", "p-1"))
        assert sale.status is GatewayStatus.SUCCEEDED

        def refund(amount: str, key: str) -> tuple[RefundRequest, GatewayStatus]:
            request = RefundRequest("o-1", sale.transaction_id, _cny(amount), key, "p-1")
            return request, gateway.refund(request).status

        first, status = refund("50.00", "r-1")
        assert status is GatewayStatus.PENDING
        assert refund("30.00", "r-2")[1] is GatewayStatus.DECLINED  # 26.00 left beside it
        rest, status = refund("26.00", "r-3")
        assert status is GatewayStatus.PENDING
        assert refund("0.01", "r-4")[1] is GatewayStatus.DECLINED
        self.settle_refund(gateway, first, succeeded=False)  # 50.00 free again
        again, status = refund("50.00", "r-5")
        assert status is GatewayStatus.PENDING
        assert refund("0.01", "r-6")[1] is GatewayStatus.DECLINED
        self.settle_refund(gateway, rest, succeeded=True)
        self.settle_refund(gateway, again, succeeded=True)  # 76.00 refunded in all
        assert refund("0.01", "r-7")[1] is GatewayStatus.DECLINED

    def test_a_pending_refund_asked_again_gives_its_outcome_once_it_settled(self) -> None:
        """The same key asked again returns the provider's current answer, never acting twice.

        The services rely on it: a refund left pending and asked again under its key learns
        how it ended, even before the provider's callback arrives.
        """
        gateway = self.make_gateway_leaving_refunds_pending()
        sale = gateway.charge(ChargeRequest("o-1", _cny("76.00"), "s-1", "p-1"))
        done = RefundRequest("o-1", sale.transaction_id, _cny("30.00"), "r-1", "p-1")
        failed = RefundRequest("o-1", sale.transaction_id, _cny("20.00"), "r-2", "p-1")
        assert gateway.refund(done).status is GatewayStatus.PENDING
        assert gateway.refund(failed).status is GatewayStatus.PENDING
        assert gateway.refund(done).status is GatewayStatus.PENDING  # still processing
        self.settle_refund(gateway, done, succeeded=True)
        self.settle_refund(gateway, failed, succeeded=False)
        assert gateway.refund(done).status is GatewayStatus.SUCCEEDED
        assert gateway.refund(failed).status is GatewayStatus.DECLINED
        left = RefundRequest("o-1", sale.transaction_id, _cny("46.00"), "r-3", "p-1")
        assert gateway.refund(left).status is not GatewayStatus.DECLINED  # 30.00 refunded once


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


# --------------------------------------------------------------------------- promotion ledger


def _claim(key: str, amount: int, cap: int, *, until_paid: bool = False) -> LimitClaim:
    return LimitClaim(key, amount, cap, until_paid=until_paid)


_LEDGER_KEYS: Final = ("k-a", "k-b")
_LEDGER_IDS: Final = ("r-1", "r-2", "r-3")
_CAP: Final = 5


class _LedgerMachine(RuleBasedStateMachine):
    """Random reserve, commit and release, checked against a plain-dict model."""

    def __init__(self, ledger: PromotionLedger) -> None:
        super().__init__()
        self.ledger = ledger
        self.held = dict.fromkeys(_LEDGER_KEYS, 0)
        # id -> (claims, state)
        self.holds: dict[str, tuple[tuple[LimitClaim, ...], str]] = {}

    def _usage(self) -> dict[str, int]:
        return dict(self.ledger.usage(_LEDGER_KEYS))

    def _add(self, claims: Sequence[LimitClaim], sign: int, *, temporary: bool | None) -> None:
        for claim in claims:
            if temporary is None or claim.until_paid is temporary:
                self.held[claim.key] += sign * claim.amount

    @rule(
        reservation_id=st.sampled_from(_LEDGER_IDS),
        wanted=st.lists(
            st.tuples(st.sampled_from(_LEDGER_KEYS), st.integers(1, 3), st.booleans()),
            min_size=1,
            max_size=2,
            unique_by=lambda claim: claim[0],
        ),
    )
    def reserve(self, reservation_id: str, wanted: list[tuple[str, int, bool]]) -> None:
        """Reserve, expecting exactly what the model says."""
        claims = tuple(_claim(k, n, _CAP, until_paid=t) for k, n, t in wanted)
        before = self._usage()
        existing = self.holds.get(reservation_id)
        live = existing is not None and existing[1] != "released"
        if live and existing is not None and existing[0] != claims:
            with pytest.raises(IdempotencyConflict):
                self.ledger.reserve(reservation_id, claims)
        elif live:
            self.ledger.reserve(reservation_id, claims)
        elif any(self.held[c.key] + c.amount > _CAP for c in claims):
            with pytest.raises(LimitExceeded):
                self.ledger.reserve(reservation_id, claims)
        else:
            self.ledger.reserve(reservation_id, claims)
            self._add(claims, 1, temporary=None)
            self.holds[reservation_id] = (claims, "reserved")
            return
        assert self._usage() == before

    @rule(reservation_id=st.sampled_from([*_LEDGER_IDS, "r-unknown"]))
    def commit(self, reservation_id: str) -> None:
        """Commit, expecting what the model says."""
        hold = self.holds.get(reservation_id)
        if hold is None:
            with pytest.raises(NotFound):
                self.ledger.commit(reservation_id)
            return
        claims, state = hold
        if state == "released":
            with pytest.raises(RuleViolation):
                self.ledger.commit(reservation_id)
            return
        self.ledger.commit(reservation_id)
        if state == "reserved":
            self._add(claims, -1, temporary=True)
            self.holds[reservation_id] = (claims, "committed")

    @rule(reservation_id=st.sampled_from([*_LEDGER_IDS, "r-unknown"]))
    def release(self, reservation_id: str) -> None:
        """Release, expecting what the model says."""
        hold = self.holds.get(reservation_id)
        released = self.ledger.release(reservation_id)
        if hold is None or hold[1] == "released":
            assert released is False
            return
        assert released is True
        claims, state = hold
        self._add(claims, -1, temporary=None if state == "reserved" else False)
        self.holds[reservation_id] = (claims, "released")

    @invariant()
    def usage_matches_the_model_and_never_passes_a_cap(self) -> None:
        """Every key holds what the model says, never below zero nor above its cap."""
        usage = self._usage()
        assert usage == self.held
        assert all(0 <= held <= _CAP for held in usage.values())


def run_promotion_ledger_contract(
    factory: Callable[[], PromotionLedger], settings: hypothesis.settings | None = None
) -> None:
    """Drive fresh ledgers from ``factory`` through random operations against a model."""
    chosen = settings or hypothesis.settings(max_examples=50, stateful_step_count=30, deadline=None)

    class _Machine(_LedgerMachine):
        def __init__(self) -> None:
            super().__init__(factory())

    run_state_machine_as_test(_Machine, settings=chosen)


class PromotionLedgerContract:
    """The behaviour of :class:`~ecommerce_core.ports.PromotionLedger`."""

    def make_ledger(self) -> PromotionLedger:
        """A new, empty ledger."""
        raise NotImplementedError

    def test_reserve_raises_what_each_claimed_key_holds(self) -> None:
        """A reservation adds each claim's amount to its key; other keys hold nothing."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("uses", 1, 10), _claim("budget", 500, 1000)])
        assert dict(ledger.usage(["uses", "budget", "other"])) == {
            "uses": 1,
            "budget": 500,
            "other": 0,
        }

    def test_reserve_may_fill_a_cap_exactly_and_no_more(self) -> None:
        """Claims up to the cap are reserved; one more unit raises LimitExceeded."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("quota", 3, 5)])
        ledger.reserve("r-2", [_claim("quota", 2, 5)])
        with pytest.raises(LimitExceeded) as caught:
            ledger.reserve("r-3", [_claim("quota", 1, 5)])
        assert (caught.value.limit, caught.value.allowed, caught.value.requested) == (
            "quota",
            0,
            1,
        )
        assert dict(ledger.usage(["quota"])) == {"quota": 5}

    def test_reserve_is_all_or_nothing(self) -> None:
        """When one key would pass its cap, no key is reserved."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("quota", 4, 5)])
        with pytest.raises(LimitExceeded) as caught:
            ledger.reserve("r-2", [_claim("uses", 1, 10), _claim("quota", 2, 5)])
        assert caught.value.limit == "quota"
        assert dict(ledger.usage(["uses", "quota"])) == {"uses": 0, "quota": 4}

    def test_claims_on_one_key_in_one_reservation_add_up(self) -> None:
        """Two claims on one key count together against its cap."""
        ledger = self.make_ledger()
        with pytest.raises(LimitExceeded):
            ledger.reserve("r-1", [_claim("k", 2, 3), _claim("k", 2, 3)])
        ledger.reserve("r-2", [_claim("k", 1, 3), _claim("k", 2, 3)])
        assert dict(ledger.usage(["k"])) == {"k": 3}

    def test_repeating_a_reservation_with_the_same_claims_changes_nothing(self) -> None:
        """A second reserve with the same id and claims is a no-op."""
        ledger = self.make_ledger()
        claims = [_claim("k", 2, 3)]
        ledger.reserve("r-1", claims)
        ledger.reserve("r-1", list(claims))
        assert dict(ledger.usage(["k"])) == {"k": 2}

    def test_reusing_a_live_id_with_other_claims_raises_idempotency_conflict(self) -> None:
        """A reserve with a live id and different claims raises and changes nothing."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3)])
        with pytest.raises(IdempotencyConflict) as caught:
            ledger.reserve("r-1", [_claim("k", 1, 3)])
        assert caught.value.key == "r-1"
        assert dict(ledger.usage(["k"])) == {"k": 2}

    def test_reserve_refuses_no_claims_and_one_key_with_two_caps(self) -> None:
        """An empty reservation, or a key claimed with two caps, raises InvalidInput."""
        ledger = self.make_ledger()
        with pytest.raises(InvalidInput):
            ledger.reserve("r-1", [])
        with pytest.raises(InvalidInput):
            ledger.reserve("r-2", [_claim("k", 1, 3), _claim("k", 1, 4)])
        assert dict(ledger.usage(["k"])) == {"k": 0}

    def test_commit_keeps_the_claims_and_gives_back_those_held_until_paid(self) -> None:
        """Committing keeps ordinary claims and frees until-paid ones; a repeat is a no-op."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("quota", 2, 5), _claim("unpaid", 1, 1, until_paid=True)])
        ledger.commit("r-1")
        assert dict(ledger.usage(["quota", "unpaid"])) == {"quota": 2, "unpaid": 0}
        ledger.commit("r-1")
        assert dict(ledger.usage(["quota", "unpaid"])) == {"quota": 2, "unpaid": 0}
        ledger.reserve("r-2", [_claim("unpaid", 1, 1, until_paid=True)])
        assert dict(ledger.usage(["unpaid"])) == {"unpaid": 1}

    def test_commit_of_an_unknown_reservation_raises_not_found(self) -> None:
        """Committing an id never reserved raises NotFound."""
        with pytest.raises(NotFound):
            self.make_ledger().commit("r-missing")

    def test_commit_after_release_raises_rule_violation(self) -> None:
        """Committing a released reservation raises RuleViolation and changes nothing."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3)])
        ledger.release("r-1")
        with pytest.raises(RuleViolation):
            ledger.commit("r-1")
        assert dict(ledger.usage(["k"])) == {"k": 0}

    def test_release_gives_back_a_reservation_once(self) -> None:
        """Releasing returns True and frees the claims; a second release returns False."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3), _claim("unpaid", 1, 1, until_paid=True)])
        ledger.reserve("r-2", [_claim("k", 1, 3)])
        assert ledger.release("r-1") is True
        assert dict(ledger.usage(["k", "unpaid"])) == {"k": 1, "unpaid": 0}
        assert ledger.release("r-1") is False
        assert dict(ledger.usage(["k", "unpaid"])) == {"k": 1, "unpaid": 0}

    def test_release_of_a_committed_reservation_gives_back_only_what_it_kept(self) -> None:
        """A committed reservation releases its kept claims; until-paid ones went at commit."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3), _claim("unpaid", 1, 1, until_paid=True)])
        ledger.commit("r-1")
        ledger.reserve("r-2", [_claim("unpaid", 1, 1, until_paid=True)])
        assert ledger.release("r-1") is True
        assert dict(ledger.usage(["k", "unpaid"])) == {"k": 0, "unpaid": 1}

    def test_release_of_an_id_never_reserved_returns_false(self) -> None:
        """Releasing an unknown id is safe: it returns False and changes nothing."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3)])
        assert ledger.release("r-missing") is False
        assert dict(ledger.usage(["k"])) == {"k": 2}

    def test_a_released_id_may_be_reserved_again(self) -> None:
        """After a release the same id reserves afresh, against the cap as it stands."""
        ledger = self.make_ledger()
        ledger.reserve("r-1", [_claim("k", 2, 3)])
        ledger.release("r-1")
        ledger.reserve("r-2", [_claim("k", 2, 3)])
        with pytest.raises(LimitExceeded):
            ledger.reserve("r-1", [_claim("k", 2, 3)])
        ledger.reserve("r-1", [_claim("k", 1, 3)])
        assert dict(ledger.usage(["k"])) == {"k": 3}

    def test_random_operations_match_a_model_and_never_pass_a_cap(self) -> None:
        """Random reserve, commit and release keep every key equal to a simple model."""
        run_promotion_ledger_contract(self.make_ledger)


# --------------------------------------------------------------------------- promotion catalogue


def _contract_items() -> list[Promotion | Coupon | FlashSale | RushPurchase]:
    cny = functools.partial(Money.of, currency="CNY")
    own = Promotion("own", PercentOff(10), scope=Scope(merchants={"m-1"}))
    platform = Promotion("platform", PercentOff(5))
    other = Promotion("other", PercentOff(20), scope=Scope(merchants={"m-2"}))
    later = CONTRACT_TIME + timedelta(hours=2)
    flash = FlashSale(
        "flash-1",
        [Session("s1", CONTRACT_TIME, later)],
        [FlashItem("tea-01", cny("38.00"), cny("19.90"), 10, 2)],
    )
    rush = RushPurchase(
        "rush-1",
        CONTRACT_TIME,
        later,
        [RushItem("cup-01", cny("25.00"), cny("9.90"), 5, 1)],
    )
    return [own, platform, other, Coupon("HELLO", own, max_uses=1), flash, rush]


class PromotionCatalogContract:
    """The behaviour of :class:`~ecommerce_core.ports.PromotionCatalog`."""

    def make_catalog(
        self, items: Sequence[Promotion | Coupon | FlashSale | RushPurchase]
    ) -> PromotionCatalog:
        """A catalogue holding exactly ``items``."""
        raise NotImplementedError

    def test_a_merchant_gets_its_own_and_the_platform_wide_promotions_only(self) -> None:
        """Promotions naming the merchant or no merchant are listed; another's are not."""
        catalog = self.make_catalog(_contract_items())
        assert sorted(p.id for p in catalog.promotions("m-1")) == ["own", "platform"]
        assert sorted(p.id for p in catalog.promotions("m-3")) == ["platform"]

    def test_a_coupon_is_found_by_its_code(self) -> None:
        """The coupon with a stored code comes back intact; an unknown code is NotFound."""
        items = _contract_items()
        catalog = self.make_catalog(items)
        assert catalog.coupon("HELLO") == items[3]
        with pytest.raises(NotFound) as caught:
            catalog.coupon("NOPE")
        assert caught.value.key == "NOPE"

    def test_a_campaign_is_found_by_its_id(self) -> None:
        """Flash sales and rush purchases come back intact; an unknown id is NotFound."""
        items = _contract_items()
        catalog = self.make_catalog(items)
        assert catalog.campaign("flash-1") == items[4]
        assert catalog.campaign("rush-1") == items[5]
        with pytest.raises(NotFound):
            catalog.campaign("nope")


# --------------------------------------------------------------------------- delivery


def make_shipment(
    shipment_id: str = "s-1",
    *,
    order: Order | None = None,
    sequence: int = 1,
    carrier: str = "SF",
    tracking_number: str = "SF1",
    quantity: int = 1,
) -> Shipment:
    """A new shipment of ``quantity`` units of line 1 of ``order`` (a paid tea order)."""
    if order is None:
        order = make_order(quantity=2)
        _pay(order)
    return Shipment.create(
        shipment_id=shipment_id,
        order=order,
        sequence=sequence,
        actor=Actor.merchant(order.merchant_id),
        carrier=carrier,
        tracking_number=tracking_number,
        lines=[ShipmentLine("1", quantity)],
        now=CONTRACT_TIME,
    )


def _stored_shipment(shipment: Shipment) -> dict[str, object]:
    return {
        "id": shipment.id,
        "order_id": shipment.order_id,
        "sequence": shipment.sequence,
        "merchant_id": shipment.merchant_id,
        "buyer_id": shipment.buyer_id,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "lines": shipment.lines,
        "purpose": shipment.purpose,
        "reference": shipment.reference,
        "created_at": shipment.created_at,
        "process": shipment.process.name,
        "state": shipment.state,
        "version": shipment.version,
        "tracking": shipment.tracking,
        "last_moved_at": shipment.last_moved_at,
        "delivered_at": shipment.delivered_at,
    }


def assert_same_shipment(actual: Shipment, expected: Shipment) -> None:
    """Assert that two shipments hold the same stored data (their pending events aside)."""
    assert _stored_shipment(actual) == _stored_shipment(expected)


def _track(shipment: Shipment, event_id: str, status: str, minutes: int) -> None:
    shipment.record(
        TrackingEvent(
            event_id,
            shipment.carrier,
            shipment.tracking_number,
            status,
            CONTRACT_TIME + minutes * _MINUTE,
        ),
        actor=Actor.carrier(shipment.carrier),
        now=CONTRACT_TIME + timedelta(days=1),
    )


class ShipmentRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.ShipmentRepository`."""

    def make_repository(self) -> ShipmentRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_shipment(self) -> None:
        """An added shipment loads back equal, as another object, at version 1."""
        repository, shipment = self.make_repository(), make_shipment()
        repository.add(shipment)
        loaded = repository.get("s-1")
        assert loaded is not shipment
        assert_same_shipment(loaded, shipment)
        assert (loaded.version, loaded.state) == (1, "created")

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id never added raises NotFound naming it."""
        repository = self.make_repository()
        repository.add(make_shipment())
        with pytest.raises(NotFound) as caught:
            repository.get("s-missing")
        assert caught.value.key == "s-missing"

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first shipment stays."""
        repository, first = self.make_repository(), make_shipment()
        repository.add(first)
        with pytest.raises(Conflict):
            repository.add(make_shipment(sequence=2, tracking_number="SF2"))
        assert_same_shipment(repository.get("s-1"), first)
        with pytest.raises(NotFound):
            repository.by_tracking_number("SF", "SF2")

    def test_a_second_shipment_with_the_same_order_and_sequence_conflicts(self) -> None:
        """Two parcels packed at once get the same sequence: the second add stores nothing."""
        repository = self.make_repository()
        order = make_order(quantity=2)
        _pay(order)
        repository.add(make_shipment("s-1", order=order))
        with pytest.raises(Conflict):
            repository.add(make_shipment("s-2", order=order, tracking_number="SF2"))
        with pytest.raises(NotFound):
            repository.get("s-2")
        with pytest.raises(NotFound):
            repository.by_tracking_number("SF", "SF2")
        assert [s.id for s in repository.for_order("o-1")] == ["s-1"]

    def test_a_tracking_number_is_stored_once_per_carrier(self) -> None:
        """The same carrier and tracking number twice conflicts; another carrier may reuse it."""
        repository = self.make_repository()
        other = make_order("o-2", quantity=2)
        _pay(other)
        repository.add(make_shipment("s-1"))
        with pytest.raises(Conflict):
            repository.add(make_shipment("s-2", order=other))
        with pytest.raises(NotFound):
            repository.get("s-2")
        repository.add(make_shipment("s-3", order=other, carrier="ZTO"))
        assert repository.by_tracking_number("ZTO", "SF1").id == "s-3"
        assert repository.by_tracking_number("SF", "SF1").id == "s-1"

    def test_by_tracking_number_of_an_unknown_number_raises_not_found(self) -> None:
        """An unknown tracking number, or a known one with another carrier, raises NotFound."""
        repository = self.make_repository()
        repository.add(make_shipment())
        for carrier, number in (("SF", "SF404"), ("YTO", "SF1")):
            with pytest.raises(NotFound):
                repository.by_tracking_number(carrier, number)

    def test_for_order_lists_an_orders_shipments_by_sequence(self) -> None:
        """An order's shipments come back by sequence; other orders' are not listed."""
        repository = self.make_repository()
        order, other = make_order("o-1", quantity=3), make_order("o-2", quantity=2)
        _pay(order)
        _pay(other)
        repository.add(make_shipment("s-b", order=order, sequence=2, tracking_number="B"))
        repository.add(make_shipment("s-x", order=other, tracking_number="X"))
        repository.add(make_shipment("s-a", order=order, sequence=1, tracking_number="A"))
        assert [s.id for s in repository.for_order("o-1")] == ["s-a", "s-b"]
        assert [s.id for s in repository.for_order("o-2")] == ["s-x"]
        assert repository.for_order("o-none") == []

    def test_changing_a_loaded_or_added_shipment_changes_nothing_stored(self) -> None:
        """Commands on the added object or on a loaded copy leave the stored one alone."""
        repository, shipment = self.make_repository(), make_shipment()
        repository.add(shipment)
        expected = repository.get("s-1")
        _track(shipment, "e-1", "in_transit", 5)
        _track(repository.get("s-1"), "e-2", "delivered", 9)
        assert_same_shipment(repository.get("s-1"), expected)

    def test_save_with_the_expected_version_stores_the_tracking_history(self) -> None:
        """A save from the stored version round-trips the state and every tracking event."""
        repository = self.make_repository()
        repository.add(make_shipment())
        shipment = repository.get("s-1")
        _track(shipment, "e-2", "in_transit", 5)
        _track(shipment, "e-1", "handed_to_carrier", 1)
        repository.save(shipment, 1)
        loaded = repository.get("s-1")
        assert_same_shipment(loaded, shipment)
        assert [e.event_id for e in loaded.tracking] == ["e-1", "e-2"]
        assert (loaded.state, loaded.version) == ("in_transit", 3)
        assert repository.by_tracking_number("SF", "SF1").version == 3

    def test_save_expecting_another_version_raises_version_conflict(self) -> None:
        """A stale or unknown expected version raises, and the stored shipment stays."""
        repository = self.make_repository()
        repository.add(make_shipment())
        stale, fresh = repository.get("s-1"), repository.get("s-1")
        _track(fresh, "e-1", "in_transit", 5)
        repository.save(fresh, 1)
        _track(stale, "e-2", "lost", 6)
        for expected in (1, 0, 3):
            with pytest.raises(VersionConflict) as caught:
                repository.save(stale, expected)
            assert (caught.value.expected, caught.value.actual) == (expected, 2)
        assert_same_shipment(repository.get("s-1"), fresh)

    def test_save_of_a_shipment_never_added_raises_version_conflict(self) -> None:
        """Saving a shipment never added raises VersionConflict and stores nothing."""
        repository = self.make_repository()
        with pytest.raises(VersionConflict) as caught:
            repository.save(make_shipment(), 1)
        assert caught.value.actual is None
        with pytest.raises(NotFound):
            repository.get("s-1")

    def test_events_are_neither_stored_nor_taken_from_the_caller(self) -> None:
        """Loaded shipments carry no events; add and save leave the caller's events alone."""
        repository, shipment = self.make_repository(), make_shipment()
        repository.add(shipment)
        assert [e.name for e in shipment.events] == ["ShipmentCreated"]
        loaded = repository.get("s-1")
        assert loaded.events == ()
        _track(loaded, "e-1", "in_transit", 5)
        repository.save(loaded, 1)
        assert [e.name for e in loaded.collect_events()] == ["TrackingEventRecorded"]
        assert repository.get("s-1").events == ()


def _after_sales(order_id: str = "o-1") -> OrderAfterSales:
    order = make_order(order_id, quantity=3)
    _pay(order)
    record = OrderAfterSales.open(order)
    record.request_after_sales(
        Actor.buyer(order.buyer_id),
        request_id="as-1",
        kind="refund_only",
        reason="no_reason",
        items=[AfterSalesItem("1", 1)],
        order=order,
        fulfilment=fulfilment_status(order, []),
        now=CONTRACT_TIME,
        policy=_AFTER_SALES_POLICY,
    )
    return record


def _stored_after_sales(record: OrderAfterSales) -> dict[str, object]:
    return {
        "id": record.id,
        "order_id": record.order_id,
        "buyer_id": record.buyer_id,
        "merchant_id": record.merchant_id,
        "lines": record.lines,
        "shipping_fee": record.shipping_fee,
        "requests": record.requests,
        "version": record.version,
    }


def assert_same_after_sales(actual: OrderAfterSales, expected: OrderAfterSales) -> None:
    """Assert that two after-sales records hold the same stored data (events aside)."""
    assert _stored_after_sales(actual) == _stored_after_sales(expected)


def _reject(record: OrderAfterSales) -> None:
    record.reject(
        Actor.merchant(record.merchant_id), "as-1", reason="shipped already", now=CONTRACT_TIME
    )


class AfterSalesRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.AfterSalesRepository`."""

    def make_repository(self) -> AfterSalesRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_record(self) -> None:
        """An added record loads back equal, requests included, as another object."""
        repository, record = self.make_repository(), _after_sales()
        repository.add(record)
        loaded = repository.get("o-1")
        assert loaded is not record
        assert_same_after_sales(loaded, record)
        assert [r.request_id for r in loaded.requests] == ["as-1"]

    def test_get_of_an_order_without_a_record_raises_not_found(self) -> None:
        """Loading the record of an order that has none raises NotFound naming the order."""
        repository = self.make_repository()
        repository.add(_after_sales("o-1"))
        with pytest.raises(NotFound) as caught:
            repository.get("o-2")
        assert caught.value.key == "o-2"

    def test_adding_a_second_record_for_an_order_raises_conflict(self) -> None:
        """A second add for the same order raises Conflict; the first record stays."""
        repository, first = self.make_repository(), _after_sales()
        repository.add(first)
        second = _after_sales()
        _reject(second)
        with pytest.raises(Conflict):
            repository.add(second)
        assert_same_after_sales(repository.get("o-1"), first)

    def test_changing_a_loaded_or_added_record_changes_nothing_stored(self) -> None:
        """Commands on the added object or a loaded copy leave the stored record alone."""
        repository, record = self.make_repository(), _after_sales()
        repository.add(record)
        expected = repository.get("o-1")
        _reject(record)
        _reject(repository.get("o-1"))
        assert_same_after_sales(repository.get("o-1"), expected)
        assert repository.get("o-1").requests[0].state == "requested"

    def test_save_with_the_expected_version_stores_the_record(self) -> None:
        """A save from the stored version is what the next get returns."""
        repository = self.make_repository()
        repository.add(_after_sales())
        record = repository.get("o-1")
        _reject(record)
        repository.save(record, 1)
        loaded = repository.get("o-1")
        assert_same_after_sales(loaded, record)
        assert (loaded.version, loaded.requests[0].state) == (2, "rejected")

    def test_save_expecting_another_version_raises_version_conflict(self) -> None:
        """A stale expected version raises; the stored record stays as the winner left it."""
        repository = self.make_repository()
        repository.add(_after_sales())
        first, second = repository.get("o-1"), repository.get("o-1")
        _reject(first)
        repository.save(first, 1)
        second.withdraw(Actor.buyer(second.buyer_id), "as-1", now=CONTRACT_TIME)
        for expected in (1, 0, 3):
            with pytest.raises(VersionConflict):
                repository.save(second, expected)
        assert_same_after_sales(repository.get("o-1"), first)

    def test_save_of_a_record_never_added_raises_version_conflict(self) -> None:
        """Saving a record never added raises VersionConflict and stores nothing."""
        repository = self.make_repository()
        with pytest.raises(VersionConflict):
            repository.save(_after_sales(), 1)
        with pytest.raises(NotFound):
            repository.get("o-1")

    def test_events_are_neither_stored_nor_taken_from_the_caller(self) -> None:
        """Loaded records carry no events; add leaves the caller's events alone."""
        repository, record = self.make_repository(), _after_sales()
        repository.add(record)
        assert [e.name for e in record.events] == ["AfterSalesRequested"]
        assert repository.get("o-1").events == ()


_OPTIONS: Final = (
    DeliveryOption("sf-std", "SF", "standard", Money.of("12.00", "CNY"), 2, cod_supported=True),
    DeliveryOption("sf-exp", "SF", "express", Money.of("22.00", "CNY"), 1),
    DeliveryOption("store", "m-1-shop", "pickup", Money.zero("CNY"), 0, method="pickup"),
)


class CarriersContract:
    """The behaviour of :class:`~ecommerce_core.ports.Carriers`."""

    def make_carriers(self, offers: dict[str, Sequence[DeliveryOption]]) -> Carriers:
        """Carriers where each merchant offers exactly its options in ``offers``."""
        raise NotImplementedError

    def test_the_options_a_merchant_offers_come_back_intact(self) -> None:
        """Each merchant's options come back, every field intact, and only theirs."""
        carriers = self.make_carriers({"m-1": _OPTIONS, "m-2": _OPTIONS[:1]})
        lines = make_order().lines
        assert sorted(carriers.delivery_options("m-1", lines), key=lambda o: o.option_id) == sorted(
            _OPTIONS, key=lambda o: o.option_id
        )
        assert list(carriers.delivery_options("m-2", lines)) == [_OPTIONS[0]]

    def test_a_merchant_offering_nothing_gets_no_options(self) -> None:
        """A merchant with no options gets an empty answer, not an error."""
        carriers = self.make_carriers({"m-1": _OPTIONS})
        assert list(carriers.delivery_options("m-none", make_order().lines)) == []

    def test_option_ids_are_unique_in_one_answer(self) -> None:
        """No option id appears twice for one merchant and order."""
        carriers = self.make_carriers({"m-1": _OPTIONS})
        ids = [o.option_id for o in carriers.delivery_options("m-1", make_order().lines)]
        assert len(ids) == len(set(ids)) == len(_OPTIONS)


_KEYS: Final = ("k-1", "k-2", "k-3")
_FINGERPRINTS: Final = ("fp-a", "fp-b")
_RESULTS: Final = ('{"order": "o-1"}', '{"order": "o-2"}', "")


class _IdempotencyMachine(RuleBasedStateMachine):
    """Random remember and lookup calls, checked against a plain dict."""

    def __init__(self, store: IdempotencyStore) -> None:
        super().__init__()
        self.store = store
        self.model: dict[str, tuple[str, str]] = {}

    @rule(
        key=st.sampled_from(_KEYS),
        fingerprint=st.sampled_from(_FINGERPRINTS),
        result=st.sampled_from(_RESULTS),
    )
    def remember(self, key: str, fingerprint: str, result: str) -> None:
        """Remember: a new key stores, a same-fingerprint repeat returns the first result."""
        stored = self.model.get(key)
        if stored is not None and stored[0] != fingerprint:
            with pytest.raises(IdempotencyConflict):
                self.store.remember(key, fingerprint, result)
            return
        expected = result if stored is None else stored[1]
        assert self.store.remember(key, fingerprint, result) == expected
        self.model.setdefault(key, (fingerprint, result))

    @rule(key=st.sampled_from(_KEYS), fingerprint=st.sampled_from(_FINGERPRINTS))
    def lookup(self, key: str, fingerprint: str) -> None:
        """Look a key up: None when new, the result when it matches, a conflict otherwise."""
        stored = self.model.get(key)
        if stored is not None and stored[0] != fingerprint:
            with pytest.raises(IdempotencyConflict):
                self.store.lookup(key, fingerprint)
            return
        assert self.store.lookup(key, fingerprint) == (None if stored is None else stored[1])

    @invariant()
    def every_key_answers_as_the_model_says(self) -> None:
        """Each key known to the model returns its first result under its fingerprint."""
        for key, (fingerprint, result) in self.model.items():
            assert self.store.lookup(key, fingerprint) == result


def run_idempotency_store_contract(
    factory: Callable[[], IdempotencyStore], settings: hypothesis.settings | None = None
) -> None:
    """Drive fresh stores from ``factory`` through random calls against a dict model.

    For hosts who build adapters from fixtures rather than by subclassing
    :class:`IdempotencyStoreContract`. Fails with Hypothesis's minimal failing sequence.
    """
    chosen = settings or hypothesis.settings(max_examples=40, stateful_step_count=20, deadline=None)

    class _Machine(_IdempotencyMachine):
        def __init__(self) -> None:
            super().__init__(factory())

    run_state_machine_as_test(_Machine, settings=chosen)


class IdempotencyStoreContract:
    """The behaviour of :class:`~ecommerce_core.ports.IdempotencyStore`."""

    def make_store(self) -> IdempotencyStore:
        """A new, empty store."""
        raise NotImplementedError

    def test_lookup_of_a_new_key_returns_none(self) -> None:
        """A key never remembered looks up as None, whatever the fingerprint."""
        store = self.make_store()
        assert store.lookup("k-1", "fp-a") is None
        assert store.lookup("k-1", "fp-b") is None

    def test_remember_returns_the_result_and_lookup_finds_it(self) -> None:
        """Remembering a new key returns its result, and lookup returns it again."""
        store = self.make_store()
        assert store.remember("k-1", "fp-a", '{"order": "o-1"}') == '{"order": "o-1"}'
        assert store.lookup("k-1", "fp-a") == '{"order": "o-1"}'

    def test_a_repeat_with_the_same_fingerprint_returns_the_first_result(self) -> None:
        """A second remember with the same fingerprint keeps and returns the first result."""
        store = self.make_store()
        store.remember("k-1", "fp-a", "first")
        assert store.remember("k-1", "fp-a", "second") == "first"
        assert store.lookup("k-1", "fp-a") == "first"

    def test_a_repeat_with_another_fingerprint_raises_and_changes_nothing(self) -> None:
        """Remember and lookup with another fingerprint raise, naming the key; nothing moves."""
        store = self.make_store()
        store.remember("k-1", "fp-a", "first")
        with pytest.raises(IdempotencyConflict) as caught:
            store.remember("k-1", "fp-b", "second")
        assert caught.value.key == "k-1"
        with pytest.raises(IdempotencyConflict) as caught:
            store.lookup("k-1", "fp-b")
        assert caught.value.key == "k-1"
        assert store.lookup("k-1", "fp-a") == "first"

    def test_keys_are_independent(self) -> None:
        """Each key keeps its own fingerprint and result."""
        store = self.make_store()
        for index in range(50):
            store.remember(f"k-{index}", f"fp-{index % 3}", f"result-{index}")
        for index in range(50):
            assert store.lookup(f"k-{index}", f"fp-{index % 3}") == f"result-{index}"
        assert store.lookup("k-50", "fp-0") is None

    def test_an_empty_result_is_remembered_as_a_result(self) -> None:
        """An empty string is a result, not an absence: lookup returns it, not None."""
        store = self.make_store()
        assert store.remember("k-1", "fp-a", "") == ""
        assert store.lookup("k-1", "fp-a") == ""
        assert store.remember("k-1", "fp-a", "later") == ""

    def test_keys_and_fingerprints_are_compared_exactly(self) -> None:
        """Keys differing in case or by a space are different keys; so are fingerprints."""
        store = self.make_store()
        store.remember("k-1", "fp-a", "lower")
        store.remember("K-1", "fp-a", "upper")
        store.remember("k-1 ", "fp-a", "spaced")
        assert [store.lookup(key, "fp-a") for key in ("k-1", "K-1", "k-1 ")] == [
            "lower",
            "upper",
            "spaced",
        ]
        with pytest.raises(IdempotencyConflict):
            store.lookup("k-1", "FP-A")

    @pytest.mark.parametrize(
        ("key", "fingerprint", "result"),
        [("", "fp", "r"), ("k", "", "r"), (None, "fp", "r"), ("k", 7, "r"), ("k", "fp", None)],
    )
    def test_malformed_input_raises_invalid_input_and_remembers_nothing(
        self, key: object, fingerprint: object, result: object
    ) -> None:
        """An empty or non-text key or fingerprint, or a non-text result, is refused."""
        store = self.make_store()
        with pytest.raises(InvalidInput):
            store.remember(cast("str", key), cast("str", fingerprint), cast("str", result))
        if isinstance(key, str) and key and isinstance(fingerprint, str) and fingerprint:
            assert store.lookup(key, fingerprint) is None
        else:
            with pytest.raises(InvalidInput):
                store.lookup(cast("str", key), cast("str", fingerprint))

    def test_random_requests_answer_as_a_dict_would(self) -> None:
        """Random remember and lookup calls agree with a plain dict model throughout."""
        run_idempotency_store_contract(self.make_store)


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


# --------------------------------------------------------------------------- teams


def make_team(team_id: str = "t-1", *, hours: int = 24, leader: str = "alice") -> Team:
    """A forming team of three, opened by ``leader`` at :data:`CONTRACT_TIME`."""
    terms = TeamTerms(
        "pin-1",
        size=3,
        ends_at=CONTRACT_TIME + timedelta(days=7),
        validity=timedelta(hours=hours),
    )
    return Team.open(
        Actor.buyer(leader),
        team_id=team_id,
        terms=terms,
        order_id=f"{team_id}-o-{leader}",
        amount=Money.of("9.90", "CNY"),
        payment_ref=f"{team_id}-tx-{leader}",
        now=CONTRACT_TIME,
    )


class TeamRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.TeamRepository`."""

    def make_repository(self) -> TeamRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_team(self) -> None:
        """An added team loads back equal (members, deadline, version) but not the same object."""
        repository, team = self.make_repository(), make_team()
        repository.add(team)
        loaded = repository.get("t-1")
        assert loaded is not team
        assert (loaded.members, loaded.deadline, loaded.version, loaded.state) == (
            team.members,
            team.deadline,
            team.version,
            team.state,
        )
        assert loaded.events == ()

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound."""
        with pytest.raises(NotFound):
            self.make_repository().get("t-missing")

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first team stays."""
        repository = self.make_repository()
        repository.add(make_team(leader="alice"))
        with pytest.raises(Conflict):
            repository.add(make_team(leader="bob"))
        assert repository.get("t-1").leader_id == "alice"

    def test_changing_a_loaded_team_changes_nothing_stored_until_save(self) -> None:
        """A join on a loaded copy is invisible until saved, then stored with its version."""
        repository = self.make_repository()
        repository.add(make_team())
        loaded = repository.get("t-1")
        version = loaded.version
        loaded.join(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        assert repository.get("t-1").held_count == 0
        repository.save(loaded, version)
        assert (repository.get("t-1").held_count, repository.get("t-1").version) == (
            1,
            version + 1,
        )

    def test_save_expecting_another_version_raises_and_the_first_writer_wins(self) -> None:
        """Of two writers from one version the first save wins; the second gets a conflict."""
        repository = self.make_repository()
        repository.add(make_team())
        first, second = repository.get("t-1"), repository.get("t-1")
        first.join(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        second.join(Actor.buyer("carol"), order_id="o-carol", now=CONTRACT_TIME)
        repository.save(first, 1)
        with pytest.raises(VersionConflict):
            repository.save(second, 1)
        assert [m.buyer_id for m in repository.get("t-1").members] == ["alice", "bob"]

    def test_save_of_a_team_never_added_raises_version_conflict(self) -> None:
        """Saving a team that was never added is a conflict, not an insert."""
        with pytest.raises(VersionConflict):
            self.make_repository().save(make_team(), 1)

    def test_due_lists_forming_teams_whose_deadline_has_come_earliest_first(self) -> None:
        """Teams are due from their deadline on, earliest first, at most ``limit`` of them."""
        repository = self.make_repository()
        repository.add(make_team("t-late", hours=5))
        repository.add(make_team("t-early", hours=2))
        repository.add(make_team("t-never", hours=30))
        at = CONTRACT_TIME + timedelta(hours=5)
        assert repository.due(at) == ["t-early", "t-late"]
        assert repository.due(at, limit=1) == ["t-early"]
        assert repository.due(CONTRACT_TIME + timedelta(hours=1)) == []

    def test_due_forgets_a_team_once_it_failed(self) -> None:
        """A settled team is never due again."""
        repository = self.make_repository()
        repository.add(make_team(hours=2))
        team = repository.get("t-1")
        at = CONTRACT_TIME + timedelta(hours=3)
        team.expire(at)
        repository.save(team, 1)
        assert repository.due(at) == []

    def test_due_with_a_naive_time_raises_invalid_input(self) -> None:
        """A time without a timezone is refused."""
        with pytest.raises(InvalidInput):
            self.make_repository().due(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001

    def test_team_of_finds_the_team_of_every_member_order(self) -> None:
        """The leader's and a joiner's orders lead to their team; other orders to none."""
        repository = self.make_repository()
        repository.add(make_team())
        team = repository.get("t-1")
        team.join(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        assert repository.team_of("o-bob") is None
        repository.save(team, 1)
        assert repository.team_of("o-bob") == "t-1"
        assert repository.team_of("t-1-o-alice") == "t-1"
        assert repository.team_of("o-other") is None


# --------------------------------------------------------------------------- lucky draws


def make_draw_round(round_id: str = "r-1", *, hours: int = 24, share_count: int = 3) -> DrawRound:
    """A round of ``share_count`` shares at 1.00 CNY, opened at :data:`CONTRACT_TIME`.

    Its sell-by is ``hours`` later; its winner has two days to confirm an address.
    """
    terms = DrawTerms(
        share_count=share_count,
        share_price=Money.of("1.00", "CNY"),
        sell_by=CONTRACT_TIME + timedelta(hours=hours),
        address_window=timedelta(days=2),
    )
    return DrawRound.create(
        Actor.merchant("m-1"),
        round_id=round_id,
        merchant_id="m-1",
        prize_sku="phone",
        terms=terms,
        now=CONTRACT_TIME,
    )


def _buy(draw_round: DrawRound, buyer: str, quantity: int, at: datetime) -> None:
    order_id = f"{draw_round.id}-o-{buyer}"
    draw_round.reserve(Actor.buyer(buyer), order_id=order_id, quantity=quantity, now=at)
    draw_round.pay(
        Actor.system(),
        order_id=order_id,
        amount=draw_round.terms.share_price * quantity,
        payment_ref=f"{order_id}-tx",
        now=at,
    )


class DrawRoundRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.DrawRoundRepository`."""

    def make_repository(self) -> DrawRoundRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_round(self) -> None:
        """An added round loads back equal (purchases, counts, state, version), not the same."""
        repository, draw_round = self.make_repository(), make_draw_round()
        draw_round.reserve(Actor.buyer("bob"), order_id="o-bob", quantity=2, now=CONTRACT_TIME)
        repository.add(draw_round)
        loaded = repository.get("r-1")
        assert loaded is not draw_round
        assert (loaded.purchases, loaded.terms, loaded.state, loaded.version) == (
            draw_round.purchases,
            draw_round.terms,
            draw_round.state,
            draw_round.version,
        )
        assert (loaded.held, loaded.remaining, loaded.purchase("o-bob").quantity) == (2, 1, 2)
        assert loaded.events == ()

    def test_a_drawn_round_loads_back_with_its_record_and_still_verifies(self) -> None:
        """The stored inputs of a draw survive the round trip: anyone can recompute it."""
        repository, draw_round = self.make_repository(), make_draw_round()
        _buy(draw_round, "bob", 1, CONTRACT_TIME)
        _buy(draw_round, "carol", 2, CONTRACT_TIME + timedelta(minutes=3))
        number = PublicNumber(40113, "lottery:1", CONTRACT_TIME + timedelta(minutes=10))
        record = draw_round.draw(
            Actor.system(), number=number, now=CONTRACT_TIME + timedelta(minutes=20)
        )
        repository.add(draw_round)
        loaded = repository.get("r-1")
        assert loaded.record == record
        assert loaded.verify()
        assert loaded.holder(record.winning_number).buyer_id == record.winner_id

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound."""
        with pytest.raises(NotFound):
            self.make_repository().get("r-missing")

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first round stays."""
        repository = self.make_repository()
        repository.add(make_draw_round(share_count=3))
        with pytest.raises(Conflict):
            repository.add(make_draw_round(share_count=9))
        assert repository.get("r-1").terms.share_count == 3

    def test_changing_a_loaded_round_changes_nothing_stored_until_save(self) -> None:
        """A reservation on a loaded copy is invisible until saved, then stored with its version."""
        repository = self.make_repository()
        repository.add(make_draw_round())
        loaded = repository.get("r-1")
        version = loaded.version
        loaded.reserve(Actor.buyer("bob"), order_id="o-bob", quantity=1, now=CONTRACT_TIME)
        assert repository.get("r-1").held == 0
        repository.save(loaded, version)
        assert (repository.get("r-1").held, repository.get("r-1").version) == (1, version + 1)

    def test_save_expecting_another_version_raises_and_the_first_writer_wins(self) -> None:
        """Of two writers from one version the first save wins; the second gets a conflict."""
        repository = self.make_repository()
        repository.add(make_draw_round())
        first, second = repository.get("r-1"), repository.get("r-1")
        first.reserve(Actor.buyer("bob"), order_id="o-bob", quantity=1, now=CONTRACT_TIME)
        second.reserve(Actor.buyer("carol"), order_id="o-carol", quantity=3, now=CONTRACT_TIME)
        repository.save(first, 1)
        with pytest.raises(VersionConflict):
            repository.save(second, 1)
        assert [p.buyer_id for p in repository.get("r-1").purchases] == ["bob"]

    def test_save_of_a_round_never_added_raises_version_conflict(self) -> None:
        """Saving a round that was never added is a conflict, not an insert."""
        with pytest.raises(VersionConflict):
            self.make_repository().save(make_draw_round(), 1)

    def test_due_lists_selling_rounds_from_their_sell_by_earliest_first(self) -> None:
        """Selling rounds are due from their sell-by on, earliest first, at most ``limit``."""
        repository = self.make_repository()
        repository.add(make_draw_round("r-late", hours=5))
        repository.add(make_draw_round("r-early", hours=2))
        repository.add(make_draw_round("r-never", hours=30))
        at = CONTRACT_TIME + timedelta(hours=5)
        assert repository.due(at) == ["r-early", "r-late"]
        assert repository.due(at, limit=1) == ["r-early"]
        assert repository.due(CONTRACT_TIME + timedelta(hours=1)) == []

    def test_a_sold_out_round_is_due_until_it_is_drawn_then_at_its_address_deadline(
        self,
    ) -> None:
        """Sold out and undrawn: due from the sell-out; drawn: due again at the address due."""
        repository = self.make_repository()
        draw_round = make_draw_round()
        sold_out = CONTRACT_TIME + timedelta(minutes=5)
        _buy(draw_round, "bob", 3, sold_out)
        repository.add(draw_round)
        assert repository.due(sold_out - timedelta(seconds=1)) == []
        assert repository.due(sold_out) == ["r-1"]
        loaded = repository.get("r-1")
        drawn_at = sold_out + timedelta(hours=1)
        number = PublicNumber(7, "lottery:1", drawn_at)
        loaded.draw(Actor.system(), number=number, now=drawn_at)
        repository.save(loaded, loaded.version - 1)
        assert repository.due(drawn_at) == []
        assert repository.due(drawn_at + timedelta(days=2)) == ["r-1"]

    def test_due_forgets_a_round_once_it_went_unsold(self) -> None:
        """A settled round is never due again."""
        repository = self.make_repository()
        repository.add(make_draw_round(hours=2))
        draw_round = repository.get("r-1")
        at = CONTRACT_TIME + timedelta(hours=3)
        draw_round.expire(at)
        repository.save(draw_round, 1)
        assert repository.due(at) == []

    def test_due_with_a_naive_time_or_a_negative_limit_raises_invalid_input(self) -> None:
        """A time without a timezone, or a limit below zero, is refused."""
        with pytest.raises(InvalidInput):
            self.make_repository().due(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001
        with pytest.raises(InvalidInput):
            self.make_repository().due(CONTRACT_TIME, limit=-1)

    def test_round_of_finds_the_round_of_every_saved_share_order(self) -> None:
        """A share order leads to its round once saved, released or not; others to none."""
        repository = self.make_repository()
        repository.add(make_draw_round())
        draw_round = repository.get("r-1")
        draw_round.reserve(Actor.buyer("bob"), order_id="o-bob", quantity=1, now=CONTRACT_TIME)
        assert repository.round_of("o-bob") is None
        repository.save(draw_round, 1)
        assert repository.round_of("o-bob") == "r-1"
        draw_round = repository.get("r-1")
        draw_round.release(Actor.system(), order_id="o-bob", now=CONTRACT_TIME)
        repository.save(draw_round, 2)
        assert repository.round_of("o-bob") == "r-1"
        assert repository.round_of("o-other") is None


# --------------------------------------------------------------------------- group buys


def make_group_buy(
    campaign_id: str = "gb-1", *, hours: int = 24, cap: int | None = None
) -> GroupBuy:
    """A running group buy for ``tea``: list 10.00 CNY, 9.00 from 3 units, 8.00 from 5.

    Its window opens at :data:`CONTRACT_TIME` and ends ``hours`` later; its minimum is 3 units.
    """
    terms = GroupBuyTerms(
        list_price=Money.of("10.00", "CNY"),
        tiers=[PriceTier(3, Money.of("9.00", "CNY")), PriceTier(5, Money.of("8.00", "CNY"))],
        starts_at=CONTRACT_TIME,
        ends_at=CONTRACT_TIME + timedelta(hours=hours),
        minimum=3,
        cap=cap,
    )
    return GroupBuy.create(
        Actor.merchant("m-1"),
        campaign_id=campaign_id,
        merchant_id="m-1",
        sku="tea",
        terms=terms,
        now=CONTRACT_TIME,
    )


def _join(campaign: GroupBuy, buyer: str, quantity: int) -> None:
    campaign.join(
        Actor.buyer(buyer),
        order_id=f"o-{buyer}",
        quantity=quantity,
        paid=campaign.quote(buyer, quantity),
        payment_ref=f"tx-{buyer}",
        now=CONTRACT_TIME,
    )


class GroupBuyRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.GroupBuyRepository`."""

    def make_repository(self) -> GroupBuyRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_campaign(self) -> None:
        """An added campaign loads back equal (terms, state, version) but not the same object."""
        repository, campaign = self.make_repository(), make_group_buy()
        repository.add(campaign)
        loaded = repository.get("gb-1")
        assert loaded is not campaign
        assert (loaded.terms, loaded.state, loaded.version, loaded.participations) == (
            campaign.terms,
            campaign.state,
            campaign.version,
            campaign.participations,
        )
        assert loaded.events == ()

    def test_a_loaded_campaign_counts_and_quotes_as_the_saved_one(self) -> None:
        """What joined is kept: the level, the quote and each buyer's orders survive a reload."""
        repository = self.make_repository()
        repository.add(make_group_buy())
        campaign = repository.get("gb-1")
        _join(campaign, "alice", 2)
        _join(campaign, "bob", 2)
        repository.save(campaign, 1)
        loaded = repository.get("gb-1")
        assert loaded.level == 4
        assert loaded.quote("carol", 1) == Money.of("8.00", "CNY")
        loaded.withdraw(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        assert loaded.level == 2

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound."""
        with pytest.raises(NotFound):
            self.make_repository().get("gb-missing")

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first campaign stays."""
        repository = self.make_repository()
        repository.add(make_group_buy(hours=24))
        with pytest.raises(Conflict):
            repository.add(make_group_buy(hours=48))
        assert repository.get("gb-1").terms.ends_at == CONTRACT_TIME + timedelta(hours=24)

    def test_changing_a_loaded_campaign_changes_nothing_stored_until_save(self) -> None:
        """A join on a loaded copy is invisible until saved, then stored with its version."""
        repository = self.make_repository()
        repository.add(make_group_buy())
        loaded = repository.get("gb-1")
        version = loaded.version
        _join(loaded, "bob", 1)
        assert repository.get("gb-1").level == 0
        repository.save(loaded, version)
        stored = repository.get("gb-1")
        assert (stored.level, stored.version) == (1, version + 1)

    def test_save_expecting_another_version_raises_and_the_first_writer_wins(self) -> None:
        """Of two writers from one version the first save wins; the second gets a conflict."""
        repository = self.make_repository()
        repository.add(make_group_buy())
        first, second = repository.get("gb-1"), repository.get("gb-1")
        _join(first, "bob", 1)
        _join(second, "carol", 2)
        repository.save(first, 1)
        with pytest.raises(VersionConflict):
            repository.save(second, 1)
        assert [p.buyer_id for p in repository.get("gb-1").participations] == ["bob"]

    def test_save_of_a_campaign_never_added_raises_version_conflict(self) -> None:
        """Saving a campaign that was never added is a conflict, not an insert."""
        with pytest.raises(VersionConflict):
            self.make_repository().save(make_group_buy(), 1)

    def test_due_lists_running_campaigns_whose_window_ended_earliest_first(self) -> None:
        """Campaigns are due from the end of their window on, earliest first, up to ``limit``."""
        repository = self.make_repository()
        repository.add(make_group_buy("gb-late", hours=5))
        repository.add(make_group_buy("gb-early", hours=2))
        repository.add(make_group_buy("gb-never", hours=30))
        at = CONTRACT_TIME + timedelta(hours=5)
        assert repository.due(at) == ["gb-early", "gb-late"]
        assert repository.due(at, limit=1) == ["gb-early"]
        assert repository.due(CONTRACT_TIME + timedelta(hours=1)) == []

    def test_due_forgets_a_campaign_once_it_closed(self) -> None:
        """A campaign that succeeded or failed is never due again."""
        repository = self.make_repository()
        repository.add(make_group_buy(hours=2))
        campaign = repository.get("gb-1")
        at = CONTRACT_TIME + timedelta(hours=3)
        campaign.expire(at)
        repository.save(campaign, 1)
        assert repository.due(at) == []

    def test_due_with_a_naive_time_or_a_bad_limit_raises_invalid_input(self) -> None:
        """A time without a timezone, or a negative limit, is refused."""
        repository = self.make_repository()
        with pytest.raises(InvalidInput):
            repository.due(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001  # the naive time is the point
        with pytest.raises(InvalidInput):
            repository.due(CONTRACT_TIME, limit=-1)


def make_rebate(rebate_id: str = "rb-1", *, order_id: str = "o-1") -> Rebate:
    """A pending rebate of 4.95 CNY on 99.00 CNY paid, granted at :data:`CONTRACT_TIME`."""
    return Rebate.grant(
        Actor.system(),
        rebate_id=rebate_id,
        order_id=order_id,
        beneficiary_id="alice",
        base=Money.of("99.00", "CNY"),
        amount=Money.of("4.95", "CNY"),
        now=CONTRACT_TIME,
    )


class RebateRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.RebateRepository`."""

    def make_repository(self) -> RebateRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_rebate(self) -> None:
        """An added rebate loads back equal (amounts, state, version) but not the same object."""
        repository, rebate = self.make_repository(), make_rebate()
        repository.add(rebate)
        loaded = repository.get("rb-1")
        assert loaded is not rebate
        assert (loaded.order_id, loaded.base, loaded.amount, loaded.state, loaded.version) == (
            rebate.order_id,
            rebate.base,
            rebate.amount,
            rebate.state,
            rebate.version,
        )
        assert loaded.events == ()

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound."""
        with pytest.raises(NotFound):
            self.make_repository().get("rb-missing")

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first rebate stays."""
        repository = self.make_repository()
        repository.add(make_rebate(order_id="o-first"))
        with pytest.raises(Conflict):
            repository.add(make_rebate(order_id="o-second"))
        assert repository.get("rb-1").order_id == "o-first"

    def test_changing_a_loaded_rebate_changes_nothing_stored_until_save(self) -> None:
        """A refund on a loaded copy is invisible until saved, then stored with its version."""
        repository = self.make_repository()
        repository.add(make_rebate())
        loaded = repository.get("rb-1")
        version = loaded.version
        loaded.refund(Actor.system(), amount=Money.of("33.00", "CNY"), now=CONTRACT_TIME)
        assert repository.get("rb-1").refunded.is_zero
        repository.save(loaded, version)
        stored = repository.get("rb-1")
        assert (stored.refunded, stored.entitlement, stored.version) == (
            Money.of("33.00", "CNY"),
            Money.of("3.30", "CNY"),
            version + 1,
        )

    def test_save_expecting_another_version_raises_and_the_first_writer_wins(self) -> None:
        """Of two writers from one version the first save wins; the second gets a conflict."""
        repository = self.make_repository()
        repository.add(make_rebate())
        first, second = repository.get("rb-1"), repository.get("rb-1")
        first.void(Actor.system(), reason="cancelled", now=CONTRACT_TIME)
        second.refund(Actor.system(), amount=Money.of("1.00", "CNY"), now=CONTRACT_TIME)
        repository.save(first, 1)
        with pytest.raises(VersionConflict):
            repository.save(second, 1)
        assert repository.get("rb-1").state == "void"

    def test_save_of_a_rebate_never_added_raises_version_conflict(self) -> None:
        """Saving a rebate that was never added is a conflict, not an insert."""
        with pytest.raises(VersionConflict):
            self.make_repository().save(make_rebate(), 1)

    def test_due_lists_frozen_rebates_whose_thaw_time_has_come_earliest_first(self) -> None:
        """Rebates are due from their thaw time on, earliest first, at most ``limit``."""
        repository = self.make_repository()
        for rebate_id, days in (("rb-late", 5), ("rb-early", 2), ("rb-never", 30)):
            rebate = make_rebate(rebate_id, order_id=f"o-{rebate_id}")
            rebate.freeze(
                Actor.system(), thaw_at=CONTRACT_TIME + timedelta(days=days), now=CONTRACT_TIME
            )
            repository.add(rebate)
        repository.add(make_rebate("rb-pending", order_id="o-pending"))
        at = CONTRACT_TIME + timedelta(days=5)
        assert repository.due(at) == ["rb-early", "rb-late"]
        assert repository.due(at, limit=1) == ["rb-early"]
        assert repository.due(CONTRACT_TIME + timedelta(days=1)) == []

    def test_due_forgets_a_rebate_once_it_was_credited(self) -> None:
        """A credited rebate is never due again."""
        repository = self.make_repository()
        rebate = make_rebate()
        thaw = CONTRACT_TIME + timedelta(days=7)
        rebate.freeze(Actor.system(), thaw_at=thaw, now=CONTRACT_TIME)
        repository.add(rebate)
        loaded = repository.get("rb-1")
        loaded.expire(thaw)
        repository.save(loaded, rebate.version)
        assert repository.due(thaw) == []

    def test_due_with_a_naive_time_raises_invalid_input(self) -> None:
        """A time without a timezone is refused."""
        with pytest.raises(InvalidInput):
            self.make_repository().due(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001

    def test_for_order_lists_the_rebates_of_an_order_sorted(self) -> None:
        """Each order leads to its own rebates, sorted by id; an unknown order to none."""
        repository = self.make_repository()
        repository.add(make_rebate("o-1:rebate:2"))
        repository.add(make_rebate("o-1:rebate:1"))
        repository.add(make_rebate("o-2:rebate:1", order_id="o-2"))
        assert repository.for_order("o-1") == ["o-1:rebate:1", "o-1:rebate:2"]
        assert repository.for_order("o-2") == ["o-2:rebate:1"]
        assert repository.for_order("o-other") == []


def make_auction(auction_id: str = "a-1", *, hours: int = 2) -> Auction:
    """A running auction of one vase, opened at :data:`CONTRACT_TIME`, ending ``hours`` later."""
    terms = AuctionTerms(
        start_price=Money.of("100.00", "CNY"),
        increment=Money.of("10.00", "CNY"),
        deposit=Money.of("20.00", "CNY"),
        starts_at=CONTRACT_TIME,
        ends_at=CONTRACT_TIME + timedelta(hours=hours),
    )
    return Auction.create(
        Actor.merchant("m-1"),
        auction_id=auction_id,
        merchant_id="m-1",
        sku="vase",
        terms=terms,
        now=CONTRACT_TIME,
    )


def _with_deposit(auction: Auction, bidder: str) -> None:
    auction.hold_deposit(
        Actor.buyer(bidder),
        bidder_id=bidder,
        reference=f"dep-{bidder}",
        amount=auction.terms.deposit,
        now=CONTRACT_TIME,
    )


class AuctionRepositoryContract:
    """The behaviour of :class:`~ecommerce_core.ports.AuctionRepository`."""

    def make_repository(self) -> AuctionRepository:
        """A new, empty repository."""
        raise NotImplementedError

    def test_get_returns_an_equal_copy_of_an_added_auction(self) -> None:
        """An added auction loads back equal (terms, bids, deposits, version) but not the same."""
        repository, auction = self.make_repository(), make_auction()
        _with_deposit(auction, "bob")
        auction.bid(Actor.buyer("bob"), amount=Money.of("100.00", "CNY"), now=CONTRACT_TIME)
        auction.collect_events()
        repository.add(auction)
        loaded = repository.get("a-1")
        assert loaded is not auction
        assert (
            loaded.terms,
            loaded.bids,
            loaded.deposits,
            loaded.ends_at,
            loaded.version,
            loaded.state,
        ) == (
            auction.terms,
            auction.bids,
            auction.deposits,
            auction.ends_at,
            auction.version,
            auction.state,
        )
        assert loaded.events == ()

    def test_get_of_an_unknown_id_raises_not_found(self) -> None:
        """Loading an id that was never added raises NotFound."""
        with pytest.raises(NotFound):
            self.make_repository().get("a-missing")

    def test_adding_an_id_twice_raises_conflict_and_keeps_the_first(self) -> None:
        """A second add with a stored id raises Conflict; the first auction stays."""
        repository = self.make_repository()
        repository.add(make_auction(hours=2))
        with pytest.raises(Conflict):
            repository.add(make_auction(hours=5))
        assert repository.get("a-1").ends_at == CONTRACT_TIME + timedelta(hours=2)

    def test_changing_a_loaded_auction_changes_nothing_stored_until_save(self) -> None:
        """A deposit held on a loaded copy is invisible until saved, then stored with it."""
        repository = self.make_repository()
        repository.add(make_auction())
        loaded = repository.get("a-1")
        version = loaded.version
        _with_deposit(loaded, "bob")
        assert repository.get("a-1").deposits == []
        repository.save(loaded, version)
        stored = repository.get("a-1")
        assert ([d.bidder_id for d in stored.deposits], stored.version) == (["bob"], version + 1)

    def test_save_expecting_another_version_raises_and_the_first_writer_wins(self) -> None:
        """Of two writers from one version the first save wins; the second gets a conflict."""
        repository = self.make_repository()
        repository.add(make_auction())
        first, second = repository.get("a-1"), repository.get("a-1")
        version = first.version
        _with_deposit(first, "bob")
        _with_deposit(second, "carol")
        repository.save(first, version)
        with pytest.raises(VersionConflict):
            repository.save(second, version)
        assert [d.bidder_id for d in repository.get("a-1").deposits] == ["bob"]

    def test_save_of_an_auction_never_added_raises_version_conflict(self) -> None:
        """Saving an auction that was never added is a conflict, not an insert."""
        with pytest.raises(VersionConflict):
            self.make_repository().save(make_auction(), 1)

    def test_due_lists_auctions_whose_deadline_has_come_earliest_first(self) -> None:
        """Auctions are due from their end on, earliest first, at most ``limit`` of them."""
        repository = self.make_repository()
        repository.add(make_auction("a-late", hours=5))
        repository.add(make_auction("a-early", hours=2))
        repository.add(make_auction("a-never", hours=30))
        at = CONTRACT_TIME + timedelta(hours=5)
        assert repository.due(at) == ["a-early", "a-late"]
        assert repository.due(at, limit=1) == ["a-early"]
        assert repository.due(CONTRACT_TIME + timedelta(hours=1)) == []

    def test_due_follows_the_payment_deadline_and_forgets_a_finished_auction(self) -> None:
        """A won auction is due again at its payment deadline; an unsold one never again."""
        repository = self.make_repository()
        repository.add(make_auction("a-won"))
        repository.add(make_auction("a-unsold"))
        won = repository.get("a-won")
        version = won.version
        _with_deposit(won, "bob")
        won.bid(Actor.buyer("bob"), amount=Money.of("100.00", "CNY"), now=CONTRACT_TIME)
        end = CONTRACT_TIME + timedelta(hours=2)
        won.expire(end)
        repository.save(won, version)
        unsold = repository.get("a-unsold")
        unsold.expire(end)
        repository.save(unsold, version)
        assert repository.due(end) == []
        assert won.payment_due is not None
        assert repository.due(won.payment_due) == ["a-won"]

    def test_due_with_a_naive_time_raises_invalid_input(self) -> None:
        """A time without a timezone is refused."""
        with pytest.raises(InvalidInput):
            self.make_repository().due(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001
