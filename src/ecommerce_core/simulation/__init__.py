"""A deterministic, seeded simulation of a marketplace under load and faults.

Run it with ``ecommerce-core simulate`` (or ``make demo``), or from Python:

    >>> from ecommerce_core.simulation import SimulationConfig, run_simulation
    >>> report = run_simulation(SimulationConfig(orders=20, seed=1), memory=True)
    >>> report.passed
    True

See ``docs/simulation.md`` for what it simulates, the faults it injects and the checks.
"""

from __future__ import annotations

from ecommerce_core.simulation.checks import (
    BREAKABLE,
    Check,
    after_sales_states,
    break_invariant,
    run_checks,
)
from ecommerce_core.simulation.engine import (
    FaultRates,
    Journey,
    Progress,
    SimulationConfig,
    SimulationStats,
    Simulator,
)
from ecommerce_core.simulation.runner import SimulationReport, run_simulation
from ecommerce_core.simulation.world import SimulatedWorld, build_world, payment_refunds

__all__ = [
    "BREAKABLE",
    "Check",
    "FaultRates",
    "Journey",
    "Progress",
    "SimulatedWorld",
    "SimulationConfig",
    "SimulationReport",
    "SimulationStats",
    "Simulator",
    "after_sales_states",
    "break_invariant",
    "build_world",
    "payment_refunds",
    "run_checks",
    "run_simulation",
]
