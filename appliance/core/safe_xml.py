"""Hardened XML parsing for documents that come from packages: no DTDs, no entities, no network, a
size limit. Shared by the SCORM manifest (appliance.core.scorm.manifest) and the cmi5 course structure
(appliance.core.cmi5.course_structure); each turns `XmlRefused` into its own error code.
"""

from __future__ import annotations

from typing import Any

from lxml import etree


class XmlRefused(ValueError):
    """The document is refused: too big, not well-formed, carrying a DTD, or not decodable."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


def parse(xml: bytes, *, max_bytes: int, name: str) -> etree._Element:
    """The root element of `xml` (any encoding its prolog declares); `name` is the file named in errors."""
    if len(xml) > max_bytes:
        raise XmlRefused(
            f"{name} is {len(xml):,} bytes; the limit is {max_bytes:,} bytes",
            {"size": len(xml), "max_bytes": max_bytes},
        )
    if _declares_doctype(xml):
        raise _doctype_refused(name)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as error:
        line, column = error.position or (None, None)
        raise XmlRefused(f"{name} is not well-formed XML: {error.msg}", {"line": line, "column": column}) from None
    except (ValueError, etree.LxmlError) as error:  # e.g. an encoding lxml does not know
        raise XmlRefused(f"{name} cannot be decoded: {error}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_refused(name)
    return root


def _declares_doctype(xml: bytes) -> bool:
    """A cheap check before parsing, in the byte forms of the usual encodings (UTF-8/16)."""
    marker = "<!DOCTYPE"
    return any(marker.encode(encoding) in xml for encoding in ("ascii", "utf-16-le", "utf-16-be"))


def _doctype_refused(name: str) -> XmlRefused:
    return XmlRefused(
        f"{name} contains a DOCTYPE/DTD, which is refused (entity expansion and external entities)",
        {"reason": "doctype"},
    )
