"""The simulation's event loop: journeys of buyers, merchants and carriers on a simulated clock.

Every random choice comes from the seeded :class:`random.Random` given to
:func:`run_simulation`; the domain never draws a random number itself. Steps are kept in a
queue ordered by simulated time, so journeys interleave, and a notification or a tracking
report scheduled late really arrives after later events of other orders.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import time as wall
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.aftersales import (
    AfterSalesItem,
    AfterSalesKind,
    AfterSalesReason,
    AfterSalesState,
)
from ecommerce_core.campaigns.group_buy import AWAITING_BALANCE, AWAITING_GROUP
from ecommerce_core.delivery import ShipmentPurpose, TrackingEvent
from ecommerce_core.errors import EcommerceCoreError, InvalidInput, PaymentNotCompleted
from ecommerce_core.orders import CartItem, Order
from ecommerce_core.payments.notifications import NotificationKind
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import GatewayStatus, RefundRequest
from ecommerce_core.simulation.collective import (
    AuctionJourneys,
    DepositGroupBuyJourneys,
    GroupBuyJourneys,
    LuckyDrawJourneys,
    TeamJourneys,
)
from ecommerce_core.simulation.world import (
    CARRIERS,
    FLASH_SALE_ID,
    RUSH_PURCHASE_ID,
    SimulatedWorld,
)

__all__ = [
    "FaultRates",
    "Journey",
    "Progress",
    "SimulationConfig",
    "SimulationStats",
    "Simulator",
]

Progress = Callable[[int, int], None]
"""Told ``(journeys started, journeys in total)`` as the run goes."""

_SKUS: Final = ("tea-01", "pot-01", "cup-01")
_SWEEP: Final = timedelta(hours=1)
_SETTLE_DAYS: Final = 60
_PURCHASES: Final = (
    "buy_now",
    "cart",
    "flash_sale",
    "rush_purchase",
    "team",
    "lucky_draw",
    "group_buy",
    "group_buy_deposit",
    "auction",
)
_WEIGHTS: Final = (5, 3, 1, 1, 1, 1, 1, 1, 1)
#: Purchases whose paid orders wait for their campaign (a team, a draw, a close) to ship.
_WAITING: Final = frozenset({"team", "lucky_draw", "group_buy", "group_buy_deposit"})
#: A deposit group buy's charges at the provider (their payment ids carry these).
_DEPOSIT_CHARGES: Final = (":gbdep:", ":gbbal:")
#: Request keys of a refund the library asks again itself (never faulted: see _refund_fault).
_ASKED_AGAIN: Final = (":retry-", ":again-")


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(attribute.name, value, "a rate is between 0 and 1")


@attrs.frozen
class FaultRates:
    """How often each fault is injected (probabilities between 0 and 1).

    Attributes:
        declined: A payment attempt the provider declines.
        pending: A payment attempt the provider leaves pending (a time-out); a callback settles
            it later.
        failed_after_pending: A pending payment whose callback reports failure.
        duplicate_notification: A provider callback delivered twice (at another time).
        late_notification: A callback delayed by hours (after other orders' events).
        abandon: A buyer who never pays (the payment deadline cancels the order).
        cancel: A buyer who cancels a paid order before it ships.
        lost_parcel: A parcel that never arrives (the merchant refunds in full).
        refused_cod: A cash-on-delivery parcel refused at the door.
        duplicate_tracking: A carrier's delivery report sent twice.
        out_of_order_tracking: A stale "shipped" report arriving after delivery.
        returns: A delivered order returned for a refund.
        confirm: A buyer who confirms receipt (the others are auto-confirmed).
        unpaid_winner: An auction winner who never pays (the deposit is forfeited).
        unclaimed_prize: A lucky-draw winner who never confirms an address (forfeit).
        unformed_team: A team leader who shares the team with nobody: it expires unformed
            and every member is refunded.
        unpaid_balance: A deposit group-buy buyer who never pays the balance (the deposit is
            forfeited or refunded, per the campaign's terms).
        refund_declined: A deposit group-buy refund the provider declines at once: an
            after-sales refund or a cancel's return (the library asks them again), or a deposit
            given back or a late charge refunded (swept later with
            ``reconcile(retry_failed=True)``).
        refund_pending: A deposit group-buy refund the provider answers later by callback
            (which fails at the ``failed_after_pending`` rate: then asked again).
        deposit_returns: A delivered deposit group-buy order returned for a refund (instead
            of ``returns``).

    """

    declined: float = attrs.field(default=0.06, validator=_rate)
    pending: float = attrs.field(default=0.08, validator=_rate)
    failed_after_pending: float = attrs.field(default=0.2, validator=_rate)
    duplicate_notification: float = attrs.field(default=0.3, validator=_rate)
    late_notification: float = attrs.field(default=0.2, validator=_rate)
    abandon: float = attrs.field(default=0.05, validator=_rate)
    cancel: float = attrs.field(default=0.04, validator=_rate)
    lost_parcel: float = attrs.field(default=0.02, validator=_rate)
    refused_cod: float = attrs.field(default=0.1, validator=_rate)
    duplicate_tracking: float = attrs.field(default=0.1, validator=_rate)
    out_of_order_tracking: float = attrs.field(default=0.05, validator=_rate)
    returns: float = attrs.field(default=0.06, validator=_rate)
    confirm: float = attrs.field(default=0.6, validator=_rate)
    unpaid_winner: float = attrs.field(default=0.25, validator=_rate)
    unclaimed_prize: float = attrs.field(default=0.15, validator=_rate)
    unpaid_balance: float = attrs.field(default=0.2, validator=_rate)
    refund_declined: float = attrs.field(default=0.2, validator=_rate)
    refund_pending: float = attrs.field(default=0.2, validator=_rate)
    deposit_returns: float = attrs.field(default=0.25, validator=_rate)
    unformed_team: float = attrs.field(default=0.15, validator=_rate)


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise InvalidInput(attribute.name, value, "must be a whole number of at least 1")


@attrs.frozen
class SimulationConfig:
    """What to simulate.

    Attributes:
        orders: How many buyer journeys to start (a cart across merchants places two orders).
        seed: The seed of the run's random numbers: the same seed, the same run.
        buyers: How many buyers shop.
        faults: How often each fault is injected.

    """

    orders: int = attrs.field(default=1000, validator=_positive)
    seed: int = 7
    buyers: int = attrs.field(default=40, validator=_positive)
    faults: FaultRates = attrs.field(factory=FaultRates)

    @property
    def stock(self) -> int:
        """Units of each product received before the run (enough that most journeys sell)."""
        return self.orders * 2


@attrs.frozen
class Journey:
    """One order's way through the run: who placed it, how, and how it pays.

    Attributes:
        order_id: The order.
        purchase: ``"buy_now"``, ``"cart"``, ``"flash_sale"``, ``"rush_purchase"``,
            ``"team"``, ``"lucky_draw"``, ``"group_buy"``, ``"group_buy_deposit"`` or
            ``"auction"`` (a winner's order).
        method: The payment method.

    """

    order_id: str
    purchase: str
    method: str


@attrs.define
class SimulationStats:
    """What happened during a run.

    Attributes:
        journeys: Journeys started.
        placed: Orders placed, per order id: how they were placed.
        refusals: Refused commands, per ``"step: ErrorName"``.
        faults: Injected faults, per name.
        returns: After-sales return requests, as ``(order id, request id)``.
        steps: Steps executed.
        expired: Deadlines fired by ``expire_due``.
        seconds: Wall time of the run.

    """

    journeys: int = 0
    placed: dict[str, Journey] = attrs.field(factory=dict)
    refusals: Counter[str] = attrs.field(factory=Counter)
    faults: Counter[str] = attrs.field(factory=Counter)
    returns: list[tuple[str, str]] = attrs.field(factory=list)
    steps: int = 0
    expired: int = 0
    seconds: float = 0.0


_Step = tuple[datetime, int, str, Callable[[], object]]


class Simulator:
    """Drives a :class:`SimulatedWorld` through ``config.orders`` journeys.

    Args:
        world: The wired services.
        config: What to simulate.
        rng: The run's only source of randomness.

    """

    def __init__(self, world: SimulatedWorld, config: SimulationConfig, rng: random.Random) -> None:
        self.world = world
        self.config = config
        self.rng = rng
        self.stats = SimulationStats()
        self._queue: list[_Step] = []
        self._seq = itertools.count()
        self._continued: set[str] = set()
        self._buyers = [Actor.buyer(f"b-{n:03d}") for n in range(1, config.buyers + 1)]
        faults = config.faults
        self._teams = TeamJourneys(
            world, world.clock.now(), self._chance, unformed=faults.unformed_team
        )
        self._draws = LuckyDrawJourneys(world, rng, self._chance, faults.unclaimed_prize)
        self._group_buys = GroupBuyJourneys(world, rng)
        self._deposits = DepositGroupBuyJourneys(
            world,
            rng,
            self._chance,
            unpaid_balance=faults.unpaid_balance,
            cancel=faults.cancel,
            pay_balance=lambda order_id: self._pay(order_id, 1, stage="balance:"),
            cancelled=lambda order_id: self._return_in_full(order_id, 1),
        )
        world.script.refund_fault = self._refund_fault
        self._auctions = AuctionJourneys(world, rng, self.schedule, self._auction_won)
        self._waiting: dict[
            str, TeamJourneys | LuckyDrawJourneys | GroupBuyJourneys | DepositGroupBuyJourneys
        ] = {
            "team": self._teams,
            "lucky_draw": self._draws,
            "group_buy": self._group_buys,
            "group_buy_deposit": self._deposits,
        }
        self._plain: set[str] = set()  # prizes: shares are no goods to lose or return

    # ----------------------------------------------------------------- the loop

    def run(self, progress: Progress | None = None) -> SimulationStats:
        """Run every journey, then let the clock run until every deadline has fired."""
        started = wall.perf_counter()
        clock = self.world.clock
        at = clock.now()
        total = self.config.orders
        for _ in range(total):
            at += timedelta(seconds=self.rng.expovariate(1 / 90))
            self._at(at, "arrive", self._arrive)
        last_sweep = clock.now()
        tick = max(1, total // 50)
        while self._queue:
            when, _, name, action = heapq.heappop(self._queue)
            while when - last_sweep >= _SWEEP:
                last_sweep += _SWEEP
                self._advance_to(last_sweep)
                self._sweep()
            self._advance_to(when)
            self.stats.steps += 1
            with self.world.unit_of_work():
                try:
                    action()
                except EcommerceCoreError as error:
                    self.stats.refusals[f"{name}: {type(error).__name__}"] += 1
                self._answer_refunds_later()
            if name == "arrive" and progress is not None and self.stats.journeys % tick == 0:
                progress(self.stats.journeys, total)
        for _ in range(_SETTLE_DAYS):
            clock.advance(timedelta(days=1))
            self._sweep()
        if progress is not None:
            progress(total, total)
        self.stats.seconds = wall.perf_counter() - started
        return self.stats

    def _advance_to(self, when: datetime) -> None:
        now = self.world.clock.now()
        if when > now:
            self.world.clock.advance(when - now)

    def _sweep(self) -> None:
        with self.world.unit_of_work():
            self.stats.expired += len(self.world.service.expire_due())
            self._answer_refunds_later()

    def _at(self, when: datetime, name: str, action: Callable[[], object]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), name, action))

    def schedule(self, at: datetime, name: str, action: Callable[[], object]) -> None:
        """Run ``action`` at simulated time ``at`` (the extension point for more sales modes).

        A refused command (an :class:`~ecommerce_core.errors.EcommerceCoreError`) is counted
        in :attr:`SimulationStats.refusals` under ``name``; anything else stops the run.
        """
        self._at(at, name, action)

    def _later(self, delay: timedelta, name: str, action: Callable[[], object]) -> None:
        self._at(self.world.clock.now() + delay, name, action)

    def _minutes(self, low: float, high: float) -> timedelta:
        return timedelta(minutes=self.rng.uniform(low, high))

    def _chance(self, fault: str, rate: float) -> bool:
        hit = self.rng.random() < rate
        if hit:
            self.stats.faults[fault] += 1
        return hit

    # ----------------------------------------------------------------- placing

    def _arrive(self) -> None:
        self.stats.journeys += 1
        rng, service = self.rng, self.world.service
        buyer = rng.choice(self._buyers)
        purchase = rng.choices(_PURCHASES, weights=_WEIGHTS)[0]
        method = str(
            rng.choices(
                (
                    PaymentMethod.ONLINE,
                    PaymentMethod.ESCROW,
                    PaymentMethod.COD,
                    PaymentMethod.CREDIT,
                ),
                weights=(4, 2, 2, 2),
            )[0]
        )
        orders: list[Order]
        if purchase == "buy_now":
            orders = [service.buy_now(buyer, rng.choice(_SKUS), rng.randint(1, 3), method)]
        elif purchase == "cart":
            skus = rng.sample(_SKUS, rng.randint(2, 3))
            orders = service.checkout(
                buyer, [CartItem(sku, rng.randint(1, 2)) for sku in skus], method
            )
        elif purchase == "team":
            method = str(PaymentMethod.ONLINE)
            orders = [self._teams.place(buyer)]
        elif purchase == "lucky_draw":
            method = str(PaymentMethod.ONLINE)
            orders = [self._draws.place(buyer)]
            self._plain.add(orders[0].id)
        elif purchase == "group_buy":
            method = str(PaymentMethod.ONLINE)
            orders = [self._group_buys.place(buyer)]
        elif purchase == "group_buy_deposit":
            method = str(PaymentMethod.ONLINE)
            orders = [self._deposits.place(buyer)]
        elif purchase == "auction":
            self._auctions.bid(buyer)
            return
        else:
            method = str(PaymentMethod.ONLINE)
            campaign, sku = (
                (FLASH_SALE_ID, "tea-01")
                if purchase == "flash_sale"
                else (RUSH_PURCHASE_ID, "cup-01")
            )
            orders = [service.buy_in_campaign(buyer, campaign, sku, 1)]
        for order in orders:
            self.stats.placed[order.id] = Journey(order.id, purchase, method)
            if method == PaymentMethod.COD:
                self._later(self._minutes(30, 600), "ship", functools.partial(self._ship, order.id))
            elif self._chance("abandoned payment", self.config.faults.abandon):
                continue
            elif method == PaymentMethod.CREDIT:
                self._later(
                    self._minutes(1, 10), "pay", functools.partial(self._pay_credit, order.id)
                )
            else:
                self._later(self._minutes(1, 10), "pay", functools.partial(self._pay, order.id, 1))

    def _auction_won(self, order_id: str) -> None:
        """An auction winner's order appeared: the winner pays it, or never does."""
        self.stats.placed[order_id] = Journey(order_id, "auction", str(PaymentMethod.ONLINE))
        if not self._chance("unpaid auction winner", self.config.faults.unpaid_winner):
            self._later(self._minutes(1, 60), "pay", functools.partial(self._pay, order_id, 1))

    # ----------------------------------------------------------------- paying

    def _buyer(self, order_id: str) -> Actor:
        return Actor.buyer(self.world.service.orders.get(order_id).buyer_id)

    def _pay(self, order_id: str, attempt: int, stage: str = "") -> None:
        """Pay an order (``stage`` ``"balance:"``: a deposit order's balance) with faults.

        A declined attempt is tried again (three at most), a pending one is settled by a
        callback later. Once paid, the order goes on (:meth:`_paid`); a balance is seen by
        its journey's next look at the order.
        """
        faults, script = self.config.faults, self.world.script
        if self._chance("declined payment", faults.declined):
            script.answer = GatewayStatus.DECLINED
        elif self._chance("pending payment", faults.pending):
            script.answer = GatewayStatus.PENDING
        buyer, key = self._buyer(order_id), f"{order_id}:{stage}{attempt}"
        try:
            if self.stats.placed[order_id].purchase == "team":
                self._teams.pay(order_id, buyer, key)
            else:
                self.world.service.pay(order_id, buyer, key=key)
        except PaymentNotCompleted as error:
            keys, script.pending[:] = list(script.pending), []
            if error.status == "pending":
                self._settle_later(order_id, attempt, keys, stage)
            elif attempt < 3:  # noqa: PLR2004  # the buyer tries three times at most
                self._later(
                    self._minutes(1, 5), "pay", lambda: self._pay(order_id, attempt + 1, stage)
                )
            return
        finally:
            script.answer = GatewayStatus.SUCCEEDED
        if not stage:
            self._paid(order_id)

    def _settle_later(self, order_id: str, attempt: int, keys: list[str], stage: str = "") -> None:
        faults = self.config.faults
        for key in keys:
            succeeded = not self._chance("failed after pending", faults.failed_after_pending)
            late = self._chance("late notification", faults.late_notification)
            delay = self._minutes(120, 600) if late else self._minutes(1, 20)

            def settle(key: str = key, succeeded: bool = succeeded) -> None:
                payload = self.world.gateway.settle_pending(key, succeeded=succeeded)
                self._notify(order_id, payload, attempt, stage)
                if self._chance("duplicate notification", faults.duplicate_notification):
                    self._later(
                        self._minutes(-0.5, 240),
                        "duplicate notification",
                        lambda: self._notify(order_id, payload, attempt, stage),
                    )

            self._later(delay, "provider settles", settle)

    def _notify(
        self, order_id: str, payload: dict[str, str], attempt: int, stage: str = ""
    ) -> None:
        outcome = self.world.service.handle_notification(payload)
        order = self.world.service.orders.get(order_id)
        deposit = self.stats.placed[order_id].purchase == "group_buy_deposit"
        if stage:  # a balance: its journey sees it paid; a failed one is tried again
            retry = order.state == AWAITING_BALANCE and payload["kind"] == NotificationKind.FAILED
        elif order.payment is not None or (deposit and order.state == AWAITING_GROUP):
            self._paid(order_id)
            return
        elif deposit:  # a deposit's failed charge leaves the order as it was: try again
            retry = order.state == "pending_payment" and payload["kind"] == NotificationKind.FAILED
        else:
            retry = outcome.outcome == "applied" and order.state == "pending_payment"
        if retry and attempt < 3:  # noqa: PLR2004  # three tries
            self._later(self._minutes(1, 5), "pay", lambda: self._pay(order_id, attempt + 1, stage))

    def _refund_fault(self, request: RefundRequest) -> GatewayStatus:
        """The provider's answer to a deposit group-buy refund: declined or pending, at times.

        Declined at once: an after-sales refund (``...:keyed-refund:...``, asked again by
        ``settle_refunds``) or a cancel's return (``...:return``); and, as ``deposit refund
        declined``, a deposit given back because its campaign failed, its buyer left or missed
        the balance, or a late charge's refund, for an order that joined its campaign: the
        library notes those on the campaign, and the simulation sweeps the order with
        ``reconcile(retry_failed=True)`` a few hours later, as a host's job would (a deposit
        that landed after its order timed out is not noted: a known gap, not injected).
        Pending: any of them (a failed callback is asked again). A request the library already
        asks again is never faulted, so every retry ends. Other orders' refunds succeed.
        """
        key = request.idempotency_key
        if not any(mark in request.payment_id for mark in _DEPOSIT_CHARGES) or any(
            mark in key for mark in _ASKED_AGAIN
        ):
            return GatewayStatus.SUCCEEDED
        faults = self.config.faults
        asked_again = ":keyed-refund:" in key or key.rpartition(":")[2].startswith("return")
        if asked_again and self._chance("refund declined", faults.refund_declined):
            return GatewayStatus.DECLINED
        if (
            not asked_again
            and self._joined(request.order_id)  # else not noted on the campaign: a known gap
            and self._chance("deposit refund declined", faults.refund_declined)
        ):
            order_id = request.order_id
            self._later(
                self._minutes(60, 360),
                "sweep declined deposit refunds",
                lambda: self.world.service.reconcile(order_id, retry_failed=True),
            )
            return GatewayStatus.DECLINED
        if self._chance("refund pending", faults.refund_pending):
            return GatewayStatus.PENDING
        return GatewayStatus.SUCCEEDED

    def _joined(self, order_id: str) -> bool:
        """Whether the deposit order joined its campaign (its refunds are noted there)."""
        service = self.world.service
        terms = service.orders.get(order_id).terms
        if terms is None or not terms.promotion_ids:
            return False
        campaign = service.group_buy(terms.promotion_ids[0])
        return any(p.order_id == order_id for p in campaign.participations)

    def _answer_refunds_later(self) -> None:
        """Schedule the callback of every refund the provider left pending in this step."""
        script, faults = self.world.script, self.config.faults
        if not script.pending_refunds:
            return
        keys, script.pending_refunds[:] = list(script.pending_refunds), []
        for key in keys:
            succeeded = not self._chance("refund failed after pending", faults.failed_after_pending)

            def settle(key: str = key, succeeded: bool = succeeded) -> None:
                payload = self.world.gateway.settle_pending(key, succeeded=succeeded)
                self.world.service.handle_notification(payload)

            self._later(self._minutes(30, 300), "provider settles refund", settle)

    def _return_in_full(self, order_id: str, tries: int) -> None:
        """A deposit order cancelled after its balance: ask again for what is not back yet."""
        service = self.world.service
        money = service.money(order_id)
        if money.refunded >= money.paid_in:
            return
        if tries > 1:
            service.reconcile(order_id, retry_failed=True)
        if tries < 12:  # noqa: PLR2004  # a day and a half of retries, then the checks judge
            self._later(
                timedelta(hours=3),
                "return in full",
                lambda: self._return_in_full(order_id, tries + 1),
            )

    def _pay_credit(self, order_id: str) -> None:
        service = self.world.service
        periods = min(service.payment_policy.credit_fee_rates)
        service.pay_with_credit(order_id, self._buyer(order_id), periods=periods, key="draw")
        self._later(timedelta(days=20), "repay", lambda: self._repay(order_id))
        self._paid(order_id)

    def _repay(self, order_id: str) -> None:
        self.world.service.repay(order_id, self._buyer(order_id), key="first")

    def _paid(self, order_id: str) -> None:
        if order_id in self._continued:
            return
        self._continued.add(order_id)
        purchase = self.stats.placed[order_id].purchase
        if purchase in _WAITING:  # no cancelling while a team forms, a round or campaign runs
            self._later(self._minutes(30, 120), "ship", lambda: self._ship_team(order_id))
            return
        if purchase != "auction" and self._chance(
            "cancelled after payment", self.config.faults.cancel
        ):
            self._later(
                self._minutes(5, 60),
                "cancel",
                lambda: self.world.service.cancel(
                    order_id, self._buyer(order_id), "changed my mind"
                ),
            )
            return
        self._later(self._minutes(30, 1440), "ship", lambda: self._ship(order_id))

    def _ship_team(self, order_id: str) -> None:
        journeys = self._waiting[self.stats.placed[order_id].purchase]
        wait = journeys.when_shippable(order_id, lambda: self._ship(order_id))
        if wait is not None:
            self._later(wait, "ship", lambda: self._ship_team(order_id))

    # ----------------------------------------------------------------- delivering

    def _ship(self, order_id: str) -> None:
        service, faults = self.world.service, self.config.faults
        order = service.orders.get(order_id)
        carrier = self.rng.choice(CARRIERS)
        courier = Actor.carrier(carrier)
        if order.payment_method == PaymentMethod.COD:
            service.ship(
                order_id,
                Actor.merchant(order.merchant_id),
                carrier=carrier,
                tracking_number=f"{carrier}-{order_id}",
            )
            if self._chance("refused COD", faults.refused_cod):
                self._later(
                    timedelta(days=self.rng.uniform(1, 3)),
                    "refuse COD",
                    lambda: self._refuse_cod(order_id, courier),
                )
            else:
                self._later(
                    timedelta(days=self.rng.uniform(1, 3)),
                    "collect COD",
                    lambda: self._collect(order_id, courier),
                )
            return
        self.world.fulfilment.ship(
            order_id,
            Actor.merchant(order.merchant_id),
            carrier=carrier,
            tracking_number=f"{carrier}-{order_id}",
        )
        self._send_parcel(order_id, carrier, f"{carrier}-{order_id}", first=True)

    def _send_parcel(self, order_id: str, carrier: str, tracking: str, *, first: bool) -> None:
        """Track a parcel: handed over, in transit, then delivered, or lost and reshipped."""
        faults = self.config.faults
        self._track(carrier, tracking, "handed_to_carrier", self._minutes(10, 120))
        self._track(carrier, tracking, "in_transit", timedelta(hours=self.rng.uniform(3, 12)))
        arrives = timedelta(days=self.rng.uniform(1, 3))
        if (
            first
            and order_id not in self._plain
            and self._chance("lost parcel", faults.lost_parcel)
        ):
            self._track(carrier, tracking, "lost", arrives)
            self._later(
                arrives + timedelta(days=1),
                "reship lost parcel",
                lambda: self._reship(order_id, carrier, tracking),
            )
            return
        self._track(
            carrier, tracking, "delivered", arrives, then=lambda: self._after_delivery(order_id)
        )
        if self._chance("duplicate tracking event", faults.duplicate_tracking):
            self._track(
                carrier, tracking, "delivered", arrives + self._minutes(1, 120), occurred=arrives
            )
        if self._chance("out-of-order tracking event", faults.out_of_order_tracking):
            self._track(
                carrier,
                tracking,
                "in_transit",
                arrives + self._minutes(1, 120),
                occurred=arrives - timedelta(hours=1),
                event_id=f"{tracking}:late-in-transit",
            )

    def _track(
        self,
        carrier: str,
        tracking: str,
        status: str,
        delay: timedelta,
        *,
        occurred: timedelta | None = None,
        event_id: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        shipped = self.world.clock.now()
        event = TrackingEvent(
            event_id or f"{tracking}:{status}",
            carrier,
            tracking,
            status,
            shipped + (delay if occurred is None else occurred),
        )

        def report() -> None:
            self.world.fulfilment.record_tracking(event)
            if then is not None:
                then()

        self._later(delay, f"tracking: {status}", report)

    def _reship(self, order_id: str, carrier: str, lost_tracking: str) -> None:
        fulfilment = self.world.fulfilment
        order = self.world.service.orders.get(order_id)
        lost = fulfilment.shipments.by_tracking_number(carrier, lost_tracking)
        tracking = f"{carrier}-{order_id}-R"
        fulfilment.ship(
            order_id,
            Actor.merchant(order.merchant_id),
            carrier=carrier,
            tracking_number=tracking,
            purpose=ShipmentPurpose.RESHIPMENT,
            reference=lost.id,
        )
        self._send_parcel(order_id, carrier, tracking, first=False)

    def _refuse_cod(self, order_id: str, courier: Actor) -> None:
        self.world.service.refuse_cod(order_id, courier, reason="refused at the door")
        self._later(
            timedelta(days=3),
            "COD parcel back",
            lambda: self.world.service.cod_returned(order_id, courier),
        )

    def _collect(self, order_id: str, courier: Actor) -> None:
        service = self.world.service
        total = service.orders.get(order_id).total
        service.collect_cod(order_id, courier, amount=total, key="door")
        self._later(timedelta(days=2), "remit COD", lambda: service.remit_cod(order_id, courier))
        self._after_delivery(order_id, parcel=False)

    def _after_delivery(self, order_id: str, *, parcel: bool = True) -> None:
        faults = self.config.faults
        rate = (
            faults.deposit_returns
            if self.stats.placed[order_id].purchase == "group_buy_deposit"
            else faults.returns
        )
        if order_id not in self._plain and self._chance("return", rate):
            self._later(
                timedelta(days=self.rng.uniform(1, 5)),
                "return requested",
                functools.partial(self._return, order_id)
                if parcel
                else functools.partial(self._refund, order_id, "return", everything=False),
            )
        if self.rng.random() < faults.confirm:
            self._later(
                timedelta(days=self.rng.uniform(0.5, 4)),
                "confirm receipt",
                lambda: self.world.service.confirm_receipt(order_id, self._buyer(order_id)),
            )

    def _return(self, order_id: str) -> None:
        """A return and refund of one unit through the after-sales service (七天无理由)."""
        after_sales = self.world.after_sales
        order = self.world.service.orders.get(order_id)
        buyer, merchant = Actor.buyer(order.buyer_id), Actor.merchant(order.merchant_id)
        line = self.rng.choice(order.lines)
        request = after_sales.request(
            order_id,
            buyer,
            kind=AfterSalesKind.RETURN_AND_REFUND,
            reason=AfterSalesReason.NO_REASON,
            items=[AfterSalesItem(line.line_id, 1)],
        )
        rid = request.request_id
        self.stats.returns.append((order_id, rid))
        day = timedelta(days=1)
        self._later(
            day, "after-sales: approve", lambda: after_sales.approve(order_id, rid, merchant)
        )
        carrier = self.rng.choice(CARRIERS)
        self._later(
            2 * day,
            "after-sales: ship back",
            lambda: after_sales.ship_back(
                order_id, rid, buyer, carrier=carrier, tracking_number=f"RT-{rid}"
            ),
        )
        self._later(
            4 * day,
            "after-sales: receive return",
            lambda: after_sales.receive_return(order_id, rid, merchant),
        )
        self._later(
            4.5 * day,
            "after-sales: accept return",
            lambda: after_sales.accept_return(order_id, rid, merchant, restock=False),
        )
        self._later(
            5 * day,
            "after-sales: settle refunds",
            lambda: self._settle_refunds(order_id, rid, 1),
        )

    def _settle_refunds(self, order_id: str, request_id: str, tries: int) -> None:
        """Ask again for an approved refund the provider declined or has not finished."""
        after_sales = self.world.after_sales
        if after_sales.record(order_id).request(request_id).state != (
            AfterSalesState.REFUND_APPROVED
        ):
            return
        after_sales.settle_refunds(order_id)
        if tries < 12:  # noqa: PLR2004  # three days of retries, then the checks judge
            self._later(
                timedelta(hours=6),
                "after-sales: settle refunds",
                lambda: self._settle_refunds(order_id, request_id, tries + 1),
            )

    def _refund(self, order_id: str, key: str, *, everything: bool) -> None:
        service = self.world.service
        order = service.orders.get(order_id)
        refundable = service.money(order_id).refundable
        amount = refundable if everything else order.lines[0].unit_price
        service.refund(
            order_id,
            Actor.merchant(order.merchant_id),
            key=key,
            amount=min(amount, refundable),
            reason=key,
        )
