"""cmi5 packages over the real app: CATAPULT's example courses and its LMS test suite's packages.

The package sources in ../shared/suites/catapult/lts/pkg/src are built as CATAPULT's webpack config
builds them (lts/pkg/webpack.config.js): a folder becomes a ZIP of its files plus an index.html, with
102-zip64 written as a real Zip64 archive; a bare .xml is uploaded alone, as XML. The verdicts are
tests/core/cmi5/test_course_structure.py's VALID and INVALID lists, which name the requirement each
package checks; here they must come back through the upload route, the processing job and the
package JSON, with the contract's failure codes on top and the cmi5 problem codes in the details.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from tests.conftest import TenantKey, backend_config, make_tenant_key
from tests.core.cmi5.test_course_structure import EXAMPLES, INVALID, PACKAGES, VALID
from tests.faces.api.test_packages import (
    API,
    assert_error,
    assert_nothing_stored,
    build_zip,
    drain,
    make_client,
    package_12,
    set_storage_limit,
    stored_files,
    upload_raw,
)
from tests.faces.api.test_sessions import create

needs_suite = pytest.mark.skipif(not PACKAGES.is_dir(), reason=f"{PACKAGES} is absent (../shared/suites)")
# The suite's packages are uploaded once per module, on SQLite files (processing runs on both backends elsewhere).
on_suite_results = pytest.mark.sqlite_only(reason="reads one module-wide upload of CATAPULT's packages, made on SQLite")
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent (../shared/suites)")
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.glob("*.zip")) if EXAMPLES.is_dir() else []
CONTRACT_FAILURES = {"MANIFEST_INVALID", "MISSING_FILES", "MANIFEST_MISSING"}
INDEX_HTML = b"<!doctype html><html><head><title>CATAPULT</title></head><body></body></html>"


def suite_zip(folder: Path, *, zip64: bool = False) -> bytes:
    """A package folder zipped as CATAPULT builds it: its files and a generated index.html.

    `zip64` writes what yazl's forceZip64Format does: Zip64 local headers (zipfile's force_zip64),
    and Zip64 central directory entries and end records, which zipfile writes only for archives that
    need them, so its limits are lowered while it writes the central directory.
    """
    buffer = io.BytesIO()
    archive = zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)
    with archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            with archive.open(str(path.relative_to(folder)), "w", force_zip64=zip64) as member:
                member.write(path.read_bytes())
        with archive.open("index.html", "w", force_zip64=zip64) as member:
            member.write(INDEX_HTML)
        if zip64:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(zipfile, "ZIP64_LIMIT", 0)
                patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 0)
                archive.close()
    return buffer.getvalue()


def upload_suite_package(client: TestClient, who: TenantKey, name: str) -> Any:
    """Upload one lts/pkg/src entry the way its test does: a folder as a ZIP, a .xml as XML."""
    path = PACKAGES / name
    if path.is_dir():
        return upload_raw(client, who, suite_zip(path, zip64=name == "102-zip64"))
    content_type = {".xml": "application/xml", ".md": "text/markdown"}.get(path.suffix, "application/zip")
    return client.post(API, content=path.read_bytes(), headers={**who.headers, "Content-Type": content_type})


def package(client: TestClient, who: TenantKey, package_id: str) -> dict[str, Any]:
    return client.get(f"{API}/{package_id}", headers=who.headers).json()


def upload_processed(client: TestClient, who: TenantKey, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    drain(client)
    return package(client, who, response.json()["id"])


@pytest.fixture(scope="module")
def suite_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every lts/pkg/src package uploaded once and processed; name → the package (or the refusal)."""
    if not PACKAGES.is_dir():
        yield {}
        return
    config = Config(data_dir=tmp_path_factory.mktemp("cmi5") / "data")
    who = make_tenant_key(config, "CATAPULT", plan="enterprise")
    with make_client(config) as client:
        uploads = {name: upload_suite_package(client, who, name) for name in [*VALID, *INVALID]}
        started = time.monotonic()
        drain(client)
        results: dict[str, Any] = {"seconds": time.monotonic() - started}
        for name, response in uploads.items():
            results[name] = package(client, who, response.json()["id"]) if response.status_code == 202 else response
        yield results


# -- CATAPULT's example courses ---------------------------------------------------------------------


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


@needs_examples
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_catapult_example_courses_are_accepted(api: TestClient, acme: TenantKey, name: str) -> None:
    data = (EXAMPLES / name).read_bytes()
    ready = upload_processed(api, acme, upload_raw(api, acme, data))
    assert ready["status"] == "ready", ready
    assert (ready["standard"], ready["scorm_version"], ready["launch"]) == ("cmi5", None, None)
    assert ready["active_version"] == 1
    course = ready["course"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = [n for n in archive.namelist() if not n.endswith("/")]
    assert ready["file_count"] == len(files)
    assert course["id"].startswith("https://") and ready["title"] == next(iter(course["title"].values()))
    aus = [node for node in course["children"] if node["type"] == "au"]
    assert aus and course["au_count"] == ready["sco_count"] == len(aus)
    for au in aus:
        assert set(au) >= {
            "id",
            "title",
            "url",
            "move_on",
            "mastery_score",
            "launch_method",
            "launch_parameters",
            "entitlement_key",
            "activity_type",
            "objectives",
        }
        assert au["url"].split("?")[0] in files  # relative URLs name files of the package (§14.1)
        assert au["move_on"] in {"CompletedOrPassed", "CompletedAndPassed"}
    capabilities = ready["capabilities"]
    assert capabilities["launch"] == {"used": True, "supported": True}
    assert capabilities["multi_au"]["used"] is (len(aus) > 1)
    if name.startswith("masteryscore"):
        assert [au["mastery_score"] for au in aus] == [0.3]
        assert aus[0]["launch_method"] == "OwnWindow"
        assert capabilities["mastery_score"]["used"] and capabilities["own_window"]["used"]
        assert [w["code"] for w in ready["warnings"]] == ["OWN_WINDOW_AU"]
    if name.startswith("multi_au"):
        assert len(aus) == 8 and aus[-1]["move_on"] == "CompletedAndPassed"
    # The version JSON carries the same structure, and the files are served from the version folder.
    version = api.get(f"{API}/{ready['id']}/versions/1", headers=acme.headers).json()
    assert (version["standard"], version["course"]) == ("cmi5", course)


@needs_examples
def test_a_cmi5_zip_validates_without_being_stored(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = (EXAMPLES / "multi_au_framed.zip").read_bytes()
    response = api.post(f"{API}/validate", content=data, headers={**acme.headers, "Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["valid"], report["standard"], report["scorm_version"]) == (True, "cmi5", None)
    assert report["course"]["au_count"] == 8 and report["sco_count"] == 8
    assert_nothing_stored(config, acme.tenant_id)


# -- CATAPULT's LMS test suite packages ---------------------------------------------------------------


@on_suite_results
@needs_suite
@pytest.mark.parametrize("name", VALID)
def test_catapult_valid_packages_are_accepted(suite_results: dict[str, Any], name: str) -> None:
    ready = suite_results[name]
    assert not hasattr(ready, "status_code"), ready.text
    assert ready["status"] == "ready", ready["error"]
    assert ready["standard"] == "cmi5" and ready["error"] is None
    assert ready["course"]["id"].startswith("https://w3id.org/xapi/cmi5/catapult/lts/course/")
    assert ready["course"]["au_count"] >= 1
    bare = name.endswith(".xml")
    assert ready["file_count"] == (1 if bare else len(list((PACKAGES / name).rglob("*.*"))) + 1)
    if bare:  # every AU of a course structure without a ZIP is hosted elsewhere
        external = next(w for w in ready["warnings"] if w["code"] == "EXTERNAL_AU")
        assert external["details"]["count"] == ready["course"]["au_count"]


@on_suite_results
@needs_suite
def test_one_thousand_aus_are_accepted_quickly(suite_results: dict[str, Any]) -> None:
    ready = suite_results["101-one-thousand-aus.xml"]
    assert ready["status"] == "ready" and ready["course"]["au_count"] > 1000
    assert ready["sco_count"] == ready["course"]["au_count"]
    # The whole suite (17 valid and 16 invalid packages, the thousand AUs among them) processes in seconds.
    assert suite_results["seconds"] < 20, suite_results["seconds"]


@needs_suite
def test_the_zip64_package_is_a_real_zip64_archive() -> None:
    data = suite_zip(PACKAGES / "102-zip64", zip64=True)
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # the Zip64 end record and its locator
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        assert [i.filename for i in infos] == ["cmi5.xml", "index.html"]
        # Every central directory entry carries the Zip64 extended information extra field (0x0001).
        assert all(info.extract_version >= 45 and info.extra.startswith(b"\x01\x00") for info in infos)
        assert archive.testzip() is None


@on_suite_results
@needs_suite
@pytest.mark.parametrize(("name", "expected"), INVALID.items())
def test_catapult_invalid_packages_are_refused_with_their_reason(
    suite_results: dict[str, Any], name: str, expected: tuple[str, str]
) -> None:
    requirement, code = expected
    failed = suite_results[name]
    assert failed["status"] == "failed", (requirement, failed)
    assert "standard" not in failed and failed["active_version"] is None
    error = failed["error"]
    assert error["code"] in CONTRACT_FAILURES, error
    assert error["code"] == ("MISSING_FILES" if code == "MISSING_FILES" else "MANIFEST_INVALID"), error
    problems = error["details"]["problems"]
    assert code in {p["code"] for p in problems}, (requirement, problems)
    assert all(p["details"]["where"] and p["message"] for p in problems)
    assert error["details"]["problem_count"] == len(problems) and error["details"]["file"] == "cmi5.xml"
    if code == "MISSING_FILES":
        assert error["details"]["missing"]


@needs_suite
def test_a_markdown_file_is_no_package(api: TestClient, acme: TenantKey, config: Config) -> None:
    response = upload_suite_package(api, acme, "208-1-invalid-package.md")  # 14.0.0.0-1
    assert_error(response, 422, "INVALID_PACKAGE")
    assert_nothing_stored(config, acme.tenant_id)


@needs_suite
def test_a_zip_that_is_not_a_zip_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    response = upload_suite_package(api, acme, "209-1-not-a-zip.zip")  # 14.0.0.0-1
    assert_error(response, 422, "INVALID_PACKAGE")
    assert_nothing_stored(config, acme.tenant_id)


@needs_suite
def test_a_zip_without_cmi5_xml_is_refused(api: TestClient, acme: TenantKey) -> None:
    failed = upload_processed(api, acme, upload_suite_package(api, acme, "210-1-no-cmi5-xml"))  # 14.1.0.0-2
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "MANIFEST_MISSING"
    assert "cmi5.xml" in failed["error"]["message"]
    assert failed["error"]["details"]["top_level"] == ["README.md", "index.html"]


# -- uploads, versions and guards ---------------------------------------------------------------------


def course_structure(url: str = "https://content.example.com/au/index.html", launch: str = "AnyWindow") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">'
        '<course id="https://example.com/course"><title><langstring lang="en">Safety</langstring></title>'
        '<description><langstring lang="en">d</langstring></description></course>'
        '<objectives><objective id="https://example.com/obj/1"><title><langstring>o</langstring></title>'
        "<description><langstring>d</langstring></description></objective></objectives>"
        '<block id="https://example.com/block/1"><title><langstring>B</langstring></title>'
        "<description><langstring>d</langstring></description>"
        f'<au id="https://example.com/au/1" moveOn="Passed" masteryScore="0.75" launchMethod="{launch}" '
        'activityType="http://adlnet.gov/expapi/activities/lesson">'
        '<title><langstring lang="en">One</langstring></title><description><langstring>d</langstring></description>'
        '<objectives><objective idref="https://example.com/obj/1"/></objectives>'
        f"<url>{url}</url><launchParameters>speed=2</launchParameters><entitlementKey>k-1</entitlementKey></au>"
        "</block></courseStructure>"
    ).encode()


def test_a_bare_course_structure_is_accepted_as_xml(api: TestClient, acme: TenantKey, config: Config) -> None:
    xml = course_structure()
    for content_type in ("application/xml", "text/xml; charset=utf-8"):
        ready = upload_processed(
            api, acme, api.post(API, content=xml, headers={**acme.headers, "Content-Type": content_type})
        )
        assert ready["status"] == "ready", ready
        assert (ready["title"], ready["file_count"], ready["size_bytes"]) == ("Safety", 1, len(xml))
        assert (ready["item_count"], ready["sco_count"]) == (2, 1)
        (block,) = ready["course"]["children"]
        (au,) = block["children"]
        assert block["type"] == "block" and au["type"] == "au"
        assert (au["move_on"], au["mastery_score"], au["launch_method"]) == ("Passed", 0.75, "AnyWindow")
        assert (au["launch_parameters"], au["entitlement_key"]) == ("speed=2", "k-1")
        assert au["activity_type"] == "http://adlnet.gov/expapi/activities/lesson"
        assert au["objectives"] == ["https://example.com/obj/1"]
        assert [o["id"] for o in ready["course"]["objectives"]] == ["https://example.com/obj/1"]
        assert ready["warnings"][0]["code"] == "EXTERNAL_AU"
        assert ready["warnings"][0]["details"]["aus"] == [{"id": au["id"], "url": au["url"]}]
        assert ready["capabilities"]["external_aus"]["used"] and ready["capabilities"]["blocks"]["used"]
        stored = stored_files(config, acme.tenant_id)
        assert f"packages/{ready['id']}/1/cmi5.xml" in stored
    # As a multipart file named *.xml too.
    response = api.post(API, files={"file": ("cmi5.xml", xml, "application/octet-stream")}, headers=acme.headers)
    assert upload_processed(api, acme, response)["status"] == "ready"


def test_xml_not_declared_as_xml_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    assert_error(upload_raw(api, acme, course_structure()), 422, "INVALID_PACKAGE")
    declared = api.post(API, content=b"not xml", headers={**acme.headers, "Content-Type": "application/xml"})
    assert "declared as XML" in assert_error(declared, 422, "INVALID_PACKAGE")["error"]
    assert_nothing_stored(config, acme.tenant_id)


def test_a_bare_course_structure_with_relative_urls_is_refused(api: TestClient, acme: TenantKey) -> None:
    xml = course_structure(url="index.html")
    failed = upload_processed(
        api, acme, api.post(API, content=xml, headers={**acme.headers, "Content-Type": "text/xml"})
    )
    assert failed["error"]["code"] == "MANIFEST_INVALID"
    assert failed["error"]["details"]["reason"] == "RELATIVE_URL"
    assert failed["error"]["details"]["problems"][0]["details"]["where"] == "au[https://example.com/au/1]"
    report = api.post(f"{API}/validate", content=xml, headers={**acme.headers, "Content-Type": "text/xml"}).json()
    assert report["valid"] is False and report["error"]["details"]["reason"] == "RELATIVE_URL"


def test_relative_urls_are_checked_against_the_zip(api: TestClient, acme: TenantKey) -> None:
    missing = build_zip({"cmi5.xml": course_structure(url="au/start.html?x=1"), "au/other.html": b"x"})
    failed = upload_processed(api, acme, upload_raw(api, acme, missing))
    assert (failed["error"]["code"], failed["error"]["details"]["missing"]) == ("MISSING_FILES", ["au/start.html"])
    present = build_zip({"cmi5.xml": course_structure(url="au/start.html?x=1"), "au/start.html": b"x"})
    ready = upload_processed(api, acme, upload_raw(api, acme, present))
    assert ready["status"] == "ready" and ready["warnings"] == []
    # cmi5.xml in a single top folder is read from there, as a SCORM manifest would be.
    wrapped = build_zip(
        {
            "course/cmi5.xml": course_structure(url="au/start.html"),
            "course/au/start.html": b"x",
            ".DS_Store": b"junk",
            "__MACOSX/course/._cmi5.xml": b"junk",
        }
    )
    assert upload_processed(api, acme, upload_raw(api, acme, wrapped))["status"] == "ready"


def test_a_zip_with_both_files_stays_scorm(api: TestClient, acme: TenantKey) -> None:
    with zipfile.ZipFile(io.BytesIO(package_12())) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    data = build_zip({**files, "cmi5.xml": course_structure(url="index.html")})
    ready = upload_processed(api, acme, upload_raw(api, acme, data))
    assert ready["scorm_version"] == "1.2" and "standard" not in ready and "course" not in ready


def test_cmi5_versions_and_the_active_version_work_as_for_scorm(api: TestClient, acme: TenantKey) -> None:
    first = upload_processed(api, acme, upload_raw(api, acme, package_12()))
    assert "standard" not in first  # SCORM JSON is unchanged
    path = f"{API}/{first['id']}/versions"
    second = api.post(path, content=course_structure(), headers={**acme.headers, "Content-Type": "application/xml"})
    assert second.status_code == 202, second.text
    drain(api)
    now = package(api, acme, first["id"])
    assert (now["latest_version"], now["active_version"], now["standard"]) == (2, 2, "cmi5")
    versions = api.get(path, headers=acme.headers).json()["data"]
    assert [v.get("standard", "scorm") for v in versions] == ["scorm", "cmi5"]
    assert versions[0]["scorm_version"] == "1.2" and versions[1]["course"]["au_count"] == 1
    # A session on the cmi5 version is a cmi5 registration (tests/faces/api/test_cmi5_sessions.py); pinning the
    # SCORM version makes SCORM sessions.
    registration = create(api, acme, first["id"], learner="learner-cmi5")
    assert registration.status_code == 201 and registration.json()["package_version"] == 2, registration.text
    pinned = api.patch(f"{API}/{first['id']}", json={"active_version": 1}, headers=acme.headers)
    assert pinned.status_code == 200 and pinned.json()["active_version"] == 1
    created = create(api, acme, first["id"])
    assert created.status_code == 201, created.text
    # Moving those sessions onto the cmi5 version is refused, and nothing moves.
    moved = api.patch(
        f"{API}/{first['id']}", json={"active_version": 2, "migrate_sessions": "all"}, headers=acme.headers
    )
    assert_error(moved, 422, "CMI5_LAUNCH_UNAVAILABLE")
    assert package(api, acme, first["id"])["active_version"] == 1
    assert create(api, acme, first["id"], package_version=2).status_code in (200, 201)


def test_cmi5_zips_pass_the_archive_guards(api: TestClient, acme: TenantKey, config: Config) -> None:
    slip = build_zip({"cmi5.xml": course_structure(url="index.html"), "../evil.html": b"x", "index.html": b"x"})
    failed = upload_processed(api, acme, upload_raw(api, acme, slip))
    assert (failed["error"]["code"], failed["error"]["details"]["reason"]) == ("UNSAFE_ARCHIVE", "path_traversal")
    bomb = build_zip({"cmi5.xml": course_structure(url="index.html"), "index.html": b"\0" * (64 * 1024 * 1024)})
    failed = upload_processed(api, acme, upload_raw(api, acme, bomb))
    assert (failed["error"]["code"], failed["error"]["details"]["reason"]) == ("UNSAFE_ARCHIVE", "compression_ratio")
    assert stored_files(config, acme.tenant_id) == []


def test_cmi5_uploads_count_against_the_quota(api: TestClient, acme: TenantKey, config: Config) -> None:
    text = os.urandom(512 * 1024).hex().encode()  # 1 MiB that deflates to about half
    big = build_zip({"cmi5.xml": course_structure(url="index.html"), "index.html": text})
    set_storage_limit(config, acme.tenant_id, len(big) + 10_000)  # the ZIP fits, its 1 MiB of files do not
    failed = upload_processed(api, acme, upload_raw(api, acme, big))
    assert failed["error"]["code"] == "QUOTA_EXCEEDED"
    assert set(failed["error"]["details"]) == {"used_bytes", "limit_bytes", "requested_bytes"}
    assert stored_files(config, acme.tenant_id) == []


def test_an_oversized_course_structure_is_refused(tmp_path: Path) -> None:
    config = backend_config(tmp_path / "data", max_manifest_bytes=2048)
    who = make_tenant_key(config, "Small")
    xml = course_structure().replace(b"<title>", b"<title><!--" + b"x" * 4096 + b"-->", 1)
    with make_client(config) as client:
        failed = upload_processed(
            client, who, client.post(API, content=xml, headers={**who.headers, "Content-Type": "application/xml"})
        )
        assert failed["error"]["code"] == "MANIFEST_INVALID"
        assert failed["error"]["details"]["limit_bytes"] == 2048


def test_cmi5_xml_in_one_of_several_folders_is_missing(api: TestClient, acme: TenantKey) -> None:
    data = build_zip({"a/cmi5.xml": course_structure(url="index.html"), "a/index.html": b"x", "b/other.html": b"y"})
    failed = upload_processed(api, acme, upload_raw(api, acme, data))
    assert failed["error"]["code"] == "MANIFEST_MISSING"
    assert failed["error"]["details"]["found"] == ["a/cmi5.xml"]


def test_a_bare_course_structure_counts_against_the_quota(api: TestClient, acme: TenantKey, config: Config) -> None:
    xml = course_structure()
    set_storage_limit(config, acme.tenant_id, len(xml) - 1)
    response = api.post(API, content=xml, headers={**acme.headers, "Content-Type": "application/xml"})
    assert_error(response, 403, "QUOTA_EXCEEDED")
    assert_nothing_stored(config, acme.tenant_id)


def test_package_ready_event_names_the_standard(api: TestClient, acme: TenantKey, config: Config) -> None:
    ready = upload_processed(
        api, acme, api.post(API, content=course_structure(), headers={**acme.headers, "Content-Type": "text/xml"})
    )
    inst = Instance(config)
    try:
        events = inst.tenant_db(acme.tenant_id).read_sync(
            lambda c: [json.loads(r[0]) for r in c.execute("SELECT data FROM events WHERE type = 'package.ready'")]
        )
    finally:
        inst.close()
    assert events == [
        {"package_id": ready["id"], "version": 1, "scorm_version": None, "title": "Safety", "standard": "cmi5"}
    ]
