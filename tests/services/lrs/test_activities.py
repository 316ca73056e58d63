"""Canonical Activity definitions (appliance.services.lrs.activities) on a real tenant database: merged across
statements and within a batch, language maps and components by key, other properties replaced."""

from __future__ import annotations

from appliance.instance import Instance
from appliance.services.lrs.activities import activity_object, merge_activity_definitions, merge_definition
from tests.conftest import TenantKey

AID = "http://www.example.com/meetings/34534"


def statement(definition: dict, activity_id: str = AID, **extra) -> dict:
    return {
        "actor": {"mbox": "mailto:a@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"objectType": "Activity", "id": activity_id, "definition": definition},
        **extra,
    }


def test_two_languages_from_one_batch_and_a_later_statement(inst: Instance, acme: TenantKey) -> None:
    db = inst.tenant_db(acme.tenant_id)
    batch = [
        statement({"type": "http://t/1", "name": {"en-US": "example meeting"}, "extensions": {"http://e/a": 1}}),
        statement({"name": {"fr-FR": "réunion"}, "extensions": {"http://e/b": 2}}),
    ]
    assert db.write_sync(lambda c: merge_activity_definitions(c, batch, 1.0)) == 1
    later = [statement({"type": "http://t/2", "description": {"en-US": "d"}})]
    db.write_sync(lambda c: merge_activity_definitions(c, later, 2.0))
    assert db.read_sync(lambda c: activity_object(c, AID)) == {
        "objectType": "Activity",
        "id": AID,
        "definition": {
            "type": "http://t/2",
            "name": {"en-US": "example meeting", "fr-FR": "réunion"},
            "description": {"en-US": "d"},
            "extensions": {"http://e/a": 1, "http://e/b": 2},
        },
    }


def test_context_and_sub_statement_activities(inst: Instance, acme: TenantKey) -> None:
    db = inst.tenant_db(acme.tenant_id)
    sub = {
        "actor": {"mbox": "mailto:a@example.com"},
        "verb": {"id": "http://v"},
        "object": {"objectType": "SubStatement", **statement({"name": {"en": "inner"}}, "http://inner")},
        "context": {"contextActivities": {"parent": [{"id": "http://parent", "definition": {"name": {"en": "p"}}}]}},
    }
    assert db.write_sync(lambda c: merge_activity_definitions(c, [sub], 1.0)) == 2
    assert db.read_sync(lambda c: activity_object(c, "http://parent"))["definition"] == {"name": {"en": "p"}}
    assert db.read_sync(lambda c: activity_object(c, "http://inner"))["definition"] == {"name": {"en": "inner"}}


def test_an_unknown_activity_is_still_an_activity(inst: Instance, acme: TenantKey) -> None:
    db = inst.tenant_db(acme.tenant_id)
    assert db.read_sync(lambda c: activity_object(c, "http://never")) == {
        "objectType": "Activity",
        "id": "http://never",
    }
    assert db.write_sync(lambda c: merge_activity_definitions(c, [statement({})], 1.0)) == 0


def test_interaction_components_merge_by_id() -> None:
    old = {
        "interactionType": "choice",
        "correctResponsesPattern": ["a"],
        "choices": [{"id": "a", "description": {"en": "A"}}, {"id": "b", "description": {"en": "B"}}],
    }
    new = {"correctResponsesPattern": ["b"], "choices": [{"id": "b", "description": {"fr": "Bé"}}, {"id": "c"}]}
    assert merge_definition(old, new) == {
        "interactionType": "choice",
        "correctResponsesPattern": ["b"],
        "choices": [
            {"id": "a", "description": {"en": "A"}},
            {"id": "b", "description": {"en": "B", "fr": "Bé"}},
            {"id": "c"},
        ],
    }
    assert old["choices"][1] == {"id": "b", "description": {"en": "B"}}  # the inputs are not changed
