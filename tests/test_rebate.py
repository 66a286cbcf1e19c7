"""Rebate (返利): pending, frozen, credited; reduced, voided or clawed back by refunds."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    Money,
    TransitionNotAllowed,
)
from ecommerce_core.campaigns.rebate import (
    Rebate,
    RebateClawedBack,
    RebateRule,
    kept_amount,
    rebate_amount,
)

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
THAW = NOW + timedelta(days=17)
SYSTEM = Actor.system()


def yuan(amount: str) -> Money:
    return Money.of(amount, "CNY")


def granted(base="99.00", amount="4.95", rule=RebateRule.PROPORTIONAL) -> Rebate:
    return Rebate.grant(
        SYSTEM,
        rebate_id="rb-1",
        order_id="o-1",
        beneficiary_id="alice",
        base=yuan(base),
        amount=yuan(amount),
        now=NOW,
        rule=rule,
    )


def frozen(**kwargs) -> Rebate:
    rebate = granted(**kwargs)
    rebate.freeze(SYSTEM, thaw_at=THAW, now=NOW + timedelta(days=10))
    return rebate


def credited(**kwargs) -> Rebate:
    rebate = frozen(**kwargs)
    rebate.expire(THAW)
    return rebate


def snapshot(aggregate) -> dict[str, object]:
    # Aggregates hold immutable values, and lists or dicts of them: copying those is enough.
    return {
        f.name: copy.copy(value) if isinstance(value, (list, dict)) else value
        for f in attrs.fields(type(aggregate))
        for value in [getattr(aggregate, f.name)]
    }


def refused(aggregate, error, command):
    before = snapshot(aggregate)
    with pytest.raises(error) as caught:
        command()
    assert snapshot(aggregate) == before, "a refused command changed the rebate"
    return caught.value


class TestAmounts:
    @pytest.mark.parametrize(
        ("base", "rate", "expected"),
        [("99.00", 500, "4.95"), ("0.19", 500, "0.00"), ("10.00", 10_000, "10.00")],
    )
    def test_a_rate_based_rebate_rounds_down(self, base, rate, expected):
        assert rebate_amount(yuan(base), rate) == yuan(expected)

    @pytest.mark.parametrize(("base", "rate"), [("-1.00", 5), ("1.00", -1), ("1.00", 10_001)])
    def test_a_rate_outside_zero_to_ten_thousand_basis_points_is_refused(self, base, rate):
        with pytest.raises(InvalidInput):
            rebate_amount(yuan(base), rate)

    def test_a_refund_keeps_the_proportional_part_rounded_down(self):
        assert kept_amount(yuan("0.01"), yuan("0.02"), yuan("0.01")) == yuan("0.00")
        assert kept_amount(yuan("10.00"), yuan("30.00"), yuan("10.00")) == yuan("6.66")

    def test_refunding_more_than_the_base_is_refused(self):
        with pytest.raises(InvalidInput):
            kept_amount(yuan("1.00"), yuan("10.00"), yuan("10.01"))


class TestGranting:
    def test_a_rebate_is_pending_at_payment(self):
        rebate = granted()
        assert (rebate.state, rebate.entitlement, rebate.paid_out) == (
            "pending",
            yuan("4.95"),
            yuan("0.00"),
        )
        assert rebate.due_at is None
        (event,) = rebate.collect_events()
        assert (event.name, event.amount, event.base) == (
            "RebateGranted",
            yuan("4.95"),
            yuan("99.00"),
        )

    @pytest.mark.parametrize(
        ("actor", "base", "amount", "error"),
        [
            (Actor.buyer("alice"), yuan("1.00"), yuan("0.10"), Forbidden),
            (SYSTEM, yuan("0.00"), yuan("0.00"), InvalidInput),
            (SYSTEM, yuan("1.00"), yuan("1.01"), InvalidInput),
            (SYSTEM, yuan("1.00"), yuan("-0.01"), InvalidInput),
            (SYSTEM, yuan("1.00"), Money.of("0.10", "USD"), CurrencyMismatch),
            (SYSTEM, "1.00", yuan("0.10"), InvalidInput),
        ],
    )
    def test_bad_grants_are_refused(self, actor, base, amount, error):
        with pytest.raises(error):
            Rebate.grant(
                actor,
                rebate_id="rb-1",
                order_id="o-1",
                beneficiary_id="alice",
                base=base,
                amount=amount,
                now=NOW,
            )


class TestTheLifecycle:
    def test_a_rebate_is_frozen_at_receipt_and_credited_when_the_window_ends(self):
        rebate = frozen()
        assert (rebate.state, rebate.thaw_at, rebate.due_at) == ("frozen", THAW, THAW)
        assert rebate.expire(THAW - timedelta(seconds=1)) is None
        assert rebate.expire(THAW + timedelta(days=2)) == yuan("4.95")
        assert (rebate.state, rebate.credited, rebate.paid_out) == (
            "credited",
            yuan("4.95"),
            yuan("4.95"),
        )
        assert rebate.expire(THAW + timedelta(days=3)) is None
        credit = rebate.collect_events()[-1]
        assert (credit.name, credit.occurred_at) == ("RebateCredited", THAW)

    def test_the_freeze_cannot_end_before_it_starts(self):
        rebate = granted()
        refused(
            rebate,
            InvalidInput,
            lambda: rebate.freeze(SYSTEM, thaw_at=NOW, now=NOW + timedelta(days=1)),
        )

    def test_a_pending_rebate_is_never_credited(self):
        rebate = granted()
        assert rebate.expire(NOW + timedelta(days=365)) is None
        assert rebate.state == "pending"

    def test_freezing_twice_is_refused(self):
        rebate = frozen()
        refused(rebate, TransitionNotAllowed, lambda: rebate.freeze(SYSTEM, thaw_at=THAW, now=NOW))

    def test_only_the_system_or_platform_moves_a_rebate(self):
        rebate = frozen()
        refused(rebate, Forbidden, lambda: rebate.expire(THAW, Actor.buyer("alice")))
        refused(
            rebate, Forbidden, lambda: rebate.refund(Actor.buyer("a"), amount=yuan("1"), now=NOW)
        )


class TestRefunds:
    def test_a_refund_before_crediting_reduces_the_rebate_proportionally(self):
        rebate = frozen()
        assert rebate.refund(SYSTEM, amount=yuan("33.00"), now=NOW) == yuan("0.00")
        assert (rebate.state, rebate.entitlement) == ("frozen", yuan("3.30"))
        rebate.expire(THAW)
        assert rebate.credited == yuan("3.30")

    def test_a_refund_of_everything_before_crediting_voids_it(self):
        rebate = granted()
        rebate.refund(SYSTEM, amount=yuan("99.00"), now=NOW)
        assert (rebate.state, rebate.entitlement, rebate.is_final) == ("void", yuan("0.00"), True)
        assert rebate.collect_events()[-1].name == "RebateVoided"

    def test_under_the_void_rule_any_refund_voids_it(self):
        rebate = granted(rule=RebateRule.VOID)
        rebate.refund(SYSTEM, amount=yuan("0.01"), now=NOW)
        assert rebate.state == "void"

    def test_a_refund_after_crediting_yields_a_clawback(self):
        rebate = credited()
        clawback = rebate.refund(SYSTEM, amount=yuan("49.50"), now=THAW + timedelta(days=1))
        assert clawback == yuan("2.48")  # 4.95 - floor(4.95 * 49.50 / 99.00) = 4.95 - 2.47
        assert (rebate.state, rebate.paid_out, rebate.clawed_back) == (
            "credited",
            yuan("2.47"),
            yuan("2.48"),
        )
        event = rebate.collect_events()[-1]
        assert isinstance(event, RebateClawedBack)
        assert (event.amount, event.refunded) == (yuan("2.48"), yuan("49.50"))
        assert rebate.refund(SYSTEM, amount=yuan("49.50"), now=THAW) == yuan("2.47")
        assert (rebate.state, rebate.paid_out) == ("clawed_back", yuan("0.00"))

    def test_under_the_void_rule_a_refund_after_crediting_claws_everything_back(self):
        rebate = credited(rule=RebateRule.VOID)
        assert rebate.refund(SYSTEM, amount=yuan("1.00"), now=THAW) == yuan("4.95")
        assert rebate.state == "clawed_back"

    def test_refunds_beyond_the_base_are_refused(self):
        rebate = frozen()
        rebate.refund(SYSTEM, amount=yuan("90.00"), now=NOW)
        refused(rebate, InvalidInput, lambda: rebate.refund(SYSTEM, amount=yuan("9.01"), now=NOW))

    @pytest.mark.parametrize("amount", [yuan("0.00"), Money.of("1.00", "USD"), 1])
    def test_bad_refund_amounts_are_refused(self, amount):
        rebate = frozen()
        refused(rebate, InvalidInput, lambda: rebate.refund(SYSTEM, amount=amount, now=NOW))

    def test_a_void_rebate_takes_no_more_refunds(self):
        rebate = granted()
        rebate.void(SYSTEM, reason="team failed", now=NOW)
        refused(
            rebate, TransitionNotAllowed, lambda: rebate.refund(SYSTEM, amount=yuan("1"), now=NOW)
        )


class TestVoiding:
    def test_an_abandoned_orders_rebate_is_voided_exactly_once(self):
        rebate = frozen()
        rebate.void(SYSTEM, reason="team failed", now=NOW)
        assert rebate.state == "void"
        refused(rebate, TransitionNotAllowed, lambda: rebate.void(SYSTEM, reason="again", now=NOW))

    def test_a_credited_rebate_is_clawed_back_not_voided(self):
        rebate = credited()
        refused(rebate, TransitionNotAllowed, lambda: rebate.void(SYSTEM, reason="x", now=NOW))

    def test_a_void_needs_a_reason(self):
        rebate = granted()
        refused(rebate, InvalidInput, lambda: rebate.void(SYSTEM, reason=" ", now=NOW))


CENTS = st.integers(1, 10**7)


@settings(max_examples=150, deadline=None)
@given(
    base=CENTS,
    share=st.integers(0, 10_000),
    refunds=st.lists(st.tuples(st.integers(1, 10**7), st.integers(0, 3)), max_size=6),
    rule=st.sampled_from(list(RebateRule)),
)
def test_a_rebate_is_never_paid_on_refunded_money(base, share, refunds, rule):
    """Whatever is refunded, before or after crediting, the beneficiary keeps at most the rate
    on what the buyer kept, never a negative amount, and exactly that once credited."""
    base_money = Money(base, "CNY")
    rebate = Rebate.grant(
        SYSTEM,
        rebate_id="rb",
        order_id="o",
        beneficiary_id="b",
        base=base_money,
        amount=Money(base * share // 10_000, "CNY"),
        now=NOW,
        rule=rule,
    )
    stage = 0
    clawed = Money.zero("CNY")
    for amount, moment in refunds:
        while stage < moment:
            if stage == 0 and rebate.state == "pending":
                rebate.freeze(SYSTEM, thaw_at=THAW, now=NOW)
            elif stage == 1:
                rebate.expire(THAW)
            stage += 1
        refund = Money(min(amount, base - rebate.refunded.minor), "CNY")
        if refund.is_zero or rebate.state in ("void", "clawed_back"):
            continue
        clawed += rebate.refund(SYSTEM, amount=refund, now=NOW)
        kept = base - rebate.refunded.minor
        assert not rebate.paid_out.is_negative
        assert rebate.paid_out.minor * base <= rebate.amount.minor * kept
        assert rebate.entitlement.minor * base <= rebate.amount.minor * kept
        if rule is RebateRule.VOID:
            assert rebate.entitlement.is_zero
    assert clawed == rebate.clawed_back
    assert rebate.credited - rebate.clawed_back == rebate.paid_out
    if rebate.state == "credited":
        assert rebate.paid_out == rebate.entitlement


@settings(max_examples=100, deadline=None)
@given(base=CENTS, share=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 10**6), max_size=5))
def test_partial_refunds_reduce_a_rebate_as_one_refund_of_their_sum_would(base, share, cuts):
    amount = Money(base * share // 10_000, "CNY")
    total = min(sum(cuts), base)
    one = Rebate.grant(
        SYSTEM,
        rebate_id="1",
        order_id="o",
        beneficiary_id="b",
        base=Money(base, "CNY"),
        amount=amount,
        now=NOW,
    )
    many = Rebate.grant(
        SYSTEM,
        rebate_id="2",
        order_id="o",
        beneficiary_id="b",
        base=Money(base, "CNY"),
        amount=amount,
        now=NOW,
    )
    if total:
        one.refund(SYSTEM, amount=Money(total, "CNY"), now=NOW)
    left = total
    for cut in cuts:
        step = min(cut, left)
        if step and many.state != "void":
            many.refund(SYSTEM, amount=Money(step, "CNY"), now=NOW)
        left -= step
    assert many.entitlement == one.entitlement


# --------------------------------------------------------------------------- stateful


class RebateLifecycle(RuleBasedStateMachine):
    """Refunds, receipts, thaws and voids in any order: the money paid out stays right."""

    @initialize(
        base=st.integers(1, 100_000),
        share=st.integers(0, 10_000),
        rule=st.sampled_from([RebateRule.PROPORTIONAL, RebateRule.PROPORTIONAL, RebateRule.VOID]),
        abandoned_orders=st.booleans(),
    )
    def start(self, base, share, rule, abandoned_orders):
        self.abandoned_orders = abandoned_orders
        self.rebate = Rebate.grant(
            SYSTEM,
            rebate_id="rb",
            order_id="o",
            beneficiary_id="b",
            base=Money(base, "CNY"),
            amount=Money(base * share // 10_000, "CNY"),
            now=NOW,
            rule=rule,
        )
        self.now = NOW
        self.ledger = Money.zero("CNY")  # what the beneficiary got, net of clawbacks

    def attempt(self, command):
        before = snapshot(self.rebate)
        try:
            return command()
        except EcommerceCoreError:
            assert snapshot(self.rebate) == before, "a refused command changed the rebate"
            return None

    @rule(days=st.integers(0, 20))
    def receipt_is_confirmed(self, days):
        self.attempt(
            lambda: self.rebate.freeze(
                SYSTEM, thaw_at=self.now + timedelta(days=days), now=self.now
            )
        )

    @rule(days=st.integers(0, 10))
    def time_passes(self, days):
        self.now += timedelta(days=days)
        credit = self.rebate.expire(self.now)
        if credit is not None:
            self.ledger += credit
            assert self.rebate.expire(self.now) is None

    @rule(cents=st.one_of(st.integers(-5, 300), st.integers(0, 120_000)))
    def a_refund(self, cents):
        amount = Money(cents, "CNY")
        clawback = self.attempt(lambda: self.rebate.refund(SYSTEM, amount=amount, now=self.now))
        if clawback is not None:
            assert not clawback.is_negative
            self.ledger -= clawback

    @precondition(lambda self: self.abandoned_orders)
    @rule()
    def the_order_is_abandoned(self):
        self.attempt(lambda: self.rebate.void(SYSTEM, reason="abandoned", now=self.now))

    @invariant()
    def the_ledger_never_holds_a_rebate_on_refunded_money(self):
        r = self.rebate
        kept = r.base.minor - r.refunded.minor
        assert self.ledger == r.paid_out
        assert not r.paid_out.is_negative
        assert r.paid_out.minor * r.base.minor <= r.amount.minor * kept
        assert r.refunded <= r.base
        if r.state in ("credited", "clawed_back"):
            assert r.paid_out == r.entitlement
        else:
            assert r.paid_out.is_zero
        if r.state == "clawed_back":
            assert r.entitlement.is_zero


RebateLifecycle.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestRebateLifecycle = RebateLifecycle.TestCase
