"""Ports: what the host application plugs in. Every one is a ``typing.Protocol``.

The library owns the rules; the host owns the database, the payment provider, the carriers,
the clock, the ledger's storage and the message bus. Each port here has a contract suite in
:mod:`ecommerce_core.testing.contracts` (``OrderRepositoryContract``, ``InventoryContract``,
...): an adapter is correct when its test class subclasses the contract and passes. Our own
in-memory adapters (:mod:`ecommerce_core.adapters.memory`) do exactly that.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from ecommerce_core._validation import check_text
from ecommerce_core.aftersales import OrderAfterSales
from ecommerce_core.auctions import Auction
from ecommerce_core.campaigns import TimeBoxedSale
from ecommerce_core.campaigns.group_buy import GroupBuy
from ecommerce_core.campaigns.lucky_draw import DrawRound, PublicNumber
from ecommerce_core.campaigns.rebate import Rebate
from ecommerce_core.campaigns.team import Team
from ecommerce_core.delivery import DeliveryOption, Shipment
from ecommerce_core.errors import InvalidInput
from ecommerce_core.events import DomainEvent
from ecommerce_core.limits import LimitClaim
from ecommerce_core.money import Money
from ecommerce_core.orders import Order, OrderLine
from ecommerce_core.payments.base import PaymentRecord
from ecommerce_core.payments.ledger import Account, Posting
from ecommerce_core.payments.notifications import Notification, NotificationKind
from ecommerce_core.promotions import Coupon, Promotion

__all__ = [
    "AfterSalesRepository",
    "AuctionRepository",
    "AuthorizeRequest",
    "CaptureRequest",
    "Carriers",
    "Catalog",
    "ChargeRequest",
    "Clock",
    "CreditLines",
    "DrawRoundRepository",
    "EventPublisher",
    "GatewayResult",
    "GatewayStatus",
    "GroupBuyRepository",
    "IdSource",
    "IdempotencyStore",
    "Inventory",
    "Ledger",
    "Notification",
    "NotificationKind",
    "OrderRepository",
    "PaymentGateway",
    "PaymentRepository",
    "Product",
    "PromotionCatalog",
    "PromotionLedger",
    "PublicNumber",
    "RandomnessSource",
    "RebateRepository",
    "RefundRequest",
    "ShipmentRepository",
    "StockItem",
    "TeamRepository",
    "VoidRequest",
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

    Raises:
        InvalidInput: An empty SKU or merchant id, or a price that is not ``Money`` or is
            negative (a catalogue mistake, refused when the product is built rather than
            when a buyer checks it out).

    """

    sku: str = attrs.field(validator=check_text)
    merchant_id: str = attrs.field(validator=check_text)
    name: str
    unit_price: Money = attrs.field()
    category: str = ""

    @unit_price.validator
    def _check_price(self, _: attrs.Attribute[Money], value: Money) -> None:
        if not isinstance(value, Money):
            raise InvalidInput(
                "unit_price", value, "must be Money, such as Money.of('38.00', 'CNY')"
            )
        if value.is_negative:
            raise InvalidInput("unit_price", value, "must not be negative")


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
    """Ask the provider to take money for an order at once: authorize and capture (a sale).

    Attributes:
        order_id: The order paid for.
        amount: How much.
        idempotency_key: Sent to the provider so a retry never charges twice.
        payment_id: Our payment's id, which the provider echoes in its notifications.

    """

    order_id: str
    amount: Money
    idempotency_key: str
    payment_id: str = ""


@attrs.frozen
class AuthorizeRequest:
    """Ask the provider to authorize (hold) an amount on the buyer's account, capturing nothing.

    Attributes:
        payment_id: Our payment's id, which the provider echoes in its notifications.
        order_id: The order paid for.
        amount: How much.
        idempotency_key: Sent to the provider so a retry never authorizes twice.

    """

    payment_id: str
    order_id: str
    amount: Money
    idempotency_key: str


@attrs.frozen
class CaptureRequest:
    """Ask the provider to capture part or all of an authorization.

    Attributes:
        payment_id: Our payment's id.
        transaction_id: The provider's id of the authorization.
        amount: How much; at most what is left of the authorization.
        idempotency_key: Sent to the provider so a retry never captures twice.

    """

    payment_id: str
    transaction_id: str
    amount: Money
    idempotency_key: str


@attrs.frozen
class VoidRequest:
    """Ask the provider to void an authorization (or a payment not completed) before capture.

    Attributes:
        payment_id: Our payment's id.
        transaction_id: The provider's id of the authorization (empty if none yet).
        idempotency_key: Sent to the provider so a retry is recognised.

    """

    payment_id: str
    transaction_id: str
    idempotency_key: str


@attrs.frozen
class RefundRequest:
    """Ask the provider to give money back.

    Attributes:
        order_id: The order refunded.
        transaction_id: The provider's id of the charge being refunded.
        amount: How much.
        idempotency_key: Sent to the provider so a retry never refunds twice; our refund's id,
            which the provider echoes in its notifications.
        payment_id: Our payment's id.

    """

    order_id: str
    transaction_id: str
    amount: Money
    idempotency_key: str
    payment_id: str = ""


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
            NotFound: No such order, an id that is not a string included (services pass a
                caller's id straight through).

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

    def restock(self, restock_id: str, items: Sequence[StockItem]) -> bool:
        """Put units back on hand, once per ``restock_id``.

        For returned goods fit to sell, a parcel sent back, units refunded before they shipped.

        Returns:
            ``True`` if the units were added now, ``False`` if this restock was done already.

        Raises:
            IdempotencyConflict: This restock id was used with different items.
            InvalidInput: No items, or a quantity below 1.

        """
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

    Every operation answers ``SUCCEEDED``, ``DECLINED`` or ``PENDING``; ``PENDING`` (a time-out,
    a provider still processing) leaves our record pending, never guessed, until a notification
    or a retry tells. The same idempotency key returns the provider's current answer for that
    request (a retry of a pending one learns its outcome; it never acts twice); the same key
    with another request raises :class:`~ecommerce_core.errors.IdempotencyConflict`. A zero or
    negative amount raises :class:`~ecommerce_core.errors.InvalidInput`. Notifications
    (:class:`Notification`, :class:`NotificationKind`) are re-exported here for adapters.

    Contracts: :class:`ecommerce_core.testing.contracts.PaymentGatewayContract` (charge and
    refund) and :class:`ecommerce_core.testing.PaymentGatewayFlowContract` (authorize,
    capture, void and callbacks too); see ``docs/payment-gateway.md``.
    """

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Take money at once: authorize and capture in one step (a sale)."""
        ...

    def authorize(self, request: AuthorizeRequest) -> GatewayResult:
        """Authorize an amount without capturing it; the result names the authorization."""
        ...

    def capture(self, request: CaptureRequest) -> GatewayResult:
        """Capture part or all of an authorization; more than is left is declined."""
        ...

    def void(self, request: VoidRequest) -> GatewayResult:
        """Void an authorization before any capture; a captured one is declined."""
        ...

    def refund(self, request: RefundRequest) -> GatewayResult:
        """Give money back; more than was captured is declined."""
        ...

    def parse_notification(self, payload: Mapping[str, str]) -> Notification:
        """Check and normalise a provider callback (its signature included, for real ones).

        Raises:
            InvalidInput: The payload is malformed or not from this provider.

        """
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


class Ledger(Protocol):
    """The double-entry book: balanced postings, appended atomically and idempotently by key.

    Contract: :class:`ecommerce_core.testing.contracts.LedgerContract`.
    """

    def append(self, postings: Sequence[Posting]) -> int:
        """Append every posting, or none.

        A posting whose key is already stored with the same content is skipped, so appending
        the same batch again is a no-op.

        Returns:
            How many postings were new.

        Raises:
            IdempotencyConflict: A key is stored with another posting; nothing was appended.
            InvalidInput: Not postings, or one key twice in the batch with different content.

        """
        ...

    def postings(self, order_id: str) -> list[Posting]:
        """An order's postings, in the order they were appended."""
        ...

    def balance(self, account: Account, currency: str) -> Money:
        """What ``account`` holds in ``currency``: money in less money out."""
        ...

    def balances(self, currency: str) -> dict[Account, Money]:
        """Every account that ever moved money in ``currency``, with its balance."""
        ...


class PaymentRepository(Protocol):
    """Stores payment aggregates with optimistic concurrency.

    Contract: :class:`ecommerce_core.testing.contracts.PaymentRepositoryContract`.
    """

    def add(self, payment: PaymentRecord) -> None:
        """Store a new payment.

        Raises:
            Conflict: A payment with this id is already stored.

        """

    def get(self, payment_id: str) -> PaymentRecord:
        """Load a payment (the caller owns the returned object).

        Raises:
            NotFound: No such payment.

        """
        ...

    def save(self, payment: PaymentRecord, expected_version: int) -> None:
        """Store ``payment`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def for_order(self, order_id: str) -> list[str]:
        """Ids of an order's payments, oldest first."""
        ...

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of payments whose deadline is at or before ``now``, earliest first."""
        ...


class CreditLines(Protocol):
    """Buyers' credit lines at a credit provider: limit, what is drawn, what is available.

    Draws and restorations are keyed and idempotent; a draw never takes more than is available.

    Contract: :class:`ecommerce_core.testing.contracts.CreditLinesContract`.
    """

    def limit(self, buyer_id: str) -> Money:
        """The buyer's credit limit.

        Raises:
            NotFound: The buyer has no credit line.

        """
        ...

    def drawn(self, buyer_id: str) -> Money:
        """What the buyer has drawn and not yet given back."""
        ...

    def available(self, buyer_id: str) -> Money:
        """What the buyer may still draw: the limit less what is drawn."""
        ...

    def draw(self, key: str, buyer_id: str, amount: Money) -> None:
        """Draw ``amount`` on the buyer's line. A repeat of ``key`` is a no-op.

        Raises:
            CreditLimitExceeded: More than is available; nothing was drawn.
            IdempotencyConflict: ``key`` was used for another draw.
            CurrencyMismatch: Not the line's currency.
            InvalidInput: A zero or negative amount.
            NotFound: The buyer has no credit line.

        """

    def restore(self, key: str, buyer_id: str, amount: Money) -> None:
        """Give ``amount`` back to the buyer's line (repaid or refunded). A repeat is a no-op.

        Raises:
            InvalidInput: More than is drawn, or a zero or negative amount.
            IdempotencyConflict: ``key`` was used for another restoration.
            NotFound: The buyer has no credit line.

        """


class PromotionLedger(Protocol):
    """Counters of promotion limits, changed only by atomic, idempotent reservations.

    Every counter (a :attr:`~ecommerce_core.limits.LimitClaim.key`) holds what reservations
    still hold under it: reserved or committed, not released. A reservation, keyed by an id
    (the order id, or ``ORDER:payment`` for claims taken at payment), follows the
    :data:`~ecommerce_core.limits.PROMOTION_HOLD` process: reserved → committed → released.
    A host implements :meth:`reserve` as one compare-and-set per key (``UPDATE ... SET held =
    held + :n WHERE key = :k AND held + :n <= :cap``) in one transaction, and the release as
    the matching decrement, so concurrent checkouts never pass a cap.

    Contract: :class:`ecommerce_core.testing.contracts.PromotionLedgerContract`.
    """

    def reserve(self, reservation_id: str, claims: Sequence[LimitClaim]) -> None:
        """Reserve every claim, or none.

        A repeat with the same claims, while the reservation is reserved or committed, is a
        no-op. A released reservation id may be reserved again (a payment retried after its
        holds were given back): it starts afresh.

        Raises:
            LimitExceeded: Some key would pass its cap; nothing was reserved.
            IdempotencyConflict: This reservation id is live with different claims.
            InvalidInput: No claims, or one key claimed with two caps.

        """

    def commit(self, reservation_id: str) -> None:
        """Keep the claims for good (the order was paid). A repeat is a no-op.

        Claims held ``until_paid`` are given back now.

        Raises:
            NotFound: No such reservation.
            RuleViolation: The reservation was released.

        """

    def release(self, reservation_id: str) -> bool:
        """Give back what the reservation still holds (reserved or committed claims).

        Returns:
            ``True`` if something was given back now; ``False`` if it was already released
            or never reserved (releasing is safe on every abandon path).

        """
        ...

    def usage(self, keys: Iterable[str]) -> Mapping[str, int]:
        """What each key holds now (0 for a key never used): the snapshot pricing reads."""
        ...


class PromotionCatalog(Protocol):
    """Where the promotions, coupons and sales campaigns the host runs are looked up.

    Contract: :class:`ecommerce_core.testing.contracts.PromotionCatalogContract`.
    """

    def promotions(self, merchant_id: str) -> Sequence[Promotion]:
        """The automatic promotions (no code needed) that may apply to this merchant's orders.

        Those whose scope names the merchant, and those that name no merchant.
        """
        ...

    def coupon(self, code: str) -> Coupon:
        """The coupon with this code.

        Raises:
            NotFound: No such code.

        """
        ...

    def campaign(self, campaign_id: str) -> TimeBoxedSale:
        """The flash sale or rush purchase with this id.

        Raises:
            NotFound: No such campaign.

        """
        ...


class Carriers(Protocol):
    """The delivery options a merchant offers: the carriers it works with, and their fees.

    Contract: :class:`ecommerce_core.testing.contracts.CarriersContract`.
    """

    def delivery_options(
        self, merchant_id: str, lines: Sequence[OrderLine]
    ) -> Sequence[DeliveryOption]:
        """The options ``merchant_id`` offers now for an order of ``lines``.

        Ids are unique within one answer; a merchant offering nothing gives an empty answer
        (checkout then refuses every choice).
        """
        ...


class ShipmentRepository(Protocol):
    """Stores shipments with optimistic concurrency, found by id, order or tracking number.

    Two uniqueness rules make concurrent packing safe: a shipment's ``(order_id, sequence)``
    and its ``(carrier, tracking_number)`` are each stored once. Two writers packing the same
    order at once compute the same next sequence, and the second ``add`` fails.

    Contract: :class:`ecommerce_core.testing.contracts.ShipmentRepositoryContract`.
    """

    def add(self, shipment: Shipment) -> None:
        """Store a new shipment.

        Raises:
            Conflict: Its id, its order and sequence, or its carrier and tracking number
                are stored already; nothing was stored.

        """

    def get(self, shipment_id: str) -> Shipment:
        """Load a shipment; the caller owns the copy.

        Raises:
            NotFound: No such shipment.

        """
        ...

    def by_tracking_number(self, carrier: str, tracking_number: str) -> Shipment:
        """Load the shipment a carrier knows by this tracking number.

        Raises:
            NotFound: No shipment with that carrier and tracking number.

        """
        ...

    def for_order(self, order_id: str) -> list[Shipment]:
        """Every shipment of an order, by sequence (empty if none)."""
        ...

    def save(self, shipment: Shipment, expected_version: int) -> None:
        """Store ``shipment`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """


class AfterSalesRepository(Protocol):
    """Stores each order's after-sales record with optimistic concurrency.

    Contract: :class:`ecommerce_core.testing.contracts.AfterSalesRepositoryContract`.
    """

    def add(self, record: OrderAfterSales) -> None:
        """Store the first after-sales record of an order.

        Raises:
            Conflict: The order has a record already; nothing was stored.

        """

    def get(self, order_id: str) -> OrderAfterSales:
        """Load the after-sales record of an order; the caller owns the copy.

        Raises:
            NotFound: The order has no after-sales record.

        """
        ...

    def save(self, record: OrderAfterSales, expected_version: int) -> None:
        """Store ``record`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """


class IdempotencyStore(Protocol):
    """Remembers the result of each keyed request, so a retried request gets the same answer.

    At-least-once inputs (a client retrying a command, a payment notification delivered
    twice) carry an idempotency key and a *fingerprint* of their payload (a hash of the
    request, say). The first request under a key does the work and remembers its result; a
    repeat with the same fingerprint gets that result back without doing the work again; a
    repeat with a *different* fingerprint is a client bug (two requests sharing one key) and
    is refused. Results are opaque text (JSON, typically) that the host encodes.

    Contract: :class:`ecommerce_core.testing.contracts.IdempotencyStoreContract`.
    """

    def remember(self, key: str, fingerprint: str, result: str) -> str:
        """Remember ``result`` under ``key``, unless the key already has one.

        Returns:
            The result that stands for this key: ``result`` if the key was new, else the
            result remembered first (a racing request that got there first wins).

        Raises:
            IdempotencyConflict: The key was remembered with another fingerprint; nothing
                changed.
            InvalidInput: An empty key or fingerprint, or a result that is not a ``str``.

        """
        ...

    def lookup(self, key: str, fingerprint: str) -> str | None:
        """The result remembered under ``key``, or ``None`` if the key is new.

        Raises:
            IdempotencyConflict: The key was remembered with another fingerprint.
            InvalidInput: An empty key or fingerprint.

        """
        ...


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


class TeamRepository(Protocol):
    """Stores team-purchase teams (拼团) with optimistic concurrency, like orders.

    Contract: :class:`ecommerce_core.testing.contracts.TeamRepositoryContract`.
    """

    def add(self, team: Team) -> None:
        """Store a new team.

        Raises:
            Conflict: A team with this id is already stored.

        """

    def get(self, team_id: str) -> Team:
        """Load a team; the caller owns the returned object until :meth:`save`.

        Raises:
            NotFound: No such team.

        """
        ...

    def save(self, team: Team, expected_version: int) -> None:
        """Store ``team`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of forming teams whose deadline is at or before ``now``, earliest first."""
        ...

    def team_of(self, order_id: str) -> str | None:
        """The id of the team a member's order took a place in, or ``None``."""
        ...


class DrawRoundRepository(Protocol):
    """Stores lucky-draw rounds (夺宝) with optimistic concurrency, like orders.

    Contract: :class:`ecommerce_core.testing.contracts.DrawRoundRepositoryContract`.
    """

    def add(self, draw_round: DrawRound) -> None:
        """Store a new round.

        Raises:
            Conflict: A round with this id is already stored.

        """

    def get(self, round_id: str) -> DrawRound:
        """Load a round; the caller owns the returned object until :meth:`save`.

        Raises:
            NotFound: No such round.

        """
        ...

    def save(self, draw_round: DrawRound, expected_version: int) -> None:
        """Store ``draw_round`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of rounds with something to do at ``now``, earliest first.

        A round is due when its :attr:`~ecommerce_core.campaigns.lucky_draw.DrawRound.due_at`
        (the sell-by while selling, the address deadline once drawn) is at or before ``now``,
        and, from its sell-out on, while it is sold out and not drawn yet (its public number
        may have come out since): such a round is ordered by its sell-out time.
        """
        ...

    def round_of(self, order_id: str) -> str | None:
        """The id of the round a share order reserved shares in, or ``None``."""
        ...


class GroupBuyRepository(Protocol):
    """Stores group-buy campaigns (团购) with optimistic concurrency, like orders.

    Contract: :class:`ecommerce_core.testing.contracts.GroupBuyRepositoryContract`.
    """

    def add(self, campaign: GroupBuy) -> None:
        """Store a new campaign.

        Raises:
            Conflict: A campaign with this id is already stored.

        """

    def get(self, campaign_id: str) -> GroupBuy:
        """Load a campaign; the caller owns the returned object until :meth:`save`.

        Raises:
            NotFound: No such campaign.

        """
        ...

    def save(self, campaign: GroupBuy, expected_version: int) -> None:
        """Store ``campaign`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of running campaigns whose window ends at or before ``now``, earliest first."""
        ...


class RebateRepository(Protocol):
    """Stores rebates (返利) with optimistic concurrency, like orders.

    Contract: :class:`ecommerce_core.testing.contracts.RebateRepositoryContract`.
    """

    def add(self, rebate: Rebate) -> None:
        """Store a new rebate.

        Raises:
            Conflict: A rebate with this id is already stored.

        """

    def get(self, rebate_id: str) -> Rebate:
        """Load a rebate; the caller owns the returned object until :meth:`save`.

        Raises:
            NotFound: No such rebate.

        """
        ...

    def save(self, rebate: Rebate, expected_version: int) -> None:
        """Store ``rebate`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of frozen rebates whose thaw time is at or before ``now``, earliest first."""
        ...

    def for_order(self, order_id: str) -> list[str]:
        """The ids of the rebates granted on an order, sorted."""
        ...


class AuctionRepository(Protocol):
    """Stores auctions (竞拍) with optimistic concurrency, like orders.

    Contract: :class:`ecommerce_core.testing.contracts.AuctionRepositoryContract`.
    """

    def add(self, auction: Auction) -> None:
        """Store a new auction.

        Raises:
            Conflict: An auction with this id is already stored.

        """

    def get(self, auction_id: str) -> Auction:
        """Load an auction; the caller owns the returned object until :meth:`save`.

        Raises:
            NotFound: No such auction.

        """
        ...

    def save(self, auction: Auction, expected_version: int) -> None:
        """Store ``auction`` if the stored version is still ``expected_version``.

        Raises:
            VersionConflict: Someone else saved it since (or it was never added).

        """

    def due(self, now: datetime, limit: int = 1000) -> list[str]:
        """Ids of auctions with a deadline (the end, or a payment deadline) at or before ``now``.

        Earliest first; a finished auction (sold, unsold, unpaid) is never due.
        """
        ...
