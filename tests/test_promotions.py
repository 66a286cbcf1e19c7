"""The pricing engine, rule by rule: stages, conditions, conflicts, limits, coupons, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ecommerce_core import CurrencyMismatch, DefinitionError, InvalidInput, Money, NotFound
from ecommerce_core.limits import Limit
from ecommerce_core.orders import LineAdjustment, OrderLine
from ecommerce_core.promotions import (
    AmountOff,
    BuyerIn,
    BuyXGetY,
    Coupon,
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
    Shortfall,
    Stacking,
    Stage,
    Status,
    Threshold,
    Tier,
    Tiered,
    limit_keys,
    price,
)

NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)


def cny(amount):
    return Money.of(amount, "CNY")


def line(line_id, sku, quantity, unit, category="", *, merchant="m-1"):
    return PricingLine(line_id, sku, quantity, cny(unit), category, merchant)


def context(**fields):
    return PricingContext(fields.pop("now", NOW), fields.pop("buyer_id", "alice"), **fields)


def discounts(result):
    return {ln.line_id: str(ln.discount) for ln in result.lines}


def status(result, promotion_id):
    return result.explanation(promotion_id).status


TEA = line("1", "tea", 3, "38.00", "tea")
CUP = line("2", "cup", 2, "25.00", "teaware")
POT = line("3", "pot", 1, "168.00", "teaware")


class TestBenefits:
    def test_a_percentage_is_rounded_once_per_application_not_per_unit(self):
        cheap = [line("1", "pin", 3, "0.33")]
        result = price(cheap, [Promotion("ten", PercentOff(10))], context())
        # 10 % of 0.99 is 0.099 -> 0.10; per unit it would be 3 x 0.03 = 0.09.
        assert discounts(result) == {"1": "0.10 CNY"}

    def test_a_percentage_rounds_half_up(self):
        result = price([line("1", "pin", 1, "0.05")], [Promotion("p", PercentOff(10))], context())
        assert discounts(result) == {"1": "0.01 CNY"}
        result = price([line("1", "pin", 1, "0.04")], [Promotion("p", PercentOff(10))], context())
        assert result.explanation("p").status is Status.NO_VALUE

    def test_an_amount_off_each_unit_never_takes_a_line_below_zero(self):
        lines = [line("1", "pin", 2, "3.00"), line("2", "cap", 1, "8.00")]
        result = price(lines, [Promotion("five", AmountOff(cny("5"), per_unit=True))], context())
        assert discounts(result) == {"1": "6.00 CNY", "2": "5.00 CNY"}

    def test_an_amount_off_once_is_spread_by_what_each_line_costs(self):
        result = price([TEA, CUP], [Promotion("ten", AmountOff(cny("10")))], context())
        # 114.00 and 50.00 share 10.00: 6.95 and 3.05 (largest remainder, sums exactly)
        assert discounts(result) == {"1": "6.95 CNY", "2": "3.05 CNY"}
        assert result.adjustments[0].amount == cny("10")

    def test_an_amount_off_larger_than_the_cart_gives_the_cart(self):
        result = price([CUP], [Promotion("big", AmountOff(cny("80")))], context())
        assert str(result.total) == "0.00 CNY"
        assert result.explanation("big").discount == cny("50")

    def test_a_fixed_price_sells_each_unit_at_it_and_leaves_cheaper_units_alone(self):
        promo = Promotion("thirty", FixedPrice(cny("30")))
        result = price([TEA, CUP], [promo], context())
        assert discounts(result) == {"1": "24.00 CNY", "2": "0.00 CNY"}
        assert result.lines[1].adjustments == ()

    def test_a_fixed_price_above_every_line_gives_nothing_and_claims_nothing(self):
        promo = Promotion("dear", FixedPrice(cny("500")), limits=[Limit.uses(1)])
        result = price([TEA], [promo], context())
        assert result.explanation("dear").status is Status.NO_VALUE
        assert result.claims == ()

    def test_buy_two_get_one_free_gives_the_cheapest_unit_free(self):
        lines = [line("1", "tea", 2, "38.00", "tea"), line("2", "oolong", 1, "30.00", "tea")]
        promo = Promotion("b2g1", BuyXGetY(2, 1), scope=Scope(categories={"tea"}))
        result = price(lines, [promo], context())
        assert discounts(result) == {"1": "0.00 CNY", "2": "30.00 CNY"}
        assert result.explanation("b2g1").discount == cny("30")

    def test_buy_x_get_y_at_a_percentage_off_the_free_units(self):
        promo = Promotion("half", BuyXGetY(1, 1, percent=50))
        result = price([line("1", "tea", 4, "38.00")], [promo], context())
        assert discounts(result) == {"1": "38.00 CNY"}  # two bundles, 19.00 off each

    def test_buy_x_get_y_applies_at_most_max_applications_times(self):
        promo = Promotion("once", BuyXGetY(1, 1, max_applications=1))
        result = price([line("1", "tea", 6, "10.00")], [promo], context())
        assert discounts(result) == {"1": "10.00 CNY"}

    def test_buy_x_get_y_says_how_many_more_to_buy(self):
        promo = Promotion("b2g1", BuyXGetY(2, 1))
        explanation = price([line("1", "tea", 2, "38.00")], [promo], context()).explanation("b2g1")
        assert (explanation.status, explanation.reason) == (Status.CONDITION_UNMET, "buy 1 more")
        assert explanation.shortfall == Shortfall(units=1)

    def test_a_threshold_gives_its_reduction_once_by_default(self):
        result = price([TEA, CUP], [Promotion("mj", Threshold(cny("50"), cny("5")))], context())
        assert result.explanation("mj").discount == cny("5")

    def test_a_repeating_threshold_gives_one_reduction_per_whole_multiple(self):
        every = Threshold(cny("50"), cny("5"), repeat=True)
        result = price([TEA, CUP], [Promotion("mj", every)], context())
        assert result.explanation("mj").discount == cny("15")  # 164.00 holds three 50.00s
        capped = Threshold(cny("50"), cny("5"), repeat=True, max_times=2)
        result = price([TEA, CUP], [Promotion("mj", capped)], context())
        assert result.explanation("mj").discount == cny("10")

    def test_an_unmet_threshold_says_how_much_more_to_spend(self):
        promo = Promotion("mj", Threshold(cny("126"), cny("15")))
        explanation = price([TEA], [promo], context()).explanation("mj")
        assert explanation.status is Status.CONDITION_UNMET
        assert explanation.reason == "spend 12.00 CNY more"
        assert explanation.shortfall == Shortfall(amount=cny("12"))

    def test_tiers_give_the_highest_tier_reached(self):
        tiers = Tiered([Tier(2, PercentOff(5)), Tier(3, PercentOff(10)), Tier(9, PercentOff(50))])
        result = price([TEA], [Promotion("tiers", tiers)], context())
        assert result.explanation("tiers").discount == cny("11.40")

    def test_money_tiers_can_give_an_amount_and_say_what_reaches_the_first(self):
        tiers = Tiered([Tier(cny("200"), AmountOff(cny("20"))), Tier(cny("300"), PercentOff(10))])
        explanation = price([TEA, CUP], [Promotion("t", tiers)], context()).explanation("t")
        assert explanation.reason == "spend 36.00 CNY more"
        result = price([TEA, CUP, POT], [Promotion("t", tiers)], context())
        assert result.explanation("t").discount == cny("33.20")
        result = price([TEA, POT], [Promotion("t", tiers)], context())
        assert result.explanation("t").discount == cny("20")

    def test_unit_tiers_say_how_many_more_units_reach_the_first(self):
        tiers = Tiered([Tier(5, PercentOff(10))])
        assert price([TEA], [Promotion("t", tiers)], context()).explanation("t").reason == (
            "buy 2 more"
        )

    def test_free_shipping_takes_the_fee_off_once_its_condition_holds(self):
        promo = Promotion("ship", FreeShipping(), conditions=[MinAmount(cny("99"))])
        result = price([TEA], [promo], context(shipping_fee=cny("8")))
        assert (str(result.shipping_total), str(result.total)) == ("0.00 CNY", "114.00 CNY")
        assert result.adjustments[0].shipping == cny("8")
        result = price([CUP], [promo], context(shipping_fee=cny("8")))
        assert result.explanation("ship").reason == "spend 49.00 CNY more"
        assert str(result.total) == "58.00 CNY"

    def test_free_shipping_up_to_an_amount_and_none_without_a_fee(self):
        promo = Promotion("ship", FreeShipping(up_to=cny("5")))
        result = price([CUP], [promo], context(shipping_fee=cny("8")))
        assert result.shipping_discount == cny("5")
        assert price([CUP], [promo], context()).explanation("ship").status is Status.NO_VALUE

    def test_rebates_and_points_are_granted_after_the_order_and_change_no_total(self):
        promotions = [
            Promotion("cashback", Rebate(percent=5)),
            Promotion("fixed-cashback", Rebate(amount=cny("500"))),
            Promotion("points", Points(cny("10"), points=2)),
            Promotion("off", AmountOff(cny("14"))),
        ]
        result = price([TEA, CUP], promotions, context())
        assert str(result.total) == "150.00 CNY"
        entitlements = {e.promotion_id: (e.kind, e.amount, e.points) for e in result.entitlements}
        assert entitlements == {
            "cashback": ("rebate", cny("7.50"), 0),
            "fixed-cashback": ("rebate", cny("150"), 0),
            "points": ("points", None, 30),
        }
        assert result.explanation("points").reason == "earns 30 points"
        assert result.explanation("cashback").discount == cny("0")

    def test_each_stage_works_on_what_the_earlier_stages_left(self):
        promotions = [
            Promotion("mj", Threshold(cny("100"), cny("10"))),  # order stage
            Promotion("half", PercentOff(50)),  # item stage, runs first
        ]
        result = price([TEA], promotions, context())
        assert result.explanation("mj").reason == "spend 43.00 CNY more"
        assert result.applied == ("half",)


class TestConditionsAndWindows:
    def test_a_promotion_not_yet_started_says_when_it_starts(self):
        promo = Promotion("later", PercentOff(10), starts_at=NOW + timedelta(hours=1))
        explanation = price([TEA], [promo], context()).explanation("later")
        assert explanation.status is Status.NOT_STARTED
        assert explanation.reason == "starts at 2026-05-20T11:00:00+00:00"

    def test_a_window_includes_its_start_and_excludes_its_end(self):
        promo = Promotion("sale", PercentOff(10), starts_at=NOW, ends_at=NOW + timedelta(hours=2))
        for moment, expected in (
            (NOW, Status.APPLIED),
            (NOW + timedelta(hours=2) - timedelta(microseconds=1), Status.APPLIED),
            (NOW + timedelta(hours=2), Status.EXPIRED),
        ):
            assert status(price([TEA], [promo], context(now=moment)), "sale") is expected

    def test_a_scope_matches_skus_categories_merchants_and_excludes_skus(self):
        lines = [TEA, CUP, POT, line("4", "cup2", 1, "20.00", "teaware", merchant="m-2")]
        promotions = [
            Promotion("by-sku", AmountOff(cny("1"), per_unit=True), scope=Scope(skus={"tea"})),
            Promotion(
                "by-category",
                AmountOff(cny("2"), per_unit=True),
                scope=Scope(categories={"teaware"}, exclude_skus={"pot"}),
            ),
            Promotion(
                "by-merchant", AmountOff(cny("3"), per_unit=True), scope=Scope(merchants={"m-2"})
            ),
        ]
        result = price(lines, promotions, context())
        touched = {ln.line_id: [a.promotion_id for a in ln.adjustments] for ln in result.lines}
        assert touched == {
            "1": ["by-sku"],
            "2": ["by-category"],
            "3": [],
            "4": ["by-category", "by-merchant"],
        }

    def test_a_buyer_segment_condition_applies_to_members_only(self):
        promo = Promotion("vip", PercentOff(20), conditions=[BuyerIn({"vip", "svip"})])
        assert status(price([TEA], [promo], context(segments={"vip"})), "vip") is Status.APPLIED
        explanation = price([TEA], [promo], context()).explanation("vip")
        assert explanation.reason == "only for buyers in: svip, vip"

    def test_quantity_and_amount_conditions_count_only_the_lines_in_scope(self):
        promo = Promotion(
            "ware",
            PercentOff(10),
            scope=Scope(categories={"teaware"}),
            conditions=[MinQuantity(3), MinAmount(cny("250"))],
        )
        assert price([TEA, CUP], [promo], context()).explanation("ware").reason == "buy 1 more"
        assert price([CUP, POT], [promo], context()).explanation("ware").reason == (
            "spend 32.00 CNY more"
        )
        assert (
            status(
                price([CUP, POT, line("4", "cup2", 2, "20", "teaware")], [promo], context()), "ware"
            )
            is Status.APPLIED
        )

    def test_a_promotion_with_nothing_in_scope_says_so(self):
        promo = Promotion("pots", PercentOff(10), scope=Scope(categories={"pots"}))
        explanation = price([TEA], [promo], context()).explanation("pots")
        assert explanation.status is Status.CONDITION_UNMET
        assert explanation.reason == "nothing in the cart it covers (categories pots)"


class TestConflictResolution:
    def test_higher_priority_runs_first_and_ties_break_by_id(self):
        promotions = [
            Promotion("b", AmountOff(cny("1"))),
            Promotion("a", AmountOff(cny("1"))),
            Promotion("z", AmountOff(cny("1")), priority=5),
        ]
        result = price([CUP], promotions, context())
        assert result.applied == ("z", "a", "b")
        assert [a.promotion_id for a in result.lines[0].adjustments] == ["z", "a", "b"]

    def test_stop_after_stops_the_later_ones_of_its_stage_when_it_applies(self):
        promotions = [
            Promotion("first", PercentOff(10), priority=2, stacking=Stacking.STOP_AFTER),
            Promotion("second", PercentOff(5), priority=1),
            Promotion("order-level", AmountOff(cny("1")), stage=Stage.ORDER),
        ]
        result = price([TEA], promotions, context())
        second = result.explanation("second")
        assert (second.status, second.by) == (Status.STOPPED_BY, "first")
        assert status(result, "order-level") is Status.APPLIED

    def test_a_stop_after_that_does_not_apply_stops_nothing(self):
        promotions = [
            Promotion(
                "first",
                PercentOff(10),
                priority=2,
                stacking=Stacking.STOP_AFTER,
                conditions=[MinQuantity(10)],
            ),
            Promotion("second", PercentOff(5), priority=1),
        ]
        assert price([TEA], promotions, context()).applied == ("second",)

    def test_stop_after_in_a_group_stops_only_that_group(self):
        promotions = [
            Promotion("g-first", PercentOff(10), priority=2, stacking="stop_after", group="g"),
            Promotion("g-second", PercentOff(5), priority=1, group="g"),
            Promotion("other", PercentOff(5), priority=1),
        ]
        result = price([TEA], promotions, context())
        assert result.applied == ("g-first", "other")
        assert status(result, "g-second") is Status.STOPPED_BY

    def test_only_the_best_of_a_group_applies_and_the_others_say_why(self):
        promotions = [
            Promotion("ten-off", AmountOff(cny("10")), stacking="best_of_group", group="g"),
            Promotion("pct", PercentOff(10), stacking="best_of_group", group="g"),
            Promotion(
                "huge",
                PercentOff(90),
                stacking="best_of_group",
                group="g",
                conditions=[MinQuantity(9)],
            ),
        ]
        result = price([TEA], promotions, context())
        assert result.applied == ("pct",)
        lost = result.explanation("ten-off")
        assert (lost.status, lost.by) == (Status.LOST_TO_BETTER, "pct")
        assert lost.reason == "'pct' in group 'g' gives more (11.40 CNY against 10.00 CNY)"
        assert status(result, "huge") is Status.CONDITION_UNMET

    def test_a_best_of_group_tie_goes_to_the_higher_priority_then_the_id(self):
        promotions = [
            Promotion("b", AmountOff(cny("5")), stacking="best_of_group", group="g"),
            Promotion("a", AmountOff(cny("5")), stacking="best_of_group", group="g"),
        ]
        assert price([TEA], promotions, context()).applied == ("a",)
        promotions.append(
            Promotion("c", AmountOff(cny("5")), stacking="best_of_group", group="g", priority=1)
        )
        assert price([TEA], promotions, context()).applied == ("c",)

    def test_a_best_of_group_after_a_stop_is_stopped_whole(self):
        promotions = [
            Promotion("stop", AmountOff(cny("1")), priority=9, stacking="stop_after"),
            Promotion("a", AmountOff(cny("5")), stacking="best_of_group", group="g"),
            Promotion("b", AmountOff(cny("6")), stacking="best_of_group", group="g"),
        ]
        result = price([TEA], promotions, context())
        assert [status(result, p) for p in ("a", "b")] == [Status.STOPPED_BY] * 2

    def test_two_exclusive_promotions_never_use_one_unit(self):
        promotions = [
            Promotion("b1g1", BuyXGetY(1, 1), exclusive=True, priority=1),
            Promotion("tenth", PercentOff(10), exclusive=True),
        ]
        result = price([TEA], promotions, context())
        # b1g1 takes two of the three units; the exclusive 10 % gets only the third.
        assert [(a.promotion_id, str(a.amount)) for a in result.lines[0].adjustments] == [
            ("b1g1", "38.00 CNY"),
            ("tenth", "3.80 CNY"),
        ]

    def test_a_shared_promotion_skips_units_an_exclusive_one_took(self):
        promotions = [
            Promotion("b1g1", BuyXGetY(1, 1), exclusive=True, priority=1),
            Promotion("mj", Threshold(cny("30"), cny("10"), repeat=True)),
        ]
        result = price([TEA], promotions, context())
        assert result.explanation("mj").discount == cny("10")  # only the third unit, 38.00

    def test_an_exclusive_promotion_skips_units_another_touched(self):
        promotions = [
            Promotion("shared", AmountOff(cny("1"), per_unit=True), priority=1),
            Promotion("alone", PercentOff(50), exclusive=True),
        ]
        result = price([TEA], promotions, context())
        assert status(result, "alone") is Status.CONDITION_UNMET
        assert result.applied == ("shared",)

    def test_an_order_has_one_sales_mode(self):
        promotions = [
            Promotion(
                "flash",
                FixedPrice(cny("20")),
                stage="base_price",
                sales_mode="flash_sale",
                scope=Scope(skus={"tea"}),
            ),
            Promotion(
                "team",
                PercentOff(30),
                stage="base_price",
                sales_mode="team_purchase",
                scope=Scope(skus={"cup"}),
            ),
        ]
        result = price([TEA, CUP], promotions, context())
        assert result.sales_mode == "flash_sale"
        team = result.explanation("team")
        assert (team.status, team.by) == (Status.STOPPED_BY, "flash")
        assert "one sales mode" in team.reason


class TestLimits:
    def test_an_applied_promotion_claims_what_its_limits_count(self):
        promo = Promotion(
            "welcome",
            AmountOff(cny("10")),
            limits=[
                Limit.uses(100),
                Limit.uses_per_buyer(1),
                Limit.budget(cny("1000")),
                Limit.units(50),
            ],
        )
        result = price([TEA, CUP], [promo], context())
        assert {(c.key, c.amount, c.cap) for c in result.claims} == {
            ("welcome:uses", 1, 100),
            ("welcome:uses:buyer:alice", 1, 1),
            ("welcome:amount:CNY", 1000, 100000),
            ("welcome:units", 5, 50),
        }

    def test_a_zero_value_application_claims_no_use(self):
        promo = Promotion("ten", AmountOff(cny("10")), limits=[Limit.uses_per_buyer(1)])
        free = [line("1", "sample", 1, "0.00")]
        result = price(free, [promo], context())
        assert result.explanation("ten").status is Status.NO_VALUE
        assert result.claims == ()

    def test_a_used_up_limit_is_explained_and_claims_nothing(self):
        limit = Limit.uses_per_buyer(1)
        promo = Promotion("once", PercentOff(10), limits=[limit])
        usage = {"once:uses:buyer:alice": 1}
        explanation = price([TEA], [promo], context(usage=usage)).explanation("once")
        assert (explanation.status, explanation.limit) == (Status.LIMIT_REACHED, limit)
        assert explanation.reason == "at most 1 orders per buyer: 0 left for this order"
        other_buyer = price([TEA], [promo], context(usage=usage, buyer_id="bob"))
        assert other_buyer.applied == ("once",)

    def test_a_budget_caps_the_last_order_at_what_is_left(self):
        promo = Promotion("fund", PercentOff(50), limits=[Limit.budget(cny("100"))])
        result = price([TEA, CUP], [promo], context(usage={"fund:amount:CNY": 9000}))
        assert result.explanation("fund").discount == cny("10")
        assert sum((ln.discount for ln in result.lines), cny("0")) == cny("10")
        assert result.claims[0].amount == 1000
        exhausted = price([TEA], [promo], context(usage={"fund:amount:CNY": 10000}))
        assert status(exhausted, "fund") is Status.LIMIT_REACHED

    def test_a_budget_caps_shipping_and_cashback_too(self):
        ship = Promotion("ship", FreeShipping(), limits=[Limit.budget(cny("5"))])
        result = price([TEA], [ship], context(shipping_fee=cny("8")))
        assert result.shipping_discount == cny("5")
        back = Promotion("back", Rebate(percent=10), limits=[Limit.budget(cny("2"))])
        assert price([TEA], [back], context()).entitlements[0].amount == cny("2")

    def test_a_unit_limit_refuses_more_units_than_are_left(self):
        promo = Promotion("quota", FixedPrice(cny("20")), limits=[Limit.units(10)])
        assert status(price([TEA], [promo], context(usage={"quota:units": 7})), "quota") is (
            Status.APPLIED
        )
        assert status(price([TEA], [promo], context(usage={"quota:units": 8})), "quota") is (
            Status.LIMIT_REACHED
        )

    def test_limit_keys_lists_every_counter_pricing_reads(self):
        promo = Promotion("p", PercentOff(5), limits=[Limit.uses(3), Limit.uses_per_buyer(1)])
        coupon = Coupon("C1", Promotion("q", PercentOff(5)), max_uses=1, max_uses_per_buyer=1)
        assert limit_keys([promo, coupon, promo], "bob") == [
            "p:uses",
            "p:uses:buyer:bob",
            "coupon:C1:uses",
            "coupon:C1:uses:buyer:bob",
        ]


class TestCoupons:
    WELCOME = Promotion("welcome", AmountOff(cny("10")), conditions=[MinAmount(cny("50"))])

    def test_a_coupon_applies_and_its_code_is_on_the_explanation_and_the_lines(self):
        result = price([TEA], [Coupon("HELLO", self.WELCOME)], context())
        explanation = result.explanation("welcome")
        assert (explanation.status, explanation.code) == (Status.APPLIED, "HELLO")
        assert result.lines[0].adjustments[0].code == "HELLO"
        assert result.adjustments[0].code == "HELLO"

    def test_a_coupon_window_narrows_its_promotion(self):
        coupon = Coupon("HELLO", self.WELCOME, ends_at=NOW)
        assert status(price([TEA], [coupon], context()), "welcome") is Status.EXPIRED
        coupon = Coupon("HELLO", self.WELCOME, starts_at=NOW + timedelta(days=1))
        assert status(price([TEA], [coupon], context()), "welcome") is Status.NOT_STARTED

    def test_a_single_use_code_already_used_is_limit_reached(self):
        coupon = Coupon.single_use("ONCE", self.WELCOME)
        usage = {"coupon:ONCE:uses": 1}
        assert status(price([TEA], [coupon], context(usage=usage)), "welcome") is (
            Status.LIMIT_REACHED
        )

    def test_a_coupon_of_another_currency_is_refused(self):
        dollars = Promotion("usd", AmountOff(Money.of("5", "USD")))
        with pytest.raises(CurrencyMismatch) as caught:
            price([TEA], [Coupon("USD5", dollars)], context())
        assert (caught.value.expected, caught.value.actual) == ("CNY", "USD")

    def test_a_code_applied_twice_is_refused(self):
        coupon = Coupon("HELLO", self.WELCOME)
        with pytest.raises(InvalidInput, match="applied twice"):
            price([TEA], [coupon, coupon], context())

    def test_two_codes_of_one_promotion_are_refused(self):
        with pytest.raises(InvalidInput, match="given twice"):
            price([TEA], [Coupon("A", self.WELCOME), Coupon("B", self.WELCOME)], context())


class TestResult:
    def test_totals_add_up(self):
        promotions = [
            Promotion("ten", PercentOff(10)),
            Promotion("ship", FreeShipping(up_to=cny("3"))),
        ]
        result = price([TEA, CUP], promotions, context(shipping_fee=cny("8")))
        assert str(result.list_total) == "172.00 CNY"
        assert str(result.subtotal) == "147.60 CNY"
        assert str(result.shipping_total) == "5.00 CNY"
        assert str(result.discount_total) == "19.40 CNY"
        assert str(result.total) == "152.60 CNY"
        assert result.total == result.list_total - result.discount_total

    def test_order_lines_carry_the_discount_and_each_promotion_share(self):
        promotions = [
            Promotion("ten", PercentOff(10)),
            Promotion("mj", Threshold(cny("100"), cny("15"))),
        ]
        result = price([TEA, CUP], promotions, context())
        first, second = result.order_lines()
        assert first == OrderLine(
            "1",
            "tea",
            3,
            cny("38.00"),
            category="tea",
            adjustments=[
                LineAdjustment("ten", "item", cny("11.40")),
                LineAdjustment("mj", "order", cny("10.43")),
            ],
        )
        assert first.discount == cny("21.83")
        assert second.discount + first.discount == result.discount_total

    def test_an_explanation_for_an_unknown_promotion_is_not_found(self):
        with pytest.raises(NotFound):
            price([TEA], [], context()).explanation("nope")

    def test_nothing_applied_gives_no_terms(self):
        result = price(
            [TEA], [Promotion("later", PercentOff(5), starts_at=NOW + timedelta(1))], context()
        )
        assert result.terms() is None
        assert (
            str(result.explanations[0]) == "later: not_started: starts at 2026-05-21T10:00:00+00:00"
        )

    def test_order_lines_are_priced_for_the_merchant_in_the_context(self):
        lines = [OrderLine("1", "tea", 2, cny("38.00"), category="tea")]
        promo = Promotion("own", PercentOff(10), scope=Scope(merchants={"m-9"}))
        result = price(lines, [promo], context(merchant_id="m-9"))
        assert result.lines[0].merchant_id == "m-9"
        assert result.applied == ("own",)


class TestBadInput:
    @pytest.mark.parametrize(
        ("lines", "match"),
        [
            ([], "nothing to price"),
            ([TEA, line("1", "cup", 1, "1.00")], "unique"),
            (["tea"], "PricingLine"),
        ],
    )
    def test_malformed_lines_are_refused(self, lines, match):
        with pytest.raises(InvalidInput, match=match):
            price(lines, [], context())

    def test_lines_in_two_currencies_are_refused(self):
        dollars = PricingLine("2", "cup", 1, Money.of("1", "USD"))
        with pytest.raises(CurrencyMismatch):
            price([TEA, dollars], [], context())

    def test_a_shipping_fee_in_another_currency_is_refused(self):
        with pytest.raises(CurrencyMismatch):
            price([TEA], [], context(shipping_fee=Money.of("1", "USD")))

    @pytest.mark.parametrize(
        "bad",
        [
            {"now": datetime(2026, 1, 1)},  # noqa: DTZ001  # naive on purpose
            {"usage": {"k": -1}},
            {"usage": {"k": 1.5}},
            {"shipping_fee": cny("-1")},
            {"segments": "vip"},
            {"buyer_id": 7},
        ],
    )
    def test_a_malformed_context_is_refused(self, bad):
        with pytest.raises(InvalidInput):
            context(**bad)

    def test_a_context_is_required_and_promotions_must_be_promotions(self):
        with pytest.raises(InvalidInput):
            price([TEA], [], {"now": NOW})
        with pytest.raises(InvalidInput):
            price([TEA], ["ten"], context())

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            ({"quantity": 0}, "quantity"),
            ({"unit_price": cny("-1")}, "unit_price"),
            ({"line_id": " "}, "line_id"),
        ],
    )
    def test_a_malformed_pricing_line_is_refused(self, fields, match):
        values = {"line_id": "1", "sku": "tea", "quantity": 1, "unit_price": cny("1")} | fields
        with pytest.raises(InvalidInput, match=match):
            PricingLine(**values)


class TestDefinitionErrors:
    @pytest.mark.parametrize(
        ("build", "problem"),
        [
            (lambda: Promotion("p", PercentOff(-5)), "above 0 and at most 100"),
            (lambda: Promotion("p", PercentOff(0)), "above 0 and at most 100"),
            (lambda: Promotion("p", PercentOff("100.5")), "above 0 and at most 100"),
            (lambda: Promotion("p", PercentOff(0.5)), "not float"),
            (lambda: Promotion("p", PercentOff("ten")), "must be a number"),
            (lambda: Promotion("p", FixedPrice(cny("-1"))), "not negative"),
            (lambda: Promotion("p", AmountOff(cny("0"))), "positive Money"),
            (lambda: Promotion("p", Threshold(cny("0"), cny("5"))), "spend must be positive"),
            (lambda: Promotion("p", Threshold(cny("9"), cny("5"), max_times=2)), "repeat=True"),
            (lambda: Promotion("p", BuyXGetY(0, 1)), "buy must be an int"),
            (lambda: Promotion("p", BuyXGetY(1, 1, max_applications=0)), "max_applications"),
            (lambda: Promotion("p", Tiered([])), "at least one tier"),
            (
                lambda: Promotion("p", Tiered([Tier(3, PercentOff(5)), Tier(2, PercentOff(9))])),
                "rise strictly",
            ),
            (
                lambda: Promotion(
                    "p", Tiered([Tier(3, PercentOff(5)), Tier(cny("9"), PercentOff(9))])
                ),
                "all count money or all count units",
            ),
            (
                lambda: Promotion("p", Tiered([Tier(3, AmountOff(cny("1"), per_unit=True))])),
                "once-per-order",
            ),
            (lambda: Promotion("p", FreeShipping(up_to=cny("0"))), "up_to"),
            (lambda: Promotion("p", Rebate()), "either a percent or an amount"),
            (lambda: Promotion("p", Rebate(amount=cny("-1"))), "Rebate amount"),
            (lambda: Promotion("p", Rebate(percent=200)), "at most 100"),
            (lambda: Promotion("p", Points(cny("1"), points=0)), "Points points"),
            (lambda: Promotion("p", "ten percent"), "is not a benefit"),
            (lambda: Promotion(" ", PercentOff(5)), "non-empty"),
            (lambda: Promotion("p", PercentOff(5), stage="shipping"), "cannot run at the shipping"),
            (lambda: Promotion("p", PercentOff(5), stage="later"), "is not a stage"),
            (lambda: Promotion("p", FixedPrice(cny("1")), stage="base_price"), "sales mode"),
            (lambda: Promotion("p", PercentOff(5), sales_mode="flash_sale"), "sales mode"),
            (lambda: Promotion("p", PercentOff(5), scope="tea"), "is not a Scope"),
            (
                lambda: Promotion("p", PercentOff(5), scope=Scope(skus={"a"}, exclude_skus={"a"})),
                "covers nothing",
            ),
            (lambda: Promotion("p", PercentOff(5), conditions=["vip"]), "is not a condition"),
            (lambda: Promotion("p", PercentOff(5), conditions=[MinQuantity(0)]), "MinQuantity"),
            (lambda: Promotion("p", PercentOff(5), conditions=[MinAmount(cny("0"))]), "MinAmount"),
            (lambda: Promotion("p", PercentOff(5), conditions=[BuyerIn(())]), "no segment"),
            (
                lambda: Promotion("p", PercentOff(5), starts_at=NOW, ends_at=NOW),
                "must end after it starts (2026-05-20 10:00:00+00:00), not at 2026-05-20",
            ),
            (
                lambda: Promotion("p", PercentOff(5), starts_at=datetime(2026, 1, 1)),  # noqa: DTZ001
                "timezone-aware",
            ),
            (lambda: Promotion("p", PercentOff(5), priority="high"), "priority"),
            (lambda: Promotion("p", PercentOff(5), stacking="best_of_group"), "needs a group"),
            (lambda: Promotion("p", PercentOff(5), limits=["once"]), "is not a Limit"),
            (
                lambda: Promotion(
                    "p", AmountOff(Money.of("1", "USD")), conditions=[MinAmount(cny("9"))]
                ),
                "mixes currencies: CNY, USD",
            ),
            (
                lambda: Promotion("p", Points(cny("1")), limits=[Limit.budget(cny("9"))]),
                "points are not money",
            ),
            (
                lambda: Promotion("p", BuyXGetY(2, 1), limits=[Limit.units_per_buyer(2)]),
                "it needs 3 units but its limits allow 2",
            ),
            (
                lambda: Promotion(
                    "p", PercentOff(5), conditions=[MinQuantity(5)], limits=[Limit.units(4)]
                ),
                "can never be met",
            ),
            (
                lambda: Promotion("p", Tiered([Tier(6, PercentOff(5))]), limits=[Limit.units(4)]),
                "can never be met",
            ),
        ],
    )
    def test_a_bad_promotion_is_refused_when_built(self, build, problem):
        with pytest.raises(DefinitionError) as caught:
            build()
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    def test_every_problem_is_listed_at_once(self):
        with pytest.raises(DefinitionError) as caught:
            Promotion(
                "p",
                PercentOff(150),
                stage="shipping",
                stacking="best_of_group",
                conditions=[MinQuantity(0)],
            )
        assert len(caught.value.problems) == 4

    @pytest.mark.parametrize(
        ("build", "problem"),
        [
            (lambda: Coupon("", Promotion("p", PercentOff(5))), "non-empty"),
            (lambda: Coupon("C", "p"), "is not a Promotion"),
            (lambda: Coupon("C", Promotion("p", PercentOff(5)), max_uses=0), "max_uses"),
            (
                lambda: Coupon(
                    "C",
                    Promotion("p", PercentOff(5), ends_at=NOW),
                    starts_at=NOW + timedelta(days=1),
                ),
                "never overlaps",
            ),
        ],
    )
    def test_a_bad_coupon_is_refused_when_built(self, build, problem):
        with pytest.raises(DefinitionError) as caught:
            build()
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    def test_percentages_are_exact_decimals(self):
        assert PercentOff("12.5").percent == Decimal("12.5")
        assert PercentOff(10) == PercentOff("10")
        assert Promotion("p", PercentOff("33.3")).benefit.rate == Decimal("0.333")

    def test_benefits_and_promotions_describe_themselves(self):
        described = [
            Promotion("a", PercentOff(15), scope=Scope(categories={"tea"})).describe(),
            AmountOff(cny("5"), per_unit=True).describe(),
            FixedPrice(cny("9.90")).describe(),
            BuyXGetY(2, 1).describe(),
            BuyXGetY(1, 1, percent=50).describe(),
            Threshold(cny("100"), cny("15"), repeat=True).describe(),
            Tiered([Tier(2, PercentOff(5))]).describe(),
            FreeShipping().describe(),
            FreeShipping(up_to=cny("6")).describe(),
            Rebate(percent=3).describe(),
            Rebate(amount=cny("2")).describe(),
            Points(cny("1")).describe(),
            Scope(skus={"a"}, merchants={"m"}).describe(),
        ]
        assert described == [
            "15% off on categories tea",
            "5.00 CNY off each unit",
            "9.90 CNY each",
            "buy 2 get 1 free",
            "buy 1 get 1 50% off",
            "15.00 CNY off every 100.00 CNY spent",
            "from 2: 5% off",
            "free shipping",
            "up to 6.00 CNY off shipping",
            "3% cashback",
            "2.00 CNY cashback",
            "1 points per 1.00 CNY",
            "SKUs a and merchants m",
        ]


class TestSmallPrints:
    def test_a_scope_given_one_name_as_a_string_means_that_name(self):
        assert Scope(skus="tea") == Scope(skus={"tea"})

    def test_a_scope_that_only_excludes_covers_everything_else(self):
        promo = Promotion("not-pots", PercentOff(10), scope=Scope(exclude_skus={"pot"}))
        result = price([TEA, POT], [promo], context())
        assert discounts(result) == {"1": "11.40 CNY", "3": "0.00 CNY"}

    def test_a_shortfall_reads_as_what_to_do(self):
        assert str(Shortfall(units=2)) == "buy 2 more"
        assert str(Shortfall(amount=cny("12"))) == "spend 12.00 CNY more"

    def test_a_pricing_line_knows_its_list_amount(self):
        assert TEA.list_amount == cny("114")

    def test_tiers_and_free_units_check_their_own_parts(self):
        with pytest.raises(DefinitionError, match="is not a Tier"):
            Promotion("t", Tiered([(2, PercentOff(5))]))
        with pytest.raises(DefinitionError, match="at most 100"):
            Promotion("b", BuyXGetY(1, 1, percent=150))
