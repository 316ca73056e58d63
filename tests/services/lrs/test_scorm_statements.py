"""SCORM sessions as xAPI, end to end through the routes: a real session driven as player.js drives it,
then its statements read back through GET /xapi/statements with an LRS credential."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.core.xapi.scorm_profile import NAMESPACE
from appliance.instance import Instance
from appliance.services.lrs import scorm_statements
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import upload_ready
from tests.faces.api.test_roles import key_with_role
from tests.faces.api.test_sessions import Player, create, package_12, package_12_multi, package_2004_single
from tests.faces.api.xapi.conftest import LrsClient, make_lrs_client

V = "http://adlnet.gov/expapi/verbs/"
HOME = "https://learn.example.org"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def api(config: Config, clock: FixedClock) -> Iterator[TestClient]:
    with make_api(config.with_overrides({"public_url": HOME}), clock) as client:
        yield client


@pytest.fixture
def lrs(config: Config, acme: TenantKey) -> LrsClient:
    return make_lrs_client(config, acme.tenant_id, "read")


def instance(api: TestClient) -> Instance:
    return api.app.state.instance  # type: ignore[no-any-return]


def statements(api: TestClient, lrs: LrsClient, **params: str) -> list[dict[str, Any]]:
    """Store what the run-time queued (the scheduler's sweep), then read it back through the LRS, oldest first."""
    scorm_statements.flush_all(instance(api))
    response = api.get("/xapi/statements", params={"ascending": "true", **params}, headers=lrs.headers)
    assert response.status_code == 200, response.text
    return response.json()["statements"]  # type: ignore[no-any-return]


def verbs(found: list[dict[str, Any]]) -> list[str]:
    return [s["verb"]["id"].removeprefix(V) for s in found]


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_2004_session_is_its_statements_in_order_with_scores_durations_and_registration(
    api: TestClient, acme: TenantKey, lrs: LrsClient, clock: FixedClock
) -> None:
    package = upload_ready(api, acme, package_2004_single())
    session = create(api, acme, package["id"], learner="ada-7").json()
    player = Player(api, session)
    player.launch()
    clock.advance(5)
    ok(
        player.commit(
            {
                "cmi.interactions.0.id": "q1",
                "cmi.interactions.0.type": "choice",
                "cmi.interactions.0.correct_responses.0.pattern": "b",
                "cmi.interactions.0.learner_response": "b",
                "cmi.interactions.0.result": "correct",
                "cmi.progress_measure": "0.5",
                "cmi.location": "page-2",
            }
        )
    )
    ok(player.commit({"cmi.suspend_data": "state"}))  # means nothing
    clock.advance(5)
    ok(player.commit({"cmi.exit": "suspend", "cmi.session_time": "PT1M30S"}, terminate=True, nav="suspendAll"))
    clock.advance(60)
    player.launch()  # the learner comes back
    ok(
        player.commit(
            {
                "cmi.completion_status": "completed",
                "cmi.success_status": "passed",
                "cmi.score.scaled": "0.9",
                "cmi.score.raw": "90",
                "cmi.score.min": "0",
                "cmi.score.max": "100",
            }
        )
    )
    ok(player.commit({"cmi.exit": "normal", "cmi.session_time": "PT2M"}, terminate=True))

    registration = str(uuid.uuid5(NAMESPACE, session["id"]))
    found = statements(api, lrs, registration=registration)
    assert verbs(found) == [
        "launched",
        "initialized",
        "responded",
        "progressed",
        "suspended",
        "launched",
        "resumed",
        "completed",
        "passed",
        "passed",  # the course: the session's own status
        "terminated",
    ]
    assert {s["context"]["registration"] for s in found} == {registration}
    assert {s["actor"]["account"]["homePage"] for s in found} == {HOME}
    assert {s["actor"]["account"]["name"] for s in found} == {"ada-7"}
    course = f"{HOME}/scorm/packages/{package['id']}"
    assert found[0]["object"]["id"] == course == found[9]["object"]["id"]
    sco = f"{course}/scos/a"
    assert [s["object"]["id"] for s in found if s["verb"]["id"].endswith(("initialized", "suspended", "resumed"))] == [
        sco
    ] * 3
    responded = found[2]
    assert responded["object"]["id"] == f"{sco}/interactions/q1"
    assert responded["result"] == {"response": "b", "success": True}
    assert found[3]["result"] == {"score": {"scaled": 0.5}}
    assert found[4]["result"]["duration"] == "PT0H1M30S"
    score = {"scaled": 0.9, "raw": 90.0, "min": 0.0, "max": 100.0}
    assert found[8]["result"] == {"score": score, "success": True, "completion": True}
    assert found[10]["result"] == {"score": score, "success": True, "completion": True, "duration": "PT0H2M0S"}
    # The suspended attempt is the one resumed: one attempt activity throughout.
    attempts = {
        s["context"]["contextActivities"]["grouping"][0]["id"]
        for s in found
        if "grouping" in s["context"]["contextActivities"] and len(s["context"]["contextActivities"]["grouping"]) == 2
    }
    assert len(attempts) == 1
    assert found[0]["timestamp"] == "2027-01-15T08:00:00.000Z"
    assert found[4]["timestamp"] == "2027-01-15T08:00:10.000Z"
    assert found[0]["authority"]["account"]["name"] == "scorm"
    # The session's statements are the learner's: the agent filter finds them too.
    agent = json.dumps({"account": {"homePage": HOME, "name": "ada-7"}})
    assert len(statements(api, lrs, agent=agent)) == len(found)


def test_a_1_2_session_answers_pass_and_session_time(api: TestClient, acme: TenantKey, lrs: LrsClient) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    changes = {
        "cmi.interactions.0.id": "tf1",
        "cmi.interactions.0.type": "true-false",
        "cmi.interactions.0.student_response": "t",
        "cmi.interactions.0.result": "wrong",
        "cmi.core.lesson_status": "passed",
        "cmi.core.score.raw": "80",
        "cmi.core.session_time": "0000:00:30.00",
    }
    ok(player.commit(changes, terminate=True))
    found = statements(api, lrs, registration=str(uuid.uuid5(NAMESPACE, session["id"])))
    # The SCO's results, its end, then the course's result (the session's, refreshed as the Terminate ends).
    assert verbs(found) == ["launched", "initialized", "responded", "completed", "passed", "terminated", "passed"]
    assert found[2]["result"] == {"response": "true", "success": False}
    assert found[2]["object"]["definition"]["interactionType"] == "true-false"
    assert found[-1]["object"]["definition"]["type"] == "http://adlnet.gov/expapi/activities/course"
    assert found[-2]["result"] == {
        "score": {"scaled": 0.8, "raw": 80.0},
        "success": True,
        "completion": True,
        "duration": "PT0H0M30S",
    }
    assert found[0]["actor"]["name"] == "Ann Learner"


def test_a_terminate_delivering_the_next_sco_is_terminated_then_initialized_and_a_navigation_too(
    api: TestClient, acme: TenantKey, lrs: LrsClient
) -> None:
    package = upload_ready(api, acme, package_12_multi())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    assert player.launch()["delivery"]["activity"] == "item0"
    ok(player.commit({"cmi.core.lesson_status": "completed"}, terminate=True, nav="continue"))
    assert player.activity == "item1"
    ok(player.commit({"cmi.core.exit": "suspend"}, terminate=True))
    back = ok(api.post(f"{player.path}/navigate", json={"request": "previous"}))
    assert back["delivery"]["activity"] == "item0"
    found = statements(api, lrs, registration=str(uuid.uuid5(NAMESPACE, session["id"])))
    assert verbs(found) == [
        "launched",
        "initialized",
        "completed",
        "terminated",
        "initialized",
        "completed",  # 1.2's LMSFinish rule: a status the SCO never set becomes completed
        "suspended",
        "completed",  # the course: both SCOs completed
        "initialized",  # item0 again, a new SCO session (not resumed: it exited normally)
    ]
    objects = [s["object"]["id"].rsplit("/", 1)[1] for s in found]
    assert objects == [package["id"]] + ["item0"] * 3 + ["item1"] * 3 + [package["id"], "item0"]
    assert found[1]["object"]["definition"]["name"] == {"und": "Lesson 0"}
    assert found[0]["object"]["definition"]["name"] == {"und": "Two SCOs"}  # the organization's title
    first, again = (s["context"]["contextActivities"]["grouping"][0]["id"] for s in (found[1], found[8]))
    assert first == again  # SCORM 1.2 has no new attempt after a normal exit: the data (and attempt) carry on


def test_the_tenants_switch_turns_statements_off_and_drops_what_was_queued(
    api: TestClient, acme: TenantKey, lrs: LrsClient
) -> None:
    inst = instance(api)
    assert scorm_statements.enabled(inst, acme.tenant_id)
    package = upload_ready(api, acme, package_12())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()  # queued while on
    scorm_statements.set_enabled(inst, acme.tenant_id, False)
    ok(player.commit({"cmi.core.lesson_status": "completed"}, terminate=True))
    assert statements(api, lrs) == []
    assert (
        inst.tenant_db(acme.tenant_id).read_sync(
            lambda c: c.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0]
        )
        == 0
    )
    scorm_statements.set_enabled(inst, acme.tenant_id, True)
    player = Player(api, create(api, acme, package["id"], learner="other").json())
    player.launch()
    assert verbs(statements(api, lrs)) == ["launched", "initialized"]


def test_the_instance_default_off_stores_nothing(config: Config, clock: FixedClock, acme: TenantKey) -> None:
    lrs = make_lrs_client(config, acme.tenant_id, "read")
    with make_api(config.with_overrides({"xapi_scorm_statements": "false"}), clock) as api:
        assert not scorm_statements.enabled(instance(api), acme.tenant_id)
        package = upload_ready(api, acme, package_12())
        Player(api, create(api, acme, package["id"]).json()).launch()
        assert statements(api, lrs) == []


def test_a_commit_meaning_nothing_queues_nothing(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()
    db = instance(api).tenant_db(acme.tenant_id)
    count = lambda: db.read_sync(lambda c: c.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0])  # noqa: E731
    queued = count()
    for n in range(3):
        ok(player.commit({"cmi.core.lesson_location": f"p{n}", "cmi.suspend_data": "x" * 100}))
    assert count() == queued
    ok(player.commit({"cmi.core.lesson_status": "incomplete"}))  # a default: no statement either
    assert count() == queued


def test_the_switch_through_the_api_admins_only(api: TestClient, acme: TenantKey, config: Config) -> None:
    shown = ok(api.get("/api/v1/xapi/scorm", headers=acme.headers))
    assert shown == {
        "enabled": True,
        "tenant_setting": None,
        "instance_default": True,
        "home_page": HOME,
        "queued": 0,
    }
    off = ok(api.put("/api/v1/xapi/scorm", json={"enabled": False}, headers=acme.headers))
    assert off["enabled"] is False and off["tenant_setting"] is False
    assert not scorm_statements.enabled(instance(api), acme.tenant_id)
    back = ok(api.put("/api/v1/xapi/scorm", json={"enabled": None}, headers=acme.headers))
    assert back["enabled"] is True and back["tenant_setting"] is None
    member = key_with_role(config, acme, "member")
    assert api.get("/api/v1/xapi/scorm", headers=member.headers).status_code == 403
    refused = api.put("/api/v1/xapi/scorm", json={"enabled": "no"}, headers=acme.headers)
    assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR"


def test_the_schedulers_sweep_stores_them(api: TestClient, acme: TenantKey, lrs: LrsClient, clock: FixedClock) -> None:
    package = upload_ready(api, acme, package_12())
    Player(api, create(api, acme, package["id"]).json()).launch()
    scheduler = api.app.state.scheduler
    assert [p.interval for p in scheduler.periodic if p.name == "xapi-scorm-statements"] == [1.0]
    clock.advance(3600)  # every sweep is due
    api.blocking_portal.call(scheduler.tick)
    response = api.get("/xapi/statements", headers=lrs.headers)
    assert verbs(response.json()["statements"]) == ["initialized", "launched"]  # newest first


def test_a_refused_commit_queues_nothing(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()
    db = instance(api).tenant_db(acme.tenant_id)
    queued = db.read_sync(lambda c: c.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0])
    refused = player.commit({"cmi.core.lesson_status": "passed", "cmi.core.score.raw": "not a number"})
    assert refused.status_code == 422, refused.text
    assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0]) == queued


def test_a_row_that_cannot_be_stored_is_dropped_not_holding_up_the_rest(
    api: TestClient, acme: TenantKey, lrs: LrsClient, caplog: pytest.LogCaptureFixture
) -> None:
    package = upload_ready(api, acme, package_12())
    Player(api, create(api, acme, package["id"], learner="first").json()).launch()
    db = instance(api).tenant_db(acme.tenant_id)
    db.write_sync(
        lambda c: c.execute(
            "INSERT INTO xapi_scorm_outbox (session_id, created_at, statements) VALUES ('ses_x', 0, ?)", (b"{not json",)
        )
    )
    Player(api, create(api, acme, package["id"], learner="second").json()).launch()
    found = statements(api, lrs)
    assert [(s["actor"]["account"]["name"], v) for s, v in zip(found, verbs(found), strict=True)] == [
        ("first", "launched"),
        ("first", "initialized"),
        ("second", "launched"),
        ("second", "initialized"),
    ]
    assert "dropped SCORM statements of session ses_x" in caplog.text
    assert db.read_sync(lambda c: c.execute("SELECT count(*) FROM xapi_scorm_outbox").fetchone()[0]) == 0


def test_a_session_produces_at_most_its_cap_of_statements(
    api: TestClient, acme: TenantKey, lrs: LrsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scorm_statements, "MAX_SESSION_STATEMENTS", 5)
    package = upload_ready(api, acme, package_12())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()  # 2
    answers = {}
    for n in range(4):
        answers |= {f"cmi.interactions.{n}.id": f"q{n}", f"cmi.interactions.{n}.student_response": "a"}
    ok(player.commit(answers))  # 4 more answered: 3 fit
    ok(player.commit({"cmi.core.lesson_status": "completed"}, terminate=True))  # none fits
    found = statements(api, lrs)
    assert verbs(found) == ["launched", "initialized", "responded", "responded", "responded"]
    other = Player(api, create(api, acme, package["id"], learner="other").json())
    other.launch()  # another session has its own count
    assert len(statements(api, lrs)) == 7
