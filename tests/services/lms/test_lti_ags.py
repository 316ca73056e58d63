"""What AGS posts for a session's result (appliance.services.lms.lti.ags.result_of), and its scores URL."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.services.lms.lti.ags import result_of, scores_url


def session(status: str, completion: str = "unknown", **score: float | None) -> dict[str, Any]:
    return {
        "status": status,
        "completion_status": completion,
        "score_scaled": score.get("scaled"),
        "score_raw": score.get("raw"),
        "score_min": score.get("min"),
        "score_max": score.get("max"),
    }


def test_nothing_is_posted_for_a_session_in_progress_without_a_score() -> None:
    assert result_of(session("not_started")) is None
    assert result_of(session("incomplete", "incomplete")) is None


@pytest.mark.parametrize(
    ("row", "given"),
    [
        (session("passed", scaled=0.87, raw=87, min=0, max=100), 87.0),  # the scaled score wins
        (session("failed", raw=6, min=0, max=10), 60.0),  # raw within min..max
        (session("failed", raw=60), 60.0),  # no min and max: 0..100
        (session("passed", scaled=1.7), 100.0),  # clamped
        (session("failed", raw=-5, min=0, max=100), 0.0),
    ],
)
def test_the_score_is_out_of_100(row: dict[str, Any], given: float) -> None:
    result = result_of(row)
    assert result is not None
    assert (result["scoreGiven"], result["scoreMaximum"]) == (given, 100.0)
    assert (result["activityProgress"], result["gradingProgress"]) == ("Completed", "FullyGraded")


def test_completion_without_a_score_and_a_score_in_progress() -> None:
    assert result_of(session("completed", "completed")) == {
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
    }
    assert result_of(session("incomplete", "incomplete", raw=40)) == {
        "activityProgress": "InProgress",
        "gradingProgress": "Pending",
        "scoreGiven": 40.0,
        "scoreMaximum": 100.0,
    }
    assert result_of(session("incomplete", raw=5, min=5, max=5)) is None  # no range: no score to give


def test_scores_url_keeps_the_line_items_query() -> None:
    assert scores_url("https://lms.example/ags/items/7") == "https://lms.example/ags/items/7/scores"
    assert scores_url("https://lms.example/ags/items/7/?type=1") == "https://lms.example/ags/items/7/scores?type=1"
