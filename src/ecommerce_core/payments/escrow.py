"""担保交易 escrow: the buyer's money is held until receipt is confirmed, then released.

The escrow order process, ``order.escrow``, extends the standard one: confirming receipt (by the
buyer, or the auto-confirm deadline) no longer completes the order but leads to
``awaiting_release`` 待结算; ``release`` completes it once nothing is held for it any more::

    ... shipped / delivered ─confirm_receipt / auto_confirm→ awaiting_release ─release→ completed

The payment is an :class:`EscrowPayment`: a gateway payment whose captures go into escrow.
:meth:`EscrowPayment.release` moves what escrow holds to the merchant, less the platform's
commission, line by line: a line with an open refund stays held until that refund settles (and
the refund goes back to the buyer from escrow), while the other lines are released at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import CurrencyMismatch
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, Order, OrderState, check_now
from ecommerce_core.payments.events import EscrowReleased, OrderSettled
from ecommerce_core.payments.ledger import AccountKind, Movement
from ecommerce_core.payments.online import GatewayPayment
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.payments.settlement import release_postings
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.process import Process, State, Transition

__all__ = [
    "AWAITING_RELEASE",
    "ORDER_ESCROW",
    "ORDER_ESCROW_PROCESS",
    "EscrowPayment",
    "settle_order",
]

AWAITING_RELEASE: Final = "awaiting_release"
"""The escrow order's state between confirmed receipt and release."""

S = OrderState
_RECEIPT: Final = (S.SHIPPED, S.DELIVERED)


def _escrow_released(_: Order, payment: object) -> str | None:
    if not isinstance(payment, EscrowPayment):
        return "release needs the order's escrow payment"
    if payment.open_refunds:
        return f"{len(payment.open_refunds)} refund(s) still open"
    held = payment.held
    return None if held.is_zero else f"{held} is still held in escrow"


ORDER_ESCROW: Final = STANDARD_ORDER.extend(
    "order.escrow",
    states=[
        State(S.AWAITING_SHIPMENT, description="待发货 paid into escrow; awaiting shipment"),
        State(S.COMPLETED, description="已完成 escrow released; after-sales window open"),
        State(
            AWAITING_RELEASE,
            description="待结算 receipt confirmed; escrow not yet released to the merchant",
        ),
    ],
    transitions=[
        Transition("confirm_receipt", _RECEIPT, AWAITING_RELEASE),
        Transition("auto_confirm", _RECEIPT, AWAITING_RELEASE),
        Transition("release", AWAITING_RELEASE, S.COMPLETED, guards="escrow_released"),
    ],
    remove_transitions=[(t, s) for t in ("confirm_receipt", "auto_confirm") for s in _RECEIPT],
)
"""The escrow order process: the standard one with a hold between receipt and completion."""

ORDER_ESCROW_PROCESS: Final = Process(
    ORDER_ESCROW, {**ORDER_GUARDS, "escrow_released": _escrow_released}
)
""":data:`ORDER_ESCROW`, validated and compiled."""

_RELEASERS: Final = frozenset({ActorKind.PLATFORM, ActorKind.SYSTEM})


@attrs.define(eq=False)
class EscrowPayment(GatewayPayment):
    """A gateway payment whose captured money the platform holds until it is released."""

    METHOD: ClassVar[PaymentMethod] = PaymentMethod.ESCROW
    """The payment method this class serves."""

    @property
    def holds_in_escrow(self) -> bool:
        """Always: captured money goes into escrow."""
        return True

    @property
    def held(self) -> Money:
        """What escrow still holds for the order (``money().held``)."""
        minor = 0
        for row in self._rows().values():  # a loop: no generator frame for a few lines
            minor += row[1]
        return _money(minor, self.currency)

    def releasable_lines(self) -> tuple[str, ...]:
        """Lines with money in escrow and no open refund on them."""
        blocked = {line for refund in self.open_refunds for line, _ in refund.amounts}
        return tuple(
            line_id
            for (line_id, account), minor in self._line_balances()
            if account.kind is AccountKind.ESCROW and minor > 0 and line_id not in blocked
        )

    def release(self, actor: Actor, *, now: datetime, policy: PaymentPolicy) -> Money:
        """Release every releasable line to the merchant, less commission.

        Safe to call at any time and again: it releases what is held on lines without an open
        refund, and nothing otherwise.

        Returns:
            What left escrow (zero if nothing could be released).

        Raises:
            Forbidden: Not the platform or the system.

        """
        self._authorize("release", actor, _RELEASERS)
        check_now(now)
        lines = self.releasable_lines()
        if not lines:
            return Money.zero(self.currency)
        postings = release_postings(
            key=f"{self.id}/release-{self.version + 1}",
            order_id=self.order_id,
            done=self.postings,
            lines=lines,
            merchant=self.merchant,
            policy=policy,
            at=now,
        )
        self._post(postings)
        currency, moved_minor, commission_minor = self.currency, 0, 0
        for posting in postings:
            if posting.amount.currency != currency:  # what adding it up as Money raises
                raise CurrencyMismatch(currency, posting.amount.currency, "add")
            moved_minor += posting.amount.minor
            if posting.target.kind is AccountKind.COMMISSION:
                commission_minor += posting.amount.minor
        moved = _money(moved_minor, currency)
        commission = _money(commission_minor, currency)
        self._record(EscrowReleased, now, actor, amount=moved, commission=commission, lines=lines)
        return moved

    def released_total(self) -> Money:
        """Everything escrow released to the merchant and the platform so far."""
        currency, minor = self.currency, 0
        for posting in self.postings:
            if posting.movement is Movement.RELEASE:
                if posting.amount.currency != currency:  # what adding it up as Money raises
                    raise CurrencyMismatch(currency, posting.amount.currency, "add")
                minor += posting.amount.minor
        return _money(minor, currency)


def settle_order(
    order: Order,
    payment: EscrowPayment,
    actor: Actor,
    *,
    now: datetime,
    policy: OrderPolicy,
    event: type[DomainEvent] = OrderSettled,
) -> None:
    """Complete an escrow order whose escrow is fully released (``awaiting_release → completed``).

    Raises:
        Forbidden: Not the platform or the system.
        TransitionNotAllowed: The order is not awaiting release.
        GuardRefused: Escrow still holds money for it, or a refund is open.

    """
    order.advance(
        "release",
        actor,
        allowed=_RELEASERS,
        now=now,
        policy=policy,
        event=event,
        context=payment,
        released=payment.released_total(),
    )
