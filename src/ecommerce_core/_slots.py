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

import attrs

__all__ = ["builder", "event", "new", "slot_setter", "twin"]

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


_PLAIN: dict[type, dict[str, Callable[[Any, Any], None]]] = {}


def _plain_setters(cls: type) -> dict[str, Callable[[Any, Any], None]]:
    """Slot setters by field name if ``cls.__init__`` does nothing but set its fields.

    Empty (use the class) when any field has a validator, a converter, an alias, or is not an
    ``__init__`` argument, or the class has an ``__attrs_post_init__`` / ``__attrs_pre_init__``
    or a ``__setattr__`` hook: then only the class builds what the class builds.
    """
    if not attrs.has(cls) or any(
        hasattr(cls, hook) for hook in ("__attrs_post_init__", "__attrs_pre_init__")
    ):
        return {}
    fields = attrs.fields(cls)
    if any(
        f.validator is not None
        or f.converter is not None
        or f.on_setattr is not None
        or not f.init
        or f.alias != f.name
        for f in fields
    ):
        return {}
    return {f.name: slot_setter(cls, f.name) for f in fields}


def event(  # noqa: PLR0917  # the event's four common fields, then the rest as a dict
    cls: type, aggregate_id: str, version: int, at: Any, actor: str, fields: Any
) -> Any:
    """``cls(aggregate_id=..., version=..., occurred_at=at, actor=actor, **fields)``.

    For a frozen, slotted event class whose constructor only sets its fields, built slot by
    slot (about a third cheaper); when not every field is given, or one is not a field, or
    the class does more than set fields, the class itself builds it (and raises what it
    raises). ``fields`` is the keyword dict of the other fields.
    """
    setters = _PLAIN.get(cls)
    if setters is None:
        setters = _PLAIN[cls] = _plain_setters(cls)
    if len(setters) == 4 + len(fields):  # every field given (a field missing: the class)
        stand_in = _STAND_INS[cls] if cls in _STAND_INS else _twin_or_none(cls)
        if stand_in is None:
            try:
                built: Any = new(cls)
                setters["aggregate_id"](built, aggregate_id)
                setters["version"](built, version)
                setters["occurred_at"](built, at)
                setters["actor"](built, actor)
                for name, value in fields.items():
                    setters[name](built, value)
            except KeyError:
                pass  # a name that is not a field: the class raises its TypeError below
            else:
                return built
        else:  # plain stores on the twin, then the class switch (see twin)
            for name in fields:
                if name not in setters:
                    break  # not a field: the class raises its TypeError below
            else:
                built = new(stand_in)
                built.aggregate_id = aggregate_id
                built.version = version
                built.occurred_at = at
                built.actor = actor
                for name, value in fields.items():
                    _setattr(built, name, value)
                built.__class__ = cls
                return built
    return cls(aggregate_id=aggregate_id, version=version, occurred_at=at, actor=actor, **fields)


_BUILDERS: dict[tuple[type, tuple[str, ...]], Callable[..., Any]] = {}


def builder(cls: type, names: tuple[str, ...]) -> Callable[..., Any]:
    """A function ``build(*values)`` equal to ``cls(**dict(zip(names, values)))``, cached.

    For a slotted attrs class whose generated constructor only sets its fields, and ``names`` naming
    every field once, ``build`` is generated: it makes the instance and sets each slot through
    its own setter (no keyword parsing, no per-field ``object.__setattr__``). For any other
    class or ``names`` (a validator, a converter, a post-init hook, a field left to its
    default), ``build`` calls the class with those keywords, so it builds and raises exactly
    what the class does. The hot paths build events, deadlines, requests and results with it.
    """
    key = (cls, names)
    found = _BUILDERS.get(key)
    if found is not None:
        return found
    setters = _PLAIN.get(cls)
    if setters is None:
        setters = _PLAIN[cls] = _plain_setters(cls)
    arguments = ", ".join(f"_{i}" for i in range(len(names)))
    init = getattr(vars(cls).get("__init__"), "__code__", None)  # attrs' own, not hand-written
    generated = init is not None and init.co_filename.startswith("<attrs generated")
    if generated and setters and len(names) == len(setters) and set(names) == set(setters):
        mutable = cls.__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
        stand_in = None if mutable else _twin_or_none(cls)
        body = [f"def build({arguments}):", "    built = _new(_twin or _cls)"]
        # not frozen, or frozen with a twin: plain stores, cheaper still than the setters
        body += [
            f"    built.{name} = _{i}"
            if mutable or stand_in is not None
            else f"    _set_{i}(built, _{i})"
            for i, name in enumerate(names)
        ]
        if stand_in is not None:
            body.append("    built.__class__ = _cls")
        body.append("    return built")
        namespace: dict[str, Any] = {"_new": new, "_cls": cls, "_twin": stand_in}
        namespace.update({f"_set_{i}": setters[name] for i, name in enumerate(names)})
    else:
        keywords = ", ".join(f"{name}=_{i}" for i, name in enumerate(names))
        body = [f"def build({arguments}):", f"    return _cls({keywords})"]
        namespace = {"_cls": cls}
    exec("\n".join(body), namespace)  # noqa: S102  # generated from the class's own field names
    built: Callable[..., Any] = namespace["build"]
    _BUILDERS[key] = built
    return built


_TWINS: dict[type, type] = {}


def twin(cls: type) -> type:
    """A mutable stand-in for the frozen, slotted ``cls``: build one, then make it a ``cls``.

    The twin is a subclass of ``cls`` that adds no slot and sets attributes the plain way, so
    ``built = new(twin(cls)); built.a = ...; built.__class__ = cls`` sets each slot with a
    plain store (no call per field) and ends with an instance of exactly ``cls`` (Python
    allows the class switch because the layouts are the same). It is not an attrs class
    (``attrs.has`` is false: serializers looking for attrs subclasses skip it) and never
    escapes its builder. Cached per class.

    Raises:
        TypeError: ``cls`` has no slots of its own or is not frozen (nothing to gain).

    """
    found = _TWINS.get(cls)
    if found is not None:
        return found
    if "__slots__" not in vars(cls) or cls.__setattr__ is object.__setattr__:  # type: ignore[comparison-overlap]
        msg = f"{cls.__qualname__} is not a frozen slotted class"
        raise TypeError(msg)
    found = type(
        cls.__name__,  # named as the class: a registry by name resolves the pair to the class
        (cls,),
        {
            "__qualname__": cls.__qualname__,
            "__slots__": (),
            # both: a Python-level __delattr__ left in the chain would route every store
            # through __setattr__ lookups instead of the slot itself
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__attrs_attrs__": None,
            "_twin_of": cls,  # is_twin: registries of subclasses skip it
            "__module__": cls.__module__,
            "__doc__": f"The mutable builder of {cls.__qualname__} (private).",
        },
    )
    _TWINS[cls] = found
    return found


def is_twin(cls: type) -> bool:
    """Whether ``cls`` is a :func:`twin` (a registry walking ``__subclasses__`` skips it)."""
    return vars(cls).get("_twin_of") is not None


_setattr = setattr


def _twin_or_none(cls: type) -> type | None:
    """:func:`twin` of ``cls``, or ``None`` when it cannot stand in for ``cls``.

    The class switch must be allowed (it is not, for instance, when ``cls`` declares
    ``__slots__`` beyond what its twin inherits, or defines ``__class__``): tried once here.
    """
    found: type | None
    try:
        found = twin(cls)
        probe: Any = new(found)
        probe.__class__ = cls
    except TypeError:
        found = None
    _STAND_INS[cls] = found
    return found


_STAND_INS: dict[type, type | None] = {}  # per class: its twin, or None (none can stand in)


def stand_in(cls: type) -> type:
    """:func:`twin` of ``cls``, checked once to stand in for it (the class switch allowed).

    For hand-written builders of the library's own frozen classes: ``built = new(stand_in)``,
    plain stores, then ``built.__class__ = cls``.

    Raises:
        TypeError: No twin can stand in for ``cls``.

    """
    found = _STAND_INS[cls] if cls in _STAND_INS else _twin_or_none(cls)
    if found is None:
        msg = f"no mutable twin can stand in for {cls.__qualname__}"
        raise TypeError(msg)
    return found
