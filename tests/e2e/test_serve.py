"""`scorm-appliance serve` as a real process: first-run hint, CLI changes seen live, errors, shutdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

ERROR_KEYS = {"error", "code", "details"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape, status, code, JSON content type and request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    return body


def create_tenant_and_key(server: ServerProcess, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    tenant = server.cli("tenants", "create", name)
    key = server.cli("keys", "create", "--tenant", name)
    return tenant, key


def test_serve_first_run_then_cli_changes_are_seen_live(server: ServerProcess) -> None:
    # First run on an empty data dir: the exact commands to run next, with this data dir.
    hint = server.stderr()
    assert "No tenant exists yet" in hint
    assert f'scorm-appliance tenants create "My Organisation" --data-dir {server.data_dir}' in hint
    assert f'scorm-appliance keys create --tenant "My Organisation" --data-dir {server.data_dir}' in hint

    with server.client() as http:
        health = http.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.headers.get("x-request-id")
        assert_error(http.get("/api/v1/tenant"), 401, "UNAUTHORIZED")

        # While the server runs, the CLI (another process) creates a tenant and a key ...
        acme, acme_key = create_tenant_and_key(server, "Acme")
        assert acme["id"].startswith("ten_")
        assert (acme["name"], acme["status"]) == ("Acme", "active")
        assert acme_key["id"].startswith("key_")
        assert acme_key["key"].startswith("sak_")
        assert acme_key["tenant_id"] == acme["id"]

        # ... and the running server accepts the key at once, in both headers.
        me = http.get("/api/v1/tenant", headers=bearer(acme_key["key"]))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == acme["id"]
        assert me.json()["auth"] == {"kind": "api_key", "key_id": acme_key["id"], "subject": None, "role": "admin"}
        assert me.headers.get("x-request-id")
        via_header = http.get("/api/v1/tenant", headers={"X-API-Key": acme_key["key"]})
        assert via_header.status_code == 200
        assert via_header.json()["id"] == acme["id"]

        # A second tenant's key sees only its own tenant.
        globex, globex_key = create_tenant_and_key(server, "Globex")
        assert globex["id"] != acme["id"]
        assert http.get("/api/v1/tenant", headers=bearer(globex_key["key"])).json()["id"] == globex["id"]
        assert http.get("/api/v1/tenant", headers=bearer(acme_key["key"])).json()["id"] == acme["id"]

        # Suspending a tenant with the CLI: 403 at once; resuming: 200 again.
        assert server.cli("tenants", "suspend", "Globex")["status"] == "suspended"
        suspended = assert_error(http.get("/api/v1/tenant", headers=bearer(globex_key["key"])), 403, "FORBIDDEN")
        assert suspended["details"]["tenant_id"] == globex["id"]
        assert server.cli("tenants", "resume", "Globex")["status"] == "active"
        assert http.get("/api/v1/tenant", headers=bearer(globex_key["key"])).status_code == 200

        # Revoking a key with the CLI: the very next call is 401 in the contract's error shape.
        revoked = server.cli("keys", "revoke", acme_key["id"])
        assert (revoked["id"], revoked["status"]) == (acme_key["id"], "revoked")
        assert "key" not in revoked
        assert_error(http.get("/api/v1/tenant", headers=bearer(acme_key["key"])), 401, "UNAUTHORIZED")
        assert_error(http.get("/api/v1/tenant", headers={"X-API-Key": acme_key["key"]}), 401, "UNAUTHORIZED")
        assert http.get("/api/v1/tenant", headers=bearer(globex_key["key"])).status_code == 200

        # Unknown routes: a JSON 404 with a request id; a client's own request id is echoed.
        missing = assert_error(http.get("/api/v1/no-such-route"), 404, "NOT_FOUND")
        assert missing["details"] == {}
        assert_error(http.get("/no-such-page", headers=bearer(globex_key["key"])), 404, "NOT_FOUND")
        echoed = http.get("/api/v1/no-such-route", headers={"X-Request-ID": "e2e-trace-42"})
        assert echoed.headers["x-request-id"] == "e2e-trace-42"

    # SIGTERM: a clean shutdown with exit status 0, within a bounded time.
    assert server.stop() == 0, server.stderr()


def test_kill_and_restart_keep_tenants_and_keys(server: ServerProcess) -> None:
    tenant, key = create_tenant_and_key(server, "Initech")

    assert server.kill() != 0  # SIGKILL: no shutdown code runs
    server.restart()
    assert "No tenant exists yet" not in server.stderr()  # no first-run hint once a tenant exists

    with server.client() as http:
        me = http.get("/api/v1/tenant", headers=bearer(key["key"]))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == tenant["id"]


def test_cli_errors_against_a_running_server(server: ServerProcess) -> None:
    unknown = server.run_cli("keys", "create", "--tenant", "nobody")
    assert unknown.returncode == 1
    assert '"code": "NOT_FOUND"' in unknown.stderr
    usage = server.run_cli("tenants", "create")  # NAME missing
    assert usage.returncode == 2


def test_two_servers_on_separate_data_dirs(start_server: Callable[..., ServerProcess]) -> None:
    first, second = start_server(), start_server()
    assert first.port != second.port
    _, key = create_tenant_and_key(first, "OnlyOnFirst")
    with first.client() as a, second.client() as b:
        assert a.get("/api/v1/tenant", headers=bearer(key["key"])).status_code == 200
        assert_error(b.get("/api/v1/tenant", headers=bearer(key["key"])), 401, "UNAUTHORIZED")
    assert second.cli("tenants", "list") == []
