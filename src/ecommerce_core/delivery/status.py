"""Where an order's units are: its shipments folded into per-line facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

import attrs

from ecommerce_core.delivery.shipments import Shipment, ShipmentPurpose
from ecommerce_core.errors import (
    InvalidInput,
)
from ecommerce_core.orders import Order

__all__ = [
    "DeliveredBatch",
    "FulfilmentStatus",
    "LineFulfilment",
    "fulfilment_status",
]


@attrs.frozen
class DeliveredBatch:
    """Units of a line that reached the buyer together.

    Attributes:
        at: When they were delivered.
        quantity: How many.

    """

    at: datetime
    quantity: int


@attrs.frozen
class LineFulfilment:
    """Where the units of one order line are.

    Attributes:
        line_id: The order line.
        ordered: Units ordered.
        live: Units in shipments on their way or delivered (originals and reshipments).
        delivered: The delivered units, batch by batch, oldest first.
        failed: Units in shipments lost, damaged, refused or sent back.
        packed: Units in any shipment at all (live or failed).
        original: Units sent in original shipments (the stock committed at payment);
            reshipments draw new stock.

    """

    line_id: str
    ordered: int
    live: int
    delivered: tuple[DeliveredBatch, ...]
    failed: int
    packed: int
    original: int

    @property
    def delivered_units(self) -> int:
        """Units the buyer has received."""
        return sum(batch.quantity for batch in self.delivered)

    @property
    def undelivered_units(self) -> int:
        """Units ordered and not (yet) received."""
        return self.ordered - self.delivered_units


@attrs.frozen
class FulfilmentStatus:
    """What an order's shipments add up to; see :func:`fulfilment_status`.

    Attributes:
        order_id: The order.
        lines: Per line id, where its units are.
        withdrawn: Per line id, units the merchant no longer owes (refunded undelivered).
        exceptions: Ids of shipments in a delivery problem still unfolding.

    """

    order_id: str
    lines: Mapping[str, LineFulfilment]
    withdrawn: Mapping[str, int]
    exceptions: tuple[str, ...]

    def line(self, line_id: str) -> LineFulfilment:
        """The fulfilment of one line.

        Raises:
            InvalidInput: The order has no such line.

        """
        try:
            return self.lines[line_id]
        except KeyError:
            raise InvalidInput("line_id", line_id, "the order has no such line") from None

    def shippable(self, line_id: str) -> int:
        """Units of the line still to ship: ordered, less live and withdrawn units."""
        line = self.line(line_id)
        return max(0, line.ordered - line.live - self.withdrawn.get(line_id, 0))

    @property
    def outstanding(self) -> int:
        """Units owed to the buyer that no live shipment carries (lost and not reshipped)."""
        return sum(self.shippable(line_id) for line_id in self.lines)

    @property
    def fully_shipped(self) -> bool:
        """Whether every unit owed is in a live shipment (and at least one unit is)."""
        return self.outstanding == 0 and any(line.live for line in self.lines.values())

    @property
    def fully_delivered(self) -> bool:
        """Whether every unit owed has been delivered (and at least one unit was)."""
        return all(
            line.delivered_units + self.withdrawn.get(line.line_id, 0) >= line.ordered
            for line in self.lines.values()
        ) and any(line.delivered for line in self.lines.values())

    @property
    def delivery_problem(self) -> str | None:
        """Why the auto-confirm clock should wait for delivery, or ``None``."""
        if self.exceptions:
            return f"delivery problem on shipment {self.exceptions[0]}"
        if self.outstanding and any(line.packed for line in self.lines.values()):
            return f"{self.outstanding} units lost or sent back, not yet reshipped or refunded"
        return None


def fulfilment_status(
    order: Order, shipments: Sequence[Shipment], withdrawn: Mapping[str, int] | None = None
) -> FulfilmentStatus:
    """Fold an order's shipments into where its units are.

    Replacement shipments (exchanges) are left out: they replace units the buyer sent back,
    which after-sales accounts for.

    Args:
        order: The order.
        shipments: Its shipments (others are refused).
        withdrawn: Per line, units refunded before delivery, so no longer owed.

    Raises:
        InvalidInput: A shipment of another order.

    """
    live: dict[str, int] = dict.fromkeys((line.line_id for line in order.lines), 0)
    failed = dict(live)
    packed = dict(live)
    original = dict(live)
    delivered: dict[str, list[DeliveredBatch]] = {line.line_id: [] for line in order.lines}
    exceptions: list[str] = []
    for shipment in sorted(shipments, key=lambda s: s.sequence):
        if shipment.order_id != order.id:
            raise InvalidInput("shipments", shipment.id, f"not a shipment of {order.id!r}")
        if shipment.in_exception:
            exceptions.append(shipment.id)
        if shipment.purpose is ShipmentPurpose.REPLACEMENT:
            continue
        for item in shipment.lines:
            packed[item.line_id] += item.quantity
            if shipment.purpose is ShipmentPurpose.ORIGINAL:
                original[item.line_id] += item.quantity
            if shipment.has_failed:
                failed[item.line_id] += item.quantity
                continue
            live[item.line_id] += item.quantity
            if shipment.delivered_at is not None:
                delivered[item.line_id].append(DeliveredBatch(shipment.delivered_at, item.quantity))
    lines = {
        line.line_id: LineFulfilment(
            line_id=line.line_id,
            ordered=line.quantity,
            live=live[line.line_id],
            delivered=tuple(sorted(delivered[line.line_id], key=lambda b: b.at)),
            failed=failed[line.line_id],
            packed=packed[line.line_id],
            original=original[line.line_id],
        )
        for line in order.lines
    }
    return FulfilmentStatus(
        order_id=order.id,
        lines=MappingProxyType(lines),
        withdrawn=MappingProxyType(dict(withdrawn or {})),
        exceptions=tuple(exceptions),
    )
