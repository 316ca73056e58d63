"""Runs the ADL SCORM 2004 4th Edition LMS conformance test cases in headless Chromium against a real server.

The test SCO pages of every `adlcts4-*` package expect a Java applet (LMSTestSCODriver) that no browser runs
any more; `driver.js` stands in for it inside the real pages and records every check. This module plays the
other two parts of the original suite: the CTS application (which test case comes next, with which learner)
and the human tester, who launches the package, answers the UI inspection questions by looking at the
player, and does what each instruction (`CUI`) says with the player's own controls: its buttons and its
table of contents.

One case = one browser context, sessions through the HTTP API, the player page at the session's launch URL.
Cases whose packages share global objectives (CO-07a then CO-07b, DDMa and DDMb, ...) run in order as the
same learner; each such family gets its own learner, so families run in parallel (a pool of browser contexts
in one Chromium, one server).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Dialog, Frame, Page

from tests.e2e.conftest import KEEPALIVE_SECONDS

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "scorm-corpus"
PACKAGES = CORPUS / "packages"
PROPERTIES_ZIP = CORPUS / "extras" / "adlcts4-TestCases-properties.zip"
DRIVER_JS = Path(__file__).with_name("driver.js")

# Waits are bounded by deadlines, never by a count of polls: on a busy machine (CI's two cores running four
# browser contexts) a poll can take far longer than its sleep. A passing case never waits for a deadline;
# only a failing one does, so the deadlines are generous.
CASE_TIMEOUT = 180.0  # seconds for one test case (DMB, the longest, takes about 30 s on a loaded machine)
STALL_TIMEOUT = 15.0  # seconds without progress while the player is idle: the LMS is not going to deliver
SETTLE_MS = 400  # quiet time after the last instruction before a case is judged
ACTION_TIMEOUT_MS = 30_000
ENDED_TIMEOUT_MS = 10_000  # for the player to end the course after an instruction that says it ends
REPORT_TIMEOUT = 10.0  # seconds for the driver's last checks to arrive through the binding
LOGOUT_TIMEOUT = 15.0  # seconds for the closed window's pagehide beacon to reach the server

# Instructions (CUI) after which the tester is told the learner attempt ends; the tester checks it did.
ENDS = {
    "OKEnd",
    "HasEnded",
    "AutoTest",
    "TRIGExitAll",
    "ChoiceExit",
    "ContinueExitCM8",
    "RelaunchCM10",
    "RelaunchCM16",
    "RelaunchOB3b",
    "RelaunchSX4a",
    "DMBx",
    "DMBxAct",
    "LaunchDDMb",
    "ReLaunchDDMa",
    "ReLaunchDDMb",
    "autoendrelaunch",
    "autoendlaunchnchoose",
}
# The CTS asks the tester whether the sequencing session ended for these test cases (LMSTestManager).
ASK_SESSION_ENDED = {"OB-08a", "OB-08b", "OB-09a", "OB-09b", "CM-06", "SX-05"}

# The player has nothing in flight and the content it shows (if any) has loaded: its SCO has run its onload
# code, reporting its launch to the driver. The tester only acts on a settled player.
CONTENT_LOADED_JS = """(() => {
  const f = document.getElementById("content");
  if (!f) return true;
  let doc = null;
  try { doc = f.contentDocument; } catch (e) { return true; }
  const blank = (f.getAttribute("src") || "") === "about:blank";  // the player emptied it on purpose
  return Boolean(doc) && (blank || doc.URL !== "about:blank") && doc.readyState === "complete";
})()"""

PLAYER_IDLE_JS = f"""() => {{
  const s = window.scormPlayer;
  if (!s) return document.readyState === "complete" && !document.getElementById("player");
  const c = s.current;
  if (c) {{
    const t = c.transport;
    if (t.busy || t.batch || Object.keys(t.pending).length) return false;
  }}
  return {CONTENT_LOADED_JS};
}}"""

PLAYER_VIEW_JS = (
    """() => {
  const s = window.scormPlayer;
  const idle = ("""
    + PLAYER_IDLE_JS
    + """)();
  const visible = (el) => !!el && !el.hidden && !el.disabled && el.offsetParent !== null;
  const buttons = {};
  for (const name of ["previous", "continue", "suspendAll", "exitAll"]) buttons[name] = visible(document.getElementById(`nav-${name}`));
  const toc = document.getElementById("toc");
  const entries = [];
  if (toc && !toc.hidden) {
    for (const el of toc.querySelectorAll("[data-activity]")) {
      entries.push({id: el.dataset.activity, title: el.textContent.trim(), selectable: el.tagName === "BUTTON" && !el.disabled});
    }
  }
  return {
    ended: s ? Boolean(s.ended) : false,
    content: Boolean(document.getElementById("content")),
    title: (document.getElementById("nav-title") || {}).textContent || "",
    message: (document.getElementById("message") || {}).textContent || "",
    buttons, toc: toc && !toc.hidden, entries, idle,
  };
}"""
)

# What the tester sees after closing the course window.
CLOSED_VIEW: dict[str, Any] = {
    "ended": True,
    "content": False,
    "title": "",
    "message": "",
    "buttons": {"previous": False, "continue": False, "suspendAll": False, "exitAll": False},
    "toc": False,
    "entries": [],
    "idle": True,
}

SNAPSHOT_JS = f"""() => ({{
  state: window.__ctsDriverState ? window.__ctsDriverState() : null,
  view: ({PLAYER_VIEW_JS})(),
}})"""

# Answer the SCO's UI inspection form the way the tester does: a radio button per question, then Submit.
ANSWER_JS = """(answers) => {
  // SX-09's last SCO asks only "click.button": its form is one "Continue Test" button (id continue).
  const single = document.getElementById("continue");
  if (single && !document.getElementById("tRadio0")) return single.click();
  answers.forEach((answer, i) => document.getElementById((answer === "Y" ? "tRadio" : "fRadio") + i).click());
  document.getElementById("submit").click();
}"""


def state_ready(view: dict[str, Any]) -> bool:
    """The player page has asked the server what to launch (it shows a message, a TOC, or has ended)."""
    return bool(view["ended"] or view["message"] or view["toc"] or view["entries"])


# -- the corpus ------------------------------------------------------------------------------------------


def available_packages() -> list[str]:
    """The `adlcts4-*` package names (without the prefix): 189 of them."""
    if not PACKAGES.is_dir():
        return []
    return sorted(p.name[len("adlcts4-") : -len(".zip")] for p in PACKAGES.glob("adlcts4-*.zip"))


def case_of(package: str) -> str:
    """The test case a package belongs to: DDMa and DDMb are the two packages of case DDM."""
    return "DDM" if package in ("DDMa", "DDMb") else package


def packages_of(case: str) -> list[str]:
    return ["DDMa", "DDMb"] if case == "DDM" else [case]


def family_of(case: str) -> str:
    """Cases of a family share global objectives (CO-07a writes what CO-07b reads): same learner, in order."""
    return re.sub(r"[a-z]+$", "", case)


def read_properties(case: str) -> str:
    """The test case's instructions, as the CTS read them (bytes as Latin-1: no character is lost)."""
    with zipfile.ZipFile(PROPERTIES_ZIP) as archive:
        return archive.read(f"TestCases/{case}.properties").decode("latin-1")


def manifest_titles(package: str) -> dict[str, str]:
    """item/organization identifier -> title, from the package's manifest (for the root of the tree)."""
    from lxml import etree

    with zipfile.ZipFile(PACKAGES / f"adlcts4-{package}.zip") as archive:
        root = etree.fromstring(archive.read("imsmanifest.xml"))
    titles: dict[str, str] = {}
    for node in root.iter():
        if not isinstance(node.tag, str) or etree.QName(node).localname not in ("organization", "item"):
            continue
        title = next((c for c in node if isinstance(c.tag, str) and etree.QName(c).localname == "title"), None)
        titles[node.get("identifier", "")] = (title.text or "").strip() if title is not None else ""
    return titles


# -- results ----------------------------------------------------------------------------------------------


SHORT = 300  # characters of a call or value shown in a one-line summary (report.json keeps them whole)


def _short(text: str) -> str:
    return text if len(text) <= SHORT else f"{text[:SHORT]}... ({len(text)} chars)"


@dataclass
class Check:
    step: str
    call: str
    expected: str
    actual: str
    ok: bool
    rule: str = ""
    activity: str | None = None


@dataclass
class Skipped:
    """A command line the CTS's parser skips (LMSParser.parseCommands knows no such verb): no call, no check.

    Kept apart from the checks so the report can say how many lines were not evaluated, as ADL did not."""

    step: str
    text: str
    reason: str
    activity: str | None = None


@dataclass
class CaseResult:
    case: str
    passed: bool
    checks: list[Check]
    expected_order: list[str]
    delivered: list[str]
    seconds: float
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self, limit: int = 3) -> str:
        """One line: the first failing checks (stable text: no times, no ids)."""
        if self.passed:
            return f"{len(self.checks)} checks passed"
        parts = [
            f"{c.step}: {_short(c.call)}: expected {_short(c.expected)}, got {_short(c.actual)}"
            for c in self.failures[:limit]
        ]
        more = len(self.failures) - limit
        if more > 0:
            parts.append(f"and {more} more")
        if self.error and not parts:
            parts.append(self.error)
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failures": len(self.failures)}


# -- the server side: packages, learners and sessions ------------------------------------------------------


class Appliance:
    """The running server, seen through its HTTP API with one tenant's key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        # Reusing a pooled connection the server is closing at that moment fails with a ReadError.
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60.0,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )
        self.package_ids: dict[str, str] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def upload_all(self, packages: list[str], parallel: int = 4, timeout: float = 300.0) -> None:
        """Upload the packages and wait until each is processed (ready, or fail loudly)."""
        gate = asyncio.Semaphore(parallel)

        async def upload(name: str) -> None:
            async with gate:
                data = (PACKAGES / f"adlcts4-{name}.zip").read_bytes()
                response = await self.http.post(
                    "/api/v1/packages", files={"file": (f"adlcts4-{name}.zip", data, "application/zip")}
                )
                if response.status_code != 202:
                    raise AssertionError(f"uploading {name}: {response.status_code} {response.text}")
                self.package_ids[name] = response.json()["id"]

        await asyncio.gather(*(upload(name) for name in packages if name not in self.package_ids))
        deadline = time.monotonic() + timeout
        waiting = {name: self.package_ids[name] for name in packages}
        while waiting:
            for name, package_id in list(waiting.items()):
                body = (await self.http.get(f"/api/v1/packages/{package_id}")).json()
                if body["status"] == "ready":
                    del waiting[name]
                elif body["status"] == "failed":
                    raise AssertionError(f"package {name} failed processing: {body['error']}")
            if waiting:
                if time.monotonic() > deadline:
                    raise AssertionError(f"packages still processing after {timeout} s: {sorted(waiting)}")
                await asyncio.sleep(0.25)

    async def session(self, package: str, learner: dict[str, str]) -> dict[str, Any]:
        """The learner's session on the package (the existing one, like an LMS registration, or a new one)."""
        response = await self.http.post(
            "/api/v1/sessions", json={"package_id": self.package_ids[package], "learner": learner}
        )
        if response.status_code not in (200, 201):
            raise AssertionError(f"session for {package}: {response.status_code} {response.text}")
        return response.json()

    async def session_activity(self, session_id: str) -> tuple[int, bool]:
        """The session's version, and whether one of its SCOs is still running (launched, not terminated)."""
        response = await self.http.get(f"/api/v1/sessions/{session_id}", params={"include": "cmi"})
        if response.status_code != 200:
            raise AssertionError(f"session {session_id}: {response.status_code} {response.text}")
        body = response.json()
        running = any(a.get("state") == "running" for a in (body.get("activities") or {}).values())
        return int(body["version"]), running

    async def launch_url(self, session_id: str) -> str:
        response = await self.http.post(f"/api/v1/sessions/{session_id}/launch")
        if response.status_code != 200:
            raise AssertionError(f"launch of {session_id}: {response.status_code} {response.text}")
        return str(response.json()["launch_url"])


# -- one test case, played by the tester ---------------------------------------------------------------------

PageHook = Callable[[BrowserContext], Awaitable[None]]


class Stop(Exception):
    """The case cannot go on (the reason is already recorded as a failed check)."""


class CaseRun:
    """One test case: launch, answer UI questions, follow every instruction, collect the driver's checks."""

    def __init__(
        self,
        appliance: Appliance,
        browser: Browser,
        case: str,
        learner: dict[str, str],
        *,
        timeout: float = CASE_TIMEOUT,
        hook: PageHook | None = None,
        properties: str | None = None,
    ) -> None:
        self.appliance = appliance
        self.browser = browser
        self.case = case
        self.learner = learner
        self.timeout = timeout
        self.hook = hook
        self.properties = read_properties(case) if properties is None else properties
        self.checks: list[Check] = []
        self.notes: list[str] = []
        self.sessions: dict[str, str] = {}  # package -> session id
        self.package = packages_of(case)[0]
        self.driver_checks: list[dict[str, Any]] = []  # what driver.js reported, in order
        self.seen = 0  # SCO launches seen in the driver's state so far
        self.last_state: dict[str, Any] | None = None
        self.launched_on_open = False  # the player launched a SCO by itself when the package opened
        self.handled = 0  # the last driver event acted upon
        self.page: Page
        self.deadline = 0.0

    # -- bookkeeping --------------------------------------------------------------------------------

    def check(self, step: str, call: str, expected: str, actual: str, ok: bool, rule: str = "tester") -> bool:
        self.checks.append(Check(step=step, call=call, expected=expected, actual=actual, ok=ok, rule=rule))
        return ok

    def fail(self, step: str, call: str, expected: str, actual: str, rule: str = "tester") -> Stop:
        self.check(step, call, expected, actual, False, rule)
        return Stop(f"{call}: {actual}")

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _closed(self) -> bool:
        """The tester closed the course window (the state was last read before)."""
        return self.page.url == "about:blank" and self.last_state is not None

    async def state(self) -> dict[str, Any]:
        """The driver's state (sessionStorage, same origin as every SCO frame)."""
        if self._closed():
            assert self.last_state is not None
            return self.last_state
        for _ in range(40):
            try:
                value = await asyncio.wait_for(
                    self.page.evaluate("() => window.__ctsDriverState ? window.__ctsDriverState() : null"), 2.0
                )
                if value is not None:
                    self.seen = len(value["delivered"])
                    self.last_state = value
                    return value
            except Exception:  # the page is navigating (or blocked); ask again
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the driver state is not readable")

    async def view(self) -> dict[str, Any]:
        if self._closed():
            return CLOSED_VIEW
        return await self.page.evaluate(PLAYER_VIEW_JS)

    async def snapshot(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The driver's state and what the player shows, in one look."""
        if self._closed():
            assert self.last_state is not None
            return self.last_state, CLOSED_VIEW
        for _ in range(40):
            try:
                value = await asyncio.wait_for(self.page.evaluate(SNAPSHOT_JS), 2.0)
                if value["state"] is not None:
                    self.seen = len(value["state"]["delivered"])
                    self.last_state = value["state"]
                    return value["state"], value["view"]
            except Exception:  # the page is navigating (or blocked); look again
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the driver state is not readable")

    async def click(self, selector: str) -> None:
        """Click one of the player's controls (a DOM click on the real element) and wait until the player
        has had the server's answer (a Terminate commit or a navigation request) and acted on it."""

        def answered(response: Any) -> bool:
            # The navigation request itself: /navigate, or the Terminate of the running SCO carrying it.
            request = response.request
            if request.method != "POST":
                return False
            if response.url.endswith("/navigate"):
                return True
            if response.url.endswith("/commit"):
                try:
                    return json.loads(request.post_data or "{}").get("nav_request") is not None
                except ValueError:
                    return False
            return False

        async with self.page.expect_response(answered, timeout=ACTION_TIMEOUT_MS):
            await self.page.evaluate("(selector) => document.querySelector(selector).click()", selector)

    async def idle(self, timeout_ms: int = ACTION_TIMEOUT_MS) -> None:
        """Wait until the player has sent everything and processed the answers (delivery, end)."""
        if self._closed():
            return
        await self.page.wait_for_function(PLAYER_IDLE_JS, timeout=timeout_ms, polling=50)

    # -- the run ------------------------------------------------------------------------------------

    async def run(self) -> CaseResult:
        started = time.monotonic()
        self.deadline = started + self.timeout
        context = await self.browser.new_context()
        error: str | None = None
        state: dict[str, Any] | None = None
        try:
            config = {
                "case": self.case,
                "properties": self.properties,
                "learner": self.learner,
                "learner1": self.learner,
            }
            await context.expose_binding("__ctsReport", self._report)
            await context.add_init_script(
                script=f"window.__CTS_CONFIG__ = {json.dumps(config)};\n{DRIVER_JS.read_text('utf-8')}"
            )
            # The applet's archive is not in the packages; nothing in a modern browser would run it anyway.
            await context.route("**/LMSTest.jar", lambda route: route.fulfill(status=404, body=""))
            if self.hook is not None:
                await self.hook(context)
            self.page = await context.new_page()
            self.page.set_default_timeout(ACTION_TIMEOUT_MS)
            self.page.on("dialog", self._dialog)
            try:
                await asyncio.wait_for(self._play(), timeout=max(1.0, self.remaining()))
            except Stop as stop:
                error = str(stop)
            except TimeoutError:
                error = f"the test case did not finish within {self.timeout:.0f} s"
                self.check("run", "the test case", f"finished within {self.timeout:.0f} s", "timed out", False)
            state = await self.state()
            waited = time.monotonic() + REPORT_TIMEOUT  # the last checks may still be on their way (binding)
            while len(self.driver_checks) < state["reported"] and time.monotonic() < waited:
                await asyncio.sleep(0.05)
        except Exception as exc:  # a harness or browser failure is a failed case, with the reason
            error = f"{type(exc).__name__}: {exc}"
            self.check("run", "the harness", "no error", error, False)
            try:
                state = await self.state()
            except Exception:
                state = None
        finally:
            try:
                await asyncio.wait_for(context.close(), 10.0)
            except Exception as exc:
                self.notes.append(f"closing the browser context: {type(exc).__name__}")
        return self._result(state, error, time.monotonic() - started)

    def _report(self, source: Any, payload: str) -> None:
        self.driver_checks.extend(json.loads(payload))

    def _dialog(self, dialog: Dialog) -> None:
        self.notes.append(f"{dialog.type}: {dialog.message}")
        asyncio.ensure_future(dialog.accept())

    def _result(self, state: dict[str, Any] | None, error: str | None, seconds: float) -> CaseResult:
        checks: list[Check] = []
        expected_order: list[str] = []
        delivered: list[str] = []
        skipped: list[Skipped] = []
        if state is not None:
            skipped = [
                Skipped(step=s["step"], text=s["text"], reason=s["reason"], activity=s.get("activity"))
                for s in state.get("skipped", [])
            ]
            # The checks the state accounts for (a page still running may have reported more since).
            reported = self.driver_checks[: state["reported"]]
            if len(reported) < state["reported"]:
                checks.append(Check("run", "checks from the driver", f"{state['reported']}", f"{len(reported)}", False))
            for c in [*reported, *state["checks"]]:
                checks.append(
                    Check(
                        step=c["step"],
                        call=c["call"],
                        expected=str(c["expected"]),
                        actual=str(c["actual"]),
                        ok=bool(c["ok"]),
                        rule=c.get("rule", ""),
                        activity=c.get("activity"),
                    )
                )
            expected_order = [v["name"] for v in state["visits"]]
            for ev in state["events"]:
                if ev["type"] == "commands" and ev.get("ms", 0) > 1000:
                    self.notes.append(f"{ev['visit']}: {ev['count']} commands took {ev['ms']} ms")
            delivered = list(state["delivered"])
        else:
            checks.append(Check("run", "the driver", "a readable state", "none", False))
        checks.extend(self.checks)
        checks.append(
            Check(
                step="order",
                call="activities delivered",
                expected=" ".join(expected_order) or "(none)",
                actual=" ".join(delivered) or "(none)",
                ok=state is not None and delivered == expected_order,
                rule="delivery order",
            )
        )
        passed = all(c.ok for c in checks) and error is None
        timeline: list[str] = []
        if state is not None and state["events"]:
            first = state["events"][0]["at"]
            for ev in state["events"]:
                detail = {k: v for k, v in ev.items() if k not in ("seq", "type", "at", "index")}
                timeline.append(
                    f"{(ev['at'] - first) / 1000:7.2f}s #{ev['index']} {ev['type']} {json.dumps(detail)[:120]}"
                )
        return CaseResult(
            case=self.case,
            passed=passed,
            checks=checks,
            expected_order=expected_order,
            delivered=delivered,
            seconds=round(seconds, 2),
            error=error,
            notes=self.notes,
            timeline=timeline,
            skipped=skipped,
        )

    async def _play(self) -> None:
        state = await self.state_after_launch()
        instructions = state["instructions"]
        start = instructions.get("start", ".")
        if start not in (".", "", "DDMa"):
            await self.start_with(start)
        last_progress = time.monotonic()
        last_seq = -1
        while True:
            state, view = await self.snapshot()
            if any(e["type"] == "stopped" for e in state["events"]):
                raise Stop("the SCO stopped testing")
            if state["pendingUI"] is not None:
                await self.answer_ui(state["pendingUI"])
                last_progress = time.monotonic()
                continue
            new = [e for e in state["events"] if e["seq"] > self.handled]
            for ev in new:
                self.handled = ev["seq"]
                if ev["type"] == "instructions":
                    await self.follow(ev["cui"] or "", ev.get("visit") or "")
                    last_progress = time.monotonic()
            if state["seq"] != last_seq:
                last_seq = state["seq"]
                last_progress = time.monotonic()
            if new:
                continue  # look again: acting may have changed everything
            done = state["index"] >= len(state["visits"])
            idle = view["idle"]
            if done and idle:
                await asyncio.sleep(SETTLE_MS / 1000)
                later, view = await self.snapshot()
                if later["seq"] == state["seq"] and view["idle"]:
                    await self.finish(state, view)
                    return
                continue
            if not done and idle and time.monotonic() - last_progress > STALL_TIMEOUT:
                visit = state["visits"][state["index"]]
                what = "ended the course" if view["ended"] else "stopped delivering (the player is idle)"
                raise self.fail(
                    "order",
                    "the next delivery",
                    f"Activity {visit['name']} ({visit['key']})",
                    f"the LMS {what}; player says {view['message']!r}",
                    "delivery order",
                )
            await asyncio.sleep(0.05)

    async def state_after_launch(self) -> dict[str, Any]:
        """Open the first package (the tester logs in and launches it)."""
        await self.open_package(self.package)
        return await self.state()

    async def open_package(self, package: str) -> None:
        """Log in and launch the package (the learner's session on it: the same one on a relaunch).

        Returns once the player has settled: when it shows content, once that SCO has reported its launch
        (so what the LMS launches by itself is always seen, never raced by the tester's next click)."""
        if package not in self.sessions:
            session = await self.appliance.session(package, self.learner)
            self.sessions[package] = session["id"]
        url = await self.appliance.launch_url(self.sessions[package])
        self.package = package
        before = self.seen
        await self.page.goto(url, wait_until="domcontentloaded")
        # Settled when the SCO the player launched by itself has reported its launch (the course may flow on
        # from there by itself: the main loop follows it), or when the player waits with nothing shown.
        deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
        while True:
            state, view = await self.snapshot()
            if len(state["delivered"]) > before:
                self.launched_on_open = True
                return
            if view["idle"] and not view["content"] and state_ready(view):
                self.launched_on_open = False
                return
            if time.monotonic() > deadline:
                raise self.fail("launch", f"open {package}", "the player settles", f"still loading: {view}")
            await asyncio.sleep(0.05)

    # -- the tester's actions ------------------------------------------------------------------------

    async def start_with(self, title: str) -> None:
        """Start the package "by choosing <title> from the table of contents". When the player launched
        something by itself as the package opened, there is nothing left to choose: the SCO has already
        reported what was launched (and the driver judged it)."""
        if self.launched_on_open:
            return
        await self.choose(title, step="start")

    async def choose(self, title: str, step: str) -> None:
        """Click the TOC entry for `title` (a Choice navigation event through the player's TOC)."""
        view = await self.view()
        target = self._toc_entry(view, title)
        if target is None or not target["selectable"]:
            titles = ", ".join(e["title"] + ("" if e["selectable"] else " (not selectable)") for e in view["entries"])
            raise self.fail(
                step,
                f"choose {title!r} in the table of contents",
                "a selectable entry",
                f"no such selectable entry (TOC: {titles or 'none'})",
            )
        await self.click(f'#toc button[data-activity="{target["id"]}"]')

    def _toc_entry(self, view: dict[str, Any], title: str) -> dict[str, Any] | None:
        match = re.match(r'^the activity that corresponds to the root of "(.*)"$', title.strip())
        if match:
            # The organization: its title in the manifest, listed by the player or not.
            titles = manifest_titles(self.package)
            wanted = {match.group(1).strip()}
            wanted |= {t for i, t in titles.items() if t == match.group(1).strip()}
            for entry in view["entries"]:
                if entry["title"].strip() in wanted:
                    return entry
            return None
        for entry in view["entries"]:
            if entry["title"].strip() == title.strip():
                return entry
        return None

    async def press(self, control: str, step: str) -> None:
        """Click one of the player's navigation buttons; an LMS without it cannot be tested (manualTT)."""
        view = await self.view()
        if not view["buttons"].get(control):
            raise self.fail(
                step,
                f"trigger {control}",
                f"an enabled {control} control",
                f"none shown (controls: {', '.join(k for k, v in view['buttons'].items() if v) or 'none'})",
            )
        await self.click(f"#nav-{control}")

    async def exit_course(self, step: str) -> None:
        """ "Exit the package/course": the player's Exit (exitAll). If the player offers no exit, the tester
        closes the course window (it is left for a fresh launch)."""
        view = await self.view()
        if view["ended"]:
            return
        if view["buttons"]["exitAll"]:
            await self.press("exitAll", step)
        else:
            self.notes.append(f"{step}: no Exit control shown; closed the course window")
            await self.page.goto("about:blank")

    async def expect_ended(self, step: str, what: str) -> None:
        """The instruction says the learner attempt ends here: the player must have ended the course."""
        try:
            await self.page.wait_for_function(
                "() => window.scormPlayer && window.scormPlayer.ended", timeout=ENDED_TIMEOUT_MS, polling=50
            )
            ended = True
        except Exception:
            ended = False
        view = await self.view()
        self.check(
            step,
            what,
            "the LMS ended the sequencing session (no content shown)",
            "ended" if ended else f"not ended (content shown: {view['content']}, message {view['message']!r})",
            ended,
            "session end",
        )

    async def relaunch(self, package: str, step: str) -> None:
        """Relaunch the package "after you log out": a fresh launch of the learner's session.

        Logging out = closing the course window: whatever the player sends as it goes (its `pagehide`
        beacon) reaches the server before the package is launched again."""
        view = await self.view()
        if not view["ended"] and self.page.url != "about:blank":
            await self.exit_course(step)
        await self.log_out()
        await self.open_package(package)

    async def log_out(self) -> None:
        """Close the course window, then let what the player sends as it goes (its `pagehide` beacon, which the
        browser delivers on its own time) reach the server before anything is launched again: the SCO that
        was running has been terminated (no activity of the session is still running) and the session's
        version has stopped moving."""
        if self.page.url == "about:blank":
            return
        await self.page.goto("about:blank")
        session_id = self.sessions.get(self.package)
        if session_id is None:
            return
        deadline = time.monotonic() + LOGOUT_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            version, running = await self.appliance.session_activity(session_id)
            if version == last and not running:
                return
            last = version
            await asyncio.sleep(0.25)
        self.notes.append(f"log out: the session still had a running SCO after {LOGOUT_TIMEOUT:.0f} s")

    async def follow(self, cui: str, visit: str) -> None:
        """Do what the instruction after a visit says (Instructions.properties), with the player's controls."""
        if cui == "":
            return
        name, *args = cui.split("~")
        step = f"{visit} CUI"
        await self.idle()
        if name in ("Continue", "Previous"):
            await self.press(name.lower(), step)
        elif name in ("Choice", "ChoiceExit"):
            await self.choose(args[0], step)
        elif name in ("Exit", "ExitCM09ba", "RelaunchCM5", "RelaunchCM11", "RelaunchRU13e") or re.fullmatch(
            r"RelaunchRU14[a-d]", name
        ):
            await self.exit_course(step)
        elif name == "TRIGExitAll":
            await self.press("exitAll", step)
        elif name == "SuspendCM09ca":
            await self.press("suspendAll", step)
        elif name == "ContinueExitCM8":
            await self.press("continue", step)
        elif name in ("APIt1", "APIt2"):
            await self.choose(f"API Implementation Test {name[-1]}", step)
        elif re.fullmatch(r"DMIt[1-4]", name):
            await self.choose(f"Data Model Implementation Test {name[-1]}", step)
        elif name == "launch":
            await self.choose(args[0], step)
        elif name == "RootSX4b":
            pass  # checked below: the attempt ends, then the root is chosen
        elif name in ENDS or name in ("relaunch", "exitlaunch", "launchnchoose", "relaunchnchoose"):
            pass
        else:
            raise self.fail(step, f"instruction {cui!r}", "an instruction the tester knows", "unknown instruction")

        if name in ENDS:
            await self.expect_ended(step, f"after {cui!r}")
        # Relaunches and launches of another package.
        relaunch_of = {
            "ExitCM09ba": "CM-09ba",
            "SuspendCM09ca": "CM-09ca",
            "ContinueExitCM8": "CM-08",
            "RelaunchCM5": "CM-05",
            "RelaunchCM10": "CM-10",
            "RelaunchCM11": "CM-11",
            "RelaunchCM16": "CM-16",
            "RelaunchOB3b": "OB-03b",
            "RelaunchRU13e": "RU-13e",
            "RelaunchSX4a": "SX-04a",
            "DMBx": "DMB",
            "DMBxAct": "DMB",
            "LaunchDDMb": "DDMb",
            "ReLaunchDDMa": "DDMa",
            "ReLaunchDDMb": "DDMb",
        }
        if re.fullmatch(r"RelaunchRU14[a-d]", name):
            relaunch_of[name] = f"RU-14{name[-1]}"
        package = relaunch_of.get(name)
        if name in ("relaunch", "exitlaunch", "autoendrelaunch", "launchnchoose", "relaunchnchoose"):
            package = args[0]
        if name == "autoendlaunchnchoose":
            package = args[0]
        if package is not None:
            await self.relaunch(package, step)
        then_choose = {"RelaunchCM10": "Activity 4", "DMBxAct": "Data Model Behavior Test 1"}.get(name)
        if name in ("launchnchoose", "relaunchnchoose", "autoendlaunchnchoose"):
            then_choose = args[1]
        if then_choose is not None:
            await self.start_with(then_choose)
        if name == "RootSX4b":
            view = await self.view()
            self.check(
                step,
                f"after {cui!r}",
                "the content removed, the sequencing session still active",
                f"content shown: {view['content']}, ended: {view['ended']}",
                not view["content"] and not view["ended"],
                "session end",
            )
            await self.choose('the activity that corresponds to the root of "LMS Test Content Package SX-04b"', step)

    async def answer_ui(self, pending: dict[str, Any]) -> None:
        """Look at the player, answer each question in the SCO's form, press Submit Answers."""
        await self.idle()
        view = await self.view()
        answers = [self._answer(key, view) for key in pending["keys"]]
        shown = [k for k, v in view["buttons"].items() if v]
        toc = [e["title"] + ("" if e["selectable"] else " (not selectable)") for e in view["entries"]]
        self.notes.append(f"{pending['visit']} UI {'~'.join(answers)}: controls {shown}, TOC {toc}")
        frame = await self._sco_frame()
        # The page evaluates the answers, runs the commands and terminates, all in the click handler.
        await frame.evaluate(ANSWER_JS, answers)
        deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            state = await self.state()
            if state["pendingUI"] is None:
                return
            await asyncio.sleep(0.05)
        raise self.fail("ui", "submit the UI answers", "the SCO takes them", "nothing happened")

    def _answer(self, key: str, view: dict[str, Any]) -> str:
        """Y or N for one question, from what the player shows (UserInterface.properties)."""
        name, _, variable = key.partition("@")
        buttons = view["buttons"]
        if name in ("continue.enabled", "previous.enabled"):
            return "Y" if buttons[name.split(".")[0]] else "N"
        if name in ("continue.disabled", "previous.disabled"):
            # "A disabled UI device": a control the learner cannot use, whether shown greyed out or hidden
            # (hideLMSUI asks for hidden; the expected answers treat both alike).
            return "N" if buttons[name.split(".")[0]] else "Y"
        if name == "toc.enabled":
            return "Y" if view["toc"] and any(e["selectable"] for e in view["entries"]) else "N"
        if name == "toc.enabled.selectable":
            entry = self._toc_entry(view, variable)
            return "Y" if entry is not None and entry["selectable"] else "N"
        if name == "toc.visible":
            return "Y" if self._toc_entry(view, variable) is not None else "N"
        if name == "ui.visible":
            control = {"Suspend All": "suspendAll", "Exit All": "exitAll"}.get(
                variable, variable[:1].lower() + variable[1:]
            )
            return "Y" if buttons.get(control) else "N"
        if name == "click.button":
            return "Y"
        self.check("ui", f"question {key!r}", "a question the tester can answer", "unknown question", False)
        return "N"

    async def _sco_frame(self) -> Frame:
        deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            for frame in self.page.frames:
                if "/content/" in frame.url:
                    return frame
            await asyncio.sleep(0.05)
        raise self.fail("ui", "the SCO's frame", "shown", "not found")

    async def finish(self, state: dict[str, Any], view: dict[str, Any]) -> None:
        """The last visit is done. For some cases the CTS asks whether the sequencing session ended."""
        if self.case in ASK_SESSION_ENDED or state["instructions"].get("end") == "endUserInter":
            self.check(
                "end",
                "has the sequencing session ended?",
                "yes (no content, the course is over)",
                "yes" if view["ended"] else f"no (content shown: {view['content']})",
                bool(view["ended"]),
                "session end",
            )


# -- running many cases ----------------------------------------------------------------------------------


def plan(cases: list[str]) -> list[list[str]]:
    """Families of cases to run in order as one learner (every earlier member of a selected case's family
    runs first, as the CTS ran them in order; only the selected ones are reported)."""
    everything = sorted({case_of(p) for p in available_packages()})
    families: dict[str, list[str]] = {}
    wanted = set(cases)
    for case in everything:
        families.setdefault(family_of(case), []).append(case)
    chains: list[list[str]] = []
    for members in families.values():
        chosen = [i for i, case in enumerate(members) if case in wanted]
        if chosen:
            chains.append(members[: max(chosen) + 1])
    # Longest chains first, so they do not end up last on a worker.
    return sorted(chains, key=lambda chain: (-len(chain), chain[0]))


async def run_cases(
    appliance: Appliance,
    browser: Browser,
    cases: list[str],
    *,
    workers: int = 4,
    timeout: float = CASE_TIMEOUT,
    hook: PageHook | None = None,
    progress: Callable[[CaseResult], None] | None = None,
    properties: dict[str, str] | None = None,
) -> dict[str, CaseResult]:
    """Run the cases (and the family members they depend on) on a pool of browser contexts.

    `properties` replaces the instructions of the named cases (the driver's own tests edit a file)."""
    chains = plan(cases)
    needed = sorted({p for chain in chains for case in chain for p in packages_of(case)})
    await appliance.upload_all(needed)
    results: dict[str, CaseResult] = {}
    gate = asyncio.Semaphore(workers)

    async def run_chain(chain: list[str]) -> None:
        async with gate:
            learner = {"id": f"cts-{family_of(chain[0]).lower()}-{uuid.uuid4().hex[:8]}", "name": "CTS Learner"}
            for case in chain:
                text = (properties or {}).get(case)
                run = CaseRun(appliance, browser, case, learner, timeout=timeout, hook=hook, properties=text)
                result = await run.run()
                if case in cases:
                    results[case] = result
                    if progress is not None:
                        progress(result)

    await asyncio.gather(*(run_chain(chain) for chain in chains))
    return results
