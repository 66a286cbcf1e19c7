"""The order lifecycle's fast paths build exactly what the plain paths build.

Checkout and the four commands of every lifecycle (pay, ship, deliver, confirm_receipt) take
shortcuts: values built slot by slot (``_slots.builder``), actor, time and text checks written
inline for the usual case, orders placed by position, guarded transitions looked up rather
than raised for, a scripted provider answering a first charge in one frame, a one-SKU
reservation without its dict. Each is checked here against the slow, obvious way: the same
result, field by field, or the same error with the same message.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import _slots
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.adapters.memory import (
    InMemoryInventory,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.errors import EcommerceCoreError, InvalidInput, OutOfStock
from ecommerce_core.events import (
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ReceiptConfirmed,
)
from ecommerce_core.money import Money
from ecommerce_core.orders import (
    STANDARD_ORDER_PROCESS,
    CartItem,
    Deadline,
    Order,
    OrderLine,
    Payment,
    ShipmentInfo,
    _cart_item,
    _deadline,
    _order_line,
    _order_placed,
    _payment_covers_total,
    _plain_text,
    _text,
    check_now,
    split_by_merchant,
)
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.ports import ChargeRequest, GatewayStatus, StockItem

NOW = datetime(2024, 11, 11, 20, 0, tzinfo=UTC)
POLICY = OrderPolicy()
CNY = "CNY"

# Text the checks must tell apart: plain, blank, whitespace of every kind, too long, not str.
texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " ", "\t", "\u3000", "\x1c", "a" * 200, "a" * 201, " x "]),
    st.builds(type("Label", (str,), {"__slots__": ()}), st.text(min_size=1, max_size=3)),
    st.none(),
    st.integers(),
)
# Good values (ids pass _text: the boundary of 200 characters included) and bad ones only:
# one_off below picks one argument to be bad, the others good.
ids = st.one_of(st.sampled_from(["1", "tea-01", " x ", "a" * 200]), st.text(max_size=6))
bad_texts = st.one_of(
    st.sampled_from(["", " ", "\t", "\u3000", "\x1c \n", "a" * 201]),
    st.builds(type("Label", (str,), {"__slots__": ()}), st.sampled_from(["x", " "])),
    st.none(),
    st.integers(),
)
quantities = st.one_of(st.integers(-2, 0), st.booleans(), st.floats(0, 3), st.none())
prices = st.one_of(
    st.builds(Money, st.integers(-5, -1), st.sampled_from([CNY, "USD"])),
    st.integers(0, 5),
    st.none(),
)
moments = st.one_of(  # another zone, naive, not a datetime
    st.just(NOW.astimezone(timezone(timedelta(hours=8)))),
    st.just(NOW.replace(tzinfo=None)),
    st.just("2024-11-11"),
)


def one_off(good: dict[str, st.SearchStrategy], bad: dict[str, st.SearchStrategy]):
    """Keyword arguments all drawn from ``good``, except (mostly) one drawn from ``bad``.

    A fast path that skips one check shows only when every other argument passes: this
    makes that the common case rather than a rare one.
    """

    def build(name: str | None) -> st.SearchStrategy:
        return st.fixed_dictionaries({k: bad[k] if k == name else v for k, v in good.items()})

    return st.sampled_from([None, *bad]).flatmap(build)


def outcome(build):
    """What calling ``build`` gives: the value, or the error's type, message and fields."""
    try:
        return ("value", build())
    except (EcommerceCoreError, TypeError, AttributeError) as error:
        return ("error", type(error), str(error), vars(error))


def fields(value):
    """Every field of an attrs instance, by name (events, values and the order itself)."""
    return attrs.asdict(value, recurse=False)


class TestTextChecks:
    """_plain_text (and its inline copies) passes exactly what _text passes unchanged."""

    @given(value=texts)
    def test_plain_text_is_true_exactly_when_text_passes_the_value(self, value):
        try:
            passed = _text("field", value) is value
        except InvalidInput:
            passed = False
        assert _plain_text(value) == (passed and type(value) is str)


class TestBuilders:
    """_slots.builder builds what the class builds, or lets the class build it."""

    def test_a_plain_frozen_value_equals_the_one_its_class_builds_and_stays_frozen(self):
        build = _slots.builder(StockItem, ("line_id", "sku", "quantity"))
        built = build("1", "tea-01", 2)
        assert type(built) is StockItem
        assert fields(built) == fields(StockItem("1", "tea-01", 2))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.sku = "other"  # type: ignore[misc]

    @given(at=st.datetimes(timezones=st.just(UTC)), trigger=st.sampled_from(["a", "b c"]))
    def test_a_deadline_built_through_its_stand_in_is_the_class_s_own_and_frozen(self, at, trigger):
        built = _deadline(at, trigger)
        assert type(built) is Deadline
        assert built == Deadline(at, trigger)
        assert hash(built) == hash(Deadline(at, trigger))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            built.trigger = "other"  # type: ignore[misc]

    def test_the_placed_event_built_through_its_stand_in_equals_the_class_s(self):
        now, total = datetime(2026, 5, 20, 10, 0, tzinfo=UTC), Money(8_400, CNY)
        built = _order_placed("o-1", now, "buyer:b", "c-1", "b", "m", total, "standard", "cod")
        assert type(built) is OrderPlaced
        assert built == OrderPlaced(
            aggregate_id="o-1",
            version=1,
            occurred_at=now,
            actor="buyer:b",
            checkout_id="c-1",
            buyer_id="b",
            merchant_id="m",
            total=total,
            process="standard",
            payment_method="cod",
        )

    def test_only_a_frozen_slotted_class_has_a_stand_in(self):
        assert _slots.stand_in(Deadline) is _slots.stand_in(Deadline)  # made once
        with pytest.raises(TypeError, match="can stand in for Order"):
            _slots.stand_in(Order)  # mutable: plain stores need no twin

    def test_names_in_another_order_still_go_to_their_own_fields(self):
        build = _slots.builder(StockItem, ("quantity", "sku", "line_id"))
        assert build(2, "tea-01", "1") == StockItem("1", "tea-01", 2)

    def test_a_mutable_class_is_built_with_plain_stores_equal_to_its_constructor(self):
        names = tuple(f.name for f in attrs.fields(Order))
        order = Order.place(
            order_id="o-1",
            buyer_id="b-1",
            merchant_id="m-1",
            lines=[OrderLine("1", "tea-01", 2, Money(3800, CNY))],
            now=NOW,
            policy=POLICY,
        )
        values = [getattr(order, name) for name in names]
        built = _slots.builder(Order, names)(*values)
        assert fields(built) == fields(Order(**dict(zip(names, values, strict=True))))

    def test_the_builder_of_a_class_and_names_is_made_once(self):
        names = ("line_id", "sku", "quantity")
        assert _slots.builder(StockItem, names) is _slots.builder(StockItem, names)

    @given(sku=st.one_of(ids, bad_texts), quantity=st.one_of(st.integers(1, 3), quantities))
    def test_a_class_that_checks_its_fields_builds_and_raises_as_the_class_does(
        self, sku, quantity
    ):
        build = _slots.builder(CartItem, ("sku", "quantity"))
        fast, slow = outcome(lambda: build(sku, quantity)), outcome(lambda: CartItem(sku, quantity))
        assert fast[0] == slow[0]
        if fast[0] == "value":
            assert fields(fast[1]) == fields(slow[1])
        else:
            assert fast == slow

    def test_names_that_leave_a_field_to_its_default_are_built_by_the_class(self):
        build = _slots.builder(ChargeRequest, ("order_id", "amount", "idempotency_key"))
        built = build("o-1", Money(100, CNY), "k")
        assert fields(built) == fields(ChargeRequest("o-1", Money(100, CNY), "k"))
        with pytest.raises(TypeError) as fast:
            _slots.builder(ChargeRequest, ("order_id", "nope"))("o-1", 1)
        with pytest.raises(TypeError) as slow:
            ChargeRequest(order_id="o-1", nope=1)  # type: ignore[call-arg]
        assert str(fast.value) == str(slow.value)


class TestCheckoutValues:
    """Lines and cart items built at checkout equal, or fail as, the classes."""

    @given(
        args=one_off(
            {
                "line_id": ids,
                "sku": ids,
                "quantity": st.integers(1, 3),
                "price": st.builds(Money, st.integers(0, 5_000), st.sampled_from([CNY, "USD"])),
                "category": texts,
            },
            {"line_id": bad_texts, "sku": bad_texts, "quantity": quantities, "price": prices},
        )
    )
    def test_an_order_line_is_what_the_class_builds_or_raises(self, args):
        line_id, sku, quantity, price, category = args.values()
        fast = outcome(lambda: _order_line(line_id, sku, quantity, price, category))
        slow = outcome(lambda: OrderLine(line_id, sku, quantity, price, category=category))
        assert fast[0] == slow[0]
        if fast[0] == "value":
            assert type(fast[1]) is OrderLine
            assert fields(fast[1]) == fields(slow[1])
            assert fast[1].amount == slow[1].amount
        else:
            assert fast == slow

    @given(
        args=one_off(
            {"sku": ids, "quantity": st.integers(1, 3)}, {"sku": bad_texts, "quantity": quantities}
        )
    )
    def test_a_cart_item_is_what_the_class_builds_or_raises(self, args):
        sku, quantity = args.values()
        fast, slow = (
            outcome(lambda: _cart_item(sku, quantity)),
            outcome(lambda: CartItem(sku, quantity)),
        )
        assert fast[0] == slow[0]
        assert fast == slow if fast[0] == "error" else fields(fast[1]) == fields(slow[1])


def reference_place(order_id, buyer_id, merchant_id, lines, now, checkout_id=None):  # noqa: PLR0917  # Order.place's own arguments
    """Order.place the slow way: each check in turn, then the class with keywords."""
    check_now(now)
    for name, value in (
        ("order_id", order_id),
        ("buyer_id", buyer_id),
        ("merchant_id", merchant_id),
    ):
        _text(name, value)
    lines = tuple(lines)
    total = sum((line.amount for line in lines), Money.zero(CNY))
    checkout = order_id if checkout_id is None else _text("checkout_id", checkout_id)
    from ecommerce_core.events import OrderPlaced  # noqa: PLC0415  # only the reference needs it
    from ecommerce_core.orders import Deadline  # noqa: PLC0415

    placed = OrderPlaced(
        aggregate_id=order_id,
        version=1,
        occurred_at=now,
        actor=f"buyer:{buyer_id}",
        checkout_id=checkout,
        buyer_id=buyer_id,
        merchant_id=merchant_id,
        total=total,
        process=STANDARD_ORDER_PROCESS.name,
        payment_method="online",
    )
    return Order(
        id=order_id,
        checkout_id=checkout,
        buyer_id=buyer_id,
        merchant_id=merchant_id,
        lines=lines,
        shipping_fee=Money.zero(CNY),
        total=total,
        process=STANDARD_ORDER_PROCESS,
        state="pending_payment",
        placed_at=now,
        version=1,
        events=(placed,),
        deadline=Deadline(now + POLICY.payment_timeout, "expire_payment"),
    )


class TestPlacing:
    """Order.place and split_by_merchant (orders built by position) equal the slow way."""

    @given(
        args=one_off(
            {
                "order_id": ids,
                "buyer_id": ids,
                "merchant_id": ids,
                "checkout_id": st.one_of(st.none(), ids),
                "now": st.just(NOW),
            },
            {
                "order_id": bad_texts,
                "buyer_id": bad_texts,
                "merchant_id": bad_texts,
                "checkout_id": bad_texts,
                "now": moments,
            },
        )
    )
    def test_a_placed_order_is_what_the_checks_and_the_class_give(self, args):
        order_id, buyer_id, merchant_id, checkout_id, now = args.values()
        lines = [OrderLine("1", "tea-01", 2, Money(3800, CNY))]
        fast = outcome(
            lambda: Order.place(
                order_id=order_id,
                buyer_id=buyer_id,
                merchant_id=merchant_id,
                lines=lines,
                now=now,
                policy=POLICY,
                checkout_id=checkout_id,
            )
        )
        slow = outcome(
            lambda: reference_place(order_id, buyer_id, merchant_id, lines, now, checkout_id)
        )
        assert fast[0] == slow[0]
        if fast[0] == "value":
            assert type(fast[1]) is Order
            assert fields(fast[1]) == fields(slow[1])
        else:
            assert fast == slow

    def test_a_split_checkout_places_each_order_as_place_does(self):
        tea = OrderLine("1", "tea-01", 2, Money(3800, CNY))
        cup = OrderLine("1", "cup-01", 1, Money(2500, CNY))
        orders = split_by_merchant(
            checkout_id="c-1",
            buyer_id="b-1",
            lines_by_merchant={"m-2": [cup], "m-1": [tea]},
            order_ids=["o-1", "o-2"],
            now=NOW,
            policy=POLICY,
            shipping_fees={"m-2": Money(800, CNY)},
        )
        expected = [
            Order.place(
                order_id="o-1",
                buyer_id="b-1",
                merchant_id="m-1",
                lines=[tea],
                now=NOW,
                policy=POLICY,
                checkout_id="c-1",
            ),
            Order.place(
                order_id="o-2",
                buyer_id="b-1",
                merchant_id="m-2",
                lines=[cup],
                now=NOW,
                policy=POLICY,
                checkout_id="c-1",
                shipping_fee=Money(800, CNY),
            ),
        ]
        assert [fields(o) for o in orders] == [fields(o) for o in expected]

    def test_a_subclass_of_order_is_placed_as_its_own_class(self):
        @attrs.define(eq=False, weakref_slot=False)
        class Tagged(Order):
            tag: str = "none"

        arguments: dict[str, Any] = {
            "order_id": "o-1",
            "buyer_id": "b-1",
            "merchant_id": "m-1",
            "lines": [OrderLine("1", "tea-01", 2, Money(3800, CNY))],
            "now": NOW,
            "policy": POLICY,
        }
        order = Tagged.place(**arguments)
        assert type(order) is Tagged
        assert order.tag == "none"
        assert order.total == Money(7600, CNY)
        plain = Order.place(**arguments)  # every field of Order as the plain path sets it
        assert {f.name: getattr(order, f.name) for f in attrs.fields(Order)} == {
            f.name: getattr(plain, f.name) for f in attrs.fields(Order)
        }


# ----------------------------------------------------------------- the four commands


def reference_pay(order, actor, *, amount, reference, now):
    """Order.pay as it was written before its fast path: every check through its helper."""
    order._authorize("pay", actor)
    check_now(now)
    _text("reference", reference)
    if not isinstance(amount, Money):
        raise InvalidInput("amount", amount, "must be Money")
    if amount.currency != order.total.currency:
        from ecommerce_core.errors import CurrencyMismatch  # noqa: PLC0415

        raise CurrencyMismatch(order.currency, amount.currency, "pay")
    dest = order.process.fire(order.state, "pay", order, amount, subject_id=order.id)
    order.payment = Payment(reference, amount, now)
    order.state = dest
    order._set_timer(dest, now, None)
    order._record(OrderPaid, now, actor, amount=amount, payment_ref=reference)


def reference_ship(order, actor, *, carrier, tracking_number, now, policy):
    order._authorize("ship", actor)
    check_now(now)
    _text("carrier", carrier)
    _text("tracking_number", tracking_number)
    dest = order.process.fire(order.state, "ship", order, subject_id=order.id)
    order.shipment = ShipmentInfo(carrier, tracking_number, now)
    order.state = dest
    order._set_timer(dest, now, policy)
    order._record(OrderShipped, now, actor, carrier=carrier, tracking_number=tracking_number)


def reference_deliver(order, actor, *, now, policy):
    order._authorize("deliver", actor)
    check_now(now)
    dest = order.process.fire(order.state, "deliver", order, subject_id=order.id)
    order.state = dest
    order._set_timer(dest, now, policy)
    order._record(OrderDelivered, now, actor)


def reference_confirm(order, actor, *, now, policy):
    order._authorize("confirm_receipt", actor)
    check_now(now)
    dest = order.process.fire(order.state, "confirm_receipt", order, subject_id=order.id)
    order.state = dest
    order._set_timer(dest, now, policy)
    order._record(ReceiptConfirmed, now, actor, automatic=False)


class Staff(Actor):
    """An Actor subclass: it takes the full checks, never the inline ones."""


actors = st.one_of(
    st.sampled_from(
        [Actor.buyer("b-1"), Actor.merchant("m-1"), Actor.carrier("SF"), Actor.platform()]
    ),
    st.builds(
        Actor,
        st.sampled_from(list(ActorKind)),
        st.sampled_from(["b-1", "m-1", "SF", "b-2", "m-2"]),
    ),
    st.builds(Staff, st.sampled_from(list(ActorKind)), st.sampled_from(["b-1", "m-1"])),
    st.sampled_from(["buyer:b-1", None]),
)
amounts = st.one_of(
    st.sampled_from([Money(7600, CNY), Money(7601, CNY), Money(7600, "USD")]), st.just(7600)
)


def placed() -> Order:
    order = Order.place(
        order_id="o-1",
        buyer_id="b-1",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea-01", 2, Money(3800, CNY))],
        now=NOW,
        policy=POLICY,
    )
    order.collect_events()
    return order


def in_state(state: str) -> Order:
    """The order moved on (the plain way) to ``state``."""
    order = placed()
    buyer, merchant, carrier = Actor.buyer("b-1"), Actor.merchant("m-1"), Actor.carrier("SF")
    steps = {
        "awaiting_shipment": lambda o: reference_pay(
            o, buyer, amount=Money(7600, CNY), reference="ch-1", now=NOW
        ),
        "shipped": lambda o: reference_ship(
            o, merchant, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY
        ),
        "delivered": lambda o: reference_deliver(o, carrier, now=NOW, policy=POLICY),
        "completed": lambda o: reference_confirm(o, buyer, now=NOW, policy=POLICY),
    }
    for step in steps.values():
        if order.state == state:
            break
        step(order)
    order.collect_events()
    return order


def same_command(order: Order, fast, slow) -> None:
    """Run both on copies of ``order``: the same order after, or the same error."""
    one, two = copy.copy(order), copy.copy(order)
    got, want = outcome(lambda: fast(one)), outcome(lambda: slow(two))
    assert got[0] == want[0], (got, want)
    if got[0] == "error":
        assert got == want
        assert fields(one) == fields(order)  # a refused command changes nothing
    assert fields(one) == fields(two)


states = st.sampled_from(["pending_payment", "awaiting_shipment", "shipped", "delivered"])


class Label(str):
    """A str subclass: it takes the full text check, never the inline one."""

    __slots__ = ()


BAD_TEXTS = ["", " ", "\t", "\u3000", "\x1c \n", "a" * 201, Label("x"), Label(" "), None, 7]
BAD_TIMES = [NOW.astimezone(timezone(timedelta(hours=8))), NOW.replace(tzinfo=None), "2024"]
BAD_ACTORS = [
    Actor.buyer("b-2"),
    Actor.merchant("m-2"),
    Actor.merchant("m-1"),
    Actor.buyer("b-1"),
    Actor.carrier("SF"),
    Actor.platform(),
    Actor.system(),
    Staff("buyer", "b-1"),
    Staff("merchant", "m-1"),
    Staff("carrier", "SF"),
    "buyer:b-1",
]
# Each command: its plain version, the state it runs from, and arguments that pass.
COMMANDS = {
    "pay": (
        lambda o, a: o.pay(a["actor"], amount=a["amount"], reference=a["reference"], now=a["now"]),
        lambda o, a: reference_pay(
            o, a["actor"], amount=a["amount"], reference=a["reference"], now=a["now"]
        ),
        "pending_payment",
        {"actor": Actor.buyer("b-1"), "amount": Money(7600, CNY), "reference": "ch-1"},
    ),
    "ship": (
        lambda o, a: o.ship(
            a["actor"],
            carrier=a["carrier"],
            tracking_number=a["tracking"],
            now=a["now"],
            policy=POLICY,
        ),
        lambda o, a: reference_ship(
            o,
            a["actor"],
            carrier=a["carrier"],
            tracking_number=a["tracking"],
            now=a["now"],
            policy=POLICY,
        ),
        "awaiting_shipment",
        {"actor": Actor.merchant("m-1"), "carrier": "SF", "tracking": "SF1"},
    ),
    "deliver": (
        lambda o, a: o.deliver(a["actor"], now=a["now"], policy=POLICY),
        lambda o, a: reference_deliver(o, a["actor"], now=a["now"], policy=POLICY),
        "shipped",
        {"actor": Actor.carrier("SF")},
    ),
    "confirm_receipt": (
        lambda o, a: o.confirm_receipt(a["actor"], now=a["now"], policy=POLICY),
        lambda o, a: reference_confirm(o, a["actor"], now=a["now"], policy=POLICY),
        "delivered",
        {"actor": Actor.buyer("b-1")},
    ),
}


def one_bad_argument() -> list[tuple[str, str, object]]:
    """Every (command, argument, bad value) of the four commands: the exhaustive list."""
    cases: list[tuple[str, str, object]] = []
    for name, (_, _, _, good) in COMMANDS.items():
        for argument in [*good, "now"]:
            if argument == "actor":
                values: list[object] = BAD_ACTORS
            elif argument == "now":
                values = BAD_TIMES
            elif argument == "amount":
                values = [Money(7601, CNY), Money(7600, "USD"), 7600]
            else:
                values = BAD_TEXTS
            cases.extend((name, argument, value) for value in values)
    return cases


class TestCommandsArgumentByArgument:
    """Every argument of each command, made bad alone (the rest good): the same outcome."""

    @pytest.mark.parametrize(("command", "argument", "value"), one_bad_argument(), ids=repr)
    def test_one_bad_argument_is_refused_or_passed_exactly_as_the_plain_version(
        self, command, argument, value
    ):
        fast, slow, state, good = COMMANDS[command]
        args = {**good, "now": NOW, argument: value}
        same_command(in_state(state), lambda o: fast(o, args), lambda o: slow(o, args))

    @pytest.mark.parametrize("command", list(COMMANDS))
    @pytest.mark.parametrize("state", ["pending_payment", "awaiting_shipment", "shipped"])
    def test_good_arguments_in_any_state_move_or_refuse_as_the_plain_version(self, command, state):
        fast, slow, _, good = COMMANDS[command]
        args = {**good, "now": NOW}
        same_command(in_state(state), lambda o: fast(o, args), lambda o: slow(o, args))


class TestPlacingArgumentByArgument:
    """Every id and the time of Order.place, made bad alone: the same error as the checks."""

    @pytest.mark.parametrize(
        ("argument", "value"),
        [
            (argument, value)
            for argument in ("order_id", "buyer_id", "merchant_id", "checkout_id")
            for value in BAD_TEXTS
        ]
        + [("now", value) for value in BAD_TIMES],
        ids=repr,
    )
    def test_one_bad_argument_is_refused_or_passed_as_the_checks_and_the_class_do(
        self, argument, value
    ):
        args = {
            "order_id": "o-1",
            "buyer_id": "b-1",
            "merchant_id": "m-1",
            "checkout_id": "c-1",
            "now": NOW,
            argument: value,
        }
        lines = [OrderLine("1", "tea-01", 2, Money(3800, CNY))]
        fast = outcome(lambda: Order.place(lines=lines, policy=POLICY, **args))
        slow = outcome(
            lambda: reference_place(
                args["order_id"],
                args["buyer_id"],
                args["merchant_id"],
                lines,
                args["now"],
                args["checkout_id"],
            )
        )
        assert fast[0] == slow[0]
        assert fast == slow if fast[0] == "error" else fields(fast[1]) == fields(slow[1])


class TestCommands:
    """pay, ship, deliver and confirm_receipt do what their plain versions did, in all cases."""

    @given(
        state=states,
        args=one_off(
            {
                "actor": st.just(Actor.buyer("b-1")),
                "amount": st.just(Money(7600, CNY)),
                "reference": ids,
                "now": st.just(NOW),
            },
            {"actor": actors, "amount": amounts, "reference": bad_texts, "now": moments},
        ),
    )
    @settings(max_examples=150)
    def test_pay_changes_or_refuses_exactly_as_the_plain_version(self, state, args):
        actor, amount, reference, now = args.values()
        same_command(
            in_state(state),
            lambda o: o.pay(actor, amount=amount, reference=reference, now=now),
            lambda o: reference_pay(o, actor, amount=amount, reference=reference, now=now),
        )

    @given(
        state=states,
        args=one_off(
            {
                "actor": st.just(Actor.merchant("m-1")),
                "carrier": ids,
                "tracking": ids,
                "now": st.just(NOW),
            },
            {"actor": actors, "carrier": bad_texts, "tracking": bad_texts, "now": moments},
        ),
    )
    @settings(max_examples=150)
    def test_ship_changes_or_refuses_exactly_as_the_plain_version(self, state, args):
        actor, carrier, tracking, now = args.values()
        same_command(
            in_state(state),
            lambda o: o.ship(
                actor, carrier=carrier, tracking_number=tracking, now=now, policy=POLICY
            ),
            lambda o: reference_ship(
                o, actor, carrier=carrier, tracking_number=tracking, now=now, policy=POLICY
            ),
        )

    @given(
        state=states,
        args=one_off(
            {"actor": st.just(Actor.carrier("SF")), "now": st.just(NOW)},
            {"actor": actors, "now": moments},
        ),
    )
    def test_deliver_changes_or_refuses_exactly_as_the_plain_version(self, state, args):
        actor, now = args.values()
        same_command(
            in_state(state),
            lambda o: o.deliver(actor, now=now, policy=POLICY),
            lambda o: reference_deliver(o, actor, now=now, policy=POLICY),
        )

    @given(
        state=states,
        args=one_off(
            {"actor": st.just(Actor.buyer("b-1")), "now": st.just(NOW)},
            {"actor": actors, "now": moments},
        ),
    )
    def test_confirm_receipt_changes_or_refuses_exactly_as_the_plain_version(self, state, args):
        actor, now = args.values()
        same_command(
            in_state(state),
            lambda o: o.confirm_receipt(actor, now=now, policy=POLICY),
            lambda o: reference_confirm(o, actor, now=now, policy=POLICY),
        )

    @given(amount=amounts, total=amounts)
    def test_the_payment_guard_compares_as_money_equality_does(self, amount, total):
        order = placed()
        order.total = total  # type: ignore[assignment]  # any value: the guard's own check
        expected = None if amount == total else f"paid {amount} but the order total is {total}"
        assert _payment_covers_total(order, amount) == expected


class TestProcessLookups:
    """fire looks guarded transitions up; it answers what target answers, raising the rest."""

    @given(
        state=st.sampled_from([*STANDARD_ORDER_PROCESS.states, "nowhere"]),
        trigger=st.sampled_from(["pay", "ship", "cancel", "close", "confirm_receipt", "nope"]),
        amount=amounts,
    )
    def test_fire_returns_the_target_or_raises_when_there_is_none(self, state, trigger, amount):
        order = placed()
        expected = STANDARD_ORDER_PROCESS.target(state, trigger, order, amount)
        got = outcome(lambda: STANDARD_ORDER_PROCESS.fire(state, trigger, order, amount))
        if expected is None:
            assert got[0] == "error"
        else:
            assert got == ("value", expected)


# ----------------------------------------------------------------- adapters


class TestInventoryReservations:
    """A one-SKU reservation does what the general path does for several."""

    @given(
        stock=st.integers(0, 6),
        wanted=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 4)), max_size=6),
    )
    def test_single_item_reservations_hold_and_refuse_as_one_item_of_a_larger_one_would(
        self, stock, wanted
    ):
        fast = InMemoryInventory({"a": stock, "b": stock, "z": 1000})
        general = InMemoryInventory({"a": stock, "b": stock, "z": 1000})
        for n, (sku, quantity) in enumerate(wanted):
            one = [StockItem("1", sku, quantity)]
            padded = [*one, StockItem("2", "z", 1)]  # the same SKU plus a plentiful one
            got = outcome(lambda one=one, n=n: fast.reserve(f"r-{n}", one))
            want = outcome(lambda padded=padded, n=n: general.reserve(f"r-{n}", padded))
            assert got == want
            assert fast.available(sku) == general.available(sku)
            assert fast.reserved(sku) == general.reserved(sku)

    def test_a_short_single_item_names_the_sku_the_quantity_and_what_is_left(self):
        inventory = InMemoryInventory({"a": 2})
        with pytest.raises(OutOfStock) as raised:
            inventory.reserve("r-1", [StockItem("1", "a", 3)])
        assert str(raised.value) == str(OutOfStock("a", 3, 2))
        assert inventory.reserved("a") == 0


statuses = st.sampled_from(list(GatewayStatus))
charges = st.lists(
    st.tuples(
        st.sampled_from(["o-1", "o-2"]),
        st.sampled_from([Money(100, CNY), Money(250, CNY), Money(0, CNY)]),
        st.sampled_from(["k-1", "k-2", "k-3"]),
        st.sampled_from(["", "p-1"]),
        statuses,
    ),
    max_size=6,
)


def gateway_state(gateway: ScriptedPaymentGateway) -> object:
    return (
        dict(gateway.charged),
        {k: fields(v) for k, v in gateway._books.items()},
        dict(gateway._by_transaction),
        {k: (request, fields(result)) for k, (request, result) in gateway._answers.items()},
    )


class TestScriptedCharges:
    """ScriptedPaymentGateway.charge's one-frame path answers and books what _answer does."""

    @given(requests=charges)
    def test_every_charge_answers_and_books_as_the_general_path(self, requests):
        statuses_in_turn: list[GatewayStatus] = []
        fast = ScriptedPaymentGateway(lambda _: statuses_in_turn[-1])
        general = ScriptedPaymentGateway(lambda _: statuses_in_turn[-1])
        for order_id, amount, key, payment_id, status in requests:
            statuses_in_turn.append(status)
            request = ChargeRequest(order_id, amount, key, payment_id)
            got = outcome(lambda request=request: fast.charge(request))
            want = outcome(lambda request=request: general._answer(request, "ch", None))
            if got[0] == "value":
                assert want[0] == "value"
                assert fields(got[1]) == fields(want[1])
            else:
                assert got == want
            assert gateway_state(fast) == gateway_state(general)

    def test_the_first_charge_of_an_order_is_stored_equal_to_zero_plus_it(self):
        gateway = ScriptedPaymentGateway()
        gateway.charge(ChargeRequest("o-1", Money(100, CNY), "k-1"))
        gateway.charge(ChargeRequest("o-1", Money(50, CNY), "k-2"))
        assert gateway.charged == {"o-1": Money(150, CNY)}


class TestSequentialIds:
    def test_each_kind_counts_on_its_own_from_one(self):
        ids = SequentialIds()
        got = [ids.next_id(kind) for kind in ("order", "checkout", "order", "order")]
        assert got == ["order-1", "checkout-1", "order-2", "order-3"]


class TestOrderFields:
    def test_the_order_is_built_with_every_field_of_the_class_in_order(self):
        from ecommerce_core.orders import _ORDER_FIELDS  # noqa: PLC0415  # private, checked here

        assert tuple(f.name for f in attrs.fields(Order)) == _ORDER_FIELDS


class TestBuildersAndConstructors:
    def test_a_class_with_a_hand_written_constructor_is_built_by_it(self):
        @attrs.frozen(init=False)
        class Doubled:
            value: int

            def __init__(self, value: int) -> None:
                object.__setattr__(self, "value", value * 2)

        assert _slots.builder(Doubled, ("value",))(2).value == 4
