"""Real SCORM content from ../shared/scorm-corpus in headless Chromium, through a real server.

Each test uploads corpus packages over HTTP with an API key made by the CLI, creates a session, opens
its `launch_url` and lets the content's own JavaScript find the API and talk to it, driving the
content as a learner would (clicking its buttons, answering its quizzes, closing the tab). The
results are then read back through the sessions API (`?include=cmi`), never from the database.

The packages' own code decides what they record; the comments at each test say what that code does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Frame

from appliance.core.scorm.durations import parse_cmi_time
from tests.e2e.browser import BROWSER_TESTS, QUESTIONS_JS, Appliance, Player
from tests.e2e.conftest import ServerProcess

pytestmark = BROWSER_TESTS


def seconds(value: str) -> float:
    """A CMI time (1.2 timespan or 2004 duration) in seconds."""
    return parse_cmi_time(value) / 100


def find_api(frame: Frame) -> dict[str, Any]:
    """Run the ADL discovery walk (parents, as content does) inside `frame`; what it finds."""
    return frame.evaluate(
        """() => {
          const found = {};
          for (const name of ["API", "API_1484_11"]) {
            let win = window, tries = 0;
            while (win[name] == null && win.parent != null && win.parent != win && tries++ < 7) win = win.parent;
            found[name] = win[name] ? Object.keys(win[name]).sort() : null;
          }
          return found;
        }"""
    )


ERROR_KEYS = {"error", "code", "details"}


def token_of(url: str) -> str:
    return url.split("/player/", 1)[1]


def assert_contract_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS and body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    return body


# -- packages that launch but never call the API --------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "version", "api_name"),
    [
        ("golf-ContentPackagingSingleSCO_SCORM20043rdEdition", "2004 3rd Edition", "API_1484_11"),
        ("golf-ContentPackagingSingleSCO_SCORM20042ndEdition", "2004 2nd Edition", "API_1484_11"),
        ("moodle-singlesco_scorm12", "1.2", "API"),
    ],
)
def test_single_sco_package_launches_with_the_api_of_its_version(
    appliance: Appliance, context: BrowserContext, package: str, version: str, api_name: str
) -> None:
    # These golf "content packaging" examples ship a launch page that only says "Not implemented yet":
    # the player must still deliver it in its frame with the right API object reachable from it.
    package_id = appliance.package(package)
    assert appliance.http.get(f"/api/v1/packages/{package_id}").json()["scorm_version"] == version
    session = appliance.new_session(package)
    player = Player(context, session["launch_url"])
    frame = player.frame("/content/shared/launchpage.html")
    assert frame.locator("h1").inner_text() == "Not implemented yet"
    assert frame.parent_frame == player.page.main_frame
    found = find_api(frame)
    other = "API" if api_name == "API_1484_11" else "API_1484_11"
    assert found[other] is None
    if api_name == "API":
        assert found["API"] == sorted(
            ["LMSInitialize", "LMSFinish", "LMSGetValue", "LMSSetValue", "LMSCommit", "LMSGetLastError"]
            + ["LMSGetErrorString", "LMSGetDiagnostic"]
        )
    else:
        assert found["API_1484_11"] == sorted(
            ["Initialize", "Terminate", "GetValue", "SetValue", "Commit", "GetLastError", "GetErrorString"]
            + ["GetDiagnostic", "version"]
        )
        assert frame.evaluate("() => window.parent.API_1484_11.version") == "1.0"  # IEEE 1484.11.2
    state = player.state()
    assert state["api_state"] == "not_initialized"
    assert state["activity"] == "item_1"
    # The launch was recorded; nothing was reported, so no result is invented.
    stored = appliance.session(session["id"])
    assert stored["current_activity"] == "item_1"
    assert stored["last_activity_at"] is not None
    assert stored["score"] == {"raw": None, "min": None, "max": None, "scaled": None}
    assert player.dialogs == []


# -- the golf "RuntimeBasicCalls" SCO: bookmark, status, score and time ------------------------------------

# shared/launchpage.html of these packages: Initialize on load, set incomplete, read the bookmark
# (confirm() "resume?" when there is one), a page array shown in an inner frame with Previous/Next/Exit
# buttons, the bookmark (location) set on every page, completed on the last page (the quiz), which calls
# parent.RecordTest(score): score.raw/min/max (+ scaled in 2004) and passed/failed at 70 %. On unload it
# sets session_time and, unless the learner reached the end or pressed Exit, exit=suspend; Exit at the end
# sets exit="" (and adl.nav.request=exitAll in 2004) and terminates.
BASIC_CALLS = {
    "2004": {
        "package": "moodle-RuntimeBasicCalls_SCORM20043rdEdition",
        "pages": 15,
        "location": "cmi.location",
        "entry": "cmi.entry",
        "exit": "cmi.exit",
        "session_time": "cmi.session_time",
        "total_time": "cmi.total_time",
    },
    "1.2": {
        "package": "moodle-singlescobasic",
        "pages": 16,
        "location": "cmi.core.lesson_location",
        "entry": "cmi.core.entry",
        "exit": "cmi.core.exit",
        "session_time": "cmi.core.session_time",
        "total_time": "cmi.core.total_time",
    },
}


def golf_page(launch: Frame) -> int:
    """The page the golf launch page shows (its `currentPage` variable)."""
    return int(launch.evaluate("currentPage"))


def golf_next(launch: Frame, times: int = 1) -> int:
    """Click the content's own Next button, waiting for each page to be shown."""
    for _ in range(times):
        before = golf_page(launch)
        launch.locator("#butNext").click()
        launch.wait_for_function("(before) => currentPage === before + 1", arg=before)
    return golf_page(launch)


def answer_quiz(player: Player, wrong: int) -> tuple[int, int]:
    """Answer the golf quiz, `wrong` of the choice questions wrongly; (score shown, number of questions)."""
    quiz = player.frame("assessmenttemplate.html")
    questions = quiz.evaluate(QUESTIONS_JS)
    assert len(questions) == 15
    remaining = wrong
    for q in questions:
        box = quiz.locator(f'[id="{q["id"]}"]')
        if q["numeric"] is not None:
            box.locator(".correctAnswer input[type=text]").fill(q["numeric"])
        elif remaining and q["wrong"]:
            box.locator(".answer input").first.check()
            remaining -= 1
        else:
            box.locator(".correctAnswer input").check()
    assert remaining == 0
    quiz.locator("input[value='Submit Answers']").click()
    heading = quiz.locator("#test h3").first
    heading.wait_for()
    score = int(heading.inner_text().removeprefix("Score: "))
    assert score == round((len(questions) - wrong) * 100 / len(questions))
    return score, len(questions)


@pytest.mark.parametrize("edition", ["2004", "1.2"])
def test_golf_runtime_basic_calls_record_status_score_and_time(
    appliance: Appliance, context: BrowserContext, edition: str
) -> None:
    spec = BASIC_CALLS[edition]
    session = appliance.new_session(spec["package"])
    player = Player(context, session["launch_url"])
    player.wait_running("item_1")
    launch = player.frame("/content/shared/launchpage.html")
    # The content's own discovery found the player's API object and initialised it.
    api_var = "API" if edition == "1.2" else "API_1484_11"
    assert launch.evaluate(f"API === window.parent.{api_var} && initialized === true")
    assert player.values()[spec["entry"]] == "ab-initio"
    assert player.values()[spec["location"]] == "0"  # the bookmark of the first page, set locally
    inner = player.frame("/content/Playing/Playing.html")
    assert inner.locator("h1").inner_text() == "Play of the game"

    last = golf_next(launch, spec["pages"] - 1)
    assert last == spec["pages"] - 1
    wrong = 2 if edition == "2004" else 6
    score, _ = answer_quiz(player, wrong)
    assert (edition, score) in (("2004", 87), ("1.2", 60))

    launch.locator("#butExit").click()  # at the end: no "save progress?" question, a normal exit
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    assert player.message() == "You have finished. You can close this window."
    assert player.error_dialogs() == []
    assert player.commits and player.commits[-1]["terminate"] is True
    assert set(player.commit_statuses) == {200}
    session_time = player.sent(spec["session_time"])
    assert session_time is not None and seconds(session_time) > 0

    stored = appliance.session(session["id"])
    cmi = stored["cmi"]
    assert cmi[spec["location"]] == str(spec["pages"] - 1)
    assert cmi[spec["exit"]] == ""
    assert spec["session_time"] not in cmi  # consumed into total_time, once
    assert seconds(cmi[spec["total_time"]]) == pytest.approx(seconds(session_time))
    assert stored["total_time_seconds"] == pytest.approx(seconds(session_time))
    assert stored["server_time_seconds"] > 0
    if edition == "2004":
        assert cmi["cmi.completion_status"] == "completed"
        assert cmi["cmi.success_status"] == "passed"
        assert (cmi["cmi.score.raw"], cmi["cmi.score.min"], cmi["cmi.score.max"]) == ("87", "0", "100")
        assert float(cmi["cmi.score.scaled"]) == 0.87
        assert cmi["adl.nav.request"] == "_none_"
        assert stored["status"] == "passed"
        assert stored["score"] == {"raw": 87.0, "min": 0.0, "max": 100.0, "scaled": 0.87}
        assert (stored["completion_status"], stored["success_status"]) == ("completed", "passed")
    else:
        assert cmi["cmi.core.lesson_status"] == "failed"
        assert (cmi["cmi.core.score.raw"], cmi["cmi.core.score.min"], cmi["cmi.core.score.max"]) == ("60", "0", "100")
        assert re.fullmatch(r"\d{2,4}:\d{2}:\d{2}(\.\d{1,2})?", cmi["cmi.core.total_time"])
        assert stored["status"] == "failed"
        assert stored["score"]["raw"] == 60.0 and stored["score"]["max"] == 100.0
        assert stored["success_status"] == "failed"


# -- eXe Learning exports (Totara's test packages): SCORM 1.2 quiz and multi-SCO status ----------------------

# index.html: loadPage() initialises and sets lesson_status=incomplete; the quiz's submit (calcScore2)
# writes five choice interactions (id, type, correct pattern "1", student_response, result), score.raw =
# correct/5*100 and max 100, passed at >= 20 % else failed, exit="", then LMSCommit and LMSFinish. Its
# answer key is 0 for every question (the texts say "B", which is value 1: the key wins).


def test_exe_quiz_records_interactions_score_and_status(appliance: Appliance, context: BrowserContext) -> None:
    session = appliance.new_session("totara-overview_test")
    player = Player(context, session["launch_url"])
    player.wait_running()
    sco = player.frame("/content/index.html")
    assert sco.evaluate("typeof getAPIHandle === 'function' && getAPIHandle() === window.parent.API")
    assert player.values()["cmi.core.lesson_status"] == "incomplete"  # loadPage() set it
    answers = ["0", "1", "0", "1", "0"]  # key 0 = right: three right, two wrong
    for number, value in enumerate(answers):
        sco.locator(f"input[name='key{number}b0'][value='{value}']").check()
    sco.locator("#quizForm0 input[type=submit], #quizForm0 [name=submitB]").first.click()
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    assert player.error_dialogs() == []
    assert set(player.commit_statuses) == {200}

    stored = appliance.session(session["id"])
    cmi = stored["cmi"]
    assert cmi["cmi.core.lesson_status"] == "passed"
    assert (cmi["cmi.core.score.raw"], cmi["cmi.core.score.max"]) == ("60", "100")
    assert "cmi.interactions.5.id" not in cmi
    for number, value in enumerate(answers):
        prefix = f"cmi.interactions.{number}."
        assert cmi[prefix + "id"] == f"key{number}b0"
        assert cmi[prefix + "type"] == "choice"
        assert cmi[prefix + "correct_responses.0.pattern"] == "1"
        assert cmi[prefix + "student_response"] == value
        assert cmi[prefix + "result"] == ("correct" if value == "0" else "wrong")
    session_time = player.sent("cmi.core.session_time")
    assert session_time is not None
    assert seconds(cmi["cmi.core.total_time"]) == pytest.approx(seconds(session_time))
    assert stored["status"] == "passed"
    assert stored["score"]["raw"] == 60.0
    assert stored["total_time_seconds"] == pytest.approx(seconds(session_time))


def launch_items(appliance: Appliance, package: str) -> dict[str, dict[str, Any]]:
    """The package's items by identifier (title, href, launchable), from GET /packages/{id}."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            found[item["identifier"]] = item
            walk(item.get("children") or [])

    walk(appliance.http.get(f"/api/v1/packages/{appliance.package(package)}").json()["launch"]["items"])
    return found


def test_exe_multi_sco_previous_and_next_carry_each_scos_status(appliance: Appliance, context: BrowserContext) -> None:
    # Thirteen eXe SCOs nested four deep. Each sets incomplete on load; its unload handler sets
    # completed, exit=suspend and session_time, then commits and finishes. SCORM 1.2 has no sequencing:
    # the player's own Previous/Next and table of contents move between SCOs.
    package = "totara-multisco_w_status_w_raw_score"
    items = launch_items(appliance, package)
    session = appliance.new_session(package)
    player = Player(context, session["launch_url"])

    def shown(activity: str) -> None:
        frame = player.frame(f"/content/{items[activity]['href']}")
        assert frame.locator("#nodeTitle").inner_text().strip() == items[activity]["title"]

    first = player.wait_running()["activity"]
    shown(first)
    assert player.page.locator("#nav-continue").is_visible()
    toc = player.page.locator("#toc").inner_text()
    for title in ("Level 1", "Level 2-1", "Level 3-1", "Level 4-1", "Level 3-6"):
        assert title in toc

    player.page.locator("#nav-continue").click()
    second = player.wait_running()["activity"]
    assert second != first
    shown(second)
    player.page.locator("#nav-continue").click()
    third = player.wait_running()["activity"]
    assert third not in (first, second)
    shown(third)
    player.page.locator("#nav-previous").click()
    player.wait_running(second)
    shown(second)
    assert player.values()["cmi.core.entry"] == "resume"  # it left with exit=suspend
    assert player.values()["cmi.core.lesson_status"] == "completed"
    player.wait_settled()
    assert player.error_dialogs() == []
    assert set(player.commit_statuses) == {200}

    stored = appliance.session(session["id"])
    activities = stored["activities"]
    for done in (first, third):
        assert activities[done]["state"] == "terminated"
        assert activities[done]["cmi"]["cmi.core.lesson_status"] == "completed"
        assert seconds(activities[done]["cmi"]["cmi.core.total_time"]) > 0
    assert activities[second]["state"] == "running"
    assert stored["current_activity"] == second
    assert stored["status"] == "incomplete"  # 3 of 13 SCOs done
    assert stored["total_time_seconds"] > 0


def test_scorm12_parent_items_with_a_resource_are_delivered(appliance: Appliance, context: BrowserContext) -> None:
    # In this eXe export every item, parents included, references a SCO (13 launchable, sco_count 13);
    # "Level 1" (index.html, the home page) comes first in the tree. Sequencing delivers leaves only, so
    # each such 1.2 parent becomes a section whose first leaf is the parent's own content: the home page
    # is delivered first, and every SCO can be reached.
    package = "totara-multisco_w_status_w_raw_score"
    items = launch_items(appliance, package)
    assert sum(1 for i in items.values() if i["launchable"]) == 13
    session = appliance.new_session(package)
    player = Player(context, session["launch_url"])
    first = player.wait_running()["activity"]
    assert items[first]["href"] == "index.html"


# -- golf "RuntimeMinimumCalls" 2004: 18 SCOs, Initialize on load and Terminate on unload only -----------------


def test_golf_minimum_calls_choice_navigation_suspend_all_and_resume(
    appliance: Appliance, context: BrowserContext
) -> None:
    # No sequencing in the manifest: choice yes, flow no (the SCORM 2004 defaults), so the player offers
    # its table of contents but no Previous/Next, and the learner picks the first activity (start cannot
    # flow into the course). The SCOs report nothing; completionSetByContent=false makes the sequencer
    # count each ended attempt as completed.
    session = appliance.new_session("golf-RuntimeMinimumCalls_SCORM20043rdEdition")
    player = Player(context, session["launch_url"])
    player.page.wait_for_function(
        "() => document.getElementById('message').textContent === 'Choose an activity to begin.'"
    )
    assert player.page.locator("#content").count() == 0
    player.page.locator('#toc button[data-activity="playing_playing_item"]').click()
    player.wait_running("playing_playing_item")
    assert player.page.locator("#nav-continue").is_hidden()
    assert player.page.locator("#nav-previous").is_hidden()
    assert player.page.locator("#nav-suspendAll").is_visible()
    sco = player.frame("/content/Playing/Playing.html")
    assert sco.evaluate("initialized === true && API === window.parent.API_1484_11")

    player.page.locator("#toc button", has_text="Par").click()
    player.wait_running("playing_par_item")
    player.page.locator("#toc button", has_text="Etiquette Quiz").click()
    player.wait_running("etiquette_quiz_item")
    quiz = player.frame("assessmenttemplate.html?questions=Etiquette")
    assert len(quiz.evaluate(QUESTIONS_JS)) == 3
    assert [c["nav_request"] for c in player.commits] == [
        "{target=playing_par_item}choice",
        "{target=etiquette_quiz_item}choice",
    ]
    player.page.locator("#nav-suspendAll").click()
    player.page.wait_for_function("() => window.scormPlayer.ended === true")
    assert player.message() == "Your progress is saved. You can close this window."
    assert player.error_dialogs() == []

    stored = appliance.session(session["id"])
    acts = stored["activities"]
    assert {a: acts[a]["state"] for a in acts} == {
        "playing_playing_item": "terminated",
        "playing_par_item": "terminated",
        "etiquette_quiz_item": "terminated",
    }
    assert acts["etiquette_quiz_item"]["cmi"]["cmi.exit"] == "suspend"
    for activity in acts.values():  # no session_time reported: the LMS tracked the time itself
        assert "cmi.session_time" not in activity["cmi"]
        assert seconds(activity["cmi"]["cmi.total_time"]) > 0
    assert stored["status"] == "incomplete"

    # Relaunch: the suspended tree resumes at the quiz, with entry=resume.
    player.close()
    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running("etiquette_quiz_item")
    assert again.values()["cmi.entry"] == "resume"
    assert again.frame("assessmenttemplate.html?questions=Etiquette")
    toc = again.page.locator("#toc li.current").last.inner_text()
    assert toc == "Etiquette Quiz"


# -- resume after closing the tab ------------------------------------------------------------------------------


def test_close_mid_course_then_relaunch_resumes_at_the_bookmark(appliance: Appliance, context: BrowserContext) -> None:
    spec = BASIC_CALLS["2004"]
    session = appliance.new_session(spec["package"])
    player = Player(context, session["launch_url"])
    player.wait_running("item_1")
    launch = player.frame("/content/shared/launchpage.html")
    assert golf_next(launch, 5) == 5
    player.frame("/content/Etiquette/Course.html")
    # The learner closes the tab: beforeunload runs the content's doUnload(false): session_time,
    # exit=suspend, Terminate. The player's commit may be cut off by the closing page; the pagehide
    # beacon carries the same batch.
    player.close(run_before_unload=True)
    stored = appliance.wait_session(
        session["id"], lambda s: s["cmi"].get("cmi.exit") == "suspend", what="the suspend to be stored"
    )
    first_time = seconds(stored["cmi"]["cmi.total_time"])
    assert first_time > 0
    assert stored["cmi"]["cmi.location"] == "5"
    assert stored["cmi"]["cmi.completion_status"] == "incomplete"
    assert stored["activities"]["item_1"]["state"] == "terminated"
    assert stored["status"] == "incomplete"

    # Relaunch with a fresh URL: entry=resume, the bookmark is back, and the content itself asks
    # "resume?" (it only does when GetValue(cmi.location) is not empty) and shows page 5 again.
    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running("item_1")
    launch = again.frame("/content/shared/launchpage.html")
    launch.wait_for_function("currentPage === 5")
    assert again.dialogs == [("confirm", "Would you like to resume from where you previously left off?")]
    assert again.frame("/content/Etiquette/Course.html").locator("h1").is_visible()
    values = again.values()
    assert (values["cmi.entry"], values["cmi.location"]) == ("resume", "5")
    assert values["cmi.completion_status"] == "incomplete"
    assert seconds(values["cmi.total_time"]) == pytest.approx(first_time)

    # One more page, then the tab is closed without beforeunload: the content's onunload handler
    # calls doUnload() without "false", so it does not suspend: a normal exit. In 2004 the next launch
    # is a new attempt with fresh data, and the time of both sessions was counted before that.
    assert golf_next(launch, 1) == 6
    again.close(run_before_unload=False)
    stored = appliance.wait_session(
        session["id"],
        lambda s: s["activities"]["item_1"]["state"] == "terminated" and s["cmi"].get("cmi.location") == "6",
        what="the second session to end",
    )
    assert stored["cmi"].get("cmi.exit", "") == ""
    assert seconds(stored["cmi"]["cmi.total_time"]) > first_time
    third = Player(context, appliance.launch_url(session["id"]))
    third.wait_running("item_1")
    third.frame("/content/Playing/Playing.html")
    assert third.dialogs == []  # no bookmark, no question
    values = third.values()
    assert values["cmi.entry"] == "ab-initio"
    assert seconds(values["cmi.total_time"]) == 0
    assert "cmi.location" not in values or values["cmi.location"] == "0"
    assert appliance.session(session["id"])["activities"]["item_1"]["attempt"] == 2


# moodle-complexscorm is jleyva's "SCORM debugger" SCO (1.2): on load it initialises and reads every
# readable element into its "Stored data" table; its Debugger tab gets, sets and commits any element
# through the API. It has no unload handler: it never calls LMSFinish unless told to.
DEBUGGER = "moodle-complexscorm"


def debugger_frame(player: Player) -> Frame:
    frame = player.frame("/content/index.html")
    frame.wait_for_function(  # loadReadElements() has filled the table
        """() => [...document.querySelectorAll("#elementstable td")].some((td) => td.textContent === "cmi.core.entry")"""
    )
    return frame


def debugger_set(frame: Frame, element: str, value: str) -> None:
    """Set a value through the debugger's own UI (its LMSSetValue call)."""
    frame.locator("a[href='#debugger']").click()
    frame.locator("#element").fill(element)
    frame.locator("#set-value").click()
    frame.locator("#element-value").fill(value)
    frame.locator("#element-value").press("Enter")
    entry = frame.locator("#log p").first
    assert entry.inner_text().endswith(f"Save element:{element} with value: {value}"), entry.inner_text()


def debugger_commit(frame: Frame) -> None:
    frame.locator("a[href='#debugger']").click()
    frame.locator("#commit-value").click()
    assert frame.locator("#log p").first.inner_text().endswith("LMSCommit called, returned: true")


def debugger_get(frame: Frame, element: str) -> str:
    """Get a value through the debugger's own UI (its LMSGetValue call)."""
    frame.locator("a[href='#debugger']").click()
    frame.locator("#element").fill(element)
    frame.locator("#get-value").click()
    return (frame.locator("#debugger-element-value").text_content() or "").removeprefix("Value: ")


def debugger_table(frame: Frame) -> dict[str, str]:
    """The debugger's "Stored data" table: what the content read through LMSGetValue at load."""
    return frame.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("#elementstable tbody tr")]
              .map((tr) => [...tr.children].map((td) => td.textContent)).filter((r) => r.length >= 2)
              .map((r) => [r[0], r[1]]))"""
    )


SUSPEND_DATA = 'v1|{"answers":[3,1,4],"note":"naïve café, 50% done"}'


def test_uncommitted_values_survive_closing_the_tab_and_resume_with_suspend_data(
    appliance: Appliance, context: BrowserContext
) -> None:
    session = appliance.new_session(DEBUGGER)
    player = Player(context, session["launch_url"])
    player.wait_running()
    frame = debugger_frame(player)
    assert debugger_table(frame)["cmi.core.entry"] == "ab-initio"
    debugger_set(frame, "cmi.core.lesson_location", "chapter-3/page-7")
    debugger_set(frame, "cmi.suspend_data", SUSPEND_DATA)
    debugger_set(frame, "cmi.core.exit", "suspend")
    debugger_set(frame, "cmi.core.session_time", "00:04:05.5")
    # No LMSCommit, no LMSFinish: the values live only in the page when the learner closes it. The
    # player's pagehide beacon must carry them.
    assert player.commits == []
    player.close(run_before_unload=False)
    stored = appliance.wait_session(
        session["id"],
        lambda s: s["cmi"].get("cmi.suspend_data") == SUSPEND_DATA,
        what="the beacon's values to be stored",
    )
    assert stored["cmi"]["cmi.core.lesson_location"] == "chapter-3/page-7"

    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running()
    frame = debugger_frame(again)
    table = debugger_table(frame)
    assert table["cmi.core.entry"] == "resume"
    assert table["cmi.core.lesson_location"] == "chapter-3/page-7"
    assert table["cmi.suspend_data"] == SUSPEND_DATA.replace(",", ", ")  # the table's display
    assert debugger_get(frame, "cmi.suspend_data") == SUSPEND_DATA
    # The session that ended without LMSFinish had its reported time counted, once.
    assert seconds(table["cmi.core.total_time"]) == pytest.approx(245.5)
    # It never set a lesson status, and never finished: it has not been completed.
    assert table["cmi.core.lesson_status"] in ("not attempted", "incomplete")
    stored = appliance.session(session["id"])
    assert stored["status"] == "incomplete"
    assert stored["total_time_seconds"] == pytest.approx(245.5)


# -- bad values from content ---------------------------------------------------------------------------------------

BAD_SETS_12 = [  # (element, value, the debugger's log after LMSSetValue)
    ("cmi.core.score.raw", "lots", "Incorrect data type"),
    ("cmi.core.score.raw", "101", "Incorrect data type"),  # CMIDecimal 0..100
    ("cmi.core.lesson_status", "done", "Incorrect data type"),
    ("cmi.core.student_name", "Mallory", "Element is read only"),
    ("cmi.suspend_data", "x" * 64001, "Incorrect data type"),  # over the tenant's default 1.2 limit, 64000
    ("cmi.core.favourite_colour", "blue", "Not implemented error"),
]


def test_bad_values_from_content_are_refused_by_the_browser_and_by_the_server(
    appliance: Appliance, context: BrowserContext
) -> None:
    session = appliance.new_session(DEBUGGER)
    player = Player(context, session["launch_url"])
    player.wait_running()
    frame = debugger_frame(player)
    for element, value, message in BAD_SETS_12:
        frame.locator("a[href='#debugger']").click()
        frame.locator("#element").fill(element)
        frame.locator("#set-value").click()
        frame.locator("#element-value").fill(value)
        frame.locator("#element-value").press("Enter")
        assert frame.locator("#log p").first.inner_text().endswith(f"ERROR: {message}"), element
    assert debugger_get(frame, "cmi.core.session_time") == ""
    assert frame.locator("#log p").first.inner_text().endswith("ERROR: Element is write only")
    debugger_set(frame, "cmi.core.score.raw", "88")
    debugger_commit(frame)
    player.wait_settled()
    assert [c["changes"] for c in player.commits] == [{"cmi.core.score.raw": "88"}]  # only the valid one

    stored = appliance.session(session["id"])
    activity = stored["current_activity"]
    assert stored["cmi"]["cmi.core.score.raw"] == "88"
    assert stored["cmi"]["cmi.core.student_name"] == "Lovelace, Ada"
    assert "cmi.suspend_data" not in stored["cmi"] or stored["cmi"]["cmi.suspend_data"] == ""

    # A client that skips the browser's checks meets the same data model on the server: 422 with each
    # element's SCORM error code, and nothing stored, with or without a version (as a beacon sends).
    token = token_of(session["launch_url"])
    for version in (player.state()["version"], None):
        body = {
            "client_id": "not-the-player",
            "seq": 1,
            "activity": activity,
            "version": version,
            "changes": {"cmi.core.score.raw": "abc", "cmi.core.student_name": "Mallory", "cmi.core.exit": "suspend"},
        }
        response = appliance.http.post(f"/player/{token}/commit", json=body)
        errors = assert_contract_error(response, 422, "CMI_VALIDATION_ERROR")["details"]["errors"]
        assert {e["element"]: e["scorm_error_code"] for e in errors} == {
            "cmi.core.score.raw": 405,
            "cmi.core.student_name": 403,
        }
    after = appliance.session(session["id"])
    assert after["version"] == stored["version"]
    assert after["cmi"] == stored["cmi"]  # not even the valid exit=suspend of the rejected batch


# -- two pages on one session ------------------------------------------------------------------------------------


def test_two_pages_on_one_session_lose_no_acknowledged_value(appliance: Appliance, context: BrowserContext) -> None:
    """Two tabs of the same session, both writing: the outcome, as the docs describe it.

    Each page sends only the elements it changed, with the version it last saw. When the other page
    committed in between, the server answers 409 VERSION_CONFLICT and the player resends the same
    changes on the current version, so every acknowledged value is kept; where both pages wrote the same
    element, the later commit wins. A page does not see the other page's values until it is relaunched;
    opening the second page treats the first page's SCO session as suspended (entry=resume).
    """
    session = appliance.new_session(DEBUGGER)
    a = Player(context, session["launch_url"])
    a.wait_running()
    fa = debugger_frame(a)
    debugger_set(fa, "cmi.core.lesson_location", "A-1")
    debugger_set(fa, "cmi.core.score.raw", "40")
    debugger_commit(fa)
    a.wait_settled()

    b = Player(context, appliance.launch_url(session["id"]))
    b.wait_running()
    fb = debugger_frame(b)
    table = debugger_table(fb)  # B starts from what A had committed
    assert (table["cmi.core.entry"], table["cmi.core.lesson_location"], table["cmi.core.score.raw"]) == (
        "resume",
        "A-1",
        "40",
    )
    debugger_set(fb, "cmi.suspend_data", "written by B")
    debugger_set(fb, "cmi.core.lesson_status", "incomplete")
    debugger_commit(fb)
    b.wait_settled()

    debugger_set(fa, "cmi.core.lesson_location", "A-2")  # A's version is stale now
    debugger_commit(fa)
    a.wait_settled()
    debugger_set(fb, "cmi.core.score.raw", "70")  # and now B's is
    debugger_commit(fb)
    b.wait_settled()
    assert a.commit_statuses == [200, 409, 200]
    assert b.commit_statuses == [200, 409, 200]
    assert a.error_dialogs() == [] and b.error_dialogs() == []

    cmi = appliance.session(session["id"])["cmi"]
    assert cmi["cmi.core.lesson_location"] == "A-2"
    assert cmi["cmi.suspend_data"] == "written by B"
    assert cmi["cmi.core.lesson_status"] == "incomplete"
    assert cmi["cmi.core.score.raw"] == "70"  # both wrote it: the later commit wins
    # Each page answers GetValue from its own copy: A has not seen B's suspend_data.
    assert debugger_get(fa, "cmi.suspend_data") == ""
    assert debugger_get(fb, "cmi.core.lesson_location") == "A-1"

    # Closing both tabs sends nothing stale (nothing is pending), and a relaunch sees the merge.
    a.close()
    b.close()
    again = Player(context, appliance.launch_url(session["id"]))
    again.wait_running()
    table = debugger_table(debugger_frame(again))
    assert table["cmi.core.lesson_location"] == "A-2"
    assert table["cmi.core.score.raw"] == "70"
    assert table["cmi.core.lesson_status"] == "incomplete"
    assert table["cmi.suspend_data"] == "written by B"


# -- a crash after an acknowledged commit --------------------------------------------------------------------------


def test_sigkill_after_an_acknowledged_commit_loses_nothing(
    start_server: Any, corpus: Path, context: BrowserContext
) -> None:
    server = start_server()
    appliance = Appliance(server, corpus)
    try:
        session = appliance.new_session(DEBUGGER)
        player = Player(context, session["launch_url"])
        player.wait_running()
        frame = debugger_frame(player)
        debugger_set(frame, "cmi.core.lesson_location", "before the crash")
        debugger_set(frame, "cmi.suspend_data", SUSPEND_DATA)
        debugger_set(frame, "cmi.core.score.raw", "55")
        with player.page.expect_response(lambda r: r.url.endswith("/commit")) as acknowledged:
            debugger_commit(frame)
        assert acknowledged.value.status == 200
        server.kill()  # SIGKILL the moment the player has its answer

        server.start()  # same port, same data directory
        cmi = appliance.session(session["id"])["cmi"]
        assert cmi["cmi.core.lesson_location"] == "before the crash"
        assert cmi["cmi.suspend_data"] == SUSPEND_DATA
        assert cmi["cmi.core.score.raw"] == "55"

        # The page that was open through the crash carries on against the restarted server.
        debugger_set(frame, "cmi.core.lesson_location", "after the restart")
        with player.page.expect_response(lambda r: r.url.endswith("/commit")) as second:
            debugger_commit(frame)
        assert second.value.status == 200, (second.value.text(), server.stdout_path.read_text()[-3000:])
        assert appliance.session(session["id"])["cmi"]["cmi.core.lesson_location"] == "after the restart"
    finally:
        appliance.close()


# -- launch tokens, other sessions' files, path traversal ----------------------------------------------------------


def learner_routes(http: httpx.Client, token: str, activity: str = "item_1", path: str = "index.html") -> list:
    """Every route a launch token opens, called with `token`."""
    commit = {"client_id": "c", "seq": 1, "activity": activity, "changes": {"cmi.core.lesson_location": "x"}}
    return [
        http.get(f"/player/{token}"),
        http.post(f"/player/{token}/launch", json={}),
        http.post(f"/player/{token}/commit", json=commit),
        http.post(f"/player/{token}/navigate", json={"request": "continue"}),
        http.get(f"/player/{token}/state", params={"activity": activity}),
        http.get(f"/player/{token}/content/{path}"),
    ]


def mint_token(server: ServerProcess, tenant_id: str, session_id: str, expires_at: float) -> str:
    """A correctly signed token with any expiry, made with the appliance's own signing secret."""
    from appliance.instance import Instance
    from appliance.services.learning.launch_tokens import issue, signing_secret

    inst = Instance(server.config())
    try:
        return issue(signing_secret(inst), tenant_id, session_id, expires_at)
    finally:
        inst.close()


def test_forged_and_expired_launch_tokens_get_the_contract_error(appliance: Appliance, context: BrowserContext) -> None:
    import time

    session = appliance.new_session(DEBUGGER)
    other = appliance.new_session("totara-overview_test")
    token = token_of(session["launch_url"])
    payload, signature = token.split(".")
    other_payload = token_of(other["launch_url"]).split(".")[0]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = {
        "flipped signature": f"{payload}.{flipped}",
        "another session's payload, this signature": f"{other_payload}.{signature}",
        "no signature": f"{payload}.",
        "payload only": payload,
        "garbage": "not-a-token",
    }
    tenant_id = appliance.http.get("/api/v1/tenant").json()["id"]
    expired = mint_token(appliance.server, tenant_id, session["id"], time.time() - 60)
    with appliance.server.client() as http:  # no API key: the token is the only credential
        for name, bad in forged.items():
            for response in learner_routes(http, bad):
                body = assert_contract_error(response, 404, "NOT_FOUND")
                assert "expired" not in body["details"], name
        for response in learner_routes(http, expired):
            body = assert_contract_error(response, 404, "NOT_FOUND")
            assert body["details"] == {"expired": True}
            assert "expired" in body["error"]
        # The same secret with a live expiry works: the tokens above fail for their flaw only.
        fresh = mint_token(appliance.server, tenant_id, session["id"], time.time() + 600)
        assert http.get(f"/player/{fresh}").status_code == 200
    # What a learner's browser gets for an expired link: the JSON error, and no player.
    page = context.new_page()
    response = page.goto(f"{appliance.server.url}/player/{expired}")
    assert response is not None and response.status == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert page.evaluate("typeof window.scormPlayer") == "undefined"
    page.close()


def test_a_token_reads_only_its_own_sessions_package_files(appliance: Appliance) -> None:
    # Session A runs the SCORM debugger, session B the eXe quiz: both have an index.html, and each
    # has files the other lacks. Each token serves its own package's files and nothing of the other.
    a = appliance.new_session(DEBUGGER)
    b = appliance.new_session("totara-overview_test")
    token_a, token_b = token_of(a["launch_url"]), token_of(b["launch_url"])
    only_a, only_b = "debugger.js", "SCOFunctions.js"
    with appliance.server.client() as http:
        index_a = http.get(f"/player/{token_a}/content/index.html")
        index_b = http.get(f"/player/{token_b}/content/index.html")
        assert index_a.status_code == index_b.status_code == 200
        assert b"SCORM 1.2 debugger package" in index_a.content
        assert b"SCORM 1.2 debugger package" not in index_b.content
        assert http.get(f"/player/{token_a}/content/{only_a}").status_code == 200
        assert http.get(f"/player/{token_b}/content/{only_b}").status_code == 200
        assert_contract_error(http.get(f"/player/{token_a}/content/{only_b}"), 404, "NOT_FOUND")
        assert_contract_error(http.get(f"/player/{token_b}/content/{only_a}"), 404, "NOT_FOUND")
        # Nor can token A reach B's package by walking out of its own folder (see the traversal test).
        package_b = appliance.package("totara-overview_test")
        assert_contract_error(http.get(f"/player/{token_a}/content/{package_b}/1/{only_b}"), 404, "NOT_FOUND")
        # Token A's run-time endpoints see only session A.
        http.post(f"/player/{token_b}/launch", json={})
        b_activity = appliance.session(b["id"])["current_activity"]
        assert b_activity
        assert_contract_error(http.get(f"/player/{token_a}/state", params={"activity": b_activity}), 404, "NOT_FOUND")


TRAVERSALS = [
    "../../{other}/1/SCOFunctions.js",
    "%2e%2e/%2e%2e/{other}/1/SCOFunctions.js",
    "..%2f..%2f{other}%2f1%2fSCOFunctions.js",
    "%2e%2e%2f%2e%2e%2f{other}%2f1%2fSCOFunctions.js",
    ".%2e/.%2e/{other}/1/SCOFunctions.js",
    "..%5c..%5c{other}%5c1%5cSCOFunctions.js",
    "%252e%252e%252f%252e%252e%252f{other}%252f1%252fSCOFunctions.js",
    "images/../../../{other}/1/SCOFunctions.js",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "index.html%00.js",
]
DATABASE_TRAVERSALS = [  # the SQLite files themselves
    "../../../tenant.db",
    "%2e%2e/%2e%2e/%2e%2e/tenant.db",
    "..%2f..%2f..%2f..%2f..%2fregistry.db",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fregistry.db",
    "images%2f..%2f..%2f..%2ftenant.db",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_in_content_urls_is_not_found(appliance: Appliance, target: str) -> None:
    traversal_is_not_found(appliance, target)


@pytest.mark.sqlite_only(reason="its targets are the tenant's and the registry's SQLite files")
@pytest.mark.parametrize("target", DATABASE_TRAVERSALS)
def test_path_traversal_to_the_database_files_is_not_found(appliance: Appliance, target: str) -> None:
    assert (appliance.server.data_dir / "registry.db").is_file()
    assert next((appliance.server.data_dir / "tenants").iterdir()).joinpath("tenant.db").is_file()
    traversal_is_not_found(appliance, target)


def traversal_is_not_found(appliance: Appliance, target: str) -> None:
    """A content URL of a launch token that tries to leave its package is answered 404 in the contract's form."""
    import http.client

    session = appliance.new_session(DEBUGGER)
    token = token_of(session["launch_url"])
    other = appliance.package("totara-overview_test")
    tenant_dir = next((appliance.server.data_dir / "tenants").iterdir())
    # Every target names a file that exists (so a 404 means "refused", not "missing").
    assert (tenant_dir / "packages" / other / "1" / "SCOFunctions.js").is_file()
    # http.client sends the request target byte for byte (httpx and browsers would normalise "..").
    connection = http.client.HTTPConnection("127.0.0.1", appliance.server.port, timeout=10)
    try:
        connection.request("GET", f"/player/{token}/content/{target.format(other=other)}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, (target, response.status, body[:200])
    assert b"SQLite format" not in body and b"doLMSInitialize" not in body and b"root:" not in body
    assert response.getheader("content-type", "").startswith("application/json")
    assert set(httpx.Response(404, content=body).json()) == ERROR_KEYS


# -- framing: same origin only -------------------------------------------------------------------------------------


def test_player_and_content_may_be_framed_by_the_same_origin_only(
    appliance: Appliance, context: BrowserContext
) -> None:
    session = appliance.new_session(DEBUGGER)
    url = session["launch_url"]
    token = token_of(url)
    with appliance.server.client() as http:
        responses = {
            "player": http.get(f"/player/{token}"),
            "content": http.get(f"/player/{token}/content/index.html"),
            "script": http.get(f"/player/{token}/content/debugger.js"),
            "launch": http.post(f"/player/{token}/launch", json={}),
            "state": http.get(
                f"/player/{token}/state", params={"activity": "mm-ITEM-SCORMDEbugger555f231e21b982c25s01"}
            ),
        }
    for name, response in responses.items():
        assert response.status_code == 200, (name, response.text)
        assert response.headers["x-frame-options"] == "SAMEORIGIN", name
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"], name
    assert responses["content"].headers["content-type"].startswith("text/html")
    assert responses["script"].headers["content-type"].startswith("text/javascript")

    # In the browser: a page of the same origin frames the player (which frames the content) ...
    page = context.new_page()
    page.goto(f"{appliance.server.url}/api/v1/health")
    frame_js = """(src) => new Promise((resolve) => {
      const f = document.createElement("iframe");
      f.src = src;
      f.onload = () => resolve(true);
      document.body.append(f);
    })"""
    page.evaluate(frame_js, url)
    player_frame = next(f for f in page.frames if "/player/" in f.url)
    player_frame.wait_for_function("() => window.scormPlayer && window.scormPlayer.current !== null")
    assert player_frame.evaluate("typeof window.API.LMSInitialize") == "function"
    page.close()

    # ... and a page of another origin (localhost instead of 127.0.0.1) cannot frame either.
    other_origin = appliance.server.url.replace("127.0.0.1", "localhost")
    page = context.new_page()
    page.goto(f"{other_origin}/api/v1/health")
    for src in (url, f"{url}/content/index.html", f"{appliance.server.url}/api/v1/health"):
        page.evaluate(frame_js, src)
    assert page.evaluate("() => document.querySelectorAll('iframe').length") == 3
    # The control: a response without the headers does load in a frame of that other origin.
    assert [f.url for f in page.frames if f.url.startswith(appliance.server.url)] == [
        f"{appliance.server.url}/api/v1/health"
    ]
    assert not [f for f in page.frames if "/player/" in f.url], [f.url for f in page.frames]
    page.close()
