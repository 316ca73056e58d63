"""The API state machine (rte-rules.md section 2) for 1.2 and 2004."""

from __future__ import annotations

import pytest

from appliance.core.scorm.datamodel import apply_patch
from appliance.core.scorm.model import SCORM_12, SCORM_2004_2ND, SCORM_2004_4TH
from appliance.core.scorm.rte import NOT_INITIALIZED, RUNNING, TERMINATED, ApiInstance


class Recorder:
    """A committer that records what it was given and can refuse."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.calls: list[tuple[dict[str, str], bool]] = []

    def __call__(self, changes: dict[str, str], terminate: bool) -> bool:
        self.calls.append((changes, terminate))
        return self.accept


def answers(api: ApiInstance, *calls: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each call's answer with the last error right after it."""
    return [(getattr(api, name)(*args), api.get_last_error()) for name, *args in calls]


def test_2004_before_initialize() -> None:
    api = ApiInstance(SCORM_2004_4TH)
    assert answers(
        api,
        ("get_value", "cmi.location"),
        ("set_value", "cmi.location", "x"),
        ("commit", ""),
        ("terminate", ""),
    ) == [("", "122"), ("false", "132"), ("false", "142"), ("false", "112")]
    assert api.state == NOT_INITIALIZED


def test_2004_running_and_after_terminate() -> None:
    committer = Recorder()
    api = ApiInstance(SCORM_2004_4TH, {"cmi.learner_id": "u"}, committer=committer)
    assert answers(
        api,
        ("initialize", "x"),
        ("initialize", ""),
        ("initialize", ""),
        ("set_value", "cmi.location", "p3"),
        ("get_value", "cmi.location"),
        ("commit", "x"),
        ("commit", ""),
        ("set_value", "cmi.exit", "suspend"),
        ("terminate", "x"),
        ("terminate", ""),
    ) == [
        ("false", "201"),
        ("true", "0"),
        ("false", "103"),
        ("true", "0"),
        ("p3", "0"),
        ("false", "201"),
        ("true", "0"),
        ("true", "0"),
        ("false", "201"),
        ("true", "0"),
    ]
    assert api.state == TERMINATED
    assert committer.calls == [({"cmi.location": "p3"}, False), ({"cmi.exit": "suspend"}, True)]
    assert answers(
        api,
        ("get_value", "cmi.location"),
        ("set_value", "cmi.location", "x"),
        ("commit", ""),
        ("terminate", ""),
        ("initialize", ""),
    ) == [("", "123"), ("false", "133"), ("false", "143"), ("false", "113"), ("false", "104")]


def test_12_state_machine() -> None:
    committer = Recorder()
    api = ApiInstance(SCORM_12, committer=committer)
    assert answers(
        api,
        ("get_value", "cmi.core.lesson_status"),
        ("terminate", ""),
        ("initialize", "x"),
        ("initialize", ""),
        ("initialize", ""),
        ("set_value", "cmi.core.lesson_status", "completed"),
        ("commit", "x"),
        ("terminate", ""),
        ("get_value", "cmi.core.lesson_status"),
        ("commit", ""),
        ("initialize", ""),
        ("get_value", "cmi.core.lesson_status"),
    ) == [
        ("", "301"),
        ("false", "301"),
        ("false", "201"),
        ("true", "0"),
        ("false", "101"),
        ("true", "0"),
        ("false", "201"),
        ("true", "0"),
        ("", "301"),
        ("false", "301"),
        ("true", "0"),  # 1.2 has no terminated state (Moodle allows re-initializing)
        ("completed", "0"),
    ]
    assert committer.calls == [({"cmi.core.lesson_status": "completed"}, True)]


@pytest.mark.parametrize(("version", "code"), [(SCORM_12, "101"), (SCORM_2004_2ND, "391")])
def test_refused_commit_fails_and_keeps_the_changes(version: str, code: str) -> None:
    committer = Recorder(accept=False)
    api = ApiInstance(version, committer=committer)
    api.initialize()
    element = "cmi.core.lesson_location" if version == SCORM_12 else "cmi.location"
    api.set_value(element, "a")
    assert answers(api, ("commit", ""), ("terminate", "")) == [("false", code), ("false", code)]
    assert api.state == RUNNING
    committer.accept = True
    assert api.terminate() == "true"
    assert committer.calls[-1] == ({element: "a"}, True)
    assert api.changed == {}


def test_error_functions_never_change_the_error_state() -> None:
    api = ApiInstance(SCORM_2004_4TH)
    api.initialize()
    api.set_value("cmi.score.scaled", "2")
    assert api.get_last_error() == "407"
    assert api.get_error_string("407") == "Data Model Element Value Out Of Range"
    assert api.get_error_string("999") == ""
    assert "range" in api.get_diagnostic("")
    assert api.get_diagnostic("407") == api.get_diagnostic("")
    assert api.get_diagnostic("404") == "Data Model Element Is Read Only"
    assert api.get_last_error() == "407"
    assert api.get_value("cmi.score.scaled") == ""
    assert api.get_last_error() == "403"
    assert api.get_diagnostic() == "cmi.score.scaled has not been set"


def test_a_successful_call_resets_the_error() -> None:
    api = ApiInstance(SCORM_12)
    api.initialize()
    api.set_value("cmi.core.student_id", "x")
    assert api.get_last_error() == "403"
    assert api.get_value("cmi.core.lesson_location") == ""
    assert api.get_last_error() == "0"
    assert api.get_diagnostic() == "No error"


def test_changed_elements_are_sent_once_with_their_latest_value() -> None:
    committer = Recorder()
    api = ApiInstance(SCORM_2004_4TH, committer=committer)
    api.initialize()
    api.set_value("cmi.location", "a")
    api.set_value("cmi.location", "b")
    api.set_value("cmi.score.raw", "x")  # refused: not sent
    api.commit()
    api.commit()
    assert committer.calls == [({"cmi.location": "b"}, False), ({}, False)]
    assert api.cmi["cmi.location"] == "b"


def test_without_a_committer_commits_succeed() -> None:
    api = ApiInstance(SCORM_2004_4TH)
    assert answers(api, ("initialize", ""), ("commit", ""), ("terminate", "")) == [("true", "0")] * 3


def test_changes_come_in_first_write_order_so_a_replay_meets_dependencies() -> None:
    committer = Recorder()
    api = ApiInstance(SCORM_2004_4TH, committer=committer)
    api.initialize()
    for element, value in [
        ("cmi.objectives.0.id", "o1"),
        ("cmi.interactions.0.id", "q1"),
        ("cmi.interactions.0.type", "choice"),
        ("cmi.interactions.0.correct_responses.0.pattern", "a"),
        ("cmi.interactions.0.id", "q1b"),
    ]:
        assert api.set_value(element, value) == "true"
    api.commit()
    changes = committer.calls[0][0]
    assert list(changes) == [
        "cmi.objectives.0.id",
        "cmi.interactions.0.id",
        "cmi.interactions.0.type",
        "cmi.interactions.0.correct_responses.0.pattern",
    ]
    assert changes["cmi.interactions.0.id"] == "q1b"
    assert apply_patch(SCORM_2004_4TH, {}, changes)[1] == []
