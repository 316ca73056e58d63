"""A delivery: the CMI a SCO starts a new SCO session with (a new attempt or a resumed one), and what
the player is told to launch.

A module of its own because a launch, a navigation and a Terminate all end in one, and the resume rules
(rte-rules 5.1: global objectives and shared data re-read; a SCO left running treated as suspended)
should live in one place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import apsw

from appliance.core.scorm.attempt import end_session, names, next_launch_cmi
from appliance.core.scorm.launch import adl_data_access
from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.errors import NotFound
from appliance.services.library.courses import Course
from appliance.storage.sqlite.connection import one

_OBJECTIVE_ID = re.compile(r"^cmi\.objectives\.(\d+)\.id$")


def deliver(
    conn: apsw.Connection, course: Course, session: dict[str, Any], engine: SequencingEngine, nav: NavResult, now: float
) -> dict[str, Any]:
    """Prepare the delivered activity's CMI for a new SCO session and describe it for the player."""
    activity_id = nav.delivered
    assert activity_id is not None
    item = course.item(activity_id)
    if item is None or not item.href:
        raise NotFound(f"activity {activity_id!r} has nothing to launch")
    row = one(
        conn, "SELECT * FROM session_activities WHERE session_id = ? AND activity_id = ?", (session["id"], activity_id)
    )
    previous = json.loads(row["cmi"]) if row else None
    if row is not None and row["state"] == "running" and previous is not None:
        previous = _abandoned(course.scorm_version, previous)
    overrides = engine.initial_cmi_overrides(activity_id)
    force_new = course.scorm_version != SCORM_12 and nav.new_attempt and row is not None and row["attempt"] > 0
    cmi, new_attempt = next_launch_cmi(
        course.scorm_version,
        previous if row is not None and row["attempt"] > 0 else None,
        learner_id=session["learner_id"],
        learner_name=session["learner_name"] or session["learner_id"],
        force_new_attempt=force_new,
        item=item,
        shared_data=engine.shared_data,
    )
    if new_attempt:
        cmi.update({k: v for k, v in overrides.items() if not k.startswith("adl.nav")})
    else:
        _refresh_resumed(cmi, overrides)
    attempt = (row["attempt"] if row else 0) + (1 if new_attempt else 0)
    conn.execute(
        "INSERT INTO session_activities (session_id, activity_id, cmi, attempt, state, reported, launched_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'running', '[]', ?, ?) ON CONFLICT (session_id, activity_id) DO UPDATE SET cmi = excluded.cmi, "
        "attempt = excluded.attempt, state = 'running', reported = '[]', launched_at = excluded.launched_at, "
        "updated_at = excluded.updated_at",
        (session["id"], activity_id, json.dumps(cmi, separators=(",", ":")), max(attempt, 1), now, now),
    )
    return {
        "activity": activity_id,
        "title": item.title,
        "href": item.href,
        "attempt": max(attempt, 1),
        "new_attempt": new_attempt,
        "cmi": cmi,  # the answer's request_valid carries adl.nav.request_valid (the player adds it)
        "data_access": adl_data_access(item),
    }


def _refresh_resumed(cmi: dict[str, str], overrides: dict[str, str]) -> None:
    """Resuming: global objective reads and shared data may have changed since the SCO was suspended.

    Objective values go to the record with the same id (the SCO may have added records of its own);
    adl.data records are the item's data maps, in manifest order."""
    for key in [k for k in cmi if k.startswith("adl.data.") and k.endswith(".store")]:
        del cmi[key]  # the shared store as it is now (another SCO may have written or emptied it)
    cmi.update({k: v for k, v in overrides.items() if k.startswith("adl.data.")})
    by_id = {v: m.group(1) for k, v in cmi.items() if (m := _OBJECTIVE_ID.match(k))}
    count = len(by_id)
    for key, objective_id in overrides.items():
        match = _OBJECTIVE_ID.match(key)
        if match is None:
            continue
        index = by_id.get(objective_id)
        if index is None:
            index = by_id[objective_id] = str(count)
            count += 1
        prefix = f"cmi.objectives.{match.group(1)}."
        for name, value in overrides.items():
            if name.startswith(prefix):
                cmi[f"cmi.objectives.{index}.{name[len(prefix) :]}"] = value


def _abandoned(scorm_version: str, cmi: dict[str, str]) -> dict[str, str]:
    """A SCO session that never terminated (the tab was closed): close it, resuming by default.

    Content that did not say how it exited is treated as suspended, so the learner comes back to where
    they were rather than to a fresh attempt — what learners expect when they close a tab.
    """
    n = names(scorm_version)
    ended = end_session(scorm_version, cmi).cmi
    if scorm_version == SCORM_12 and "cmi.core.lesson_status" in cmi:
        # The 1.2 status rules (an unset status becomes "completed"; mastery score) are LMSFinish's,
        # and this SCO never called it: closing a tab must not complete a lesson.
        ended["cmi.core.lesson_status"] = cmi["cmi.core.lesson_status"]
    if not ended.get(n["exit"]):
        ended[n["exit"]] = "suspend"
    return ended
