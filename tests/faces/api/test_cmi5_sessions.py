"""cmi5 registrations over the real app: CATAPULT's example courses created, launched, fetched and
driven through the LRS as an AU does (from LMS.LaunchData), with the LMS's own statements checked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.core.cmi5 import vocabulary as v
from appliance.instance import Instance
from appliance.services.learning import cmi5_registrations
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_lrs_credentials import basic, issue
from tests.faces.api.test_packages import upload_ready

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "suites" / "catapult" / "course_examples"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="CATAPULT's course examples are not checked out")
XAPI = {"X-Experience-API-Version": "1.0.3"}


def start(api: TestClient, who: TenantKey, example: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(package, session) of a new session on a CATAPULT example course."""
    package = upload_ready(api, who, (EXAMPLES / example).read_bytes())
    created = api.post(
        "/api/v1/sessions", json={"package_id": package["id"], "learner": {"id": "ada"}}, headers=who.headers
    )
    assert created.status_code == 201, created.text
    return package, created.json()


class Au:
    """An AU as cmi5.js runs: launch parameters, fetch, LaunchData, statements from its contextTemplate."""

    def __init__(self, api: TestClient, url: str) -> None:
        self.api = api
        self.url = url
        self.params = {k: vals[0] for k, vals in parse_qs(urlsplit(url).query).items()}
        self.auth: dict[str, str] = {}
        self.launch_data: dict[str, Any] = {}

    def fetch(self) -> Any:
        return self.api.post(self.params["fetch"].replace("http://testserver.local", ""))

    def start(self) -> None:
        answer = self.fetch()
        assert answer.status_code == 200, answer.text
        self.auth = {**XAPI, "Authorization": f"Basic {answer.json()['auth-token']}"}
        data = self.api.get("/xapi/activities/state", params=self.state_params(), headers=self.auth)
        assert data.status_code == 200, data.text
        self.launch_data = data.json()
        prefs = {"profileId": v.LEARNER_PREFERENCES_PROFILE_ID, "agent": self.params["actor"]}
        assert self.api.get("/xapi/agents/profile", params=prefs, headers=self.auth).status_code in (200, 404)

    def state_params(self, state_id: str = v.LAUNCH_DATA_STATE_ID) -> dict[str, str]:
        return {
            "activityId": self.params["activityId"],
            "agent": self.params["actor"],
            "registration": self.params["registration"],
            "stateId": state_id,
        }

    def statement(self, verb: str, **result: Any) -> dict[str, Any]:
        context = json.loads(json.dumps(self.launch_data["contextTemplate"]))
        context["registration"] = self.params["registration"]
        context["contextActivities"]["category"] = [{"id": v.CATEGORY_CMI5}]
        if verb in v.SATISFACTION_VERBS:
            context["contextActivities"]["category"].append({"id": v.CATEGORY_MOVE_ON})
            result.setdefault("duration", "PT5S")
        if verb in (v.PASSED, v.FAILED) and "masteryScore" in self.launch_data:
            context["extensions"][v.EXT_MASTERY_SCORE] = self.launch_data["masteryScore"]
        if verb == v.TERMINATED:
            result.setdefault("duration", "PT30S")
        st: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "timestamp": "2026-12-03T10:00:00.000Z",
            "actor": json.loads(self.params["actor"]),
            "verb": {"id": verb},
            "object": {"id": self.params["activityId"], "objectType": "Activity"},
            "context": context,
        }
        if result:
            st["result"] = result
        return st

    def send(self, statement: dict[str, Any]) -> Any:
        return self.api.post("/xapi/statements", json=statement, headers=self.auth)


def launch(api: TestClient, who: TenantKey, session_id: str, au: str | None = None) -> dict[str, Any]:
    answer = api.post(f"/api/v1/sessions/{session_id}/launch", params={"au": au} if au else {}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def lms_statements(api: TestClient, who: TenantKey, registration: str, verb: str) -> list[dict[str, Any]]:
    cred = issue(api, who, name="reader", scope="read")
    found = api.get(
        "/xapi/statements",
        params={"registration": registration, "verb": verb, "ascending": "true"},
        headers=basic(cred["id"], cred["secret"]),
    )
    assert found.status_code == 200, found.text
    return found.json()["statements"]


@needs_examples
def test_a_mastery_score_course_from_launch_to_passed(api: TestClient, acme: TenantKey) -> None:
    package, session = start(api, acme, "masteryscore_framed.zip")
    fresh = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert fresh["status"] == "not_started" and fresh["cmi5"]["satisfied"] is False
    assert [a["completion_status"] for a in fresh["cmi5"]["aus"]] == ["unknown"]
    launched = launch(api, acme, session["id"])
    cmi5 = launched["cmi5"]
    assert cmi5["launch_method"] == "OwnWindow"
    au = Au(api, cmi5["url"])
    assert set(au.params) >= {"endpoint", "fetch", "actor", "registration", "activityId"}
    assert au.params["endpoint"].endswith("/xapi/")
    assert au.params["registration"] == cmi5["registration"]
    assert au.params["activityId"] != cmi5["au_id"]  # LMS-generated (§8.1.5)
    assert json.loads(au.params["actor"])["account"]["name"] == "ada"
    assert "/player/" in cmi5["url"] and "/content/index.html?" in cmi5["url"]
    # before fetch the token does not exist; the fetch answers once
    au.start()
    again = au.fetch()
    assert again.status_code == 200 and again.json()["error-code"] == "1" and "auth-token" not in again.json()
    assert au.launch_data["launchMode"] == "Normal" and au.launch_data["masteryScore"] == 0.3
    assert au.launch_data["moveOn"] == "CompletedOrPassed" and au.launch_data["launchMethod"] == "OwnWindow"
    # the AU may not write LaunchData, nor read another registration's state
    assert api.put("/xapi/activities/state", params=au.state_params(), json={}, headers=au.auth).status_code == 403
    other = {**au.state_params(), "registration": str(uuid.uuid4())}
    assert api.get("/xapi/activities/state", params=other, headers=au.auth).status_code == 403
    # learner preferences: its own actor's, in cmi5's form only (§11)
    prefs = {"profileId": v.LEARNER_PREFERENCES_PROFILE_ID, "agent": au.params["actor"]}
    good = {"languagePreference": "en-US,fr-FR", "audioPreference": "on"}
    fresh_doc = {**au.auth, "If-None-Match": "*"}  # 1.0.3 profiles need a precondition
    assert api.put("/xapi/agents/profile", params=prefs, json=good, headers=fresh_doc).status_code == 204
    for bad in ({"languagePreference": "not comma separated", "audioPreference": "on"}, {"languagePreference": "en"}):
        assert api.put("/xapi/agents/profile", params=prefs, json=bad, headers=au.auth).status_code == 403
    no_agent = {"profileId": v.LEARNER_PREFERENCES_PROFILE_ID}
    assert api.put("/xapi/agents/profile", params=no_agent, json=good, headers=au.auth).status_code == 400
    wrong = {**prefs, "agent": json.dumps({"mbox": "mailto:catapult@example.com"})}
    assert api.put("/xapi/agents/profile", params=wrong, json=good, headers=au.auth).status_code == 403
    # the AU's statements: the rules refuse what cmi5 forbids (403 with the requirement)
    refused = au.send(au.statement(v.COMPLETED, completion=True))
    assert refused.status_code == 403 and "9.3.0.0-4" in refused.text  # nothing before initialized
    assert au.send(au.statement(v.INITIALIZED)).status_code == 200
    assert au.send(au.statement(v.INITIALIZED)).status_code == 403  # initialized twice
    low = au.statement(v.PASSED, success=True, score={"scaled": 0.2, "raw": 2, "min": 0, "max": 10})
    answer = au.send(low)
    assert answer.status_code == 403 and "9.3.4.0-2" in answer.text  # below the masteryScore
    ok = au.send(au.statement(v.PASSED, success=True, score={"scaled": 0.8, "raw": 8, "min": 0, "max": 10}))
    assert ok.status_code == 200, ok.text
    assert au.send(au.statement(v.COMPLETED, completion=True)).status_code == 200
    assert au.send(au.statement(v.TERMINATED)).status_code == 200
    after = au.send(au.statement(v.COMPLETED, completion=True))
    assert after.status_code == 403  # after terminated
    assert api.get("/xapi/activities/state", params=au.state_params(), headers=au.auth).status_code == 403
    # the LMS wrote launched and satisfied (the AU and the course)
    registration = cmi5["registration"]
    assert len(lms_statements(api, acme, registration, v.LAUNCHED)) == 1
    satisfied = lms_statements(api, acme, registration, v.SATISFIED)
    assert [s["object"]["definition"]["type"] for s in satisfied] == [v.TYPE_COURSE]  # no block; none for an AU
    assert satisfied[0]["object"]["id"] != package["course"]["id"]  # LMS-generated (9.3.9.0-8)
    assert {"id": package["course"]["id"]} in satisfied[0]["context"]["contextActivities"]["grouping"]
    launched_st = lms_statements(api, acme, registration, v.LAUNCHED)[0]
    assert launched_st["context"]["extensions"][v.EXT_MASTERY_SCORE] == 0.3
    assert "fetch=" not in launched_st["context"]["extensions"][v.EXT_LAUNCH_URL]
    assert all(s["context"]["extensions"][v.EXT_SESSION_ID] == cmi5["au_session_id"] for s in satisfied)
    # progress in the sessions API
    shown = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert (shown["status"], shown["completion_status"], shown["success_status"]) == ("passed", "completed", "passed")
    assert shown["score"]["scaled"] == 0.8 and shown["score"]["raw"] == 8
    assert shown["cmi5"]["satisfied"] is True
    assert shown["cmi5"]["aus"][0]["success_status"] == "passed" and shown["cmi5"]["aus"][0]["satisfied"]
    # the AU's Exit goes to the returnURL: the course's overview, which launches nothing by itself
    back = urlsplit(au.launch_data["returnURL"])
    assert back.query == "returned=1"
    overview = api.get(f"{back.path}?{back.query}")
    assert overview.status_code == 200 and "Course complete." in overview.text
    assert 'data-state="satisfied"' in overview.text and "?au=" in overview.text
    # the player's own policy, nothing inline (no script, no style) that it would have to allow
    policy = overview.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script" not in overview.text and "<style" not in overview.text and " style=" not in overview.text
    again = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert again["cmi5"]["aus"][0]["launches"] == shown["cmi5"]["aus"][0]["launches"]  # no new AU session
    assert len(lms_statements(api, acme, registration, v.LAUNCHED)) == 1
    # its link launches the AU: a new AU session, as the learner chose
    link = overview.text.split('<a href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    relaunched = api.get(link, follow_redirects=False)
    assert relaunched.status_code in (200, 302), relaunched.text  # the AU's frame, or its own window
    assert len(lms_statements(api, acme, registration, v.LAUNCHED)) == 2


@needs_examples
def test_a_multi_au_course_new_launch_abandons_and_waive_satisfies(api: TestClient, acme: TenantKey) -> None:
    package, session = start(api, acme, "multi_au_framed.zip")
    aus = [a["id"] for a in package["course"]["children"] if a["type"] == "au"]
    first = launch(api, acme, session["id"])["cmi5"]
    assert first["au_id"] == aus[0] and first["launch_method"] == "AnyWindow"
    au = Au(api, first["url"])
    au.start()
    assert au.send(au.statement(v.INITIALIZED)).status_code == 200
    second = launch(api, acme, session["id"], au=aus[0])["cmi5"]  # a new launch abandons the open one
    abandoned = lms_statements(api, acme, first["registration"], v.ABANDONED)
    assert len(abandoned) == 1 and abandoned[0]["context"]["extensions"][v.EXT_SESSION_ID] == first["au_session_id"]
    assert "duration" in abandoned[0]["result"]
    assert au.send(au.statement(v.COMPLETED, completion=True)).status_code in (401, 403)
    au2 = Au(api, second["url"])
    au2.start()
    assert au2.send(au2.statement(v.INITIALIZED)).status_code == 200
    assert au2.send(au2.statement(v.COMPLETED, completion=True)).status_code == 200
    assert au2.send(au2.statement(v.TERMINATED)).status_code == 200
    nxt = launch(api, acme, session["id"])["cmi5"]
    hasty = Au(api, nxt["url"])  # initialized before asking for the learner preferences (11.0.0.0-3)
    token = hasty.fetch().json()["auth-token"]
    hasty.auth = {**XAPI, "Authorization": f"Basic {token}"}
    hasty.launch_data = api.get("/xapi/activities/state", params=hasty.state_params(), headers=hasty.auth).json()
    early = hasty.send(hasty.statement(v.INITIALIZED))
    assert early.status_code == 403 and "11.0.0.0-3" in early.text
    assert nxt["au_id"] == aus[1]  # the first unsatisfied AU
    by_id = api.post(f"/api/v1/cmi5/au-sessions/{nxt['au_session_id']}/abandon", headers=acme.headers)
    assert by_id.status_code == 200 and by_id.json()["abandoned"] == [nxt["au_session_id"]]
    assert api.post(f"/api/v1/sessions/{session['id']}/cmi5/abandon", headers=acme.headers).json()["abandoned"] == []
    for au_id in aus[1:]:
        answer = api.post(
            f"/api/v1/sessions/{session['id']}/cmi5/waive",
            json={"au": au_id, "reason": "Administrative"},
            headers=acme.headers,
        )
        assert answer.status_code == 200, answer.text
    assert answer.json()["satisfied"][-1] == package["course"]["id"]
    again = api.post(
        f"/api/v1/sessions/{session['id']}/cmi5/waive",
        json={"au": aus[-1], "reason": "Administrative"},
        headers=acme.headers,
    )
    assert again.status_code == 422  # already waived
    bad = api.post(
        f"/api/v1/sessions/{session['id']}/cmi5/waive", json={"au": "0", "reason": "Bored"}, headers=acme.headers
    )
    assert bad.status_code == 422
    shown = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert shown["completion_status"] == "completed" and shown["cmi5"]["satisfied"] is True
    waived = lms_statements(api, acme, first["registration"], v.WAIVED)
    assert len(waived) == len(aus) - 1
    assert waived[0]["result"]["extensions"][cmi5_registrations.RESULT_EXT_REASON] == "Administrative"
    assert {"id": v.CATEGORY_MOVE_ON} in waived[0]["context"]["contextActivities"]["category"]


@needs_examples
def test_the_registration_s_time_as_a_scorm_session_s(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    """`total_time_seconds` is what the AUs reported (terminated's duration), `server_time_seconds` the
    appliance's clock from each launch to the AU's last statement, a gap over 30 minutes not counted."""
    _, session = start(api, acme, "masteryscore_framed.zip")
    au = Au(api, launch(api, acme, session["id"])["cmi5"]["url"])
    au.start()
    clock.advance(10)
    assert au.send(au.statement(v.INITIALIZED)).status_code == 200
    clock.advance(20)
    assert au.send(au.statement(v.COMPLETED, completion=True)).status_code == 200
    clock.advance(7200)  # the learner went away: 30 minutes of it are counted, as for SCORM
    assert au.send(au.statement(v.TERMINATED, duration="PT2H30S")).status_code == 200
    shown = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert shown["server_time_seconds"] == 10 + 20 + cmi5_registrations.IDLE_SECONDS
    assert shown["total_time_seconds"] == 7230.0 and shown["total_time"] == "PT2H30S"
    assert shown["cmi5"]["aus"][0]["time_seconds"] == 7230.0
    clock.advance(600)
    second = Au(api, launch(api, acme, session["id"])["cmi5"]["url"])  # a launch adds no time of its own
    second.start()
    clock.advance(5)
    assert second.send(second.statement(v.INITIALIZED)).status_code == 200
    again = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert again["server_time_seconds"] == shown["server_time_seconds"] + 5
    clock.advance(100)
    launch(api, acme, session["id"])  # abandons the second AU session, which reported no time
    last = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert last["total_time_seconds"] == 7230.0 and last["cmi5"]["aus"][0]["time_seconds"] == 7230.0
    assert last["server_time_seconds"] == again["server_time_seconds"]  # up to its last statement
    registration = last["cmi5"]["registration"]
    assert lms_statements(api, acme, registration, v.ABANDONED)[0]["result"]["duration"] == "PT105S"


def test_every_answer_with_a_session_has_its_cmi5_block(api: TestClient, acme: TenantKey) -> None:
    """create, resume, read, list and PATCH answer the same session object (docs/api.md, sessions)."""
    from tests.faces.api.test_sessions import create, package_12

    package = upload_ready(api, acme, not_applicable_course())
    created = api.post(
        "/api/v1/sessions", json={"package_id": package["id"], "learner": {"id": "cy"}}, headers=acme.headers
    )
    assert created.status_code == 201 and created.json()["cmi5"]["aus"][0]["satisfied"] is True
    block = created.json()["cmi5"]
    resumed = api.post(
        "/api/v1/sessions", json={"package_id": package["id"], "learner": {"id": "cy"}}, headers=acme.headers
    )
    assert resumed.status_code == 200 and resumed.json()["id"] == created.json()["id"]
    assert resumed.json()["cmi5"] == block
    shown = api.get(f"/api/v1/sessions/{created.json()['id']}", headers=acme.headers).json()
    assert shown["cmi5"] == block
    scorm = create(api, acme, upload_ready(api, acme, package_12())["id"]).json()
    listed = {s["id"]: s for s in api.get("/api/v1/sessions", headers=acme.headers).json()["data"]}
    assert listed[created.json()["id"]]["cmi5"] == block
    assert "cmi5" not in listed[scorm["id"]]  # a SCORM session's object is unchanged
    patched = api.patch(
        f"/api/v1/sessions/{shown['id']}",
        json={"version": shown["version"], "expires_at": "2099-01-01T00:00:00Z"},
        headers=acme.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["cmi5"] == block and patched.json()["expires_at"].startswith("2099-01-01")
    scorm_patched = api.patch(
        f"/api/v1/sessions/{scorm['id']}",
        json={"version": scorm["version"], "expires_at": "2099-01-01T00:00:00Z"},
        headers=acme.headers,
    )
    assert scorm_patched.status_code == 200 and "cmi5" not in scorm_patched.json()


def test_the_idle_gap_is_the_scorm_runtime_s() -> None:
    from appliance.services.learning import signs_of_life

    assert cmi5_registrations.IDLE_SECONDS == signs_of_life.IDLE_SECONDS


@needs_examples
def test_the_learner_preferences_read_survives_a_restart(config: Config, clock: FixedClock, acme: TenantKey) -> None:
    """11.0.0.0-3 (initialized only after the AU asked for cmi5LearnerPreferences) across a restart."""
    with make_api(config, clock) as api:
        _, session = start(api, acme, "masteryscore_framed.zip")
        au = Au(api, launch(api, acme, session["id"])["cmi5"]["url"])
        au.start()  # asks for cmi5LearnerPreferences
    inst = Instance(config, clock)
    try:
        recorded = inst.tenant_db(acme.tenant_id).read_sync(
            lambda c: [r[0] for r in c.execute("SELECT preferences_read_at FROM cmi5_au_sessions")]
        )
    finally:
        inst.close()
    assert recorded == [clock.now()]
    with make_api(config, clock) as restarted:
        au.api = restarted
        answer = au.send(au.statement(v.INITIALIZED))
        assert answer.status_code == 200, answer.text


def not_applicable_course() -> bytes:
    """A two-AU course: one NotApplicable (satisfied at registration), one Completed."""
    import io
    import zipfile

    xml = b"""<?xml version="1.0" encoding="utf-8"?>
<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
  <course id="https://example.com/course/na"><title><langstring>NA</langstring></title>
    <description><langstring>d</langstring></description></course>
  <block id="https://example.com/block/1"><title><langstring>B</langstring></title>
    <description><langstring>d</langstring></description>
    <au id="https://example.com/au/na" moveOn="NotApplicable"><title><langstring>A</langstring></title>
      <description><langstring>d</langstring></description><url>index.html?x=1</url></au>
  </block>
  <au id="https://example.com/au/done" moveOn="Completed"><title><langstring>B</langstring></title>
    <description><langstring>d</langstring></description><url>index.html</url></au>
</courseStructure>"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cmi5.xml", xml)
        archive.writestr("index.html", "<!doctype html><title>AU</title>")
    return buffer.getvalue()


def test_not_applicable_aus_are_satisfied_at_registration(api: TestClient, acme: TenantKey, config: Config) -> None:
    package = upload_ready(api, acme, not_applicable_course())
    session = api.post(
        "/api/v1/sessions", json={"package_id": package["id"], "learner": {"id": "bo"}}, headers=acme.headers
    ).json()
    shown = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()["cmi5"]
    assert [a["satisfied"] for a in shown["aus"]] == [True, False]
    assert shown["blocks"] == [{"block_id": "https://example.com/block/1", "satisfied": True}]
    assert shown["satisfied"] is False
    satisfied = lms_statements(api, acme, shown["registration"], v.SATISFIED)
    assert [s["object"]["definition"]["type"] for s in satisfied] == [v.TYPE_BLOCK]
    # the launch picks the first unsatisfied AU; the player page frames it (AnyWindow) and serves its file
    page = api.get(session["launch_url"].replace("http://testserver.local", ""))
    assert page.status_code == 200 and '<iframe id="cmi5-au"' in page.text
    policy = page.headers["content-security-policy"]
    assert "frame-src 'self' http://testserver.local" in policy and "frame-ancestors" in policy
    launched = json.loads(page.text.split('id="cmi5-launch">', 1)[1].split("</script>", 1)[0])
    assert launched["au_id"] == "https://example.com/au/done"
    au = Au(api, launched["url"])
    content = api.get(launched["url"].replace("http://testserver.local", ""))
    assert content.status_code == 200 and "<title>AU</title>" in content.text
    au.start()
    # the token reads its own registration's statements only, and not one by id
    own = api.get("/xapi/statements", headers=au.auth)
    assert own.status_code == 200
    assert {s["context"]["registration"] for s in own.json()["statements"]} == {shown["registration"]}
    other = api.get("/xapi/statements", params={"registration": str(uuid.uuid4())}, headers=au.auth)
    assert other.status_code == 403
    assert au.send(au.statement(v.INITIALIZED)).status_code == 200
    assert au.send(au.statement(v.COMPLETED, completion=True)).status_code == 200
    after = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()
    assert after["cmi5"]["satisfied"] is True and after["status"] == "completed"
    # the same session event as a SCORM session's
    inst = Instance(config)
    try:
        events = inst.tenant_db(acme.tenant_id).read_sync(
            lambda c: list(c.execute("SELECT type, data FROM events WHERE subject_id = ?", (session["id"],)))
        )
    finally:
        inst.close()
    assert [e[0] for e in events] == ["session.created", "session.completed"]
    # its payload is the session as the sessions API answers it, the registration's `cmi5` member included
    payload = json.loads(events[1][1])["session"]
    assert payload["status"] == "completed" and payload["cmi5"] == after["cmi5"], payload


@needs_examples
def test_own_window_redirects_and_stale_au_sessions_are_abandoned(
    api: TestClient, acme: TenantKey, config: Config, clock: FixedClock
) -> None:
    _, session = start(api, acme, "masteryscore_framed.zip")
    page = api.get(session["launch_url"].replace("http://testserver.local", ""), follow_redirects=False)
    assert page.status_code == 302 and "fetch=" in page.headers["location"]
    au = Au(api, page.headers["location"])
    au.start()
    forged = {**XAPI, "Authorization": "Basic " + au.auth["Authorization"].split()[1][:-4] + "AAAA"}
    assert api.get("/xapi/activities/state", params=au.state_params(), headers=forged).status_code == 401
    inst = Instance(config, clock)
    try:
        assert cmi5_registrations.abandon_stale(inst) == 0  # within its TTL
        clock.advance(config.launch_token_ttl_seconds + 1)
        assert api.get("/xapi/activities/state", params=au.state_params(), headers=au.auth).status_code == 403
        assert cmi5_registrations.abandon_stale(inst) == 1
        assert cmi5_registrations.abandon_stale(inst) == 0
    finally:
        inst.close()
    registration = api.get(f"/api/v1/sessions/{session['id']}", headers=acme.headers).json()["cmi5"]["registration"]
    assert len(lms_statements(api, acme, registration, v.ABANDONED)) == 1


def test_a_browser_s_401_carries_no_challenge(api: TestClient) -> None:
    """An AU's script handles a refused token itself: a Basic challenge would open the browser's prompt."""
    bogus = {**XAPI, "Authorization": "Basic Y2F0YXB1bHQ6ZmlyZQ=="}
    from_page = api.put(
        "/xapi/statements",
        params={"statementId": str(uuid.uuid4())},
        json={},
        headers={**bogus, "Origin": "http://au.example"},
    )
    assert from_page.status_code == 401 and "www-authenticate" not in from_page.headers
    plain = api.get("/xapi/statements", headers=bogus)
    assert plain.status_code == 401 and plain.headers["www-authenticate"].startswith("Basic")
