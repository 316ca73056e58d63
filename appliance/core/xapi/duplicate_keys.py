"""Duplicate keys in a JSON object: an xAPI 2.0 LRS refuses a statement that has them (400); 1.0.3
asks nothing of the kind, and its conformance battery expects such statements to be taken.

A JSON decoder keeps the last of two equal keys, so the decoded value cannot tell. The check is
cheap instead: the number of keys in the text (string tokens followed by a colon, one regular
expression over the bytes, in C) against the number of keys in the decoded value; only when they
differ is the text decoded again, slowly, to say where the duplicate is.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A JSON string token, and the colon after it when it is an object's key. Scanning from the start,
# every `"` outside a string opens one, so the matches are exactly the text's string tokens.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"\s*(:?)', re.DOTALL)


class DuplicateKey(ValueError):
    """A JSON object with the same key twice; `path` says where (`statements[2].actor.name`)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: duplicate key in a JSON object")
        self.path = path


def _keys_in_text(raw: bytes) -> int:
    return _STRING.findall(raw).count(b":")


def _keys_in_value(value: Any) -> int:
    if type(value) is dict:
        return len(value) + sum(_keys_in_value(v) for v in value.values() if type(v) in (dict, list))
    if type(value) is list:
        return sum(_keys_in_value(v) for v in value if type(v) in (dict, list))
    return 0


def check_no_duplicate_keys(raw: bytes, value: Any, root: str) -> None:
    """Raise DuplicateKey when the JSON text `raw`, which decoded to `value`, repeats a key in an
    object; `root` names the top of the path (`statement`, or `statements` for an array)."""
    if _keys_in_text(raw) == _keys_in_value(value):
        return
    path = _first_duplicate(raw, root)
    if path is not None:
        raise DuplicateKey(path)


def _first_duplicate(raw: bytes, root: str) -> str | None:
    """Where the first duplicate key is (the slow path), None when there is none after all."""
    found: list[str] = []
    try:
        tree = json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        return None
    _walk(tree, root, found)
    return found[0] if found else None


class _Pairs(list):  # type: ignore[type-arg]
    """An object as its (key, value) pairs in order, duplicates kept."""


def _walk(node: Any, path: str, found: list[str]) -> None:
    if found:
        return
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            if key in seen:
                found.append(f"{path}.{key}")
                return
            seen.add(key)
            _walk(value, f"{path}.{key}", found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, f"{path}[{i}]", found)
