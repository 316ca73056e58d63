"""The parsed content package: plain structs shared by the manifest parser, validation and sequencing.

These types are the contract between `scorm.manifest` (which builds them from imsmanifest.xml) and every
consumer (validation, the package service, the run-time's initial values, the sequencing engine). They are
msgspec Structs so a parsed manifest can be stored as JSON with the package version and decoded again
without re-parsing the XML.
"""

from __future__ import annotations

from typing import Any

import msgspec

SCORM_12 = "1.2"
SCORM_2004_2ND = "2004 2nd Edition"
SCORM_2004_3RD = "2004 3rd Edition"
SCORM_2004_4TH = "2004 4th Edition"
SCORM_VERSIONS = (SCORM_12, SCORM_2004_2ND, SCORM_2004_3RD, SCORM_2004_4TH)


class Problem(msgspec.Struct):
    """A finding about a package: a fatal error or a warning, in the API's `{code, message, details}` shape.

    Defined here (not in validation) so the parser can record what it had to repair while building a
    Manifest (a missing identifier, an odd xml:base) and validation can report it with its own findings.
    """

    code: str
    message: str
    details: dict[str, Any] = {}


class CompletionThreshold(msgspec.Struct, frozen=True):
    """adlcp:completionThreshold: 3rd Edition is a bare decimal; 4th Edition has attributes."""

    completed_by_measure: bool = False
    min_progress_measure: float = 1.0
    progress_weight: float = 1.0


class DataMap(msgspec.Struct, frozen=True):
    """adlcp:data/adlcp:map (4th Edition shared data, `adl.data`)."""

    target_id: str
    read_shared_data: bool = True
    write_shared_data: bool = True


class Presentation(msgspec.Struct, frozen=True):
    """adlnav:presentation/navigationInterface/hideLMSUI values, e.g. ["previous", "continue"]."""

    hide_lms_ui: list[str] = []


class Item(msgspec.Struct):
    """One <item> of an organization: a cluster (has children) or a leaf (has identifierref)."""

    identifier: str
    title: str
    identifierref: str | None = None
    isvisible: bool = True
    parameters: str | None = None
    children: list[Item] = []
    # Resolved at parse time for leaves that reference a resource: the launch URL relative to the
    # package root (xml:base applied, parameters appended) and whether the resource is a SCO.
    href: str | None = None
    scorm_type: str | None = None  # "sco" | "asset" | None for clusters
    # adlcp attributes (1.2 and 2004 names normalised)
    mastery_score: float | None = None  # 1.2 adlcp:masteryscore (0..100)
    max_time_allowed: str | None = None  # 1.2 adlcp:maxtimeallowed (CMITimespan)
    time_limit_action: str | None = None
    data_from_lms: str | None = None
    prerequisites: str | None = None  # 1.2 aicc_script
    completion_threshold: CompletionThreshold | None = None
    presentation: Presentation | None = None
    data_maps: list[DataMap] = []
    # 2004 sequencing: the <imsss:sequencing> element serialised as XML text (namespaces kept), the
    # IDRef it names in the sequencingCollection, and the <adlseq:...> extensions live inside it too.
    # The sequencing engine parses these; keeping text here keeps this struct JSON-storable.
    sequencing_xml: str | None = None


class Organization(msgspec.Struct):
    """One <organization>: a tree of items plus organization-level sequencing."""

    identifier: str
    title: str
    items: list[Item] = []
    structure: str = "hierarchical"
    objectives_global_to_system: bool = True
    shared_data_global_to_system: bool = True
    sequencing_xml: str | None = None


class Resource(msgspec.Struct):
    """One <resource>: its launch href (xml:base applied), type, files and dependencies."""

    identifier: str
    type: str
    scorm_type: str | None  # "sco" | "asset"
    href: str | None = None
    base: str = ""  # the combined xml:base prefix applied to href and files
    files: list[str] = []  # file hrefs with xml:base applied, relative to the package root
    dependencies: list[str] = []


class Manifest(msgspec.Struct):
    """A parsed imsmanifest.xml."""

    identifier: str
    scorm_version: str  # one of SCORM_VERSIONS
    schemaversion: str | None
    # The organization to deliver: organizations@default when it names an existing organization, else
    # the first one (the parser records the fallback in parse_warnings); None only with no organizations.
    default_organization: str | None
    organizations: list[Organization] = []
    resources: list[Resource] = []
    # <imsss:sequencingCollection> children by ID, each serialised as XML text.
    sequencing_collection: dict[str, str] = {}
    version: str | None = None
    title: str | None = None
    # Identifiers of nested <manifest> elements (sub-manifests). Their resources are flattened into
    # `resources`; an item that references a sub-manifest itself cannot be launched (not supported).
    sub_manifests: list[str] = []
    # What the parser repaired or ignored to build this struct (validation reports these as warnings).
    parse_warnings: list[Problem] = []
