"""The fast paths build exactly what the plain paths build.

Placing an order, pricing a cart and rendering money take shortcuts for speed (slot setters
past the frozen ``__setattr__``, int formatting, one-int sort keys); each is checked here
against the slow, obvious way of doing the same thing.
"""

from __future__ import annotations

import itertools
import operator
from datetime import UTC, datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import _slots
from ecommerce_core.actors import Actor, ActorKind, _to_kind
from ecommerce_core.errors import InvalidInput
from ecommerce_core.events import DomainEvent, OrderPlaced
from ecommerce_core.money import CURRENCIES, MAX_MINOR_UNITS, Money, allocate_minor
from ecommerce_core.orders import Deadline, Order, OrderLine, _deadline, _order_placed, check_now
from ecommerce_core.payments.ledger import AccountKind, Movement, _to_account_kind, _to_movement
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

NOW = datetime(2024, 11, 11, 20, 0, tzinfo=UTC)
codes = st.sampled_from(sorted(CURRENCIES))
texts = st.text(min_size=1, max_size=8)


def reference_allocation(total: int, weights: list[int]) -> list[int]:
    """Largest remainder with (remainder, weight, index) tuples sorted: the obvious way."""
    whole = sum(weights)
    shares = [total * weight // whole for weight in weights]
    remainders = [total * weight % whole for weight in weights]
    ranked = sorted(
        zip(map(operator.neg, remainders), map(operator.neg, weights), itertools.count())
    )
    for _, _, index in ranked[: total - sum(shares)]:
        shares[index] += 1
    return shares


class TestSlotSetters:
    def test_an_event_built_slot_by_slot_equals_the_one_its_class_builds(self):
        fields = {
            "checkout_id": "c-1",
            "buyer_id": "b-1",
            "merchant_id": "m-1",
            "total": Money(1234, "CNY"),
            "process": "order.standard",
            "payment_method": "cod",
        }
        built = _order_placed("o-1", NOW, "buyer:b-1", *fields.values())
        expected = OrderPlaced(
            aggregate_id="o-1", version=1, occurred_at=NOW, actor="buyer:b-1", **fields
        )
        assert built == expected
        assert attrs.asdict(built, recurse=False) == attrs.asdict(expected, recurse=False)

    def test_a_deadline_built_slot_by_slot_equals_the_one_its_class_builds(self):
        assert _deadline(NOW, "expire_payment") == Deadline(NOW, "expire_payment")

    def test_values_built_slot_by_slot_stay_frozen(self):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            _deadline(NOW, "close").trigger = "other"  # type: ignore[misc]

    def test_a_name_that_is_not_a_slot_is_refused(self):
        with pytest.raises(TypeError, match="no slot 'nope'"):
            _slots.slot_setter(Deadline, "nope")

    def test_a_property_hiding_a_base_slot_is_refused(self):
        class Base:
            __slots__ = ("value",)

        class Derived(Base):
            __slots__ = ()

            @property
            def value(self) -> int:  # type: ignore[override]
                return 1

        with pytest.raises(TypeError, match="no slot 'value'"):
            _slots.slot_setter(Derived, "value")

    def test_a_slot_declared_on_a_base_class_is_found(self):
        event = _slots.new(OrderPlaced)
        _slots.slot_setter(OrderPlaced, "aggregate_id")(event, "o-9")
        assert event.aggregate_id == "o-9"


class TestPlacing:
    def test_a_placed_order_starts_its_clock_and_records_its_event_as_the_slow_path_did(self):
        policy = OrderPolicy()
        lines = (OrderLine("1", "tea-01", 2, Money(3800, "CNY")),)
        order = Order.place(
            order_id="o-1", buyer_id="b-1", merchant_id="m-1", lines=lines, now=NOW, policy=policy
        )
        assert order.deadline == Deadline(NOW + policy.payment_timeout, "expire_payment")
        assert order.paused is None
        assert order.version == 1
        (event,) = order.events
        assert event == OrderPlaced(
            aggregate_id="o-1",
            version=1,
            occurred_at=NOW,
            actor="buyer:b-1",
            checkout_id="o-1",
            buyer_id="b-1",
            merchant_id="m-1",
            total=Money(7600, "CNY"),
            process="order.standard",
            payment_method="online",
        )

    def test_an_order_whose_first_state_has_no_clock_is_placed_with_no_deadline(self):
        untimed = Process(
            ProcessDefinition(
                name="order.untimed",
                initial="open",
                states=(State("open"), State("done", final=True)),
                transitions=(Transition("finish", "open", "done"),),
            )
        )
        lines = (OrderLine("1", "tea-01", 1, Money(100, "CNY")),)
        order = Order.place(
            order_id="o-2",
            buyer_id="b-1",
            merchant_id="m-1",
            lines=lines,
            now=NOW,
            policy=OrderPolicy(),
            process=untimed,
        )
        assert order.deadline is None
        assert order.state == "open"


class TestMoneyRendering:
    @given(st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS), codes)
    def test_str_renders_the_exact_decimal_amount(self, minor, code):
        money = Money(minor, code)
        assert str(money) == f"{money.amount} {code}"


class TestAllocation:
    @given(
        st.integers(0, 10**12),
        st.lists(st.integers(0, 50) | st.integers(0, 10**9), min_size=1, max_size=30).filter(any),
    )
    def test_shares_are_those_of_the_tuple_ranking(self, total, weights):
        assert allocate_minor(total, weights) == reference_allocation(total, weights)

    def test_equal_remainders_go_to_the_larger_weight(self):
        # 5 over 1, 3, 6 (sum 10): floors 0, 1, 3; remainders 5, 5, 0; one unit left.
        assert allocate_minor(5, [1, 3, 6]) == [0, 2, 3]

    def test_equal_remainders_and_weights_go_to_the_earlier_share(self):
        assert allocate_minor(1, [1, 1]) == [1, 0]
        assert allocate_minor(1, [2, 1, 2]) == [1, 0, 0]


class TestEnumConverters:
    """Actor, Account and Posting hand enum members through without calling the enum."""

    @pytest.mark.parametrize(
        ("convert", "enum_type"),
        [(_to_kind, ActorKind), (_to_account_kind, AccountKind), (_to_movement, Movement)],
    )
    def test_members_pass_through_and_values_convert_as_the_enum_call_does(
        self, convert, enum_type
    ):
        for member in enum_type:
            assert convert(member) is member
            assert convert(member.value) is enum_type(member.value)

    @pytest.mark.parametrize(
        ("convert", "enum_type"),
        [(_to_kind, ActorKind), (_to_account_kind, AccountKind), (_to_movement, Movement)],
    )
    @given(value=st.one_of(st.text(max_size=12), st.integers(), st.none()))
    def test_anything_the_enum_refuses_is_invalid_input_naming_the_values_allowed(
        self, convert, enum_type, value
    ):
        try:
            expected: object = enum_type(value)
        except ValueError:
            with pytest.raises(InvalidInput) as refused:
                convert(value)
            assert refused.value.value == value
            assert all(repr(member.value) in str(refused.value) for member in enum_type)
        else:
            assert convert(value) is expected

    def test_an_actor_built_from_a_string_kind_equals_one_built_from_the_member(self):
        assert Actor("buyer", "b-1") == Actor(ActorKind.BUYER, "b-1")
        assert type(Actor("buyer", "b-1").kind) is ActorKind
        with pytest.raises(InvalidInput, match=r"'shopper'.*must be one of 'buyer'") as refused:
            Actor("shopper", "b-1")
        assert refused.value.field == "kind"


class TestActorLabel:
    """An actor's label is built once; events record it as ``str(actor)`` would have been."""

    @given(kind=st.sampled_from(ActorKind), actor_id=texts.filter(str.strip))
    def test_the_label_is_kind_and_id_as_formatted_by_hand(self, kind, actor_id):
        actor = Actor(kind, actor_id)
        assert actor.label == f"{kind.value}:{actor_id}" == str(actor)

    def test_an_evolved_actor_gets_its_own_label(self):
        assert attrs.evolve(Actor.buyer("b-1"), id="b-2").label == "buyer:b-2"

    def test_the_label_takes_no_part_in_equality_repr_or_construction(self):
        assert Actor.buyer("b-1") == Actor("buyer", "b-1")
        assert "label" not in repr(Actor.buyer("b-1"))
        with pytest.raises(TypeError):
            Actor(ActorKind.BUYER, "b-1", "buyer:b-1")  # type: ignore[call-arg]

    def test_an_order_event_records_the_label_of_the_actor_who_caused_it(self):
        order = Order.place(
            order_id="o-1",
            buyer_id="b-1",
            merchant_id="m-1",
            lines=[OrderLine("1", "tea", 1, Money(100, "CNY"))],
            now=NOW,
            policy=OrderPolicy(),
        )
        order.cancel(Actor.platform("cs-7"), reason="duplicate", now=NOW)
        assert order.events[-1].actor == "platform:cs-7"
        assert order.cancellation is not None
        assert order.cancellation.by == "platform:cs-7"


class TestCheckNow:
    """check_now passes an aware UTC datetime straight through; the rest take the full check."""

    @given(moment=st.datetimes(timezones=st.just(UTC)))
    def test_a_utc_datetime_is_returned_as_is(self, moment):
        assert check_now(moment) is moment

    @given(moment=st.datetimes(timezones=st.timezones()))
    def test_any_aware_datetime_passes_as_the_full_check_says(self, moment):
        assert check_now(moment) is moment

    def test_a_datetime_subclass_in_utc_takes_the_full_check_and_passes(self):
        class Stamp(datetime):
            pass

        moment = Stamp(2024, 11, 11, tzinfo=UTC)
        assert check_now(moment) is moment

    @pytest.mark.parametrize(
        "value", [NOW.replace(tzinfo=None), "2024-11-11T00:00:00+00:00", None, 0, UTC]
    )
    def test_anything_else_is_refused_with_the_same_error(self, value):
        with pytest.raises(InvalidInput, match="must be a timezone-aware datetime") as raised:
            check_now(value)
        assert raised.value.field == "now"


def _event_classes() -> list[type]:
    from ecommerce_core import events as order_events  # noqa: PLC0415  # collected for params
    from ecommerce_core.payments import events as payment_events  # noqa: PLC0415

    found = {
        value
        for module in (order_events, payment_events)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, order_events.DomainEvent)
        and value is not order_events.DomainEvent
    }
    return sorted(found, key=lambda cls: cls.__qualname__)


def _values_for(cls: type) -> dict[str, object]:
    """One value per field beyond the common four: a distinct, recognisable object each."""
    return {f.name: ("value", f.name) for f in attrs.fields(cls)[4:]}


class TestEventsBuiltSlotBySlot:
    """_slots.event builds what the event class builds, or hands the call to the class."""

    @pytest.mark.parametrize("cls", _event_classes(), ids=lambda cls: cls.__qualname__)
    def test_every_order_and_payment_event_equals_the_one_its_class_builds(self, cls):
        fields = _values_for(cls)
        built = _slots.event(cls, "o-1", 3, NOW, "buyer:b-1", fields)
        expected = cls(aggregate_id="o-1", version=3, occurred_at=NOW, actor="buyer:b-1", **fields)
        assert type(built) is cls
        assert built == expected
        assert attrs.asdict(built, recurse=False) == attrs.asdict(expected, recurse=False)

    @pytest.mark.parametrize("cls", _event_classes(), ids=lambda cls: cls.__qualname__)
    def test_a_missing_or_unknown_field_raises_what_the_class_raises(self, cls):
        fields = _values_for(cls)
        if fields:
            missing = dict(list(fields.items())[1:])
            with pytest.raises(TypeError) as slow:
                cls(aggregate_id="o-1", version=1, occurred_at=NOW, actor="a", **missing)
            with pytest.raises(TypeError) as fast:
                _slots.event(cls, "o-1", 1, NOW, "a", missing)
            assert str(fast.value) == str(slow.value)
            renamed = {**missing, "no_such_field": 1}  # as many names as fields, one unknown
            with pytest.raises(TypeError) as slow:
                cls(aggregate_id="o-1", version=1, occurred_at=NOW, actor="a", **renamed)
            with pytest.raises(TypeError) as fast:
                _slots.event(cls, "o-1", 1, NOW, "a", renamed)
            assert str(fast.value) == str(slow.value)

    def test_a_class_that_checks_its_fields_is_built_by_the_class(self):
        @attrs.frozen(kw_only=True)
        class Checked(DomainEvent):  # an event with a validated field
            amount: int = attrs.field(validator=attrs.validators.gt(0))

        assert _slots.event(Checked, "o-1", 1, NOW, "a", {"amount": 5}).amount == 5
        with pytest.raises(ValueError, match="'amount' must be > 0"):
            _slots.event(Checked, "o-1", 1, NOW, "a", {"amount": 0})

    def test_a_class_with_a_post_init_or_a_default_left_out_is_built_by_the_class(self):
        seen: list[str] = []

        @attrs.frozen(kw_only=True)
        class Hooked(DomainEvent):
            note: str = "none"

            def __attrs_post_init__(self) -> None:
                seen.append(self.note)

        assert _slots.event(Hooked, "o-1", 1, NOW, "a", {"note": "x"}).note == "x"
        assert _slots.event(Hooked, "o-1", 1, NOW, "a", {}).note == "none"
        assert seen == ["x", "none"]
