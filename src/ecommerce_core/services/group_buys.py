"""Group buying (团购) wired into orders, payments (the ledger) and stock.

:class:`GroupBuys` is the group-buy part of
:class:`~ecommerce_core.services.campaigns.CampaignService`: the pure
:class:`~ecommerce_core.campaigns.group_buy.GroupBuy` aggregate decides, this code loads and
saves it, moves its buyers' orders (``order.group_buy`` process) and acts on what it gives
back. Buyers pay the current tier's price (:attr:`GroupBuyPayment.CURRENT_TIER
<ecommerce_core.campaigns.group_buy.GroupBuyPayment.CURRENT_TIER>`), or a deposit
(:attr:`GroupBuyPayment.DEPOSIT <ecommerce_core.campaigns.group_buy.GroupBuyPayment.DEPOSIT>`,
``order.group_buy_deposit``: see **Deposit** below).

The paths, and what each does exactly once:

- **Order.** :meth:`GroupBuys.place_group_buy_order` prices one SKU at the tier the buyer's
  own units reach now (:meth:`GroupBuy.quote`) and reserves its stock. Nothing counts toward
  a tier yet: only a completed payment does.
- **Pay.** ``pay`` checks the campaign first (window, state, cap, and that the
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
  paid and the final price (keyed ``<campaign>:difference:<order>``), its price falls to
  the final tier (:meth:`Order.lower_price`, so after-sales refunds what the units finally
  cost) and it fires ``group_succeeded`` (it may ship). On failure (minimum missed, or
  :meth:`GroupBuys.cancel_group_buy`) each order fires ``group_failed``, is refunded all it
  paid from its own payment (keyed ``<campaign>:refund:<order>``), and gives its stock back.
- **Late.** An unpaid order of a closed campaign cannot be paid any more (refused before
  charging); it times out as usual. A refund the provider declined is tried again by
  ``reconcile(order_id, retry_failed=True)``.
- **Deposit.** Under the deposit policy ``pay`` charges the deposit through
  the provider (payment id ``<campaign>:gbdep:<order>``; no payment record): the ledger holds
  it in the buyer's deposit account (payer side), the order fires ``pay_deposit`` and joins.
  At a successful close each order fires ``group_succeeded`` into ``awaiting_balance``; the
  settlement stores its balance and the deadline. ``pay`` then charges the balance
  (``<campaign>:gbbal:<order>``) to the merchant and applies the deposit (deposit account →
  merchant), so the order's money shows the full final price; it fires ``pay_balance`` and
  may ship. The order then records deposit + balance as its payment
  (:meth:`Order.record_payment`) and its line falls to the final price
  (:meth:`Order.lower_price`), so after-sales refunds what the units finally cost;
  :meth:`GroupBuys.refund` gives a refund back from the balance charge first, then the
  deposit charge (``<payment id>:<charge>:keyed-refund:<key>``), once per key, and asks a
  part the provider declined again under a fresh key (noted on the campaign) the next time.
  At the deadline :meth:`GroupBuys.expire_due` fires ``expire_balance`` on each
  unpaid order: its deposit is forfeited (ledger ``forfeit``) or refunded per
  :attr:`GroupBuyTerms.unpaid_balance`, its stock released, once. A failed campaign or a
  cancel before the close refunds the deposit from its own charge; a cancel after the
  balance refunds both. Late or duplicate charges are refunded; ledger keys
  (``<payment id>:<charge>:hold|release|apply|forfeit|capture|refund|return``) make every
  movement happen once, and the provider's callbacks post refunds it answered later (one it
  declined is asked again).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.campaigns.group_buy import (
    AWAITING_BALANCE,
    AWAITING_GROUP,
    GROUP_BUY_DEPOSIT_ORDER_PROCESS,
    GROUP_BUY_ORDER_PROCESS,
    GroupBuy,
    GroupBuyPayment,
    GroupBuyState,
    GroupBuyTerms,
    Participation,
    ParticipationStatus,
    SettlementLine,
    UnpaidBalance,
)
from ecommerce_core.errors import (
    CurrencyMismatch,
    DeadlinePassed,
    EcommerceCoreError,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentNotCompleted,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.payments.base import Refund, RefundStatus
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement, Posting
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import (
    ChargeRequest,
    GatewayStatus,
    GroupBuyRepository,
    RefundRequest,
    StockItem,
)
from ecommerce_core.releases import Release, ReleaseKind, releases_for_order
from ecommerce_core.services._parts import SETTLERS, required, settle
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "GroupBuyBalanceDue",
    "GroupBuyBalanceExpired",
    "GroupBuyBalancePaid",
    "GroupBuyDepositPaid",
    "GroupBuyOrderFailed",
    "GroupBuyOrderSucceeded",
    "GroupBuys",
]

_SYSTEM: Final = Actor.system("campaigns")
_RETRIES: Final = 5
_SALES_MODE: Final = "group_buy"
_DEPOSIT: Final = ":gbdep:"  # not ":deposit:": the auction part answers those callbacks
_BALANCE: Final = ":gbbal:"
_PAYERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_DEPOSIT_PROCESS: Final = GROUP_BUY_DEPOSIT_ORDER_PROCESS.name
_RETRY: Final = ":retry-"
_REFUNDS: Final = frozenset({"release", "refund", "return"})
_MODES: Final = frozenset({GROUP_BUY_ORDER_PROCESS.name, _DEPOSIT_PROCESS})
_BEFORE_BALANCE: Final = frozenset({OrderState.PENDING_PAYMENT, AWAITING_GROUP, AWAITING_BALANCE})
_KEYED: Final = ":keyed-refund:"  # a refund asked through refund(): <charge>:keyed-refund:<key>
_AGAIN: Final = ":again-"  # its request key after the provider declined it: ...:again-<n>
_REFUNDERS: Final = frozenset({ActorKind.MERCHANT, ActorKind.PLATFORM, ActorKind.SYSTEM})
_MAX_KEY: Final = 200  # a refund key's length: its request keys stay well under 1000


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


@attrs.frozen(kw_only=True)
class GroupBuyDepositPaid(DomainEvent):
    """A deposit order's deposit was paid and counts toward the tiers (``pay_deposit``).

    Attributes:
        campaign_id: The group buy.
        amount: The deposit.
        transaction_id: The provider's id of the charge.

    """

    campaign_id: str
    amount: Money
    transaction_id: str


@attrs.frozen(kw_only=True)
class GroupBuyBalanceDue(DomainEvent):
    """The group buy succeeded: a deposit order owes its balance (``group_succeeded``).

    Attributes:
        campaign_id: The group buy.
        unit_price: The final unit price.
        balance_due: Final price times quantity, less the deposit.
        due_at: The deadline for paying it.

    """

    campaign_id: str
    unit_price: Money
    balance_due: Money
    due_at: datetime


@attrs.frozen(kw_only=True)
class GroupBuyBalancePaid(DomainEvent):
    """A deposit order's balance was paid; the deposit is applied; it may ship (``pay_balance``).

    Attributes:
        campaign_id: The group buy.
        amount: The balance paid.
        transaction_id: The provider's id of the charge.

    """

    campaign_id: str
    amount: Money
    transaction_id: str


@attrs.frozen(kw_only=True)
class GroupBuyBalanceExpired(DomainEvent):
    """A deposit order's balance was not paid in time (``expire_balance``): it is cancelled.

    Attributes:
        campaign_id: The group buy.
        deposit: What became of the deposit: ``"forfeit"`` or ``"refund"``.

    """

    campaign_id: str
    deposit: str


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
            InvalidInput: Terms that are not :class:`GroupBuyTerms`.
            Forbidden: Another merchant, a buyer, a carrier or the system.
            Conflict: ``campaign_id`` is taken.

        """
        if not isinstance(terms, GroupBuyTerms):
            raise InvalidInput("terms", terms, "must be GroupBuyTerms")
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
        """Place a group-buy order at the current tier (or for a deposit), stock reserved.

        At the tier price (``order.group_buy``) the order's unit price is the tier reached
        with the buyer's own units now. Under the deposit policy (``order.group_buy_deposit``)
        the line is at the list price (the most it can cost): :meth:`pay` charges the deposit,
        and once the campaign succeeds, the balance to the final price. It counts toward the
        tiers once paid (:meth:`pay`). Nothing is reserved or stored if refused.

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
        deposit = campaign.terms.payment is GroupBuyPayment.DEPOSIT
        unit_price = (
            campaign.terms.list_price
            if deposit
            else campaign.terms.unit_price_at(campaign.level_after(buyer.id, quantity))
        )
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
            process=GROUP_BUY_DEPOSIT_ORDER_PROCESS if deposit else GROUP_BUY_ORDER_PROCESS,
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

    def _pay_in_mode(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool
    ) -> Order | None:
        """How :meth:`pay` pays a group-buy order: its completed payment joins its campaign.

        The campaign is checked before the provider is asked; should it refuse the payment
        afterwards (it closed or filled up in between), the order fails with ``group_failed``,
        is refunded from its own payment, and the refusal is raised.

        A deposit order (``order.group_buy_deposit``) pays its deposit while pending payment
        and its balance once the campaign succeeded; ``key`` is then the attempt's
        idempotency key at the provider (default ``"1"``: after a decline, try a new key).

        Raises:
            InvalidInput: A group-buy order authorized only (``capture=False``): only a
                completed payment counts; or its price is below the current quote (others
                withdrew since it was placed: cancel it and order again).
            TransitionNotAllowed: A deposit order waiting for its campaign to close.
            DeadlinePassed, TransitionNotAllowed, RuleViolation: The campaign no longer takes
                the payment (checked before charging, or after: then refunded).
            OutOfStock: Joining would pass the campaign's cap.
            PaymentNotCompleted: Declined or pending; the order does not count yet.

        """
        if order.process.name == _DEPOSIT_PROCESS:
            if not capture:
                raise InvalidInput("capture", capture, "a deposit or balance is paid at once")
            return self._gbd_pay(order, actor, key or "1")
        if order.process.name != GROUP_BUY_ORDER_PROCESS.name:
            return super()._pay_in_mode(order, actor, key=key, capture=capture)
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
        self._pay_through_provider(order, actor, key=key)
        self._gb_join(order.id)
        return self.orders.get(order.id)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; a paid order waiting for its group buy also leaves the campaign.

        Its units stop counting, it is refunded from its own payment (keyed by its
        :class:`~ecommerce_core.releases.Release`) and its stock goes back, once.

        A deposit order waiting for its campaign gets its deposit back the same way; one whose
        balance was paid gets the balance and the applied deposit back. One awaiting its
        balance cannot be cancelled: its deadline settles it.

        Raises:
            DeadlinePassed: The window has closed (the final tier is being fixed).
            TransitionNotAllowed: A deposit order awaiting its balance.

        """
        order = self.orders.get(order_id)
        if order.process.name == _DEPOSIT_PROCESS and order.state == OrderState.AWAITING_SHIPMENT:
            cancelled = super().cancel(order_id, actor, reason)
            self._gbd_return_paid(cancelled)
            return self.orders.get(order_id)
        if order.process.name not in _MODES or order.state != AWAITING_GROUP:
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

    def refund(
        self,
        order_id: str,
        actor: Actor,
        *,
        key: str,
        amount: Money | None = None,
        lines: Mapping[str, Money] | None = None,
        reason: str = "refund",
    ) -> Refund:
        """Give money back as before; a group-buy deposit order's from its own two charges.

        A deposit order whose balance was paid has no payment record: its money is the
        balance charge and the deposit charge (ledger postings). The refund comes from the
        balance charge first, then the deposit charge, each through the provider under the
        request key ``<charge's payment id>:<transaction>:keyed-refund:<key>`` and posted
        (merchant → buyer, :attr:`Movement.REFUND`) under that ledger key once the provider
        did it, exactly once; a pending one is posted by the provider's callback. A charge
        part the provider declined is noted on the campaign and asked again under a fresh key
        (``...:again-<n>``) the next time ``refund`` is called with ``key``. A part is never
        more than what the charge still holds after the refunds posted from it and those the
        provider left pending (noted on the campaign until their callback settles them). A
        repeat of ``key`` must ask the same total: it is a retry.

        Returns:
            The refund (id ``<campaign>:gbbal:<order>:refund:<key>`` for a deposit order):
            succeeded once every part is posted, failed if the provider declined a part now,
            else pending.

        Raises:
            Forbidden: Not the order's merchant, the platform or the system.
            InvalidInput: A blank key, one over 200 characters or holding ``:again-``,
                ``:retry-`` or ``:keyed-refund:`` (the service's own suffixes), or one already
                used for another total; both or neither of ``amount`` and ``lines``; a zero,
                negative or too large amount; an unknown line.
            CurrencyMismatch: Another currency.
            RuleViolation: Nothing was paid for the order.

        """
        order = self.orders.get(order_id)
        if self.group_buys is None or order.process.name != _DEPOSIT_PROCESS:
            return super().refund(
                order_id, actor, key=key, amount=amount, lines=lines, reason=reason
            )
        wanted = self._gbd_wanted(order, actor, key=key, amount=amount, lines=lines)
        return self._gbd_refund_keyed(order, key=key, wanted=wanted, reason=reason)

    def reconcile(self, order_id: str, *, retry_failed: bool = False) -> Order:
        """Reconcile as before; with ``retry_failed``, a deposit order's declined refunds too.

        A deposit given back (its campaign failed or was cancelled, the order left it, its
        balance was not paid in time) or a late balance refunded, that the provider declined,
        is asked again under a fresh key (``...:retry-again-<n>``) and posted once; one still
        pending at the provider is not asked again. A deposit order cancelled after its
        balance was paid gets back, from each charge, what the charge still holds after the
        refunds posted from it and those pending: a part of the return the provider declined
        (or a pending refund that failed) is asked again under a fresh key.
        """
        order = super().reconcile(order_id, retry_failed=retry_failed)
        if not retry_failed or self.group_buys is None or order.process.name != _DEPOSIT_PROCESS:
            return order
        self._gbd_retry_declined(order)
        if order.state == OrderState.CANCELLED:
            self._gbd_return_paid(order)
        return self.orders.get(order_id)

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback as before; a group-buy order it paid then joins.

        A repeat finds the order already joined and changes nothing. If the campaign no longer
        takes the payment, the order fails and is refunded from that payment.

        A callback for a deposit order's deposit or balance (its payment id carries
        ``:gbdep:`` or ``:gbbal:``) is answered here: a late charge is recorded (or refunded if
        the order no longer takes it), a refund the provider finished is posted; a repeat
        changes nothing.
        """
        if self.group_buys is not None:
            notification = self.payments.parse_notification(payload)
            if _DEPOSIT in notification.payment_id or _BALANCE in notification.payment_id:
                return self._gbd_notification(notification)
        outcome = super().handle_notification(payload)
        try:
            record = self.payment_records.get(outcome.payment_id)
        except NotFound:  # a callback that belongs to no order (an auction deposit)
            return outcome
        order = self.orders.get(record.order_id)
        if (
            order.process.name != GROUP_BUY_ORDER_PROCESS.name
            or order.state != AWAITING_GROUP
            or order.payment is None
        ):
            return outcome
        with contextlib.suppress(EcommerceCoreError):  # refused: failed and refunded
            self._gb_join(order.id)
        return attrs.evolve(outcome, order_state=self.orders.get(order.id).state)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then close every group buy whose window has ended.

        Idempotent. A campaign that met its minimum succeeds: each order is refunded the
        difference to the final tier and fires ``group_succeeded``; one that missed it fails:
        each order fires ``group_failed`` and gives back what it holds, once. The orders a
        campaign moved are reported too. At a deposit campaign's balance deadline every order
        whose balance is unpaid fires ``expire_balance``: its deposit is forfeited or refunded
        per :attr:`GroupBuyTerms.unpaid_balance` and its stock goes back, once.
        """
        fired = super().expire_due(now)
        if self.group_buys is None:
            return fired
        moment = self.clock.now() if now is None else now
        for campaign_id in self._group_buys.due(moment):
            campaign = self._group_buys.get(campaign_id)
            version = campaign.version
            if campaign.state == GroupBuyState.SUCCEEDED:
                fired.extend(self._gbd_close_balances(campaign, moment))
                continue
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
        failed: list[Exception] = []
        for line in settlement.lines:
            order = self.orders.get(line.order_id)
            if order.process.name == _DEPOSIT_PROCESS:
                moved.extend(self._gbd_balance_due(campaign, order, line))
                continue
            try:
                settled = self._gb_settle_order(campaign, line)
            except Exception as error:  # noqa: BLE001  # one order's failure must not strand the rest
                failed.append(error)  # its reconcile finishes it (see _reconciled)
                continue
            if settled is not None:
                moved.append(settled)
        if failed:
            raise failed[0]
        return moved

    def _gb_settle_order(self, campaign: GroupBuy, line: SettlementLine) -> Expired | None:
        """One order of a succeeded campaign: the difference back, the price lowered, shipped.

        Each step is keyed or checked, so a close interrupted half-way is finished by running
        this again (:meth:`reconcile` of the order does, see :meth:`_reconciled`).
        """
        settlement = campaign.settlement
        assert settlement is not None  # noqa: S101  # called once the campaign succeeded
        order = self.orders.get(line.order_id)
        if order.state != AWAITING_GROUP or order.payment is None:
            return None  # settled by an earlier call
        if line.refund.is_positive:
            self._refund(
                order.payment.reference,
                _SYSTEM,
                _difference_key(campaign.id, order.id),
                amount=line.refund,
                reason=f"group buy final price {settlement.unit_price}",
                automatic=True,
            )
        order = self._gb_lower_price(campaign.id, order.id, line.refund)
        moved = settle(
            self,
            order,
            "group_succeeded",
            _SYSTEM,
            GroupBuyOrderSucceeded,
            campaign_id=campaign.id,
            unit_price=settlement.unit_price,
            refund=line.refund,
        )
        self.reconcile(order.id)
        return moved

    def _reconciled(self, order: Order) -> Order:
        """After every reconcile: settle a paid order its succeeded campaign left waiting.

        That happens only when a close was interrupted between saving the campaign and
        settling its orders; every step of the settling is keyed, so nothing happens twice.
        A deposit order whose balance was paid but not recorded on it yet (interrupted) is
        recorded paid and lowered to the final price.
        """
        order = super()._reconciled(order)
        if (
            self.group_buys is not None
            and order.process.name == _DEPOSIT_PROCESS
            and order.state not in _BEFORE_BALANCE
            and not order.is_final
            and order.payment is None
        ):  # its balance was paid, recording it was interrupted: record and lower it now
            self._gbd_paid(self._group_buys.get(_campaign_of(order)), order.id)
            return self.orders.get(order.id)
        if (
            self.group_buys is None
            or order.process.name != GROUP_BUY_ORDER_PROCESS.name
            or order.state != AWAITING_GROUP
            or order.payment is None
        ):
            return order
        campaign = self._group_buys.get(_campaign_of(order))
        if campaign.state != GroupBuyState.SUCCEEDED or campaign.settlement is None:
            return order
        for line in campaign.settlement.lines:
            if line.order_id == order.id and self._gb_settle_order(campaign, line) is not None:
                return self.orders.get(order.id)
        return order  # pragma: no cover - a succeeded campaign settles each of its orders

    def _gb_lower_price(self, campaign_id: str, order_id: str, difference: Money) -> Order:
        """The order's price falls to the final tier (its lines record the cut), saved once.

        The difference was refunded just before (keyed), so reconcile finds nothing more to
        give back; after-sales then refunds a line at the price its units finally cost.
        """
        promotion_id = f"{campaign_id}:final"
        for _ in range(_RETRIES):
            order = self.orders.get(order_id)
            done = any(
                adjustment.promotion_id == promotion_id
                for line in order.lines
                for adjustment in line.adjustments
            )
            if done or not difference.is_positive:
                return order
            lines = order.lines
            cuts = difference.allocate([line.amount.minor for line in lines])
            version = order.version
            order.lower_price(
                _SYSTEM,
                promotion_id=promotion_id,
                reductions={line.line_id: cut for line, cut in zip(lines, cuts, strict=True)},
                now=self.clock.now(),
            )
            try:
                self.orders.save(order, version)
            except VersionConflict:  # pragma: no cover - needs a concurrent writer
                continue
            self._publish(order)
            return order
        raise VersionConflict(order_id, -1, None)  # pragma: no cover - beyond retries

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
                moved.append(
                    settle(
                        self,
                        order,
                        "group_failed",
                        _SYSTEM,
                        GroupBuyOrderFailed,
                        campaign_id=campaign_id,
                        reason=reason,
                    )
                )
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
        order = self.orders.get(item.reference)
        if order.process.name == _DEPOSIT_PROCESS:
            if item.payment_ref:
                self._gbd_release(order, item.payment_ref)
            return
        if item.payment_ref and item.amount is not None and item.amount.is_positive:
            self._refund(
                item.payment_ref,
                _SYSTEM,
                item.key,
                amount=item.amount,
                reason=reason,
                automatic=True,
            )

    # ----------------------------------------------------------------- deposit orders

    def _gbd_pay(self, order: Order, actor: Actor, key: str) -> Order:
        """Pay a deposit order's deposit (pending payment) or balance (awaiting it)."""
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("key", key, "must be a non-empty string")
        if order.state == AWAITING_BALANCE:
            return self._gbd_pay_balance(order, actor, key)
        self._gbd_check(order, "pay_deposit", actor)  # the actor, and pending payment
        campaign = self._group_buys.get(_campaign_of(order))
        amount = campaign.quote(order.buyer_id, _quantity(order))
        campaign.join(  # on a copy, never saved: the window, state and cap, checked now
            Actor.buyer(order.buyer_id),
            order_id=order.id,
            quantity=_quantity(order),
            paid=amount,
            payment_ref="check",
            now=self.clock.now(),
        )
        payment_id = _deposit_id(campaign.id, order.id)
        result = self.payments.charge(
            ChargeRequest(order.id, amount, f"{payment_id}:{key}", payment_id)
        )
        if not result.succeeded:
            raise PaymentNotCompleted(order.id, order.state, result.status.value, result.message)
        self._gbd_record_deposit(order.id, result.transaction_id, amount)
        return self.orders.get(order.id)

    def _gbd_pay_balance(self, order: Order, actor: Actor, key: str) -> Order:
        self._gbd_check(order, "pay_balance", actor)
        campaign = self._group_buys.get(_campaign_of(order))
        line, due_at = _balance_line(campaign, order.id)
        now = self.clock.now()
        if now >= due_at:
            raise DeadlinePassed(order.id, "pay_balance", order.state, due_at, now)
        payment_id = _balance_id(campaign.id, order.id)
        if line.balance_due.is_zero:  # the deposit covers the final price: nothing to charge
            self._gbd_record_balance(order.id, "none", line.balance_due)
            return self.orders.get(order.id)
        result = self.payments.charge(
            ChargeRequest(order.id, line.balance_due, f"{payment_id}:{key}", payment_id)
        )
        if not result.succeeded:
            raise PaymentNotCompleted(order.id, order.state, result.status.value, result.message)
        self._gbd_record_balance(order.id, result.transaction_id, line.balance_due)
        return self.orders.get(order.id)

    def _gbd_check(self, order: Order, trigger: str, actor: Actor) -> None:
        """Raise what firing ``trigger`` by ``actor`` would raise (on a copy, never saved)."""
        rehearsal = self.orders.get(order.id)
        rehearsal.advance(
            trigger,
            actor,
            allowed=_PAYERS,
            now=self.clock.now(),
            policy=self.policy,
            event=GroupBuyDepositPaid,
            campaign_id="check",
            amount=order.total,
            transaction_id="check",
        )

    def _gbd_record_deposit(self, order_id: str, transaction_id: str, amount: Money) -> None:
        """A deposit charge completed: hold it, then join; late or refused: give it back."""
        order = self.orders.get(order_id)
        campaign_id = _campaign_of(order)
        hold = f"{_deposit_id(campaign_id, order.id)}:{transaction_id}:hold"
        if self._gbd_posted(order.id, hold):
            return  # a repeat (a notification after the answer, say)
        buyer = Account.buyer(order.buyer_id)
        self._gbd_post(
            hold, order, buyer, Account.deposit(order.buyer_id), amount, movement=Movement.CAPTURE
        )
        campaign = self._group_buys.get(campaign_id)
        expected = campaign.quote(order.buyer_id, _quantity(order))
        if order.state != OrderState.PENDING_PAYMENT or amount != expected:
            self._gbd_release(order, transaction_id)  # late, duplicate or odd: refunded
            return
        now = self.clock.now()
        settle(
            self,
            order,
            "pay_deposit",
            _SYSTEM,
            GroupBuyDepositPaid,
            now=now,
            campaign_id=campaign_id,
            amount=amount,
            transaction_id=transaction_id,
        )
        for _ in range(_RETRIES):
            campaign = self._group_buys.get(campaign_id)
            version = campaign.version
            try:
                state = campaign.join(
                    Actor.buyer(order.buyer_id),
                    order_id=order.id,
                    quantity=_quantity(order),
                    paid=amount,
                    payment_ref=transaction_id,
                    now=now,
                )
            except EcommerceCoreError as refused:
                self._gb_fail(
                    campaign_id,
                    releases_for_order(
                        campaign_id,
                        order_id=order.id,
                        buyer_id=order.buyer_id,
                        paid=amount,
                        payment_ref=transaction_id,
                    ),
                    reason=f"the group buy refused the deposit: {refused}",
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

    def _gbd_record_balance(self, order_id: str, transaction_id: str, amount: Money) -> None:
        """A balance charge completed: apply the deposit and let it ship; late: refund it."""
        order = self.orders.get(order_id)
        campaign = self._group_buys.get(_campaign_of(order))
        payment_id = _balance_id(campaign.id, order.id)
        capture = f"{payment_id}:{transaction_id}:capture"
        if self._gbd_posted(order.id, capture):
            return  # a repeat
        merchant = Account.merchant(order.merchant_id)
        if amount.is_positive:
            self._gbd_post(
                capture,
                order,
                Account.buyer(order.buyer_id),
                merchant,
                amount,
                movement=Movement.CAPTURE,
            )
        now = self.clock.now()
        joined = _participation(campaign, order.id)
        line = _settlement_line(campaign, order.id)
        due_at = None if campaign.settlement is None else campaign.settlement.balance_due_at
        if (
            order.state != AWAITING_BALANCE
            or joined is None
            or line is None
            or due_at is None
            or now >= due_at
            or amount != line.balance_due
        ):
            if amount.is_positive:  # late, duplicate or odd: refunded from that charge
                self._gbd_refund(order, payment_id, transaction_id, amount, merchant, what="refund")
            return
        settle(
            self,
            order,
            "pay_balance",
            _SYSTEM,
            GroupBuyBalancePaid,
            now=now,
            campaign_id=campaign.id,
            amount=amount,
            transaction_id=transaction_id,
        )
        apply = f"{_deposit_id(campaign.id, order.id)}:{joined.payment_ref}:apply"
        self._gbd_post(
            apply,
            order,
            Account.deposit(order.buyer_id),
            merchant,
            joined.paid,
            movement=Movement.CAPTURE,
        )
        self._gbd_paid(campaign, order.id)
        self.inventory.commit(order.id)  # paid in full: its reserved units leave the stock

    def _gbd_paid(self, campaign: GroupBuy, order_id: str) -> None:
        """A deposit order's balance is in: record it paid and lower it to the final price.

        The order records deposit plus balance as its payment (:meth:`Order.record_payment`,
        reference ``<campaign>:gbbal:<order>``), so after-sales takes requests on it, and its
        lines fall from the list price to the final price (:meth:`Order.lower_price`, an
        ``after_payment`` cut keyed ``<campaign>:final``): ``order.total`` is then what it paid
        and after-sales refunds what its units finally cost. Nothing goes back: the deposit
        and balance were the final price. Both are checked, so a repeat changes nothing.
        """
        line = _settlement_line(campaign, order_id)
        if line is None:  # pragma: no cover - called for an order of the settlement
            return
        promotion_id = f"{campaign.id}:final"
        for _ in range(_RETRIES):
            order = self.orders.get(order_id)
            if order.is_final:
                return  # pragma: no cover - cancelled before an interrupted lowering finished
            version = order.version
            now = self.clock.now()
            order.record_payment(
                _SYSTEM,
                amount=line.final_amount,
                reference=_balance_id(campaign.id, order.id),
                now=now,
            )
            difference = order.total - line.final_amount
            lowered = any(
                a.promotion_id == promotion_id for ln in order.lines for a in ln.adjustments
            )
            if difference.is_positive and not lowered:
                cuts = difference.allocate([ln.amount.minor for ln in order.lines])
                order.lower_price(
                    _SYSTEM,
                    promotion_id=promotion_id,
                    reductions={ln.line_id: cut for ln, cut in zip(order.lines, cuts, strict=True)},
                    now=now,
                )
            if order.version == version:
                return  # paid and lowered already
            try:
                self.orders.save(order, version)
            except VersionConflict:  # pragma: no cover - needs a concurrent writer
                continue
            self._publish(order)
            return
        raise VersionConflict(order_id, -1, None)  # pragma: no cover - beyond retries

    def _gbd_balance_due(
        self, campaign: GroupBuy, order: Order, line: SettlementLine
    ) -> list[Expired]:
        """The campaign succeeded: a deposit order now owes its balance, by the deadline."""
        settlement = campaign.settlement
        assert settlement is not None  # noqa: S101  # called once the campaign succeeded
        assert settlement.balance_due_at is not None  # noqa: S101  # set under the deposit policy
        if order.state != AWAITING_GROUP:
            return []  # pragma: no cover - moved by an earlier, interrupted call
        return [
            settle(
                self,
                order,
                "group_succeeded",
                _SYSTEM,
                GroupBuyBalanceDue,
                campaign_id=campaign.id,
                unit_price=settlement.unit_price,
                balance_due=line.balance_due,
                due_at=settlement.balance_due_at,
            )
        ]

    def _gbd_close_balances(self, campaign: GroupBuy, moment: datetime) -> list[Expired]:
        """At the balance deadline: every unpaid order is cancelled, its deposit settled."""
        settlement = campaign.settlement
        if settlement is None or settlement.balance_due_at is None:
            return []  # pragma: no cover - due() lists a succeeded campaign only for this
        if moment < settlement.balance_due_at:
            return []  # pragma: no cover - due() lists it only once the deadline has come
        policy = campaign.terms.unpaid_balance
        moved: list[Expired] = []
        for line in settlement.lines:
            order = self.orders.get(line.order_id)
            joined = _participation(campaign, order.id)
            if order.state != AWAITING_BALANCE or joined is None:
                continue
            version = order.version
            order.advance(
                "expire_balance",
                _SYSTEM,
                allowed=SETTLERS,
                now=moment,
                policy=self.policy,
                event=GroupBuyBalanceExpired,
                campaign_id=campaign.id,
                deposit=policy.value,
            )
            try:
                self.orders.save(order, version)
            except VersionConflict:  # pragma: no cover - a concurrent writer; the next call
                continue
            self._publish(order)
            if policy is UnpaidBalance.FORFEIT:
                key = f"{_deposit_id(campaign.id, order.id)}:{joined.payment_ref}:forfeit"
                self._gbd_post(
                    key,
                    order,
                    Account.deposit(order.buyer_id),
                    Account.merchant(order.merchant_id),
                    joined.paid,
                    movement=Movement.FORFEIT,
                )
            else:
                self._gbd_release(order, joined.payment_ref)
            self._release_holds(order)
            moved.append(Expired(order.id, "expire_balance", order.state))
        version = campaign.version
        if campaign.close_balances(moment, _SYSTEM):
            with contextlib.suppress(VersionConflict):  # a concurrent writer: the next call
                self._group_buys.save(campaign, version)
                self.publisher.publish(campaign.collect_events())
        return moved

    def _gbd_release(self, order: Order, transaction_id: str) -> None:
        """Give a held deposit back through the provider, once (unless applied or forfeited)."""
        payment_id = _deposit_id(_campaign_of(order), order.id)
        base = f"{payment_id}:{transaction_id}"
        postings = {p.key: p for p in self.ledger.postings(order.id)}
        hold = postings.get(f"{base}:hold")
        if hold is None or any(f"{base}:{end}" in postings for end in ("apply", "forfeit")):
            return
        self._gbd_refund(
            order,
            payment_id,
            transaction_id,
            hold.amount,
            Account.deposit(order.buyer_id),
            what="release",
        )

    def _gbd_return_paid(self, order: Order) -> None:
        """A deposit order cancelled after its balance was paid: both charges go back.

        Each charge gives back what it still holds (less what earlier refunds took and those
        still pending), under ``<charge>:return``; called again (``reconcile`` with
        ``retry_failed``), what a declined or failed refund left is given back under
        ``<charge>:return-<n>``, the first such ledger key neither posted nor pending.
        """
        merchant = Account.merchant(order.merchant_id)
        postings = self.ledger.postings(order.id)
        pending = self._group_buys.get(_campaign_of(order)).pending_refunds
        zero = Money.zero(order.currency)
        taken = {p.key for p in postings} | {_ledger_key(k) for k, _, _ in pending}
        for payment_id, transaction_id, charged in self._gbd_charges(order, postings):
            base = f"{payment_id}:{transaction_id}"
            left = (
                charged
                - _refunded_from(postings, base, but="", zero=zero)
                - _pending_on(pending, base, but="", zero=zero)
            )
            if not left.is_positive:
                continue
            what, n = "return", 1
            while f"{base}:{what}" in taken:
                n += 1
                what = f"return-{n}"
            self._gbd_refund(order, payment_id, transaction_id, left, merchant, what=what)

    def _gbd_retry_declined(self, order: Order) -> None:
        """Ask again each deposit release or late-balance refund the provider declined.

        Found from the keys noted declined on the campaign: one whose ledger key
        (``<charge>:<transaction>:release|refund``) is neither posted nor pending under
        another request key is asked again for what its charge took (the ``hold`` or the
        ``capture`` posting), under the first key not declined.
        """
        campaign = self._group_buys.get(_campaign_of(order))
        postings = {p.key: p for p in self.ledger.postings(order.id)}
        pending = {_ledger_key(k) for k, _, _ in campaign.pending_refunds}
        prefixes = (
            f"{_deposit_id(campaign.id, order.id)}:",
            f"{_balance_id(campaign.id, order.id)}:",
        )
        wanted: dict[str, None] = {}  # ledger keys, in the order first declined
        for request_key in campaign.declined_refunds:
            key = _ledger_key(request_key)
            if key.startswith(prefixes) and _KEYED not in key:
                wanted[key] = None
        for key in wanted:
            base, _, what = key.rpartition(":")
            taken = postings.get(f"{base}:{'hold' if what == 'release' else 'capture'}")
            if what not in ("release", "refund") or taken is None or key in postings:
                continue  # a cancel's return (its own path), or given back already
            if key in pending:
                continue  # the provider has not answered yet: asking again could pay twice
            payment_id = next(p for p in prefixes if key.startswith(p))[:-1]
            transaction_id = base[len(payment_id) + 1 :]
            if what == "release":  # unless applied or forfeited meanwhile
                self._gbd_release(order, transaction_id)
            else:
                merchant = Account.merchant(order.merchant_id)
                self._gbd_refund(
                    order, payment_id, transaction_id, taken.amount, merchant, what=what
                )

    def _gbd_charges(self, order: Order, postings: list[Posting]) -> list[tuple[str, str, Money]]:
        """The charges that paid a deposit order: its balance (if any), then its deposit.

        As ``(payment id, transaction id, amount)``; none before the balance was paid. The
        balance charge is the one the order took: the last balance capture posted before the
        deposit was applied (late or duplicate captures were refunded on their own).
        """
        campaign_id = _campaign_of(order)
        deposit_id, balance_id = (
            _deposit_id(campaign_id, order.id),
            _balance_id(campaign_id, order.id),
        )
        charges: list[tuple[str, str, Money]] = []
        balance: Posting | None = None
        for posting in postings:
            key = posting.key
            if key.startswith(f"{balance_id}:") and key.endswith(":capture"):
                balance = posting
            elif key.startswith(f"{deposit_id}:") and key.endswith(":apply"):
                if balance is not None:
                    txn = balance.key[len(balance_id) + 1 : -len(":capture")]
                    charges.append((balance_id, txn, balance.amount))
                txn = key[len(deposit_id) + 1 : -len(":apply")]
                charges.append((deposit_id, txn, posting.amount))
                break
        return charges

    def _gbd_wanted(
        self,
        order: Order,
        actor: Actor,
        *,
        key: str,
        amount: Money | None,
        lines: Mapping[str, Money] | None,
    ) -> dict[str, Money]:
        """The checks of :meth:`refund` on a deposit order; the amounts wanted per line."""
        if (
            not isinstance(actor, Actor)
            or actor.kind not in _REFUNDERS
            or (actor.kind is ActorKind.MERCHANT and actor.id != order.merchant_id)
        ):
            raise Forbidden(
                str(actor), "refund", order.id, "not its merchant, the platform or the system"
            )
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("key", key, "must be a non-empty string")
        if len(key) > _MAX_KEY:  # its request keys must fit GroupBuy.note_declined_refund
            raise InvalidInput("key", key, f"at most {_MAX_KEY} characters")
        if any(marker in f":{key}" for marker in (_RETRY, _AGAIN, _KEYED)):
            # the service's own suffixes: a callback's request key must name its refund alone
            raise InvalidInput(
                "key", key, f"must not hold {_RETRY!r}, {_AGAIN!r} or {_KEYED!r} (they are ours)"
            )
        line_id = order.lines[0].line_id  # a group-buy order has one line
        if amount is not None and lines is None:
            wanted: dict[str, object] = {line_id: amount}
        elif amount is None and isinstance(lines, Mapping):
            wanted = dict(lines)
        else:
            raise InvalidInput("lines", lines, "give an amount or per-line amounts, not both")
        checked: dict[str, Money] = {}
        for wanted_line, part in wanted.items():
            if not isinstance(part, Money) or not part.is_positive:
                raise InvalidInput("amount", part, "must be positive Money")
            if part.currency != order.currency:
                raise CurrencyMismatch(order.currency, part.currency, "refund")
            if wanted_line == ORDER_LEVEL:  # a group-buy order is paid for its line only
                raise InvalidInput("lines", part, "more than can still be refunded at order level")
            if wanted_line != line_id:
                raise InvalidInput("lines", wanted_line, "no such line on the order")
            checked[wanted_line] = part
        return checked

    def _gbd_parts(self, order: Order, key: str, total: Money) -> list[tuple[str, str, Money]]:
        """Split a refund of ``total`` over the order's charges: the balance's first.

        As ``(payment id, transaction id, amount)`` per charge with a part; a part already
        posted or pending under this ``key`` keeps its amount, so a repeat splits the same way.
        Refunds pending from a charge count against what it still holds.

        Raises:
            RuleViolation: The balance was not paid: nothing was paid for the order.
            InvalidInput: More than the charges still hold; less than ``key`` refunded already.

        """
        postings = self.ledger.postings(order.id)
        charges = self._gbd_charges(order, postings)
        if not charges:
            raise RuleViolation(order.id, "refund", order.state, "nothing was paid for this order")
        zero = Money.zero(order.currency)
        pending = self._group_buys.get(_campaign_of(order)).pending_refunds
        posted = {_ledger_key(k): amount for k, _, amount in pending}  # kept as asked
        posted.update((p.key, p.amount) for p in postings)
        to_place = total - sum((posted.get(_keyed(p, t, key), zero) for p, t, _ in charges), zero)
        if to_place.is_negative:
            raise InvalidInput("key", key, "already refunded more under this key")
        parts: list[tuple[str, str, Money]] = []
        for payment_id, transaction_id, charged in charges:
            ledger_key = _keyed(payment_id, transaction_id, key)
            part = posted.get(ledger_key)
            if part is None:
                base = f"{payment_id}:{transaction_id}"
                left = (
                    charged
                    - _refunded_from(postings, base, but=ledger_key, zero=zero)
                    - _pending_on(pending, base, but=ledger_key, zero=zero)
                )
                part = min(to_place, left) if left.is_positive else zero
                to_place -= part
            if part.is_positive:
                parts.append((payment_id, transaction_id, part))
        if to_place.is_positive:
            raise InvalidInput("amount", total, "more than the order can still refund")
        return parts

    def _gbd_refund_keyed(
        self, order: Order, *, key: str, wanted: Mapping[str, Money], reason: str
    ) -> Refund:
        """:meth:`refund` of a deposit order, checked: each charge's part through the provider."""
        total = sum(wanted.values(), Money.zero(order.currency))
        used = self._group_buys.get(_campaign_of(order)).refund_total(order.id, key)
        if used is not None and used != total:
            raise InvalidInput("key", key, "already used for another amount")
        parts = self._gbd_parts(order, key, total)
        self._gbd_note(
            order,
            lambda c, now: c.note_refund_key(
                order_id=order.id, key=key, total=total, now=now, actor=_SYSTEM
            ),
        )
        campaign = self._group_buys.get(_campaign_of(order))
        posted = {p.key for p in self.ledger.postings(order.id)}
        statuses: set[RefundStatus] = set()
        transaction = ""
        for payment_id, transaction_id, part in parts:
            ledger_key = _keyed(payment_id, transaction_id, key)
            if ledger_key in posted:
                statuses.add(RefundStatus.SUCCEEDED)
                continue
            attempt, request_key = 0, ledger_key
            while request_key in campaign.declined_refunds:  # declined: ask under a new key
                attempt += 1
                request_key = f"{ledger_key}{_AGAIN}{attempt}"
            result = self.payments.refund(
                RefundRequest(order.id, transaction_id, part, request_key, payment_id)
            )
            if result.status is not GatewayStatus.PENDING and any(
                k == request_key for k, _, _ in campaign.pending_refunds
            ):  # asked again, the provider tells the outcome its callback has yet to bring
                self._gbd_settle_pending(order, request_key)
            if result.succeeded:
                self._gbd_post(
                    ledger_key,
                    order,
                    Account.merchant(order.merchant_id),
                    Account.buyer(order.buyer_id),
                    part,
                    movement=Movement.REFUND,
                )
                statuses.add(RefundStatus.SUCCEEDED)
                transaction = transaction or result.transaction_id
            elif result.status is GatewayStatus.PENDING:
                self._gbd_note_pending(order, request_key, payment_id, part)
                statuses.add(RefundStatus.PENDING)  # posted by the provider's callback
            else:
                self._gbd_note_declined(order, request_key)
                statuses.add(RefundStatus.FAILED)
        status = next(
            (s for s in (RefundStatus.FAILED, RefundStatus.PENDING) if s in statuses),
            RefundStatus.SUCCEEDED,
        )
        now = self.clock.now()
        return Refund(
            f"{_balance_id(campaign.id, order.id)}:refund:{key}",
            tuple(wanted.items()),
            reason,
            now,
            status,
            transaction_id=transaction,
            settled_at=None if status is RefundStatus.PENDING else now,
        )

    def _gbd_note_declined(self, order: Order, request_key: str) -> None:
        """Note on the campaign that the provider declined ``request_key`` (saved, once)."""
        self._gbd_note(
            order,
            lambda c, now: c.note_declined_refund(
                order_id=order.id, request_key=request_key, now=now, actor=_SYSTEM
            ),
        )

    def _gbd_note_pending(
        self, order: Order, request_key: str, payment_id: str, amount: Money
    ) -> None:
        """Note on the campaign that the provider left ``request_key`` pending (saved, once)."""
        self._gbd_note(
            order,
            lambda c, now: c.note_pending_refund(
                order_id=order.id,
                request_key=request_key,
                payment_id=payment_id,
                amount=amount,
                now=now,
                actor=_SYSTEM,
            ),
        )

    def _gbd_settle_pending(self, order: Order, request_key: str) -> None:
        """Its callback came: ``request_key`` no longer counts as pending (saved, once)."""
        self._gbd_note(
            order,
            lambda c, now: (
                any(k == request_key for k, _, _ in c.pending_refunds)
                and c.settle_pending_refund(
                    order_id=order.id, request_key=request_key, now=now, actor=_SYSTEM
                )
            ),
        )

    def _gbd_note(self, order: Order, command: Callable[[GroupBuy, datetime], bool]) -> None:
        """Apply ``command`` to the order's campaign and save it if it changed anything."""
        for _ in range(_RETRIES):
            campaign = self._group_buys.get(_campaign_of(order))
            version = campaign.version
            if not command(campaign, self.clock.now()):
                return
            try:
                self._group_buys.save(campaign, version)
            except VersionConflict:  # pragma: no cover - needs a concurrent writer
                continue
            self.publisher.publish(campaign.collect_events())
            return
        raise VersionConflict(_campaign_of(order), -1, None)  # pragma: no cover - beyond retries

    def _gbd_refund(
        self,
        order: Order,
        payment_id: str,
        transaction_id: str,
        amount: Money,
        source: Account,
        *,
        what: str,
        attempt: str = "",
    ) -> None:
        """Refund one charge through the provider (keyed); post it once the provider did.

        The ledger key is ``<payment id>:<transaction>:<what>``; a retry after the provider
        declined asks again under that key plus ``:retry-<attempt>``. Any key the provider
        declined before (noted on the campaign) is skipped for ``...:retry-again-<n>``. For an
        order that joined its campaign, a refund left pending is noted on the campaign until
        its callback; one declined now is noted declined and asked again under a fresh key by
        ``reconcile(retry_failed=True)`` (a cancel's return, a deposit's release, a late
        balance's refund).
        """
        key = f"{payment_id}:{transaction_id}:{what}"
        if self._gbd_posted(order.id, key):
            return
        request_key = f"{key}{_RETRY}{attempt}" if attempt else key
        campaign = self._group_buys.get(_campaign_of(order))
        declined, n = campaign.declined_refunds, 0
        while request_key in declined:  # the provider answers a declined key the same way
            n += 1
            request_key = f"{key}{_RETRY}again-{n}"
        result = self.payments.refund(
            RefundRequest(order.id, transaction_id, amount, request_key, payment_id)
        )
        if result.succeeded:  # else pending: posted when the provider's callback comes
            self._gbd_post(
                key, order, source, Account.buyer(order.buyer_id), amount, movement=Movement.REFUND
            )
        elif _participation(campaign, order.id) is None:
            return  # never joined (a late deposit): the campaign cannot note it; see reconcile
        elif result.status is GatewayStatus.PENDING:
            self._gbd_note_pending(order, request_key, payment_id, amount)
        else:  # declined: asked again by reconcile(retry_failed=True)
            self._gbd_note_declined(order, request_key)

    def _gbd_notification(self, notification: Notification) -> NotificationOutcome:
        """A callback for a deposit or a balance: record the charge, or post the refund."""
        payment_id = notification.payment_id
        marker = _DEPOSIT if _DEPOSIT in payment_id else _BALANCE
        order = self.orders.get(payment_id.split(marker, 1)[1])
        outcome = "ignored"
        if notification.kind is NotificationKind.CAPTURED and notification.transaction_id:
            outcome = "applied"
            record = self._gbd_record_deposit if marker == _DEPOSIT else self._gbd_record_balance
            try:
                record(order.id, notification.transaction_id, notification.amount)
            except EcommerceCoreError as refused:
                outcome = f"refused and refunded: {refused}"
        elif notification.kind is NotificationKind.FAILED and _KEYED in notification.request_key:
            self._gbd_settle_pending(order, notification.request_key)
            self._gbd_note_declined(order, notification.request_key)  # asked again next time
            outcome = "refund declined: asked again under a new key next time"
        elif notification.kind is NotificationKind.FAILED and notification.request_key:
            self._gbd_settle_pending(order, notification.request_key)
            key = notification.request_key.split(_RETRY, 1)[0]
            transaction_id, _, what = key[len(payment_id) + 1 :].rpartition(":")
            campaign = self._group_buys.get(_campaign_of(order))
            if (
                key.startswith(f"{payment_id}:")
                and (what in _REFUNDS or what.startswith("return-"))
                and transaction_id
                and notification.request_key not in campaign.declined_refunds  # a repeat
            ):
                if _participation(campaign, order.id) is not None:  # never asked again
                    self._gbd_note_declined(order, notification.request_key)
                self._gbd_refund(  # the provider declined a refund: ask again, once per decline
                    order,
                    payment_id,
                    transaction_id,
                    notification.amount,
                    _refund_source(order, what),
                    what=what,
                    attempt=notification.event_id,
                )
                outcome = "refund declined: asked again"
        elif notification.kind is NotificationKind.REFUNDED and notification.request_key:
            key = _ledger_key(notification.request_key)
            source = _refund_source(order, "refund" if _KEYED in key else key.rpartition(":")[2])
            self._gbd_settle_pending(order, notification.request_key)
            if key.startswith(f"{payment_id}:") and not self._gbd_posted(order.id, key):
                self._gbd_post(
                    key,
                    order,
                    source,
                    Account.buyer(order.buyer_id),
                    notification.amount,
                    movement=Movement.REFUND,
                )
            outcome = "applied"
        return NotificationOutcome(
            notification.event_id, payment_id, outcome, self.orders.get(order.id).state
        )

    def _gbd_posted(self, order_id: str, key: str) -> bool:
        return any(p.key == key for p in self.ledger.postings(order_id))

    def _gbd_post(
        self,
        key: str,
        order: Order,
        source: Account,
        target: Account,
        amount: Money,
        *,
        movement: Movement,
    ) -> None:
        self.ledger.append(
            [
                Posting(
                    key,
                    order.id,
                    order.lines[0].line_id,
                    source,
                    target,
                    amount,
                    movement,
                    self.clock.now(),
                )
            ]
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


def _deposit_id(campaign_id: str, order_id: str) -> str:
    """The payment id a deposit order's deposit charges carry at the provider (echoed back)."""
    return f"{campaign_id}{_DEPOSIT}{order_id}"


def _balance_id(campaign_id: str, order_id: str) -> str:
    """The payment id a deposit order's balance charges carry at the provider."""
    return f"{campaign_id}{_BALANCE}{order_id}"


def _settlement_line(campaign: GroupBuy, order_id: str) -> SettlementLine | None:
    if campaign.settlement is None:
        return None
    return next((ln for ln in campaign.settlement.lines if ln.order_id == order_id), None)


def _balance_line(campaign: GroupBuy, order_id: str) -> tuple[SettlementLine, datetime]:
    line = _settlement_line(campaign, order_id)
    settlement = campaign.settlement
    if line is None or settlement is None or settlement.balance_due_at is None:
        raise NotFound("group-buy balance", order_id)  # pragma: no cover - awaiting_balance has one
    return line, settlement.balance_due_at


def _refund_source(order: Order, what: str) -> Account:
    """Where a deposit order's refund comes from: the deposit account, or the merchant."""
    if what == "release":
        return Account.deposit(order.buyer_id)
    return Account.merchant(order.merchant_id)


def _ledger_key(request_key: str) -> str:
    """The ledger key a refund was asked under, from the request key the provider echoes.

    A keyed refund asks ``<charge>:keyed-refund:<key>``, then ``...:again-<n>`` once declined;
    :meth:`GroupBuys.refund` refuses a caller's ``key`` holding ``:again-``, ``:retry-`` or
    ``:keyed-refund:``, so only our own suffix is cut. Any other refund asks
    ``<charge>:<what>``, then ``...:retry-<event>``.
    """
    head, marker, tail = request_key.rpartition(_KEYED)
    if marker:
        return f"{head}{marker}{tail.split(_AGAIN, 1)[0]}"
    return request_key.split(_RETRY, 1)[0]


def _keyed(payment_id: str, transaction_id: str, key: str) -> str:
    """The ledger key of the part of a :meth:`GroupBuys.refund` one charge gives back."""
    return f"{payment_id}:{transaction_id}{_KEYED}{key}"


def _pending_on(
    pending: Iterable[tuple[str, str, Money]], base: str, *, but: str, zero: Money
) -> Money:
    """What refunds still pending ask of the charge ``base`` (but those of ledger key ``but``)."""
    prefix = f"{base}:"
    return sum((a for k, _, a in pending if k.startswith(prefix) and _ledger_key(k) != but), zero)


def _refunded_from(postings: Iterable[Posting], base: str, *, but: str, zero: Money) -> Money:
    """What refunds already gave back from the charge ``base`` (but the one keyed ``but``)."""
    prefix = f"{base}:"
    return sum(
        (
            p.amount
            for p in postings
            if p.movement is Movement.REFUND and p.key.startswith(prefix) and p.key != but
        ),
        zero,
    )
