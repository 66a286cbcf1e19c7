"""The marketplace simulation: deterministic, fault-injecting, and strict about its invariants."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecommerce_core.actors import Actor
from ecommerce_core.cli import main
from ecommerce_core.errors import InvalidInput
from ecommerce_core.simulation import (
    BREAKABLE,
    FaultRates,
    SimulationConfig,
    run_simulation,
)

SMALL = SimulationConfig(orders=40, seed=3)
EVERY_FAULT = FaultRates(
    declined=0.3,
    pending=0.4,
    failed_after_pending=0.3,
    duplicate_notification=0.6,
    late_notification=0.5,
    abandon=0.1,
    cancel=0.15,
    lost_parcel=0.15,
    refused_cod=0.4,
    duplicate_tracking=0.5,
    out_of_order_tracking=0.5,
    returns=0.4,
    confirm=0.5,
    unpaid_winner=0.5,
    unclaimed_prize=0.5,
    unpaid_balance=0.4,
    refund_declined=0.4,
    refund_pending=0.5,
    deposit_returns=0.6,
)


DEPOSIT_FAULTS = {
    "unpaid balance",
    "cancelled after balance",
    "withdrew from a deposit group buy",
    "refund declined",
    "deposit refund declined",
    "refund pending",
    "refund failed after pending",
}


def _summary(report):
    return (
        sorted(report.final_states.items()),
        report.balances,
        sorted(report.stats.faults.items()),
        sorted(report.stats.refusals.items()),
    )


class TestACleanRun:
    def test_the_command_exits_zero_with_every_check_passed(self, capsys):
        assert main(["simulate", "--orders", "40", "--memory", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert "all invariant checks passed" in out
        assert "[FAIL]" not in out
        assert out.count("[PASS]") == 17
        assert "orders/s" in out

    def test_the_default_stores_orders_in_the_sqlite_file_it_is_given(self, tmp_path, capsys):
        db = tmp_path / "sim.db"
        assert main(["simulate", "--orders", "30", "--db", str(db), "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert db.exists()
        assert f"SQLite ({db})" in out
        assert "[PASS] outbox-drained" in out

    def test_the_same_seed_gives_the_same_run(self):
        first = run_simulation(SMALL, memory=True)
        again = run_simulation(SMALL, rng=random.Random(SMALL.seed), memory=True)  # noqa: S311  # a seed, not crypto
        assert _summary(first) == _summary(again)

    def test_sqlite_and_memory_runs_of_one_seed_agree(self):
        assert _summary(run_simulation(SMALL)) == _summary(run_simulation(SMALL, memory=True))

    def test_another_seed_gives_another_run(self):
        other = SimulationConfig(orders=40, seed=4)
        assert _summary(run_simulation(SMALL, memory=True)) != _summary(
            run_simulation(other, memory=True)
        )

    def test_every_fault_is_injected_and_every_check_still_passes(self):
        report = run_simulation(
            SimulationConfig(orders=200, seed=15, faults=EVERY_FAULT), memory=True
        )
        assert report.passed, report.render()
        # The deposit group buys' own faults: tests/test_simulation_group_buy_deposit.py.
        assert set(report.stats.faults) - DEPOSIT_FAULTS == {
            "abandoned payment",
            "cancelled after payment",
            "declined payment",
            "duplicate notification",
            "duplicate tracking event",
            "failed after pending",
            "late notification",
            "lost parcel",
            "out-of-order tracking event",
            "pending payment",
            "refused COD",
            "return",
            "unclaimed prize",
            "unformed team",
            "unpaid auction winner",
        }
        methods = {method for _, method, _ in report.final_states}
        assert methods == {"online", "escrow", "cod", "credit"}
        purchases = {j.purchase for j in report.stats.placed.values()}
        assert purchases == {
            "buy_now",
            "cart",
            "flash_sale",
            "rush_purchase",
            "team",
            "lucky_draw",
            "group_buy",
            "auction",
            "group_buy_deposit",
        }
        states = {state for _, _, state in report.final_states}
        assert {"closed", "cancelled", "returned"} <= states
        assert report.after_sales["refunded"] >= 1
        assert set(report.after_sales) <= {"refunded", "closed", "rejected", "withdrawn"}

    @settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 10_000))
    def test_any_seed_keeps_every_invariant(self, seed):
        report = run_simulation(
            SimulationConfig(orders=25, seed=seed, faults=EVERY_FAULT), memory=True
        )
        assert report.failed == []

    def test_steps_scheduled_through_the_extension_point_run_and_are_checked(self):
        def extra(world, simulator):
            at = world.clock.now()
            simulator.schedule(
                at, "extra", lambda: world.service.buy_now(Actor.buyer("b-001"), "pot-01", 1)
            )
            simulator.schedule(
                at, "extra", lambda: world.service.buy_now(Actor.buyer("b-001"), "nope", 1)
            )

        report = run_simulation(SimulationConfig(orders=1, seed=5), memory=True, extend=extra)
        assert report.stats.refusals["extra: NotFound"] == 1
        assert report.passed
        assert sum(report.final_states.values()) == len(report.stats.placed) + 1

    def test_the_extension_point_sees_the_world_before_the_run(self):
        seen = []
        report = run_simulation(
            SimulationConfig(orders=5),
            memory=True,
            extend=lambda world, simulator: seen.append((world.clock.now(), simulator.stats)),
        )
        assert len(seen) == 1
        assert seen[0][1] is report.stats


@pytest.fixture(scope="module")
def default_run():
    """One default-size run (1000 journeys, seed 7), in memory, shared by the mode tests."""
    return run_simulation(SimulationConfig(), memory=True)


class TestEveryCollectiveModeHappensInADefaultRun:
    def test_the_default_run_passes_every_check(self, default_run):
        assert default_run.passed, default_run.failed

    def test_teams_formed_and_failed(self, default_run):
        teams = default_run.collective["team"]
        assert teams["formed"] >= 1
        assert teams["failed"] >= 1

    def test_lucky_draw_rounds_were_drawn_and_some_went_unsold(self, default_run):
        rounds = default_run.collective["lucky_draw"]
        assert rounds["drawn"] >= 1
        assert rounds["fulfilled"] >= 1
        assert rounds["unsold"] >= 1
        assert rounds["drawn"] == rounds["fulfilled"] + rounds["forfeited"]

    def test_lucky_draw_winners_and_losers_end_where_the_draw_put_them(self, default_run):
        states = {s for mode, _, s in default_run.final_states if mode == "lucky_draw"}
        assert {"lost", "closed"} <= states

    def test_group_buys_succeeded(self, default_run):
        assert default_run.collective["group_buy"]["succeeded"] >= 1

    def test_auctions_sold(self, default_run):
        auctions = default_run.collective["auction"]
        assert auctions["sold"] >= 1
        closed = default_run.final_states[("auction", "online", "closed")]
        returned = default_run.final_states[("auction", "online", "returned")]
        assert closed + returned >= auctions["sold"] - 1  # a sold lot's order may still be lost

    def test_rebates_were_credited(self, default_run):
        assert default_run.collective["rebate"]["credited"] >= 1

    def test_deposit_group_buys_succeeded_and_failed(self, default_run):
        campaigns = default_run.collective["group_buy_deposit"]
        assert campaigns["succeeded"] >= 1
        assert campaigns["failed"] >= 1
        assert campaigns["unpaid balance: forfeit"] >= 1
        assert campaigns["unpaid balance: refund"] >= 1

    def test_deposit_orders_end_every_way_the_policy_allows(self, default_run):
        endings = {ending for ending, _ in default_run.deposit_orders}
        assert {
            "balance paid",
            "balance paid, then a return",
            "balance missed: deposit forfeited",
            "balance missed: deposit refunded",
            "campaign failed: deposit refunded",
        } <= endings
        assert default_run.deposit_orders[("campaign failed: deposit refunded", "closed")] == 0
        rows = {state for mode, _, state in default_run.final_states if mode == "group_buy_deposit"}
        assert {"closed", "cancelled"} <= rows
        assert sum(default_run.deposit_orders.values()) == sum(
            n for (mode, _, _), n in default_run.final_states.items() if mode == "group_buy_deposit"
        )

    def test_the_report_has_a_row_per_deposit_order_ending(self, default_run):
        text = default_run.render()
        section = text.split("group buys under the deposit policy (orders by how they ended):")[1]
        rows = section.split("\n\n")[0].strip().splitlines()
        assert len(rows) == len(default_run.deposit_orders)
        assert any(r.split()[:3] == ["balance", "missed:", "deposit"] for r in rows)
        assert "group_buy_deposit" in text.split("orders by final state")[1].split("\n\n")[0]

    def test_the_report_lists_each_mode_with_its_outcomes(self, default_run):
        text = default_run.render()
        section = text.split("collective sales modes (campaigns by outcome):")[1].split("\n\n")[0]
        for mode in ("auction", "group_buy", "group_buy_deposit", "lucky_draw", "rebate", "team"):
            assert f"  {mode} " in section
        assert "drawn" in section
        assert "succeeded" in section
        assert "credited" in section


class TestFaultsOfTheCollectiveModes:
    def test_unpaid_winners_forfeit_their_deposits(self):
        faults = FaultRates(unpaid_winner=1.0)
        report = run_simulation(SimulationConfig(orders=300, seed=2, faults=faults), memory=True)
        assert report.passed, report.failed
        auctions = report.collective["auction"]
        unpaid = report.stats.faults["unpaid auction winner"]
        assert report.final_states[("auction", "online", "defaulted")] == unpaid >= 1
        # One forfeit per auction awarded; a runner-up's second-chance offer binds nobody.
        assert auctions["winner defaulted"] == auctions["unpaid"] >= 1
        assert auctions["sold"] == 0

    def test_teams_nobody_joins_expire_unformed_and_their_leaders_are_refunded(self):
        faults = FaultRates(unformed_team=1.0)
        report = run_simulation(SimulationConfig(orders=300, seed=2, faults=faults), memory=True)
        assert report.passed, report.failed
        teams = report.collective["team"]
        assert teams["failed"] == report.stats.faults["unformed team"] >= 1
        assert teams["formed"] == 0
        shipped = {"awaiting_shipment", "shipped", "delivered", "completed", "closed", "returned"}
        assert not {s for mode, _, s in report.final_states if mode == "team"} & shipped

    def test_unclaimed_prizes_are_forfeited(self):
        faults = FaultRates(unclaimed_prize=1.0)
        report = run_simulation(SimulationConfig(orders=300, seed=2, faults=faults), memory=True)
        assert report.passed, report.failed
        rounds = report.collective["lucky_draw"]
        assert rounds["forfeited"] == report.stats.faults["unclaimed prize"] >= 1
        assert rounds["fulfilled"] == 0


class TestABrokenInvariant:
    @pytest.mark.parametrize("name", sorted(BREAKABLE))
    def test_the_command_exits_non_zero_naming_the_failed_check(self, name, capsys):
        status = main(
            ["simulate", "--orders", "20", "--memory", "--no-progress", "--break-invariant", name]
        )
        out = capsys.readouterr().out
        assert status == 1
        assert f"[FAIL] {name}" in out
        assert "FAILED invariant checks:" in out
        assert name in out.splitlines()[-1]

    def test_an_unknown_invariant_cannot_be_broken(self):
        with pytest.raises(InvalidInput):
            run_simulation(SimulationConfig(orders=2), memory=True, break_invariants=("nope",))


class TestProgress:
    def test_without_rich_the_command_prints_plain_progress(self, monkeypatch, capsys):
        monkeypatch.setitem(sys.modules, "rich.progress", None)
        assert main(["simulate", "--orders", "20", "--memory"]) == 0
        err = capsys.readouterr().err
        assert "simulating: 20/20 journeys (100 %)" in err

    def test_with_rich_the_command_still_reports(self, capsys):
        pytest.importorskip("rich")
        assert main(["simulate", "--orders", "20", "--memory"]) == 0
        assert "all invariant checks passed" in capsys.readouterr().out


class TestConfiguration:
    @pytest.mark.parametrize("orders", [0, -1, 1.5])
    def test_a_run_needs_at_least_one_journey(self, orders):
        with pytest.raises(InvalidInput):
            SimulationConfig(orders=orders)

    @pytest.mark.parametrize("rate", [-0.1, 1.1])
    def test_a_fault_rate_is_a_probability(self, rate):
        with pytest.raises(InvalidInput):
            FaultRates(declined=rate)
