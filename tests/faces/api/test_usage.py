"""GET /usage, API request counting (batched, persisted), and storage quota events."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.clock import FixedClock, rfc3339
from appliance.config import Config
from appliance.faces.cli import cli
from appliance.instance import Instance
from appliance.services.tenancy.ratelimit import RequestCounter
from appliance.services.tenancy.usage import period_start
from appliance.storage.sqlite.connection import rows
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import (
    API,
    assert_error,
    build_zip,
    manifest_12,
    set_storage_limit,
    stored_files,
    tmp_files,
    upload_raw,
    upload_ready,
)
from tests.faces.api.test_webhooks import LOOPBACK_ALLOW, create_hook, pump
from tests.services.delivery.test_webhooks import Receiver

USAGE = "/api/v1/usage"


@pytest.fixture
def config(config: Config) -> Config:
    """The quota events' webhook receiver listens on 127.0.0.1: the outbound allow-list admits it."""
    return dataclasses.replace(config, outbound_allow=LOOPBACK_ALLOW)


def stored_count(config: Config, tenant_id: str) -> int:
    """API requests written to the tenant's database (what survives a crash)."""
    inst = Instance(config)
    try:
        found = inst.tenant_db(tenant_id).read_sync(lambda c: rows(c, "SELECT api_requests FROM usage_periods"))
    finally:
        inst.close()
    return sum(r["api_requests"] for r in found)


def quota_events(config: Config, tenant_id: str) -> list[dict[str, Any]]:
    inst = Instance(config)
    try:
        found = inst.tenant_db(tenant_id).read_sync(
            lambda c: rows(c, "SELECT type, data FROM events WHERE type LIKE 'quota.%' ORDER BY seq")
        )
    finally:
        inst.close()
    return [{"type": r["type"], **json.loads(r["data"])} for r in found]


def package(size: int, title: str = "Course") -> bytes:
    """A package whose one file is `size` incompressible bytes, so stored sizes are predictable."""
    return build_zip({"imsmanifest.xml": manifest_12(title), "index.html": os.urandom(size)})


# -- GET /usage and request counting ---------------------------------------------------------------------


def test_usage_reports_storage_requests_and_limits(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    ready = upload_ready(api, acme, package(3000))
    response = api.get(USAGE, headers=acme.headers)
    assert response.status_code == 200, response.text
    usage = response.json()
    assert usage == {
        "tenant_id": acme.tenant_id,
        "storage_bytes": ready["size_bytes"],
        "package_bytes": ready["size_bytes"],
        "session_bytes": 0,
        "api_requests": {"period_start": rfc3339(period_start(clock.now())), "count": 3},  # upload, get, usage
        "limits": {"storage_bytes": 1_000_000_000, "requests_per_minute": 100},
    }


def test_request_counts_are_written_in_batches_and_survive_a_restart(
    config: Config, acme: TenantKey, globex: TenantKey, runner: CliRunner
) -> None:
    clock = FixedClock(float(int(time.time())))  # the CLI reads the real clock's usage period
    with make_api(config, clock) as first:
        for _ in range(7):
            assert first.get("/api/v1/tenant", headers=acme.headers).status_code == 200
        first.get("/api/v1/tenant", headers=globex.headers)
        assert stored_count(config, acme.tenant_id) == 0  # still in memory: one write per batch, not per request
        assert first.get(USAGE, headers=acme.headers).json()["api_requests"]["count"] == 8  # pending included
        pump(first, clock, config.usage_flush_seconds)  # the periodic flush
        assert stored_count(config, acme.tenant_id) == 8
        for _ in range(4):
            first.get("/api/v1/tenant", headers=acme.headers)
    # Stopping the server writes what was pending.
    assert stored_count(config, acme.tenant_id) == 12
    assert stored_count(config, globex.tenant_id) == 1
    with make_api(config, clock) as second:
        assert second.get(USAGE, headers=acme.headers).json()["api_requests"]["count"] == 13
    result = runner.invoke(
        cli, ["usage", "--tenant", acme.tenant_id, "--data-dir", str(config.data_dir), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["api_requests"]["count"] == 13


def test_a_new_period_starts_a_new_count(api: TestClient, acme: TenantKey, clock: FixedClock) -> None:
    api.get("/api/v1/tenant", headers=acme.headers)
    clock.advance(period_start(clock.now()) + 30 * 86_400 - clock.now())
    usage = api.get(USAGE, headers=acme.headers).json()
    assert usage["api_requests"] == {"period_start": rfc3339(clock.now()), "count": 1}


@pytest.mark.sqlite_only(reason="drops a table to make writes fail, which the PostgreSQL application role may not")
def test_the_counter_flushes_every_n_requests_and_keeps_counts_it_could_not_write(
    config: Config, acme: TenantKey
) -> None:
    inst = Instance(config)
    try:
        counter = RequestCounter(flush_every=3)
        now = 1_800_000_000.0
        assert [counter.add(acme.tenant_id, now) for _ in range(3)] == [False, False, True]
        counter.add("ten_deleted", now)  # a tenant without a database: dropped
        assert counter.flush(inst) == 3
        assert counter.pending(acme.tenant_id, period_start(now)) == 0
        assert counter.pending("ten_deleted", period_start(now)) == 0
        db = inst.tenant_db(acme.tenant_id)
        counter.add(acme.tenant_id, now)
        db.write_sync(lambda c: c.execute("DROP TABLE usage_periods"))  # make the next write fail
        assert counter.flush(inst) == 0
        assert counter.pending(acme.tenant_id, period_start(now)) == 1
    finally:
        inst.close()


# -- storage quota -----------------------------------------------------------------------------------------


def test_an_upload_that_would_cross_the_quota_is_refused_and_stores_nothing(
    api: TestClient, config: Config, acme: TenantKey
) -> None:
    first = upload_ready(api, acme, package(4000))
    used = first["size_bytes"]
    set_storage_limit(config, acme.tenant_id, used + 2000)
    before = stored_files(config, acme.tenant_id)
    body = assert_error(upload_raw(api, acme, package(4000, "Too big")), 403, "QUOTA_EXCEEDED")
    assert (body["details"]["used_bytes"], body["details"]["limit_bytes"]) == (used, used + 2000)
    assert_error(upload_raw(api, acme, package(4000), path=f"{API}/{first['id']}/versions"), 403, "QUOTA_EXCEEDED")
    # Nothing stored, existing data untouched.
    assert stored_files(config, acme.tenant_id) == before
    assert tmp_files(config) == []
    assert [p["id"] for p in api.get(API, headers=acme.headers).json()["data"]] == [first["id"]]
    assert api.get(f"{API}/{first['id']}", headers=acme.headers).json()["status"] == "ready"
    assert api.get(USAGE, headers=acme.headers).json()["storage_bytes"] == used
    # One quota.exceeded for the crossing, however many uploads are refused.
    events = quota_events(config, acme.tenant_id)
    assert [e["type"] for e in events] == ["quota.exceeded"]
    assert events[0]["storage_bytes"] == used
    assert events[0]["limit_bytes"] == used + 2000
    assert events[0]["requested_bytes"] > 4000


def test_warning_and_exceeded_fire_once_per_crossing(
    api: TestClient, config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    receiver = Receiver().start()
    try:
        create_hook(api, acme, receiver.url, ["quota.*"])
        a = upload_ready(api, acme, package(6000, "A"))
        size = a["size_bytes"]
        limit = int(size * 2.2)  # one package: 45 %; two: 91 %; three do not fit
        set_storage_limit(config, acme.tenant_id, limit)
        pump(api, clock, 60)
        assert quota_events(config, acme.tenant_id) == []
        b = upload_ready(api, acme, package(6000, "B"))  # crosses 80 %
        assert_error(upload_raw(api, acme, package(6000, "C")), 403, "QUOTA_EXCEEDED")
        assert_error(upload_raw(api, acme, package(6000, "C")), 403, "QUOTA_EXCEEDED")
        pump(api, clock, 60)
        assert [e["type"] for e in quota_events(config, acme.tenant_id)] == ["quota.warning", "quota.exceeded"]
        # Deleting a package goes back under 80 %: the next crossing warns again.
        assert api.delete(f"{API}/{b['id']}", headers=acme.headers).status_code == 204
        upload_ready(api, acme, package(6000, "B again"))
        pump(api, clock, 60)
        events = quota_events(config, acme.tenant_id)
        assert [e["type"] for e in events] == ["quota.warning", "quota.exceeded", "quota.warning"]
        warning = events[0]
        assert warning["limit_bytes"] == limit
        assert warning["percent"] == round(100 * warning["storage_bytes"] / limit, 1) >= 80
        # The events went out to the webhook, in order, with the same data.
        got = [r.event for r in receiver.received]
        assert [e["type"] for e in got] == ["quota.warning", "quota.exceeded", "quota.warning"]
        assert got[0]["data"] == {k: v for k, v in warning.items() if k != "type"}
    finally:
        receiver.stop()


def test_storage_found_over_a_lowered_quota_fires_exceeded_once(
    api: TestClient, config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    ready = upload_ready(api, acme, package(3000))
    set_storage_limit(config, acme.tenant_id, ready["size_bytes"] // 2)  # an administrator lowers the quota
    pump(api, clock, 60)  # the quota sweep notices
    pump(api, clock, 60)
    events = quota_events(config, acme.tenant_id)
    assert [e["type"] for e in events] == ["quota.exceeded"]
    assert events[0]["storage_bytes"] == ready["size_bytes"]
    # Existing data is untouched; only new uploads are refused.
    assert api.get(f"{API}/{ready['id']}", headers=acme.headers).json()["status"] == "ready"
    assert_error(upload_raw(api, acme, package(10)), 403, "QUOTA_EXCEEDED")
    assert len(quota_events(config, acme.tenant_id)) == 1
    set_storage_limit(config, acme.tenant_id, None)  # unlimited: back to ok, silently
    pump(api, clock, 60)
    assert len(quota_events(config, acme.tenant_id)) == 1


def test_a_package_whose_extracted_files_break_the_quota_fires_exceeded(
    api: TestClient, config: Config, acme: TenantKey
) -> None:
    data = build_zip({"imsmanifest.xml": manifest_12(), "index.html": b"compressible " * 10_000})
    set_storage_limit(config, acme.tenant_id, len(data) + 1000)
    created = upload_raw(api, acme, data)
    assert created.status_code == 202
    pump(api, api.app.state.instance.clock, 0)
    assert api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert [e["type"] for e in quota_events(config, acme.tenant_id)] == ["quota.exceeded"]
