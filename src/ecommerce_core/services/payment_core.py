"""The payment machinery under :class:`~ecommerce_core.services.payments.PaymentService`.

:class:`PaymentCore` is an :class:`~ecommerce_core.services.orders.OrderService` with a ledger, a
payment repository and (for credit) the buyers' credit lines. It holds what every payment use
case shares:

- the outbox: a payment aggregate is saved with the version it was loaded at (a concurrent
  writer gets :class:`~ecommerce_core.errors.VersionConflict` before the provider is asked),
  then its postings are appended to the ledger by key (a crash between the two is repaired by
  the next command), its credit restorations applied by key, its events published;
- :meth:`PaymentCore.reconcile`, which brings an order in line with its payments: pays an
  unpaid order its payment covers; gives back money the order does not keep (a capture after
  a cancel, a duplicate capture, everything of a cancelled order) and voids an open payment of
  a cancelled order; pauses the order's deadline while a payment is in flight or a refund is
  open; releases escrow once receipt is confirmed;
- the order use cases that move money, made money-aware: ``checkout`` picks the process per
  payment method, ``ship`` starts COD collection, ``confirm_receipt`` and ``expire_due``
  release escrow, ``cancel`` gives the money back; ``expire_due`` also lapses authorizations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, TypeVar

import attrs

from ecommerce_core.actors import Actor
from ecommerce_core.errors import (
    InvalidInput,
    PaymentNotCompleted,
    RuleViolation,
    VersionConflict,
)
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderState
from ecommerce_core.payments import METHOD_PROCESSES
from ecommerce_core.payments.base import PaymentRecord, Refund, RefundStatus
from ecommerce_core.payments.cod import (
    CodPayment,
)
from ecommerce_core.payments.credit import CreditPayment
from ecommerce_core.payments.escrow import AWAITING_RELEASE, EscrowPayment, settle_order
from ecommerce_core.payments.ledger import OrderMoney, order_money
from ecommerce_core.payments.online import CaptureStatus, GatewayPayment, GatewayState
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.ports import (
    AuthorizeRequest,
    CaptureRequest,
    ChargeRequest,
    CreditLines,
    GatewayResult,
    GatewayStatus,
    Ledger,
    PaymentRepository,
    RefundRequest,
    VoidRequest,
)
from ecommerce_core.process import Process
from ecommerce_core.services.orders import Expired, OrderService
from ecommerce_core.services.pricing import confirm_payment_holds

__all__ = [
    "PaymentCore",
    "can_still_complete",
    "in_flight",
    "narrow",
]

_SYSTEM: Final = Actor.system("payments")
_RETRIES: Final = 5
_HOLD_PREFIXES: Final = ("payment:", "refund:")
P = TypeVar("P", bound=PaymentRecord)


@attrs.define
class PaymentCore(OrderService):
    """The order use cases with a ledger underneath: fields, reconciliation, the outbox.

    Attributes:
        ledger: The double-entry book.
        payment_records: Where payment aggregates are stored.
        credit_lines: The buyers' credit lines (needed for credit payments only).
        payment_policy: Commission, COD, authorization and credit terms.
        credit_provider: The credit provider's id, for its ledger account.

    """

    ledger: Ledger = attrs.field(kw_only=True)
    payment_records: PaymentRepository = attrs.field(kw_only=True)
    credit_lines: CreditLines | None = attrs.field(default=None, kw_only=True)
    payment_policy: PaymentPolicy = attrs.field(factory=PaymentPolicy, kw_only=True)
    credit_provider: str = attrs.field(default="credit-provider", kw_only=True)

    # ----------------------------------------------------------------- reading

    def money(self, order_id: str) -> OrderMoney:
        """What the order's money did, from the ledger: paid in, held, released, refunded ...

        Raises:
            NotFound: No such order.

        """
        order = self.orders.get(order_id)
        return order_money(order.id, order.currency, self.ledger.postings(order.id))

    def payments_of(self, order_id: str) -> list[PaymentRecord]:
        """The order's payments, oldest first."""
        return [self.payment_records.get(pid) for pid in self.payment_records.for_order(order_id)]

    # ----------------------------------------------------------------- order commands

    def ship(self, order_id: str, actor: Actor, *, carrier: str, tracking_number: str) -> Order:
        """Ship as before; a COD order's stock is deducted now and its collection starts."""
        order = super().ship(order_id, actor, carrier=carrier, tracking_number=tracking_number)
        if order.payment_method == PaymentMethod.COD:
            self.inventory.commit(order.id)
            confirm_payment_holds(order, self.promotion_ledger)
            self._cod_payment(order)
        return order

    def confirm_receipt(self, order_id: str, actor: Actor) -> Order:
        """Confirm receipt as before; an escrow order is then released to its merchant."""
        order = super().confirm_receipt(order_id, actor)
        return self._reconcile_after(order)

    def cancel(self, order_id: str, actor: Actor, reason: str) -> Order:
        """Cancel as before; what was paid goes back, and a payment in flight is voided."""
        super().cancel(order_id, actor, reason)
        return self.orders.get(order_id)

    def expire_due(self, now: datetime | None = None) -> list[Expired]:
        """Fire due deadlines as before; release auto-confirmed escrow; lapse authorizations."""
        fired = super().expire_due(now)
        for each in fired:
            if each.state == AWAITING_RELEASE:
                self.reconcile(each.order_id)
        moment = self._now() if now is None else now
        for payment_id in self.payment_records.due(moment):
            payment = self.payment_records.get(payment_id)
            version = payment.version
            if isinstance(payment, GatewayPayment) and payment.expire(moment):
                try:
                    self._save_payment(payment, version)
                except VersionConflict:
                    continue
                self.reconcile(payment.order_id)
        return fired

    def reconcile(self, order_id: str, *, retry_failed: bool = False) -> Order:
        """Bring an order in line with its payments; idempotent, safe to call at any time.

        Pays an unpaid order its payment covers, gives back money the order does not keep,
        voids an open payment of a cancelled order, pauses the order's deadline while a payment
        is in flight or a refund is open, and releases escrow once receipt is confirmed.

        Money the order does not keep is given back automatically once; if the provider
        declines that refund, it stays failed (the money shows as still refundable) until a
        call with ``retry_failed`` tries again.
        """
        for attempt in range(_RETRIES):
            try:
                order = self._reconcile(order_id, retry_failed=retry_failed)
            except VersionConflict:
                if attempt == _RETRIES - 1:
                    raise
                continue
            return self._reconciled(order)
        raise AssertionError  # pragma: no cover - the loop returns or raises

    # ----------------------------------------------------------------- hooks

    def _process_for(self, method: PaymentMethod) -> Process:
        if method is PaymentMethod.ONLINE:
            return self.process
        return METHOD_PROCESSES[method]

    def _check_method(self, method: PaymentMethod, orders: Sequence[Order]) -> None:
        if method is not PaymentMethod.COD:
            return
        for order in orders:
            refusal = self.payment_policy.cod_refusal(order.total, order.sales_mode)
            if refusal is None and order.terms is not None and not order.terms.cod_allowed:
                refusal = f"cash on delivery is not offered for {order.sales_mode!r} sales"
            if refusal is not None:
                raise RuleViolation("", "checkout", "cart", refusal)

    def _refund_before_cancel(self, order_id: str, actor: Actor, reason: str) -> None:
        """Nothing up front: the ledger tracks the refund after the cancel (see ``_undo``)."""

    def _undo(self, order: Order) -> None:
        self._release_holds(order)
        self._publish(order)
        self.reconcile(order.id)

    # ----------------------------------------------------------------- reconciling

    def _reconcile_after(
        self, order: Order, payments: Sequence[PaymentRecord] | None = None
    ) -> Order:
        """:meth:`reconcile` an order this command just saved, without loading it again.

        ``order`` is as stored; ``payments`` (all of the order's, as stored; ``None``: loaded
        here). A concurrent change to the order surfaces as a :class:`VersionConflict` on its
        save, and then the whole reconcile runs again from the repositories. Payments passed
        in are not checked again: one changed meanwhile by another writer is caught up by that
        writer's own reconcile (every payment command reconciles its order).
        """
        if payments is None:
            payments = self.payments_of(order.id)
        try:
            order = self._reconcile_loaded(order, payments, retry_failed=False)
        except VersionConflict:
            return self.reconcile(order.id)
        return self._reconciled(order)

    def _reconcile_sale(self, order: Order, payment: PaymentRecord) -> Order:
        """:meth:`_reconcile_after` of ``order`` and its one payment, a sale this command made.

        ``order`` is as stored, unpaid, with ``payment`` (as stored) its only payment. When the
        sale captured exactly the order's total and nothing was refunded or is still capturing,
        what the general reconcile would do is known without deriving it from the payment's
        postings: the payment covers the order, so the order is paid (the in-flight hold lifted
        in the same save), its stock and payment holds committed, and nothing is given back or
        voided (the order keeps all the payment took). Anything else takes the general path.
        """
        if (
            order.payment is not None
            or not isinstance(payment, GatewayPayment)
            or payment.state != GatewayState.CAPTURED
            or payment.refunds
            or len(payment.captures) != 1
        ):
            return self._reconcile_after(order, [payment])
        capture = payment.captures[0]
        total = order.total
        paid_state = order.process.target(order.state, "pay", order, total)
        if (
            capture.status is not CaptureStatus.SUCCEEDED
            or capture.amount != total
            or paid_state is None  # not payable (the general code gives the money back)
            or paid_state == AWAITING_RELEASE  # paid straight into release: the general code
        ):
            return self._reconcile_after(order, [payment])
        now = self._now()
        version = order.version
        order.pay(_SYSTEM, amount=total, reference=payment.id, now=now)
        self._sync_holds(order, (payment,), now)
        try:
            self.orders.save(order, version)
        except VersionConflict:
            return self.reconcile(order.id)
        self._publish(order)
        self.inventory.commit(order.id)
        confirm_payment_holds(order, self.promotion_ledger)
        return self._reconciled(order)

    def _reconciled(self, order: Order) -> Order:
        """Called after every reconcile with the order as stored; parts extend it.

        Returns:
            The order as stored afterwards (a part that moved it returns it reloaded).

        """
        return order

    def _reconcile(self, order_id: str, *, retry_failed: bool) -> Order:
        order = self.orders.get(order_id)
        payments = self.payments_of(order_id)
        return self._reconcile_loaded(order, payments, retry_failed=retry_failed)

    def _reconcile_loaded(
        self, order: Order, payments: Sequence[PaymentRecord], *, retry_failed: bool
    ) -> Order:
        now = self._now()
        order_id = order.id
        version = order.version
        paid = self._pay_if_covered(order, payments, now)
        if paid:  # the in-flight hold goes with the payment, in the same save
            self._sync_holds(order, payments, now)
        if order.version != version:
            self.orders.save(order, version)
            self._publish(order)  # the order is now as stored, its events collected
        if paid:
            self.inventory.commit(order.id)
            confirm_payment_holds(order, self.promotion_ledger)
        moved = False  # the steps below change payments only, never the order
        for payment in payments:
            moved |= self._give_back(order, payment, retry_failed=retry_failed)
            if (
                isinstance(payment, EscrowPayment)
                and order.state == AWAITING_RELEASE
                and payment.releasable_lines()
            ):
                self._change(
                    payment.id,
                    lambda p: narrow(p, EscrowPayment).release(
                        _SYSTEM, now=self._now(), policy=self.payment_policy
                    ),
                )
                moved = True
        if moved:
            payments = self.payments_of(order_id)
        version = order.version
        if moved or not paid:  # paid with nothing moved since: the holds were synced above
            self._sync_holds(order, payments, now)
        if order.state == AWAITING_RELEASE and order.payment is not None:
            reference = order.payment.reference
            paying = next((p for p in payments if p.id == reference), None)
            if (
                isinstance(paying, EscrowPayment)
                and order.process.target(order.state, "release", order, paying) is not None
            ):
                settle_order(order, paying, _SYSTEM, now=now, policy=self.policy)
        if order.version != version:
            self.orders.save(order, version)
            self._publish(order)
        return order

    def _pay_if_covered(
        self, order: Order, payments: Sequence[PaymentRecord], now: datetime
    ) -> bool:
        if (
            order.payment is not None
            or order.process.target(order.state, "pay", order, order.total) is None
        ):
            return False
        for payment in payments:
            if isinstance(payment, GatewayPayment) and payment.refundable >= order.total:
                order.pay(_SYSTEM, amount=order.total, reference=payment.id, now=now)
                return True
        return False

    def _keeps(self, order: Order, payment: PaymentRecord) -> Money:
        """How much of ``payment`` the order keeps; the rest goes back to the payer."""
        zero = Money.zero(order.currency)
        if isinstance(payment, CodPayment) or order.state == OrderState.CANCELLED:
            return payment.paid_in if isinstance(payment, CodPayment) else zero
        if order.payment is not None:
            return order.total if order.payment.reference == payment.id else zero
        if isinstance(payment, GatewayPayment) and can_still_complete(payment):
            return order.total
        return zero

    def _give_back(self, order: Order, payment: PaymentRecord, *, retry_failed: bool) -> bool:
        """Refund what the order does not keep, void what it will not need; ``True`` if it did."""
        keeps = self._keeps(order, payment)
        automatic = [
            r.total
            for r in payment.refunds
            if r.automatic and (r.status != "failed" or not retry_failed)
        ]
        excess = payment.paid_in - keeps
        if automatic:
            excess -= sum(automatic, Money.zero(order.currency))
        if excess.minor > 0:  # what is left to give back is at most what is refundable
            excess = min(excess, payment.refundable)
        if excess.minor > 0:
            reason = (
                "order cancelled"
                if order.state == OrderState.CANCELLED
                else "not needed by the order"
            )
            self._refund(
                payment.id,
                _SYSTEM,
                f"{payment.id}:auto-{len(payment.refunds) + 1}",
                amount=excess,
                reason=reason,
                automatic=True,
            )
            return True
        if (
            keeps.minor == 0
            and isinstance(payment, GatewayPayment)
            and payment.captured.is_zero
            and payment.state in (GatewayState.CREATED, GatewayState.AUTHORIZED)
        ):
            self._void(payment, _SYSTEM)
            return True
        return False

    def _sync_holds(self, order: Order, payments: Sequence[PaymentRecord], now: datetime) -> None:
        final = order.is_final
        wanted: list[str] = []
        if not final:  # a final order keeps no hold
            payable = order.payment is None and "pay" in order.allowed_commands()
            for payment in payments:
                if payable and isinstance(payment, GatewayPayment) and in_flight(payment):
                    wanted.append(f"payment:{payment.id}")
                for refund in payment.refunds:  # open_refunds, without the tuple
                    if refund.status is RefundStatus.PENDING:
                        wanted.append(f"refund:{refund.id}")  # noqa: PERF401  # no generator frame
        holds = order.holds
        if not holds and not wanted:  # the usual case: nothing held, nothing to hold
            return
        ours = {hold for hold in holds if hold.startswith(_HOLD_PREFIXES)}
        if not wanted:  # the payment answered: lift what it held, open nothing
            for hold in sorted(ours):
                order.resume_clock(hold, _SYSTEM, now=now)
            return
        if len(wanted) == 1 and len(ours) == 1 and wanted[0] in ours:
            return  # the one hold wanted is the one open (a payment in flight)
        wanting = set(wanted)
        for hold in sorted(ours - wanting):
            order.resume_clock(hold, _SYSTEM, now=now)
        if not final:
            for hold in sorted(wanting - ours):
                order.pause_clock(hold, _SYSTEM, now=now)

    # ----------------------------------------------------------------- internals

    def _now(self) -> datetime:
        return self.clock.now()

    def _outcome(self, order: Order, payment_id: str, *, paid: bool) -> Order:
        payment = narrow(self.payment_records.get(payment_id), GatewayPayment)
        if order.payment is not None and order.payment.reference == payment.id:
            return order
        if not paid and payment.state == GatewayState.AUTHORIZED:
            return order
        status = "pending" if in_flight(payment) else "declined"
        message = f"payment {payment_id!r} is {payment.state}"
        raise PaymentNotCompleted(order.id, order.state, status, message)

    def _void(self, payment: GatewayPayment, actor: Actor) -> GatewayResult:
        payment.ensure_can_void(actor)
        # One key per transaction voided: a void asked before the authorization arrived (no
        # transaction yet) and one asked after it are two requests, never one key reused.
        transaction_id = payment.transaction_id
        key = f"{payment.id}:void:{transaction_id}" if transaction_id else f"{payment.id}:void"
        result = self.payments.void(VoidRequest(payment.id, transaction_id, key))
        if result.succeeded:
            self._change(
                payment.id,
                lambda p: narrow(p, GatewayPayment).void(actor, now=self._now()),
                retry=True,
            )
        return result

    def _capture(
        self, payment_id: str, actor: Actor, amount: Money, key: str, *, sale: bool
    ) -> None:
        payment = narrow(
            self._change(
                payment_id,
                lambda p: narrow(p, GatewayPayment).request_capture(
                    key, actor, amount=amount, now=self._now()
                ),
            ),
            GatewayPayment,
        )
        found = payment.capture_record(key)
        if found is None or found.status is not CaptureStatus.PENDING:
            return
        if sale:
            result = self.payments.charge(ChargeRequest(payment.order_id, amount, key, payment.id))
        else:
            result = self.payments.capture(
                CaptureRequest(payment.id, payment.transaction_id, amount, key)
            )
        self._apply_capture(payment_id, key, result)

    def _apply_capture(
        self,
        payment_id: str,
        key: str,
        result: GatewayResult,
        loaded: PaymentRecord | None = None,
    ) -> None:
        if result.status is GatewayStatus.PENDING:
            return
        now = self._now()

        def apply(p: PaymentRecord) -> None:
            payment = narrow(p, GatewayPayment)
            if result.succeeded:
                payment.capture_succeeded(
                    key, transaction_id=result.transaction_id, now=now, policy=self.payment_policy
                )
            else:
                payment.capture_failed(key, now=now, reason=result.message)

        self._change(payment_id, apply, retry=True, loaded=loaded)

    def _authorize_only(self, payment_id: str, order: Order) -> None:
        key = f"{payment_id}:authorize"
        result = self.payments.authorize(AuthorizeRequest(payment_id, order.id, order.total, key))
        if result.status is GatewayStatus.PENDING:
            return
        now, ttl = self._now(), self.payment_policy.authorization_ttl

        def apply(p: PaymentRecord) -> None:
            payment = narrow(p, GatewayPayment)
            if result.succeeded:
                payment.authorize(
                    amount=result.amount, transaction_id=result.transaction_id, now=now, ttl=ttl
                )
            else:
                payment.decline(now=now, reason=result.message)

        self._change(payment_id, apply, retry=True)

    def _refund(
        self,
        payment_id: str,
        actor: Actor,
        key: str,
        *,
        amount: Money | None = None,
        lines: Mapping[str, Money] | None = None,
        reason: str,
        automatic: bool = False,
    ) -> Refund:
        opened = self._change(
            payment_id,
            lambda p: p.request_refund(
                key,
                actor,
                now=self._now(),
                reason=reason,
                amount=amount,
                lines=lines,
                automatic=automatic,
            ),
        )
        refund = opened.refund(key)
        if not refund.is_open:
            return refund
        if isinstance(opened, GatewayPayment):
            result = self.payments.refund(
                RefundRequest(opened.order_id, opened.transaction_id, refund.total, key, opened.id)
            )
            if result.status is GatewayStatus.PENDING:
                return refund
            succeeded, transaction_id = result.succeeded, result.transaction_id
        else:
            succeeded, transaction_id = True, ""
        settled = self._change(
            payment_id,
            lambda p: p.settle_refund(
                key, succeeded=succeeded, now=self._now(), transaction_id=transaction_id
            ),
            retry=True,
        )
        return settled.refund(key)

    def _change(
        self,
        payment_id: str,
        command: Callable[[PaymentRecord], object],
        *,
        retry: bool = False,
        loaded: PaymentRecord | None = None,
    ) -> PaymentRecord:
        """Load, run ``command``, save with the version loaded, append and publish.

        With ``retry``, a :class:`VersionConflict` reloads and runs it again: for idempotent
        commands that record an outcome (a provider's answer), which must not be lost.
        ``loaded``: the payment as this command stored it, used for the first attempt instead
        of loading it again (a concurrent change still surfaces as a conflict on save).
        """
        for attempt in range(_RETRIES if retry else 1):
            if loaded is not None and attempt == 0:
                payment = loaded
            else:
                payment = self.payment_records.get(payment_id)
            version = payment.version
            command(payment)
            if payment.version == version:
                self._after_save(payment)  # a repeat: make sure its postings reached the ledger
                return payment
            try:
                self._save_payment(payment, version)
            except VersionConflict:
                if not retry or attempt == _RETRIES - 1:
                    raise
                continue
            return payment
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def _save_payment(self, payment: PaymentRecord, version: int) -> None:
        self.payment_records.save(payment, version)
        self._after_save(payment)

    def _after_save(self, payment: PaymentRecord) -> None:
        self.ledger.append(payment.postings)
        if isinstance(payment, CreditPayment) and self.credit_lines is not None:
            for key, amount in payment.restorations:
                self.credit_lines.restore(key, payment.buyer_id, amount)
        self._publish_payment(payment)

    def _publish_payment(self, payment: PaymentRecord) -> None:
        self.publisher.publish(payment.collect_events())

    def _save_order(self, order: Order) -> Order:
        """Save an order loaded in this command (it carried no events when loaded), publish."""
        self.orders.save(order, order.version - len(order.events))
        return self._publish(order)

    def _gateway_payment(self, payment_id: str) -> GatewayPayment:
        payment = self.payment_records.get(payment_id)
        if not isinstance(payment, GatewayPayment):
            raise InvalidInput("payment_id", payment_id, "not a payment through a provider")
        return payment

    def _paying(self, order: Order) -> PaymentRecord:
        """The payment holding the order's money: the one that paid it, else the latest."""
        if order.payment is not None:
            return self.payment_records.get(order.payment.reference)
        ids = self.payment_records.for_order(order.id)
        with_money = [p for p in map(self.payment_records.get, ids) if p.paid_in.is_positive]
        if not with_money:
            raise RuleViolation(order.id, "refund", order.state, "nothing was paid for this order")
        return with_money[-1]

    def _cod_payment(self, order: Order) -> CodPayment:
        for payment in self.payments_of(order.id):
            if isinstance(payment, CodPayment):
                return payment
        if order.payment_method != PaymentMethod.COD or order.shipment is None:
            raise InvalidInput("order_id", order.id, "not a shipped cash-on-delivery order")
        payment = CodPayment.start(
            self.ids.next_id("payment"), order, carrier_id=order.shipment.carrier, now=self._now()
        )
        self.payment_records.add(payment)
        self._publish_payment(payment)
        return payment


def narrow(payment: object, kind: type[P]) -> P:
    """``payment`` as a ``kind``, or :class:`InvalidInput`."""
    if not isinstance(payment, kind):
        raise InvalidInput("payment", payment, f"not a {kind.__name__}")
    return payment


def in_flight(payment: GatewayPayment) -> bool:
    """Whether the provider may still take money for it: started, authorized, or capturing."""
    waiting = payment.state in (GatewayState.CREATED, GatewayState.AUTHORIZED)
    return waiting or payment.capturing.is_positive


def can_still_complete(payment: GatewayPayment) -> bool:
    """Whether it could still cover its order: in flight, or with authorization left."""
    if payment.is_closed:
        return False
    room = payment.authorized - payment.captured - payment.capturing
    return in_flight(payment) or room.is_positive
