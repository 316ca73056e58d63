"""What an AU may write during its session: the cmi5 statement rules the LMS enforces (cmi5 §9, §10).

The LRS calls `check` for every statement that arrives with an AU session's token, before storing it;
a statement that breaks a rule is refused with 403 and the requirement it breaks (CATAPULT's runtime
tests send each kind and expect exactly that). Rules for every statement: an id and a UTC timestamp,
the launch actor, the session's context template (session id, publisher grouping), nothing before
`initialized` or after `terminated`/`abandoned`, no voiding. Rules for *cmi5 defined* statements (an
AU verb and the cmi5 category): the AU's activity id as object, the registration, each verb once a
session, the result properties each verb needs and no others, the masteryScore, the moveOn category,
and — across the registration — no second `completed` or `passed`, no `failed` after `passed`.

`record` gives the session and registration state after an accepted statement.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from appliance.core.cmi5 import vocabulary as v


class Rejected(Exception):
    """A statement the LMS must refuse (403): `requirement` is the cmi5 requirement id it breaks."""

    def __init__(self, requirement: str, message: str) -> None:
        super().__init__(f"{message} (cmi5 {requirement})")
        self.requirement = requirement
        self.message = message


class AuSession(msgspec.Struct, frozen=True):
    """One AU session as the LMS launched it, and what has happened in it so far."""

    registration: str
    session_id: str
    activity_id: str  # the LMS-generated id of the AU for this registration (§8.1.5): the object id
    publisher_id: str  # the AU's id in the course structure, in the context template's grouping
    actor: dict[str, Any]
    mastery_score: float | None = None
    launch_mode: str = "Normal"
    initialized: bool = False
    ended: str | None = None  # "terminated" or "abandoned"
    verbs: frozenset[str] = frozenset()  # cmi5 defined verbs used in this session

    def context_template(self) -> dict[str, Any]:
        """The contextTemplate of LMS.LaunchData (§10.2.1): what every AU statement's context must hold."""
        return {
            "contextActivities": {"grouping": [{"id": self.publisher_id}]},
            "extensions": {v.EXT_SESSION_ID: self.session_id},
        }


class AuRegistration(msgspec.Struct, frozen=True):
    """The AU's results across every session of the registration."""

    completed: bool = False
    passed: bool = False
    failed: bool = False


_UTC = re.compile(r"(Z|[+-]00:?00)$")


def cmi5_defined(statement: dict[str, Any]) -> bool:
    """A statement with an AU verb and the cmi5 category activity (§9.3: "cmi5 defined")."""
    return _verb(statement) in v.AU_VERBS and v.CATEGORY_CMI5 in _category_ids(statement)


def check(statement: dict[str, Any], session: AuSession, registration: AuRegistration) -> None:
    """Refuse (Rejected) a statement the AU may not write now; return when it may be stored."""
    _check_session_open(statement, session)
    _check_basics(statement, session)
    if cmi5_defined(statement):
        _check_defined(statement, session, registration)
    elif v.CATEGORY_MOVE_ON in _category_ids(statement):
        raise Rejected(
            "9.6.2.2-2 (d)", "only cmi5 defined completed, passed and failed statements carry the moveOn category"
        )
    elif _verb(statement) in v.LMS_VERBS and v.CATEGORY_CMI5 in _category_ids(statement):
        raise Rejected("9.3.0.0-2 (d)", "launched, abandoned, waived and satisfied are written by the LMS, not the AU")


def record(
    statement: dict[str, Any], session: AuSession, registration: AuRegistration
) -> tuple[AuSession, AuRegistration]:
    """The session and registration after `statement` (already accepted by `check`) is stored."""
    if not cmi5_defined(statement):
        return session, registration
    verb = _verb(statement)
    session = msgspec.structs.replace(
        session,
        initialized=session.initialized or verb == v.INITIALIZED,
        ended="terminated" if verb == v.TERMINATED else session.ended,
        verbs=session.verbs | {verb},
    )
    registration = AuRegistration(
        completed=registration.completed or verb == v.COMPLETED,
        passed=registration.passed or verb == v.PASSED,
        failed=registration.failed or verb == v.FAILED,
    )
    return session, registration


# -- every statement ------------------------------------------------------------------------------------


def _check_session_open(statement: dict[str, Any], session: AuSession) -> None:
    if session.ended == "abandoned":
        raise Rejected("9.3.6.0-2 (d2)", "the session was abandoned; it takes no more statements")
    if session.ended == "terminated":
        raise Rejected("9.3.0.0-5 (d2)", "the session was terminated; it takes no more statements")
    if not session.initialized and not (cmi5_defined(statement) and _verb(statement) == v.INITIALIZED):
        raise Rejected("9.3.0.0-4 (d2)", "the first statement of a session must be the cmi5 initialized statement")


def _check_basics(statement: dict[str, Any], session: AuSession) -> None:
    if not statement.get("id"):
        raise Rejected("9.1.0.0-1 (d)", "the statement has no id")
    timestamp = statement.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp:
        raise Rejected("9.7.0.0-1 (d)", "the statement has no timestamp")
    if not _UTC.search(timestamp):
        raise Rejected("9.7.0.0-2 (d)", f"the timestamp {timestamp!r} is not in UTC")
    if _verb(statement) == v.VOIDED:
        raise Rejected("6.3.0.0-1", "an AU may not void statements")
    _check_actor(statement.get("actor"), session)
    context = statement.get("context")
    if not isinstance(context, dict):
        raise Rejected("9.6.0.0-1 (d)", "the statement has no context (the contextTemplate of LMS.LaunchData)")
    extensions = context.get("extensions") if isinstance(context.get("extensions"), dict) else {}
    if extensions.get(v.EXT_SESSION_ID) != session.session_id:
        raise Rejected("9.6.3.1-4 (d)", "the context's session id extension is missing or not this session's")
    grouping = _activity_ids(context, "grouping")
    if session.publisher_id not in grouping:
        raise Rejected("10.2.1.0-7 (d)", "the context's grouping lacks the AU's publisher id (the contextTemplate)")


def _check_actor(actor: object, session: AuSession) -> None:
    if not isinstance(actor, dict) or actor.get("objectType", "Agent") != "Agent":
        raise Rejected("9.2.0.0-2", "the actor must be the launch's Agent")
    if actor.get("account") != session.actor.get("account") or any(
        k in actor for k in ("mbox", "mbox_sha1sum", "openid")
    ):
        raise Rejected("9.2.0.0-3", "the actor must be the Agent (its account) the LMS launched the AU with")


# -- cmi5 defined statements -----------------------------------------------------------------------------


def _check_defined(statement: dict[str, Any], session: AuSession, registration: AuRegistration) -> None:
    verb = _verb(statement)
    context = statement["context"]
    if context.get("registration") != session.registration:
        raise Rejected("9.6.1.0-1 (d)", "the context's registration is missing or not the launch's")
    obj = statement.get("object")
    if not isinstance(obj, dict) or obj.get("id") != session.activity_id:
        raise Rejected("8.1.5.0-6 (d)", "the object must be the AU's activity id given at launch")
    if verb in v.SATISFACTION_VERBS and session.launch_mode != "Normal":
        requirement = "10.2.2.0-2 (d)" if session.launch_mode == "Browse" else "10.2.2.0-3 (d)"
        raise Rejected(requirement, f"no completed, passed or failed in {session.launch_mode} mode")
    _check_result(verb, statement.get("result"), context, session)  # the form first: the most telling reason
    if verb in session.verbs:
        requirement = "9.3.2.0-3 (d)" if verb == v.INITIALIZED else "9.3.0.0-2 (d)"
        raise Rejected(requirement, "this verb was already used in this session")
    _check_registration(verb, session, registration)


def _check_result(verb: str, result: object, context: dict[str, Any], session: AuSession) -> None:
    result = result if isinstance(result, dict) else {}
    score = result.get("score")
    if score is not None and verb not in (v.PASSED, v.FAILED):
        raise Rejected("9.5.1.0-2 (d)", "only passed and failed statements carry a score")
    if isinstance(score, dict) and "raw" in score:
        if "min" not in score:
            raise Rejected("9.5.1.0-3 (d1)", "a raw score needs score.min")
        if "max" not in score:
            raise Rejected("9.5.1.0-3 (d2)", "a raw score needs score.max")
    if "success" in result and verb not in (v.PASSED, v.FAILED):
        raise Rejected("9.5.2.0-3 (d)", "only passed and failed statements carry result.success")
    if verb == v.PASSED and result.get("success") is not True:
        raise Rejected("9.5.2.0-1 (d1)", "a passed statement needs result.success true")
    if verb == v.FAILED and result.get("success") is not False:
        raise Rejected("9.5.2.0-2 (d)", "a failed statement needs result.success false")
    if "completion" in result and verb != v.COMPLETED:
        raise Rejected("9.5.3.0-2 (d)", "only completed statements carry result.completion")
    if verb == v.COMPLETED and result.get("completion") is not True:
        raise Rejected("9.5.3.0-1 (d1)", "a completed statement needs result.completion true")
    durations = {
        v.TERMINATED: "9.5.4.1-1 (d)",
        v.COMPLETED: "9.5.4.1-2 (d)",
        v.PASSED: "9.5.4.1-3 (d)",
        v.FAILED: "9.5.4.1-4 (d)",
    }
    if verb in durations and "duration" not in result:
        raise Rejected(durations[verb], "this statement needs result.duration")
    categories = _activity_ids(context, "category")
    if verb in v.SATISFACTION_VERBS and v.CATEGORY_MOVE_ON not in categories:
        requirement = {v.COMPLETED: "9.6.2.2-1 (d1)", v.PASSED: "9.6.2.2-1 (d2)", v.FAILED: "9.6.2.2-1 (d3)"}[verb]
        raise Rejected(requirement, "completed, passed and failed statements need the moveOn category")
    if verb not in v.SATISFACTION_VERBS and v.CATEGORY_MOVE_ON in categories:
        raise Rejected("9.6.2.2-2 (d)", "only completed, passed and failed statements carry the moveOn category")
    if verb in (v.PASSED, v.FAILED) and session.mastery_score is not None:
        _check_mastery(verb, score, context, session.mastery_score)


def _check_mastery(verb: str, score: object, context: dict[str, Any], mastery: float) -> None:
    extensions = context.get("extensions") if isinstance(context.get("extensions"), dict) else {}
    if extensions.get(v.EXT_MASTERY_SCORE) != mastery:
        raise Rejected("9.6.3.2-2 (d)", "passed and failed statements carry the launch's masteryScore extension")
    scaled = score.get("scaled") if isinstance(score, dict) else None
    if isinstance(scaled, int | float):
        if verb == v.PASSED and scaled < mastery:
            raise Rejected("9.3.4.0-2 (d2)", f"a passed statement's scaled score is below the masteryScore {mastery}")
        if verb == v.FAILED and scaled >= mastery:
            raise Rejected("9.3.5.0-2 (d)", f"a failed statement's scaled score reaches the masteryScore {mastery}")


def _check_registration(verb: str, session: AuSession, registration: AuRegistration) -> None:
    if verb in (v.PASSED, v.FAILED) and session.verbs & {v.PASSED, v.FAILED}:
        raise Rejected("9.3.0.0-3 (d)", "only the first passed or failed statement of a session is accepted")
    if verb == v.COMPLETED and registration.completed:
        raise Rejected("9.3.0.0-6 (d2)", "the AU was already completed in this registration")
    if verb == v.PASSED and registration.passed:
        raise Rejected("9.3.0.0-7 (d2)", "the AU was already passed in this registration")
    if verb == v.FAILED and registration.passed:
        raise Rejected("9.3.0.0-8 (d)", "the AU was already passed in this registration")


# -- reading statements -----------------------------------------------------------------------------------


def _verb(statement: dict[str, Any]) -> str | None:
    verb = statement.get("verb")
    return verb.get("id") if isinstance(verb, dict) else None


def _activity_ids(context: object, kind: str) -> set[str]:
    if not isinstance(context, dict):
        return set()
    activities = context.get("contextActivities")
    listed = activities.get(kind) if isinstance(activities, dict) else None
    if isinstance(listed, dict):
        listed = [listed]
    return {a.get("id") for a in listed or () if isinstance(a, dict) and isinstance(a.get("id"), str)}


def _category_ids(statement: dict[str, Any]) -> set[str]:
    return _activity_ids(statement.get("context"), "category")
