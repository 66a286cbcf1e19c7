"""Group buying (团购) wired into orders, payments (the ledger) and stock.

:class:`GroupBuys` is the group-buy part of
:class:`~ecommerce_core.services.campaigns.CampaignService`: the pure
:class:`~ecommerce_core.campaigns.group_buy.GroupBuy` aggregate decides, this code loads and
saves it, moves its buyers' orders (``order.group_buy`` process) and acts on what it gives
back. Buyers pay the current tier's price (:attr:`GroupBuyPayment.CURRENT_TIER
<ecommerce_core.campaigns.group_buy.GroupBuyPayment.CURRENT_TIER>`); the deposit policy is
not offered through the service yet (:meth:`GroupBuys.create_group_buy` refuses it).

The paths, and what each does exactly once:

- **Order.** :meth:`GroupBuys.place_group_buy_order` prices one SKU at the tier the buyer's
  own units reach now (:meth:`GroupBuy.quote`) and reserves its stock. Nothing counts toward
  a tier yet: only a completed payment does.
- **Pay.** :meth:`GroupBuys.pay` checks the campaign first (window, state, cap, and that the
  order's price is still at least the current quote) on a copy, so a refused payment charges
  nothing. A completed payment joins the order (it waits in ``awaiting_group``). A declined
  payment leaves the order unpaid and outside the campaign; a pending one too, until its
  notification completes it: it then joins as if paid at once. Duplicate notifications find
  the order already joined and do nothing. A payment that completes when the campaign no
  longer takes it (closed, or full) fails the order (``group_failed``), refunds it from its
  own payment and gives its stock back.
- **Cap.** The payment whose join reaches the cap closes the campaign at once: it succeeds.
- **Cancel.** A paid order cancelled before the window ends leaves the campaign
  (:meth:`GroupBuy.withdraw`, its units no longer count), is refunded from its own payment
  (keyed ``<campaign>:refund:<order>``) and gives its stock back. An unpaid order cancelled
  or timed out gives its stock back as any order does; it never counted.
- **Close.** :meth:`GroupBuys.expire_due` closes every campaign whose window has ended. On
  success the final tier is fixed: each order is refunded the difference between what it
  paid and the final price (keyed ``<campaign>:difference:<order>``) and fires
  ``group_succeeded`` (it may ship). On failure (minimum missed, or
  :meth:`GroupBuys.cancel_group_buy`) each order fires ``group_failed``, is refunded all it
  paid from its own payment (keyed ``<campaign>:refund:<order>``), and gives its stock back.
- **Late.** An unpaid order of a closed campaign cannot be paid any more (refused before
  charging); it times out as usual. A refund the provider declined is tried again by
  ``reconcile(order_id, retry_failed=True)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.campaigns.group_buy import (
    AWAITING_GROUP,
    GROUP_BUY_ORDER_PROCESS,
    GroupBuy,
    GroupBuyPayment,
    GroupBuyState,
    GroupBuyTerms,
    Participation,
    ParticipationStatus,
)
from ecommerce_core.errors import EcommerceCoreError, InvalidInput, VersionConflict
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import GroupBuyRepository, StockItem
from ecommerce_core.releases import Release, ReleaseKind, releases_for_order
from ecommerce_core.services._parts import required
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "GroupBuyOrderFailed",
    "GroupBuyOrderSucceeded",
    "GroupBuys",
]

_SYSTEM: Final = Actor.system("campaigns")
_SETTLERS: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})
_RETRIES: Final = 5
_SALES_MODE: Final = "group_buy"


@attrs.frozen(kw_only=True)
class GroupBuyOrderSucceeded(DomainEvent):
    """A group-buy order may ship: its campaign succeeded (``group_succeeded``).

    Attributes:
        campaign_id: The group buy.
        unit_price: The final unit price.
        refund: The difference refunded to the buyer (zero if they paid the final price).

    """

    campaign_id: str
    unit_price: Money
    refund: Money


@attrs.frozen(kw_only=True)
class GroupBuyOrderFailed(DomainEvent):
    """A group-buy order was cancelled by its campaign (``group_failed``) and refunded.

    Attributes:
        campaign_id: The group buy.
        reason: Why (minimum missed, campaign cancelled, or the campaign refused a late payment).

    """

    campaign_id: str
    reason: str


class GroupBuys(PaymentService):
    """The group-buy use cases: a part of ``CampaignService``, never built alone.

    Every override passes orders of other processes on (``super()``) unchanged, so the parts
    of :class:`~ecommerce_core.services.campaigns.CampaignService` compose in any order.

    Attributes:
        group_buys: Where group-buy campaigns are stored (``None``: group buying is not
            offered).

    """

    __slots__ = ()
    group_buys: GroupBuyRepository | None

    @property
    def _group_buys(self) -> GroupBuyRepository:
        return required(self.group_buys, "group_buys", "group buying")

    # ----------------------------------------------------------------- group buying

    def create_group_buy(
        self, actor: Actor, sku: str, terms: GroupBuyTerms, *, campaign_id: str | None = None
    ) -> GroupBuy:
        """Set up a group buy for one SKU of the catalogue, by its merchant or the platform.

        Returns:
            The campaign, running (stored).

        Raises:
            NotFound: An unknown SKU.
            InvalidInput: Terms that are not :class:`GroupBuyTerms`, or that take a deposit
                (not offered through the service yet).
            Forbidden: Another merchant, a buyer, a carrier or the system.
            Conflict: ``campaign_id`` is taken.

        """
        if not isinstance(terms, GroupBuyTerms):
            raise InvalidInput("terms", terms, "must be GroupBuyTerms")
        if terms.payment is not GroupBuyPayment.CURRENT_TIER:
            raise InvalidInput(
                "terms.payment",
                terms.payment.value,
                "only current_tier is offered through the service (the deposit policy is not)",
            )
        product = self.catalog.product(sku)
        repository = self._group_buys
        campaign = GroupBuy.create(
            actor,
            campaign_id=campaign_id or self.ids.next_id("group_buy"),
            merchant_id=product.merchant_id,
            sku=product.sku,
            terms=terms,
            now=self.clock.now(),
        )
        repository.add(campaign)
        self.publisher.publish(campaign.collect_events())
        return campaign

    def group_buy(self, campaign_id: str) -> GroupBuy:
        """The campaign, as stored.

        Raises:
            NotFound: No such campaign.

        """
        return self._group_buys.get(campaign_id)

    def place_group_buy_order(self, buyer: Actor, campaign_id: str, quantity: int = 1) -> Order:
        """Place a group-buy order (``order.group_buy``) at the current tier, stock reserved.

        The order's unit price is the tier reached with the buyer's own units now; it counts
        toward the tiers once paid (:meth:`pay`). Nothing is reserved or stored if refused.

        Raises:
            InvalidInput: Not a buyer, a bad quantity.
            NotFound: An unknown campaign.
            RuleViolation: The window has not opened yet.
            DeadlinePassed: The window has closed.
            TransitionNotAllowed: The campaign already succeeded or failed.
            OutOfStock: The cap would be passed, or not enough stock.

        """
        if not isinstance(buyer, Actor) or buyer.kind is not ActorKind.BUYER:
            raise InvalidInput("buyer", buyer, "only a buyer places a group-buy order")
        campaign = self._group_buys.get(campaign_id)
        product = self.catalog.product(campaign.sku)
        now = self.clock.now()
        quote = campaign.quote(buyer.id, quantity)
        unit_price = campaign.terms.unit_price_at(campaign.level_after(buyer.id, quantity))
        order_id = self.ids.next_id("order")
        campaign.join(  # on a copy, never saved: the window, state and cap, checked now
            buyer, order_id=order_id, quantity=quantity, paid=quote, payment_ref="check", now=now
        )
        order = Order.place(
            order_id=order_id,
            buyer_id=buyer.id,
            merchant_id=campaign.merchant_id,
            lines=[
                OrderLine(
                    "1",
                    campaign.sku,
                    quantity,
                    unit_price,
                    category=product.category,
                )
            ],
            now=now,
            policy=self.policy,
            process=GROUP_BUY_ORDER_PROCESS,
            payment_method=PaymentMethod.ONLINE.value,
            terms=PricingTerms(
                sales_mode=_SALES_MODE, cod_allowed=False, promotion_ids=(campaign.id,)
            ),
        )
        self.inventory.reserve(
            order.id, [StockItem(ln.line_id, ln.sku, ln.quantity) for ln in order.lines]
        )
        try:
            self.orders.add(order)
        except BaseException:
            self.inventory.release(order.id)
            raise
        return self._publish(order)

    def cancel_group_buy(self, campaign_id: str, actor: Actor, *, reason: str) -> GroupBuy:
        """The merchant or platform calls a running campaign off: every order is refunded.

        Each paid order fires ``group_failed``, is refunded from its own payment and gives its
        stock back, once.

        Raises:
            NotFound: An unknown campaign.
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: A blank reason.
            TransitionNotAllowed: The campaign already succeeded or failed.
            VersionConflict: The campaign changed meanwhile; nothing changed, try again.

        """
        campaign = self._group_buys.get(campaign_id)
        version = campaign.version
        releases = campaign.cancel(actor, reason=reason, now=self.clock.now())
        self._group_buys.save(campaign, version)
        self.publisher.publish(campaign.collect_events())
        self._gb_fail(campaign.id, releases, reason=f"the group buy was cancelled: {reason}")
        return campaign

    # ----------------------------------------------------------------- overrides

    def pay(
        self, order_id: str, actor: Actor, *, key: str | None = None, capture: bool = True
    ) -> Order:
        """Pay as before; a group-buy order's completed payment joins its campaign.

        The campaign is checked before the provider is asked; should it refuse the payment
        afterwards (it closed or filled up in between), the order fails with ``group_failed``,
        is refunded from its own payment, and the refusal is raised.

        Raises:
            InvalidInput: A group-buy order authorized only (``capture=False``): only a
                completed payment counts; or its price is below the current quote (others
                withdrew since it was placed: cancel it and order again).
            DeadlinePassed, TransitionNotAllowed, RuleViolation: The campaign no longer takes
                the payment (checked before charging, or after: then refunded).
            OutOfStock: Joining would pass the campaign's cap.
            PaymentNotCompleted: Declined or pending; the order does not count yet.

        """
        order = self.orders.get(order_id)
        if order.process.name != GROUP_BUY_ORDER_PROCESS.name:
            return super().pay(order_id, actor, key=key, capture=capture)
        if not capture:
            raise InvalidInput("capture", capture, "a group-buy order is paid in full at once")
        if order.state == OrderState.PENDING_PAYMENT:
            rehearsal = self._group_buys.get(_campaign_of(order))
            rehearsal.join(
                Actor.buyer(order.buyer_id),
                order_id=order.id,
                quantity=_quantity(order),
                paid=order.total,
                payment_ref="check",
                now=self.clock.now(),
            )
        super().pay(order.id, actor, key=key)
        self._gb_join(order.id)
        return self.orders.get(order.id)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; a paid order waiting for its group buy also leaves the campaign.

        Its units stop counting, it is refunded from its own payment (keyed by its
        :class:`~ecommerce_core.releases.Release`) and its stock goes back, once.

        Raises:
            DeadlinePassed: The window has closed (the final tier is being fixed).

        """
        order = self.orders.get(order_id)
        if order.process.name != GROUP_BUY_ORDER_PROCESS.name or order.state != AWAITING_GROUP:
            return super().cancel(order_id, actor, reason)
        now = self.clock.now()
        order.cancel(actor, reason=reason, now=now)  # on the loaded copy: refused here, or fine
        releases: tuple[Release, ...] = ()
        for _ in range(_RETRIES):
            campaign = self._group_buys.get(_campaign_of(order))
            joined = _participation(campaign, order.id)
            if joined is None:
                break  # never joined (refused and failed meanwhile): nothing to withdraw
            if joined.status is ParticipationStatus.WITHDRAWN:
                releases = releases_for_order(  # an earlier cancel, interrupted: finish it
                    campaign.id,
                    order_id=order.id,
                    buyer_id=joined.buyer_id,
                    paid=joined.paid,
                    payment_ref=joined.payment_ref,
                )
                break
            version = campaign.version
            releases = campaign.withdraw(_SYSTEM, order_id=order.id, now=now)
            try:
                self._group_buys.save(campaign, version)
            except VersionConflict:
                continue
            self.publisher.publish(campaign.collect_events())
            break
        else:  # pragma: no cover - contention beyond retries
            raise VersionConflict(_campaign_of(order), -1, None)
        for item in releases:
            if item.kind is ReleaseKind.REFUND:
                self._gb_refund(item, reason="withdrew from the group buy")
        return super().cancel(order_id, actor, reason)  # stock back; nothing more to refund

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback as before; a group-buy order it paid then joins.

        A repeat finds the order already joined and changes nothing. If the campaign no longer
        takes the payment, the order fails and is refunded from that payment.
        """
        outcome = super().handle_notification(payload)
        order = self.orders.get(self.payment_records.get(outcome.payment_id).order_id)
        if (
            order.process.name != GROUP_BUY_ORDER_PROCESS.name
            or order.state != AWAITING_GROUP
            or order.payment is None
        ):
            return outcome
        with contextlib.suppress(EcommerceCoreError):  # refused: failed and refunded
            self._gb_join(order.id)
        return attrs.evolve(outcome, order_state=self.orders.get(order.id).state)

    def reconcile(self, order_id: str, *, retry_failed: bool = False) -> Order:
        """Reconcile as before; with ``retry_failed`` a declined difference refund is retried."""
        order = super().reconcile(order_id, retry_failed=retry_failed)
        if (
            retry_failed
            and order.process.name == GROUP_BUY_ORDER_PROCESS.name
            and order.payment is not None
            and order.state not in (AWAITING_GROUP, OrderState.CANCELLED)
            and self.group_buys is not None
        ):
            self._gb_retry_difference(order)
        return order

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then close every group buy whose window has ended.

        Idempotent. A campaign that met its minimum succeeds: each order is refunded the
        difference to the final tier and fires ``group_succeeded``; one that missed it fails:
        each order fires ``group_failed`` and gives back what it holds, once. The orders a
        campaign moved are reported too.
        """
        fired = super().expire_due(now)
        if self.group_buys is None:
            return fired
        moment = self.clock.now() if now is None else now
        for campaign_id in self._group_buys.due(moment):
            campaign = self._group_buys.get(campaign_id)
            version = campaign.version
            releases = campaign.expire(moment, _SYSTEM)
            if releases is None:
                continue  # pragma: no cover - due() lists only running campaigns past their end
            try:
                self._group_buys.save(campaign, version)
            except VersionConflict:  # pragma: no cover - a concurrent writer; the next call
                continue
            self.publisher.publish(campaign.collect_events())
            if campaign.state == GroupBuyState.SUCCEEDED:
                fired.extend(self._gb_settle(campaign))
            else:
                fired.extend(
                    self._gb_fail(campaign.id, releases, reason="the group buy missed its minimum")
                )
        return fired

    # ----------------------------------------------------------------- internals

    def _gb_join(self, order_id: str) -> None:
        """Join a paid order to its campaign (once); a refusal fails and refunds it."""
        order = self.orders.get(order_id)
        if order.state != AWAITING_GROUP or order.payment is None:
            return
        campaign_id = _campaign_of(order)
        paid = order.payment
        for _ in range(_RETRIES):
            campaign = self._group_buys.get(campaign_id)
            if _participation(campaign, order.id) is not None:
                return  # joined by an earlier call (a repeated notification)
            version = campaign.version
            try:
                state = campaign.join(
                    Actor.buyer(order.buyer_id),
                    order_id=order.id,
                    quantity=_quantity(order),
                    paid=paid.amount,
                    payment_ref=paid.reference,
                    now=self.clock.now(),
                )
            except EcommerceCoreError as refused:
                self._gb_fail(
                    campaign_id,
                    releases_for_order(
                        campaign_id,
                        order_id=order.id,
                        buyer_id=order.buyer_id,
                        paid=paid.amount,
                        payment_ref=paid.reference,
                    ),
                    reason=f"the group buy refused the payment: {refused}",
                )
                raise
            try:
                self._group_buys.save(campaign, version)
            except VersionConflict:  # pragma: no cover - needs a concurrent writer
                continue
            self.publisher.publish(campaign.collect_events())
            if state == GroupBuyState.SUCCEEDED:
                self._gb_settle(campaign)
            return
        raise VersionConflict(campaign_id, -1, None)  # pragma: no cover - beyond retries

    def _gb_settle(self, campaign: GroupBuy) -> list[Expired]:
        """Refund each order its difference to the final tier and let it ship."""
        settlement = campaign.settlement
        assert settlement is not None  # noqa: S101  # called once the campaign succeeded
        moved: list[Expired] = []
        for line in settlement.lines:
            order = self.orders.get(line.order_id)
            if order.state != AWAITING_GROUP or order.payment is None:
                continue  # pragma: no cover - moved by an earlier, interrupted call
            if line.refund.is_positive:
                self._refund(
                    order.payment.reference,
                    _SYSTEM,
                    _difference_key(campaign.id, order.id),
                    amount=line.refund,
                    reason=f"group buy final price {settlement.unit_price}",
                    automatic=True,
                )
            order = self.orders.get(order.id)
            version = order.version
            order.advance(
                "group_succeeded",
                _SYSTEM,
                allowed=_SETTLERS,
                now=self.clock.now(),
                policy=self.policy,
                event=GroupBuyOrderSucceeded,
                campaign_id=campaign.id,
                unit_price=settlement.unit_price,
                refund=line.refund,
            )
            self.orders.save(order, version)
            self._publish(order)
            self.reconcile(order.id)
            moved.append(Expired(order.id, "group_succeeded", order.state))
        return moved

    def _gb_fail(
        self, campaign_id: str, releases: Iterable[Release], *, reason: str
    ) -> list[Expired]:
        """Fail each order the releases name and act on every release once."""
        by_order: dict[str, list[Release]] = {}
        for item in releases:
            by_order.setdefault(item.reference, []).append(item)
        moved: list[Expired] = []
        for order_id, items in by_order.items():
            order = self.orders.get(order_id)
            if not order.is_final:
                version = order.version
                order.advance(
                    "group_failed",
                    _SYSTEM,
                    allowed=_SETTLERS,
                    now=self.clock.now(),
                    policy=self.policy,
                    event=GroupBuyOrderFailed,
                    campaign_id=campaign_id,
                    reason=reason,
                )
                self.orders.save(order, version)
                self._publish(order)
                moved.append(Expired(order.id, "group_failed", order.state))
            for item in items:
                if item.kind is ReleaseKind.STOCK:
                    self._release_holds(order)  # stock, quota and coupon uses, each once
                elif item.kind is ReleaseKind.REFUND:
                    self._gb_refund(item, reason=reason)
                # QUOTA and COUPON_USES go back with the stock above; REBATE: a group-buy
                # order grants no rebate before it ships, so none is pending.
            self.reconcile(order.id)
        return moved

    def _gb_refund(self, item: Release, *, reason: str) -> None:
        if item.payment_ref and item.amount is not None and item.amount.is_positive:
            self._refund(
                item.payment_ref,
                _SYSTEM,
                item.key,
                amount=item.amount,
                reason=reason,
                automatic=True,
            )

    def _gb_retry_difference(self, order: Order) -> None:
        """Ask again for the part of an order's difference refund the provider declined."""
        assert order.payment is not None  # noqa: S101  # checked by the caller
        campaign_id = _campaign_of(order)
        campaign = self._group_buys.get(campaign_id)
        settlement = campaign.settlement
        if settlement is None:  # pragma: no cover - the order shipped, so its campaign succeeded
            return
        line = next((ln for ln in settlement.lines if ln.order_id == order.id), None)
        if line is None or not line.refund.is_positive:
            return
        key = _difference_key(campaign_id, order.id)
        payment = self.payment_records.get(order.payment.reference)
        tries = [r for r in payment.refunds if r.id == key or r.id.startswith(f"{key}:retry-")]
        if any(r.is_open for r in tries):
            return
        done = sum((r.total for r in tries if r.status == "succeeded"), Money.zero(order.currency))
        missing = min(line.refund - done, payment.refundable)
        if missing.is_positive:
            self._refund(
                payment.id,
                _SYSTEM,
                f"{key}:retry-{len(tries)}",
                amount=missing,
                reason=f"group buy final price {settlement.unit_price}",
                automatic=True,
            )


def _campaign_of(order: Order) -> str:
    """The group buy a group-buy order belongs to (recorded in its pricing terms)."""
    assert order.terms is not None  # noqa: S101  # every group-buy order is placed with terms
    return order.terms.promotion_ids[0]


def _quantity(order: Order) -> int:
    return sum(line.quantity for line in order.lines)


def _participation(campaign: GroupBuy, order_id: str) -> Participation | None:
    return next((p for p in campaign.participations if p.order_id == order_id), None)


def _difference_key(campaign_id: str, order_id: str) -> str:
    return f"{campaign_id}:difference:{order_id}"
