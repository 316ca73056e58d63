"""Dispatch packages end to end: a second appliance plays the foreign LMS.

Appliance A (the provider) dispatches the golf SCORM 1.2 package; its `frame_ancestors` admits B's
origin (another port: another origin). Appliance B (the "other LMS") imports the dispatch ZIP like any
package and launches it for its own learner in headless Chromium: B's player → the dispatch SCO (B's
content) → A's relay page (cross-origin) → A's player → the golf content. The learner plays to the end;
the result is in both: A keeps the full session, B gets status, score, time and location through its own
SCORM API. A disabled dispatch then refuses a new launch with a clear message inside B.

The same again with A's player and courses on a separate content origin (http://127.0.0.2:PORT, A
serving 0.0.0.0 as tests/e2e/test_content_origin_split.py does): the ZIP frames A's relay on that
origin, where the player is, so the relay sees the player's end and B's SCO finishes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

from appliance.services.lms.dispatch import learner_id
from tests.e2e.browser import BROWSER_TESTS, READY_TIMEOUT, Appliance, Player, wait_until
from tests.e2e.conftest import ServerProcess, free_port
from tests.e2e.databases import Databases
from tests.e2e.test_lti import Frames
from tests.e2e.test_player import BASIC_CALLS, answer_quiz, golf_next, seconds

pytestmark = BROWSER_TESTS


CONTENT_IP = "127.0.0.2"  # A's content origin in the split test (another name of the loopback)


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[ServerProcess]:
    """B, the other LMS: a real server on its own port (its own origin), data directory and database."""
    server = ServerProcess(tmp_path_factory.mktemp("dispatch-b") / "data", port=free_port(), databases=databases)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def remote(remote_server: ServerProcess, corpus: Path) -> Iterator[Appliance]:
    b = Appliance(remote_server, corpus, "Remote")
    yield b
    b.close()


def provider(directory: Path, corpus: Path, remote: ServerProcess, *, split: bool) -> tuple[ServerProcess, Appliance]:
    """A, the provider, framed by B; with `split`, its player and courses on http://127.0.0.2:PORT."""
    env = {"SCORM_APPLIANCE_FRAME_ANCESTORS": f"'self' {remote.url}"}
    args: tuple[str, ...] = ()
    port = free_port()
    if split:  # as tests/e2e/test_content_origin_split.py: both loopback names reach the one process
        env["SCORM_APPLIANCE_CONTENT_ORIGIN"] = f"http://{CONTENT_IP}:{port}"
        args = ("--host", "0.0.0.0")
    server = ServerProcess(directory, port=port, args=args, env=env, databases=remote.databases)  # B's backend
    server.start()
    return server, Appliance(server, corpus, "Provider")


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, corpus: Path, remote_server: ServerProcess, remote: Appliance
) -> Iterator[tuple[Appliance, Appliance]]:
    """(A, the provider on one origin; B, the other LMS)."""
    server, a = provider(tmp_path_factory.mktemp("dispatch-a") / "data", corpus, remote_server, split=False)
    try:
        yield a, remote
    finally:
        a.close()
        server.close()


@pytest.fixture(scope="module")
def split_pair(
    tmp_path_factory: pytest.TempPathFactory, corpus: Path, remote_server: ServerProcess, remote: Appliance
) -> Iterator[tuple[Appliance, Appliance]]:
    """(A with a separate content origin; B, the other LMS)."""
    server, a = provider(tmp_path_factory.mktemp("dispatch-split") / "data", corpus, remote_server, split=True)
    try:
        yield a, remote
    finally:
        a.close()
        server.close()


def zip_page(a: Appliance, dispatch_id: str) -> str:
    """The SCO page of A's SCORM 1.2 ZIP of a dispatch."""
    data = a.http.get(f"/api/v1/dispatches/{dispatch_id}/package", params={"format": "1.2"}).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("index.html").decode()


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


def play_a_dispatch(a: Appliance, b: Appliance, context: BrowserContext, content_origin: str) -> dict[str, Any]:
    """A's golf 1.2 dispatched, imported into B and played to the end in B's player, with A's relay
    and player on `content_origin`; checks the result in both; the dispatch."""
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
        assert f'"base": "{content_origin}"' in archive.read("index.html").decode()  # the relay is there
    imported = import_zip(b, download.content, "golf-dispatch.zip")
    dispatch["imported"] = imported["id"]
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
    assert launch.url.startswith(content_origin)
    assert frames.frame("/dispatch/").url.startswith(content_origin)  # the relay, where the player is
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
    return dispatch


def test_a_dispatch_zip_plays_in_another_appliance_and_the_result_is_in_both(
    pair: tuple[Appliance, Appliance], context: BrowserContext
) -> None:
    a, b = pair
    dispatch = play_a_dispatch(a, b, context, a.server.url)

    # Disabled: a new launch in B shows the provider's message, and nothing starts in A.
    assert a.http.patch(f"/api/v1/dispatches/{dispatch['id']}", json={"enabled": False}).json()["enabled"] is False
    other = b.http.post(
        "/api/v1/sessions",
        json={"package_id": dispatch["imported"], "learner": {"id": "remote-bob", "name": "Bob"}},
    ).json()
    refused = Player(context, other["launch_url"])
    sco = Frames(refused.page).frame("/content/index.html")
    message = sco.locator("#message")
    message.wait_for(state="visible")
    assert "withdrawn" in message.inner_text()
    found = a.http.get("/api/v1/sessions", params={"learner_id": learner_id(dispatch["id"], "remote-bob")}).json()
    assert found["data"] == []


def test_with_a_content_origin_the_relay_shares_the_players_origin_and_sees_its_end(
    split_pair: tuple[Appliance, Appliance], context: BrowserContext
) -> None:
    a, b = split_pair
    content = f"http://{CONTENT_IP}:{a.server.port}"
    play_a_dispatch(a, b, context, content)  # B's LMSFinish came from the relay's "ended"
    # The API's host serves no relay in this mode: a ZIP made before the setting says it is out of date.
    dispatch = a.http.post("/api/v1/dispatches", json={"package_id": a.package(BASIC_CALLS["1.2"]["package"])})
    token = re.search(r'"token": "([^"]+)"', zip_page(a, dispatch.json()["id"]))
    assert token is not None
    stale = a.http.get(f"/dispatch/{token.group(1)}/play", params={"learner_id": "x"})
    assert stale.status_code == 404 and "download the dispatch ZIP again" in stale.text
