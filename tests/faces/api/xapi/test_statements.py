"""`/xapi/statements` over the real app: PUT/POST, conflicts, voiding, every GET filter, `more` paging
while statements arrive, formats, attachments in multipart/mixed, headers, and tenant isolation."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.core.xapi import multipart
from tests.faces.api.xapi.conftest import LrsClient

URL = "/xapi/statements"
VERB = "http://adlnet.gov/expapi/verbs/experienced"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


def agent(name: str) -> dict[str, Any]:
    return {"objectType": "Agent", "mbox": f"mailto:{name}@example.com"}


def statement(who: str = "ann", activity: str = "http://example.com/a", verb: str = VERB, **extra: Any) -> dict:
    return {
        "actor": agent(who),
        "verb": {"id": verb, "display": {"en-US": "experienced", "fr": "vécu"}},
        "object": {"objectType": "Activity", "id": activity},
        **extra,
    }


def headers(lrs: LrsClient, **more: str) -> dict[str, str]:
    return {**lrs.headers, "Content-Type": "application/json", **more}


def post(api: TestClient, lrs: LrsClient, body: Any) -> Any:
    return api.post(URL, headers=headers(lrs), content=json.dumps(body))


def get(api: TestClient, lrs: LrsClient, **params: Any) -> Any:
    return api.get(URL, headers=lrs.headers, params=params)


def ids_of(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()["statements"]]


def test_put_then_get_by_id(api: TestClient, lrs: LrsClient) -> None:
    sid = str(uuid.uuid4())
    r = api.put(URL, params={"statementId": sid}, headers=headers(lrs), content=json.dumps(statement()))
    assert r.status_code == 204 and r.content == b""
    r = get(api, lrs, statementId=sid)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == sid and body["version"] == "1.0.0" and body["stored"] == body["timestamp"]
    assert body["authority"]["account"]["name"] == lrs.key
    assert r.headers["last-modified"] and r.headers["x-experience-api-consistent-through"]


def test_put_conflicts_and_mismatches(api: TestClient, lrs: LrsClient) -> None:
    sid = str(uuid.uuid4())

    def put(body: dict, **params: str) -> Any:
        return api.put(URL, params={"statementId": sid, **params}, headers=headers(lrs), content=json.dumps(body))

    assert put(statement()).status_code == 204
    assert put(statement()).status_code == 204  # the same statement again
    assert put(statement(activity="http://example.com/other")).status_code == 409
    assert put({**statement(), "id": str(uuid.uuid4())}).status_code == 400
    assert api.put(URL, headers=headers(lrs), content=json.dumps(statement())).status_code == 400
    assert put(statement(), agent="x").status_code == 400


def test_post_returns_ids_in_order_and_is_all_or_nothing(api: TestClient, lrs: LrsClient) -> None:
    given = str(uuid.uuid4())
    r = post(api, lrs, [statement(), statement(id=given), statement()])
    assert r.status_code == 200 and len(r.json()) == 3 and r.json()[1] == given
    assert post(api, lrs, statement()).status_code == 200
    dup = str(uuid.uuid4())
    assert post(api, lrs, [statement(id=dup), statement(id=dup)]).status_code == 400
    assert post(api, lrs, [statement(), statement(id=given, activity="http://example.com/b")]).status_code == 409
    assert len(ids_of(get(api, lrs))) == 4  # neither refused batch stored anything


def test_voiding(api: TestClient, lrs: LrsClient) -> None:
    target = post(api, lrs, statement()).json()[0]
    voider = post(api, lrs, statement(verb=VOIDED, object={"objectType": "StatementRef", "id": target})).json()[0]
    assert get(api, lrs, statementId=target).status_code == 404
    assert get(api, lrs, voidedStatementId=target).json()["id"] == target
    assert get(api, lrs, voidedStatementId=voider).status_code == 404
    assert ids_of(get(api, lrs)) == [voider]
    # the voiding statement targets a statement that matches: it is returned by the target's filters
    assert ids_of(get(api, lrs, activity="http://example.com/a")) == [voider]
    again = statement(verb=VOIDED, object={"objectType": "StatementRef", "id": voider})
    assert post(api, lrs, again).status_code == 400


def test_filters(api: TestClient, lrs: LrsClient) -> None:
    registration = str(uuid.uuid4())
    group = {"objectType": "Group", "mbox": "mailto:team@example.com", "member": [agent("bob")]}
    plain = post(api, lrs, statement("ann")).json()[0]
    as_object = post(api, lrs, statement("carl", object=agent("ann"))).json()[0]
    in_group = post(api, lrs, statement(actor=group, verb="http://example.com/liked")).json()[0]
    context = {
        "registration": registration,
        "instructor": agent("ann"),
        "contextActivities": {"parent": [{"id": "http://example.com/course"}]},
    }
    with_context = post(api, lrs, statement("dora", context=context)).json()[0]
    ann = json.dumps(agent("ann"))
    assert ids_of(get(api, lrs, agent=ann)) == [as_object, plain]
    assert ids_of(get(api, lrs, agent=ann, related_agents="true")) == [with_context, as_object, plain]
    assert ids_of(get(api, lrs, agent=json.dumps(agent("bob")), related_agents="true")) == [in_group]
    assert ids_of(get(api, lrs, agent=json.dumps(group))) == [in_group]
    assert ids_of(get(api, lrs, verb="http://example.com/liked")) == [in_group]
    assert ids_of(get(api, lrs, activity="http://example.com/course")) == []
    assert ids_of(get(api, lrs, activity="http://example.com/course", related_activities="true")) == [with_context]
    assert ids_of(get(api, lrs, registration=registration)) == [with_context]
    assert ids_of(get(api, lrs, agent=ann, verb=VERB, activity="http://example.com/a")) == [plain]
    assert ids_of(get(api, lrs, agent=ann, ascending="true")) == [plain, as_object]


def test_since_until_and_limit(api: TestClient, lrs: LrsClient, clock: FixedClock) -> None:
    first = post(api, lrs, statement()).json()[0]
    stored = get(api, lrs, statementId=first).json()["stored"]
    clock.advance(5)
    second = post(api, lrs, statement()).json()[0]
    assert ids_of(get(api, lrs, since=stored)) == [second]  # since is exclusive
    assert ids_of(get(api, lrs, until=stored)) == [first]  # until is inclusive
    assert ids_of(get(api, lrs, limit=1)) == [second]
    assert len(ids_of(get(api, lrs, limit=0))) == 2


def test_more_pages_stay_consistent_while_statements_arrive(api: TestClient, lrs: LrsClient) -> None:
    ids = post(api, lrs, [statement() for _ in range(5)]).json()
    r = get(api, lrs, limit=2, activity="http://example.com/a")
    seen = ids_of(r)
    post(api, lrs, [statement() for _ in range(3)])  # arrive while the client pages
    more = r.json()["more"]
    while more:
        assert more.startswith("/xapi/statements?more=")
        r = api.get(more, headers=lrs.headers)
        seen += ids_of(r)
        more = r.json()["more"]
    assert seen == ids[::-1]
    tampered = api.get(URL + "?more=" + r.request.url.params.get("more", "x") + "x", headers=lrs.headers)
    assert tampered.status_code == 400


def test_formats(api: TestClient, lrs: LrsClient) -> None:
    sid = post(
        api, lrs, statement(object={"id": "http://example.com/a", "definition": {"name": {"en-US": "A", "fr": "A fr"}}})
    ).json()[0]
    ids_form = get(api, lrs, statementId=sid, format="ids").json()
    assert ids_form["object"]["id"] == "http://example.com/a" and "definition" not in ids_form["object"]
    assert ids_form["verb"] == {"id": VERB}
    r = api.get(
        URL, params={"statementId": sid, "format": "canonical"}, headers={**lrs.headers, "Accept-Language": "fr"}
    )
    canonical = r.json()
    assert canonical["verb"]["display"] == {"fr": "vécu"}
    assert get(api, lrs, statementId=sid).json()["verb"]["display"] == {"en-US": "experienced", "fr": "vécu"}
    assert get(api, lrs, statementId=sid, format="full").status_code == 400


def test_bad_parameters_are_400_with_consistent_through(api: TestClient, lrs: LrsClient) -> None:
    for params in (
        {"statementId": str(uuid.uuid4()), "agent": json.dumps(agent("ann"))},
        {"statementId": str(uuid.uuid4()), "voidedStatementId": str(uuid.uuid4())},
        {"colour": "red"},
        {"limit": "-1"},
        {"since": "yesterday"},
        {"agent": '{"name": "no ifi"}'},
        {"ascending": "yes"},
        {"statementId": "not-a-uuid"},
    ):
        r = api.get(URL, params=params, headers=lrs.headers)
        assert r.status_code == 400, params
        assert r.headers["x-experience-api-consistent-through"]
    assert api.get(URL, params={"statementId": str(uuid.uuid4())}, headers=lrs.headers).status_code == 404


def test_head_answers_headers_only(api: TestClient, lrs: LrsClient) -> None:
    post(api, lrs, statement())
    r = api.head(URL, headers=lrs.headers)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["x-experience-api-consistent-through"]


def test_attachments_in_multipart(api: TestClient, lrs: LrsClient) -> None:
    content = b"a certificate"
    sha2 = hashlib.sha256(content).hexdigest()
    attachment = {
        "usageType": "http://example.com/certificate",
        "display": {"en-US": "Certificate"},
        "contentType": "text/plain",
        "length": len(content),
        "sha2": sha2,
    }
    body, content_type = multipart.build_multipart(
        json.dumps(statement(attachments=[attachment])).encode(), [(sha2, multipart.Part("text/plain", content))]
    )
    r = api.post(URL, headers=headers(lrs, **{"Content-Type": content_type}), content=body)
    assert r.status_code == 200, r.text
    sid = r.json()[0]
    # the same statement without its part is refused: the attachment has no fileUrl
    assert post(api, lrs, statement(attachments=[attachment])).status_code == 400
    r = get(api, lrs, statementId=sid, attachments="true")
    assert r.headers["content-type"].startswith("multipart/mixed")
    statements_json, parts = multipart.parse_multipart(r.headers["content-type"], r.content)
    assert json.loads(statements_json)["id"] == sid and parts[sha2].content == content
    assert get(api, lrs, statementId=sid).headers["content-type"].startswith("application/json")


def test_another_tenant_sees_nothing(api: TestClient, lrs: LrsClient, lrs_globex: LrsClient) -> None:
    sid = post(api, lrs, statement()).json()[0]
    assert get(api, lrs_globex, statementId=sid).status_code == 404
    assert ids_of(get(api, lrs_globex)) == []
    # the same id in the other tenant is its own statement, no conflict
    r = api.put(URL, params={"statementId": sid}, headers=headers(lrs_globex), content=json.dumps(statement("zed")))
    assert r.status_code == 204


def test_a_2_0_timestamp_is_stored_in_utc_and_a_1_0_3_one_as_sent(api: TestClient, lrs: LrsClient) -> None:
    """xAPI 2.0 §4.2.7: the LRS converts timestamps to UTC; 1.0.3 returns them as they were sent."""
    sent = "2026-12-03T12:30:00.000+02:00"
    for version, expected in (("2.0.0", "2026-12-03T10:30:00.000Z"), ("1.0.3", sent)):
        r = api.post(
            URL,
            headers=headers(lrs, **{"X-Experience-API-Version": version}),
            content=json.dumps(statement(timestamp=sent)),
        )
        assert r.status_code == 200, r.text
        got = api.get(
            URL, headers={**lrs.headers, "X-Experience-API-Version": version}, params={"statementId": r.json()[0]}
        )
        assert got.json()["timestamp"] == expected, version


DUPLICATED = (
    '{"actor": {"objectType": "Agent", "mbox": "mailto:ann@example.com", "name": "Ann", "name": "Anne"},'
    ' "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},'
    ' "object": {"id": "http://example.com/a"}}'
)


def test_a_2_0_statement_with_a_duplicate_key_is_refused_and_a_1_0_3_one_taken(api: TestClient, lrs: LrsClient) -> None:
    """xAPI 2.0 refuses duplicate keys in a statement (400, nothing stored); 1.0.3 takes it (its suite's rule)."""
    v2 = headers(lrs, **{"X-Experience-API-Version": "2.0.0"})
    for body, path in (
        (DUPLICATED, "statement.actor.name"),
        (f"[{statement_text()}, {DUPLICATED}]", "statements[1].actor.name"),
    ):
        r = api.post(URL, headers=v2, content=body)
        assert r.status_code == 400, r.text
        assert r.json()["details"]["path"] == path
    sid = str(uuid.uuid4())
    r = api.put(URL, params={"statementId": sid}, headers=v2, content=DUPLICATED)
    assert r.status_code == 400 and "duplicate key" in r.json()["error"]
    assert get(api, lrs).json()["statements"] == []
    r = api.post(URL, headers=headers(lrs), content=DUPLICATED)  # 1.0.3
    assert r.status_code == 200, r.text
    # Keys spelled alike inside strings, and the same key in two objects, are no duplicates.
    text = statement_text(
        **{"result": {"response": '"name": "x", "name": "y"', "extensions": {"http://e/k": {"name": 1}}}}
    )
    assert api.post(URL, headers=v2, content=text).status_code == 200


def statement_text(**extra: Any) -> str:
    return json.dumps(statement(**extra))


def test_duplicate_slashes_in_the_path_are_one(api: TestClient, lrs: LrsClient) -> None:
    """An endpoint configured as `…/xapi/` makes some AU libraries ask for `/xapi//statements`."""
    r = api.post("/xapi//statements", headers=headers(lrs), content=json.dumps(statement()))
    assert r.status_code == 200, r.text
    got = api.get("/xapi//statements", headers=lrs.headers, params={"statementId": r.json()[0]})
    assert got.status_code == 200 and got.json()["id"] == r.json()[0]
    state = {"activityId": "http://example.com/a", "agent": json.dumps(agent("ann")), "stateId": "s"}
    assert api.put("/xapi//activities//state", headers=headers(lrs), params=state, content=b"{}").status_code == 204
    assert api.get("/xapi/activities/state", headers=lrs.headers, params=state).json() == {}
