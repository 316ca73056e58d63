"""A server killed (SIGKILL) while a package is processing picks the job up again after a restart.

The package is made slow to process on purpose (20,000 small files: extraction takes seconds), the
test waits until the registry shows its job `running`, kills the process, restarts it on the same
data directory and polls (bounded) until the package is `ready`. On both backends: the job and the
version are read beside the server from its SQLite files or its PostgreSQL schema (`ServerProcess.rows`).
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.storage.datadir import DataDir
from tests.e2e.conftest import ServerProcess
from tests.faces.api.test_packages import manifest_12

pytestmark = pytest.mark.e2e

FILE_COUNT = 20_000
FILE_BYTES = 5_000
KILL_WAIT = 60.0  # seconds for the job to be claimed after the upload
READY_WAIT = 120.0  # seconds for the restarted server to finish it


def slow_package(path: Path) -> int:
    """A valid SCORM 1.2 ZIP with many incompressible files; returns how many files it holds."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("imsmanifest.xml", manifest_12("Slow course"))
        archive.writestr("index.html", b"<html>slow</html>")
        for n in range(FILE_COUNT):
            archive.writestr(f"assets/{n // 500:03d}/{n:05d}.bin", os.urandom(FILE_BYTES))
    return FILE_COUNT + 2


def file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_package_processing_survives_sigkill(start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    # enterprise: polling stays under the rate limit
    tenant = server.cli("tenants", "create", "Acme", "--plan", "enterprise")["id"]
    key = server.cli("keys", "create", "--tenant", "Acme")
    headers = {"Authorization": f"Bearer {key['key']}"}
    zip_path = tmp_path / "slow.zip"
    expected_files = slow_package(zip_path)

    with server.client(timeout=120.0) as http:
        created = http.post(
            "/api/v1/packages",
            content=file_chunks(zip_path),
            headers={**headers, "Content-Type": "application/zip", "Content-Length": str(zip_path.stat().st_size)},
        )
        assert created.status_code == 202, created.text
        package_id = created.json()["id"]
        assert created.json()["status"] == "processing"

    def running_job() -> list[dict[str, Any]]:
        return server.rows("SELECT * FROM jobs WHERE kind = 'package.process' AND status = 'running'")

    wait_for("the processing job to start", running_job, KILL_WAIT)
    time.sleep(0.3)  # well inside the extraction of 20,000 files
    server.kill()

    [job] = server.rows("SELECT * FROM jobs WHERE kind = 'package.process'")
    assert job["status"] == "running", "processing finished before the kill: make the package slower"
    assert job["attempts"] == 1
    [version] = server.rows("SELECT status FROM package_versions WHERE package_id = ?", (package_id,), tenant=tenant)
    assert version["status"] == "processing"

    server.start()
    with server.client() as http:

        def finished() -> dict[str, Any] | None:
            package = http.get(f"/api/v1/packages/{package_id}", headers=headers).json()
            return package if package["status"] != "processing" else None

        package = wait_for("the package to finish after the restart", finished, READY_WAIT, interval=0.25)

    assert package["status"] == "ready", package["error"]
    assert package["file_count"] == expected_files
    assert package["scorm_version"] == "1.2"
    assert (package["latest_version"], package["active_version"]) == (1, 1)
    # The job row is marked done just after the version (two files, two transactions): wait for it.
    job = wait_for(
        "the job to be marked done",
        lambda: [r for r in server.rows("SELECT * FROM jobs WHERE kind = 'package.process'") if r["status"] == "done"],
        10.0,
    )[0]
    assert job["attempts"] == 2
    tenant_dir = DataDir(server.data_dir).tenant_dir(tenant)
    version_dir = tenant_dir / "packages" / package_id / "1"
    assert sum(1 for p in version_dir.rglob("*") if p.is_file()) == expected_files
    assert not any((tenant_dir / "uploads").iterdir())  # the received ZIP is gone once extracted
    assert not any((server.data_dir / "tmp").iterdir())  # the half-done extraction was cleaned up
