"""Content read through a FileStore answers exactly as the player's content route did before it used the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from appliance.errors import NotFound
from appliance.faces.api.middleware import learner_headers
from appliance.services.library.content import ContentFile, parse_range, resolve
from appliance.storage.datadir import DataDir
from appliance.storage.files.base import FileStore
from appliance.storage.files.config import parse_files
from appliance.storage.files.local import LocalFileStore
from appliance.storage.files.s3 import S3FileStore
from appliance.storage.files.serving import (
    ContentAnswer,
    RedirectPolicy,
    answer_content,
    find_version_file,
    redirect_policy,
    stream_chunks,
    version_folder,
)
from tests.storage.files.test_stores import TEN_A, TEN_B, pattern

FILES = {
    "index.html": b"<html><body>course</body></html>",
    "js/app.js": pattern(3000, seed=1),
    "media/clip.mp4": pattern(300_000, seed=2),
    "empty.txt": b"",
    "odd name %20.txt": b"odd",
}
PATHS = [*FILES, "js//app.js", "js/app.js/", "../1/index.html", "./index.html", "js", "missing.html", "C:x", "a\\b"]
RANGES = [
    None,
    "bytes=0-9",
    "bytes=-5",
    "bytes=5-",
    "bytes=10-2",
    "bytes=99999999-",
    "bytes=0-0,5-9",
    "junk",
    "bytes=-0",
]
FRAMING = learner_headers(("'self'",))


def publish(store: FileStore, tenant: str = TEN_A) -> None:
    for name, data in FILES.items():
        store.put(tenant, f"{version_folder('pkg_1', 1)}/{name}", iter([data]), max_bytes=len(data) + 1)


async def drain(iterator: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in iterator])


def _route_before_the_store(found: ContentFile, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """The content route's own answer before it moved onto the store (its `_file_response`, kept
    here verbatim in substance as the reference the store's answers must match)."""
    answer = {**FRAMING, "ETag": found.etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if headers.get("If-None-Match") == found.etag:
        return 304, answer, b""
    try:
        wanted = parse_range(headers.get("Range"), found.size)
    except ValueError:
        return 416, {"Content-Range": f"bytes */{found.size}"}, b""
    start, end = wanted if wanted else (0, found.size - 1)
    length = max(0, end - start + 1)
    answer["Content-Length"] = str(length)
    status = 200
    if wanted:
        status = 206
        answer["Content-Range"] = f"bytes {start}-{end}/{found.size}"
    with found.path.open("rb") as fh:
        fh.seek(start)
        return status, answer, fh.read(length)


def today(version_dir: Path, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
    """What the route answered before the store (None: 404), from `appliance.services.library.content`."""
    try:
        found = resolve(version_dir, path)
    except NotFound:
        return None
    return _route_before_the_store(found, headers)


def through_store(
    store: FileStore, path: str, headers: dict[str, str], redirect: RedirectPolicy | None = None
) -> tuple[ContentAnswer, bytes] | None:
    try:
        found = find_version_file(store, TEN_A, "pkg_1", 1, path)
    except NotFound:
        return None
    answer = answer_content(
        store,
        found,
        range_header=headers.get("Range"),
        if_none_match=headers.get("If-None-Match"),
        framing=FRAMING,
        redirect=redirect,
    )
    body = asyncio.run(drain(stream_chunks(answer.body))) if answer.body is not None else b""
    return answer, body


@pytest.mark.parametrize("path", PATHS)
def test_a_local_store_answers_as_the_route_does_today(tmp_path: Path, path: str) -> None:
    data = DataDir(tmp_path / "data")
    store = LocalFileStore(data.root)
    publish(store)
    version_dir = data.version_dir(TEN_A, "pkg_1", 1)
    etag = resolve(version_dir, "index.html").etag
    for headers in [{"Range": r} for r in RANGES if r] + [{}, {"If-None-Match": etag}, {"If-None-Match": '"x"'}]:
        expected, got = today(version_dir, path, headers), through_store(store, path, headers)
        if expected is None:
            assert got is None, (path, headers)
            continue
        assert got is not None, (path, headers)
        answer, body = got
        status, expected_headers, expected_body = expected
        assert answer.status == status, (path, headers)
        if status == 416:  # the route writes the contract's error body itself
            assert answer.headers["Content-Range"] == expected_headers["Content-Range"]
            continue
        assert answer.headers == expected_headers, (path, headers)
        assert body == expected_body, (path, headers)
        if status != 304:
            assert answer.media_type == resolve(version_dir, path).media_type


def test_an_object_store_gives_the_same_answers_with_its_own_etags(tmp_path: Path, s3_store: S3FileStore) -> None:
    local = LocalFileStore(tmp_path / "data")
    publish(local)
    publish(s3_store)
    for path in PATHS:
        for headers in [{"Range": r} for r in RANGES if r] + [{}]:
            from_disk, from_s3 = through_store(local, path, headers), through_store(s3_store, path, headers)
            if from_disk is None:
                assert from_s3 is None, path
                continue
            assert from_s3 is not None, path
            (disk, disk_body), (s3, s3_body) = from_disk, from_s3
            assert (s3.status, s3.media_type, s3_body) == (disk.status, disk.media_type, disk_body), (path, headers)
            same = {k: v for k, v in disk.headers.items() if k != "ETag"}
            assert {k: v for k, v in s3.headers.items() if k != "ETag"} == same
    found = find_version_file(s3_store, TEN_A, "pkg_1", 1, "index.html")
    assert through_store(s3_store, "index.html", {"If-None-Match": found.stat.etag})[0].status == 304  # type: ignore[index]


def test_another_tenants_version_is_not_found(s3_store: S3FileStore) -> None:
    publish(s3_store, TEN_B)
    with pytest.raises(NotFound):
        find_version_file(s3_store, TEN_A, "pkg_1", 1, "index.html")
    with pytest.raises(NotFound):
        find_version_file(s3_store, TEN_A, "pkg_1", 1, f"../../../../{TEN_B}/packages/pkg_1/1/index.html")


def test_large_media_can_be_redirected_to_a_signed_url(tmp_path: Path, s3_store: S3FileStore) -> None:
    publish(s3_store)
    policy = RedirectPolicy(expires_seconds=30, min_bytes=100_000)
    got = through_store(s3_store, "media/clip.mp4", {"Range": "bytes=0-99"}, policy)
    assert got is not None
    answer, body = got
    assert answer.status == 302 and body == b"" and answer.headers["Cache-Control"] == "no-store"
    with httpx.Client(timeout=10.0) as http:
        fetched = http.get(answer.headers["Location"], headers={"Range": "bytes=0-99"})
    assert fetched.status_code == 206 and fetched.content == FILES["media/clip.mp4"][:100]
    assert fetched.headers["content-type"] == "video/mp4"
    for small_or_page in ("index.html", "js/app.js"):  # pages and scripts always come from the player's origin
        assert through_store(s3_store, small_or_page, {}, RedirectPolicy(min_bytes=0))[0].status == 200  # type: ignore[index]
    small = RedirectPolicy(min_bytes=1_000_000)
    assert through_store(s3_store, "media/clip.mp4", {}, small)[0].status == 200  # type: ignore[index]
    local = LocalFileStore(tmp_path / "data")
    publish(local)
    assert through_store(local, "media/clip.mp4", {}, policy)[0].status == 200  # type: ignore[index]


def test_the_redirect_policy_comes_from_the_files_settings() -> None:
    data = Path("/srv/data")
    assert redirect_policy(parse_files({}, data_dir=data)) is None
    assert redirect_policy(parse_files({"files": "s3://bucket"}, data_dir=data)) is None
    chosen = {"files": "s3://bucket", "files_serve": "redirect", "files_signed_url_seconds": "45"}
    assert redirect_policy(parse_files(chosen, data_dir=data)) == RedirectPolicy(
        expires_seconds=45, min_bytes=1024 * 1024
    )
