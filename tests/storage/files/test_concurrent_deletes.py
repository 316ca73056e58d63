"""Two workers deleting the same files at once (the orphaned-files sweep runs on every worker): no error,
nothing left, and on the data directory every file counted by exactly one of them. On S3 a batch delete
confirms a key another worker deleted a moment before as deleted too, so there both may count it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.storage.files import local as local_module
from appliance.storage.files.base import Deleted, FileStore
from appliance.storage.files.local import LocalFileStore
from tests.storage.files.test_stores import TEN_A

FILES = 120


def at_once(work: Callable[[], Deleted], workers: int = 2) -> list[Deleted]:
    start = threading.Barrier(workers)
    results: list[Deleted] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


def test_two_folder_deletes_at_once(store: FileStore) -> None:
    for n in range(FILES):
        store.put(TEN_A, f"packages/pkg_1/1/d{n % 7}/f{n}.txt", iter([b"x" * (n + 1)]), max_bytes=1000)
    total = sum(range(1, FILES + 1))
    results = at_once(lambda: store.delete_folder(TEN_A, "packages/pkg_1/1"))
    assert list(store.list(TEN_A, "packages")) == []
    if isinstance(store, LocalFileStore):
        assert (sum(r.files for r in results), sum(r.bytes for r in results)) == (FILES, total)
        assert not (store.root / "tenants" / TEN_A / "packages" / "pkg_1" / "1").exists()
    else:
        assert all(r.files <= FILES and r.bytes <= total for r in results)
        assert sum(r.files for r in results) >= FILES


def test_two_file_deletes_at_once(store: FileStore) -> None:
    for round_ in range(20):
        store.put(TEN_A, "uploads/incoming-x.zip", iter([b"PK" * 50]), max_bytes=1000)
        results = at_once(lambda: store.delete(TEN_A, "uploads/incoming-x.zip"))
        assert list(store.list(TEN_A, "uploads")) == [], round_
        if isinstance(store, LocalFileStore):
            assert sorted(results, key=lambda r: r.files) == [Deleted(0, 0), Deleted(1, 100)]


def test_a_folder_written_into_while_it_is_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job publishing a version of a package being deleted adds files while the walk runs: the delete
    walks again instead of failing on a folder that is not empty (a 500 before); what a writer still adds
    after the last pass is left for the orphaned-files sweep, without an error."""
    store = LocalFileStore(tmp_path / "data")
    store.put(TEN_A, "packages/pkg_1/1/index.html", iter([b"x" * 10]), max_bytes=1000)
    real_walk = local_module._delete_tree
    passes: list[int] = []

    def walk_while_a_writer_adds(real: Path, *, keep_writing: bool) -> tuple[int, int]:
        found = real_walk(real)
        passes.append(found[0])
        if keep_writing or len(passes) == 1:
            version = real / "2" / "sub"
            version.mkdir(parents=True, exist_ok=True)
            (version / f"late-{len(passes)}.js").write_bytes(b"y" * 5)
        return found

    monkeypatch.setattr(local_module, "_delete_tree", lambda real: walk_while_a_writer_adds(real, keep_writing=False))
    assert store.delete_folder(TEN_A, "packages/pkg_1") == Deleted(2, 15)  # the late file on the second pass
    assert passes == [1, 1] and not (tmp_path / "data" / "tenants" / TEN_A / "packages" / "pkg_1").exists()

    passes.clear()
    store.put(TEN_A, "packages/pkg_2/1/index.html", iter([b"x" * 10]), max_bytes=1000)
    monkeypatch.setattr(local_module, "_delete_tree", lambda real: walk_while_a_writer_adds(real, keep_writing=True))
    freed = store.delete_folder(TEN_A, "packages/pkg_2")  # a writer that never stops: no error either
    assert len(passes) == local_module.DELETE_PASSES and freed.files == local_module.DELETE_PASSES
