"""The orphaned-files sweep on both stores: leftovers made the way a crash leaves them are removed after
the grace period and not before, what a live upload or a pending job names is never removed, the
quota matches the store exactly afterwards, and two workers sweeping at once do not trip each other.

Each store is the real one: a temporary data directory, or a bucket of moto's S3 server (through the
app, with boto3). The crashes are made by doing the steps before the crash and not the ones after.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import build_scheduler
from appliance.instance import Instance
from appliance.services.delivery import jobs
from appliance.services.library import packages
from appliance.services.library.package_files import upload_path
from appliance.services.library.package_sweep import SWEEP_SECONDS, Swept, sweep_orphan_files
from appliance.services.tenancy.tenants import get_tenant
from appliance.services.tenancy.usage import get_usage
from tests.conftest import TenantKey
from tests.faces.api.test_packages import API, build_zip, drain, make_client, manifest_12, upload_raw
from tests.moto_s3 import MotoS3
from tests.services.library.test_files_on_s3 import s3_settings

GRACE = 86_400.0


@pytest.fixture(params=["local", "s3"])
def store_config(request: pytest.FixtureRequest, config: Config) -> Config:
    if request.param == "local":
        return config
    server: MotoS3 = request.getfixturevalue("moto_s3")
    return config.with_overrides(s3_settings(server, request.getfixturevalue("s3_bucket")))


@pytest.fixture
def api(store_config: Config) -> Iterator[TestClient]:
    with make_client(store_config) as client:
        yield client


def course(name: str, filler: int = 0) -> bytes:
    return build_zip(
        {
            "imsmanifest.xml": manifest_12(name),
            "index.html": f"<html><body>{name}</body></html>".encode(),
            "filler.bin": os.urandom(filler),
        }
    )


def files_of(inst: Instance, tenant_id: str) -> dict[str, int]:
    """Every package file and upload the store holds for the tenant, with its size."""
    return {f.path: f.size for folder in ("uploads", "packages") for f in inst.files.list(tenant_id, folder)}


def package_bytes(inst: Instance, tenant_id: str) -> int:
    return int(get_usage(inst, get_tenant(inst, tenant_id))["package_bytes"])


def later(config: Config, seconds: float = GRACE + 120) -> Instance:
    """An instance whose clock is `seconds` ahead of the wall clock (every file is that much older)."""
    return Instance(config, clock=FixedClock(time.time() + seconds))


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 64 * 1024):
        yield data[start : start + 64 * 1024]


def crash_after_upload(inst: Instance, tenant_id: str, data: bytes) -> str:
    """An upload received in full whose version was never recorded: the process died in create_version.

    Into an object store the body is at its own key once received; on the data directory the ZIP was
    moved to uploads/ inside the transaction that never committed. Returns the leftover's path."""
    tenant = get_tenant(inst, tenant_id)
    staged = asyncio.run(packages.receive(inst, tenant, _body(data), "application/zip", len(data)))
    if staged.stored is not None:
        return staged.stored.path
    assert staged.path is not None
    target = upload_path(inst, tenant_id, "pkg_ghost", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.path, target)
    return "uploads/pkg_ghost-1.zip"


def make_leftovers(api: TestClient, acme: TenantKey, config: Config) -> dict[str, Any]:
    """A tenant with every kind of leftover next to live files of each kind; returns what is which."""
    kept = upload_raw(api, acme, course("kept", 3000)).json()["id"]
    row_gone = upload_raw(api, acme, course("row gone", 5000)).json()["id"]
    failed = upload_raw(api, acme, course("failed", 7000)).json()["id"]
    drain(api)
    queued = upload_raw(api, acme, course("queued", 11000)).json()["id"]  # its job waits: a live upload
    lost = upload_raw(api, acme, course("lost job", 13000)).json()["id"]  # its job lost: still live
    inst = Instance(config)
    try:
        t = acme.tenant_id
        live_files = files_of(inst, t)
        # delete_package commits the rows, then removes the files: killed in between.
        inst.tenant_db(t).write_sync(lambda c: c.execute("DELETE FROM packages WHERE id = ?", (row_gone,)))
        # _mark_failed commits `failed`, then removes the folder: killed in between.
        inst.tenant_db(t).write_sync(
            lambda c: c.execute(
                "UPDATE package_versions SET status = 'failed', size_bytes = 0 WHERE package_id = ?", (failed,)
            )
        )
        # create_version commits the version, then enqueues its job: killed in between.
        [lost_job] = [j for j in jobs.list_jobs(inst.registry, "queued") if j["payload"].count(lost)]
        inst.registry.write_sync(lambda c: c.execute("DELETE FROM jobs WHERE id = ?", (lost_job["id"],)))
        ghost = crash_after_upload(inst, t, course("never recorded", 17000))
        orphans = {
            path: size
            for path, size in files_of(inst, t).items()
            if path == ghost or path.startswith((f"packages/{row_gone}/", f"packages/{failed}/"))
        }
        live = {path: size for path, size in live_files.items() if path not in orphans}
        assert len([p for p in live if p.startswith("uploads/")]) == 2  # queued's and lost's
        assert any(p.startswith(f"packages/{kept}/1/") for p in live)
        assert len([p for p in orphans if p.startswith("packages/")]) == 6 and ghost in orphans
        return {"orphans": orphans, "live": live, "ghost": ghost, "queued": queued, "lost": lost, "kept": kept}
    finally:
        inst.close()


def test_crash_leftovers_go_after_the_grace_period_and_not_before(
    api: TestClient, acme: TenantKey, store_config: Config
) -> None:
    made = make_leftovers(api, acme, store_config)
    t = acme.tenant_id
    now = Instance(store_config)
    try:
        before = files_of(now, t)
        # The leftovers count toward nothing: the store holds more than the tenant's usage says.
        assert sum(before.values()) == package_bytes(now, t) + sum(made["orphans"].values())
        assert sweep_orphan_files(now).removed == []  # younger than the grace period: all kept
        assert files_of(now, t) == before
    finally:
        now.close()
    almost = later(store_config, GRACE - 600)
    try:
        assert sweep_orphan_files(almost).removed == []
    finally:
        almost.close()

    inst = later(store_config)
    try:
        swept = sweep_orphan_files(inst)
        assert sorted(swept.removed) == sorted(
            {made["ghost"], *{"/".join(p.split("/")[:3]) for p in made["orphans"] if p.startswith("packages/")}}
        )
        assert (swept.files, swept.bytes) == (len(made["orphans"]), sum(made["orphans"].values()))
        after = files_of(inst, t)
        assert after == made["live"]  # the ready version's files and both live uploads, untouched
        assert sum(after.values()) == package_bytes(inst, t)  # the quota and the store agree exactly
        assert sweep_orphan_files(inst).removed == []  # nothing more on a second run
    finally:
        inst.close()
    recovering = Instance(store_config)  # on the wall clock, so the job it enqueues is due now
    try:
        assert packages.recover_processing(recovering) == 1  # the lost job's version, from its kept upload
    finally:
        recovering.close()
    drain(api)
    for pkg in (made["queued"], made["lost"], made["kept"]):
        assert api.get(f"{API}/{pkg}", headers=acme.headers).json()["status"] == "ready"
    final = Instance(store_config)
    try:
        assert not [p for p in files_of(final, t) if p.startswith("uploads/")]
        assert sum(files_of(final, t).values()) == package_bytes(final, t)
    finally:
        final.close()


def test_two_workers_sweeping_at_once_remove_each_leftover_without_errors(
    api: TestClient, acme: TenantKey, store_config: Config
) -> None:
    made = make_leftovers(api, acme, store_config)
    workers = [later(store_config), later(store_config)]
    start = threading.Barrier(len(workers))
    results: list[Swept] = []
    errors: list[BaseException] = []

    def run(inst: Instance) -> None:
        start.wait()
        try:
            results.append(sweep_orphan_files(inst))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(inst,)) for inst in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(results) == 2
        orphan_names = {made["ghost"], *{"/".join(p.split("/")[:3]) for p in made["orphans"] if "packages/" in p}}
        assert {path for swept in results for path in swept.removed} == orphan_names  # every one, by someone
        for swept in results:  # neither removed anything else, nor anything twice itself
            assert len(swept.removed) == len(set(swept.removed))
            assert swept.bytes <= sum(made["orphans"].values())
        assert files_of(workers[0], acme.tenant_id) == made["live"]
        assert sum(made["live"].values()) == package_bytes(workers[0], acme.tenant_id)
    finally:
        for inst in workers:
            inst.close()


def test_a_job_given_up_after_its_version_was_marked_ready_keeps_the_files(
    api: TestClient, acme: TenantKey, store_config: Config
) -> None:
    pkg = upload_raw(api, acme, course("ready, then lost", 2000)).json()["id"]
    drain(api)
    inst = Instance(store_config)
    try:
        kept = files_of(inst, acme.tenant_id)
        assert kept and all(p.startswith(f"packages/{pkg}/1/") for p in kept)
        # Its worker was lost after `_mark_ready` committed, and that was the last attempt: given up.
        job = jobs.Job("job_x", packages.PROCESS_JOB, acme.tenant_id, {**_payload(acme, pkg)}, 6, 5)
        packages.give_up_processing(inst, job, "the worker running attempt 5 was lost")
        assert files_of(inst, acme.tenant_id) == kept
        assert sum(kept.values()) == package_bytes(inst, acme.tenant_id)
    finally:
        inst.close()
    assert api.get(f"{API}/{pkg}", headers=acme.headers).json()["status"] == "ready"


def _payload(acme: TenantKey, pkg: str) -> dict[str, Any]:
    return {"tenant_id": acme.tenant_id, "package_id": pkg, "version": 1, "key": f"{acme.tenant_id}/{pkg}/1"}


def test_every_worker_runs_the_sweep_hourly(store_config: Config) -> None:
    inst = Instance(store_config)
    try:
        [sweep] = [p for p in build_scheduler(inst).periodic if p.name == "orphan-files"]
        assert (sweep.interval, sweep.run) == (SWEEP_SECONDS, sweep_orphan_files)
        assert SWEEP_SECONDS == 3600.0 and store_config.orphan_files_grace_seconds == GRACE
    finally:
        inst.close()
    with pytest.raises(ValueError, match="at least 3600"):
        store_config.with_overrides({"orphan_files_grace_seconds": "60"})
