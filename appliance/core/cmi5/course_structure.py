"""cmi5.xml: the course structure, read and checked as cmi5 §13 and §14 (and its XSD, §13.2) require.

A course is a tree of blocks and assignable units (AUs) under a `course` element, with objectives
declared once at the top and referenced by id. The checks are the ones an LMS must make at import
(CATAPULT's package tests name each by its requirement id): the XSD's element order and occurrence,
fully qualified IRIs for every id (3.0.0.0-1), unique ids (13.1.x), a valid AU URL (13.1.4.0-2)
whose query string does not carry a launch parameter the LMS adds (8.1.0.0-6), and URL references
that fit the package: relative ones only inside a ZIP, pointing at a file it has (14.1, 14.2).

Elements and attributes in other namespaces are allowed where the XSD's `anyElement` and
`anyAttribute` are, and ignored. Problems are collected (every one, with where it is), so an author
sees them all at once; `CourseStructureError` carries them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from posixpath import normpath
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from lxml import etree

from appliance.core import safe_xml

FILENAME = "cmi5.xml"
NAMESPACES = frozenset(
    {
        "https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd",  # cmi5 "quartz", what tools export
        "http://www.adlnet.gov/cmi5/CourseStructure.xsd",  # the namespace of the specification's own examples
    }
)
MAX_BYTES = 16 * 1024 * 1024
MOVE_ON = ("NotApplicable", "Passed", "Completed", "CompletedAndPassed", "CompletedOrPassed")
LAUNCH_METHODS = ("AnyWindow", "OwnWindow")
# Launch parameters the LMS appends to the AU's URL (cmi5 §8.1): an AU URL may not carry them itself.
LAUNCH_PARAMETERS = frozenset({"endpoint", "fetch", "actor", "registration", "activityId"})

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_URL_CHARACTERS = re.compile(r"^[^\s<>\"{}|\\^`]+$")


class Problem(msgspec.Struct):
    """One finding, in the API's `{code, message, details}` shape; `details.where` locates it."""

    code: str
    message: str
    details: dict[str, Any] = {}


class CourseStructureError(Exception):
    """The course structure is refused; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems[:5]))
        self.problems = problems


class Objective(msgspec.Struct):
    """An objective declared at the course's top level."""

    id: str
    title: dict[str, str]
    description: dict[str, str]


class Au(msgspec.Struct, tag="au"):
    """An assignable unit: what a learner launches (cmi5 §13.1.4)."""

    id: str
    title: dict[str, str]
    description: dict[str, str]
    url: str
    move_on: str = "NotApplicable"
    mastery_score: float | None = None
    launch_method: str = "AnyWindow"
    activity_type: str | None = None
    launch_parameters: str | None = None
    entitlement_key: str | None = None
    objectives: list[str] = []

    @property
    def relative(self) -> bool:
        """Whether the URL is a reference into the package (no scheme), not a URL of its own."""
        return not urlsplit(self.url).scheme


class Block(msgspec.Struct, tag="block"):
    """A block: a group of AUs and blocks, satisfied when all of them are (cmi5 §13.1.2)."""

    id: str
    title: dict[str, str]
    description: dict[str, str]
    children: list[Au | Block] = []
    objectives: list[str] = []


class Course(msgspec.Struct):
    """The parsed course structure."""

    id: str
    title: dict[str, str]
    description: dict[str, str]
    children: list[Au | Block]
    objectives: list[Objective] = []
    namespace: str = ""

    def aus(self) -> list[Au]:
        """Every AU in document order (the order a learner meets them)."""
        return [node for node in walk(self.children) if isinstance(node, Au)]

    def blocks(self) -> list[Block]:
        """Every block in document order."""
        return [node for node in walk(self.children) if isinstance(node, Block)]


def walk(children: list[Au | Block]) -> Iterator[Au | Block]:
    """The nodes under `children`, depth first, in document order."""
    for node in children:
        yield node
        if isinstance(node, Block):
            yield from walk(node.children)


def parse_course_structure(xml: bytes, *, packaged: bool, files: frozenset[str] | None = None) -> Course:
    """Read cmi5.xml bytes into a Course, or raise CourseStructureError with every problem found.

    `packaged` says whether the file came in a ZIP (relative AU URLs allowed) or alone (every URL must
    be fully qualified, cmi5 §14.2); `files`, the ZIP's member paths, lets relative URLs be checked
    against what the package has (§14.1).
    """
    try:
        root = safe_xml.parse(xml, max_bytes=MAX_BYTES, name=FILENAME)
    except safe_xml.XmlRefused as refused:
        raise CourseStructureError([Problem("COURSE_STRUCTURE_INVALID", refused.message, refused.details)]) from None
    reader = _Reader(etree.QName(root).namespace or "", packaged, files)
    course = reader.course(root)
    if reader.problems or course is None:
        raise CourseStructureError(reader.problems)
    return course


class _Reader:
    """One pass over the document, collecting problems instead of stopping at the first."""

    def __init__(self, namespace: str, packaged: bool, files: frozenset[str] | None) -> None:
        self.ns = namespace
        self.packaged = packaged
        self.files = files
        self.problems: list[Problem] = []
        self.ids: dict[str, str] = {}  # course, block and AU ids → what declared them
        self.objective_ids: set[str] = set()
        self.references: list[tuple[str, str]] = []  # (objective idref, where)

    # -- problems ---------------------------------------------------------------------------------

    def problem(self, code: str, message: str, where: str, **details: Any) -> None:
        self.problems.append(Problem(code, message, {"where": where, **details}))

    def invalid(self, message: str, where: str, **details: Any) -> None:
        self.problem("COURSE_STRUCTURE_INVALID", message, where, **details)

    # -- the document -----------------------------------------------------------------------------

    def course(self, root: etree._Element) -> Course | None:
        if etree.QName(root).localname != "courseStructure" or self.ns not in NAMESPACES:
            self.invalid(
                f"the root element must be <courseStructure> in the cmi5 namespace, not {root.tag!r}",
                "/",
                namespaces=sorted(NAMESPACES),
            )
            return None
        self._foreign_attributes(root, "courseStructure", ())
        parts = self._children(root)
        where = "courseStructure"
        head = parts.pop(0) if parts and parts[0][0] == "course" else None
        if head is None:
            self.invalid("<courseStructure> must begin with <course>", where)
            return None
        course_el = head[1]
        objectives: list[Objective] = []
        if parts and parts[0][0] == "objectives":
            objectives = self._objectives(parts.pop(0)[1])
        children = self._nodes(parts, where)
        course_id = self._id(course_el, "course", "course")
        self._foreign_attributes(course_el, "course", ("id",))
        fields = self._sequence(course_el, "course", ("title", "description"), optional=("languages",))
        title, description = self._text(fields.get("title"), "course"), self._text(fields.get("description"), "course")
        for ref, ref_where in self.references:
            if ref not in self.objective_ids:
                self.invalid(f"objective idref {ref!r} names no objective of the course", ref_where, idref=ref)
        return Course(course_id, title, description, children, objectives, self.ns)

    def _nodes(self, parts: list[tuple[str, etree._Element]], where: str) -> list[Au | Block]:
        """The au/block choice (at least one) that follows; anything else of ours is out of place."""
        nodes: list[Au | Block] = []
        for name, element in parts:
            if name == "au":
                nodes.append(self._au(element))
            elif name == "block":
                nodes.append(self._block(element))
            else:
                self.invalid(f"<{name}> is not allowed here in <{where.rsplit('/', 1)[-1]}>", where, element=name)
        if not nodes:
            self.invalid(f"<{where.rsplit('/', 1)[-1]}> needs at least one <au> or <block>", where)
        return nodes

    def _block(self, element: etree._Element) -> Block:
        block_id = self._id(element, "block", "block")
        where = f"block[{block_id}]"
        self._foreign_attributes(element, where, ("id",))
        parts = self._children(element)
        fields = self._leading(parts, where, ("title", "description"))
        objectives = self._references(parts.pop(0)[1], where) if parts and parts[0][0] == "objectives" else []
        children = self._nodes(parts, where)
        return Block(
            block_id,
            self._text(fields.get("title"), where),
            self._text(fields.get("description"), where),
            children,
            objectives,
        )

    def _au(self, element: etree._Element) -> Au:
        au_id = self._id(element, "au", "AU")
        where = f"au[{au_id}]"
        allowed = ("id", "moveOn", "masteryScore", "launchMethod", "activityType", "authenticationMethod")
        self._foreign_attributes(element, where, allowed)
        fields = self._sequence(
            element,
            where,
            ("title", "description"),
            optional=("objectives",),
            then=("url",),
            trailing=("launchParameters", "entitlementKey"),
        )
        move_on = self._choice(element, "moveOn", MOVE_ON, "NotApplicable", where)
        launch_method = self._choice(element, "launchMethod", LAUNCH_METHODS, "AnyWindow", where)
        self._choice(element, "authenticationMethod", ("Basic",), "Basic", where)
        url = self._url(fields.get("url"), where)
        return Au(
            id=au_id,
            title=self._text(fields.get("title"), where),
            description=self._text(fields.get("description"), where),
            url=url,
            move_on=move_on,
            mastery_score=self._mastery_score(element.get("masteryScore"), where),
            launch_method=launch_method,
            activity_type=(element.get("activityType") or "").strip() or None,
            launch_parameters=_plain(fields.get("launchParameters")),
            entitlement_key=_plain(fields.get("entitlementKey")),
            objectives=self._references(fields["objectives"], where) if "objectives" in fields else [],
        )

    def _objectives(self, element: etree._Element) -> list[Objective]:
        found = []
        for name, child in self._children(element):
            if name != "objective":
                self.invalid(f"<{name}> is not allowed in <objectives>", "objectives", element=name)
                continue
            objective_id = self._iri(child.get("id"), "objective id", "objectives")
            where = f"objective[{objective_id}]"
            if objective_id in self.objective_ids:
                self.problem("DUPLICATE_ID", f"objective id {objective_id!r} is declared twice", where, id=objective_id)
            self.objective_ids.add(objective_id)
            parts = dict(self._children(child))
            for required in ("title", "description"):
                if required not in parts:
                    self.invalid(f"<objective> needs <{required}>", where, element=required)
            found.append(
                Objective(
                    objective_id, self._text(parts.get("title"), where), self._text(parts.get("description"), where)
                )
            )
        if not found:
            self.invalid("<objectives> needs at least one <objective>", "objectives")
        return found

    def _references(self, element: etree._Element, where: str) -> list[str]:
        refs = []
        for name, child in self._children(element):
            if name != "objective":
                self.invalid(f"<{name}> is not allowed in an objectives reference list", where, element=name)
                continue
            ref = self._iri(child.get("idref"), "objective idref", where)
            self.references.append((ref, where))
            refs.append(ref)
        if not refs:
            self.invalid("<objectives> needs at least one <objective idref=…>", where)
        return refs

    # -- pieces -----------------------------------------------------------------------------------

    def _children(self, element: etree._Element) -> list[tuple[str, etree._Element]]:
        """(local name, element) of the children in our namespace; foreign ones are extensions, skipped.

        An element in no namespace is neither ours nor an allowed extension (`##other`), so it is refused.
        """
        found = []
        for child in element.iterchildren(etree.Element):
            qname = etree.QName(child)
            if qname.namespace == self.ns:
                found.append((qname.localname, child))
            elif not qname.namespace:
                self.invalid(f"<{qname.localname}> has no namespace", qname.localname, element=qname.localname)
        return found

    def _leading(self, parts: list[tuple[str, etree._Element]], where: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Pop the elements `names` from the front of `parts`, in that order, each exactly once."""
        fields: dict[str, Any] = {}
        for name in names:
            if parts and parts[0][0] == name:
                fields[name] = parts.pop(0)[1]
            else:
                self.invalid(f"<{name}> is missing or out of order in {where}", where, element=name)
        return fields

    def _sequence(
        self,
        element: etree._Element,
        where: str,
        required: tuple[str, ...],
        *,
        optional: tuple[str, ...] = (),
        then: tuple[str, ...] = (),
        trailing: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The XSD sequence `required, optional?, then, trailing?`, each at most once, in that order."""
        parts = self._children(element)
        fields = self._leading(parts, where, required)
        for name in optional:
            if parts and parts[0][0] == name:
                fields[name] = parts.pop(0)[1]
        fields.update(self._leading(parts, where, then))
        for name in trailing:
            if parts and parts[0][0] == name:
                fields[name] = parts.pop(0)[1]
        for name, _ in parts:
            self.invalid(f"<{name}> is not allowed here in {where} (or is out of order)", where, element=name)
        return fields

    def _text(self, element: etree._Element | None, where: str) -> dict[str, str]:
        """A textType: one or more <langstring lang=…>, as {language: text} ("" for no language)."""
        if element is None:
            return {}
        texts: dict[str, str] = {}
        for name, child in self._children(element):
            if name != "langstring":
                self.invalid(f"<{name}> is not allowed in <{etree.QName(element).localname}>", where, element=name)
                continue
            lang = (child.get("lang") or "").strip()
            if lang and not _LANGUAGE.match(lang):
                self.invalid(f"lang {lang!r} is not a language tag", where, lang=lang)
            texts.setdefault(lang, " ".join((child.text or "").split()))
        if not texts:
            self.invalid(f"<{etree.QName(element).localname}> needs at least one <langstring>", where)
        return texts

    def _id(self, element: etree._Element, kind: str, label: str) -> str:
        value = self._iri(element.get("id"), f"{label} id", kind)
        previous = self.ids.get(value)
        if previous is not None:
            self.problem(
                "DUPLICATE_ID", f"{label} id {value!r} is already used by a {previous}", f"{kind}[{value}]", id=value
            )
        else:
            self.ids[value] = label if label != "course" else "course"
        return value

    def _iri(self, value: str | None, what: str, where: str) -> str:
        text = (value or "").strip()
        if not text:
            self.invalid(f"the {what} is missing", where)
        elif not _IRI.match(text):
            self.problem(
                "INVALID_IRI", f"the {what} {text!r} is not a fully qualified IRI (cmi5 §3.0)", where, value=text
            )
        return text

    def _choice(self, element: etree._Element, name: str, allowed: tuple[str, ...], default: str, where: str) -> str:
        value = element.get(name)
        if value is None:
            return default
        if value not in allowed:
            self.invalid(f"{name}={value!r} is not one of {', '.join(allowed)}", where, attribute=name, value=value)
            return default
        return value

    def _mastery_score(self, value: str | None, where: str) -> float | None:
        if value is None:
            return None
        try:
            score = Decimal(value.strip())
        except InvalidOperation:
            score = Decimal("NaN")
        if not score.is_finite() or not Decimal(0) <= score <= Decimal(1):
            self.invalid(f"masteryScore {value!r} is not a decimal from 0 to 1", where, value=value)
            return None
        return float(score)

    def _url(self, element: etree._Element | None, where: str) -> str:
        url = (element.text or "").strip() if element is not None else ""
        if element is None:
            return ""
        if not url or not _URL_CHARACTERS.match(url):
            self.problem("INVALID_URL", f"the AU URL {url!r} is not a valid URL", where, url=url)
            return url
        parts = urlsplit(url)
        clashes = sorted(LAUNCH_PARAMETERS & {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
        if clashes:
            self.problem(
                "INVALID_URL",
                f"the AU URL's query string has {', '.join(clashes)}, which the LMS adds at launch (cmi5 §8.1)",
                where,
                url=url,
                parameters=clashes,
            )
        if parts.scheme:
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                self.problem("INVALID_URL", f"the AU URL {url!r} is not an http(s) URL", where, url=url)
            return url
        self._relative(url, parts.path, where)
        return url

    def _relative(self, url: str, path: str, where: str) -> None:
        """A relative AU URL: only inside a ZIP (§14.2), within it, to a file it has (§14.1)."""
        if not self.packaged:
            self.problem(
                "RELATIVE_URL",
                f"the AU URL {url!r} is relative, but a course structure without a ZIP must use fully "
                "qualified URLs (cmi5 §14.2)",
                where,
                url=url,
            )
            return
        member = normpath(unquote(path)) if path else ""
        if path.startswith("/") or member.startswith("..") or not member or member == ".":
            self.problem("RELATIVE_URL", f"the AU URL {url!r} points outside the package", where, url=url)
        elif self.files is not None and member not in self.files:
            self.problem(
                "MISSING_FILES",
                f"the AU URL {url!r} names {member!r}, which the package does not have",
                where,
                url=url,
                missing=[member],
            )

    def _foreign_attributes(self, element: etree._Element, where: str, allowed: tuple[str, ...]) -> None:
        """Unqualified attributes must be the XSD's own; qualified ones are extensions (`anyAttribute`)."""
        for name in element.attrib:
            if not str(name).startswith("{") and name not in allowed:
                self.invalid(f"attribute {name!r} is not allowed on {where}", where, attribute=str(name))


def _plain(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None
