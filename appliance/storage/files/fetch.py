"""Bringing a stored file to the worker's disk: the uploaded ZIP, for the job that processes it.

With an object store the worker that runs `package.process` is rarely the one that received the
upload, and a ZIP must be read from a seekable local file (its central directory is at the end).
So the job first fetches the ZIP into its scratch folder, checking it against the SHA-256 the upload
recorded, then extracts and publishes (`publish.py`). The scratch copy is the job's to delete.

`open_stored` reads a stored file in place instead, seeking by ranged reads: the upload route's
check that a body is a readable ZIP reads only its central directory that way.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path
from typing import Any

from appliance.storage.files.base import FileStore

READ_AHEAD = 1024 * 1024  # a ranged read of `open_stored`: a 50,000-entry central directory is ~5 of them


class ChecksumMismatch(Exception):
    """The fetched bytes are not the ones the upload stored (damage in the store or on the way)."""


def fetch_to(store: FileStore, tenant_id: str, path: str, dest: Path, *, expected_sha256: str | None = None) -> int:
    """Copy the stored file at `path` to a new file `dest`; its size. On any failure (a missing file,
    a checksum that does not match) `dest` is removed before the exception propagates."""
    digest = hashlib.sha256()
    size = 0
    chunks = store.read(tenant_id, path)  # FileMissing before `dest` exists
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise ChecksumMismatch(f"{path}: SHA-256 {digest.hexdigest()}, the upload recorded {expected_sha256}")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        raise
    return size


class StoredFileReader(io.RawIOBase):
    """A stored file as a seekable binary file, each read one ranged read of the store.

    For what reads a few parts of a large file in place: the upload check reads a ZIP's central
    directory (at its end) this way, without bringing the whole upload to the worker. Wrap it in
    `io.BufferedReader` (as `open_stored` does) so small reads share ranged GETs.
    """

    def __init__(self, store: FileStore, tenant_id: str, path: str, size: int | None = None) -> None:
        super().__init__()
        self._store, self._tenant_id, self._path = store, tenant_id, path
        self._size = store.stat(tenant_id, path).size if size is None else size  # FileMissing here
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the file")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._pos)
        if wanted <= 0:
            return 0
        data = b"".join(self._store.read(self._tenant_id, self._path, self._pos, self._pos + wanted - 1))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_stored(store: FileStore, tenant_id: str, path: str, *, size: int | None = None) -> io.BufferedReader:
    """A stored file opened for seekable reading, in 1 MiB ranged reads (see StoredFileReader)."""
    return io.BufferedReader(StoredFileReader(store, tenant_id, path, size), buffer_size=READ_AHEAD)
