"""A real `scorm-appliance serve` with its sequencing worker process (the default `sequencing_workers` 1):
a 5,000-activity course launched, navigated and terminated while another tenant's learner keeps committing,
every answer right; a worker killed (SIGKILL) while it computes a launch answers a retry, and the retry
succeeds on a new worker. Correctness only: timing is bench/sequencing.py's."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import ServerProcess
from tests.faces.api.test_activity_limit import wide_course
from tests.services.learning.test_sequencing_pool import KILL_ATTEMPTS, in_thread, kill_when_busy

API = "/api/v1"


def process_parents() -> dict[int, int]:
    """Every process's parent (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def worker_pids(server: ServerProcess) -> list[int]:
    """The sequencing workers: forked by the server's forkserver (a child of the server), so grandchildren."""
    assert server.proc is not None
    parents = process_parents()
    children = {pid for pid, parent in parents.items() if parent == server.proc.pid}
    workers = []
    for pid in (pid for pid, parent in parents.items() if parent in children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmdline and alive(pid):
            workers.append(pid)
    return sorted(workers)


def tenant(server: ServerProcess, name: str) -> httpx.Client:
    server.cli("tenants", "create", name, "--plan", "enterprise")
    key = server.cli("keys", "create", "--tenant", name)
    return server.client(headers={"Authorization": f"Bearer {key['key']}"}, timeout=60.0)


def upload(client: httpx.Client, data: bytes) -> str:
    created = client.post(f"{API}/packages", content=data, headers={"Content-Type": "application/zip"})
    assert created.status_code == 202, created.text
    package_id = created.json()["id"]
    for _ in range(600):
        package = client.get(f"{API}/packages/{package_id}").json()
        if package["status"] == "ready":
            return package_id
        assert package["status"] != "failed", package
        threading.Event().wait(0.1)
    raise AssertionError("the package was not ready within 60 s")


def player(client: httpx.Client, package_id: str, learner: str) -> tuple[str, str]:
    """(player path, session id) of a new session."""
    response = client.post(f"{API}/sessions", json={"package_id": package_id, "learner": {"id": learner}})
    assert response.status_code == 201, response.text
    url = response.json()["launch_url"]
    return url[url.index("/player/") :], response.json()["id"]


def post(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


class OtherTenant(threading.Thread):
    """A learner of another tenant committing in a loop (each answer checked, the value read back)."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        super().__init__(daemon=True)
        self.client, self.path = client, path
        self.stop = threading.Event()
        self.commits = 0
        self.failures: list[str] = []

    def run(self) -> None:
        activity = post(self.client, f"{self.path}/launch")["delivery"]["activity"]
        while not self.stop.is_set() and not self.failures:
            self.commits += 1
            body = {"client_id": "other", "seq": self.commits, "activity": activity, "version": None}
            body["changes"] = {"cmi.location": f"page-{self.commits}"}
            response = self.client.post(f"{self.path}/commit", json=body)
            if response.status_code != 200 or response.json()["replayed"]:
                self.failures.append(f"{response.status_code} {response.text[:200]}")
            self.stop.wait(0.01)


def test_a_large_course_is_sequenced_by_the_worker_beside_another_tenant(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    big, small = tenant(server, "Big"), tenant(server, "Small")
    with big, small:
        package_id = upload(big, wide_course(5000, flow=True))
        other_path, other_session = player(small, upload(small, wide_course(3, flow=True)), "other")
        other = OtherTenant(small, other_path)
        other.start()
        try:
            path, session_id = player(big, package_id, "learner-1")
            launched = post(big, f"{path}/launch")
            assert launched["delivery"]["activity"] == "i0" and launched["current"] == "i0"
            assert worker_pids(server), "the launch was not computed by a worker process"
            key = launched["toc"]["key"]
            chosen = post(big, f"{path}/navigate", {"request": "choice", "target": "i4000", "toc_key": key})
            assert chosen["delivery"]["activity"] == "i4000" and chosen["controls"]["previous"] is True
            onward = post(big, f"{path}/navigate", {"request": "continue", "toc_key": key})
            assert onward["delivery"]["activity"] == "i4001"
            back = post(big, f"{path}/navigate", {"request": "previous", "toc_key": key})
            assert back["delivery"]["activity"] == "i4000"
            body = {"client_id": "page", "seq": 1, "activity": "i4000", "version": back["version"]}
            body |= {"changes": {"cmi.completion_status": "completed"}, "terminate": True, "nav_request": "continue"}
            terminated = post(big, f"{path}/commit", body)
            assert terminated["delivery"]["activity"] == "i4001"
            assert terminated["version"] == back["version"] + 1
        finally:
            other.stop.set()
            other.join(10)
        assert other.failures == [] and other.commits > 0
        stored = big.get(f"{API}/sessions/{session_id}?include=cmi").json()
        assert stored["current_activity"] == "i4001" and stored["version"] == terminated["version"]
        assert stored["activities"]["i4000"]["cmi"]["cmi.completion_status"] == "completed"
        theirs = small.get(f"{API}/sessions/{other_session}?include=cmi").json()
        assert theirs["activities"]["i0"]["cmi"]["cmi.location"] == f"page-{other.commits}"
    workers = worker_pids(server)
    assert server.stop() == 0  # SIGTERM: the pool is shut down with the server
    assert [pid for pid in workers if alive(pid)] == []


def alive(pid: int) -> bool:
    """Whether `pid` is a running (not a zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_killed_mid_step_answers_a_retry_then_the_retry_succeeds(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    client = tenant(server, "Acme")
    with client:
        warm_path, _ = player(client, upload(client, wide_course(600, flow=True)), "warm")
        post(client, f"{warm_path}/launch")  # the pool is up, its worker idle
        # A course the worker has not loaded yet: it reads and builds the tree, then sequences. On a loaded
        # machine the watcher may see the worker busy only once it has answered: then again, a new course.
        for _ in range(KILL_ATTEMPTS):
            first = idle_worker(server, client, warm_path)
            path, session_id = player(client, upload(client, wide_course(5000, flow=True)), "learner-1")
            request, answers = in_thread(functools.partial(client.post, f"{path}/launch"))
            killed = kill_when_busy(lambda: worker_pids(server))
            request.join(60)
            assert killed == first, "the worker never started computing the launch"
            if answers[0].status_code != 200:
                break
        assert answers[0].status_code == 500, answers[0].text
        failed = answers[0].json()
        assert failed["code"] == "INTERNAL_ERROR" and failed["details"] == {"retry": True}, failed
        assert client.get(f"{API}/sessions/{session_id}").json()["current_activity"] is None  # nothing written
        retried = post(client, f"{path}/launch")
        assert retried["delivery"]["activity"] == "i0"
        (replacement,) = worker_pids(server)
        assert replacement != first
        assert post(client, f"{warm_path}/navigate", {"request": "continue"})["delivery"] is not None
    pool = pool_pids(server)
    assert len(pool) == 3  # the resource tracker, the forkserver and the worker
    server.kill()  # no shutdown: the worker sees its server gone and exits, and the forkserver with it
    deadline = time.monotonic() + 10
    while [pid for pid in pool if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pool if alive(pid)] == []


def idle_worker(server: ServerProcess, client: httpx.Client, warm_path: str) -> int:
    """The server's one worker, idle: after a kill that missed (it broke the pool while idle) a navigation
    of the warm-up course starts a new one (answered 500 once if the pool was found broken)."""
    if not worker_pids(server):
        for _ in range(2):
            if client.post(f"{warm_path}/navigate", json={"request": "continue"}).status_code == 200:
                break
    (pid,) = worker_pids(server)
    return pid


def pool_pids(server: ServerProcess) -> list[int]:
    """The processes multiprocessing started for the server's pool (its children and their children)."""
    assert server.proc is not None
    parents = process_parents()
    children = {pid for pid, parent in parents.items() if parent == server.proc.pid}
    grandchildren = {pid for pid, parent in parents.items() if parent in children}
    found = []
    for pid in children | grandchildren:
        try:
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return sorted(found)
