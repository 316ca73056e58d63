"""SCORM 2004 data-model vectors: names, keywords, states, scalar types (errors.md, datamodel-scorm2004.json)."""

from __future__ import annotations

from tests.vectors.builder import ALL, V2, V3, V4, g, long, many, s

# =========================================================================================== 2004
CHILDREN_2004 = {
    "cmi.comments_from_learner._children": "comment,location,timestamp",
    "cmi.comments_from_lms._children": "comment,location,timestamp",
    "cmi.interactions._children": "id,type,objectives,timestamp,correct_responses,weighting,learner_response,"
    "result,latency,description",
    "cmi.learner_preference._children": "audio_level,language,delivery_speed,audio_captioning",
    "cmi.objectives._children": "id,score,success_status,completion_status,progress_measure,description",
    "cmi.score._children": "scaled,raw,min,max",
}
READ_2004 = {
    "cmi._version": "1.0",
    "cmi.comments_from_learner._count": "0",
    "cmi.comments_from_lms._count": "1",
    "cmi.interactions._count": "0",
    "cmi.objectives._count": "0",
    "cmi.completion_status": "unknown",
    "cmi.credit": "credit",
    "cmi.entry": "ab-initio",
    "cmi.launch_data": "chapter=2",
    "cmi.learner_id": "learner-1",
    "cmi.learner_name": "Doe, Jane",
    "cmi.learner_preference.audio_level": "1",
    "cmi.learner_preference.language": "",
    "cmi.learner_preference.delivery_speed": "1",
    "cmi.learner_preference.audio_captioning": "0",
    "cmi.max_time_allowed": "PT1H",
    "cmi.mode": "normal",
    "cmi.success_status": "unknown",
    "cmi.time_limit_action": "continue,no message",
    "cmi.total_time": "PT0H0M0S",
    "adl.nav.request": "_none_",
    "adl.nav.request_valid.continue": "unknown",
    "adl.nav.request_valid.previous": "unknown",
    "adl.nav.request_valid.choice.{target=intro}": "unknown",
    "adl.nav.request_valid.choice.{target=a.b.c}": "unknown",
    "cmi.comments_from_lms.0.comment": "{lang=en}Welcome",
    "cmi.comments_from_lms.0.location": "start",
    "cmi.comments_from_lms.0.timestamp": "2024-01-01T10:00:00",
    **CHILDREN_2004,
}
for name, expected in READ_2004.items():
    g(ALL, name, 0, expected)
UNSET_2004 = [
    "cmi.completion_threshold",
    "cmi.location",
    "cmi.progress_measure",
    "cmi.scaled_passing_score",
    "cmi.score.scaled",
    "cmi.score.raw",
    "cmi.score.min",
    "cmi.score.max",
    "cmi.suspend_data",
]
for name in UNSET_2004:
    g(ALL, name, 403)
for name in ["cmi.exit", "cmi.session_time"]:
    g(ALL, name, 405)
    g(ALL, name, 405, setup=[[name, "PT1S" if name == "cmi.session_time" else "suspend"]])
RO_2004 = [
    "cmi.completion_threshold",
    "cmi.credit",
    "cmi.entry",
    "cmi.launch_data",
    "cmi.learner_id",
    "cmi.learner_name",
    "cmi.max_time_allowed",
    "cmi.mode",
    "cmi.scaled_passing_score",
    "cmi.time_limit_action",
    "cmi.total_time",
    "cmi.comments_from_lms.0.comment",
    "cmi.comments_from_lms.0.location",
    "cmi.comments_from_lms.0.timestamp",
    "adl.nav.request_valid.continue",
    "adl.nav.request_valid.previous",
    "adl.nav.request_valid.choice.{target=intro}",
    "adl.nav.request_valid.choice",
]
for name in RO_2004:
    s(ALL, name, "x", 404)
KEYWORDS_2004 = [*CHILDREN_2004, "cmi._version", "cmi.interactions._count", "cmi.objectives._count"]
for name in [*KEYWORDS_2004, "cmi.comments_from_learner._count", "cmi.comments_from_lms._count"]:
    s(ALL, name, "3", 404)
# Names, keywords and containers.
g(ALL, "", 301)
s(ALL, "", "x", 351)
g(ALL, "cmi._children", 401)
s(ALL, "cmi._children", "x", 401)
for name in [
    "cmi.foo",
    "cmi.core.student_id",
    "cmi.score",
    "cmi.interactions",
    "cmi.interactions.0",
    "cmi.interactions.n.id",
    "adl.foo",
    "cmi.objectives.0.score",
]:
    g(ALL, name, 401)
    s(ALL, name, "x", 401)
for name in [
    "cmi.score._count",
    "cmi.location._children",
    "cmi.learner_preference._count",
    "cmi.score._version",
    "cmi.completion_status._children",
]:
    g(ALL, name, 301)
g(ALL, "cmi.core._children", 401)
g(ALL, "adl.nav.request_valid.choice", 301)
g(ALL, "adl.nav.request_valid.choice.intro", 301)
g(ALL, "cmi.interactions.0.objectives._count", 301)
g(ALL, "cmi.comments_from_lms.1.comment", 301)
g(ALL, "cmi.interactions.0.id", 301)
# States and scores.
for value in ["completed", "incomplete", "not attempted", "unknown"]:
    s(ALL, "cmi.completion_status", value, 0)
    g(ALL, "cmi.completion_status", 0, value, setup=[["cmi.completion_status", value]])
many(ALL, "cmi.completion_status", ["done", "Completed", "", "passed"], 406)
many(ALL, "cmi.success_status", ["passed", "failed", "unknown"], 0)
many(ALL, "cmi.success_status", ["pass", "completed", ""], 406)
many(ALL, "cmi.exit", ["time-out", "suspend", "logout", "normal", ""], 0)
many(ALL, "cmi.exit", ["quit", "Normal", "exit"], 406)
many(ALL, "cmi.progress_measure", ["0", "1", "0.5", ".25", "1.0000000"], 0)
many(ALL, "cmi.progress_measure", ["1.1", "-0.1", "2"], 407)
many(ALL, "cmi.progress_measure", ["abc", "", "50%"], 406)
many(ALL, "cmi.score.scaled", ["-1", "1", "0", "0.875", "-0.5"], 0)
many(ALL, "cmi.score.scaled", ["2", "-1.5", "1.0000001"], 407)
many(ALL, "cmi.score.scaled", ["x", ""], 406)
for part in ["raw", "min", "max"]:
    many(ALL, f"cmi.score.{part}", ["150", "-50", "0", "12.345"], 0)
    many(ALL, f"cmi.score.{part}", ["abc", "", "1e3", "1,5"], 406)
g(ALL, "cmi.score.raw", 0, "0.50", setup=[["cmi.score.raw", "0.50"]])
g(ALL, "cmi.score.scaled", 0, "-0.5", setup=[["cmi.score.scaled", "-0.5"]])
# Status evaluation from thresholds (rte-rules.md 5.2).
CT = {"cmi.completion_threshold": "0.8"}
SPS = {"cmi.scaled_passing_score": "0.7"}
g(ALL, "cmi.completion_threshold", 0, "0.8", initial=CT)
g(ALL, "cmi.completion_status", 0, "unknown", initial=CT)
g(ALL, "cmi.completion_status", 0, "completed", setup=[["cmi.progress_measure", "0.8"]], initial=CT)
g(ALL, "cmi.completion_status", 0, "completed", setup=[["cmi.progress_measure", "1"]], initial=CT)
g(ALL, "cmi.completion_status", 0, "incomplete", setup=[["cmi.progress_measure", "0.5"]], initial=CT)
g(ALL, "cmi.completion_status", 0, "unknown", setup=[["cmi.completion_status", "completed"]], initial=CT)
g(
    ALL,
    "cmi.completion_status",
    0,
    "incomplete",
    setup=[["cmi.completion_status", "completed"], ["cmi.progress_measure", "0.1"]],
    initial=CT,
)
g(ALL, "cmi.completion_status", 0, "unknown", setup=[["cmi.progress_measure", "0.1"]])
g(ALL, "cmi.scaled_passing_score", 0, "0.7", initial=SPS)
g(ALL, "cmi.success_status", 0, "unknown", initial=SPS)
g(ALL, "cmi.success_status", 0, "passed", setup=[["cmi.score.scaled", "0.7"]], initial=SPS)
g(ALL, "cmi.success_status", 0, "failed", setup=[["cmi.score.scaled", "0.69"]], initial=SPS)
g(ALL, "cmi.success_status", 0, "unknown", setup=[["cmi.success_status", "passed"]], initial=SPS)
g(ALL, "cmi.success_status", 0, "failed", setup=[["cmi.success_status", "failed"]])
g(
    ALL,
    "cmi.success_status",
    0,
    "passed",
    setup=[["cmi.success_status", "failed"], ["cmi.score.scaled", "1"]],
    initial=SPS,
)
# Durations (timeinterval(second,10,2)).
many(
    ALL,
    "cmi.session_time",
    ["PT1H30M5.5S", "PT0S", "P1DT2H", "P1Y2M3DT4H5M6.78S", "PT0H0M0S", "P3M", "PT10M", "P0D", "PT1000000S"],
    0,
)
many(
    ALL,
    "cmi.session_time",
    ["PT", "P", "PT1.123S", "00:10:00", "PT-1S", "P1W", "1H", "PT1H1", "P1DT", "pt1h", "PT1.5H", "", "P1M2Y"],
    406,
)
many(ALL, "cmi.interactions.0.latency", ["PT5S", "PT0.25S"], 0, setup=[["cmi.interactions.0.id", "q1"]])
s(ALL, "cmi.interactions.0.latency", "00:00:05", 406, setup=[["cmi.interactions.0.id", "q1"]])
# Strings: 2004 SPM is a minimum, longer values are stored.
s(ALL, "cmi.location", "", 0)
s(ALL, "cmi.location", long(1000), 0)
s(ALL, "cmi.location", long(1001), 0)
s(ALL, "cmi.suspend_data", long(4001), 0)
s(ALL, "cmi.suspend_data", long(64001), 0)
s(ALL, "cmi.suspend_data", long(64001), 0, suspend_data_limit=4096)  # the 1.2 limit has no effect on 2004
s(ALL, "cmi.suspend_data", long(262145), 351)
s(ALL, "cmi.suspend_data", "ünïcödé ✓ 𝄞", 0)
g(ALL, "cmi.suspend_data", 0, "𝄞x", setup=[["cmi.suspend_data", "𝄞x"]])
g(ALL, "cmi.location", 0, "", setup=[["cmi.location", ""]])
# Learner preferences.
many(ALL, "cmi.learner_preference.audio_level", ["0", "2.5", "100", "1000"], 0)
many(ALL, "cmi.learner_preference.audio_level", ["-1", "-0.01"], 407)
many(ALL, "cmi.learner_preference.audio_level", ["abc", ""], 406)
many(ALL, "cmi.learner_preference.delivery_speed", ["0", "0.5", "2"], 0)
s(ALL, "cmi.learner_preference.delivery_speed", "-0.5", 407)
many(
    ALL,
    "cmi.learner_preference.language",
    ["en", "en-US", "fr-CA", "zh-Hant-TW", "", "x-klingon", "i-navajo", "deu", "GER", "sgn-BE-fr", "qaa", "scr"],
    0,
)
many(ALL, "cmi.learner_preference.language", ["english", "e", "en_US", "123", "en-", "-en", "en US"], 406)
# The primary subtag must be an ISO 639-1/639-2 code (RFC 3066; the ADL CTS DMI rejects these).
many(ALL, "cmi.learner_preference.language", ["frl", "exg", "sp", "ruq-JM", "zz", "qua-x"], 406)
many(ALL, "cmi.learner_preference.audio_captioning", ["-1", "0", "1"], 0)
many(ALL, "cmi.learner_preference.audio_captioning", ["2", "on", ""], 406)
# adl.nav.request.
many(
    ALL,
    "adl.nav.request",
    [
        "continue",
        "previous",
        "exit",
        "exitAll",
        "abandon",
        "abandonAll",
        "suspendAll",
        "_none_",
        "{target=intro}choice",
        "{target=a.b}choice",
    ],
    0,
)
many(ALL, "adl.nav.request", ["choice", "jump", "{target=}choice", "start", "Continue", "", "{target=x}Choice"], 406)
s(V4, "adl.nav.request", "{target=intro}jump", 0)
s((V2, V3), "adl.nav.request", "{target=intro}jump", 406)
g(ALL, "adl.nav.request", 0, "continue", setup=[["adl.nav.request", "continue"]])
# comments_from_learner (no id field: any child creates the record).
CL = "cmi.comments_from_learner"
many(ALL, f"{CL}.0.comment", ["{lang=en}Nice", "plain", "", "{lang=de-AT}Gut", long(4001)], 0)
many(ALL, f"{CL}.0.comment", ["{lang=xx-}x", "{lang=english}hi", "{lang=}x", "{lang=en"], 406)
many(ALL, f"{CL}.0.comment", ["{lang=frl}x", "{lang=sp}x", "{lang=ruq-JM}z"], 406)
many(ALL, f"{CL}.0.comment", ["{lang=AB}x", "{lang=i-klingon}x", "{lang=art-lojban}x", "{lang=mo}x"], 0)
many(ALL, f"{CL}.0.location", ["p1", long(251)], 0)
many(
    ALL,
    f"{CL}.0.timestamp",
    [
        "2024-05-01T12:30:00.5Z",
        "2024-05-01",
        "2024",
        "2024-05",
        "2024-05-01T12",
        "2024-05-01T12:30",
        "2024-05-01T12:30:00.5+02:00",
        "1970-01-01T00:00:00",
        "2038-12-31T23:59:59.99-05",
        "2004-06-30T14:00:00.10+00",
        "2004-06-30T14:00:00.10-23",
        "2004-06-30T14:00:00.10+05:59",
    ],
    0,
)
many(
    ALL,
    f"{CL}.0.timestamp",
    [
        "2024-13-01",
        "1969-01-01",
        "2039-01-01",
        "2024-05-01T25:00:00",
        "2024-05-01T12:30:00+0200",
        "2024-05-01 12:30:00",
        "2024-05-01T12:30:00.123",
        "24-05-01",
        "",
        "2024-05-01T12:30Z",
        # A time zone designator only follows fractional seconds (RTE 4.2, ADL CTS DMI).
        "2024-05-01T12:30:00Z",
        "2004-04-01T09:45:58+02",
        "2004-04-01T09:45:58+02:30",
        "2004-04-01T09:45:58-03:00",
        "2004-04-01T09+02",
        "2004-04-01T09:45-03",
        "2004-04-01T09:45:58.55Z+02:30",
        "2004-04-01T09:45:58.55+2",
        "2004-04-01T09:45:58.55+02:3",
        "2004-04-01T09:45:58.55-03:00.30",
        "2004-06-30T14:00:00.10+24",
        "2004-06-30T14:00:00.10+05:60",
    ],
    406,
)
s(ALL, f"{CL}.1.comment", "x", 351)
s(ALL, f"{CL}.1.comment", "x", 0, setup=[[f"{CL}.0.location", "p1"]])
g(ALL, f"{CL}._count", 0, "2", setup=[[f"{CL}.0.comment", "a"], [f"{CL}.1.comment", "b"]])
g(ALL, f"{CL}.0.location", 403, setup=[[f"{CL}.0.comment", "a"]])
g(ALL, f"{CL}.0.comment", 0, "{lang=fr}Oui", setup=[[f"{CL}.0.comment", "{lang=fr}Oui"]])
# Interactions: id first (408), packed indexes (351).
