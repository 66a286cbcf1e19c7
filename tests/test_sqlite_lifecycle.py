"""The published lifecycle machine, run by a host on the SQLite adapters.

This is what ``docs/embedding.md`` tells a host to do: subclass
:class:`~ecommerce_core.testing.stateful.OrderLifecycleMachine`, give it the adapters under
test (here our SQLite repository, inventory and outbox, on a fresh file per example), and hand
its ``TestCase`` to pytest. Every check of the in-memory run applies; on top, after every step,
the outbox has delivered exactly the events the service published, in order, and holds none
pending.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis.stateful import invariant

from ecommerce_core.adapters.memory import RecordingPublisher
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
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
