"""Rebates (返利) through CampaignService: granted, frozen, credited, reduced, clawed back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from ecommerce_core import Actor, CartItem, Money, TrackingEvent
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryAfterSalesRepository,
    InMemoryCatalog,
    InMemoryCreditLines,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryPromotionCatalog,
    InMemoryPromotionLedger,
    InMemoryRebateRepository,
    InMemoryShipmentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.aftersales import AfterSalesItem, AfterSalesPolicy
from ecommerce_core.campaigns.rebate import Rebate, RebateCredited, RebateGranted, RebateVoided
from ecommerce_core.errors import (
    DefinitionError,
    Forbidden,
    PaymentNotCompleted,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.payments.ledger import Account, AccountKind, Movement, Posting
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.promotions import PercentOff, Promotion, Scope
from ecommerce_core.promotions import Rebate as Cashback
from ecommerce_core.services import (
    AfterSalesService,
    CampaignService,
    FulfilmentService,
    ledger_refunds,
)
from ecommerce_core.services.rebates import rebate_id_for

ALICE = Actor.buyer("alice")
MERCHANT = Actor.merchant("m-1")
PLATFORM = Actor.platform()


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


class World:
    """A campaign service with rebates, a 5 % cashback on tea and none on cups."""

    def __init__(
        self, *, funded_by: str = "platform", rebates: bool = True, percent_off: int = 0
    ) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"tea": 10, "cup": 10})
        self.ledger = InMemoryLedger()
        self.orders = InMemoryOrderRepository()
        self.repo = InMemoryRebateRepository()
        self.publisher = RecordingPublisher()
        promotions = [
            Promotion(
                "cash5",
                Cashback(percent=5, funded_by=funded_by),
                scope=Scope(skus={"tea"}),
            )
        ]
        if percent_off:
            promotions.append(Promotion("off", PercentOff(percent_off), scope=Scope(skus={"tea"})))
        self.service = CampaignService(
            orders=self.orders,
            inventory=self.inventory,
            catalog=InMemoryCatalog(
                [
                    Product("tea", "m-1", "tea", cny("99.00")),
                    Product("cup", "m-1", "ware", cny("20.00")),
                ]
            ),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            promotions=InMemoryPromotionCatalog(promotions),
            promotion_ledger=InMemoryPromotionLedger(),
            rebates=self.repo if rebates else None,
        )

    def _decide(self, _request: GatewayRequest) -> GatewayStatus:
        return self.outcome

    def paid(self, sku: str = "tea", quantity: int = 1) -> str:
        order = self.service.buy_now(ALICE, sku, quantity)
        self.service.pay(order.id, ALICE)
        return order.id

    def received(self, sku: str = "tea") -> str:
        order_id = self.paid(sku)
        self.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        self.service.confirm_receipt(order_id, ALICE)
        return order_id

    def credited(self) -> str:
        order_id = self.received()
        self.clock.advance(self.service.policy.after_sales_window)
        self.service.expire_due()
        return order_id

    def rebate(self, order_id: str) -> object:
        (rebate,) = self.service.rebates_of(order_id)
        return rebate

    def payable(self) -> Money:
        return self.ledger.balance(Account.rebate_payable("alice"), "CNY")

    def events(self, kind: type) -> list[object]:
        return [e for e in self.publisher.published if isinstance(e, kind)]

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version) for o in self.orders.all()],
            [
                (r.id, r.state, r.version, r.refunded, r.credited, r.clawed_back)
                for o in self.orders.all()
                for r in self.service.rebates_of(o.id)
            ],
            len(self.ledger.all()),
            self.inventory.available("tea"),
            self.inventory.on_hand("tea"),
        )


class TestARebateIsGrantedWhenItsOrderIsPaid:
    def test_a_paid_order_gets_a_pending_rebate_of_the_pricing_engines_amount(self) -> None:
        world = World()
        order_id = world.paid()
        rebate = world.service.rebates_of(order_id)[0]
        assert (rebate.id, rebate.state) == (rebate_id_for(order_id, 1), "pending")
        assert (rebate.base, rebate.amount, rebate.beneficiary_id) == (
            cny("99.00"),
            cny("4.95"),
            "alice",
        )
        assert len(world.events(RebateGranted)) == 1
        assert world.payable().is_zero

    def test_the_base_is_what_was_paid_for_the_goods_after_discounts(self) -> None:
        world = World(percent_off=10)
        order_id = world.paid()
        rebate = world.rebate(order_id)
        terms = world.orders.get(order_id).terms
        assert terms is not None
        assert rebate.base == cny("89.10")
        assert rebate.amount == terms.entitlements[0].amount
        assert cny("4.45") <= rebate.amount <= cny("4.46")

    def test_an_unpaid_or_declined_order_has_no_rebate(self) -> None:
        world = World()
        order = world.service.buy_now(ALICE, "tea", 1)
        assert world.service.rebates_of(order.id) == []
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order.id, ALICE)
        assert world.service.rebates_of(order.id) == []

    def test_an_order_without_a_rebate_promotion_gets_none(self) -> None:
        world = World()
        assert world.service.rebates_of(world.paid("cup")) == []

    def test_repeating_reconcile_grants_nothing_more(self) -> None:
        world = World()
        order_id = world.paid()
        for _ in range(3):
            world.service.reconcile(order_id)
        assert len(world.service.rebates_of(order_id)) == 1
        assert len(world.events(RebateGranted)) == 1


class TestARebateIsCreditedOnlyWhenTheAfterSalesWindowEnds:
    def test_receipt_freezes_it_until_the_orders_close_deadline(self) -> None:
        world = World()
        order_id = world.received()
        rebate = world.rebate(order_id)
        order = world.orders.get(order_id)
        assert order.deadline is not None
        assert (rebate.state, rebate.thaw_at) == ("frozen", order.deadline.at)

    def test_nothing_is_credited_before_the_window_ends(self) -> None:
        world = World()
        order_id = world.received()
        world.clock.advance(world.service.policy.after_sales_window - timedelta(minutes=1))
        world.service.expire_due()
        assert world.rebate(order_id).state == "frozen"
        assert world.payable().is_zero

    def test_the_platform_funds_the_credit_into_the_buyers_rebate_payable(self) -> None:
        world = World()
        order_id = world.credited()
        assert world.rebate(order_id).state == "credited"
        assert world.payable() == cny("4.95")
        assert world.ledger.balance(Account.rebate_expense(), "CNY") == cny("-4.95")
        assert sum(m.minor for m in world.ledger.balances("CNY").values()) == 0

    def test_a_merchant_funded_rebate_comes_out_of_the_merchants_proceeds(self) -> None:
        world = World(funded_by="merchant")
        world.credited()
        merchant = world.ledger.balance(Account.merchant("m-1"), "CNY")
        commission = world.ledger.balance(Account.commission(), "CNY")
        assert merchant == cny("99.00") - commission - cny("4.95")
        assert world.ledger.balance(Account.rebate_expense(), "CNY").is_zero

    def test_it_is_credited_once_however_often_the_scheduler_runs(self) -> None:
        world = World()
        order_id = world.credited()
        for _ in range(3):
            world.clock.advance(timedelta(days=1))
            world.service.expire_due()
            world.service.reconcile(order_id)
        credit_postings = [p for p in world.ledger.all() if p.movement is Movement.REBATE_CREDIT]
        assert len(credit_postings) == 1
        assert len(world.events(RebateCredited)) == 1

    def test_auto_confirmed_receipt_freezes_it_too(self) -> None:
        world = World()
        order_id = world.paid()
        world.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        world.clock.advance(world.service.policy.auto_confirm_after)
        world.service.expire_due()
        assert world.rebate(order_id).state == "frozen"
        world.clock.advance(world.service.policy.after_sales_window)
        world.service.expire_due()
        assert world.payable() == cny("4.95")

    def test_the_order_money_view_leaves_rebate_postings_out(self) -> None:
        world = World()
        order_id = world.credited()
        money = world.service.money(order_id)
        assert money.balanced
        assert money.paid_in == cny("99.00")
        assert money.released + money.commission == cny("99.00")


class TestARefundBeforeCreditingShrinksOrVoidsIt:
    def test_a_partial_refund_reduces_it_in_proportion(self) -> None:
        world = World()
        order_id = world.paid()
        world.service.refund(order_id, MERCHANT, key="r1", amount=cny("33.00"))
        assert world.rebate(order_id).entitlement == cny("3.30")
        world.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        world.service.confirm_receipt(order_id, ALICE)
        world.clock.advance(world.service.policy.after_sales_window)
        world.service.expire_due()
        assert world.payable() == cny("3.30")

    def test_a_refund_of_everything_voids_it_and_nothing_is_ever_credited(self) -> None:
        world = World()
        order_id = world.received()
        world.service.refund(order_id, MERCHANT, key="all", amount=cny("99.00"))
        assert world.rebate(order_id).state == "void"
        world.clock.advance(timedelta(days=30))
        world.service.expire_due()
        assert world.payable().is_zero
        assert len(world.events(RebateVoided)) == 1

    def test_a_refund_pending_at_the_provider_counts_once_it_succeeds(self) -> None:
        world = World()
        order_id = world.paid()
        world.outcome = GatewayStatus.PENDING
        refund = world.service.refund(order_id, MERCHANT, key="r1", amount=cny("33.00"))
        assert world.rebate(order_id).entitlement == cny("4.95")
        world.service.handle_notification(world.gateway.settle_pending(refund.id))
        assert world.rebate(order_id).entitlement == cny("3.30")

    def test_an_after_sales_refund_through_the_ledger_reduces_it(self) -> None:
        world = World()
        order = world.service.buy_now(ALICE, "tea", 3)
        world.service.pay(order.id, ALICE)
        records, shipments = InMemoryAfterSalesRepository(), InMemoryShipmentRepository()
        common = {
            "orders": world.orders,
            "shipments": shipments,
            "clock": world.clock,
            "ids": world.service.ids,
            "publisher": world.publisher,
            "inventory": world.inventory,
        }
        fulfilment = FulfilmentService(after_sales=records, **common)  # type: ignore[arg-type]
        fulfilment.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1")
        fulfilment.record_tracking(TrackingEvent("e", "SF", "SF1", "delivered", world.clock.now()))
        after_sales = AfterSalesService(
            after_sales=records,
            refunds=ledger_refunds(world.service),
            policy=AfterSalesPolicy(),
            **common,  # type: ignore[arg-type]
        )
        request = after_sales.request(
            order.id, ALICE, kind="refund_only", reason="defective", items=[AfterSalesItem("1", 1)]
        )
        after_sales.approve(order.id, request.request_id, MERCHANT)
        rebate = world.rebate(order.id)
        assert (rebate.refunded, rebate.entitlement) == (cny("99.00"), cny("9.90"))


class TestARefundAfterCreditingIsClawedBack:
    def test_a_late_partial_refund_claws_back_the_excess_through_the_ledger(self) -> None:
        world = World()
        order_id = world.credited()
        world.service.refund(order_id, PLATFORM, key="late", amount=cny("33.00"))
        rebate = world.rebate(order_id)
        assert (rebate.state, rebate.clawed_back, rebate.paid_out) == (
            "credited",
            cny("1.65"),
            cny("3.30"),
        )
        assert world.payable() == cny("3.30")
        clawbacks = [p for p in world.ledger.all() if p.movement is Movement.REBATE_CLAWBACK]
        assert [(p.source.kind, p.target, p.amount) for p in clawbacks] == [
            (AccountKind.REBATE_PAYABLE, Account.rebate_expense(), cny("1.65"))
        ]

    def test_a_late_refund_of_everything_claws_it_all_back(self) -> None:
        world = World()
        order_id = world.credited()
        world.service.refund(order_id, PLATFORM, key="late", amount=cny("99.00"))
        assert world.rebate(order_id).state == "clawed_back"
        assert world.payable().is_zero
        world.service.reconcile(order_id)
        assert len([p for p in world.ledger.all() if p.movement is Movement.REBATE_CLAWBACK]) == 1


class TestAnAbandonedOrderVoidsItsRebateExactlyOnce:
    def test_cancelling_a_paid_order_before_shipment_voids_it_once(self) -> None:
        world = World()
        order_id = world.paid()
        world.service.cancel(order_id, ALICE, "changed my mind")
        assert world.rebate(order_id).state == "void"
        world.service.reconcile(order_id)
        world.clock.advance(timedelta(days=30))
        world.service.expire_due()
        assert len(world.events(RebateVoided)) == 1
        assert world.payable().is_zero

    def test_a_cancel_whose_refund_is_still_pending_voids_it_before_the_money_is_back(
        self,
    ) -> None:
        world = World()
        order_id = world.paid()
        world.outcome = GatewayStatus.PENDING
        world.service.cancel(order_id, ALICE, "changed my mind")
        rebate = world.rebate(order_id)
        assert (rebate.state, rebate.refunded) == ("void", cny("0.00"))
        world.outcome = GatewayStatus.SUCCEEDED
        for key in world.gateway.pending_keys():
            world.service.handle_notification(world.gateway.settle_pending(key))
        assert len(world.events(RebateVoided)) == 1

    def test_an_order_timed_out_unpaid_never_had_a_rebate(self) -> None:
        world = World()
        order = world.service.buy_now(ALICE, "tea", 1)
        world.clock.advance(timedelta(hours=1))
        world.service.expire_due()
        assert world.orders.get(order.id).state == "cancelled"
        assert world.service.rebates_of(order.id) == []


class TestBadInputChangesNothing:
    def test_a_refused_cancel_of_a_shipped_order_leaves_rebate_ledger_and_stock(self) -> None:
        world = World()
        order_id = world.paid()
        world.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel(order_id, ALICE, "too late")
        assert world.snapshot() == before

    def test_a_stranger_cannot_confirm_receipt_and_the_rebate_stays_pending(self) -> None:
        world = World()
        order_id = world.paid()
        world.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="SF1")
        before = world.snapshot()
        with pytest.raises(Forbidden):
            world.service.confirm_receipt(order_id, Actor.buyer("mallory"))
        assert world.snapshot() == before
        assert world.rebate(order_id).state == "pending"

    def test_a_rebate_promotion_with_an_unknown_funder_is_refused(self) -> None:
        with pytest.raises(DefinitionError):
            Promotion("bad", Cashback(percent=5, funded_by="carrier"))

    def test_the_rebate_of_an_unknown_order_is_none(self) -> None:
        assert World().service.rebates_of("order-missing") == []


class TestAServiceWithoutRebates:
    def test_it_pays_and_settles_orders_without_granting_rebates(self) -> None:
        world = World(rebates=False)
        order_id = world.received()
        world.clock.advance(timedelta(days=30))
        world.service.expire_due()
        assert world.orders.get(order_id).state == "closed"
        assert not [p for p in world.ledger.all() if p.movement is Movement.REBATE_CREDIT]
        with pytest.raises(DefinitionError):
            world.service.rebates_of(order_id)


class _RacingRebates(InMemoryRebateRepository):
    """A repository where another writer gets in first, once, at ``add`` or ``save``."""

    def __init__(self, *, on: str) -> None:
        super().__init__()
        self.on = on

    def add(self, rebate: Rebate) -> None:
        if self.on == "add":
            self.on = ""
            super().add(rebate)  # the other writer's grant
        super().add(rebate)

    def save(self, rebate: Rebate, expected_version: int) -> None:
        if self.on == "save":
            self.on = ""
            raise VersionConflict(rebate.id, expected_version, expected_version + 1)
        super().save(rebate, expected_version)


class _FlakyLedger(InMemoryLedger):
    """A ledger whose next append of rebate postings is lost (a crash after the save)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next_rebate_posting = False

    def append(self, postings: Sequence[Posting]) -> int:
        if self.lose_next_rebate_posting and any(
            p.movement is Movement.REBATE_CREDIT for p in postings
        ):
            self.lose_next_rebate_posting = False
            raise OSError("the process died before the ledger was written")
        return super().append(postings)


class TestOtherPaymentPathsAndTheirTiming:
    def test_a_credit_payment_grants_the_rebate_too(self) -> None:
        world = World()
        world.service.credit_lines = InMemoryCreditLines({"alice": cny("500.00")})
        (order,) = world.service.checkout(ALICE, [CartItem("tea", 1)], "credit")
        world.service.pay_with_credit(order.id, ALICE, periods=3)
        assert world.rebate(order.id).state == "pending"

    def test_an_open_refund_at_the_end_of_the_window_postpones_the_credit(self) -> None:
        world = World()
        order_id = world.received()
        world.clock.advance(world.service.policy.after_sales_window - timedelta(days=1))
        world.outcome = GatewayStatus.PENDING
        refund = world.service.refund(order_id, MERCHANT, key="slow", amount=cny("33.00"))
        world.clock.advance(timedelta(days=3))
        world.service.expire_due()
        assert world.orders.get(order_id).state == "completed"  # its clock is paused
        assert (world.rebate(order_id).state, world.payable()) == ("frozen", cny("0.00"))
        world.service.handle_notification(world.gateway.settle_pending(refund.id))
        world.clock.advance(timedelta(days=2))
        world.service.expire_due()
        assert world.orders.get(order_id).state == "closed"
        assert world.payable() == cny("3.30")

    def test_an_order_closed_before_rebates_were_offered_is_credited_on_the_next_run(
        self,
    ) -> None:
        world = World(rebates=False)
        order_id = world.received()
        world.clock.advance(world.service.policy.after_sales_window)
        world.service.expire_due()
        world.service.rebates = world.repo
        world.service.reconcile(order_id)
        assert world.rebate(order_id).state == "frozen"
        world.service.expire_due()
        assert world.payable() == cny("4.95")


class TestConcurrentWritersAndCrashes:
    def test_a_grant_racing_another_grant_keeps_one_rebate(self) -> None:
        world = World()
        world.repo = _RacingRebates(on="add")
        world.service.rebates = world.repo
        order_id = world.paid()
        assert len(world.service.rebates_of(order_id)) == 1
        assert len(world.events(RebateGranted)) == 0  # the other writer published its grant

    def test_a_sync_that_loses_a_race_runs_again_on_what_was_stored(self) -> None:
        world = World()
        order_id = world.paid()
        racing = _RacingRebates(on="")
        racing.add(world.rebate(order_id))
        world.service.rebates = world.repo = racing
        racing.on = "save"
        world.service.refund(order_id, MERCHANT, key="r1", amount=cny("33.00"))
        assert racing.on == ""  # the race happened
        assert world.rebate(order_id).entitlement == cny("3.30")

    def test_a_credit_that_loses_a_race_is_credited_by_the_next_run(self) -> None:
        world = World()
        order_id = world.received()
        racing = _RacingRebates(on="")
        racing.add(world.rebate(order_id))
        world.service.rebates = world.repo = racing
        world.clock.advance(world.service.policy.after_sales_window)
        racing.on = "save"
        world.service.expire_due()
        assert (world.orders.get(order_id).state, world.rebate(order_id).state) == (
            "closed",
            "frozen",
        )
        world.service.expire_due()
        assert (world.rebate(order_id).state, world.payable()) == ("credited", cny("4.95"))

    def test_a_credit_whose_posting_was_lost_is_posted_by_the_next_sync(self) -> None:
        world = World()
        ledger = _FlakyLedger()
        world.service.ledger = world.ledger = ledger
        order_id = world.received()
        world.clock.advance(world.service.policy.after_sales_window)
        ledger.lose_next_rebate_posting = True
        with pytest.raises(OSError, match="died"):
            world.service.expire_due()
        assert (world.rebate(order_id).state, world.payable()) == ("credited", cny("0.00"))
        world.service.reconcile(order_id)
        assert world.payable() == cny("4.95")
        world.service.reconcile(order_id)
        assert world.payable() == cny("4.95")


class TestCashOnDelivery:
    def test_a_cod_order_earns_its_rebate_once_the_cash_is_collected(self) -> None:
        world = World()
        (order,) = world.service.checkout(ALICE, [CartItem("tea", 1)], "cod")
        world.service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1")
        assert world.service.rebates_of(order.id) == []
        world.service.collect_cod(order.id, Actor.carrier("SF"), amount=order.total, key="door")
        (rebate,) = world.service.rebates_of(order.id)
        assert (rebate.state, rebate.amount) == ("frozen", cny("4.95"))
        world.clock.advance(world.service.policy.after_sales_window)
        world.service.expire_due()
        assert world.payable() == cny("4.95")
