"""The player's answers in their compact form, over HTTP: the TOC's outline once (on launch, and again only
when the player's `toc_key` is not the current one), request_valid and the TOC as the engine gives them
once expanded, and a Terminate's answer encoded off the event loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.core.scorm.sequencing import outline
from appliance.core.scorm.sequencing.engine import SequencingEngine
from appliance.services.learning import engine_state, runtime
from appliance.services.learning.sessions import session_row
from appliance.services.library.courses import load_course
from tests.conftest import TenantKey
from tests.faces.api.test_activity_limit import wide_course
from tests.faces.api.test_packages import upload_ready
from tests.faces.api.test_sessions import Player, create


def _launched(api: TestClient, who: TenantKey, items: int = 40) -> tuple[Player, dict[str, Any]]:
    package = upload_ready(api, who, wide_course(items, flow=True))
    session = create(api, who, package["id"]).json()
    player = Player(api, session)
    player.session_id = session["id"]  # type: ignore[attr-defined]
    return player, player.launch()


def _engine_answers(api: TestClient, who: TenantKey, player: Player) -> tuple[dict[str, Any], dict[str, str]]:
    """The full TOC and request_valid of the session's stored state, from the engine itself."""
    inst = api.app.state.instance
    db = inst.tenant_db(who.tenant_id)
    row = db.read_sync(lambda conn: session_row(conn, player.session_id))  # type: ignore[attr-defined]
    course = load_course(inst, who.tenant_id, row["package_id"], row["package_version"])
    engine = db.read_sync(lambda conn: engine_state.load_engine(conn, course, row))
    assert isinstance(engine, SequencingEngine)
    return engine.toc(), engine.request_valid()


def test_the_outline_is_sent_once_and_the_answers_expand_to_the_engines(api: TestClient, acme: TenantKey) -> None:
    player, launched = _launched(api, acme)
    shape = launched["toc"]["outline"]
    assert shape is not None and shape["key"] == launched["toc"]["key"]
    assert len(shape["ids"]) == 41  # the organization and its 40 items
    assert not any(name.startswith("adl.nav.request_valid") for name in launched["delivery"]["cmi"])
    toc, valid = _engine_answers(api, acme, player)
    assert outline.expand_toc(shape, launched["toc"]) == toc
    assert outline.expand_request_valid(shape, launched["request_valid"]) == valid
    key = launched["toc"]["key"]

    moved = api.post(f"{player.path}/navigate", json={"request": "choice", "target": "i30", "toc_key": key})
    assert moved.status_code == 200, moved.text
    answer = moved.json()
    assert answer["delivery"]["activity"] == "i30"
    assert answer["toc"]["key"] == key and answer["toc"]["outline"] is None  # the player holds it
    toc, valid = _engine_answers(api, acme, player)
    assert outline.expand_toc(shape, answer["toc"]) == toc
    assert outline.expand_request_valid(shape, answer["request_valid"]) == valid
    assert answer["toc"]["current"] == shape["ids"].index("i30")

    # A Terminate with the key: no outline; without it (a journal's replay, an old page): the outline.
    body = {"client_id": "p", "seq": 1, "activity": "i30", "changes": {}, "terminate": True}
    body |= {"nav_request": "continue", "toc_key": key}
    ended = api.post(f"{player.path}/commit", json=body)
    assert ended.status_code == 200, ended.text
    assert ended.json()["delivery"]["activity"] == "i31" and ended.json()["toc"]["outline"] is None
    again = api.post(f"{player.path}/navigate", json={"request": "previous", "toc_key": "stale"})
    assert again.status_code == 200, again.text
    assert again.json()["toc"]["outline"] == shape


def test_an_unknown_field_beside_toc_key_is_still_refused(api: TestClient, acme: TenantKey) -> None:
    player, launched = _launched(api, acme, items=3)
    body = {"request": "continue", "toc_key": launched["toc"]["key"], "tocKey": "x"}
    response = api.post(f"{player.path}/navigate", json=body)
    assert response.status_code in (400, 422), response.text


def test_a_terminates_answer_is_encoded_off_the_event_loop(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit endpoint answers on the event loop; the Terminate's JSON is made in its worker thread."""
    player, launched = _launched(api, acme, items=5)
    threads: list[threading.Thread] = []
    encoded = runtime._encoded

    def spy(work: Any, *args: Any) -> Any:
        threads.append(threading.current_thread())
        return encoded(work, *args)

    monkeypatch.setattr(runtime, "_encoded", spy)
    body = {"client_id": "p", "seq": 1, "activity": "i0", "changes": {}, "terminate": True, "nav_request": "continue"}
    ended = api.post(f"{player.path}/commit", json=body)
    assert ended.status_code == 200, ended.text
    assert ended.json()["delivery"]["activity"] == "i1"
    assert ended.json()["toc"]["outline"]["key"] == launched["toc"]["key"]
    assert len(threads) == 1
    loop_thread = api.blocking_portal.call(threading.current_thread)
    assert threads[0] is not loop_thread
