"""The LRS conformance harness (tests/conformance/lrs.py) reads results right and can fail.

The parsing and the baseline rules on the runner's own log shape; then two small real runs of the suite
against a real server: a grep built from two title paths selects exactly those tests (the second try of
a baseline test depends on it), and a battery whose LRS refuses it (a read-only credential cannot store
the statement the suite's first hook posts) is reported as failed, with the server's answer.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance import lrs
from tests.conformance.test_lrs_conformance import RETRY_AT_MOST, Outcome, grep_for, judge, read_baseline, render_report

RUNNER_LOG = {
    "state": "finished",
    "summary": {"total": 7, "passed": 3, "failed": 3},
    "log": {
        "title": "",
        "status": "failed",
        "tests": [
            {
                "title": "About Resource Requirements (Communication 2.8)",
                "status": "failed",
                "tests": [
                    {"title": "returns a version (XAPI-00319)", "status": "passed", "tests": []},
                    {"title": "returns a version (XAPI-00319)", "status": "failed", "error": "Error: 500", "tests": []},
                    {  # a suite whose before-all hook failed: no test ran; the runner files the error on it
                        "title": "Statements (Data 2.4)",
                        "status": "failed",
                        "error": "Error: Expected 200\ngot 403",
                        "tests": [],
                    },
                    {  # a suite whose after-each hook failed once its test had passed
                        "title": "Documents",
                        "status": "failed",
                        "error": "Error: cleanup",
                        "tests": [{"title": "put", "status": "passed", "tests": []}],
                    },
                ],
            },
            {"title": "Encoding", "status": "passed", "tests": [{"title": "utf-8", "status": "passed", "tests": []}]},
        ],
    },
}


def test_the_runner_log_gives_one_result_per_test_and_failed_hook() -> None:
    results = lrs.parse_log(RUNNER_LOG)
    about = "About Resource Requirements (Communication 2.8)"
    assert {name: r.status for name, r in results.items()} == {
        f"{about} > returns a version (XAPI-00319)": "passed",
        f"{about} > returns a version (XAPI-00319) #2": "failed",  # the same title twice: numbered in run order
        f"{about} > Statements (Data 2.4)": "failed",  # the tests it kept from running are not listed
        f"{about} > Documents > {lrs.HOOK}": "failed",
        f"{about} > Documents > put": "passed",
        "Encoding > utf-8": "passed",
    }
    assert results[f"{about} > Statements (Data 2.4)"].error == "Error: Expected 200 got 403"


def test_failure_lines_and_the_failures_file(tmp_path: Path) -> None:
    run = lrs.BatteryRun("1.0.3", lrs.parse_log(RUNNER_LOG), 7, 12.0)
    lines = lrs.failure_lines(run)
    about = "About Resource Requirements (Communication 2.8)"
    assert lines == [
        f"{about} > Documents > {lrs.HOOK} :: Error: cleanup",
        f"{about} > Statements (Data 2.4) :: Error: Expected 200 got 403",
        f"{about} > returns a version (XAPI-00319) #2 :: Error: 500",
    ]
    text = lrs.write_failures(run, tmp_path).read_text("utf-8").splitlines()
    assert text[0].startswith("# xAPI 1.0.3 battery") and "3 of 7 tests pass" in text[0] and "1 not run" in text[0]
    assert text[1:] == lines
    assert run.full and run.summary() == "3 of 7 tests pass"


def _run(passed: list[str], failed: list[str], state: str = "finished") -> lrs.BatteryRun:
    results = {n: lrs.TestResult(n, "passed") for n in passed} | {n: lrs.TestResult(n, "failed", "x") for n in failed}
    return lrs.BatteryRun("1.0.3", results, len(results), 1.0, state=state)


def test_judge_retries_lost_baseline_tests_once_and_reports_new_passes() -> None:
    asked: list[list[str]] = []

    def rerun(names: list[str]) -> lrs.BatteryRun:
        asked.append(names)
        return _run(passed=["S > slow"], failed=["S > broken"])

    run = _run(passed=["S > kept", "S > new"], failed=["S > slow", "S > broken", "S > never passed"])
    outcome = judge(run, {"S > kept", "S > slow", "S > broken"}, rerun)
    assert asked == [["S > broken", "S > slow"]]  # only baseline tests, once
    assert outcome.regressions == ["S > broken"]
    assert outcome.recovered == ["S > slow"] and "S > slow" in outcome.passing
    assert outcome.newly_passing == ["S > new"]
    assert run.notes == ["2 baseline test(s) run again on their own: 1 passed"]


def test_judge_does_not_retry_a_broken_or_interrupted_battery() -> None:
    def rerun(names: list[str]) -> lrs.BatteryRun:
        raise AssertionError("no second try")

    many = [f"S > t{i}" for i in range(RETRY_AT_MOST + 1)]
    assert judge(_run([], many), set(many), rerun).regressions == sorted(many)
    assert judge(_run([], ["S > a"], state="cancelled"), {"S > a"}, rerun).regressions == ["S > a"]


def test_grep_for_matches_the_spaced_full_titles_only() -> None:
    names = ['A (Data 2.2) > statement "actor" missing', "B > x.y [1] | z?"]
    pattern = re.compile(grep_for(names))
    assert all(pattern.search(n.replace(lrs.SEPARATOR, " ")) for n in names)
    assert not pattern.search('A (Data 2.2) statement "actor" missing too')
    assert not pattern.search("B x.y [1] | z")


def test_the_baselines_list_test_paths_of_their_battery() -> None:
    for version in lrs.VERSIONS:
        baseline = read_baseline(version)
        assert baseline, f"lrs_baseline_{version}.txt is empty"
        assert all(lrs.SEPARATOR in name for name in baseline)
    assert read_baseline("1.0.3") != read_baseline("2.0.0")


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lrs.LrsServer, Path]]:
    if not lrs.suite_available():
        pytest.skip(f"the ADL LRS conformance suite is not in {lrs.SUITE}")
    work = tmp_path_factory.mktemp("lrs-harness")
    with lrs.LrsServer(work) as server:
        yield server, work


@pytest.mark.lrs
@pytest.mark.conformance
@pytest.mark.e2e
def test_a_grep_of_two_tests_runs_exactly_those(small_runs: tuple[lrs.LrsServer, Path]) -> None:
    server, work = small_runs
    names = sorted(read_baseline("1.0.3"))
    chosen = [next(n for n in names if "About Resource" in n), next(n for n in names if '"actor" missing' in n)]
    key, secret = server.credential("1.0.3")
    run = lrs.run_battery(
        lrs.prepare_run_dir(work / "grep"), server.endpoint, key, secret, "1.0.3", grep=grep_for(chosen)
    )
    assert sorted(run.results) == sorted(chosen)
    assert run.passed == sorted(chosen) and run.state == "finished"


@pytest.mark.lrs
@pytest.mark.conformance
@pytest.mark.e2e
def test_a_battery_the_lrs_refuses_is_reported_failed(small_runs: tuple[lrs.LrsServer, Path]) -> None:
    server, work = small_runs
    key, secret = server.credential("2.0.0", scope="read")  # cannot store the statement of the first hook
    run = lrs.run_battery(
        lrs.prepare_run_dir(work / "refused"), server.endpoint, key, secret, "2.0.0", grep="About Resource"
    )
    assert run.passed == [] and run.total > 0
    assert [r.name for r in run.failed] == [lrs.HOOK]
    assert "403" in run.failed[0].error


def test_a_runner_that_stops_finishing_tests_is_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch ends a runner whose count of finished tests stops moving, and one past the deadline."""
    out = tmp_path / "runner.out"
    out.write_bytes(b'{"total":9,"passed":1,"failed":0,"version":"1.0.3"}\n')
    monkeypatch.setattr(lrs, "STALL_TIMEOUT", 1.0)
    monkeypatch.setattr(lrs, "POLL_SECONDS", 0.2)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        reason = lrs._watch(proc, out, started)
        assert "no test finished for 1 s (after 1 tests)" in reason
        assert time.monotonic() - started < 10
        monkeypatch.setattr(lrs, "STALL_TIMEOUT", 60.0)
        monkeypatch.setattr(lrs, "BATTERY_TIMEOUT", 1.0)
        assert "deadline" in lrs._watch(proc, out, time.monotonic())
    finally:
        proc.kill()
        proc.wait()
    quick = subprocess.Popen(["true"])
    assert lrs._watch(quick, out, time.monotonic()) == ""


def test_the_report_counts_lists_failures_and_says_every_test_passes_only_when_true() -> None:
    broken = lrs.BatteryRun("1.0.3", lrs.parse_log(RUNNER_LOG), 7, 3.0)
    clean = _run(passed=["A > b"], failed=[])
    clean.version = "2.0.0"
    text = render_report([Outcome(broken, set()), Outcome(clean, {"A > b"})])
    assert "| xAPI 1.0.3 | 3 of 7 | 3 | 1 | 3 s |" in text and "**xAPI 2.0.0: 1 of 1 tests pass.**" in text
    first, second = text.split("## xAPI 2.0.0")
    assert "Every test passes." not in first and "1 test(s) did not run" in first
    assert (
        "| About Resource Requirements (Communication 2.8) > returns a version (XAPI-00319) #2 | Error: 500 |" in first
    )
    assert "| About Resource Requirements (Communication 2.8) | 2 of 5 |" in first
    assert "Every test passes." in second and "| A | 1 of 1 |" in second
    assert lrs.suite_commit()[:12] in text
