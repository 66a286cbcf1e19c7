from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions.core import MachineError

from ecommerce_core.errors import DefinitionError, GuardRefused, TransitionNotAllowed
from ecommerce_core.orders import ORDER_GUARDS, STANDARD_ORDER, STANDARD_ORDER_PROCESS
from ecommerce_core.process import Process, ProcessDefinition, State, Transition

# A small sound process that the validation tests break one way at a time.
BASE = ProcessDefinition(
    name="test.base",
    initial="draft",
    states=(State("draft"), State("open"), State("done", final=True)),
    transitions=(Transition("submit", "draft", "open"), Transition("finish", "open", "done")),
)

# Cash on delivery: no payment step, the order starts awaiting shipment and may be refused.
COD = STANDARD_ORDER.extend(
    "order.cod",
    remove_states=["pending_payment"],
    initial="awaiting_shipment",
    transitions=[Transition("refuse_delivery", "shipped", "cancelled")],
)

# Team purchase: paying joins a team, which either forms (ship it) or fails (cancel it).
TEAM = STANDARD_ORDER.extend(
    "order.team",
    states=[State("awaiting_team", description="待成团 paid, waiting for the team to form")],
    remove_transitions=[("pay", "pending_payment")],
    transitions=[
        Transition("pay", "pending_payment", "awaiting_team", guards="payment_covers_total"),
        Transition("team_formed", "awaiting_team", "awaiting_shipment"),
        Transition("team_failed", "awaiting_team", "cancelled"),
    ],
)


def flag_guard(name):
    """A guard that reads its verdict from the context: ``context[name]`` is True to allow."""

    def guard(subject, context):
        return None if context[name] else f"{name} says no"

    return guard


def flag_guards(*names):
    return {name: flag_guard(name) for name in names}


def problems_of(definition, guards=None):
    with pytest.raises(DefinitionError) as refused:
        Process(definition, guards)
    return refused.value.problems


def with_transitions(*extra, base=BASE):
    return attrs.evolve(base, transitions=(*base.transitions, *extra))


def with_states(*extra, base=BASE):
    return attrs.evolve(base, states=(*base.states, *extra))


DUPLICATED = (
    "trigger 'submit' from 'draft' is duplicated: the unguarded transition to 'open' "
    "makes the one to 'done' unreachable"
)

# Each definition breaks BASE one way, and should be refused for that one problem.
SINGLE_PROBLEMS = {
    "duplicate state": (with_states(State("open")), "state 'open' is declared more than once"),
    "undeclared initial": (
        attrs.evolve(BASE, initial="nowhere"),
        "initial state 'nowhere' is not declared",
    ),
    "unknown source": (
        with_transitions(Transition("jump", "limbo", "done")),
        "transition 'jump' names unknown state 'limbo'",
    ),
    "unknown dest": (
        with_transitions(Transition("jump", "open", "limbo")),
        "transition 'jump' names unknown state 'limbo'",
    ),
    "final state with a way out": (
        with_transitions(Transition("reopen", "done", "open")),
        "final state 'done' has transitions out of it",
    ),
    "dead end": (
        with_transitions(Transition("park", "open", "stuck"), base=with_states(State("stuck"))),
        "state 'stuck' is not final but has no way out",
    ),
    "unreachable state": (
        with_states(State("orphan", final=True)),
        "state 'orphan' is unreachable from 'draft'",
    ),
    "trigger not an identifier": (
        with_transitions(Transition("go-on", "draft", "open")),
        "trigger 'go-on' is not an identifier",
    ),
    "duplicated trigger": (with_transitions(Transition("submit", "draft", "done")), DUPLICATED),
}


class TestValidation:
    @pytest.mark.parametrize(
        ("definition", "problem"), list(SINGLE_PROBLEMS.values()), ids=list(SINGLE_PROBLEMS)
    )
    def test_each_problem_is_named_alone(self, definition, problem):
        assert problems_of(definition) == (problem,)

    def test_an_unknown_guard_is_named(self):
        definition = attrs.evolve(
            BASE, transitions=(BASE.transitions[0], Transition("finish", "open", "done", "ready"))
        )
        assert problems_of(definition, flag_guards("other")) == (
            "transition 'finish' uses unknown guard 'ready'",
        )
        assert Process(definition, flag_guards("ready")).fire("open", "finish", None, {"ready": 1})

    def test_an_unguarded_transition_before_a_guarded_one_makes_it_dead(self):
        definition = with_transitions(Transition("submit", "draft", "done", guards="rush"))
        assert problems_of(definition, flag_guards("rush")) == (DUPLICATED,)

    def test_a_guarded_transition_before_an_unguarded_fallback_is_sound(self):
        definition = attrs.evolve(
            BASE,
            transitions=(Transition("submit", "draft", "done", guards="rush"), *BASE.transitions),
        )
        process = Process(definition, flag_guards("rush"))
        assert process.fire("draft", "submit", None, {"rush": True}) == "done"
        assert process.fire("draft", "submit", None, {"rush": False}) == "open"

    def test_a_definition_with_several_problems_lists_them_all(self):
        definition = attrs.evolve(
            with_states(State("orphan", final=True), State("open")),
            transitions=(*BASE.transitions, Transition("reopen", "done", "open", guards="nope")),
        )
        with pytest.raises(DefinitionError) as refused:
            Process(definition)
        expected = {
            "state 'open' is declared more than once",
            "transition 'reopen' uses unknown guard 'nope'",
            "final state 'done' has transitions out of it",
            "state 'orphan' is unreachable from 'draft'",
        }
        assert set(refused.value.problems) == expected
        assert refused.value.definition == "test.base"
        assert all(problem in str(refused.value) for problem in expected)

    def test_a_definition_error_is_a_value_error(self):
        with pytest.raises(ValueError, match="is not declared"):
            Process(attrs.evolve(BASE, initial="nowhere"))


class TestExtension:
    def test_extend_adds_states_and_transitions(self):
        extended = BASE.extend(
            "test.review",
            states=[State("review")],
            remove_transitions=[("submit", "draft")],
            transitions=[
                Transition("submit", "draft", "review"),
                Transition("approve", "review", "open"),
                Transition("send_back", "review", "draft"),
            ],
        )
        process = Process(extended)
        assert process.name == "test.review"
        assert process.states == ("draft", "open", "done", "review")
        assert process.fire("draft", "submit") == "review"
        assert process.triggers("review") == ("approve", "send_back")
        assert BASE.transitions[0] == Transition("submit", "draft", "open")  # untouched

    def test_remove_states_drops_the_state_and_every_transition_touching_it(self):
        extended = STANDARD_ORDER.extend("order.no_delivery_scan", remove_states=["delivered"])
        assert "delivered" not in {s.name for s in extended.states}
        touching = [t for t in extended.transitions if "delivered" in (*t.source, t.dest)]
        assert touching == []
        by_trigger = {t.trigger: t for t in extended.transitions}
        assert "deliver" not in by_trigger
        assert by_trigger["confirm_receipt"].source == ("shipped",)
        assert Process(extended, ORDER_GUARDS).triggers("shipped") == (
            "auto_confirm",
            "confirm_receipt",
        )

    def test_remove_transitions_keeps_the_other_sources_of_a_multi_source_transition(self):
        extended = STANDARD_ORDER.extend(
            "order.no_late_cancel", remove_transitions=[("cancel", "awaiting_shipment")]
        )
        process = Process(extended, ORDER_GUARDS)
        assert process.triggers("awaiting_shipment") == ("ship",)
        assert process.fire("pending_payment", "cancel") == "cancelled"

    def test_a_state_is_replaced_by_name(self):
        extended = STANDARD_ORDER.extend(
            "order.no_after_sales",
            states=[State("completed", final=True, description="done, no window")],
            remove_states=["closed"],
        )
        process = Process(extended, ORDER_GUARDS)
        assert process.is_final("completed")
        assert process.triggers("completed") == ()
        assert [s for s in extended.states if s.name == "completed"] == [
            State("completed", final=True, description="done, no window")
        ]

    def test_a_replaced_state_keeps_its_place_and_new_states_come_last(self):
        extended = STANDARD_ORDER.extend(
            "order.redescribed",
            states=[State("shipped", description="on its way"), State("lost", final=True)],
            transitions=[Transition("lose", "shipped", "lost")],
        )
        names = [s.name for s in extended.states]
        assert names == [*(s.name for s in STANDARD_ORDER.states), "lost"]
        assert extended.states[names.index("shipped")].description == "on its way"

    def test_making_a_state_final_without_removing_its_way_out_is_refused(self):
        extended = STANDARD_ORDER.extend("order.bad", states=[State("completed", final=True)])
        assert problems_of(extended, ORDER_GUARDS) == (
            "final state 'completed' has transitions out of it",
        )

    def test_cash_on_delivery_moves_the_initial_and_drops_payment(self):
        process = Process(COD, ORDER_GUARDS)
        assert process.initial == "awaiting_shipment"
        assert "pending_payment" not in process.states
        assert "pay" not in process.machine.events
        assert process.triggers("awaiting_shipment") == ("cancel", "ship")
        assert process.fire("shipped", "refuse_delivery") == "cancelled"

    def test_team_purchase_waits_for_the_team_after_payment(self):
        process = Process(TEAM, ORDER_GUARDS)
        order = SimpleNamespace(total=42)
        assert process.fire("pending_payment", "pay", order, 42) == "awaiting_team"
        assert process.triggers("awaiting_team") == ("team_failed", "team_formed")
        assert process.fire("awaiting_team", "team_formed") == "awaiting_shipment"
        assert process.fire("awaiting_team", "team_failed") == "cancelled"

    def test_the_composition_is_validated_again(self):
        broken = STANDARD_ORDER.extend(
            "order.unpayable", remove_transitions=[("pay", "pending_payment")]
        )  # extending alone does not validate: only building does
        problems = problems_of(broken, ORDER_GUARDS)
        assert "state 'awaiting_shipment' is unreachable from 'pending_payment'" in problems
        assert "state 'closed' is unreachable from 'pending_payment'" in problems


class TestFiring:
    process = STANDARD_ORDER_PROCESS

    def test_fire_returns_the_destination(self):
        assert self.process.fire("awaiting_shipment", "ship") == "shipped"
        assert self.process.fire("delivered", "confirm_receipt") == "completed"

    def test_a_trigger_with_no_transition_from_the_state_is_not_allowed(self):
        with pytest.raises(TransitionNotAllowed) as refused:
            self.process.fire("shipped", "pay", subject_id="o-1")
        error = refused.value
        assert error.allowed == ("auto_confirm", "confirm_receipt", "deliver")
        assert (error.state, error.command, error.aggregate_id) == ("shipped", "pay", "o-1")
        assert "'o-1'" in str(error)

    def test_nothing_is_allowed_from_a_final_state(self):
        with pytest.raises(TransitionNotAllowed) as refused:
            self.process.fire("closed", "close")
        assert refused.value.allowed == ()
        assert "final state" in str(refused.value)

    def test_a_refusing_guard_says_why(self):
        order = SimpleNamespace(total=100)
        reason = ORDER_GUARDS["payment_covers_total"](order, 90)
        assert reason
        with pytest.raises(GuardRefused) as refused:
            self.process.fire("pending_payment", "pay", order, 90, subject_id="o-2")
        assert refused.value.reasons == (reason,)
        assert reason in str(refused.value)
        assert self.process.fire("pending_payment", "pay", order, 100) == "awaiting_shipment"

    review = Process(
        ProcessDefinition(
            name="test.review",
            initial="submitted",
            states=(
                State("submitted"),
                State("approved", final=True),
                State("escalated", final=True),
            ),
            transitions=(
                Transition("review", "submitted", "approved", guards=("small", "trusted")),
                Transition("review", "submitted", "escalated", guards="senior"),
            ),
        ),
        flag_guards("small", "trusted", "senior"),
    )

    @pytest.mark.parametrize(
        ("small", "trusted", "senior", "expected"),
        [
            (True, True, True, "approved"),
            (True, True, False, "approved"),
            (True, False, True, "escalated"),
            (False, True, True, "escalated"),
        ],
    )
    def test_the_first_candidate_whose_guards_all_pass_wins(self, small, trusted, senior, expected):
        context = {"small": small, "trusted": trusted, "senior": senior}
        assert self.review.fire("submitted", "review", None, context) == expected

    def test_when_no_candidate_passes_every_reason_is_reported(self):
        context = {"small": True, "trusted": False, "senior": False}
        with pytest.raises(GuardRefused) as refused:
            self.review.fire("submitted", "review", None, context)
        assert refused.value.reasons == ("trusted says no", "senior says no")
        assert "trusted says no; senior says no" in str(refused.value)

    def test_target_answers_none_instead_of_raising(self):
        refusing = {"small": False, "trusted": False, "senior": False}
        assert self.review.target("submitted", "review", None, refusing) is None
        assert self.process.target("closed", "close") is None
        assert self.process.target("no_such_state", "ship") is None
        assert self.process.target("awaiting_shipment", "ship") == "shipped"
        assert self.process.target("pending_payment", "pay", SimpleNamespace(total=5), 5) == (
            "awaiting_shipment"
        )

    def test_triggers_are_sorted(self):
        assert self.process.triggers("pending_payment") == ("cancel", "expire_payment", "pay")
        assert self.process.triggers("no_such_state") == ()


def cursor(state, verdicts):
    """A model for ``transitions``: a state and one condition method per guard."""
    return SimpleNamespace(state=state, **{g: (lambda v=v: v) for g, v in verdicts.items()})


def assert_table_agrees_with_transitions(process, verdicts):
    """Every (state, trigger) answers in the compiled table as it does in ``transitions``."""
    for state in process.states:
        for trigger in sorted(process.machine.events):
            model = cursor(state, verdicts)
            target = process.target(state, trigger, None, verdicts)
            try:
                moved = process.machine.events[trigger].trigger(model)
            except MachineError:
                with pytest.raises(TransitionNotAllowed):
                    process.fire(state, trigger, None, verdicts)
                assert target is None
                continue
            if moved:
                assert process.fire(state, trigger, None, verdicts) == model.state == target
            else:
                assert model.state == state
                with pytest.raises(GuardRefused):
                    process.fire(state, trigger, None, verdicts)
                assert target is None


GUARD_NAMES = ("g0", "g1", "g2")


@st.composite
def sound_definitions(draw):
    """n states in a chain (last final) plus random extra edges; dead extras are dropped."""
    names = [f"s{i}" for i in range(draw(st.integers(2, 6)))]
    chain = [Transition("next", a, b) for a, b in pairwise(names)]
    extra = st.builds(
        Transition,
        trigger=st.sampled_from(["a", "b", "c"]),
        source=st.sampled_from(names[:-1]),
        dest=st.sampled_from(names),
        guards=st.lists(st.sampled_from(GUARD_NAMES), unique=True, max_size=2),
    )
    transitions, unguarded = list(chain), set()
    for t in draw(st.lists(extra, max_size=10)):
        key = (t.source, t.trigger)
        if key not in unguarded:
            transitions.append(t)
            if not t.guards:
                unguarded.add(key)
    states = [State(n, final=n == names[-1]) for n in names]
    return ProcessDefinition("random", states, transitions, initial=names[0])


verdict_maps = st.fixed_dictionaries({g: st.booleans() for g in GUARD_NAMES})


class TestOracle:
    @pytest.mark.parametrize("definition", [STANDARD_ORDER, COD, TEAM], ids=lambda d: d.name)
    @given(allow=st.booleans())
    def test_order_processes_agree_with_transitions(self, definition, allow):
        process = Process(definition, flag_guards("payment_covers_total"))
        assert_table_agrees_with_transitions(process, {"payment_covers_total": allow})

    @given(definition=sound_definitions(), verdicts=verdict_maps)
    def test_random_processes_agree_with_transitions(self, definition, verdicts):
        process = Process(definition, flag_guards(*GUARD_NAMES))
        assert_table_agrees_with_transitions(process, verdicts)

    @given(definition=sound_definitions())
    def test_random_sound_definitions_build(self, definition):
        process = Process(definition, flag_guards(*GUARD_NAMES))
        assert process.states == tuple(s.name for s in definition.states)
        assert process.final_states == {definition.states[-1].name}

    @given(definition=sound_definitions(), data=st.data())
    def test_deleting_an_edge_builds_or_raises_a_definition_error(self, definition, data):
        index = data.draw(st.integers(0, len(definition.transitions) - 1))
        kept = definition.transitions[:index] + definition.transitions[index + 1 :]
        problems: tuple[str, ...] = ()
        try:
            Process(attrs.evolve(definition, transitions=kept), flag_guards(*GUARD_NAMES))
        except DefinitionError as error:
            problems = error.problems
        # Losing one edge can strand a state or cut the chain, nothing else.
        assert all("has no way out" in p or "is unreachable" in p for p in problems)


class TestMermaid:
    diagram = STANDARD_ORDER_PROCESS.to_mermaid()

    def test_it_is_a_state_diagram(self):
        assert self.diagram.startswith("stateDiagram-v2\n")

    def test_each_edge_is_one_line_with_its_triggers(self):
        edges: dict[tuple[str, str], list[str]] = {}
        for t in STANDARD_ORDER.transitions:
            for source in t.source:
                edges.setdefault((source, t.dest), []).append(t.trigger)
        lines = [ln.strip() for ln in self.diagram.splitlines() if "-->" in ln]
        drawn = [ln for ln in lines if "[*]" not in ln]
        assert len(drawn) == len(edges)
        for (source, dest), triggers in edges.items():
            (line,) = [ln for ln in drawn if ln.startswith(f"{source} --> {dest}: ")]
            labels = line.split(": ", 1)[1].split(" | ")
            assert [label.split(" [")[0] for label in labels] == triggers

    def test_guards_start_and_ends_are_drawn(self):
        assert "pay [payment_covers_total]" in self.diagram
        lines = {ln.strip() for ln in self.diagram.splitlines()}
        assert {"[*] --> pending_payment", "closed --> [*]", "cancelled --> [*]"} <= lines
        assert "completed --> [*]" not in lines

    def test_it_is_deterministic(self):
        assert STANDARD_ORDER_PROCESS.to_mermaid() == self.diagram
        assert Process(STANDARD_ORDER, ORDER_GUARDS).to_mermaid() == self.diagram
