"""The JSON codec: every order and event reads back as it was written, in readable JSON."""

from __future__ import annotations

import enum
import gc
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    STANDARD_ORDER,
    Actor,
    DefinitionError,
    EcommerceCoreError,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    Process,
)
from ecommerce_core.adapters.codec import JsonCodec, _live, event_types
from ecommerce_core.events import DomainEvent, OrderPlaced
from ecommerce_core.orders import ORDER_GUARDS
from ecommerce_core.testing.contracts import assert_same_order, make_order


class Speed(enum.Enum):
    SLOW = "slow"
    FAST = "fast"


@attrs.frozen
class Parcel:
    weight_grams: int
    declared: Money


@attrs.frozen(kw_only=True)
class CodecProbeShipped(DomainEvent):
    """An event with every kind of field the codec stores."""

    parcels: tuple[Parcel, ...]
    fees: dict[str, Money]
    labels: frozenset[str]
    window: timedelta
    rate: Decimal
    speed: Speed
    note: str | None = None
    tags: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class CodecProbeUnstorable(DomainEvent):
    payload: bytes


@attrs.frozen(kw_only=True)
class CodecProbeEitherOr(DomainEvent):
    choice: int | str


@attrs.frozen(kw_only=True)
class CodecProbePair(DomainEvent):
    pair: tuple[int, bytes]  # a fixed-length tuple is stored; bytes inside it is not


@attrs.frozen(kw_only=True)
class CodecProbeCounts(DomainEvent):
    counts: dict[int, int]


NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
POLICY = OrderPolicy()

# --------------------------------------------------------------------------- orders

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
)
CURRENCIES = st.sampled_from(["CNY", "JPY", "KWD"])


@st.composite
def lines(draw, currency):
    count = draw(st.integers(1, 3))
    found = []
    for index in range(count):
        quantity = draw(st.integers(1, 50))
        unit = draw(st.integers(0, 10**7))
        discount = draw(st.integers(0, unit * quantity))
        found.append(
            OrderLine(
                str(index + 1),
                f"sku-{index}",
                quantity,
                Money(unit, currency),
                discount=Money(discount, currency),
                category=draw(st.sampled_from(["", "tea", "茶具"])),
            )
        )
    return found


PATHS = st.sampled_from(
    [
        (),
        ("pay",),
        ("cancel",),
        ("expire",),
        ("pay", "cancel"),
        ("pay", "ship"),
        ("pay", "ship", "deliver"),
        ("pay", "ship", "confirm"),
        ("pay", "ship", "deliver", "confirm", "expire"),
        ("pay", "ship", "expire", "expire"),
    ]
)


@st.composite
def orders(draw):
    """An order in any reachable state, with times in several zones."""
    currency = draw(CURRENCIES)
    zone = draw(ZONES)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=zone) + timedelta(
        seconds=draw(st.integers(0, 10**6)), microseconds=draw(st.integers(0, 999_999))
    )
    order = Order.place(
        order_id=draw(st.text(min_size=1, max_size=20).filter(str.strip)),
        buyer_id="买家-1",
        merchant_id="m-1",
        lines=draw(lines(currency)),
        now=now,
        policy=POLICY,
        shipping_fee=Money(draw(st.integers(0, 5000)), currency),
    )
    for step in draw(PATHS):
        now += timedelta(minutes=draw(st.integers(0, 60 * 24 * 20)))
        if step == "pay":
            order.pay(Actor.buyer("买家-1"), amount=order.total, reference="txn-1", now=now)
        elif step == "cancel":
            order.cancel(Actor.buyer("买家-1"), reason="不想要了", now=now)
        elif step == "ship":
            order.ship(
                Actor.merchant("m-1"), carrier="SF", tracking_number="SF1", now=now, policy=POLICY
            )
        elif step == "deliver":
            order.deliver(Actor.carrier("SF"), now=now, policy=POLICY)
        elif step == "confirm":
            order.confirm_receipt(Actor.buyer("买家-1"), now=now, policy=POLICY)
        else:
            order.expire(now + timedelta(days=30), POLICY)
    return order


class TestOrders:
    @given(order=orders())
    def test_every_reachable_order_reads_back_the_same(self, order):
        codec = JsonCodec()
        back = codec.decode_order(codec.encode_order(order))
        assert_same_order(back, order)
        assert back.process is order.process
        assert back.events == ()
        for attribute in ("placed_at", "deadline", "payment", "shipment", "cancellation"):
            value = getattr(order, attribute)
            moment = value if isinstance(value, datetime) else None
            if moment is not None:
                assert getattr(back, attribute).utcoffset() == moment.utcoffset()

    @given(order=orders())
    def test_every_event_of_a_reachable_order_reads_back_equal(self, order):
        codec = JsonCodec()
        for event in order.events:
            name, payload = codec.encode_event(event)
            assert name == type(event).__name__
            back = codec.decode_event(name, payload)
            assert back == event
            assert type(back) is type(event)

    def test_money_is_stored_as_minor_units_and_currency(self):
        text = JsonCodec().encode_order(make_order())
        data = json.loads(text)
        assert data["total"] == {"minor": 7600, "currency": "CNY"}
        assert data["lines"][0]["unit_price"] == {"minor": 3800, "currency": "CNY"}
        assert data["process"] == "order.standard"
        assert "events" not in data

    def test_times_are_stored_as_iso_with_their_offset(self):
        order = make_order(now=datetime(2026, 1, 1, 17, 0, tzinfo=timezone(timedelta(hours=8))))
        data = json.loads(JsonCodec().encode_order(order))
        assert data["placed_at"] == "2026-01-01T17:00:00+08:00"
        assert data["deadline"] == {"at": "2026-01-01T17:30:00+08:00", "trigger": "expire_payment"}

    def test_a_zoneinfo_time_comes_back_as_the_same_instant_with_a_fixed_offset(self):
        shanghai = datetime(2026, 1, 1, 17, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        codec = JsonCodec()
        back = codec.decode_order(codec.encode_order(make_order(now=shanghai)))
        assert back.placed_at == shanghai
        assert back.placed_at.utcoffset() == timedelta(hours=8)

    def test_chinese_text_is_kept_readable(self):
        order = make_order()
        order.cancel(Actor.buyer("b-1"), reason="不想要了", now=NOW)
        assert "不想要了" in JsonCodec().encode_order(order)

    def test_a_field_missing_from_an_older_row_reads_back_as_its_default(self):
        codec = JsonCodec()
        data = json.loads(codec.encode_order(make_order()))
        del data["shipment"], data["cancellation"]
        back = codec.decode_order(json.dumps(data))
        assert (back.shipment, back.cancellation) == (None, None)

    def test_an_order_of_an_unknown_process_names_it_and_the_known_ones(self):
        text = JsonCodec().encode_order(make_order())
        with pytest.raises(DefinitionError) as caught:
            JsonCodec(processes={}).decode_order(text)
        assert "'order.standard'" in str(caught.value)

    def test_a_host_process_is_resolved_through_the_mapping_given(self):
        custom = Process(STANDARD_ORDER.extend("order.host"), ORDER_GUARDS)
        order = Order.place(
            order_id="o-1",
            buyer_id="b-1",
            merchant_id="m-1",
            lines=[OrderLine("1", "tea-01", 1, Money.of("38.00", "CNY"))],
            now=NOW,
            policy=POLICY,
            process=custom,
        )
        codec = JsonCodec(processes={"order.host": custom})
        assert codec.decode_order(codec.encode_order(order)).process is custom


# --------------------------------------------------------------------------- events


class TestEvents:
    def test_the_registry_holds_every_standard_event(self):
        names = set(event_types())
        assert {
            "OrderPlaced",
            "OrderPaid",
            "OrderShipped",
            "OrderDelivered",
            "ReceiptConfirmed",
            "OrderClosed",
            "OrderCancelled",
        } <= names
        assert "DomainEvent" not in names

    def test_an_event_class_defined_outside_the_library_is_found_and_round_trips(self):
        event = CodecProbeShipped(
            aggregate_id="o-1",
            version=3,
            occurred_at=NOW,
            actor="merchant:m-1",
            parcels=(Parcel(500, Money.of("10.00", "CNY")), Parcel(20, Money(1, "JPY"))),
            fees={"packing": Money.of("1.50", "CNY")},
            labels=frozenset({"fragile", "易碎"}),
            window=timedelta(days=7, microseconds=5),
            rate=Decimal("0.0125"),
            speed=Speed.FAST,
            note=None,
            tags=["a", "b"],
        )
        codec = JsonCodec()
        name, payload = codec.encode_event(event)
        data = json.loads(payload)
        assert data["speed"] == "fast"
        assert data["rate"] == "0.0125"
        assert data["window"] == (7 * 86_400 * 10**6) + 5
        assert codec.decode_event(name, payload) == event

    def test_an_event_class_defined_after_the_codec_is_found_on_first_use(self):
        codec = JsonCodec(events=None)
        assert "CodecProbeShipped" in codec._events
        codec._events.pop("CodecProbeShipped")
        event = CodecProbeShipped(
            aggregate_id="o-1",
            version=1,
            occurred_at=NOW,
            actor="system:x",
            parcels=(),
            fees={},
            labels=frozenset(),
            window=timedelta(0),
            rate=Decimal(1),
            speed=Speed.SLOW,
        )
        name, payload = codec.encode_event(event)
        codec._events.pop("CodecProbeShipped")
        assert codec.decode_event(name, payload) == event

    def test_a_fixed_list_of_events_refuses_the_others(self):
        codec = JsonCodec(events=[OrderPlaced])
        paid_order = make_order()
        paid_order.pay(Actor.buyer("b-1"), amount=paid_order.total, reference="t", now=NOW)
        placed, paid = paid_order.events
        name, payload = codec.encode_event(placed)
        assert codec.decode_event(name, payload) == placed
        with pytest.raises(DefinitionError):
            codec.encode_event(paid)
        with pytest.raises(DefinitionError) as caught:
            codec.decode_event("OrderPaid", "{}")
        assert "import the module" in str(caught.value)

    def test_an_unknown_event_name_is_refused_with_advice(self):
        with pytest.raises(DefinitionError) as caught:
            JsonCodec().decode_event("NoSuchEvent", "{}")
        assert "'NoSuchEvent'" in str(caught.value)

    @pytest.mark.parametrize(
        ("event", "problem"),
        [
            (
                CodecProbeUnstorable(
                    aggregate_id="o", version=1, occurred_at=NOW, actor="x", payload=b""
                ),
                "CodecProbeUnstorable.payload: type bytes cannot be stored as JSON",
            ),
            (
                CodecProbeEitherOr(
                    aggregate_id="o", version=1, occurred_at=NOW, actor="x", choice=1
                ),
                "CodecProbeEitherOr.choice: the union int | str cannot",
            ),
            (
                CodecProbePair(
                    aggregate_id="o", version=1, occurred_at=NOW, actor="x", pair=(1, b"")
                ),
                "CodecProbePair.pair: type bytes cannot",
            ),
            (
                CodecProbeCounts(
                    aggregate_id="o", version=1, occurred_at=NOW, actor="x", counts={}
                ),
                "CodecProbeCounts.counts: type dict[int, int] cannot",
            ),
        ],
    )
    def test_a_field_of_a_type_the_codec_cannot_store_is_refused_by_name(self, event, problem):
        with pytest.raises(DefinitionError) as caught:
            JsonCodec().encode_event(event)
        assert problem in str(caught.value)

    def test_a_naive_time_is_refused(self):
        event = OrderPlaced(
            aggregate_id="o-1",
            version=1,
            occurred_at=NOW.replace(tzinfo=None),
            actor="buyer:b-1",
            checkout_id="o-1",
            buyer_id="b-1",
            merchant_id="m-1",
            total=Money(1, "CNY"),
            process="order.standard",
        )
        with pytest.raises(InvalidInput):
            JsonCodec().encode_event(event)


def _twin():
    @attrs.frozen(kw_only=True)
    class Twin(DomainEvent):
        pass

    return Twin


class TestTheRegistry:
    def test_two_event_classes_of_one_name_are_a_definition_error(self):
        def clash():
            twins = (_twin(), _twin())
            try:
                event_types()
            finally:
                del twins

        with pytest.raises(DefinitionError) as caught:
            clash()
        message = str(caught.value)
        del caught
        gc.collect()
        assert "are both named 'Twin'" in message
        assert "Twin" not in event_types()  # nothing left behind for other tests

    def test_a_class_attrs_replaced_by_a_slotted_one_is_not_a_clash(self):
        twin = _twin()  # the pre-slots original may linger until collected
        try:
            assert event_types()["Twin"] is twin
        finally:
            del twin
            gc.collect()

    def test_of_two_classes_of_one_name_the_one_its_module_holds_is_used(self):
        held, stale = type("Held", (), {}), type("Held", (), {})
        for cls in (held, stale):
            cls.__module__, cls.__qualname__ = __name__, "CodecProbeHeld"
        globals()["CodecProbeHeld"] = held
        try:
            assert _live(held, stale) is held
            assert _live(stale, held) is held
        finally:
            del globals()["CodecProbeHeld"]

    def test_two_unrelated_classes_of_one_name_are_never_merged(self):
        one, other = type("Same", (), {}), type("Same", (), {})
        other.__module__ = "somewhere.else"
        assert _live(one, other) is None
        assert _live(one, type("Same", (), {})) is None  # same place, neither slotted nor held

    def test_the_codec_errors_are_library_errors(self):
        with pytest.raises(EcommerceCoreError):
            JsonCodec(processes={}).decode_order(JsonCodec().encode_order(make_order()))
