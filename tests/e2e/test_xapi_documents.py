"""xAPI documents against a real `serve` process, with clients racing: writers holding the same ETag
(exactly one wins, the others get 412), creators racing with If-None-Match: * (one 204), and POST merges
arriving at once (none is lost). The check and the write are one transaction, so no race slips between."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.e2e.conftest import ServerProcess

VERSION = {"X-Experience-API-Version": "1.0.3"}
PROFILE = {"activityId": "http://example.org/course/1", "profileId": "settings"}
STATE = {
    "activityId": "http://example.org/course/1",
    "agent": json.dumps({"mbox": "mailto:a@example.org"}),
    "stateId": "s",
}
RACERS = 8


def credential(server: ServerProcess) -> tuple[str, str]:
    server.cli("tenants", "create", "Racers")
    cred = server.cli("lrs-credentials", "create", "--tenant", "Racers")
    return cred["key"], cred["secret"]


def race(server: ServerProcess, auth: tuple[str, str], send: Any) -> list[httpx.Response]:
    """Run `send(client, i)` for each racer at once, each on its own connection."""

    def one(i: int) -> httpx.Response:
        with server.client(auth=auth, headers=VERSION) as client:
            return send(client, i)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_racing_writers(server: ServerProcess) -> None:
    auth = credential(server)
    json_type = {"Content-Type": "application/json"}
    created = race(
        server,
        auth,
        lambda c, i: c.put(
            "/xapi/activities/profile",
            params=PROFILE,
            content=json.dumps({"by": i}),
            headers={**json_type, "If-None-Match": "*"},
        ),
    )
    assert sorted(r.status_code for r in created) == [204] + [412] * (RACERS - 1)
    with server.client(auth=auth, headers=VERSION) as client:
        first = client.get("/xapi/activities/profile", params=PROFILE)
    winner = created.index(next(r for r in created if r.status_code == 204))
    assert first.json() == {"by": winner}

    replaced = race(
        server,
        auth,
        lambda c, i: c.put(
            "/xapi/activities/profile",
            params=PROFILE,
            content=json.dumps({"replaced_by": i}),
            headers={**json_type, "If-Match": first.headers["etag"]},
        ),
    )
    assert sorted(r.status_code for r in replaced) == [204] + [412] * (RACERS - 1)
    with server.client(auth=auth, headers=VERSION) as client:
        final = client.get("/xapi/activities/profile", params=PROFILE).json()
    assert final == {"replaced_by": next(i for i, r in enumerate(replaced) if r.status_code == 204)}

    merged = race(
        server,
        auth,
        lambda c, i: c.post(
            "/xapi/activities/state", params=STATE, content=json.dumps({f"k{i}": i}), headers=json_type
        ),
    )
    assert [r.status_code for r in merged] == [204] * RACERS
    with server.client(auth=auth, headers=VERSION) as client:
        state = client.get("/xapi/activities/state", params=STATE).json()
    assert state == {f"k{i}": i for i in range(RACERS)}
