"""SCORM 2004 data-model vectors: interactions, objectives, adl.data and edition differences."""

from __future__ import annotations

from tests.vectors.builder import ALL, V2, V3, V4, g, long, many, s

IX = "cmi.interactions.0"
ID = [[f"{IX}.id", "q1"]]
many(ALL, f"{IX}.id", ["q1", "urn:ADL:interaction-1", "URN:isbn:0451450523", "question 1", "Q_1.2-b", long(4001)], 0)
many(ALL, f"{IX}.id", ["", "   ", "urn:x", "urn::abc", "urn:-bad:x"], 406)
s(ALL, "cmi.interactions.1.id", "q2", 351)
# An index with a leading zero addresses no record (351 on SetValue, 301 on GetValue; ADL CTS DMI).
s(ALL, "cmi.interactions.01.id", "INT1", 351)
s(ALL, "cmi.interactions.00.id", "INT1", 351)
s(ALL, "cmi.interactions.01.timestamp", "2003-07-25T03:00:00", 351)
s(ALL, "cmi.interactions.01.id", "INT1", 351, setup=[*ID, ["cmi.interactions.1.id", "q2"]])
s(ALL, "cmi.interactions.0.objectives.00.id", "o1", 351, setup=ID)
g(ALL, "cmi.interactions.00.id", 301, setup=ID)
g(ALL, "cmi.interactions.00.objectives._count", 301, setup=ID)
s(ALL, "cmi.comments_from_lms.00.comment", "x", 404)
s(ALL, "cmi.interactions.1.id", "q2", 0, setup=ID)
g(ALL, "cmi.interactions._count", 0, "2", setup=[*ID, ["cmi.interactions.1.id", "q2"]])
g(ALL, f"{IX}.id", 0, "q1", setup=ID)
s(ALL, f"{IX}.id", "q1-renamed", 0, setup=ID)
for child, value in [
    ("type", "choice"),
    ("timestamp", "2024-01-01"),
    ("weighting", "1"),
    ("result", "correct"),
    ("latency", "PT1S"),
    ("description", "d"),
    ("learner_response", "a"),
    ("correct_responses.0.pattern", "a"),
    ("objectives.0.id", "o1"),
]:
    s(ALL, f"{IX}.{child}", value, 408)
for child in ["type", "timestamp", "weighting", "result", "latency", "description", "learner_response"]:
    g(ALL, f"{IX}.{child}", 403, setup=ID)
g(ALL, f"{IX}.correct_responses._count", 0, "0", setup=ID)
g(ALL, f"{IX}.objectives._count", 0, "0", setup=ID)
g(ALL, f"{IX}.objectives._children", 301, setup=ID)
g(ALL, f"{IX}.correct_responses._children", 301, setup=ID)
for kind in [
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
]:
    s(ALL, f"{IX}.type", kind, 0, setup=ID)
many(ALL, f"{IX}.type", ["essay", "Choice", "", "multiple-choice"], 406, setup=ID)
g(ALL, f"{IX}.type", 0, "numeric", setup=[*ID, [f"{IX}.type", "numeric"]])
many(ALL, f"{IX}.timestamp", ["2024-01-01T10:00:00", "2030"], 0, setup=ID)
s(ALL, f"{IX}.timestamp", "10:00:00", 406, setup=ID)
many(ALL, f"{IX}.weighting", ["1", "-1.5", "0", "100"], 0, setup=ID)
many(ALL, f"{IX}.weighting", ["abc", ""], 406, setup=ID)
many(ALL, f"{IX}.result", ["correct", "incorrect", "unanticipated", "neutral", "0.75", "-3", "100"], 0, setup=ID)
many(ALL, f"{IX}.result", ["wrong", "Correct", "", "right"], 406, setup=ID)
many(ALL, f"{IX}.description", ["{lang=de}Frage", "Question one", ""], 0, setup=ID)
s(ALL, f"{IX}.description", "{lang=1}x", 406, setup=ID)
s(ALL, f"{IX}.learner_response", "a", 408, setup=ID)
s(ALL, f"{IX}.correct_responses.0.pattern", "a", 408, setup=ID)
# Interaction objectives: unique ids, packed.
s(ALL, f"{IX}.objectives.0.id", "obj1", 0, setup=ID)
s(ALL, f"{IX}.objectives.0.id", "", 406, setup=ID)
s(ALL, f"{IX}.objectives.1.id", "obj2", 351, setup=ID)
IO = [*ID, [f"{IX}.objectives.0.id", "obj1"]]
s(ALL, f"{IX}.objectives.1.id", "obj1", 351, setup=IO)
s(ALL, f"{IX}.objectives.1.id", "obj2", 0, setup=IO)
s(ALL, f"{IX}.objectives.0.id", "obj1", 0, setup=IO)
g(ALL, f"{IX}.objectives.0.id", 0, "obj1", setup=IO)
g(ALL, f"{IX}.objectives.1.id", 301, setup=IO)
g(ALL, f"{IX}.objectives._count", 0, "1", setup=IO)
s(ALL, f"{IX}.objectives._count", "2", 404, setup=IO)
s(ALL, "cmi.interactions.1.objectives.0.id", "obj1", 408, setup=ID)


def fmt(
    kind: str, response_ok: list[str], response_bad: list[str], pattern_ok: list[str], pattern_bad: list[str]
) -> None:
    """Learner responses and correct-response patterns of one interaction type (RTE 4.2.9)."""
    typed = [*ID, [f"{IX}.type", kind]]
    many(ALL, f"{IX}.learner_response", response_ok, 0, setup=typed)
    many(ALL, f"{IX}.learner_response", response_bad, 406, setup=typed)
    many(ALL, f"{IX}.correct_responses.0.pattern", pattern_ok, 0, setup=typed)
    many(ALL, f"{IX}.correct_responses.0.pattern", pattern_bad, 406, setup=typed)
    g(ALL, f"{IX}.learner_response", 0, response_ok[0], setup=[*typed, [f"{IX}.learner_response", response_ok[0]]])


fmt("true-false", ["true", "false"], ["t", "1", "TRUE", ""], ["true", "false"], ["yes", ""])
fmt(
    "choice",
    ["a", "a[,]b[,]c", "", "choice_1[,]choice_2", "urn:ex:a[,]b", "uri.uri.uri.abcd[,]testuri"],
    ["a[,]a", "a[,]", "[,]a", "urn:x", " [,]a", "{}{[]}{}{[]}{}", "a[.]b", "a[,]b]", "urn:ex:{a}"],
    ["a[,]b", "a", ""],
    ["a[,]a", "x[,]", "{}{[]}{}{[]}{}", "{case_matters=true}a"],
)
fmt(
    "fill-in",
    ["Paris", "{lang=fr}Paris", "red[,]blue", "", "a, b and c", "{}{[]}{}{[]}{}"],
    ["{lang=zzzzzz}x", "ok[,]{lang=12}x", "{lang=frl}z", "ok[,]{lang=sp}z"],
    [
        "{case_matters=true}Paris",
        "{order_matters=false}{case_matters=true}a[,]b",
        "{order_matters=true}{lang=en}hello",
        "{foo=bar}text",
        "Paris",
        "{}{[]}{}{[]}{}",
        "uri.uri.uri[.]abcd[,]testuri",
        # After a {lang=..} prefix the rest is the text, delimiter-like or not.
        "{lang=en-US}{case_matters=invalid}a[,]b",
        "{case_matters=true}{lang=eng}{order_matters=true}z",
    ],
    [
        "{case_matters=maybe}x",
        "{case_matters=true}{case_matters=false}x",
        "{order_matters=}x",
        "{case_matters=true",
        "{lang=frl}z",
        "{lang=exg}{case_matters=invalid}z",
        "a[,]{lang=ruq-JM}z",
        "{case_matters=true-false}{lang=en}z",
        "{order_matters=invalid}a[,]{lang=en}b",
    ],
)
fmt(
    "long-fill-in",
    ["An essay answer.", "{lang=en}essay", long(4001), "{}{[]}{}{[]}{}"],
    ["{lang=e}x", "{lang=sp}x"],
    ["{case_matters=false}{lang=en}text", "anything", "{order_matters=true}x", "{}{[]}{}{[]}{}"],
    ["{case_matters=1}x", "{lang=toolonglang}x", "{lang=exg}z", "{case_matters=invalid}{lang=exg}z"],
)
fmt(
    "likert",
    ["agree", "likert_3"],
    ["", " ", "uri.uri.uri[.]abcd[,]testuri", "{}{[]}{}{[]}{}"],
    ["strongly_agree"],
    ["", "urn:bad", "uri.uri.uri[.]abcd[,]testuri", "{}{[]}{}{[]}{}"],
)
fmt(
    "matching",
    ["1[.]a", "1[.]a[,]2[.]b", ""],
    ["1[.]", "1.a", "1[.]a[.]b", "[.]a", "1[.]a[,]", "{}{[]}{}{[]}{}", "1[.]{a}"],
    ["x[.]y", "1[.]a[,]2[.]b"],
    ["", "x", "x[.] ", "uri.uri.uri[.]abcd[,]testuri", "x[.]y]"],
)
fmt(
    "performance",
    ["step1[.]answer", "[.]answer", "step1[.]", "s1[.]a[,]s2[.]b", "", "step name[.]x"],
    ["[.]", "step1", "s1[.]a[.]b", "urn:x[.]a", "{}{[]}{}{[]}{}", "s{1}[.]a"],
    ["{order_matters=false}s1[.]a[,]s2[.]b", "s1[.]1[:]5", "s1[.][:]10", "s1[.]5[:]", "s1[.]plain answer"],
    ["s1[.]5[:]1", "s1[.]x[:]5", "", "{order_matters=no}s1[.]a", "s1"],
)
fmt(
    "sequencing",
    ["a[,]b[,]c", "a[,]a", "x"],
    ["", "a[,]", "[,]", "uri.uri.uri[.]abcd[,]testuri", "{}{[]}{}{[]}{}"],
    ["a[,]b", "c"],
    ["", "a[,][,]b", "uri.uri.uri[.]abcd[,]testuri", "{}{[]}{}{[]}{}"],
)
fmt(
    "numeric",
    ["42", "-3.5", ".5"],
    ["abc", "", "1[:]2", "4 2"],
    ["10[:]20", "[:]20", "10[:]", "15", "-5[:]-1", "[:]"],
    ["20[:]10", "a[:]b", "1[:]2[:]3", "", "x"],
)
fmt("other", ["anything at all", "", "[,][.][:]", long(4001), "{}{[]}{}{[]}{}"], [], ["x", "", "{}{[]}{}{[]}{}"], [])
# Pattern counts: single-pattern types allow one (351 beyond); choice and sequencing patterns are unique.
for kind, first in [("true-false", "true"), ("likert", "a"), ("numeric", "1"), ("other", "x")]:
    typed = [*ID, [f"{IX}.type", kind], [f"{IX}.correct_responses.0.pattern", first]]
    s(ALL, f"{IX}.correct_responses.1.pattern", first, 351, setup=typed)
    s(ALL, f"{IX}.correct_responses.0.pattern", first, 0, setup=typed)
    g(ALL, f"{IX}.correct_responses._count", 0, "1", setup=typed)
for kind, first, second in [("choice", "a[,]b", "c"), ("sequencing", "a[,]b", "b[,]a")]:
    typed = [*ID, [f"{IX}.type", kind], [f"{IX}.correct_responses.0.pattern", first]]
    s(ALL, f"{IX}.correct_responses.1.pattern", first, 351, setup=typed)
    s(ALL, f"{IX}.correct_responses.1.pattern", second, 0, setup=typed)
    s(ALL, f"{IX}.correct_responses.2.pattern", second, 351, setup=typed)
for kind, first in [("fill-in", "a"), ("matching", "1[.]a"), ("performance", "s[.]a"), ("long-fill-in", "t")]:
    typed = [*ID, [f"{IX}.type", kind], [f"{IX}.correct_responses.0.pattern", first]]
    s(ALL, f"{IX}.correct_responses.1.pattern", first, 0, setup=typed)
TYPED = [*ID, [f"{IX}.type", "choice"], [f"{IX}.correct_responses.0.pattern", "a"]]
g(ALL, f"{IX}.correct_responses.0.pattern", 0, "a", setup=TYPED)
g(ALL, f"{IX}.correct_responses.1.pattern", 301, setup=TYPED)
s(ALL, f"{IX}.correct_responses.2.pattern", "b", 351, setup=TYPED)
s(ALL, f"{IX}.correct_responses._count", "1", 404, setup=TYPED)
# Objectives: id first, unique, write-once.
OB = "cmi.objectives.0"
OID = [[f"{OB}.id", "obj1"]]
many(ALL, f"{OB}.id", ["obj1", "urn:org:objective:1"], 0)
many(ALL, f"{OB}.id", ["", " ", "urn:"], 406)
for child, value in [
    ("success_status", "passed"),
    ("completion_status", "completed"),
    ("score.scaled", "0.5"),
    ("score.raw", "5"),
    ("progress_measure", "0.5"),
    ("description", "d"),
]:
    s(ALL, f"{OB}.{child}", value, 408)
s(ALL, "cmi.objectives.1.id", "obj2", 351)
s(ALL, "cmi.objectives.1.id", "obj1", 351, setup=OID)
s(ALL, "cmi.objectives.1.id", "obj2", 0, setup=OID)
s(ALL, f"{OB}.id", "obj1", 0, setup=OID)
s(ALL, f"{OB}.id", "other", 351, setup=OID)
g(ALL, f"{OB}.id", 0, "obj1", setup=OID)
g(ALL, "cmi.objectives._count", 0, "1", setup=OID)
many(ALL, f"{OB}.score.scaled", ["0.5", "-1", "1"], 0, setup=OID)
many(ALL, f"{OB}.score.scaled", ["1.5", "-2"], 407, setup=OID)
for part in ["raw", "min", "max"]:
    s(ALL, f"{OB}.score.{part}", "200", 0, setup=OID)
    s(ALL, f"{OB}.score.{part}", "x", 406, setup=OID)
many(ALL, f"{OB}.success_status", ["passed", "failed", "unknown"], 0, setup=OID)
s(ALL, f"{OB}.success_status", "completed", 406, setup=OID)
many(ALL, f"{OB}.completion_status", ["completed", "incomplete", "not attempted", "unknown"], 0, setup=OID)
s(ALL, f"{OB}.completion_status", "passed", 406, setup=OID)
many(ALL, f"{OB}.progress_measure", ["0", "1", "0.3"], 0, setup=OID)
s(ALL, f"{OB}.progress_measure", "2", 407, setup=OID)
many(ALL, f"{OB}.description", ["{lang=en-GB}Goal", long(251)], 0, setup=OID)
s(ALL, f"{OB}.description", "{lang=toolongtag}x", 406, setup=OID)
for child, expected in [("success_status", "unknown"), ("completion_status", "unknown")]:
    g(ALL, f"{OB}.{child}", 0, expected, setup=OID)
for child in ["score.scaled", "score.raw", "score.min", "score.max", "progress_measure", "description"]:
    g(ALL, f"{OB}.{child}", 403, setup=OID)
g(ALL, f"{OB}.score._children", 0, "scaled,raw,min,max", setup=OID)
g(ALL, f"{OB}.score._count", 301, setup=OID)
g(ALL, "cmi.objectives.1.id", 301, setup=OID)
g(ALL, f"{OB}.success_status", 0, "passed", setup=[*OID, [f"{OB}.success_status", "passed"]])
# Pre-loaded objectives (from the manifest) behave the same.
PRE = {"cmi.objectives.0.id": "primary", "cmi.objectives.0.success_status": "passed"}
g(ALL, "cmi.objectives._count", 0, "1", initial=PRE)
g(ALL, f"{OB}.success_status", 0, "passed", initial=PRE)
s(ALL, "cmi.objectives.1.id", "primary", 351, initial=PRE)
s(ALL, f"{OB}.id", "renamed", 351, initial=PRE)
# 4th Edition: adl.data shared data and jump.
g(V4, "adl.data._children", 0, "id,store")
g(V4, "adl.data._count", 0, "1")
g(V4, "adl.data.0.id", 0, "shared-1")
g(V4, "adl.data.0.store", 0, "v1")
g(V4, "adl.data.1.id", 301)
s(V4, "adl.data.0.store", "v2", 0)
s(V4, "adl.data.0.store", long(64001), 0)
g(V4, "adl.data.0.store", 0, "v2", setup=[["adl.data.0.store", "v2"]])
s(V4, "adl.data.0.id", "x", 404)
s(V4, "adl.data._count", "2", 404)
# adl.data records come from the LMS: SetValue cannot append one (351, ADL CTS DMI), and the id is RO.
s(V4, "adl.data.1.store", "x", 351)
s(V4, "adl.data.2.store", "x", 351)
s(V4, "adl.data.1.id", "x", 404)
s(V4, "adl.data.01.store", "x", 351)
g(V4, "adl.data.00.store", 301)
g(V4, "adl.data.0.store", 403, initial={"adl.data.0.store": None})
g(V4, "adl.data.0.store", 405, data_access=[[False, True]])
# readSharedData guards only the store: the id stays readable (RTE 4.3, ADL CTS DMI).
g(V4, "adl.data.0.id", 0, "shared-1", data_access=[[False, True]])
g(V4, "adl.data.0.id", 0, "shared-1", data_access=[[False, False]])
g(V4, "adl.data._count", 0, "1", data_access=[[False, False]])
# An emptied store is no shared data: it reads as never set (ADL CTS DMI).
g(V4, "adl.data.0.store", 403, setup=[["adl.data.0.store", ""]])
g(V4, "adl.data.0.store", 403, initial={"adl.data.0.store": ""})
g(V4, "adl.data.0.store", 0, "again", setup=[["adl.data.0.store", ""], ["adl.data.0.store", "again"]])
s(V4, "adl.data.0.store", "x", 404, data_access=[[True, False]])
s(V4, "adl.data.0.store", "x", 0, data_access=[[False, True]])
g(V4, "adl.data.0.store", 0, "v1", data_access=[[True, False]])
g(V4, "adl.nav.request_valid.jump.{target=intro}", 0, "unknown")
g(V4, "adl.nav.request_valid.jump", 301)
s(V4, "adl.nav.request_valid.jump.{target=intro}", "true", 404)
g(
    V4,
    "adl.nav.request_valid.choice.{target=intro}",
    0,
    "true",
    initial={"adl.nav.request_valid.choice.{target=intro}": "true"},
)
for v in (V2, V3):
    for name in [
        "adl.data._count",
        "adl.data._children",
        "adl.data.0.store",
        "adl.nav.request_valid.jump.{target=intro}",
    ]:
        g(v, name, 401)
    s(v, "adl.data.0.store", "x", 401)
