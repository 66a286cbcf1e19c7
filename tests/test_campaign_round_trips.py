"""Any reachable auction, round, group buy or rebate survives the JSON codec whole.

A campaign kept by a document store is rebuilt from its stored fields: counters and indexes
it keeps outside its constructor (units joined, orders per buyer, held shares, the order
shares were paid in) must come back as they were, or a campaign read back would silently
count from zero. Each property drives two copies of one aggregate with the same random
commands: one lives in memory, the other is written to JSON and read back after every step.
Both must accept and refuse the same commands with the same results, hold the same state
(private counters included) and answer every query the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.auctions import Auction, AuctionTerms, SecondChance
from ecommerce_core.campaigns.group_buy import (
    GroupBuy,
    GroupBuyPayment,
    GroupBuyTerms,
    PriceTier,
    TierMeasure,
)
from ecommerce_core.campaigns.lucky_draw import DrawRound, DrawTerms, ForfeitPolicy, PublicNumber
from ecommerce_core.campaigns.rebate import Rebate, RebateRule
from ecommerce_core.testing.contracts import CONTRACT_TIME

CODEC = JsonCodec()
BUYERS = ("alice", "bob", "carol", "dan")
SYSTEM = Actor.system()


def cny(text: str) -> Money:
    return Money.of(text, "CNY")


def reloaded(aggregate: Any) -> Any:
    name, body = CODEC.encode_aggregate(aggregate)
    return CODEC.decode_aggregate(type(aggregate), name, body)


def state_of(aggregate: Any) -> dict[str, Any]:
    """Every attrs field but the pending events, private counters included."""
    return {
        f.name: getattr(aggregate, f.name)
        for f in attrs.fields(type(aggregate))
        if f.name != "events"
    }


def outcome(command: Callable[[], Any]) -> tuple[str, Any]:
    """What a command returned, or the class of the error it was refused with."""
    try:
        return ("ok", command())
    except EcommerceCoreError as refused:
        return ("refused", type(refused).__name__)


class Walk:
    """One random walk of commands over a live copy and a copy reloaded after every step."""

    def __init__(self, aggregate: Any, queries: Callable[[Any], Any]) -> None:
        self.live, self.stored, self.queries = aggregate, reloaded(aggregate), queries
        self.now = CONTRACT_TIME

    def step(self, command: Callable[[Any], Any]) -> None:
        """Run ``command`` on both copies, reload the stored one, compare them."""
        live = outcome(lambda: command(self.live))
        stored = outcome(lambda: command(self.stored))
        assert stored == live
        self.stored = reloaded(self.stored)
        assert self.stored.events == ()
        assert state_of(self.stored) == state_of(self.live)
        assert self.queries(self.stored) == self.queries(self.live)
        event(f"reached {self.live.state}")  # how far the walks get: --hypothesis-show-statistics


def answers(*queries: Callable[[], Any]) -> list[tuple[str, Any]]:
    return [outcome(query) for query in queries]


steps = st.lists(  # (command, buyer, quantity, minutes passing before it)
    st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(1, 3), st.integers(0, 20)),
    min_size=5,
    max_size=40,
)


# --------------------------------------------------------------------------- group buys


def group_buy_queries(campaign: GroupBuy) -> list[tuple[str, Any]]:
    return answers(
        lambda: campaign.level,
        lambda: campaign.current_tier,
        campaign.active,
        lambda: campaign.due_at,
        lambda: campaign.is_final,
        *(lambda b=b, q=q: campaign.level_after(b, q) for b in BUYERS for q in (1, 3)),
        *(lambda b=b, q=q: campaign.quote(b, q) for b in BUYERS for q in (1, 3)),
    )


@settings(max_examples=80, deadline=None)
@example(  # joins, a withdrawal, the end of the window: it succeeds at the tier reached
    measure=TierMeasure.QUANTITY,
    payment=GroupBuyPayment.CURRENT_TIER,
    cap=None,
    steps=[
        (0, 0, 2, 0),
        (1, 1, 2, 1),
        (2, 2, 1, 1),
        (3, 1, 1, 1),
        (6, 0, 1, 20),
        (6, 0, 1, 20),
        (4, 0, 1, 0),
    ],
)
@given(
    measure=st.sampled_from(TierMeasure),
    payment=st.sampled_from(GroupBuyPayment),
    cap=st.sampled_from([None, 6]),
    steps=steps,
)
def test_a_reachable_group_buy_reads_back_counting_and_quoting_the_same(
    measure, payment, cap, steps
):
    terms = GroupBuyTerms(
        list_price=cny("10.00"),
        tiers=[PriceTier(2, cny("9.00")), PriceTier(4, cny("8.00"))],
        starts_at=CONTRACT_TIME,
        ends_at=CONTRACT_TIME + timedelta(hours=3),
        minimum=2,
        measure=measure,
        cap=cap,
        payment=payment,
        deposit=cny("1.00") if payment is GroupBuyPayment.DEPOSIT else None,
    )
    walk = Walk(
        GroupBuy.create(
            Actor.merchant("m-1"),
            campaign_id="gb-1",
            merchant_id="m-1",
            sku="tea",
            terms=terms,
            now=CONTRACT_TIME,
        ),
        group_buy_queries,
    )
    joined = 0
    for kind, who, quantity, minutes in steps:
        walk.now += timedelta(minutes=minutes)
        buyer, now = BUYERS[who], walk.now
        if kind <= 2:  # joins are the common case
            order_id, joined = f"o-{joined}", joined + 1
            walk.step(
                lambda c, b=buyer, o=order_id, q=quantity, n=now: c.join(
                    Actor.buyer(b),
                    order_id=o,
                    quantity=q,
                    paid=c.quote(b, q),
                    payment_ref=f"tx-{o}",
                    now=n,
                )
            )
        elif kind == 3:
            order_id = f"o-{who}"  # perhaps joined, perhaps by another buyer
            walk.step(lambda c, o=order_id, n=now: c.withdraw(SYSTEM, order_id=o, now=n))
        elif kind == 4:
            walk.step(lambda c, n=now: c.expire(n))
        elif kind == 5 and minutes < 5:  # rarely
            walk.step(lambda c, n=now: c.cancel(Actor.merchant("m-1"), reason="called off", now=n))
        else:  # a longer wait
            walk.now += timedelta(minutes=5 * minutes)


# --------------------------------------------------------------------------- lucky draws


def draw_round_queries(draw_round: DrawRound) -> list[tuple[str, Any]]:
    numbers = range(draw_round.terms.first_number, draw_round.terms.first_number + 6)
    return answers(
        lambda: draw_round.held,
        lambda: draw_round.remaining,
        draw_round.paid_purchases,
        lambda: draw_round.due_at,
        lambda: draw_round.is_final,
        draw_round.verify,
        *(lambda n=n: draw_round.holder(n) for n in numbers),
        *(lambda i=i: draw_round.purchase(f"o-{i}") for i in range(6)),
    )


@settings(max_examples=80, deadline=None)
@example(  # paid out of reservation order, sold out, drawn: numbers follow the payments
    share_count=4,
    on_forfeit=ForfeitPolicy.RELEASE_PRIZE,
    steps=[
        (0, 0, 1, 0),
        (0, 1, 1, 0),
        (2, 0, 1, 1),
        (2, 1, 1, 1),
        (0, 2, 2, 1),
        (2, 0, 1, 1),
        (5, 0, 1, 5),
        (6, 0, 1, 0),
    ],
)
@given(
    share_count=st.integers(2, 6),
    on_forfeit=st.sampled_from(ForfeitPolicy),
    steps=steps,
)
def test_a_reachable_round_reads_back_holding_numbering_and_drawing_the_same(
    share_count, on_forfeit, steps
):
    terms = DrawTerms(
        share_count=share_count,
        share_price=cny("1.00"),
        sell_by=CONTRACT_TIME + timedelta(hours=3),
        address_window=timedelta(hours=2),
        on_forfeit=on_forfeit,
    )
    walk = Walk(
        DrawRound.create(
            Actor.merchant("m-1"),
            round_id="r-1",
            merchant_id="m-1",
            prize_sku="phone",
            terms=terms,
            now=CONTRACT_TIME,
        ),
        draw_round_queries,
    )
    reserved = 0
    for kind, who, quantity, minutes in steps:
        walk.now += timedelta(minutes=minutes)
        buyer, now = BUYERS[who], walk.now
        if kind <= 1:
            order_id, reserved = f"o-{reserved}", reserved + 1
            walk.step(
                lambda r, b=buyer, o=order_id, q=quantity, n=now: r.reserve(
                    Actor.buyer(b), order_id=o, quantity=q, now=n
                )
            )
        elif kind <= 3:  # pays the latest reservations most often, out of order
            order_id = f"o-{max(reserved - 1 - who, 0)}"
            walk.step(
                lambda r, o=order_id, n=now: r.pay(
                    SYSTEM,
                    order_id=o,
                    amount=r.terms.share_price * r.purchase(o).quantity,
                    payment_ref=f"tx-{o}",
                    now=n,
                )
            )
        elif kind == 4:
            order_id = f"o-{who}"
            walk.step(lambda r, o=order_id, n=now: r.release(SYSTEM, order_id=o, now=n))
        elif kind == 5:
            walk.step(
                lambda r, n=now, m=minutes: r.draw(
                    SYSTEM, number=PublicNumber(40113 + m, "lottery", n), now=n
                )
            )
        elif minutes % 3 == 0:
            walk.step(
                lambda r, b=buyer, n=now: r.confirm_address(Actor.buyer(b), address="1 Road", now=n)
            )
        elif minutes % 3 == 1:
            walk.step(lambda r, n=now: r.expire(n))
        else:  # a longer wait
            walk.now += timedelta(minutes=5 * minutes)


# --------------------------------------------------------------------------- auctions


def auction_queries(auction: Auction) -> list[tuple[str, Any]]:
    return answers(
        lambda: auction.leader,
        auction.runner_up,
        auction.minimum_bid,
        lambda: auction.amount_due,
        lambda: auction.due_at,
        lambda: auction.is_final,
        *(lambda b=b: auction.deposit_of(b) for b in BUYERS),
    )


@settings(max_examples=80, deadline=None)
@example(  # two bidders, the end, the winner does not pay, the runner-up is offered it, pays
    second_chance=SecondChance.OFFER_RUNNER_UP,
    reserve=None,
    buyout=None,
    steps=[
        (0, 0, 1, 0),
        (0, 1, 1, 0),
        (2, 0, 1, 1),
        (2, 1, 1, 1),
        (6, 0, 1, 20),
        (5, 0, 1, 0),
        (5, 0, 1, 0),
        (4, 0, 1, 1),
    ],
)
@given(
    second_chance=st.sampled_from(SecondChance),
    reserve=st.sampled_from([None, "130.00"]),
    buyout=st.sampled_from([None, "200.00"]),
    steps=steps,
)
def test_a_reachable_auction_reads_back_bidding_and_settling_the_same(
    second_chance, reserve, buyout, steps
):
    terms = AuctionTerms(
        start_price=cny("100.00"),
        increment=cny("10.00"),
        deposit=cny("20.00"),
        starts_at=CONTRACT_TIME,
        ends_at=CONTRACT_TIME + timedelta(hours=1),
        reserve=None if reserve is None else cny(reserve),
        buyout=None if buyout is None else cny(buyout),
        payment_window=timedelta(hours=1),
        second_chance=second_chance,
    )
    walk = Walk(
        Auction.create(
            Actor.merchant("m-1"),
            auction_id="a-1",
            merchant_id="m-1",
            sku="vase",
            terms=terms,
            now=CONTRACT_TIME,
        ),
        auction_queries,
    )
    for kind, who, raises, minutes in steps:
        walk.now += timedelta(minutes=minutes)
        bidder, now = BUYERS[who], walk.now
        if kind <= 1:
            walk.step(
                lambda a, b=bidder, n=now: a.hold_deposit(
                    Actor.buyer(b),
                    bidder_id=b,
                    reference=f"dep-{b}-{n.timestamp()}",
                    amount=a.terms.deposit,
                    now=n,
                )
            )
        elif kind <= 3:
            walk.step(
                lambda a, b=bidder, k=raises, n=now: a.bid(
                    Actor.buyer(b),
                    amount=a.minimum_bid() + a.terms.increment * (k - 1),
                    now=n,
                )
            )
        elif kind == 4 and raises < 3:
            walk.step(
                lambda a, b=bidder, n=now: a.pay(
                    Actor.buyer(b),
                    amount=a.amount_due or cny("1.00"),
                    payment_ref=f"pay-{b}",
                    now=n,
                )
            )
        elif kind == 4:
            walk.step(lambda a, b=bidder, n=now: a.decline(Actor.buyer(b), now=n))
        elif kind == 5:
            walk.step(lambda a, n=now: a.expire(n))
        else:  # a longer wait
            walk.now += timedelta(minutes=5 * minutes)


# --------------------------------------------------------------------------- rebates


def rebate_queries(rebate: Rebate) -> list[tuple[str, Any]]:
    return answers(
        lambda: rebate.entitlement,
        lambda: rebate.paid_out,
        lambda: rebate.due_at,
        lambda: rebate.is_final,
        *(lambda a=a: rebate.entitlement_after(cny(a)) for a in ("0.00", "10.00", "99.00")),
    )


@settings(max_examples=80, deadline=None)
@given(rule=st.sampled_from(RebateRule), steps=steps)
def test_a_reachable_rebate_reads_back_worth_and_paying_out_the_same(rule, steps):
    walk = Walk(
        Rebate.grant(
            SYSTEM,
            rebate_id="rb-1",
            order_id="o-1",
            beneficiary_id="alice",
            base=cny("99.00"),
            amount=cny("4.95"),
            now=CONTRACT_TIME,
            rule=rule,
        ),
        rebate_queries,
    )
    for kind, _, tens, minutes in steps:
        walk.now += timedelta(minutes=minutes)
        now = walk.now
        if kind <= 1:
            walk.step(
                lambda r, n=now, m=minutes: r.freeze(
                    SYSTEM, thaw_at=n + timedelta(minutes=m), now=n
                )
            )
        elif kind <= 3:
            walk.step(lambda r, t=tens, n=now: r.refund(SYSTEM, amount=cny(f"{t * 10}.00"), now=n))
        elif kind == 4 and minutes < 10:  # rarely
            walk.step(lambda r, n=now: r.void(SYSTEM, reason="cancelled", now=n))
        elif kind == 5:
            walk.step(lambda r, n=now: r.expire(n))
        else:  # a longer wait
            walk.now += timedelta(minutes=5 * minutes)
