"""Auction (竞拍): deposits, bids, anti-sniping, buyout, reserve, payment, forfeit, runner-up."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecommerce_core import (
    Actor,
    AlreadyLeading,
    BidTooLow,
    CurrencyMismatch,
    DeadlinePassed,
    DefinitionError,
    DepositRequired,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    Money,
    Order,
    OrderLine,
    OrderPolicy,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.auctions import (
    AUCTION_ORDER_PROCESS,
    Auction,
    AuctionTerms,
    DepositStatus,
    SecondChance,
)
from ecommerce_core.releases import ReleaseKind

NOW = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
END = NOW + timedelta(hours=1)
SYSTEM = Actor.system()


def yuan(amount: str) -> Money:
    return Money.of(amount, "CNY")


def terms(**changes) -> AuctionTerms:
    values = {
        "start_price": yuan("100.00"),
        "increment": yuan("10.00"),
        "deposit": yuan("50.00"),
        "starts_at": NOW,
        "ends_at": END,
    }
    values.update(changes)
    return AuctionTerms(**values)


def auction(*bidders: str, **changes) -> Auction:
    lot = Auction.create(
        Actor.merchant("m-1"),
        auction_id="a-1",
        merchant_id="m-1",
        sku="vase",
        terms=terms(**changes),
        now=NOW,
    )
    for bidder in bidders:
        hold(lot, bidder)
    return lot


def hold(lot: Auction, bidder: str, now=NOW) -> None:
    lot.hold_deposit(
        Actor.buyer(bidder),
        bidder_id=bidder,
        reference=f"dep-{bidder}",
        amount=lot.terms.deposit,
        now=now,
    )


def bid(lot: Auction, bidder: str, amount: str, now=NOW) -> str:
    return lot.bid(Actor.buyer(bidder), amount=yuan(amount), now=now)


def snapshot(aggregate) -> dict[str, object]:
    # Aggregates hold immutable values, and lists or dicts of them: copying those is enough.
    return {
        f.name: copy.copy(value) if isinstance(value, (list, dict)) else value
        for f in attrs.fields(type(aggregate))
        for value in [getattr(aggregate, f.name)]
    }


def refused(aggregate, error, command):
    before = snapshot(aggregate)
    with pytest.raises(error) as caught:
        command()
    assert snapshot(aggregate) == before, "a refused command changed the auction"
    return caught.value


class TestTerms:
    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"increment": yuan("0.00")}, "increment must be positive"),
            ({"deposit": yuan("100.01")}, "deposit must be at most the start price"),
            ({"reserve": yuan("99.99")}, "reserve must be at least the start price"),
            ({"buyout": yuan("100.00")}, "buyout must be above the start price"),
            ({"buyout": yuan("150.00"), "reserve": yuan("200.00")}, "at least the reserve"),
            ({"deposit": Money.of("5.00", "USD")}, "deposit must be Money in CNY"),
            ({"ends_at": NOW}, "ends_at must come after"),
            ({"starts_at": datetime(2026, 6, 1)}, "timezone-aware"),  # noqa: DTZ001
            ({"snipe_window": timedelta(0)}, "snipe_window"),
            ({"payment_window": timedelta(0)}, "payment_window"),
            ({"max_extensions": -1}, "max_extensions"),
        ],
    )
    def test_impossible_terms_are_a_definition_error(self, changes, problem):
        with pytest.raises(DefinitionError) as caught:
            terms(**changes)
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    def test_a_start_price_that_is_not_positive_money_is_a_definition_error(self):
        with pytest.raises(DefinitionError):
            terms(start_price=yuan("0.00"))

    def test_defaults_follow_the_platforms(self):
        defaults = terms()
        assert (defaults.snipe_window, defaults.payment_window, defaults.max_extensions) == (
            timedelta(minutes=1),
            timedelta(hours=72),
            10,
        )
        assert defaults.second_chance is SecondChance.NONE

    def test_an_auction_is_set_up_only_by_its_merchant_before_its_end(self):
        with pytest.raises(Forbidden):
            Auction.create(
                Actor.merchant("m-2"),
                auction_id="a",
                merchant_id="m-1",
                sku="v",
                terms=terms(),
                now=NOW,
            )
        with pytest.raises(DeadlinePassed):
            Auction.create(
                Actor.platform(), auction_id="a", merchant_id="m-1", sku="v", terms=terms(), now=END
            )
        with pytest.raises(InvalidInput):
            Auction.create(
                Actor.platform(), auction_id="a", merchant_id="m-1", sku="v", terms={}, now=NOW
            )


class TestDeposits:
    def test_a_held_deposit_is_recorded_for_its_bidder(self):
        lot = auction("bob")
        deposit = lot.deposit_of("bob")
        assert (deposit.reference, deposit.amount, deposit.status) == (
            "dep-bob",
            yuan("50.00"),
            DepositStatus.HELD,
        )

    @pytest.mark.parametrize(
        ("actor", "bidder", "amount", "when", "error"),
        [
            (Actor.buyer("carol"), "bob", "50.00", NOW, Forbidden),
            (Actor.merchant("m-1"), "bob", "50.00", NOW, Forbidden),
            (SYSTEM, "bob", "49.00", NOW, InvalidInput),
            (SYSTEM, "bob", "50.00", END, DeadlinePassed),
            (SYSTEM, "alice", "50.00", NOW, RuleViolation),  # holds one already
        ],
    )
    def test_bad_deposits_are_refused_and_change_nothing(self, actor, bidder, amount, when, error):
        lot = auction("alice")
        refused(
            lot,
            error,
            lambda: lot.hold_deposit(
                actor, bidder_id=bidder, reference="dep", amount=yuan(amount), now=when
            ),
        )

    def test_a_deposit_is_required_to_bid(self):
        lot = auction()
        error = refused(lot, DepositRequired, lambda: bid(lot, "bob", "100.00"))
        assert (error.bidder_id, error.deposit) == ("bob", yuan("50.00"))


class TestBidding:
    def test_the_first_bid_must_be_at_least_the_start_price(self):
        lot = auction("bob")
        error = refused(lot, BidTooLow, lambda: bid(lot, "bob", "99.99"))
        assert (error.minimum, error.offered) == (yuan("100.00"), yuan("99.99"))
        assert bid(lot, "bob", "100.00") == "running"

    def test_a_bid_must_beat_the_leader_by_the_increment(self):
        lot = auction("bob", "carol")
        bid(lot, "bob", "100.00")
        error = refused(lot, BidTooLow, lambda: bid(lot, "carol", "109.99"))
        assert error.minimum == yuan("110.00")
        bid(lot, "carol", "110.00")
        assert lot.leader.bidder_id == "carol"

    def test_a_bidder_cannot_outbid_themself(self):
        lot = auction("bob")
        bid(lot, "bob", "100.00")
        error = refused(lot, AlreadyLeading, lambda: bid(lot, "bob", "150.00"))
        assert error.bidder_id == "bob"

    def test_ties_go_to_the_earliest_bid(self):
        lot = auction("bob", "carol")
        bid(lot, "bob", "120.00")
        refused(lot, BidTooLow, lambda: bid(lot, "carol", "120.00"))
        assert lot.leader.bidder_id == "bob"

    def test_a_bid_after_the_end_is_refused(self):
        lot = auction("bob")
        error = refused(lot, DeadlinePassed, lambda: bid(lot, "bob", "100.00", now=END))
        assert error.deadline == END

    def test_a_bid_before_the_start_is_refused(self):
        lot = auction("bob", starts_at=NOW + timedelta(minutes=5))
        refused(lot, RuleViolation, lambda: bid(lot, "bob", "100.00"))

    @pytest.mark.parametrize(
        ("actor", "amount", "error"),
        [
            (Actor.merchant("m-1"), yuan("100.00"), Forbidden),
            (SYSTEM, yuan("100.00"), Forbidden),
            (Actor.buyer("bob"), Money.of("100.00", "USD"), CurrencyMismatch),
            (Actor.buyer("bob"), yuan("0.00"), InvalidInput),
        ],
    )
    def test_bad_bids_are_refused_and_change_nothing(self, actor, amount, error):
        lot = auction("bob")
        refused(lot, error, lambda: lot.bid(actor, amount=amount, now=NOW))

    def test_each_accepted_bid_is_recorded_in_order(self):
        lot = auction("bob", "carol")
        lot.collect_events()
        bid(lot, "bob", "100.00")
        bid(lot, "carol", "130.00")
        assert [(b.sequence, b.bidder_id, b.amount) for b in lot.bids] == [
            (1, "bob", yuan("100.00")),
            (2, "carol", yuan("130.00")),
        ]
        assert [e.name for e in lot.collect_events()] == ["BidPlaced", "BidPlaced"]


class TestAntiSniping:
    def test_a_bid_inside_the_final_window_extends_the_end_to_bid_time_plus_window(self):
        lot = auction("bob", "carol")
        late = END - timedelta(seconds=20)
        bid(lot, "bob", "100.00", now=late)
        assert (lot.ends_at, lot.extensions) == (late + timedelta(minutes=1), 1)
        later = lot.ends_at - timedelta(seconds=5)
        bid(lot, "carol", "110.00", now=later)
        assert (lot.ends_at, lot.extensions) == (later + timedelta(minutes=1), 2)
        assert lot.due_at == lot.ends_at

    def test_a_bid_before_the_final_window_does_not_extend(self):
        lot = auction("bob")
        bid(lot, "bob", "100.00", now=END - timedelta(minutes=2))
        assert (lot.ends_at, lot.extensions) == (END, 0)

    def test_the_end_never_moves_earlier(self):
        lot = auction("bob", snipe_window=timedelta(minutes=10))
        bid(lot, "bob", "100.00", now=END - timedelta(minutes=10))
        assert (lot.ends_at, lot.extensions) == (END, 0), "max(end, bid time + window)"

    def test_extensions_are_capped(self):
        lot = auction("bob", "carol", max_extensions=2)
        bidders, amount = ["bob", "carol"], 100
        for step in range(4):
            bid(lot, bidders[step % 2], f"{amount}.00", now=lot.ends_at - timedelta(seconds=1))
            amount += 10
        assert lot.extensions == 2
        capped_end = lot.ends_at
        refused(lot, DeadlinePassed, lambda: bid(lot, "bob", "200.00", now=capped_end))


class TestTheEnd:
    def test_nothing_happens_before_the_end(self):
        lot = auction("bob")
        assert lot.expire(END - timedelta(seconds=1)) is None

    def test_at_the_end_the_winner_owes_the_hammer_price_less_the_deposit_by_a_deadline(self):
        lot = auction("bob", "carol", "dave")
        bid(lot, "bob", "100.00")
        bid(lot, "carol", "150.00")
        releases = lot.expire(END + timedelta(minutes=3))
        assert lot.state == "awaiting_payment"
        assert (lot.winner_id, lot.hammer, lot.amount_due) == (
            "carol",
            yuan("150.00"),
            yuan("100.00"),
        )
        assert lot.payment_due == END + timedelta(hours=72)
        ended = next(e for e in lot.collect_events() if e.name == "AuctionEnded")
        assert (ended.occurred_at, ended.deposit_applied, ended.buyout) == (
            END,
            yuan("50.00"),
            False,
        )
        assert ended.releases == releases

    def test_losers_deposits_are_released_at_the_end(self):
        lot = auction("bob", "carol", "dave")
        bid(lot, "bob", "100.00")
        bid(lot, "carol", "150.00")
        releases = lot.expire(END)
        assert [(r.kind, r.reference, r.buyer_id, r.amount) for r in releases] == [
            (ReleaseKind.DEPOSIT, "dep-bob", "bob", yuan("50.00")),
            (ReleaseKind.DEPOSIT, "dep-dave", "dave", yuan("50.00")),
        ]
        assert lot.deposit_of("carol").status is DepositStatus.HELD

    def test_reaching_the_buyout_price_ends_the_auction_at_the_buyout_price(self):
        lot = auction("bob", "carol", buyout=yuan("500.00"))
        bid(lot, "bob", "100.00")
        assert bid(lot, "carol", "999.00") == "awaiting_payment"
        assert (lot.winner_id, lot.hammer) == ("carol", yuan("500.00"))
        assert lot.leader.amount == yuan("500.00")
        assert lot.payment_due == NOW + timedelta(hours=72)
        ended = next(e for e in lot.collect_events() if e.name == "AuctionEnded")
        assert ended.buyout
        refused(lot, TransitionNotAllowed, lambda: bid(lot, "bob", "600.00"))

    def test_no_bid_is_no_sale_and_every_deposit_goes_back_with_the_lot(self):
        lot = auction("bob")
        releases = lot.expire(END)
        assert lot.state == "unsold"
        assert [(r.kind, r.reference) for r in releases] == [
            (ReleaseKind.DEPOSIT, "dep-bob"),
            (ReleaseKind.STOCK, "a-1"),
        ]
        assert lot.expire(END + timedelta(days=9)) is None

    def test_reserve_not_met_is_no_sale(self):
        lot = auction("bob", reserve=yuan("300.00"))
        bid(lot, "bob", "250.00")
        releases = lot.expire(END)
        assert lot.state == "unsold"
        event = next(e for e in lot.collect_events() if e.name == "AuctionUnsold")
        assert event.reason == "the reserve price was not met"
        assert {r.kind for r in releases} == {ReleaseKind.DEPOSIT, ReleaseKind.STOCK}

    def test_only_the_system_or_platform_ends_an_auction(self):
        lot = auction("bob")
        refused(lot, Forbidden, lambda: lot.expire(END, Actor.merchant("m-1")))


def won(policy=SecondChance.NONE, **changes) -> Auction:
    lot = auction("bob", "carol", "dave", second_chance=policy, **changes)
    bid(lot, "bob", "100.00")
    bid(lot, "dave", "120.00")
    bid(lot, "carol", "150.00")
    lot.expire(END)
    return lot


class TestPaying:
    def test_the_winner_pays_the_amount_due_and_the_deposit_is_applied(self):
        lot = won()
        releases = lot.pay(Actor.buyer("carol"), amount=yuan("100.00"), payment_ref="tx-1", now=END)
        assert (lot.state, lot.payment_ref, releases) == ("sold", "tx-1", ())
        assert lot.deposit_of("carol").status is DepositStatus.APPLIED
        assert lot.due_at is None
        assert lot.expire(END + timedelta(days=9)) is None

    @pytest.mark.parametrize(
        ("actor", "amount", "when", "error"),
        [
            (Actor.buyer("bob"), "100.00", END, Forbidden),
            (SYSTEM, "150.00", END, InvalidInput),
            (SYSTEM, "100.00", END + timedelta(hours=72), DeadlinePassed),
        ],
    )
    def test_bad_payments_are_refused_and_change_nothing(self, actor, amount, when, error):
        lot = won()
        refused(
            lot,
            error,
            lambda: lot.pay(actor, amount=yuan(amount), payment_ref="tx", now=when),
        )

    def test_nobody_pays_a_running_auction(self):
        lot = auction("bob")
        refused(
            lot,
            TransitionNotAllowed,
            lambda: lot.pay(SYSTEM, amount=yuan("1.00"), payment_ref="tx", now=NOW),
        )

    def test_a_winner_who_does_not_pay_forfeits_the_deposit(self):
        lot = won()
        assert lot.expire(lot.payment_due - timedelta(seconds=1)) is None
        releases = lot.expire(lot.payment_due)
        assert lot.state == "unpaid"
        assert lot.deposit_of("carol").status is DepositStatus.FORFEITED
        assert [(r.kind, r.reference) for r in releases] == [(ReleaseKind.STOCK, "a-1")]
        forfeited = [e for e in lot.collect_events() if e.name == "DepositForfeited"]
        assert [(e.deposit.bidder_id, e.deposit.amount) for e in forfeited] == [
            ("carol", yuan("50.00"))
        ]


class TestTheRunnerUp:
    def test_the_runner_ups_deposit_stays_held_until_the_winner_pays(self):
        lot = won(SecondChance.OFFER_RUNNER_UP)
        assert lot.deposit_of("dave").status is DepositStatus.HELD
        assert lot.deposit_of("bob").status is DepositStatus.RELEASED
        releases = lot.pay(SYSTEM, amount=yuan("100.00"), payment_ref="tx", now=END)
        assert [(r.kind, r.reference) for r in releases] == [(ReleaseKind.DEPOSIT, "dep-dave")]

    def test_the_lot_is_offered_to_the_runner_up_at_their_own_bid_per_policy(self):
        lot = won(SecondChance.OFFER_RUNNER_UP)
        first_due = lot.payment_due
        assert lot.expire(first_due) == ()
        assert lot.state == "awaiting_runner_up"
        assert (lot.winner_id, lot.hammer, lot.amount_due) == (
            "dave",
            yuan("120.00"),
            yuan("70.00"),
        )
        assert lot.payment_due == first_due + timedelta(hours=72)
        assert lot.deposit_of("carol").status is DepositStatus.FORFEITED
        lot.pay(Actor.buyer("dave"), amount=yuan("70.00"), payment_ref="tx-d", now=first_due)
        assert lot.state == "sold"
        assert lot.deposit_of("dave").status is DepositStatus.APPLIED

    def test_a_runner_up_who_declines_gets_the_deposit_back(self):
        lot = won(SecondChance.OFFER_RUNNER_UP)
        lot.expire(lot.payment_due)
        refused(lot, Forbidden, lambda: lot.decline(Actor.buyer("bob"), now=END))
        releases = lot.decline(Actor.buyer("dave"), now=END)
        assert lot.state == "unpaid"
        assert [(r.kind, r.reference) for r in releases] == [
            (ReleaseKind.DEPOSIT, "dep-dave"),
            (ReleaseKind.STOCK, "a-1"),
        ]
        assert lot.deposit_of("dave").status is DepositStatus.RELEASED

    def test_a_silent_runner_up_is_released_not_forfeited(self):
        lot = won(SecondChance.OFFER_RUNNER_UP)
        lot.expire(lot.payment_due)
        releases = lot.expire(lot.payment_due)
        assert lot.state == "unpaid"
        assert {r.reference for r in releases} == {"dep-dave", "a-1"}

    def test_a_runner_up_under_the_reserve_gets_no_offer(self):
        lot = won(SecondChance.OFFER_RUNNER_UP, reserve=yuan("130.00"))
        assert lot.deposit_of("dave").status is DepositStatus.RELEASED
        lot.expire(lot.payment_due)
        assert lot.state == "unpaid"

    def test_the_runner_up_is_the_best_bid_of_anyone_but_the_winner(self):
        lot = auction("bob", "carol", "dave", second_chance=SecondChance.OFFER_RUNNER_UP)
        bid(lot, "dave", "100.00")
        bid(lot, "bob", "110.00")
        bid(lot, "dave", "120.00")
        bid(lot, "carol", "130.00")
        bid(lot, "dave", "140.00")
        assert lot.runner_up().bidder_id == "carol"
        assert not lot.is_final

    def test_without_the_policy_there_is_no_second_chance(self):
        lot = won()
        assert lot.runner_up() is None  # the runner-up's deposit went back at the end
        refused(lot, TransitionNotAllowed, lambda: lot.decline(Actor.platform(), now=END))


class TestTheAuctionOrderProcess:
    def test_the_winners_order_defaults_instead_of_cancelling_when_unpaid(self):
        policy = OrderPolicy(payment_timeout=timedelta(hours=72))
        order = Order.place(
            order_id="o-1",
            buyer_id="carol",
            merchant_id="m-1",
            lines=[OrderLine("1", "vase", 1, yuan("150.00"))],
            now=END,
            policy=policy,
            process=AUCTION_ORDER_PROCESS,
        )
        assert order.deadline.at == END + timedelta(hours=72)
        with pytest.raises(TransitionNotAllowed):
            order.cancel(Actor.buyer("carol"), reason="changed my mind", now=END)
        assert order.expire(END + timedelta(hours=72), policy) == "expire_payment"
        assert order.state == "defaulted"
        assert AUCTION_ORDER_PROCESS.is_final("defaulted")


# --------------------------------------------------------------------------- stateful

BIDDERS = ["a", "b", "c", "d"]


class AuctionRacing(RuleBasedStateMachine):
    """Bidders hold deposits and race each other to the end; winners pay or default."""

    @initialize(
        reserve=st.none() | st.integers(100, 200),
        buyout=st.none() | st.integers(201, 260),
        policy=st.sampled_from(list(SecondChance)),
        max_extensions=st.integers(0, 3),
        early=st.sets(st.sampled_from(BIDDERS)),
    )
    def start(self, reserve, buyout, policy, max_extensions, early):
        self.lot = auction(
            reserve=None if reserve is None else yuan(str(reserve)),
            buyout=None if buyout is None else yuan(str(buyout)),
            second_chance=policy,
            max_extensions=max_extensions,
        )
        self.now = NOW
        self.released: Counter[str] = Counter()
        self.forfeited: Counter[str] = Counter()
        for bidder in sorted(early):
            hold(self.lot, bidder)
        self.lot.collect_events()

    def attempt(self, command):
        before = snapshot(self.lot)
        try:
            result = command()
        except EcommerceCoreError:
            assert snapshot(self.lot) == before, "a refused command changed the auction"
            return None
        self.collect()
        return result

    def collect(self):
        for event in self.lot.collect_events():
            for release in getattr(event, "releases", ()):
                self.released[release.key] += 1
            if event.name == "DepositForfeited":
                self.forfeited[event.deposit.bidder_id] += 1

    @rule(bidder=st.sampled_from(BIDDERS))
    def hold_a_deposit(self, bidder):
        self.attempt(
            lambda: self.lot.hold_deposit(
                SYSTEM,
                bidder_id=bidder,
                reference=f"dep-{bidder}",
                amount=yuan("50.00"),
                now=self.now,
            )
        )

    @rule(
        bids=st.lists(
            st.tuples(st.sampled_from(BIDDERS), st.integers(-5, 40)), min_size=1, max_size=4
        )
    )
    def bids_race_in(self, bids):
        for bidder, over in bids:
            amount = self.lot.minimum_bid() + yuan(str(over))
            self.attempt(lambda: self.lot.bid(Actor.buyer(bidder), amount=amount, now=self.now))  # noqa: B023  # run at once

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)
        result = self.lot.expire(self.now)
        self.collect()
        if result is not None and self.lot.due_at is not None and self.lot.due_at <= self.now:
            self.lot.expire(self.now)  # a second deadline already due (a silent runner-up)
            self.collect()
        assert self.lot.due_at is None or self.lot.due_at > self.now
        assert self.lot.expire(self.now) is None, "nothing is due twice"

    @rule(seconds=st.one_of(st.integers(0, 90), st.integers(0, 1500), st.integers(0, 3600 * 80)))
    def time_passes(self, seconds):
        self.advance(seconds)

    @rule(offset=st.integers(-90, 30))
    def time_runs_up_to_the_next_deadline(self, offset):
        due = self.lot.due_at
        if due is not None:
            self.advance(max(0, int((due + timedelta(seconds=offset) - self.now).total_seconds())))

    @rule(payer=st.sampled_from([*BIDDERS, "system"]), exact=st.booleans())
    def pay(self, payer, exact):
        actor = SYSTEM if payer == "system" else Actor.buyer(payer)
        due = self.lot.amount_due or yuan("1.00")
        amount = due if exact else due + yuan("1.00")
        self.attempt(lambda: self.lot.pay(actor, amount=amount, payment_ref="tx", now=self.now))

    @rule(bidder=st.sampled_from(BIDDERS))
    def decline(self, bidder):
        self.attempt(lambda: self.lot.decline(Actor.buyer(bidder), now=self.now))

    @invariant()
    def the_leader_is_always_the_highest_valid_bid(self):
        bids = self.lot.bids
        if not bids:
            assert self.lot.leader is None
            return
        best = min(bids, key=lambda b: (-b.amount.minor, b.sequence))
        assert self.lot.leader == best
        for earlier, later in itertools.pairwise(bids):
            assert later.amount >= earlier.amount + self.lot.terms.increment or (
                self.lot.terms.buyout is not None and later.amount == self.lot.terms.buyout
            )
            assert later.bidder_id != earlier.bidder_id
        assert bids[0].amount >= self.lot.terms.start_price
        for each in bids:
            assert self.lot.deposit_of(each.bidder_id) is not None

    @invariant()
    def the_end_moves_only_forward_and_at_most_the_cap(self):
        lot = self.lot
        assert lot.extensions <= lot.terms.max_extensions
        assert lot.ends_at >= lot.terms.ends_at

    @invariant()
    def every_deposit_has_one_fate_and_every_release_happens_once(self):
        lot = self.lot
        assert all(count == 1 for count in self.released.values())
        assert all(count == 1 for count in self.forfeited.values())
        released = {k.split(":", 2)[2] for k in self.released if ":deposit:" in k}
        for deposit in lot.deposits:
            assert (deposit.status is DepositStatus.RELEASED) == (deposit.reference in released)
            assert (deposit.status is DepositStatus.FORFEITED) == (
                deposit.bidder_id in self.forfeited
            )
        stock_released = "a-1:stock:a-1" in self.released
        assert stock_released == (lot.state in ("unsold", "unpaid"))
        assert lot.is_final == (lot.state in ("sold", "unsold", "unpaid"))
        if lot.is_final:
            assert all(d.status is not DepositStatus.HELD for d in lot.deposits)
        applied = [d for d in lot.deposits if d.status is DepositStatus.APPLIED]
        assert (len(applied) == 1) == (lot.state == "sold")

    @invariant()
    def a_winner_owes_the_hammer_less_the_deposit_and_met_the_reserve(self):
        lot = self.lot
        if lot.state in ("awaiting_payment", "awaiting_runner_up", "sold"):
            assert lot.amount_due == lot.hammer - lot.terms.deposit
            reserve = lot.terms.reserve
            assert reserve is None or lot.hammer >= reserve
        if lot.state == "awaiting_payment":
            assert lot.winner_id == lot.leader.bidder_id


AuctionRacing.TestCase.settings = settings(max_examples=50, stateful_step_count=35, deadline=None)
TestAuctionRacing = AuctionRacing.TestCase
