"""The system routes on each database backend: readiness per dependency — the database, Redis when
`redis_url` is set, the object store when `files` is an s3:// bucket (moto's server on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from litestar.testing import TestClient

from appliance import __version__
from appliance.config import Config
from appliance.faces.app import create_app
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3, free_port, moto_s3, s3_bucket  # noqa: F401
from tests.storage.test_redis_state import closed_port_url, redis_prefix_url


def test_ready_reports_the_database_backend(client: TestClient, backend: str) -> None:
    response = client.get("/api/v1/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "checks": {"database": {"backend": backend, "status": "ok"}},
    }


def test_ready_is_in_the_openapi_schema(client: TestClient) -> None:
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/ready"]["get"]
    assert {"200", "503"} <= set(operation["responses"])
    assert "NOT_READY" in operation["description"]


def ready(config: Config) -> tuple[int, dict[str, Any], float]:
    """GET /api/v1/ready of an app on `config`: status, body, and the seconds the answer took."""
    with TestClient(create_app(config, start_scheduler=False), raise_server_exceptions=False) as client:
        started = time.monotonic()
        response = client.get("/api/v1/ready")
        return response.status_code, response.json(), time.monotonic() - started


def s3_files(config: Config, bucket: str, endpoint: str) -> Config:
    return dataclasses.replace(
        config,
        files=f"s3://{bucket}/deployment",
        files_endpoint=endpoint,
        files_region=REGION,
        files_access_key_id=ACCESS_KEY_ID,
        files_secret_access_key=SECRET_ACCESS_KEY,
    )


def assert_not_ready(status: int, body: dict[str, Any], down: str, message: str) -> dict[str, Any]:
    assert status == 503, body
    assert body["code"] == "NOT_READY" and body["error"] == message, body
    assert body["details"]["down"] == [down]
    checks: dict[str, Any] = body["details"]["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks[down]["status"] == "unavailable"
    return checks


def test_ready_checks_redis_when_configured(config: Config, backend: str) -> None:
    with redis_prefix_url() as url:
        status, body, _ = ready(dataclasses.replace(config, redis_url=url))
    assert status == 200, body
    assert body["checks"] == {"database": {"backend": backend, "status": "ok"}, "redis": {"status": "ok"}}


def test_ready_is_503_naming_redis_when_it_does_not_answer(config: Config) -> None:
    status, body, seconds = ready(dataclasses.replace(config, redis_url=closed_port_url()))
    checks = assert_not_ready(status, body, "redis", "not ready: Redis does not answer")
    assert checks["redis"] == {"status": "unavailable", "error": "ConnectionError"}
    assert seconds < 1.5  # bounded by the 0.25 s timeout, not waited on


def test_ready_checks_the_object_store_when_files_is_s3(
    config: Config,
    backend: str,
    moto_s3: MotoS3,  # noqa: F811
    s3_bucket: str,  # noqa: F811
) -> None:
    status, body, _ = ready(s3_files(config, s3_bucket, moto_s3.endpoint_url))
    assert status == 200, body
    assert body["checks"] == {
        "database": {"backend": backend, "status": "ok"},
        "files": {"backend": "s3", "status": "ok"},
    }


def test_ready_is_503_naming_the_object_store_when_it_is_unreachable_or_the_bucket_missing(
    config: Config,
    moto_s3: MotoS3,  # noqa: F811
) -> None:
    status, body, seconds = ready(s3_files(config, "no-such-bucket", f"http://127.0.0.1:{free_port()}"))
    checks = assert_not_ready(status, body, "files", "not ready: the object store does not answer")
    assert checks["files"] == {"backend": "s3", "status": "unavailable", "error": "EndpointConnectionError"}
    assert seconds < 3.0  # one attempt, no retries
    status, body, _ = ready(s3_files(config, "no-such-bucket", moto_s3.endpoint_url))
    checks = assert_not_ready(status, body, "files", "not ready: the object store does not answer")
    assert checks["files"]["error"] == "404"  # HeadBucket's answer for a bucket that is not there


def test_ready_names_every_dependency_down(config: Config) -> None:
    down = dataclasses.replace(
        s3_files(config, "some-bucket", f"http://127.0.0.1:{free_port()}"), redis_url=closed_port_url()
    )
    status, body, _ = ready(down)
    assert status == 503
    assert body["error"] == "not ready: Redis and the object store do not answer"
    assert body["details"]["down"] == ["redis", "files"]
