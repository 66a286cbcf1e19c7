"""The invariant checks a simulation run must pass, and the test-only faults that break them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.campaigns.team import (
    AWAITING_TEAM,
    TEAM_ORDER_PROCESS,
    MemberStatus,
    TeamState,
    TeamTerms,
)
from ecommerce_core.delivery import ShipmentPurpose
from ecommerce_core.errors import InvalidInput
from ecommerce_core.orders import Order
from ecommerce_core.payments.ledger import Account, Movement, Posting
from ecommerce_core.ports import StockItem
from ecommerce_core.simulation.collective import TEAM_SKU
from ecommerce_core.simulation.world import SimulatedWorld

__all__ = [
    "BREAKABLE",
    "Check",
    "after_sales_states",
    "break_invariant",
    "run_checks",
]

#: States in which an order's goods never left, or came back to, the merchant's stock.
_NOT_SOLD: Final = frozenset({"pending_payment", "cancelled", "returned"})
#: States of a team order that has not shipped (and, once final, never will).
_DAY: Final = timedelta(days=1)
_NEVER_SHIPPED: Final = frozenset({"pending_payment", AWAITING_TEAM, "cancelled"})


@attrs.frozen
class Check:
    """One invariant and whether the run kept it.

    Attributes:
        name: A short, stable name (``stock-matches-orders`` ...).
        description: What it asserts.
        passed: Whether it held.
        detail: The counter-example when it did not (or what was checked when it did).

    """

    name: str
    description: str
    passed: bool
    detail: str


def _stock_never_oversold(world: SimulatedWorld, _: list[Order]) -> Check:
    inventory = world.service.inventory
    bad = [
        f"{sku}: on hand {inventory.on_hand(sku)}, reserved {inventory.reserved(sku)},"
        f" available {inventory.available(sku)}"
        for sku in world.initial_stock
        if min(inventory.on_hand(sku), inventory.reserved(sku), inventory.available(sku)) < 0
        or inventory.available(sku) + inventory.reserved(sku) != inventory.on_hand(sku)
    ]
    return Check(
        "stock-never-oversold",
        "no SKU below zero; available + reserved == on hand",
        not bad,
        "; ".join(bad) or f"{len(world.initial_stock)} SKUs",
    )


def _stock_matches_orders(world: SimulatedWorld, orders: list[Order]) -> Check:
    inventory = world.service.inventory
    sold: dict[str, int] = dict.fromkeys(world.initial_stock, 0)
    for order in orders:
        skus = {line.line_id: line.sku for line in order.lines}
        if order.state not in _NOT_SOLD:
            for line in order.lines:
                sold[line.sku] += line.quantity
        for shipment in world.fulfilment.shipments_of(order.id):
            if shipment.purpose is ShipmentPurpose.RESHIPMENT:
                for parcel in shipment.lines:
                    sold[skus[parcel.line_id]] += parcel.quantity
    bad = [
        f"{sku}: on hand {inventory.on_hand(sku)}, expected {units - sold[sku]}"
        for sku, units in world.initial_stock.items()
        if inventory.on_hand(sku) != units - sold[sku] or inventory.reserved(sku) != 0
    ]
    return Check(
        "stock-matches-orders",
        "on hand == received - units of orders not cancelled or returned - units reshipped;"
        " nothing reserved",
        not bad,
        "; ".join(bad) or f"{sum(sold.values())} units sold",
    )


def _postings_balanced(world: SimulatedWorld, _: list[Order]) -> Check:
    postings = world.ledger.all()
    bad = [p.key for p in postings if not p.amount.is_positive or p.source == p.target]
    return Check(
        "postings-balanced",
        "every posting moves a positive amount between two accounts",
        not bad,
        ", ".join(bad[:5]) or f"{len(postings)} postings",
    )


def _accounts_sum_to_zero(world: SimulatedWorld, _: list[Order]) -> Check:
    total = sum(m.minor for m in world.ledger.balances("CNY").values())
    return Check(
        "accounts-sum-to-zero",
        "the balances of all ledger accounts add up to zero (money is conserved)",
        total == 0,
        f"sum of balances: {total} minor units",
    )


def _order_money_balanced(world: SimulatedWorld, orders: list[Order]) -> Check:
    bad = [o.id for o in orders if not world.service.money(o.id).balanced]
    return Check(
        "order-money-balanced",
        "per order and line: paid in == released + commission + refunded + held",
        not bad,
        ", ".join(bad[:5]) or f"{len(orders)} orders",
    )


def _refunds_within_paid(world: SimulatedWorld, orders: list[Order]) -> Check:
    bad = [
        f"{o.id}/{line.line_id}"
        for o in orders
        for line in world.service.money(o.id).lines.values()
        if line.refunded > line.paid_in
    ]
    return Check(
        "refunds-within-paid",
        "no line refunded more than was paid for it",
        not bad,
        ", ".join(bad[:5]) or "every line",
    )


def _unkept_money_returned(world: SimulatedWorld, orders: list[Order]) -> Check:
    bad = []
    for order in orders:
        if order.state in _NOT_SOLD:
            money = world.service.money(order.id)
            if money.released.is_positive or money.held.is_positive:
                bad.append(order.id)
    return Check(
        "unsold-orders-keep-no-money",
        "a cancelled or returned order released nothing to its merchant and holds nothing",
        not bad,
        ", ".join(bad[:5]) or "every cancelled or returned order",
    )


def _no_overdue_deadline(world: SimulatedWorld, orders: list[Order]) -> Check:
    now = world.clock.now()
    bad = [
        f"{o.id} ({o.deadline.trigger} due {o.deadline.at:%m-%d %H:%M})"
        for o in orders
        if o.deadline is not None and o.deadline.at <= now
    ]
    bad += [f"{o.id} (clock paused by {o.paused.trigger})" for o in orders if o.paused is not None]
    return Check(
        "no-overdue-deadline",
        "after the final expire_due no order has a due deadline or a paused clock",
        not bad,
        ", ".join(bad[:5]) or f"{len(orders)} orders",
    )


def _every_order_final(_: SimulatedWorld, orders: list[Order]) -> Check:
    bad = [f"{o.id} ({o.state})" for o in orders if not o.is_final]
    return Check(
        "every-order-final",
        "60 simulated days after the last journey every order is in a final state",
        not bad,
        ", ".join(bad[:5]) or f"{len(orders)} orders",
    )


_SETTLED: Final = frozenset({"refunded", "closed", "rejected", "withdrawn", "exchanged"})


def after_sales_states(world: SimulatedWorld, returns: list[tuple[str, str]]) -> list[str]:
    """The final state of each after-sales request of the run."""
    return [world.after_sales.record(o).request(r).state for o, r in returns]


def _after_sales_settled(world: SimulatedWorld, _: list[Order]) -> Check:
    states = after_sales_states(world, world.returns)
    stuck = [state for state in states if state not in _SETTLED]
    return Check(
        "after-sales-settled",
        "every return request ended refunded, rejected, withdrawn or closed",
        not stuck,
        ", ".join(stuck[:5]) or f"{len(states)} requests",
    )


def _teams_whole(world: SimulatedWorld, orders: list[Order]) -> Check:
    teams = world.service.teams
    if teams is None:
        return Check("teams-whole", "no team purchase offered", passed=True, detail="no teams")
    team_ids = sorted(
        {
            team_id
            for o in orders
            if o.process.name == TEAM_ORDER_PROCESS.name
            and (team_id := teams.team_of(o.id)) is not None
        }
    )
    bad: list[str] = []
    for team_id in team_ids:
        team = teams.get(team_id)
        paid = [m for m in team.members if m.status is MemberStatus.PAID]
        if len(paid) > team.size:
            bad.append(f"{team.id}: {len(paid)} paid members, size {team.size}")
        for member in team.members:
            state = world.service.orders.get(member.order_id).state
            if state not in _NEVER_SHIPPED and team.state != TeamState.FORMED:
                bad.append(f"{member.order_id} is {state} in {team.state} team {team.id}")
    return Check(
        "teams-whole",
        "no team has more paid members than its size; no order of an unformed team shipped",
        not bad,
        ", ".join(bad[:5]) or f"{len(team_ids)} teams",
    )


def _outbox_drained(world: SimulatedWorld, _: list[Order]) -> Check:
    if world.outbox is None:
        return Check(
            "outbox-drained", "every stored event was published", passed=True, detail="no outbox"
        )
    world.outbox.relay()
    pending = world.outbox.pending()
    return Check(
        "outbox-drained",
        "every event written with an order was published after commit",
        pending == 0,
        f"{pending} events unpublished",
    )


_CHECKS: Final[Sequence[Callable[[SimulatedWorld, list[Order]], Check]]] = (
    _stock_never_oversold,
    _stock_matches_orders,
    _postings_balanced,
    _accounts_sum_to_zero,
    _order_money_balanced,
    _refunds_within_paid,
    _unkept_money_returned,
    _no_overdue_deadline,
    _every_order_final,
    _after_sales_settled,
    _teams_whole,
    _outbox_drained,
)


def run_checks(world: SimulatedWorld) -> list[Check]:
    """Run every invariant check over the world's final state."""
    orders = world.order_store.all()
    return [check(world, orders) for check in _CHECKS]


# --------------------------------------------------------------------- test-only faults


def _sell_outside_an_order(world: SimulatedWorld) -> None:
    inventory = world.service.inventory
    inventory.reserve("sim-break-stock", [StockItem("sim-break-line", "tea-01", 1)])
    inventory.commit("sim-break-stock")


def _refund_too_much(world: SimulatedWorld) -> None:
    for order in world.service.orders.all():  # type: ignore[attr-defined]
        line = next(iter(world.service.money(order.id).lines.values()), None)
        if line is not None and line.paid_in.is_positive:
            world.ledger.append(
                [
                    Posting(
                        "sim-break-refund",
                        order.id,
                        line.line_id,
                        Account.merchant(order.merchant_id),
                        Account.buyer(order.buyer_id),
                        line.paid_in + line.paid_in,
                        Movement.REFUND,
                        world.clock.now(),
                    )
                ]
            )
            return


def _leave_overdue(world: SimulatedWorld) -> None:
    world.service.buy_now(Actor.buyer("b-001"), "cup-01", 1)
    world.clock.advance(timedelta(days=1))


def _overfill_a_team(world: SimulatedWorld) -> None:
    service = world.service
    buyer = Actor.buyer("b-001")
    order = service.place_team_order(buyer, TEAM_SKU)
    team = service.lead_team(order.id, buyer, TeamTerms("sim-break", 2, world.clock.now() + _DAY))
    team.members.extend(team.members * team.size)  # paid places beyond the team's size
    service.teams.save(team, team.version)  # type: ignore[union-attr]  # the world has teams


BREAKABLE: Final = {
    "stock-matches-orders": _sell_outside_an_order,
    "refunds-within-paid": _refund_too_much,
    "no-overdue-deadline": _leave_overdue,
    "teams-whole": _overfill_a_team,
}
"""The invariants a test may break on purpose, by check name."""


def break_invariant(world: SimulatedWorld, name: str) -> None:
    """Break the invariant ``name`` behind the services' back (test-only fault).

    Raises:
        InvalidInput: An invariant that cannot be broken this way.

    """
    fault = BREAKABLE.get(name)
    if fault is None:
        raise InvalidInput("break_invariant", name, f"one of {', '.join(sorted(BREAKABLE))}")
    fault(world)
