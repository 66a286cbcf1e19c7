"""The buyer extends the auto-confirm deadline (延长收货): fixed extensions per policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    DefinitionError,
    Forbidden,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.events import AutoConfirmExtended
from ecommerce_core.orders import Deadline, PausedClock

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
ALICE = Actor.buyer("alice")
DAY = timedelta(days=1)


def order_in(state: str = "shipped") -> Order:
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 1, Money.of("10.00", "CNY"))],
        now=NOW,
        policy=POLICY,
    )
    if state == "pending_payment":
        return order
    order.pay(ALICE, amount=order.total, reference="tx", now=NOW)
    order.ship(Actor.merchant("m-1"), carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
    if state == "completed":
        order.confirm_receipt(ALICE, now=NOW, policy=POLICY)
    order.collect_events()
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestExtending:
    def test_the_default_policy_gives_one_extension_of_five_days(self):
        assert (POLICY.auto_confirm_extensions, POLICY.auto_confirm_extension) == (1, 5 * DAY)

    def test_an_extension_moves_the_deadline_by_its_length_and_is_recorded(self):
        order = order_in()
        order.extend_auto_confirm(ALICE, now=NOW + DAY, policy=POLICY)
        expected = NOW + POLICY.auto_confirm_after + 5 * DAY
        assert order.deadline == Deadline(expected, "auto_confirm")
        assert order.extensions == 1
        (event,) = order.collect_events()
        assert isinstance(event, AutoConfirmExtended)
        assert (event.extension, event.used, event.deadline) == (5 * DAY, 1, expected)

    def test_a_delivered_order_may_be_extended_too(self):
        order = order_in()
        order.deliver(Actor.carrier("SF"), now=NOW + DAY, policy=POLICY)
        order.extend_auto_confirm(ALICE, now=NOW + DAY, policy=POLICY)
        assert order.deadline.at == NOW + POLICY.auto_confirm_after + 5 * DAY

    def test_an_extension_while_the_clock_is_held_adds_to_the_time_it_has_left(self):
        order = order_in()
        order.pause_clock("aftersales:as-1", Actor.system(), now=NOW + DAY)
        order.extend_auto_confirm(ALICE, now=NOW + 2 * DAY, policy=POLICY)
        assert order.paused == PausedClock(
            "auto_confirm", POLICY.auto_confirm_after - DAY + 5 * DAY
        )
        assert order.collect_events()[-1].deadline is None

    def test_a_clock_held_with_an_hour_left_can_still_be_extended(self):
        order = order_in()
        held_at = order.deadline.at - timedelta(hours=1)
        order.pause_clock("aftersales:as-1", Actor.system(), now=held_at)
        order.extend_auto_confirm(ALICE, now=held_at + DAY, policy=POLICY)
        assert order.paused == PausedClock("auto_confirm", timedelta(hours=1) + 5 * DAY)

    def test_a_policy_may_allow_several_extensions(self):
        policy = OrderPolicy(auto_confirm_extensions=3, auto_confirm_extension=3 * DAY)
        order = order_in()
        for _ in range(3):
            order.extend_auto_confirm(ALICE, now=NOW, policy=policy)
        assert order.deadline.at == NOW + POLICY.auto_confirm_after + 9 * DAY

    def test_a_policy_with_negative_extensions_or_a_zero_length_is_refused(self):
        with pytest.raises(DefinitionError):
            OrderPolicy(auto_confirm_extensions=-1)
        with pytest.raises(DefinitionError):
            OrderPolicy(auto_confirm_extension=timedelta(0))


class TestRefusals:
    def test_once_the_extensions_are_used_up_it_is_refused_and_nothing_changes(self):
        order = order_in()
        order.extend_auto_confirm(ALICE, now=NOW, policy=POLICY)
        before = snapshot(order)
        with pytest.raises(RuleViolation, match="extensions are used"):
            order.extend_auto_confirm(ALICE, now=NOW, policy=POLICY)
        assert snapshot(order) == before

    def test_a_policy_without_extensions_refuses_the_first(self):
        with pytest.raises(RuleViolation):
            order_in().extend_auto_confirm(
                ALICE, now=NOW, policy=OrderPolicy(auto_confirm_extensions=0)
            )

    def test_after_the_deadline_it_is_refused_and_nothing_changes(self):
        order = order_in()
        before = snapshot(order)
        with pytest.raises(RuleViolation, match="passed"):
            order.extend_auto_confirm(ALICE, now=order.deadline.at, policy=POLICY)
        assert snapshot(order) == before

    def test_a_clock_held_after_it_fell_due_cannot_be_extended(self):
        order = order_in()
        order.pause_clock("aftersales:as-1", Actor.system(), now=order.deadline.at + DAY)
        with pytest.raises(RuleViolation, match="passed"):
            order.extend_auto_confirm(ALICE, now=NOW + 20 * DAY, policy=POLICY)

    @pytest.mark.parametrize("state", ["pending_payment", "completed"])
    def test_an_order_without_an_auto_confirm_clock_is_refused(self, state):
        order = order_in(state)
        before = snapshot(order)
        with pytest.raises(TransitionNotAllowed):
            order.extend_auto_confirm(ALICE, now=NOW, policy=POLICY)
        assert snapshot(order) == before

    @pytest.mark.parametrize(
        "actor",
        [Actor.buyer("bob"), Actor.merchant("m-1"), Actor.platform(), Actor.system(), "alice"],
    )
    def test_only_the_orders_buyer_extends_it(self, actor):
        order = order_in()
        before = snapshot(order)
        with pytest.raises((Forbidden, InvalidInput)):
            order.extend_auto_confirm(actor, now=NOW, policy=POLICY)
        assert snapshot(order) == before

    def test_a_naive_time_is_refused(self):
        with pytest.raises(InvalidInput):
            order_in().extend_auto_confirm(ALICE, now=NOW.replace(tzinfo=None), policy=POLICY)


@given(
    allowed=st.integers(0, 4),
    days=st.integers(1, 10),
    asks=st.lists(st.integers(0, 400), max_size=8),
)
def test_the_deadline_moves_by_exactly_the_extensions_granted(allowed, days, asks):
    """Whenever the buyer asks, the deadline is shipment + window + granted extensions."""
    policy = OrderPolicy(auto_confirm_extensions=allowed, auto_confirm_extension=days * DAY)
    order = order_in()
    for hours in sorted(asks):
        now = NOW + timedelta(hours=hours)
        due = order.deadline.at
        try:
            order.extend_auto_confirm(ALICE, now=now, policy=policy)
        except RuleViolation:
            assert order.extensions == allowed or now >= due
    assert order.extensions <= allowed
    assert order.deadline.at == NOW + policy.auto_confirm_after + order.extensions * days * DAY
