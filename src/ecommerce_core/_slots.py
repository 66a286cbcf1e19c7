"""Setting the fields of frozen, slotted attrs instances on hot paths (private).

``attrs`` builds a frozen class's ``__init__`` on ``object.__setattr__``, which looks the field
up by name and checks the type's ``__setattr__`` chain on every call. A slot's own descriptor
sets it directly for about a third of the cost. The hot paths (placing an order, recording an
order's events, pricing a cart) build their frozen values from fields they have already
checked, slot by slot through these setters; everything else calls the class.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MemberDescriptorType
from typing import Any

__all__ = ["new", "slot_setter"]

new = object.__new__
"""``new(cls)``: an instance with no field set yet (set every one before it escapes)."""


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The setter of the slot ``name`` of ``cls`` (declared on it or on a base class).

    Raises:
        TypeError: ``cls`` has no such slot (a class with a ``__dict__`` or a typo).

    """
    for klass in cls.__mro__:
        descriptor = vars(klass).get(name)
        if isinstance(descriptor, MemberDescriptorType):
            setter: Callable[[Any, Any], None] = descriptor.__set__
            return setter
        if descriptor is not None:
            break  # something else (a property, a method) hides the name
    msg = f"{cls.__qualname__} has no slot {name!r}"
    raise TypeError(msg)
