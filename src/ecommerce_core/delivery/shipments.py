"""Shipments: the shipment process, carrier tracking events, and the Shipment aggregate."""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from ecommerce_core._validation import check_aware as _check_aware
from ecommerce_core._validation import check_text as _check_text
from ecommerce_core._validation import check_units as _check_units
from ecommerce_core._validation import text as _text
from ecommerce_core.actors import Actor, ActorKind
from ecommerce_core.errors import (
    Forbidden,
    IdempotencyConflict,
    InvalidInput,
)
from ecommerce_core.events import DomainEvent
from ecommerce_core.orders import Order, check_now
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

__all__ = [
    "EXCEPTION_STATES",
    "FAILED_STATES",
    "LIVE_STATES",
    "SHIPMENT",
    "SHIPMENT_PROCESS",
    "SHIPMENT_PROGRESS",
    "TRACKING_CLOCK_SKEW",
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
]


class ShipmentState:
    """Names of the shipment states (plain strings, as stored)."""

    CREATED: Final = "created"
    HANDED_TO_CARRIER: Final = "handed_to_carrier"
    IN_TRANSIT: Final = "in_transit"
    DELAYED: Final = "delayed"
    OUT_FOR_DELIVERY: Final = "out_for_delivery"
    DELIVERED: Final = "delivered"
    LOST: Final = "lost"
    DAMAGED: Final = "damaged"
    REFUSED_BY_BUYER: Final = "refused_by_buyer"
    RETURNED_TO_SENDER: Final = "returned_to_sender"


class TrackingStatus(enum.StrEnum):
    """What a carrier's tracking event says happened; each names the state it leads to."""

    HANDED_TO_CARRIER = "handed_to_carrier"  # 揽收
    IN_TRANSIT = "in_transit"  # 运输中
    DELAYED = "delayed"  # 延误 / 异常
    OUT_FOR_DELIVERY = "out_for_delivery"  # 派送中
    DELIVERED = "delivered"  # 已签收
    LOST = "lost"  # 丢件
    DAMAGED = "damaged"  # 破损
    REFUSED_BY_BUYER = "refused_by_buyer"  # 拒收
    RETURNED_TO_SENDER = "returned_to_sender"  # 退回


_SS = ShipmentState
_MOVING = (_SS.HANDED_TO_CARRIER, _SS.IN_TRANSIT, _SS.DELAYED, _SS.OUT_FOR_DELIVERY)
# Any carrier report implies the carrier has the parcel: scans are often skipped, so every
# outcome may follow any earlier step, the packed-but-unscanned parcel included.
_UNFINISHED = (_SS.CREATED, *_MOVING)
SHIPMENT: Final = ProcessDefinition(
    name="shipment.standard",
    initial=_SS.CREATED,
    states=(
        State(_SS.CREATED, description="待揽收 packed, waiting for the carrier"),
        State(_SS.HANDED_TO_CARRIER, description="已揽收 the carrier has it"),
        State(_SS.IN_TRANSIT, description="运输中 moving between hubs"),
        State(_SS.DELAYED, description="延误 held up; moves on again"),
        State(_SS.OUT_FOR_DELIVERY, description="派送中 on the courier's round"),
        State(_SS.DELIVERED, final=True, description="已签收 delivered to the buyer"),
        State(_SS.LOST, final=True, description="丢件 lost by the carrier"),
        State(_SS.DAMAGED, description="破损 damaged; going back to the sender"),
        State(_SS.REFUSED_BY_BUYER, description="拒收 the buyer refused it at the door"),
        State(_SS.RETURNED_TO_SENDER, final=True, description="已退回 back with the merchant"),
    ),
    transitions=(
        Transition("hand_over", _SS.CREATED, _SS.HANDED_TO_CARRIER),
        Transition("transit", (_SS.CREATED, _SS.HANDED_TO_CARRIER, _SS.DELAYED), _SS.IN_TRANSIT),
        Transition("delay", (_SS.CREATED, _SS.HANDED_TO_CARRIER, _SS.IN_TRANSIT), _SS.DELAYED),
        Transition(
            "dispatch",
            (_SS.CREATED, _SS.HANDED_TO_CARRIER, _SS.IN_TRANSIT, _SS.DELAYED),
            _SS.OUT_FOR_DELIVERY,
        ),
        Transition("deliver", _UNFINISHED, _SS.DELIVERED),
        Transition("confirm_receipt", _UNFINISHED, _SS.DELIVERED),
        Transition("lose", _UNFINISHED, _SS.LOST),
        Transition("damage", _UNFINISHED, _SS.DAMAGED),
        Transition("refuse", _UNFINISHED, _SS.REFUSED_BY_BUYER),
        Transition(
            "return_to_sender",
            (*_UNFINISHED, _SS.DAMAGED, _SS.REFUSED_BY_BUYER),
            _SS.RETURNED_TO_SENDER,
        ),
    ),
)
"""The shipment process: carrier scans may skip steps (any outcome may follow any earlier
step), but never lead back; a delayed parcel moves on, a damaged or refused one goes back."""

SHIPMENT_PROCESS: Final = Process(SHIPMENT)
""":data:`SHIPMENT`, validated and compiled."""

SHIPMENT_PROGRESS: Final[Mapping[str, int]] = MappingProxyType(
    {
        _SS.CREATED: 0,
        _SS.HANDED_TO_CARRIER: 1,
        _SS.IN_TRANSIT: 2,
        _SS.DELAYED: 2,
        _SS.OUT_FOR_DELIVERY: 3,
        _SS.DELIVERED: 4,
        _SS.DAMAGED: 4,
        _SS.REFUSED_BY_BUYER: 4,
        _SS.LOST: 5,
        _SS.RETURNED_TO_SENDER: 5,
    }
)
"""How far along each shipment state is: no transition leads to a lower number."""

_TRIGGER_FOR: Final[Mapping[TrackingStatus, str]] = MappingProxyType(
    {
        TrackingStatus.HANDED_TO_CARRIER: "hand_over",
        TrackingStatus.IN_TRANSIT: "transit",
        TrackingStatus.DELAYED: "delay",
        TrackingStatus.OUT_FOR_DELIVERY: "dispatch",
        TrackingStatus.DELIVERED: "deliver",
        TrackingStatus.LOST: "lose",
        TrackingStatus.DAMAGED: "damage",
        TrackingStatus.REFUSED_BY_BUYER: "refuse",
        TrackingStatus.RETURNED_TO_SENDER: "return_to_sender",
    }
)

LIVE_STATES: Final = frozenset({_SS.CREATED, *_MOVING, _SS.DELIVERED})
"""States of a shipment still bringing its units to the buyer (or that brought them)."""

FAILED_STATES: Final = frozenset(
    {_SS.LOST, _SS.DAMAGED, _SS.REFUSED_BY_BUYER, _SS.RETURNED_TO_SENDER}
)
"""States of a shipment whose units will not reach the buyer: they must be reshipped or
refunded."""

EXCEPTION_STATES: Final = frozenset({_SS.DELAYED, _SS.DAMAGED, _SS.REFUSED_BY_BUYER})
"""States of a delivery problem still unfolding: they pause the order's auto-confirm clock."""

TRACKING_CLOCK_SKEW: Final = timedelta(minutes=15)
"""How far after the time it is recorded a carrier's event may be dated (clocks drift); an
event dated later is refused, so one bad timestamp cannot freeze a shipment."""


# =========================================================================== values


class ShipmentPurpose(enum.StrEnum):
    """Why a shipment was sent."""

    ORIGINAL = "original"  # the order's goods
    RESHIPMENT = "reshipment"  # units of a lost, damaged or returned shipment, sent again
    REPLACEMENT = "replacement"  # an exchange: new units for returned ones (after-sales)


@attrs.frozen
class ShipmentLine:
    """Units of one order line in a shipment.

    Attributes:
        line_id: The order line.
        quantity: Units of it in the parcel (at least 1).

    """

    line_id: str = attrs.field(validator=_check_text)
    quantity: int = attrs.field(validator=_check_units)


def _to_status(value: TrackingStatus | str) -> TrackingStatus:
    # A member passes through; a carrier's text converts, or is refused as bad input.
    if type(value) is TrackingStatus:
        return value
    try:
        return TrackingStatus(value)
    except ValueError:
        known = ", ".join(TrackingStatus)
        raise InvalidInput("status", value, f"not a tracking status; one of {known}") from None


@attrs.frozen
class TrackingEvent:
    """One tracking report from a carrier, as received (at least once, in any order).

    Attributes:
        event_id: The carrier's id for the report: a repeat is recognised by it.
        carrier: The carrier's id.
        tracking_number: The parcel's tracking number with that carrier.
        status: What happened.
        occurred_at: When it happened, by the carrier's clock.
        location: Where (free text).
        description: The carrier's words (free text).

    Raises:
        InvalidInput: An empty id, carrier or tracking number, a status that is not a
            :class:`TrackingStatus` (or its value), or a naive ``occurred_at``.

    """

    event_id: str = attrs.field(validator=_check_text)
    carrier: str = attrs.field(validator=_check_text)
    tracking_number: str = attrs.field(validator=_check_text)
    status: TrackingStatus = attrs.field(converter=_to_status)
    occurred_at: datetime = attrs.field(validator=_check_aware)
    location: str = ""
    description: str = ""


class TrackingOutcome(enum.StrEnum):
    """What recording a tracking event did."""

    APPLIED = "applied"  # recorded, and the shipment moved
    RECORDED = "recorded"  # recorded in the history; late, repeated or not a step forward
    DUPLICATE = "duplicate"  # seen before with the same payload: nothing changed


# =========================================================================== events


@attrs.frozen(kw_only=True)
class ShipmentCreated(DomainEvent):
    """The merchant packed a parcel for an order.

    Attributes:
        order_id: The order.
        sequence: The shipment's number within the order (1, 2, ...).
        carrier: The carrier's id.
        tracking_number: The carrier's tracking number.
        lines: The lines and units in it.
        purpose: Original, reshipment or replacement.

    """

    order_id: str
    sequence: int
    carrier: str
    tracking_number: str
    lines: tuple[ShipmentLine, ...]
    purpose: ShipmentPurpose


@attrs.frozen(kw_only=True)
class TrackingEventRecorded(DomainEvent):
    """A carrier's tracking event was recorded on a shipment.

    Attributes:
        order_id: The order.
        event_id: The carrier's event id.
        status: What the carrier reported.
        reported_at: When it happened by the carrier's clock.
        applied: Whether it moved the shipment (late and backward events do not).
        state: The shipment's state after it.

    """

    order_id: str
    event_id: str
    status: TrackingStatus
    reported_at: datetime
    applied: bool
    state: str


@attrs.frozen(kw_only=True)
class ShipmentReceiptConfirmed(DomainEvent):
    """Receipt of the order was confirmed while the parcel had no delivery scan yet.

    Attributes:
        order_id: The order.

    """

    order_id: str


# =========================================================================== aggregate


def _history_order(event: TrackingEvent) -> tuple[datetime, str]:
    return event.occurred_at, event.event_id


_RECORDERS: Final = frozenset({ActorKind.CARRIER, ActorKind.PLATFORM, ActorKind.SYSTEM})


@attrs.define(eq=False)
class Shipment:
    """A parcel of some of an order's lines, under one carrier tracking number.

    Create it with :meth:`create`; move it with :meth:`record` (carrier tracking) and
    :meth:`confirm_receipt`. A refused command changes nothing; an accepted one raises the
    version by one and appends one event.

    Attributes:
        id: The shipment id.
        order_id: The order it belongs to.
        sequence: Its number within the order (1, 2, ...), unique per order.
        merchant_id: The merchant who sent it.
        buyer_id: The buyer it goes to.
        carrier: The carrier's id.
        tracking_number: The carrier's tracking number, unique per carrier.
        lines: The lines and units in it.
        purpose: Original, reshipment or replacement.
        reference: For a reshipment, the shipment it replaces; for a replacement, the
            after-sales request; empty otherwise.
        created_at: When it was packed.
        process: The process it follows.
        state: The one stored state.
        version: Raised by one by every accepted command.
        tracking: Every tracking event recorded, sorted by the carrier's timestamp.
        last_moved_at: The carrier's timestamp of the last event that moved it.
        delivered_at: When it was delivered (by the carrier's scan, or receipt confirmation).
        events: Events raised since the last :meth:`collect_events`.

    """

    id: str
    order_id: str
    sequence: int
    merchant_id: str
    buyer_id: str
    carrier: str
    tracking_number: str
    lines: tuple[ShipmentLine, ...]
    purpose: ShipmentPurpose
    reference: str
    created_at: datetime
    process: Process = attrs.field(repr=False)
    state: str
    version: int = 0
    tracking: tuple[TrackingEvent, ...] = ()
    last_moved_at: datetime | None = None
    delivered_at: datetime | None = None
    events: tuple[DomainEvent, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        shipment_id: str,
        order: Order,
        sequence: int,
        actor: Actor,
        carrier: str,
        tracking_number: str,
        lines: Sequence[ShipmentLine],
        now: datetime,
        purpose: ShipmentPurpose = ShipmentPurpose.ORIGINAL,
        reference: str = "",
        process: Process = SHIPMENT_PROCESS,
    ) -> Shipment:
        """Pack a parcel of some of ``order`` 's lines.

        Which units may still ship is the service's business (it sees every shipment of the
        order); this checks the parcel itself.

        Returns:
            The shipment, in its process's initial state, at version 1, with a
            :class:`ShipmentCreated` event.

        Raises:
            Forbidden: Not the order's merchant.
            InvalidInput: No lines, a line twice, a line the order does not have, more units
                of a line than ordered, an empty carrier or tracking number, a bad sequence.

        """
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind is not ActorKind.MERCHANT or actor.id != order.merchant_id:
            raise Forbidden(str(actor), "ship", order.id, "only the order's merchant ships it")
        check_now(now)
        _text("shipment_id", shipment_id)
        _text("carrier", carrier)
        _text("tracking_number", tracking_number)
        if type(sequence) is not int or sequence < 1:
            raise InvalidInput("sequence", sequence, "must be a whole number of at least 1")
        purpose = ShipmentPurpose(purpose)
        parcel = tuple(lines)
        if not parcel:
            raise InvalidInput("lines", parcel, "a shipment carries at least one line")
        ordered = {line.line_id: line.quantity for line in order.lines}
        seen: set[str] = set()
        for item in parcel:
            if not isinstance(item, ShipmentLine):
                raise InvalidInput("lines", item, "each line must be a ShipmentLine")
            if item.line_id in seen:
                raise InvalidInput("lines", item.line_id, "the same line appears twice")
            seen.add(item.line_id)
            if item.line_id not in ordered:
                raise InvalidInput("lines", item.line_id, f"order {order.id!r} has no such line")
            if item.quantity > ordered[item.line_id]:
                raise InvalidInput(
                    "quantity", item.quantity, f"line {item.line_id!r} has {ordered[item.line_id]}"
                )
        shipment = cls(
            id=shipment_id,
            order_id=order.id,
            sequence=sequence,
            merchant_id=order.merchant_id,
            buyer_id=order.buyer_id,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=parcel,
            purpose=purpose,
            reference=reference,
            created_at=now,
            process=process,
            state=process.initial,
        )
        shipment._record(
            ShipmentCreated,
            now,
            actor,
            order_id=order.id,
            sequence=sequence,
            carrier=carrier,
            tracking_number=tracking_number,
            lines=parcel,
            purpose=purpose,
        )
        return shipment

    # ----------------------------------------------------------------- reading

    @property
    def progress(self) -> int:
        """How far along the state is (:data:`SHIPMENT_PROGRESS`)."""
        return SHIPMENT_PROGRESS[self.state]

    @property
    def is_delivered(self) -> bool:
        """Whether the buyer has the parcel."""
        return self.state == ShipmentState.DELIVERED

    @property
    def is_live(self) -> bool:
        """Whether the parcel is on its way to the buyer, or delivered."""
        return self.state in LIVE_STATES

    @property
    def has_failed(self) -> bool:
        """Whether its units will not reach the buyer (lost, damaged, refused, sent back)."""
        return self.state in FAILED_STATES

    @property
    def in_exception(self) -> bool:
        """Whether a delivery problem is unfolding (delayed, damaged, refused)."""
        return self.state in EXCEPTION_STATES

    def quantity(self, line_id: str) -> int:
        """Units of ``line_id`` in the parcel (0 if none)."""
        return sum(item.quantity for item in self.lines if item.line_id == line_id)

    def collect_events(self) -> tuple[DomainEvent, ...]:
        """Return the events raised since the last call, and forget them."""
        events, self.events = self.events, ()
        return events

    # ----------------------------------------------------------------- commands

    def record(
        self, event: TrackingEvent, *, actor: Actor, now: datetime, order_id: str | None = None
    ) -> TrackingOutcome:
        """Record a carrier's tracking event, moving the shipment forward if it may.

        The event joins the history (sorted by its own timestamp). It moves the shipment
        only if it is newer than the last event that moved it, is not the current state
        again, and the process has a transition for it from here; since no transition leads
        back, a late or contradicting event is recorded and changes no state.

        Args:
            event: The carrier's report.
            actor: The carrier that reports it (this shipment's), the platform or the system.
            now: When it is recorded.
            order_id: The order the report claims to be about, when the carrier says.

        Returns:
            :attr:`TrackingOutcome.DUPLICATE` for a repeat (nothing changed),
            :attr:`~TrackingOutcome.APPLIED` if it moved the shipment, else
            :attr:`~TrackingOutcome.RECORDED`.

        Raises:
            Forbidden: Another carrier's actor, a buyer or merchant, or a report about
                another order.
            InvalidInput: Not this parcel's carrier or tracking number, or dated more than
                :data:`TRACKING_CLOCK_SKEW` after ``now``.
            IdempotencyConflict: The event id was recorded with a different payload.

        """
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in _RECORDERS:
            raise Forbidden(str(actor), "record_tracking", self.id, "only carriers report it")
        if actor.kind is ActorKind.CARRIER and actor.id != self.carrier:
            raise Forbidden(
                str(actor), "record_tracking", self.id, f"the parcel is with {self.carrier!r}"
            )
        if order_id is not None and order_id != self.order_id:
            raise Forbidden(
                str(actor),
                "record_tracking",
                self.id,
                f"the shipment belongs to order {self.order_id!r}, not {order_id!r}",
            )
        check_now(now)
        if not isinstance(event, TrackingEvent):
            raise InvalidInput("event", event, "must be a TrackingEvent")
        if (event.carrier, event.tracking_number) != (self.carrier, self.tracking_number):
            raise InvalidInput(
                "tracking_number",
                f"{event.carrier}:{event.tracking_number}",
                f"this shipment is {self.carrier}:{self.tracking_number}",
            )
        for seen in self.tracking:
            if seen.event_id == event.event_id:
                if seen != event:
                    raise IdempotencyConflict(event.event_id, "another tracking payload")
                return TrackingOutcome.DUPLICATE
        if event.occurred_at > now + TRACKING_CLOCK_SKEW:
            raise InvalidInput("occurred_at", event.occurred_at, f"after now ({now}) by too much")
        dest = self._forward(event)
        history = list(self.tracking)
        bisect.insort(history, event, key=_history_order)
        self.tracking = tuple(history)
        if dest is not None:
            self.state = dest
            self.last_moved_at = event.occurred_at
            if dest == ShipmentState.DELIVERED:
                self.delivered_at = event.occurred_at
        self._record(
            TrackingEventRecorded,
            now,
            actor,
            order_id=self.order_id,
            event_id=event.event_id,
            status=event.status,
            reported_at=event.occurred_at,
            applied=dest is not None,
            state=self.state,
        )
        return TrackingOutcome.APPLIED if dest is not None else TrackingOutcome.RECORDED

    def confirm_receipt(self, actor: Actor, *, now: datetime) -> bool:
        """Receipt was confirmed (by the buyer, or the deadline): the parcel is delivered now.

        A parcel still moving (or never scanned) counts as delivered at ``now``.

        Returns:
            ``True`` if the shipment moved to delivered; ``False`` (nothing changed) when it
            was delivered already or failed.

        Raises:
            Forbidden: Not the shipment's buyer, the platform or the system.

        """
        if not isinstance(actor, Actor):
            raise InvalidInput("actor", actor, "must be an Actor")
        if actor.kind not in {ActorKind.BUYER, ActorKind.PLATFORM, ActorKind.SYSTEM} or (
            actor.kind is ActorKind.BUYER and actor.id != self.buyer_id
        ):
            raise Forbidden(str(actor), "confirm_receipt", self.id, "only its buyer confirms it")
        check_now(now)
        dest = self.process.target(self.state, "confirm_receipt", self)
        if dest is None:
            return False
        self.state = dest
        self.delivered_at = now
        self._record(ShipmentReceiptConfirmed, now, actor, order_id=self.order_id)
        return True

    # ----------------------------------------------------------------- internals

    def _forward(self, event: TrackingEvent) -> str | None:
        if self.last_moved_at is not None and event.occurred_at <= self.last_moved_at:
            return None  # late: an older report never moves a newer state
        dest = self.process.target(self.state, _TRIGGER_FOR[event.status], self, event)
        if dest is None or SHIPMENT_PROGRESS[dest] < self.progress:
            return None  # no such step from here (and the process has none leading back)
        return dest

    def _record(
        self, event_type: type[DomainEvent], now: datetime, actor: Actor, **fields: object
    ) -> None:
        self.version += 1
        event = event_type(
            aggregate_id=self.id,
            version=self.version,
            occurred_at=now,
            actor=str(actor),
            **fields,
        )
        self.events = (*self.events, event)
