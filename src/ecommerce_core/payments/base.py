"""What every payment aggregate shares: refund records, idempotency keys, a postings outbox.

A payment aggregate (:class:`~ecommerce_core.payments.online.GatewayPayment`,
:class:`~ecommerce_core.payments.cod.CodPayment`,
:class:`~ecommerce_core.payments.credit.CreditPayment`) carries a version, like an order, so two
writers racing on one payment conflict instead of both succeeding. It also keeps every posting it
produced, in order: its own book, from which it computes what each line can still refund, and an
*outbox* that the service appends to the ledger after each save. The ledger appends by key, so
appending the outbox again after a crash, or on a retried command, is harmless.

Refunds are records of their own: pending → succeeded or failed. A pending refund counts
against what is refundable (so two refunds cannot both spend the same money); a failed one does
not count at all.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._slots import event as _event
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    CurrencyMismatch,
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
    NotFound,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import MAX_MINOR_UNITS, Money
from ecommerce_core.money import _result as _money  # Money from known-good ints (hot path)
from ecommerce_core.orders import Order, OrderLine, check_now
from ecommerce_core.payments.events import RefundFailed, RefundRequested, RefundSucceeded
from ecommerce_core.payments.ledger import (
    ORDER_LEVEL,
    Account,
    OrderMoney,
    Posting,
    _sorted_balances,
    balances_by_line,
    fold_rows,
    money_of_rows,
)
from ecommerce_core.payments.policy import PaymentMethod
from ecommerce_core.payments.settlement import Allocation, refund_postings, split
from ecommerce_core.process import Process

__all__ = [
    "REFUNDERS",
    "PaymentRecord",
    "Refund",
    "RefundStatus",
    "allocation_of",
]

REFUNDERS: Final = frozenset({ActorKind.MERCHANT, ActorKind.PLATFORM, ActorKind.SYSTEM})
"""Who may refund: the order's merchant, the platform, or the system (cancellations, surpluses)."""


def allocation_of(order: Order) -> Allocation:
    """What each line of ``order`` costs after discounts, and the shipping fee at order level."""
    lines: list[tuple[str, Money]] = []
    for line in order.lines:  # line.amount in minor units for the plain line (no frames)
        unit, discount, quantity = line.unit_price, line.discount, line.quantity
        if (
            type(line) is OrderLine
            and type(unit) is Money
            and type(discount) is Money
            and type(quantity) is int
            and unit.currency == discount.currency
        ):
            gross = unit.minor * quantity  # unit_price * quantity, if it stays in range
            if -MAX_MINOR_UNITS <= gross <= MAX_MINOR_UNITS:
                lines.append((line.line_id, _money(gross - discount.minor, unit.currency)))
                continue
        lines.append((line.line_id, line.amount))  # anything else: the property raises or builds
    if order.shipping_fee.is_positive:
        lines.append((ORDER_LEVEL, order.shipping_fee))
    return tuple(lines)


class RefundStatus(enum.StrEnum):
    """Where a refund stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@attrs.frozen
class Refund:
    """Money asked back for an order, line by line.

    Attributes:
        id: The refund's id: the idempotency key it was asked with.
        amounts: How much per line id (``""`` for order-level money), in line order.
        reason: Why.
        requested_at: When it was asked.
        status: Pending, succeeded or failed.
        automatic: Whether the library asked it (late capture, cancellation, surplus).
        transaction_id: The provider's id of the refund, once known.
        settled_at: When it succeeded or failed.

    """

    id: str
    amounts: tuple[tuple[str, Money], ...]
    reason: str
    requested_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    automatic: bool = False
    transaction_id: str = ""
    settled_at: datetime | None = None

    @property
    def total(self) -> Money:
        """The refund's amount."""
        return sum((amount for _, amount in self.amounts[1:]), self.amounts[0][1])

    @property
    def is_open(self) -> bool:
        """Whether it still waits for an answer."""
        return self.status is RefundStatus.PENDING


class _Memo:
    """Figures a payment derives from its postings and refunds, kept while those stay the same.

    Keyed by the identity of the (immutable) tuples they were computed from, so copies of a
    payment may share one memo: a copy that appended a posting or changed a refund holds
    other tuples and computes its own figures.
    """

    __slots__ = (
        "balance_postings",
        "balances",
        "merchant",
        "money",
        "postings",
        "refundable",
        "refunds",
        "rows",
    )

    def __init__(self) -> None:
        self.balance_postings: tuple[Posting, ...] | None = None
        self.balances: list[tuple[tuple[str, Account], int]] | None = None
        self.merchant: Account | None = None
        self.postings: tuple[Posting, ...] | None = None
        self.rows: dict[str, list[int]] | None = None
        self.money: OrderMoney | None = None
        self.refunds: tuple[Refund, ...] | None = None
        self.refundable: tuple[dict[str, Money], Money] | None = None


def _fingerprint(amounts: Mapping[str, Money]) -> str:
    return "refund " + ", ".join(f"{line}={amount}" for line, amount in sorted(amounts.items()))


@attrs.define(eq=False)
class PaymentRecord:
    """Base of the payment aggregates: one order's money under one payment method.

    Attributes:
        id: The payment's id.
        order_id: The order it pays.
        buyer_id: The order's buyer.
        merchant_id: The order's merchant.
        method: The payment method.
        allocation: What each line of the order costs (the order's own figures).
        total: The order total.
        payer: The account the money comes from and refunds go back to.
        process: The payment's process.
        state: Its one stored state.
        created_at: When it was started.
        version: Raised by one per event (optimistic concurrency).
        refunds: Every refund, in the order asked.
        postings: Every posting it produced, in order: its book and the ledger's outbox.
        keys: Idempotency keys seen, with a fingerprint of their payload.
        deadline: When its timer falls due, if one runs (an authorization's expiry).
        events: Events raised since the last :meth:`collect_events`.

    """

    id: str
    order_id: str
    buyer_id: str
    merchant_id: str
    method: PaymentMethod
    allocation: Allocation
    total: Money
    payer: Account
    process: Process = attrs.field(repr=False)
    state: str
    created_at: datetime
    version: int = 0
    refunds: tuple[Refund, ...] = ()
    postings: tuple[Posting, ...] = attrs.field(default=(), repr=False)
    keys: Mapping[str, str] = attrs.field(factory=lambda: MappingProxyType({}), repr=False)
    deadline: datetime | None = None
    events: tuple[DomainEvent, ...] = attrs.field(default=(), repr=False)
    _memo: _Memo = attrs.field(factory=_Memo, init=False, repr=False, eq=False)

    # ----------------------------------------------------------------- reading

    @property
    def currency(self) -> str:
        """The order's currency."""
        return self.total.currency

    @property
    def merchant(self) -> Account:
        """The merchant's account."""
        memo = self._memo
        account = memo.merchant
        if account is None or account.owner is not self.merchant_id:
            account = memo.merchant = Account.merchant(self.merchant_id)
        return account

    def money(self) -> OrderMoney:
        """What this payment's money did, per line (its own postings only)."""
        memo = self._memo
        rows = self._rows()
        if memo.money is None:
            memo.money = money_of_rows(self.order_id, self.currency, rows)
        return memo.money

    @property
    def paid_in(self) -> Money:
        """Money paid in through this payment (``money().paid_in``)."""
        minor = 0
        for row in self._rows().values():  # a loop: no generator frame for a few lines
            minor += row[0]
        return _money(minor, self.total.currency)

    def _rows(self) -> dict[str, list[int]]:
        """The payment's postings folded per line (see :func:`.ledger.fold_rows`), memoised."""
        memo, postings = self._memo, self.postings
        if memo.postings is not postings or memo.rows is None:
            memo.rows = fold_rows(self.order_id, self.currency, postings)
            memo.postings = postings
            memo.money = memo.refunds = memo.refundable = None
        return memo.rows

    def _line_balances(self) -> list[tuple[tuple[str, Account], int]]:
        """``balances_by_line`` of the postings, sorted, memoised like the rows."""
        memo, postings = self._memo, self.postings
        if memo.balance_postings is not postings or memo.balances is None:
            memo.balances = _sorted_balances(balances_by_line(postings))
            memo.balance_postings = postings
        return memo.balances

    @property
    def open_refunds(self) -> tuple[Refund, ...]:
        """Refunds still waiting for an answer."""
        return tuple(r for r in self.refunds if r.is_open)

    def refundable_by_line(self) -> dict[str, Money]:
        """What each line can still refund: its refundable money less open refunds on it."""
        return dict(self._refundable()[0])

    @property
    def refundable(self) -> Money:
        """What can still be refunded in total, open refunds deducted."""
        return self._refundable()[1]

    def _refundable(self) -> tuple[dict[str, Money], Money]:
        """Refundable money per line and in total, computed once per postings and refunds."""
        rows = self._rows()
        memo, refunds = self._memo, self.refunds
        if memo.refunds is not refunds or memo.refundable is None:
            currency = self.currency
            left = {  # paid in, less refunded and kept, by line id as money() lists them
                line_id: row[0] - row[5] - row[4] for line_id, row in sorted(rows.items())
            }
            for refund in refunds:
                if refund.is_open:
                    for line_id, amount in refund.amounts:
                        if amount.currency != currency:
                            raise CurrencyMismatch(currency, amount.currency, "subtract")
                        left[line_id] = left.get(line_id, 0) - amount.minor
            by_line: dict[str, Money] = {}
            whole = 0
            for line_id, minor in left.items():
                if minor > 0:
                    by_line[line_id] = _money(minor, currency)
                    whole += minor
            total = _money(whole, currency)
            memo.refunds, memo.refundable = refunds, (by_line, total)
        return memo.refundable

    def refund(self, refund_id: str) -> Refund:
        """The refund with this id.

        Raises:
            NotFound: No such refund on this payment.

        """
        for refund in self.refunds:
            if refund.id == refund_id:
                return refund
        raise NotFound("refund", refund_id)

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    # ----------------------------------------------------------------- refunds

    def request_refund(
        self,
        key: str,
        actor: Actor,
        *,
        now: datetime,
        reason: str,
        amount: Money | None = None,
        lines: Mapping[str, Money] | None = None,
        automatic: bool = False,
    ) -> Refund:
        """Open a refund of ``amount`` (split over the lines) or of ``lines`` (per line).

        A repeat with the same key and amounts returns the refund already opened.

        Args:
            key: The idempotency key; it becomes the refund's id.
            actor: The order's merchant, the platform or the system.
            now: When.
            reason: Why, for people.
            amount: A total, split over the lines by what each can still refund.
            lines: Or an amount per line id (``""`` for order-level money).
            automatic: Whether the library opens it on its own.

        Returns:
            The pending refund.

        Raises:
            Forbidden: Not the merchant, the platform or the system.
            InvalidInput: Neither or both of ``amount`` and ``lines``; a zero or negative
                amount; an unknown line; more than a line or the payment can still refund.
            CurrencyMismatch: An amount in another currency.
            IdempotencyConflict: The key was used for other amounts.

        """
        self._authorize("refund", actor, REFUNDERS)
        check_now(now)
        _text("key", key)
        _text("reason", reason)
        amounts = self._refund_amounts(amount, lines)
        if self._seen(key, _fingerprint(amounts)):
            return self.refund(key)
        refund = Refund(
            key,
            tuple(amounts.items()),
            reason,
            now,
            automatic=automatic,
        )
        self.refunds = (*self.refunds, refund)
        self._remember(key, _fingerprint(amounts))
        self._record(
            RefundRequested, now, actor, refund_id=key, amount=refund.total, automatic=automatic
        )
        return refund

    def settle_refund(
        self, refund_id: str, *, succeeded: bool, now: datetime, transaction_id: str = ""
    ) -> bool:
        """Record how a refund ended: money back to the payer, or nothing (a failure).

        Returns:
            ``True`` if it settled now, ``False`` if it had already settled the same way.

        Raises:
            NotFound: No such refund.
            IdempotencyConflict: It already settled the other way (a provider contradicting
                itself needs a person to look).

        """
        check_now(now)
        refund = self.refund(refund_id)
        outcome = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
        if not refund.is_open:
            if refund.status is outcome:
                return False
            raise IdempotencyConflict(
                refund_id, f"the refund already {refund.status}, now reported {outcome}"
            )
        settled = attrs.evolve(
            refund, status=outcome, transaction_id=transaction_id, settled_at=now
        )
        if succeeded:
            self._post(
                refund_postings(
                    key=f"{self.id}/{refund_id}",
                    order_id=self.order_id,
                    done=self.postings,
                    amounts=dict(refund.amounts),
                    payer=self.payer,
                    at=now,
                )
            )
        self.refunds = tuple(settled if r.id == refund_id else r for r in self.refunds)
        system = Actor.system("payments")
        if succeeded:
            self._record(
                RefundSucceeded,
                now,
                system,
                refund_id=refund_id,
                amount=refund.total,
                transaction_id=transaction_id,
            )
            self._refunded(settled, now)
        else:
            self._record(RefundFailed, now, system, refund_id=refund_id, amount=refund.total)
        return True

    def _refunded(self, refund: Refund, now: datetime) -> None:
        """Hook: what a method does once a refund succeeded (move its process, cut a plan)."""

    def _refund_amounts(
        self, amount: Money | None, lines: Mapping[str, Money] | None
    ) -> dict[str, Money]:
        if (amount is None) == (lines is None):
            raise InvalidInput("amount", (amount, lines), "give either an amount or lines")
        refundable = self.refundable_by_line()
        zero = Money.zero(self.currency)
        if amount is not None:
            self._check_amount(amount)
            available = sum(refundable.values(), zero)
            if amount > available:
                raise InvalidInput(
                    "amount", amount, f"more than the {available} this payment can still refund"
                )
            order = [(line_id, refundable[line_id].minor) for line_id in sorted(refundable)]
            return dict(split(amount, order))
        assert lines is not None  # noqa: S101  # checked above: exactly one is given
        if not isinstance(lines, Mapping) or not lines:
            raise InvalidInput("lines", lines, "a refund needs at least one line")
        known = {line_id for line_id, _ in self.allocation} | set(self.money().lines)
        out: dict[str, Money] = {}
        for line_id, line_amount in lines.items():
            if line_id not in known:
                raise InvalidInput("line_id", line_id, "not a line of this order")
            self._check_amount(line_amount)
            left = refundable.get(line_id, zero)
            if line_amount > left:
                raise InvalidInput(
                    "amount", line_amount, f"line {line_id!r} can refund only {left} more"
                )
            out[line_id] = line_amount
        return out

    def _check_amount(self, amount: object) -> None:
        if not isinstance(amount, Money):
            raise InvalidInput("amount", amount, "must be Money")
        if amount.currency != self.currency:
            raise CurrencyMismatch(self.currency, amount.currency, "refund")
        if not amount.is_positive:
            raise InvalidInput("amount", amount, "must be positive")

    # ----------------------------------------------------------------- internals

    def _authorize(self, command: str, actor: Actor, kinds: Collection[ActorKind]) -> None:
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in kinds:
            raise Forbidden(str(actor), command, self.id, f"a {actor.kind} may not {command}")
        if actor.kind is ActorKind.BUYER and actor.id != self.buyer_id:
            raise Forbidden(str(actor), command, self.id, "it is another buyer's payment")
        if actor.kind is ActorKind.MERCHANT and actor.id != self.merchant_id:
            raise Forbidden(str(actor), command, self.id, "it is another merchant's payment")

    def _seen(self, key: str, fingerprint: str) -> bool:
        """``True`` for a repeat of ``key`` with the same payload; raise if it differs."""
        known = self.keys.get(key)
        if known is None:
            return False
        if known != fingerprint:
            raise IdempotencyConflict(key, f"first used for {known}, now for {fingerprint}")
        return True

    def _remember(self, key: str, fingerprint: str) -> None:
        keys = self.keys
        # a read-only view of a dict (as stored): copying the dict is cheaper than unpacking
        # the view through the mapping protocol; any other mapping is unpacked as before
        known = keys.copy() if type(keys) is MappingProxyType else None
        if type(known) is not dict:
            known = {**keys}
        known[key] = fingerprint
        self.keys = MappingProxyType(known)

    def _post(self, postings: tuple[Posting, ...]) -> None:
        self.postings = (*self.postings, *postings)

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor, **fields: object
    ) -> None:
        self.version += 1
        label = actor.label if type(actor) is Actor else str(actor)  # label: built once
        event = _event(event_type, self.id, self.version, now, label, fields)  # slot by slot
        self.events = (*self.events, event)


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:  # noqa: PLR2004
        raise InvalidInput(field, value, "must be a non-empty string of at most 200 characters")
    return value
