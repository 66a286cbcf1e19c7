"""The simulated marketplace's wiring: one :class:`CampaignService` over SQLite or memory.

By default everything the run stores lives in one SQLite file (the embedded default): orders,
inventory, the event outbox, payment records, the ledger, credit lines, the promotion ledger,
shipments, after-sales records, teams, lucky-draw rounds, group buys, auctions and rebates.
``--memory`` keeps all of it in memory instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.adapters.memory import (
    GatewayRequest,
    InMemoryAfterSalesRepository,
    InMemoryAuctionRepository,
    InMemoryCatalog,
    InMemoryCreditLines,
    InMemoryDrawRoundRepository,
    InMemoryGroupBuyRepository,
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
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
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
from ecommerce_core.aftersales import AfterSalesPolicy, RefundInstruction
from ecommerce_core.campaigns import FlashItem, FlashSale, RushItem, RushPurchase, daily_sessions
from ecommerce_core.campaigns.lucky_draw import PublicNumber
from ecommerce_core.demo import DEMO_PRODUCTS
from ecommerce_core.money import Money
from ecommerce_core.payments import RefundStatus
from ecommerce_core.ports import (
    AfterSalesRepository,
    AuctionRepository,
    CreditLines,
    DrawRoundRepository,
    GatewayStatus,
    GroupBuyRepository,
    Inventory,
    PaymentRepository,
    PromotionLedger,
    RebateRepository,
    RefundRequest,
    ShipmentRepository,
    TeamRepository,
)
from ecommerce_core.promotions import Promotion, Scope
from ecommerce_core.promotions import Rebate as Cashback
from ecommerce_core.services import (
    AfterSalesService,
    CampaignService,
    FulfilmentService,
    PaymentService,
    RefundHandler,
)

__all__ = [
    "CARRIERS",
    "FLASH_SALE_ID",
    "REBATE_PROMOTION_ID",
    "REBATE_SKUS",
    "RUSH_PURCHASE_ID",
    "GatewayScript",
    "SeededLottery",
    "SimulatedWorld",
    "build_world",
    "payment_refunds",
]

FLASH_SALE_ID = "sim-flash"
"""The simulation's flash sale: tea at 19.90 CNY, daily sessions at 10:00 and 20:00."""
RUSH_PURCHASE_ID = "sim-rush"
"""The simulation's rush purchase: cups at 9.90 CNY on the first day."""
CARRIERS = ("SF", "ZTO", "YTO")
"""The carriers that deliver the simulated parcels."""
REBATE_PROMOTION_ID = "sim-rebate"
"""The simulation's cashback (返利): 3 % of what was paid for teapots and cups."""
REBATE_SKUS = frozenset({"pot-01", "cup-01"})
"""The products that earn the cashback."""


class SeededLottery:
    """A public number every 20 simulated minutes, derived from the run's seed (a test lottery).

    Implements :class:`~ecommerce_core.ports.RandomnessSource` without drawing from the run's
    random numbers: draw ``n`` is published at ``epoch + n * every`` and its value is the first
    bytes of ``sha256("<seed>:<n>")``, so the same seed publishes the same numbers on SQLite
    and in memory, and a number, once published, never changes.

    Args:
        seed: The run's seed.
        clock: Nothing is published after its now.
        every: The time between two draws.

    """

    def __init__(
        self, seed: int, clock: ManualClock, every: timedelta = timedelta(minutes=20)
    ) -> None:
        self.seed, self.clock, self.every = seed, clock, every
        self.epoch = clock.now()

    def public_number(self, after: datetime) -> PublicNumber | None:
        """The first number published at or after ``after``, once the clock reached it."""
        draw = max(0, -((self.epoch - after) // self.every))  # ceil((after - epoch) / every)
        at = self.epoch + draw * self.every
        if at > self.clock.now():
            return None
        digest = hashlib.sha256(f"{self.seed}:{draw}".encode()).digest()
        return PublicNumber(int.from_bytes(digest[:4]) % 100_000, f"sim-lottery:{draw}", at)


@attrs.define
class GatewayScript:
    """What the scripted provider answers next, and the requests it left pending.

    Attributes:
        answer: The status the next accepted request gets (the simulation sets it per payment).
        pending: Idempotency keys of requests answered ``PENDING``, oldest first.
        refund_fault: Decides each refund request first when set: an answer other than
            ``SUCCEEDED`` is the provider's (the simulation's refund faults).
        pending_refunds: Idempotency keys of refunds ``refund_fault`` left pending, oldest
            first (the simulation answers them later by callback).

    """

    answer: GatewayStatus = GatewayStatus.SUCCEEDED
    pending: list[str] = attrs.field(factory=list)
    refund_fault: Callable[[RefundRequest], GatewayStatus] | None = None
    pending_refunds: list[str] = attrs.field(factory=list)

    def decide(self, request: GatewayRequest) -> GatewayStatus:
        """The provider's answer to ``request`` (recording it when pending)."""
        if self.refund_fault is not None and isinstance(request, RefundRequest):
            status = self.refund_fault(request)
            if status is GatewayStatus.PENDING:
                self.pending_refunds.append(request.idempotency_key)
            if status is not GatewayStatus.SUCCEEDED:
                return status
        if self.answer is GatewayStatus.PENDING:
            self.pending.append(request.idempotency_key)
        return self.answer


@attrs.define
class SimulatedWorld:
    """Everything a simulation run drives and checks.

    Attributes:
        service: The order, payment and collective-mode use cases.
        fulfilment: Shipments and carrier tracking (the orders' parcels).
        after_sales: Returns and refunds, paid back through ``service``.
        gateway: The scripted provider.
        script: What the provider answers next.
        clock: The simulated clock.
        ledger: The double-entry book.
        initial_stock: Units received per SKU before the run.
        storage: A human description of where each part is stored.
        order_store: The order repository (both adapters can list every order).
        database: The SQLite database, when orders live in SQLite.
        outbox: The SQLite outbox, when orders live in SQLite.
        returns: After-sales return requests of the run, as ``(order id, request id)``.
        collective: Ids of the campaigns the run opened, per mode (``"lucky_draw"``,
            ``"group_buy"``, ``"auction"``).

    """

    service: CampaignService
    fulfilment: FulfilmentService
    after_sales: AfterSalesService
    gateway: ScriptedPaymentGateway
    script: GatewayScript
    clock: ManualClock
    ledger: InMemoryLedger | SqliteLedger
    initial_stock: Mapping[str, int]
    storage: str
    order_store: InMemoryOrderRepository | SqliteOrderRepository
    database: SqliteDatabase | None = None
    outbox: SqliteOutbox | None = None
    returns: list[tuple[str, str]] = attrs.field(factory=list)
    collective: dict[str, list[str]] = attrs.field(factory=dict)

    def close(self) -> None:
        """Close the database, if any."""
        if self.database is not None:
            self.database.close()

    def unit_of_work(self) -> contextlib.AbstractContextManager[object]:
        """One step of the run as one transaction on SQLite (nothing in memory).

        What a host does per request: the adapters' own transactions join it as savepoints (a
        refused command undoes only its own writes), and the outbox publishes after its
        commit.
        """
        if self.database is None:
            return contextlib.nullcontext()
        return self.database.transaction("simulation step")


def _campaigns(stock: int) -> list[FlashSale | RushPurchase | Promotion]:
    day = date(2026, 1, 1)
    price, cup = DEMO_PRODUCTS[0].unit_price, DEMO_PRODUCTS[2].unit_price
    flash = FlashSale(
        FLASH_SALE_ID,
        daily_sessions(day, (time(10), time(20)), timedelta(hours=2), UTC, days=7),
        [FlashItem("tea-01", price, Money.of("19.90", "CNY"), max(1, stock // 10), 2)],
        payment_timeout=timedelta(minutes=15),
    )
    start = ManualClock().now()
    rush = RushPurchase(
        RUSH_PURCHASE_ID,
        start,
        start + timedelta(days=7),
        [RushItem("cup-01", cup, Money.of("9.90", "CNY"), max(1, stock // 10), 2)],
    )
    cashback = Promotion(
        REBATE_PROMOTION_ID, Cashback(percent=3), name="3 % cashback", scope=Scope(skus=REBATE_SKUS)
    )
    return [flash, rush, cashback]


_AFTER_SALES = Actor.system("after-sales")


def payment_refunds(service: PaymentService) -> RefundHandler:
    """A refund handler that pays approved after-sales refunds back through the ledger.

    Each instruction becomes one :meth:`PaymentService.refund` of its total, under its
    idempotency key (a retry never refunds twice); a refund still pending at the provider
    answers ``None`` so that ``settle_refunds`` asks again later.
    """

    def refund(instruction: RefundInstruction) -> str | None:
        done = service.refund(
            instruction.order_id,
            _AFTER_SALES,
            key=instruction.idempotency_key,
            amount=instruction.total,
            reason=f"after-sales {instruction.request_id}",
        )
        return done.id if done.status is RefundStatus.SUCCEEDED else None

    return refund


def build_world(  # noqa: PLR0915  # one wiring per storage branch, read top to bottom
    *,
    buyers: int,
    stock: int,
    memory: bool = False,
    db_path: str | os.PathLike[str] | None = None,
    credit_limit: str = "2000.00",
    seed: int = 0,
) -> SimulatedWorld:
    """Wire a :class:`CampaignService` for the simulation.

    Args:
        buyers: How many buyers (``b-001`` ...) get a credit line.
        stock: Units of each demo product received before the run.
        memory: Keep orders, inventory and events in memory instead of SQLite.
        db_path: The SQLite file (a fresh temporary file when ``None``).
        credit_limit: Each buyer's credit line, in CNY.
        seed: The seed of the lucky draws' public numbers (:class:`SeededLottery`).

    """
    clock = ManualClock()
    script = GatewayScript()
    gateway = ScriptedPaymentGateway(script.decide)
    initial = {p.sku: stock for p in DEMO_PRODUCTS}
    database: SqliteDatabase | None = None
    outbox: SqliteOutbox | None = None
    orders: InMemoryOrderRepository | SqliteOrderRepository
    inventory: Inventory
    publisher: RecordingPublisher | SqliteOutbox
    ledger: InMemoryLedger | SqliteLedger
    payment_records: PaymentRepository
    credit_lines: CreditLines
    promotion_ledger: PromotionLedger
    shipments: ShipmentRepository
    records: AfterSalesRepository
    teams: TeamRepository
    rounds: DrawRoundRepository
    group_buys: GroupBuyRepository
    rebates: RebateRepository
    auctions: AuctionRepository
    limit = Money.of(credit_limit, "CNY")
    limits = {f"b-{n:03d}": limit for n in range(1, buyers + 1)}
    if memory:
        orders, inventory, publisher = (
            InMemoryOrderRepository(),
            InMemoryInventory(initial),
            RecordingPublisher(),
        )
        ledger, payment_records = InMemoryLedger(), InMemoryPaymentRepository()
        credit_lines, promotion_ledger = InMemoryCreditLines(limits), InMemoryPromotionLedger()
        shipments, records = InMemoryShipmentRepository(), InMemoryAfterSalesRepository()
        teams = InMemoryTeamRepository()
        rounds, group_buys = InMemoryDrawRoundRepository(), InMemoryGroupBuyRepository()
        rebates, auctions = InMemoryRebateRepository(), InMemoryAuctionRepository()
        storage = "everything in memory (--memory)"
    else:
        path = (
            Path(tempfile.mkdtemp(prefix="ecommerce-sim-")) / "simulation.db"
            if db_path is None
            else Path(db_path)
        )
        database = SqliteDatabase(path)
        orders, sqlite_inventory = SqliteOrderRepository(database), SqliteInventory(database)
        for sku, units in initial.items():
            sqlite_inventory.receive(sku, units)
        inventory = sqlite_inventory
        outbox = SqliteOutbox(database)
        publisher = outbox
        ledger, payment_records = SqliteLedger(database), SqlitePaymentRepository(database)
        credit_lines = SqliteCreditLines(database, limits)
        promotion_ledger = SqlitePromotionLedger(database)
        shipments = SqliteShipmentRepository(database)
        records = SqliteAfterSalesRepository(database)
        teams = SqliteTeamRepository(database)
        rounds, group_buys = SqliteDrawRoundRepository(database), SqliteGroupBuyRepository(database)
        rebates, auctions = SqliteRebateRepository(database), SqliteAuctionRepository(database)
        storage = (
            f"everything in SQLite ({path}): orders, inventory, event outbox, payment records,"
            " ledger, credit lines, promotion ledger, shipments, after-sales records, teams,"
            " lucky-draw rounds, group buys, auctions and rebates"
        )
    service = CampaignService(
        orders=orders,
        inventory=inventory,
        catalog=InMemoryCatalog(DEMO_PRODUCTS),
        payments=gateway,
        clock=clock,
        ids=SequentialIds(),
        publisher=publisher,
        ledger=ledger,
        payment_records=payment_records,
        credit_lines=credit_lines,
        teams=teams,
        rounds=rounds,
        randomness=SeededLottery(seed, clock),
        group_buys=group_buys,
        rebates=rebates,
        auctions=auctions,
    )
    service.promotions = InMemoryPromotionCatalog(_campaigns(stock))
    service.promotion_ledger = promotion_ledger
    fulfilment = FulfilmentService(
        orders=orders,
        shipments=shipments,
        clock=clock,
        ids=service.ids,
        publisher=publisher,
        after_sales=records,
        inventory=inventory,
        policy=service.policy,
    )
    after_sales = AfterSalesService(
        orders=orders,
        shipments=shipments,
        after_sales=records,
        refunds=payment_refunds(service),
        clock=clock,
        ids=service.ids,
        publisher=publisher,
        inventory=inventory,
        policy=AfterSalesPolicy(),
        order_policy=service.policy,
    )
    return SimulatedWorld(
        service,
        fulfilment,
        after_sales,
        gateway,
        script,
        clock,
        ledger,
        initial,
        storage,
        orders,
        database,
        outbox,
    )
