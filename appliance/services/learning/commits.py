"""A commit of CMI changes from the browser API: the transaction that re-checks them with the pure
data model, applies them all-or-nothing with optimistic locking and per-client sequence numbers (so a
replayed request is harmless), and refreshes the session's results.

A module of its own because this is the product's hottest path (every learner's commit runs it, inline on
the event loop): it stays short and flat, and hands a Terminate to `terminations`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apsw
import msgspec

from appliance.core.scorm.attempt import names
from appliance.core.scorm.datamodel import apply_patch
from appliance.core.scorm.elements import SUSPEND_DATA_12_SPM
from appliance.core.scorm.launch import adl_data_access
from appliance.core.scorm.model import SCORM_12
from appliance.core.scorm.sequencing.navigation import NAV_REQUESTS
from appliance.errors import CmiValidationFailed, NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.learning.engine_state import load_engine, root_rollup
from appliance.services.learning.player_requests import MAX_CLIENT_IDS, CommitIn
from appliance.services.learning.sessions import check_live, check_version, refresh_results, session_row
from appliance.services.learning.signs_of_life import session_ttl, sign_of_life
from appliance.services.learning.terminations import UnderLock, terminate_compute, terminate_finish
from appliance.services.library.courses import Course, load_course
from appliance.services.library.packages import scorm12_suspend_data_limit
from appliance.services.lrs import scorm_statements
from appliance.services.tenancy.tenants import tenant_suspend_data_limit
from appliance.storage.sqlite.connection import one


def check_nav_request(body: CommitIn) -> None:
    if body.nav_request is not None and request_name(body.nav_request) not in NAV_REQUESTS:
        raise ValidationFailed(
            f"unknown navigation request {body.nav_request!r}", {"errors": [{"field": "nav_request"}]}
        )


def request_name(request: str) -> str:
    if request.startswith("{target="):
        return request.split("}", 1)[-1]
    return request


def commit_txn(
    inst: Instance,
    tenant_id: str,
    session_id: str,
    body: CommitIn,
    ttl: int | None,
    *,
    off_lock: bool = False,
    budget: Callable[[], None] | None = None,
    now: float | None = None,
) -> Callable[[Any], Any]:
    """The commit transaction. A plain Commit only stores data (it does not trigger sequencing,
    rte-rules 2), so it takes the short path: validate, store, refresh the session's results.

    A Terminate of a running SCO sequences (`terminate_compute`, then `terminate_finish`). With
    `off_lock` the transaction runs on a `Snapshot` and stops there, returning the computed
    `Terminated` for `runtime._terminate_step` to swap in; any other case raises `UnderLock` (it is short, and
    its reads follow its own writes: it runs as a whole under the lock). `now` is the server's time (for a
    worker process)."""
    check_nav_request(body)
    now = inst.clock.now() if now is None else now
    ttl = ttl if ttl is not None else session_ttl(inst, tenant_id)

    def txn(conn: apsw.Connection) -> Any:
        session = session_row(conn, session_id)
        check_live(session, now)
        seqs = _decode_seqs(session["commit_seqs"])
        if seqs.get(body.client_id, -1) >= body.seq:
            if off_lock:
                raise UnderLock
            return {"replayed": True, "version": session["version"], "status": session["status"]}
        if body.version is not None:
            check_version(session, body.version)
        course = load_course(inst, tenant_id, session["package_id"], session["package_version"])
        row = one(
            conn,
            "SELECT cmi, reported, state, attempt, launched_at FROM session_activities "
            "WHERE session_id = ? AND activity_id = ?",
            (session_id, body.activity),
        )
        if row is None:
            raise NotFound(f"activity {body.activity!r} was not launched in this session")
        stored = _decode_cmi(row["cmi"])
        changes = body.changes if row["state"] != "terminated" else _after_terminate(course.scorm_version, body.changes)
        cmi, errors = apply_patch(
            course.scorm_version,
            stored,
            changes,
            data_access=adl_data_access(course.item(body.activity)),
            suspend_data_limit=suspend_data_limit(inst, tenant_id, conn, course, session["package_id"], body.changes),
        )
        if errors:
            raise CmiValidationFailed(
                f"{len(errors)} CMI value(s) rejected by the SCORM data model",
                {"errors": [msgspec.to_builtins(e) for e in errors]},
            )
        record_seq(seqs, body.client_id, body.seq)
        reported = _decode_names(row["reported"])
        if not set(body.changes) <= set(reported):
            reported = sorted(set(reported) | set(body.changes))
        if not (body.terminate and row["state"] == "running"):
            if off_lock:
                raise UnderLock
            conn.execute(
                "UPDATE session_activities SET cmi = ?, reported = ?, updated_at = ? WHERE session_id = ? AND activity_id = ?",
                (_encode(cmi).decode(), _encode(reported).decode(), now, session_id, body.activity),
            )
            scorm_statements.on_commit(conn, course, session, body.activity, row["attempt"], stored, cmi, changes, now)
            # A plain commit does not sequence, but the course's result is still the root's rollup (multi-SCO).
            rollup = root_rollup(load_engine(conn, course, session)) if len(course.launchable) > 1 else None
            updated = refresh_results(
                conn,
                course,
                session,
                now,
                rollup,
                changed=(body.activity, cmi),
                also=sign_of_life(session, ttl, now, seqs),
                interactions_changed=_interactions_changed(stored, body.changes),
            )
            return {"replayed": False, "delivery": None, "version": updated["version"], "status": updated["status"]}
        done = terminate_compute(conn, course, session, seqs, body, cmi, row, reported, now, budget)
        if off_lock:
            delivered = done.answer["delivery"]
            if delivered is not None and delivered["activity"] == body.activity:
                raise UnderLock  # the delivery read the SCO's own row, which this step's held-back write changes
            return done
        return terminate_finish(conn, done, ttl)

    return txn


_encode = msgspec.json.encode
_decode_cmi = msgspec.json.Decoder(dict[str, str]).decode
_decode_seqs = msgspec.json.Decoder(dict[str, int]).decode
_decode_names = msgspec.json.Decoder(list[str]).decode


def suspend_data_limit(
    inst: Instance,
    tenant_id: str,
    conn: apsw.Connection,
    course: Course,
    package_id: str,
    changes: dict[str, str] | None = None,
) -> int | None:
    """SCORM 1.2 cmi.suspend_data's limit for the package (its setting, else its tenant's); None for 2004.

    For a commit (`changes`) it is read only when the new suspend_data is longer than the spec's 4096
    characters: a shorter value passes every limit, so the usual commit reads nothing more.
    """
    if course.scorm_version != SCORM_12:
        return None
    if changes is not None and len(changes.get("cmi.suspend_data", "")) <= SUSPEND_DATA_12_SPM:
        return None
    return scorm12_suspend_data_limit(conn, package_id, tenant_suspend_data_limit(inst, tenant_id))


def record_seq(seqs: dict[str, int], client_id: str, seq: int) -> None:
    """Remember `seq` as `client_id`'s latest, keeping only the MAX_CLIENT_IDS most recently used pages.

    The numbers make a page's resent batch harmless: the copy that arrives second has a seq already
    seen. Every page load has a new client id, so a session reopened many times would otherwise keep
    one entry per load forever. A page is forgotten only after MAX_CLIENT_IDS other pages committed
    since its last commit — long after it was closed. Should such a page still resend a batch, a
    conditional commit (with `version`, all but the `pagehide` beacon) is refused by the version
    check as before; only an unconditional beacon of a page that old would be applied again.
    """
    if client_id in seqs:
        del seqs[client_id]  # re-inserted at the end: dicts keep insertion order, oldest first
    seqs[client_id] = seq
    while len(seqs) > MAX_CLIENT_IDS:
        del seqs[next(iter(seqs))]


def _after_terminate(scorm_version: str, changes: dict[str, str]) -> dict[str, str]:
    """The changes of a late batch for a SCO session that has ended, less its session_time.

    Terminate consumed the session time; a copy that arrives again under a new sequence number (a page
    going away may send its last values more than once) would otherwise be stored and counted a second
    time when the SCO is next launched.
    """
    name = names(scorm_version)["session_time"]
    return changes if name not in changes else {k: v for k, v in changes.items() if k != name}


def _interactions_changed(stored: dict[str, str], changes: dict[str, str]) -> bool:
    """Whether a commit changes any interaction value (most re-send the same ones, or none)."""
    return any(k.startswith("cmi.interactions.") and stored.get(k) != v for k, v in changes.items())
