"""Rollup (RB.1.1 - RB.1.5): derive a cluster's measure, satisfaction and completion from its children.

Satisfaction by measure (RB.1.2 a) is derived by `Tracking` whenever it is read; completion by measure
(RB.1.3 a) is decided when the completion amount is set. Either way the rule-based rollup is then skipped.
When no rollup rule exists for satisfaction or completion, the default rules of the SN book are used.
"""

from __future__ import annotations

from collections.abc import Iterator

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.definition import RollupRule, RuleCondition
from appliance.core.scorm.sequencing.rules import (
    PRE_SKIP,
    Tri,
    apply_operator,
    attempt_limit_exceeded,
    combine,
    outside_time_range,
    pre_rule,
    time_limit_exceeded,
)
from appliance.core.scorm.sequencing.tracking import Tracking

SATISFIED = "satisfied"
NOT_SATISFIED = "notSatisfied"
COMPLETED = "completed"
INCOMPLETE = "incomplete"

# Used when an activity defines no rule for that pair of actions (RB.1.2 c / RB.1.3 c in some texts).
DEFAULT_OBJECTIVE_RULES = (
    RollupRule(action=NOT_SATISFIED, conditions=(RuleCondition("objectiveStatusKnown"),)),
    RollupRule(action=SATISFIED, conditions=(RuleCondition("satisfied"),)),
)
DEFAULT_PROGRESS_RULES = (
    RollupRule(action=INCOMPLETE, conditions=(RuleCondition("activityProgressKnown"),)),
    RollupRule(action=COMPLETED, conditions=(RuleCondition("completed"),)),
)


def measure_rollups(t: Tracking, act: Activity) -> set[int]:
    """RB.1.1 a (the weighted average of the tracked children's measures) and RB.1.1 b (4th Ed., of their
    completion amounts, by progressWeight), unknown when no child's is known, in one pass over the
    children; returns the children nothing has happened to (`Tracking.untouched`, ids), for the rules.

    One pass, because a cluster of thousands of activities is walked on every rollup: rolling it up writes
    only the cluster's own data, so the children's answers hold for the whole of it."""
    quiet: set[int] = set()
    records = t.state.activities
    measure_total = measure_counted = amount_total = amount_counted = 0.0
    measure_known = amount_known = False
    for child in t.children(act):
        # No record and no global read is untouched; `untouched` decides the rest.
        untouched = (records.get(child.id) is None and not child.definition.primary.maps) or t.untouched(child)
        if untouched:
            quiet.add(id(child))
        if not child.tracked:
            continue
        weight = child.definition.rollup.objective_measure_weight
        progress_weight = child.completion_threshold.progress_weight if child.completion_threshold else 1.0
        measure_counted += weight
        amount_counted += progress_weight
        if untouched:
            continue
        measure = t.measure(child)
        if measure is not None:
            measure_known = True
            measure_total += weight * measure
        amount = t.completion_amount(child)
        if amount is not None:
            amount_known = True
            amount_total += progress_weight * amount
    known = measure_known and measure_counted > 0
    t.obj(act, act.definition.primary).measure = measure_total / measure_counted if known else None
    known = amount_known and amount_counted > 0
    t.set_completion_amount(act, amount_total / amount_counted if known else None)
    return quiet


# What the status conditions answer for an activity nothing has happened to (`Tracking.untouched`).
_UNTOUCHED_CONDITIONS: dict[str, Tri] = {
    "satisfied": None,
    "objectiveStatusKnown": False,
    "objectiveMeasureKnown": False,
    "completed": None,
    "activityProgressKnown": False,
    "attempted": False,
}


def rollup_condition(t: Tracking, child: Activity, cond: RuleCondition, untouched: bool | None = None) -> Tri:
    """RB.1.4.1 condition on a child's primary objective, looking only at data from the parent's current
    attempt where useCurrentAttemptObjectiveInfo / useCurrentAttemptProgressInfo ask for it."""
    name = cond.condition
    if name in _UNTOUCHED_CONDITIONS and (untouched if untouched is not None else t.untouched(child)):
        return _UNTOUCHED_CONDITIONS[name]
    if name == "satisfied":
        return t.satisfied(child, current_only=True)
    if name == "objectiveStatusKnown":
        return t.satisfied(child, current_only=True) is not None
    if name == "objectiveMeasureKnown":
        return t.measure(child, current_only=True) is not None
    if name == "completed":
        return t.completed(child, current_only=True)
    if name == "activityProgressKnown":
        return t.completed(child, current_only=True) is not None
    if name == "attempted":
        return t.attempted(child)
    if name == "attemptLimitExceeded":
        return attempt_limit_exceeded(t, child)
    if name == "timeLimitExceeded":
        return time_limit_exceeded(t, child)
    if name == "outsideAvailableTimeRange":
        return outside_time_range(t, child)
    if name == "always":
        return True
    return False if name == "never" else None


def contributes(t: Tracking, child: Activity, action: str) -> bool:
    """RB.1.4.2 Check Child for Rollup: rollup controls plus the adlseq requiredFor... considerations."""
    rollup = child.definition.rollup
    if action in (SATISFIED, NOT_SATISFIED):
        if not rollup.rollup_objective_satisfied:
            return False
        required = rollup.required_for_satisfied if action == SATISFIED else rollup.required_for_not_satisfied
    else:
        if not rollup.rollup_progress_completion:
            return False
        required = rollup.required_for_completed if action == COMPLETED else rollup.required_for_incomplete
    if required == "ifAttempted":
        return t.attempted(child)
    if required == "ifNotSkipped":
        return not pre_rule(t, child, PRE_SKIP)
    if required == "ifNotSuspended":
        return not (t.attempted(child) and t.st(child).suspended)
    return True


def rule_applies(t: Tracking, act: Activity, rule: RollupRule, quiet: set[int] | None = None) -> bool:
    """RB.1.4 for one rule: evaluate each contributing tracked child, then apply the child activity set.

    Edge cases follow the ADL reference (the conformance suite depends on them): with no contributing child,
    `all` and `none` hold while the counting sets do not; a bag of only unknowns satisfies no set but `none`
    fails too; the percentage is rounded to the nearest whole child.
    """
    kind = rule.child_activity_set
    values = _child_values(t, act, rule, quiet)
    # `all`, `any` and `none` are decided by the first child that answers otherwise: the rest of a large
    # cluster is not evaluated (reads have no effect, so the answer is the same as with the whole bag).
    if kind == "all":
        return all(v is True for v in values)
    if kind == "any":
        return any(v is True for v in values)
    if kind == "none":
        return all(v is False for v in values)
    bag = list(values)
    hits = sum(1 for v in bag if v is True)
    all_unknown = all(v is None for v in bag)
    if kind == "atLeastCount":
        return bool(bag) and not all_unknown and hits >= rule.minimum_count
    if kind == "atLeastPercent":
        return bool(bag) and not all_unknown and hits >= int(rule.minimum_percent * len(bag) + 0.5)
    return not bag or (not all_unknown and hits == len(bag))


def _child_values(t: Tracking, act: Activity, rule: RollupRule, quiet: set[int] | None) -> Iterator[Tri]:
    """The rule's value for each contributing tracked child, in order, evaluated as they are asked for."""
    single = rule.conditions[0] if len(rule.conditions) == 1 else None
    for child in t.children(act):
        if child.tracked and contributes(t, child, rule.action):
            untouched = id(child) in quiet if quiet is not None else None
            if single is not None:  # combining one value gives that value
                yield apply_operator(rollup_condition(t, child, single, untouched), single.operator)
                continue
            values = (apply_operator(rollup_condition(t, child, c, untouched), c.operator) for c in rule.conditions)
            yield combine(values, rule.combination)


def rules_fire(
    t: Tracking, act: Activity, rules: tuple[RollupRule, ...], action: str, quiet: set[int] | None = None
) -> bool:
    """RB.1.4 Rollup Rule Check Subprocess: does any rule with this action apply?"""
    return any(rule.action == action and rule_applies(t, act, rule, quiet) for rule in rules)


def _rules_for(act: Activity, actions: tuple[str, str], defaults: tuple[RollupRule, ...]) -> tuple[RollupRule, ...]:
    own = tuple(r for r in act.definition.rollup_rules if r.action in actions)
    return own or defaults


def objective_rollup(t: Tracking, act: Activity, quiet: set[int] | None = None) -> None:
    """RB.1.2 b (or the default rules): notSatisfied first, satisfied wins; nothing fires, nothing changes."""
    primary = act.definition.primary
    if primary.satisfied_by_measure:
        return  # RB.1.2 a: derived from the rolled-up measure when read
    rules = _rules_for(act, (SATISFIED, NOT_SATISFIED), DEFAULT_OBJECTIVE_RULES)
    record = t.obj(act, primary)
    if rules_fire(t, act, rules, NOT_SATISFIED, quiet):
        record.satisfied = False
    if rules_fire(t, act, rules, SATISFIED, quiet):
        record.satisfied = True


def progress_rollup(t: Tracking, act: Activity, quiet: set[int] | None = None) -> None:
    """RB.1.3 b (or the default rules): incomplete first, completed wins."""
    if t.by_measure(act):
        return  # RB.1.3 a: decided by the completion measure rollup
    rules = _rules_for(act, (COMPLETED, INCOMPLETE), DEFAULT_PROGRESS_RULES)
    record = t.st(act)
    if rules_fire(t, act, rules, INCOMPLETE, quiet):
        record.completed = False
    if rules_fire(t, act, rules, COMPLETED, quiet):
        record.completed = True


def rollup_activity(t: Tracking, act: Activity) -> set[str]:
    """One step of RB.1.5 on a cluster; returns the global objectives it wrote."""
    if act.is_leaf or not act.tracked:
        return t.push(act)
    t.spend(len(act.children))
    quiet = measure_rollups(t, act)
    objective_rollup(t, act, quiet)
    progress_rollup(t, act, quiet)
    return t.push(act, clear_unknown=True)


def overall_rollup(t: Tracking, act: Activity) -> None:
    """RB.1.5 from an activity to the root, extended like the ADL reference to the clusters above activities
    that read a global objective written on the way (their status depends on it), deepest first."""
    pending = {node.id: node for node in act.ancestors()}
    done: set[str] = set()
    while pending:
        node = max(pending.values(), key=lambda a: (a.depth, a.order))
        del pending[node.id]
        done.add(node.id)
        written = rollup_activity(t, node)
        if not written:
            continue
        for reader in t.readers_of(written):
            for ancestor in reader.ancestors(include_self=False):
                if ancestor.id not in done and t.is_available(ancestor):
                    pending[ancestor.id] = ancestor
