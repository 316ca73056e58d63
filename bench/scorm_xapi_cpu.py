"""SCORM-as-xAPI CPU benchmark: what the statements cost a commit, in-process, with and without.

`bench runtime` times commits over HTTP with wrk; on a machine shared with other work its figures are
the run queue's as much as the server's. This one runs commits through the run-time service in this
process (a real app on real SQLite files, the package uploaded and processed as in production) and
reports the calling thread's CPU time per commit (`time.thread_time`), in three modes, alternated
round by round so that they share the machine's state:

* `off`: the run-time hooks of appliance.services.lrs.scorm_statements replaced by no-ops (the commit path as
  it was before SCORM statements);
* `outbox`: as shipped: the events queued in the commit's transaction, one outbox row when there are any;
* `direct`: the alternative not taken: the statements built and stored with
  `appliance.services.lrs.statements.insert_statements` inside the commit's transaction.

Two commits: `bench` is `bench runtime`'s commit (location, suspend_data, a changing raw score, status
incomplete, the same answered interaction: relevant elements change, but it means no statement), and
`answer` answers a new interaction each time (one `responded` statement per commit). The sweep that
stores queued statements is timed separately, per statement (`flush`).

    python -m bench scorm_xapi_cpu [--commits 240] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from bench.runtime import package_zip

API = "/api/v1"
HOOKS = ("on_step", "on_commit", "on_terminate", "on_result")


def bench_changes(seq: int, _n: int) -> dict[str, str]:
    """`bench runtime`'s commit body (bench/runtime.py LUA)."""
    return {
        "cmi.core.lesson_location": f"page-{seq % 50}",
        "cmi.suspend_data": f"s={seq};visited=1,2,3,4,5",
        "cmi.core.score.raw": str(seq % 100),
        "cmi.core.lesson_status": "incomplete",
        "cmi.interactions.0.id": "q1",
        "cmi.interactions.0.type": "choice",
        "cmi.interactions.0.student_response": "a",
        "cmi.interactions.0.result": "correct",
    }


def answer_changes(seq: int, n: int) -> dict[str, str]:
    """A new interaction answered, the session's `n`th (1.2 interactions are journaled: a record each time)."""
    return {
        "cmi.core.lesson_location": f"page-{seq % 50}",
        f"cmi.interactions.{n}.id": f"q{seq}",
        f"cmi.interactions.{n}.type": "choice",
        f"cmi.interactions.{n}.student_response": "a,b",
        f"cmi.interactions.{n}.result": "wrong" if seq % 3 else "correct",
    }


@contextmanager
def mode(name: str) -> Iterator[None]:
    """Swap the hooks (`off`) or the outbox write (`direct`) for the duration of a round."""
    from appliance.services.lrs import scorm_statements as hooks

    saved = {n: getattr(hooks, n) for n in (*HOOKS, "_queue")}
    if name == "off":
        for n in HOOKS:
            setattr(hooks, n, lambda *args, **kwargs: None)
    elif name == "direct":
        hooks._queue = _direct_queue(saved["_queue"])
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(hooks, n, fn)


def _direct_queue(_queued: Callable[..., None]) -> Callable[..., None]:
    from appliance.core.xapi import scorm_profile as profile
    from appliance.services.lrs import scorm_statements as hooks
    from appliance.services.lrs.statements import insert_statements

    def direct(conn: Any, course: Any, session: Any, events: list[Any]) -> None:
        if not events:
            return
        facts = profile.SessionFacts(
            session["id"],
            session["learner_id"],
            session["learner_name"] or "",
            course.package_id,
            "",
            course.scorm_version,
        )
        found = profile.to_statements("http://127.0.0.1:8080", facts, events)
        insert_statements(
            conn, found, stored=events[0].at, authority=hooks.AUTHORITY, credential_id=None, version="1.0.3"
        )

    return direct


def commits(
    inst: Any, tenant_id: str, session_id: str, body: Callable[[int, int], dict[str, str]], start: int, n: int
) -> list[float]:
    """CPU ms of this thread for each of `n` commits of a fresh session (sequence numbers from `start`)."""
    from appliance.services.learning import player_requests, runtime

    spent = []
    for i, seq in enumerate(range(start, start + n)):
        commit = player_requests.CommitIn(client_id="bench", seq=seq, activity="item", changes=body(seq, i))
        started = time.thread_time()
        runtime.commit(inst, tenant_id, session_id, commit)
        spent.append((time.thread_time() - started) * 1000)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scorm_xapi_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=240, help="commits per mode and round (at most 1000)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from appliance.config import Config
    from appliance.faces.app import create_app
    from appliance.faces.cli.serve import settle_garbage_collector
    from appliance.services.learning import runtime
    from appliance.services.lrs import scorm_statements
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant

    modes = ("off", "outbox", "direct")
    spent: dict[tuple[str, str], list[float]] = {(m, b): [] for m in modes for b in ("bench", "answer")}
    flush_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-scorm-xapi-") as tmp:
        config = Config(data_dir=Path(tmp) / "data")
        with TestClient(create_app(config, start_scheduler=False)) as client:
            inst = client.app.state.instance
            settle_garbage_collector()
            tenant = create_tenant(inst, "Bench", "enterprise")
            headers = {"Authorization": f"Bearer {create_key(inst, tenant.id, 'bench')[1]}"}
            created = client.post(
                f"{API}/packages", content=package_zip(), headers={**headers, "Content-Type": "application/zip"}
            )
            created.raise_for_status()
            client.blocking_portal.call(client.app.state.scheduler.drain)

            def learner(name: str) -> str:
                body = {"package_id": created.json()["id"], "learner": {"id": name}, "resume": False}
                session = client.post(f"{API}/sessions", json=body, headers=headers)
                session.raise_for_status()
                runtime.launch(inst, tenant.id, session.json()["id"])
                return session.json()["id"]  # type: ignore[no-any-return]

            seq = 1
            for r in range(args.rounds):
                keys = list(spent)
                for name, kind in keys[r % len(keys) :] + keys[: r % len(keys)]:  # each mode first in turn
                    session_id = learner(f"{name}-{kind}-{r}")
                    with mode(name):
                        changes = bench_changes if kind == "bench" else answer_changes
                        spent[(name, kind)] += commits(inst, tenant.id, session_id, changes, seq, args.commits)
                    seq += args.commits
                started = time.thread_time()
                stored = scorm_statements.flush(inst, tenant.id)
                if stored:
                    flush_ms.append((time.thread_time() - started) * 1000 / stored)
    print(f"{'commit':<8} {'mode':<8} {'n':>6} {'CPU median':>11} {'CPU mean':>9} {'CPU p95':>8}")
    for (name, kind), values in sorted(spent.items(), key=lambda item: (item[0][1], modes.index(item[0][0]))):
        p95 = sorted(values)[int(0.95 * (len(values) - 1))]
        print(
            f"{kind:<8} {name:<8} {len(values):>6} {statistics.median(values):>8.3f} ms "
            f"{statistics.fmean(values):>6.3f} ms {p95:>5.3f} ms"
        )
    if flush_ms:
        print(f"flush (outbox → statements), CPU per statement: median {statistics.median(flush_ms):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
