"""Our SQLite adapters pass every port contract, on a real file, exactly as a host's would.

Then what SQLite adds: the schema and its version, transactions and units of work, data that
survives reopening the file, writers racing on separate connections, a store that stays
busy, and the outbox (same transaction as the order, published after commit, recovered after
a crash, never for a rolled-back save).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from ecommerce_core import Actor, Conflict, DefinitionError, InvalidInput, OrderService, OrderState
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.adapters.sqlite import (
    SCHEMA_VERSION,
    SqliteDatabase,
    SqliteIdempotencyStore,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.adapters.sqlite_aggregates import (
    SqliteAfterSalesRepository,
    SqlitePaymentRepository,
    SqliteShipmentRepository,
    SqliteTeamRepository,
)
from ecommerce_core.adapters.sqlite_books import (
    SqliteCreditLines,
    SqliteLedger,
    SqlitePromotionLedger,
)
from ecommerce_core.adapters.sqlite_campaigns import (
    SqliteAuctionRepository,
    SqliteDrawRoundRepository,
    SqliteGroupBuyRepository,
    SqliteRebateRepository,
)
from ecommerce_core.demo import DEMO_PRODUCTS
from ecommerce_core.errors import (
    IdempotencyConflict,
    IncompatibleSchema,
    NotFound,
    OutOfStock,
    RuleViolation,
    StorageBusy,
    VersionConflict,
)
from ecommerce_core.ports import StockItem
from ecommerce_core.testing.contracts import (
    AfterSalesRepositoryContract,
    AuctionRepositoryContract,
    DrawRoundRepositoryContract,
    EventPublisherContract,
    GroupBuyRepositoryContract,
    IdempotencyStoreContract,
    InventoryContract,
    OrderRepositoryContract,
    PromotionLedgerContract,
    RebateRepositoryContract,
    ShipmentRepositoryContract,
    TeamRepositoryContract,
    assert_same_order,
    make_order,
)
from ecommerce_core.testing.payment_contracts import (
    CreditLinesContract,
    LedgerContract,
    PaymentRepositoryContract,
)

ROOT = Path(__file__).resolve().parents[2]


class SqliteFiles:
    """Gives each test a folder and a fresh database file per call, all closed afterwards."""

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path):
        self.folder = tmp_path
        self.opened: list[SqliteDatabase] = []
        yield
        for database in self.opened:
            database.close()

    def fresh_database(self, **options) -> SqliteDatabase:
        return self.open(self.folder / f"shop-{len(self.opened)}.db", **options)

    def open(self, path, **options) -> SqliteDatabase:
        database = SqliteDatabase(path, **options)
        self.opened.append(database)
        return database


# --------------------------------------------------------------------------- contracts


class TestSqliteOrderRepositoryContract(SqliteFiles, OrderRepositoryContract):
    def make_repository(self):
        return SqliteOrderRepository(self.fresh_database())


class TestSqliteInventoryContract(SqliteFiles, InventoryContract):
    def make_inventory(self):
        return SqliteInventory(self.fresh_database())


class TestSqliteIdempotencyStoreContract(SqliteFiles, IdempotencyStoreContract):
    def make_store(self):
        return SqliteIdempotencyStore(self.fresh_database())


class TestSqliteOutboxContract(SqliteFiles, EventPublisherContract):
    def make_publisher(self):
        return SqliteOutbox(self.fresh_database(), RecordingPublisher())


class TestSqlitePaymentRepositoryContract(SqliteFiles, PaymentRepositoryContract):
    def make_repository(self):
        return SqlitePaymentRepository(self.fresh_database())


class TestSqliteShipmentRepositoryContract(SqliteFiles, ShipmentRepositoryContract):
    def make_repository(self):
        return SqliteShipmentRepository(self.fresh_database())


class TestSqliteAfterSalesRepositoryContract(SqliteFiles, AfterSalesRepositoryContract):
    def make_repository(self):
        return SqliteAfterSalesRepository(self.fresh_database())


class TestSqliteTeamRepositoryContract(SqliteFiles, TeamRepositoryContract):
    def make_repository(self):
        return SqliteTeamRepository(self.fresh_database())


class TestSqliteLedgerContract(SqliteFiles, LedgerContract):
    def make_ledger(self):
        return SqliteLedger(self.fresh_database())


class TestSqlitePromotionLedgerContract(SqliteFiles, PromotionLedgerContract):
    def make_ledger(self):
        return SqlitePromotionLedger(self.fresh_database())


class TestSqliteCreditLinesContract(SqliteFiles, CreditLinesContract):
    def make_credit_lines(self, limits):
        return SqliteCreditLines(self.fresh_database(), limits)


class TestSqliteAuctionRepositoryContract(SqliteFiles, AuctionRepositoryContract):
    def make_repository(self):
        return SqliteAuctionRepository(self.fresh_database())


class TestSqliteDrawRoundRepositoryContract(SqliteFiles, DrawRoundRepositoryContract):
    def make_repository(self):
        return SqliteDrawRoundRepository(self.fresh_database())


class TestSqliteGroupBuyRepositoryContract(SqliteFiles, GroupBuyRepositoryContract):
    def make_repository(self):
        return SqliteGroupBuyRepository(self.fresh_database())


class TestSqliteRebateRepositoryContract(SqliteFiles, RebateRepositoryContract):
    def make_repository(self):
        return SqliteRebateRepository(self.fresh_database())


# --------------------------------------------------------------------------- helpers


def paid(order):
    order.pay(Actor.buyer(order.buyer_id), amount=order.total, reference="t-1", now=order.placed_at)
    return order


def outbox_rows(database):
    return database.read("SELECT aggregate_id, version, type, published FROM outbox ORDER BY seq")


def keys(events):
    return [(event.aggregate_id, event.version, event.name) for event in events]


class Abandoned(Exception):
    pass


def abandoned(database, *steps):
    """Run the steps in one unit of work, then fail so that it rolls back."""
    with database.transaction():
        for step in steps:
            step()
        raise Abandoned


class FailingSink:
    def __init__(self):
        self.attempts = 0

    def publish(self, events):
        self.attempts += 1
        raise ConnectionError("the bus is down")


# --------------------------------------------------------------------------- the schema


class TestSchema(SqliteFiles):
    def test_a_new_file_gets_the_current_schema_version_wal_and_the_options(self):
        database = self.fresh_database(busy_timeout=2.5, synchronous="FULL")
        assert (
            database.schema_version == SCHEMA_VERSION == 3
        )  # 3: aggregates, ledger, limits, credit
        assert database.read("PRAGMA journal_mode") == [("wal",)]
        assert database.read("PRAGMA busy_timeout") == [(2500,)]
        assert database.read("PRAGMA synchronous") == [(2,)]
        tables = {row[0] for row in database.read("SELECT name FROM sqlite_master")}
        assert {"orders", "stock", "reservations", "idempotency_keys", "outbox"} <= tables
        assert {"orders_due", "outbox_pending", "schema_version"} <= tables

    def test_connections_opening_a_new_file_at_once_all_get_one_schema(self):
        path = self.folder / "new.db"
        barrier, seen, lock = threading.Barrier(6), [], threading.Lock()

        def open_it():
            barrier.wait()
            with SqliteDatabase(path) as database:
                found = (database.schema_version, database.read("PRAGMA journal_mode")[0][0])
            with lock:
                seen.append(found)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [(SCHEMA_VERSION, "wal")] * 6
        with sqlite3.connect(path) as raw:
            assert raw.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
        raw.close()

    def test_synchronous_is_normal_by_default(self):
        assert self.fresh_database().read("PRAGMA synchronous") == [(1,)]

    def test_the_due_query_uses_the_deadline_index(self):
        database = self.fresh_database()
        plan = database.read(
            "EXPLAIN QUERY PLAN SELECT id FROM orders WHERE deadline_at IS NOT NULL "
            "AND deadline_at <= ? ORDER BY deadline_at, id LIMIT ?",
            (0, 10),
        )
        assert any("orders_due" in row[-1] for row in plan), plan

    def test_reopening_a_file_keeps_its_schema_and_data(self):
        path = self.folder / "shop.db"
        first = self.open(path)
        SqliteOrderRepository(first).add(make_order("o-1"))
        first.close()
        again = self.open(path)
        assert again.schema_version == SCHEMA_VERSION
        assert SqliteOrderRepository(again).get("o-1").state == OrderState.PENDING_PAYMENT

    def test_a_file_from_a_newer_library_is_refused_and_left_untouched(self):
        path = self.folder / "newer.db"
        self.open(path).close()
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        raw.close()
        before = path.read_bytes()
        with pytest.raises(IncompatibleSchema) as caught:
            SqliteDatabase(path)
        error = caught.value
        assert (error.found, error.supported, error.location) == (
            SCHEMA_VERSION + 1,
            SCHEMA_VERSION,
            str(path),
        )
        assert "upgrade ecommerce-core" in str(error)
        assert isinstance(error, DefinitionError)
        assert path.read_bytes() == before

    def test_a_file_at_an_older_version_is_upgraded_when_opened(self):
        path = self.folder / "older.db"
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            raw.execute("INSERT INTO schema_version VALUES (0)")
        raw.close()
        database = self.open(path)
        assert database.schema_version == SCHEMA_VERSION
        SqliteOrderRepository(database).add(make_order("o-1"))

    def test_a_file_that_is_not_a_database_is_refused(self):
        path = self.folder / "notes.txt"
        path.write_bytes(b"these are my shopping notes, not a database\n" * 50)
        with pytest.raises(IncompatibleSchema) as caught:
            SqliteDatabase(path)
        assert caught.value.found is None
        assert "not an SQLite database" in str(caught.value)

    def test_a_database_with_clashing_tables_of_its_own_is_refused(self):
        path = self.folder / "host.db"
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE orders (number INTEGER)")
        raw.close()
        with pytest.raises(IncompatibleSchema) as caught:
            SqliteDatabase(path)
        assert "orders" in str(caught.value)
        with sqlite3.connect(path) as raw:
            names = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
        raw.close()
        assert names == {"orders"}

    def test_a_database_with_other_tables_of_the_host_is_shared(self):
        path = self.folder / "host.db"
        with sqlite3.connect(path) as raw:
            raw.execute("CREATE TABLE customers (id TEXT)")
        raw.close()
        database = self.open(path)
        assert database.schema_version == SCHEMA_VERSION
        assert database.read("SELECT count(*) FROM customers") == [(0,)]

    def test_a_corrupt_database_raises_the_driver_error_it_is(self):
        path = self.folder / "corrupt.db"
        self.open(path).close()
        data = bytearray(path.read_bytes())
        data[100:] = b"\xff" * (len(data) - 100)  # the schema page after the file header
        path.write_bytes(bytes(data))
        with pytest.raises(sqlite3.DatabaseError) as caught:
            SqliteDatabase(path)
        assert not isinstance(caught.value, IncompatibleSchema)
        assert "malformed" in str(caught.value)

    def test_the_host_may_read_through_the_connection(self):
        database = self.fresh_database()
        SqliteOrderRepository(database).add(make_order("o-1"))
        rows = database.connection.execute("SELECT id, state FROM orders").fetchall()
        assert rows == [("o-1", OrderState.PENDING_PAYMENT)]

    def test_a_mistake_in_a_query_is_raised_as_it_is_not_as_busy(self):
        with pytest.raises(sqlite3.OperationalError) as caught:
            self.fresh_database().read("SELECT nothing FROM nowhere")
        assert not isinstance(caught.value, StorageBusy)

    @pytest.mark.parametrize(
        "options",
        [{"synchronous": "SOMETIMES"}, {"busy_timeout": -1}, {"busy_timeout": "5"}],
    )
    def test_bad_options_are_refused_before_touching_the_file(self, options):
        path = self.folder / "never.db"
        with pytest.raises(InvalidInput):
            SqliteDatabase(path, **options)
        assert not path.exists()

    def test_an_in_memory_database_works_for_tests(self):
        with SqliteDatabase(":memory:") as database:
            repository = SqliteOrderRepository(database)
            repository.add(make_order("o-1"))
            assert len(repository) == 1
            assert "memory" in repr(database)

    def test_closing_through_the_context_manager(self):
        with SqliteDatabase(self.folder / "shop.db") as database:
            pass
        with pytest.raises(sqlite3.ProgrammingError):
            database.read("SELECT 1")


# --------------------------------------------------------------------------- transactions


class TestTransactions(SqliteFiles):
    def test_a_unit_of_work_stores_all_of_its_writes_or_none(self):
        database = self.fresh_database()
        repository, inventory = SqliteOrderRepository(database), SqliteInventory(database)
        inventory.receive("tea-01", 5)
        with pytest.raises(Abandoned):
            abandoned(
                database,
                lambda: inventory.reserve("o-1", [StockItem("1", "tea-01", 2)]),
                lambda: repository.add(make_order("o-1")),
            )
        assert (inventory.reserved("tea-01"), len(repository)) == (0, 0)
        assert outbox_rows(database) == []
        with database.transaction():
            inventory.reserve("o-1", [StockItem("1", "tea-01", 2)])
            repository.add(make_order("o-1"))
        assert (inventory.reserved("tea-01"), len(repository)) == (2, 1)

    def test_a_refused_command_inside_a_unit_of_work_undoes_only_its_own_writes(self):
        database = self.fresh_database()
        inventory = SqliteInventory(database)
        inventory.receive("tea-01", 3)
        inventory.receive("cup-01", 1)
        with database.transaction():
            inventory.reserve("r-1", [StockItem("1", "tea-01", 2)])
            with pytest.raises(OutOfStock):
                inventory.reserve("r-2", [StockItem("1", "tea-01", 1), StockItem("2", "cup-01", 2)])
            assert database.in_transaction
        assert [inventory.reserved(sku) for sku in ("tea-01", "cup-01")] == [2, 0]

    def test_a_service_command_in_a_host_unit_of_work_is_undone_with_it(self):
        database = self.fresh_database()
        sink = RecordingPublisher()
        inventory = SqliteInventory(database)
        inventory.receive("tea-01", 5)
        service = OrderService(
            orders=SqliteOrderRepository(database),
            inventory=inventory,
            catalog=InMemoryCatalog(DEMO_PRODUCTS),
            payments=ScriptedPaymentGateway(),
            clock=ManualClock(),
            ids=SequentialIds(),
            publisher=SqliteOutbox(database, sink),
        )
        alice = Actor.buyer("alice")
        with pytest.raises(Abandoned):
            abandoned(database, lambda: service.buy_now(alice, "tea-01", 2))
        assert (inventory.reserved("tea-01"), len(service.orders), sink.published) == (0, 0, [])
        assert outbox_rows(database) == []
        with database.transaction():
            order = service.buy_now(alice, "tea-01", 2)
            assert sink.published == []  # not before the commit
        assert keys(sink.published) == [(order.id, 1, "OrderPlaced")]
        assert inventory.reserved("tea-01") == 2

    def test_after_commit_callbacks_run_after_the_outermost_commit_only(self):
        database = self.fresh_database()
        calls = []
        with database.transaction():
            database.after_commit(lambda: calls.append("outer"))
            with database.transaction():
                database.after_commit(lambda: calls.append("kept"))
            with pytest.raises(Abandoned):
                abandoned(database, lambda: database.after_commit(lambda: calls.append("undone")))
            assert calls == []
        assert calls == ["outer", "kept"]
        with pytest.raises(Abandoned):
            abandoned(database, lambda: database.after_commit(lambda: calls.append("never")))
        assert calls == ["outer", "kept"]
        database.after_commit(lambda: calls.append("now"))
        assert calls == ["outer", "kept", "now"]
        assert not database.in_transaction


class TestBusyStore(SqliteFiles):
    def test_a_writer_locked_out_past_the_timeout_gets_storage_busy_and_changes_nothing(self):
        path = self.folder / "shop.db"
        holder = self.open(path)
        waiter = self.open(path, busy_timeout=0.05)
        SqliteInventory(waiter).receive("tea-01", 5)
        inventory = SqliteInventory(waiter)
        with holder.transaction():
            with pytest.raises(StorageBusy) as caught:
                inventory.reserve("r-1", [StockItem("1", "tea-01", 2)])
            assert isinstance(caught.value, Conflict)
            assert (caught.value.operation, caught.value.waited) == ("reserve", 0.05)
            assert inventory.available("tea-01") == 5  # readers are never blocked in WAL
        assert inventory.reserved("tea-01") == 0
        inventory.reserve("r-1", [StockItem("1", "tea-01", 2)])
        assert inventory.reserved("tea-01") == 2

    def test_a_busy_save_raises_storage_busy_and_the_order_stays_as_stored(self):
        path = self.folder / "shop.db"
        holder, waiter = self.open(path), self.open(path, busy_timeout=0.05)
        repository = SqliteOrderRepository(waiter)
        repository.add(make_order("o-1"))
        order = paid(repository.get("o-1"))
        with holder.transaction(), pytest.raises(StorageBusy):
            repository.save(order, 1)
        assert repository.get("o-1").state == OrderState.PENDING_PAYMENT
        assert [row[2] for row in outbox_rows(waiter)] == ["OrderPlaced"]


# --------------------------------------------------------------------------- persistence


class TestPersistence(SqliteFiles):
    def test_everything_survives_closing_and_reopening_the_file(self):
        path = self.folder / "shop.db"
        database = self.open(path)
        orders, inventory = SqliteOrderRepository(database), SqliteInventory(database)
        keys_store, outbox = SqliteIdempotencyStore(database), SqliteOutbox(database)
        order = paid(make_order("o-1"))
        orders.add(order)
        outbox.publish(order.collect_events())
        orders.add(make_order("o-2", now=order.placed_at + timedelta(minutes=1)))
        inventory.receive("tea-01", 10)
        inventory.reserve("o-1", [StockItem("1", "tea-01", 2)])
        inventory.commit("o-1")
        inventory.reserve("o-2", [StockItem("1", "tea-01", 3)])
        keys_store.remember("k-1", "fp", '{"order": "o-1"}')
        database.close()

        again = self.open(path)
        orders, inventory = SqliteOrderRepository(again), SqliteInventory(again)
        assert_same_order(orders.get("o-1"), order)
        assert orders.due(order.placed_at + timedelta(hours=1)) == ["o-2"]
        assert (inventory.on_hand("tea-01"), inventory.reserved("tea-01")) == (8, 3)
        inventory.reserve("o-2", [StockItem("1", "tea-01", 3)])  # still a repeat: no-op
        assert inventory.reserved("tea-01") == 3
        assert SqliteIdempotencyStore(again).lookup("k-1", "fp") == '{"order": "o-1"}'
        assert SqliteOutbox(again).pending() == 1  # o-2's placement was never published

    def test_all_and_len_list_the_stored_orders(self):
        repository = SqliteOrderRepository(self.fresh_database())
        for order_id in ("o-b", "o-a"):
            repository.add(make_order(order_id))
        assert [order.id for order in repository.all()] == ["o-a", "o-b"]
        assert len(repository) == 2

    @pytest.mark.parametrize("limit", [-1, 1.0, None])
    def test_due_refuses_a_limit_that_is_not_a_whole_number(self, limit):
        repository = SqliteOrderRepository(self.fresh_database())
        repository.add(make_order("o-1"))
        with pytest.raises(InvalidInput):
            repository.due(make_order().placed_at + timedelta(days=1), limit=limit)

    def test_due_with_limit_zero_returns_nothing(self):
        repository = SqliteOrderRepository(self.fresh_database())
        repository.add(make_order("o-1"))
        assert repository.due(make_order().placed_at + timedelta(days=1), limit=0) == []

    def test_get_of_an_id_that_is_not_text_raises_not_found(self):
        repository = SqliteOrderRepository(self.fresh_database())
        with pytest.raises(NotFound):
            repository.get(["o-1"])

    def test_a_stored_order_of_an_unknown_process_names_the_mapping_to_fix(self):
        database = self.fresh_database()
        SqliteOrderRepository(database).add(make_order("o-1"))
        with pytest.raises(DefinitionError) as caught:
            SqliteOrderRepository(database, processes={}).get("o-1")
        assert "order.standard" in str(caught.value)


class TestRacingWriters(SqliteFiles):
    def test_two_connections_saving_from_one_version_one_conflicts(self):
        path = self.folder / "shop.db"
        first, second = (
            SqliteOrderRepository(self.open(path)),
            SqliteOrderRepository(self.open(path)),
        )
        first.add(make_order("o-1"))
        mine, theirs = first.get("o-1"), second.get("o-1")
        paid(mine)
        theirs.cancel(Actor.buyer("b-1"), reason="changed my mind", now=theirs.placed_at)
        first.save(mine, 1)
        with pytest.raises(VersionConflict) as caught:
            second.save(theirs, 1)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert second.get("o-1").state == OrderState.AWAITING_SHIPMENT

    def test_threads_racing_a_save_on_their_own_connections_let_exactly_one_win(self):
        path = self.folder / "shop.db"
        setup = self.open(path)
        SqliteOrderRepository(setup).add(make_order("o-1"))
        rounds, writers = 10, 4
        outcomes: list[str] = []
        lock = threading.Lock()

        def writer(barrier, round_number):
            with SqliteDatabase(path) as database:
                repository = SqliteOrderRepository(database)
                order = repository.get("o-1")
                version = order.version
                order.version += 1  # a command that changed it, as far as the store can tell
                order.state = f"round-{round_number}"
                barrier.wait()
                try:
                    repository.save(order, version)
                except VersionConflict:
                    result = "conflict"
                else:
                    result = "saved"
                with lock:
                    outcomes.append(result)

        for round_number in range(rounds):
            barrier = threading.Barrier(writers)
            threads = [
                threading.Thread(target=writer, args=(barrier, round_number))
                for _ in range(writers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert outcomes.count("saved") == rounds
        assert outcomes.count("conflict") == rounds * (writers - 1)
        stored = setup.read("SELECT version, state FROM orders WHERE id = 'o-1'")
        assert stored == [(1 + rounds, f"round-{rounds - 1}")]


# --------------------------------------------------------------------------- inventory


class TestSqliteInventory(SqliteFiles):
    def test_the_table_itself_refuses_to_oversell(self):
        database = self.fresh_database()
        SqliteInventory(database).receive("tea-01", 2)
        with pytest.raises(sqlite3.IntegrityError), database.transaction() as connection:
            connection.execute("UPDATE stock SET reserved = 3 WHERE sku = 'tea-01'")
        with pytest.raises(sqlite3.IntegrityError), database.transaction() as connection:
            connection.execute("UPDATE stock SET on_hand = -1 WHERE sku = 'tea-01'")
        assert SqliteInventory(database).available("tea-01") == 2

    def test_a_sold_out_sku_is_refused_without_taking_the_write_lock(self):
        path = self.folder / "shop.db"
        holder, buyer = self.open(path), self.open(path, busy_timeout=0.05)
        inventory = SqliteInventory(buyer)
        inventory.receive("tea-01", 1)
        inventory.reserve("r-1", [StockItem("1", "tea-01", 1)])
        with holder.transaction():
            with pytest.raises(OutOfStock) as caught:
                inventory.reserve("r-2", [StockItem("1", "tea-01", 1)])
            assert caught.value.available == 0
            inventory.reserve("r-1", [StockItem("1", "tea-01", 1)])  # a repeat: no write
            with pytest.raises(StorageBusy):
                inventory.receive("tea-01", 1)

    def test_inside_a_unit_of_work_a_repeat_is_a_no_op_and_other_items_conflict(self):
        database = self.fresh_database()
        inventory = SqliteInventory(database)
        inventory.receive("tea-01", 5)
        with database.transaction():
            inventory.reserve("r-1", [StockItem("1", "tea-01", 2)])
            inventory.reserve("r-1", [StockItem("1", "tea-01", 2)])
            with pytest.raises(IdempotencyConflict):
                inventory.reserve("r-1", [StockItem("1", "tea-01", 3)])
        assert inventory.reserved("tea-01") == 2

    def test_a_short_sku_found_under_the_write_lock_reports_the_real_count(self):
        path = self.folder / "shop.db"
        ours, theirs = SqliteInventory(self.open(path)), SqliteInventory(self.open(path))
        ours.receive("tea-01", 3)
        theirs.reserve("r-theirs", [StockItem("1", "tea-01", 2)])
        # In a unit of work, with no snapshot check first:
        with ours.database.transaction(), pytest.raises(OutOfStock) as caught:
            ours.reserve("r-ours", [StockItem("2", "cup-01", 1), StockItem("1", "tea-01", 2)])
        assert (caught.value.sku, caught.value.requested, caught.value.available) == (
            "cup-01",
            1,
            0,
        )
        with ours.database.transaction(), pytest.raises(OutOfStock) as caught:
            ours.reserve("r-ours", [StockItem("1", "tea-01", 2)])
        assert (caught.value.requested, caught.value.available) == (2, 1)
        assert ours.reserved("tea-01") == 2


# --------------------------------------------------------------------------- the outbox


class TestOutbox(SqliteFiles):
    def test_add_and_save_write_pending_events_in_the_same_transaction(self):
        database = self.fresh_database()
        repository = SqliteOrderRepository(database)
        order = make_order("o-1")
        repository.add(order)
        assert outbox_rows(database) == [("o-1", 1, "OrderPlaced", 0)]
        loaded = paid(repository.get("o-1"))
        repository.save(loaded, 1)
        assert outbox_rows(database) == [
            ("o-1", 1, "OrderPlaced", 0),
            ("o-1", 2, "OrderPaid", 0),
        ]
        assert [event.name for event in order.events] == ["OrderPlaced"]  # not taken

    def test_a_save_that_fails_leaves_no_outbox_rows(self):
        database = self.fresh_database()
        repository = SqliteOrderRepository(database)
        repository.add(make_order("o-1"))
        stale, fresh = repository.get("o-1"), repository.get("o-1")
        repository.save(paid(fresh), 1)
        stale.cancel(Actor.buyer("b-1"), reason="changed my mind", now=stale.placed_at)
        with pytest.raises(VersionConflict):
            repository.save(stale, 1)
        assert [row[2] for row in outbox_rows(database)] == ["OrderPlaced", "OrderPaid"]
        with pytest.raises(Conflict):
            repository.add(make_order("o-1"))
        assert len(outbox_rows(database)) == 2

    def test_events_saved_twice_before_being_collected_are_written_once(self):
        database = self.fresh_database()
        repository = SqliteOrderRepository(database)
        order = make_order("o-1")
        repository.add(order)
        repository.save(paid(order), 1)  # still holds OrderPlaced: written once
        assert [(row[1], row[2]) for row in outbox_rows(database)] == [
            (1, "OrderPlaced"),
            (2, "OrderPaid"),
        ]

    def test_publish_forwards_to_the_sink_and_marks_the_rows(self):
        database = self.fresh_database()
        sink = RecordingPublisher()
        repository, outbox = SqliteOrderRepository(database), SqliteOutbox(database, sink)
        order = paid(make_order("o-1"))
        repository.add(order)
        events = order.collect_events()
        outbox.publish(events)
        assert sink.published == list(events)
        assert [row[3] for row in outbox_rows(database)] == [1, 1]
        assert outbox.pending() == 0
        outbox.publish(events)  # already delivered: not sent twice
        assert outbox.relay() == 0
        assert sink.published == list(events)

    def test_the_default_sink_records_what_it_is_given(self):
        outbox = SqliteOutbox(self.fresh_database())
        events = make_order("o-1").collect_events()
        outbox.publish(events)
        assert outbox.sink.published == list(events)

    def test_a_crash_between_commit_and_publish_is_relayed_exactly_once(self):
        path = self.folder / "shop.db"
        database = self.open(path)
        order = paid(make_order("o-1"))
        SqliteOrderRepository(database).add(order)
        database.close()  # the process died before publishing
        sink = RecordingPublisher()
        outbox = SqliteOutbox(self.open(path), sink)
        assert outbox.pending() == 2
        assert outbox.relay() == 2
        assert keys(sink.published) == [("o-1", 1, "OrderPlaced"), ("o-1", 2, "OrderPaid")]
        assert sink.published == list(order.events)  # decoded back into equal events
        assert outbox.relay() == 0
        assert len(sink.published) == 2

    def test_a_process_killed_after_commit_is_recovered_by_relay_exactly_once(self):
        path = self.folder / "shop.db"
        script = textwrap.dedent(
            f"""
            import os
            from ecommerce_core.adapters.sqlite import *
            from ecommerce_core.testing import make_order

            class Crash:
                def publish(self, events):
                    os._exit(17)  # dies with the events committed but not published

            database = SqliteDatabase({str(path)!r})
            order = make_order("o-1")
            SqliteOrderRepository(database).add(order)
            SqliteOutbox(database, Crash()).publish(order.collect_events())
            """
        )
        paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        result = subprocess.run(  # noqa: S603  # our own code, run by this interpreter
            [sys.executable, "-c", script], env=env, capture_output=True, check=False
        )
        assert result.returncode == 17, result.stderr
        sink = RecordingPublisher()
        outbox = SqliteOutbox(self.open(path), sink)
        assert outbox.relay() == 1
        assert outbox.relay() == 0
        assert keys(sink.published) == [("o-1", 1, "OrderPlaced")]

    def test_a_failing_sink_leaves_events_pending_and_is_logged_not_raised(self, caplog):
        database = self.fresh_database()
        sink = FailingSink()
        outbox = SqliteOutbox(database, sink)
        order = make_order("o-1")
        SqliteOrderRepository(database).add(order)
        with caplog.at_level(logging.ERROR, logger="ecommerce_core.adapters.sqlite"):
            outbox.publish(order.collect_events())
        assert sink.attempts == 1
        assert "stay pending" in caplog.text
        assert "o-1" in caplog.text
        assert outbox.pending() == 1
        with pytest.raises(ConnectionError):
            outbox.relay()
        assert outbox.pending() == 1
        outbox.sink = RecordingPublisher()
        assert outbox.relay() == 1
        assert keys(outbox.sink.published) == [("o-1", 1, "OrderPlaced")]

    def test_publishing_inside_a_unit_of_work_waits_for_its_commit(self):
        database = self.fresh_database()
        sink = RecordingPublisher()
        repository, outbox = SqliteOrderRepository(database), SqliteOutbox(database, sink)
        with database.transaction():
            order = make_order("o-1")
            repository.add(order)
            outbox.publish(order.collect_events())
            assert sink.published == []
        assert keys(sink.published) == [("o-1", 1, "OrderPlaced")]
        assert outbox.pending() == 0

    def test_events_of_a_rolled_back_unit_of_work_are_never_published(self):
        database = self.fresh_database()
        sink = RecordingPublisher()
        repository, outbox = SqliteOrderRepository(database), SqliteOutbox(database, sink)
        order = make_order("o-1")
        with pytest.raises(Abandoned):
            abandoned(
                database,
                lambda: repository.add(order),
                lambda: outbox.publish(order.collect_events()),
            )
        assert (sink.published, outbox.pending(), outbox.relay()) == ([], 0, 0)
        assert outbox_rows(database) == []

    def test_relay_inside_a_transaction_is_refused(self):
        database = self.fresh_database()
        outbox = SqliteOutbox(database)
        SqliteOrderRepository(database).add(make_order("o-1"))
        with database.transaction(), pytest.raises(RuleViolation):
            outbox.relay()
        assert outbox.pending() == 1

    def test_relay_delivers_in_order_in_batches_and_up_to_a_limit(self):
        database = self.fresh_database()
        sink = RecordingPublisher()
        batches = []
        sink_publish = sink.publish
        sink.publish = lambda events: (batches.append(len(events)), sink_publish(events))
        repository = SqliteOrderRepository(database)
        for index in range(7):
            repository.add(make_order(f"o-{index}"))
        outbox = SqliteOutbox(database, sink, batch_size=3)
        assert outbox.relay(limit=4) == 4
        assert batches == [3, 1]
        assert outbox.relay() == 3
        assert [event.aggregate_id for event in sink.published] == [f"o-{i}" for i in range(7)]
        assert outbox.relay(limit=0) == 0

    @pytest.mark.parametrize("limit", [-1, 1.5, "3"])
    def test_relay_refuses_a_bad_limit(self, limit):
        with pytest.raises(InvalidInput):
            SqliteOutbox(self.fresh_database()).relay(limit=limit)

    @pytest.mark.parametrize("size", [0, -1, 2.0])
    def test_the_batch_size_must_be_a_whole_number_of_at_least_one(self, size):
        with pytest.raises(InvalidInput):
            SqliteOutbox(self.fresh_database(), batch_size=size)

    def test_prune_deletes_only_delivered_rows(self):
        database = self.fresh_database()
        repository, outbox = SqliteOrderRepository(database), SqliteOutbox(database)
        first = make_order("o-1")
        repository.add(first)
        repository.add(make_order("o-2"))
        outbox.publish(first.collect_events())
        assert outbox.prune() == 1
        assert [row[0] for row in outbox_rows(database)] == ["o-2"]
        assert outbox.pending() == 1
