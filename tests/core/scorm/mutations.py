"""Hypothesis strategies that damage manifests the way uploads get damaged, for the never-crash property.

Byte-level edits (flips, insertions, truncation) exercise the XML layer; tree-level edits (deleting an
element, changing or dropping an attribute) keep the document well-formed so the damage reaches the
content-model code behind it.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st
from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

ODD_VALUES = [
    "",
    " ",
    "../../etc/passwd",
    "/abs/index.html",
    "file:///etc/passwd",
    "C:\\x.html",
    "https://example.com/a.html",
    "true",
    "false",
    "0",
    "1.5",
    "-1",
    "nan",
    "1e400",
    "?&#",
    "#frag",
    "sco",
    "asset",
    "SCO",
    "org1",
    "res1",
    "item1",
    "a\\b\\",
    "\u00e9\u65e5\u672c",
    "x" * 300,
]

Draw = Callable[..., object]


def _flip(draw: Draw, xml: bytes) -> bytes:
    if not xml:
        return xml
    at = draw(st.integers(0, len(xml) - 1))
    return xml[:at] + bytes([draw(st.integers(0, 255))]) + xml[at + 1 :]


def _insert(draw: Draw, xml: bytes) -> bytes:
    at = draw(st.integers(0, len(xml)))
    chunk = draw(st.sampled_from([b"<", b">", b"&", b'"', b"<item>", b"</item>", b"<!--", b"\x00", b"\xff"]))
    return xml[:at] + chunk + xml[at:]


def _truncate(draw: Draw, xml: bytes) -> bytes:
    return xml[: draw(st.integers(0, len(xml)))]


def _tree(xml: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError:
        return None


def _delete_element(draw: Draw, xml: bytes) -> bytes:
    root = _tree(xml)
    if root is None:
        return xml
    candidates = [element for element in root.iter(etree.Element) if element is not root]
    if not candidates:
        return xml
    victim = draw(st.sampled_from(candidates))
    victim.getparent().remove(victim)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _edit_attribute(draw: Draw, xml: bytes) -> bytes:
    root = _tree(xml)
    if root is None:
        return xml
    candidates = [(element, key) for element in root.iter(etree.Element) for key in element.attrib]
    if not candidates:
        return xml
    element, key = draw(st.sampled_from(candidates))
    if draw(st.booleans()):
        del element.attrib[key]
    else:
        element.set(key, draw(st.sampled_from(ODD_VALUES) | st.text(max_size=20).filter(_xml_safe)))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _xml_safe(text: str) -> bool:
    """lxml refuses control characters and surrogates in attribute values."""
    return all(char in "\t\n\r" or (char >= " " and not "\ud800" <= char <= "\udfff") for char in text)


_BYTE_EDITS = [_flip, _insert, _truncate]
_TREE_EDITS = [_delete_element, _edit_attribute]


@st.composite
def damaged(draw: Draw, seeds: list[tuple[bytes, frozenset[str]]]) -> tuple[bytes, frozenset[str]]:
    """A seed manifest after random edits, with the seed's file list.

    A third of the cases get one byte-level edit (which mostly ends in a syntax error); the rest get one
    to four tree edits, so most cases reach the content model and validation.
    """
    xml, files = draw(st.sampled_from(seeds))
    if draw(st.integers(0, 2)) == 2:
        return draw(st.sampled_from(_BYTE_EDITS))(draw, xml), files
    for _ in range(draw(st.integers(1, 4))):
        xml = draw(st.sampled_from(_TREE_EDITS))(draw, xml)
    return xml, files
