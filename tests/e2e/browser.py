"""Headless Chromium for end-to-end tests, and small helpers for driving the appliance's player.

Debian's chromium (never a downloaded browser) is launched through Playwright with the flags below.
`Player` wraps one page showing `/player/{token}`: it records every dialog the content opens (and
accepts it, as a learner clicking OK would), and reads the player's state from `window.scormPlayer`.

Waiting in the sync API: Playwright only dispatches events (dialogs, requests) while one of its own
calls runs, so tests wait with `page.wait_for_timeout` / `wait_for_function`, never `time.sleep`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Frame, Page, Request, sync_playwright

from tests.e2e.conftest import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The marks of a test module that plays real content in Chromium through a real server.
BROWSER_TESTS = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.corpus,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests",
    ),
]
WAIT_MS = 15_000  # the longest any single wait in the browser may take
READY_TIMEOUT = 30.0  # seconds for a corpus package to be processed

T = TypeVar("T")


def require_chromium() -> None:
    """Skip (with the reason) when Debian's chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


def wait_until(check: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.1, what: str = "") -> T:
    """Poll `check` (outside the browser) until it returns something truthy, for at most `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check!r} (last: {last!r})")


class Player:
    """One browser page on a launch URL, with the dialogs and commit requests it produced."""

    def __init__(self, context: BrowserContext, url: str, *, confirm: bool = True) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.confirm = confirm
        self.dialogs: list[tuple[str, str]] = []
        self.commits: list[dict[str, Any]] = []
        self.commit_statuses: list[int] = []
        self.page.on("dialog", self._dialog)
        self.page.on("request", self._request)
        self.page.on("response", self._response)
        self.page.goto(url)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append((dialog.type, dialog.message))
        if dialog.type == "confirm" and not self.confirm:
            dialog.dismiss()
        else:
            dialog.accept()

    def _request(self, request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/commit") and request.post_data:
            self.commits.append(json.loads(request.post_data))

    def _response(self, response: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/commit"):
            self.commit_statuses.append(response.status)

    # -- the player's state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What `window.scormPlayer` says: version, current activity and its API state, ended."""
        return self.page.evaluate(
            """() => {
              const s = window.scormPlayer;
              if (!s) return null;
              const c = s.current;
              return {
                version: s.version, ended: s.ended, seq: s.seq,
                activity: c ? c.activity : null,
                api_state: c ? c.runtime.state : null,
                pending: c ? Object.keys(c.transport.pending).length + (c.transport.batch ? 1 : 0) : 0,
                busy: c ? Boolean(c.transport.busy) : false,
              };
            }"""
        )

    def values(self) -> dict[str, str]:
        """The browser data model of the running SCO (what GetValue answers from)."""
        return self.page.evaluate("() => Object.fromEntries(window.scormPlayer.current.runtime.model.values)")

    def wait_running(self, activity: str | None = None) -> dict[str, Any]:
        """Wait until the content has called Initialize (on `activity`, if given)."""
        self.page.wait_for_function(
            """(activity) => {
              const c = window.scormPlayer && window.scormPlayer.current;
              return c && !c.done && c.runtime.state === "running" && (activity === null || c.activity === activity);
            }""",
            arg=activity,
        )
        return self.state()

    def wait_settled(self) -> dict[str, Any]:
        """Wait until every change handed to the transport has been acknowledged by the server."""
        self.page.wait_for_function(
            """() => {
              const c = window.scormPlayer && window.scormPlayer.current;
              return !c || (!c.transport.busy && !c.transport.batch && !Object.keys(c.transport.pending).length);
            }"""
        )
        return self.state()

    def message(self) -> str:
        """The player's status line."""
        return self.page.locator("#message").inner_text()

    def frame(self, url_part: str) -> Frame:
        """The (first) frame whose URL contains `url_part`, waiting for it to appear and load."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while time.monotonic() < deadline:
            for frame in self.page.frames:
                if url_part in frame.url:
                    frame.wait_for_load_state("load")
                    return frame
            self.page.wait_for_timeout(50)
        raise AssertionError(f"no frame with {url_part!r} in its URL: {[f.url for f in self.page.frames]}")

    def sent(self, element: str) -> str | None:
        """The last value of `element` the player sent in a commit (None if never)."""
        values = [c["changes"][element] for c in self.commits if element in c["changes"]]
        return values[-1] if values else None

    def error_dialogs(self) -> list[str]:
        """Alerts the content raised (the golf and eXe content alert on every failed API call)."""
        return [message for kind, message in self.dialogs if kind == "alert"]

    def close(self, *, run_before_unload: bool = True) -> None:
        """Close the tab. With `run_before_unload`, as a learner closing it does (beforeunload runs)."""
        if not self.page.is_closed():
            self.page.close(run_before_unload=run_before_unload)


QUESTIONS_JS = """() => [...document.querySelectorAll("div.question")].map((q) => {
  const numeric = q.querySelector(".correctAnswer input[type=text]");
  return {
    id: q.id,
    numeric: numeric ? q.querySelector(".correctAnswer").textContent.match(/\\((\\d+)\\)/)[1] : null,
    wrong: q.querySelectorAll(".answer input").length > 0,
  };
})"""


class Appliance:
    """A running server with one tenant, its API key, and the corpus packages uploaded so far."""

    def __init__(self, server: ServerProcess, corpus: Path, tenant: str = "Acme", *, rate: bool = True) -> None:
        self.server = server
        self.corpus = corpus
        server.cli("tenants", "create", tenant)
        if rate:  # no test is slowed by the tenant's rate limit
            server.cli("quotas", "set", "--tenant", tenant, "--rate", "100000/min")
        self.key = server.cli("keys", "create", "--tenant", tenant)["key"]
        self.http = server.client(headers={"Authorization": f"Bearer {self.key}"})
        self.packages: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def package(self, name: str) -> str:
        """The id of corpus package `name` (uploaded and processed on first use)."""
        if name not in self.packages:
            path = self.corpus / "packages" / f"{name}.zip"
            with path.open("rb") as fh:
                response = self.http.post("/api/v1/packages", files={"file": (path.name, fh, "application/zip")})
            assert response.status_code == 202, response.text
            package_id = response.json()["id"]

            def ready() -> dict[str, Any] | None:
                body = self.http.get(f"/api/v1/packages/{package_id}").json()
                return body if body["status"] != "processing" else None

            body = wait_until(ready, READY_TIMEOUT, what=f"{name} to be processed")
            assert body["status"] == "ready", body
            self.packages[name] = package_id
        return self.packages[name]

    def new_session(self, name: str, learner: str | None = None) -> dict[str, Any]:
        """A new session of a fresh learner on corpus package `name`."""
        learner_id = learner or f"learner-{uuid.uuid4().hex[:8]}"
        response = self.http.post(
            "/api/v1/sessions",
            json={"package_id": self.package(name), "learner": {"id": learner_id, "name": "Lovelace, Ada"}},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def session(self, session_id: str) -> dict[str, Any]:
        """The session with its CMI (`?include=cmi`)."""
        response = self.http.get(f"/api/v1/sessions/{session_id}", params={"include": "cmi"})
        assert response.status_code == 200, response.text
        return response.json()

    def wait_session(self, session_id: str, check: Any, timeout: float = 10.0, what: str = "") -> dict[str, Any]:
        """Poll the session until `check(session)` is true."""
        return wait_until(lambda: s if check(s := self.session(session_id)) else None, timeout, what=what)

    def launch_url(self, session_id: str) -> str:
        """A fresh launch URL (POST /sessions/{id}/launch)."""
        response = self.http.post(f"/api/v1/sessions/{session_id}/launch")
        assert response.status_code == 200, response.text
        return response.json()["launch_url"]
