"""Sequencing requests (launch, navigate) outside the tenant's writer lock, with a compare-and-swap and a CPU
budget: real app, real SQLite files, real threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.core.scorm.sequencing import outline, tracking
from appliance.core.scorm.sequencing.engine import NavResult, SequencingEngine
from appliance.instance import Instance
from appliance.services.learning import player_requests, runtime, sequencing_steps, terminations
from tests.conftest import TenantKey
from tests.faces.api.test_activity_limit import wide_course
from tests.faces.api.test_packages import make_client, upload_ready
from tests.faces.api.test_sessions import Player, create, read


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def _session(api: TestClient, who: TenantKey, items: int = 3, learner: str = "learner-1") -> dict[str, Any]:
    package = upload_ready(api, who, wide_course(items, flow=True))
    response = create(api, who, package["id"], learner=learner)
    assert response.status_code == 201, response.text
    return response.json()


def _instance(api: TestClient) -> Instance:
    return api.app.state.instance


def _launch_step(engine: SequencingEngine, now: float) -> NavResult:
    return engine.launch(now=now)


def _write_meanwhile(
    db: Any, work: Any, computing: threading.Event, release: threading.Event, what: str
) -> list[dict[str, Any]]:
    """Run `work` in a thread; once it signals `computing` (it then waits for `release`), another write to
    the tenant must go through at once — with the sequencing inside the write transaction, as before,
    it would wait for `release`. Returns `work`'s answer (in a list: empty if it failed)."""
    results: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: results.append(work()))
    worker.start()
    try:
        assert computing.wait(10)
        written = threading.Event()
        other = threading.Thread(
            target=lambda: (db.write_sync(lambda c: c.execute("UPDATE packages SET title = title")), written.set())
        )
        other.start()
        assert written.wait(5), what
        other.join()
    finally:
        release.set()
        worker.join(10)
    return results


def test_the_writer_lock_is_free_while_a_step_computes(api: TestClient, acme: TenantKey) -> None:
    """While one learner's launch is sequencing, another write to the same tenant goes through at once."""
    session = _session(api, acme)
    inst = _instance(api)
    db = inst.tenant_db(acme.tenant_id)
    computing, release = threading.Event(), threading.Event()

    def slow_step(engine: SequencingEngine, now: float) -> NavResult:
        computing.set()
        assert release.wait(10)
        return engine.launch(now=now)

    results = _write_meanwhile(
        db,
        lambda: runtime._sequencing_step(inst, acme.tenant_id, session["id"], slow_step),
        computing,
        release,
        "a tenant write waited for another learner's sequencing",
    )
    assert results and results[0]["delivery"]["activity"] == "i0"


def test_a_session_changed_meanwhile_is_computed_again(api: TestClient, acme: TenantKey) -> None:
    """Compare-and-swap: a commit that lands between the snapshot and the write makes the step run again on
    the new state; neither the commit nor the step's own writes are lost."""
    session = _session(api, acme)
    player = Player(api, session)
    player.launch()
    inst = _instance(api)
    calls: list[int] = []

    def racing_step(engine: SequencingEngine, now: float) -> NavResult:
        calls.append(1)
        if len(calls) == 1:  # the SCO's commit lands while we compute
            assert player.commit({"cmi.location": "page-7"}).status_code == 200
        return engine.navigate("continue", now=now)

    before = read(api, acme, session["id"])
    answer = runtime._sequencing_step(inst, acme.tenant_id, session["id"], racing_step)
    assert len(calls) == 2
    after = read(api, acme, session["id"])
    assert answer["version"] == after["version"] == before["version"] + 2  # the commit's, then the step's
    assert after["activities"]["i0"]["cmi"]["cmi.location"] == "page-7"
    assert answer["current"] == "i1" and after["current_activity"] == "i1"


def test_after_the_bounded_retries_the_step_runs_under_the_lock(api: TestClient, acme: TenantKey) -> None:
    session = _session(api, acme)
    inst = _instance(api)
    db = inst.tenant_db(acme.tenant_id)
    calls: list[int] = []

    def always_raced(engine: SequencingEngine, now: float) -> NavResult:
        calls.append(1)
        # Inside the write transaction of the last attempt this joins it (and no longer conflicts).
        db.write_sync(
            lambda c: c.execute("UPDATE sessions SET updated_at = updated_at + 1 WHERE id = ?", (session["id"],))
        )
        return engine.launch(now=now)

    answer = runtime._sequencing_step(inst, acme.tenant_id, session["id"], always_raced, launching=True)
    assert len(calls) == sequencing_steps.SEQUENCING_ATTEMPTS + 1
    assert answer["delivery"]["activity"] == "i0"
    assert read(api, acme, session["id"])["current_activity"] == "i0"


def test_a_step_over_its_cpu_budget_is_refused_and_writes_nothing(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(api, acme, items=1500)
    before = read(api, acme, session["id"], cmi=False)
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 0.0)
    response = api.post(f"{Player(api, session).path}/launch")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "SEQUENCING_TOO_COSTLY"
    assert body["details"] == {"budget_seconds": 0.0, "activities": 1501}
    after = read(api, acme, session["id"], cmi=False)
    assert (after["version"], after["current_activity"], after["status"]) == (
        before["version"],
        None,
        "not_started",
    )
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 2.0)
    assert Player(api, session).launch()["delivery"]["activity"] == "i0"


def test_a_large_course_launches_and_navigates_quickly(api: TestClient, acme: TenantKey) -> None:
    """At the package limit a launch and a choice cost milliseconds, not the minutes the per-activity
    look-ahead took (5 s at 1,000 items); a loose bound, since the machine may be busy."""
    session = _session(api, acme, items=5000)
    player = Player(api, session)
    start = time.perf_counter()
    launched = player.launch()
    launch_s = time.perf_counter() - start
    assert launched["delivery"]["activity"] == "i0"
    valid = outline.expand_request_valid(launched["toc"]["outline"], launched["request_valid"])
    assert valid["adl.nav.request_valid.choice.{target=i4999}"] == "true"
    assert not any(name.startswith("adl.nav.request_valid") for name in launched["delivery"]["cmi"])
    start = time.perf_counter()
    moved = api.post(f"{player.path}/navigate", json={"request": "choice", "target": "i4000"})
    navigate_s = time.perf_counter() - start
    assert moved.status_code == 200, moved.text
    assert moved.json()["delivery"]["activity"] == "i4000"
    assert launch_s < 2.0 and navigate_s < 2.0, (launch_s, navigate_s)


# -- a Terminate that navigates: the same snapshot and compare-and-swap -------------------------------------


def _terminate_body(player: Player, nav: str = "continue") -> player_requests.CommitIn:
    player.seq += 1
    return player_requests.CommitIn(
        client_id=player.client_id,
        seq=player.seq,
        activity=player.activity or "",
        changes={"cmi.completion_status": "completed"},
        version=player.version,
        terminate=True,
        nav_request=nav,
    )


def test_the_writer_lock_is_free_while_a_terminate_sequences(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a SCO's Terminate with `continue` is sequencing, another write to the same tenant goes through
    at once; the Terminate's own writes land afterwards, whole."""
    session = _session(api, acme)
    player = Player(api, session)
    player.launch()
    inst = _instance(api)
    db = inst.tenant_db(acme.tenant_id)
    computing, release = threading.Event(), threading.Event()
    original = terminations._terminate

    def slow_terminate(*args: Any) -> NavResult:
        computing.set()
        assert release.wait(10)
        return original(*args)

    monkeypatch.setattr(terminations, "_terminate", slow_terminate)
    body = _terminate_body(player)
    results = _write_meanwhile(
        db,
        lambda: runtime.commit(inst, acme.tenant_id, session["id"], body),
        computing,
        release,
        "a tenant write waited for another learner's Terminate",
    )
    assert results and results[0]["delivery"]["activity"] == "i1" and results[0]["current"] == "i1"
    stored = read(api, acme, session["id"])
    assert stored["current_activity"] == "i1" and stored["version"] == results[0]["version"]
    assert stored["activities"]["i0"]["cmi"]["cmi.completion_status"] == "completed"


def test_a_terminate_raced_by_a_commit_is_computed_again(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another page's commit that lands while the Terminate computes makes it run again on the new state:
    neither page's values are lost, and the versions follow one another."""
    session = _session(api, acme)
    player = Player(api, session)
    player.launch()
    other_page = Player(api, session, client_id="page-2")
    other_page.activity = player.activity
    inst = _instance(api)
    calls: list[int] = []
    original = terminations._terminate

    def raced(*args: Any) -> NavResult:
        calls.append(1)
        if len(calls) == 1:  # another page's commit lands while we compute (before, it waited for the lock)
            answered: list[int] = []
            racer = threading.Thread(
                target=lambda: answered.append(other_page.commit({"cmi.location": "page-7"}).status_code)
            )
            racer.start()
            racer.join(5)
            assert answered == [200], "another page's commit waited for this Terminate"
        return original(*args)

    monkeypatch.setattr(terminations, "_terminate", raced)
    before = read(api, acme, session["id"])
    player.version = None  # a conditional Terminate would (rightly) be refused by the other page's commit
    answer = runtime.commit(inst, acme.tenant_id, session["id"], _terminate_body(player))
    assert len(calls) == 2
    after = read(api, acme, session["id"])
    assert answer["version"] == after["version"] == before["version"] + 2
    assert after["activities"]["i0"]["cmi"]["cmi.location"] == "page-7"
    assert after["activities"]["i0"]["cmi"]["cmi.completion_status"] == "completed"
    assert answer["delivery"]["activity"] == "i1" and after["current_activity"] == "i1"


def test_a_terminate_always_raced_runs_under_the_lock(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(api, acme)
    player = Player(api, session)
    player.launch()
    inst = _instance(api)
    db = inst.tenant_db(acme.tenant_id)
    calls: list[int] = []
    original = terminations._terminate

    def always_raced(*args: Any) -> NavResult:
        calls.append(1)
        # Inside the write transaction of the last attempt this joins it (and no longer conflicts).
        db.write_sync(
            lambda c: c.execute("UPDATE sessions SET updated_at = updated_at + 1 WHERE id = ?", (session["id"],))
        )
        return original(*args)

    monkeypatch.setattr(terminations, "_terminate", always_raced)
    answer = runtime.commit(inst, acme.tenant_id, session["id"], _terminate_body(player))
    assert len(calls) == sequencing_steps.SEQUENCING_ATTEMPTS + 1
    assert answer["delivery"]["activity"] == "i1"
    assert read(api, acme, session["id"])["current_activity"] == "i1"


def test_a_terminate_over_its_cpu_budget_changes_nothing(
    api: TestClient, acme: TenantKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the budget the Terminate is SEQUENCING_TOO_COSTLY (422) and the SCO is still running, its
    values as they were, so the player can send it again."""
    session = _session(api, acme)
    player = Player(api, session)
    player.launch()
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 0.0)
    monkeypatch.setattr(tracking, "BUDGET_STRIDE", 1)  # a small course reads too little state to reach a check
    before = read(api, acme, session["id"])
    response = player.commit({"cmi.completion_status": "completed"}, terminate=True, nav="continue")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "SEQUENCING_TOO_COSTLY"
    assert response.json()["details"] == {"budget_seconds": 0.0, "activities": 4}
    after = read(api, acme, session["id"])
    assert after["version"] == before["version"] and after["current_activity"] == "i0"
    assert after["activities"]["i0"]["state"] == "running"
    assert after["activities"]["i0"]["cmi"].get("cmi.completion_status") != "completed"
    monkeypatch.setattr(sequencing_steps, "SEQUENCING_CPU_SECONDS", 2.0)
    again = player.commit({"cmi.completion_status": "completed"}, terminate=True, nav="continue")
    assert again.status_code == 200, again.text
    assert again.json()["delivery"]["activity"] == "i1"
