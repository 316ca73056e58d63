"""The activity tree: the default organization of a manifest as immutable activities with their definitions.

The tree never changes during a session; everything that changes (tracking data, the selected and ordered
Available Children, active/suspended flags) lives in `tracking.TreeState`, so the tree can be rebuilt from the
stored manifest on every HTTP request and only the state needs persisting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from appliance.core.scorm.model import SCORM_12, CompletionThreshold, DataMap, Item, Manifest, Organization
from appliance.core.scorm.sequencing.definition import (
    DEFAULT_DEFINITION,
    ControlMode,
    SequencingDefinition,
    parse_sequencing,
)

# SCORM 1.2 has no sequencing; its multi-SCO courses are navigated with a TOC and previous/next buttons in every
# LMS, which in 2004 terms is choice + flow on every cluster.
SCORM12_DEFINITION = replace(DEFAULT_DEFINITION, control_mode=ControlMode(choice=True, flow=True))


CLUSTER_SUFFIX = "#section"


@dataclass(eq=False)
class Activity:
    """One activity (the organization or an item). Identity-compared: IDs are unique within a tree."""

    id: str
    title: str
    definition: SequencingDefinition
    parent: Activity | None = None
    children: list[Activity] = field(default_factory=list)
    visible: bool = True
    scorm_type: str | None = None
    href: str | None = None
    parameters: str | None = None
    completion_threshold: CompletionThreshold | None = None
    hide_lms_ui: tuple[str, ...] = ()
    data_maps: tuple[DataMap, ...] = ()
    order: int = 0  # position in a preorder walk of the full tree
    depth: int = 0

    @property
    def is_leaf(self) -> bool:
        """Leaves are the only deliverable activities."""
        return not self.children

    @property
    def is_root(self) -> bool:
        return self.parent is None

    @property
    def tracked(self) -> bool:
        return self.definition.delivery.tracked

    def ancestors(self, include_self: bool = True) -> Iterator[Activity]:
        """This activity (optionally) and its ancestors, walking up to the root."""
        node = self if include_self else self.parent
        while node is not None:
            yield node
            node = node.parent

    def path_from_root(self) -> list[Activity]:
        """The activities from the root down to this one, both included."""
        return list(reversed(list(self.ancestors())))

    def is_descendant_of(self, other: Activity) -> bool:
        """True when `other` is this activity or one of its ancestors."""
        return any(node is other for node in self.ancestors())

    def __repr__(self) -> str:
        return f"Activity({self.id!r})"


@dataclass
class ActivityTree:
    """The activities of one organization plus the organization-wide settings the sequencer needs."""

    root: Activity
    by_id: dict[str, Activity]
    preorder: list[Activity]
    objectives_global_to_system: bool = True
    shared_data_global_to_system: bool = True
    # adl.nav.request_valid element names per activity, built on first use (see `lookahead`).
    lookahead_keys: list[tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    # The player's outline of the tree (ids, titles, shape), built on first use (see `outline`).
    outline_static: Any = field(default=None, repr=False, compare=False)
    # Each activity's position among its parent's children, built on first use (see `traversal`).
    sibling_positions: list[int] | None = field(default=None, repr=False, compare=False)
    # Other values derived from the tree alone, built on first use by the module that names them.
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def get(self, activity_id: str | None) -> Activity | None:
        return self.by_id.get(activity_id) if activity_id is not None else None

    def __getitem__(self, activity_id: str) -> Activity:
        return self.by_id[activity_id]

    def global_targets(self) -> set[str]:
        """Every global objective ID any activity maps to (used to clear course-scoped globals on retry)."""
        return {m.target_id for act in self.preorder for obj in act.definition.objectives for m in obj.maps}

    @classmethod
    def from_organization(
        cls, org: Organization, collection: dict[str, str] | None = None, *, scorm12: bool = False
    ) -> ActivityTree:
        """Build the tree; without any sequencing element every activity gets the default definition."""
        builder = _Builder(collection or {}, scorm12)
        root = Activity(id=org.identifier, title=org.title, definition=builder.definition(org.sequencing_xml))
        root.children = [builder.item(item, root) for item in org.items]
        preorder = list(_walk(root))
        for index, act in enumerate(preorder):
            act.order = index
        return cls(
            root=root,
            by_id={act.id: act for act in preorder},
            preorder=preorder,
            objectives_global_to_system=org.objectives_global_to_system,
            shared_data_global_to_system=org.shared_data_global_to_system,
        )

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ActivityTree:
        """The tree of the default organization (or the first one when the default is missing)."""
        org = default_organization(manifest)
        return cls.from_organization(org, manifest.sequencing_collection, scorm12=manifest.scorm_version == SCORM_12)


def default_organization(manifest: Manifest) -> Organization:
    """The organization named by `<organizations default=...>`, falling back to the first."""
    if not manifest.organizations:
        raise ValueError("manifest has no organization to sequence")
    for org in manifest.organizations:
        if org.identifier == manifest.default_organization:
            return org
    return manifest.organizations[0]


def _walk(act: Activity) -> Iterator[Activity]:
    yield act
    for child in act.children:
        yield from _walk(child)


class _Builder:
    """Turns model Items into Activities, parsing each sequencing element once."""

    def __init__(self, collection: dict[str, str], scorm12: bool) -> None:
        self.collection = collection
        self.scorm12 = scorm12

    def definition(self, xml: str | None) -> SequencingDefinition:
        if self.scorm12:
            return SCORM12_DEFINITION
        return parse_sequencing(xml, self.collection)

    def item(self, item: Item, parent: Activity) -> Activity:
        if self.scorm12 and item.children and item.href:
            return self._content_cluster(item, parent)
        act = Activity(
            id=item.identifier,
            title=item.title,
            definition=self.definition(item.sequencing_xml),
            parent=parent,
            visible=item.isvisible,
            scorm_type=item.scorm_type,
            href=item.href,
            parameters=item.parameters,
            completion_threshold=item.completion_threshold,
            hide_lms_ui=tuple(item.presentation.hide_lms_ui) if item.presentation else (),
            data_maps=tuple(item.data_maps),
            depth=parent.depth + 1,
        )
        act.children = [self.item(child, act) for child in item.children]
        return act

    def _content_cluster(self, item: Item, parent: Activity) -> Activity:
        """SCORM 1.2 lets an item have children AND launch content; 2004 delivers leaves only.

        The item becomes a cluster (id suffixed with CLUSTER_SUFFIX) whose first child is a leaf with the
        item's own id and content, so flow and choice reach the content before its children.
        """
        cluster = Activity(
            id=item.identifier + CLUSTER_SUFFIX,
            title=item.title,
            definition=self.definition(None),
            parent=parent,
            visible=item.isvisible,
            depth=parent.depth + 1,
        )
        own = msgspec.structs.replace(item, children=[])
        cluster.children = [self.item(own, cluster), *(self.item(child, cluster) for child in item.children)]
        return cluster
