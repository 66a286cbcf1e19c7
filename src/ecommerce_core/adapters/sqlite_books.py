"""SQLite books of money and counters: the ledger, promotion limits, credit lines.

- :class:`SqliteLedger` (:class:`~ecommerce_core.ports.Ledger`): each posting is one row of
  ``ledger_postings``, append-only (triggers refuse ``UPDATE`` and ``DELETE``), unique by key;
  ``ledger_balances`` holds each account's balance per currency, kept in step in the same
  transaction as the postings, so :meth:`~SqliteLedger.balance` is one indexed read;
- :class:`SqlitePromotionLedger` (:class:`~ecommerce_core.ports.PromotionLedger`): one counter
  row per limit key, taken with one compare-and-set per key
  (``UPDATE ... SET held = held + ? WHERE key = ? AND held + ? <= ?``), all or nothing;
- :class:`SqliteCreditLines` (:class:`~ecommerce_core.ports.CreditLines`): one row per buyer,
  drawn with ``UPDATE ... SET drawn = drawn + ? WHERE ... AND limit_minor - drawn >= ?``, and
  one row per idempotency key.

Every write is one transaction that joins the caller's
:meth:`~ecommerce_core.adapters.sqlite.SqliteDatabase.transaction` when one is open: a payment
saved and its postings appended inside one block are stored together or not at all.

Example:
    >>> from ecommerce_core.adapters.sqlite import SqliteDatabase
    >>> from ecommerce_core.money import Money
    >>> from ecommerce_core.payments import Account, Movement, Posting
    >>> from ecommerce_core.testing import CONTRACT_TIME
    >>> buyer, escrow = Account.buyer("alice"), Account.escrow()
    >>> with SqliteDatabase(":memory:") as db:
    ...     ledger = SqliteLedger(db)
    ...     posting = Posting(
    ...         "o-1:capture", "o-1", "1", buyer, escrow, Money.of("76.00", "CNY"),
    ...         Movement.CAPTURE, CONTRACT_TIME,
    ...     )
    ...     (ledger.append([posting]), ledger.append([posting]), str(ledger.balance(escrow, "CNY")))
    (1, 0, '76.00 CNY')

"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from ecommerce_core.adapters.codec import JsonCodec
from ecommerce_core.adapters.sqlite import SqliteDatabase
from ecommerce_core.errors import (
    CreditLimitExceeded,
    CurrencyMismatch,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
)
from ecommerce_core.limits import PROMOTION_HOLD_PROCESS, HoldState, LimitClaim, check_claims
from ecommerce_core.money import Money
from ecommerce_core.payments.ledger import Account, Movement, Posting

__all__ = [
    "SqliteCreditLines",
    "SqliteLedger",
    "SqlitePromotionLedger",
]

_BATCH: Final = 500  # keys per ``IN (...)`` query, well under SQLite's variable limit
_POSTING_COLUMNS: Final = (
    "key, order_id, line_id, source_kind, source_owner, target_kind, target_owner, "
    "minor, currency, movement, at"
)


def _posting_row(posting: Posting) -> tuple[object, ...]:
    return (
        posting.key,
        posting.order_id,
        posting.line_id,
        posting.source.kind.value,
        posting.source.owner,
        posting.target.kind.value,
        posting.target.owner,
        posting.amount.minor,
        posting.amount.currency,
        posting.movement.value,
        posting.at.isoformat(),
    )


def _posting(row: Sequence[Any]) -> Posting:
    key, order_id, line_id, source_kind, source_owner, target_kind, target_owner = row[:7]
    minor, currency, movement, at = row[7:]
    return Posting(
        key,
        order_id,
        line_id,
        Account(source_kind, source_owner),
        Account(target_kind, target_owner),
        Money(minor, currency),
        Movement(movement),
        datetime.fromisoformat(at),
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


class SqliteLedger:
    """The double-entry book in SQLite: postings as append-only rows, balances kept in step.

    Args:
        database: The open database.

    """

    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database

    def append(self, postings: Sequence[Posting]) -> int:
        """Append every posting or none; known keys with the same posting are skipped.

        Returns:
            How many postings were new.

        Raises:
            IdempotencyConflict: A key is stored with another posting; nothing was appended.
            InvalidInput: Not postings, or one key twice in the batch with different content.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        batch = tuple(postings)
        for posting in batch:
            if not isinstance(posting, Posting):
                raise InvalidInput("postings", posting, "the ledger takes Postings only")
        if not batch:
            return 0
        with self.database.transaction("append postings") as connection:
            stored = self._stored(connection, [posting.key for posting in batch])
            fresh: dict[str, Posting] = {}
            for posting in batch:
                known = stored.get(posting.key) or fresh.get(posting.key)
                if known is None:
                    fresh[posting.key] = posting
                elif known != posting:
                    if posting.key in fresh:
                        raise InvalidInput("postings", posting.key, "one key twice in the batch")
                    raise IdempotencyConflict(posting.key, "another posting is stored under it")
            if not fresh:
                return 0
            connection.executemany(
                f"INSERT INTO ledger_postings ({_POSTING_COLUMNS}) "  # noqa: S608  # fixed text
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_posting_row(posting) for posting in fresh.values()],
            )
            moves: dict[tuple[str, str, str], int] = {}
            for posting in fresh.values():
                currency, minor = posting.amount.currency, posting.amount.minor
                for account, sign in ((posting.source, -1), (posting.target, 1)):
                    slot = (account.kind.value, account.owner, currency)
                    moves[slot] = moves.get(slot, 0) + sign * minor
            connection.executemany(
                "INSERT INTO ledger_balances (account_kind, account_owner, currency, minor) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (account_kind, account_owner, currency) "
                "DO UPDATE SET minor = minor + excluded.minor",
                [(*slot, minor) for slot, minor in moves.items()],
            )
            return len(fresh)

    @staticmethod
    def _stored(connection: sqlite3.Connection, keys: Sequence[str]) -> dict[str, Posting]:
        found: dict[str, Posting] = {}
        for chunk in _chunks(sorted(set(keys))):
            placeholders = ", ".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT {_POSTING_COLUMNS} FROM ledger_postings "  # noqa: S608  # only ?s
                f"WHERE key IN ({placeholders})",
                tuple(chunk),
            )
            found.update((row[0], _posting(row)) for row in rows)
        return found

    def postings(self, order_id: str) -> list[Posting]:
        """An order's postings, in the order they were appended."""
        rows = self.database.read(
            f"SELECT {_POSTING_COLUMNS} FROM ledger_postings "  # noqa: S608  # fixed text
            "WHERE order_id = ? ORDER BY seq",
            (order_id,),
        )
        return [_posting(row) for row in rows]

    def balance(self, account: Account, currency: str) -> Money:
        """What ``account`` holds in ``currency``: money in less money out."""
        rows = self.database.read(
            "SELECT minor FROM ledger_balances "
            "WHERE account_kind = ? AND account_owner = ? AND currency = ?",
            (account.kind.value, account.owner, currency),
        )
        return Money(int(rows[0][0]) if rows else 0, currency)

    def balances(self, currency: str) -> dict[Account, Money]:
        """Every account that ever moved money in ``currency``, with its balance."""
        rows = self.database.read(
            "SELECT account_kind, account_owner, minor FROM ledger_balances WHERE currency = ?",
            (currency,),
        )
        found = {Account(kind, owner): Money(minor, currency) for kind, owner, minor in rows}
        return dict(sorted(found.items()))

    def all(self) -> list[Posting]:
        """Every posting, in append order (for reports and tests)."""
        rows = self.database.read(
            f"SELECT {_POSTING_COLUMNS} FROM ledger_postings ORDER BY seq"  # noqa: S608
        )
        return [_posting(row) for row in rows]

    def __len__(self) -> int:
        ((count,),) = self.database.read("SELECT count(*) FROM ledger_postings")
        return int(count)


_CLAIMS: Final = tuple[LimitClaim, ...]


def _amounts(text: str) -> dict[str, int]:
    found: dict[str, int] = json.loads(text)
    return found


class SqlitePromotionLedger:
    """Promotion limit counters in SQLite, with all-or-nothing, idempotent reservations.

    Args:
        database: The open database.
        codec: How claims are written (a default :class:`JsonCodec` if omitted).

    """

    def __init__(self, database: SqliteDatabase, *, codec: JsonCodec | None = None) -> None:
        self.database = database
        self.codec = JsonCodec() if codec is None else codec

    def reserve(self, reservation_id: str, claims: Sequence[LimitClaim]) -> None:
        """Reserve every claim, or none (see :class:`~ecommerce_core.ports.PromotionLedger`).

        Raises:
            LimitExceeded: Some key would pass its cap; nothing was reserved.
            IdempotencyConflict: This reservation id is live with different claims.
            InvalidInput: No claims, or one key claimed with two caps.
            StorageBusy: The store stayed locked for the whole busy timeout.

        """
        claims = tuple(claims)
        totals = check_claims(claims)
        with self.database.transaction("reserve promotion limits") as connection:
            row = connection.execute(
                "SELECT claims, state FROM promotion_holds WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is not None and row[1] != HoldState.RELEASED:
                if self.codec.decode_value(_CLAIMS, row[0]) != claims:
                    raise IdempotencyConflict(reservation_id, "different claims")
                return
            for key, (amount, cap) in sorted(totals.items()):
                connection.execute(
                    "INSERT INTO promotion_counters (key, held) VALUES (?, 0) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key,),
                )
                taken = connection.execute(
                    "UPDATE promotion_counters SET held = held + ? WHERE key = ? AND held + ? <= ?",
                    (amount, key, amount, cap),
                ).rowcount
                if taken != 1:
                    ((held,),) = connection.execute(
                        "SELECT held FROM promotion_counters WHERE key = ?", (key,)
                    )
                    raise LimitExceeded(
                        key,
                        max(0, cap - held),
                        amount,
                        aggregate_id=reservation_id,
                        command="reserve",
                    )
            kept: dict[str, int] = {}
            temporary: dict[str, int] = {}
            for claim in claims:
                book = temporary if claim.until_paid else kept
                book[claim.key] = book.get(claim.key, 0) + claim.amount
            connection.execute(
                "INSERT INTO promotion_holds (id, claims, kept, temporary, state) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET claims = excluded.claims, "
                "kept = excluded.kept, temporary = excluded.temporary, state = excluded.state",
                (
                    reservation_id,
                    self.codec.encode_value(_CLAIMS, claims),
                    json.dumps(kept),
                    json.dumps(temporary),
                    HoldState.RESERVED,
                ),
            )

    def commit(self, reservation_id: str) -> None:
        """Keep the claims; give back those held until paid. A repeat is a no-op.

        Raises:
            NotFound: No such reservation.
            RuleViolation: The reservation was released.

        """
        with self.database.transaction("commit promotion limits") as connection:
            row = connection.execute(
                "SELECT temporary, state FROM promotion_holds WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is None:
                raise NotFound("promotion reservation", reservation_id)
            if row[1] == HoldState.COMMITTED:
                return
            state = PROMOTION_HOLD_PROCESS.fire(row[1], "commit", subject_id=reservation_id)
            self._give_back(connection, _amounts(row[0]))
            connection.execute(
                "UPDATE promotion_holds SET state = ? WHERE id = ?", (state, reservation_id)
            )

    def release(self, reservation_id: str) -> bool:
        """Give back what the reservation holds; ``False`` if nothing was held."""
        with self.database.transaction("release promotion limits") as connection:
            row = connection.execute(
                "SELECT kept, temporary, state FROM promotion_holds WHERE id = ?",
                (reservation_id,),
            ).fetchone()
            if row is None or row[2] == HoldState.RELEASED:
                return False
            kept, temporary, current = _amounts(row[0]), _amounts(row[1]), row[2]
            self._give_back(connection, kept)
            if current != HoldState.COMMITTED:
                self._give_back(connection, temporary)
            state = PROMOTION_HOLD_PROCESS.fire(current, "release", subject_id=reservation_id)
            connection.execute(
                "UPDATE promotion_holds SET state = ? WHERE id = ?", (state, reservation_id)
            )
            return True

    @staticmethod
    def _give_back(connection: sqlite3.Connection, amounts: Mapping[str, int]) -> None:
        connection.executemany(
            "UPDATE promotion_counters SET held = held - ? WHERE key = ?",
            [(amount, key) for key, amount in amounts.items()],
        )

    def usage(self, keys: Iterable[str]) -> dict[str, int]:
        """What each key holds now (0 for a key never used)."""
        wanted = list(keys)
        found: dict[str, int] = {}
        for chunk in _chunks(sorted(set(wanted))):
            placeholders = ", ".join("?" * len(chunk))
            found.update(
                self.database.read(
                    "SELECT key, held FROM promotion_counters "  # noqa: S608  # only ?s
                    f"WHERE key IN ({placeholders})",
                    tuple(chunk),
                )
            )
        return {key: int(found.get(key, 0)) for key in wanted}

    def state(self, reservation_id: str) -> str | None:
        """The reservation's state (``reserved``, ``committed``, ``released``), or ``None``."""
        rows = self.database.read(
            "SELECT state FROM promotion_holds WHERE id = ?", (reservation_id,)
        )
        return str(rows[0][0]) if rows else None


class SqliteCreditLines:
    """Buyers' credit lines in SQLite, with keyed, idempotent draws and restorations.

    Args:
        database: The open database.
        limits: Lines to open (or change) now, as :meth:`grant` would.

    """

    def __init__(self, database: SqliteDatabase, limits: Mapping[str, Money] | None = None) -> None:
        self.database = database
        if limits:
            with database.transaction("grant credit lines"):
                for buyer_id, limit in limits.items():
                    self.grant(buyer_id, limit)

    def grant(self, buyer_id: str, limit: Money) -> None:
        """Open or change a buyer's credit line (what is drawn stays drawn).

        Raises:
            InvalidInput: The limit is not Money, or is negative.
            CurrencyMismatch: The line exists in another currency.

        """
        if not isinstance(limit, Money) or limit.is_negative:
            raise InvalidInput("limit", limit, "must be Money, not negative")
        with self.database.transaction("grant credit line") as connection:
            row = connection.execute(
                "SELECT currency FROM credit_lines WHERE buyer_id = ?", (buyer_id,)
            ).fetchone()
            if row is not None and row[0] != limit.currency:
                raise CurrencyMismatch(row[0], limit.currency, "grant")
            connection.execute(
                "INSERT INTO credit_lines (buyer_id, limit_minor, currency) VALUES (?, ?, ?) "
                "ON CONFLICT (buyer_id) DO UPDATE SET limit_minor = excluded.limit_minor",
                (buyer_id, limit.minor, limit.currency),
            )

    def _line(self, buyer_id: str) -> tuple[int, str, int]:
        rows = self.database.read(
            "SELECT limit_minor, currency, drawn FROM credit_lines WHERE buyer_id = ?",
            (buyer_id,),
        )
        if not rows:
            raise NotFound("credit line", buyer_id)
        limit, currency, drawn = rows[0]
        return int(limit), str(currency), int(drawn)

    def limit(self, buyer_id: str) -> Money:
        """The buyer's credit limit.

        Raises:
            NotFound: The buyer has no credit line.

        """
        limit, currency, _ = self._line(buyer_id)
        return Money(limit, currency)

    def drawn(self, buyer_id: str) -> Money:
        """What the buyer has drawn and not yet given back."""
        _, currency, drawn = self._line(buyer_id)
        return Money(drawn, currency)

    def available(self, buyer_id: str) -> Money:
        """What the buyer may still draw: the limit less what is drawn, never below zero."""
        limit, currency, drawn = self._line(buyer_id)
        return Money(max(limit - drawn, 0), currency)

    def draw(self, key: str, buyer_id: str, amount: Money) -> None:
        """Draw ``amount`` on the buyer's line, once per ``key``; never beyond what is available.

        Raises:
            CreditLimitExceeded: More than is available; nothing was drawn.
            IdempotencyConflict: ``key`` was used for another draw.
            CurrencyMismatch: Not the line's currency.
            InvalidInput: A zero or negative amount.
            NotFound: The buyer has no credit line.

        """
        self._check(buyer_id, amount, "draw")
        with self.database.transaction("draw credit") as connection:
            if self._repeat(connection, key, "draw", buyer_id, amount):
                return
            taken = connection.execute(
                "UPDATE credit_lines SET drawn = drawn + ? "
                "WHERE buyer_id = ? AND limit_minor - drawn >= ?",
                (amount.minor, buyer_id, amount.minor),
            ).rowcount
            if taken != 1:
                raise CreditLimitExceeded(buyer_id, self.available(buyer_id), amount)
            self._remember(connection, key, "draw", buyer_id, amount)

    def restore(self, key: str, buyer_id: str, amount: Money) -> None:
        """Give ``amount`` back to the buyer's line, once per ``key``; never more than is drawn.

        Raises:
            InvalidInput: More than is drawn, or a zero or negative amount.
            IdempotencyConflict: ``key`` was used for another restoration.
            CurrencyMismatch: Not the line's currency.
            NotFound: The buyer has no credit line.

        """
        self._check(buyer_id, amount, "restore")
        with self.database.transaction("restore credit") as connection:
            if self._repeat(connection, key, "restore", buyer_id, amount):
                return
            given = connection.execute(
                "UPDATE credit_lines SET drawn = drawn - ? WHERE buyer_id = ? AND drawn >= ?",
                (amount.minor, buyer_id, amount.minor),
            ).rowcount
            if given != 1:
                drawn = self.drawn(buyer_id)
                raise InvalidInput("amount", amount, f"more than the {drawn} drawn")
            self._remember(connection, key, "restore", buyer_id, amount)

    def _check(self, buyer_id: str, amount: object, what: str) -> None:
        limit = self.limit(buyer_id)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != limit.currency:
            raise CurrencyMismatch(limit.currency, amount.currency, what)
        if not amount.is_positive:
            raise InvalidInput("amount", amount, "must be positive")

    @staticmethod
    def _repeat(
        connection: sqlite3.Connection, key: str, what: str, buyer_id: str, amount: Money
    ) -> bool:
        row = connection.execute(
            "SELECT what, buyer_id, minor, currency FROM credit_keys WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return False
        known = Money(row[2], row[3])
        if (row[0], row[1], known) != (what, buyer_id, amount):
            raise IdempotencyConflict(key, f"first used for {row[0]} of {known}")
        return True

    @staticmethod
    def _remember(
        connection: sqlite3.Connection, key: str, what: str, buyer_id: str, amount: Money
    ) -> None:
        connection.execute(
            "INSERT INTO credit_keys (key, what, buyer_id, minor, currency) VALUES (?, ?, ?, ?, ?)",
            (key, what, buyer_id, amount.minor, amount.currency),
        )
