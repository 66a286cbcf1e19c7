"""Group buying under the deposit policy through CampaignService, path by path.

A deposit order pays a deposit (held in the buyer's deposit account in the ledger); when the
campaign succeeds it owes the balance to the final tier by a stored deadline; paying it
applies the deposit, so the order's money shows the full final price paid in. An unpaid
balance at the deadline cancels the order, forfeits or refunds the deposit per the terms and
gives the stock back, once. A failed campaign refunds every deposit from its own charge.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, Money, OrderPolicy
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryCatalog,
    InMemoryGroupBuyRepository,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.group_buy import (
    GroupBuy,
    GroupBuyPayment,
    GroupBuyTerms,
    PriceTier,
    UnpaidBalance,
)
from ecommerce_core.errors import (
    DeadlinePassed,
    DefinitionError,
    Forbidden,
    InvalidInput,
    PaymentNotCompleted,
    TransitionNotAllowed,
)
from ecommerce_core.payments.ledger import Account, Movement
from ecommerce_core.ports import GatewayStatus, Product, RefundRequest
from ecommerce_core.services import CampaignService
from ecommerce_core.services.group_buys import (
    GroupBuyBalanceDue,
    GroupBuyBalanceExpired,
    GroupBuyBalancePaid,
    GroupBuyDepositPaid,
)

CNY = "CNY"
ALICE, BOB, CAROL = (Actor.buyer(n) for n in ("alice", "bob", "carol"))
MERCHANT = Actor.merchant("m-1")
STOCK = 100


def yuan(amount: str) -> Money:
    return Money.of(amount, CNY)


class World:
    """A campaign service over in-memory adapters, with 100 units of tea."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.refund_outcome = GatewayStatus.SUCCEEDED
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"tea": STOCK})
        self.ledger = InMemoryLedger()
        self.campaigns = InMemoryGroupBuyRepository()
        self.orders = InMemoryOrderRepository()
        self.publisher = RecordingPublisher()
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

    def create(self, **kwargs: object) -> GroupBuy:
        """List 10.00; 9.00 from 3 units, 8.00 from 5; minimum 3; deposit 2.00; 3 days."""
        values: dict[str, object] = {
            "list_price": yuan("10.00"),
            "tiers": [PriceTier(3, yuan("9.00")), PriceTier(5, yuan("8.00"))],
            "starts_at": self.clock.now(),
            "ends_at": self.clock.now() + timedelta(days=3),
            "minimum": 3,
            "payment": GroupBuyPayment.DEPOSIT,
            "deposit": yuan("2.00"),
        }
        values.update(kwargs)
        terms = GroupBuyTerms(**values)  # type: ignore[arg-type]
        return self.service.create_group_buy(MERCHANT, "tea", terms)

    def buy(self, campaign: GroupBuy, buyer: Actor, quantity: int, *, pay: bool = True) -> str:
        order = self.service.place_group_buy_order(buyer, campaign.id, quantity)
        if pay:
            self.service.pay(order.id, buyer)
        return order.id

    def state(self, order_id: str) -> str:
        return self.orders.get(order_id).state

    def close(self) -> None:
        self.clock.advance(timedelta(days=3))
        self.service.expire_due()

    def deposits_held(self, buyer: Actor) -> Money:
        return self.ledger.balances(CNY).get(Account.deposit(buyer.id), Money.zero(CNY))

    def merchant(self) -> Money:
        return self.ledger.balances(CNY).get(Account.merchant("m-1"), Money.zero(CNY))

    def events(self, kind: type) -> list[object]:
        return [e for e in self.publisher.published if isinstance(e, kind)]

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version) for o in self.orders.all()],
            [(c, self.campaigns.get(c).version) for c in self.campaigns._campaigns],
            self.inventory.available("tea"),
            self.inventory.on_hand("tea"),
            len(self.ledger.all()),
            dict(self.gateway.charged),
            dict(self.gateway.refunded),
        )

    def pending(self) -> list[str]:
        return self.gateway.pending_keys()

    def settle(self, *, succeeded: bool = True) -> dict[str, str]:
        (key,) = self.pending()
        return self.gateway.settle_pending(key, succeeded=succeeded)


def succeeded_world(policy: UnpaidBalance = UnpaidBalance.REFUND) -> tuple[World, str, str]:
    """Alice 3 units and Bob 2 reach the 8.00 tier; the window closes; both owe balances."""
    world = World()
    campaign = world.create(unpaid_balance=policy)
    alice, bob = world.buy(campaign, ALICE, 3), world.buy(campaign, BOB, 2)
    world.close()
    return world, alice, bob


class TestPayingTheDeposit:
    def test_a_paid_deposit_is_held_for_the_buyer_and_counts_toward_the_tiers(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 3)
        assert world.state(order_id) == "awaiting_group"
        assert world.campaigns.get(campaign.id).level == 3
        assert world.deposits_held(ALICE) == yuan("6.00")
        assert world.service.money(order_id).paid_in.is_zero  # still the buyer's money
        assert world.gateway.charged[order_id] == yuan("6.00")
        (event,) = world.events(GroupBuyDepositPaid)
        assert event.amount == yuan("6.00")  # type: ignore[attr-defined]

    def test_a_declined_deposit_changes_nothing_but_the_providers_answer(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order_id, ALICE)
        assert world.state(order_id) == "pending_payment"
        assert world.campaigns.get(campaign.id).level == 0
        assert world.ledger.all() == []

    def test_a_pending_deposit_joins_when_its_notification_comes_and_a_repeat_does_nothing(
        self,
    ) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order_id, ALICE)
        assert world.state(order_id) == "pending_payment"
        payload = world.settle()
        world.service.handle_notification(payload)
        assert world.state(order_id) == "awaiting_group"
        assert world.campaigns.get(campaign.id).level == 2
        before = world.snapshot()
        world.service.handle_notification(payload)
        assert world.snapshot() == before

    def test_a_deposit_that_lands_after_the_order_timed_out_is_refunded_once(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order_id, ALICE)
        world.clock.advance(timedelta(days=1))
        world.service.expire_due()
        assert world.state(order_id) == "cancelled"
        assert world.inventory.available("tea") == STOCK
        payload = world.settle()
        world.service.handle_notification(payload)
        world.service.handle_notification(payload)
        assert world.gateway.refunded[order_id] == yuan("4.00")
        assert world.deposits_held(ALICE).is_zero
        assert world.campaigns.get(campaign.id).level == 0

    def test_a_second_charge_for_a_paid_deposit_is_refunded_and_the_first_stays(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2)
        stray = world.gateway.report_capture(f"{campaign.id}:gbdep:{order_id}", yuan("4.00"))
        world.service.handle_notification(stray)
        assert world.gateway.refunded[order_id] == yuan("4.00")
        assert world.deposits_held(ALICE) == yuan("4.00")
        assert world.state(order_id) == "awaiting_group"

    def test_a_deposit_is_paid_in_full_at_once_by_the_orders_buyer(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2, pay=False)
        before = world.snapshot()
        with pytest.raises(InvalidInput):
            world.service.pay(order_id, ALICE, capture=False)
        with pytest.raises(Forbidden):
            world.service.pay(order_id, BOB)
        with pytest.raises(InvalidInput):
            world.service.pay(order_id, ALICE, key=" ")
        assert world.snapshot() == before

    def test_no_deposit_is_charged_once_the_window_closed(self) -> None:
        world = World()
        campaign = world.create()
        order_id = world.buy(campaign, ALICE, 2, pay=False)
        world.clock.advance(timedelta(days=3))
        before = world.snapshot()
        with pytest.raises(DeadlinePassed):
            world.service.pay(order_id, ALICE)
        assert world.snapshot() == before

    def test_the_deposit_that_reaches_the_cap_closes_the_campaign_with_balances_due(
        self,
    ) -> None:
        world = World()
        campaign = world.create(cap=5)
        alice = world.buy(campaign, ALICE, 3)
        bob = world.buy(campaign, BOB, 2)
        assert world.campaigns.get(campaign.id).state == "succeeded"
        assert world.state(alice) == world.state(bob) == "awaiting_balance"
        settlement = world.campaigns.get(campaign.id).settlement
        assert settlement is not None
        assert settlement.balance_due_at == world.clock.now() + timedelta(hours=48)


class TestPayingTheBalance:
    def test_the_close_fixes_the_final_tier_and_stores_each_balance_and_its_deadline(
        self,
    ) -> None:
        world, alice, bob = succeeded_world()
        settlement = world.campaigns.get(world.orders.get(alice).terms.promotion_ids[0]).settlement  # type: ignore[union-attr]
        assert settlement is not None
        assert settlement.unit_price == yuan("8.00")
        dues = {line.order_id: line.balance_due for line in settlement.lines}
        assert dues == {alice: yuan("18.00"), bob: yuan("12.00")}  # 8 x qty - 2 x qty
        assert settlement.balance_due_at == world.clock.now() + timedelta(hours=48)
        assert world.state(alice) == world.state(bob) == "awaiting_balance"
        events = world.events(GroupBuyBalanceDue)
        assert {e.balance_due for e in events} == {yuan("18.00"), yuan("12.00")}  # type: ignore[attr-defined]

    def test_paying_the_balance_applies_the_deposit_and_lets_the_order_ship(self) -> None:
        world, alice, _ = succeeded_world()
        world.service.pay(alice, ALICE)
        assert world.state(alice) == "awaiting_shipment"
        money = world.service.money(alice)
        assert money.paid_in == yuan("24.00")  # the full final price: 8.00 x 3
        assert money.released == yuan("24.00")
        assert money.balanced
        assert world.deposits_held(ALICE).is_zero
        assert world.gateway.charged[alice] == yuan("24.00")  # 6.00 deposit + 18.00 balance
        assert len(world.events(GroupBuyBalancePaid)) == 1
        world.service.ship(alice, MERCHANT, carrier="sf", tracking_number="SF1")
        assert world.state(alice) == "shipped"

    def test_a_balance_paid_through_a_late_notification_in_time_lets_it_ship(self) -> None:
        world, alice, _ = succeeded_world()
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(alice, ALICE)
        assert world.state(alice) == "awaiting_balance"
        payload = world.settle()
        world.service.handle_notification(payload)
        before = world.snapshot()
        world.service.handle_notification(payload)
        assert world.snapshot() == before
        assert world.state(alice) == "awaiting_shipment"
        assert world.service.money(alice).paid_in == yuan("24.00")

    def test_a_deposit_equal_to_the_final_price_leaves_nothing_to_charge(self) -> None:
        world = World()
        campaign = world.create(deposit=yuan("8.00"))
        alice = world.buy(campaign, ALICE, 5)
        world.close()
        charged = dict(world.gateway.charged)
        world.service.pay(alice, ALICE)
        assert world.state(alice) == "awaiting_shipment"
        assert world.gateway.charged == charged
        assert world.service.money(alice).paid_in == yuan("40.00")

    def test_a_balance_is_refused_before_the_close_and_after_its_deadline(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 3)
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.service.pay(alice, ALICE)
        assert world.snapshot() == before
        world.close()
        world.clock.advance(timedelta(hours=48))
        before = world.snapshot()
        with pytest.raises(DeadlinePassed):
            world.service.pay(alice, ALICE)
        assert world.snapshot() == before

    def test_a_balance_that_lands_after_the_deadline_is_refunded_once(self) -> None:
        world, alice, _ = succeeded_world()
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(alice, ALICE)
        world.clock.advance(timedelta(hours=48))
        world.service.expire_due()
        assert world.state(alice) == "cancelled"
        payload = world.settle()
        world.service.handle_notification(payload)
        world.service.handle_notification(payload)
        money = world.service.money(alice)
        assert money.paid_in == money.refunded == yuan("18.00")
        assert world.gateway.refunded[alice] == yuan("24.00")  # the balance and the deposit


class TestAnUnpaidBalance:
    def test_by_default_the_deposit_is_refunded_and_the_stock_released_once(self) -> None:
        world, alice, bob = succeeded_world()
        world.service.pay(bob, BOB)
        world.clock.advance(timedelta(hours=48))
        world.service.expire_due()
        assert world.state(alice) == "cancelled"
        assert world.state(bob) == "awaiting_shipment"
        assert world.gateway.refunded[alice] == yuan("6.00")
        assert world.deposits_held(ALICE).is_zero
        assert world.inventory.available("tea") == STOCK - 2
        (event,) = world.events(GroupBuyBalanceExpired)
        assert event.deposit == "refund"  # type: ignore[attr-defined]
        before = world.snapshot()
        world.clock.advance(timedelta(days=1))
        world.service.expire_due()
        assert world.snapshot()[2:] == before[2:]
        assert world.state(alice) == "cancelled"

    def test_under_the_forfeit_policy_the_merchant_keeps_the_deposit(self) -> None:
        world, alice, bob = succeeded_world(UnpaidBalance.FORFEIT)
        world.clock.advance(timedelta(hours=48))
        world.service.expire_due()
        world.service.expire_due()
        for order_id, kept in ((alice, yuan("6.00")), (bob, yuan("4.00"))):
            assert world.state(order_id) == "cancelled"
            money = world.service.money(order_id)
            assert money.paid_in == money.released == kept
            assert money.refunded.is_zero
        assert world.merchant() == yuan("10.00")
        assert order_id not in world.gateway.refunded
        forfeits = [p for p in world.ledger.all() if p.movement is Movement.FORFEIT]
        assert len(forfeits) == 2
        assert world.inventory.available("tea") == STOCK
        assert world.campaigns.get(world.orders.get(alice).terms.promotion_ids[0]).due_at is None  # type: ignore[union-attr]

    def test_an_order_awaiting_its_balance_cannot_be_cancelled(self) -> None:
        world, alice, _ = succeeded_world()
        before = world.snapshot()
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel(alice, ALICE, "changed my mind")
        assert world.snapshot() == before


class TestAbandonPaths:
    def test_a_failed_campaign_refunds_every_deposit_from_its_own_charge(self) -> None:
        world = World()
        campaign = world.create(minimum=10)
        alice, bob = world.buy(campaign, ALICE, 3), world.buy(campaign, BOB, 2)
        unpaid = world.buy(campaign, CAROL, 1, pay=False)
        world.close()
        assert world.campaigns.get(campaign.id).state == "failed"
        for order_id, buyer, deposit in ((alice, ALICE, "6.00"), (bob, BOB, "4.00")):
            assert world.state(order_id) == "cancelled"
            assert world.gateway.refunded[order_id] == yuan(deposit)
            assert world.deposits_held(buyer).is_zero
        assert world.state(unpaid) == "cancelled"
        assert world.inventory.available("tea") == STOCK
        before = world.snapshot()
        world.service.expire_due()
        assert world.snapshot() == before

    def test_a_cancelled_campaign_refunds_every_deposit(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 3)
        world.service.cancel_group_buy(campaign.id, MERCHANT, reason="supplier failed")
        assert world.state(alice) == "cancelled"
        assert world.gateway.refunded[alice] == yuan("6.00")
        assert world.inventory.available("tea") == STOCK

    def test_a_deposit_order_cancelled_before_the_close_leaves_and_is_refunded(self) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 3)
        world.service.cancel(alice, ALICE, "changed my mind")
        assert world.state(alice) == "cancelled"
        assert world.campaigns.get(campaign.id).level == 0
        assert world.gateway.refunded[alice] == yuan("6.00")
        assert world.deposits_held(ALICE).is_zero
        assert world.inventory.available("tea") == STOCK

    def test_an_unpaid_deposit_order_cancelled_gives_its_stock_back(self) -> None:
        world = World()
        campaign = world.create()
        unpaid = world.buy(campaign, ALICE, 3, pay=False)
        world.service.cancel(unpaid, ALICE, "changed my mind")
        assert world.state(unpaid) == "cancelled"
        assert world.inventory.available("tea") == STOCK
        assert world.ledger.all() == []

    def test_an_order_cancelled_after_its_balance_gets_both_charges_back(self) -> None:
        world, alice, _ = succeeded_world()
        world.service.pay(alice, ALICE)
        world.service.cancel(alice, MERCHANT, "out of stock")
        money = world.service.money(alice)
        assert world.state(alice) == "cancelled"
        assert money.paid_in == money.refunded == yuan("24.00")
        assert world.gateway.refunded[alice] == yuan("24.00")
        world.service.cancel  # noqa: B018  # (a second cancel is refused by the process)
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel(alice, MERCHANT, "again")
        assert world.gateway.refunded[alice] == yuan("24.00")

    def test_a_deposit_refund_the_provider_left_pending_is_posted_by_its_callback(
        self,
    ) -> None:
        world = World()
        campaign = world.create()
        alice = world.buy(campaign, ALICE, 3)
        world.refund_outcome = GatewayStatus.PENDING
        world.service.cancel(alice, ALICE, "changed my mind")
        assert world.deposits_held(ALICE) == yuan("6.00")  # not back yet
        payload = world.settle()
        world.service.handle_notification(payload)
        world.service.handle_notification(payload)
        assert world.deposits_held(ALICE).is_zero
        releases = [p for p in world.ledger.all() if p.key.endswith(":release")]
        assert len(releases) == 1


class TestTheTerms:
    def test_a_balance_window_must_be_positive(self) -> None:
        world = World()
        with pytest.raises(DefinitionError, match="balance_window"):
            world.create(balance_window=timedelta(0))

    @settings(max_examples=25, deadline=None)
    @given(
        quantities=st.lists(st.integers(1, 4), min_size=1, max_size=4),
        deposit=st.integers(1, 800),
    )
    def test_a_paid_balance_always_brings_the_order_to_the_final_price(
        self, quantities: list[int], deposit: int
    ) -> None:
        world = World()
        campaign = world.create(deposit=Money(deposit, CNY), minimum=1)
        buyers = [Actor.buyer(f"b{i}") for i in range(len(quantities))]
        orders = [world.buy(campaign, b, q) for b, q in zip(buyers, quantities, strict=True)]
        world.close()
        settlement = world.campaigns.get(campaign.id).settlement
        assert settlement is not None
        for order_id, buyer, quantity in zip(orders, buyers, quantities, strict=True):
            world.service.pay(order_id, buyer)
            money = world.service.money(order_id)
            assert money.paid_in == settlement.unit_price * quantity
            assert money.balanced
            assert world.deposits_held(buyer).is_zero
        assert sum(m.minor for m in world.ledger.balances(CNY).values()) == 0
