"""The AU statement rules (appliance.core.cmi5.au_rules), replayed as CATAPULT's invalid-AU package
(lts/pkg/src/005-1-invalid-au) sends them: each altered statement refused with its requirement, the
valid ones accepted, in the same order and session."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from msgspec.structs import replace

from appliance.core.cmi5 import vocabulary as v
from appliance.core.cmi5.au_rules import AuRegistration, AuSession, Rejected, check, cmi5_defined, record

ACTOR = {"objectType": "Agent", "account": {"homePage": "https://lms.example.com", "name": "learner-1"}}
SESSION = AuSession(
    registration=str(uuid.uuid4()),
    session_id=str(uuid.uuid4()),
    activity_id="https://lms.example.com/activities/au-1",
    publisher_id="https://w3id.org/xapi/cmi5/catapult/lts/au/005-1-invalid-au",
    actor=ACTOR,
    mastery_score=0.9,
)


def statement(verb: str | None = None, **result: Any) -> dict[str, Any]:
    """A statement as the AU builds it from the launch data (cmi5.js's prepareStatement)."""
    context = copy.deepcopy(SESSION.context_template())
    context["registration"] = SESSION.registration
    st: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-12-03T10:00:00.000Z",
        "actor": copy.deepcopy(ACTOR),
        "verb": {"id": verb or "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": SESSION.activity_id},
        "context": context,
    }
    if verb in v.AU_VERBS:
        context["contextActivities"]["category"] = [{"id": v.CATEGORY_CMI5}]
        if verb in v.SATISFACTION_VERBS:
            context["contextActivities"]["category"].append({"id": v.CATEGORY_MOVE_ON})
        if verb in (v.PASSED, v.FAILED):
            context["extensions"][v.EXT_MASTERY_SCORE] = SESSION.mastery_score
        st["result"] = {"duration": "PT10S", **result} if verb != v.INITIALIZED else {}
        if not st["result"]:
            del st["result"]
    return st


def passed() -> dict[str, Any]:
    return statement(v.PASSED, success=True, score={"min": 0, "max": 100, "scaled": 0.9, "raw": 90})


def failed() -> dict[str, Any]:
    return statement(v.FAILED, success=False, score={"min": 0, "max": 100, "scaled": 0.89, "raw": 89})


TEMPLATES: dict[str, Callable[[], dict[str, Any]]] = {
    "allowed": statement,
    "initialized": lambda: statement(v.INITIALIZED),
    "completed": lambda: statement(v.COMPLETED, completion=True),
    "passed": passed,
    "failed": failed,
    "terminated": lambda: statement(v.TERMINATED),
}


def alter(path: str, value: Any = None, *, delete: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(st: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        node = st
        for key in parents:
            node = node[key]
        if delete:
            del node[last]
        else:
            node[last] = value

    return change


MS = f"context|extensions|{v.EXT_MASTERY_SCORE}"
# (kind, change or None, the requirement refused, or None: accepted) in 005-1-invalid-au's order
SEQUENCE: list[tuple[str, Callable[[dict[str, Any]], None] | None, str | None]] = [
    ("allowed", alter("id", delete=True), "9.1.0.0-1 (d)"),
    ("allowed", alter("timestamp", delete=True), "9.7.0.0-1 (d)"),
    ("allowed", alter("timestamp", "2026-12-03T10:00:00.000-06:00"), "9.7.0.0-2 (d)"),
    ("passed", alter("actor|objectType", "Group"), "9.2.0.0-2"),
    ("passed", lambda st: (st["actor"].pop("account"), st["actor"].update(mbox="mailto:c@example.com")), "9.2.0.0-3"),
    ("initialized", None, "9.3.2.0-3 (d)"),
    ("passed", alter("object|id", "http://example.com/not/the/lms/id"), "8.1.5.0-6 (d)"),
    ("passed", alter("context", delete=True), "9.6.0.0-1 (d)"),
    ("passed", alter("context|registration", delete=True), "9.6.1.0-1 (d)"),
    ("passed", alter("context|registration", "ccaf384c-f8d4-4e7a-8304-49af58f0b176"), "9.6.1.0-1 (d)"),
    ("passed", alter("result|completion", True), "9.5.3.0-2 (d)"),
    ("completed", alter("result|success", True), "9.5.2.0-3 (d)"),
    ("completed", alter("result|completion", delete=True), "9.5.3.0-1 (d1)"),
    ("completed", alter("result|completion", False), "9.5.3.0-1 (d1)"),
    ("completed", alter("result|score", {"raw": 50, "scaled": 0.5, "min": 0, "max": 100}), "9.5.1.0-2 (d)"),
    ("terminated", alter("result", delete=True), "9.5.4.1-1 (d)"),
    ("terminated", alter("result|duration", delete=True), "9.5.4.1-1 (d)"),
    ("completed", alter("result|duration", delete=True), "9.5.4.1-2 (d)"),
    ("passed", alter("result|duration", delete=True), "9.5.4.1-3 (d)"),
    ("failed", alter("result|duration", delete=True), "9.5.4.1-4 (d)"),
    ("completed", None, None),
    ("completed", None, "9.3.0.0-2 (d)"),
    ("passed", alter("result|success", delete=True), "9.5.2.0-1 (d1)"),
    ("passed", alter("result|success", False), "9.5.2.0-1 (d1)"),
    ("failed", alter("result|success", delete=True), "9.5.2.0-2 (d)"),
    ("failed", alter("result|success", True), "9.5.2.0-2 (d)"),
    ("passed", alter("result|score", {"scaled": 0.89}), "9.3.4.0-2 (d2)"),
    ("failed", alter("result|score", {"scaled": 0.9}), "9.3.5.0-2 (d)"),
    ("failed", alter("result|score", {"scaled": 0.91}), "9.3.5.0-2 (d)"),
    ("passed", alter("result|score|min", delete=True), "9.5.1.0-3 (d1)"),
    ("passed", alter("result|score|max", delete=True), "9.5.1.0-3 (d2)"),
    ("completed", lambda st: st["context"]["contextActivities"]["category"].pop(), "9.6.2.2-1 (d1)"),
    ("passed", lambda st: st["context"]["contextActivities"]["category"].pop(), "9.6.2.2-1 (d2)"),
    ("failed", lambda st: st["context"]["contextActivities"]["category"].pop(), "9.6.2.2-1 (d3)"),
    ("allowed", alter("context|contextActivities|category", [{"id": v.CATEGORY_MOVE_ON}]), "9.6.2.2-2 (d)"),
    (
        "terminated",
        lambda st: st["context"]["contextActivities"]["category"].append({"id": v.CATEGORY_MOVE_ON}),
        "9.6.2.2-2 (d)",
    ),
    ("passed", alter(MS, delete=True), "9.6.3.2-2 (d)"),
    ("passed", alter(MS, 0.8), "9.6.3.2-2 (d)"),
    ("allowed", alter(f"context|extensions|{v.EXT_SESSION_ID}", delete=True), "9.6.3.1-4 (d)"),
    ("passed", None, None),
    ("passed", None, "9.3.0.0-2 (d)"),
    ("failed", None, "9.3.0.0-3 (d)"),  # CATAPULT names 9.3.0.0-8: both forbid it; the session rule is met first
]


def test_the_invalid_au_sequence() -> None:
    session, registration = SESSION, AuRegistration()
    with pytest.raises(Rejected) as before:
        check(statement(), session, registration)
    assert before.value.requirement == "9.3.0.0-4 (d2)"
    initialized = statement(v.INITIALIZED)
    check(initialized, session, registration)
    session, registration = record(initialized, session, registration)
    check(statement(), session, registration)  # an allowed statement
    voiding = statement(v.VOIDED)
    voiding["object"] = {"objectType": "StatementRef", "id": str(uuid.uuid4())}
    with pytest.raises(Rejected, match="void"):
        check(voiding, session, registration)
    for kind, change, requirement in SEQUENCE:
        st = TEMPLATES[kind]()
        if change is not None:
            change(st)
        if requirement is None:
            check(st, session, registration)
            session, registration = record(st, session, registration)
            continue
        with pytest.raises(Rejected) as refused:
            check(st, session, registration)
        assert refused.value.requirement == requirement, (kind, requirement, refused.value.message)
    assert registration == AuRegistration(completed=True, passed=True)
    terminated = TEMPLATES["terminated"]()
    check(terminated, session, registration)
    session, registration = record(terminated, session, registration)
    with pytest.raises(Rejected) as after:
        check(statement(), session, registration)
    assert after.value.requirement == "9.3.0.0-5 (d2)"


def test_registration_rules_span_sessions() -> None:
    later = replace(SESSION, initialized=True)
    done = AuRegistration(completed=True, passed=True)
    for kind, requirement in (
        ("completed", "9.3.0.0-6 (d2)"),
        ("passed", "9.3.0.0-7 (d2)"),
        ("failed", "9.3.0.0-8 (d)"),
    ):
        with pytest.raises(Rejected) as refused:
            check(TEMPLATES[kind](), later, done)
        assert refused.value.requirement == requirement


@pytest.mark.parametrize(("mode", "requirement"), [("Browse", "10.2.2.0-2 (d)"), ("Review", "10.2.2.0-3 (d)")])
def test_no_satisfaction_in_browse_or_review(mode: str, requirement: str) -> None:
    session = replace(SESSION, initialized=True, launch_mode=mode)
    with pytest.raises(Rejected) as refused:
        check(TEMPLATES["completed"](), session, AuRegistration())
    assert refused.value.requirement == requirement
    check(TEMPLATES["terminated"](), session, AuRegistration())


def test_abandoned_sessions_take_nothing() -> None:
    session = replace(SESSION, initialized=True, ended="abandoned")
    with pytest.raises(Rejected) as refused:
        check(statement(), session, AuRegistration())
    assert refused.value.requirement == "9.3.6.0-2 (d2)"


def test_what_is_cmi5_defined() -> None:
    assert cmi5_defined(TEMPLATES["passed"]())
    assert not cmi5_defined(statement())
    no_category = TEMPLATES["passed"]()
    no_category["context"]["contextActivities"]["category"] = []
    assert not cmi5_defined(no_category)


def test_the_lms_verbs_are_not_the_aus() -> None:
    session = replace(SESSION, initialized=True)
    st = statement(v.SATISFIED)
    st["context"]["contextActivities"]["category"] = [{"id": v.CATEGORY_CMI5}]
    with pytest.raises(Rejected):
        check(st, session, AuRegistration())
