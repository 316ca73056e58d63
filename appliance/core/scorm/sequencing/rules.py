"""Sequencing rules (UP.2, UP.2.1), limit conditions (UP.1) and the Check Activity Process (UP.5).

Conditions evaluate to True, False or None (unknown); `not` keeps unknown unknown, and combinations follow
three-valued logic, so a rule fires only on a definite True (SN book section 4, condition table).
"""

from __future__ import annotations

from collections.abc import Iterable

from appliance.core.scorm.sequencing.activity_tree import Activity
from appliance.core.scorm.sequencing.definition import RuleCondition, SequencingRule, parse_duration
from appliance.core.scorm.sequencing.tracking import Tracking

PRE_SKIP = "skip"
PRE_DISABLED = "disabled"
PRE_HIDDEN = "hiddenFromChoice"
PRE_STOP_FORWARD = "stopForwardTraversal"
EXIT = "exit"
POST_ACTIONS = frozenset({"exitParent", "exitAll", "retry", "retryAll", "continue", "previous"})

Tri = bool | None


def combine(values: Iterable[Tri], combination: str) -> Tri:
    """`all` (true if all true, false if any false) or `any` (true if any true, false if all false)."""
    items = list(values)
    if combination == "any":
        if any(v is True for v in items):
            return True
        return False if all(v is False for v in items) else None
    if any(v is False for v in items):
        return False
    return True if all(v is True for v in items) else None


def apply_operator(value: Tri, operator: str) -> Tri:
    """`not` inverts a known value; unknown stays unknown."""
    if operator == "not" and value is not None:
        return not value
    return value


def attempt_limit_exceeded(t: Tracking, act: Activity) -> bool:
    limit = act.definition.limit_conditions.attempt_limit
    return limit is not None and t.st(act).attempt_count >= limit


def time_limit_exceeded(t: Tracking, act: Activity) -> bool:
    """Duration limits against the durations tracked so far (the clock is the caller's `now`)."""
    lc = act.definition.limit_conditions
    record = t.st(act)
    running = t.now - record.attempt_started if record.attempt_started is not None else 0.0
    checks = (
        (lc.attempt_absolute_duration_limit, record.attempt_absolute_duration + running),
        (lc.attempt_experienced_duration_limit, record.attempt_experienced_duration),
        (lc.activity_absolute_duration_limit, record.activity_absolute_duration + running),
        (lc.activity_experienced_duration_limit, record.activity_experienced_duration),
    )
    for text, spent in checks:
        limit = parse_duration(text)
        if limit is not None and spent >= limit:
            return True
    return False


def outside_time_range(t: Tracking, act: Activity) -> bool:
    lc = act.definition.limit_conditions
    if lc.begin_time_limit is not None and t.now < lc.begin_time_limit:
        return True
    return lc.end_time_limit is not None and t.now > lc.end_time_limit


def evaluate_condition(t: Tracking, act: Activity, cond: RuleCondition) -> Tri:
    """One condition on an activity (its referenced objective, or the primary one), before the operator."""
    objective = act.definition.objective(cond.referenced_objective)
    name = cond.condition
    if name == "satisfied":
        return t.satisfied(act, objective)
    if name == "objectiveStatusKnown":
        return t.satisfied(act, objective) is not None
    if name == "objectiveMeasureKnown":
        return t.measure(act, objective) is not None
    if name in ("objectiveMeasureGreaterThan", "objectiveMeasureLessThan"):
        measure = t.measure(act, objective)
        if measure is None:
            return None
        return measure > cond.measure_threshold if name.endswith("GreaterThan") else measure < cond.measure_threshold
    if name == "completed":
        return t.objective_value(act, objective, "completed")
    if name == "activityProgressKnown":
        # As in the ADL reference: the completion status is known (possibly read from a global objective),
        # through the referenced objective when the condition names one.
        return t.objective_value(act, objective, "completed") is not None
    if name == "attempted":
        return t.attempted(act)
    if name == "attemptLimitExceeded":
        return attempt_limit_exceeded(t, act)
    if name == "timeLimitExceeded":
        return time_limit_exceeded(t, act)
    if name == "outsideAvailableTimeRange":
        return outside_time_range(t, act)
    if name == "always":
        return True
    if name == "never":
        return False
    return None


def rule_fires(t: Tracking, act: Activity, rule: SequencingRule) -> bool:
    """UP.2.1 Sequencing Rule Check Subprocess: true only when the combined conditions are definitely true."""
    values = (apply_operator(evaluate_condition(t, act, c), c.operator) for c in rule.conditions)
    return combine(values, rule.combination) is True


def check_rules(t: Tracking, act: Activity, rules: tuple[SequencingRule, ...], actions: Iterable[str]) -> str | None:
    """UP.2 Sequencing Rules Check Process: the action of the first rule (document order) that fires."""
    wanted = set(actions)
    for rule in rules:
        if rule.action in wanted and rule_fires(t, act, rule):
            return rule.action
    return None


def pre_rule(t: Tracking, act: Activity, action: str) -> bool:
    """Whether a pre-condition rule with this action fires for the activity."""
    return check_rules(t, act, act.definition.pre_rules, (action,)) is not None


def exit_rule_fires(t: Tracking, act: Activity) -> bool:
    return check_rules(t, act, act.definition.exit_rules, (EXIT,)) is not None


def post_rule(t: Tracking, act: Activity) -> str | None:
    return check_rules(t, act, act.definition.post_rules, POST_ACTIONS)


def limit_conditions_violated(t: Tracking, act: Activity) -> bool:
    """UP.1 Limit Conditions Check: attempt limit and the begin/end time window (duration limits are advisory)."""
    record = t.st(act)
    if not act.tracked or record.active or record.suspended:
        return False
    return attempt_limit_exceeded(t, act) or outside_time_range(t, act)


def check_activity(t: Tracking, act: Activity) -> bool:
    """UP.5 Check Activity Process: True when the activity is disabled or its limits are exceeded."""
    return pre_rule(t, act, PRE_DISABLED) or limit_conditions_violated(t, act)


def hidden_from_choice(t: Tracking, act: Activity) -> bool:
    return pre_rule(t, act, PRE_HIDDEN)
