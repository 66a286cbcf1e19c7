"""Hypothesis strategies for the public values and commands (needs the ``test`` extra).

Use them in your own property tests::

    from hypothesis import given
    from ecommerce_core.testing.strategies import money, orders

    @given(money(currency="CNY"))
    def test_money_is_never_negative(amount): ...

When the package is installed, Hypothesis also finds :func:`_hypothesis_setup_hook` through the
``hypothesis`` entry point, so ``st.from_type(Money)`` (and ``OrderLine``, ``CartItem``,
``Order``) work without importing this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from hypothesis import strategies as st

from ecommerce_core.actors import Actor
from ecommerce_core.errors import EcommerceCoreError
from ecommerce_core.money import CURRENCIES, Money
from ecommerce_core.orders import CartItem, Order, OrderLine
from ecommerce_core.policies import OrderPolicy
from ecommerce_core.promotions import AmountOff, PercentOff, Promotion

__all__ = [
    "ORDER_COMMANDS",
    "START",
    "cart_items",
    "carts",
    "currencies",
    "money",
    "order_lines",
    "orders",
    "promotions",
    "shuffled_with_duplicates",
    "skus",
]

T = TypeVar("T")

START: Final = datetime(2026, 1, 1, 9, tzinfo=UTC)
"""When the orders built by :func:`orders` are placed."""

ORDER_COMMANDS: Final = ("pay", "ship", "deliver", "confirm_receipt", "cancel", "expire")
"""The commands :func:`orders` fires at a placed order, in any order."""

_POLICY: Final = OrderPolicy()
_MAX_MINOR: Final = 10**9


def currencies() -> st.SearchStrategy[str]:
    """Any known currency code (``CNY``, ``JPY``, ``KWD``...)."""
    return st.sampled_from(sorted(CURRENCIES))


def money(
    currency: str | None = None, *, min_minor: int = 0, max_minor: int = _MAX_MINOR
) -> st.SearchStrategy[Money]:
    """Amounts in minor units, in ``currency`` or any known currency.

    Args:
        currency: One currency, or ``None`` for any.
        min_minor: The smallest amount in minor units (0: zero is allowed).
        max_minor: The largest amount in minor units.

    """
    codes = st.just(currency) if currency is not None else currencies()
    return st.builds(Money, st.integers(min_minor, max_minor), codes)


def skus() -> st.SearchStrategy[str]:
    """Short stock-keeping units such as ``sku-3``."""
    return st.integers(0, 20).map(lambda n: f"sku-{n}")


def order_lines(currency: str = "CNY", *, line_id: str = "1") -> st.SearchStrategy[OrderLine]:
    """Order lines with a positive quantity and a positive unit price in ``currency``."""
    return st.builds(
        OrderLine,
        st.just(line_id),
        skus(),
        st.integers(1, 20),
        money(currency, min_minor=1, max_minor=10**7),
    )


def cart_items() -> st.SearchStrategy[CartItem]:
    """One cart item: a SKU and a quantity of at least one."""
    return st.builds(CartItem, skus(), st.integers(1, 20))


def carts(max_items: int = 5) -> st.SearchStrategy[list[CartItem]]:
    """Non-empty carts with distinct SKUs (as checkout requires)."""
    return st.lists(cart_items(), min_size=1, max_size=max_items, unique_by=lambda i: i.sku)


def promotions(currency: str = "CNY") -> st.SearchStrategy[Promotion]:
    """Simple valid promotions: a percentage or an amount off, on every line."""
    benefit = st.one_of(
        st.integers(1, 90).map(PercentOff),
        money(currency, min_minor=1, max_minor=10**5).map(AmountOff),
    )
    return st.builds(
        Promotion,
        st.text("abcdefghij", min_size=1, max_size=8).map(lambda s: f"promo-{s}"),
        benefit,
    )


def _fire(order: Order, command: str, now: datetime) -> None:
    buyer, merchant = Actor.buyer(order.buyer_id), Actor.merchant(order.merchant_id)
    if command == "pay":
        order.pay(buyer, amount=order.total, reference=f"pay-{order.version}", now=now)
    elif command == "ship":
        order.ship(merchant, carrier="SF", tracking_number="SF1", now=now, policy=_POLICY)
    elif command == "deliver":
        order.deliver(Actor.carrier("SF"), now=now, policy=_POLICY)
    elif command == "confirm_receipt":
        order.confirm_receipt(buyer, now=now, policy=_POLICY)
    elif command == "cancel":
        order.cancel(buyer, reason="changed my mind", now=now)
    elif order.deadline is not None:  # expire: let the clock reach the deadline
        order.expire(order.deadline.at, _POLICY)


@st.composite
def orders(draw: st.DrawFn, *, currency: str = "CNY", max_commands: int = 8) -> Order:
    """Standard orders in any reachable state: placed, then a random run of commands fired.

    Commands the order refuses are skipped (a refused command changes nothing), so every
    state the standard process can reach by these commands is reachable.
    """
    lines = draw(
        st.lists(order_lines(currency), min_size=1, max_size=3, unique_by=lambda ln: ln.sku)
    )
    lines = [OrderLine(str(n), ln.sku, ln.quantity, ln.unit_price) for n, ln in enumerate(lines)]
    order = Order.place(
        order_id=draw(st.integers(1, 10**6).map(lambda n: f"o-{n}")),
        buyer_id="b-1",
        merchant_id="m-1",
        lines=lines,
        now=START,
        policy=_POLICY,
    )
    now = START
    for command in draw(st.lists(st.sampled_from(ORDER_COMMANDS), max_size=max_commands)):
        now += timedelta(minutes=draw(st.integers(1, 60)))
        try:
            _fire(order, command, now)
        except EcommerceCoreError:
            continue
    order.collect_events()
    return order


def shuffled_with_duplicates(
    items: Sequence[T], *, max_duplicates: int = 3
) -> st.SearchStrategy[list[T]]:
    """Every item at least once, some repeated, in any order: a notification stream.

    Use it for provider callbacks or tracking events delivered at least once, out of order.
    """
    if not items:
        return st.just([])
    extra = st.lists(st.sampled_from(list(items)), max_size=max_duplicates)
    return extra.flatmap(lambda more: st.permutations([*items, *more]))


def _hypothesis_setup_hook() -> None:
    """Register strategies for Money, OrderLine, CartItem and Order with ``st.from_type``."""
    st.register_type_strategy(Money, money())
    st.register_type_strategy(OrderLine, order_lines())
    st.register_type_strategy(CartItem, cart_items())
    st.register_type_strategy(Order, orders())
