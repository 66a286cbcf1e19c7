"""A JSON codec for orders, other aggregates and domain events, for adapters storing text.

Values are written so that any database, log or person can read them back:

- :class:`~ecommerce_core.money.Money` as ``{"minor": 7600, "currency": "CNY"}`` (exact
  integer minor units, never a float);
- ``datetime`` as ISO 8601 *with* its UTC offset (``"2026-01-01T09:00:00+00:00"``); a
  ``zoneinfo`` time comes back as the same instant with a fixed offset;
- ``timedelta`` as whole microseconds, ``Decimal`` as a string, enums by value;
- attrs value objects (order lines, deadlines, payments, ...) as objects of their fields;
- tuples of one type as arrays, fixed-length tuples (``tuple[str, Money]``) as arrays of their
  items, mappings with text keys as objects (a ``Mapping`` reads back read-only, a ``dict``
  as a ``dict``);
- an order's :class:`~ecommerce_core.process.Process` by *name*, resolved on the way back
  through a processes mapping (:data:`~ecommerce_core.processes.PROCESSES` by default);
- an event by its type *name* plus its fields; the name is resolved through a registry built
  from every :class:`~ecommerce_core.events.DomainEvent` subclass defined so far.

Fields are found through attrs and their type hints, so a field added to
:class:`~ecommerce_core.orders.Order` or a new event class is stored without touching this
module, as long as its type is one of the above (anything else is refused when the codec
first meets the class, with a :class:`~ecommerce_core.errors.DefinitionError`). A field added
with a default reads back as that default from rows written before it existed.

Any other attrs aggregate (a payment, a shipment, a team, an auction) is stored by the same
rules with :meth:`JsonCodec.encode_aggregate` and :meth:`JsonCodec.decode_aggregate`, which
keep its class name so a subclass reads back as itself; :meth:`JsonCodec.encode_value` and
:meth:`JsonCodec.decode_value` do the same for any value of a declared type.

Example:
    >>> from ecommerce_core.testing import make_order
    >>> codec = JsonCodec()
    >>> order = make_order()
    >>> codec.decode_order(codec.encode_order(order)).total == order.total
    True
    >>> name, payload = codec.encode_event(order.events[0])
    >>> codec.decode_event(name, payload) == order.events[0]
    True

"""

from __future__ import annotations

import datetime as dt
import enum
import json
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs

from ecommerce_core._slots import is_twin
from ecommerce_core.errors import DefinitionError, InvalidInput
from ecommerce_core.events import DomainEvent
from ecommerce_core.money import Money
from ecommerce_core.orders import Order
from ecommerce_core.process import Process
from ecommerce_core.processes import PROCESSES

__all__ = [
    "JsonCodec",
    "event_types",
]

_Convert = Callable[[Any], Any]
_T = TypeVar("_T")
_NOT_STORED: Final = frozenset({"events"})  # an order's pending events go to the outbox
_MICROSECOND: Final = dt.timedelta(microseconds=1)


class _Unsupported(Exception):  # an internal signal, never escapes this module
    """A type the codec cannot store."""


def event_types() -> dict[str, type[DomainEvent]]:
    """Every concrete :class:`DomainEvent` subclass defined so far, by class name.

    Raises:
        DefinitionError: Two event classes share a name, so a stored name would be ambiguous.

    """
    found: dict[str, type[DomainEvent]] = {}
    clashes: list[str] = []
    pending = list(DomainEvent.__subclasses__())
    while pending:
        cls = pending.pop()
        if is_twin(cls):  # a builder's stand-in for its class, never an event type of its own
            continue
        pending.extend(cls.__subclasses__())
        other = found.setdefault(cls.__name__, cls)
        if other is cls:
            continue
        kept = _live(cls, other)
        if kept is None:
            clashes.append(
                f"{cls.__module__}.{cls.__qualname__} and {other.__module__}.{other.__qualname__}"
                f" are both named {cls.__name__!r}"
            )
        else:
            found[cls.__name__] = kept
    if clashes:
        raise DefinitionError("domain events", sorted(clashes))
    return found


def _live(one: type[Any], other: type[Any]) -> type[Any] | None:
    """Of two classes of one name, the one in use; ``None`` if both are (a real clash).

    ``attrs`` builds a slotted class as a *new* class; the class it replaced stays among the
    base's subclasses until the garbage collector frees it. It has the same module and
    qualified name, but it is not what the module holds, and it has no ``__slots__``.
    """
    if (one.__module__, one.__qualname__) != (other.__module__, other.__qualname__):
        return None
    held: Any = sys.modules.get(one.__module__)
    for part in one.__qualname__.split("."):
        held = getattr(held, part, None)
    if held is one or held is other:
        return one if held is one else other
    slotted = [cls for cls in (one, other) if "__slots__" in vars(cls)]
    return slotted[0] if len(slotted) == 1 else None


class JsonCodec:
    """Turns orders and events into JSON text and back.

    Build one per store and share it: converters are compiled once per class and cached.

    Args:
        processes: Where stored process names are looked up.
        events: The event classes to read and write, by name; ``None`` (the default) uses
            :func:`event_types`, refreshed when an unknown name is met, so event classes
            defined later (by a module imported later) are found too.

    Raises:
        DefinitionError: Two event classes share a name.

    """

    def __init__(
        self,
        processes: Mapping[str, Process] = PROCESSES,
        events: Iterable[type[DomainEvent]] | None = None,
    ) -> None:
        self._processes = processes
        self._fixed_events = events is not None
        self._events: dict[str, type[DomainEvent]] = (
            event_types() if events is None else {cls.__name__: cls for cls in events}
        )
        self._encoders: dict[Any, _Convert] = {}
        self._decoders: dict[Any, _Convert] = {}
        self._dumps = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), check_circular=False
        ).encode
        self._loads = json.loads

    # ----------------------------------------------------------------- orders

    def encode_order(self, order: Order) -> str:
        """The order as JSON text: every stored field, the process by name, no events."""
        return self._dumps(self._encoder(Order)(order))

    def decode_order(self, text: str) -> Order:
        """The order stored as ``text``, with no pending events.

        Raises:
            DefinitionError: It follows a process missing from the processes mapping.

        """
        order: Order = self._decoder(Order)(self._loads(text))
        return order

    # ----------------------------------------------------------------- events

    def encode_event(self, event: DomainEvent) -> tuple[str, str]:
        """The event's type name and its fields as JSON text.

        Raises:
            DefinitionError: Its class is not among the codec's events (only with a fixed
                ``events`` list), or has a field of a type the codec cannot store.

        """
        name = type(event).__name__
        if self._events.get(name) is not type(event):
            self._refresh()
            if self._events.get(name) is not type(event):
                raise DefinitionError(
                    "event codec", [f"event class {name!r} is not among the codec's events"]
                )
        return name, self._dumps(self._encoder(type(event))(event))

    def decode_event(self, name: str, text: str) -> DomainEvent:
        """The event of type ``name`` stored as ``text``.

        Raises:
            DefinitionError: No event class of that name is known.

        """
        cls = self._events.get(name)
        if cls is None:
            self._refresh()
            cls = self._events.get(name)
            if cls is None:
                raise DefinitionError(
                    "event codec",
                    [
                        (
                            f"no event class is named {name!r}: import the module defining it "
                            "before reading events"
                        )
                    ],
                )
        event: DomainEvent = self._decoder(cls)(self._loads(text))
        return event

    def _refresh(self) -> None:
        if not self._fixed_events:
            self._events = event_types()

    # ----------------------------------------------------------------- aggregates and values

    def encode_aggregate(self, aggregate: object) -> tuple[str, str]:
        """The aggregate's class name and its stored fields as JSON text.

        Any attrs aggregate is written by the rules above: its ``init`` fields (those set by
        its constructor), by their type hints; its pending ``events`` are not stored, nor are
        fields outside ``__init__`` (caches, which the class must rebuild itself when
        constructed). The class *name* lets :meth:`decode_aggregate` read back the right
        subclass (a :class:`~ecommerce_core.payments.CodPayment` stored as a payment).

        Raises:
            InvalidInput: Not an instance of an attrs class.
            DefinitionError: Its class has a field of a type the codec cannot store.

        """
        cls = type(aggregate)
        if not attrs.has(cls):
            raise InvalidInput("aggregate", aggregate, "must be an instance of an attrs class")
        encode = self._encoders.get(("aggregate", cls))
        if encode is None:
            encode = self._encoders["aggregate", cls] = self._compile_class(cls, encode=True)
        return cls.__qualname__, self._dumps(encode(aggregate))

    def decode_aggregate(self, base: type[_T], name: str, text: str) -> _T:
        """The aggregate of class ``name`` (``base`` or an attrs subclass of it) in ``text``.

        Fields missing from ``text`` (added to the class after it was written) take their
        defaults.

        Raises:
            DefinitionError: Neither ``base`` nor any subclass of it defined so far has that
                name.

        """
        decode = self._decoders.get(("aggregate", base, name))
        if decode is None:
            cls = _subclass_named(base, name)
            if cls is None:
                raise DefinitionError(
                    "JSON codec",
                    [
                        (
                            f"no subclass of {base.__qualname__} is named {name!r}: import "
                            "the module defining it before reading"
                        )
                    ],
                )
            decode = self._decoders["aggregate", base, name] = self._compile_class(
                cls, encode=False
            )
        aggregate: _T = decode(self._loads(text))
        return aggregate

    def encode_value(self, tp: Any, value: object) -> str:
        """``value``, declared as type ``tp`` (``Posting``, ``tuple[LimitClaim, ...]``), as JSON.

        Raises:
            DefinitionError: ``tp`` is a type the codec cannot store.

        """
        return self._dumps(self._encoder(tp)(value))

    def decode_value(self, tp: Any, text: str) -> Any:
        """The value of type ``tp`` that :meth:`encode_value` wrote as ``text``.

        Raises:
            DefinitionError: ``tp`` is a type the codec cannot store.

        """
        return self._decoder(tp)(self._loads(text))

    def _compile_class(self, cls: type[Any], *, encode: bool) -> _Convert:
        try:
            return self._attrs_class(cls, encode=encode)
        except _Unsupported as problem:
            raise DefinitionError("JSON codec", [f"{problem} cannot be stored as JSON"]) from None

    # ----------------------------------------------------------------- compiling

    def _encoder(self, tp: Any) -> _Convert:
        found = self._encoders.get(tp)
        if found is None:
            found = self._encoders[tp] = self._compile(tp, encode=True)
        return found

    def _decoder(self, tp: Any) -> _Convert:
        found = self._decoders.get(tp)
        if found is None:
            found = self._decoders[tp] = self._compile(tp, encode=False)
        return found

    def _compile(self, tp: Any, *, encode: bool) -> _Convert:
        try:
            return self._convert(tp, encode=encode)
        except _Unsupported as problem:
            raise DefinitionError("JSON codec", [f"{problem} cannot be stored as JSON"]) from None

    def _convert(self, tp: Any, *, encode: bool) -> _Convert:  # noqa: PLR0911  # one case per type
        if tp in (str, int, bool) or tp is type(None):
            return _same
        if tp is Money:
            return _encode_money if encode else _decode_money
        if tp is dt.datetime:
            return _encode_datetime if encode else _decode_datetime
        if tp is dt.timedelta:
            return _encode_timedelta if encode else _decode_timedelta
        if tp is Decimal:
            return str if encode else Decimal
        if tp is Process:
            return _process_name if encode else self._process
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_value if encode else tp
        if isinstance(tp, type) and attrs.has(tp):
            return self._attrs_family(tp, encode=encode)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            return self._optional(tp, args, encode=encode)
        if origin in (tuple, list, frozenset) and (
            origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)  # noqa: PLR2004
        ):
            item = self._convert(args[0], encode=encode)
            if encode:
                return lambda value: [item(each) for each in value]
            return lambda value: origin(item(each) for each in value)
        if origin is tuple and args and Ellipsis not in args:
            return self._fixed_tuple(args, encode=encode)
        if origin in (dict, Mapping, typing.Mapping) and args and args[0] is str:
            item = self._convert(args[1], encode=encode)
            if encode:
                return lambda value: {key: item(each) for key, each in value.items()}
            if origin is dict:
                return lambda value: {key: item(each) for key, each in value.items()}
            # A read-only mapping reads back read-only, as the aggregates keep it.
            return lambda value: MappingProxyType({key: item(each) for key, each in value.items()})
        raise _Unsupported(f"type {_name(tp)}")

    def _fixed_tuple(self, args: tuple[Any, ...], *, encode: bool) -> _Convert:
        """A tuple of fixed length (``tuple[str, Money]``), written as a JSON array."""
        items = [self._convert(arg, encode=encode) for arg in args]
        if encode:
            return lambda value: [convert(each) for convert, each in zip(items, value, strict=True)]
        return lambda value: tuple(
            convert(each) for convert, each in zip(items, value, strict=True)
        )

    def _optional(self, tp: Any, args: tuple[Any, ...], *, encode: bool) -> _Convert:
        present = [arg for arg in args if arg is not type(None)]
        if len(present) != 1 or len(args) != 2:  # noqa: PLR2004  # X | None only
            raise _Unsupported(f"the union {_name(tp)}")
        inner = self._convert(present[0], encode=encode)
        return lambda value: None if value is None else inner(value)

    def _attrs_family(self, cls: type[Any], *, encode: bool) -> _Convert:
        """An attrs class whose value may be an attrs subclass of it.

        A subclass value (a ``PausedDeadline`` where a ``Deadline`` is declared) is written with
        its class name under ``"__class__"`` and read back as that subclass; data without the
        tag reads back as ``cls``, as before.
        """
        base = self._attrs_class(cls, encode=encode)
        family: dict[str, type[Any]] = {}
        pending = list(cls.__subclasses__())
        while pending:
            sub = pending.pop()
            if attrs.has(sub):
                family[sub.__qualname__] = sub
            pending.extend(sub.__subclasses__())
        if not family:
            return base
        if encode:

            def encode_any(value: Any) -> Any:
                kind = type(value)
                if kind is cls or kind.__qualname__ not in family:
                    return base(value)
                return {**self._encoder(kind)(value), "__class__": kind.__qualname__}

            return encode_any

        def decode_any(data: dict[str, Any]) -> Any:
            name = data.get("__class__")
            if name not in family:
                return base(data)
            fields = {key: each for key, each in data.items() if key != "__class__"}
            return self._decoder(family[name])(fields)

        return decode_any

    def _attrs_class(self, cls: type[Any], *, encode: bool) -> _Convert:
        hints = typing.get_type_hints(cls)
        fields = [f for f in attrs.fields(cls) if f.init and f.name not in _NOT_STORED]
        plan = []
        for f in fields:
            try:
                plan.append((f.name, f.alias, self._convert(hints[f.name], encode=encode)))
            except _Unsupported as problem:
                raise _Unsupported(f"{cls.__qualname__}.{f.name}: {problem}") from None
        if encode:

            def encode_instance(value: Any) -> dict[str, Any]:
                return {name: convert(getattr(value, name)) for name, _, convert in plan}

            return encode_instance

        def decode_instance(data: dict[str, Any]) -> Any:
            return cls(
                **{alias: convert(data[name]) for name, alias, convert in plan if name in data}
            )

        return decode_instance

    def _process(self, name: str) -> Process:
        try:
            return self._processes[name]
        except KeyError:
            raise DefinitionError(
                "processes",
                [
                    (
                        f"a stored order follows process {name!r}, which is not in the "
                        f"processes mapping (known: {', '.join(sorted(self._processes))}); "
                        "pass one that has it"
                    )
                ],
            ) from None


def _subclass_named(base: type[Any], name: str) -> type[Any] | None:
    """``base`` or the attrs subclass of it named ``name`` (by qualified name), if any."""
    if base.__qualname__ == name:
        return base
    found: type[Any] | None = None
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__qualname__ != name or not attrs.has(cls) or is_twin(cls):
            continue
        found = cls if found is None else (_live(cls, found) or found)
    return found


def _name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def _same(value: Any) -> Any:
    return value


def _encode_money(value: Money) -> dict[str, Any]:
    return {"minor": value.minor, "currency": value.currency}


def _decode_money(data: dict[str, Any]) -> Money:
    return Money(data["minor"], data["currency"])


def _encode_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("datetime", value, "only timezone-aware datetimes are stored")
    return value.isoformat()


def _decode_datetime(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _encode_timedelta(value: dt.timedelta) -> int:
    return value // _MICROSECOND


def _decode_timedelta(micros: int) -> dt.timedelta:
    return micros * _MICROSECOND


def _process_name(process: Process) -> str:
    return process.name


def _enum_value(member: enum.Enum) -> Any:
    return member.value
