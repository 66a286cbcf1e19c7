"""Limits as reservations: the rules, their counters and claims, and what orders store of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecommerce_core import CurrencyMismatch, DefinitionError, InvalidInput, Money
from ecommerce_core.limits import (
    PROMOTION_HOLD_PROCESS,
    HoldState,
    Limit,
    LimitClaim,
    Measure,
    StockTiming,
    check_claims,
)
from ecommerce_core.orders import LineAdjustment, Order, OrderLine, PricingTerms
from ecommerce_core.policies import OrderPolicy, PricingPolicy, Recheck
from ecommerce_core.processes import PROCESSES

NOW = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)


def cny(amount):
    return Money.of(amount, "CNY")


class TestLimitRules:
    @pytest.mark.parametrize(
        ("limit", "key", "described"),
        [
            (Limit.uses(100), "p:uses", "at most 100 orders in total"),
            (Limit.uses_per_buyer(1), "p:uses:buyer:alice", "at most 1 orders per buyer"),
            (Limit.budget(cny("500")), "p:amount:CNY", "a budget of 500.00 CNY"),
            (Limit.units(30), "p:units", "at most 30 units in total"),
            (
                Limit.units_per_buyer(2, namespace="sale"),
                "sale:units:buyer:alice",
                "at most 2 units per buyer",
            ),
            (
                Limit.unpaid_orders_per_buyer(namespace="sale"),
                "sale:uses:buyer:alice:unpaid",
                "at most 1 unpaid orders per buyer at a time",
            ),
        ],
    )
    def test_each_rule_has_its_counter_and_says_what_it_allows(self, limit, key, described):
        assert limit.key("p", buyer_id="alice") == key
        assert limit.describe() == described

    def test_a_claim_takes_what_its_measure_counts(self):
        counted = {"uses": 1, "units": 3, "discount": 750}
        assert [
            limit.claim("p", buyer_id="b", **counted).amount
            for limit in (Limit.uses(9), Limit.units(9), Limit.budget(cny("9")))
        ] == [1, 3, 750]
        claim = Limit.units(9, at_payment=True).claim("p", buyer_id="b", **counted)
        assert (claim.at_payment, claim.until_paid, claim.cap) == (True, False, 9)

    def test_what_is_left_follows_the_usage_and_never_goes_below_zero(self):
        limit = Limit.uses_per_buyer(2)
        assert limit.remaining("p", "alice", {"p:uses:buyer:alice": 1}) == 1
        assert limit.remaining("p", "alice", {"p:uses:buyer:alice": 5}) == 0
        assert limit.remaining("p", "bob", {"p:uses:buyer:alice": 5}) == 2

    def test_a_budget_knows_its_amount(self):
        assert Limit.budget(cny("12.50")).budget_amount == cny("12.50")
        assert Limit.uses(1).budget_amount is None

    @pytest.mark.parametrize(
        ("build", "problem"),
        [
            (lambda: Limit.uses(0), "at least 1"),
            (lambda: Limit.units(cap=True), "at least 1"),
            (lambda: Limit(Measure.AMOUNT, 5), "needs a currency"),
            (lambda: Limit(Measure.USES, 5, currency="CNY"), "needs a currency"),
            (lambda: Limit.budget(500), "must be Money"),
            (lambda: Limit(Measure.UNITS, 1, until_paid=True, at_payment=True), "cannot also"),
        ],
    )
    def test_a_bad_limit_is_refused_when_built(self, build, problem):
        with pytest.raises(DefinitionError) as caught:
            build()
        assert any(problem in p for p in caught.value.problems)


class TestClaims:
    @pytest.mark.parametrize(
        "fields",
        [
            {"key": "", "amount": 1, "cap": 1},
            {"key": "k", "amount": 0, "cap": 1},
            {"key": "k", "amount": 1, "cap": -1},
            {"key": "k", "amount": 1.0, "cap": 1},
        ],
    )
    def test_a_malformed_claim_is_refused(self, fields):
        with pytest.raises(InvalidInput):
            LimitClaim(**fields)

    def test_the_smallest_claim_is_one_against_a_cap_of_zero_held_at_order_until_released(self):
        claim = LimitClaim("k", 1, 0)
        assert (claim.amount, claim.cap, claim.until_paid, claim.at_payment) == (1, 0, False, False)

    @pytest.mark.parametrize(
        "limit", [Limit.units(5), Limit.units_per_buyer(5), Limit.uses(5), Limit.budget(cny("5"))]
    )
    def test_a_limit_is_taken_at_order_and_kept_after_payment_unless_told(self, limit):
        claim = limit.claim("p", buyer_id="b", uses=1, units=1, discount=1)
        assert (limit.at_payment, claim.at_payment, claim.until_paid) == (False, False, False)

    def test_claims_are_summed_per_key(self):
        totals = check_claims([LimitClaim("a", 1, 5), LimitClaim("b", 2, 3), LimitClaim("a", 2, 5)])
        assert totals == {"a": (3, 5), "b": (2, 3)}

    @pytest.mark.parametrize("claims", [[], ["a"], [LimitClaim("a", 1, 5), LimitClaim("a", 1, 6)]])
    def test_claims_without_a_claim_or_with_two_caps_for_a_key_are_refused(self, claims):
        with pytest.raises(InvalidInput):
            check_claims(claims)

    def test_the_hold_process_is_registered_and_ends_in_released(self):
        assert PROCESSES["promotion.hold"] is PROMOTION_HOLD_PROCESS
        assert PROMOTION_HOLD_PROCESS.fire(HoldState.RESERVED, "commit") == HoldState.COMMITTED
        assert PROMOTION_HOLD_PROCESS.fire(HoldState.COMMITTED, "release") == HoldState.RELEASED
        assert PROMOTION_HOLD_PROCESS.final_states == {HoldState.RELEASED}


class TestWhatOrdersStore:
    def test_a_lines_discount_is_the_sum_of_its_adjustments_when_omitted(self):
        line = OrderLine(
            "1",
            "tea",
            2,
            cny("38"),
            adjustments=[
                LineAdjustment("a", "item", cny("3.00")),
                LineAdjustment("b", "order", cny("1.50"), code="HI"),
            ],
        )
        assert (line.discount, line.amount) == (cny("4.50"), cny("71.50"))

    @pytest.mark.parametrize(
        ("fields", "error"),
        [
            (
                {"discount": cny("4"), "adjustments": [LineAdjustment("a", "item", cny("3"))]},
                InvalidInput,
            ),
            (
                {"adjustments": [LineAdjustment("a", "item", Money.of("3", "USD"))]},
                CurrencyMismatch,
            ),
            ({"adjustments": ["a"]}, InvalidInput),
            ({"adjustments": [LineAdjustment("a", "item", cny("80"))]}, InvalidInput),
        ],
    )
    def test_adjustments_that_do_not_add_up_to_a_valid_discount_are_refused(self, fields, error):
        with pytest.raises(error):
            OrderLine("1", "tea", 2, cny("38"), **fields)

    @pytest.mark.parametrize(
        "fields",
        [
            {"promotion_id": "", "stage": "item", "amount": Money.of("1", "CNY")},
            {"promotion_id": "a", "stage": " ", "amount": Money.of("1", "CNY")},
            {"promotion_id": "a", "stage": "item", "amount": Money.of("0", "CNY")},
            {"promotion_id": "a", "stage": "item", "amount": 1},
        ],
    )
    def test_a_malformed_adjustment_is_refused(self, fields):
        with pytest.raises(InvalidInput):
            LineAdjustment(**fields)

    def test_terms_split_the_claims_taken_at_order_and_at_payment(self):
        at_order, at_payment = LimitClaim("q", 1, 5), LimitClaim("r", 2, 5, at_payment=True)
        terms = PricingTerms("rush_purchase", "on_payment", [at_order, at_payment])
        assert terms.stock_timing is StockTiming.ON_PAYMENT
        assert (terms.order_claims, terms.payment_claims) == ((at_order,), (at_payment,))

    def test_an_order_without_terms_is_an_ordinary_sale(self):
        order = Order.place(
            order_id="o-1",
            buyer_id="b",
            merchant_id="m",
            lines=[OrderLine("1", "tea", 1, cny("38"))],
            now=NOW,
            policy=OrderPolicy(),
        )
        assert (order.terms, order.sales_mode) == (None, "standard")

    def test_terms_must_be_pricing_terms(self):
        with pytest.raises(InvalidInput):
            Order.place(
                order_id="o-1",
                buyer_id="b",
                merchant_id="m",
                lines=[OrderLine("1", "tea", 1, cny("38"))],
                now=NOW,
                policy=OrderPolicy(),
                terms={"sales_mode": "flash_sale"},
            )

    def test_the_pricing_policy_defaults_honour_the_price_and_give_limits_back(self):
        assert PricingPolicy() == PricingPolicy(Recheck.HONOUR_UNTIL_DEADLINE)
        assert PricingPolicy("require_active").recheck_at_payment is Recheck.REQUIRE_ACTIVE
