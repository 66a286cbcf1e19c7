"""The Order aggregate on its own: placing, commands, actors, deadlines, refusals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    Forbidden,
    GuardRefused,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    TransitionNotAllowed,
)
from ecommerce_core.events import (
    OrderCancelled,
    OrderClosed,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    ReceiptConfirmed,
)
from ecommerce_core.orders import split_by_merchant

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
BUYER = Actor.buyer("alice")
MERCHANT = Actor.merchant("m-1")
CNY = "CNY"


def cny(amount: str) -> Money:
    return Money.of(amount, CNY)


def line(
    sku: str = "tea", quantity: int = 2, price: str = "10.00", line_id: str = "1"
) -> OrderLine:
    return OrderLine(line_id, sku, quantity, cny(price))


def place(*lines: OrderLine, fee: Money | None = None, **kwargs: object) -> Order:
    params: dict[str, object] = {
        "order_id": "o-1",
        "buyer_id": "alice",
        "merchant_id": "m-1",
        "lines": lines or (line(),),
        "now": NOW,
        "policy": POLICY,
        "shipping_fee": fee,
    }
    params.update(kwargs)
    return Order.place(**params)  # type: ignore[arg-type]


def paid_order() -> Order:
    order = place()
    order.pay(BUYER, amount=order.total, reference="tx-1", now=NOW)
    return order


def shipped_order() -> Order:
    order = paid_order()
    order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestPlacing:
    def test_a_placed_order_awaits_payment_with_a_deadline(self):
        order = place(line(quantity=3, price="12.50"), fee=cny("6.00"))
        assert order.state == "pending_payment"
        assert order.version == 1
        assert order.total == cny("43.50")
        assert order.deadline is not None
        assert order.deadline.trigger == "expire_payment"
        assert order.deadline.at == NOW + timedelta(minutes=30)

    def test_placing_raises_one_order_placed_event(self):
        order = place()
        (event,) = order.collect_events()
        assert isinstance(event, OrderPlaced)
        assert (event.aggregate_id, event.version, event.total) == ("o-1", 1, cny("20.00"))
        assert event.actor == "buyer:alice"
        assert order.events == ()

    def test_discounts_stored_on_lines_reduce_the_total(self):
        discounted = OrderLine("1", "tea", 2, cny("10.00"), discount=cny("3.01"))
        assert place(discounted).total == cny("16.99")

    def test_an_order_without_lines_is_refused(self):
        with pytest.raises(InvalidInput, match="at least one line"):
            place(lines=())

    def test_the_same_sku_on_two_lines_is_refused(self):
        with pytest.raises(InvalidInput, match="same SKU"):
            place(line("tea", line_id="1"), line("tea", line_id="2"))

    def test_duplicate_line_ids_are_refused(self):
        with pytest.raises(InvalidInput, match="unique"):
            place(line("tea", line_id="1"), line("cup", line_id="1"))

    def test_more_units_than_the_policy_allows_are_refused(self):
        with pytest.raises(InvalidInput, match="more than 10000 units"):
            place(line(quantity=10_001))

    def test_more_lines_than_the_policy_allows_are_refused(self):
        lines = [line(f"sku-{i}", line_id=str(i)) for i in range(3)]
        with pytest.raises(InvalidInput, match="more than 2 lines"):
            place(*lines, policy=OrderPolicy(max_lines=2))

    def test_a_placed_order_is_at_version_one_as_is_its_placed_event(self):
        order = place(line())
        (event,) = order.collect_events()
        assert (order.version, event.version) == (1, 1)

    def test_the_policy_limits_themselves_are_allowed(self):
        lines = [line(f"sku-{i}", line_id=str(i)) for i in range(2)]
        assert len(place(*lines, policy=OrderPolicy(max_lines=2)).lines) == 2
        assert place(line(quantity=10_000)).lines[0].quantity == 10_000

    @pytest.mark.parametrize("quantity", [0, -1, 1.5, True, "2", None])
    def test_a_quantity_that_is_not_a_positive_whole_number_is_refused(self, quantity):
        with pytest.raises(InvalidInput) as caught:
            OrderLine("1", "tea", quantity, cny("1.00"))
        assert caught.value.field == "quantity"

    def test_lines_in_two_currencies_are_refused(self):
        with pytest.raises(CurrencyMismatch):
            place(line("tea"), OrderLine("2", "cup", 1, Money.of("1.00", "USD")))

    def test_a_shipping_fee_in_another_currency_is_refused(self):
        with pytest.raises(CurrencyMismatch):
            place(fee=Money.of("1.00", "USD"))

    def test_a_negative_shipping_fee_is_refused(self):
        with pytest.raises(InvalidInput, match="negative"):
            place(fee=cny("-1.00"))

    def test_a_negative_unit_price_is_refused(self):
        with pytest.raises(InvalidInput, match="negative"):
            OrderLine("1", "tea", 1, cny("-1.00"))

    def test_a_discount_above_the_line_amount_is_refused(self):
        with pytest.raises(InvalidInput, match="exceeds"):
            OrderLine("1", "tea", 1, cny("1.00"), discount=cny("1.01"))

    def test_a_discount_in_another_currency_is_refused(self):
        with pytest.raises(CurrencyMismatch):
            OrderLine("1", "tea", 1, cny("1.00"), discount=Money.of("0.10", "USD"))

    @pytest.mark.parametrize("bad", ["", "   ", None, 7])
    def test_an_empty_or_non_text_id_is_refused(self, bad):
        with pytest.raises(InvalidInput):
            place(order_id=bad)

    def test_a_naive_time_is_refused(self):
        with pytest.raises(InvalidInput, match="timezone-aware"):
            place(now=datetime(2026, 3, 1, 10, 0))  # noqa: DTZ001  # the bad input under test

    def test_a_cart_splits_into_one_order_per_merchant_sharing_the_checkout(self):
        orders = split_by_merchant(
            checkout_id="c-1",
            buyer_id="alice",
            lines_by_merchant={
                "m-2": [line("cup")],
                "m-1": [line("tea"), line("pot", 1, "5.00", "2")],
            },
            order_ids=["o-1", "o-2"],
            now=NOW,
            policy=POLICY,
        )
        assert [(o.id, o.merchant_id, o.checkout_id) for o in orders] == [
            ("o-1", "m-1", "c-1"),
            ("o-2", "m-2", "c-1"),
        ]
        assert [o.total for o in orders] == [cny("25.00"), cny("20.00")]

    def test_a_split_needs_an_id_per_merchant(self):
        with pytest.raises(InvalidInput, match="need 2 ids"):
            split_by_merchant(
                checkout_id="c-1",
                buyer_id="alice",
                lines_by_merchant={"m-1": [line()], "m-2": [line("cup")]},
                order_ids=["o-1"],
                now=NOW,
                policy=POLICY,
            )

    def test_an_empty_split_is_refused(self):
        with pytest.raises(InvalidInput, match="at least one line"):
            split_by_merchant(
                checkout_id="c-1",
                buyer_id="alice",
                lines_by_merchant={},
                order_ids=[],
                now=NOW,
                policy=POLICY,
            )


class TestStandardPath:
    def test_an_order_walks_from_payment_to_closed(self):
        order = place()
        order.pay(BUYER, amount=order.total, reference="tx-1", now=NOW)
        assert (order.state, order.deadline) == ("awaiting_shipment", None)
        order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
        assert order.deadline is not None
        assert order.deadline.at == NOW + timedelta(days=10)
        later = NOW + timedelta(days=2)
        order.deliver(Actor.carrier("SF"), now=later, policy=POLICY)
        assert order.deadline.at == NOW + timedelta(days=10), "delivery keeps the same clock"
        order.confirm_receipt(BUYER, now=later, policy=POLICY)
        assert order.state == "completed"
        assert order.deadline.trigger == "close"
        assert order.deadline.at == later + timedelta(days=7)
        assert order.expire(later + timedelta(days=7), POLICY) == "close"
        assert order.state == "closed"
        assert order.is_final
        assert [type(e) for e in order.collect_events()] == [
            OrderPlaced,
            OrderPaid,
            OrderShipped,
            OrderDelivered,
            ReceiptConfirmed,
            OrderClosed,
        ]
        assert order.version == 6

    def test_the_buyer_may_confirm_before_the_carrier_reports_delivery(self):
        order = shipped_order()
        order.confirm_receipt(BUYER, now=NOW, policy=POLICY)
        assert order.state == "completed"

    def test_an_unconfirmed_order_is_confirmed_automatically_at_its_deadline(self):
        order = shipped_order()
        assert order.expire(NOW + timedelta(days=10) - timedelta(seconds=1), POLICY) is None
        assert order.expire(NOW + timedelta(days=10), POLICY) == "auto_confirm"
        event = order.collect_events()[-1]
        assert isinstance(event, ReceiptConfirmed)
        assert event.automatic
        assert event.actor == "system:scheduler"

    def test_a_late_scheduler_never_lengthens_the_after_sales_window(self):
        order = shipped_order()
        very_late = NOW + timedelta(days=15)
        assert order.expire(very_late, POLICY) == "auto_confirm"
        assert order.deadline is not None
        assert order.deadline.at == NOW + timedelta(days=17)

    def test_an_unpaid_order_is_cancelled_at_its_payment_deadline(self):
        order = place()
        assert order.expire(NOW + timedelta(minutes=30), POLICY) == "expire_payment"
        assert order.state == "cancelled"
        assert order.cancellation is not None
        assert order.cancellation.reason == "payment timeout"
        event = order.collect_events()[-1]
        assert isinstance(event, OrderCancelled)
        assert not event.was_paid

    def test_expiring_is_idempotent(self):
        order = place()
        order.expire(NOW + timedelta(hours=1), POLICY)
        before = snapshot(order)
        assert order.expire(NOW + timedelta(hours=2), POLICY) is None
        assert snapshot(order) == before

    def test_a_paid_order_cancelled_by_its_merchant_records_that_it_was_paid(self):
        order = paid_order()
        order.cancel(MERCHANT, reason="out of stock in the warehouse", now=NOW)
        event = order.collect_events()[-1]
        assert isinstance(event, OrderCancelled)
        assert event.was_paid
        assert event.actor == "merchant:m-1"

    def test_allowed_commands_follow_the_state(self):
        assert place().allowed_commands() == ("cancel", "expire_payment", "pay")
        assert shipped_order().allowed_commands() == ("auto_confirm", "confirm_receipt", "deliver")


ANYONE = [
    Actor.buyer("alice"),
    Actor.buyer("mallory"),
    Actor.merchant("m-1"),
    Actor.merchant("m-2"),
    Actor.platform(),
    Actor.carrier("SF"),
    Actor.system(),
]


def attempt(order: Order, command: str, actor: Actor) -> None:
    if command == "pay":
        order.pay(actor, amount=order.total, reference="tx-9", now=NOW)
    elif command == "ship":
        order.ship(actor, carrier="SF", tracking_number="X", now=NOW, policy=POLICY)
    elif command == "deliver":
        order.deliver(actor, now=NOW, policy=POLICY)
    elif command == "confirm_receipt":
        order.confirm_receipt(actor, now=NOW, policy=POLICY)
    elif command == "cancel":
        order.cancel(actor, reason="why not", now=NOW)
    else:
        order.expire(NOW + timedelta(days=100), POLICY, actor)


class TestActors:
    @pytest.mark.parametrize(
        ("make", "command", "allowed"),
        [
            (place, "pay", {"buyer:alice", "platform:operator", "system:scheduler"}),
            (place, "cancel", {"buyer:alice", "merchant:m-1", "platform:operator"}),
            (paid_order, "ship", {"merchant:m-1"}),
            (shipped_order, "deliver", {"carrier:SF", "platform:operator", "system:scheduler"}),
            (shipped_order, "confirm_receipt", {"buyer:alice"}),
            (place, "expire", {"system:scheduler"}),
        ],
    )
    def test_only_the_right_actor_may_run_each_command(self, make, command, allowed):
        accepted = set()
        for actor in ANYONE:
            order = make()
            before = snapshot(order)
            try:
                attempt(order, command, actor)
            except Forbidden as error:
                assert error.command == command  # noqa: PT017  # one actor after another in a loop
                assert snapshot(order) == before
            else:
                accepted.add(str(actor))
        assert accepted == allowed

    def test_another_buyer_is_told_it_is_not_their_order(self):
        with pytest.raises(Forbidden, match="another buyer's order"):
            shipped_order().confirm_receipt(Actor.buyer("mallory"), now=NOW, policy=POLICY)

    def test_an_actor_that_is_not_an_actor_is_bad_input(self):
        with pytest.raises(InvalidInput):
            place().cancel("alice", reason="x", now=NOW)  # type: ignore[arg-type]


class TestRefusals:
    """A refused command changes nothing: not the state, the version, the events."""

    @given(
        command=st.sampled_from(["pay", "ship", "deliver", "confirm_receipt", "cancel"]),
        make=st.sampled_from([place, paid_order, shipped_order]),
    )
    def test_a_command_in_the_wrong_state_changes_nothing(self, command, make):
        order = make()
        actor = {"ship": MERCHANT, "deliver": Actor.carrier("SF")}.get(command, BUYER)
        if command in order.allowed_commands():
            return
        before = snapshot(order)
        with pytest.raises(TransitionNotAllowed) as caught:
            attempt(order, command, actor)
        assert caught.value.state == order.state
        assert caught.value.aggregate_id == "o-1"
        assert snapshot(order) == before

    def test_paying_less_than_the_total_is_refused_with_the_reason(self):
        order = place()
        before = snapshot(order)
        with pytest.raises(
            GuardRefused, match=r"paid 19\.99 CNY but the order total is 20\.00 CNY"
        ):
            order.pay(BUYER, amount=cny("19.99"), reference="tx", now=NOW)
        assert snapshot(order) == before

    def test_paying_in_another_currency_is_refused(self):
        order = place()
        before = snapshot(order)
        with pytest.raises(CurrencyMismatch):
            order.pay(BUYER, amount=Money.of("20.00", "USD"), reference="tx", now=NOW)
        assert snapshot(order) == before

    def test_paying_with_something_that_is_not_money_is_refused(self):
        with pytest.raises(InvalidInput):
            place().pay(BUYER, amount=20.0, reference="tx", now=NOW)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("carrier", "tracking"), [("", "X1"), ("SF", ""), ("SF", "x" * 201)])
    def test_shipping_needs_a_carrier_and_a_tracking_number(self, carrier, tracking):
        order = paid_order()
        before = snapshot(order)
        with pytest.raises(InvalidInput):
            order.ship(MERCHANT, carrier=carrier, tracking_number=tracking, now=NOW, policy=POLICY)
        assert snapshot(order) == before

    def test_cancelling_needs_a_reason(self):
        order = place()
        with pytest.raises(InvalidInput, match="reason"):
            order.cancel(BUYER, reason=" ", now=NOW)
        assert order.state == "pending_payment"

    def test_a_shipped_order_can_no_longer_be_cancelled(self):
        with pytest.raises(
            TransitionNotAllowed, match="allowed here: auto_confirm, confirm_receipt, deliver"
        ):
            shipped_order().cancel(BUYER, reason="too late", now=NOW)

    def test_a_second_confirmation_is_refused(self):
        order = shipped_order()
        order.confirm_receipt(BUYER, now=NOW, policy=POLICY)
        before = snapshot(order)
        with pytest.raises(TransitionNotAllowed):
            order.confirm_receipt(BUYER, now=NOW, policy=POLICY)
        assert snapshot(order) == before

    def test_ensure_can_raises_without_changing_anything(self):
        order = place()
        before = copy.copy(snapshot(order))
        with pytest.raises(TransitionNotAllowed):
            order.ensure_can("ship", MERCHANT)
        order.ensure_can("pay", BUYER, order.total)
        assert snapshot(order) == before
