"""Judge a parsed manifest against the files of its package: one fatal error at most, plus warnings.

Policy (packaging spec section 5, "LMS import advice"): fail only what prevents building the activity
tree or launching it; report every other departure from the specification as a warning, because real
LMSs accept such content and authors rarely can fix it. Never raises on bad content.

Fatal errors, checked in this order (the first one found is reported):
* MANIFEST_INVALID: an organization with more than MAX_ACTIVITIES items (reason `too_many_activities`:
  sequencing and the player's table of contents grow with the tree, and no real course is that large; an
  organization above WARN_ACTIVITIES is accepted with a MANY_ACTIVITIES warning), no organization with
  items (a resource package), duplicate item identifiers in
  one organization (tracking data is keyed by them), an identifierref naming no resource (or naming a
  sub-manifest, whose aggregation is not supported), a launch href that leaves the package.
* NO_LAUNCHABLE_CONTENT: the delivered organization has no item with a launch href.
* MISSING_FILES: launch files of items that the ZIP lacks (`details.missing`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import msgspec
from lxml import etree

from appliance.core.scorm.manifest import get_default_organization
from appliance.core.scorm.manifest_resources import is_external, package_path, resource_index
from appliance.core.scorm.model import SCORM_12, SCORM_2004_4TH, Item, Manifest, Problem

__all__ = ["Capability", "Problem", "ValidationReport", "validate_package"]

# Capability key -> local names whose presence in any <imsss:sequencing> marks it as used.
_SEQUENCING_FEATURES = {
    "sequencing_rules": {"sequencingRules"},
    "rollup_rules": {"rollupRules"},
    "objectives": {"objectives"},
    "global_objectives": {"mapInfo"},
    "limit_conditions": {"limitConditions"},
    "randomization": {"randomizationControls"},
    "delivery_controls": {"deliveryControls"},
}
_SCO_ONLY = ("time_limit_action", "data_from_lms", "completion_threshold")

# Activities (items) per organization: refused above MAX_ACTIVITIES, a warning above WARN_ACTIVITIES. Every
# launch and navigation answers the learner's table of contents and adl.nav.request_valid for the whole tree,
# so the cost of a request grows with it (docs/sequencing.md gives the measured figures).
MAX_ACTIVITIES = 5000
WARN_ACTIVITIES = 1000


class Capability(msgspec.Struct, frozen=True):
    """Whether the package uses a feature, and whether this appliance implements it."""

    used: bool
    supported: bool


class ValidationReport(msgspec.Struct):
    """The verdict on a package: `error` set means it cannot be made ready.

    Counters match the corpus index: `item_count` is every item of every organization,
    `launchable_count` the items whose identifierref names a resource (a resource without href makes
    the package fail instead), and `sco_count` the resources whose scormType is `sco`.
    """

    error: Problem | None = None
    warnings: list[Problem] = []
    capabilities: dict[str, Capability] = {}
    item_count: int = 0
    sco_count: int = 0
    launchable_count: int = 0


def validate_package(manifest: Manifest, files: set[str]) -> ValidationReport:
    """Validate a manifest against the package's file paths (relative to the package root, POSIX)."""
    present = {path for name in files if (path := package_path(name)) is not None}
    items = [item for organization in manifest.organizations for item in walk(organization.items)]
    resources = resource_index(manifest.resources)
    return ValidationReport(
        error=_first_error(manifest, items, present),
        warnings=[*manifest.parse_warnings, *_warnings(manifest, items, present)],
        capabilities=capabilities(manifest),
        item_count=len(items),
        sco_count=sum(1 for resource in manifest.resources if resource.scorm_type == "sco"),
        launchable_count=sum(1 for item in items if item.identifierref in resources),
    )


def walk(items: list[Item]) -> Iterator[Item]:
    """Items depth-first in document order."""
    for item in items:
        yield item
        yield from walk(item.children)


def _problem(code: str, message: str, **details: object) -> Problem:
    return Problem(code=code, message=message, details=dict(details))


# ---------------------------------------------------------------- fatal errors


def _first_error(manifest: Manifest, items: list[Item], present: set[str]) -> Problem | None:
    for check in (_too_many_activities, _no_organizations, _duplicate_items, _dangling_references):
        problem = check(manifest)
        if problem is not None:
            return problem
    return _unsafe_launch(items) or _no_launchable(manifest) or _missing_launch_files(items, present)


def _largest_organization(manifest: Manifest) -> tuple[str | None, int]:
    """The organization with the most items (activities), and how many it has."""
    counts = [
        (organization.identifier, sum(1 for _ in walk(organization.items))) for organization in manifest.organizations
    ]
    return max(counts, key=lambda entry: entry[1], default=(None, 0))


def _too_many_activities(manifest: Manifest) -> Problem | None:
    organization, count = _largest_organization(manifest)
    if count <= MAX_ACTIVITIES:
        return None
    return _problem(
        "MANIFEST_INVALID",
        f"organization {organization!r} has {count} activities; at most {MAX_ACTIVITIES} are accepted "
        "(split the course into several packages)",
        reason="too_many_activities",
        organization=organization,
        activities=count,
        limit=MAX_ACTIVITIES,
    )


def _many_activities(manifest: Manifest) -> Problem | None:
    organization, count = _largest_organization(manifest)
    if count <= WARN_ACTIVITIES:
        return None
    return _problem(
        "MANY_ACTIVITIES",
        f"organization {organization!r} has {count} activities; launches and navigation slow down with the "
        f"size of the tree (above {MAX_ACTIVITIES} a package is refused)",
        organization=organization,
        activities=count,
        warn_above=WARN_ACTIVITIES,
        limit=MAX_ACTIVITIES,
    )


def _no_organizations(manifest: Manifest) -> Problem | None:
    if any(organization.items for organization in manifest.organizations):
        return None
    return _problem(
        "MANIFEST_INVALID",
        "the manifest has no organization with items (a resource package), so there is nothing to deliver",
        reason="no_organizations",
        organizations=len(manifest.organizations),
    )


def _duplicate_items(manifest: Manifest) -> Problem | None:
    for organization in manifest.organizations:
        counts = Counter(item.identifier for item in walk(organization.items))
        duplicates = sorted(identifier for identifier, count in counts.items() if count > 1)
        if duplicates:
            return _problem(
                "MANIFEST_INVALID",
                f"organization {organization.identifier!r} has duplicate item identifiers: {', '.join(duplicates)}",
                reason="duplicate_item_identifiers",
                organization=organization.identifier,
                identifiers=duplicates,
            )
    return None


def _dangling_references(manifest: Manifest) -> Problem | None:
    resources = resource_index(manifest.resources)
    dangling = [
        {"item": item.identifier, "identifierref": item.identifierref}
        for organization in manifest.organizations
        for item in walk(organization.items)
        if item.identifierref is not None and item.identifierref not in resources
    ]
    if not dangling:
        return None
    if all(entry["identifierref"] in manifest.sub_manifests for entry in dangling):
        return _problem(
            "MANIFEST_INVALID",
            "items reference sub-manifests; aggregating a sub-manifest as an item is not supported",
            reason="sub_manifest_reference",
            items=dangling,
        )
    return _problem(
        "MANIFEST_INVALID",
        f"{len(dangling)} item(s) reference resources the manifest does not define",
        reason="dangling_identifierref",
        items=dangling,
    )


def _unsafe_launch(items: list[Item]) -> Problem | None:
    """Launch URLs an LMS must not serve; unsafe hrefs nothing launches are only a warning."""
    unsafe = sorted(
        {item.href for item in items if item.href and not is_external(item.href) and package_path(item.href) is None}
    )
    if not unsafe:
        return None
    return _problem(
        "MANIFEST_INVALID",
        "launch hrefs point outside the package (absolute path, '..' or a non-web scheme)",
        reason="unsafe_href",
        hrefs=unsafe,
    )


def _no_launchable(manifest: Manifest) -> Problem | None:
    organization = get_default_organization(manifest)
    if organization is not None and any(item.href for item in walk(organization.items)):
        return None
    identifier = organization.identifier if organization is not None else None
    return _problem(
        "NO_LAUNCHABLE_CONTENT",
        f"no item of organization {identifier!r} references a resource with a launch href",
        organization=identifier,
    )


def _missing_launch_files(items: list[Item], present: set[str]) -> Problem | None:
    missing: list[str] = []
    for item in items:
        path = _launch_path(item)
        if path is not None and path not in present and path not in missing:
            missing.append(path)
    if not missing:
        return None
    return _problem("MISSING_FILES", f"the package lacks {len(missing)} launch file(s)", missing=missing)


def _launch_path(item: Item) -> str | None:
    """The package member an item launches, or None for external or non-launchable items."""
    if item.href is None or is_external(item.href):
        return None
    return package_path(item.href)


# ---------------------------------------------------------------- warnings


def _warnings(manifest: Manifest, items: list[Item], present: set[str]) -> list[Problem]:
    found: list[Problem | None] = [
        _missing_referenced_files(manifest, items, present),
        _schemaversion_warning(manifest),
        _external_launch(items),
        _resources_without_type(manifest),
        _items_without_launch_href(manifest, items),
        _duplicate_identifiers(manifest),
        *_structure_warnings(manifest, items),
        _sub_manifests(manifest),
        _many_activities(manifest),
    ]
    return [problem for problem in found if problem is not None]


def _missing_referenced_files(manifest: Manifest, items: list[Item], present: set[str]) -> Problem | None:
    """Files and resource hrefs the manifest lists but the ZIP lacks, other than the launch files."""
    launch = {path for item in items if (path := _launch_path(item)) is not None}
    missing: list[str] = []
    unsafe: list[str] = []
    for resource in manifest.resources:
        listed = [resource.href, *resource.files] if resource.href else resource.files
        for href in listed:
            if is_external(href):
                continue
            path = package_path(href)
            if path is None:
                unsafe.append(href)
            elif path not in present and path not in launch and path not in missing:
                missing.append(path)
    if not missing and not unsafe:
        return None
    return _problem(
        "MISSING_REFERENCED_FILES",
        f"the manifest lists {len(missing) + len(unsafe)} file(s) the package lacks",
        missing=missing,
        outside_package=unsafe,
    )


def _schemaversion_warning(manifest: Manifest) -> Problem | None:
    if manifest.schemaversion is None:
        return _problem(
            "SCHEMAVERSION_MISSING",
            f"the manifest has no <schemaversion>; read as SCORM {manifest.scorm_version} from its namespaces",
            used=manifest.scorm_version,
        )
    if manifest.scorm_version not in (SCORM_12, SCORM_2004_4TH):
        return _problem(
            "OLDER_SCHEMAVERSION",
            f"schemaversion {manifest.schemaversion!r} is an older SCORM 2004 edition (expected 2004 4th Edition)",
            found=manifest.schemaversion,
        )
    return None


def _external_launch(items: list[Item]) -> Problem | None:
    external = sorted({item.identifier for item in items if item.href and is_external(item.href)})
    if not external:
        return None
    return _problem(
        "EXTERNAL_LAUNCH_URL",
        "items launch content from another site; a SCO there cannot reach the SCORM API across origins",
        items=external,
    )


def _resources_without_type(manifest: Manifest) -> Problem | None:
    untyped = [resource.identifier for resource in manifest.resources if resource.scorm_type is None]
    if not untyped:
        return None
    return _problem(
        "MISSING_SCORM_TYPE",
        "resources without adlcp:scormType are launched as assets (no run-time API expected)",
        resources=untyped,
    )


def _items_without_launch_href(manifest: Manifest, items: list[Item]) -> Problem | None:
    resources = resource_index(manifest.resources)
    stranded = [
        item.identifier
        for item in items
        if item.identifierref in resources and resources[item.identifierref].href is None
    ]
    if not stranded:
        return None
    return _problem(
        "RESOURCE_WITHOUT_HREF",
        "items reference resources that have no href, so they cannot be launched",
        items=stranded,
    )


def _duplicate_identifiers(manifest: Manifest) -> Problem | None:
    """Duplicates that are not fatal: resources (first wins), organizations, items across organizations."""
    groups = {
        "resources": [resource.identifier for resource in manifest.resources],
        "organizations": [organization.identifier for organization in manifest.organizations],
        "items": [
            identifier
            for organization in manifest.organizations
            for identifier in {item.identifier for item in walk(organization.items)}
        ],
    }
    duplicates = {
        kind: sorted(identifier for identifier, count in Counter(values).items() if count > 1)
        for kind, values in groups.items()
    }
    duplicates = {kind: values for kind, values in duplicates.items() if values}
    if not duplicates:
        return None
    return _problem("DUPLICATE_IDENTIFIER", "identifiers that should be unique are repeated", **duplicates)


def _structure_warnings(manifest: Manifest, items: list[Item]) -> list[Problem | None]:
    """SCORM 2004 rules on where content and SCO-only elements may appear."""
    if manifest.scorm_version == SCORM_12:
        return []
    non_leaf = [item.identifier for item in items if item.children and item.identifierref]
    empty_leaf = [item.identifier for item in items if not item.children and not item.identifierref]
    sco_only = [
        item.identifier
        for item in items
        if item.scorm_type == "asset" and any(getattr(item, name) is not None for name in _SCO_ONLY)
    ]
    return [
        _problem(
            "NON_LEAF_IDENTIFIERREF",
            "in SCORM 2004 only leaf items may reference content; these clusters do",
            items=non_leaf,
        )
        if non_leaf
        else None,
        _problem("EMPTY_LEAF_ITEM", "leaf items without identifierref have nothing to launch", items=empty_leaf)
        if empty_leaf
        else None,
        _problem(
            "SCO_ONLY_ELEMENT_ON_ASSET",
            "timeLimitAction, dataFromLMS and completionThreshold apply to SCOs only; ignored on these items",
            items=sco_only,
        )
        if sco_only
        else None,
    ]


def _sub_manifests(manifest: Manifest) -> Problem | None:
    if not manifest.sub_manifests:
        return None
    return _problem(
        "SUB_MANIFESTS",
        "sub-manifests are discouraged; their resources are used, their organizations are ignored",
        sub_manifests=manifest.sub_manifests,
    )


# ---------------------------------------------------------------- capabilities


def capabilities(manifest: Manifest) -> dict[str, Capability]:
    """Feature use, for the package API and for deciding which engines a package needs.

    `multi_sco` means the delivered organization has more than one launchable item (SCO or asset), so
    the player needs navigation between them. Everything is supported except sub_manifests: an item aggregating a whole sub-manifest would need
    its organization grafted into the tree, which the appliance does not do (resources inside
    sub-manifests do work). `prerequisites` is the SCORM 1.2 aicc_script subset; `time_limits` covers
    maxtimeallowed/timeLimitAction, passed to the SCO through the run-time data model.
    """
    items = [item for organization in manifest.organizations for item in walk(organization.items)]
    names = _sequencing_names(manifest, items)
    delivered = get_default_organization(manifest)
    used = {
        "multi_sco": delivered is not None and sum(1 for item in walk(delivered.items) if item.href) > 1,
        "shared_data": any(item.data_maps for item in items),
        "time_limits": any(item.max_time_allowed or item.time_limit_action for item in items),
        "prerequisites": any(item.prerequisites for item in items),
        "sequencing_collection": bool(manifest.sequencing_collection),
        "navigation_presentation": any(item.presentation is not None for item in items),
        "completion_threshold": any(item.completion_threshold is not None for item in items),
        "sub_manifests": bool(manifest.sub_manifests),
        **{key: bool(markers & names) for key, markers in _SEQUENCING_FEATURES.items()},
    }
    order = [
        "multi_sco",
        "sequencing_rules",
        "rollup_rules",
        "objectives",
        "global_objectives",
        "shared_data",
        "time_limits",
        "prerequisites",
        "sequencing_collection",
        "limit_conditions",
        "randomization",
        "delivery_controls",
        "navigation_presentation",
        "completion_threshold",
        "sub_manifests",
    ]
    return {key: Capability(used=used[key], supported=key != "sub_manifests") for key in order}


def _sequencing_names(manifest: Manifest, items: list[Item]) -> set[str]:
    """Local names of every element in every sequencing definition of the package."""
    texts = [
        *(organization.sequencing_xml for organization in manifest.organizations),
        *(item.sequencing_xml for item in items),
        *manifest.sequencing_collection.values(),
    ]
    names: set[str] = set()
    for text in texts:
        if text:
            names.update(_local_names(text))
    return names


def _local_names(text: str) -> set[str]:
    # A parser per call: lxml parser objects must not be shared between threads.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        return set()
    return {etree.QName(element).localname for element in root.iter(etree.Element)}
