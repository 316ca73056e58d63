"""The Activities and Agents resources over the real app: the canonical definition, an unknown
activity, the Person object gathered from stored statements, parameters, and tenant isolation."""

from __future__ import annotations

import copy
import json

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.lrs.activities import merge_activity_definitions
from appliance.services.lrs.statements import insert_statements
from tests.faces.api.xapi.conftest import LrsClient

AID = "http://www.example.com/meetings/occurances/34534"


def store(config: Config, tenant_id: str, statements: list[dict]) -> None:
    """Write statements, and merge their activities' definitions as the statement store does (the
    statements themselves are stored without definitions, so only this merge writes them)."""
    bare = copy.deepcopy(statements)
    for s in bare:
        s["object"].pop("definition", None)
    inst = Instance(config)
    try:

        def run(conn):
            authority = {"mbox": "mailto:lrs@example.com"}
            insert_statements(conn, bare, stored=1.0, authority=authority, credential_id=None, version="1.0.3")
            merge_activity_definitions(conn, statements, 1.0)

        inst.tenant_db(tenant_id).write_sync(run)
    finally:
        inst.close()


def statement(actor: dict, definition: dict | None = None) -> dict:
    obj: dict = {"objectType": "Activity", "id": AID}
    if definition is not None:
        obj["definition"] = definition
    return {"actor": actor, "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"}, "object": obj}


def test_the_activity_with_its_merged_definition(api: TestClient, config: Config, lrs: LrsClient) -> None:
    actor = {"mbox": "mailto:xapi@adlnet.gov"}
    store(config, lrs.tenant_id, [statement(actor, {"name": {"en-US": "example meeting"}})])
    store(config, lrs.tenant_id, [statement(actor, {"name": {"fr-FR": "réunion"}, "moreInfo": "http://m"})])
    r = api.get("/xapi/activities", params={"activityId": AID}, headers=lrs.headers)
    assert r.status_code == 200
    assert r.json() == {
        "objectType": "Activity",
        "id": AID,
        "definition": {"name": {"en-US": "example meeting", "fr-FR": "réunion"}, "moreInfo": "http://m"},
    }
    head = api.head("/xapi/activities", params={"activityId": AID}, headers=lrs.headers)
    assert head.status_code == 200 and head.content == b""


def test_an_unknown_activity_and_bad_parameters(
    api: TestClient, lrs: LrsClient, lrs_globex: LrsClient, config: Config
) -> None:
    store(config, lrs.tenant_id, [statement({"mbox": "mailto:a@example.com"}, {"name": {"en": "acme's"}})])
    r = api.get("/xapi/activities", params={"activityId": AID}, headers=lrs_globex.headers)
    assert r.json() == {"objectType": "Activity", "id": AID}  # another tenant's definition is not seen
    assert api.get("/xapi/activities", headers=lrs.headers).status_code == 400
    assert api.get("/xapi/activities", params={"activityId": "true"}, headers=lrs.headers).status_code == 400
    assert api.get("/xapi/activities", params={"activityId": AID, "x": "1"}, headers=lrs.headers).status_code == 400
    assert api.post("/xapi/activities", params={"activityId": AID}, headers=lrs.headers).status_code == 405


def test_the_person_of_a_stored_agent(api: TestClient, config: Config, lrs: LrsClient) -> None:
    store(
        config,
        lrs.tenant_id,
        [
            statement({"objectType": "Agent", "name": "xAPI account", "mbox": "mailto:xapi@adlnet.gov"}),
            statement({"name": "Another Name", "mbox": "mailto:xapi@adlnet.gov"}),
            statement({"name": "Someone Else", "mbox": "mailto:other@adlnet.gov"}),
        ],
    )
    r = api.get("/xapi/agents", params={"agent": json.dumps({"mbox": "mailto:xapi@adlnet.gov"})}, headers=lrs.headers)
    assert r.status_code == 200
    assert r.json() == {
        "objectType": "Person",
        "name": ["Another Name", "xAPI account"],
        "mbox": ["mailto:xapi@adlnet.gov"],
    }


@pytest.mark.parametrize(
    ("agent", "prop"),
    [
        ({"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"}, "mbox_sha1sum"),
        ({"openid": "http://openid.example.org/12345"}, "openid"),
        ({"account": {"homePage": "http://www.example.com", "name": "xAPI account name"}}, "account"),
    ],
)
def test_the_person_of_an_unknown_agent(api: TestClient, lrs: LrsClient, agent: dict, prop: str) -> None:
    r = api.get("/xapi/agents", params={"agent": json.dumps({**agent, "name": "Rick"})}, headers=lrs.headers)
    assert r.status_code == 200
    assert r.json() == {"objectType": "Person", "name": ["Rick"], prop: [agent[prop]]}


def test_agents_parameters(api: TestClient, lrs: LrsClient) -> None:
    assert api.get("/xapi/agents", headers=lrs.headers).status_code == 400
    no_ifi = json.dumps({"objectType": "Agent", "name": "Rick James"})
    assert api.get("/xapi/agents", params={"agent": no_ifi}, headers=lrs.headers).status_code == 400
    assert api.get("/xapi/agents", params={"agent": "{"}, headers=lrs.headers).status_code == 400
    ok = json.dumps({"mbox": "mailto:a@example.com"})
    assert api.get("/xapi/agents", params={"agent": ok, "since": "x"}, headers=lrs.headers).status_code == 400
    assert api.delete("/xapi/agents", params={"agent": ok}, headers=lrs.headers).status_code == 405
