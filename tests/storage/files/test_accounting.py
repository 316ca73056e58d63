"""The stores' byte counts are the quota's: a package processed by the appliance today, measured by
the local store over the same data directory and by the object store after a publish."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.storage.files.base import Deleted
from appliance.storage.files.local import LocalFileStore
from appliance.storage.files.publish import publish_folder
from appliance.storage.files.s3 import S3FileStore
from tests.conftest import TenantKey
from tests.faces.api.test_packages import build_zip, make_client, manifest_12, upload_ready

FILES = {
    "imsmanifest.xml": manifest_12("Counted"),
    "index.html": b"<html>counted</html>",
    "css/site.css": b"body { color: #333 }" * 50,
    "media/photo.jpg": random.Random(3).randbytes(300_000),
}


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def test_the_stores_count_what_the_usage_report_counts(
    api: TestClient, acme: TenantKey, config: Config, s3_store: S3FileStore, tmp_path: Path
) -> None:
    package = upload_ready(api, acme, build_zip(FILES))
    usage = api.get("/api/v1/usage", headers=acme.headers).json()
    assert usage["package_bytes"] == sum(len(data) for data in FILES.values())

    local = LocalFileStore(config.data_dir)
    stored = list(local.list(acme.tenant_id, "packages"))
    assert len(stored) == len(FILES)
    assert sum(f.size for f in stored) == usage["package_bytes"]

    copy = tmp_path / "copy"
    shutil.copytree(config.data_dir / "tenants" / acme.tenant_id / "packages" / package["id"] / "1", copy)
    published = publish_folder(s3_store, acme.tenant_id, f"packages/{package['id']}/1", copy)
    assert published.bytes == usage["package_bytes"]
    assert s3_store.delete_folder(acme.tenant_id, f"packages/{package['id']}") == Deleted(
        len(FILES), usage["package_bytes"]
    )
