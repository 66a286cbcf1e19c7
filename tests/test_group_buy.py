"""Group buying (团购): tiers, window, minimum, cap, deposits, settlement and failure."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecommerce_core import (
    Actor,
    CurrencyMismatch,
    DeadlinePassed,
    DefinitionError,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    Money,
    NotFound,
    OutOfStock,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.campaigns.group_buy import (
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GROUP_BUY_ORDER_PROCESS,
    GroupBuy,
    GroupBuyPayment,
    GroupBuyTerms,
    PriceTier,
    TierMeasure,
)
from ecommerce_core.releases import ReleaseKind

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
END = NOW + timedelta(days=3)
MERCHANT = Actor.merchant("m-1")


def yuan(amount: str) -> Money:
    return Money.of(amount, "CNY")


TIERS = (PriceTier(10, yuan("90.00")), PriceTier(50, yuan("80.00")))


def terms(**changes) -> GroupBuyTerms:
    values = {
        "list_price": yuan("100.00"),
        "tiers": TIERS,
        "starts_at": NOW,
        "ends_at": END,
        "minimum": 10,
    }
    values.update(changes)
    return GroupBuyTerms(**values)


def campaign(**changes) -> GroupBuy:
    return GroupBuy.create(
        MERCHANT, campaign_id="gb-1", merchant_id="m-1", sku="tea", terms=terms(**changes), now=NOW
    )


def join(gb: GroupBuy, buyer: str, quantity: int, paid: Money | None = None, order_id=None):
    paid = gb.quote(buyer, quantity) if paid is None else paid
    order_id = order_id or f"o-{buyer}-{len(gb.participations)}"
    return gb.join(
        Actor.buyer(buyer),
        order_id=order_id,
        quantity=quantity,
        paid=paid,
        payment_ref=f"tx-{order_id}",
        now=NOW,
    )


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
    assert snapshot(aggregate) == before, "a refused command changed the campaign"
    return caught.value


class TestTerms:
    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"tiers": ()}, "at least one tier"),
            ({"tiers": (TIERS[1], TIERS[0])}, "thresholds must rise"),
            ({"tiers": (PriceTier(10, yuan("120.00")),)}, "<= list price"),
            ({"tiers": (PriceTier(10, Money.of("9.00", "USD")),)}, "must be in CNY"),
            ({"ends_at": NOW}, "ends_at must come after"),
            ({"starts_at": datetime(2026, 6, 1)}, "timezone-aware"),  # noqa: DTZ001
            ({"minimum": 0}, "minimum must be"),
            ({"cap": 40}, "cap 40 must be at least the top tier's threshold"),
            ({"payment": GroupBuyPayment.DEPOSIT}, "needs a deposit"),
            ({"payment": "deposit", "deposit": yuan("85.00")}, "at most the lowest unit price"),
            ({"deposit": yuan("5.00")}, "only taken with"),
        ],
    )
    def test_impossible_terms_are_a_definition_error(self, changes, problem):
        with pytest.raises(DefinitionError) as caught:
            terms(**changes)
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    def test_a_list_price_that_is_not_positive_money_is_a_definition_error(self):
        with pytest.raises(DefinitionError):
            terms(list_price=yuan("0.00"))

    def test_the_cap_may_equal_the_top_tier_threshold(self):
        assert terms(cap=50).cap == 50

    @pytest.mark.parametrize("bad", [0, -1, True, 2.5])
    def test_a_tier_needs_a_whole_threshold_of_at_least_one(self, bad):
        with pytest.raises(InvalidInput):
            PriceTier(bad, yuan("1.00"))

    def test_a_tier_needs_a_positive_price(self):
        with pytest.raises(InvalidInput):
            PriceTier(1, yuan("0.00"))

    def test_tiers_must_be_price_tiers(self):
        with pytest.raises(DefinitionError):
            terms(tiers=[(10, yuan("90.00"))])

    @pytest.mark.parametrize(
        ("level", "price"),
        [(0, "100.00"), (9, "100.00"), (10, "90.00"), (49, "90.00"), (50, "80.00"), (999, "80.00")],
    )
    def test_the_price_is_that_of_the_highest_tier_met(self, level, price):
        assert terms().unit_price_at(level) == yuan(price)


class TestQuotingAndJoining:
    def test_a_buyer_pays_the_tier_met_with_their_own_purchase(self):
        gb = campaign()
        assert gb.quote("alice", 9) == yuan("900.00")
        assert gb.quote("alice", 10) == yuan("900.00")
        join(gb, "alice", 9)
        assert gb.quote("bob", 1) == yuan("90.00")

    def test_tiers_by_participants_count_distinct_buyers(self):
        gb = campaign(
            measure=TierMeasure.PARTICIPANTS,
            tiers=(PriceTier(2, yuan("90.00")),),
            minimum=2,
        )
        join(gb, "alice", 5)
        join(gb, "alice", 5)
        assert (gb.level, gb.current_tier) == (1, None)
        assert gb.quote("alice", 1) == yuan("100.00")
        assert gb.quote("bob", 1) == yuan("90.00")
        join(gb, "bob", 1)
        assert gb.level == 2

    def test_joining_records_the_participation_and_raises_the_version(self):
        gb = campaign()
        gb.collect_events()
        join(gb, "alice", 3)
        (event,) = gb.collect_events()
        assert (event.name, event.level, event.participation.paid) == (
            "GroupBuyJoined",
            3,
            yuan("300.00"),
        )
        assert gb.version == 2

    def test_a_buyer_who_quoted_before_the_price_fell_may_still_join(self):
        gb = campaign()
        late_quote = gb.quote("bob", 1)
        join(gb, "alice", 10)
        join(gb, "bob", 1, paid=late_quote)
        assert gb.participations[-1].paid == yuan("100.00")

    @pytest.mark.parametrize("paid", ["89.99", "100.01"])
    def test_paying_outside_the_tier_price_and_the_list_price_is_refused(self, paid):
        gb = campaign()
        join(gb, "alice", 9)
        refused(gb, InvalidInput, lambda: join(gb, "bob", 1, paid=yuan(paid)))

    def test_the_deposit_must_be_paid_exactly(self):
        gb = campaign(payment=GroupBuyPayment.DEPOSIT, deposit=yuan("20.00"))
        assert gb.quote("alice", 3) == yuan("60.00")
        refused(gb, InvalidInput, lambda: join(gb, "alice", 3, paid=yuan("61.00")))

    def test_joining_before_the_window_opens_is_refused(self):
        gb = campaign(starts_at=NOW + timedelta(hours=1))
        refused(gb, RuleViolation, lambda: join(gb, "alice", 1, paid=yuan("100.00")))

    def test_joining_after_the_window_closed_is_refused(self):
        gb = campaign()
        refused(
            gb,
            DeadlinePassed,
            lambda: gb.join(
                Actor.buyer("alice"),
                order_id="o-1",
                quantity=1,
                paid=yuan("100.00"),
                payment_ref="tx",
                now=END,
            ),
        )

    def test_joining_past_the_cap_is_refused_with_what_is_left(self):
        gb = campaign(cap=50)
        join(gb, "alice", 45)
        error = refused(gb, OutOfStock, lambda: join(gb, "bob", 6, paid=yuan("480.00")))
        assert (error.requested, error.available) == (6, 5)

    def test_reaching_the_cap_ends_the_campaign_at_once(self):
        gb = campaign(cap=50)
        join(gb, "alice", 45)
        assert join(gb, "bob", 5) == "succeeded"
        assert gb.settlement is not None
        assert gb.settlement.unit_price == yuan("80.00")
        refused(gb, TransitionNotAllowed, lambda: join(gb, "carol", 1, paid=yuan("80.00")))

    @pytest.mark.parametrize(
        ("actor", "changes", "error"),
        [
            (MERCHANT, {}, Forbidden),
            (Actor.buyer("alice"), {"quantity": 0}, InvalidInput),
            (Actor.buyer("alice"), {"order_id": ""}, InvalidInput),
            (Actor.buyer("alice"), {"paid": Money.of("100.00", "USD")}, CurrencyMismatch),
            (Actor.buyer("alice"), {"order_id": "o-first"}, InvalidInput),
        ],
    )
    def test_bad_joins_are_refused_and_change_nothing(self, actor, changes, error):
        gb = campaign()
        join(gb, "bob", 1, order_id="o-first")
        values = {
            "order_id": "o-2",
            "quantity": 1,
            "paid": yuan("100.00"),
            "payment_ref": "tx",
            "now": NOW,
        }
        values.update(changes)
        refused(gb, error, lambda: gb.join(actor, **values))

    def test_a_campaign_is_set_up_only_with_group_buy_terms(self):
        with pytest.raises(InvalidInput):
            GroupBuy.create(
                MERCHANT, campaign_id="gb", merchant_id="m-1", sku="tea", terms={}, now=NOW
            )

    def test_a_closed_campaign_refuses_joins(self):
        gb = campaign()
        assert not gb.is_final
        gb.cancel(MERCHANT, reason="supplier failed", now=NOW)
        assert gb.is_final
        refused(gb, TransitionNotAllowed, lambda: join(gb, "alice", 1, paid=yuan("100.00")))


class TestWithdrawing:
    def test_a_withdrawn_order_is_refunded_against_its_own_payment(self):
        gb = campaign()
        join(gb, "alice", 3, order_id="o-a")
        releases = gb.withdraw(Actor.buyer("alice"), order_id="o-a", now=NOW)
        refund = next(r for r in releases if r.kind is ReleaseKind.REFUND)
        assert (refund.reference, refund.payment_ref, refund.amount) == (
            "o-a",
            "tx-o-a",
            yuan("300.00"),
        )
        assert gb.level == 0

    def test_withdrawing_twice_is_refused(self):
        gb = campaign()
        join(gb, "alice", 3, order_id="o-a")
        gb.withdraw(Actor.buyer("alice"), order_id="o-a", now=NOW)
        refused(
            gb, RuleViolation, lambda: gb.withdraw(Actor.buyer("alice"), order_id="o-a", now=NOW)
        )

    @pytest.mark.parametrize(
        ("actor", "order_id", "when", "error"),
        [
            (Actor.buyer("bob"), "o-a", NOW, Forbidden),
            (MERCHANT, "o-a", NOW, Forbidden),
            (Actor.system(), "o-none", NOW, NotFound),
            (Actor.system(), "o-a", END, DeadlinePassed),
        ],
    )
    def test_bad_withdrawals_are_refused_and_change_nothing(self, actor, order_id, when, error):
        gb = campaign()
        join(gb, "alice", 3, order_id="o-a")
        refused(gb, error, lambda: gb.withdraw(actor, order_id=order_id, now=when))


class TestClosing:
    def test_nothing_happens_before_the_window_closes(self):
        gb = campaign()
        assert gb.expire(END - timedelta(seconds=1)) is None
        assert gb.due_at == END

    def test_at_close_the_final_tier_is_fixed_and_the_difference_is_refunded(self):
        gb = campaign()
        join(gb, "alice", 5, order_id="o-a")  # pays 5 x 100
        join(gb, "bob", 10, order_id="o-b")  # pays 10 x 90 (15 units reach tier 10)
        join(gb, "carol", 35, order_id="o-c")  # pays 35 x 80 (50 units reach tier 50)
        assert gb.expire(END) == ()
        settlement = gb.settlement
        assert (settlement.level, settlement.tier, settlement.unit_price) == (
            50,
            TIERS[1],
            yuan("80.00"),
        )
        lines = {line.order_id: line for line in settlement.lines}
        assert lines["o-a"].refund == yuan("100.00")
        assert lines["o-b"].refund == yuan("100.00")
        assert lines["o-c"].refund == yuan("0.00")
        assert all(line.final_amount == yuan("80.00") * line.quantity for line in lines.values())
        assert gb.due_at is None

    def test_under_the_deposit_policy_the_balance_is_due_at_close(self):
        gb = campaign(payment=GroupBuyPayment.DEPOSIT, deposit=yuan("20.00"))
        join(gb, "alice", 12, order_id="o-a")
        gb.expire(END)
        (line,) = gb.settlement.lines
        assert (line.paid, line.final_amount, line.balance_due, line.refund) == (
            yuan("240.00"),
            yuan("1080.00"),
            yuan("840.00"),
            yuan("0.00"),
        )

    def test_a_buyer_never_pays_more_than_when_they_joined_even_if_others_withdrew(self):
        gb = campaign()
        join(gb, "alice", 10, order_id="o-a")
        join(gb, "bob", 1, order_id="o-b")  # pays 90: tier 10 was met
        gb.withdraw(Actor.buyer("alice"), order_id="o-a", now=NOW)
        join(gb, "carol", 9, order_id="o-c")  # 10 units again
        gb.withdraw(Actor.buyer("carol"), order_id="o-c", now=NOW)
        join(gb, "dave", 9, paid=yuan("900.00"), order_id="o-d")
        gb.expire(END)
        lines = {line.order_id: line for line in gb.settlement.lines}
        assert gb.settlement.unit_price == yuan("90.00")
        assert (lines["o-b"].final_amount, lines["o-b"].refund) == (yuan("90.00"), yuan("0.00"))

    def test_a_campaign_that_misses_its_minimum_refunds_everyone(self):
        gb = campaign(minimum=20)
        join(gb, "alice", 5, order_id="o-a")
        join(gb, "bob", 10, order_id="o-b")
        gb.withdraw(Actor.buyer("alice"), order_id="o-a", now=NOW)
        join(gb, "carol", 2, order_id="o-c")
        releases = gb.expire(END + timedelta(hours=1))
        assert gb.state == "failed"
        refunds = [(r.reference, r.amount, r.payment_ref) for r in releases if r.kind == "refund"]
        assert refunds == [
            ("o-b", yuan("900.00"), "tx-o-b"),
            ("o-c", yuan("180.00"), "tx-o-c"),
        ]
        assert gb.expire(END + timedelta(days=1)) is None, "released exactly once"
        (event,) = [e for e in gb.collect_events() if e.name == "GroupBuyFailed"]
        assert event.occurred_at == END

    def test_a_cancelled_campaign_refunds_everyone(self):
        gb = campaign()
        join(gb, "alice", 5, order_id="o-a")
        releases = gb.cancel(Actor.platform(), reason="fraud", now=NOW)
        assert {r.reference for r in releases} == {"o-a"}
        assert gb.releases == releases
        refused(gb, TransitionNotAllowed, lambda: gb.cancel(MERCHANT, reason="again", now=NOW))

    @pytest.mark.parametrize(
        ("actor", "reason"),
        [(Actor.merchant("m-2"), "x"), (Actor.buyer("alice"), "x"), (MERCHANT, "")],
    )
    def test_bad_cancellations_are_refused(self, actor, reason):
        gb = campaign()
        refused(gb, (Forbidden, InvalidInput), lambda: gb.cancel(actor, reason=reason, now=NOW))

    def test_only_the_system_or_platform_closes_a_campaign(self):
        gb = campaign()
        refused(gb, Forbidden, lambda: gb.expire(END, MERCHANT))


@settings(max_examples=60, deadline=None)
@given(
    joins=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 30), st.booleans()),
        max_size=12,
    ),
    deposit_policy=st.booleans(),
    measure=st.sampled_from(list(TierMeasure)),
)
def test_settlement_differences_and_final_amounts_add_up_to_what_was_paid(
    joins, deposit_policy, measure
):
    payment = {"payment": "deposit", "deposit": yuan("7.50")} if deposit_policy else {}
    gb = campaign(measure=measure, minimum=1, **payment)
    for index, (buyer, quantity, overpay) in enumerate(joins):
        quote = gb.quote(buyer, quantity)
        paid = yuan("100.00") * quantity if overpay and not deposit_policy else quote
        join(gb, buyer, quantity, paid=paid, order_id=f"o-{index}")
    gb.expire(END)
    if not joins:
        assert gb.state == "failed"
        return
    settlement = gb.settlement
    for line in settlement.lines:
        assert line.paid + line.balance_due - line.refund == line.final_amount
        assert not (line.refund.is_positive and line.balance_due.is_positive)
        assert line.final_amount <= settlement.unit_price * line.quantity
        assert not line.refund.is_negative
        assert not line.balance_due.is_negative
    total = settlement.total
    assert total("final_amount") + total("refund") - total("balance_due") == total("paid")


class TestTheGroupBuyOrderProcesses:
    def test_a_paid_group_buy_order_waits_for_the_close_and_cannot_ship(self):
        assert "ship" not in GROUP_BUY_ORDER_PROCESS.triggers("awaiting_group")
        assert GROUP_BUY_ORDER_PROCESS.fire("awaiting_group", "group_succeeded") == (
            "awaiting_shipment"
        )
        assert GROUP_BUY_ORDER_PROCESS.fire("awaiting_group", "group_failed") == "cancelled"

    def test_a_deposit_order_pays_its_balance_before_shipping(self):
        process = GROUP_BUY_DEPOSIT_ORDER_PROCESS
        state = process.fire("pending_payment", "pay_deposit")
        state = process.fire(state, "group_succeeded")
        assert state == "awaiting_balance"
        assert "ship" not in process.triggers(state)
        assert process.fire(state, "pay_balance") == "awaiting_shipment"
        assert process.fire(state, "expire_balance") == "cancelled"
        assert "pay" not in process.triggers("pending_payment")


# --------------------------------------------------------------------------- stateful

BUYERS = ["a", "b", "c", "d", "e"]


class GroupBuyRacing(RuleBasedStateMachine):
    """Buyers join (some with stale quotes), withdraw and time passes until the close."""

    @initialize(
        measure=st.sampled_from(list(TierMeasure)),
        deposit=st.booleans(),
        minimum=st.integers(1, 12),
        capped=st.booleans(),
    )
    def start(self, measure, deposit, minimum, capped):
        tiers = (PriceTier(3, yuan("90.00")), PriceTier(8, yuan("85.00")))
        extra = {"payment": "deposit", "deposit": yuan("10.00")} if deposit else {}
        self.gb = campaign(
            measure=measure,
            tiers=tiers,
            minimum=min(minimum, 12) if capped else minimum,
            cap=12 if capped else None,
            **extra,
        )
        self.now = NOW
        self.stale: dict[str, Money] = {}
        self.released: Counter[str] = Counter()
        self.refunded: dict[str, Money] = {}
        self.count = 0

    def attempt(self, command):
        before = snapshot(self.gb)
        try:
            return command()
        except EcommerceCoreError:
            assert snapshot(self.gb) == before, "a refused command changed the campaign"
            return None

    def record(self, releases):
        for release in releases or ():
            self.released[release.key] += 1
            if release.kind is ReleaseKind.REFUND:
                self.refunded[release.reference] = release.amount

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 6))
    def quote(self, buyer, quantity):
        self.stale[buyer, quantity] = self.gb.quote(buyer, quantity)

    @rule(
        joins=st.lists(
            st.tuples(st.sampled_from(BUYERS), st.integers(1, 6), st.booleans()),
            min_size=1,
            max_size=3,
        )
    )
    def join(self, joins):
        for buyer, quantity, use_stale in joins:
            self.count += 1
            paid = self.stale.get((buyer, quantity)) if use_stale else None
            paid = self.gb.quote(buyer, quantity) if paid is None else paid
            order_id = f"o-{self.count}"
            self.attempt(lambda: join(self.gb, buyer, quantity, paid=paid, order_id=order_id))  # noqa: B023  # run at once

    @precondition(lambda self: self.count > 0)
    @rule(data=st.data())
    def withdraw(self, data):
        order_id = f"o-{data.draw(st.integers(1, self.count))}"
        self.record(
            self.attempt(lambda: self.gb.withdraw(Actor.system(), order_id=order_id, now=self.now))
        )

    @rule(hours=st.integers(0, 30))
    def time_passes(self, hours):
        self.now += timedelta(hours=hours)
        releases = self.gb.expire(self.now)
        self.record(releases)
        if releases is not None:
            assert self.gb.expire(self.now) is None

    @precondition(lambda self: len(self.gb.participations) >= 4)
    @rule()
    def the_merchant_cancels(self):
        self.record(self.attempt(lambda: self.gb.cancel(MERCHANT, reason="stop", now=self.now)))

    @invariant()
    def the_level_is_what_the_active_orders_add_up_to(self):
        active = self.gb.active()
        if self.gb.terms.measure is TierMeasure.QUANTITY:
            assert self.gb.level == sum(p.quantity for p in active)
        else:
            assert self.gb.level == len({p.buyer_id for p in active})

    @invariant()
    def the_cap_is_never_passed_and_the_tier_is_the_highest_met(self):
        terms_ = self.gb.terms
        if terms_.cap is not None:
            assert self.gb.level <= terms_.cap
        met = [t for t in terms_.tiers if t.threshold <= self.gb.level]
        assert self.gb.current_tier == (met[-1] if met else None)

    @invariant()
    def every_release_happens_once_and_refunds_what_that_order_paid(self):
        assert all(count == 1 for count in self.released.values())
        for p in self.gb.participations:
            if p.order_id in self.refunded:
                assert self.refunded[p.order_id] == p.paid
                assert p.status == "withdrawn" or self.gb.state == "failed"
            elif p.status == "withdrawn" or self.gb.state == "failed":
                raise AssertionError(f"{p.order_id} was abandoned but not refunded")

    @invariant()
    def a_settlement_covers_every_active_order_and_adds_up(self):
        if self.gb.state != "succeeded":
            assert self.gb.settlement is None
            return
        settlement = self.gb.settlement
        assert [line.order_id for line in settlement.lines] == [
            p.order_id for p in self.gb.active()
        ]
        assert settlement.level >= self.gb.terms.minimum
        total = settlement.total
        assert total("final_amount") + total("refund") - total("balance_due") == total("paid")


GroupBuyRacing.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestGroupBuyRacing = GroupBuyRacing.TestCase
