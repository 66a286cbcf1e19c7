"""The Order hook that pauses and resumes the auto-confirm deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import Actor, Forbidden, InvalidInput, Money, Order, OrderLine, OrderPolicy
from ecommerce_core.adapters.memory import InMemoryOrderRepository
from ecommerce_core.events import AutoConfirmPaused, AutoConfirmResumed
from ecommerce_core.orders import Deadline, PausedDeadline

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
SYSTEM = Actor.system()
HOUR = timedelta(hours=1)


def shipped_order() -> Order:
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 2, Money.of("10.00", "CNY"))],
        now=NOW,
        policy=POLICY,
    )
    order.pay(Actor.buyer("alice"), amount=order.total, reference="tx", now=NOW)
    order.ship(Actor.merchant("m-1"), carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
    order.collect_events()
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestPausing:
    def test_pausing_keeps_the_time_left_and_the_clock_never_falls_due(self):
        order = shipped_order()
        assert order.pause_auto_confirm(SYSTEM, reason="after-sales open", now=NOW + HOUR)
        assert order.auto_confirm_paused
        assert isinstance(order.deadline, PausedDeadline)
        assert order.deadline.trigger == "auto_confirm"
        assert order.deadline.remaining == POLICY.auto_confirm_after - HOUR
        assert order.expire(NOW + timedelta(days=365), POLICY) is None
        assert order.state == "shipped"

    def test_a_paused_order_is_never_listed_as_due(self):
        repository = InMemoryOrderRepository()
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="dispute", now=NOW)
        repository.add(order)
        assert repository.due(NOW + timedelta(days=365)) == []

    def test_pausing_raises_the_version_and_records_why(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="parcel delayed", now=NOW + HOUR)
        (paused,) = order.collect_events()
        assert isinstance(paused, AutoConfirmPaused)
        assert (paused.version, paused.reason, paused.remaining) == (
            4,
            "parcel delayed",
            POLICY.auto_confirm_after - HOUR,
        )

    def test_pausing_again_changes_nothing(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="one", now=NOW)
        before = snapshot(order)
        assert order.pause_auto_confirm(SYSTEM, reason="two", now=NOW + HOUR) is False
        assert snapshot(order) == before

    def test_an_order_without_a_running_auto_confirm_clock_is_not_paused(self):
        unshipped = shipped_order()
        unshipped.deadline = None
        completed = shipped_order()
        completed.confirm_receipt(Actor.buyer("alice"), now=NOW, policy=POLICY)
        for order in (unshipped, completed):
            before = snapshot(order)
            assert order.pause_auto_confirm(SYSTEM, reason="x", now=NOW) is False
            assert snapshot(order) == before

    def test_an_overdue_clock_is_not_paused_it_fired_at_its_time(self):
        order = shipped_order()
        due = order.deadline.at
        assert order.pause_auto_confirm(SYSTEM, reason="late", now=due) is False
        assert order.expire(due, POLICY) == "auto_confirm"

    @pytest.mark.parametrize(
        "actor", [Actor.buyer("alice"), Actor.merchant("m-1"), Actor.carrier("SF"), "system"]
    )
    def test_only_the_platform_or_the_system_pause_or_resume(self, actor):
        order = shipped_order()
        with pytest.raises((Forbidden, InvalidInput)):
            order.pause_auto_confirm(actor, reason="x", now=NOW)
        order.pause_auto_confirm(Actor.platform(), reason="x", now=NOW)
        before = snapshot(order)
        with pytest.raises((Forbidden, InvalidInput)):
            order.resume_auto_confirm(actor, now=NOW)
        assert snapshot(order) == before

    def test_an_empty_reason_or_a_naive_time_is_refused(self):
        order = shipped_order()
        with pytest.raises(InvalidInput):
            order.pause_auto_confirm(SYSTEM, reason=" ", now=NOW)
        with pytest.raises(InvalidInput):
            order.pause_auto_confirm(SYSTEM, reason="x", now=NOW.replace(tzinfo=None))
        assert not order.auto_confirm_paused


class TestResuming:
    def test_resuming_gives_back_exactly_the_time_that_was_left(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="x", now=NOW + HOUR)
        order.collect_events()
        assert order.resume_auto_confirm(SYSTEM, now=NOW + 50 * HOUR)
        expected = NOW + 50 * HOUR + POLICY.auto_confirm_after - HOUR
        assert order.deadline == Deadline(expected, "auto_confirm")
        (resumed,) = order.collect_events()
        assert isinstance(resumed, AutoConfirmResumed)
        assert resumed.due_at == expected

    def test_resuming_a_clock_that_is_not_paused_changes_nothing(self):
        order = shipped_order()
        before = snapshot(order)
        assert order.resume_auto_confirm(SYSTEM, now=NOW) is False
        assert snapshot(order) == before

    def test_resuming_before_the_pause_is_refused(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="x", now=NOW + HOUR)
        with pytest.raises(InvalidInput, match="before the pause"):
            order.resume_auto_confirm(SYSTEM, now=NOW)
        assert order.auto_confirm_paused

    def test_a_delivery_while_paused_keeps_the_clock_paused(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="x", now=NOW)
        order.deliver(Actor.carrier("SF"), now=NOW + HOUR, policy=POLICY)
        assert (order.state, order.auto_confirm_paused) == ("delivered", True)

    def test_confirming_receipt_while_paused_starts_the_after_sales_clock(self):
        order = shipped_order()
        order.pause_auto_confirm(SYSTEM, reason="x", now=NOW)
        order.confirm_receipt(Actor.buyer("alice"), now=NOW + HOUR, policy=POLICY)
        assert order.deadline == Deadline(NOW + HOUR + POLICY.after_sales_window, "close")
        assert not order.auto_confirm_paused

    @given(
        spans=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 1000)), min_size=1, max_size=6)
    )
    def test_receipt_is_confirmed_after_exactly_the_policys_running_time(self, spans):
        """However often it is paused, the clock runs ``auto_confirm_after`` in total."""
        order = shipped_order()
        now, paused_for = NOW, timedelta(0)
        for running, pausing in spans:
            now += timedelta(hours=running)
            if order.expire(now, POLICY) is not None:
                break
            order.pause_auto_confirm(SYSTEM, reason="x", now=now)
            now += timedelta(hours=pausing)
            paused_for += timedelta(hours=pausing)
            order.resume_auto_confirm(SYSTEM, now=now)
        if order.state == "shipped":
            assert order.deadline.at == NOW + POLICY.auto_confirm_after + paused_for
        else:
            assert order.state == "completed"
