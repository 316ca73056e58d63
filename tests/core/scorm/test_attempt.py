"""End of session, next launch and the CMI summary (rte-rules.md sections 3-5), and CMI time spans."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.core.scorm.attempt import end_session, next_launch_cmi, summarize
from appliance.core.scorm.durations import (
    MAX_TIMESPAN_CENTIS,
    format_duration,
    format_timespan,
    parse_cmi_time,
    parse_duration,
    parse_timespan,
)
from appliance.core.scorm.launch import initial_cmi
from appliance.core.scorm.model import SCORM_12, SCORM_2004_3RD, SCORM_2004_4TH, Item

LEARNER = {"learner_id": "u1", "learner_name": "Doe, Jane"}


# ------------------------------------------------------------------------------------------ time
@pytest.mark.parametrize(
    ("text", "centis"),
    [("00:00:00", 0), ("0001:30:05.5", 540_550), ("12:00:00.07", 4_320_007), ("9999:59:59.99", MAX_TIMESPAN_CENTIS)],
)
def test_parse_timespan(text: str, centis: int) -> None:
    assert parse_timespan(text) == centis


def test_format_timespan_carries_and_caps() -> None:
    assert format_timespan(540_550) == "0001:30:05.50"
    assert format_timespan(5_999) == "0000:00:59.99"
    assert format_timespan(6_000) == "0000:01:00.00"
    assert format_timespan(MAX_TIMESPAN_CENTIS + 1) == "9999:59:59.99"


@pytest.mark.parametrize(
    ("text", "centis"),
    [
        ("PT0S", 0),
        ("PT1H30M5.5S", 540_550),
        ("P1DT2H", (26 * 3600) * 100),
        ("P1Y", 365 * 86_400 * 100),
        ("P1M", 30 * 86_400 * 100),
        ("P1W", 7 * 86_400 * 100),
        ("PT0.25S", 25),
        ("PT1.005S", 101),
        ("PT0.5M", 3_000),
    ],
)
def test_parse_duration(text: str, centis: int) -> None:
    assert parse_duration(text) == centis


@pytest.mark.parametrize("text", ["P", "PT", "", "1H", "PT1H30", "P1DT", "00:10:00"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(0) == "PT0H0M0S"
    assert format_duration(372_350) == "PT1H2M3.5S"
    assert format_duration(1) == "PT0H0M0.01S"
    assert format_duration(100 * 86_400 * 100) == "PT2400H0M0S"


def test_parse_cmi_time_takes_either_format() -> None:
    assert parse_cmi_time("") == 0
    assert parse_cmi_time("PT1M") == parse_cmi_time("00:01:00") == 6_000


@given(st.integers(min_value=0, max_value=MAX_TIMESPAN_CENTIS))
def test_time_formats_round_trip(centis: int) -> None:
    assert parse_timespan(format_timespan(centis)) == centis
    assert parse_duration(format_duration(centis)) == centis


# --------------------------------------------------------------------------------- end_session 1.2
def cmi_12(**values: str) -> dict[str, str]:
    item = Item("i", "t", mastery_score=80.0)
    cmi = initial_cmi(SCORM_12, item=item, **LEARNER)
    cmi.update({f"cmi.core.{k}": v for k, v in values.items()})
    return cmi


def test_12_adds_session_time_once() -> None:
    cmi = cmi_12(total_time="0001:00:00.00", session_time="00:30:00.50", exit="suspend")
    ended = end_session(SCORM_12, cmi)
    assert ended.cmi["cmi.core.total_time"] == "0001:30:00.50"
    assert "cmi.core.session_time" not in ended.cmi
    assert ended.session_seconds == 1800.5
    assert ended.suspended and ended.exit == "suspend" and ended.nav_request == ""
    assert end_session(SCORM_12, ended.cmi).cmi == ended.cmi


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({}, "completed"),  # never set: the LMS says completed
        ({"lesson_status": "incomplete", "score.raw": "95"}, "incomplete"),
        ({"score.raw": "85"}, "passed"),
        ({"lesson_status": "completed", "score.raw": "79.5"}, "failed"),
        ({"lesson_status": "completed", "score.raw": "80"}, "passed"),
        ({"lesson_status": "failed"}, "failed"),
        ({"lesson_status": "passed", "credit": "no-credit", "score.raw": "10"}, "passed"),
        ({"lesson_mode": "browse"}, "browsed"),
        ({"lesson_mode": "browse", "credit": "no-credit"}, "browsed"),
        ({"lesson_mode": "review", "score.raw": "10", "lesson_status": "passed"}, "passed"),
    ],
)
def test_12_lesson_status_at_finish(values: dict[str, str], status: str) -> None:
    assert end_session(SCORM_12, cmi_12(**values)).cmi["cmi.core.lesson_status"] == status


def test_12_without_mastery_score_keeps_the_sco_status() -> None:
    cmi = initial_cmi(SCORM_12, **LEARNER) | {"cmi.core.lesson_status": "completed", "cmi.core.score.raw": "10"}
    assert end_session(SCORM_12, cmi).cmi["cmi.core.lesson_status"] == "completed"


def test_elapsed_time_counts_only_without_session_time() -> None:
    assert end_session(SCORM_12, cmi_12(), elapsed_seconds=61.5).cmi["cmi.core.total_time"] == "0000:01:01.50"
    cmi = cmi_12(session_time="00:00:10")
    assert end_session(SCORM_12, cmi, elapsed_seconds=61.5).cmi["cmi.core.total_time"] == "0000:00:10.00"


# -------------------------------------------------------------------------------- end_session 2004
def cmi_2004(**values: str) -> dict[str, str]:
    return initial_cmi(SCORM_2004_4TH, **LEARNER) | values


def test_2004_end_session_evaluates_statuses_and_hands_over_navigation() -> None:
    cmi = cmi_2004(
        **{
            "cmi.completion_threshold": "0.8",
            "cmi.progress_measure": "0.9",
            "cmi.completion_status": "incomplete",
            "cmi.scaled_passing_score": "0.5",
            "cmi.score.scaled": "0.4",
            "cmi.success_status": "passed",
            "cmi.session_time": "PT1H1M",
            "cmi.total_time": "PT30M",
            "cmi.exit": "normal",
            "adl.nav.request": "continue",
        }
    )
    ended = end_session(SCORM_2004_4TH, cmi)
    assert ended.cmi["cmi.completion_status"] == "completed"
    assert ended.cmi["cmi.success_status"] == "failed"
    assert ended.cmi["cmi.total_time"] == "PT1H31M0S"
    assert ended.cmi["adl.nav.request"] == "_none_"
    assert ended.nav_request == "continue" and ended.exit == "normal" and not ended.suspended
    assert end_session(SCORM_2004_4TH, ended.cmi).cmi == ended.cmi


def test_2004_without_thresholds_keeps_the_sco_statuses() -> None:
    ended = end_session(SCORM_2004_4TH, cmi_2004(**{"cmi.completion_status": "completed"}), elapsed_seconds=5)
    assert ended.cmi["cmi.completion_status"] == "completed"
    assert ended.cmi["cmi.success_status"] == "unknown"
    assert ended.cmi["cmi.total_time"] == "PT0H0M5S"


# ------------------------------------------------------------------------------------ next launch
def test_first_launch_is_a_new_attempt() -> None:
    cmi, new_attempt = next_launch_cmi(SCORM_2004_4TH, None, **LEARNER)
    assert new_attempt and cmi == initial_cmi(SCORM_2004_4TH, **LEARNER)


@pytest.mark.parametrize("version", [SCORM_2004_3RD, SCORM_2004_4TH])
def test_2004_suspend_resumes_the_attempt(version: str) -> None:
    previous = end_session(
        version,
        cmi_2004(
            **{
                "cmi.exit": "suspend",
                "cmi.location": "p7",
                "cmi.suspend_data": "s",
                "cmi.session_time": "PT10S",
            }
        ),
    ).cmi
    cmi, new_attempt = next_launch_cmi(version, previous, mode="review", **LEARNER)
    assert not new_attempt
    assert cmi["cmi.entry"] == "resume"
    assert cmi["cmi.location"] == "p7" and cmi["cmi.suspend_data"] == "s"
    assert cmi["cmi.total_time"] == "PT0H0M10S"
    assert cmi["cmi.mode"] == "review"
    assert "cmi.exit" not in cmi


@pytest.mark.parametrize("exit_value", ["normal", "", "logout", "time-out", None])
def test_2004_any_other_exit_starts_a_fresh_attempt(exit_value: str | None) -> None:
    previous = cmi_2004(**{"cmi.location": "p7", "cmi.total_time": "PT1H"})
    if exit_value is not None:
        previous["cmi.exit"] = exit_value
    item = Item("i", "t", data_from_lms="d")
    cmi, new_attempt = next_launch_cmi(SCORM_2004_4TH, previous, item=item, **LEARNER)
    assert new_attempt
    assert cmi == initial_cmi(SCORM_2004_4TH, item=item, **LEARNER)


def test_12_next_launch_entry_depends_on_exit() -> None:
    suspended, new_attempt = next_launch_cmi(SCORM_12, cmi_12(exit="suspend", lesson_location="3"), **LEARNER)
    assert not new_attempt and suspended["cmi.core.entry"] == "resume"
    assert suspended["cmi.core.lesson_location"] == "3"
    finished, new_attempt = next_launch_cmi(SCORM_12, cmi_12(exit="logout", lesson_status="passed"), **LEARNER)
    assert not new_attempt and finished["cmi.core.entry"] == ""
    assert finished["cmi.core.lesson_status"] == "passed" and "cmi.core.exit" not in finished
    fresh, new_attempt = next_launch_cmi(SCORM_12, finished, force_new_attempt=True, **LEARNER)
    assert new_attempt and fresh["cmi.core.lesson_status"] == "not attempted"


def test_a_session_that_never_terminated_still_counts_its_time() -> None:
    previous = cmi_12(session_time="00:05:00", exit="suspend", total_time="0000:10:00")
    cmi, _ = next_launch_cmi(SCORM_12, previous, **LEARNER)
    assert cmi["cmi.core.total_time"] == "0000:15:00.00"
    assert "cmi.core.session_time" not in cmi


# --------------------------------------------------------------------------------------- summary
def test_summary_12() -> None:
    cmi = cmi_12(lesson_status="passed", total_time="0001:00:30.00", **{"score.raw": "90"})
    summary = summarize(SCORM_12, cmi)
    assert (summary.completion_status, summary.success_status, summary.status) == ("completed", "passed", "passed")
    assert (summary.score_raw, summary.score_scaled) == (90.0, 0.9)
    assert (summary.total_time, summary.total_time_seconds) == ("PT1H0M30S", 3630.0)
    ranged = summarize(SCORM_12, cmi_12(**{"score.raw": "15", "score.min": "10", "score.max": "20"}))
    assert ranged.score_scaled == 0.5 and ranged.score_min == 10.0 and ranged.score_max == 20.0


@pytest.mark.parametrize(
    ("lesson_status", "completion", "success", "status"),
    [
        ("not attempted", "not attempted", "unknown", "not_started"),
        ("incomplete", "incomplete", "unknown", "incomplete"),
        ("completed", "completed", "unknown", "completed"),
        ("failed", "completed", "failed", "failed"),
        ("browsed", "incomplete", "unknown", "incomplete"),
    ],
)
def test_summary_12_statuses(lesson_status: str, completion: str, success: str, status: str) -> None:
    summary = summarize(SCORM_12, cmi_12(lesson_status=lesson_status))
    assert (summary.completion_status, summary.success_status, summary.status) == (completion, success, status)


def test_summary_2004() -> None:
    fresh = summarize(SCORM_2004_4TH, cmi_2004())
    assert (fresh.completion_status, fresh.success_status, fresh.status) == ("unknown", "unknown", "not_started")
    assert fresh.score_raw is None and fresh.total_time_seconds == 0.0
    cmi = cmi_2004(
        **{
            "cmi.completion_threshold": "0.5",
            "cmi.progress_measure": "0.6",
            "cmi.score.scaled": "0.8",
            "cmi.score.raw": "8",
            "cmi.total_time": "PT2M",
        }
    )
    summary = summarize(SCORM_2004_4TH, cmi)
    assert (summary.completion_status, summary.success_status, summary.status) == ("completed", "unknown", "completed")
    assert (summary.score_scaled, summary.score_raw, summary.progress_measure) == (0.8, 8.0, 0.6)
    assert summary.total_time_seconds == 120.0
    resumed = summarize(SCORM_2004_4TH, cmi_2004(**{"cmi.entry": "resume"}))
    assert resumed.status == "incomplete"
