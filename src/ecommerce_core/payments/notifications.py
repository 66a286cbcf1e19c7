"""Provider notifications, normalised: what a payment provider's callback says happened.

A provider calls back at least once, in any order, sometimes late; every callback carries the
provider's event id, which is its idempotency key. The gateway port's ``parse_notification``
turns the provider's own format into a :class:`Notification`;
:meth:`~ecommerce_core.payments.online.GatewayPayment.notify` applies it.
"""

from __future__ import annotations

import enum

import attrs

from ecommerce_core.errors import InvalidInput
from ecommerce_core.money import Money

__all__ = [
    "Notification",
    "NotificationKind",
]


class NotificationKind(enum.StrEnum):
    """What a provider's callback says, normalised."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    FAILED = "failed"
    """The payment, or the capture or refund named by ``request_key``, failed or was closed."""
    REFUNDED = "refunded"


@attrs.frozen
class Notification:
    """A provider's callback, normalised by :meth:`PaymentGateway.parse_notification`.

    Attributes:
        event_id: The provider's id of this event: the idempotency key.
        payment_id: Our payment id, as we sent it (the provider echoes it back).
        kind: What happened.
        amount: The amount concerned.
        transaction_id: The provider's id of the payment, capture or refund.
        request_key: Our capture key or refund id when it answers a request of ours.
        reason: The provider's words, for a failure.

    """

    event_id: str
    payment_id: str
    kind: NotificationKind = attrs.field(converter=NotificationKind)
    amount: Money
    transaction_id: str = ""
    request_key: str = ""
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        for name in ("event_id", "payment_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(name, value, "a notification needs one")
        if not isinstance(self.amount, Money) or self.amount.is_negative:
            raise InvalidInput("amount", self.amount, "must be Money, not negative")

    @property
    def fingerprint(self) -> str:
        """What must match when the same event id arrives again."""
        parts = (self.kind, self.payment_id, self.amount, self.transaction_id, self.request_key)
        return "notification " + " ".join(map(str, parts))
