"""Large courses sequenced in a worker process (`appliance.services.learning.sequencing_pool`): the same answers, byte for byte,
as in the request's thread; the CPU budget inside the worker; a killed worker answered with a retry and
replaced. Real app, real worker processes (forkserver), on both backends (tests/conftest.py): the worker
reads the tenant's SQLite file, or its rows on PostgreSQL through a pool of its own."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import apsw
import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning import sequencing_jobs, sequencing_pool, sequencing_steps
from appliance.services.library.courses import load_course
from tests.conftest import TenantKey
from tests.faces.api.test_activity_limit import wide_course
from tests.faces.api.test_packages import make_client, upload_ready
from tests.faces.api.test_sessions import Player, create, read

T = TypeVar("T")
LARGE = 2000  # over sequencing_pool.PROCESS_MIN_ACTIVITIES, and a course load long enough to be caught at


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    """Each test starts its own pool (so a worker has no course cached yet) and stops it."""
    sequencing_pool.shutdown()
    yield
    sequencing_pool.shutdown()


def _instance(api: TestClient) -> Instance:
    return api.app.state.instance


def _set_workers(monkeypatch: pytest.MonkeyPatch, inst: Instance, workers: int) -> None:
    monkeypatch.setattr(inst, "config", dataclasses.replace(inst.config, sequencing_workers=workers))


def _session(api: TestClient, who: TenantKey, package_id: str, learner: str) -> dict[str, Any]:
    response = create(api, who, package_id, learner=learner)
    assert response.status_code == 201, response.text
    return response.json()


def _steps(api: TestClient, session: dict[str, Any]) -> list[bytes]:
    """The answers' bodies of a launch, three navigations and a Terminate with continue."""
    player = Player(api, session)
    bodies = [api.post(f"{player.path}/launch").content]
    for request in ({"request": "continue"}, {"request": "choice", "target": "i1500"}, {"request": "previous"}):
        response = api.post(f"{player.path}/navigate", json=request)
        assert response.status_code == 200, response.text
        bodies.append(response.content)
    player.launch()  # the player's state after navigating (version, activity)
    terminated = player.commit({"cmi.completion_status": "completed"}, terminate=True, nav="continue")
    assert terminated.status_code == 200, terminated.text
    bodies.append(terminated.content)
    return bodies


def test_answers_from_a_worker_are_byte_identical_to_the_threads(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    inst = _instance(api)
    package = upload_ready(api, acme, wide_course(LARGE, flow=True))
    _set_workers(monkeypatch, inst, 0)
    in_thread = _steps(api, _session(api, acme, package["id"], "learner-a"))
    assert sequencing_pool.worker_pids() == []  # nothing went to a process
    _set_workers(monkeypatch, inst, 1)
    in_worker = _steps(api, _session(api, acme, package["id"], "learner-b"))
    assert len(sequencing_pool.worker_pids()) == 1
    assert [body.replace(b"learner-b", b"learner-a") for body in in_worker] == in_thread
    assert b'"activity":"i1499"' in in_worker[3]  # previous from i1500


def test_the_cpu_budget_applies_inside_the_worker(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = upload_ready(api, acme, wide_course(LARGE, flow=True))
    session = _session(api, acme, package["id"], "learner-1")
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 0.0)
    response = api.post(f"{Player(api, session).path}/launch")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "SEQUENCING_TOO_COSTLY"
    assert response.json()["details"] == {"budget_seconds": 0.0, "activities": LARGE + 1}
    assert len(sequencing_pool.worker_pids()) == 1
    assert read(api, acme, session["id"], cmi=False)["current_activity"] is None
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 2.0)
    assert Player(api, session).launch()["delivery"]["activity"] == "i0"


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def kill_when_busy(pids: Any, timeout: float = 10.0) -> int | None:
    """SIGKILL the first worker (of `pids()`) seen spending CPU, before `timeout`; its pid, or None."""
    deadline = time.monotonic() + timeout
    start: dict[int, int] = {}
    while time.monotonic() < deadline:
        for pid in pids():
            try:
                ticks = cpu_ticks(pid)
            except FileNotFoundError:
                continue
            if ticks > start.setdefault(pid, ticks):
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.001)
    return None


KILL_ATTEMPTS = 3  # on a loaded machine the watcher may see the worker busy only once it has answered


def in_thread(work: Callable[[], T]) -> tuple[threading.Thread, list[T]]:
    """`work` started in a thread; its answer lands in the list."""
    answers: list[T] = []
    thread = threading.Thread(target=lambda: answers.append(work()))
    thread.start()
    return thread, answers


def idle_worker() -> int:
    """The pool's one worker, started and idle (a new pool if the last kill broke it while idle)."""
    try:
        sequencing_pool.run(1, os.getpid)
    except sequencing_pool.SequencingWorkerFailed:
        sequencing_pool.run(1, os.getpid)
    (pid,) = sequencing_pool.worker_pids()
    return pid


def test_a_worker_killed_mid_step_answers_a_retry_and_is_replaced(api: TestClient, acme: TenantKey) -> None:
    """SIGKILL of the worker while it computes a launch (loading the course, then sequencing): the request
    is a 500 that says to send it again, nothing was written, and the retry gets a new worker and succeeds.
    Each attempt is a course the worker has not loaded yet (its longest step)."""
    for _ in range(KILL_ATTEMPTS):
        package = upload_ready(api, acme, wide_course(5000, flow=True))
        session = _session(api, acme, package["id"], "learner-1")
        player = Player(api, session)
        first = idle_worker()
        request, answers = in_thread(functools.partial(api.post, f"{player.path}/launch"))
        killed = kill_when_busy(sequencing_pool.worker_pids)
        request.join(60)
        assert killed == first, "the worker never started computing"
        if answers[0].status_code != 200:
            break  # killed mid-step; a 200 means the launch was answered before the kill
    response = answers[0]
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["code"] == "INTERNAL_ERROR" and body["details"] == {"retry": True}
    assert "send the request again" in body["error"]
    assert read(api, acme, session["id"], cmi=False)["current_activity"] is None
    assert player.launch()["delivery"]["activity"] == "i0"
    (replacement,) = sequencing_pool.worker_pids()
    assert replacement != first


@pytest.mark.sqlite_only(reason="a SQLite file replaced on disk")
def test_a_worker_reopens_a_tenant_file_replaced_on_disk(tmp_path: Path) -> None:
    """A restore from backup replaces the tenant's file: the worker reads the new one, not the old inode."""
    path = tmp_path / "tenant.db"

    def make(into: Path, value: str) -> None:
        conn = apsw.Connection(str(into))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        conn.close()

    make(path, "before")
    db = sequencing_pool.ReadOnlyDatabase(path)
    read = lambda conn: conn.execute("SELECT v FROM t").fetchall()  # noqa: E731
    assert db.read_sync(read) == [("before",)]
    make(tmp_path / "restored.db", "after")
    os.replace(tmp_path / "restored.db", path)
    assert db.read_sync(read) == [("after",)]
    with pytest.raises(RuntimeError, match="does not write"):
        db.write_sync(read)


def test_only_a_large_course_goes_to_a_worker(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads the tenant's database itself (either backend): small courses and `sequencing_workers`
    0 stay in the request's thread."""
    inst = _instance(api)
    db = inst.tenant_db(acme.tenant_id)
    large = upload_ready(api, acme, wide_course(LARGE, flow=True))
    small = upload_ready(api, acme, wide_course(sequencing_pool.PROCESS_MIN_ACTIVITIES - 1, flow=True))
    large_course = load_course(inst, acme.tenant_id, large["id"], large["active_version"])
    small_course = load_course(inst, acme.tenant_id, small["id"], small["active_version"])
    assert sequencing_jobs.in_process(inst, db, large_course)
    assert not sequencing_jobs.in_process(inst, db, small_course)  # 500 activities with the organization
    _set_workers(monkeypatch, inst, 0)
    assert not sequencing_jobs.in_process(inst, db, large_course)
