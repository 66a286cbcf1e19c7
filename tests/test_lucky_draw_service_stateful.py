"""Many buyers racing for lucky-draw shares through CampaignService, ledger and stock checked.

A merchant opens rounds; buyers place share orders and pay them (the provider may decline,
or leave a payment pending and answer later, and deliver its notification twice), cancel
unpaid orders; public numbers come out late or never; winners confirm their address or not;
time passes and ``expire_due`` draws, forfeits and settles unsold rounds. After every step:

- a round never holds and sells more than ``S`` shares; its sold count is the paid purchases'
  shares, numbered consecutively from the first number without a gap or an overlap; while it
  sells, the inventory's share stock mirrors it exactly;
- no numbers without money: every paid purchase is its order's own completed payment;
- once drawn, the round verifies from its stored inputs, and exactly one paid order won: the
  one holding the winning number; every other paid order lost;
- every posting balances, all accounts sum to zero, every order's money balances, and no
  order is refunded more than it paid in; no order is ever refunded twice by its round;
- the prize's stock is reserved exactly by the rounds still running and deducted exactly for
  the prizes given (their winners' addresses confirmed);
- a refused command changes nothing.

At the end the provider answers everything, every notification is delivered, and the clock
runs out every round: then every unsold round has refunded each paid share exactly once,
every cancelled order has all its money back, and the provider's books agree with the ledger.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ecommerce_core import Actor, EcommerceCoreError, Money
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryDrawRoundRepository,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    PublishedNumbers,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.lucky_draw import (
    DrawRound,
    DrawTerms,
    ForfeitPolicy,
    PublicNumber,
    ShareStatus,
)
from ecommerce_core.payments import GatewayPayment
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import CampaignService
from ecommerce_core.services.lucky_draws import share_sku
from ecommerce_core.testing.stateful import RefusalsChangeNothing

CNY = "CNY"
PHONES = 4
MAX_ROUNDS = 3
SHARE = Money.of("1.00", CNY)
BUYERS = [Actor.buyer(name) for name in ("ann", "ben", "cat", "dan", "eve")]
MERCHANT = Actor.merchant("m-1")
OUTCOMES = st.sampled_from(
    [GatewayStatus.SUCCEEDED] * 3 + [GatewayStatus.PENDING] * 2 + [GatewayStatus.DECLINED]
)
RUNNING = ("selling", "sold_out", "awaiting_address")
WINNER_STATES = ("awaiting_address", "awaiting_shipment", "forfeited", "cancelled")


class DrawRaces(RefusalsChangeNothing, RuleBasedStateMachine):
    """Up to three rounds of a random size, raced for by five buyers."""

    @initialize(
        shares=st.integers(2, 6),
        on_forfeit=st.sampled_from(list(ForfeitPolicy)),
        fallback=st.sampled_from([None, timedelta(hours=3)]),
    )
    def start(self, shares: int, on_forfeit: ForfeitPolicy, fallback: timedelta | None) -> None:
        self.outcome = GatewayStatus.SUCCEEDED
        self.clock = ManualClock()
        self.gateway = ScriptedPaymentGateway(lambda _: self.outcome)
        self.ledger = InMemoryLedger()
        self.inventory = InMemoryInventory({"phone": PHONES})
        self.repo = InMemoryOrderRepository()
        self.rounds = InMemoryDrawRoundRepository()
        self.lottery = PublishedNumbers()
        self.service = CampaignService(
            orders=self.repo,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("phone", "m-1", "phone", Money.of("3999", CNY))]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=RecordingPublisher(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            rounds=self.rounds,
            randomness=self.lottery,
        )
        self.shares, self.on_forfeit, self.fallback = shares, on_forfeit, fallback
        self.round_ids: list[str] = []
        self.order_ids: list[str] = []
        self.undelivered: list[dict[str, str]] = []
        self.delivered: list[dict[str, str]] = []
        self.published = 0
        self.a_merchant_opens_a_round()

    # ------------------------------------------------------------------ helpers

    def snapshot(self) -> tuple[object, ...]:
        return (
            [(o.id, o.state, o.version, o.payment) for o in self.repo.all()],
            [(r, self.rounds.get(r).version, self.rounds.get(r).purchases) for r in self.round_ids],
            self.inventory.available("phone"),
            self.inventory.on_hand("phone"),
            [self.inventory.available(share_sku(r)) for r in self.round_ids],
            len(self.ledger.all()),
        )

    def pending_keys(self) -> list[str]:
        return self.gateway.pending_keys()

    def all_rounds(self) -> list[DrawRound]:
        return [self.rounds.get(r) for r in self.round_ids]

    def round_refunds(self, draw_round: DrawRound, order_id: str) -> int:
        key = f"{draw_round.id}:refund:{order_id}"
        return sum(1 for p in self.service.payments_of(order_id) for r in p.refunds if r.id == key)

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: len(self.round_ids) < MAX_ROUNDS)
    @rule()
    def a_merchant_opens_a_round(self) -> None:
        terms = DrawTerms(
            share_count=self.shares,
            share_price=SHARE,
            sell_by=self.clock.now() + timedelta(hours=4),
            address_window=timedelta(hours=6),
            b_fallback_after=self.fallback,
            on_forfeit=self.on_forfeit,
        )
        self.round_ids.append(self.service.open_round(MERCHANT, "phone", terms).id)

    @rule(
        buyer=st.sampled_from(BUYERS),
        quantity=st.integers(1, 3),
        pay=st.sampled_from([True, True, True, False]),
        outcome=OUTCOMES,
        data=st.data(),
    )
    def a_buyer_buys_shares(
        self,
        buyer: Actor,
        quantity: int,
        pay: bool,
        outcome: GatewayStatus,
        data: st.DataObject,
    ) -> None:
        selling = [r.id for r in self.all_rounds() if r.state == "selling"]
        round_id = data.draw(st.sampled_from(selling or self.round_ids), label="round")
        placed: list[str] = []

        def place() -> None:
            placed.append(self.service.place_share_order(buyer, round_id, quantity).id)

        if not self.attempt_unchanged(place):
            return
        self.order_ids.extend(placed)
        if pay:
            self.outcome = outcome
            # declined, pending, refused before (nothing charged) or after (refunded)
            with contextlib.suppress(EcommerceCoreError):
                self.service.pay_shares(placed[0], buyer)

    @precondition(lambda self: any(o.state == "pending_payment" for o in self.repo.all()))
    @rule(data=st.data(), outcome=OUTCOMES)
    def a_buyer_pays(self, data: st.DataObject, outcome: GatewayStatus) -> None:
        self.outcome = outcome
        unpaid = [o.id for o in self.repo.all() if o.state == "pending_payment"]
        order_id = data.draw(st.sampled_from(unpaid), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        # declined, pending, refused before (nothing charged) or after (refunded)
        with contextlib.suppress(EcommerceCoreError):
            self.service.pay_shares(order_id, buyer)

    @precondition(lambda self: bool(self.order_ids))
    @rule(data=st.data())
    def a_buyer_cancels(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.order_ids), label="order")
        buyer = Actor.buyer(self.repo.get(order_id).buyer_id)
        self.attempt_unchanged(lambda: self.service.cancel(order_id, buyer, "changed my mind"))

    @precondition(lambda self: any(r.state == "awaiting_address" for r in self.all_rounds()))
    @rule(data=st.data())
    def a_winner_gives_an_address(self, data: st.DataObject) -> None:
        drawn = [r for r in self.all_rounds() if r.state == "awaiting_address"]
        draw_round = data.draw(st.sampled_from(drawn), label="round")
        assert draw_round.record is not None
        order_id = draw_round.record.winner_order_id
        buyer = Actor.buyer(draw_round.record.winner_id)
        self.attempt_unchanged(
            lambda: self.service.confirm_prize_address(order_id, buyer, address="1 Tea Road")
        )

    @precondition(lambda self: any(r.state == "sold_out" for r in self.all_rounds()))
    @rule(data=st.data())
    def the_platform_asks_for_a_draw(self, data: st.DataObject) -> None:
        sold_out = [r.id for r in self.all_rounds() if r.state == "sold_out"]
        round_id = data.draw(st.sampled_from(sold_out), label="round")
        self.attempt_unchanged(lambda: self.service.draw(round_id, Actor.platform()))

    @rule(value=st.integers(0, 10**6))
    def a_public_number_comes_out(self, value: int) -> None:
        self.published += 1
        self.lottery.publish(PublicNumber(value, f"lottery:{self.published}", self.clock.now()))

    @rule(minutes=st.integers(1, 60))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        self.service.expire_due()

    @rule(minutes=st.integers(1, 60))
    def time_passes_before_the_scheduler_runs(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @precondition(lambda self: bool(self.pending_keys()))
    @rule(data=st.data(), succeeded=st.booleans())
    def the_provider_finishes_a_pending_request(self, data: st.DataObject, succeeded: bool) -> None:
        key = data.draw(st.sampled_from(self.pending_keys()), label="pending")
        self.undelivered.append(self.gateway.settle_pending(key, succeeded=succeeded))

    @precondition(lambda self: bool(self.undelivered))
    @rule(data=st.data())
    def a_notification_arrives(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.undelivered) - 1), label="notification")
        payload = self.undelivered.pop(index)
        self.service.handle_notification(payload)
        self.delivered.append(payload)

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def a_notification_arrives_again(self, data: st.DataObject) -> None:
        payload = data.draw(st.sampled_from(self.delivered), label="repeat")
        before = self.snapshot()
        assert self.service.handle_notification(payload).outcome == "repeat"
        assert self.snapshot() == before

    # ------------------------------------------------------------------ invariants

    @invariant()
    def a_round_never_sells_more_than_s_and_numbers_its_shares_without_gaps(self) -> None:
        for draw_round in self.all_rounds():
            size = draw_round.terms.share_count
            assert draw_round.sold + draw_round.held <= size, draw_round
            paid = draw_round.paid_purchases()
            assert draw_round.sold == sum(p.quantity for p in paid)
            numbers = [n for p in paid for n in p.numbers]
            first = draw_round.terms.first_number
            assert numbers == list(range(first, first + draw_round.sold))
            if draw_round.state == "selling":
                assert draw_round.sold < size
            elif draw_round.state != "unsold":
                assert draw_round.sold == size
            if draw_round.state == "selling":
                assert self.inventory.available(share_sku(draw_round.id)) == draw_round.remaining

    @invariant()
    def no_numbers_without_money(self) -> None:
        for draw_round in self.all_rounds():
            for purchase in draw_round.purchases:
                order = self.repo.get(purchase.order_id)
                if purchase.status is ShareStatus.PAID:
                    assert order.payment is not None, order
                    assert order.payment.reference == purchase.payment_ref
                    assert purchase.amount == order.total
                    assert self.service.money(order.id).paid_in >= order.total
                elif purchase.status is ShareStatus.HELD and draw_round.state == "selling":
                    assert order.state == "pending_payment", (purchase, order.state)

    @invariant()
    def a_drawn_round_has_exactly_one_winner_recomputable_from_its_inputs(self) -> None:
        for draw_round in self.all_rounds():
            record = draw_round.record
            states = {p.order_id: self.repo.get(p.order_id).state for p in draw_round.purchases}
            paid = [p.order_id for p in draw_round.paid_purchases()]
            if record is None:
                assert draw_round.state in ("selling", "sold_out", "unsold")
                if draw_round.state == "sold_out":
                    assert {states[o] for o in paid} == {"awaiting_draw"}
                continue
            assert draw_round.verify()
            assert record.recompute() == record.winning_number
            assert draw_round.holder(record.winning_number).order_id == record.winner_order_id
            winners = [o for o in paid if states[o] != "lost"]
            assert winners == [record.winner_order_id], states
            assert states[record.winner_order_id] in WINNER_STATES

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
    def no_order_is_refunded_twice_by_its_round(self) -> None:
        for draw_round in self.all_rounds():
            for purchase in draw_round.purchases:
                assert self.round_refunds(draw_round, purchase.order_id) <= 1

    @invariant()
    def the_prize_stock_is_held_by_running_rounds_and_deducted_for_prizes_given(self) -> None:
        running = given = 0
        for draw_round in self.all_rounds():
            if draw_round.state in RUNNING:
                running += 1
            elif draw_round.state == "fulfilled":
                assert draw_round.record is not None
                given += self.repo.get(draw_round.record.winner_order_id).state != "cancelled"
        assert self.inventory.on_hand("phone") == PHONES - given
        assert self.inventory.available("phone") == PHONES - given - running

    def teardown(self) -> None:
        if not hasattr(self, "service"):
            return
        self.outcome = GatewayStatus.SUCCEEDED
        while self.pending_keys() or self.undelivered:
            for key in self.pending_keys():
                self.undelivered.append(self.gateway.settle_pending(key))
            while self.undelivered:
                self.service.handle_notification(self.undelivered.pop())
        for _ in range(3):  # sell-by, then the draw (fallback or a number), then the address due
            self.clock.advance(timedelta(days=2))
            self.a_public_number_comes_out(7)
            self.service.expire_due()
        for order in self.repo.all():
            self.service.reconcile(order.id, retry_failed=True)
        self.the_prize_stock_is_held_by_running_rounds_and_deducted_for_prizes_given()
        self.a_drawn_round_has_exactly_one_winner_recomputable_from_its_inputs()
        for draw_round in self.all_rounds():
            assert draw_round.is_final, draw_round
            if draw_round.state == "unsold":
                for purchase in draw_round.purchases:
                    refunds = self.round_refunds(draw_round, purchase.order_id)
                    if purchase.status is ShareStatus.PAID:
                        assert refunds == 1
                    else:  # a payment that landed after its shares were released: refunded once
                        assert refunds <= 1
        for order in self.repo.all():
            money = self.service.money(order.id)
            if order.state == "cancelled":
                assert money.paid_in == money.refunded, f"{order.id} kept money after a cancel"
            through_gateway = [
                p for p in self.service.payments_of(order.id) if isinstance(p, GatewayPayment)
            ]
            captured = sum((p.money().paid_in for p in through_gateway), Money.zero(CNY))
            refunded = sum((p.money().refunded for p in through_gateway), Money.zero(CNY))
            assert self.gateway.charged.get(order.id, Money.zero(CNY)) == captured, order.id
            assert self.gateway.refunded.get(order.id, Money.zero(CNY)) == refunded, order.id


DrawRaces.TestCase.settings = settings(max_examples=25, stateful_step_count=50, deadline=None)
TestDrawRaces = DrawRaces.TestCase
