"""SCORM 1.2 suspend_data over 4,096 characters in the real player: a `serve` process, headless Chromium.

A one-page 1.2 SCO of our own is launched from its session's launch URL; the test plays the content's
part inside the SCO's frame (it finds `API` by the usual walk up the parents) and writes 10,000
characters of suspend data. With the default setting the player accepts them, the server stores them,
and the next launch resumes with them; for a tenant made strict with the CLI the player refuses them
with 405 (what the content sees), and a commit that carries them anyway is refused by the server in the
contract's error format, with the stored data unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Frame

from tests.e2e.browser import CHROMIUM, Player, chromium, wait_until
from tests.e2e.conftest import ServerProcess
from tests.faces.api.test_packages import build_zip, manifest_12

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests",
    ),
]

SCO = b"<!doctype html><html><head><title>Long suspend data</title></head><body><p>SCO</p></body></html>"
LONG = "".join(f"slide{n:04d}=visited;" for n in range(700))[:10000]  # 10,000 characters

# The content's side: find the 1.2 API as content does, then make the calls it is given.
CALLS_JS = """(calls) => {
  let win = window, tries = 0;
  while (win.API == null && win.parent != null && win.parent != win && tries++ < 7) win = win.parent;
  const api = win.API;
  return calls.map(([name, ...args]) => [String(api[name](...args)), api.LMSGetLastError()]);
}"""


class Tenant:
    """A tenant on the module's server with an API key (and, for `limit`, its suspend_data setting)."""

    def __init__(self, server: ServerProcess, name: str, limit: int | None = None) -> None:
        self.id = server.cli("tenants", "create", name)["id"]
        if limit is not None:
            shown = server.cli("tenants", "set-suspend-data-limit", name, str(limit))
            assert shown["scorm12_suspend_data_limit"] == limit
        server.cli("quotas", "set", "--tenant", name, "--rate", "100000/min")
        key = server.cli("keys", "create", "--tenant", name)["key"]
        self.http = server.client(headers={"Authorization": f"Bearer {key}"})
        upload = self.http.post(
            "/api/v1/packages",
            files={"file": ("sco.zip", build_zip({"imsmanifest.xml": manifest_12(), "index.html": SCO}))},
        )
        assert upload.status_code == 202, upload.text
        package_id = upload.json()["id"]
        wait_until(
            lambda: self.http.get(f"/api/v1/packages/{package_id}").json()["status"] == "ready",
            30.0,
            what="the package to be processed",
        )
        self.package_id = package_id

    def session(self, learner: str) -> dict[str, Any]:
        created = self.http.post(
            "/api/v1/sessions", json={"package_id": self.package_id, "learner": {"id": learner, "name": "Ada"}}
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    def stored(self, session_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/sessions/{session_id}", params={"include": "cmi"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def launch_url(self, session_id: str) -> str:
        response = self.http.post(f"/api/v1/sessions/{session_id}/launch")
        assert response.status_code == 200, response.text
        return str(response.json()["launch_url"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("suspend-data") / "data")
    try:
        yield process.start()
    finally:
        process.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


@pytest.fixture
def tenant(server: ServerProcess) -> Iterator[Callable[..., Tenant]]:
    """Make tenants on the module's server; their HTTP clients are closed at teardown."""
    made: list[Tenant] = []

    def make(name: str, limit: int | None = None) -> Tenant:
        made.append(Tenant(server, name, limit))
        return made[-1]

    yield make
    for each in made:
        each.http.close()


@pytest.fixture
def context(browser: Any) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def _content(player: Player) -> Frame:
    """The SCO's frame inside the player page."""
    return player.frame("/index.html")


def _calls(frame: Frame, *calls: list[str]) -> list[list[str]]:
    return [list(answer) for answer in frame.evaluate(CALLS_JS, [list(c) for c in calls])]


def test_by_default_10000_characters_are_stored_and_resumed(
    tenant: Callable[..., Tenant], context: BrowserContext
) -> None:
    relaxed = tenant("Relaxed")
    session = relaxed.session("learner-relaxed")
    player = Player(context, session["launch_url"])
    answers = _calls(
        _content(player),
        ["LMSInitialize", ""],
        ["LMSSetValue", "cmi.core.lesson_location", "slide-40"],
        ["LMSSetValue", "cmi.suspend_data", LONG],
        ["LMSGetValue", "cmi.suspend_data"],
        ["LMSSetValue", "cmi.suspend_data", LONG + "x" * 54001],  # 64,001: over the default too
        ["LMSSetValue", "cmi.core.exit", "suspend"],
        ["LMSCommit", ""],
    )
    assert answers == [
        ["true", "0"],
        ["true", "0"],
        ["true", "0"],
        [LONG, "0"],
        ["false", "405"],
        ["true", "0"],
        ["true", "0"],
    ]
    _calls(_content(player), ["LMSFinish", ""])
    player.wait_settled()
    stored = wait_until(
        lambda: s if (s := relaxed.stored(session["id"]))["cmi"].get("cmi.core.exit") == "suspend" else None,
        10.0,
        what="the suspended SCO session to be stored",
    )
    assert stored["cmi"]["cmi.suspend_data"] == LONG
    assert player.commit_statuses and set(player.commit_statuses) == {200}
    player.close()

    again = Player(context, relaxed.launch_url(session["id"]))
    resumed = _calls(
        _content(again),
        ["LMSInitialize", ""],
        ["LMSGetValue", "cmi.core.entry"],
        ["LMSGetValue", "cmi.suspend_data"],
        ["LMSGetValue", "cmi.core.lesson_location"],
    )
    assert resumed == [["true", "0"], ["resume", "0"], [LONG, "0"], ["slide-40", "0"]]
    assert again.dialogs == []


def test_a_strict_tenant_refuses_them_with_405_and_keeps_its_data(
    tenant: Callable[..., Tenant], context: BrowserContext
) -> None:
    strict = tenant("Strict", limit=4096)
    session = strict.session("learner-strict")
    player = Player(context, session["launch_url"])
    frame = _content(player)
    answers = _calls(
        frame,
        ["LMSInitialize", ""],
        ["LMSSetValue", "cmi.suspend_data", "state=1"],
        ["LMSCommit", ""],
        ["LMSSetValue", "cmi.suspend_data", LONG],
        ["LMSGetDiagnostic", ""],
        ["LMSGetValue", "cmi.suspend_data"],
        ["LMSGetErrorString", "405"],
        ["LMSSetValue", "cmi.suspend_data", "x" * 4096],
    )
    assert answers[:4] == [["true", "0"], ["true", "0"], ["true", "0"], ["false", "405"]]
    assert "longer than 4096 characters" in answers[4][0]
    assert answers[5:] == [["state=1", "0"], ["Incorrect data type", "0"], ["true", "0"]]
    player.wait_settled()
    stored = wait_until(
        lambda: s if (s := strict.stored(session["id"]))["cmi"].get("cmi.suspend_data") == "state=1" else None,
        10.0,
        what="the first commit to be stored",
    )

    # Content that bypasses the player's check meets the server's: the same limit, the contract's error.
    token = session["launch_url"].split("/player/", 1)[1]
    body = {"client_id": "direct", "seq": 1, "activity": "item0", "changes": {"cmi.suspend_data": LONG}}
    refused = strict.http.post(f"/player/{token}/commit", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert set(error) == {"error", "code", "details"} and error["code"] == "CMI_VALIDATION_ERROR"
    assert [(e["element"], e["scorm_error_code"]) for e in error["details"]["errors"]] == [("cmi.suspend_data", 405)]
    after = strict.stored(session["id"])
    assert after["cmi"]["cmi.suspend_data"] == stored["cmi"]["cmi.suspend_data"] == "state=1"
    assert after["version"] == stored["version"]
