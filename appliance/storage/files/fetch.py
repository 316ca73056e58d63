"""Bringing a stored file to the worker's disk: the uploaded ZIP, for the job that processes it.

With an object store the worker that runs `package.process` is rarely the one that received the
upload, and a ZIP must be read from a seekable local file (its central directory is at the end).
So the job first fetches the ZIP into its scratch folder, checking it against the SHA-256 the upload
recorded, then extracts and publishes (`publish.py`). The scratch copy is the job's to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from appliance.storage.files.base import FileStore


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
