"""Console pages through the test client: the upload route (CSRF header, the same service path as the
API) and a package's validation report with its warnings; a failed upload's answer."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.faces.api.test_packages import build_zip, drain, manifest_12
from tests.faces.console.conftest import World, sign_in


def test_console_upload_and_validation_report(app_client: TestClient, world: World) -> None:
    csrf = sign_in(app_client, "acme-admin")
    data = build_zip({"imsmanifest.xml": manifest_12(extra_files=("images/missing.png",)), "index.html": b"x"})
    upload = f"/admin/t/{world.acme}/packages/upload"
    headers = {"Content-Type": "application/zip", "X-CSRF-Token": csrf, "Accept": "application/json"}
    created = app_client.post(upload, content=data, headers=headers)
    assert created.status_code == 202, created.text
    package_id = created.json()["id"]
    status = app_client.get(f"/admin/t/{world.acme}/packages/{package_id}/status")
    assert status.json()["status"] == "processing"
    page = app_client.get(f"/admin/t/{world.acme}/packages/{package_id}")
    assert 'data-status="processing"' in page.text  # the page's script polls while this holds
    drain(app_client)
    page = app_client.get(f"/admin/t/{world.acme}/packages/{package_id}")
    assert 'data-status="ready"' in page.text
    assert "MISSING_REFERENCED_FILES" in page.text and "images/missing.png" not in page.text.split("Capabilities")[1]
    # Not a ZIP: the contract's error, as JSON, for the page's script to show.
    refused = app_client.post(upload, content=b"not a zip", headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] in {"INVALID_PACKAGE", "VALIDATION_ERROR"}
    # The other tenant's upload route is not found, with a valid token.
    other = app_client.post(f"/admin/t/{world.globex}/packages/upload", content=data, headers=headers)
    assert other.status_code == 404
