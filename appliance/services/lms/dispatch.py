"""Dispatch packages: a package offered to another LMS as a small SCORM ZIP that plays it from here.

An integrator creates a dispatch for a package (optional learner cap, expiry, enabled flag) and
downloads a SCORM 1.2 or 2004 ZIP. Imported into any LMS, its one SCO (`index.html`):

1. finds the LMS's own SCORM API, initialises it and reads the learner's id and name;
2. frames the appliance's relay page `/dispatch/{token}/play?learner_id=&learner_name=` (cross-origin).
   The token is the dispatch's signed token (HMAC with the appliance's launch secret): it is the only
   thing that makes the remote origin trusted. The relay starts or resumes the remote learner's session
   (learner id `dsp-<dispatch>-<hash of the remote id>`) and frames the ordinary player on it, so the
   appliance keeps the full CMI, the session and the analytics;
3. exchanges `postMessage`s with the relay: it says `hello` (the relay then answers only that origin,
   and only its parent window), and the relay sends the session's result whenever it changes (status,
   score, total time, location, ended). The SCO writes them into the LMS's API (lesson status or
   completion and success, score, location, session time), commits, and finishes when the player ends.

A disabled, expired or full dispatch refuses new launches with a page that says so (and a message the
SCO shows in the LMS). Only SCORM packages are dispatched: a cmi5 package is refused (`_check_scorm`). Per-dispatch counts: launches, learners, sessions, completed and passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import zipfile
from typing import Any

import apsw

from appliance.clock import parse_rfc3339, rfc3339
from appliance.errors import Forbidden, NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.learning.launch_tokens import signing_secret
from appliance.services.learning.sessions import create_session
from appliance.services.tenancy.tenants import Tenant
from appliance.storage.sqlite.connection import one, rows

FORMATS = ("1.2", "2004")
MAX_REMOTE_ID = 255
DONE = ("completed", "passed", "failed")


# -- the signed token --------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _key(inst: Instance) -> bytes:
    """A key of its own, derived from the launch secret: a dispatch token is never a launch token."""
    return hmac.new(signing_secret(inst), b"dispatch-token-v1", hashlib.sha256).digest()


def token_for(inst: Instance, tenant_id: str, dispatch_id: str) -> str:
    """The dispatch's token: `<tenant>.<dispatch>.<signature>`; it does not expire (the dispatch may)."""
    body = f"{tenant_id}.{dispatch_id}"
    return f"{body}.{_b64(hmac.new(_key(inst), body.encode(), hashlib.sha256).digest())}"


def open_token(inst: Instance, token: str) -> tuple[str, str]:
    """(tenant id, dispatch id) of a genuine token, else NOT_FOUND (a forged one reveals nothing)."""
    parts = token.split(".")
    if len(parts) == 3:
        body = f"{parts[0]}.{parts[1]}"
        expected = _b64(hmac.new(_key(inst), body.encode(), hashlib.sha256).digest())
        if hmac.compare_digest(expected, parts[2]):
            return parts[0], parts[1]
    raise NotFound("no such dispatch")


# -- managing dispatches --------------------------------------------------------------------------------------


def _row(conn: apsw.Connection, dispatch_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM dispatches WHERE id = ?", (dispatch_id,))
    if row is None:
        raise NotFound(f"no dispatch {dispatch_id!r}", {"dispatch_id": dispatch_id})
    return row


def _counts(conn: apsw.Connection, dispatch_id: str) -> dict[str, int]:
    learners = one(conn, "SELECT count(*) AS n FROM dispatch_learners WHERE dispatch_id = ?", (dispatch_id,))
    sessions = one(
        conn,
        "SELECT count(*) AS n, sum(s.status IN ('completed', 'passed', 'failed')) AS done, "
        "sum(s.status = 'passed') AS passed FROM sessions s WHERE s.learner_id IN "
        "(SELECT learner_id FROM dispatch_learners WHERE dispatch_id = ?) "
        "AND s.package_id = (SELECT package_id FROM dispatches WHERE id = ?)",
        (dispatch_id, dispatch_id),
    )
    assert learners is not None and sessions is not None
    return {
        "learners": int(learners["n"]),
        "sessions": int(sessions["n"] or 0),
        "completed": int(sessions["done"] or 0),
        "passed": int(sessions["passed"] or 0),
    }


def dispatch_json(conn: apsw.Connection, row: dict[str, Any]) -> dict[str, Any]:
    """The API's dispatch object, with its counts."""
    return {
        "id": row["id"],
        "package_id": row["package_id"],
        "name": row["name"],
        "learner_cap": row["learner_cap"],
        "expires_at": rfc3339(row["expires_at"]),
        "enabled": bool(row["enabled"]),
        "counts": {"launches": row["launches"], **_counts(conn, row["id"])},
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def _check_cap(cap: int | None) -> int | None:
    if cap is not None and cap < 1:
        raise ValidationFailed(
            "learner_cap must be at least 1 (or null: no cap)", {"errors": [{"field": "learner_cap"}]}
        )
    return cap


def _check_expiry(expires_at: str | None) -> float | None:
    if expires_at is None:
        return None
    try:
        return parse_rfc3339(expires_at)
    except ValueError as exc:
        raise ValidationFailed("expires_at must be an RFC 3339 time", {"errors": [{"field": "expires_at"}]}) from exc


def _check_scorm(conn: apsw.Connection, package_id: str) -> None:
    """VALIDATION_ERROR for a cmi5 package: a dispatch ZIP is a SCORM SCO relaying a SCORM player.

    A cmi5 course's AUs report by xAPI to this appliance's LRS and may insist on their own window
    (`launchMethod="OwnWindow"`), and its player has no SCORM end the relay could read, so the remote
    LMS would get neither a reliable finish nor a location. Offer cmi5 courses by LTI instead."""
    row = one(
        conn,
        "SELECT v.standard FROM packages p JOIN package_versions v ON v.package_id = p.id AND v.version = p.active_version "
        "WHERE p.id = ?",
        (package_id,),
    )
    if row is not None and row["standard"] == "cmi5":
        raise ValidationFailed(
            "a cmi5 package cannot be dispatched: a dispatch ZIP wraps SCORM content only "
            "(launch cmi5 courses from another LMS by LTI 1.3)",
            {"reason": "cmi5", "package_id": package_id, "errors": [{"field": "package_id", "message": "cmi5"}]},
        )


def create_dispatch(
    inst: Instance,
    tenant_id: str,
    *,
    package_id: str,
    name: str | None = None,
    learner_cap: int | None = None,
    expires_at: str | None = None,
    enabled: bool = True,
) -> dict[str, Any]:
    """A dispatch of a package; NOT_FOUND for an unknown package."""
    cap, expiry = _check_cap(learner_cap), _check_expiry(expires_at)
    now, dispatch_id = inst.clock.now(), new_id("dsp")

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        if one(conn, "SELECT id FROM packages WHERE id = ?", (package_id,)) is None:
            raise NotFound(f"no package {package_id!r}", {"package_id": package_id})
        _check_scorm(conn, package_id)
        conn.execute(
            "INSERT INTO dispatches (id, package_id, name, learner_cap, expires_at, enabled, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (dispatch_id, package_id, (name or "").strip()[:200], cap, expiry, int(enabled), now, now),
        )
        return dispatch_json(conn, _row(conn, dispatch_id))

    return inst.tenant_db(tenant_id).write_sync(insert)


def get_dispatch(inst: Instance, tenant_id: str, dispatch_id: str) -> dict[str, Any]:
    """One dispatch with its counts."""
    return inst.tenant_db(tenant_id).read_sync(lambda conn: dispatch_json(conn, _row(conn, dispatch_id)))


def list_dispatches(inst: Instance, tenant_id: str, package_id: str | None = None) -> list[dict[str, Any]]:
    """The tenant's dispatches (of one package, when given), oldest first."""

    def read(conn: apsw.Connection) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM dispatches", ()
        if package_id:
            sql, args = sql + " WHERE package_id = ?", (package_id,)
        return [dispatch_json(conn, r) for r in rows(conn, sql + " ORDER BY created_at, id", args)]

    return inst.tenant_db(tenant_id).read_sync(read)


def page_dispatches(inst: Instance, tenant_id: str, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of the tenant's dispatches, oldest first, with their counts (`data`, `next_cursor`)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)

    def read(conn: apsw.Connection) -> dict[str, Any]:
        sql = f"SELECT * FROM dispatches WHERE {where} ORDER BY created_at, id LIMIT ?"
        return page_result(rows(conn, sql, (*params, page.limit + 1)), page, lambda r: dispatch_json(conn, r))

    return inst.tenant_db(tenant_id).read_sync(read)


def update_dispatch(inst: Instance, tenant_id: str, dispatch_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change `enabled`, `name`, `learner_cap` or `expires_at` (keys present are set; null clears a cap or expiry)."""
    sets: dict[str, Any] = {}
    if changes.get("enabled") is not None:
        sets["enabled"] = int(bool(changes["enabled"]))
    if changes.get("name") is not None:
        sets["name"] = str(changes["name"]).strip()[:200]
    if "learner_cap" in changes:
        sets["learner_cap"] = _check_cap(changes["learner_cap"])
    if "expires_at" in changes:
        sets["expires_at"] = _check_expiry(changes["expires_at"])
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        _row(conn, dispatch_id)
        if sets:
            assignments = ", ".join(f"{k} = ?" for k in sets)
            conn.execute(
                f"UPDATE dispatches SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608 (fixed names)
                (*sets.values(), now, dispatch_id),
            )
        return dispatch_json(conn, _row(conn, dispatch_id))

    return inst.tenant_db(tenant_id).write_sync(update)


def delete_dispatch(inst: Instance, tenant_id: str, dispatch_id: str) -> None:
    """Remove a dispatch: its ZIPs stop launching; the sessions stay."""

    def delete(conn: apsw.Connection) -> None:
        _row(conn, dispatch_id)
        conn.execute("DELETE FROM dispatches WHERE id = ?", (dispatch_id,))

    inst.tenant_db(tenant_id).write_sync(delete)


# -- launching from the remote LMS -------------------------------------------------------------------------------


def learner_id(dispatch_id: str, remote_id: str) -> str:
    """The appliance learner id of a remote LMS's learner: per dispatch, bounded in length."""
    return f"dsp-{dispatch_id.removeprefix('dsp_')}-{hashlib.sha256(remote_id.encode()).hexdigest()[:24]}"


def start(
    inst: Instance, tenant: Tenant, dispatch_id: str, remote_id: str, remote_name: str, base_url: str
) -> dict[str, Any]:
    """Start or resume the remote learner's session; FORBIDDEN (with the reason) when the dispatch refuses."""
    remote_id = remote_id.strip()
    if not remote_id or len(remote_id) > MAX_REMOTE_ID:
        raise ValidationFailed(
            "the LMS did not give a learner id", {"errors": [{"field": "learner_id", "message": "required"}]}
        )
    learner, now = learner_id(dispatch_id, remote_id), inst.clock.now()

    def admit(conn: apsw.Connection) -> str:
        row = _row(conn, dispatch_id)
        _check_scorm(conn, row["package_id"])  # its active version may have become cmi5 since
        if not row["enabled"]:
            raise Forbidden(
                "this course has been withdrawn by its provider (the dispatch is disabled)", {"reason": "disabled"}
            )
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise Forbidden("this course is no longer available (the dispatch has expired)", {"reason": "expired"})
        known = one(
            conn, "SELECT 1 FROM dispatch_learners WHERE dispatch_id = ? AND learner_id = ?", (dispatch_id, learner)
        )
        if known is None:
            if row["learner_cap"] is not None and _counts(conn, dispatch_id)["learners"] >= row["learner_cap"]:
                raise Forbidden(
                    "this course has reached its number of learners (the dispatch's learner cap)",
                    {"reason": "learner_cap", "learner_cap": row["learner_cap"]},
                )
            conn.execute(
                "INSERT INTO dispatch_learners (dispatch_id, learner_id, remote_learner_id, created_at) VALUES (?, ?, ?, ?)",
                (dispatch_id, learner, remote_id, now),
            )
        conn.execute("UPDATE dispatches SET launches = launches + 1 WHERE id = ?", (dispatch_id,))
        return str(row["package_id"])

    package_id = inst.tenant_db(tenant.id).write_sync(admit)
    session, _ = create_session(
        inst,
        tenant,
        base_url,
        package_id=package_id,
        learner_id=learner,
        learner_name=remote_name.strip()[:200] or None,
        package_version=None,
        resume=True,
    )
    return session


def result(inst: Instance, tenant_id: str, dispatch_id: str, session_id: str) -> dict[str, Any]:
    """What the relay sends the remote LMS: the session's status, score, total time and location."""

    def read(conn: apsw.Connection) -> dict[str, Any]:
        _row(conn, dispatch_id)
        session = one(
            conn,
            "SELECT s.* FROM sessions s JOIN dispatch_learners d ON d.learner_id = s.learner_id "
            "WHERE s.id = ? AND d.dispatch_id = ?",
            (session_id, dispatch_id),
        )
        if session is None:
            raise NotFound("no such session for this dispatch")
        activity = one(
            conn,
            "SELECT cmi FROM session_activities WHERE session_id = ? ORDER BY activity_id = ? DESC LIMIT 1",
            (session_id, session["current_activity"] or ""),
        )
        cmi = json.loads(activity["cmi"]) if activity else {}
        return {
            "status": session["status"],
            "completion_status": session["completion_status"],
            "success_status": session["success_status"],
            "score": {k: session[f"score_{k}"] for k in ("raw", "min", "max", "scaled")},
            "total_time_seconds": session["total_time_seconds"],
            "location": cmi.get("cmi.location") or cmi.get("cmi.core.lesson_location") or "",
            "done": session["status"] in DONE,
            "version": session["version"],
        }

    return inst.tenant_db(tenant_id).read_sync(read)


# -- the ZIP ----------------------------------------------------------------------------------------------------------


def package_zip(inst: Instance, tenant_id: str, dispatch_id: str, fmt: str, base_url: str) -> tuple[str, bytes]:
    """(file name, bytes) of the dispatch's SCORM `fmt` ZIP, pointing at `base_url`."""
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}", {"errors": [{"field": "format"}]})

    def read(conn: apsw.Connection) -> tuple[dict[str, Any], dict[str, Any] | None]:
        row = _row(conn, dispatch_id)
        _check_scorm(conn, row["package_id"])
        return row, one(conn, "SELECT title FROM packages WHERE id = ?", (row["package_id"],))

    row, package = inst.tenant_db(tenant_id).read_sync(read)
    title = (package or {}).get("title") or row["name"] or row["package_id"]
    config = {
        "base": base_url.rstrip("/"),
        "token": token_for(inst, tenant_id, dispatch_id),
        "version": fmt,
        "title": title,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", _manifest(fmt, dispatch_id, title))
        archive.writestr("index.html", _sco_page(config))
    slug = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")[:60] or dispatch_id
    return f"{slug}-dispatch-scorm{fmt.replace('.', '')}.zip", buffer.getvalue()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _manifest(fmt: str, dispatch_id: str, title: str) -> str:
    if fmt == "1.2":
        head = (
            f'<manifest identifier="{dispatch_id}" version="1" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2" '
            'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">'
            "<metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>"
        )
        scormtype = 'adlcp:scormtype="sco"'
    else:
        head = (
            f'<manifest identifier="{dispatch_id}" version="1" xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" '
            'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3">'
            "<metadata><schema>ADL SCORM</schema><schemaversion>2004 4th Edition</schemaversion></metadata>"
        )
        scormtype = 'adlcp:scormType="sco"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{head}"
        f'<organizations default="org"><organization identifier="org"><title>{_xml(title)}</title>'
        f'<item identifier="item_1" identifierref="res_1"><title>{_xml(title)}</title></item>'
        "</organization></organizations>"
        f'<resources><resource identifier="res_1" type="webcontent" {scormtype} href="index.html">'
        '<file href="index.html"/></resource></resources></manifest>\n'
    )


SCO_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>html,body{margin:0;height:100%}iframe{border:0;width:100%;height:100%;display:block}
#message{font:16px system-ui,sans-serif;margin:1rem}</style>
</head>
<body>
<p id="message" hidden></p>
<iframe id="remote" title="__TITLE__" allow="fullscreen"></iframe>
<script>
// The dispatch SCO: relays the appliance's session to this LMS's SCORM API (appliance.services.lms.dispatch).
var CONFIG = __CONFIG__;
(function () {
  var v12 = CONFIG.version === "1.2";
  var name = v12 ? "API" : "API_1484_11";
  function find(win) {
    for (var n = 0; win && n < 10; n++) {
      try { if (win[name]) return win[name]; } catch (e) { return null; }
      if (!win.parent || win.parent === win) break;
      win = win.parent;
    }
    return null;
  }
  var api = find(window) || (window.opener ? find(window.opener) : null);
  var call = function (fn12, fn2004) {
    var args = Array.prototype.slice.call(arguments, 2);
    if (!api) return "";
    var fn = api[v12 ? fn12 : fn2004];
    return fn ? fn.apply(api, args) : "";
  };
  var origin = new URL(CONFIG.base).origin;
  var frame = document.getElementById("remote");
  var started = null, finished = false, lastVersion = null;
  function show(text) {
    var box = document.getElementById("message");
    box.textContent = text; box.hidden = false; frame.hidden = true;
  }
  if (!api) { show("This course must be opened from a learning management system (no SCORM API found)."); return; }
  call("LMSInitialize", "Initialize", "");
  var learner = call("LMSGetValue", "GetValue", v12 ? "cmi.core.student_id" : "cmi.learner_id");
  var learnerName = call("LMSGetValue", "GetValue", v12 ? "cmi.core.student_name" : "cmi.learner_name");
  function set(element, value) { if (value !== null && value !== undefined) call("LMSSetValue", "SetValue", element, String(value)); }
  function timespan(seconds) {
    var s = Math.max(0, seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = (s % 60).toFixed(2);
    if (v12) return (h < 10 ? "000" : h < 100 ? "00" : h < 1000 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
    return "PT" + h + "H" + m + "M" + r + "S";
  }
  function apply(result) {
    if (result.version === lastVersion) return;
    lastVersion = result.version;
    if (started === null) started = result.total_time_seconds;
    var score = result.score || {};
    if (v12) {
      var status = ["passed", "failed", "completed"].indexOf(result.status) >= 0 ? result.status : "incomplete";
      set("cmi.core.lesson_status", status);
      if (score.raw !== null) { set("cmi.core.score.raw", score.raw); set("cmi.core.score.min", score.min === null ? 0 : score.min); set("cmi.core.score.max", score.max === null ? 100 : score.max); }
      set("cmi.core.lesson_location", (result.location || "").slice(0, 255));
      set("cmi.core.session_time", timespan(result.total_time_seconds - started));
      set("cmi.core.exit", result.done ? "" : "suspend");
    } else {
      if (result.completion_status !== "unknown") set("cmi.completion_status", result.completion_status);
      if (result.success_status !== "unknown") set("cmi.success_status", result.success_status);
      if (score.scaled !== null) set("cmi.score.scaled", score.scaled);
      if (score.raw !== null) { set("cmi.score.raw", score.raw); if (score.min !== null) set("cmi.score.min", score.min); if (score.max !== null) set("cmi.score.max", score.max); }
      set("cmi.location", (result.location || "").slice(0, 1000));
      set("cmi.session_time", timespan(result.total_time_seconds - started));
      set("cmi.exit", result.done ? "normal" : "suspend");
    }
    call("LMSCommit", "Commit", "");
  }
  function finish() {
    if (finished) return;
    finished = true;
    call("LMSFinish", "Terminate", "");
  }
  window.addEventListener("message", function (event) {
    if (finished || event.origin !== origin || event.source !== frame.contentWindow || !event.data) return;
    var data = event.data;
    if (data.type === "result") apply(data.result);
    else if (data.type === "ended") { apply(data.result); finish(); }
    else if (data.type === "refused") show(data.message);  // left open for the learner to read
  });
  frame.addEventListener("load", function () { frame.contentWindow.postMessage({ type: "hello" }, origin); });
  window.addEventListener("pagehide", finish);
  frame.src = CONFIG.base + "/dispatch/" + encodeURIComponent(CONFIG.token) + "/play?learner_id=" +
    encodeURIComponent(learner) + "&learner_name=" + encodeURIComponent(learnerName);
})();
</script>
</body>
</html>
"""


def _sco_page(config: dict[str, str]) -> str:
    """The SCO's `index.html` with its configuration inlined (JSON, safe inside a script element)."""
    blob = json.dumps(config).replace("</", "<\\/")
    return SCO_PAGE.replace("__CONFIG__", blob).replace("__TITLE__", _xml(config["title"]))
