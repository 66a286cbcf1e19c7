"""The payment use cases: four payment methods over a ledger that never loses money.

:class:`PaymentService` is an :class:`~ecommerce_core.services.orders.OrderService` with a ledger,
a payment repository and (for credit) the buyers' credit lines. Every order use case works as
before; the ones that move money go through payment aggregates and the ledger:

- ``checkout(..., payment_method=...)`` picks the order's process (escrow, COD, credit) and
  refuses COD over its cap;
- :meth:`~PaymentService.pay` pays through the provider (a sale, or an authorization to capture
  later); :meth:`~PaymentService.capture`, :meth:`~PaymentService.void`,
  :meth:`~PaymentService.refund`; :meth:`~PaymentService.handle_notification` applies the
  provider's callbacks, at least once, in any order, sometimes late;
- :meth:`~PaymentService.collect_cod`, :meth:`~PaymentService.refuse_cod`,
  :meth:`~PaymentService.cod_returned`, :meth:`~PaymentService.remit_cod`;
- :meth:`~PaymentService.pay_with_credit`, :meth:`~PaymentService.repay`.

Each command saves the payment aggregate with the version it loaded (two concurrent captures or
refunds: the second raises :class:`~ecommerce_core.errors.VersionConflict` before the provider
is asked), then appends the payment's postings to the ledger (idempotent by key: a crash between
the two is repaired by the next command), then :meth:`~PaymentService.reconcile` brings the
order in line with its payments. Reconciling is idempotent and safe to call at any time:

- a payment that covers an unpaid order pays it;
- money the order does not keep goes back automatically: a capture that arrives after the order
  was cancelled, a duplicate capture, every capture of a cancelled order; an open payment of a
  cancelled order is voided;
- while a payment is in flight, or a refund is open, the order's deadline is paused (a late
  notification never fights the payment timeout, and a refund pauses auto-confirm);
- an escrow order awaiting release is released line by line, then completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.errors import (
    DefinitionError,
    InvalidInput,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.money import Money
from ecommerce_core.orders import Order
from ecommerce_core.payments.base import PaymentRecord, Refund
from ecommerce_core.payments.cod import (
    CodPayment,
    collect_order,
    refuse_order,
    return_order,
)
from ecommerce_core.payments.credit import CreditPayment, Installment
from ecommerce_core.payments.escrow import EscrowPayment
from ecommerce_core.payments.online import GatewayPayment, GatewayState
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.ports import ChargeRequest, GatewayStatus
from ecommerce_core.services.payment_core import PaymentCore, narrow
from ecommerce_core.services.pricing import confirm_payment_holds

__all__ = [
    "NotificationOutcome",
    "PaymentService",
]

_SYSTEM: Final = Actor.system("payments")


@attrs.frozen
class NotificationOutcome:
    """What :meth:`PaymentService.handle_notification` made of a provider callback.

    Attributes:
        event_id: The provider's event id.
        payment_id: The payment it was for.
        outcome: ``"applied"``, ``"repeat"``, or why it changed nothing.
        order_state: The order's state afterwards.

    """

    event_id: str
    payment_id: str
    outcome: str
    order_state: str


@attrs.define
class PaymentService(PaymentCore):
    """The order use cases, with the four payment methods on a ledger.

    Build it like an :class:`~ecommerce_core.services.orders.OrderService`, with a ``ledger``, a
    ``payment_records`` repository and, for credit, ``credit_lines`` (see
    :class:`~ecommerce_core.services.payment_core.PaymentCore` for every field).
    """

    # ----------------------------------------------------------------- online and escrow

    def pay(
        self, order_id: str, actor: Actor, *, key: str | None = None, capture: bool = True
    ) -> Order:
        """Pay an online or escrow order through the provider.

        With ``capture`` (the default) it is a sale: authorized and captured at once. Without,
        only authorized: capture later with :meth:`capture`. The order's payment deadline is
        paused while the provider works; a payment that does not complete leaves the order
        unpaid with its clock running again.

        Args:
            order_id: The order.
            actor: Its buyer, the platform or the system.
            key: The idempotency key; a repeat returns the order without asking the provider.
            capture: ``False`` to authorize only.

        Returns:
            The paid order.

        Raises:
            Forbidden: The actor may not pay this order.
            TransitionNotAllowed: The order is not awaiting payment (COD never is).
            InvalidInput: A credit order (see :meth:`pay_with_credit`); ``capture`` not a bool.
            RuleViolation: Another payment for the order is still in flight.
            PaymentNotCompleted: Declined, or still pending at the provider (the payment stays
                pending; a notification will settle it).

        """
        if type(capture) is not bool:  # "no" is truthy: it would capture
            raise InvalidInput("capture", capture, "must be True (a sale) or False (authorize)")
        order = self.orders.get(order_id)
        in_mode = self._pay_in_mode(order, actor, key=key, capture=capture)
        if in_mode is not None:
            return in_mode
        return self._pay_through_provider(order, actor, key=key, capture=capture)

    def _pay_in_mode(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool
    ) -> Order | None:
        """Pay ``order`` the way its sales mode does, or ``None``: through the provider.

        A part of :class:`~ecommerce_core.services.campaigns.CampaignService` overrides it for
        the orders of its own process and hands every other order to ``super()``.
        """

    def _pay_through_provider(
        self, order: Order, actor: Actor, *, key: str | None, capture: bool = True
    ) -> Order:
        """:meth:`pay` for ``order`` as loaded by this command, whatever its sales mode."""
        if order.payment_method == PaymentMethod.CREDIT:
            raise InvalidInput("payment_method", "credit", "credit orders pay with pay_with_credit")
        earlier = self.payments_of(order.id)
        for payment in earlier:
            if key and isinstance(payment, GatewayPayment) and payment.started_with(key):
                return self._outcome(self.reconcile(order.id), payment.id, paid=capture)
        order.ensure_can("pay", actor, order.total)
        self._before_payment(order)  # pricing: re-check the offer, take stock/limits at payment
        live = [
            p
            for p in earlier
            if isinstance(p, GatewayPayment)
            and p.state in (GatewayState.CREATED, GatewayState.AUTHORIZED)
        ]
        if live:
            raise RuleViolation(
                order.id, "pay", order.state, f"payment {live[0].id!r} is still {live[0].state}"
            )
        now = self.clock.now()
        kind = EscrowPayment if order.payment_method == PaymentMethod.ESCROW else GatewayPayment
        payment = kind.start(self.ids.next_id("payment"), order, actor, now=now, key=key or "")
        version = order.version
        order.pause_clock(f"payment:{payment.id}", _SYSTEM, now=now)
        self.orders.save(order, version)
        self._publish(order)
        if not capture:
            self.payment_records.add(payment)
            self._publish_payment(payment)
            self._authorize_only(payment.id, order)
            return self._outcome(self.reconcile(order.id), payment.id, paid=False)
        # A sale: the capture is asked in the same write that stores the payment, before the
        # provider is called, so a crash after the call leaves a pending capture to settle.
        sale = f"{payment.id}:sale"
        payment.request_capture(sale, actor, amount=order.total, now=now)
        self.payment_records.add(payment)
        self._publish_payment(payment)
        result = self.payments.charge(ChargeRequest(order.id, order.total, sale, payment.id))
        self._apply_capture(payment.id, sale, result, loaded=payment)
        if earlier:
            paid = self._reconcile_after(order, [*earlier, payment])
        else:  # the order's first payment: what reconcile does for it is known
            paid = self._reconcile_sale(order, payment)
        return self._outcome(paid, payment.id, paid=True)

    def capture(self, payment_id: str, actor: Actor, *, amount: Money, key: str) -> PaymentRecord:
        """Capture part or all of what is left of an authorization.

        Raises:
            Forbidden: Not the order's merchant, the platform or the system.
            TransitionNotAllowed: The payment cannot capture any more.
            InvalidInput: A zero or negative amount, or more than is left to capture; a key
                that is not a non-empty string.
            VersionConflict: A concurrent command changed the payment first; the provider
                was not asked.

        """
        _check_key(key)
        payment = self._gateway_payment(payment_id)
        self._capture(payment.id, actor, amount, f"{payment.id}:capture:{key}", sale=False)
        self.reconcile(payment.order_id)
        return self.payment_records.get(payment_id)

    def void(self, payment_id: str, actor: Actor) -> PaymentRecord:
        """Void a payment before any capture (a pending one too); the order's clock runs again.

        Returns:
            The payment: voided, or unchanged if the provider has not answered yet.

        Raises:
            Forbidden: Not the buyer, the platform or the system.
            TransitionNotAllowed: Money was captured (refund it), or it is already closed.
            RuleViolation: The provider declined the void.

        """
        payment = self._gateway_payment(payment_id)
        result = self._void(payment, actor)
        if result.status is GatewayStatus.DECLINED:
            raise RuleViolation(payment.id, "void", payment.state, result.message)
        self.reconcile(payment.order_id)
        return self.payment_records.get(payment_id)

    def handle_notification(self, payload: Mapping[str, str]) -> NotificationOutcome:
        """Apply a provider callback: idempotent by event id, in any order, however late.

        Raises:
            InvalidInput: A malformed or unsigned payload, or one the payment cannot take.
            NotFound: A payment we do not know.
            IdempotencyConflict: The event id came with another payload before.

        """
        notification = self.payments.parse_notification(payload)
        payment = self._gateway_payment(notification.payment_id)
        outcomes: list[str] = []

        def apply(p: PaymentRecord) -> None:
            outcomes.append(
                narrow(p, GatewayPayment).notify(
                    notification, now=self._now(), policy=self.payment_policy
                )
            )

        self._change(payment.id, apply, retry=True)
        order = self.reconcile(payment.order_id)
        return NotificationOutcome(notification.event_id, payment.id, outcomes[-1], order.state)

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
        """Give money back: ``amount`` (split over the lines) or ``lines`` (per line id).

        Through the provider for online and escrow (pending until it answers; the order's
        deadline is paused meanwhile), at once for COD and credit. A repeat of ``key`` returns
        the refund already asked.

        Returns:
            The refund: succeeded, failed (it does not count), or pending.

        Raises:
            Forbidden: Not the order's merchant, the platform or the system.
            InvalidInput: A zero, negative or too large amount, an unknown line; a key that
                is not a non-empty string.
            CurrencyMismatch: Another currency.
            RuleViolation: Nothing was paid for the order.
            VersionConflict: A concurrent command changed the payment first.

        """
        _check_key(key)
        order = self.orders.get(order_id)
        payment = self._paying(order)
        refund = self._refund(
            payment.id,
            actor,
            f"{payment.id}:refund:{key}",
            amount=amount,
            lines=lines,
            reason=reason,
        )
        self.reconcile(order.id)
        return self.payment_records.get(payment.id).refund(refund.id)

    # ----------------------------------------------------------------- cash on delivery

    def collect_cod(self, order_id: str, carrier: Actor, *, amount: Money, key: str) -> Order:
        """The carrier collected the cash at the door: the order completes.

        Raises:
            Forbidden: Not the carrier the order shipped with, the platform or the system.
            TransitionNotAllowed: The order is not awaiting collection.
            InvalidInput: Not the order total, or a key that is not a non-empty string.

        """
        _check_key(key)
        order = self.orders.get(order_id)
        payment = self._cod_payment(order)
        version, now = payment.version, self._now()
        if payment.collect(f"{payment.id}:collect:{key}", carrier, amount=amount, now=now):
            collect_order(order, carrier, amount=amount, now=now, policy=self.policy)
            self._save_payment(payment, version)
            self._save_order(order)
        return self.reconcile(order_id)

    def refuse_cod(self, order_id: str, carrier: Actor, *, reason: str) -> Order:
        """The buyer refused the parcel at the door (拒收): it goes back; nothing is refunded.

        Raises:
            Forbidden: Not the carrier the order shipped with, the platform or the system.
            TransitionNotAllowed: The order is not awaiting collection.

        """
        order = self.orders.get(order_id)
        payment = self._cod_payment(order)
        version, now = payment.version, self._now()
        payment.refuse(carrier, reason=reason, now=now)
        refuse_order(order, carrier, reason=reason, now=now, policy=self.policy)
        self._save_payment(payment, version)
        return self._save_order(order)

    def cod_returned(self, order_id: str, actor: Actor) -> Order:
        """A refused parcel arrived back: the order is returned and its stock is back on hand.

        Raises:
            Forbidden: Not the carrier, the order's merchant, the platform or the system.
            TransitionNotAllowed: The order is not on its way back.

        """
        order = self.orders.get(order_id)
        return_order(order, actor, now=self._now(), policy=self.policy)
        self._save_order(order)
        self.inventory.release(order.id)
        return order

    def remit_cod(self, order_id: str, carrier: Actor) -> PaymentRecord:
        """The carrier remits the cash it collected to the merchant, keeping its COD fee.

        Raises:
            Forbidden: Not the carrier who collected, the platform or the system.
            TransitionNotAllowed: Not collected yet, or already remitted.

        """
        payment = self._cod_payment(self.orders.get(order_id))
        return self._change(
            payment.id,
            lambda p: narrow(p, CodPayment).remit(
                carrier, now=self._now(), policy=self.payment_policy
            ),
        )

    # ----------------------------------------------------------------- credit

    def pay_with_credit(
        self, order_id: str, actor: Actor, *, periods: int, key: str | None = None
    ) -> Order:
        """Pay a credit order: the provider pays the merchant, the buyer owes installments.

        Raises:
            Forbidden: The actor may not pay this order.
            TransitionNotAllowed: The order is not awaiting payment.
            InvalidInput: Not a credit order, or a number of periods not offered.
            CreditLimitExceeded: More than the buyer's available credit; nothing changed.
            NotFound: The buyer has no credit line.
            DefinitionError: The service has no credit lines port.

        """
        lines = self.credit_lines
        if lines is None:
            raise DefinitionError("PaymentService", ["credit payments need a credit_lines port"])
        order = self.orders.get(order_id)
        if order.payment_method != PaymentMethod.CREDIT:
            raise InvalidInput("payment_method", order.payment_method, "not a credit order")
        order.ensure_can("pay", actor, order.total)
        self.payment_policy.credit_fee(order.total, periods)  # refuse bad periods before drawing
        now = self._now()
        lines.draw(f"{order.id}:credit:{key or 'draw'}", order.buyer_id, order.total)
        payment = CreditPayment.draw(
            self.ids.next_id("payment"),
            order,
            actor,
            provider_id=self.credit_provider,
            periods=periods,
            now=now,
            policy=self.payment_policy,
        )
        self.payment_records.add(payment)
        self._after_save(payment)
        version = order.version
        order.pay(actor, amount=order.total, reference=payment.id, now=now)
        try:
            self.orders.save(order, version)
        except VersionConflict:
            self.reconcile(order.id)  # the order moved on: the draw goes back
            raise
        self.inventory.commit(order.id)
        confirm_payment_holds(order, self.promotion_ledger)
        self._publish(order)
        return order

    def repay(self, order_id: str, actor: Actor, *, key: str) -> Installment:
        """The buyer repays the next installment (with any overdue penalty).

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: Nothing is owed.
            InvalidInput: A key that is not a non-empty string.

        """
        _check_key(key)
        payment = self._paying(self.orders.get(order_id))
        repaid: list[Installment] = []
        self._change(
            payment.id,
            lambda p: repaid.append(
                narrow(p, CreditPayment).repay(
                    key, actor, now=self._now(), policy=self.payment_policy
                )
            ),
        )
        return repaid[-1]


def _check_key(key: object) -> None:
    """Refuse an idempotency key that is not a non-empty string (None would become "None")."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput("key", key, "must be a non-empty string: the request's idempotency key")
