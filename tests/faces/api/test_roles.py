"""Roles of API keys and JWT users: each role against the real routes, over the test client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.errors import ValidationFailed
from appliance.faces.app import create_app
from appliance.ids import sha256_hex
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import create_key, list_keys
from appliance.services.tenancy.roles import (
    ADMINS,
    EVERYONE,
    READERS,
    SESSION_STARTERS,
    WRITERS,
    allowed_roles,
    role_from_claims,
)
from appliance.services.tenancy.tenants import JwtConfig, set_jwt
from appliance.storage.sqlite.migrations import Migrations
from appliance.storage.sqlite.registry_schema import registry_migrations
from tests.conftest import TenantKey
from tests.faces.api.test_auth import Idp, bearer
from tests.faces.api.test_packages import assert_error, package_12, upload_raw, upload_ready
from tests.faces.api.test_ratelimit import set_rate

PACKAGES = "/api/v1/packages"
SESSIONS = "/api/v1/sessions"
HOOKS = "/api/v1/webhooks"
HOOK = {"url": "https://93.184.215.14/hooks/scorm", "events": ["session.*"]}  # a public address: never called


def key_with_role(config: Config, tenant: TenantKey, role: str) -> TenantKey:
    """Another key of the tenant, with `role`."""
    inst = Instance(config)
    try:
        key, secret = create_key(inst, tenant.tenant_id, role, role)
    finally:
        inst.close()
    return TenantKey(tenant.tenant_id, key.id, secret)


def start_session(api: TestClient, who: TenantKey | dict[str, str], package_id: str, learner: str) -> Any:
    headers = who.headers if isinstance(who, TenantKey) else who
    return api.post(SESSIONS, json={"package_id": package_id, "learner": {"id": learner}}, headers=headers)


def assert_role_refused(response: Any, role: str, allowed: list[str]) -> None:
    body = assert_error(response, 403, "FORBIDDEN")
    assert body["details"] == {"role": role, "allowed_roles": allowed}


@pytest.fixture
def package(api: TestClient, acme: TenantKey) -> dict[str, Any]:
    return upload_ready(api, acme, package_12())


# -- where the rule lives --------------------------------------------------------------------------


def test_every_tenant_route_admits_the_documented_roles(api: TestClient) -> None:
    """The table in docs/api.md, checked against the app's routes: no route admits more by accident."""
    seen = {}
    for route in api.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "principal" not in handler.parsed_fn_signature.parameters:
                continue
            for method in handler.http_methods:
                seen[(method, route.path)] = allowed_roles(handler.opt, method)
    assert len(seen) > 25
    for (method, path), roles in seen.items():
        if path.startswith(
            (HOOKS, "/api/v1/xapi/credentials", "/api/v1/xapi/forwarding", "/api/v1/xapi/scorm", "/api/v1/lti")
        ):
            expected = ADMINS
        elif (method, path) == ("GET", "/api/v1/dispatches/{dispatch_id:str}/package"):
            expected = WRITERS  # the ZIP carries the dispatch's token
        elif (method, path) in {("POST", SESSIONS), ("POST", SESSIONS + "/{session_id:str}/launch")}:
            expected = SESSION_STARTERS
        elif (method, path) == ("GET", "/api/v1/tenant"):
            expected = EVERYONE
        else:
            expected = READERS if method == "GET" else WRITERS
        assert roles == expected, (method, path, sorted(roles))


def test_the_openapi_schema_names_each_operations_roles(api: TestClient) -> None:
    """Every authenticated operation in /api/v1/openapi.json says who may call it (x-roles and its
    description), exactly as the check applies it; only the unauthenticated routes carry none."""
    schema = api.get("/api/v1/openapi.json").json()
    unauthenticated = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            roles = operation.get("x-roles")
            if roles is None:
                unauthenticated.append(path)
                continue
            route = {r.path.replace(":str", "").replace(":int", ""): r for r in api.app.routes}[path]
            handler = next(h for h in route.route_handlers if method.upper() in h.http_methods)
            allowed = allowed_roles(handler.opt, method.upper())
            assert set(roles) == allowed, (method, path)
            assert operation["description"].endswith(f"Roles: {', '.join(roles)}."), (method, path)
    # The player (a launch token), the LTI tool (the platform's signed messages), the dispatch relay (its
    # token), a cmi5 AU's fetch URL (its one-time secret); no other /api/v1 route but health and readiness.
    public = ("/player/", "/lti/", "/dispatch/", "/cmi5/fetch/")
    probes = ("/api/v1/health", "/api/v1/ready")
    assert all(p in probes or p.startswith(public) for p in unauthenticated), unauthenticated
    webhooks = schema["paths"]["/api/v1/webhooks"]["post"]
    assert webhooks["x-roles"] == ["admin"]


def test_role_claim_forms() -> None:
    assert role_from_claims({"role": "member"}, "role", "", "learner") == "member"
    assert role_from_claims({"scope": "openid read profile"}, "scope", "", "learner") == "read"
    assert role_from_claims({"roles": ["offline_access", "read", "admin"]}, "roles", "", "learner") == "admin"
    assert role_from_claims({"org_role": "org:member"}, "org_role", "org:", "learner") == "member"
    # Without the prefix a value does not count; another application's roles grant nothing here.
    assert role_from_claims({"org_role": "member"}, "org_role", "org:", "learner") == "learner"
    assert role_from_claims({"scope": "billing:admin Admin"}, "scope", "", "read") == "read"
    assert role_from_claims({"role": 7}, "role", "", "learner") == "learner"
    assert role_from_claims({}, "role", "", "member") == "member"


# -- API keys -----------------------------------------------------------------------------------------


def test_a_read_key_reads_but_cannot_write(
    api: TestClient, config: Config, acme: TenantKey, package: dict[str, Any]
) -> None:
    reader = key_with_role(config, acme, "read")
    session = start_session(api, acme, package["id"], "learner-1").json()
    assert api.get("/api/v1/tenant", headers=reader.headers).json()["auth"]["role"] == "read"
    assert api.get(PACKAGES, headers=reader.headers).status_code == 200
    assert api.get(f"{PACKAGES}/{package['id']}/versions", headers=reader.headers).status_code == 200
    assert api.get("/api/v1/analytics/summary", headers=reader.headers).status_code == 200
    assert api.get("/api/v1/usage", headers=reader.headers).status_code == 200
    assert api.get(SESSIONS, headers=reader.headers).status_code == 200
    # It sees the session, but not the launch URL that would let it write the learner's data.
    shown = api.get(f"{SESSIONS}/{session['id']}", headers=reader.headers)
    assert shown.status_code == 200 and shown.json()["launch_url"] is None
    assert api.get(f"{SESSIONS}/{session['id']}", headers=acme.headers).json()["launch_url"]

    writers = ["admin", "member"]
    assert_role_refused(upload_raw(api, reader, package_12("Another")), "read", writers)
    assert_role_refused(api.post(f"{PACKAGES}/validate", content=package_12(), headers=reader.headers), "read", writers)
    assert_role_refused(
        api.patch(f"{PACKAGES}/{package['id']}", json={"title": "x"}, headers=reader.headers), "read", writers
    )
    assert_role_refused(api.delete(f"{PACKAGES}/{package['id']}", headers=reader.headers), "read", writers)
    assert_role_refused(start_session(api, reader, package["id"], "learner-2"), "read", ["admin", "member", "learner"])
    patch = {"version": session["version"], "cmi": {"cmi.core.lesson_location": "2"}}
    assert_role_refused(api.patch(f"{SESSIONS}/{session['id']}", json=patch, headers=reader.headers), "read", writers)
    assert_role_refused(api.delete(f"{SESSIONS}/{session['id']}", headers=reader.headers), "read", writers)
    assert_role_refused(api.get(HOOKS, headers=reader.headers), "read", ["admin"])
    # Nothing changed.
    listed = api.get(PACKAGES, headers=acme.headers).json()["data"]
    assert [(p["id"], p["title"]) for p in listed] == [(package["id"], package["title"])]
    assert api.get(f"{SESSIONS}/{session['id']}", headers=acme.headers).status_code == 200


def test_a_member_manages_content_and_sessions_but_not_webhooks(
    api: TestClient, config: Config, acme: TenantKey, package: dict[str, Any]
) -> None:
    member = key_with_role(config, acme, "member")
    assert upload_raw(api, member, package_12("Member's course")).status_code == 202
    renamed = api.patch(f"{PACKAGES}/{package['id']}", json={"title": "Renamed"}, headers=member.headers)
    assert renamed.status_code == 200, renamed.text
    session = start_session(api, member, package["id"], "learner-1")
    assert session.status_code == 201
    assert api.post(f"{SESSIONS}/{session.json()['id']}/launch", headers=member.headers).status_code == 200

    assert_role_refused(api.post(HOOKS, json=HOOK, headers=member.headers), "member", ["admin"])
    created = api.post(HOOKS, json=HOOK, headers=acme.headers)  # the admin key (every test tenant's first)
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    assert_role_refused(api.get(HOOKS, headers=member.headers), "member", ["admin"])
    assert_role_refused(api.get(f"{HOOKS}/{hook}", headers=member.headers), "member", ["admin"])
    assert_role_refused(api.get(f"{HOOKS}/{hook}/deliveries", headers=member.headers), "member", ["admin"])
    assert_role_refused(
        api.patch(f"{HOOKS}/{hook}", json={"url": "https://93.184.215.15/x"}, headers=member.headers),
        "member",
        ["admin"],
    )
    assert_role_refused(api.post(f"{HOOKS}/{hook}/test", headers=member.headers), "member", ["admin"])
    assert_role_refused(api.delete(f"{HOOKS}/{hook}", headers=member.headers), "member", ["admin"])
    shown = api.get(f"{HOOKS}/{hook}", headers=acme.headers).json()
    assert shown["url"] == HOOK["url"]
    assert api.get(HOOKS, headers=acme.headers).json()["data"][0]["id"] == hook


def test_a_learner_key_only_starts_sessions(
    api: TestClient, config: Config, acme: TenantKey, package: dict[str, Any]
) -> None:
    kiosk = key_with_role(config, acme, "learner")
    me = api.get("/api/v1/tenant", headers=kiosk.headers).json()
    assert me["auth"] == {"kind": "api_key", "key_id": kiosk.key_id, "subject": None, "role": "learner"}
    # A learner key belongs to a server that starts sessions for many learners: it is not bound to one.
    first = start_session(api, kiosk, package["id"], "ann")
    assert first.status_code == 201, first.text
    assert start_session(api, kiosk, package["id"], "bob").status_code == 201
    assert start_session(api, kiosk, package["id"], "ann").status_code == 200  # resumed
    launched = api.post(f"{SESSIONS}/{first.json()['id']}/launch", headers=kiosk.headers)
    assert launched.status_code == 200
    url = launched.json()["launch_url"]
    assert api.get(url[url.index("/player/") :]).status_code == 200

    assert_role_refused(api.get(PACKAGES, headers=kiosk.headers), "learner", ["admin", "member", "read"])
    assert_role_refused(api.get(SESSIONS, headers=kiosk.headers), "learner", ["admin", "member", "read"])
    assert_role_refused(
        api.get(f"{SESSIONS}/{first.json()['id']}", headers=kiosk.headers), "learner", ["admin", "member", "read"]
    )
    assert_role_refused(
        api.delete(f"{SESSIONS}/{first.json()['id']}", headers=kiosk.headers), "learner", ["admin", "member"]
    )
    assert_role_refused(api.get("/api/v1/usage", headers=kiosk.headers), "learner", ["admin", "member", "read"])
    assert_role_refused(upload_raw(api, kiosk, package_12()), "learner", ["admin", "member"])


def test_an_admin_key_does_everything(api: TestClient, acme: TenantKey, package: dict[str, Any]) -> None:
    assert api.get("/api/v1/tenant", headers=acme.headers).json()["auth"]["role"] == "admin"
    hook = api.post(HOOKS, json=HOOK, headers=acme.headers)
    assert hook.status_code == 201, hook.text
    assert api.post(f"{HOOKS}/{hook.json()['id']}/test", headers=acme.headers).status_code == 202
    assert api.delete(f"{HOOKS}/{hook.json()['id']}", headers=acme.headers).status_code == 204
    assert start_session(api, acme, package["id"], "x").status_code == 201
    assert api.delete(f"{PACKAGES}/{package['id']}", headers=acme.headers).status_code == 204


def test_refusals_count_against_the_tenant_rate_limit(
    api: TestClient, config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    reader = key_with_role(config, acme, "read")
    set_rate(config, acme.tenant_id, 3)
    refused = api.post(HOOKS, json=HOOK, headers=reader.headers)
    assert_error(refused, 403, "FORBIDDEN")
    assert refused.headers["RateLimit-Remaining"] == "2"
    assert api.post(HOOKS, json=HOOK, headers=reader.headers).status_code == 403
    assert api.get(PACKAGES, headers=reader.headers).status_code == 200
    assert_error(api.post(HOOKS, json=HOOK, headers=reader.headers), 429, "RATE_LIMITED")


def test_a_key_role_must_be_known(config: Config, acme: TenantKey) -> None:
    inst = Instance(config)
    try:
        with pytest.raises(ValidationFailed, match="unknown role 'owner'"):
            create_key(inst, acme.tenant_id, "x", "owner")
        assert [k.role for k in list_keys(inst, acme.tenant_id)] == ["admin"]
    finally:
        inst.close()


@pytest.mark.sqlite_only(reason="upgrades a SQLite registry file of an older release")
def test_keys_made_before_roles_become_admin(tmp_path: Path) -> None:
    """The registry migration: a key row of the old schema is an admin key, once, and stays one."""
    data = tmp_path / "data"
    data.mkdir()
    conn = apsw.Connection(str(data / "registry.db"))
    Migrations("registry", registry_migrations.steps[:2]).apply(conn, 1.0)
    secret = "sak_oldkeybody_oldsecret"
    conn.execute(
        "INSERT INTO tenants (id, name, plan, rate_limit_per_minute, created_at, updated_at) "
        "VALUES ('ten_old', 'Old', 'free', 100, 1, 1)"
    )
    conn.execute(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at) VALUES ('key_oldkeybody', 'ten_old', 'old', ?, 1)",
        (sha256_hex(secret),),
    )
    conn.close()
    config = Config(data_dir=data)
    inst = Instance(config)
    try:
        assert [(k.id, k.role) for k in list_keys(inst, "ten_old")] == [("key_oldkeybody", "admin")]
        assert "m003_api_key_roles" in [
            name
            for (name,) in inst.registry.read_sync(
                lambda c: list(c.execute("SELECT name FROM _migrations WHERE migration_set = 'registry'"))
            )
        ]
    finally:
        inst.close()
    again = apsw.Connection(str(data / "registry.db"))
    assert registry_migrations.apply(again, 2.0) == []  # applied once
    again.close()
    with TestClient(create_app(config)) as client:
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/tenant", headers=headers).json()["auth"]["role"] == "admin"
        assert client.post(HOOKS, json=HOOK, headers=headers).status_code == 201


# -- JWT users ------------------------------------------------------------------------------------------


def trust(config: Config, tenant: TenantKey, idp: Idp, **roles: str) -> None:
    inst = Instance(config)
    try:
        set_jwt(
            inst,
            tenant.tenant_id,
            JwtConfig(
                issuer="https://idp.example",
                audience="scorm-appliance",
                jwks_file=str(idp.jwks_file),
                claim_value="org_acme",
                **roles,  # type: ignore[arg-type]
            ),
        )
    finally:
        inst.close()


@pytest.fixture
def provider(tmp_path: Path, config: Config, acme: TenantKey) -> Idp:
    idp = Idp(tmp_path)
    trust(config, acme, idp)
    return idp


def test_a_jwt_without_a_role_is_a_learner_for_its_own_sub(
    api: TestClient, acme: TenantKey, provider: Idp, package: dict[str, Any]
) -> None:
    user = bearer(provider.token(org_id="org_acme", sub="ann"))
    assert api.get("/api/v1/tenant", headers=user).json()["auth"]["role"] == "learner"
    own = start_session(api, user, package["id"], "ann")
    assert own.status_code == 201, own.text
    assert api.post(f"{SESSIONS}/{own.json()['id']}/launch", headers=user).status_code == 200
    # Another learner's: starting one is refused, launching one is as if it did not exist.
    other = start_session(api, user, package["id"], "bob")
    body = assert_error(other, 403, "FORBIDDEN")
    assert body["details"] == {"role": "learner", "learner_id": "bob"}
    bobs = start_session(api, acme, package["id"], "bob").json()
    assert_error(api.post(f"{SESSIONS}/{bobs['id']}/launch", headers=user), 404, "NOT_FOUND")
    assert_error(api.post(f"{SESSIONS}/ses_nothing/launch", headers=user), 404, "NOT_FOUND")
    assert_role_refused(api.get(PACKAGES, headers=user), "learner", ["admin", "member", "read"])
    assert_role_refused(api.get(f"{SESSIONS}/{own.json()['id']}", headers=user), "learner", ["admin", "member", "read"])


def test_jwt_roles_from_the_claim(api: TestClient, provider: Idp, package: dict[str, Any]) -> None:
    member = bearer(provider.token(org_id="org_acme", role="member"))
    admin = bearer(provider.token(org_id="org_acme", role=["offline_access", "admin"]))
    reader = bearer(provider.token(org_id="org_acme", role="read"))
    unknown = bearer(provider.token(org_id="org_acme", role="superuser"))
    assert (
        api.post(PACKAGES, content=package_12(), headers={**member, "Content-Type": "application/zip"}).status_code
        == 202
    )
    assert start_session(api, member, package["id"], "anyone").status_code == 201  # a member is not bound
    assert_role_refused(api.post(HOOKS, json=HOOK, headers=member), "member", ["admin"])
    assert api.post(HOOKS, json=HOOK, headers=admin).status_code == 201
    assert api.get(PACKAGES, headers=reader).status_code == 200
    assert_role_refused(api.delete(f"{PACKAGES}/{package['id']}", headers=reader), "read", ["admin", "member"])
    assert api.get("/api/v1/tenant", headers=unknown).json()["auth"]["role"] == "learner"


def test_jwt_role_claim_prefix_and_default_are_per_tenant(
    api: TestClient, config: Config, acme: TenantKey, provider: Idp
) -> None:
    trust(config, acme, provider, role_claim="org_role", role_prefix="org:", default_role="read")
    role_of = lambda **claims: api.get(  # noqa: E731
        "/api/v1/tenant", headers=bearer(provider.token(org_id="org_acme", **claims))
    ).json()["auth"]["role"]
    assert role_of(org_role="org:admin") == "admin"
    assert role_of(org_role="org:member") == "member"
    assert role_of(org_role="admin") == "read"  # no prefix: the default
    assert role_of(role="admin") == "read"  # the default claim name is no longer read
    assert role_of() == "read"


def test_a_jwt_default_role_must_be_known(config: Config, acme: TenantKey, provider: Idp) -> None:
    with pytest.raises(ValidationFailed, match="unknown role 'root'"):
        trust(config, acme, provider, default_role="root")
