"""Helpers that collect data-model vectors; the cases live in cases_12.py and cases_2004.py."""

from __future__ import annotations

from typing import Any

V12, V2, V3, V4 = "1.2", "2004 2nd Edition", "2004 3rd Edition", "2004 4th Edition"
ALL = (V2, V3, V4)

INITIAL: dict[str, dict[str, str]] = {
    V12: {
        "cmi.core.student_id": "learner-1",
        "cmi.core.student_name": "Doe, Jane",
        "cmi.core.credit": "credit",
        "cmi.core.entry": "ab-initio",
        "cmi.core.lesson_mode": "normal",
        "cmi.core.lesson_status": "not attempted",
        "cmi.core.total_time": "0000:00:00.00",
        "cmi.launch_data": "",
        "cmi.comments_from_lms": "Welcome",
        "cmi.student_data.mastery_score": "80",
        "cmi.student_data.max_time_allowed": "0000:30:00",
        "cmi.student_data.time_limit_action": "exit,message",
    },
}
_INITIAL_2004 = {
    "cmi.learner_id": "learner-1",
    "cmi.learner_name": "Doe, Jane",
    "cmi.credit": "credit",
    "cmi.mode": "normal",
    "cmi.entry": "ab-initio",
    "cmi.completion_status": "unknown",
    "cmi.success_status": "unknown",
    "cmi.total_time": "PT0H0M0S",
    "cmi.time_limit_action": "continue,no message",
    "cmi.launch_data": "chapter=2",
    "cmi.max_time_allowed": "PT1H",
    "adl.nav.request": "_none_",
    "cmi.comments_from_lms.0.comment": "{lang=en}Welcome",
    "cmi.comments_from_lms.0.location": "start",
    "cmi.comments_from_lms.0.timestamp": "2024-01-01T10:00:00",
}
for _v in ALL:
    INITIAL[_v] = dict(_INITIAL_2004)
INITIAL[V4] = {**_INITIAL_2004, "adl.data.0.id": "shared-1", "adl.data.0.store": "v1"}

VECTORS: list[dict[str, Any]] = []


def _versions(version: str | tuple[str, ...]) -> tuple[str, ...]:
    return (version,) if isinstance(version, str) else version


def put(op: str, version: str | tuple[str, ...], element: str, value: Any, code: int, **extra: Any) -> None:
    for v in _versions(version):
        vector: dict[str, Any] = {"version": v, "op": op, "element": element, "value": value, "expected_error": code}
        for key, item in extra.items():
            if item is not None:
                vector[key] = [list(pair) for pair in item] if key == "setup" else item
        VECTORS.append(vector)


def s(version: str | tuple[str, ...], element: str, value: Any, code: int, setup: Any = None, **extra: Any) -> None:
    """A SetValue case."""
    put("set", version, element, value, code, setup=setup, **extra)


def g(
    version: str | tuple[str, ...], element: str, code: int, expected: str = "", setup: Any = None, **extra: Any
) -> None:
    """A GetValue case."""
    put("get", version, element, None, code, expected_value=expected, setup=setup, **extra)


def many(version: str | tuple[str, ...], element: str, values: list[str], code: int, setup: Any = None) -> None:
    for value in values:
        s(version, element, value, code, setup)


def long(count: int, char: str = "x") -> dict[str, Any]:
    return {"repeat": char, "count": count}
