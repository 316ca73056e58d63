"""Runtime benchmark: commits per second and commit latency with full validation, via wrk.

Starts a real `scorm-appliance serve` on 127.0.0.1, uploads a small SCORM 1.2 package, creates one
session per simulated learner and launches it, then drives `POST /player/{token}/commit` with wrk
(one wrk thread and connection per learner, each with its own session, client id and sequence). Every
commit carries several elements that go through the full server-side data-model check. Prints commits/s
and p50/p99 latency for 1, 10 and 50 learners, and the player page's server time.

    python -m bench runtime [--learners 1,10,50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

from bench.upload import HOST, create_tenant_key, free_port, learner_load_env, server_command, wait_healthy

MANIFEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="bench.runtime" version="1" xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
  xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2">
  <metadata><schema>ADL SCORM</schema><schemaversion>1.2</schemaversion></metadata>
  <organizations default="org"><organization identifier="org"><title>Bench</title>
    <item identifier="item" identifierref="res"><title>Lesson</title>
      <adlcp:masteryscore>80</adlcp:masteryscore></item>
  </organization></organizations>
  <resources><resource identifier="res" type="webcontent" adlcp:scormtype="sco" href="index.html">
    <file href="index.html"/></resource></resources>
</manifest>"""

# Per-thread state in wrk's Lua: each thread is one learner with its own token and sequence.
LUA = r"""
local tokens = {%(tokens)s}
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("token", tokens[counter])
  thread:set("client", "wrk-" .. counter)
end

function init(args)
  seq = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  seq = seq + 1
  local body = string.format(
    '{"client_id":"%%s","seq":%%d,"activity":"item","version":null,"changes":{' ..
    '"cmi.core.lesson_location":"page-%%d","cmi.suspend_data":"s=%%d;visited=1,2,3,4,5",' ..
    '"cmi.core.score.raw":"%%d","cmi.core.lesson_status":"incomplete",' ..
    '"cmi.interactions.0.id":"q1","cmi.interactions.0.type":"choice",' ..
    '"cmi.interactions.0.student_response":"a","cmi.interactions.0.result":"correct"}}',
    client, seq, seq %% 50, seq, seq %% 100)
  return wrk.format(nil, "/player/" .. token .. "/commit", nil, body)
end
"""


def package_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", MANIFEST)
        archive.writestr("index.html", b"<html><body>bench</body></html>")
    return buffer.getvalue()


def prepare(url: str, key: str, learners: int) -> list[str]:
    """A ready package and `learners` launched sessions; returns their player tokens."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, trust_env=False, timeout=30.0) as client:
        created = client.post("/api/v1/packages", content=package_zip(), headers={"Content-Type": "application/zip"})
        created.raise_for_status()
        package_id = created.json()["id"]
        for _ in range(200):
            if client.get(f"/api/v1/packages/{package_id}").json()["status"] == "ready":
                break
            time.sleep(0.05)
        tokens = []
        for n in range(learners):
            session = client.post(
                "/api/v1/sessions", json={"package_id": package_id, "learner": {"id": f"learner-{n}"}, "resume": False}
            )
            session.raise_for_status()
            path = session.json()["launch_url"].split(url, 1)[1]
            client.post(f"{path}/launch").raise_for_status()
            tokens.append(path.split("/")[2])
    return tokens


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, tokens: list[str], seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"commit-{len(tokens)}.lua"
    script.write_text(LUA % {"tokens": ", ".join(f'"{t}"' for t in tokens)})
    return wrk(url, script, len(tokens), seconds)


def wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    """wrk with one thread per connection for `seconds`, parsed."""
    n = str(connections)
    out = subprocess.run(
        ["wrk", "-t", n, "-c", n, "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    return parse_wrk(out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s, non-2xx count and latency percentiles (ms) from wrk --latency output."""
    result: dict[str, float] = {"non2xx": 0.0}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        result[f"p{pct}"] = float(value) * _UNITS[unit]
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    result["rps"] = float(match.group(1)) if match else float("nan")
    total = re.search(r"(\d+) requests in", text)
    result["requests"] = float(total.group(1)) if total else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if bad:
        result["non2xx"] = float(bad.group(1))
    return result


REFERENCE_LUA = r"""
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("key", "k" .. counter)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"cmi.core.lesson_location":"page-1"}'
end
function request()
  return wrk.format(nil, "/write/" .. key)
end
"""


def reference(levels: list[int], seconds: int, workdir: Path) -> None:
    """The yardstick of the issue on this machine now: a bare Litestar route doing one SQLite write."""
    port = free_port()
    env = {**os.environ, "BENCH_REFERENCE_DB": str(workdir / "reference.db")}
    command = [sys.executable, "-m", "uvicorn", "bench._reference:app", "--host", HOST, "--port", str(port)]
    command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(command, env=env, cwd=Path(__file__).parent.parent)
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(f"{url}/write/probe", json={}, trust_env=False).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        script = workdir / "reference.lua"
        script.write_text(REFERENCE_LUA)
        for n in levels:
            figures = wrk(url, script, n, seconds)
            print(
                f"{n:>8}  {figures['rps']:>10.0f}  {figures.get('p50', float('nan')):>8.2f}  "
                f"{figures.get('p99', float('nan')):>8.2f}  {figures['non2xx']:>6.0f}   (reference)",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def handled_ms(log: Path, offset: int) -> tuple[list[float], int]:
    """The server's own handling times (ms) of the commits logged after byte `offset` of its JSON log,
    and the new offset: the access line times a request from the app receiving it to the last byte
    sent, so the gap to wrk's figures is time spent queued in the kernel, the event loop and wrk."""
    with log.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    times = []
    for line in data.splitlines():
        if b"/commit" in line:
            try:
                times.append(float(json.loads(line)["ms"]))
            except (ValueError, KeyError):
                continue
    return sorted(times), offset + len(data)


def percentile(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct))] if values else float("nan")


def player_page_ms(url: str, token: str, rounds: int = 200) -> tuple[float, float]:
    """p50 and p99 of GET /player/{token} (the page's server time, on one keep-alive connection)."""
    times = []
    with httpx.Client(base_url=url, trust_env=False) as client:
        for _ in range(rounds):
            start = time.perf_counter()
            client.get(f"/player/{token}").raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="1,10,50", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per level")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the bare Litestar route + one SQLite write yardstick"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian package `wrk`); skipping the runtime benchmark")
        return 0
    levels = [int(x) for x in args.learners.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "data"
        key = create_tenant_key(data_dir)
        port = free_port()
        url = f"http://{HOST}:{port}"
        env = learner_load_env()
        log = workdir / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(server_command(data_dir, port), stdout=out, stderr=subprocess.DEVNULL, env=env)
        try:
            wait_healthy(url, proc)
            tokens = prepare(url, key, max(levels))
            header = f"{'learners':>8}  {'commits/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}  {'errors':>6}"
            print(f"{header}  {'server CPU ms/commit':>20}  {'in-server p50/p99 ms':>20}")
            offset = log.stat().st_size
            for n in levels:
                before = cpu_seconds(proc.pid)
                figures = run_wrk(url, tokens[:n], args.seconds, workdir)
                cpu_ms = (cpu_seconds(proc.pid) - before) / figures["requests"] * 1000
                time.sleep(0.2)  # the last access lines
                handled, offset = handled_ms(log, offset)
                inside = f"{percentile(handled, 0.5):.2f} / {percentile(handled, 0.99):.2f}"
                print(
                    f"{n:>8}  {figures['rps']:>10.0f}  {figures.get('p50', float('nan')):>8.2f}  "
                    f"{figures.get('p99', float('nan')):>8.2f}  {figures['non2xx']:>6.0f}  {cpu_ms:>20.3f}  "
                    f"{inside:>20}",
                    flush=True,
                )
            if not args.no_reference:
                reference(levels, args.seconds, workdir)
            print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            p50, p99 = player_page_ms(url, tokens[0])
            print(f"player page GET /player/{{token}}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
