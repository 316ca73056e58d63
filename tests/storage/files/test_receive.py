"""Uploads received straight into a store: what `appliance.services.library.upload` accepts and refuses, on both stores."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.errors import PayloadTooLarge, QuotaExceeded, ValidationFailed
from appliance.services.library.upload import receive_upload
from appliance.storage.files.base import FileMissing, FileStore
from appliance.storage.files.receive import receive_into_store
from appliance.storage.files.s3 import S3FileStore
from tests.storage.files.test_stores import TEN_A, MiB, chunks_of, pattern

BOUNDARY = "xYzZY"
FORM = f"multipart/form-data; boundary={BOUNDARY}"


def form(data: bytes, title: str = "My course") -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="course.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def body(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for chunk in chunks_of(data, size):
        yield chunk


async def test_a_raw_body_over_8_mib(store: FileStore) -> None:
    data = pattern(9 * MiB + 17, seed=6)
    got = await receive_into_store(body(data), "application/zip", store, TEN_A, "uploads/pkg_1-1.zip", 64 * MiB)
    assert (got.stored.size, got.stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (got.filename, got.fields) == (None, {})
    assert store.read_bytes(TEN_A, "uploads/pkg_1-1.zip") == data


async def test_a_form_upload_gives_what_the_staged_reception_gives(store: FileStore, tmp_path: Path) -> None:
    data = pattern(3 * MiB + 5, seed=7)
    got = await receive_into_store(body(form(data), 7000), FORM, store, TEN_A, "uploads/pkg_1-1.zip", 64 * MiB)
    staged = await receive_upload(body(form(data), 7000), FORM, tmp_path, 64 * MiB)
    assert (got.stored.size, got.stored.sha256, got.filename, got.fields) == (
        staged.size,
        staged.sha256,
        staged.filename,
        staged.fields,
    )
    assert got.fields == {"title": "My course"} and got.filename == "course.zip"
    assert store.read_bytes(TEN_A, "uploads/pkg_1-1.zip") == data


async def broken(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in body(data):
        yield chunk
    raise ConnectionResetError("client gone")


@pytest.mark.parametrize(
    ("make_body", "content_type", "error"),
    [
        (lambda: body(b""), "application/zip", ValidationFailed),
        (lambda: body(pattern(12 * MiB)), "application/zip", PayloadTooLarge),
        (lambda: broken(pattern(9 * MiB)), "application/zip", ConnectionResetError),
        (lambda: body(form(b"")[:40]), FORM, ValidationFailed),
        (lambda: body(b"--nope\r\n\r\n"), "multipart/form-data", ValidationFailed),
    ],
    ids=["empty", "too-large", "client-gone", "form-without-file", "no-boundary"],
)
async def test_a_refused_upload_leaves_nothing(
    store: FileStore, make_body: object, content_type: str, error: type
) -> None:
    with pytest.raises(error):
        await receive_into_store(make_body(), content_type, store, TEN_A, "uploads/pkg_1-1.zip", 10 * MiB)  # type: ignore[operator]
    with pytest.raises(FileMissing):
        store.stat(TEN_A, "uploads/pkg_1-1.zip")
    assert list(store.list(TEN_A)) == []


async def test_the_quota_check_sees_every_chunk(store: FileStore) -> None:
    def check(size: int) -> None:
        if size > 2 * MiB:
            raise QuotaExceeded("storage quota exceeded", {"requested_bytes": size})

    with pytest.raises(QuotaExceeded) as caught:
        await receive_into_store(
            body(pattern(5 * MiB)), "application/zip", store, TEN_A, "u.zip", 64 * MiB, check_size=check
        )
    assert caught.value.details["requested_bytes"] == 2 * MiB + 256 * 1024
    assert list(store.list(TEN_A)) == []


async def test_s3_parts_go_up_while_the_body_is_still_arriving(s3_store: S3FileStore) -> None:
    seen_open_uploads: list[int] = []

    async def watched() -> AsyncIterator[bytes]:
        for n, chunk in enumerate(chunks_of(pattern(20 * MiB), 1 * MiB)):
            if n == 12:  # 12 MiB sent: the first 8 MiB part must already be in the store
                uploads = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", [])
                parts = s3_store.client.list_parts(
                    Bucket=s3_store.bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
                )
                seen_open_uploads.append(len(parts.get("Parts", [])))
            yield chunk

    got = await receive_into_store(watched(), "application/zip", s3_store, TEN_A, "uploads/big.zip", 64 * MiB)
    assert seen_open_uploads == [1]
    assert got.stored.etag.endswith('-3"') and got.stored.size == 20 * MiB
    assert s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []
