"""What the services need from a file store, whatever holds the bytes: a directory or an object store.

Every file belongs to one tenant and is named by a path inside that tenant's space, such as
`packages/pkg_x/3/index.html` or `uploads/pkg_x-3.zip`. A store turns (tenant id, path) into its own
key, `tenants/{tenant_id}/{path}`, through `tenant_key` and nowhere else. Both parts are checked there:
a tenant id is letters, digits, `_` and `-` only, and a path is a relative POSIX path without `..`, `.`,
empty components, backslashes, NUL or control characters. So a path taken from a request can name only
a file of the tenant the caller already chose; it cannot climb into another tenant's keys.

Folders ("prefixes") are paths too, matched whole: deleting `packages/pkg_1` never touches
`packages/pkg_10/`.

The interface is synchronous, like the SQLite layer's: callers on the event loop run it in a worker
thread (`asyncio.to_thread`), as `appliance.services.library.upload` and the content route already do for disk I/O.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from appliance.errors import NotFound, PayloadTooLarge

__all__ = [
    "READ_CHUNK",
    "Deleted",
    "FileMissing",
    "FileStat",
    "FileStore",
    "FileWriter",
    "StoredFile",
    "check_folder",
    "check_path",
    "check_tenant_id",
    "tenant_folder_key",
    "tenant_key",
]

READ_CHUNK = 256 * 1024  # what a ranged read yields at a time: the content route's chunk size
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_PATH = 1024  # S3's key limit is 1024 bytes; the tenant prefix comes on top, checked in tenant_key


class FileMissing(NotFound):
    """No file at that path (or one the store refuses to show, such as a symlink): the contract's NOT_FOUND."""


@dataclass(frozen=True)
class FileStat:
    """One stored file: its tenant-relative path, size, a strong ETag (quoted) and modification time."""

    path: str
    size: int
    etag: str
    mtime: float  # seconds since the epoch


@dataclass(frozen=True)
class StoredFile:
    """What a finished put wrote: the SHA-256 is of the bytes received, computed while they streamed."""

    path: str
    size: int
    sha256: str
    etag: str


@dataclass(frozen=True)
class Deleted:
    """What a delete freed, counted file by file as they went: what the quota accounting subtracts."""

    files: int
    bytes: int


def check_tenant_id(tenant_id: str) -> str:
    """The tenant id, or ValueError: ids are generated (`ten_…`), so anything else is a caller bug."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise ValueError(f"bad tenant id {tenant_id!r}")
    return tenant_id


def check_path(path: str) -> str:
    """A file's tenant-relative path, or FileMissing for anything that could leave the tenant's space.

    Refusals are "not found" rather than a validation error because paths come from URLs of content:
    a traversal attempt should look exactly like a missing file.
    """
    if (
        not isinstance(path, str)
        or not path
        or len(path.encode("utf-8", "surrogatepass")) > _MAX_PATH
        or path.startswith("/")
        or path.endswith("/")
        or "\\" in path
        or _CONTROL.search(path)
    ):
        raise FileMissing("no such file")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise FileMissing("no such file")
    return path


def check_folder(folder: str) -> str:
    """A folder's tenant-relative path without its trailing slash ("" is the tenant's whole space)."""
    folder = folder.rstrip("/") if isinstance(folder, str) else folder
    return "" if folder == "" else check_path(folder)


def tenant_key(tenant_id: str, path: str) -> str:
    """The one place a store key is formed: `tenants/{tenant_id}/{path}`, both parts checked."""
    return f"tenants/{check_tenant_id(tenant_id)}/{check_path(path)}"


def tenant_folder_key(tenant_id: str, folder: str) -> str:
    """The key prefix of a tenant's folder, with its trailing slash, so it matches whole folders only."""
    folder = check_folder(folder)
    base = f"tenants/{check_tenant_id(tenant_id)}/"
    return base + folder + "/" if folder else base


class FileWriter(ABC):
    """A file being written from a stream: `write` chunks, then `commit` once, or `abort`.

    Until `commit` returns, nothing is visible at the path (a local temp file, or an unfinished S3
    multipart upload); `abort` (also after a failed `write`) removes every trace. `write` raises
    PayloadTooLarge past `max_bytes`, and whatever `check_size(bytes_so_far)` raises (a quota check).
    """

    def __init__(self, path: str, max_bytes: int, check_size: Callable[[int], None] | None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.check_size = check_size
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        """Count, check, hash and pass on one chunk."""
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(
                "upload exceeds the maximum size", {"limit_bytes": self.max_bytes, "received_bytes": self.size}
            )
        if self.check_size is not None:
            self.check_size(self.size)
        self._hash.update(chunk)
        self._write(bytes(chunk))

    @property
    def sha256(self) -> str:
        """The SHA-256 (hex) of everything written so far."""
        return self._hash.hexdigest()

    @abstractmethod
    def _write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> StoredFile:
        """Make the file visible at its path, durably as the store promises; the writer is then done."""

    @abstractmethod
    def abort(self) -> None:
        """Throw away what was written (idempotent, never raises for a missing part)."""


class FileStore(ABC):
    """Files of every tenant. See the module docstring for paths and folders."""

    @abstractmethod
    def writer(
        self,
        tenant_id: str,
        path: str,
        *,
        max_bytes: int,
        check_size: Callable[[int], None] | None = None,
        content_type: str | None = None,
    ) -> FileWriter:
        """A writer for a new file at `path` (replacing any file there once committed)."""

    def put(
        self,
        tenant_id: str,
        path: str,
        chunks: Iterable[bytes],
        *,
        max_bytes: int,
        check_size: Callable[[int], None] | None = None,
        content_type: str | None = None,
    ) -> StoredFile:
        """Stream `chunks` into a new file; on any error (the iterable's own too) nothing is left."""
        writer = self.writer(tenant_id, path, max_bytes=max_bytes, check_size=check_size, content_type=content_type)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    @abstractmethod
    def stat(self, tenant_id: str, path: str) -> FileStat:
        """The file's size, ETag and mtime, or FileMissing."""

    @abstractmethod
    def read(self, tenant_id: str, path: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes `start`..`end` (inclusive; None: to the end) in chunks of up to READ_CHUNK.

        FileMissing is raised by the call itself, before iteration, so a caller can still answer 404.
        """

    def read_bytes(self, tenant_id: str, path: str) -> bytes:
        """The whole file at once, for small files (a manifest)."""
        return b"".join(self.read(tenant_id, path))

    @abstractmethod
    def list(self, tenant_id: str, folder: str = "") -> Iterator[FileStat]:
        """Every file under `folder` (recursively), in path order."""

    @abstractmethod
    def delete(self, tenant_id: str, path: str) -> Deleted:
        """Remove one file; deleting a missing file frees nothing and is not an error."""

    @abstractmethod
    def delete_folder(self, tenant_id: str, folder: str) -> Deleted:
        """Remove every file under a (non-empty) folder, and report exactly what that freed."""

    def abort_unfinished(self, tenant_id: str, folder: str, *, started_before: float) -> int:
        """Abort the unfinished writes under `folder` that received nothing since `started_before`
        (seconds since the epoch): a writer killed mid-body. Return how many. An object store keeps such
        a write's parts (and bills them) until it is aborted; a local store has none to abort here: its
        unfinished writes are temp files in the data directory's tmp/, emptied at every start."""
        tenant_folder_key(tenant_id, folder)  # the same refusals as on a store that has some
        return 0

    def signed_url(
        self, tenant_id: str, path: str, *, expires_seconds: int, content_type: str | None = None
    ) -> str | None:
        """A short-lived URL a browser can fetch the file from directly (with Range and If-None-Match),
        or None when the store cannot give one (a local directory: stream the file instead)."""
        tenant_key(tenant_id, path)  # the same refusals as every other method, URL or not
        return None
