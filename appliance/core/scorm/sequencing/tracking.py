"""The tracking model: per-learner state of an activity tree, and reads/writes through global objectives.

`TreeState` is plain data (JSON round-trip via `to_dict`/`from_dict`) so the server can persist it between
HTTP requests. `Tracking` binds that state to the immutable `ActivityTree` and the learner's global objective
store, and is what every sequencing process reads and writes. Reads go through objective maps the way the ADL
reference does it (see `_value`); writes are pushed to mapped globals whenever an activity's local data
changes (`push`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from appliance.core.scorm.sequencing.activity_tree import Activity, ActivityTree
from appliance.core.scorm.sequencing.definition import OBJECTIVE_FIELDS, ObjectiveDef

STATE_VERSION = 1
BUDGET_STRIDE = 256  # state reads between two budget checks (a check reads the thread's CPU clock)


@dataclass
class ObjectiveState:
    """Objective progress information of one objective during the current attempt (None = unknown)."""

    satisfied: bool | None = None
    measure: float | None = None
    completed: bool | None = None
    progress_measure: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class ActivityState:
    """Activity/attempt progress information and activity state of one activity."""

    attempt_count: int = 0
    completed: bool | None = None  # Attempt Progress Status (not None) + Attempt Completion Status
    completion_amount: float | None = None  # Attempt Completion Amount (4th Ed., = progress measure)
    objectives: dict[str, ObjectiveState] = field(default_factory=dict)
    active: bool = False
    suspended: bool = False
    available: list[str] | None = None  # Available Children after selection/randomization; None = all, in order
    selection_done: bool = False
    randomization_done: bool = False
    dirty_objectives: bool = False  # data predates the parent's current attempt (useCurrentAttempt...Info)
    dirty_progress: bool = False
    content_set_completion: bool = False  # the SCO reported completion itself during this attempt
    content_set_satisfaction: bool = False
    attempt_started: float | None = None
    attempt_absolute_duration: float = 0.0
    attempt_experienced_duration: float = 0.0
    activity_absolute_duration: float = 0.0
    activity_experienced_duration: float = 0.0

    def to_dict(self) -> dict[str, Any] | None:
        """The record as `asdict` gives it, without objective records nothing was set on; None for a record
        that equals a fresh one (the caller leaves it out)."""
        objectives = {key: known for key, state in self.objectives.items() if (known := _known(state))}
        if not objectives and _SCALARS(self) == _FRESH:
            return None
        data = {name: getattr(self, name) for name in _ACTIVITY_FIELDS}
        data["objectives"] = objectives
        if data["available"] is not None:
            data["available"] = list(data["available"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActivityState:
        values = dict(data)
        values["objectives"] = {k: ObjectiveState(**v) for k, v in data.get("objectives", {}).items()}
        return cls(**values)


_ACTIVITY_FIELDS = tuple(f.name for f in fields(ActivityState))
_OBJECTIVE_FIELDS = tuple(f.name for f in fields(ObjectiveState))
_SCALARS = attrgetter(*(name for name in _ACTIVITY_FIELDS if name != "objectives"))
_FRESH = _SCALARS(ActivityState())
_UNKNOWN = attrgetter(*_OBJECTIVE_FIELDS)


def _known(state: ObjectiveState) -> dict[str, Any] | None:
    """An objective record as a dict, or None when every field is unknown (as in a fresh record)."""
    values = _UNKNOWN(state)
    if all(value is None for value in values):
        return None
    return dict(zip(_OBJECTIVE_FIELDS, values, strict=True))


@dataclass
class TreeState:
    """Global state of the sequencing session plus every activity's state."""

    current: str | None = None
    suspended_activity: str | None = None
    activities: dict[str, ActivityState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data. Records that equal a fresh one are left out (`Tracking.st` creates them again on
        first read, so nothing changes): look-ahead reads every activity, and a large course would otherwise
        store, and parse on every request, a record per activity that nothing has happened to."""
        return {
            "current": self.current,
            "suspended_activity": self.suspended_activity,
            "activities": {key: data for key, record in self.activities.items() if (data := record.to_dict())},
            "version": STATE_VERSION,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeState:
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"unsupported sequencing state version {data.get('version')!r}")
        return cls(
            current=data.get("current"),
            suspended_activity=data.get("suspended_activity"),
            activities={k: ActivityState.from_dict(v) for k, v in data.get("activities", {}).items()},
        )


class Tracking:
    """The tracking model of one learner on one tree: state, global objectives and the current time.

    It also carries the random source used by selection/randomization, because those run inside End Attempt
    and would otherwise have to be threaded through every process.
    """

    def __init__(
        self,
        tree: ActivityTree,
        state: TreeState | None = None,
        global_objectives: dict[str, dict[str, Any]] | None = None,
        now: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.tree = tree
        self.state = state if state is not None else TreeState()
        self.globals: dict[str, dict[str, Any]] = global_objectives if global_objectives is not None else {}
        self.now = now
        self.rng = rng if rng is not None else random.Random()
        # Read-only derived values (available children, last leaf, flow results, the look-ahead tables) while
        # `frozen()` is in force; None otherwise, so a process that writes the state never reads a stale value.
        self.memo: dict[Any, Any] | None = None
        # The caller's CPU budget: called every BUDGET_STRIDE state reads (every process reads through `st`),
        # it raises to abandon a request that has sequenced for too long. The engine keeps no clock itself.
        self.budget: Callable[[], None] | None = None
        self._reads = 0

    @contextmanager
    def frozen(self) -> Iterator[dict[Any, Any]]:
        """A scope in which nothing writes the tracking state, so pure reads may be memoised.

        Look-ahead (request_valid, the controls, the TOC) asks the same questions of every activity; memoising
        them for one unchanged state is what keeps it linear in the size of the tree. Re-entrant: an inner
        scope shares the outer one's memo."""
        if self.memo is not None:
            yield self.memo
            return
        self.memo = {}
        try:
            yield self.memo
        finally:
            self.memo = None

    # -- activity state ---------------------------------------------------------------------------------

    def st(self, act: Activity) -> ActivityState:
        """The state record of an activity, created on first use so untouched activities cost nothing."""
        if self.budget is not None:
            self._reads += 1
            if self._reads >= BUDGET_STRIDE:
                self._reads = 0
                self.budget()
        record = self.state.activities.get(act.id)
        if record is None:
            record = self.state.activities[act.id] = ActivityState()
        return record

    def spend(self, reads: int) -> None:
        """Count `reads` state reads toward the budget check at once: for passes over many activities that
        read little of their state each (the look-ahead table, rollup over a large cluster), so that they are
        still bounded by the caller's budget."""
        if self.budget is not None:
            self._reads += reads
            if self._reads >= BUDGET_STRIDE:
                self._reads = 0
                self.budget()

    def obj(self, act: Activity, objective: ObjectiveDef) -> ObjectiveState:
        record = self.st(act).objectives.get(objective.key)
        if record is None:
            record = self.st(act).objectives[objective.key] = ObjectiveState()
        return record

    @property
    def current(self) -> Activity | None:
        return self.tree.get(self.state.current)

    @current.setter
    def current(self, act: Activity | None) -> None:
        self.state.current = act.id if act is not None else None

    @property
    def suspended_activity(self) -> Activity | None:
        return self.tree.get(self.state.suspended_activity)

    @suspended_activity.setter
    def suspended_activity(self, act: Activity | None) -> None:
        self.state.suspended_activity = act.id if act is not None else None

    def children(self, act: Activity) -> list[Activity]:
        """Available Children: the selected (and possibly reordered) children, all of them by default."""
        available = self.st(act).available if act.children else None
        if available is None:
            return act.children
        memo = self.memo
        if memo is not None:
            key = ("children", act.id)
            cached = memo.get(key)
            if cached is None:
                cached = memo[key] = [self.tree[child_id] for child_id in available if child_id in self.tree.by_id]
            return cached
        return [self.tree[child_id] for child_id in available if child_id in self.tree.by_id]

    def is_available(self, act: Activity) -> bool:
        """Whether the activity and all its ancestors survived selection (SR.1)."""
        if self.memo is not None:
            return self._available_flags()[act.order]
        return all(node.parent is None or node in self.children(node.parent) for node in act.ancestors())

    def available_flags(self) -> list[bool]:
        """`is_available` of every activity, by preorder position (a copy the caller may keep)."""
        if self.memo is not None:
            return list(self._available_flags())
        return [self.is_available(act) for act in self.tree.preorder]

    def _available_flags(self) -> list[bool]:
        """`is_available` of every activity (by preorder position) in one pass, parents first (memoised)."""
        assert self.memo is not None
        flags = self.memo.get("available")
        if flags is None:
            flags = [False] * len(self.tree.preorder)
            flags[self.tree.root.order] = True
            for act in self.tree.preorder:  # parents come before their children
                if flags[act.order] and act.children:
                    for child in self.children(act):
                        if child.parent is act:  # a stored list naming someone else's child does not count
                            flags[child.order] = True
            self.memo["available"] = flags
        return flags

    def untouched(self, act: Activity) -> bool:
        """Nothing has happened to the activity (no attempt, no status, measure or completion amount) and its
        primary objective reads no global: every status read of it is unknown. Rollup over a large cluster
        and the TOC answer such activities without the reads (and without creating their records)."""
        primary = act.definition.primary
        if primary.maps:
            return False
        record = self.state.activities.get(act.id)
        if record is None:
            return True
        if record.attempt_count or record.active or record.suspended:
            return False
        if record.completed is not None or record.completion_amount is not None:
            return False
        objective = record.objectives.get(primary.key)
        return objective is None or (objective.satisfied is None and objective.measure is None)

    def attempted(self, act: Activity) -> bool:
        """Activity Progress Status: at least one attempt began."""
        return self.st(act).attempt_count > 0

    # -- reads (through objective maps) ----------------------------------------------------------------

    def _value(self, act: Activity, objective: ObjectiveDef, name: str, local: Any, current_only: bool) -> Any:
        """Read one field through the first map that reads it, else locally.

        For satisfaction and measure the global value wins even when unknown: the ADL reference creates those
        global records when the course is registered, so a mapped objective never sees its own local value.
        The 4th Ed. fields (completion, progress measure, scores) fall back to the local value while the global
        one is unknown. `current_only` (rollup with useCurrentAttempt...Info) ignores local data older than the
        parent's current attempt ("dirty" data in the ADL reference); mapped globals are not affected."""
        for m in objective.maps:
            if m.reads(name):
                value = self.globals.get(m.target_id, {}).get(name)
                if value is not None or name in ("satisfied", "measure"):
                    return value
                break
        record = self.st(act)
        dirty = record.dirty_progress if name in ("completed", "progress_measure") else record.dirty_objectives
        return None if current_only and dirty else local

    def measure(self, act: Activity, objective: ObjectiveDef | None = None, current_only: bool = False) -> float | None:
        """Objective Normalized Measure, or None when the measure status is false."""
        if not act.tracked:
            return None
        objective = objective or act.definition.primary
        value = self._value(act, objective, "measure", self.obj(act, objective).measure, current_only)
        return None if value is None else float(value)

    def satisfied(
        self, act: Activity, objective: ObjectiveDef | None = None, current_only: bool = False
    ) -> bool | None:
        """Objective Satisfied Status, or None when the objective progress status is false."""
        if not act.tracked:
            return None
        objective = objective or act.definition.primary
        if objective.satisfied_by_measure:
            # Only the measure decides (a mapped satisfied status is ignored, as the conformance suite expects).
            return self._satisfied_by_measure(act, objective, current_only)
        value = self._value(act, objective, "satisfied", self.obj(act, objective).satisfied, current_only)
        return None if value is None else bool(value)

    def _measure_blocked(self, act: Activity, objective: ObjectiveDef) -> bool:
        """RB.1.2 a: an active activity's measure does not decide satisfaction unless measureSatisfactionIfActive."""
        return objective.primary and self.st(act).active and not act.definition.rollup.measure_satisfaction_if_active

    def _satisfied_by_measure(self, act: Activity, objective: ObjectiveDef, current_only: bool = False) -> bool | None:
        measure = self.measure(act, objective, current_only)
        if measure is None or self._measure_blocked(act, objective):
            return None
        return measure >= objective.min_normalized_measure

    def completed(self, act: Activity, current_only: bool = False) -> bool | None:
        """Attempt Completion Status (None = attempt progress status false).

        With completedByMeasure it follows the (possibly mapped) completion amount when read; what the activity
        itself records and publishes is decided when its amount is set (`set_completion_amount`)."""
        if not act.tracked:
            return None
        threshold = act.completion_threshold
        if threshold is not None and threshold.completed_by_measure:
            amount = self.completion_amount(act, current_only)
            return None if amount is None else amount >= threshold.min_progress_measure
        value = self._value(act, act.definition.primary, "completed", self.st(act).completed, current_only)
        return None if value is None else bool(value)

    def completion_status_read(self, act: Activity) -> bool | None:
        """Attempt Completion Status as the run-time data shows it (cmi.objectives.n.completion_status of the
        primary objective): a status read through the primary's maps as it was written, not re-evaluated
        against this activity's own completion threshold; else the activity's own status."""
        if not act.tracked:
            return None
        value = self._value(act, act.definition.primary, "completed", self.st(act).completed, False)
        return None if value is None else bool(value)

    def set_completion_amount(self, act: Activity, amount: float | None) -> None:
        """Record the attempt completion amount; with completedByMeasure it also decides completion (RB.1.3 a),
        at the moment it is set, as the ADL reference does (so a mapped completion status is written too)."""
        record = self.st(act)
        record.completion_amount = amount
        if self.by_measure(act):
            threshold = act.completion_threshold
            assert threshold is not None
            record.completed = None if amount is None else amount >= threshold.min_progress_measure

    def by_measure(self, act: Activity) -> bool:
        """4th Ed. adlcp:completionThreshold@completedByMeasure: completion comes from the progress measure."""
        return act.completion_threshold is not None and act.completion_threshold.completed_by_measure

    def completion_amount(self, act: Activity, current_only: bool = False) -> float | None:
        """Attempt Completion Amount (progress measure), read through the primary objective's maps."""
        if not act.tracked:
            return None
        local = self.st(act).completion_amount
        value = self._value(act, act.definition.primary, "progress_measure", local, current_only)
        return None if value is None else float(value)

    def objective_value(self, act: Activity, objective: ObjectiveDef, name: str, current_only: bool = False) -> Any:
        """Any objective field by name (OBJECTIVE_FIELDS); the primary's completion is the activity's.

        An untracked activity has no tracking data at all, not even what its maps could read."""
        if not act.tracked:
            return None
        if name == "satisfied":
            return self.satisfied(act, objective, current_only)
        if name == "measure":
            return self.measure(act, objective, current_only)
        if objective.primary and name == "completed":
            return self.completed(act, current_only)
        if objective.primary and name == "progress_measure":
            return self.completion_amount(act, current_only)
        return self._value(act, objective, name, getattr(self.obj(act, objective), name), current_only)

    # -- writes -----------------------------------------------------------------------------------------

    def _local(self, act: Activity, objective: ObjectiveDef, name: str) -> Any:
        """The value this activity would publish for a field: its own data, not what it reads."""
        if name == "satisfied":
            if objective.satisfied_by_measure:
                return self._satisfied_by_measure(act, objective)
            return self.obj(act, objective).satisfied
        if objective.primary and name == "completed":
            return self.st(act).completed
        if objective.primary and name == "progress_measure":
            return self.st(act).completion_amount
        return getattr(self.obj(act, objective), name)

    def push(self, act: Activity, clear_unknown: bool = False) -> set[str]:
        """Write the activity's objective data to the globals it maps with write rights.

        Known values always overwrite. An unknown value clears the global field only with `clear_unknown`, for
        the primary objective: that is what rollup computes for a cluster (the ADL reference clears a measure it
        cannot roll up). A leaf's unknown fields usually mean "not reported", and several activities may write
        the same global, so those never erase anything."""
        written: set[str] = set()
        if not act.tracked:
            return written
        for objective in act.definition.objectives:
            for m in objective.maps:
                for name in OBJECTIVE_FIELDS:
                    if m.writes(name):
                        value = self._local(act, objective, name)
                        if value is not None or (clear_unknown and objective.primary):
                            self._write(m.target_id, name, value)
                            written.add(m.target_id)
        return written

    def sync_from_globals(self, act: Activity) -> None:
        """A resumed attempt: fields an objective both reads from and writes to one global take the global's
        (known) value, so that pushing the attempt's data later does not put back what the activity had
        before it was suspended over what other activities have written since (the ADL reference writes a
        global only when a value is set, and reads through it)."""
        if not act.tracked:
            return
        for objective in act.definition.objectives:
            for m in objective.maps:
                for name in OBJECTIVE_FIELDS:
                    if not (m.reads(name) and m.writes(name)):
                        continue
                    value = self.globals.get(m.target_id, {}).get(name)
                    if value is None or (name == "satisfied" and objective.satisfied_by_measure):
                        continue
                    if objective.primary and name == "completed":
                        self.st(act).completed = bool(value)
                    elif objective.primary and name == "progress_measure":
                        self.st(act).completion_amount = float(value)
                    else:
                        setattr(self.obj(act, objective), name, value)

    def clear_global(self, act: Activity, objective: ObjectiveDef, name: str) -> None:
        """The content explicitly reported this field as unknown: clear it in the globals it writes."""
        if act.tracked:
            for m in objective.maps:
                if m.writes(name):
                    self._write(m.target_id, name, None)

    def _write(self, target: str, name: str, value: Any) -> None:
        record = self.globals.setdefault(target, {})
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value

    def readers_of(self, targets: set[str]) -> list[Activity]:
        """Activities whose objectives read one of these globals (their parents need rollup after a write)."""
        return [
            act
            for act in self.tree.preorder
            if any(m.target_id in targets for obj in act.definition.objectives for m in obj.maps)
        ]

    # -- attempts ---------------------------------------------------------------------------------------

    def begin_attempt(self, act: Activity) -> None:
        """DB.2 step 4: a new attempt, with fresh objective and attempt progress information."""
        record = self.st(act)
        record.attempt_count += 1
        record.completed = None
        record.completion_amount = None
        record.objectives = {}
        record.content_set_completion = False
        record.content_set_satisfaction = False
        record.attempt_started = self.now
        record.attempt_absolute_duration = 0.0
        record.attempt_experienced_duration = 0.0
        record.dirty_objectives = record.dirty_progress = False
        controls = act.definition.control_mode
        for child in self.children(act):
            self._mark_dirty(
                child, controls.use_current_attempt_objective_info, controls.use_current_attempt_progress_info
            )

    def _mark_dirty(self, act: Activity, objectives: bool, progress: bool) -> None:
        """A new attempt on a cluster makes its descendants' existing data "previous attempt" data."""
        if not (objectives or progress):
            return
        record = self.state.activities.get(act.id)  # not `st`: no record is made for each untouched child
        if record is None or record.attempt_count == 0:
            return  # nothing recorded yet, so nothing from an earlier attempt to ignore
        record.dirty_objectives = record.dirty_objectives or objectives
        record.dirty_progress = record.dirty_progress or progress
        controls = act.definition.control_mode
        for child in self.children(act):
            self._mark_dirty(
                child,
                objectives and controls.use_current_attempt_objective_info,
                progress and controls.use_current_attempt_progress_info,
            )

    def close_attempt_clock(self, act: Activity) -> None:
        """Accumulate absolute durations when an attempt ends or is suspended (time comes from the caller)."""
        record = self.st(act)
        if record.attempt_started is not None:
            elapsed = max(0.0, self.now - record.attempt_started)
            record.attempt_absolute_duration += elapsed
            record.activity_absolute_duration += elapsed
            record.attempt_started = None
