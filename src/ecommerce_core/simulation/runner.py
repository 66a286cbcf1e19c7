"""Run a simulation end to end and render its report."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable

import attrs

from ecommerce_core.campaigns.group_buy import GROUP_BUY_DEPOSIT_ORDER_PROCESS
from ecommerce_core.orders import Order
from ecommerce_core.simulation.checks import (
    Check,
    after_sales_states,
    break_invariant,
    run_checks,
)
from ecommerce_core.simulation.collective import collective_outcomes, deposit_order_ending
from ecommerce_core.simulation.engine import Progress, SimulationConfig, SimulationStats, Simulator
from ecommerce_core.simulation.world import SimulatedWorld, build_world

__all__ = [
    "SimulationReport",
    "run_simulation",
]


@attrs.frozen
class SimulationReport:
    """What a run did and whether every invariant held.

    Attributes:
        config: What was simulated.
        storage: Where each part was stored.
        stats: Journeys, placed orders, refusals, faults, timing.
        final_states: Orders per ``(sales mode, payment method, final state)``; a group-buy
            order under the deposit policy counts under the mode ``group_buy_deposit``.
        after_sales: After-sales return requests per final state.
        balances: Ledger balance per account (``kind:owner``), in minor units of CNY.
        checks: Every invariant check, in order.
        collective: What happened to each collective mode's campaigns, per mode: teams formed
            or failed, rounds drawn or unsold, group buys succeeded or failed, auctions sold,
            unsold or unpaid, rebates credited, voided or clawed back (see
            :func:`~ecommerce_core.simulation.collective.collective_outcomes`).
        deposit_orders: Group-buy orders under the deposit policy per ``(how it ended, final
            state)`` (see :func:`~ecommerce_core.simulation.collective.deposit_order_ending`).

    """

    config: SimulationConfig
    storage: str
    stats: SimulationStats
    final_states: Counter[tuple[str, str, str]]
    after_sales: Counter[str]
    balances: dict[str, int]
    checks: list[Check]
    collective: dict[str, Counter[str]] = attrs.field(factory=dict)
    deposit_orders: Counter[tuple[str, str]] = attrs.field(factory=Counter)

    @property
    def passed(self) -> bool:
        """Whether every invariant check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return [check.name for check in self.checks if not check.passed]

    @property
    def throughput(self) -> float:
        """Orders placed per second of wall time."""
        return len(self.stats.placed) / self.stats.seconds if self.stats.seconds else 0.0

    def render(self) -> str:
        """The report as plain text."""
        out = [
            (
                f"simulation: seed {self.config.seed}, {self.stats.journeys} journeys, "
                f"{len(self.stats.placed)} orders placed, {self.stats.steps} steps, "
                f"{self.stats.expired} deadlines fired"
            ),
            f"storage: {self.storage}",
            "",
            "orders by final state (sales mode / payment method):",
        ]
        groups: dict[tuple[str, str], Counter[str]] = {}
        for (mode, method, state), count in self.final_states.items():
            groups.setdefault((mode, method), Counter())[state] = count
        for (mode, method), states in sorted(groups.items()):
            listed = ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
            out.append(f"  {mode:<17} {method:<7} {sum(states.values()):>6}  {listed}")
        out += ["", "purchase methods:"]
        purchases = Counter(j.purchase for j in self.stats.placed.values())
        out += [f"  {name:<17} {n:>6}" for name, n in sorted(purchases.items())]
        out += ["", "collective sales modes (campaigns by outcome):"]
        out += [
            f"  {mode:<17} " + ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
            for mode, states in sorted(self.collective.items())
        ]
        if self.deposit_orders:
            out += ["", "group buys under the deposit policy (orders by how they ended):"]
            out += [
                f"  {ending:<36} {state:<14} {n:>6}"
                for (ending, state), n in sorted(self.deposit_orders.items())
            ]
        out += ["", "after-sales returns by final state:"]
        out += [f"  {state:<14} {n:>6}" for state, n in sorted(self.after_sales.items())]
        out += ["", "injected faults:"]
        out += [f"  {name:<30} {n:>6}" for name, n in sorted(self.stats.faults.items())]
        out += ["", "refused commands (each refused cleanly, nothing changed):"]
        out += [f"  {name:<52} {n:>6}" for name, n in sorted(self.stats.refusals.items())]
        out += ["", "money by ledger account (CNY):"]
        summed: set[str] = set()
        for kind in ("buyer", "deposit", "rebate_payable"):  # one line per kind, all buyers
            owners = {a: m for a, m in self.balances.items() if a.startswith(f"{kind}:")}
            if owners:
                summed |= owners.keys()
                label = f"{kind}:* ({len(owners)} buyers)"
                out.append(f"  {label:<32} {sum(owners.values()) / 100:>14,.2f}")
        out += [
            f"  {account:<32} {minor / 100:>14,.2f}"
            for account, minor in self.balances.items()
            if account not in summed
        ]
        total = sum(self.balances.values())
        out.append(f"  {'sum (must be 0.00)':<32} {total / 100:>14,.2f}")
        out += ["", "invariant checks:"]
        out += [
            f"  [{'PASS' if c.passed else 'FAIL'}] {c.name}: {c.description} ({c.detail})"
            for c in self.checks
        ]
        out += [
            "",
            (
                f"throughput: {self.throughput:,.0f} orders/s "
                f"({len(self.stats.placed)} orders in {self.stats.seconds:.2f} s)"
            ),
            "all invariant checks passed"
            if self.passed
            else f"FAILED invariant checks: {', '.join(self.failed)}",
        ]
        return "\n".join(out)


def run_simulation(
    config: SimulationConfig | None = None,
    *,
    rng: random.Random | None = None,
    memory: bool = False,
    db_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    break_invariants: tuple[str, ...] = (),
    extend: Callable[[SimulatedWorld, Simulator], None] | None = None,
) -> SimulationReport:
    """Simulate the marketplace and check every invariant.

    Args:
        config: What to simulate (the defaults when ``None``).
        rng: The run's randomness (``random.Random(config.seed)`` when ``None``).
        memory: In-memory adapters instead of SQLite.
        db_path: The SQLite file (a fresh temporary file when ``None``).
        progress: Told how far the run is.
        break_invariants: Test-only: invariants to break before checking (see
            :data:`~ecommerce_core.simulation.checks.BREAKABLE`).
        extend: Called with the world and the simulator before the run; the extension point
            where more sales modes (team, group buy, lucky draw, auction ...) add journeys.

    """
    config = config or SimulationConfig()
    world = build_world(
        buyers=config.buyers,
        stock=config.stock,
        memory=memory,
        db_path=db_path,
        seed=config.seed,
    )
    try:
        simulator = Simulator(world, config, rng or random.Random(config.seed))  # noqa: S311  # a simulation, not crypto
        if extend is not None:
            extend(world, simulator)
        stats = simulator.run(progress)
        world.returns = stats.returns
        for name in break_invariants:
            break_invariant(world, name)
        checks = run_checks(world)
        orders = world.order_store.all()
        final: Counter[tuple[str, str, str]] = Counter(
            (_mode(o), o.payment_method, o.state) for o in orders
        )
        deposits: Counter[tuple[str, str]] = Counter(
            (ending, o.state)
            for o in orders
            if (ending := deposit_order_ending(world, o)) is not None
        )
        balances = {
            f"{account.kind}:{account.owner}": money.minor
            for account, money in world.ledger.balances("CNY").items()
        }
        returns = Counter(after_sales_states(world, stats.returns))
        collective = collective_outcomes(world, world.order_store.all())
        return SimulationReport(
            config, world.storage, stats, final, returns, balances, checks, collective, deposits
        )
    finally:
        world.close()


def _mode(order: Order) -> str:
    """The report's sales mode of an order: a group buy under the deposit policy apart."""
    if order.process.name == GROUP_BUY_DEPOSIT_ORDER_PROCESS.name:
        return "group_buy_deposit"
    return order.sales_mode
