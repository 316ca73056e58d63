"""Two workers deleting the same files at once (the orphaned-files sweep runs on every worker): no error,
nothing left, and on the data directory every file counted by exactly one of them. On S3 a batch delete
confirms a key another worker deleted a moment before as deleted too, so there both may count it."""

from __future__ import annotations

import threading
from collections.abc import Callable

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
