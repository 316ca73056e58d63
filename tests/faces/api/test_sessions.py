"""Sessions through the API and the player's runtime endpoints, on real SQLite files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock, rfc3339
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning.sessions import expire_sessions
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, build_zip, make_client, manifest_12, manifest_2004, upload_ready

SESSIONS = "/api/v1/sessions"


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def package_2004_single() -> bytes:
    manifest = manifest_2004().replace(b'<item identifier="b" identifierref="sco_b"><title>B</title></item>', b"")
    return build_zip({"imsmanifest.xml": manifest, "a.html": b"<html>A</html>", "b.html": b"<html>B</html>"})


def package_12() -> bytes:
    return build_zip({"imsmanifest.xml": manifest_12("One SCO"), "index.html": b"<html>hello</html>"})


def package_12_multi() -> bytes:
    return build_zip(
        {
            "imsmanifest.xml": manifest_12("Two SCOs", ("one.html", "two.html")),
            "one.html": b"<html>1</html>",
            "two.html": b"<html>2</html>",
        }
    )


def create(api: TestClient, who: TenantKey, package_id: str, learner: str = "learner-1", **extra: Any) -> Any:
    body = {"package_id": package_id, "learner": {"id": learner, "name": "Ann Learner"}, **extra}
    return api.post(SESSIONS, json=body, headers=who.headers)


def player_path(session: dict[str, Any]) -> str:
    url = session["launch_url"]
    return url[url.index("/player/") :]


class Player:
    """Drives the runtime endpoints as player.js does."""

    def __init__(self, api: TestClient, session: dict[str, Any], client_id: str = "page-1") -> None:
        self.api = api
        self.path = player_path(session)
        self.client_id = client_id
        self.seq = 0
        self.version: int | None = None
        self.activity: str | None = None
        self.cmi: dict[str, str] = {}

    def launch(self) -> dict[str, Any]:
        response = self.api.post(f"{self.path}/launch")
        assert response.status_code == 200, response.text
        data = response.json()
        self.version = data["version"]
        if data["delivery"]:
            self.activity = data["delivery"]["activity"]
            self.cmi = data["delivery"]["cmi"]
        return data

    def commit(
        self, changes: dict[str, str], *, terminate: bool = False, nav: str | None = None, seq: int | None = None
    ) -> Any:
        if seq is None:
            self.seq += 1
            seq = self.seq
        body = {
            "client_id": self.client_id,
            "seq": seq,
            "activity": self.activity,
            "version": self.version,
            "changes": changes,
            "terminate": terminate,
            "nav_request": nav,
        }
        response = self.api.post(f"{self.path}/commit", json=body)
        if response.status_code == 200 and "version" in response.json():
            self.version = response.json()["version"]
            delivery = response.json().get("delivery")
            if delivery:
                self.activity, self.cmi = delivery["activity"], delivery["cmi"]
        return response


def read(api: TestClient, who: TenantKey, session_id: str, cmi: bool = True) -> dict[str, Any]:
    response = api.get(f"{SESSIONS}/{session_id}" + ("?include=cmi" if cmi else ""), headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- the sessions API ------------------------------------------------------------------------------


def test_create_then_resume_the_incomplete_session(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    first = create(api, acme, package["id"])
    assert first.status_code == 201, first.text
    session = first.json()
    assert session["id"].startswith("ses_")
    assert session["status"] == "not_started"
    assert session["package_version"] == 1
    assert session["learner"] == {"id": "learner-1", "name": "Ann Learner"}
    assert session["launch_url"].startswith("http://testserver.local/player/")
    again = create(api, acme, package["id"])
    assert again.status_code == 200
    assert again.json()["id"] == session["id"]
    fresh = create(api, acme, package["id"], resume=False)
    assert fresh.status_code == 201
    assert fresh.json()["id"] != session["id"]


def test_create_errors(api: TestClient, acme: TenantKey, config: Config) -> None:
    assert_error(create(api, acme, "pkg_nope"), 404, "NOT_FOUND")
    response = api.post(SESSIONS, json={"package_id": "x"}, headers=acme.headers)
    assert_error(response, 422, "VALIDATION_ERROR")
    response = api.post(SESSIONS, content=b"{not json", headers={**acme.headers, "Content-Type": "application/json"})
    assert_error(response, 422, "VALIDATION_ERROR")
    # a package still processing has no ready version
    processing = api.post(
        "/api/v1/packages", content=package_12(), headers={**acme.headers, "Content-Type": "application/zip"}
    )
    assert_error(create(api, acme, processing.json()["id"]), 409, "PACKAGE_NOT_READY")


def test_list_filters_and_pagination(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    ids = [create(api, acme, package["id"], learner=f"l{n}").json()["id"] for n in range(3)]
    listed = api.get(f"{SESSIONS}?package_id={package['id']}", headers=acme.headers).json()
    assert [s["id"] for s in listed["data"]] == ids
    assert api.get(f"{SESSIONS}?learner_id=l1", headers=acme.headers).json()["data"][0]["id"] == ids[1]
    page = api.get(f"{SESSIONS}?limit=2", headers=acme.headers).json()
    assert len(page["data"]) == 2
    rest = api.get(f"{SESSIONS}?limit=2&cursor={page['next_cursor']}", headers=acme.headers).json()
    assert [s["id"] for s in rest["data"]] == ids[2:]
    assert rest["next_cursor"] is None
    assert_error(api.get(f"{SESSIONS}?status=bogus", headers=acme.headers), 422, "VALIDATION_ERROR")


def test_other_tenant_sees_404_everywhere(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    sid = session["id"]
    assert_error(api.get(f"{SESSIONS}/{sid}", headers=globex.headers), 404, "NOT_FOUND")
    assert_error(api.patch(f"{SESSIONS}/{sid}", json={"version": 1}, headers=globex.headers), 404, "NOT_FOUND")
    assert_error(api.post(f"{SESSIONS}/{sid}/launch", headers=globex.headers), 404, "NOT_FOUND")
    assert_error(api.delete(f"{SESSIONS}/{sid}", headers=globex.headers), 404, "NOT_FOUND")
    assert_error(create(api, globex, package["id"]), 404, "NOT_FOUND")
    assert api.get(f"{SESSIONS}", headers=globex.headers).json()["data"] == []
    assert read(api, acme, sid)["version"] == session["version"]


def test_patch_with_optimistic_locking_and_cmi_validation(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    sid = session["id"]
    ok = api.patch(
        f"{SESSIONS}/{sid}",
        json={"version": session["version"], "cmi": {"cmi.core.lesson_status": "passed", "cmi.core.score.raw": "91"}},
        headers=acme.headers,
    )
    assert ok.status_code == 200, ok.text
    patched = ok.json()
    assert patched["version"] == session["version"] + 1
    assert patched["status"] == "passed"
    assert patched["score"]["raw"] == 91
    # a stale version changes nothing
    stale = api.patch(
        f"{SESSIONS}/{sid}",
        json={"version": session["version"], "cmi": {"cmi.core.score.raw": "5"}},
        headers=acme.headers,
    )
    body = assert_error(stale, 409, "VERSION_CONFLICT")
    assert body["details"]["current_version"] == patched["version"]
    # one bad value rejects the whole update, with each element's SCORM error code
    bad = api.patch(
        f"{SESSIONS}/{sid}",
        json={
            "version": patched["version"],
            "cmi": {"cmi.core.score.raw": "50", "cmi.core.lesson_status": "great", "cmi.core.student_id": "x"},
        },
        headers=acme.headers,
    )
    errors = assert_error(bad, 422, "CMI_VALIDATION_ERROR")["details"]["errors"]
    by_element = {e["element"]: e["scorm_error_code"] for e in errors}
    assert by_element == {"cmi.core.lesson_status": 405, "cmi.core.student_id": 403}
    after = read(api, acme, sid)
    assert after["version"] == patched["version"]
    assert after["cmi"]["cmi.core.score.raw"] == "91"
    assert after["score"]["raw"] == 91


def test_patch_expiry_and_expired_sessions(config: Config, acme: TenantKey) -> None:
    clock = FixedClock(start=1_900_000_000.0)
    from appliance.faces.app import create_app

    with TestClient(create_app(config, clock=clock, start_scheduler=False), raise_server_exceptions=False) as api:
        package = upload_ready(api, acme, package_12())
        session = create(api, acme, package["id"]).json()
        sid = session["id"]
        assert session["expires_at"] == rfc3339(clock.now() + 86_400)
        later = rfc3339(clock.now() + 3 * 86_400)
        extended = api.patch(
            f"{SESSIONS}/{sid}", json={"version": session["version"], "expires_at": later}, headers=acme.headers
        )
        assert extended.json()["expires_at"] == later
        assert_error(
            api.patch(
                f"{SESSIONS}/{sid}",
                json={"version": extended.json()["version"], "expires_at": "yesterday"},
                headers=acme.headers,
            ),
            422,
            "VALIDATION_ERROR",
        )
        clock.advance(3 * 86_400 + 1)
        inst = Instance(config, clock)
        try:
            assert expire_sessions(inst) == 1
            assert expire_sessions(inst) == 0
        finally:
            inst.close()
        expired = read(api, acme, sid, cmi=False)
        assert expired["status"] == "expired"
        assert_error(api.post(f"{SESSIONS}/{sid}/launch", headers=acme.headers), 410, "SESSION_EXPIRED")
        # the old launch link has expired too (tokens live launch_token_ttl_seconds)
        assert assert_error(api.post(f"{player_path(session)}/launch"), 404, "NOT_FOUND")["details"] == {
            "expired": True
        }


def test_delete(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    sid = create(api, acme, package["id"]).json()["id"]
    assert api.delete(f"{SESSIONS}/{sid}", headers=acme.headers).status_code == 204
    assert_error(api.get(f"{SESSIONS}/{sid}", headers=acme.headers), 404, "NOT_FOUND")


# -- the runtime endpoints -------------------------------------------------------------------------


def test_12_session_records_status_score_and_time_then_resumes(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    launched = player.launch()
    assert launched["delivery"]["href"] == "index.html"
    assert player.cmi["cmi.core.entry"] == "ab-initio"
    assert player.cmi["cmi.core.student_id"] == "learner-1"
    ok = player.commit(
        {"cmi.core.lesson_location": "page-7", "cmi.suspend_data": "state=7", "cmi.core.score.raw": "40"}
    )
    assert ok.status_code == 200, ok.text
    done = player.commit({"cmi.core.session_time": "00:02:30", "cmi.core.exit": "suspend"}, terminate=True)
    assert done.status_code == 200, done.text
    stored = read(api, acme, session["id"])
    assert stored["total_time_seconds"] == 150
    assert stored["cmi"]["cmi.core.total_time"] == "0000:02:30.00"
    assert stored["cmi"]["cmi.core.lesson_status"] == "completed"  # 1.2: finishing with no status completes
    assert stored["score"]["raw"] == 40
    # relaunch: resume with the same location and suspend data
    again = Player(api, session, client_id="page-2")
    again.launch()
    assert again.cmi["cmi.core.entry"] == "resume"
    assert again.cmi["cmi.core.lesson_location"] == "page-7"
    assert again.cmi["cmi.suspend_data"] == "state=7"
    again.commit({"cmi.core.session_time": "00:00:30"}, terminate=True)
    assert read(api, acme, session["id"])["total_time_seconds"] == 180  # added once per session of use


def test_replayed_commit_is_harmless(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    player.commit({"cmi.core.lesson_location": "1"})
    terminate = player.commit({"cmi.core.session_time": "00:01:00"}, terminate=True)
    assert terminate.status_code == 200
    replay = player.commit({"cmi.core.session_time": "00:01:00"}, terminate=True, seq=player.seq)
    assert replay.json()["replayed"] is True
    assert read(api, acme, session["id"])["total_time_seconds"] == 60


def test_runtime_version_conflict_and_rejected_values_change_nothing(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    player.commit({"cmi.core.lesson_location": "a"})
    other = Player(api, session, client_id="page-2")
    other.version, other.activity = player.version, player.activity
    assert other.commit({"cmi.core.lesson_location": "b"}).status_code == 200
    conflict = player.commit({"cmi.core.lesson_location": "c"})
    current = assert_error(conflict, 409, "VERSION_CONFLICT")["details"]["current_version"]
    player.version = current  # the player resends the same batch on the new version
    assert player.commit({"cmi.core.lesson_location": "c"}, seq=player.seq).status_code == 200
    before = read(api, acme, session["id"])
    bad = player.commit({"cmi.core.lesson_location": "d", "cmi.core.score.raw": "101"})
    errors = assert_error(bad, 422, "CMI_VALIDATION_ERROR")["details"]["errors"]
    assert errors[0]["element"] == "cmi.core.score.raw"
    assert errors[0]["scorm_error_code"] == 405
    after = read(api, acme, session["id"])
    assert after["cmi"]["cmi.core.lesson_location"] == "c"
    assert after["version"] == before["version"]


def test_2004_terminate_evaluates_status_and_normal_exit_starts_a_new_attempt(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_2004_single())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    assert player.cmi["cmi.entry"] == "ab-initio"
    changes = {
        "cmi.completion_status": "completed",
        "cmi.success_status": "passed",
        "cmi.score.scaled": "0.9",
        "cmi.score.raw": "90",
        "cmi.session_time": "PT1M",
        "cmi.exit": "normal",
        "cmi.location": "end",
    }
    done = player.commit(changes, terminate=True)
    assert done.status_code == 200, done.text
    stored = read(api, acme, session["id"])
    assert stored["status"] == "passed"
    assert stored["success_status"] == "passed"
    assert stored["score"]["scaled"] == 0.9
    assert stored["total_time"] == "PT1M"
    again = Player(api, session, client_id="page-2")
    again.launch()
    assert again.cmi["cmi.entry"] == "ab-initio"
    assert "cmi.location" not in again.cmi  # a new attempt starts with fresh data


def test_a_terminate_sent_again_under_a_new_seq_does_not_count_its_time_twice(api: TestClient, acme: TenantKey) -> None:
    """A page going away may send its last batch twice (a fetch and a beacon); when the second copy has a
    sequence number of its own it is not a replay, but the SCO session has ended: its session_time,
    consumed by the Terminate, must not be stored again and counted at the next launch."""
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    last = {"cmi.core.session_time": "00:01:00", "cmi.core.exit": "suspend", "cmi.suspend_data": "s"}
    assert player.commit(last, terminate=True).status_code == 200
    player.version = None  # a beacon carries no version
    again = player.commit({**last, "cmi.core.lesson_location": "p"}, terminate=True)
    assert again.status_code == 200, again.text
    stored = read(api, acme, session["id"])
    assert stored["total_time_seconds"] == 60
    assert "cmi.core.session_time" not in stored["cmi"]
    assert stored["cmi"]["cmi.core.lesson_location"] == "p"  # the late copy's other values are kept
    relaunched = Player(api, session, client_id="page-2")
    relaunched.launch()
    assert relaunched.cmi["cmi.core.entry"] == "resume"
    assert relaunched.cmi["cmi.core.total_time"] == "0000:01:00.00"


def test_multi_sco_navigation(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12_multi())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    launched = player.launch()
    assert launched["delivery"]["activity"] == "item0"
    assert launched["controls"]["continue"] is True
    moved = player.commit({"cmi.core.lesson_status": "completed"}, terminate=True, nav="continue")
    assert moved.status_code == 200, moved.text
    assert moved.json()["delivery"]["activity"] == "item1"
    finished = player.commit({"cmi.core.lesson_status": "completed"}, terminate=True)
    assert finished.status_code == 200
    stored = read(api, acme, session["id"])
    assert stored["status"] == "completed"
    assert set(stored["activities"]) == {"item0", "item1"}
    back = api.post(f"{player.path}/navigate", json={"request": "previous"})
    assert back.status_code == 200, back.text
    assert back.json()["delivery"]["activity"] == "item0"
    bogus = api.post(f"{player.path}/navigate", json={"request": "teleport"})
    assert_error(bogus, 422, "VALIDATION_ERROR")


def test_launch_tokens_and_content(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    other = upload_ready(
        api, acme, build_zip({"imsmanifest.xml": manifest_12("Other", ("secret.html",)), "secret.html": b"B"})
    )
    session = create(api, acme, package["id"]).json()
    path = player_path(session)
    page = api.get(path)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    bootstrap = json.loads(page.text.split('id="bootstrap">')[1].split("</script>")[0])
    assert bootstrap["scorm_version"] == "1.2"
    file = api.get(f"{path}/content/index.html")
    assert file.status_code == 200
    assert file.content == b"<html>hello</html>"
    assert file.headers["content-type"].startswith("text/html")
    assert file.headers["x-frame-options"] == "SAMEORIGIN"
    cached = api.get(f"{path}/content/index.html", headers={"If-None-Match": file.headers["etag"]})
    assert cached.status_code == 304
    ranged = api.get(f"{path}/content/index.html", headers={"Range": "bytes=6-10"})
    assert ranged.status_code == 206
    assert ranged.content == b"hello"
    assert ranged.headers["content-range"] == "bytes 6-10/18"
    assert api.get(f"{path}/content/index.html", headers={"Range": "bytes=500-"}).status_code == 416
    for escape in (
        "secret.html",
        "../../registry.db",
        "..%2F..%2Fregistry.db",
        "%2e%2e/%2e%2e/registry.db",
        "imsmanifest.xml/..",
    ):
        assert_error(api.get(f"{path}/content/{escape}"), 404, "NOT_FOUND")
    assert other["id"] != package["id"]
    token = path.split("/")[2]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_error(api.get(f"/player/{forged}"), 404, "NOT_FOUND")
    assert_error(api.get(f"/player/{forged}/content/index.html"), 404, "NOT_FOUND")
    assert_error(api.post(f"/player/{forged}/launch"), 404, "NOT_FOUND")


def test_active_version_with_migrate_sessions(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    unfinished = create(api, acme, package["id"], learner="a").json()
    finished = create(api, acme, package["id"], learner="b").json()
    api.patch(
        f"{SESSIONS}/{finished['id']}",
        json={"version": finished["version"], "cmi": {"cmi.core.lesson_status": "passed"}},
        headers=acme.headers,
    )
    upload = api.post(
        f"/api/v1/packages/{package['id']}/versions",
        content=package_12(),
        headers={**acme.headers, "Content-Type": "application/zip"},
    )
    assert upload.status_code == 202, upload.text
    from tests.faces.api.test_packages import drain

    drain(api)
    # a new ready version becomes active for new sessions; existing ones stay pinned
    assert api.get(f"/api/v1/packages/{package['id']}", headers=acme.headers).json()["active_version"] == 2
    assert read(api, acme, unfinished["id"], cmi=False)["package_version"] == 1
    pin = api.patch(f"/api/v1/packages/{package['id']}", json={"active_version": 1}, headers=acme.headers)
    assert pin.json()["active_version"] == 1
    moved = api.patch(
        f"/api/v1/packages/{package['id']}",
        json={"active_version": 2, "migrate_sessions": "incomplete"},
        headers=acme.headers,
    )
    assert moved.status_code == 200, moved.text
    assert read(api, acme, unfinished["id"], cmi=False)["package_version"] == 2
    assert read(api, acme, finished["id"], cmi=False)["package_version"] == 1
    api.patch(
        f"/api/v1/packages/{package['id']}", json={"active_version": 1, "migrate_sessions": "all"}, headers=acme.headers
    )
    assert read(api, acme, finished["id"], cmi=False)["package_version"] == 1
    assert read(api, acme, unfinished["id"], cmi=False)["package_version"] == 1
    bad = api.patch(f"/api/v1/packages/{package['id']}", json={"migrate_sessions": "some"}, headers=acme.headers)
    assert_error(bad, 422, "VALIDATION_ERROR")
