"""Time-boxed sales modes: flash sale (秒杀) and rush purchase (抢购).

Both sell listed SKUs at a campaign price, for a limited time and a limited quantity, with a
per-buyer limit counted in **units** (not orders). They plug into pricing as base-price
promotions (:attr:`~ecommerce_core.promotions.Stage.BASE_PRICE`, exclusive, one sales mode per
order) whose limits are reserved like any other (:mod:`ecommerce_core.limits`).

**Flash sale.** Sessions (场次, e.g. 2-hour slots) with end-exclusive windows: a 10:00-12:00
session sells at 11:59:59 and not at 12:00. Each item has a flash price and a quota *per
session*, separate from the main stock: an order needs both (the quota is reserved in the
promotion ledger, the stock in the inventory). A buyer may hold at most one unpaid flash order
per item; the payment timeout is shorter (15 minutes by default); no cash on delivery.

**Rush purchase.** One window, a price and a limited quantity. By default its stock and its
quantity are taken **at payment**, not at order, so unpaid orders cannot hoard them: whoever
pays first gets the units, and a payment that finds them gone is refused before any money is
taken.

Example:
    >>> from datetime import UTC, date, datetime, time, timedelta
    >>> from ecommerce_core.money import Money
    >>> sessions = daily_sessions(date(2026, 6, 18), [time(10), time(12)], timedelta(hours=2), UTC)
    >>> [s.id for s in sessions]
    ['20260618-1000', '20260618-1200']
    >>> tea = FlashItem("tea-01", Money.of("38.00", "CNY"), Money.of("19.90", "CNY"), 100, 2)
    >>> sale = FlashSale("618", sessions, [tea])
    >>> sale.session_at(datetime(2026, 6, 18, 11, 59, tzinfo=UTC)).id
    '20260618-1000'
    >>> sale.session_at(datetime(2026, 6, 18, 12, 0, tzinfo=UTC)).id
    '20260618-1200'

"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import ClassVar, Final, Generic, TypeVar

import attrs

from ecommerce_core.errors import (
    DefinitionError,
    LimitExceeded,
    NotFound,
    OutOfStock,
    PromotionRefused,
)
from ecommerce_core.limits import Limit, Measure, StockTiming
from ecommerce_core.money import Money
from ecommerce_core.orders import PricingTerms
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.promotions import (
    FixedPrice,
    PricingResult,
    Promotion,
    Scope,
    Stage,
    Status,
)

__all__ = [
    "FLASH_SALE",
    "RUSH_PURCHASE",
    "FlashItem",
    "FlashSale",
    "RushItem",
    "RushPurchase",
    "Session",
    "TimeBoxedSale",
    "daily_sessions",
]

FLASH_SALE: Final = "flash_sale"
"""The sales mode of a flash sale (秒杀), as stored on orders."""
RUSH_PURCHASE: Final = "rush_purchase"
"""The sales mode of a rush purchase (抢购), as stored on orders."""


def _aware(name: str, value: object, problems: list[str]) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        problems.append(f"{name} must be a timezone-aware datetime, got {value!r}")


@attrs.frozen
class Session:
    """One session (场次) of a flash sale: it sells from ``starts_at`` until before ``ends_at``.

    Attributes:
        id: Unique within its sale, e.g. ``"20260618-1000"``.
        starts_at: The first moment it sells (inclusive).
        ends_at: The first moment it no longer sells (exclusive).

    Raises:
        DefinitionError: An empty id, naive times, or an end not after the start.

    """

    id: str
    starts_at: datetime
    ends_at: datetime

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.id, str) or not self.id.strip():
            problems.append("a session needs an id")
        _aware("starts_at", self.starts_at, problems)
        _aware("ends_at", self.ends_at, problems)
        if not problems and self.ends_at <= self.starts_at:
            problems.append(f"it ends ({self.ends_at}) before it starts ({self.starts_at})")
        if problems:
            raise DefinitionError(f"session {self.id!r}", problems)

    def is_open(self, now: datetime) -> bool:
        """Whether it sells at ``now`` (the end is excluded)."""
        return self.starts_at <= now < self.ends_at

    def __str__(self) -> str:
        return f"{self.starts_at:%Y-%m-%d %H:%M}-{self.ends_at:%H:%M}"


def daily_sessions(
    first_day: date,
    starts: Sequence[time],
    length: timedelta,
    tz: tzinfo,
    *,
    days: int = 1,
) -> tuple[Session, ...]:
    """Sessions at the same times every day, e.g. 2-hour slots from 08:00 to 22:00.

    Args:
        first_day: The first day.
        starts: When each session starts, every day.
        length: How long each lasts (end exclusive).
        tz: The time zone the times are in.
        days: How many days.

    Returns:
        The sessions in time order, ids like ``"20260618-1000"``.

    """
    return tuple(
        Session(
            f"{day:%Y%m%d}-{start:%H%M}",
            datetime.combine(day, start, tz),
            datetime.combine(day, start, tz) + length,
        )
        for day in (first_day + timedelta(days=n) for n in range(days))
        for start in sorted(starts)
    )


@attrs.frozen
class FlashItem:
    """One SKU in a flash sale.

    Attributes:
        sku: The stock-keeping unit.
        list_price: Its catalogue price (the flash price must be below it).
        flash_price: Its price in the flash sale.
        quota: Units sold at the flash price per session, separate from the main stock.
        per_buyer: Units each buyer may buy at the flash price over the whole sale.

    """

    sku: str
    list_price: Money
    flash_price: Money
    quota: int
    per_buyer: int


@attrs.frozen
class RushItem:
    """One SKU in a rush purchase.

    Attributes:
        sku: The stock-keeping unit.
        list_price: Its catalogue price (the rush price must be below it).
        price: Its price in the rush purchase.
        quantity: How many units are sold at that price, in total.
        per_buyer: Units each buyer may buy at that price.

    """

    sku: str
    list_price: Money
    price: Money
    quantity: int
    per_buyer: int


def _item_problems(
    sku: object, list_price: object, price: object, caps: Iterable[tuple[str, object]]
) -> list[str]:
    problems: list[str] = []
    if not isinstance(sku, str) or not sku.strip():
        problems.append("an item needs a SKU")
    if not isinstance(list_price, Money) or not isinstance(price, Money):
        problems.append(f"{sku}: the list price and the sale price must be Money")
    elif list_price.currency != price.currency:
        problems.append(f"{sku}: the list price and the sale price are in different currencies")
    elif price.is_negative or price >= list_price:
        problems.append(
            f"{sku}: the sale price {price} must be below the list price {list_price}, not above"
        )
    for name, cap in caps:
        if type(cap) is not int or cap < 1:
            problems.append(f"{sku}: {name} must be an int of at least 1, got {cap!r}")
    return problems


def _timeout_problems(timeout: object, problems: list[str]) -> None:
    if timeout is not None and (not isinstance(timeout, timedelta) or timeout <= timedelta(0)):
        problems.append(f"the payment timeout must be a positive timedelta, got {timeout!r}")


def _unique_skus(skus: Sequence[str], problems: list[str]) -> None:
    if len(set(skus)) != len(skus):
        problems.append("a SKU is listed twice")
    if not skus:
        problems.append("it sells no item")


def _ensure_sold(
    result: PricingResult,
    promotion: Promotion,
    *,
    sku: str,
    quantity: int,
    buyer_id: str,
    usage: Mapping[str, int],
    campaign: str,
) -> None:
    """Raise the error a buyer should see when ``promotion`` did not price their order."""
    explanation = result.explanation(promotion.id)
    if explanation.applied:
        return
    limit = explanation.limit
    if explanation.status is Status.LIMIT_REACHED and limit is not None:
        left = limit.remaining(promotion.id, buyer_id, usage)
        if limit.until_paid:
            raise PromotionRefused(
                campaign,
                explanation.status.value,
                f"you already have an unpaid order for {sku!r} in it; pay or cancel that first",
                command="buy",
            )
        if limit.measure is Measure.UNITS and not limit.per_buyer:
            raise OutOfStock(sku, quantity, left, command="buy")
        raise LimitExceeded(
            limit.key(promotion.id, buyer_id=buyer_id), left, quantity, command="buy"
        )
    raise PromotionRefused(campaign, explanation.status.value, explanation.reason, command="buy")


def _terms(result: PricingResult, timing: StockTiming, *, cod_allowed: bool) -> PricingTerms:
    """The terms a campaign order is placed with (always some: the sales mode is set)."""
    return PricingTerms(
        sales_mode=result.sales_mode,
        stock_timing=timing,
        claims=result.claims,
        promotion_ids=result.applied,
        offer_ends_at=result.offer_ends_at,
        cod_allowed=cod_allowed,
        entitlements=result.entitlements,
    )


_Item = TypeVar("_Item", FlashItem, RushItem)


class _TimeBoxed(Generic[_Item]):
    """What a flash sale and a rush purchase share: finding an item, terms, refusals."""

    __slots__ = ()
    _kind: ClassVar[str]  # in messages: "flash sale", "rush purchase"
    id: str
    items: tuple[_Item, ...]
    stock_timing: StockTiming
    allows_cod: ClassVar[bool] = False

    def item(self, sku: str) -> _Item:
        """The item for ``sku``.

        Raises:
            NotFound: The campaign does not sell it.

        """
        for item in self.items:
            if item.sku == sku:
                return item
        raise NotFound(f"SKU in {self._kind} {self.id!r}", sku)

    def terms(self, result: PricingResult) -> PricingTerms:
        """The pricing terms its orders are placed with: its stock timing, never COD."""
        return _terms(result, self.stock_timing, cod_allowed=self.allows_cod)

    def ensure_sold(
        self,
        result: PricingResult,
        promotion: Promotion,
        *,
        quantity: int,
        buyer_id: str,
        usage: Mapping[str, int],
    ) -> None:
        """Raise why the buyer cannot buy, if ``promotion`` did not price the order.

        Raises:
            OutOfStock: Fewer units are left at the campaign's price (a flash session's
                quota, a rush purchase's quantity) than asked.
            LimitExceeded: The buyer's units would pass the per-buyer limit.
            PromotionRefused: It is not selling now, or (flash sale) the buyer has an unpaid
                order for the item in it.

        """
        _ensure_sold(
            result,
            promotion,
            sku=next(iter(promotion.scope.skus)),
            quantity=quantity,
            buyer_id=buyer_id,
            usage=usage,
            campaign=self.id,
        )


@attrs.frozen
class FlashSale(_TimeBoxed[FlashItem]):
    """A flash sale (秒杀): sessions, items with flash prices, quotas and per-buyer limits.

    Attributes:
        id: The campaign's id.
        sessions: Its sessions, not overlapping.
        items: What it sells.
        payment_timeout: How long a flash order waits for payment (shorter than usual).
        name: A display name.

    Raises:
        DefinitionError: Listing every problem: no sessions or items, overlapping sessions,
            a SKU twice, a flash price not below the list price, a quota or limit below 1, a
            payment timeout that is not positive.

    """

    id: str
    sessions: tuple[Session, ...] = attrs.field(converter=tuple[Session, ...])
    items: tuple[FlashItem, ...] = attrs.field(converter=tuple[FlashItem, ...])
    payment_timeout: timedelta = timedelta(minutes=15)
    name: str = ""

    sales_mode: ClassVar[str] = FLASH_SALE
    stock_timing: ClassVar[StockTiming] = StockTiming.ON_ORDER  # type: ignore[misc]  # a flash sale always takes stock on order
    _kind: ClassVar[str] = "flash sale"

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.id, str) or not self.id.strip():
            problems.append("a flash sale needs an id")
        if not self.sessions:
            problems.append("it has no session")
        ordered = sorted(self.sessions, key=lambda s: s.starts_at)
        problems.extend(
            f"sessions {a.id!r} and {b.id!r} overlap"
            for a, b in itertools.pairwise(ordered)
            if b.starts_at < a.ends_at
        )
        if len({s.id for s in self.sessions}) != len(self.sessions):
            problems.append("a session id is used twice")
        _unique_skus([item.sku for item in self.items], problems)
        for item in self.items:
            problems.extend(
                _item_problems(
                    item.sku,
                    item.list_price,
                    item.flash_price,
                    (("quota", item.quota), ("per_buyer", item.per_buyer)),
                )
            )
        _timeout_problems(self.payment_timeout, problems)
        if problems:
            raise DefinitionError(f"flash sale {self.id!r}", problems)
        object.__setattr__(self, "sessions", tuple(ordered))

    def session_at(self, now: datetime) -> Session | None:
        """The session selling at ``now``, if any."""
        return next((s for s in self.sessions if s.is_open(now)), None)

    def next_session(self, now: datetime) -> Session | None:
        """The first session starting after ``now``, if any."""
        return next((s for s in self.sessions if s.starts_at > now), None)

    def promotion(self, sku: str, session: Session) -> Promotion:
        """The base-price promotion that sells ``sku`` in ``session``.

        Its limits: one unpaid order per buyer and item, the session's quota (units) and the
        buyer's units over the whole sale, all reserved when the order is placed.
        """
        item = self.item(sku)
        shared = f"{self.id}:{sku}"
        return Promotion(
            f"{self.id}:{session.id}:{sku}",
            FixedPrice(item.flash_price),
            name=self.name or self.id,
            stage=Stage.BASE_PRICE,
            scope=Scope(skus={sku}),
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            exclusive=True,
            limits=(  # checked in this order: the most actionable refusal first
                Limit.unpaid_orders_per_buyer(1, namespace=shared),
                Limit.units(item.quota),
                Limit.units_per_buyer(item.per_buyer, namespace=shared),
            ),
            sales_mode=FLASH_SALE,
        )

    def offer(self, sku: str, now: datetime) -> Promotion:
        """The promotion selling ``sku`` at ``now``.

        Raises:
            NotFound: The sale does not sell ``sku``.
            PromotionRefused: No session is selling at ``now`` (not started, between
                sessions, or over); the reason names the next session.

        """
        self.item(sku)
        session = self.session_at(now)
        if session is not None:
            return self.promotion(sku, session)
        upcoming = self.next_session(now)
        if upcoming is not None:
            reason = f"no session is selling now; the next one is {upcoming}"
            raise PromotionRefused(self.id, Status.NOT_STARTED.value, reason, command="buy")
        reason = f"its last session ended at {self.sessions[-1].ends_at.isoformat()}"
        raise PromotionRefused(self.id, Status.EXPIRED.value, reason, command="buy")

    def policy(self, base: OrderPolicy) -> OrderPolicy:
        """The order policy for its orders: ``base`` with the flash payment timeout."""
        return attrs.evolve(base, payment_timeout=self.payment_timeout)


@attrs.frozen
class RushPurchase(_TimeBoxed[RushItem]):
    """A rush purchase (抢购): a limited-time, limited-quantity price with a per-buyer limit.

    Attributes:
        id: The campaign's id.
        starts_at: When it starts selling (inclusive).
        ends_at: When it stops (exclusive).
        items: What it sells.
        stock_timing: When orders take the stock and the rush quantity: at payment (the
            default: unpaid orders hold nothing) or at order.
        payment_timeout: A payment timeout for its orders, or ``None`` for the usual one.
        name: A display name.

    Raises:
        DefinitionError: Listing every problem (see :class:`FlashSale`).

    """

    id: str
    starts_at: datetime
    ends_at: datetime
    items: tuple[RushItem, ...] = attrs.field(converter=tuple[RushItem, ...])
    stock_timing: StockTiming = attrs.field(default=StockTiming.ON_PAYMENT, converter=StockTiming)
    payment_timeout: timedelta | None = None
    name: str = ""

    sales_mode: ClassVar[str] = RUSH_PURCHASE
    _kind: ClassVar[str] = "rush purchase"

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.id, str) or not self.id.strip():
            problems.append("a rush purchase needs an id")
        _aware("starts_at", self.starts_at, problems)
        _aware("ends_at", self.ends_at, problems)
        if not problems and self.ends_at <= self.starts_at:
            problems.append(f"it ends ({self.ends_at}) before it starts ({self.starts_at})")
        _unique_skus([item.sku for item in self.items], problems)
        for item in self.items:
            problems.extend(
                _item_problems(
                    item.sku,
                    item.list_price,
                    item.price,
                    (("quantity", item.quantity), ("per_buyer", item.per_buyer)),
                )
            )
        _timeout_problems(self.payment_timeout, problems)
        if problems:
            raise DefinitionError(f"rush purchase {self.id!r}", problems)

    def promotion(self, sku: str) -> Promotion:
        """The base-price promotion that sells ``sku``; limits taken per the stock timing."""
        item = self.item(sku)
        at_payment = self.stock_timing is StockTiming.ON_PAYMENT
        return Promotion(
            f"{self.id}:{sku}",
            FixedPrice(item.price),
            name=self.name or self.id,
            stage=Stage.BASE_PRICE,
            scope=Scope(skus={sku}),
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            exclusive=True,
            limits=(
                Limit.units(item.quantity, at_payment=at_payment),
                Limit.units_per_buyer(item.per_buyer, at_payment=at_payment),
            ),
            sales_mode=RUSH_PURCHASE,
        )

    def offer(self, sku: str, now: datetime) -> Promotion:
        """The promotion selling ``sku`` at ``now``.

        Raises:
            NotFound: The campaign does not sell ``sku``.
            PromotionRefused: It has not started or is over.

        """
        promotion = self.promotion(sku)
        if now < self.starts_at:
            reason = f"it starts at {self.starts_at.isoformat()}"
            raise PromotionRefused(self.id, Status.NOT_STARTED.value, reason, command="buy")
        if now >= self.ends_at:
            reason = f"it ended at {self.ends_at.isoformat()}"
            raise PromotionRefused(self.id, Status.EXPIRED.value, reason, command="buy")
        return promotion

    def policy(self, base: OrderPolicy) -> OrderPolicy:
        """The order policy for its orders: ``base``, with its payment timeout if it has one."""
        if self.payment_timeout is None:
            return base
        return attrs.evolve(base, payment_timeout=self.payment_timeout)


TimeBoxedSale = FlashSale | RushPurchase
"""A sales campaign sold through :meth:`~ecommerce_core.services.OrderService.buy_in_campaign`."""
