"""A package version's content read through a FileStore: what the content route answers, decided here.

Today the player's content route (`appliance.faces.api.player`) resolves a URL path with
`appliance.services.library.content.resolve` and streams the file with ETag and Range. This module gives the same
answer from any store, so the route can move to it without a visible change:

- `find_version_file` applies `appliance.services.library.content.resolve`'s rules to the URL path (`..`, `.`, `:`,
  backslashes, NUL and absolute paths are "not found"; `a//b` and a trailing slash name `a/b`, as
  PurePosixPath reads them) and then asks the store, which refuses symlinks and anything outside the
  tenant on its own.
- `answer_content` makes the same decisions as the route's `_file_response`: 304 on a matching
  If-None-Match, 416 (with `Content-Range: bytes */size`) on an unsatisfiable range, 206 on a single
  range, else 200; the same ETag (a local store's is `appliance.services.library.content`'s own format), cache and
  range headers. The 416 error body stays the route's to write (the contract's error shape).
- With an object store configured `files_serve = "redirect"`, large media files (image, audio, video
  of at least `files_redirect_min_bytes`) are answered with a 302 to a presigned URL instead: the
  browser then fetches the bytes, ranges included, from the store. Everything else is streamed, since
  a course's pages must come from the player's origin to reach the SCORM API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from appliance.errors import NotFound
from appliance.services.library.content import media_type_of, parse_range
from appliance.storage.files.base import FileMissing, FileStat, FileStore, check_path
from appliance.storage.files.config import FilesConfig, S3FilesConfig

CACHE_CONTROL = "private, max-age=3600"
REDIRECT_TYPES = ("image/", "audio/", "video/")


@dataclass(frozen=True)
class RedirectPolicy:
    """When to answer with a signed URL instead of the bytes (from `S3FilesConfig`)."""

    expires_seconds: int = 60
    min_bytes: int = 1024 * 1024


def redirect_policy(config: FilesConfig) -> RedirectPolicy | None:
    """The redirect policy the `files` settings ask for (None: stream everything, as a local store does)."""
    if isinstance(config, S3FilesConfig) and config.serve == "redirect":
        return RedirectPolicy(expires_seconds=config.signed_url_seconds, min_bytes=config.redirect_min_bytes)
    return None


@dataclass(frozen=True)
class VersionFile:
    """One file of a package version, found in a store."""

    tenant_id: str
    path: str  # the store path: packages/<package id>/<version>/<relative>
    stat: FileStat
    media_type: str


@dataclass
class ContentAnswer:
    """What to send: a status, headers, and either a body to stream or nothing (304, 302, 416)."""

    status: int
    headers: dict[str, str]
    media_type: str | None = None
    body: Iterator[bytes] | None = field(default=None, repr=False)


def version_folder(package_id: str, version: int) -> str:
    """The store folder of one package version's extracted files (`DataDir.version_dir`'s layout)."""
    return f"packages/{package_id}/{int(version)}"


def content_path(relative: str) -> str:
    """A URL path of content as a tenant-relative path, or NotFound by `appliance.services.library.content.resolve`'s rules."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        raise NotFound("no such file")
    parts = PurePosixPath(relative).parts
    if any(part in ("..", ".") or ":" in part for part in parts):
        raise NotFound("no such file")
    return "/".join(parts)


def find_version_file(store: FileStore, tenant_id: str, package_id: str, version: int, relative: str) -> VersionFile:
    """The file at `relative` (a URL path) inside one package version, or NotFound."""
    path = check_path(f"{version_folder(package_id, version)}/{content_path(relative)}")
    try:
        found = store.stat(tenant_id, path)
    except FileMissing:
        raise NotFound("no such file") from None
    return VersionFile(tenant_id, path, found, media_type_of(path))


def answer_content(
    store: FileStore,
    found: VersionFile,
    *,
    range_header: str | None,
    if_none_match: str | None,
    framing: Mapping[str, str],
    redirect: RedirectPolicy | None = None,
) -> ContentAnswer:
    """The content route's answer for a found file (see the module docstring)."""
    size, etag = found.stat.size, found.stat.etag
    headers = {**framing, "ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": CACHE_CONTROL}
    if if_none_match == etag:
        return ContentAnswer(304, headers)
    url = _signed_url(store, found, redirect)
    if url is not None:
        return ContentAnswer(302, {**framing, "Location": url, "Cache-Control": "no-store"})
    try:
        wanted = parse_range(range_header, size)
    except ValueError:
        return ContentAnswer(416, {"Content-Range": f"bytes */{size}"})
    start, end = wanted if wanted else (0, size - 1)
    headers["Content-Length"] = str(max(0, end - start + 1))
    status = 200
    if wanted:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    body = store.read(found.tenant_id, found.path, start, end) if end >= start else iter(())
    return ContentAnswer(status, headers, found.media_type, body)


def _signed_url(store: FileStore, found: VersionFile, redirect: RedirectPolicy | None) -> str | None:
    if redirect is None or found.stat.size < redirect.min_bytes or not found.media_type.startswith(REDIRECT_TYPES):
        return None
    return store.signed_url(
        found.tenant_id, found.path, expires_seconds=redirect.expires_seconds, content_type=found.media_type
    )


async def stream_chunks(body: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A store's (blocking) chunk iterator as an async one, each read in a worker thread; the
    iterator is closed (its file or connection released) however the response ends."""
    sentinel = b""
    try:
        while chunk := await asyncio.to_thread(next, body, sentinel):
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
