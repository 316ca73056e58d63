"""Packages with `files = "s3://…"`: the whole way through the real app against moto's S3 server.

Upload (streamed into the bucket, in parts past 8 MiB), processing (fetched, extracted with every
guard, published), the player's content (Range, ETag, 304, 416; signed redirects for large media),
deletes of a package, a failed version and a tenant, and the quota: every step is checked against
what the bucket holds, listed with boto3, and nothing of it touches the data directory's packages.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from appliance.config import Config, load_config
from appliance.instance import Instance
from appliance.services.library import packages
from appliance.services.operations.backup import backup
from appliance.services.operations.backup_format import BackupError
from appliance.services.operations.doctor import run_doctor
from appliance.services.tenancy.tenants import delete_tenant, get_tenant, set_quotas
from appliance.services.tenancy.usage import get_usage
from tests.conftest import TenantKey
from tests.faces.api.test_packages import API, broken_package, build_zip, drain, make_client, manifest_12, upload_raw
from tests.faces.api.test_sessions import create, player_path
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3

PREFIX = "deploy"
MEDIA = os.urandom(9 * 1024 * 1024)  # incompressible: the upload is over one 8 MiB part


def s3_settings(server: MotoS3, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "files": f"s3://{bucket}/{PREFIX}",
        "files_endpoint": server.endpoint_url,
        "files_region": REGION,
        "files_access_key_id": ACCESS_KEY_ID,
        "files_secret_access_key": SECRET_ACCESS_KEY,
        **extra,
    }


@pytest.fixture
def s3_config(config: Config, moto_s3: MotoS3, s3_bucket: str) -> Config:
    return config.with_overrides(s3_settings(moto_s3, s3_bucket))


@pytest.fixture
def api(s3_config: Config) -> Iterator[TestClient]:
    with make_client(s3_config) as client:
        yield client


def course() -> bytes:
    return build_zip(
        {
            "imsmanifest.xml": manifest_12("On S3"),
            "index.html": b"<html><body>hello from the bucket</body></html>",
            "media/clip.mp4": MEDIA,
        }
    )


def objects(server: MotoS3, bucket: str, tenant_id: str, folder: str = "") -> dict[str, int]:
    """Every object of the tenant (its key after the tenant's prefix) with its size."""
    base = f"{PREFIX}/tenants/{tenant_id}/"
    found: dict[str, int] = {}
    for page in server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + folder):
        found.update({item["Key"][len(base) :]: int(item["Size"]) for item in page.get("Contents", [])})
    return found


def unfinished_uploads(server: MotoS3, bucket: str) -> list[str]:
    return [u["Key"] for u in server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def package_bytes(config: Config, tenant_id: str) -> int:
    inst = Instance(config)
    try:
        return int(get_usage(inst, get_tenant(inst, tenant_id))["package_bytes"])
    finally:
        inst.close()


def local_package_files(config: Config, tenant_id: str) -> list[Path]:
    tenant_dir = config.data_dir / "tenants" / tenant_id
    return [p for folder in ("packages", "uploads") for p in (tenant_dir / folder).rglob("*") if p.is_file()]


def test_upload_processing_content_delete_and_quota_on_s3(
    api: TestClient,
    acme: TenantKey,
    s3_config: Config,
    moto_s3: MotoS3,
    s3_bucket: str,
) -> None:
    created = upload_raw(api, acme, course())
    assert created.status_code == 202, created.text
    pkg = created.json()["id"]
    [waiting] = objects(moto_s3, s3_bucket, acme.tenant_id, "uploads/")
    assert waiting.startswith("uploads/incoming-")  # in the bucket before its job ran
    drain(api)
    package = api.get(f"{API}/{pkg}", headers=acme.headers).json()
    assert package["status"] == "ready", package
    stored = objects(moto_s3, s3_bucket, acme.tenant_id)
    assert stored == {
        f"packages/{pkg}/1/imsmanifest.xml": stored[f"packages/{pkg}/1/imsmanifest.xml"],
        f"packages/{pkg}/1/index.html": 47,
        f"packages/{pkg}/1/media/clip.mp4": len(MEDIA),
    }  # the ZIP is gone once extracted
    assert package["size_bytes"] == sum(stored.values()) == package_bytes(s3_config, acme.tenant_id)
    assert local_package_files(s3_config, acme.tenant_id) == []

    path = player_path(create(api, acme, pkg).json())
    page = api.get(f"{path}/content/index.html")
    assert (page.status_code, page.content) == (200, b"<html><body>hello from the bucket</body></html>")
    assert page.headers["accept-ranges"] == "bytes"
    etag = page.headers["etag"]
    assert api.get(f"{path}/content/index.html", headers={"If-None-Match": etag}).status_code == 304
    ranged = api.get(f"{path}/content/media/clip.mp4", headers={"Range": "bytes=1000-1999"})
    assert (ranged.status_code, ranged.content) == (206, MEDIA[1000:2000])
    assert ranged.headers["content-range"] == f"bytes 1000-1999/{len(MEDIA)}"
    tail = api.get(f"{path}/content/media/clip.mp4", headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, MEDIA[-10:])
    refused = api.get(f"{path}/content/index.html", headers={"Range": "bytes=900-"})
    assert (refused.status_code, refused.headers["content-range"]) == (416, "bytes */47")
    assert refused.json()["code"] == "VALIDATION_ERROR"
    for escape in ("../2/index.html", "missing.html", "media", "%2e%2e/x"):
        assert api.get(f"{path}/content/{escape}").status_code == 404

    assert api.delete(f"{API}/{pkg}", headers=acme.headers).status_code == 204
    assert objects(moto_s3, s3_bucket, acme.tenant_id) == {}
    assert package_bytes(s3_config, acme.tenant_id) == 0
    assert unfinished_uploads(moto_s3, s3_bucket) == []


def test_refused_and_failed_uploads_leave_nothing_in_the_bucket(
    api: TestClient,
    acme: TenantKey,
    s3_config: Config,
    moto_s3: MotoS3,
    s3_bucket: str,
) -> None:
    not_a_zip = upload_raw(api, acme, b"this is no zip" * 1000)
    assert (not_a_zip.status_code, not_a_zip.json()["code"]) == (422, "INVALID_PACKAGE")
    failed = upload_raw(api, acme, broken_package())
    assert failed.status_code == 202
    drain(api)
    version = api.get(f"{API}/{failed.json()['id']}/versions/1", headers=acme.headers).json()
    assert (version["status"], version["error"]["code"]) == ("failed", "MANIFEST_INVALID")
    inst = Instance(s3_config)
    try:
        set_quotas(inst, acme.tenant_id, storage_bytes=len(MEDIA) // 2)
    finally:
        inst.close()
    declared = upload_raw(api, acme, course())  # refused on its Content-Length, before a byte is read
    assert (declared.status_code, declared.json()["code"]) == (403, "QUOTA_EXCEEDED")
    data = course()
    chunks = (data[i : i + 1024 * 1024] for i in range(0, len(data), 1024 * 1024))  # no length: streamed
    headers = {**acme.headers, "Content-Type": "application/zip"}
    over = api.post(API, content=chunks, headers=headers)  # stopped while it streams, as it outgrows the quota
    assert (over.status_code, over.json()["code"]) == (403, "QUOTA_EXCEEDED")
    assert objects(moto_s3, s3_bucket, acme.tenant_id) == {}
    assert unfinished_uploads(moto_s3, s3_bucket) == []
    assert package_bytes(s3_config, acme.tenant_id) == 0


def test_signed_redirects_for_large_media(
    config: Config,
    acme: TenantKey,
    moto_s3: MotoS3,
    s3_bucket: str,
) -> None:
    redirecting = config.with_overrides(
        s3_settings(moto_s3, s3_bucket, files_serve="redirect", files_redirect_min_bytes=1024)
    )
    with make_client(redirecting) as api:
        created = upload_raw(api, acme, course())
        drain(api)
        path = player_path(create(api, acme, created.json()["id"]).json())
        page = api.get(f"{path}/content/index.html")  # pages are always streamed
        assert page.status_code == 200
        media = api.get(f"{path}/content/media/clip.mp4", follow_redirects=False)
        assert media.status_code == 302
        assert media.headers["cache-control"] == "no-store"
        signed = media.headers["location"]
        assert signed.startswith(moto_s3.endpoint_url) and "X-Amz-Signature=" in signed
        fetched = httpx.get(signed, headers={"Range": "bytes=0-99"}, trust_env=False)
        assert (fetched.status_code, fetched.content) == (206, MEDIA[:100])


def test_a_deleted_tenant_leaves_no_objects(
    api: TestClient,
    acme: TenantKey,
    s3_config: Config,
    moto_s3: MotoS3,
    s3_bucket: str,
) -> None:
    upload_raw(api, acme, course())
    drain(api)
    upload_raw(api, acme, course())  # one still waiting for its job
    assert len(objects(moto_s3, s3_bucket, acme.tenant_id)) == 4
    inst = Instance(s3_config)
    try:
        delete_tenant(inst, acme.tenant_id)
    finally:
        inst.close()
    assert objects(moto_s3, s3_bucket, acme.tenant_id) == {}


def test_backup_refuses_an_object_store(
    s3_config: Config,
    acme: TenantKey,
    tmp_path: Path,
    moto_s3: MotoS3,
    s3_bucket: str,
) -> None:
    (s3_config.data_dir / "settings.toml").write_text(
        "".join(f'{k} = "{v}"\n' for k, v in s3_settings(moto_s3, s3_bucket).items())
    )
    assert load_config({"data_dir": str(s3_config.data_dir)}).files.startswith("s3://")
    with pytest.raises(BackupError, match="object store") as refused:
        backup(s3_config.data_dir, tmp_path / "backup")
    assert refused.value.details == {"files": f"s3://{s3_bucket}/{PREFIX}"}
    assert not (tmp_path / "backup").exists()


def test_local_files_with_s3_options_stop_the_start(config: Config) -> None:
    with pytest.raises(ValueError, match="only apply to an s3:// URL"):
        load_config({"data_dir": str(config.data_dir)}, {"SCORM_APPLIANCE_FILES_SERVE": "redirect"})
    with pytest.raises(ValueError, match="files_serve must be one of"):
        Instance(dataclasses.replace(config, files="s3://bucket-x", files_serve="sideways"))


def test_a_version_whose_job_was_lost_is_recovered_from_its_upload_in_the_bucket(
    api: TestClient, acme: TenantKey, s3_config: Config, moto_s3: MotoS3, s3_bucket: str
) -> None:
    created = upload_raw(api, acme, course())
    inst = Instance(s3_config)
    try:
        # As if the process died between committing the version and enqueuing its job.
        inst.registry.write_sync(lambda c: c.execute("DELETE FROM jobs"))
        assert packages.recover_processing(inst) == 1
    finally:
        inst.close()
    drain(api)
    assert api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()["status"] == "ready"
    assert not [key for key in objects(moto_s3, s3_bucket, acme.tenant_id) if key.startswith("uploads/")]


def test_validate_reads_an_upload_received_into_the_bucket_and_keeps_nothing(
    api: TestClient, acme: TenantKey, moto_s3: MotoS3, s3_bucket: str
) -> None:
    checked = upload_raw(api, acme, course(), path=f"{API}/validate")
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    assert checked.json()["size_bytes"] > len(MEDIA)
    assert objects(moto_s3, s3_bucket, acme.tenant_id) == {}


def test_doctor_leaves_package_files_in_an_object_store_to_the_store(
    api: TestClient, acme: TenantKey, s3_config: Config
) -> None:
    upload_raw(api, acme, course())
    drain(api)
    findings = [f for f in run_doctor(s3_config) if f.check == "packages"]
    assert [(f.severity, "object store" in f.message) for f in findings] == [("ok", True)]
