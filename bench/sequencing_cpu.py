"""Sequencing CPU benchmark: the CPU time of one launch, navigation and Terminate, in-process.

`bench sequencing` times requests over HTTP: on a machine shared with other work its wall-clock
figures are the run queue's as much as the server's. This one runs the same generated courses
(`bench.sequencing.course_zip`) through the run-time service in this process — a real app on real
SQLite files, the package uploaded and processed as in production — and reports the CPU time of the
calling thread per request (`time.thread_time`, which a loaded machine does not inflate), including the
encoding of the answer, and the answer's size. `--profile OP` prints a cProfile of that operation
instead (launch, navigate, terminate).

    python -m bench sequencing_cpu [--sizes 1000,5000] [--shapes flat,deep] [--rounds 20] [--profile OP] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import TestClient

from bench.sequencing import course_zip
from bench.upload import percentile

API = "/api/v1"
_encode = msgspec.json.encode
PROFILE_SORT = ["tottime"]


class Course:
    """A generated course uploaded to a tenant of an in-process app, and its learners' sessions."""

    def __init__(self, client: TestClient, headers: dict[str, str], tenant_id: str, shape: str, size: int) -> None:
        self.client, self.headers, self.tenant_id = client, headers, tenant_id
        data, self.leaves, self.activities = course_zip(shape, size)
        created = client.post(f"{API}/packages", content=data, headers={**headers, "Content-Type": "application/zip"})
        created.raise_for_status()
        client.blocking_portal.call(client.app.state.scheduler.drain)
        self.package_id = created.json()["id"]
        assert client.get(f"{API}/packages/{self.package_id}", headers=headers).json()["status"] == "ready"

    def session(self, learner: str) -> str:
        body = {"package_id": self.package_id, "learner": {"id": learner}, "resume": False}
        response = self.client.post(f"{API}/sessions", json=body, headers=self.headers)
        response.raise_for_status()
        return response.json()["id"]


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """(CPU ms of this thread, the encoded answer) for one request: the work and its encoding."""
    started = time.thread_time()
    answer = _encode(work())
    return (time.thread_time() - started) * 1000, answer


def _key(answer: dict[str, Any]) -> str | None:
    """The TOC outline's key of an answer (None from a revision before the compact TOC, for before/after)."""
    toc = answer.get("toc")
    return toc.get("key") if isinstance(toc, dict) else None


def _keyed(struct: Any, key: str | None) -> dict[str, Any]:
    return {"toc_key": key} if "toc_key" in struct.__struct_fields__ else {}


def measure(course: Course, inst: Any, rounds: int, rng: random.Random, profile: str | None) -> dict[str, Any]:
    from appliance.services.learning import player_requests, runtime

    tenant = course.tenant_id
    spent: dict[str, list[float]] = {"launch": [], "navigate": [], "terminate": []}
    sizes: dict[str, int] = {}
    profiler = cProfile.Profile() if profile else None

    def run(op: str, work: Callable[[], Any]) -> Any:
        if profiler is not None and op == profile:
            profiler.enable()
        ms, answer = timed(work)
        if profiler is not None and op == profile:
            profiler.disable()
        spent[op].append(ms)
        sizes[op] = len(answer)
        return msgspec.json.decode(answer)

    runtime.launch(inst, tenant, course.session("warm-up"))  # the course's tree is built once per process
    for n in range(rounds):
        session_id = course.session(f"launch-{n}")
        run("launch", lambda s=session_id: runtime.launch(inst, tenant, s))
    session_id = course.session("walker")
    launched = runtime.launch(inst, tenant, session_id)
    current, key = launched["delivery"]["activity"], _key(launched)  # the player sends the key back
    seq = 0
    for n in range(rounds * 2):
        request = ("continue", "previous", "choice")[n % 3]
        target = rng.choice(course.leaves) if request == "choice" else None
        body = player_requests.NavigateIn(request=request, target=target, **_keyed(player_requests.NavigateIn, key))
        answer = run("navigate", lambda b=body: runtime.navigate(inst, tenant, session_id, b))
        current = answer["delivery"]["activity"] if answer.get("delivery") else current
        key = _key(answer)
        if n % 2 == 0:
            seq += 1
            commit = player_requests.CommitIn(
                client_id="bench",
                seq=seq,
                activity=current,
                terminate=True,
                nav_request="continue",
                changes={"cmi.completion_status": "completed"},
                **_keyed(player_requests.CommitIn, key),
            )
            answer = run("terminate", lambda c=commit: runtime.commit(inst, tenant, session_id, c))
            current = answer["delivery"]["activity"] if answer.get("delivery") else current
            key = _key(answer)
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(*PROFILE_SORT).print_stats(45)
    return {
        op: {
            "n": len(values),
            "median": statistics.median(values),
            "p95": percentile(sorted(values), 0.95),
            "kb": sizes.get(op, 0) / 1024,
        }
        for op, values in spent.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sequencing_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--shapes", default="flat,deep")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--profile", choices=("launch", "navigate", "terminate"))
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    from appliance.config import Config
    from appliance.faces.app import create_app
    from appliance.faces.cli.serve import settle_garbage_collector
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant

    rng = random.Random(21)
    with tempfile.TemporaryDirectory(prefix="bench-seq-cpu-") as tmp:
        # In this thread (`sequencing_workers` 0): the figure is the sequencing's own CPU, not a worker's wait.
        config = Config(data_dir=Path(tmp) / "data", sequencing_workers=0)
        with TestClient(create_app(config, start_scheduler=False)) as client:
            inst = client.app.state.instance
            settle_garbage_collector()  # as `serve` runs: the app frozen, young collections less often
            tenant = create_tenant(inst, "Bench", "enterprise")
            headers = {"Authorization": f"Bearer {create_key(inst, tenant.id, 'bench')[1]}"}
            if not args.json:
                print(
                    f"{'shape':<6} {'activities':>10} {'op':<10} {'n':>4} {'CPU median':>11} {'CPU p95':>9} "
                    f"{'answer':>9}"
                )
            rows = []
            for shape in args.shapes.split(","):
                for size in (int(s) for s in args.sizes.split(",")):
                    course = Course(client, headers, tenant.id, shape, size)
                    for op, row in measure(course, inst, args.rounds, rng, args.profile).items():
                        rows.append({"shape": shape, "activities": course.activities, "op": op, **row})
                        if not args.json:
                            print(
                                f"{shape:<6} {course.activities:>10} {op:<10} {row['n']:>4} "
                                f"{row['median']:>8.1f} ms {row['p95']:>6.1f} ms {row['kb']:>6.0f} KB",
                                flush=True,
                            )
    if args.json:
        print(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
