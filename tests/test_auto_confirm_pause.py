"""The auto-confirm deadline held by keyed holds (after-sales, delivery problems, refunds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import Actor, Forbidden, InvalidInput, Money, Order, OrderLine, OrderPolicy
from ecommerce_core.adapters.memory import InMemoryOrderRepository
from ecommerce_core.events import DeadlinePaused, DeadlineResumed
from ecommerce_core.orders import Deadline, PausedClock

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
SYSTEM = Actor.system()
HOUR = timedelta(hours=1)
AFTERSALES = "aftersales:as-1"
DELIVERY = "delivery:shipment-1"


def placed_order() -> Order:
    order = Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 2, Money.of("10.00", "CNY"))],
        now=NOW,
        policy=POLICY,
    )
    order.pay(Actor.buyer("alice"), amount=order.total, reference="tx", now=NOW)
    return order


def ship(order: Order, now: datetime = NOW) -> None:
    order.ship(Actor.merchant("m-1"), carrier="SF", tracking_number="SF1", now=now, policy=POLICY)


def shipped_order() -> Order:
    order = placed_order()
    ship(order)
    order.collect_events()
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestHolding:
    def test_a_hold_keeps_the_time_left_and_the_clock_never_falls_due(self):
        order = shipped_order()
        assert order.pause_clock(AFTERSALES, SYSTEM, now=NOW + HOUR)
        assert order.auto_confirm_paused
        assert order.deadline is None
        assert order.paused == PausedClock("auto_confirm", POLICY.auto_confirm_after - HOUR)
        assert order.expire(NOW + timedelta(days=365), POLICY) is None
        assert order.state == "shipped"

    def test_a_held_order_is_never_listed_as_due(self):
        repository = InMemoryOrderRepository()
        order = shipped_order()
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW)
        repository.add(order)
        assert repository.due(NOW + timedelta(days=365)) == []

    def test_a_hold_raises_the_version_and_records_its_key_and_the_time_left(self):
        order = shipped_order()
        order.pause_clock(DELIVERY, SYSTEM, now=NOW + HOUR)
        (paused,) = order.collect_events()
        assert isinstance(paused, DeadlinePaused)
        assert (paused.version, paused.hold, paused.trigger, paused.remaining) == (
            4,
            DELIVERY,
            "auto_confirm",
            POLICY.auto_confirm_after - HOUR,
        )

    def test_opening_the_same_hold_again_changes_nothing(self):
        order = shipped_order()
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW)
        before = snapshot(order)
        assert order.pause_clock(AFTERSALES, SYSTEM, now=NOW + HOUR) is False
        assert snapshot(order) == before

    def test_a_hold_opened_before_shipment_starts_the_auto_confirm_clock_held(self):
        order = placed_order()
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW)
        ship(order, NOW + HOUR)
        assert order.auto_confirm_paused
        assert order.paused == PausedClock("auto_confirm", POLICY.auto_confirm_after)

    def test_a_hold_on_a_completed_order_holds_the_after_sales_clock_not_auto_confirm(self):
        order = shipped_order()
        order.confirm_receipt(Actor.buyer("alice"), now=NOW, policy=POLICY)
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW)
        assert not order.auto_confirm_paused
        assert order.paused == PausedClock("close", POLICY.after_sales_window)

    def test_an_overdue_clock_held_fires_as_soon_as_the_hold_is_lifted(self):
        order = shipped_order()
        due = order.deadline.at
        order.pause_clock(AFTERSALES, SYSTEM, now=due + HOUR)
        assert order.paused == PausedClock("auto_confirm", timedelta(0))
        assert order.expire(due + HOUR, POLICY) is None
        order.resume_clock(AFTERSALES, SYSTEM, now=due + 2 * HOUR)
        assert order.expire(due + 2 * HOUR, POLICY) == "auto_confirm"

    @pytest.mark.parametrize(
        "actor", [Actor.buyer("alice"), Actor.merchant("m-1"), Actor.carrier("SF"), "system"]
    )
    def test_only_the_platform_or_the_system_hold_or_lift(self, actor):
        order = shipped_order()
        with pytest.raises((Forbidden, InvalidInput)):
            order.pause_clock(AFTERSALES, actor, now=NOW)
        order.pause_clock(AFTERSALES, Actor.platform(), now=NOW)
        before = snapshot(order)
        with pytest.raises((Forbidden, InvalidInput)):
            order.resume_clock(AFTERSALES, actor, now=NOW)
        assert snapshot(order) == before

    def test_an_empty_key_or_a_naive_time_is_refused(self):
        order = shipped_order()
        with pytest.raises(InvalidInput):
            order.pause_clock(" ", SYSTEM, now=NOW)
        with pytest.raises(InvalidInput):
            order.pause_clock(AFTERSALES, SYSTEM, now=NOW.replace(tzinfo=None))
        assert not order.auto_confirm_paused
        assert order.holds == ()


class TestLifting:
    def test_lifting_gives_back_exactly_the_time_that_was_left(self):
        order = shipped_order()
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW + HOUR)
        order.collect_events()
        assert order.resume_clock(AFTERSALES, SYSTEM, now=NOW + 50 * HOUR)
        expected = NOW + 50 * HOUR + POLICY.auto_confirm_after - HOUR
        assert order.deadline == Deadline(expected, "auto_confirm")
        (resumed,) = order.collect_events()
        assert isinstance(resumed, DeadlineResumed)
        assert (resumed.hold, resumed.deadline) == (AFTERSALES, expected)

    def test_lifting_a_hold_that_is_not_open_changes_nothing(self):
        order = shipped_order()
        before = snapshot(order)
        assert order.resume_clock(AFTERSALES, SYSTEM, now=NOW) is False
        assert snapshot(order) == before

    def test_holds_compose_the_clock_runs_only_when_the_last_is_lifted(self):
        order = shipped_order()
        for key in (AFTERSALES, DELIVERY, "refund:r-1"):
            order.pause_clock(key, SYSTEM, now=NOW + HOUR)
        order.resume_clock(DELIVERY, SYSTEM, now=NOW + 2 * HOUR)
        order.resume_clock("refund:r-1", SYSTEM, now=NOW + 3 * HOUR)
        assert order.auto_confirm_paused
        assert order.holds == (AFTERSALES,)
        order.resume_clock(AFTERSALES, SYSTEM, now=NOW + 4 * HOUR)
        assert order.deadline == Deadline(
            NOW + 3 * HOUR + POLICY.auto_confirm_after, "auto_confirm"
        )

    def test_a_delivery_while_held_keeps_the_clock_held(self):
        order = shipped_order()
        order.pause_clock(DELIVERY, SYSTEM, now=NOW)
        order.deliver(Actor.carrier("SF"), now=NOW + HOUR, policy=POLICY)
        assert (order.state, order.auto_confirm_paused) == ("delivered", True)

    def test_confirming_receipt_while_held_starts_the_after_sales_clock_held_in_full(self):
        order = shipped_order()
        order.pause_clock(AFTERSALES, SYSTEM, now=NOW)
        order.confirm_receipt(Actor.buyer("alice"), now=NOW + HOUR, policy=POLICY)
        assert not order.auto_confirm_paused
        assert order.paused == PausedClock("close", POLICY.after_sales_window)
        order.resume_clock(AFTERSALES, SYSTEM, now=NOW + 2 * HOUR)
        assert order.deadline == Deadline(NOW + 2 * HOUR + POLICY.after_sales_window, "close")

    @given(
        spans=st.lists(
            st.tuples(st.integers(0, 100), st.integers(0, 1000), st.booleans()),
            min_size=1,
            max_size=6,
        )
    )
    def test_receipt_is_confirmed_after_exactly_the_policys_running_time(self, spans):
        """However often it is held, by one key or two, the clock runs its time in total."""
        order = shipped_order()
        now, paused_for = NOW, timedelta(0)
        for running, pausing, two_keys in spans:
            now += timedelta(hours=running)
            if order.expire(now, POLICY) is not None:
                break
            order.pause_clock(AFTERSALES, SYSTEM, now=now)
            if two_keys:
                order.pause_clock(DELIVERY, SYSTEM, now=now + HOUR)
                order.resume_clock(AFTERSALES, SYSTEM, now=now + HOUR)
                now += HOUR
                paused_for += HOUR
            now += timedelta(hours=pausing)
            paused_for += timedelta(hours=pausing)
            order.resume_clock(DELIVERY if two_keys else AFTERSALES, SYSTEM, now=now)
        if order.state == "shipped":
            assert order.deadline.at == NOW + POLICY.auto_confirm_after + paused_for
        else:
            assert order.state == "completed"
