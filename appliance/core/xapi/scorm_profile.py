"""SCORM sessions as xAPI statements, in the vocabulary of the ADL xAPI SCORM Profile (https://w3id.org/xapi/scorm).

Pure: no I/O. Two steps, so the commit path does only the cheap one:

* **events** (`launch_events`, `delivery_events`, `commit_events`, `terminate_events`, `course_events`):
  from a run-time change (the CMI before and after a commit, a delivery, a Terminate, the session's
  status) to the few compact `Event`s it means: an interaction answered, a status reached, a SCO
  initialized, suspended or terminated. Most commits (suspend_data, location, session_time) mean none,
  and that is decided from the changed element names alone.
* **statements** (`to_statements`): events and the session's facts to xAPI statements — actor, verb,
  object, result, context — in the form `appliance.services.lrs.statements.insert_statements` stores.

The mapping follows the profile: verbs from http://adlnet.gov/expapi/verbs/ (`responded` for an
interaction's response, as the profile requires; `progressed` with `result.score.scaled` for
cmi.progress_measure); the SCO is a `lesson`, the course a `course`, an attempt an `attempt` activity
(`<sco IRI>?attemptId=<uuid>`) in `contextActivities.grouping` with the course; `category` holds the
profile's activity; an interaction is a `cmi.interaction` activity under the SCO (`parent`); session
time becomes `result.duration` of the `terminated` or `suspended` statement; a 1.2 score's `scaled` is
(raw − min) / (max − min), or raw / 100 without both bounds (the profile's note). Default values are not
reported (the profile's "Note About Default Status"): `incomplete` is never a statement, and a
`progressed` statement needs a progress measure that grew.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec

from appliance.core.scorm.attempt import CmiSummary, summarize
from appliance.core.scorm.durations import format_duration, parse_cmi_time
from appliance.core.scorm.model import SCORM_12

PROFILE_ID = "https://w3id.org/xapi/scorm"
VERB_BASE = "http://adlnet.gov/expapi/verbs/"
ACTIVITY_BASE = "http://adlnet.gov/expapi/activities/"
VERBS = (
    "launched",
    "initialized",
    "resumed",
    "responded",
    "progressed",
    "completed",
    "passed",
    "failed",
    "suspended",
    "terminated",
)
# Registrations and attempt ids are UUIDs derived from the session id, so every statement of a session
# (and a re-run of the conversion) carries the same ones; this namespace keeps them apart from others'.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, PROFILE_ID)

# The element names whose change can mean an event, besides an interaction's response or result:
# statuses, and what a 2004 status is evaluated from (progress against the completion threshold, the
# scaled score against the passing score). A 1.2 score alone decides nothing before LMSFinish. A commit
# changing none of them means nothing, however large it is.
_RESULT_ELEMENTS = {
    "1.2": frozenset({"cmi.core.lesson_status"}),
    "2004": frozenset({"cmi.completion_status", "cmi.success_status", "cmi.progress_measure", "cmi.score.scaled"}),
}
_ANSWER_FIELDS = (".learner_response", ".student_response", ".result")
_INTERACTION = re.compile(r"^cmi\.interactions\.(\d+)\.")
_INTERACTION_TYPES = frozenset(
    {
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    }
)


# -- events --------------------------------------------------------------------------------------


class Sco(msgspec.Struct, frozen=True):
    """The SCO a statement is about: its item identifier, title and attempt number in the session."""

    id: str
    title: str
    attempt: int


class Interaction(msgspec.Struct, frozen=True, omit_defaults=True):
    """One cmi.interactions.n record as it stands after the commit that answered it."""

    index: int
    id: str
    type: str | None = None
    description: str | None = None
    response: str | None = None
    result: str | None = None
    latency: str | None = None
    correct: list[str] = []


class Outcome(msgspec.Struct, frozen=True, omit_defaults=True):
    """A statement's `result`, before it is written out (None: not known, left out)."""

    completion: bool | None = None
    success: bool | None = None
    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None
    seconds: float | None = None  # result.duration


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something that happened in a session, as the profile names it (`verb`), at `at` (POSIX seconds).

    Without `sco` it is about the course (launched, a course result)."""

    verb: str
    at: float
    sco: Sco | None = None
    outcome: Outcome | None = None
    interaction: Interaction | None = None
    progress: float | None = None


class SessionFacts(msgspec.Struct, frozen=True):
    """The session and package facts every statement of a session shares."""

    session_id: str
    learner_id: str
    learner_name: str
    package_id: str
    course_title: str
    scorm_version: str


def launch_events(now: float) -> list[Event]:
    """The player launched (or relaunched) the course."""
    return [Event("launched", now)]


def delivery_events(scorm_version: str, sco: Sco, cmi: Mapping[str, str], now: float) -> list[Event]:
    """A SCO delivered for a new session: `resumed` when it continues a suspended attempt (cmi.entry
    resume), else `initialized` (the profile's Entry mapping)."""
    entry = cmi.get("cmi.core.entry" if scorm_version == SCORM_12 else "cmi.entry", "")
    return [Event("resumed" if entry == "resume" else "initialized", now, sco)]


def is_relevant(scorm_version: str, changed: Iterable[str]) -> bool:
    """Whether a commit changing these elements can mean any event (the commit path's fast check)."""
    results = _RESULT_ELEMENTS["1.2" if scorm_version == SCORM_12 else "2004"]
    return any(
        name in results or (name.startswith("cmi.interactions.") and name.endswith(_ANSWER_FIELDS)) for name in changed
    )


def commit_events(
    scorm_version: str,
    sco: Sco,
    before: Mapping[str, str],
    after: Mapping[str, str],
    changed: Iterable[str],
    now: float,
) -> list[Event]:
    """What a plain commit means: interactions answered, progress, completion, success."""
    changed = [name for name in changed if before.get(name) != after.get(name)]
    if not is_relevant(scorm_version, changed):
        return []
    events = [Event("responded", now, sco, interaction=i) for i in _answered(scorm_version, after, changed)]
    events += _status_events(scorm_version, sco, before, after, now)
    return events


def terminate_events(
    scorm_version: str,
    sco: Sco,
    before: Mapping[str, str],
    ended: Mapping[str, str],
    session_seconds: float | None,
    now: float,
) -> list[Event]:
    """What a Terminate means: what its last batch and the attempt rules changed (`before` is the CMI
    stored before that batch, `ended` the CMI after the rules), then `suspended` when the SCO exits
    with suspend, else `terminated` — either with the SCO's result and the session time."""
    changed = [name for name in ended if before.get(name) != ended.get(name)]
    events = [Event("responded", now, sco, interaction=i) for i in _answered(scorm_version, ended, changed)]
    events += _status_events(scorm_version, sco, before, ended, now)
    exit_value = ended.get("cmi.core.exit" if scorm_version == SCORM_12 else "cmi.exit", "")
    summary = summarize(scorm_version, ended)
    outcome = msgspec.structs.replace(_outcome(scorm_version, summary, ended), seconds=session_seconds)
    events.append(Event("suspended" if exit_value == "suspend" else "terminated", now, sco, outcome))
    return events


def course_events(old_status: str, row: Mapping[str, Any], now: float) -> list[Event]:
    """The session's own result (the course's: its only SCO's, or the rollup of several) reaching
    completed, passed or failed — `row` is the session row after the change."""
    status = row["status"]
    if status == old_status or status not in ("completed", "passed", "failed"):
        return []
    completion = {"completed": True, "incomplete": False}.get(row["completion_status"])
    success = {"passed": True, "failed": False}.get(row["success_status"])
    score = _score(row["score_scaled"], row["score_raw"], row["score_min"], row["score_max"])
    return [Event(status, now, outcome=Outcome(completion, success, *score))]


def _status_events(
    scorm_version: str, sco: Sco, before: Mapping[str, str], after: Mapping[str, str], now: float
) -> list[Event]:
    """Progress that grew, completion reached, success decided (or changed), between two CMI states."""
    old, new = summarize(scorm_version, before), summarize(scorm_version, after)
    events: list[Event] = []
    if new.progress_measure is not None and new.progress_measure > (old.progress_measure or 0.0):
        events.append(Event("progressed", now, sco, progress=new.progress_measure))
    outcome = _outcome(scorm_version, new, after)
    if new.completion_status == "completed" and old.completion_status != "completed":
        events.append(Event("completed", now, sco, outcome))
    if new.success_status in ("passed", "failed") and new.success_status != old.success_status:
        events.append(Event(new.success_status, now, sco, outcome))
    return events


def _outcome(scorm_version: str, summary: CmiSummary, cmi: Mapping[str, str]) -> Outcome:
    """The SCO's result as `result` carries it: completion and success when known, the score."""
    completion = {"completed": True, "incomplete": False}.get(summary.completion_status)
    success = {"passed": True, "failed": False}.get(summary.success_status)
    score = _score(summary.score_scaled, summary.score_raw, summary.score_min, summary.score_max)
    return Outcome(completion, success, *score)


def _score(
    scaled: float | None, raw: float | None, low: float | None, high: float | None
) -> tuple[float | None, float | None, float | None, float | None]:
    """A score xAPI accepts: scaled within −1..1; min below max; raw within them (bounds that do not
    hold, which SCORM does not forbid, are left out rather than refused by the LRS)."""
    if scaled is not None and not -1.0 <= scaled <= 1.0:
        scaled = None
    if low is not None and high is not None and low >= high:
        low = high = None
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        low = high = None
    return scaled, raw, low, high


def _answered(scorm_version: str, cmi: Mapping[str, str], changed: Iterable[str]) -> list[Interaction]:
    """The interactions whose response or result this change set (a record's other fields alone —
    its id, type, correct responses — are its definition, not an answer)."""
    response = "student_response" if scorm_version == SCORM_12 else "learner_response"
    indexes = sorted(
        {
            int(m.group(1))
            for name in changed
            if (m := _INTERACTION.match(name)) and name.rsplit(".", 1)[1] in (response, "result")
        }
    )
    found = []
    for n in indexes:
        prefix = f"cmi.interactions.{n}."
        if not cmi.get(prefix + response) and not cmi.get(prefix + "result"):
            continue
        found.append(_interaction(scorm_version, cmi, n, response))
    return found


def _interaction(scorm_version: str, cmi: Mapping[str, str], n: int, response: str) -> Interaction:
    prefix = f"cmi.interactions.{n}."
    kind = cmi.get(prefix + "type") or None
    count = int(cmi.get(prefix + "correct_responses._count", "0") or 0)
    patterns = [cmi.get(f"{prefix}correct_responses.{m}.pattern", "") for m in range(count)]
    if not count:  # a 1.2 record's _count is not stored: read the patterns present
        patterns = [cmi[k] for k in _numbered(cmi, prefix + "correct_responses.", ".pattern")]
    return Interaction(
        index=n,
        id=cmi.get(prefix + "id", "") or str(n),
        type=kind,
        description=cmi.get(prefix + "description") or None,
        response=cmi.get(prefix + response) or None,
        result=cmi.get(prefix + "result") or None,
        latency=cmi.get(prefix + "latency") or None,
        correct=patterns,
    )


def _numbered(cmi: Mapping[str, str], head: str, tail: str) -> list[str]:
    """The keys `head<m>tail` present, in m order."""
    keys = [(int(k[len(head) : -len(tail)]), k) for k in cmi if k.startswith(head) and k.endswith(tail)]
    return [k for m, k in sorted(keys) if str(m) == k[len(head) : -len(tail)]]


# -- statements ------------------------------------------------------------------------------------


def registration(session_id: str) -> str:
    """The session's xAPI registration: a UUID derived from its id (the same for all its statements)."""
    return str(uuid.uuid5(NAMESPACE, session_id))


def course_iri(home_page: str, package_id: str) -> str:
    """The course activity: one per package, whatever its version (`<home>/scorm/packages/<id>`)."""
    return f"{home_page.rstrip('/')}/scorm/packages/{quote(package_id, safe='')}"


def sco_iri(home_page: str, package_id: str, activity_id: str) -> str:
    """A SCO activity, `<course IRI>/scos/<item identifier>` (the profile's `<courseIRI>/<sco path>`)."""
    return f"{course_iri(home_page, package_id)}/scos/{quote(activity_id, safe='')}"


def attempt_iri(home_page: str, facts: SessionFacts, sco: Sco) -> str:
    """The attempt activity of a SCO attempt: `<sco IRI>?attemptId=<uuid of session, SCO, attempt>`."""
    attempt = uuid.uuid5(NAMESPACE, f"{facts.session_id}/{sco.id}/{sco.attempt}")
    return f"{sco_iri(home_page, facts.package_id, sco.id)}?attemptId={attempt}"


def interaction_iri(home_page: str, package_id: str, activity_id: str, interaction_id: str) -> str:
    """An interaction activity, `<sco IRI>/interactions/<interaction id>`."""
    return f"{sco_iri(home_page, package_id, activity_id)}/interactions/{quote(interaction_id, safe='')}"


def actor(home_page: str, facts: SessionFacts) -> dict[str, Any]:
    """The learner as an account on this appliance (the profile's recommended form)."""
    agent: dict[str, Any] = {"objectType": "Agent", "account": {"homePage": home_page, "name": facts.learner_id}}
    if facts.learner_name:
        agent["name"] = facts.learner_name
    return agent


def to_statements(
    home_page: str,
    facts: SessionFacts,
    events: Iterable[Event],
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[dict[str, Any]]:
    """The xAPI statements of a session's events, in order. `home_page` is the actor account's home
    page and the base of the activity IRIs (the appliance's public URL, or the configured one)."""
    who = actor(home_page, facts)
    return [_statement(home_page, facts, who, event, new_id()) for event in events]


def _statement(
    home_page: str, facts: SessionFacts, who: dict[str, Any], event: Event, statement_id: str
) -> dict[str, Any]:
    course = _activity(course_iri(home_page, facts.package_id), "course", facts.course_title)
    grouping: list[dict[str, Any]] = []
    parent: list[dict[str, Any]] = []
    if event.sco is None:
        obj = course
    else:
        sco = _activity(sco_iri(home_page, facts.package_id, event.sco.id), "lesson", event.sco.title)
        grouping = [_activity(attempt_iri(home_page, facts, event.sco), "attempt", None), course]
        obj = sco
        if event.interaction is not None:
            obj = _interaction_activity(home_page, facts, event.sco, event.interaction)
            parent = [sco]
    statement: dict[str, Any] = {
        "id": statement_id,
        "actor": who,
        "verb": {"id": VERB_BASE + event.verb, "display": {"en-US": event.verb}},
        "object": obj,
    }
    result = _result(facts.scorm_version, event)
    if result:
        statement["result"] = result
    activities: dict[str, Any] = {"category": [_activity(PROFILE_ID, "profile", None)]}
    if parent:
        activities["parent"] = parent
    if grouping:
        activities["grouping"] = grouping
    statement["context"] = {"registration": registration(facts.session_id), "contextActivities": activities}
    statement["timestamp"] = timestamp(event.at)
    return statement


def _activity(iri: str, kind: str, title: str | None) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": ACTIVITY_BASE + kind}
    if title:
        definition["name"] = {"und": title}
    return {"objectType": "Activity", "id": iri, "definition": definition}


def _interaction_activity(home_page: str, facts: SessionFacts, sco: Sco, i: Interaction) -> dict[str, Any]:
    """A `cmi.interaction` activity: its interactionType and correct responses in xAPI's formats."""
    iri = interaction_iri(home_page, facts.package_id, sco.id, i.id)
    definition: dict[str, Any] = {"type": ACTIVITY_BASE + "cmi.interaction"}
    if i.description:
        definition["description"] = {"und": i.description}
    if i.type in _INTERACTION_TYPES:
        definition["interactionType"] = i.type
        if i.correct:
            definition["correctResponsesPattern"] = [response_text(facts.scorm_version, i.type, p) for p in i.correct]
    return {"objectType": "Activity", "id": iri, "definition": definition}


def _result(scorm_version: str, event: Event) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if event.interaction is not None:
        i = event.interaction
        if i.response is not None:
            result["response"] = response_text(scorm_version, i.type, i.response)
        success = {"correct": True, "incorrect": False, "wrong": False}.get(i.result or "")
        if success is not None:
            result["success"] = success
        seconds = _seconds(i.latency)
        if seconds is not None:
            result["duration"] = format_duration(round(seconds * 100))
    if event.progress is not None:
        result["score"] = {"scaled": event.progress}  # the profile's form for cmi.progress_measure
    outcome = event.outcome
    if outcome is not None:
        score = {
            k: v
            for k, v in (("scaled", outcome.scaled), ("raw", outcome.raw), ("min", outcome.min), ("max", outcome.max))
            if v is not None
        }
        if score:
            result["score"] = score
        if outcome.success is not None:
            result["success"] = outcome.success
        if outcome.completion is not None:
            result["completion"] = outcome.completion
        if outcome.seconds is not None:
            result["duration"] = format_duration(round(outcome.seconds * 100))
    return result


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parse_cmi_time(value) / 100
    except ValueError:
        return None


def response_text(scorm_version: str, kind: str | None, value: str) -> str:
    """A response or correct-response pattern in xAPI's format (SCORM 2004's, which xAPI adopted).

    SCORM 1.2 writes lists with commas and matching pairs with dots, and true-false as t/f/0/1: those
    become `[,]`, `[.]` and true/false; anything else passes as it is."""
    if scorm_version != SCORM_12:
        return value
    if kind == "true-false":
        return {"t": "true", "1": "true", "f": "false", "0": "false"}.get(value.strip().lower(), value)
    if kind in ("choice", "sequencing"):
        return "[,]".join(part.strip() for part in value.split(","))
    if kind == "matching":
        return "[,]".join("[.]".join(p.strip() for p in pair.split(".", 1)) for pair in value.split(","))
    return value


def timestamp(at: float) -> str:
    """An xAPI timestamp (ISO 8601, UTC, milliseconds)."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
