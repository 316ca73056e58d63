"""appliance.core.xapi.duplicate_keys: a repeated key anywhere in the JSON text, and only then."""

from __future__ import annotations

import json

import msgspec
import pytest

from appliance.core.xapi.duplicate_keys import DuplicateKey, check_no_duplicate_keys


def check(text: str, root: str = "statement") -> None:
    raw = text.encode()
    check_no_duplicate_keys(raw, msgspec.json.decode(raw), root)


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": 1, "a": 2}', "statement.a"),
        ('{"a": {"b": 1, "c": {"d": 1, "d": 1}}}', "statement.a.c.d"),
        ('[{"a": 1}, {"x": [1, {"y": 0, "y": 0}]}]', "statements[1].x[1].y"),
        ('{"a\\u0062": 1, "ab": 2}', "statement.ab"),  # the same key, one spelled with an escape
        ('{"k": "v", "k" : "w"}', "statement.k"),
    ],
)
def test_a_repeated_key_is_found_with_its_path(text: str, path: str) -> None:
    root = "statements" if text.startswith("[") else "statement"
    with pytest.raises(DuplicateKey) as raised:
        check(text, root)
    assert raised.value.path == path


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\"a\\": 1, \\"a\\": 2", "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}',
        '{"s": "a:b", "t": "\\\\", "u": "x\\"y:"}',
        "[]",
        '{"actor": {"name": "\u00e9", "mbox": "mailto:a@b.c"}}',
    ],
)
def test_no_repeated_key_passes(text: str) -> None:
    check(text)


def test_the_key_count_matches_pythons_decoder_on_many_shapes() -> None:
    """Every statement of the suite's cases (valid and invalid) passes: they repeat no key."""
    from pathlib import Path

    cases = json.loads((Path(__file__).parent / "suite_cases_2_0.json").read_text())
    bodies = [case["statement"] for case in cases if isinstance(case, dict) and "statement" in case]
    assert bodies
    for body in bodies:
        check(json.dumps(body))
