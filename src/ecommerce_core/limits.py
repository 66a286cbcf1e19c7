"""Usage limits as reservations: caps on coupon uses, budgets and campaign quotas.

A promotion's limits are *reserved*, not merely checked. Pricing is pure: it reads a snapshot of
what each limit has used and says which :class:`LimitClaim` its result needs. The host's
:class:`~ecommerce_core.ports.PromotionLedger` then reserves those claims atomically when the
order is placed (compare-and-set against the claim's cap), commits them when it is paid, and
releases them, exactly once, when it is abandoned. Each reservation follows the
:data:`PROMOTION_HOLD` process::

    reserved ─commit→ committed
    reserved ─release→ released      (payment timeout, cancellation)
    committed ─release→ released     (a paid order cancelled or refunded, per policy)

Four kinds of limit cover what real platforms offer (Oscar has all four): uses per buyer,
uses overall, money overall (a budget) and units (a flash-sale quota, or a per-buyer limit in
units, never in orders). A limit may also be held only *until the order is paid*: that is how
"a buyer with an unpaid flash order for this item is refused another" is enforced.

Example:
    >>> limit = Limit.uses_per_buyer(1)
    >>> limit.key("welcome", buyer_id="alice")
    'welcome:uses:buyer:alice'
    >>> limit.claim("welcome", buyer_id="alice", uses=1, units=3, discount=500)
    LimitClaim(key='welcome:uses:buyer:alice', amount=1, cap=1, until_paid=False, at_payment=False)

"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from ecommerce_core._validation import to_member
from ecommerce_core.errors import DefinitionError, InvalidInput
from ecommerce_core.money import Money
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "PROMOTION_HOLD",
    "PROMOTION_HOLD_PROCESS",
    "HoldState",
    "Limit",
    "LimitClaim",
    "Measure",
    "StockTiming",
    "check_claims",
]


class Measure(enum.StrEnum):
    """What a limit counts."""

    USES = "uses"
    """Applications: one per order the promotion gives something to."""
    UNITS = "units"
    """Units priced by the promotion (a flash-sale quota, a per-buyer unit limit)."""
    AMOUNT = "amount"
    """Minor units of money given away (a budget)."""


class StockTiming(enum.StrEnum):
    """When an order takes its stock (and its campaign quota): a policy of the sales mode."""

    ON_ORDER = "on_order"
    """Reserved when the order is placed, deducted when it is paid (the default)."""
    ON_PAYMENT = "on_payment"
    """Taken only when the order is paid, so unpaid orders cannot hoard it (rush purchase)."""


class HoldState:
    """Names of the :data:`PROMOTION_HOLD` states (plain strings, as stored)."""

    RESERVED: Final = "reserved"
    COMMITTED: Final = "committed"
    RELEASED: Final = "released"


PROMOTION_HOLD: Final = ProcessDefinition(
    name="promotion.hold",
    initial=HoldState.RESERVED,
    states=(
        State(HoldState.RESERVED, description="held by an order awaiting payment"),
        State(HoldState.COMMITTED, description="used for good: the order was paid"),
        State(HoldState.RELEASED, final=True, description="given back, exactly once"),
    ),
    transitions=(
        Transition("commit", HoldState.RESERVED, HoldState.COMMITTED),
        Transition("release", (HoldState.RESERVED, HoldState.COMMITTED), HoldState.RELEASED),
    ),
)
"""The life of one reservation of limit claims in a promotion ledger."""

PROMOTION_HOLD_PROCESS: Final = Process(PROMOTION_HOLD)
""":data:`PROMOTION_HOLD`, validated and compiled."""


@attrs.frozen
class LimitClaim:
    """What one priced order needs from one limit: reserve ``amount`` under ``key``.

    The ledger refuses the reservation when what ``key`` already holds plus ``amount`` would
    pass ``cap``; the claim carries the cap so the check is one atomic compare-and-set.

    Attributes:
        key: The limit's counter, e.g. ``"welcome:uses:buyer:alice"``.
        amount: How much to take (uses, units or minor units of money), at least 1.
        cap: The most the counter may hold.
        until_paid: Held only while the order is unpaid: committing the order gives it back.
        at_payment: Taken when the order is paid, not when it is placed (rush purchase).

    """

    key: str
    amount: int
    cap: int
    until_paid: bool = False
    at_payment: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise InvalidInput("key", self.key, "must be a non-empty string")
        for name, value, least in (("amount", self.amount, 1), ("cap", self.cap, 0)):
            if type(value) is not int or value < least:
                raise InvalidInput(name, value, f"must be an int of at least {least}")


def check_claims(claims: Iterable[LimitClaim]) -> dict[str, tuple[int, int]]:
    """Sum claims per key, as ``{key: (amount, cap)}``.

    Raises:
        InvalidInput: No claims, something that is not a :class:`LimitClaim`, or one key
            claimed with two different caps.

    """
    totals: dict[str, tuple[int, int]] = {}
    for claim in claims:
        if not isinstance(claim, LimitClaim):
            raise InvalidInput("claims", claim, "each claim must be a LimitClaim")
        amount, cap = totals.get(claim.key, (0, claim.cap))
        if cap != claim.cap:
            raise InvalidInput("claims", claim, f"key {claim.key!r} is claimed with two caps")
        totals[claim.key] = (amount + claim.amount, cap)
    if not totals:
        raise InvalidInput("claims", (), "a reservation needs at least one claim")
    return totals


def _to_measure(value: Measure | str) -> Measure:
    return to_member(Measure, value, "measure", definition="Limit")


@attrs.frozen
class Limit:
    """A cap on how much a promotion may be used, by everyone or by each buyer.

    Build limits with the class methods; they read as the rule they state.

    Attributes:
        measure: What is counted: uses, units or money.
        cap: The most that may be used (minor units for money), at least 1.
        per_buyer: Counted separately for each buyer.
        until_paid: Counted only while orders are unpaid (see :meth:`unpaid_orders_per_buyer`).
        at_payment: Taken when the order is paid rather than when it is placed.
        namespace: The counter's name; empty means the promotion's id. Campaigns share one
            namespace across sessions so a per-buyer limit spans the whole campaign.
        currency: The budget's currency (money limits only).

    Raises:
        DefinitionError: A cap below 1, a budget without a currency, a currency on a count.

    """

    measure: Measure = attrs.field(converter=_to_measure)
    cap: int
    per_buyer: bool = False
    until_paid: bool = False
    at_payment: bool = False
    namespace: str = ""
    currency: str = ""

    def __attrs_post_init__(self) -> None:
        problems = []
        if type(self.cap) is not int or self.cap < 1:
            problems.append(f"the cap must be an int of at least 1, got {self.cap!r}")
        if (self.measure is Measure.AMOUNT) != bool(self.currency):
            problems.append("a money limit needs a currency, and only a money limit has one")
        if self.until_paid and self.at_payment:
            problems.append("a limit held until payment cannot also be taken at payment")
        if problems:
            raise DefinitionError(f"Limit {self.measure.value}", problems)

    # ------------------------------------------------------------------ the rules

    @classmethod
    def uses(cls, cap: int) -> Limit:
        """At most ``cap`` orders, by anyone, get the promotion (a global count)."""
        return cls(Measure.USES, cap)

    @classmethod
    def uses_per_buyer(cls, cap: int) -> Limit:
        """Each buyer gets the promotion on at most ``cap`` orders."""
        return cls(Measure.USES, cap, per_buyer=True)

    @classmethod
    def budget(cls, amount: Money) -> Limit:
        """At most ``amount`` is given away in total; the last order gets what is left."""
        if not isinstance(amount, Money):
            raise DefinitionError("Limit amount", [f"a budget must be Money, got {amount!r}"])
        return cls(Measure.AMOUNT, amount.minor, currency=amount.currency)

    @classmethod
    def units(cls, cap: int, *, at_payment: bool = False, namespace: str = "") -> Limit:
        """At most ``cap`` units are sold at the promotion's price (a campaign quota)."""
        return cls(Measure.UNITS, cap, at_payment=at_payment, namespace=namespace)

    @classmethod
    def units_per_buyer(cls, cap: int, *, at_payment: bool = False, namespace: str = "") -> Limit:
        """Each buyer gets at most ``cap`` units at the promotion's price (units, not orders)."""
        return cls(Measure.UNITS, cap, per_buyer=True, at_payment=at_payment, namespace=namespace)

    @classmethod
    def unpaid_orders_per_buyer(cls, cap: int = 1, *, namespace: str = "") -> Limit:
        """A buyer may hold at most ``cap`` unpaid orders with the promotion at a time."""
        return cls(Measure.USES, cap, per_buyer=True, until_paid=True, namespace=namespace)

    # ------------------------------------------------------------------ counters

    @property
    def budget_amount(self) -> Money | None:
        """The budget as money, for a money limit; ``None`` otherwise."""
        return Money(self.cap, self.currency) if self.measure is Measure.AMOUNT else None

    def key(self, promotion_id: str, *, buyer_id: str = "") -> str:
        """The counter this limit uses for ``promotion_id`` (and ``buyer_id`` if per buyer)."""
        parts = [self.namespace or promotion_id, self.measure.value]
        if self.measure is Measure.AMOUNT:
            parts.append(self.currency)
        if self.per_buyer:
            parts.extend(("buyer", buyer_id))
        if self.until_paid:
            parts.append("unpaid")
        return ":".join(parts)

    def needs(self, *, uses: int, units: int, discount: int) -> int:
        """How much of this limit one application takes, given what it gave."""
        if self.measure is Measure.USES:
            return uses
        if self.measure is Measure.UNITS:
            return units
        return discount

    def claim(
        self, promotion_id: str, *, buyer_id: str, uses: int, units: int, discount: int
    ) -> LimitClaim:
        """The claim one application makes on this limit."""
        return LimitClaim(
            self.key(promotion_id, buyer_id=buyer_id),
            self.needs(uses=uses, units=units, discount=discount),
            self.cap,
            until_paid=self.until_paid,
            at_payment=self.at_payment,
        )

    def remaining(self, promotion_id: str, buyer_id: str, usage: Mapping[str, int]) -> int:
        """What is left of this limit, by the usage snapshot (never below zero)."""
        return max(0, self.cap - usage.get(self.key(promotion_id, buyer_id=buyer_id), 0))

    def describe(self) -> str:
        """The rule in words, e.g. ``"at most 2 units per buyer"``."""
        if self.measure is Measure.AMOUNT:
            return f"a budget of {self.budget_amount}"
        what = "orders" if self.measure is Measure.USES else "units"
        if self.until_paid:
            return f"at most {self.cap} unpaid {what} per buyer at a time"
        who = " per buyer" if self.per_buyer else " in total"
        return f"at most {self.cap} {what}{who}"
