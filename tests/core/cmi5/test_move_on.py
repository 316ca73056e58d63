"""moveOn satisfaction (appliance.core.cmi5.move_on): each AU rule, waiver, blocks, the course, and the
order the LMS writes `satisfied` statements in."""

from __future__ import annotations

import pytest

from appliance.core.cmi5.course_structure import Au, Block, Course
from appliance.core.cmi5.move_on import AuProgress, au_satisfied, newly_satisfied, satisfied

NONE, COMPLETED, PASSED = AuProgress(), AuProgress(completed=True), AuProgress(passed=True)
BOTH, WAIVED = AuProgress(completed=True, passed=True), AuProgress(waived=True)


@pytest.mark.parametrize(
    ("move_on", "expected"),
    [
        ("Completed", [False, True, False, True, True]),
        ("Passed", [False, False, True, True, True]),
        ("CompletedAndPassed", [False, False, False, True, True]),
        ("CompletedOrPassed", [False, True, True, True, True]),
        ("NotApplicable", [True, True, True, True, True]),
    ],
)
def test_each_rule(move_on: str, expected: list[bool]) -> None:
    assert [au_satisfied(move_on, p) for p in (NONE, COMPLETED, PASSED, BOTH, WAIVED)] == expected


def test_an_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError):
        au_satisfied("Sometimes", NONE)


def au(name: str, move_on: str = "Completed") -> Au:
    return Au(id=f"https://e.example/au/{name}", title={}, description={}, url="index.html", move_on=move_on)


def course() -> Course:
    inner = Block(id="https://e.example/block/inner", title={}, description={}, children=[au("b"), au("c", "Passed")])
    outer = Block(id="https://e.example/block/outer", title={}, description={}, children=[au("a"), inner])
    return Course(id="https://e.example/course", title={}, description={}, children=[outer, au("d", "NotApplicable")])


def ids(*names: str) -> set[str]:
    return {f"https://e.example/{n}" for n in names}


def test_blocks_and_the_course_are_satisfied_when_everything_in_them_is() -> None:
    c = course()
    assert satisfied(c, {}) == ids("au/d")
    progress = {f"https://e.example/au/{n}": COMPLETED for n in "ab"}
    assert satisfied(c, progress) == ids("au/a", "au/b", "au/d")
    progress["https://e.example/au/c"] = PASSED
    assert satisfied(c, progress) == ids("au/a", "au/b", "au/c", "au/d", "block/inner", "block/outer", "course")


def test_newly_satisfied_is_in_statement_order_and_never_repeats() -> None:
    c = course()
    before = {f"https://e.example/au/{n}": COMPLETED for n in "ab"}
    after = {**before, "https://e.example/au/c": WAIVED}
    assert newly_satisfied(c, before, after) == [
        "https://e.example/au/c",
        "https://e.example/block/inner",
        "https://e.example/block/outer",
        "https://e.example/course",
    ]
    assert newly_satisfied(c, after, after) == []
