"""The cmi5 course structure (appliance.core.cmi5.course_structure), judged by CATAPULT's package tests'
own course structures (lts/pkg/src, each named after the requirement it checks) and the five
CATAPULT example courses, and by the XSD's rules one at a time."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from appliance.core.cmi5.course_structure import CourseStructureError, parse_course_structure

SUITE = Path(__file__).resolve().parents[3].parent / "shared" / "suites" / "catapult"
PACKAGES = SUITE / "lts" / "pkg" / "src"
EXAMPLES = SUITE / "course_examples"
NS = "https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd"

needs_suite = pytest.mark.skipif(not PACKAGES.is_dir(), reason=f"{PACKAGES} is absent (../shared/suites)")


def suite_package(name: str) -> tuple[bytes, bool, frozenset[str] | None]:
    """(cmi5.xml, packaged, files) as CATAPULT builds the package: a folder becomes a ZIP of its files
    plus the generated index.html (lts/pkg/webpack.config.js); a bare .xml is imported alone."""
    path = PACKAGES / name
    if path.is_dir():
        files = {str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()} | {"index.html"}
        return (path / "cmi5.xml").read_bytes(), True, frozenset(files)
    return path.read_bytes(), False, None


VALID = [
    "001-essentials",
    "002-allowed",
    "003-launchMethod-OwnWindow",
    "004-1-moveOn-Completed",
    "004-2-moveOn-CompletedOrPassed",
    "004-3-moveOn-Passed",
    "004-4-moveOn-CompletedOrPassed",
    "004-5-moveOn-NotApplicable",
    "005-1-invalid-au",  # the AU misbehaves at run time; its course structure is valid
    "005-2-invalid-au",
    "006-launchMode",
    "007-1-multi-session",
    "007-2-multi-session",
    "008-1-abandoned",
    "009-1-waived",
    "101-one-thousand-aus.xml",
    "102-zip64",
]

# package → (requirement, the problem code that must be among the reasons)
INVALID = {
    "201-1-iris-course-id.xml": ("3.0.0.0-1", "INVALID_IRI"),
    "201-2-iris-block-id.xml": ("3.0.0.0-1", "INVALID_IRI"),
    "201-3-iris-au-id.xml": ("3.0.0.0-1", "INVALID_IRI"),
    "201-4-iris-objective-id.xml": ("3.0.0.0-1", "INVALID_IRI"),
    "202-1-relative-url-no-zip.xml": ("14.2.0.0-1", "RELATIVE_URL"),
    "202-2-relative-url-no-zip.xml": ("14.2.0.0-1", "RELATIVE_URL"),
    "202-3-relative-url-no-zip.xml": ("14.2.0.0-1", "RELATIVE_URL"),
    "202-4-relative-url-no-zip.xml": ("14.2.0.0-1", "RELATIVE_URL"),
    "202-5-relative-url-no-zip.xml": ("14.2.0.0-1", "RELATIVE_URL"),
    "203-1-relative-url-no-reference": ("14.1.0.0-4", "MISSING_FILES"),
    "204-query-string-conflict-endpoint.xml": ("8.1.0.0-6", "INVALID_URL"),
    "205-1-duplicated-block.xml": ("13.1.2.0-1", "DUPLICATE_ID"),
    "205-2-duplicated-objective.xml": ("13.1.3.0-1", "DUPLICATE_ID"),
    "205-3-duplicated-au.xml": ("13.1.4.0-1", "DUPLICATE_ID"),
    "206-1-invalid-au-url.xml": ("13.1.4.0-2", "INVALID_URL"),
    "207-1-invalid-courseStructure.xml": ("13.2.0.0-1", "COURSE_STRUCTURE_INVALID"),
}


@needs_suite
@pytest.mark.parametrize("name", VALID)
def test_catapult_valid_course_structures_are_read(name: str) -> None:
    xml, packaged, files = suite_package(name)
    course = parse_course_structure(xml, packaged=packaged, files=files)
    assert course.id.startswith("https://w3id.org/xapi/cmi5/catapult/lts/course/")
    assert course.aus() and all(au.title for au in course.aus())


@needs_suite
def test_a_thousand_aus_are_supported() -> None:
    xml, packaged, files = suite_package("101-one-thousand-aus.xml")
    assert len(parse_course_structure(xml, packaged=packaged, files=files).aus()) > 1000


@needs_suite
@pytest.mark.parametrize(("name", "expected"), INVALID.items())
def test_catapult_invalid_course_structures_are_refused(name: str, expected: tuple[str, str]) -> None:
    requirement, code = expected
    xml, packaged, files = suite_package(name)
    with pytest.raises(CourseStructureError) as refused:
        parse_course_structure(xml, packaged=packaged, files=files)
    codes = {p.code for p in refused.value.problems}
    assert code in codes, (requirement, refused.value.problems)
    assert all(p.details.get("where") for p in refused.value.problems)


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (../shared/suites)")
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.zip")) if EXAMPLES.is_dir() else [])
def test_catapult_example_courses(name: str) -> None:
    with zipfile.ZipFile(EXAMPLES / name) as archive:
        files = frozenset(n for n in archive.namelist() if not n.endswith("/"))
        course = parse_course_structure(archive.read("cmi5.xml"), packaged=True, files=files)
    assert all(au.relative for au in course.aus())
    assert {au.move_on for au in course.aus()} <= {"CompletedOrPassed", "CompletedAndPassed"}
    if name.startswith("masteryscore"):
        assert [au.mastery_score for au in course.aus()] == [0.3]
        assert course.aus()[0].launch_method == "OwnWindow"
    if name.startswith("multi_au"):
        assert len(course.aus()) == 8 and course.aus()[0].url.startswith("index.html?pages=1")
        assert course.aus()[-1].move_on == "CompletedAndPassed"  # the quiz


# -- the rules one at a time ------------------------------------------------------------------------


def structure(au: str = "", *, extra_root: str = "", course_extra: str = "", ns: str = NS) -> bytes:
    au = au or (
        '<au id="https://example.com/au/1" moveOn="Passed" masteryScore="0.8" launchMethod="OwnWindow" '
        'activityType="http://adlnet.gov/expapi/activities/lesson">'
        '<title><langstring lang="en-US">One</langstring></title><description><langstring>d</langstring></description>'
        "<url>https://content.example.com/one/index.html?x=1</url>"
        '<launchParameters>{"speed": 2}</launchParameters><entitlementKey>key-1</entitlementKey></au>'
    )
    return (
        f'<?xml version="1.0"?><courseStructure xmlns="{ns}" xmlns:x="https://ext.example.com/">'
        '<course id="https://example.com/course"><title><langstring lang="en">Course</langstring></title>'
        f'<description><langstring lang="en">About</langstring></description>{course_extra}</course>'
        f"{extra_root}{au}</courseStructure>"
    ).encode()


def problems(xml: bytes, **kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(CourseStructureError) as refused:
        parse_course_structure(xml, packaged=bool(kwargs.get("packaged", False)), files=kwargs.get("files"))  # type: ignore[arg-type]
    return [(p.code, p.message) for p in refused.value.problems]


def test_every_au_field_is_read() -> None:
    course = parse_course_structure(structure(), packaged=False)
    (au,) = course.aus()
    assert (au.move_on, au.mastery_score, au.launch_method) == ("Passed", 0.8, "OwnWindow")
    assert au.activity_type == "http://adlnet.gov/expapi/activities/lesson"
    assert (au.launch_parameters, au.entitlement_key) == ('{"speed": 2}', "key-1")
    assert au.title == {"en-US": "One"} and au.description == {"": "d"}
    assert course.title == {"en": "Course"} and not au.relative


def test_defaults() -> None:
    au = (
        '<au id="https://example.com/au/1"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description><url>https://e.example/a</url></au>"
    )
    (parsed,) = parse_course_structure(structure(au), packaged=False).aus()
    assert (parsed.move_on, parsed.mastery_score, parsed.launch_method) == ("NotApplicable", None, "AnyWindow")


def test_the_specifications_own_namespace_is_read_too() -> None:
    assert parse_course_structure(structure(ns="http://www.adlnet.gov/cmi5/CourseStructure.xsd"), packaged=False)


def test_another_root_or_namespace_is_refused() -> None:
    assert problems(structure(ns="http://example.com/other"))[0][0] == "COURSE_STRUCTURE_INVALID"
    assert problems(b"<manifest/>")[0][0] == "COURSE_STRUCTURE_INVALID"


def test_extensions_in_other_namespaces_are_allowed_and_unqualified_strangers_are_not() -> None:
    ok = structure(course_extra='<x:note x:level="1">ours</x:note>')
    assert parse_course_structure(ok, packaged=False)
    bad = structure(course_extra='<note xmlns="">no namespace</note>')
    assert any("no namespace" in m for _, m in problems(bad))
    ours = structure(course_extra="<note>an element of the cmi5 namespace the XSD does not have</note>")
    assert any("<note> is not allowed" in m for _, m in problems(ours))


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("moveOn", "Sometimes"),
        ("masteryScore", "1.5"),
        ("masteryScore", "-0.1"),
        ("masteryScore", "high"),
        ("launchMethod", "NewTab"),
        ("authenticationMethod", "OAuth"),
    ],
)
def test_attribute_values_are_checked(attribute: str, value: str) -> None:
    au = (
        f'<au id="https://example.com/au/1" {attribute}="{value}"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description><url>https://e.example/a</url></au>"
    )
    assert any(attribute in m for _, m in problems(structure(au)))


def test_launch_parameters_in_the_url_are_refused() -> None:
    for name in ("fetch", "actor", "registration", "activityId", "endpoint"):
        au = (
            '<au id="https://example.com/au/1"><title><langstring>t</langstring></title>'
            f"<description><langstring>d</langstring></description><url>https://e.example/a?{name}=1</url></au>"
        )
        assert max(problems(structure(au))) > ("INVALID_URL", ""), name
        assert any(name in m for c, m in problems(structure(au)) if c == "INVALID_URL")


@pytest.mark.parametrize("url", ["../outside.html", "/index.html", "a/../../b.html", "javascript:alert(1)"])
def test_urls_that_leave_the_package_are_refused(url: str) -> None:
    au = (
        '<au id="https://example.com/au/1"><title><langstring>t</langstring></title>'
        f"<description><langstring>d</langstring></description><url>{url}</url></au>"
    )
    codes = {c for c, _ in problems(structure(au), packaged=True, files=frozenset({"index.html", "b.html"}))}
    assert codes & {"RELATIVE_URL", "INVALID_URL"}


def test_a_relative_url_with_a_query_names_its_file() -> None:
    au = (
        '<au id="https://example.com/au/1"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description><url>sub/page%201.html?x=1#top</url></au>"
    )
    (parsed,) = parse_course_structure(structure(au), packaged=True, files=frozenset({"sub/page 1.html"})).aus()
    assert parsed.relative


def test_objectives_are_declared_then_referenced() -> None:
    objectives = (
        '<objectives><objective id="https://example.com/obj/1"><title><langstring>o</langstring></title>'
        "<description><langstring>d</langstring></description></objective></objectives>"
    )
    au = (
        '<block id="https://example.com/block/1"><title><langstring>b</langstring></title>'
        "<description><langstring>d</langstring></description>"
        '<objectives><objective idref="https://example.com/obj/1"/></objectives>'
        '<au id="https://example.com/au/1"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description>"
        '<objectives><objective idref="https://example.com/obj/1"/></objectives>'
        "<url>https://e.example/a</url></au></block>"
    )
    course = parse_course_structure(structure(au, extra_root=objectives), packaged=False)
    assert [o.id for o in course.objectives] == ["https://example.com/obj/1"]
    assert course.blocks()[0].objectives == course.aus()[0].objectives == ["https://example.com/obj/1"]
    dangling = au.replace(
        'idref="https://example.com/obj/1"/></objectives><au', 'idref="https://example.com/obj/2"/></objectives><au'
    )
    assert any("names no objective" in m for _, m in problems(structure(dangling, extra_root=objectives)))


def test_an_empty_block_and_an_empty_course_are_refused() -> None:
    empty_block = (
        '<block id="https://example.com/block/1"><title><langstring>b</langstring></title>'
        "<description><langstring>d</langstring></description></block>"
    )
    assert any("at least one" in m for _, m in problems(structure(empty_block)))


def test_ids_are_unique_across_courses_blocks_and_aus() -> None:
    au = (
        '<au id="https://example.com/course"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description><url>https://e.example/a</url></au>"
    )
    assert "DUPLICATE_ID" in {c for c, _ in problems(structure(au))}


def test_a_doctype_is_refused() -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE courseStructure [<!ENTITY x "y">]><courseStructure/>'
    assert "DOCTYPE" in problems(xml)[0][1]


def test_every_problem_is_reported_at_once() -> None:
    au = (
        '<au id="not-an-iri" moveOn="x"><title><langstring>t</langstring></title>'
        "<description><langstring>d</langstring></description><url>index.html</url></au>"
    )
    assert {c for c, _ in problems(structure(au))} >= {"INVALID_IRI", "COURSE_STRUCTURE_INVALID", "RELATIVE_URL"}
