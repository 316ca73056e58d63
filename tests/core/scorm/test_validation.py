"""validate_package on built manifests, the whole shared corpus, and mutated manifests (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.core.scorm.manifest import ManifestError, find_package_root, parse_manifest
from appliance.core.scorm.manifest_resources import package_path
from appliance.core.scorm.model import SCORM_12, SCORM_2004_2ND, SCORM_2004_3RD, SCORM_2004_4TH, Manifest, Problem
from appliance.core.scorm.validation import Capability, ValidationReport, validate_package

from . import corpus, mutations
from .manifests import NS_2004_PLAIN, item, manifest, manifest_12, organization, resource

CAPABILITY_KEYS = [
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


def validate(xml: bytes, files: set[str] | None = None) -> ValidationReport:
    return validate_package(parse_manifest(xml), {"index.html"} if files is None else files)


def warning(report: ValidationReport, code: str) -> Problem:
    [found] = [problem for problem in report.warnings if problem.code == code]
    return found


def codes(report: ValidationReport) -> list[str]:
    return [problem.code for problem in report.warnings]


# ---------------------------------------------------------------- ready packages


def test_valid_package_is_ready_without_warnings() -> None:
    report = validate(manifest())
    assert report.error is None
    assert report.warnings == []
    assert (report.item_count, report.sco_count, report.launchable_count) == (1, 1, 1)


def test_valid_scorm12_package() -> None:
    report = validate(manifest_12())
    assert (report.error, report.warnings) == (None, [])


def test_report_is_json_encodable() -> None:
    report = validate(manifest(), set())
    decoded = msgspec.json.decode(msgspec.json.encode(report), type=ValidationReport)
    assert decoded == report


def test_counters() -> None:
    tree = item("chapter", item("a", ref="sco1"), item("b", ref="asset1"), item("c", ref="sco1"))
    resources = (
        resource("sco1", "a.html")
        + resource("asset1", "b.html", "asset")
        + resource("sco2", "unused.html")
        + resource("lib", None, "asset", files=["lib.js"])
    )
    orgs = organization("org1", tree) + organization("org2", item("d", ref="sco2"))
    report = validate(manifest(organizations=orgs, resources=resources), {"a.html", "b.html", "unused.html", "lib.js"})
    assert report.error is None
    assert report.item_count == 5  # every item of every organization, clusters included
    assert report.launchable_count == 4  # items whose identifierref names a resource
    assert report.sco_count == 2  # resources with scormType sco, referenced or not


def test_files_are_matched_by_package_path() -> None:
    resources = resource("res1", "my%20course/start.html?x=1", files=["./my%20course/start.html", "my course/a.js"])
    report = validate(manifest(resources=resources), {"my course/start.html", "my course/a.js"})
    assert (report.error, report.warnings) == (None, [])


def test_parse_warnings_come_first() -> None:
    report = validate(manifest(default="nope", schemaversion="2004 3rd Edition"))
    assert codes(report) == ["DEFAULT_ORGANIZATION_MISSING", "OLDER_SCHEMAVERSION"]
    assert report.error is None


# ---------------------------------------------------------------- fatal errors


def test_missing_launch_files() -> None:
    orgs = organization(
        "org1", item("a", ref="r1"), item("b", ref="r2", attrs=' parameters="?p=1"'), item("c", ref="r2")
    )
    resources = resource("r1", "a.html") + resource("r2", "sub/b.html", base="content/")
    report = validate(manifest(organizations=orgs, resources=resources), {"a.html"})
    assert report.error == Problem(
        "MISSING_FILES", "the package lacks 1 launch file(s)", {"missing": ["content/sub/b.html"]}
    )


def test_launch_files_of_other_organizations_count_too() -> None:
    orgs = organization("org1") + organization("org2", item("x", ref="r2"))
    report = validate(manifest(organizations=orgs, resources=resource() + resource("r2", "other.html")))
    assert report.error.code == "MISSING_FILES"
    assert report.error.details == {"missing": ["other.html"]}


def test_external_launch_is_not_a_missing_file() -> None:
    report = validate(manifest(resources=resource(href="https://example.com/sco.html", files=[])), set())
    assert report.error is None
    assert warning(report, "EXTERNAL_LAUNCH_URL").details == {"items": ["item1"]}


@pytest.mark.parametrize("organizations", ["", organization("org1", "")])
def test_no_organization_with_items_is_invalid(organizations: str) -> None:
    report = validate(manifest(organizations=organizations))
    assert report.error.code == "MANIFEST_INVALID"
    assert report.error.details["reason"] == "no_organizations"


def test_missing_organizations_element_is_invalid() -> None:
    xml = manifest().replace(b'<organizations default="org1">', b"<x>").replace(b"</organizations>", b"</x>")
    report = validate(xml)
    assert report.error.details["reason"] == "no_organizations"
    assert "MISSING_ELEMENT" in codes(report)


def test_default_organization_missing_with_no_organizations_is_invalid() -> None:
    report = validate(manifest(organizations="", default="ghost"))
    assert report.error.details["reason"] == "no_organizations"


def test_dangling_identifierref_is_invalid() -> None:
    orgs = organization("org1", item("a", ref="res1"), item("b", ref="ghost"))
    report = validate(manifest(organizations=orgs))
    assert report.error.code == "MANIFEST_INVALID"
    assert report.error.details == {
        "reason": "dangling_identifierref",
        "items": [{"item": "b", "identifierref": "ghost"}],
    }


def test_item_referencing_a_sub_manifest_is_not_supported() -> None:
    sub = '<manifest identifier="sub1"><organizations/><resources/></manifest>'
    orgs = organization("org1", item("a", ref="res1"), item("b", ref="sub1"))
    report = validate(manifest(organizations=orgs, extra=sub))
    assert report.error.details["reason"] == "sub_manifest_reference"
    assert report.capabilities["sub_manifests"] == Capability(used=True, supported=False)


def test_duplicate_item_identifiers_in_one_organization_are_invalid() -> None:
    orgs = organization("org1", item("a", ref="res1"), item("cluster", item("a", ref="res1")))
    report = validate(manifest(organizations=orgs))
    assert report.error.details == {
        "reason": "duplicate_item_identifiers",
        "organization": "org1",
        "identifiers": ["a"],
    }


@pytest.mark.parametrize(
    "href",
    ["../outside.html", "a/../../outside.html", "/etc/passwd", "file:///etc/passwd", "C:\\course\\index.html"],
)
def test_launch_href_leaving_the_package_is_invalid(href: str) -> None:
    report = validate(manifest(resources=resource(href=href, files=[])))
    assert report.error.details == {"reason": "unsafe_href", "hrefs": [href]}


def test_unsafe_href_of_a_resource_nothing_launches_is_a_warning() -> None:
    report = validate(manifest(resources=resource() + resource("dep", "../up.html", "asset", files=[])))
    assert report.error is None
    assert warning(report, "MISSING_REFERENCED_FILES").details == {"missing": [], "outside_package": ["../up.html"]}


def test_no_launchable_content_in_the_delivered_organization() -> None:
    report = validate(manifest(resources=resource(href=None, files=["content/index.html"])), set())
    assert report.error.code == "NO_LAUNCHABLE_CONTENT"
    assert report.error.details == {"organization": "org1"}
    assert warning(report, "RESOURCE_WITHOUT_HREF").details == {"items": ["item1"]}
    assert report.launchable_count == 1


def test_clusters_only_have_nothing_to_launch() -> None:
    report = validate(manifest(organizations=organization("org1", item("cluster", item("leaf")))))
    assert report.error.code == "NO_LAUNCHABLE_CONTENT"


def test_other_organizations_content_does_not_make_the_default_launchable() -> None:
    orgs = organization("org1", item("empty")) + organization("org2")
    assert validate(manifest(organizations=orgs)).error.code == "NO_LAUNCHABLE_CONTENT"


def test_fatal_precedence() -> None:
    """Structure before launchability before files: fix the manifest first, then the ZIP."""
    orgs = organization("org1", item("a", ref="res1"), item("b", ref="ghost"))
    assert validate(manifest(organizations=orgs), set()).error.code == "MANIFEST_INVALID"
    report = validate(manifest(resources=resource(href=None)), set())
    assert report.error.code == "NO_LAUNCHABLE_CONTENT"


# ---------------------------------------------------------------- warnings


def test_missing_referenced_files_are_a_warning() -> None:
    resources = resource("res1", "index.html", files=["index.html", "a.js", "../up.js"]) + resource(
        "lib", "lib/start.html", "asset", files=["lib/x.css"]
    )
    report = validate(manifest(resources=resources))
    assert report.error is None
    assert warning(report, "MISSING_REFERENCED_FILES").details == {
        "missing": ["a.js", "lib/start.html", "lib/x.css"],
        "outside_package": ["../up.js"],
    }


def test_launch_files_are_not_repeated_in_the_warning() -> None:
    resources = resource("res1", "index.html", files=["index.html", "a.js"])
    report = validate(manifest(resources=resources), set())
    assert report.error.details == {"missing": ["index.html"]}
    assert warning(report, "MISSING_REFERENCED_FILES").details["missing"] == ["a.js"]


@pytest.mark.parametrize(
    ("schemaversion", "expected"),
    [
        ("CAM 1.3", ["OLDER_SCHEMAVERSION"]),
        ("2004 2nd Edition", ["OLDER_SCHEMAVERSION"]),
        ("2004 3rd Edition", ["OLDER_SCHEMAVERSION"]),
        ("2004 4th Edition", []),
        (None, ["SCHEMAVERSION_MISSING"]),
    ],
)
def test_schemaversion_warnings(schemaversion: str | None, expected: list[str]) -> None:
    assert codes(validate(manifest(schemaversion=schemaversion))) == expected


def test_schemaversion_missing_says_what_was_used() -> None:
    report = validate(manifest_12(schemaversion=None))
    assert warning(report, "SCHEMAVERSION_MISSING").details == {"used": "1.2"}


def test_non_leaf_identifierref_is_a_2004_warning_only() -> None:
    tree = item("cluster", item("leaf", ref="res1"), ref="res1")
    assert warning(validate(manifest(organizations=organization("org1", tree))), "NON_LEAF_IDENTIFIERREF").details == {
        "items": ["cluster"]
    }
    assert validate(manifest_12(organizations=organization("org1", tree))).warnings == []


def test_empty_leaf_is_a_2004_warning() -> None:
    orgs = organization("org1", item("a", ref="res1"), item("placeholder"))
    assert warning(validate(manifest(organizations=orgs)), "EMPTY_LEAF_ITEM").details == {"items": ["placeholder"]}


def test_sco_only_elements_on_an_asset() -> None:
    body = "<adlcp:dataFromLMS>x</adlcp:dataFromLMS>"
    orgs = organization("org1", item("a", ref="res1", body=body))
    report = validate(manifest(organizations=orgs, resources=resource(scorm_type="asset")))
    assert warning(report, "SCO_ONLY_ELEMENT_ON_ASSET").details == {"items": ["a"]}


def test_completion_threshold_on_a_cluster_is_fine() -> None:
    """4th Edition clusters use completionThreshold for measure rollup (ADL CTS CT-01..07 do this)."""
    tree = item("cluster", item("a", ref="res1"), body='<adlcp:completionThreshold completedByMeasure="true"/>')
    assert validate(manifest(organizations=organization("org1", tree))).warnings == []


def test_resource_without_scorm_type() -> None:
    report = validate(manifest(resources=resource(scorm_type=None)))
    assert report.error is None
    assert warning(report, "MISSING_SCORM_TYPE").details == {"resources": ["res1"]}
    assert report.sco_count == 0


def test_duplicate_identifiers_that_are_not_fatal() -> None:
    orgs = organization("org1", item("a", ref="res1")) + organization("org1", item("a", ref="res1"))
    report = validate(manifest(organizations=orgs, resources=resource() + resource()))
    assert report.error is None
    assert warning(report, "DUPLICATE_IDENTIFIER").details == {
        "resources": ["res1"],
        "organizations": ["org1"],
        "items": ["a"],
    }


def test_sub_manifests_are_reported() -> None:
    sub = f'<manifest identifier="sub1"><resources>{resource("subres", "sub.html")}</resources></manifest>'
    orgs = organization("org1", item("a", ref="res1"), item("b", ref="subres"))
    report = validate(manifest(organizations=orgs, extra=sub), {"index.html", "sub.html"})
    assert report.error is None
    assert warning(report, "SUB_MANIFESTS").details == {"sub_manifests": ["sub1"]}


# ---------------------------------------------------------------- capabilities


def test_capabilities_of_a_plain_package() -> None:
    capabilities = validate(manifest()).capabilities
    assert list(capabilities) == CAPABILITY_KEYS
    assert not any(capability.used for capability in capabilities.values())
    assert [key for key, capability in capabilities.items() if not capability.supported] == ["sub_manifests"]


SEQUENCING_FEATURES = (
    "<imsss:sequencing>"
    "<imsss:sequencingRules><imsss:preConditionRule/></imsss:sequencingRules>"
    "<imsss:limitConditions attemptLimit='1'/>"
    "<imsss:rollupRules/>"
    "<imsss:objectives><imsss:primaryObjective><imsss:mapInfo targetObjectiveID='g'/></imsss:primaryObjective>"
    "</imsss:objectives>"
    "<imsss:randomizationControls/><imsss:deliveryControls tracked='false'/>"
    "</imsss:sequencing>"
)


@pytest.mark.parametrize(
    ("body", "used"),
    [
        ("<imsss:sequencing><imsss:sequencingRules/></imsss:sequencing>", {"sequencing_rules"}),
        ("<imsss:sequencing><imsss:rollupRules/></imsss:sequencing>", {"rollup_rules"}),
        ("<imsss:sequencing><imsss:objectives/></imsss:sequencing>", {"objectives"}),
        (
            "<imsss:sequencing><adlseq:objectives><adlseq:objective objectiveID='o'>"
            "<adlseq:mapInfo targetObjectiveID='g'/></adlseq:objective></adlseq:objectives></imsss:sequencing>",
            {"objectives", "global_objectives"},
        ),
        ("<imsss:sequencing><imsss:limitConditions/></imsss:sequencing>", {"limit_conditions"}),
        ("<imsss:sequencing><imsss:randomizationControls/></imsss:sequencing>", {"randomization"}),
        ("<imsss:sequencing><imsss:deliveryControls/></imsss:sequencing>", {"delivery_controls"}),
        (
            SEQUENCING_FEATURES,
            {
                "sequencing_rules",
                "limit_conditions",
                "rollup_rules",
                "objectives",
                "global_objectives",
                "randomization",
                "delivery_controls",
            },
        ),
        ('<adlcp:data><adlcp:map targetID="t"/></adlcp:data>', {"shared_data"}),
        ("<adlcp:timeLimitAction>exit,message</adlcp:timeLimitAction>", {"time_limits"}),
        (
            "<adlnav:presentation><adlnav:navigationInterface><adlnav:hideLMSUI>exit</adlnav:hideLMSUI>"
            "</adlnav:navigationInterface></adlnav:presentation>",
            {"navigation_presentation"},
        ),
        ("<adlcp:completionThreshold>0.5</adlcp:completionThreshold>", {"completion_threshold"}),
        ('<imsss:sequencing IDRef="x"/>', set()),
    ],
)
def test_capabilities_used(body: str, used: set[str]) -> None:
    report = validate(manifest(organizations=organization("org1", item("a", ref="res1", body=body))))
    assert {key for key, capability in report.capabilities.items() if capability.used} == used


def test_scorm12_capabilities() -> None:
    body = "<adlcp:prerequisites type='aicc_script'>a</adlcp:prerequisites><adlcp:maxtimeallowed>0:1:0</adlcp:maxtimeallowed>"
    orgs = organization("org1", item("a", ref="res1"), item("b", ref="res1", body=body))
    report = validate(manifest_12(organizations=orgs))
    assert {key for key, capability in report.capabilities.items() if capability.used} == {
        "multi_sco",
        "prerequisites",
        "time_limits",
    }


def test_organization_sequencing_and_collection_capabilities() -> None:
    collection = (
        '<imsss:sequencingCollection><imsss:sequencing ID="c"><imsss:rollupRules/></imsss:sequencing>'
        "</imsss:sequencingCollection>"
    )
    org = organization("org1", body="<imsss:sequencing><imsss:sequencingRules/></imsss:sequencing>")
    report = validate(manifest(organizations=org, extra=collection))
    used = {key for key, capability in report.capabilities.items() if capability.used}
    assert used == {"sequencing_rules", "rollup_rules", "sequencing_collection"}


def test_multi_sco_counts_launchable_items_of_the_delivered_organization() -> None:
    orgs = organization("org1") + organization("org2", item("a", ref="res1"), item("b", ref="res1"))
    assert validate(manifest(organizations=orgs)).capabilities["multi_sco"].used is False
    assert validate(manifest(organizations=orgs, default="org2")).capabilities["multi_sco"].used is True


def test_validation_never_raises_on_odd_manifests() -> None:
    odd = Manifest(identifier="", scorm_version="2004 4th Edition", schemaversion=None, default_organization="x")
    report = validate_package(odd, set())
    assert report.error.code == "MANIFEST_INVALID"
    assert validate_package(parse_manifest(manifest(namespaces=NS_2004_PLAIN)), {"index.html"}).error is None


# ---------------------------------------------------------------- the shared corpus

# The corpus index's "version" text -> our edition. An unknown 2004 edition is read as the 4th (superset).
INDEX_VERSIONS = {
    "SCORM 1.2": SCORM_12,
    "SCORM 2004 2nd Ed. (CAM 1.3)": SCORM_2004_2ND,
    "SCORM 2004 3rd Ed.": SCORM_2004_3RD,
    "SCORM 2004 4th Ed.": SCORM_2004_4TH,
    "SCORM 2004 (no/unknown schemaversion)": SCORM_2004_4TH,
}
# Warnings a package without a decision below may carry (anything else is a regression to look at).
ROUTINE_WARNINGS = {"MISSING_REFERENCED_FILES", "OLDER_SCHEMAVERSION"}


@dataclass(frozen=True)
class Verdict:
    """What a production LMS should do with a malformed corpus package.

    `code`: the failure as shipped (None = ready). `warnings`: codes that must be reported.
    `with_content`: the verdict if every file the manifest lists were in the ZIP, i.e. the judgement
    on the manifest itself (several fixtures ship only their manifest).
    """

    code: str | None
    warnings: tuple[str, ...] = ()
    with_content: str | None = None
    why: str = ""


DECISIONS = {
    "emp-MalformedXml_SCORM12.zip": Verdict("MANIFEST_INVALID", why="mismatched tag (line 27): not well-formed"),
    "moodle-validscorm.zip": Verdict("MANIFEST_INVALID", why="only an XML declaration, no root element"),
    "moodle-badscorm.zip": Verdict(
        "MANIFEST_INVALID",
        why="the manifest sits in the one top folder badscorm/, which we accept (hand-zipped courses); "
        "it is only an XML declaration",
    ),
    "moodle-invalid.zip": Verdict("MANIFEST_MISSING", why="one empty test.htm and no manifest"),
    "moodle-validaicc.zip": Verdict("UNSUPPORTED_VERSION", why="an AICC course (.cst file), not SCORM"),
    "moodle-singlescobasic_missingorg.zip": Verdict(
        "MANIFEST_INVALID",
        with_content="MANIFEST_INVALID",
        why="empty <organizations/>: a resource package with nothing to deliver (spec section 4). Moodle "
        "synthesises an organization from the lone SCO; we refuse and say why",
    ),
    "emp-adlcts-CM-01-broken-default-org.zip": Verdict(
        "MISSING_FILES",
        ("DEFAULT_ORGANIZATION_MISSING", "MISSING_REFERENCED_FILES"),
        why="organizations@default names no organization: deliver the first one with a warning; the ZIP "
        "holds only the manifest",
    ),
    "emp-InvalidMissingOrgIdentifier_SCORM20043rdEdition.zip": Verdict(
        "MISSING_FILES",
        ("MISSING_IDENTIFIER", "DEFAULT_ORGANIZATION_MISSING", "MISSING_SCORM_TYPE", "OLDER_SCHEMAVERSION"),
        why="organization without identifier: generate one, default falls back to it; manifest-only ZIP",
    ),
    "emp-MissingRequiredFields_SCORM12.zip": Verdict(
        "MISSING_FILES",
        ("MISSING_TITLE",),
        why="organization without title: warn (the package title falls back to the upload's); launch file absent",
    ),
    "emp-MissingLaunchUrl_SCORM12.zip": Verdict(
        "NO_LAUNCHABLE_CONTENT",
        ("RESOURCE_WITHOUT_HREF", "MISSING_REFERENCED_FILES"),
        with_content="NO_LAUNCHABLE_CONTENT",
        why="the only item's SCO resource has no href: nothing can be launched",
    ),
    "emp-InvalidFileReferences_SCORM12.zip": Verdict(
        "MISSING_FILES",
        ("MISSING_REFERENCED_FILES",),
        why="the launch file is missing (fatal); the other files, including a dependency asset's own href, "
        "are a warning because no item launches them",
    ),
    "emp-MinimalValid_SCORM20043rdEdition.zip": Verdict(
        "MISSING_FILES",
        ("MISSING_SCORM_TYPE", "OLDER_SCHEMAVERSION"),
        why="manifest-only; a resource without scormType launches as an asset",
    ),
    "emp-AdlAttributes_SCORM20043rdEdition.zip": Verdict(
        "MISSING_FILES",
        ("MISSING_SCORM_TYPE", "SCO_ONLY_ELEMENT_ON_ASSET", "OLDER_SCHEMAVERSION"),
        why="manifest-only; untyped resource is an asset, so its SCO-only elements are reported as ignored",
    ),
    "emp-ContentPackagingNoSchemaVersion_SCORM20042ndEdition.zip": Verdict(
        "MISSING_FILES",
        ("SCHEMAVERSION_MISSING",),
        why="no schemaversion, 2004 namespaces (and an adlcp_v1p2 URI): read as 2004 4th Edition; manifest-only",
    ),
    "emp-ComplexNestedOrganization_SCORM12.zip": Verdict("MISSING_FILES", why="manifest-only fixture"),
    "moodle-complexscorm.zip": Verdict(
        None,
        ("DEFAULT_ORGANIZATION_MISSING",),
        why="organizations@default lacks the 'mm-' prefix of the real organization: deliver it with a warning",
    ),
}


@dataclass
class Outcome:
    code: str | None
    manifest: Manifest | None = None
    report: ValidationReport | None = None


def import_package(name: str, *, with_content: bool = False) -> Outcome:
    """What the package service does: find the manifest, parse it, validate it against the ZIP."""
    package = corpus.read_package(name)
    try:
        root = find_package_root(package.names)
    except ManifestError as error:
        return Outcome(error.code)
    if root is None:
        return Outcome("MANIFEST_MISSING")
    try:
        parsed = parse_manifest(package.manifest)
    except ManifestError as error:
        return Outcome(error.code)
    files = set(package.files) | (listed_files(parsed) if with_content else set())
    report = validate_package(parsed, files)
    return Outcome(report.error.code if report.error else None, parsed, report)


def listed_files(parsed: Manifest) -> set[str]:
    hrefs = [href for res in parsed.resources for href in [res.href or "", *res.files]]
    return {path for href in hrefs if (path := package_path(href)) is not None}


def reported_missing(report: ValidationReport) -> tuple[set[str], set[str]]:
    fatal = set(report.error.details.get("missing", [])) if report.error else set()
    warned = {
        path
        for problem in report.warnings
        if problem.code == "MISSING_REFERENCED_FILES"
        for path in problem.details["missing"]
    }
    return fatal, warned


@pytest.mark.corpus
@pytest.mark.parametrize("name", corpus.package_names())
def test_corpus_package(name: str) -> None:
    corpus.require_corpus()
    entry = corpus.index()[name]
    decision = DECISIONS.get(name)
    outcome = import_package(name)
    expected = decision.code if decision else ("MISSING_FILES" if entry.get("missing_launch_href") else None)
    assert outcome.code == expected, decision.why if decision else entry
    if outcome.report is None:
        return
    parsed, report = outcome.manifest, outcome.report
    assert parsed.scorm_version == INDEX_VERSIONS[entry["version"]]
    assert parsed.schemaversion == entry["schemaversion"]
    assert len(parsed.organizations) == entry["orgs"]
    assert (report.item_count, report.launchable_count, report.sco_count) == (
        entry["items"],
        entry["launchable_items"],
        entry["sco_resources"],
    )
    fatal, warned = reported_missing(report)
    # The index lists every resource's href as a "launch href"; we fail only on those items launch.
    assert fatal <= set(entry["missing_launch_href"]) <= fatal | warned
    assert fatal | warned == set(entry["missing_files"]) | set(entry["missing_launch_href"])
    codes_found = set(codes(report))
    if decision:
        assert set(decision.warnings) <= codes_found, decision.why
    else:
        assert codes_found <= ROUTINE_WARNINGS


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(DECISIONS))
def test_corpus_manifest_verdict_with_its_content_present(name: str) -> None:
    corpus.require_corpus()
    decision = DECISIONS[name]
    outcome = import_package(name, with_content=True)
    if outcome.report is None:  # refused before validation: the same verdict either way
        assert outcome.code == decision.code
    else:
        assert outcome.code == decision.with_content, decision.why


@pytest.mark.corpus
def test_every_broken_corpus_package_has_a_decision() -> None:
    corpus.require_corpus()
    entries = corpus.index()
    broken = {name for name, entry in entries.items() if "error" in entry or entry.get("orgs") == 0}
    assert broken <= DECISIONS.keys()
    assert DECISIONS.keys() <= entries.keys()
    assert set(corpus.package_names()) == entries.keys()


# ---------------------------------------------------------------- never crash on damaged manifests

RICH_BODY = (
    "<adlcp:completionThreshold>0.5</adlcp:completionThreshold><adlcp:dataFromLMS>d</adlcp:dataFromLMS>"
    "<imsss:sequencing><imsss:objectives><imsss:primaryObjective objectiveID='p'>"
    "<imsss:mapInfo targetObjectiveID='g'/></imsss:primaryObjective></imsss:objectives></imsss:sequencing>"
    "<adlnav:presentation><adlnav:navigationInterface><adlnav:hideLMSUI>exit</adlnav:hideLMSUI>"
    "</adlnav:navigationInterface></adlnav:presentation>"
    '<adlcp:data><adlcp:map targetID="t" readSharedData="false"/></adlcp:data>'
)
BUILT_SEEDS = [
    (manifest(), frozenset({"index.html"})),
    (
        manifest_12(organizations=organization("org1", item("a", ref="res1"), item("b", item("c", ref="res1")))),
        frozenset(),
    ),
    (
        manifest(
            base="course/",
            resources_base="content/",
            organizations=organization("org1", item("a", ref="res1", body=RICH_BODY, attrs=' parameters="?x=1"'))
            + organization("org2", item("z", ref="res2")),
            resources=resource(base="sco/", dependencies=("res2",)) + resource("res2", None, "asset", files=["lib.js"]),
            extra='<imsss:sequencingCollection><imsss:sequencing ID="s"/></imsss:sequencingCollection>'
            '<manifest identifier="sub"><resources/></manifest>',
        ),
        frozenset({"course/content/sco/index.html"}),
    ),
]
PROPERTY_SETTINGS = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def assert_never_crashes(xml: bytes, files: frozenset[str]) -> None:
    """parse_manifest returns a Manifest or raises ManifestError; validation then never raises."""
    try:
        parsed = parse_manifest(xml)
    except ManifestError as error:
        assert error.code in {"MANIFEST_INVALID", "UNSUPPORTED_VERSION"}
        assert isinstance(error.message, str)
        assert isinstance(error.details, dict)
        return
    assert isinstance(parsed, Manifest)
    report = validate_package(parsed, set(files))
    assert isinstance(report, ValidationReport)
    msgspec.json.encode(report)
    msgspec.json.encode(parsed)


@PROPERTY_SETTINGS
@given(mutations.damaged(BUILT_SEEDS))
def test_damaged_built_manifests_never_crash(case: tuple[bytes, frozenset[str]]) -> None:
    assert_never_crashes(*case)


def corpus_seeds() -> list[tuple[bytes, frozenset[str]]]:
    seeds = []
    for name in corpus.package_names():
        package = corpus.read_package(name)
        if package.manifest:
            seeds.append((package.manifest, package.files))
    return seeds or BUILT_SEEDS


CORPUS_SEEDS = corpus_seeds()


@pytest.mark.corpus
@PROPERTY_SETTINGS
@given(data=st.data())
def test_damaged_corpus_manifests_never_crash(data: st.DataObject) -> None:
    corpus.require_corpus()
    assert_never_crashes(*data.draw(mutations.damaged(CORPUS_SEEDS)))
