"""Course content shares the player's origin: what it cannot do to learner traffic, and the headers that
bound it (docs/security.md, "Course content and the player").

Cookies a course sets are not counted toward `max_request_header_bytes` and never reach a route; the
player page has a CSP, content files none beyond `frame-ancestors`; `/static` and the API docs have
nosniff and no framing; `frame_ancestors` decides who may embed the player.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Request, get
from litestar.testing import TestClient

from appliance.config import Config, frame_ancestor_list, load_config
from appliance.faces.cli import cli
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, make_client, upload_ready
from tests.faces.api.test_sessions import Player, create, package_12

# What a course's JavaScript can set for its origin: 30 cookies of 4 KB each (about 120 KB per request).
COOKIES = "; ".join(f"course{i}={'x' * 4000}" for i in range(30))


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def commit_body(player: Player, seq: int, location: str) -> dict[str, Any]:
    return {
        "client_id": "c",
        "seq": seq,
        "activity": player.activity,
        "changes": {"cmi.core.lesson_location": location},
    }


def csp(response: Any) -> dict[str, str]:
    """The response's Content-Security-Policy as {directive: sources}."""
    parts = (p.strip().split(" ", 1) for p in response.headers["content-security-policy"].split(";"))
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


# -- cookies -----------------------------------------------------------------------------------------------------


def test_large_cookies_break_no_learner_route_and_no_api_route(
    api: TestClient, acme: TenantKey, player: Player
) -> None:
    cookie = {"Cookie": COOKIES}
    answers = {
        "page": api.get(player.path, headers=cookie),
        "launch": api.post(f"{player.path}/launch", headers=cookie),
        "content": api.get(f"{player.path}/content/index.html", headers=cookie),
        "state": api.get(f"{player.path}/state", params={"activity": player.activity}, headers=cookie),
        "commit": api.post(f"{player.path}/commit", json=commit_body(player, 1, "with-cookies"), headers=cookie),
        "static": api.get("/static/runtime/player.js", headers=cookie),
        "docs": api.get("/api/v1/docs", headers=cookie),
        "schema": api.get("/api/v1/openapi.json", headers=cookie),
        "api": api.get("/api/v1/sessions", headers={**acme.headers, **cookie}),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200), {
        name: r.text[:200] for name, r in answers.items() if r.status_code != 200
    }
    stored = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert stored["cmi"]["cmi.core.lesson_location"] == "with-cookies"


def test_the_header_limit_still_refuses_large_headers_other_than_cookie(
    api: TestClient, acme: TenantKey, player: Player
) -> None:
    filler = {"X-Filler": "y" * 20_000}  # more than the default 16 KiB
    body = assert_error(api.get("/api/v1/sessions", headers={**acme.headers, **filler}), 413, "PAYLOAD_TOO_LARGE")
    assert body["details"]["limit_bytes"] == 16 * 1024
    commit = api.post(f"{player.path}/commit", json=commit_body(player, 1, "x"), headers=filler)
    assert_error(commit, 413, "PAYLOAD_TOO_LARGE")
    assert_error(api.get(player.path, headers={**filler, "Cookie": COOKIES}), 413, "PAYLOAD_TOO_LARGE")
    # The size reported is that of the headers counted, so the cookies are not in it.
    sized = api.get(f"{player.path}/content/index.html", headers={**filler, "Cookie": COOKIES}).json()
    assert sized["details"]["received_bytes"] < 21_000


def test_no_route_sees_the_cookie_header(api: TestClient) -> None:
    # A route added to the running app for this test reads cookies as any route would (Request.cookies).
    @get("/api/v1/echo-cookies", sync_to_thread=False)
    def echo(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return {"cookies": dict(request.cookies), "raw": request.headers.get("cookie")}

    api.app.register(echo)
    answer = api.get("/api/v1/echo-cookies", headers={"Cookie": "a=1; b=2"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"cookies": {}, "raw": None}


# -- the player page's CSP; none on content ------------------------------------------------------------------


def test_the_player_page_has_a_csp_and_the_content_has_only_frame_ancestors(api: TestClient, player: Player) -> None:
    page = api.get(player.path)
    assert page.status_code == 200
    assert csp(page) == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'self'",
    }
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert page.headers["x-content-type-options"] == "nosniff"
    # Everything the page loads is on this origin and of a type the policy admits.
    assert re.findall(r'(?:src|href)="([^"]+)"', page.text) == ["/static/player.css", "/static/runtime/player.js"]
    content = api.get(f"{player.path}/content/index.html")
    assert content.headers["content-security-policy"] == "frame-ancestors 'self'"  # inline scripts, eval: allowed
    launch = api.post(f"{player.path}/launch")
    assert launch.headers["content-security-policy"] == "frame-ancestors 'self'"


# -- /static and the docs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static/player.css", "/static/runtime/player.js", "/static/no-such-file.js"])
def test_static_files_are_never_sniffed_or_framed(api: TestClient, path: str) -> None:
    response = api.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert csp(response) == {"default-src": "'none'", "frame-ancestors": "'none'"}


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/openapi.json", "/api/v1/docs/assets/swagger-ui-bundle.js"])
def test_the_api_docs_cannot_be_framed(api: TestClient, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert csp(response)["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_docs_csp_admits_exactly_the_page_inline_script(api: TestClient) -> None:
    page = api.get("/api/v1/docs")
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    policy = csp(page)
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert "validatorUrl: null" in inline[0]  # no badge fetched from validator.swagger.io


# -- frame_ancestors ----------------------------------------------------------------------------------------------


def app_with(config: Config, frame_ancestors: tuple[str, ...]) -> TestClient:
    return make_client(replace(config, frame_ancestors=frame_ancestors))


def test_other_frame_ancestors_replace_x_frame_options_by_the_csp_list(config: Config, acme: TenantKey) -> None:
    with app_with(config, ("'self'", "https://lms.example.org")) as api:
        package = upload_ready(api, acme, package_12())
        player = Player(api, create(api, acme, package["id"]).json())
        player.launch()
        answers = {
            "page": api.get(player.path),
            "content": api.get(f"{player.path}/content/index.html"),
            "launch": api.post(f"{player.path}/launch"),
            "commit": api.post(f"{player.path}/commit", json=commit_body(player, 1, "lms")),
        }
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert "x-frame-options" not in response.headers, name
        assert csp(response)["frame-ancestors"] == "'self' https://lms.example.org", name
    assert csp(answers["page"])["script-src"] == "'self'"


def test_frame_ancestors_none_denies_the_page_but_the_player_still_frames_its_content(
    config: Config, acme: TenantKey
) -> None:
    with app_with(config, ("'none'",)) as api:
        package = upload_ready(api, acme, package_12())
        player = Player(api, create(api, acme, package["id"]).json())
        page = api.get(player.path)
        content = api.get(f"{player.path}/content/index.html")
    assert page.headers["x-frame-options"] == "DENY"
    assert csp(page)["frame-ancestors"] == "'none'"
    assert content.headers["x-frame-options"] == "SAMEORIGIN"
    assert content.headers["content-security-policy"] == "frame-ancestors 'self'"


def test_without_self_the_content_is_still_framed_by_the_player(config: Config, acme: TenantKey) -> None:
    with app_with(config, ("https://lms.example.org",)) as api:
        package = upload_ready(api, acme, package_12())
        player = Player(api, create(api, acme, package["id"]).json())
        page = api.get(player.path)
        content = api.get(f"{player.path}/content/index.html")
    assert csp(page)["frame-ancestors"] == "https://lms.example.org"
    assert content.headers["content-security-policy"] == "frame-ancestors 'self' https://lms.example.org"


def test_frame_ancestors_from_the_settings_file_and_the_environment(config: Config) -> None:
    config.data_dir.mkdir(parents=True)
    (config.data_dir / "settings.toml").write_text('frame_ancestors = ["\'self\'", "https://LMS.example.org/"]\n')
    loaded = load_config({"data_dir": str(config.data_dir)}, {})
    assert loaded.frame_ancestors == ("'self'", "https://lms.example.org")
    env = {"SCORM_APPLIANCE_FRAME_ANCESTORS": "self, https://*.lms.example.org:8443"}
    assert load_config({"data_dir": str(config.data_dir)}, env).frame_ancestors == (
        "'self'",
        "https://*.lms.example.org:8443",
    )
    assert Config().frame_ancestors == ("'self'",)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("https://lms.example.org/path", "is not 'self', 'none' or an origin"),
        ("'self'; script-src *", "is not 'self', 'none' or an origin"),  # no CSP injection through the setting
        ("*", "is not 'self', 'none' or an origin"),
        ("https:", "is not 'self', 'none' or an origin"),
        ("ftp://lms.example.org", "is not 'self', 'none' or an origin"),
        ("https://lms.example.org:99999", "is not 'self', 'none' or an origin"),
        ("'unsafe-inline'", "is not 'self', 'none' or an origin"),
        ("", "is empty"),
        ("none self", "'none' cannot be combined"),
    ],
)
def test_a_bad_frame_ancestors_entry_is_refused_with_its_name(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        frame_ancestor_list(raw)


def test_serve_refuses_to_start_with_a_bad_frame_ancestors_entry(config: Config, runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--data-dir", str(config.data_dir)],
        env={"SCORM_APPLIANCE_FRAME_ANCESTORS": "'self' https://lms.example.org/launch"},
    )
    assert result.exit_code == 2, result.output
    assert "frame_ancestors: 'https://lms.example.org/launch' is not 'self', 'none' or an origin" in result.output
