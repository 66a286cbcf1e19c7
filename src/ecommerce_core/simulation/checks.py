"""The invariant checks a simulation run must pass, and the test-only faults that break them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Final

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.auctions import AuctionState, DepositStatus
from ecommerce_core.campaigns.group_buy import (
    AWAITING_BALANCE,
    AWAITING_GROUP,
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GroupBuy,
    GroupBuyPayment,
    GroupBuyState,
    GroupBuyTerms,
    ParticipationStatus,
    PriceTier,
    UnpaidBalance,
)
from ecommerce_core.campaigns.lucky_draw import DrawRoundState, DrawTerms
from ecommerce_core.campaigns.team import (
    AWAITING_TEAM,
    TEAM_ORDER_PROCESS,
    MemberStatus,
    TeamState,
    TeamTerms,
)
from ecommerce_core.delivery import ShipmentPurpose
from ecommerce_core.errors import InvalidInput
from ecommerce_core.money import Money
from ecommerce_core.orders import Order
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement, Posting
from ecommerce_core.ports import StockItem
from ecommerce_core.simulation.collective import GROUP_BUY_SKU, PRIZE_SKU, TEAM_SKU
from ecommerce_core.simulation.world import SimulatedWorld

__all__ = [
    "BREAKABLE",
    "Check",
    "after_sales_states",
    "break_invariant",
    "run_checks",
]

#: States in which an order's goods never left, or came back to, the merchant's stock.
_NOT_SOLD: Final = frozenset({"pending_payment", "cancelled", "returned", "defaulted"})
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
                if line.sku in sold:  # a lucky draw's shares are no stock of the catalogue
                    sold[line.sku] += line.quantity
        for shipment in world.fulfilment.shipments_of(order.id):
            if shipment.purpose is ShipmentPurpose.RESHIPMENT:
                for parcel in shipment.lines:
                    if skus[parcel.line_id] in sold:
                        sold[skus[parcel.line_id]] += parcel.quantity
    for round_id in world.collective.get("lucky_draw", []):
        draw_round = world.service.draw_round(round_id)
        if draw_round.state == DrawRoundState.FULFILLED and draw_round.record is not None:
            winner = world.service.orders.get(draw_round.record.winner_order_id)
            if winner.state not in _NOT_SOLD:
                sold[draw_round.prize_sku] += 1  # the prize went to its winner
    bad = [
        f"{sku}: on hand {inventory.on_hand(sku)}, expected {units - sold[sku]}"
        for sku, units in world.initial_stock.items()
        if inventory.on_hand(sku) != units - sold[sku] or inventory.reserved(sku) != 0
    ]
    return Check(
        "stock-matches-orders",
        "on hand == received - units of orders not cancelled, defaulted or returned - units"
        " reshipped - prizes won; nothing reserved",
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


def _forfeited(world: SimulatedWorld, order: Order) -> Money:
    """What a deposit order's buyer forfeited to its merchant (定金 kept, per the terms)."""
    forfeited = Money.zero(order.currency)
    if order.process.name == GROUP_BUY_DEPOSIT_ORDER_PROCESS.name:
        for posting in world.ledger.postings(order.id):
            if posting.movement is Movement.FORFEIT and posting.target.kind == "merchant":
                forfeited += posting.amount
    return forfeited


def _unkept_money_returned(world: SimulatedWorld, orders: list[Order]) -> Check:
    bad = []
    for order in orders:
        if order.state in _NOT_SOLD:
            money = world.service.money(order.id)
            released = money.released - _forfeited(world, order)
            if released.is_positive or money.held.is_positive:
                bad.append(order.id)
    return Check(
        "unsold-orders-keep-no-money",
        "a cancelled, defaulted or returned order released nothing to its merchant but a"
        " deposit forfeited under its terms, and holds nothing",
        not bad,
        ", ".join(bad[:5]) or "every cancelled, defaulted or returned order",
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


def _draws_verifiable(world: SimulatedWorld, _: list[Order]) -> Check:
    service, bad = world.service, []
    round_ids = world.collective.get("lucky_draw", [])
    drawn = 0
    for round_id in round_ids:
        draw_round = service.draw_round(round_id)
        if draw_round.sold > draw_round.terms.share_count:
            bad.append(f"{round_id}: {draw_round.sold} of {draw_round.terms.share_count} sold")
        if draw_round.record is None:
            continue
        drawn += 1
        if not draw_round.verify():
            bad.append(f"{round_id}: the stored inputs do not give its winner")
        paid = {p.order_id for p in draw_round.paid_purchases()}
        winners = sorted(o for o in paid if service.orders.get(o).state != "lost")
        if winners != [draw_round.record.winner_order_id]:
            bad.append(f"{round_id}: winners {winners}, drawn {draw_round.record.winner_order_id}")
    return Check(
        "draws-verifiable",
        "no round sold more than its shares; each drawn round has exactly one winner,"
        " recomputable from its stored inputs",
        not bad,
        ", ".join(bad[:5]) or f"{len(round_ids)} rounds, {drawn} drawn",
    )


def _kept(world: SimulatedWorld, order_id: str) -> Money:
    """What an order keeps of the goods money: paid in less refunded, over its lines."""
    lines = world.service.money(order_id).lines.values()
    kept = Money.zero("CNY")
    for line in lines:
        kept += line.paid_in - line.refunded
    return kept


def _group_buys_settled(world: SimulatedWorld, _: list[Order]) -> Check:
    service, bad = world.service, []
    campaign_ids = world.collective.get("group_buy", [])
    for campaign_id in campaign_ids:
        campaign = service.group_buy(campaign_id)
        if campaign.state == GroupBuyState.RUNNING:
            bad.append(f"{campaign_id} still running")
            continue
        for part in campaign.participations:
            kept = _kept(world, part.order_id)
            if (
                campaign.state == GroupBuyState.FAILED
                or part.status is ParticipationStatus.WITHDRAWN
            ):
                if not kept.is_zero:
                    bad.append(f"{part.order_id} kept {kept} of a {campaign.state} campaign")
            elif campaign.settlement is not None:
                cap = campaign.settlement.unit_price * part.quantity
                if kept > cap:
                    bad.append(f"{part.order_id} kept {kept} > {cap}")
    return Check(
        "group-buys-settled",
        "every buyer of a succeeded group buy kept at most the final tier price x quantity;"
        " a failed one (or a buyer who left it) kept nothing",
        not bad,
        ", ".join(bad[:5]) or f"{len(campaign_ids)} campaigns",
    )


_FATES: Final = ("apply", "forfeit", "release")


def _deposit_fate(campaign: GroupBuy, order: Order, transaction_id: str) -> str:
    """Where the deposit charged under ``transaction_id`` must end, per the policy."""
    joined = next(
        (
            p
            for p in campaign.participations
            if p.order_id == order.id and p.payment_ref == transaction_id
        ),
        None,
    )
    if (
        joined is None  # a late or duplicate charge, or one the campaign refused
        or joined.status is ParticipationStatus.WITHDRAWN
        or campaign.state != GroupBuyState.SUCCEEDED
    ):
        return "release"
    if order.payment is not None:  # the balance was paid: the deposit pays part of the price
        return "apply"
    return "forfeit" if campaign.terms.unpaid_balance is UnpaidBalance.FORFEIT else "release"


def _deposit_order_problems(world: SimulatedWorld, campaign: GroupBuy, order: Order) -> list[str]:
    """What is wrong with one deposit order's money (nothing, when it ended as it must)."""
    bad: list[str] = []
    postings = world.ledger.postings(order.id)
    by_key = {p.key: p for p in postings}
    deposit_id = f"{campaign.id}:gbdep:{order.id}"
    for posting in postings:
        if not (posting.key.startswith(f"{deposit_id}:") and posting.key.endswith(":hold")):
            continue
        base = posting.key.removesuffix(":hold")
        expected = _deposit_fate(campaign, order, base[len(deposit_id) + 1 :])
        fates = [fate for fate in _FATES if f"{base}:{fate}" in by_key]
        fate = by_key.get(f"{base}:{expected}")
        if fates != [expected] or fate is None or fate.amount != posting.amount:
            bad.append(f"{order.id}: deposit {base} ended {fates}, the policy says {expected}")
    buyer, deposit = Account.buyer(order.buyer_id), Account.deposit(order.buyer_id)
    merchant = Account.merchant(order.merchant_id)
    net = dict.fromkeys((buyer, deposit, merchant), 0)
    for posting in postings:
        if posting.source not in net or posting.target not in net:
            bad.append(f"{order.id}: {posting.key} moves money outside buyer, deposit, merchant")
            continue
        net[posting.source] -= posting.amount.minor
        net[posting.target] += posting.amount.minor
    gateway = world.gateway
    zero = Money.zero(order.currency)
    at_provider = gateway.charged.get(order.id, zero) - gateway.refunded.get(order.id, zero)
    paid = -net[buyer]
    if net[deposit] != 0:
        bad.append(f"{order.id}: {net[deposit]} left in the deposit account")
    if paid != at_provider.minor:
        bad.append(f"{order.id}: the ledger says {paid} paid, the provider {at_provider}")
    line = (
        None
        if campaign.settlement is None
        else next((ln for ln in campaign.settlement.lines if ln.order_id == order.id), None)
    )
    if order.payment is not None and line is not None and order.state != "cancelled":
        if paid > line.final_amount.minor:
            bad.append(f"{order.id}: paid {paid} > the final price {line.final_amount}")
    elif paid != _forfeited(world, order).minor:
        bad.append(
            f"{order.id} ({order.state}) keeps {paid} paid, forfeited {_forfeited(world, order)}"
        )
    if order.state in (AWAITING_GROUP, AWAITING_BALANCE):
        bad.append(f"{order.id} still {order.state}")
    return bad


def _group_buy_deposits_settled(world: SimulatedWorld, orders: list[Order]) -> Check:
    service, bad = world.service, []
    campaign_ids = world.collective.get("group_buy_deposit", [])
    campaigns = {c: service.group_buy(c) for c in campaign_ids}
    bad += [
        f"{c} still running" for c, gb in campaigns.items() if gb.state == GroupBuyState.RUNNING
    ]
    deposit_orders = [o for o in orders if o.process.name == GROUP_BUY_DEPOSIT_ORDER_PROCESS.name]
    for order in deposit_orders:
        assert order.terms is not None  # noqa: S101  # a group-buy order carries its campaign
        campaign_id = order.terms.promotion_ids[0]
        campaign = campaigns.get(campaign_id) or service.group_buy(campaign_id)
        bad += _deposit_order_problems(world, campaign, order)
    held = {
        str(account): money
        for account, money in world.ledger.balances("CNY").items()
        if account.kind == "deposit" and not money.is_zero
    }
    bad += [f"{account} still holds {money}" for account, money in held.items()]
    return Check(
        "group-buy-deposits-settled",
        "every deposit of a group buy ended once where the policy says (applied to a paid"
        " balance; forfeited or refunded per the terms when the balance was missed; refunded"
        " when the campaign failed or the order left it), no deposit account holds money, and"
        " per order the ledger agrees with the provider and the buyer keeps paid no more than"
        " the final price (nothing, or the forfeited deposit, when the order did not go through)",
        not bad,
        ", ".join(bad[:5]) or f"{len(campaign_ids)} campaigns, {len(deposit_orders)} orders",
    )


def _auctions_settled(world: SimulatedWorld, _: list[Order]) -> Check:
    service, bad = world.service, []
    auction_ids = world.collective.get("auction", [])
    out_of_deposit: dict[tuple[str, str], list[Posting]] = {}
    for posting in world.ledger.all():
        if posting.source.kind == "deposit":
            out_of_deposit.setdefault((posting.order_id, posting.source.owner), []).append(posting)
    fates = {
        DepositStatus.RELEASED: Movement.REFUND,
        DepositStatus.FORFEITED: Movement.FORFEIT,
        DepositStatus.APPLIED: Movement.CAPTURE,
    }
    for auction_id in auction_ids:
        auction = service.auction(auction_id)
        for deposit in auction.deposits:
            bidder = deposit.bidder_id
            settled = out_of_deposit.get((auction_id, bidder), []) + out_of_deposit.get(
                (service.auction_order_id(auction_id, bidder), bidder), []
            )
            movements = [p.movement for p in settled]
            if deposit.status is DepositStatus.HELD or movements != [fates[deposit.status]]:
                bad.append(f"{auction_id}/{bidder}: {deposit.status}, settled {movements}")
        if auction.state == AuctionState.SOLD and auction.winner_id is not None:
            top = max(b.amount for b in auction.bids if b.bidder_id == auction.winner_id)
            higher = {b.bidder_id for b in auction.bids if b.amount > top} - {
                d.bidder_id for d in auction.deposits if d.status is DepositStatus.FORFEITED
            }
            order_id = service.auction_order_id(auction_id, auction.winner_id)
            paid = service.money(order_id).paid_in
            if auction.hammer != top or paid != top or higher:
                bad.append(f"{auction_id}: hammer {auction.hammer}, paid {paid}, top bid {top}")
    return Check(
        "auctions-settled",
        "a sold auction's order paid the highest valid bid; every deposit was released,"
        " applied or forfeited exactly once in the ledger",
        not bad,
        ", ".join(bad[:5]) or f"{len(auction_ids)} auctions",
    )


def _rebates_earned(world: SimulatedWorld, orders: list[Order]) -> Check:
    service, bad = world.service, []
    if service.rebates is None:
        return Check("rebates-earned", "no rebates granted", passed=True, detail="no rebates")
    paid_out: dict[str, int] = {}
    credit_postings: dict[str, int] = {}
    for posting in world.ledger.all():
        if posting.movement is Movement.REBATE_CREDIT:
            paid_out[posting.order_id] = paid_out.get(posting.order_id, 0) + posting.amount.minor
            credit_postings[posting.key] = credit_postings.get(posting.key, 0) + 1
        elif posting.movement is Movement.REBATE_CLAWBACK:
            paid_out[posting.order_id] = paid_out.get(posting.order_id, 0) - posting.amount.minor
    granted = 0
    for order in orders:
        rebates = service.rebates_of(order.id)
        if not rebates:
            if paid_out.get(order.id, 0):
                bad.append(f"{order.id}: {paid_out[order.id]} paid out with no rebate")
            continue
        granted += len(rebates)
        kept = _kept(world, order.id).minor
        allowed = sum(r.amount.minor * kept // r.base.minor for r in rebates)
        net = paid_out.get(order.id, 0)
        if net > allowed or net != sum(r.paid_out.minor for r in rebates):
            bad.append(f"{order.id}: paid out {net}, earned {allowed} on {kept} kept")
    bad += [f"{key} credited {n} times" for key, n in credit_postings.items() if n > 1]
    return Check(
        "rebates-earned",
        "no rebate paid on refunded money (credited - clawed back <= rate x kept), each"
        " credited at most once",
        not bad,
        ", ".join(bad[:5]) or f"{granted} rebates",
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
    _draws_verifiable,
    _group_buys_settled,
    _group_buy_deposits_settled,
    _auctions_settled,
    _rebates_earned,
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


def _draw_a_wrong_winner(world: SimulatedWorld) -> None:
    service, buyer = world.service, Actor.buyer("b-001")
    merchant = Actor.merchant(service.catalog.product(PRIZE_SKU).merchant_id)
    terms = DrawTerms(1, Money.of("2.00", "CNY"), world.clock.now() + _DAY)
    draw_round = service.open_round(merchant, PRIZE_SKU, terms)
    world.collective.setdefault("lucky_draw", []).append(draw_round.id)
    order = service.place_share_order(buyer, draw_round.id, 1)
    service.pay_shares(order.id, buyer)
    world.clock.advance(timedelta(hours=1))  # the next public number is out
    service.draw(draw_round.id, Actor.platform())
    draw_round = service.draw_round(draw_round.id)
    record = draw_round.record
    assert record is not None  # noqa: S101  # drawn just above
    draw_round.record = attrs.evolve(record, winning_number=record.recompute() + 1)
    service.rounds.save(draw_round, draw_round.version)  # type: ignore[union-attr]  # offered


def _keep_a_difference(world: SimulatedWorld) -> None:
    service = world.service
    for campaign_id in world.collective.get("group_buy", []):
        campaign = service.group_buy(campaign_id)
        for part in campaign.participations:
            order = service.orders.get(part.order_id)
            world.ledger.append(
                [
                    Posting(
                        "sim-break-group-buy",
                        order.id,
                        order.lines[0].line_id,
                        Account.buyer(order.buyer_id),
                        Account.merchant(order.merchant_id),
                        order.lines[0].unit_price * part.quantity,
                        Movement.CAPTURE,
                        world.clock.now(),
                    )
                ]
            )
            return


def _forfeit_a_refunded_group_buy_deposit(world: SimulatedWorld) -> None:
    """A deposit campaign cancelled by its merchant (deposits refunded), then one forfeited."""
    service, buyer = world.service, Actor.buyer("b-001")
    world.script.refund_fault = None  # the release must go through for this fault
    product = service.catalog.product(GROUP_BUY_SKU)
    merchant = Actor.merchant(product.merchant_id)
    now = world.clock.now()
    terms = GroupBuyTerms(
        list_price=product.unit_price,
        tiers=[PriceTier(1_000, product.unit_price)],
        starts_at=now,
        ends_at=now + _DAY,
        minimum=1_000,
        payment=GroupBuyPayment.DEPOSIT,
        deposit=Money.of("10.00", "CNY"),
    )
    campaign = service.create_group_buy(merchant, GROUP_BUY_SKU, terms)
    world.collective.setdefault("group_buy_deposit", []).append(campaign.id)
    order = service.place_group_buy_order(buyer, campaign.id, 1)
    service.pay(order.id, buyer, key="sim-break")
    service.cancel_group_buy(campaign.id, merchant, reason="sim-break")
    (joined,) = service.group_buy(campaign.id).participations
    world.ledger.append(  # the merchant keeps it as well, under the service's own key
        [
            Posting(
                f"{campaign.id}:gbdep:{order.id}:{joined.payment_ref}:forfeit",
                order.id,
                order.lines[0].line_id,
                Account.deposit(order.buyer_id),
                Account.merchant(order.merchant_id),
                joined.paid,
                Movement.FORFEIT,
                world.clock.now(),
            )
        ]
    )


def _forfeit_a_deposit_twice(world: SimulatedWorld) -> None:
    service = world.service
    for auction_id in world.collective.get("auction", []):
        auction = service.auction(auction_id)
        for deposit in auction.deposits:
            world.ledger.append(
                [
                    Posting(
                        "sim-break-deposit",
                        auction_id,
                        ORDER_LEVEL,
                        Account.deposit(deposit.bidder_id),
                        Account.merchant(auction.merchant_id),
                        deposit.amount,
                        Movement.FORFEIT,
                        world.clock.now(),
                    )
                ]
            )
            return


def _credit_a_rebate_twice(world: SimulatedWorld) -> None:
    for posting in world.ledger.all():
        if posting.movement is Movement.REBATE_CREDIT:
            world.ledger.append([attrs.evolve(posting, key="sim-break-rebate")])
            return


BREAKABLE: Final = {
    "stock-matches-orders": _sell_outside_an_order,
    "refunds-within-paid": _refund_too_much,
    "no-overdue-deadline": _leave_overdue,
    "teams-whole": _overfill_a_team,
    "draws-verifiable": _draw_a_wrong_winner,
    "group-buys-settled": _keep_a_difference,
    "group-buy-deposits-settled": _forfeit_a_refunded_group_buy_deposit,
    "auctions-settled": _forfeit_a_deposit_twice,
    "rebates-earned": _credit_a_rebate_twice,
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
