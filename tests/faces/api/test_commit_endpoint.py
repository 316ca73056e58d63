"""The learner commit endpoint served in front of the framework: same answers, headers and limits."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.api import commit_endpoint
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.learning import runtime
from appliance.services.tenancy.tenants import STATUS_CACHE_SECONDS, set_status
from tests.conftest import TenantKey, backend_config, make_tenant_key
from tests.faces.api.test_packages import assert_error, upload_ready
from tests.faces.api.test_sessions import Player, create, package_12


def body(player: Player, changes: dict[str, str], seq: int) -> dict[str, Any]:
    return {"client_id": "c", "seq": seq, "activity": player.activity, "changes": changes}


def test_commit_stores_and_answers_with_the_learner_route_headers(api: TestClient, player: Player) -> None:
    response = api.post(
        f"{player.path}/commit",
        json=body(player, {"cmi.core.lesson_location": "p3"}, 1),
        headers={"X-Request-ID": "req-commit-1"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["replayed"] is False
    assert response.headers["x-request-id"] == "req-commit-1"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    state = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert state["cmi"]["cmi.core.lesson_location"] == "p3"


def test_a_beacon_body_sent_as_text_plain_is_accepted(api: TestClient, player: Player) -> None:
    payload = json.dumps(body(player, {"cmi.core.lesson_location": "beacon"}, 1))
    response = api.post(f"{player.path}/commit", content=payload, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    state = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert state["cmi"]["cmi.core.lesson_location"] == "beacon"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"client_id": "c", "seq": "one", "activity": "x"}', "invalid commit"),
        (b'{"client_id": "c", "seq": 1, "activity": "x", "surprise": 1}', "invalid commit"),
        (b"", "not valid JSON"),
    ],
)
def test_bad_bodies_are_validation_errors(api: TestClient, player: Player, payload: bytes, message: str) -> None:
    response = api.post(f"{player.path}/commit", content=payload, headers={"X-Request-ID": "req-bad"})
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert message in error["error"]
    assert response.headers["x-request-id"] == "req-bad"


def test_forged_and_unknown_tokens_are_not_found(api: TestClient, player: Player) -> None:
    token = player.path.split("/")[2]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_error(api.post(f"/player/{forged}/commit", json=body(player, {}, 1)), 404, "NOT_FOUND")
    assert_error(api.post("/player/nonsense/commit", json=body(player, {}, 1)), 404, "NOT_FOUND")


def test_an_expired_token_is_not_found(api: TestClient, player: Player, clock: FixedClock, config: Config) -> None:
    clock.advance(config.launch_token_ttl_seconds + 1)
    error = assert_error(api.post(f"{player.path}/commit", json=body(player, {}, 1)), 404, "NOT_FOUND")
    assert error["details"] == {"expired": True}


def test_a_suspended_tenant_is_refused_once_the_status_cache_expires(
    api: TestClient, player: Player, acme: TenantKey, config: Config, clock: FixedClock
) -> None:
    assert api.post(f"{player.path}/commit", json=body(player, {}, 1)).status_code == 200
    cli = Instance(config)
    try:
        set_status(cli, acme.tenant_id, "suspended")
    finally:
        cli.close()
    clock.advance(STATUS_CACHE_SECONDS + 1)
    response = api.post(f"{player.path}/commit", json=body(player, {"cmi.core.lesson_location": "x"}, 2))
    assert_error(response, 403, "FORBIDDEN")


def test_the_learner_rate_limit_applies_with_retry_after(acme_config: tuple[Config, TenantKey]) -> None:
    config, acme = acme_config
    with TestClient(create_app(config, start_scheduler=False), raise_server_exceptions=False) as api:
        package = upload_ready(api, acme, package_12())
        player = Player(api, create(api, acme, package["id"]).json())
        player.launch()  # one learner request
        assert api.post(f"{player.path}/commit", json=body(player, {}, 1)).status_code == 200
        limited = api.post(f"{player.path}/commit", json=body(player, {}, 2))
        error = assert_error(limited, 429, "RATE_LIMITED")
        assert error["details"]["limit"] == 2
        assert int(limited.headers["retry-after"]) >= 1


@pytest.fixture
def acme_config(tmp_path: Any) -> tuple[Config, TenantKey]:
    """A tenant on a data dir whose learners may make two requests a minute."""
    config = backend_config(tmp_path / "limited", learner_requests_per_minute=2)
    return config, make_tenant_key(config, "Acme")


def test_oversized_headers_and_bodies_are_refused(
    api: TestClient, player: Player, monkeypatch: pytest.MonkeyPatch, config: Config
) -> None:
    big = {"X-Padding": "x" * (config.max_request_header_bytes + 10)}
    assert_error(api.post(f"{player.path}/commit", json=body(player, {}, 1), headers=big), 413, "PAYLOAD_TOO_LARGE")
    monkeypatch.setattr(commit_endpoint, "MAX_BODY_BYTES", 64)
    large = body(player, {"cmi.suspend_data": "s" * 100}, 2)
    assert_error(api.post(f"{player.path}/commit", json=large), 413, "PAYLOAD_TOO_LARGE")
    state = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert state["cmi"].get("cmi.suspend_data", "") == ""


def test_other_methods_and_paths_go_to_the_framework(api: TestClient, player: Player) -> None:
    assert_error(api.get(f"{player.path}/commit"), 405, "METHOD_NOT_ALLOWED")
    # The documented route answers a request the fast path does not take (a trailing slash) the same way.
    response = api.post(f"{player.path}/commit/", json=body(player, {"cmi.core.lesson_location": "slash"}, 1))
    assert response.status_code == 200, response.text
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    state = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert state["cmi"]["cmi.core.lesson_location"] == "slash"


def test_an_unexpected_failure_is_a_500_with_the_request_id(
    api: TestClient, player: Player, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runtime, "commit_async", broken)
    response = api.post(f"{player.path}/commit", json=body(player, {}, 1), headers={"X-Request-ID": "req-500"})
    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["details"] == {"request_id": "req-500"}
    assert "disk on fire" not in response.text


def test_commit_token_parses_only_commit_paths() -> None:
    assert commit_endpoint.commit_token("/player/abc.def/commit") == "abc.def"
    assert commit_endpoint.commit_token("/player/abc/def/commit") is None
    assert commit_endpoint.commit_token("/player//commit") is None
    assert commit_endpoint.commit_token("/player/abc/commit/") is None
    assert commit_endpoint.commit_token("/api/v1/player/abc/commit") is None


def test_a_commit_gets_one_access_line_without_its_token(
    api: TestClient, player: Player, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appliance.api")
    api.post(f"{player.path}/commit", json=body(player, {"cmi.core.lesson_location": "p1"}, 1))
    api.post(f"{player.path}/commit", content=b"{not json")
    lines = [
        r for r in caplog.records if r.name == "appliance.api" and getattr(r, "fields", {}).get("method") == "POST"
    ]
    commits = [r.fields for r in lines if r.fields["path"] == "/player/…/commit"]  # type: ignore[attr-defined]
    assert [(f["status"], type(f["ms"])) for f in commits] == [(200, float), (422, float)]
    token = player.path.split("/")[2]
    assert all(token not in str(r.__dict__) for r in caplog.records)
