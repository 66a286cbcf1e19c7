"""Delivery: the options a buyer picks from, shipments and their carrier tracking.

**Delivery options.** A merchant works with some carriers; the
:class:`~ecommerce_core.ports.Carriers` port lists the :class:`DeliveryOption` s it offers for
an order (carrier, service level, fee, estimated days, cash on delivery or not, courier or
pickup). The buyer picks one at checkout; :func:`choose_delivery_option` checks the choice
against what is offered *at placement* and returns the option whose fee becomes the order's
shipping fee. An option not offered, or offered now on other terms, is refused with
:class:`~ecommerce_core.errors.DeliveryOptionUnavailable`.

**Shipments.** An order ships in one or more :class:`Shipment` s, each carrying some of its lines
(and quantities) under one carrier tracking number. A shipment follows
:data:`SHIPMENT_PROCESS`::

    created ─hand_over→ handed_to_carrier ─transit→ in_transit ─dispatch→ out_for_delivery
        ─deliver→ delivered

with the exceptions ``delayed`` (which moves on again), ``lost``, ``damaged`` and
``refused_by_buyer`` (the last two go ``returned_to_sender``). Carriers skip scans, so every
step may also be reached from earlier ones; no transition ever moves a shipment to a state of
lower :data:`SHIPMENT_PROGRESS`.

**Tracking.** A carrier reports :class:`TrackingEvent` s at least once, late and out of order.
:meth:`Shipment.record` keeps every event, sorted by the carrier's own timestamp, deduplicated
by event id (the same id with another payload is an
:class:`~ecommerce_core.errors.IdempotencyConflict`), and moves the shipment only for an event
newer than the last one that moved it and leading forward; anything else is recorded and
leaves the state alone. So a shipment never moves backwards, whatever order the events come in.

**Facts.** :func:`fulfilment_status` folds an order's shipments into what the rest of the
library needs: per line, the units in live shipments, delivered (with when), and lost or sent
back; whether the order is fully shipped or delivered; and whether a delivery problem should
pause the auto-confirm deadline.
"""

from __future__ import annotations

from ecommerce_core.delivery.options import (
    DeliveryMethod,
    DeliveryOption,
    choose_delivery_option,
)
from ecommerce_core.delivery.shipments import (
    SHIPMENT,
    SHIPMENT_PROCESS,
    SHIPMENT_PROGRESS,
    TRACKING_CLOCK_SKEW,
    Shipment,
    ShipmentCreated,
    ShipmentLine,
    ShipmentPurpose,
    ShipmentReceiptConfirmed,
    ShipmentState,
    TrackingEvent,
    TrackingEventRecorded,
    TrackingOutcome,
    TrackingStatus,
)
from ecommerce_core.delivery.status import (
    DeliveredBatch,
    FulfilmentStatus,
    LineFulfilment,
    fulfilment_status,
)

__all__ = [
    "SHIPMENT",
    "SHIPMENT_PROCESS",
    "SHIPMENT_PROGRESS",
    "TRACKING_CLOCK_SKEW",
    "DeliveredBatch",
    "DeliveryMethod",
    "DeliveryOption",
    "FulfilmentStatus",
    "LineFulfilment",
    "Shipment",
    "ShipmentCreated",
    "ShipmentLine",
    "ShipmentPurpose",
    "ShipmentReceiptConfirmed",
    "ShipmentState",
    "TrackingEvent",
    "TrackingEventRecorded",
    "TrackingOutcome",
    "TrackingStatus",
    "choose_delivery_option",
    "fulfilment_status",
]
