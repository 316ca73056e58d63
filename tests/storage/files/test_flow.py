"""A package's whole life through a store, with the appliance's own analysis: upload, fetch, extract,
publish, serve, delete, and the bytes the quota sees at each step."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.config import Config
from appliance.services.library.package_analysis import analyse
from appliance.storage.files.base import Deleted, FileMissing, FileStore
from appliance.storage.files.fetch import ChecksumMismatch, fetch_to
from appliance.storage.files.publish import publish_folder
from appliance.storage.files.receive import receive_into_store
from appliance.storage.files.serving import answer_content, find_version_file, stream_chunks, version_folder
from tests.faces.api.test_packages import build_zip, manifest_12
from tests.storage.files.test_stores import TEN_A, MiB, chunks_of

PAGE = b"<html><body>hello from the store</body></html>"


async def body(data: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks_of(data, 64 * 1024):
        yield chunk


async def drain(iterator: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in iterator])


def test_upload_process_serve_delete(store: FileStore, tmp_path: Path) -> None:
    zip_bytes = build_zip(
        {
            "imsmanifest.xml": manifest_12("Stored course"),
            "index.html": PAGE,
            "media/clip.mp4": random.Random(1).randbytes(2 * MiB),
        }
    )
    received = asyncio.run(
        receive_into_store(body(zip_bytes), "application/zip", store, TEN_A, "uploads/pkg_1-1.zip", 64 * MiB)
    )
    assert received.stored.size == len(zip_bytes)

    scratch = tmp_path / "scratch"  # the job, on whichever worker claimed it
    scratch.mkdir()
    size = fetch_to(store, TEN_A, "uploads/pkg_1-1.zip", scratch / "pkg.zip", expected_sha256=received.stored.sha256)
    assert size == len(zip_bytes)
    analysis = analyse(scratch / "pkg.zip", scratch / "work", Config(data_dir=tmp_path / "data"), durable=False)
    assert analysis.title == "Stored course"
    published = publish_folder(store, TEN_A, version_folder("pkg_1", 1), scratch / "work")
    assert (published.files, published.bytes) == (analysis.extracted.file_count, analysis.extracted.total_bytes)
    assert store.delete(TEN_A, "uploads/pkg_1-1.zip") == Deleted(1, len(zip_bytes))  # `upload_bytes` back to 0

    found = find_version_file(store, TEN_A, "pkg_1", 1, "index.html")
    answer = answer_content(store, found, range_header="bytes=6-11", if_none_match=None, framing={})
    assert answer.status == 206 and answer.body is not None
    assert asyncio.run(drain(stream_chunks(answer.body))) == PAGE[6:12]

    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(3, analysis.extracted.total_bytes)
    assert list(store.list(TEN_A)) == []


def test_a_fetch_that_does_not_match_the_upload_leaves_no_file(store: FileStore, tmp_path: Path) -> None:
    store.put(TEN_A, "uploads/pkg_1-1.zip", iter([b"PK not quite"]), max_bytes=100)
    with pytest.raises(ChecksumMismatch):
        fetch_to(store, TEN_A, "uploads/pkg_1-1.zip", tmp_path / "pkg.zip", expected_sha256="0" * 64)
    assert not (tmp_path / "pkg.zip").exists()
    with pytest.raises(FileMissing):
        fetch_to(store, TEN_A, "uploads/pkg_2-1.zip", tmp_path / "pkg.zip")
    assert not (tmp_path / "pkg.zip").exists()
