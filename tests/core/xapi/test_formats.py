"""The GET `format` parameter: exact, ids and canonical, over generated statements and the suite's."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings

from appliance.core.xapi.formats import (
    accept_languages,
    best_language,
    canonical,
    exact,
    format_statement,
    ids,
)
from appliance.core.xapi.statement_normalization import normalize_statement
from appliance.core.xapi.validation import validate_statement
from tests.core.xapi.strategies import preferences, statements

IFIS = ("mbox", "mbox_sha1sum", "openid", "account")

# --- helpers: walk a statement's parts ---------------------------------------------------------------


def agents_in(statement: dict) -> list[dict]:
    """Every Agent/Group object of a statement (actor, authority, agent objects, instructor, team)."""
    found = [statement["actor"]]
    if "authority" in statement:
        found.append(statement["authority"])
    obj = statement["object"]
    if obj.get("objectType") in ("Agent", "Group"):
        found.append(obj)
    if obj.get("objectType") == "SubStatement":
        found.extend(agents_in(obj))
    context = statement.get("context") or {}
    found.extend(context[k] for k in ("instructor", "team") if k in context)
    return found


def activities_in(statement: dict) -> list[dict]:
    found = []
    obj = statement["object"]
    if obj.get("objectType", "Activity") == "Activity":
        found.append(obj)
    if obj.get("objectType") == "SubStatement":
        found.extend(activities_in(obj))
    for value in ((statement.get("context") or {}).get("contextActivities") or {}).values():
        found.extend(value if isinstance(value, list) else [value])
    return found


def verbs_in(statement: dict) -> list[dict]:
    found = [statement["verb"]]
    if statement["object"].get("objectType") == "SubStatement":
        found.append(statement["object"]["verb"])
    return found


def language_maps_in(statement: dict) -> list[dict]:
    maps = [v["display"] for v in verbs_in(statement) if "display" in v]
    for activity in activities_in(statement):
        definition = activity.get("definition") or {}
        maps.extend(definition[k] for k in ("name", "description") if k in definition)
        maps.extend(c["description"] for c in definition.get("choices", []) if "description" in c)
    return maps


# --- properties -----------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(statements())
def test_generated_statements_are_valid(statement: dict) -> None:
    """The generator's statements are valid (so the properties below are about valid statements)."""
    validate_statement(statement, "1.0.3")
    validate_statement(statement, "2.0.0")


@settings(max_examples=120, deadline=None)
@given(statements())
def test_exact_is_the_statement(statement: dict) -> None:
    assert exact(statement) == statement
    assert exact(statement) is not statement


@settings(max_examples=120, deadline=None)
@given(statements())
def test_ids_keeps_only_identifiers(statement: dict) -> None:
    before = copy.deepcopy(statement)
    reduced = ids(statement)
    assert statement == before  # the stored statement is never changed
    for verb in verbs_in(reduced):
        assert set(verb) == {"id"}
    for activity in activities_in(reduced):
        assert set(activity) == {"id"}
    for original, agent in zip(agents_in(before), agents_in(reduced), strict=True):
        ifis_sent = [k for k in IFIS if k in original]
        assert set(agent) <= {"objectType", "member", *IFIS}
        assert agent.get("objectType") == original.get("objectType")
        assert [k for k in IFIS if k in agent] == ifis_sent
        if ifis_sent:
            assert "member" not in agent
        else:  # an anonymous Group: its members' identifiers
            assert agent["member"] == [
                {k: v for k, v in m.items() if k in IFIS or k == "objectType"} for m in original["member"]
            ]
    assert reduced["id"] == before["id"] and reduced["timestamp"] == before["timestamp"]
    assert reduced.get("result") == before.get("result")
    validate_statement(reduced, "1.0.3")  # still a valid statement
    assert ids(reduced) == reduced  # idempotent


@settings(max_examples=120, deadline=None)
@given(statements(), preferences)
def test_canonical_keeps_one_language(statement: dict, prefs: list[str]) -> None:
    before = copy.deepcopy(statement)
    shown = canonical(statement, prefs)
    assert statement == before
    for original, reduced in zip(language_maps_in(before), language_maps_in(shown), strict=True):
        assert len(reduced) == min(1, len(original))
        for tag, text in reduced.items():
            assert original[tag] == text
            assert tag == best_language(original, prefs)
    assert agents_in(shown) == agents_in(before)  # Agents as in exact
    for original, activity in zip(activities_in(before), activities_in(shown), strict=True):
        assert activity["id"] == original["id"]
        if "definition" in original:  # everything but the language maps is kept
            untouched = {k: v for k, v in original["definition"].items() if k not in ("name", "description", "choices")}
            assert {k: v for k, v in activity["definition"].items() if k in untouched} == untouched
    validate_statement(shown, "2.0.0")
    assert canonical(shown, prefs) == shown


@settings(max_examples=80, deadline=None)
@given(statements(), preferences)
def test_formats_commute_with_normalisation(statement: dict, prefs: list[str]) -> None:
    """Stored statements are normalised; formatting them stays valid and array-shaped."""
    stored = normalize_statement(copy.deepcopy(statement))
    for shown in (ids(stored), canonical(stored, prefs)):
        for value in ((shown.get("context") or {}).get("contextActivities") or {}).values():
            assert isinstance(value, list)


# --- the suite's format tests (4.1.6.1 XAPI-00169..00172) ---------------------------------------------

UNICODE_DISPLAY = {"en-GB": "attended", "en-US": "attended", "ja-JP": "出席した", "ko-KR": "참석", "ru-RU": "участие"}


def suite_format_statement() -> dict:
    """The statement the suite's format tests post: a SubStatement whose actor is an identified Group."""
    return {
        "actor": {"objectType": "Agent", "name": "xAPI account", "mbox": "mailto:agent1@adlnet.gov"},
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/attended",
            "display": {"en-GB": "attended", "en-US": "attended"},
        },
        "object": {
            "objectType": "SubStatement",
            "actor": {"objectType": "Group", "name": "Group Identified", "mbox": "mailto:group1@adlnet.gov"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": UNICODE_DISPLAY},
            "object": {
                "objectType": "Activity",
                "id": "http://www.example.com/unicode/1",
                "definition": {
                    "name": {"en": "Other", **UNICODE_DISPLAY},
                    "description": {"en-US": "On this map, please mark Franklin, TN", "en-GB": "Mark Franklin"},
                    "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
                    "moreInfo": "http://virtualmeeting.example.com/345256",
                    "interactionType": "other",
                    "correctResponsesPattern": ["(35.937432,-86.868896)"],
                    "extensions": {"http://example.com/profiles/meetings/extension/location": "X:\\meetings"},
                },
            },
        },
    }


def test_suite_canonical_format() -> None:
    statement = suite_format_statement()
    validate_statement(statement, "1.0.3")
    shown = format_statement(statement, "canonical", "en-GB")
    assert shown["actor"] == statement["actor"]
    assert shown["verb"] == {"id": statement["verb"]["id"], "display": {"en-GB": "attended"}}
    sub = shown["object"]
    assert sub["actor"] == statement["object"]["actor"]
    assert sub["verb"]["display"] == {"en-GB": "attended"}
    definition = dict(statement["object"]["object"]["definition"])
    definition["name"] = {"en-GB": "attended"}
    definition["description"] = {"en-GB": "Mark Franklin"}
    assert sub["object"] == {
        "objectType": "Activity",
        "id": "http://www.example.com/unicode/1",
        "definition": definition,
    }


def test_suite_ids_format() -> None:
    statement = suite_format_statement()
    shown = format_statement(statement, "ids")
    assert shown["actor"] == {"objectType": "Agent", "mbox": "mailto:agent1@adlnet.gov"}
    assert shown["verb"] == {"id": "http://adlnet.gov/expapi/verbs/attended"}
    assert shown["object"]["actor"] == {"objectType": "Group", "mbox": "mailto:group1@adlnet.gov"}
    assert shown["object"]["verb"] == {"id": "http://adlnet.gov/expapi/verbs/attended"}
    assert shown["object"]["object"] == {"id": "http://www.example.com/unicode/1"}
    assert shown["object"]["objectType"] == "SubStatement"


def test_suite_canonical_context_activities() -> None:
    """XAPI-00172: Accept-Language en-GB removes en-US from verb and category activity maps."""
    category = {
        "id": "http://www.example.com/test/array/statements/pri",
        "definition": {"name": {"en-GB": "n gb", "en-US": "n us"}, "description": {"en-GB": "d gb", "en-US": "d us"}},
    }
    statement = normalize_statement(
        {
            "actor": {"mbox": "mailto:a@example.com"},
            "verb": {
                "id": "http://adlnet.gov/expapi/verbs/attended",
                "display": {"en-GB": "attended", "en-US": "attended"},
            },
            "object": {"id": "http://example.com/a"},
            "context": {"contextActivities": {"category": category}},
        }
    )
    shown = format_statement(statement, "canonical", ["en-GB"])
    definition = shown["context"]["contextActivities"]["category"][0]["definition"]
    assert definition == {"name": {"en-GB": "n gb"}, "description": {"en-GB": "d gb"}}
    assert shown["verb"]["display"] == {"en-GB": "attended"}
    assert format_statement(statement, "exact", "en-GB") == statement


def test_canonical_uses_the_lrs_definition_when_given() -> None:
    statement = {"actor": {"mbox": "mailto:a@example.com"}, "verb": {"id": "urn:v"}, "object": {"id": "urn:a"}}
    known = {"urn:a": {"name": {"de": "Kurs", "en": "Course"}, "type": "urn:t"}}
    shown = canonical(statement, ["en"], known.get)
    assert shown["object"]["definition"] == {"name": {"en": "Course"}, "type": "urn:t"}
    assert canonical(statement, ["en"], lambda _id: None) == statement


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError):
        format_statement({}, "full")


# --- Accept-Language ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, []),
        ("", []),
        ("en-GB", ["en-GB"]),
        ("fr;q=0.5, de, en-US;q=0.8", ["de", "en-US", "fr"]),
        ("da, en-gb;q=0.8, en;q=0.7", ["da", "en-gb", "en"]),
        ("*, fr;q=0.1", ["fr"]),
        ("de;q=0, fr", ["fr"]),
        ("de;q=bad, fr", ["fr"]),
        (" , en ,", ["en"]),
    ],
)
def test_accept_languages(header: str | None, expected: list[str]) -> None:
    assert accept_languages(header) == expected


@pytest.mark.parametrize(
    ("keys", "prefs", "expected"),
    [
        (["en-US", "en-GB"], ["en-GB"], "en-GB"),
        (["en-US", "en-GB"], ["EN-gb"], "en-GB"),
        (["en", "en-US"], ["en-GB"], "en"),  # truncation first (RFC 4647 lookup)
        (["de", "en-US"], ["en"], "en-US"),  # then a key in the same language
        (["de", "fr"], ["ja", "fr"], "fr"),
        (["de", "und"], ["ja"], "und"),
        (["de", "fr"], ["ja"], "de"),
        (["de", "fr"], [], "de"),
        ([], ["en"], None),
    ],
)
def test_best_language(keys: list[str], prefs: list[str], expected: str | None) -> None:
    assert best_language({k: k for k in keys}, prefs) == expected
