"""Runs CATAPULT's cmi5 LMS test suite (Jest + Puppeteer) against a real server, through the project's adapter.

The suite (`../shared/suites/catapult/lts`) is a test tool written by others: it is used in place and never
copied into the project. Its npm dependencies are installed once, with `PUPPETEER_SKIP_DOWNLOAD=1` (no
browser download: Puppeteer drives Debian's /usr/bin/chromium), into a cache under the system's temp
folder keyed by a hash of what decides them (package.json, package-lock.json, and the test packages'
sources and webpack config, since the cache also holds the packages `npx webpack` builds into
`pkg/dist`). Each run makes a fresh copy of the suite's sources under a temp folder, links the cached
`node_modules` and `pkg/dist` into it, and copies the project's adapter (tests/conformance/cmi5/
lms.custom.js) in as `lib/lms.custom.js`; the adapter drives the appliance's HTTP API only.

Jest runs bounded (a deadline, then SIGTERM and SIGKILL to its process group) with jest-junit writing the
JUnit XML to `var/`, which `parse_junit` reads into one result per test, named `<file> > <describe …> >
<test>` (the file being `package` or `runtime`).

`python -m tests.conformance.cmi5_lts [-t PATTERN] [--file package]` runs the suite against a fresh server
by hand and writes the failure list (/tmp/cmi5-lts-failures.txt); the pytest side is
tests/conformance/test_cmi5_conformance.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from tests.conformance.npm_suite import SHARED_SUITES, NpmSuite, SuiteError, run_step, signal_group, stop, tool

REPO = Path(__file__).resolve().parents[2]
SUITE = SHARED_SUITES / "catapult" / "lts"
ADAPTER_DIR = Path(__file__).resolve().parent / "cmi5"
ADAPTER = ADAPTER_DIR / "lms.custom.js"
PUPPETEER_CONFIG = ADAPTER_DIR / "jest-puppeteer.config.js"
CHROMIUM = Path("/usr/bin/chromium")
FILES = ("package", "runtime")  # the suite's test files (__tests__/<name>.js), its two groups
RUN_TIMEOUT = float(os.environ.get("CMI5_LTS_TIMEOUT", "900"))  # seconds for the whole Jest run
TEST_TIMEOUT_MS = int(os.environ.get("CMI5_LTS_TEST_TIMEOUT_MS", "90000"))  # one Jest test (default 5 s)
INSTALL_TIMEOUT = 900.0
KILL_GRACE = 20.0
CACHE_PREFIX = "scorm-appliance-cmi5-lts-"
SEPARATOR = " > "
DEFAULT_FAILURES = Path(tempfile.gettempdir()) / "cmi5-lts-failures.txt"


SUITE_FILES = NpmSuite(
    root=SUITE,
    readme_name="CATAPULT",
    cache_prefix=CACHE_PREFIX,
    # not the suite's own: its results, a local .env, the packages webpack builds, the adapter copied in
    skipped=lambda parts: (
        parts[0] == "var" or parts == (".env",) or parts[:2] == ("pkg", "dist") or parts == ("lib", "lms.custom.js")
    ),
    # node_modules and pkg/dist: the manifest, the lock file, the test packages' sources, webpack's config
    decisive_files=("package.json", "package-lock.json", "pkg/webpack.config.js"),
    decisive_dirs=("pkg/src",),
)


# -- the suite's copy, its npm dependencies and its built packages -----------------------------------


def suite_available() -> bool:
    """Whether the shared folder holds the suite."""
    return (SUITE / "__tests__" / "runtime.js").is_file() and (SUITE / "package-lock.json").is_file()


def suite_commit() -> str:
    """CATAPULT's upstream commit, as ../shared/suites/README.md records it ("" when it does not)."""
    return SUITE_FILES.commit()


def dependency_key(root: Path = SUITE) -> str:
    """A hash of what decides node_modules and pkg/dist: manifest, lock file, package sources, webpack config."""
    return SUITE_FILES.dependency_key(root)


def _install(scratch: Path) -> None:
    """`npm ci` (no browser download), then `npx webpack` in pkg/ (webpack 5.45 hashes with MD4, which
    Node 20's OpenSSL 3 only offers with --openssl-legacy-provider)."""
    what = "CATAPULT's LMS test suite"
    npm, node = tool("npm", what), tool("node", what)
    env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1", "PUPPETEER_SKIP_CHROMIUM_DOWNLOAD": "1"}
    run_step([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], scratch, env, "npm ci", INSTALL_TIMEOUT)
    webpack = scratch / "node_modules" / "webpack-cli" / "bin" / "cli.js"
    build_env = {**env, "NODE_OPTIONS": "--openssl-legacy-provider"}
    run_step([node, str(webpack)], scratch / "pkg", build_env, "npx webpack (pkg)", INSTALL_TIMEOUT)


def prepare_run_dir(dest: Path) -> Path:
    """A fresh copy of the sources, the cached node_modules and pkg/dist linked in (installed once:
    tests.conformance.npm_suite), the adapter copied in."""
    SUITE_FILES.run_copy(dest, _install, links=("node_modules", "pkg/dist"))
    shutil.copyfile(ADAPTER, dest / "lib" / "lms.custom.js")
    return dest


# -- the server ----------------------------------------------------------------------------------------


class LtsServer:
    """A real `scorm-appliance serve` on 127.0.0.1 with a fresh data dir and one tenant for the suite.

    The tenant has no practical rate limit; its admin API key is what the adapter uses (it creates its
    own LRS credential through the API).
    """

    def __init__(self, work: Path) -> None:
        from tests.e2e.conftest import ServerProcess

        self.server = ServerProcess(work / "data")
        self.url = self.server.url
        self.key = ""

    def __enter__(self) -> LtsServer:
        self.server.start()
        name = "CATAPULT LTS"
        self.server.cli("tenants", "create", name)
        self.server.cli("quotas", "set", "--tenant", name, "--rate", "1000000/min")
        self.key = str(self.server.cli("keys", "create", "--tenant", name, "--name", "cmi5 lts")["key"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()


# -- results ------------------------------------------------------------------------------------------


@dataclass
class TestResult:
    """One Jest test: its name (file > describes > title) and how it ended."""

    name: str
    status: str  # "passed", "failed", "skipped"
    error: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def group(self) -> str:
        """The test file: `package` or `runtime`."""
        return self.name.split(SEPARATOR, 1)[0]

    @property
    def package(self) -> str:
        """The first describe block (which names the test package)."""
        parts = self.name.split(SEPARATOR)
        return parts[1] if len(parts) > 2 else parts[0]


@dataclass
class LtsRun:
    """One run of the suite: every test the JUnit XML lists, how long it took, how Jest ended."""

    results: dict[str, TestResult]
    seconds: float
    files: tuple[str, ...] = FILES
    pattern: str | None = None
    state: str = "finished"  # or "interrupted" (deadline), "no-results"
    exit_code: int | None = None
    output_tail: str = ""
    notes: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # what the test files logged (parse_console)

    @property
    def passed(self) -> list[str]:
        return sorted(name for name, r in self.results.items() if r.passed)

    @property
    def failed(self) -> list[TestResult]:
        return [r for _, r in sorted(self.results.items()) if r.status == "failed"]

    @property
    def full(self) -> bool:
        """A run of both files, every test, that Jest finished."""
        return self.pattern is None and self.files == FILES and self.state == "finished"

    def counts(self, group: str | None = None) -> Counter[str]:
        return Counter(r.status for r in self.results.values() if group is None or r.group == group)

    def summary(self) -> str:
        return f"{len(self.passed)} of {len(self.results)} tests pass"


def _message(element: etree._Element) -> str:
    """A failure's message without its stack trace (the lines from the first `    at …` on), folded."""
    raw = "".join(element.itertext())
    return " ".join(re.split(r"\n\s+at ", raw, maxsplit=1)[0].split())


CONSOLE_HEAD = re.compile(r"^\s+console\.(?:log|warn|error|info)$")
CONSOLE_END = re.compile(r"^\s+at \S")


def parse_console(output: str) -> list[str]:
    """What the test files logged, from Jest's output (its `console.log` blocks; verbose Jest gives the
    JUnit reporter none). The runtime tests log, for each AU run that did not succeed, the requirement the
    AU checked and its message ("9.3.0.0-1 - …: …"), which the failures alone do not say.
    """
    lines: list[str] = []
    inside = False
    for line in output.splitlines():
        if CONSOLE_HEAD.match(line):
            inside = True
        elif inside and CONSOLE_END.match(line):
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def parse_junit(xml: bytes) -> dict[str, TestResult]:
    """Every <testcase> of jest-junit's XML, by `<file> > <describe …> > <title>` (repeats numbered #2, …).

    The run sets the templates so that `classname` is the describe path joined by SEPARATOR and `name`
    the test's title, and the suite name the test file's name.
    """
    root = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    out: dict[str, TestResult] = {}
    for suite in root.iter("testsuite"):
        group = Path(str(suite.get("name") or "")).stem or "suite"
        for case in suite.iter("testcase"):
            path = [group, str(case.get("classname") or "").strip(), str(case.get("name") or "").strip()]
            name = SEPARATOR.join(p for p in path if p)
            if name in out:
                n = 2
                while f"{name} #{n}" in out:
                    n += 1
                name = f"{name} #{n}"
            problems = case.findall("failure") + case.findall("error")
            status = "failed" if problems else "skipped" if case.find("skipped") is not None else "passed"
            error = " | ".join(_message(p)[:2000] for p in problems)
            out[name] = TestResult(name, status, error, float(case.get("time") or 0))
    return out


# -- running the suite --------------------------------------------------------------------------------


def jest_env(server_url: str, key: str) -> dict[str, str]:
    """The environment of the Jest run: the adapter's settings, Debian's Chromium, the JUnit templates."""
    return {
        **os.environ,
        "CATAPULT_LMS": "./lib/lms.custom.js",
        "APPLIANCE_URL": server_url,
        "APPLIANCE_API_KEY": key,
        "JEST_PUPPETEER_CONFIG": str(PUPPETEER_CONFIG),
        "PUPPETEER_SKIP_DOWNLOAD": "1",
        "PUPPETEER_EXECUTABLE_PATH": str(CHROMIUM),
        "CATAPULT_CHROMIUM": str(CHROMIUM),
        "JEST_JUNIT_SUITE_NAME": "{filename}",
        "JEST_JUNIT_CLASSNAME": "{classname}",
        "JEST_JUNIT_TITLE": "{title}",
        "JEST_JUNIT_ANCESTOR_SEPARATOR": SEPARATOR,
        "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "CI": "true",
    }


def run_suite(
    run_dir: Path, server_url: str, key: str, *, files: tuple[str, ...] = FILES, pattern: str | None = None
) -> LtsRun:
    """Run Jest on the chosen test files in `run_dir` (in band: one page, one AU at a time), bounded."""
    node = shutil.which("node")
    if node is None:
        raise SuiteError("node is not installed: CATAPULT's LMS test suite needs Node.js 20")
    if not CHROMIUM.exists():
        raise SuiteError(f"{CHROMIUM} is missing: install Debian's chromium package")
    jest = run_dir / "node_modules" / "jest" / "bin" / "jest.js"
    command = [node, str(jest), "--ci", "--runInBand", "--forceExit", f"--testTimeout={TEST_TIMEOUT_MS}"]
    command += ["--testPathPattern", "__tests__/(" + "|".join(re.escape(f) for f in files) + r")\.js$"]
    if pattern:
        command += ["-t", pattern]
    out_path = run_dir / "jest.out"
    started = time.monotonic()
    reason = ""
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=run_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=jest_env(server_url, key),
            start_new_session=True,
        )
        try:
            proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            reason = f"interrupted at the run's deadline ({RUN_TIMEOUT:.0f} s)"
            stop(proc, lambda: signal_group(proc.pid, signal.SIGTERM), KILL_GRACE)
        finally:
            signal_group(proc.pid, signal.SIGKILL)  # Chromium and anything else Jest left behind
    seconds = time.monotonic() - started
    output = out_path.read_text("utf-8", "replace")
    results: dict[str, TestResult] = {}
    for xml in sorted((run_dir / "var").glob("*.xml"), key=lambda p: p.stat().st_mtime):
        results.update(parse_junit(xml.read_bytes()))
    state = "interrupted" if reason else "finished" if results else "no-results"
    run = LtsRun(
        results, seconds, files, pattern, state, proc.returncode, output[-6000:], console=parse_console(output)
    )
    if reason:
        run.notes.append(reason)
    return run


# -- failure lists ------------------------------------------------------------------------------------


def failure_lines(run: LtsRun) -> list[str]:
    """One line per test that failed: its name and Jest's message (first lines, whitespace folded)."""
    return [f"{r.name} :: {r.error[:600] or 'failed'}" for r in run.failed]


def write_failures(run: LtsRun, path: Path = DEFAULT_FAILURES) -> Path:
    """Write the failure list (a header line with the counts per group, then failure_lines) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    groups = "; ".join(
        f"{g}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        for g in run.files
        for c in [run.counts(g)]
    )
    header = f"# CATAPULT LTS, {stamp}: {run.summary()} ({groups}; {run.seconds:.0f} s; jest {run.state})\n"
    header += "".join(f"# {note}\n" for note in run.notes)
    if run.state != "finished":
        header += "# jest output ends:\n" + "".join(f"#   {line}\n" for line in run.output_tail.splitlines()[-30:])
    if run.failed and not run.console:  # the suite's 007 tests pop the messages of earlier failed AU runs
        header += "# for the AUs' own reasons, run a package alone: .venv/bin/python -m tests.conformance.cmi5_lts"
        header += " --file runtime -t '001-essentials'\n"
    if run.console:
        header += "# what the test files logged (for a failed AU run: the requirement the AU checked, its message):\n"
        header += "".join(f"#   {line[:1000]}\n" for line in run.console)
    path.write_text(header + "".join(f"{line}\n" for line in failure_lines(run)), "utf-8")
    return path


# -- by hand ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Start a server with a fresh data dir, run the suite, print counts, write the failure list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--file", action="append", choices=FILES, help="test file (default: both)")
    parser.add_argument("-t", "--pattern", help="only the tests whose name matches (Jest's -t)")
    parser.add_argument("--failures", default=str(DEFAULT_FAILURES), help="the failure list to write")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (server logs, jest.out)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cmi5-lts-run-"))
    files = tuple(args.file) if args.file else FILES
    with LtsServer(work) as server:
        run = run_suite(prepare_run_dir(work / "suite"), server.url, server.key, files=files, pattern=args.pattern)
    path = write_failures(run, Path(args.failures))
    for group in files:
        c = run.counts(group)
        print(f"{group}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
    print(f"{run.summary()} in {run.seconds:.0f} s (jest {run.state}, exit {run.exit_code}); failures: {path}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
