"""SCORM 2004 data-model error codes over HTTP: 406, 407 and 351 in the contract's CMI_VALIDATION_ERROR.

The data model's own tests check these codes below the API; here the same writes go through the two HTTP
routes that take CMI data (an API client's `PATCH /api/v1/sessions/{id}` and the player's
`POST /player/{token}/commit`), and the answer must be `422 CMI_VALIDATION_ERROR` with
`details.errors[] = {element, value, scorm_error_code, message}` (docs/errors.md), the code being the one
the content would have seen from GetLastError, and nothing of the write stored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, build_zip, manifest_2004, upload_ready
from tests.faces.api.test_sessions import SESSIONS, Player, create, read

# SCORM 2004 error strings (RTE book 3.1.7): the message of each error starts with the code's string.
ERROR_STRINGS = {
    351: "General Set Failure",
    406: "Data Model Element Type Mismatch",
    407: "Data Model Element Value Out Of Range",
}

# (code, the write, the element refused): every write below is refused by SetValue with that code.
REFUSED = [
    pytest.param(406, {"cmi.score.raw": "abc"}, "cmi.score.raw", id="406 not a real"),
    pytest.param(406, {"cmi.completion_status": "great"}, "cmi.completion_status", id="406 not in the vocabulary"),
    pytest.param(407, {"cmi.score.scaled": "2"}, "cmi.score.scaled", id="407 scaled above 1"),
    pytest.param(407, {"cmi.learner_preference.audio_level": "-1"}, "cmi.learner_preference.audio_level", id="407"),
    pytest.param(351, {"cmi.objectives.3.id": "obj"}, "cmi.objectives.3.id", id="351 index beyond the records"),
    pytest.param(
        351,
        {"cmi.objectives.0.id": "obj", "cmi.objectives.1.id": "obj"},
        "cmi.objectives.1.id",
        id="351 objective id not unique",
    ),
]


def package_2004_plain() -> bytes:
    """One SCORM 2004 4th Edition SCO without sequencing, so its CMI data starts empty on both routes (no
    objective ids given by the sequencer at launch)."""
    manifest = manifest_2004().replace(b'<item identifier="b" identifierref="sco_b"><title>B</title></item>', b"")
    manifest = re.sub(rb"<imsss:sequencing>.*?</imsss:sequencing>", b"", manifest)
    return build_zip({"imsmanifest.xml": manifest, "a.html": b"<html>A</html>", "b.html": b"<html>B</html>"})


@pytest.fixture
def session(api: TestClient, acme: TenantKey) -> dict[str, Any]:
    """A session on a one-SCO SCORM 2004 4th Edition package."""
    package = upload_ready(api, acme, package_2004_plain())
    response = create(api, acme, package["id"])
    assert response.status_code == 201, response.text
    return response.json()


def assert_refused(response: Any, code: int, element: str, changes: dict[str, str]) -> None:
    """422 CMI_VALIDATION_ERROR naming exactly the refused element, with its SCORM code, in the contract's shape."""
    details = assert_error(response, 422, "CMI_VALIDATION_ERROR")["details"]
    assert set(details) == {"errors"}, details
    assert len(details["errors"]) == 1, details
    error = details["errors"][0]
    assert set(error) == {"element", "value", "scorm_error_code", "message"}, error
    assert error["element"] == element
    assert error["value"] == changes[element]
    assert error["scorm_error_code"] == code
    assert isinstance(error["scorm_error_code"], int)
    assert error["message"].startswith(ERROR_STRINGS[code]), error["message"]


@pytest.mark.parametrize(("code", "changes", "element"), REFUSED)
def test_patch_answers_the_scorm_error_code(
    api: TestClient, acme: TenantKey, session: dict[str, Any], code: int, changes: dict[str, str], element: str
) -> None:
    sid = session["id"]
    before = read(api, acme, sid)
    written = {"cmi.location": "page 7", **changes}  # a good write in the same update is not stored either
    response = api.patch(f"{SESSIONS}/{sid}", json={"version": before["version"], "cmi": written}, headers=acme.headers)
    assert_refused(response, code, element, written)
    after = read(api, acme, sid)
    assert after["version"] == before["version"]
    assert after["cmi"] == before["cmi"]
    assert after["cmi"].get("cmi.location", "") == ""


@pytest.mark.parametrize(("code", "changes", "element"), REFUSED)
def test_player_commit_answers_the_scorm_error_code(
    api: TestClient, session: dict[str, Any], code: int, changes: dict[str, str], element: str
) -> None:
    player = Player(api, session)
    player.launch()
    assert player.commit({"cmi.location": "page 1"}).status_code == 200
    version = player.version
    written = {"cmi.location": "page 7", **changes}
    response = player.commit(written)
    assert_refused(response, code, element, written)
    assert response.headers["cache-control"] == "no-store"
    state = api.get(f"{player.path}/state", params={"activity": player.activity})
    assert state.status_code == 200, state.text
    assert state.json()["cmi"]["cmi.location"] == "page 1"
    assert state.json()["version"] == version
    # The same client goes on: a good commit after the refused one is stored.
    assert player.commit({"cmi.location": "page 8"}).status_code == 200


def test_one_update_reports_every_refused_element_with_its_own_code(
    api: TestClient, acme: TenantKey, session: dict[str, Any]
) -> None:
    sid = session["id"]
    version = read(api, acme, sid)["version"]
    written = {
        "cmi.score.raw": "abc",
        "cmi.score.scaled": "-1.5",
        "cmi.objectives.2.id": "obj",
        "cmi.session_time": "PT1M",
    }
    response = api.patch(f"{SESSIONS}/{sid}", json={"version": version, "cmi": written}, headers=acme.headers)
    errors = assert_error(response, 422, "CMI_VALIDATION_ERROR")["details"]["errors"]
    assert {e["element"]: e["scorm_error_code"] for e in errors} == {
        "cmi.score.raw": 406,
        "cmi.score.scaled": 407,
        "cmi.objectives.2.id": 351,
    }
    assert read(api, acme, sid)["version"] == version
