"""The admin console (/admin) in headless Chromium against a real `serve`: every page and action.

One server and one browser for the module; the tests run in order and build on each other (the
upload's package is the one the sessions, the analytics and the preview use). Data the pages show is
made through the real API with a key the CLI made, and checked back through the API, never the
database. The screenshots in docs/console/ are written here (docs/console.md shows them).
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, expect

from appliance.instance import Instance
from appliance.services.tenancy import admins, apikeys, tenants
from tests.e2e.browser import BROWSER_TESTS, WAIT_MS, chromium, wait_until
from tests.e2e.conftest import CLI_TIMEOUT, ServerProcess, appliance_command
from tests.e2e.databases import Databases
from tests.faces.api.test_cmi5_sessions import not_applicable_course
from tests.faces.api.test_sessions import Player
from tests.lti_platform import LtiPlatform
from tests.services.delivery.test_webhooks import Receiver

pytestmark = BROWSER_TESTS

PASSWORD = "console e2e password"
PACKAGE = "moodle-singlesco_scorm12"  # a one-SCO SCORM 1.2 package of ~380 kB
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    """The running server, its tenants, an API client of the first one, and a signed-in superuser page."""

    server: ServerProcess
    browser: Browser
    context: BrowserContext
    page: Page
    acme: str
    globex: str
    api: httpx.Client
    receiver: Receiver
    package_id: str = ""

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}"

    def go(self, path: str) -> Page:
        answer = self.page.goto(self.url(path))
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        return self.page

    def shot(self, name: str, page: Page | None = None) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (page or self.page).screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def make_admin(server: ServerProcess, username: str, tenant: str | None = None) -> None:
    """`scorm-appliance admins create` with the password on standard input, as a script would."""
    args = ["admins", "create", username, "--password-stdin", "--data-dir", str(server.data_dir)]
    if tenant:
        args += ["--tenant", tenant]
    done = subprocess.run(
        [*appliance_command(), *args],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=server.env,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/admin/(tenants|t/)"))


@contextmanager
def offline(server: ServerProcess) -> Iterator[Instance]:
    """An Instance on the server's data directory and database (before it starts, or for reads while it runs)."""
    inst = Instance(server.config())
    try:
        yield inst
    finally:
        inst.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, corpus: Path, databases: Databases) -> Iterator[Console]:
    receiver = Receiver().start()
    data = tmp_path_factory.mktemp("console") / "data"
    server = ServerProcess(
        data,
        env={"SCORM_APPLIANCE_OUTBOUND_ALLOW": "127.0.0.1/32", "SCORM_APPLIANCE_WEBHOOK_DISPATCH_SECONDS": "0.2"},
        databases=databases,
    )
    # The tenants, the key and the superuser are made through the service functions before the server
    # starts (a CLI process costs seconds on a loaded machine); the tenant admin through the CLI itself.
    with offline(server) as inst:
        acme = tenants.create_tenant(inst, "Acme").id
        globex = tenants.create_tenant(inst, "Globex").id
        tenants.set_quotas(inst, acme, requests_per_minute=100_000)
        key = apikeys.create_key(inst, acme, "e2e")[1]
        admins.create_admin(inst, "root", PASSWORD)
    try:
        server.start()
        make_admin(server, "acme-admin", "Acme")
        with chromium() as browser, server.client(headers={"Authorization": f"Bearer {key}"}) as api:
            context = browser.new_context(viewport=DESKTOP)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            sign_in(page, server.url, "root")
            yield Console(server, browser, context, page, acme, globex, api, receiver)
            context.close()
    finally:
        receiver.stop()
        server.close()


def test_login_page_and_cookie(console: Console) -> None:
    cookie = next(c for c in console.context.cookies() if c["name"] == "sa_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    with console.browser.new_context(viewport=DESKTOP) as fresh:
        page = fresh.new_page()
        answer = page.goto(console.url("/admin/tenants"))
        assert answer is not None and page.url.endswith("/admin/login")
        assert "frame-ancestors 'none'" in (answer.headers.get("content-security-policy") or "")
        page.get_by_label("Username").fill("root")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text().startswith("Wrong username or password")
        console.shot("login", page)


def test_keyboard_focus_is_visible_and_skips_to_content(console: Console) -> None:
    page = console.go("/admin/tenants")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return {text: e.textContent, outline: s.outlineStyle, width: s.outlineWidth, left: e.getBoundingClientRect().left}; }"
    )
    assert focused["text"] == "Skip to content" and focused["outline"] != "none" and focused["left"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
    unlabeled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), select')].filter(e => !e.labels.length).length"
    )
    assert unlabeled == 0


def test_tenants_create_suspend_plan_quotas(console: Console) -> None:
    page = console.go("/admin/tenants")
    assert page.get_by_role("link", name="Acme").is_visible() and page.get_by_role("link", name="Globex").is_visible()
    page.get_by_label("Name").fill("Initech")
    page.get_by_label("Plan").select_option("professional")
    page.get_by_role("button", name="Create tenant").click()
    page.wait_for_url(re.compile(r"/admin/t/ten_"))
    assert "Initech" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Suspend tenant").click()
    assert page.locator("h1 .badge").inner_text() == "suspended"
    page.get_by_label("Plan", exact=True).select_option("enterprise")
    page.get_by_role("button", name="Change plan").click()
    assert "plan enterprise" in page.locator("p.muted").inner_text()
    page.get_by_label("Requests per minute").fill("321")
    page.get_by_role("textbox", name=re.compile(r"^Storage")).fill("5GB")
    page.get_by_role("button", name="Save quotas").click()
    assert "321 requests per minute" in page.content()
    tenant_id = page.url.rsplit("/", 1)[1]
    shown = console.server.cli("quotas", "show", "--tenant", tenant_id)
    assert (
        shown["requests_per_minute"] == 321 and shown["storage_bytes"] == 5 * 1000**3 and shown["plan"] == "enterprise"
    )
    page.get_by_role("button", name="Resume tenant").click()
    assert page.locator("h1 .badge").inner_text() == "active"
    console.go("/admin/tenants")
    console.shot("tenants")


NO_THROTTLE = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}


def _throttle(page: Page, bytes_per_second: int) -> CDPSession:
    """Chromium's network throttling (DevTools' own) on `page`'s uploads; returns the session to undo it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {**NO_THROTTLE, "uploadThroughput": bytes_per_second})
    return cdp


def _progress_samples(page: Page) -> None:
    """Record the progress bar's value every 20 ms (a MutationObserver would miss property changes)."""
    page.evaluate(
        """() => { window.progressSeen = []; const bar = document.getElementById('upload-progress');
           const tick = () => { window.progressSeen.push(bar.value);
             sessionStorage.setItem('progressSeen', JSON.stringify(window.progressSeen));
             if (window.progressSeen.length < 2000) setTimeout(tick, 20); };
           tick(); }"""
    )


def test_upload_cancel_then_upload_with_progress(console: Console, corpus: Path) -> None:
    page = console.go(f"/admin/t/{console.acme}/packages")
    zip_path = corpus / "packages" / f"{PACKAGE}.zip"
    cdp = _throttle(page, 80_000)  # ~380 kB at 80 kB/s: about five seconds of visible progress
    page.get_by_label("SCORM or cmi5 ZIP").set_input_files(str(zip_path))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_function("() => document.getElementById('upload-progress').value > 5")
    page.get_by_role("button", name="Cancel").click()
    assert page.locator("#upload-status").inner_text() == "Upload cancelled."
    assert page.locator("#upload-progress").evaluate("bar => bar.value") == 0
    assert console.api.get("/api/v1/packages").json()["data"] == []

    # Again, to the end, sampling the bar into sessionStorage (it outlives the page's navigation to the
    # package, which the script starts once the server has answered 202).
    _progress_samples(page)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_function("() => document.getElementById('upload-progress').value > 30")
    console.shot("upload-progress")
    page.wait_for_url(re.compile(r"/packages/pkg_"), timeout=30_000)
    cdp.send("Network.emulateNetworkConditions", NO_THROTTLE)
    seen = json.loads(page.evaluate("() => sessionStorage.getItem('progressSeen')"))
    middle = sorted({v for v in seen if 0 < v < 100})
    assert len(middle) >= 5, seen  # the bar moved through many values on the way
    assert seen == sorted(seen), "it only moves forward"
    console.package_id = page.url.rsplit("/", 1)[1]
    # The badge turns "ready" first, then the page reloads itself: wait for the reloaded page (its
    # server-rendered status), or the next test's navigation would race that reload.
    page.wait_for_function("() => document.querySelector('[data-poll]')?.dataset.status === 'ready'", timeout=30_000)
    page.wait_for_load_state()
    assert console.api.get(f"/api/v1/packages/{console.package_id}").json()["status"] == "ready"


def test_package_page_reports_versions_and_preview(console: Console, corpus: Path) -> None:
    page = console.go(f"/admin/t/{console.acme}/packages/{console.package_id}")
    assert page.get_by_role("heading", name="Validation report").is_visible()
    assert page.get_by_role("heading", name="Capabilities").is_visible()
    versions = page.get_by_role("table", name=re.compile("Versions"))
    assert "active" in versions.inner_text() and "ready" in versions.inner_text()
    # A second version, uploaded from the package's page; then version 1 made active again.
    page.get_by_label("SCORM or cmi5 ZIP").set_input_files(str(corpus / "packages" / f"{PACKAGE}.zip"))
    page.get_by_role("button", name="Upload").click()
    api_package = f"/api/v1/packages/{console.package_id}"
    # The page's script opens the package again after the upload and reloads it once processing ends.
    page.wait_for_function(
        "() => document.querySelector('[data-poll]')?.dataset.status === 'ready'"
        " && [...document.querySelectorAll('caption')].some(c => c.textContent.includes('active: 2'))",
        timeout=30_000,
    )
    page.wait_for_load_state()
    assert console.api.get(api_package).json()["active_version"] == 2
    page.get_by_role("row", name=re.compile(r"^1 ready")).get_by_role("button", name="Make active").click()
    page.wait_for_load_state()
    after = console.api.get(api_package).json()
    assert after["active_version"] == 1 and after["active_version_pinned"]
    assert "active: 1" in page.get_by_role("table", name=re.compile("Versions")).inner_text()
    console.shot("package")
    page.get_by_role("button", name="Preview launch").click()
    page.wait_for_url(re.compile(r"/player/"))
    page.wait_for_function("() => window.scormPlayer !== undefined")
    found = console.api.get("/api/v1/sessions", params={"learner_id": "console-preview:root"}).json()["data"]
    assert len(found) == 1 and found[0]["package_id"] == console.package_id and found[0]["package_version"] == 1


def _learner_sessions(console: Console) -> list[str]:
    """Six learners' sessions on the package, each launched and finished through the runtime endpoints
    (results, interactions and session time, as the content would write them)."""
    made = []
    for n, (status, score, minutes, answer) in enumerate(
        [
            ("passed", 95, 4, "a"),
            ("passed", 80, 12, "a"),
            ("failed", 35, 7, "b"),
            ("passed", 70, 25, "a"),
            ("failed", 20, 1, "c"),
            ("incomplete", None, 45, None),
        ]
    ):
        created = console.api.post(
            "/api/v1/sessions",
            json={"package_id": console.package_id, "learner": {"id": f"learner-{n}", "name": f"Learner {n}"}},
        ).json()
        cmi = {"cmi.core.lesson_status": status, "cmi.core.session_time": f"00:{minutes:02d}:00"}
        if score is not None:
            cmi["cmi.core.score.raw"] = str(score)
        if answer is not None:
            cmi.update(
                {
                    "cmi.interactions.0.id": "q1",
                    "cmi.interactions.0.type": "choice",
                    "cmi.interactions.0.student_response": answer,
                    "cmi.interactions.0.result": "correct" if answer == "a" else "wrong",
                    "cmi.interactions.1.id": "q2",
                    "cmi.interactions.1.type": "true-false",
                    "cmi.interactions.1.student_response": "t",
                    "cmi.interactions.1.result": "wrong" if n % 2 else "correct",
                }
            )
        player = Player(console.api, created)  # the runtime calls player.js makes, over real HTTP
        player.launch()
        finished = player.commit(cmi, terminate=True)
        assert finished.status_code == 200, finished.text
        made.append(created["id"])
    return made


def test_sessions_filter_view_attempt_delete(console: Console) -> None:
    made = _learner_sessions(console)
    page = console.go(f"/admin/t/{console.acme}/sessions")
    assert page.locator("tbody tr").count() >= 7  # six learners and the preview
    # The learner search: part of a name, any case (sessions.list_sessions' `learner` filter).
    page.get_by_label(re.compile(r"^Learner")).fill("LEARNER 2")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"learner=LEARNER"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    assert "failed" in rows.inner_text() and "learner-2" in rows.inner_text()
    page.get_by_label(re.compile(r"^Learner")).fill("learner-")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"learner=learner-"))
    expect(page.locator("tbody tr")).to_have_count(6)  # the six learners, not the preview
    console.go(f"/admin/t/{console.acme}/sessions")
    console.shot("sessions")
    page = console.go(f"/admin/t/{console.acme}/sessions/{made[0]}")
    cmi = page.get_by_role("table", name="CMI data model").inner_text()
    assert "cmi.core.lesson_status" in cmi and "passed" in cmi
    interactions = page.get_by_role("table", name="Interactions").inner_text()
    assert "q1" in interactions and "choice" in interactions and "correct" in interactions
    console.shot("session")
    page.get_by_role("button", name="New attempt").click()
    page.wait_for_url(re.compile(r"/sessions/ses_"))
    fresh = page.url.rsplit("/", 1)[1]
    assert fresh != made[0]
    again = console.api.get(f"/api/v1/sessions/{fresh}").json()
    assert again["learner"]["id"] == "learner-0" and again["status"] == "not_started"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete session").click()
    page.wait_for_url(re.compile(r"/sessions$"))
    assert console.api.get(f"/api/v1/sessions/{fresh}").status_code == 404


def test_analytics_charts_from_real_sessions_and_csv(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/analytics?package={console.package_id}")
    completions = page.locator("svg[aria-label='Completions per day'] rect.bar")
    values = [float(v) for v in completions.evaluate_all("bars => bars.map(b => b.dataset.value)")]
    report = console.api.get(f"/api/v1/analytics/packages/{console.package_id}").json()
    assert sum(values) == sum(d["completions"] for d in report["completions_per_day"]) and sum(values) >= 5
    scores = page.locator("svg[aria-label^='Score distribution'] rect.bar")
    assert sum(float(v) for v in scores.evaluate_all("b => b.map(x => x.dataset.value)")) == report["score"]["count"]
    difficulty = page.locator("svg[aria-label^='Per-question difficulty'] rect.bar")
    assert difficulty.count() == 2
    timed = page.locator("svg[aria-label^='Time spent'] rect.bar")
    assert sum(float(v) for v in timed.evaluate_all("b => b.map(x => x.dataset.value)")) >= 6
    console.shot("analytics")
    with page.expect_download() as info:
        page.get_by_role("link", name="interactions.csv").click()
    text = Path(info.value.path()).read_text()
    assert text.startswith("interaction_id,") and "q1" in text
    page = console.go(f"/admin/t/{console.acme}/analytics")  # the tenant summary
    overall = page.locator("svg[aria-label^='Completions per day'] rect.bar")
    assert sum(float(v) for v in overall.evaluate_all("b => b.map(x => x.dataset.value)")) == sum(values)
    assert "Golf Explained" in page.get_by_role("table", name="Packages by sessions").inner_text()


def test_webhook_create_ping_replay_rotate(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/webhooks")
    page.get_by_label("URL").fill(console.receiver.url)
    page.get_by_label("Description").fill("e2e receiver")
    page.get_by_role("button", name="Create endpoint").click()
    secret = page.locator("#new-secret").inner_text()
    assert secret.startswith("whsec_")
    page.get_by_role("link", name=console.receiver.url).click()
    page.get_by_role("button", name="Send test ping").click()
    ping = wait_until(
        lambda: [r for r in console.receiver.accepted() if r.event["type"] == "ping"], 15, what="the ping"
    )
    page.reload()
    page.get_by_role("link", name="ping").first.click()
    payload = json.loads(page.locator("#payload").inner_text())
    assert payload["id"] == ping[0].event["id"]
    console.shot("webhook-delivery")
    page.get_by_role("button", name="Replay").click()
    replays = wait_until(
        lambda: (r := [x for x in console.receiver.accepted() if x.event["id"] == payload["id"]]) and len(r) >= 2 and r,
        15,
        what="the replay to reach the receiver",
    )
    assert replays[1].body == replays[0].body
    page.get_by_role("link", name=re.compile("Back to")).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate secret").click()
    rotated = page.locator("#new-secret").inner_text()
    assert rotated.startswith("whsec_") and rotated != secret
    page.get_by_role("button", name="Send test ping").click()
    latest = wait_until(lambda: len(console.receiver.accepted()) >= 3 and console.receiver.accepted()[-1], 15)
    from standardwebhooks.webhooks import Webhook

    Webhook(rotated).verify(latest.body, latest.headers)  # signed with the new secret


def test_api_keys_shown_once_and_revoked(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/keys")
    page.locator("#key-name").fill("from the console")
    page.get_by_label("Role").select_option("read")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key").inner_text()
    with httpx.Client(base_url=console.server.url, trust_env=False) as client:
        assert client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        console.go(f"/admin/t/{console.acme}/keys")
        assert secret not in page.content()
        row = page.get_by_role("row").filter(has_text="from the console")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("row").filter(has_text="from the console")).to_contain_text("revoked")
        assert client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_lrs_credentials_shown_once_and_revoked(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/xapi")
    page.locator("#lrs-name").fill("xAPI from the console")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create LRS credential").click()
    key, secret = page.locator("#new-lrs-key").inner_text(), page.locator("#new-lrs-secret").inner_text()
    headers = {"X-Experience-API-Version": "1.0.3"}
    with httpx.Client(base_url=console.server.url, trust_env=False, auth=(key, secret), headers=headers) as xapi:
        assert xapi.get("/xapi/statements").status_code == 200
        console.go(f"/admin/t/{console.acme}/xapi")
        assert secret not in page.content()
        row = page.get_by_role("row").filter(has_text="xAPI from the console")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("row").filter(has_text="xAPI from the console")).to_contain_text("revoked")
        assert xapi.get("/xapi/statements").status_code == 401


def _statement(n: int) -> dict[str, object]:
    return {
        "actor": {"mbox": f"mailto:forward-{n}@example.com", "objectType": "Agent"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": f"https://example.com/activities/forwarded-{n}", "objectType": "Activity"},
    }


def test_xapi_forwarding_create_log_disable(console: Console) -> None:
    made = console.api.post("/api/v1/xapi/credentials", json={"name": "e2e forwarding"}).json()
    headers = {"X-Experience-API-Version": "1.0.3"}
    with httpx.Client(base_url=console.server.url, trust_env=False, auth=(made["key"], made["secret"])) as xapi:
        stored = xapi.post("/xapi/statements", json=[_statement(n) for n in range(3)], headers=headers)
        assert stored.status_code == 200, stored.text
    target = Receiver().start()  # another LRS, on 127.0.0.1 (outbound_allow lets the server reach it)
    try:
        page = console.go(f"/admin/t/{console.acme}/xapi")
        page.get_by_label("Name", exact=True).last.fill("Warehouse LRS")
        page.get_by_label(re.compile(r"^Endpoint")).fill(target.url)
        page.get_by_label("Also forward the statements already stored").check()
        page.get_by_role("button", name="Add forwarding target").click()
        page.wait_for_url(re.compile(r"/xapi/forwarding/fwd_"))
        target_id = page.url.rsplit("/", 1)[1]
        wait_until(lambda: target.received, 20, what="the forwarded statements")
        forwarded = [s for r in target.received for s in json.loads(r.body)]
        assert set(stored.json()) <= {s["id"] for s in forwarded}

        def delivered() -> bool:
            page.reload()
            return "delivered" in page.get_by_role("table", name=re.compile("Delivery log")).inner_text()

        wait_until(delivered, 20, what="the delivery log's delivered entry")
        console.shot("xapi-forwarding")
        page.get_by_role("button", name="Disable").click()
        expect(page.locator("#target-state")).to_contain_text("disabled")
        assert console.api.get(f"/api/v1/xapi/forwarding/{target_id}").json()["enabled"] is False
    finally:
        target.stop()


def test_dispatch_create_download_disable(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/dispatches")
    page.get_by_label("Package").select_option(console.package_id)
    page.get_by_label("Name").fill("Partner LMS")
    page.get_by_label(re.compile(r"^Learner cap")).fill("50")
    page.get_by_role("button", name="Create dispatch").click()
    page.wait_for_url(re.compile(r"/dispatches/dsp_"))
    dispatch_id = page.url.rsplit("/", 1)[1]
    assert "Launches" in page.locator("#dispatch-counts").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download SCORM 1.2 ZIP").click()
    with zipfile.ZipFile(info.value.path()) as archive:
        assert "imsmanifest.xml" in archive.namelist()
    console.shot("dispatch")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#dispatch-state")).to_have_text("disabled")
    shown = console.api.get(f"/api/v1/dispatches/{dispatch_id}").json()
    assert shown["enabled"] is False and shown["learner_cap"] == 50 and shown["name"] == "Partner LMS"
    console.go(f"/admin/t/{console.acme}/dispatches")
    assert "disabled" in page.get_by_role("row").filter(has_text="Partner LMS").inner_text()
    with console.browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True) as phone:
        phone.add_cookies([c for c in console.context.cookies() if c["name"] == "sa_console"])
        small = phone.new_page()
        small.goto(console.url(f"/admin/t/{console.acme}/dispatches/{dispatch_id}"))
        assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


def test_lti_register_and_remove_a_platform(console: Console) -> None:
    platform = LtiPlatform()  # its identity and URLs, as the LMS's administrator would give them
    platform.server.server_close()  # nothing calls it here: the registration is stored, not used
    reg = platform.registration()
    page = console.go(f"/admin/t/{console.acme}/lti")
    assert f"/lti/{console.acme}/login" in page.locator("#tool-urls").inner_text()
    page.get_by_label("Name").fill(reg["name"])
    page.get_by_label(re.compile(r"^Issuer")).fill(reg["issuer"])
    page.get_by_label("Client id").fill(reg["client_id"])
    page.get_by_label(re.compile(r"^Deployment ids")).fill("\n".join(reg["deployment_ids"]))
    page.get_by_label(re.compile(r"JWKS\) URL")).fill(reg["jwks_url"])
    page.get_by_label(re.compile(r"^Authentication request")).fill(reg["auth_url"])
    page.get_by_label("Access token URL").fill(reg["token_url"])
    page.get_by_role("button", name="Register platform").click()
    page.wait_for_url(re.compile(r"/lti/registrations/"))
    listed = console.api.get("/api/v1/lti/registrations").json()["data"]
    assert [(r["issuer"], r["client_id"], r["deployment_ids"]) for r in listed] == [
        (reg["issuer"], reg["client_id"], reg["deployment_ids"])
    ]
    console.go(f"/admin/t/{console.acme}/lti")
    console.shot("lti")
    page.get_by_role("link", name=reg["name"]).click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove platform").click()
    page.wait_for_url(re.compile(r"/lti$"))
    assert "No platforms registered" in page.content()
    assert console.api.get("/api/v1/lti/registrations").json()["data"] == []


def test_jwt_settings_let_a_token_in(console: Console) -> None:
    idp = LtiPlatform().start()  # its /jwks on 127.0.0.1 serves as the identity provider's keys
    try:
        page = console.go(f"/admin/t/{console.acme}/jwt")
        page.get_by_label(re.compile(r"^Issuer")).fill("https://idp.example.com")
        page.get_by_label(re.compile(r"^Audience")).fill("scorm-e2e")
        page.get_by_label(re.compile(r"^JWKS URL")).fill(f"{idp.internal}/jwks")
        page.get_by_role("button", name="Save JWT settings").click()
        expect(page.locator("#jwt-current")).to_contain_text("https://idp.example.com")
        console.shot("jwt")
        now = int(time.time())
        claims = {"iss": "https://idp.example.com", "aud": "scorm-e2e", "iat": now, "exp": now + 300}
        token = idp.id_token({**claims, "sub": "app-user", "org_id": console.acme, "role": "read"})
        with httpx.Client(base_url=console.server.url, trust_env=False) as client:
            answer = client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["auth"]["kind"] == "jwt" and answer.json()["auth"]["role"] == "read"
            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="Stop accepting JWTs").click()
            expect(page.locator("#jwt-current")).to_contain_text("accepts no JWTs")
            assert client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        idp.close()


def test_cmi5_registration_shows_its_aus_and_waives_one(console: Console) -> None:
    uploaded = console.api.post(
        "/api/v1/packages", content=not_applicable_course(), headers={"Content-Type": "application/zip"}
    )
    assert uploaded.status_code == 202, uploaded.text
    package_id = uploaded.json()["id"]
    wait_until(
        lambda: console.api.get(f"/api/v1/packages/{package_id}").json()["status"] == "ready", 30, what="processing"
    )
    page = console.go(f"/admin/t/{console.acme}/packages")
    assert page.locator(f'tr:has(a[href$="/packages/{package_id}"]) td').nth(2).inner_text() == "cmi5"
    created = console.api.post(
        "/api/v1/sessions", json={"package_id": package_id, "learner": {"id": "cmi5-learner", "name": "Five"}}
    ).json()
    page = console.go(f"/admin/t/{console.acme}/sessions/{created['id']}")
    aus = page.get_by_role("table", name="Assignable units")
    assert "https://example.com/au/na" in aus.inner_text()
    row = aus.get_by_role("row").filter(has_text="https://example.com/au/done")
    row.get_by_label("Reason").select_option("Tested Out")
    row.get_by_role("button", name="Waive").click()
    expect(page.get_by_role("table", name="Assignable units")).to_contain_text("waived (Tested Out)")
    expect(page.locator("#cmi5")).to_contain_text("course satisfied")
    console.shot("session-cmi5")
    shown = console.api.get(f"/api/v1/sessions/{created['id']}").json()["cmi5"]
    assert shown["satisfied"] and [a["waive_reason"] for a in shown["aus"] if a["waived"]] == ["Tested Out"]


def test_usage_gauges(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}")
    usage = console.api.get("/api/v1/usage").json()
    meter = page.get_by_role("meter")
    expected = round(100 * usage["storage_bytes"] / usage["limits"]["storage_bytes"])
    assert abs(float(meter.get_attribute("value") or "0") - expected) <= 1
    assert "API requests this period" in page.content()
    console.shot("tenant")
    with console.browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True) as phone:
        phone.add_cookies([c for c in console.context.cookies() if c["name"] == "sa_console"])
        small = phone.new_page()
        small.goto(console.url(f"/admin/t/{console.acme}"))
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, "no sideways scrolling at a phone's width"
        console.shot("tenant-phone", small)


def test_backups_run_list_download(console: Console) -> None:
    page = console.go("/admin/backups")
    if console.server.databases.postgresql:  # no SQLite file to copy: the page names the server's tools
        assert "back them up with the database server's own tools" in page.locator(".notice").inner_text()
        assert page.get_by_role("button", name="Run a backup now").count() == 0
        # A POST made by hand (with the session's CSRF token) is refused in the error format, nothing written.
        csrf = page.locator("main").get_attribute("data-csrf") or ""
        refused = page.request.post(f"{console.server.url}/admin/backups", headers={"X-CSRF-Token": csrf})
        assert refused.status == 403 and refused.json()["details"] == {"reason": "postgresql"}, refused.text()
        assert "PostgreSQL" in refused.json()["error"]
        return
    page.get_by_role("button", name="Run a backup now").click()
    assert "Backup written to" in page.locator(".notice").inner_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download .tar.gz").first.click()
    with tarfile.open(info.value.path(), "r:gz") as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(next(n for n in names if n.endswith("/manifest.json"))))  # type: ignore[arg-type]
    assert manifest["kind"] == "full" and {t["id"] for t in manifest["tenants"]} >= {console.acme, console.globex}
    console.shot("backups")


def test_logs_and_settings(console: Console) -> None:
    page = console.go("/admin/logs?q=path%3D%2Fadmin%2Fbackups")
    assert "path=/admin/backups" in page.locator("#log-lines").inner_text()
    page = console.go("/admin/settings")
    assert str(console.server.data_dir) in page.get_by_role("table", name="Effective settings").inner_text()
    console.shot("settings")


def test_every_page_labels_its_controls(console: Console) -> None:
    paths = ["/admin/tenants", "/admin/settings", "/admin/backups", "/admin/logs"] + [
        f"/admin/t/{console.acme}{p}"
        for p in ("", "/packages", "/sessions", "/webhooks", "/keys", "/xapi", "/dispatches", "/lti", "/jwt")
    ]
    for path in paths:
        page = console.go(path)
        unlabeled = page.evaluate(
            "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !e.labels.length).map(e => e.name)"
        )
        assert unlabeled == [], (path, unlabeled)
        captions = page.evaluate("() => [...document.querySelectorAll('table')].filter(t => !t.caption).length")
        assert captions == 0, path


def test_csrf_and_cross_site_requests_are_refused(console: Console) -> None:
    page = console.go(f"/admin/t/{console.acme}/keys")
    # A script on the console's origin without the token (course content on a shared origin could try).
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({name: 'no-token'}),
             credentials: 'same-origin'})).status""",
        f"/admin/t/{console.acme}/keys/",
    )
    assert status == 403
    # Another site's auto-submitting form: SameSite=Strict keeps the cookie home, so it reaches login.
    evil = console.context.new_page()
    evil.route(
        "http://attacker.test/",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"""<form id=f method=post action="{console.url(f"/admin/t/{console.acme}/keys/")}">
                     <input name=name value=cross-site></form><script>f.submit()</script>""",
        ),
    )
    evil.goto("http://attacker.test/")
    evil.wait_for_url(re.compile(r"/admin/login"))
    evil.close()
    with offline(console.server) as inst:
        names = [k.name for k in apikeys.list_keys(inst, console.acme)]
    assert "no-token" not in names and "cross-site" not in names


def test_tenant_admin_is_confined_to_their_tenant(console: Console) -> None:
    with console.browser.new_context(viewport=DESKTOP) as other:
        page = other.new_page()
        sign_in(page, console.server.url, "acme-admin")
        assert page.url.endswith(f"/admin/t/{console.acme}")
        nav = page.get_by_role("navigation", name="Main").inner_text()
        assert "Backups" not in nav and "Tenants" not in nav
        for path in ("", "/packages", "/sessions", "/webhooks", "/keys"):
            answer = page.goto(console.url(f"/admin/t/{console.globex}{path}"))
            assert answer is not None and answer.status == 404, path
        assert (page.goto(console.url("/admin/backups")) or pytest.fail()).status == 403
        page.goto(console.url(f"/admin/t/{console.acme}/keys"))
        csrf = page.locator("main").get_attribute("data-csrf")
        status = page.evaluate(
            """async ([url, csrf]) => (await fetch(url, {method: 'POST', credentials: 'same-origin',
                 body: new URLSearchParams({name: 'cross-tenant', csrf_token: csrf})})).status""",
            [f"/admin/t/{console.globex}/keys/", csrf],
        )
        assert status == 404
    with offline(console.server) as inst:
        assert apikeys.list_keys(inst, console.globex) == []
