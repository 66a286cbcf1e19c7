"""The pricing engine's shortcuts give exactly what the plain way gives.

Pricing a cart takes shortcuts for speed (see ``promotions/working.py`` and ``engine.py``):

* the result's objects (Money, LineAdjustment, LineShare, Adjustment, Explanation,
  PricedLine) are built in bulk, field by field through the slots' own setters, not by their
  classes (which validate);
* the largest-remainder spread ranks shares by remainder alone, and hands ties across the
  cut to ``money._allocate``;
* buy X get Y ranks its pool by an exact int key instead of a comparison function;
* the working lines keep what each kind of promotion may still use up to date (rather than
  recounting it), and a pool drops a line at zero units left;
* the SKU / category / merchant indexes are built with ``map`` over ``defaultdict``;
* each promotion's scope lookup (index, names, whether to filter) and its conditions (buyer
  conditions, then amount and quantity conditions) are worked out once per run;
* a free shipping promotion with no amount or quantity condition and no limit asks only
  whether a line in scope has a unit left (no pool);
* an outcome keeps what it gives (``value``) instead of adding it up on every read;
* an amount in words (explanations) is formatted from the ints, no Money built.

Each is checked here against the slow, obvious way of doing the same thing; the whole engine is
checked against the engine as it was before any of this in ``test_pricing_reference.py``.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Money, _slots
from ecommerce_core.money import CURRENCIES, allocate_minor
from ecommerce_core.orders import LineAdjustment
from ecommerce_core.promotions import (
    Adjustment,
    BuyXGetY,
    Explanation,
    FreeShipping,
    LineShare,
    PercentOff,
    PricedLine,
    PricingContext,
    PricingLine,
    Promotion,
    Scope,
    Status,
    Threshold,
    price,
)
from ecommerce_core.promotions.engine import _cheapest_first, _offers, _Pricing
from ecommerce_core.promotions.working import _amount, _cap, _largest_remainder, _Outcome
from pricing_reference import engine as reference
from test_pricing_reference import fields
from test_promotions_properties import NOW, carts, cny, promotion_specs, scopes

SOME = settings(max_examples=40, deadline=None)


class _Entry:
    """A stand-in for a working line: the ranking reads its index only."""

    def __init__(self, index: int) -> None:
        self.index = index


def by_unit_amount(one, other):
    """The comparison the engine sorted buy-X-get-Y pools with: exact, by cross-multiplying."""
    _, units, amount = one
    _, other_units, other_amount = other
    return amount * other_units - other_amount * units or one[0].index - other[0].index


pools = st.lists(st.tuples(st.integers(1, 12), st.integers(0, 5_000)), min_size=1, max_size=25).map(
    lambda pairs: [(_Entry(i), units, amount) for i, (units, amount) in enumerate(pairs)]
)


class TestTheLargestRemainderSpread:
    @given(
        st.integers(0, 10**9),
        st.lists(st.integers(0, 4) | st.integers(0, 10**7), min_size=1, max_size=40).filter(any),
    )
    def test_it_gives_the_shares_allocate_minor_gives(self, total, weights):
        assert _largest_remainder(total, weights, sum(weights)) == allocate_minor(total, weights)

    def test_a_tie_across_the_cut_goes_to_the_larger_weight_then_the_earlier_share(self):
        # 5 over 1, 3, 6: floors 0, 1, 3; remainders 5, 5, 0; one unit left for two ties.
        assert _largest_remainder(5, [1, 3, 6], 10) == [0, 2, 3]
        assert _largest_remainder(1, [2, 1, 2], 5) == [1, 0, 0]

    def test_ties_above_the_cut_all_get_their_unit(self):
        # 7 over 1, 1, 2, 6: floors 0, 0, 1, 4; remainders 7, 7, 4, 2; two units left, and
        # both go to the tied remainders.
        assert _largest_remainder(7, [1, 1, 2, 6], 10) == [1, 1, 1, 4]
        assert allocate_minor(7, [1, 1, 2, 6]) == [1, 1, 1, 4]


class TestBuyXGetYRanking:
    @given(pools)
    def test_the_int_key_orders_a_pool_as_the_comparison_did(self, pool):
        count = len(pool)
        expected = sorted(pool, key=functools.cmp_to_key(by_unit_amount))
        assert _cheapest_first(pool, count) == expected

    @given(st.lists(st.tuples(st.integers(1, 10**4), st.integers(0, 10**6)), max_size=25))
    def test_pools_of_many_different_quantities_are_ordered_the_same_way(self, pairs):
        # Primes above 40: their least common multiple passes 2**32 with 6 of them, and the
        # ranking compares pairwise instead of building huge keys.
        primes = [41, 43, 47, 53, 59, 61, 67, 71]
        pool = [
            (_Entry(i), primes[i % 8] * units, amount) for i, (units, amount) in enumerate(pairs)
        ]
        expected = sorted(pool, key=functools.cmp_to_key(by_unit_amount))
        assert _cheapest_first(pool, len(pool)) == expected

    def test_equal_prices_per_unit_keep_the_earlier_line_first(self):
        pool = [(_Entry(0), 2, 300), (_Entry(1), 1, 150), (_Entry(2), 3, 300)]
        assert [entry[0].index for entry in _cheapest_first(pool, 3)] == [2, 0, 1]


class TestTheBulkBuiltResult:
    @SOME
    @given(carts)
    def test_every_object_equals_the_one_its_class_builds_from_the_same_fields(self, cart):
        result = price(*cart)
        for line in result.lines:
            assert type(line) is PricedLine
            assert line == PricedLine(*attrs.astuple(line, recurse=False))
            assert line.discount == Money(line.discount.minor, line.discount.currency)
            for adjustment in line.adjustments:
                assert type(adjustment) is LineAdjustment
                assert type(adjustment.amount) is Money
                assert adjustment == LineAdjustment(*attrs.astuple(adjustment, recurse=False))
        for adjustment in result.adjustments:
            assert type(adjustment) is Adjustment
            assert adjustment == Adjustment(*attrs.astuple(adjustment, recurse=False))
            for share in adjustment.shares:
                assert type(share) is LineShare
                assert share == LineShare(share.line_id, Money(share.amount.minor, "CNY"))
        for explanation in result.explanations:
            assert type(explanation) is Explanation
            assert explanation == Explanation(*attrs.astuple(explanation, recurse=False))

    @pytest.mark.parametrize("cls", [Explanation, Adjustment, LineShare, PricedLine])
    def test_the_classes_built_column_by_column_only_set_their_fields(self, cls):
        # Built without their constructors: a validator, converter or post-init added to one
        # of them would be skipped, so this fails first (LineAdjustment and Money do check,
        # and are rebuilt through their classes in the test above).
        assert set(_slots._plain_setters(cls)) == {field.name for field in attrs.fields(cls)}

    def test_the_objects_built_field_by_field_stay_frozen(self):
        lines = [PricingLine("a", "tea", 2, cny(1_000), "leaf")]
        result = price(lines, [Promotion("p", PercentOff(10))], PricingContext(NOW, "alice"))
        (line,) = result.lines
        (adjustment,) = result.adjustments
        for value, name in (
            (line, "discount"),
            (line.adjustments[0], "amount"),
            (line.discount, "minor"),
            (adjustment, "shares"),
            (adjustment.shares[0], "amount"),
            (result.explanations[0], "reason"),
        ):
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                setattr(value, name, None)

    def test_a_line_share_and_the_line_adjustment_it_mirrors_carry_the_same_amount(self):
        lines = [PricingLine("a", "tea", 2, cny(1_000)), PricingLine("b", "cup", 1, cny(333))]
        result = price(lines, [Promotion("p", PercentOff(15))], PricingContext(NOW, "alice"))
        (adjustment,) = result.adjustments
        for share, line in zip(adjustment.shares, result.lines, strict=True):
            assert line.adjustments == (LineAdjustment("p", "item", share.amount),)


# Carts of many lines in few categories, with many equal prices: wide pools, tied remainders,
# exclusive promotions competing with the rest for the same units.
wide_lines = st.lists(
    st.builds(
        lambda index, quantity, unit, category: PricingLine(
            f"l{index:02}", f"sku-{index % 7}", quantity, cny(unit), category
        ),
        st.integers(0, 60),
        st.integers(1, 4),
        st.sampled_from([100, 250, 999, 1_000]) | st.integers(0, 9_000),
        st.sampled_from(["leaf", "ware", "snack"]),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda line: line.line_id,
)
wide_promotions = st.lists(promotion_specs(), max_size=12).map(
    lambda specs: [Promotion(f"p{index:02}", **spec) for index, spec in enumerate(specs)]
)


class TestWideCartsPriceAsTheReferenceEngineDid:
    @SOME
    @given(wide_lines, wide_promotions)
    def test_a_wide_cart_prices_exactly_as_the_reference_engine_did(self, lines, promotions):
        context = PricingContext(NOW, "alice", {"vip"}, shipping_fee=cny(600))
        assert fields(price(lines, promotions, context)) == fields(
            reference.price(lines, promotions, context)
        )

    def test_an_exclusive_buy_x_get_y_and_percentages_share_a_category_as_before(self):
        lines = [
            PricingLine(f"l{i}", f"sku-{i}", 1 + i % 3, cny(500 + i), "leaf") for i in range(9)
        ]
        promotions = [
            Promotion("bxgy", BuyXGetY(2, 1), scope=Scope(categories={"leaf"}), exclusive=True),
            Promotion("pct", PercentOff(10), scope=Scope(categories={"leaf"}), priority=1),
            Promotion("mj", Threshold(cny(1_000), cny(100), repeat=True)),
        ]
        context = PricingContext(NOW, "alice")
        assert fields(price(lines, promotions, context)) == fields(
            reference.price(lines, promotions, context)
        )


class TestTheWorkingLines:
    @SOME
    @given(wide_lines, wide_promotions)
    def test_what_a_line_offers_never_goes_below_zero_and_adds_up(self, lines, promotions):
        # The pools drop a line at zero units left (not below): the counters never go negative.
        pricing = _Pricing(lines, PricingContext(NOW, "alice", {"vip"}, shipping_fee=cny(600)))
        pricing.run(_offers(promotions, pricing.currency))
        for line in pricing.lines:
            assert 0 <= line.free_units <= line.open_units <= line.qty
            assert line.free_units == line.open_units - line.shared_units
            assert 0 <= line.discount <= line.unit * line.qty

    @SOME
    @given(wide_lines)
    def test_each_index_groups_the_lines_in_canonical_order(self, lines):
        pricing = _Pricing(lines, PricingContext(NOW, "alice"))
        for field in ("sku", "category", "merchant_id"):
            expected = defaultdict(list)
            for line in sorted(pricing.lines, key=lambda working: working.line_id):
                expected[getattr(line.source, field)].append(line)
            assert pricing.index(field) == dict(expected)


class TestAmountsInWords:
    @given(
        st.integers(-(10**12), 10**12),
        st.sampled_from(["CNY", "JPY", "KWD", "USD", "EUR", "BHD", "KRW"]),
    )
    def test_an_amount_reads_as_the_money_it_stands_for(self, minor, code):
        assert code in CURRENCIES
        assert _amount(minor, code) == str(Money(minor, code))


class TestScopeLookups:
    @SOME
    @given(wide_lines, scopes)
    def test_an_offer_finds_exactly_the_lines_its_scope_covers_in_canonical_order(
        self, lines, scope
    ):
        pricing = _Pricing(lines, PricingContext(NOW, "alice"))
        (offer,) = _offers([Promotion("p", PercentOff(10), scope=scope)], "CNY")
        expected = [
            line
            for line in sorted(pricing.lines, key=lambda working: working.line_id)
            if scope.covers(line.source.sku, line.source.category, line.source.merchant_id)
        ]
        assert list(pricing.candidates(offer)) == expected


class TestFreeShippingWithoutAPool:
    @SOME
    @given(wide_lines, wide_promotions, scopes, st.booleans(), st.none() | st.integers(1, 900))
    def test_free_shipping_prices_as_the_reference_engine_did_after_any_promotions(
        self, lines, promotions, scope, exclusive, up_to
    ):
        # Exclusive promotions before it may have used up every unit it covers.
        shipping = Promotion(
            "ship",
            FreeShipping(None if up_to is None else cny(up_to)),
            scope=scope,
            exclusive=exclusive,
        )
        context = PricingContext(NOW, "alice", {"vip"}, shipping_fee=cny(600))
        assert fields(price(lines, [*promotions, shipping], context)) == fields(
            reference.price(lines, [*promotions, shipping], context)
        )

    def test_free_shipping_on_units_an_exclusive_promotion_used_up_covers_nothing(self):
        lines = [PricingLine("a", "tea", 3, cny(1_000), "leaf")]
        promotions = [
            Promotion("bxgy", BuyXGetY(2, 1), scope=Scope(categories={"leaf"}), exclusive=True),
            Promotion("ship", FreeShipping(), scope=Scope(categories={"leaf"}), exclusive=True),
        ]
        result = price(lines, promotions, PricingContext(NOW, "alice", shipping_fee=cny(600)))
        assert result.explanation("ship").status is Status.CONDITION_UNMET
        assert result.shipping_discount == cny(0)


class TestTheOutcomeValue:
    @given(
        st.sampled_from(["shares", "shipping", "entitlement"]),
        st.lists(st.integers(0, 10_000), min_size=1, max_size=8).filter(any),
        st.integers(0, 30_000),
    )
    def test_what_an_outcome_gives_adds_up_before_and_after_a_budget_caps_it(
        self, kind, amounts, left
    ):
        # An outcome gives one kind of thing: line shares, shipping or cashback.
        if kind == "shares":
            shares = ([None] * len(amounts), amounts, [1] * len(amounts))
            outcome = _Outcome(Status.APPLIED, shares=shares)
        else:
            outcome = _Outcome(Status.APPLIED, **{kind: amounts[0]})
        given_before = sum(amounts) if kind == "shares" else amounts[0]
        assert outcome.value == given_before
        if given_before > left:  # the engine caps only what a budget cannot cover
            _cap(outcome, left)
        assert outcome.value == min(given_before, left)
        assert outcome.value == sum(outcome.shares[1]) + outcome.shipping + outcome.entitlement
