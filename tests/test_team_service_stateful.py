"""Many buyers racing for teams through CampaignService, with the ledger and stock checked.

Leaders open teams by paying; buyers join, pay (the provider may decline or leave a payment
pending and answer later), cancel unpaid orders, try to ship; time passes and due teams and
orders expire. After every step:

- a team never holds more than ``N`` places (paid, held and simulated), and is formed exactly
  when its paid and simulated members reach ``N``;
- no order ever ships, or may ship, unless its team formed; a failed team's orders are all
  cancelled; an order waits in ``awaiting_team`` only while its team is forming;
- every posting balances, all accounts sum to zero, every order's money balances, and no
  order is refunded more than it paid in;
- stock is held exactly by the orders still alive: every abandoned order gave its unit back
  once (a second release would show as more available than this);
- while a team forms, a held place belongs to a live, unpaid order; a paid place to the
  order's own payment;
- a refused command changes nothing.

At the end the provider answers everything, every notification is delivered and every team
runs out: then each cancelled order has all its money back, and the provider's books agree
with the ledger.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
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
from ecommerce_core.campaigns.team import TeamTerms, WhenFull
from ecommerce_core.payments import GatewayPayment
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import CampaignService
from ecommerce_core.testing.stateful import RefusalsChangeNothing

CNY = "CNY"
STOCK = 60
BUYERS = [Actor.buyer(name) for name in ("ann", "ben", "cat", "dan", "eve")]
MERCHANT = Actor.merchant("m-1")
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 4 + [GatewayStatus.PENDING, GatewayStatus.DECLINED]
)


class TeamRaces(RefusalsChangeNothing, RuleBasedStateMachine):
    """Teams of a random size, raced for by five buyers."""

    @initialize(
        size=st.integers(2, 4),
        simulated=st.integers(0, 1),
        when_full=st.sampled_from(list(WhenFull)),
    )
    def start(self, size: int, simulated: int, when_full: WhenFull) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.ledger = InMemoryLedger()
        self.inventory = InMemoryInventory({"tea": STOCK})
        self.repo = InMemoryOrderRepository()
        self.teams = InMemoryTeamRepository()
        self.service = CampaignService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("tea", "m-1", "tea", Money.of("9.90", CNY))]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=RecordingPublisher(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            teams=self.teams,
        )
        self.terms = TeamTerms(
            "pin-1",
            size=size,
            ends_at=self.clock.now() + timedelta(hours=12),
            validity=timedelta(hours=2),
            when_full=when_full,
            simulated_fill=simulated if simulated < size - 1 else 0,
        )
        self.order_ids: list[str] = []
        self.team_ids: list[str] = []
        self.undelivered: list[dict[str, str]] = []
        self.shipped: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version, o.payment) for o in self.repo.all()],
            [(t, self.teams.get(t).version, self.teams.get(t).members) for t in self.team_ids],
            self.inventory.available("tea"),
            self.inventory.on_hand("tea"),
            len(self.ledger.all()),
        )

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def team_of(self, order_id: str) -> str | None:
        return self.teams.team_of(order_id)

    # ------------------------------------------------------------------ rules

    @rule(outcome=OUTCOMES)
    def the_provider_changes_its_mind(self, outcome: GatewayStatus) -> None:
        self.outcome = outcome

    @rule(buyer=st.sampled_from(BUYERS))
    def a_buyer_leads_a_team(self, buyer: Actor) -> None:
        order = self.service.place_team_order(buyer, "tea")
        self.order_ids.append(order.id)
        try:
            team = self.service.lead_team(order.id, buyer, self.terms)
        except EcommerceCoreError:
            assert self.team_of(order.id) is None
            return
        self.team_ids.append(team.id)

    @rule(buyer=st.sampled_from(BUYERS), data=st.data())
    def a_buyer_joins_a_team(self, buyer: Actor, data: st.DataObject) -> None:
        if not self.team_ids:
            return
        forming = [t for t in self.team_ids if self.teams.get(t).state == "forming"]
        team_id = data.draw(st.sampled_from(forming or self.team_ids), label="team")
        before = len(self.order_ids)
        orders: list[str] = []

        def join() -> None:
            orders.append(self.service.place_team_order(buyer, "tea", team_id=team_id).id)

        if self.attempt_unchanged(join):
            self.order_ids.extend(orders)
        assert len(self.order_ids) in (before, before + 1)

    @rule(data=st.data())
    def a_member_pays(self, data: st.DataObject) -> None:
        if not self.order_ids:
            return
        unpaid = [o.id for o in self.repo.all() if o.state == "pending_payment"]
        order_id = data.draw(st.sampled_from(unpaid or self.order_ids), label="order")
        order = self.repo.get(order_id)
        buyer = Actor.buyer(order.buyer_id)
        # declined, pending, refused before (nothing charged) or after (refunded)
        with contextlib.suppress(EcommerceCoreError):
            self.service.pay_team_member(order_id, buyer)

    @rule(data=st.data())
    def a_buyer_cancels(self, data: st.DataObject) -> None:
        if not self.order_ids:
            return
        order_id = data.draw(st.sampled_from(self.order_ids), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        self.attempt_unchanged(lambda: self.service.cancel(order_id, buyer, "changed my mind"))

    @rule(data=st.data())
    def the_merchant_tries_to_ship(self, data: st.DataObject) -> None:
        if not self.order_ids:
            return
        order_id = data.draw(st.sampled_from(self.order_ids), label="order")
        if self.attempt_unchanged(
            lambda: self.service.ship(order_id, MERCHANT, carrier="SF", tracking_number="1")
        ):
            self.shipped.add(order_id)

    @rule(minutes=st.integers(1, 90))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.service.expire_due()

    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_request(self, data: st.DataObject, succeeded: bool) -> None:
        keys = self.pending_keys()
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
    def a_team_never_holds_more_than_n_and_forms_exactly_at_n(self) -> None:
        for team_id in self.team_ids:
            team = self.teams.get(team_id)
            taken = team.paid_count + team.held_count + team.simulated_members
            assert taken <= team.size, team
            assert (team.state == "formed") == (
                team.paid_count + team.simulated_members == team.size
            ), team

    @invariant()
    def no_order_ships_or_may_ship_unless_its_team_formed(self) -> None:
        for order in self.repo.all():
            team_id = self.team_of(order.id)
            state = None if team_id is None else self.teams.get(team_id).state
            if order.state in ("awaiting_shipment", "shipped") or order.id in self.shipped:
                assert state == "formed", (order.id, order.state, state)
            if order.state == "awaiting_team":
                assert state == "forming", (order.id, state)
            if state == "failed":
                assert order.state == "cancelled", (order.id, order.state)

    @invariant()
    def a_held_place_belongs_to_a_live_unpaid_order(self) -> None:
        for team_id in self.team_ids:
            team = self.teams.get(team_id)
            for member in team.members:
                order = self.repo.get(member.order_id)
                if member.status == "held" and team.state == "forming":
                    assert order.state == "pending_payment", (member, order.state)
                if member.status == "paid" and team.state != "failed":
                    assert order.payment is not None
                    assert order.payment.reference == member.payment_ref

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
            for line in money.lines.values():
                assert not line.refundable.is_negative

    @invariant()
    def stock_is_held_exactly_by_the_orders_still_alive(self) -> None:
        orders = self.repo.all()
        alive = [o for o in orders if o.state != "cancelled"]
        committed = [o for o in alive if o.payment is not None]
        assert self.inventory.available("tea") == STOCK - len(alive)
        assert self.inventory.on_hand("tea") == STOCK - len(committed)

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        self.clock.advance(timedelta(days=2))
        self.service.expire_due()
        for order in self.repo.all():
            self.service.reconcile(order.id, retry_failed=True)
        self.stock_is_held_exactly_by_the_orders_still_alive()
        self.no_order_ships_or_may_ship_unless_its_team_formed()
        for order in self.repo.all():
            money = self.service.money(order.id)
            assert order.state in ("cancelled", "awaiting_shipment", "shipped"), order
            if order.state == "cancelled":
                assert money.paid_in == money.refunded, f"{order.id} kept money after a cancel"
            through_gateway = [
                p for p in self.service.payments_of(order.id) if isinstance(p, GatewayPayment)
            ]
            captured = sum((p.money().paid_in for p in through_gateway), Money.zero(CNY))
            refunded = sum((p.money().refunded for p in through_gateway), Money.zero(CNY))
            assert self.gateway.charged.get(order.id, Money.zero(CNY)) == captured, order.id
            assert self.gateway.refunded.get(order.id, Money.zero(CNY)) == refunded, order.id


TeamRaces.TestCase.settings = settings(max_examples=20, stateful_step_count=40, deadline=None)
TestTeamRaces = TeamRaces.TestCase
