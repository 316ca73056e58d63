"""The ADL SCORM 2004 4th Edition LMS conformance test suite, end to end, one test per package.

Each of the 189 `adlcts4-*` packages is uploaded through the API, a session is created, and its launch URL
is opened in headless Chromium through a real server. The real test SCO pages run with driver.js standing
in for the Java applet; the harness (cts.py) follows the test case's instructions with the player's own
controls. A case passes when every check the driver recorded passed (each API call's return value and
error code, the UI answers) and the LMS delivered exactly the expected activities in the expected order.

The list of passing packages is kept in baseline.txt. A package on the baseline that fails is a
regression (the test fails); a package that fails and is not on the baseline is reported as xfail with its
first failing checks; a package that passes but is not on the baseline fails too, so the baseline and
the report always agree. `UPDATE_BASELINE=1 pytest tests/conformance` rewrites baseline.txt with exactly the
passing packages of the run (on a partial run, only the selected packages' lines change).
docs/conformance.md is written by the last test of every full run on SQLite.

The suite runs once per database backend (`[sqlite]`, `[postgresql]`), each on a server of its own, against
the one baseline: a package passes on PostgreSQL as on SQLite or the suite fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conformance import cts
from tests.conformance.conftest import CtsRun

PACKAGES = cts.available_packages()
BASELINE = Path(__file__).with_name("baseline.txt")
REPORT = cts.REPO / "docs" / "conformance.md"
UPDATE = os.environ.get("UPDATE_BASELINE") == "1"

pytestmark = [pytest.mark.conformance, pytest.mark.e2e, pytest.mark.browser, pytest.mark.corpus]


def read_baseline() -> set[str]:
    if not BASELINE.exists():
        return set()
    lines = (line.split("#", 1)[0].strip() for line in BASELINE.read_text("utf-8").splitlines())
    return {line for line in lines if line}


def write_baseline(passing: set[str]) -> None:
    header = (
        "# Packages of the ADL SCORM 2004 4th Edition conformance suite that pass (tests/conformance).\n"
        "# Written by `UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance`: only passing packages are listed;\n"
        "# the suite fails when one of them stops passing or when a passing package is missing here.\n"
    )
    BASELINE.write_text(header + "".join(f"{p}\n" for p in sorted(passing)), "utf-8")


@pytest.mark.parametrize("package", PACKAGES)
def test_case(package: str, cts_run: CtsRun) -> None:
    result = cts_run.for_package(package)
    on_baseline = package in read_baseline()
    shared = " (test case DDM, with DDMa and DDMb)" if package in ("DDMa", "DDMb") else ""
    if result.passed:
        assert on_baseline or UPDATE, (
            f"{package}{shared} passes but is not in {BASELINE.name}: add it "
            "(UPDATE_BASELINE=1 .venv/bin/pytest tests/conformance)"
        )
        return
    if on_baseline and not UPDATE:
        pytest.fail(f"regression: {package}{shared} is on the baseline but failed: {result.summary()}")
    pytest.xfail(f"{package}{shared} does not pass yet: {result.summary()}")


def test_report_and_baseline(cts_run: CtsRun) -> None:
    """Writes docs/conformance.md (full runs on SQLite) and keeps the baseline equal to the passing packages."""
    passing = {p for p in cts_run.packages if cts_run.for_package(p).passed}
    failing = set(cts_run.packages) - passing
    baseline = read_baseline()
    if UPDATE:
        write_baseline((baseline - failing) | passing)
        baseline = read_baseline()
    if cts_run.full and cts_run.backend == "sqlite":
        REPORT.write_text(render_report(cts_run), "utf-8")
    selected = set(cts_run.packages)
    assert baseline & selected == passing, (
        f"baseline.txt and this run disagree: passing but not listed {sorted(passing - baseline)}, "
        f"listed but failing {sorted((baseline & selected) - passing)}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def skipped_lines(run: CtsRun) -> list[tuple[str, cts.Skipped]]:
    """The command lines the CTS's parser skips, by test case (DDMa and DDMb share theirs: counted once)."""
    cases = sorted({cts.case_of(p) for p in run.packages})
    return [(case, line) for case in cases for line in run.results[case].skipped]


def render_report(run: CtsRun) -> str:
    packages = sorted(run.packages)
    passed = [p for p in packages if run.for_package(p).passed]
    skipped = skipped_lines(run)
    lines_word = "line" if len(skipped) == 1 else "lines"
    lines = [
        "# ADL SCORM 2004 4th Edition conformance",
        "",
        "<!-- Written by tests/conformance/test_adl_cts.py on every full run: do not edit by hand. -->",
        "",
        "The ADL LMS conformance test suite (the 189 `adlcts4-*` packages of the shared corpus and their",
        "`.properties` instructions), run end to end in headless Chromium through a real server: each package",
        "is uploaded through the API, a session is created and launched, the real test SCO pages run with",
        "`tests/conformance/driver.js` in place of the Java applet, and the harness follows each instruction",
        "with the player's own buttons and table of contents. A package passes when every recorded check",
        "passed and the activities were delivered in the expected order. How the instructions are read:",
        "[conformance-format.md](conformance-format.md). DDMa and DDMb are the two packages of one test case",
        "(DDM): both show its result.",
        "",
        "The packages are judged by the CTS's rules: a command line whose verb the CTS's own parser",
        "(`LMSParser.parseCommands`) does not know is not evaluated by the CTS, so it is skipped here too and",
        "counted apart (column *Skipped*, and listed below the table), never as a passed check.",
        "",
        f"**Total: {len(passed)} of {len(packages)} packages pass; {len(skipped)} instruction {lines_word} skipped "
        "by the CTS's rules.**",
        "",
        "| Package | Result | Checks | Skipped | First failing checks |",
        "|---|---|---|---|---|",
    ]
    for package in packages:
        result = run.for_package(package)
        failed = len(result.failures)
        checks = f"{len(result.checks) - failed}/{len(result.checks)}"
        detail = "" if result.passed else _cell(result.summary(limit=2))
        skips = str(len(result.skipped)) if result.skipped else ""
        lines.append(f"| {package} | {'pass' if result.passed else 'FAIL'} | {checks} | {skips} | {detail} |")
    if skipped:
        lines += [
            "",
            "## Instruction lines the CTS skips",
            "",
            "| Test case | Line | Why | The line |",
            "|---|---|---|---|",
        ]
        for case, line in skipped:
            lines.append(f"| {case} | {_cell(line.step)} | {_cell(line.reason)} | {_cell(line.text)} |")
    lines += [
        "",
        f"Total: {len(passed)} of {len(packages)} packages pass; {len(skipped)} instruction {lines_word} skipped.",
        "",
    ]
    return "\n".join(lines)
