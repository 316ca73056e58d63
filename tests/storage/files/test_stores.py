"""The same cases against both file stores: the data directory and a real S3 server (moto's)."""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import PayloadTooLarge, QuotaExceeded
from appliance.storage.files.base import Deleted, FileMissing, FileStore, check_path, tenant_key

MiB = 1024 * 1024
TEN_A = "ten_aaaaaaaaaaaaaaaaaaaaaaaa"
TEN_B = "ten_bbbbbbbbbbbbbbbbbbbbbbbb"


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset of interest, so a wrong range cannot read as right."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


def chunks_of(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def put(store: FileStore, tenant: str, path: str, data: bytes) -> None:
    store.put(tenant, path, chunks_of(data), max_bytes=len(data) + 1)


def test_put_then_stat_and_read_back(store: FileStore) -> None:
    data = pattern(100_000)
    stored = store.put(TEN_A, "packages/pkg_1/1/index.html", chunks_of(data, 4096), max_bytes=1 * MiB)
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    found = store.stat(TEN_A, "packages/pkg_1/1/index.html")
    assert (found.path, found.size, found.etag) == ("packages/pkg_1/1/index.html", len(data), stored.etag)
    assert found.etag.startswith('"') and found.etag.endswith('"') and len(found.etag) > 2
    assert found.mtime > 0
    assert store.read_bytes(TEN_A, "packages/pkg_1/1/index.html") == data
    assert all(len(chunk) <= 256 * 1024 for chunk in store.read(TEN_A, "packages/pkg_1/1/index.html"))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 0, slice(0, 1)), (10, 19, slice(10, 20)), (99_990, None, slice(99_990, None)), (5, 10**9, slice(5, None))],
)
def test_range_reads(store: FileStore, start: int, end: int | None, expected: slice) -> None:
    data = pattern(100_000, seed=3)
    put(store, TEN_A, "f.bin", data)
    assert b"".join(store.read(TEN_A, "f.bin", start, end)) == data[expected]


def test_a_range_past_the_end_reads_nothing(store: FileStore) -> None:
    put(store, TEN_A, "f.bin", b"0123456789")
    assert b"".join(store.read(TEN_A, "f.bin", 10, None)) == b""
    assert b"".join(store.read(TEN_A, "f.bin", 20, 30)) == b""


def test_an_empty_file(store: FileStore) -> None:
    stored = store.put(TEN_A, "empty.txt", iter([]), max_bytes=10)
    assert stored.size == 0 and stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.stat(TEN_A, "empty.txt").size == 0
    assert store.read_bytes(TEN_A, "empty.txt") == b""


def test_the_etag_changes_with_the_content_and_not_without(store: FileStore) -> None:
    put(store, TEN_A, "a.js", b"one")
    first = store.stat(TEN_A, "a.js").etag
    assert store.stat(TEN_A, "a.js").etag == first
    put(store, TEN_A, "a.js", b"other content")
    assert store.stat(TEN_A, "a.js").etag != first
    assert store.read_bytes(TEN_A, "a.js") == b"other content"


def test_a_streamed_upload_over_8_mib(store: FileStore) -> None:
    data = pattern(2 * 8 * MiB + 12_345, seed=5)
    stored = store.put(TEN_A, "uploads/pkg_1-1.zip", chunks_of(data, 1 * MiB), max_bytes=64 * MiB)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert store.stat(TEN_A, "uploads/pkg_1-1.zip").size == len(data)
    assert hashlib.sha256(store.read_bytes(TEN_A, "uploads/pkg_1-1.zip")).digest() == hashlib.sha256(data).digest()
    across_a_part_boundary = b"".join(store.read(TEN_A, "uploads/pkg_1-1.zip", 8 * MiB - 5, 8 * MiB + 4))
    assert across_a_part_boundary == data[8 * MiB - 5 : 8 * MiB + 5]


def test_over_the_size_limit_nothing_is_left(store: FileStore) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        store.put(TEN_A, "uploads/big.zip", chunks_of(pattern(9 * MiB), 1 * MiB), max_bytes=8 * MiB + 100)
    assert caught.value.details["limit_bytes"] == 8 * MiB + 100
    with pytest.raises(FileMissing):
        store.stat(TEN_A, "uploads/big.zip")
    assert list(store.list(TEN_A)) == []


def test_a_stream_that_breaks_leaves_nothing_and_keeps_the_previous_file(store: FileStore) -> None:
    put(store, TEN_A, "uploads/pkg_1-1.zip", b"the earlier file")

    def broken() -> Iterator[bytes]:
        yield from chunks_of(pattern(9 * MiB), 1 * MiB)
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        store.put(TEN_A, "uploads/pkg_1-1.zip", broken(), max_bytes=64 * MiB)
    with pytest.raises(ConnectionResetError):
        store.put(TEN_A, "uploads/pkg_2-1.zip", broken(), max_bytes=64 * MiB)
    assert store.read_bytes(TEN_A, "uploads/pkg_1-1.zip") == b"the earlier file"
    assert [f.path for f in store.list(TEN_A)] == ["uploads/pkg_1-1.zip"]


def test_a_quota_check_stops_the_stream(store: FileStore) -> None:
    seen: list[int] = []

    def check(size: int) -> None:
        seen.append(size)
        if size > 3 * MiB:
            raise QuotaExceeded("storage quota exceeded", {"requested_bytes": size})

    with pytest.raises(QuotaExceeded):
        store.put(TEN_A, "uploads/q.zip", chunks_of(pattern(10 * MiB), 1 * MiB), max_bytes=64 * MiB, check_size=check)
    assert seen[-1] == 4 * MiB  # stopped at the first chunk over, not after reading the rest
    assert list(store.list(TEN_A)) == []


def test_list_a_folder_whole_names_only(store: FileStore) -> None:
    for path, size in [
        ("packages/pkg_1/1/index.html", 10),
        ("packages/pkg_1/1/js/app.js", 20),
        ("packages/pkg_1/2/index.html", 30),
        ("packages/pkg_10/1/index.html", 40),
        ("uploads/pkg_1-3.zip", 50),
    ]:
        put(store, TEN_A, path, pattern(size))
    put(store, TEN_B, "packages/pkg_1/1/index.html", pattern(60))
    listed = [(f.path, f.size) for f in store.list(TEN_A, "packages/pkg_1")]
    assert listed == [
        ("packages/pkg_1/1/index.html", 10),
        ("packages/pkg_1/1/js/app.js", 20),
        ("packages/pkg_1/2/index.html", 30),
    ]
    assert [f.path for f in store.list(TEN_A, "packages/pkg_1/1/")] == [
        "packages/pkg_1/1/index.html",
        "packages/pkg_1/1/js/app.js",
    ]
    assert len(list(store.list(TEN_A))) == 5
    assert [f.path for f in store.list(TEN_B)] == ["packages/pkg_1/1/index.html"]
    assert list(store.list(TEN_A, "packages/none")) == []
    assert all(f.etag == store.stat(TEN_A, f.path).etag for f in store.list(TEN_A))


def test_delete_a_folder_reports_exactly_what_it_freed(store: FileStore) -> None:
    sizes = {"packages/pkg_1/1/index.html": 1000, "packages/pkg_1/1/a/b/c.css": 2345, "packages/pkg_1/2/x.js": 7}
    for path, size in sizes.items():
        put(store, TEN_A, path, pattern(size))
    put(store, TEN_A, "packages/pkg_10/1/index.html", pattern(11))
    put(store, TEN_B, "packages/pkg_1/1/index.html", pattern(13))
    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(files=3, bytes=3352)
    assert list(store.list(TEN_A, "packages/pkg_1")) == []
    assert [f.path for f in store.list(TEN_A)] == ["packages/pkg_10/1/index.html"]
    assert store.read_bytes(TEN_B, "packages/pkg_1/1/index.html") == pattern(13)
    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(0, 0)
    with pytest.raises(ValueError, match="needs a folder"):
        store.delete_folder(TEN_A, "")


def test_a_files_path_is_not_a_folder(store: FileStore) -> None:
    put(store, TEN_A, "uploads/pkg_1-1.zip", pattern(10))
    assert list(store.list(TEN_A, "uploads/pkg_1-1.zip")) == []
    assert store.delete_folder(TEN_A, "uploads/pkg_1-1.zip") == Deleted(0, 0)
    assert store.stat(TEN_A, "uploads/pkg_1-1.zip").size == 10


def test_delete_one_file(store: FileStore) -> None:
    put(store, TEN_A, "uploads/pkg_1-1.zip", pattern(777))
    assert store.delete(TEN_A, "uploads/pkg_1-1.zip") == Deleted(1, 777)
    assert store.delete(TEN_A, "uploads/pkg_1-1.zip") == Deleted(0, 0)
    with pytest.raises(FileMissing):
        store.read(TEN_A, "uploads/pkg_1-1.zip")


BAD_PATHS = [
    "",
    "/etc/passwd",
    "../ten_bbbbbbbbbbbbbbbbbbbbbbbb/packages/pkg_1/1/index.html",
    "packages/../../ten_bbbbbbbbbbbbbbbbbbbbbbbb/x",
    "a/../b",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "..",
    "a\\..\\b",
    "a\x00b",
    "a\nb",
    "x" * 1100,
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_paths_that_could_leave_the_tenant_are_not_found(store: FileStore, path: str) -> None:
    put(store, TEN_B, "packages/pkg_1/1/index.html", b"tenant b's")
    put(store, TEN_B, "x", b"tenant b's")
    with pytest.raises(FileMissing):
        store.stat(TEN_A, path)
    with pytest.raises(FileMissing):
        store.read(TEN_A, path)
    with pytest.raises(FileMissing):
        store.put(TEN_A, path, iter([b"overwrite?"]), max_bytes=100)
    with pytest.raises(FileMissing):
        store.signed_url(TEN_A, path, expires_seconds=60)
    if path not in ("", "a/"):  # "" and "a/" are folders: the tenant's whole space, and folder a
        with pytest.raises(FileMissing):
            store.delete_folder(TEN_A, path)
    assert store.read_bytes(TEN_B, "packages/pkg_1/1/index.html") == b"tenant b's"
    assert store.read_bytes(TEN_B, "x") == b"tenant b's"


@pytest.mark.parametrize("tenant", ["", ".", "..", "../ten_b", "ten/x", "ten\\x", "ten b", "_ten", "ten\x00"])
def test_a_bad_tenant_id_is_a_caller_bug(store: FileStore, tenant: str) -> None:
    with pytest.raises(ValueError, match="bad tenant id"):
        store.stat(tenant, "x")
    with pytest.raises(ValueError, match="bad tenant id"):
        store.put(tenant, "x", iter([b"x"]), max_bytes=10)
    with pytest.raises(ValueError, match="bad tenant id"):
        store.list(tenant)  # refused by the call, not on iteration


def test_the_local_store_serves_no_url_and_s3_a_short_lived_one(store: FileStore) -> None:
    put(store, TEN_A, "video.mp4", b"frames")
    url = store.signed_url(TEN_A, "video.mp4", expires_seconds=60)
    if type(store).__name__ == "LocalFileStore":
        assert url is None
    else:
        assert url is not None and "X-Amz-Expires=60" in url and "/tenants/" + TEN_A + "/video.mp4" in url


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=80))
def test_no_accepted_path_forms_a_key_outside_the_tenant(path: str) -> None:
    try:
        check_path(path)
    except FileMissing:
        return
    key = tenant_key(TEN_A, path)
    assert posixpath.normpath(key).startswith(f"tenants/{TEN_A}/")
    assert os.path.normpath(key).startswith(os.path.join("tenants", TEN_A) + os.sep)
    assert ".." not in key.split("/")
