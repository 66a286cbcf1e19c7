"""Team purchase through CampaignService: orders, ledger refunds and stock, path by path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import Actor, Money, OrderPolicy
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryCatalog,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryTeamRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.team import Team, TeamTerms, WhenFull
from ecommerce_core.errors import (
    AlreadyJoined,
    DeadlinePassed,
    DefinitionError,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    RuleViolation,
    TeamFull,
)
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import CampaignService

PRICE = Money.of("9.90", "CNY")
ALICE, BOB, CAROL, DAVE = (Actor.buyer(n) for n in ("alice", "bob", "carol", "dave"))


class World:
    """A campaign service over in-memory adapters, with 10 units of tea."""

    def __init__(self, *, stock: int = 10) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.during_charge: list[timedelta] = []
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"tea": stock})
        self.ledger = InMemoryLedger()
        self.teams = InMemoryTeamRepository()
        self.orders = InMemoryOrderRepository()
        self.publisher = RecordingPublisher()
        self.service = CampaignService(
            orders=self.orders,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("tea", "m-1", "tea", PRICE)]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            policy=OrderPolicy(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            teams=self.teams,
        )

    def _decide(self, _request: GatewayRequest) -> GatewayStatus:
        if self.during_charge:
            self.clock.advance(self.during_charge.pop())
        return self.outcome

    def terms(self, size: int = 3, **kwargs: object) -> TeamTerms:
        return TeamTerms(
            "pin-1",
            size=size,
            ends_at=self.clock.now() + timedelta(days=7),
            **kwargs,  # type: ignore[arg-type]
        )

    def lead(self, buyer: Actor = ALICE, terms: TeamTerms | None = None) -> Team:
        order = self.service.place_team_order(buyer, "tea")
        return self.service.lead_team(order.id, buyer, terms or self.terms())

    def join(self, team: Team, buyer: Actor, *, pay: bool = True) -> str:
        order = self.service.place_team_order(buyer, "tea", team_id=team.id)
        if pay:
            self.service.pay_team_member(order.id, buyer)
        return order.id

    def state(self, order_id: str) -> str:
        return self.orders.get(order_id).state

    def refunds(self, order_id: str) -> list[tuple[str, Money]]:
        return [(r.id, r.total) for p in self.service.payments_of(order_id) for r in p.refunds]


class TestATeamThatForms:
    def test_the_payment_that_completes_the_team_lets_every_members_order_ship(self) -> None:
        world = World()
        team = world.lead()
        leader_order = team.members[0].order_id
        bob = world.join(team, BOB)
        assert (world.state(leader_order), world.state(bob)) == ("awaiting_team", "awaiting_team")
        carol = world.join(team, CAROL)
        assert world.service.team(team.id).state == "formed"
        assert {world.state(o) for o in (leader_order, bob, carol)} == {"awaiting_shipment"}
        shipped = world.service.ship(
            carol, Actor.merchant("m-1"), carrier="SF", tracking_number="SF1"
        )
        assert shipped.state == "shipped"
        assert world.inventory.on_hand("tea") == 7

    def test_a_paid_member_cannot_ship_or_cancel_before_the_team_forms(self) -> None:
        world = World()
        team = world.lead()
        order_id = team.members[0].order_id
        with pytest.raises(RuleViolation):
            world.service.ship(order_id, Actor.merchant("m-1"), carrier="SF", tracking_number="1")
        with pytest.raises(RuleViolation):
            world.service.cancel(order_id, ALICE, "changed my mind")
        assert world.state(order_id) == "awaiting_team"
        assert world.refunds(order_id) == []


class TestATeamThatFails:
    def test_expiry_cancels_every_member_and_refunds_each_from_its_own_payment(self) -> None:
        world = World()
        team = world.lead()
        leader_order = team.members[0].order_id
        bob = world.join(team, BOB)
        carol = world.join(team, CAROL, pay=False)
        world.clock.advance(timedelta(hours=25))
        moved = world.service.expire_due()
        assert {(e.order_id, e.trigger) for e in moved} >= {
            (leader_order, "team_failed"),
            (bob, "team_failed"),
        }
        assert {world.state(o) for o in (leader_order, bob, carol)} == {"cancelled"}
        for order_id in (leader_order, bob):
            (payment,) = world.service.payments_of(order_id)
            assert [(r.id, r.total) for r in payment.refunds] == [
                (f"{team.id}:refund:{order_id}", PRICE)
            ]
            money = world.service.money(order_id)
            assert money.lines["1"].refunded == money.lines["1"].paid_in == PRICE
        assert world.refunds(carol) == []
        assert (world.inventory.available("tea"), world.inventory.on_hand("tea")) == (10, 10)
        assert world.gateway.refunded[leader_order] == PRICE

    def test_expiring_again_refunds_and_releases_nothing_more(self) -> None:
        world = World()
        team = world.lead()
        world.join(team, BOB)
        world.clock.advance(timedelta(hours=25))
        world.service.expire_due()
        before = (world.ledger.postings(team.members[0].order_id), world.inventory.on_hand("tea"))
        world.clock.advance(timedelta(hours=1))
        assert world.service.expire_due() == []
        after = (world.ledger.postings(team.members[0].order_id), world.inventory.on_hand("tea"))
        assert after == before

    def test_simulated_fill_forms_the_team_and_gives_back_an_unpaid_joiners_stock(self) -> None:
        world = World()
        team = world.lead(terms=world.terms(size=3, simulated_fill=1))
        bob = world.join(team, BOB)
        carol = world.join(team, CAROL, pay=False)
        world.clock.advance(timedelta(hours=25))
        world.service.expire_due()
        stored = world.service.team(team.id)
        assert (stored.state, stored.simulated_members) == ("formed", 1)
        assert world.state(bob) == "awaiting_shipment"
        assert world.state(carol) == "cancelled"
        assert world.inventory.available("tea") == 8

    def test_a_payment_the_team_refuses_after_the_charge_is_refunded_and_raised(self) -> None:
        world = World()
        team = world.lead()
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        world.during_charge.append(timedelta(hours=25))  # the team expires while bob pays
        with pytest.raises(DeadlinePassed):
            world.service.pay_team_member(bob.id, BOB)
        assert world.state(bob.id) == "cancelled"
        assert world.refunds(bob.id) == [(f"{team.id}:refund:{bob.id}", PRICE)]
        assert world.inventory.available("tea") == 9


class TestUnpaidJoiners:
    def test_a_joiner_who_cancels_gives_the_place_back_to_the_next_buyer(self) -> None:
        world = World()
        team = world.lead(terms=world.terms(size=2))
        bob = world.join(team, BOB, pay=False)
        with pytest.raises(TeamFull):
            world.join(team, CAROL, pay=False)
        world.service.cancel(bob, BOB, "changed my mind")
        assert world.service.team(team.id).held_count == 0
        world.join(team, CAROL)
        assert world.service.team(team.id).state == "formed"

    def test_a_joiner_whose_payment_times_out_gives_the_place_back(self) -> None:
        world = World()
        team = world.lead(terms=world.terms(size=2))
        bob = world.join(team, BOB, pay=False)
        world.clock.advance(timedelta(minutes=31))
        world.service.expire_due()
        assert world.state(bob) == "cancelled"
        assert world.service.team(team.id).places_left == 1
        assert world.inventory.available("tea") == 9

    def test_a_declined_payment_keeps_the_place_held_and_charges_nothing(self) -> None:
        world = World()
        team = world.lead()
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_team_member(bob.id, BOB)
        assert world.service.team(team.id).member(bob.id).status == "held"
        assert world.state(bob.id) == "pending_payment"
        assert bob.id not in world.gateway.charged


class TestRefusedCommandsChangeNothing:
    def _snapshot(self, world: World, team_id: str) -> tuple[object, ...]:
        team = world.teams.get(team_id)
        return (
            [(o.id, o.state, o.version) for o in world.orders.all()],
            world.inventory.available("tea"),
            (team.version, team.members),
            dict(world.gateway.charged),
        )

    @pytest.mark.parametrize(
        ("case", "error"),
        [
            ("own team", AlreadyJoined),
            ("twice", AlreadyJoined),
            ("full", TeamFull),
            ("expired", DeadlinePassed),
            ("unknown team", NotFound),
            ("out of stock", OutOfStock),
            ("not a buyer", InvalidInput),
        ],
    )
    def test_a_refused_join_stores_no_order_and_reserves_nothing(
        self, case: str, error: type[Exception]
    ) -> None:
        world = World(stock=3)
        team = world.lead(terms=world.terms(size=3, when_full=WhenFull.OPEN_NEW_TEAM))
        world.join(team, BOB, pay=False)
        buyer, team_id = {
            "own team": (ALICE, team.id),
            "twice": (BOB, team.id),
            "full": (CAROL, team.id),
            "expired": (CAROL, team.id),
            "unknown team": (CAROL, "team-x"),
            "out of stock": (CAROL, team.id),
            "not a buyer": (Actor.merchant("m-1"), team.id),
        }[case]
        if case == "full":
            world.join(team, DAVE, pay=False)
        if case == "expired":
            world.clock.advance(timedelta(hours=24))
        if case == "out of stock":
            world.service.place_team_order(DAVE, "tea")
        before = self._snapshot(world, team.id)
        with pytest.raises(error):
            world.service.place_team_order(buyer, "tea", team_id=team_id)
        assert self._snapshot(world, team.id) == before

    def test_leading_after_the_campaign_ended_charges_nothing(self) -> None:
        world = World()
        terms = world.terms()
        order = world.service.place_team_order(ALICE, "tea")
        world.clock.advance(timedelta(days=7))
        with pytest.raises(DeadlinePassed):
            world.service.lead_team(order.id, ALICE, terms)
        assert world.gateway.charged == {}
        assert world.state(order.id) == "pending_payment"

    def test_leading_with_an_order_that_is_not_a_team_order_is_refused(self) -> None:
        world = World()
        plain = world.service.buy_now(ALICE, "tea", 1)
        with pytest.raises(InvalidInput):
            world.service.lead_team(plain.id, ALICE, world.terms())
        with pytest.raises(InvalidInput):
            world.service.lead_team(plain.id, ALICE, "terms")  # type: ignore[arg-type]
        assert world.gateway.charged == {}

    def test_a_member_order_cannot_lead_a_second_team(self) -> None:
        world = World()
        team = world.lead()
        with pytest.raises(RuleViolation):
            world.service.lead_team(team.members[0].order_id, ALICE, world.terms())

    def test_paying_a_leaders_order_as_a_member_is_refused_before_charging(self) -> None:
        world = World()
        order = world.service.place_team_order(ALICE, "tea")
        with pytest.raises(NotFound):
            world.service.pay_team_member(order.id, ALICE)
        assert world.gateway.charged == {}

    def test_paying_for_an_expired_team_is_refused_before_charging(self) -> None:
        world = World()
        team = world.lead()
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        world.clock.advance(timedelta(hours=24))
        with pytest.raises(DeadlinePassed):
            world.service.pay_team_member(bob.id, BOB)
        assert bob.id not in world.gateway.charged
        assert world.state(bob.id) == "pending_payment"


class TestPaymentsThatCompleteLate:
    def _pending(self, world: World) -> dict[str, str]:
        (key,) = world.gateway.pending_keys()
        return world.gateway.settle_pending(key)

    def test_a_joiners_payment_confirmed_by_notification_takes_the_paid_place(self) -> None:
        world = World()
        team = world.lead(terms=world.terms(size=2))
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_team_member(bob.id, BOB)
        outcome = world.service.handle_notification(self._pending(world))
        assert outcome.order_state == "awaiting_shipment"
        assert world.service.team(team.id).state == "formed"

    def test_a_leaders_payment_confirmed_after_giving_up_is_refunded(self) -> None:
        world = World()
        order = world.service.place_team_order(ALICE, "tea")
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.lead_team(order.id, ALICE, world.terms())
        world.outcome = GatewayStatus.SUCCEEDED
        outcome = world.service.handle_notification(self._pending(world))
        assert outcome.order_state == "cancelled"
        money = world.service.money(order.id)
        assert money.refunded == money.paid_in == PRICE
        assert world.inventory.available("tea") == 10

    def test_a_joiners_payment_confirmed_after_the_team_expired_is_refunded(self) -> None:
        world = World()
        team = world.lead()
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_team_member(bob.id, BOB)
        world.outcome = GatewayStatus.SUCCEEDED
        world.clock.advance(timedelta(hours=25))
        world.service.expire_due()
        world.service.handle_notification(self._pending(world))
        assert world.state(bob.id) == "cancelled"
        money = world.service.money(bob.id)
        assert money.refunded == money.paid_in


class TestPlainPayOnTeamOrders:
    def test_pay_on_a_joiners_order_takes_the_team_place(self) -> None:
        world = World()
        team = world.lead(terms=world.terms(size=2))
        bob = world.service.place_team_order(BOB, "tea", team_id=team.id)
        assert world.service.pay(bob.id, BOB).state == "awaiting_shipment"
        assert world.service.team(team.id).state == "formed"

    def test_pay_on_a_leaders_order_or_authorizing_only_is_refused_before_charging(self) -> None:
        world = World()
        leader = world.service.place_team_order(ALICE, "tea")
        with pytest.raises(InvalidInput):
            world.service.pay(leader.id, ALICE)
        with pytest.raises(InvalidInput):
            world.service.pay(leader.id, ALICE, capture=False)
        assert world.gateway.charged == {}
        assert world.state(leader.id) == "pending_payment"

    def test_pay_on_an_ordinary_order_is_unchanged(self) -> None:
        world = World()
        plain = world.service.buy_now(ALICE, "tea", 1)
        assert world.service.pay(plain.id, ALICE).state == "awaiting_shipment"


class TestACampaignThatEndsWhileTheLeaderPays:
    def test_the_leaders_payment_is_refunded_and_no_team_opens(self) -> None:
        world = World()
        terms = TeamTerms("pin-1", size=2, ends_at=world.clock.now() + timedelta(hours=1))
        order = world.service.place_team_order(ALICE, "tea")
        world.during_charge.append(timedelta(hours=2))
        with pytest.raises(DeadlinePassed):
            world.service.lead_team(order.id, ALICE, terms)
        assert world.state(order.id) == "cancelled"
        assert world.teams.team_of(order.id) is None
        money = world.service.money(order.id)
        assert money.refunded == money.paid_in == PRICE
        assert world.inventory.available("tea") == 10


class TestAModeTheHostDidNotOffer:
    def test_team_use_cases_say_the_service_was_built_without_teams(self) -> None:
        world = World()
        world.service.teams = None
        with pytest.raises(DefinitionError, match="teams"):
            world.service.place_team_order(ALICE, "tea", team_id="team-1")
        assert world.inventory.available("tea") == 10
        assert world.orders.all() == []

    def test_other_orders_still_pay_cancel_and_expire_without_a_team_repository(self) -> None:
        world = World()
        world.service.teams = None
        order = world.service.buy_now(ALICE, "tea", 2)
        world.service.cancel(order.id, ALICE, "changed my mind")
        assert world.state(order.id) == "cancelled"
        assert world.inventory.available("tea") == 10
        unpaid = world.service.buy_now(BOB, "tea", 1)
        world.clock.advance(timedelta(days=2))
        assert [e.order_id for e in world.service.expire_due()] == [unpaid.id]
