"""Every shared data-model vector (tests/vectors/cmi_vectors.json) against the Python DataModel."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.core.scorm.datamodel import DataModel
from tests.vectors import expand, launch_cmi, load_document, vector_id

DOCUMENT = load_document()
VECTORS = DOCUMENT["vectors"]


def run_vector(vector: dict[str, Any]) -> tuple[int, str | None]:
    """Apply the setup writes, then the vector's call; answers (error code, value of a get)."""
    model = DataModel(
        vector["version"],
        launch_cmi(DOCUMENT, vector),
        data_access=vector.get("data_access", []),
        suspend_data_limit=vector.get("suspend_data_limit"),
    )
    for element, value in vector.get("setup", []):
        code = model.set_value(element, value)
        assert code == 0, f"setup {element}={value!r} failed with {code}: {model.diagnostic}"
    if vector["op"] == "set":
        return model.set_value(vector["element"], expand(vector["value"])), None
    value, code = model.get_value(vector["element"])
    return code, value


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 500
    assert {v["version"] for v in VECTORS} == {"1.2", "2004 2nd Edition", "2004 3rd Edition", "2004 4th Edition"}
    assert {v.get("suspend_data_limit") for v in VECTORS} == {None, 4096, 10000, 64000}


@pytest.mark.parametrize("vector", VECTORS, ids=[vector_id(i, v) for i, v in enumerate(VECTORS)])
def test_vector(vector: dict[str, Any]) -> None:
    code, value = run_vector(vector)
    assert code == vector["expected_error"]
    if vector["op"] == "get":
        assert value == vector["expected_value"]
