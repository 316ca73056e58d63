"""What the LRS holds counts toward the tenant's storage usage, and an LRS credential's write over the
quota is refused with 403 QUOTA_EXCEEDED (nothing stored), as an upload is."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from litestar.testing import TestClient

from appliance.config import Config
from appliance.core.xapi import multipart
from appliance.instance import Instance
from appliance.services.lrs import quota
from appliance.services.tenancy.tenants import set_quotas
from appliance.storage.sqlite.connection import rows
from tests.conftest import TenantKey
from tests.faces.api.xapi.conftest import LrsClient
from tests.faces.api.xapi.test_statements import URL, get, headers, post, statement

STATE = "/xapi/activities/state"


def usage(api: TestClient, acme: TenantKey) -> dict[str, Any]:
    r = api.get("/api/v1/usage", headers=acme.headers)
    assert r.status_code == 200, r.text
    return r.json()


def set_limit(config: Config, tenant_id: str, limit: int | None) -> None:
    inst = Instance(config)
    try:
        set_quotas(inst, tenant_id, storage_bytes=limit)
    finally:
        inst.close()
    quota._used.clear()  # the LRS's reading of usage is kept two seconds: the test moves on at once


def stored_bodies(config: Config, tenant_id: str) -> int:
    inst = Instance(config)
    try:
        found = inst.tenant_db(tenant_id).read_sync(
            lambda c: rows(
                c,
                "SELECT (SELECT coalesce(sum(octet_length(body)), 0) FROM xapi_statements) "
                "+ (SELECT coalesce(sum(length), 0) FROM xapi_attachments) "
                "+ (SELECT coalesce(sum(octet_length(content)), 0) FROM xapi_documents) AS n",
            )
        )
    finally:
        inst.close()
    return int(found[0]["n"])


def state_params(state_id: str = "bookmark") -> dict[str, str]:
    agent = {"objectType": "Agent", "mbox": "mailto:ann@example.com"}
    return {"activityId": "http://example.com/a", "agent": json.dumps(agent), "stateId": state_id}


def test_statements_attachments_and_documents_count_as_stored_bytes(
    api: TestClient, config: Config, acme: TenantKey, lrs: LrsClient
) -> None:
    assert usage(api, acme)["session_bytes"] == 0
    assert post(api, lrs, [statement(), statement("bob")]).status_code == 200
    content = b"a certificate" * 100
    att = {
        "usageType": "http://example.com/certificate",
        "display": {"en-US": "certificate"},
        "contentType": "text/plain",
        "length": len(content),
        "sha2": hashlib.sha256(content).hexdigest(),
    }
    body, content_type = multipart.build_multipart(
        json.dumps(statement(attachments=[att])).encode(), [(att["sha2"], multipart.Part("text/plain", content))]
    )
    r = api.post(URL, headers={**lrs.headers, "Content-Type": content_type}, content=body)
    assert r.status_code == 200, r.text
    assert api.put(STATE, headers=headers(lrs), params=state_params(), content=b'{"page": 1}').status_code == 204
    assert api.put(STATE, headers=headers(lrs), params=state_params("other"), content=b"x" * 500).status_code == 204
    assert usage(api, acme)["session_bytes"] == stored_bodies(config, acme.tenant_id) > len(content) + 500
    # A document replaced and one deleted: the count follows.
    assert api.put(STATE, headers=headers(lrs), params=state_params(), content=b"{}").status_code == 204
    assert api.delete(STATE, headers=lrs.headers, params=state_params("other")).status_code == 204
    after = usage(api, acme)
    assert after["session_bytes"] == stored_bodies(config, acme.tenant_id)
    assert after["storage_bytes"] == after["package_bytes"] + after["session_bytes"]


def test_a_write_over_the_quota_is_403_quota_exceeded_and_stores_nothing(
    api: TestClient, config: Config, acme: TenantKey, lrs: LrsClient
) -> None:
    assert post(api, lrs, [statement()]).status_code == 200
    used = usage(api, acme)["storage_bytes"]
    set_limit(config, acme.tenant_id, used + 300)
    big = [statement(f"learner{n}") for n in range(20)]
    r = post(api, lrs, big)
    assert r.status_code == 403, r.text
    answer = r.json()
    assert answer["code"] == "QUOTA_EXCEEDED"
    assert (answer["details"]["used_bytes"], answer["details"]["limit_bytes"]) == (used, used + 300)
    assert r.headers["X-Experience-API-Version"] == "1.0.3"
    r = api.put(STATE, headers=headers(lrs), params=state_params(), content=b"x" * 400)
    assert r.status_code == 403 and r.json()["code"] == "QUOTA_EXCEEDED"
    assert usage(api, acme)["storage_bytes"] == used
    assert len(get(api, lrs).json()["statements"]) == 1
    inst = Instance(config)
    try:
        events = inst.tenant_db(acme.tenant_id).read_sync(
            lambda c: rows(c, "SELECT type FROM events WHERE type LIKE 'quota.%'")
        )
    finally:
        inst.close()
    assert [e["type"] for e in events] == ["quota.exceeded"]  # once per crossing, not per refusal
    # Under the quota again (raised): taken.
    set_limit(config, acme.tenant_id, used + 100_000)
    assert post(api, lrs, big).status_code == 200
    assert api.put(STATE, headers=headers(lrs), params=state_params(), content=b"x" * 400).status_code == 204


def test_an_unlimited_tenant_reads_no_usage(api: TestClient, config: Config, acme: TenantKey, lrs: LrsClient) -> None:
    """Enterprise tenants (no quota) pay nothing for the check: usage is never read for their writes."""
    set_limit(config, acme.tenant_id, None)
    assert post(api, lrs, [statement()]).status_code == 200
    assert acme.tenant_id not in quota._used
