"""A deposit refund the provider declines at once is asked again, and paid back once.

When a deposit campaign fails (minimum missed, or cancelled), when an order leaves it, or when a
buyer misses the balance under ``UnpaidBalance.REFUND``, the deposit goes back from its own
charge (ledger ``<charge>:<transaction>:release``); a balance that lands too late is refunded
(``...:refund``). A refund the provider declines is noted on the campaign
(``declined_refunds``) and asked again by ``reconcile(order_id, retry_failed=True)`` under a
fresh key; one the provider left pending is noted (``pending_refunds``) and never asked twice.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.sqlite import SqliteDatabase
from ecommerce_core.adapters.sqlite_campaigns import SqliteGroupBuyRepository
from ecommerce_core.campaigns.group_buy import GroupBuy, GroupBuyRefundDeclined, UnpaidBalance
from ecommerce_core.errors import PaymentNotCompleted
from ecommerce_core.payments.ledger import Movement
from ecommerce_core.ports import GatewayStatus, RefundRequest
from test_group_buy_deposit_aftersales import MERCHANT
from test_group_buy_deposit_service import ALICE, BOB, CNY, World, yuan
from test_group_buy_pending_refunds import HonestShop

CODEC = JsonCodec()
STATUSES = st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.DECLINED, GatewayStatus.PENDING])


class Provider(HonestShop):
    """An honest provider whose refund answers follow a script (then the last one, forever)."""

    def __init__(self, answers: list[GatewayStatus] | None = None) -> None:
        self.answers = list(answers or [])
        super().__init__()

    def _decide(self, request: object) -> GatewayStatus:
        if isinstance(request, RefundRequest) and self.answers:
            self.refund_outcome = self.answers.pop(0)
        return super()._decide(request)  # type: ignore[arg-type]

    def campaign(self) -> GroupBuy:
        (campaign_id,) = self.campaigns._campaigns
        return self.campaigns.get(campaign_id)

    def releases(self, order_id: str) -> list[str]:
        """The ledger keys of the refunds posted for ``order_id``."""
        return [p.key for p in self.ledger.postings(order_id) if p.movement is Movement.REFUND]

    def retry_all(self, order_ids: list[str]) -> None:
        for order_id in order_ids:
            self.service.reconcile(order_id, retry_failed=True)


def failed(world: World, how: str) -> list[str]:
    """Alice (3 units) and Bob (2) paid deposits; the campaign then gives them back by ``how``."""
    campaign = world.create(minimum=10 if how == "minimum missed" else 3)
    orders = [world.buy(campaign, ALICE, 3), world.buy(campaign, BOB, 2)]
    if how == "minimum missed":
        world.close()
    elif how == "cancelled":
        world.service.cancel_group_buy(campaign.id, MERCHANT, reason="supplier failed")
    elif how == "left":
        world.service.cancel(orders[0], ALICE, "changed my mind")
        world.service.cancel(orders[1], BOB, "changed my mind")
    else:  # "balance missed": the window closes at 8.00, nobody pays, the deadline passes
        world.close()
        world.clock.advance(timedelta(hours=48))
        world.service.expire_due()
    return orders


HOW = ["minimum missed", "cancelled", "left", "balance missed"]


class TestADeclinedDepositRefundIsAskedAgain:
    @pytest.mark.parametrize("how", HOW)
    def test_reconcile_with_retry_failed_asks_again_under_a_new_key_and_posts_it_once(
        self, how: str
    ) -> None:
        world = Provider()
        world.refund_outcome = GatewayStatus.DECLINED
        alice, bob = failed(world, how)
        assert world.state(alice) == world.state(bob) == "cancelled"
        assert world.deposits_held(ALICE) == yuan("6.00")  # the provider said no
        declined = world.campaign().declined_refunds
        assert len(declined) == 2
        assert all(key.endswith(":release") for key in declined)
        world.refund_outcome = GatewayStatus.SUCCEEDED
        world.service.reconcile(alice)  # without retry_failed: left as it is
        assert world.deposits_held(ALICE) == yuan("6.00")
        world.retry_all([alice, bob])
        assert world.gateway.refunded[alice] == yuan("6.00")
        assert world.gateway.refunded[bob] == yuan("4.00")
        assert world.deposits_held(ALICE).is_zero
        assert world.deposits_held(BOB).is_zero
        asked = [r.idempotency_key for r in world.asked if r.order_id == alice]
        assert asked[1] == f"{asked[0]}:retry-again-1"  # a key the provider has not declined
        before, count = world.snapshot(), len(world.asked)
        world.retry_all([alice, bob])  # paid back: nothing more to ask
        assert (world.snapshot(), len(world.asked)) == (before, count)
        assert world.over_asked == []
        for order_id in (alice, bob):
            assert len(world.releases(order_id)) == 1
            world.books_agree(order_id)

    def test_a_retry_the_provider_declines_again_is_asked_under_the_next_key(self) -> None:
        world = Provider([GatewayStatus.DECLINED] * 3 + [GatewayStatus.SUCCEEDED])
        alice, _ = failed(world, "minimum missed")
        world.service.reconcile(alice, retry_failed=True)  # declined a second time
        assert world.deposits_held(ALICE) == yuan("6.00")
        world.service.reconcile(alice, retry_failed=True)
        assert world.deposits_held(ALICE).is_zero
        keys = [r.idempotency_key for r in world.asked if r.order_id == alice]
        assert [k.rpartition(":")[2] for k in keys] == ["release", "retry-again-1", "retry-again-2"]
        world.books_agree(alice)

    def test_a_late_balance_the_provider_declines_to_refund_is_asked_again(self) -> None:
        world = Provider()
        campaign = world.create(unpaid_balance=UnpaidBalance.FORFEIT)
        alice = world.buy(campaign, ALICE, 3)
        world.buy(campaign, BOB, 2)
        world.close()
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(alice, ALICE)
        world.clock.advance(timedelta(hours=48))
        world.service.expire_due()  # the deposit is forfeited; the balance is still coming
        world.refund_outcome = GatewayStatus.DECLINED
        world.service.handle_notification(world.settle())  # 18.00 lands too late
        assert world.service.money(alice).refunded.is_zero
        world.refund_outcome = GatewayStatus.SUCCEEDED
        world.service.reconcile(alice, retry_failed=True)
        money = world.service.money(alice)
        assert money.refunded == yuan("18.00")
        assert world.gateway.refunded[alice] == yuan("18.00")
        world.books_agree(alice)


class TestAPendingDepositRefundIsNotAskedTwice:
    def test_a_pending_release_is_noted_and_reconcile_leaves_it_to_its_callback(self) -> None:
        world = Provider()
        world.refund_outcome = GatewayStatus.PENDING
        alice, bob = failed(world, "minimum missed")
        pending = world.campaign().pending_refunds
        assert {amount for _, _, amount in pending} == {yuan("6.00"), yuan("4.00")}
        count = len(world.asked)
        world.retry_all([alice, bob])
        assert len(world.asked) == count  # nothing asked again while the provider thinks
        world.answer_all()
        assert world.campaign().pending_refunds == ()
        assert world.gateway.refunded[alice] == yuan("6.00")
        world.retry_all([alice, bob])
        assert len(world.asked) == count
        world.books_agree(alice)

    def test_a_pending_release_that_fails_is_asked_again_and_paid_back_once(self) -> None:
        world = Provider()
        world.refund_outcome = GatewayStatus.PENDING
        alice, bob = failed(world, "cancelled")
        world.refund_outcome = GatewayStatus.DECLINED  # the callback's own retry: declined
        world.answer_all(succeeded=False)
        campaign = world.campaign()
        assert campaign.pending_refunds == ()
        assert len(campaign.declined_refunds) == 4  # each failed key and each declined retry
        world.refund_outcome = GatewayStatus.SUCCEEDED
        world.retry_all([alice, bob])
        assert world.gateway.refunded == {alice: yuan("6.00"), bob: yuan("4.00")}
        assert world.over_asked == []
        for order_id in (alice, bob):
            assert len(world.releases(order_id)) == 1
            world.books_agree(order_id)


class TestTheDeclineIsKeptOnTheCampaign:
    def test_it_is_announced_and_reads_back_from_json_and_sqlite(self) -> None:
        world = Provider()
        world.refund_outcome = GatewayStatus.DECLINED
        failed(world, "minimum missed")
        campaign = world.campaign()
        assert len(campaign.declined_refunds) == 2
        declined = [e for e in world.publisher.published if isinstance(e, GroupBuyRefundDeclined)]
        assert [e.request_key for e in declined] == list(campaign.declined_refunds)
        name, text = CODEC.encode_aggregate(campaign)
        assert CODEC.decode_aggregate(GroupBuy, name, text).declined_refunds == (
            campaign.declined_refunds
        )
        with SqliteDatabase(":memory:") as db:
            stored = SqliteGroupBuyRepository(db)
            stored.add(campaign)
            assert stored.get(campaign.id).declined_refunds == campaign.declined_refunds

    def test_a_campaign_stored_without_the_record_reads_back_with_none(self) -> None:
        world = Provider()
        world.refund_outcome = GatewayStatus.DECLINED
        failed(world, "minimum missed")
        name, text = CODEC.encode_aggregate(world.campaign())
        document = json.loads(text)
        del document["declined_refunds"], document["pending_refunds"]
        back = CODEC.decode_aggregate(GroupBuy, name, json.dumps(document))
        assert (back.declined_refunds, back.pending_refunds) == ((), ())

    def test_a_decline_noted_in_sqlite_is_asked_again_by_a_service_reading_it_back(
        self,
    ) -> None:
        with SqliteDatabase(":memory:") as db:
            world = Provider()
            world.service.group_buys = SqliteGroupBuyRepository(db)
            campaign = world.create(minimum=10)
            alice = world.buy(campaign, ALICE, 3)
            world.refund_outcome = GatewayStatus.DECLINED
            world.close()
            assert world.service.group_buy(campaign.id).declined_refunds != ()
            world.refund_outcome = GatewayStatus.SUCCEEDED
            world.service.reconcile(alice, retry_failed=True)
            assert world.gateway.refunded[alice] == yuan("6.00")
            assert world.deposits_held(ALICE).is_zero
            world.books_agree(alice)


class TestEveryDepositComesBackExactlyOnce:
    @settings(max_examples=40, deadline=None)
    @given(
        how=st.sampled_from(HOW),
        answers=st.lists(STATUSES, max_size=12),
        callbacks=st.lists(st.booleans(), max_size=12),
    )
    def test_refunds_declined_or_pending_at_random_and_retried_pay_each_deposit_back_once(
        self,
        how: str,
        answers: list[GatewayStatus],
        callbacks: list[bool],
    ) -> None:
        world = Provider(answers)
        world.refund_outcome = GatewayStatus.SUCCEEDED
        orders = failed(world, how)
        outcomes = iter(callbacks)
        for _ in range(6):  # the provider answers; declined ones are asked again
            for key in world.pending():
                succeeded = next(outcomes, True)
                world.service.handle_notification(
                    world.gateway.settle_pending(key, succeeded=succeeded)
                )
            world.retry_all(orders)
        world.answers, world.refund_outcome = [], GatewayStatus.SUCCEEDED
        world.answer_all()
        world.retry_all(orders)
        event(f"declined keys: {min(len(world.campaign().declined_refunds), 3)}")
        deposits = dict(zip(orders, (yuan("6.00"), yuan("4.00")), strict=True))
        for order_id, deposit in deposits.items():
            assert world.gateway.refunded[order_id] == deposit  # paid back exactly once
            assert len(world.releases(order_id)) == 1
            world.books_agree(order_id)
        assert world.deposits_held(ALICE).is_zero
        assert world.deposits_held(BOB).is_zero
        assert sum(m.minor for m in world.ledger.balances(CNY).values()) == 0
        assert world.campaign().pending_refunds == ()
        assert world.pending() == []
        assert world.over_asked == []
