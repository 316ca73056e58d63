"""Small builders for activity trees in tests: model structs with sequencing XML, no manifest parser needed."""

from __future__ import annotations

import random
from typing import Any

from appliance.core.scorm.model import SCORM_2004_4TH, CompletionThreshold, Item, Manifest, Organization, Presentation
from appliance.core.scorm.sequencing.activity_tree import ActivityTree
from appliance.core.scorm.sequencing.engine import SequencingEngine
from appliance.core.scorm.sequencing.tracking import Tracking

NS = 'xmlns:imsss="http://www.imsglobal.org/xsd/imsss" xmlns:adlseq="http://www.adlnet.org/xsd/adlseq_v1p3"'
FLOW_MODE = '<imsss:controlMode flow="true"/>'


def seq(*parts: str, ref: str | None = None) -> str:
    """An <imsss:sequencing> element (as the manifest parser stores it) holding the given child elements."""
    idref = f' IDRef="{ref}"' if ref else ""
    return f"<imsss:sequencing {NS}{idref}>{''.join(parts)}</imsss:sequencing>"


FLOW = seq(FLOW_MODE)
FLOW_NO_CHOICE = seq('<imsss:controlMode choice="false" flow="true"/>')


def rule(kind: str, action: str, *conditions: str, combination: str | None = None) -> str:
    """A sequencing rule; kind is pre, exit or post; conditions are `name` or `not name` or `name@objective`."""
    combo = f' conditionCombination="{combination}"' if combination else ""
    conds = "".join(_condition("ruleCondition", c) for c in conditions)
    tag = {"pre": "preConditionRule", "exit": "exitConditionRule", "post": "postConditionRule"}[kind]
    return (
        f"<imsss:{tag}><imsss:ruleConditions{combo}>{conds}</imsss:ruleConditions>"
        f'<imsss:ruleAction action="{action}"/></imsss:{tag}>'
    )


def rules(*items: str) -> str:
    return f"<imsss:sequencingRules>{''.join(items)}</imsss:sequencingRules>"


def rollup_rule(action: str, *conditions: str, child_set: str = "all", **attrs: Any) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    conds = "".join(_condition("rollupCondition", c) for c in conditions)
    return (
        f'<imsss:rollupRule childActivitySet="{child_set}"{extra}><imsss:rollupConditions>{conds}'
        f'</imsss:rollupConditions><imsss:rollupAction action="{action}"/></imsss:rollupRule>'
    )


def rollup_rules(*items: str, **attrs: Any) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<imsss:rollupRules{extra}>{''.join(items)}</imsss:rollupRules>"


def _condition(tag: str, text: str) -> str:
    operator = ""
    if text.startswith("not "):
        operator, text = ' operator="not"', text[4:]
    name, _, objective = text.partition("@")
    ref = f' referencedObjective="{objective}"' if objective else ""
    return f'<imsss:{tag} condition="{name}"{operator}{ref}/>'


def primary(objective_id: str | None = None, *maps: str, by_measure: float | None = None) -> str:
    """An imsss:objectives element with a primary objective (optionally satisfied by measure)."""
    oid = f' objectiveID="{objective_id}"' if objective_id else ""
    measure = ""
    if by_measure is not None:
        oid += ' satisfiedByMeasure="true"'
        measure = f"<imsss:minNormalizedMeasure>{by_measure}</imsss:minNormalizedMeasure>"
    return f"<imsss:objectives><imsss:primaryObjective{oid}>{measure}{''.join(maps)}</imsss:primaryObjective>"


def objective(objective_id: str, *maps: str) -> str:
    return f'<imsss:objective objectiveID="{objective_id}">{"".join(maps)}</imsss:objective>'


def end_objectives() -> str:
    return "</imsss:objectives>"


def map_info(target: str, **flags: bool) -> str:
    attrs = "".join(f' {k}="{str(v).lower()}"' for k, v in flags.items())
    return f'<imsss:mapInfo targetObjectiveID="{target}"{attrs}/>'


def leaf(identifier: str, sequencing: str | None = None, **fields: Any) -> Item:
    """A SCO leaf item."""
    title = fields.pop("title", identifier.replace("_", " ").title())
    return Item(
        identifier=identifier,
        title=title,
        identifierref="RES",
        href=f"{identifier}.html",
        scorm_type="sco",
        sequencing_xml=sequencing,
        **fields,
    )


def cluster(identifier: str, *children: Item, sequencing: str | None = None, **fields: Any) -> Item:
    title = fields.pop("title", identifier.replace("_", " ").title())
    return Item(identifier=identifier, title=title, children=list(children), sequencing_xml=sequencing, **fields)


def manifest(
    *items: Item,
    sequencing: str | None = None,
    collection: dict[str, str] | None = None,
    version: str = SCORM_2004_4TH,
    **org_fields: Any,
) -> Manifest:
    org = Organization(identifier="root", title="Course", items=list(items), sequencing_xml=sequencing, **org_fields)
    return Manifest(
        identifier="pkg",
        scorm_version=version,
        schemaversion=None,
        default_organization="root",
        organizations=[org],
        sequencing_collection=collection or {},
    )


def engine(*items: Item, sequencing: str | None = FLOW, seed: int = 7, **kwargs: Any) -> SequencingEngine:
    """An engine over a flat or nested course; the root flows by default (most tests want continue)."""
    collection = kwargs.pop("collection", None)
    globals_ = kwargs.pop("global_objectives", None)
    org_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in ("objectives_global_to_system",)}
    built = manifest(*items, sequencing=sequencing, collection=collection, **org_fields)
    return SequencingEngine.from_manifest(built, global_objectives=globals_, rng=random.Random(seed), **kwargs)


def tracking(*items: Item, sequencing: str | None = FLOW, seed: int = 7) -> Tracking:
    tree = ActivityTree.from_manifest(manifest(*items, sequencing=sequencing))
    return Tracking(tree, rng=random.Random(seed))


def threshold(min_measure: float, by_measure: bool = True, weight: float = 1.0) -> CompletionThreshold:
    return CompletionThreshold(
        completed_by_measure=by_measure, min_progress_measure=min_measure, progress_weight=weight
    )


def hide(*controls: str) -> Presentation:
    return Presentation(hide_lms_ui=list(controls))


def play(eng: SequencingEngine, cmi: dict[str, str] | None = None, nav: str = "continue") -> str | None:
    """Terminate the current SCO with the given run-time data and request; returns what is delivered next."""
    current = eng.current
    assert current is not None
    return eng.terminate(current, cmi or {}, nav).delivered
