"""货到付款 cash on delivery: shipped unpaid, paid at the door, or refused there.

The COD order process, ``order.cod``, starts in ``awaiting_shipment``: there is no
``pending_payment``, so there is no payment deadline, and a COD order can never be cancelled as
unpaid. Once shipped it waits for the carrier at the door::

    awaiting_shipment ─ship→ awaiting_collection ─collect→ completed ─close→ closed
                                                 └refuse→ returning ─return_arrived→ returned

Collecting the cash is the buyer's signature (签收): receipt is confirmed and the after-sales
window opens. A refusal (拒收) sends the parcel back; its stock is back on hand when it arrives,
and nothing is refunded because nothing was paid.

The money is a :class:`CodPayment`, started when the parcel ships: ``awaiting_collection →
collected → remitted`` (or ``refused``). Collected cash sits in the carrier's COD float (held)
until the carrier remits it, less its COD fee, to the merchant.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import CurrencyMismatch, Forbidden, InvalidInput
from ecommerce_core.money import Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, Order, OrderState, check_now
from ecommerce_core.payments.base import PaymentRecord, allocation_of
from ecommerce_core.payments.events import (
    CashCollected,
    CashRemitted,
    CodRefused,
    OrderCollected,
    OrderRefused,
    OrderReturned,
    PaymentStarted,
)
from ecommerce_core.payments.ledger import Account, AccountKind
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.payments.settlement import collect_postings, remit_postings
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "AWAITING_COLLECTION",
    "ORDER_COD",
    "ORDER_COD_PROCESS",
    "PAYMENT_COD",
    "PAYMENT_COD_PROCESS",
    "RETURNED",
    "RETURNING",
    "CodPayment",
    "CodState",
    "collect_order",
    "refuse_order",
    "return_order",
]

AWAITING_COLLECTION: Final = "awaiting_collection"
"""A COD order shipped unpaid: the carrier collects the cash at the door."""
RETURNING: Final = "returning"
"""A COD order refused at the door, on its way back."""
RETURNED: Final = "returned"
"""A refused COD order back with the merchant (final)."""

S = OrderState
ORDER_COD: Final = STANDARD_ORDER.extend(
    "order.cod",
    states=[
        State(S.AWAITING_SHIPMENT, description="待发货 placed; paid on delivery, not before"),
        State(
            AWAITING_COLLECTION, description="已发货 待收款 shipped unpaid; cash due at the door"
        ),
        State(RETURNING, description="拒收 refused at the door; on its way back"),
        State(RETURNED, final=True, description="已退回 back with the merchant; nothing was paid"),
    ],
    transitions=[
        Transition("ship", S.AWAITING_SHIPMENT, AWAITING_COLLECTION),
        Transition("collect", AWAITING_COLLECTION, S.COMPLETED),
        Transition("refuse", AWAITING_COLLECTION, RETURNING),
        Transition("return_arrived", RETURNING, RETURNED),
    ],
    remove_states=[S.PENDING_PAYMENT, S.SHIPPED, S.DELIVERED],
    initial=S.AWAITING_SHIPMENT,
)
"""The COD order process: no payment step; collection or refusal at the door."""

ORDER_COD_PROCESS: Final = Process(ORDER_COD, ORDER_GUARDS)
""":data:`ORDER_COD`, validated and compiled."""


class CodState:
    """Names of the COD payment's states."""

    AWAITING_COLLECTION: Final = "awaiting_collection"
    COLLECTED: Final = "collected"
    REMITTED: Final = "remitted"
    REFUSED: Final = "refused"


C = CodState
PAYMENT_COD: Final = ProcessDefinition(
    name="payment.cod",
    initial=C.AWAITING_COLLECTION,
    states=(
        State(C.AWAITING_COLLECTION, description="待收款 out with the carrier; cash due"),
        State(C.COLLECTED, description="已收款 the carrier holds the cash"),
        State(C.REMITTED, final=True, description="已结算 remitted to the merchant, less the fee"),
        State(C.REFUSED, final=True, description="拒收 refused at the door; nothing collected"),
    ),
    transitions=(
        Transition("collect", C.AWAITING_COLLECTION, C.COLLECTED),
        Transition("refuse", C.AWAITING_COLLECTION, C.REFUSED),
        Transition("remit", C.COLLECTED, C.REMITTED),
    ),
)
"""The lifecycle of cash on delivery."""

PAYMENT_COD_PROCESS: Final = Process(PAYMENT_COD)
""":data:`PAYMENT_COD`, validated and compiled."""

_AT_THE_DOOR: Final = frozenset({ActorKind.CARRIER, ActorKind.PLATFORM, ActorKind.SYSTEM})
_RETURN_WITNESSES: Final = _AT_THE_DOOR | {ActorKind.MERCHANT}


def _check_carrier(actor: Actor, carrier_id: str, command: str, aggregate_id: str) -> None:
    if isinstance(actor, Actor) and actor.kind is ActorKind.CARRIER and actor.id != carrier_id:
        raise Forbidden(str(actor), command, aggregate_id, f"the parcel is with {carrier_id!r}")


@attrs.define(eq=False)
class CodPayment(PaymentRecord):
    """Cash on delivery for one order.

    Refunds (after collection, through after-sales) settle at once: the cash goes back to the
    buyer from the carrier's float if it is not remitted yet, else from the merchant's proceeds;
    the carrier's COD fee is never refunded.

    Attributes:
        carrier_id: The carrier who collects.

    """

    METHOD: ClassVar[PaymentMethod] = PaymentMethod.COD
    """The payment method this class serves."""

    carrier_id: str = attrs.field(kw_only=True)

    @classmethod
    def start(cls, payment_id: str, order: Order, *, carrier_id: str, now: datetime) -> CodPayment:
        """Start collecting for a COD order as it ships with ``carrier_id``.

        Raises:
            InvalidInput: Not a COD order.

        """
        check_now(now)
        if order.payment_method != PaymentMethod.COD:
            raise InvalidInput("payment_method", order.payment_method, "not a COD order")
        payment = cls(
            id=payment_id,
            order_id=order.id,
            buyer_id=order.buyer_id,
            merchant_id=order.merchant_id,
            method=PaymentMethod.COD,
            allocation=allocation_of(order),
            total=order.total,
            payer=Account.buyer(order.buyer_id),
            process=PAYMENT_COD_PROCESS,
            state=PAYMENT_COD_PROCESS.initial,
            created_at=now,
            carrier_id=carrier_id,
        )
        payment._record(
            PaymentStarted,
            now,
            Actor.system("payments"),
            order_id=order.id,
            method=PaymentMethod.COD,
            amount=order.total,
        )
        return payment

    def _at_the_door(self, command: str, actor: Actor) -> None:
        self._authorize(command, actor, _AT_THE_DOOR)
        _check_carrier(actor, self.carrier_id, command, self.id)

    def collect(self, key: str, actor: Actor, *, amount: Money, now: datetime) -> bool:
        """The carrier collected ``amount`` in cash: it must be the order total.

        Returns:
            ``True`` if recorded now, ``False`` for a repeat of ``key``.

        Raises:
            Forbidden: Another carrier, or not a carrier, the platform or the system.
            InvalidInput: Not the order total.
            CurrencyMismatch: Another currency.
            TransitionNotAllowed: Already collected, refused or remitted.
            IdempotencyConflict: ``key`` was used with another amount.

        """
        self._at_the_door("collect", actor)
        check_now(now)
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, amount.currency, "collect")
        fingerprint = f"collect {amount}"
        if self._seen(key, fingerprint):
            return False
        dest = self.process.fire(self.state, "collect", subject_id=self.id)
        if amount != self.total:
            raise InvalidInput("amount", amount, f"the carrier must collect {self.total}")
        self._post(
            collect_postings(
                key=f"{self.id}/{key}",
                order_id=self.order_id,
                allocation=self.allocation,
                buyer=self.payer,
                carrier=Account.carrier_cod(self.carrier_id),
                amount=amount,
                at=now,
            )
        )
        self.state = dest
        self._remember(key, fingerprint)
        self._record(CashCollected, now, actor, amount=amount, carrier=self.carrier_id)
        return True

    def refuse(self, actor: Actor, *, reason: str, now: datetime) -> None:
        """The buyer refused the parcel at the door; nothing is collected.

        Raises:
            Forbidden: Another carrier, or not a carrier, the platform or the system.
            TransitionNotAllowed: Already collected or refused.

        """
        self._at_the_door("refuse", actor)
        check_now(now)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("reason", reason, "must be a non-empty string")
        self.state = self.process.fire(self.state, "refuse", subject_id=self.id)
        self._record(CodRefused, now, actor, reason=reason)

    def remit(self, actor: Actor, *, now: datetime, policy: PaymentPolicy) -> Money:
        """The carrier remits the cash it holds to the merchant, keeping its COD fee.

        Returns:
            What the merchant received.

        Raises:
            Forbidden: Another carrier, or not a carrier, the platform or the system.
            TransitionNotAllowed: Not collected, or already remitted.

        """
        self._at_the_door("remit", actor)
        check_now(now)
        dest = self.process.fire(self.state, "remit", subject_id=self.id)
        postings = remit_postings(
            key=f"{self.id}/remit",
            order_id=self.order_id,
            done=self.postings,
            merchant=self.merchant,
            policy=policy,
            at=now,
        )
        self._post(postings)
        self.state = dest
        currency, paid_minor, fee_minor = self.currency, 0, 0
        for posting in postings:
            if posting.amount.currency != currency:  # what adding it up as Money raises
                raise CurrencyMismatch(currency, posting.amount.currency, "add")
            kind = posting.target.kind
            if kind is AccountKind.MERCHANT:
                paid_minor += posting.amount.minor
            elif kind is AccountKind.COD_FEE:
                fee_minor += posting.amount.minor
        paid = _money(paid_minor, currency)
        fee = _money(fee_minor, currency)
        self._record(CashRemitted, now, actor, amount=paid, fee=fee)
        return paid


def collect_order(
    order: Order, actor: Actor, *, amount: Money, now: datetime, policy: OrderPolicy
) -> None:
    """Move a COD order on once its cash is collected: receipt is confirmed (``completed``).

    Raises:
        Forbidden: Not the carrier the order shipped with, the platform or the system.
        TransitionNotAllowed: The order is not awaiting collection.

    """
    _check_carrier(actor, _carrier_of(order), "collect", order.id)
    order.advance(
        "collect",
        actor,
        allowed=_AT_THE_DOOR,
        now=now,
        policy=policy,
        event=OrderCollected,
        amount=amount,
    )


def refuse_order(
    order: Order, actor: Actor, *, reason: str, now: datetime, policy: OrderPolicy
) -> None:
    """Move a COD order on after the buyer refused it at the door (``returning``).

    Raises:
        Forbidden: Not the carrier the order shipped with, the platform or the system.
        TransitionNotAllowed: The order is not awaiting collection.

    """
    _check_carrier(actor, _carrier_of(order), "refuse", order.id)
    order.advance(
        "refuse",
        actor,
        allowed=_AT_THE_DOOR,
        now=now,
        policy=policy,
        event=OrderRefused,
        reason=reason,
    )


def return_order(order: Order, actor: Actor, *, now: datetime, policy: OrderPolicy) -> None:
    """A refused COD parcel arrived back with the merchant (``returned``).

    Raises:
        Forbidden: Not the carrier, the order's merchant, the platform or the system.
        TransitionNotAllowed: The order is not on its way back.

    """
    _check_carrier(actor, _carrier_of(order), "return_arrived", order.id)
    order.advance(
        "return_arrived",
        actor,
        allowed=_RETURN_WITNESSES,
        now=now,
        policy=policy,
        event=OrderReturned,
    )


def _carrier_of(order: Order) -> str:
    return "" if order.shipment is None else order.shipment.carrier
