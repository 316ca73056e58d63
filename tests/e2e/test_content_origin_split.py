"""A separate content origin (`content_origin`) in headless Chromium against real `serve` processes.

Two host names on the loopback network: the API at http://127.0.0.1:PORT, the content at
http://127.0.0.2:PORT (one content origin for every tenant), or with a wildcard at
http://<tenant label>.content.test:PORT, which Chromium resolves to 127.0.0.2 by a host-resolver rule
(no DNS). `serve` listens on 0.0.0.0 so that both addresses reach the one process; every request the
tests make goes to 127.0.0.1 or 127.0.0.2.

What is checked: a course plays, records its progress and resumes, with every request of the player
on the content origin; a launch link on the API's origin lands on the content origin; and the
review's reproductions fail: a course reaching the API, the schema or the docs (not found on its host,
no readable answer from the API's origin, the docs refuse its frame), reading another tenant's player
token or browser storage, getting another tenant's token served on its own origin, and cookies it sets
for the parent domain breaking another tenant's player.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, sync_playwright

from appliance.services.library.origins import tenant_label
from tests.e2e.browser import BROWSER_TESTS, CHROMIUM, CHROMIUM_ARGS, Appliance, Player, require_chromium
from tests.e2e.conftest import ServerProcess, free_port
from tests.e2e.databases import Databases
from tests.e2e.test_player import golf_next

pytestmark = BROWSER_TESTS

CONTENT_IP = "127.0.0.2"
CONTENT_DOMAIN = "content.test"
GOLF = "moodle-RuntimeBasicCalls_SCORM20043rdEdition"  # Initialize on load, a bookmark per page, suspend on close
LAUNCH_PAGE = "/content/shared/launchpage.html"

RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__violations = window.__violations || []).push(`${e.effectiveDirective} ${e.blockedURI}`);
});
"""


@dataclass
class Split:
    """A server with a content origin, and two tenants (each an `Appliance` with its API key)."""

    server: ServerProcess
    acme: Appliance
    globex: Appliance

    @property
    def api(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium resolving every name under content.test to 127.0.0.2 (the wildcard's content hosts)."""
    require_chromium()
    rules = f"--host-resolver-rules=MAP *.{CONTENT_DOMAIN} {CONTENT_IP}"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, rules], timeout=30_000
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    ctx.add_init_script(RECORD_VIOLATIONS)
    yield ctx
    ctx.close()


def start_split(directory: Path, corpus: Path, origin: str, databases: Databases) -> tuple[ServerProcess, Split]:
    """`serve` on 0.0.0.0:PORT with `content_origin = origin` (`{port}` filled in), two tenants."""
    port = free_port()
    server = ServerProcess(
        directory,
        port=port,
        args=("--host", "0.0.0.0"),
        env={"SCORM_APPLIANCE_CONTENT_ORIGIN": origin.format(port=port)},
        databases=databases,
    )
    server.start()
    return server, Split(server, Appliance(server, corpus, "Acme"), Appliance(server, corpus, "Globex"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, corpus: Path, databases: Databases) -> Iterator[Split]:
    """One content origin for every tenant: http://127.0.0.2:PORT."""
    directory = tmp_path_factory.mktemp("shared") / "data"
    server, split = start_split(directory, corpus, f"http://{CONTENT_IP}:{{port}}", databases)
    try:
        yield split
    finally:
        split.acme.close()
        split.globex.close()
        server.close()


@pytest.fixture(scope="module")
def per_tenant(tmp_path_factory: pytest.TempPathFactory, corpus: Path, databases: Databases) -> Iterator[Split]:
    """A content origin per tenant: http://<label>.content.test:PORT."""
    directory = tmp_path_factory.mktemp("per-tenant") / "data"
    server, split = start_split(directory, corpus, f"http://*.{CONTENT_DOMAIN}:{{port}}", databases)
    try:
        yield split
    finally:
        split.acme.close()
        split.globex.close()
        server.close()


def running(who: Appliance, context: BrowserContext) -> tuple[dict[str, Any], Player, Frame]:
    """A fresh golf session of `who`, initialised in the player: (session, player, content frame)."""
    session = who.new_session(GOLF)
    player = Player(context, session["launch_url"])
    player.wait_running()
    return session, player, player.frame(LAUNCH_PAGE)


def parent_domain_cookies(context: BrowserContext, player: Player) -> int:
    """How many cookies the browser keeps for `.content.test`, once the page's writes have reached its
    cookie store (they get there a little after `document.cookie` returns)."""
    count = 0
    for _ in range(100):
        count = len([c for c in context.cookies() if c["domain"] == f".{CONTENT_DOMAIN}"])
        if count == 30:
            break
        player.page.wait_for_timeout(50)
    return count


def origin_of(url: str) -> str:
    return url[: url.index("/", len("http://"))]


# -- playing ------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("databases")  # the server fixture is asked for by name below: the backend is the test's
@pytest.mark.parametrize("mode", ["shared", "per_tenant"])
def test_a_course_plays_records_and_resumes_on_the_content_origin(
    request: pytest.FixtureRequest, context: BrowserContext, mode: str
) -> None:
    split: Split = request.getfixturevalue(mode)
    label = tenant_label(split.acme.http.get("/api/v1/tenant").json()["id"])
    host = CONTENT_IP if mode == "shared" else f"{label}.{CONTENT_DOMAIN}"
    expected = f"http://{host}:{split.server.port}"
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url))
    session = split.acme.new_session(GOLF)
    assert origin_of(session["launch_url"]) == expected
    player = Player(context, session["launch_url"])
    player.wait_running("item_1")
    launch = player.frame(LAUNCH_PAGE)
    assert golf_next(launch, 5) == 5
    player.frame("/content/Etiquette/Course.html")
    assert player.page.evaluate("() => window.__violations || []") == []  # the page's CSP admits the player
    player.close(run_before_unload=True)  # the content suspends and terminates
    stored = split.acme.wait_session(
        session["id"], lambda s: s["cmi"].get("cmi.exit") == "suspend", what="the suspend to be stored"
    )
    assert stored["cmi"]["cmi.location"] == "5"
    assert stored["status"] == "incomplete"

    again = Player(context, split.acme.launch_url(session["id"]))
    again.wait_running("item_1")
    again.frame(LAUNCH_PAGE).wait_for_function("currentPage === 5")
    assert again.dialogs == [("confirm", "Would you like to resume from where you previously left off?")]
    values = again.values()
    assert (values["cmi.entry"], values["cmi.location"]) == ("resume", "5")
    # Every request of both pages — page, /static, launch, commits, content — went to the content origin.
    assert urls and {origin_of(u) for u in urls if u.startswith("http")} == {expected}
    again.close()


def test_a_launch_link_on_the_api_origin_lands_on_the_content_origin(
    per_tenant: Split, context: BrowserContext
) -> None:
    session = per_tenant.globex.new_session(GOLF)
    content = origin_of(session["launch_url"])
    old_style = per_tenant.api + session["launch_url"][len(content) :]  # as issued before the setting
    player = Player(context, old_style)
    player.wait_running()
    assert origin_of(player.page.url) == content
    assert player.page.url == session["launch_url"]


# -- a hostile course and the API -------------------------------------------------------------------------------


PROBE_API = """async ([api, key, token]) => {
  const attempt = async (url, init) => {
    try {
      const response = await fetch(url, init);
      return response.type === "opaque" ? "opaque" : `read ${response.status}`;
    } catch (e) {
      return e.name;
    }
  };
  const auth = {headers: {Authorization: `Bearer ${key}`}};
  const commit = {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({client_id: "x", seq: 1, activity: "item_1", changes: {}}),
  };
  return {
    own_health: await attempt("/api/v1/health"),
    own_sessions: await attempt("/api/v1/sessions", auth),
    own_docs: await attempt("/api/v1/docs"),
    own_schema: await attempt("/api/v1/openapi.json"),
    own_xapi: await attempt("/xapi/about"),
    api_health: await attempt(`${api}/api/v1/health`),
    api_sessions: await attempt(`${api}/api/v1/sessions`, auth),
    api_schema_no_cors: await attempt(`${api}/api/v1/openapi.json`, {mode: "no-cors"}),
    api_commit: await attempt(`${api}/player/${token}/commit`, commit),
  };
}"""


def test_a_course_cannot_reach_the_api_its_schema_or_its_docs(shared: Split, context: BrowserContext) -> None:
    session, player, content = running(shared.acme, context)
    token = session["launch_url"].split("/player/", 1)[1]
    # Even a course that somehow holds the tenant's API key gets nothing.
    answers = content.evaluate(PROBE_API, [shared.api, shared.acme.key, token])
    assert answers == {
        "own_health": "read 404",  # its own origin has no API
        "own_sessions": "read 404",
        "own_docs": "read 404",
        "own_schema": "read 404",
        "own_xapi": "read 404",
        "api_health": "TypeError",  # the API's origin sends no CORS headers: no readable answer
        "api_sessions": "TypeError",  # (the preflight of the Authorization header fails)
        "api_schema_no_cors": "opaque",  # a no-cors read is opaque: nothing to read
        "api_commit": "TypeError",
    }
    # The control: the API itself answers, from outside the browser.
    assert shared.acme.http.get("/api/v1/sessions").status_code == 200

    # Framing the docs: refused on the API's origin; on its own origin there are none to frame.
    content.evaluate(
        """(sources) => Promise.all(sources.map((src) => new Promise((resolve) => {
          const frame = document.createElement("iframe");
          frame.src = src;
          frame.onload = () => resolve(true);
          document.body.append(frame);
        })))""",
        [f"{shared.api}/api/v1/docs", "/api/v1/docs", f"{shared.api}/api/v1/health"],
    )
    framed = {f.url: f for f in player.page.frames}
    assert f"{shared.api}/api/v1/docs" not in framed  # frame-ancestors 'none': the frame shows an error page
    assert f"{shared.api}/api/v1/health" in framed  # the control: a response without the headers is framed
    own_docs = framed[f"http://{CONTENT_IP}:{shared.server.port}/api/v1/docs"]
    assert '"code":"NOT_FOUND"' in own_docs.evaluate("() => document.body.innerText")
    assert player.page.evaluate("() => window.__violations || []") == []


# -- another tenant's courses -----------------------------------------------------------------------------------


PROBE_TENANT = """async ([acmeUrl, acmeToken]) => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const out = {storage: Object.keys(localStorage).sort()};
  // Acme's token on this (Globex's) origin, where this course could read the answers:
  out.page_here = (await fetch(`/player/${acmeToken}`)).status;
  out.launch_here = (await fetch(`/player/${acmeToken}/launch`, {method: "POST"})).status;
  out.content_here = (await fetch(`/player/${acmeToken}/content/shared/launchpage.html`)).status;
  // Acme's player on its own origin, read from here:
  try { await fetch(acmeUrl); out.fetch_there = "read"; } catch (e) { out.fetch_there = e.name; }
  const w = window.open(acmeUrl, "_blank");
  out.window_there = "not loaded";
  for (let i = 0; i < 200; i++) {
    try {
      const boot = w.document.getElementById("bootstrap");
      if (boot) { out.window_there = JSON.parse(boot.textContent).token; break; }
    } catch (e) {
      out.window_there = e.name;
      break;
    }
    await sleep(25);
  }
  w.close();
  return out;
}"""


def test_a_course_cannot_read_another_tenants_player_storage_or_token(
    per_tenant: Split, context: BrowserContext
) -> None:
    acme_session, acme_player, acme_content = running(per_tenant.acme, context)
    acme_content.evaluate("() => localStorage.setItem('acme-secret', 'bookmark of an Acme course')")
    globex_session, globex_player, globex_content = running(per_tenant.globex, context)
    assert origin_of(acme_session["launch_url"]) != origin_of(globex_session["launch_url"])

    # Its own player's token is on its own origin (the trade-off within one tenant) ...
    own = globex_content.evaluate("() => JSON.parse(window.parent.document.getElementById('bootstrap').textContent)")
    assert own["token"] == globex_session["launch_url"].split("/player/", 1)[1]
    # ... Acme's is not: even holding Acme's launch URL, a Globex course reads nothing of it.
    acme_token = per_tenant.acme.launch_url(acme_session["id"]).split("/player/", 1)[1]
    acme_url = f"{origin_of(acme_session['launch_url'])}/player/{acme_token}"
    answers = globex_content.evaluate(PROBE_TENANT, [acme_url, acme_token])
    assert "acme-secret" not in answers.pop("storage")
    assert answers == {
        "page_here": 404,  # Acme's token is served on Acme's label only
        "launch_here": 404,
        "content_here": 404,
        "fetch_there": "TypeError",  # another origin, no CORS
        "window_there": "SecurityError",  # another origin's document
    }
    # Acme's course still has its storage (the control), and Globex's course does not see it.
    assert acme_content.evaluate("() => localStorage.getItem('acme-secret')") == "bookmark of an Acme course"
    assert globex_content.evaluate("() => localStorage.getItem('acme-secret')") is None
    globex_player.close()
    acme_player.close()


def test_cookies_a_course_sets_for_every_tenant_break_none(per_tenant: Split, context: BrowserContext) -> None:
    acme_session, acme_player, acme_content = running(per_tenant.acme, context)
    _, globex_player, globex_content = running(per_tenant.globex, context)
    # Globex's course sets 30 cookies of 4 KB for the parent domain: every tenant's content host gets them.
    globex_content.evaluate(
        f"""() => {{
          for (let i = 0; i < 30; i++) document.cookie = `course${{i}}=${{"x".repeat(4000)}}; domain={CONTENT_DOMAIN}; path=/`;
        }}"""
    )
    assert parent_domain_cookies(context, globex_player) == 30
    globex_player.close()

    # Acme's running course commits (the commit endpoint), and a new Acme page loads and launches.
    assert acme_content.evaluate("() => window.parent.API_1484_11.SetValue('cmi.location', 'cookies')") == "true"
    assert acme_content.evaluate("() => window.parent.API_1484_11.Commit('')") == "true"
    acme_player.wait_settled()
    assert set(acme_player.commit_statuses) == {200}
    assert per_tenant.acme.session(acme_session["id"])["cmi"]["cmi.location"] == "cookies"
    acme_player.close()
    pages: list[Any] = []
    context.on("request", lambda r: pages.append(r) if r.resource_type == "document" and "/player/" in r.url else None)
    again = Player(context, per_tenant.acme.launch_url(acme_session["id"]))
    again.wait_running()
    assert len(pages[0].header_value("cookie") or "") > 120_000  # the browser did send them to Acme's host
    assert pages[0].response().status == 200
    again.close()
