"""xAPI LRS benchmark: statements stored per second, and filtered GET latency over a large store.

Fills one tenant's LRS with `--statements` statements (default 1,000,000) through the store itself
(appliance.services.lrs.statements.insert_statements, in batches, no HTTP: the fill is not what is measured),
then starts a real `scorm-appliance serve` on 127.0.0.1 and measures, over HTTP with an LRS credential:

- writes: wrk POSTing batches of `--batch` statements (default 50) at `--connections` (default 10)
  for `--seconds`, validated and stored as any client's; prints statements/s and latency;
- reads: GET /xapi/statements with one filter each (agent, verb, activity, since, registration)
  and agent+verb, random values that match, `--queries` of each from 4 threads; prints p50/p95/max.

Targets on 2 cores: ≥ 20,000 statements/s stored; filtered GET p95 < 100 ms.

    python -m bench xapi [--statements 1000000] [--seconds 10] [--connections 10] [--batch 50]
                         [--reuse DIR] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.runtime import cpu_seconds, wrk
from bench.upload import HOST, free_port, server_command, wait_healthy

LEARNERS = 1000
VERBS = [f"http://adlnet.gov/expapi/verbs/{v}" for v in ("experienced", "attempted", "answered", "passed", "failed")]
VERBS += [f"http://example.com/verbs/v{n}" for n in range(5)]
ACTIVITIES = 500
ATTEMPTS = 5  # registrations per learner
BODIES = 64  # distinct POST bodies wrk cycles through

LUA = r"""
local bodies = {%(bodies)s}
local n = 0
function init(args)
  n = math.random(#bodies)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "%(auth)s"
  wrk.headers["X-Experience-API-Version"] = "1.0.3"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n %% #bodies + 1
  return wrk.format(nil, "/xapi/statements", nil, bodies[n])
end
"""


def make_statement(rng: random.Random, with_id: bool = False) -> dict[str, Any]:
    """A typical course statement: a learner, one of ten verbs, one of 500 activities, a registration,
    the course as parent, a result."""
    learner = rng.randrange(LEARNERS)
    statement: dict[str, Any] = {
        "actor": {"objectType": "Agent", "name": f"Learner {learner}", "mbox": f"mailto:learner{learner}@example.com"},
        "verb": {"id": rng.choice(VERBS), "display": {"en-US": "did"}},
        "object": {
            "objectType": "Activity",
            "id": f"http://example.com/course/activity/{rng.randrange(ACTIVITIES)}",
            "definition": {"name": {"en-US": "An activity"}, "type": "http://adlnet.gov/expapi/activities/lesson"},
        },
        "result": {"score": {"scaled": round(rng.random(), 2)}, "completion": True, "duration": "PT4M30S"},
        "context": {
            "registration": registration(learner, rng.randrange(ATTEMPTS)),
            "contextActivities": {"parent": [{"id": "http://example.com/course"}]},
            "platform": "bench",
        },
        "timestamp": "2026-12-01T10:00:00.000Z",
    }
    if with_id:
        statement["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return statement


def registration(learner: int, attempt: int) -> str:
    return str(uuid.UUID(int=learner * 100 + attempt + 1, version=4))


def create_lrs(data_dir: Path) -> tuple[str, str, str]:
    """A tenant with an LRS credential: (tenant id, key, secret)."""
    from appliance.config import Config
    from appliance.instance import Instance
    from appliance.services.lrs.credentials import create_credential
    from appliance.services.tenancy.tenants import create_tenant

    inst = Instance(Config(data_dir=data_dir))
    try:
        tenant = create_tenant(inst, "Bench", "enterprise")
        cred, secret = create_credential(inst, tenant.id, "bench")
    finally:
        inst.close()
    return tenant.id, cred.id, secret


def fill(data_dir: Path, tenant_id: str, total: int, start: float) -> float:
    """`total` statements stored through the store in batches of 1,000, `stored` 1 ms apart from
    `start`; returns the seconds it took."""
    from appliance.config import Config
    from appliance.instance import Instance
    from appliance.services.lrs.statements import insert_statements

    authority = {"objectType": "Agent", "account": {"homePage": "urn:bench", "name": "fill"}}
    rng = random.Random(1)
    inst = Instance(Config(data_dir=data_dir))
    began = time.perf_counter()
    try:
        db = inst.tenant_db(tenant_id)
        done = 0
        while done < total:
            batch = [make_statement(rng) for _ in range(min(1000, total - done))]
            stored = start + done / 1000
            db.write_sync(
                lambda c, b=batch, s=stored: insert_statements(
                    c, b, stored=s, authority=authority, credential_id=None, version="1.0.3"
                )
            )
            done += len(batch)
            if done % 100_000 == 0:
                print(f"   filled {done:,} ({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
    finally:
        inst.close()
    return time.perf_counter() - began


def prepared(reuse: Path | None, data_dir: Path, total: int) -> tuple[str, str, str, float, float]:
    """A filled store in `data_dir`: (tenant id, key, secret, first `stored`, fill seconds).

    With `reuse`, the store is filled there once (its facts in `bench.json`) and copied for each run,
    so runs compare the same million statements and skip the minutes of filling.
    """
    facts = reuse / f"bench-{total}.json" if reuse else None
    if facts is not None and facts.exists():
        known = json.loads(facts.read_text())
        shutil.copytree(reuse / f"data-{total}", data_dir)
        return known["tenant_id"], known["key"], known["secret"], known["start"], 0.0
    target = reuse / f"data-{total}" if reuse else data_dir
    tenant_id, key, secret = create_lrs(target)
    start = time.time() - total / 1000 - 60
    seconds = fill(target, tenant_id, total, start) if total else 0.0
    if facts is not None:
        facts.write_text(json.dumps({"tenant_id": tenant_id, "key": key, "secret": secret, "start": start}))
        shutil.copytree(target, data_dir)
    return tenant_id, key, secret, start, seconds


def write_load(url: str, auth: str, batch: int, connections: int, seconds: int, work: Path) -> dict[str, float]:
    """wrk POSTing `batch`-statement bodies; statements/s = requests/s × batch."""
    rng = random.Random(2)
    bodies = []
    for _ in range(BODIES):
        text = json.dumps([make_statement(rng) for _ in range(batch)])
        bodies.append("[==[" + text + "]==]")
    script = work / "post.lua"
    script.write_text(LUA % {"bodies": ", ".join(bodies), "auth": auth})
    result = wrk(url, script, connections, seconds)
    result["statements_per_s"] = result["rps"] * batch
    return result


def read_load(url: str, headers: dict[str, str], queries: int, start: float, total: int) -> dict[str, dict[str, float]]:
    """Each filter kind `queries` times from 4 threads: latency p50/p95/max in ms and the page size."""
    rng = random.Random(3)

    def params(kind: str) -> dict[str, str]:
        agent = json.dumps({"mbox": f"mailto:learner{rng.randrange(LEARNERS)}@example.com"})
        if kind == "agent":
            return {"agent": agent}
        if kind == "verb":
            return {"verb": rng.choice(VERBS)}
        if kind == "activity":
            return {"activity": f"http://example.com/course/activity/{rng.randrange(ACTIVITIES)}"}
        if kind == "registration":
            return {"registration": registration(rng.randrange(LEARNERS), rng.randrange(ATTEMPTS))}
        if kind == "since":
            at = start + rng.uniform(0, total / 1000)
            return {"since": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + "Z"}
        return {"agent": agent, "verb": rng.choice(VERBS)}

    results: dict[str, dict[str, float]] = {}
    for kind in ("agent", "verb", "activity", "registration", "since", "agent+verb"):
        plan = [params(kind) for _ in range(queries)]
        latencies: list[float] = []
        sizes: list[int] = []
        lock = threading.Lock()

        def worker(
            items: list[dict[str, str]],
            latencies: list[float] = latencies,
            sizes: list[int] = sizes,
            lock: threading.Lock = lock,
        ) -> None:
            with httpx.Client(base_url=url, headers=headers, trust_env=False, timeout=30.0) as client:
                for p in items:
                    began = time.perf_counter()
                    r = client.get("/xapi/statements", params=p)
                    elapsed = (time.perf_counter() - began) * 1000
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {p} answered {r.status_code}: {r.text[:200]}")
                    n = r.content.count(b'"stored"')
                    with lock:
                        latencies.append(elapsed)
                        sizes.append(n)

        threads = [threading.Thread(target=worker, args=(plan[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        latencies.sort()
        results[kind] = {
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(len(latencies) * 0.95) - 1],
            "max_ms": latencies[-1],
            "statements_per_page": statistics.mean(sizes),
        }
    return results


def settled_cpu_seconds(pid: int, quiet_ticks: int = 2, limit_seconds: float = 20.0) -> float:
    """The server's CPU time once it has finished with the write load: the WAL left behind is
    checkpointed after the last request (appliance.services.lrs.bulk), work the load caused that a reading
    taken as wrk returns would leave out (and leave out more of, the longer the WAL is let grow).
    Settled: less than `quiet_ticks` clock ticks used in 0.25 s."""
    tick = 1 / os.sysconf("SC_CLK_TCK")
    ends = time.monotonic() + limit_seconds
    last = cpu_seconds(pid)
    while time.monotonic() < ends:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last < quiet_ticks * tick:
            return now
        last = now
    return last


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench xapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=1_000_000, help="statements stored before measuring")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--queries", type=int, default=200, help="GETs per filter kind")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a folder keeping a filled store between runs: filled there once, copied for each run",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench xapi needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-xapi-"))
    data_dir = work / "data"
    tenant_id, key, secret, start, fill_seconds = prepared(args.reuse, data_dir, args.statements)
    auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = (work / "server.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORM_APPLIANCE_")}
    env["SCORM_APPLIANCE_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen(server_command(data_dir, port), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_healthy(url, proc)
        headers = {"Authorization": auth, "X-Experience-API-Version": "1.0.3"}
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(proc.pid)
        writes = write_load(url, auth, args.batch, args.connections, args.seconds, work)
        writes["server_cpu_s_per_1000_statements"] = (
            (settled_cpu_seconds(proc.pid) - cpu_before) / max(1.0, writes["requests"] * args.batch) * 1000
        )
        reads = read_load(url, headers, args.queries, start, args.statements)
        load_after = os.getloadavg()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "statements_before": args.statements,
        "fill_seconds": fill_seconds,
        "writes": writes,
        "reads": reads,
        "load_average": [load_before, load_after],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(msgspec.json.encode(report).decode())
        return 0
    print(f"xAPI LRS over {args.statements:,} stored statements ({os.cpu_count()} CPUs, load {load_before:.1f})")
    print(
        f"  POST batches of {args.batch} at {args.connections} connections: "
        f"{writes['statements_per_s']:,.0f} statements/s ({writes['rps']:.0f} requests/s, "
        f"p50 {writes.get('p50', float('nan')):.1f} ms, p99 {writes.get('p99', float('nan')):.1f} ms, "
        f"non-2xx {writes['non2xx']:.0f}; server CPU {writes['server_cpu_s_per_1000_statements'] * 1000:.1f} ms "
        f"per 1000 statements)"
    )
    for kind, r in reads.items():
        print(
            f"  GET {kind:<13} p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms"
            f"  ({r['statements_per_page']:.0f} statements per page)"
        )
    print(f"  (fill: {fill_seconds:.0f} s in process; load average after {load_after:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
