"""Shared helpers for the parts a CampaignService is made of (one module per mode)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import DefinitionError
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import Order
from ecommerce_core.services.orders import Expired

if TYPE_CHECKING:
    from ecommerce_core.services.payments import PaymentService

_Repository = TypeVar("_Repository")


def required(repository: _Repository | None, field: str, mode: str) -> _Repository:
    """``repository``, or a :class:`DefinitionError` saying the service was built without it.

    Raises:
        DefinitionError: ``repository`` is ``None``: the host did not offer ``mode``.

    """
    if repository is None:
        raise DefinitionError(
            "CampaignService", [f"built without {field}=..., so {mode} is not offered"]
        )
    return repository


SETTLERS: Final = frozenset({ActorKind.SYSTEM, ActorKind.PLATFORM})
"""Who may fire a mode's settling triggers on an order (``team_formed``, ``group_failed``...)."""


def settle(
    service: PaymentService,
    order: Order,
    trigger: str,
    actor: Actor,
    event: type[DomainEvent],
    *,
    now: datetime | None = None,
    **fields: object,
) -> Expired:
    """Fire a mode's settling ``trigger`` on a loaded ``order``, save it and publish its events.

    The order is saved with the version it was loaded at, so a concurrent writer gets
    :class:`~ecommerce_core.errors.VersionConflict` and nothing is published.

    Args:
        service: The service whose orders, clock, policy and publisher are used.
        order: The order, as loaded.
        trigger: The settling trigger (only a system or platform actor may fire one).
        actor: The mode's system actor.
        event: The order event to record, with ``fields``.
        now: The time to fire at (the service's clock by default).
        **fields: The event's own fields.

    Returns:
        What moved, as :meth:`~ecommerce_core.services.OrderService.expire_due` reports it.

    """
    version = order.version
    order.advance(
        trigger,
        actor,
        allowed=SETTLERS,
        now=service.clock.now() if now is None else now,
        policy=service.policy,
        event=event,
        **fields,
    )
    service.orders.save(order, version)
    service.publisher.publish(order.collect_events())
    return Expired(order.id, trigger, order.state)
