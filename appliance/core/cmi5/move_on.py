"""moveOn: when an AU, a block and the course are satisfied for a registration (cmi5 §10, §9.3.9).

An AU's `moveOn` says what the learner must achieve in it: `Completed`, `Passed`, both
(`CompletedAndPassed`), either (`CompletedOrPassed`), or nothing (`NotApplicable`, satisfied as soon
as the registration exists). A waived AU (the LMS's `waived` statement) is satisfied whatever its
moveOn. A block is satisfied when every AU and block in it is, and the course when all of its are.
The LMS writes a `satisfied` statement for each AU, block and the course the moment it becomes
satisfied, once; `newly_satisfied` says which those are after a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from appliance.core.cmi5.course_structure import Au, Block, Course


class AuProgress(msgspec.Struct, frozen=True):
    """What a registration has recorded for one AU, across all its sessions."""

    completed: bool = False
    passed: bool = False
    waived: bool = False


def au_satisfied(move_on: str, progress: AuProgress) -> bool:
    """Whether an AU with `move_on` is satisfied by `progress` (a failure never unsatisfies: §9.3.9)."""
    if progress.waived or move_on == "NotApplicable":
        return True
    if move_on == "Completed":
        return progress.completed
    if move_on == "Passed":
        return progress.passed
    if move_on == "CompletedAndPassed":
        return progress.completed and progress.passed
    if move_on == "CompletedOrPassed":
        return progress.completed or progress.passed
    raise ValueError(f"unknown moveOn {move_on!r}")


def satisfied(course: Course, progress: Mapping[str, AuProgress]) -> set[str]:
    """The ids of every AU, block and (its id) the course satisfied by `progress` (AU id → progress)."""
    done: set[str] = set()

    def visit(node: Au | Block) -> bool:
        if isinstance(node, Au):
            ok = au_satisfied(node.move_on, progress.get(node.id, AuProgress()))
        else:
            ok = all([visit(child) for child in node.children])  # a list: every child is visited
        if ok:
            done.add(node.id)
        return ok

    if all([visit(node) for node in course.children]):
        done.add(course.id)
    return done


def newly_satisfied(course: Course, before: Mapping[str, AuProgress], after: Mapping[str, AuProgress]) -> list[str]:
    """Ids that `after` satisfies and `before` did not: AUs first, then blocks inside out, the course
    last (the order the `satisfied` statements are written in)."""
    gained = satisfied(course, after) - satisfied(course, before)
    return [node_id for node_id in _bottom_up(course) if node_id in gained]


def _bottom_up(course: Course) -> Iterable[str]:
    """AU ids in document order, then block ids innermost first, then the course id."""
    blocks: list[str] = []

    def visit(nodes: list[Au | Block]) -> Iterable[str]:
        for node in nodes:
            if isinstance(node, Au):
                yield node.id
            else:
                yield from visit(node.children)
                blocks.append(node.id)

    yield from visit(course.children)
    yield from blocks
    yield course.id
