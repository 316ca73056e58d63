"""LTI routes through the Litestar test client: registrations, the tool's keys and their rotation, and
AGS score passback on every change with retries, against the test platform (tests/lti_platform.py)
listening on 127.0.0.1.

The app runs on a FixedClock at the real time with its scheduler stopped: `pump` moves time on and runs
the sweeps and every job that is due (the AGS sweep queues a score job, the job posts it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.core.cmi5 import vocabulary as v
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.lms.lti.ags import SCORE_JOB
from appliance.services.lms.lti.launch import learner_id
from appliance.storage.sqlite.connection import rows
from tests.conftest import TenantKey, make_tenant_key
from tests.faces.api.conftest import make_api
from tests.faces.api.test_cmi5_sessions import EXAMPLES, Au, needs_examples
from tests.faces.api.test_packages import assert_error, package_12, upload_ready
from tests.faces.api.test_sessions import Player
from tests.lti_platform import LtiPlatform, Message

API = "/api/v1/lti"


@pytest.fixture
def config(config: Config) -> Config:
    """The platform listens on 127.0.0.1: the allow-list admits it (off, the guard refuses it)."""
    return dataclasses.replace(config, outbound_allow=("127.0.0.1/32",))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(float(int(time.time())))


@pytest.fixture
def api(config: Config, clock: FixedClock) -> Iterator[TestClient]:
    with make_api(config, clock) as client:
        yield client


@pytest.fixture
def platform() -> Iterator[LtiPlatform]:
    lms = LtiPlatform().start()
    yield lms
    lms.close()


def pump(client: TestClient, clock: FixedClock, seconds: float = 3.0) -> None:
    clock.advance(seconds)
    client.blocking_portal.call(client.app.state.scheduler.drain)


def register(api: TestClient, who: TenantKey, platform: LtiPlatform) -> dict[str, Any]:
    """Register the platform with the tool, and the tool (its URLs and keys) with the platform."""
    created = api.post(f"{API}/registrations", json=platform.registration(), headers=who.headers)
    assert created.status_code == 201, created.text
    urls = api.get(f"{API}/tool", headers=who.headers).json()
    platform.register_tool(urls["login_url"], urls["launch_url"], urls["jwks_url"])
    platform.tool_keys = lambda: api.get(urlsplit(urls["jwks_url"]).path).json()
    return dict(created.json())


def test_registrations_crud_validation_and_roles(
    api: TestClient, acme: TenantKey, config: Config, platform: LtiPlatform
) -> None:
    reg = register(api, acme, platform)
    assert reg["issuer"] == platform.issuer and reg["deployment_ids"] == [platform.deployment_id]
    again = api.post(f"{API}/registrations", json=platform.registration(), headers=acme.headers)
    assert assert_error(again, 422, "VALIDATION_ERROR")["details"]["registration_id"] == reg["id"]
    internal = {**platform.registration(), "client_id": "other", "jwks_url": "http://10.0.0.1/jwks"}
    body = assert_error(api.post(f"{API}/registrations", json=internal, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert body["details"]["errors"][0]["field"] == "jwks_url" and "outbound_allow" in body["error"]
    empty = {**platform.registration(), "client_id": "other", "deployment_ids": []}
    assert_error(api.post(f"{API}/registrations", json=empty, headers=acme.headers), 422, "VALIDATION_ERROR")

    listed = api.get(f"{API}/registrations", headers=acme.headers).json()["data"]
    assert [r["id"] for r in listed] == [reg["id"]]
    changed = api.patch(f"{API}/registrations/{reg['id']}", json={"deployment_ids": ["d1", "d2"]}, headers=acme.headers)
    assert changed.status_code == 200 and changed.json()["deployment_ids"] == ["d1", "d2"]
    urls = api.get(f"{API}/tool", headers=acme.headers).json()
    assert urls["login_url"].endswith(f"/lti/{acme.tenant_id}/login")
    assert urls["launch_url"] == urls["redirect_url"] == urls["deep_linking_url"]

    member = make_tenant_key(config, "Acme-member")
    assert api.get(f"{API}/registrations", headers=member.headers).json()["data"] == []  # its own tenant
    assert api.delete(f"{API}/registrations/{reg['id']}", headers=acme.headers).status_code == 204
    assert_error(api.get(f"{API}/registrations/{reg['id']}", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.get("/lti/ten_doesnotexist/jwks"), 404, "NOT_FOUND")


def test_key_rotation_keeps_the_old_key_published_for_the_grace_period(
    api: TestClient, acme: TenantKey, clock: FixedClock
) -> None:
    jwks = f"/lti/{acme.tenant_id}/jwks"
    first = api.get(jwks).json()["keys"]
    assert len(first) == 1 and first[0]["alg"] == "RS256" and "d" not in first[0]  # never the private half
    rotated = api.post(f"{API}/keys/rotate", json={"grace_seconds": 100}, headers=acme.headers)
    assert rotated.status_code == 201, rotated.text
    new_kid = rotated.json()["kid"]
    both = [k["kid"] for k in api.get(jwks).json()["keys"]]
    assert both == [new_kid, first[0]["kid"]]
    listed = api.get(f"{API}/keys", headers=acme.headers).json()["data"]
    assert [k["status"] for k in listed] == ["active", "retired"]
    clock.advance(101)
    assert [k["kid"] for k in api.get(jwks).json()["keys"]] == [new_kid]


def launch(api: TestClient, platform: LtiPlatform, message: Message, clock: FixedClock) -> str:
    """The tool's login and launch with an id_token the platform signs; the player path it redirects to."""
    hint = urlsplit(platform.course_page(message)).query.removeprefix("hint=")
    login = api.get(urlsplit(platform.tool_login).path, params=platform.login_query(hint), follow_redirects=False)
    assert login.status_code == 302, login.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
    token = platform.id_token(platform.claims(message, query["nonce"], now=clock.now()))
    answer = api.post(
        urlsplit(platform.tool_launch).path, data={"id_token": token, "state": query["state"]}, follow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    return location[location.index("/player/") :]


def test_scores_are_posted_on_every_change_and_retried(
    api: TestClient, acme: TenantKey, clock: FixedClock, platform: LtiPlatform, config: Config
) -> None:
    register(api, acme, platform)
    package = upload_ready(api, acme, package_12())
    message = Message("LtiResourceLinkRequest", "user-1", link_id="link-1", custom={"package_id": package["id"]})
    player = Player(api, {"launch_url": launch(api, platform, message, clock)})
    player.launch()
    pump(api, clock)
    assert platform.scores == []  # launched, nothing to report yet

    assert player.commit({"cmi.core.score.raw": "50", "cmi.core.lesson_status": "incomplete"}).status_code == 200
    pump(api, clock)
    (first,) = platform.scores
    assert (first["scoreGiven"], first["activityProgress"], first["gradingProgress"]) == (50.0, "InProgress", "Pending")
    assert first["userId"] == "user-1"
    (item,) = platform.lineitems
    assert item["resourceLinkId"] == "link-1"

    # A commit that changes no result posts nothing.
    assert player.commit({"cmi.core.lesson_location": "page-2"}).status_code == 200
    pump(api, clock)
    assert len(platform.scores) == 1

    # The platform fails twice: the job retries with backoff and the grade arrives.
    platform.fail_scores = 2
    assert player.commit({"cmi.core.score.raw": "80", "cmi.core.lesson_status": "passed"}).status_code == 200
    pump(api, clock)
    assert len(platform.scores) == 1
    inst = Instance(config)
    try:
        job = inst.registry.read_sync(lambda c: rows(c, "SELECT * FROM jobs WHERE kind = ?", (SCORE_JOB,)))[-1]
        assert job["status"] == "queued" and "503" in job["last_error"]
        for _ in range(4):
            pump(api, clock, 120.0)
        assert len(platform.scores) == 2
        second = platform.scores[-1]
        assert (second["scoreGiven"], second["activityProgress"], second["gradingProgress"]) == (
            80.0,
            "Completed",
            "FullyGraded",
        )
        assert second["lineitem"] == item["id"]  # the same line item, found again
        launched = inst.tenant_db(acme.tenant_id).read_sync(lambda c: rows(c, "SELECT * FROM lti_launches"))
        assert launched[0]["last_error"] is None and launched[0]["posted_at"] is not None
    finally:
        inst.close()
    assert all(r["client_assertion"] for r in platform.token_requests)
    assert len(platform.token_requests) == 1  # one token for every post: cached until shortly before it expires


def test_with_a_content_origin_the_launch_lands_on_the_player_there(
    config: Config, clock: FixedClock, acme: TenantKey, platform: LtiPlatform
) -> None:
    content = "http://127.0.0.2:8080"
    app = create_app(dataclasses.replace(config, content_origin=content), clock=clock, start_scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as api:
        register(api, acme, platform)
        package = upload_ready(api, acme, package_12())
        message = Message("LtiResourceLinkRequest", "user-co", link_id="link-co", custom={"package_id": package["id"]})
        hint = urlsplit(platform.course_page(message)).query.removeprefix("hint=")
        login = api.get(urlsplit(platform.tool_login).path, params=platform.login_query(hint), follow_redirects=False)
        query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
        assert query["redirect_uri"].startswith("http://127.0.0.1:8080/lti/")  # the tool stays on the API host
        token = platform.id_token(platform.claims(message, query["nonce"], now=clock.now()))
        answer = api.post(
            urlsplit(platform.tool_launch).path,
            data={"id_token": token, "state": query["state"]},
            follow_redirects=False,
        )
        assert answer.status_code == 302, answer.text
        assert answer.headers["location"].startswith(f"{content}/player/")
        # The content host serves no LTI endpoint.
        assert api.get(f"{content}/lti/{acme.tenant_id}/jwks").status_code == 404


def test_logins_in_progress_are_capped(
    api: TestClient, acme: TenantKey, platform: LtiPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.services.lms.lti import launch as lti_launch

    register(api, acme, platform)
    monkeypatch.setattr(lti_launch, "MAX_LIVE_STATES", 2)
    hint = urlsplit(platform.course_page(Message("LtiResourceLinkRequest", "u", link_id="l"))).query[5:]
    path = urlsplit(platform.tool_login).path
    answers = [api.get(path, params=platform.login_query(hint), follow_redirects=False) for _ in range(3)]
    assert [a.status_code for a in answers] == [302, 302, 429]
    assert_error(answers[2], 429, "RATE_LIMITED")


def test_a_browser_gets_the_refusal_as_a_page_and_a_program_as_json(
    api: TestClient, acme: TenantKey, platform: LtiPlatform
) -> None:
    register(api, acme, platform)
    path = urlsplit(platform.tool_launch).path
    form = {"id_token": "a.b.c", "state": "never-issued"}
    page = api.post(path, data=form, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "unknown login state" in page.text and "UNAUTHORIZED (unknown_state)" in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert_error(api.post(path, data=form), 401, "UNAUTHORIZED")


def test_login_initiation_by_post_as_canvas_sends_it(api: TestClient, acme: TenantKey, platform: LtiPlatform) -> None:
    register(api, acme, platform)
    hint = urlsplit(platform.course_page(Message("LtiResourceLinkRequest", "u", link_id="l"))).query[5:]
    answer = api.post(urlsplit(platform.tool_login).path, data=platform.login_query(hint), follow_redirects=False)
    assert answer.status_code == 302 and "set-cookie" not in answer.headers
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["response_mode"] == ["form_post"] and query["lti_message_hint"] == [hint]
    assert answer.headers["location"].startswith(f"{platform.browser}/auth?")
    wrong = {**platform.login_query(hint), "lti_deployment_id": "not-registered"}
    assert_error(api.post(urlsplit(platform.tool_login).path, data=wrong), 401, "UNAUTHORIZED")


def test_each_resource_link_has_its_own_session_line_item_and_score(
    api: TestClient, acme: TenantKey, clock: FixedClock, platform: LtiPlatform
) -> None:
    """Two links to one package are two assignments: independent sessions, line items and grades; each
    link resumes its own incomplete session only."""
    register(api, acme, platform)
    package = upload_ready(api, acme, package_12())
    custom = {"package_id": package["id"]}
    first = Message("LtiResourceLinkRequest", "user-2", link_id="link-a", custom=custom)
    second = Message("LtiResourceLinkRequest", "user-2", link_id="link-b", custom=custom)

    player_a = Player(api, {"launch_url": launch(api, platform, first, clock)})
    player_a.launch()
    assert player_a.commit({"cmi.core.score.raw": "40", "cmi.core.lesson_status": "incomplete"}).status_code == 200
    player_b = Player(api, {"launch_url": launch(api, platform, second, clock)})
    data_b = player_b.launch()
    assert data_b["delivery"]["cmi"].get("cmi.core.score.raw", "") == ""  # not link A's session
    assert player_b.commit({"cmi.core.score.raw": "90", "cmi.core.lesson_status": "passed"}).status_code == 200
    pump(api, clock)

    sessions = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-2")}, headers=acme.headers
    ).json()["data"]
    assert sorted((s["status"], s["score"]["raw"]) for s in sessions) == [("incomplete", 40.0), ("passed", 90.0)]
    items = {i["resourceLinkId"]: i["id"] for i in platform.lineitems}
    assert set(items) == {"link-a", "link-b"} and items["link-a"] != items["link-b"]
    scores = {s["lineitem"]: (s["scoreGiven"], s["gradingProgress"]) for s in platform.scores}
    assert scores == {items["link-a"]: (40.0, "Pending"), items["link-b"]: (90.0, "FullyGraded")}

    # Link A again: its own incomplete session resumes (link B's passed one is not touched).
    again = Player(api, {"launch_url": launch(api, platform, first, clock)}, client_id="page-2")
    assert again.launch()["delivery"]["cmi"]["cmi.core.score.raw"] == "40"
    assert again.commit({"cmi.core.score.raw": "70", "cmi.core.lesson_status": "passed"}).status_code == 200
    pump(api, clock)
    assert platform.scores[-1]["lineitem"] == items["link-a"] and platform.scores[-1]["scoreGiven"] == 70.0
    after = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-2")}, headers=acme.headers
    ).json()["data"]
    assert len(after) == 2 and len(platform.scores) == 3


@needs_examples
def test_a_cmi5_course_launches_as_a_registration_and_its_grade_is_posted(
    api: TestClient, acme: TenantKey, clock: FixedClock, platform: LtiPlatform
) -> None:
    """A link to a cmi5 package: the launch starts a cmi5 registration (the same session model, one per
    link), the player launches its AU, and the AU's result reaches the platform's gradebook."""
    register(api, acme, platform)
    package = upload_ready(api, acme, (EXAMPLES / "masteryscore_framed.zip").read_bytes())
    message = Message("LtiResourceLinkRequest", "user-5", link_id="link-cmi5", custom={"package_id": package["id"]})
    player = launch(api, platform, message, clock)
    (session,) = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-5")}, headers=acme.headers
    ).json()["data"]
    assert session["cmi5"]["registration"] and session["status"] == "not_started"
    # The player's page launches the course's AU (OwnWindow: a redirect to it) with its cmi5 parameters.
    page = api.get(player, follow_redirects=False)
    assert page.status_code == 302, page.text
    au = Au(api, page.headers["location"])
    assert au.params["registration"] == session["cmi5"]["registration"]
    au.start()
    assert au.send(au.statement(v.INITIALIZED)).status_code == 200
    passed = au.statement(v.PASSED, success=True, score={"scaled": 0.8, "raw": 8, "min": 0, "max": 10})
    assert au.send(passed).status_code == 200
    assert au.send(au.statement(v.COMPLETED, completion=True)).status_code == 200
    assert au.send(au.statement(v.TERMINATED)).status_code == 200
    pump(api, clock)
    (score,) = platform.scores
    assert (score["scoreGiven"], score["activityProgress"], score["gradingProgress"]) == (
        80.0,
        "Completed",
        "FullyGraded",
    )
    assert platform.lineitems[0]["resourceLinkId"] == "link-cmi5"
    # Launched again: the link's session is passed, so a new registration starts (a new attempt).
    launch(api, platform, message, clock)
    again = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-5")}, headers=acme.headers
    ).json()["data"]
    assert len({s["cmi5"]["registration"] for s in again}) == 2


def test_names_and_roles_lists_a_links_context_members_page_by_page(
    api: TestClient, acme: TenantKey, clock: FixedClock, platform: LtiPlatform, config: Config
) -> None:
    """NRPS 2.0: the members of the link's context, read with the membership scope's token and every
    page of the platform followed by its Link header; each with its appliance learner id."""
    reg = register(api, acme, platform)
    package = upload_ready(api, acme, package_12())
    message = Message("LtiResourceLinkRequest", "user-1", link_id="link-m", custom={"package_id": package["id"]})
    launch(api, platform, message, clock)
    members_url = f"{API}/registrations/{reg['id']}/links/link-m/members"

    answer = api.get(members_url, headers=acme.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["context"] == {"id": "course-101", "label": "GOLF101", "title": "Golf 101"}
    assert [m["user_id"] for m in body["data"]] == [m["user_id"] for m in platform.members]  # 6 members, 3 pages
    assert (body["pages"], body["truncated"], body["next_cursor"]) == (3, False, None)
    first = body["data"][0]
    assert first["learner_id"] == learner_id(platform.issuer, "user-1") and first["status"] == "Active"
    assert first["email"] == "member1@example.org" and first["roles"] == platform.members[0]["roles"]
    assert [r.get("page") for r in platform.membership_requests] == [None, "2", "3"]
    assert {r["accept"] for r in platform.membership_requests} == {
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    }
    assert any(
        "contextmembership.readonly" in r["scope"] and "lti-ags" not in r["scope"] for r in platform.token_requests
    )

    # A second read uses the cached token; a next page on another origin is not followed (the token stays).
    tokens = len(platform.token_requests)
    platform.next_base = "http://127.0.0.2:9"
    refused = assert_error(api.get(members_url, headers=acme.headers), 500, "INTERNAL_ERROR")
    assert refused["details"]["reason"] == "next_origin" and len(platform.token_requests) == tokens
    platform.next_base = ""
    platform.fail_members = 1  # the platform down: said so, with its status
    down = assert_error(api.get(members_url, headers=acme.headers), 500, "INTERNAL_ERROR")
    assert (down["details"]["reason"], down["details"]["platform_status"]) == ("platform_error", 503)
    assert api.get(members_url, headers=acme.headers).status_code == 200  # and back

    # An unknown link, another tenant, a link launched without the service.
    assert_error(api.get(f"{API}/registrations/{reg['id']}/links/nope/members", headers=acme.headers), 404, "NOT_FOUND")
    other = make_tenant_key(config, "Globex-nrps")
    assert_error(api.get(members_url, headers=other.headers), 404, "NOT_FOUND")
    platform.nrps = False
    launch(api, platform, Message("LtiResourceLinkRequest", "user-2", link_id="link-x", custom=message.custom), clock)
    plain = api.get(f"{API}/registrations/{reg['id']}/links/link-x/members", headers=acme.headers)
    assert assert_error(plain, 422, "VALIDATION_ERROR")["details"]["reason"] == "no_nrps"


def test_two_launches_of_one_link_at_once_resume_one_session(
    api: TestClient, acme: TenantKey, clock: FixedClock, platform: LtiPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A double click in the platform: two launches of one link whose find-or-start overlap (the session's
    creation is slowed so both would find none) end on one session, not two."""
    from concurrent.futures import ThreadPoolExecutor

    from appliance.services.lms.lti import launch as lti_launch

    register(api, acme, platform)
    package = upload_ready(api, acme, package_12())
    message = Message("LtiResourceLinkRequest", "user-3", link_id="link-c", custom={"package_id": package["id"]})
    create = lti_launch.create_session

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return create(*args, **kwargs)

    monkeypatch.setattr(lti_launch, "create_session", slow_create)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: launch(api, platform, message, clock), range(2)))
    assert len(paths) == 2
    sessions = api.get(
        "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-3")}, headers=acme.headers
    ).json()["data"]
    assert len(sessions) == 1, sessions
