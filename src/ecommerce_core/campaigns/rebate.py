"""Rebate (返利): a cashback entitlement per order, never paid on money that was refunded.

A :class:`Rebate` is granted when its order is paid (the amount comes from the pricing
engine's post-order stage, or :func:`rebate_amount` for a rate). Its process::

    pending 待结算 ─freeze (receipt)→ frozen 冻结中 ─credit (window over)→ credited 已到账
       └──────── refund of everything / void ─────→ void 已失效      └─refund→ clawed_back 已追回

- It is frozen when receipt is confirmed, with a stored thaw time: the end of the order's
  after-sales window. :meth:`Rebate.expire` credits it then, not before, so the usual refunds
  (seven-day returns) all come before any rebate is paid.
- A refund before crediting reduces it to ``floor(amount * (base - refunded) / base)``, or
  voids it (:class:`RebateRule`); a refund of everything voids it.
- A refund after crediting (an arbitration, a chargeback) claws the excess back: the refund
  command returns the clawback amount for the ledger.

The entitlement is always computed from the *cumulative* refunds, so two partial refunds give
the same result as one refund of their sum. The split between what is kept and what is voided
is the split :meth:`~ecommerce_core.money.Money.allocate` would make with weights
``(base - refunded, refunded)``, except that the leftover minor unit always goes to the voided
part: largest-remainder rounding could give it to the kept part, and pay a rebate on refunded
money.

Example:
    >>> from ecommerce_core.money import Money
    >>> str(rebate_amount(Money.of("99.00", "CNY"), 500))   # 5 %
    '4.95 CNY'
    >>> yuan = lambda s: Money.of(s, "CNY")
    >>> str(kept_amount(yuan("4.95"), base=yuan("99.00"), refunded=yuan("33.00")))
    '3.30 CNY'

"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._aggregate import EventRecorder, authorize, check_now, money, text
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import InvalidInput
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.process import Guard, Process, ProcessDefinition, State, Transition

__all__ = [
    "REBATE",
    "REBATE_PROCESS",
    "Rebate",
    "RebateClawedBack",
    "RebateCredited",
    "RebateFrozen",
    "RebateGranted",
    "RebateReduced",
    "RebateRule",
    "RebateState",
    "RebateVoided",
    "kept_amount",
    "rebate_amount",
]

BASIS_POINTS: Final = 10_000


def rebate_amount(base: Money, rate_bp: int) -> Money:
    """A rate-based rebate: ``floor(base * rate_bp / 10000)`` (rounded down, never up).

    Raises:
        InvalidInput: A negative base, or a rate outside 0..10000 basis points.

    """
    if not isinstance(base, Money) or base.is_negative:
        raise InvalidInput("base", base, "must be non-negative Money")
    if type(rate_bp) is not int or not 0 <= rate_bp <= BASIS_POINTS:
        raise InvalidInput("rate_bp", rate_bp, "must be an int from 0 to 10000 basis points")
    return Money(base.minor * rate_bp // BASIS_POINTS, base.currency)


def kept_amount(amount: Money, base: Money, refunded: Money) -> Money:
    """What is left of a rebate of ``amount`` on ``base`` once ``refunded`` was refunded.

    ``floor(amount * (base - refunded) / base)``: proportional, rounded down, never negative.

    Raises:
        InvalidInput: Negative amounts, a zero base, or more refunded than the base.

    """
    for field, value in (("amount", amount), ("refunded", refunded)):
        money(field, value, base.currency)
    money("base", base, base.currency, positive=True)
    if refunded > base:
        raise InvalidInput("refunded", refunded, f"more than the base {base}")
    return Money(amount.minor * (base.minor - refunded.minor) // base.minor, base.currency)


class RebateRule(enum.StrEnum):
    """What a refund before crediting does to the rebate."""

    PROPORTIONAL = "proportional"
    """Reduce it in proportion to the money refunded."""
    VOID = "void"
    """Void it on any refund (CRMEB's rule)."""


class RebateState:
    """Names of the rebate states."""

    PENDING: Final = "pending"
    FROZEN: Final = "frozen"
    CREDITED: Final = "credited"
    VOID: Final = "void"
    CLAWED_BACK: Final = "clawed_back"


def _leaves_nothing(rebate: Rebate, refund: object) -> str | None:
    if isinstance(refund, Money) and rebate.entitlement_after(refund).is_zero:
        return None
    return "some of the rebate is still due"


REBATE_GUARDS: Final[Mapping[str, Guard]] = MappingProxyType({"leaves_nothing": _leaves_nothing})

_S = RebateState
REBATE: Final = ProcessDefinition(
    name="rebate",
    initial=_S.PENDING,
    states=(
        State(_S.PENDING, description="待结算 granted when the order was paid"),
        State(_S.FROZEN, description="冻结中 receipt confirmed; thaws when after-sales ends"),
        State(_S.CREDITED, description="已到账 paid out; a later refund claws back"),
        State(_S.VOID, final=True, description="已失效 refunded before it was paid out"),
        State(_S.CLAWED_BACK, final=True, description="已追回 paid out, then fully clawed back"),
    ),
    transitions=(
        Transition("freeze", _S.PENDING, _S.FROZEN),
        Transition("credit", _S.FROZEN, _S.CREDITED),
        Transition("refund", _S.PENDING, _S.VOID, guards="leaves_nothing"),
        Transition("refund", _S.PENDING, _S.PENDING),
        Transition("refund", _S.FROZEN, _S.VOID, guards="leaves_nothing"),
        Transition("refund", _S.FROZEN, _S.FROZEN),
        Transition("refund", _S.CREDITED, _S.CLAWED_BACK, guards="leaves_nothing"),
        Transition("refund", _S.CREDITED, _S.CREDITED),
        Transition("void", (_S.PENDING, _S.FROZEN), _S.VOID),
    ),
)
"""The rebate process (返利)."""

REBATE_PROCESS: Final = Process(REBATE, REBATE_GUARDS)
""":data:`REBATE`, validated and compiled."""


# --------------------------------------------------------------------------- events


@attrs.frozen(kw_only=True)
class RebateGranted(DomainEvent):
    """A rebate was granted on a paid order.

    Attributes:
        order_id: The order.
        beneficiary_id: Who gets it (the buyer, or a referrer).
        base: The paid amount it is computed on.
        amount: The rebate.

    """

    order_id: str
    beneficiary_id: str
    base: Money
    amount: Money


@attrs.frozen(kw_only=True)
class RebateFrozen(DomainEvent):
    """Receipt was confirmed: the rebate is frozen until the after-sales window ends.

    Attributes:
        thaw_at: When it is credited.

    """

    thaw_at: datetime


@attrs.frozen(kw_only=True)
class RebateReduced(DomainEvent):
    """A refund before crediting reduced the rebate.

    Attributes:
        refunded: Refunded on the order so far.
        entitlement: What the rebate is now.

    """

    refunded: Money
    entitlement: Money


@attrs.frozen(kw_only=True)
class RebateVoided(DomainEvent):
    """The rebate was voided before it was paid out.

    Attributes:
        reason: Why (``"refunded"``, or the abandoned order's reason).

    """

    reason: str


@attrs.frozen(kw_only=True)
class RebateCredited(DomainEvent):
    """The rebate was paid out to its beneficiary.

    Attributes:
        amount: What was credited.

    """

    amount: Money


@attrs.frozen(kw_only=True)
class RebateClawedBack(DomainEvent):
    """A refund after crediting took part of the rebate back: post it to the ledger.

    Attributes:
        amount: What is clawed back by this refund.
        refunded: Refunded on the order so far.

    """

    amount: Money
    refunded: Money


# --------------------------------------------------------------------------- aggregate

_SYSTEM: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})


def _zero(rebate: Rebate) -> Money:
    return Money.zero(rebate.base.currency)


@attrs.define(eq=False)
class Rebate(EventRecorder):
    """The rebate on one order.

    Grant it with :meth:`grant` when the order is paid; then :meth:`freeze` at receipt,
    :meth:`expire` (credits it at the thaw time), :meth:`refund` for every refund on the
    order, and :meth:`void` when the order is abandoned.

    Attributes:
        id: The rebate id.
        order_id: The order.
        beneficiary_id: Who gets it.
        base: The paid amount it is computed on (freight excluded, by the pricing engine).
        amount: The rebate as granted.
        rule: What a refund before crediting does.
        state: See :class:`RebateState`.
        refunded: Refunded on the order so far (at most the base).
        credited: Paid out to the beneficiary.
        clawed_back: Taken back after crediting.
        thaw_at: When it is credited, once frozen.
        version: Raised by one per event.
        events: Events since the last :meth:`collect_events`.

    """

    id: str
    order_id: str
    beneficiary_id: str
    base: Money
    amount: Money
    rule: RebateRule
    state: str = _S.PENDING
    refunded: Money = attrs.field(default=attrs.Factory(_zero, takes_self=True))
    credited: Money = attrs.field(default=attrs.Factory(_zero, takes_self=True))
    clawed_back: Money = attrs.field(default=attrs.Factory(_zero, takes_self=True))
    thaw_at: datetime | None = None
    version: int = 0
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def grant(
        cls,
        actor: Actor,
        *,
        rebate_id: str,
        order_id: str,
        beneficiary_id: str,
        base: Money,
        amount: Money,
        now: datetime,
        rule: RebateRule = RebateRule.PROPORTIONAL,
    ) -> Rebate:
        """Grant a rebate on a paid order.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: Blank ids, a base that is not positive, or an amount that is
                negative or above the base.
            CurrencyMismatch: The amount is in another currency than the base.

        """
        authorize(actor, _SYSTEM, "grant", rebate_id)
        check_now(now)
        for field, value in (
            ("rebate_id", rebate_id),
            ("order_id", order_id),
            ("beneficiary_id", beneficiary_id),
        ):
            text(field, value)
        if not isinstance(base, Money):
            raise InvalidInput("base", base, "must be Money")
        money("base", base, base.currency, positive=True)
        money("amount", amount, base.currency)
        if amount > base:
            raise InvalidInput("amount", amount, f"a rebate above the paid base {base}")
        rebate = cls(
            id=rebate_id,
            order_id=order_id,
            beneficiary_id=beneficiary_id,
            base=base,
            amount=amount,
            rule=RebateRule(rule),
        )
        rebate._record(
            RebateGranted,
            now,
            actor,
            order_id=order_id,
            beneficiary_id=beneficiary_id,
            base=base,
            amount=amount,
        )
        return rebate

    # ----------------------------------------------------------------- reading

    @property
    def entitlement(self) -> Money:
        """What the rebate is worth now, given the refunds so far."""
        return self._worth(self.refunded)

    @property
    def paid_out(self) -> Money:
        """What the beneficiary holds: credited less clawed back."""
        return self.credited - self.clawed_back

    @property
    def is_final(self) -> bool:
        """Whether the rebate is void or fully clawed back."""
        return REBATE_PROCESS.is_final(self.state)

    @property
    def due_at(self) -> datetime | None:
        """When :meth:`expire` next has something to do (the thaw time, while frozen)."""
        return self.thaw_at if self.state == _S.FROZEN else None

    def entitlement_after(self, refund: Money) -> Money:
        """What the rebate would be worth after a further ``refund`` on the order.

        Raises:
            InvalidInput: The refunds would exceed the base.

        """
        money("refund", refund, self.base.currency)
        return self._worth(self.refunded + refund)

    # ----------------------------------------------------------------- commands

    def freeze(self, actor: Actor, *, thaw_at: datetime, now: datetime) -> None:
        """Receipt was confirmed: freeze the rebate until ``thaw_at``.

        Args:
            actor: The system or the platform.
            thaw_at: The end of the order's after-sales window (the order's close deadline).
            now: When receipt was confirmed.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: ``thaw_at`` before ``now``.
            TransitionNotAllowed: Not pending.

        """
        authorize(actor, _SYSTEM, "freeze", self.id)
        check_now(now)
        check_now(thaw_at)
        if thaw_at < now:
            raise InvalidInput("thaw_at", thaw_at, "the after-sales window cannot end before now")
        dest = REBATE_PROCESS.fire(self.state, "freeze", self, subject_id=self.id)
        self.state, self.thaw_at = dest, thaw_at
        self._record(RebateFrozen, now, actor, thaw_at=thaw_at)

    def expire(self, now: datetime, actor: Actor | None = None) -> Money | None:
        """Credit a frozen rebate once its thaw time has come.

        Idempotent: with nothing due, nothing happens and ``None`` is returned.

        Returns:
            The amount credited (post it to the ledger), or ``None``.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, "expire", self.id)
        check_now(now)
        if self.state != _S.FROZEN or self.thaw_at is None or now < self.thaw_at:
            return None
        dest = REBATE_PROCESS.fire(self.state, "credit", self, subject_id=self.id)
        self.credited = self.entitlement
        self.state = dest
        self._record(RebateCredited, self.thaw_at, actor, amount=self.credited)
        return self.credited

    def refund(self, actor: Actor, *, amount: Money, now: datetime) -> Money:
        """Record a refund of ``amount`` on the order.

        Before crediting the rebate shrinks (or is voided); after crediting the excess is
        clawed back.

        Returns:
            The amount to claw back from the beneficiary now (zero before crediting).

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A refund that is not positive, or refunds beyond the base.
            TransitionNotAllowed: The rebate is void or fully clawed back.

        """
        authorize(actor, _SYSTEM, "refund", self.id)
        check_now(now)
        money("amount", amount, self.base.currency, positive=True)
        after = self.entitlement_after(amount)
        dest = REBATE_PROCESS.fire(self.state, "refund", self, amount, subject_id=self.id)
        refunded = self.refunded + amount
        zero = Money.zero(self.base.currency)
        if self.state == _S.CREDITED:
            clawback = self.paid_out - after
            self.refunded, self.clawed_back, self.state = (
                refunded,
                self.clawed_back + clawback,
                dest,
            )
            self._record(RebateClawedBack, now, actor, amount=clawback, refunded=refunded)
            return clawback
        self.refunded, self.state = refunded, dest
        if dest == _S.VOID:
            self._record(RebateVoided, now, actor, reason="refunded")
        else:
            self._record(RebateReduced, now, actor, refunded=refunded, entitlement=after)
        return zero

    def void(self, actor: Actor, *, reason: str, now: datetime) -> None:
        """Void the rebate before it is paid out: its order was abandoned.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A blank reason.
            TransitionNotAllowed: Already credited (refund it instead), void or clawed back.

        """
        authorize(actor, _SYSTEM, "void", self.id)
        check_now(now)
        text("reason", reason, 500)
        dest = REBATE_PROCESS.fire(self.state, "void", self, subject_id=self.id)
        self.state = dest
        self._record(RebateVoided, now, actor, reason=reason)

    # ----------------------------------------------------------------- internals

    def _worth(self, refunded: Money) -> Money:
        if refunded > self.base:
            raise InvalidInput(
                "refund", refunded - self.refunded, f"refunds would exceed the paid {self.base}"
            )
        if self.rule is RebateRule.VOID and refunded.is_positive:
            return Money.zero(self.base.currency)
        return kept_amount(self.amount, self.base, refunded)
