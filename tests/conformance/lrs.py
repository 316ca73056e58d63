"""Runs the ADL LRS conformance test suite (xAPI 1.0.3 and 2.0 batteries) against a real server.

The suite (`../shared/suites/lrs-conformance-test-suite`, Node.js and mocha) is a test tool written by
others: it is used in place and never copied into the project. Each run copies its sources to a temporary
folder; its npm dependencies are installed once into a cache under the system's temp folder, keyed by a
hash of what decides them (package.json, package-lock.json when the suite has one, and the bundled
`local/` packages), so repeated local runs do not reinstall. `bin/console_runner.js` is started with the
server's `/xapi` endpoint and an LRS credential; when the battery ends it writes a JSON log of every
suite and test (`logs/<uuid>.log`, `"Full run log written to …"`), which `parse_log` reads into one
result per test, named by its path of mocha titles.

The runner is bounded: a battery that runs past its deadline is interrupted with SIGINT (the runner
then cancels and still writes its log), and killed if it does not exit soon after.

`python -m tests.conformance.lrs [-x 1.0.3] [-g GREP]` runs a battery against a fresh server by hand and
writes the failure list; the pytest side is tests/conformance/test_lrs_conformance.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conformance.npm_suite import SHARED_SUITES, NpmSuite, SuiteError, run_step, signal_group, stop, tool

REPO = Path(__file__).resolve().parents[2]
SUITE = SHARED_SUITES / "lrs-conformance-test-suite"
VERSIONS = ("1.0.3", "2.0.0")
BATTERY_TIMEOUT = float(os.environ.get("LRS_CTS_TIMEOUT", "1500"))  # seconds for one battery's node process
# Seconds without one more finished test before the battery is interrupted. Mocha gives a test 15 s, but some
# tests lift that (`this.timeout(0)`) and poll the LRS until it shows what they wait for: against an LRS that
# never does, they would poll until the battery's deadline, and every test after them would never run.
STALL_TIMEOUT = float(os.environ.get("LRS_CTS_STALL", "150"))
INTERRUPT_GRACE = 60.0  # seconds between SIGINT (the runner cancels and writes its log) and SIGKILL
POLL_SECONDS = 2.0
INSTALL_TIMEOUT = 600.0
CACHE_PREFIX = "scorm-appliance-lrs-cts-"
SEPARATOR = " > "
HOOK = "(a hook of this suite)"  # the name under which a failed before/after hook is listed
LOG_LINE = re.compile(r"Full run log written to (\S+\.log)")
SUMMARY_LINE = re.compile(rb'^\{"total":\d+,"passed":(\d+),"failed":(\d+)', re.M)  # printed every 2 s


SUITE_FILES = NpmSuite(
    root=SUITE,
    readme_name="lrs-conformance-test-suite",
    cache_prefix=CACHE_PREFIX,
    skipped=lambda parts: parts[0] == "logs",  # the runner's logs
    decisive_dirs=("local",),  # node_modules: the manifest, the lock file if any, the bundled packages
)


# -- the suite's copy and its npm dependencies --------------------------------------------------------


def suite_available() -> bool:
    """Whether the shared folder holds the suite."""
    return (SUITE / "bin" / "console_runner.js").is_file()


def suite_commit() -> str:
    """The suite's upstream commit, as ../shared/suites/README.md records it ("" when it does not)."""
    return SUITE_FILES.commit()


def dependency_key(root: Path = SUITE) -> str:
    """A hash of what decides node_modules: the manifest, the lock file if any, and the bundled packages."""
    return SUITE_FILES.dependency_key(root)


def _install(scratch: Path) -> None:
    """`npm ci` when the suite has a lock file, else `npm install` (no browser download)."""
    npm = tool("npm", "the LRS conformance suite")
    command = [npm, "ci"] if (scratch / "package-lock.json").is_file() else [npm, "install"]
    command += ["--no-audit", "--no-fund", "--loglevel=error"]
    env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"}
    run_step(command, scratch, env, " ".join(command), INSTALL_TIMEOUT)


def prepare_run_dir(dest: Path) -> Path:
    """A fresh copy of the current sources whose node_modules is the cached install (a symlink; installed
    once: tests.conformance.npm_suite)."""
    return SUITE_FILES.run_copy(dest, _install)


# -- the server ----------------------------------------------------------------------------------------


class LrsServer:
    """A real `scorm-appliance serve` on 127.0.0.1 with a fresh data dir; one tenant per battery.

    Each battery gets its own tenant (its own SQLite file), so the 2.0 battery never reads what the 1.0.3
    battery stored; the tenants have no practical rate limit (the suite sends thousands of requests).
    """

    def __init__(self, work: Path) -> None:
        from tests.e2e.conftest import ServerProcess

        self.server = ServerProcess(work / "data")
        self.endpoint = f"{self.server.url}/xapi"
        self.tenants = 0

    def __enter__(self) -> LrsServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()

    def credential(self, version: str, scope: str = "all") -> tuple[str, str]:
        """A new tenant for the battery and an LRS credential issued by the CLI: (key, secret)."""
        self.tenants += 1
        name = f"LRS CTS {version} {self.tenants}"
        self.server.cli("tenants", "create", name)
        self.server.cli("quotas", "set", "--tenant", name, "--rate", "1000000/min")
        cred = self.server.cli(
            "lrs-credentials", "create", "--tenant", name, "--name", f"conformance {version}", "--scope", scope
        )
        return str(cred["key"]), str(cred["secret"])


# -- results ------------------------------------------------------------------------------------------


@dataclass
class TestResult:
    """One mocha test (or a hook that failed in its place): its title path and how it ended."""

    name: str
    status: str  # "passed", "failed", "cancelled", "" (never finished)
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class BatteryRun:
    """One battery's run: every test it reported, the runner's own counts, and how long it took."""

    version: str
    results: dict[str, TestResult]
    total: int  # mocha's count of the tests the battery has (those skipped after a failed hook included)
    seconds: float
    grep: str | None = None
    state: str = "finished"  # the runner's: finished, cancelled (deadline), error
    output_tail: str = ""
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> list[str]:
        return sorted(name for name, r in self.results.items() if r.passed)

    @property
    def failed(self) -> list[TestResult]:
        return [r for _, r in sorted(self.results.items()) if not r.passed]

    @property
    def full(self) -> bool:
        """A run of the whole battery (no grep) that the runner finished."""
        return self.grep is None and self.state == "finished"

    def summary(self) -> str:
        return f"{len(self.passed)} of {self.total} tests pass"


def _walk(node: dict[str, Any], prefix: tuple[str, ...], out: dict[str, TestResult]) -> None:
    title = str(node.get("title") or "").strip()
    path = (*prefix, title) if title else prefix
    children = node.get("tests") or []
    if node.get("error") and (children or not title):  # a hook of this suite failed (the runner puts it here)
        name = SEPARATOR.join((*path, HOOK))
        out[name] = TestResult(name, "failed", " ".join(str(node["error"]).split()))
    if children:
        for child in children:
            _walk(child, path, out)
        return
    if not title:
        return
    name = SEPARATOR.join(path)
    if name in out:  # the same title twice under one parent: keep both, numbered in run order
        n = 2
        while f"{name} #{n}" in out:
            n += 1
        name = f"{name} #{n}"
    out[name] = TestResult(name, str(node.get("status") or ""), " ".join(str(node.get("error") or "").split()))


def parse_log(data: dict[str, Any]) -> dict[str, TestResult]:
    """Every leaf of the runner's log tree (a test, or a hook that failed), by its title path."""
    out: dict[str, TestResult] = {}
    if data.get("log"):
        _walk(data["log"], (), out)
    return out


# -- running a battery --------------------------------------------------------------------------------


def run_battery(
    run_dir: Path, endpoint: str, key: str, secret: str, version: str, *, grep: str | None = None
) -> BatteryRun:
    """Run one battery with `node bin/console_runner.js` in `run_dir`; bounded by BATTERY_TIMEOUT."""
    node = shutil.which("node")
    if node is None:
        raise SuiteError("node is not installed: the LRS conformance suite needs Node.js 20")
    command = [node, "bin/console_runner.js", "-e", endpoint, "-a", "-u", key, "-p", secret, "-x", version]
    if grep:
        command += ["-g", grep]
    out_path = run_dir / f"runner-{version}.out"
    started = time.monotonic()
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=run_dir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            reason = _watch(proc, out_path, started)
            if reason:
                # SIGINT: the runner cancels, still writes its log, and exits
                stop(proc, lambda: proc.send_signal(signal.SIGINT), INTERRUPT_GRACE)
        finally:
            signal_group(proc.pid, signal.SIGKILL)  # the runner's forked mocha process, if anything is left
    seconds = time.monotonic() - started
    output = out_path.read_text("utf-8", "replace")
    log_path = _log_path(run_dir, output)
    if log_path is None:
        raise SuiteError(f"the {version} battery wrote no log (exit {proc.returncode}; {reason}):\n{output[-4000:]}")
    data = json.loads(log_path.read_text("utf-8"))
    state = "cancelled" if reason else str(data.get("state") or "finished")
    total = int((data.get("summary") or {}).get("total") or 0)
    results = parse_log(data)
    run = BatteryRun(version, results, max(total, len(results)), seconds, grep, state, output[-4000:], log_path)
    if reason:
        run.notes.append(reason)
    return run


def _watch(proc: subprocess.Popen[bytes], out_path: Path, started: float) -> str:
    """Wait for the runner; "" when it ended by itself, else why it must be interrupted (deadline, stall)."""
    progress, moved = -1, time.monotonic()
    while True:
        try:
            proc.wait(POLL_SECONDS)
            return ""
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now - started > BATTERY_TIMEOUT:
            return f"interrupted at the battery's deadline ({BATTERY_TIMEOUT:.0f} s)"
        counts = SUMMARY_LINE.findall(_tail(out_path))
        done = sum(map(int, counts[-1])) if counts else -1
        if done != progress:
            progress, moved = done, now
        elif now - moved > STALL_TIMEOUT:
            return f"interrupted: no test finished for {STALL_TIMEOUT:.0f} s (after {max(done, 0)} tests)"


def _tail(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - size))
        return fh.read()


def _log_path(run_dir: Path, output: str) -> Path | None:
    found = LOG_LINE.findall(output)
    if found and Path(found[-1]).is_file():
        return Path(found[-1])
    logs = sorted((run_dir / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


# -- failure lists ------------------------------------------------------------------------------------


def failure_lines(run: BatteryRun) -> list[str]:
    """One line per test that did not pass: its title path and the error (or why it has none)."""
    lines = []
    for result in run.failed:
        why = result.error or (result.status or "did not finish")
        lines.append(f"{result.name} :: {why}")
    return lines


def write_failures(run: BatteryRun, directory: Path) -> Path:
    """Write `lrs-failures-<version>.txt` (a header line, then failure_lines) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"lrs-failures-{run.version}.txt"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    not_run = run.total - len(run.results)
    header = (
        f"# xAPI {run.version} battery, {stamp}: {run.summary()} ({len(run.failed)} failed"
        f"{f', {not_run} not run after a failed hook' if not_run else ''}; {run.seconds:.0f} s; "
        f"runner {run.state}{f'; grep {run.grep!r}' if run.grep else ''})\n"
    )
    header += "".join(f"# {note}\n" for note in run.notes)
    path.write_text(header + "".join(f"{line}\n" for line in failure_lines(run)), "utf-8")
    return path


# -- by hand ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Start a server with a fresh data dir, run the chosen batteries, print counts, write failure lists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-x", "--version", action="append", choices=VERSIONS, help="battery (default: both)")
    parser.add_argument("-g", "--grep", help="only the tests whose title path matches (mocha's --grep)")
    parser.add_argument("--failures", default=tempfile.gettempdir(), help="folder for lrs-failures-*.txt")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lrs-cts-run-"))
    with LrsServer(work) as server:
        for version in args.version or VERSIONS:
            run_dir = prepare_run_dir(work / f"suite-{version}")
            key, secret = server.credential(version)
            run = run_battery(run_dir, server.endpoint, key, secret, version, grep=args.grep)
            path = write_failures(run, Path(args.failures))
            print(f"xAPI {version}: {run.summary()} in {run.seconds:.0f} s ({run.state}); failures: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
