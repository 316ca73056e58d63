"""Chaos: two real `scorm-appliance serve` workers on one PostgreSQL schema and shared files (their one
data directory, or a bucket of moto's S3 server on 127.0.0.1), one of them SIGKILLed while uploads of real packages (../shared/scorm-corpus) are processed and several
learners' commits are in flight.

What must hold afterwards, read back through the surviving worker and the database:
- every acknowledged upload ends `ready`, its files all there (as many bytes as the version records;
  a version the killed worker recorded without acknowledging it is ready so too, or still waits for the
  recovery sweep with none of its files published), the jobs the killed worker held finished
  by the other after their lease (attempt 2), no job left queued, running or failed;
- every acknowledged commit's data is there: each session's CMI holds the last acknowledged commit's
  values, and values written together by one commit are read together (nothing half-written).

Bounded: the lease is 2 s, the whole test well under a minute; all traffic on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql as pgsql

from tests.conftest import CORPUS
from tests.e2e.conftest import ServerProcess
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3, moto_s3  # noqa: F401 - the fixture
from tests.storage.postgres.backend import Backend

LEASE = 2.0
UPLOADS = (  # real packages of both SCORM versions, 0.2-0.4 MB each
    "golf-ContentPackagingSingleSCO_SCORM20043rdEdition.zip",
    "golf-ContentPackagingOneFilePerSCO_SCORM12.zip",
    "moodle-RuntimeMinimumCalls_SCORM12.zip",
    "golf-SequencingForcedSequential_SCORM20043rdEdition.zip",
    "moodle-singlescobasic.zip",
    "golf-ContentPackagingMetadata_SCORM20043rdEdition.zip",
    "moodle-RuntimeBasicCalls_SCORM20043rdEdition.zip",
    "golf-SequencingPostTestRollup_SCORM20043rdEdition.zip",
    "totara-overview_test.zip",
    "golf-RuntimeMinimumCalls_SCORM20043rdEdition.zip",
)
SESSION_PACKAGE = "moodle-singlesco_scorm12.zip"
LEARNERS = 4

pytestmark = pytest.mark.skipif(not (CORPUS / "packages").is_dir(), reason=f"the SCORM corpus is not at {CORPUS}")


@dataclass
class Cluster:
    backend: Backend
    a: ServerProcess
    b: ServerProcess
    key: str
    tenant_id: str
    s3: MotoS3 | None = None
    bucket: str = ""

    def version_bytes(self, package_id: str, version: int) -> tuple[bool, int]:
        """Whether the version's manifest is stored, and the bytes of all its files, in the shared store."""
        rel = f"tenants/{self.tenant_id}/packages/{package_id}/{version}"
        if self.s3 is None:
            root = self.a.data_dir / rel
            files = [p for p in root.rglob("*") if p.is_file()]
            return (root / "imsmanifest.xml").is_file(), sum(p.stat().st_size for p in files)
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"chaos/{rel}/")
        found = {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}
        return f"chaos/{rel}/imsmanifest.xml" in found, sum(found.values())

    def http(self, worker: ServerProcess) -> httpx.Client:
        return httpx.Client(
            base_url=worker.url, headers={"Authorization": f"Bearer {self.key}"}, trust_env=False, timeout=15.0
        )

    def admin(self) -> psycopg.Connection:
        conn = psycopg.connect(self.backend.admin.info.dsn, autocommit=True)
        conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.backend.schema.schema)))
        return conn


@pytest.fixture(params=["local", "s3"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    s3: MotoS3 | None = request.getfixturevalue("moto_s3") if request.param == "s3" else None
    bucket = s3.new_bucket() if s3 is not None else ""
    backend = Backend()
    data_dir = tmp_path / "shared-data"
    files = (
        {
            "SCORM_APPLIANCE_FILES": f"s3://{bucket}/chaos",
            "SCORM_APPLIANCE_FILES_ENDPOINT": s3.endpoint_url,
            "SCORM_APPLIANCE_FILES_REGION": REGION,
            "SCORM_APPLIANCE_FILES_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "SCORM_APPLIANCE_FILES_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }
        if s3 is not None
        else {}
    )
    env = {
        **files,
        "SCORM_APPLIANCE_DATABASE": backend.url,
        "SCORM_APPLIANCE_DATABASE_SCHEMA": backend.schema.schema,
        "SCORM_APPLIANCE_JOB_LEASE_SECONDS": str(LEASE),
        "SCORM_APPLIANCE_JOB_POLL_SECONDS": "0.2",
        "SCORM_APPLIANCE_LEARNER_REQUESTS_PER_MINUTE": "100000",
        "SCORM_APPLIANCE_TENANT_LEARNER_REQUESTS_PER_MINUTE": "100000",
    }
    a, b = ServerProcess(data_dir, env=env), ServerProcess(data_dir, env=env)
    try:
        tenant = a.cli("tenants", "create", "Acme", "--plan", "enterprise")
        key = a.cli("keys", "create", "--tenant", "Acme")["key"]
        a.start()
        b.start()
        yield Cluster(backend, a, b, key, tenant["id"], s3, bucket)
    finally:
        a.close()
        b.close()
        backend.close()
        if s3 is not None:
            s3.drop_bucket(bucket)


@dataclass
class Learner:
    """One session, committing in a loop through either worker; what each acknowledged commit wrote."""

    session_id: str
    token: str
    activity: str
    client_id: str
    acked: dict[int, dict[str, str]] = field(default_factory=dict)
    retried: int = 0


def _changes(seq: int) -> dict[str, str]:
    return {
        "cmi.core.lesson_location": f"page-{seq}",
        "cmi.suspend_data": f"seq={seq};" + "x" * (seq % 50),
        "cmi.core.score.raw": str(seq % 100),
    }


def _upload(http: httpx.Client, name: str) -> httpx.Response:
    return http.post(
        "/api/v1/packages",
        content=(CORPUS / "packages" / name).read_bytes(),
        headers={"Content-Type": "application/zip"},
    )


def _wait_ready(http: httpx.Client, package_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = http.get(f"/api/v1/packages/{package_id}").json()
        if found["status"] != "processing" or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_worker_killed_mid_way_loses_nothing_acknowledged(cluster: Cluster) -> None:
    started = time.monotonic()
    workers = [cluster.a, cluster.b]
    with cluster.http(cluster.b) as http:
        created = _upload(http, SESSION_PACKAGE)
        assert created.status_code in (201, 202), created.text
        assert _wait_ready(http, created.json()["id"], 20)["status"] == "ready"
        learners = []
        for n in range(LEARNERS):
            session = http.post(
                "/api/v1/sessions",
                json={"package_id": created.json()["id"], "learner": {"id": f"learner-{n}"}, "resume": False},
            )
            assert session.status_code == 201, session.text
            path = "/" + session.json()["launch_url"].split("/", 3)[3]
            launched = http.post(f"{path}/launch").json()
            learners.append(
                Learner(session.json()["id"], path.split("/")[2], launched["delivery"]["activity"], f"page-{n}")
            )

    stop = threading.Event()
    a_dead = threading.Event()
    acked_uploads: list[str] = []
    upload_errors: list[str] = []
    failures: list[str] = []  # an unexpected answer in a thread fails the test, not only the thread

    def reported(fn):  # noqa: ANN001, ANN202 - a thread body
        def run(*args: object) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                failures.append(f"{fn.__name__}: {exc!r}")

        return run

    @reported
    def commit_loop(learner: Learner, first: int) -> None:
        clients = [httpx.Client(base_url=w.url, trust_env=False, timeout=10.0) for w in workers]
        seq, turn = 0, first
        try:
            while not stop.is_set():
                seq += 1
                body = {"client_id": learner.client_id, "seq": seq, "activity": learner.activity, "version": None}
                body["changes"] = _changes(seq)
                while True:  # as the player does: the same batch again, on another worker if need be
                    client = clients[turn % 2] if not a_dead.is_set() else clients[1]
                    turn += 1
                    try:
                        answer = client.post(f"/player/{learner.token}/commit", json=body)
                    except httpx.TransportError:
                        learner.retried += 1
                        continue
                    assert answer.status_code == 200, answer.text
                    learner.acked[seq] = body["changes"]
                    break
        finally:
            for c in clients:
                c.close()

    @reported
    def upload_loop() -> None:
        with cluster.http(cluster.a) as to_a, cluster.http(cluster.b) as to_b:
            for n, name in enumerate(UPLOADS):
                target = to_a if n % 3 != 2 and not a_dead.is_set() else to_b  # most to the worker that dies
                try:
                    answer = _upload(target, name)
                except httpx.TransportError as exc:  # the killed worker: not acknowledged, the client would retry
                    upload_errors.append(f"{name}: {exc!r}")
                    answer = _upload(to_b, name)
                assert answer.status_code in (201, 202), answer.text
                acked_uploads.append(answer.json()["id"])

    threads = [threading.Thread(target=commit_loop, args=(learner, n)) for n, learner in enumerate(learners)]
    threads.append(threading.Thread(target=upload_loop))
    for t in threads:
        t.start()

    # SIGKILL worker A as soon as it holds a package job (mid-processing), commits flowing meanwhile.
    a_pid = cluster.a.proc.pid
    held: list[str] = []
    with cluster.admin() as admin:
        deadline = time.monotonic() + 20
        while not held and time.monotonic() < deadline:
            held = [
                str(r[0])
                for r in admin.execute(
                    "SELECT id FROM jobs WHERE status = 'running' AND claimed_by LIKE %s", (f"%:{a_pid}:%",)
                )
            ]
            time.sleep(0.005)
        assert held, "worker A never claimed a job"
        a_dead.set()
        cluster.a.kill()
        killed_at = time.monotonic()
        # The jobs A was running when it died (the one seen may have ended in the moment before the kill,
        # another may have been claimed meanwhile): A wrote nothing more, so this is what it left.
        held = [
            str(r[0])
            for r in admin.execute(
                "SELECT id FROM jobs WHERE status = 'running' AND claimed_by LIKE %s", (f"%:{a_pid}:%",)
            )
        ]
        assert held, "the job A held ended in the moment before the kill: nothing was left to take over"
    time.sleep(LEASE + 1.5)  # commits go on through B while the lease runs out
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

    with cluster.http(cluster.b) as http:
        # Every acknowledged upload, and every version either worker recorded, ends ready with all its files.
        for package_id in acked_uploads:
            found = _wait_ready(http, package_id, 25)
            assert found["status"] == "ready", found
        with cluster.admin() as admin:
            admin.execute("SELECT set_config('app.tenant_id', %s, false)", (cluster.tenant_id,))
            versions = admin.execute(
                "SELECT package_id, version, status, size_bytes FROM package_versions WHERE tenant_id = %s",
                (cluster.tenant_id,),
            ).fetchall()
            jobs = admin.execute("SELECT id, status, attempts, last_error FROM jobs").fetchall()
        assert len(versions) >= len(acked_uploads) + 1
        for package_id, version, status, size_bytes in versions:
            if status == "ready":
                assert cluster.version_bytes(package_id, version) == (True, size_bytes), (package_id, version)
            else:
                # Only an upload the killed worker recorded but never acknowledged (its job not yet
                # enqueued) may still wait, for the recovery sweep (`recover-processing`, every 5 min):
                # with none of its files published.
                assert package_id not in acked_uploads and status == "processing", (package_id, version, status)
                assert cluster.version_bytes(package_id, version) == (False, 0), (package_id, version)
        by_id = {j[0]: j for j in jobs}
        assert {j[1] for j in jobs} == {"done"}, [j for j in jobs if j[1] != "done"]
        for job_id in held:
            assert by_id[job_id][2] >= 2, by_id[job_id]  # taken over after the lease, not run once

        # Every acknowledged commit is there: the last one's values, written together, read together.
        for learner in learners:
            assert learner.acked, "no commit was acknowledged"
            last = max(learner.acked)
            state = http.get(f"/player/{learner.token}/state", params={"activity": learner.activity})
            assert state.status_code == 200, state.text
            cmi = state.json()["cmi"]
            for element, value in learner.acked[last].items():
                assert cmi.get(element) == value, (learner.session_id, last, element, cmi.get(element))
    print(
        f"chaos: {len(acked_uploads)} uploads acknowledged ({len(upload_errors)} cut off by the kill), "
        f"{sum(v[2] == 'ready' for v in versions)} of {len(versions)} versions ready, jobs held by the killed worker {[by_id[j][2] for j in held]} attempts, "
        f"{sum(len(x.acked) for x in learners)} commits acknowledged, {sum(x.retried for x in learners)} resent, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert sum(len(learner.acked) for learner in learners) > 50
    assert time.monotonic() - started < 60
    assert time.monotonic() - killed_at < 45
