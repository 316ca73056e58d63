"""Upload benchmark: synthetic SCORM packages through a real server, timed from first byte to `ready`.

For each size (default 1 MB, 50 MB and 1 GB) it generates a SCORM 1.2 package of incompressible
files (256 KiB each) in a temp dir, streamed to disk in constant memory; starts `scorm-appliance
serve` on 127.0.0.1 as a fresh subprocess; uploads the ZIP as a streamed body (raw, or multipart with
--multipart) and polls the package every 10 ms until it is ready, while a separate process polls
`GET /api/v1/health` every 10 ms. It prints:

* first byte -> ready, and last byte -> ready (target: 50 MB ready within 1 s of the last byte);
* the server's peak RSS, VmHWM from /proc/<pid>/status (target: under 200 MB for 1 GB);
* the CPU time of the server's event-loop thread during the run;
* health latency p50 / p99 / max during the upload and processing (target: p99 under 50 ms), and the
  p99 of the same polling for 2 s before the upload, with the server idle: the machine's noise floor.

Run: `python -m bench upload [--sizes 1MB,50MB,1GB] [--file-kib 256] [--multipart] [--show-slow MS] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
MiB = 1024 * 1024
SIZES = {"1MB": 1 * MiB, "50MB": 50 * MiB, "1GB": 1024 * MiB}
UPLOAD_CHUNK = 1 * MiB
HEALTH_INTERVAL = 0.010
IDLE_SECONDS = 2.0  # health is first polled this long with the server idle: the machine's noise floor
STATUS_INTERVAL = 0.010

MANIFEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="bench.upload" version="1" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
  <metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
  <organizations default="org1"><organization identifier="org1"><title>Upload benchmark</title>
    <item identifier="item1" identifierref="res1"><title>Lesson</title></item>
  </organization></organizations>
  <resources><resource identifier="res1" type="webcontent" adlcp:scormtype="sco" href="index.html">
    <file href="index.html"/></resource></resources>
</manifest>
"""


@dataclass
class Result:
    """One size's figures."""

    size: str
    zip_bytes: int
    files: int
    upload_seconds: float
    first_byte_to_ready: float
    last_byte_to_ready: float
    peak_rss_mb: float
    loop_cpu_seconds: float
    health_samples: int
    health_p50_ms: float
    health_p99_ms: float
    health_max_ms: float
    idle_p99_ms: float


def parse_size(text: str) -> tuple[str, int]:
    label = text.strip().upper().replace(" ", "")
    if label in SIZES:
        return label, SIZES[label]
    units = {"KB": 1024, "MB": MiB, "GB": 1024 * MiB}
    for unit, factor in units.items():
        if label.endswith(unit):
            return label, int(float(label[: -len(unit)]) * factor)
    raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 1MB, 50MB, 1GB)")


def make_package(path: Path, total_bytes: int, file_bytes: int) -> int:
    """Write a ZIP of about `total_bytes` of random content in files of `file_bytes`; return the file count.

    Stored (not deflated), like the media that makes real packages big; written in 1 MiB pieces.
    """
    files = max(1, total_bytes // file_bytes)
    piece = min(file_bytes, MiB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("imsmanifest.xml", MANIFEST)
        archive.writestr("index.html", b"<!doctype html><title>bench</title><p>lesson</p>")
        for n in range(files):
            with archive.open(f"media/{n // 100:04d}/asset-{n:06d}.bin", "w") as member:
                remaining = file_bytes
                while remaining:
                    size = min(piece, remaining)
                    member.write(os.urandom(size))
                    remaining -= size
    return files + 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def create_tenant_key(data_dir: Path) -> str:
    """An enterprise tenant (no storage cap, high rate limit) and its API key, made before the server starts."""
    from appliance.config import Config
    from appliance.instance import Instance
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant

    inst = Instance(Config(data_dir=data_dir))
    try:
        tenant = create_tenant(inst, "Bench", "enterprise")
        _, secret = create_key(inst, tenant.id, "bench")
    finally:
        inst.close()
    return secret


def learner_load_env() -> dict[str, str]:
    """The server's environment for a learner load: JSON access lines (read for in-server times), and the
    learner limits lifted. Each simulated learner commits as fast as the load tool can send: far above
    the per-session abuse limit that protects a real server (learner_requests_per_minute), and one
    tenant's learners together above its cap (tenant_learner_requests_per_minute)."""
    return {
        **os.environ,
        "SCORM_APPLIANCE_LEARNER_REQUESTS_PER_MINUTE": "100000000",
        "SCORM_APPLIANCE_TENANT_LEARNER_REQUESTS_PER_MINUTE": "100000000",
        "SCORM_APPLIANCE_LOG_FORMAT": "json",
    }


def server_command(data_dir: Path, port: int) -> list[str]:
    script = Path(sys.executable).parent / "scorm-appliance"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "appliance"]
    return [*base, "serve", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            try:
                if client.get(f"{url}/api/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"no healthy server at {url}")


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process's main thread, which runs the server's event loop."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def poll_health(url: str, ready: Any, active: Any, done: Any, results: Any) -> None:
    """GET /api/v1/health every 10 ms on a keep-alive connection, recording latencies while `active`.

    Runs in its own process, so the benchmark's own upload thread cannot hold it up (one GIL each).
    """
    samples: list[tuple[float, float]] = []  # (wall-clock start, latency)
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        while not done.is_set():
            started = time.perf_counter()
            response = client.get(f"{url}/api/v1/health")
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"health answered {response.status_code}")
            ready.set()
            if active.is_set():
                samples.append((time.time(), elapsed))
            time.sleep(max(0.0, HEALTH_INTERVAL - elapsed))
    results.put(samples)


class HealthPoller:
    """The health polling process, with `active` (record now) and `done` (stop) flags."""

    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready = ctx.Event()
        self.active = ctx.Event()
        self.done = ctx.Event()
        self._results = ctx.Queue()
        args = (url, self.ready, self.active, self.done, self._results)
        self._proc = ctx.Process(target=poll_health, args=args, daemon=True)
        self.samples: list[tuple[float, float]] = []

    @property
    def latencies(self) -> list[float]:
        return [latency for _, latency in self.samples]

    def start(self) -> None:
        """Start polling and return once the first answer came back (the process takes a while to start)."""
        self._proc.start()
        if not self.ready.wait(30):
            raise RuntimeError("the health poller did not start")

    def stop(self) -> None:
        self.done.set()
        if self._proc.pid is None:  # never started
            return
        if self._proc.is_alive() or self._proc.exitcode == 0:
            try:
                self.samples = self._results.get(timeout=30)
            except queue.Empty:
                pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[min(998, int(q * 1000) - 1)]


BOUNDARY = "bench-upload-boundary-7f3a9c"


def multipart_parts(title: str) -> tuple[bytes, bytes]:
    """What goes before and after the ZIP in a multipart/form-data body with `title` and `file`."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="package.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def run_one(
    label: str, total_bytes: int, file_bytes: int, work: Path, multipart: bool = False, show_slow_ms: float = 0
) -> Result:
    data_dir = work / f"data-{label}"
    zip_path = work / f"package-{label}.zip"
    files = make_package(zip_path, total_bytes, file_bytes)
    zip_bytes = zip_path.stat().st_size
    key = create_tenant_key(data_dir)
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = (work / f"server-{label}.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORM_APPLIANCE_")}
    env["SCORM_APPLIANCE_LOG_LEVEL"] = "warning"
    proc = subprocess.Popen(server_command(data_dir, port), stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    poller = HealthPoller(url)
    try:
        wait_healthy(url, proc)
        poller.start()
        poller.active.set()
        time.sleep(IDLE_SECONDS)
        loop_cpu_before = main_thread_cpu_seconds(proc.pid)
        marks: dict[str, float] = {}

        head, tail = multipart_parts(f"Benchmark {label}") if multipart else (b"", b"")

        def body() -> Iterator[bytes]:
            marks["first"] = time.perf_counter()
            marks["first_wall"] = time.time()
            if head:
                yield head
            with zip_path.open("rb") as fh:
                while chunk := fh.read(UPLOAD_CHUNK):
                    yield chunk
            if tail:
                yield tail
            marks["last"] = time.perf_counter()
            marks["last_wall"] = time.time()

        headers = {"Authorization": f"Bearer {key}"}
        content_type = f"multipart/form-data; boundary={BOUNDARY}" if multipart else "application/zip"
        length = len(head) + zip_bytes + len(tail)
        upload_headers = {**headers, "Content-Type": content_type, "Content-Length": str(length)}
        with httpx.Client(base_url=url, trust_env=False, timeout=600.0) as http:
            created = http.post("/api/v1/packages", content=body(), headers=upload_headers)
            if created.status_code != 202:
                raise RuntimeError(f"upload answered {created.status_code}: {created.text}")
            package_id = created.json()["id"]
            while True:
                package = http.get(f"/api/v1/packages/{package_id}", headers=headers).json()
                if package["status"] != "processing":
                    break
                time.sleep(STATUS_INTERVAL)
            ready = time.perf_counter()
            poller.active.clear()
        if package["status"] != "ready":
            raise RuntimeError(f"the package failed: {package['error']}")
        if package["file_count"] != files:
            raise RuntimeError(f"expected {files} files, the package has {package['file_count']}")
        rss = peak_rss_mb(proc.pid)
        loop_cpu = main_thread_cpu_seconds(proc.pid) - loop_cpu_before
    finally:
        poller.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        zip_path.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)
    idle = [latency for at, latency in poller.samples if at < marks["first_wall"]]
    poller.samples = [(at, latency) for at, latency in poller.samples if at >= marks["first_wall"]]
    lat = poller.latencies
    if show_slow_ms:
        for at, latency in poller.samples:
            if latency * 1000 >= show_slow_ms:
                phase = "upload" if at < marks["last_wall"] else "processing"
                print(
                    f"   slow health: {latency * 1000:6.1f} ms at +{at - marks['first_wall']:.2f} s ({phase})",
                    file=sys.stderr,
                )
    return Result(
        size=label,
        zip_bytes=zip_bytes,
        files=files,
        upload_seconds=marks["last"] - marks["first"],
        first_byte_to_ready=ready - marks["first"],
        last_byte_to_ready=ready - marks["last"],
        peak_rss_mb=rss,
        loop_cpu_seconds=loop_cpu,
        health_samples=len(lat),
        health_p50_ms=percentile(lat, 0.50) * 1000,
        health_p99_ms=percentile(lat, 0.99) * 1000,
        health_max_ms=max(lat) * 1000 if lat else float("nan"),
        idle_p99_ms=percentile(idle, 0.99) * 1000,
    )


def print_table(results: list[Result]) -> None:
    header = (
        f"{'size':>6} {'files':>6} {'upload s':>9} {'first->ready s':>15} {'last->ready s':>14} "
        f"{'peak RSS MB':>12} {'loop CPU s':>11} {'health n':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'idle p99':>9}"
    )
    print(header)
    for r in results:
        print(
            f"{r.size:>6} {r.files:>6} {r.upload_seconds:>9.2f} {r.first_byte_to_ready:>15.2f} "
            f"{r.last_byte_to_ready:>14.3f} {r.peak_rss_mb:>12.1f} {r.loop_cpu_seconds:>11.2f} {r.health_samples:>9} "
            f"{r.health_p50_ms:>7.1f} {r.health_p99_ms:>7.1f} {r.health_max_ms:>7.1f} {r.idle_p99_ms:>9.1f}"
        )
    checks = []
    for r in results:
        if r.size == "50MB":
            checks.append(
                f"50 MB ready within 1 s of the last byte: {r.last_byte_to_ready:.3f} s "
                f"{'OK' if r.last_byte_to_ready < 1 else 'MISSED'}"
            )
        if r.size == "1GB":
            checks.append(
                f"peak RSS under 200 MB for 1 GB: {r.peak_rss_mb:.1f} MB {'OK' if r.peak_rss_mb < 200 else 'MISSED'}"
            )
        checks.append(
            f"{r.size}: health p99 under 50 ms: {r.health_p99_ms:.1f} ms {'OK' if r.health_p99_ms < 50 else 'MISSED'}"
        )
    print("\n".join(checks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench upload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1MB,50MB,1GB", help="comma-separated sizes (default: 1MB,50MB,1GB)")
    parser.add_argument("--file-kib", type=int, default=256, help="size of each content file in KiB (default 256)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to put packages and data (default: a temp dir)"
    )
    parser.add_argument("--multipart", action="store_true", help="send multipart/form-data instead of a raw body")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--show-slow", type=float, default=0, metavar="MS", help="list health answers slower than MS")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-upload-", dir=args.workdir))
    results = []
    try:
        for label, total in sizes:
            print(f"-- {label}: generating, uploading, processing ...", file=sys.stderr, flush=True)
            results.append(run_one(label, total, args.file_kib * 1024, work, args.multipart, args.show_slow))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
