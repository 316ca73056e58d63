"""Putting an extracted package version into a store: all its files, or none of them.

A ZIP is hostile input, and `appliance.services.library.archive` owns every defence against it (names, sizes, ratios,
symlinks, lying headers), writing to a local folder. So extraction into objects is two steps: the
archive is extracted and checked into a scratch folder of the worker exactly as today, and this module
then publishes that folder into the store under the version's folder (`packages/<pkg>/<version>`).

- Into a `LocalFileStore` the scratch folder is renamed into place (today's `os.replace`), after its
  files and folders are fsynced when the store is durable; across file systems it is copied instead.
- Into any other store every file is put, several at a time (`workers`), each with its content type.
  If any put fails, what was already published is deleted again, so a version is never left with
  part of its files.

Either way the result counts the files and bytes now stored, file by file: that is the number the
quota accounting adds (it equals `ExtractResult.total_bytes` of the extraction).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_module
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from appliance.services.library.archive import sync_dir
from appliance.services.library.content import media_type_of
from appliance.storage.files.base import FileStore, check_folder, check_path
from appliance.storage.files.local import LocalFileStore

PUBLISH_WORKERS = 8  # puts in flight to an object store: small course files are latency-bound
_FILE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Published:
    """What a publish stored (`files`, `bytes`) and what it first removed from an earlier attempt."""

    files: int
    bytes: int
    replaced_bytes: int = 0


def scratch_files(src: Path) -> list[tuple[str, Path, int]]:
    """(relative POSIX path, file, size) of every file under `src`, in path order.

    Only regular files and folders are accepted: the extraction creates nothing else, so anything else
    means the folder is not what the caller thinks it is.
    """
    found: list[tuple[str, Path, int]] = []
    for dirpath, dirs, names in os.walk(src):
        for name in [*dirs, *names]:
            full = Path(dirpath) / name
            mode = os.stat(full, follow_symlinks=False).st_mode
            if stat_module.S_ISREG(mode):
                found.append((full.relative_to(src).as_posix(), full, os.stat(full).st_size))
            elif not stat_module.S_ISDIR(mode):
                raise ValueError(f"{full} is neither a file nor a folder: not an extracted package")
    return sorted(found)


def publish_folder(
    store: FileStore, tenant_id: str, folder: str, src: Path, *, workers: int = PUBLISH_WORKERS, synced: bool = False
) -> Published:
    """Make `src`'s files the content of `folder` (replacing anything there); `src` is consumed.

    `synced`: the files and folders of `src` are already fsynced (`extract_archive(durable=True)`),
    so a durable local store need not sync them again before the rename.
    """
    folder = check_folder(folder)
    if not folder:
        raise ValueError("publish_folder needs a folder")
    files = scratch_files(src)
    for relative, _, _ in files:
        check_path(f"{folder}/{relative}")
    replaced = store.delete_folder(tenant_id, folder).bytes  # a crashed earlier attempt's files
    if isinstance(store, LocalFileStore):
        published = _rename_into(store, tenant_id, folder, src, files, synced)
    else:
        published = _put_all(store, tenant_id, folder, files, workers)
        shutil.rmtree(src, ignore_errors=True)
    return Published(published.files, published.bytes, replaced)


def _rename_into(
    store: LocalFileStore, tenant_id: str, folder: str, src: Path, files: list[tuple[str, Path, int]], synced: bool
) -> Published:
    if store.durable and not synced:
        for _, path, _ in files:
            _fsync_file(path)
        for dirpath, _, _ in sorted(os.walk(src), key=lambda entry: len(Path(entry[0]).parts), reverse=True):
            sync_dir(dirpath)
    target = store.place_folder(tenant_id, folder)
    try:
        os.replace(src, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # scratch space on another file system: copy file by file instead
            raise
        return _put_all(store, tenant_id, folder, files, 1)
    if store.durable:
        sync_dir(target.parent)
    return Published(len(files), sum(size for _, _, size in files))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_FILE_CHUNK):
            yield chunk


def _put_all(
    store: FileStore, tenant_id: str, folder: str, files: list[tuple[str, Path, int]], workers: int
) -> Published:
    """Put every file; on the first failure stop, delete what was put, and raise that failure."""

    def put_one(relative: str, path: Path, size: int) -> int:
        stored = store.put(
            tenant_id, f"{folder}/{relative}", _read_file(path), max_bytes=size, content_type=media_type_of(relative)
        )
        return stored.size

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        futures: list[Future[int]] = [pool.submit(put_one, *entry) for entry in files]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            for future in pending:
                future.cancel()
    if failed is not None:
        store.delete_folder(tenant_id, folder)
        raise failed.exception()  # type: ignore[misc]
    return Published(len(files), sum(f.result() for f in futures))
