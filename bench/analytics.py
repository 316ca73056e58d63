"""Analytics benchmark: one tenant with 100,000 sessions and 1,000,000 interactions, and the package report.

It builds the tenant through the real migrations (so the schema, indexes and triggers are the
appliance's own), then bulk-inserts sessions, their SCO run-time rows (CMI JSON with the interactions
in it) and the derived interaction rows, letting the triggers maintain the per-question counters as
the run-time would. By default every session is on ONE package, the worst case for a package report.

It then times, each `--runs` times after one cold run:

* `analytics.package_report` called in process (the service alone);
* `GET /api/v1/analytics/packages/{id}` and `GET /api/v1/analytics/summary` from a real
  `scorm-appliance serve` process over HTTP on 127.0.0.1 (target: the package report within 300 ms);
* `analytics_index.index_session` on one commit with ten interactions (the cost added to the run-time).

Run: `python -m bench.analytics [--sessions 100000] [--interactions 10] [--packages 1] [--runs 20]
[--keep DIR] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import apsw
import httpx

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning import analytics, analytics_index
from appliance.services.tenancy.apikeys import create_key
from appliance.services.tenancy.tenants import Tenant, create_tenant, list_tenants

HOST = "127.0.0.1"
NOW = 1_800_000_000.0
CHOICES = ("a", "b", "c", "d")
TOWNS = [f"town-{n}" for n in range(40)]
BATCH = 5_000


def build(data_dir: Path, sessions: int, interactions: int, packages: int, seed: int = 1) -> tuple[str, str, float]:
    """Create the tenant and its data; returns (API key, the busiest package id, seconds taken).

    The `interactions` records are spread evenly over the sessions that were started (a session never
    launched has none), so the tenant holds exactly that many.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    statuses = [_status(rng) for _ in range(sessions)]
    started_count = sum(1 for s in statuses if s[0] != "not_started") or 1
    base, extra = divmod(interactions, started_count)
    counts, seen = [], 0
    for status in statuses:
        if status[0] == "not_started":
            counts.append(0)
        else:
            counts.append(base + (1 if seen < extra else 0))
            seen += 1
    inst = Instance(Config(data_dir=data_dir))
    try:
        tenant = create_tenant(inst, "Analytics bench", "enterprise")
        _, secret = create_key(inst, tenant.id, "bench")
        package_ids = [f"pkg_bench{n:03d}" for n in range(packages)]
        db = inst.tenant_db(tenant.id)
        db.write_sync(lambda c: _packages(c, package_ids))
        for first in range(0, sessions, BATCH):
            count = min(BATCH, sessions - first)
            db.write_sync(lambda c, f=first, n=count: _sessions(c, rng, package_ids, f, n, statuses, counts))
        db.write_sync(lambda c: c.execute("ANALYZE"))
    finally:
        inst.close()
    return secret, package_ids[0], time.perf_counter() - started


def _packages(conn: apsw.Connection, package_ids: list[str]) -> None:
    for package_id in package_ids:
        conn.execute(
            "INSERT INTO packages (id, title, latest_version, active_version, created_at, updated_at) "
            "VALUES (?, ?, 1, 1, ?, ?)",
            (package_id, f"Bench course {package_id[-3:]}", NOW, NOW),
        )
        conn.execute(
            "INSERT INTO package_versions (package_id, version, status, scorm_version, created_at, updated_at) "
            "VALUES (?, 1, 'ready', '1.2', ?, ?)",
            (package_id, NOW, NOW),
        )


def _status(rng: random.Random) -> tuple[str, str, str]:
    roll = rng.random()
    if roll < 0.10:
        return "not_started", "unknown", "unknown"
    if roll < 0.35:
        return "incomplete", "incomplete", "unknown"
    if roll < 0.45:
        return "completed", "completed", "unknown"
    if roll < 0.85:
        return "passed", "completed", "passed"
    return "failed", "completed", "failed"


def _sessions(
    conn: apsw.Connection,
    rng: random.Random,
    package_ids: list[str],
    first: int,
    count: int,
    statuses: list[tuple[str, str, str]],
    counts: list[int],
) -> None:
    sessions, activities, interactions, completions = [], [], [], []
    for n in range(first, first + count):
        session_id = f"ses_bench{n:08d}"
        # The first package is the busiest: it gets every session when there is one package, else half.
        package_id = package_ids[0] if len(package_ids) == 1 or n % 2 == 0 else rng.choice(package_ids[1:])
        status, completion, success = statuses[n]
        started = status != "not_started"
        created = NOW - rng.uniform(0, 90) * 86_400
        scaled = min(1.0, max(0.0, rng.gauss(0.72, 0.15))) if status in ("passed", "failed", "completed") else None
        seconds = round(rng.uniform(60, 3600), 2) if started else 0.0
        sessions.append(
            (session_id, package_id, f"learner-{n}", status, completion, success, scaled, seconds, created, created)
        )
        if not started:
            continue
        cmi = {"cmi.core.lesson_status": status if status != "not_started" else "not attempted"}
        for q in range(counts[n]):
            qid = f"q{q + 1}"
            fill_in = q % 5 == 4
            response = rng.choice(TOWNS) if fill_in else rng.choice(CHOICES)
            correct = response == ("town-0" if fill_in else "a") or rng.random() < 0.4
            result = "correct" if correct else "wrong"
            latency = rng.randint(5, 120)
            prefix = f"cmi.interactions.{q}"
            cmi.update(
                {
                    f"{prefix}.id": qid,
                    f"{prefix}.type": "fill-in" if fill_in else "choice",
                    f"{prefix}.student_response": response,
                    f"{prefix}.result": result,
                    f"{prefix}.latency": f"00:{latency // 60:02d}:{latency % 60:02d}",
                }
            )
            outcome = "correct" if correct else "incorrect"
            interactions.append(
                (
                    session_id,
                    "item1",
                    q,
                    package_id,
                    qid,
                    "fill-in" if fill_in else "choice",
                    response,
                    result,
                    outcome,
                    float(latency),
                )
            )
        activities.append((session_id, json.dumps(cmi, separators=(",", ":")), created))
        if completion == "completed":
            completions.append((session_id, package_id, created + seconds))
    conn.executemany(
        "INSERT INTO sessions (id, package_id, package_version, learner_id, status, completion_status, success_status, "
        "score_scaled, total_time_seconds, created_at, updated_at, expires_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, "
        f"{NOW + 86_400})",
        sessions,
    )
    conn.executemany(
        "INSERT INTO session_activities (session_id, activity_id, cmi, attempt, state, updated_at) "
        "VALUES (?, 'item1', ?, 1, 'terminated', ?)",
        activities,
    )
    conn.executemany(
        "INSERT INTO session_interactions (session_id, activity_id, idx, package_id, interaction_id, type, response, "
        "result, outcome, latency_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        interactions,
    )
    conn.executemany(
        "INSERT INTO session_completions (session_id, package_id, completed_at) VALUES (?, ?, ?)", completions
    )


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "min_ms": round(ordered[0] * 1000, 1),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def time_in_process(data_dir: Path, package_id: str, runs: int) -> dict[str, Any]:
    """The report service called directly: cold (first) and warm runs; and the index cost per commit."""
    inst = Instance(Config(data_dir=data_dir))
    try:
        tenant = list_tenants(inst)[0]
        started = time.perf_counter()
        report = analytics.package_report(inst, tenant, package_id)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(runs):
            started = time.perf_counter()
            analytics.package_report(inst, tenant, package_id)
            warm.append(time.perf_counter() - started)
        summary_times = []
        for _ in range(max(3, runs // 4)):
            started = time.perf_counter()
            analytics.summary(inst, tenant)
            summary_times.append(time.perf_counter() - started)
        index_times = _time_index(inst, tenant)
    finally:
        inst.close()
    return {
        "sessions": report["sessions"]["total"],
        "interaction_records": sum(i["attempts"] for i in report["interactions"]),
        "report_cold_ms": round(cold * 1000, 1),
        "report": _stats(warm),
        "summary": _stats(summary_times),
        "index_session": _stats(index_times),
    }


def _time_index(inst: Instance, tenant: Tenant) -> list[float]:
    """`index_session` as one commit runs it: ten interaction records, then an unchanged re-commit."""
    cmi = {"cmi.core.lesson_status": "incomplete"}
    for q in range(10):
        cmi.update({f"cmi.interactions.{q}.id": f"q{q + 1}", f"cmi.interactions.{q}.student_response": "b"})
        cmi[f"cmi.interactions.{q}.result"] = "wrong"
    times = []
    db = inst.tenant_db(tenant.id)
    session = {"id": "ses_bench00000001", "package_id": "pkg_bench000", "completion_status": "incomplete"}

    def commit(conn: apsw.Connection, data: dict[str, str]) -> None:
        started = time.perf_counter()
        analytics_index.index_session(conn, session, NOW, ("item1", data))
        times.append(time.perf_counter() - started)

    for n in range(20):
        data = dict(cmi)
        data["cmi.interactions.0.student_response"] = CHOICES[n % 4]  # one answer changes per commit
        db.write_sync(lambda c, d=data: commit(c, d))
    return times


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def time_http(data_dir: Path, key: str, package_id: str, runs: int) -> dict[str, Any]:
    """The routes answered by a real `scorm-appliance serve` process."""
    port = _free_port()
    script = Path(sys.executable).parent / "scorm-appliance"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]
    command += ["serve", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]
    env = {**os.environ, "SCORM_APPLIANCE_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    base = f"http://{HOST}:{port}"
    try:
        with httpx.Client(trust_env=False, timeout=30.0, headers={"Authorization": f"Bearer {key}"}) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get(f"{base}/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                time.sleep(0.05)
            results: dict[str, Any] = {}
            for name, path in (
                ("package_report", f"/api/v1/analytics/packages/{package_id}"),
                ("package_report_csv", f"/api/v1/analytics/packages/{package_id}?format=csv"),
                ("summary", "/api/v1/analytics/summary"),
            ):
                started = time.perf_counter()
                first = client.get(base + path)
                cold = time.perf_counter() - started
                if first.status_code != 200:
                    raise RuntimeError(f"{path} answered {first.status_code}: {first.text[:200]}")
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    response = client.get(base + path)
                    samples.append(time.perf_counter() - started)
                    response.raise_for_status()
                results[name] = {"cold_ms": round(cold * 1000, 1), **_stats(samples), "bytes": len(first.content)}
            return results
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000, help="interaction records in the tenant")
    parser.add_argument("--packages", type=int, default=1, help="packages the sessions are spread over")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="build in (and keep) this data directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        data_dir = args.keep or Path(tmp) / "data"
        key, package_id, build_seconds = build(data_dir, args.sessions, args.interactions, args.packages)
        db_bytes = sum(p.stat().st_size for p in data_dir.rglob("tenant.db*"))
        figures: dict[str, Any] = {
            "cpus": os.cpu_count(),
            "build_seconds": round(build_seconds, 1),
            "tenant_db_mb": round(db_bytes / 1e6, 1),
            "in_process": time_in_process(data_dir, package_id, args.runs),
            "http": time_http(data_dir, key, package_id, args.runs),
        }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        inproc, http = figures["in_process"], figures["http"]
        print(
            f"tenant: {inproc['sessions']:,} sessions on the package, {inproc['interaction_records']:,} interaction records"
        )
        print(f"built in {figures['build_seconds']} s; tenant.db {figures['tenant_db_mb']} MB; {figures['cpus']} CPUs")
        print(f"package report, in process: cold {inproc['report_cold_ms']} ms, warm {inproc['report']}")
        print(f"summary, in process: {inproc['summary']}")
        print(f"index_session per commit (10 interactions): {inproc['index_session']}")
        for name, row in http.items():
            print(f"HTTP {name}: {row}")
        ok = http["package_report"]["p95_ms"] < 300
        print(f"target (package report within 300 ms over HTTP, p95): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
