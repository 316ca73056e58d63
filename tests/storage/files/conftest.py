"""The file-store fixtures: every shared test runs against the data directory and a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.storage.files.base import FileStore
from appliance.storage.files.config import LocalFilesConfig, S3FilesConfig, open_file_store
from appliance.storage.files.s3 import S3FileStore
from tests.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3, moto_s3, s3_bucket  # noqa: F401 (fixtures)


def s3_config(server: MotoS3, bucket: str, prefix: str = "deployment/", **extra: object) -> S3FilesConfig:
    """A config on the test server, as `files = "s3://bucket/deployment"` with its settings would give."""
    return S3FilesConfig(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=server.endpoint_url,
        region=REGION,
        addressing_style="path",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileStore]:
    """A LocalFileStore on a fresh data directory, or an S3FileStore on a fresh bucket of moto's server."""
    if request.param == "local":
        yield open_file_store(LocalFilesConfig(root=tmp_path / "data"))
        return
    server: MotoS3 = request.getfixturevalue("moto_s3")
    yield open_file_store(s3_config(server, request.getfixturevalue("s3_bucket")))


@pytest.fixture
def s3_store(moto_s3: MotoS3, s3_bucket: str) -> S3FileStore:  # noqa: F811 (the fixtures above, by name)
    """An S3FileStore alone, for what only an object store has (multipart uploads, presigned URLs)."""
    store = open_file_store(s3_config(moto_s3, s3_bucket))
    assert isinstance(store, S3FileStore)
    return store
