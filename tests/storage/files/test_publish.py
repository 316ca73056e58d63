"""An extracted package version published into either store: all its files with exact bytes, or none."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from appliance.services.library.archive import extract_archive
from appliance.services.library.content import resolve
from appliance.storage.datadir import DataDir
from appliance.storage.files.base import FileStore
from appliance.storage.files.local import LocalFileStore
from appliance.storage.files.publish import publish_folder
from appliance.storage.files.s3 import S3FileStore
from appliance.storage.files.serving import version_folder
from tests.storage.files.test_stores import TEN_A, pattern

COURSE = {
    "imsmanifest.xml": b"<manifest/>",
    "index.html": b"<html>course</html>",
    "shared/style.css": pattern(4000, seed=1),
    "media/intro.mp4": pattern(200_000, seed=2),
    "empty.js": b"",
}


def extracted(tmp_path: Path, files: dict[str, bytes], name: str = "scratch") -> tuple[Path, int]:
    """A course ZIP extracted by `appliance.services.library.archive` (as processing does), and its bytes written."""
    zip_path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in files.items():
            zf.writestr(f"course/{member}", data)
    dest = tmp_path / name
    result = extract_archive(zip_path, dest, strip_prefix="course/", durable=False)
    return dest, result.total_bytes


def test_publish_stores_every_file_with_exact_bytes(store: FileStore, tmp_path: Path) -> None:
    src, total = extracted(tmp_path, COURSE)
    published = publish_folder(store, TEN_A, version_folder("pkg_1", 1), src)
    assert (published.files, published.bytes, published.replaced_bytes) == (5, total, 0)
    listed = {f.path: f.size for f in store.list(TEN_A, "packages/pkg_1/1")}
    assert listed == {f"packages/pkg_1/1/{name}": len(data) for name, data in COURSE.items()}
    assert sum(listed.values()) == total
    for name, data in COURSE.items():
        assert store.read_bytes(TEN_A, f"packages/pkg_1/1/{name}") == data
    assert not src.exists()


def test_publishing_again_replaces_an_earlier_attempt(store: FileStore, tmp_path: Path) -> None:
    first, first_total = extracted(tmp_path, {"imsmanifest.xml": b"<m/>", "old.html": pattern(999)}, "first")
    publish_folder(store, TEN_A, "packages/pkg_1/1", first)
    again, total = extracted(tmp_path, COURSE, "again")
    published = publish_folder(store, TEN_A, "packages/pkg_1/1", again)
    assert (published.bytes, published.replaced_bytes) == (total, first_total)
    assert sorted(f.path.rsplit("/", 1)[-1] for f in store.list(TEN_A, "packages/pkg_1/1")) == sorted(
        name.rsplit("/", 1)[-1] for name in COURSE
    )


def test_a_folder_with_a_symlink_is_not_published(store: FileStore, tmp_path: Path) -> None:
    src, _ = extracted(tmp_path, COURSE)
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="neither a file nor a folder"):
        publish_folder(store, TEN_A, "packages/pkg_1/1", src)
    assert list(store.list(TEN_A)) == []


def test_a_local_publish_is_todays_rename_into_the_version_folder(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.ensure()
    src, _ = extracted(tmp_path, COURSE)
    inode = (src / "index.html").stat().st_ino
    publish_folder(LocalFileStore(data.root), TEN_A, version_folder("pkg_1", 1), src)
    version_dir = data.version_dir(TEN_A, "pkg_1", 1)
    assert (version_dir / "index.html").stat().st_ino == inode  # moved, not copied
    assert resolve(version_dir, "shared/style.css").size == 4000


def test_a_failed_put_leaves_none_of_the_version(s3_store: S3FileStore, tmp_path: Path) -> None:
    src, _ = extracted(tmp_path, COURSE)
    real_put = s3_store.put
    calls = []

    def flaky(tenant_id: str, path: str, *args: object, **kwargs: object) -> object:
        calls.append(path)
        if path.endswith("style.css"):
            raise ConnectionError("the object store went away")
        return real_put(tenant_id, path, *args, **kwargs)  # type: ignore[arg-type]

    s3_store.put = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        publish_folder(s3_store, TEN_A, "packages/pkg_1/1", src, workers=1)
    assert len(calls) >= 2  # something was stored before the failure ...
    assert list(s3_store.list(TEN_A)) == []  # ... and removed again


def test_objects_carry_their_content_types(s3_store: S3FileStore, tmp_path: Path) -> None:
    src, _ = extracted(tmp_path, COURSE)
    publish_folder(s3_store, TEN_A, "packages/pkg_1/1", src)
    key = f"deployment/tenants/{TEN_A}/packages/pkg_1/1/"
    types = {
        name: s3_store.client.head_object(Bucket=s3_store.bucket, Key=key + name)["ContentType"]
        for name in ("index.html", "shared/style.css", "media/intro.mp4", "empty.js")
    }
    assert types == {
        "index.html": "text/html",
        "shared/style.css": "text/css",
        "media/intro.mp4": "video/mp4",
        "empty.js": "text/javascript",
    }
