"""`python -m bench runtime_instructions`: instructions per run-time commit under valgrind's callgrind.

`bench runtime`'s wall-clock figures move by ±30 % on a machine shared with other work; instruction
counts do not. This counts them for `bench runtime`'s commit body (eight elements, the same answered
interaction) two ways, with callgrind's instrumentation switched on (`callgrind_control -i on`) only
around the measured commits, so start-up and set-up are not counted:

* in process (the default): `--commits` commits through `runtime.commit` after as many warm-up commits,
  in a real app on real SQLite files without its scheduler — the run-time service's own cost, the
  figure to compare when the service's code changes;
* `--serve-connections N`: a real `scorm-appliance serve` under callgrind, driven by wrk at N
  connections for `--seconds` (after 5 s uninstrumented) — everything the process does, including
  what it does meanwhile (the scheduler, idle loop rounds), which grows with the wall-clock time a
  commit takes under valgrind: compare the lowest of a few runs.

Needs valgrind (Debian's `valgrind`; `callgrind_control` comes with it) and, for `--serve-connections`,
wrk. Compare two revisions by running this from a worktree of each (`PYTHONPATH=<worktree>`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

API = "/api/v1"


def _total(dump: Path) -> int:
    """The instructions of one callgrind dump (its `summary:` line)."""
    match = re.search(r"^summary:\s+(\d+)", dump.read_text(errors="replace"), re.M)
    if match is None:
        raise RuntimeError(f"no summary in {dump}")
    return int(match.group(1))


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def in_process_child(commits: int) -> None:
    """Runs under valgrind: set up, warm up, then `commits` measured commits between instrumentation on/off."""
    from litestar.testing import TestClient

    from appliance.config import Config
    from appliance.faces.app import create_app
    from appliance.faces.cli.serve import settle_garbage_collector
    from appliance.services.learning import runtime
    from appliance.services.learning.player_requests import CommitIn
    from appliance.services.tenancy.apikeys import create_key
    from appliance.services.tenancy.tenants import create_tenant
    from bench.runtime import package_zip
    from bench.scorm_xapi_cpu import bench_changes

    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
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
            body = {"package_id": created.json()["id"], "learner": {"id": "bench"}, "resume": False}
            session_id = client.post(f"{API}/sessions", json=body, headers=headers).json()["id"]
            runtime.launch(inst, tenant.id, session_id)
            bodies = [
                CommitIn(client_id="bench", seq=seq, activity="item", changes=bench_changes(seq, 0))
                for seq in range(1, 2 * commits + 1)
            ]
            for commit in bodies[:commits]:
                runtime.commit(inst, tenant.id, session_id, commit)
            _control(os.getpid(), "-i", "on")
            for commit in bodies[commits:]:
                runtime.commit(inst, tenant.id, session_id, commit)
            _control(os.getpid(), "-d")
            _control(os.getpid(), "-i", "off")


def in_process(commits: int) -> float:
    """Instructions per commit, in process."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as tmp:
        out = Path(tmp) / "cg.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.runtime_instructions",
                "--child",
                str(commits),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return _total(Path(f"{out}.1")) / commits


def served(connections: int, seconds: int) -> tuple[float, float]:
    """(commits, instructions per commit) of a `serve` under callgrind driven by wrk."""
    from bench.runtime import prepare, run_wrk
    from bench.upload import HOST, create_tenant_key, free_port, learner_load_env, wait_healthy

    with tempfile.TemporaryDirectory(prefix="bench-callgrind-serve-") as tmp:
        work = Path(tmp)
        data = work / "data"
        key = create_tenant_key(data)
        port = free_port()
        url = f"http://{HOST}:{port}"
        out = work / "cg.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "appliance",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=learner_load_env())
        try:
            wait_healthy(url, proc, timeout=600)
            tokens = prepare(url, key, connections)
            run_wrk(url, tokens, 5, work)  # warm-up, not instrumented
            _control(proc.pid, "-i", "on")
            figures = run_wrk(url, tokens, seconds, work)
            _control(proc.pid, "-d")
            _control(proc.pid, "-i", "off")
            return figures["requests"], _total(Path(f"{out}.1")) / figures["requests"]
        finally:
            proc.terminate()
            proc.wait(timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench runtime_instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1000, help="measured commits in process (as many warm up)")
    parser.add_argument("--serve-connections", type=int, default=0, help="also measure `serve` under wrk (0: no)")
    parser.add_argument("--seconds", type=int, default=30, help="wrk duration for --serve-connections")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        in_process_child(args.child)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian package `valgrind`); skipping the instruction counts")
        return 0
    print(f"in process: {in_process(args.commits):,.0f} instructions per commit ({args.commits} commits)", flush=True)
    if args.serve_connections:
        if shutil.which("wrk") is None:
            print("wrk is not installed (Debian package `wrk`); skipping the serve figure")
            return 0
        commits, per_commit = served(args.serve_connections, args.seconds)
        print(
            f"serve, {args.serve_connections} connection(s), {args.seconds} s: "
            f"{per_commit:,.0f} instructions per commit ({commits:.0f} commits)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
