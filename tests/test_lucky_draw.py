"""Lucky draw (夺宝): shares, numbers, a verifiable draw, the address deadline, unsold rounds."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ecommerce_core import (
    Actor,
    DeadlinePassed,
    DefinitionError,
    DrawInputsMissing,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    Money,
    NotFound,
    OutOfStock,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.adapters.memory import PublishedNumbers
from ecommerce_core.campaigns.lucky_draw import (
    FIRST_NUMBER,
    LUCKY_DRAW_ORDER_PROCESS,
    DrawRecord,
    DrawRound,
    DrawTerms,
    ForfeitPolicy,
    PublicNumber,
    ShareStatus,
    a_terms,
    time_value,
    winning_number,
)
from ecommerce_core.releases import ReleaseKind

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
SELL_BY = NOW + timedelta(days=2)
SHARE = Money.of("1.00", "CNY")
SYSTEM = Actor.system()


def terms(**changes) -> DrawTerms:
    values = {"share_count": 10, "share_price": SHARE, "sell_by": SELL_BY}
    values.update(changes)
    return DrawTerms(**values)


def new_round(**changes) -> DrawRound:
    return DrawRound.create(
        Actor.merchant("m-1"),
        round_id="r-1",
        merchant_id="m-1",
        prize_sku="phone",
        terms=terms(**changes),
        now=NOW,
    )


def buy(draw_round: DrawRound, buyer: str, quantity: int, order_id: str, now=NOW) -> str:
    draw_round.reserve(Actor.buyer(buyer), order_id=order_id, quantity=quantity, now=now)
    return draw_round.pay(
        Actor.buyer(buyer),
        order_id=order_id,
        amount=SHARE * quantity,
        payment_ref=f"tx-{order_id}",
        now=now,
    )


def sold_out_round(**changes) -> DrawRound:
    draw_round = new_round(**changes)
    buy(draw_round, "alice", 3, "o-1", NOW)
    buy(draw_round, "bob", 5, "o-2", NOW + timedelta(seconds=1, milliseconds=250))
    buy(draw_round, "alice", 2, "o-3", NOW + timedelta(minutes=1))
    return draw_round


def lottery(value=40_113, at=NOW + timedelta(hours=1)) -> PublicNumber:
    return PublicNumber(value, "cqssc:20260601-023", at)


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
    assert snapshot(aggregate) == before, "a refused command changed the round"
    return caught.value


class TestTheDrawRule:
    def test_a_time_is_written_as_hours_minutes_seconds_milliseconds_in_utc(self):
        moment = datetime(2026, 6, 1, 10, 5, 3, 250_999, tzinfo=UTC)
        assert time_value(moment) == 100_503_250
        east = moment.astimezone(datetime.now(UTC).astimezone().tzinfo)
        assert time_value(east) == 100_503_250

    def test_a_takes_the_last_fifty_times_oldest_first(self):
        times = [NOW + timedelta(seconds=i) for i in range(60)]
        terms_ = a_terms(times)
        assert len(terms_) == 50
        assert terms_[0] == time_value(times[10])
        assert terms_[-1] == time_value(times[-1])

    def test_the_winning_number_is_a_plus_b_mod_s_plus_the_first_number(self):
        assert (
            winning_number(123_456_789, 40_113, 100) == (123_456_789 + 40_113) % 100 + FIRST_NUMBER
        )
        assert winning_number(7, 0, 10, first_number=1) == 8

    @pytest.mark.parametrize(("a", "b", "s"), [(-1, 0, 10), (0, -1, 10), (0, 0, 0), (1.5, 0, 2)])
    def test_the_winning_number_refuses_impossible_inputs(self, a, b, s):
        with pytest.raises(InvalidInput):
            winning_number(a, b, s)

    @given(a=st.integers(0, 10**12), b=st.integers(0, 99_999), s=st.integers(1, 10**6))
    def test_the_winning_number_is_always_one_of_the_shares(self, a, b, s):
        assert FIRST_NUMBER <= winning_number(a, b, s) < FIRST_NUMBER + s

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"share_count": 0}, "share_count"),
            ({"share_price": Money.zero("CNY")}, "share_price"),
            ({"sell_by": datetime(2026, 6, 1)}, "now"),  # noqa: DTZ001
            ({"address_window": timedelta(0)}, "address_window"),
            ({"b_fallback_after": timedelta(0)}, "b_fallback_after"),
            ({"first_number": -1}, "first_number"),
        ],
    )
    def test_impossible_terms_are_a_definition_error(self, changes, problem):
        with pytest.raises(DefinitionError) as caught:
            terms(**changes)
        assert any(problem in p for p in caught.value.problems), caught.value.problems

    @pytest.mark.parametrize(
        ("value", "source", "at"),
        [(-1, "x", NOW), (1.0, "x", NOW), (1, " ", NOW), (1, "x", datetime(2026, 6, 1))],  # noqa: DTZ001
    )
    def test_a_public_number_must_be_well_formed(self, value, source, at):
        with pytest.raises(InvalidInput):
            PublicNumber(value, source, at)


class TestBuyingShares:
    def test_buying_k_shares_assigns_k_consecutive_numbers_in_payment_order(self):
        draw_round = new_round()
        draw_round.reserve(Actor.buyer("alice"), order_id="o-1", quantity=3, now=NOW)
        buy(draw_round, "bob", 2, "o-2")
        draw_round.pay(SYSTEM, order_id="o-1", amount=SHARE * 3, payment_ref="tx-1", now=NOW)
        assert list(draw_round.purchase("o-2").numbers) == [FIRST_NUMBER, FIRST_NUMBER + 1]
        assert list(draw_round.purchase("o-1").numbers) == [
            FIRST_NUMBER + 2,
            FIRST_NUMBER + 3,
            FIRST_NUMBER + 4,
        ]
        assert draw_round.holder(FIRST_NUMBER + 3).order_id == "o-1"
        assert (draw_round.sold, draw_round.held, draw_round.remaining) == (5, 0, 5)

    def test_held_shares_count_against_what_remains(self):
        draw_round = new_round()
        draw_round.reserve(Actor.buyer("alice"), order_id="o-1", quantity=4, now=NOW)
        assert (draw_round.sold, draw_round.held, draw_round.remaining) == (0, 4, 6)
        assert list(draw_round.purchase("o-1").numbers) == []

    def test_buying_more_shares_than_remain_is_refused(self):
        draw_round = new_round()
        buy(draw_round, "alice", 7, "o-1")
        error = refused(
            draw_round,
            OutOfStock,
            lambda: draw_round.reserve(Actor.buyer("bob"), order_id="o-2", quantity=4, now=NOW),
        )
        assert (error.requested, error.available) == (4, 3)

    def test_the_last_share_paid_sells_the_round_out(self):
        draw_round = new_round()
        assert buy(draw_round, "alice", 9, "o-1") == "selling"
        assert buy(draw_round, "bob", 1, "o-2") == "sold_out"
        assert draw_round.sold_out_at == NOW
        assert draw_round.due_at is None
        names = [e.name for e in draw_round.collect_events()]
        assert names[-2:] == ["SharesPaid", "RoundSoldOut"]

    def test_released_shares_go_back_on_sale(self):
        draw_round = new_round()
        draw_round.reserve(Actor.buyer("alice"), order_id="o-1", quantity=10, now=NOW)
        draw_round.release(SYSTEM, order_id="o-1", now=NOW)
        assert draw_round.remaining == 10
        assert draw_round.purchase("o-1").status is ShareStatus.RELEASED

    @pytest.mark.parametrize(
        ("actor", "order_id", "quantity", "when", "error"),
        [
            (SYSTEM, "o-9", 1, NOW, Forbidden),
            (Actor.buyer("bob"), "o-1", 1, NOW, InvalidInput),  # order already used
            (Actor.buyer("bob"), "o-9", 0, NOW, InvalidInput),
            (Actor.buyer("bob"), "", 1, NOW, InvalidInput),
            (Actor.buyer("bob"), "o-9", 1, SELL_BY, DeadlinePassed),
        ],
    )
    def test_bad_reservations_are_refused_and_change_nothing(
        self, actor, order_id, quantity, when, error
    ):
        draw_round = new_round()
        draw_round.reserve(Actor.buyer("alice"), order_id="o-1", quantity=1, now=NOW)
        refused(
            draw_round,
            error,
            lambda: draw_round.reserve(actor, order_id=order_id, quantity=quantity, now=when),
        )

    @pytest.mark.parametrize(
        ("actor", "order_id", "amount", "when", "error"),
        [
            (Actor.buyer("bob"), "o-1", SHARE * 2, NOW, Forbidden),
            (Actor.merchant("m-1"), "o-1", SHARE * 2, NOW, Forbidden),
            (SYSTEM, "o-9", SHARE * 2, NOW, NotFound),
            (SYSTEM, "o-1", SHARE, NOW, InvalidInput),
            (SYSTEM, "o-1", SHARE * 2, SELL_BY, DeadlinePassed),
            (SYSTEM, "o-2", SHARE, NOW, RuleViolation),  # already paid
        ],
    )
    def test_bad_payments_are_refused_and_change_nothing(
        self, actor, order_id, amount, when, error
    ):
        draw_round = new_round()
        draw_round.reserve(Actor.buyer("alice"), order_id="o-1", quantity=2, now=NOW)
        buy(draw_round, "carol", 1, "o-2")
        refused(
            draw_round,
            error,
            lambda: draw_round.pay(
                actor, order_id=order_id, amount=amount, payment_ref="tx", now=when
            ),
        )

    def test_a_sold_out_round_sells_no_more(self):
        draw_round = sold_out_round()
        refused(
            draw_round,
            TransitionNotAllowed,
            lambda: draw_round.reserve(Actor.buyer("carol"), order_id="o-9", quantity=1, now=NOW),
        )

    def test_a_round_is_created_only_before_its_sell_by_time_by_its_merchant(self):
        with pytest.raises(DeadlinePassed):
            DrawRound.create(
                Actor.merchant("m-1"),
                round_id="r",
                merchant_id="m-1",
                prize_sku="p",
                terms=terms(),
                now=SELL_BY,
            )
        with pytest.raises(Forbidden):
            DrawRound.create(
                Actor.merchant("m-2"),
                round_id="r",
                merchant_id="m-1",
                prize_sku="p",
                terms=terms(),
                now=NOW,
            )
        with pytest.raises(InvalidInput):
            DrawRound.create(
                Actor.platform(),
                round_id="r",
                merchant_id="m-1",
                prize_sku="p",
                terms="ten shares",
                now=NOW,
            )


class TestDrawing:
    def test_the_winner_is_recomputable_from_the_stored_inputs_with_a_pure_function(self):
        draw_round = sold_out_round()
        record = draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
        paid_at = [p.paid_at for p in draw_round.paid_purchases()]
        assert record.a_terms == tuple(time_value(t) for t in paid_at)
        expected = (sum(record.a_terms) + 40_113) % 10 + FIRST_NUMBER
        assert record.winning_number == expected == record.recompute()
        assert winning_number(record.a, record.b, 10) == expected
        winner = draw_round.holder(expected)
        assert (record.winner_order_id, record.winner_id) == (winner.order_id, winner.buyer_id)
        assert draw_round.verify()
        assert (record.b_source, record.fallback) == ("cqssc:20260601-023", False)

    def test_tampering_with_the_stored_inputs_fails_verification(self):
        draw_round = sold_out_round()
        record = draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
        honest = draw_round.record
        draw_round.record = attrs.evolve(record, b=record.b + 1)
        assert not draw_round.verify()
        draw_round.record = attrs.evolve(record, a_terms=record.a_terms[1:])
        assert not draw_round.verify()
        other = next(p for p in draw_round.paid_purchases() if p.order_id != record.winner_order_id)
        draw_round.record = attrs.evolve(
            record, winner_order_id=other.order_id, winner_id=other.buyer_id
        )
        assert not draw_round.verify()
        draw_round.record = attrs.evolve(record, winning_number=FIRST_NUMBER + 99)
        assert not draw_round.verify()
        draw_round.record = honest
        assert draw_round.verify()

    def test_a_record_naming_a_number_nobody_holds_fails_verification(self):
        draw_round = sold_out_round()
        record = draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
        bigger = attrs.evolve(record, share_count=1000)
        draw_round.record = attrs.evolve(bigger, winning_number=bigger.recompute())
        assert draw_round.record.winning_number >= FIRST_NUMBER + 10
        assert not draw_round.verify()
        with pytest.raises(NotFound):
            draw_round.holder(FIRST_NUMBER + 10)
        with pytest.raises(NotFound):
            draw_round.holder(FIRST_NUMBER - 1)

    def test_a_round_that_was_not_drawn_does_not_verify(self):
        assert not sold_out_round().verify()

    def test_the_draw_tells_the_winning_and_the_losing_orders(self):
        draw_round = sold_out_round()
        draw_round.collect_events()
        record = draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
        (event,) = draw_round.collect_events()
        assert set(event.losing_order_ids) == {"o-1", "o-2", "o-3"} - {record.winner_order_id}
        assert event.address_due == NOW + timedelta(hours=2, days=30) == draw_round.address_due
        assert draw_round.state == "awaiting_address"

    def test_a_draw_with_missing_inputs_is_refused_and_changes_nothing(self):
        draw_round = sold_out_round()
        error = refused(
            draw_round,
            DrawInputsMissing,
            lambda: draw_round.draw(SYSTEM, number=None, now=NOW + timedelta(hours=1)),
        )
        assert error.missing == ("B (a public number)",)

    def test_without_a_fallback_the_draw_waits_for_a_public_number_forever(self):
        draw_round = sold_out_round(b_fallback_after=None)
        refused(
            draw_round,
            DrawInputsMissing,
            lambda: draw_round.draw(SYSTEM, number=None, now=NOW + timedelta(days=365)),
        )

    def test_b_falls_back_to_zero_after_the_fallback_delay(self):
        draw_round = sold_out_round()
        record = draw_round.draw(SYSTEM, number=None, now=NOW + timedelta(hours=25))
        assert (record.b, record.fallback, record.b_source) == (0, True, "fallback")
        assert record.winning_number == sum(record.a_terms) % 10 + FIRST_NUMBER
        assert draw_round.verify()

    def test_a_number_published_before_the_sell_out_is_refused(self):
        draw_round = sold_out_round()
        early = lottery(at=NOW)
        refused(
            draw_round,
            InvalidInput,
            lambda: draw_round.draw(SYSTEM, number=early, now=NOW + timedelta(hours=1)),
        )

    def test_a_number_published_after_the_draw_time_is_refused(self):
        draw_round = sold_out_round()
        refused(
            draw_round,
            InvalidInput,
            lambda: draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(minutes=30)),
        )

    def test_the_randomness_port_supplies_the_first_number_after_the_sell_out(self):
        draw_round = sold_out_round()
        source = PublishedNumbers([lottery(11, NOW), lottery(22, NOW + timedelta(minutes=20))])
        number = source.public_number(draw_round.sold_out_at)
        record = draw_round.draw(SYSTEM, number=number, now=NOW + timedelta(hours=1))
        assert record.b == 22

    @pytest.mark.parametrize(
        ("actor", "number", "error"),
        [(Actor.buyer("alice"), lottery(), Forbidden), (SYSTEM, 40_113, InvalidInput)],
    )
    def test_bad_draws_are_refused(self, actor, number, error):
        draw_round = sold_out_round()
        refused(draw_round, error, lambda: draw_round.draw(actor, number=number, now=NOW))

    def test_a_round_is_drawn_only_once_and_only_when_sold_out(self):
        draw_round = new_round()
        refused(
            draw_round,
            TransitionNotAllowed,
            lambda: draw_round.draw(SYSTEM, number=lottery(), now=NOW),
        )
        draw_round = sold_out_round()
        draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
        refused(
            draw_round,
            TransitionNotAllowed,
            lambda: draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=3)),
        )


def drawn_round(**changes) -> tuple[DrawRound, DrawRecord]:
    draw_round = sold_out_round(**changes)
    record = draw_round.draw(SYSTEM, number=lottery(), now=NOW + timedelta(hours=2))
    return draw_round, record


class TestTheWinnersAddress:
    def test_the_winner_confirms_an_address_in_time(self):
        draw_round, record = drawn_round()
        draw_round.confirm_address(
            Actor.buyer(record.winner_id),
            address="1 Tea Road, Hangzhou",
            now=NOW + timedelta(days=3),
        )
        assert (draw_round.state, draw_round.address) == ("fulfilled", "1 Tea Road, Hangzhou")
        assert draw_round.is_final
        assert draw_round.expire(NOW + timedelta(days=90)) is None

    def test_only_the_winner_confirms_the_address(self):
        draw_round, record = drawn_round()
        loser = "bob" if record.winner_id == "alice" else "alice"
        refused(
            draw_round,
            Forbidden,
            lambda: draw_round.confirm_address(Actor.buyer(loser), address="x", now=NOW),
        )

    def test_an_address_after_the_deadline_is_refused(self):
        draw_round, record = drawn_round()
        refused(
            draw_round,
            DeadlinePassed,
            lambda: draw_round.confirm_address(
                Actor.buyer(record.winner_id), address="x", now=draw_round.address_due
            ),
        )

    def test_a_winner_who_does_not_confirm_in_time_forfeits_and_the_prize_goes_back(self):
        draw_round, _ = drawn_round()
        assert draw_round.expire(draw_round.address_due - timedelta(seconds=1)) is None
        releases = draw_round.expire(draw_round.address_due)
        assert draw_round.state == "forfeited"
        assert [(r.kind, r.reference) for r in releases] == [(ReleaseKind.STOCK, "r-1")]
        assert draw_round.expire(draw_round.address_due + timedelta(days=1)) is None

    def test_under_the_refund_policy_a_forfeiting_winner_is_refunded(self):
        draw_round, record = drawn_round(on_forfeit=ForfeitPolicy.REFUND_WINNER)
        releases = draw_round.expire(draw_round.address_due)
        refund = next(r for r in releases if r.kind is ReleaseKind.REFUND)
        winner = draw_round.purchase(record.winner_order_id)
        assert (refund.reference, refund.amount, refund.payment_ref) == (
            winner.order_id,
            winner.amount,
            winner.payment_ref,
        )


class TestAnUnsoldRound:
    def test_a_round_not_sold_out_by_its_deadline_refunds_every_share(self):
        draw_round = new_round()
        buy(draw_round, "alice", 3, "o-1")
        buy(draw_round, "bob", 2, "o-2")
        draw_round.reserve(Actor.buyer("carol"), order_id="o-3", quantity=1, now=NOW)
        draw_round.reserve(Actor.buyer("dave"), order_id="o-4", quantity=1, now=NOW)
        draw_round.release(SYSTEM, order_id="o-4", now=NOW)
        assert draw_round.expire(SELL_BY - timedelta(seconds=1)) is None
        releases = draw_round.expire(SELL_BY + timedelta(hours=5))
        assert draw_round.state == "unsold"
        refunds = [(r.reference, r.amount, r.payment_ref) for r in releases if r.kind == "refund"]
        assert refunds == [("o-1", SHARE * 3, "tx-o-1"), ("o-2", SHARE * 2, "tx-o-2")]
        assert {r.reference for r in releases} == {"o-1", "o-2", "o-3", "r-1"}
        (event,) = [e for e in draw_round.collect_events() if e.name == "RoundUnsold"]
        assert (event.occurred_at, event.order_ids) == (SELL_BY, ("o-1", "o-2", "o-3"))
        assert draw_round.expire(SELL_BY + timedelta(days=1)) is None

    def test_only_the_system_or_platform_expires_a_round(self):
        draw_round = new_round()
        refused(draw_round, Forbidden, lambda: draw_round.expire(SELL_BY, Actor.buyer("alice")))


class TestTheLuckyDrawOrderProcess:
    def test_a_paid_share_order_waits_for_the_draw_and_cannot_ship(self):
        assert "ship" not in LUCKY_DRAW_ORDER_PROCESS.triggers("awaiting_draw")

    def test_the_winning_order_ships_only_after_the_address_is_confirmed(self):
        process = LUCKY_DRAW_ORDER_PROCESS
        state = process.fire("awaiting_draw", "draw_won")
        assert state == "awaiting_address"
        assert "ship" not in process.triggers(state)
        assert process.fire(state, "confirm_address") == "awaiting_shipment"
        assert process.fire(state, "forfeit") == "forfeited"

    def test_losing_orders_end_with_their_shares_spent_and_unsold_rounds_cancel(self):
        assert LUCKY_DRAW_ORDER_PROCESS.fire("awaiting_draw", "draw_lost") == "lost"
        assert LUCKY_DRAW_ORDER_PROCESS.is_final("lost")
        assert LUCKY_DRAW_ORDER_PROCESS.fire("awaiting_draw", "round_unsold") == "cancelled"


# --------------------------------------------------------------------------- stateful

BUYERS = ["a", "b", "c", "d"]


class DrawRacing(RuleBasedStateMachine):
    """Buyers race for the shares of one round; payments time out; the draw may lack B."""

    @initialize(share_count=st.integers(1, 12), policy=st.sampled_from(list(ForfeitPolicy)))
    def start(self, share_count, policy):
        self.round = new_round(share_count=share_count, on_forfeit=policy)
        self.now = NOW
        self.count = 0
        self.released: Counter[str] = Counter()
        self.draws = 0

    def attempt(self, command):
        before = snapshot(self.round)
        try:
            return command()
        except EcommerceCoreError:
            assert snapshot(self.round) == before, "a refused command changed the round"
            return None

    def record(self, releases):
        self.released.update(r.key for r in releases or ())

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 5))
    def reserve(self, buyer, quantity):
        self.count += 1
        order_id = f"o-{self.count}"
        self.attempt(
            lambda: self.round.reserve(
                Actor.buyer(buyer), order_id=order_id, quantity=quantity, now=self.now
            )
        )

    @rule(buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 4))
    def buy(self, buyer, quantity):
        self.count += 1
        order_id = f"o-{self.count}"
        self.attempt(lambda: buy(self.round, buyer, quantity, order_id, self.now))

    @precondition(lambda self: self.count > 0)
    @rule(data=st.data(), exact=st.booleans())
    def pay(self, data, exact):
        order_id = f"o-{data.draw(st.integers(1, self.count))}"
        try:
            quantity = self.round.purchase(order_id).quantity
        except NotFound:
            return
        amount = SHARE * (quantity if exact else quantity + 1)
        self.attempt(
            lambda: self.round.pay(
                SYSTEM, order_id=order_id, amount=amount, payment_ref=f"tx-{order_id}", now=self.now
            )
        )

    @precondition(lambda self: self.count > 0)
    @rule(data=st.data())
    def a_payment_times_out(self, data):
        order_id = f"o-{data.draw(st.integers(1, self.count))}"
        self.attempt(lambda: self.round.release(SYSTEM, order_id=order_id, now=self.now))

    @rule(published=st.none() | st.integers(-60, 600), value=st.integers(0, 99_999))
    def draw(self, published, value):
        number = None
        if published is not None:
            number = PublicNumber(value, "lottery", self.now + timedelta(minutes=published))
        if self.attempt(lambda: self.round.draw(SYSTEM, number=number, now=self.now)) is not None:
            self.draws += 1

    @rule(confirm=st.booleans())
    def the_winner_answers(self, confirm):
        record = self.round.record
        if record is not None and confirm:
            self.attempt(
                lambda: self.round.confirm_address(
                    Actor.buyer(record.winner_id), address="home", now=self.now
                )
            )

    @rule(hours=st.one_of(st.integers(0, 12), st.integers(0, 24 * 40)))
    def time_passes(self, hours):
        self.now += timedelta(hours=hours)
        releases = self.round.expire(self.now)
        self.record(releases)
        if releases is not None:
            assert self.round.expire(self.now) is None

    @invariant()
    def never_more_than_s_shares_are_held_or_sold(self):
        r = self.round
        assert 0 <= r.sold + r.held <= r.terms.share_count
        assert r.held == sum(p.quantity for p in r.purchases if p.status == "held")
        assert r.sold == sum(p.quantity for p in r.purchases if p.status == "paid")
        numbers = [n for p in r.paid_purchases() for n in p.numbers]
        assert numbers == list(range(FIRST_NUMBER, FIRST_NUMBER + r.sold))
        assert (r.state == "selling") == (r.sold < r.terms.share_count and r.state == "selling")
        if r.state in ("sold_out", "awaiting_address", "fulfilled", "forfeited"):
            assert r.sold == r.terms.share_count

    @invariant()
    def a_drawn_round_has_exactly_one_winner_recomputable_from_its_inputs(self):
        r = self.round
        assert self.draws == (1 if r.record is not None else 0)
        if r.record is not None:
            assert r.verify()
            holders = [p for p in r.paid_purchases() if r.record.winning_number in p.numbers]
            assert len(holders) == 1
            assert holders[0].order_id == r.record.winner_order_id

    @invariant()
    def every_release_happens_once(self):
        assert all(count == 1 for count in self.released.values())
        if self.round.state == "unsold":
            left = {p.order_id for p in self.round.purchases if p.status != "released"}
            assert {r.reference for r in self.round.releases} == left | {self.round.id}
            refunds = sum(
                (r.amount for r in self.round.releases if r.kind == "refund"), Money.zero("CNY")
            )
            assert refunds == SHARE * self.round.sold


DrawRacing.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestDrawRacing = DrawRacing.TestCase
