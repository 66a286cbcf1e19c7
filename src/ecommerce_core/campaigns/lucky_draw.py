"""Lucky draw (一元夺宝): a round sells S numbered shares; one number wins the prize, verifiably.

A :class:`DrawRound` sells ``S`` shares at a share price. Its process::

    selling 销售中 ─pay (the S-th share)→ sold_out 待开奖 ─draw→ awaiting_address 待确认地址
      └─expire (sell-by passed)→ unsold 流局        ├─confirm_address→ fulfilled 已领奖
                                                   └─forfeit (deadline)→ forfeited 已作废

- A buyer reserves ``k`` shares (held, like stock, until paid or released) and, when the
  payment succeeds, gets ``k`` consecutive numbers, assigned in payment order from
  :data:`FIRST_NUMBER`. Held plus paid shares never exceed ``S``.
- The draw is the public-data rule of the one-yuan platforms: **A** is the sum of the times of
  the last 50 paid purchases (at most), each written ``HHmmssSSS`` in UTC, taken from the
  round's own stored purchases; **B** is a number published by a third party *after* the round
  sold out (a lottery result), supplied through the
  :class:`~ecommerce_core.ports.RandomnessSource` port as a :class:`PublicNumber`. The winning
  number is ``(A + B) mod S + first number`` (:func:`winning_number`). Both are stored on the
  round in a :class:`DrawRecord`, so anyone can recompute the winner
  (:meth:`DrawRecord.recompute`, :meth:`DrawRound.verify`). Without B the draw is refused,
  unless the terms allow B = 0 after a fallback delay (24 hours by default).
- The winner confirms a delivery address within a window (30 days by default) or forfeits,
  per :class:`ForfeitPolicy`; the other shares are spent.
- A round not sold out by its sell-by time refunds every share and gives the prize back.

Buyers' orders follow ``order.lucky_draw``: ``pay → awaiting_draw →`` ``draw_won`` (then the
address) or ``draw_lost`` (shares spent), or ``round_unsold → cancelled``.

Example:
    >>> winning_number(a=123_456_789, b=40_113, share_count=100)
    10000003

"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._aggregate import (
    EventRecorder,
    authorize,
    check_creation,
    check_now,
    money,
    positive_count,
    positive_duration,
    text,
)
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    DeadlinePassed,
    DefinitionError,
    DrawInputsMissing,
    InvalidInput,
    NotFound,
    OutOfStock,
    RuleViolation,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, OrderState
from ecommerce_core.process import Guard, Process, ProcessDefinition, State, Transition
from ecommerce_core.releases import Release, releases_for_order, releases_for_stock

__all__ = [
    "A_PURCHASES",
    "DRAW_ROUND",
    "DRAW_ROUND_PROCESS",
    "FIRST_NUMBER",
    "LUCKY_DRAW_ORDER",
    "LUCKY_DRAW_ORDER_PROCESS",
    "AddressConfirmed",
    "DrawCompleted",
    "DrawRecord",
    "DrawRound",
    "DrawRoundCreated",
    "DrawRoundState",
    "DrawTerms",
    "ForfeitPolicy",
    "PrizeForfeited",
    "PublicNumber",
    "RoundSoldOut",
    "RoundUnsold",
    "SharePurchase",
    "ShareStatus",
    "SharesPaid",
    "SharesReleased",
    "SharesReserved",
    "a_terms",
    "time_value",
    "winning_number",
]

FIRST_NUMBER: Final = 10_000_001
"""The first share number of a round, as the one-yuan platforms print it."""

A_PURCHASES: Final = 50
"""How many of the last paid purchases make up A."""


@attrs.frozen
class PublicNumber:
    """A number published by a third party nobody in the trade controls (a lottery draw).

    Attributes:
        value: The number, not negative.
        source: Where and which draw it is, so anyone can look it up
            (``"cqssc:20260601-042"``).
        published_at: When it was published.

    Raises:
        InvalidInput: A negative or non-int value, a blank source, a naive time.

    """

    value: int
    source: str
    published_at: datetime

    def __attrs_post_init__(self) -> None:
        if type(self.value) is not int or self.value < 0:
            raise InvalidInput("value", self.value, "must be a non-negative int")
        text("source", self.source)
        check_now(self.published_at)


def time_value(moment: datetime) -> int:
    """A purchase time written as the digits ``HHmmssSSS`` in UTC (10:05:03.250 → 100503250)."""
    utc = moment.astimezone(UTC)
    return ((utc.hour * 100 + utc.minute) * 100 + utc.second) * 1000 + utc.microsecond // 1000


def a_terms(paid_times: Sequence[datetime], count: int = A_PURCHASES) -> tuple[int, ...]:
    """The terms of A: :func:`time_value` of the last ``count`` payment times, oldest first."""
    return tuple(time_value(moment) for moment in paid_times[-count:])


def winning_number(a: int, b: int, share_count: int, first_number: int = FIRST_NUMBER) -> int:
    """The winning share number: ``(a + b) mod share_count + first_number``. A pure function.

    Raises:
        InvalidInput: A negative ``a`` or ``b``, or a share count below 1.

    """
    if type(a) is not int or type(b) is not int or a < 0 or b < 0:
        raise InvalidInput("a, b", (a, b), "must be non-negative ints")
    positive_count("share_count", share_count)
    return (a + b) % share_count + first_number


class ForfeitPolicy(enum.StrEnum):
    """What happens when the winner does not confirm an address in time."""

    RELEASE_PRIZE = "release_prize"
    """The prize goes back to stock; every share, the winner's included, stays spent."""
    REFUND_WINNER = "refund_winner"
    """The prize goes back to stock and the winning order is refunded."""


@attrs.frozen
class DrawTerms:
    """A round's rules.

    Attributes:
        share_count: ``S``, the shares on sale (at least 1).
        share_price: The price of one share.
        sell_by: If not sold out by then, the round is unsold and refunded.
        address_window: How long the winner has to confirm an address (30 days).
        b_fallback_after: How long after the sell-out the draw may use B = 0 if no public
            number is available; ``None`` always waits for one. 24 hours by default.
        on_forfeit: What a forfeit does (:class:`ForfeitPolicy`).
        first_number: The first share number.

    Raises:
        DefinitionError: Every problem with the terms, listed.

    """

    share_count: int
    share_price: Money
    sell_by: datetime
    address_window: timedelta = timedelta(days=30)
    b_fallback_after: timedelta | None = timedelta(hours=24)
    on_forfeit: ForfeitPolicy = attrs.field(
        default=ForfeitPolicy.RELEASE_PRIZE, converter=ForfeitPolicy
    )
    first_number: int = FIRST_NUMBER

    def __attrs_post_init__(self) -> None:
        problems = []
        for check in (
            lambda: positive_count("share_count", self.share_count),
            lambda: check_now(self.sell_by),
            lambda: positive_duration("address_window", self.address_window),
        ):
            try:
                check()
            except InvalidInput as error:
                problems.append(str(error))
        if not isinstance(self.share_price, Money) or not self.share_price.is_positive:
            problems.append(f"share_price must be positive Money, got {self.share_price!r}")
        if self.b_fallback_after is not None and (
            not isinstance(self.b_fallback_after, timedelta)
            or self.b_fallback_after <= timedelta(0)
        ):
            problems.append("b_fallback_after must be a positive timedelta or None")
        if type(self.first_number) is not int or self.first_number < 0:
            problems.append("first_number must be a non-negative int")
        if problems:
            raise DefinitionError("DrawTerms", problems)


@attrs.frozen
class DrawRecord:
    """Everything the draw used, stored so anyone can recompute the winner.

    Attributes:
        a_terms: The ``HHmmssSSS`` values of the last paid purchases (oldest first).
        b: The public number (0 on fallback).
        b_source: Where B came from (``"fallback"`` when B = 0 was used).
        b_published_at: When B was published (``None`` on fallback).
        share_count: ``S``.
        first_number: The round's first share number.
        winning_number: The number drawn.
        winner_order_id: The order holding it.
        winner_id: Its buyer.
        drawn_at: When the draw ran.

    """

    a_terms: tuple[int, ...]
    b: int
    b_source: str
    b_published_at: datetime | None
    share_count: int
    first_number: int
    winning_number: int
    winner_order_id: str
    winner_id: str
    drawn_at: datetime

    @property
    def a(self) -> int:
        """A: the sum of :attr:`a_terms`."""
        return sum(self.a_terms)

    @property
    def fallback(self) -> bool:
        """Whether B = 0 was used because no public number came in time."""
        return self.b_published_at is None

    def recompute(self) -> int:
        """The winning number, recomputed from the stored inputs alone."""
        return winning_number(self.a, self.b, self.share_count, self.first_number)


class ShareStatus(enum.StrEnum):
    """Where a share purchase stands."""

    HELD = "held"
    PAID = "paid"
    RELEASED = "released"


@attrs.frozen
class SharePurchase:
    """Shares bought by one order.

    Attributes:
        order_id: The order.
        buyer_id: Its buyer.
        quantity: ``k``, the shares.
        status: Held, paid or released.
        reserved_at: When reserved.
        first: The first of its ``k`` consecutive numbers, once paid.
        amount: What was paid.
        payment_ref: The payment.
        paid_at: When paid.

    """

    order_id: str
    buyer_id: str
    quantity: int
    status: ShareStatus
    reserved_at: datetime
    first: int | None = None
    amount: Money | None = None
    payment_ref: str | None = None
    paid_at: datetime | None = None

    @property
    def numbers(self) -> range:
        """Its share numbers (empty until paid)."""
        return range(0) if self.first is None else range(self.first, self.first + self.quantity)


class DrawRoundState:
    """Names of the draw-round states."""

    SELLING: Final = "selling"
    SOLD_OUT: Final = "sold_out"
    AWAITING_ADDRESS: Final = "awaiting_address"
    FULFILLED: Final = "fulfilled"
    FORFEITED: Final = "forfeited"
    UNSOLD: Final = "unsold"


def _fills_round(draw_round: DrawRound, quantity: object) -> str | None:
    if isinstance(quantity, int) and draw_round.sold + quantity >= draw_round.terms.share_count:
        return None
    return "shares remain"


DRAW_ROUND_GUARDS: Final[Mapping[str, Guard]] = MappingProxyType({"fills_round": _fills_round})

_R = DrawRoundState
DRAW_ROUND: Final = ProcessDefinition(
    name="draw_round",
    initial=_R.SELLING,
    states=(
        State(_R.SELLING, description="销售中 shares on sale"),
        State(_R.SOLD_OUT, description="待开奖 every share sold; waiting for the public number"),
        State(_R.AWAITING_ADDRESS, description="待确认地址 drawn; the winner confirms an address"),
        State(_R.FULFILLED, final=True, description="已领奖 the prize goes to the winner"),
        State(_R.FORFEITED, final=True, description="已作废 no address in time; prize back"),
        State(_R.UNSOLD, final=True, description="流局 not sold out in time; all refunded"),
    ),
    transitions=(
        Transition("reserve", _R.SELLING, _R.SELLING),
        Transition("pay", _R.SELLING, _R.SOLD_OUT, guards="fills_round"),
        Transition("pay", _R.SELLING, _R.SELLING),
        Transition("release", _R.SELLING, _R.SELLING),
        Transition("expire", _R.SELLING, _R.UNSOLD),
        Transition("draw", _R.SOLD_OUT, _R.AWAITING_ADDRESS),
        Transition("confirm_address", _R.AWAITING_ADDRESS, _R.FULFILLED),
        Transition("forfeit", _R.AWAITING_ADDRESS, _R.FORFEITED),
    ),
)
"""The draw-round process (夺宝)."""

DRAW_ROUND_PROCESS: Final = Process(DRAW_ROUND, DRAW_ROUND_GUARDS)
""":data:`DRAW_ROUND`, validated and compiled."""

AWAITING_DRAW: Final = "awaiting_draw"
AWAITING_ADDRESS: Final = "awaiting_address"
_O = OrderState
LUCKY_DRAW_ORDER: Final = STANDARD_ORDER.extend(
    "order.lucky_draw",
    states=[
        State(AWAITING_DRAW, description="待开奖 shares paid; waits for the draw"),
        State(AWAITING_ADDRESS, description="待确认地址 won; the buyer confirms an address"),
        State("lost", final=True, description="未中奖 another number won; the shares are spent"),
        State("forfeited", final=True, description="已作废 won, but no address in time"),
    ],
    transitions=[
        Transition("pay", _O.PENDING_PAYMENT, AWAITING_DRAW, guards="payment_covers_total"),
        Transition("draw_won", AWAITING_DRAW, AWAITING_ADDRESS),
        Transition("draw_lost", AWAITING_DRAW, "lost"),
        Transition("round_unsold", (_O.PENDING_PAYMENT, AWAITING_DRAW), _O.CANCELLED),
        Transition("confirm_address", AWAITING_ADDRESS, _O.AWAITING_SHIPMENT),
        Transition("forfeit", AWAITING_ADDRESS, "forfeited"),
    ],
    remove_transitions=[("pay", _O.PENDING_PAYMENT)],
)
"""A lucky-draw order: ``pay → awaiting_draw → draw_won → awaiting_address → confirm_address →
awaiting_shipment``; ``draw_lost → lost``; ``round_unsold → cancelled``; ``forfeit``."""

LUCKY_DRAW_ORDER_PROCESS: Final = Process(LUCKY_DRAW_ORDER, ORDER_GUARDS)
""":data:`LUCKY_DRAW_ORDER`, validated and compiled."""


# --------------------------------------------------------------------------- events


@attrs.frozen(kw_only=True)
class DrawRoundCreated(DomainEvent):
    """A round was put on sale.

    Attributes:
        merchant_id: The merchant.
        prize_sku: The prize.
        terms: Its rules.

    """

    merchant_id: str
    prize_sku: str
    terms: DrawTerms


@attrs.frozen(kw_only=True)
class SharesReserved(DomainEvent):
    """Shares were held for an order until it is paid.

    Attributes:
        order_id: The order.
        buyer_id: Its buyer.
        quantity: Shares held.

    """

    order_id: str
    buyer_id: str
    quantity: int


@attrs.frozen(kw_only=True)
class SharesPaid(DomainEvent):
    """An order paid for its shares and got its numbers.

    Attributes:
        order_id: The order.
        first: Its first number.
        quantity: How many consecutive numbers.
        payment_ref: The payment.

    """

    order_id: str
    first: int
    quantity: int
    payment_ref: str


@attrs.frozen(kw_only=True)
class SharesReleased(DomainEvent):
    """Held shares went back on sale (the order was not paid).

    Attributes:
        order_id: The order.

    """

    order_id: str


@attrs.frozen(kw_only=True)
class RoundSoldOut(DomainEvent):
    """The last share was paid: the round waits for its draw."""


@attrs.frozen(kw_only=True)
class DrawCompleted(DomainEvent):
    """The winning number was drawn.

    Attributes:
        record: The inputs and the outcome, to recompute.
        losing_order_ids: The other paid orders (their shares are spent).
        address_due: When the winner's address confirmation is due.

    """

    record: DrawRecord
    losing_order_ids: tuple[str, ...]
    address_due: datetime


@attrs.frozen(kw_only=True)
class AddressConfirmed(DomainEvent):
    """The winner confirmed where the prize goes.

    Attributes:
        order_id: The winning order.
        address: The delivery address.

    """

    order_id: str
    address: str


@attrs.frozen(kw_only=True)
class PrizeForfeited(DomainEvent):
    """The winner did not confirm an address in time.

    Attributes:
        order_id: The winning order.
        releases: What to give back (the prize's stock; the winner's payment per policy).

    """

    order_id: str
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class RoundUnsold(DomainEvent):
    """The round did not sell out by its sell-by time: every share is refunded.

    Attributes:
        order_ids: Every order still holding shares.
        releases: What to give back (each order's payment, the prize's stock).

    """

    order_ids: tuple[str, ...]
    releases: tuple[Release, ...]


# --------------------------------------------------------------------------- aggregate

_PAYERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_SYSTEM: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})


@attrs.define(eq=False)
class DrawRound(EventRecorder):
    """One round of a lucky draw.

    Create it with :meth:`create` (the service reserves the prize's stock under the round's
    id); then :meth:`reserve`, :meth:`pay`, :meth:`release`, :meth:`draw`,
    :meth:`confirm_address` and :meth:`expire`.

    Attributes:
        id: The round id.
        merchant_id: The merchant.
        prize_sku: The prize.
        terms: Its rules.
        state: See :class:`DrawRoundState`.
        purchases: Every reservation, in the order made (released ones included).
        sold: Shares paid.
        sold_out_at: When the last share was paid.
        record: The draw, once drawn.
        address_due: When the winner's address is due, once drawn.
        address: The winner's address, once confirmed.
        releases: What its abandonment produced (unsold or forfeited).
        version: Raised by one per event.
        events: Events since the last :meth:`collect_events`.

    """

    id: str
    merchant_id: str
    prize_sku: str
    terms: DrawTerms
    state: str = _R.SELLING
    purchases: list[SharePurchase] = attrs.field(factory=list)
    sold: int = 0
    sold_out_at: datetime | None = None
    record: DrawRecord | None = None
    address_due: datetime | None = None
    address: str | None = None
    releases: tuple[Release, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()
    _index: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _paid: list[int] = attrs.field(factory=list, init=False, repr=False)
    _held_shares: int = attrs.field(default=0, init=False, repr=False)  # kept in step: O(1)

    def __attrs_post_init__(self) -> None:
        """Rebuild the order index, the payment order and the held count (a round read back).

        Paid purchases are numbered consecutively in payment order, so sorting them by their
        first number restores the order they were paid in.
        """
        paid: list[tuple[int, int]] = []
        for index, purchase in enumerate(self.purchases):
            self._index[purchase.order_id] = index
            if purchase.status is ShareStatus.HELD:
                self._held_shares += purchase.quantity
            elif purchase.status is ShareStatus.PAID:
                assert purchase.first is not None  # noqa: S101  # numbered when paid
                paid.append((purchase.first, index))
        self._paid = [index for _, index in sorted(paid)]

    @classmethod
    def create(
        cls,
        actor: Actor,
        *,
        round_id: str,
        merchant_id: str,
        prize_sku: str,
        terms: DrawTerms,
        now: datetime,
    ) -> DrawRound:
        """Put a round on sale (its merchant or the platform).

        Raises:
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: Blank ids, or terms that are not :class:`DrawTerms`.
            DeadlinePassed: The sell-by time has already passed.

        """
        check_creation(
            actor,
            now,
            ids={"round_id": round_id, "merchant_id": merchant_id, "prize_sku": prize_sku},
            merchant_id=merchant_id,
            terms=terms,
            terms_type=DrawTerms,
        )
        if now >= terms.sell_by:
            raise DeadlinePassed(round_id, "create", "new", terms.sell_by, now)
        draw_round = cls(id=round_id, merchant_id=merchant_id, prize_sku=prize_sku, terms=terms)
        draw_round._record(
            DrawRoundCreated, now, actor, merchant_id=merchant_id, prize_sku=prize_sku, terms=terms
        )
        return draw_round

    # ----------------------------------------------------------------- reading

    @property
    def held(self) -> int:
        """Shares held for orders not paid yet."""
        return self._held_shares

    @property
    def remaining(self) -> int:
        """Shares nobody holds or paid for."""
        return self.terms.share_count - self.sold - self.held

    @property
    def is_final(self) -> bool:
        """Whether the round was fulfilled, forfeited or went unsold."""
        return DRAW_ROUND_PROCESS.is_final(self.state)

    @property
    def due_at(self) -> datetime | None:
        """When :meth:`expire` next has something to do (the sell-by, or the address due)."""
        if self.state == _R.SELLING:
            return self.terms.sell_by
        if self.state == _R.AWAITING_ADDRESS:
            return self.address_due
        return None

    def purchase(self, order_id: str) -> SharePurchase:
        """The purchase made by ``order_id``.

        Raises:
            NotFound: No such order in this round.

        """
        index = self._index.get(order_id)
        if index is None:
            raise NotFound("lucky-draw order", order_id)
        return self.purchases[index]

    def paid_purchases(self) -> list[SharePurchase]:
        """Paid purchases, in payment order (their numbers ascend)."""
        return [self.purchases[index] for index in self._paid]

    def holder(self, number: int) -> SharePurchase:
        """The paid purchase holding share ``number``.

        Raises:
            NotFound: Nobody holds that number.

        """
        paid = self.paid_purchases()
        firsts = [p.first for p in paid if p.first is not None]
        at = bisect.bisect_right(firsts, number) - 1
        if at < 0 or number not in paid[at].numbers:
            raise NotFound("share number", number)
        return paid[at]

    def verify(self) -> bool:
        """Recompute the draw from the round's stored purchases and record alone.

        Returns:
            ``True`` if A's terms are those of the stored purchases, the winning number
            follows from A and B, and the recorded winner holds it; ``False`` otherwise
            (including before the draw).

        """
        record = self.record
        if record is None:
            return False
        times = [p.paid_at for p in self.paid_purchases() if p.paid_at is not None]
        if a_terms(times) != record.a_terms or record.recompute() != record.winning_number:
            return False
        try:
            holder = self.holder(record.winning_number)
        except NotFound:
            return False
        return (holder.order_id, holder.buyer_id) == (record.winner_order_id, record.winner_id)

    # ----------------------------------------------------------------- commands

    def reserve(self, actor: Actor, *, order_id: str, quantity: int, now: datetime) -> None:
        """Hold ``quantity`` shares for a buyer's order until it is paid.

        Raises:
            Forbidden: The actor is not a buyer.
            InvalidInput: A blank or reused order id, or a bad quantity.
            TransitionNotAllowed: The round is no longer selling.
            DeadlinePassed: The sell-by time has passed.
            OutOfStock: More shares than remain (``available`` says how many do).

        """
        authorize(actor, {ActorKind.BUYER}, "reserve", self.id)
        check_now(now)
        text("order_id", order_id)
        positive_count("quantity", quantity)
        if order_id in self._index:
            raise InvalidInput("order_id", order_id, "this order already reserved shares")
        dest = DRAW_ROUND_PROCESS.fire(self.state, "reserve", self, subject_id=self.id)
        self._before_sell_by("reserve", now)
        if quantity > self.remaining:
            raise OutOfStock(self.id, quantity, self.remaining, "reserve")
        self._index[order_id] = len(self.purchases)
        self.purchases.append(SharePurchase(order_id, actor.id, quantity, ShareStatus.HELD, now))
        self._held_shares += quantity
        self.state = dest
        self._record(
            SharesReserved, now, actor, order_id=order_id, buyer_id=actor.id, quantity=quantity
        )

    def pay(
        self, actor: Actor, *, order_id: str, amount: Money, payment_ref: str, now: datetime
    ) -> str:
        """The order's payment succeeded: its held shares get their numbers.

        Numbers are given in payment order, consecutively from the round's first number. The
        payment for the last share sells the round out.

        Returns:
            The round's state afterwards (``"sold_out"`` or ``"selling"``).

        Raises:
            Forbidden: A buyer paying for another's order, or a merchant or carrier.
            NotFound: No such order in this round.
            InvalidInput: An amount other than ``k`` times the share price, a blank reference.
            TransitionNotAllowed: The round is no longer selling.
            DeadlinePassed: The sell-by time has passed.
            RuleViolation: The shares were already paid for or released.

        """
        authorize(actor, _PAYERS, "pay", self.id)
        check_now(now)
        text("payment_ref", payment_ref)
        index, held = self._held(order_id, "pay", actor)
        money("amount", amount, self.terms.share_price.currency)
        expected = self.terms.share_price * held.quantity
        if amount != expected:
            raise InvalidInput("amount", amount, f"{held.quantity} shares cost {expected}")
        dest = DRAW_ROUND_PROCESS.fire(self.state, "pay", self, held.quantity, subject_id=self.id)
        self._before_sell_by("pay", now)
        first = self.terms.first_number + self.sold
        self.purchases[index] = attrs.evolve(
            held,
            status=ShareStatus.PAID,
            first=first,
            amount=amount,
            payment_ref=payment_ref,
            paid_at=now,
        )
        self._paid.append(index)
        self.sold += held.quantity
        self._held_shares -= held.quantity
        self.state = dest
        self._record(
            SharesPaid,
            now,
            actor,
            order_id=order_id,
            first=first,
            quantity=held.quantity,
            payment_ref=payment_ref,
        )
        if dest == _R.SOLD_OUT:
            self.sold_out_at = now
            self._record(RoundSoldOut, now, actor)
        return dest

    def release(self, actor: Actor, *, order_id: str, now: datetime) -> None:
        """Put an unpaid order's held shares back on sale (cancelled or timed out).

        Raises:
            Forbidden: A buyer releasing another's order, or a merchant or carrier.
            NotFound: No such order in this round.
            TransitionNotAllowed: The round is no longer selling.
            RuleViolation: The shares were paid for or already released.

        """
        authorize(actor, _PAYERS, "release", self.id)
        check_now(now)
        index, held = self._held(order_id, "release", actor)
        dest = DRAW_ROUND_PROCESS.fire(self.state, "release", self, subject_id=self.id)
        self.purchases[index] = attrs.evolve(held, status=ShareStatus.RELEASED)
        self._held_shares -= held.quantity
        self.state = dest
        self._record(SharesReleased, now, actor, order_id=order_id)

    def draw(self, actor: Actor, *, number: PublicNumber | None, now: datetime) -> DrawRecord:
        """Draw the winning number from A (stored purchases) and B (a public number).

        Args:
            actor: The system or the platform.
            number: B, from the :class:`~ecommerce_core.ports.RandomnessSource`, published at
                or after the sell-out; ``None`` if none is available yet.
            now: When the draw runs.

        Returns:
            The stored record; the winning order moves on with ``draw_won``, the other paid
            orders with ``draw_lost``.

        Raises:
            Forbidden: The actor is not the system or the platform.
            TransitionNotAllowed: The round is not sold out (or was drawn already).
            DrawInputsMissing: No public number yet, and the fallback delay has not passed.
            InvalidInput: A number published before the round sold out (it was known in
                advance) or after ``now``, or not a :class:`PublicNumber`.

        """
        authorize(actor, _SYSTEM, "draw", self.id)
        check_now(now)
        dest = DRAW_ROUND_PROCESS.fire(self.state, "draw", self, subject_id=self.id)
        sold_out_at = self.sold_out_at
        assert sold_out_at is not None  # noqa: S101  # set when the round sold out
        if number is None:
            fallback = self.terms.b_fallback_after
            if fallback is None or now < sold_out_at + fallback:
                raise DrawInputsMissing(self.id, self.state, ["B (a public number)"])
            b, source, published = 0, "fallback", None
        elif not isinstance(number, PublicNumber):
            raise InvalidInput("number", number, "must be a PublicNumber or None")
        elif number.published_at < sold_out_at:
            raise InvalidInput(
                "number", number, "published before the round sold out: it was known in advance"
            )
        elif number.published_at > now:
            raise InvalidInput("number", number, "published after the draw's own time")
        else:
            b, source, published = number.value, number.source, number.published_at
        paid = self.paid_purchases()
        terms = a_terms([p.paid_at for p in paid if p.paid_at is not None])
        drawn = winning_number(sum(terms), b, self.terms.share_count, self.terms.first_number)
        winner = self.holder(drawn)
        record = DrawRecord(
            terms,
            b,
            source,
            published,
            self.terms.share_count,
            self.terms.first_number,
            drawn,
            winner.order_id,
            winner.buyer_id,
            now,
        )
        self.record, self.state = record, dest
        self.address_due = now + self.terms.address_window
        self._record(
            DrawCompleted,
            now,
            actor,
            record=record,
            losing_order_ids=tuple(p.order_id for p in paid if p is not winner),
            address_due=self.address_due,
        )
        return record

    def confirm_address(self, actor: Actor, *, address: str, now: datetime) -> None:
        """The winner says where the prize goes, before the address deadline.

        Raises:
            Forbidden: Anyone but the winner.
            InvalidInput: A blank address.
            TransitionNotAllowed: Not drawn yet, or already confirmed or forfeited.
            DeadlinePassed: The address deadline has passed.

        """
        winner = self.record.winner_id if self.record is not None else None
        authorize(actor, {ActorKind.BUYER}, "confirm_address", self.id, buyer_id=winner)
        check_now(now)
        text("address", address, 500)
        dest = DRAW_ROUND_PROCESS.fire(self.state, "confirm_address", self, subject_id=self.id)
        assert self.record is not None  # noqa: S101  # drawn in this state
        assert self.address_due is not None  # noqa: S101  # set with the record
        if now >= self.address_due:
            raise DeadlinePassed(self.id, "confirm_address", self.state, self.address_due, now)
        self.address, self.state = address, dest
        self._record(
            AddressConfirmed, now, actor, order_id=self.record.winner_order_id, address=address
        )

    def expire(self, now: datetime, actor: Actor | None = None) -> tuple[Release, ...] | None:
        """Act on a passed deadline: an unsold round is refunded, a silent winner forfeits.

        Idempotent: with nothing due, nothing happens and ``None`` is returned.

        Returns:
            What to give back: for an unsold round, every order's payment (against its own
            payment) and holdings, and the prize's stock; for a forfeit, the prize's stock
            and, under :attr:`ForfeitPolicy.REFUND_WINNER`, the winning order's payment.
            ``None`` if nothing was due.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, "expire", self.id)
        check_now(now)
        due = self.due_at
        if due is None or now < due:
            return None
        if self.state == _R.SELLING:
            dest = DRAW_ROUND_PROCESS.fire(self.state, "expire", self, subject_id=self.id)
            left = [p for p in self.purchases if p.status is not ShareStatus.RELEASED]
            items: list[Release] = []
            for p in left:
                items.extend(
                    releases_for_order(
                        self.id,
                        order_id=p.order_id,
                        buyer_id=p.buyer_id,
                        paid=p.amount,
                        payment_ref=p.payment_ref,
                    )
                )
            releases = (*items, *releases_for_stock(self.id, self.id))
            self.state, self.releases = dest, releases
            self._record(
                RoundUnsold,
                due,
                actor,
                order_ids=tuple(p.order_id for p in left),
                releases=releases,
            )
            return releases
        dest = DRAW_ROUND_PROCESS.fire(self.state, "forfeit", self, subject_id=self.id)
        assert self.record is not None  # noqa: S101  # drawn in this state
        winner = self.purchase(self.record.winner_order_id)
        releases = releases_for_stock(self.id, self.id)
        if self.terms.on_forfeit is ForfeitPolicy.REFUND_WINNER:
            releases += releases_for_order(
                self.id,
                order_id=winner.order_id,
                buyer_id=winner.buyer_id,
                paid=winner.amount,
                payment_ref=winner.payment_ref,
            )
        self.state, self.releases = dest, releases
        self._record(PrizeForfeited, due, actor, order_id=winner.order_id, releases=releases)
        return releases

    # ----------------------------------------------------------------- internals

    def _before_sell_by(self, command: str, now: datetime) -> None:
        if now >= self.terms.sell_by:
            raise DeadlinePassed(self.id, command, self.state, self.terms.sell_by, now)

    def _held(self, order_id: str, command: str, actor: Actor) -> tuple[int, SharePurchase]:
        text("order_id", order_id)
        index = self._index.get(order_id)
        if index is None:
            raise NotFound("lucky-draw order", order_id)
        held = self.purchases[index]
        if actor.kind is ActorKind.BUYER:
            authorize(actor, {ActorKind.BUYER}, command, self.id, buyer_id=held.buyer_id)
        if held.status is not ShareStatus.HELD and self.state == _R.SELLING:
            raise RuleViolation(self.id, command, self.state, f"{order_id!r} is {held.status}")
        return index, held
