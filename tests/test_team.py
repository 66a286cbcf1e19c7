"""Team purchase (拼团): opening, joining, paying, forming, failing, and the team order process."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from ecommerce_core import (
    Actor,
    AlreadyJoined,
    DeadlinePassed,
    DefinitionError,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    Money,
    NotFound,
    Order,
    OrderLine,
    OrderPolicy,
    RuleViolation,
    TeamFull,
    TransitionNotAllowed,
)
from ecommerce_core.campaigns.team import (
    TEAM_ORDER_PROCESS,
    MemberStatus,
    Team,
    TeamFailed,
    TeamFormed,
    TeamTerms,
    WhenFull,
)
from ecommerce_core.releases import ReleaseKind

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PRICE = Money.of("9.90", "CNY")
SYSTEM = Actor.system()


def terms(**changes) -> TeamTerms:
    values = {"campaign_id": "pin-1", "size": 3, "ends_at": NOW + timedelta(days=7)}
    values.update(changes)
    return TeamTerms(**values)


def open_team(leader="alice", team_terms=None, now=NOW, team_id="t-1") -> Team:
    return Team.open(
        Actor.buyer(leader),
        team_id=team_id,
        terms=team_terms or terms(),
        order_id=f"o-{leader}",
        amount=PRICE,
        payment_ref=f"tx-{leader}",
        now=now,
    )


def join_and_pay(team: Team, buyer: str, now=NOW) -> str:
    team.join(Actor.buyer(buyer), order_id=f"o-{buyer}", now=now)
    return team.pay(
        Actor.buyer(buyer), order_id=f"o-{buyer}", amount=PRICE, payment_ref=f"tx-{buyer}", now=now
    )


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
    assert snapshot(aggregate) == before, "a refused command changed the team"
    return caught.value


class TestTerms:
    def test_the_default_team_validity_is_24_hours(self):
        assert terms().validity == timedelta(hours=24)

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            ({"size": 1}, "size must be"),
            ({"validity": timedelta(0)}, "validity must be"),
            ({"ends_at": datetime(2026, 6, 1)}, "ends_at must be"),  # noqa: DTZ001
            ({"simulated_fill": 3}, "simulated_fill is a head count"),
            ({"simulated_fill": -1}, "simulated_fill is a head count"),
            ({"campaign_id": " "}, "campaign_id"),
        ],
    )
    def test_impossible_terms_are_a_definition_error(self, changes, problem):
        with pytest.raises(DefinitionError) as caught:
            terms(**changes)
        assert any(problem in p for p in caught.value.problems)

    def test_the_policy_for_a_full_team_is_read_from_its_name(self):
        assert terms(when_full="open_new_team").when_full is WhenFull.OPEN_NEW_TEAM


class TestOpening:
    def test_team_expiry_is_opened_plus_validity_stored_as_a_deadline(self):
        team = open_team()
        assert team.deadline == NOW + timedelta(hours=24)
        assert team.due_at == team.deadline

    def test_team_expiry_is_capped_by_the_campaign_end(self):
        team = open_team(team_terms=terms(ends_at=NOW + timedelta(hours=5)))
        assert team.deadline == NOW + timedelta(hours=5)

    def test_a_leader_opens_a_team_by_paying_and_is_its_first_complete_member(self):
        team = open_team()
        assert (team.state, team.version, team.paid_count, team.held_count) == ("forming", 1, 1, 0)
        (leader,) = team.members
        assert (leader.leader, leader.status, leader.payment_ref) == (True, "paid", "tx-alice")
        (event,) = team.collect_events()
        assert (event.name, event.leader_id, event.deadline) == (
            "TeamOpened",
            "alice",
            team.deadline,
        )

    def test_the_system_opens_a_team_for_a_named_leader(self):
        team = Team.open(
            SYSTEM,
            team_id="t-1",
            terms=terms(),
            order_id="o-1",
            amount=PRICE,
            payment_ref="tx-1",
            now=NOW,
            leader_id="alice",
        )
        assert team.leader_id == "alice"

    def test_no_team_opens_once_the_campaign_ended(self):
        with pytest.raises(DeadlinePassed):
            open_team(team_terms=terms(ends_at=NOW))

    @pytest.mark.parametrize(
        ("actor", "changes", "error"),
        [
            (SYSTEM, {}, InvalidInput),  # the system must name the leader
            (Actor.buyer("alice"), {"leader_id": "bob"}, InvalidInput),
            (Actor.merchant("m-1"), {"leader_id": "bob"}, Forbidden),
            (Actor.buyer("alice"), {"amount": Money.zero("CNY")}, InvalidInput),
            (Actor.buyer("alice"), {"amount": 9.9}, InvalidInput),
            (Actor.buyer("alice"), {"terms": "pin-1"}, InvalidInput),
            (Actor.buyer("alice"), {"payment_ref": ""}, InvalidInput),
        ],
    )
    def test_bad_openings_are_refused(self, actor, changes, error):
        values = {
            "team_id": "t-1",
            "terms": terms(),
            "order_id": "o-1",
            "amount": PRICE,
            "payment_ref": "tx-1",
            "now": NOW,
        }
        values.update(changes)
        with pytest.raises(error):
            Team.open(actor, **values)


class TestJoining:
    def test_a_joiner_holds_a_place_until_paying(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        assert (team.paid_count, team.held_count, team.places_left) == (1, 1, 1)
        assert team.member("o-bob").status is MemberStatus.HELD

    def test_unpaid_joiners_hold_places_counted_apart_from_paid_members(self):
        team = open_team(team_terms=terms(size=4))
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        join_and_pay(team, "carol")
        assert (team.paid_count, team.held_count, team.places_left) == (2, 1, 1)

    def test_a_buyer_never_joins_their_own_team(self):
        team = open_team()
        error = refused(
            team, AlreadyJoined, lambda: team.join(Actor.buyer("alice"), order_id="o-2", now=NOW)
        )
        assert error.buyer_id == "alice"
        assert "own team" in str(error)

    def test_a_buyer_joins_a_team_at_most_once(self):
        team = open_team(team_terms=terms(size=4))
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        refused(team, AlreadyJoined, lambda: team.join(Actor.buyer("bob"), order_id="o-2", now=NOW))

    def test_a_buyer_who_gave_a_place_up_may_take_one_again(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        team.release_slot(SYSTEM, order_id="o-bob", now=NOW)
        team.join(Actor.buyer("bob"), order_id="o-bob-2", now=NOW)
        assert team.held_count == 1

    def test_the_n_plus_first_joiner_is_refused_and_the_team_never_overfills(self):
        team = open_team(team_terms=terms(size=3))
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        team.join(Actor.buyer("carol"), order_id="o-carol", now=NOW)
        error = refused(
            team, TeamFull, lambda: team.join(Actor.buyer("dave"), order_id="o-dave", now=NOW)
        )
        assert (error.size, error.open_new_team) == (3, False)
        assert team.paid_count + team.held_count == 3

    def test_the_n_plus_first_joiner_is_told_to_open_a_new_team_per_policy(self):
        team = open_team(team_terms=terms(size=2, when_full=WhenFull.OPEN_NEW_TEAM))
        join_and_pay(team, "bob")
        error = refused(
            team, TeamFull, lambda: team.join(Actor.buyer("dave"), order_id="o-dave", now=NOW)
        )
        assert error.open_new_team is True
        new_team = open_team("dave", team_terms=team.terms, team_id="t-2")
        assert new_team.leader_id == "dave"

    def test_joining_an_expired_team_is_refused(self):
        team = open_team()
        later = team.deadline
        error = refused(
            team, DeadlinePassed, lambda: team.join(Actor.buyer("bob"), order_id="o", now=later)
        )
        assert (error.deadline, error.at) == (team.deadline, later)

    def test_joining_a_failed_team_is_refused(self):
        team = open_team()
        team.expire(team.deadline)
        refused(team, DeadlinePassed, lambda: team.join(Actor.buyer("bob"), order_id="o", now=NOW))

    @pytest.mark.parametrize(
        ("actor", "order_id", "error"),
        [
            (Actor.merchant("m-1"), "o-9", Forbidden),
            (Actor.system(), "o-9", Forbidden),
            (Actor.buyer("bob"), "", InvalidInput),
            (Actor.buyer("bob"), "o-alice", InvalidInput),  # an order that already took a place
        ],
    )
    def test_bad_joins_are_refused_and_change_nothing(self, actor, order_id, error):
        team = open_team()
        refused(team, error, lambda: team.join(actor, order_id=order_id, now=NOW))


class TestPaying:
    def test_the_nth_payment_forms_the_team(self):
        team = open_team(team_terms=terms(size=3))
        assert join_and_pay(team, "bob") == "forming"
        assert join_and_pay(team, "carol") == "formed"
        formed = [e for e in team.collect_events() if isinstance(e, TeamFormed)]
        assert [(e.order_ids, e.simulated_members) for e in formed] == [
            (("o-alice", "o-bob", "o-carol"), 0)
        ]
        assert team.due_at is None
        assert team.is_final

    def test_an_accepted_command_raises_the_version_by_one_per_event(self):
        team = open_team(team_terms=terms(size=2))
        team.collect_events()
        version = team.version
        join_and_pay(team, "bob")
        events = team.collect_events()
        assert [e.name for e in events] == ["TeamJoined", "TeamMemberPaid", "TeamFormed"]
        assert team.version == version + 3 == events[-1].version

    def test_joining_a_formed_team_is_refused_as_full(self):
        team = open_team(team_terms=terms(size=2))
        join_and_pay(team, "bob")
        refused(team, TeamFull, lambda: team.join(Actor.buyer("carol"), order_id="o", now=NOW))

    def test_paying_after_the_deadline_is_refused(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        refused(
            team,
            DeadlinePassed,
            lambda: team.pay(
                SYSTEM, order_id="o-bob", amount=PRICE, payment_ref="tx", now=team.deadline
            ),
        )

    @pytest.mark.parametrize(
        ("actor", "order_id", "amount", "error"),
        [
            (Actor.buyer("carol"), "o-bob", PRICE, Forbidden),
            (Actor.carrier("SF"), "o-bob", PRICE, Forbidden),
            (SYSTEM, "o-nobody", PRICE, NotFound),
            (SYSTEM, "o-alice", PRICE, RuleViolation),  # already paid
            (SYSTEM, "o-bob", Money.of("9.90", "USD"), InvalidInput),
            (SYSTEM, "o-bob", Money.zero("CNY"), InvalidInput),
        ],
    )
    def test_bad_payments_are_refused_and_change_nothing(self, actor, order_id, amount, error):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        refused(
            team,
            error,
            lambda: team.pay(actor, order_id=order_id, amount=amount, payment_ref="tx", now=NOW),
        )

    def test_a_payment_for_a_place_given_up_is_refused(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        team.release_slot(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        refused(
            team,
            RuleViolation,
            lambda: team.pay(SYSTEM, order_id="o-bob", amount=PRICE, payment_ref="tx", now=NOW),
        )


class TestReleasingAPlace:
    def test_asking_for_a_place_no_order_took_is_not_found(self):
        with pytest.raises(NotFound):
            open_team().member("o-nobody")

    def test_a_held_place_given_up_frees_it(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        team.release_slot(SYSTEM, order_id="o-bob", now=NOW)
        assert (team.held_count, team.places_left) == (0, 2)
        assert team.member("o-bob").status is MemberStatus.RELEASED

    def test_a_paid_member_cannot_give_their_place_up(self):
        team = open_team()
        refused(team, RuleViolation, lambda: team.release_slot(SYSTEM, order_id="o-alice", now=NOW))

    def test_only_the_joiner_releases_their_own_place(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        refused(
            team,
            Forbidden,
            lambda: team.release_slot(Actor.buyer("carol"), order_id="o-bob", now=NOW),
        )

    def test_no_place_is_released_once_the_team_is_final(self):
        team = open_team(team_terms=terms(size=2))
        join_and_pay(team, "bob")
        refused(
            team,
            TransitionNotAllowed,
            lambda: team.release_slot(SYSTEM, order_id="o-bob", now=NOW),
        )


class TestExpiry:
    def test_nothing_happens_before_the_deadline(self):
        team = open_team()
        assert team.expire(team.deadline - timedelta(seconds=1)) is None
        assert team.state == "forming"

    def test_an_unformed_team_fails_at_its_deadline_and_every_member_fails(self):
        team = open_team(team_terms=terms(size=4))
        join_and_pay(team, "bob")
        team.join(Actor.buyer("carol"), order_id="o-carol", now=NOW)
        releases = team.expire(team.deadline + timedelta(hours=3))
        assert team.state == "failed"
        (failed,) = [e for e in team.collect_events() if isinstance(e, TeamFailed)]
        assert failed.order_ids == ("o-alice", "o-bob", "o-carol")
        assert failed.occurred_at == team.deadline, "it failed when the deadline fell due"
        assert failed.releases == releases == team.releases

    def test_on_expiry_each_members_refund_refers_to_their_own_order_and_payment(self):
        # CRMEB created every member's refund against the leader's order id.
        team = open_team(team_terms=terms(size=4))
        join_and_pay(team, "bob")
        join_and_pay(team, "carol")
        releases = team.expire(team.deadline)
        refunds = {r.reference: r for r in releases if r.kind is ReleaseKind.REFUND}
        assert set(refunds) == {"o-alice", "o-bob", "o-carol"}
        for buyer in ("alice", "bob", "carol"):
            refund = refunds[f"o-{buyer}"]
            assert (refund.buyer_id, refund.payment_ref, refund.amount) == (
                buyer,
                f"tx-{buyer}",
                PRICE,
            )

    def test_an_unpaid_member_of_a_failed_team_gives_back_its_holdings_without_a_refund(self):
        team = open_team()
        team.join(Actor.buyer("bob"), order_id="o-bob", now=NOW)
        releases = team.expire(team.deadline)
        bobs = {r.kind for r in releases if r.reference == "o-bob"}
        assert bobs == {ReleaseKind.STOCK, ReleaseKind.QUOTA, ReleaseKind.COUPON_USES}

    def test_expiry_releases_exactly_once(self):
        team = open_team()
        first = team.expire(team.deadline)
        assert first
        assert team.expire(team.deadline + timedelta(days=1)) is None
        assert len({r.key for r in first}) == len(first)

    def test_simulated_fill_is_off_by_default(self):
        team = open_team(team_terms=terms(size=2))
        team.expire(team.deadline)
        assert team.state == "failed"

    def test_simulated_fill_completes_a_team_by_a_head_count_and_flags_it(self):
        # CRMEB labelled its virtual ration a percentage but added it as a head count.
        team = open_team(team_terms=terms(size=5, simulated_fill=2))
        join_and_pay(team, "bob")
        join_and_pay(team, "carol")
        team.join(Actor.buyer("dave"), order_id="o-dave", now=NOW)
        releases = team.expire(team.deadline)
        assert (team.state, team.simulated_members, team.paid_count) == ("formed", 2, 3)
        (formed,) = [e for e in team.collect_events() if isinstance(e, TeamFormed)]
        assert formed.order_ids == ("o-alice", "o-bob", "o-carol")
        assert {r.reference for r in releases} == {"o-dave"}, "the unpaid joiner is left out"
        assert team.member("o-dave").status is MemberStatus.RELEASED

    def test_simulated_fill_does_not_complete_a_team_short_by_more_than_its_head_count(self):
        team = open_team(team_terms=terms(size=5, simulated_fill=2))
        join_and_pay(team, "bob")
        team.expire(team.deadline)
        assert (team.state, team.simulated_members) == ("failed", 0)

    def test_only_the_system_or_platform_expires_a_team(self):
        team = open_team()
        refused(team, Forbidden, lambda: team.expire(team.deadline, Actor.buyer("alice")))


class TestTheTeamOrderProcess:
    def place(self) -> Order:
        return Order.place(
            order_id="o-1",
            buyer_id="alice",
            merchant_id="m-1",
            lines=[OrderLine("1", "tea", 1, PRICE)],
            now=NOW,
            policy=OrderPolicy(),
            process=TEAM_ORDER_PROCESS,
        )

    def test_a_paid_team_order_waits_for_its_team(self):
        order = self.place()
        order.pay(Actor.buyer("alice"), amount=PRICE, reference="tx-1", now=NOW)
        assert order.state == "awaiting_team"
        assert order.deadline is None

    def test_an_unformed_team_never_lets_its_orders_ship(self):
        # litemall's ship endpoint only checked "paid", so unformed teams shipped.
        order = self.place()
        order.pay(Actor.buyer("alice"), amount=PRICE, reference="tx-1", now=NOW)
        with pytest.raises(TransitionNotAllowed) as caught:
            order.ship(
                Actor.merchant("m-1"),
                carrier="SF",
                tracking_number="SF1",
                now=NOW,
                policy=OrderPolicy(),
            )
        assert caught.value.allowed == ("team_failed", "team_formed")
        assert order.state == "awaiting_team"

    def test_a_formed_team_releases_its_orders_to_shipment(self):
        assert TEAM_ORDER_PROCESS.fire("awaiting_team", "team_formed") == "awaiting_shipment"
        assert "ship" in TEAM_ORDER_PROCESS.triggers("awaiting_shipment")

    def test_a_failed_team_cancels_its_orders_paid_or_not(self):
        for state in ("awaiting_team", "pending_payment"):
            assert TEAM_ORDER_PROCESS.fire(state, "team_failed") == "cancelled"

    def test_a_buyer_cannot_cancel_a_paid_order_waiting_for_its_team(self):
        assert "cancel" not in TEAM_ORDER_PROCESS.triggers("awaiting_team")


# --------------------------------------------------------------------------- stateful

BUYERS = [f"b{i}" for i in range(7)]


class TeamsRacing(RuleBasedStateMachine):
    """Many buyers open, join, pay and abandon teams of one campaign while time passes.

    The harness plays the service: it moves each member's order through ``order.team`` as the
    teams form or fail, and acts on every release. After every step: no team holds more than
    N places, no order of an unformed team can ship, every release is produced once, and every
    refund goes to the member's own payment.
    """

    teams = Bundle("teams")
    held = Bundle("held")

    @initialize(
        size=st.integers(2, 4),
        simulated=st.integers(0, 3),
        when_full=st.sampled_from(list(WhenFull)),
        validity_hours=st.integers(1, 30),
    )
    def start(self, size, simulated, when_full, validity_hours):
        self.now = NOW
        self.terms = TeamTerms(
            "pin-1",
            size,
            NOW + timedelta(hours=48),
            timedelta(hours=validity_hours),
            when_full,
            min(simulated, size - 1),
        )
        self.all: dict[str, Team] = {}
        self.orders: dict[str, str] = {}  # order id -> state in order.team
        self.order_team: dict[str, str] = {}
        self.released_keys: Counter[str] = Counter()
        self.refunded_orders: list[str] = []
        self.counter = 0

    def new_id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.counter}"

    def fire(self, order_id: str, trigger: str) -> None:
        # the payment guard looks at the order's total: every order here costs PRICE
        self.orders[order_id] = TEAM_ORDER_PROCESS.fire(
            self.orders[order_id], trigger, SimpleNamespace(total=PRICE), PRICE
        )

    def act_on(self, team: Team) -> None:
        for event in team.collect_events():
            if isinstance(event, TeamFormed):
                for order_id in event.order_ids:
                    self.fire(order_id, "team_formed")
                for order_id in {r.reference for r in event.releases}:
                    self.fire(order_id, "team_failed")
                self.record(event.releases)
            elif isinstance(event, TeamFailed):
                for order_id in event.order_ids:
                    self.fire(order_id, "team_failed")
                self.record(event.releases)

    def record(self, releases) -> None:
        self.released_keys.update(r.key for r in releases)
        self.refunded_orders += [r.reference for r in releases if r.kind is ReleaseKind.REFUND]

    def attempt(self, team: Team, command) -> bool:
        before = snapshot(team)
        try:
            command()
        except EcommerceCoreError:
            assert snapshot(team) == before, "a refused command changed the team"
            return False
        self.act_on(team)
        return True

    @rule(target=teams, leader=st.sampled_from(BUYERS))
    def open_a_team(self, leader):
        order_id = self.new_id("order")
        try:
            team = Team.open(
                Actor.buyer(leader),
                team_id=self.new_id("team"),
                terms=self.terms,
                order_id=order_id,
                amount=PRICE,
                payment_ref=f"tx-{order_id}",
                now=self.now,
            )
        except DeadlinePassed:
            assert self.now >= self.terms.ends_at
            return None
        self.orders[order_id] = "pending_payment"
        self.fire(order_id, "pay")
        self.order_team[order_id] = team.id
        self.all[team.id] = team
        team.collect_events()
        return team.id

    @rule(target=held, team_id=teams, buyer=st.sampled_from(BUYERS))
    def join(self, team_id, buyer):
        if team_id is None:
            return None
        team = self.all[team_id]
        order_id = self.new_id("order")
        before = snapshot(team)
        try:
            team.join(Actor.buyer(buyer), order_id=order_id, now=self.now)
        except TeamFull as full:
            assert snapshot(team) == before
            assert team.places_left == 0
            told_to_open = full.open_new_team
            assert told_to_open is (self.terms.when_full is WhenFull.OPEN_NEW_TEAM)
            return None
        except EcommerceCoreError:
            assert snapshot(team) == before
            return None
        team.collect_events()
        self.orders[order_id] = "pending_payment"
        self.order_team[order_id] = team_id
        return order_id

    @rule(order_id=consumes(held))
    def pay(self, order_id):
        if order_id is None:
            return
        team = self.all[self.order_team[order_id]]
        before = snapshot(team)
        try:
            team.pay(
                SYSTEM, order_id=order_id, amount=PRICE, payment_ref=f"tx-{order_id}", now=self.now
            )
        except EcommerceCoreError:
            assert snapshot(team) == before, "a refused command changed the team"
            return
        self.fire(order_id, "pay")
        self.act_on(team)  # the payment may have formed the team

    @rule(order_id=consumes(held))
    def the_joiners_payment_times_out(self, order_id):
        if order_id is None:
            return
        team = self.all[self.order_team[order_id]]
        if self.attempt(team, lambda: team.release_slot(SYSTEM, order_id=order_id, now=self.now)):
            self.fire(order_id, "expire_payment")

    @rule(minutes=st.one_of(st.integers(0, 90), st.integers(0, 60 * 30)))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)
        for team in self.all.values():
            was = team.state
            releases = team.expire(self.now)
            if releases is None:
                assert was != "forming" or self.now < team.deadline
                continue
            assert was == "forming"
            self.act_on(team)
            assert team.expire(self.now) is None, "a second expiry releases nothing"

    @rule(order_id=st.sampled_from([f"order-{i}" for i in range(1, 40)]))
    def the_merchant_tries_to_ship(self, order_id):
        state = self.orders.get(order_id)
        if state is None:
            return
        if state == "awaiting_shipment":
            assert self.all[self.order_team[order_id]].state == "formed"
        else:
            with pytest.raises(TransitionNotAllowed):
                TEAM_ORDER_PROCESS.fire(state, "ship")

    @invariant()
    def no_team_exceeds_its_size(self):
        for team in self.all.values():
            assert team.paid_count + team.held_count <= team.size
            if team.state == "formed":
                assert team.paid_count + team.simulated_members == team.size
                assert team.held_count == 0
                assert team.simulated_members <= self.terms.simulated_fill
            else:
                assert team.simulated_members == 0

    @invariant()
    def no_order_ships_unless_its_team_formed(self):
        for order_id, state in self.orders.items():
            team = self.all[self.order_team[order_id]]
            if state == "awaiting_shipment":
                assert team.state == "formed"
            if state == "awaiting_team":
                assert team.state == "forming"

    @invariant()
    def every_release_happens_once_and_refunds_go_to_the_members_own_payment(self):
        assert all(count == 1 for count in self.released_keys.values())
        assert len(self.refunded_orders) == len(set(self.refunded_orders))
        for team in self.all.values():
            for release in team.releases:
                if release.kind is ReleaseKind.REFUND:
                    member = team.member(release.reference)
                    assert member.status is MemberStatus.PAID
                    assert (release.buyer_id, release.payment_ref, release.amount) == (
                        member.buyer_id,
                        member.payment_ref,
                        member.amount,
                    )
            if team.state == "failed":
                failed = {m.order_id for m in team.members if m.status is not MemberStatus.RELEASED}
                assert {r.reference for r in team.releases} == failed
                for order_id in failed:
                    assert self.orders[order_id] == "cancelled"


TeamsRacing.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
TestTeamsRacing = TeamsRacing.TestCase
