"""The package routes over the real app: upload, processing, versions, lifecycle, listing, limits, isolation.

Every test runs the app with the scheduler stopped (`start_scheduler=False`) and drains the job queue
by hand, so processing happens exactly when the test says and nothing sleeps. The helpers at the top
(package builders, `drain`, disk inspection) are shared by the corpus and security test modules.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.library import package_uploads
from appliance.services.tenancy.tenants import get_tenant, set_quotas
from appliance.services.tenancy.usage import get_usage
from tests.conftest import TenantKey

API = "/api/v1/packages"

# -- package builders ------------------------------------------------------------------------------

NS_12 = 'xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2"'
NS_2004 = (
    'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" '
    'xmlns:imsss="http://www.imsglobal.org/xsd/imsss"'
)


def manifest_12(
    title: str = "Course", hrefs: tuple[str, ...] = ("index.html",), extra_files: tuple[str, ...] = ()
) -> bytes:
    """A SCORM 1.2 manifest: one SCO item per href; `extra_files` are listed on the first resource."""
    items = "".join(
        f'<item identifier="item{n}" identifierref="res{n}"><title>Lesson {n}</title></item>' for n in range(len(hrefs))
    )
    resources = "".join(
        f'<resource identifier="res{n}" type="webcontent" adlcp:scormtype="sco" href="{href}">'
        f'<file href="{href}"/>{"".join(f"<file href={chr(34)}{x}{chr(34)}/>" for x in (extra_files if n == 0 else ()))}'
        "</resource>"
        for n, href in enumerate(hrefs)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest identifier="com.example.m12" version="1" {NS_12}>'
        "<metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>"
        f'<organizations default="org1"><organization identifier="org1"><title>{title}</title>{items}'
        f"</organization></organizations><resources>{resources}</resources></manifest>"
    ).encode()


def manifest_2004(title: str = "Sequenced course") -> bytes:
    """A SCORM 2004 4th Edition manifest: a cluster of two SCOs with a sequencing rule and a global objective."""
    sequencing = (
        "<imsss:sequencing><imsss:sequencingRules><imsss:preConditionRule><imsss:ruleConditions>"
        '<imsss:ruleCondition condition="completed"/></imsss:ruleConditions>'
        '<imsss:ruleAction action="skip"/></imsss:preConditionRule></imsss:sequencingRules>'
        '<imsss:objectives><imsss:primaryObjective objectiveID="p1">'
        '<imsss:mapInfo targetObjectiveID="global1"/></imsss:primaryObjective></imsss:objectives>'
        "</imsss:sequencing>"
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest identifier="com.example.m2004" version="1" {NS_2004}>'
        "<metadata><schema>ADL SCORM</schema><schemaversion>2004 4th Edition</schemaversion></metadata>"
        f'<organizations default="org1"><organization identifier="org1"><title>{title}</title>'
        '<item identifier="cluster"><title>Module</title>'
        f'<item identifier="a" identifierref="sco_a"><title>A</title>{sequencing}</item>'
        '<item identifier="b" identifierref="sco_b"><title>B</title></item>'
        "</item></organization></organizations><resources>"
        '<resource identifier="sco_a" type="webcontent" adlcp:scormType="sco" href="a.html"><file href="a.html"/></resource>'
        '<resource identifier="sco_b" type="webcontent" adlcp:scormType="sco" href="b.html"><file href="b.html"/></resource>'
        "</resources></manifest>"
    ).encode()


def build_zip(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP holding `files` (name -> content), in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def package_12(title: str = "Course", body: bytes = b"<html><body>hello</body></html>") -> bytes:
    """A valid single-SCO SCORM 1.2 package."""
    return build_zip({"imsmanifest.xml": manifest_12(title), "index.html": body})


def broken_package() -> bytes:
    """A ZIP whose manifest is not well-formed: processing fails with MANIFEST_INVALID."""
    return build_zip({"imsmanifest.xml": b"<manifest><organizations>", "index.html": b"x"})


# -- app, client and job helpers -------------------------------------------------------------------


def make_client(config: Config) -> TestClient:
    """A test client on `config` whose scheduler only runs when `drain` is called."""
    return TestClient(create_app(config, start_scheduler=False), raise_server_exceptions=False)


def drain(client: TestClient) -> None:
    """Run every due job to the end (retries come later on the real clock, so they are not due)."""
    client.blocking_portal.call(client.app.state.scheduler.drain)


def upload_raw(client: TestClient, who: TenantKey, data: bytes, path: str = API) -> Any:
    return client.post(path, content=data, headers={**who.headers, "Content-Type": "application/zip"})


def upload_multipart(client: TestClient, who: TenantKey, data: bytes, title: str | None = None, path: str = API) -> Any:
    form = {"title": title} if title is not None else None
    return client.post(path, files={"file": ("course.zip", data, "application/zip")}, data=form, headers=who.headers)


def upload_ready(client: TestClient, who: TenantKey, data: bytes) -> dict[str, Any]:
    """Upload, process, and return the package (which must be ready)."""
    created = upload_raw(client, who, data)
    assert created.status_code == 202, created.text
    drain(client)
    package = client.get(f"{API}/{created.json()['id']}", headers=who.headers).json()
    assert package["status"] == "ready", package
    return package


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "details"}, body
    assert body["code"] == code, body
    return body


# -- disk and usage inspection ---------------------------------------------------------------------


def files_under(path: Path) -> list[str]:
    """Every file below `path` (relative), for "nothing left behind" assertions."""
    if not path.exists():
        return []
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def stored_files(config: Config, tenant_id: str) -> list[str]:
    """The tenant's files other than its database: extracted packages and waiting uploads."""
    tenant_dir = config.data_dir / "tenants" / tenant_id
    return [name for name in files_under(tenant_dir) if not name.startswith("tenant.db")]


def tmp_files(config: Config) -> list[str]:
    return files_under(config.data_dir / "tmp")


def assert_nothing_stored(config: Config, tenant_id: str) -> None:
    """No package file, no package folder (not even an empty one), no waiting ZIP, nothing in tmp/."""
    assert stored_files(config, tenant_id) == []
    packages_dir = config.data_dir / "tenants" / tenant_id / "packages"
    assert not packages_dir.exists() or list(packages_dir.iterdir()) == []
    assert tmp_files(config) == []
    assert not (config.data_dir / "tmp").exists() or list((config.data_dir / "tmp").iterdir()) == []


def package_bytes(config: Config, tenant_id: str) -> int:
    """The tenant's stored package bytes, as the usage report (and the quota) count them."""
    inst = Instance(config)
    try:
        return int(get_usage(inst, get_tenant(inst, tenant_id))["package_bytes"])
    finally:
        inst.close()


def set_storage_limit(config: Config, tenant_id: str, limit: int | None) -> None:
    inst = Instance(config)
    try:
        set_quotas(inst, tenant_id, storage_bytes=limit)
    finally:
        inst.close()


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    """The app on the test's data dir, scheduler stopped (drain runs jobs)."""
    with make_client(config) as test_client:
        yield test_client


# -- upload and processing -------------------------------------------------------------------------


def test_raw_zip_upload_is_accepted_then_ready(api: TestClient, acme: TenantKey, config: Config) -> None:
    body = b"<html><body>lesson</body></html>"
    data = package_12("Fire safety", body)
    created = upload_raw(api, acme, data)
    assert created.status_code == 202, created.text
    pkg = created.json()
    assert pkg["id"].startswith("pkg_")
    assert (pkg["status"], pkg["error"], pkg["latest_version"], pkg["active_version"]) == ("processing", None, 1, None)
    assert pkg["size_bytes"] == len(data)  # the received ZIP is what is stored until processing ends
    assert package_bytes(config, acme.tenant_id) == len(data)

    drain(api)
    ready = api.get(f"{API}/{pkg['id']}", headers=acme.headers).json()
    manifest = manifest_12("Fire safety")
    assert ready["status"] == "ready"
    assert ready["error"] is None
    assert ready["title"] == "Fire safety"
    assert ready["scorm_version"] == "1.2"
    assert (ready["latest_version"], ready["active_version"]) == (1, 1)
    assert (ready["sco_count"], ready["item_count"], ready["file_count"]) == (1, 1, 2)
    assert ready["size_bytes"] == len(manifest) + len(body)
    assert ready["warnings"] == []
    assert ready["capabilities"]["multi_sco"] == {"used": False, "supported": True}
    assert ready["launch"] == {
        "organization": "org1",
        "title": "Fire safety",
        "items": [
            {
                "identifier": "item0",
                "title": "Lesson 0",
                "launchable": True,
                "href": "index.html",
                "scorm_type": "sco",
                "visible": True,
                "children": [],
            }
        ],
    }
    assert ready["created_at"].endswith("Z") and ready["updated_at"].endswith("Z")
    version_dir = config.data_dir / "tenants" / acme.tenant_id / "packages" / pkg["id"] / "1"
    assert files_under(version_dir) == ["imsmanifest.xml", "index.html"]
    assert (version_dir / "index.html").read_bytes() == body
    # The ZIP is gone once extracted, and the quota now counts the extracted bytes exactly.
    assert stored_files(config, acme.tenant_id) == [
        f"packages/{pkg['id']}/1/imsmanifest.xml",
        f"packages/{pkg['id']}/1/index.html",
    ]
    assert package_bytes(config, acme.tenant_id) == ready["size_bytes"]
    assert tmp_files(config) == []


def test_multipart_upload_with_title(api: TestClient, acme: TenantKey) -> None:
    created = upload_multipart(api, acme, package_12("Manifest title"), title="  My title  ")
    assert created.status_code == 202, created.text
    assert created.json()["title"] == "My title"
    drain(api)
    ready = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert (ready["status"], ready["title"]) == ("ready", "My title")
    version = api.get(f"{API}/{ready['id']}/versions/1", headers=acme.headers).json()
    assert version["upload_sha256"] and len(version["upload_sha256"]) == 64


def test_multipart_upload_without_title_takes_the_manifest_title(api: TestClient, acme: TenantKey) -> None:
    created = upload_multipart(api, acme, package_12("From the manifest"))
    assert created.status_code == 202, created.text
    assert created.json()["title"] is None
    drain(api)
    assert api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()["title"] == "From the manifest"


def test_scorm_2004_package_reports_its_tree_and_capabilities(api: TestClient, acme: TenantKey) -> None:
    data = build_zip({"imsmanifest.xml": manifest_2004(), "a.html": b"a", "b.html": b"b"})
    pkg = upload_ready(api, acme, data)
    assert pkg["scorm_version"] == "2004 4th Edition"
    assert (pkg["sco_count"], pkg["item_count"], pkg["file_count"]) == (2, 3, 3)
    [cluster] = pkg["launch"]["items"]
    assert (cluster["identifier"], cluster["launchable"], cluster["href"]) == ("cluster", False, None)
    assert [(c["identifier"], c["href"]) for c in cluster["children"]] == [("a", "a.html"), ("b", "b.html")]
    caps = pkg["capabilities"]
    assert caps["multi_sco"]["used"] and caps["sequencing_rules"]["used"] and caps["global_objectives"]["used"]
    assert not caps["rollup_rules"]["used"]
    assert all(set(c) == {"used", "supported"} for c in caps.values())


def test_package_in_one_top_folder_is_accepted(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = build_zip({"course/imsmanifest.xml": manifest_12(), "course/index.html": b"x"})
    pkg = upload_ready(api, acme, data)
    assert stored_files(config, acme.tenant_id) == [
        f"packages/{pkg['id']}/1/imsmanifest.xml",
        f"packages/{pkg['id']}/1/index.html",
    ]


def test_non_fatal_problems_are_warnings_on_a_ready_package(api: TestClient, acme: TenantKey) -> None:
    manifest = manifest_12(extra_files=("images/missing.png",))
    pkg = upload_ready(api, acme, build_zip({"imsmanifest.xml": manifest, "index.html": b"x"}))
    [warning] = pkg["warnings"]
    assert set(warning) == {"code", "message", "details"}
    assert warning["code"] == "MISSING_REFERENCED_FILES"
    assert "images/missing.png" in warning["details"]["missing"]


def test_failed_processing_reports_the_reason_and_leaves_no_files(
    api: TestClient, acme: TenantKey, config: Config
) -> None:
    created = upload_raw(api, acme, broken_package())
    assert created.status_code == 202
    drain(api)
    pkg = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert pkg["status"] == "failed"
    assert pkg["error"]["code"] == "MANIFEST_INVALID"
    assert {"line", "column"} <= set(pkg["error"]["details"]), pkg["error"]
    assert pkg["active_version"] is None
    assert not (config.data_dir / "tenants" / acme.tenant_id / "packages" / pkg["id"] / "1").exists()
    assert_nothing_stored(config, acme.tenant_id)
    assert package_bytes(config, acme.tenant_id) == 0


def test_missing_launch_file_fails_with_the_missing_paths(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = build_zip({"imsmanifest.xml": manifest_12(hrefs=("index.html", "lesson2/page.html")), "index.html": b"x"})
    created = upload_raw(api, acme, data)
    drain(api)
    pkg = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert pkg["error"]["code"] == "MISSING_FILES"
    assert pkg["error"]["details"]["missing"] == ["lesson2/page.html"]
    assert_nothing_stored(config, acme.tenant_id)


# -- synchronous refusals --------------------------------------------------------------------------


def test_not_a_zip_is_invalid_package(api: TestClient, acme: TenantKey, config: Config) -> None:
    assert_error(upload_raw(api, acme, b"%PDF-1.4 not a zip at all" * 100), 422, "INVALID_PACKAGE")
    assert_error(upload_multipart(api, acme, b"plain text"), 422, "INVALID_PACKAGE")
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)


def test_empty_body_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    body = assert_error(upload_raw(api, acme, b""), 422, "VALIDATION_ERROR")
    assert body["details"]["errors"]
    assert_error(upload_multipart(api, acme, b""), 422, "VALIDATION_ERROR")
    assert_nothing_stored(config, acme.tenant_id)


def test_multipart_without_a_file_field_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    response = api.post(API, files={"upload": ("x.zip", package_12(), "application/zip")}, headers=acme.headers)
    body = assert_error(response, 422, "VALIDATION_ERROR")
    assert body["details"]["errors"][0]["field"] == "file"
    only_title = api.post(API, files={"title": (None, "just a title")}, headers=acme.headers)
    assert_error(only_title, 422, "VALIDATION_ERROR")
    assert_nothing_stored(config, acme.tenant_id)


def test_malformed_multipart_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    headers = {**acme.headers, "Content-Type": "multipart/form-data; boundary=xyz"}
    assert_error(api.post(API, content=b"--xyz\r\ngarbage without end", headers=headers), 422, "VALIDATION_ERROR")
    assert_nothing_stored(config, acme.tenant_id)


def test_uploads_need_credentials(api: TestClient, acme: TenantKey, config: Config) -> None:
    assert_error(api.post(API, content=package_12(), headers={"Content-Type": "application/zip"}), 401, "UNAUTHORIZED")
    assert_nothing_stored(config, acme.tenant_id)


@pytest.fixture
def small_limit_config(config: Config) -> Config:
    return dataclasses.replace(config, max_upload_bytes=4096)


def test_declared_size_above_the_maximum_is_413_before_reading(
    small_limit_config: Config, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*_: Any, **__: Any) -> None:
        raise AssertionError("the body must not be read when its declared size is refused")

    monkeypatch.setattr(package_uploads, "receive_upload", must_not_run)
    with make_client(small_limit_config) as client:
        body = assert_error(upload_raw(client, acme, b"PK" + b"\0" * 5000), 413, "PAYLOAD_TOO_LARGE")
        assert body["details"]["limit_bytes"] == 4096
        assert_error(upload_multipart(client, acme, b"\0" * 5000), 413, "PAYLOAD_TOO_LARGE")
    assert_nothing_stored(small_limit_config, acme.tenant_id)


def test_streamed_body_above_the_maximum_is_413(small_limit_config: Config, acme: TenantKey) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"\0" * 1000

    with make_client(small_limit_config) as client:
        response = client.post(API, content=chunks(), headers={**acme.headers, "Content-Type": "application/zip"})
        assert "content-length" not in {k.lower() for k in response.request.headers}
        body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        assert body["details"]["limit_bytes"] == 4096
        # Exactly at the limit is fine (and then judged on being a ZIP).
        exact = b"\0" * 4096
        assert_error(
            client.post(API, content=iter([exact]), headers={**acme.headers, "Content-Type": "application/zip"}),
            422,
            "INVALID_PACKAGE",
        )
    assert_nothing_stored(small_limit_config, acme.tenant_id)


def test_declared_size_over_the_quota_is_refused_before_any_byte_is_stored(
    api: TestClient, acme: TenantKey, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = upload_ready(api, acme, package_12())
    used = stored["size_bytes"]
    set_storage_limit(config, acme.tenant_id, used + 100)

    def must_not_run(*_: Any, **__: Any) -> None:
        raise AssertionError("the body must not be read when the declared size breaks the quota")

    monkeypatch.setattr(package_uploads, "receive_upload", must_not_run)
    body = assert_error(upload_raw(api, acme, package_12()), 403, "QUOTA_EXCEEDED")
    assert body["details"]["used_bytes"] == used
    assert body["details"]["limit_bytes"] == used + 100
    assert_error(upload_raw(api, acme, package_12(), path=f"{API}/{stored['id']}/versions"), 403, "QUOTA_EXCEEDED")
    assert tmp_files(config) == []
    assert package_bytes(config, acme.tenant_id) == used
    assert api.get(f"{API}/{stored['id']}", headers=acme.headers).json()["latest_version"] == 1


def test_actual_size_over_the_quota_is_refused(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = package_12(body=bytes(range(256)) * 40)
    set_storage_limit(config, acme.tenant_id, len(data) - 1)
    # No Content-Length: the quota can only be judged on the bytes as they arrive.
    response = api.post(
        API, content=iter([data[:1000], data[1000:]]), headers={**acme.headers, "Content-Type": "application/zip"}
    )
    body = assert_error(response, 403, "QUOTA_EXCEEDED")
    assert body["details"]["limit_bytes"] == len(data) - 1
    assert body["details"]["used_bytes"] == 0
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)


def test_extracted_size_over_the_quota_fails_processing(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = package_12(body=b"compressible " * 10_000)  # extracts to far more than the ZIP
    set_storage_limit(config, acme.tenant_id, len(data) + 1000)
    created = upload_raw(api, acme, data)
    assert created.status_code == 202, created.text
    drain(api)
    pkg = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert pkg["status"] == "failed"
    assert pkg["error"]["code"] == "QUOTA_EXCEEDED"
    assert pkg["error"]["details"]["limit_bytes"] == len(data) + 1000
    assert_nothing_stored(config, acme.tenant_id)
    assert package_bytes(config, acme.tenant_id) == 0


# -- validate without storing ----------------------------------------------------------------------


def test_validate_a_good_package_stores_nothing(api: TestClient, acme: TenantKey, config: Config) -> None:
    response = api.post(
        f"{API}/validate", content=package_12("Checked"), headers={**acme.headers, "Content-Type": "application/zip"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is True and report["error"] is None
    assert (report["scorm_version"], report["title"]) == ("1.2", "Checked")
    assert (report["sco_count"], report["item_count"], report["file_count"]) == (1, 1, 2)
    assert report["launch"]["items"][0]["href"] == "index.html"
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)
    assert package_bytes(config, acme.tenant_id) == 0


def test_validate_a_broken_package_gives_the_reason(api: TestClient, acme: TenantKey, config: Config) -> None:
    response = upload_multipart(api, acme, broken_package(), path=f"{API}/validate")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["valid"] is False
    assert report["error"]["code"] == "MANIFEST_INVALID"
    assert report["error"]["message"]
    assert_error(upload_raw(api, acme, b"not a zip", path=f"{API}/validate"), 422, "INVALID_PACKAGE")
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)
    assert package_bytes(config, acme.tenant_id) == 0


# -- versions and lifecycle ------------------------------------------------------------------------


def test_versions_and_the_active_version(api: TestClient, acme: TenantKey, config: Config) -> None:
    pkg = upload_ready(api, acme, package_12("v1"))
    pid = pkg["id"]
    versions_url = f"{API}/{pid}/versions"

    second = upload_multipart(api, acme, package_12("v2"), path=versions_url)
    assert second.status_code == 202, second.text
    assert (second.json()["id"], second.json()["status"], second.json()["latest_version"]) == (pid, "processing", 2)
    assert second.json()["active_version"] == 1  # the ready version stays active while v2 processes
    drain(api)
    after_v2 = api.get(f"{API}/{pid}", headers=acme.headers).json()
    assert (after_v2["status"], after_v2["latest_version"], after_v2["active_version"]) == ("ready", 2, 2)
    assert after_v2["active_version_pinned"] is False

    listed = api.get(versions_url, headers=acme.headers).json()
    assert [v["version"] for v in listed["data"]] == [1, 2]
    assert listed["next_cursor"] is None
    assert all(v["status"] == "ready" and v["package_id"] == pid for v in listed["data"])
    one = api.get(f"{versions_url}/1", headers=acme.headers).json()
    assert (one["version"], one["title"], one["scorm_version"]) == (1, "v1", "1.2")
    assert_error(api.get(f"{versions_url}/3", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.get(f"{versions_url}/abc", headers=acme.headers), 404, "NOT_FOUND")

    # Pin version 1: a newer ready version no longer moves the active one.
    pinned = api.patch(f"{API}/{pid}", json={"active_version": 1}, headers=acme.headers)
    assert pinned.status_code == 200, pinned.text
    assert (pinned.json()["active_version"], pinned.json()["active_version_pinned"]) == (1, True)
    assert upload_raw(api, acme, package_12("v3"), path=versions_url).status_code == 202
    drain(api)
    assert api.get(f"{API}/{pid}", headers=acme.headers).json()["active_version"] == 1

    # A failed version 4: the package shows its latest version's failure, the active one is unchanged.
    assert upload_raw(api, acme, broken_package(), path=versions_url).status_code == 202
    drain(api)
    after_v4 = api.get(f"{API}/{pid}", headers=acme.headers).json()
    assert (after_v4["latest_version"], after_v4["status"], after_v4["active_version"]) == (4, "failed", 1)
    assert after_v4["error"]["code"] == "MANIFEST_INVALID"
    assert not (config.data_dir / "tenants" / acme.tenant_id / "packages" / pid / "4").exists()

    # Only ready versions can be made active.
    for bad in (4, 9, 0):
        body = assert_error(
            api.patch(f"{API}/{pid}", json={"active_version": bad}, headers=acme.headers), 422, "VALIDATION_ERROR"
        )
        assert body["details"]["errors"][0]["field"] == "active_version"
    # A version still processing is not ready either.
    assert upload_raw(api, acme, package_12("v5"), path=versions_url).status_code == 202
    assert_error(api.patch(f"{API}/{pid}", json={"active_version": 5}, headers=acme.headers), 422, "VALIDATION_ERROR")

    # Unpinning follows the newest ready version again (3; 4 failed, 5 is processing).
    unpinned = api.patch(f"{API}/{pid}", json={"active_version": None}, headers=acme.headers).json()
    assert (unpinned["active_version"], unpinned["active_version_pinned"]) == (3, False)
    drain(api)
    final = api.get(f"{API}/{pid}", headers=acme.headers).json()
    assert (final["status"], final["latest_version"], final["active_version"]) == ("ready", 5, 5)
    assert [v["status"] for v in api.get(versions_url, headers=acme.headers).json()["data"]] == [
        "ready",
        "ready",
        "ready",
        "failed",
        "ready",
    ]


def test_new_version_keeps_the_title_unless_one_is_given(api: TestClient, acme: TenantKey) -> None:
    created = upload_multipart(api, acme, package_12("Manifest"), title="Chosen")
    drain(api)
    pid = created.json()["id"]
    upload_raw(api, acme, package_12("Other manifest"), path=f"{API}/{pid}/versions")
    drain(api)
    assert api.get(f"{API}/{pid}", headers=acme.headers).json()["title"] == "Chosen"
    upload_multipart(api, acme, package_12(), title="Renamed", path=f"{API}/{pid}/versions")
    drain(api)
    assert api.get(f"{API}/{pid}", headers=acme.headers).json()["title"] == "Renamed"


def test_patch_title_and_bad_patches(api: TestClient, acme: TenantKey) -> None:
    pkg = upload_ready(api, acme, package_12())
    url = f"{API}/{pkg['id']}"
    renamed = api.patch(url, json={"title": "New name"}, headers=acme.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "New name"
    assert renamed.json()["active_version"] == 1
    assert api.get(url, headers=acme.headers).json()["title"] == "New name"
    assert_error(api.patch(url, json={"colour": "red"}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(api.patch(url, json={"title": 5}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(api.patch(url, json={"migrate_sessions": "some"}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(
        api.patch(url, content=b"{not json", headers={**acme.headers, "Content-Type": "application/json"}),
        422,
        "VALIDATION_ERROR",
    )
    assert_error(api.patch(f"{API}/pkg_unknown", json={"title": "x"}, headers=acme.headers), 404, "NOT_FOUND")


def test_delete_removes_files_metadata_and_frees_quota(api: TestClient, acme: TenantKey, config: Config) -> None:
    keep = upload_ready(api, acme, package_12("Keep"))
    pkg = upload_ready(api, acme, package_12("Delete me", body=b"x" * 5000))
    pid = pkg["id"]
    upload_raw(api, acme, package_12("v2"), path=f"{API}/{pid}/versions")
    drain(api)
    upload_raw(api, acme, package_12("v3"), path=f"{API}/{pid}/versions")  # still processing: a ZIP in uploads/
    package_dir = config.data_dir / "tenants" / acme.tenant_id / "packages" / pid
    assert files_under(package_dir / "1") and files_under(package_dir / "2")
    assert files_under(config.data_dir / "tenants" / acme.tenant_id / "uploads") == [f"{pid}-3.zip"]
    versions = api.get(f"{API}/{pid}/versions", headers=acme.headers).json()["data"]
    assert package_bytes(config, acme.tenant_id) == keep["size_bytes"] + sum(v["size_bytes"] for v in versions)

    response = api.delete(f"{API}/{pid}", headers=acme.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert not package_dir.exists()
    assert stored_files(config, acme.tenant_id) == [
        f"packages/{keep['id']}/1/imsmanifest.xml",
        f"packages/{keep['id']}/1/index.html",
    ]
    assert package_bytes(config, acme.tenant_id) == keep["size_bytes"]
    assert_error(api.get(f"{API}/{pid}", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.get(f"{API}/{pid}/versions", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.get(f"{API}/{pid}/versions/1", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.delete(f"{API}/{pid}", headers=acme.headers), 404, "NOT_FOUND")
    # The queued job of the deleted version finds nothing to do and leaves nothing behind.
    drain(api)
    assert not package_dir.exists()
    assert [p["id"] for p in api.get(API, headers=acme.headers).json()["data"]] == [keep["id"]]
    assert tmp_files(config) == []


# -- listing ---------------------------------------------------------------------------------------


def test_list_by_status_and_paginate(api: TestClient, acme: TenantKey) -> None:
    ready = [upload_ready(api, acme, package_12(f"ready {n}"))["id"] for n in range(3)]
    failed = upload_raw(api, acme, broken_package()).json()["id"]
    drain(api)
    processing = upload_raw(api, acme, package_12("later")).json()["id"]

    def ids(query: str) -> list[str]:
        response = api.get(f"{API}{query}", headers=acme.headers)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert ids("") == [*ready, failed, processing]
    assert ids("?status=ready") == ready
    assert ids("?status=failed") == [failed]
    assert ids("?status=processing") == [processing]
    assert_error(api.get(f"{API}?status=broken", headers=acme.headers), 422, "VALIDATION_ERROR")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"{API}{query}", headers=acme.headers).json()
        assert len(page["data"]) <= 2
        seen += [p["id"] for p in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == ([*ready, failed, processing], 3)
    first = api.get(f"{API}?status=ready&limit=2", headers=acme.headers).json()
    rest = api.get(f"{API}?status=ready&limit=2&cursor={first['next_cursor']}", headers=acme.headers).json()
    assert [p["id"] for p in first["data"] + rest["data"]] == ready
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=501", "?limit=-1", "?limit=ten", "?cursor=not-a-cursor", "?cursor=%%%"]
)
def test_bad_list_parameters(api: TestClient, acme: TenantKey, query: str) -> None:
    body = assert_error(api.get(f"{API}{query}", headers=acme.headers), 422, "VALIDATION_ERROR")
    assert body["details"]["errors"]


def test_limit_bounds_are_inclusive(api: TestClient, acme: TenantKey) -> None:
    assert api.get(f"{API}?limit=1", headers=acme.headers).status_code == 200
    assert api.get(f"{API}?limit=500", headers=acme.headers).status_code == 200


# -- tenant isolation ------------------------------------------------------------------------------


def test_another_tenant_sees_nothing_and_changes_nothing(
    api: TestClient, acme: TenantKey, globex: TenantKey, config: Config
) -> None:
    pkg = upload_ready(api, acme, package_12("Acme course"))
    pid = pkg["id"]
    before = api.get(f"{API}/{pid}", headers=acme.headers).json()
    g = globex.headers
    zip_headers = {**g, "Content-Type": "application/zip"}
    attempts = [
        api.get(f"{API}/{pid}", headers=g),
        api.get(f"{API}/{pid}/versions", headers=g),
        api.get(f"{API}/{pid}/versions/1", headers=g),
        api.patch(f"{API}/{pid}", json={"title": "stolen"}, headers=g),
        api.patch(f"{API}/{pid}", json={"active_version": None}, headers=g),
        api.delete(f"{API}/{pid}", headers=g),
        api.post(f"{API}/{pid}/versions", content=package_12("intruder"), headers=zip_headers),
    ]
    for response in attempts:
        body = assert_error(response, 404, "NOT_FOUND")
        assert "Acme" not in response.text
        assert body["details"].get("package_id", pid) == pid
    drain(api)
    assert api.get(API, headers=g).json()["data"] == []
    assert api.get(f"{API}/{pid}", headers=acme.headers).json() == before
    assert [v["version"] for v in api.get(f"{API}/{pid}/versions", headers=acme.headers).json()["data"]] == [1]
    assert stored_files(config, globex.tenant_id) == []
    assert tmp_files(config) == []
    assert package_bytes(config, globex.tenant_id) == 0


def test_zip_without_a_manifest_says_what_it_holds(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = build_zip(
        {"export/course/imsmanifest.xml": manifest_12(), "export/course/index.html": b"x", "readme.txt": b"r"}
    )
    created = upload_raw(api, acme, data)
    drain(api)
    pkg = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert pkg["error"]["code"] == "MANIFEST_MISSING"
    assert pkg["error"]["details"]["top_level"] == ["export/", "readme.txt"]
    assert_nothing_stored(config, acme.tenant_id)
