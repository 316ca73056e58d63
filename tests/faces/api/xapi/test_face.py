"""The xAPI face itself (appliance.faces.api.xapi.app): version negotiation, Basic auth and scopes, the
alternate request syntax, CORS, and errors in the contract's form, over the real app."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from litestar.testing import TestClient

from appliance.config import Config
from tests.conftest import TenantKey
from tests.faces.api.xapi.conftest import LrsClient, make_lrs_client


def test_about_answers_without_credentials_or_version(api: TestClient) -> None:
    r = api.get("/xapi/about")
    assert r.status_code == 200
    assert "1.0.3" in r.json()["version"] and "2.0.0" in r.json()["version"]
    assert r.headers["x-experience-api-version"] == "1.0.3"
    r = api.post("/xapi/about")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD" and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_a_refused_method_names_the_allowed_ones(api: TestClient, lrs: LrsClient) -> None:
    """Whichever handler answers 405, the face says what the resource answers (Allow)."""
    r = api.put("/xapi/activities", params={"activityId": "http://example.com/a"}, headers=lrs.headers)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = api.delete("/xapi/statements", headers=lrs.headers)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, PUT, POST"
    assert r.headers["x-experience-api-version"] == "1.0.3"


def test_head_has_the_headers_and_no_body(api: TestClient) -> None:
    r = api.head("/xapi/about")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 0


def test_version_header_is_required_and_negotiated(api: TestClient, lrs: LrsClient) -> None:
    r = api.get("/xapi/activities/state", headers={"Authorization": lrs.basic})
    assert r.status_code == 400
    assert "X-Experience-API-Version" in r.json()["error"]
    r = api.get("/xapi/activities/state", headers={"Authorization": lrs.basic, "X-Experience-API-Version": "0.95"})
    assert r.status_code == 400 and r.json()["details"]["supported"] == ["1.0.3", "2.0.0"]
    r = api.get("/xapi/about", headers={"X-Experience-API-Version": "2.0"})
    assert r.headers["x-experience-api-version"] == "2.0.0"


def test_credentials_are_checked(api: TestClient, lrs: LrsClient) -> None:
    headers = {"X-Experience-API-Version": "1.0.3"}
    r = api.get("/xapi/statements", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    wrong = "Basic " + base64.b64encode(f"{lrs.key}:nope".encode()).decode()
    unknown = "Basic " + base64.b64encode(b"lrs_nosuchkey:nope").decode()
    answers = [api.get("/xapi/statements", headers={**headers, "Authorization": a}) for a in (wrong, unknown)]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json()["error"] == answers[1].json()["error"]  # one message: nothing to tell them apart


def test_a_scope_limits_the_methods(api: TestClient, config: Config, acme: TenantKey) -> None:
    reader = make_lrs_client(config, acme.tenant_id, "read")
    writer = make_lrs_client(config, acme.tenant_id, "write")
    params = {"activityId": "http://example.com/a", "agent": '{"mbox":"mailto:a@example.com"}', "stateId": "s"}
    r = api.put("/xapi/activities/state", params=params, headers=reader.headers, content=b"{}")
    assert r.status_code == 403 and r.json()["details"]["scope"] == "read"
    r = api.get("/xapi/activities/state", params=params, headers=writer.headers)
    assert r.status_code == 403
    # the alternate syntax is judged by the method it carries, not by its POST
    form = urlencode({"Authorization": reader.basic, "X-Experience-API-Version": "1.0.3", "content": "{}", **params})
    r = api.post(
        "/xapi/activities/state?method=PUT",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403


def test_the_alternate_syntax_carries_headers_in_its_form(api: TestClient, lrs: LrsClient) -> None:
    form = urlencode({"Authorization": lrs.basic, "X-Experience-API-Version": "1.0.3"})
    r = api.post("/xapi/about?method=GET", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "version" in r.json()
    r = api.post(
        "/xapi/about?method=GET&other=1", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 400
    r = api.post("/xapi/about?method=GET", content=form, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "Content-Type" in r.json()["error"]  # 1.0.3 §1.3: 400, the suite's too
    r = api.post("/xapi/about?method=GET")  # no form at all
    assert r.status_code == 400
    r = api.post(
        "/xapi/about?method=GET",
        content=urlencode({"X-Experience-API-Version": "2.0.0"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400 and "2.0" in r.json()["error"]


def test_cors_preflight_and_exposed_headers(api: TestClient) -> None:
    origin = "http://content.example"
    r = api.options("/xapi/statements", headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})
    assert r.status_code == 204 and r.headers["x-experience-api-version"] == "1.0.3"
    assert "content-length" not in r.headers  # RFC 9110 §8.6
    assert r.headers["access-control-allow-origin"] == origin
    assert "X-Experience-API-Version" in r.headers["access-control-allow-headers"]
    r = api.get("/xapi/about", headers={"Origin": origin})
    assert "X-Experience-API-Consistent-Through" in r.headers["access-control-expose-headers"]


def test_unknown_resource_is_404(api: TestClient, lrs: LrsClient) -> None:
    r = api.get("/xapi/nothing", headers=lrs.headers)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_the_alternate_syntax_is_only_a_post(api: TestClient, lrs: LrsClient) -> None:
    form = urlencode({"X-Experience-API-Version": "1.0.3", "content": "{}"})
    for method in ("PUT", "GET", "DELETE"):
        r = api.request(
            method,
            "/xapi/activities/state?method=POST",
            content=form,
            headers={"Authorization": lrs.basic, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400, method
        assert "only a POST" in r.json()["error"]


def test_a_refusal_for_a_missing_version_speaks_the_clients_version(
    api: TestClient, config: Config, acme: TenantKey
) -> None:
    """The 400 for a missing version header carries the version the same client negotiated before."""
    v1 = make_lrs_client(config, acme.tenant_id)
    v2 = make_lrs_client(config, acme.tenant_id)
    v2.version = "2.0.0"
    stranger = make_lrs_client(config, acme.tenant_id)
    for client in (v1, v2):  # any authenticated request teaches the face the client's version
        api.get("/xapi/activities/state", headers=client.headers)
    for client, expected in ((v1, "1.0.3"), (v2, "2.0.0"), (stranger, "1.0.3")):
        r = api.get("/xapi/statements", headers={"Authorization": client.basic})
        assert r.status_code == 400 and r.headers["x-experience-api-version"] == expected
        r = api.get("/xapi/about", headers={"Authorization": client.basic})
        assert r.status_code == 200 and r.headers["x-experience-api-version"] == expected
    # the history is the whole Authorization value's: a wrong secret with a known key learns nothing
    wrong = "Basic " + base64.b64encode(f"{v2.key}:nope".encode()).decode()
    r = api.get("/xapi/statements", headers={"Authorization": wrong})
    assert r.status_code == 400 and r.headers["x-experience-api-version"] == "1.0.3"
    # and a request that names its version is answered in it, whatever the client said before
    r = api.get("/xapi/about", headers={"Authorization": v2.basic, "X-Experience-API-Version": "1.0.1"})
    assert r.headers["x-experience-api-version"] == "1.0.3"
