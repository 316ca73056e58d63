"""Every way a SCO session's page can end, in headless Chromium against a real server.

What content sets while the page goes away (in `beforeunload`, `pagehide`, `unload` or
`visibilitychange` of its own page or of a frame inside it) must reach the server, and the next launch
must hand the content what the rules say: `resume` with its location and suspend data after a
suspend. Each test reads the stored CMI back through the sessions API and relaunches.
"""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from appliance.core.scorm.durations import parse_cmi_time
from tests.e2e.browser import BROWSER_TESTS, CHROMIUM, CHROMIUM_ARGS, Appliance, Player, wait_until
from tests.e2e.ending_sco import ENDED, SESSION_SECONDS, ending_package

pytestmark = BROWSER_TESTS

VERSIONS = ["1.2", "2004"]
EVENTS = ["beforeunload", "pagehide", "unload", "visibilitychange"]
HANDLERS = EVENTS + [f"nested-{event}" for event in EVENTS]
NAMES = {
    "1.2": {
        "entry": "cmi.core.entry",
        "exit": "cmi.core.exit",
        "location": "cmi.core.lesson_location",
        "total": "cmi.core.total_time",
    },
    "2004": {"entry": "cmi.entry", "exit": "cmi.exit", "location": "cmi.location", "total": "cmi.total_time"},
}


def seconds(value: str) -> float:
    """A CMI time (1.2 timespan or 2004 duration) in seconds."""
    return parse_cmi_time(value) / 100


_packages: dict[tuple[str, tuple[str, ...]], str] = {}


def upload(appliance: Appliance, version: str, modes: list[str]) -> str:
    """The id of our ending SCO package with these modes (uploaded once per module)."""
    key = (version, tuple(modes))
    if key not in _packages or _packages[key] not in appliance.packages.values():
        response = appliance.http.post(
            "/api/v1/packages",
            files={"file": ("ending.zip", ending_package(version, modes), "application/zip")},
        )
        assert response.status_code == 202, response.text
        package_id = response.json()["id"]

        def ready() -> dict[str, Any] | None:
            body = appliance.http.get(f"/api/v1/packages/{package_id}").json()
            return body if body["status"] != "processing" else None

        assert wait_until(ready, 30, what="the ending SCO package")["status"] == "ready"
        appliance.packages[f"ending-{version}-{'-'.join(modes)}"] = package_id
        _packages[key] = package_id
    return _packages[key]


def new_session(appliance: Appliance, version: str, modes: list[str]) -> dict[str, Any]:
    response = appliance.http.post(
        "/api/v1/sessions",
        json={"package_id": upload(appliance, version, modes), "learner": {"id": f"learner-{uuid.uuid4().hex[:12]}"}},
    )
    assert response.status_code == 201, response.text
    return response.json()


def open_sco(context: BrowserContext, url: str, mode: str) -> tuple[Player, Any]:
    """Open the launch URL and wait for the SCO (of `mode`) to have initialized; (player, its frame)."""
    player = Player(context, url)
    player.wait_running()
    frame = player.frame("sco.html")
    frame.wait_for_function("(mode) => window.sco && window.sco.mode === mode", arg=mode)
    if mode.startswith("nested-"):
        frame.wait_for_function("() => document.getElementById('inner').contentWindow.ready === true")
    return player, frame


def sco_seen(frame: Any) -> dict[str, Any]:
    return frame.evaluate("() => window.sco")


def suspended_cmi(version: str, learner: str, mode: str, step: int) -> dict[str, str]:
    """The exact CMI stored after our SCO's end(): what it set, and what the attempt rules made of it."""
    if version == "1.2":
        return {
            "cmi.core.student_id": learner,
            "cmi.core.student_name": learner,
            "cmi.core.credit": "credit",
            "cmi.core.entry": "ab-initio",
            "cmi.core.lesson_mode": "normal",
            "cmi.core.lesson_status": "completed",  # LMSFinish with no status set (1.2, no mastery score)
            "cmi.core.total_time": "0000:01:05.00",
            "cmi.launch_data": mode,
            "cmi.core.lesson_location": f"page-{step}",
            "cmi.suspend_data": f"state-{step}{ENDED}",
            "cmi.core.exit": "suspend",
        }
    return {
        "cmi.learner_id": learner,
        "cmi.learner_name": learner,
        "cmi.credit": "credit",
        "cmi.mode": "normal",
        "cmi.entry": "ab-initio",
        "cmi.completion_status": "unknown",
        "cmi.success_status": "unknown",
        "cmi.total_time": "PT0H1M5S",
        "cmi.time_limit_action": "continue,no message",
        "adl.nav.request": "_none_",
        "cmi.launch_data": mode,
        "cmi.location": f"page-{step}",
        "cmi.suspend_data": f"state-{step}{ENDED}",
        "cmi.exit": "suspend",
    }


def assert_suspended_and_resumes(
    appliance: Appliance, context: BrowserContext, session: dict[str, Any], version: str, mode: str, step: int
) -> None:
    """The stored CMI says the SCO suspended in its handler; the next launch resumes with its data."""
    suspend = f"state-{step}{ENDED}"
    stored = appliance.wait_session(
        session["id"],
        lambda s: s["cmi"].get("cmi.suspend_data") == suspend,
        what="the values set in the SCO's handler to be stored",
    )
    cmi = stored["cmi"]
    assert cmi == suspended_cmi(version, session["learner"]["id"], mode, step), cmi
    assert stored["total_time_seconds"] == pytest.approx(SESSION_SECONDS)  # session time counted once
    player, frame = open_sco(context, appliance.launch_url(session["id"]), mode)
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", f"page-{step}", suspend)
    assert seconds(seen["total"]) == pytest.approx(SESSION_SECONDS)  # counted once, however often it was sent
    player.close()


# -- the tab closed, with each handler, SCORM 1.2 and 2004 ------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", HANDLERS)
def test_tab_closed_keeps_what_each_handler_saves(
    appliance: Appliance, context: BrowserContext, version: str, mode: str
) -> None:
    session = new_session(appliance, version, [mode])
    player, frame = open_sco(context, session["launch_url"], mode)
    frame.evaluate("() => { work(1); commit(); work(2); }")  # step 2 only in the page
    player.close(run_before_unload=True)
    assert_suspended_and_resumes(appliance, context, session, version, mode, 2)


# -- other ways the page ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", ["unload", "pagehide"])
def test_tab_closed_without_beforeunload(
    appliance: Appliance, context: BrowserContext, version: str, mode: str
) -> None:
    session = new_session(appliance, version, [mode])
    player, frame = open_sco(context, session["launch_url"], mode)
    frame.evaluate("() => { work(1); commit(); work(2); }")
    player.close(run_before_unload=False)
    assert_suspended_and_resumes(appliance, context, session, version, mode, 2)


@pytest.mark.parametrize("version", VERSIONS)
def test_reload_resumes_in_the_reloaded_page(appliance: Appliance, context: BrowserContext, version: str) -> None:
    session = new_session(appliance, version, ["unload"])
    player, frame = open_sco(context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); work(2); }")
    player.page.reload()
    player.wait_running()
    frame = player.frame("sco.html")
    frame.wait_for_function("() => window.sco && window.sco.initialized === 'true'")
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", f"state-2{ENDED}")
    stored = appliance.session(session["id"])
    assert stored["total_time_seconds"] == pytest.approx(SESSION_SECONDS)
    player.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_top_window_navigated_away(appliance: Appliance, context: BrowserContext, version: str) -> None:
    session = new_session(appliance, version, ["nested-unload"])
    player, frame = open_sco(context, session["launch_url"], "nested-unload")
    frame.evaluate("() => { work(1); work(2); }")  # nothing committed before the learner leaves
    player.page.goto(appliance.server.url + "/api/v1/health")
    assert_suspended_and_resumes(appliance, context, session, version, "nested-unload", 2)
    player.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_sco_that_never_finishes_resumes_with_what_it_set(
    appliance: Appliance, context: BrowserContext, version: str
) -> None:
    """No Finish/Terminate at all: the player's pagehide beacon takes the values the SCO set, and the
    abandoned SCO session resumes (docs/sessions.md: a closed tab without Terminate counts as suspended)."""
    names = NAMES[version]
    session = new_session(appliance, version, ["never"])
    player, frame = open_sco(context, session["launch_url"], "never")
    frame.evaluate("() => { work(1); commit(); work(2); }")
    player.close(run_before_unload=True)
    stored = appliance.wait_session(
        session["id"], lambda s: s["cmi"].get("cmi.suspend_data") == "state-2", what="the beacon's values"
    )
    assert stored["cmi"][names["location"]] == "page-2"
    assert stored["cmi"].get(names["exit"], "") == ""  # the SCO never said how it exited
    player, frame = open_sco(context, appliance.launch_url(session["id"]), "never")
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", "state-2")
    player.close()


def _processes() -> dict[int, tuple[int, int, bytes]]:
    """pid -> (parent pid, start time, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(entry.name)] = (int(fields[1]), int(fields[19]), (entry / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue
    return found


def _below(processes: dict[int, tuple[int, int, bytes]], pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def own_context(browser: Browser) -> Iterator[BrowserContext]:
    """A context in a Chromium of its own: `crash` kills that browser's renderers, and no other page."""
    own = browser.browser_type.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000)
    try:
        context = own.new_context()
        yield context
        context.close()
    finally:
        own.close()


def crash(page: Page) -> None:
    """Kill the page's renderer process (SIGKILL, as an out-of-memory killer or a phone would): no
    beforeunload, pagehide, unload or visibilitychange runs. The page is in a browser of its own
    (`own_context`, the newest Chromium under this test process), so its renderers are the page's."""
    page.evaluate("1")  # the page is live up to here
    processes = _processes()
    browsers = [
        p
        for p in _below(processes, os.getpid())
        if b"--type=" not in processes[p][2] and b"--user-data-dir" in processes[p][2]
    ]
    assert browsers, "no Chromium process found under this test"
    newest = max(browsers, key=lambda p: processes[p][1])
    renderers = [p for p in _below(processes, newest) if b"--type=renderer" in processes[p][2]]
    assert renderers, "no renderer process found to kill"
    for pid in renderers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    page.wait_for_event("crash", timeout=5000)


def hide(page: Page) -> None:
    """The tab goes to the background, as on a phone's home button.

    Headless Chromium keeps every page "visible" (neither another tab in front nor a minimised window
    changes it), so each document reports "hidden" and gets its `visibilitychange`, top window first,
    as a browser dispatches them."""
    for frame in page.frames:
        frame.evaluate(
            """() => {
              Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
              Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
              document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_page_killed_without_any_event_keeps_what_was_committed(
    appliance: Appliance, context: BrowserContext, own_context: BrowserContext, version: str
) -> None:
    names = NAMES[version]
    session = new_session(appliance, version, ["unload"])
    player, frame = open_sco(own_context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); }")
    player.wait_settled()
    frame.evaluate("() => work(2)")  # only in the page: lost with the renderer, nothing can send it
    crash(player.page)
    stored = appliance.session(session["id"])
    assert (stored["cmi"][names["location"]], stored["cmi"]["cmi.suspend_data"]) == ("page-1", "state-1")
    again, frame = open_sco(context, appliance.launch_url(session["id"]), "unload")
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-1", "state-1")
    again.close()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("mode", ["never", "visibilitychange"])
def test_tab_hidden_then_killed(
    appliance: Appliance, context: BrowserContext, own_context: BrowserContext, version: str, mode: str
) -> None:
    """A phone: the learner leaves the browser (hidden), and the system later ends it without an event.
    What the SCO set before is sent on hiding; a SCO that saves on visibilitychange has finished."""
    session = new_session(appliance, version, [mode])
    player, frame = open_sco(own_context, session["launch_url"], mode)
    frame.evaluate("() => { work(1); commit(); work(2); }")
    hide(player.page)
    player.wait_settled()
    crash(player.page)
    if mode == "visibilitychange":
        assert_suspended_and_resumes(appliance, context, session, version, mode, 2)
        return
    stored = appliance.session(session["id"])
    assert (stored["cmi"][NAMES[version]["location"]], stored["cmi"]["cmi.suspend_data"]) == ("page-2", "state-2")
    again, frame = open_sco(context, appliance.launch_url(session["id"]), mode)
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", "state-2")
    again.close()


# -- the player's own controls, multi-SCO ----------------------------------------------------------------

TWO = ["unload", "never"]  # item-unload saves in its unload handler; item-never never calls Finish


def activity_cmi(appliance: Appliance, session_id: str, activity: str) -> dict[str, Any]:
    return appliance.session(session_id)["activities"][activity]


@pytest.mark.parametrize("version", VERSIONS)
def test_toc_jump_mid_sco_keeps_what_its_unload_saves(
    appliance: Appliance, context: BrowserContext, version: str
) -> None:
    names = NAMES[version]
    session = new_session(appliance, version, TWO)
    player, frame = open_sco(context, session["launch_url"], "unload")
    frame.evaluate("() => { work(1); commit(); work(2); }")
    player.page.locator('#toc button[data-activity="item-never"]').click()
    player.wait_running("item-never")
    first = activity_cmi(appliance, session["id"], "item-unload")
    assert first["state"] == "terminated"
    assert (first["cmi"][names["exit"]], first["cmi"][names["location"]], first["cmi"]["cmi.suspend_data"]) == (
        "suspend",
        "page-2",
        f"state-2{ENDED}",
    )
    # Back to the first SCO from the table of contents: it resumes where its unload left it.
    player.page.locator('#toc button[data-activity="item-unload"]').click()
    player.wait_running("item-unload")
    frame = player.frame("sco.html")
    frame.wait_for_function("() => window.sco && window.sco.mode === 'unload'")
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", f"state-2{ENDED}")
    assert seconds(seen["total"]) == pytest.approx(SESSION_SECONDS)
    player.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_suspend_all_mid_sco_resumes_there(appliance: Appliance, context: BrowserContext, version: str) -> None:
    """The player's "Save and exit" while a SCO that never calls Finish runs: the player ends the SCO
    session for it, and the next launch resumes that SCO with what it had set."""
    names = NAMES[version]
    session = new_session(appliance, version, TWO)
    player, _ = open_sco(context, session["launch_url"], "unload")
    player.page.locator('#toc button[data-activity="item-never"]').click()
    player.wait_running("item-never")
    frame = player.frame("sco.html")
    frame.wait_for_function("() => window.sco && window.sco.mode === 'never'")
    frame.evaluate("() => { work(1); commit(); work(2); }")
    player.page.locator("#nav-suspendAll").click()
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    assert player.message() == "Your progress is saved. You can close this window."
    stored = activity_cmi(appliance, session["id"], "item-never")
    assert (stored["cmi"][names["exit"]], stored["cmi"][names["location"]]) == ("suspend", "page-2")
    player.close()
    again, frame = open_sco(context, appliance.launch_url(session["id"]), "never")
    assert again.state()["activity"] == "item-never"
    seen = sco_seen(frame)
    assert (seen["entry"], seen["location"], seen["suspend"]) == ("resume", "page-2", "state-2")
    again.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_exit_mid_sco_ends_normally(appliance: Appliance, context: BrowserContext, version: str) -> None:
    """The player's "Exit" while a SCO that never calls Finish runs: the player ends the SCO session for
    it with what it set, and a normal exit starts what the rules say: SCORM 2004 a new attempt with
    fresh data (entry ab-initio), SCORM 1.2 the same data with entry "" (no resume)."""
    names = NAMES[version]
    session = new_session(appliance, version, ["never", "unload"])
    player, frame = open_sco(context, session["launch_url"], "never")
    frame.evaluate("() => { work(1); commit(); work(3); }")
    player.page.locator("#nav-exitAll").click()
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    stored = activity_cmi(appliance, session["id"], "item-never")
    assert stored["state"] == "terminated"
    assert (stored["cmi"][names["location"]], stored["cmi"]["cmi.suspend_data"]) == ("page-3", "state-3")
    assert stored["cmi"].get(names["exit"], "") == ""
    player.close()
    again, frame = open_sco(context, appliance.launch_url(session["id"]), "never")
    seen = sco_seen(frame)
    expected = ("ab-initio", "", "") if version == "2004" else ("", "page-3", "state-3")
    assert (seen["entry"], seen["location"], seen["suspend"]) == expected
    again.close()


# -- real content: Rustici's golf launch pages (SCORM 1.2 and 2004) --------------------------------------

GOLF = {"1.2": "moodle-singlescobasic", "2004": "moodle-RuntimeBasicCalls_SCORM20043rdEdition"}


def golf_next(launch: Any, times: int) -> None:
    for _ in range(times):
        before = int(launch.evaluate("currentPage"))
        launch.locator("#butNext").click()
        launch.wait_for_function("(before) => currentPage === before + 1", arg=before)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("before_unload", [True, False], ids=["beforeunload", "no-beforeunload"])
def test_golf_closed_after_three_pages(
    appliance: Appliance, context: BrowserContext, version: str, before_unload: bool
) -> None:
    """The issue's reproduction: three pages of golf, then the tab is closed. With beforeunload the
    launch page's doUnload(false) sets session_time and exit=suspend and calls Finish: the next launch
    must say entry=resume with the bookmark. Without it, onunload's doUnload() exits normally: 1.2 keeps
    the data with entry "", 2004 starts a new attempt."""
    names = NAMES[version]
    session = appliance.new_session(GOLF[version])
    player = Player(context, session["launch_url"])
    player.wait_running()
    golf_next(player.frame("launchpage.html"), 3)
    player.close(run_before_unload=before_unload)
    stored = appliance.wait_session(
        session["id"],
        lambda s: next(iter(s["activities"].values()))["state"] == "terminated",
        what="the golf SCO session to end",
    )
    cmi = stored["cmi"]
    assert cmi[names["location"]] == "3"
    assert cmi.get(names["exit"], "") == ("suspend" if before_unload else "")
    total = seconds(cmi[names["total"]])  # golf 1.2 reports whole seconds: may be 0 in a quick test
    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running()
    values = again.values()
    if before_unload:
        assert (values[names["entry"]], values[names["location"]]) == ("resume", "3")
        assert seconds(values[names["total"]]) == pytest.approx(total)
    elif version == "1.2":
        assert (values[names["entry"]], values[names["location"]]) == ("", "3")
    else:
        # A new attempt (its launch page sets location "0" as it starts).
        assert values[names["entry"]] == "ab-initio" and values.get(names["location"], "") in ("", "0")
        assert seconds(values[names["total"]]) == 0
    assert again.error_dialogs() == []
    again.close()


# -- two tabs of one session --------------------------------------------------------------------------------


def interaction_records(cmi: dict[str, str]) -> list[dict[str, str]]:
    """The stored interaction records, in index order, each as {field: value}."""
    records: dict[int, dict[str, str]] = {}
    for name, value in cmi.items():
        parts = name.split(".")
        if name.startswith("cmi.interactions.") and parts[2].isdigit() and len(parts) == 4:
            records.setdefault(int(parts[2]), {})[parts[3]] = value
    return [records[i] for i in sorted(records)]


@pytest.mark.parametrize("version", VERSIONS)
def test_two_tabs_append_whole_interaction_records(appliance: Appliance, context: BrowserContext, version: str) -> None:
    """Both tabs answer questions: each appends records at its own idea of the next index. The later
    one gets a 409, and its new records go after the other tab's, whole: no record mixes two tabs'
    fields, none is lost, and the newest scalar values win."""
    names = NAMES[version]
    response_field = "learner_response" if version == "2004" else "student_response"
    session = new_session(appliance, version, ["never"])
    a, fa = open_sco(context, session["launch_url"], "never")
    fa.evaluate("() => { answer('a1', true); commit(); }")
    a.wait_settled()
    b, fb = open_sco(context, appliance.launch_url(session["id"]), "never")
    assert fb.evaluate("() => { const n = answer('b1', false); work(7); commit(); return n; }") == "1"
    b.wait_settled()
    # A still thinks the next record is 1: it appends 'a2' there and updates a scalar.
    assert fa.evaluate("() => { const n = answer('a2', true); work(8); commit(); return n; }") == "1"
    a.wait_settled()
    assert a.commit_statuses[-2:] == [409, 200]
    cmi = appliance.session(session["id"])["cmi"]
    records = interaction_records(cmi)
    assert [r["id"] for r in records] == ["a1", "b1", "a2"]
    wrong = "incorrect" if version == "2004" else "wrong"
    assert [r["result"] for r in records] == ["correct", wrong, "correct"]
    assert all(r["type"] == "true-false" and response_field in r for r in records)
    assert cmi[names["location"]] == "page-8"  # the newest write wins
    fa.evaluate("() => { answer('a3', false); commit(); }")
    a.wait_settled()
    records = interaction_records(appliance.session(session["id"])["cmi"])
    assert [r["id"] for r in records] == ["a1", "b1", "a2", "a3"]
    a.close()
    b.close()
