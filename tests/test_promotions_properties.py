"""Properties of pricing that hold for any cart and any mix of promotions (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Money
from ecommerce_core.limits import Limit
from ecommerce_core.promotions import (
    AmountOff,
    BuyerIn,
    BuyXGetY,
    FixedPrice,
    FreeShipping,
    MinAmount,
    MinQuantity,
    PercentOff,
    Points,
    PricingContext,
    PricingLine,
    Promotion,
    Rebate,
    Scope,
    Stacking,
    Stage,
    Status,
    Threshold,
    Tier,
    Tiered,
    price,
)

NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
SKUS = ("tea", "cup", "pot", "pin")
CATEGORIES = ("tea", "ware")
MERCHANTS = ("m-1", "m-2")


def cny(minor):
    return Money(minor, "CNY")


money = st.integers(1, 30_000).map(cny)
percent = st.integers(1, 100)

lines = st.lists(
    st.builds(
        lambda line_id, sku, quantity, unit, category, merchant: PricingLine(
            line_id, sku, quantity, cny(unit), category, merchant
        ),
        st.sampled_from("abcdefghij"),
        st.sampled_from(SKUS),
        st.integers(1, 5),
        st.integers(0, 20_000),
        st.sampled_from(CATEGORIES),
        st.sampled_from(MERCHANTS),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda ln: ln.line_id,
)

scopes = st.one_of(
    st.just(Scope()),
    st.builds(Scope, skus=st.sets(st.sampled_from(SKUS), min_size=1, max_size=2)),
    st.builds(Scope, categories=st.sets(st.sampled_from(CATEGORIES), min_size=1)),
    st.builds(Scope, merchants=st.sets(st.sampled_from(MERCHANTS), min_size=1, max_size=1)),
    st.builds(
        Scope,
        categories=st.just({"ware"}),
        exclude_skus=st.sets(st.sampled_from(SKUS), min_size=1, max_size=1),
    ),
)

item_benefits = st.one_of(
    st.builds(PercentOff, percent),
    st.builds(AmountOff, money, per_unit=st.booleans()),
    st.builds(FixedPrice, st.integers(0, 15_000).map(cny)),
    st.builds(
        BuyXGetY,
        st.integers(1, 3),
        st.integers(1, 2),
        percent=percent,
        max_applications=st.none() | st.integers(1, 3),
    ),
)
order_benefits = st.one_of(
    st.builds(PercentOff, percent),
    st.builds(AmountOff, money),
    st.builds(
        lambda spend, off, repeat: Threshold(cny(spend), cny(off), repeat=repeat),
        st.integers(1, 40_000),
        st.integers(1, 10_000),
        st.booleans(),
    ),
    st.builds(
        lambda first, step, low, high: Tiered(
            [Tier(first, PercentOff(low)), Tier(first + step, PercentOff(high))]
        ),
        st.integers(1, 6),
        st.integers(1, 6),
        percent,
        percent,
    ),
)
conditions = st.lists(
    st.one_of(
        st.builds(MinQuantity, st.integers(1, 8)),
        st.builds(MinAmount, money),
        st.builds(BuyerIn, st.sets(st.sampled_from(["vip", "new"]), min_size=1)),
    ),
    max_size=2,
)
limits = st.lists(
    st.one_of(
        st.builds(Limit.uses, st.integers(1, 3)),
        st.builds(Limit.uses_per_buyer, st.integers(1, 2)),
        st.builds(Limit.budget, st.integers(1, 20_000).map(cny)),
    ),
    max_size=2,
)


@st.composite
def promotion_specs(draw):
    """Keyword arguments for one valid promotion (its id is given later)."""
    stage = draw(st.sampled_from([Stage.ITEM, Stage.ORDER, Stage.SHIPPING, Stage.POST_ORDER]))
    if stage is Stage.ITEM:
        benefit = draw(item_benefits)
    elif stage is Stage.ORDER:
        benefit = draw(order_benefits)
    elif stage is Stage.SHIPPING:
        benefit = draw(st.builds(FreeShipping, st.none() | money))
    else:
        benefit = draw(
            st.one_of(
                st.builds(Rebate, percent=percent),
                st.builds(Rebate, amount=money),
                st.builds(Points, money),
            )
        )
    stacking = draw(st.sampled_from(list(Stacking)))
    group = draw(st.sampled_from(["", "g1", "g2"]))
    if stacking is Stacking.BEST_OF_GROUP and not group:
        group = "g1"
    chosen = [] if isinstance(benefit, Points) else draw(limits)
    return {
        "benefit": benefit,
        "stage": stage,
        "scope": draw(scopes),
        "conditions": draw(conditions),
        "priority": draw(st.integers(0, 3)),
        "exclusive": draw(st.booleans()),
        "stacking": stacking,
        "group": group,
        "limits": chosen,
    }


def build(specs):
    return [Promotion(f"p{index}", **spec) for index, spec in enumerate(specs)]


promotion_lists = st.lists(promotion_specs(), max_size=6).map(build)


@st.composite
def contexts(draw, promotions):
    usage = {}
    for promotion in promotions:
        for limit in promotion.limits:
            if draw(st.booleans()):
                key = limit.key(promotion.id, buyer_id="alice")
                usage[key] = draw(st.integers(0, limit.cap))
    return PricingContext(
        NOW,
        "alice",
        draw(st.sets(st.sampled_from(["vip", "new"]))),
        usage=usage,
        shipping_fee=cny(draw(st.integers(0, 2_000))),
    )


carts = st.tuples(lines, promotion_lists).flatmap(
    lambda pair: st.tuples(st.just(pair[0]), st.just(pair[1]), contexts(pair[1]))
)

PROPERTY = settings(max_examples=60, deadline=None)


def summary(result):
    """The result per line id and per promotion id, independent of the input order."""
    return (
        {ln.line_id: ln for ln in result.lines},
        sorted(result.adjustments, key=lambda a: a.promotion_id),
        sorted(result.explanations, key=lambda e: e.promotion_id),
        sorted(result.claims, key=lambda c: c.key),
        sorted(result.entitlements, key=lambda e: e.promotion_id),
        result.shipping_discount,
        result.total,
    )


class TestAllocation:
    @PROPERTY
    @given(carts)
    def test_the_line_shares_of_every_adjustment_add_up_to_it(self, cart):
        result = price(*cart)
        for adjustment in result.adjustments:
            shares = sum((s.amount for s in adjustment.shares), cny(0))
            assert shares + (adjustment.shipping or cny(0)) == adjustment.amount
        for line in result.lines:
            assert sum((a.amount for a in line.adjustments), cny(0)) == line.discount
        by_promotion = {}
        for line in result.lines:
            for adjustment in line.adjustments:
                by_promotion[adjustment.promotion_id] = (
                    by_promotion.get(adjustment.promotion_id, cny(0)) + adjustment.amount
                )
        assert by_promotion == {
            a.promotion_id: a.amount - (a.shipping or cny(0))
            for a in result.adjustments
            if a.shares
        }

    @PROPERTY
    @given(carts)
    def test_no_line_goes_below_zero_and_every_share_is_positive(self, cart):
        result = price(*cart)
        for line in result.lines:
            assert cny(0) <= line.discount <= line.list_amount
            assert line.amount >= cny(0)
            assert all(a.amount.is_positive for a in line.adjustments)
        assert cny(0) <= result.shipping_discount <= result.shipping_fee


class TestDeterminism:
    @PROPERTY
    @given(carts, st.randoms(use_true_random=False))
    def test_the_order_of_lines_and_promotions_changes_nothing(self, cart, rnd):
        lines, promotions, context = cart
        shuffled_lines, shuffled_promotions = list(lines), list(promotions)
        rnd.shuffle(shuffled_lines)
        rnd.shuffle(shuffled_promotions)
        first = price(lines, promotions, context)
        again = price(shuffled_lines, shuffled_promotions, context)
        assert summary(again) == summary(first)
        assert [ln.line_id for ln in again.lines] == [ln.line_id for ln in shuffled_lines]

    @PROPERTY
    @given(carts)
    def test_pricing_the_same_inputs_twice_gives_the_same_result(self, cart):
        assert price(*cart) == price(*cart)


class TestTotals:
    @PROPERTY
    @given(carts)
    def test_the_total_never_exceeds_the_list_total_and_adds_up(self, cart):
        result = price(*cart)
        assert cny(0) <= result.total <= result.list_total
        assert result.total == result.list_total - result.discount_total
        assert result.subtotal == sum((ln.amount for ln in result.lines), cny(0))

    @PROPERTY
    @given(carts)
    def test_only_promotions_that_gave_something_claim_and_never_past_a_cap(self, cart):
        _, _, context = cart
        result = price(*cart)
        applied = set(result.applied)
        for claim in result.claims:
            assert claim.key.split(":")[0] in applied
            assert claim.amount >= 1
            assert context.usage.get(claim.key, 0) + claim.amount <= claim.cap
        for explanation in result.explanations:
            assert explanation.applied == (explanation.promotion_id in applied)
            if not explanation.applied:
                assert explanation.discount == cny(0)

    @PROPERTY
    @given(carts)
    def test_a_promotion_not_yet_started_changes_no_amount(self, cart):
        lines, promotions, context = cart
        later = Promotion("zz-later", PercentOff(50), starts_at=NOW + timedelta(days=1))
        with_later = price(lines, [*promotions, later], context)
        without = price(lines, promotions, context)
        assert with_later.lines == without.lines
        assert with_later.explanation("zz-later").status is Status.NOT_STARTED
