"""The analytics index: derived per-session rows, written inside the run-time's own transactions.

Reports must stay fast with hundreds of thousands of sessions, so nothing reads session CMI at report
time. `index_session` runs inside every transaction that recomputes a session's results
(`sessions.refresh_results`, the cmi5 registration's progress) and keeps two derived tables in step:

* `session_interactions`: one row per `cmi.interactions.n` record of each SCO. Triggers on it keep
  `interaction_stats` (attempts and results per question) and `interaction_responses` (how often each
  response was given) up to date, so a report reads one small row per question.
* `session_completions`: when each session first reached `completion_status = completed`.

This module depends on nothing but a connection (the tenant schema's migration backfills through it),
so the services and the schema can use it without importing the reports (`appliance.services.learning.analytics`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import apsw

from appliance.core.scorm.durations import parse_cmi_time
from appliance.storage.sqlite.connection import rows

RESPONSE_MAX_CHARS = 500

_FIELD = re.compile(
    r"^cmi\.interactions\.(\d+)\.(id|type|description|learner_response|student_response|result|latency)$"
)
_OUTCOMES = {"correct": "correct", "wrong": "incorrect", "incorrect": "incorrect"}
_OUTCOMES.update(unanticipated="unanticipated", neutral="neutral")

Row = tuple[str, int, str, str | None, str | None, str | None, str | None, str, float | None]


def outcome(result: str | None) -> str:
    """A `result` value as one of correct, incorrect, unanticipated, neutral, numeric or none."""
    if not result:
        return "none"
    if result in _OUTCOMES:
        return _OUTCOMES[result]
    try:
        float(result)
    except ValueError:
        return "none"
    return "numeric"


def _latency(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parse_cmi_time(value) / 100
    except ValueError:
        return None


def interaction_rows(activity_id: str, cmi: dict[str, str]) -> list[Row]:
    """The derived rows of one SCO's CMI: its interaction records that have an id, in index order."""
    out: list[Row] = []
    found: dict[int, dict[str, str]] = {}
    for key, value in cmi.items():
        if key.startswith("cmi.interactions."):
            match = _FIELD.match(key)
            if match:
                found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    for index in sorted(found):
        fields = found[index]
        if not fields.get("id"):
            continue
        response = fields.get("learner_response", fields.get("student_response"))
        result = fields.get("result") or None
        out.append(
            (
                activity_id,
                index,
                fields["id"],
                fields.get("type") or None,
                fields.get("description") or None,
                response[:RESPONSE_MAX_CHARS] if response else None,
                result,
                outcome(result),
                _latency(fields.get("latency")),
            )
        )
    return out


def index_session(
    conn: apsw.Connection,
    session: dict[str, Any],
    now: float,
    changed: tuple[str, dict[str, str]] | None = None,
    *,
    interactions: bool = True,
) -> None:
    """Bring the session's derived analytics rows in line with its activities' CMI.

    `changed` is the just-written CMI of the only activity of a single-SCO course (the hot commit path
    passes it so nothing is re-read); without it every activity of the session is read. Only what
    differs is written. `interactions=False` is the caller's word that no interaction value changed
    (most commits): the interaction rows are then left alone without even being read.
    """
    if interactions:
        _sync_interactions(conn, session, changed)
    if session["completion_status"] == "completed":
        conn.execute(
            "INSERT OR IGNORE INTO session_completions (session_id, package_id, completed_at) VALUES (?, ?, ?)",
            (session["id"], session["package_id"], now),
        )


def _sync_interactions(
    conn: apsw.Connection, session: dict[str, Any], changed: tuple[str, dict[str, str]] | None
) -> None:
    """Rewrite the session's interaction rows that differ from what its CMI now says."""
    sources: dict[str, str | dict[str, str]]
    if changed is not None:
        sources = {changed[0]: changed[1]}
    else:
        found = rows(conn, "SELECT activity_id, cmi FROM session_activities WHERE session_id = ?", (session["id"],))
        sources = {r["activity_id"]: r["cmi"] for r in found}
    wanted: dict[tuple[str, int], Row] = {}
    for activity_id, source in sources.items():
        if isinstance(source, str):
            if "cmi.interactions." not in source:
                continue
            source = json.loads(source)
        for row in interaction_rows(activity_id, source):
            wanted[(row[0], row[1])] = row
    stored = {
        (r["activity_id"], r["idx"]): (
            r["activity_id"],
            r["idx"],
            r["interaction_id"],
            r["type"],
            r["description"],
            r["response"],
            r["result"],
            r["outcome"],
            r["latency_seconds"],
        )
        for r in rows(
            conn,
            "SELECT activity_id, idx, interaction_id, type, description, response, result, outcome, latency_seconds "
            "FROM session_interactions WHERE session_id = ?",
            (session["id"],),
        )
    }
    for key, old in stored.items():
        if wanted.get(key) != old:
            conn.execute(
                "DELETE FROM session_interactions WHERE session_id = ? AND activity_id = ? AND idx = ?",
                (session["id"], key[0], key[1]),
            )
    for key, new in wanted.items():
        if stored.get(key) != new:
            conn.execute(
                "INSERT INTO session_interactions (session_id, activity_id, idx, interaction_id, type, description, "
                "response, result, outcome, latency_seconds, package_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session["id"], *new, session["package_id"]),
            )


def backfill(conn: apsw.Connection) -> int:
    """Index every existing session (when the analytics tables are first created); returns how many."""
    found = rows(conn, "SELECT * FROM sessions")
    for session in found:
        index_session(conn, session, session["updated_at"])
    return len(found)
