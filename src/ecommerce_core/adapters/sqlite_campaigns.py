"""SQLite repositories for the collective sales modes: auctions, lucky draws, group buys, rebates.

Each is a :class:`~ecommerce_core.adapters.sqlite_aggregates.SqliteAggregateRepository`: one
JSON document per aggregate in the shared ``aggregates`` table, an optimistic version, a
deadline column for ``due`` and look-up rows for the port's other queries, with the
aggregate's events written to the outbox in the same transaction. No schema change: they live
in the same file as orders, payments and teams (schema version 3).

=======================================  ==========================  =========================
repository                               ``due`` follows             look-ups
=======================================  ==========================  =========================
:class:`SqliteAuctionRepository`         the end, then the payment   none
                                         deadline
:class:`SqliteDrawRoundRepository`       the sell-by; the sell-out   each share order (unique:
                                         while waiting for the       an order buys into one
                                         draw; the address deadline  round)
:class:`SqliteGroupBuyRepository`        the end of the window       none
:class:`SqliteRebateRepository`          the thaw time, while        the order (an order may
                                         frozen                      earn several rebates)
=======================================  ==========================  =========================

A group buy's and a round's counters (units joined, orders per buyer, held shares, the paid
order) are not stored: each aggregate rebuilds them from its stored purchases when it is
constructed, so a campaign read back quotes, counts and draws as the one saved.

Example:
    >>> from ecommerce_core.adapters.sqlite import SqliteDatabase
    >>> from ecommerce_core.testing.contracts import make_group_buy
    >>> with SqliteDatabase(":memory:") as db:
    ...     campaigns = SqliteGroupBuyRepository(db)
    ...     campaigns.add(make_group_buy())
    ...     (campaigns.get("gb-1").state, len(campaigns))
    ('running', 1)

"""

from __future__ import annotations

from datetime import datetime

from ecommerce_core.adapters.sqlite_aggregates import Lookup, SqliteAggregateRepository
from ecommerce_core.auctions import Auction
from ecommerce_core.campaigns.group_buy import GroupBuy
from ecommerce_core.campaigns.lucky_draw import DrawRound, DrawRoundState
from ecommerce_core.campaigns.rebate import Rebate

__all__ = [
    "SqliteAuctionRepository",
    "SqliteDrawRoundRepository",
    "SqliteGroupBuyRepository",
    "SqliteRebateRepository",
]


class SqliteAuctionRepository(SqliteAggregateRepository[Auction]):
    """Auctions in SQLite (:class:`~ecommerce_core.ports.AuctionRepository`).

    ``due`` follows a running auction's end (extensions included), then its winner's payment
    deadline; a sold, unsold or unpaid auction is never due.
    """

    kind = "auction"
    aggregate_type = Auction
    noun = "auction"

    def deadline_of(self, aggregate: Auction) -> datetime | None:
        """The auction's ``due_at``: its end while running, then the payment deadline."""
        return aggregate.due_at

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of auctions whose end or payment deadline is at or before ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)


class SqliteDrawRoundRepository(SqliteAggregateRepository[DrawRound]):
    """Lucky-draw rounds in SQLite (:class:`~ecommerce_core.ports.DrawRoundRepository`).

    ``due`` follows the sell-by while selling, the sell-out while the round waits for its
    draw, and the address deadline once drawn. ``round_of`` finds a round by any order that
    reserved shares in it (released ones included); an order reserves in one round only, and
    the table refuses a second round claiming it
    (:class:`~ecommerce_core.errors.Conflict`).
    """

    kind = "draw-round"
    aggregate_type = DrawRound
    noun = "draw round"

    def deadline_of(self, aggregate: DrawRound) -> datetime | None:
        """The sell-out while sold out and undrawn, else the round's ``due_at``."""
        if aggregate.state == DrawRoundState.SOLD_OUT:
            return aggregate.sold_out_at
        return aggregate.due_at

    def lookups(self, aggregate: DrawRound) -> list[Lookup]:
        """Found by each share order (unique)."""
        return [Lookup("order", purchase.order_id, unique=True) for purchase in aggregate.purchases]

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of rounds with something to do at ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)

    def round_of(self, order_id: str) -> str | None:
        """The id of the round a share order reserved shares in, or ``None``."""
        found = self._ids_by("order", order_id)
        return found[0] if found else None


class SqliteGroupBuyRepository(SqliteAggregateRepository[GroupBuy]):
    """Group-buy campaigns in SQLite (:class:`~ecommerce_core.ports.GroupBuyRepository`).

    ``due`` follows a running campaign's end of window; a closed one is never due.
    """

    kind = "group-buy"
    aggregate_type = GroupBuy
    noun = "group buy"

    def deadline_of(self, aggregate: GroupBuy) -> datetime | None:
        """The end of the window while running; ``None`` once succeeded or failed."""
        return aggregate.due_at

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of running campaigns whose window ended at or before ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)


class SqliteRebateRepository(SqliteAggregateRepository[Rebate]):
    """Rebates in SQLite (:class:`~ecommerce_core.ports.RebateRepository`).

    ``due`` follows a frozen rebate's thaw time; ``for_order`` finds an order's rebates.
    """

    kind = "rebate"
    aggregate_type = Rebate
    noun = "rebate"

    def deadline_of(self, aggregate: Rebate) -> datetime | None:
        """The thaw time while frozen; ``None`` otherwise."""
        return aggregate.due_at

    def lookups(self, aggregate: Rebate) -> list[Lookup]:
        """Found by the order it was granted on."""
        return [Lookup("order", aggregate.order_id)]

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of frozen rebates whose thaw time is at or before ``now``, earliest first.

        Raises:
            InvalidInput: A naive ``now``, or a negative or non-integer ``limit``.

        """
        return self._due(now, limit)

    def for_order(self, order_id: str) -> list[str]:
        """The ids of the rebates granted on an order, sorted."""
        return sorted(self._ids_by("order", order_id))
