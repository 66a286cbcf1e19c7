"""Who runs a command: every command names its actor.

An :class:`Actor` is a kind (buyer, merchant, platform, carrier, system) and an id. Aggregates
check both: only *the order's* buyer confirms its receipt, only *its* merchant ships it.

Example:
    >>> Actor.buyer("b-1")
    Actor(kind=<ActorKind.BUYER: 'buyer'>, id='b-1')
    >>> str(Actor.system())
    'system:scheduler'

"""

from __future__ import annotations

import enum

import attrs

from ecommerce_core._validation import to_member
from ecommerce_core.errors import InvalidInput

__all__ = [
    "Actor",
    "ActorKind",
]


class ActorKind(enum.StrEnum):
    """The kinds of actor that run commands."""

    BUYER = "buyer"
    MERCHANT = "merchant"
    PLATFORM = "platform"
    CARRIER = "carrier"
    SYSTEM = "system"


def _to_kind(value: ActorKind | str) -> ActorKind:
    # A member passes through; calling the enum (EnumType.__call__, Python code) costs about
    # a microsecond on every Actor built. Anything else converts, or is InvalidInput.
    return value if type(value) is ActorKind else to_member(ActorKind, value, "kind")


def _check_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("actor id", value, "must be a non-empty string")


@attrs.frozen
class Actor:
    """A party that runs a command.

    Attributes:
        kind: Buyer, merchant, platform (operator staff), carrier or system (timers).
        id: The party's id in the host application.
        label: ``"kind:id"``, what ``str()`` gives and events record as their actor; built
            once with the actor, not an argument.

    """

    kind: ActorKind = attrs.field(converter=_to_kind)
    id: str = attrs.field(validator=_check_id)
    label: str = attrs.field(init=False, repr=False, eq=False, order=False, hash=False)

    def __attrs_post_init__(self) -> None:
        # Every event an actor causes records its label: built once here, not per event. A
        # StrEnum formats as its value, without .value's lookup.
        object.__setattr__(self, "label", f"{self.kind}:{self.id}")

    @classmethod
    def buyer(cls, buyer_id: str) -> Actor:
        """The buyer with this id."""
        return cls(ActorKind.BUYER, buyer_id)

    @classmethod
    def merchant(cls, merchant_id: str) -> Actor:
        """The merchant with this id."""
        return cls(ActorKind.MERCHANT, merchant_id)

    @classmethod
    def platform(cls, staff_id: str = "operator") -> Actor:
        """The platform operator (customer service, arbitration)."""
        return cls(ActorKind.PLATFORM, staff_id)

    @classmethod
    def carrier(cls, carrier_id: str) -> Actor:
        """A third-party carrier reporting on a parcel."""
        return cls(ActorKind.CARRIER, carrier_id)

    @classmethod
    def system(cls, name: str = "scheduler") -> Actor:
        """The system itself: timers, deadlines, payment notifications."""
        return cls(ActorKind.SYSTEM, name)

    def __str__(self) -> str:
        return self.label
