"""The console's accounts and sessions: the cookie, expiry, login limits, CSRF and the tenant scope."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import create_app
from appliance.faces.cli import cli
from appliance.instance import Instance
from appliance.services.tenancy import admins
from appliance.services.tenancy.admins import ABSOLUTE_SECONDS, IDLE_SECONDS, LOCK_AFTER, LOCK_SECONDS
from tests.faces.console.conftest import PASSWORD, World, login_token, sign_in


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = admins.hash_password(PASSWORD), admins.hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert admins.verify_password(PASSWORD, first)
    assert not admins.verify_password(PASSWORD + "x", first)
    assert not admins.verify_password(PASSWORD, "garbage")


def test_short_password_refused(inst: Instance) -> None:
    with pytest.raises(admins.ValidationFailed):
        admins.create_admin(inst, "shorty", "too-short")


def test_cookie_attributes_and_headers(app_client: TestClient) -> None:
    form = app_client.get("/admin/login")
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert "script-src 'self'" in form.headers["content-security-policy"]
    assert form.headers["x-frame-options"] == "DENY"
    assert form.headers["cache-control"] == "no-store"
    answer = app_client.post(
        "/admin/login",
        data={"csrf_token": login_token(app_client), "username": "root", "password": PASSWORD},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain http, no https public_url
    assert answer.headers["location"] == "/admin"


def test_cookie_is_secure_when_public_url_is_https(config: Config, clock: FixedClock, world: World) -> None:
    app = create_app(replace(config, public_url="https://scorm.example.com"), clock=clock, start_scheduler=False)
    with TestClient(app, base_url="https://scorm.example.com", raise_server_exceptions=False) as client:
        answer = client.post(
            "/admin/login",
            data={"csrf_token": login_token(client), "username": "root", "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]


def test_signed_out_pages_go_to_login_and_scripts_get_401(app_client: TestClient) -> None:
    answer = app_client.get("/admin/tenants", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"
    scripted = app_client.get("/admin/tenants", headers={"Accept": "application/json"})
    assert scripted.status_code == 401 and scripted.json()["code"] == "UNAUTHORIZED"


def test_wrong_password_and_account_lockout(app_client: TestClient, config: Config, clock: FixedClock) -> None:
    for _ in range(LOCK_AFTER):
        answer = app_client.post(
            "/admin/login",
            data={"csrf_token": login_token(app_client), "username": "root", "password": "wrong-wrong-wrong"},
        )
        assert answer.status_code == 401
    # Locked: the right password is refused the same way.
    locked = app_client.post(
        "/admin/login", data={"csrf_token": login_token(app_client), "username": "root", "password": PASSWORD}
    )
    assert locked.status_code == 401 and "Wrong username or password" in locked.text
    clock.advance(LOCK_SECONDS + 1)
    sign_in(app_client, "root")


def test_passwd_unlocks_and_ends_sessions(app_client: TestClient, config: Config, clock: FixedClock) -> None:
    sign_in(app_client, "root")
    inst = Instance(config, clock)
    try:
        admins.set_password(inst, "root", "a brand new password")
    finally:
        inst.close()
    assert app_client.get("/admin/tenants", follow_redirects=False).status_code == 303
    sign_in(app_client, "root", "a brand new password")


def test_address_limit_blocks_every_account(app_client: TestClient) -> None:
    from appliance.faces.console.routes import ADDRESS_FAILURES_PER_MINUTE

    for i in range(ADDRESS_FAILURES_PER_MINUTE):
        name = "root" if i % 2 else "acme-admin"
        app_client.post(
            "/admin/login", data={"csrf_token": login_token(app_client), "username": name, "password": "nope-nope-nope"}
        )
    blocked = app_client.post(
        "/admin/login", data={"csrf_token": login_token(app_client), "username": "root", "password": PASSWORD}
    )
    assert blocked.status_code == 429


def test_login_form_needs_its_token(app_client: TestClient) -> None:
    answer = app_client.post("/admin/login", data={"csrf_token": "forged", "username": "root", "password": PASSWORD})
    assert answer.status_code == 403
    assert "sa_console=" not in answer.headers.get("set-cookie", "")


def test_idle_and_absolute_expiry(app_client: TestClient, clock: FixedClock) -> None:
    sign_in(app_client, "root")
    clock.advance(IDLE_SECONDS - 60)
    assert app_client.get("/admin/tenants").status_code == 200  # still alive, and moved on
    clock.advance(IDLE_SECONDS - 60)
    assert app_client.get("/admin/tenants").status_code == 200
    clock.advance(IDLE_SECONDS + 1)
    assert app_client.get("/admin/tenants", follow_redirects=False).status_code == 303
    sign_in(app_client, "root")
    elapsed = 0.0
    while elapsed + IDLE_SECONDS / 2 < ABSOLUTE_SECONDS:
        clock.advance(IDLE_SECONDS / 2)
        elapsed += IDLE_SECONDS / 2
        assert app_client.get("/admin/tenants").status_code == 200
    clock.advance(ABSOLUTE_SECONDS - elapsed)
    assert app_client.get("/admin/tenants", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_on_the_server(app_client: TestClient) -> None:
    csrf = sign_in(app_client, "root")
    cookie = app_client.cookies.get("sa_console")
    assert app_client.post("/admin/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    app_client.cookies.set("sa_console", cookie, path="/admin")  # a stolen copy is worth nothing now
    assert app_client.get("/admin/tenants", follow_redirects=False).status_code == 303


def test_csrf_required_on_every_action(app_client: TestClient, world: World) -> None:
    csrf = sign_in(app_client, "root")
    url = f"/admin/t/{world.acme}/keys/"
    assert app_client.post(url, data={"name": "no-token"}).status_code == 403
    assert app_client.post(url, data={"name": "bad", "csrf_token": "x" * 43}).status_code == 403
    assert app_client.post(url, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert (
        app_client.post(
            f"/admin/t/{world.acme}/packages/upload", content=b"PK", headers={"Content-Type": "application/zip"}
        ).status_code
        == 403
    )
    assert app_client.post("/admin/logout", data={}).status_code == 403
    made = app_client.post(url, data={"name": "good", "csrf_token": csrf})
    assert made.status_code == 201 and "sak_" in made.text


def test_csrf_token_is_bound_to_its_session(app_client: TestClient, world: World) -> None:
    mine = sign_in(app_client, "root")
    my_cookie = app_client.cookies.get("sa_console")
    app_client.cookies.clear()
    theirs = sign_in(app_client, "root")  # a second session of the same account
    assert theirs != mine
    app_client.cookies.clear()
    app_client.cookies.set("sa_console", my_cookie, path="/admin")
    refused = app_client.post(f"/admin/t/{world.acme}/keys/", data={"name": "x", "csrf_token": theirs})
    assert refused.status_code == 403
    assert app_client.post(f"/admin/t/{world.acme}/keys/", data={"name": "x", "csrf_token": mine}).status_code == 201


def test_tenant_admin_sees_and_acts_on_own_tenant_only(app_client: TestClient, world: World) -> None:
    csrf = sign_in(app_client, "acme-admin")
    assert app_client.get("/admin", follow_redirects=False).headers["location"] == f"/admin/t/{world.acme}"
    listed = app_client.get("/admin/tenants")
    assert "acme" in listed.text and "globex" not in listed.text
    for path in (
        "",
        "/packages",
        "/sessions",
        "/analytics",
        "/webhooks",
        "/keys",
        "/xapi",
        "/dispatches",
        "/lti",
        "/jwt",
    ):
        assert app_client.get(f"/admin/t/{world.acme}{path}").status_code == 200, path
        assert app_client.get(f"/admin/t/{world.globex}{path}").status_code == 404, path
    # Actions on the other tenant, with a valid CSRF token: not found, and nothing happened.
    assert app_client.post(f"/admin/t/{world.globex}/keys/", data={"csrf_token": csrf, "name": "x"}).status_code == 404
    # Status is a superuser's action: refused before the tenant is even looked at (nothing to learn).
    assert (
        app_client.post(f"/admin/t/{world.globex}/status", data={"csrf_token": csrf, "status": "suspended"}).status_code
        == 403
    )
    # Server-wide pages and actions are a superuser's.
    for path in ("/admin/backups", "/admin/logs", "/admin/settings"):
        assert app_client.get(path).status_code == 403, path
    assert app_client.post("/admin/tenants", data={"csrf_token": csrf, "name": "evil"}).status_code == 403
    assert (
        app_client.post(f"/admin/t/{world.acme}/plan", data={"csrf_token": csrf, "plan": "enterprise"}).status_code
        == 403
    )


def test_tenant_admin_cannot_revoke_another_tenants_key(
    app_client: TestClient, config: Config, clock: FixedClock, world: World
) -> None:
    from appliance.services.tenancy import apikeys

    inst = Instance(config, clock)
    try:
        key, _ = apikeys.create_key(inst, world.globex, "theirs")
    finally:
        inst.close()
    csrf = sign_in(app_client, "acme-admin")
    assert app_client.post(f"/admin/t/{world.acme}/keys/{key.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    inst = Instance(config, clock)
    try:
        assert not apikeys.get_key(inst, key.id).revoked
    finally:
        inst.close()


def test_superuser_tenant_actions(app_client: TestClient, config: Config, world: World) -> None:
    csrf = sign_in(app_client, "root")
    made = app_client.post("/admin/tenants", data={"csrf_token": csrf, "name": "initech", "plan": "professional"})
    assert made.status_code == 200 and "initech" in made.text
    assert (
        app_client.post(f"/admin/t/{world.acme}/status", data={"csrf_token": csrf, "status": "suspended"}).status_code
        == 200
    )
    assert (
        app_client.post(f"/admin/t/{world.acme}/plan", data={"csrf_token": csrf, "plan": "enterprise"}).status_code
        == 200
    )
    page = app_client.post(
        f"/admin/t/{world.acme}/quotas", data={"csrf_token": csrf, "storage": "2GB", "requests_per_minute": "77"}
    )
    assert page.status_code == 200
    assert "suspended" in page.text and "enterprise" in page.text and "77 requests per minute" in page.text
    assert "2 GB" in page.text or "2.0 GB" in page.text


def test_content_host_does_not_serve_the_console(config: Config, clock: FixedClock, world: World) -> None:
    app = create_app(replace(config, content_origin="http://127.0.0.2:8080"), clock=clock, start_scheduler=False)
    with TestClient(app, base_url="http://127.0.0.2:8080", raise_server_exceptions=False) as content:
        for path in ("/admin", "/admin/login", "/admin/static/console.js"):
            assert content.get(path).status_code == 404, path
    with TestClient(app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False) as api:
        assert api.get("/admin/login").status_code == 200


def test_cli_admins_commands(runner: CliRunner, config: Config, world: World) -> None:
    data = ["--data-dir", str(config.data_dir)]
    made = runner.invoke(
        cli,
        ["admins", "create", "ops", "--tenant", "globex", "--password-stdin", *data],
        input="another long password\n",
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["admins", "list", "--json", *data])
    names = {a["username"]: a for a in __import__("json").loads(listed.output)}
    assert names["ops"]["tenant_id"] == world.globex and names["root"]["role"] == "superuser"
    short = runner.invoke(cli, ["admins", "passwd", "ops", "--password-stdin", *data], input="short\n")
    assert short.exit_code == 1
    assert (
        runner.invoke(
            cli, ["admins", "passwd", "ops", "--password-stdin", *data], input="yet another password\n"
        ).exit_code
        == 0
    )
    assert runner.invoke(cli, ["admins", "delete", "ops", *data]).exit_code == 0
    assert runner.invoke(cli, ["admins", "delete", "ops", *data]).exit_code == 1
