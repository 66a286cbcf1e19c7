"""Every collective mode through CampaignService with all storage in one SQLite file.

Each test runs one full path of a mode the way a host would: orders, stock, the outbox, the
ledger, payments and the mode's own repository are all our SQLite adapters on one file. The
host then stops half-way (the file is closed), starts again on the same file with fresh
adapters, and finishes the path there: the campaign must go on from what was stored (its
counters, numbers and deadlines rebuilt from the file, not from memory). What it ends with is
read back from the file once more, by a third set of adapters.

The world outside the file (the payment provider, the clock, the id source, the lottery)
carries over between runs, as it would for a real host.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import attrs

from ecommerce_core import Actor, Money
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryPromotionCatalog,
    ManualClock,
    PublishedNumbers,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.adapters.sqlite_aggregates import SqlitePaymentRepository, SqliteTeamRepository
from ecommerce_core.adapters.sqlite_books import SqliteLedger, SqlitePromotionLedger
from ecommerce_core.adapters.sqlite_campaigns import (
    SqliteAuctionRepository,
    SqliteDrawRoundRepository,
    SqliteGroupBuyRepository,
    SqliteRebateRepository,
)
from ecommerce_core.auctions import AuctionTerms
from ecommerce_core.campaigns.group_buy import GroupBuyTerms, PriceTier
from ecommerce_core.campaigns.lucky_draw import DrawTerms, PublicNumber
from ecommerce_core.campaigns.team import TeamTerms
from ecommerce_core.payments.ledger import Account
from ecommerce_core.ports import GatewayStatus, Product
from ecommerce_core.promotions import Promotion, Scope
from ecommerce_core.promotions import Rebate as Cashback
from ecommerce_core.services import CampaignService

ALICE, BOB, CAROL = (Actor.buyer(name) for name in ("alice", "bob", "carol"))
MERCHANT = Actor.merchant("m-1")


def cny(text: str) -> Money:
    return Money.of(text, "CNY")


@attrs.define
class Stored:
    """Every SQLite adapter of one run, on one open file."""

    database: SqliteDatabase
    sink: RecordingPublisher
    orders: SqliteOrderRepository = attrs.field(init=False)
    inventory: SqliteInventory = attrs.field(init=False)
    outbox: SqliteOutbox = attrs.field(init=False)
    ledger: SqliteLedger = attrs.field(init=False)
    payments: SqlitePaymentRepository = attrs.field(init=False)
    teams: SqliteTeamRepository = attrs.field(init=False)
    rounds: SqliteDrawRoundRepository = attrs.field(init=False)
    group_buys: SqliteGroupBuyRepository = attrs.field(init=False)
    auctions: SqliteAuctionRepository = attrs.field(init=False)
    rebates: SqliteRebateRepository = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        db = self.database
        self.orders, self.inventory = SqliteOrderRepository(db), SqliteInventory(db)
        self.outbox = SqliteOutbox(db, self.sink)
        self.ledger, self.payments = SqliteLedger(db), SqlitePaymentRepository(db)
        self.teams, self.rounds = SqliteTeamRepository(db), SqliteDrawRoundRepository(db)
        self.group_buys, self.auctions = SqliteGroupBuyRepository(db), SqliteAuctionRepository(db)
        self.rebates = SqliteRebateRepository(db)

    def state(self, order_id: str) -> str:
        return self.orders.get(order_id).state


class Host:
    """A shop whose storage is one SQLite file, stopped and started again at will."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "shop.db"
        self.clock, self.ids = ManualClock(), SequentialIds()
        self.gateway = ScriptedPaymentGateway(lambda _request: GatewayStatus.SUCCEEDED)
        self.lottery = PublishedNumbers()
        self.delivered: list[str] = []  # event names the outbox handed on, over every run
        self.catalog = InMemoryCatalog(
            [
                Product("tea", "m-1", "tea", cny("9.90")),
                Product("leaf", "m-1", "tea", cny("10.00")),
                Product("phone", "m-1", "phone", cny("3999.00")),
                Product("vase", "m-1", "vase", cny("100.00")),
                Product("cake", "m-1", "cake", cny("99.00")),
            ]
        )
        with self.run() as (stored, _):
            for sku, quantity in (("tea", 10), ("leaf", 20), ("phone", 1), ("vase", 1)):
                stored.inventory.receive(sku, quantity)
            stored.inventory.receive("cake", 5)

    @contextmanager
    def run(self) -> Iterator[tuple[Stored, CampaignService]]:
        """Open the file, build every adapter and the service on it; close it afterwards."""
        sink = RecordingPublisher()
        with SqliteDatabase(self.path) as database:
            stored = Stored(database, sink)
            service = CampaignService(
                orders=stored.orders,
                inventory=stored.inventory,
                catalog=self.catalog,
                payments=self.gateway,
                clock=self.clock,
                ids=self.ids,
                publisher=stored.outbox,
                ledger=stored.ledger,
                payment_records=stored.payments,
                promotions=InMemoryPromotionCatalog(
                    [Promotion("cash5", Cashback(percent=5), scope=Scope(skus={"cake"}))]
                ),
                promotion_ledger=SqlitePromotionLedger(database),
                teams=stored.teams,
                rounds=stored.rounds,
                randomness=self.lottery,
                group_buys=stored.group_buys,
                auctions=stored.auctions,
                rebates=stored.rebates,
            )
            yield stored, service
            assert stored.outbox.pending() == 0  # everything stored was handed on
            self.delivered.extend(type(event).__name__ for event in sink.published)

    @contextmanager
    def reopened(self) -> Iterator[Stored]:
        """The file as a third party reads it: fresh adapters, no service."""
        with SqliteDatabase(self.path) as database:
            yield Stored(database, RecordingPublisher())


class TestATeamPurchase:
    def test_a_team_led_before_a_restart_forms_after_it_and_its_orders_ship(self, tmp_path):
        host = Host(tmp_path)
        with host.run() as (_, service):
            leader = service.place_team_order(ALICE, "tea")
            team = service.lead_team(
                leader.id,
                ALICE,
                TeamTerms("pin-1", size=3, ends_at=host.clock.now() + timedelta(days=1)),
            )
            bob = service.place_team_order(BOB, "tea", team_id=team.id)
            service.pay_team_member(bob.id, BOB)
        with host.run() as (stored, service):
            assert stored.teams.team_of(bob.id) == team.id
            carol = service.place_team_order(CAROL, "tea", team_id=team.id)
            service.pay_team_member(carol.id, CAROL)
            service.ship(carol.id, MERCHANT, carrier="SF", tracking_number="SF1")
        with host.reopened() as stored:
            assert stored.teams.get(team.id).state == "formed"
            assert [stored.state(o) for o in (leader.id, bob.id, carol.id)] == [
                "awaiting_shipment",
                "awaiting_shipment",
                "shipped",
            ]
            assert stored.inventory.on_hand("tea") == 7
        assert "TeamFormed" in host.delivered


class TestALuckyDraw:
    def test_a_round_sold_out_before_a_restart_is_drawn_after_it_from_the_stored_shares(
        self, tmp_path
    ):
        host = Host(tmp_path)
        terms = DrawTerms(
            share_count=5, share_price=cny("1.00"), sell_by=host.clock.now() + timedelta(hours=6)
        )
        with host.run() as (_, service):
            draw_round = service.open_round(MERCHANT, "phone", terms)
            orders = {}
            for buyer, shares in ((BOB, 2), (ALICE, 2)):
                orders[buyer.id] = service.place_share_order(buyer, draw_round.id, shares).id
            for buyer in (ALICE, BOB):  # paid in another order than reserved
                service.pay_shares(orders[buyer.id], buyer)
                host.clock.advance(timedelta(seconds=7))
            orders["carol"] = service.place_share_order(CAROL, draw_round.id, 1).id
            service.pay_shares(orders["carol"], CAROL)
            held_before = service.draw_round(draw_round.id)
        with host.run() as (stored, service):
            reloaded = stored.rounds.get(draw_round.id)
            assert (reloaded.state, reloaded.held, reloaded.remaining) == ("sold_out", 0, 0)
            assert reloaded.paid_purchases() == held_before.paid_purchases()
            assert stored.rounds.round_of(orders["bob"]) == draw_round.id
            host.clock.advance(timedelta(minutes=1))
            host.lottery.publish(PublicNumber(40113, "lottery:40113", host.clock.now()))
            service.expire_due()
            record = stored.rounds.get(draw_round.id).record
            assert record is not None
            winner = Actor.buyer(record.winner_id)
            service.confirm_prize_address(record.winner_order_id, winner, address="1 Tea Road")
        with host.reopened() as stored:
            drawn = stored.rounds.get(draw_round.id)
            assert drawn.state == "fulfilled"
            assert drawn.verify()
            assert stored.state(record.winner_order_id) == "awaiting_shipment"
            losers = set(orders.values()) - {record.winner_order_id}
            assert {stored.state(o) for o in losers} == {"lost"}
            assert (stored.inventory.on_hand("phone"), stored.inventory.reserved("phone")) == (0, 0)
        assert "DrawCompleted" in host.delivered


class TestAGroupBuy:
    def test_orders_joined_before_a_restart_count_toward_the_tier_settled_after_it(self, tmp_path):
        host = Host(tmp_path)
        terms = GroupBuyTerms(
            list_price=cny("10.00"),
            tiers=[PriceTier(3, cny("9.00")), PriceTier(5, cny("8.00"))],
            starts_at=host.clock.now(),
            ends_at=host.clock.now() + timedelta(days=3),
            minimum=3,
        )
        with host.run() as (_, service):
            campaign = service.create_group_buy(MERCHANT, "leaf", terms)
            alice = service.place_group_buy_order(ALICE, campaign.id, 1).id  # 10.00
            service.pay(alice, ALICE)
            bob = service.place_group_buy_order(BOB, campaign.id, 2).id  # 3 units: 9.00
            service.pay(bob, BOB)
        with host.run() as (stored, service):
            assert stored.group_buys.get(campaign.id).level == 3  # rebuilt from the file
            carol = service.place_group_buy_order(CAROL, campaign.id, 2)
            assert carol.total == cny("16.00")  # the tier its units reach with the stored ones
            service.pay(carol.id, CAROL)
            host.clock.advance(timedelta(days=3))
            service.expire_due()
        with host.reopened() as stored:
            closed = stored.group_buys.get(campaign.id)
            assert (closed.state, closed.level) == ("succeeded", 5)
            assert closed.settlement is not None
            assert closed.settlement.unit_price == cny("8.00")
            assert stored.group_buys.due(host.clock.now() + timedelta(days=365)) == []
            for order_id, quantity in ((alice, 1), (bob, 2), (carol.id, 2)):
                assert stored.state(order_id) == "awaiting_shipment"
                paid = sum(
                    (p.captured for p in stored.payments.all() if p.order_id == order_id),
                    cny("0.00"),
                )
                refunded = sum(
                    (
                        r.total
                        for p in stored.payments.all()
                        if p.order_id == order_id
                        for r in p.refunds
                    ),
                    cny("0.00"),
                )
                assert paid - refunded == cny("8.00") * quantity
        assert "GroupBuySucceeded" in host.delivered


class TestAnAuction:
    def test_an_auction_bid_on_before_a_restart_is_won_and_paid_after_it(self, tmp_path):
        host = Host(tmp_path)
        terms = AuctionTerms(
            start_price=cny("100.00"),
            increment=cny("10.00"),
            deposit=cny("20.00"),
            starts_at=host.clock.now(),
            ends_at=host.clock.now() + timedelta(hours=1),
        )
        with host.run() as (_, service):
            auction = service.create_auction(MERCHANT, "vase", terms)
            for bidder in (ALICE, BOB):
                service.hold_deposit(auction.id, bidder)
            service.bid(auction.id, ALICE, cny("100.00"))
            service.bid(auction.id, BOB, cny("130.00"))
        with host.run() as (stored, service):
            assert stored.auctions.get(auction.id).leader.bidder_id == "bob"
            host.clock.advance(timedelta(hours=1))
            service.expire_due()
            order_id = service.auction_order_id(auction.id, "bob")
            service.pay(order_id, BOB)
        with host.reopened() as stored:
            sold = stored.auctions.get(auction.id)
            assert (sold.state, sold.winner_id, sold.hammer) == ("sold", "bob", cny("130.00"))
            assert stored.auctions.due(host.clock.now() + timedelta(days=365)) == []
            assert stored.state(order_id) == "awaiting_shipment"
            assert stored.ledger.balance(Account.deposit("bob"), "CNY").is_zero
            assert stored.ledger.balance(Account.deposit("alice"), "CNY").is_zero
            assert stored.inventory.on_hand("vase") == 0
        assert "AuctionEnded" in host.delivered


class TestARebate:
    def test_a_rebate_granted_before_a_restart_is_credited_after_it(self, tmp_path):
        host = Host(tmp_path)
        with host.run() as (_, service):
            order = service.buy_now(ALICE, "cake", 1)
            service.pay(order.id, ALICE)
            service.ship(order.id, MERCHANT, carrier="SF", tracking_number="SF1")
            service.confirm_receipt(order.id, ALICE)
        with host.run() as (stored, service):
            (rebate_id,) = stored.rebates.for_order(order.id)
            assert stored.rebates.get(rebate_id).state == "frozen"
            host.clock.advance(service.policy.after_sales_window)
            service.expire_due()
        with host.reopened() as stored:
            credited = stored.rebates.get(rebate_id)
            assert (credited.state, credited.credited) == ("credited", cny("4.95"))
            assert stored.rebates.due(host.clock.now() + timedelta(days=365)) == []
            assert stored.ledger.balance(Account.rebate_payable("alice"), "CNY") == cny("4.95")
        assert "RebateCredited" in host.delivered
