"""Team purchase (拼团 / 拼单): a leader opens a team by paying, members join and pay.

A :class:`Team` belongs to a team campaign, whose :class:`TeamTerms` fix the team size ``N``,
how long a team stays open (24 hours by default) and what happens at the edges. Its process::

    forming 拼团中 ─pay (the Nth paid member)→ formed 已成团
            └────expire (deadline reached)───→ failed 拼团失败  (or formed, simulated, by policy)

- The team's deadline is stored when it opens: ``min(opened + validity, campaign end)``.
- A buyer holds at most one place in a team, and never joins their own team.
- Places held by joiners who have not paid yet (the *lock* count, :attr:`Team.held_count`) are
  tracked apart from paid members (the *complete* count, :attr:`Team.paid_count`); held plus
  paid never exceeds ``N``. The joiner after that gets :class:`~ecommerce_core.errors.TeamFull`,
  which says whether the campaign lets them open a new team instead (:class:`WhenFull`).
- When the deadline passes unformed, every member fails and :meth:`Team.expire` returns what
  to give back, each paid member refunded from *their own* order and payment.
- Simulated fill (模拟成团) is off unless the terms allow it, as a head count of simulated
  members (not a percentage); a team formed that way is flagged (:attr:`Team.simulated_members`).

Team members' orders follow :data:`TEAM_ORDER_PROCESS` (``order.team``): paid orders wait in
``awaiting_team``, which has no ``ship`` transition, until the team forms.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from ecommerce_core.actors import Actor
    >>> from ecommerce_core.money import Money
    >>> now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    >>> terms = TeamTerms("pin-1", size=2, ends_at=now + timedelta(days=7))
    >>> team = Team.open(
    ...     Actor.buyer("alice"), team_id="t-1", terms=terms, order_id="o-1",
    ...     amount=Money.of("9.90", "CNY"), payment_ref="tx-1", now=now,
    ... )
    >>> team.deadline == now + timedelta(hours=24)
    True
    >>> team.join(Actor.buyer("bob"), order_id="o-2", now=now)
    >>> team.pay(Actor.buyer("bob"), order_id="o-2", amount=Money.of("9.90", "CNY"),
    ...          payment_ref="tx-2", now=now)
    'formed'

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
    check_now,
    money,
    text,
)
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    AlreadyJoined,
    DeadlinePassed,
    DefinitionError,
    InvalidInput,
    NotFound,
    RuleViolation,
    TeamFull,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, OrderState
from ecommerce_core.process import Guard, Process, ProcessDefinition, State, Transition
from ecommerce_core.releases import Release, releases_for_order

__all__ = [
    "TEAM",
    "TEAM_ORDER",
    "TEAM_ORDER_PROCESS",
    "TEAM_PROCESS",
    "MemberStatus",
    "Team",
    "TeamFailed",
    "TeamFormed",
    "TeamJoined",
    "TeamMember",
    "TeamMemberPaid",
    "TeamOpened",
    "TeamSlotReleased",
    "TeamState",
    "TeamTerms",
    "WhenFull",
]

DEFAULT_VALIDITY: Final = timedelta(hours=24)


class WhenFull(enum.StrEnum):
    """What a campaign does with a buyer who tries to join a full team."""

    REFUSE = "refuse"
    """Refuse the join."""
    OPEN_NEW_TEAM = "open_new_team"
    """Let the buyer open a new team of their own, as its leader, by paying."""


@attrs.frozen
class TeamTerms:
    """A team campaign's rules, copied onto every team it opens.

    Attributes:
        campaign_id: The team campaign.
        size: ``N``, the members a team needs, its leader included (at least 2).
        ends_at: When the campaign ends; no team outlives it.
        validity: How long a team stays open once its leader paid (24 hours by default).
        when_full: What the joiner after the ``N``-th gets told (:class:`WhenFull`).
        simulated_fill: How many simulated members (模拟成团) may complete a team at its
            deadline, as a head count; 0 (the default) turns simulated fill off.

    Raises:
        DefinitionError: A size below 2, a non-positive validity, a naive ``ends_at``, or a
            simulated fill that is negative or not below the size.

    """

    campaign_id: str
    size: int
    ends_at: datetime
    validity: timedelta = DEFAULT_VALIDITY
    when_full: WhenFull = attrs.field(default=WhenFull.REFUSE, converter=WhenFull)
    simulated_fill: int = 0

    def __attrs_post_init__(self) -> None:
        problems = []
        if type(self.size) is not int or self.size < 2:  # noqa: PLR2004  # a leader and one more
            problems.append(f"size must be a whole number of at least 2, got {self.size!r}")
        if not isinstance(self.validity, timedelta) or self.validity <= timedelta(0):
            problems.append(f"validity must be a positive timedelta, got {self.validity!r}")
        if not isinstance(self.ends_at, datetime) or self.ends_at.utcoffset() is None:
            problems.append(f"ends_at must be a timezone-aware datetime, got {self.ends_at!r}")
        if type(self.simulated_fill) is not int or not 0 <= self.simulated_fill < max(
            self.size if type(self.size) is int else 0, 1
        ):
            problems.append(
                "simulated_fill is a head count from 0 (off) to size - 1, "
                f"got {self.simulated_fill!r}"
            )
        if not isinstance(self.campaign_id, str) or not self.campaign_id.strip():
            problems.append("campaign_id must be a non-empty string")
        if problems:
            raise DefinitionError(f"TeamTerms {self.campaign_id!r}", problems)

    def deadline_for(self, opened_at: datetime) -> datetime:
        """When a team opened at ``opened_at`` expires: ``min(opened + validity, ends_at)``."""
        return min(opened_at + self.validity, self.ends_at)


class MemberStatus(enum.StrEnum):
    """Where one place in a team stands."""

    HELD = "held"
    """Joined, not paid yet: the place is locked for them."""
    PAID = "paid"
    """Paid: a complete member."""
    RELEASED = "released"
    """Gave the place up before paying (their order was cancelled or timed out)."""


@attrs.frozen
class TeamMember:
    """One place taken in a team, by one order.

    Attributes:
        buyer_id: The member.
        order_id: Their order for this team.
        status: Held, paid or released.
        joined_at: When they took the place.
        leader: Whether they opened the team.
        amount: What they paid (once paid).
        payment_ref: Their own payment's reference (once paid): refunds go against it.
        paid_at: When they paid.

    """

    buyer_id: str
    order_id: str
    status: MemberStatus
    joined_at: datetime
    leader: bool = False
    amount: Money | None = None
    payment_ref: str | None = None
    paid_at: datetime | None = None


class TeamState:
    """Names of the team states."""

    FORMING: Final = "forming"
    FORMED: Final = "formed"
    FAILED: Final = "failed"


def _completes_team(team: Team, _context: object) -> str | None:
    if team.paid_count + 1 >= team.size:
        return None
    return f"{team.paid_count + 1} of {team.size} members paid"


def _simulated_fill_completes(team: Team, _context: object) -> str | None:
    if team.terms.simulated_fill and team.paid_count + team.terms.simulated_fill >= team.size:
        return None
    return (
        f"{team.paid_count} of {team.size} members paid and simulated fill allows "
        f"{team.terms.simulated_fill}"
    )


TEAM_GUARDS: Final[Mapping[str, Guard]] = MappingProxyType(
    {"completes_team": _completes_team, "simulated_fill_completes": _simulated_fill_completes}
)

_T = TeamState
TEAM: Final = ProcessDefinition(
    name="team",
    initial=_T.FORMING,
    states=(
        State(_T.FORMING, description="拼团中 the leader paid; members join and pay"),
        State(_T.FORMED, final=True, description="已成团 N members paid (or simulated fill)"),
        State(_T.FAILED, final=True, description="拼团失败 the deadline passed; all refunded"),
    ),
    transitions=(
        Transition("join", _T.FORMING, _T.FORMING),
        Transition("pay", _T.FORMING, _T.FORMED, guards="completes_team"),
        Transition("pay", _T.FORMING, _T.FORMING),
        Transition("release_slot", _T.FORMING, _T.FORMING),
        Transition("expire", _T.FORMING, _T.FORMED, guards="simulated_fill_completes"),
        Transition("expire", _T.FORMING, _T.FAILED),
    ),
)
"""The team process (拼团)."""

TEAM_PROCESS: Final = Process(TEAM, TEAM_GUARDS)
""":data:`TEAM`, validated and compiled."""

AWAITING_TEAM: Final = "awaiting_team"
_O = OrderState
TEAM_ORDER: Final = STANDARD_ORDER.extend(
    "order.team",
    states=[State(AWAITING_TEAM, description="待成团 paid; waits for its team, cannot ship")],
    transitions=[
        Transition("pay", _O.PENDING_PAYMENT, AWAITING_TEAM, guards="payment_covers_total"),
        Transition("team_formed", AWAITING_TEAM, _O.AWAITING_SHIPMENT),
        Transition("team_failed", (_O.PENDING_PAYMENT, AWAITING_TEAM), _O.CANCELLED),
    ],
    remove_transitions=[("pay", _O.PENDING_PAYMENT)],
)
"""The order process of a team member: ``pay → awaiting_team → team_formed → awaiting_shipment``,
or ``team_failed → cancelled``. There is no ``ship`` from ``awaiting_team``."""

TEAM_ORDER_PROCESS: Final = Process(TEAM_ORDER, ORDER_GUARDS)
""":data:`TEAM_ORDER`, validated and compiled."""


# --------------------------------------------------------------------------- events


@attrs.frozen(kw_only=True)
class TeamOpened(DomainEvent):
    """A leader paid and opened a team.

    Attributes:
        campaign_id: The team campaign.
        leader_id: The leader.
        order_id: The leader's order.
        amount: What the leader paid.
        payment_ref: The leader's payment.
        size: Members needed.
        deadline: When the team expires unless formed.

    """

    campaign_id: str
    leader_id: str
    order_id: str
    amount: Money
    payment_ref: str
    size: int
    deadline: datetime


@attrs.frozen(kw_only=True)
class TeamJoined(DomainEvent):
    """A buyer took a place in the team; it is held for them until they pay.

    Attributes:
        buyer_id: The joiner.
        order_id: Their order.

    """

    buyer_id: str
    order_id: str


@attrs.frozen(kw_only=True)
class TeamMemberPaid(DomainEvent):
    """A joiner paid: their place is complete.

    Attributes:
        buyer_id: The member.
        order_id: Their order.
        amount: What they paid.
        payment_ref: Their payment.

    """

    buyer_id: str
    order_id: str
    amount: Money
    payment_ref: str


@attrs.frozen(kw_only=True)
class TeamSlotReleased(DomainEvent):
    """A joiner gave their held place up before paying.

    Attributes:
        buyer_id: The joiner.
        order_id: Their order.

    """

    buyer_id: str
    order_id: str


@attrs.frozen(kw_only=True)
class TeamFormed(DomainEvent):
    """The team formed (成团): its paid members' orders may now ship.

    Attributes:
        order_ids: The paid members' orders, to move on with ``team_formed``.
        simulated_members: Simulated members that completed it (0 when it truly filled).
        releases: What the orders of joiners who had not paid give back (simulated fill
            at the deadline only; empty otherwise).

    """

    order_ids: tuple[str, ...]
    simulated_members: int
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class TeamFailed(DomainEvent):
    """The deadline passed before the team formed: every member failed.

    Attributes:
        order_ids: Every member's order still in the team, to move on with ``team_failed``.
        releases: What they give back; each refund is against that member's own payment.

    """

    order_ids: tuple[str, ...]
    releases: tuple[Release, ...]


# --------------------------------------------------------------------------- aggregate

_OPENERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_RELEASERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})


@attrs.define(eq=False)
class Team(EventRecorder):
    """One team of a team campaign.

    Open one with :meth:`open` once the leader's payment succeeded; then run :meth:`join`,
    :meth:`pay`, :meth:`release_slot` and :meth:`expire`. Every command checks the actor,
    the input and the state before changing anything.

    Attributes:
        id: The team id.
        terms: The campaign's rules, as they were when the team opened.
        leader_id: Who opened it.
        opened_at: When.
        deadline: When it expires unless formed (stored when it opened).
        currency: The currency its members pay in (the leader's).
        state: ``forming``, ``formed`` or ``failed``.
        members: Every place taken, in the order taken (released places included).
        simulated_members: Simulated members that completed it (0 unless simulated fill).
        releases: What its abandonment produced (empty unless it failed or formed simulated).
        version: Raised by one per event.
        events: Events since the last :meth:`collect_events`.

    """

    id: str
    terms: TeamTerms
    leader_id: str
    opened_at: datetime
    deadline: datetime
    currency: str
    state: str = _T.FORMING
    members: list[TeamMember] = attrs.field(factory=list)
    simulated_members: int = 0
    releases: tuple[Release, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def open(
        cls,
        actor: Actor,
        *,
        team_id: str,
        terms: TeamTerms,
        order_id: str,
        amount: Money,
        payment_ref: str,
        now: datetime,
        leader_id: str | None = None,
    ) -> Team:
        """Open a team: its leader has paid.

        Args:
            actor: The leader (a buyer), or the platform or system recording their payment.
            team_id: The new team's id.
            terms: The campaign's rules.
            order_id: The leader's order.
            amount: What the leader paid.
            payment_ref: The leader's payment.
            now: When the payment succeeded.
            leader_id: The leader; defaults to a buyer ``actor``'s id.

        Returns:
            The team, forming, with its deadline stored and a :class:`TeamOpened` event.

        Raises:
            Forbidden: The actor is a merchant or carrier.
            InvalidInput: A blank id, no leader, or an amount that is not positive.
            DeadlinePassed: The campaign has ended.

        """
        authorize(actor, _OPENERS, "open", team_id)
        check_now(now)
        text("team_id", team_id)
        text("order_id", order_id)
        text("payment_ref", payment_ref)
        if not isinstance(terms, TeamTerms):
            raise InvalidInput("terms", terms, "must be TeamTerms")
        if leader_id is None:
            if actor.kind is not ActorKind.BUYER:
                raise InvalidInput("leader_id", leader_id, "name the leader")
            leader_id = actor.id
        elif actor.kind is ActorKind.BUYER and actor.id != leader_id:
            raise InvalidInput("leader_id", leader_id, "a buyer opens a team only for themself")
        text("leader_id", leader_id)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        money("amount", amount, amount.currency, positive=True)
        if now >= terms.ends_at:
            raise DeadlinePassed(team_id, "open", "new", terms.ends_at, now)
        deadline = terms.deadline_for(now)
        team = cls(
            id=team_id,
            terms=terms,
            leader_id=leader_id,
            opened_at=now,
            deadline=deadline,
            currency=amount.currency,
        )
        leader = TeamMember(
            leader_id,
            order_id,
            MemberStatus.PAID,
            now,
            leader=True,
            amount=amount,
            payment_ref=payment_ref,
            paid_at=now,
        )
        team.members.append(leader)
        team._record(
            TeamOpened,
            now,
            actor,
            campaign_id=terms.campaign_id,
            leader_id=leader_id,
            order_id=order_id,
            amount=amount,
            payment_ref=payment_ref,
            size=terms.size,
            deadline=deadline,
        )
        return team

    # ----------------------------------------------------------------- reading

    @property
    def size(self) -> int:
        """``N``: the members the team needs."""
        return self.terms.size

    @property
    def paid_count(self) -> int:
        """Complete members: places paid for (the leader included)."""
        return sum(1 for m in self.members if m.status is MemberStatus.PAID)

    @property
    def held_count(self) -> int:
        """Locked places: held by joiners who have not paid yet."""
        return sum(1 for m in self.members if m.status is MemberStatus.HELD)

    @property
    def places_left(self) -> int:
        """Places nobody holds, paid for, or filled by simulation."""
        return self.size - self.paid_count - self.held_count - self.simulated_members

    @property
    def is_final(self) -> bool:
        """Whether the team formed or failed."""
        return TEAM_PROCESS.is_final(self.state)

    @property
    def due_at(self) -> datetime | None:
        """When :meth:`expire` next has something to do (``None`` once formed or failed)."""
        return self.deadline if self.state == _T.FORMING else None

    def member(self, order_id: str) -> TeamMember:
        """The place taken by ``order_id``.

        Raises:
            NotFound: No place was taken by that order.

        """
        for each in self.members:
            if each.order_id == order_id:
                return each
        raise NotFound("team member order", order_id)

    def paid_order_ids(self) -> tuple[str, ...]:
        """The orders of complete members, in the order they joined."""
        return tuple(m.order_id for m in self.members if m.status is MemberStatus.PAID)

    # ----------------------------------------------------------------- commands

    def join(self, actor: Actor, *, order_id: str, now: datetime) -> None:
        """A buyer takes a place; it is held for them until they :meth:`pay`.

        Raises:
            Forbidden: The actor is not a buyer.
            InvalidInput: A blank order id, or one this team already saw.
            TeamFull: Every place is held or paid (a formed team included); the error says
                whether the campaign lets the buyer open a new team instead.
            DeadlinePassed: The team expired (or failed).
            AlreadyJoined: It is the buyer's own team, or they already hold a place.

        """
        authorize(actor, {ActorKind.BUYER}, "join", self.id)
        check_now(now)
        text("order_id", order_id)
        if self.state == _T.FORMED:
            raise TeamFull(self.id, self.size, self.terms.when_full is WhenFull.OPEN_NEW_TEAM)
        if self.state == _T.FAILED or now >= self.deadline:
            raise DeadlinePassed(self.id, "join", self.state, self.deadline, now)
        if actor.id == self.leader_id:
            raise AlreadyJoined(self.id, actor.id, "a buyer never joins their own team")
        if any(
            m.buyer_id == actor.id and m.status is not MemberStatus.RELEASED for m in self.members
        ):
            raise AlreadyJoined(self.id, actor.id, f"{actor.id!r} already holds a place")
        if any(m.order_id == order_id for m in self.members):
            raise InvalidInput("order_id", order_id, "this order already took a place")
        if self.places_left <= 0:
            raise TeamFull(self.id, self.size, self.terms.when_full is WhenFull.OPEN_NEW_TEAM)
        dest = TEAM_PROCESS.fire(self.state, "join", self, subject_id=self.id)
        self.members.append(TeamMember(actor.id, order_id, MemberStatus.HELD, now))
        self.state = dest
        self._record(TeamJoined, now, actor, buyer_id=actor.id, order_id=order_id)

    def pay(
        self, actor: Actor, *, order_id: str, amount: Money, payment_ref: str, now: datetime
    ) -> str:
        """A joiner's payment succeeded: their held place becomes complete.

        The payment that completes the ``N``-th place forms the team.

        Returns:
            The team's state afterwards (``"formed"`` or ``"forming"``).

        Raises:
            Forbidden: A buyer paying for someone else's place, or a merchant or carrier.
            NotFound: No place was taken by that order.
            InvalidInput: A blank payment reference, or an amount that is not positive.
            CurrencyMismatch: Paid in another currency than the leader.
            TransitionNotAllowed: The team already formed or failed.
            DeadlinePassed: The team's deadline has passed.
            RuleViolation: The place was already paid for or given up.

        """
        authorize(actor, _RELEASERS, "pay", self.id)
        check_now(now)
        text("payment_ref", payment_ref)
        money("amount", amount, self.currency, positive=True)
        index, member = self._held(order_id, "pay")
        if actor.kind is ActorKind.BUYER and actor.id != member.buyer_id:
            authorize(actor, _RELEASERS, "pay", self.id, buyer_id=member.buyer_id)
        dest = TEAM_PROCESS.fire(self.state, "pay", self, subject_id=self.id)
        if now >= self.deadline:
            raise DeadlinePassed(self.id, "pay", self.state, self.deadline, now)
        self.members[index] = attrs.evolve(
            member, status=MemberStatus.PAID, amount=amount, payment_ref=payment_ref, paid_at=now
        )
        self.state = dest
        self._record(
            TeamMemberPaid,
            now,
            actor,
            buyer_id=member.buyer_id,
            order_id=order_id,
            amount=amount,
            payment_ref=payment_ref,
        )
        if dest == _T.FORMED:
            self._record(
                TeamFormed,
                now,
                actor,
                order_ids=self.paid_order_ids(),
                simulated_members=0,
                releases=(),
            )
        return dest

    def release_slot(self, actor: Actor, *, order_id: str, now: datetime) -> None:
        """A joiner gives their held place up before paying (order cancelled or timed out).

        The order's own cancellation gives its stock back; this only frees the place.

        Raises:
            Forbidden: A buyer releasing someone else's place, or a merchant or carrier.
            NotFound: No place was taken by that order.
            TransitionNotAllowed: The team already formed or failed.
            RuleViolation: The place was paid for (a paid member waits for the team), or
                was already given up.

        """
        authorize(actor, _RELEASERS, "release_slot", self.id)
        check_now(now)
        index, member = self._held(order_id, "release_slot")
        if actor.kind is ActorKind.BUYER:
            authorize(actor, _RELEASERS, "release_slot", self.id, buyer_id=member.buyer_id)
        dest = TEAM_PROCESS.fire(self.state, "release_slot", self, subject_id=self.id)
        self.members[index] = attrs.evolve(member, status=MemberStatus.RELEASED)
        self.state = dest
        self._record(TeamSlotReleased, now, actor, buyer_id=member.buyer_id, order_id=order_id)

    def expire(self, now: datetime, actor: Actor | None = None) -> tuple[Release, ...] | None:
        """Settle a team whose deadline has passed: it fails, or forms by simulated fill.

        Idempotent: before the deadline, or once the team formed or failed, nothing happens and
        ``None`` is returned, so each release is produced exactly once.

        On failure every member fails: each paid member's order is refunded what *that member*
        paid, against *their own* payment; every member's order gives back its stock, quota and
        coupon uses, and a paid one its pending rebate. With simulated fill the team forms if
        paid members plus the allowed simulated members reach ``N``; joiners who had not paid
        are left out and their orders give back what they hold.

        Returns:
            What to give back (possibly empty), or ``None`` if nothing was due.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, {ActorKind.SYSTEM, ActorKind.PLATFORM}, "expire", self.id)
        check_now(now)
        if self.state != _T.FORMING or now < self.deadline:
            return None
        at = self.deadline
        dest = TEAM_PROCESS.fire(self.state, "expire", self, subject_id=self.id)
        held = [m for m in self.members if m.status is MemberStatus.HELD]
        if dest == _T.FORMED:
            releases = self._releases(held)
            self.simulated_members = self.size - self.paid_count
            self.members = [
                attrs.evolve(m, status=MemberStatus.RELEASED)
                if m.status is MemberStatus.HELD
                else m
                for m in self.members
            ]
            self.state, self.releases = dest, releases
            self._record(
                TeamFormed,
                at,
                actor,
                order_ids=self.paid_order_ids(),
                simulated_members=self.simulated_members,
                releases=releases,
            )
            return releases
        failing = [m for m in self.members if m.status is not MemberStatus.RELEASED]
        releases = self._releases(failing)
        self.state, self.releases = dest, releases
        self._record(
            TeamFailed,
            at,
            actor,
            order_ids=tuple(m.order_id for m in failing),
            releases=releases,
        )
        return releases

    # ----------------------------------------------------------------- internals

    def _held(self, order_id: object, command: str) -> tuple[int, TeamMember]:
        text("order_id", order_id)
        for index, member in enumerate(self.members):
            if member.order_id == order_id:
                if member.status is not MemberStatus.HELD and self.state == _T.FORMING:
                    raise RuleViolation(
                        self.id, command, self.state, f"order {order_id!r} is {member.status}"
                    )
                return index, member
        raise NotFound("team member order", order_id)

    def _releases(self, members: list[TeamMember]) -> tuple[Release, ...]:
        items: list[Release] = []
        for m in members:
            items.extend(
                releases_for_order(
                    self.id,
                    order_id=m.order_id,
                    buyer_id=m.buyer_id,
                    paid=m.amount if m.status is MemberStatus.PAID else None,
                    payment_ref=m.payment_ref,
                )
            )
        return tuple(items)
