"""The simulation's group buys under the deposit policy (订金团), their faults and checks."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from ecommerce_core import Actor, Money
from ecommerce_core.adapters.memory import (
    InMemoryCatalog,
    InMemoryGroupBuyRepository,
    InMemoryInventory,
    InMemoryLedger,
    InMemoryOrderRepository,
    InMemoryPaymentRepository,
    ManualClock,
    RecordingPublisher,
    ScriptedPaymentGateway,
    SequentialIds,
)
from ecommerce_core.campaigns.group_buy import GroupBuyPayment, GroupBuyTerms, PriceTier
from ecommerce_core.ports import GatewayStatus, Product, RefundRequest
from ecommerce_core.services import CampaignService
from ecommerce_core.simulation import FaultRates, SimulationConfig, run_simulation
from ecommerce_core.simulation.world import GatewayScript
from test_simulation import EVERY_FAULT

DEPOSIT_FAULTS = {
    "unpaid balance",
    "cancelled after balance",
    "withdrew from a deposit group buy",
    "refund declined",
    "deposit refund declined",
    "refund pending",
    "refund failed after pending",
}
HARSH = attrs.evolve(EVERY_FAULT, cancel=0.3)  # more buyers leave: more deposits go back


@pytest.fixture(scope="module")
def harsh_run():
    """300 journeys with every deposit fault at a high rate (seed 9 injects each of them)."""
    return run_simulation(SimulationConfig(orders=300, seed=9, faults=HARSH), memory=True)


class TestDepositFaults:
    def test_every_deposit_fault_is_injected_and_every_check_still_passes(self, harsh_run):
        assert harsh_run.passed, harsh_run.render()
        assert set(harsh_run.stats.faults) >= DEPOSIT_FAULTS
        assert harsh_run.collective["group_buy_deposit"]["succeeded"] >= 1
        assert harsh_run.collective["group_buy_deposit"]["failed"] >= 1

    def test_a_buyer_who_left_a_running_campaign_got_the_deposit_back(self, harsh_run):
        endings = {ending for ending, _ in harsh_run.deposit_orders}
        assert "withdrew: deposit refunded" in endings
        assert harsh_run.deposit_orders[("withdrew: deposit refunded", "cancelled")] >= 1

    def test_a_buyer_who_cancelled_after_the_balance_ends_cancelled_with_both_charges_back(
        self, harsh_run
    ):
        assert harsh_run.deposit_orders[("balance paid", "cancelled")] >= 1
        assert harsh_run.passed  # group-buy-deposits-settled: a cancelled order keeps nothing

    def test_refunds_declined_at_once_are_only_those_the_library_asks_again(self):
        # Every first ask of an after-sales refund or of a cancel's return is declined: the
        # run passes only if settle_refunds and reconcile(retry_failed=True) ask again.
        faults = FaultRates(
            refund_declined=1.0, refund_pending=0.0, deposit_returns=1.0, cancel=0.6
        )
        report = run_simulation(SimulationConfig(orders=400, seed=1, faults=faults), memory=True)
        assert report.passed, report.failed
        returned = sum(
            n for (ending, _), n in report.deposit_orders.items() if ending.endswith("a return")
        )
        assert returned >= 1
        assert report.deposit_orders[("balance paid", "cancelled")] >= 1
        assert report.stats.faults["refund declined"] >= 2  # one of each kind
        assert set(report.after_sales) <= {"refunded", "closed", "rejected", "withdrawn"}

    def test_refunds_left_pending_whose_callbacks_fail_are_asked_again_and_end_refunded(self):
        faults = FaultRates(refund_pending=1.0, failed_after_pending=1.0, deposit_returns=1.0)
        report = run_simulation(SimulationConfig(orders=300, seed=6, faults=faults), memory=True)
        assert report.passed, report.failed
        assert report.stats.faults["refund failed after pending"] >= 1
        assert (
            report.stats.faults["refund pending"]
            == report.stats.faults["refund failed after pending"]
        )


class TestTheDepositCheckCanFail:
    def test_a_refunded_deposit_also_forfeited_fails_only_the_deposit_check(self):
        report = run_simulation(
            SimulationConfig(orders=20),
            memory=True,
            break_invariants=("group-buy-deposits-settled",),
        )
        assert report.failed == ["group-buy-deposits-settled"]
        (check,) = [c for c in report.checks if not c.passed]
        assert "the policy says release" in check.detail


class TestTheScriptedProviderRefundFaults:
    def test_a_refund_fault_answers_refunds_first_and_records_its_pending_keys(self):
        script = GatewayScript(refund_fault=lambda _: GatewayStatus.PENDING)
        request = RefundRequest("o-1", "tx-1", Money.of("1.00", "CNY"), "k-1", "p-1")
        assert script.decide(request) is GatewayStatus.PENDING
        assert script.pending_refunds == ["k-1"]
        assert script.pending == []

    def test_a_refund_fault_that_lets_a_refund_through_leaves_the_usual_answer(self):
        script = GatewayScript(
            answer=GatewayStatus.DECLINED, refund_fault=lambda _: GatewayStatus.SUCCEEDED
        )
        request = RefundRequest("o-1", "tx-1", Money.of("1.00", "CNY"), "k-1", "p-1")
        assert script.decide(request) is GatewayStatus.DECLINED
        assert script.pending_refunds == []


def _deposit_service(stock: InMemoryInventory) -> CampaignService:
    return CampaignService(
        orders=InMemoryOrderRepository(),
        inventory=stock,
        catalog=InMemoryCatalog([Product("tea", "m-1", "tea", Money.of("100.00", "CNY"))]),
        payments=ScriptedPaymentGateway(),
        clock=ManualClock(),
        ids=SequentialIds(),
        publisher=RecordingPublisher(),
        ledger=InMemoryLedger(),
        payment_records=InMemoryPaymentRepository(),
        group_buys=InMemoryGroupBuyRepository(),
    )


class TestTheGapTheSimulationFound:
    def test_paying_the_balance_of_a_deposit_order_deducts_its_units_from_stock(self):
        stock = InMemoryInventory({"tea": 100})
        service = _deposit_service(stock)
        now = service.clock.now()
        yuan = Money.of("80.00", "CNY")
        terms = GroupBuyTerms(
            list_price=Money.of("100.00", "CNY"),
            tiers=[PriceTier(10, yuan)],
            starts_at=now,
            ends_at=now + timedelta(days=3),
            minimum=10,
            payment=GroupBuyPayment.DEPOSIT,
            deposit=Money.of("20.00", "CNY"),
        )
        campaign = service.create_group_buy(Actor.merchant("m-1"), "tea", terms)
        alice = Actor.buyer("alice")
        order = service.place_group_buy_order(alice, campaign.id, 10)
        service.pay(order.id, alice)  # the deposit
        service.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]  # a ManualClock
        service.expire_due()  # the campaign succeeds: the balance is due
        service.pay(order.id, alice)  # the balance
        assert service.orders.get(order.id).state == "awaiting_shipment"
        assert (stock.on_hand("tea"), stock.reserved("tea")) == (90, 0)
