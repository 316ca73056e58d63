"""Two appliance worker processes on one PostgreSQL schema and one data directory: two launches of one
LTI resource link sent to both at the same moment start exactly one session.

The workers are `tests.services.lms.lti_launch_worker` (what `serve` runs, with a session's creation
slowed by half a second, so both launches are inside their find-or-start together). The guard is the
database's: the find-or-start is one write transaction of the tenant, and PostgreSQL serialises a
tenant's writes across workers (its per-tenant advisory lock), so the second launch waits and resumes
the first one's session. With the per-process lock it replaced, each worker starts a session of its own.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from appliance.services.lms.lti.launch import learner_id
from tests.e2e.browser import wait_until
from tests.e2e.conftest import HOST, appliance_command, clean_env, free_port
from tests.faces.api.test_packages import package_12
from tests.lti_platform import LtiPlatform, Message
from tests.storage.postgres.backend import Backend

REPO = Path(__file__).resolve().parents[3]


class Worker:
    """One worker process on 127.0.0.1 and an httpx client on it."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = logs / f"worker-{self.port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.services.lms.lti_launch_worker", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, trust_env=False, timeout=20.0)

    def wait_ready(self) -> None:
        def up() -> bool | None:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                return True if self.http.get("/api/v1/ready").status_code == 200 else None
            except httpx.HTTPError:
                return None

        wait_until(up, 30.0, 0.1, f"worker on {self.url}")

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pg() -> Iterator[Backend]:
    backend = Backend()
    yield backend
    backend.close()


@pytest.fixture
def workers(tmp_path: Path, pg: Backend) -> Iterator[tuple[Worker, Worker, str]]:
    """Two workers sharing the schema and the data directory, and tenant Acme's API key."""
    env = clean_env(
        {
            "SCORM_APPLIANCE_DATA_DIR": str(tmp_path / "data"),
            "SCORM_APPLIANCE_DATABASE": pg.url,
            "SCORM_APPLIANCE_DATABASE_SCHEMA": pg.schema.schema,
            "SCORM_APPLIANCE_OUTBOUND_ALLOW": "127.0.0.1/32",  # the platform's JWKS is on 127.0.0.1
        }
    )

    def cli(*args: str) -> Any:
        import json

        done = subprocess.run([*appliance_command(), *args, "--json"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cli("tenants", "create", "Acme")
    key = cli("keys", "create", "--tenant", "Acme")["key"]
    a, b = Worker(env, tmp_path), Worker(env, tmp_path)
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b, key
    finally:
        a.close()
        b.close()


def test_two_launches_of_one_link_on_two_workers_start_one_session(workers: tuple[Worker, Worker, str]) -> None:
    a, b, key = workers
    headers = {"Authorization": f"Bearer {key}"}
    platform = LtiPlatform().start()
    try:
        created = a.http.post("/api/v1/lti/registrations", json=platform.registration(), headers=headers)
        assert created.status_code == 201, created.text
        urls = a.http.get("/api/v1/lti/tool", headers=headers).json()
        platform.register_tool(urls["login_url"], urls["launch_url"], urls["jwks_url"])
        upload = a.http.post(
            "/api/v1/packages", files={"file": ("c.zip", package_12(), "application/zip")}, headers=headers
        )
        assert upload.status_code == 202, upload.text
        package_id = upload.json()["id"]

        def ready() -> bool | None:
            status = a.http.get(f"/api/v1/packages/{package_id}", headers=headers).json()["status"]
            assert status != "failed"
            return True if status == "ready" else None

        wait_until(ready, 30.0, 0.1, "the package to be processed")
        message = Message("LtiResourceLinkRequest", "user-1", link_id="link-1", custom={"package_id": package_id})

        def signed_in(worker: Worker) -> dict[str, str]:
            """The tool's login on `worker`: the form the platform posts back (a fresh state and nonce)."""
            hint = urlsplit(platform.course_page(message)).query.removeprefix("hint=")
            login = worker.http.get(urlsplit(urls["login_url"]).path, params=platform.login_query(hint))
            assert login.status_code == 302, login.text
            query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
            return {"id_token": platform.id_token(platform.claims(message, query["nonce"])), "state": query["state"]}

        forms = [(a, signed_in(a)), (b, signed_in(b))]
        barrier, answers = threading.Barrier(2), {}

        def post(worker: Worker, form: dict[str, str]) -> None:
            barrier.wait()
            answers[worker.port] = worker.http.post(urlsplit(urls["launch_url"]).path, data=form)

        threads = [threading.Thread(target=post, args=pair) for pair in forms]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status_code for r in answers.values()] == [302, 302], [r.text for r in answers.values()]
        # The second waited for the first's transaction (one slowed creation), then resumed its session.
        assert time.monotonic() - started >= 0.5
        sessions = a.http.get(
            "/api/v1/sessions", params={"learner_id": learner_id(platform.issuer, "user-1")}, headers=headers
        ).json()["data"]
        assert len(sessions) == 1, sessions
    finally:
        platform.close()
