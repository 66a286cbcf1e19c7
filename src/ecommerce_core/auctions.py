"""Auction (竞拍): English auction with a deposit, anti-sniping, a hidden reserve and a buyout.

An :class:`Auction` sells one lot. Its process::

    running 竞拍中 ─close (reserve met) / bid (buyout)→ awaiting_payment 待付款 ─pay→ sold 成交
       └─close (no bid, or reserve not met)→ unsold 流拍        └─expire_payment→ unpaid 违约
                                                                  (or awaiting_runner_up, by policy)

- Bidding needs a deposit (保证金) held first (:meth:`Auction.hold_deposit`, recorded once the
  payment port has held it). The aggregate tracks every deposit's fate: held, then exactly one
  of released, forfeited or applied to the price.
- The first bid is at least the start price; each later bid beats the leader by at least the
  increment. Accepted bids therefore strictly rise, so the leader is always the highest bid,
  and among equal amounts (which the rule never accepts) the earliest would win. Nobody
  outbids themself.
- Anti-sniping: a bid inside the final window moves the end to ``max(end, bid time +
  window)``, at most ``max_extensions`` times.
- A bid at or above the buyout price (一口价) wins at the buyout price at once.
- At the end: no bid, or a top bid under the hidden reserve, is no sale (流拍) and every
  deposit is released. Otherwise the winner owes the hammer price less their deposit by a
  payment deadline (72 hours by default), and the losers' deposits are released.
- A winner who does not pay forfeits their deposit; by policy (:class:`SecondChance`) the lot
  is then offered to the runner-up at their own top bid.

Every end releases the lot's stock (held by the service under the auction id) unless it sold,
and each deposit is released, forfeited or applied exactly once.

The winner's order follows ``order.auction``: its payment deadline expiring leads to
``defaulted`` (deposit forfeited), not to a plain cancellation.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from ecommerce_core.actors import Actor
    >>> from ecommerce_core.money import Money
    >>> yuan = lambda s: Money.of(s, "CNY")
    >>> now = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    >>> terms = AuctionTerms(start_price=yuan("100.00"), increment=yuan("10.00"),
    ...                      deposit=yuan("50.00"), starts_at=now,
    ...                      ends_at=now + timedelta(hours=1))
    >>> lot = Auction.create(Actor.merchant("m-1"), auction_id="a-1", merchant_id="m-1",
    ...                      sku="vase", terms=terms, now=now)
    >>> lot.hold_deposit(Actor.buyer("bob"), bidder_id="bob", reference="dep-bob",
    ...                  amount=yuan("50.00"), now=now)
    >>> lot.bid(Actor.buyer("bob"), amount=yuan("100.00"), now=now)
    'running'
    >>> str(lot.minimum_bid())
    '110.00 CNY'

"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._aggregate import (
    EventRecorder,
    authorize,
    check_creation,
    check_now,
    money,
    text,
)
from ecommerce_core._validation import to_member
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    AlreadyLeading,
    BidTooLow,
    DeadlinePassed,
    DefinitionError,
    DepositRequired,
    InvalidInput,
    RuleViolation,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, OrderState
from ecommerce_core.process import Guard, Process, ProcessDefinition, State, Transition
from ecommerce_core.releases import Release, ReleaseKind, releases_for_stock

__all__ = [
    "AUCTION",
    "AUCTION_ORDER",
    "AUCTION_ORDER_PROCESS",
    "AUCTION_PROCESS",
    "Auction",
    "AuctionCreated",
    "AuctionEnded",
    "AuctionExtended",
    "AuctionPaid",
    "AuctionState",
    "AuctionTerms",
    "AuctionUnpaid",
    "AuctionUnsold",
    "Bid",
    "BidPlaced",
    "Deposit",
    "DepositForfeited",
    "DepositHeld",
    "DepositStatus",
    "RunnerUpOffered",
    "SecondChance",
]


class SecondChance(enum.StrEnum):
    """What happens to the lot when the winner does not pay."""

    NONE = "none"
    """Nothing more: the auction ends unpaid."""
    OFFER_RUNNER_UP = "offer_runner_up"
    """Offer it to the runner-up at their own top bid; their deposit stays held till then."""


def _to_second_chance(value: SecondChance | str) -> SecondChance:
    return to_member(SecondChance, value, "second_chance", definition="AuctionTerms")


@attrs.frozen
class AuctionTerms:
    """An auction's rules.

    Attributes:
        start_price: The least first bid.
        increment: The least step above the leader (加价幅度).
        deposit: The deposit a bidder holds before bidding, at most the start price.
        starts_at: When bidding opens.
        ends_at: When bidding closes, before any extension.
        reserve: The hidden reserve price (保留价): a lower top bid is no sale. At least the
            start price.
        buyout: The buyout price (一口价), above the start price and at least the reserve.
        snipe_window: A bid this close to the end extends it (1 minute by default).
        max_extensions: How many times the end may move (10 by default).
        payment_window: How long the winner has to pay (72 hours by default).
        second_chance: What happens when the winner does not pay.

    Raises:
        DefinitionError: Every problem with the terms, listed.

    """

    start_price: Money
    increment: Money
    deposit: Money
    starts_at: datetime
    ends_at: datetime
    reserve: Money | None = None
    buyout: Money | None = None
    snipe_window: timedelta = timedelta(minutes=1)
    max_extensions: int = 10
    payment_window: timedelta = timedelta(hours=72)
    second_chance: SecondChance = attrs.field(
        default=SecondChance.NONE,
        converter=_to_second_chance,
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.start_price, Money) or not self.start_price.is_positive:
            raise DefinitionError("AuctionTerms", ["start_price must be positive Money"])
        currency = self.start_price.currency
        problems: list[str] = []

        def amount(name: str, *, optional: bool = False) -> Money | None:
            value = getattr(self, name)
            if value is None and optional:
                return None
            if not isinstance(value, Money) or value.currency != currency:
                problems.append(f"{name} must be Money in {currency}")
                return None
            if not value.is_positive:
                problems.append(f"{name} must be positive")
                return None
            return value

        increment, deposit = amount("increment"), amount("deposit")
        reserve, buyout = amount("reserve", optional=True), amount("buyout", optional=True)
        if deposit is not None and deposit > self.start_price:
            problems.append("deposit must be at most the start price")
        if reserve is not None and reserve < self.start_price:
            problems.append("reserve must be at least the start price")
        if buyout is not None and (
            buyout <= self.start_price or (reserve is not None and buyout < reserve)
        ):
            problems.append("buyout must be above the start price and at least the reserve")
        for name in ("starts_at", "ends_at"):
            when = getattr(self, name)
            if not isinstance(when, datetime) or when.utcoffset() is None:
                problems.append(f"{name} must be a timezone-aware datetime")
        if not problems and self.ends_at <= self.starts_at:
            problems.append("ends_at must come after starts_at")
        for name in ("snipe_window", "payment_window"):
            window = getattr(self, name)
            if not isinstance(window, timedelta) or window <= timedelta(0):
                problems.append(f"{name} must be a positive timedelta")
        if type(self.max_extensions) is not int or self.max_extensions < 0:
            problems.append("max_extensions must be a non-negative int")
        if problems or increment is None:
            raise DefinitionError("AuctionTerms", problems)

    @property
    def currency(self) -> str:
        """The auction's currency."""
        return self.start_price.currency


class DepositStatus(enum.StrEnum):
    """A deposit's fate: held, then exactly one of the other three."""

    HELD = "held"
    RELEASED = "released"
    FORFEITED = "forfeited"
    APPLIED = "applied"
    """Counted toward the price the winner paid."""


@attrs.frozen
class Deposit:
    """One bidder's deposit.

    Attributes:
        bidder_id: The bidder.
        reference: The payment port's hold reference.
        amount: How much.
        status: Its fate so far.

    """

    bidder_id: str
    reference: str
    amount: Money
    status: DepositStatus = DepositStatus.HELD


@attrs.frozen
class Bid:
    """An accepted bid.

    Attributes:
        sequence: Its place in the order bids were accepted (from 1).
        bidder_id: The bidder.
        amount: The amount (capped at the buyout price).
        placed_at: When.

    """

    sequence: int
    bidder_id: str
    amount: Money
    placed_at: datetime


class AuctionState:
    """Names of the auction states."""

    RUNNING: Final = "running"
    AWAITING_PAYMENT: Final = "awaiting_payment"
    AWAITING_RUNNER_UP: Final = "awaiting_runner_up"
    SOLD: Final = "sold"
    UNSOLD: Final = "unsold"
    UNPAID: Final = "unpaid"


def _reaches_buyout(auction: Auction, amount: object) -> str | None:
    buyout = auction.terms.buyout
    if buyout is not None and isinstance(amount, Money) and amount >= buyout:
        return None
    return "below the buyout price"


def _reserve_met(auction: Auction, _context: object) -> str | None:
    leader, reserve = auction.leader, auction.terms.reserve
    if leader is None:
        return "no bids"
    if reserve is not None and leader.amount < reserve:
        return "the reserve price was not met"
    return None


def _runner_up_available(auction: Auction, _context: object) -> str | None:
    if auction.terms.second_chance is not SecondChance.OFFER_RUNNER_UP:
        return "the policy makes no second-chance offer"
    return None if auction.runner_up() is not None else "no runner-up meets the reserve"


AUCTION_GUARDS: Final[Mapping[str, Guard]] = MappingProxyType(
    {
        "reaches_buyout": _reaches_buyout,
        "reserve_met": _reserve_met,
        "runner_up_available": _runner_up_available,
    }
)

_A = AuctionState
AUCTION: Final = ProcessDefinition(
    name="auction",
    initial=_A.RUNNING,
    states=(
        State(_A.RUNNING, description="竞拍中 bidding open; deposits held"),
        State(_A.AWAITING_PAYMENT, description="待付款 won; the winner pays hammer less deposit"),
        State(_A.AWAITING_RUNNER_UP, description="次高价 the winner defaulted; runner-up offered"),
        State(_A.SOLD, final=True, description="成交 paid"),
        State(_A.UNSOLD, final=True, description="流拍 no bid, or the reserve was not met"),
        State(
            _A.UNPAID, final=True, description="违约 nobody paid; the winner's deposit forfeited"
        ),
    ),
    transitions=(
        Transition("hold_deposit", _A.RUNNING, _A.RUNNING),
        Transition("bid", _A.RUNNING, _A.AWAITING_PAYMENT, guards="reaches_buyout"),
        Transition("bid", _A.RUNNING, _A.RUNNING),
        Transition("close", _A.RUNNING, _A.AWAITING_PAYMENT, guards="reserve_met"),
        Transition("close", _A.RUNNING, _A.UNSOLD),
        Transition("pay", (_A.AWAITING_PAYMENT, _A.AWAITING_RUNNER_UP), _A.SOLD),
        Transition(
            "expire_payment",
            _A.AWAITING_PAYMENT,
            _A.AWAITING_RUNNER_UP,
            guards="runner_up_available",
        ),
        Transition("expire_payment", (_A.AWAITING_PAYMENT, _A.AWAITING_RUNNER_UP), _A.UNPAID),
        Transition("decline", _A.AWAITING_RUNNER_UP, _A.UNPAID),
    ),
)
"""The auction process (竞拍)."""

AUCTION_PROCESS: Final = Process(AUCTION, AUCTION_GUARDS)
""":data:`AUCTION`, validated and compiled."""

DEFAULTED: Final = "defaulted"
_O = OrderState
AUCTION_ORDER: Final = STANDARD_ORDER.extend(
    "order.auction",
    states=[State(DEFAULTED, final=True, description="违约 not paid in time; deposit forfeited")],
    transitions=[Transition("expire_payment", _O.PENDING_PAYMENT, DEFAULTED)],
    remove_transitions=[("expire_payment", _O.PENDING_PAYMENT), ("cancel", _O.PENDING_PAYMENT)],
)
"""The winner's order: placed at the hammer price when the auction ends, with the auction's
payment window as its payment timeout; it cannot be cancelled before payment, and an expired
payment leads to ``defaulted`` (the deposit is forfeited), not ``cancelled``."""

AUCTION_ORDER_PROCESS: Final = Process(AUCTION_ORDER, ORDER_GUARDS)
""":data:`AUCTION_ORDER`, validated and compiled."""


# --------------------------------------------------------------------------- events


@attrs.frozen(kw_only=True)
class AuctionCreated(DomainEvent):
    """An auction was set up.

    Attributes:
        merchant_id: The merchant.
        sku: The lot.
        terms: Its rules.

    """

    merchant_id: str
    sku: str
    terms: AuctionTerms


@attrs.frozen(kw_only=True)
class DepositHeld(DomainEvent):
    """A bidder's deposit is held: they may bid.

    Attributes:
        deposit: The deposit.

    """

    deposit: Deposit


@attrs.frozen(kw_only=True)
class BidPlaced(DomainEvent):
    """A bid was accepted and leads.

    Attributes:
        bid: The bid.

    """

    bid: Bid


@attrs.frozen(kw_only=True)
class AuctionExtended(DomainEvent):
    """A late bid moved the end (anti-sniping).

    Attributes:
        ends_at: The new end.
        extensions: Extensions so far.

    """

    ends_at: datetime
    extensions: int


@attrs.frozen(kw_only=True)
class AuctionEnded(DomainEvent):
    """The auction has a winner, who owes the hammer price less their deposit.

    Attributes:
        winner_id: The winner.
        hammer: The hammer price.
        deposit_applied: The winner's deposit, counted toward the price.
        amount_due: What the winner pays now.
        payment_due: The payment deadline.
        buyout: Whether the buyout price ended it.
        releases: The losers' deposits, released.

    """

    winner_id: str
    hammer: Money
    deposit_applied: Money
    amount_due: Money
    payment_due: datetime
    buyout: bool
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class AuctionUnsold(DomainEvent):
    """No sale (流拍): no bid, or the reserve was not met.

    Attributes:
        reason: Why.
        releases: Every deposit, and the lot's stock.

    """

    reason: str
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class DepositForfeited(DomainEvent):
    """A winner did not pay: their deposit is forfeited (post it to the ledger).

    Attributes:
        deposit: The deposit forfeited.

    """

    deposit: Deposit


@attrs.frozen(kw_only=True)
class RunnerUpOffered(DomainEvent):
    """The lot is offered to the runner-up at their own top bid.

    Attributes:
        bidder_id: The runner-up.
        hammer: Their top bid.
        amount_due: What they pay (less their deposit).
        payment_due: Their deadline.

    """

    bidder_id: str
    hammer: Money
    amount_due: Money
    payment_due: datetime


@attrs.frozen(kw_only=True)
class AuctionPaid(DomainEvent):
    """The winner paid: the lot is sold.

    Attributes:
        winner_id: Who paid.
        amount: What they paid now.
        payment_ref: Their payment.
        deposit_applied: Their deposit, applied to the price.
        releases: Any other deposit still held (the runner-up's), released.

    """

    winner_id: str
    amount: Money
    payment_ref: str
    deposit_applied: Money
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class AuctionUnpaid(DomainEvent):
    """Nobody paid: the auction ends without a sale.

    Attributes:
        reason: Why (``"payment deadline"``, ``"runner-up declined"``).
        releases: The lot's stock and any deposit still held.

    """

    reason: str
    releases: tuple[Release, ...]


# --------------------------------------------------------------------------- aggregate

_SYSTEM: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})
_PAYERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})


@attrs.define(eq=False)
class Auction(EventRecorder):
    """One auction of one lot.

    Create it with :meth:`create` (the service reserves the lot's stock under the auction id);
    then :meth:`hold_deposit`, :meth:`bid`, :meth:`expire` (closes it at the end, and handles
    payment deadlines), :meth:`pay` and :meth:`decline`.

    Attributes:
        id: The auction id.
        merchant_id: The merchant.
        sku: The lot.
        terms: Its rules.
        state: See :class:`AuctionState`.
        ends_at: The current end, extensions included.
        extensions: How many times the end moved.
        bids: Accepted bids, in order.
        deposits: Every deposit held, in order.
        winner_id: Who owes payment (the runner-up after a second-chance offer).
        hammer: The price they owe, deposit included.
        payment_due: Their payment deadline.
        payment_ref: The winning payment, once paid.
        releases: Everything released so far, in order.
        version: Raised by one per event.
        events: Events since the last :meth:`collect_events`.

    """

    id: str
    merchant_id: str
    sku: str
    terms: AuctionTerms
    ends_at: datetime
    state: str = _A.RUNNING
    extensions: int = 0
    bids: list[Bid] = attrs.field(factory=list)
    deposits: list[Deposit] = attrs.field(factory=list)
    winner_id: str | None = None
    hammer: Money | None = None
    payment_due: datetime | None = None
    payment_ref: str | None = None
    releases: tuple[Release, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def create(
        cls,
        actor: Actor,
        *,
        auction_id: str,
        merchant_id: str,
        sku: str,
        terms: AuctionTerms,
        now: datetime,
    ) -> Auction:
        """Set an auction up (its merchant or the platform).

        Raises:
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: Blank ids, or terms that are not :class:`AuctionTerms`.
            DeadlinePassed: The end is already past.

        """
        check_creation(
            actor,
            now,
            ids={"auction_id": auction_id, "merchant_id": merchant_id, "sku": sku},
            merchant_id=merchant_id,
            terms=terms,
            terms_type=AuctionTerms,
        )
        if now >= terms.ends_at:
            raise DeadlinePassed(auction_id, "create", "new", terms.ends_at, now)
        auction = cls(
            id=auction_id, merchant_id=merchant_id, sku=sku, terms=terms, ends_at=terms.ends_at
        )
        auction._record(AuctionCreated, now, actor, merchant_id=merchant_id, sku=sku, terms=terms)
        return auction

    # ----------------------------------------------------------------- reading

    @property
    def leader(self) -> Bid | None:
        """The leading bid: the highest, the earliest among equals.

        Every accepted bid beats the one before by at least the increment, so this is the
        last bid accepted.
        """
        return self.bids[-1] if self.bids else None

    def runner_up(self) -> Bid | None:
        """The best bid of anyone but the leader that meets the reserve, with a held deposit.

        Bids strictly rise, so the best is the latest that qualifies.
        """
        leader = self.leader
        reserve = self.terms.reserve
        for bid in reversed(self.bids):
            if leader is not None and bid.bidder_id == leader.bidder_id:
                continue
            if reserve is not None and bid.amount < reserve:
                continue
            deposit = self.deposit_of(bid.bidder_id)
            if deposit is not None and deposit.status is DepositStatus.HELD:
                return bid
        return None

    def deposit_of(self, bidder_id: str) -> Deposit | None:
        """The deposit ``bidder_id`` held, if any."""
        for deposit in self.deposits:
            if deposit.bidder_id == bidder_id:
                return deposit
        return None

    def minimum_bid(self) -> Money:
        """The least amount the next bid may be: the start price, or leader + increment."""
        leader = self.leader
        return self.terms.start_price if leader is None else leader.amount + self.terms.increment

    @property
    def amount_due(self) -> Money | None:
        """What the current winner pays now: the hammer price less their deposit."""
        if self.hammer is None or self.winner_id is None:
            return None
        deposit = self.deposit_of(self.winner_id)
        applied = deposit.amount if deposit is not None else Money.zero(self.terms.currency)
        return self.hammer - applied

    @property
    def is_final(self) -> bool:
        """Whether the auction sold, went unsold or ended unpaid."""
        return AUCTION_PROCESS.is_final(self.state)

    @property
    def due_at(self) -> datetime | None:
        """When :meth:`expire` next has something to do (the end, or the payment deadline)."""
        if self.state == _A.RUNNING:
            return self.ends_at
        if self.state in (_A.AWAITING_PAYMENT, _A.AWAITING_RUNNER_UP):
            return self.payment_due
        return None

    # ----------------------------------------------------------------- commands

    def hold_deposit(
        self, actor: Actor, *, bidder_id: str, reference: str, amount: Money, now: datetime
    ) -> None:
        """Record that the payment port holds ``bidder_id``'s deposit: they may bid.

        Raises:
            Forbidden: A buyer holding a deposit for someone else, a merchant or a carrier.
            InvalidInput: Blank ids, or an amount other than the auction's deposit.
            TransitionNotAllowed: Bidding is over.
            DeadlinePassed: The end has passed.
            RuleViolation: The bidder already holds a deposit here.

        """
        authorize(actor, _PAYERS, "hold_deposit", self.id, buyer_id=bidder_id)
        check_now(now)
        text("bidder_id", bidder_id)
        text("reference", reference)
        money("amount", amount, self.terms.currency, positive=True)
        if amount != self.terms.deposit:
            raise InvalidInput("amount", amount, f"the deposit is {self.terms.deposit}")
        dest = AUCTION_PROCESS.fire(self.state, "hold_deposit", self, subject_id=self.id)
        if now >= self.ends_at:
            raise DeadlinePassed(self.id, "hold_deposit", self.state, self.ends_at, now)
        if self.deposit_of(bidder_id) is not None:
            raise RuleViolation(self.id, "hold_deposit", self.state, "a deposit is already held")
        deposit = Deposit(bidder_id, reference, amount)
        self.deposits.append(deposit)
        self.state = dest
        self._record(DepositHeld, now, actor, deposit=deposit)

    def bid(self, actor: Actor, *, amount: Money, now: datetime) -> str:
        """A buyer bids.

        Returns:
            The state afterwards: ``"awaiting_payment"`` if the bid reached the buyout price.

        Raises:
            Forbidden: The actor is not a buyer.
            InvalidInput: An amount that is not positive Money.
            CurrencyMismatch: Another currency.
            TransitionNotAllowed: Bidding is over.
            RuleViolation: Bidding has not opened yet.
            DeadlinePassed: The (possibly extended) end has passed.
            DepositRequired: The bidder holds no deposit.
            AlreadyLeading: The bidder already leads.
            BidTooLow: Below the start price, or below leader + increment.

        """
        authorize(actor, {ActorKind.BUYER}, "bid", self.id)
        check_now(now)
        money("amount", amount, self.terms.currency, positive=True)
        dest = AUCTION_PROCESS.fire(self.state, "bid", self, amount, subject_id=self.id)
        if now < self.terms.starts_at:
            raise RuleViolation(
                self.id, "bid", self.state, f"bidding opens at {self.terms.starts_at.isoformat()}"
            )
        if now >= self.ends_at:
            raise DeadlinePassed(self.id, "bid", self.state, self.ends_at, now)
        deposit = self.deposit_of(actor.id)
        if deposit is None or deposit.status is not DepositStatus.HELD:
            raise DepositRequired(self.id, actor.id, self.terms.deposit)
        leader = self.leader
        if leader is not None and leader.bidder_id == actor.id:
            raise AlreadyLeading(self.id, actor.id)
        minimum = self.minimum_bid()
        if amount < minimum:
            raise BidTooLow(self.id, minimum, amount)
        buyout = self.terms.buyout
        capped = amount if buyout is None else min(amount, buyout)
        placed = Bid(len(self.bids) + 1, actor.id, capped, now)
        self.bids.append(placed)
        self._record(BidPlaced, now, actor, bid=placed)
        if dest == _A.AWAITING_PAYMENT:
            self._award(placed, now, actor, buyout=True)
            return self.state
        window = self.terms.snipe_window
        if now >= self.ends_at - window and self.extensions < self.terms.max_extensions:
            new_end = max(self.ends_at, now + window)
            if new_end > self.ends_at:
                self.ends_at, self.extensions = new_end, self.extensions + 1
                self._record(
                    AuctionExtended, now, actor, ends_at=new_end, extensions=self.extensions
                )
        return self.state

    def expire(self, now: datetime, actor: Actor | None = None) -> tuple[Release, ...] | None:
        """Act on a passed deadline: close the bidding, or handle an unpaid winner.

        - At the end: a winner (reserve met) owes payment and the losers' deposits are
          released; otherwise no sale, every deposit released and the lot's stock too.
        - At a payment deadline: the winner's deposit is forfeited (a
          :class:`DepositForfeited` event); the lot goes to the runner-up per policy, or the
          auction ends unpaid and the lot's stock is released.

        Idempotent: with nothing due, nothing happens and ``None`` is returned.

        Returns:
            What to release, or ``None`` if nothing was due.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, "expire", self.id)
        check_now(now)
        due = self.due_at
        if due is None or now < due:
            return None
        if self.state == _A.RUNNING:
            dest = AUCTION_PROCESS.fire(self.state, "close", self, subject_id=self.id)
            if dest == _A.AWAITING_PAYMENT:
                leader = self.leader
                assert leader is not None  # noqa: S101  # the guard checked
                return self._award(leader, due, actor, buyout=False)
            reason = "no bids" if not self.bids else "the reserve price was not met"
            releases = self._release_deposits(keep=()) + releases_for_stock(self.id, self.id)
            self.state, self.releases = dest, self.releases + releases
            self._record(AuctionUnsold, due, actor, reason=reason, releases=releases)
            return releases
        dest = AUCTION_PROCESS.fire(self.state, "expire_payment", self, subject_id=self.id)
        if self.state == _A.AWAITING_PAYMENT:
            self._forfeit(due, actor)
            if dest == _A.AWAITING_RUNNER_UP:
                runner = self.runner_up()
                assert runner is not None  # noqa: S101  # the guard checked
                self._offer(runner, due, actor)
                self.state = dest
                return ()
        return self._end_unpaid(dest, due, actor, "payment deadline")

    def pay(
        self, actor: Actor, *, amount: Money, payment_ref: str, now: datetime
    ) -> tuple[Release, ...]:
        """The winner (or the runner-up offered the lot) paid the amount due.

        Returns:
            Any deposit still held by someone else (the runner-up's), released.

        Raises:
            Forbidden: A buyer other than the one who owes payment, a merchant or a carrier.
            InvalidInput: An amount other than :attr:`amount_due`, or a blank reference.
            TransitionNotAllowed: Nobody owes payment.
            DeadlinePassed: The payment deadline has passed.

        """
        authorize(actor, _PAYERS, "pay", self.id, buyer_id=self.winner_id)
        check_now(now)
        text("payment_ref", payment_ref)
        money("amount", amount, self.terms.currency)
        dest = AUCTION_PROCESS.fire(self.state, "pay", self, subject_id=self.id)
        assert self.winner_id is not None  # noqa: S101  # set in these states
        assert self.payment_due is not None  # noqa: S101  # set with the winner
        if amount != self.amount_due:
            raise InvalidInput("amount", amount, f"the amount due is {self.amount_due}")
        if now >= self.payment_due:
            raise DeadlinePassed(self.id, "pay", self.state, self.payment_due, now)
        applied = self._settle_deposit(self.winner_id, DepositStatus.APPLIED)
        releases = self._release_deposits(keep=())
        self.state, self.payment_ref = dest, payment_ref
        self.releases += releases
        self._record(
            AuctionPaid,
            now,
            actor,
            winner_id=self.winner_id,
            amount=amount,
            payment_ref=payment_ref,
            deposit_applied=applied,
            releases=releases,
        )
        return releases

    def decline(self, actor: Actor, *, now: datetime) -> tuple[Release, ...]:
        """The runner-up declines the second-chance offer: their deposit is released.

        Returns:
            Their deposit and the lot's stock.

        Raises:
            Forbidden: Anyone but the runner-up offered the lot (or the platform).
            TransitionNotAllowed: No offer is open.

        """
        authorize(
            actor,
            {ActorKind.BUYER, ActorKind.PLATFORM},
            "decline",
            self.id,
            buyer_id=self.winner_id,
        )
        check_now(now)
        dest = AUCTION_PROCESS.fire(self.state, "decline", self, subject_id=self.id)
        return self._end_unpaid(dest, now, actor, "runner-up declined")

    # ----------------------------------------------------------------- internals

    def _award(self, bid: Bid, now: datetime, actor: Actor, *, buyout: bool) -> tuple[Release, ...]:
        keep: tuple[str, ...] = (bid.bidder_id,)
        if self.terms.second_chance is SecondChance.OFFER_RUNNER_UP:
            runner = self.runner_up()  # the bid is the leader: runner_up() excludes its bidder
            if runner is not None:
                keep += (runner.bidder_id,)
        releases = self._release_deposits(keep=keep)
        self.winner_id, self.hammer = bid.bidder_id, bid.amount
        self.payment_due = now + self.terms.payment_window
        self.state = _A.AWAITING_PAYMENT
        self.releases += releases
        deposit = self.deposit_of(bid.bidder_id)
        assert deposit is not None  # noqa: S101  # only deposit holders bid
        self._record(
            AuctionEnded,
            now,
            actor,
            winner_id=bid.bidder_id,
            hammer=bid.amount,
            deposit_applied=deposit.amount,
            amount_due=bid.amount - deposit.amount,
            payment_due=self.payment_due,
            buyout=buyout,
            releases=releases,
        )
        return releases

    def _offer(self, runner: Bid, now: datetime, actor: Actor) -> None:
        self.winner_id, self.hammer = runner.bidder_id, runner.amount
        self.payment_due = now + self.terms.payment_window
        due = self.amount_due
        assert due is not None  # noqa: S101  # winner and hammer just set
        self._record(
            RunnerUpOffered,
            now,
            actor,
            bidder_id=runner.bidder_id,
            hammer=runner.amount,
            amount_due=due,
            payment_due=self.payment_due,
        )

    def _forfeit(self, now: datetime, actor: Actor) -> None:
        assert self.winner_id is not None  # noqa: S101  # set while awaiting payment
        self._settle_deposit(self.winner_id, DepositStatus.FORFEITED)
        forfeited = self.deposit_of(self.winner_id)
        self._record(DepositForfeited, now, actor, deposit=forfeited)

    def _end_unpaid(
        self, dest: str, now: datetime, actor: Actor, reason: str
    ) -> tuple[Release, ...]:
        releases = self._release_deposits(keep=()) + releases_for_stock(self.id, self.id)
        self.state, self.releases = dest, self.releases + releases
        self._record(AuctionUnpaid, now, actor, reason=reason, releases=releases)
        return releases

    def _settle_deposit(self, bidder_id: str, status: DepositStatus) -> Money:
        for index, deposit in enumerate(self.deposits):
            if deposit.bidder_id == bidder_id:
                self.deposits[index] = attrs.evolve(deposit, status=status)
                return deposit.amount
        msg = f"no deposit for {bidder_id!r}"  # pragma: no cover - only deposit holders win
        raise AssertionError(msg)  # pragma: no cover

    def _release_deposits(self, keep: tuple[str, ...]) -> tuple[Release, ...]:
        releases = []
        for index, deposit in enumerate(self.deposits):
            if deposit.status is DepositStatus.HELD and deposit.bidder_id not in keep:
                self.deposits[index] = attrs.evolve(deposit, status=DepositStatus.RELEASED)
                releases.append(
                    Release(
                        self.id,
                        ReleaseKind.DEPOSIT,
                        deposit.reference,
                        deposit.bidder_id,
                        deposit.amount,
                    )
                )
        return tuple(releases)
