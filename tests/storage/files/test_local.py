"""What only the data-directory store has: today's layout, symlinks refused, temp files, fsyncs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.services.library.content import resolve
from appliance.storage.datadir import DataDir
from appliance.storage.files.base import Deleted, FileMissing
from appliance.storage.files.local import LocalFileStore
from tests.storage.files.test_stores import TEN_A, TEN_B, MiB, chunks_of, pattern


@pytest.fixture
def data(tmp_path: Path) -> DataDir:
    data = DataDir(tmp_path / "data")
    data.ensure()
    return data


def test_files_land_where_the_data_directory_keeps_them(data: DataDir) -> None:
    store = LocalFileStore(data.root)
    store.put(TEN_A, "packages/pkg_1/2/index.html", iter([b"<html>"]), max_bytes=100)
    store.put(TEN_A, "uploads/pkg_1-3.zip", iter([b"PK"]), max_bytes=100)
    assert (data.version_dir(TEN_A, "pkg_1", 2) / "index.html").read_bytes() == b"<html>"
    assert (data.uploads_dir(TEN_A) / "pkg_1-3.zip").read_bytes() == b"PK"


def test_the_etag_is_the_one_the_content_route_sends_today(data: DataDir) -> None:
    store = LocalFileStore(data.root)
    store.put(TEN_A, "packages/pkg_1/1/page.html", iter([pattern(5000)]), max_bytes=10_000)
    today = resolve(data.version_dir(TEN_A, "pkg_1", 1), "page.html")
    assert store.stat(TEN_A, "packages/pkg_1/1/page.html").etag == today.etag


def test_a_planted_symlink_is_not_followed(data: DataDir) -> None:
    store = LocalFileStore(data.root)
    store.put(TEN_B, "packages/pkg_s/1/secret.txt", iter([b"tenant b's secret"]), max_bytes=100)
    store.put(TEN_A, "packages/pkg_1/1/index.html", iter([b"a"]), max_bytes=100)
    version = data.version_dir(TEN_A, "pkg_1", 1)
    (version / "link.txt").symlink_to(data.version_dir(TEN_B, "pkg_s", 1) / "secret.txt")
    (version / "dir").symlink_to(data.version_dir(TEN_B, "pkg_s", 1), target_is_directory=True)
    for path in ("packages/pkg_1/1/link.txt", "packages/pkg_1/1/dir/secret.txt"):
        with pytest.raises(FileMissing):
            store.stat(TEN_A, path)
        with pytest.raises(FileMissing):
            store.read(TEN_A, path)
    with pytest.raises(FileMissing):
        store.put(TEN_A, "packages/pkg_1/1/dir/new.txt", iter([b"x"]), max_bytes=10)
    assert [f.path for f in store.list(TEN_A)] == ["packages/pkg_1/1/index.html"]
    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(1, 1)  # the links go, their targets stay
    assert store.read_bytes(TEN_B, "packages/pkg_s/1/secret.txt") == b"tenant b's secret"


def test_a_symlinked_tenant_folder_is_not_followed(data: DataDir) -> None:
    store = LocalFileStore(data.root)
    store.put(TEN_B, "x.txt", iter([b"b"]), max_bytes=10)
    data.tenant_dir(TEN_A).symlink_to(data.tenant_dir(TEN_B), target_is_directory=True)
    with pytest.raises(FileMissing):
        store.stat(TEN_A, "x.txt")
    with pytest.raises(FileMissing):
        store.put(TEN_A, "y.txt", iter([b"a"]), max_bytes=10)


def test_nothing_is_left_in_tmp(data: DataDir) -> None:
    store = LocalFileStore(data.root)
    store.put(TEN_A, "a.bin", chunks_of(pattern(3 * MiB), MiB), max_bytes=4 * MiB)
    with pytest.raises(ValueError):
        store.put(TEN_A, "b.bin", (b"x" if n < 3 else int("boom") for n in range(5)), max_bytes=4 * MiB)  # type: ignore[misc]
    assert list(data.tmp.iterdir()) == []


@pytest.mark.parametrize("durable", [True, False])
def test_fsyncs_follow_the_durability_flag(data: DataDir, durable: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = LocalFileStore(data.root, durable=durable)
    store.put(TEN_A, "packages/pkg_1/1/index.html", iter([b"x"]), max_bytes=10)
    version = data.version_dir(TEN_A, "pkg_1", 1)
    if not durable:
        assert synced == []
        return
    assert any(path.startswith(str(data.tmp)) for path in synced)  # the file, before its rename
    for folder in (version, version.parent, version.parent.parent, data.tenant_dir(TEN_A), data.tenants):
        assert str(folder) in synced  # the new folders' entries and the file's own
    synced.clear()
    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(1, 1)
    assert synced == [str(data.version_dir(TEN_A, "pkg_1", 1).parent.parent)]


def test_the_embedded_default_never_imports_boto3(data: DataDir) -> None:
    """The local store works without the `scale` extra: boto3 is imported only for an s3:// store."""
    code = (
        "import sys; from pathlib import Path; "
        "from appliance.storage.files import open_file_store, parse_files; "
        f"store = open_file_store(parse_files({{'files': 'local'}}, data_dir=Path({str(data.root)!r}))); "
        "store.put('ten_a', 'x', iter([b'x']), max_bytes=1); "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
