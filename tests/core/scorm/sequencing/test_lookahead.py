"""Look-ahead in one pass (`lookahead.choice_validity`) against the per-activity dry run it replaces.

The reference functions below are the look-ahead as it was written before the one-pass table: every
activity asks `choice_valid` (a full dry run of the navigation, choice and delivery request processes) with
no memoisation. Hypothesis generates trees with choice/flow/forwardOnly/choiceExit, constrainChoice,
preventActivation, pre-condition rules (skip, disabled, hiddenFromChoice, stopForwardTraversal), attempt
limits and selection/randomization, drives them through random navigation and random state changes, and
every answer must be the reference's. A second group of tests pins the cost: linear, not cubic.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.core.scorm.model import Item
from appliance.core.scorm.sequencing import lookahead
from appliance.core.scorm.sequencing.engine import SequencingEngine
from appliance.core.scorm.sequencing.lookahead import PREFIX, choice_valid, choice_validity, jump_valid
from appliance.core.scorm.sequencing.rules import check_activity, hidden_from_choice
from appliance.core.scorm.sequencing.tracking import ActivityState, ObjectiveState, Tracking
from tests.core.scorm.sequencing.builders import cluster, engine, leaf, rule, rules, seq

# -- the reference: look-ahead per activity, as before the one-pass table --------------------------------


def reference_request_valid(t: Tracking) -> dict[str, str]:
    values = {
        PREFIX + "continue": _flag(lookahead.continue_valid(t)),
        PREFIX + "previous": _flag(lookahead.previous_valid(t)),
    }
    for act in t.tree.preorder:
        values[f"{PREFIX}choice.{{target={act.id}}}"] = _flag(choice_valid(t, act))
        values[f"{PREFIX}jump.{{target={act.id}}}"] = _flag(jump_valid(t, act))
    return values


def reference_controls(t: Tracking) -> dict[str, bool]:
    cur = t.current
    hidden = set(cur.hide_lms_ui) if cur is not None else set()
    active = cur is not None and t.st(cur).active
    controls = {
        "start": cur is None and t.suspended_activity is None,
        "resumeAll": cur is None and t.suspended_activity is not None,
        "continue": lookahead.continue_valid(t),
        "previous": lookahead.previous_valid(t),
        "exit": active,
        "exitAll": cur is not None,
        "abandon": active,
        "abandonAll": cur is not None,
        "suspendAll": active,
    }
    result = {name: enabled and name not in hidden for name, enabled in controls.items()}
    result["choice"] = any(choice_valid(t, act) for act in t.tree.preorder[1:] if t.is_available(act))
    return result


def reference_toc(t: Tracking, act: Any = None, hidden: bool = False) -> dict[str, Any]:
    act = act if act is not None else t.tree.root
    hidden = hidden or hidden_from_choice(t, act)
    completed, satisfied, record = t.completed(act), t.satisfied(act), t.st(act)
    return {
        "id": act.id,
        "title": act.title,
        "leaf": act.is_leaf,
        "visible": act.visible and not hidden,
        "selectable": choice_valid(t, act),
        "current": t.current is act,
        "status": {
            "completion": "unknown" if completed is None else ("completed" if completed else "incomplete"),
            "success": "unknown" if satisfied is None else ("passed" if satisfied else "failed"),
            "measure": t.measure(act),
            "attempted": t.attempted(act),
            "attempts": record.attempt_count,
            "active": record.active,
            "suspended": record.suspended,
            "disabled": check_activity(t, act),
        },
        "children": [reference_toc(t, child, hidden) for child in t.children(act)],
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _meaningful(t: Tracking) -> dict[str, Any]:
    """The state without the default records reads create (an absent record reads as a default one)."""
    default, unknown = asdict(ActivityState()), asdict(ObjectiveState())
    data = copy.deepcopy(t.state.to_dict())
    for record in data["activities"].values():
        record["objectives"] = {k: v for k, v in record["objectives"].items() if v != unknown}
    data["activities"] = {k: v for k, v in data["activities"].items() if v != default}
    return data


def assert_same_as_reference(eng: SequencingEngine) -> None:
    t = eng.tracking
    before = _meaningful(t)
    fast = (eng.request_valid(), eng.available_controls(), eng.toc())
    table = choice_validity(t)  # outside a frozen scope: computed afresh
    assert _meaningful(t) == before, "look-ahead must not change the tracking state"
    assert t.memo is None
    assert table.choice == [choice_valid(t, act) for act in t.tree.preorder]
    assert table.jump == [jump_valid(t, act) for act in t.tree.preorder]
    assert fast == (reference_request_valid(t), reference_controls(t), reference_toc(t))


# -- generated courses ------------------------------------------------------------------------------------

CONDITIONS = ("always", "attempted", "not attempted", "satisfied", "not satisfied", "completed", "never")
PRE_ACTIONS = ("skip", "disabled", "hiddenFromChoice", "stopForwardTraversal")


@st.composite
def sequencing(draw: st.DrawFn, cluster_: bool) -> str | None:
    if not draw(st.booleans()):
        return None
    parts: list[str] = []
    mode = {
        "choice": draw(st.sampled_from(["true", "true", "false"])),
        "choiceExit": draw(st.sampled_from(["true", "true", "false"])),
        "flow": draw(st.sampled_from(["true", "true", "false"])),
        "forwardOnly": draw(st.sampled_from(["false", "false", "true"])),
    }
    parts.append("<imsss:controlMode " + " ".join(f'{k}="{v}"' for k, v in mode.items()) + "/>")
    pre = draw(st.lists(st.tuples(st.sampled_from(PRE_ACTIONS), st.sampled_from(CONDITIONS)), max_size=2))
    if pre:
        parts.append(rules(*(rule("pre", action, condition) for action, condition in pre)))
    if draw(st.integers(0, 4)) == 0:
        parts.append(f'<imsss:limitConditions attemptLimit="{draw(st.integers(1, 2))}"/>')
    if cluster_ and draw(st.integers(0, 3)) == 0:
        count = draw(st.integers(1, 3))
        parts.append(
            f'<imsss:randomizationControls selectionTiming="onEachNewAttempt" selectCount="{count}" '
            'randomizationTiming="onEachNewAttempt" reorderChildren="true"/>'
        )
    considerations = {
        "constrainChoice": draw(st.sampled_from(["false", "false", "true"])),
        "preventActivation": draw(st.sampled_from(["false", "false", "true"])),
    }
    parts.append(
        "<adlseq:constrainedChoiceConsiderations " + " ".join(f'{k}="{v}"' for k, v in considerations.items()) + "/>"
    )
    return seq(*parts)


@st.composite
def items(draw: st.DrawFn, depth: int = 0, prefix: str = "n") -> list[Item]:
    count = draw(st.integers(1, 4 if depth < 2 else 3))
    result: list[Item] = []
    for index in range(count):
        name = f"{prefix}{index}"
        if depth < 3 and draw(st.integers(0, 2)) == 0:
            children = draw(items(depth + 1, name + "_"))
            result.append(cluster(name, *children, sequencing=draw(sequencing(True))))
        else:
            result.append(leaf(name, draw(sequencing(False))))
    return result


REQUESTS = ("start", "resumeAll", "continue", "previous", "exit", "exitAll", "suspendAll", "abandon")
CMI = (
    {},
    {"cmi.completion_status": "completed", "cmi.success_status": "passed"},
    {"cmi.completion_status": "incomplete"},
    {"cmi.success_status": "failed"},
    {"cmi.exit": "suspend"},
)


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    kind = st.sampled_from(["nav", "nav", "choice", "jump", "terminate", "terminate", "poke"])
    return draw(st.lists(st.tuples(kind, st.integers(0, 10_000), st.integers(0, 10_000)), max_size=12))


def _apply(eng: SequencingEngine, step: tuple[str, int, int], now: float) -> None:
    kind, a, b = step
    tree = eng.tree.preorder
    if kind == "nav":
        eng.navigate(REQUESTS[a % len(REQUESTS)], now=now)
    elif kind in ("choice", "jump"):
        eng.navigate(kind, tree[a % len(tree)].id, now=now)
    elif kind == "terminate" and eng.current is not None:
        eng.terminate(eng.current, CMI[a % len(CMI)], ("continue", "previous", "_none_", "exitAll")[b % 4], now=now)
    elif kind == "poke":
        # A state no navigation may reach: look-ahead must still agree with the reference on it.
        act = tree[a % len(tree)]
        record = eng.tracking.st(act)
        choice = b % 4
        if choice == 0:
            eng.tracking.current = act
        elif choice == 1:
            record.active = not record.active
        elif choice == 2:
            record.attempt_count += 1
        else:
            record.suspended = not record.suspended


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=items(), root=sequencing(True), plan=steps())
def test_one_pass_look_ahead_equals_the_per_activity_reference(
    tree: list[Item], root: str | None, plan: list[tuple[str, int, int]]
) -> None:
    eng = engine(*tree, sequencing=root)
    # The same course without the shortcuts for untouched activities (rollup, TOC): same state, same answers.
    plain = engine(*tree, sequencing=root)
    plain.tracking.untouched = lambda act: False  # type: ignore[method-assign]
    assert_same_as_reference(eng)
    eng.launch(now=1.0)
    plain.launch(now=1.0)
    assert_same_as_reference(eng)
    for index, step in enumerate(plan):
        _apply(eng, step, now=2.0 + index)
        _apply(plain, step, now=2.0 + index)
        assert_same_as_reference(eng)
        assert eng.dump_state() == plain.dump_state()
        assert eng.global_objectives == plain.global_objectives
        assert eng.toc() == plain.toc()


def test_constrained_choice_and_forward_only_siblings() -> None:
    """A hand-made case covering the branches random trees reach rarely: constrainChoice on the way out,
    forwardOnly siblings behind, stopForwardTraversal siblings ahead, preventActivation below."""
    constrained = seq(
        '<imsss:controlMode choice="true" flow="true" forwardOnly="true"/>',
        '<adlseq:constrainedChoiceConsiderations constrainChoice="true"/>',
    )
    stop = seq(rules(rule("pre", "stopForwardTraversal", "always")))
    prevent = seq(
        '<imsss:controlMode flow="true"/>', '<adlseq:constrainedChoiceConsiderations preventActivation="true"/>'
    )
    eng = engine(
        cluster("m1", leaf("a"), leaf("b", stop), leaf("c"), leaf("d"), sequencing=constrained),
        cluster("m2", leaf("e"), cluster("m3", leaf("f"), sequencing=prevent), sequencing=prevent),
        cluster("m4", leaf("g")),
        sequencing=seq('<imsss:controlMode choice="true" flow="true"/>'),
    )
    for request in ("start", "continue", "continue"):
        eng.navigate(request) if eng.current is None or request == "start" else eng.terminate(eng.current, {}, request)
        assert_same_as_reference(eng)
    valid = eng.request_valid()
    assert eng.current == "c"
    assert valid[PREFIX + "choice.{target=a}"] == "false"  # forwardOnly: no way back
    assert valid[PREFIX + "choice.{target=d}"] == "true"
    assert valid[PREFIX + "choice.{target=f}"] == "false"  # preventActivation on an inactive m2/m3


# -- cost ---------------------------------------------------------------------------------------------------


def _flat(n: int) -> SequencingEngine:
    mode = seq('<imsss:controlMode choice="true" flow="true"/>')
    eng = engine(*(leaf(f"a{i}") for i in range(n)), sequencing=mode)
    eng.launch(now=0)
    eng.terminate("a0", {}, f"{{target=a{n // 2}}}choice")
    return eng


def _look_ahead_seconds(eng: SequencingEngine) -> float:
    start = time.perf_counter()
    eng.request_valid()
    eng.available_controls()
    eng.toc()
    return time.perf_counter() - start


def test_look_ahead_cost_grows_linearly() -> None:
    """Four times the activities costs about four times as much, not sixty-four (the per-activity dry run
    took 0.75 s at 500 flat items and over 5 s at 1,000); a wide margin keeps a loaded machine from flaking."""
    small, large = _flat(500), _flat(2000)
    assert small.current == "a250"
    small_s = min(_look_ahead_seconds(small) for _ in range(3))
    large_s = min(_look_ahead_seconds(large) for _ in range(3))
    assert large_s < max(small_s, 0.002) * 12, (small_s, large_s)
    assert large_s < 1.0


def test_state_dump_leaves_out_records_nothing_happened_to() -> None:
    """Look-ahead reads every activity (creating its record); the dump keeps only records with data, and an
    engine restored from it answers exactly as the original."""
    eng = _flat(300)
    answers = (eng.request_valid(), eng.available_controls(), eng.toc())
    state = eng.dump_state()
    assert set(state["activities"]) == {"root", "a0", "a150"}
    # a0 was attempted and exited (satisfied by default); an objective record with only unknowns is left out.
    assert state["activities"]["a0"]["objectives"]["#primary"]["satisfied"] is True
    assert state["activities"]["a150"]["objectives"] == {}
    restored = SequencingEngine(eng.tree, state)
    assert (restored.request_valid(), restored.available_controls(), restored.toc()) == answers
    assert restored.dump_state() == state


def test_a_stored_selection_naming_another_clusters_child_falls_back_to_the_reference() -> None:
    """Available-children lists come from selection and name the cluster's own children; one that does not
    (a state from elsewhere) is answered by the per-activity reference, so the answers still agree."""
    mode = seq('<imsss:controlMode choice="true" flow="true"/>')
    eng = engine(
        cluster("m1", leaf("a"), leaf("b"), sequencing=mode),
        cluster("m2", leaf("c"), leaf("d"), sequencing=mode),
        sequencing=mode,
    )
    eng.launch(now=0)
    eng.tracking.st(eng.tree["m1"]).available = ["c", "b", "b"]
    assert_same_as_reference(eng)
    assert eng.toc()["children"][0]["children"][0]["id"] == "c"
