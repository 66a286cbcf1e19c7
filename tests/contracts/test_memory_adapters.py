"""Our in-memory adapters pass every port contract, plus what each adds beside its port."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import (
    InMemoryAfterSalesRepository,
    InMemoryAuctionRepository,
    InMemoryCarriers,
    InMemoryCatalog,
    InMemoryCreditLines,
    InMemoryDrawRoundRepository,
    InMemoryGroupBuyRepository,
    InMemoryIdempotencyStore,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    InMemoryPromotionCatalog,
    InMemoryPromotionLedger,
    InMemoryRebateRepository,
    InMemoryShipmentRepository,
    InMemoryTeamRepository,
    ManualClock,
    PublishedNumbers,
    RecordingPublisher,
    RecordingRefunds,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.aftersales import OrderAfterSales, RefundInstruction, RefundLine
from ecommerce_core.delivery import DeliveryOption
from ecommerce_core.errors import IdempotencyConflict, InvalidInput
from ecommerce_core.money import Money
from ecommerce_core.orders import OrderState
from ecommerce_core.ports import (
    ChargeRequest,
    GatewayStatus,
    Product,
    PublicNumber,
    RefundRequest,
    StockItem,
)
from ecommerce_core.testing.contracts import (
    AfterSalesRepositoryContract,
    AuctionRepositoryContract,
    CarriersContract,
    CatalogContract,
    ClockContract,
    DrawRoundRepositoryContract,
    EventPublisherContract,
    GroupBuyRepositoryContract,
    IdempotencyStoreContract,
    IdSourceContract,
    InventoryContract,
    OrderRepositoryContract,
    PaymentGatewayFlowContract,
    PromotionCatalogContract,
    PromotionLedgerContract,
    RandomnessSourceContract,
    RebateRepositoryContract,
    ShipmentRepositoryContract,
    TeamRepositoryContract,
    make_order,
    make_shipment,
)
from ecommerce_core.testing.payment_contracts import (
    CreditLinesContract,
    LedgerContract,
    PaymentRepositoryContract,
)


def cny(amount):
    return Money.of(amount, "CNY")


# --------------------------------------------------------------------------- contracts


class TestInMemoryOrderRepositoryContract(OrderRepositoryContract):
    def make_repository(self):
        return InMemoryOrderRepository()


class TestInMemoryInventoryContract(InventoryContract):
    def make_inventory(self):
        return InMemoryInventory()


class TestInMemoryCatalogContract(CatalogContract):
    def make_catalog(self, products):
        return InMemoryCatalog(products)


class TestScriptedPaymentGatewayContract(PaymentGatewayFlowContract):
    def make_gateway(self):
        return ScriptedPaymentGateway()

    def make_notification(self, gateway, **fields):
        return gateway.notification(fields.pop("kind"), fields.pop("payment_id"), **fields)

    def make_gateway_leaving_refunds_pending(self):
        return ScriptedPaymentGateway(
            lambda r: (
                GatewayStatus.PENDING if isinstance(r, RefundRequest) else GatewayStatus.SUCCEEDED
            )
        )

    def settle_refund(self, gateway, request, *, succeeded):
        gateway.settle_pending(request.idempotency_key, succeeded=succeeded)


class TestInMemoryLedgerContract(LedgerContract):
    def make_ledger(self):
        return InMemoryLedger()


class TestInMemoryPaymentRepositoryContract(PaymentRepositoryContract):
    def make_repository(self):
        return InMemoryPaymentRepository()


class TestInMemoryCreditLinesContract(CreditLinesContract):
    def make_credit_lines(self, limits):
        return InMemoryCreditLines(limits)


class TestManualClockContract(ClockContract):
    def make_clock(self):
        return ManualClock()


class TestSequentialIdsContract(IdSourceContract):
    def make_ids(self):
        return SequentialIds()


class TestRecordingPublisherContract(EventPublisherContract):
    def make_publisher(self):
        return RecordingPublisher()


class TestInMemoryPromotionLedgerContract(PromotionLedgerContract):
    def make_ledger(self):
        return InMemoryPromotionLedger()


class TestInMemoryPromotionCatalogContract(PromotionCatalogContract):
    def make_catalog(self, items):
        return InMemoryPromotionCatalog(items)


class TestInMemoryShipmentRepositoryContract(ShipmentRepositoryContract):
    def make_repository(self):
        return InMemoryShipmentRepository()


class TestInMemoryAfterSalesRepositoryContract(AfterSalesRepositoryContract):
    def make_repository(self):
        return InMemoryAfterSalesRepository()


class TestInMemoryCarriersContract(CarriersContract):
    def make_carriers(self, offers):
        return InMemoryCarriers(offers)


# --------------------------------------------------------------------------- adapter extras


class TestManualClock:
    START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def test_starts_at_the_given_time(self):
        assert ManualClock(self.START).now() == self.START

    def test_starts_on_new_years_morning_2026_utc_by_default(self):
        assert ManualClock().now() == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def test_advance_moves_forward_and_returns_the_new_time(self):
        clock = ManualClock(self.START)
        assert clock.advance(timedelta(minutes=31)) == self.START + timedelta(minutes=31)
        clock.advance(timedelta(days=2))
        assert clock.now() == self.START + timedelta(days=2, minutes=31)

    def test_advance_by_zero_keeps_the_time(self):
        clock = ManualClock(self.START)
        assert clock.advance(timedelta(0)) == self.START
        assert clock.now() == self.START

    def test_advance_refuses_a_negative_delta_and_keeps_the_time(self):
        clock = ManualClock(self.START)
        with pytest.raises(InvalidInput) as caught:
            clock.advance(timedelta(seconds=-1))
        assert caught.value.field == "delta"
        assert clock.now() == self.START

    def test_refuses_a_naive_start(self):
        with pytest.raises(InvalidInput) as caught:
            ManualClock(datetime(2026, 1, 1, 9, 0))  # noqa: DTZ001
        assert caught.value.field == "now"


class TestRecordingPublisher:
    def test_keeps_published_events_in_order_across_calls(self):
        first, second = make_order("o-1"), make_order("o-2")
        first.cancel(Actor.buyer("b-1"), reason="changed my mind", now=first.placed_at)
        publisher = RecordingPublisher()
        publisher.publish(first.collect_events())
        publisher.publish([])
        publisher.publish(second.collect_events())
        assert [(e.aggregate_id, e.name, e.version) for e in publisher.published] == [
            ("o-1", "OrderPlaced", 1),
            ("o-1", "OrderCancelled", 2),
            ("o-2", "OrderPlaced", 1),
        ]

    def test_starts_empty(self):
        assert RecordingPublisher().published == []


class TestScriptedPaymentGateway:
    def test_a_declined_charge_has_no_transaction_id_and_books_nothing(self):
        gateway = ScriptedPaymentGateway(lambda _: GatewayStatus.DECLINED)
        result = gateway.charge(ChargeRequest("o-1", cny("76.00"), "k-1"))
        assert result.status is GatewayStatus.DECLINED
        assert not result.succeeded
        assert result.transaction_id == ""
        assert result.amount == cny("76.00")
        assert gateway.charged == {}

    def test_a_retried_declined_charge_gets_the_same_decline(self):
        answers = iter([GatewayStatus.DECLINED, GatewayStatus.SUCCEEDED])
        gateway = ScriptedPaymentGateway(lambda _: next(answers))
        request = ChargeRequest("o-1", cny("76.00"), "k-1")
        first = gateway.charge(request)
        assert gateway.charge(request) == first
        assert first.status is GatewayStatus.DECLINED
        assert gateway.charged == {}

    def test_a_pending_charge_stays_pending_and_books_nothing(self):
        gateway = ScriptedPaymentGateway(lambda _: GatewayStatus.PENDING)
        result = gateway.charge(ChargeRequest("o-1", cny("76.00"), "k-1"))
        assert result.status is GatewayStatus.PENDING
        assert not result.succeeded
        assert gateway.charged == {}

    def test_decide_sees_each_new_request_once(self):
        seen = []

        def decide(request):
            seen.append(request)
            return GatewayStatus.SUCCEEDED

        gateway = ScriptedPaymentGateway(decide)
        request = ChargeRequest("o-1", cny("76.00"), "k-1")
        gateway.charge(request)
        gateway.charge(request)
        assert seen == [request]

    def test_charged_and_refunded_books_add_up_per_order(self):
        gateway = ScriptedPaymentGateway()
        one = gateway.charge(ChargeRequest("o-1", cny("76.00"), "k-1"))
        gateway.charge(ChargeRequest("o-1", cny("10.50"), "k-2"))
        gateway.charge(ChargeRequest("o-1", cny("10.50"), "k-2"))  # a retry books nothing
        gateway.charge(ChargeRequest("o-2", cny("25.00"), "k-3"))
        gateway.refund(RefundRequest("o-1", one.transaction_id, cny("30.00"), "r-1"))
        gateway.refund(RefundRequest("o-1", one.transaction_id, cny("6.00"), "r-2"))
        gateway.refund(RefundRequest("o-1", one.transaction_id, cny("6.00"), "r-2"))
        assert gateway.charged == {"o-1": cny("86.50"), "o-2": cny("25.00")}
        assert gateway.refunded == {"o-1": cny("36.00")}

    def test_a_declined_refund_books_nothing(self):
        gateway = ScriptedPaymentGateway(
            lambda request: (
                GatewayStatus.DECLINED
                if isinstance(request, RefundRequest)
                else GatewayStatus.SUCCEEDED
            )
        )
        charged = gateway.charge(ChargeRequest("o-1", cny("76.00"), "k-1"))
        result = gateway.refund(RefundRequest("o-1", charged.transaction_id, cny("1.00"), "r"))
        assert (result.status, result.transaction_id) == (GatewayStatus.DECLINED, "")
        assert gateway.refunded == {}
        assert gateway.charged == {"o-1": cny("76.00")}


class TestInMemoryOrderRepository:
    def test_all_returns_every_order_sorted_by_id(self):
        repository = InMemoryOrderRepository()
        for order_id in ("o-b", "o-c", "o-a"):
            repository.add(make_order(order_id))
        assert [order.id for order in repository.all()] == ["o-a", "o-b", "o-c"]

    def test_all_returns_copies_the_caller_may_change(self):
        repository = InMemoryOrderRepository()
        repository.add(make_order("o-1"))
        (copy,) = repository.all()
        copy.state = OrderState.CANCELLED
        assert repository.get("o-1").state == OrderState.PENDING_PAYMENT

    def test_len_counts_stored_orders(self):
        repository = InMemoryOrderRepository()
        assert len(repository) == 0
        repository.add(make_order("o-1"))
        repository.add(make_order("o-2"))
        assert len(repository) == 2

    def test_due_with_limit_zero_returns_nothing(self):
        repository = InMemoryOrderRepository()
        repository.add(make_order("o-1"))
        assert repository.due(make_order().placed_at + timedelta(days=1), limit=0) == []

    def test_due_refuses_a_negative_limit(self):
        repository = InMemoryOrderRepository()
        for order_id in ("o-1", "o-2", "o-3"):
            repository.add(make_order(order_id))
        with pytest.raises(InvalidInput):
            repository.due(make_order().placed_at + timedelta(days=1), limit=-1)


class TestInMemoryInventory:
    def test_starts_with_the_given_stock(self):
        inventory = InMemoryInventory({"tea": 3, "cup": 2})
        assert [inventory.on_hand(sku) for sku in ("tea", "cup")] == [3, 2]
        assert inventory.available("tea") == 3

    def test_starts_with_a_sku_at_zero_stock(self):
        inventory = InMemoryInventory({"tea": 0, "cup": 2})
        assert (inventory.on_hand("tea"), inventory.on_hand("cup")) == (0, 2)

    @pytest.mark.parametrize("quantity", [0, -2, True, 1.5])
    def test_receive_refuses_a_quantity_that_is_not_a_whole_number_above_zero(self, quantity):
        inventory = InMemoryInventory({"tea": 3})
        with pytest.raises(InvalidInput):
            inventory.receive("tea", quantity)
        assert inventory.on_hand("tea") == 3

    def test_a_released_reservation_id_stays_used(self):
        inventory = InMemoryInventory({"tea": 3})
        inventory.reserve("r-1", [StockItem("1", "tea", 2)])
        inventory.release("r-1")
        inventory.reserve("r-1", [StockItem("1", "tea", 2)])
        assert inventory.reserved("tea") == 0


class TestInMemoryCatalog:
    def test_add_stores_and_replaces_a_product(self):
        catalog = InMemoryCatalog()
        catalog.add(Product("tea-01", "m-1", "Tea", cny("38.00")))
        catalog.add(Product("tea-01", "m-1", "Tea", cny("40.00")))
        assert catalog.product("tea-01").unit_price == cny("40.00")


class TestSequentialIds:
    def test_counts_each_kind_from_one(self):
        ids = SequentialIds()
        got = [ids.next_id("order"), ids.next_id("checkout"), ids.next_id("order")]
        assert got == ["order-1", "checkout-1", "order-2"]


class TestInMemoryCarriers:
    def test_offering_replaces_an_option_with_the_same_id_and_withdrawing_removes_it(self):
        standard = DeliveryOption("std", "SF", "standard", cny("12.00"), 2)
        carriers = InMemoryCarriers({"m-1": [standard]})
        carriers.offer("m-1", DeliveryOption("std", "SF", "standard", cny("15.00"), 2))
        assert [o.fee for o in carriers.delivery_options("m-1", [])] == [cny("15.00")]
        carriers.withdraw("m-1", "std")
        carriers.withdraw("m-9", "std")
        assert carriers.delivery_options("m-1", []) == []


class TestRecordingRefunds:
    def instruction(self, total="10.00", key="k-1"):
        line = RefundLine("1", 1, cny(total))
        return RefundInstruction("o-1", "r-1", key, (line,), cny("0.00"), cny(total))

    def test_a_refund_is_recorded_once_per_key_and_a_retry_gets_the_same_reference(self):
        refunds = RecordingRefunds()
        first = refunds(self.instruction())
        assert refunds(self.instruction()) == first
        assert refunds(self.instruction(key="k-2")) != first
        assert refunds.refunded("o-1", "CNY") == cny("20.00")
        assert refunds.refunded_on_line("o-1", "1", "CNY") == cny("20.00")
        assert refunds.refunded("o-2", "CNY") == cny("0.00")

    def test_a_key_reused_for_another_refund_is_a_conflict(self):
        refunds = RecordingRefunds()
        refunds(self.instruction())
        with pytest.raises(IdempotencyConflict):
            refunds(self.instruction(total="11.00"))
        assert len(refunds.instructions) == 1

    def test_a_refund_the_script_turns_down_is_not_done_and_not_remembered(self):
        answers = iter([False, True])
        refunds = RecordingRefunds(lambda _: next(answers))
        assert refunds(self.instruction()) is None
        assert refunds.instructions == []
        assert refunds(self.instruction()) == "rf-1"


class TestInMemoryShipmentAndAfterSalesRepositories:
    def test_all_lists_copies_of_everything_stored(self):
        shipments, records = InMemoryShipmentRepository(), InMemoryAfterSalesRepository()
        shipments.add(make_shipment("s-2", tracking_number="B"))
        shipments.add(make_shipment("s-1", sequence=2, tracking_number="A"))
        assert [s.id for s in shipments.all()] == ["s-1", "s-2"]
        order = make_order("o-1")
        records.add(OrderAfterSales.open(order))
        assert [r.order_id for r in records.all()] == ["o-1"]


# --------------------------------------------------------------------------- idempotency keys


class TestInMemoryIdempotencyStoreContract(IdempotencyStoreContract):
    def make_store(self):
        return InMemoryIdempotencyStore()


class TestInMemoryIdempotencyStore:
    def test_len_counts_remembered_keys_once_each(self):
        store = InMemoryIdempotencyStore()
        store.remember("k-1", "fp", "r")
        store.remember("k-1", "fp", "r")
        store.remember("k-2", "fp", "r")
        assert len(store) == 2


# --------------------------------------------------------------------------- randomness


def lottery_history(start, count=40, every=timedelta(days=1)):
    return [
        PublicNumber(
            value=(i * 7919) % 100_000, source=f"lottery:{i}", published_at=start + i * every
        )
        for i in range(count)
    ]


class TestPublishedNumbersContract(RandomnessSourceContract):
    def make_source(self):
        return PublishedNumbers(lottery_history(datetime(2025, 12, 20, 20, 30, tzinfo=UTC)))


class TestPublishedNumbers:
    START = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)

    def test_answers_the_first_number_published_at_or_after_the_moment(self):
        source = PublishedNumbers(lottery_history(self.START, count=3))
        assert source.public_number(self.START).source == "lottery:0"
        assert source.public_number(self.START + timedelta(seconds=1)).source == "lottery:1"
        assert source.public_number(self.START + timedelta(days=2)).source == "lottery:2"

    def test_answers_none_until_a_number_is_published_then_that_number(self):
        source = PublishedNumbers()
        assert source.public_number(self.START) is None
        (number,) = lottery_history(self.START + timedelta(hours=1), count=1)
        source.publish(number)
        assert source.public_number(self.START) == number

    def test_refuses_to_publish_a_number_older_than_the_last(self):
        first, second = lottery_history(self.START, count=2)
        source = PublishedNumbers([second])
        with pytest.raises(InvalidInput):
            source.publish(first)
        assert source.public_number(self.START) == second

    def test_refuses_anything_but_a_public_number(self):
        with pytest.raises(InvalidInput):
            PublishedNumbers().publish(42)


class TestInMemoryTeamRepositoryContract(TeamRepositoryContract):
    def make_repository(self) -> InMemoryTeamRepository:
        return InMemoryTeamRepository()


class TestInMemoryDrawRoundRepositoryContract(DrawRoundRepositoryContract):
    def make_repository(self) -> InMemoryDrawRoundRepository:
        return InMemoryDrawRoundRepository()


class TestInMemoryGroupBuyRepositoryContract(GroupBuyRepositoryContract):
    def make_repository(self) -> InMemoryGroupBuyRepository:
        return InMemoryGroupBuyRepository()


class TestInMemoryRebateRepositoryContract(RebateRepositoryContract):
    def make_repository(self) -> InMemoryRebateRepository:
        return InMemoryRebateRepository()


class TestInMemoryAuctionRepositoryContract(AuctionRepositoryContract):
    def make_repository(self) -> InMemoryAuctionRepository:
        return InMemoryAuctionRepository()
