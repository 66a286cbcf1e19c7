"""Refunds of a deposit order the provider left pending count until their callback settles them.

A deposit order's money is two charges (its balance, then its deposit) with no payment
record: the campaign notes each refund part the provider left pending (``pending_refunds``)
and the total each caller's key asked (``refund_keys``). A later refund or a cancel asks each
charge only for what it still holds after posted *and* pending refunds, a repeated key must ask
the same total, and a cancel's return the provider declined (or that a failed pending refund
left short) is asked again by ``reconcile(order_id, retry_failed=True)``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, Money
from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.memory import ScriptedPaymentGateway
from ecommerce_core.adapters.sqlite import SqliteDatabase
from ecommerce_core.adapters.sqlite_campaigns import SqliteGroupBuyRepository
from ecommerce_core.campaigns.group_buy import (
    GroupBuy,
    GroupBuyRefundKeyed,
    GroupBuyRefundPending,
    GroupBuyRefundSettled,
)
from ecommerce_core.errors import CurrencyMismatch, Forbidden, InvalidInput
from ecommerce_core.payments import RefundStatus
from ecommerce_core.ports import GatewayStatus, RefundRequest
from test_group_buy_deposit_aftersales import MERCHANT, Shop, yuan
from test_group_buy_deposit_service import ALICE

CODEC = JsonCodec()
STATUSES = st.sampled_from([GatewayStatus.SUCCEEDED, GatewayStatus.DECLINED, GatewayStatus.PENDING])


def over_asked(gateway: ScriptedPaymentGateway) -> list[RefundRequest]:
    """The refunds the provider declined for asking a charge more than it still holds.

    The scripted gateway declines, as a real provider does, a refund over what its charge
    captured less what was refunded and what refunds still pending there ask (they reserve
    their amount); read from its own answers, each request once.
    """
    return [
        asked
        for asked, answer in gateway._answers.values()
        if isinstance(asked, RefundRequest) and answer.message == "more than is left to refund"
    ]


class HonestShop(Shop):
    """The provider declines a refund asking a charge for more than it still holds.

    What a charge holds is what the provider captured under its payment id less what it
    refunded and what refunds still pending there ask; every such decline is listed by
    ``over_asked`` (the service should never cause one).
    """

    @property
    def over_asked(self) -> list[RefundRequest]:
        return over_asked(self.gateway)

    def answer_all(self, *, succeeded: bool = True) -> None:
        for key in self.pending():
            self.service.handle_notification(self.gateway.settle_pending(key, succeeded=succeeded))


def campaign_of(shop: Shop) -> GroupBuy:
    return shop.campaigns.get(shop.campaign_id())


class TestAPendingRefundIsNotedOnTheCampaign:
    def test_a_part_left_pending_is_noted_until_its_callback_posts_it(self) -> None:
        shop = Shop()
        order_id = shop.paid()  # 24.00: the balance charge 18.00, the deposit charge 6.00
        shop.refund_outcome = GatewayStatus.PENDING
        refund = shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        assert refund.status is RefundStatus.PENDING
        ((request_key, payment_id, amount),) = campaign_of(shop).pending_refunds
        assert ":gbbal:" in payment_id
        assert request_key.startswith(payment_id)
        assert request_key.endswith(":keyed-refund:k")
        assert amount == yuan("8.00")
        shop.service.handle_notification(shop.settle())
        assert campaign_of(shop).pending_refunds == ()
        assert shop.service.money(order_id).refunded == yuan("8.00")
        shop.books_agree(order_id)

    def test_a_pending_part_that_fails_stops_counting_and_is_asked_again_under_a_new_key(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        ((request_key, _, _),) = campaign_of(shop).pending_refunds
        shop.service.handle_notification(shop.settle(succeeded=False))
        campaign = campaign_of(shop)
        assert campaign.pending_refunds == ()
        assert request_key in campaign.declined_refunds
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        refund = shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        assert refund.status is RefundStatus.SUCCEEDED
        assert shop.service.money(order_id).refunded == yuan("8.00")
        shop.books_agree(order_id)

    def test_asking_a_pending_part_again_learns_its_outcome_before_its_callback_comes(
        self,
    ) -> None:
        # found by the after-sales stateful machine: the provider had failed a pending part
        # whose callback was late; asked again under its key it said so, the part was noted
        # declined but still counted pending, and once its retry was pending too the two
        # counted twice: the rest of the order could no longer be refunded
        shop = HonestShop()
        order_id = shop.paid()  # 24.00
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        late = shop.settle(succeeded=False)  # failed at the provider; the callback is late
        again = shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        assert again.status is RefundStatus.FAILED
        assert campaign_of(shop).pending_refunds == ()
        shop.refund_outcome = GatewayStatus.PENDING
        retried = shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        assert retried.status is RefundStatus.PENDING  # under a fresh key, pending
        assert len(campaign_of(shop).pending_refunds) == 1
        shop.service.handle_notification(late)  # the late callback changes nothing now
        assert len(campaign_of(shop).pending_refunds) == 1
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        rest = shop.service.refund(order_id, MERCHANT, key="rest", amount=yuan("16.00"))
        assert rest.status is RefundStatus.SUCCEEDED
        shop.answer_all()
        assert shop.service.money(order_id).refunded == yuan("24.00")
        assert shop.over_asked == []
        shop.books_agree(order_id)

    def test_a_later_refund_asks_each_charge_only_what_it_holds_beside_a_pending_one(
        self,
    ) -> None:
        shop = HonestShop()
        order_id = shop.paid()
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="first", amount=yuan("15.00"))
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        later = shop.service.refund(order_id, MERCHANT, key="second", amount=yuan("8.00"))
        assert later.status is RefundStatus.SUCCEEDED  # 3.00 from the balance, 5.00 deposit
        assert shop.refunded_from(order_id, ":gbdep:") == yuan("5.00")
        with pytest.raises(InvalidInput, match="more than the order can still refund"):
            shop.service.refund(order_id, MERCHANT, key="third", amount=yuan("2.00"))
        shop.answer_all()
        assert shop.service.money(order_id).refunded == yuan("23.00")
        assert shop.over_asked == []
        shop.books_agree(order_id)


class TestARepeatedKeyAsksTheSameTotal:
    @pytest.mark.parametrize("outcome", [GatewayStatus.PENDING, GatewayStatus.DECLINED])
    @pytest.mark.parametrize("other", ["5.00", "12.00"])
    def test_a_key_asked_again_for_another_total_is_refused_and_changes_nothing(
        self, outcome: GatewayStatus, other: str
    ) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.refund_outcome = outcome  # nothing posted under the key: only its record knows
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        before, asked = shop.snapshot(), len(shop.asked)
        with pytest.raises(InvalidInput, match="already used for another amount"):
            shop.service.refund(order_id, MERCHANT, key="k", amount=yuan(other))
        assert shop.snapshot() == before
        assert len(shop.asked) == asked  # the provider was not asked

    def test_the_same_total_again_is_a_retry_that_gives_back_nothing_more(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        again = shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        assert again.status is RefundStatus.SUCCEEDED
        assert campaign_of(shop).refund_keys == ((order_id, "k", yuan("8.00")),)
        assert shop.gateway.refunded[order_id] == yuan("8.00")
        shop.books_agree(order_id)


class TestACancelledOrderGetsEverythingBack:
    def test_a_return_the_provider_declines_is_asked_again_by_reconcile_with_retry_failed(
        self,
    ) -> None:
        shop = Shop()
        order_id = shop.paid()
        shop.refund_outcome = GatewayStatus.DECLINED
        shop.service.cancel(order_id, MERCHANT, "out of stock")
        assert shop.service.money(order_id).refunded == Money.zero("CNY")
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        shop.service.reconcile(order_id)  # without retry_failed: left as it is
        assert shop.service.money(order_id).refunded == Money.zero("CNY")
        shop.service.reconcile(order_id, retry_failed=True)
        money = shop.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("24.00")
        shop.service.reconcile(order_id, retry_failed=True)  # nothing more to give back
        assert shop.gateway.refunded[order_id] == yuan("24.00")
        shop.books_agree(order_id)

    def test_what_a_pending_refund_that_failed_after_the_cancel_left_is_given_back(self) -> None:
        shop = HonestShop()
        order_id = shop.paid()
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        shop.service.cancel(order_id, MERCHANT, "out of stock")  # 10.00 + 6.00 back
        assert shop.service.money(order_id).refunded == yuan("16.00")
        shop.answer_all(succeeded=False)  # the pending 8.00 fails: the balance still holds it
        assert shop.service.money(order_id).refunded == yuan("16.00")
        shop.service.reconcile(order_id, retry_failed=True)
        money = shop.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("24.00")
        assert shop.over_asked == []
        shop.books_agree(order_id)

    @settings(max_examples=30, deadline=None)
    @given(
        refunds=st.lists(
            st.tuples(st.sampled_from(["1.00", "5.00", "13.00", "19.00"]), STATUSES), max_size=3
        ),
        returned=STATUSES,
        answers=st.lists(st.booleans(), max_size=6),
    )
    def test_pending_refunds_then_a_cancel_give_back_all_that_was_paid_never_asking_too_much(
        self,
        refunds: list[tuple[str, GatewayStatus]],
        returned: GatewayStatus,
        answers: list[bool],
    ) -> None:
        shop = HonestShop()
        order_id = shop.paid()
        for n, (amount, outcome) in enumerate(refunds):
            shop.refund_outcome = outcome
            try:
                shop.service.refund(order_id, MERCHANT, key=f"k{n}", amount=yuan(amount))
            except InvalidInput:  # more than the charges still hold
                event("a refund asked more than was left")
        shop.refund_outcome = returned
        shop.service.cancel(order_id, Actor.buyer(ALICE.id), "changed my mind")
        event(f"pending at the cancel: {bool(campaign_of(shop).pending_refunds)}")
        shop.refund_outcome = GatewayStatus.SUCCEEDED
        for succeeded, key in zip(answers, shop.pending(), strict=False):
            shop.service.handle_notification(shop.gateway.settle_pending(key, succeeded=succeeded))
        for _ in range(3):  # the provider answers the rest; declined returns are asked again
            shop.answer_all()
            shop.service.reconcile(order_id, retry_failed=True)
        shop.answer_all()
        money = shop.service.money(order_id)
        assert money.refunded == money.paid_in == yuan("24.00")
        assert campaign_of(shop).pending_refunds == ()
        assert shop.over_asked == []
        shop.books_agree(order_id)


class TestTheRecordsAreKeptWhole:
    def noted(self) -> tuple[Shop, GroupBuy, str]:
        shop = Shop()
        order_id = shop.paid()
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("20.00"))
        return shop, campaign_of(shop), order_id

    def test_a_campaign_with_pending_refunds_and_used_keys_reads_back_the_same(self) -> None:
        _, campaign, order_id = self.noted()
        assert len(campaign.pending_refunds) == 2  # 18.00 balance, 2.00 deposit
        assert campaign.refund_keys == ((order_id, "k", yuan("20.00")),)
        name, text = CODEC.encode_aggregate(campaign)
        back = CODEC.decode_aggregate(GroupBuy, name, text)
        assert back.pending_refunds == campaign.pending_refunds
        assert back.refund_keys == campaign.refund_keys
        with SqliteDatabase(":memory:") as db:
            stored = SqliteGroupBuyRepository(db)
            stored.add(campaign)
            read = stored.get(campaign.id)
            assert (read.pending_refunds, read.refund_keys) == (
                campaign.pending_refunds,
                campaign.refund_keys,
            )

    def test_a_campaign_stored_before_these_records_reads_back_with_none(self) -> None:
        _, campaign, _ = self.noted()
        name, text = CODEC.encode_aggregate(campaign)
        document = json.loads(text)
        del document["pending_refunds"], document["refund_keys"]
        back = CODEC.decode_aggregate(GroupBuy, name, json.dumps(document))
        assert (back.pending_refunds, back.refund_keys) == ((), ())
        assert back.declined_refunds == campaign.declined_refunds

    def test_each_record_is_announced_by_its_event(self) -> None:
        shop = Shop()
        order_id = shop.paid()
        published = len(shop.publisher.published)
        shop.refund_outcome = GatewayStatus.PENDING
        shop.service.refund(order_id, MERCHANT, key="k", amount=yuan("8.00"))
        shop.service.handle_notification(shop.settle())
        kinds = [type(e) for e in shop.publisher.published[published:]]
        assert kinds == [GroupBuyRefundKeyed, GroupBuyRefundPending, GroupBuyRefundSettled]


class TestRefusedCommandsChangeNothing:
    def test_noting_or_settling_is_refused_for_others_unknown_orders_and_bad_amounts(
        self,
    ) -> None:
        shop, campaign, order_id = self.noted()
        now = shop.clock.now()
        before = (campaign.pending_refunds, campaign.refund_keys, campaign.version)
        refused = [
            (Forbidden, lambda: campaign.note_pending_refund(
                order_id=order_id, request_key="r", payment_id="p", amount=yuan("1.00"),
                now=now, actor=ALICE,
            )),
            (InvalidInput, lambda: campaign.note_pending_refund(
                order_id="nobody", request_key="r", payment_id="p", amount=yuan("1.00"), now=now
            )),
            (InvalidInput, lambda: campaign.note_pending_refund(
                order_id=order_id, request_key="r", payment_id="p", amount=yuan("0.00"), now=now
            )),
            (InvalidInput, lambda: campaign.note_pending_refund(
                order_id=order_id, request_key=" ", payment_id="p", amount=yuan("1.00"), now=now
            )),
            (CurrencyMismatch, lambda: campaign.note_pending_refund(
                order_id=order_id, request_key="r", payment_id="p",
                amount=Money.of("1.00", "USD"), now=now,
            )),
            (Forbidden, lambda: campaign.settle_pending_refund(
                order_id=order_id, request_key=campaign.pending_refunds[0][0], now=now,
                actor=MERCHANT,
            )),
            (InvalidInput, lambda: campaign.settle_pending_refund(
                order_id="nobody", request_key=campaign.pending_refunds[0][0], now=now
            )),
            (InvalidInput, lambda: campaign.note_refund_key(
                order_id=order_id, key="k", total=yuan("19.00"), now=now
            )),
            (InvalidInput, lambda: campaign.note_refund_key(
                order_id="nobody", key="j", total=yuan("1.00"), now=now
            )),
            (Forbidden, lambda: campaign.note_refund_key(
                order_id=order_id, key="j", total=yuan("1.00"), now=now, actor=ALICE
            )),
        ]  # fmt: skip
        for error, command in refused:
            with pytest.raises(error):
                command()
            assert (campaign.pending_refunds, campaign.refund_keys, campaign.version) == before
        assert campaign.events == ()

    def test_noting_the_same_thing_again_or_settling_what_is_not_pending_changes_nothing(
        self,
    ) -> None:
        shop, campaign, order_id = self.noted()
        now = shop.clock.now()
        request_key, payment_id, amount = campaign.pending_refunds[0]
        before = (campaign.pending_refunds, campaign.refund_keys, campaign.version)
        assert not campaign.note_pending_refund(
            order_id=order_id,
            request_key=request_key,
            payment_id=payment_id,
            amount=amount,
            now=now,
        )
        assert not campaign.settle_pending_refund(order_id=order_id, request_key="never", now=now)
        assert not campaign.note_refund_key(
            order_id=order_id, key="k", total=yuan("20.00"), now=now
        )
        assert (campaign.pending_refunds, campaign.refund_keys, campaign.version) == before
        assert campaign.events == ()

    noted = TestTheRecordsAreKeptWhole.noted
