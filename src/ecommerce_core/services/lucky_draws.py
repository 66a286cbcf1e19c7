"""Lucky draws (一元夺宝) wired into orders, payments (the ledger) and stock.

:class:`LuckyDraws` is the lucky-draw part of
:class:`~ecommerce_core.services.campaigns.CampaignService`: the pure
:class:`~ecommerce_core.campaigns.lucky_draw.DrawRound` aggregate decides, this code loads and
saves it, moves its share orders (``order.lucky_draw`` process) and acts on what the round
gives back.

The paths, and what each does exactly once:

- **Open.** A merchant (or the platform) opens a round for a prize
  (:meth:`CampaignService.open_round`): one unit of the prize is reserved in the inventory
  under the round's id, and the round's ``S`` shares are received as stock of their own SKU,
  :func:`share_sku` (so the inventory, atomically, never lets more than ``S`` be held or sold
  either).
- **Buy.** A buyer places a share order for ``k`` shares
  (:meth:`CampaignService.place_share_order`): the round holds ``k`` shares for it and ``k``
  units of the share SKU are reserved, or nothing is stored (more than remain, a closed
  round). The order is paid online, through the provider and the ledger
  (:meth:`CampaignService.pay_shares`, or :meth:`pay`); the round is checked *before* the
  provider is asked.
- **Only a completed payment gets numbers.** A declined payment leaves the shares held (pay
  again, cancel, or let the order's payment deadline pass: the shares go back on sale). A
  pending one keeps them held, the order's deadline paused, until the provider's
  notification: a successful one gets the order its numbers then; a repeat notification
  changes nothing. A paid order the round no longer takes (its sell-by passed while the
  provider worked, or it went unsold before the notification came) gets no numbers: its
  shares are released, the order is cancelled (``round_unsold``) and refunded from its own
  payment, keyed by :attr:`Release.key <ecommerce_core.releases.Release.key>` (a retry cannot
  refund twice). A payment completing after its order was cancelled is refunded by
  reconciliation, as for any cancelled order.
- **Sold out → draw.** The payment for the last share sells the round out; it is drawn at
  once if the :class:`~ecommerce_core.ports.RandomnessSource` already has a number published
  at or after the sell-out (and not after now), else by :meth:`CampaignService.expire_due`
  once it has (or on the fallback B = 0 after the round's delay). The draw's inputs are stored
  on the round (:meth:`DrawRound.verify`). The winning order fires ``draw_won`` and waits for
  its address; every other paid order fires ``draw_lost``: its shares are spent, and its money
  stays where the online sale put it, with the merchant (less the platform's commission).
- **Address.** The winner confirms an address (:meth:`CampaignService.confirm_prize_address`)
  before the round's deadline: the order may ship, and the prize's reserved unit is deducted.
  A winning order cancelled later gives the prize's unit back.
- **Forfeit.** No address in time: :meth:`CampaignService.expire_due` forfeits the round, the
  winning order fires ``forfeit``, the prize's unit goes back and, under
  :attr:`~ecommerce_core.campaigns.lucky_draw.ForfeitPolicy.REFUND_WINNER`, the winning order
  is refunded from its own payment, once.
- **Unsold.** Not sold out by its sell-by: :meth:`CampaignService.expire_due` settles the
  round: every order still holding shares fires ``round_unsold`` (cancelled), gives back its
  share units and, if paid, is refunded from its own payment, once; the prize's unit goes back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.campaigns.lucky_draw import (
    LUCKY_DRAW_ORDER_PROCESS,
    DrawRecord,
    DrawRound,
    DrawRoundState,
    DrawTerms,
    PublicNumber,
    ShareStatus,
)
from ecommerce_core.errors import (
    DrawInputsMissing,
    EcommerceCoreError,
    InvalidInput,
    NotFound,
    TransitionNotAllowed,
    VersionConflict,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import Order, OrderLine, OrderState, PricingTerms
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import DrawRoundRepository, RandomnessSource, StockItem
from ecommerce_core.releases import Release, ReleaseKind, releases_for_order
from ecommerce_core.services._parts import SETTLERS, required
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import NotificationOutcome, PaymentService

__all__ = [
    "PRIZE_LINE",
    "LuckyDraws",
    "PrizeAddressGiven",
    "ShareOrderCancelled",
    "ShareOrderForfeited",
    "ShareOrderLost",
    "ShareOrderWon",
    "share_sku",
]

PRIZE_LINE: Final = "prize"
"""The line id under which a round reserves its prize's unit (reservation id: the round id)."""

_SYSTEM: Final = Actor.system("lucky-draws")
_BUYERS: Final = frozenset({ActorKind.BUYER})
_RETRIES: Final = 5
_SALES_MODE: Final = "lucky_draw"
_AWAITING_DRAW: Final = "awaiting_draw"
_AWAITING_ADDRESS: Final = "awaiting_address"


def share_sku(round_id: str) -> str:
    """The SKU a round's shares are stocked and ordered under: ``"<round id>/shares"``."""
    return f"{round_id}/shares"


@attrs.frozen(kw_only=True)
class ShareOrderWon(DomainEvent):
    """A share order holds the winning number; it waits for the winner's address (``draw_won``).

    Attributes:
        round_id: The round.
        winning_number: The number drawn.

    """

    round_id: str
    winning_number: int


@attrs.frozen(kw_only=True)
class ShareOrderLost(DomainEvent):
    """Another number won: the order's shares are spent (``draw_lost``).

    Attributes:
        round_id: The round.
        winning_number: The number drawn.

    """

    round_id: str
    winning_number: int


@attrs.frozen(kw_only=True)
class ShareOrderCancelled(DomainEvent):
    """A share order was cancelled by its round (``round_unsold``); what it paid goes back.

    Attributes:
        round_id: The round.
        reason: Why (the round went unsold, or no longer took the order's payment).

    """

    round_id: str
    reason: str


@attrs.frozen(kw_only=True)
class PrizeAddressGiven(DomainEvent):
    """The winner said where the prize goes; the order may ship (``confirm_address``).

    Attributes:
        round_id: The round.
        address: The delivery address.

    """

    round_id: str
    address: str


@attrs.frozen(kw_only=True)
class ShareOrderForfeited(DomainEvent):
    """The winner gave no address in time: the prize is forfeited (``forfeit``).

    Attributes:
        round_id: The round.
        refunded: Whether the round's policy refunds the winning order.

    """

    round_id: str
    refunded: bool


class LuckyDraws(PaymentService):
    """The lucky-draw use cases: a part of ``CampaignService``, never built alone.

    Every override passes orders of other processes on (``super()``) unchanged, so the parts
    of :class:`~ecommerce_core.services.campaigns.CampaignService` compose in any order.

    Attributes:
        rounds: Where rounds are stored (``None``: lucky draws are not offered).
        randomness: Where a round's public number (B) comes from; needed to open a round.

    """

    __slots__ = ()
    rounds: DrawRoundRepository | None
    randomness: RandomnessSource | None

    @property
    def _rounds(self) -> DrawRoundRepository:
        return required(self.rounds, "rounds", "lucky draws")

    # ----------------------------------------------------------------- lucky draws

    def open_round(self, actor: Actor, prize_sku: str, terms: DrawTerms) -> DrawRound:
        """Put a round on sale for one unit of ``prize_sku``, reserved under the round's id.

        The round's ``S`` shares are received as stock of :func:`share_sku`.

        Returns:
            The new round, selling.

        Raises:
            DefinitionError: The service has no ``rounds`` or no ``randomness`` port.
            NotFound: An unknown SKU.
            Forbidden: Not the prize's merchant nor the platform.
            InvalidInput: Terms that are not :class:`DrawTerms`, or in another currency than
                the prize.
            DeadlinePassed: The sell-by time has already passed.
            OutOfStock: No unit of the prize is available.

        """
        rounds = self._rounds
        required(self.randomness, "randomness", "lucky draws")
        product = self.catalog.product(prize_sku)
        currency = product.unit_price.currency
        if isinstance(terms, DrawTerms) and terms.share_price.currency != currency:
            raise InvalidInput("terms", terms, f"shares must be priced in {currency}")
        round_id = self.ids.next_id("round")
        draw_round = DrawRound.create(
            actor,
            round_id=round_id,
            merchant_id=product.merchant_id,
            prize_sku=product.sku,
            terms=terms,
            now=self.clock.now(),
        )
        self.inventory.reserve(round_id, [StockItem(PRIZE_LINE, product.sku, 1)])
        try:
            self.inventory.receive(share_sku(round_id), terms.share_count)
            rounds.add(draw_round)
        except BaseException:
            self.inventory.release(round_id)
            raise
        self.publisher.publish(draw_round.collect_events())
        return draw_round

    def place_share_order(self, buyer: Actor, round_id: str, quantity: int = 1) -> Order:
        """Place a share order (``order.lucky_draw``) for ``quantity`` shares of a round.

        The round holds the shares for the order until it is paid (:meth:`pay_shares`), is
        cancelled, or its payment deadline passes.

        Raises:
            InvalidInput: Not a buyer, a bad quantity.
            NotFound: An unknown round.
            TransitionNotAllowed: The round no longer sells (sold out, drawn or unsold).
            DeadlinePassed: Its sell-by time has passed.
            OutOfStock: More shares than remain (``available`` says how many do).
            VersionConflict: The round changed meanwhile; nothing was stored, try again.

        """
        if not isinstance(buyer, Actor) or buyer.kind is not ActorKind.BUYER:
            raise InvalidInput("buyer", buyer, "only a buyer places a share order")
        draw_round = self._rounds.get(round_id)
        version = draw_round.version
        now = self.clock.now()
        sku = share_sku(draw_round.id)
        order = Order.place(
            order_id=self.ids.next_id("order"),
            buyer_id=buyer.id,
            merchant_id=draw_round.merchant_id,
            lines=[OrderLine("1", sku, quantity, draw_round.terms.share_price)],
            now=now,
            policy=self.policy,
            process=LUCKY_DRAW_ORDER_PROCESS,
            payment_method=PaymentMethod.ONLINE.value,
            terms=PricingTerms(sales_mode=_SALES_MODE, cod_allowed=False),
        )
        draw_round.reserve(buyer, order_id=order.id, quantity=quantity, now=now)
        self.inventory.reserve(order.id, [StockItem("1", sku, quantity)])
        try:
            self._rounds.save(draw_round, version)
        except BaseException:
            self.inventory.release(order.id)
            raise
        self.publisher.publish(draw_round.collect_events())
        try:
            self.orders.add(order)
        except BaseException:
            self.inventory.release(order.id)
            self._draw_release_shares(order.id)
            raise
        return self._publish(order)

    def pay_shares(self, order_id: str, buyer: Actor, *, key: str | None = None) -> DrawRound:
        """Pay a share order online; only a completed payment gets the order its numbers.

        The round is checked before the provider is asked. If it refuses the payment
        afterwards (its sell-by passed while the provider worked), the shares are released,
        the order is cancelled and refunded from its own payment, and the refusal is raised.
        The payment for the last share sells the round out, and draws it if the public number
        is already out.

        Returns:
            The round afterwards (``sold_out``, or already drawn, if this payment filled it).

        Raises:
            InvalidInput: Not a share order.
            NotFound: The order reserved no shares.
            DeadlinePassed, TransitionNotAllowed, RuleViolation: The round no longer takes the
                payment (checked before charging, or after: then refunded).
            PaymentNotCompleted: Declined or pending; the shares stay held.
            Forbidden: As for :meth:`pay`.

        """
        order = self._draw_share_order(order_id)
        round_id = self._draw_round_of(order.id)
        rehearsal = self._rounds.get(round_id)
        rehearsal.pay(
            _SYSTEM,
            order_id=order.id,
            amount=order.total,
            payment_ref="check",
            now=self.clock.now(),
        )
        self._pay_through_provider(order, buyer, key=key)
        return self._draw_shares_paid(order.id, round_id)

    def draw(self, round_id: str, actor: Actor) -> DrawRecord:
        """Draw a sold-out round now, with the public number the randomness port has.

        :meth:`expire_due` does this by itself; call it to draw at once.

        Returns:
            The stored record of the draw.

        Raises:
            Forbidden: Not the system or the platform.
            TransitionNotAllowed: The round is not sold out, or was drawn already.
            DrawInputsMissing: No public number yet (nor the fallback): nothing changed.
            VersionConflict: The round changed meanwhile; nothing changed, try again.

        """
        draw_round = self._rounds.get(round_id)
        version = draw_round.version
        record = draw_round.draw(
            actor, number=self._draw_public_number(draw_round), now=self._now()
        )
        self._rounds.save(draw_round, version)
        self.publisher.publish(draw_round.collect_events())
        self._draw_settle(draw_round.id, record)
        return record

    def confirm_prize_address(self, order_id: str, buyer: Actor, *, address: str) -> Order:
        """The winner says where the prize goes: the order may ship; the prize is deducted.

        Raises:
            InvalidInput: Not a share order, or a blank address.
            Forbidden: Anyone but the winner.
            TransitionNotAllowed: Not the winning order (a lost one, or one not drawn yet), or
                already answered.
            DeadlinePassed: The address deadline has passed.
            VersionConflict: The round changed meanwhile; nothing changed, try again.

        """
        order = self._draw_share_order(order_id)
        draw_round = self._rounds.get(self._draw_round_of(order.id))
        version = draw_round.version
        if "confirm_address" not in order.allowed_commands():  # only the winner awaits one
            raise TransitionNotAllowed(
                order.id, "confirm_address", order.state, order.allowed_commands()
            )
        draw_round.confirm_address(buyer, address=address, now=self._now())
        self._rounds.save(draw_round, version)
        self.publisher.publish(draw_round.collect_events())
        self.inventory.commit(draw_round.id)
        self._draw_fire(
            order.id,
            "confirm_address",
            buyer,
            allowed=_BUYERS,
            event=PrizeAddressGiven,
            round_id=draw_round.id,
            address=address,
        )
        return self.orders.get(order.id)

    def draw_round(self, round_id: str) -> DrawRound:
        """The round, as stored (check a draw with :meth:`DrawRound.verify`).

        Raises:
            NotFound: No such round.

        """
        return self._rounds.get(round_id)

    # ----------------------------------------------------------------- overrides

    def _pay_in_mode(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool
    ) -> Order | None:
        """How :meth:`pay` pays a share order: through :meth:`pay_shares`.

        Raises:
            InvalidInput: A share order authorized only (``capture=False``): shares are taken
                by a completed payment.

        """
        if order.process.name != LUCKY_DRAW_ORDER_PROCESS.name:
            return super()._pay_in_mode(order, actor, key=key, capture=capture)
        if not capture:
            raise InvalidInput("capture", capture, "a share order is paid in full at once")
        self.pay_shares(order.id, actor, key=key)
        return self.orders.get(order.id)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; an unpaid share order gives its shares back to the round.

        A winning order cancelled after its address was confirmed gives the prize back too.
        """
        order = super().cancel(order_id, actor, reason)
        if self.rounds is not None and order.process.name == LUCKY_DRAW_ORDER_PROCESS.name:
            self._draw_release_shares(order.id)
            self._draw_release_prize(order.id)
        return order

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback as before; a share order it paid then gets its numbers.

        If the round no longer takes the payment, the order is cancelled and refunded from its
        own payment instead. A repeat changes nothing.
        """
        outcome = super().handle_notification(payload)
        order = self.orders.get(self.payment_records.get(outcome.payment_id).order_id)
        if (
            self.rounds is None
            or order.process.name != LUCKY_DRAW_ORDER_PROCESS.name
            or order.state != _AWAITING_DRAW
        ):
            return outcome
        round_id = self._draw_round_of(order.id)
        if self.rounds.get(round_id).purchase(order.id).status is ShareStatus.HELD:
            with contextlib.suppress(EcommerceCoreError):  # refused: cancelled and refunded
                self._draw_shares_paid(order.id, round_id)
        return attrs.evolve(outcome, order_state=self.orders.get(order.id).state)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then settle every lucky-draw round that is due.

        Idempotent. An unpaid share order that timed out gives its shares back first; then
        each due round is drawn (sold out, its public number out), goes unsold (its sell-by
        passed) or forfeits its prize (no address in time). The orders moved are reported too.
        """
        fired = super().expire_due(now)
        if self.rounds is None:
            return fired
        moment = self._now() if now is None else now
        for each in fired:
            if each.state == OrderState.CANCELLED:
                self._draw_release_shares(each.order_id)
        for round_id in self.rounds.due(moment):
            fired.extend(self._draw_settle_round(round_id, moment))
        return fired

    # ----------------------------------------------------------------- internals

    def _draw_settle_round(self, round_id: str, moment: datetime) -> list[Expired]:
        """Draw a sold-out round whose B is out, or expire a round whose deadline passed."""
        draw_round = self._rounds.get(round_id)
        version = draw_round.version
        record: DrawRecord | None = None
        releases: tuple[Release, ...] | None = None
        if draw_round.state == DrawRoundState.SOLD_OUT:
            try:
                record = draw_round.draw(
                    _SYSTEM, number=self._draw_public_number(draw_round, moment), now=moment
                )
            except (DrawInputsMissing, InvalidInput):
                return []  # B is not out yet (or the port answered nonsense): try later
        else:
            releases = draw_round.expire(moment, _SYSTEM)
            if releases is None:
                return []
        try:
            self._rounds.save(draw_round, version)
        except VersionConflict:
            return []  # a concurrent writer moved it; the next call settles it
        self.publisher.publish(draw_round.collect_events())
        if record is not None:
            return self._draw_settle(round_id, record)
        assert releases is not None  # noqa: S101  # expired: drawn rounds returned above
        if draw_round.state == DrawRoundState.UNSOLD:
            return self._draw_cancel_orders(
                round_id, releases, reason="the round did not sell out in time"
            )
        return self._draw_forfeit(draw_round, releases)

    def _draw_public_number(
        self, draw_round: DrawRound, now: datetime | None = None
    ) -> PublicNumber | None:
        """B for the round: the first number out at or after its sell-out, if out by ``now``."""
        if self.randomness is None or draw_round.sold_out_at is None:
            return None
        number = self.randomness.public_number(draw_round.sold_out_at)
        moment = self._now() if now is None else now
        if number is None or number.published_at > moment:
            return None
        return number

    def _draw_share_order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order.process.name != LUCKY_DRAW_ORDER_PROCESS.name:
            raise InvalidInput("order_id", order_id, "not a share order (order.lucky_draw)")
        return order

    def _draw_round_of(self, order_id: str) -> str:
        round_id = self._rounds.round_of(order_id)
        if round_id is None:
            raise NotFound("share order", order_id)
        return round_id

    def _draw_shares_paid(self, order_id: str, round_id: str) -> DrawRound:
        paid = self.orders.get(order_id)
        assert paid.payment is not None  # noqa: S101  # called once the order is paid
        for _ in range(_RETRIES):
            draw_round = self._rounds.get(round_id)
            if draw_round.purchase(order_id).status is ShareStatus.PAID:
                return draw_round  # a repeat: the numbers were given already
            version = draw_round.version
            try:
                state = draw_round.pay(
                    _SYSTEM,
                    order_id=paid.id,
                    amount=paid.payment.amount,
                    payment_ref=paid.payment.reference,
                    now=self._now(),
                )
            except EcommerceCoreError as refused:
                self._draw_refuse_paid(round_id, paid, reason=str(refused))
                raise
            try:
                self._rounds.save(draw_round, version)
            except VersionConflict:
                continue
            self.publisher.publish(draw_round.collect_events())
            if state == DrawRoundState.SOLD_OUT:
                self._draw_settle_round(round_id, self._now())
            return self._rounds.get(round_id)
        raise VersionConflict(round_id, -1, None)  # pragma: no cover - contention beyond retries

    def _draw_refuse_paid(self, round_id: str, paid: Order, *, reason: str) -> None:
        """A paid order its round no longer takes: release its shares, cancel and refund it."""
        assert paid.payment is not None  # noqa: S101  # called with a paid order
        self._draw_release_shares(paid.id)
        self._draw_cancel_orders(
            round_id,
            releases_for_order(
                round_id,
                order_id=paid.id,
                buyer_id=paid.buyer_id,
                paid=paid.payment.amount,
                payment_ref=paid.payment.reference,
            ),
            reason=reason,
        )

    def _draw_settle(self, round_id: str, record: DrawRecord) -> list[Expired]:
        draw_round = self._rounds.get(round_id)
        moved: list[Expired] = []
        for purchase in draw_round.paid_purchases():
            won = purchase.order_id == record.winner_order_id
            found = self._draw_fire(
                purchase.order_id,
                "draw_won" if won else "draw_lost",
                _SYSTEM,
                allowed=SETTLERS,
                event=ShareOrderWon if won else ShareOrderLost,
                round_id=round_id,
                winning_number=record.winning_number,
            )
            if found is not None:
                moved.append(found)
        return moved

    def _draw_forfeit(self, draw_round: DrawRound, releases: Iterable[Release]) -> list[Expired]:
        assert draw_round.record is not None  # noqa: S101  # only a drawn round forfeits
        winner = draw_round.record.winner_order_id
        items = tuple(releases)
        moved = self._draw_fire(
            winner,
            "forfeit",
            _SYSTEM,
            allowed=SETTLERS,
            event=ShareOrderForfeited,
            round_id=draw_round.id,
            refunded=any(item.kind is ReleaseKind.REFUND for item in items),
        )
        self._draw_act_on(draw_round.id, items, reason="the prize was forfeited")
        return [] if moved is None else [moved]

    def _draw_cancel_orders(
        self, round_id: str, releases: Iterable[Release], *, reason: str
    ) -> list[Expired]:
        """Cancel each order the releases name (``round_unsold``) and act on every item once."""
        items = tuple(releases)
        moved: list[Expired] = []
        for order_id in dict.fromkeys(i.reference for i in items if i.reference != round_id):
            found = self._draw_fire(
                order_id,
                "round_unsold",
                _SYSTEM,
                allowed=SETTLERS,
                event=ShareOrderCancelled,
                round_id=round_id,
                reason=reason,
            )
            if found is not None:
                moved.append(found)
        self._draw_act_on(round_id, items, reason=reason)
        return moved

    def _draw_act_on(self, round_id: str, items: Iterable[Release], *, reason: str) -> None:
        touched: dict[str, None] = {}
        for item in items:
            if item.kind is ReleaseKind.STOCK and item.reference == round_id:
                self.inventory.release(round_id)  # the prize's unit
            elif item.kind is ReleaseKind.STOCK:
                self._release_holds(self.orders.get(item.reference))  # its share units, once
            elif item.kind is ReleaseKind.REFUND and item.payment_ref and item.amount:
                self._refund(
                    item.payment_ref,
                    _SYSTEM,
                    item.key,
                    amount=item.amount,
                    reason=reason,
                    automatic=True,
                )
            # QUOTA and COUPON_USES go back with the stock above (a share order takes none);
            # REBATE: a share order is granted no rebate, so none is pending.
            if item.reference != round_id:
                touched[item.reference] = None
        for order_id in touched:
            self.reconcile(order_id)

    def _draw_fire(
        self,
        order_id: str,
        trigger: str,
        actor: Actor,
        *,
        allowed: frozenset[ActorKind],
        event: type[DomainEvent],
        **fields: object,
    ) -> Expired | None:
        """Fire ``trigger`` on the order if its state allows it; ``None`` if it does not."""
        for _ in range(_RETRIES):
            order = self.orders.get(order_id)
            if trigger not in order.allowed_commands():
                return None  # moved by an earlier, interrupted call (or never could)
            version = order.version
            order.advance(
                trigger,
                actor,
                allowed=allowed,
                now=self._now(),
                policy=self.policy,
                event=event,
                **fields,
            )
            try:
                self.orders.save(order, version)
            except VersionConflict:
                continue
            self._publish(order)
            return Expired(order.id, trigger, order.state)
        raise VersionConflict(order_id, -1, None)  # pragma: no cover - contention beyond retries

    def _draw_release_shares(self, order_id: str) -> None:
        """Put an abandoned, unpaid share order's held shares back on sale (if it still sells)."""
        if self.rounds is None:
            return
        round_id = self.rounds.round_of(order_id)
        if round_id is None:
            return
        for _ in range(_RETRIES):
            draw_round = self._rounds.get(round_id)
            purchase = draw_round.purchase(order_id)
            if (
                draw_round.state != DrawRoundState.SELLING
                or purchase.status is not ShareStatus.HELD
            ):
                return
            version = draw_round.version
            draw_round.release(_SYSTEM, order_id=order_id, now=self._now())
            try:
                self._rounds.save(draw_round, version)
            except VersionConflict:
                continue
            self.publisher.publish(draw_round.collect_events())
            return

    def _draw_release_prize(self, order_id: str) -> None:
        """A cancelled winning order gives the prize's unit back (it was deducted on address)."""
        round_id = self._rounds.round_of(order_id)
        if round_id is None:
            return
        draw_round = self._rounds.get(round_id)
        record = draw_round.record
        if record is not None and record.winner_order_id == order_id:
            self.inventory.release(round_id)
