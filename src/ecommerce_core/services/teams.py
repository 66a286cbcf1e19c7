"""Team purchase (拼团) wired into orders, payments (the ledger) and stock.

:class:`TeamPurchases` is the team-purchase part of
:class:`~ecommerce_core.services.campaigns.CampaignService`: the pure
:class:`~ecommerce_core.campaigns.team.Team` aggregate decides, this code loads and saves it,
moves its members' orders (``order.team`` process) and acts on what the team gives back.

The paths, and what each does exactly once:

- **Open.** The leader places a team order (:meth:`CampaignService.place_team_order`, stock
  reserved) and pays it (:meth:`CampaignService.lead_team`): the order reaches
  ``awaiting_team`` and the team opens with the leader's own payment.
- **Join.** A member places a team order naming the team: a place is held for them before
  anything is stored (a full, expired or own team refuses, nothing changes); then they pay
  (:meth:`CampaignService.pay_team_member`). The team is checked *before* the provider is
  asked; should it form, fail or expire meanwhile, the paid order fails and its money
  goes back from its own payment.
- **Formed.** The payment that completes the ``N``-th place forms the team: every member's
  order fires ``team_formed`` and may ship.
- **Unpaid joiner.** A joiner's order cancelled by its buyer, or timed out unpaid, gives its
  place back (``release_slot``) and, as any cancelled order, its stock.
- **Failed.** :meth:`CampaignService.expire_due` expires due teams. A failed team's members'
  orders fire ``team_failed`` (never ``cancel``, so nothing is refunded twice), and the
  team's :class:`~ecommerce_core.releases.Release` items are acted on: each order's stock and
  pricing holds are given back once, and each paid member is refunded *their own* payment,
  keyed by :attr:`Release.key <ecommerce_core.releases.Release.key>`, through the ledger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.campaigns.team import (
    AWAITING_TEAM,
    TEAM_ORDER_PROCESS,
    MemberStatus,
    Team,
    TeamState,
    TeamTerms,
)
from ecommerce_core.errors import (
    DeadlinePassed,
    EcommerceCoreError,
    InvalidInput,
    NotFound,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import StockItem, TeamRepository
from ecommerce_core.releases import Release, ReleaseKind, releases_for_order
from ecommerce_core.services._parts import required, settle
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "TeamOrderFailed",
    "TeamOrderFormed",
    "TeamPurchases",
]

_SYSTEM: Final = Actor.system("campaigns")
_RETRIES: Final = 5
_TEAM_SALES_MODE: Final = "team"


@attrs.frozen(kw_only=True)
class TeamOrderFormed(DomainEvent):
    """A team member's order may ship: its team formed (``team_formed``).

    Attributes:
        team_id: The team.

    """

    team_id: str


@attrs.frozen(kw_only=True)
class TeamOrderFailed(DomainEvent):
    """A team member's order was cancelled because its team failed (``team_failed``).

    Attributes:
        team_id: The team.
        reason: Why (the team expired unformed, or refused the member's payment).

    """

    team_id: str
    reason: str


class TeamPurchases(PaymentService):
    """The team-purchase use cases: a part of ``CampaignService``, never built alone.

    Every override passes orders of other processes on (``super()``) unchanged, so the parts
    of :class:`~ecommerce_core.services.campaigns.CampaignService` compose in any order.

    Attributes:
        teams: Where teams are stored (``None``: team purchase is not offered).

    """

    __slots__ = ()
    teams: TeamRepository | None

    @property
    def _teams(self) -> TeamRepository:
        return required(self.teams, "teams", "team purchase")

    # ----------------------------------------------------------------- team purchase

    def place_team_order(
        self, buyer: Actor, sku: str, quantity: int = 1, *, team_id: str | None = None
    ) -> Order:
        """Place a team order (``order.team``) for one SKU, its stock reserved.

        Without ``team_id`` it is a leader's order: pay it with :meth:`lead_team`. With one,
        the buyer takes a place in that team first; it is held for them until they pay with
        :meth:`pay_team_member`.

        Raises:
            InvalidInput: Not a buyer, a bad quantity.
            NotFound: An unknown SKU or team.
            TeamFull: Every place is held or paid (the error says whether the campaign lets the
                buyer lead a new team instead).
            DeadlinePassed: The team expired.
            AlreadyJoined: The buyer's own team, or one they already hold a place in.
            OutOfStock: Not enough stock.
            VersionConflict: The team changed meanwhile; nothing was stored, try again.

        """
        if not isinstance(buyer, Actor) or buyer.kind is not ActorKind.BUYER:
            raise InvalidInput("buyer", buyer, "only a buyer places a team order")
        product = self.catalog.product(sku)
        now = self.clock.now()
        order = Order.place(
            order_id=self.ids.next_id("order"),
            buyer_id=buyer.id,
            merchant_id=product.merchant_id,
            lines=[
                OrderLine("1", product.sku, quantity, product.unit_price, category=product.category)
            ],
            now=now,
            policy=self.policy,
            process=TEAM_ORDER_PROCESS,
            payment_method=PaymentMethod.ONLINE.value,
            terms=PricingTerms(sales_mode=_TEAM_SALES_MODE, cod_allowed=False),
        )
        team: Team | None = None
        version = 0
        if team_id is not None:
            team = self._teams.get(team_id)
            version = team.version
            team.join(buyer, order_id=order.id, now=now)  # refused: nothing reserved or stored
        self.inventory.reserve(
            order.id, [StockItem(ln.line_id, ln.sku, ln.quantity) for ln in order.lines]
        )
        try:
            if team is not None:
                self._teams.save(team, version)
            self.orders.add(order)
        except BaseException:
            self.inventory.release(order.id)
            raise
        if team is not None:
            self.publisher.publish(team.collect_events())
        return self._publish(order)

    def lead_team(
        self, order_id: str, buyer: Actor, terms: TeamTerms, *, key: str | None = None
    ) -> Team:
        """Pay a leader's team order and open its team (拼团 opened by paying).

        The campaign's end is checked before the provider is asked. The paid order waits in
        ``awaiting_team``.

        Returns:
            The new team, forming.

        Raises:
            InvalidInput: Not a team order, or terms that are not :class:`TeamTerms`.
            RuleViolation: The order already took a place in a team.
            DeadlinePassed: The campaign has ended; nothing was charged.
            PaymentNotCompleted: The payment was declined or is pending; no team opened (pay
                again, or let the order time out).
            Forbidden, TransitionNotAllowed: As for :meth:`pay`.

        """
        if not isinstance(terms, TeamTerms):
            raise InvalidInput("terms", terms, "must be TeamTerms")
        order = self._team_order(order_id)
        if self._teams.team_of(order.id) is not None:
            raise RuleViolation(order.id, "lead_team", order.state, "it already joined a team")
        now = self.clock.now()
        if now >= terms.ends_at:
            raise DeadlinePassed(terms.campaign_id, "open", "new", terms.ends_at, now)
        paid = self._pay_through_provider(order, buyer, key=key)
        assert paid.payment is not None  # noqa: S101  # pay returns a paid order or raises
        team_id = self.ids.next_id("team")
        try:
            team = Team.open(
                _SYSTEM,
                team_id=team_id,
                terms=terms,
                order_id=paid.id,
                amount=paid.payment.amount,
                payment_ref=paid.payment.reference,
                now=self.clock.now(),
                leader_id=paid.buyer_id,
            )
        except EcommerceCoreError as refused:
            self._fail_members(
                team_id,
                releases_for_order(
                    team_id,
                    order_id=paid.id,
                    buyer_id=paid.buyer_id,
                    paid=paid.payment.amount,
                    payment_ref=paid.payment.reference,
                ),
                reason=str(refused),
            )
            raise
        self._teams.add(team)
        self.publisher.publish(team.collect_events())
        return team

    def pay_team_member(self, order_id: str, buyer: Actor, *, key: str | None = None) -> Team:
        """Pay a joiner's team order; the payment that completes the team forms it.

        The team is checked before the provider is asked. If it still refuses the payment
        afterwards (it expired, failed or formed in between), the order fails with
        ``team_failed`` and is refunded from its own payment, and the refusal is raised.

        Returns:
            The team afterwards (``formed`` if this payment completed it).

        Raises:
            NotFound: The order took no place in a team.
            DeadlinePassed, TransitionNotAllowed, RuleViolation: The team no longer takes the
                payment (checked before charging, or after: then refunded).
            PaymentNotCompleted: Declined or pending; the place stays held.
            Forbidden: As for :meth:`pay`.

        """
        order = self._team_order(order_id)
        team_id = self._teams.team_of(order.id)
        if team_id is None:
            raise NotFound("team member order", order.id)
        rehearsal = self._teams.get(team_id)
        rehearsal.pay(
            _SYSTEM,
            order_id=order.id,
            amount=order.total,
            payment_ref="check",
            now=self.clock.now(),
        )
        self._pay_through_provider(order, buyer, key=key)
        return self._member_paid(order.id, team_id)

    def team(self, team_id: str) -> Team:
        """The team, as stored.

        Raises:
            NotFound: No such team.

        """
        return self._teams.get(team_id)

    # ----------------------------------------------------------------- overrides

    def _pay_in_mode(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool
    ) -> Order | None:
        """How :meth:`pay` pays a joiner's team order: through :meth:`pay_team_member`.

        Raises:
            InvalidInput: A leader's team order (pay it with :meth:`lead_team`, which opens
                the team), or a team order authorized only (``capture=False``): a team place is
                taken by a completed payment.

        """
        if order.process.name != TEAM_ORDER_PROCESS.name:
            return super()._pay_in_mode(order, actor, key=key, capture=capture)
        if not capture:
            raise InvalidInput("capture", capture, "a team order is paid in full at once")
        if self._teams.team_of(order.id) is None:
            raise InvalidInput("order_id", order.id, "a leader's team order is paid by lead_team")
        self.pay_team_member(order.id, actor, key=key)
        return self.orders.get(order.id)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; an unpaid joiner's team order also gives its place back."""
        order = super().cancel(order_id, actor, reason)
        self._release_slot(order.id)
        return order

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback as before; a team order it paid then joins its team.

        A joiner whose payment completes late takes their paid place (or, if the team no longer
        takes it, is failed and refunded). A leader's payment that completes only after
        :meth:`lead_team` gave up opened no team: that order fails and is refunded.
        """
        outcome = super().handle_notification(payload)
        order = self.orders.get(self.payment_records.get(outcome.payment_id).order_id)
        if (
            order.process.name != TEAM_ORDER_PROCESS.name
            or order.state != AWAITING_TEAM
            or order.payment is None
        ):
            return outcome
        team_id = self._teams.team_of(order.id)
        if team_id is None:
            self._fail_members(
                order.id,
                releases_for_order(
                    order.id,
                    order_id=order.id,
                    buyer_id=order.buyer_id,
                    paid=order.payment.amount,
                    payment_ref=order.payment.reference,
                ),
                reason="no team was opened with this payment",
            )
        elif self._teams.get(team_id).member(order.id).status is MemberStatus.HELD:
            with contextlib.suppress(EcommerceCoreError):  # refused: failed and refunded
                self._member_paid(order.id, team_id)
        order = self.orders.get(order.id)
        return attrs.evolve(outcome, order_state=order.state)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then settle every team whose deadline has come.

        Idempotent. An unpaid joiner's order that timed out gives its place back first; then
        each due team fails (its members' orders fire ``team_failed``, what it holds is given
        back once) or forms by simulated fill. The orders a team moved are reported too.
        """
        fired = super().expire_due(now)
        if self.teams is None:
            return fired
        moment = self.clock.now() if now is None else now
        for each in fired:
            if each.state == OrderState.CANCELLED:
                self._release_slot(each.order_id)
        for team_id in self._teams.due(moment):
            team = self._teams.get(team_id)
            version = team.version
            releases = team.expire(moment, _SYSTEM)
            if releases is None:
                continue
            try:
                self._teams.save(team, version)
            except VersionConflict:
                continue  # a concurrent writer moved it; the next call settles it
            self.publisher.publish(team.collect_events())
            if team.state == TeamState.FORMED:
                fired.extend(self._form(team))
            fired.extend(self._fail_members(team.id, releases, reason="the team expired unformed"))
        return fired

    # ----------------------------------------------------------------- internals

    def _team_order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order.process.name != TEAM_ORDER_PROCESS.name:
            raise InvalidInput("order_id", order_id, "not a team order (order.team)")
        return order

    def _member_paid(self, order_id: str, team_id: str) -> Team:
        paid = self.orders.get(order_id)
        assert paid.payment is not None  # noqa: S101  # called once the order is paid
        for _ in range(_RETRIES):
            team = self._teams.get(team_id)
            version = team.version
            try:
                state = team.pay(
                    _SYSTEM,
                    order_id=paid.id,
                    amount=paid.payment.amount,
                    payment_ref=paid.payment.reference,
                    now=self.clock.now(),
                )
            except EcommerceCoreError as refused:
                self._fail_members(
                    team_id,
                    releases_for_order(
                        team_id,
                        order_id=paid.id,
                        buyer_id=paid.buyer_id,
                        paid=paid.payment.amount,
                        payment_ref=paid.payment.reference,
                    ),
                    reason=str(refused),
                )
                raise
            try:
                self._teams.save(team, version)
            except VersionConflict:
                continue
            self.publisher.publish(team.collect_events())
            if state == TeamState.FORMED:
                self._form(team)
            return team
        raise VersionConflict(team_id, -1, None)  # pragma: no cover - contention beyond retries

    def _form(self, team: Team) -> list[Expired]:
        moved: list[Expired] = []
        for order_id in team.paid_order_ids():
            order = self.orders.get(order_id)
            if order.state != AWAITING_TEAM:
                continue  # moved by an earlier, interrupted call
            moved.append(
                settle(self, order, "team_formed", _SYSTEM, TeamOrderFormed, team_id=team.id)
            )
        return moved

    def _fail_members(
        self, team_id: str, releases: Iterable[Release], *, reason: str
    ) -> list[Expired]:
        """Fail each order the releases name and act on every release once."""
        by_order: dict[str, list[Release]] = {}
        for item in releases:
            by_order.setdefault(item.reference, []).append(item)
        moved: list[Expired] = []
        for order_id, items in by_order.items():
            order = self.orders.get(order_id)
            if not order.is_final:
                moved.append(
                    settle(
                        self,
                        order,
                        "team_failed",
                        _SYSTEM,
                        TeamOrderFailed,
                        team_id=team_id,
                        reason=reason,
                    )
                )
            self._act_on(order, items)
        return moved

    def _act_on(self, order: Order, items: Iterable[Release]) -> None:
        for item in items:
            if item.kind is ReleaseKind.STOCK:
                self._release_holds(order)  # stock, quota and coupon uses, each once
            elif item.kind is ReleaseKind.REFUND and item.payment_ref and item.amount:
                self._refund(
                    item.payment_ref,
                    _SYSTEM,
                    item.key,
                    amount=item.amount,
                    reason="team failed",
                    automatic=True,
                )
            # QUOTA and COUPON_USES are given back with the stock above; REBATE: no rebate
            # is granted on a team order until it forms, so none is pending here.
        self.reconcile(order.id)

    def _release_slot(self, order_id: str) -> None:
        if self.teams is None:
            return
        team_id = self.teams.team_of(order_id)
        if team_id is None:
            return
        for _ in range(_RETRIES):
            team = self._teams.get(team_id)
            member = team.member(order_id)
            if team.state != TeamState.FORMING or member.status is not MemberStatus.HELD:
                return
            version = team.version
            team.release_slot(_SYSTEM, order_id=order_id, now=self.clock.now())
            try:
                self._teams.save(team, version)
            except VersionConflict:
                continue
            self.publisher.publish(team.collect_events())
            return
