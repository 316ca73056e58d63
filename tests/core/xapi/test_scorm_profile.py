"""appliance.core.xapi.scorm_profile: SCORM run-time changes to xAPI statements (the ADL SCORM profile)."""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

from appliance.core.xapi import scorm_profile as p
from appliance.core.xapi.scorm_profile import Sco, SessionFacts
from appliance.core.xapi.statement_normalization import normalize_statement
from appliance.core.xapi.validation import validate_statement

HOME = "https://lms.example.org"
NOW = 1_780_000_000.25
FACTS_2004 = SessionFacts("ses_abc", "learner-7", "Ada L.", "pkg_golf", "Golf Explained", "2004 4th Edition")
FACTS_12 = SessionFacts("ses_def", "learner-8", "", "pkg_quiz", "Quiz 1.2", "1.2")
SCO = Sco("item_1", "Playing the game", 1)
V = "http://adlnet.gov/expapi/verbs/"
A = "http://adlnet.gov/expapi/activities/"


def statements(facts: SessionFacts, events: list[p.Event]) -> list[dict[str, Any]]:
    """The events' statements, each checked by the LRS's own validation in both xAPI versions (the
    store takes them as they are, so they must be valid and already in the stored shape)."""
    counter = itertools.count(1)
    found = p.to_statements(HOME, facts, events, lambda: f"00000000-0000-4000-8000-{next(counter):012d}")
    for statement in found:
        validate_statement(statement, "1.0.3")
        validate_statement(statement, "2.0.0")
        assert normalize_statement(copy.deepcopy(statement)) == statement
    return found


def verbs(found: list[dict[str, Any]]) -> list[str]:
    return [s["verb"]["id"].removeprefix(V) for s in found]


def commit(facts: SessionFacts, before: dict[str, str], changes: dict[str, str]) -> list[dict[str, Any]]:
    after = {**before, **changes}
    return statements(facts, p.commit_events(facts.scorm_version, SCO, before, after, changes, NOW))


# -- the statement's frame ---------------------------------------------------------------------------


def test_every_statement_has_the_learner_account_registration_course_attempt_and_profile() -> None:
    [s] = statements(FACTS_2004, p.delivery_events("2004 4th Edition", SCO, {"cmi.entry": "ab-initio"}, NOW))
    assert s["id"] == "00000000-0000-4000-8000-000000000001"
    assert s["actor"] == {"objectType": "Agent", "account": {"homePage": HOME, "name": "learner-7"}, "name": "Ada L."}
    assert s["verb"] == {"id": V + "initialized", "display": {"en-US": "initialized"}}
    course = f"{HOME}/scorm/packages/pkg_golf"
    assert s["object"] == {
        "objectType": "Activity",
        "id": f"{course}/scos/item_1",
        "definition": {"type": A + "lesson", "name": {"und": "Playing the game"}},
    }
    context = s["context"]
    assert context["registration"] == str(uuid.uuid5(p.NAMESPACE, "ses_abc"))
    assert uuid.UUID(context["registration"]).version == 5
    attempt, grouped_course = context["contextActivities"]["grouping"]
    assert attempt["id"].startswith(f"{course}/scos/item_1?attemptId=")
    assert attempt["definition"] == {"type": A + "attempt"}
    assert grouped_course == {
        "objectType": "Activity",
        "id": course,
        "definition": {"type": A + "course", "name": {"und": "Golf Explained"}},
    }
    assert context["contextActivities"]["category"] == [
        {"objectType": "Activity", "id": "https://w3id.org/xapi/scorm", "definition": {"type": A + "profile"}}
    ]
    assert "parent" not in context["contextActivities"] and "result" not in s
    assert s["timestamp"] == "2026-05-28T20:26:40.250Z"


def test_a_learner_without_a_name_is_an_account_alone_and_ids_are_escaped_in_iris() -> None:
    sco = Sco("item 2/ä", "Two", 3)
    [s] = statements(FACTS_12, p.delivery_events("1.2", sco, {"cmi.core.entry": "ab-initio"}, NOW))
    assert s["actor"] == {"objectType": "Agent", "account": {"homePage": HOME, "name": "learner-8"}}
    assert s["object"]["id"] == f"{HOME}/scorm/packages/pkg_quiz/scos/item%202%2F%C3%A4"


def test_the_attempt_activity_is_one_per_attempt_and_the_registration_one_per_session() -> None:
    def attempt_of(facts: SessionFacts, sco: Sco) -> str:
        [s] = statements(facts, p.delivery_events(facts.scorm_version, sco, {}, NOW))
        return s["context"]["contextActivities"]["grouping"][0]["id"]

    first = attempt_of(FACTS_2004, SCO)
    assert first == attempt_of(FACTS_2004, SCO)
    assert first != attempt_of(FACTS_2004, Sco("item_1", "Playing the game", 2))
    assert p.registration("ses_abc") == p.registration("ses_abc") != p.registration("ses_abd")


# -- launch, delivery --------------------------------------------------------------------------------


def test_launch_is_launched_the_course() -> None:
    [s] = statements(FACTS_2004, p.launch_events(NOW))
    assert verbs([s]) == ["launched"]
    assert s["object"]["id"] == f"{HOME}/scorm/packages/pkg_golf"
    assert s["object"]["definition"]["type"] == A + "course"
    assert "grouping" not in s["context"]["contextActivities"]


def test_a_delivery_resuming_a_suspended_attempt_is_resumed_in_both_versions() -> None:
    assert verbs(statements(FACTS_2004, p.delivery_events("2004 4th Edition", SCO, {"cmi.entry": "resume"}, NOW))) == [
        "resumed"
    ]
    assert verbs(statements(FACTS_12, p.delivery_events("1.2", SCO, {"cmi.core.entry": "resume"}, NOW))) == ["resumed"]
    assert verbs(statements(FACTS_12, p.delivery_events("1.2", SCO, {"cmi.core.entry": ""}, NOW))) == ["initialized"]


# -- commits -----------------------------------------------------------------------------------------


def test_a_commit_of_bookmarks_and_suspend_data_means_nothing() -> None:
    assert (
        commit(FACTS_2004, {}, {"cmi.location": "p3", "cmi.suspend_data": "x" * 5000, "cmi.session_time": "PT5S"}) == []
    )
    assert commit(FACTS_12, {}, {"cmi.core.lesson_location": "p3", "cmi.suspend_data": "abc"}) == []
    assert not p.is_relevant("2004 4th Edition", ["cmi.location", "cmi.exit", "cmi.score.raw"])
    assert not p.is_relevant("2004 4th Edition", ["cmi.interactions.0.id", "cmi.interactions.0.type"])
    assert p.is_relevant("2004 4th Edition", ["cmi.interactions.0.result"])
    assert p.is_relevant("2004 4th Edition", ["cmi.score.scaled"])  # it may decide success
    assert p.is_relevant("1.2", ["cmi.core.lesson_status"]) and p.is_relevant(
        "1.2", ["cmi.interactions.3.student_response"]
    )
    assert not p.is_relevant("1.2", ["cmi.core.score.raw"])  # a 1.2 score alone decides nothing before LMSFinish


def test_a_resent_value_means_nothing() -> None:
    before = {
        "cmi.completion_status": "completed",
        "cmi.interactions.0.id": "q1",
        "cmi.interactions.0.result": "correct",
    }
    assert (
        commit(FACTS_2004, before, {"cmi.completion_status": "completed", "cmi.interactions.0.result": "correct"}) == []
    )


def test_a_2004_interaction_answered_is_responded_with_its_definition_response_success_and_latency() -> None:
    changes = {
        "cmi.interactions.0.id": "urn:q:golf/par",
        "cmi.interactions.0.type": "choice",
        "cmi.interactions.0.description": "What is par?",
        "cmi.interactions.0.correct_responses._count": "1",
        "cmi.interactions.0.correct_responses.0.pattern": "b[,]c",
        "cmi.interactions.0.learner_response": "b[,]c",
        "cmi.interactions.0.result": "correct",
        "cmi.interactions.0.latency": "PT1M5.5S",
    }
    [s] = commit(FACTS_2004, {}, changes)
    assert verbs([s]) == ["responded"]
    sco = f"{HOME}/scorm/packages/pkg_golf/scos/item_1"
    assert s["object"] == {
        "objectType": "Activity",
        "id": f"{sco}/interactions/urn%3Aq%3Agolf%2Fpar",
        "definition": {
            "type": A + "cmi.interaction",
            "description": {"und": "What is par?"},
            "interactionType": "choice",
            "correctResponsesPattern": ["b[,]c"],
        },
    }
    assert s["result"] == {"response": "b[,]c", "success": True, "duration": "PT0H1M5.5S"}
    activities = s["context"]["contextActivities"]
    assert [a["id"] for a in activities["parent"]] == [sco]
    assert activities["grouping"][1]["id"] == f"{HOME}/scorm/packages/pkg_golf"


def test_each_interaction_answered_in_a_commit_is_one_statement_in_index_order() -> None:
    changes = {}
    for n, (kind, response, result) in enumerate(
        [("numeric", "4", "incorrect"), ("fill-in", "eagle", "neutral"), ("long-fill-in", "a long answer", "")]
    ):
        changes |= {
            f"cmi.interactions.{n}.id": f"q{n}",
            f"cmi.interactions.{n}.type": kind,
            f"cmi.interactions.{n}.learner_response": response,
        }
        if result:
            changes[f"cmi.interactions.{n}.result"] = result
    found = commit(FACTS_2004, {}, changes)
    assert [s["object"]["id"].rsplit("/", 1)[1] for s in found] == ["q0", "q1", "q2"]
    assert [s["result"] for s in found] == [
        {"response": "4", "success": False},
        {"response": "eagle"},  # neutral: neither right nor wrong
        {"response": "a long answer"},
    ]
    assert [s["object"]["definition"]["interactionType"] for s in found] == ["numeric", "fill-in", "long-fill-in"]


def test_an_interaction_defined_but_not_answered_is_not_a_statement() -> None:
    assert commit(FACTS_2004, {}, {"cmi.interactions.0.id": "q0", "cmi.interactions.0.type": "choice"}) == []


def test_a_1_2_interaction_response_is_written_in_xapi_formats() -> None:
    changes = {
        "cmi.interactions.0.id": "tf",
        "cmi.interactions.0.type": "true-false",
        "cmi.interactions.0.correct_responses.0.pattern": "t",
        "cmi.interactions.0.student_response": "f",
        "cmi.interactions.0.result": "wrong",
        "cmi.interactions.0.latency": "0000:00:12.5",
        "cmi.interactions.1.id": "ch",
        "cmi.interactions.1.type": "choice",
        "cmi.interactions.1.student_response": "a,c",
        "cmi.interactions.1.result": "correct",
        "cmi.interactions.2.id": "ma",
        "cmi.interactions.2.type": "matching",
        "cmi.interactions.2.correct_responses.0.pattern": "1.a,2.b",
        "cmi.interactions.2.student_response": "1.b,2.a",
        "cmi.interactions.2.result": "unanticipated",
    }
    tf, choice, matching = commit(FACTS_12, {}, changes)
    assert tf["object"]["definition"]["correctResponsesPattern"] == ["true"]
    assert tf["result"] == {"response": "false", "success": False, "duration": "PT0H0M12.5S"}
    assert choice["result"] == {"response": "a[,]c", "success": True}
    assert "correctResponsesPattern" not in choice["object"]["definition"]
    assert matching["object"]["definition"]["correctResponsesPattern"] == ["1[.]a[,]2[.]b"]
    assert matching["result"] == {"response": "1[.]b[,]2[.]a"}


def test_an_interaction_of_no_known_type_has_no_interaction_type_nor_pattern() -> None:
    changes = {
        "cmi.interactions.0.type": "essay",  # not a type of either version: data from elsewhere
        "cmi.interactions.0.correct_responses.0.pattern": "x",
        "cmi.interactions.0.learner_response": "x",
    }
    [s] = commit(FACTS_2004, {}, changes)
    assert s["object"]["definition"] == {"type": A + "cmi.interaction"}
    assert s["object"]["id"].endswith("/interactions/0")  # no id: its index


def test_2004_completion_and_success_are_completed_then_passed_with_the_score() -> None:
    changes = {
        "cmi.completion_status": "completed",
        "cmi.success_status": "passed",
        "cmi.score.scaled": "0.85",
        "cmi.score.raw": "85",
        "cmi.score.min": "0",
        "cmi.score.max": "100",
    }
    completed, passed = commit(FACTS_2004, {"cmi.completion_status": "incomplete"}, changes)
    assert verbs([completed, passed]) == ["completed", "passed"]
    expected = {"score": {"scaled": 0.85, "raw": 85.0, "min": 0.0, "max": 100.0}, "success": True, "completion": True}
    assert completed["result"] == passed["result"] == expected
    assert completed["object"]["id"].endswith("/scos/item_1")


def test_2004_failed_then_passed_later_are_each_a_statement_and_incomplete_is_none() -> None:
    assert commit(FACTS_2004, {}, {"cmi.completion_status": "incomplete"}) == []
    [failed] = commit(FACTS_2004, {}, {"cmi.success_status": "failed", "cmi.score.scaled": "0.2"})
    assert verbs([failed]) == ["failed"] and failed["result"] == {"score": {"scaled": 0.2}, "success": False}
    before = {"cmi.success_status": "failed", "cmi.score.scaled": "0.2"}
    [passed] = commit(FACTS_2004, before, {"cmi.success_status": "passed", "cmi.score.scaled": "0.9"})
    assert verbs([passed]) == ["passed"]


def test_2004_success_evaluated_from_the_passing_score_counts_as_reported() -> None:
    before = {"cmi.scaled_passing_score": "0.7", "cmi.success_status": "unknown"}
    [passed] = commit(FACTS_2004, before, {"cmi.score.scaled": "0.75"})
    assert verbs([passed]) == ["passed"] and passed["result"]["success"] is True


def test_2004_progress_is_progressed_when_it_grows() -> None:
    [s] = commit(FACTS_2004, {"cmi.progress_measure": "0.25"}, {"cmi.progress_measure": "0.5"})
    assert verbs([s]) == ["progressed"] and s["result"] == {"score": {"scaled": 0.5}}
    assert commit(FACTS_2004, {"cmi.progress_measure": "0.5"}, {"cmi.progress_measure": "0.4"}) == []
    assert commit(FACTS_2004, {}, {"cmi.progress_measure": "0"}) == []  # a default, not progress


def test_1_2_passed_is_completed_and_passed_with_the_scaled_score_of_the_range() -> None:
    changes = {
        "cmi.core.lesson_status": "passed",
        "cmi.core.score.raw": "40",
        "cmi.core.score.min": "20",
        "cmi.core.score.max": "60",
    }
    completed, passed = commit(FACTS_12, {"cmi.core.lesson_status": "incomplete"}, changes)
    assert verbs([completed, passed]) == ["completed", "passed"]
    assert passed["result"] == {
        "score": {"scaled": 0.5, "raw": 40.0, "min": 20.0, "max": 60.0},
        "success": True,
        "completion": True,
    }


def test_1_2_score_without_range_is_scaled_by_100_and_bounds_that_do_not_hold_are_left_out() -> None:
    [s] = commit(FACTS_12, {}, {"cmi.core.lesson_status": "completed", "cmi.core.score.raw": "72"})
    assert s["result"] == {"score": {"scaled": 0.72, "raw": 72.0}, "completion": True}
    changes = {"cmi.core.lesson_status": "failed", "cmi.core.score.raw": "120", "cmi.core.score.max": "100"}
    _, failed = commit(FACTS_12, {}, changes)
    assert failed["result"]["score"] == {"scaled": 1.0, "raw": 120.0}  # raw above max: max left out


# -- Terminate ---------------------------------------------------------------------------------------


def test_a_2004_terminate_with_suspend_is_suspended_with_the_session_time_and_result() -> None:
    before = {"cmi.completion_status": "incomplete", "cmi.score.scaled": "0.4"}
    ended = {**before, "cmi.exit": "suspend", "cmi.total_time": "PT10M"}
    [s] = statements(FACTS_2004, p.terminate_events("2004 4th Edition", SCO, before, ended, 95.5, NOW))
    assert verbs([s]) == ["suspended"]
    assert s["result"] == {"score": {"scaled": 0.4}, "completion": False, "duration": "PT0H1M35.5S"}
    assert s["object"]["id"].endswith("/scos/item_1")


def test_a_2004_terminate_answering_and_passing_in_its_last_batch_is_each_then_terminated() -> None:
    before = {"cmi.completion_status": "incomplete"}
    ended = {
        "cmi.completion_status": "completed",
        "cmi.success_status": "passed",
        "cmi.score.scaled": "1",
        "cmi.interactions.0.id": "q",
        "cmi.interactions.0.type": "true-false",
        "cmi.interactions.0.learner_response": "true",
        "cmi.interactions.0.result": "correct",
        "cmi.exit": "normal",
    }
    found = statements(FACTS_2004, p.terminate_events("2004 4th Edition", SCO, before, ended, 3600.0, NOW))
    assert verbs(found) == ["responded", "completed", "passed", "terminated"]
    assert found[-1]["result"] == {
        "score": {"scaled": 1.0},
        "success": True,
        "completion": True,
        "duration": "PT1H0M0S",
    }


def test_a_1_2_terminate_completed_by_the_attempt_rules_without_session_time() -> None:
    before = {"cmi.core.lesson_status": "not attempted"}
    ended = {"cmi.core.lesson_status": "completed", "cmi.core.exit": "", "cmi.core.total_time": "0000:00:00.00"}
    found = statements(FACTS_12, p.terminate_events("1.2", SCO, before, ended, None, NOW))
    assert verbs(found) == ["completed", "terminated"]
    assert found[-1]["result"] == {"completion": True}  # no session time reported: no duration
    suspended = {"cmi.core.lesson_status": "incomplete", "cmi.core.exit": "suspend"}
    [s] = statements(FACTS_12, p.terminate_events("1.2", SCO, before, suspended, 12.0, NOW))
    assert verbs([s]) == ["suspended"] and s["result"] == {"completion": False, "duration": "PT0H0M12S"}


# -- the course --------------------------------------------------------------------------------------


def _row(status: str, **values: Any) -> dict[str, Any]:
    base = {"completion_status": "unknown", "success_status": "unknown", "score_scaled": None}
    return {**base, "status": status, "score_raw": None, "score_min": None, "score_max": None, **values}


def test_the_session_reaching_a_result_is_the_course_result() -> None:
    row = _row("passed", completion_status="completed", success_status="passed", score_scaled=0.9, score_raw=90.0)
    [s] = statements(FACTS_2004, p.course_events("incomplete", row, NOW))
    assert verbs([s]) == ["passed"]
    assert s["object"]["id"] == f"{HOME}/scorm/packages/pkg_golf"
    assert s["result"] == {"score": {"scaled": 0.9, "raw": 90.0}, "success": True, "completion": True}
    assert p.course_events("passed", row, NOW) == []
    assert p.course_events("not_started", _row("incomplete"), NOW) == []
    [completed] = statements(
        FACTS_2004, p.course_events("incomplete", _row("completed", completion_status="completed"), NOW)
    )
    assert verbs([completed]) == ["completed"] and completed["result"] == {"completion": True}
