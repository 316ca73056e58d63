"""The activities-per-package limit over the package routes: refused above 5,000, a warning above 1,000."""

from __future__ import annotations

from litestar.testing import TestClient

from appliance.core.scorm.validation import MAX_ACTIVITIES, WARN_ACTIVITIES
from tests.conftest import TenantKey
from tests.faces.api.test_packages import API, NS_2004, build_zip, drain, upload_multipart, upload_raw, upload_ready


def wide_course(count: int, *, flow: bool = False) -> bytes:
    """A SCORM 2004 package whose organization has `count` items, all launching the same page (~105 KB of
    manifest for 20,000 items: a small upload can describe a huge tree); `flow` lets the root flow."""
    items = "".join(f'<item identifier="i{n}" identifierref="r"><title>{n}</title></item>' for n in range(count))
    if flow:
        items += '<imsss:sequencing><imsss:controlMode choice="true" flow="true"/></imsss:sequencing>'
    manifest = (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest identifier="wide" version="1" {NS_2004}>'
        "<metadata><schema>ADL SCORM</schema><schemaversion>2004 4th Edition</schemaversion></metadata>"
        f'<organizations default="o"><organization identifier="o"><title>Wide</title>{items}</organization>'
        '</organizations><resources><resource identifier="r" type="webcontent" adlcp:scormType="sco" '
        'href="index.html"><file href="index.html"/></resource></resources></manifest>'
    ).encode()
    return build_zip({"imsmanifest.xml": manifest, "index.html": b"<html></html>"})


def test_a_20000_item_manifest_is_a_failed_version_with_the_reason(api: TestClient, acme: TenantKey) -> None:
    created = upload_raw(api, acme, wide_course(20_000))
    assert created.status_code == 202, created.text
    drain(api)
    pkg = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert pkg["status"] == "failed" and pkg["active_version"] is None
    error = pkg["error"]
    assert error["code"] == "MANIFEST_INVALID"
    assert error["details"] == {
        "reason": "too_many_activities",
        "organization": "o",
        "activities": 20_000,
        "limit": MAX_ACTIVITIES,
    }
    assert "20000 activities" in error["message"] and str(MAX_ACTIVITIES) in error["message"]
    # Sessions cannot be made on it.
    session = api.post(
        "/api/v1/sessions", json={"package_id": pkg["id"], "learner": {"id": "l1"}}, headers=acme.headers
    )
    assert session.status_code == 409, session.text
    assert session.json()["code"] == "PACKAGE_NOT_READY"


def test_validate_reports_the_limit_without_storing(api: TestClient, acme: TenantKey) -> None:
    report = upload_multipart(api, acme, wide_course(MAX_ACTIVITIES + 1), path=f"{API}/validate").json()
    assert report["valid"] is False
    assert report["error"]["details"]["reason"] == "too_many_activities"
    assert report["error"]["details"]["activities"] == MAX_ACTIVITIES + 1


def test_the_limit_itself_is_accepted_with_a_warning(api: TestClient, acme: TenantKey) -> None:
    pkg = upload_ready(api, acme, wide_course(MAX_ACTIVITIES))
    [warning] = [w for w in pkg["warnings"] if w["code"] == "MANY_ACTIVITIES"]
    assert warning["details"] == {
        "organization": "o",
        "activities": MAX_ACTIVITIES,
        "warn_above": WARN_ACTIVITIES,
        "limit": MAX_ACTIVITIES,
    }


def test_no_warning_up_to_the_lower_threshold(api: TestClient, acme: TenantKey) -> None:
    pkg = upload_ready(api, acme, wide_course(WARN_ACTIVITIES))
    assert "MANY_ACTIVITIES" not in {w["code"] for w in pkg["warnings"]}
    above = upload_ready(api, acme, wide_course(WARN_ACTIVITIES + 1))
    assert "MANY_ACTIVITIES" in {w["code"] for w in above["warnings"]}
