"""Private helpers the sales-mode and auction aggregates share: events, actors, input checks.

Not public API: the aggregates built on it are. Every check raises from the one error tree and
runs *before* a command changes anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import CurrencyMismatch, Forbidden, InvalidInput
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import check_now

__all__ = [
    "EventRecorder",
    "authorize",
    "check_now",
    "money",
    "positive_count",
    "positive_duration",
    "text",
]


class EventRecorder:
    """Mixin for aggregates with ``id``, ``version`` and ``events``: record and collect events.

    Every accepted command records one event per fact, each raising the version by one.
    (No ``__slots__`` here: mypy cannot see attributes that a slotted attrs subclass declares.)
    """

    id: str
    version: int
    events: tuple[DomainEvent, ...]

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor | str, **fields: Any
    ) -> None:
        self.version += 1
        event = event_type(
            aggregate_id=self.id, version=self.version, occurred_at=now, actor=str(actor), **fields
        )
        self.events = (*self.events, event)


def authorize(
    actor: object,
    kinds: Collection[ActorKind],
    command: str,
    aggregate_id: str,
    *,
    buyer_id: str | None = None,
    merchant_id: str | None = None,
) -> Actor:
    """Check that ``actor`` may run ``command``; a buyer or merchant must be the one named.

    Raises:
        InvalidInput: ``actor`` is not an :class:`~ecommerce_core.actors.Actor`.
        Forbidden: Its kind may not run the command, or it is another buyer or merchant.

    """
    if not isinstance(actor, Actor):
        raise InvalidInput("actor", actor, "must be an Actor")
    if actor.kind not in kinds:
        raise Forbidden(str(actor), command, aggregate_id, f"a {actor.kind} may not {command}")
    if actor.kind is ActorKind.BUYER and buyer_id is not None and actor.id != buyer_id:
        raise Forbidden(str(actor), command, aggregate_id, f"only {buyer_id!r} may {command}")
    if actor.kind is ActorKind.MERCHANT and merchant_id is not None and actor.id != merchant_id:
        raise Forbidden(str(actor), command, aggregate_id, "it is another merchant's")
    return actor


def check_creation(
    actor: object,
    now: object,
    *,
    ids: Mapping[str, object],
    merchant_id: str,
    terms: object,
    terms_type: type,
) -> None:
    """The checks every merchant-created campaign runs before it exists.

    The actor is the merchant named (or the platform), ``now`` is an aware time, every id in
    ``ids`` (``{"auction_id": ..., "merchant_id": ..., "sku": ...}``) is a non-empty string and
    ``terms`` is a ``terms_type``.

    Raises:
        InvalidInput: A bad actor, time, id or terms.
        Forbidden: Not a merchant or the platform, or another merchant.

    """
    first_id = next(iter(ids.values()))
    authorize(
        actor,
        {ActorKind.MERCHANT, ActorKind.PLATFORM},
        "create",
        first_id if isinstance(first_id, str) else "",
        merchant_id=merchant_id,
    )
    check_now(now)
    for field, value in ids.items():
        text(field, value)
    if not isinstance(terms, terms_type):
        raise InvalidInput("terms", terms, f"must be {terms_type.__name__}")


def text(field: str, value: object, max_length: int = 200) -> str:
    """Return ``value`` if it is a non-blank string of at most ``max_length`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidInput(field, value[:20] + "...", f"longer than {max_length} characters")
    return value


def positive_count(field: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) of at least 1."""
    if type(value) is not int:
        raise InvalidInput(field, value, "must be a whole number")
    if value < 1:
        raise InvalidInput(field, value, "must be at least 1")
    return value


def positive_duration(field: str, value: object) -> timedelta:
    """Return ``value`` if it is a positive ``timedelta``."""
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInput(field, value, "must be a positive timedelta")
    return value


def money(field: str, value: object, currency: str, *, positive: bool = False) -> Money:
    """Return ``value`` if it is :class:`Money` in ``currency``, not negative (or positive)."""
    if not isinstance(value, Money):
        raise InvalidInput(field, value, "must be Money")
    if value.currency != currency:
        raise CurrencyMismatch(currency, value.currency)
    if value.is_negative or (positive and value.is_zero):
        raise InvalidInput(field, value, "must be positive" if positive else "must not be negative")
    return value
