"""Organizations and their item trees, with the ADL extensions each item carries.

Builds `Organization`/`Item` structs from the <organizations> element. Departures that do not stop a
tree from being built (a missing identifier or title, an out-of-range value) are repaired and noted so
validation can report them; only validation decides what is fatal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from appliance.core.scorm.manifest_resources import append_parameters
from appliance.core.scorm.manifest_xml import (
    cp_child,
    cp_children,
    elements,
    ext_attr,
    ext_children,
    family,
    local_name,
    namespace_of,
    note,
    parse_bool,
    raw_text,
    serialize,
    text_of,
)
from appliance.core.scorm.model import (
    CompletionThreshold,
    DataMap,
    Item,
    Organization,
    Presentation,
    Problem,
    Resource,
)

# adlcp item children kept as text: 1.2 lower-case names and 2004 camelCase map to the same field.
_TEXT_FIELDS = {
    "maxtimeallowed": "max_time_allowed",
    "timelimitaction": "time_limit_action",
    "datafromlms": "data_from_lms",
    "prerequisites": "prerequisites",
}


@dataclass
class _Context:
    """What item building needs besides the element: resources to resolve against, and the notes."""

    resources: dict[str, Resource]
    notes: list[Problem]
    taken: set[str]
    serial: int = field(default=0)

    def fresh_identifier(self, kind: str) -> str:
        """A deterministic identifier no element in the document already uses."""
        while True:
            self.serial += 1
            candidate = f"generated-{kind}-{self.serial}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate


def build_organizations(
    root: etree._Element, resources: dict[str, Resource], notes: list[Problem]
) -> tuple[list[Organization], str | None]:
    """The organizations and the identifier of the one to deliver (see Manifest.default_organization)."""
    container = cp_child(root, "organizations")
    if container is None:
        note(notes, "MISSING_ELEMENT", "the manifest has no <organizations> element", element="organizations")
        return [], None
    taken = {value for element in root.iter(etree.Element) if (value := element.get("identifier"))}
    context = _Context(resources=resources, notes=notes, taken=taken)
    organizations = [_organization(element, context) for element in cp_children(container, "organization")]
    return organizations, _effective_default(container.get("default"), organizations, notes)


def build_sequencing_collection(root: etree._Element, notes: list[Problem]) -> dict[str, str]:
    """<imsss:sequencingCollection> children by their ID, serialised for the sequencing engine."""
    collection: dict[str, str] = {}
    for container in ext_children(root, "imsss", "sequencingCollection"):
        for sequencing in ext_children(container, "imsss", "sequencing"):
            identifier = (sequencing.get("ID") or "").strip()
            if not identifier:
                note(notes, "MISSING_IDENTIFIER", "a sequencingCollection entry has no ID and cannot be referenced")
                continue
            collection.setdefault(identifier, serialize(sequencing))
    return collection


def _effective_default(declared: str | None, organizations: list[Organization], notes: list[Problem]) -> str | None:
    """organizations@default when it names an organization, else the first one (what LMSs do)."""
    declared = (declared or "").strip() or None
    identifiers = [organization.identifier for organization in organizations]
    if declared in identifiers:
        return declared
    if not identifiers:
        return None
    if declared is not None:
        note(
            notes,
            "DEFAULT_ORGANIZATION_MISSING",
            f"organizations@default {declared!r} names no organization; using the first, {identifiers[0]!r}",
            default=declared,
            used=identifiers[0],
        )
    return identifiers[0]


def _identifier(element: etree._Element, kind: str, context: _Context) -> str:
    value = (element.get("identifier") or "").strip()
    if value:
        return value
    generated = context.fresh_identifier(kind)
    note(
        context.notes,
        "MISSING_IDENTIFIER",
        f"an <{kind}> has no identifier; using {generated!r}",
        element=kind,
        generated=generated,
    )
    return generated


def _title(element: etree._Element, kind: str, identifier: str, context: _Context) -> str:
    title = text_of(cp_child(element, "title"))
    if not title:
        note(context.notes, "MISSING_TITLE", f"{kind} {identifier!r} has no title", element=kind, identifier=identifier)
    return title


def _flag(value: str | None, default: bool, what: str, identifier: str, context: _Context) -> bool:
    parsed = parse_bool(value, default)
    if parsed is None:
        _invalid(context, identifier, what, value)
        return default
    return parsed


def _invalid(context: _Context, identifier: str, what: str, value: Any) -> None:
    note(
        context.notes,
        "INVALID_VALUE",
        f"{what} of {identifier!r} is {value!r}; ignored",
        identifier=identifier,
        element=what,
        value=value,
    )


def _organization(element: etree._Element, context: _Context) -> Organization:
    identifier = _identifier(element, "organization", context)
    return Organization(
        identifier=identifier,
        title=_title(element, "organization", identifier, context),
        items=[_item(child, context) for child in cp_children(element, "item")],
        structure=(element.get("structure") or "").strip() or "hierarchical",
        objectives_global_to_system=_flag(
            ext_attr(element, "adlseq", "objectivesGlobalToSystem"),
            True,
            "objectivesGlobalToSystem",
            identifier,
            context,
        ),
        shared_data_global_to_system=_flag(
            ext_attr(element, "adlcp", "sharedDataGlobalToSystem"),
            True,
            "sharedDataGlobalToSystem",
            identifier,
            context,
        ),
        sequencing_xml=_sequencing(element, identifier, context),
    )


def _item(element: etree._Element, context: _Context) -> Item:
    identifier = _identifier(element, "item", context)
    identifierref = (element.get("identifierref") or "").strip() or None
    parameters = (element.get("parameters") or "").strip() or None
    resource = context.resources.get(identifierref) if identifierref else None
    href = append_parameters(resource.href, parameters) if resource is not None and resource.href else None
    return Item(
        identifier=identifier,
        # An item's title is all a table of contents can show, so fall back to its identifier.
        title=_title(element, "item", identifier, context) or identifier,
        identifierref=identifierref,
        isvisible=_flag(element.get("isvisible"), True, "isvisible", identifier, context),
        parameters=parameters,
        children=[_item(child, context) for child in cp_children(element, "item")],
        href=href,
        # A resource without scormType is launched as an asset, as ADL's sample RTE does.
        scorm_type=(resource.scorm_type or "asset") if resource is not None else None,
        presentation=_presentation(element),
        sequencing_xml=_sequencing(element, identifier, context),
        **_adlcp_fields(element, identifier, context),
    )


def _sequencing(element: etree._Element, identifier: str, context: _Context) -> str | None:
    found = ext_children(element, "imsss", "sequencing")
    if len(found) > 1:
        note(context.notes, "DUPLICATE_ELEMENT", f"{identifier!r} has {len(found)} <imsss:sequencing>; using the first")
    return serialize(found[0]) if found else None


def _adlcp_fields(element: etree._Element, identifier: str, context: _Context) -> dict[str, Any]:
    """The item's adlcp children as Item fields; the first occurrence of each wins."""
    fields: dict[str, Any] = {}
    data_maps: list[DataMap] = []
    for child in elements(element):
        if family(namespace_of(child)) != "adlcp":
            continue
        name = local_name(child).lower()
        if name in _TEXT_FIELDS:
            fields.setdefault(_TEXT_FIELDS[name], raw_text(child) or None)
        elif name == "masteryscore":
            fields.setdefault("mastery_score", _mastery_score(child, identifier, context))
        elif name == "completionthreshold":
            fields.setdefault("completion_threshold", _completion_threshold(child, identifier, context))
        elif name == "data":
            data_maps.extend(_data_maps(child, identifier, context))
        elif name == "persiststate":
            note(context.notes, "IGNORED_ELEMENT", f"adlcp:persistState on {identifier!r} was removed from SCORM")
    if data_maps:
        fields["data_maps"] = data_maps
    return fields


def _decimal(value: str | None, low: float, high: float) -> float | None:
    """A finite decimal within [low, high], or None."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def _mastery_score(element: etree._Element, identifier: str, context: _Context) -> float | None:
    text = raw_text(element)
    score = _decimal(text, 0.0, 100.0)
    if score is None and text:
        _invalid(context, identifier, "adlcp:masteryscore", text)
    return score


def _completion_threshold(element: etree._Element, identifier: str, context: _Context) -> CompletionThreshold | None:
    """4th Edition attributes, or the 3rd Edition decimal text.

    A 3rd Edition threshold means the LMS judges completion by progress_measure, so it maps to
    completed_by_measure=True with that minimum. An empty 4th Edition element means all defaults.
    """
    attributes = {etree.QName(key).localname.lower(): value for key, value in element.attrib.items()}
    text = raw_text(element)
    if text and not attributes:
        measure = _decimal(text, 0.0, 1.0)
        if measure is None:
            _invalid(context, identifier, "adlcp:completionThreshold", text)
            return None
        return CompletionThreshold(completed_by_measure=True, min_progress_measure=measure)
    return CompletionThreshold(
        completed_by_measure=_flag(
            attributes.get("completedbymeasure"), False, "completionThreshold@completedByMeasure", identifier, context
        ),
        min_progress_measure=_unit(attributes.get("minprogressmeasure"), "minProgressMeasure", identifier, context),
        progress_weight=_unit(attributes.get("progressweight"), "progressWeight", identifier, context),
    )


def _unit(value: str | None, what: str, identifier: str, context: _Context) -> float:
    """A 0..1 attribute defaulting to 1.0 (both completionThreshold decimals default to 1.0)."""
    if value is None:
        return 1.0
    number = _decimal(value, 0.0, 1.0)
    if number is None:
        _invalid(context, identifier, f"completionThreshold@{what}", value)
        return 1.0
    return number


def _data_maps(element: etree._Element, identifier: str, context: _Context) -> list[DataMap]:
    """adlcp:data/adlcp:map; a missing read/writeSharedData is true, as the ADL RTE treats it."""
    maps: list[DataMap] = []
    for mapping in ext_children(element, "adlcp", "map"):
        target = (mapping.get("targetID") or "").strip()
        if not target:
            note(context.notes, "MISSING_IDENTIFIER", f"an adlcp:map on {identifier!r} has no targetID; ignored")
            continue
        maps.append(
            DataMap(
                target_id=target,
                read_shared_data=_flag(mapping.get("readSharedData"), True, "readSharedData", identifier, context),
                write_shared_data=_flag(mapping.get("writeSharedData"), True, "writeSharedData", identifier, context),
            )
        )
    return maps


def _presentation(element: etree._Element) -> Presentation | None:
    """adlnav:presentation/navigationInterface/hideLMSUI values, de-duplicated in document order."""
    presentations = ext_children(element, "adlnav", "presentation")
    if not presentations:
        return None
    hidden: list[str] = []
    for presentation in presentations:
        for interface in ext_children(presentation, "adlnav", "navigationInterface"):
            for hide in ext_children(interface, "adlnav", "hideLMSUI"):
                value = text_of(hide)
                if value and value not in hidden:
                    hidden.append(value)
    return Presentation(hide_lms_ui=hidden)
