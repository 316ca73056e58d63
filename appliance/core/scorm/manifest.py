"""Parse imsmanifest.xml into a `Manifest`, and find where the manifest sits in an uploaded ZIP.

Pure: bytes and member names in, structs out. The XML comes from untrusted uploads, so the parser
never loads DTDs, expands entities or touches the network, and refuses any document that carries a
DOCTYPE at all (a manifest never needs one; billion-laughs and XXE payloads always do).

Only what stops a manifest from being read at all raises `ManifestError`: not well-formed, not a
`manifest`, too big, not SCORM. Everything else is repaired where LMSs are lenient, recorded in
`Manifest.parse_warnings`, and judged by `scorm.validation`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from lxml import etree

from appliance.core import safe_xml
from appliance.core.scorm.manifest_items import build_organizations, build_sequencing_collection
from appliance.core.scorm.manifest_resources import collect_resources, resource_index
from appliance.core.scorm.manifest_xml import (
    ADLCP_12,
    IMSCP_12,
    cp_child,
    family,
    local_name,
    namespace_of,
    note,
    text_of,
)
from appliance.core.scorm.model import (
    SCORM_12,
    SCORM_2004_2ND,
    SCORM_2004_3RD,
    SCORM_2004_4TH,
    Manifest,
    Organization,
    Problem,
)

MANIFEST_NAME = "imsmanifest.xml"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

# Normalised schemaversion text -> edition. "CAM 1.3" is what 2nd Edition (and 1st) packages declare.
_SCHEMAVERSIONS = {
    "1.2": SCORM_12,
    "cam 1.3": SCORM_2004_2ND,
    "2004 2nd edition": SCORM_2004_2ND,
    "2004 3rd edition": SCORM_2004_3RD,
    "2004 4th edition": SCORM_2004_4TH,
}
# The spellings the specification uses; anything else that still maps is noted as non-standard.
_CANONICAL = {"1.2", "CAM 1.3", "2004 2nd Edition", "2004 3rd Edition", "2004 4th Edition"}
_FAMILIES_2004 = {"imsss", "adlseq", "adlnav"}
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
_AICC_EXTENSIONS = (".crs", ".des", ".cst")


class ManifestError(Exception):
    """The manifest cannot be read: `code` is MANIFEST_INVALID or UNSUPPORTED_VERSION.

    `details` carries `line`/`column` for XML syntax errors and `found` for unsupported versions, so
    the package API can show the author where to look.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __repr__(self) -> str:
        return f"ManifestError({self.code!r}, {self.message!r}, {self.details!r})"


def find_package_root(names: list[str]) -> str | None:
    """The prefix ("" or "folder/") under which imsmanifest.xml lives in a ZIP's member names.

    The root wins. Otherwise, when every member sits in one top folder (a common way of zipping a
    course by hand), that folder is the package root. __MACOSX/ and desktop junk files are ignored.
    Returns None when there is no manifest (the caller reports MANIFEST_MISSING), and raises
    ManifestError(UNSUPPORTED_VERSION) when the ZIP is instead an AICC, cmi5 or xAPI package, so the
    author learns what was recognised rather than that a file is missing.
    """
    members = [name for name in names if not _is_junk(name)]
    if MANIFEST_NAME in members:
        return ""
    tops = {name.split("/", 1)[0] for name in members}
    if len(tops) == 1:
        prefix = f"{tops.pop()}/"
        if prefix + MANIFEST_NAME in members:
            return prefix
    other = _other_standard(members)
    if other is not None:
        raise ManifestError(
            "UNSUPPORTED_VERSION",
            f"this is an {other} package, not SCORM; only SCORM 1.2 and 2004 are supported",
            {"found": other},
        )
    return None


def _is_junk(name: str) -> bool:
    return name.startswith("__MACOSX/") or posixpath.basename(name) in _JUNK_NAMES


def _other_standard(members: list[str]) -> str | None:
    """Recognise AICC (course structure files) and cmi5/xAPI (their descriptors) near the root."""
    shallow = [name for name in members if name.count("/") <= 1 and not name.endswith("/")]
    basenames = {posixpath.basename(name).lower() for name in shallow}
    if "cmi5.xml" in basenames:
        return "cmi5"
    if any(name.endswith(_AICC_EXTENSIONS) for name in basenames):
        return "AICC"
    if "tincan.xml" in basenames:
        return "xAPI (tincan.xml)"
    return None


def parse_manifest(xml: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Manifest:
    """Parse imsmanifest.xml bytes (any encoding its prolog declares) into a Manifest.

    Raises ManifestError when the document is too big, not well-formed, carries a DTD, is not a
    `manifest`, or is not SCORM 1.2/2004.
    """
    root = _parse_safely(xml, max_bytes)
    _require_manifest_root(root)
    notes: list[Problem] = []
    if family(namespace_of(root)) != "imscp":
        note(
            notes,
            "UNEXPECTED_NAMESPACE",
            f"<manifest> is in namespace {namespace_of(root)!r}, not an IMS Content Packaging one; read anyway",
            namespace=namespace_of(root),
        )
    schemaversion = _metadata_text(root, "schemaversion")
    scorm_version = _detect_version(root, schemaversion, notes)
    identifier = (root.get("identifier") or "").strip()
    if not identifier:
        note(notes, "MISSING_IDENTIFIER", "the <manifest> has no identifier", element="manifest")
    resources, sub_manifests = collect_resources(root, notes)
    organizations, default = build_organizations(root, resource_index(resources), notes)
    return Manifest(
        identifier=identifier,
        scorm_version=scorm_version,
        schemaversion=schemaversion,
        default_organization=default,
        organizations=organizations,
        resources=resources,
        sequencing_collection=build_sequencing_collection(root, notes),
        version=(root.get("version") or "").strip() or None,
        title=_title(organizations, default),
        sub_manifests=sub_manifests,
        parse_warnings=notes,
    )


def get_default_organization(manifest: Manifest) -> Organization | None:
    """The organization a learner is delivered (Manifest.default_organization), or None."""
    for organization in manifest.organizations:
        if organization.identifier == manifest.default_organization:
            return organization
    return None


def _title(organizations: list[Organization], default: str | None) -> str | None:
    """The package title is the default organization's; None when it has none (callers fall back)."""
    for organization in organizations:
        if organization.identifier == default:
            return organization.title or None
    return None


def _parse_safely(xml: bytes, max_bytes: int) -> etree._Element:
    try:
        return safe_xml.parse(xml, max_bytes=max_bytes, name="imsmanifest.xml")
    except safe_xml.XmlRefused as refused:
        raise ManifestError("MANIFEST_INVALID", refused.message, refused.details) from None


def _require_manifest_root(root: etree._Element) -> None:
    name = local_name(root)
    if name == "manifest":
        return
    if name == "courseStructure":
        raise ManifestError("UNSUPPORTED_VERSION", "this is a cmi5 course structure, not SCORM", {"found": "cmi5"})
    raise ManifestError(
        "MANIFEST_INVALID",
        f"the root element is <{name}>, not <manifest>",
        {"root": name, "namespace": namespace_of(root)},
    )


def _metadata_text(root: etree._Element, name: str) -> str | None:
    """Text of <metadata><name> directly under the manifest, or None."""
    metadata = cp_child(root, "metadata")
    if metadata is None:
        return None
    return text_of(cp_child(metadata, name)) or None


def _namespaces(root: etree._Element) -> set[str]:
    """Every namespace declared or used in the document."""
    found: set[str] = set()
    for element in root.iter(etree.Element):
        found.update(uri for uri in element.nsmap.values() if uri)
        found.update(ns for key in element.attrib if (ns := etree.QName(key).namespace))
    return found


def _version_from_namespaces(namespaces: set[str]) -> str | None:
    """Packaging spec section 1: 2004-only extensions win; then the 1.2 CP/adlcp namespaces."""
    families = {family(uri) for uri in namespaces}
    if families & _FAMILIES_2004 or any("adlcp_v1p3" in uri for uri in namespaces):
        return SCORM_2004_4TH
    if IMSCP_12 in namespaces or ADLCP_12 in namespaces or any("adlcp_rootv1p2" in uri for uri in namespaces):
        return SCORM_12
    return None


def _detect_version(root: etree._Element, schemaversion: str | None, notes: list[Problem]) -> str:
    """schemaversion first, then namespaces; an unknown 2004 edition is treated as the 4th.

    The 4th Edition run-time is a superset of the earlier ones, so it is the safest guess.
    """
    if schemaversion is not None:
        known = _SCHEMAVERSIONS.get(_normalise_schemaversion(schemaversion))
        if known is not None:
            if schemaversion not in _CANONICAL:
                note(
                    notes,
                    "NONSTANDARD_SCHEMAVERSION",
                    f"schemaversion {schemaversion!r} read as {known}",
                    found=schemaversion,
                    used=known,
                )
            return known
    namespaces = _namespaces(root)
    guessed = _version_from_namespaces(namespaces)
    if guessed is None:
        raise ManifestError(
            "UNSUPPORTED_VERSION",
            f"schemaversion {schemaversion!r} and the namespaces used are not SCORM 1.2 or 2004",
            {"found": schemaversion, "namespaces": sorted(namespaces)},
        )
    if schemaversion is not None:
        note(
            notes,
            "UNKNOWN_SCHEMAVERSION",
            f"schemaversion {schemaversion!r} is not a SCORM value; read as {guessed} from the namespaces",
            found=schemaversion,
            used=guessed,
        )
    return guessed


def _normalise_schemaversion(value: str) -> str:
    """Lower-case, single spaces, without a leading "ADL"/"SCORM" (e.g. "SCORM 2004 3rd Edition")."""
    words = value.lower().split()
    while words and words[0] in ("adl", "scorm"):
        words = words[1:]
    return " ".join(words)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MANIFEST_NAME",
    "ManifestError",
    "find_package_root",
    "get_default_organization",
    "parse_manifest",
]
