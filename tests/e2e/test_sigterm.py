"""SIGTERM during an upload: the upload completes (or, past the grace period, leaves nothing behind), exit 0.

Two uploads stream their body slowly from a thread while the main thread sends SIGTERM:

- one keeps sending (default grace period, 30 s): the server stops accepting connections but finishes the request (202), runs
  or keeps its job, and exits 0; after a restart the package is ready, byte for byte what was sent;
- one stalls half-way: past `shutdown_timeout_seconds` (2 s here) the server cancels it and exits
  0, and no row, ZIP, extracted file or partial upload is left anywhere in the data directory.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.storage.datadir import DataDir
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_package_recovery import wait_for
from tests.faces.api.test_packages import manifest_12

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024
GRACE = "2"  # seconds the server waits for in-flight requests after SIGTERM (shutdown_timeout_seconds)
EXIT_WAIT = 30.0
READY_WAIT = 60.0


def package_zip(path: Path, megabytes: int = 2) -> bytes:
    """A valid SCORM 1.2 package with incompressible filler, so the body takes a while to stream."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("imsmanifest.xml", manifest_12("Uploaded during shutdown"))
        archive.writestr("index.html", b"<html>hello</html>")
        for n in range(megabytes * 4):
            archive.writestr(f"media/{n}.bin", os.urandom(256 * 1024))
    return path.read_bytes()


def body(data: bytes, started: threading.Event, release: threading.Event | None, delay: float) -> Iterator[bytes]:
    """Yield `data` in chunks, slowly; signal after a few chunks; with `release`, stall until it is set."""
    for n, offset in enumerate(range(0, len(data), CHUNK)):
        if n == 4:
            started.set()
            if release is not None:
                release.wait(EXIT_WAIT)
        yield data[offset : offset + CHUNK]
        time.sleep(delay)


class Upload(threading.Thread):
    """POST /api/v1/packages with a streamed body; keeps the response or the transport error."""

    def __init__(self, server: ServerProcess, headers: dict[str, str], data: bytes, *, stall: bool) -> None:
        super().__init__(daemon=True)
        self.server, self.headers, self.data = server, headers, data
        self.started = threading.Event()
        self.release = threading.Event() if stall else None
        self.response: httpx.Response | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.server.client(timeout=EXIT_WAIT) as http:
                self.response = http.post(
                    "/api/v1/packages",
                    content=body(self.data, self.started, self.release, delay=0.02),
                    headers={
                        **self.headers,
                        "Content-Type": "application/zip",
                        "Content-Length": str(len(self.data)),
                    },
                )
        except Exception as exc:  # the server went away mid-request
            self.error = exc
        finally:
            self.started.set()


def setup(
    start_server: Callable[..., ServerProcess], grace: str | None = None
) -> tuple[ServerProcess, str, dict[str, str]]:
    """A server (with `grace` as its shutdown timeout), its tenant's id, and the tenant's auth header."""
    server = start_server(env={"SCORM_APPLIANCE_SHUTDOWN_TIMEOUT_SECONDS": grace} if grace else None)
    tenant = server.cli("tenants", "create", "Acme", "--plan", "enterprise")["id"]
    key = server.cli("keys", "create", "--tenant", "Acme")
    return server, tenant, {"Authorization": f"Bearer {key['key']}"}


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def sigterm_and_wait(server: ServerProcess) -> tuple[int, float]:
    assert server.proc is not None
    began = time.monotonic()
    code = server.stop(timeout=EXIT_WAIT)
    return code, time.monotonic() - began


def test_an_upload_in_flight_completes_before_the_process_exits(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, tenant, headers = setup(start_server)
    data = package_zip(tmp_path / "course.zip")
    upload = Upload(server, headers, data, stall=False)
    upload.start()
    assert upload.started.wait(10), "the upload never started"

    code, _ = sigterm_and_wait(server)  # sent while the body is still streaming
    upload.join(EXIT_WAIT)

    assert code == 0, server.stderr()
    assert upload.error is None, f"the in-flight upload was cut off: {upload.error!r}"
    assert upload.response is not None and upload.response.status_code == 202, upload.response
    package_id = upload.response.json()["id"]
    assert files_under(server.data_dir / "tmp") == []  # no partial upload left in tmp/
    # the access line of the upload, with the request id the client got, written before the exit
    rid = upload.response.headers["x-request-id"]
    log = server.stdout_path.read_text()
    assert f"INFO appliance.api request_id={rid} method=POST path=/api/v1/packages status=202 ms=" in log, log
    assert log.index(f"request_id={rid}") < log.index("Application shutdown complete")

    server.start()  # the job runs (again, if the shutdown interrupted it) after the restart
    with server.client() as http:

        def ready() -> dict[str, Any] | None:
            package = http.get(f"/api/v1/packages/{package_id}", headers=headers).json()
            return package if package["status"] != "processing" else None

        package = wait_for("the package to be processed", ready, READY_WAIT, interval=0.2)
        version = http.get(f"/api/v1/packages/{package_id}/versions/1", headers=headers).json()
    assert package["status"] == "ready", package
    assert version["upload_sha256"] == hashlib.sha256(data).hexdigest()
    index = DataDir(server.data_dir).version_dir(tenant, package_id, 1) / "index.html"
    assert index.read_bytes() == b"<html>hello</html>"


def test_an_upload_stalled_past_the_grace_period_leaves_nothing_behind(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server, tenant, headers = setup(start_server, grace=GRACE)
    data = package_zip(tmp_path / "course.zip")
    upload = Upload(server, headers, data, stall=True)
    upload.start()
    assert upload.started.wait(10), "the upload never started"
    tmp_dir = server.data_dir / "tmp"
    wait_for("the upload to be staged in tmp/", lambda: files_under(tmp_dir), 10)

    code, took = sigterm_and_wait(server)
    assert upload.release is not None
    upload.release.set()
    upload.join(EXIT_WAIT)

    assert code == 0, server.stderr()
    assert took < float(GRACE) + 15, f"shutdown took {took:.1f} s"
    assert upload.response is None or upload.response.status_code >= 400, upload.response
    assert server.rows("SELECT * FROM packages", tenant=tenant) == []
    assert server.rows("SELECT * FROM jobs") == []
    tenant_dir = DataDir(server.data_dir).tenant_dir(tenant)
    assert files_under(tenant_dir / "packages") == []
    assert files_under(tenant_dir / "uploads") == []
    assert files_under(tmp_dir) == [], "the partial upload was left in tmp/"
