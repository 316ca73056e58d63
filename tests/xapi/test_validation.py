"""Statement validation: every template-driven case of the ADL LRS conformance suite, and the rules
the suite checks elsewhere or not at all.

tests/xapi/suite_cases_*.json are the suite's test/<version>/configs cases expanded with its
templates by tests/xapi/extract_suite_cases.js (run it again when the suite changes).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from appliance.xapi.validation import StatementError, validate_statement_batch

HERE = Path(__file__).parent


def _cases(file: str, version: str) -> list[tuple[str, str, dict, int]]:
    cases = json.loads((HERE / file).read_text())
    return [(version, f"{c['file']}: {c['name']}", c["statement"], c["expect"]) for c in cases]


SUITE_CASES = _cases("suite_cases_1_0_3.json", "1.0.3") + _cases("suite_cases_2_0.json", "2.0.0")


@pytest.mark.parametrize(
    ("version", "name", "statement", "expect"), SUITE_CASES, ids=[f"{c[0]}|{c[1]}" for c in SUITE_CASES]
)
def test_suite_case(version: str, name: str, statement: dict, expect: int) -> None:
    """The suite posts each case and expects 200 (accepted) or 400 (refused)."""
    body = copy.deepcopy(statement)
    if expect == 400:
        with pytest.raises(StatementError):
            validate_statement_batch(body, version)
    else:
        assert validate_statement_batch(body, version) == [body]


def test_suite_cases_cover_both_outcomes() -> None:
    """The fixtures hold the suite's full batteries (a truncated extraction would pass silently)."""
    assert len(SUITE_CASES) > 1900
    assert sum(1 for c in SUITE_CASES if c[3] == 400) > 1200
    assert sum(1 for c in SUITE_CASES if c[3] == 200) > 600
