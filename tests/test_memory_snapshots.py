"""The in-memory repositories store and hand out copies, field by field, never the caller's object.

They copy aggregates with a cloner generated once per class (much cheaper than
:func:`copy.copy`); these properties pin down that the copy is complete and independent, and
that unpublished events are never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import InMemoryOrderRepository, _clone, _stored
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine
from ecommerce_core.policies import OrderPolicy

NOW = datetime(2024, 11, 11, 20, 0, tzinfo=UTC)
BUYER = Actor.buyer("b-1")


def placed(order_id: str, quantity: int) -> Order:
    return Order.place(
        order_id=order_id,
        buyer_id=BUYER.id,
        merchant_id="m-1",
        lines=[OrderLine("1", "tea-01", quantity, Money(3800, "CNY"))],
        now=NOW,
        policy=OrderPolicy(),
    )


def fields(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestOrderCopies:
    @settings(max_examples=25)
    @given(st.text("abc-0123", min_size=1, max_size=8), st.integers(1, 50))
    def test_a_loaded_order_has_every_field_of_the_stored_one_but_no_events(
        self, order_id: str, quantity: int
    ) -> None:
        order = placed(order_id, quantity)
        assert order.events  # placing raised an event, which the store must not keep
        repository = InMemoryOrderRepository()
        repository.add(order)
        loaded = repository.get(order_id)
        assert loaded is not order
        assert fields(loaded) == {**fields(order), "events": ()}

    def test_changing_a_loaded_order_changes_nothing_stored_until_it_is_saved(self) -> None:
        repository = InMemoryOrderRepository()
        repository.add(placed("o-1", 2))
        loaded = repository.get("o-1")
        version = loaded.version
        loaded.pay(BUYER, amount=loaded.total, reference="t-1", now=NOW)
        assert repository.get("o-1").state == "pending_payment"
        repository.save(loaded, version)
        stored = repository.get("o-1")
        assert stored.state == loaded.state == "awaiting_shipment"
        assert stored.version == version + 1
        assert stored.events == ()
        assert loaded.events  # the caller keeps its events to publish


@attrs.define(slots=False)
class _WithDict:
    events: tuple[str, ...]
    note: str


@attrs.frozen
class _Frozen:
    events: tuple[str, ...]
    note: str


class TestCloner:
    def test_a_class_with_an_instance_dict_is_copied_through_copy_copy(self) -> None:
        source = _WithDict(("e",), "n")
        source.extra = "kept"  # type: ignore[attr-defined]  # only a __dict__ can hold it
        clone = _clone(source)
        assert clone is not source
        assert (clone.events, clone.note, clone.extra) == (("e",), "n", "kept")  # type: ignore[attr-defined]
        assert _stored(source).events == ()
        assert source.events == ("e",)

    def test_a_frozen_slotted_class_is_copied_past_its_refusing_setattr(self) -> None:
        source = _Frozen(("e",), "n")
        assert _clone(source) == source
        assert _clone(source) is not source
        assert _stored(source) == _Frozen((), "n")
