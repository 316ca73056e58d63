"""CATAPULT's cmi5 LMS test suite (package import and runtime) against a real `serve` process.

The suite runs once per pytest session (tests/conformance/cmi5_lts.py: a temp copy of the suite, its cached
npm dependencies and built test packages, the project's adapter as lib/lms.custom.js, Jest + Puppeteer on
Debian's Chromium) and each group's passing tests are compared with tests/conformance/cmi5/baseline.txt,
one test name (`<file> > <describe …> > <test>`) per line. A test on the baseline that fails now is a
regression and fails the build; a test that passes and is not on the baseline is reported (terminal summary
and docs/cmi5-conformance.md) so the baseline can be raised with
`UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance/test_cmi5_conformance.py`.

The runtime tests of one test package depend on each other (the post-execution checks read the statements
of the AU run before them), so a baseline test that fails is given a second chance by running its whole
test package again on its own (Jest's `-t` on the package's describe title): one slow moment of a loaded
machine (an AU that times out) must not fail the build. Packages that needed it are listed in the report.

`test_report` (last) writes docs/cmi5-conformance.md when the whole suite ran. Environment: CMI5_LTS_GREP (a
subset: Jest's -t; no report, the baseline checked only for what ran), CMI5_LTS_TIMEOUT (seconds for the
Jest run, default 900), CMI5_LTS_FAILURES (the failure list, default /tmp/cmi5-lts-failures.txt).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import cmi5_lts as lts

BASELINE = lts.ADAPTER_DIR / "baseline.txt"
REPORT = lts.REPO / "docs" / "cmi5-conformance.md"
UPDATE = os.environ.get("UPDATE_BASELINE") == "1"
GREP = os.environ.get("CMI5_LTS_GREP") or None
FAILURES = Path(os.environ.get("CMI5_LTS_FAILURES") or lts.DEFAULT_FAILURES)
RETRY_PACKAGES_AT_MOST = 4  # test packages run again on their own when baseline tests of theirs failed

pytestmark = [pytest.mark.cmi5, pytest.mark.conformance, pytest.mark.e2e, pytest.mark.browser]


def read_baseline() -> set[str]:
    if not BASELINE.exists():
        return set()
    lines = (line.rstrip("\n") for line in BASELINE.read_text("utf-8").splitlines())
    return {line for line in lines if line.strip() and not line.startswith("#")}


def write_baseline(passing: set[str]) -> None:
    header = (
        "# Tests of CATAPULT's cmi5 LMS test suite that pass (tests/conformance/test_cmi5_conformance.py).\n"
        "# One test per line: <file> > <describe …> > <test>, as parsed from the suite's JUnit XML. Written by\n"
        "# `UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance/test_cmi5_conformance.py`; a listed test that\n"
        "# fails is a regression and fails the build.\n"
    )
    BASELINE.write_text(header + "".join(f"{name}\n" for name in sorted(passing)), "utf-8")


def jest_name(name: str) -> str:
    """The name Jest's -t matches: the describe titles and the test title joined by spaces, no file."""
    return name.split(lts.SEPARATOR, 1)[-1].replace(lts.SEPARATOR, " ")


def selected(name: str) -> bool:
    """Whether a baseline entry is among the tests CMI5_LTS_GREP selects."""
    return GREP is None or re.search(GREP, re.sub(r" #\d+$", "", jest_name(name))) is not None


def pattern_for(packages: list[str]) -> str:
    """A Jest -t pattern selecting every test under these top-level describe titles."""
    return "^(?:" + "|".join(re.escape(p) for p in packages) + ") "


@dataclass
class Outcome:
    """The run judged against the baseline."""

    run: lts.LtsRun
    baseline: set[str]
    regressions: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # failed, then passed when their package ran again
    retried_packages: list[str] = field(default_factory=list)
    newly_passing: list[str] = field(default_factory=list)

    @property
    def passing(self) -> set[str]:
        return set(self.run.passed) | set(self.recovered)

    def counts(self, group: str) -> tuple[int, int, int, int]:
        """(passed, failed, skipped, total) of a group, second tries counted as passed."""
        results = [r for r in self.run.results.values() if r.group == group]
        passed = sum(1 for r in results if r.name in self.passing)
        skipped = sum(1 for r in results if r.status == "skipped")
        return passed, len(results) - passed - skipped, skipped, len(results)


def judge(run: lts.LtsRun, baseline: set[str], rerun: Callable[[list[str]], lts.LtsRun]) -> Outcome:
    """The run against its baseline; the packages of lost baseline tests get one more run on their own."""
    outcome = Outcome(run, baseline)
    passed = set(run.passed)
    lost = sorted(name for name in baseline if selected(name) and name not in passed)
    packages = sorted({lts.TestResult(name, "").package for name in lost})
    if lost and len(packages) <= RETRY_PACKAGES_AT_MOST and run.state == "finished":
        again = rerun(packages)
        outcome.recovered = sorted(set(lost) & set(again.passed))
        outcome.retried_packages = packages
        run.notes.append(
            f"{len(lost)} baseline test(s) of {len(packages)} package(s) run again: {len(outcome.recovered)} passed"
        )
    outcome.regressions = sorted(set(lost) - set(outcome.recovered))
    outcome.newly_passing = sorted(passed - baseline)
    return outcome


class LtsSession:
    """The server and the suite's outcome for this pytest session (the suite runs once)."""

    def __init__(self, work: Path, server: lts.LtsServer) -> None:
        self.work = work
        self.server = server
        self._outcome: Outcome | None = None

    def outcome(self) -> Outcome:
        if self._outcome is None:
            run = self._run(GREP)
            lts.write_failures(run, FAILURES)
            self._outcome = judge(run, read_baseline(), lambda packages: self._run(pattern_for(packages), "-again"))
        return self._outcome

    def _run(self, pattern: str | None, attempt: str = "") -> lts.LtsRun:
        run_dir = lts.prepare_run_dir(self.work / f"suite{attempt}")
        return lts.run_suite(run_dir, self.server.url, self.server.key, pattern=pattern)


@pytest.fixture(scope="session")
def lts_session(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[LtsSession]:
    """One real server for the suite; the reporter that prints its counts at the end."""
    if not lts.suite_available():
        pytest.skip(f"CATAPULT's LMS test suite is not in {lts.SUITE}")
    if not lts.CHROMIUM.exists():
        pytest.skip(f"{lts.CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    work = tmp_path_factory.mktemp("cmi5-lts")
    with lts.LtsServer(work) as server:
        session = LtsSession(work, server)
        pytestconfig.pluginmanager.register(_Reporter(session), "cmi5-conformance-reporter")
        yield session
    shutil.rmtree(work, ignore_errors=True)


class _Reporter:
    """Prints each group's counts, the wall time and the tests to add to the baseline."""

    def __init__(self, session: LtsSession) -> None:
        self.session = session

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        outcome = self.session._outcome
        if outcome is None:
            return
        run = outcome.run
        terminalreporter.write_sep("-", "CATAPULT cmi5 LMS test suite")
        for group in lts.FILES:
            passed, failed, skipped, total = outcome.counts(group)
            terminalreporter.write_line(f"{group}: {passed} of {total} pass, {failed} fail, {skipped} skipped")
        terminalreporter.write_line(
            f"{len(outcome.passing)} of {len(run.results)} tests pass in {run.seconds:.0f} s (jest {run.state}); "
            f"{len(outcome.regressions)} regression(s); failures listed in {FAILURES}"
        )
        if outcome.newly_passing and not UPDATE:
            terminalreporter.write_line(
                f"  {len(outcome.newly_passing)} test(s) pass and are not in {BASELINE.name}: raise it with "
                "UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance/test_cmi5_conformance.py"
            )
            for name in outcome.newly_passing[:20]:
                terminalreporter.write_line(f"    + {name}")


@pytest.mark.parametrize("group", lts.FILES)
def test_group(group: str, lts_session: LtsSession) -> None:
    """The suite ran to its end and every baseline test of the group (package import, runtime) still passes."""
    outcome = lts_session.outcome()
    run = outcome.run
    if UPDATE and group == lts.FILES[0]:
        kept = {name for name in outcome.baseline if not selected(name)}
        write_baseline(kept | outcome.passing)
    assert run.state == "finished", (
        f"CATAPULT's LMS test suite did not finish ({run.state}; {'; '.join(run.notes)}); "
        f"Jest's output ended with:\n{run.output_tail}"
    )
    regressions = [name for name in outcome.regressions if name.startswith(group + lts.SEPARATOR)]
    if regressions and not UPDATE:
        errors = {r.name: r.error for r in run.failed}
        listed = "\n".join(f"  {name} :: {errors.get(name, 'not run')[:400]}" for name in regressions[:40])
        pytest.fail(
            f"regression: {len(regressions)} {group} test(s) of {BASELINE.name} fail ({run.summary()}):\n{listed}"
        )


def test_report(lts_session: LtsSession) -> None:
    """Writes docs/cmi5-conformance.md when the whole suite ran."""
    outcome = lts_session.outcome()
    if outcome.run.full:
        REPORT.write_text(render_report(outcome), "utf-8")
    for group in lts.FILES if GREP is None else ():
        assert outcome.counts(group)[3] > 0, f"CATAPULT's {group} tests did not run"


HOW_IT_RUNS = [
    "## How it runs",
    "",
    "`tests/conformance/test_cmi5_conformance.py` (marks `cmi5`, `conformance`, `e2e`, `browser`; part of",
    "`make test` and `make conformance`) and `tests/conformance/cmi5_lts.py`:",
    "",
    "- The suite is used in place from `../shared/suites/catapult/lts` and never copied into the project. Its",
    "  npm dependencies are installed once (`npm ci` with `PUPPETEER_SKIP_DOWNLOAD=1`: no browser download)",
    "  and its test packages built once (`webpack` in `pkg/`, with `--openssl-legacy-provider` for its MD4",
    "  hashing on Node 20) into a cache in the system's temp folder, keyed by a hash of `package.json`,",
    "  `package-lock.json`, `pkg/webpack.config.js` and `pkg/src`. A first run spends about a minute and a half",
    "  on that; later runs reuse it.",
    "- Each run copies the suite's sources to a temp folder, links the cached `node_modules` and `pkg/dist`",
    "  in, copies the adapter in as `lib/lms.custom.js`, and runs `jest --ci --runInBand` there with",
    "  `JEST_PUPPETEER_CONFIG` pointing at `tests/conformance/cmi5/jest-puppeteer.config.js` (headless",
    "  `/usr/bin/chromium`). The run is bounded: `CMI5_LTS_TIMEOUT` seconds (900 by default), then SIGTERM and",
    "  SIGKILL to its process group; one Jest test may take `CMI5_LTS_TEST_TIMEOUT_MS` (90000).",
    "- Results are read from the JUnit XML that the suite's jest-junit reporter writes to `var/`, one per test",
    "  named `<file> > <describe …> > <test>`; a name that repeats is numbered (`#2`).",
    "- `tests/conformance/cmi5/baseline.txt` lists the tests that pass. A listed test that fails is a",
    "  regression and fails the build; the packages of failed baseline tests are first run once more on their",
    "  own (an AU that timed out on a loaded machine is not a regression). Tests that pass and are not listed",
    "  are printed at the end of the run; raise the baseline with",
    "  `UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance/test_cmi5_conformance.py`.",
    "- Every run writes the failures, one per line (test name `::` Jest's message), and what the test files",
    "  logged (for an AU run that failed: the requirement the AU checked and why) to",
    "  `/tmp/cmi5-lts-failures.txt` (`CMI5_LTS_FAILURES`). By hand, against a fresh server:",
    "  `.venv/bin/python -m tests.conformance.cmi5_lts [--file runtime] [-t PATTERN] [--keep]`.",
    "",
]


def _cell(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _package_rows(outcome: Outcome, group: str) -> list[str]:
    """One row per test package (top-level describe): passed of total."""
    rows: dict[str, list[int]] = {}
    for result in outcome.run.results.values():
        if result.group == group:
            counts = rows.setdefault(result.package, [0, 0])
            counts[0] += result.name in outcome.passing
            counts[1] += 1
    return [f"| {_cell(package, 200)} | {p} of {t} |" for package, (p, t) in sorted(rows.items())]


def render_report(outcome: Outcome) -> str:
    run = outcome.run
    commit = lts.suite_commit()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# cmi5 conformance",
        "",
        "<!-- Written by tests/conformance/test_cmi5_conformance.py on every full run: do not edit by hand. -->",
        "",
        "CATAPULT's cmi5 LMS test suite (`adlnet/CATAPULT`"
        + (f" @ `{commit[:12]}`" if commit else "")
        + " `lts/`, from `../shared/suites`), run by `make test`",
        "against a real `scorm-appliance serve` on 127.0.0.1 with a fresh data directory and one tenant. The",
        "suite's Jest tests import its test packages (`lts/pkg`, built with its webpack config) and launch their",
        "AUs in headless Chromium (Debian's `/usr/bin/chromium`, driven by Puppeteer) through the project's LMS",
        "adapter, `tests/conformance/cmi5/lms.custom.js`, which uses only the appliance's HTTP API: it uploads",
        "packages with `POST /api/v1/packages`, starts registrations and gets launch URLs, waives AUs and",
        "abandons sessions, and reads the statements from the tenant's own LRS (`/xapi/`) with an LRS credential",
        "it creates. A test counts as passed when Jest reports it passed (from the JUnit XML the suite writes).",
        "How it runs and how the baseline works: [below](#how-it-runs). What cmi5 support is: [cmi5.md](cmi5.md).",
        "",
        f"Run on {stamp}; the Jest run took {run.seconds:.0f} s.",
        "",
        "| Group | Passed | Failed | Skipped |",
        "|---|---|---|---|",
    ]
    for group in lts.FILES:
        passed, failed, skipped, total = outcome.counts(group)
        lines.append(f"| {group} (`__tests__/{group}.js`) | {passed} of {total} | {failed} | {skipped} |")
    lines += ["", f"**{len(outcome.passing)} of {len(run.results)} tests pass.**", ""]
    if outcome.retried_packages:
        lines += [f"Run again on their own (timing): {', '.join(outcome.retried_packages)}.", ""]
    for note in run.notes:
        lines += [f"Note: {note}.", ""]
    for group in lts.FILES:
        lines += [f"## {group}", "", "| Test package | Passed |", "|---|---|", *_package_rows(outcome, group), ""]
        failing = [r for r in run.failed if r.group == group and r.name not in outcome.passing]
        if failing:
            lines += ["| Failing test | Error |", "|---|---|"]
            lines += [f"| {_cell(r.name, 400)} | {_cell(r.error or 'failed')} |" for r in failing]
            lines.append("")
    lines += HOW_IT_RUNS
    lines += ["## Every test", "", "| Test | Result |", "|---|---|"]
    for name, result in sorted(run.results.items()):
        status = "passed" if name in outcome.passing else result.status
        lines.append(f"| {_cell(name, 400)} | {status} |")
    lines.append("")
    return "\n".join(lines)
