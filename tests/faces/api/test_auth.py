"""Authentication: API keys in both headers, revoked and suspended cases, and tenants' JWTs."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import revoke_key
from appliance.services.tenancy.tenants import JwtConfig, set_jwt, set_status
from tests.conftest import TenantKey


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "details"}
    assert body["code"] == code
    assert response.headers["x-request-id"]
    return body


def test_key_in_either_header(client: TestClient, acme: TenantKey) -> None:
    by_bearer = client.get("/api/v1/tenant", headers=acme.headers)
    assert by_bearer.status_code == 200, by_bearer.text
    assert by_bearer.json()["id"] == acme.tenant_id
    by_header = client.get("/api/v1/tenant", headers={"X-API-Key": acme.secret})
    assert by_header.json()["id"] == acme.tenant_id


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer sak_abc_def"},
        {"X-API-Key": "sak_"},
    ],
)
def test_missing_or_malformed_credentials(client: TestClient, acme: TenantKey, headers: dict[str, str]) -> None:
    assert_error(client.get("/api/v1/tenant", headers=headers), 401, "UNAUTHORIZED")


def test_wrong_secret_for_a_real_key_id(client: TestClient, acme: TenantKey) -> None:
    forged = acme.secret[:-4] + ("AAAA" if not acme.secret.endswith("AAAA") else "BBBB")
    assert_error(client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {forged}"}), 401, "UNAUTHORIZED")


def test_revoked_key_stops_at_once(client: TestClient, config: Config, acme: TenantKey) -> None:
    assert client.get("/api/v1/tenant", headers=acme.headers).status_code == 200
    other = Instance(config)  # as the CLI in another process would
    revoke_key(other, acme.key_id)
    other.close()
    body = assert_error(client.get("/api/v1/tenant", headers=acme.headers), 401, "UNAUTHORIZED")
    assert "revoked" in body["error"]


def test_suspended_tenant_is_forbidden(client: TestClient, config: Config, acme: TenantKey) -> None:
    other = Instance(config)
    set_status(other, acme.tenant_id, "suspended")
    assert_error(client.get("/api/v1/tenant", headers=acme.headers), 403, "FORBIDDEN")
    set_status(other, acme.tenant_id, "active")
    other.close()
    assert client.get("/api/v1/tenant", headers=acme.headers).status_code == 200


def test_each_key_sees_its_own_tenant(client: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    assert client.get("/api/v1/tenant", headers=acme.headers).json()["id"] == acme.tenant_id
    assert client.get("/api/v1/tenant", headers=globex.headers).json()["id"] == globex.tenant_id


# -- JWTs --------------------------------------------------------------------------------------


class Idp:
    """An identity provider made in the test: an RSA key pair and its JWKS file."""

    def __init__(self, tmp_path: Path, kid: str = "k1") -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
        self.kid = kid
        self.jwks_file = tmp_path / f"jwks-{kid}.json"
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}))

    def token(self, **claims: Any) -> str:
        base = {"iss": "https://idp.example", "aud": "scorm-appliance", "exp": time.time() + 300, "sub": "user-1"}
        base.update(claims)
        return jwt.encode({k: v for k, v in base.items() if v is not None}, self.private, "RS256", {"kid": self.kid})


@pytest.fixture
def idp(tmp_path: Path, config: Config, acme: TenantKey) -> Idp:
    provider = Idp(tmp_path)
    other = Instance(config)
    set_jwt(
        other,
        acme.tenant_id,
        JwtConfig(
            issuer="https://idp.example",
            audience="scorm-appliance",
            jwks_file=str(provider.jwks_file),
            claim_value="org_acme",
        ),
    )
    other.close()
    return provider


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_jwt_resolves_to_its_tenant(client: TestClient, idp: Idp, acme: TenantKey) -> None:
    response = client.get("/api/v1/tenant", headers=bearer(idp.token(org_id="org_acme")))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == acme.tenant_id
    # No role claim: the safe default role (docs/authentication.md, "Roles").
    assert response.json()["auth"] == {"kind": "jwt", "key_id": None, "subject": "user-1", "role": "learner"}


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": time.time() - 10},  # expired
        {"iss": "https://evil.example"},  # wrong issuer
        {"aud": "someone-else"},  # wrong audience
        {"exp": None},  # no expiry
        {"org_id": "org_other"},  # names no tenant
        {"org_id": None},  # names nothing
    ],
)
def test_bad_jwt_claims(client: TestClient, idp: Idp, claims: dict[str, Any]) -> None:
    token = idp.token(**{"org_id": "org_acme", **claims})
    assert_error(client.get("/api/v1/tenant", headers=bearer(token)), 401, "UNAUTHORIZED")


def test_jwt_signed_by_another_key(client: TestClient, idp: Idp, tmp_path: Path) -> None:
    (tmp_path / "impostor").mkdir()
    impostor = Idp(tmp_path / "impostor", kid=idp.kid)
    assert_error(client.get("/api/v1/tenant", headers=bearer(impostor.token(org_id="org_acme"))), 401, "UNAUTHORIZED")


def test_jwt_hs256_with_public_key_is_refused(client: TestClient, idp: Idp) -> None:
    # the classic algorithm-confusion attack: HMAC "signed" with the public JWKS as the secret
    secret = idp.jwks_file.read_bytes()
    claims = {
        "iss": "https://idp.example",
        "aud": "scorm-appliance",
        "exp": int(time.time()) + 60,
        "org_id": "org_acme",
    }

    def part(obj: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": idp.kid}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    token = (signing_input + b"." + signature).decode()
    assert_error(client.get("/api/v1/tenant", headers=bearer(token)), 401, "UNAUTHORIZED")


def test_garbage_jwt(client: TestClient, idp: Idp) -> None:
    assert_error(client.get("/api/v1/tenant", headers=bearer("aaa.bbb.ccc")), 401, "UNAUTHORIZED")


@contextlib.contextmanager
def jwks_server(body: bytes) -> Iterator[tuple[str, list[str]]]:
    """An identity provider's JWKS URL on 127.0.0.1, and the paths it was asked for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", hits
    finally:
        server.shutdown()
        server.server_close()


def use_jwks_url(config: Config, tenant_id: str, url: str) -> None:
    other = Instance(config)
    try:
        set_jwt(other, tenant_id, JwtConfig(issuer="https://idp.example", audience="scorm-appliance", jwks_url=url))
    finally:
        other.close()


def test_jwks_from_a_url_is_fetched_and_cached(config: Config, acme: TenantKey, tmp_path: Path) -> None:
    provider = Idp(tmp_path, kid="url-key")
    allowed = dataclasses.replace(config, outbound_allow=("127.0.0.1/32",))  # the IdP listens on loopback
    with jwks_server(provider.jwks_file.read_bytes()) as (url, hits), TestClient(create_app(allowed)) as client:
        use_jwks_url(config, acme.tenant_id, url)
        token = provider.token(org_id=acme.tenant_id)  # the claim value defaults to the tenant id
        for _ in range(3):
            response = client.get("/api/v1/tenant", headers=bearer(token))
            assert response.status_code == 200, response.text
            assert response.json()["id"] == acme.tenant_id
        assert hits == ["/.well-known/jwks.json"]  # fetched once, then cached
        expired = provider.token(org_id=acme.tenant_id, exp=time.time() - 5)
        assert_error(client.get("/api/v1/tenant", headers=bearer(expired)), 401, "UNAUTHORIZED")


def test_a_jwks_url_on_an_internal_address_is_not_fetched_without_the_allow_list(
    client: TestClient, config: Config, acme: TenantKey, tmp_path: Path
) -> None:
    provider = Idp(tmp_path, kid="url-key")
    with jwks_server(provider.jwks_file.read_bytes()) as (url, hits):
        use_jwks_url(config, acme.tenant_id, url)
        body = assert_error(
            client.get("/api/v1/tenant", headers=bearer(provider.token(org_id=acme.tenant_id))), 401, "UNAUTHORIZED"
        )
        assert body["error"] == "the identity provider's keys could not be loaded"
        assert hits == []  # the loopback listener was never connected to


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},  # no keys at all
        {"keys": [{"kty": "RSA", "kid": "k1"}]},  # a key without its numbers: unusable
        {"keys": [{"kty": "nonsense"}]},
        {"no_keys": True},
        [1, 2, 3],  # not an object
    ],
)
def test_a_jwks_without_usable_keys_is_401_not_500(client: TestClient, idp: Idp, jwks: Any) -> None:
    idp.jwks_file.write_text(json.dumps(jwks))
    body = assert_error(client.get("/api/v1/tenant", headers=bearer(idp.token(org_id="org_acme"))), 401, "UNAUTHORIZED")
    assert body["error"] == "the identity provider's keys could not be loaded"


def test_an_unknown_tenant_claim_and_an_unknown_key_get_the_same_answer(
    client: TestClient, idp: Idp, tmp_path: Path
) -> None:
    (tmp_path / "impostor").mkdir()
    impostor = Idp(tmp_path / "impostor", kid="other-kid")
    unknown_tenant = client.get("/api/v1/tenant", headers=bearer(idp.token(org_id="org_nobody")))
    unknown_key = client.get("/api/v1/tenant", headers=bearer(impostor.token(org_id="org_acme")))
    first, second = assert_error(unknown_tenant, 401, "UNAUTHORIZED"), assert_error(unknown_key, 401, "UNAUTHORIZED")
    assert (first["error"], first["details"]) == (second["error"], second["details"])


@pytest.mark.parametrize(
    ("offsets", "accepted"),
    [
        ({"iat": 0, "exp": 23 * 3600}, True),
        ({"iat": -3600, "exp": 300}, True),
        ({"iat": 0, "exp": 25 * 3600}, False),  # exp - iat over 24 h
        ({"iat": -86_000, "exp": 1000}, False),  # still valid, but issued for too long
        ({"exp": 25 * 3600}, False),  # no iat: exp - now over 24 h
        ({"exp": 365 * 86400}, False),
    ],
)
def test_tokens_living_longer_than_the_maximum_are_refused(
    client: TestClient, idp: Idp, acme: TenantKey, offsets: dict[str, int], accepted: bool
) -> None:
    now = time.time()  # when the test runs, not when it was collected (a long suite outlives a 300 s token)
    claims = {name: now + offset for name, offset in offsets.items()}
    response = client.get("/api/v1/tenant", headers=bearer(idp.token(org_id="org_acme", **claims)))
    if accepted:
        assert response.status_code == 200, response.text
    else:
        body = assert_error(response, 401, "UNAUTHORIZED")
        assert "lifetime" in body["error"] and body["details"] == {"max_lifetime_seconds": 86400.0}


def test_the_maximum_lifetime_is_a_setting(config: Config, idp: Idp) -> None:
    short = dataclasses.replace(config, jwt_max_lifetime_seconds=600)
    with TestClient(create_app(short)) as client:
        ok = client.get("/api/v1/tenant", headers=bearer(idp.token(org_id="org_acme", exp=time.time() + 500)))
        assert ok.status_code == 200, ok.text
        hour = idp.token(org_id="org_acme", iat=time.time(), exp=time.time() + 3600)
        assert_error(client.get("/api/v1/tenant", headers=bearer(hour)), 401, "UNAUTHORIZED")


def test_a_jwks_that_failed_to_load_is_not_fetched_again_for_30_seconds(
    config: Config, acme: TenantKey, tmp_path: Path
) -> None:
    provider = Idp(tmp_path, kid="url-key")
    allowed = dataclasses.replace(config, outbound_allow=("127.0.0.1/32",))
    clock = FixedClock(time.time())
    with jwks_server(b"<html>the identity provider is down</html>") as (url, hits):
        use_jwks_url(config, acme.tenant_id, url)
        with TestClient(create_app(allowed, clock=clock, start_scheduler=False)) as client:
            token = bearer(provider.token(org_id=acme.tenant_id))
            for _ in range(5):  # every token while it is down: one fetch, not five
                assert_error(client.get("/api/v1/tenant", headers=token), 401, "UNAUTHORIZED")
            assert len(hits) == 1
            clock.advance(31)
            assert_error(client.get("/api/v1/tenant", headers=token), 401, "UNAUTHORIZED")
            assert len(hits) == 2
