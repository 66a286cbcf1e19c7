"""Formal processes: defined once as data, checked by ``transitions``, fired through a table.

A :class:`ProcessDefinition` lists states and transitions as plain data. Building it into a
:class:`Process`:

1. validates it (unknown states, unreachable states, non-final states with no way out, final
   states with a way out, ambiguous or dead transitions, unknown guards) and raises
   :class:`~ecommerce_core.errors.DefinitionError` listing *every* problem;
2. builds one ``transitions.Machine(model=None, auto_transitions=False)``: the single source of
   truth, used for introspection, for Mermaid diagrams and as the oracle in tests. No order is
   ever bound to it;
3. compiles that machine into a ``{(state, trigger): target}`` table. Firing a transition is a
   dict look-up, plus one call per guard where a transition has guards.

A payment method or a sales mode *extends* a base definition (:meth:`ProcessDefinition.extend`):
it adds states and transitions, removes what it replaces, may move the initial state, and the
result is validated again when built.

Guards say why they refuse: a guard is ``guard(subject, context) -> str | None`` that returns
``None`` to allow, or a sentence explaining the refusal. A refused transition raises
:class:`~ecommerce_core.errors.TransitionNotAllowed` or
:class:`~ecommerce_core.errors.GuardRefused`; it never returns a silent ``False``.

Example:
    >>> definition = ProcessDefinition(
    ...     name="door",
    ...     initial="closed",
    ...     states=(State("closed"), State("open"), State("gone", final=True)),
    ...     transitions=(
    ...         Transition("open", "closed", "open"),
    ...         Transition("close", "open", "closed"),
    ...         Transition("remove", ("open", "closed"), "gone"),
    ...     ),
    ... )
    >>> door = Process(definition)
    >>> door.fire("closed", "open")
    'open'
    >>> door.triggers("open")
    ('close', 'remove')

"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs
from transitions import Machine

from ecommerce_core.errors import DefinitionError, GuardRefused, TransitionNotAllowed

__all__ = [
    "Guard",
    "Process",
    "ProcessDefinition",
    "State",
    "Transition",
]

Guard = Callable[[Any, Any], "str | None"]
"""A guard: ``guard(subject, context)`` returns ``None`` to allow or a reason to refuse."""

_Candidates = tuple[tuple[str, tuple[tuple[str, Guard], ...]], ...]


def _to_names(value: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen
class State:
    """One state of a process.

    Attributes:
        name: The stored value, e.g. ``"pending_payment"``.
        final: ``True`` for a terminal state, which has no way out.
        description: One line for people and diagrams (e.g. ``"待付款 awaiting payment"``).

    """

    name: str
    final: bool = False
    description: str = ""


@attrs.frozen
class Transition:
    """One transition: ``trigger`` moves from any of ``source`` to ``dest``.

    Attributes:
        trigger: The command that fires it, in the imperative (``"ship"``).
        source: The state or states it leaves from.
        dest: The state it arrives in.
        guards: Names of guards that must all allow it, looked up in the process's guards.

    """

    trigger: str
    source: tuple[str, ...] = attrs.field(converter=_to_names)
    dest: str
    guards: tuple[str, ...] = attrs.field(default=(), converter=_to_names)


@attrs.frozen
class ProcessDefinition:
    """A process as data: its states, transitions and initial state.

    Attributes:
        name: A dotted name, e.g. ``"order.standard"``.
        states: Every state, in a stable order.
        transitions: Every transition, in the order guards are tried.
        initial: The state a new subject starts in.

    """

    name: str
    states: tuple[State, ...] = attrs.field(converter=tuple[State, ...])
    transitions: tuple[Transition, ...] = attrs.field(converter=tuple[Transition, ...])
    initial: str

    def extend(
        self,
        name: str,
        *,
        states: Sequence[State] = (),
        transitions: Sequence[Transition] = (),
        remove_states: Sequence[str] = (),
        remove_transitions: Sequence[tuple[str, str]] = (),
        initial: str | None = None,
    ) -> ProcessDefinition:
        """Return a new definition built on this one.

        Removals happen first, then additions; the result is validated when it is built into a
        :class:`Process`, not here, so a chain of extensions may pass through invalid shapes.

        Args:
            name: The new definition's name (e.g. ``"order.cod"``).
            states: States to add. A state whose name exists replaces it in its place (to make
                it final, or describe it anew, say).
            transitions: Transitions to add, after the kept ones.
            remove_states: States to drop, with every transition into or out of them.
            remove_transitions: ``(trigger, source)`` pairs to drop; a transition from several
                sources keeps its other sources.
            initial: A new initial state, if it moves.

        Returns:
            The extended definition.

        """
        dropped = set(remove_states)
        replacing = {s.name: s for s in states}
        kept_states = [replacing.pop(s.name, s) for s in self.states if s.name not in dropped]
        cut = set(remove_transitions)
        kept: list[Transition] = []
        for t in self.transitions:
            if t.dest in dropped:
                continue
            sources = tuple(s for s in t.source if s not in dropped and (t.trigger, s) not in cut)
            if sources:
                kept.append(attrs.evolve(t, source=sources))
        return ProcessDefinition(
            name=name,
            states=[*kept_states, *(s for s in states if s.name in replacing)],
            transitions=[*kept, *transitions],
            initial=self.initial if initial is None else initial,
        )


def _problems(definition: ProcessDefinition, guards: Mapping[str, Guard]) -> list[str]:
    """Every reason this definition is not a sound process (empty when it is)."""
    problems: list[str] = []
    names = [s.name for s in definition.states]
    known = set(names)
    problems.extend(
        f"state {name!r} is declared more than once"
        for name in sorted({n for n in names if names.count(n) > 1})
    )
    if not definition.states:
        problems.append("it declares no states")
    if definition.initial not in known:
        problems.append(f"initial state {definition.initial!r} is not declared")
    final = {s.name for s in definition.states if s.final}

    outgoing: dict[str, set[str]] = {n: set() for n in names}
    seen: dict[tuple[str, str], list[Transition]] = {}
    for t in definition.transitions:
        if not t.trigger.isidentifier():
            problems.append(f"trigger {t.trigger!r} is not an identifier")
        if not t.source:
            problems.append(f"transition {t.trigger!r} has no source state")
        problems.extend(
            f"transition {t.trigger!r} names unknown state {state!r}"
            for state in (*t.source, t.dest)
            if state not in known
        )
        problems.extend(
            f"transition {t.trigger!r} uses unknown guard {g!r}"
            for g in t.guards
            if g not in guards
        )
        for src in t.source:
            if src in known:
                outgoing[src].add(t.dest)
            seen.setdefault((src, t.trigger), []).append(t)

    for (src, trigger), candidates in seen.items():
        for earlier_index, earlier in enumerate(candidates[:-1]):
            if not earlier.guards:
                later = candidates[earlier_index + 1]
                problems.append(
                    f"trigger {trigger!r} from {src!r} is duplicated: the unguarded transition to "
                    f"{earlier.dest!r} makes the one to {later.dest!r} unreachable"
                )
                break

    for name in names:
        if name in final and outgoing.get(name):
            problems.append(f"final state {name!r} has transitions out of it")
        elif name not in final and not outgoing.get(name):
            problems.append(f"state {name!r} is not final but has no way out")

    if definition.initial in known:
        reached = {definition.initial}
        queue = deque([definition.initial])
        while queue:
            for nxt in outgoing.get(queue.popleft(), ()):
                if nxt in known and nxt not in reached:
                    reached.add(nxt)
                    queue.append(nxt)
        problems.extend(
            f"state {name!r} is unreachable from {definition.initial!r}"
            for name in names
            if name not in reached
        )
    return problems


def _machine_config(definition: ProcessDefinition) -> dict[str, Any]:
    return {
        "model": None,
        "states": [{"name": s.name, "final": s.final} for s in definition.states],
        "transitions": [
            {
                "trigger": t.trigger,
                "source": list(t.source),
                "dest": t.dest,
                "conditions": list(t.guards),
            }
            for t in definition.transitions
        ],
        "initial": definition.initial,
        "auto_transitions": False,
    }


class Process:
    """A validated process with a compiled transition table.

    Build one per definition at import time and share it: it holds no per-subject state.

    Args:
        definition: The process as data.
        guards: The guard functions its transitions name.

    Raises:
        DefinitionError: The definition is unsound; the message lists every problem.

    """

    __slots__ = ("_allowed", "_direct", "_final", "_guarded", "_guards", "definition", "machine")

    def __init__(
        self, definition: ProcessDefinition, guards: Mapping[str, Guard] | None = None
    ) -> None:
        self.definition: Final = definition
        self._guards: Final = dict(guards or {})
        problems = _problems(definition, self._guards)
        if problems:
            raise DefinitionError(definition.name, problems)
        self.machine: Final[Machine] = Machine(**_machine_config(definition))
        self._direct: Final[dict[tuple[str, str], str]] = {}
        self._guarded: Final[dict[tuple[str, str], _Candidates]] = {}
        self._compile()
        self._final: Final = frozenset(s.name for s in definition.states if s.final)
        allowed: dict[str, list[str]] = {s.name: [] for s in definition.states}
        for state, trigger in (*self._direct, *self._guarded):
            allowed[state].append(trigger)
        self._allowed: Final = {s: tuple(sorted(t)) for s, t in allowed.items()}

    def _compile(self) -> None:
        """Compile the ``transitions`` machine (not the raw definition) into the run-time table.

        A ``(state, trigger)`` with one unguarded transition goes into ``_direct`` (one dict
        look-up when fired); the rest into ``_guarded``, candidates in definition order.
        """
        for trigger, event in self.machine.events.items():
            for source, candidates in event.transitions.items():
                entries: list[tuple[str, tuple[tuple[str, Guard], ...]]] = []
                for t in candidates:
                    names = [str(c.func) for c in t.conditions]
                    entries.append((str(t.dest), tuple((n, self._guards[n]) for n in names)))
                if len(entries) == 1 and not entries[0][1]:
                    self._direct[source, trigger] = entries[0][0]
                else:
                    self._guarded[source, trigger] = tuple(entries)

    @property
    def name(self) -> str:
        """The definition's name."""
        return self.definition.name

    @property
    def initial(self) -> str:
        """The state new subjects start in."""
        return self.definition.initial

    @property
    def states(self) -> tuple[str, ...]:
        """Every state name, in definition order."""
        return tuple(s.name for s in self.definition.states)

    @property
    def final_states(self) -> frozenset[str]:
        """The terminal states."""
        return self._final

    def is_final(self, state: str) -> bool:
        """Whether ``state`` is terminal."""
        return state in self._final

    def triggers(self, state: str) -> tuple[str, ...]:
        """The commands with a transition out of ``state`` (guards not evaluated), sorted."""
        return self._allowed.get(state, ())

    def target(
        self, state: str, trigger: str, subject: Any = None, context: Any = None
    ) -> str | None:
        """The state ``trigger`` would lead to, or ``None`` if it is refused. Never raises."""
        key = (state, trigger)
        if key in self._direct:
            return self._direct[key]
        for dest, guards in self._guarded.get(key, ()):
            if all(guard(subject, context) is None for _, guard in guards):
                return dest
        return None

    def fire(
        self,
        state: str,
        trigger: str,
        subject: Any = None,
        context: Any = None,
        subject_id: str = "",
    ) -> str:
        """Return the state that ``trigger`` leads to from ``state``, or raise.

        Args:
            state: The current state.
            trigger: The command.
            subject: What the guards inspect (usually the aggregate).
            context: The command's payload, passed to the guards.
            subject_id: The aggregate's id, for the error message. Pass it by keyword. (It is
                not keyword-only because CPython fills a missing keyword-only argument from a
                dict on every call, which made the unguarded fast path about 30 % slower.)

        Returns:
            The destination state.

        Raises:
            TransitionNotAllowed: No transition for ``trigger`` from ``state``.
            GuardRefused: Every candidate transition's guard refused; the error lists why.

        """
        key = (state, trigger)
        dest = self._direct.get(key)  # fast path: a single unguarded transition
        if dest is not None:
            return dest
        candidates = self._guarded.get(key)  # a lookup, not a raised KeyError, for guarded ones
        if candidates is None:
            raise TransitionNotAllowed(subject_id, trigger, state, self._allowed.get(state, ()))
        reasons: list[str] = []
        for dest, guards in candidates:
            for _, guard in guards:
                reason = guard(subject, context)
                if reason is not None:
                    reasons.append(reason)
                    break
            else:
                return dest
        raise GuardRefused(subject_id, trigger, state, reasons)

    def to_mermaid(self) -> str:
        """Draw the process as a Mermaid ``stateDiagram-v2``, with guards in brackets.

        The drawing comes from ``transitions``' own Mermaid engine (pure Python, no graphviz),
        cleaned of its styling lines and given end markers for final states.
        """
        from transitions.extensions import GraphMachine  # noqa: PLC0415  # only for drawing
        from transitions.extensions.diagrams_mermaid import Graph  # noqa: PLC0415

        machine = GraphMachine(
            **_machine_config(self.definition), graph_engine="mermaid", show_conditions=True
        )
        source: str = Graph(machine).get_graph().source  # type: ignore[arg-type]  # stub is wrong
        body = [
            line.rstrip()
            for line in source.splitlines()
            if line.strip()
            and not line.strip().startswith(("classDef", "Class ", "---", "State Machine"))
        ]
        lines = [body[0], f"  %% {self.name}: generated by `ecommerce-core diagram`", *body[1:]]
        lines.extend(f"  {s} --> [*]" for s in self.states if s in self._final)
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        count = len(self._direct) + len(self._guarded)
        return f"Process({self.name!r}, states={len(self.states)}, transitions={count})"
