"""One small error tree for everything the library refuses.

Every error the library raises on purpose derives from :class:`EcommerceCoreError`.
Under it, the branches tell a caller *what kind of mistake* happened, and so what to do:

- :class:`DefinitionError`: a process, policy or promotion was defined wrongly. A bug in
  configuration (ours or the host's); fix the definition, do not retry.
- :class:`InvalidInput`: a value the caller passed is malformed (a float for money, a negative
  quantity, an unknown currency). Fix the input.
- :class:`NotFound`: an id that does not exist.
- :class:`Conflict`: the command raced another writer (:class:`VersionConflict`) or reused an
  idempotency key with a different payload (:class:`IdempotencyConflict`). Reload and retry,
  or fix the key.
- :class:`Forbidden`: the actor may not run this command on this aggregate.
- :class:`RuleViolation`: a well-formed command that the business rules refuse in the current
  state (wrong state, a guard said no, out of stock, a limit reached).

Every error carries structured attributes beside its message, so a host can map it to an HTTP
status or a user message without parsing text. A refused command never changes anything: the
aggregate, its version, its events and the stock are as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecommerce_core.money import Money

__all__ = [
    "AlreadyJoined",
    "AlreadyLeading",
    "AlreadyRefunded",
    "BidTooLow",
    "Conflict",
    "CreditLimitExceeded",
    "CurrencyMismatch",
    "DeadlinePassed",
    "DefinitionError",
    "DeliveryOptionUnavailable",
    "DepositRequired",
    "DrawInputsMissing",
    "EcommerceCoreError",
    "Forbidden",
    "GuardRefused",
    "IdempotencyConflict",
    "IncompatibleSchema",
    "InvalidInput",
    "LimitExceeded",
    "NotFound",
    "OutOfStock",
    "PaymentNotCompleted",
    "PromotionRefused",
    "QuantityExceeded",
    "RuleViolation",
    "StorageBusy",
    "TeamFull",
    "TransitionNotAllowed",
    "UnknownCurrency",
    "VersionConflict",
    "WindowClosed",
]


class EcommerceCoreError(Exception):
    """Base of every error this library raises on purpose.

    Attributes:
        message: The human-readable explanation, also the ``str()`` of the error.

    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not pickle by default; errors cross process boundaries
        # (multiprocess hosts, contention tests), so rebuild from the instance dict instead.
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[EcommerceCoreError], message: str, state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class DefinitionError(EcommerceCoreError, ValueError):
    """A process, policy or promotion definition is invalid.

    Raised when the definition is *built*, never while serving a command: a bad definition
    fails at import or start-up.

    Attributes:
        definition: The name of the definition at fault.
        problems: Every problem found, one sentence each.

    """

    def __init__(self, definition: str, problems: Sequence[str]) -> None:
        self.definition = definition
        self.problems = tuple(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"invalid definition {definition!r}: {listed}")


class InvalidInput(EcommerceCoreError, ValueError):
    """A value passed in is malformed or out of range.

    Attributes:
        field: The name of the argument or field at fault.
        value: The offending value (its ``repr`` is in the message).

    """

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {field} {value!r}: {reason}")


class UnknownCurrency(InvalidInput):
    """A currency code that is not a known ISO 4217 code.

    Attributes:
        suggestion: The known code the caller probably meant (``"CNY"`` for ``"cny"`` or
            ``" CNY"``), or ``None``.

    """

    def __init__(self, code: object, suggestion: str | None = None) -> None:
        self.suggestion = suggestion
        reason = "not a known ISO 4217 currency code"
        if suggestion is not None:
            reason += f"; codes are exact and upper case: did you mean {suggestion!r}?"
        super().__init__("currency", code, reason)


class CurrencyMismatch(InvalidInput):
    """Two amounts in different currencies were combined or compared.

    Attributes:
        expected: The currency code that was required.
        actual: The currency code that was given.

    """

    def __init__(self, expected: str, actual: str, operation: str = "combine") -> None:
        self.expected = expected
        self.actual = actual
        InvalidInput.__init__(
            self,
            "currency",
            actual,
            f"cannot {operation} {actual} with {expected}; amounts must share one currency",
        )


class NotFound(EcommerceCoreError, LookupError):
    """No object of this kind has this id.

    Attributes:
        kind: What was looked up (``"order"``, ``"sku"``, ...).
        key: The id that was not found.

    """

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} with id {key!r}")


class Conflict(EcommerceCoreError):
    """The command conflicts with another write; nothing was changed."""


class VersionConflict(Conflict):
    """An aggregate was saved with a stale version: someone else saved it first.

    Reload the aggregate and run the command again.

    Attributes:
        aggregate_id: The aggregate's id.
        expected: The version the writer started from.
        actual: The version stored now (``None`` if it is not stored at all).

    """

    def __init__(self, aggregate_id: str, expected: int, actual: int | None) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{aggregate_id!r} was changed concurrently: expected version {expected}, "
            f"stored version is {actual}; reload and retry"
        )


class IdempotencyConflict(Conflict):
    """An idempotency key was reused with a different payload.

    A repeat with the *same* payload is a no-op; a different payload under the same key is
    almost always a client bug (two operations sharing a key), so it is refused.

    Attributes:
        key: The idempotency key.

    """

    def __init__(self, key: str, detail: str = "") -> None:
        self.key = key
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"idempotency key {key!r} was already used with a different payload{extra}"
        )


class Forbidden(EcommerceCoreError, PermissionError):
    """The actor may not run this command on this aggregate.

    Attributes:
        actor: The actor that tried (its ``str``: ``"buyer:b-1"``).
        command: The command refused.
        aggregate_id: The aggregate it targeted.

    """

    def __init__(self, actor: str, command: str, aggregate_id: str, reason: str) -> None:
        self.actor = actor
        self.command = command
        self.aggregate_id = aggregate_id
        self.reason = reason
        super().__init__(f"{actor} may not {command} {aggregate_id!r}: {reason}")


class RuleViolation(EcommerceCoreError):
    """A well-formed command that the business rules refuse.

    Attributes:
        aggregate_id: The aggregate the command targeted (may be empty for a new one).
        command: The command refused.
        state: The state the aggregate was in.
        reason: Why, in words a person can act on.

    """

    def __init__(
        self, aggregate_id: str, command: str, state: str, reason: str, message: str = ""
    ) -> None:
        self.aggregate_id = aggregate_id
        self.command = command
        self.state = state
        self.reason = reason
        target = f"{aggregate_id!r} " if aggregate_id else ""
        super().__init__(message or f"cannot {command} {target}in state {state!r}: {reason}")


class TransitionNotAllowed(RuleViolation):
    """The process has no transition for this command from the current state.

    Attributes:
        allowed: The commands the process does allow from this state.

    """

    def __init__(self, aggregate_id: str, command: str, state: str, allowed: Sequence[str]) -> None:
        self.allowed = tuple(allowed)
        options = ", ".join(self.allowed) if self.allowed else "none (final state)"
        super().__init__(aggregate_id, command, state, f"allowed here: {options}")


class GuardRefused(RuleViolation):
    """A transition exists but its guard refused it.

    Attributes:
        reasons: What each guard said (one per candidate transition).

    """

    def __init__(self, aggregate_id: str, command: str, state: str, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(aggregate_id, command, state, "; ".join(self.reasons))


class OutOfStock(RuleViolation):
    """Not enough stock (or campaign quota) to reserve what was asked.

    Attributes:
        sku: The stock-keeping unit.
        requested: Units asked for.
        available: Units that were available.

    """

    def __init__(self, sku: str, requested: int, available: int, command: str = "reserve") -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        reason = f"{requested} requested, {available} available"
        super().__init__("", command, "available", reason, f"out of stock: {sku!r}: {reason}")


class LimitExceeded(RuleViolation):
    """A per-buyer, per-coupon or global limit would be exceeded.

    Attributes:
        limit: The name of the limit.
        allowed: How much was allowed.
        requested: How much was asked for.

    """

    def __init__(
        self, limit: str, allowed: int, requested: int, aggregate_id: str = "", command: str = ""
    ) -> None:
        self.limit = limit
        self.allowed = allowed
        self.requested = requested
        reason = f"limit {limit!r} allows {allowed}, {requested} requested"
        super().__init__(
            aggregate_id, command or "use", "limited", reason, f"limit reached: {reason}"
        )


class PaymentNotCompleted(RuleViolation):
    """The payment provider did not confirm the payment (declined, or no answer yet).

    Attributes:
        status: The provider's status (``"declined"`` or ``"pending"``).

    """

    def __init__(self, aggregate_id: str, state: str, status: str, message: str = "") -> None:
        self.status = status
        detail = f" ({message})" if message else ""
        super().__init__(aggregate_id, "pay", state, f"the payment is {status}{detail}")


class CreditLimitExceeded(LimitExceeded):
    """A credit draw beyond what the buyer's credit line has available.

    Attributes:
        buyer_id: The buyer.
        available_amount: What the line had available (:class:`~ecommerce_core.money.Money`).
        requested_amount: What the draw asked for (:class:`~ecommerce_core.money.Money`).

    """

    def __init__(self, buyer_id: str, available: Any, requested: Any) -> None:
        LimitExceeded.__init__(
            self,
            "credit line",
            getattr(available, "minor", 0),
            getattr(requested, "minor", 0),
            buyer_id,
            "draw",
        )
        self.buyer_id = buyer_id
        self.available_amount = available
        self.requested_amount = requested
        self.message = (
            f"credit limit reached: buyer {buyer_id!r} has {available} available, "
            f"{requested} requested"
        )
        self.args = (self.message,)


class PromotionRefused(RuleViolation):
    """A promotion, coupon or sales campaign the buyer asked for cannot be used now.

    Raised when a coupon code the buyer entered does not apply (expired, not started,
    exhausted, its condition unmet), when a flash sale or rush purchase is not selling, and
    when a payment re-check finds the reserved offer no longer honoured. Nothing was reserved.

    Attributes:
        promotion_id: The promotion or campaign refused.
        status: Why, as a :class:`~ecommerce_core.promotions.Status` value (``"expired"``,
            ``"limit_reached"``, ``"condition_unmet"``, ...).
        code: The coupon code, if the buyer entered one.

    """

    def __init__(
        self,
        promotion_id: str,
        status: str,
        reason: str,
        *,
        code: str = "",
        aggregate_id: str = "",
        command: str = "price",
    ) -> None:
        self.promotion_id = promotion_id
        self.status = status
        self.code = code
        what = f"coupon {code!r}" if code else f"promotion {promotion_id!r}"
        super().__init__(aggregate_id, command, status, reason, f"{what} cannot be used: {reason}")


class DeliveryOptionUnavailable(RuleViolation):
    """The delivery option the buyer chose is not (or no longer) offered on those terms.

    Show the buyer the options offered now and let them choose again.

    Attributes:
        option_id: The option that was chosen.
        offered: The ids of the options offered now.

    """

    def __init__(self, option_id: str, offered: Sequence[str], reason: str) -> None:
        self.option_id = option_id
        self.offered = tuple(offered)
        listed = ", ".join(self.offered) if self.offered else "none"
        super().__init__(
            "",
            "choose_delivery",
            "checkout",
            f"{reason}; offered now: {listed}",
            f"delivery option {option_id!r} is not available: {reason}; offered now: {listed}",
        )


class QuantityExceeded(RuleViolation):
    """More units were asked for than the line allows (shipped, delivered, refunded, ...).

    Attributes:
        line_id: The order line.
        requested: Units asked for.
        available: Units the rules allow for this command now.
        limit: What bounds it, in words (``"delivered and not yet claimed"``).

    """

    def __init__(
        self,
        aggregate_id: str,
        command: str,
        state: str,
        *,
        line_id: str,
        requested: int,
        available: int,
        limit: str,
    ) -> None:
        self.line_id = line_id
        self.requested = requested
        self.available = available
        self.limit = limit
        super().__init__(
            aggregate_id,
            command,
            state,
            f"line {line_id!r}: {requested} units asked, {available} {limit}",
        )


class AlreadyRefunded(QuantityExceeded):
    """The units asked for are already refunded (or under a refund request) on this line."""


class WindowClosed(RuleViolation):
    """The time allowed for this request is over (the no-reason return window, or after-sales).

    Attributes:
        closed_at: When the window closed (``None`` when it never opened).

    """

    def __init__(
        self,
        aggregate_id: str,
        command: str,
        state: str,
        reason: str,
        closed_at: datetime | None = None,
    ) -> None:
        self.closed_at = closed_at
        super().__init__(aggregate_id, command, state, reason)


class StorageBusy(Conflict):
    """The store stayed locked by other writers for longer than its busy timeout.

    Nothing was changed: the write was refused before it began (or rolled back). Retry the
    command, later or with a longer timeout; a steady stream of these means the store is
    overloaded.

    Attributes:
        operation: What was being done (``"reserve"``, ``"save"``, ...).
        waited: The busy timeout that ran out, in seconds.

    """

    def __init__(self, operation: str, waited: float) -> None:
        self.operation = operation
        self.waited = waited
        super().__init__(f"the store was busy for {waited:g} s: {operation} was not done; retry it")


class IncompatibleSchema(DefinitionError):
    """A store's schema is one this version of the library cannot use.

    Raised when an adapter opens its store: a file written by a newer version of the library,
    a file that is not a database, or a database whose tables clash with ours. Nothing is
    changed in the file.

    Attributes:
        location: The store (a file path).
        found: The schema version found, ``None`` if there is none.
        supported: The newest schema version this library knows.

    """

    def __init__(self, location: str, found: int | None, supported: int, problem: str) -> None:
        self.location = location
        self.found = found
        self.supported = supported
        super().__init__(f"store {location}", [problem])


# --------------------------------------------------------------------------- collective sales modes


class DeadlinePassed(RuleViolation):
    """The command came at or after a deadline that closes it (a team, a sale, an auction).

    Attributes:
        deadline: The moment that closed it.
        at: When the command came.

    """

    def __init__(
        self, aggregate_id: str, command: str, state: str, deadline: datetime, at: datetime
    ) -> None:
        self.deadline = deadline
        self.at = at
        super().__init__(
            aggregate_id,
            command,
            state,
            f"its deadline {deadline.isoformat()} has passed (now {at.isoformat()})",
        )


class TeamFull(RuleViolation):
    """Every place in a team is taken (paid, or held by a joiner who has not paid yet).

    Attributes:
        team_id: The full team.
        size: Its size.
        open_new_team: What the campaign's policy says to do: ``True`` means the buyer may
            open a new team of their own (by paying as its leader); ``False`` means refuse.

    """

    def __init__(self, team_id: str, size: int, open_new_team: bool) -> None:
        self.team_id = team_id
        self.size = size
        self.open_new_team = open_new_team
        then = "open a new team instead" if open_new_team else "the join is refused"
        super().__init__(team_id, "join", "forming", f"all {size} places are taken; {then}")


class AlreadyJoined(RuleViolation):
    """The buyer already holds a place in this team (their own team included).

    Attributes:
        buyer_id: The buyer.

    """

    def __init__(self, team_id: str, buyer_id: str, reason: str) -> None:
        self.buyer_id = buyer_id
        super().__init__(team_id, "join", "forming", reason)


class BidTooLow(RuleViolation):
    """A bid below the least the auction accepts now (the start price, or leader + increment).

    Attributes:
        minimum: The least amount that would be accepted.
        offered: The amount bid.

    """

    def __init__(self, auction_id: str, minimum: Money, offered: Money) -> None:
        self.minimum = minimum
        self.offered = offered
        super().__init__(auction_id, "bid", "running", f"bid {offered} is below {minimum}")


class AlreadyLeading(RuleViolation):
    """The bidder already leads the auction: nobody outbids themself.

    Attributes:
        bidder_id: The bidder.

    """

    def __init__(self, auction_id: str, bidder_id: str) -> None:
        self.bidder_id = bidder_id
        super().__init__(
            auction_id, "bid", "running", f"{bidder_id!r} already leads; wait to be outbid"
        )


class DepositRequired(RuleViolation):
    """Bidding needs a deposit (保证金) held first.

    Attributes:
        bidder_id: The bidder without a held deposit.
        deposit: The deposit the auction asks for.

    """

    def __init__(self, auction_id: str, bidder_id: str, deposit: Money) -> None:
        self.bidder_id = bidder_id
        self.deposit = deposit
        super().__init__(
            auction_id, "bid", "running", f"{bidder_id!r} must hold a deposit of {deposit} to bid"
        )


class DrawInputsMissing(RuleViolation):
    """A draw was asked for before every input it needs is known; try again later.

    Attributes:
        missing: The names of the inputs that are missing.

    """

    def __init__(self, round_id: str, state: str, missing: Sequence[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(round_id, "draw", state, f"missing draw inputs: {', '.join(self.missing)}")
