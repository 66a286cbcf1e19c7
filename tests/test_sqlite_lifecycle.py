"""The published lifecycle machine, run by a host on the SQLite adapters.

This is what ``docs/embedding.md`` tells a host to do: subclass
:class:`~ecommerce_core.testing.stateful.OrderLifecycleMachine`, give it the adapters under
test (here our SQLite repository, inventory and outbox, on a fresh file per example), and hand
its ``TestCase`` to pytest. Every check of the in-memory run applies; on top, after every step,
the outbox has delivered exactly the events the service published, in order, and holds none
pending.

Then the contract suites of the other ports (payments, the ledger, credit lines, promotion
limits, shipments, after-sales records, teams, auctions, lucky-draw
rounds, group buys, rebates), subclassed against our SQLite adapters the same
way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import invariant

from ecommerce_core.adapters.memory import RecordingPublisher
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
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
from ecommerce_core.testing.contracts import (
    AfterSalesRepositoryContract,
    AuctionRepositoryContract,
    DrawRoundRepositoryContract,
    GroupBuyRepositoryContract,
    PromotionLedgerContract,
    RebateRepositoryContract,
    ShipmentRepositoryContract,
    TeamRepositoryContract,
)
from ecommerce_core.testing.payment_contracts import (
    CreditLinesContract,
    LedgerContract,
    PaymentRepositoryContract,
)
from ecommerce_core.testing.stateful import OrderLifecycleMachine


class SqliteOrderLifecycle(OrderLifecycleMachine):
    def __init__(self):
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.database = SqliteDatabase(Path(self.folder.name) / "shop.db")
        self.sink = RecordingPublisher()

    def make_repository(self):
        return SqliteOrderRepository(self.database)

    def make_inventory(self):
        return SqliteInventory(self.database)

    def make_publisher(self):
        return SqliteOutbox(self.database, self.sink)

    def stored_orders(self):
        return self.repository.all()  # the whole table: also catches orders under stray ids

    @invariant()
    def the_outbox_delivered_exactly_what_the_service_published(self):
        assert self.sink.published == self.published
        assert self.publisher.pending() == 0

    def teardown(self):
        self.database.close()
        self.folder.cleanup()


SqliteOrderLifecycle.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None
)
TestSqliteOrderLifecycle = SqliteOrderLifecycle.TestCase


# --------------------------------------------------------------------------- the other ports
#
# The contract suites of every other port our SQLite adapters implement, subclassed as
# docs/embedding.md tells a host to: one fresh database file per adapter, closed afterwards.


class HostSqliteFiles:
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path):
        self.folder, self.opened = tmp_path, []
        yield
        for database in self.opened:
            database.close()

    def database(self):
        opened = SqliteDatabase(self.folder / f"host-{len(self.opened)}.db")
        self.opened.append(opened)
        return opened


class TestHostPaymentRepository(HostSqliteFiles, PaymentRepositoryContract):
    def make_repository(self):
        return SqlitePaymentRepository(self.database())


class TestHostLedger(HostSqliteFiles, LedgerContract):
    def make_ledger(self):
        return SqliteLedger(self.database())


class TestHostCreditLines(HostSqliteFiles, CreditLinesContract):
    def make_credit_lines(self, limits):
        return SqliteCreditLines(self.database(), limits)


class TestHostPromotionLedger(HostSqliteFiles, PromotionLedgerContract):
    def make_ledger(self):
        return SqlitePromotionLedger(self.database())


class TestHostShipmentRepository(HostSqliteFiles, ShipmentRepositoryContract):
    def make_repository(self):
        return SqliteShipmentRepository(self.database())


class TestHostAfterSalesRepository(HostSqliteFiles, AfterSalesRepositoryContract):
    def make_repository(self):
        return SqliteAfterSalesRepository(self.database())


class TestHostTeamRepository(HostSqliteFiles, TeamRepositoryContract):
    def make_repository(self):
        return SqliteTeamRepository(self.database())


class TestHostAuctionRepository(HostSqliteFiles, AuctionRepositoryContract):
    def make_repository(self):
        return SqliteAuctionRepository(self.database())


class TestHostDrawRoundRepository(HostSqliteFiles, DrawRoundRepositoryContract):
    def make_repository(self):
        return SqliteDrawRoundRepository(self.database())


class TestHostGroupBuyRepository(HostSqliteFiles, GroupBuyRepositoryContract):
    def make_repository(self):
        return SqliteGroupBuyRepository(self.database())


class TestHostRebateRepository(HostSqliteFiles, RebateRepositoryContract):
    def make_repository(self):
        return SqliteRebateRepository(self.database())
