"""Scale benchmark: learner commits/s and p99 with 1, 2 and 4 `serve` workers on PostgreSQL, beside the
embedded single process (SQLite), in one sitting.

For PostgreSQL a fresh schema and its two roles are installed with `scorm-appliance database install`
(on the server at --admin-url, default 127.0.0.1:5432, database `test`) and dropped afterwards. The
workers are real `scorm-appliance serve` processes on ports of 127.0.0.1 sharing that schema and one
data directory (the package files; `--redis` shares the learner limits too). The load is bench
runtime's: wrk drives `POST /player/{token}/commit`, one connection per learner, each its own
launched session, every commit several elements through the full data-model check. With N workers
the learners are spread over the workers' ports by N wrk processes running at once (no balancer
process eats the two cores); their latency histograms are merged (wrk's raw buckets), so p50/p99 are
of every commit. Learners may be spread over several tenants (`--tenants`): on PostgreSQL writes to one
tenant are serialised by its advisory lock (docs/scale-out.md, "Transactions").

Printed per configuration and round: commits/s, p50/p99 ms, errors, the CPU per commit of the workers,
of their PostgreSQL backends and of wrk, the machine's busy share, the share of the machine used by
none of these (other work on a shared machine), and the load average.
Nothing is asserted: timings on a shared machine are figures, not verdicts.

    python -m bench scale [--workers 1,2,4] [--learners 16] [--tenants 1,4] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.runtime import LUA, cpu_seconds, parse_wrk, prepare
from bench.upload import HOST, free_port, learner_load_env, server_command, wait_healthy

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"

# bench runtime's commit script, with a client id per run (a commit that repeats a client's seq is a
# cheap replay) and the latency histogram written out for merging across wrk processes.
SCALE_LUA = (
    LUA.replace('thread:set("client", "wrk-" .. counter)', 'thread:set("client", "%(run)s-" .. counter)')
    + r"""
function done(summary, latency, requests)
  local f = io.open("%(histogram)s", "w")
  for i = 1, #latency do
    local value, count = latency(i)
    f:write(value, " ", count, "\n")
  end
  f:close()
end
"""
)


@dataclass
class Deployment:
    """Workers started on one backend, and what the load needs to reach them."""

    label: str
    procs: list[subprocess.Popen[bytes]]
    urls: list[str]
    tokens: list[str] = field(default_factory=list)
    app_role: str | None = None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def backend_pids(app_role: str) -> list[int]:
    """The PostgreSQL backends of the workers' pools (connected as the bench's application role)."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        return [int(r[0]) for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (app_role,))]


def pids_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def install_schema(data_dir: Path, admin_url: str) -> tuple[dict[str, str], str, str, str]:
    """A fresh schema and roles by `scorm-appliance database install`; the workers' environment."""
    suffix = secrets.token_hex(4)
    schema, owner, app = f"bench_scale_{suffix}", f"bench_owner_{suffix}", f"bench_app_{suffix}"
    env = {
        **learner_load_env(),
        "SCORM_APPLIANCE_DATABASE": f"postgresql://{app}@127.0.0.1:5432/test",
        "SCORM_APPLIANCE_DATABASE_SCHEMA": schema,
    }
    script = Path(sys.executable).parent / "scorm-appliance"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]
    command = [*base, "database", "install", "--data-dir", str(data_dir)]
    command += ["--admin-url", admin_url, "--owner", owner, "--create-roles"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    return env, schema, owner, app


def drop_schema(admin_url: str, schema: str, owner: str, app: str) -> None:
    import psycopg
    from psycopg import sql as pgsql

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (app,))
        admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(schema)))
        for role in (app, owner):
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))


def start_s3(env: dict[str, str]) -> Any:
    """moto's standalone S3 server on 127.0.0.1 (tests/moto_s3.py) with a bucket, and the workers' `files`
    settings pointed at it. The commit path reads no files; uploads, processing and content use it."""
    from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3

    server = MotoS3.start()
    env.update(
        {
            "SCORM_APPLIANCE_FILES": f"s3://{server.new_bucket()}/bench",
            "SCORM_APPLIANCE_FILES_ENDPOINT": server.endpoint_url,
            "SCORM_APPLIANCE_FILES_REGION": REGION,
            "SCORM_APPLIANCE_FILES_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "SCORM_APPLIANCE_FILES_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }
    )
    return server


def tenant_keys(data_dir: Path, env: dict[str, str], count: int, label: str = "") -> list[str]:
    """`count` enterprise tenants (no storage cap, high rate limit) and an API key each, made before the
    workers start (in this process, on the same settings as the workers)."""
    from appliance.config import Config
    from appliance.instance import Instance
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant

    database = env.get("SCORM_APPLIANCE_DATABASE", "sqlite")
    schema = env.get("SCORM_APPLIANCE_DATABASE_SCHEMA", "appliance")
    inst = Instance(Config(data_dir=data_dir, database=database, database_schema=schema))
    try:
        keys = []
        for n in range(count):
            tenant = create_tenant(inst, f"Bench {label}{n}", "enterprise")
            keys.append(create_key(inst, tenant.id, "bench")[1])
    finally:
        inst.close()
    return keys


def start(label: str, data_dir: Path, env: dict[str, str], workers: int, logs: Path) -> Deployment:
    procs, urls = [], []
    for n in range(workers):
        port = free_port()
        with (logs / f"{label}-{n}.log").open("ab") as out:
            procs.append(
                subprocess.Popen(server_command(data_dir, port), stdout=out, stderr=subprocess.STDOUT, env=env)
            )
        urls.append(f"http://{HOST}:{port}")
    try:
        for proc, url in zip(procs, urls, strict=True):
            wait_healthy(url, proc, timeout=60)
    except BaseException:
        stop(procs)
        for n in range(workers):  # why it did not start, before the temporary folder goes
            tail = (logs / f"{label}-{n}.log").read_text(errors="replace").splitlines()[-15:]
            print(f"-- worker {n} of {label}:", *tail, sep="\n", file=sys.stderr)
        raise
    return Deployment(label, procs, urls)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def warm(urls: list[str], tokens: list[str]) -> None:
    """A few commits through every worker, so each has its pool connections and the course loaded."""
    with httpx.Client(trust_env=False, timeout=10) as client:
        for n, url in enumerate(urls):
            for m, token in enumerate(tokens[:4]):
                body = {"client_id": f"warm-{n}-{m}", "seq": 1, "activity": "item", "version": None, "changes": {}}
                client.post(f"{url}/player/{token}/commit", json=body)


@dataclass(frozen=True)
class Figures:
    rps: float
    p50: float
    p99: float
    errors: float
    requests: float
    worker_cpu_ms: float
    pg_cpu_ms: float
    wrk_cpu_ms: float
    busy: float
    others: float  # the machine's CPU used by neither the workers, their backends nor wrk (other work)
    load: float


def _percentile(histogram: Counter[int], pct: float) -> float:
    total = sum(histogram.values())
    if not total:
        return float("nan")
    rank, seen = pct * total, 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value / 1000.0  # wrk records microseconds
    return max(histogram) / 1000.0


def run_load(deployment: Deployment, seconds: int, workdir: Path, run: str) -> Figures:
    """One wrk per worker at once, the learners dealt round-robin over the workers."""
    shares = [deployment.tokens[n :: len(deployment.urls)] for n in range(len(deployment.urls))]
    pids = backend_pids(deployment.app_role) if deployment.app_role else []
    cpu_before = sum(cpu_seconds(p.pid) for p in deployment.procs)
    pg_before = pids_cpu(pids)
    busy_before = machine_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrks = []
    for n, (url, tokens) in enumerate(zip(deployment.urls, shares, strict=True)):
        script = workdir / f"{run}-{n}.lua"
        histogram = workdir / f"{run}-{n}.hist"
        script.write_text(
            SCALE_LUA
            % {"tokens": ", ".join(f'"{t}"' for t in tokens), "run": f"{run}-{n}", "histogram": str(histogram)}
        )
        c = str(len(tokens))
        command = ["wrk", "-t", c, "-c", c, "-d", f"{seconds}s", "--latency", "-s", str(script), url]
        wrks.append((subprocess.Popen(command, stdout=subprocess.PIPE, text=True), histogram))
    outputs = [(proc.communicate(timeout=seconds + 60)[0], histogram) for proc, histogram in wrks]
    busy_after = machine_busy()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the wrk processes, now reaped
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    cpu_after = sum(cpu_seconds(p.pid) for p in deployment.procs)
    pg_after = pids_cpu(pids)
    merged: Counter[int] = Counter()
    rps = requests = errors = 0.0
    for text, histogram in outputs:
        figures = parse_wrk(text)
        rps += figures["rps"]
        requests += figures["requests"]
        errors += figures["non2xx"]
        for line in histogram.read_text().splitlines():
            value, count = line.split()
            merged[int(float(value))] += int(float(count))
    tick = os.sysconf("SC_CLK_TCK")
    busy_seconds = (busy_after[0] - busy_before[0]) / tick
    all_seconds = max(busy_after[1] - busy_before[1], 1) / tick
    ours = (cpu_after - cpu_before) + (pg_after - pg_before) + wrk_cpu
    return Figures(
        rps=rps,
        p50=_percentile(merged, 0.50),
        p99=_percentile(merged, 0.99),
        errors=errors,
        requests=requests,
        worker_cpu_ms=(cpu_after - cpu_before) / requests * 1000,
        pg_cpu_ms=(pg_after - pg_before) / requests * 1000 if pids else float("nan"),
        wrk_cpu_ms=wrk_cpu / requests * 1000,
        busy=busy_seconds / all_seconds,
        others=max(busy_seconds - ours, 0.0) / all_seconds,
        load=os.getloadavg()[0],
    )


def prepare_tokens(deployment: Deployment, keys: list[str], learners: int) -> list[str]:
    """`learners` launched sessions dealt over the tenants (one package each), made through worker 0."""
    per = [learners // len(keys) + (1 if n < learners % len(keys) else 0) for n in range(len(keys))]
    tokens: list[str] = []
    for key, count in zip(keys, per, strict=True):
        if count:
            tokens += prepare(deployment.urls[0], key, count)
    return tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts on PostgreSQL")
    parser.add_argument("--learners", type=int, default=16, help="concurrent learners (wrk connections) in all")
    parser.add_argument("--tenants", default="1,4", help="comma-separated tenant counts the learners are spread over")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="times every configuration is measured, alternated")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="an administrator's URL of the PostgreSQL server")
    parser.add_argument("--redis", default=None, help="redis_url for the PostgreSQL workers (shared learner limits)")
    parser.add_argument("--pool-size", type=int, default=None, help="database_pool_size of each worker")
    parser.add_argument("--no-sqlite", action="store_true", help="leave out the embedded single process")
    parser.add_argument(
        "--files",
        choices=("local", "s3"),
        default="local",
        help="the PostgreSQL workers' file store: their shared data directory, or a bucket of moto's S3 server on 127.0.0.1",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian package `wrk`); skipping the scale benchmark")
        return 0
    try:
        import psycopg

        psycopg.connect(args.admin_url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means: no PostgreSQL half
        print(f"PostgreSQL is not reachable at {args.admin_url} ({exc}); skipping the scale benchmark")
        return 0
    worker_counts = [int(x) for x in args.workers.split(",")]
    tenant_counts = [int(x) for x in args.tenants.split(",")]
    print(
        f"{args.learners} learners, {args.seconds} s per measurement, {args.rounds} round(s); "
        f"files: {'S3 (moto_server on 127.0.0.1)' if args.files == 's3' else 'the shared data directory'}; "
        f"redis: {args.redis or 'none (limits per worker)'}"
    )
    header = (
        f"{'configuration':<22} {'tenants':>7} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'worker CPU ms':>13} {'PG CPU ms':>9} {'wrk CPU ms':>10} {'busy':>5} {'others':>6} {'load':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        logs = workdir / "logs"
        logs.mkdir()
        base_env = learner_load_env()
        pg_data = workdir / "pg-data"
        pg_env, schema, owner, app = install_schema(pg_data, args.admin_url)
        s3 = start_s3(pg_env) if args.files == "s3" else None
        if args.redis:
            pg_env["SCORM_APPLIANCE_REDIS_URL"] = args.redis
        if args.pool_size:
            pg_env["SCORM_APPLIANCE_DATABASE_POOL_SIZE"] = str(args.pool_size)
        try:
            # Sessions once per backend and tenant count: they are in the database, whichever workers serve.
            plans: list[tuple[str, int, dict[str, str], Path, int, list[str]]] = []
            for tenants in tenant_counts:
                if not args.no_sqlite:
                    lite_data = workdir / f"sqlite-data-{tenants}"
                    keys = tenant_keys(lite_data, base_env, tenants)
                    first = start(f"sqlite-{tenants}", lite_data, base_env, 1, logs)
                    try:
                        tokens = prepare_tokens(first, keys, args.learners)
                    finally:
                        stop(first.procs)
                    plans.append(("embedded SQLite, 1 proc", tenants, base_env, lite_data, 1, tokens))
                keys = tenant_keys(pg_data, pg_env, tenants, f"{tenants}-")
                first = start(f"pg-prepare-{tenants}", pg_data, pg_env, 1, logs)
                try:
                    tokens = prepare_tokens(first, keys, args.learners)
                finally:
                    stop(first.procs)
                for workers in worker_counts:
                    plans.append((f"PostgreSQL, {workers} worker(s)", tenants, pg_env, pg_data, workers, tokens))
            print(header, flush=True)
            for round_no in range(args.rounds):
                for label, tenants, env, data_dir, workers, tokens in plans:
                    deployment = start(f"r{round_no}-{workers}-{tenants}", data_dir, env, workers, logs)
                    deployment.tokens = tokens
                    deployment.app_role = app if env is pg_env else None
                    try:
                        warm(deployment.urls, tokens)
                        run = f"r{round_no}w{workers}t{tenants}{'pg' if env is pg_env else 'lite'}"
                        f = run_load(deployment, args.seconds, workdir, run)
                    finally:
                        stop(deployment.procs)
                    print(
                        f"{label:<22} {tenants:>7} {f.rps:>10.0f} {f.p50:>8.2f} {f.p99:>8.2f} {f.errors:>6.0f} "
                        f"{f.worker_cpu_ms:>13.3f} {f.pg_cpu_ms:>9.3f} {f.wrk_cpu_ms:>10.3f} {f.busy:>5.0%} "
                        f"{f.others:>6.0%} {f.load:>5.1f}",
                        flush=True,
                    )
            print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        finally:
            drop_schema(args.admin_url, schema, owner, app)
            if s3 is not None:
                s3.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
