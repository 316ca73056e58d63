"""Statement validation: every template-driven case of the ADL LRS conformance suite, and the rules
the suite checks elsewhere or not at all.

tests/core/xapi/suite_cases_*.json are the suite's test/<version>/configs cases expanded with its
templates by tests/core/xapi/extract_suite_cases.js (run it again when the suite changes).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core.xapi.statement_errors import StatementError
from appliance.core.xapi.statement_normalization import normalize_statement
from appliance.core.xapi.validation import validate_statement, validate_statement_batch
from appliance.core.xapi.value_formats import (
    is_duration,
    is_iri,
    is_language_tag,
    is_timestamp,
    parse_timestamp,
    utc_timestamp,
)
from tests.core.xapi.strategies import statements

HERE = Path(__file__).parent


def _cases(file: str, version: str) -> list[tuple[str, str, dict, int]]:
    cases = json.loads((HERE / file).read_text())
    return [(version, f"{c['file']}: {c['name']}", c["statement"], c["expect"]) for c in cases]


SUITE_CASES = _cases("suite_cases_1_0_3.json", "1.0.3") + _cases("suite_cases_2_0.json", "2.0.0")


@pytest.mark.parametrize(
    ("version", "name", "statement", "expect"), SUITE_CASES, ids=[f"{c[0]}|{c[1]}" for c in SUITE_CASES]
)
def test_suite_case(version: str, name: str, statement: dict, expect: int) -> None:
    """The suite posts each case and expects 200 (accepted) or 400 (refused)."""
    body = copy.deepcopy(statement)
    if expect == 400:
        with pytest.raises(StatementError):
            validate_statement_batch(body, version)
    else:
        assert validate_statement_batch(body, version) == [body]


def test_suite_cases_cover_both_outcomes() -> None:
    """The fixtures hold the suite's full batteries (a truncated extraction would pass silently)."""
    assert len(SUITE_CASES) > 1900
    assert sum(1 for c in SUITE_CASES if c[3] == 400) > 1200
    assert sum(1 for c in SUITE_CASES if c[3] == 200) > 600


# --- the suite's hand-coded statement cases (its test/<version>/*.js files) ---------------------


def _suite_statement(name: str, version: str = "1.0.3") -> dict:
    """A statement the suite sends in its template-driven cases, looked up by the case's name."""
    for v, case_name, statement, expect in SUITE_CASES:
        if v == version and case_name.endswith(f": {name}") and expect == 200:
            return copy.deepcopy(statement)
    raise LookupError(name)


def _refused(statement: object, version: str = "1.0.3") -> StatementError:
    with pytest.raises(StatementError) as info:
        validate_statement(statement, version)
    return info.value


INTERACTION_TEMPLATES = [
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
]


@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
@pytest.mark.parametrize("interaction", INTERACTION_TEMPLATES)
def test_interaction_properties_require_interaction_type(version: str, interaction: str) -> None:
    """Data 2.4.4.1.s8 (XAPI-00064): correctResponsesPattern/choices/scale/... need interactionType."""
    statement = _suite_statement(f"should pass statement activity {interaction} template", version)
    validate_statement(statement, version)
    del statement["object"]["definition"]["interactionType"]
    error = _refused(statement, version)
    assert error.path == "statement.object.definition"
    assert "interactionType" in error.message


@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
@pytest.mark.parametrize("kind", ["agent", "group"])
def test_agent_or_group_object_requires_object_type(version: str, kind: str) -> None:
    """XAPI-00065: without objectType an object is an Activity, and an Activity has no mbox."""
    statement = _suite_statement(f"should pass statement {kind} template", version)
    validate_statement(statement, version)
    del statement["object"]["objectType"]
    assert _refused(statement, version).message.startswith("unknown property")
    sub = _suite_statement(f"should pass statement substatement {kind} template", version)
    validate_statement(sub, version)
    del sub["object"]["object"]["objectType"]
    assert _refused(sub, version).path == "statement.object.object"


DEFAULT = {
    "actor": {"objectType": "Agent", "name": "xAPI mbox", "mbox": "mailto:xapi@adlnet.gov"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-GB": "attended", "en-US": "attended"}},
    "object": {"objectType": "Activity", "id": "http://www.example.com/meetings/occurances/34534"},
}


def stmt(**changes: object) -> dict:
    """The suite's default statement with top-level properties set (None deletes one)."""
    statement = copy.deepcopy(DEFAULT)
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = copy.deepcopy(value)
    return statement


def test_authority_group_of_non_oauth_agents_is_refused() -> None:
    """XAPI-00100: an identified Group of two Agents is not an OAuth authority."""
    authority = {
        "objectType": "Group",
        "name": "xAPI Group",
        "mbox": "mailto:xapigroup@example.com",
        "member": [
            {"name": "agentA", "mbox": "mailto:agentA@example.com"},
            {"name": "agentB", "mbox": "mailto:agentB@example.com"},
        ],
    }
    assert _refused(stmt(authority=authority)).path == "statement.authority.mbox"
    del authority["mbox"]
    validate_statement(stmt(authority=authority), "1.0.3")


@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
def test_stored_and_id_are_accepted_and_checked(version: str) -> None:
    """XAPI-00097: a statement may carry stored (the LRS overwrites it); its form is still checked."""
    validate_statement(stmt(stored="2011-07-15T00:00:00.000Z"), version)
    validate_statement(stmt(id="AA97B177-9383-4934-8543-0F91A7A02836"), version)
    assert _refused(stmt(stored="July 15, 2011"), version).path == "statement.stored"


def test_null_timestamp_is_none_in_2_0_only() -> None:
    """2.0: "timestamp": null means none (the LRS sets it to stored); 1.0.3 has no null timestamp."""
    validate_statement(stmt(timestamp=None) | {"timestamp": None}, "2.0.0")
    assert _refused(stmt() | {"timestamp": None}, "1.0.3").path == "statement.timestamp"


@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
def test_property_not_in_the_spec_is_refused(version: str) -> None:
    """4.1.6.1: 'additional properties' outside extensions are refused, at any depth."""
    assert _refused(stmt(dummy="dummy"), version).message == "unknown property 'dummy'"
    statement = stmt()
    statement["verb"]["extra"] = 1
    assert _refused(statement, version).path == "statement.verb"
    statement = stmt(result={"score": {"scaled": 0.5, "percent": 50}})
    assert _refused(statement, version).path == "statement.result.score"


def test_2_0_accepts_what_its_data_type_tests_send() -> None:
    """4.2.7: a duration finer than 0.01 s, a timestamp with a -05:00 offset, version 2.0.0."""
    validate_statement(stmt(result={"duration": "P1DT12H36M0.12567S"}), "2.0.0")
    validate_statement(stmt(timestamp="2023-05-04T12:00:00-05:00"), "2.0.0")
    validate_statement(stmt(version="2.0.0"), "2.0.0")
    validate_statement(stmt(version="1.0.3"), "2.0.0")
    assert _refused(stmt(version="2.0.0"), "1.0.3").path == "statement.version"
    assert _refused(stmt(version="3.0.0"), "2.0.0").path == "statement.version"


def test_voiding_statement_needs_a_statement_ref() -> None:
    """Data 2.3.2: a voided-verb statement's object is a StatementRef (the target need not exist)."""
    voided = {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}}
    ref = {"objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0"}
    validate_statement(stmt(verb=voided, object=ref), "1.0.3")
    assert _refused(stmt(verb=voided)).path == "statement.object"
    # Inside a SubStatement the verb is only described, not applied: no voiding rule.
    sub = {"objectType": "SubStatement", **stmt(verb=voided)}
    validate_statement(stmt(object=sub), "1.0.3")


# --- the rules, one by one ----------------------------------------------------------------------


def test_statement_and_batch_shapes() -> None:
    body = stmt()
    assert validate_statement_batch(body, "1.0.3") == [body]
    batch = [stmt(), stmt()]
    assert validate_statement_batch(batch, "1.0.3") is batch
    assert validate_statement_batch([], "1.0.3") == []
    for bad in ("[]", 3, None, "statement"):
        assert _batch_error(bad).path == "statements"
    error = _batch_error([stmt(), stmt(verb={"id": "no scheme"})])
    assert error.path == "statements[1].verb.id"
    assert str(error) == "statements[1].verb.id: must be an absolute IRI"
    assert _batch_error([stmt(), 7]).path == "statements[1]"


def _batch_error(body: object) -> StatementError:
    with pytest.raises(StatementError) as info:
        validate_statement_batch(body, "1.0.3")
    return info.value


def test_a_batch_with_an_id_twice_is_refused() -> None:
    """4.1.6.1: the same id used more than once in one batch (case-insensitively) is refused whole."""
    sid = "8f87ccde-bb56-4c2e-ab83-44982ef22df0"
    error = _batch_error([stmt(id=sid), stmt(), stmt(id=sid.upper())])
    assert error.path == "statements[2].id"
    validate_statement_batch([stmt(id=sid), stmt(id="8f87ccde-bb56-4c2e-ab83-44982ef22df1")], "1.0.3")


def test_unknown_version_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        validate_statement(stmt(), "1.0")


@pytest.mark.parametrize(
    ("actor", "path"),
    [
        ({"mbox": "mailto:a@example.com", "openid": "http://openid.example.org/1"}, "statement.actor"),
        ({"name": "nobody"}, "statement.actor"),
        ({"mbox": "a@example.com"}, "statement.actor.mbox"),
        ({"mbox": "mailto:a@example.com", "objectType": "agent"}, "statement.actor.objectType"),
        ({"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab97606"}, "statement.actor.mbox_sha1sum"),
        ({"openid": "openid.example.org/1"}, "statement.actor.openid"),
        ({"account": {"homePage": "http://example.com"}}, "statement.actor.account"),
        ({"account": {"homePage": "http://example.com", "name": "a", "id": 1}}, "statement.actor.account"),
        ({"account": {"homePage": "example.com", "name": "a"}}, "statement.actor.account.homePage"),
        ({"account": {"homePage": "http://example.com", "name": 7}}, "statement.actor.account.name"),
        ({"objectType": "Group"}, "statement.actor"),
        ({"objectType": "Group", "member": []}, "statement.actor.member"),
        ({"objectType": "Group", "member": {"mbox": "mailto:a@example.com"}}, "statement.actor.member"),
        (
            {"objectType": "Group", "member": [{"objectType": "Group", "mbox": "mailto:g@example.com"}]},
            "statement.actor.member[0].objectType",
        ),
        ({"objectType": "Group", "member": [{"name": "no ifi"}]}, "statement.actor.member[0]"),
        (
            {"objectType": "Group", "mbox": "mailto:g@example.com", "openid": "http://o.example.com/g"},
            "statement.actor",
        ),
        ("mailto:a@example.com", "statement.actor"),
    ],
)
def test_actor_rules(actor: object, path: str) -> None:
    assert _refused(stmt(actor=actor)).path == path


@pytest.mark.parametrize(
    "actor",
    [
        {"mbox": "MAILTO:a@example.com"},
        {"mbox_sha1sum": "CD9B00A5611F94EAA7B1661EDAB976068E364975"},
        {"openid": "http://openid.example.org/12345"},
        {"account": {"homePage": "http://www.example.com", "name": "xAPI account name"}},
        {"objectType": "Group", "mbox": "mailto:g@example.com"},
        {"objectType": "Group", "mbox": "mailto:g@example.com", "member": []},
        {"objectType": "Group", "member": [{"mbox": "mailto:a@example.com"}, {"openid": "urn:x:1"}]},
    ],
)
def test_actors_accepted(actor: dict) -> None:
    validate_statement(stmt(actor=actor), "1.0.3")


def test_object_rules() -> None:
    assert _refused(stmt(object={"objectType": "Activity"})).path == "statement.object"
    assert _refused(stmt(object={"id": "http://example.com/a", "definition": []})).path == (
        "statement.object.definition"
    )
    assert _refused(stmt(object={"objectType": "StatementRef", "id": "not-a-uuid"})).path == "statement.object.id"
    ref = {"objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0", "definition": {}}
    assert _refused(stmt(object=ref)).message == "unknown property 'definition'"
    nested = {"objectType": "SubStatement", **stmt(object={"objectType": "SubStatement", **stmt()})}
    assert _refused(stmt(object=nested)).path == "statement.object.object.objectType"
    for key, value in (("id", "8f87ccde-bb56-4c2e-ab83-44982ef22df0"), ("stored", "2011-07-15T00:00:00Z")):
        sub = {"objectType": "SubStatement", **stmt(), key: value}
        assert _refused(stmt(object=sub)).path == f"statement.object.{key}"
    sub = {"objectType": "SubStatement", **stmt(), "attachments": [], "timestamp": "2011-07-15T00:00:00Z"}
    validate_statement(stmt(object=sub), "1.0.3")


def _activity(**definition: object) -> dict:
    return {"objectType": "Activity", "id": "http://example.com/q1", "definition": definition}


def test_interaction_components() -> None:
    choices = [{"id": "a", "description": {"en-US": "A"}}, {"id": "b"}]
    validate_statement(stmt(object=_activity(interactionType="choice", choices=choices)), "1.0.3")
    validate_statement(stmt(object=_activity(interactionType="sequencing", choices=choices)), "1.0.3")
    error = _refused(stmt(object=_activity(interactionType="likert", choices=choices)))
    assert error.path == "statement.object.definition.choices"
    twice = [{"id": "a"}, {"id": "a"}]
    error = _refused(stmt(object=_activity(interactionType="choice", choices=twice)))
    assert error.path == "statement.object.definition.choices[1].id"
    error = _refused(stmt(object=_activity(interactionType="choice", choices=[{"description": {}}])))
    assert error.path == "statement.object.definition.choices[0]"
    error = _refused(stmt(object=_activity(interactionType="matching", source=[{"id": "a", "x": 1}])))
    assert error.path == "statement.object.definition.source[0]"
    error = _refused(stmt(object=_activity(interactionType="numeric", correctResponsesPattern="4")))
    assert error.path == "statement.object.definition.correctResponsesPattern"
    error = _refused(stmt(object=_activity(interactionType="numeric", correctResponsesPattern=[4])))
    assert error.path == "statement.object.definition.correctResponsesPattern[0]"
    assert _refused(stmt(object=_activity(interactionType=None))).path == "statement.object.definition.interactionType"
    validate_statement(stmt(object=_activity(interactionType="numeric", correctResponsesPattern=[])), "1.0.3")


@pytest.mark.parametrize(
    ("result", "path"),
    [
        ({"score": {"scaled": 1.01}}, "statement.result.score.scaled"),
        ({"score": {"scaled": -1.00001}}, "statement.result.score.scaled"),
        ({"score": {"scaled": True}}, "statement.result.score.scaled"),
        ({"score": {"raw": "5"}}, "statement.result.score.raw"),
        ({"score": {"raw": float("nan")}}, "statement.result.score.raw"),
        ({"score": {"max": float("inf")}}, "statement.result.score.max"),
        ({"score": {"min": 5, "max": 5}}, "statement.result.score"),
        ({"score": {"raw": 11, "max": 10}}, "statement.result.score.raw"),
        ({"score": {"raw": -1, "min": 0}}, "statement.result.score.raw"),
        ({"success": "true"}, "statement.result.success"),
        ({"completion": 1}, "statement.result.completion"),
        ({"response": 42}, "statement.result.response"),
        ({"duration": "PT1H0M0S "}, "statement.result.duration"),
        ({"extensions": {"not an iri": 1}}, "statement.result.extensions"),
        ({"extensions": []}, "statement.result.extensions"),
    ],
)
def test_result_rules(result: dict, path: str) -> None:
    assert _refused(stmt(result=result)).path == path


def test_results_accepted() -> None:
    for result in (
        {"score": {"scaled": -1, "raw": 0, "min": 0, "max": 0.5}},
        {"score": {"raw": 1e300}},
        {"score": {}},
        {"success": False, "completion": True, "response": "", "duration": "P4W"},
        {"extensions": {"http://example.com/ex": None, "urn:x:y": {"nested": [1, 2]}}},
    ):
        validate_statement(stmt(result=result), "1.0.3")


REF = {"objectType": "StatementRef", "id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0"}


@pytest.mark.parametrize(
    ("context", "path"),
    [
        ({"registration": "8f87ccde"}, "statement.context.registration"),
        ({"instructor": {"name": "no ifi"}}, "statement.context.instructor"),
        ({"team": {"mbox": "mailto:team@example.com"}}, "statement.context.team"),
        ({"contextActivities": {"parent": "http://example.com/a"}}, "statement.context.contextActivities.parent"),
        (
            {"contextActivities": {"parent": [{"objectType": "Agent"}]}},
            "statement.context.contextActivities.parent[0].objectType",
        ),
        ({"contextActivities": {"parents": []}}, "statement.context.contextActivities"),
        ({"contextActivities": {"other": [{"id": "no scheme"}]}}, "statement.context.contextActivities.other[0].id"),
        ({"revision": 2}, "statement.context.revision"),
        ({"language": "en_US"}, "statement.context.language"),
        ({"language": ["en"]}, "statement.context.language"),
        ({"statement": {"id": "8f87ccde-bb56-4c2e-ab83-44982ef22df0"}}, "statement.context.statement.objectType"),
        ({"statement": "8f87ccde-bb56-4c2e-ab83-44982ef22df0"}, "statement.context.statement"),
        ({"contextAgents": []}, "statement.context"),
    ],
)
def test_context_rules(context: dict, path: str) -> None:
    assert _refused(stmt(context=context)).path == path


def test_revision_and_platform_only_with_an_activity_object() -> None:
    agent_object = {"objectType": "Agent", "mbox": "mailto:b@example.com"}
    for key in ("revision", "platform"):
        validate_statement(stmt(context={key: "x"}), "1.0.3")
        assert _refused(stmt(object=agent_object, context={key: "x"})).path == f"statement.context.{key}"
        assert _refused(stmt(object=REF, context={key: "x"})).path == f"statement.context.{key}"


def test_2_0_context_agents_and_groups() -> None:
    agent = {"objectType": "Agent", "mbox": "mailto:p1@example.com"}
    group = {"objectType": "Group", "mbox": "mailto:t1@example.com"}
    context = {
        "contextAgents": [{"objectType": "contextAgent", "agent": agent, "relevantTypes": ["http://example.com/t"]}],
        "contextGroups": [{"objectType": "contextGroup", "group": group}],
    }
    validate_statement(stmt(context=context), "2.0.0")
    cases = [
        ({"contextAgents": {}}, "statement.context.contextAgents"),
        ({"contextAgents": [{"agent": agent}]}, "statement.context.contextAgents[0].objectType"),
        ({"contextAgents": [{"objectType": "contextAgent"}]}, "statement.context.contextAgents[0]"),
        (
            {"contextAgents": [{"objectType": "contextAgent", "agent": group}]},
            "statement.context.contextAgents[0].agent.objectType",
        ),
        (
            {"contextGroups": [{"objectType": "contextGroup", "group": agent}]},
            "statement.context.contextGroups[0].group",
        ),
        (
            {"contextGroups": [{"objectType": "contextGroup", "group": group, "relevantTypes": []}]},
            "statement.context.contextGroups[0].relevantTypes",
        ),
        (
            {"contextGroups": [{"objectType": "contextGroup", "group": group, "x": 1}]},
            "statement.context.contextGroups[0]",
        ),
    ]
    for bad, path in cases:
        assert _refused(stmt(context=bad), "2.0.0").path == path
    assert _refused(stmt(context=context), "1.0.3").message == "unknown property 'contextAgents'"


ATTACHMENT = {
    "usageType": "http://example.com/attachment-usage/test",
    "display": {"en-US": "A test attachment"},
    "contentType": "text/plain; charset=ascii",
    "length": 27,
    "sha2": "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a",
}


def test_attachment_rules() -> None:
    validate_statement(stmt(attachments=[ATTACHMENT]), "1.0.3")
    validate_statement(stmt(attachments=[ATTACHMENT | {"fileUrl": "http://over.there.com/file.txt"}]), "1.0.3")
    for key in ("usageType", "display", "contentType", "length", "sha2"):
        missing = {k: v for k, v in ATTACHMENT.items() if k != key}
        assert _refused(stmt(attachments=[missing])).message == f"an Attachment requires {key}"
    for key, value in (("length", -1), ("length", 2.5), ("length", True), ("sha2", 5), ("fileUrl", "file.txt")):
        assert _refused(stmt(attachments=[ATTACHMENT | {key: value}])).path == f"statement.attachments[0].{key}"
    assert _refused(stmt(attachments=[ATTACHMENT | {"name": "x"}])).path == "statement.attachments[0]"


# --- scalar checks ------------------------------------------------------------------------------


TIMESTAMPS = [
    # value, 1.0.3, 2.0
    ("2008-09-15T15:53:00.601Z", True, True),
    ("2008-09-15T15:53:00Z", True, True),
    ("2008-09-15T15:53:00.601+00:00", True, True),
    ("2023-05-04T12:00:00-05:00", True, True),
    ("2008-09-15T15:53:00.123456789+05:30", True, True),
    ("2016-12-31T23:59:60Z", True, True),
    ("2008-09-15t15:53:00z", False, True),
    ("2008-09-15T15:53:00.601", True, False),
    ("2008-09-15T15:53Z", True, False),
    ("2008-09-15T15:53:00+0530", True, False),
    ("2008-09-15T15:53:00+05", True, False),
    ("20080915T155300Z", True, False),
    ("20080915T155300.601+0530", True, False),
    ("2008-09-15T15:53:00.601-00:00", False, False),
    ("2008-09-15T15:53:00.601-0000", False, False),
    ("2008-09-15T15:53:00.601-00", False, False),
    ("20080915T155300-0000", False, False),
    ("2008-09-15 15:53:00Z", False, False),
    ("2008-09-15", False, False),
    ("01/011/2015", False, False),
    ("should fail", False, False),
    ("2008-13-15T15:53:00Z", False, False),
    ("2008-02-30T15:53:00Z", False, False),
    ("2007-02-29T15:53:00Z", False, False),
    ("2008-02-29T15:53:00Z", True, True),
    ("2000-02-29T15:53:00Z", True, True),
    ("1900-02-29T15:53:00Z", False, False),
    ("2008-04-31T15:53:00Z", False, False),
    ("2008-09-15T24:00:00Z", False, False),
    ("2008-09-15T15:60:00Z", False, False),
    ("2008-09-15T15:53:00+24:00", False, False),
    ("2008-09-15T15:53:00+05:60", False, False),
    ("2008-09-15T15:53:00.Z", False, False),
]


@pytest.mark.parametrize(("value", "v1", "v2"), TIMESTAMPS)
def test_timestamps(value: str, v1: bool, v2: bool) -> None:
    """1.0.3: ISO 8601 (extended or basic, zone optional); 2.0: RFC 3339; neither: offset -00:00."""
    assert is_timestamp(value, "1.0.3") is v1
    assert is_timestamp(value, "2.0.0") is v2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-05-04T12:00:00-05:00", "2023-05-04T17:00:00+00:00"),
        ("2008-09-15T15:53:00.60123456Z", "2008-09-15T15:53:00.601234+00:00"),
        ("20080915T155300.5+0530", "2008-09-15T10:23:00.500000+00:00"),
        ("2008-09-15T15:53", "2008-09-15T15:53:00+00:00"),
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00+00:00"),
    ],
)
def test_parse_timestamp(value: str, expected: str) -> None:
    assert parse_timestamp(value).isoformat() == expected


def test_parse_timestamp_refuses_text() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("PT1H0M0.1S", True),
        ("PT4H35M59.14S", True),
        ("PT16559.14S", True),
        ("P3Y1M29DT4H35M59.14S", True),
        ("P3Y", True),
        ("P4W", True),
        ("P1DT12H36M0.12567S", True),
        ("PT0S", True),
        ("P0D", True),
        ("P4W1D", False),
        ("PA1H0M0S", False),
        ("P", False),
        ("PT", False),
        ("P1DT", False),
        ("PT1H2D", False),
        ("P0003-01-29T04:35:59", False),
        ("1H", False),
        ("pt1h", False),
        (3600, False),
    ],
)
def test_durations(value: object, valid: bool) -> None:
    assert is_duration(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("http://adlnet.gov/expapi/verbs/attended", True),
        ("https://example.com/path/../x?q=1#f", True),
        ("urn:uuid:8f87ccde-bb56-4c2e-ab83-44982ef22df0", True),
        ("mailto:a@example.com", True),
        ("http://example.com/\u00e9t\u00e9", True),
        ("tag:example.com,2026:x", True),
        ("not.a.valid.iri.com/verb", False),
        ("ab=c://should.fail.com", False),
        ("http://example.com/a b", False),
        ("http://example.com/<a>", False),
        ("1http://example.com", False),
        ("http:", False),
        ("", False),
        ("should fail", False),
        (None, False),
        (12345, False),
    ],
)
def test_iris(value: object, valid: bool) -> None:
    assert is_iri(value) is valid
    assert is_iri(value) is valid  # memoised: the second answer must be the same


@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("en", True),
        ("de", True),
        ("en-US", True),
        ("de-DE", True),
        ("zh-Hant", True),
        ("sr-Latn-RS", True),
        ("zh-Hans-CN", True),
        ("cmn", True),
        ("ase", True),
        ("es-419", True),
        ("fr-CA", True),
        ("sl-rozaj-biske", True),
        ("de-CH-1901", True),
        ("en-US-u-islamcal", True),
        ("zh-cmn-Hans-CN", True),
        ("x-whatever", True),
        ("en-x-private", True),
        ("i-klingon", True),
        ("en-GB-oed", True),
        ("und", True),
        ("EN-us", True),
        ("a12345", False),
        ("a12345678", False),
        ("something", False),
        ("en-something-AU", False),
        ("zh-z-aaa-z-bbb-c-ccc", False),
        ("de-DE-1901-1901", False),
        ("en_US", False),
        ("en-", False),
        ("-en", False),
        ("e", False),
        ("en-US-x", False),
        ("", False),
    ],
)
def test_language_tags(tag: str, valid: bool) -> None:
    assert is_language_tag(tag) is valid
    assert is_language_tag(tag) is valid


def test_language_map_values_are_strings() -> None:
    statement = stmt(verb={"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-US": 5}})
    assert _refused(statement).path == "statement.verb.display.en-US"
    validate_statement(stmt(verb={"id": "http://adlnet.gov/expapi/verbs/attended", "display": {}}), "1.0.3")


# --- normalisation -------------------------------------------------------------------------------


def test_normalize_puts_context_activities_in_arrays() -> None:
    """Data 2.4.6.2 (XAPI-00096): a single ContextActivity is returned in an array."""
    parent = {"id": "http://example.com/p"}
    grouping = [{"id": "http://example.com/g"}]
    context = {"contextActivities": {"parent": parent, "grouping": grouping}}
    sub = {"objectType": "SubStatement", **stmt(context=context)}
    statement = stmt(context=context, object=sub)
    validate_statement(statement, "1.0.3")
    assert normalize_statement(statement) is statement
    assert statement["context"]["contextActivities"] == {"parent": [parent], "grouping": grouping}
    assert statement["object"]["context"]["contextActivities"] == {"parent": [parent], "grouping": grouping}
    again = copy.deepcopy(statement)
    assert normalize_statement(again) == statement  # idempotent
    validate_statement(statement, "1.0.3")  # and still valid


def test_normalize_drops_a_null_timestamp_and_nothing_else() -> None:
    statement = stmt(result={"duration": "PT1.123S"}) | {"timestamp": None}
    sub = {"objectType": "SubStatement", **stmt(), "timestamp": None}
    statement["object"] = sub
    normalize_statement(statement)
    assert "timestamp" not in statement
    assert "timestamp" not in statement["object"]
    plain = stmt(timestamp="2023-05-04T12:00:00-05:00")
    assert normalize_statement(copy.deepcopy(plain)) == plain


# --- robustness: any JSON anywhere is accepted or refused, never a crash ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) into a JSON value."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


@settings(max_examples=250, deadline=None)
@given(statements(), st.data(), json_values, st.sampled_from(["1.0.3", "2.0.0"]))
def test_any_json_in_any_place_is_accepted_or_refused(statement: dict, data: Any, junk: object, version: str) -> None:
    """A statement with one value replaced by arbitrary JSON: valid or StatementError, nothing else."""
    paths = [p for p in _paths(statement) if p]
    path = data.draw(st.sampled_from(paths))
    target = statement
    for step in path[:-1]:
        target = target[step]
    if data.draw(st.booleans()) and isinstance(target, dict):
        target[data.draw(st.text(max_size=10))] = junk  # an added property
    else:
        target[path[-1]] = junk
    try:
        validate_statement_batch(statement, version)
    except StatementError as error:
        assert error.path.startswith("statement")
        assert error.message


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_body_is_accepted_or_refused(body: object) -> None:
    with contextlib.suppress(StatementError):
        validate_statement_batch(body, "2.0.0")


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2023-05-04T12:00:00-05:00", "2023-05-04T17:00:00.000Z"),
        ("2023-05-04T12:00:00.1+01:30", "2023-05-04T10:30:00.100Z"),
        ("2023-05-04T12:00:00.123456789+00:00", "2023-05-04T12:00:00.123456Z"),
        ("2023-05-04t12:00:00.5z", "2023-05-04T12:00:00.500Z"),
        ("2023-05-04T12:00:00Z", "2023-05-04T12:00:00.000Z"),
    ],
)
def test_utc_timestamp(value: str, utc: str) -> None:
    assert utc_timestamp(value) == utc


def test_normalize_converts_2_0_timestamps_to_utc() -> None:
    """2.0 §4.2.7: the LRS converts timestamps to UTC rather than refusing them (4.2.7 suite test)."""
    sub = {"objectType": "SubStatement", **stmt(timestamp="2023-05-04T12:00:00+02:00")}
    statement = stmt(timestamp="2023-05-04T12:00:00-05:00", object=sub)
    normalize_statement(statement, "2.0.0")
    assert statement["timestamp"] == "2023-05-04T17:00:00.000Z"
    assert statement["object"]["timestamp"] == "2023-05-04T10:00:00.000Z"
    validate_statement(statement, "2.0.0")
    kept = stmt(timestamp="2023-05-04T12:00:00-05:00")
    assert normalize_statement(copy.deepcopy(kept), "1.0.3") == kept
    assert normalize_statement(copy.deepcopy(kept)) == kept
    zulu = stmt(timestamp="2023-05-04T12:00:00.1234Z")
    assert normalize_statement(copy.deepcopy(zulu), "2.0.0") == zulu  # already UTC: as sent


# --- the fixtures are the suite's --------------------------------------------------------------------

SUITE = HERE.parents[3] / "shared" / "suites" / "lrs-conformance-test-suite"


@pytest.mark.parametrize(
    ("directory", "fixture"), [("v1_0_3", "suite_cases_1_0_3.json"), ("v2_0", "suite_cases_2_0.json")]
)
def test_fixtures_match_the_suite(directory: str, fixture: str, tmp_path: Path) -> None:
    """The replayed cases are exactly what extract_suite_cases.js makes of the suite in ../shared.

    Skipped, like tests/conformance, where the shared suite (or Node.js) is not installed.
    """
    node = shutil.which("node")
    if not (SUITE / "test" / directory / "configs").is_dir() or node is None:
        pytest.skip(f"the ADL LRS conformance suite (and node) are not in {SUITE}")
    out = tmp_path / fixture
    subprocess.run(
        [node, str(HERE / "extract_suite_cases.js"), str(SUITE), directory, str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert json.loads(out.read_text()) == json.loads((HERE / fixture).read_text())
