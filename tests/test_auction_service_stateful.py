"""Many bidders racing for one lot through CampaignService, with the ledger and stock checked.

Bidders hold deposits (the provider may decline or leave the charge pending; the bidder
retries with the same key once it answered), bid (often too low, against themselves or
without a deposit), time passes and due auctions expire, winners pay or do not (their
payment may be declined, or pending and answered late), a runner-up declines, a buyer cancels
a paid order. After every step:

- the leader is always the highest valid bid: accepted bids are exactly the ones this machine
  saw accepted, each from a deposit holder, rising by at least the increment from the start
  price, never twice in a row by one bidder;
- every posting balances, all accounts sum to zero, every order's money balances and none is
  refunded more than it paid in;
- each deposit is settled exactly once: its money sits in the bidder's deposit account while
  held, and leaves it exactly once (released, applied or forfeited), never twice;
- at most one auction order is paid, and a sold auction's is its winner's;
- the lot's unit is held while the auction runs or waits for payment, sold once it sold, and
  back in stock on every other end;
- a refused command changes nothing.

At the end the provider answers everything and time runs out: the auction is over, no deposit
is still held, and the provider's books for the deposits agree with the ledger.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryAuctionRepository,
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.auctions import Auction, AuctionTerms, DepositStatus, SecondChance
from ecommerce_core.payments.ledger import Account, AccountKind
from ecommerce_core.ports import GatewayStatus, Product, RefundRequest
from ecommerce_core.services import CampaignService
from ecommerce_core.testing.stateful import RefusalsChangeNothing

CNY = "CNY"
BIDDERS = [Actor.buyer(name) for name in ("ann", "ben", "cat", "dan", "eve")]
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)
START, INCREMENT, DEPOSIT = Money.of("100.00", CNY), Money.of("10.00", CNY), Money.of("20.00", CNY)


def yuan(minor: int) -> Money:
    return Money(minor, CNY)


class AuctionRaces(RefusalsChangeNothing, RuleBasedStateMachine):
    """One lot, five bidders, random reserve, buyout and second-chance policy."""

    @initialize(
        reserve=st.sampled_from([None, 13_000, 20_000]),
        buyout=st.sampled_from([None, 25_000]),
        second_chance=st.sampled_from(list(SecondChance)),
    )
    def start(self, reserve: int | None, buyout: int | None, second_chance: SecondChance) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.ledger = InMemoryLedger()
        self.inventory = InMemoryInventory({"vase": 1})
        self.repo = InMemoryOrderRepository()
        self.auctions = InMemoryAuctionRepository()
        self.service = CampaignService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("vase", "m-1", "vase", START)]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=RecordingPublisher(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            auctions=self.auctions,
        )
        now = self.clock.now()
        terms = AuctionTerms(
            start_price=START,
            increment=INCREMENT,
            deposit=DEPOSIT,
            starts_at=now,
            ends_at=now + timedelta(hours=2),
            reserve=None if reserve is None else yuan(reserve),
            buyout=None if buyout is None else yuan(buyout),
            snipe_window=timedelta(minutes=5),
            max_extensions=3,
            payment_window=timedelta(hours=6),
            second_chance=second_chance,
        )
        self.auction_id = self.service.create_auction(Actor.merchant("m-1"), "vase", terms).id
        self.accepted: list[tuple[str, Money]] = []
        self.attempts: list[tuple[Actor, str]] = []
        for bidder in BIDDERS[:2]:  # two bidders come prepared; the others may follow
            self.a_bidder_holds_a_deposit(bidder)
        self.undelivered: list[dict[str, str]] = []

    def _decide(self, request: GatewayRequest) -> GatewayStatus:
        if isinstance(request, RefundRequest):
            return GatewayStatus.SUCCEEDED
        return self.outcome

    # ------------------------------------------------------------------ helpers

    @property
    def auction(self) -> Auction:
        return self.auctions.get(self.auction_id)

    def snapshot(self) -> tuple[object, ...]:
        auction = self.auction
        return (
            auction.version,
            auction.state,
            auction.bids,
            auction.deposits,
            [(o.id, o.state, o.version, o.payment) for o in self.repo.all()],
            self.inventory.available("vase"),
            self.inventory.reserved("vase"),
            len(self.ledger.all()),
            dict(self.gateway.charged),
            dict(self.gateway.refunded),
        )

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def offered_order(self) -> str | None:
        auction = self.auction
        if auction.winner_id is None:
            return None
        return self.service.auction_order_id(auction.id, auction.winner_id)

    def deposit_outflows(self, auction: Auction, reference: str) -> int:
        postings = [*self.ledger.postings(auction.id)]
        for order in self.repo.all():
            postings.extend(self.ledger.postings(order.id))
        return sum(
            1
            for p in postings
            if p.source.kind is AccountKind.DEPOSIT
            and f":deposit:{reference}:" in f"{p.key}:"  # whole reference: ch-1 is not ch-10
        )

    # ------------------------------------------------------------------ rules

    @rule(outcome=OUTCOMES)
    def the_provider_changes_its_mind(self, outcome: GatewayStatus) -> None:
        self.outcome = outcome

    @rule(bidder=st.sampled_from(BIDDERS))
    def a_bidder_holds_a_deposit(self, bidder: Actor) -> None:
        key = f"try-{len(self.attempts) + 1}"
        self.attempts.append((bidder, key))
        self.attempt_unchanged(lambda: self.service.hold_deposit(self.auction_id, bidder, key=key))

    @rule(data=st.data())
    def a_bidder_retries_a_deposit_with_the_same_key(self, data: st.DataObject) -> None:
        if not self.attempts:
            return
        bidder, key = data.draw(st.sampled_from(self.attempts), label="attempt")
        self.attempt_unchanged(lambda: self.service.hold_deposit(self.auction_id, bidder, key=key))

    @rule(data=st.data(), steps=st.integers(-2, 6), anyone=st.integers(0, 3))
    def a_bidder_bids(self, data: st.DataObject, steps: int, anyone: int) -> None:
        auction = self.auction
        holders = [Actor.buyer(d.bidder_id) for d in auction.deposits]
        bidder = data.draw(st.sampled_from(BIDDERS if anyone == 0 or not holders else holders))
        amount = auction.minimum_bid() + Money(steps * 500, CNY)
        if not amount.is_positive:
            return
        if self.attempt_unchanged(lambda: self.service.bid(self.auction_id, bidder, amount)):
            buyout = auction.terms.buyout
            self.accepted.append((bidder.id, amount if buyout is None else min(amount, buyout)))

    @rule()
    def the_offered_buyer_pays(self) -> None:
        order_id = self.offered_order()
        if order_id is None:
            return
        with contextlib.suppress(EcommerceCoreError):  # declined, pending, or not payable
            self.service.pay(order_id, Actor.buyer(self.auction.winner_id or ""))

    @rule()
    def the_runner_up_declines(self) -> None:
        winner = self.auction.winner_id or "nobody"
        self.attempt_unchanged(
            lambda: self.service.decline_offer(self.auction_id, Actor.buyer(winner))
        )

    @rule(data=st.data())
    def a_buyer_cancels_an_order(self, data: st.DataObject) -> None:
        orders = self.repo.all()
        if not orders:
            return
        order = data.draw(st.sampled_from(orders), label="order")
        buyer = Actor.buyer(order.buyer_id)
        self.attempt_unchanged(lambda: self.service.cancel(order.id, buyer, "changed my mind"))

    @rule(minutes=st.sampled_from([1, 3, 20, 60, 180, 400]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.service.expire_due()

    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_payment(self, data: st.DataObject, succeeded: bool) -> None:
        keys = [k for k in self.pending_keys() if ":deposit:" not in k]
        if keys:
            key = data.draw(st.sampled_from(keys), label="pending")
            self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @rule(data=st.data())
    def a_notification_arrives(self, data: st.DataObject) -> None:
        if self.undelivered:
            index = data.draw(st.integers(0, len(self.undelivered) - 1), label="notification")
            self.service.handle_notification(self.undelivered.pop(index))

    # ------------------------------------------------------------------ invariants

    @invariant()
    def the_leader_is_always_the_highest_valid_bid(self) -> None:
        auction = self.auction
        assert [(b.bidder_id, b.amount) for b in auction.bids] == self.accepted
        holders = {d.bidder_id for d in auction.deposits}
        previous = None
        for bid in auction.bids:
            assert bid.bidder_id in holders
            if previous is None:
                assert bid.amount >= START
            else:
                buyout = auction.terms.buyout  # the bid reaching it is capped there
                assert bid.amount >= previous.amount + INCREMENT or bid.amount == buyout
                assert bid.amount > previous.amount
                assert bid.bidder_id != previous.bidder_id
            previous = bid
        if auction.bids:
            top = max(b.amount for b in auction.bids)
            leader = auction.leader
            assert leader is not None
            assert leader.amount == top
            assert leader == min(
                (b for b in auction.bids if b.amount == top), key=lambda b: b.sequence
            )

    @invariant()
    def money_is_conserved_in_the_ledger(self) -> None:
        for posting in self.ledger.all():
            assert posting.amount.is_positive
            assert posting.source != posting.target
        assert sum(m.minor for m in self.ledger.balances(CNY).values()) == 0
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert money.balanced, money
            assert money.refunded <= money.paid_in, money

    @invariant()
    def each_deposit_is_settled_exactly_once(self) -> None:
        auction = self.auction
        for deposit in auction.deposits:
            outflows = self.deposit_outflows(auction, deposit.reference)
            assert outflows == (0 if deposit.status is DepositStatus.HELD else 1), deposit
        for bidder in BIDDERS:
            held = [
                d.amount.minor
                for d in auction.deposits
                if d.bidder_id == bidder.id and d.status is DepositStatus.HELD
            ]
            assert self.ledger.balance(Account.deposit(bidder.id), CNY).minor == sum(held)

    @invariant()
    def at_most_one_auction_order_is_paid(self) -> None:
        auction = self.auction
        paid = [o for o in self.repo.all() if o.payment is not None]
        assert len(paid) <= 1, paid
        if auction.state == "sold":
            (order,) = paid
            assert order.buyer_id == auction.winner_id
        else:
            assert paid == []

    @invariant()
    def the_lot_is_held_sold_or_back_exactly_once(self) -> None:
        auction = self.auction
        stock = (
            self.inventory.available("vase"),
            self.inventory.reserved("vase"),
            self.inventory.on_hand("vase"),
        )
        if auction.state in ("running", "awaiting_payment", "awaiting_runner_up"):
            assert stock == (0, 1, 1)
        elif auction.state == "sold":
            (order,) = [o for o in self.repo.all() if o.payment is not None]
            assert stock == ((1, 0, 1) if order.state == "cancelled" else (0, 0, 0))
        else:
            assert stock == (1, 0, 1)

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        for _ in range(3):
            self.clock.advance(timedelta(days=1))
            self.service.expire_due()
        self.service.reconcile_auction(self.auction_id)
        auction = self.auction
        assert auction.is_final, auction.state
        assert all(d.status is not DepositStatus.HELD for d in auction.deposits)
        self.each_deposit_is_settled_exactly_once()
        self.the_lot_is_held_sold_or_back_exactly_once()
        self.money_is_conserved_in_the_ledger()
        kept = sum(
            p.amount.minor
            for p in self.ledger.postings(auction.id)
            if p.source.kind is AccountKind.BUYER and p.target.kind is AccountKind.DEPOSIT
        ) - sum(
            p.amount.minor
            for p in self.ledger.all()
            if p.target.kind is AccountKind.BUYER
            and (p.source.kind is AccountKind.DEPOSIT or p.key.endswith(":return"))
        )
        charged = self.gateway.charged.get(auction.id, Money.zero(CNY))
        refunded = self.gateway.refunded.get(auction.id, Money.zero(CNY))
        assert (charged - refunded).minor == kept


AuctionRaces.TestCase.settings = settings(max_examples=25, stateful_step_count=40, deadline=None)
TestAuctionRaces = AuctionRaces.TestCase
