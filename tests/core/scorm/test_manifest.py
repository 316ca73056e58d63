"""parse_manifest and find_package_root on small manifests built in code (corpus tests: test_validation)."""

from __future__ import annotations

import time

import msgspec
import pytest
from lxml import etree

from appliance.core import safe_xml
from appliance.core.scorm.manifest import ManifestError, find_package_root, get_default_organization, parse_manifest
from appliance.core.scorm.manifest_resources import append_parameters, package_path
from appliance.core.scorm.model import (
    SCORM_12,
    SCORM_2004_2ND,
    SCORM_2004_3RD,
    SCORM_2004_4TH,
    CompletionThreshold,
    DataMap,
    Manifest,
)

from .manifests import (
    NS_12,
    NS_2004,
    NS_2004_PLAIN,
    billion_laughs,
    item,
    manifest,
    manifest_12,
    organization,
    resource,
)

ADLCP_12 = "http://www.adlnet.org/xsd/adlcp_rootv1p2"


def codes(parsed: Manifest) -> list[str]:
    return [problem.code for problem in parsed.parse_warnings]


def parse_error(xml: bytes, **kwargs: int) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(xml, **kwargs)
    return caught.value


# ---------------------------------------------------------------- basics


def test_minimal_2004_manifest() -> None:
    parsed = parse_manifest(manifest())
    assert parsed.identifier == "com.example.course"
    assert parsed.version == "1"
    assert parsed.scorm_version == SCORM_2004_4TH
    assert parsed.schemaversion == "2004 4th Edition"
    assert parsed.title == "Course"
    assert parsed.default_organization == "org1"
    [org] = parsed.organizations
    [leaf] = org.items
    assert (leaf.identifier, leaf.title, leaf.identifierref) == ("item1", "Item", "res1")
    assert (leaf.href, leaf.scorm_type, leaf.isvisible) == ("index.html", "sco", True)
    [res] = parsed.resources
    assert (res.identifier, res.type, res.scorm_type, res.href, res.files) == (
        "res1",
        "webcontent",
        "sco",
        "index.html",
        ["index.html"],
    )
    assert parsed.parse_warnings == []


def test_manifest_is_json_storable() -> None:
    parsed = parse_manifest(manifest(organizations=organization("org1", item("i", ref="res1", body=SEQUENCING))))
    assert msgspec.json.decode(msgspec.json.encode(parsed), type=Manifest) == parsed


def test_title_is_the_default_organizations() -> None:
    orgs = organization("first", title="First") + organization("second", title="Second")
    parsed = parse_manifest(manifest(organizations=orgs, default="second"))
    assert parsed.title == "Second"
    assert parsed.default_organization == "second"
    assert get_default_organization(parsed).identifier == "second"


def test_missing_default_attribute_uses_first_organization_silently() -> None:
    orgs = organization("a", title="A") + organization("b", title="B")
    parsed = parse_manifest(manifest(organizations=orgs, default=None))
    assert parsed.default_organization == "a"
    assert parsed.title == "A"
    assert parsed.parse_warnings == []


def test_default_naming_a_missing_organization_falls_back_to_the_first() -> None:
    parsed = parse_manifest(manifest(default="nope"))
    assert parsed.default_organization == "org1"
    [warning] = parsed.parse_warnings
    assert warning.code == "DEFAULT_ORGANIZATION_MISSING"
    assert warning.details == {"default": "nope", "used": "org1"}


def test_no_organizations_gives_no_default() -> None:
    parsed = parse_manifest(manifest(organizations=""))
    assert (parsed.organizations, parsed.default_organization, parsed.title) == ([], None, None)


def test_item_tree_visibility_and_parameters() -> None:
    tree = item(
        "chapter",
        item("a", ref="res1", attrs=' parameters="?page=1"'),
        item("b", ref="res1", attrs=' isvisible="false"'),
        item("hidden-cluster", item("c", ref="res1"), attrs=' isvisible="0"'),
        ref=None,
        title="  Chapter\n   one  ",
    )
    parsed = parse_manifest(manifest(organizations=organization("org1", tree)))
    [chapter] = parsed.organizations[0].items
    assert chapter.title == "Chapter one"
    assert (chapter.href, chapter.scorm_type) == (None, None)
    a, b, cluster = chapter.children
    assert (a.parameters, a.href) == ("?page=1", "index.html?page=1")
    assert b.isvisible is False and b.href == "index.html"
    assert cluster.isvisible is False
    assert cluster.children[0].identifier == "c"


def test_invalid_isvisible_keeps_default_and_warns() -> None:
    parsed = parse_manifest(
        manifest(organizations=organization("org1", item("i", ref="res1", attrs=' isvisible="no"')))
    )
    assert parsed.organizations[0].items[0].isvisible is True
    assert codes(parsed) == ["INVALID_VALUE"]


def test_organization_attributes() -> None:
    org = organization(
        "org1",
        attrs=' structure="hierarchical" adlseq:objectivesGlobalToSystem="false" adlcp:sharedDataGlobalToSystem="false"',
    )
    [parsed] = parse_manifest(manifest(organizations=org)).organizations
    assert parsed.structure == "hierarchical"
    assert parsed.objectives_global_to_system is False
    assert parsed.shared_data_global_to_system is False


def test_organization_attribute_defaults() -> None:
    [parsed] = parse_manifest(manifest()).organizations
    assert (parsed.objectives_global_to_system, parsed.shared_data_global_to_system) == (True, True)


def test_missing_identifiers_are_generated_and_reported() -> None:
    orgs = organization(None, item("i1", ref="res1")) + organization(
        None, '<item identifierref="res1"><title>T</title></item>'
    )
    parsed = parse_manifest(manifest(organizations=orgs, identifier=None, default=None))
    assert parsed.identifier == ""
    first, second = parsed.organizations
    assert first.identifier != second.identifier
    assert first.identifier.startswith("generated-organization-")
    assert second.items[0].identifier.startswith("generated-item-")
    assert codes(parsed).count("MISSING_IDENTIFIER") == 4


def test_generated_identifiers_never_collide_with_real_ones() -> None:
    orgs = organization(None, item("generated-organization-1", ref="res1"))
    parsed = parse_manifest(manifest(organizations=orgs, default=None))
    assert parsed.organizations[0].identifier == "generated-organization-2"


def test_missing_titles() -> None:
    orgs = organization("org1", item("i1", ref="res1", title=None), title=None)
    parsed = parse_manifest(manifest(organizations=orgs))
    assert parsed.organizations[0].title == ""
    assert parsed.title is None  # the package service falls back to the upload's name
    assert parsed.organizations[0].items[0].title == "i1"
    assert codes(parsed) == ["MISSING_TITLE", "MISSING_TITLE"]


def test_comments_are_dropped() -> None:
    org = organization("org1", item("i", ref="res1", title="A<!-- secret -->B"))
    assert parse_manifest(manifest(organizations=org)).organizations[0].items[0].title == "AB"


# ---------------------------------------------------------------- resources, xml:base, hrefs


def test_resources_files_and_dependencies() -> None:
    resources = resource("res1", "sco.html", files=["sco.html", "lib.js"], dependencies=("shared",)) + resource(
        "shared", None, "asset", files=["common/api.js"]
    )
    parsed = parse_manifest(manifest(resources=resources))
    sco, shared = parsed.resources
    assert (sco.files, sco.dependencies) == (["sco.html", "lib.js"], ["shared"])
    assert (shared.href, shared.scorm_type, shared.files) == (None, "asset", ["common/api.js"])


@pytest.mark.parametrize("attribute", ["adlcp:scormtype", "adlcp:scormType", "adlcp:SCORMTYPE"])
def test_scorm_type_attribute_case(attribute: str) -> None:
    parsed = parse_manifest(manifest(resources=resource(scorm_type="SCO", type_attr=attribute)))
    assert parsed.resources[0].scorm_type == "sco"


def test_resource_without_scorm_type_launches_as_asset() -> None:
    parsed = parse_manifest(manifest(resources=resource(scorm_type=None)))
    assert parsed.resources[0].scorm_type is None
    assert parsed.organizations[0].items[0].scorm_type == "asset"


def test_unknown_scorm_type_value_is_reported() -> None:
    parsed = parse_manifest(manifest(resources=resource(scorm_type="lesson")))
    assert parsed.resources[0].scorm_type is None
    assert codes(parsed) == ["INVALID_VALUE"]


@pytest.mark.parametrize(
    ("manifest_base", "resources_base", "resource_base", "expected"),
    [
        (None, None, None, ""),
        ("course/", None, None, "course/"),
        (None, "content/", None, "content/"),
        (None, None, "sco1/", "sco1/"),
        ("course/", "content/", None, "course/content/"),
        ("course/", None, "sco1/", "course/sco1/"),
        (None, "content/", "sco1/", "content/sco1/"),
        ("course/", "content/", "sco1/", "course/content/sco1/"),
    ],
)
def test_xml_base_combinations(
    manifest_base: str | None, resources_base: str | None, resource_base: str | None, expected: str
) -> None:
    xml = manifest(
        base=manifest_base,
        resources_base=resources_base,
        resources=resource(href="index.html", files=["index.html", "img/a.png"], base=resource_base),
        organizations=organization("org1", item("i", ref="res1", attrs=' parameters="x=1"')),
    )
    parsed = parse_manifest(xml)
    [res] = parsed.resources
    assert res.base == expected
    assert res.href == f"{expected}index.html"
    assert res.files == [f"{expected}index.html", f"{expected}img/a.png"]
    assert parsed.organizations[0].items[0].href == f"{expected}index.html?x=1"
    assert parsed.parse_warnings == []


@pytest.mark.parametrize(("base", "fixed"), [("content", "content/"), ("a\\b\\", "a/b/")])
def test_xml_base_is_repaired_with_a_warning(base: str, fixed: str) -> None:
    parsed = parse_manifest(manifest(resources=resource(base=base)))
    assert parsed.resources[0].href == f"{fixed}index.html"
    assert set(codes(parsed)) == {"XML_BASE_REPAIRED"}


def test_absolute_http_href_is_kept_as_is() -> None:
    xml = manifest(
        resources=resource(href="https://cdn.example.com/sco.html", base="content/"),
        organizations=organization("org1", item("i", ref="res1", attrs=' parameters="?a=1"')),
    )
    parsed = parse_manifest(xml)
    assert parsed.resources[0].href == "https://cdn.example.com/sco.html"
    assert parsed.organizations[0].items[0].href == "https://cdn.example.com/sco.html?a=1"


@pytest.mark.parametrize(
    ("href", "parameters", "expected"),
    [
        ("a.html", None, "a.html"),
        ("a.html", "   ", "a.html"),
        ("a.html", "?x=1", "a.html?x=1"),
        ("a.html", "x=1", "a.html?x=1"),
        ("a.html", "&x=1", "a.html?x=1"),
        ("a.html", "??&x=1", "a.html?x=1"),
        ("a.html", "?&", "a.html"),
        ("a.html?y=2", "?x=1", "a.html?y=2&x=1"),
        ("a.html?y=2", "&x=1", "a.html?y=2&x=1"),
        ("a.html?y=2", "x=1", "a.html?y=2&x=1"),
        ("a.html", "#part2", "a.html#part2"),
        ("a.html?y=2", "#part2", "a.html?y=2#part2"),
        ("a.html#top", "#part2", "a.html#top"),
        ("a.html#top", "x=1", "a.html?x=1#top"),
        ("a.html?y=2#top", "?x=1", "a.html?y=2&x=1#top"),
        ("a.html", " ?tc=API&act=1 ", "a.html?tc=API&act=1"),
    ],
)
def test_parameters_rules(href: str, parameters: str | None, expected: str) -> None:
    assert append_parameters(href, parameters) == expected


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("index.html", "index.html"),
        ("./a/../index.html", "index.html"),
        ("sco/page.html?x=1#f", "sco/page.html"),
        ("my%20file.html", "my file.html"),
        ("dir\\page.html", "dir/page.html"),
        ("../escape.html", None),
        ("a/../../escape.html", None),
        ("/etc/passwd", None),
        ("\\\\server\\share.html", None),
        ("file:///etc/passwd", None),
        ("C:\\course\\index.html", None),
        ("javascript:alert(1)", None),
        ("https://example.com/a.html", None),
        ("?only=query", None),
    ],
)
def test_package_path(href: str, expected: str | None) -> None:
    assert package_path(href) == expected


def test_sub_manifest_resources_are_flattened() -> None:
    sub = (
        '<manifest identifier="sub1" xml:base="sub/"><organizations/>'
        f"<resources>{resource('subres', 'page.html', 'sco')}</resources></manifest>"
    )
    orgs = organization("org1", item("i1", ref="res1"), item("i2", ref="subres"))
    parsed = parse_manifest(manifest(organizations=orgs, extra=sub, base="root/"))
    assert parsed.sub_manifests == ["sub1"]
    assert [r.identifier for r in parsed.resources] == ["res1", "subres"]
    assert parsed.organizations[0].items[1].href == "root/sub/page.html"


# ---------------------------------------------------------------- ADL extensions


def test_scorm12_adlcp_elements() -> None:
    body = (
        '<adlcp:prerequisites type="aicc_script">a &amp; (b | ~c)</adlcp:prerequisites>'
        "<adlcp:maxtimeallowed>00:30:00</adlcp:maxtimeallowed>"
        "<adlcp:timelimitaction>exit,message</adlcp:timelimitaction>"
        "<adlcp:datafromlms>  mode=review  </adlcp:datafromlms>"
        "<adlcp:masteryscore> 80 </adlcp:masteryscore>"
    )
    parsed = parse_manifest(manifest_12(organizations=organization("org1", item("i", ref="res1", body=body))))
    assert parsed.scorm_version == SCORM_12
    leaf = parsed.organizations[0].items[0]
    assert leaf.prerequisites == "a & (b | ~c)"
    assert leaf.max_time_allowed == "00:30:00"
    assert leaf.time_limit_action == "exit,message"
    assert leaf.data_from_lms == "mode=review"
    assert leaf.mastery_score == 80.0


def test_scorm12_adlcp_with_an_odd_prefix_and_2004_spelling() -> None:
    namespaces = f'xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" xmlns:scorm="{ADLCP_12}"'
    body = "<scorm:masteryScore>75.5</scorm:masteryScore><scorm:dataFromLMS>x</scorm:dataFromLMS>"
    xml = manifest(
        schemaversion="1.2",
        namespaces=namespaces,
        resources=resource(type_attr="scorm:scormtype"),
        organizations=organization("org1", item("i", ref="res1", body=body)),
    )
    parsed = parse_manifest(xml)
    leaf = parsed.organizations[0].items[0]
    assert (leaf.mastery_score, leaf.data_from_lms, leaf.scorm_type) == (75.5, "x", "sco")


@pytest.mark.parametrize("score", ["abc", "101", "-1", "nan", "inf"])
def test_invalid_mastery_score_is_ignored(score: str) -> None:
    body = f"<adlcp:masteryscore>{score}</adlcp:masteryscore>"
    parsed = parse_manifest(manifest_12(organizations=organization("org1", item("i", ref="res1", body=body))))
    assert parsed.organizations[0].items[0].mastery_score is None
    assert codes(parsed) == ["INVALID_VALUE"]


def test_first_occurrence_of_a_repeated_adlcp_element_wins() -> None:
    body = "<adlcp:datafromlms>first</adlcp:datafromlms><adlcp:datafromlms>second</adlcp:datafromlms>"
    parsed = parse_manifest(manifest_12(organizations=organization("org1", item("i", ref="res1", body=body))))
    assert parsed.organizations[0].items[0].data_from_lms == "first"


def parse_item_body(body: str, version: str = "2004 4th Edition") -> tuple[Manifest, object]:
    parsed = parse_manifest(
        manifest(schemaversion=version, organizations=organization("org1", item("i", ref="res1", body=body)))
    )
    return parsed, parsed.organizations[0].items[0]


def test_scorm2004_adlcp_elements() -> None:
    _, leaf = parse_item_body(
        "<adlcp:timeLimitAction>continue,no message</adlcp:timeLimitAction><adlcp:dataFromLMS>launch data</adlcp:dataFromLMS>"
    )
    assert (leaf.time_limit_action, leaf.data_from_lms) == ("continue,no message", "launch data")


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<adlcp:completionThreshold>0.75</adlcp:completionThreshold>", CompletionThreshold(True, 0.75, 1.0)),
        (
            '<adlcp:completionThreshold completedByMeasure="true" minProgressMeasure="0.6" progressWeight="0.5"/>',
            CompletionThreshold(True, 0.6, 0.5),
        ),
        ('<adlcp:completionThreshold minProgressMeasure="0.3"/>', CompletionThreshold(False, 0.3, 1.0)),
        ("<adlcp:completionThreshold/>", CompletionThreshold(False, 1.0, 1.0)),
    ],
)
def test_completion_threshold_editions(markup: str, expected: CompletionThreshold) -> None:
    parsed, leaf = parse_item_body(markup)
    assert leaf.completion_threshold == expected
    assert parsed.parse_warnings == []


@pytest.mark.parametrize(
    "markup",
    [
        "<adlcp:completionThreshold>1.5</adlcp:completionThreshold>",
        "<adlcp:completionThreshold>high</adlcp:completionThreshold>",
        '<adlcp:completionThreshold minProgressMeasure="2"/>',
        '<adlcp:completionThreshold completedByMeasure="yes"/>',
    ],
)
def test_invalid_completion_threshold_values_are_reported(markup: str) -> None:
    parsed, _ = parse_item_body(markup)
    assert codes(parsed) == ["INVALID_VALUE"]


def test_navigation_presentation() -> None:
    _, leaf = parse_item_body(
        "<adlnav:presentation><adlnav:navigationInterface>"
        "<adlnav:hideLMSUI>previous</adlnav:hideLMSUI><adlnav:hideLMSUI> continue </adlnav:hideLMSUI>"
        "<adlnav:hideLMSUI>previous</adlnav:hideLMSUI>"
        "</adlnav:navigationInterface></adlnav:presentation>"
    )
    assert leaf.presentation.hide_lms_ui == ["previous", "continue"]


def test_shared_data_maps() -> None:
    _, leaf = parse_item_body(
        '<adlcp:data><adlcp:map targetID="notes"/>'
        '<adlcp:map targetID="scores" readSharedData="false" writeSharedData="false"/>'
        '<adlcp:map readSharedData="true"/></adlcp:data>'
    )
    assert leaf.data_maps == [DataMap("notes", True, True), DataMap("scores", False, False)]


def test_persist_state_is_reported() -> None:
    parsed, _ = parse_item_body("<adlcp:persistState>true</adlcp:persistState>")
    assert codes(parsed) == ["IGNORED_ELEMENT"]


SEQUENCING = (
    "<imsss:sequencing><!-- comment --><imsss:controlMode choice='false' flow='true'/>"
    "<adlseq:objectives><adlseq:objective objectiveID='obj'/></adlseq:objectives></imsss:sequencing>"
)


def test_item_sequencing_is_serialised_standalone_with_adlseq_children() -> None:
    _, leaf = parse_item_body(SEQUENCING)
    root = etree.fromstring(leaf.sequencing_xml.encode())
    assert root.tag == "{http://www.imsglobal.org/xsd/imsss}sequencing"
    assert root[0].tag == "{http://www.imsglobal.org/xsd/imsss}controlMode"
    assert root[1].tag == "{http://www.adlnet.org/xsd/adlseq_v1p3}objectives"
    assert "comment" not in leaf.sequencing_xml
    assert "imscp" not in leaf.sequencing_xml  # unused namespace declarations are dropped


def test_organization_sequencing_and_collection() -> None:
    collection = (
        '<imsss:sequencingCollection><imsss:sequencing ID="common"><imsss:controlMode flow="true"/></imsss:sequencing>'
        "<imsss:sequencing><imsss:controlMode/></imsss:sequencing></imsss:sequencingCollection>"
    )
    org = organization("org1", item("i", ref="res1", body='<imsss:sequencing IDRef="common"/>'), body=SEQUENCING)
    parsed = parse_manifest(manifest(organizations=org, extra=collection))
    assert etree.fromstring(parsed.organizations[0].sequencing_xml.encode()).tag.endswith("sequencing")
    assert etree.fromstring(parsed.organizations[0].items[0].sequencing_xml.encode()).get("IDRef") == "common"
    assert list(parsed.sequencing_collection) == ["common"]
    assert etree.fromstring(parsed.sequencing_collection["common"].encode()).get("ID") == "common"
    assert codes(parsed) == ["MISSING_IDENTIFIER"]  # the collection entry without ID


# ---------------------------------------------------------------- version detection


NS_12_IMSGLOBAL = f'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="{ADLCP_12}"'
NS_2004_ODD_ADLCP = (
    'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p2" '
    'xmlns:imsss="http://www.imsglobal.org/xsd/imsss"'
)


@pytest.mark.parametrize(
    ("schemaversion", "namespaces", "expected", "warnings"),
    [
        ("1.2", NS_12, SCORM_12, []),
        ("CAM 1.3", NS_2004, SCORM_2004_2ND, []),
        ("2004 2nd Edition", NS_2004, SCORM_2004_2ND, []),
        ("2004 3rd Edition", NS_2004, SCORM_2004_3RD, []),
        ("2004 4th Edition", NS_2004, SCORM_2004_4TH, []),
        ("2004 3rd Edition", NS_2004_PLAIN, SCORM_2004_3RD, []),
        ("1.2", NS_2004, SCORM_12, []),  # schemaversion wins over namespaces
        ("SCORM 1.2", NS_12, SCORM_12, ["NONSTANDARD_SCHEMAVERSION"]),
        (" 2004  4th  edition ", NS_2004, SCORM_2004_4TH, ["NONSTANDARD_SCHEMAVERSION"]),
        ("ADL SCORM 2004 3rd Edition", NS_2004, SCORM_2004_3RD, ["NONSTANDARD_SCHEMAVERSION"]),
        (None, NS_12, SCORM_12, []),
        (None, NS_12_IMSGLOBAL, SCORM_12, []),  # real 1.2 packages with the 2004 CP namespace
        (None, NS_2004, SCORM_2004_4TH, []),
        (None, NS_2004_PLAIN, SCORM_2004_4TH, []),
        (None, NS_2004_ODD_ADLCP, SCORM_2004_4TH, []),  # emp-ContentPackagingNoSchemaVersion
        ("1.2.1", NS_12, SCORM_12, ["UNKNOWN_SCHEMAVERSION"]),
        ("2004", NS_2004, SCORM_2004_4TH, ["UNKNOWN_SCHEMAVERSION"]),
    ],
)
def test_version_detection(schemaversion: str | None, namespaces: str, expected: str, warnings: list[str]) -> None:
    type_attr = "adlcp:scormtype" if expected == SCORM_12 else "adlcp:scormType"
    xml = manifest(schemaversion=schemaversion, namespaces=namespaces, resources=resource(type_attr=type_attr))
    parsed = parse_manifest(xml)
    assert parsed.scorm_version == expected
    assert parsed.schemaversion == (" ".join(schemaversion.split()) if schemaversion else None)
    assert codes(parsed) == warnings


@pytest.mark.parametrize(
    ("schemaversion", "namespaces", "found"),
    [
        ("1.1.0", 'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"', "1.1.0"),  # IMS Common Cartridge
        ("AICC", 'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"', "AICC"),
        (None, 'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"', None),  # plain IMS CP, nothing SCORM
        (None, 'xmlns:x="urn:x"', None),
    ],
)
def test_unsupported_versions(schemaversion: str | None, namespaces: str, found: str | None) -> None:
    xml = manifest(schemaversion=schemaversion, namespaces=namespaces, resources=resource(scorm_type=None))
    error = parse_error(xml)
    assert error.code == "UNSUPPORTED_VERSION"
    assert error.details["found"] == found


def test_cmi5_course_structure_is_unsupported() -> None:
    xml = b'<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd"/>'
    error = parse_error(xml)
    assert (error.code, error.details) == ("UNSUPPORTED_VERSION", {"found": "cmi5"})


def test_manifest_root_in_an_unexpected_namespace_is_accepted() -> None:
    xml = manifest(schemaversion="1.2", namespaces=f'xmlns="urn:other" xmlns:adlcp="{ADLCP_12}"')
    parsed = parse_manifest(xml)
    assert parsed.scorm_version == SCORM_12
    assert parsed.resources[0].scorm_type == "sco"
    assert codes(parsed) == ["UNEXPECTED_NAMESPACE"]


# ---------------------------------------------------------------- refused documents


def test_not_well_formed_reports_line_and_column() -> None:
    xml = b'<?xml version="1.0"?>\n<manifest identifier="m">\n  <organizations>\n</manifest>\n'
    error = parse_error(xml)
    assert error.code == "MANIFEST_INVALID"
    assert error.details["line"] == 4
    assert error.details["column"] > 0
    assert "not well-formed" in error.message


@pytest.mark.parametrize(
    "xml", [b"", b'<?xml version="1.0" encoding="UTF-8"?>\n', b"\xff\xfe\x00garbage", b"plain text"]
)
def test_empty_or_garbage_documents(xml: bytes) -> None:
    error = parse_error(xml)
    assert error.code == "MANIFEST_INVALID"
    assert {"line", "column"} <= error.details.keys()


def test_root_must_be_manifest() -> None:
    error = parse_error(b'<package xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"/>')
    assert error.code == "MANIFEST_INVALID"
    assert error.details["root"] == "package"


def test_unknown_encoding_is_invalid() -> None:
    assert parse_error(b'<?xml version="1.0" encoding="x-klingon"?><manifest/>').code == "MANIFEST_INVALID"


BILLION_LAUGHS = billion_laughs(
    b'<manifest identifier="&lol9;"><metadata><schemaversion>1.2</schemaversion></metadata></manifest>\n'
)

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE manifest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<manifest identifier="m" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2">
<metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
<organizations default="o"><organization identifier="o"><title>&xxe;</title>
<item identifier="i" identifierref="r"><title>&xxe;</title></item></organization></organizations>
<resources><resource identifier="r" type="webcontent" href="a.html"/></resources></manifest>
"""


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.monotonic()
    error = parse_error(BILLION_LAUGHS)
    assert time.monotonic() - started < 1.0
    assert (error.code, error.details) == ("MANIFEST_INVALID", {"reason": "doctype"})
    assert "DTD" in error.message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entity_is_refused(encoding: str) -> None:
    xml = XXE.decode().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
    error = parse_error(xml.encode(encoding))
    assert (error.code, error.details) == ("MANIFEST_INVALID", {"reason": "doctype"})
    assert "root:" not in repr(error)


def test_external_entity_is_never_read_even_past_the_byte_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: with the cheap pre-check disabled, the parser still neither reads nor accepts it."""
    monkeypatch.setattr(safe_xml, "_declares_doctype", lambda xml: False)
    error = parse_error(XXE)
    assert (error.code, error.details) == ("MANIFEST_INVALID", {"reason": "doctype"})
    assert "root:" not in repr(error)


def test_billion_laughs_past_the_byte_check_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """libxml2 itself stops the amplification (a syntax error) before the DOCTYPE check gets to run."""
    monkeypatch.setattr(safe_xml, "_declares_doctype", lambda xml: False)
    started = time.monotonic()
    assert parse_error(BILLION_LAUGHS).code == "MANIFEST_INVALID"
    assert time.monotonic() - started < 1.0


def test_external_dtd_is_refused() -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE manifest SYSTEM "http://attacker.example/x.dtd"><manifest/>'
    assert parse_error(xml).details == {"reason": "doctype"}


def test_fifty_megabyte_manifest_is_refused() -> None:
    xml = manifest(extra="<!--" + "x" * (50 * 1024 * 1024) + "-->")
    error = parse_error(xml)
    assert error.code == "MANIFEST_INVALID"
    assert f"{len(xml):,} bytes" in error.message
    assert error.details == {"size": len(xml), "max_bytes": 16 * 1024 * 1024}


def test_max_bytes_is_configurable() -> None:
    xml = manifest()
    assert parse_error(xml, max_bytes=len(xml) - 1).details["size"] == len(xml)
    assert parse_manifest(xml, max_bytes=len(xml)).identifier == "com.example.course"


@pytest.mark.parametrize(
    ("encoding", "title"),
    [
        ("ISO-8859-1", "Cours de français élémentaire"),
        ("windows-1252", "Don’t panic – “quoted”"),
        ("UTF-16", "Überblick 概要"),
        ("Shift_JIS", "日本語のコース"),
        ("UTF-8", "Ελληνικά 😀"),
    ],
)
def test_encodings_declared_in_the_prolog(encoding: str, title: str) -> None:
    parsed = parse_manifest(manifest(encoding=encoding, organizations=organization("org1", title=title)))
    assert parsed.title == title


def test_manifest_error_repr_and_str() -> None:
    error = ManifestError("MANIFEST_INVALID", "bad", {"line": 1})
    assert str(error) == "bad"
    assert "MANIFEST_INVALID" in repr(error)
    assert ManifestError("UNSUPPORTED_VERSION", "x").details == {}


# ---------------------------------------------------------------- find_package_root


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["imsmanifest.xml", "index.html"], ""),
        (["course/", "course/imsmanifest.xml", "course/index.html"], "course/"),
        (["course/imsmanifest.xml", "course/a/b.html"], "course/"),
        (["imsmanifest.xml", "course/imsmanifest.xml"], ""),  # root wins
        (["__MACOSX/", "__MACOSX/course/._imsmanifest.xml", "course/imsmanifest.xml"], "course/"),
        (["__MACOSX/._imsmanifest.xml", "imsmanifest.xml"], ""),
        ([".DS_Store", "course/imsmanifest.xml", "course/.DS_Store"], "course/"),
        (["course/imsmanifest.xml", "readme.txt"], None),  # not everything in one folder
        (["a/imsmanifest.xml", "b/imsmanifest.xml"], None),
        (["a/b/imsmanifest.xml"], None),  # too deep
        (["index.html"], None),
        ([], None),
        (["__MACOSX/imsmanifest.xml"], None),
        (["IMSMANIFEST.XML"], None),  # the name is case-sensitive, as on the web server
        (["sounds/intro.au", "index.html"], None),  # .au alone is audio, not AICC
        (["imsmanifest.xml", "cmi5.xml"], ""),  # a dual package: SCORM wins
    ],
)
def test_find_package_root(names: list[str], expected: str | None) -> None:
    assert find_package_root(names) == expected


@pytest.mark.parametrize(
    ("names", "found"),
    [
        (["moodle.cst"], "AICC"),
        (["course.crs", "course.au", "course.des", "course.cst", "index.html"], "AICC"),
        (["pkg/course.crs", "pkg/index.html"], "AICC"),
        (["cmi5.xml", "au/index.html"], "cmi5"),
        (["tincan.xml", "index.html"], "xAPI (tincan.xml)"),
    ],
)
def test_find_package_root_recognises_other_standards(names: list[str], found: str) -> None:
    with pytest.raises(ManifestError) as caught:
        find_package_root(names)
    assert (caught.value.code, caught.value.details) == ("UNSUPPORTED_VERSION", {"found": found})
