"""The system routes on each database backend: readiness names the backend and its state."""

from __future__ import annotations

from litestar.testing import TestClient

from appliance import __version__


def test_ready_reports_the_database_backend(client: TestClient, backend: str) -> None:
    response = client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "checks": {"database": {"backend": backend, "status": "ok"}},
    }


def test_ready_is_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/ready"]
