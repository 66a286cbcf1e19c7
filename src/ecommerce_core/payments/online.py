"""Payments through a provider (在线支付 online, 担保交易 escrow): the gateway payment aggregate.

Its process, ``payment.gateway``::

    created 待支付 ─authorize→ authorized ─capture→ captured ─refund→ partially_refunded, refunded
    created ─decline / fail / void→ declined, failed, voided
    authorized ─expire_authorization→ expired

A sale (the usual Chinese checkout) authorizes and captures at once: ``created → captured``.
Captures may be partial, up to the authorized amount. Every capture and refund is a record:
pending while the provider has not answered (a time-out leaves it pending, never guessed), then
succeeded or failed. Pending captures count against the authorization and pending refunds
against what is refundable, so two concurrent captures or refunds cannot both spend the same
money: the second one's save raises :class:`~ecommerce_core.errors.VersionConflict` before the
provider is ever asked.

Money can arrive late: a provider may report a capture after the payment was declined, voided,
expired or refunded. It is recorded all the same (money never goes missing), and the service
gives it back when the order does not want it.

Provider notifications (:class:`Notification`) are applied by :meth:`GatewayPayment.notify`:
at-least-once, out of order, sometimes late. A repeat of an event id is a no-op; the same id with
another payload is an :class:`~ecommerce_core.errors.IdempotencyConflict`; one the payment's
history already covers is recorded and ignored.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import ClassVar, Final, Self

import attrs

from ecommerce_core._slots import new, slot_setter
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import CurrencyMismatch, InvalidInput, TransitionNotAllowed
from ecommerce_core.money import MAX_MINOR_UNITS, Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import Order, check_now
from ecommerce_core.payments.base import PaymentRecord, Refund, RefundStatus, allocation_of
from ecommerce_core.payments.events import (
    AuthorizationExpired,
    CaptureFailed,
    CaptureRequested,
    NotificationIgnored,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentFailed,
    PaymentStarted,
    PaymentVoided,
)
from ecommerce_core.payments.ledger import Account, Movement
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.payments.settlement import payer_postings
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "PAYMENT_GATEWAY",
    "PAYMENT_GATEWAY_PROCESS",
    "Capture",
    "CaptureStatus",
    "GatewayPayment",
    "GatewayState",
]


class GatewayState:
    """Names of the gateway payment's states (plain strings, as stored)."""

    CREATED: Final = "created"
    AUTHORIZED: Final = "authorized"
    CAPTURED: Final = "captured"
    PARTIALLY_REFUNDED: Final = "partially_refunded"
    REFUNDED: Final = "refunded"
    DECLINED: Final = "declined"
    FAILED: Final = "failed"
    VOIDED: Final = "voided"
    EXPIRED: Final = "expired"


G = GatewayState
_CLOSED: Final = (G.DECLINED, G.FAILED, G.VOIDED, G.EXPIRED)


def _refunds_everything(payment: GatewayPayment, _: object) -> str | None:
    money = payment.money()
    if money.refunded == money.paid_in:
        return None
    return f"{money.paid_in - money.refunded} captured is not refunded"


PAYMENT_GATEWAY: Final = ProcessDefinition(
    name="payment.gateway",
    initial=G.CREATED,
    states=(
        State(G.CREATED, description="待支付 started; waiting for the provider or the buyer"),
        State(G.AUTHORIZED, description="已授权 the provider holds the amount for us"),
        State(G.CAPTURED, description="已扣款 money captured, in part or in full"),
        State(G.PARTIALLY_REFUNDED, description="部分退款 some captured money went back"),
        State(G.REFUNDED, description="已退款 all captured money went back"),
        State(G.DECLINED, description="已拒绝 the provider declined"),
        State(G.FAILED, description="失败 the provider reported a failure or closed it"),
        State(G.VOIDED, description="已撤销 voided before any capture"),
        State(G.EXPIRED, description="已过期 the authorization lapsed uncaptured"),
    ),
    transitions=(
        Transition("authorize", G.CREATED, G.AUTHORIZED),
        Transition("capture", (G.CREATED, G.AUTHORIZED, G.CAPTURED, *_CLOSED), G.CAPTURED),
        Transition("capture", (G.PARTIALLY_REFUNDED, G.REFUNDED), G.PARTIALLY_REFUNDED),
        Transition("decline", G.CREATED, G.DECLINED),
        Transition("fail", (G.CREATED, G.AUTHORIZED), G.FAILED),
        Transition("void", (G.CREATED, G.AUTHORIZED), G.VOIDED),
        Transition("expire_authorization", G.AUTHORIZED, G.EXPIRED),
        Transition(
            "refund",
            (G.CAPTURED, G.PARTIALLY_REFUNDED),
            G.REFUNDED,
            guards="refunds_everything",
        ),
        Transition("refund", (G.CAPTURED, G.PARTIALLY_REFUNDED), G.PARTIALLY_REFUNDED),
    ),
)
"""The lifecycle of a payment through a provider."""

PAYMENT_GATEWAY_PROCESS: Final = Process(
    PAYMENT_GATEWAY, {"refunds_everything": _refunds_everything}
)
""":data:`PAYMENT_GATEWAY`, validated and compiled."""

_PAYERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_CAPTURERS: Final = frozenset({ActorKind.MERCHANT, ActorKind.PLATFORM, ActorKind.SYSTEM})
_VOIDERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_PROVIDER: Final = Actor.system("provider")


class CaptureStatus(enum.StrEnum):
    """Where a capture stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen
class Capture:
    """Money asked of (or reported by) the provider.

    Attributes:
        key: Its idempotency key (``"txn:<id>"`` for one the provider reported unasked).
        amount: How much.
        requested_at: When it was asked or reported.
        status: Pending, succeeded or failed.
        transaction_id: The provider's id of the capture, once known.

    """

    key: str
    amount: Money
    requested_at: datetime
    status: CaptureStatus = CaptureStatus.PENDING
    transaction_id: str = ""


_SET_KEY, _SET_AMOUNT, _SET_REQUESTED_AT, _SET_STATUS, _SET_TRANSACTION_ID = (
    slot_setter(Capture, name)
    for name in ("key", "amount", "requested_at", "status", "transaction_id")
)


def _capture(
    key: str, amount: Money, requested_at: datetime, status: CaptureStatus, transaction_id: str
) -> Capture:
    """``Capture(key, amount, requested_at, status, transaction_id)``, slot by slot.

    :class:`Capture`'s constructor only sets its fields (no checks, no conversions), so this
    builds exactly what it builds, for about a third of the cost.
    """
    capture: Capture = new(Capture)
    _SET_KEY(capture, key)
    _SET_AMOUNT(capture, amount)
    _SET_REQUESTED_AT(capture, requested_at)
    _SET_STATUS(capture, status)
    _SET_TRANSACTION_ID(capture, transaction_id)
    return capture


@attrs.define(eq=False)
class GatewayPayment(PaymentRecord):
    """A payment through a provider, for an online or an escrow order.

    Online payments settle to the merchant (less commission) at capture; escrow payments are
    held until the order's receipt is confirmed (see :mod:`ecommerce_core.payments.escrow`).

    Attributes:
        authorized: What the provider authorized (zero until it does).
        transaction_id: The provider's id of the payment, once known.
        captures: Every capture, in order.

    """

    METHOD: ClassVar[PaymentMethod] = PaymentMethod.ONLINE
    """The payment method this class serves."""

    authorized: Money = attrs.field(kw_only=True)
    transaction_id: str = attrs.field(default="", kw_only=True)
    captures: tuple[Capture, ...] = attrs.field(default=(), kw_only=True)

    @classmethod
    def start(
        cls, payment_id: str, order: Order, actor: Actor, *, now: datetime, key: str = ""
    ) -> Self:
        """Start paying ``order`` through the provider (``key``: the caller's idempotency key).

        Raises:
            InvalidInput: An order of another payment method; a zero total.
            Forbidden: Not the order's buyer, the platform or the system.

        """
        check_now(now)
        method = cls.METHOD
        if order.payment_method != method:
            raise InvalidInput(
                "payment_method", order.payment_method, f"this is a {method} payment"
            )
        if not order.total.is_positive:
            raise InvalidInput("total", order.total, "there is nothing to pay")
        payment = cls(
            id=payment_id,
            order_id=order.id,
            buyer_id=order.buyer_id,
            merchant_id=order.merchant_id,
            method=method,
            allocation=allocation_of(order),
            total=order.total,
            payer=Account.buyer(order.buyer_id),
            process=PAYMENT_GATEWAY_PROCESS,
            state=PAYMENT_GATEWAY_PROCESS.initial,
            created_at=now,
            authorized=Money.zero(order.currency),
        )
        payment._authorize("pay", actor, _PAYERS)
        if key:
            payment._remember(f"start:{key}", "start")
        payment._record(
            PaymentStarted, now, actor, order_id=order.id, method=method, amount=order.total
        )
        return payment

    def started_with(self, key: str) -> bool:
        """Whether the caller started this payment with idempotency key ``key``."""
        return self.keys.get(f"start:{key}") == "start"

    # ----------------------------------------------------------------- reading

    def _sum(self, status: CaptureStatus) -> Money:
        # every capture is in the payment's currency (checked when asked or reported); a loop,
        # not sum() over a generator: a payment has a capture or two, asked about on every command
        minor = 0
        for capture in self.captures:
            if capture.status is status:
                minor += capture.amount.minor
        return _money(minor, self.total.currency)

    def _capture_minors(self) -> tuple[int, int]:
        """Minor units captured and still capturing, in one pass (what the two sums give)."""
        captured = capturing = 0
        for capture in self.captures:
            status = capture.status
            if status is CaptureStatus.SUCCEEDED:
                captured += capture.amount.minor
            elif status is CaptureStatus.PENDING:
                capturing += capture.amount.minor
        return captured, capturing

    @property
    def captured(self) -> Money:
        """Everything captured so far (refunds not deducted)."""
        return self._sum(CaptureStatus.SUCCEEDED)

    @property
    def capturing(self) -> Money:
        """Captures asked and not yet answered."""
        return self._sum(CaptureStatus.PENDING)

    @property
    def is_closed(self) -> bool:
        """Whether it ended without money (declined, failed, voided, expired uncaptured)."""
        return self.state in _CLOSED

    @property
    def holds_in_escrow(self) -> bool:
        """Whether captured money is held in escrow rather than settled at once."""
        return False

    def capture_record(self, key: str) -> Capture | None:
        """The capture with this key, if any."""
        for capture in self.captures:
            if capture.key == key:
                return capture
        return None

    # ----------------------------------------------------------------- captures

    def request_capture(self, key: str, actor: Actor, *, amount: Money, now: datetime) -> Capture:
        """Ask for ``amount`` to be captured: a sale while ``created``, else from the authorization.

        A repeat with the same key and amount returns the capture already asked.

        Raises:
            Forbidden: A sale not by the buyer, platform or system; a capture not by the
                merchant, platform or system.
            TransitionNotAllowed: The payment cannot capture any more (closed, refunded).
            InvalidInput: A zero or negative amount; more than is left to capture.
            CurrencyMismatch: Another currency.
            IdempotencyConflict: The key was used for another amount.

        """
        sale = self.state == G.CREATED
        self._authorize("capture", actor, _PAYERS if sale else _CAPTURERS)
        check_now(now)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, amount.currency, "capture")
        fingerprint = f"capture {amount}"
        if self._seen(key, fingerprint):
            found = self.capture_record(key)
            assert found is not None  # noqa: S101  # a capture key is remembered with its record
            return found
        if self.state not in (G.CREATED, G.AUTHORIZED, G.CAPTURED):
            raise TransitionNotAllowed(
                self.id, "capture", self.state, self.process.triggers(self.state)
            )
        if amount.minor <= 0:
            raise InvalidInput("amount", amount, "must be positive")
        ceiling = self.total if sale else self.authorized
        captured, capturing = self._capture_minors()
        currency = self.total.currency  # what the two sums are in
        room = ceiling.minor - captured - capturing
        if (  # in range throughout: what the Money arithmetic below gives, without its frames
            captured <= MAX_MINOR_UNITS
            and capturing <= MAX_MINOR_UNITS
            and ceiling.minor - captured >= -MAX_MINOR_UNITS
            and room >= -MAX_MINOR_UNITS
            and ceiling.currency == currency
        ):
            fits = amount.minor <= room
        else:  # let the arithmetic raise what it raises
            fits = not amount > (ceiling - _money(captured, currency) - _money(capturing, currency))
        if not fits:
            left = ceiling - _money(captured, currency) - _money(capturing, currency)
            what = "the order total" if sale else "authorized"
            raise InvalidInput(
                "amount", amount, f"more than {what}: {left} is left to capture of {ceiling}"
            )
        capture = _capture(key, amount, now, CaptureStatus.PENDING, "")
        self.captures = (*self.captures, capture)
        self._remember(key, fingerprint)
        self._record(CaptureRequested, now, actor, capture_key=key, amount=amount)
        return capture

    def capture_succeeded(
        self, key: str, *, transaction_id: str, now: datetime, policy: PaymentPolicy
    ) -> bool:
        """The provider captured the pending capture ``key``; the money moves.

        Returns:
            ``True`` if recorded now, ``False`` if it already succeeded.

        """
        check_now(now)
        capture = self._capture(key)
        if capture.status is CaptureStatus.SUCCEEDED:
            return False
        if capture.status is CaptureStatus.FAILED:  # the provider took it after all
            return self._book_capture(
                f"txn:{transaction_id or key}",
                capture.amount,
                transaction_id=transaction_id,
                now=now,
                policy=policy,
            )
        self.captures = tuple([c for c in self.captures if c.key != key])  # no generator frame
        self._book_capture(
            key,
            capture.amount,
            transaction_id=transaction_id,
            now=now,
            policy=policy,
            requested_at=capture.requested_at,
        )
        return True

    def capture_failed(self, key: str, *, now: datetime, reason: str) -> bool:
        """The provider refused the pending capture ``key``; a refused sale declines the payment.

        Returns:
            ``True`` if recorded now, ``False`` if it was no longer pending.

        """
        check_now(now)
        if not self._mark_failed(self._capture(key), now):
            return False
        if self.state == G.CREATED and self.captured.is_zero:
            self._close("decline", now, reason)
        return True

    def _mark_failed(self, capture: Capture, now: datetime) -> bool:
        if capture.status is not CaptureStatus.PENDING:
            return False
        failed = attrs.evolve(capture, status=CaptureStatus.FAILED)
        self.captures = tuple(failed if c.key == capture.key else c for c in self.captures)
        self._record(CaptureFailed, now, _PROVIDER, capture_key=capture.key, amount=capture.amount)
        return True

    def _capture(self, key: str) -> Capture:
        found = self.capture_record(key)
        if found is None:
            raise InvalidInput("capture_key", key, f"no capture with this key on {self.id!r}")
        return found

    def _book_capture(
        self,
        key: str,
        amount: Money,
        *,
        transaction_id: str,
        now: datetime,
        policy: PaymentPolicy,
        requested_at: datetime | None = None,
    ) -> bool:
        for capture in self.captures:  # a loop: no generator frame for a capture or two
            if capture.key == key:
                return False
        dest = self.process.fire(self.state, "capture", self, subject_id=self.id)
        self._post(
            payer_postings(
                key=f"{self.id}/{key}",
                order_id=self.order_id,
                allocation=self.allocation,
                done=self.postings,
                payer=self.payer,
                amount=amount,
                hold=self.holds_in_escrow,
                merchant=self.merchant,
                policy=policy,
                movement=Movement.CAPTURE,
                at=now,
            )
        )
        self.captures = (
            *self.captures,
            _capture(key, amount, requested_at or now, CaptureStatus.SUCCEEDED, transaction_id),
        )
        captured_minor, capturing_minor = self._capture_minors()  # unchanged below
        currency = self.total.currency
        authorized = self.authorized
        if (  # the sums in range and one currency: nothing below can raise, so in minor units
            type(authorized) is Money
            and authorized.currency == currency
            and captured_minor + capturing_minor <= MAX_MINOR_UNITS
        ):
            if captured_minor > authorized.minor:  # max(captured, authorized): captured
                self.authorized = authorized = _money(captured_minor, currency)
            # else max gives an amount equal to the authorized one: it stays
            self.transaction_id = self.transaction_id or transaction_id
            self.state = dest
            if captured_minor + capturing_minor >= authorized.minor:
                self.deadline = None
        else:  # anything unusual: the Money arithmetic, which raises what it raises
            captured = _money(captured_minor, currency)
            if self.state == G.CREATED or self.authorized < captured:
                self.authorized = max(captured, self.authorized)
            self.transaction_id = self.transaction_id or transaction_id
            self.state = dest
            if captured + _money(capturing_minor, currency) >= self.authorized:
                self.deadline = None
        self._record(
            PaymentCaptured,
            now,
            _PROVIDER,
            capture_key=key,
            amount=amount,
            transaction_id=transaction_id,
        )
        return True

    # ----------------------------------------------------------------- authorization

    def authorize(
        self, *, amount: Money, transaction_id: str, now: datetime, ttl: timedelta
    ) -> bool:
        """The provider authorized ``amount``; it lapses after ``ttl`` unless captured.

        Returns:
            ``True`` if recorded now, ``False`` if the payment is already past authorization.

        Raises:
            CurrencyMismatch: Another currency.
            InvalidInput: A zero or negative amount.

        """
        check_now(now)
        if amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, amount.currency, "authorize")
        if not amount.is_positive:
            raise InvalidInput("amount", amount, "must be positive")
        if self.process.target(self.state, "authorize") is None or self.captures:
            return False
        self.state = self.process.fire(self.state, "authorize", subject_id=self.id)
        self.authorized = amount
        self.transaction_id = transaction_id
        self.deadline = now + ttl
        self._record(
            PaymentAuthorized, now, _PROVIDER, amount=amount, transaction_id=transaction_id
        )
        return True

    def decline(self, *, now: datetime, reason: str) -> bool:
        """The provider declined or failed the payment before capturing anything.

        Returns:
            ``True`` if it closed now, ``False`` if it had moved past that (money was captured).

        """
        check_now(now)
        trigger = "decline" if self.state == G.CREATED else "fail"
        if self.process.target(self.state, trigger) is None or not self.captured.is_zero:
            return False
        self._fail_pending(now)
        self._close(trigger, now, reason)
        return True

    def ensure_can_void(self, actor: Actor) -> None:
        """Raise what :meth:`void` would raise, without changing anything.

        Raises:
            Forbidden: Not the buyer, the platform or the system.
            TransitionNotAllowed: Money was captured (refund it instead), or the payment is
                already closed.

        """
        self._authorize("void", actor, _VOIDERS)
        if not self.captured.is_zero or self.process.target(self.state, "void") is None:
            allowed = tuple(t for t in self.process.triggers(self.state) if t != "void")
            raise TransitionNotAllowed(self.id, "void", self.state, allowed)

    def void(self, actor: Actor, *, now: datetime) -> None:
        """The provider voided the payment: nothing was captured, and pending captures fail.

        Raises:
            Forbidden: Not the buyer, the platform or the system.
            TransitionNotAllowed: Money was captured, or the payment is already closed.

        """
        self.ensure_can_void(actor)
        check_now(now)
        self._fail_pending(now)
        self._close("void", now, "voided", actor)

    def expire(self, now: datetime) -> bool:
        """Let the authorization lapse if its deadline has come; captures already made stand.

        Returns:
            ``True`` if it lapsed now, ``False`` if nothing was due (or a capture is pending).

        """
        check_now(now)
        if self.deadline is None or now < self.deadline or not self.capturing.is_zero:
            return False
        lapsed = self.authorized - self.captured
        self.deadline = None
        if self.state == G.AUTHORIZED:
            self.state = self.process.fire(self.state, "expire_authorization", subject_id=self.id)
        else:  # captured in part: the rest can no longer be captured
            self.authorized = self.captured
        self._record(AuthorizationExpired, now, Actor.system(), lapsed=lapsed)
        return True

    def _fail_pending(self, now: datetime) -> None:
        for capture in self.captures:
            self._mark_failed(capture, now)

    def _close(self, trigger: str, now: datetime, reason: str, actor: Actor = _PROVIDER) -> None:
        if self.state not in _CLOSED:
            self.state = self.process.fire(self.state, trigger, subject_id=self.id)
            self.deadline = None
            if trigger == "void":
                self._record(PaymentVoided, now, actor)
            elif trigger == "decline":
                self._record(PaymentDeclined, now, actor, reason=reason)
            else:
                self._record(PaymentFailed, now, actor, reason=reason)

    def _refunded(self, refund: Refund, now: datetime) -> None:  # noqa: ARG002  # the hook's signature
        self.state = self.process.fire(self.state, "refund", self, refund, subject_id=self.id)

    # ----------------------------------------------------------------- notifications

    def notify(self, notification: Notification, *, now: datetime, policy: PaymentPolicy) -> str:
        """Apply a provider's notification.

        Returns:
            ``"repeat"`` for an event id seen before; ``"applied"`` when it changed the payment;
            otherwise why it changed nothing (it is recorded, so its repeat is recognised).

        Raises:
            InvalidInput: It is for another payment, or a refund it reports is more than the
                payment can refund.
            CurrencyMismatch: Another currency.
            IdempotencyConflict: The event id was seen with another payload, or it contradicts
                how a refund already ended.

        """
        check_now(now)
        if notification.payment_id != self.id:
            raise InvalidInput("payment_id", notification.payment_id, f"this is {self.id!r}")
        if notification.amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, notification.amount.currency, "notify")
        key = f"event:{notification.event_id}"
        if self._seen(key, notification.fingerprint):
            return "repeat"
        outcome = self._apply(notification, now, policy)
        self._remember(key, notification.fingerprint)
        if outcome != "applied":
            self._record(
                NotificationIgnored,
                now,
                _PROVIDER,
                event_id=notification.event_id,
                reason=outcome,
            )
        return outcome

    def _apply(self, n: Notification, now: datetime, policy: PaymentPolicy) -> str:
        if n.kind is NotificationKind.AUTHORIZED:
            return self._on_authorized(n, now, policy)
        if n.kind is NotificationKind.CAPTURED:
            return self._on_captured(n, now, policy)
        if n.kind is NotificationKind.REFUNDED:
            return self._on_refunded(n, now)
        return self._on_failed(n, now)

    def _on_authorized(self, n: Notification, now: datetime, policy: PaymentPolicy) -> str:
        if not n.amount.is_positive:
            return "an authorization of nothing"
        ttl = policy.authorization_ttl
        done = self.authorize(amount=n.amount, transaction_id=n.transaction_id, now=now, ttl=ttl)
        return "applied" if done else f"already {self.state}"

    def _on_captured(self, n: Notification, now: datetime, policy: PaymentPolicy) -> str:
        capture = self.capture_record(n.request_key) if n.request_key else None
        if capture is not None and capture.status is CaptureStatus.PENDING:
            self.capture_succeeded(
                capture.key, transaction_id=n.transaction_id, now=now, policy=policy
            )
            return "applied"
        if capture is not None and capture.status is CaptureStatus.SUCCEEDED:
            return "capture already recorded"
        taken = {c.transaction_id for c in self.captures if c.status is CaptureStatus.SUCCEEDED}
        if n.transaction_id and n.transaction_id in taken:
            return "capture already recorded"
        if not n.amount.is_positive:
            return "a capture of nothing"
        key = f"txn:{n.transaction_id or n.event_id}"
        self._book_capture(key, n.amount, transaction_id=n.transaction_id, now=now, policy=policy)
        return "applied"

    def _on_refunded(self, n: Notification, now: datetime) -> str:
        refund = next((r for r in self.refunds if r.id == n.request_key), None)
        if refund is not None:
            done = self.settle_refund(
                refund.id, succeeded=True, now=now, transaction_id=n.transaction_id
            )
            return "applied" if done else "refund already recorded"
        if n.transaction_id and any(
            r.transaction_id == n.transaction_id and r.status is RefundStatus.SUCCEEDED
            for r in self.refunds
        ):
            return "refund already recorded"
        if not n.amount.is_positive:
            return "a refund of nothing"
        opened = self.request_refund(
            f"txn:{n.transaction_id or n.event_id}",
            _PROVIDER,
            now=now,
            reason="refunded at the provider",
            amount=n.amount,
            automatic=True,
        )
        self.settle_refund(opened.id, succeeded=True, now=now, transaction_id=n.transaction_id)
        return "applied"

    def _on_failed(self, n: Notification, now: datetime) -> str:
        refund = next((r for r in self.refunds if r.id == n.request_key), None)
        if refund is not None:
            done = self.settle_refund(refund.id, succeeded=False, now=now)
            return "applied" if done else "refund already failed"
        capture = self.capture_record(n.request_key) if n.request_key else None
        if capture is not None:
            done = self.capture_failed(capture.key, now=now, reason=n.reason or "failed")
            return "applied" if done else f"capture already {capture.status}"
        done = self.decline(now=now, reason=n.reason or "failed at the provider")
        return "applied" if done else f"already {self.state}"
