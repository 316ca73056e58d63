"""LRS credential management routes (/api/v1/xapi/credentials): issue, list, show, revoke, per tenant."""

from __future__ import annotations

import base64
from typing import Any

from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import create_key
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error

CREDS = "/api/v1/xapi/credentials"


def basic(key: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"}


def issue(api: TestClient, who: TenantKey, **body: Any) -> dict[str, Any]:
    response = api.post(CREDS, json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


def lrs_status(api: TestClient, key: str, secret: str) -> int:
    """What the LRS answers a statements GET with this credential: 401 unknown or revoked, 403 out of
    its scope, anything else (200) means the face let it through to the resource."""
    status = api.get("/xapi/statements", params={"limit": "1"}, headers=basic(key, secret)).status_code
    return status if status in (401, 403) else 200


def role_key(config: Config, tenant: TenantKey, role: str) -> TenantKey:
    inst = Instance(config)
    try:
        key, secret = create_key(inst, tenant.tenant_id, role, role)
    finally:
        inst.close()
    return TenantKey(tenant.tenant_id, key.id, secret)


def test_create_shows_key_secret_and_endpoint_once(api: TestClient, acme: TenantKey) -> None:
    created = issue(api, acme, name="Storyline exports", scope="write")
    assert created["id"].startswith("lrs_") and created["key"] == created["id"]
    assert created["scope"] == "write" and created["status"] == "active"
    assert created["name"] == "Storyline exports" and created["tenant_id"] == acme.tenant_id
    assert created["endpoint"] == "http://testserver.local/xapi/"
    assert len(created["secret"]) >= 40
    assert created["created_at"].endswith("Z") and created["revoked_at"] is None

    shown = api.get(f"{CREDS}/{created['id']}", headers=acme.headers).json()
    assert "secret" not in shown and "key" not in shown
    assert shown["endpoint"] == created["endpoint"] and shown["scope"] == "write"
    listed = api.get(CREDS, headers=acme.headers).json()
    assert [c["id"] for c in listed["data"]] == [created["id"]] and listed["next_cursor"] is None
    assert all("secret" not in c for c in listed["data"])
    # The pair works on the LRS, with the scope applied: write-only may not read.
    assert lrs_status(api, created["key"], created["secret"]) == 403
    reader = issue(api, acme, scope="read")
    assert lrs_status(api, reader["key"], reader["secret"]) == 200


def test_default_scope_is_all_and_public_url_names_the_endpoint(config: Config, acme: TenantKey) -> None:
    import dataclasses

    from appliance.clock import FixedClock
    from tests.faces.api.conftest import make_api

    with make_api(dataclasses.replace(config, public_url="https://lrs.example.org"), FixedClock(1.8e9)) as api:
        created = issue(api, acme)
    assert created["scope"] == "all" and created["name"] is None
    assert created["endpoint"] == "https://lrs.example.org/xapi/"


def test_revoke_stops_the_credential_at_once(api: TestClient, acme: TenantKey) -> None:
    created = issue(api, acme, name="old")
    assert lrs_status(api, created["key"], created["secret"]) == 200
    response = api.delete(f"{CREDS}/{created['id']}", headers=acme.headers)
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    assert lrs_status(api, created["key"], created["secret"]) == 401
    again = api.delete(f"{CREDS}/{created['id']}", headers=acme.headers)  # idempotent: still revoked
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked["revoked_at"]
    assert api.get(CREDS, headers=acme.headers).json()["data"][0]["status"] == "revoked"


def test_validation_errors(api: TestClient, acme: TenantKey) -> None:
    body = assert_error(api.post(CREDS, json={"scope": "admin"}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert body["details"]["errors"][0]["field"] == "scope"
    assert_error(api.post(CREDS, json={"scope": "all", "colour": "red"}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(api.get(CREDS, params={"limit": 0}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(api.get(CREDS, params={"cursor": "%%%"}, headers=acme.headers), 422, "VALIDATION_ERROR")
    long_name = assert_error(api.post(CREDS, json={"name": "x" * 201}, headers=acme.headers), 422, "VALIDATION_ERROR")
    assert long_name["details"]["errors"][0]["field"] == "name"
    assert issue(api, acme, name="  ")["name"] is None
    assert_error(api.get(f"{CREDS}/lrs_nothere", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.post(CREDS, json={}), 401, "UNAUTHORIZED")


def test_pagination_walks_every_credential_once(api: TestClient, acme: TenantKey) -> None:
    made = [issue(api, acme, name=f"c{i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(CREDS, params=params, headers=acme.headers).json()
        assert len(page["data"]) <= 2
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5


def test_no_cross_tenant_read_or_revoke(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    mine = issue(api, acme, name="acme's")
    theirs = issue(api, globex, name="globex's")
    assert [c["id"] for c in api.get(CREDS, headers=acme.headers).json()["data"]] == [mine["id"]]
    assert [c["id"] for c in api.get(CREDS, headers=globex.headers).json()["data"]] == [theirs["id"]]
    for method in ("get", "delete"):
        body = assert_error(getattr(api, method)(f"{CREDS}/{theirs['id']}", headers=acme.headers), 404, "NOT_FOUND")
        assert "globex" not in str(body).lower()
    # Globex's credential still works, and reads Globex's LRS, not Acme's.
    assert lrs_status(api, theirs["key"], theirs["secret"]) == 200
    assert api.get(f"{CREDS}/{theirs['id']}", headers=globex.headers).json()["status"] == "active"


def test_only_admins_manage_credentials(api: TestClient, config: Config, acme: TenantKey) -> None:
    made = issue(api, acme)
    for role in ("member", "read", "learner"):
        who = role_key(config, acme, role)
        for response in (
            api.post(CREDS, json={}, headers=who.headers),
            api.get(CREDS, headers=who.headers),
            api.get(f"{CREDS}/{made['id']}", headers=who.headers),
            api.delete(f"{CREDS}/{made['id']}", headers=who.headers),
        ):
            body = assert_error(response, 403, "FORBIDDEN")
            assert body["details"]["allowed_roles"] == ["admin"]
    assert api.get(f"{CREDS}/{made['id']}", headers=acme.headers).json()["status"] == "active"


def test_openapi_documents_the_routes(api: TestClient) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths[CREDS]) == {"get", "post"}
    assert set(paths[CREDS + "/{credential_id}"]) == {"get", "delete"}
    assert paths[CREDS]["post"]["x-roles"] == ["admin"]


def test_a_credential_reads_its_own_tenants_lrs_only(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    mine, theirs = issue(api, acme), issue(api, globex)
    statement = {
        "id": "6a1b2c3d-0000-4000-8000-000000000001",
        "actor": {"objectType": "Agent", "mbox": "mailto:learner@acme.example"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"objectType": "Activity", "id": "https://acme.example/course"},
    }
    stored = api.post("/xapi/statements", json=[statement], headers=basic(mine["key"], mine["secret"]))
    assert stored.status_code == 200, stored.text
    own = api.get(
        "/xapi/statements", params={"statementId": statement["id"]}, headers=basic(mine["key"], mine["secret"])
    )
    assert own.status_code == 200 and own.json()["id"] == statement["id"]
    other = basic(theirs["key"], theirs["secret"])
    assert api.get("/xapi/statements", params={"statementId": statement["id"]}, headers=other).status_code == 404
    assert api.get("/xapi/statements", headers=other).json()["statements"] == []
