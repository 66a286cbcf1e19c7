"""Ports: what the host application plugs in. Every one is a ``typing.Protocol``.

The library owns the rules; the host owns the database, the payment provider, the carriers,
the clock and the message bus. Each port here has a contract suite in
:mod:`ecommerce_core.testing.contracts` (``OrderRepositoryContract``, ``InventoryContract``,
...): an adapter is correct when its test class subclasses the contract and passes. Our own
in-memory adapters (:mod:`ecommerce_core.adapters.memory`) do exactly that.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from ecommerce_core.campaigns.lucky_draw import PublicNumber
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order

__all__ = [
    "Catalog",
    "ChargeRequest",
    "Clock",
    "EventPublisher",
    "GatewayResult",
    "GatewayStatus",
    "IdSource",
    "Inventory",
    "OrderRepository",
    "PaymentGateway",
    "Product",
    "PublicNumber",
    "RandomnessSource",
    "RefundRequest",
    "StockItem",
]


# --------------------------------------------------------------------------- values


@attrs.frozen
class Product:
    """What the catalogue knows of a SKU.

    Attributes:
        sku: The stock-keeping unit.
        merchant_id: The merchant who sells it.
        name: A display name.
        unit_price: The list price of one unit.
        category: Its category, for promotions and return rules.

    """

    sku: str
    merchant_id: str
    name: str
    unit_price: Money
    category: str = ""


@attrs.frozen
class StockItem:
    """Units of one SKU on one order line, to reserve.

    Attributes:
        line_id: The order line (reservations are idempotent per line).
        sku: The stock-keeping unit.
        quantity: Units.

    """

    line_id: str
    sku: str
    quantity: int


class GatewayStatus(enum.StrEnum):
    """What a payment provider answered."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    PENDING = "pending"  # no answer yet (timed out): never guessed as success or failure


@attrs.frozen
class ChargeRequest:
    """Ask the provider to take money for an order.

    Attributes:
        order_id: The order paid for.
        amount: How much.
        idempotency_key: Sent to the provider so a retry never charges twice.

    """

    order_id: str
    amount: Money
    idempotency_key: str


@attrs.frozen
class RefundRequest:
    """Ask the provider to give money back.

    Attributes:
        order_id: The order refunded.
        transaction_id: The provider's id of the charge being refunded.
        amount: How much.
        idempotency_key: Sent to the provider so a retry never refunds twice.

    """

    order_id: str
    transaction_id: str
    amount: Money
    idempotency_key: str


@attrs.frozen
class GatewayResult:
    """A provider's answer.

    Attributes:
        status: Succeeded, declined, or pending (no answer yet).
        transaction_id: The provider's id for the operation (empty when declined).
        amount: The amount the provider acted on.
        message: The provider's explanation, for people.

    """

    status: GatewayStatus
    transaction_id: str
    amount: Money
    message: str = ""

    @property
    def succeeded(self) -> bool:
        """Whether the provider confirmed the operation."""
        return self.status is GatewayStatus.SUCCEEDED


# --------------------------------------------------------------------------- ports


class OrderRepository(Protocol):
    """Stores orders with optimistic concurrency.

    Contract: :class:`ecommerce_core.testing.contracts.OrderRepositoryContract`.
    """

    def add(self, order: Order) -> None:
        """Store a new order.

        Raises:
            Conflict: An order with this id is already stored.

        """

    def get(self, order_id: str) -> Order:
        """Load an order.

        The caller owns the returned object: changing it changes nothing stored until
        :meth:`save`.

        Raises:
            NotFound: No such order.

        """
        ...

    def save(self, order: Order, expected_version: int) -> None:
        """Store ``order`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of orders whose deadline is at or before ``now``, earliest first."""
        ...


class Inventory(Protocol):
    """Stock with atomic, idempotent reservations; never goes below zero.

    A reservation (keyed by the order id) moves through *reserved* → *committed* (deducted
    from stock, on payment) and may be *released* (reserved units become available again;
    committed but unshipped units go back on hand). Every operation is idempotent.

    Contract: :class:`ecommerce_core.testing.contracts.InventoryContract`.
    """

    def receive(self, sku: str, quantity: int) -> None:
        """Add ``quantity`` units of ``sku`` to stock on hand."""

    def reserve(self, reservation_id: str, items: Sequence[StockItem]) -> None:
        """Reserve every item, or none.

        A repeat with the same items is a no-op.

        Raises:
            OutOfStock: Some SKU has fewer units available than asked; nothing was reserved.
            IdempotencyConflict: This reservation id was used with different items.
            InvalidInput: No items, or a quantity below 1.

        """

    def commit(self, reservation_id: str) -> None:
        """Deduct the reserved units from stock (on payment). A repeat is a no-op.

        Raises:
            NotFound: No such reservation.
            RuleViolation: The reservation was released.

        """

    def release(self, reservation_id: str) -> bool:
        """Give the units back (reserved or committed-but-unshipped).

        Returns:
            ``True`` if units were given back now, ``False`` if already released.

        Raises:
            NotFound: No such reservation.

        """
        ...

    def available(self, sku: str) -> int:
        """Units that can still be reserved."""
        ...

    def reserved(self, sku: str) -> int:
        """Units reserved and not yet committed or released."""
        ...

    def on_hand(self, sku: str) -> int:
        """Units in stock, reserved ones included."""
        ...


class Catalog(Protocol):
    """Looks products up. Prices come from here, never from the buyer.

    Contract: :class:`ecommerce_core.testing.contracts.CatalogContract`.
    """

    def product(self, sku: str) -> Product:
        """The product with this SKU.

        Raises:
            NotFound: No such SKU.

        """
        ...


class PaymentGateway(Protocol):
    """A payment provider, result-typed: a decline is an answer, not an exception.

    Contract: :class:`ecommerce_core.testing.contracts.PaymentGatewayContract`.
    """

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Take money. The same idempotency key returns the first answer."""
        ...

    def refund(self, request: RefundRequest) -> GatewayResult:
        """Give money back. The same idempotency key returns the first answer."""
        ...


class Clock(Protocol):
    """The time. The domain never reads a wall clock; services ask this port."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class IdSource(Protocol):
    """New ids for orders, checkouts and other records."""

    def next_id(self, kind: str) -> str:
        """A new id, unique for this ``kind`` (``"order"``, ``"checkout"``, ...)."""
        ...


class EventPublisher(Protocol):
    """Hands domain events to the host's bus, after the aggregate was saved."""

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Publish ``events`` in order."""


class RandomnessSource(Protocol):
    """Chance from outside the trade, published so anyone can check it (lucky draws).

    The domain never draws random numbers itself: a lucky-draw round takes B, the public number
    its winner depends on, from here, and stores it with its source so the draw can be
    recomputed (:meth:`~ecommerce_core.campaigns.lucky_draw.DrawRound.verify`). An adapter
    reads a public lottery result, a drand beacon round, a block hash; a test adapter replays a
    list.

    Contract: :class:`ecommerce_core.testing.contracts.RandomnessSourceContract`.
    """

    def public_number(self, after: datetime) -> PublicNumber | None:
        """The first number published at or after ``after``, or ``None`` if none is yet.

        Once a number is published the answer for ``after`` never changes.
        """
        ...
