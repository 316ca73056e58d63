"""The Sequencing Definition Model: `<imsss:sequencing>` XML text parsed into immutable structs.

The manifest parser keeps each `<imsss:sequencing>` element as standalone XML text (see `scorm.model`), so this
module owns every sequencing element and its defaults. An `IDRef` starts from the referenced element of the
`<imsss:sequencingCollection>`; each child element the item repeats then replaces the referenced one as a whole
(its missing attributes take their defaults, as the ADL conformance suite expects), except `sequencingRules`,
where each kind of rule the item defines (pre, exit, post) replaces that kind only, as in the ADL reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from lxml import etree

ALWAYS = "always"
OBJECTIVE_FIELDS = ("satisfied", "measure", "completed", "progress_measure", "raw", "min", "max")


@dataclass(frozen=True, slots=True)
class ControlMode:
    """imsss:controlMode: how the children of this activity may be navigated (choiceExit is about itself)."""

    choice: bool = True
    choice_exit: bool = True
    flow: bool = False
    forward_only: bool = False
    use_current_attempt_objective_info: bool = True
    use_current_attempt_progress_info: bool = True


@dataclass(frozen=True, slots=True)
class RuleCondition:
    """One imsss:ruleCondition or imsss:rollupCondition."""

    condition: str
    operator: str = "noOp"
    referenced_objective: str | None = None
    measure_threshold: float = 0.0


@dataclass(frozen=True, slots=True)
class SequencingRule:
    """A pre-, exit- or post-condition rule: conditions combined by `combination`, then one action."""

    action: str
    conditions: tuple[RuleCondition, ...] = ()
    combination: str = "all"


@dataclass(frozen=True, slots=True)
class LimitConditions:
    """imsss:limitConditions; durations are kept as seconds and as the original text (for cmi.max_time_allowed)."""

    attempt_limit: int | None = None
    attempt_absolute_duration_limit: str | None = None
    attempt_experienced_duration_limit: str | None = None
    activity_absolute_duration_limit: str | None = None
    activity_experienced_duration_limit: str | None = None
    begin_time_limit: float | None = None
    end_time_limit: float | None = None


@dataclass(frozen=True, slots=True)
class RollupRule:
    """imsss:rollupRule; conditions default to `any` (unlike sequencing rules)."""

    action: str
    conditions: tuple[RuleCondition, ...] = ()
    combination: str = "any"
    child_activity_set: str = "all"
    minimum_count: int = 0
    minimum_percent: float = 0.0


@dataclass(frozen=True, slots=True)
class ObjectiveMap:
    """imsss:mapInfo merged with the adlseq:mapInfo of the same target (4th Edition extended fields)."""

    target_id: str
    read_satisfied: bool = True
    read_measure: bool = True
    write_satisfied: bool = False
    write_measure: bool = False
    read_completed: bool = True
    read_progress_measure: bool = True
    read_raw: bool = True
    read_min: bool = True
    read_max: bool = True
    write_completed: bool = False
    write_progress_measure: bool = False
    write_raw: bool = False
    write_min: bool = False
    write_max: bool = False

    def reads(self, name: str) -> bool:
        """Whether this map reads tracking field `name` (one of OBJECTIVE_FIELDS) from the global objective."""
        return bool(getattr(self, f"read_{name}"))

    def writes(self, name: str) -> bool:
        """Whether this map writes tracking field `name` to the global objective."""
        return bool(getattr(self, f"write_{name}"))


@dataclass(frozen=True, slots=True)
class ObjectiveDef:
    """imsss:primaryObjective or imsss:objective."""

    objective_id: str | None
    primary: bool = False
    satisfied_by_measure: bool = False
    min_normalized_measure: float = 1.0
    maps: tuple[ObjectiveMap, ...] = ()

    @property
    def key(self) -> str:
        """The key of this objective in the tracking state; a primary objective may have no ID."""
        return self.objective_id if self.objective_id is not None else "#primary"


@dataclass(frozen=True, slots=True)
class Randomization:
    """imsss:randomizationControls."""

    randomization_timing: str = "never"
    select_count: int | None = None
    reorder_children: bool = False
    selection_timing: str = "never"


@dataclass(frozen=True, slots=True)
class DeliveryControls:
    """imsss:deliveryControls."""

    tracked: bool = True
    completion_set_by_content: bool = False
    objective_set_by_content: bool = False


@dataclass(frozen=True, slots=True)
class RollupConsiderations:
    """adlseq:rollupConsiderations plus the rollup attributes of imsss:rollupRules."""

    required_for_satisfied: str = ALWAYS
    required_for_not_satisfied: str = ALWAYS
    required_for_completed: str = ALWAYS
    required_for_incomplete: str = ALWAYS
    measure_satisfaction_if_active: bool = True
    rollup_objective_satisfied: bool = True
    rollup_progress_completion: bool = True
    objective_measure_weight: float = 1.0


PRIMARY_DEFAULT = ObjectiveDef(objective_id=None, primary=True)


@dataclass(frozen=True, slots=True)
class SequencingDefinition:
    """Everything the sequencer knows about one activity's sequencing (element defaults when absent)."""

    control_mode: ControlMode = ControlMode()
    pre_rules: tuple[SequencingRule, ...] = ()
    exit_rules: tuple[SequencingRule, ...] = ()
    post_rules: tuple[SequencingRule, ...] = ()
    limit_conditions: LimitConditions = LimitConditions()
    rollup_rules: tuple[RollupRule, ...] = ()
    rollup: RollupConsiderations = RollupConsiderations()
    objectives: tuple[ObjectiveDef, ...] = (PRIMARY_DEFAULT,)
    randomization: Randomization = Randomization()
    delivery: DeliveryControls = DeliveryControls()
    constrain_choice: bool = False
    prevent_activation: bool = False

    @property
    def primary(self) -> ObjectiveDef:
        """The rolled-up objective (always the first one)."""
        return self.objectives[0]

    def objective(self, objective_id: str | None) -> ObjectiveDef:
        """The objective with this ID, or the primary objective when the ID is absent or unknown."""
        if objective_id is not None:
            for obj in self.objectives:
                if obj.objective_id == objective_id:
                    return obj
        return self.primary


DEFAULT_DEFINITION = SequencingDefinition()


# ---------------------------------------------------------------------------------------------------------
# Value parsing


def parse_bool(text: str | None, default: bool) -> bool:
    """xs:boolean, tolerant of surrounding blanks; anything unrecognised keeps the default."""
    if text is None:
        return default
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    return default


def parse_float(text: str | None, default: float) -> float:
    """xs:decimal; unparsable values keep the default rather than failing the whole package."""
    if text is None:
        return default
    try:
        return float(text.strip())
    except ValueError:
        return default


def normalize_id(text: str | None) -> str | None:
    """Objective IDs are URIs compared the way the ADL conformance suite expects: percent-escapes decoded,
    then blanks collapsed like an xs:token, so `obj%201`, ` obj 1 ` and `%20obj%20%201%20` all name `obj 1`
    (which is also the ID the SCO sees in cmi.objectives.n.id)."""
    if text is None:
        return None
    return " ".join(unquote(text).split())


def parse_int(text: str | None) -> int | None:
    """xs:nonNegativeInteger or None."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_DURATION_FACTORS = {"y": 365 * 86400, "mo": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "mi": 60, "s": 1}


def parse_duration(text: str | None) -> float | None:
    """xs:duration / CMITimespan to seconds (1Y = 365 days, 1M = 30 days, as public implementations do)."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match is None or text.strip() in ("P", "PT") or text.strip().endswith("T"):
        return None
    total = sum(float(match.group(name)) * factor for name, factor in _DURATION_FACTORS.items() if match.group(name))
    return -total if match.group("sign") else total


def parse_datetime(text: str | None) -> float | None:
    """xs:dateTime to epoch seconds; a value without a zone is taken as UTC so results do not depend on the host."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ---------------------------------------------------------------------------------------------------------
# XML -> raw parts -> definition


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _is_adlseq(el: Any) -> bool:
    return "adlseq" in (etree.QName(el).namespace or "")


def _children(el: Any, name: str) -> list[Any]:
    return [child for child in el if _local(child) == name]


def _child(el: Any, name: str) -> Any | None:
    found = _children(el, name)
    return found[0] if found else None


def _conditions(container: Any | None, item_name: str) -> tuple[str, tuple[RuleCondition, ...]]:
    if container is None:
        return "", ()
    conds = tuple(
        RuleCondition(
            condition=(c.get("condition") or "").strip(),
            operator=(c.get("operator") or "noOp").strip(),
            referenced_objective=normalize_id(c.get("referencedObjective")),
            measure_threshold=parse_float(c.get("measureThreshold"), 0.0),
        )
        for c in _children(container, item_name)
    )
    return (container.get("conditionCombination") or "").strip(), conds


def _sequencing_rule(rule_el: Any) -> SequencingRule:
    combination, conds = _conditions(_child(rule_el, "ruleConditions"), "ruleCondition")
    action_el = _child(rule_el, "ruleAction")
    action = (action_el.get("action") or "").strip() if action_el is not None else ""
    return SequencingRule(action=action, conditions=conds, combination=combination or "all")


def _rollup_rule(rule_el: Any) -> RollupRule:
    combination, conds = _conditions(_child(rule_el, "rollupConditions"), "rollupCondition")
    action_el = _child(rule_el, "rollupAction")
    return RollupRule(
        action=(action_el.get("action") or "").strip() if action_el is not None else "",
        conditions=conds,
        combination=combination or "any",
        child_activity_set=(rule_el.get("childActivitySet") or "all").strip(),
        minimum_count=parse_int(rule_el.get("minimumCount")) or 0,
        minimum_percent=parse_float(rule_el.get("minimumPercent"), 0.0),
    )


_IMS_MAP_ATTRS = {
    "readSatisfiedStatus": "read_satisfied",
    "readNormalizedMeasure": "read_measure",
    "writeSatisfiedStatus": "write_satisfied",
    "writeNormalizedMeasure": "write_measure",
}
_ADL_MAP_ATTRS = {
    "readCompletionStatus": "read_completed",
    "readProgressMeasure": "read_progress_measure",
    "readRawScore": "read_raw",
    "readMinScore": "read_min",
    "readMaxScore": "read_max",
    "writeCompletionStatus": "write_completed",
    "writeProgressMeasure": "write_progress_measure",
    "writeRawScore": "write_raw",
    "writeMinScore": "write_min",
    "writeMaxScore": "write_max",
}


# An imsss:mapInfo alone shares satisfaction and measure only; the 4th Ed. fields need an adlseq:mapInfo.
_NO_EXTENDED_READS = {name: False for name in _ADL_MAP_ATTRS.values() if name.startswith("read_")}


def _map_flags(el: Any, attrs: Mapping[str, str]) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for attr, name in attrs.items():
        default = name.startswith("read_")
        flags[name] = parse_bool(el.get(attr), default)
    return flags


def _objective(el: Any, primary: bool) -> ObjectiveDef:
    min_el = _child(el, "minNormalizedMeasure")
    maps = tuple(
        ObjectiveMap(
            target_id=normalize_id(m.get("targetObjectiveID")) or "",
            **_map_flags(m, _IMS_MAP_ATTRS),
            **_NO_EXTENDED_READS,
        )
        for m in _children(el, "mapInfo")
    )
    return ObjectiveDef(
        objective_id=normalize_id(el.get("objectiveID")),
        primary=primary,
        satisfied_by_measure=parse_bool(el.get("satisfiedByMeasure"), False),
        min_normalized_measure=parse_float(min_el.text if min_el is not None else None, 1.0),
        maps=maps,
    )


def _objectives(el: Any) -> list[ObjectiveDef]:
    objectives: list[ObjectiveDef] = []
    primary_el = _child(el, "primaryObjective")
    objectives.append(_objective(primary_el, True) if primary_el is not None else PRIMARY_DEFAULT)
    objectives.extend(_objective(o, False) for o in _children(el, "objective"))
    return objectives


def _apply_adl_maps(objectives: list[ObjectiveDef], adl_el: Any) -> list[ObjectiveDef]:
    """Fold adlseq:objectives/objective/mapInfo (4th Ed. extended fields) into the matching imsss objectives."""
    result = list(objectives)
    for adl_obj in _children(adl_el, "objective"):
        obj_id = normalize_id(adl_obj.get("objectiveID"))
        for index, obj in enumerate(result):
            if obj.objective_id != obj_id:
                continue
            maps = list(obj.maps)
            for m in _children(adl_obj, "mapInfo"):
                target = normalize_id(m.get("targetObjectiveID")) or ""
                flags = _map_flags(m, _ADL_MAP_ATTRS)
                existing = [i for i, mp in enumerate(maps) if mp.target_id == target]
                if existing:
                    maps[existing[0]] = replace(maps[existing[0]], **flags)
                else:
                    maps.append(ObjectiveMap(target_id=target, read_satisfied=False, read_measure=False, **flags))
            result[index] = replace(obj, maps=tuple(maps))
    return result


@dataclass
class _Parts:
    """The pieces of one <imsss:sequencing> element; later parts (the item's own) override earlier (IDRef)."""

    attrs: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: dict[str, tuple[SequencingRule, ...]] = field(default_factory=dict)
    rollup_rules: tuple[RollupRule, ...] | None = None
    objectives: list[ObjectiveDef] | None = None
    adl_objectives: Any | None = None

    def merge(self, other: _Parts) -> _Parts:
        return _Parts(
            attrs={**self.attrs, **other.attrs},  # an element the item repeats replaces the referenced one
            rules={**self.rules, **other.rules},
            rollup_rules=other.rollup_rules if other.rollup_rules is not None else self.rollup_rules,
            objectives=other.objectives if other.objectives is not None else self.objectives,
            adl_objectives=other.adl_objectives if other.adl_objectives is not None else self.adl_objectives,
        )


_ATTR_ELEMENTS = (
    "controlMode",
    "limitConditions",
    "randomizationControls",
    "deliveryControls",
    "constrainedChoiceConsiderations",
    "rollupConsiderations",
)
_RULE_KINDS = {"preConditionRule": "pre", "exitConditionRule": "exit", "postConditionRule": "post"}


def _parts(el: Any) -> _Parts:
    parts = _Parts()
    for child in el:
        name = _local(child)
        if name in _ATTR_ELEMENTS:
            parts.attrs[name] = dict(child.attrib)
        elif name == "sequencingRules":
            # Like the ADL reference, only the kinds of rule the item defines replace the referenced ones: an
            # item adding a post-condition keeps the collection's pre-condition rules.
            for tag, kind in _RULE_KINDS.items():
                rules = tuple(_sequencing_rule(r) for r in _children(child, tag))
                if rules:
                    parts.rules[kind] = rules
        elif name == "rollupRules":
            parts.attrs["rollupRules"] = dict(child.attrib)
            # Present, even empty, it replaces referenced rules (an empty one restores the default rules).
            parts.rollup_rules = tuple(_rollup_rule(r) for r in _children(child, "rollupRule"))
        elif name == "objectives" and _is_adlseq(child):
            parts.adl_objectives = child
        elif name == "objectives":
            parts.objectives = _objectives(child)
    return parts


def _build(parts: _Parts) -> SequencingDefinition:
    a = parts.attrs
    cm, lc = a.get("controlMode", {}), a.get("limitConditions", {})
    rc, dc = a.get("randomizationControls", {}), a.get("deliveryControls", {})
    cc, rr, rcons = (
        a.get("constrainedChoiceConsiderations", {}),
        a.get("rollupRules", {}),
        a.get("rollupConsiderations", {}),
    )
    objectives = parts.objectives or [PRIMARY_DEFAULT]
    if parts.adl_objectives is not None:
        objectives = _apply_adl_maps(objectives, parts.adl_objectives)
    return SequencingDefinition(
        control_mode=ControlMode(
            choice=parse_bool(cm.get("choice"), True),
            choice_exit=parse_bool(cm.get("choiceExit"), True),
            flow=parse_bool(cm.get("flow"), False),
            forward_only=parse_bool(cm.get("forwardOnly"), False),
            use_current_attempt_objective_info=parse_bool(cm.get("useCurrentAttemptObjectiveInfo"), True),
            use_current_attempt_progress_info=parse_bool(cm.get("useCurrentAttemptProgressInfo"), True),
        ),
        pre_rules=parts.rules.get("pre", ()),
        exit_rules=parts.rules.get("exit", ()),
        post_rules=parts.rules.get("post", ()),
        limit_conditions=LimitConditions(
            attempt_limit=parse_int(lc.get("attemptLimit")),
            attempt_absolute_duration_limit=lc.get("attemptAbsoluteDurationLimit"),
            attempt_experienced_duration_limit=lc.get("attemptExperiencedDurationLimit"),
            activity_absolute_duration_limit=lc.get("activityAbsoluteDurationLimit"),
            activity_experienced_duration_limit=lc.get("activityExperiencedDurationLimit"),
            begin_time_limit=parse_datetime(lc.get("beginTimeLimit")),
            end_time_limit=parse_datetime(lc.get("endTimeLimit")),
        ),
        rollup_rules=parts.rollup_rules or (),
        rollup=RollupConsiderations(
            required_for_satisfied=rcons.get("requiredForSatisfied", ALWAYS).strip(),
            required_for_not_satisfied=rcons.get("requiredForNotSatisfied", ALWAYS).strip(),
            required_for_completed=rcons.get("requiredForCompleted", ALWAYS).strip(),
            required_for_incomplete=rcons.get("requiredForIncomplete", ALWAYS).strip(),
            measure_satisfaction_if_active=parse_bool(rcons.get("measureSatisfactionIfActive"), True),
            rollup_objective_satisfied=parse_bool(rr.get("rollupObjectiveSatisfied"), True),
            rollup_progress_completion=parse_bool(rr.get("rollupProgressCompletion"), True),
            objective_measure_weight=parse_float(rr.get("objectiveMeasureWeight"), 1.0),
        ),
        objectives=tuple(objectives),
        randomization=Randomization(
            randomization_timing=rc.get("randomizationTiming", "never").strip(),
            select_count=parse_int(rc.get("selectCount")),
            reorder_children=parse_bool(rc.get("reorderChildren"), False),
            selection_timing=rc.get("selectionTiming", "never").strip(),
        ),
        delivery=DeliveryControls(
            tracked=parse_bool(dc.get("tracked"), True),
            completion_set_by_content=parse_bool(dc.get("completionSetByContent"), False),
            objective_set_by_content=parse_bool(dc.get("objectiveSetByContent"), False),
        ),
        constrain_choice=parse_bool(cc.get("constrainChoice"), False),
        prevent_activation=parse_bool(cc.get("preventActivation"), False),
    )


def _element(xml: str) -> Any:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(xml.encode("utf-8"), parser=parser)


def parse_sequencing(xml: str | None, collection: Mapping[str, str] | None = None) -> SequencingDefinition:
    """Parse one `<imsss:sequencing>` element (text), resolving its IDRef against the sequencingCollection."""
    if not xml or not xml.strip():
        return DEFAULT_DEFINITION
    element = _element(xml)
    parts = _Parts()
    ref = element.get("IDRef")
    if ref and collection and ref in collection:
        parts = _parts(_element(collection[ref]))
    return _build(parts.merge(_parts(element)))
