"""Dispatch routes through the Litestar test client: the admin API, the ZIP, the relay's refusals
(disabled, expired, learner cap, forged token) and its result endpoint's authorisation."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from typing import Any

from litestar.testing import TestClient

from appliance.clock import FixedClock, rfc3339
from appliance.config import Config
from appliance.faces.app import create_app
from appliance.services.library.origins import tenant_label
from appliance.services.lms.dispatch import learner_id
from tests.conftest import TenantKey
from tests.faces.api.test_cmi5_sessions import EXAMPLES, needs_examples
from tests.faces.api.test_packages import assert_error, package_12, upload_ready
from tests.faces.api.test_sessions import create

API = "/api/v1/dispatches"


def new_dispatch(api: TestClient, who: TenantKey, **extra: Any) -> dict[str, Any]:
    package = upload_ready(api, who, package_12())
    created = api.post(API, json={"package_id": package["id"], **extra}, headers=who.headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


def relay_path(api: TestClient, who: TenantKey, dispatch: dict[str, Any]) -> str:
    """The relay URL path inside the dispatch's SCO, as the ZIP has it."""
    data = api.get(f"{API}/{dispatch['id']}/package", headers=who.headers).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        page = archive.read("index.html").decode()
    token = re.search(r'"token": "([^"]+)"', page)
    assert token is not None
    return f"/dispatch/{token.group(1)}"


def test_create_list_update_delete_and_validation(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    dispatch = new_dispatch(api, acme, learner_cap=3, name="For partners")
    assert dispatch["enabled"] is True and dispatch["learner_cap"] == 3
    assert dispatch["counts"] == {"launches": 0, "learners": 0, "sessions": 0, "completed": 0, "passed": 0}
    assert [d["id"] for d in api.get(API, headers=acme.headers).json()["data"]] == [dispatch["id"]]
    assert api.get(API, headers=globex.headers).json()["data"] == []
    assert_error(api.get(f"{API}/{dispatch['id']}", headers=globex.headers), 404, "NOT_FOUND")
    assert_error(api.post(API, json={"package_id": "pkg_nope"}, headers=acme.headers), 404, "NOT_FOUND")
    bad_cap = {"package_id": dispatch["package_id"], "learner_cap": 0}
    assert_error(api.post(API, json=bad_cap, headers=acme.headers), 422, "VALIDATION_ERROR")
    changed = api.patch(f"{API}/{dispatch['id']}", json={"enabled": False, "learner_cap": None}, headers=acme.headers)
    assert changed.status_code == 200 and changed.json()["enabled"] is False and changed.json()["learner_cap"] is None
    assert_error(
        api.patch(f"{API}/{dispatch['id']}", json={"colour": "red"}, headers=acme.headers), 422, "VALIDATION_ERROR"
    )
    assert_error(api.get(f"{API}/{dispatch['id']}/package?format=1.1", headers=acme.headers), 422, "VALIDATION_ERROR")
    assert api.delete(f"{API}/{dispatch['id']}", headers=acme.headers).status_code == 204
    assert_error(api.get(f"{API}/{dispatch['id']}", headers=acme.headers), 404, "NOT_FOUND")


def test_the_zip_is_a_valid_package_that_points_here(api: TestClient, acme: TenantKey) -> None:
    dispatch = new_dispatch(api, acme)
    for fmt, version in (("1.2", "1.2"), ("2004", "2004 4th Edition")):
        response = api.get(f"{API}/{dispatch['id']}/package", params={"format": fmt}, headers=acme.headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        imported = upload_ready(api, acme, response.content)  # the appliance's own validation accepts it
        assert imported["scorm_version"] == version
        assert "http://testserver.local" in zipfile.ZipFile(io.BytesIO(response.content)).read("index.html").decode()


def test_relay_launches_counts_and_refuses_with_reasons(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    dispatch = new_dispatch(api, acme, learner_cap=1)
    relay = relay_path(api, acme, dispatch)
    page = api.get(f"{relay}/play", params={"learner_id": "remote-1", "learner_name": "Ada"})
    assert page.status_code == 200 and "/player/" in page.text
    assert "set-cookie" not in page.headers
    policy = page.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy and "frame-ancestors 'self'" in policy
    # Resumed on a second launch: the same learner, one session.
    again = api.get(f"{relay}/play", params={"learner_id": "remote-1", "learner_name": "Ada"})
    assert again.status_code == 200
    sessions = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(dispatch["id"], "remote-1")}, headers=acme.headers
    ).json()["data"]
    assert len(sessions) == 1 and sessions[0]["learner"]["name"] == "Ada"
    counts = api.get(f"{API}/{dispatch['id']}", headers=acme.headers).json()["counts"]
    assert (counts["launches"], counts["learners"], counts["sessions"]) == (2, 1, 1)

    # The result endpoint answers for this dispatch's sessions, with the session's launch token only.
    launch_token = re.search(r"/player/([A-Za-z0-9_\-.]+)", page.text).group(1)  # type: ignore[union-attr]
    result = api.get(f"{relay}/result", params={"launch": launch_token})
    assert result.status_code == 200 and result.json()["status"] == "not_started"
    other = create(api, acme, dispatch["package_id"], learner="not-dispatched").json()
    other_token = other["launch_url"].split("/player/")[1]
    assert_error(api.get(f"{relay}/result", params={"launch": other_token}), 404, "NOT_FOUND")

    # Learner cap: a second remote learner is refused; a forged token is not found.
    full = api.get(f"{relay}/play", params={"learner_id": "remote-2"})
    assert full.status_code == 403 and "number of learners" in full.text
    forged = relay.rsplit(".", 1)[0] + ".AAAA"
    assert api.get(f"{forged}/play", params={"learner_id": "remote-1"}).status_code == 404
    # Expired, then disabled.
    expiry = rfc3339(clock.now() + 60)
    api.patch(f"{API}/{dispatch['id']}", json={"expires_at": expiry}, headers=acme.headers)
    clock.advance(61)
    expired = api.get(f"{relay}/play", params={"learner_id": "remote-1"})
    assert expired.status_code == 403 and "no longer available" in expired.text
    api.patch(f"{API}/{dispatch['id']}", json={"expires_at": None, "enabled": False}, headers=acme.headers)
    disabled = api.get(f"{relay}/play", params={"learner_id": "remote-1"})
    assert disabled.status_code == 403 and "withdrawn" in disabled.text
    assert '"refused"' in disabled.text  # and the SCO is told, to show it in the LMS


def test_with_a_content_origin_the_relay_is_served_on_its_tenants_content_host(
    config: Config, clock: FixedClock, acme: TenantKey, globex: TenantKey
) -> None:
    """The relay frames the player and reads its end, so it is where the player is (appliance.faces.api.hosts)."""
    app = create_app(
        dataclasses.replace(config, content_origin="http://*.content.test:8080"), clock=clock, start_scheduler=False
    )
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as api:
        dispatch = new_dispatch(api, acme)
        data = api.get(f"{API}/{dispatch['id']}/package", headers=acme.headers).content
        page = zipfile.ZipFile(io.BytesIO(data)).read("index.html").decode()
        mine = f"http://{tenant_label(acme.tenant_id)}.content.test:8080"
        assert f'"base": "{mine}"' in page  # the ZIP frames the relay on the tenant's content origin
        relay = relay_path(api, acme, dispatch)
        played = api.get(f"{mine}{relay}/play", params={"learner_id": "remote-1"})
        assert played.status_code == 200 and f"{mine}/player/" in played.text
        assert "frame-src 'self'" in played.headers["content-security-policy"]  # the player: its own origin
        launch_token = re.search(r"/player/([A-Za-z0-9_\-.]+)", played.text).group(1)  # type: ignore[union-attr]
        assert api.get(f"{mine}{relay}/result", params={"launch": launch_token}).status_code == 200
        # Another tenant's content host serves no relay of Acme's; nor does the API's host.
        theirs = f"http://{tenant_label(globex.tenant_id)}.content.test:8080"
        assert_error(api.get(f"{theirs}{relay}/play", params={"learner_id": "remote-1"}), 404, "NOT_FOUND")
        stale = api.get(f"{relay}/play", params={"learner_id": "remote-1"})
        assert stale.status_code == 404 and "download the dispatch ZIP again" in stale.text
        assert_error(api.get(f"{relay}/result", params={"launch": launch_token}), 404, "NOT_FOUND")


@needs_examples
def test_a_cmi5_package_cannot_be_dispatched(api: TestClient, acme: TenantKey) -> None:
    """A dispatch ZIP wraps SCORM content: a cmi5 course is refused with the reason (docs/dispatch.md)."""
    package = upload_ready(api, acme, (EXAMPLES / "masteryscore_framed.zip").read_bytes())
    refused = assert_error(
        api.post(API, json={"package_id": package["id"]}, headers=acme.headers), 422, "VALIDATION_ERROR"
    )
    assert refused["details"]["reason"] == "cmi5" and "LTI" in refused["error"]
    assert api.get(API, headers=acme.headers).json()["data"] == []  # nothing half-made
