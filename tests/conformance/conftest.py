"""Fixtures for the ADL conformance suite: one real server, one headless Chromium, each selected case run once
per database backend.

`cts_server` starts `scorm-appliance serve` on a fresh data directory with one tenant and an API key, on
the backend of the module-scoped `databases` fixture (`[sqlite]`, then `[postgresql]`: the suite's tests are
grouped by backend, tests/conftest.py). `cts_run` runs every test case selected in this pytest session for
that backend (and the earlier members of their families) in parallel browser contexts before the first case
test asks for its result; the case tests then only assert: one baseline for both backends. Environment: CTS_WORKERS (parallel browser contexts, default 4), CTS_CASE_TIMEOUT (seconds per case,
default 60), UPDATE_BASELINE=1 (rewrite baseline.txt from this run's passing cases, see test_adl_cts.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright

from tests.conformance import cts
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.conftest import ServerProcess
from tests.e2e.databases import Databases

WORKERS = int(os.environ.get("CTS_WORKERS", "4"))
CASE_TIMEOUT = float(os.environ.get("CTS_CASE_TIMEOUT", str(cts.CASE_TIMEOUT)))
SUITE_MODULE = "test_adl_cts.py"


@dataclass
class CtsServer:
    server: ServerProcess
    key: str


@dataclass
class CtsRun:
    """The results of this session's run: by test case, with what was asked for and how long it took."""

    results: dict[str, cts.CaseResult]
    packages: list[str]
    seconds: float
    workers: int
    backend: str

    @property
    def full(self) -> bool:
        return sorted(self.packages) == cts.available_packages()

    def for_package(self, package: str) -> cts.CaseResult:
        return self.results[cts.case_of(package)]


def require_corpus_and_browser() -> None:
    if not cts.available_packages() or not cts.PROPERTIES_ZIP.exists():
        pytest.skip("the ADL CTS packages or properties are not in ../shared/scorm-corpus")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")


@pytest.fixture(scope="module")
def cts_server(tmp_path_factory: pytest.TempPathFactory, databases: Databases) -> Iterator[CtsServer]:
    """A real server on the module's backend with one tenant (no practical rate limit) and its API key."""
    require_corpus_and_browser()
    server = ServerProcess(tmp_path_factory.mktemp(f"cts-{databases.backend}") / "data", databases=databases)
    try:
        server.start()
        server.cli("tenants", "create", "ADL CTS")
        server.cli("quotas", "set", "--tenant", "ADL CTS", "--rate", "1000000/min")
        key = server.cli("keys", "create", "--tenant", "ADL CTS")["key"]
        yield CtsServer(server, key)
    finally:
        server.close()


async def with_browser(server: CtsServer, work: Any) -> Any:
    """Run `work(appliance, browser)` with an API client and a headless Chromium."""
    appliance = cts.Appliance(server.server.url, server.key)
    try:
        async with async_playwright() as playwright:
            browser: Browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
            )
            try:
                return await work(appliance, browser)
            finally:
                await browser.close()
    finally:
        await appliance.close()


def selected_packages(session: pytest.Session, backend: str) -> list[str]:
    """The packages whose case tests are selected on `backend` (all of them when only the report test is)."""
    packages: set[str] = set()
    report_selected = False
    for item in session.items:
        if Path(str(item.fspath)).name != SUITE_MODULE:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("databases") != backend:
            continue
        if "package" in callspec.params:
            packages.add(callspec.params["package"])
        else:
            report_selected = True
    if not packages and report_selected:
        return cts.available_packages()
    return sorted(packages)


@pytest.fixture(scope="module")
def cts_run(request: pytest.FixtureRequest, cts_server: CtsServer) -> CtsRun:
    """Every selected test case, run once in the browser through the real server on the module's backend."""
    backend = cts_server.server.databases.backend
    packages = selected_packages(request.session, backend)
    cases = sorted({cts.case_of(p) for p in packages})
    started = time.monotonic()

    async def work(appliance: cts.Appliance, browser: Browser) -> dict[str, cts.CaseResult]:
        return await cts.run_cases(appliance, browser, cases, workers=WORKERS, timeout=CASE_TIMEOUT)

    results = asyncio.run(with_browser(cts_server, work))
    run = CtsRun(
        results=results, packages=packages, seconds=time.monotonic() - started, workers=WORKERS, backend=backend
    )
    request.config.stash.setdefault(RUNS_KEY, {})[backend] = run
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    details = cache.mkdir("conformance") / f"report-{backend}.json" if cache is not None else None
    if details is not None:
        details.write_text(
            json.dumps(
                {
                    "seconds": round(run.seconds, 1),
                    "workers": run.workers,
                    "cases": {case: result.to_json() for case, result in sorted(results.items())},
                },
                indent=1,
            ),
            "utf-8",
        )
        request.config.stash.setdefault(DETAILS_KEY, {})[backend] = details
    return run


RUNS_KEY = pytest.StashKey[dict[str, CtsRun]]()
DETAILS_KEY = pytest.StashKey[dict[str, Path]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    runs = config.stash.get(RUNS_KEY, {})
    if runs:
        terminalreporter.write_sep("-", "ADL SCORM 2004 4th Edition conformance")
    for backend, run in runs.items():
        passed = sum(1 for p in run.packages if run.for_package(p).passed)
        skipped = sum(len(result.skipped) for result in run.results.values())
        terminalreporter.write_line(
            f"[{backend}] {passed} of {len(run.packages)} packages pass; {len(run.results)} test cases in "
            f"{run.seconds:.0f} s on {run.workers} browser contexts; {skipped} instruction line(s) skipped as the "
            "CTS skips them"
        )
        details = config.stash.get(DETAILS_KEY, {}).get(backend)
        if details is not None:
            terminalreporter.write_line(f"[{backend}] every check of every case: {details}")
