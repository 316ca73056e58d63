"""Sequencing benchmark: launch, navigation and commit latency on large generated courses, over HTTP.

Starts a real `scorm-appliance serve` on 127.0.0.1 with two tenants. For each generated SCORM 2004 course
(100, 1,000 and 5,000 activities; flat, and 4 levels deep; every cluster with choice and flow) it uploads
the package to the first tenant, then, from one client, times:

* launch: a new session's first `POST /player/{token}/launch` (the engine, the delivery CMI, every
  adl.nav.request_valid value, the controls and the table of contents of the whole tree, with its outline);
* navigate: `POST /player/{token}/navigate` with continue, previous and a choice of a random leaf in turn,
  sending back the TOC outline's key as the player does (so the outline is not sent again);
* commit: a plain `POST /player/{token}/commit` of a few values (no sequencing);
* terminate: a commit that terminates the SCO with `continue` (the SCO's own navigation request).

Meanwhile a separate process (one GIL of its own) keeps asking, every 20 ms in turn, for a plain commit of
a learner of the *other* tenant and for a new session (`POST /api/v1/sessions`, a write) in the *same*
tenant, first for 2 s with the server idle (the machine's noise floor), then during the whole run.

Targets (2 cores): p95 < 20 ms at 1,000 activities and < 100 ms at 5,000; the other tenant's p99 < 10 ms.

With `--workers 0,1` the whole run is made twice in turn, each on a new server: large courses sequenced in
the request's thread (`sequencing_workers` 0), then in a worker process (1, `serve`'s default).

    python -m bench sequencing [--sizes 100,1000,5000] [--shapes flat,deep] [--rounds 30] [--workers 0,1] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import queue
import random
import subprocess
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.runtime import cpu_seconds
from bench.upload import HOST, free_port, learner_load_env, percentile, server_command, wait_healthy

NS = (
    'xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3" '
    'xmlns:imsss="http://www.imsglobal.org/xsd/imsss"'
)
CHOICE_FLOW = '<imsss:sequencing><imsss:controlMode choice="true" flow="true"/></imsss:sequencing>'
PROBE_INTERVAL = 0.02
decode = msgspec.json.decode  # the answers are large (2 MB at 5,000 activities): decode them fast


# -- generated courses ---------------------------------------------------------------------------------


def flat_items(count: int) -> tuple[str, list[str]]:
    """`count` leaves directly under the organization."""
    leaves = [f"a{n}" for n in range(count)]
    return "".join(
        f'<item identifier="{leaf}" identifierref="r"><title>{leaf}</title></item>' for leaf in leaves
    ), leaves


def deep_items(count: int) -> tuple[str, list[str]]:
    """Four levels: three of clusters with `b` children each (b about count^(1/4)), leaves at the fourth;
    as many activities as fit in `count`."""
    b = max(2, round(count**0.25))
    clusters = b + b * b + b**3
    per_cluster = max(1, (count - clusters) // b**3)
    leaves: list[str] = []

    def cluster(path: str, level: int) -> str:
        if level == 4:
            leaves.append(f"l{path}")
            return f'<item identifier="l{path}" identifierref="r"><title>{path}</title></item>'
        width = per_cluster if level == 3 else b
        children = "".join(cluster(f"{path}_{n}", level + 1) for n in range(width))
        return f'<item identifier="c{path}"><title>{path}</title>{children}{CHOICE_FLOW}</item>'

    return "".join(cluster(str(n), 1) for n in range(b)), leaves


def course_zip(shape: str, count: int) -> tuple[bytes, list[str], int]:
    """The package, its leaf identifiers and its number of activities (items)."""
    items, leaves = flat_items(count) if shape == "flat" else deep_items(count)
    manifest = (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest identifier="bench.seq" version="1" {NS}>'
        "<metadata><schema>ADL SCORM</schema><schemaversion>2004 4th Edition</schemaversion></metadata>"
        f'<organizations default="o"><organization identifier="o"><title>{shape} {count}</title>{items}'
        f"{CHOICE_FLOW}</organization></organizations>"
        '<resources><resource identifier="r" type="webcontent" adlcp:scormType="sco" href="index.html">'
        '<file href="index.html"/></resource></resources></manifest>'
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", manifest)
        archive.writestr("index.html", b"<html><body>bench</body></html>")
    return buffer.getvalue(), leaves, manifest.count(b"<item ")


SMALL_12 = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="bench.other" version="1" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
  <metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
  <organizations default="org"><organization identifier="org"><title>Other</title>
    <item identifier="item" identifierref="res"><title>Lesson</title></item>
  </organization></organizations>
  <resources><resource identifier="res" type="webcontent" adlcp:scormtype="sco" href="index.html">
    <file href="index.html"/></resource></resources>
</manifest>"""


def small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", SMALL_12)
        archive.writestr("index.html", b"<html><body>other</body></html>")
    return buffer.getvalue()


# -- server side set-up ------------------------------------------------------------------------------------


def create_tenants(data_dir: Path) -> tuple[str, str]:
    """Two enterprise tenants and an API key each, made before the server starts."""
    from appliance.config import Config
    from appliance.instance import Instance
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant

    inst = Instance(Config(data_dir=data_dir))
    try:
        secrets = []
        for name in ("Bench", "Other"):
            tenant = create_tenant(inst, name, "enterprise")
            secrets.append(create_key(inst, tenant.id, "bench")[1])
    finally:
        inst.close()
    return secrets[0], secrets[1]


def upload(client: httpx.Client, data: bytes) -> str:
    created = client.post("/api/v1/packages", content=data, headers={"Content-Type": "application/zip"})
    created.raise_for_status()
    package_id = created.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        package = client.get(f"/api/v1/packages/{package_id}").json()
        if package["status"] == "ready":
            return package_id
        if package["status"] == "failed":
            raise RuntimeError(f"package failed: {package['error']}")
        time.sleep(0.05)
    raise RuntimeError("package not ready in time")


def new_session(client: httpx.Client, url: str, package_id: str, learner: str) -> str:
    """A fresh session; returns its player path."""
    response = client.post(
        "/api/v1/sessions", json={"package_id": package_id, "learner": {"id": learner}, "resume": False}
    )
    response.raise_for_status()
    return decode(response.content)["launch_url"].split(url, 1)[1]


# -- the other tenant's (and the same tenant's) requests, from their own process -----------------------------


def probe(url: str, other_path: str, key: str, package_id: str, ready: Any, active: Any, done: Any, out: Any) -> None:
    """Every PROBE_INTERVAL, in turn: the other tenant's learner commits; a new session in the same tenant."""
    samples: dict[str, list[tuple[str, float]]] = {"idle_other": [], "idle_same": [], "other": [], "same": []}
    seq = 0
    with httpx.Client(base_url=url, trust_env=False, timeout=60.0) as client:
        turn = 0
        while not done.is_set():
            rid = f"probe-{turn}"  # to find the server's own time for it in its log
            started = time.perf_counter()
            if turn % 2 == 0:
                seq += 1
                body = {"client_id": "probe", "seq": seq, "activity": "item", "version": None}
                body["changes"] = {"cmi.core.lesson_location": f"p{seq}"}
                response = client.post(f"{other_path}/commit", json=body, headers={"X-Request-ID": rid})
                series = "other"
            else:
                response = client.post(
                    "/api/v1/sessions",
                    json={"package_id": package_id, "learner": {"id": f"probe-{seq}"}, "resume": False},
                    headers={"Authorization": f"Bearer {key}", "X-Request-ID": rid},
                )
                series = "same"
            elapsed = time.perf_counter() - started
            if response.status_code >= 300:
                raise RuntimeError(f"probe {series}: {response.status_code} {response.text[:200]}")
            ready.set()
            samples[series if active.is_set() else f"idle_{series}"].append((rid, elapsed * 1000))
            turn += 1
            time.sleep(max(0.0, PROBE_INTERVAL - elapsed))
    out.put(samples)


class Prober:
    def __init__(self, *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.active, self.done, self._out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
        self._proc = ctx.Process(target=probe, args=(*args, self.ready, self.active, self.done, self._out))
        self.samples: dict[str, list[tuple[str, float]]] = {}

    def start(self) -> None:
        self._proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("the probe did not start")

    def stop(self) -> None:
        self.done.set()
        try:
            self.samples = self._out.get(timeout=60)
        except queue.Empty:
            pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()


# -- measuring ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    shape: str
    activities: int
    op: str
    count: int
    p50: float
    p95: float
    p99: float
    max: float
    cpu_ms: float
    errors: int = 0
    note: str = ""


class ServerCpu:
    """The server's CPU time per kind of request: /proc's user+system time around each request, summed (10 ms
    ticks, so only the sum over many requests means something; the probe's requests add a little), its
    sequencing worker processes' included (the process tree is looked up again every TREE_SECONDS)."""

    TREE_SECONDS = 1.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.spent: dict[str, float] = {}
        self._tree: list[int] = [pid]
        self._tree_at = 0.0

    def timed(
        self, op: str, client: httpx.Client, path: str, body: dict[str, Any] | None = None
    ) -> tuple[float, httpx.Response]:
        if time.monotonic() - self._tree_at > self.TREE_SECONDS:
            self._tree, self._tree_at = process_tree(self.pid), time.monotonic()
        cpu = self._cpu()
        started = time.perf_counter()
        response = client.post(path, json=body)
        elapsed = (time.perf_counter() - started) * 1000
        self.spent[op] = self.spent.get(op, 0.0) + (self._cpu() - cpu) * 1000
        return elapsed, response

    def _cpu(self) -> float:
        total = 0.0
        for pid in self._tree:
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue  # a worker that ended meanwhile
        return total


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it (the forkserver and the sequencing workers), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def summarise(
    shape: str, activities: int, op: str, times: list[float], errors: int, cpu_ms: float, note: str = ""
) -> Row:
    times = sorted(times)
    return Row(
        shape,
        activities,
        op,
        len(times),
        percentile(times, 0.5),
        percentile(times, 0.95),
        percentile(times, 0.99),
        times[-1] if times else float("nan"),
        cpu_ms,
        errors,
        note,
    )


def toc_key(answer: dict[str, Any], held: str | None = None) -> str | None:
    """The key of the TOC outline an answer names (the player keeps it; `held` when the answer has none)."""
    toc = answer.get("toc")
    return toc.get("key", held) if isinstance(toc, dict) else held


def measure_course(
    client: httpx.Client, url: str, pid: int, shape: str, size: int, rounds: int, rng: random.Random
) -> list[Row]:
    cpu = ServerCpu(pid)
    data, leaves, activities = course_zip(shape, size)
    package_id = upload(client, data)
    launches: list[float] = []
    errors = {"launch": 0, "navigate": 0, "commit": 0, "terminate": 0}
    undelivered = 0  # a previous at the first activity, a continue past the last: answered, nothing to open
    size_kb = answer_kb = 0.0
    for n in range(rounds):
        path = new_session(client, url, package_id, f"{shape}-{size}-{n}")
        ms, response = cpu.timed("launch", client, f"{path}/launch")
        errors["launch"] += response.status_code != 200 or not decode(response.content)["delivery"]
        size_kb = len(response.content) / 1024
        launches.append(ms)
    # One learner moving around: the player's controls, plain commits, the SCO's own continue.
    path = new_session(client, url, package_id, f"{shape}-{size}-walker")
    launched = client.post(f"{path}/launch")
    launched.raise_for_status()
    key = toc_key(decode(launched.content))  # the player sends back the key of the TOC outline it holds
    navigations: list[float] = []
    commits: list[float] = []
    terminates: list[float] = []
    seq = 0
    current = leaves[0]
    for n in range(rounds * 2):
        request = ("continue", "previous", "choice")[n % 3]
        body = {"request": request, "target": rng.choice(leaves) if request == "choice" else None, "toc_key": key}
        ms, response = cpu.timed("navigate", client, f"{path}/navigate", body)
        navigations.append(ms)
        answer_kb = len(response.content) / 1024
        errors["navigate"] += response.status_code != 200
        answer = decode(response.content) if response.status_code == 200 else {}
        delivered, key = answer.get("delivery"), toc_key(answer, key)
        undelivered += delivered is None
        current = delivered["activity"] if delivered else current
        seq += 1
        changes = {"cmi.location": f"page-{n}", "cmi.suspend_data": f"visited={n}", "cmi.progress_measure": "0.5"}
        body = {"client_id": "bench", "seq": seq, "activity": current, "version": None, "changes": changes}
        ms, response = cpu.timed("commit", client, f"{path}/commit", body)
        commits.append(ms)
        errors["commit"] += response.status_code != 200
        if n % 2 == 0:
            seq += 1
            body = {"client_id": "bench", "seq": seq, "activity": current, "version": None, "terminate": True}
            body |= {"nav_request": "continue", "changes": {"cmi.completion_status": "completed"}, "toc_key": key}
            ms, response = cpu.timed("terminate", client, f"{path}/commit", body)
            terminates.append(ms)
            errors["terminate"] += response.status_code != 200
            answer = decode(response.content) if response.status_code == 200 else {}
            delivered, key = answer.get("delivery"), toc_key(answer, key)
            undelivered += delivered is None
            current = delivered["activity"] if delivered else current
    found = {"launch": launches, "navigate": navigations, "commit": commits, "terminate": terminates}
    notes = {
        "launch": f"{size_kb:.0f} KB answer",
        "navigate": f"{undelivered} delivered nothing; {answer_kb:.0f} KB answer",
    }
    return [
        summarise(
            shape, activities, op, times, errors[op], cpu.spent.get(op, 0.0) / max(1, len(times)), notes.get(op, "")
        )
        for op, times in found.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sequencing", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000", help="activities per generated course")
    parser.add_argument("--shapes", default="flat,deep", help="flat and/or deep (4 levels)")
    parser.add_argument("--rounds", type=int, default=30, help="launches per course (navigations: twice as many)")
    parser.add_argument(
        "--workers",
        default="1",
        help="the server's sequencing_workers, one run each in turn (0: large courses in the request's thread)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    runs = []
    for workers in (int(w) for w in args.workers.split(",")):
        if not args.json:
            print(f"== sequencing_workers {workers}")
        runs.append(run(args, workers))
    if args.json:
        print(json.dumps(runs if len(runs) > 1 else runs[0], indent=2))
    return 0


def run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """One server with `workers` sequencing workers, every course measured, the probes summarised."""
    rng = random.Random(21)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-sequencing-") as tmp:
        data_dir = Path(tmp) / "data"
        key, other_key = create_tenants(data_dir)
        port = free_port()
        url = f"http://{HOST}:{port}"
        env = {**learner_load_env(), "SCORM_APPLIANCE_SEQUENCING_WORKERS": str(workers)}
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(server_command(data_dir, port), stdout=out, stderr=subprocess.DEVNULL, env=env)
        rows: list[Row] = []
        prober: Prober | None = None
        try:
            wait_healthy(url, proc)
            with httpx.Client(base_url=url, trust_env=False, timeout=300.0) as other:
                other.headers["Authorization"] = f"Bearer {other_key}"
                other_path = new_session(other, url, upload(other, small_zip()), "other-learner")
                other.post(f"{other_path}/launch").raise_for_status()
            client = httpx.Client(base_url=url, trust_env=False, timeout=300.0)
            client.headers["Authorization"] = f"Bearer {key}"
            with client:
                probe_package = upload(client, small_zip())
                warm_up(client, url)
                prober = Prober(url, other_path, key, probe_package)
                prober.start()
                time.sleep(2.0)  # idle baseline
                prober.active.set()
                for shape in args.shapes.split(","):
                    for size in (int(s) for s in args.sizes.split(",")):
                        found = measure_course(client, url, proc.pid, shape, size, args.rounds, rng)
                        rows.extend(found)
                        if not args.json:
                            print_rows(found, header=not rows[: -len(found)])
                prober.active.clear()
        finally:
            if prober is not None:
                prober.stop()
            proc.terminate()
            proc.wait(timeout=30)
        inside = server_times(log)
    load_end = os.getloadavg()[0]
    samples = prober.samples if prober else {}
    probes = {name: sorted(ms for _, ms in values) for name, values in samples.items()}
    probes |= {
        f"{name}_inside": sorted(inside[rid] for rid, _ in values if rid in inside) for name, values in samples.items()
    }
    if not args.json:
        print_probes(probes, load_start, load_end)
    return {
        "workers": workers,
        "rows": [asdict(row) for row in rows],
        "probes": {
            n: {"count": len(v), "p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "p99": percentile(v, 0.99)}
            for n, v in probes.items()
        },
        "load": [load_start, load_end],
    }


def warm_up(client: httpx.Client, url: str) -> None:
    """One launch of a course just over the worker threshold before anything is measured: with
    `sequencing_workers` the server then starts its worker pool (about a second of CPU for the forkserver
    and the worker's imports, once per server), which would otherwise land in the first course's rows and
    the probe's tail. With 0 it is one more launch in the request's thread."""
    from appliance.services.learning.sequencing_pool import PROCESS_MIN_ACTIVITIES

    data, _, _ = course_zip("flat", PROCESS_MIN_ACTIVITIES + 1)
    path = new_session(client, url, upload(client, data), "warm-up")
    client.post(f"{path}/launch").raise_for_status()


def print_probes(probes: dict[str, list[float]], load_start: float, load_end: float) -> None:
    print()
    for name, label in (
        ("idle_other", "other tenant's commit, server idle"),
        ("other", "other tenant's commit, during the run"),
        ("other_inside", "  the same, time inside the server"),
        ("idle_same", "same tenant's POST /sessions, server idle"),
        ("same", "same tenant's POST /sessions, during the run"),
        ("same_inside", "  the same, time inside the server"),
    ):
        values = probes.get(name, [])
        print(
            f"{label:<46} n={len(values):<5} p50 {percentile(values, 0.5):6.2f} ms  "
            f"p95 {percentile(values, 0.95):6.2f} ms  p99 {percentile(values, 0.99):6.2f} ms  "
            f"max {(values[-1] if values else float('nan')):7.2f} ms"
        )
    print(f"load average: {load_start:.1f} at the start, {load_end:.1f} at the end, on {os.cpu_count()} CPUs")


def server_times(log: Path) -> dict[str, float]:
    """The server's own time (ms) per request id, from its JSON access lines: from the app receiving the
    request to the last byte sent, so the difference to the client's figure is time spent queued in the
    kernel and in the client (on a loaded machine, mostly waiting for a core)."""
    times: dict[str, float] = {}
    for line in log.read_bytes().splitlines():
        try:
            record = json.loads(line)
            times[record["request_id"]] = float(record["ms"])
        except (ValueError, KeyError, TypeError):
            continue
    return times


def print_rows(rows: list[Row], header: bool) -> None:
    if header:
        print(
            f"{'shape':<6} {'activities':>10} {'op':<10} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8} {'CPU ms':>7} {'err':>4}"
        )
    for r in rows:
        print(
            f"{r.shape:<6} {r.activities:>10} {r.op:<10} {r.count:>4} {r.p50:>8.1f} {r.p95:>8.1f} {r.p99:>8.1f} "
            f"{r.max:>8.1f} {r.cpu_ms:>7.1f} {r.errors:>4}  {r.note}",
            flush=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
