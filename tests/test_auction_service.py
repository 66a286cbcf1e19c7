"""Auctions through CampaignService: deposits, bids, orders, the ledger and stock, path by path."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ecommerce_core import Actor, Money
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
from ecommerce_core.errors import (
    AlreadyLeading,
    BidTooLow,
    Conflict,
    CurrencyMismatch,
    DeadlinePassed,
    DefinitionError,
    DepositRequired,
    Forbidden,
    InvalidInput,
    NotFound,
    OutOfStock,
    PaymentNotCompleted,
    RuleViolation,
    TransitionNotAllowed,
)
from ecommerce_core.payments.ledger import Account, Movement
from ecommerce_core.ports import ChargeRequest, GatewayStatus, Product
from ecommerce_core.services import CampaignService
from ecommerce_core.services.auctions import AuctionOrderDefaulted

CNY = "CNY"
MERCHANT = Actor.merchant("m-1")
AMY, BOB, CAT = (Actor.buyer(n) for n in ("amy", "bob", "cat"))


def yuan(amount: str) -> Money:
    return Money.of(amount, CNY)


class World:
    """A campaign service offering auctions, over in-memory adapters, with 1 vase in stock."""

    def __init__(self, *, stock: int = 1, auctions: bool = True) -> None:
        self.clock = ManualClock()
        self.outcome = GatewayStatus.SUCCEEDED
        self.deposit_outcome = GatewayStatus.SUCCEEDED
        self.during_charge: list[timedelta] = []
        self.gateway = ScriptedPaymentGateway(self._decide)
        self.inventory = InMemoryInventory({"vase": stock})
        self.ledger = InMemoryLedger()
        self.auctions = InMemoryAuctionRepository()
        self.orders = InMemoryOrderRepository()
        self.publisher = RecordingPublisher()
        self.service = CampaignService(
            orders=self.orders,
            inventory=self.inventory,
            catalog=InMemoryCatalog(
                [
                    Product("vase", "m-1", "vase", yuan("100.00")),
                    Product("bowl", "m-1", "bowl", Money.of("9.00", "USD")),
                ]
            ),
            payments=self.gateway,
            clock=self.clock,
            ids=SequentialIds(),
            publisher=self.publisher,
            ledger=self.ledger,
            payment_records=InMemoryPaymentRepository(),
            auctions=self.auctions if auctions else None,
        )

    def _decide(self, request: GatewayRequest) -> GatewayStatus:
        if isinstance(request, ChargeRequest) and ":deposit:" in request.idempotency_key:
            return self.deposit_outcome
        if self.during_charge and isinstance(request, ChargeRequest):
            self.clock.advance(self.during_charge.pop())
        return self.outcome

    def terms(self, **kwargs: object) -> AuctionTerms:
        now = self.clock.now()
        fields: dict[str, object] = {
            "start_price": yuan("100.00"),
            "increment": yuan("10.00"),
            "deposit": yuan("20.00"),
            "starts_at": now,
            "ends_at": now + timedelta(hours=1),
        }
        fields.update(kwargs)
        return AuctionTerms(**fields)  # type: ignore[arg-type]

    def open(self, *bidders: Actor, **kwargs: object) -> Auction:
        auction = self.service.create_auction(MERCHANT, "vase", self.terms(**kwargs))
        for bidder in bidders:
            self.service.hold_deposit(auction.id, bidder)
        return auction

    def end(self, auction: Auction) -> Auction:
        self.clock.advance(self.service.auction(auction.id).ends_at - self.clock.now())
        self.service.expire_due()
        return self.service.auction(auction.id)

    def pass_payment_deadline(self, auction: Auction) -> Auction:
        due = self.service.auction(auction.id).payment_due
        assert due is not None
        self.clock.advance(due - self.clock.now())
        self.service.expire_due()
        return self.service.auction(auction.id)

    def order_of(self, auction: Auction, bidder: Actor) -> str:
        return self.service.auction_order_id(auction.id, bidder.id)

    def deposit_balance(self, bidder: Actor) -> Money:
        return self.ledger.balance(Account.deposit(bidder.id), CNY)

    def buyer_balance(self, bidder: Actor) -> Money:
        return self.ledger.balance(Account.buyer(bidder.id), CNY)

    def deposit_postings(self, auction: Auction, bidder: Actor) -> list[str]:
        """The movements out of ``bidder``'s deposit account for ``auction``, by movement."""
        stored = self.service.auction(auction.id)
        deposit = stored.deposit_of(bidder.id)
        assert deposit is not None
        order_postings = self.ledger.postings(self.order_of(auction, bidder))
        return [
            p.movement.value
            for p in [*self.ledger.postings(auction.id), *order_postings]
            if p.source == Account.deposit(bidder.id) and deposit.reference in p.key
        ]

    def snapshot(self, auction_id: str) -> tuple[object, ...]:
        stored = self.auctions.get(auction_id)
        return (
            stored.version,
            stored.state,
            stored.bids,
            stored.deposits,
            stored.ends_at,
            len(self.ledger.all()),
            self.inventory.available("vase"),
            self.inventory.reserved("vase"),
            dict(self.gateway.charged),
            len(self.orders),
        )

    def stock(self) -> tuple[int, int, int]:
        return (
            self.inventory.available("vase"),
            self.inventory.reserved("vase"),
            self.inventory.on_hand("vase"),
        )


class TestCreatingAnAuction:
    def test_reserves_the_lot_under_the_auction_id(self) -> None:
        world = World()
        auction = world.open()
        assert world.service.auction(auction.id).state == "running"
        assert world.stock() == (0, 1, 1)

    def test_another_merchant_is_forbidden_and_nothing_is_reserved(self) -> None:
        world = World()
        with pytest.raises(Forbidden):
            world.service.create_auction(Actor.merchant("m-2"), "vase", world.terms())
        assert world.stock() == (1, 0, 1)
        assert world.auctions.all() == []

    def test_terms_in_another_currency_than_the_sku_are_refused(self) -> None:
        world = World()
        with pytest.raises(CurrencyMismatch):
            world.service.create_auction(MERCHANT, "bowl", world.terms())
        assert world.auctions.all() == []

    def test_no_unit_in_stock_is_refused_and_nothing_is_stored(self) -> None:
        world = World(stock=0)
        with pytest.raises(OutOfStock):
            world.open()
        assert world.auctions.all() == []

    def test_an_id_already_stored_is_a_conflict_and_its_unit_stays_reserved_once(self) -> None:
        world = World(stock=2)
        world.service.create_auction(MERCHANT, "vase", world.terms(), auction_id="a-1")
        with pytest.raises(Conflict):
            world.service.create_auction(MERCHANT, "vase", world.terms(), auction_id="a-1")
        assert world.stock() == (1, 1, 2)

    def test_an_unknown_sku_is_not_found(self) -> None:
        with pytest.raises(NotFound):
            World().service.create_auction(MERCHANT, "nope", World().terms())

    def test_a_service_built_without_an_auction_repository_does_not_offer_auctions(self) -> None:
        world = World(auctions=False)
        with pytest.raises(DefinitionError):
            world.open()
        assert world.service.expire_due() == []


class TestHoldingADeposit:
    def test_the_provider_charges_it_and_the_ledger_moves_it_to_the_deposit_account(self) -> None:
        world = World()
        auction = world.open(BOB)
        deposit = world.service.auction(auction.id).deposit_of("bob")
        assert deposit is not None
        assert deposit.status is DepositStatus.HELD
        assert world.deposit_balance(BOB) == yuan("20.00")
        assert world.buyer_balance(BOB) == yuan("-20.00")
        assert world.gateway.charged[auction.id] == yuan("20.00")

    def test_a_declined_charge_holds_nothing(self) -> None:
        world = World()
        auction = world.open()
        world.deposit_outcome = GatewayStatus.DECLINED
        before = world.snapshot(auction.id)
        with pytest.raises(PaymentNotCompleted):
            world.service.hold_deposit(auction.id, BOB)
        assert world.snapshot(auction.id) == before

    def test_a_pending_charge_is_held_once_the_provider_answered_and_the_bidder_retries(
        self,
    ) -> None:
        world = World()
        auction = world.open()
        world.deposit_outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted) as raised:
            world.service.hold_deposit(auction.id, BOB, key="k1")
        assert raised.value.status == "pending"
        assert world.service.auction(auction.id).deposits == []
        world.gateway.settle_pending(f"{auction.id}:deposit:bob:k1")
        world.service.hold_deposit(auction.id, BOB, key="k1")
        assert world.deposit_balance(BOB) == yuan("20.00")
        assert world.gateway.charged[auction.id] == yuan("20.00")

    def test_a_pending_charge_is_held_when_its_notification_arrives(self) -> None:
        world = World()
        auction = world.open()
        world.deposit_outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.hold_deposit(auction.id, BOB, key="k1")
        notice = world.gateway.settle_pending(f"{auction.id}:deposit:bob:k1")
        assert world.service.handle_notification(notice).outcome == "applied"
        assert world.service.handle_notification(notice).outcome == "applied"
        assert world.deposit_balance(BOB) == yuan("20.00")
        with pytest.raises(RuleViolation):
            world.service.hold_deposit(auction.id, BOB, key="k1")
        assert world.gateway.charged[auction.id] == yuan("20.00")

    def test_a_charge_that_lands_after_another_deposit_was_held_is_refunded(self) -> None:
        world = World()
        auction = world.open()
        world.deposit_outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.hold_deposit(auction.id, BOB, key="k1")
        world.deposit_outcome = GatewayStatus.SUCCEEDED
        world.service.hold_deposit(auction.id, BOB, key="k2")
        notice = world.gateway.settle_pending(f"{auction.id}:deposit:bob:k1")
        assert "refunded" in world.service.handle_notification(notice).outcome
        assert world.gateway.charged[auction.id] == yuan("40.00")
        assert world.gateway.refunded[auction.id] == yuan("20.00")
        assert world.deposit_balance(BOB) == yuan("20.00")

    def test_a_pending_deposit_refund_is_posted_when_the_provider_answers(self) -> None:
        world = World()
        auction = world.open(AMY, BOB)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("110.00"))
        world.outcome = GatewayStatus.PENDING
        world.end(auction)
        assert world.deposit_balance(AMY) == yuan("20.00")  # the provider has not refunded yet
        assert world.deposit_postings(auction, AMY) == []
        (key,) = world.gateway.pending_keys()
        world.service.handle_notification(world.gateway.settle_pending(key))
        assert world.deposit_postings(auction, AMY) == ["refund"]
        assert world.deposit_balance(AMY).is_zero

    def test_a_second_deposit_is_refused_before_the_provider_is_asked(self) -> None:
        world = World()
        auction = world.open(BOB)
        before = world.snapshot(auction.id)
        with pytest.raises(RuleViolation):
            world.service.hold_deposit(auction.id, BOB, key="again")
        assert world.snapshot(auction.id) == before

    def test_after_the_end_nothing_is_charged(self) -> None:
        world = World()
        auction = world.open()
        world.clock.advance(timedelta(hours=2))
        before = world.snapshot(auction.id)
        with pytest.raises(DeadlinePassed):
            world.service.hold_deposit(auction.id, BOB)
        assert world.snapshot(auction.id) == before

    @pytest.mark.parametrize("key", ["", "  "])
    def test_a_blank_key_is_invalid(self, key: str) -> None:
        world = World()
        auction = world.open()
        with pytest.raises(InvalidInput):
            world.service.hold_deposit(auction.id, BOB, key=key)

    def test_only_a_buyer_holds_a_deposit(self) -> None:
        world = World()
        auction = world.open()
        with pytest.raises(InvalidInput):
            world.service.hold_deposit(auction.id, MERCHANT)


class TestBadBids:
    @pytest.fixture
    def world(self) -> World:
        world = World()
        self.auction = world.open(AMY, BOB)
        world.service.bid(self.auction.id, BOB, yuan("100.00"))
        return world

    def refused(self, world: World, error: type[Exception], bidder: Actor, amount: str) -> None:
        before = world.snapshot(self.auction.id)
        with pytest.raises(error):
            world.service.bid(self.auction.id, bidder, yuan(amount))
        assert world.snapshot(self.auction.id) == before

    def test_below_the_increment_is_refused_and_changes_nothing(self, world: World) -> None:
        self.refused(world, BidTooLow, AMY, "109.99")

    def test_against_oneself_is_refused_and_changes_nothing(self, world: World) -> None:
        self.refused(world, AlreadyLeading, BOB, "150.00")

    def test_without_a_deposit_is_refused_and_changes_nothing(self, world: World) -> None:
        self.refused(world, DepositRequired, CAT, "150.00")

    def test_after_the_end_is_refused_and_changes_nothing(self, world: World) -> None:
        world.clock.advance(timedelta(hours=1))
        self.refused(world, DeadlinePassed, AMY, "150.00")

    def test_by_a_merchant_is_forbidden_and_changes_nothing(self, world: World) -> None:
        self.refused(world, Forbidden, MERCHANT, "150.00")


class TestBidding:
    def test_a_late_bid_extends_the_end(self) -> None:
        world = World()
        auction = world.open(AMY, BOB)
        world.clock.advance(timedelta(minutes=59, seconds=30))
        world.service.bid(auction.id, AMY, yuan("100.00"))
        extended = world.service.auction(auction.id).ends_at
        assert extended == world.clock.now() + timedelta(minutes=1)
        world.clock.advance(timedelta(seconds=45))
        assert world.service.expire_due() == []
        world.service.bid(auction.id, BOB, yuan("110.00"))
        assert world.service.auction(auction.id).leader is not None

    def test_reaching_the_buyout_ends_it_at_once_with_an_order_and_the_losers_released(
        self,
    ) -> None:
        world = World()
        auction = world.open(AMY, BOB, buyout=yuan("300.00"))
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("999.00"))
        stored = world.service.auction(auction.id)
        assert (stored.state, stored.winner_id, str(stored.hammer)) == (
            "awaiting_payment",
            "bob",
            "300.00 CNY",
        )
        order = world.orders.get(world.order_of(auction, BOB))
        assert order.total == yuan("280.00")
        assert world.deposit_balance(AMY).is_zero
        assert world.buyer_balance(AMY).is_zero
        assert world.gateway.refunded[auction.id] == yuan("20.00")


class TestTheEnd:
    def test_the_winner_gets_an_order_at_the_hammer_price_less_the_deposit(self) -> None:
        world = World()
        auction = world.open(AMY, BOB)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        ended = world.end(auction)
        order = world.orders.get(world.order_of(auction, BOB))
        (line,) = order.lines
        assert (line.unit_price, line.discount, order.total) == (
            yuan("130.00"),
            yuan("20.00"),
            yuan("110.00"),
        )
        assert order.process.name == "order.auction"
        assert order.checkout_id == auction.id
        assert order.deadline is not None
        assert order.deadline.at == ended.payment_due
        assert world.stock() == (0, 1, 1)

    def test_the_losers_deposits_are_released_exactly_once(self) -> None:
        world = World()
        auction = world.open(AMY, BOB, CAT)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        world.service.expire_due()
        world.service.reconcile_auction(auction.id)
        assert world.deposit_postings(auction, AMY) == ["refund"]
        assert world.deposit_postings(auction, CAT) == ["refund"]
        assert world.deposit_postings(auction, BOB) == []
        assert world.gateway.refunded[auction.id] == yuan("40.00")
        assert world.deposit_balance(BOB) == yuan("20.00")

    def test_paying_sells_the_lot_and_the_ledger_shows_the_full_hammer_price(self) -> None:
        world = World()
        auction = world.open(AMY, BOB)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        order_id = world.order_of(auction, BOB)
        paid = world.service.pay(order_id, BOB)
        assert paid.state == "awaiting_shipment"
        assert world.service.auction(auction.id).state == "sold"
        money = world.service.money(order_id)
        assert (money.paid_in, money.balanced) == (yuan("130.00"), True)
        assert world.gateway.charged[order_id] == yuan("110.00")
        assert world.deposit_postings(auction, BOB) == ["capture"]
        assert world.deposit_balance(BOB).is_zero
        assert world.stock() == (0, 0, 0)
        world.service.reconcile_auction(auction.id)
        assert world.service.money(order_id).paid_in == yuan("130.00")

    def test_a_paid_order_cancelled_before_shipment_gets_the_deposit_back_too(self) -> None:
        world = World()
        auction = world.open(BOB)
        world.service.bid(auction.id, BOB, yuan("100.00"))
        world.end(auction)
        order_id = world.order_of(auction, BOB)
        world.service.pay(order_id, BOB)
        world.service.cancel(order_id, BOB, "changed my mind")
        money = world.service.money(order_id)
        assert (money.paid_in, money.refunded) == (yuan("100.00"), yuan("100.00"))
        assert world.buyer_balance(BOB).is_zero
        assert world.stock() == (1, 0, 1)

    def test_a_deposit_return_the_provider_left_pending_is_posted_on_reconciling(self) -> None:
        world = World()
        auction = world.open(BOB)
        world.service.bid(auction.id, BOB, yuan("100.00"))
        world.end(auction)
        order_id = world.order_of(auction, BOB)
        world.service.pay(order_id, BOB)
        world.outcome = GatewayStatus.PENDING
        world.service.cancel(order_id, BOB, "changed my mind")
        assert world.service.money(order_id).refunded.is_zero
        world.outcome = GatewayStatus.SUCCEEDED
        pending = world.gateway.pending_keys()
        assert len(pending) == 2  # the balance's refund and the deposit's return
        for key in pending:
            world.service.handle_notification(world.gateway.settle_pending(key))
        world.service.reconcile_auction(auction.id)
        world.service.reconcile_auction(auction.id)
        money = world.service.money(order_id)
        assert (money.paid_in, money.refunded) == (yuan("100.00"), yuan("100.00"))
        assert world.gateway.refunded[auction.id] == yuan("20.00")

    def test_an_unpaid_auction_order_cannot_be_cancelled(self) -> None:
        world = World()
        auction = world.open(BOB)
        world.service.bid(auction.id, BOB, yuan("100.00"))
        world.end(auction)
        with pytest.raises(TransitionNotAllowed):
            world.service.cancel(world.order_of(auction, BOB), BOB, "no")

    def test_a_reserve_not_met_is_no_sale_and_everything_is_released(self) -> None:
        world = World()
        auction = world.open(AMY, BOB, reserve=yuan("200.00"))
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("150.00"))
        ended = world.end(auction)
        assert ended.state == "unsold"
        assert world.deposit_postings(auction, AMY) == ["refund"]
        assert world.deposit_postings(auction, BOB) == ["refund"]
        assert len(world.orders) == 0
        assert world.stock() == (1, 0, 1)

    def test_no_bid_is_no_sale_and_the_lot_goes_back_to_stock(self) -> None:
        world = World()
        auction = world.open(AMY)
        assert world.end(auction).state == "unsold"
        assert world.deposit_balance(AMY).is_zero
        assert world.stock() == (1, 0, 1)

    def test_a_deposit_as_large_as_the_hammer_price_sells_at_once(self) -> None:
        world = World()
        auction = world.open(BOB, deposit=yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("100.00"))
        ended = world.end(auction)
        assert ended.state == "sold"
        order_id = world.order_of(auction, BOB)
        assert world.orders.get(order_id).state == "awaiting_shipment"
        assert world.service.money(order_id).paid_in == yuan("100.00")
        assert world.stock() == (0, 0, 0)


class TestPayingTheOrder:
    def ended(self, world: World) -> Auction:
        auction = world.open(AMY, BOB, second_chance=SecondChance.OFFER_RUNNER_UP)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        return world.end(auction)

    def test_after_the_deadline_nothing_is_charged(self) -> None:
        world = World()
        auction = self.ended(world)
        order_id = world.order_of(auction, BOB)
        assert auction.payment_due is not None
        world.clock.advance(auction.payment_due - world.clock.now())
        before = world.snapshot(auction.id)
        with pytest.raises(DeadlinePassed):
            world.service.pay(order_id, BOB)
        assert world.snapshot(auction.id) == before

    def test_a_payment_the_auction_refuses_after_the_charge_is_cancelled_and_refunded(
        self,
    ) -> None:
        world = World()
        auction = self.ended(world)
        order_id = world.order_of(auction, BOB)
        assert auction.payment_due is not None
        world.clock.advance(auction.payment_due - world.clock.now() - timedelta(seconds=1))
        world.during_charge.append(timedelta(seconds=5))  # the deadline passes meanwhile
        with pytest.raises(DeadlinePassed):
            world.service.pay(order_id, BOB)
        money = world.service.money(order_id)
        assert world.orders.get(order_id).state == "cancelled"
        assert money.paid_in == money.refunded == yuan("110.00")
        assert world.service.auction(auction.id).state == "awaiting_payment"
        world.service.expire_due()
        assert world.service.auction(auction.id).state == "awaiting_runner_up"
        assert world.deposit_postings(auction, BOB) == ["forfeit"]
        assert world.stock() == (0, 1, 1)

    def test_authorizing_only_is_refused(self) -> None:
        world = World()
        auction = self.ended(world)
        with pytest.raises(InvalidInput):
            world.service.pay(world.order_of(auction, BOB), BOB, capture=False)

    def test_a_declined_payment_leaves_the_offer_open(self) -> None:
        world = World()
        auction = self.ended(world)
        world.outcome = GatewayStatus.DECLINED
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(world.order_of(auction, BOB), BOB)
        world.outcome = GatewayStatus.SUCCEEDED
        world.service.pay(world.order_of(auction, BOB), BOB)
        assert world.service.auction(auction.id).state == "sold"

    def test_a_pending_payment_sells_the_lot_when_its_notification_arrives(self) -> None:
        world = World()
        auction = self.ended(world)
        order_id = world.order_of(auction, BOB)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order_id, BOB)
        (payment,) = world.service.payments_of(order_id)
        notice = world.gateway.settle_pending(f"{payment.id}:sale")
        world.service.handle_notification(notice)
        assert world.service.auction(auction.id).state == "sold"
        assert world.service.money(order_id).paid_in == yuan("130.00")

    def test_a_payment_landing_after_the_runner_up_got_the_lot_is_given_back(self) -> None:
        world = World()
        auction = self.ended(world)
        order_id = world.order_of(auction, BOB)
        world.outcome = GatewayStatus.PENDING
        with pytest.raises(PaymentNotCompleted):
            world.service.pay(order_id, BOB)
        world.pass_payment_deadline(auction)
        world.outcome = GatewayStatus.SUCCEEDED
        (payment,) = world.service.payments_of(order_id)
        world.service.handle_notification(world.gateway.settle_pending(f"{payment.id}:sale"))
        money = world.service.money(order_id)
        assert world.orders.get(order_id).state == "defaulted"
        assert money.paid_in == money.refunded == yuan("110.00")
        assert world.service.auction(auction.id).state == "awaiting_runner_up"

    def test_an_old_winners_order_is_no_longer_payable(self) -> None:
        world = World()
        auction = self.ended(world)
        world.pass_payment_deadline(auction)
        with pytest.raises((RuleViolation, TransitionNotAllowed)):
            world.service.pay(world.order_of(auction, BOB), BOB)


class TestAWinnerWhoDoesNotPay:
    def test_forfeits_the_deposit_to_the_merchant_and_the_lot_goes_back(self) -> None:
        world = World()
        auction = world.open(AMY, BOB)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        ended = world.pass_payment_deadline(auction)
        assert ended.state == "unpaid"
        assert world.deposit_postings(auction, BOB) == [Movement.FORFEIT.value]
        assert world.ledger.balance(Account.merchant("m-1"), CNY) == yuan("20.00")
        assert world.orders.get(world.order_of(auction, BOB)).state == "defaulted"
        assert world.stock() == (1, 0, 1)
        world.service.expire_due()
        world.service.reconcile_auction(auction.id)
        assert world.deposit_postings(auction, BOB) == [Movement.FORFEIT.value]
        assert world.stock() == (1, 0, 1)

    def test_the_runner_up_is_offered_the_lot_at_their_own_bid(self) -> None:
        world = World()
        auction = world.open(AMY, BOB, second_chance=SecondChance.OFFER_RUNNER_UP)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        assert world.deposit_balance(AMY) == yuan("20.00")  # kept for the second chance
        world.pass_payment_deadline(auction)
        offered = world.service.auction(auction.id)
        assert (offered.state, offered.winner_id) == ("awaiting_runner_up", "amy")
        order_id = world.order_of(auction, AMY)
        assert world.orders.get(order_id).total == yuan("80.00")
        assert world.stock() == (0, 1, 1)
        world.service.pay(order_id, AMY)
        assert world.service.auction(auction.id).state == "sold"
        assert world.service.money(order_id).paid_in == yuan("100.00")
        assert world.deposit_postings(auction, BOB) == ["forfeit"]
        assert world.deposit_postings(auction, AMY) == ["capture"]
        assert world.stock() == (0, 0, 0)

    def test_a_runner_up_who_declines_gets_the_deposit_back_and_the_lot_goes_back(self) -> None:
        world = World()
        auction = world.open(AMY, BOB, second_chance=SecondChance.OFFER_RUNNER_UP)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        world.pass_payment_deadline(auction)
        before = world.snapshot(auction.id)
        with pytest.raises(Forbidden):
            world.service.decline_offer(auction.id, BOB)
        assert world.snapshot(auction.id) == before
        world.service.decline_offer(auction.id, AMY)
        assert world.service.auction(auction.id).state == "unpaid"
        assert world.deposit_postings(auction, AMY) == ["refund"]
        order = world.orders.get(world.order_of(auction, AMY))
        assert order.state == "defaulted"
        assert any(isinstance(e, AuctionOrderDefaulted) for e in world.publisher.published)
        assert world.stock() == (1, 0, 1)

    def test_a_runner_up_who_does_not_pay_either_gets_the_deposit_back(self) -> None:
        world = World()
        auction = world.open(AMY, BOB, second_chance=SecondChance.OFFER_RUNNER_UP)
        world.service.bid(auction.id, AMY, yuan("100.00"))
        world.service.bid(auction.id, BOB, yuan("130.00"))
        world.end(auction)
        world.pass_payment_deadline(auction)
        assert world.pass_payment_deadline(auction).state == "unpaid"
        assert world.deposit_postings(auction, AMY) == ["refund"]
        assert world.deposit_postings(auction, BOB) == ["forfeit"]
        assert world.stock() == (1, 0, 1)
        assert sum(m.minor for m in world.ledger.balances(CNY).values()) == 0
