"""Checks shared by the domain modules' value objects (private)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TypeVar

import attrs

from ecommerce_core.errors import DefinitionError, InvalidInput

_E = TypeVar("_E", bound=Enum)


def text(field: str, value: object, max_length: int = 200) -> str:
    """Return ``value`` if it is a non-empty string of at most ``max_length``, else raise."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidInput(field, value[:20] + "...", f"longer than {max_length} characters")
    return value


def check_text(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    """An attrs validator: a non-empty string."""
    text(attribute.name, value)


def check_units(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    """An attrs validator: a whole number of units, at least 1 (not a bool)."""
    if type(value) is not int or value < 1:
        raise InvalidInput(attribute.name, value, "must be a whole number of at least 1")


def check_aware(_: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    """An attrs validator: a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(attribute.name, value, "must be a timezone-aware datetime")


def to_member(kind: type[_E], value: object, field: str, *, definition: str | None = None) -> _E:
    """``value`` as a member of ``kind`` (from the member or its value), for attrs converters.

    Anything else raises a typed error naming ``field`` and the values allowed: an
    :class:`InvalidInput`, or with ``definition`` (the class holding the field) a
    :class:`DefinitionError`, for a field of a policy or another definition. Both are
    :class:`ValueError` s, as the bare enum call raised before.
    """
    if type(value) is kind:
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        reason = f"must be one of {allowed} (a {kind.__name__})"
        if definition is not None:
            raise DefinitionError(definition, [f"{field} is {value!r}, {reason}"]) from None
        raise InvalidInput(field, value, reason) from None
