"""Every error, from every route, in the contract's shape, with a request id and no stack trace."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient


def assert_contract_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "code", "details"}, body
    assert body["code"] == code
    assert isinstance(body["details"], dict)
    assert "Traceback" not in response.text
    return body


def test_health_needs_no_auth(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"].startswith("req_")


def test_request_id_is_echoed(client: TestClient) -> None:
    assert client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/nope", headers={"X-Request-ID": "abc-124"}).headers["x-request-id"] == "abc-124"
    # an unsafe one is replaced, not reflected
    assert client.get("/api/v1/health", headers={"X-Request-ID": "<script>"}).headers["x-request-id"].startswith("req_")


def test_unknown_route(client: TestClient) -> None:
    assert_contract_error(client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    assert_contract_error(client.get("/"), 404, "NOT_FOUND")


def test_wrong_method(client: TestClient) -> None:
    body = assert_contract_error(client.delete("/api/v1/health"), 405, "METHOD_NOT_ALLOWED")
    assert "GET" in body["details"]["allowed"]


def test_oversized_headers(client: TestClient) -> None:
    response = client.get("/api/v1/health", headers={"X-Filler": "a" * 40_000})
    assert_contract_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert response.headers["x-request-id"]


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.1")
    assert "/api/v1/health" in schema.json()["paths"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
