"""Namespace-lenient access to imsmanifest.xml elements, shared by the manifest parser modules.

Real packages are sloppy with namespaces: SCORM 1.2 manifests with the 2004 IMS CP namespace, adlcp
bound to `adlcp_v1p2` (a URI that never existed), 1.2 element names in 2004 spelling. Production LMSs
match by local name, so these helpers classify a namespace into a *family* ("adlcp", "imsss", ...) by
substring and compare local names case-insensitively where the spelling varies in the wild.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from lxml import etree

from appliance.core.scorm.model import Problem

XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

IMSCP_12 = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
IMSCP_2004 = "http://www.imsglobal.org/xsd/imscp_v1p1"
ADLCP_12 = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
ADLCP_2004 = "http://www.adlnet.org/xsd/adlcp_v1p3"
IMSSS = "http://www.imsglobal.org/xsd/imsss"
ADLSEQ = "http://www.adlnet.org/xsd/adlseq_v1p3"
ADLNAV = "http://www.adlnet.org/xsd/adlnav_v1p3"

# Families whose elements are never IMS CP structure, even when a lenient lookup ignores namespaces.
_EXTENSION_FAMILIES = frozenset({"adlcp", "imsss", "adlseq", "adlnav", "metadata"})


def family(namespace: str | None) -> str:
    """Classify a namespace URI by the substring that identifies it, whatever version suffix it has."""
    if not namespace:
        return "none"
    lowered = namespace.lower()
    for marker in ("adlcp", "imsss", "adlseq", "adlnav", "imscp"):
        if marker in lowered:
            return marker
    if "lom" in lowered or "imsmd" in lowered:
        return "metadata"
    return "other"


def local_name(element: etree._Element) -> str:
    """The tag without its namespace."""
    return etree.QName(element).localname


def namespace_of(element: etree._Element) -> str | None:
    """The element's namespace URI, or None."""
    return etree.QName(element).namespace


def elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Child elements only (processing instructions and entity nodes skipped)."""
    return parent.iterchildren(etree.Element)


def cp_children(parent: etree._Element, name: str) -> list[etree._Element]:
    """IMS CP children named `name`: any namespace that is not an ADL/IMS SS/metadata extension."""
    return [
        child
        for child in elements(parent)
        if local_name(child) == name and family(namespace_of(child)) not in _EXTENSION_FAMILIES
    ]


def cp_child(parent: etree._Element, name: str) -> etree._Element | None:
    """The first IMS CP child named `name`, or None."""
    found = cp_children(parent, name)
    return found[0] if found else None


def ext_children(parent: etree._Element, fam: str, name: str) -> list[etree._Element]:
    """Extension children of one namespace family, matched by case-insensitive local name."""
    wanted = name.lower()
    return [
        child
        for child in elements(parent)
        if family(namespace_of(child)) == fam and local_name(child).lower() == wanted
    ]


def ext_attr(element: etree._Element, fam: str, name: str) -> str | None:
    """An attribute by case-insensitive local name, in the given namespace family or in none at all."""
    wanted = name.lower()
    for key, value in element.attrib.items():
        qname = etree.QName(key)
        if qname.localname.lower() == wanted and family(qname.namespace) in (fam, "none"):
            return value
    return None


def text_of(element: etree._Element | None) -> str:
    """The element's text content with whitespace runs collapsed, as titles are displayed."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def raw_text(element: etree._Element) -> str:
    """The element's text content, stripped only at the ends (launch data keeps inner spacing)."""
    return "".join(element.itertext()).strip()


def parse_bool(value: str | None, default: bool) -> bool | None:
    """xs:boolean: returns the default for a missing value and None for an invalid one."""
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


def serialize(element: etree._Element) -> str:
    """Serialise an element standalone: in-scope namespaces declared on it, unused ones dropped.

    The sequencing engine re-parses this text on its own, so it must not depend on ancestors.
    """
    detached = copy.deepcopy(element)
    detached.tail = None
    etree.cleanup_namespaces(detached)
    return etree.tostring(detached, encoding="unicode")


def note(notes: list[Problem], code: str, message: str, **details: Any) -> None:
    """Record something the parser repaired or ignored; validation reports it as a warning."""
    notes.append(Problem(code=code, message=message, details=details))
