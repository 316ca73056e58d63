"""The four golf sequencing examples from ../shared/scorm-corpus, end to end in headless Chromium.

Each course is played through the real player and server as a learner would: paging through each SCO
with the content's own Next button, answering its quiz right or wrong, and moving between SCOs with the
player's toolbar and table of contents. The behaviour each course's manifest describes is then checked
on what the player shows, what the server answered (`window.scormPlayer.toc`, the engine's table of
contents) and the session read back from the API.

All four share the golf content: `shared/launchpage.html?content=...` pages through its content, saves
the page as the bookmark, and on the last page sets completed and (content SCOs) passed, then commits.
The quizzes (`shared/assessmenttemplate.html?questions=Topic...`) call `RecordTest(score)` on submit:
score.raw/min/max/scaled, passed at 70 % else failed, and completed. The launch page terminates on
unload, so the player's controls end a SCO by unloading it.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Frame

from tests.e2e.browser import BROWSER_TESTS, QUESTIONS_JS, Appliance, Player

pytestmark = BROWSER_TESTS

FORCED = "golf-SequencingForcedSequential_SCORM20043rdEdition"
POST_TEST = "golf-SequencingPostTestRollup_SCORM20043rdEdition"
RANDOM = "golf-SequencingRandomTest_SCORM20043rdEdition"
REMEDIATION = "golf-SequencingSimpleRemediation_SCORM20043rdEdition"

# The content SCOs in every one of the four ("etuqiette" is the manifests' spelling).
CONTENT = ("playing_item", "etuqiette_item", "handicapping_item", "havingfun_item")
# The single-topic tests of the random test and remediation courses, and the questions in each topic.
TESTS = {"test_1": "Playing", "test_2": "Etiquette", "test_3": "Handicapping", "test_4": "HavingFun"}
QUESTIONS = {"Playing": 5, "Etiquette": 3, "Handicapping": 4, "HavingFun": 3}


# -- driving the golf content and the player ----------------------------------------------------------------


def launchpage(player: Player) -> Frame:
    return player.frame("/content/shared/launchpage.html")


def read_through(player: Player, activity: str) -> None:
    """Page through a content SCO to its last page (completed and passed there), and wait for its commit."""
    player.wait_running(activity)
    frame = launchpage(player)
    frame.wait_for_function("currentPage !== null")
    while frame.evaluate("currentPage < pageArray.length - 1"):
        before = frame.evaluate("currentPage")
        frame.locator("#butNext").click()
        frame.wait_for_function("(before) => currentPage === before + 1", arg=before)
    player.wait_settled()
    values = player.values()
    assert (values["cmi.completion_status"], values["cmi.success_status"]) == ("completed", "passed")


def take_quiz(player: Player, *, right: bool, wrong: int = 0) -> tuple[list[str], int]:
    """Answer the running quiz (all right, or all wrong with `right=False`; `wrong` of them wrong otherwise)
    and submit; the topics it asked about and the score it showed."""
    quiz = player.frame("assessmenttemplate.html")
    topics = quiz.evaluate("() => new URLSearchParams(location.search).getAll('questions')")
    questions = quiz.evaluate(QUESTIONS_JS)
    assert len(questions) == sum(QUESTIONS[topic] for topic in topics), (topics, questions)
    remaining = len(questions) if not right else wrong
    for q in questions:
        box = quiz.locator(f'[id="{q["id"]}"]')
        miss = remaining > 0
        remaining -= 1 if miss else 0
        if q["numeric"] is not None:
            box.locator(".correctAnswer input[type=text]").fill(str(int(q["numeric"]) + 1) if miss else q["numeric"])
        elif miss:
            box.locator(".answer input").first.check()
        else:
            box.locator(".correctAnswer input").check()
    quiz.locator("input[value='Submit Answers']").click()
    heading = quiz.locator("#test h3").first
    heading.wait_for()
    player.wait_settled()
    return topics, int(heading.inner_text().removeprefix("Score: "))


def press(player: Player, selector: str) -> str | None:
    """Press a player control; wait for the next SCO to run. Its activity, or None when the course ended."""
    player.page.evaluate("() => { window.__before = window.scormPlayer.current; }")
    player.page.locator(selector).click()
    player.page.wait_for_function(
        """() => {
          const s = window.scormPlayer;
          return s.ended || (s.current && s.current !== window.__before && !s.current.done
                             && s.current.runtime.state === "running");
        }"""
    )
    state = player.state()
    return None if state["ended"] else state["activity"]


def go_on(player: Player) -> str | None:
    return press(player, "#nav-continue")


def toc_nodes(player: Player) -> dict[str, dict[str, Any]]:
    """The engine's table of contents (as the server last sent it to the player), by activity id."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any]) -> None:
        found[node["id"]] = node
        for child in node["children"]:
            walk(child)

    walk(player.page.evaluate("() => window.scormPlayer.toc"))
    return found


def toc_buttons(player: Player) -> list[str]:
    """The activities the player's table of contents lets the learner choose (the organization first, when
    choosing it is possible: the outline starts at the root activity)."""
    return player.page.locator("#toc button").evaluate_all("(els) => els.map((e) => e.dataset.activity)")


def root_id(player: Player) -> str:
    return player.page.evaluate("() => window.scormPlayer.toc.id")


def root_status(player: Player) -> dict[str, Any]:
    return player.page.evaluate("() => window.scormPlayer.toc.status")


# -- forced sequential -----------------------------------------------------------------------------------------


def test_forced_sequential_offers_only_the_next_activity_and_refuses_skipping_ahead(
    appliance: Appliance, context: BrowserContext
) -> None:
    # Choice and flow are both allowed, but each SCO after the first has a precondition rule that disables
    # it until the previous SCO's global objective is satisfied (the content passes it on its last page).
    session = appliance.new_session(FORCED)
    player = Player(context, session["launch_url"])
    player.wait_running("playing_item")
    order = [*CONTENT, "assessment_item"]
    nodes = toc_nodes(player)
    org = root_id(player)
    assert toc_buttons(player) == [org, "playing_item"]  # the organization (starts over) and the first SCO
    for later in order[1:]:
        assert nodes[later]["visible"] and not nodes[later]["selectable"] and nodes[later]["status"]["disabled"]
        assert player.page.locator(f'#toc span[data-activity="{later}"]').is_visible()
        assert player.values()[f"adl.nav.request_valid.choice.{{target={later}}}"] == "false"
    assert player.values()["adl.nav.request_valid.choice.{target=playing_item}"] == "true"

    # The content itself asks to skip ahead: the SCO ends, the server refuses, nothing else is delivered
    # and the learner picks up the first SCO again from the table of contents.
    launchpage(player).evaluate(
        """() => { ScormProcessSetValue("adl.nav.request", "{target=handicapping_item}choice"); doUnload(); }"""
    )
    player.page.wait_for_function("() => window.scormPlayer.current.done === true")
    player.wait_settled()
    assert player.commits[-1]["terminate"] and player.sent("adl.nav.request") == "{target=handicapping_item}choice"
    player.page.wait_for_function("() => document.getElementById('message').textContent !== ''")
    assert "not possible" in player.message()
    assert not player.state()["ended"]
    assert toc_buttons(player) == [org, "playing_item"]
    assert player.page.locator("#content").count() == 0  # the SCO is over: the player took it off the screen
    assert appliance.session(session["id"])["current_activity"] == "playing_item"
    sent = len(player.commits)
    assert press(player, '#toc button[data-activity="playing_item"]') == "playing_item"
    assert all(c["changes"] for c in player.commits[sent:])  # no empty commit for the SCO that terminated
    assert player.values()["cmi.entry"] == "resume"

    # Satisfying each SCO opens the next one, in order, and only that one.
    for index, activity in enumerate(order[:-1]):
        read_through(player, activity)
        assert go_on(player) == order[index + 1]
        assert toc_buttons(player) == [org, *order[: index + 2]]
    topics, score = take_quiz(player, right=True)
    assert topics == ["Playing", "Etiquette", "Handicapping", "HavingFun"] and score == 100
    assert go_on(player) is None  # continue past the last activity ends the course
    assert player.message() == "You have finished. You can close this window."
    assert player.error_dialogs() == []
    assert set(player.commit_statuses) == {200}

    stored = appliance.session(session["id"])
    assert (stored["status"], stored["completion_status"], stored["success_status"]) == (
        "passed",
        "completed",
        "passed",
    )
    assert set(stored["activities"]) == set(order)


# -- post-test rollup --------------------------------------------------------------------------------------------


def test_post_test_rollup_only_the_post_test_decides_the_course(appliance: Appliance, context: BrowserContext) -> None:
    # The same prerequisites as forced sequential, but the content SCOs share rollupRules with
    # rollupObjectiveSatisfied="false", rollupProgressCompletion="false" and objectiveMeasureWeight="0":
    # the quiz alone (weight 1) rolls up to the course.
    session = appliance.new_session(POST_TEST)
    player = Player(context, session["launch_url"])
    order = [*CONTENT, "assessment_item"]
    for index, activity in enumerate(order[:-1]):
        read_through(player, activity)
        assert go_on(player) == order[index + 1]
    # Four SCOs completed and passed, and the course still knows nothing.
    assert root_status(player)["completion"] == "unknown"
    assert root_status(player)["success"] == "unknown"
    assert root_status(player)["measure"] is None
    stored = appliance.session(session["id"])
    for activity in CONTENT:
        cmi = stored["activities"][activity]["cmi"]
        assert (cmi["cmi.completion_status"], cmi["cmi.success_status"]) == ("completed", "passed")
    assert (stored["status"], stored["success_status"]) == ("incomplete", "unknown")

    topics, score = take_quiz(player, right=True, wrong=3)
    assert topics == ["Playing", "Etiquette", "Handicapping", "HavingFun"] and score == 80
    assert go_on(player) is None
    root = root_status(player)
    assert (root["completion"], root["success"]) == ("completed", "passed")
    assert root["measure"] == pytest.approx(0.8)  # the quiz's scaled score, the only weighted measure
    stored = appliance.session(session["id"])
    assert (stored["status"], stored["completion_status"], stored["success_status"]) == (
        "passed",
        "completed",
        "passed",
    )
    assert stored["score"]["scaled"] == pytest.approx(0.8)
    assert player.error_dialogs() == []
    assert set(player.commit_statuses) == {200}


# -- random test -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("second_try", ["passed", "failed"])
def test_random_test_delivers_a_randomly_ordered_test_on_each_attempt(
    appliance: Appliance, context: BrowserContext, second_try: str
) -> None:
    # The content sits in an invisible wrapper that is satisfied when all four SCOs are completed; its global
    # objective enables the Post Test. The Post Test holds four hidden single-topic tests, reordered on
    # each new attempt (randomizationControls reorderChildren, onEachNewAttempt; no selectCount, so all
    # four stay available), with choice off: flow delivers the first test of the attempt's order. Each test
    # exits to the Post Test, which retries while it is not satisfied and its attemptLimit (2) allows, and
    # otherwise exits the course.
    session = appliance.new_session(RANDOM)
    player = Player(context, session["launch_url"])
    player.wait_running("playing_item")
    # The organization, then the content: the invisible wrapper is left out, its children are listed.
    assert toc_buttons(player) == [root_id(player), *CONTENT]
    assert player.page.locator('#toc span[data-activity="posttest_item"]').is_visible()  # disabled for now
    assert player.page.locator("#toc [data-activity^=test_]").count() == 0
    for activity in CONTENT:
        read_through(player, activity)
        delivered = go_on(player)

    for attempt, right in ((1, False), (2, second_try == "passed")):
        post_test = toc_nodes(player)["posttest_item"]
        order = [child["id"] for child in post_test["children"]]
        assert sorted(order) == sorted(TESTS)  # the whole set, in this attempt's random order
        assert delivered == order[0]
        assert post_test["status"]["attempts"] == attempt
        assert player.page.locator("#nav-suspendAll").is_hidden()  # the tests' hideLMSUI
        topics, score = take_quiz(player, right=right)
        assert topics == [TESTS[delivered]]  # one topic's questions, the delivered test's
        assert score == (100 if right else 0)
        delivered = go_on(player)
    assert delivered is None  # passed, or out of attempts: the Post Test exits the course
    assert player.error_dialogs() == []

    stored = appliance.session(session["id"])
    tests = {a: v for a, v in stored["activities"].items() if a in TESTS}
    assert 1 <= len(tests) <= 2 and sum(v["attempt"] for v in tests.values()) == 2
    # The root completes once the Post Test is satisfied or out of attempts; only the Post Test's
    # satisfaction rolls up (the content wrapper does not count).
    assert stored["completion_status"] == "completed"
    assert (stored["status"], stored["success_status"]) == (second_try, second_try)
    assert root_status(player)["success"] == second_try


# -- simple remediation --------------------------------------------------------------------------------------------


def test_simple_remediation_delivers_the_content_of_a_failed_test_again(
    appliance: Appliance, context: BrowserContext
) -> None:
    # Flow only. Four content SCOs, then four tests, all in a retryable (invisible) wrapper. Each test
    # writes its learning objective's global; content and tests skip themselves when their objective is
    # satisfied (a precondition from the sequencing collection). The last test exits the wrapper, which
    # retries itself while it is not satisfied: only what was failed is delivered again.
    session = appliance.new_session(REMEDIATION)
    player = Player(context, session["launch_url"])
    player.wait_running("playing_item")
    assert toc_buttons(player) == []  # no choice anywhere
    assert player.page.locator("#nav-continue").is_visible()
    sequence = [*CONTENT, *TESTS]
    for index, activity in enumerate(CONTENT):
        read_through(player, activity)
        assert go_on(player) == sequence[index + 1]

    results = {"test_1": True, "test_2": False, "test_3": True, "test_4": True}
    delivered: str | None = None
    for test, right in results.items():
        player.wait_running(test)
        topics, score = take_quiz(player, right=right)
        assert topics == [TESTS[test]] and score == (100 if right else 0)
        delivered = go_on(player)
        if test != "test_4":
            assert delivered == f"test_{int(test[-1]) + 1}"
    # Remediation: the etiquette test failed, so its content comes back; everything passed is skipped.
    assert delivered == "etuqiette_item"
    assert root_status(player)["success"] == "failed"
    assert appliance.session(session["id"])["success_status"] == "failed"
    read_through(player, "etuqiette_item")
    assert go_on(player) == "test_2"
    topics, score = take_quiz(player, right=True)
    assert topics == ["Etiquette"] and score == 100
    assert go_on(player) is None  # the rest is satisfied and skipped: the course is over
    assert player.error_dialogs() == []

    stored = appliance.session(session["id"])
    attempts = {activity: data["attempt"] for activity, data in stored["activities"].items()}
    assert attempts == {
        "playing_item": 1,
        "etuqiette_item": 2,
        "handicapping_item": 1,
        "havingfun_item": 1,
        "test_1": 1,
        "test_2": 2,
        "test_3": 1,
        "test_4": 1,
    }
    assert (stored["status"], stored["completion_status"], stored["success_status"]) == (
        "passed",
        "completed",
        "passed",
    )
