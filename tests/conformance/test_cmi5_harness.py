"""The cmi5 conformance harness's own logic, without Node: JUnit parsing, console capture, the baseline judge.

These run in the fast suite; the suite itself runs in test_cmi5_conformance.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.conformance import cmi5_lts as lts
from tests.conformance import test_cmi5_conformance as conformance

JUNIT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="Project CATAPULT: LMS Test" tests="4" failures="1">
  <testsuite name="runtime.js" tests="4">
    <testcase classname="Test package: 001-essentials.zip" name="AU execution" time="0.5"></testcase>
    <testcase classname="Test package: 001-essentials.zip &gt; Post execution validation" name="9.6.2.1-1 - A" time="0">
      <failure>Error: expect(received).toBe(expected)

Expected: true
Received: false
    at Object.&lt;anonymous&gt; (__tests__/runtime.js:52:22)
    at processTicksAndRejections (node:internal)</failure>
    </testcase>
    <testcase classname="Test package: 001-essentials.zip &gt; Post execution validation" name="9.6.2.1-1 - A" time="0">
    </testcase>
    <testcase classname="Test package: 008-1-abandoned.zip" name="AU execution" time="0"><skipped/></testcase>
  </testsuite>
</testsuites>
"""


def test_junit_cases_are_named_by_file_describes_and_title() -> None:
    results = lts.parse_junit(JUNIT)
    first = "runtime > Test package: 001-essentials.zip > Post execution validation > 9.6.2.1-1 - A"
    assert sorted(results) == sorted(
        [
            "runtime > Test package: 001-essentials.zip > AU execution",
            first,
            f"{first} #2",
            "runtime > Test package: 008-1-abandoned.zip > AU execution",
        ]
    )
    assert results[first].status == "failed" and results[f"{first} #2"].passed
    assert results[first].error == "Error: expect(received).toBe(expected) Expected: true Received: false"
    assert results["runtime > Test package: 008-1-abandoned.zip > AU execution"].status == "skipped"
    assert results[first].group == "runtime" and results[first].package == "Test package: 001-essentials.zip"


def test_console_blocks_are_read_from_jest_output() -> None:
    output = (
        "FAIL __tests__/runtime.js\n  console.log\n    9.3.0.0-1 - The LMS: bad status 403\n    second line\n\n"
        "      at __tests__/runtime.js:35:21\n\n  Test package: x\n    ✕ AU execution\n"
    )
    assert lts.parse_console(output) == ["9.3.0.0-1 - The LMS: bad status 403", "second line"]


def _run(passed: list[str], failed: list[str]) -> lts.LtsRun:
    results = {n: lts.TestResult(n, "passed") for n in passed} | {n: lts.TestResult(n, "failed", "x") for n in failed}
    return lts.LtsRun(results, 1.0)


def test_a_lost_baseline_test_gets_its_package_run_again() -> None:
    a1, a2 = "runtime > Test package: a > AU execution", "runtime > Test package: a > Post > t"
    b1 = "runtime > Test package: b > AU execution"
    asked: list[list[str]] = []

    def rerun(packages: list[str]) -> lts.LtsRun:
        asked.append(packages)
        return _run([a1, a2], [])

    outcome = conformance.judge(_run([b1], [a1, a2]), {a1, a2}, rerun)
    assert asked == [["Test package: a"]]
    assert outcome.recovered == [a1, a2] and outcome.regressions == [] and outcome.passing == {a1, a2, b1}
    assert outcome.newly_passing == [b1]


def test_a_baseline_test_failing_twice_is_a_regression() -> None:
    a1 = "package > Valid package is imported > Package import"
    outcome = conformance.judge(_run([], [a1]), {a1}, lambda packages: _run([], [a1]))
    assert outcome.regressions == [a1]
    assert outcome.counts("package") == (0, 1, 0, 1)


def test_the_cache_key_follows_the_lock_file_and_the_package_sources(tmp_path: Path) -> None:
    root = tmp_path / "lts"
    (root / "pkg" / "src").mkdir(parents=True)
    (root / "package.json").write_text("{}")
    (root / "package-lock.json").write_text("{}")
    (root / "pkg" / "src" / "a.xml").write_text("<a/>")
    key = lts.dependency_key(root)
    (root / "__tests__").mkdir()
    (root / "__tests__" / "runtime.js").write_text("// tests do not decide node_modules")
    assert lts.dependency_key(root) == key
    (root / "pkg" / "src" / "a.xml").write_text("<b/>")
    assert lts.dependency_key(root) != key
