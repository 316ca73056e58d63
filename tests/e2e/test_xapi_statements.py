"""xAPI statements against a real `serve` process: batches posted from several connections at once
(every batch stored whole, the ids in order, none lost), a reader paging with `more` while they
arrive (its pages hold exactly the statements stored before its first page, newest first, each once),
and a voiding that races nothing: the voided statement leaves every query at once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.e2e.conftest import ServerProcess

HEADERS = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
ACTIVITY = "http://example.org/course/1"
WRITERS = 6
BATCHES = 5
BATCH = 20


def statement(writer: int, n: int) -> dict[str, Any]:
    return {
        "actor": {"mbox": f"mailto:w{writer}@example.org"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"id": ACTIVITY},
        "result": {"extensions": {"http://example.org/n": n}},
    }


def credential(server: ServerProcess) -> tuple[str, str]:
    server.cli("tenants", "create", "Writers")
    cred = server.cli("lrs-credentials", "create", "--tenant", "Writers")
    return cred["key"], cred["secret"]


def test_batches_from_many_connections_while_a_reader_pages(server: ServerProcess) -> None:
    auth = credential(server)
    with server.client(auth=auth, headers=HEADERS) as client:
        before = client.post("/xapi/statements", content=json.dumps([statement(99, n) for n in range(30)]))
        assert before.status_code == 200
        first = client.get("/xapi/statements", params={"activity": ACTIVITY, "limit": 7})
        assert first.headers["x-experience-api-consistent-through"]
    stored: list[list[str]] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        with server.client(auth=auth, headers=HEADERS) as client:
            for b in range(BATCHES):
                batch = [statement(writer, b * BATCH + n) for n in range(BATCH)]
                r = client.post("/xapi/statements", content=json.dumps(batch))
                assert r.status_code == 200, r.text
                with lock:
                    stored.append(r.json())

    seen = [s["id"] for s in first.json()["statements"]]
    with ThreadPoolExecutor(WRITERS) as pool:
        writers = [pool.submit(write, w) for w in range(WRITERS)]
        with server.client(auth=auth, headers=HEADERS) as reader:
            more = first.json()["more"]
            while more:
                page = reader.get(more)
                assert page.status_code == 200
                seen += [s["id"] for s in page.json()["statements"]]
                more = page.json()["more"]
        for w in writers:
            w.result()
    assert seen == before.json()[::-1]  # exactly what was there at the first page, newest first
    assert len(stored) == WRITERS * BATCHES and all(len(ids) == BATCH for ids in stored)
    with server.client(auth=auth, headers=HEADERS) as client:
        everything: list[str] = []
        page = client.get("/xapi/statements", params={"ascending": "true"}).json()
        everything += [s["id"] for s in page["statements"]]
        while page["more"]:
            page = client.get(page["more"]).json()
            everything += [s["id"] for s in page["statements"]]
        assert len(everything) == len(set(everything)) == 30 + WRITERS * BATCHES * BATCH
        for ids in stored:  # each batch's statements were stored together, in its order
            positions = [everything.index(i) for i in ids]
            assert positions == list(range(positions[0], positions[0] + BATCH))
        target = stored[0][0]
        voiding = {
            "actor": {"mbox": "mailto:admin@example.org"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"},
            "object": {"objectType": "StatementRef", "id": target},
        }
        assert client.post("/xapi/statements", content=json.dumps(voiding)).status_code == 200
        assert client.get("/xapi/statements", params={"statementId": target}).status_code == 404
        assert client.get("/xapi/statements", params={"voidedStatementId": target}).json()["id"] == target
        head = client.head("/xapi/statements", params={"agent": json.dumps({"mbox": "mailto:w0@example.org"})})
        assert head.status_code == 200 and head.content == b"" and head.headers["last-modified"]


def test_an_endpoint_with_its_trailing_slash_doubled_reaches_the_resources(server: ServerProcess) -> None:
    """`…/xapi/` + `/statements` (some AU libraries join them so): the real server's path, runs of slashes as one."""
    auth = credential(server)
    with server.client(auth=auth, headers=HEADERS) as client:
        r = client.post("/xapi//statements", content=json.dumps(statement(1, 1)))
        assert r.status_code == 200, r.text
        got = client.get("/xapi//statements", params={"statementId": r.json()[0]})
        assert got.status_code == 200 and got.json()["id"] == r.json()[0]
        params = {"activityId": ACTIVITY, "agent": json.dumps({"mbox": "mailto:w1@example.org"}), "stateId": "s"}
        assert client.put("/xapi//activities//state", params=params, content=b"{}").status_code == 204
        assert client.get("/xapi/activities/state", params=params).json() == {}
