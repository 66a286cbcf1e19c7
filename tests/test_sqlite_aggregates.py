"""What the generic SQLite document store and the SQLite books add to their contracts.

The upgrade of a file written at schema version 2; a new aggregate repository in a few lines
(the auction one the module docstring shows); look-ups kept in step on save; events in the
outbox in the same transaction as the aggregate; the ledger in one unit of work with a payment,
append-only, its balance table always the sum of its postings; data that survives reopening.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecommerce_core import Actor, Conflict, DefinitionError, InvalidInput, NotFound
from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.memory import RecordingPublisher
from ecommerce_core.adapters.sqlite import (
    SCHEMA_VERSION,
    SqliteDatabase,
    SqliteIdempotencyStore,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.adapters.sqlite_aggregates import (
    Lookup,
    SqliteAggregateRepository,
    SqlitePaymentRepository,
    SqliteShipmentRepository,
    SqliteTeamRepository,
)
from ecommerce_core.adapters.sqlite_books import (
    SqliteCreditLines,
    SqliteLedger,
    SqlitePromotionLedger,
)
from ecommerce_core.auctions import Auction, AuctionTerms
from ecommerce_core.errors import CurrencyMismatch
from ecommerce_core.limits import LimitClaim
from ecommerce_core.money import Money
from ecommerce_core.payments import Account, Movement, Posting
from ecommerce_core.payments.online import GatewayPayment
from ecommerce_core.ports import StockItem
from ecommerce_core.testing.contracts import CONTRACT_TIME, make_order, make_shipment, make_team
from ecommerce_core.testing.payment_contracts import make_payment

FIXTURES = Path(__file__).parent / "fixtures"
BUYER, ESCROW, MERCHANT = Account.buyer("b-1"), Account.escrow(), Account.merchant("m-1")


def cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


def posting(key: str, minor: int = 100, *, order_id="o-1", source=BUYER, target=ESCROW):
    return Posting(
        key, order_id, "1", source, target, Money(minor, "CNY"), Movement.CAPTURE, CONTRACT_TIME
    )


@pytest.fixture
def database(tmp_path):
    with SqliteDatabase(tmp_path / "shop.db") as opened:
        yield opened


class Abandoned(Exception):
    pass


def abandoned(database, *steps):
    """Run the steps in one unit of work, then fail so that it rolls back."""
    with database.transaction():
        for step in steps:
            step()
        raise Abandoned


# --------------------------------------------------------------------------- the upgrade


class TestUpgradingAVersionTwoFile:
    @pytest.fixture
    def old_file(self, tmp_path):
        path = tmp_path / "v2.db"
        raw = sqlite3.connect(path)
        raw.executescript((FIXTURES / "schema-v2.sql").read_text())
        raw.close()
        return path

    def test_the_fixture_is_a_version_two_file_without_the_new_tables(self, old_file):
        raw = sqlite3.connect(old_file)
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        version = raw.execute("SELECT version FROM schema_version").fetchone()
        raw.close()
        assert version == (2,)
        assert "restocks" in tables
        assert "aggregates" not in tables
        assert "ledger_postings" not in tables

    def test_opening_it_upgrades_it_and_keeps_every_row_it_had(self, old_file):
        with SqliteDatabase(old_file) as database:
            assert database.schema_version == SCHEMA_VERSION == 3
            orders = SqliteOrderRepository(database)
            assert [order.id for order in orders.all()] == ["o-1", "o-2"]
            inventory = SqliteInventory(database)
            assert (inventory.on_hand("tea-01"), inventory.reserved("tea-01")) == (11, 2)
            assert inventory.restock("rs-1", [StockItem("1", "tea-01", 1)]) is False
            assert SqliteIdempotencyStore(database).lookup("k-1", "fp") == "result"
            assert SqliteOutbox(database).pending() == 2

    def test_the_upgraded_file_takes_the_new_adapters_and_keeps_them_after_reopening(
        self, old_file
    ):
        with SqliteDatabase(old_file) as database:
            SqlitePaymentRepository(database).add(make_payment("p-1", "o-1"))
            SqliteLedger(database).append([posting("a")])
            SqliteCreditLines(database, {"b-1": cny("100.00")}).draw("d-1", "b-1", cny("5.00"))
        with SqliteDatabase(old_file) as database:
            assert database.schema_version == SCHEMA_VERSION
            assert SqlitePaymentRepository(database).for_order("o-1") == ["p-1"]
            assert SqliteLedger(database).balance(ESCROW, "CNY") == Money(100, "CNY")
            assert SqliteCreditLines(database).drawn("b-1") == cny("5.00")


# --------------------------------------------------------------------------- a new repository


class SqliteAuctionRepository(SqliteAggregateRepository[Auction]):
    """Exactly the example of the module docstring."""

    kind = "auction"
    aggregate_type = Auction
    noun = "auction"

    def deadline_of(self, auction: Auction) -> datetime | None:
        return auction.due_at

    def lookups(self, auction: Auction) -> list[Lookup]:
        return [Lookup("sku", auction.sku)]

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        return self._due(now, limit)

    def for_sku(self, sku: str) -> list[str]:
        return self._ids_by("sku", sku)


def auction(auction_id="a-1", *, sku="vase", hours=1):
    start = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    terms = AuctionTerms(
        start_price=cny("100.00"),
        increment=cny("10.00"),
        deposit=cny("50.00"),
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
    )
    return Auction.create(
        Actor.merchant("m-1"),
        auction_id=auction_id,
        merchant_id="m-1",
        sku=sku,
        terms=terms,
        now=start,
    )


class TestANewAggregateRepository:
    def test_the_docstring_auction_repository_stores_finds_and_schedules_auctions(self, database):
        auctions = SqliteAuctionRepository(database)
        auctions.add(auction("a-late", hours=3))
        auctions.add(auction("a-early", hours=1))
        auctions.add(auction("a-cup", sku="cup", hours=2))
        loaded = auctions.get("a-early")
        assert (loaded.terms, loaded.state, loaded.version) == (
            auction("a-early").terms,
            "running",
            1,
        )
        assert auctions.for_sku("vase") == ["a-late", "a-early"]
        start = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
        assert auctions.due(start + timedelta(hours=2)) == ["a-early", "a-cup"]
        assert len(auctions) == 3
        assert [a.id for a in auctions.all()] == ["a-cup", "a-early", "a-late"]

    def test_kinds_share_the_table_but_never_each_others_rows(self, database):
        SqliteAuctionRepository(database).add(auction("x-1"))
        with pytest.raises(NotFound):
            SqlitePaymentRepository(database).get("x-1")
        assert len(SqlitePaymentRepository(database)) == 0

    def test_an_aggregate_of_another_class_is_refused_before_anything_is_written(self, database):
        with pytest.raises(InvalidInput):
            SqliteAuctionRepository(database).add(make_team())  # type: ignore[arg-type]
        assert database.read("SELECT count(*) FROM aggregates") == [(0,)]

    def test_a_stored_class_no_longer_defined_is_a_definition_error_naming_it(self, database):
        SqliteAuctionRepository(database).add(auction())
        database.connection.execute("UPDATE aggregates SET class = 'VanishedAuction'")
        with pytest.raises(DefinitionError) as caught:
            SqliteAuctionRepository(database).get("a-1")
        assert "VanishedAuction" in str(caught.value)


# --------------------------------------------------------------------------- rows and look-ups


class TestRowsAndLookups:
    def test_a_payment_is_stored_under_its_own_class_and_read_back_as_it(self, database):
        SqlitePaymentRepository(database).add(make_payment())
        assert database.read("SELECT kind, class FROM aggregates") == [
            ("payment", "GatewayPayment")
        ]
        loaded = SqlitePaymentRepository(database).get("p-1")
        assert type(loaded) is GatewayPayment
        assert isinstance(loaded.keys, MappingProxyType)

    def test_a_save_adds_the_look_ups_the_aggregate_gained(self, database):
        teams = SqliteTeamRepository(database)
        teams.add(make_team())
        team = teams.get("t-1")
        team.join(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        teams.save(team, 1)
        team = teams.get("t-1")
        team.join(Actor.buyer("carol"), order_id="o-carol", now=CONTRACT_TIME)
        teams.save(team, 2)
        rows = database.read("SELECT value FROM aggregate_lookups WHERE kind = 'team' ORDER BY seq")
        assert rows == [("t-1-o-alice",), ("o-bob",), ("o-carol",)]

    def test_a_save_that_takes_a_unique_value_already_used_conflicts_and_changes_nothing(
        self, database
    ):
        shipments = SqliteShipmentRepository(database)
        shipments.add(make_shipment("s-1", tracking_number="SF1"))
        other = make_order("o-2", quantity=2)
        other.pay(Actor.buyer(other.buyer_id), amount=other.total, reference="t", now=CONTRACT_TIME)
        shipments.add(make_shipment("s-2", order=other, tracking_number="SF2"))
        moved = attrs.evolve(shipments.get("s-2"), tracking_number="SF1")
        with pytest.raises(Conflict):
            shipments.save(moved, 1)
        assert shipments.by_tracking_number("SF", "SF2").id == "s-2"
        assert shipments.by_tracking_number("SF", "SF1").id == "s-1"

    def test_a_save_drops_the_look_ups_the_aggregate_lost(self, database):
        shipments = SqliteShipmentRepository(database)
        shipments.add(make_shipment("s-1", tracking_number="SF1"))
        renumbered = attrs.evolve(shipments.get("s-1"), tracking_number="SF9")
        shipments.save(renumbered, 1)
        with pytest.raises(NotFound):
            shipments.by_tracking_number("SF", "SF1")
        assert shipments.by_tracking_number("SF", "SF9").id == "s-1"


# --------------------------------------------------------------------------- the outbox


class TestEventsInTheOutbox:
    def test_add_and_save_write_the_aggregates_events_published_after_commit(self, database):
        sink = RecordingPublisher()
        outbox, teams = SqliteOutbox(database, sink), SqliteTeamRepository(database)
        team = make_team()
        teams.add(team)
        assert outbox.pending() == 1
        outbox.publish(team.collect_events())
        assert [(e.aggregate_id, e.version) for e in sink.published] == [("t-1", 1)]
        assert outbox.pending() == 0

    def test_a_rolled_back_unit_of_work_leaves_neither_the_aggregate_nor_its_events(self, database):
        teams = SqliteTeamRepository(database)
        with pytest.raises(Abandoned):
            abandoned(database, lambda: teams.add(make_team()))
        assert len(teams) == 0
        assert SqliteOutbox(database).pending() == 0
        assert database.read("SELECT count(*) FROM aggregate_lookups") == [(0,)]

    def test_a_crash_before_publishing_is_relayed_later(self, database):
        SqliteTeamRepository(database).add(make_team())
        sink = RecordingPublisher()
        assert SqliteOutbox(database, sink).relay() == 1
        assert [e.name for e in sink.published] == ["TeamOpened"]

    def test_two_aggregates_sharing_an_id_cannot_lose_an_event_silently(self, database):
        SqliteOrderRepository(database).add(make_order("o-1"))
        with pytest.raises(Conflict) as caught:
            SqlitePaymentRepository(database).add(make_payment("o-1", "o-1"))
        assert "unique across kinds" in str(caught.value)
        assert len(SqlitePaymentRepository(database)) == 0

    def test_events_saved_twice_before_being_collected_are_written_once(self, database):
        teams = SqliteTeamRepository(database)
        team = make_team()
        teams.add(team)
        team.join(Actor.buyer("bob"), order_id="o-bob", now=CONTRACT_TIME)
        teams.save(team, 1)
        assert SqliteOutbox(database).pending() == 2


# --------------------------------------------------------------------------- the ledger


class TestTheLedgerOnSqlite:
    def test_a_payment_and_its_postings_are_stored_together_or_not_at_all(self, database):
        payments, ledger = SqlitePaymentRepository(database), SqliteLedger(database)
        with pytest.raises(Abandoned):
            abandoned(
                database,
                lambda: payments.add(make_payment()),
                lambda: ledger.append([posting("a")]),
            )
        assert (len(payments), len(ledger), ledger.balances("CNY")) == (0, 0, {})
        with database.transaction():
            payments.add(make_payment())
            ledger.append([posting("a")])
        assert (len(payments), len(ledger)) == (1, 1)

    def test_postings_are_append_only_in_the_table_itself(self, database):
        SqliteLedger(database).append([posting("a")])
        for statement in ("UPDATE ledger_postings SET minor = 1", "DELETE FROM ledger_postings"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                database.connection.execute(statement)
        assert SqliteLedger(database).postings("o-1") == [posting("a")]

    def test_an_empty_batch_appends_nothing(self, database):
        assert SqliteLedger(database).append([]) == 0

    def test_postings_and_balances_survive_reopening_the_file(self, tmp_path):
        with SqliteDatabase(tmp_path / "book.db") as database:
            SqliteLedger(database).append(
                [posting("a"), posting("b", 40, source=ESCROW, target=MERCHANT)]
            )
        with SqliteDatabase(tmp_path / "book.db") as database:
            ledger = SqliteLedger(database)
            assert [p.key for p in ledger.all()] == ["a", "b"]
            assert ledger.balances("CNY") == {
                BUYER: Money(-100, "CNY"),
                ESCROW: Money(60, "CNY"),
                MERCHANT: Money(40, "CNY"),
            }

    @settings(max_examples=25, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(1, 10_000),
                st.sampled_from([BUYER, ESCROW, MERCHANT]),
                st.sampled_from([BUYER, ESCROW, MERCHANT]),
                st.sampled_from(["CNY", "USD"]),
            ),
            max_size=12,
        )
    )
    def test_the_balance_table_always_equals_the_sum_of_the_postings(self, moves):
        with SqliteDatabase(":memory:") as database:
            ledger = SqliteLedger(database)
            for n, (minor, source, target, currency) in enumerate(moves):
                if source != target:
                    ledger.append(
                        [
                            Posting(
                                f"k{n}",
                                "o-1",
                                "1",
                                source,
                                target,
                                Money(minor, currency),
                                Movement.CAPTURE,
                                CONTRACT_TIME,
                            )
                        ]
                    )
            summed = database.read(
                "SELECT kind, owner, currency, sum(minor) FROM ("
                " SELECT target_kind AS kind, target_owner AS owner, currency, minor"
                " FROM ledger_postings UNION ALL"
                " SELECT source_kind, source_owner, currency, -minor FROM ledger_postings)"
                " GROUP BY kind, owner, currency ORDER BY 1, 2, 3"
            )
            kept = database.read(
                "SELECT account_kind, account_owner, currency, minor FROM ledger_balances"
                " ORDER BY 1, 2, 3"
            )
            assert kept == summed


# --------------------------------------------------------------------------- limits and credit


class TestPromotionLimitsAndCreditOnSqlite:
    def test_the_promotion_ledger_reports_a_reservations_state(self, database):
        ledger = SqlitePromotionLedger(database)
        assert ledger.state("r-1") is None
        ledger.reserve("r-1", [LimitClaim("k", 1, 2)])
        ledger.commit("r-1")
        assert ledger.state("r-1") == "committed"

    def test_limits_and_draws_survive_reopening_the_file(self, tmp_path):
        with SqliteDatabase(tmp_path / "shop.db") as database:
            SqlitePromotionLedger(database).reserve("r-1", [LimitClaim("k", 2, 3)])
            SqliteCreditLines(database, {"alice": cny("50.00")}).draw("d-1", "alice", cny("20.00"))
        with SqliteDatabase(tmp_path / "shop.db") as database:
            assert SqlitePromotionLedger(database).usage(["k"]) == {"k": 2}
            lines = SqliteCreditLines(database)
            assert lines.available("alice") == cny("30.00")
            lines.draw("d-1", "alice", cny("20.00"))  # a repeat, from before the reopening
            assert lines.drawn("alice") == cny("20.00")

    def test_a_grant_may_lower_a_limit_below_what_is_drawn_and_nothing_is_available(self, database):
        lines = SqliteCreditLines(database, {"alice": cny("50.00")})
        lines.draw("d-1", "alice", cny("40.00"))
        lines.grant("alice", cny("10.00"))
        assert (lines.limit("alice"), lines.available("alice")) == (cny("10.00"), cny("0.00"))

    @pytest.mark.parametrize("limit", [Money(-1, "CNY"), 100])
    def test_a_grant_of_a_negative_or_non_money_limit_is_refused(self, database, limit):
        with pytest.raises(InvalidInput):
            SqliteCreditLines(database).grant("alice", limit)

    def test_a_grant_in_another_currency_is_refused(self, database):
        lines = SqliteCreditLines(database, {"alice": cny("50.00")})
        with pytest.raises(CurrencyMismatch):
            lines.grant("alice", Money(100, "USD"))
        assert lines.limit("alice") == cny("50.00")


# --------------------------------------------------------------------------- the codec


@attrs.frozen
class Pairs:
    pairs: tuple[tuple[str, Money], ...]


class TestTheCodecOnAggregates:
    def test_fixed_length_tuples_round_trip(self):
        codec = JsonCodec()
        value = Pairs((("1", cny("1.00")), ("2", cny("2.50"))))
        name, text = codec.encode_aggregate(value)
        assert codec.decode_aggregate(Pairs, name, text) == value

    def test_values_round_trip_by_their_declared_type(self):
        codec = JsonCodec()
        claims = (LimitClaim("k", 1, 2), LimitClaim("j", 3, 4, until_paid=True))
        text = codec.encode_value(tuple[LimitClaim, ...], claims)
        assert codec.decode_value(tuple[LimitClaim, ...], text) == claims

    def test_anything_but_an_attrs_instance_is_refused_as_an_aggregate(self):
        with pytest.raises(InvalidInput):
            JsonCodec().encode_aggregate({"id": "x"})


@attrs.frozen
class Unstorable:
    id: str
    payload: bytes
    version: int = 1


class SqliteUnstorableRepository(SqliteAggregateRepository[Unstorable]):
    kind = "unstorable"
    aggregate_type = Unstorable


class TestRefusals:
    def test_an_aggregate_with_a_field_the_codec_cannot_store_is_refused_by_name(self, database):
        with pytest.raises(DefinitionError) as caught:
            SqliteUnstorableRepository(database).add(Unstorable("u-1", b""))
        assert "Unstorable.payload: type bytes cannot be stored" in str(caught.value)
        assert database.read("SELECT count(*) FROM aggregates") == [(0,)]

    def test_get_of_an_id_that_is_not_text_raises_not_found(self, database):
        with pytest.raises(NotFound):
            SqlitePaymentRepository(database).get(42)  # type: ignore[arg-type]

    @pytest.mark.parametrize("limit", [-1, 1.5, True])
    def test_due_refuses_a_limit_that_is_not_a_whole_number(self, database, limit):
        with pytest.raises(InvalidInput):
            SqlitePaymentRepository(database).due(CONTRACT_TIME, limit=limit)

    def test_a_draw_of_something_that_is_not_money_is_refused(self, database):
        lines = SqliteCreditLines(database, {"alice": cny("50.00")})
        with pytest.raises(InvalidInput):
            lines.draw("d-1", "alice", 100)  # type: ignore[arg-type]
        assert lines.drawn("alice") == cny("0.00")
