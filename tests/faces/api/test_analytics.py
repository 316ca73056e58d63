"""Analytics over sessions made through the real runtime endpoints (launch and commit with cmi.interactions)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning import analytics, analytics_index
from appliance.storage.sqlite.connection import rows
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, build_zip, manifest_2004, package_12, upload_ready
from tests.faces.api.test_webhooks import Learner, new_session

REPORTS = "/api/v1/analytics"
DAY = 86_400.0


def answer(
    index: int, qid: str, kind: str, response: str, result: str | None, latency: str | None = None
) -> dict[str, str]:
    """SCORM 1.2 writes of one interaction record."""
    prefix = f"cmi.interactions.{index}"
    writes = {f"{prefix}.id": qid, f"{prefix}.type": kind, f"{prefix}.student_response": response}
    if result is not None:
        writes[f"{prefix}.result"] = result
    if latency is not None:
        writes[f"{prefix}.latency"] = latency
    return writes


def finish(learner: Learner, status: str, raw: str, session_time: str, exit_: str = "") -> None:
    changes = {"cmi.core.lesson_status": status, "cmi.core.score.raw": raw, "cmi.core.session_time": session_time}
    if exit_:
        changes["cmi.core.exit"] = exit_
    learner.commit(changes, terminate=True)


@pytest.fixture
def course(api: TestClient, acme: TenantKey, clock: FixedClock) -> dict[str, Any]:
    """One SCORM 1.2 package and four learners' sessions, run through the player's endpoints."""
    package = upload_ready(api, acme, package_12("Quiz"))
    sessions = {}
    ann = Learner(api, new_session(api, acme, package["id"], "ann")).launch()
    ann.commit(
        {**answer(0, "q1", "choice", "a", "correct", "00:00:30"), **answer(1, "q2", "fill-in", "paris", "correct")}
    )
    finish(ann, "passed", "90", "00:10:00")
    clock.advance(DAY)
    bob = Learner(api, new_session(api, acme, package["id"], "bob")).launch()
    bob.commit({**answer(0, "q1", "choice", "b", "wrong", "00:00:50"), **answer(1, "q2", "fill-in", "lyon", "wrong")})
    finish(bob, "failed", "40", "00:20:00")
    cat = Learner(api, new_session(api, acme, package["id"], "cat")).launch()
    cat.commit({**answer(0, "q1", "choice", "a", "correct"), **answer(1, "q2", "fill-in", "paris", None)})
    finish(cat, "incomplete", "70", "00:05:00", exit_="suspend")
    sessions["dan"] = new_session(api, acme, package["id"], "dan")  # never launched
    return {"package": package, "learners": {"ann": ann, "bob": bob, "cat": cat}, "sessions": sessions}


def report(api: TestClient, who: TenantKey, package_id: str, query: str = "") -> dict[str, Any]:
    response = api.get(f"{REPORTS}/packages/{package_id}{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_package_report(api: TestClient, acme: TenantKey, course: dict[str, Any], clock: FixedClock) -> None:
    data = report(api, acme, course["package"]["id"], "?days=3")
    assert data["package_id"] == course["package"]["id"]
    assert data["title"] == "Quiz"
    assert data["sessions"] == {
        "total": 4,
        "by_status": {"not_started": 1, "incomplete": 1, "completed": 0, "passed": 1, "failed": 1, "expired": 0},
    }
    assert (data["completed"], data["passed"], data["failed"]) == (2, 1, 1)
    assert data["completion_rate"] == 0.5  # completed sessions of all sessions
    assert data["pass_rate"] == 0.5  # passed of those with a pass/fail verdict
    score = data["score"]
    assert score["count"] == 3
    assert score["average_scaled"] == round((0.9 + 0.4 + 0.7) / 3, 4)
    assert [b["count"] for b in score["distribution"]] == [0, 0, 0, 0, 1, 0, 0, 1, 0, 1]
    assert (score["distribution"][0]["min"], score["distribution"][0]["max"]) == (0.0, 0.1)
    assert (score["distribution"][9]["min"], score["distribution"][9]["max"]) == (0.9, 1.0)
    assert data["time"] == {
        "count": 3,
        "average_seconds": 700.0,
        "median_seconds": 600.0,
        "average": "PT11M40S",
        "median": "PT10M",
    }
    q1, q2 = data["interactions"]
    assert q1 == {
        "id": "q1",
        "type": "choice",
        "description": None,
        "attempts": 3,
        "correct": 2,
        "correct_rate": 0.6667,
        "results": {"correct": 2, "incorrect": 1, "unanticipated": 0, "neutral": 0, "numeric": 0, "none": 0},
        "average_latency_seconds": 40.0,
        "top_responses": [{"response": "a", "count": 2}, {"response": "b", "count": 1}],
    }
    assert (q2["id"], q2["type"], q2["attempts"], q2["correct"], q2["correct_rate"]) == ("q2", "fill-in", 3, 1, 0.5)
    assert q2["results"]["none"] == 1
    assert q2["average_latency_seconds"] is None
    assert q2["top_responses"] == [{"response": "paris", "count": 2}, {"response": "lyon", "count": 1}]
    # Completions per day: Ann finished yesterday, Bob today (Cat suspended, Dan never started).
    assert [d["completions"] for d in data["completions_per_day"]] == [0, 1, 1]
    dates = [d["date"] for d in data["completions_per_day"]]
    assert dates == sorted(dates) and len(set(dates)) == 3
    assert data["generated_at"].endswith("Z")


def test_the_index_follows_changes_to_interactions_and_sessions(
    api: TestClient, acme: TenantKey, course: dict[str, Any]
) -> None:
    package_id = course["package"]["id"]
    cat = course["learners"]["cat"]
    cat.launch()  # resumes the suspended attempt
    # Cat's q2 now has a result, and Cat answers q1 a second time (a new record).
    cat.commit({"cmi.interactions.1.result": "correct", **answer(2, "q1", "choice", "c", "wrong")})
    q1, q2 = report(api, acme, package_id)["interactions"]
    assert (q1["attempts"], q1["correct"], q1["results"]["incorrect"]) == (4, 2, 2)
    assert {r["response"]: r["count"] for r in q1["top_responses"]} == {"a": 2, "b": 1, "c": 1}
    assert (q2["attempts"], q2["correct"], q2["results"]["none"], q2["correct_rate"]) == (3, 2, 0, 0.6667)
    # A commit that does not touch interactions changes nothing.
    cat.commit({"cmi.core.lesson_location": "page-3"})
    assert report(api, acme, package_id)["interactions"] == [q1, q2]
    # Deleting a session takes its answers out of the statistics.
    bob_id = api.get("/api/v1/sessions?learner_id=bob", headers=acme.headers).json()["data"][0]["id"]
    assert api.delete(f"/api/v1/sessions/{bob_id}", headers=acme.headers).status_code == 204
    after = report(api, acme, package_id)
    q1, q2 = after["interactions"]
    assert (q1["attempts"], q1["results"]["incorrect"]) == (3, 1)
    assert {r["response"] for r in q1["top_responses"]} == {"a", "c"}
    assert [r["response"] for r in q2["top_responses"]] == ["paris"]
    assert after["sessions"]["total"] == 3
    assert after["failed"] == 0


def test_backfill_rebuilds_the_same_figures(
    api: TestClient, config: Config, acme: TenantKey, course: dict[str, Any]
) -> None:
    package_id = course["package"]["id"]
    before = report(api, acme, package_id)
    inst = Instance(config)
    try:

        def rebuild(conn: Any) -> int:
            conn.execute("DELETE FROM session_interactions")
            conn.execute("DELETE FROM session_completions")
            assert rows(conn, "SELECT * FROM interaction_stats") == []  # the triggers emptied the counters
            return analytics_index.backfill(conn)

        assert inst.tenant_db(acme.tenant_id).write_sync(rebuild) == 4
    finally:
        inst.close()
    after = report(api, acme, package_id)
    before.pop("generated_at"), after.pop("generated_at")
    # Backfilled completions are dated by the session's last update rather than the moment of completion.
    assert sum(d["completions"] for d in after["completions_per_day"]) == 2
    before.pop("completions_per_day"), after.pop("completions_per_day")
    assert after == before


def test_csv_report(api: TestClient, acme: TenantKey, course: dict[str, Any]) -> None:
    package_id = course["package"]["id"]
    response = api.get(f"{REPORTS}/packages/{package_id}?format=csv", headers=acme.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="{package_id}-interactions.csv"' in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["interaction_id"] for r in table] == ["q1", "q2"]
    assert table[0]["attempts"] == "3" and table[0]["correct_rate"] == "0.6667"
    assert table[0]["top_responses"] == "a (2); b (1)"
    assert table[1]["average_latency_seconds"] == ""
    scores = api.get(f"{REPORTS}/packages/{package_id}?format=csv&section=score_distribution", headers=acme.headers)
    assert list(csv.reader(io.StringIO(scores.text)))[0] == ["min_scaled", "max_scaled", "sessions"]
    assert len(list(csv.reader(io.StringIO(scores.text)))) == 11
    for section in ("sessions_by_status", "completions_per_day"):
        ok = api.get(f"{REPORTS}/packages/{package_id}?format=csv&section={section}", headers=acme.headers)
        assert ok.status_code == 200 and ok.text.count("\r\n") > 1
    bad = api.get(f"{REPORTS}/packages/{package_id}?format=csv&section=nope", headers=acme.headers)
    assert_error(bad, 422, "VALIDATION_ERROR")
    assert_error(api.get(f"{REPORTS}/packages/{package_id}?format=xml", headers=acme.headers), 422, "VALIDATION_ERROR")


def test_csv_cells_cannot_become_spreadsheet_formulas() -> None:
    text = analytics.report_csv(
        {
            "interactions": [
                {
                    "id": "=cmd()",
                    "type": "fill-in",
                    "description": None,
                    "attempts": 1,
                    "correct_rate": None,
                    "average_latency_seconds": None,
                    "results": dict.fromkeys(("correct", "incorrect", "unanticipated", "neutral", "numeric"), 0)
                    | {"none": 1},
                    "top_responses": [{"response": "+1", "count": 1}],
                }
            ]
        }
    )
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0] == "'=cmd()" and row[-1] == "'+1 (1)"


def test_summary(api: TestClient, acme: TenantKey, course: dict[str, Any]) -> None:
    upload_ready(api, acme, package_12("Unused"))
    response = api.get(f"{REPORTS}/summary?days=2", headers=acme.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["packages"] == {"total": 2, "by_status": {"processing": 0, "ready": 2, "failed": 0}}
    assert data["sessions"]["total"] == 4
    assert data["sessions"]["by_status"]["passed"] == 1
    assert (data["completion_rate"], data["pass_rate"]) == (0.5, 0.5)
    assert [d["completions"] for d in data["completions_per_day"]] == [1, 1]
    [top] = data["top_packages"]
    assert (top["package_id"], top["title"], top["deleted"]) == (course["package"]["id"], "Quiz", False)
    assert top["sessions"]["total"] == 4 and top["completion_rate"] == 0.5


def test_empty_reports_and_errors(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    empty = report(api, acme, package["id"])
    assert empty["sessions"]["total"] == 0
    assert (empty["completion_rate"], empty["pass_rate"]) == (None, None)
    assert empty["score"]["average_scaled"] is None and empty["time"]["median_seconds"] is None
    assert empty["interactions"] == []
    assert len(empty["completions_per_day"]) == analytics.DEFAULT_DAYS
    assert_error(api.get(f"{REPORTS}/packages/pkg_nope", headers=acme.headers), 404, "NOT_FOUND")
    assert_error(api.get(f"{REPORTS}/packages/{package['id']}", headers=globex.headers), 404, "NOT_FOUND")
    assert_error(api.get(f"{REPORTS}/packages/{package['id']}?days=0", headers=acme.headers), 422, "VALIDATION_ERROR")
    assert_error(api.get(f"{REPORTS}/summary"), 401, "UNAUTHORIZED")
    assert api.get(f"{REPORTS}/summary", headers=globex.headers).json()["sessions"]["total"] == 0


def package_2004() -> bytes:
    manifest = manifest_2004().replace(b'<item identifier="b" identifierref="sco_b"><title>B</title></item>', b"")
    return build_zip({"imsmanifest.xml": manifest, "a.html": b"<html>A</html>", "b.html": b"<html>B</html>"})


def test_scorm_2004_interactions(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_2004())
    learner = Learner(api, new_session(api, acme, package["id"])).launch()
    learner.commit(
        {
            "cmi.interactions.0.id": "capital",
            "cmi.interactions.0.type": "choice",
            "cmi.interactions.0.description": "Capital of France",
            "cmi.interactions.0.learner_response": "lyon",
            "cmi.interactions.0.result": "incorrect",
            "cmi.interactions.0.latency": "PT1M30S",
            "cmi.interactions.1.id": "estimate",
            "cmi.interactions.1.type": "numeric",
            "cmi.interactions.1.learner_response": "42",
            "cmi.interactions.1.result": "0.5",
        }
    )
    # 2004 interactions can be rewritten in place: the learner changes the answer.
    learner.commit({"cmi.interactions.0.learner_response": "paris", "cmi.interactions.0.result": "correct"})
    learner.commit({"cmi.completion_status": "completed", "cmi.success_status": "passed", "cmi.score.scaled": "1"})
    data = report(api, acme, package["id"])
    capital, estimate = data["interactions"]
    assert (capital["id"], capital["description"], capital["attempts"], capital["correct_rate"]) == (
        "capital",
        "Capital of France",
        1,
        1.0,
    )
    assert capital["top_responses"] == [{"response": "paris", "count": 1}]
    assert capital["average_latency_seconds"] == 90.0
    assert estimate["results"]["numeric"] == 1 and estimate["correct_rate"] is None
    assert data["score"]["distribution"][9]["count"] == 1
    assert (data["completed"], data["passed"]) == (1, 1)
