"""Group buying (团购): the more people buy, the lower the price, fixed when the campaign closes.

A :class:`GroupBuy` runs for a window with a ladder of :class:`PriceTier` s keyed by the total
quantity bought or by the number of participants (:class:`TierMeasure`); the price is that of
the highest tier met. Its process::

    running 进行中 ─expire (window over, minimum met) / join (reaches the cap)→ succeeded 成功
            └─────expire (minimum missed) / cancel───────────────────────────→ failed 失败

- Buyers pay, per :class:`GroupBuyPayment`, the current tier's price (the tier met *with*
  their own purchase) or a deposit per unit.
- An optional cap (``≥`` the top tier's threshold) ends the campaign the moment it is reached.
- When it succeeds the final tier is fixed and :class:`Settlement` says, per order, what was
  paid, what the order finally costs, and the difference: a refund (paid the tier price) or
  the balance due (paid a deposit). A buyer never pays more than they paid when they joined at
  the tier price, even if others withdrew. ``paid + balance due - refund = final`` on every line.
- When it misses its minimum (or is cancelled), every participant's order is refunded and
  gives back what it holds (:class:`~ecommerce_core.releases.Release`), exactly once.

Participants' orders follow ``order.group_buy`` (paid the tier price) or
``order.group_buy_deposit`` (paid a deposit): they wait in ``awaiting_group`` until it closes.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from ecommerce_core.actors import Actor
    >>> from ecommerce_core.money import Money
    >>> yuan = lambda s: Money.of(s, "CNY")
    >>> now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    >>> terms = GroupBuyTerms(
    ...     list_price=yuan("100.00"),
    ...     tiers=[PriceTier(10, yuan("90.00")), PriceTier(50, yuan("80.00"))],
    ...     starts_at=now, ends_at=now + timedelta(days=3), minimum=10,
    ... )
    >>> campaign = GroupBuy.create(Actor.merchant("m-1"), campaign_id="gb-1",
    ...                            merchant_id="m-1", sku="tea", terms=terms, now=now)
    >>> str(campaign.quote("alice", 10))
    '900.00 CNY'

"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._aggregate import (
    EventRecorder,
    authorize,
    check_creation,
    check_now,
    money,
    positive_count,
    text,
)
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    DeadlinePassed,
    DefinitionError,
    InvalidInput,
    NotFound,
    OutOfStock,
    RuleViolation,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, OrderState
from ecommerce_core.process import Guard, Process, ProcessDefinition, State, Transition
from ecommerce_core.releases import Release, releases_for_order

__all__ = [
    "GROUP_BUY",
    "GROUP_BUY_DEPOSIT_ORDER",
    "GROUP_BUY_DEPOSIT_ORDER_PROCESS",
    "GROUP_BUY_ORDER",
    "GROUP_BUY_ORDER_PROCESS",
    "GROUP_BUY_PROCESS",
    "BalancesClosed",
    "GroupBuy",
    "GroupBuyCancelled",
    "GroupBuyCreated",
    "GroupBuyFailed",
    "GroupBuyJoined",
    "GroupBuyPayment",
    "GroupBuyRefundDeclined",
    "GroupBuyRefundKeyed",
    "GroupBuyRefundPending",
    "GroupBuyRefundSettled",
    "GroupBuyState",
    "GroupBuySucceeded",
    "GroupBuyTerms",
    "GroupBuyWithdrawn",
    "Participation",
    "ParticipationStatus",
    "PriceTier",
    "Settlement",
    "SettlementLine",
    "TierMeasure",
    "UnpaidBalance",
]


class TierMeasure(enum.StrEnum):
    """What the tiers count."""

    QUANTITY = "quantity"
    """Units bought by everyone together."""
    PARTICIPANTS = "participants"
    """Distinct buyers taking part."""


class GroupBuyPayment(enum.StrEnum):
    """What a buyer pays when joining."""

    CURRENT_TIER = "current_tier"
    """The price of the tier met with their purchase; any difference is refunded at close."""
    DEPOSIT = "deposit"
    """A deposit per unit; the balance to the final price is due at close."""


class UnpaidBalance(enum.StrEnum):
    """What happens to a deposit whose balance is not paid by its deadline.

    The default is :attr:`REFUND` (a refundable 订金): keeping the buyer's money is a rule the
    merchant must state, so it is never the default.
    """

    REFUND = "refund"
    """The deposit goes back to the buyer (订金)."""
    FORFEIT = "forfeit"
    """The deposit is kept by the merchant (定金, ECShop/Tmall presale style)."""


_DEFAULT_BALANCE_WINDOW: Final = timedelta(hours=48)


@attrs.frozen
class PriceTier:
    """One rung of the ladder: from ``threshold`` on, a unit costs ``unit_price``.

    Attributes:
        threshold: Units (or participants) needed, at least 1.
        unit_price: The unit price from there on.

    """

    threshold: int
    unit_price: Money

    def __attrs_post_init__(self) -> None:
        positive_count("threshold", self.threshold)
        if not isinstance(self.unit_price, Money) or not self.unit_price.is_positive:
            raise InvalidInput("unit_price", self.unit_price, "must be positive Money")


def _tiers(value: Iterable[object]) -> tuple[PriceTier, ...]:
    tiers = tuple(value)
    bad = [f"{tier!r} is not a PriceTier" for tier in tiers if not isinstance(tier, PriceTier)]
    if bad:
        raise DefinitionError("GroupBuyTerms", bad)
    return tuple(tier for tier in tiers if isinstance(tier, PriceTier))


@attrs.frozen
class GroupBuyTerms:
    """A group buy's rules.

    Attributes:
        list_price: The unit price while no tier is met.
        tiers: The ladder, thresholds strictly rising, prices never rising, all at most the
            list price.
        starts_at: When buyers may start joining.
        ends_at: When the window closes and the final tier is fixed.
        minimum: The measure needed to succeed (at least 1).
        measure: What the thresholds, the minimum and the cap count.
        cap: Optional: the measure at which the campaign ends at once (at least the top
            tier's threshold and the minimum).
        payment: What a buyer pays when joining.
        deposit: The deposit per unit, with :attr:`GroupBuyPayment.DEPOSIT` only; at most the
            lowest unit price, so the balance is never negative.
        balance_window: With the deposit policy: how long after a successful close the balance
            may be paid (default 48 hours); the deadline is stored on the :class:`Settlement`.
        unpaid_balance: With the deposit policy: what happens to the deposit of an order
            whose balance is not paid in time (default :attr:`UnpaidBalance.REFUND`).

    Raises:
        DefinitionError: Every problem with the terms, listed.

    """

    list_price: Money
    tiers: tuple[PriceTier, ...] = attrs.field(converter=_tiers)
    starts_at: datetime
    ends_at: datetime
    minimum: int
    measure: TierMeasure = attrs.field(default=TierMeasure.QUANTITY, converter=TierMeasure)
    cap: int | None = None
    payment: GroupBuyPayment = attrs.field(
        default=GroupBuyPayment.CURRENT_TIER, converter=GroupBuyPayment
    )
    deposit: Money | None = None
    balance_window: timedelta = _DEFAULT_BALANCE_WINDOW
    unpaid_balance: UnpaidBalance = attrs.field(
        default=UnpaidBalance.REFUND, converter=UnpaidBalance
    )

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.balance_window, timedelta) or self.balance_window <= timedelta(0):
            problems.append(
                f"balance_window must be a positive timedelta, got {self.balance_window!r}"
            )
        if not isinstance(self.list_price, Money) or not self.list_price.is_positive:
            raise DefinitionError("GroupBuyTerms", ["list_price must be positive Money"])
        currency = self.list_price.currency
        if not self.tiers:
            problems.append("at least one tier is needed")
        previous: PriceTier | None = None
        for tier in self.tiers:
            if tier.unit_price.currency != currency or tier.unit_price > self.list_price:
                problems.append(
                    f"tier price {tier.unit_price} must be in {currency}, <= list price"
                )
            elif previous is not None and (
                tier.threshold <= previous.threshold or tier.unit_price > previous.unit_price
            ):
                problems.append("thresholds must rise and prices must not rise, tier by tier")
            previous = tier
        for name in ("starts_at", "ends_at"):
            when = getattr(self, name)
            if not isinstance(when, datetime) or when.utcoffset() is None:
                problems.append(f"{name} must be a timezone-aware datetime")
        if not problems and self.ends_at <= self.starts_at:
            problems.append("ends_at must come after starts_at")
        if type(self.minimum) is not int or self.minimum < 1:
            problems.append(f"minimum must be a whole number >= 1, got {self.minimum!r}")
        if self.cap is not None:
            top = max((t.threshold for t in self.tiers), default=0)
            minimum = self.minimum if type(self.minimum) is int else 1
            if type(self.cap) is not int or self.cap < max(top, minimum, 1):
                problems.append(
                    f"cap {self.cap!r} must be at least the top tier's threshold and the minimum"
                )
        if self.payment is GroupBuyPayment.DEPOSIT:
            lowest = min(
                [t.unit_price.minor for t in self.tiers if t.unit_price.currency == currency],
                default=self.list_price.minor,
            )
            if not isinstance(self.deposit, Money) or self.deposit.currency != currency:
                problems.append(f"the deposit policy needs a deposit in {currency}")
            elif not self.deposit.is_positive or self.deposit.minor > lowest:
                problems.append(
                    f"deposit {self.deposit} must be positive and at most the lowest unit price"
                )
        elif self.deposit is not None:
            problems.append("a deposit is only taken with GroupBuyPayment.DEPOSIT")
        if problems:
            raise DefinitionError("GroupBuyTerms", problems)

    @property
    def currency(self) -> str:
        """The campaign's currency."""
        return self.list_price.currency

    def tier_at(self, level: int) -> PriceTier | None:
        """The highest tier whose threshold ``level`` meets, or ``None``."""
        met = None
        for tier in self.tiers:
            if tier.threshold <= level:
                met = tier
        return met

    def unit_price_at(self, level: int) -> Money:
        """The unit price at ``level``: the highest tier met's, else the list price."""
        tier = self.tier_at(level)
        return self.list_price if tier is None else tier.unit_price


class ParticipationStatus(enum.StrEnum):
    """Whether a participation still counts."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


@attrs.frozen
class Participation:
    """One paid order in a group buy.

    Attributes:
        order_id: The order.
        buyer_id: Its buyer.
        quantity: Units.
        paid: What was paid when joining (the tier price, or the deposit).
        payment_ref: That payment: refunds go against it.
        joined_at: When.
        status: Active, or withdrawn (refunded before the close).

    """

    order_id: str
    buyer_id: str
    quantity: int
    paid: Money
    payment_ref: str
    joined_at: datetime
    status: ParticipationStatus = ParticipationStatus.ACTIVE


@attrs.frozen
class SettlementLine:
    """What one order owes or gets back once the final tier is fixed.

    ``paid + balance_due - refund == final_amount``, and at most one of ``refund`` and
    ``balance_due`` is positive.

    Attributes:
        order_id: The order.
        buyer_id: Its buyer.
        quantity: Units.
        paid: What was paid when joining.
        final_amount: What the order finally costs.
        refund: What goes back to the buyer (paid the tier price; the price fell).
        balance_due: What the buyer still owes (paid a deposit).

    """

    order_id: str
    buyer_id: str
    quantity: int
    paid: Money
    final_amount: Money
    refund: Money
    balance_due: Money


@attrs.frozen
class Settlement:
    """The outcome of a successful group buy.

    Attributes:
        level: The measure reached (units or participants).
        tier: The final tier, or ``None`` if none was met (the list price applies).
        unit_price: The final unit price.
        lines: One line per active order, in the order they joined.
        balance_due_at: With the deposit policy: the deadline for paying the balances
            (the close plus :attr:`GroupBuyTerms.balance_window`); ``None`` otherwise.

    """

    level: int
    tier: PriceTier | None
    unit_price: Money
    lines: tuple[SettlementLine, ...]
    balance_due_at: datetime | None = None

    def total(self, field: str) -> Money:
        """The sum of one money column (``"paid"``, ``"refund"``, ...) over the lines."""
        return sum(
            (getattr(line, field) for line in self.lines), Money.zero(self.unit_price.currency)
        )


class GroupBuyState:
    """Names of the group-buy states."""

    RUNNING: Final = "running"
    SUCCEEDED: Final = "succeeded"
    FAILED: Final = "failed"


def _reaches_cap(campaign: GroupBuy, level_after: object) -> str | None:
    cap = campaign.terms.cap
    if cap is not None and isinstance(level_after, int) and level_after >= cap:
        return None
    return f"the cap {cap} is not reached"


def _minimum_met(campaign: GroupBuy, _context: object) -> str | None:
    level, minimum = campaign.level, campaign.terms.minimum
    return None if level >= minimum else f"{level} of the minimum {minimum} reached"


GROUP_BUY_GUARDS: Final[Mapping[str, Guard]] = MappingProxyType(
    {"reaches_cap": _reaches_cap, "minimum_met": _minimum_met}
)

_G = GroupBuyState
GROUP_BUY: Final = ProcessDefinition(
    name="group_buy",
    initial=_G.RUNNING,
    states=(
        State(_G.RUNNING, description="进行中 buyers join; the price follows the tiers"),
        State(_G.SUCCEEDED, final=True, description="成功 final tier fixed; differences settled"),
        State(_G.FAILED, final=True, description="失败 minimum missed or cancelled; all refunded"),
    ),
    transitions=(
        Transition("join", _G.RUNNING, _G.SUCCEEDED, guards="reaches_cap"),
        Transition("join", _G.RUNNING, _G.RUNNING),
        Transition("withdraw", _G.RUNNING, _G.RUNNING),
        Transition("close", _G.RUNNING, _G.SUCCEEDED, guards="minimum_met"),
        Transition("close", _G.RUNNING, _G.FAILED),
        Transition("cancel", _G.RUNNING, _G.FAILED),
    ),
)
"""The group-buy process (团购)."""

GROUP_BUY_PROCESS: Final = Process(GROUP_BUY, GROUP_BUY_GUARDS)
""":data:`GROUP_BUY`, validated and compiled."""

AWAITING_GROUP: Final = "awaiting_group"
AWAITING_BALANCE: Final = "awaiting_balance"
_O = OrderState
_WAITING = State(AWAITING_GROUP, description="待成团 paid; waits for the group buy to close")
GROUP_BUY_ORDER: Final = STANDARD_ORDER.extend(
    "order.group_buy",
    states=[_WAITING],
    transitions=[
        Transition("pay", _O.PENDING_PAYMENT, AWAITING_GROUP, guards="payment_covers_total"),
        Transition("group_succeeded", AWAITING_GROUP, _O.AWAITING_SHIPMENT),
        Transition("group_failed", (_O.PENDING_PAYMENT, AWAITING_GROUP), _O.CANCELLED),
        Transition("cancel", AWAITING_GROUP, _O.CANCELLED),
    ],
    remove_transitions=[("pay", _O.PENDING_PAYMENT)],
)
"""A group-buy order paid at the tier price: ``pay → awaiting_group → group_succeeded →
awaiting_shipment`` (the difference refunded), or ``group_failed → cancelled``."""

GROUP_BUY_ORDER_PROCESS: Final = Process(GROUP_BUY_ORDER, ORDER_GUARDS)
""":data:`GROUP_BUY_ORDER`, validated and compiled."""

GROUP_BUY_DEPOSIT_ORDER: Final = STANDARD_ORDER.extend(
    "order.group_buy_deposit",
    states=[
        _WAITING,
        State(AWAITING_BALANCE, description="待付尾款 the group buy succeeded; balance due"),
    ],
    transitions=[
        Transition("pay_deposit", _O.PENDING_PAYMENT, AWAITING_GROUP),
        Transition("group_succeeded", AWAITING_GROUP, AWAITING_BALANCE),
        Transition("pay_balance", AWAITING_BALANCE, _O.AWAITING_SHIPMENT),
        Transition("expire_balance", AWAITING_BALANCE, _O.CANCELLED),
        Transition("group_failed", (_O.PENDING_PAYMENT, AWAITING_GROUP), _O.CANCELLED),
        Transition("cancel", AWAITING_GROUP, _O.CANCELLED),
    ],
    remove_transitions=[("pay", _O.PENDING_PAYMENT)],
)
"""A group-buy order paid by deposit: ``pay_deposit → awaiting_group → group_succeeded →
awaiting_balance → pay_balance → awaiting_shipment``; ``group_failed → cancelled``."""

GROUP_BUY_DEPOSIT_ORDER_PROCESS: Final = Process(GROUP_BUY_DEPOSIT_ORDER, ORDER_GUARDS)
""":data:`GROUP_BUY_DEPOSIT_ORDER`, validated and compiled."""


# --------------------------------------------------------------------------- events


@attrs.frozen(kw_only=True)
class GroupBuyCreated(DomainEvent):
    """A group buy was set up.

    Attributes:
        merchant_id: The merchant.
        sku: What it sells.
        terms: Its rules.

    """

    merchant_id: str
    sku: str
    terms: GroupBuyTerms


@attrs.frozen(kw_only=True)
class GroupBuyJoined(DomainEvent):
    """A paid order joined.

    Attributes:
        participation: The order's participation.
        level: The measure reached with it.

    """

    participation: Participation
    level: int


@attrs.frozen(kw_only=True)
class GroupBuyWithdrawn(DomainEvent):
    """An order left before the close (it was cancelled) and is refunded.

    Attributes:
        order_id: The order.
        releases: What it gives back.

    """

    order_id: str
    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class GroupBuySucceeded(DomainEvent):
    """The group buy succeeded; the final tier is fixed.

    Attributes:
        settlement: Per order: paid, final amount, refund or balance due.

    """

    settlement: Settlement


@attrs.frozen(kw_only=True)
class BalancesClosed(DomainEvent):
    """The balance deadline of a deposit group buy passed: unpaid balances are over.

    Attributes:
        balance_due_at: The deadline.

    """

    balance_due_at: datetime


@attrs.frozen(kw_only=True)
class GroupBuyRefundDeclined(DomainEvent):
    """The provider declined a refund of a deposit order's money: the next try takes a new key.

    Attributes:
        order_id: The order whose refund was declined.
        request_key: The idempotency key the provider declined.

    """

    order_id: str
    request_key: str


@attrs.frozen(kw_only=True)
class GroupBuyRefundPending(DomainEvent):
    """The provider left a refund of a deposit order's money pending: it counts until settled.

    Attributes:
        order_id: The order whose refund is pending.
        request_key: The idempotency key it was asked under.
        payment_id: The charge it comes from.
        amount: How much it gives back.

    """

    order_id: str
    request_key: str
    payment_id: str
    amount: Money


@attrs.frozen(kw_only=True)
class GroupBuyRefundSettled(DomainEvent):
    """The provider's callback settled a pending refund (refunded or failed).

    Attributes:
        order_id: The order whose refund was pending.
        request_key: The idempotency key it was asked under.

    """

    order_id: str
    request_key: str


@attrs.frozen(kw_only=True)
class GroupBuyRefundKeyed(DomainEvent):
    """A caller's refund key was first used on a deposit order, for this total.

    Attributes:
        order_id: The order refunded.
        key: The caller's key.
        total: The total asked under it (a repeat must ask the same).

    """

    order_id: str
    key: str
    total: Money


@attrs.frozen(kw_only=True)
class GroupBuyFailed(DomainEvent):
    """The group buy missed its minimum: every order is refunded.

    Attributes:
        releases: What the orders give back.

    """

    releases: tuple[Release, ...]


@attrs.frozen(kw_only=True)
class GroupBuyCancelled(DomainEvent):
    """The merchant or platform cancelled the group buy: every order is refunded.

    Attributes:
        reason: Why.
        releases: What the orders give back.

    """

    reason: str
    releases: tuple[Release, ...]


# --------------------------------------------------------------------------- aggregate

_SYSTEM: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})


@attrs.define(eq=False)
class GroupBuy(EventRecorder):
    """A group-buy campaign for one SKU.

    Create one with :meth:`create`; then :meth:`quote`, :meth:`join`, :meth:`withdraw`,
    :meth:`expire` (at the end of the window) and :meth:`cancel`.

    Attributes:
        id: The campaign id.
        merchant_id: The merchant.
        sku: What it sells.
        terms: Its rules.
        state: ``running``, ``succeeded`` or ``failed``.
        participations: Every order that joined, in order (withdrawn ones included).
        settlement: The outcome, once succeeded.
        releases: What its failure produced, once failed.
        version: Raised by one per event.
        events: Events since the last :meth:`collect_events`.
        balances_closed: With the deposit policy: the balance deadline has been acted on
            (:meth:`close_balances`).
        declined_refunds: The idempotency keys under which the provider declined a refund of
            a deposit order's money (:meth:`note_declined_refund`); a retry asks under another.
        pending_refunds: ``(request key, charge payment id, amount)`` of each refund of a
            deposit order's money the provider left pending (:meth:`note_pending_refund`),
            until its callback settles it (:meth:`settle_pending_refund`).
        refund_keys: ``(order id, key, total)`` of each caller's refund key used on a deposit
            order (:meth:`note_refund_key`): a repeat must ask the same total.

    """

    id: str
    merchant_id: str
    sku: str
    terms: GroupBuyTerms
    state: str = _G.RUNNING
    participations: list[Participation] = attrs.field(factory=list)
    settlement: Settlement | None = None
    releases: tuple[Release, ...] = ()
    version: int = 0
    events: tuple[DomainEvent, ...] = ()
    balances_closed: bool = False
    declined_refunds: tuple[str, ...] = ()
    pending_refunds: tuple[tuple[str, str, Money], ...] = ()
    refund_keys: tuple[tuple[str, str, Money], ...] = ()
    # Kept in step with the active participations, so a join costs O(1), not O(orders).
    _units: int = attrs.field(default=0, init=False, repr=False)
    _orders_per_buyer: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _index: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        """Rebuild the counters from the stored participations (a campaign read back)."""
        for index, participation in enumerate(self.participations):
            self._index[participation.order_id] = index
            if participation.status is ParticipationStatus.ACTIVE:
                self._count(participation, 1)

    @classmethod
    def create(
        cls,
        actor: Actor,
        *,
        campaign_id: str,
        merchant_id: str,
        sku: str,
        terms: GroupBuyTerms,
        now: datetime,
    ) -> GroupBuy:
        """Set up a group buy (by its merchant or the platform).

        Raises:
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: Blank ids, or terms that are not :class:`GroupBuyTerms`.

        """
        check_creation(
            actor,
            now,
            ids={"campaign_id": campaign_id, "merchant_id": merchant_id, "sku": sku},
            merchant_id=merchant_id,
            terms=terms,
            terms_type=GroupBuyTerms,
        )
        campaign = cls(id=campaign_id, merchant_id=merchant_id, sku=sku, terms=terms)
        campaign._record(GroupBuyCreated, now, actor, merchant_id=merchant_id, sku=sku, terms=terms)
        return campaign

    # ----------------------------------------------------------------- reading

    def active(self) -> list[Participation]:
        """The participations that still count, in the order they joined."""
        return [p for p in self.participations if p.status is ParticipationStatus.ACTIVE]

    @property
    def level(self) -> int:
        """The measure reached now: units bought, or distinct participants."""
        if self.terms.measure is TierMeasure.QUANTITY:
            return self._units
        return len(self._orders_per_buyer)

    @property
    def current_tier(self) -> PriceTier | None:
        """The highest tier met now."""
        return self.terms.tier_at(self.level)

    @property
    def is_final(self) -> bool:
        """Whether the campaign succeeded or failed."""
        return GROUP_BUY_PROCESS.is_final(self.state)

    @property
    def due_at(self) -> datetime | None:
        """When :meth:`expire` (or :meth:`close_balances`) next has something to do.

        The end of the window while running; with the deposit policy, after a success, the
        balance deadline until :meth:`close_balances`; otherwise ``None``.
        """
        if self.state == _G.RUNNING:
            return self.terms.ends_at
        settlement = self.settlement
        if settlement is not None and not self.balances_closed:
            return settlement.balance_due_at
        return None

    def level_after(self, buyer_id: str, quantity: int) -> int:
        """The measure if ``buyer_id`` joined now with ``quantity`` units."""
        if self.terms.measure is TierMeasure.QUANTITY:
            return self._units + quantity
        return self.level + (0 if buyer_id in self._orders_per_buyer else 1)

    def quote(self, buyer_id: str, quantity: int) -> Money:
        """What ``buyer_id`` pays now to join with ``quantity`` units.

        The tier price is the one met *with* this purchase; under the deposit policy it is the
        deposit per unit.

        Raises:
            InvalidInput: A quantity that is not a whole number of at least 1.

        """
        positive_count("quantity", quantity)
        if self.terms.payment is GroupBuyPayment.DEPOSIT:
            assert self.terms.deposit is not None  # noqa: S101  # checked by the terms
            return self.terms.deposit * quantity
        return self.terms.unit_price_at(self.level_after(buyer_id, quantity)) * quantity

    # ----------------------------------------------------------------- commands

    def join(
        self,
        actor: Actor,
        *,
        order_id: str,
        quantity: int,
        paid: Money,
        payment_ref: str,
        now: datetime,
    ) -> str:
        """A buyer's paid order joins.

        At the tier price, ``paid`` must be at least :meth:`quote` (a buyer who quoted before
        others joined pays more; the difference comes back at the close) and at most the list
        price. Under the deposit policy it must be the deposit exactly.

        Returns:
            The state afterwards: ``"succeeded"`` if this join reached the cap.

        Raises:
            Forbidden: The actor is not a buyer.
            InvalidInput: A blank id, an order already joined, a bad quantity, or a payment
                that does not match the quote.
            CurrencyMismatch: Paid in another currency.
            RuleViolation: The window has not opened yet.
            DeadlinePassed: The window has closed.
            TransitionNotAllowed: The campaign already succeeded or failed.
            OutOfStock: Joining would pass the cap (``available`` says what is left).

        """
        authorize(actor, {ActorKind.BUYER}, "join", self.id)
        check_now(now)
        text("order_id", order_id)
        text("payment_ref", payment_ref)
        positive_count("quantity", quantity)
        money("paid", paid, self.terms.currency, positive=True)
        if order_id in self._index:
            raise InvalidInput("order_id", order_id, "this order already joined")
        self._check_window("join", now)
        level_after = self.level_after(actor.id, quantity)
        dest = GROUP_BUY_PROCESS.fire(self.state, "join", self, level_after, subject_id=self.id)
        cap = self.terms.cap
        if cap is not None and level_after > cap:
            left = cap - self.level
            raise OutOfStock(self.id, level_after - self.level, left, "join")
        quote = self.quote(actor.id, quantity)
        if self.terms.payment is GroupBuyPayment.DEPOSIT:
            if paid != quote:
                raise InvalidInput("paid", paid, f"the deposit for {quantity} is {quote}")
        elif not quote <= paid <= self.terms.list_price * quantity:
            raise InvalidInput(
                "paid", paid, f"must be from {quote} (tier price) to the list price amount"
            )
        joined = Participation(order_id, actor.id, quantity, paid, payment_ref, now)
        self._index[order_id] = len(self.participations)
        self.participations.append(joined)
        self._count(joined, 1)
        self._record(GroupBuyJoined, now, actor, participation=joined, level=level_after)
        if dest == _G.SUCCEEDED:
            self._succeed(now, actor)
        self.state = dest
        return dest

    def withdraw(self, actor: Actor, *, order_id: str, now: datetime) -> tuple[Release, ...]:
        """An order leaves before the close (its buyer cancelled it): it is refunded.

        Returns:
            What the order gives back: its stock, quota, coupon uses, rebate and its payment.

        Raises:
            Forbidden: Another buyer's order, or a merchant or carrier.
            NotFound: The order never joined.
            RuleViolation: It already withdrew.
            DeadlinePassed: The window has closed (the final tier is being fixed).
            TransitionNotAllowed: The campaign already succeeded or failed.

        """
        authorize(actor, {ActorKind.BUYER, *_SYSTEM}, "withdraw", self.id)
        check_now(now)
        index, joined = self._find(order_id)
        if actor.kind is ActorKind.BUYER:
            authorize(actor, {ActorKind.BUYER}, "withdraw", self.id, buyer_id=joined.buyer_id)
        if joined.status is ParticipationStatus.WITHDRAWN:
            raise RuleViolation(self.id, "withdraw", self.state, f"{order_id!r} already withdrew")
        dest = GROUP_BUY_PROCESS.fire(self.state, "withdraw", self, subject_id=self.id)
        if now >= self.terms.ends_at:
            raise DeadlinePassed(self.id, "withdraw", self.state, self.terms.ends_at, now)
        releases = self._releases([joined])
        self.participations[index] = attrs.evolve(joined, status=ParticipationStatus.WITHDRAWN)
        self._count(joined, -1)
        self.state = dest
        self._record(GroupBuyWithdrawn, now, actor, order_id=order_id, releases=releases)
        return releases

    def expire(self, now: datetime, actor: Actor | None = None) -> tuple[Release, ...] | None:
        """Close the campaign once its window is over: it succeeds or fails.

        Idempotent: before the end, or once closed, nothing happens and ``None`` is returned.

        Returns:
            ``()`` when it succeeded (see :attr:`settlement`), what every order gives back when
            it failed, or ``None`` if nothing was due.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, "expire", self.id)
        check_now(now)
        if self.state != _G.RUNNING or now < self.terms.ends_at:
            return None
        at = self.terms.ends_at
        dest = GROUP_BUY_PROCESS.fire(self.state, "close", self, subject_id=self.id)
        if dest == _G.SUCCEEDED:
            self._succeed(at, actor)
            self.state = dest
            return ()
        releases = self._releases(self.active())
        self.state, self.releases = dest, releases
        self._record(GroupBuyFailed, at, actor, releases=releases)
        return releases

    def cancel(self, actor: Actor, *, reason: str, now: datetime) -> tuple[Release, ...]:
        """The merchant or platform calls the campaign off: every order is refunded.

        Returns:
            What every active order gives back.

        Raises:
            Forbidden: Another merchant, a buyer, a carrier or the system.
            InvalidInput: A blank reason.
            TransitionNotAllowed: The campaign already succeeded or failed.

        """
        authorize(
            actor,
            {ActorKind.MERCHANT, ActorKind.PLATFORM},
            "cancel",
            self.id,
            merchant_id=self.merchant_id,
        )
        check_now(now)
        text("reason", reason, 500)
        dest = GROUP_BUY_PROCESS.fire(self.state, "cancel", self, subject_id=self.id)
        releases = self._releases(self.active())
        self.state, self.releases = dest, releases
        self._record(GroupBuyCancelled, now, actor, reason=reason, releases=releases)
        return releases

    def close_balances(self, now: datetime, actor: Actor | None = None) -> bool:
        """Mark the balance deadline of a succeeded deposit campaign as acted on.

        The service calls it once it has expired every order whose balance is unpaid (their
        deposits forfeited or refunded per :attr:`GroupBuyTerms.unpaid_balance`).
        Idempotent: before the deadline, once closed, or without a deadline, nothing happens.

        Returns:
            Whether it closed now.

        Raises:
            Forbidden: The actor is not the system or the platform.

        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, "close_balances", self.id)
        check_now(now)
        settlement = self.settlement
        if self.balances_closed or settlement is None or settlement.balance_due_at is None:
            return False
        if now < settlement.balance_due_at:
            return False
        self.balances_closed = True
        self._record(BalancesClosed, now, actor, balance_due_at=settlement.balance_due_at)
        return True

    def note_declined_refund(
        self, *, order_id: str, request_key: str, now: datetime, actor: Actor | None = None
    ) -> bool:
        """Remember that the provider declined a refund asked under ``request_key``.

        A deposit order's money has no payment record: the campaign keeps the keys the provider
        declined, so the next try of that refund asks under a fresh key (the provider answers
        a key it declined with the same decline). Noting a key again changes nothing.

        Returns:
            Whether it was noted now.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A blank key; an order that never joined.

        """
        actor = self._refund_note_actor(
            "note_declined_refund", actor, now, "request_key", request_key
        )
        self._ensure_joined(order_id)
        if request_key in self.declined_refunds:
            return False
        self.declined_refunds = (*self.declined_refunds, request_key)
        self._record(GroupBuyRefundDeclined, now, actor, order_id=order_id, request_key=request_key)
        return True

    def note_pending_refund(
        self,
        *,
        order_id: str,
        request_key: str,
        payment_id: str,
        amount: Money,
        now: datetime,
        actor: Actor | None = None,
    ) -> bool:
        """Remember a refund the provider left pending: it counts against its charge meanwhile.

        Noting a key again changes nothing.

        Returns:
            Whether it was noted now.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A blank key or payment id; an order that never joined; an amount
                that is not positive.
            CurrencyMismatch: Another currency than the campaign's.

        """
        actor = self._refund_note_actor(
            "note_pending_refund", actor, now, "request_key", request_key
        )
        text("payment_id", payment_id, max_length=1000)
        money("amount", amount, self.terms.currency, positive=True)
        self._ensure_joined(order_id)
        if any(entry[0] == request_key for entry in self.pending_refunds):
            return False
        self.pending_refunds = (*self.pending_refunds, (request_key, payment_id, amount))
        self._record(
            GroupBuyRefundPending,
            now,
            actor,
            order_id=order_id,
            request_key=request_key,
            payment_id=payment_id,
            amount=amount,
        )
        return True

    def settle_pending_refund(
        self, *, order_id: str, request_key: str, now: datetime, actor: Actor | None = None
    ) -> bool:
        """Forget a pending refund once the provider's callback settled it.

        Settling a key not pending (never, or already settled) changes nothing.

        Returns:
            Whether it was pending until now.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A blank key; an order that never joined.

        """
        actor = self._refund_note_actor(
            "settle_pending_refund", actor, now, "request_key", request_key
        )
        self._ensure_joined(order_id)
        left = tuple(entry for entry in self.pending_refunds if entry[0] != request_key)
        if len(left) == len(self.pending_refunds):
            return False
        self.pending_refunds = left
        self._record(GroupBuyRefundSettled, now, actor, order_id=order_id, request_key=request_key)
        return True

    def note_refund_key(
        self, *, order_id: str, key: str, total: Money, now: datetime, actor: Actor | None = None
    ) -> bool:
        """Remember the total a caller's refund key asks of a deposit order.

        The same key with the same total is a retry and changes nothing.

        Returns:
            Whether it was noted now.

        Raises:
            Forbidden: The actor is not the system or the platform.
            InvalidInput: A blank key; an order that never joined; a total that is not
                positive; a key already used for another amount.
            CurrencyMismatch: Another currency than the campaign's.

        """
        actor = self._refund_note_actor("note_refund_key", actor, now, "key", key)
        money("total", total, self.terms.currency, positive=True)
        self._ensure_joined(order_id)
        used = self.refund_total(order_id, key)
        if used is not None:
            if used != total:
                raise InvalidInput("key", key, "already used for another amount")
            return False
        self.refund_keys = (*self.refund_keys, (order_id, key, total))
        self._record(GroupBuyRefundKeyed, now, actor, order_id=order_id, key=key, total=total)
        return True

    def refund_total(self, order_id: str, key: str) -> Money | None:
        """The total a caller's refund key asked of ``order_id`` (:meth:`note_refund_key`)."""
        return next((t for o, k, t in self.refund_keys if o == order_id and k == key), None)

    # ----------------------------------------------------------------- internals

    def _refund_note_actor(
        self, command: str, actor: Actor | None, now: datetime, field: str, key: str
    ) -> Actor:
        """Check what every refund note checks first; answer the actor (the system by default).

        The actor, the time, then the key, in that order.
        """
        actor = Actor.system() if actor is None else actor
        authorize(actor, _SYSTEM, command, self.id)
        check_now(now)
        text(field, key, max_length=1000)
        return actor

    def _ensure_joined(self, order_id: str) -> None:
        if order_id not in self._index:
            raise InvalidInput("order_id", order_id, "the order never joined this group buy")

    def _count(self, participation: Participation, sign: int) -> None:
        self._units += sign * participation.quantity
        buyer = participation.buyer_id
        left = self._orders_per_buyer.get(buyer, 0) + sign
        if left:
            self._orders_per_buyer[buyer] = left
        else:
            del self._orders_per_buyer[buyer]

    def _check_window(self, command: str, now: datetime) -> None:
        if now < self.terms.starts_at:
            raise RuleViolation(
                self.id,
                command,
                self.state,
                f"the group buy opens at {self.terms.starts_at.isoformat()}",
            )
        if now >= self.terms.ends_at:
            raise DeadlinePassed(self.id, command, self.state, self.terms.ends_at, now)

    def _find(self, order_id: str) -> tuple[int, Participation]:
        text("order_id", order_id)
        index = self._index.get(order_id)
        if index is None:
            raise NotFound("group-buy order", order_id)
        return index, self.participations[index]

    def _releases(self, participations: list[Participation]) -> tuple[Release, ...]:
        items: list[Release] = []
        for p in participations:
            items.extend(
                releases_for_order(
                    self.id,
                    order_id=p.order_id,
                    buyer_id=p.buyer_id,
                    paid=p.paid,
                    payment_ref=p.payment_ref,
                )
            )
        return tuple(items)

    def _succeed(self, now: datetime, actor: Actor) -> None:
        active = self.active()
        level = self.level
        unit_price = self.terms.unit_price_at(level)
        zero = Money.zero(self.terms.currency)
        lines = []
        for p in active:
            at_final_price = unit_price * p.quantity
            if self.terms.payment is GroupBuyPayment.DEPOSIT:
                final, refund, due = at_final_price, zero, at_final_price - p.paid
            else:
                final = min(p.paid, at_final_price)
                refund, due = p.paid - final, zero
            lines.append(
                SettlementLine(p.order_id, p.buyer_id, p.quantity, p.paid, final, refund, due)
            )
        due_at = (
            now + self.terms.balance_window
            if self.terms.payment is GroupBuyPayment.DEPOSIT
            else None
        )
        self.settlement = Settlement(
            level, self.terms.tier_at(level), unit_price, tuple(lines), due_at
        )
        self._record(GroupBuySucceeded, now, actor, settlement=self.settlement)
