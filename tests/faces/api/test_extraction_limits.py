"""Extraction bounded by the tenant's remaining quota, and uploads refused under the disk's free-space
floor (issue 20, item 4): a small ZIP of compressible data must not fill tmp/ before it fails."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.services.library import archive
from appliance.services.library.archive import ArchiveError, ArchiveLimits, extract_archive, inspect_archive
from appliance.services.tenancy import quotas
from tests.conftest import TenantKey, backend_config
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import (
    API,
    assert_error,
    assert_nothing_stored,
    build_zip,
    drain,
    manifest_12,
    package_12,
    set_storage_limit,
    tmp_files,
    upload_raw,
    upload_ready,
)

MiB = 1024 * 1024


def compressible_package(mib: int) -> bytes:
    """A package whose one file is `mib` MiB of data compressing about 38:1: under the zip-bomb ratio,
    so only the quota can stop it (the review's was 587 KB extracting to 40.5 MB)."""
    blocks = [os.urandom(1024) * 50 for _ in range(mib * MiB // (50 * 1024))]
    return build_zip({"imsmanifest.xml": manifest_12("Big"), "index.html": b"".join(blocks)})


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes extraction writes, member by member (the extractor's own counter, summed)."""
    counts: list[int] = []
    copy = archive._copy_member

    def counting(zf: zipfile.ZipFile, entry: Any, out: IO[bytes], total: int, limits: ArchiveLimits) -> int:
        try:
            n = copy(zf, entry, out, total, limits)
        except ArchiveError:
            counts.append(out.tell())
            raise
        counts.append(n)
        return n

    monkeypatch.setattr(archive, "_copy_member", counting)
    return counts


def test_a_small_zip_over_the_quota_fails_before_filling_tmp(
    api: TestClient, acme: TenantKey, config: Config, written: list[int]
) -> None:
    data = compressible_package(24)
    assert len(data) < 1 * MiB
    limit = len(data) + 2 * MiB  # the ZIP fits, its 24 MiB of files do not
    set_storage_limit(config, acme.tenant_id, limit)
    created = upload_raw(api, acme, data)
    assert created.status_code == 202, created.text
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "failed"
    assert package["error"]["code"] == "QUOTA_EXCEEDED"
    details = package["error"]["details"]
    assert details["used_bytes"] == 0
    assert details["limit_bytes"] == limit
    assert details["requested_bytes"] > 23 * MiB  # what the files declare
    assert sum(written) <= limit  # today: nothing at all, the declared sizes were refused first
    assert written == []
    assert_nothing_stored(config, acme.tenant_id)


def test_the_quota_left_is_what_bounds_extraction(
    api: TestClient, acme: TenantKey, config: Config, written: list[int]
) -> None:
    """Stored packages count: the room is the quota minus what is stored (not the whole quota)."""
    first = upload_ready(api, acme, package_12(body=os.urandom(300_000)))
    data = package_12(body=os.urandom(200_000))
    set_storage_limit(config, acme.tenant_id, first["size_bytes"] + 250_000)
    created = upload_raw(api, acme, data)
    assert created.status_code == 202, created.text
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "ready", package  # 200 KB of files in 250 KB of room
    third = upload_raw(api, acme, package_12(body=b"z" * 100_000))  # a tiny ZIP: 100 KB in 50 KB of room
    assert third.status_code == 202, third.text
    drain(api)
    failed = api.get(f"{API}/{third.json()['id']}", headers=acme.headers).json()
    assert failed["error"]["code"] == "QUOTA_EXCEEDED"
    assert failed["error"]["details"]["used_bytes"] == first["size_bytes"] + package["size_bytes"]


def test_validate_is_bounded_by_the_quota_too(api: TestClient, acme: TenantKey, config: Config) -> None:
    data = compressible_package(8)
    set_storage_limit(config, acme.tenant_id, len(data) + 1 * MiB)
    response = api.post(f"{API}/validate", content=data, headers={**acme.headers, "Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is False
    assert result["error"]["code"] == "QUOTA_EXCEEDED"
    assert result["error"]["details"]["limit_bytes"] == len(data) + 1 * MiB
    assert tmp_files(config) == []


# -- the archive's own limit ---------------------------------------------------------------------------


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.write_bytes(build_zip(files))
    return path


def test_declared_sizes_over_the_quota_are_refused_before_a_byte_is_written(tmp_path: Path) -> None:
    source = write_zip(tmp_path / "a.zip", {"a.txt": b"a" * 5000, "b/c.txt": b"c" * 5000})
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError) as caught:
        extract_archive(source, dest, ArchiveLimits(quota_bytes=9999))
    assert caught.value.code == "QUOTA_EXCEEDED"
    assert caught.value.details == {"reason": "quota", "quota_bytes": 9999, "requested_bytes": 10_000}
    assert not dest.exists()
    # Exactly the room is enough; inspection alone never judges the quota (nothing is written).
    assert extract_archive(source, dest, ArchiveLimits(quota_bytes=10_000)).total_bytes == 10_000
    assert len(inspect_archive(source, ArchiveLimits(quota_bytes=1))) == 2


def test_only_the_files_extracted_count(tmp_path: Path) -> None:
    """Junk and files outside the stripped folder are never written, so they take no quota."""
    source = write_zip(
        tmp_path / "a.zip", {"course/a.txt": b"a" * 1000, "__MACOSX/._a.txt": b"j" * 5000, "other.txt": b"o" * 5000}
    )
    result = extract_archive(source, tmp_path / "out", ArchiveLimits(quota_bytes=1000), strip_prefix="course/")
    assert result.files == ["a.txt"]


def test_bytes_written_stop_at_the_quota(tmp_path: Path) -> None:
    """The limit holds on bytes produced too, whatever was declared (a check that does not trust headers)."""
    source = write_zip(tmp_path / "a.zip", {"a.txt": b"a" * 3000, "b.txt": b"b" * 3000})
    with zipfile.ZipFile(source) as zf:
        entries = archive._check_members(zf, DEFAULT := ArchiveLimits())
        out = tmp_path / "sink"
        with out.open("wb") as sink:
            first = archive._copy_member(zf, entries[0], sink, 0, DEFAULT)
            with pytest.raises(ArchiveError) as caught:
                archive._copy_member(zf, entries[1], sink, first, ArchiveLimits(quota_bytes=5000))
    assert caught.value.code == "QUOTA_EXCEEDED"
    assert out.stat().st_size == 3000  # the chunk that would pass the quota was not written


# -- the free-space floor --------------------------------------------------------------------------------


@pytest.fixture
def floor_config(tmp_path: Path) -> Config:
    return backend_config(tmp_path / "data", min_free_disk_bytes=10**18)  # more than any disk


@pytest.fixture
def floor_api(floor_config: Config, clock: FixedClock) -> Iterator[TestClient]:
    with make_api(floor_config, clock) as client:
        yield client


def test_an_upload_under_the_free_space_floor_is_refused_with_507(
    floor_api: TestClient, floor_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import make_tenant_key

    who = make_tenant_key(floor_config, "Acme")
    body = assert_error(upload_raw(floor_api, who, package_12()), 507, "INSUFFICIENT_STORAGE")
    assert body["details"] == {"requested_bytes": len(package_12())}  # no disk figures for a tenant
    assert "min_free_disk_bytes" in caplog.text  # the operator's log has them
    response = floor_api.post(
        f"{API}/validate", content=package_12(), headers={**who.headers, "Content-Type": "application/zip"}
    )
    assert_error(response, 507, "INSUFFICIENT_STORAGE")
    assert_nothing_stored(floor_config, who.tenant_id)


def test_a_streamed_upload_stops_when_the_disk_reaches_the_floor(
    api: TestClient, acme: TenantKey, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body without a length: free space falls as tmp/ fills (16 MiB above the floor here)."""
    tmp = config.data_dir / "tmp"

    def free(_: Path) -> int:
        used = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
        return config.min_free_disk_bytes + 16 * MiB - used

    monkeypatch.setattr(quotas, "free_disk_bytes", free)
    chunks = iter([os.urandom(MiB) for _ in range(64)])
    response = api.post(API, content=chunks, headers={**acme.headers, "Content-Type": "application/zip"})
    assert_error(response, 507, "INSUFFICIENT_STORAGE")
    assert api.get(API, headers=acme.headers).json()["data"] == []
    assert_nothing_stored(config, acme.tenant_id)


def test_processing_does_not_extract_onto_a_full_disk(
    api: TestClient, acme: TenantKey, config: Config, monkeypatch: pytest.MonkeyPatch, written: list[int]
) -> None:
    created = upload_raw(api, acme, package_12(body=b"x" * 50_000))
    assert created.status_code == 202, created.text
    monkeypatch.setattr(quotas, "free_disk_bytes", lambda _: config.min_free_disk_bytes + 10_000)
    drain(api)
    package = api.get(f"{API}/{created.json()['id']}", headers=acme.headers).json()
    assert package["status"] == "failed"
    assert package["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert written == []
    assert_nothing_stored(config, acme.tenant_id)
