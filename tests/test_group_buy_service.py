"""Group buying through CampaignService: orders, ledger refunds and stock, path by path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import Actor, AfterSalesItem, Money, OrderPolicy, TrackingEvent
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryAfterSalesRepository,
    InMemoryCatalog,
    InMemoryGroupBuyRepository,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryShipmentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.aftersales import AfterSalesPolicy
from ecommerce_core.campaigns.group_buy import (
    GroupBuy,
    GroupBuyPayment,
    GroupBuyTerms,
    PriceTier,
)
from ecommerce_core.errors import (
    Conflict,
    DeadlinePassed,
    DefinitionError,
    Forbidden,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    RuleViolation,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.events import OrderRepriced
from ecommerce_core.orders import Order
from ecommerce_core.ports import GatewayStatus, Product, RefundRequest
from ecommerce_core.services import AfterSalesService, CampaignService, FulfilmentService
from ecommerce_core.services.aftersales import ledger_refunds
from ecommerce_core.services.group_buys import GroupBuyOrderFailed, GroupBuyOrderSucceeded

CNY = "CNY"
ALICE, BOB, CAROL, DAVE = (Actor.buyer(n) for n in ("alice", "bob", "carol", "dave"))
MERCHANT = Actor.merchant("m-1")


def yuan(amount: str) -> Money:
    return Money.of(amount, CNY)


class World:
    """A campaign service over in-memory adapters, with 100 units of tea."""

    def __init__(self, *, stock: int = 100) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.refund_outcome = GatewayStatus.SUCCEEDED
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"tea": stock})
        self.ledger = InMemoryLedger()
        self.campaigns = InMemoryGroupBuyRepository()
        self.orders = InMemoryOrderRepository()
        self.publisher = RecordingPublisher()
        self.stock = stock
        self.service = CampaignService(
            orders=self.orders,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("tea", "m-1", "tea", yuan("10.00"))]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            policy=OrderPolicy(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            group_buys=self.campaigns,
        )

    def _decide(self, request: GatewayRequest) -> GatewayStatus:
        return self.refund_outcome if isinstance(request, RefundRequest) else self.outcome

    def terms(self, **kwargs: object) -> GroupBuyTerms:
        """List 10.00; 9.00 from 3 units, 8.00 from 5; minimum 3; a 3-day window."""
        values: dict[str, object] = {
            "list_price": yuan("10.00"),
            "tiers": [PriceTier(3, yuan("9.00")), PriceTier(5, yuan("8.00"))],
            "starts_at": self.clock.now(),
            "ends_at": self.clock.now() + timedelta(days=3),
            "minimum": 3,
        }
        values.update(kwargs)
        return GroupBuyTerms(**values)  # type: ignore[arg-type]

    def create(self, **kwargs: object) -> GroupBuy:
        return self.service.create_group_buy(MERCHANT, "tea", self.terms(**kwargs))

    def buy(self, campaign: GroupBuy, buyer: Actor, quantity: int, *, pay: bool = True) -> str:
        order = self.service.place_group_buy_order(buyer, campaign.id, quantity)
        if pay:
            self.service.pay(order.id, buyer)
        return order.id

    def state(self, order_id: str) -> str:
        return self.orders.get(order_id).state

    def level(self, campaign: GroupBuy) -> int:
        return self.campaigns.get(campaign.id).level

    def net_paid(self, order_id: str) -> Money:
        money = self.service.money(order_id)
        return money.paid_in - money.refunded

    def close(self) -> None:
        self.clock.advance(timedelta(days=3))
        self.service.expire_due()

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version) for o in self.orders.all()],
            [(c, self.campaigns.get(c).version) for c in self.campaigns.due(self.far_future())],
            self.inventory.available("tea"),
            self.inventory.on_hand("tea"),
            len(self.ledger.all()),
            dict(self.gateway.charged),
            dict(self.gateway.refunded),
        )

    def far_future(self):  # type: ignore[no-untyped-def]
        return self.clock.now() + timedelta(days=3650)

    def pending_notification(self, *, succeeded: bool = True) -> dict[str, str]:
        (key,) = self.gateway.pending_keys()
        return self.gateway.settle_pending(key, succeeded=succeeded)


class TestCreatingAGroupBuy:
    def test_the_merchant_sets_up_a_running_campaign_for_a_catalogue_sku(self) -> None:
        world = World()
        campaign = world.create()
        stored = world.service.group_buy(campaign.id)
        assert (stored.state, stored.sku, stored.merchant_id) == ("running", "tea", "m-1")

    def test_deposit_terms_are_offered_and_stored(self) -> None:
        world = World()
        terms = world.terms(payment=GroupBuyPayment.DEPOSIT, deposit=yuan("2.00"))
        world.service.create_group_buy(MERCHANT, "tea", terms, campaign_id="gb-x")
        assert world.service.group_buy("gb-x").terms.payment is GroupBuyPayment.DEPOSIT

    def test_terms_of_another_kind_an_unknown_sku_or_another_merchant_are_refused(self) -> None:
        world = World()
        with pytest.raises(InvalidInput):
            world.service.create_group_buy(MERCHANT, "tea", "cheap", campaign_id="gb-x")  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            world.service.create_group_buy(MERCHANT, "coffee", world.terms(), campaign_id="gb-x")
        with pytest.raises(Forbidden):
            world.service.create_group_buy(
                Actor.merchant("m-2"), "tea", world.terms(), campaign_id="gb-x"
            )
        with pytest.raises(NotFound):
            world.service.group_buy("gb-x")

    def test_a_service_built_without_group_buys_says_so(self) -> None:
        world = World()
        world.service.group_buys = None
        with pytest.raises(DefinitionError, match="group_buys"):
            world.create()
        plain = world.service.buy_now(ALICE, "tea", 1)
        world.clock.advance(timedelta(days=1))
        assert [e.order_id for e in world.service.expire_due()] == [plain.id]


class TestPlacingAnOrder:
    def test_the_order_is_priced_at_the_tier_its_own_units_reach_and_reserves_stock(self) -> None:
        world = World()
        campaign = world.create()
        small = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        large = world.service.place_group_buy_order(BOB, campaign.id, 3)
        assert (small.total, large.total) == (yuan("20.00"), yuan("27.00"))
        assert small.state == "pending_payment"
        assert world.inventory.available("tea") == world.stock - 5
        assert world.level(campaign) == 0  # unpaid orders never count

    @pytest.mark.parametrize(
        ("setup", "error"),
        [
            ("before_window", RuleViolation),
            ("after_window", DeadlinePassed),
            ("past_cap", OutOfStock),
            ("closed", TransitionNotAllowed),
        ],
    )
    def test_a_refused_order_reserves_and_stores_nothing(
        self, setup: str, error: type[Exception]
    ) -> None:
        world = World()
        starts = world.clock.now() + timedelta(hours=1 if setup == "before_window" else 0)
        campaign = world.create(starts_at=starts, cap=6)
        if setup == "past_cap":
            world.buy(campaign, ALICE, 5)
        if setup == "after_window":
            world.clock.advance(timedelta(days=3))
        if setup == "closed":
            world.service.cancel_group_buy(campaign.id, MERCHANT, reason="supplier gone")
        before = world.snapshot()
        with pytest.raises(error):
            world.service.place_group_buy_order(BOB, campaign.id, 2)
        assert world.snapshot() == before

    def test_a_bad_quantity_or_a_non_buyer_is_refused(self) -> None:
        world = World()
        campaign = world.create()
        before = world.snapshot()
        with pytest.raises(InvalidInput):
            world.service.place_group_buy_order(ALICE, campaign.id, 0)
        with pytest.raises(InvalidInput):
            world.service.place_group_buy_order(MERCHANT, campaign.id, 1)
        with pytest.raises(NotFound):
            world.service.place_group_buy_order(ALICE, "gb-missing", 1)
        assert world.snapshot() == before


class TestPaying:
    def test_a_completed_payment_joins_the_order_and_counts_toward_the_tier(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        assert world.state(order_id) == "awaiting_group"
        assert world.level(campaign) == 3
        assert world.service.money(order_id).paid_in == yuan("27.00")
        assert world.inventory.on_hand("tea") == world.stock - 3

    def test_a_waiting_order_cannot_ship(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        with pytest.raises(TransitionNotAllowed):
            world.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="1")
        assert world.state(order_id) == "awaiting_group"

    def test_a_declined_payment_does_not_count_and_the_order_stays_unpaid(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 3)
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order.id, ALICE)
        assert (world.state(order.id), world.level(campaign)) == ("pending_payment", 0)
        assert world.service.money(order.id).paid_in.is_zero
        world.outcome = GatewayStatus.SUCCEEDED
        world.service.pay(order.id, ALICE)
        assert world.level(campaign) == 3

    def test_a_pending_payment_counts_once_its_notification_completes_it(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 3)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order.id, ALICE)
        assert world.level(campaign) == 0
        notification = world.pending_notification()
        assert world.service.handle_notification(notification).order_state == "awaiting_group"
        assert world.level(campaign) == 3
        versions = (world.orders.get(order.id).version, world.campaigns.get(campaign.id).version)
        assert world.service.handle_notification(notification).outcome == "repeat"
        assert (
            world.orders.get(order.id).version,
            world.campaigns.get(campaign.id).version,
        ) == versions
        assert world.level(campaign) == 3

    def test_a_pending_payment_declined_by_its_notification_never_counts(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 3)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order.id, ALICE)
        notification = world.pending_notification(succeeded=False)
        assert world.service.handle_notification(notification).order_state == "pending_payment"
        assert world.level(campaign) == 0
        assert world.service.money(order.id).paid_in.is_zero

    def test_a_repeated_pay_with_its_key_charges_once_and_joins_once(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        world.service.pay(order.id, ALICE, key="k-1")
        assert world.service.pay(order.id, ALICE, key="k-1").state == "awaiting_group"
        assert world.gateway.charged[order.id] == yuan("20.00")
        assert world.level(campaign) == 2

    def test_authorizing_only_is_refused_before_charging(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        before = world.snapshot()
        with pytest.raises(InvalidInput):
            world.service.pay(order.id, ALICE, capture=False)
        assert world.snapshot() == before

    def test_a_price_below_the_current_quote_is_refused_before_charging(self) -> None:
        world = World()
        campaign = world.create()
        big = world.buy(campaign, ALICE, 4)
        cheap = world.service.place_group_buy_order(BOB, campaign.id, 1)  # 5 units: 8.00
        world.service.cancel(big, ALICE, "changed my mind")  # back to 1 unit: list price
        before = world.snapshot()
        with pytest.raises(InvalidInput, match="tier price"):
            world.service.pay(cheap.id, BOB)
        assert world.snapshot() == before

    def test_paying_after_the_window_is_refused_before_charging(self) -> None:
        world = World()
        campaign = world.create()
        order = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        world.clock.advance(timedelta(days=3))
        before = world.snapshot()
        with pytest.raises(DeadlinePassed):
            world.service.pay(order.id, ALICE)
        assert world.snapshot() == before

    def test_a_payment_completing_after_the_close_is_refunded_from_itself(self) -> None:
        world = World()
        campaign = world.create()
        world.buy(campaign, BOB, 3)
        late = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(late.id, ALICE)
        world.close()
        assert world.campaigns.get(campaign.id).state == "succeeded"
        outcome = world.service.handle_notification(world.pending_notification())
        assert outcome.order_state == "cancelled"
        money = world.service.money(late.id)
        assert money.refunded == money.paid_in == yuan("16.00")
        (payment,) = world.service.payments_of(late.id)
        assert [r.id for r in payment.refunds] == [f"{campaign.id}:refund:{late.id}"]
        assert world.inventory.available("tea") == world.stock - 3
        assert any(isinstance(e, GroupBuyOrderFailed) for e in world.publisher.published)


class TestTheCap:
    def test_the_payment_that_reaches_the_cap_closes_the_campaign_and_settles(self) -> None:
        world = World()
        campaign = world.create(cap=6)
        first = world.buy(campaign, ALICE, 1)  # list price 10.00
        second = world.buy(campaign, BOB, 5)  # 6 units: 8.00, the cap
        stored = world.campaigns.get(campaign.id)
        assert stored.state == "succeeded"
        assert {world.state(first), world.state(second)} == {"awaiting_shipment"}
        assert world.net_paid(first) == yuan("8.00")
        assert world.net_paid(second) == yuan("40.00")

    def test_a_payment_that_would_pass_the_cap_is_refused_before_charging(self) -> None:
        world = World()
        campaign = world.create(cap=6)
        order = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        world.buy(campaign, BOB, 5)
        before = world.snapshot()
        with pytest.raises(OutOfStock):
            world.service.pay(order.id, ALICE)
        assert world.snapshot() == before


class TestCancelling:
    def test_a_paid_order_cancelled_before_the_close_leaves_and_is_refunded_once(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        world.service.cancel(order_id, ALICE, "changed my mind")
        assert (world.state(order_id), world.level(campaign)) == ("cancelled", 0)
        money = world.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("27.00")
        (payment,) = world.service.payments_of(order_id)
        assert [r.id for r in payment.refunds] == [f"{campaign.id}:refund:{order_id}"]
        assert world.inventory.available("tea") == world.inventory.on_hand("tea") == world.stock
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel(order_id, ALICE, "again")
        assert world.snapshot() == before

    def test_another_buyer_or_a_blank_reason_cannot_cancel_and_nothing_changes(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        before = world.snapshot()
        with pytest.raises(Forbidden):
            world.service.cancel(order_id, BOB, "not mine")
        with pytest.raises(InvalidInput):
            world.service.cancel(order_id, ALICE, "")
        assert world.snapshot() == before
        assert world.level(campaign) == 3

    def test_the_merchant_may_cancel_a_waiting_order(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        world.service.cancel(order_id, MERCHANT, "out of stock")
        assert (world.state(order_id), world.level(campaign)) == ("cancelled", 0)
        assert world.net_paid(order_id).is_zero

    def test_a_paid_order_cannot_leave_once_the_window_has_ended(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        world.clock.advance(timedelta(days=3))
        before = world.snapshot()
        with pytest.raises(DeadlinePassed):
            world.service.cancel(order_id, ALICE, "too late")
        assert world.snapshot() == before

    def test_unpaid_orders_cancelled_or_timed_out_give_their_stock_back(self) -> None:
        world = World()
        campaign = world.create()
        cancelled = world.service.place_group_buy_order(ALICE, campaign.id, 2)
        timed_out = world.service.place_group_buy_order(BOB, campaign.id, 4)
        world.service.cancel(cancelled.id, ALICE, "changed my mind")
        world.clock.advance(timedelta(hours=1))
        fired = world.service.expire_due()
        assert [(e.order_id, e.trigger) for e in fired] == [(timed_out.id, "expire_payment")]
        assert (world.state(cancelled.id), world.state(timed_out.id)) == ("cancelled",) * 2
        assert world.inventory.available("tea") == world.stock
        assert world.level(campaign) == 0


class TestClosing:
    def test_success_fixes_the_final_tier_refunds_each_difference_once_and_ships(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 1)  # 10.00
        bob = world.buy(campaign, BOB, 2)  # 3 units: 9.00 each
        carol = world.buy(campaign, CAROL, 2)  # 5 units: 8.00 each
        world.clock.advance(timedelta(days=3))
        fired = world.service.expire_due()
        assert {(e.order_id, e.trigger, e.state) for e in fired} == {
            (o, "group_succeeded", "awaiting_shipment") for o in (alice, bob, carol)
        }
        for order_id, quantity in ((alice, 1), (bob, 2), (carol, 2)):
            assert world.net_paid(order_id) == yuan("8.00") * quantity
        refunds = [
            r.id
            for o in (alice, bob, carol)
            for p in world.service.payments_of(o)
            for r in p.refunds
        ]
        assert refunds == [f"{campaign.id}:difference:{alice}", f"{campaign.id}:difference:{bob}"]
        assert sum(isinstance(e, GroupBuyOrderSucceeded) for e in world.publisher.published) == 3
        before = world.snapshot()
        assert world.service.expire_due() == []
        assert world.snapshot() == before
        shipped = world.service.ship(alice, MERCHANT, carrier="SF", tracking_number="SF1")
        assert shipped.state == "shipped"

    def test_failure_cancels_refunds_and_releases_every_order_exactly_once(self) -> None:
        world = World()
        campaign = world.create(minimum=5)
        orders = [world.buy(campaign, ALICE, 1), world.buy(campaign, BOB, 2)]
        unpaid = world.service.place_group_buy_order(CAROL, campaign.id, 1)
        world.clock.advance(timedelta(days=3))
        fired = world.service.expire_due()
        assert {(e.order_id, e.trigger) for e in fired} >= {(o, "group_failed") for o in orders}
        for order_id in orders:
            assert world.state(order_id) == "cancelled"
            money = world.service.money(order_id)
            assert money.refunded == money.paid_in
            (payment,) = world.service.payments_of(order_id)
            assert [r.id for r in payment.refunds] == [f"{campaign.id}:refund:{order_id}"]
        assert world.state(unpaid.id) == "cancelled"  # its payment deadline passed meanwhile
        assert world.inventory.available("tea") == world.inventory.on_hand("tea") == world.stock
        before = world.snapshot()
        assert world.service.expire_due() == []
        assert world.snapshot() == before

    def test_the_merchant_calling_it_off_refunds_everyone_once(self) -> None:
        world = World()
        campaign = world.create()
        orders = [world.buy(campaign, ALICE, 3), world.buy(campaign, BOB, 3)]
        world.service.cancel_group_buy(campaign.id, MERCHANT, reason="supplier gone")
        for order_id in orders:
            assert world.state(order_id) == "cancelled"
            assert world.net_paid(order_id).is_zero
        assert world.inventory.available("tea") == world.stock
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel_group_buy(campaign.id, MERCHANT, reason="again")
        with pytest.raises(Forbidden):
            world.service.cancel_group_buy(campaign.id, ALICE, reason="me too")
        assert world.snapshot() == before

    def test_a_declined_difference_refund_is_asked_again_by_reconcile_once(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 1)
        world.buy(campaign, BOB, 4)
        world.refund_outcome = GatewayStatus.DECLINED
        world.close()
        assert world.net_paid(alice) == yuan("10.00")  # declined: still owed 2.00
        world.refund_outcome = GatewayStatus.SUCCEEDED
        world.service.reconcile(alice, retry_failed=True)
        world.service.reconcile(alice, retry_failed=True)
        assert world.net_paid(alice) == yuan("8.00")
        assert world.gateway.refunded[alice] == yuan("2.00")

    def test_a_shipped_group_buy_order_cancelled_later_gets_the_rest_back(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 1)
        world.buy(campaign, BOB, 4)
        world.close()
        world.service.cancel(alice, MERCHANT, "cannot deliver")
        money = world.service.money(alice)
        assert money.refunded == money.paid_in == yuan("10.00")


class TestAfterSalesOfASettledOrder:
    """A settled order's lines carry the final tier, so after-sales refunds what was kept."""

    def after_sales(self, world: World) -> tuple[FulfilmentService, AfterSalesService]:
        records, shipments = InMemoryAfterSalesRepository(), InMemoryShipmentRepository()
        common = {
            "orders": world.orders,
            "shipments": shipments,
            "clock": world.clock,
            "ids": world.service.ids,
            "publisher": world.publisher,
            "inventory": world.inventory,
        }
        fulfilment = FulfilmentService(after_sales=records, policy=world.service.policy, **common)
        after_sales = AfterSalesService(
            after_sales=records,
            refunds=ledger_refunds(world.service),
            policy=AfterSalesPolicy(),
            order_policy=world.service.policy,
            **common,
        )
        return fulfilment, after_sales

    def settled(self, world: World, quantity: int) -> str:
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, quantity)  # at the tier its own units reach
        world.buy(campaign, BOB, 5)  # the final tier: 8.00
        world.close()
        return order_id

    def test_the_close_lowers_the_order_to_the_final_tier_on_its_lines(self) -> None:
        world = World()
        order_id = self.settled(world, 1)
        order = world.orders.get(order_id)
        assert (order.total, order.lines[0].amount) == (yuan("8.00"), yuan("8.00"))
        (cut,) = order.lines[0].adjustments
        assert (cut.stage, cut.amount) == ("after_payment", yuan("2.00"))
        assert order.payment is not None
        assert order.payment.amount == yuan("10.00")
        assert world.net_paid(order_id) == order.total
        before = world.snapshot()
        world.service.reconcile(order_id)  # the difference went back once: nothing more
        assert world.service.expire_due() == []
        assert world.snapshot() == before

    @pytest.mark.parametrize("quantity", [1, 2])
    def test_returning_everything_refunds_what_the_units_finally_cost(self, quantity) -> None:
        world = World()
        order_id = self.settled(world, quantity)
        fulfilment, after_sales = self.after_sales(world)
        fulfilment.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        fulfilment.record_tracking(TrackingEvent("e1", "SF", "SF1", "delivered", world.clock.now()))
        request = after_sales.request(
            order_id,
            ALICE,
            kind="return_and_refund",
            reason="no_reason",
            items=[AfterSalesItem("1", quantity)],
        )
        after_sales.approve(order_id, request.request_id, MERCHANT)
        after_sales.ship_back(
            order_id, request.request_id, ALICE, carrier="YTO", tracking_number="YT1"
        )
        after_sales.receive_return(order_id, request.request_id, MERCHANT)
        done = after_sales.accept_return(order_id, request.request_id, MERCHANT)
        assert done.state == "refunded"
        assert done.refund is not None
        assert done.refund.total == yuan("8.00") * quantity
        money = world.service.money(order_id)
        assert money.balanced
        assert money.refunded == money.paid_in  # the difference, then the final price
        assert money.refundable.is_zero


class TestOtherOrders:
    def test_an_ordinary_order_pays_and_cancels_as_before(self) -> None:
        world = World()
        plain = world.service.buy_now(ALICE, "tea", 1)
        assert world.service.pay(plain.id, ALICE).state == "awaiting_shipment"
        assert world.service.cancel(plain.id, ALICE, "changed my mind").state == "cancelled"
        assert world.net_paid(plain.id).is_zero


class FlakyCampaigns(InMemoryGroupBuyRepository):
    """Refuses the next ``conflicts`` saves, as if another writer had saved first."""

    def __init__(self) -> None:
        super().__init__()
        self.conflicts = 0

    def save(self, campaign: GroupBuy, expected_version: int) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise VersionConflict(campaign.id, expected_version, expected_version + 1)
        super().save(campaign, expected_version)


class CrashOnRepricing(InMemoryOrderRepository):
    """Dies once, when armed, on the save that would store an order's repricing."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def save(self, order: Order, expected_version: int) -> None:
        if self.armed and any(isinstance(e, OrderRepriced) for e in order.events):
            self.armed = False
            raise RuntimeError("the process died")
        super().save(order, expected_version)


class TestInterruptedAndConcurrentWork:
    def test_a_cancel_that_meets_a_concurrent_writer_retries_and_withdraws_once(self) -> None:
        world = World()
        flaky = FlakyCampaigns()
        world.campaigns = world.service.group_buys = flaky
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        flaky.conflicts = 1
        world.service.cancel(order_id, ALICE, "changed my mind")
        assert (world.state(order_id), world.level(campaign)) == ("cancelled", 0)
        assert world.net_paid(order_id).is_zero

    def test_a_cancel_interrupted_after_withdrawing_is_finished_by_the_next_one(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        stored = world.campaigns.get(campaign.id)
        stored.withdraw(Actor.system(), order_id=order_id, now=world.clock.now())
        world.campaigns.save(stored, stored.version - 1)  # the withdrawal was saved, then a crash
        world.service.cancel(order_id, ALICE, "changed my mind")
        assert world.state(order_id) == "cancelled"
        (payment,) = world.service.payments_of(order_id)
        assert [r.id for r in payment.refunds] == [f"{campaign.id}:refund:{order_id}"]
        assert world.inventory.available("tea") == world.stock

    def test_a_close_interrupted_before_an_order_was_settled_is_finished_by_reconcile(
        self,
    ) -> None:
        world = World()
        crashing = CrashOnRepricing()
        world.orders = world.service.orders = crashing
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 1)  # paid 10.00: 2.00 back at the close
        bob = world.buy(campaign, BOB, 4)
        service = world.service
        crashing.armed = True
        with pytest.raises(RuntimeError, match="died"):
            world.close()
        assert world.state(alice) == "awaiting_group"  # refunded, not yet repriced or moved
        assert world.state(bob) == "awaiting_shipment"  # the others were settled all the same
        assert world.service.expire_due() == []  # the campaign is closed: not listed again
        settled = service.reconcile(alice)
        assert (settled.state, settled.total) == ("awaiting_shipment", yuan("8.00"))
        assert world.net_paid(alice) == yuan("8.00")
        assert world.gateway.refunded[alice] == yuan("2.00")  # the difference went back once
        assert world.state(bob) == "awaiting_shipment"
        before = world.snapshot()
        service.reconcile(alice)
        assert world.snapshot() == before

    def test_an_order_that_could_not_be_stored_gives_its_stock_back(self) -> None:
        world = World()
        campaign = world.create()
        world.orders.add = _refuse  # type: ignore[method-assign]
        with pytest.raises(Conflict):
            world.service.place_group_buy_order(ALICE, campaign.id, 2)
        assert world.inventory.available("tea") == world.stock

    def test_retrying_refunds_leaves_orders_that_paid_the_final_price_or_wait_alone(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 1)  # paid 10.00: 2.00 back at the close
        carol = world.buy(campaign, CAROL, 4)  # paid 8.00 each: the final price
        world.refund_outcome = GatewayStatus.PENDING
        world.close()
        before = world.snapshot()
        world.service.reconcile(carol, retry_failed=True)  # nothing owed back
        world.service.reconcile(alice, retry_failed=True)  # its difference refund is still open
        assert world.snapshot() == before
        assert world.state(carol) == world.state(alice) == "awaiting_shipment"
        assert world.net_paid(alice) == yuan("10.00")


def _refuse(_order: object) -> None:
    raise Conflict("an order with this id is already stored")
