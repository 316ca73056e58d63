"""The document resources over the real app: State, Activity Profile, Agent Profile — parameters,
ETags and Last-Modified, each version's concurrency rules, merges, content types, listing with
`since`, deletes, the alternate syntax, and tenant isolation."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from tests.faces.api.xapi.conftest import LrsClient

AGENT = {"objectType": "Agent", "account": {"homePage": "http://www.example.com/agentId/1", "name": "Rick James"}}
ACTIVITY = "http://www.example.com/activityId/hashset"
STATE = "/xapi/activities/state"
ACTIVITY_PROFILE = "/xapi/activities/profile"
AGENT_PROFILE = "/xapi/agents/profile"


def state(state_id: str = "s1", **extra: str) -> dict[str, str]:
    return {"activityId": ACTIVITY, "agent": json.dumps(AGENT), "stateId": state_id, **extra}


def headers(lrs: LrsClient, version: str = "1.0.3", **extra: str) -> dict[str, str]:
    return {**lrs.headers, "X-Experience-API-Version": version, **extra}


def put_json(api: TestClient, lrs: LrsClient, path: str, params: dict, doc: object, **hdrs: str):
    return api.put(
        path,
        params=params,
        content=json.dumps(doc),
        headers={**headers(lrs, **hdrs), "Content-Type": "application/json"},
    )


def post_json(
    api: TestClient, lrs: LrsClient, path: str, params: dict, doc: object, version: str = "1.0.3", **hdrs: str
):
    return api.post(
        path,
        params=params,
        content=json.dumps(doc),
        headers={**headers(lrs, version, **hdrs), "Content-Type": "application/json"},
    )


def test_state_put_get_with_etag_and_last_modified(api: TestClient, lrs: LrsClient, clock: FixedClock) -> None:
    body = b'{"bookmark": "page 3"}'
    r = api.put(STATE, params=state(), content=body, headers={**lrs.headers, "Content-Type": "application/json"})
    assert r.status_code == 204 and r.content == b""
    r = api.get(STATE, params=state(), headers=lrs.headers)
    assert r.status_code == 200 and r.content == body
    assert r.headers["content-type"] == "application/json"
    assert r.headers["etag"] == f'"{hashlib.sha1(body).hexdigest()}"'
    assert parsedate_to_datetime(r.headers["last-modified"]).timestamp() == int(clock.now())
    head = api.head(STATE, params=state(), headers=lrs.headers)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == r.headers["etag"]
    # a non-JSON document keeps its bytes and content type
    raw = bytes(range(256))
    r = api.put(STATE, params=state("bin"), content=raw, headers={**lrs.headers, "Content-Type": "image/x-test"})
    assert r.status_code == 204
    r = api.get(STATE, params=state("bin"), headers=lrs.headers)
    assert r.content == raw and r.headers["content-type"] == "image/x-test"
    assert api.get(STATE, params=state("nope"), headers=lrs.headers).status_code == 404


def test_last_modified_moves_with_updates(api: TestClient, lrs: LrsClient, clock: FixedClock) -> None:
    post_json(api, lrs, STATE, state(), {"a": 1})
    first = api.get(STATE, params=state(), headers=lrs.headers).headers["last-modified"]
    clock.advance(2)
    post_json(api, lrs, STATE, state(), {"b": 2})
    second = api.get(STATE, params=state(), headers=lrs.headers).headers["last-modified"]
    assert parsedate_to_datetime(second) > parsedate_to_datetime(first)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"activityId": None}, "activityId missing"),
        ({"agent": None}, "agent missing"),
        ({"agent": "not JSON"}, "agent not JSON"),
        ({"agent": "true"}, "agent not an object"),
        ({"agent": json.dumps({"objectType": "Agent", "name": "no IFI"})}, "agent without IFI"),
        ({"agent": json.dumps({"mbox": "mailto:a@example.com", "openid": "http://a.example.com"})}, "two IFIs"),
        ({"agent": json.dumps({"mbox": "a@example.com"})}, "mbox without mailto"),
        ({"registration": "true"}, "registration not a UUID"),
        ({"stateid": "x"}, "a parameter with another case"),
        ({"foo": "bar"}, "an unknown parameter"),
        ({"activityId": "not an iri"}, "activityId not an IRI"),
        ({"agent": json.dumps({"objectType": "Group", "mbox": "mailto:g@example.com"})}, "a Group"),
    ],
)
def test_state_parameters_are_checked(api: TestClient, lrs: LrsClient, change: dict, why: str) -> None:
    params = state()
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    for method in ("GET", "PUT", "POST", "DELETE"):
        content = b"{}" if method in ("PUT", "POST") else None
        r = api.request(
            method, STATE, params=params, content=content, headers={**lrs.headers, "Content-Type": "application/json"}
        )
        assert r.status_code == 400, (why, method, r.text)
    assert api.get(STATE, params=state(), headers=lrs.headers).status_code == 404  # nothing was stored


def test_the_agent_is_matched_by_its_identifier(api: TestClient, lrs: LrsClient) -> None:
    named = {**state(), "agent": json.dumps({"name": "A", "mbox": "mailto:a@example.com"})}
    assert post_json(api, lrs, STATE, named, {"x": 1}).status_code == 204
    bare = {**state(), "agent": json.dumps({"objectType": "Agent", "mbox": "mailto:a@example.com"})}
    assert api.get(STATE, params=bare, headers=lrs.headers).json() == {"x": 1}
    other = {**state(), "agent": json.dumps({"mbox": "mailto:b@example.com"})}
    assert api.get(STATE, params=other, headers=lrs.headers).status_code == 404


def test_state_id_is_required_to_write(api: TestClient, lrs: LrsClient) -> None:
    params = state()
    del params["stateId"]
    assert put_json(api, lrs, STATE, params, {}).status_code == 400
    assert post_json(api, lrs, STATE, params, {}).status_code == 400
    r = api.get(STATE, params={**state(), "since": "not a timestamp"}, headers=lrs.headers)
    assert r.status_code == 400


def test_post_merges_json_objects_one_level_deep(api: TestClient, lrs: LrsClient) -> None:
    first = {"car": {"make": "Ford", "model": "Escape"}, "driver": "Dale", "keep": 1}
    second = {"car": {"make": "Dodge"}, "driver": "Jeff"}
    assert post_json(api, lrs, STATE, state(), first).status_code == 204  # no document: stored as sent
    assert post_json(api, lrs, STATE, state(), second).status_code == 204
    r = api.get(STATE, params=state(), headers=lrs.headers)
    assert r.json() == {"car": {"make": "Dodge"}, "driver": "Jeff", "keep": 1}
    assert r.headers["content-type"] == "application/json"


def test_post_refuses_what_cannot_merge(api: TestClient, lrs: LrsClient) -> None:
    doc = {"name": "kept"}
    post_json(api, lrs, STATE, state(), doc)
    # a non-JSON post over a JSON document
    r = api.post(STATE, params=state(), content=b"abcdefg", headers={**lrs.headers, "Content-Type": "not/json"})
    assert r.status_code == 400
    # malformed JSON, and JSON that is not an object
    for bad in (b'{"a": 1}{', b"[1, 2]", b'"text"'):
        r = api.post(STATE, params=state(), content=bad, headers={**lrs.headers, "Content-Type": "application/json"})
        assert r.status_code == 400, bad
    assert api.get(STATE, params=state(), headers=lrs.headers).json() == doc
    # a JSON post over a non-JSON document
    api.put(
        STATE,
        params=state("raw"),
        content=b"/ asdf / undefined",
        headers={**lrs.headers, "Content-Type": "application/octet-stream"},
    )
    assert post_json(api, lrs, STATE, state("raw"), {"a": 1}).status_code == 400
    assert api.get(STATE, params=state("raw"), headers=lrs.headers).content == b"/ asdf / undefined"
    # malformed JSON where there is no document yet
    r = api.post(STATE, params=state("new"), content=b"{", headers={**lrs.headers, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert api.get(STATE, params=state("new"), headers=lrs.headers).status_code == 404


def test_state_ids_with_since_and_registrations(api: TestClient, lrs: LrsClient, clock: FixedClock) -> None:
    reg = "6690E6C9-3EF0-4ED3-8B37-7F3964730BEE"
    post_json(api, lrs, STATE, state("old"), {})
    clock.advance(60)
    since = clock.now() - 1
    post_json(api, lrs, STATE, state("new"), {})
    post_json(api, lrs, STATE, state("in-reg", registration=reg), {})
    listing = {"activityId": ACTIVITY, "agent": json.dumps(AGENT)}
    r = api.get(STATE, params=listing, headers=lrs.headers)
    assert r.status_code == 200 and sorted(r.json()) == ["in-reg", "new", "old"]
    assert "last-modified" in r.headers
    iso = datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")
    assert sorted(api.get(STATE, params={**listing, "since": iso}, headers=lrs.headers).json()) == ["in-reg", "new"]
    assert api.get(STATE, params={**listing, "registration": reg.lower()}, headers=lrs.headers).json() == ["in-reg"]
    # the registration is part of the key, whatever its case
    assert api.get(STATE, params=state("in-reg", registration=reg.lower()), headers=lrs.headers).status_code == 200
    assert api.get(STATE, params=state("in-reg"), headers=lrs.headers).status_code == 404
    # another agent or activity sees none of them
    other = {"activityId": ACTIVITY, "agent": json.dumps({"mbox": "mailto:other@example.com"})}
    assert api.get(STATE, params=other, headers=lrs.headers).json() == []


def test_state_delete_one_and_all(api: TestClient, lrs: LrsClient) -> None:
    for sid in ("a", "b"):
        post_json(api, lrs, STATE, state(sid), {"x": sid})
    other_activity = {**state("c"), "activityId": ACTIVITY + "/other"}
    post_json(api, lrs, STATE, other_activity, {})
    assert api.delete(STATE, params=state("a"), headers=lrs.headers).status_code == 204
    assert api.get(STATE, params=state("a"), headers=lrs.headers).status_code == 404
    everything = {"activityId": ACTIVITY, "agent": json.dumps(AGENT)}
    assert api.delete(STATE, params=everything, headers=lrs.headers).status_code == 204
    assert api.get(STATE, params=everything, headers=lrs.headers).json() == []
    assert api.get(STATE, params=other_activity, headers=lrs.headers).status_code == 200


def profile(profile_id: str = "p1") -> dict[str, str]:
    return {"activityId": ACTIVITY, "profileId": profile_id}


def agent_profile(profile_id: str = "p1") -> dict[str, str]:
    return {"agent": json.dumps(AGENT), "profileId": profile_id}


@pytest.mark.parametrize(("path", "make"), [(ACTIVITY_PROFILE, profile), (AGENT_PROFILE, agent_profile)])
def test_profile_concurrency_1_0_3(api: TestClient, lrs: LrsClient, path: str, make) -> None:
    params = make()
    # 1.0.3: a PUT with neither header is refused, even for a new document
    assert put_json(api, lrs, path, params, {"v": 0}).status_code == 400
    assert put_json(api, lrs, path, params, {"v": 1}, **{"If-None-Match": "*"}).status_code == 204
    assert put_json(api, lrs, path, params, {"v": 2}, **{"If-None-Match": "*"}).status_code == 412
    r = put_json(api, lrs, path, params, {"v": 2})
    assert r.status_code == 409 and r.json()["error"]
    etag = api.get(path, params=params, headers=lrs.headers).headers["etag"]
    bad = '"1111111111111111111111111111111111111111"'
    assert put_json(api, lrs, path, params, {"v": 3}, **{"If-Match": bad}).status_code == 412
    assert api.get(path, params=params, headers=lrs.headers).json() == {"v": 1}
    assert put_json(api, lrs, path, params, {"v": 4}, **{"If-Match": etag}).status_code == 204
    assert put_json(api, lrs, path, params, {"v": 5}, **{"If-Match": "*"}).status_code == 204
    assert api.get(path, params=params, headers=lrs.headers).json() == {"v": 5}
    # POST and DELETE honour If-Match too
    assert post_json(api, lrs, path, params, {"w": 1}, **{"If-Match": bad}).status_code == 412
    assert api.delete(path, params=params, headers={**lrs.headers, "If-Match": bad}).status_code == 412
    assert api.get(path, params=params, headers=lrs.headers).json() == {"v": 5}
    etag = api.get(path, params=params, headers=lrs.headers).headers["etag"]
    assert api.delete(path, params=params, headers={**lrs.headers, "If-Match": etag}).status_code == 204
    assert api.get(path, params=params, headers=lrs.headers).status_code == 404
    # the profile id is required to write and to delete
    del params["profileId"]
    assert post_json(api, lrs, path, params, {}).status_code == 400
    assert api.delete(path, params=params, headers=lrs.headers).status_code == 400


@pytest.mark.parametrize(("path", "make"), [(ACTIVITY_PROFILE, profile), (AGENT_PROFILE, agent_profile)])
def test_profile_concurrency_2_0(api: TestClient, lrs: LrsClient, path: str, make) -> None:
    params = make()
    v2 = "2.0.0"
    assert put_json(api, lrs, path, params, {"v": 1}, **{"X-Experience-API-Version": v2}).status_code == 204
    r = put_json(api, lrs, path, params, {"v": 2}, **{"X-Experience-API-Version": v2})
    assert r.status_code == 409 and r.content
    got = api.get(path, params=params, headers=headers(lrs, v2))
    assert got.json() == {"v": 1}
    assert post_json(api, lrs, path, params, {"w": 1}, v2, **{"If-Match": '"1234"'}).status_code == 412
    assert post_json(api, lrs, path, params, {"w": 1}, v2, **{"If-Match": got.headers["etag"]}).status_code == 204
    assert api.get(path, params=params, headers=headers(lrs, v2)).json() == {"v": 1, "w": 1}
    assert post_json(api, lrs, path, params, {"x": 1}, v2).status_code == 204  # POST needs no header


@pytest.mark.parametrize("version", ["1.0.3", "2.0.0"])
def test_state_concurrency(api: TestClient, lrs: LrsClient, version: str) -> None:
    """1.0.3 exempts State from needing a header (content like Storyline's PUTs its state over and over
    without one); 2.0 asks for one over an existing state (409). Both honour the headers sent."""
    v = {"X-Experience-API-Version": version}
    assert put_json(api, lrs, STATE, state(), {"v": 1}, **v).status_code == 204
    if version == "2.0.0":
        refused = put_json(api, lrs, STATE, state(), {"v": 2}, **v)
        assert refused.status_code == 409 and b"If-Match" in refused.content
        etag = api.get(STATE, params=state(), headers=headers(lrs, version)).headers["etag"]
        assert put_json(api, lrs, STATE, state(), {"v": 2}, **v, **{"If-Match": etag}).status_code == 204
    else:
        assert put_json(api, lrs, STATE, state(), {"v": 2}, **v).status_code == 204
    assert api.get(STATE, params=state(), headers=headers(lrs, version)).json() == {"v": 2}
    assert put_json(api, lrs, STATE, state(), {"v": 3}, **v, **{"If-Match": '"1234"'}).status_code == 412
    assert put_json(api, lrs, STATE, state(), {"v": 3}, **v, **{"If-None-Match": "*"}).status_code == 412
    etag = api.get(STATE, params=state(), headers=headers(lrs, version)).headers["etag"]
    assert post_json(api, lrs, STATE, state(), {"w": 1}, version, **{"If-Match": '"1234"'}).status_code == 412
    assert post_json(api, lrs, STATE, state(), {"w": 1}, version, **{"If-Match": etag}).status_code == 204
    assert api.delete(STATE, params=state(), headers={**headers(lrs, version), "If-Match": etag}).status_code == 412
    assert api.get(STATE, params=state(), headers=headers(lrs, version)).json() == {"v": 2, "w": 1}


def test_profile_ids_with_since(api: TestClient, lrs: LrsClient, clock: FixedClock) -> None:
    post_json(api, lrs, ACTIVITY_PROFILE, profile("a"), {})
    clock.advance(10)
    post_json(api, lrs, ACTIVITY_PROFILE, profile("b"), {})
    post_json(api, lrs, AGENT_PROFILE, agent_profile("c"), {})
    r = api.get(ACTIVITY_PROFILE, params={"activityId": ACTIVITY}, headers=lrs.headers)
    assert r.json() == ["a", "b"]
    r = api.get(
        ACTIVITY_PROFILE, params={"activityId": ACTIVITY, "since": "2027-01-15T08:00:05+00:00"}, headers=lrs.headers
    )
    assert r.json() == ["b"]  # the clock starts at 2027-01-15T08:00:00Z
    assert (
        api.get(ACTIVITY_PROFILE, params={"activityId": ACTIVITY, "since": "true"}, headers=lrs.headers).status_code
        == 400
    )
    assert api.get(AGENT_PROFILE, params={"agent": json.dumps(AGENT)}, headers=lrs.headers).json() == ["c"]
    assert api.get(AGENT_PROFILE, params={"profileId": "c"}, headers=lrs.headers).status_code == 400


def test_the_alternate_syntax_writes_documents(api: TestClient, lrs: LrsClient) -> None:
    form = {
        "Authorization": lrs.basic,
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
        "If-None-Match": "*",
        "content": '{"via": "form"}',
        **agent_profile(),
    }
    r = api.post(
        f"{AGENT_PROFILE}?method=PUT",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 204, r.text
    r = api.get(AGENT_PROFILE, params=agent_profile(), headers=lrs.headers)
    assert r.json() == {"via": "form"} and r.headers["content-type"] == "application/json"


def test_documents_are_per_tenant(api: TestClient, lrs: LrsClient, lrs_globex: LrsClient) -> None:
    post_json(api, lrs, STATE, state(), {"tenant": "acme"})
    assert api.get(STATE, params=state(), headers=lrs_globex.headers).status_code == 404
    listing = {"activityId": ACTIVITY, "agent": json.dumps(AGENT)}
    assert api.get(STATE, params=listing, headers=lrs_globex.headers).json() == []
    assert api.delete(STATE, params=listing, headers=lrs_globex.headers).status_code == 204
    assert api.get(STATE, params=state(), headers=lrs.headers).json() == {"tenant": "acme"}
