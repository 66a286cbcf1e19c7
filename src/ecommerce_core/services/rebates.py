"""Rebates (返利) wired into orders and the ledger: cashback never paid on refunded money.

:class:`Rebates` is the rebate part of
:class:`~ecommerce_core.services.campaigns.CampaignService`. The pricing engine's post-order
stage puts a rebate on the order as an :class:`~ecommerce_core.orders.Entitlement` (kind
``"rebate"``, its amount and who funds it) in the order's
:class:`~ecommerce_core.orders.PricingTerms`; this part grants one
:class:`~ecommerce_core.campaigns.rebate.Rebate` per such entitlement and keeps it in line
with the order and the order's money **as the ledger shows it**.

**The seam.** Every path that moves an order's money or state ends in
:meth:`~ecommerce_core.services.payment_core.PaymentCore.reconcile`: paying, a provider's
notification, cancelling, receipt confirmation, every refund (``PaymentService.refund``, the
after-sales :func:`~ecommerce_core.services.aftersales.ledger_refunds` handler, automatic
give-backs, a failed team's refunds). This part overrides ``reconcile`` (and
``pay_with_credit`` and ``expire_due``, which do not always reach it) and then *syncs* the
order's rebates, idempotently:

- **Granted** (pending) once the order is paid (a cash-on-delivery order: once the ledger
  shows its goods collected), never for a cancelled order. The base is what was paid for the
  goods (the lines, freight excluded); the amount, the entitlement's.
- **Refunds.** The goods money the order no longer keeps (paid in less refunded on its lines,
  from the ledger; a refund of a duplicate payment keeps the goods paid, so it does not count)
  is handed to :meth:`Rebate.refund <ecommerce_core.campaigns.rebate.Rebate.refund>` as it
  grows: before crediting the rebate shrinks in proportion or is voided; after crediting the
  excess is clawed back. Refunds still pending at the provider count only once they succeed.
- **Abandoned.** An order that ends anywhere but ``closed`` (cancelled before shipment, timed
  out, its team failed ...) voids a rebate still pending or frozen, once.
- **Frozen** when receipt is confirmed (by the buyer or by the deadline), until the end of the
  after-sales window: the order's ``close`` deadline.
- **Credited** by :meth:`Rebates.expire_due` once that time has come *and* the order is closed
  (an open after-sales request pauses the order's clock, and with it the credit).

**Money.** A credit posts ``funder → rebate_payable:<buyer>``
(:attr:`~ecommerce_core.payments.ledger.Movement.REBATE_CREDIT`), a clawback the reverse;
the funder is the platform's rebate budget (``rebate_expense:platform``) or the order's
merchant, per the entitlement's ``funded_by``. Postings are keyed by the rebate and derived
from its stored ``credited`` and ``clawed_back``, so a crash between saving the rebate and
posting is repaired by the next sync. Rebate postings are not the order's paid-in money:
:func:`~ecommerce_core.payments.ledger.order_money` leaves them out, and every account still
sums to zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ecommerce_core.actors import Actor
from ecommerce_core.campaigns.rebate import Rebate, RebateState
from ecommerce_core.errors import Conflict, VersionConflict
from ecommerce_core.money import Money
from ecommerce_core.orders import Entitlement, Order, OrderState
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement, Posting, order_money
from ecommerce_core.ports import RebateRepository
from ecommerce_core.services._parts import required
from ecommerce_core.services.orders import Expired
from ecommerce_core.services.payments import PaymentService

__all__ = [
    "Rebates",
    "rebate_id_for",
]

_SYSTEM: Final = Actor.system("rebates")
_RETRIES: Final = 5
_CLOSE: Final = "close"
_LIVE: Final = frozenset({RebateState.PENDING, RebateState.FROZEN})


def rebate_id_for(order_id: str, index: int) -> str:
    """The id of the rebate granted for an order's ``index``-th rebate entitlement (from 1).

    Ids are derived, not drawn, so two writers granting the same rebate collide on
    :meth:`~ecommerce_core.ports.RebateRepository.add` instead of granting it twice.
    """
    return f"{order_id}:rebate:{index}"


class Rebates(PaymentService):
    """The rebate use cases: a part of ``CampaignService``, never built alone.

    Every override passes every order on (``super()``) first and only then syncs the rebates
    of orders whose pricing terms carry a rebate entitlement; other orders are left alone.

    Attributes:
        rebates: Where rebates are stored (``None``: rebates are not granted).

    """

    __slots__ = ()
    rebates: RebateRepository | None

    @property
    def _rebates(self) -> RebateRepository:
        return required(self.rebates, "rebates", "rebate")

    # ----------------------------------------------------------------- reading

    def rebates_of(self, order_id: str) -> list[Rebate]:
        """The rebates granted on an order (none before it is paid), as stored, by id.

        Raises:
            DefinitionError: The service was built without ``rebates``.

        """
        repository = self._rebates
        return [repository.get(rebate_id) for rebate_id in repository.for_order(order_id)]

    # ----------------------------------------------------------------- overrides

    def _reconciled(self, order: Order) -> Order:
        """After every reconcile, bring the order's rebates in line with it and its money."""
        order = super()._reconciled(order)
        self._sync_rebates(order.id)
        return order

    def pay_with_credit(
        self, order_id: str, actor: Actor, *, periods: int, key: str | None = None
    ) -> Order:
        """Pay with credit as before; the order's rebate is then granted."""
        order = super().pay_with_credit(order_id, actor, periods=periods, key=key)
        self._sync_rebates(order.id)
        return order

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before, then settle rebates, then credit the due ones.

        Idempotent. The rebates of every order a deadline moved are synced (auto-confirmed:
        frozen; timed out: voided); then every frozen rebate whose thaw time has come is
        credited, if its order is closed (a paused after-sales clock postpones it).
        """
        fired = super().expire_due(now)
        if self.rebates is None:
            return fired
        moment = self.clock.now() if now is None else now
        for each in fired:
            self._sync_rebates(each.order_id)
        for rebate_id in self._rebates.due(moment):
            self._credit(rebate_id, moment)
        return fired

    # ----------------------------------------------------------------- internals

    def _sync_rebates(self, order_id: str) -> None:
        if self.rebates is None:
            return
        for _ in range(_RETRIES):
            try:
                self._sync_once(order_id)
            except VersionConflict:
                continue
            return
        raise VersionConflict(order_id, -1, None)  # pragma: no cover - contention beyond retries

    def _sync_once(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        entitled = _entitlements(order)
        if not entitled:
            return
        base = _goods_base(order)
        paid_in, kept = self._goods_money(order)
        paid = order.payment is not None or (base.is_positive and paid_in >= base)
        lost = base - min(kept, base) if paid else Money.zero(order.currency)
        for rebate_id, entitlement in entitled:
            rebate = self._granted(order, rebate_id, entitlement, base, paid=paid)
            if rebate is None:
                continue
            version = rebate.version
            self._apply(rebate, order, lost)
            if rebate.version != version:
                self._rebates.save(rebate, version)
                self.publisher.publish(rebate.collect_events())
            self._post(rebate, order, entitlement)

    def _granted(
        self, order: Order, rebate_id: str, entitlement: Entitlement, base: Money, *, paid: bool
    ) -> Rebate | None:
        """The stored rebate, or a new one granted now if the order is paid and alive.

        Paid: the order recorded its payment, or (cash on delivery, collected at the door
        without one) the ledger shows its goods paid in.
        """
        if rebate_id in self._rebates.for_order(order.id):
            return self._rebates.get(rebate_id)
        if not paid or order.state == OrderState.CANCELLED or not base.is_positive:
            return None
        assert entitlement.amount is not None  # noqa: S101  # filtered by _entitlements
        rebate = Rebate.grant(
            _SYSTEM,
            rebate_id=rebate_id,
            order_id=order.id,
            beneficiary_id=order.buyer_id,
            base=base,
            amount=min(entitlement.amount, base),
            now=self.clock.now(),
        )
        try:
            self._rebates.add(rebate)
        except Conflict:
            return self._rebates.get(rebate_id)  # a concurrent writer granted it first
        self.publisher.publish(rebate.collect_events())
        return self._rebates.get(rebate_id)

    def _apply(self, rebate: Rebate, order: Order, lost: Money) -> None:
        """Refunds first, then abandonment, then receipt: each a no-op once applied."""
        now = self.clock.now()
        grown = lost - rebate.refunded
        if grown.is_positive and not rebate.is_final:
            rebate.refund(_SYSTEM, amount=grown, now=now)
        if rebate.state in _LIVE and order.is_final and order.state != OrderState.CLOSED:
            reason = order.cancellation.reason if order.cancellation else order.state
            rebate.void(_SYSTEM, reason=f"order {order.state}: {reason}", now=now)
        if rebate.state == RebateState.PENDING:
            thaw_at = _window_end(order, now)
            if thaw_at is not None:
                rebate.freeze(_SYSTEM, thaw_at=thaw_at, now=now)

    def _credit(self, rebate_id: str, now: datetime) -> None:
        order_id = self._rebates.get(rebate_id).order_id
        self._sync_rebates(order_id)  # refunds and abandonment first
        order = self.orders.get(order_id)
        rebate = self._rebates.get(rebate_id)
        if not order.is_final or rebate.due_at is None or rebate.due_at > now:
            return  # the order's after-sales window was extended, or it was voided
        version = rebate.version
        rebate.expire(now, _SYSTEM)
        try:
            self._rebates.save(rebate, version)
        except VersionConflict:
            return  # a concurrent writer moved it; the next call settles it
        self.publisher.publish(rebate.collect_events())
        self._sync_rebates(order_id)  # posts the credit

    def _goods_money(self, order: Order) -> tuple[Money, Money]:
        """The goods money paid in, and kept (paid in less refunded), on the order's lines."""
        money = order_money(order.id, order.currency, self.ledger.postings(order.id))
        zero = Money.zero(order.currency)
        lines = [line for line_id, line in money.lines.items() if line_id != ORDER_LEVEL]
        paid_in = sum((line.paid_in for line in lines), zero)
        kept = sum((line.paid_in - line.refunded for line in lines), zero)
        return paid_in, max(kept, zero)

    def _post(self, rebate: Rebate, order: Order, entitlement: Entitlement) -> None:
        """Append what the ledger lacks of the rebate's credit and clawbacks (by key)."""
        zero = Money.zero(order.currency)
        prefix = f"{rebate.id}:"
        credited = clawed = zero
        for posting in self.ledger.postings(order.id):
            if not posting.key.startswith(prefix):
                continue
            if posting.movement is Movement.REBATE_CREDIT:
                credited += posting.amount
            elif posting.movement is Movement.REBATE_CLAWBACK:
                clawed += posting.amount
        funder = (
            Account.merchant(order.merchant_id)
            if entitlement.funded_by == "merchant"
            else Account.rebate_expense()
        )
        payable = Account.rebate_payable(rebate.beneficiary_id)
        missing: list[Posting] = []
        if rebate.credited > credited:
            at = rebate.thaw_at or self.clock.now()
            missing.append(
                Posting(
                    f"{rebate.id}:credit",
                    order.id,
                    ORDER_LEVEL,
                    funder,
                    payable,
                    rebate.credited - credited,
                    Movement.REBATE_CREDIT,
                    at,
                )
            )
        if rebate.clawed_back > clawed:
            missing.append(
                Posting(
                    f"{rebate.id}:clawback:{rebate.clawed_back.minor}",
                    order.id,
                    ORDER_LEVEL,
                    payable,
                    funder,
                    rebate.clawed_back - clawed,
                    Movement.REBATE_CLAWBACK,
                    self.clock.now(),
                )
            )
        if missing:
            self.ledger.append(missing)


def _goods_base(order: Order) -> Money:
    """What an order's goods cost the buyer: its lines after discounts, freight excluded."""
    return sum((line.amount for line in order.lines), Money.zero(order.currency))


def _entitlements(order: Order) -> list[tuple[str, Entitlement]]:
    """The order's rebate entitlements with a positive amount, each with its rebate id."""
    if order.terms is None:
        return []
    rebates = [e for e in order.terms.entitlements if e.kind == "rebate"]
    return [
        (rebate_id_for(order.id, index), entitlement)
        for index, entitlement in enumerate(rebates, start=1)
        if entitlement.amount is not None and entitlement.amount.is_positive
    ]


def _window_end(order: Order, now: datetime) -> datetime | None:
    """When the order's after-sales window ends, once receipt is confirmed; else ``None``."""
    if order.deadline is not None and order.deadline.trigger == _CLOSE:
        return max(order.deadline.at, now)
    if order.paused is not None and order.paused.trigger == _CLOSE:
        return now + order.paused.remaining
    if order.state == OrderState.CLOSED:
        return now
    return None
