"""SQLite repositories for every aggregate besides orders, on one generic document table.

Payments, shipments, after-sales records and teams are stored the same way, by
:class:`SqliteAggregateRepository`: one row per aggregate in the table ``aggregates``, keyed
by ``(kind, id)``, holding

- ``version``, the optimistic-concurrency check: ``save`` is one conditional
  ``UPDATE ... WHERE kind = ? AND id = ? AND version = ?``;
- ``class``, the aggregate's class name (a :class:`~ecommerce_core.payments.CodPayment` and a
  :class:`~ecommerce_core.payments.GatewayPayment` are both payments);
- ``deadline_at``, the moment its timer falls due (microseconds since the epoch), indexed for
  ``due``;
- ``body``, the aggregate as JSON, written by :class:`~ecommerce_core.adapters.codec.JsonCodec`
  with the same rules as orders (every constructor field by its type hint; pending events are
  not stored).

Look-ups (an order's payments, a shipment by tracking number, the team of an order) are rows of
``aggregate_lookups``: ``(kind, name, value) -> id``, kept in step with the aggregate in the
same transaction; a look-up declared *unique* is a uniqueness rule the table enforces (two
parcels with one tracking number: the second ``add`` is a
:class:`~ecommerce_core.errors.Conflict`). ``add`` and ``save`` also write the aggregate's
pending events to the outbox in that transaction, exactly as
:class:`~ecommerce_core.adapters.sqlite.SqliteOrderRepository` does, so an
:class:`~ecommerce_core.adapters.sqlite.SqliteOutbox` publishes them after commit and
:meth:`~ecommerce_core.adapters.sqlite.SqliteOutbox.relay` recovers them after a crash. Every
write joins the caller's :meth:`~ecommerce_core.adapters.sqlite.SqliteDatabase.transaction`
when one is open.

Adding a repository for a new aggregate needs no schema change (the collective modes' four, in
:mod:`~ecommerce_core.adapters.sqlite_campaigns`, are built this way): subclass
:class:`SqliteAggregateRepository`, name its ``kind``, its class and its noun, and say what is
indexed (a sketch; the real auction repository needs no look-up)::

    class SqliteAuctionRepository(SqliteAggregateRepository[Auction]):
        kind = "auction"
        aggregate_type = Auction
        noun = "auction"

        def deadline_of(self, auction: Auction) -> datetime | None:
            return auction.due_at  # for due()

        def lookups(self, auction: Auction) -> list[Lookup]:
            return [Lookup("sku", auction.sku)]

        def due(self, now: datetime, limit: int = 1000) -> list[str]:
            return self._due(now, limit)

        def for_sku(self, sku: str) -> list[str]:
            return self._ids_by("sku", sku)

then run the port's contract suite against it (``tests/contracts/test_sqlite_adapters.py``).
The aggregate must be an attrs class whose fields the codec can store, with an ``id`` (or
override :meth:`~SqliteAggregateRepository.key_of`), a ``version`` and an ``events`` tuple;
state kept *outside* its constructor's fields (caches, indexes) is not stored, so the class
must rebuild it when constructed (in ``__attrs_post_init__``).

Aggregate ids must be unique across kinds (an order and a payment may not share one), since the
outbox knows an event by ``(aggregate_id, version)``; a clash is refused with
:class:`~ecommerce_core.errors.Conflict` rather than an event silently dropped.

Example:
    >>> from ecommerce_core.adapters.sqlite import SqliteDatabase, SqliteOutbox
    >>> from ecommerce_core.testing.contracts import make_team
    >>> with SqliteDatabase(":memory:") as db:
    ...     teams = SqliteTeamRepository(db)
    ...     teams.add(make_team())
    ...     (teams.get("t-1").state, teams.team_of("t-1-o-alice"), SqliteOutbox(db).pending())
    ('forming', 't-1', 1)

"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Generic, TypeVar

import attrs

from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.sqlite import SqliteDatabase
from ecommerce_core.aftersales import OrderAfterSales
from ecommerce_core.campaigns.team import Team
from ecommerce_core.delivery import Shipment
from ecommerce_core.errors import Conflict, InvalidInput, NotFound, VersionConflict
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import check_now
from ecommerce_core.payments.base import PaymentRecord
from ecommerce_core.process import Process
from ecommerce_core.processes import PROCESSES

__all__ = [
    "Lookup",
    "SqliteAfterSalesRepository",
    "SqliteAggregateRepository",
    "SqlitePaymentRepository",
    "SqliteShipmentRepository",
    "SqliteTeamRepository",
    "joined",
]

_A = TypeVar("_A")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_SEPARATOR: Final = "\x1f"  # joins the parts of a composite look-up value (never in an id)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


@attrs.frozen
class Lookup:
    """One way to find an aggregate besides its id: ``name`` = ``value``.

    Attributes:
        name: What is looked up (``"order"``, ``"tracking"``), per repository.
        value: The value found under it (an order id, ``carrier + tracking number``).
        unique: Whether at most one aggregate of the kind may have this value; the table
            refuses a second one, and the ``add`` or ``save`` raises
            :class:`~ecommerce_core.errors.Conflict`.

    """

    name: str
    value: str
    unique: bool = False


def joined(*parts: object) -> str:
    """One look-up value made of several parts (``joined(carrier, tracking_number)``)."""
    return _SEPARATOR.join(str(part) for part in parts)


class SqliteAggregateRepository(Generic[_A]):
    """Aggregates of one kind as JSON documents, with optimistic concurrency and look-ups.

    A subclass sets three class attributes and, as needed, overrides three hooks:

    - :attr:`kind`: the name its rows are stored under (unique among repositories, never
      changed once data is stored);
    - :attr:`aggregate_type`: the aggregate's class (or the base of its classes);
    - :attr:`noun`: what :class:`~ecommerce_core.errors.NotFound` calls it;
    - :meth:`key_of`: the id it is stored and loaded by (``aggregate.id`` by default);
    - :meth:`deadline_of`: when it is due (``None``: never; the default), for :meth:`_due`;
    - :meth:`lookups`: the other ways it is found (none by default), for :meth:`_ids_by`
      and :meth:`_load_by`.

    :meth:`add`, :meth:`get`, :meth:`save`, :meth:`all` and ``len()`` are inherited; the
    port's own queries are one line each over :meth:`_due`, :meth:`_ids_by` and
    :meth:`_load_by`.

    Args:
        database: The open database.
        processes: Where stored process names are looked up.
        codec: How aggregates and events become JSON (one built from ``processes`` by default).

    Attributes:
        kind: The name the rows are stored under.
        aggregate_type: The aggregate's class.
        noun: What errors call one aggregate.

    """

    kind: ClassVar[str]
    aggregate_type: ClassVar[type[Any]]
    noun: ClassVar[str] = "aggregate"

    def __init__(
        self,
        database: SqliteDatabase,
        *,
        processes: Mapping[str, Process] = PROCESSES,
        codec: JsonCodec | None = None,
    ) -> None:
        self.database = database
        self.codec = JsonCodec(processes) if codec is None else codec

    # ----------------------------------------------------------------- hooks

    def key_of(self, aggregate: _A) -> str:
        """The id ``aggregate`` is stored and loaded by: its ``id`` unless overridden."""
        key: str = getattr(aggregate, "id")  # noqa: B009  # a hook over any aggregate class
        return key

    def deadline_of(self, aggregate: _A) -> datetime | None:  # noqa: ARG002  # a hook
        """When ``aggregate`` falls due (``None``: not due at all, the default)."""
        return None

    def lookups(self, aggregate: _A) -> Iterable[Lookup]:  # noqa: ARG002  # a hook
        """The other ways ``aggregate`` is found (none by default)."""
        return ()

    # ----------------------------------------------------------------- the repository

    def add(self, aggregate: _A) -> None:
        """Store a new aggregate and write its pending events to the outbox.

        Raises:
            Conflict: One with this id is stored already, or a unique look-up value is taken;
                nothing is written.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        key, row = self.key_of(aggregate), self._row(aggregate)
        lookups = self._lookup_set(aggregate)
        with self.database.transaction(f"add {self.noun}") as connection:
            try:
                connection.execute(
                    "INSERT INTO aggregates (kind, id, version, class, deadline_at, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self.kind, key, *row),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"{self.noun} {key!r} is already stored") from None
            self._insert_lookups(connection, key, lookups)
            _write_events(connection, self.codec, _events(aggregate))

    def get(self, key: str) -> _A:
        """Load an aggregate; the caller owns the object returned.

        Raises:
            NotFound: None is stored under ``key``.

        """
        if type(key) is not str:
            raise NotFound(self.noun, key)
        rows = self.database.read(
            "SELECT class, body FROM aggregates WHERE kind = ? AND id = ?", (self.kind, key)
        )
        if not rows:
            raise NotFound(self.noun, key)
        return self._decode(rows[0])

    def save(self, aggregate: _A, expected_version: int) -> None:
        """Store ``aggregate`` and its pending events if its stored version is ``expected_version``.

        Raises:
            VersionConflict: The stored version differs, or it was never added; nothing is
                written.
            Conflict: A unique look-up value it now has is taken by another aggregate.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        key, row = self.key_of(aggregate), self._row(aggregate)
        lookups = self._lookup_set(aggregate)
        with self.database.transaction(f"save {self.noun}") as connection:
            updated = connection.execute(
                "UPDATE aggregates SET version = ?, class = ?, deadline_at = ?, body = ? "
                "WHERE kind = ? AND id = ? AND version = ?",
                (*row, self.kind, key, expected_version),
            ).rowcount
            if updated != 1:
                stored = connection.execute(
                    "SELECT version FROM aggregates WHERE kind = ? AND id = ?", (self.kind, key)
                ).fetchone()
                raise VersionConflict(key, expected_version, None if stored is None else stored[0])
            if lookups:
                self._update_lookups(connection, key, lookups)
            _write_events(connection, self.codec, _events(aggregate))

    def all(self) -> list[_A]:
        """Every stored aggregate of the kind, by id (for reports and tests)."""
        rows = self.database.read(
            "SELECT class, body FROM aggregates WHERE kind = ? ORDER BY id", (self.kind,)
        )
        return [self._decode(row) for row in rows]

    def __len__(self) -> int:
        ((count,),) = self.database.read(
            "SELECT count(*) FROM aggregates WHERE kind = ?", (self.kind,)
        )
        return int(count)

    # ----------------------------------------------------------------- queries for subclasses

    def _due(self, now: datetime, limit: int) -> list[str]:
        """Ids whose :meth:`deadline_of` is at or before ``now``, earliest first (by index).

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        check_now(now)
        if type(limit) is not int or limit < 0:
            raise InvalidInput("limit", limit, "must be a whole number, zero or more")
        rows = self.database.read(
            "SELECT id FROM aggregates WHERE kind = ? AND deadline_at IS NOT NULL "
            "AND deadline_at <= ? ORDER BY deadline_at, id LIMIT ?",
            (self.kind, _micros(now), limit),
        )
        return [key for (key,) in rows]

    def _ids_by(self, name: str, value: str) -> list[str]:
        """Ids of the aggregates found under look-up ``name`` = ``value``, oldest first."""
        rows = self.database.read(
            "SELECT id FROM aggregate_lookups WHERE kind = ? AND name = ? AND value = ? "
            "ORDER BY seq",
            (self.kind, name, value),
        )
        return [key for (key,) in rows]

    def _load_by(self, name: str, value: str) -> list[_A]:
        """The aggregates found under look-up ``name`` = ``value``, oldest first."""
        rows = self.database.read(
            "SELECT a.class, a.body FROM aggregate_lookups AS l JOIN aggregates AS a "
            "ON a.kind = l.kind AND a.id = l.id "
            "WHERE l.kind = ? AND l.name = ? AND l.value = ? ORDER BY l.seq",
            (self.kind, name, value),
        )
        return [self._decode(row) for row in rows]

    # ----------------------------------------------------------------- rows

    def _decode(self, row: Sequence[Any]) -> _A:
        aggregate: _A = self.codec.decode_aggregate(self.aggregate_type, row[0], row[1])
        return aggregate

    def _row(self, aggregate: _A) -> tuple[object, ...]:
        if not isinstance(aggregate, self.aggregate_type):
            raise InvalidInput(
                self.noun, aggregate, f"must be a {self.aggregate_type.__qualname__}"
            )
        name, body = self.codec.encode_aggregate(aggregate)
        deadline = self.deadline_of(aggregate)
        version: int = getattr(aggregate, "version")  # noqa: B009  # any aggregate class
        return (version, name, None if deadline is None else _micros(deadline), body)

    def _lookup_set(self, aggregate: _A) -> dict[tuple[str, str], bool]:
        return {(each.name, each.value): each.unique for each in self.lookups(aggregate)}

    def _insert_lookups(
        self,
        connection: sqlite3.Connection,
        key: str,
        lookups: Mapping[tuple[str, str], bool],
    ) -> None:
        for (name, value), unique in lookups.items():
            try:
                connection.execute(
                    "INSERT INTO aggregate_lookups (kind, name, value, id, is_unique) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (self.kind, name, value, key, int(unique)),
                )
            except sqlite3.IntegrityError:
                shown = value.replace(_SEPARATOR, " ")
                raise Conflict(
                    f"another {self.noun} has {name} {shown!r}, which must be unique"
                ) from None

    def _update_lookups(
        self,
        connection: sqlite3.Connection,
        key: str,
        lookups: Mapping[tuple[str, str], bool],
    ) -> None:
        stored = {
            (name, value): bool(unique)
            for name, value, unique in connection.execute(
                "SELECT name, value, is_unique FROM aggregate_lookups WHERE kind = ? AND id = ?",
                (self.kind, key),
            )
        }
        if stored == lookups:
            return
        gone = [pair for pair, unique in stored.items() if lookups.get(pair) != unique]
        connection.executemany(
            "DELETE FROM aggregate_lookups WHERE kind = ? AND name = ? AND value = ? AND id = ?",
            [(self.kind, name, value, key) for name, value in gone],
        )
        self._insert_lookups(
            connection,
            key,
            {pair: unique for pair, unique in lookups.items() if stored.get(pair) != unique},
        )


def _events(aggregate: object) -> tuple[DomainEvent, ...]:
    events: tuple[DomainEvent, ...] = getattr(aggregate, "events", ())
    return events


def _write_events(
    connection: sqlite3.Connection, codec: JsonCodec, events: Sequence[DomainEvent]
) -> None:
    """Write pending events to the outbox; one already there (saved twice) is written once.

    Raises:
        Conflict: The outbox holds another event under the same aggregate id and version
            (two aggregates of different kinds share an id).

    """
    if not events:
        return
    rows = []
    for event in events:
        name, payload = codec.encode_event(event)
        rows.append((event.aggregate_id, event.version, name, payload))
    written = connection.executemany(
        "INSERT OR IGNORE INTO outbox (aggregate_id, version, type, payload) VALUES (?, ?, ?, ?)",
        rows,
    ).rowcount
    if written == len(rows):
        return
    for aggregate_id, version, name, payload in rows:
        stored = connection.execute(
            "SELECT type, payload FROM outbox WHERE aggregate_id = ? AND version = ?",
            (aggregate_id, version),
        ).fetchone()
        if stored != (name, payload):
            raise Conflict(
                f"the outbox holds another event as version {version} of {aggregate_id!r}: "
                "two aggregates share that id; ids must be unique across kinds"
            )


# --------------------------------------------------------------------------- the repositories


class SqlitePaymentRepository(SqliteAggregateRepository[PaymentRecord]):
    """Payments in SQLite (:class:`~ecommerce_core.ports.PaymentRepository`).

    Any :class:`~ecommerce_core.payments.PaymentRecord` subclass is stored and read back as
    itself; ``due`` follows the payment's ``deadline`` (an authorization's expiry),
    ``for_order`` the order it pays.
    """

    kind = "payment"
    aggregate_type = PaymentRecord
    noun = "payment"

    def deadline_of(self, aggregate: PaymentRecord) -> datetime | None:
        """The payment's ``deadline``."""
        return aggregate.deadline

    def lookups(self, aggregate: PaymentRecord) -> list[Lookup]:
        """Found by the order it pays."""
        return [Lookup("order", aggregate.order_id)]

    def for_order(self, order_id: str) -> list[str]:
        """Ids of an order's payments, oldest first."""
        return self._ids_by("order", order_id)

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of payments whose deadline is at or before ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)


class SqliteShipmentRepository(SqliteAggregateRepository[Shipment]):
    """Shipments in SQLite (:class:`~ecommerce_core.ports.ShipmentRepository`).

    Its two uniqueness rules, ``(order_id, sequence)`` and ``(carrier, tracking_number)``, are
    unique look-ups: the table itself refuses the second parcel packed at once.
    """

    kind = "shipment"
    aggregate_type = Shipment
    noun = "shipment"

    def lookups(self, aggregate: Shipment) -> list[Lookup]:
        """Found by order, by order and sequence (unique), by carrier and number (unique)."""
        return [
            Lookup("order", aggregate.order_id),
            Lookup(
                "order and sequence",
                joined(aggregate.order_id, aggregate.sequence),
                unique=True,
            ),
            Lookup(
                "carrier and tracking number",
                joined(aggregate.carrier, aggregate.tracking_number),
                unique=True,
            ),
        ]

    def by_tracking_number(self, carrier: str, tracking_number: str) -> Shipment:
        """Load the shipment a carrier knows by this tracking number.

        Raises:
            NotFound: No shipment with that carrier and tracking number.

        """
        found = self._load_by("carrier and tracking number", joined(carrier, tracking_number))
        if not found:
            raise NotFound("tracking number", f"{carrier}:{tracking_number}")
        return found[0]

    def for_order(self, order_id: str) -> list[Shipment]:
        """Every shipment of an order, by sequence (empty if none)."""
        return sorted(self._load_by("order", order_id), key=lambda shipment: shipment.sequence)


class SqliteAfterSalesRepository(SqliteAggregateRepository[OrderAfterSales]):
    """Each order's after-sales record in SQLite (:class:`~.ports.AfterSalesRepository`).

    Stored and loaded by the order's id.
    """

    kind = "after-sales"
    aggregate_type = OrderAfterSales
    noun = "after-sales record"

    def key_of(self, aggregate: OrderAfterSales) -> str:
        """The order's id: one record per order."""
        return aggregate.order_id


class SqliteTeamRepository(SqliteAggregateRepository[Team]):
    """Team-purchase teams in SQLite (:class:`~ecommerce_core.ports.TeamRepository`).

    ``due`` follows a forming team's deadline; ``team_of`` finds a team by any member's order.
    """

    kind = "team"
    aggregate_type = Team
    noun = "team"

    def deadline_of(self, aggregate: Team) -> datetime | None:
        """The deadline of a forming team; ``None`` once formed or failed."""
        return aggregate.due_at

    def lookups(self, aggregate: Team) -> list[Lookup]:
        """Found by each member's order."""
        return [Lookup("order", member.order_id) for member in aggregate.members]

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of forming teams whose deadline is at or before ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)

    def team_of(self, order_id: str) -> str | None:
        """The id of the team a member's order took a place in, or ``None``."""
        found = self._ids_by("order", order_id)
        return found[0] if found else None
