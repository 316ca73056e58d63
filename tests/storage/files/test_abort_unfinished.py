"""`abort_unfinished`: the parts of a writer killed mid-body go once they are older than the cut-off,
a writer still receiving is left alone, and another tenant's or folder's uploads are never touched."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from appliance.storage.files.base import FileMissing, FileStore
from appliance.storage.files.s3 import PART_BYTES, S3FileStore
from tests.storage.files.test_s3 import unfinished_uploads
from tests.storage.files.test_stores import TEN_A, TEN_B, MiB, pattern


def started(store: S3FileStore, tenant_id: str, path: str) -> object:
    """A writer past its first part: a multipart upload exists, as while a large body streams in."""
    writer = store.writer(tenant_id, path, max_bytes=64 * MiB)
    writer.write(pattern(PART_BYTES + 10, seed=3))
    return writer


def test_a_writer_still_receiving_is_kept_and_an_old_one_is_aborted(s3_store: S3FileStore) -> None:
    live = started(s3_store, TEN_A, "uploads/incoming-live.zip")
    assert s3_store.abort_unfinished(TEN_A, "uploads", started_before=time.time() - 3600) == 0
    assert unfinished_uploads(s3_store) == [f"deployment/tenants/{TEN_A}/uploads/incoming-live.zip"]
    assert live.commit().size == PART_BYTES + 10  # type: ignore[attr-defined]
    assert s3_store.stat(TEN_A, "uploads/incoming-live.zip").size == PART_BYTES + 10

    stale = started(s3_store, TEN_A, "uploads/incoming-dead.zip")
    other_tenant = started(s3_store, TEN_B, "uploads/incoming-b.zip")
    other_folder = started(s3_store, TEN_A, "packages/pkg_1/1/big.mp4")
    # Seen from a day later, the stale writer's upload is a day old: the writer was killed.
    assert s3_store.abort_unfinished(TEN_A, "uploads", started_before=time.time() + 86_400) == 1
    assert sorted(unfinished_uploads(s3_store)) == [
        f"deployment/tenants/{TEN_A}/packages/pkg_1/1/big.mp4",
        f"deployment/tenants/{TEN_B}/uploads/incoming-b.zip",
    ]
    with pytest.raises(ClientError):
        stale.commit()  # type: ignore[attr-defined]
    with pytest.raises(FileMissing):
        s3_store.stat(TEN_A, "uploads/incoming-dead.zip")
    assert s3_store.abort_unfinished(TEN_A, "uploads", started_before=time.time() + 86_400) == 0  # idempotent
    for writer in (other_tenant, other_folder):
        writer.abort()  # type: ignore[attr-defined]


def test_a_local_store_has_no_unfinished_uploads_to_abort(store: FileStore) -> None:
    assert store.abort_unfinished(TEN_A, "uploads", started_before=time.time() + 86_400) == 0
    with pytest.raises(FileMissing):
        store.abort_unfinished(TEN_A, "../x", started_before=0)
    with pytest.raises(ValueError):
        store.abort_unfinished("../other", "uploads", started_before=0)
