"""A flash sale of 100 units to 10,000 buyers from 4 processes on one SQLite file.

Each process has its own connection and runs ``OrderService.buy_now`` for its 2,500 buyers,
one unit each, all starting at the same moment. Afterwards the file is read back on its own,
not through what the workers reported: exactly 100 units sold and 0 oversold, every loser
refused with OutOfStock and nothing else, and stock, reservations, orders and outbox agree.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter

import pytest

from ecommerce_core import InvalidInput, OrderState
from ecommerce_core.adapters.sqlite import (
    SqliteDatabase,
    SqliteInventory,
    SqliteOrderRepository,
    SqliteOutbox,
)
from ecommerce_core.testing.flash_sale import (
    FLASH_SALE_PRODUCT,
    FlashSaleResult,
    _combine,
    _worker,
    run_flash_sale,
)

UNITS, BUYERS, PROCESSES = 100, 10_000, 4
SKU = FLASH_SALE_PRODUCT.sku


@pytest.fixture(scope="module")
def sale(tmp_path_factory):
    path = tmp_path_factory.mktemp("flash-sale") / "sale.db"
    result = run_flash_sale(path, units=UNITS, buyers=BUYERS, processes=PROCESSES)
    database = SqliteDatabase(path)
    yield result, database
    database.close()


class TestAFlashSaleFromFourProcesses:
    def test_exactly_the_units_on_sale_are_sold(self, sale):
        result, _ = sale
        assert result.sold == UNITS
        assert (result.buyers, result.processes) == (BUYERS, PROCESSES)

    def test_every_loser_is_refused_with_out_of_stock_and_nothing_else(self, sale):
        result, _ = sale
        assert result.refused == BUYERS - UNITS == 9_900
        assert dict(result.errors) == {}

    def test_no_unit_is_oversold(self, sale):
        _, database = sale
        inventory = SqliteInventory(database)
        assert (inventory.on_hand(SKU), inventory.reserved(SKU), inventory.available(SKU)) == (
            UNITS,
            UNITS,
            0,
        )

    def test_one_order_is_stored_per_sale_for_one_unit_each_by_distinct_buyers(self, sale):
        _, database = sale
        orders = SqliteOrderRepository(database).all()
        assert len(orders) == UNITS
        assert {order.state for order in orders} == {OrderState.PENDING_PAYMENT}
        assert [order.quantities for order in orders] == [{SKU: 1}] * UNITS
        assert len({order.buyer_id for order in orders}) == UNITS
        assert {order.id.split("-")[0] for order in orders} <= {f"w{n}" for n in range(PROCESSES)}

    def test_reserved_stock_is_exactly_what_the_stored_orders_hold(self, sale):
        _, database = sale
        orders = {order.id: order for order in SqliteOrderRepository(database).all()}
        reservations = database.read("SELECT id, status FROM reservations")
        assert {reservation_id for reservation_id, _ in reservations} == set(orders)
        assert Counter(status for _, status in reservations) == {"reserved": UNITS}
        held = sum(order.quantities[SKU] for order in orders.values())
        assert SqliteInventory(database).reserved(SKU) == held

    def test_every_sale_published_its_placement_exactly_once(self, sale):
        result, database = sale
        assert result.published == UNITS
        assert SqliteOutbox(database).pending() == 0
        rows = database.read("SELECT aggregate_id, type, published FROM outbox")
        order_ids = {order.id for order in SqliteOrderRepository(database).all()}
        assert sorted(rows) == sorted((order_id, "OrderPlaced", 1) for order_id in order_ids)

    def test_the_result_reports_a_positive_duration_and_throughput(self, sale):
        result, _ = sale
        assert result.seconds > 0
        assert result.attempts_per_second == pytest.approx(BUYERS / result.seconds)


class TestRunFlashSale:
    @pytest.mark.parametrize("field", ["units", "buyers", "processes"])
    @pytest.mark.parametrize("value", [0, -1, 2.0])
    def test_counts_below_one_or_not_whole_are_refused(self, tmp_path, field, value):
        with pytest.raises(InvalidInput) as caught:
            run_flash_sale(tmp_path / "sale.db", **{field: value})
        assert caught.value.field == field
        assert not (tmp_path / "sale.db").exists()

    def test_a_file_already_holding_the_product_is_refused(self, tmp_path):
        path = tmp_path / "sale.db"
        with SqliteDatabase(path) as database:
            SqliteInventory(database).receive(SKU, 5)
        with pytest.raises(InvalidInput):
            run_flash_sale(path, units=1, buyers=2, processes=1)
        with SqliteDatabase(path) as database:
            assert SqliteInventory(database).on_hand(SKU) == 5

    def test_a_worker_buys_for_its_share_of_buyers_in_process(self, tmp_path):
        path = tmp_path / "sale.db"
        with SqliteDatabase(path) as database:
            SqliteInventory(database).receive(SKU, 3)
        results = queue.Queue()
        # worker 1 of 2 serves buyers 1, 3, 5, 7 and 9
        _worker(
            str(path), worker=1, workers=2, buyers=10, start=threading.Barrier(1), results=results
        )
        tally = results.get_nowait()
        assert (tally["sold"], tally["refused"], tally["published"]) == (3, 2, 3)
        assert tally["errors"] == {}
        result = _combine([tally], units=3, buyers=5)
        assert (result.sold, result.refused, result.processes) == (3, 2, 1)
        with SqliteDatabase(path) as database:
            buyers = {order.buyer_id for order in SqliteOrderRepository(database).all()}
        assert buyers == {"buyer-1", "buyer-3", "buyer-5"}

    def test_a_worker_that_crashes_reports_it_and_the_sale_raises_it(self, tmp_path):
        results = queue.Queue()
        missing = str(tmp_path / "missing" / "sale.db")
        _worker(missing, worker=0, workers=1, buyers=1, start=threading.Barrier(1), results=results)
        tally = results.get_nowait()
        assert "unable to open database file" in tally["crash"]
        fine = {"sold": 1, "refused": 0, "errors": {}, "published": 1, "started": 0, "ended": 1}
        with pytest.raises(RuntimeError, match="unable to open database file"):
            _combine([fine, tally], units=1, buyers=2)

    def test_other_errors_are_counted_by_name(self):
        tallies = [
            {"sold": 1, "refused": 2, "errors": {"StorageBusy": 1}, "published": 1},
            {"sold": 0, "refused": 3, "errors": {"StorageBusy": 2, "NotFound": 1}, "published": 0},
        ]
        for start, tally in enumerate(tallies):
            tally.update(started=float(start), ended=start + 2.5)
        result = _combine(tallies, units=1, buyers=10)
        assert dict(result.errors) == {"StorageBusy": 3, "NotFound": 1}
        assert (result.sold, result.refused, result.seconds) == (1, 5, 3.5)

    def test_an_instant_sale_reports_infinite_throughput_rather_than_dividing_by_zero(self):
        result = FlashSaleResult(1, 1, 1, 1, 0, {}, 1, 0.0)
        assert result.attempts_per_second == float("inf")
