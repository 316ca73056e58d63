"""Host routing with a separate content origin (`content_origin`; appliance.faces.api.hosts, appliance.services.library.origins).

With the setting on, the player, its runtime calls, its package files and `/static` answer on the
content host(s) only, and the API, its docs and the xAPI face are not found there; the API host
serves no player (its page redirects to the content origin). With a wildcard, each tenant has its own
label and a token is served on its own tenant's label only. Without the setting nothing changes.
Requests go through Litestar's test client with the `Host` of an absolute URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.faces.app import create_app
from appliance.services.library.origins import parse_content_origin, tenant_label
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, drain, upload_raw
from tests.faces.api.test_sessions import Player, create, package_12

API = "http://127.0.0.1:8080"  # the API host (any host that is not a content host)
CONTENT = "http://127.0.0.2:8080"
WILDCARD = "http://*.content.test:8080"
CONTENT_BASE = "content.test:8080"


def make_client(config: Config) -> TestClient:
    return TestClient(create_app(config, start_scheduler=False), base_url=API, raise_server_exceptions=False)


@pytest.fixture
def single(config: Config) -> Iterator[TestClient]:
    """The app with one content origin shared by every tenant."""
    with make_client(replace(config, content_origin=CONTENT)) as client:
        yield client


@pytest.fixture
def wildcard(config: Config) -> Iterator[TestClient]:
    """The app with a label per tenant under content.test."""
    with make_client(replace(config, content_origin=WILDCARD)) as client:
        yield client


def ready_package(api: TestClient, who: TenantKey) -> str:
    created = upload_raw(api, who, package_12(), f"{API}/api/v1/packages")
    assert created.status_code == 202, created.text
    drain(api)
    return str(created.json()["id"])


def launched(api: TestClient, who: TenantKey, learner: str = "learner-1") -> Player:
    """A launched player on a new session, driving the runtime at the session's `launch_url` (absolute)."""
    session = create(api, who, ready_package(api, who), learner)
    assert session.status_code == 201, session.text
    driver = Player(api, session.json())
    driver.path = session.json()["launch_url"]
    driver.launch()
    return driver


def on(origin: str, player: Player, rest: str = "") -> str:
    """The same player path on another origin."""
    return origin + urlsplit(player.path).path + rest


def runtime_answers(api: TestClient, player: Player, origin: str) -> dict[str, int]:
    """The status of every learner route of `player` requested on `origin`."""
    commit = {"client_id": "probe", "seq": 1, "activity": player.activity, "changes": {}}
    return {
        "page": api.get(on(origin, player), follow_redirects=False).status_code,
        "launch": api.post(on(origin, player, "/launch")).status_code,
        "commit": api.post(on(origin, player, "/commit"), json=commit).status_code,
        "navigate": api.post(on(origin, player, "/navigate"), json={"request": "exitAll"}).status_code,
        "state": api.get(on(origin, player, "/state"), params={"activity": player.activity}).status_code,
        "content": api.get(on(origin, player, "/content/index.html")).status_code,
    }


API_PATHS = ["/api/v1/health", "/api/v1/docs", "/api/v1/openapi.json", "/api/v1/sessions", "/xapi/about", "/"]


# -- the setting ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("http://127.0.0.2:8080", "http://127.0.0.2:8080"),
        ("HTTPS://Content.Example.org/", "https://content.example.org"),
        ("https://content.example.org:443", "https://content.example.org"),
        ("http://*.content.example.org:8080", "http://*.content.example.org:8080"),
        ("http://[::1]:8081", "http://[::1]:8081"),
    ],
)
def test_the_setting_takes_an_origin_or_a_wildcard(raw: str, normalised: str) -> None:
    assert Config().with_overrides({"content_origin": raw}).content_origin == normalised
    assert Config().with_overrides({"content_origin": ""}).content_origin is None


@pytest.mark.parametrize(
    "raw",
    [
        "127.0.0.2:8080",  # no scheme
        "ftp://content.example.org",
        "https://content.example.org/player",  # a path
        "https://content.example.org:70000",
        "https://*.127.0.0.2",  # a wildcard over an address
        "https://a.*.example.org",
        "https://-bad-.example.org",
        "https://content.example.org?x=1",
    ],
)
def test_a_malformed_setting_stops_the_start(raw: str) -> None:
    with pytest.raises(ValueError, match="content_origin"):
        Config().with_overrides({"content_origin": raw})


def test_public_url_on_a_content_host_stops_the_start(config: Config) -> None:
    with pytest.raises(ValueError, match="public_url"):
        create_app(replace(config, content_origin=WILDCARD, public_url="http://api.content.test:8080"))
    create_app(replace(config, content_origin=WILDCARD, public_url="http://api.test:8080"))  # apart: fine


def test_tenant_labels_are_dns_labels_one_per_tenant() -> None:
    ids = ["ten_abcdefghijklmnopqrstuvwx", "ten_234567abcdefghijklmnopqr", "Tenant_One", "tenant-one"]
    labels = [tenant_label(i) for i in ids]
    assert labels[:2] == ["ten-abcdefghijklmnopqrstuvwx", "ten-234567abcdefghijklmnopqr"]
    assert len(set(labels)) == len(labels)
    for label in labels:
        assert len(label) <= 63 and label == label.lower() and label.replace("-", "").isalnum(), label
    origin = parse_content_origin(WILDCARD)
    assert origin.url_for(ids[0]) == "http://ten-abcdefghijklmnopqrstuvwx.content.test:8080"


# -- one content origin -------------------------------------------------------------------------------------------


def test_launch_urls_point_at_the_content_origin(single: TestClient, acme: TenantKey) -> None:
    player = launched(single, acme)
    assert player.path.startswith(f"{CONTENT}/player/")
    session_id = single.get(f"{API}/api/v1/sessions", headers=acme.headers).json()["data"][0]["id"]
    relaunch = single.post(f"{API}/api/v1/sessions/{session_id}/launch", headers=acme.headers)
    assert relaunch.json()["launch_url"].startswith(f"{CONTENT}/player/")


def test_the_content_host_serves_the_player_and_nothing_else(single: TestClient, acme: TenantKey) -> None:
    player = launched(single, acme)
    page = single.get(player.path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert single.get(f"{CONTENT}/static/runtime/player.js").status_code == 200
    assert single.get(f"{CONTENT}/static/player.css").status_code == 200
    assert player.commit({"cmi.core.lesson_location": "p1"}).status_code == 200
    assert runtime_answers(single, player, CONTENT) == dict.fromkeys(
        ["page", "launch", "commit", "navigate", "state", "content"], 200
    )
    for path in API_PATHS:
        body = assert_error(single.get(CONTENT + path, headers=acme.headers), 404, "NOT_FOUND")
        assert "content only" in body["error"], path
    assert_error(single.post(f"{CONTENT}/api/v1/sessions", headers=acme.headers, json={}), 404, "NOT_FOUND")
    assert_error(single.options(f"{CONTENT}/api/v1/sessions"), 404, "NOT_FOUND")


def test_the_api_host_serves_no_player(single: TestClient, acme: TenantKey) -> None:
    player = launched(single, acme)
    page = single.get(on(API, player), follow_redirects=False)
    assert page.status_code == 302
    assert page.headers["location"] == player.path  # the same page on the content origin
    answers = runtime_answers(single, player, API)
    assert answers.pop("page") == 302
    assert answers == dict.fromkeys(["launch", "commit", "navigate", "state", "content"], 404)
    for path in ("/static/player.css", "/static/runtime/player.js", "/static"):
        assert_error(single.get(API + path), 404, "NOT_FOUND")
    # A token that does not decode, or that carries more than a token's characters, has nowhere to go.
    assert_error(single.get(f"{API}/player/not-a-token", follow_redirects=False), 404, "NOT_FOUND")
    token = urlsplit(player.path).path.split("/")[2]
    injected = single.get(f"{API}/player/{token}%0d%0aSet-Cookie:%20x=1", follow_redirects=False)
    assert_error(injected, 404, "NOT_FOUND")
    # The API and its docs are where they were.
    assert single.get(f"{API}/api/v1/sessions", headers=acme.headers).status_code == 200
    assert single.get(f"{API}/api/v1/docs").status_code == 200
    assert single.get(f"{API}/api/v1/health").status_code == 200


def test_refusals_carry_the_request_id_and_an_access_line(single: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.api")
    answer = single.get(f"{CONTENT}/api/v1/docs", headers={"X-Request-ID": "probe-1"})
    assert answer.headers["x-request-id"] == "probe-1"
    assert answer.headers["x-content-type-options"] == "nosniff"
    lines = [getattr(r, "fields", {}) for r in caplog.records if r.name == "appliance.api"]
    assert {"method": "GET", "path": "/api/v1/docs", "status": 404} in [
        {k: f.get(k) for k in ("method", "path", "status")} for f in lines
    ]


# -- a label per tenant -------------------------------------------------------------------------------------------


def test_each_tenant_plays_on_its_own_label_only(wildcard: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    acme_player, globex_player = launched(wildcard, acme), launched(wildcard, globex)
    acme_origin = f"http://{tenant_label(acme.tenant_id)}.{CONTENT_BASE}"
    globex_origin = f"http://{tenant_label(globex.tenant_id)}.{CONTENT_BASE}"
    assert acme_player.path.startswith(f"{acme_origin}/player/")
    assert globex_player.path.startswith(f"{globex_origin}/player/")
    assert acme_player.commit({"cmi.core.lesson_location": "acme"}).status_code == 200

    everything = ["page", "launch", "commit", "navigate", "state", "content"]
    # Acme's token on Globex's host, on the bare base name, on a name two labels deep: not found.
    for origin in (globex_origin, f"http://{CONTENT_BASE}", f"http://x.{tenant_label(acme.tenant_id)}.{CONTENT_BASE}"):
        assert runtime_answers(wildcard, acme_player, origin) == dict.fromkeys(everything, 404), origin
    assert_error(wildcard.get(on(globex_origin, acme_player)), 404, "NOT_FOUND")
    # Every content host serves /static and no API.
    for origin in (acme_origin, globex_origin, f"http://{CONTENT_BASE}"):
        assert wildcard.get(f"{origin}/static/player.css").status_code == 200
        for path in API_PATHS:
            assert_error(wildcard.get(origin + path, headers=acme.headers), 404, "NOT_FOUND")
    # The API host redirects each page to its own tenant's label.
    assert wildcard.get(on(API, globex_player), follow_redirects=False).headers["location"] == globex_player.path
    # On its own label, everything answers (navigate's exitAll last: it ends the attempt).
    assert runtime_answers(wildcard, acme_player, acme_origin) == dict.fromkeys(everything, 200)


def test_a_forged_token_naming_the_host_tenant_is_still_checked(wildcard: TestClient, acme: TenantKey) -> None:
    player = launched(wildcard, acme)
    token = urlsplit(player.path).path.split("/")[2]
    payload, _, _ = token.partition(".")
    forged = f"{payload}.{'A' * 43}"  # the right tenant for the host, a signature that is not
    origin = player.path[: player.path.index("/player/")]
    assert_error(wildcard.get(f"{origin}/player/{forged}"), 404, "NOT_FOUND")
    assert_error(wildcard.post(f"{origin}/player/{forged}/launch"), 404, "NOT_FOUND")


# -- the default: no content origin -------------------------------------------------------------------------------


def test_without_the_setting_one_origin_serves_everything(config: Config, acme: TenantKey) -> None:
    with make_client(config) as api:
        assert api.app.hosts is None  # type: ignore[attr-defined]
        player = launched(api, acme)
        assert player.path.startswith(f"{API}/player/")
        answers: dict[str, Any] = runtime_answers(api, player, "http://127.0.0.2:8080")  # any Host at all
        assert answers == dict.fromkeys(["page", "launch", "commit", "navigate", "state", "content"], 200)
        assert api.get("http://127.0.0.2:8080/api/v1/docs").status_code == 200
        assert api.get(f"{API}/static/player.css").status_code == 200
