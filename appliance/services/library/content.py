"""Serving a package version's files: path confinement, content types, ETags and byte ranges.

Paths come from URLs (already percent-decoded once by the router). Anything that could leave the
version's folder — `..`, absolute paths, backslashes, NUL, symlinks — is simply not found.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from appliance.errors import NotFound

EXTRA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".xml": "application/xml",
    ".xsd": "application/xml",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".vtt": "text/vtt",
    ".mp3": "audio/mpeg",
    ".swf": "application/x-shockwave-flash",
    ".htm": "text/html",
    ".html": "text/html",
    ".css": "text/css",
    ".txt": "text/plain",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ContentFile:
    """A resolved file inside a version folder."""

    path: Path
    size: int
    mtime_ns: int
    media_type: str

    @property
    def etag(self) -> str:
        """A strong validator: version files never change in place."""
        return f'"{self.size:x}-{self.mtime_ns:x}"'


def media_type_of(name: str) -> str:
    """The Content-Type for a file name (Litestar adds the charset of text types)."""
    suffix = PurePosixPath(name).suffix.lower()
    return EXTRA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def resolve(root: Path, relative: str) -> ContentFile:
    """The file at `relative` inside `root`, or NotFound for anything outside or missing."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        raise NotFound("no such file")
    parts = PurePosixPath(relative).parts
    if any(part in ("..", ".") or ":" in part for part in parts):
        raise NotFound("no such file")
    base = root.resolve()
    candidate = base.joinpath(*parts)
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, OSError) as exc:
        raise NotFound("no such file") from exc
    if not real.is_relative_to(base) or not real.is_file() or candidate.is_symlink():
        raise NotFound("no such file")
    stat = real.stat()
    return ContentFile(real, stat.st_size, stat.st_mtime_ns, media_type_of(real.name))


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range as (start, end inclusive); None to send the whole file.

    Multi-range and malformed headers are ignored (the whole file is sent, as RFC 9110 allows);
    an unsatisfiable range raises ValueError (answered with 416).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise ValueError("range not satisfiable")
    return start, min(end, size - 1)
