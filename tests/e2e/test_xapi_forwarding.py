"""Forwarding between two real appliances: tenant A on instance 1 forwards its statements to tenant B's
LRS on instance 2 (another `serve` process on another 127.0.0.1 port), in order, across an outage of
instance 2, and the delivery log shows the failed attempts and the deliveries that followed."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from appliance.services.lrs.forwarding import encode_body
from tests.e2e.conftest import ServerProcess

VERSION = {"X-Experience-API-Version": "1.0.3"}
WAIT_SECONDS = 30.0


def statement(n: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{n}@example.org", "name": f"Learner {n}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": f"https://courses.example.org/course/{n}"},
        "result": {"completion": True},
    }


def post_statements(server: ServerProcess, cred: dict[str, Any], batch: list[dict[str, Any]]) -> None:
    with server.client() as client:
        response = client.post("/xapi/statements", json=batch, auth=(cred["key"], cred["secret"]), headers=VERSION)
    assert response.status_code == 200, response.text
    assert response.json() == [s["id"] for s in batch]


def post_with_attachment(server: ServerProcess, cred: dict[str, Any], content: bytes) -> dict[str, Any]:
    """A statement with its attachment's content in `multipart/mixed`, as xAPI clients send it."""
    sha2 = hashlib.sha256(content).hexdigest()
    attached = {
        **statement(99),
        "attachments": [
            {
                "usageType": "http://id.tincanapi.com/attachment/certificate-of-completion",
                "display": {"en-US": "certificate"},
                "contentType": "text/plain",
                "length": len(content),
                "sha2": sha2,
            }
        ],
    }
    body, content_type = encode_body([attached], [(sha2, "text/plain", content)])
    with server.client() as client:
        response = client.post(
            "/xapi/statements",
            content=body,
            auth=(cred["key"], cred["secret"]),
            headers={**VERSION, "Content-Type": content_type},
        )
    assert response.status_code == 200, response.text
    return attached


def stored_ids(server: ServerProcess, cred: dict[str, Any]) -> list[str]:
    """Every statement id in the LRS, in the order it stored them (following `more`)."""
    ids: list[str] = []
    with server.client() as client:
        url = "/xapi/statements?ascending=true&limit=50"
        while url:
            response = client.get(url, auth=(cred["key"], cred["secret"]), headers=VERSION)
            assert response.status_code == 200, response.text
            page = response.json()
            ids += [s["id"] for s in page["statements"]]
            more = page.get("more") or ""
            url = more[more.index("/xapi/") :] if more else ""
    return ids


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def test_statements_reach_another_appliance_in_order_across_its_outage(
    start_server: Callable[..., ServerProcess],
) -> None:
    receiver = start_server()
    sender = start_server(
        env={
            "SCORM_APPLIANCE_OUTBOUND_ALLOW": "127.0.0.1/32",  # the receiver is on loopback
            "SCORM_APPLIANCE_XAPI_FORWARD_MAX_RETRY_SECONDS": "3",  # retries stay close together in a test
        }
    )
    receiver.cli("tenants", "create", "Tenant B")
    b_cred = receiver.cli("lrs-credentials", "create", "--tenant", "Tenant B", "--name", "from instance 1")
    sender.cli("tenants", "create", "Tenant A")
    a_key = sender.cli("keys", "create", "--tenant", "Tenant A")["key"]
    a_cred = sender.cli("lrs-credentials", "create", "--tenant", "Tenant A", "--scope", "write")
    admin = {"Authorization": f"Bearer {a_key}"}

    with sender.client(headers=admin) as api:
        response = api.post(
            "/api/v1/xapi/forwarding",
            json={
                "endpoint": f"{receiver.url}/xapi/",
                "username": b_cred["key"],
                "password": b_cred["secret"],
                "name": "Tenant B on instance 2",
            },
        )
    assert response.status_code == 201, response.text
    target = response.json()

    def show() -> dict[str, Any]:
        with sender.client(headers=admin) as api:
            return api.get(f"/api/v1/xapi/forwarding/{target['id']}").json()

    def log() -> list[dict[str, Any]]:
        with sender.client(headers=admin) as api:
            return api.get(f"/api/v1/xapi/forwarding/{target['id']}/log", params={"limit": 500}).json()["data"]

    # Statements posted to instance 1 arrive at instance 2, in the order instance 1 stored them.
    first = [statement(n) for n in range(30)]
    post_statements(sender, a_cred, first[:10])
    post_statements(sender, a_cred, first[10:])
    certificate = b"certificate of completion for learner 99"
    first.append(post_with_attachment(sender, a_cred, certificate))
    wait_for(lambda: stored_ids(receiver, b_cred) == [s["id"] for s in first], "the first statements at instance 2")
    with receiver.client() as client:  # the attachment's content travelled with its statement
        attached = client.get(
            "/xapi/statements",
            params={"statementId": first[-1]["id"], "attachments": "true"},
            auth=(b_cred["key"], b_cred["secret"]),
            headers=VERSION,
        )
    assert attached.status_code == 200 and attached.headers["content-type"].startswith("multipart/mixed")
    assert certificate in attached.content

    # Instance 2 goes away; what is posted meanwhile waits in instance 1 and is retried with backoff.
    receiver.stop()
    later = [statement(n) for n in range(30, 45)]
    for n in range(0, len(later), 5):
        post_statements(sender, a_cred, later[n : n + 5])
    failures = wait_for(lambda: len([e for e in log() if e["outcome"] == "failed"]) >= 3 and log(), "failed attempts")
    failed = [e for e in failures if e["outcome"] == "failed"]
    assert all(e["error"] == "could not connect to the endpoint" and e["status_code"] is None for e in failed)
    assert [e["attempt"] for e in reversed(failed)][:3] == [1, 2, 3]
    state = show()
    assert state["status"] == "retrying" and state["pending_statements"] == len(later)
    assert state["next_retry_at"] is not None and state["failing_since"] is not None

    # It comes back on the same port: everything arrives, once, in order.
    receiver.start()
    everything = [s["id"] for s in first + later]
    wait_for(lambda: stored_ids(receiver, b_cred) == everything, "every statement at instance 2 after its outage")
    state = wait_for(lambda: (s := show())["pending_statements"] == 0 and s["status"] == "active" and s, "caught up")
    assert state["forwarded_count"] == len(everything) and state["rejected_count"] == 0
    entries = log()
    delivered_after = [e for e in entries if e["outcome"] == "delivered" and e["attempt"] > 1]
    assert delivered_after, "the delivery that ended the outage says which attempt it was"
    newest_failure = max(e["first_seq"] for e in entries if e["outcome"] == "failed")
    assert [i for e in reversed(entries) if e["outcome"] == "delivered" for i in e["statement_ids"]] == everything
    assert delivered_after[-1]["first_seq"] == newest_failure  # the failed batch is the one delivered then

    # The statements at instance 2 carry tenant B's authority (its credential), not instance 1's.
    with receiver.client() as client:
        one = client.get(
            "/xapi/statements",
            params={"statementId": everything[0]},
            auth=(b_cred["key"], b_cred["secret"]),
            headers=VERSION,
        )
    assert one.status_code == 200, one.text
    assert one.json()["authority"]["account"]["name"] == b_cred["key"]
    assert one.json()["result"] == {"completion": True}


def test_tenant_a_cannot_reach_another_tenants_forwarding_or_credentials(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    server.cli("tenants", "create", "A")
    server.cli("tenants", "create", "B")
    key_a = server.cli("keys", "create", "--tenant", "A")["key"]
    b_cred = server.cli("lrs-credentials", "create", "--tenant", "B")
    b_target = server.cli("lrs-forwarding", "create", "--tenant", "B", "--endpoint", "https://lrs.example.org/xapi/")
    with server.client(headers={"Authorization": f"Bearer {key_a}"}) as api:
        for path in (f"/api/v1/xapi/credentials/{b_cred['id']}", f"/api/v1/xapi/forwarding/{b_target['id']}"):
            assert api.get(path).status_code == 404
            assert api.delete(path).status_code == 404
        assert api.get("/api/v1/xapi/credentials").json()["data"] == []
        assert api.get("/api/v1/xapi/forwarding").json()["data"] == []
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        assert (
            client.get("/xapi/statements", auth=(b_cred["key"], b_cred["secret"]), headers=VERSION).status_code == 200
        )
