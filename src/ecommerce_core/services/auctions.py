"""Auctions (竞拍) wired into orders, payments (the ledger) and stock.

:class:`Auctions` is the auction part of
:class:`~ecommerce_core.services.campaigns.CampaignService`: the pure
:class:`~ecommerce_core.auctions.Auction` aggregate decides, this code loads and saves it,
moves the money of the deposits (保证金) through the payment provider and the ledger, places
and moves the winner's order (``order.auction`` process) and keeps the lot's stock.

The paths, and what each does exactly once:

- **Create.** A merchant (or the platform) sets an auction up for one unit of a SKU
  (:meth:`CampaignService.create_auction`): the unit is reserved under the auction id.
- **Deposit.** A bidder holds the deposit (:meth:`CampaignService.hold_deposit`): the auction
  is checked first (nothing is charged for a refused deposit), then the provider charges it and
  the ledger moves it from the buyer to their deposit account (:attr:`AccountKind.DEPOSIT
  <ecommerce_core.payments.ledger.AccountKind.DEPOSIT>`, payer side: still the buyer's money).
- **Bid.** :meth:`CampaignService.bid`: the aggregate refuses a bid below the increment, after
  the end, without a deposit or against oneself (a typed error; nothing changes), extends the
  end against sniping, and ends the auction at once at the buyout price.
- **End.** At the end (:meth:`CampaignService.expire_due`) or on a buyout, a winner (reserve
  met) gets an order for the lot at the hammer price with the deposit applied: the order's
  line is the hammer price less the deposit (a line discount), so the winner pays only the
  balance, by the payment deadline. The lot's unit moves from the auction's reservation to the
  order's. The losers' deposits are refunded through the provider and moved back to them in
  the ledger. No bid, or the reserve not met, is no sale (流拍): every deposit is released and
  the unit too.
- **Paid.** The winner pays the order (:meth:`CampaignService.pay`; the auction is checked
  before the provider is asked): the auction is sold, and the deposit moves from the deposit
  account into the order's money (to the merchant), so the ledger shows the full hammer price
  paid in for the order.
- **Unpaid.** At the payment deadline the winner's order ends ``defaulted`` (its unit given
  back) and the deposit is forfeited to the merchant (ledger: deposit → merchant, movement
  ``forfeit``). Per :class:`~ecommerce_core.auctions.SecondChance` the lot is offered to the
  runner-up, who gets an order of their own at their top bid; or the auction ends unpaid and
  every deposit still held is released.

Every outside effect is keyed (ledger postings by key, provider refunds by the deposit's
:attr:`Release.key <ecommerce_core.releases.Release.key>`, stock releases per reservation), and
:meth:`CampaignService.reconcile_auction` re-applies them all, so a retried or interrupted call
never acts twice and never leaves one undone. An auction order's checkout id is its auction id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.auctions import (
    AUCTION_ORDER_PROCESS,
    Auction,
    AuctionState,
    AuctionTerms,
    Deposit,
    DepositStatus,
)
from ecommerce_core.errors import (
    Conflict,
    CurrencyMismatch,
    EcommerceCoreError,
    InvalidInput,
    NotFound,
    PaymentNotCompleted,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement, Posting
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import AuctionRepository, ChargeRequest, RefundRequest, StockItem
from ecommerce_core.releases import Release, ReleaseKind
from ecommerce_core.services._parts import required, settle
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "AUCTION_SALES_MODE",
    "AuctionOrderDefaulted",
    "Auctions",
]

AUCTION_SALES_MODE: Final = "auction"
"""The sales mode stored on an auction order's pricing terms."""

_SYSTEM: Final = Actor.system("auctions")
_RETRIES: Final = 5
_LAST_MOMENT: Final = timedelta(seconds=1)
_LINE: Final = "1"
_DEPOSIT: Final = ":deposit:"
_OFFERED: Final = (AuctionState.AWAITING_PAYMENT, AuctionState.AWAITING_RUNNER_UP)


@attrs.frozen(kw_only=True)
class AuctionOrderDefaulted(DomainEvent):
    """An auction order ended unpaid because its auction moved on (``expire_payment``).

    Attributes:
        auction_id: The auction.
        reason: Why (the payment deadline passed, the runner-up declined).

    """

    auction_id: str
    reason: str


class Auctions(PaymentService):
    """The auction use cases: a part of ``CampaignService``, never built alone.

    Every override passes orders of other processes on (``super()``) unchanged, so the parts
    of :class:`~ecommerce_core.services.campaigns.CampaignService` compose in any order.

    Attributes:
        auctions: Where auctions are stored (``None``: auctions are not offered).

    """

    __slots__ = ()
    auctions: AuctionRepository | None

    @property
    def _auctions(self) -> AuctionRepository:
        return required(self.auctions, "auctions", "auctions")

    # ----------------------------------------------------------------- use cases

    def create_auction(
        self, actor: Actor, sku: str, terms: AuctionTerms, *, auction_id: str | None = None
    ) -> Auction:
        """Set an auction of one unit of ``sku`` up; the unit is reserved for it.

        Args:
            actor: The SKU's merchant, or the platform.
            sku: The lot.
            terms: Prices, deposit, times and policies.
            auction_id: Its id (a new one if omitted).

        Raises:
            NotFound: An unknown SKU.
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: Terms that are not :class:`~ecommerce_core.auctions.AuctionTerms`.
            CurrencyMismatch: Terms in another currency than the SKU's price.
            DeadlinePassed: The end is already past.
            OutOfStock: No unit of the SKU is available; nothing was stored.
            Conflict: An auction with this id exists.

        """
        product = self.catalog.product(sku)
        if isinstance(terms, AuctionTerms) and terms.currency != product.unit_price.currency:
            raise CurrencyMismatch(product.unit_price.currency, terms.currency, "create_auction")
        if auction_id is not None:
            with contextlib.suppress(NotFound):
                self._auctions.get(auction_id)
                raise Conflict(f"an auction with id {auction_id!r} is already stored")
        auction = Auction.create(
            actor,
            auction_id=self.ids.next_id("auction") if auction_id is None else auction_id,
            merchant_id=product.merchant_id,
            sku=product.sku,
            terms=terms,
            now=self.clock.now(),
        )
        self.inventory.reserve(auction.id, [StockItem(_LINE, product.sku, 1)])
        try:
            self._auctions.add(auction)
        except BaseException:
            self.inventory.release(auction.id)
            raise
        self.publisher.publish(auction.collect_events())
        return auction

    def hold_deposit(self, auction_id: str, bidder: Actor, *, key: str = "1") -> Auction:
        """Charge ``bidder``'s deposit (保证金) through the provider; then they may bid.

        The auction is checked before the provider is asked. The ledger moves the deposit
        from the buyer's account to their deposit account.

        Args:
            auction_id: The auction.
            bidder: The buyer.
            key: The attempt's idempotency key: a retry with the same key (a charge the
                provider left pending, say) asks the provider again under the same key and
                gets its final answer; after a decline, try again with a new key. A pending
                charge is also recorded when the provider's notification arrives
                (:meth:`handle_notification`); one that lands when the auction no longer
                takes it (a deposit already held, bidding over) is refunded.

        Returns:
            The auction with the deposit held.

        Raises:
            InvalidInput: Not a buyer, or a blank key.
            NotFound: No such auction.
            TransitionNotAllowed, DeadlinePassed: Bidding is over; nothing was charged.
            RuleViolation: The bidder already holds a deposit here; nothing was charged.
            PaymentNotCompleted: The provider declined, or has not answered yet; no deposit.

        """
        if not isinstance(bidder, Actor) or bidder.kind is not ActorKind.BUYER:
            raise InvalidInput("bidder", bidder, "only a buyer holds a deposit")
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("key", key, "must be a non-empty string")
        rehearsal = self._auctions.get(auction_id)
        amount = rehearsal.terms.deposit
        rehearsal.hold_deposit(
            bidder, bidder_id=bidder.id, reference="check", amount=amount, now=self.clock.now()
        )
        payment_id = _deposit_payment_id(auction_id, bidder.id)
        charge_key = f"{payment_id}:{key}"
        result = self.payments.charge(ChargeRequest(auction_id, amount, charge_key, payment_id))
        if not result.succeeded:
            raise PaymentNotCompleted(
                auction_id, rehearsal.state, result.status.value, result.message
            )
        return self._record_deposit(auction_id, bidder.id, result.transaction_id, amount)

    def bid(self, auction_id: str, bidder: Actor, amount: Money) -> Auction:
        """Bid ``amount`` on the lot.

        A bid inside the final window extends the end; one at or above the buyout price ends
        the auction at once and the bidder gets an order for the balance.

        Returns:
            The auction afterwards.

        Raises:
            NotFound: No such auction.
            Forbidden: Not a buyer.
            BidTooLow: Below the start price, or below the leader plus the increment.
            DeadlinePassed: After the (possibly extended) end.
            DepositRequired: The bidder holds no deposit.
            AlreadyLeading: The bidder leads already.
            TransitionNotAllowed, RuleViolation: Bidding is over, or not open yet.
            VersionConflict: Another bid was saved meanwhile; nothing changed, bid again.

        """
        auction = self._auctions.get(auction_id)
        version = auction.version
        auction.bid(bidder, amount=amount, now=self.clock.now())
        self._auctions.save(auction, version)
        self.publisher.publish(auction.collect_events())
        self._settle(auction)
        return auction

    def decline_offer(self, auction_id: str, actor: Actor) -> Auction:
        """The runner-up declines the second-chance offer: their order ends, deposit back.

        Raises:
            NotFound: No such auction.
            Forbidden: Anyone but the runner-up offered the lot (or the platform).
            TransitionNotAllowed: No second-chance offer is open.
            VersionConflict: The auction changed meanwhile; nothing changed.

        """
        auction = self._auctions.get(auction_id)
        version = auction.version
        auction.decline(actor, now=self.clock.now())
        self._auctions.save(auction, version)
        self.publisher.publish(auction.collect_events())
        self._settle(auction, reason="the runner-up declined")
        return auction

    def auction(self, auction_id: str) -> Auction:
        """The auction, as stored.

        Raises:
            NotFound: No such auction.

        """
        return self._auctions.get(auction_id)

    def auction_order_id(self, auction_id: str, bidder_id: str) -> str:
        """The id of the order ``bidder_id`` gets when offered the lot (winner or runner-up)."""
        return f"{auction_id}-{bidder_id}"

    def reconcile_auction(self, auction_id: str) -> Auction:
        """Bring the outside world in line with the auction; idempotent, safe at any time.

        Re-applies, by key, every deposit movement (held, released through the provider,
        forfeited, applied), the stock releases and the orders of the winner and of anyone
        the lot was offered to before. Use it after a crash, or once the provider finally
        answered a deposit refund it had left pending.

        Raises:
            NotFound: No such auction.

        """
        auction = self._auctions.get(auction_id)
        self._settle(auction)
        return auction

    # ----------------------------------------------------------------- overrides

    def _pay_in_mode(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool
    ) -> Order | None:
        """How :meth:`pay` pays an auction order: it pays the balance and sells the lot.

        The auction is checked before the provider is asked (the offer is still this buyer's,
        its deadline not past). Should it refuse the payment afterwards (its deadline passed
        meanwhile), the order is cancelled and refunded, and the refusal raised.

        Raises:
            InvalidInput: An auction order authorized only (``capture=False``).
            RuleViolation: The lot is no longer offered to this order's buyer.
            DeadlinePassed: The auction's payment deadline has passed.

        """
        if order.process.name != AUCTION_ORDER_PROCESS.name:
            return super()._pay_in_mode(order, actor, key=key, capture=capture)
        if not capture:
            raise InvalidInput("capture", capture, "an auction order is paid in full at once")
        rehearsal = self._auction_of(order)
        self._check_offered(rehearsal, order)
        due = rehearsal.amount_due
        assert due is not None  # noqa: S101  # set while the lot is offered
        order.ensure_can("pay", actor, order.total)
        rehearsal.pay(_SYSTEM, amount=due, payment_ref="check", now=self.clock.now())
        paid = self._pay_through_provider(order, actor, key=key)
        self._sell(paid)
        return self.orders.get(order.id)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; a paid auction order also gets its applied deposit back."""
        order = super().cancel(order_id, actor, reason)
        if order.process.name == AUCTION_ORDER_PROCESS.name and self.auctions is not None:
            self._return_applied_deposit(order)
        return order

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback as before; a late payment of an auction order sells it.

        If the auction no longer takes that payment, the order is cancelled and refunded.
        """
        notification = self.payments.parse_notification(payload)
        if self.auctions is not None and _DEPOSIT in notification.payment_id:
            return self._deposit_notification(notification)
        outcome = super().handle_notification(payload)
        order = self.orders.get(self.payment_records.get(outcome.payment_id).order_id)
        if (
            order.process.name != AUCTION_ORDER_PROCESS.name
            or order.payment is None
            or order.state != OrderState.AWAITING_SHIPMENT
        ):
            return outcome
        with contextlib.suppress(EcommerceCoreError):  # refused: cancelled and refunded
            self._sell(order)
        order = self.orders.get(order.id)
        return attrs.evolve(outcome, order_state=order.state)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then settle every auction whose deadline has come.

        Idempotent. An auction at its end closes (a winner gets an order, or no sale); at a
        payment deadline the winner's deposit is forfeited and the lot goes to the runner-up
        or ends unpaid. The auction orders this moved are reported too.
        """
        fired = super().expire_due(now)
        if self.auctions is None:
            return fired
        moment = self.clock.now() if now is None else now
        for auction_id in self._auctions.due(moment):
            auction = self._auctions.get(auction_id)
            for _ in range(_RETRIES):  # an auction left long enough may have two deadlines due
                version = auction.version
                if auction.expire(moment, _SYSTEM) is None:
                    break
                try:
                    self._auctions.save(auction, version)
                except VersionConflict:
                    break  # a concurrent writer moved it; the next call settles it
                self.publisher.publish(auction.collect_events())
            auction = self._auctions.get(auction_id)
            fired.extend(self._settle(auction, reason="the payment deadline passed"))
        return fired

    # ----------------------------------------------------------------- internals

    def _auction_of(self, order: Order) -> Auction:
        return self._auctions.get(order.checkout_id)

    @staticmethod
    def _check_offered(auction: Auction, order: Order) -> None:
        if auction.state not in _OFFERED or auction.winner_id != order.buyer_id:
            raise RuleViolation(
                order.id, "pay", order.state, "the lot is no longer offered to this buyer"
            )

    def _sell(self, order: Order) -> None:
        """Record the order's payment on its auction; a refusal cancels and refunds it."""
        assert order.payment is not None  # noqa: S101  # called once the order is paid
        for _ in range(_RETRIES):
            auction = self._auction_of(order)
            if (
                auction.state == AuctionState.SOLD
                and auction.payment_ref == order.payment.reference
            ):
                self._settle(auction)  # a repeat: make sure the deposit was applied
                return
            version = auction.version
            try:
                self._check_offered(auction, order)
                auction.pay(
                    _SYSTEM,
                    amount=order.payment.amount,
                    payment_ref=order.payment.reference,
                    now=self.clock.now(),
                )
            except EcommerceCoreError as refused:
                super().cancel(order.id, Actor.platform(), str(refused))
                raise
            try:
                self._auctions.save(auction, version)
            except VersionConflict:
                continue
            self.publisher.publish(auction.collect_events())
            self._settle(auction)
            return
        raise VersionConflict(order.checkout_id, -1, None)  # pragma: no cover - contention

    def _settle(self, auction: Auction, *, reason: str = "") -> list[Expired]:
        """Make deposits, stock and orders match the auction, each effect once (by key)."""
        moved: list[Expired] = []
        offered = [d.bidder_id for d in auction.deposits if d.status is DepositStatus.FORFEITED]
        if auction.winner_id is not None and auction.winner_id not in offered:
            offered.append(auction.winner_id)
        current = auction.winner_id if auction.state in _OFFERED else None
        for bidder_id in offered:  # first end the orders of those who had their chance
            if bidder_id != current and (
                bidder_id != auction.winner_id or auction.state != AuctionState.SOLD
            ):
                moved.extend(self._end_order(auction, bidder_id, reason or "the auction moved on"))
        for item in auction.releases:
            if item.kind is ReleaseKind.STOCK:
                with contextlib.suppress(NotFound):
                    self.inventory.release(item.reference)
        if current is not None:
            self._place_order(auction, current)
        self._sync_deposits(auction)
        if auction.state == AuctionState.SOLD and auction.winner_id is not None:
            sold = self.orders.get(self.auction_order_id(auction.id, auction.winner_id))
            self._return_applied_deposit(sold)  # a sold order cancelled later: deposit back
        return moved

    def _place_order(self, auction: Auction, bidder_id: str) -> None:
        order_id = self.auction_order_id(auction.id, bidder_id)
        with contextlib.suppress(NotFound):
            self.orders.get(order_id)
            return  # placed already
        deposit = auction.deposit_of(bidder_id)
        assert deposit is not None  # noqa: S101  # only deposit holders bid
        assert auction.hammer is not None  # noqa: S101  # set with the winner
        assert auction.payment_due is not None  # noqa: S101  # set with the winner
        product = self.catalog.product(auction.sku)
        now = self.clock.now()
        timeout = max(auction.payment_due - now, _LAST_MOMENT)
        order = Order.place(
            order_id=order_id,
            buyer_id=bidder_id,
            merchant_id=auction.merchant_id,
            lines=[
                OrderLine(
                    _LINE,
                    auction.sku,
                    1,
                    auction.hammer,
                    discount=deposit.amount,
                    category=product.category,
                )
            ],
            now=now,
            policy=attrs.evolve(self.policy, payment_timeout=timeout),
            checkout_id=auction.id,
            process=AUCTION_ORDER_PROCESS,
            payment_method=PaymentMethod.ONLINE.value,
            terms=PricingTerms(sales_mode=AUCTION_SALES_MODE, cod_allowed=False),
        )
        self.inventory.release(auction.id)  # the lot's unit moves to the order
        self.inventory.reserve(order.id, [StockItem(_LINE, auction.sku, 1)])
        try:
            self.orders.add(order)
        except BaseException:
            self.inventory.release(order.id)
            raise
        self._publish(order)
        if order.total.is_zero:  # the deposit covers the hammer price: sold at once
            order = self.orders.get(order.id)
            version = order.version
            order.pay(_SYSTEM, amount=order.total, reference=deposit.reference, now=now)
            self.orders.save(order, version)
            self._publish(order)
            self.inventory.commit(order.id)
            self._sell(order)

    def _end_order(self, auction: Auction, bidder_id: str, reason: str) -> list[Expired]:
        try:
            order = self.orders.get(self.auction_order_id(auction.id, bidder_id))
        except NotFound:
            return []
        moved: list[Expired] = []
        if order.state == OrderState.PENDING_PAYMENT:
            moved.append(
                settle(
                    self,
                    order,
                    "expire_payment",
                    _SYSTEM,
                    AuctionOrderDefaulted,
                    auction_id=auction.id,
                    reason=reason,
                )
            )
        if order.payment is None and order.is_final:
            self._release_holds(order)
            self.reconcile(order.id)
        return moved

    def _sync_deposits(self, auction: Auction) -> None:
        """Post each deposit's movements the ledger lacks; refund released ones first."""
        known = {p.key for p in self.ledger.postings(auction.id)}
        now = self.clock.now()
        postings: list[Posting] = []
        for deposit in auction.deposits:
            base = f"{auction.id}:deposit:{deposit.reference}"
            held, owner = Account.deposit(deposit.bidder_id), Account.buyer(deposit.bidder_id)
            if f"{base}:hold" not in known:
                postings.append(
                    Posting(
                        f"{base}:hold",
                        auction.id,
                        ORDER_LEVEL,
                        owner,
                        held,
                        deposit.amount,
                        Movement.CAPTURE,
                        now,
                    )
                )
            if deposit.status is DepositStatus.RELEASED:
                release = _release_of(auction, deposit)
                if release.key not in known and self._refund_deposit(auction, deposit, release.key):
                    postings.append(
                        Posting(
                            release.key,
                            auction.id,
                            ORDER_LEVEL,
                            held,
                            owner,
                            deposit.amount,
                            Movement.REFUND,
                            now,
                        )
                    )
            elif deposit.status is DepositStatus.FORFEITED and f"{base}:forfeit" not in known:
                postings.append(
                    Posting(
                        f"{base}:forfeit",
                        auction.id,
                        ORDER_LEVEL,
                        held,
                        Account.merchant(auction.merchant_id),
                        deposit.amount,
                        Movement.FORFEIT,
                        now,
                    )
                )
        self.ledger.append(postings)
        self._apply_deposit(auction)

    def _apply_deposit(self, auction: Auction) -> None:
        """The winner paid: their deposit joins the order's money, to the merchant."""
        if auction.state != AuctionState.SOLD or auction.winner_id is None:
            return
        deposit = auction.deposit_of(auction.winner_id)
        assert deposit is not None  # noqa: S101  # only deposit holders win
        order_id = self.auction_order_id(auction.id, auction.winner_id)
        key = f"{auction.id}:deposit:{deposit.reference}:apply"
        if any(p.key == key for p in self.ledger.postings(order_id)):
            return
        self.ledger.append(
            [
                Posting(
                    key,
                    order_id,
                    _LINE,
                    Account.deposit(deposit.bidder_id),
                    Account.merchant(auction.merchant_id),
                    deposit.amount,
                    Movement.CAPTURE,
                    self.clock.now(),
                )
            ]
        )

    def _return_applied_deposit(self, order: Order) -> None:
        """A paid auction order was cancelled: the deposit applied to it goes back too."""
        if order.state != OrderState.CANCELLED:
            return
        postings = self.ledger.postings(order.id)
        applied = [p for p in postings if p.key.endswith(":apply")]
        if not applied:
            return
        (posting,) = applied
        key = f"{posting.key}:return"
        if any(p.key == key for p in postings):
            return
        deposit = self._auctions.get(order.checkout_id).deposit_of(order.buyer_id)
        assert deposit is not None  # noqa: S101  # the deposit was applied to this order
        result = self.payments.refund(
            RefundRequest(
                order.checkout_id,
                deposit.reference,
                deposit.amount,
                key,
                _deposit_payment_id(order.checkout_id, order.buyer_id),
            )
        )
        if not result.succeeded:
            return  # the provider has not answered yet: reconcile_auction retries
        self.ledger.append(
            [
                Posting(
                    key,
                    order.id,
                    _LINE,
                    posting.target,
                    Account.buyer(order.buyer_id),
                    deposit.amount,
                    Movement.REFUND,
                    self.clock.now(),
                )
            ]
        )

    def _refund_deposit(self, auction: Auction, deposit: Deposit, key: str) -> bool:
        payment_id = _deposit_payment_id(auction.id, deposit.bidder_id)
        result = self.payments.refund(
            RefundRequest(auction.id, deposit.reference, deposit.amount, key, payment_id)
        )
        return result.succeeded

    def _record_deposit(
        self, auction_id: str, bidder_id: str, reference: str, amount: Money
    ) -> Auction:
        """Record a deposit the provider charged; if the auction refuses it, refund it."""
        for _ in range(_RETRIES):
            auction = self._auctions.get(auction_id)
            held = auction.deposit_of(bidder_id)
            if held is not None and held.reference == reference:
                self._settle(auction)  # a repeat (a notification after the retry, say)
                return auction
            version = auction.version
            try:
                auction.hold_deposit(
                    Actor.buyer(bidder_id),
                    bidder_id=bidder_id,
                    reference=reference,
                    amount=amount,
                    now=self.clock.now(),
                )
            except EcommerceCoreError:
                payment_id = _deposit_payment_id(auction_id, bidder_id)
                self.payments.refund(
                    RefundRequest(
                        auction_id, reference, amount, f"{payment_id}:{reference}:undo", payment_id
                    )
                )
                raise
            try:
                self._auctions.save(auction, version)
            except VersionConflict:
                continue
            self.publisher.publish(auction.collect_events())
            self._settle(auction)
            return auction
        raise VersionConflict(auction_id, -1, None)  # pragma: no cover - contention beyond retries

    def _deposit_notification(self, notification: Notification) -> NotificationOutcome:
        """A provider callback about a deposit: record a late charge (or refund it), settle."""
        auction_id, bidder_id = notification.payment_id.split(_DEPOSIT, 1)
        outcome = "applied"
        if notification.kind is NotificationKind.CAPTURED and notification.transaction_id:
            try:
                self._record_deposit(
                    auction_id, bidder_id, notification.transaction_id, notification.amount
                )
            except EcommerceCoreError as refused:
                outcome = f"deposit refused and refunded: {refused}"
        auction = self._auctions.get(auction_id)
        self._settle(auction)  # a deposit refund the provider finished: post it now
        return NotificationOutcome(
            notification.event_id, notification.payment_id, outcome, auction.state
        )


def _deposit_payment_id(auction_id: str, bidder_id: str) -> str:
    """The payment id deposit charges and refunds carry at the provider (echoed back)."""
    return f"{auction_id}{_DEPOSIT}{bidder_id}"


def _release_of(auction: Auction, deposit: Deposit) -> Release:
    return Release(
        auction.id, ReleaseKind.DEPOSIT, deposit.reference, deposit.bidder_id, deposit.amount
    )
