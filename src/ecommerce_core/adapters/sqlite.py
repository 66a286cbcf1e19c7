"""SQLite adapters: the embedded default, on the standard library's ``sqlite3``.

One :class:`SqliteDatabase` is one connection to one file; the adapters built on it share
that connection, and so its transactions:

- :class:`SqliteOrderRepository`: orders with optimistic concurrency (a version column and a
  conditional ``UPDATE ... WHERE id = ? AND version = ?``) and an indexed deadline column for
  ``due``; ``add`` and ``save`` write the order's pending events to the *outbox* in the same
  transaction as the order;
- :class:`SqliteOutbox`: the :class:`~ecommerce_core.ports.EventPublisher` that forwards
  events to the host's own publisher once they are committed, marks them published, and
  :meth:`~SqliteOutbox.relay` delivers whatever a crash left unpublished;
- :class:`SqliteInventory`: stock with atomic, all-or-nothing, idempotent reservations
  (``UPDATE stock SET reserved = reserved + ? WHERE sku = ? AND on_hand - reserved >= ?``);
- :class:`SqliteIdempotencyStore`: idempotency keys with their fingerprint and result.

The file runs in WAL mode (readers never wait for the writer) with a busy timeout; every write
is one ``BEGIN IMMEDIATE`` transaction, so a writer waits for the lock *before* it reads what it
will change and never fails half-way on a lock upgrade. A writer still locked out when the
timeout runs out gets :class:`~ecommerce_core.errors.StorageBusy` (a
:class:`~ecommerce_core.errors.Conflict`: nothing changed, retry). Other ``sqlite3`` errors (a
full disk, a corrupt file) are not something a caller can act on and are raised as they are.

The adapter creates and versions its schema (table ``schema_version``): opening a file created
by an older version of the library upgrades it; a newer one is refused with
:class:`~ecommerce_core.errors.IncompatibleSchema`.

A connection belongs to the thread that opened it (``sqlite3``'s rule): open one
:class:`SqliteDatabase` per thread or process, all on the same file.

Example:
    >>> import tempfile, pathlib
    >>> from ecommerce_core.testing import make_order
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with SqliteDatabase(pathlib.Path(folder) / "shop.db") as db:
    ...         orders = SqliteOrderRepository(db)
    ...         orders.add(make_order("o-1"))
    ...         (orders.get("o-1").state, SqliteOutbox(db).pending())
    ('pending_payment', 1)

"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.memory import RecordingPublisher
from ecommerce_core.errors import (
    Conflict,
    IdempotencyConflict,
    IncompatibleSchema,
    InvalidInput,
    NotFound,
    OutOfStock,
    RuleViolation,
    StorageBusy,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import Order, check_now
from ecommerce_core.ports import EventPublisher, StockItem
from ecommerce_core.process import Process
from ecommerce_core.processes import PROCESSES

__all__ = [
    "SCHEMA_VERSION",
    "SqliteDatabase",
    "SqliteIdempotencyStore",
    "SqliteInventory",
    "SqliteOrderRepository",
    "SqliteOutbox",
]

_log = logging.getLogger(__name__)

# Step N takes a file from schema version N to N + 1; step 0 creates the schema.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            state TEXT NOT NULL,
            process TEXT NOT NULL,
            checkout_id TEXT NOT NULL,
            buyer_id TEXT NOT NULL,
            merchant_id TEXT NOT NULL,
            deadline_at INTEGER,
            body TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX orders_due ON orders (deadline_at, id) WHERE deadline_at IS NOT NULL",
        """CREATE TABLE stock (
            sku TEXT PRIMARY KEY,
            on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
            reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved BETWEEN 0 AND on_hand)
        ) WITHOUT ROWID""",
        """CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            items TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'released'))
        ) WITHOUT ROWID""",
        """CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            result TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            aggregate_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
            UNIQUE (aggregate_id, version)
        )""",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE published = 0",
    ),
    (
        """CREATE TABLE restocks (
            id TEXT PRIMARY KEY,
            items TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
    # 2 -> 3: every other aggregate as a document, the ledger, limits and credit lines
    # (the adapters in ecommerce_core.adapters.sqlite_aggregates and sqlite_books).
    (
        """CREATE TABLE aggregates (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            class TEXT NOT NULL,
            deadline_at INTEGER,
            body TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        ) WITHOUT ROWID""",
        (
            "CREATE INDEX aggregates_due ON aggregates (kind, deadline_at, id) "
            "WHERE deadline_at IS NOT NULL"
        ),
        """CREATE TABLE aggregate_lookups (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            id TEXT NOT NULL,
            is_unique INTEGER NOT NULL CHECK (is_unique IN (0, 1)),
            UNIQUE (kind, name, value, id)
        )""",
        (
            "CREATE UNIQUE INDEX aggregate_lookups_unique "
            "ON aggregate_lookups (kind, name, value) WHERE is_unique = 1"
        ),
        "CREATE INDEX aggregate_lookups_of ON aggregate_lookups (kind, id)",
        """CREATE TABLE ledger_postings (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            order_id TEXT NOT NULL,
            line_id TEXT NOT NULL,
            source_kind TEXT NOT NULL,
            source_owner TEXT NOT NULL,
            target_kind TEXT NOT NULL,
            target_owner TEXT NOT NULL,
            minor INTEGER NOT NULL CHECK (minor > 0),
            currency TEXT NOT NULL,
            movement TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        "CREATE INDEX ledger_postings_order ON ledger_postings (order_id, seq)",
        """CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
        BEGIN SELECT RAISE(ABORT, 'ledger postings are append-only'); END""",
        """CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
        BEGIN SELECT RAISE(ABORT, 'ledger postings are append-only'); END""",
        """CREATE TABLE ledger_balances (
            account_kind TEXT NOT NULL,
            account_owner TEXT NOT NULL,
            currency TEXT NOT NULL,
            minor INTEGER NOT NULL,
            PRIMARY KEY (account_kind, account_owner, currency)
        ) WITHOUT ROWID""",
        """CREATE TABLE promotion_counters (
            key TEXT PRIMARY KEY,
            held INTEGER NOT NULL CHECK (held >= 0)
        ) WITHOUT ROWID""",
        """CREATE TABLE promotion_holds (
            id TEXT PRIMARY KEY,
            claims TEXT NOT NULL,
            kept TEXT NOT NULL,
            temporary TEXT NOT NULL,
            state TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE credit_lines (
            buyer_id TEXT PRIMARY KEY,
            limit_minor INTEGER NOT NULL CHECK (limit_minor >= 0),
            currency TEXT NOT NULL,
            drawn INTEGER NOT NULL DEFAULT 0 CHECK (drawn >= 0)
        ) WITHOUT ROWID""",
        """CREATE TABLE credit_keys (
            key TEXT PRIMARY KEY,
            what TEXT NOT NULL,
            buyer_id TEXT NOT NULL,
            minor INTEGER NOT NULL,
            currency TEXT NOT NULL
        ) WITHOUT ROWID""",
    ),
)

SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this library writes; older files are upgraded when opened."""

_OUR_TABLES: Final = (
    "orders",
    "stock",
    "reservations",
    "idempotency_keys",
    "outbox",
    "restocks",
    "aggregates",
    "aggregate_lookups",
    "ledger_postings",
    "ledger_balances",
    "promotion_counters",
    "promotion_holds",
    "credit_lines",
    "credit_keys",
)
_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _is_busy(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(error) or "busy" in str(error)  # pragma: no cover - Python < 3.11


class SqliteDatabase:
    """One connection to an SQLite file, with the schema the adapters need.

    Opening it creates the schema in a new file and upgrades an older one, sets WAL mode, the
    busy timeout and the ``synchronous`` level. Use it as a context manager, or call
    :meth:`close`.

    Args:
        path: The database file (created if missing); ``":memory:"`` for a private in-memory
            database, for tests.
        busy_timeout: Seconds a writer waits for another connection's lock before
            :class:`~ecommerce_core.errors.StorageBusy`.
        synchronous: SQLite's ``synchronous`` level. ``"NORMAL"`` (the default) is safe in WAL
            mode (a power cut may lose the last commits, never corrupt the file) and much
            faster than ``"FULL"``, which also survives a power cut.

    Raises:
        IncompatibleSchema: The file is not an SQLite database, was written by a newer version
            of the library, or holds tables of ours that it did not create.
        StorageBusy: Another connection held the lock for the whole timeout while the
            schema was being created.
        InvalidInput: An unknown ``synchronous`` level or a negative timeout.

    Attributes:
        path: The file, as given.
        busy_timeout: The busy timeout, in seconds.

    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise InvalidInput("synchronous", synchronous, f"must be one of {_SYNCHRONOUS}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float):
            raise InvalidInput("busy_timeout", busy_timeout, "must be a number of seconds")
        if busy_timeout < 0:
            raise InvalidInput("busy_timeout", busy_timeout, "must not be negative")
        self.path = os.fspath(path)
        self.busy_timeout = float(busy_timeout)
        self._depth = 0
        self._after_commit: list[list[Callable[[], None]]] = []
        self._connection = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, cached_statements=256
        )
        try:
            with self._translating("open"):
                self._switch_to_wal()
                self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            self._migrate()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            if getattr(error, "sqlite_errorcode", None) != sqlite3.SQLITE_NOTADB:
                raise
            raise IncompatibleSchema(
                self.path, None, SCHEMA_VERSION, f"it is not an SQLite database ({error})"
            ) from error
        except BaseException:
            self._connection.close()
            raise

    def _switch_to_wal(self) -> None:
        """Set WAL mode, retrying while another connection holds the lock.

        Changing the journal mode of a new file needs an exclusive lock, and SQLite does not
        call the busy handler for it: several processes opening one new file at once would
        otherwise fail at once with "database is locked" instead of waiting their turn.
        """
        give_up = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._connection.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= give_up:
                    raise
                time.sleep(0.005)
            else:
                return

    # ----------------------------------------------------------------- schema

    def _migrate(self) -> None:
        with self.transaction("open") as connection:
            known = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "schema_version" in known:
                (found,) = connection.execute("SELECT version FROM schema_version").fetchone()
            else:
                clash = sorted(known.intersection(_OUR_TABLES))
                if clash:
                    raise IncompatibleSchema(
                        self.path,
                        None,
                        SCHEMA_VERSION,
                        f"it has tables named {', '.join(clash)} but no schema_version table: "
                        "they were not created by ecommerce-core; use another file",
                    )
                connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                connection.execute("INSERT INTO schema_version (version) VALUES (0)")
                found = 0
            if found > SCHEMA_VERSION:
                raise IncompatibleSchema(
                    self.path,
                    found,
                    SCHEMA_VERSION,
                    f"it has schema version {found}, written by a newer ecommerce-core; this "
                    f"version reads up to {SCHEMA_VERSION}: upgrade ecommerce-core",
                )
            for step in _MIGRATIONS[found:]:
                for statement in step:
                    connection.execute(statement)
            connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        (version,) = self._connection.execute("SELECT version FROM schema_version").fetchone()
        return int(version)

    # ----------------------------------------------------------------- transactions

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for the host's own reads (write through the adapters)."""
        return self._connection

    @property
    def in_transaction(self) -> bool:
        """Whether a :meth:`transaction` is open on this connection."""
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self, operation: str = "transaction") -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction: all of it is stored, or none of it.

        The outermost block starts with ``BEGIN IMMEDIATE`` (it takes the write lock, waiting
        up to the busy timeout) and commits when the block ends; an exception rolls it all
        back and is raised again. A block nested in another becomes a savepoint: its own
        failure rolls back only its own writes. So a host can make several commands one unit
        of work, and the adapters' own transactions join it::

            with db.transaction():
                service.buy_now(buyer, "tea-01", 1)
                service.buy_now(buyer, "cup-01", 2)

        Events an :class:`SqliteOutbox` is asked to publish inside the block are published
        after the outermost commit, and never if it rolls back.

        Args:
            operation: What the block does, for the error message if the store is busy.

        Raises:
            StorageBusy: The write lock stayed taken for the whole busy timeout.

        """
        connection = self._connection
        if self._depth:
            savepoint = f"sp{self._depth}"
            connection.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            self._after_commit.append([])
            try:
                with self._translating(operation):
                    yield connection
            except BaseException:
                connection.execute(f"ROLLBACK TO {savepoint}")
                connection.execute(f"RELEASE {savepoint}")
                self._after_commit.pop()
                raise
            else:
                connection.execute(f"RELEASE {savepoint}")
                done = self._after_commit.pop()
                self._after_commit[-1].extend(done)
            finally:
                self._depth -= 1
            return
        with self._translating(operation):
            connection.execute("BEGIN IMMEDIATE")
        self._depth = 1
        self._after_commit = [[]]
        try:
            with self._translating(operation):
                yield connection
                connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
            callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks[0] if callbacks else ():
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the open transaction commits; never if it rolls back.

        Outside a transaction it is called at once. Callbacks run in the order registered;
        one that raises stops the rest, and its error comes out of the ``with`` block (the
        transaction is committed by then).
        """
        if self._depth:
            self._after_commit[-1].append(callback)
        else:
            callback()

    @contextlib.contextmanager
    def _translating(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as error:
            if _is_busy(error):
                raise StorageBusy(operation, self.busy_timeout) from error
            raise

    def read(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """Run one read-only statement and return its rows (a consistent snapshot in WAL).

        Raises:
            StorageBusy: The file stayed locked for the whole busy timeout (rare in WAL).

        """
        with self._translating("read"):
            return self._connection.execute(sql, parameters).fetchall()

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back."""
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r})"


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


class SqliteOrderRepository:
    """Orders in SQLite, with optimistic concurrency, a deadline index and an event outbox.

    ``add`` and ``save`` write the order and its pending (not yet collected) events in one
    transaction, so an event is in the outbox exactly when the change that raised it is
    stored. An :class:`SqliteOutbox` on the same file publishes them.

    Args:
        database: The open database.
        processes: Where stored process names are looked up (:data:`PROCESSES` by default;
            pass a mapping extended with the processes you define).
        codec: How orders and events become JSON (one built from ``processes`` by default).

    """

    def __init__(
        self,
        database: SqliteDatabase,
        *,
        processes: Mapping[str, Process] = PROCESSES,
        codec: JsonCodec | None = None,
    ) -> None:
        self.database = database
        self.codec = JsonCodec(processes) if codec is None else codec

    def add(self, order: Order) -> None:
        """Store a new order and its pending events (see :class:`~ecommerce_core.ports.OrderRepository`).

        Raises:
            Conflict: An order with this id is already stored; nothing is written.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """  # noqa: E501  # a cross-reference cannot be wrapped
        row = self._row(order)
        with self.database.transaction("add order") as connection:
            try:
                connection.execute(
                    "INSERT INTO orders (id, version, state, process, checkout_id, buyer_id, "
                    "merchant_id, deadline_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"an order with id {order.id!r} is already stored") from None
            self._write_events(connection, order)

    def get(self, order_id: str) -> Order:
        """Load an order; the caller owns the object returned.

        Raises:
            NotFound: No such order.

        """
        if type(order_id) is not str:
            raise NotFound("order", order_id)
        rows = self.database.read("SELECT body FROM orders WHERE id = ?", (order_id,))
        if not rows:
            raise NotFound("order", order_id)
        return self.codec.decode_order(rows[0][0])

    def save(self, order: Order, expected_version: int) -> None:
        """Store ``order`` and its pending events if the stored version is ``expected_version``.

        Raises:
            VersionConflict: The stored version differs (or the order was never added);
                nothing is written, no event reaches the outbox.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        row = self._row(order)
        with self.database.transaction("save order") as connection:
            updated = connection.execute(
                "UPDATE orders SET version = ?, state = ?, process = ?, checkout_id = ?, "
                "buyer_id = ?, merchant_id = ?, deadline_at = ?, body = ? "
                "WHERE id = ? AND version = ?",
                (*row[1:], order.id, expected_version),
            ).rowcount
            if updated != 1:
                stored = connection.execute(
                    "SELECT version FROM orders WHERE id = ?", (order.id,)
                ).fetchone()
                raise VersionConflict(
                    order.id, expected_version, None if stored is None else stored[0]
                )
            self._write_events(connection, order)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of orders whose deadline is at or before ``now``, earliest first (by index).

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        rows = self.database.read(
            "SELECT id FROM orders WHERE deadline_at IS NOT NULL AND deadline_at <= ? "
            "ORDER BY deadline_at, id LIMIT ?",
            (_micros(now), limit),
        )
        return [order_id for (order_id,) in rows]

    def all(self) -> list[Order]:
        """Every stored order, by id (for reports and tests)."""
        rows = self.database.read("SELECT body FROM orders ORDER BY id")
        return [self.codec.decode_order(body) for (body,) in rows]

    def __len__(self) -> int:
        ((count,),) = self.database.read("SELECT count(*) FROM orders")
        return int(count)

    def _row(self, order: Order) -> tuple[object, ...]:
        deadline = order.deadline
        return (
            order.id,
            order.version,
            order.state,
            order.process.name,
            order.checkout_id,
            order.buyer_id,
            order.merchant_id,
            None if deadline is None else _micros(deadline.at),
            self.codec.encode_order(order),
        )

    def _write_events(self, connection: sqlite3.Connection, order: Order) -> None:
        if not order.events:
            return
        rows = []
        for event in order.events:
            name, payload = self.codec.encode_event(event)
            rows.append((event.aggregate_id, event.version, name, payload))
        # An event already written (saved twice before being collected) is written once.
        connection.executemany(
            "INSERT OR IGNORE INTO outbox (aggregate_id, version, type, payload) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )


class SqliteOutbox:
    """Publishes the events the repository wrote to the outbox, after they are committed.

    It is the :class:`~ecommerce_core.ports.EventPublisher` to give
    :class:`~ecommerce_core.services.OrderService`: the service publishes an order's events
    after saving it, and the outbox forwards them to ``sink`` (the host's own publisher: a
    message bus, a task queue) and marks their rows published. If the process dies between
    the commit and that mark, or the sink fails, the rows stay pending and :meth:`relay`
    delivers them later: run it when the process starts and from a periodic job. Events of a
    save that was rolled back never reach the outbox, so they are never published.

    Delivery is *at least once*: a crash after the sink took an event but before its row was
    marked, or a relay racing a live publish in another process, can deliver an event twice.
    Each event is identified by ``(aggregate_id, version)``; let the sink ignore repeats.

    Args:
        database: The *same* :class:`SqliteDatabase` object the repository writes with: the
            outbox waits for that connection's open transaction before publishing.
        sink: Where events go; a :class:`~ecommerce_core.adapters.memory.RecordingPublisher`
            (kept in :attr:`sink`) if omitted.
        codec: How stored events are read back (a default :class:`JsonCodec` if omitted).
        batch_size: How many pending events :meth:`relay` hands the sink at a time.

    Attributes:
        sink: The host's publisher.

    """

    def __init__(
        self,
        database: SqliteDatabase,
        sink: EventPublisher | None = None,
        *,
        codec: JsonCodec | None = None,
        batch_size: int = 500,
    ) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise InvalidInput("batch_size", batch_size, "must be a whole number of at least 1")
        self.database = database
        self.sink: EventPublisher = RecordingPublisher() if sink is None else sink
        self.codec = JsonCodec() if codec is None else codec
        self.batch_size = batch_size

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Forward ``events`` to the sink once committed, and mark them published.

        Inside an open :meth:`SqliteDatabase.transaction` this waits for its commit (and
        forgets the events if it rolls back). Events already marked published (by a
        :meth:`relay` that got there first) are not sent again; events that were never in
        the outbox are forwarded as they are.

        It never raises for the sink's sake: the command that raised the events has already
        succeeded. If the sink fails, the failure is logged (logger
        ``ecommerce_core.adapters.sqlite``) and the events stay pending for :meth:`relay`.
        """
        events = tuple(events)
        if events:
            self.database.after_commit(lambda: self._publish_now(events))

    def _publish_now(self, events: tuple[DomainEvent, ...]) -> None:
        database = self.database
        try:
            fresh = [
                event
                for event in events
                if database.read(
                    "SELECT published FROM outbox WHERE aggregate_id = ? AND version = ?",
                    (event.aggregate_id, event.version),
                )
                != [(1,)]
            ]
            if not fresh:
                return
            self.sink.publish(fresh)
            with database.transaction("mark events published") as connection:
                connection.executemany(
                    "UPDATE outbox SET published = 1 WHERE aggregate_id = ? AND version = ?",
                    [(event.aggregate_id, event.version) for event in fresh],
                )
        except Exception:  # noqa: BLE001  # the command succeeded; relay() delivers later
            _log.exception(
                "events of %s stay pending in the outbox; relay() will deliver them",
                sorted({event.aggregate_id for event in events}),
            )

    def relay(self, limit: int | None = None) -> int:
        """Deliver pending events to the sink, oldest first, and mark them published.

        Call it when the process starts (to recover from a crash) and from a periodic job.
        Unlike :meth:`publish`, it raises when the sink fails; the events it did not
        deliver stay pending.

        Args:
            limit: Deliver at most this many (all pending events if ``None``).

        Returns:
            How many events were delivered.

        Raises:
            RuleViolation: Called inside an open transaction (it would see uncommitted
                events).
            InvalidInput: A negative or non-integer ``limit``.

        """
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        if self.database.in_transaction:
            raise RuleViolation(
                "",
                "relay",
                "in a transaction",
                "relay() delivers committed events only; call it outside transaction()",
            )
        delivered = 0
        while limit is None or delivered < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - delivered)
            rows = self.database.read(
                "SELECT seq, type, payload FROM outbox WHERE published = 0 ORDER BY seq LIMIT ?",
                (size,),
            )
            if not rows:
                break
            self.sink.publish([self.codec.decode_event(name, payload) for _, name, payload in rows])
            with self.database.transaction("mark events published") as connection:
                connection.executemany(
                    "UPDATE outbox SET published = 1 WHERE seq = ?", [(seq,) for seq, _, _ in rows]
                )
            delivered += len(rows)
        return delivered

    def pending(self) -> int:
        """How many events wait to be delivered."""
        ((count,),) = self.database.read("SELECT count(*) FROM outbox WHERE published = 0")
        return int(count)

    def prune(self) -> int:
        """Delete the rows of events already delivered; returns how many were deleted.

        The outbox keeps delivered events (an audit trail, and so a late duplicate
        :meth:`publish` is recognised) until pruned.
        """
        with self.database.transaction("prune outbox") as connection:
            return connection.execute("DELETE FROM outbox WHERE published = 1").rowcount


def _check_quantity(quantity: object) -> None:
    if type(quantity) is not int or quantity < 1:
        raise InvalidInput("quantity", quantity, "must be a whole number of at least 1")


def _items_text(items: Sequence[StockItem]) -> str:
    return json.dumps(
        [[item.line_id, item.sku, item.quantity] for item in items],
        ensure_ascii=False,
        separators=(",", ":"),
    )


class SqliteInventory:
    """Stock per SKU in SQLite, with atomic, all-or-nothing, idempotent reservations.

    A reservation takes each SKU with one conditional update,
    ``UPDATE stock SET reserved = reserved + ? WHERE sku = ? AND on_hand - reserved >= ?``, all
    in one transaction: if any SKU is short the whole transaction rolls back and
    :class:`~ecommerce_core.errors.OutOfStock` reports the units that were available. The
    table's ``CHECK`` constraints refuse negative stock and more reserved than on hand, as a
    last line of defence.

    A request that cannot succeed is refused from a read-only snapshot, without waiting for
    the write lock: once a flash sale sells out, the losers never queue behind the winners.

    Args:
        database: The open database.

    """

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database

    def receive(self, sku: str, quantity: int) -> None:
        """Add ``quantity`` units of ``sku`` on hand.

        Raises:
            InvalidInput: The quantity is not a whole number of at least 1.

        """
        _check_quantity(quantity)
        with self.database.transaction("receive stock") as connection:
            connection.execute(
                "INSERT INTO stock (sku, on_hand) VALUES (?, ?) "
                "ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
                (sku, quantity),
            )

    def reserve(self, reservation_id: str, items: Sequence[StockItem]) -> None:
        """Reserve every item or none; a repeat with the same items is a no-op.

        Raises:
            OutOfStock: Some SKU has fewer units available than asked; nothing was reserved.
            IdempotencyConflict: The reservation id was used with different items.
            InvalidInput: No items, or a quantity below 1.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a reservation needs at least one item")
        for item in items:
            _check_quantity(item.quantity)
        wanted: dict[str, int] = {}
        for item in items:
            wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
        text = _items_text(items)
        if self._settled_without_writing(reservation_id, text, wanted):
            return
        with self.database.transaction("reserve") as connection:
            if self._existing(connection, reservation_id, text):
                return
            for sku, quantity in sorted(wanted.items()):
                taken = connection.execute(
                    "UPDATE stock SET reserved = reserved + ? "
                    "WHERE sku = ? AND on_hand - reserved >= ?",
                    (quantity, sku, quantity),
                ).rowcount
                if taken != 1:
                    raise OutOfStock(sku, quantity, self._available(connection, sku))
            connection.execute(
                "INSERT INTO reservations (id, items, status) VALUES (?, ?, 'reserved')",
                (reservation_id, text),
            )

    def _settled_without_writing(
        self, reservation_id: str, text: str, wanted: Mapping[str, int]
    ) -> bool:
        """Answer from one read snapshot when no write is needed: a repeat, or a refusal.

        Returns ``True`` for a same-items repeat; raises for a conflicting repeat or a SKU
        already short; returns ``False`` when the reservation has to be attempted.
        """
        if self.database.in_transaction:
            return False  # inside a host's unit of work: its transaction is the snapshot
        skus = sorted(wanted)
        # One statement reads one snapshot: the reservation (sku NULL) and each SKU's stock.
        placeholders = ", ".join("?" * len(skus))
        rows = self.database.read(
            "SELECT NULL, items FROM reservations WHERE id = ? UNION ALL "  # noqa: S608  # only ?s
            f"SELECT sku, on_hand - reserved FROM stock WHERE sku IN ({placeholders})",
            (reservation_id, *skus),
        )
        found = dict(rows)
        if None in found:
            if found[None] != text:
                raise IdempotencyConflict(reservation_id, "different items")
            return True
        for sku in skus:
            available = int(found.get(sku, 0))
            if available < wanted[sku]:
                raise OutOfStock(sku, wanted[sku], available)
        return False

    @staticmethod
    def _existing(connection: sqlite3.Connection, reservation_id: str, text: str) -> bool:
        row = connection.execute(
            "SELECT items FROM reservations WHERE id = ?", (reservation_id,)
        ).fetchone()
        if row is None:
            return False
        if row[0] != text:
            raise IdempotencyConflict(reservation_id, "different items")
        return True

    @staticmethod
    def _available(connection: sqlite3.Connection, sku: str) -> int:
        row = connection.execute(
            "SELECT on_hand - reserved FROM stock WHERE sku = ?", (sku,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def commit(self, reservation_id: str) -> None:
        """Deduct the reserved units from stock (on payment); a repeat is a no-op.

        Raises:
            NotFound: No such reservation.
            RuleViolation: The reservation was released.

        """
        with self.database.transaction("commit reservation") as connection:
            items, status = self._reservation(connection, reservation_id)
            if status == "committed":
                return
            if status != "reserved":
                raise RuleViolation(reservation_id, "commit", status, "it was released")
            connection.executemany(
                "UPDATE stock SET reserved = reserved - ?, on_hand = on_hand - ? WHERE sku = ?",
                [(quantity, quantity, sku) for _, sku, quantity in items],
            )
            connection.execute(
                "UPDATE reservations SET status = 'committed' WHERE id = ?", (reservation_id,)
            )

    def release(self, reservation_id: str) -> bool:
        """Give the units back; ``False`` if they were already given back.

        Raises:
            NotFound: No such reservation.

        """
        with self.database.transaction("release reservation") as connection:
            items, status = self._reservation(connection, reservation_id)
            if status == "released":
                return False
            column = "reserved = reserved -" if status == "reserved" else "on_hand = on_hand +"
            connection.executemany(
                f"UPDATE stock SET {column} ? WHERE sku = ?",  # noqa: S608  # fixed text
                [(quantity, sku) for _, sku, quantity in items],
            )
            connection.execute(
                "UPDATE reservations SET status = 'released' WHERE id = ?", (reservation_id,)
            )
            return True

    @staticmethod
    def _reservation(
        connection: sqlite3.Connection, reservation_id: str
    ) -> tuple[list[tuple[str, str, int]], str]:
        row = connection.execute(
            "SELECT items, status FROM reservations WHERE id = ?", (reservation_id,)
        ).fetchone()
        if row is None:
            raise NotFound("reservation", reservation_id)
        return json.loads(row[0]), row[1]

    def restock(self, restock_id: str, items: Sequence[StockItem]) -> bool:
        """Put units back on hand, once per ``restock_id`` (returns, parcels sent back).

        Returns:
            ``True`` if the units were added now, ``False`` if this restock was done already.

        Raises:
            IdempotencyConflict: This restock id was used with different items.
            InvalidInput: No items, or a quantity below 1.

        """
        items = tuple(items)
        if not items:
            raise InvalidInput("items", items, "a restock needs at least one item")
        for item in items:
            _check_quantity(item.quantity)
        text = _items_text(items)
        with self.database.transaction("restock") as connection:
            row = connection.execute(
                "SELECT items FROM restocks WHERE id = ?", (restock_id,)
            ).fetchone()
            if row is not None:
                if row[0] != text:
                    raise IdempotencyConflict(restock_id, "different items")
                return False
            connection.executemany(
                "INSERT INTO stock (sku, on_hand) VALUES (?, ?) "
                "ON CONFLICT (sku) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
                [(item.sku, item.quantity) for item in items],
            )
            connection.execute("INSERT INTO restocks (id, items) VALUES (?, ?)", (restock_id, text))
            return True

    def available(self, sku: str) -> int:
        """Units that can still be reserved."""
        rows = self.database.read("SELECT on_hand - reserved FROM stock WHERE sku = ?", (sku,))
        return int(rows[0][0]) if rows else 0

    def reserved(self, sku: str) -> int:
        """Units reserved and not yet committed or released."""
        rows = self.database.read("SELECT reserved FROM stock WHERE sku = ?", (sku,))
        return int(rows[0][0]) if rows else 0

    def on_hand(self, sku: str) -> int:
        """Units in stock, reserved ones included."""
        rows = self.database.read("SELECT on_hand FROM stock WHERE sku = ?", (sku,))
        return int(rows[0][0]) if rows else 0


def _check_idempotency_input(key: object, fingerprint: object, result: object = "") -> None:
    for field, value in (("key", key), ("fingerprint", fingerprint)):
        if type(value) is not str or not value:
            raise InvalidInput(field, value, "must be a non-empty string")
    if type(result) is not str:
        raise InvalidInput("result", result, "must be a string (encode it, as JSON say)")


class SqliteIdempotencyStore:
    """Idempotency keys in SQLite: ``key -> (fingerprint, result)``, first writer wins.

    Args:
        database: The open database.

    """

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database

    def remember(self, key: str, fingerprint: str, result: str) -> str:
        """Remember ``result`` under a new key, or return the key's first result.

        Raises:
            IdempotencyConflict: The key has another fingerprint.
            InvalidInput: An empty key or fingerprint, or a result that is not text.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        _check_idempotency_input(key, fingerprint, result)
        with self.database.transaction("remember idempotency key") as connection:
            connection.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, result) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, fingerprint, result),
            )
            stored_fingerprint, stored_result = connection.execute(
                "SELECT fingerprint, result FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
        if stored_fingerprint != fingerprint:
            raise IdempotencyConflict(key, "different fingerprint")
        return str(stored_result)

    def lookup(self, key: str, fingerprint: str) -> str | None:
        """The result remembered under ``key``, or ``None``.

        Raises:
            IdempotencyConflict: The key has another fingerprint.
            InvalidInput: An empty key or fingerprint.

        """
        _check_idempotency_input(key, fingerprint)
        rows = self.database.read(
            "SELECT fingerprint, result FROM idempotency_keys WHERE key = ?", (key,)
        )
        if not rows:
            return None
        if rows[0][0] != fingerprint:
            raise IdempotencyConflict(key, "different fingerprint")
        return str(rows[0][1])
