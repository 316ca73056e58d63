"""The embedded file store: a data directory, laid out as `appliance.storage.datadir` describes.

A file of tenant T at path P is `<data_dir>/tenants/T/P`, so the store reads and writes the very files
the rest of the appliance uses today (`packages/<pkg>/<version>/…`, `uploads/<pkg>-<version>.zip`).
New files are written to `<data_dir>/tmp/` (emptied at every start) and renamed into place, so a path
shows either nothing or the whole file. With `durable` the file is fsynced before the rename and its
folder after it, as `appliance.services.library.archive` does for extracted packages.

Confinement goes beyond the path check of `base.check_path`: a file or folder is used only when its
real path (symlinks resolved) is exactly the expected one, so a symlink planted inside a tenant's
folder, pointing anywhere, makes that path "not found" rather than followed.

ETags are `"<size hex>-<mtime_ns hex>"`, the same validator `appliance.services.library.content` sends today, so moving
the content route onto this store changes no cached response.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_module
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance.ids import new_secret
from appliance.storage.files.base import (
    READ_CHUNK,
    Deleted,
    FileMissing,
    FileStat,
    FileStore,
    FileWriter,
    StoredFile,
    check_folder,
    check_path,
    check_tenant_id,
)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
DELETE_PASSES = 3  # walks of a folder being deleted while something writes into it


def local_etag(size: int, mtime_ns: int) -> str:
    """The strong validator of a file that never changes in place (appliance.services.library.content's format)."""
    return f'"{size:x}-{mtime_ns:x}"'


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalWriter(FileWriter):
    """Writes to a temp file in tmp/, renamed onto the target by `commit`."""

    def __init__(
        self,
        store: LocalFileStore,
        tenant_id: str,
        path: str,
        max_bytes: int,
        check_size: Callable[[int], None] | None,
    ) -> None:
        super().__init__(path, max_bytes, check_size)
        self._store = store
        self._tenant_id = tenant_id
        store.tmp.mkdir(parents=True, exist_ok=True)
        self._tmp = store.tmp / f"put-{new_secret(12)}.part"
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        self._file = os.fdopen(fd, "wb")
        self._done = False

    def _write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self) -> StoredFile:
        if self._done:
            raise RuntimeError("writer already finished")
        self._file.flush()
        if self._store.durable:
            os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.place(self._tenant_id, self.path)
        os.replace(self._tmp, target)
        if self._store.durable:
            _fsync_dir(target.parent)
        self._done = True
        info = os.stat(target, follow_symlinks=False)
        return StoredFile(self.path, self.size, self.sha256, local_etag(info.st_size, info.st_mtime_ns))

    def abort(self) -> None:
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class LocalFileStore(FileStore):
    """Files under a data directory; `durable` (the `durability` setting) fsyncs what it writes."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable

    @property
    def tmp(self) -> Path:
        """Where files being written wait (`DataDir.tmp`)."""
        return self.root / "tmp"

    def _tenant_dir(self, tenant_id: str) -> Path:
        return self.root / "tenants" / check_tenant_id(tenant_id)

    def _expected(self, tenant_id: str, relative: str) -> tuple[Path, Path]:
        """(the path as named, the real path it must resolve to) for a checked relative path."""
        tenant_dir = self._tenant_dir(tenant_id)
        parts = relative.split("/") if relative else []
        real_tenant_dir = tenant_dir.parent.resolve() / tenant_dir.name  # the tenant's folder may not be a link
        return tenant_dir.joinpath(*parts), real_tenant_dir.joinpath(*parts)

    def _existing(self, tenant_id: str, relative: str) -> Path | None:
        """The real path of an existing file or folder there, None if missing; FileMissing if it
        escapes through a symlink (anything but exactly the expected real path)."""
        named, expected = self._expected(tenant_id, relative)
        try:
            real = named.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # a symlink loop, a name too long
            raise FileMissing("no such file") from exc
        if real != expected:
            raise FileMissing("no such file")
        return real

    def _file(self, tenant_id: str, path: str) -> tuple[Path, os.stat_result]:
        real = self._existing(tenant_id, check_path(path))
        if real is None:
            raise FileMissing("no such file")
        try:
            info = os.stat(real, follow_symlinks=False)
        except FileNotFoundError as exc:  # removed a moment ago (by another worker's delete)
            raise FileMissing("no such file") from exc
        if not stat_module.S_ISREG(info.st_mode):
            raise FileMissing("no such file")
        return real, info

    def place(self, tenant_id: str, path: str) -> Path:
        """The target of a new file: its folders created (and synced when durable), none a symlink."""
        named, expected = self._expected(tenant_id, check_path(path))
        self._make_folder(named.parent, expected.parent)
        return expected

    def place_folder(self, tenant_id: str, folder: str) -> Path:
        """Where a folder is to be renamed into place: the folders above it created and confined."""
        folder = check_folder(folder)
        if not folder:
            raise ValueError("a tenant's whole space is not a folder to place")
        named, expected = self._expected(tenant_id, folder)
        self._make_folder(named.parent, expected.parent)
        return expected

    def _make_folder(self, named: Path, expected: Path) -> None:
        created: list[Path] = []
        folder = named
        while not folder.exists():
            created.append(folder)
            folder = folder.parent
        named.mkdir(parents=True, exist_ok=True)
        if named.resolve(strict=True) != expected:
            raise FileMissing("no such file")
        if self.durable:
            for new in created:
                _fsync_dir(new.parent)

    def writer(
        self,
        tenant_id: str,
        path: str,
        *,
        max_bytes: int,
        check_size: Callable[[int], None] | None = None,
        content_type: str | None = None,
    ) -> FileWriter:
        check_tenant_id(tenant_id)
        return _LocalWriter(self, tenant_id, check_path(path), max_bytes, check_size)

    def stat(self, tenant_id: str, path: str) -> FileStat:
        _, info = self._file(tenant_id, path)
        return FileStat(path, info.st_size, local_etag(info.st_size, info.st_mtime_ns), info.st_mtime)

    def read(self, tenant_id: str, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        real, info = self._file(tenant_id, path)
        last = info.st_size - 1 if end is None else min(end, info.st_size - 1)
        return _read_range(real, start, last - start + 1)

    def list(self, tenant_id: str, folder: str = "") -> Iterator[FileStat]:
        """Files under `folder`. The tenant's whole space ("") holds its database files here too
        (`tenant.db` and its WAL), which are not the store's: list `packages` or `uploads` instead."""
        folder = check_folder(folder)
        real = self._existing(tenant_id, folder)
        if real is None or not real.is_dir():
            return iter(())
        found: list[FileStat] = []
        for dirpath, _dirs, names in os.walk(real):  # does not descend into symlinked folders
            for name in names:
                full = Path(dirpath) / name
                info = os.stat(full, follow_symlinks=False)
                if stat_module.S_ISREG(info.st_mode):
                    relative = full.relative_to(real).as_posix()
                    found.append(
                        FileStat(
                            f"{folder}/{relative}" if folder else relative,
                            info.st_size,
                            local_etag(info.st_size, info.st_mtime_ns),
                            info.st_mtime,
                        )
                    )
        return iter(sorted(found, key=lambda f: f.path))

    def delete(self, tenant_id: str, path: str) -> Deleted:
        try:
            real, info = self._file(tenant_id, path)
        except FileMissing:
            return Deleted(0, 0)
        try:
            real.unlink()
        except FileNotFoundError:  # another worker deleted it first: it freed the bytes, not this call
            return Deleted(0, 0)
        if self.durable:
            _fsync_dir(real.parent)
        return Deleted(1, info.st_size)

    def delete_folder(self, tenant_id: str, folder: str) -> Deleted:
        folder = check_folder(folder)
        if not folder:
            raise ValueError("delete_folder needs a folder: a tenant's whole space is not deleted this way")
        real = self._existing(tenant_id, folder)
        if real is None or not real.is_dir():  # a file's path is no folder: nothing under it, as on S3
            return Deleted(0, 0)
        # Another worker may delete the same folder at the same time (the orphaned-files sweep runs on
        # every worker): whatever it removed first is skipped here, and counted by it alone. Something may
        # also write into the folder while it is walked (a job publishing a version of the package being
        # deleted): the walk is made again; what a writer still adds after that is an orphan, which the
        # orphaned-files sweep removes (its version has no row).
        files = freed = 0
        for _ in range(DELETE_PASSES):
            removed, size = _delete_tree(real)
            files, freed = files + removed, freed + size
            try:
                real.rmdir()
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise
                continue
            break
        if self.durable and real.parent.is_dir():
            _fsync_dir(real.parent)
        return Deleted(files, freed)


def _delete_tree(real: Path) -> tuple[int, int]:
    """Remove what is under `real`, bottom up: (regular files removed, their bytes). A file or folder
    already gone is skipped; a folder that something filled meanwhile is left for the next pass."""
    files = freed = 0
    for dirpath, dirs, names in os.walk(real, topdown=False):
        for name in names:
            full = Path(dirpath) / name
            try:
                info = os.stat(full, follow_symlinks=False)
                full.unlink()  # a symlink is removed, never followed; it held no bytes of ours
            except FileNotFoundError:
                continue
            if stat_module.S_ISREG(info.st_mode):
                files, freed = files + 1, freed + info.st_size
        for name in dirs:
            full = Path(dirpath) / name
            try:
                (full.unlink if full.is_symlink() else full.rmdir)()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:
                    raise
    return files, freed


def _read_range(real: Path, start: int, length: int) -> Iterator[bytes]:
    """Yield `length` bytes from `start`. The file is opened on the first `next`, so an iterator
    never started holds no descriptor; it is closed however the iteration ends."""
    fd = os.open(real, os.O_RDONLY | _NOFOLLOW)
    try:
        os.lseek(fd, start, os.SEEK_SET)
        remaining = length
        while remaining > 0:
            chunk = os.read(fd, min(READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        os.close(fd)
