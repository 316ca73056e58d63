"""Receiving an upload straight into a FileStore: the request body streamed to S3 while it arrives.

`appliance.services.library.upload.receive_upload` stages a body in the data directory's tmp/; this is the same
reception (a raw `application/zip` body, or `multipart/form-data` with the ZIP in field `file` and
small text fields) with the bytes going to a `FileWriter` instead, so an object store receives an
upload as a multipart upload of 8 MiB parts while the client is still sending it. The multipart
parsing is `appliance.services.library.upload`'s own (`_receive_multipart`), so both paths accept and refuse the same
bodies with the same errors.

Chunks are gathered into batches of about `appliance.services.library.upload.WRITE_BUFFER` (1 MiB) and written in a
worker thread: hashing, and for S3 sending a part, never block the event loop. On any failure (too
large, a quota check, a broken body, a client gone) the writer is aborted: nothing is left at the path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from appliance.errors import PayloadTooLarge, ValidationFailed
from appliance.services.library.upload import WRITE_BUFFER, _receive_multipart, boundary_of
from appliance.storage.files.base import FileStore, FileWriter, StoredFile


@dataclass(frozen=True)
class ReceivedFile:
    """An upload stored at its path, with the form's file name and text fields (multipart only)."""

    stored: StoredFile
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _StoreSink:
    """The `write` that `appliance.services.library.upload._receive_multipart` feeds, batching into a FileWriter."""

    def __init__(self, writer: FileWriter, check_size: Callable[[int], None] | None) -> None:
        self.writer = writer
        self.check_size = check_size
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.writer.max_bytes:  # refused on the chunk that crosses, before it is batched
            raise PayloadTooLarge(
                "upload exceeds the maximum size", {"limit_bytes": self.writer.max_bytes, "received_bytes": self.size}
            )
        if self.check_size is not None:
            self.check_size(self.size)
        self._pending.append(bytes(chunk))
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= WRITE_BUFFER:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            data, self._pending, self._pending_bytes = b"".join(self._pending), [], 0
            await asyncio.to_thread(self.writer.write, data)


async def receive_into_store(
    stream: AsyncIterator[bytes],
    content_type: str,
    store: FileStore,
    tenant_id: str,
    path: str,
    max_bytes: int,
    *,
    check_size: Callable[[int], None] | None = None,
) -> ReceivedFile:
    """Stream a request body to `path` in `store`; raises PayloadTooLarge or ValidationFailed (or what
    `check_size(bytes_so_far)` raises), leaving nothing, as `appliance.services.library.upload.receive_upload` does."""
    writer = store.writer(tenant_id, path, max_bytes=max_bytes, content_type="application/zip")
    sink = _StoreSink(writer, check_size)  # checked here, on every chunk as it arrives, not per batch
    try:
        boundary = boundary_of(content_type or "")
        filename, fields = None, {}
        if boundary is None:
            async for chunk in stream:
                await sink.write(chunk)
        else:
            filename, fields = await _receive_multipart(stream, boundary, sink)  # type: ignore[arg-type]
        if sink.size == 0:
            raise ValidationFailed("the upload is empty", {"errors": [{"field": "file", "message": "empty body"}]})
        await sink.flush()
        stored = await asyncio.to_thread(writer.commit)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(writer.abort))
        raise
    return ReceivedFile(stored, filename, fields)
