"""The collective sales modes' journeys in the simulation, one class per mode.

Each mode places its orders through :class:`~ecommerce_core.services.CampaignService` and
hands them back to the :class:`~ecommerce_core.simulation.engine.Simulator`, which pays,
ships and delivers them like any other order; a mode only adds what is its own (a team to
join, a round to buy shares in, a campaign to join, an auction to bid in; an order that may
ship only once its team formed, its round was drawn or its campaign closed) and the
invariants it must keep (in :mod:`ecommerce_core.simulation.checks`). Campaigns are opened
on demand, when a buyer arrives and none takes them; their ids are recorded in
:attr:`SimulatedWorld.collective <ecommerce_core.simulation.world.SimulatedWorld.collective>`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

from ecommerce_core.actors import Actor
from ecommerce_core.auctions import Auction, AuctionState, AuctionTerms, DepositStatus, SecondChance
from ecommerce_core.campaigns.group_buy import (
    AWAITING_BALANCE,
    AWAITING_GROUP,
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GroupBuyPayment,
    GroupBuyState,
    GroupBuyTerms,
    ParticipationStatus,
    PriceTier,
    UnpaidBalance,
)
from ecommerce_core.campaigns.lucky_draw import (
    AWAITING_ADDRESS,
    AWAITING_DRAW,
    DrawRoundState,
    DrawTerms,
    ForfeitPolicy,
)
from ecommerce_core.campaigns.team import AWAITING_TEAM, TEAM_ORDER_PROCESS, TeamState, TeamTerms
from ecommerce_core.errors import NotFound
from ecommerce_core.money import Money
from ecommerce_core.orders import Order

if TYPE_CHECKING:
    from ecommerce_core.simulation.world import SimulatedWorld

__all__ = [
    "AUCTION_SKU",
    "GROUP_BUY_SKU",
    "PRIZE_SKU",
    "TEAM_CAMPAIGN_ID",
    "TEAM_SIZE",
    "TEAM_SKU",
    "AuctionJourneys",
    "Chance",
    "DepositGroupBuyJourneys",
    "GroupBuyJourneys",
    "LuckyDrawJourneys",
    "Schedule",
    "TeamJourneys",
    "collective_outcomes",
    "deposit_order_ending",
]

TEAM_CAMPAIGN_ID: Final = "sim-team"
"""The simulation's team-purchase campaign (拼团): pots, teams of :data:`TEAM_SIZE`."""
TEAM_SIZE: Final = 3
"""Members a simulated team needs, its leader included."""
TEAM_SKU: Final = "pot-01"
"""What the simulated teams buy."""

PRIZE_SKU: Final = "cup-01"
"""The lucky-draw prize (one unit reserved per round)."""
GROUP_BUY_SKU: Final = "tea-01"
"""What the group buys sell."""
AUCTION_SKU: Final = "pot-01"
"""The auctions' lot (one unit each)."""

Chance = Callable[[str, float], bool]
"""Whether an injected fault (named) happens at a rate; counted when it does."""
Schedule = Callable[[datetime, str, Callable[[], object]], None]
"""Run a named action at a simulated time (:meth:`Simulator.schedule`)."""

_CAMPAIGN_DAYS: Final = 30
_TEAM_VALIDITY: Final = timedelta(hours=6)


class TeamJourneys:
    """Buyers who join a forming team, or lead a new one when none takes them.

    Args:
        world: The wired services (its ``service`` must offer team purchase).
        campaign_start: When the campaign opens (it runs for 30 simulated days).
        chance: The run's fault dice: ``chance(fault, rate)`` is ``True`` at ``rate`` and
            counts the fault (``None``: no faults).
        unformed: How often a leader's team is one nobody else joins (the leader shares it
            with no one): it expires unformed and its leader is refunded.

    """

    def __init__(
        self,
        world: SimulatedWorld,
        campaign_start: datetime,
        chance: Callable[[str, float], bool] | None = None,
        unformed: float = 0.0,
    ) -> None:
        self.world = world
        self._chance = chance
        self._unformed = unformed
        self.terms = TeamTerms(
            TEAM_CAMPAIGN_ID,
            size=TEAM_SIZE,
            ends_at=campaign_start + timedelta(days=_CAMPAIGN_DAYS),
            validity=_TEAM_VALIDITY,
        )
        self._forming: list[str] = []

    def place(self, buyer: Actor) -> Order:
        """Place a team order: a place in the oldest forming team that takes ``buyer``.

        When none does, a leader's order, which :meth:`pay` pays by opening its team.
        """
        service = self.world.service
        for team_id in list(self._forming):
            team = service.team(team_id)
            if team.state != TeamState.FORMING or team.places_left == 0:
                if team.state != TeamState.FORMING:
                    self._forming.remove(team_id)
                continue
            if any(m.buyer_id == buyer.id for m in team.members):
                continue
            return service.place_team_order(buyer, TEAM_SKU, team_id=team_id)
        return service.place_team_order(buyer, TEAM_SKU)

    def pay(self, order_id: str, buyer: Actor, key: str) -> None:
        """Pay a team order: a leader's opens its team, a joiner's may complete one."""
        service = self.world.service
        if service.teams is not None and service.teams.team_of(order_id) is None:
            team = service.lead_team(order_id, buyer, self.terms, key=key)
            if self._chance is None or not self._chance("unformed team", self._unformed):
                self._forming.append(team.id)  # else nobody is sent to it: it expires
        else:
            service.pay_team_member(order_id, buyer, key=key)

    def when_shippable(self, order_id: str, ship: Callable[[], None]) -> timedelta | None:
        """Ship now if the order's team formed; else how long to wait before asking again.

        Returns:
            ``None`` once acted on (shipped, or the order is final: its team failed).

        """
        order = self.world.service.orders.get(order_id)
        if order.state == AWAITING_TEAM:
            return timedelta(hours=1)
        if not order.is_final:
            ship()
        return None


_HOUR: Final = timedelta(hours=1)
_PLATFORM: Final = Actor.platform()


def _cny(amount: str) -> Money:
    return Money.of(amount, "CNY")


class LuckyDrawJourneys:
    """Buyers who buy shares of the round on sale; winners who confirm their address, or not.

    A round of 5, 10 or 20 shares of 2.00 CNY for one cup is opened when none is on sale; it
    sells for 6 hours, is drawn on the world's public numbers once sold out, and its winner
    has 2 days to confirm an address.

    Args:
        world: The wired services (its ``service`` must offer lucky draws).
        rng: The run's randomness.
        chance: Draws an injected fault (``unclaimed prize``).
        unclaimed: How often a winner never confirms an address.

    """

    def __init__(
        self, world: SimulatedWorld, rng: random.Random, chance: Chance, unclaimed: float
    ) -> None:
        self.world, self.rng, self.chance, self.unclaimed = world, rng, chance, unclaimed
        self._selling: str | None = None
        self._decided: set[str] = set()

    def place(self, buyer: Actor) -> Order:
        """Place a share order for 1-3 shares of the round on sale (a new one if none is)."""
        service = self.world.service
        now = self.world.clock.now()
        current = None if self._selling is None else service.draw_round(self._selling)
        if (
            current is None
            or current.state != DrawRoundState.SELLING
            or current.remaining == 0
            or current.terms.sell_by <= now
        ):
            merchant = Actor.merchant(service.catalog.product(PRIZE_SKU).merchant_id)
            terms = DrawTerms(
                share_count=self.rng.choice((5, 10, 20)),
                share_price=_cny("2.00"),
                sell_by=now + timedelta(hours=6),
                address_window=timedelta(days=2),
                on_forfeit=self.rng.choice(tuple(ForfeitPolicy)),
            )
            current = service.open_round(merchant, PRIZE_SKU, terms)
            self._selling = current.id
            self.world.collective.setdefault("lucky_draw", []).append(current.id)
        quantity = min(self.rng.randint(1, 3), current.remaining)
        return service.place_share_order(buyer, current.id, quantity)

    def when_shippable(self, order_id: str, ship: Callable[[], None]) -> timedelta | None:
        """Wait for the draw; a winner confirms an address (or never does) and the prize ships.

        Returns:
            How long to wait before asking again, or ``None`` once acted on.

        """
        service = self.world.service
        order = service.orders.get(order_id)
        if order.state == AWAITING_DRAW:
            return _HOUR
        if order.state == AWAITING_ADDRESS:
            if order_id in self._decided:
                return None
            self._decided.add(order_id)
            if self.chance("unclaimed prize", self.unclaimed):
                return None  # the round's deadline forfeits the prize
            buyer = Actor.buyer(order.buyer_id)
            service.confirm_prize_address(order_id, buyer, address=f"{buyer.id}'s door")
            ship()
        return None


class _RunningCampaign(Protocol):
    """What :func:`_place_in_running` needs of a group-buy journey class."""

    world: SimulatedWorld
    rng: random.Random
    _running: str | None

    @property
    def mode(self) -> str:
        """The world's ``collective`` key its campaigns are listed under."""

    @property
    def margin(self) -> timedelta:
        """A campaign closing sooner than this takes no more orders."""

    def terms(self, list_price: Money, now: datetime, opened: int) -> GroupBuyTerms: ...


def _place_in_running(journeys: _RunningCampaign, buyer: Actor) -> Order:
    """Place 1-3 units in the journeys' running campaign; open one if none runs long enough.

    A campaign closing within ``journeys.margin`` takes no more orders: the next opens with
    ``journeys.terms`` (told how many the mode opened before) and is listed in the world's
    ``collective`` under ``journeys.mode``.
    """
    service = journeys.world.service
    now = journeys.world.clock.now()
    running = journeys._running  # noqa: SLF001  # the journey class's own state, shared here
    current = None if running is None else service.group_buy(running)
    if (
        current is None
        or current.state != GroupBuyState.RUNNING
        or current.terms.ends_at <= now + journeys.margin
    ):
        opened = journeys.world.collective.setdefault(journeys.mode, [])
        product = service.catalog.product(GROUP_BUY_SKU)
        terms = journeys.terms(product.unit_price, now, len(opened))
        current = service.create_group_buy(
            Actor.merchant(product.merchant_id), GROUP_BUY_SKU, terms
        )
        journeys._running = current.id  # noqa: SLF001  # as above
        opened.append(current.id)
    return service.place_group_buy_order(buyer, current.id, journeys.rng.randint(1, 3))


class GroupBuyJourneys:
    """Buyers who join the running group buy (a new one when none runs).

    A campaign sells tea for 6 hours at tiers of 10 units (34.00) and 25 units (30.00) under a
    list price of 38.00; its minimum to succeed is drawn between 8 and 30 units, so some
    succeed and some fail.

    Args:
        world: The wired services (its ``service`` must offer group buying).
        rng: The run's randomness.

    """

    def __init__(self, world: SimulatedWorld, rng: random.Random) -> None:
        self.world, self.rng = world, rng
        self._running: str | None = None

    mode: Final = "group_buy"
    margin: Final = timedelta(minutes=30)

    def place(self, buyer: Actor) -> Order:
        """Place an order for 1-3 units in the running campaign."""
        return _place_in_running(self, buyer)

    def terms(self, list_price: Money, now: datetime, opened: int) -> GroupBuyTerms:  # noqa: ARG002  # the protocol's signature; every campaign alike
        """A new campaign's terms: 6 hours, a minimum of 8 to 30 units."""
        return GroupBuyTerms(
            list_price=list_price,
            tiers=[PriceTier(10, _cny("34.00")), PriceTier(25, _cny("30.00"))],
            starts_at=now,
            ends_at=now + timedelta(hours=6),
            minimum=self.rng.randint(8, 30),
        )

    def when_shippable(self, order_id: str, ship: Callable[[], None]) -> timedelta | None:
        """Ship once the campaign succeeded; wait while it runs; nothing once it failed."""
        order = self.world.service.orders.get(order_id)
        if order.state == AWAITING_GROUP:
            return _HOUR
        if not order.is_final:
            ship()
        return None


class DepositGroupBuyJourneys:
    """Buyers who join the running deposit group buy (订金团): a deposit now, the balance later.

    A campaign sells tea for 3 hours at the tiers of :class:`GroupBuyJourneys` with a deposit
    of 10.00 a unit; its minimum is drawn between 6 and 24 units, so some succeed and some
    fail. After a successful close each buyer has 24 hours to pay the balance, or never does
    (the ``unpaid balance`` fault): the deposit is then forfeited to the merchant (定金, every
    other campaign) or refunded (订金), per the campaign's terms. A buyer whose balance is in
    may still cancel before shipment (``cancelled after balance``: both charges go back), and
    one waiting for the close may leave the campaign (``withdrew from a deposit group buy``:
    the deposit goes back).

    Args:
        world: The wired services (its ``service`` must offer group buying).
        rng: The run's randomness.
        chance: Draws an injected fault.
        unpaid_balance: How often a buyer never pays the balance.
        cancel: How often a buyer leaves a running campaign, and how often one whose balance
            is in cancels before shipment.
        pay_balance: Pays an order's balance through the provider, with the payment faults
            (the simulator's; retries and callbacks included).
        cancelled: Told the id of each order cancelled after its balance (to see its money
            back in full: a declined return is asked again).

    """

    def __init__(
        self,
        world: SimulatedWorld,
        rng: random.Random,
        chance: Chance,
        *,
        unpaid_balance: float,
        cancel: float,
        pay_balance: Callable[[str], None],
        cancelled: Callable[[str], None],
    ) -> None:
        self.world, self.rng, self.chance = world, rng, chance
        self.unpaid_balance, self.cancel = unpaid_balance, cancel
        self.pay_balance, self.cancelled = pay_balance, cancelled
        self._running: str | None = None
        self._looked: set[str] = set()
        self._decided: set[str] = set()

    @staticmethod
    def _campaign_of(order: Order) -> str:
        assert order.terms is not None  # noqa: S101  # a group-buy order carries its campaign
        return order.terms.promotion_ids[0]

    mode: Final = "group_buy_deposit"
    margin: Final = timedelta(minutes=20)

    def place(self, buyer: Actor) -> Order:
        """Place an order for 1-3 units in the running deposit campaign (a new one if none)."""
        return _place_in_running(self, buyer)

    def terms(self, list_price: Money, now: datetime, opened: int) -> GroupBuyTerms:
        """A new campaign's terms: 3 hours, a minimum of 6 to 24 units, a deposit of 10.00."""
        return GroupBuyTerms(
            list_price=list_price,
            tiers=[PriceTier(10, _cny("34.00")), PriceTier(25, _cny("30.00"))],
            starts_at=now,
            ends_at=now + timedelta(hours=3),
            minimum=self.rng.randint(6, 24),
            payment=GroupBuyPayment.DEPOSIT,
            deposit=_cny("10.00"),
            balance_window=timedelta(hours=24),
            unpaid_balance=(UnpaidBalance.FORFEIT, UnpaidBalance.REFUND)[opened % 2],
        )

    def when_shippable(self, order_id: str, ship: Callable[[], None]) -> timedelta | None:
        """Wait for the close; pay the balance (or never); ship once it is in.

        Returns:
            How long to wait before asking again, or ``None`` once acted on (shipped,
            cancelled, left to the balance deadline, or final).

        """
        service = self.world.service
        order = service.orders.get(order_id)
        if order.state == AWAITING_GROUP and order_id not in self._looked:
            self._looked.add(order_id)
            campaign = service.group_buy(self._campaign_of(order))
            if campaign.terms.ends_at > self.world.clock.now() and self.chance(
                "withdrew from a deposit group buy", self.cancel
            ):
                service.cancel(order_id, Actor.buyer(order.buyer_id), "changed my mind")
                return None  # its deposit goes back
        if order.state == AWAITING_BALANCE and order_id not in self._decided:
            self._decided.add(order_id)
            if self.chance("unpaid balance", self.unpaid_balance):
                return None  # the balance deadline settles the deposit
            self.pay_balance(order_id)
            order = service.orders.get(order_id)
        if order.state in (AWAITING_GROUP, AWAITING_BALANCE):
            return _HOUR  # the close, or a balance attempt in flight (pending, or retried)
        if not order.is_final:
            if self.chance("cancelled after balance", self.cancel):
                service.cancel(order_id, Actor.buyer(order.buyer_id), "changed my mind")
                self.cancelled(order_id)
            else:
                ship()
        return None


class AuctionJourneys:
    """Bidders who hold a deposit and bid in the running auction (a new one when none runs).

    An auction of one teapot runs for 2 hours from 100.00 CNY by 10.00 with a 20.00 deposit;
    half have a hidden reserve (some not met: no sale), half offer the lot to the runner-up
    when the winner does not pay.

    Args:
        world: The wired services (its ``service`` must offer auctions).
        rng: The run's randomness.
        schedule: Schedules the checks for the auction's end.
        winner: Told the order id of each winner's order as it appears.

    """

    def __init__(
        self,
        world: SimulatedWorld,
        rng: random.Random,
        schedule: Schedule,
        winner: Callable[[str], None],
    ) -> None:
        self.world, self.rng, self.schedule, self.winner = world, rng, schedule, winner
        self._running: str | None = None
        self._seen: set[str] = set()

    def bid(self, bidder: Actor) -> None:
        """Hold a deposit if not yet held, then bid 0-3 increments above the least bid."""
        service = self.world.service
        now = self.world.clock.now()
        auction = None if self._running is None else service.auction(self._running)
        if auction is None or auction.state != AuctionState.RUNNING or auction.ends_at <= now:
            auction = self._create(now)
        leader = auction.leader
        if leader is not None and leader.bidder_id == bidder.id:
            return  # the leader waits to be outbid
        if auction.deposit_of(bidder.id) is None:
            auction = service.hold_deposit(auction.id, bidder)
        step = auction.terms.increment * self.rng.randint(0, 3)
        service.bid(auction.id, bidder, auction.minimum_bid() + step)

    def _create(self, now: datetime) -> Auction:
        service = self.world.service
        start, increment = _cny("100.00"), _cny("10.00")
        reserve = None if self.rng.random() < 0.5 else start + increment * self.rng.randint(2, 9)  # noqa: PLR2004  # half the lots
        terms = AuctionTerms(
            start_price=start,
            increment=increment,
            deposit=_cny("20.00"),
            starts_at=now,
            ends_at=now + timedelta(hours=2),
            reserve=reserve,
            second_chance=self.rng.choice(tuple(SecondChance)),
        )
        merchant = Actor.merchant(service.catalog.product(AUCTION_SKU).merchant_id)
        auction = service.create_auction(merchant, AUCTION_SKU, terms)
        self._running = auction.id
        self.world.collective.setdefault("auction", []).append(auction.id)
        self.schedule(
            terms.ends_at + timedelta(minutes=5),
            "auction: settle",
            lambda: self._settle(auction.id),
        )
        return auction

    def _settle(self, auction_id: str) -> None:
        """Hand each winner's order to the simulator as it appears, until the auction ends."""
        service = self.world.service
        auction = service.auction(auction_id)
        if auction.winner_id is not None:
            order_id = service.auction_order_id(auction_id, auction.winner_id)
            if order_id not in self._seen:
                try:
                    service.orders.get(order_id)
                except NotFound:
                    pass
                else:
                    self._seen.add(order_id)
                    self.winner(order_id)
        if not auction.is_final:
            at = self.world.clock.now() + _HOUR
            self.schedule(at, "auction: settle", lambda: self._settle(auction_id))


def collective_outcomes(world: SimulatedWorld, orders: list[Order]) -> dict[str, Counter[str]]:
    """What happened to each collective mode's campaigns: final states, counted per mode.

    Keys: ``team`` (formed, failed ...), ``lucky_draw`` (fulfilled, forfeited, unsold, and
    ``drawn``: rounds with a winner), ``group_buy`` (succeeded, failed), ``group_buy_deposit``
    (succeeded, failed, and ``unpaid balance: forfeit`` / ``refund``: campaigns per deposit
    policy), ``auction`` (sold,
    unsold, unpaid, and ``winner defaulted``: deposits forfeited) and ``rebate`` (pending,
    credited, void, clawed_back ...). A mode the run never used is absent.
    """
    service = world.service
    out: dict[str, Counter[str]] = {}
    teams = service.teams
    if teams is not None:
        team_ids = {
            team_id
            for o in orders
            if o.process.name == TEAM_ORDER_PROCESS.name
            and (team_id := teams.team_of(o.id)) is not None
        }
        if team_ids:
            out["team"] = Counter(teams.get(t).state for t in team_ids)
    rounds = [service.draw_round(r) for r in world.collective.get("lucky_draw", [])]
    if rounds:
        out["lucky_draw"] = Counter(r.state for r in rounds)
        out["lucky_draw"]["drawn"] = sum(r.record is not None for r in rounds)
    campaigns = world.collective.get("group_buy", [])
    if campaigns:
        out["group_buy"] = Counter(service.group_buy(c).state for c in campaigns)
    deposit_campaigns = [
        service.group_buy(c) for c in world.collective.get("group_buy_deposit", [])
    ]
    if deposit_campaigns:
        out["group_buy_deposit"] = Counter(c.state for c in deposit_campaigns)
        for campaign in deposit_campaigns:
            policy = campaign.terms.unpaid_balance
            out["group_buy_deposit"][f"unpaid balance: {policy}"] += 1
    auctions = [service.auction(a) for a in world.collective.get("auction", [])]
    if auctions:
        out["auction"] = Counter(a.state for a in auctions)
        out["auction"]["winner defaulted"] = sum(
            d.status is DepositStatus.FORFEITED for a in auctions for d in a.deposits
        )
    if service.rebates is not None:
        rebates = Counter(r.state for o in orders for r in service.rebates_of(o.id))
        if rebates:
            out["rebate"] = rebates
    return out


def deposit_order_ending(world: SimulatedWorld, order: Order) -> str | None:
    """How a deposit group-buy order ended, in words (``None`` for any other order).

    One of ``deposit never paid``, ``campaign failed: deposit refunded``, ``withdrew: deposit
    refunded``, ``balance missed: deposit forfeited`` / ``refunded`` (per the campaign's
    terms), ``balance paid`` (then shipped or cancelled: the order's state says) or ``balance
    paid, then a return`` (an after-sales return refunded through
    :meth:`CampaignService.refund <ecommerce_core.services.CampaignService.refund>`).
    """
    if order.process.name != GROUP_BUY_DEPOSIT_ORDER_PROCESS.name or order.terms is None:
        return None
    campaign = world.service.group_buy(order.terms.promotion_ids[0])
    joined = next((p for p in campaign.participations if p.order_id == order.id), None)
    if joined is None:
        ending = "deposit never paid"
    elif joined.status is ParticipationStatus.WITHDRAWN:
        ending = "withdrew: deposit refunded"
    elif campaign.state == GroupBuyState.FAILED:
        ending = "campaign failed: deposit refunded"
    elif order.payment is not None:
        returned = any(order_id == order.id for order_id, _ in world.returns)
        ending = "balance paid, then a return" if returned else "balance paid"
    else:
        ending = f"balance missed: deposit {_MISSED[campaign.terms.unpaid_balance]}"
    return ending


_MISSED: Final = {UnpaidBalance.FORFEIT: "forfeited", UnpaidBalance.REFUND: "refunded"}
