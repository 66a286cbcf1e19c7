"""Lucky draws through CampaignService: shares, payments, draw, refunds and stock, path by path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import Actor, Money, OrderPolicy
from ecommerce_core.adapters.memory import (
    GatewayRequest,
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
from ecommerce_core.campaigns.lucky_draw import DrawRound, DrawTerms, ForfeitPolicy, PublicNumber
from ecommerce_core.errors import (
    Conflict,
    DeadlinePassed,
    DefinitionError,
    DrawInputsMissing,
    Forbidden,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.services import CampaignService
from ecommerce_core.services.lucky_draws import share_sku

CNY = "CNY"
SHARE = Money.of("1.00", CNY)
ALICE, BOB, CAROL = (Actor.buyer(n) for n in ("alice", "bob", "carol"))
MERCHANT = Actor.merchant("m-1")


class World:
    """A campaign service over in-memory adapters, with 2 phones to give away."""

    def __init__(self, *, phones: int = 2, randomness: bool = True, rounds: bool = True) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.during_charge: list[timedelta] = []
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"phone": phones})
        self.ledger = InMemoryLedger()
        self.rounds = InMemoryDrawRoundRepository()
        self.orders = InMemoryOrderRepository()
        self.lottery = PublishedNumbers()
        self.publisher = RecordingPublisher()
        self.service = CampaignService(
            orders=self.orders,
            inventory=self.inventory,
            catalog=InMemoryCatalog([Product("phone", "m-1", "phone", Money.of("3999", CNY))]),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            policy=OrderPolicy(),
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            rounds=self.rounds if rounds else None,
            randomness=self.lottery if randomness else None,
        )

    def _decide(self, _request: GatewayRequest) -> GatewayStatus:
        if self.during_charge:
            self.clock.advance(self.during_charge.pop())
        return self.outcome

    def terms(self, shares: int = 5, **kwargs: object) -> DrawTerms:
        return DrawTerms(
            share_count=shares,
            share_price=SHARE,
            sell_by=self.clock.now() + timedelta(hours=6),
            **kwargs,  # type: ignore[arg-type]
        )

    def open(self, shares: int = 5, **kwargs: object) -> DrawRound:
        return self.service.open_round(MERCHANT, "phone", self.terms(shares, **kwargs))

    def buy(self, draw_round: DrawRound, buyer: Actor, k: int, *, pay: bool = True) -> str:
        order = self.service.place_share_order(buyer, draw_round.id, k)
        if pay:
            self.service.pay_shares(order.id, buyer)
        return order.id

    def publish_number(self, value: int = 40113) -> PublicNumber:
        number = PublicNumber(value, f"lottery:{value}", self.clock.now())
        self.lottery.publish(number)
        return number

    def state(self, order_id: str) -> str:
        return self.orders.get(order_id).state

    def refunds(self, order_id: str) -> list[tuple[str, Money]]:
        return [(r.id, r.total) for p in self.service.payments_of(order_id) for r in p.refunds]

    def snapshot(self, round_id: str) -> tuple[object, ...]:
        stored = self.rounds.get(round_id)
        return (
            stored.version,
            stored.purchases,
            stored.state,
            [(o.id, o.state, o.version) for o in self.orders.all()],
            self.inventory.available("phone"),
            self.inventory.available(share_sku(round_id)),
            len(self.ledger.all()),
        )


def sold_out(world: World, shares: int = 5, **kwargs: object) -> tuple[DrawRound, list[str]]:
    """A round sold out by alice (2 shares), bob (2) and carol (the rest)."""
    draw_round = world.open(shares, **kwargs)
    orders = []
    for buyer, k in ((ALICE, 2), (BOB, 2), (CAROL, shares - 4)):
        orders.append(world.buy(draw_round, buyer, k))
        world.clock.advance(timedelta(seconds=7))
    return world.service.draw_round(draw_round.id), orders


class TestOpeningARound:
    def test_opening_reserves_one_prize_and_stocks_the_shares(self) -> None:
        world = World()
        draw_round = world.open(shares=5)
        assert draw_round.state == "selling"
        assert world.rounds.get(draw_round.id).merchant_id == "m-1"
        assert (world.inventory.available("phone"), world.inventory.reserved("phone")) == (1, 1)
        assert world.inventory.available(share_sku(draw_round.id)) == 5

    def test_another_merchant_cannot_open_a_round_for_the_prize(self) -> None:
        world = World()
        with pytest.raises(Forbidden):
            world.service.open_round(Actor.merchant("m-2"), "phone", world.terms())
        assert world.inventory.available("phone") == 2

    def test_a_prize_out_of_stock_opens_nothing(self) -> None:
        world = World(phones=1)
        world.open()
        with pytest.raises(OutOfStock):
            world.open()
        assert world.rounds.due(world.clock.now() + timedelta(days=1)) == ["round-1"]

    def test_shares_priced_in_another_currency_are_refused(self) -> None:
        world = World()
        terms = DrawTerms(
            share_count=5,
            share_price=Money.of("1.00", "USD"),
            sell_by=world.clock.now() + timedelta(hours=1),
        )
        with pytest.raises(InvalidInput):
            world.service.open_round(MERCHANT, "phone", terms)
        assert world.inventory.available("phone") == 2

    def test_without_rounds_or_randomness_lucky_draws_are_not_offered(self) -> None:
        for world in (World(rounds=False), World(randomness=False)):
            with pytest.raises(DefinitionError):
                world.open()
            assert world.inventory.available("phone") == 2


class TestBuyingShares:
    def test_a_completed_payment_gets_consecutive_numbers_in_payment_order(self) -> None:
        world = World()
        draw_round = world.open(shares=5)
        bob_order = world.service.place_share_order(BOB, draw_round.id, 2)
        alice = world.buy(draw_round, ALICE, 3)
        world.service.pay_shares(bob_order.id, BOB)
        stored = world.rounds.get(draw_round.id)
        assert list(stored.purchase(alice).numbers) == [10000001, 10000002, 10000003]
        assert list(stored.purchase(bob_order.id).numbers) == [10000004, 10000005]
        assert world.service.money(alice).paid_in == SHARE * 3

    def test_buying_more_shares_than_remain_is_refused_and_changes_nothing(self) -> None:
        world = World()
        draw_round = world.open(shares=5)
        world.buy(draw_round, ALICE, 3, pay=False)
        before = world.snapshot(draw_round.id)
        with pytest.raises(OutOfStock) as refused:
            world.service.place_share_order(BOB, draw_round.id, 3)
        assert refused.value.available == 2
        assert world.snapshot(draw_round.id) == before

    def test_a_round_past_its_sell_by_or_sold_out_refuses_new_orders(self) -> None:
        world = World()
        draw_round = world.open(shares=2)
        world.buy(draw_round, ALICE, 2)
        before = world.snapshot(draw_round.id)
        with pytest.raises(TransitionNotAllowed):
            world.service.place_share_order(BOB, draw_round.id, 1)
        assert world.snapshot(draw_round.id) == before
        other = world.open(shares=2)
        world.clock.advance(timedelta(hours=7))
        before = world.snapshot(other.id)
        with pytest.raises(DeadlinePassed):
            world.service.place_share_order(BOB, other.id, 1)
        assert world.snapshot(other.id) == before

    def test_only_a_buyer_places_a_share_order_and_only_for_a_known_round(self) -> None:
        world = World()
        draw_round = world.open()
        before = world.snapshot(draw_round.id)
        with pytest.raises(InvalidInput):
            world.service.place_share_order(MERCHANT, draw_round.id, 1)
        with pytest.raises(NotFound):
            world.service.place_share_order(ALICE, "round-404", 1)
        assert world.snapshot(draw_round.id) == before

    def test_a_share_order_cannot_be_authorized_only(self) -> None:
        world = World()
        order_id = world.buy(world.open(), ALICE, 1, pay=False)
        with pytest.raises(InvalidInput):
            world.service.pay(order_id, ALICE, capture=False)
        assert world.state(order_id) == "pending_payment"

    def test_paying_through_pay_gives_numbers_like_pay_shares(self) -> None:
        world = World()
        draw_round = world.open()
        order_id = world.buy(draw_round, ALICE, 2, pay=False)
        assert world.service.pay(order_id, ALICE).state == "awaiting_draw"
        assert world.rounds.get(draw_round.id).purchase(order_id).first == 10000001


class TestPaymentsThatDoNotComplete:
    def test_a_declined_payment_gets_no_numbers_and_the_shares_stay_held(self) -> None:
        world = World()
        draw_round = world.open(shares=3)
        order_id = world.buy(draw_round, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_shares(order_id, ALICE)
        stored = world.rounds.get(draw_round.id)
        assert (stored.held, stored.sold, list(stored.purchase(order_id).numbers)) == (2, 0, [])
        world.outcome = GatewayStatus.SUCCEEDED
        world.service.pay_shares(order_id, ALICE)
        assert world.rounds.get(draw_round.id).sold == 2

    def test_a_pending_payment_gets_numbers_when_its_notification_arrives_once(self) -> None:
        world = World()
        draw_round = world.open(shares=3)
        order_id = world.buy(draw_round, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_shares(order_id, ALICE)
        assert world.rounds.get(draw_round.id).sold == 0
        (key,) = world.gateway.pending_keys()
        payload = world.gateway.settle_pending(key)
        world.service.handle_notification(payload)
        first = world.rounds.get(draw_round.id)
        world.service.handle_notification(payload)
        again = world.rounds.get(draw_round.id)
        assert (first.sold, list(first.purchase(order_id).numbers)) == (2, [10000001, 10000002])
        assert again.version == first.version
        assert world.state(order_id) == "awaiting_draw"

    def test_an_unpaid_order_that_times_out_or_is_cancelled_gives_its_shares_back(self) -> None:
        world = World()
        draw_round = world.open(shares=3)
        late = world.buy(draw_round, ALICE, 2, pay=False)
        cancelled = world.buy(draw_round, BOB, 1, pay=False)
        world.service.cancel(cancelled, BOB, "changed my mind")
        assert world.rounds.get(draw_round.id).remaining == 1
        world.clock.advance(timedelta(minutes=31))
        world.service.expire_due()
        stored = world.rounds.get(draw_round.id)
        assert (world.state(late), stored.remaining, stored.held) == ("cancelled", 3, 0)
        assert world.inventory.available(share_sku(draw_round.id)) == 3

    def test_a_payment_that_completes_after_the_sell_by_is_refunded_from_itself(self) -> None:
        world = World()
        draw_round = world.open(shares=3)
        order_id = world.buy(draw_round, ALICE, 2, pay=False)
        world.during_charge.append(timedelta(hours=7))  # the provider answers after the sell-by
        with pytest.raises(DeadlinePassed):
            world.service.pay_shares(order_id, ALICE)
        stored = world.rounds.get(draw_round.id)
        assert (stored.sold, stored.held, world.state(order_id)) == (0, 0, "cancelled")
        money = world.service.money(order_id)
        assert (money.paid_in, money.refunded) == (SHARE * 2, SHARE * 2)
        assert len(world.refunds(order_id)) == 1
        world.service.expire_due()
        assert len(world.refunds(order_id)) == 1

    def test_a_notification_after_the_round_went_unsold_refunds_and_gives_no_numbers(
        self,
    ) -> None:
        world = World()
        draw_round = world.open(shares=3)
        order_id = world.buy(draw_round, ALICE, 2, pay=False)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay_shares(order_id, ALICE)
        world.clock.advance(timedelta(hours=7))
        world.service.expire_due()
        assert world.rounds.get(draw_round.id).state == "unsold"
        world.outcome = GatewayStatus.SUCCEEDED
        (key,) = [k for k in world.gateway.pending_keys() if k.endswith(":sale")]
        world.service.handle_notification(world.gateway.settle_pending(key))
        assert list(world.rounds.get(draw_round.id).purchase(order_id).numbers) == []
        money = world.service.money(order_id)
        assert (world.state(order_id), money.paid_in, money.refunded) == (
            "cancelled",
            SHARE * 2,
            SHARE * 2,
        )


class TestTheDraw:
    def test_a_round_sold_out_with_its_number_out_is_drawn_at_once_and_verifies(self) -> None:
        world = World()
        draw_round = world.open(shares=5)
        world.buy(draw_round, ALICE, 2)
        world.clock.advance(timedelta(seconds=3))
        world.publish_number()  # published before the sell-out: it was known in advance
        world.buy(draw_round, BOB, 2)
        world.clock.advance(timedelta(seconds=3))
        carol = world.buy(draw_round, CAROL, 1)
        assert world.rounds.get(draw_round.id).state == "sold_out"
        world.clock.advance(timedelta(minutes=1))
        number = world.publish_number(77)
        world.service.expire_due()
        stored = world.service.draw_round(draw_round.id)
        assert stored.state == "awaiting_address"
        assert stored.record is not None
        assert stored.verify()
        assert (stored.record.b, stored.record.b_source) == (77, number.source)
        assert world.rounds.get(draw_round.id).purchase(carol).paid_at is not None

    def test_exactly_one_order_wins_and_every_other_paid_order_is_spent(self) -> None:
        world = World()
        world.publish_number()
        draw_round, orders = sold_out(world)
        assert draw_round.state == "sold_out"  # the number came out before the sell-out
        world.clock.advance(timedelta(minutes=5))
        world.publish_number(99)
        world.service.expire_due()
        record = world.rounds.get(draw_round.id).record
        assert record is not None
        states = {order_id: world.state(order_id) for order_id in orders}
        assert states.pop(record.winner_order_id) == "awaiting_address"
        assert set(states.values()) == {"lost"}
        for order_id in orders:  # every share's money went to the merchant, like a sale
            money = world.service.money(order_id)
            assert money.released + money.commission == money.paid_in
            assert money.refunded.is_zero

    def test_the_draw_is_refused_without_a_public_number_and_nothing_changes(self) -> None:
        world = World()
        draw_round, _ = sold_out(world)
        before = world.snapshot(draw_round.id)
        with pytest.raises(DrawInputsMissing):
            world.service.draw(draw_round.id, Actor.platform())
        assert world.service.expire_due() == []
        assert world.snapshot(draw_round.id) == before
        world.clock.advance(timedelta(minutes=2))
        world.publish_number()
        record = world.service.draw(draw_round.id, Actor.platform())
        assert record.b == 40113
        assert world.rounds.get(draw_round.id).verify()

    def test_a_buyer_cannot_draw(self) -> None:
        world = World()
        draw_round, _ = sold_out(world)
        world.publish_number()
        with pytest.raises(Forbidden):
            world.service.draw(draw_round.id, ALICE)
        assert world.rounds.get(draw_round.id).state == "sold_out"

    def test_with_no_number_for_a_day_the_round_draws_on_the_fallback(self) -> None:
        world = World()
        draw_round, _ = sold_out(world)
        world.clock.advance(timedelta(hours=23))
        world.service.expire_due()
        assert world.rounds.get(draw_round.id).state == "sold_out"
        world.clock.advance(timedelta(hours=1))
        moved = world.service.expire_due()
        stored = world.rounds.get(draw_round.id)
        assert stored.record is not None
        assert stored.record.fallback
        assert stored.verify()
        assert {e.trigger for e in moved} == {"draw_won", "draw_lost"}

    def test_a_number_published_after_now_is_not_used_yet(self) -> None:
        world = World()
        draw_round, _ = sold_out(world)
        later = world.clock.now() + timedelta(hours=1)
        world.lottery.publish(PublicNumber(5, "lottery:5", later))
        world.service.expire_due()
        assert world.rounds.get(draw_round.id).state == "sold_out"
        world.clock.advance(timedelta(hours=1))
        world.service.expire_due()
        assert world.rounds.get(draw_round.id).record.b == 5  # type: ignore[union-attr]


class TestTheWinner:
    def drawn(self, **kwargs: object) -> tuple[World, DrawRound, str]:
        world = World()
        draw_round, _ = sold_out(world, **kwargs)
        world.clock.advance(timedelta(minutes=1))
        world.publish_number()
        world.service.expire_due()
        stored = world.rounds.get(draw_round.id)
        assert stored.record is not None
        return world, stored, stored.record.winner_order_id

    def test_the_winners_address_lets_the_order_ship_and_deducts_the_prize(self) -> None:
        world, draw_round, winner = self.drawn()
        buyer = Actor.buyer(world.orders.get(winner).buyer_id)
        order = world.service.confirm_prize_address(winner, buyer, address="1 Tea Road")
        assert order.state == "awaiting_shipment"
        assert world.rounds.get(draw_round.id).state == "fulfilled"
        assert (world.inventory.on_hand("phone"), world.inventory.reserved("phone")) == (1, 0)
        shipped = world.service.ship(winner, MERCHANT, carrier="SF", tracking_number="SF1")
        assert shipped.state == "shipped"
        world.clock.advance(timedelta(days=60))
        world.service.expire_due()
        assert world.rounds.get(draw_round.id).state == "fulfilled"

    def test_a_loser_or_another_buyer_cannot_confirm_the_address(self) -> None:
        world, draw_round, winner = self.drawn()
        loser = next(p for p in draw_round.paid_purchases() if p.order_id != winner)
        before = world.snapshot(draw_round.id)
        with pytest.raises(TransitionNotAllowed):
            world.service.confirm_prize_address(
                loser.order_id, Actor.buyer(loser.buyer_id), address="2 Tea Road"
            )
        with pytest.raises(Forbidden):
            world.service.confirm_prize_address(winner, Actor.buyer("mallory"), address="x")
        with pytest.raises(InvalidInput):
            world.service.confirm_prize_address(
                winner, Actor.buyer(world.orders.get(winner).buyer_id), address=" "
            )
        assert world.snapshot(draw_round.id) == before

    def test_a_late_address_is_refused_and_the_prize_is_forfeited_without_a_refund(self) -> None:
        world, draw_round, winner = self.drawn()
        buyer = Actor.buyer(world.orders.get(winner).buyer_id)
        world.clock.advance(timedelta(days=30))
        with pytest.raises(DeadlinePassed):
            world.service.confirm_prize_address(winner, buyer, address="1 Tea Road")
        moved = world.service.expire_due()
        assert [(e.order_id, e.trigger) for e in moved] == [(winner, "forfeit")]
        assert world.state(winner) == "forfeited"
        assert world.rounds.get(draw_round.id).state == "forfeited"
        assert world.inventory.available("phone") == 2
        assert world.refunds(winner) == []
        world.service.expire_due()
        assert world.inventory.available("phone") == 2

    def test_under_refund_winner_a_forfeit_refunds_the_winning_order_once(self) -> None:
        world, _, winner = self.drawn(on_forfeit=ForfeitPolicy.REFUND_WINNER)
        world.clock.advance(timedelta(days=30))
        world.service.expire_due()
        world.service.expire_due()
        money = world.service.money(winner)
        assert (money.paid_in, money.refunded) == (money.paid_in, money.paid_in)
        assert len(world.refunds(winner)) == 1

    def test_a_winning_order_cancelled_before_shipping_gives_the_prize_back(self) -> None:
        world, _, winner = self.drawn()
        buyer = Actor.buyer(world.orders.get(winner).buyer_id)
        world.service.confirm_prize_address(winner, buyer, address="1 Tea Road")
        world.service.cancel(winner, buyer, "changed my mind")
        assert world.inventory.available("phone") == 2
        money = world.service.money(winner)
        assert money.refunded == money.paid_in


class TestAnUnsoldRound:
    def test_every_share_is_refunded_from_its_own_payment_exactly_once(self) -> None:
        world = World()
        draw_round = world.open(shares=10)
        alice = world.buy(draw_round, ALICE, 2)
        bob = world.buy(draw_round, BOB, 3)
        world.clock.advance(timedelta(hours=5, minutes=50))
        carol = world.buy(draw_round, CAROL, 1, pay=False)
        world.clock.advance(timedelta(minutes=10))
        moved = world.service.expire_due()
        assert {(e.order_id, e.trigger) for e in moved} >= {
            (alice, "round_unsold"),
            (bob, "round_unsold"),
            (carol, "round_unsold"),
        }
        assert world.rounds.get(draw_round.id).state == "unsold"
        for order_id, paid in ((alice, SHARE * 2), (bob, SHARE * 3)):
            money = world.service.money(order_id)
            assert (money.paid_in, money.refunded) == (paid, paid)
            (refund,) = world.service.payments_of(order_id)[0].refunds
            assert refund.id == f"{draw_round.id}:refund:{order_id}"
        assert world.state(carol) == "cancelled"
        assert world.service.money(carol).paid_in.is_zero
        assert world.inventory.available("phone") == 2
        world.clock.advance(timedelta(days=1))
        assert world.service.expire_due() == []
        assert [len(world.refunds(o)) for o in (alice, bob, carol)] == [1, 1, 0]
        assert world.gateway.refunded[alice] == SHARE * 2


class ConflictOnce(InMemoryDrawRoundRepository):
    """A round repository where another writer saves first, once, when armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def save(self, draw_round: DrawRound, expected_version: int) -> None:
        if self.armed:
            self.armed = False
            raise VersionConflict(draw_round.id, expected_version, expected_version + 1)
        super().save(draw_round, expected_version)


class TestOtherOrdersAndFailures:
    def test_an_ordinary_order_is_paid_and_cancelled_as_before(self) -> None:
        world = World()
        world.open()
        order = world.service.buy_now(ALICE, "phone", 1)
        assert world.service.pay(order.id, ALICE).state == "awaiting_shipment"
        cancelled = world.service.cancel(order.id, ALICE, "changed my mind")
        assert cancelled.state == "cancelled"
        assert world.service.money(order.id).refunded == world.service.money(order.id).paid_in
        with pytest.raises(InvalidInput):
            world.service.pay_shares(order.id, ALICE)

    def test_without_rounds_expire_due_settles_the_other_deadlines_only(self) -> None:
        world = World(rounds=False)
        order = world.service.buy_now(ALICE, "phone", 1)
        world.clock.advance(timedelta(hours=1))
        assert [e.order_id for e in world.service.expire_due()] == [order.id]
        assert world.inventory.available("phone") == 2

    def test_a_round_that_cannot_be_stored_gives_its_prize_back(self) -> None:
        world = World()

        def refuse(_: DrawRound) -> None:
            raise Conflict("taken")

        world.rounds.add = refuse  # type: ignore[method-assign]
        with pytest.raises(Conflict):
            world.open()
        assert world.inventory.available("phone") == 2

    def test_a_share_order_that_cannot_be_stored_gives_its_shares_back(self) -> None:
        world = World()
        draw_round = world.open(shares=3)

        def refuse(_: object) -> None:
            raise Conflict("taken")

        world.orders.add = refuse  # type: ignore[method-assign]
        with pytest.raises(Conflict):
            world.service.place_share_order(ALICE, draw_round.id, 2)
        stored = world.rounds.get(draw_round.id)
        assert (stored.remaining, world.inventory.available(share_sku(draw_round.id))) == (3, 3)

    def test_a_concurrent_writer_makes_the_service_retry_or_wait_for_the_next_call(
        self,
    ) -> None:
        world = World()
        rounds = ConflictOnce()
        world.service.rounds = rounds
        draw_round = world.open(shares=3)
        alice = world.buy(draw_round, ALICE, 1, pay=False)
        rounds.armed = True  # the numbers are given on the second try
        world.service.pay_shares(alice, ALICE)
        assert rounds.get(draw_round.id).purchase(alice).first == 10000001
        world.clock.advance(timedelta(hours=5, minutes=50))
        bob = world.buy(draw_round, BOB, 1, pay=False)
        world.clock.advance(timedelta(minutes=10))
        rounds.armed = True  # the unsold round is left to the next call
        world.service.expire_due()
        assert rounds.get(draw_round.id).state == "selling"
        world.service.expire_due()
        assert rounds.get(draw_round.id).state == "unsold"
        assert {world.state(alice), world.state(bob)} == {"cancelled"}
        assert len(world.refunds(alice)) == 1
