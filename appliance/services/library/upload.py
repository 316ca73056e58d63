"""Receiving an upload: a request body streamed to a staged file in constant memory, hashed as it goes.

Accepts a raw `application/zip` body or `multipart/form-data` with the ZIP in field `file` (and an
optional `title`). The staged file lives under tmp/; the caller moves it or it is deleted here on any
failure, so a refused or broken upload leaves nothing behind. (With an object store configured the
same reception streams into the store instead: `appliance.storage.files.receive`, on this parser.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import multipart

from appliance.errors import PayloadTooLarge, ValidationFailed
from appliance.ids import new_secret
from appliance.storage.files.base import FileStore

WRITE_BUFFER = 1024 * 1024  # hash and write in 1 MiB batches, in a worker thread (off the event loop)
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class StagedUpload:
    """A received file, with its size and SHA-256: on disk at `path` (the data directory's store), or
    already in an object store at `stored` (`store_path` in the tenant's space), streamed there as it
    arrived (`appliance.storage.files.receive`)."""

    path: Path | None
    size: int
    sha256: str
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    stored: StoredUpload | None = None

    def discard(self) -> None:
        """Delete the staged file (idempotent)."""
        if self.stored is not None:
            self.stored.store.delete(self.stored.tenant_id, self.stored.path)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


@dataclass(frozen=True)
class StoredUpload:
    """Where in a file store an upload was received."""

    store: FileStore
    tenant_id: str
    path: str


class _Sink:
    """Writes chunks to a new file, hashing and counting, with a size cap and optional checks: of the
    size so far on every chunk, and of each batch's size just before it is written (free disk space)."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        check_size: Callable[[int], None] | None = None,
        check_write: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.check_size = check_size
        self.check_write = check_write
        self.size = 0
        self.hash = hashlib.sha256()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(
                "upload exceeds the maximum size", {"limit_bytes": self.max_bytes, "received_bytes": self.size}
            )
        if self.check_size is not None:
            self.check_size(self.size)
        self._pending.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= WRITE_BUFFER:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            chunks, self._pending, self._pending_bytes = self._pending, [], 0
            await asyncio.to_thread(self._write_sync, chunks)

    def _write_sync(self, chunks: list[bytes]) -> None:
        """Hash and write a batch. In a worker thread: SHA-256 of a 1 GB upload is most of a second of
        CPU, and both hashlib and the write release the GIL, so the event loop keeps serving meanwhile."""
        data = b"".join(chunks)
        if self.check_write is not None:
            self.check_write(len(data))
        for chunk in chunks:
            self.hash.update(chunk)
        self._file.write(data)

    async def close(self) -> None:
        await self.flush()
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def boundary_of(content_type: str) -> str | None:
    """The multipart boundary from a Content-Type header, or None when it is not multipart."""
    kind, params = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data":
        return None
    boundary = params.get("boundary")
    if not boundary:
        raise ValidationFailed("multipart body without a boundary", {"errors": [{"field": "content-type"}]})
    return boundary


async def receive_upload(
    stream: AsyncIterator[bytes],
    content_type: str,
    tmp_dir: Path,
    max_bytes: int,
    *,
    check_size: Callable[[int], None] | None = None,
    check_write: Callable[[int], None] | None = None,
) -> StagedUpload:
    """Stream a request body into tmp_dir; raises PayloadTooLarge or ValidationFailed, leaving nothing.

    `check_size(bytes_so_far)` runs after every chunk of the file and may raise (e.g. QuotaExceeded) to
    stop the upload as soon as it can no longer be accepted; the partial file is then deleted too.
    `check_write(batch_bytes)` runs before each batch (about WRITE_BUFFER bytes) reaches the disk, in
    the writing thread, and may raise the same way (e.g. InsufficientStorage).
    """
    path = tmp_dir / f"upload-{new_secret(12)}.part"
    sink = _Sink(path, max_bytes, check_size, check_write)
    try:
        boundary = boundary_of(content_type or "")
        if boundary is None:
            filename, fields = None, {}
            async for chunk in stream:
                await sink.write(chunk)
        else:
            filename, fields = await _receive_multipart(stream, boundary, sink)
        if sink.size == 0:
            raise ValidationFailed("the upload is empty", {"errors": [{"field": "file", "message": "empty body"}]})
        await sink.close()
    except BaseException:
        sink.abort()
        raise
    return StagedUpload(path=path, size=sink.size, sha256=sink.hash.hexdigest(), filename=filename, fields=fields)


async def _receive_multipart(
    stream: AsyncIterator[bytes], boundary: str, sink: _Sink
) -> tuple[str | None, dict[str, str]]:
    """Write the `file` part to the sink, keep small text fields; other file parts are refused."""
    fields: dict[str, str] = {}
    filename: str | None = None
    seen_file = False
    current: multipart.MultipartSegment | None = None
    text = bytearray()
    try:
        with multipart.PushMultipartParser(boundary, max_segment_count=20) as parser:
            async for chunk in stream:
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        current, text = event, bytearray()
                        if event.name == "file":
                            if seen_file:
                                raise ValidationFailed("more than one `file` part", {"errors": [{"field": "file"}]})
                            seen_file, filename = True, event.filename
                    elif event is None:
                        if current is not None and current.name != "file":
                            fields[current.name] = text.decode("utf-8", "replace")
                        current = None
                    elif current is not None and current.name == "file":
                        await sink.write(event)
                    else:
                        text += event
                        if len(text) > MAX_FIELD_BYTES:
                            raise ValidationFailed(
                                "a form field is too large", {"errors": [{"field": current.name if current else ""}]}
                            )
    except multipart.MultipartError as exc:
        raise ValidationFailed(f"malformed multipart body: {exc}", {"errors": [{"field": "file"}]}) from exc
    if not seen_file:
        raise ValidationFailed(
            "multipart upload needs the ZIP in a field named `file`",
            {"errors": [{"field": "file", "message": "missing"}]},
        )
    return filename, fields
