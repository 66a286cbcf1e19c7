"""Pricing at checkout: promotions and coupons per merchant order, limits held and given back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import (
    Actor,
    CartItem,
    CurrencyMismatch,
    InvalidInput,
    LimitExceeded,
    Money,
    NotFound,
    OutOfStock,
)
from ecommerce_core.demo import demo_service
from ecommerce_core.errors import PromotionRefused
from ecommerce_core.limits import Limit
from ecommerce_core.orders import Entitlement
from ecommerce_core.promotions import (
    AmountOff,
    BuyerIn,
    Coupon,
    MinAmount,
    PercentOff,
    Points,
    Promotion,
    Rebate,
    Scope,
    Threshold,
)

ALICE, BOB = Actor.buyer("alice"), Actor.buyer("bob")
TEAHOUSE, POTTERY = Actor.merchant("m-teahouse"), Actor.merchant("m-pottery")
START = demo_service()[1].now()


def cny(amount):
    return Money.of(amount, "CNY")


def world(*items, stock=10):
    return demo_service(stock=stock, promotions=list(items))


def held(service, *keys):
    return dict(service.promotion_ledger.usage(keys))


def adjustments(order):
    return {
        line.sku: [(a.promotion_id, str(a.amount), a.code) for a in line.adjustments]
        for line in order.lines
    }


TEA_TEN = Promotion("tea-ten", PercentOff(10), scope=Scope(merchants={"m-teahouse"}))
WELCOME = Promotion(
    "welcome",
    AmountOff(cny("20")),
    conditions=[MinAmount(cny("100"))],
    limits=[Limit.uses_per_buyer(1), Limit.budget(cny("1000"))],
)
SPEND_200 = Promotion("spend-200", Threshold(cny("200"), cny("30")))


class TestPricedCheckout:
    def test_a_service_without_promotions_checks_out_at_list_prices(self):
        service, _ = demo_service()
        (order,) = service.checkout(ALICE, [CartItem("tea-01", 2)])
        assert (order.total, order.terms, order.lines[0].adjustments) == (cny("76"), None, ())

    def test_no_promotion_that_applies_leaves_the_order_ordinary(self):
        service, _ = world(SPEND_200)
        (order,) = service.checkout(ALICE, [CartItem("tea-01", 2)])
        assert (order.total, order.terms, order.sales_mode) == (cny("76"), None, "standard")

    def test_each_merchants_order_gets_its_own_promotions_and_the_split_on_its_lines(self):
        service, _ = world(TEA_TEN, SPEND_200)
        cups, teahouse = service.checkout(
            ALICE, [CartItem("tea-01", 2), CartItem("pot-01", 1), CartItem("cup-01", 2)]
        )
        assert (cups.merchant_id, cups.total, cups.terms) == ("m-pottery", cny("50"), None)
        assert teahouse.total == cny("189.60")  # 244.00 - 24.40 (10 %) - 30.00 (满减)
        assert adjustments(teahouse) == {
            "tea-01": [("tea-ten", "7.60 CNY", ""), ("spend-200", "9.34 CNY", "")],
            "pot-01": [("tea-ten", "16.80 CNY", ""), ("spend-200", "20.66 CNY", "")],
        }
        assert teahouse.terms.promotion_ids == ("tea-ten", "spend-200")
        stored = service.orders.get(teahouse.id)
        assert stored.lines == teahouse.lines
        assert stored.terms == teahouse.terms

    def test_a_coupon_goes_to_the_first_order_where_it_applies(self):
        service, _ = world(Coupon("HELLO", WELCOME))
        orders = service.checkout(
            ALICE, [CartItem("cup-01", 1), CartItem("pot-01", 1)], coupon_codes=["HELLO"]
        )
        by_merchant = {o.merchant_id: o for o in orders}
        assert by_merchant["m-pottery"].total == cny("25")  # 25.00 is below the 100.00 needed
        assert by_merchant["m-teahouse"].total == cny("148")
        assert adjustments(by_merchant["m-teahouse"]) == {
            "pot-01": [("welcome", "20.00 CNY", "HELLO")]
        }
        assert held(service, "welcome:uses:buyer:alice", "welcome:amount:CNY") == {
            "welcome:uses:buyer:alice": 1,
            "welcome:amount:CNY": 2000,
        }

    def test_a_coupon_that_applies_to_no_order_refuses_the_checkout_and_holds_nothing(self):
        service, _ = world(Coupon("HELLO", WELCOME))
        with pytest.raises(PromotionRefused) as caught:
            service.checkout(
                ALICE, [CartItem("cup-01", 1), CartItem("tea-01", 1)], coupon_codes=["HELLO"]
            )
        error = caught.value
        assert (error.code, error.status, error.command) == ("HELLO", "condition_unmet", "checkout")
        assert error.reason == "spend 62.00 CNY more"
        assert str(error) == "coupon 'HELLO' cannot be used: spend 62.00 CNY more"
        assert len(service.orders) == 0
        assert service.inventory.reserved("tea-01") == 0
        assert held(service, "welcome:uses:buyer:alice") == {"welcome:uses:buyer:alice": 0}

    def test_an_expired_coupon_is_refused(self):
        expired = Coupon("OLD", WELCOME, ends_at=START)
        service, _ = world(expired)
        with pytest.raises(PromotionRefused) as caught:
            service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["OLD"])
        assert caught.value.status == "expired"

    def test_a_single_use_coupon_used_by_another_order_is_refused(self):
        service, _ = world(Coupon.single_use("ONCE", Promotion("once", AmountOff(cny("5")))))
        service.checkout(BOB, [CartItem("pot-01", 1)], coupon_codes=["ONCE"])
        with pytest.raises(PromotionRefused) as caught:
            service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["ONCE"])
        assert caught.value.status == "limit_reached"

    @pytest.mark.parametrize(
        ("codes", "error"),
        [
            (["HELLO", "HELLO"], InvalidInput),
            (["NOPE"], NotFound),
            ("HELLO", InvalidInput),
            ([""], InvalidInput),
            (["DOLLARS"], CurrencyMismatch),
        ],
    )
    def test_bad_codes_are_refused_and_nothing_is_held(self, codes, error):
        dollars = Coupon("DOLLARS", Promotion("usd", AmountOff(Money.of("5", "USD"))))
        service, _ = world(Coupon("HELLO", WELCOME), dollars)
        with pytest.raises(error):
            service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=codes)
        assert (len(service.orders), service.inventory.reserved("pot-01")) == (0, 0)

    def test_coupon_codes_need_a_promotion_catalogue(self):
        service, _ = demo_service()
        with pytest.raises(InvalidInput, match="no promotion catalogue"):
            service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["HELLO"])

    def test_of_two_codes_competing_for_one_group_the_loser_is_refused(self):
        best = {"stacking": "best_of_group", "group": "coupons", "stage": "order"}
        small = Coupon("SMALL", Promotion("small", AmountOff(cny("5")), **best))
        large = Coupon("LARGE", Promotion("large", AmountOff(cny("9")), **best))
        service, _ = world(small, large)
        with pytest.raises(PromotionRefused) as caught:
            service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["SMALL", "LARGE"])
        assert (caught.value.code, caught.value.status) == ("SMALL", "lost_to_better")

    def test_segments_given_at_checkout_unlock_member_promotions(self):
        members = Promotion("members", PercentOff(5), conditions=[BuyerIn({"plus"})])
        service, _ = world(members)
        (plain,) = service.checkout(ALICE, [CartItem("pot-01", 1)])
        (member,) = service.checkout(BOB, [CartItem("pot-01", 1)], segments=["plus"])
        assert (plain.total, member.total) == (cny("168"), cny("159.60"))

    def test_a_checkout_short_of_stock_holds_no_limit(self):
        service, _ = world(WELCOME, stock=1)
        with pytest.raises(OutOfStock):
            service.checkout(ALICE, [CartItem("pot-01", 2)])
        assert held(service, "welcome:uses:buyer:alice") == {"welcome:uses:buyer:alice": 0}

    def test_a_limit_that_runs_out_while_placing_refuses_and_releases_everything(self):
        service, _ = world(Promotion("last", AmountOff(cny("5")), limits=[Limit.uses(1)]))
        real = service.promotion_ledger

        class Racing:  # another checkout takes the last use between pricing and reserving
            def usage(self, keys):
                return real.usage(keys)

            def reserve(self, reservation_id, claims):
                real.reserve("elsewhere", claims)
                real.reserve(reservation_id, claims)

            def release(self, reservation_id):
                return real.release(reservation_id)

        service.promotion_ledger = Racing()
        with pytest.raises(LimitExceeded):
            service.checkout(ALICE, [CartItem("pot-01", 1)])
        assert service.inventory.reserved("pot-01") == 0
        assert len(service.orders) == 0


class TestLimitsOnEveryPath:
    def test_a_platform_promotion_limited_per_buyer_goes_to_one_order_of_a_checkout(self):
        once = Promotion("first-order", AmountOff(cny("5")), limits=[Limit.uses_per_buyer(1)])
        service, _ = world(once)
        cups, teahouse = service.checkout(ALICE, [CartItem("cup-01", 1), CartItem("pot-01", 1)])
        assert (cups.total, teahouse.total) == (cny("20"), cny("168"))
        assert held(service, "first-order:uses:buyer:alice") == {"first-order:uses:buyer:alice": 1}

    def test_placing_reserves_the_limits_and_paying_commits_them(self):
        service, _ = world(WELCOME)
        (order,) = service.checkout(ALICE, [CartItem("pot-01", 1)])
        assert service.promotion_ledger.state(order.id) == "reserved"
        service.pay(order.id, ALICE)
        assert service.promotion_ledger.state(order.id) == "committed"
        assert held(service, "welcome:uses:buyer:alice") == {"welcome:uses:buyer:alice": 1}
        (again,) = service.checkout(ALICE, [CartItem("pot-01", 1)])
        assert again.total == cny("168")  # used once: the next order pays full price

    @pytest.mark.parametrize("path", ["timeout", "buyer cancels", "merchant cancels after payment"])
    def test_every_abandon_path_gives_the_coupon_use_back_exactly_once(self, path):
        service, clock = world(Coupon.single_use("ONCE", WELCOME))
        (order,) = service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["ONCE"])
        keys = ("coupon:ONCE:uses", "welcome:uses:buyer:alice", "welcome:amount:CNY")
        assert held(service, *keys) == dict(zip(keys, (1, 1, 2000), strict=True))
        if path == "timeout":
            clock.advance(timedelta(minutes=30))
            service.expire_due()
            service.expire_due()
        elif path == "buyer cancels":
            service.cancel(order.id, ALICE, "changed my mind")
        else:
            service.pay(order.id, ALICE)
            service.cancel(order.id, TEAHOUSE, "out of glaze")
        assert held(service, *keys) == dict.fromkeys(keys, 0)
        assert service.promotion_ledger.state(order.id) == "released"
        (again,) = service.checkout(ALICE, [CartItem("pot-01", 1)], coupon_codes=["ONCE"])
        assert again.total == cny("148")

    def test_a_zero_value_application_does_not_use_up_a_promotion(self):
        free_sample = Promotion(
            "five-off-cups",
            AmountOff(cny("5")),
            scope=Scope(skus={"cup-01"}),
            conditions=[MinAmount(cny("100"))],
            limits=[Limit.uses_per_buyer(1)],
        )
        service, _ = world(free_sample)
        (order,) = service.checkout(ALICE, [CartItem("cup-01", 1)])
        assert order.terms is None
        assert held(service, "five-off-cups:uses:buyer:alice") == {
            "five-off-cups:uses:buyer:alice": 0
        }

    def test_the_allocation_stored_at_placement_is_what_stays_on_the_lines(self):
        service, _ = world(SPEND_200)
        (order,) = service.checkout(ALICE, [CartItem("tea-01", 2), CartItem("pot-01", 1)])
        placed = service.orders.get(order.id).lines
        service.pay(order.id, ALICE)
        service.cancel(order.id, TEAHOUSE, "out of stock")
        cancelled = service.orders.get(order.id)
        assert cancelled.lines == placed  # refunds reverse what was stored, never re-prorated
        assert sum((ln.discount for ln in cancelled.lines), cny("0")) == cny("30")
        assert all(
            ln.discount == sum((a.amount for a in ln.adjustments), cny("0"))
            for ln in cancelled.lines
        )


class TestEntitlements:
    def test_rebates_and_points_are_kept_on_the_order_for_later_granting(self):
        service, _ = world(
            Promotion("cashback", Rebate(percent=2)), Promotion("points", Points(cny("10")))
        )
        (order,) = service.checkout(ALICE, [CartItem("pot-01", 1)])
        assert order.total == cny("168")
        assert service.orders.get(order.id).terms.entitlements == (
            Entitlement("cashback", "rebate", cny("3.36")),
            Entitlement("points", "points", points=16),
        )
