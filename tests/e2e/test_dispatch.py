"""Dispatch packages end to end: a second appliance plays the foreign LMS.

Appliance A (the provider) dispatches the golf SCORM 1.2 package; its `frame_ancestors` admits B's
origin (another port: another origin). Appliance B (the "other LMS") imports the dispatch ZIP like any
package and launches it for its own learner in headless Chromium: B's player → the dispatch SCO (B's
content) → A's relay page (cross-origin) → A's player → the golf content. The learner plays to the end;
the result is in both: A keeps the full session, B gets status, score, time and location through its own
SCORM API. A disabled dispatch then refuses a new launch with a clear message inside B.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from appliance.dispatch import learner_id
from tests.e2e.browser import BROWSER_TESTS, READY_TIMEOUT, Appliance, Player, wait_until
from tests.e2e.conftest import ServerProcess, free_port
from tests.e2e.test_lti import Frames
from tests.e2e.test_player import BASIC_CALLS, answer_quiz, golf_next, seconds

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Iterator[tuple[Appliance, Appliance]]:
    """(A, the provider; B, the other LMS), each a real server on its own port and data directory."""
    root = tmp_path_factory.mktemp("dispatch")
    remote = ServerProcess(root / "b", port=free_port())
    provider = ServerProcess(root / "a", env={"SCORM_APPLIANCE_FRAME_ANCESTORS": f"'self' {remote.url}"})
    try:
        provider.start()
        remote.start()
        a, b = Appliance(provider, corpus, "Provider"), Appliance(remote, corpus, "Remote")
        yield a, b
        a.close()
        b.close()
    finally:
        provider.close()
        remote.close()


def import_zip(b: Appliance, data: bytes, name: str) -> dict[str, Any]:
    """Upload a ZIP to B as any LMS would import it, and wait until it is ready."""
    response = b.http.post("/api/v1/packages", files={"file": (name, data, "application/zip")})
    assert response.status_code == 202, response.text
    package_id = response.json()["id"]

    def ready() -> dict[str, Any] | None:
        body = b.http.get(f"/api/v1/packages/{package_id}").json()
        return body if body["status"] != "processing" else None

    body = wait_until(ready, READY_TIMEOUT, what="the dispatch ZIP to be processed")
    assert body["status"] == "ready", body
    return dict(body)


def test_a_dispatch_zip_plays_in_another_appliance_and_the_result_is_in_both(
    pair: tuple[Appliance, Appliance], context: BrowserContext
) -> None:
    a, b = pair
    spec = BASIC_CALLS["1.2"]
    package_id = a.package(spec["package"])
    created = a.http.post("/api/v1/dispatches", json={"package_id": package_id, "learner_cap": 5})
    assert created.status_code == 201, created.text
    dispatch = created.json()
    download = a.http.get(f"/api/v1/dispatches/{dispatch['id']}/package", params={"format": "1.2"})
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert "attachment" in download.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert sorted(archive.namelist()) == ["imsmanifest.xml", "index.html"]
        assert a.server.url in archive.read("index.html").decode()
    imported = import_zip(b, download.content, "golf-dispatch.zip")
    assert imported["scorm_version"] == "1.2"
    # The 2004 flavour imports too (B's own validation of the manifest).
    zip2004 = a.http.get(f"/api/v1/dispatches/{dispatch['id']}/package", params={"format": "2004"}).content
    assert import_zip(b, zip2004, "golf-dispatch-2004.zip")["scorm_version"].startswith("2004")

    session_b = b.http.post(
        "/api/v1/sessions",
        json={"package_id": imported["id"], "learner": {"id": "remote-ada", "name": "Lovelace, Ada"}},
    ).json()
    player = Player(context, session_b["launch_url"])
    player.wait_running()  # the dispatch SCO initialised B's API
    frames = Frames(player.page)
    launch = frames.frame("/content/shared/launchpage.html")  # A's golf content, three frames down
    assert launch.url.startswith(a.server.url)
    golf_next(launch, spec["pages"] - 1)
    score, _ = answer_quiz(frames, 6)  # type: ignore[arg-type]
    assert score == 60
    launch.locator("#butExit").click()

    # B: its own session got status, score, location and time through its SCORM API, then LMSFinish.
    player.page.wait_for_function("() => window.scormPlayer.ended === true", timeout=30_000)
    stored_b = b.wait_session(session_b["id"], lambda s: s["status"] == "failed", 30.0, what="B's session to fail")
    assert stored_b["score"]["raw"] == 60.0 and stored_b["score"]["max"] == 100.0
    assert stored_b["cmi"]["cmi.core.lesson_location"] == str(spec["pages"] - 1)
    assert seconds(stored_b["cmi"]["cmi.core.total_time"]) > 0
    assert player.error_dialogs() == []

    # A: the full session of the remote learner, with the content's own CMI.
    found = a.http.get("/api/v1/sessions", params={"learner_id": learner_id(dispatch["id"], "remote-ada")}).json()
    (session_a,) = found["data"]
    stored_a = a.session(session_a["id"])
    assert stored_a["status"] == "failed" and stored_a["score"]["raw"] == 60.0
    assert stored_a["learner"]["name"] == "Lovelace, Ada"
    assert stored_a["cmi"]["cmi.core.lesson_location"] == stored_b["cmi"]["cmi.core.lesson_location"]
    # B's time is the time A measured (the SCO reports it as its session time).
    assert seconds(stored_b["cmi"]["cmi.core.total_time"]) == pytest.approx(stored_a["total_time_seconds"], abs=0.02)
    counts = a.http.get(f"/api/v1/dispatches/{dispatch['id']}").json()["counts"]
    assert counts["learners"] == 1 and counts["sessions"] == 1 and counts["completed"] == 1
    assert counts["launches"] >= 1
    player.close()

    # Disabled: a new launch in B shows the provider's message, and nothing starts in A.
    assert a.http.patch(f"/api/v1/dispatches/{dispatch['id']}", json={"enabled": False}).json()["enabled"] is False
    other = b.http.post(
        "/api/v1/sessions", json={"package_id": imported["id"], "learner": {"id": "remote-bob", "name": "Bob"}}
    ).json()
    refused = Player(context, other["launch_url"])
    sco = Frames(refused.page).frame("/content/index.html")
    message = sco.locator("#message")
    message.wait_for(state="visible")
    assert "withdrawn" in message.inner_text()
    found = a.http.get("/api/v1/sessions", params={"learner_id": learner_id(dispatch["id"], "remote-bob")}).json()
    assert found["data"] == []
