"""Holds pause an order's running deadline and keep its remaining time; advance() fires composed
triggers; the payment method is recorded on the order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecommerce_core import (
    Actor,
    Forbidden,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    TransitionNotAllowed,
)
from ecommerce_core.actors import ActorKind
from ecommerce_core.events import DeadlinePaused, DeadlineResumed, OrderPlaced
from ecommerce_core.orders import PausedClock
from ecommerce_core.payments.cod import ORDER_COD_PROCESS
from ecommerce_core.payments.events import OrderCollected

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = OrderPolicy()
BUYER, MERCHANT, SYSTEM = Actor.buyer("alice"), Actor.merchant("m-1"), Actor.system()


def place(**kwargs) -> Order:
    return Order.place(
        order_id="o-1",
        buyer_id="alice",
        merchant_id="m-1",
        lines=[OrderLine("1", "tea", 2, Money.of("38.00", "CNY"))],
        now=NOW,
        policy=POLICY,
        **kwargs,
    )


def shipped() -> Order:
    order = place()
    order.pay(BUYER, amount=order.total, reference="tx", now=NOW)
    order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
    return order


def snapshot(order: Order) -> dict[str, object]:
    return {f.name: getattr(order, f.name) for f in attrs.fields(Order)}


class TestHolds:
    def test_a_hold_pauses_the_deadline_and_keeps_the_time_left(self):
        order = shipped()
        assert order.pause_clock("refund:r-1", SYSTEM, now=NOW + timedelta(days=4))
        assert order.deadline is None
        assert order.paused == PausedClock("auto_confirm", timedelta(days=6))
        assert order.expire(NOW + timedelta(days=100), POLICY) is None
        later = NOW + timedelta(days=30)
        assert order.resume_clock("refund:r-1", SYSTEM, now=later)
        assert order.deadline.at == later + timedelta(days=6)
        assert (order.paused, order.holds) == (None, ())
        events = order.collect_events()[-2:]
        assert isinstance(events[0], DeadlinePaused)
        assert events[0].remaining == timedelta(days=6)
        assert isinstance(events[1], DeadlineResumed)
        assert events[1].deadline == later + timedelta(days=6)

    def test_the_deadline_runs_again_only_when_the_last_hold_is_lifted(self):
        order = shipped()
        order.pause_clock("refund:r-1", SYSTEM, now=NOW)
        order.pause_clock("aftersales:a-1", SYSTEM, now=NOW + timedelta(days=1))
        order.resume_clock("refund:r-1", SYSTEM, now=NOW + timedelta(days=2))
        assert (order.deadline, order.holds) == (None, ("aftersales:a-1",))
        order.resume_clock("aftersales:a-1", SYSTEM, now=NOW + timedelta(days=3))
        assert order.deadline.at == NOW + timedelta(days=13)

    def test_opening_an_open_hold_or_lifting_a_closed_one_changes_nothing(self):
        order = shipped()
        order.pause_clock("refund:r-1", SYSTEM, now=NOW)
        before = snapshot(order)
        assert not order.pause_clock("refund:r-1", SYSTEM, now=NOW + timedelta(days=1))
        assert not order.resume_clock("refund:r-2", SYSTEM, now=NOW)
        assert snapshot(order) == before

    def test_a_state_entered_while_on_hold_starts_its_clock_paused(self):
        order = place()
        order.pay(BUYER, amount=order.total, reference="tx", now=NOW)
        order.pause_clock("aftersales:a-1", SYSTEM, now=NOW)
        assert order.paused is None  # awaiting shipment has no clock
        order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
        assert order.deadline is None
        assert order.paused == PausedClock("auto_confirm", timedelta(days=10))
        order.deliver(Actor.carrier("SF"), now=NOW, policy=POLICY)
        assert order.paused == PausedClock("auto_confirm", timedelta(days=10))
        order.confirm_receipt(BUYER, now=NOW, policy=POLICY)
        assert order.paused == PausedClock("close", timedelta(days=7))

    def test_a_hold_on_a_payment_deadline_already_passed_keeps_nothing_left(self):
        order = place()
        order.pause_clock("payment:p-1", SYSTEM, now=NOW + timedelta(hours=2))
        assert order.paused == PausedClock("expire_payment", timedelta(0))
        order.resume_clock("payment:p-1", SYSTEM, now=NOW + timedelta(hours=3))
        assert order.expire(NOW + timedelta(hours=3), POLICY) == "expire_payment"

    @pytest.mark.parametrize("actor", [BUYER, MERCHANT, Actor.carrier("SF")])
    def test_only_the_platform_or_the_system_holds_the_clock(self, actor):
        order = shipped()
        before = snapshot(order)
        with pytest.raises(Forbidden):
            order.pause_clock("refund:r-1", actor, now=NOW)
        assert snapshot(order) == before

    def test_a_final_order_cannot_be_held_and_a_hold_needs_a_key(self):
        order = place()
        order.cancel(BUYER, reason="no", now=NOW)
        with pytest.raises(TransitionNotAllowed):
            order.pause_clock("refund:r-1", SYSTEM, now=NOW)
        with pytest.raises(InvalidInput):
            shipped().pause_clock(" ", SYSTEM, now=NOW)

    @given(pauses=st.lists(st.tuples(st.integers(0, 20 * 24), st.integers(0, 20 * 24)), max_size=5))
    def test_holds_never_shorten_or_lengthen_the_time_the_clock_runs(self, pauses):
        order = shipped()
        moment, held = NOW, timedelta(0)
        for run, hold in pauses:
            moment += timedelta(hours=run)
            if order.deadline is None or moment >= order.deadline.at:
                break
            order.pause_clock("h", SYSTEM, now=moment)
            moment += timedelta(hours=hold)
            held += timedelta(hours=hold)
            order.resume_clock("h", SYSTEM, now=moment)
        else:
            assert order.deadline.at == NOW + timedelta(days=10) + held

    @given(
        steps=st.lists(
            st.tuples(st.booleans(), st.sampled_from(["a", "b", "c"]), st.integers(0, 48)),
            max_size=12,
        )
    )
    def test_each_hold_opened_or_lifted_is_one_event_numbered_after_the_last(self, steps):
        order = shipped()
        order.events = ()
        first, moment = order.version, NOW
        for opening, hold, hours in steps:
            moment += timedelta(hours=hours)
            if opening:
                order.pause_clock(hold, SYSTEM, now=moment)
            else:
                order.resume_clock(hold, SYSTEM, now=moment)
        assert [e.version for e in order.events] == list(range(first + 1, order.version + 1))

    def test_lifting_one_of_two_holds_resumes_nothing_and_says_so(self):
        order = shipped()
        order.pause_clock("a", SYSTEM, now=NOW)
        order.pause_clock("b", SYSTEM, now=NOW)
        order.resume_clock("a", SYSTEM, now=NOW + timedelta(hours=1))
        assert order.events[-1].deadline is None
        assert order.deadline is None
        order.resume_clock("b", SYSTEM, now=NOW + timedelta(hours=2))
        assert order.events[-1].deadline == order.deadline.at == NOW + timedelta(days=10, hours=2)

    def test_a_hold_on_an_order_with_no_deadline_lifts_with_nothing_to_resume(self):
        order = place()
        order.pay(BUYER, amount=order.total, reference="tx", now=NOW)  # no deadline to ship
        order.pause_clock("a", SYSTEM, now=NOW)
        assert order.resume_clock("a", SYSTEM, now=NOW + timedelta(hours=1))
        assert (order.deadline, order.paused, order.holds) == (None, None, ())
        assert order.events[-1].deadline is None


class TestAdvance:
    def test_a_composed_trigger_fires_with_its_event_and_actor_rules(self):
        order = place(process=ORDER_COD_PROCESS, payment_method="cod")
        order.ship(MERCHANT, carrier="SF", tracking_number="SF1", now=NOW, policy=POLICY)
        allowed = frozenset({ActorKind.CARRIER})
        with pytest.raises(Forbidden):
            order.advance(
                "collect", BUYER, allowed=allowed, now=NOW, policy=POLICY,
                event=OrderCollected, amount=order.total,
            )  # fmt: skip
        order.advance(
            "collect", Actor.carrier("SF"), allowed=allowed, now=NOW, policy=POLICY,
            event=OrderCollected, amount=order.total,
        )  # fmt: skip
        assert order.state == "completed"
        assert order.deadline.trigger == "close"
        event = order.collect_events()[-1]
        assert isinstance(event, OrderCollected)
        assert (event.amount, event.version) == (order.total, order.version)

    def test_a_trigger_the_process_lacks_is_refused(self):
        order = place()
        with pytest.raises(TransitionNotAllowed):
            order.advance(
                "collect", SYSTEM, allowed={ActorKind.SYSTEM}, now=NOW, policy=POLICY,
                event=OrderCollected, amount=order.total,
            )  # fmt: skip


class TestPaymentMethod:
    def test_an_order_placed_without_terms_was_sold_the_standard_way(self):
        assert place().sales_mode == "standard"

    def test_the_order_and_its_placed_event_record_the_payment_method(self):
        order = place(payment_method="escrow")
        assert order.payment_method == "escrow"
        (event,) = order.collect_events()
        assert isinstance(event, OrderPlaced)
        assert event.payment_method == "escrow"

    def test_an_empty_payment_method_is_refused(self):
        with pytest.raises(InvalidInput):
            place(payment_method="")
