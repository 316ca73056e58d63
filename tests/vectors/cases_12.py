"""SCORM 1.2 data-model vectors (expected codes from errors.md and datamodel-scorm12.json)."""

from __future__ import annotations

from tests.vectors.builder import V12, g, long, many, s

# ============================================================================================ 1.2
CHILDREN_12 = {
    "cmi._children": "core,suspend_data,launch_data,comments,objectives,student_data,student_preference,interactions",
    "cmi.core._children": "student_id,student_name,lesson_location,credit,lesson_status,entry,score,total_time,"
    "lesson_mode,exit,session_time",
    "cmi.core.score._children": "raw,min,max",
    "cmi.objectives._children": "id,score,status",
    "cmi.student_data._children": "mastery_score,max_time_allowed,time_limit_action",
    "cmi.student_preference._children": "audio,language,speed,text",
    "cmi.interactions._children": "id,objectives,time,type,correct_responses,weighting,student_response,result,latency",
}
READ_12 = {
    "cmi._version": "3.4",
    "cmi.core.student_id": "learner-1",
    "cmi.core.student_name": "Doe, Jane",
    "cmi.core.lesson_location": "",
    "cmi.core.credit": "credit",
    "cmi.core.lesson_status": "not attempted",
    "cmi.core.entry": "ab-initio",
    "cmi.core.score.raw": "",
    "cmi.core.score.min": "",
    "cmi.core.score.max": "",
    "cmi.core.total_time": "0000:00:00.00",
    "cmi.core.lesson_mode": "normal",
    "cmi.suspend_data": "",
    "cmi.launch_data": "",
    "cmi.comments": "",
    "cmi.comments_from_lms": "Welcome",
    "cmi.student_data.mastery_score": "80",
    "cmi.student_data.max_time_allowed": "0000:30:00",
    "cmi.student_data.time_limit_action": "exit,message",
    "cmi.student_preference.audio": "0",
    "cmi.student_preference.language": "",
    "cmi.student_preference.speed": "0",
    "cmi.student_preference.text": "0",
    "cmi.objectives._count": "0",
    "cmi.interactions._count": "0",
    **CHILDREN_12,
}
for name, expected in READ_12.items():
    g(V12, name, 0, expected)
RO_12 = [
    "cmi.core.student_id",
    "cmi.core.student_name",
    "cmi.core.credit",
    "cmi.core.entry",
    "cmi.core.total_time",
    "cmi.core.lesson_mode",
    "cmi.launch_data",
    "cmi.comments_from_lms",
    "cmi.student_data.mastery_score",
    "cmi.student_data.max_time_allowed",
    "cmi.student_data.time_limit_action",
]
for name in RO_12:
    s(V12, name, "x", 403)
for name in [*CHILDREN_12, "cmi._version", "cmi.objectives._count", "cmi.interactions._count"]:
    s(V12, name, "x", 402)
WO_12 = ["cmi.core.exit", "cmi.core.session_time"]
IX12 = [["cmi.interactions.0.id", "q1"]]
for name in WO_12:
    g(V12, name, 404)
for child in ["id", "time", "type", "weighting", "student_response", "result", "latency", "objectives.0.id"]:
    g(V12, f"cmi.interactions.0.{child}", 404, setup=IX12)
g(V12, "cmi.interactions.0.correct_responses.0.pattern", 404, setup=IX12)
# Names, keywords and containers.
g(V12, "", 201)
s(V12, "", "x", 201)
for name in ["cmi.foo", "xyz.score.result", "cmi.core.foo", "cmi.core", "cmi.core.score", "cmi.objectives.0"]:
    g(V12, name, 401)
    s(V12, name, "x", 401)
g(V12, "cmi.core._count", 203)
g(V12, "cmi.core.score._count", 203)
g(V12, "cmi.student_preference._count", 203)
g(V12, "cmi.core.lesson_status._children", 202)
g(V12, "cmi.suspend_data._children", 202)
g(V12, "cmi.core._version", 401)
g(V12, "cmi.foo._children", 401)
g(V12, "cmi.interactions.0.objectives._children", 202, setup=IX12)
g(V12, "cmi.interactions.0.objectives._count", 0, "0", setup=IX12)
g(V12, "cmi.interactions.0.correct_responses._count", 0, "0", setup=IX12)
g(V12, "cmi.interactions._count", 0, "1", setup=IX12)
g(
    V12,
    "cmi.interactions.0.objectives._count",
    0,
    "2",
    setup=[*IX12, ["cmi.interactions.0.objectives.0.id", "o1"], ["cmi.interactions.0.objectives.1.id", "o2"]],
)
# lesson_location / strings with hard SPM.
many(V12, "cmi.core.lesson_location", ["", "page 3", "{json:1}"], 0)
s(V12, "cmi.core.lesson_location", long(255), 0)
s(V12, "cmi.core.lesson_location", long(256), 405)
s(V12, "cmi.core.lesson_location", long(255, "é"), 0)
for name in ["cmi.suspend_data", "cmi.comments"]:
    s(V12, name, long(4096), 0)
    s(V12, name, long(4097), 405)
    s(V12, name, "a=1;b=[2,3]\nline", 0)
# cmi.suspend_data's limit is a parameter of the table (the appliance's per-tenant/per-package setting):
# the spec's 4096 when none is given (strict, as above), any limit up to 64000. Lengths count code
# points. The other CMIString4096 elements and max_chars (elements without an SPM) keep the spec's 4096.
for limit in [4096, 10000, 64000]:
    s(V12, "cmi.suspend_data", long(limit), 0, suspend_data_limit=limit)
    s(V12, "cmi.suspend_data", long(limit + 1), 405, suspend_data_limit=limit)
s(V12, "cmi.suspend_data", long(4097, "é"), 405)
s(V12, "cmi.suspend_data", long(64000, "𝄞"), 0, suspend_data_limit=64000)
s(V12, "cmi.suspend_data", long(64001, "𝄞"), 405, suspend_data_limit=64000)
s(V12, "cmi.comments", long(4097), 405, suspend_data_limit=64000)
s(V12, "cmi.core.lesson_location", long(256), 405, suspend_data_limit=64000)
for limit in [None, 64000]:
    s(V12, "cmi.interactions.0.weighting", long(4096, "1"), 0, suspend_data_limit=limit)
    s(V12, "cmi.interactions.0.weighting", long(4097, "1"), 405, suspend_data_limit=limit)
s(V12, "cmi.student_preference.language", "fr", 0)
s(V12, "cmi.student_preference.language", long(256), 405)
g(V12, "cmi.suspend_data", 0, "state=7", setup=[["cmi.suspend_data", "state=7"]])
g(V12, "cmi.core.lesson_location", 0, "p2", setup=[["cmi.core.lesson_location", "p2"]])
# lesson_status.
for status in ["passed", "completed", "failed", "incomplete", "browsed"]:
    s(V12, "cmi.core.lesson_status", status, 0)
    g(V12, "cmi.core.lesson_status", 0, status, setup=[["cmi.core.lesson_status", status]])
many(V12, "cmi.core.lesson_status", ["not attempted", "done", "Passed", "", "unknown", " passed"], 405)
# Scores: CMIDecimal or blank, 0..100.
for part in ["raw", "min", "max"]:
    many(V12, f"cmi.core.score.{part}", ["0", "100", "85", "85.5", "", ".5", "5.", "0.50", "100.0"], 0)
    many(V12, f"cmi.core.score.{part}", ["-1", "100.1", "150", "abc", "1e2", " 5", "+5", "5%", "-", "."], 405)
g(V12, "cmi.core.score.raw", 0, "0.50", setup=[["cmi.core.score.raw", "0.50"]])
g(V12, "cmi.core.score.raw", 0, "", setup=[["cmi.core.score.raw", "50"], ["cmi.core.score.raw", ""]])
# exit and session_time (write-only).
many(V12, "cmi.core.exit", ["time-out", "suspend", "logout", ""], 0)
many(V12, "cmi.core.exit", ["normal", "quit", "Suspend"], 405)
many(V12, "cmi.core.session_time", ["00:00:00", "0000:30:00.5", "12:34:56.78", "9999:59:59.99", "00:00:05.1"], 0)
many(
    V12,
    "cmi.core.session_time",
    ["1:00:00", "00:00:00.123", "PT1H", "00:00", "99999:00:00", "", "00:00:00.", "aa:bb:cc"],
    405,
)
# student_preference integers with ranges.
for name, good, bad in [
    ("audio", ["-1", "0", "50", "100"], ["101", "-2", "5.5", "abc", ""]),
    ("speed", ["-100", "0", "100"], ["101", "-101", "1.0"]),
    ("text", ["-1", "0", "1"], ["2", "-2", "on"]),
]:
    many(V12, f"cmi.student_preference.{name}", good, 0)
    many(V12, f"cmi.student_preference.{name}", bad, 405)
g(V12, "cmi.student_preference.audio", 0, "-1", setup=[["cmi.student_preference.audio", "-1"]])
# Objectives (1.2 has no "id first" rule).
OB12 = [["cmi.objectives.0.id", "obj1"]]
many(V12, "cmi.objectives.0.id", ["obj1", "obj 1", "urn:x", "A-1_b"], 0)
many(V12, "cmi.objectives.0.id", ["", " ", long(256), "ünïcode"], 405)
s(V12, "cmi.objectives.0.score.raw", "50", 0)
s(V12, "cmi.objectives.1.id", "obj2", 201)
s(V12, "cmi.objectives.1.id", "obj2", 0, setup=OB12)
s(V12, "cmi.objectives.2.id", "obj3", 201, setup=OB12)
for status in ["passed", "completed", "failed", "incomplete", "browsed", "not attempted"]:
    s(V12, "cmi.objectives.0.status", status, 0, setup=OB12)
many(V12, "cmi.objectives.0.status", ["unknown", "done"], 405, setup=OB12)
for part in ["raw", "min", "max"]:
    many(V12, f"cmi.objectives.0.score.{part}", ["0", "75.5", ""], 0, setup=OB12)
    many(V12, f"cmi.objectives.0.score.{part}", ["101", "-5", "x"], 405, setup=OB12)
g(V12, "cmi.objectives.0.id", 0, "obj1", setup=OB12)
g(V12, "cmi.objectives.0.status", 0, "not attempted", setup=OB12)
g(V12, "cmi.objectives.0.score.raw", 0, "", setup=OB12)
g(V12, "cmi.objectives.0.score._children", 0, "raw,min,max", setup=OB12)
g(V12, "cmi.objectives.0._count", 203, setup=OB12)
g(V12, "cmi.objectives._count", 0, "2", setup=[*OB12, ["cmi.objectives.1.id", "obj2"]])
g(V12, "cmi.objectives.1.id", 201, setup=OB12)
g(V12, "cmi.objectives.0.id", 201)
g(V12, "cmi.objectives.0.score._children", 201)
s(V12, "cmi.objectives._children", "x", 402)
# Interactions (write-only journal; responses only length-checked in 1.2).
s(V12, "cmi.interactions.0.id", "q1", 0)
many(V12, "cmi.interactions.0.id", ["", long(256)], 405)
s(V12, "cmi.interactions.1.id", "q2", 201)
s(V12, "cmi.interactions.0.type", "choice", 0)
s(V12, "cmi.interactions.0.objectives.0.id", "obj1", 0)
s(V12, "cmi.interactions.0.objectives.1.id", "obj1", 201, setup=IX12)
many(V12, "cmi.interactions.0.time", ["13:05:09", "13:05:09.5", "00:00:00", "23:59:59.99"], 0, setup=IX12)
many(
    V12, "cmi.interactions.0.time", ["24:00:00", "1:05:09", "13:60:00", "13:05", "2024-01-01T10:00:00"], 405, setup=IX12
)
for kind in ["true-false", "choice", "fill-in", "matching", "performance", "sequencing", "likert", "numeric"]:
    s(V12, "cmi.interactions.0.type", kind, 0, setup=IX12)
many(V12, "cmi.interactions.0.type", ["long-fill-in", "other", "Choice", ""], 405, setup=IX12)
many(V12, "cmi.interactions.0.weighting", ["1", "-2.5", "0", "10"], 0, setup=IX12)
many(V12, "cmi.interactions.0.weighting", ["abc", "", "1,5"], 405, setup=IX12)
many(V12, "cmi.interactions.0.student_response", ["a", "Choice_A", "1.a,2.c", "", long(255)], 0, setup=IX12)
s(V12, "cmi.interactions.0.student_response", long(256), 405, setup=IX12)
many(V12, "cmi.interactions.0.result", ["correct", "wrong", "unanticipated", "neutral", "0.5", "85"], 0, setup=IX12)
many(V12, "cmi.interactions.0.result", ["incorrect", "Correct", "", "x"], 405, setup=IX12)
many(V12, "cmi.interactions.0.latency", ["00:00:05", "0000:01:30.25"], 0, setup=IX12)
many(V12, "cmi.interactions.0.latency", ["PT5S", "5"], 405, setup=IX12)
many(V12, "cmi.interactions.0.correct_responses.0.pattern", ["a", "t", "{a,b}", "1.a,2.b"], 0, setup=IX12)
s(V12, "cmi.interactions.0.correct_responses.0.pattern", long(256), 405, setup=IX12)
s(V12, "cmi.interactions.0.correct_responses.1.pattern", "b", 201, setup=IX12)
s(V12, "cmi.interactions.0.correct_responses._count", "1", 402, setup=IX12)
g(
    V12,
    "cmi.interactions.0.correct_responses._count",
    0,
    "2",
    setup=[
        *IX12,
        ["cmi.interactions.0.correct_responses.0.pattern", "a"],
        ["cmi.interactions.0.correct_responses.1.pattern", "b"],
    ],
)
g(V12, "cmi.interactions.1.objectives._count", 201, setup=IX12)
