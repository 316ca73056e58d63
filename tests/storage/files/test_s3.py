"""What only the object store has: its key layout, multipart uploads, aborted parts, presigned URLs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from appliance.errors import PayloadTooLarge
from appliance.storage.files import s3 as s3_module
from appliance.storage.files.base import Deleted
from appliance.storage.files.s3 import PART_BYTES, S3FileStore
from tests.storage.files.test_stores import TEN_A, TEN_B, MiB, chunks_of, pattern


def keys(store: S3FileStore) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def unfinished_uploads(store: S3FileStore) -> list[str]:
    return [upload["Key"] for upload in store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])]


def test_keys_are_the_deployment_prefix_then_the_tenant(s3_store: S3FileStore) -> None:
    s3_store.put(TEN_A, "packages/pkg_1/1/index.html", iter([b"<html>"]), max_bytes=100)
    s3_store.put(TEN_B, "uploads/pkg_2-1.zip", iter([b"PK"]), max_bytes=100)
    assert keys(s3_store) == [
        f"deployment/tenants/{TEN_A}/packages/pkg_1/1/index.html",
        f"deployment/tenants/{TEN_B}/uploads/pkg_2-1.zip",
    ]


def test_a_large_upload_goes_up_in_8_mib_parts_while_it_streams(s3_store: S3FileStore) -> None:
    data = pattern(2 * PART_BYTES + 1000, seed=9)
    writer = s3_store.writer(TEN_A, "uploads/big.zip", max_bytes=64 * MiB, content_type="application/zip")
    fed = 0
    for chunk in chunks_of(data, 1 * MiB):
        writer.write(chunk)
        fed += len(chunk)
        if fed == PART_BYTES + 1 * MiB:  # one part full and sent, the next one filling: the upload is open
            assert writer.upload_id is not None
            assert unfinished_uploads(s3_store) == [f"deployment/tenants/{TEN_A}/uploads/big.zip"]
            assert keys(s3_store) == []  # and nothing is visible yet
    stored = writer.commit()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=f"deployment/tenants/{TEN_A}/uploads/big.zip")
    assert head["ETag"] == stored.etag and head["ETag"].endswith('-3"')  # three parts: 8 MiB, 8 MiB, 1000 B
    assert head["ContentLength"] == len(data) and head["ContentType"] == "application/zip"
    assert unfinished_uploads(s3_store) == []


def test_a_small_file_is_one_put(s3_store: S3FileStore) -> None:
    writer = s3_store.writer(TEN_A, "a.css", max_bytes=100, content_type="text/css")
    writer.write(b"body{}")
    stored = writer.commit()
    assert writer.upload_id is None
    assert stored.etag == f'"{hashlib.md5(b"body{}").hexdigest()}"'  # noqa: S324 (S3's own ETag of a PUT)


def test_an_aborted_upload_leaves_no_object_and_no_parts(s3_store: S3FileStore) -> None:
    def broken() -> Iterator[bytes]:
        yield from chunks_of(pattern(PART_BYTES * 2 + 5), 1 * MiB)
        raise ConnectionResetError("client gone")

    with pytest.raises(ConnectionResetError):
        s3_store.put(TEN_A, "uploads/x.zip", broken(), max_bytes=64 * MiB)
    assert keys(s3_store) == [] and unfinished_uploads(s3_store) == []
    with pytest.raises(PayloadTooLarge):
        s3_store.put(TEN_A, "uploads/y.zip", chunks_of(pattern(20 * MiB), 1 * MiB), max_bytes=17 * MiB)
    assert keys(s3_store) == [] and unfinished_uploads(s3_store) == []


def test_a_folder_delete_also_aborts_parts_a_crashed_writer_left(s3_store: S3FileStore) -> None:
    writer = s3_store.writer(TEN_A, "uploads/pkg_1/dead.zip", max_bytes=64 * MiB)
    for chunk in chunks_of(pattern(PART_BYTES + 10), 1 * MiB):
        writer.write(chunk)  # a part is sent; then the worker "dies": no commit, no abort
    other = s3_store.writer(TEN_A, "uploads/pkg_10/alive.zip", max_bytes=64 * MiB)
    for chunk in chunks_of(pattern(PART_BYTES + 10), 1 * MiB):
        other.write(chunk)
    s3_store.put(TEN_A, "uploads/pkg_1/kept-until-now.zip", iter([b"12345"]), max_bytes=10)
    assert s3_store.delete_folder(TEN_A, "uploads/pkg_1") == Deleted(1, 5)
    assert unfinished_uploads(s3_store) == [f"deployment/tenants/{TEN_A}/uploads/pkg_10/alive.zip"]
    other.abort()


def test_a_folder_delete_pages_through_deletes(s3_store: S3FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)
    for n in range(5):
        s3_store.put(TEN_A, f"packages/pkg_1/1/f{n}.txt", iter([b"x" * (n + 1)]), max_bytes=10)
    calls: list[int] = []
    original = s3_store.client.delete_objects

    def counting(**kwargs: object) -> object:
        calls.append(len(kwargs["Delete"]["Objects"]))  # type: ignore[index]
        return original(**kwargs)

    monkeypatch.setattr(s3_store.client, "delete_objects", counting)
    assert s3_store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(5, 15)
    assert calls == [2, 2, 1] and keys(s3_store) == []


def test_the_presigned_url_serves_ranges_and_etags(s3_store: S3FileStore) -> None:
    data = pattern(50_000, seed=4)
    stored = s3_store.put(TEN_A, "packages/pkg_1/1/media/clip.mp4", chunks_of(data), max_bytes=1 * MiB)
    url = s3_store.signed_url(TEN_A, "packages/pkg_1/1/media/clip.mp4", expires_seconds=30, content_type="video/mp4")
    assert url is not None and url.startswith(s3_store.config.endpoint_url + "/")
    with httpx.Client(timeout=10.0) as http:
        whole = http.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "video/mp4" and whole.headers["etag"] == stored.etag
        part = http.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert http.get(url, headers={"If-None-Match": stored.etag}).status_code == 304
        unsigned = url.split("?", 1)[0]
        assert http.get(unsigned).status_code == 403  # the bucket is private: only the signature opens it


def test_presigned_urls_of_awkward_names(s3_store: S3FileStore) -> None:
    for path in ("media/été clip+1 %20.mp4", "media/a&b=c?d#e.mp3", "media/日本語.png"):
        s3_store.put(TEN_A, path, iter([path.encode()]), max_bytes=100)
        url = s3_store.signed_url(TEN_A, path, expires_seconds=30)
        assert url is not None
        fetched = httpx.get(url, timeout=10.0)
        assert (fetched.status_code, fetched.content) == (200, path.encode()), path


def test_a_failing_abort_does_not_hide_why_the_upload_failed(
    s3_store: S3FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**kwargs: object) -> None:
        raise EndpointConnectionError(endpoint_url=s3_store.config.endpoint_url or "")

    real_abort = s3_store.client.abort_multipart_upload
    monkeypatch.setattr(s3_store.client, "abort_multipart_upload", unreachable)

    def broken() -> Iterator[bytes]:
        yield from chunks_of(pattern(PART_BYTES + 5), 1 * MiB)
        raise ConnectionResetError("client gone")

    with pytest.raises(ConnectionResetError):
        s3_store.put(TEN_A, "uploads/x.zip", broken(), max_bytes=64 * MiB)
    monkeypatch.setattr(s3_store.client, "abort_multipart_upload", real_abort)
    assert keys(s3_store) == []
    assert len(unfinished_uploads(s3_store)) == 1  # left for the folder delete or the bucket's lifecycle rule
    assert s3_store.delete_folder(TEN_A, "uploads") == Deleted(0, 0)
    assert unfinished_uploads(s3_store) == []
