"""授信支付 credit: a provider pays the merchant now; the buyer repays in installments.

At payment the draw is checked against the buyer's available limit (the
:class:`~ecommerce_core.ports.CreditLines` port); the credit provider pays the merchant (less
commission) at once, and the buyer owes an installment plan of 3, 6 or 12 periods:

- the fee is ``principal * rate(periods)`` (policy data, rounded half up);
- each period owes ``(principal + fee) // periods``, the rounding remainder on the last one;
- installment ``n`` is due ``n`` periods after the draw; repaid late, it owes a penalty of
  ``days late * amount * daily rate`` (rounded down), capped at the installment's amount;
- repaying an installment gives its principal back to the buyer's limit.

A refund reduces what is owed: it takes principal off the unpaid installments from the last one
backwards (their fee shrinks in proportion) and gives that much back to the limit. If the buyer
already repaid more than the refund leaves owing, the provider pays the difference back to the
buyer (a ``cashback`` posting).

The payment's process, ``payment.credit``, is ``repaying → repaid``; being overdue is derived
(:meth:`CreditPayment.overdue`), never stored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, Final

import attrs

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import InvalidInput, TransitionNotAllowed
from ecommerce_core.money import Money, allocate_minor
from ecommerce_core.orders import Order, check_now
from ecommerce_core.payments.base import PaymentRecord, Refund, allocation_of
from ecommerce_core.payments.events import CreditDrawn, InstallmentRepaid
from ecommerce_core.payments.ledger import ORDER_LEVEL, Account, Movement, Posting
from ecommerce_core.payments.policy import PaymentMethod, PaymentPolicy
from ecommerce_core.payments.settlement import payer_postings
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "PAYMENT_CREDIT",
    "PAYMENT_CREDIT_PROCESS",
    "CreditPayment",
    "Installment",
    "installment_plan",
]

_DAY: Final = timedelta(days=1)


@attrs.frozen
class Installment:
    """One period of a credit plan.

    Attributes:
        number: 1-based.
        due_at: When it is due.
        principal: The principal it repays.
        fee: The fee it carries.
        repaid_at: When the buyer repaid it, if they did.
        penalty: The overdue penalty paid with it (zero until repaid).

    """

    number: int
    due_at: datetime
    principal: Money
    fee: Money
    repaid_at: datetime | None = None
    penalty: Money | None = None

    @property
    def amount(self) -> Money:
        """What it owes, penalty aside: principal plus fee."""
        return self.principal + self.fee

    @property
    def settled(self) -> bool:
        """Whether nothing is owed on it any more (repaid, or refunded away)."""
        return self.repaid_at is not None or self.amount.is_zero

    def days_late(self, now: datetime) -> int:
        """Full days past its due date at ``now`` (or when it was repaid); zero if not late."""
        until = self.repaid_at or now
        return max((until - self.due_at) // _DAY, 0)

    def penalty_at(self, now: datetime, policy: PaymentPolicy) -> Money:
        """The penalty it owes (or paid) as of ``now``."""
        if self.penalty is not None:
            return self.penalty
        if self.settled:
            return Money.zero(self.principal.currency)
        return policy.penalty(self.amount, self.days_late(now))


def installment_plan(
    principal: Money, fee: Money, periods: int, start: datetime, period: timedelta
) -> tuple[Installment, ...]:
    """Split ``principal + fee`` into ``periods`` installments, the remainder on the last.

    Each installment's principal is its share of ``principal`` by amount (largest remainder),
    so the principals add up exactly and none exceeds its installment.
    """
    total = principal.minor + fee.minor
    each = total // periods
    amounts = [each] * (periods - 1) + [total - each * (periods - 1)]
    principals = allocate_minor(principal.minor, amounts)
    currency = principal.currency
    return tuple(
        Installment(
            n + 1,
            start + period * (n + 1),
            Money(part, currency),
            Money(amount - part, currency),
        )
        for n, (amount, part) in enumerate(zip(amounts, principals, strict=True))
    )


def _plan_settled(payment: CreditPayment, repaying: int | None) -> str | None:
    left = [i.number for i in payment.installments if not i.settled and i.number != repaying]
    return None if not left else f"installments {left} are still owed"


PAYMENT_CREDIT: Final = ProcessDefinition(
    name="payment.credit",
    initial="repaying",
    states=(
        State("repaying", description="还款中 the provider paid; the buyer repays installments"),
        State("repaid", final=True, description="已还清 every installment repaid or refunded"),
    ),
    transitions=(
        Transition("repay", "repaying", "repaid", guards="plan_settled"),
        Transition("repay", "repaying", "repaying"),
        Transition("refund", "repaying", "repaid", guards="plan_settled"),
        Transition("refund", "repaying", "repaying"),
    ),
)
"""The lifecycle of a credit payment."""

PAYMENT_CREDIT_PROCESS: Final = Process(PAYMENT_CREDIT, {"plan_settled": _plan_settled})
""":data:`PAYMENT_CREDIT`, validated and compiled."""

_BORROWERS: Final = frozenset({ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM})


@attrs.define(eq=False)
class CreditPayment(PaymentRecord):
    """A credit payment and the buyer's installment plan.

    Attributes:
        provider_id: The credit provider.
        periods: The number of installments chosen.
        fee: The installment fee charged at the draw.
        installments: The plan, in order.
        restorations: What to give back to the buyer's credit limit, keyed: the outbox for the
            :class:`~ecommerce_core.ports.CreditLines` port, applied idempotently by key.

    """

    METHOD: ClassVar[PaymentMethod] = PaymentMethod.CREDIT
    """The payment method this class serves."""

    provider_id: str = attrs.field(kw_only=True)
    periods: int = attrs.field(kw_only=True)
    fee: Money = attrs.field(kw_only=True)
    installments: tuple[Installment, ...] = attrs.field(kw_only=True)
    restorations: tuple[tuple[str, Money], ...] = attrs.field(default=(), kw_only=True)

    @classmethod
    def draw(
        cls,
        payment_id: str,
        order: Order,
        actor: Actor,
        *,
        provider_id: str,
        periods: int,
        now: datetime,
        policy: PaymentPolicy,
    ) -> CreditPayment:
        """Pay ``order`` on credit: the provider pays the merchant, the buyer owes the plan.

        The caller draws the principal on the buyer's credit line first (the port refuses a
        draw beyond the available limit).

        Raises:
            InvalidInput: Not a credit order; a number of periods the policy does not offer.
            Forbidden: Not the order's buyer, the platform or the system.

        """
        check_now(now)
        if order.payment_method != PaymentMethod.CREDIT:
            raise InvalidInput("payment_method", order.payment_method, "not a credit order")
        fee = policy.credit_fee(order.total, periods)
        provider = Account.credit_provider(provider_id)
        payment = cls(
            id=payment_id,
            order_id=order.id,
            buyer_id=order.buyer_id,
            merchant_id=order.merchant_id,
            method=PaymentMethod.CREDIT,
            allocation=allocation_of(order),
            total=order.total,
            payer=provider,
            process=PAYMENT_CREDIT_PROCESS,
            state=PAYMENT_CREDIT_PROCESS.initial,
            created_at=now,
            provider_id=provider_id,
            periods=periods,
            fee=fee,
            installments=installment_plan(order.total, fee, periods, now, policy.credit_period),
        )
        payment._authorize("pay", actor, _BORROWERS)
        payment._post(
            payer_postings(
                key=f"{payment_id}/draw",
                order_id=order.id,
                allocation=payment.allocation,
                done=(),
                payer=provider,
                amount=order.total,
                hold=False,
                merchant=payment.merchant,
                policy=policy,
                movement=Movement.DRAW,
                at=now,
            )
        )
        payment._record(
            CreditDrawn,
            now,
            actor,
            provider=provider_id,
            principal=order.total,
            fee=fee,
            periods=periods,
        )
        return payment

    # ----------------------------------------------------------------- reading

    @property
    def next_installment(self) -> Installment | None:
        """The earliest installment still owed, if any."""
        return next((i for i in self.installments if not i.settled), None)

    def overdue(self, now: datetime) -> tuple[Installment, ...]:
        """Installments past their due date and not repaid."""
        return tuple(i for i in self.installments if not i.settled and i.due_at < now)

    def owed(self, now: datetime, policy: PaymentPolicy) -> Money:
        """Everything the buyer still owes at ``now``: unpaid installments and penalties."""
        owing = [i.amount + i.penalty_at(now, policy) for i in self.installments if not i.settled]
        return sum(owing, Money.zero(self.currency))

    @property
    def principal_owed(self) -> Money:
        """Principal not yet repaid or refunded: what the buyer's limit is still short of."""
        parts = [i.principal for i in self.installments if not i.settled]
        return sum(parts, Money.zero(self.currency))

    # ----------------------------------------------------------------- commands

    def repay(self, key: str, actor: Actor, *, now: datetime, policy: PaymentPolicy) -> Installment:
        """The buyer repays the next installment in full, with any overdue penalty.

        A repeat with the same key returns the installment it repaid.

        Returns:
            The repaid installment.

        Raises:
            Forbidden: Not the order's buyer, the platform or the system.
            TransitionNotAllowed: Nothing is owed any more.

        """
        self._authorize("repay", actor, _BORROWERS)
        check_now(now)
        known = self.keys.get(key)
        if known is not None and known.startswith("repay "):
            number = int(known.removeprefix("repay "))
            return self.installments[number - 1]
        due = self.next_installment
        if due is None:
            raise TransitionNotAllowed(self.id, "repay", self.state, ())
        self._seen(key, f"repay {due.number}")
        dest = self.process.fire(self.state, "repay", self, due.number, subject_id=self.id)
        days = due.days_late(now)
        penalty = policy.penalty(due.amount, days)
        repaid = attrs.evolve(due, repaid_at=now, penalty=penalty)
        self._post(
            (
                Posting(
                    f"{self.id}/{key}/1",
                    self.order_id,
                    ORDER_LEVEL,
                    Account.buyer(self.buyer_id),
                    self.payer,
                    due.amount + penalty,
                    Movement.REPAY,
                    now,
                ),
            )
        )
        self.installments = tuple(repaid if i is due else i for i in self.installments)
        if due.principal.is_positive:
            self.restorations = (*self.restorations, (f"{self.id}/{key}", due.principal))
        self.state = dest
        self._remember(key, f"repay {due.number}")
        self._record(
            InstallmentRepaid,
            now,
            actor,
            number=due.number,
            amount=due.amount,
            penalty=penalty,
            days_late=days,
        )
        return repaid

    def _refunded(self, refund: Refund, now: datetime) -> None:
        """A refund reduces what is owed from the last installment back, and restores the limit."""
        left = refund.total.minor
        plan = list(self.installments)
        for index in reversed(range(len(plan))):
            step = plan[index]
            if step.settled or not left or not step.principal.is_positive:
                continue
            cut = min(step.principal.minor, left)
            kept = step.principal.minor - cut
            fee = step.fee.minor * kept // step.principal.minor
            plan[index] = attrs.evolve(
                step, principal=Money(kept, self.currency), fee=Money(fee, self.currency)
            )
            left -= cut
        if not any(step.principal.is_positive for step in plan if not step.settled):
            zero = Money.zero(self.currency)
            plan = [step if step.settled else attrs.evolve(step, fee=zero) for step in plan]
        self.installments = tuple(plan)
        restored = refund.total.minor - left
        if restored:
            amount = Money(restored, self.currency)
            self.restorations = (*self.restorations, (f"{self.id}/{refund.id}", amount))
        if left:
            self._post(
                (
                    Posting(
                        f"{self.id}/{refund.id}/cashback",
                        self.order_id,
                        ORDER_LEVEL,
                        self.payer,
                        Account.buyer(self.buyer_id),
                        Money(left, self.currency),
                        Movement.CASHBACK,
                        now,
                    ),
                )
            )
        if self.state == "repaying":
            self.state = self.process.fire(self.state, "refund", self, None, subject_id=self.id)
