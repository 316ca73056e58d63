"""The five cmi5 example courses of CATAPULT, played end to end in Chromium through the player.

Real cmi5 content (../shared/suites/catapult/course_examples: single AU framed and responsive, mastery
score framed and responsive, multi-AU with a quiz), a real `scorm-appliance serve` on 127.0.0.1, and
Debian's Chromium: each course is uploaded through the API, a session (a cmi5 registration) is started,
and its `launch_url` is opened with `?au=` as a learner's browser would open it. The player frames an
AnyWindow AU or sends the window to an OwnWindow one; the course's own cmi5 library fetches its token,
reads LMS.LaunchData and talks to the appliance's LRS. A course passes when its quiz (its last page) is
answered correctly and submitted, the multi-AU course's lessons at launch; Exit terminates the AU session.

What is checked after each play: the session in the sessions API (status, completion, success, each
AU's progress, the registration's satisfaction), the package analytics, and the registration's statements
in the tenant's LRS (read with an LRS credential): `launched` by the LMS, the AU's own `initialized`,
`passed`/`completed`/`failed`, `terminated`, and the LMS's `satisfied` exactly when moveOn says so.
The multi-AU course shows moveOn at work: seven AUs satisfied leave the course unsatisfied, a failed quiz
(moveOn CompletedAndPassed) keeps it so, and only the passed quiz satisfies the course.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Frame, Page

from tests.e2e.browser import CHROMIUM, WAIT_MS, wait_until
from tests.e2e.conftest import ServerProcess
from tests.e2e.databases import Databases

COURSES = Path(__file__).resolve().parents[2].parent / "shared" / "suites" / "catapult" / "course_examples"
SINGLE_AU = [
    "single_au_basic_framed",
    "single_au_basic_responsive",
    "masteryscore_framed",
    "masteryscore_responsive",
]
MULTI_AU = "multi_au_framed"
VERBS = "http://adlnet.gov/expapi/verbs/"
LAUNCHED, INITIALIZED, TERMINATED = VERBS + "launched", VERBS + "initialized", VERBS + "terminated"
PASSED, COMPLETED, FAILED = VERBS + "passed", VERBS + "completed", VERBS + "failed"
SATISFIED = "https://w3id.org/xapi/adl/verbs/satisfied"
COURSE_TYPE = "https://w3id.org/xapi/cmi5/activitytype/course"
READY_TIMEOUT = 60.0
PLAY_TIMEOUT = 30.0

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.cmi5,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium package"),
    pytest.mark.skipif(not COURSES.is_dir(), reason=f"the cmi5 example courses are not in {COURSES}"),
]


class Lms:
    """The server, an API client with the tenant's admin key, and an LRS credential of the same tenant."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.server = server
        self.api = httpx.Client(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30, trust_env=False
        )
        cred = self.api.post("/xapi/credentials", json={"name": "cmi5 courses", "scope": "all"})
        assert cred.status_code == 201, cred.text
        self.lrs = httpx.Client(
            base_url=f"{server.url}/xapi",
            auth=(cred.json()["key"], cred.json()["secret"]),
            headers={"X-Experience-API-Version": "1.0.3"},
            timeout=30,
            trust_env=False,
        )

    def close(self) -> None:
        self.api.close()
        self.lrs.close()

    def upload(self, name: str) -> dict[str, Any]:
        """Upload a course ZIP and wait (bounded) until it is processed; it must be a ready cmi5 package."""
        body = (COURSES / f"{name}.zip").read_bytes()
        response = self.api.post("/packages", content=body, headers={"Content-Type": "application/zip"})
        assert response.status_code == 202, response.text
        package_id = response.json()["id"]
        package = wait_until(
            lambda: (p := self.api.get(f"/packages/{package_id}").json())["status"] != "processing" and p,
            timeout=READY_TIMEOUT,
            what=f"{name} processed",
        )
        assert package["status"] == "ready" and package["standard"] == "cmi5", package
        return package

    def start(self, package_id: str, learner: str) -> dict[str, Any]:
        response = self.api.post(
            "/sessions", json={"package_id": package_id, "learner": {"id": learner, "name": learner}, "resume": False}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def session(self, session_id: str) -> dict[str, Any]:
        response = self.api.get(f"/sessions/{session_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def statements(self, registration: str) -> list[dict[str, Any]]:
        """Every statement of the registration, oldest first (following `more`)."""
        found: list[dict[str, Any]] = []
        response = self.lrs.get("/statements", params={"registration": registration, "ascending": "true"})
        while True:
            assert response.status_code == 200, response.text
            data = response.json()
            found += data["statements"]
            if not data.get("more"):
                return found
            response = self.lrs.get(data["more"].removeprefix("/xapi"))


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[Lms]:
    server = ServerProcess(tmp_path_factory.mktemp("cmi5-courses") / "data", databases=databases)
    try:
        server.start()
        server.cli("tenants", "create", "cmi5 courses")
        server.cli("quotas", "set", "--tenant", "cmi5 courses", "--rate", "1000000/min")
        key = server.cli("keys", "create", "--tenant", "cmi5 courses")["key"]
        client = Lms(server, key)
        yield client
        client.close()
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from tests.e2e.browser import chromium

    with chromium() as instance:
        yield instance


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


# -- playing an AU ------------------------------------------------------------------------------------


def au_frame(page: Page, launch_method: str) -> Page | Frame:
    """Where the AU runs: the player's frame (AnyWindow), or the window itself (OwnWindow, redirected)."""
    if launch_method == "OwnWindow":
        return page
    handle = page.wait_for_selector("#cmi5-au")
    frame = handle.content_frame() if handle is not None else None
    assert frame is not None, "the player has no AU frame"
    return frame


def run_in(frame: Page | Frame, script: str) -> None:
    """Run `script` in the AU's page once, bounded (WAIT_MS): `evaluate` has no timeout, and a frame that
    navigates or goes away while it runs would hold the test for ever; a function that returns true at
    once is waited for with the page's timeout."""
    frame.wait_for_function(f"() => {{ {script}; return true; }}")


def au_progress(lms: Lms, session_id: str, position: int) -> dict[str, Any]:
    return dict(lms.session(session_id)["cmi5"]["aus"][position])


def play(
    lms: Lms, context: BrowserContext, session: dict[str, Any], position: int, launch_method: str, quiz: str = ""
) -> dict[str, Any]:
    """Open the session's launch URL for the AU at `position`, let it report (answering the quiz with the
    correct or wrong answers when `quiz` says so), press Exit, and wait for that AU session's `terminated`."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    launch_url = lms.session(session["id"])["launch_url"]  # freshly signed on every read
    page.goto(f"{launch_url}?au={position}")
    au_session = wait_until(
        lambda: lms.session(session["id"])["cmi5"]["open_au_session"], what=f"AU {position} launched"
    )
    assert au_session["au_id"] == au_progress(lms, session["id"], position)["au_id"], au_session
    frame = au_frame(page, launch_method)
    frame.wait_for_selector("#content", state="attached")
    # The course is ready once its cmi5 start-up has run to the end: it shows its first page (an element
    # in #content, which holds only an HTML comment before), or asks whether to resume. Navigating before
    # that loses the page to the start-up's own gotoPage(0), and a resume prompt that comes later covers
    # the quiz.
    frame.wait_for_function(
        "() => document.getElementById('content').childElementCount > 0"
        " || document.querySelector('#bookmark-overlay.full-overlay-visible') !== null"
    )
    if quiz:
        if frame.query_selector("#bookmark-overlay.full-overlay-visible") is not None:  # a second launch
            frame.click("#bookmark-overlay .restart-button")
        if frame.query_selector("#q0") is None:  # the quiz is the last page: what its menu item does
            run_in(frame, "course.gotoPage(course.pageList.length - 1)")
        frame.wait_for_selector("#q0")
        frame.click("text=(Select correct answers)" if quiz == "pass" else "text=(Select wrong answers)")
        frame.click("text=Submit Answers")
        frame.wait_for_selector("#score-panel.full-overlay-visible")
    wanted = {"pass": "passed", "fail": "failed", "": "passed"}[quiz]
    wait_until(
        lambda: au_progress(lms, session["id"], position)["success_status"] == wanted,
        timeout=PLAY_TIMEOUT,
        what=f"AU {position} {wanted} (page errors: {errors})",
    )
    registration = lms.session(session["id"])["cmi5"]["registration"]
    # What the Exit button does (terminated, then the return URL). Started from a timer so that the
    # script returns at once: awaited, it could wait forever on a frame that navigates away.
    run_in(frame, "setTimeout(() => course.exit(), 0)")
    wait_until(
        lambda: [
            s
            for s in lms.statements(registration)
            if s["verb"]["id"] == TERMINATED and session_of(s) == au_session["id"]
        ],
        timeout=PLAY_TIMEOUT,
        what=f"AU {position} terminated (page errors: {errors})",
    )
    overview = returned_to(page, au_session["au_id"])
    assert overview.get_attribute(f'li[data-au="{au_session["au_id"]}"]', "data-state"), overview.content()
    page.close()  # on a page done loading: closed while it navigates, it can wait for ever
    return au_progress(lms, session["id"], position)


def returned_to(page: Page, au_id: str) -> Page | Frame:
    """Where an AU's Exit lands, loaded: the returnURL, the course's overview (the AU's own document went
    there, the player's frame for AnyWindow, the window for OwnWindow), which launches nothing."""
    deadline = time.monotonic() + PLAY_TIMEOUT
    while (found := next((f for f in page.frames if f.url.endswith("?returned=1")), None)) is None:
        assert time.monotonic() < deadline, f"no overview after AU {au_id}'s Exit: {[f.url for f in page.frames]}"
        page.wait_for_timeout(100)  # lets the page's events in (page.frames follows them)
    found.wait_for_load_state("load")
    found.wait_for_selector("#cmi5-aus", state="attached")
    return found


def session_of(statement: dict[str, Any]) -> str | None:
    """The cmi5 session id (an AU session) a statement belongs to."""
    extensions = (statement.get("context") or {}).get("extensions") or {}
    return extensions.get("https://w3id.org/xapi/cmi5/context/extensions/sessionid")


def verbs_of(statements: list[dict[str, Any]]) -> list[str]:
    return [s["verb"]["id"] for s in statements]


def course_satisfied(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s["verb"]["id"] == SATISFIED and s["object"]["definition"]["type"] == COURSE_TYPE]


# -- the tests --------------------------------------------------------------------------------------


def test_the_five_courses_are_there() -> None:
    """The example set is whole (a missing course would silently shrink the parametrized tests)."""
    assert sorted(p.stem for p in COURSES.glob("*.zip")) == sorted([*SINGLE_AU, MULTI_AU])
    for name in [*SINGLE_AU, MULTI_AU]:
        with zipfile.ZipFile(COURSES / f"{name}.zip") as archive:
            assert "cmi5.xml" in archive.namelist()


@pytest.mark.parametrize("name", SINGLE_AU)
def test_a_single_au_course_plays_to_satisfied(lms: Lms, context: BrowserContext, name: str) -> None:
    package = lms.upload(name)
    au = package["course"]["children"][0]
    session = lms.start(package["id"], f"learner-{name}")
    started = time.monotonic()

    progress = play(lms, context, session, 0, au["launch_method"], quiz="pass")

    assert progress["completion_status"] == "completed" and progress["success_status"] == "passed", progress
    assert progress["satisfied"] is True and progress["launches"] == 1, progress  # Exit ends on the overview
    final = lms.session(session["id"])
    assert final["status"] == "passed", final
    assert final["completion_status"] == "completed" and final["success_status"] == "passed", final
    assert final["cmi5"]["satisfied"] is True, final["cmi5"]
    assert 0 < final["cmi5"]["aus"][0]["time_seconds"] <= time.monotonic() - started + 5, final["cmi5"]

    registration = final["cmi5"]["registration"]
    statements = lms.statements(registration)
    verbs = verbs_of(statements)
    assert verbs[0] == LAUNCHED, verbs
    assert verbs.index(INITIALIZED) < verbs.index(PASSED) < verbs.index(TERMINATED), verbs
    assert COMPLETED in verbs and verbs.count(PASSED) == 1 and verbs.count(TERMINATED) >= 1, verbs
    first = session_of(launched := statements[0])
    assert [v for s, v in zip(statements, verbs, strict=True) if session_of(s) == first][-1] == TERMINATED, verbs
    assert len(course_satisfied(statements)) == 1, verbs
    mastery = launched["context"]["extensions"].get("https://w3id.org/xapi/cmi5/context/extensions/masteryscore")
    assert mastery == au["mastery_score"], launched
    assert all(s["context"]["registration"] == registration for s in statements)

    analytics = lms.api.get(f"/analytics/packages/{package['id']}").json()
    assert analytics["passed"] == 1 and analytics["completed"] == 1, analytics
    assert analytics["sessions"]["by_status"].get("passed") == 1, analytics


def test_the_multi_au_course_is_satisfied_only_by_its_move_on(lms: Lms, context: BrowserContext) -> None:
    package = lms.upload(MULTI_AU)
    aus = package["course"]["children"]
    assert len(aus) == 8 and aus[-1]["move_on"] == "CompletedAndPassed", [a["move_on"] for a in aus]
    session = lms.start(package["id"], "learner-multi")

    for position in range(7):  # the lessons: each passes at launch, CompletedOrPassed
        progress = play(lms, context, session, position, aus[position]["launch_method"])
        assert progress["satisfied"] is True, progress
    middle = lms.session(session["id"])
    assert middle["cmi5"]["satisfied"] is False and middle["status"] == "incomplete", middle

    failed = play(lms, context, session, 7, aus[7]["launch_method"], quiz="fail")
    assert failed["success_status"] == "failed" and failed["satisfied"] is False, failed
    after_fail = lms.session(session["id"])
    assert after_fail["cmi5"]["satisfied"] is False, after_fail["cmi5"]
    registration = after_fail["cmi5"]["registration"]
    assert course_satisfied(lms.statements(registration)) == []

    passed = play(lms, context, session, 7, aus[7]["launch_method"], quiz="pass")
    assert passed["success_status"] == "passed" and passed["satisfied"] is True, passed
    assert passed["launches"] >= 2 and passed["score"]["scaled"] == 1, passed
    final = lms.session(session["id"])
    assert final["cmi5"]["satisfied"] is True and final["status"] == "passed", final
    assert all(a["satisfied"] for a in final["cmi5"]["aus"]), final["cmi5"]["aus"]

    statements = lms.statements(registration)
    verbs = verbs_of(statements)
    assert verbs.count(LAUNCHED) >= 9 and verbs.count(TERMINATED) >= 9, verbs
    assert verbs.count(FAILED) == 1 and verbs.index(FAILED) < len(verbs) - verbs[::-1].index(PASSED) - 1, verbs
    satisfied_course = course_satisfied(statements)
    assert len(satisfied_course) == 1, verbs
    assert statements.index(satisfied_course[0]) > verbs.index(FAILED), verbs  # only after the passed quiz

    analytics = lms.api.get(f"/analytics/packages/{package['id']}").json()
    assert analytics["passed"] == 1 and analytics["sessions"]["by_status"].get("passed") == 1, analytics
