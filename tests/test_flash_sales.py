"""Flash sales (秒杀) and rush purchases (抢购): sessions, quotas, limits, payment, release.

Test names follow the pitfalls in ``research/sales-modes-rules.md`` §1-2 where one applies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from ecommerce_core import (
    Actor,
    DefinitionError,
    InvalidInput,
    LimitExceeded,
    Money,
    NotFound,
    OrderPolicy,
    OutOfStock,
    PaymentNotCompleted,
    VersionConflict,
)
from ecommerce_core.adapters.memory import ScriptedPaymentGateway
from ecommerce_core.campaigns import (
    FLASH_SALE,
    RUSH_PURCHASE,
    FlashItem,
    FlashSale,
    RushItem,
    RushPurchase,
    Session,
    daily_sessions,
)
from ecommerce_core.demo import demo_service
from ecommerce_core.errors import PromotionRefused
from ecommerce_core.limits import StockTiming
from ecommerce_core.policies import PricingPolicy, Recheck
from ecommerce_core.ports import GatewayStatus
from ecommerce_core.promotions import PricingContext, PricingLine, Status, limit_keys, price

DAY = date(2026, 1, 1)  # the demo clock starts at 2026-01-01 09:00 UTC
TEN, NOON = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)
ALICE, BOB, CAROL = Actor.buyer("alice"), Actor.buyer("bob"), Actor.buyer("carol")
TEAHOUSE = Actor.merchant("m-teahouse")


def cny(amount):
    return Money.of(amount, "CNY")


def flash_sale(*, quota=5, per_buyer=2, starts=(time(10),), timeout=timedelta(minutes=15)):
    return FlashSale(
        "618",
        daily_sessions(DAY, starts, timedelta(hours=2), UTC),
        [FlashItem("tea-01", cny("38.00"), cny("19.90"), quota, per_buyer)],
        payment_timeout=timeout,
    )


def rush_purchase(*, quantity=3, per_buyer=2, timing=StockTiming.ON_PAYMENT):
    return RushPurchase(
        "rush",
        TEN,
        NOON,
        [RushItem("cup-01", cny("25.00"), cny("9.90"), quantity, per_buyer)],
        stock_timing=timing,
    )


def world(*campaigns, stock=10, at=TEN, pricing_policy=None, payments=None):
    service, clock = demo_service(stock=stock, promotions=campaigns or [flash_sale()])
    if pricing_policy is not None:
        service.pricing_policy = pricing_policy
    if payments is not None:
        service.payments = payments
    clock.advance(at - clock.now())
    return service, clock


def held(service, *keys):
    return dict(service.promotion_ledger.usage(keys))


def stock(service, sku="tea-01"):
    inventory = service.inventory
    return inventory.on_hand(sku), inventory.reserved(sku), inventory.available(sku)


QUOTA = "618:20260101-1000:tea-01:units"
ALICE_UNITS = "618:tea-01:units:buyer:alice"
ALICE_UNPAID = "618:tea-01:uses:buyer:alice:unpaid"


class TestSessions:
    def test_daily_sessions_are_slots_at_the_same_times_every_day(self):
        sessions = daily_sessions(DAY, [time(12), time(10)], timedelta(hours=2), UTC, days=2)
        assert [str(s) for s in sessions] == [
            "2026-01-01 10:00-12:00",
            "2026-01-01 12:00-14:00",
            "2026-01-02 10:00-12:00",
            "2026-01-02 12:00-14:00",
        ]

    def test_a_10_to_12_session_sells_until_just_before_12(self):
        sale = flash_sale()
        assert sale.session_at(TEN).id == "20260101-1000"
        assert sale.session_at(NOON - timedelta(microseconds=1)).id == "20260101-1000"
        promotion = sale.offer("tea-01", NOON - timedelta(seconds=1))
        assert promotion.ends_at == NOON

    def test_a_10_to_12_session_does_not_sell_at_12(self):
        sale = flash_sale()
        assert sale.session_at(NOON) is None
        with pytest.raises(PromotionRefused) as caught:
            sale.offer("tea-01", NOON)
        assert caught.value.status == "expired"
        service, _ = world(sale, at=NOON)
        with pytest.raises(PromotionRefused):
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        assert len(service.orders) == 0

    def test_a_10_to_12_session_does_not_sell_at_12_59_either(self):
        with pytest.raises(PromotionRefused):
            flash_sale().offer("tea-01", NOON + timedelta(minutes=59))

    def test_at_12_the_next_session_sells_with_its_own_quota(self):
        sale = flash_sale(starts=(time(10), time(12)), quota=1)
        promotion = sale.offer("tea-01", NOON)
        assert promotion.id == "618:20260101-1200:tea-01"
        service, clock = world(sale, at=NOON - timedelta(minutes=1))
        service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        with pytest.raises(OutOfStock):
            service.buy_in_campaign(BOB, "618", "tea-01", 1)
        clock.advance(timedelta(minutes=1))
        assert service.buy_in_campaign(BOB, "618", "tea-01", 1).sales_mode == FLASH_SALE

    def test_before_and_between_sessions_the_refusal_names_the_next_session(self):
        sale = flash_sale(starts=(time(10), time(14)))
        for moment in (TEN - timedelta(hours=1), NOON + timedelta(minutes=30)):
            with pytest.raises(PromotionRefused) as caught:
                sale.offer("tea-01", moment)
            assert caught.value.status == "not_started"
            assert "the next one is 2026-01-01" in caught.value.reason

    def test_a_sku_the_sale_does_not_sell_is_not_found(self):
        with pytest.raises(NotFound):
            flash_sale().offer("cup-01", TEN)


class TestDefinitions:
    @pytest.mark.parametrize(
        ("build", "problem"),
        [
            (lambda: Session("s", NOON, TEN), "before it starts"),
            (lambda: Session("", TEN, NOON), "needs an id"),
            (lambda: Session("s", datetime(2026, 1, 1), NOON), "timezone-aware"),  # noqa: DTZ001
            (lambda: FlashSale("f", [], [FlashItem("a", cny("2"), cny("1"), 1, 1)]), "no session"),
            (
                lambda: FlashSale(
                    "f", daily_sessions(DAY, [time(10)], timedelta(hours=1), UTC), []
                ),
                "sells no item",
            ),
            (
                lambda: FlashSale(
                    "f",
                    daily_sessions(DAY, [time(10), time(11)], timedelta(hours=2), UTC),
                    [FlashItem("a", cny("2"), cny("1"), 1, 1)],
                ),
                "overlap",
            ),
            (
                lambda: FlashSale(
                    "f",
                    [Session("s", TEN, NOON), Session("s", NOON, NOON + timedelta(hours=1))],
                    [FlashItem("a", cny("2"), cny("1"), 1, 1)],
                ),
                "session id is used twice",
            ),
            (
                lambda: FlashSale(
                    "f", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), cny("3"), 1, 1)]
                ),
                "must be below the list price 2.00 CNY, not above",
            ),
            (
                lambda: FlashSale(
                    "f", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), cny("2"), 1, 1)]
                ),
                "must be below the list price",
            ),
            (
                lambda: FlashSale(
                    "f",
                    [Session("s", TEN, NOON)],
                    [FlashItem("a", cny("2"), Money.of("1", "USD"), 1, 1)],
                ),
                "different currencies",
            ),
            (
                lambda: FlashSale(
                    "f", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), 1, 1, 1)]
                ),
                "must be Money",
            ),
            (
                lambda: FlashSale(
                    "f", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), cny("1"), 0, 1)]
                ),
                "quota must be an int of at least 1",
            ),
            (
                lambda: FlashSale(
                    "f", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), cny("1"), 3, 0)]
                ),
                "per_buyer must be an int of at least 1",
            ),
            (
                lambda: FlashSale(
                    "f",
                    [Session("s", TEN, NOON)],
                    [FlashItem("a", cny("2"), cny("1"), 1, 1)] * 2,
                ),
                "listed twice",
            ),
            (
                lambda: FlashSale(
                    "f",
                    [Session("s", TEN, NOON)],
                    [FlashItem("a", cny("2"), cny("1"), 1, 1)],
                    payment_timeout=timedelta(0),
                ),
                "payment timeout",
            ),
            (
                lambda: FlashSale(
                    " ", [Session("s", TEN, NOON)], [FlashItem("a", cny("2"), cny("1"), 1, 1)]
                ),
                "needs an id",
            ),
            (
                lambda: RushPurchase("r", NOON, TEN, [RushItem("a", cny("2"), cny("1"), 1, 1)]),
                "before it starts",
            ),
            (
                lambda: RushPurchase("r", TEN, NOON, [RushItem("a", cny("2"), cny("5"), 1, 1)]),
                "not above",
            ),
            (
                lambda: RushPurchase("r", TEN, NOON, [RushItem("a", cny("2"), cny("1"), 0, 1)]),
                "quantity",
            ),
            (
                lambda: RushPurchase("", TEN, NOON, [RushItem("a", cny("2"), cny("1"), 1, 1)]),
                "needs an id",
            ),
        ],
    )
    def test_a_bad_campaign_is_refused_when_built(self, build, problem):
        with pytest.raises(DefinitionError) as caught:
            build()
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    def test_flash_and_rush_orders_are_not_offered_cash_on_delivery(self):
        assert (FlashSale.allows_cod, RushPurchase.allows_cod) == (False, False)


class TestFlashPurchase:
    def test_a_flash_order_is_priced_at_the_flash_price_and_records_its_sales_mode(self):
        service, _ = world()
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        assert order.total == cny("39.80")
        assert order.sales_mode == FLASH_SALE
        assert order.terms.cod_allowed is False
        assert order.terms.stock_timing is StockTiming.ON_ORDER
        (adjustment,) = order.lines[0].adjustments
        assert (adjustment.stage, adjustment.amount) == ("base_price", cny("36.20"))
        assert service.orders.get(order.id).terms == order.terms

    def test_a_flash_order_uses_the_flash_payment_timeout_not_the_normal_one(self):
        service, clock = world(flash_sale(timeout=timedelta(minutes=10)))
        assert service.policy.payment_timeout == timedelta(minutes=30)
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        assert order.deadline.at == TEN + timedelta(minutes=10)
        clock.advance(timedelta(minutes=10))
        assert [f.trigger for f in service.expire_due()] == ["expire_payment"]

    def test_a_flash_order_needs_both_the_quota_and_the_main_stock(self):
        service, _ = world(flash_sale(quota=5, per_buyer=5), stock=3)
        with pytest.raises(OutOfStock) as caught:
            service.buy_in_campaign(ALICE, "618", "tea-01", 4)
        assert (caught.value.sku, caught.value.available) == ("tea-01", 3)
        assert held(service, QUOTA, ALICE_UNITS, ALICE_UNPAID) == dict.fromkeys(
            (QUOTA, ALICE_UNITS, ALICE_UNPAID), 0
        )
        service, _ = world(flash_sale(quota=2, per_buyer=5), stock=10)
        with pytest.raises(OutOfStock) as caught:
            service.buy_in_campaign(ALICE, "618", "tea-01", 3)
        assert (caught.value.requested, caught.value.available) == (3, 2)
        assert stock(service) == (10, 0, 10)
        assert len(service.orders) == 0

    def test_both_the_quota_and_the_main_stock_are_taken(self):
        service, _ = world(flash_sale(quota=5, per_buyer=5))
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 3)
        assert held(service, QUOTA) == {QUOTA: 3}
        assert stock(service) == (10, 3, 7)
        service.pay(order.id, ALICE)
        assert held(service, QUOTA, ALICE_UNPAID) == {QUOTA: 3, ALICE_UNPAID: 0}
        assert stock(service) == (7, 0, 7)
        assert service.promotion_ledger.state(order.id) == "committed"

    def test_the_per_buyer_limit_counts_units_not_orders(self):
        service, _ = world(flash_sale(per_buyer=2))
        first = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        service.pay(first.id, ALICE)
        second = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        service.pay(second.id, ALICE)
        with pytest.raises(LimitExceeded) as caught:
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        assert (caught.value.limit, caught.value.allowed) == (ALICE_UNITS, 0)
        service, _ = world(flash_sale(per_buyer=2))
        with pytest.raises(LimitExceeded):
            service.buy_in_campaign(ALICE, "618", "tea-01", 3)  # one order, three units

    def test_a_flash_limit_that_is_shown_is_enforced(self):
        sale = flash_sale(per_buyer=2)
        shown = sale.item("tea-01").per_buyer
        service, _ = world(sale)
        with pytest.raises(LimitExceeded) as caught:
            service.buy_in_campaign(ALICE, "618", "tea-01", shown + 1)
        assert (caught.value.allowed, caught.value.requested) == (shown, shown + 1)
        assert service.buy_in_campaign(ALICE, "618", "tea-01", shown).lines[0].quantity == shown

    def test_the_per_buyer_limit_spans_every_session_of_the_sale(self):
        service, clock = world(flash_sale(starts=(time(10), time(12)), per_buyer=2))
        service.pay(service.buy_in_campaign(ALICE, "618", "tea-01", 2).id, ALICE)
        clock.advance(timedelta(hours=2))
        with pytest.raises(LimitExceeded):
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)

    def test_a_buyer_with_an_unpaid_flash_order_for_the_item_is_refused_another(self):
        service, _ = world(flash_sale(per_buyer=3))
        first = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        with pytest.raises(PromotionRefused) as caught:
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        assert "unpaid order" in caught.value.reason
        assert held(service, QUOTA, ALICE_UNITS) == {QUOTA: 1, ALICE_UNITS: 1}
        assert service.buy_in_campaign(BOB, "618", "tea-01", 1).buyer_id == "bob"
        service.pay(first.id, ALICE)
        assert service.buy_in_campaign(ALICE, "618", "tea-01", 1).state == "pending_payment"

    def test_a_cancelled_unpaid_flash_order_lets_the_buyer_order_again(self):
        service, _ = world()
        first = service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        service.cancel(first.id, ALICE, "wrong size")
        assert held(service, QUOTA, ALICE_UNITS, ALICE_UNPAID) == dict.fromkeys(
            (QUOTA, ALICE_UNITS, ALICE_UNPAID), 0
        )
        assert stock(service) == (10, 0, 10)
        assert service.buy_in_campaign(ALICE, "618", "tea-01", 2).total == cny("39.80")

    def test_a_timed_out_flash_order_gives_back_its_quota_and_stock_exactly_once(self):
        service, clock = world(flash_sale(quota=3))
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        service.pay(service.buy_in_campaign(BOB, "618", "tea-01", 1).id, BOB)
        clock.advance(timedelta(minutes=15))
        assert [f.order_id for f in service.expire_due()] == [order.id]
        assert service.expire_due() == []
        assert held(service, QUOTA, ALICE_UNITS, ALICE_UNPAID) == {
            QUOTA: 1,
            ALICE_UNITS: 0,
            ALICE_UNPAID: 0,
        }
        assert stock(service) == (9, 0, 9)
        assert service.promotion_ledger.release(order.id) is False  # nothing left to give back

    def test_a_paid_flash_order_cancelled_gives_its_quota_back_by_default(self):
        service, _ = world(flash_sale(quota=2))
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        service.pay(order.id, ALICE)
        service.cancel(order.id, TEAHOUSE, "cannot ship")
        assert held(service, QUOTA, ALICE_UNITS) == {QUOTA: 0, ALICE_UNITS: 0}
        assert service.payments.refunded[order.id] == order.total

    def test_a_paid_flash_order_cancelled_keeps_its_quota_when_the_policy_says_so(self):
        keep = PricingPolicy(release_when_paid_order_cancelled=False)
        service, _ = world(flash_sale(quota=2), pricing_policy=keep)
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        service.pay(order.id, ALICE)
        service.cancel(order.id, TEAHOUSE, "cannot ship")
        assert held(service, QUOTA) == {QUOTA: 2}
        assert stock(service) == (10, 0, 10)  # the stock itself comes back

    def test_a_refused_purchase_holds_and_stores_nothing(self):
        service, _ = world(flash_sale(quota=5, per_buyer=5), stock=1)
        with pytest.raises(OutOfStock):
            service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        assert held(service, QUOTA, ALICE_UNITS, ALICE_UNPAID) == dict.fromkeys(
            (QUOTA, ALICE_UNITS, ALICE_UNPAID), 0
        )
        assert (len(service.orders), service.publisher.published) == (0, [])

    def test_a_ledger_that_refuses_at_reservation_leaves_nothing_held(self):
        service, _ = world(flash_sale(quota=1))
        real = service.promotion_ledger

        class Racing:  # another checkout takes the last unit between pricing and reserving
            def usage(self, keys):
                return real.usage(keys)

            def reserve(self, reservation_id, claims):
                real.reserve("someone-else", [claims[0]])
                real.reserve(reservation_id, claims)

            def release(self, reservation_id):
                return real.release(reservation_id)

        service.promotion_ledger = Racing()
        with pytest.raises(LimitExceeded):
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        assert stock(service) == (10, 0, 10)
        assert len(service.orders) == 0

    @pytest.mark.parametrize(
        ("actor", "campaign", "sku", "quantity", "error"),
        [
            (TEAHOUSE, "618", "tea-01", 1, InvalidInput),
            (ALICE, "618", "tea-01", 0, InvalidInput),
            (ALICE, "nope", "tea-01", 1, NotFound),
            (ALICE, "618", "cup-01", 1, NotFound),
        ],
    )
    def test_a_bad_purchase_is_refused_and_changes_nothing(
        self, actor, campaign, sku, quantity, error
    ):
        service, _ = world()
        with pytest.raises(error):
            service.buy_in_campaign(actor, campaign, sku, quantity)
        assert (len(service.orders), stock(service)) == (0, (10, 0, 10))

    def test_a_service_without_promotions_cannot_sell_in_a_campaign(self):
        service, _ = demo_service()
        with pytest.raises(InvalidInput, match="no promotion catalogue"):
            service.buy_in_campaign(ALICE, "618", "tea-01", 1)

    def test_a_flash_price_that_is_no_longer_below_the_catalogue_price_is_refused(self):
        sale = FlashSale(
            "cheap", [Session("s", TEN, NOON)], [FlashItem("tea-01", cny("50"), cny("40"), 5, 2)]
        )
        service, _ = world(sale)  # the catalogue sells tea at 38.00, below the flash price
        with pytest.raises(PromotionRefused) as caught:
            service.buy_in_campaign(ALICE, "cheap", "tea-01", 1)
        assert caught.value.status == "no_value"


class TestRushPurchase:
    def test_a_rush_order_holds_no_stock_until_it_is_paid(self):
        service, _ = world(rush_purchase())
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        assert (order.sales_mode, order.total) == (RUSH_PURCHASE, cny("19.80"))
        assert order.terms.stock_timing is StockTiming.ON_PAYMENT
        assert stock(service, "cup-01") == (10, 0, 10)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}
        service.pay(order.id, ALICE)
        assert stock(service, "cup-01") == (8, 0, 8)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 2}

    def test_unpaid_rush_orders_cannot_hoard_the_quantity(self):
        service, _ = world(rush_purchase(quantity=3))
        hoarders = [service.buy_in_campaign(b, "rush", "cup-01", 2) for b in (ALICE, BOB)]
        late = service.buy_in_campaign(CAROL, "rush", "cup-01", 2)
        service.pay(late.id, CAROL)  # the first to pay gets the units
        with pytest.raises(LimitExceeded):
            service.pay(hoarders[0].id, ALICE)
        assert hoarders[0].id not in service.payments.charged
        assert service.orders.get(hoarders[0].id).state == "pending_payment"
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 2}

    def test_a_rush_payment_that_finds_the_stock_gone_is_refused_before_charging(self):
        service, _ = world(rush_purchase(), stock=2)
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        service.pay(service.buy_now(BOB, "cup-01", 1).id, BOB)  # an ordinary order takes one
        with pytest.raises(OutOfStock):
            service.pay(order.id, ALICE)
        assert order.id not in service.payments.charged
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}
        assert stock(service, "cup-01") == (1, 0, 1)

    def test_cancelling_an_unpaid_rush_order_gives_back_nothing_it_never_took(self):
        service, _ = world(rush_purchase())
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        service.cancel(order.id, ALICE, "changed my mind")
        assert stock(service, "cup-01") == (10, 0, 10)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}

    def test_a_pending_rush_payment_keeps_the_units_held_until_the_order_expires(self):
        gateway = ScriptedPaymentGateway(lambda _: GatewayStatus.PENDING)
        service, clock = world(rush_purchase(), payments=gateway)
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        with pytest.raises(PaymentNotCompleted):
            service.pay(order.id, ALICE)
        assert stock(service, "cup-01") == (10, 2, 8)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 2}
        clock.advance(timedelta(minutes=30))
        service.expire_due()
        assert stock(service, "cup-01") == (10, 0, 10)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}

    def test_a_rush_order_cancelled_after_payment_returns_its_quantity_and_stock(self):
        service, _ = world(rush_purchase())
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        service.pay(order.id, ALICE)
        service.cancel(order.id, ALICE, "changed my mind")
        assert stock(service, "cup-01") == (10, 0, 10)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}

    def test_the_rush_per_buyer_limit_is_checked_when_paying(self):
        service, _ = world(rush_purchase(quantity=10, per_buyer=2))
        first = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        second = service.buy_in_campaign(ALICE, "rush", "cup-01", 1)
        service.pay(first.id, ALICE)
        with pytest.raises(LimitExceeded):
            service.pay(second.id, ALICE)
        with pytest.raises(LimitExceeded):
            service.buy_in_campaign(ALICE, "rush", "cup-01", 1)  # the snapshot shows it used

    def test_a_rush_purchase_may_take_its_stock_on_order_instead(self):
        service, _ = world(rush_purchase(timing=StockTiming.ON_ORDER))
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        assert stock(service, "cup-01") == (10, 2, 8)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 2}
        service.pay(order.id, ALICE)
        assert stock(service, "cup-01") == (8, 0, 8)

    def test_a_rush_purchase_sells_only_in_its_window(self):
        for moment, status in ((TEN - timedelta(seconds=1), "not_started"), (NOON, "expired")):
            with pytest.raises(PromotionRefused) as caught:
                rush_purchase().offer("cup-01", moment)
            assert caught.value.status == status

    def test_a_rush_purchase_may_set_its_own_payment_timeout(self):
        rush = RushPurchase(
            "rush",
            TEN,
            NOON,
            [RushItem("cup-01", cny("25.00"), cny("9.90"), 3, 2)],
            payment_timeout=timedelta(minutes=5),
        )
        assert rush.policy(OrderPolicy()).payment_timeout == timedelta(minutes=5)
        assert rush_purchase().policy(OrderPolicy()) == OrderPolicy()


class TestRecheckAtPayment:
    def test_a_flash_price_is_honoured_after_the_session_until_the_payment_deadline(self):
        service, clock = world(at=NOON - timedelta(minutes=5))
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        clock.advance(timedelta(minutes=10))  # the session is over, the deadline is not
        paid = service.pay(order.id, ALICE)
        assert (paid.state, paid.total) == ("awaiting_shipment", cny("19.90"))

    def test_a_priced_order_paid_after_its_deadline_is_refused_and_nothing_charged(self):
        service, clock = world()
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        clock.advance(timedelta(minutes=15))  # the scheduler has not cancelled it yet
        with pytest.raises(PromotionRefused) as caught:
            service.pay(order.id, ALICE)
        assert (caught.value.status, caught.value.command) == ("expired", "pay")
        assert "payment deadline" in caught.value.reason
        assert service.payments.charged == {}
        assert service.orders.get(order.id).version == order.version

    def test_requiring_the_offer_active_refuses_a_payment_after_the_session(self):
        strict = PricingPolicy(recheck_at_payment=Recheck.REQUIRE_ACTIVE)
        service, clock = world(at=NOON - timedelta(minutes=5), pricing_policy=strict)
        order = service.buy_in_campaign(ALICE, "618", "tea-01", 1)
        clock.advance(timedelta(minutes=4))
        service.pay(service.buy_in_campaign(BOB, "618", "tea-01", 1).id, BOB)
        clock.advance(timedelta(minutes=1))
        with pytest.raises(PromotionRefused) as caught:
            service.pay(order.id, ALICE)
        assert "the offer ended at 2026-01-01T12:00:00+00:00" in caught.value.reason
        assert order.id not in service.payments.charged

    def test_payment_holds_taken_for_an_order_cancelled_meanwhile_are_given_back(self):
        service, _ = world(rush_purchase())
        order = service.buy_in_campaign(ALICE, "rush", "cup-01", 2)
        real_get = service.orders.get
        calls = []

        def get(order_id):  # the buyer cancels while the payment takes its holds
            calls.append(order_id)
            if len(calls) == 2:
                service.orders.get = real_get
                service.cancel(order_id, ALICE, "changed my mind")
            return real_get(order_id)

        service.orders.get = get
        with pytest.raises(VersionConflict):
            service.pay(order.id, ALICE)
        assert stock(service, "cup-01") == (10, 0, 10)
        assert held(service, "rush:cup-01:units") == {"rush:cup-01:units": 0}
        assert service.payments.charged == {}


class TestPricingAFlashOfferDirectly:
    def test_the_flash_offer_prices_like_any_promotion(self):
        sale = flash_sale()
        offer = sale.offer("tea-01", TEN)
        two = [PricingLine("1", "tea-01", 2, cny("38.00"))]
        result = price(two, [offer], PricingContext(TEN, "alice"))
        assert result.sales_mode == FLASH_SALE
        assert str(result.total) == "39.80 CNY"
        assert limit_keys([offer], "alice") == [ALICE_UNPAID, QUOTA, ALICE_UNITS]
        one_bought = PricingContext(TEN, "alice", usage={ALICE_UNITS: 1})
        explanation = price(two, [offer], one_bought).explanation(offer.id)
        assert explanation.status is Status.LIMIT_REACHED
        assert explanation.reason == "at most 2 units per buyer: 1 left for this order"


class TestSmallPrints:
    def test_a_failure_storing_the_order_gives_back_the_quota_and_the_stock(self):
        service, _ = world()

        def refuse(order):
            raise VersionConflict(order.id, 0, 1)

        service.orders.add = refuse
        with pytest.raises(VersionConflict):
            service.buy_in_campaign(ALICE, "618", "tea-01", 2)
        assert held(service, QUOTA, ALICE_UNITS, ALICE_UNPAID) == dict.fromkeys(
            (QUOTA, ALICE_UNITS, ALICE_UNPAID), 0
        )
        assert stock(service) == (10, 0, 10)

    def test_a_rush_purchase_does_not_sell_what_it_does_not_list(self):
        with pytest.raises(NotFound):
            rush_purchase().offer("tea-01", TEN)

    def test_an_item_needs_a_sku(self):
        with pytest.raises(DefinitionError, match="needs a SKU"):
            FlashSale("f", [Session("s", TEN, NOON)], [FlashItem(" ", cny("2"), cny("1"), 1, 1)])

    def test_the_promotion_catalogue_takes_only_promotions_coupons_and_campaigns(self):
        service, _ = world()
        with pytest.raises(InvalidInput):
            service.promotions.add("tea-ten")
        assert service.promotion_ledger.state("never-reserved") is None
