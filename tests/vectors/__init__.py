"""Shared data-model test vectors (cmi_vectors.json), run against datamodel.py and datamodel.js."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).with_name("cmi_vectors.json")


def load_document() -> dict[str, Any]:
    """The whole vectors file: {"initial": {version: cmi}, "vectors": [...]}."""
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def expand(value: Any) -> Any:
    """Long strings are stored as {"repeat": c, "count": n}."""
    if isinstance(value, dict):
        return value["repeat"] * value["count"]
    return value


def launch_cmi(document: dict[str, Any], vector: dict[str, Any]) -> dict[str, str]:
    """The vector's CMI at launch: the version's initial values with the vector's changes (null removes)."""
    cmi = dict(document["initial"][vector["version"]])
    for key, value in vector.get("initial", {}).items():
        if value is None:
            cmi.pop(key, None)
        else:
            cmi[key] = value
    return cmi


def vector_id(index: int, vector: dict[str, Any]) -> str:
    value = vector["value"]
    shown = f"<{value['count']}x{value['repeat']}>" if isinstance(value, dict) else value
    text = f"{vector['op']} {vector['element']}" + ("" if vector["op"] == "get" else f"={shown!r}"[:40])
    return f"{index:04d} {vector['version']} {text}"
