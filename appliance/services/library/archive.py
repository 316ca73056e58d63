"""Safe inspection and extraction of uploaded SCORM package ZIPs.

An uploaded package is hostile input: its entry names can point outside the destination ("../x", "/etc/x",
"C:\\x"), its entries can claim to be symlinks or devices, and its headers can lie about sizes to smuggle a
zip bomb past a size check. `zipfile.extractall` defends against only part of that, so this module and
`archive_inspection` (its first half, re-exported here) own the whole policy:

1. `inspect_archive` checks everything the central directory declares, before a single byte is written:
   names, entry types, encryption, compression method, declared sizes against `ArchiveLimits`,
   compression ratios, duplicate and case-colliding names, and entries whose data would overlap.
2. `extract_archive` then streams each member in fixed-size chunks, counts the bytes it actually
   writes (never trusting a declared size), confines every path to the destination, creates files with
   O_EXCL|O_NOFOLLOW, and on any failure removes the destination folder so a failed upload leaves
   nothing behind.

Behaviour decisions, so callers and reviewers need not rediscover them:

- Backslashes are path separators (Windows tools write them); names are checked after converting them.
- Any ".." component is refused, even one that would stay inside ("a/../b"): no legitimate package needs
  it and refusing is simpler to reason about than resolving.
- Names without the ZIP UTF-8 flag are decoded as UTF-8 when their bytes are valid UTF-8 (many tools write
  UTF-8 without setting the flag, and the manifest's hrefs are UTF-8), otherwise as cp437 as the ZIP
  specification says. Either way the decoded name must still be a safe relative path. Names that claim
  UTF-8 but are not valid UTF-8 make the central directory unreadable: INVALID_PACKAGE.
- Duplicate file names and file names that differ only in case or Unicode normalisation ("A.html" vs
  "a.html") are refused: which one wins would depend on the file system, so the extracted course could
  differ between a case-sensitive server and a case-insensitive one. Repeated directory entries are
  harmless and allowed, and so are differently cased directories holding different files ("A/x", "a/y").
- Only stored and deflated members are accepted. zipfile decompresses bzip2 and LZMA without an output
  bound per call, so one small read could allocate gigabytes; SCORM authoring tools do not use them.
- Permissions, owners and timestamps in the ZIP are ignored: files are created 0644 and folders 0755 (both
  subject to the umask), so a package can never ship an executable or setuid file.
- `__MACOSX/` folders and `.DS_Store` files are checked like everything else but never extracted.
- Every extracted file and folder is fsynced before `extract_archive` returns, so once the caller has
  renamed the destination into place and synced the parent (`sync_dir`), the files survive power loss.
  Files are synced after all are written, not one by one: the kernel writes them back together and
  each fsync then mostly waits for what is already on its way (about half the time on ext4).
"""

from __future__ import annotations

import copy
import os
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import IO

from appliance.services.library.archive_inspection import (
    _CHUNK_SIZE,
    _CORRUPT_ERRORS,
    DEFAULT_LIMITS,
    QUOTA_EXCEEDED,
    ArchiveError,
    ArchiveLimits,
    ExtractResult,
    MemberInfo,
    _check_members,
    _Entry,
    _invalid,
    _is_junk,
    _normalise_name,
    _open_zip,
    _unsafe,
    inspect_archive,
    list_names,
)

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveError",
    "ArchiveLimits",
    "ExtractResult",
    "MemberInfo",
    "extract_archive",
    "inspect_archive",
    "list_names",
    "sync_dir",
]

_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
) | getattr(os, "O_BINARY", 0)


def _prefix_parts(strip_prefix: str) -> list[str]:
    """The prefix's components; surrounding slashes are tolerated ("/course/" is "course")."""
    try:
        name, _ = _normalise_name(strip_prefix.strip("/\\"), DEFAULT_LIMITS)
    except ArchiveError as exc:
        raise ValueError(f"strip_prefix {strip_prefix!r} is not a safe relative folder") from exc
    return name.split("/") if name else []


def _output_name(info: MemberInfo, prefix: list[str]) -> str | None:
    """Where a member lands relative to the destination; None when it is not extracted at all."""
    if info.is_dir or _is_junk(info.name):
        return None
    parts = info.name.split("/")
    if parts[: len(prefix)] != prefix:
        return None
    return "/".join(parts[len(prefix) :]) or None


def _claim_destination(dest: Path) -> None:
    """Create `dest`, or accept it if it is an existing empty real folder; anything else is a caller bug."""
    try:
        dest.mkdir(mode=0o755)
    except FileExistsError:
        if dest.is_symlink() or not dest.is_dir() or any(dest.iterdir()):
            raise ValueError(f"destination {str(dest)!r} exists and is not an empty folder") from None


def _open_target(root: Path, relative: str, raw: str, verified: set[Path]) -> int:
    """Create the file for `relative` under `root` and return its descriptor, refusing any escape.

    `verified` holds folders already created and resolved inside `root` during this extraction: only
    files are ever created (never links), so a folder checked once stays inside, and a package of
    20,000 files does not resolve the same folders 40,000 times.
    """
    target = root.joinpath(*relative.split("/"))
    parent = target.parent
    if parent not in verified:
        if not parent.resolve().is_relative_to(root):
            raise _unsafe("path_traversal", "would be written outside the destination", raw)
        parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if not parent.resolve(strict=True).is_relative_to(root):
            raise _unsafe("path_traversal", "would be written outside the destination", raw)
        verified.add(parent)
    try:
        return os.open(target, _CREATE_FLAGS, 0o644)
    except FileExistsError as exc:
        raise _unsafe("duplicate_name", "a file of this name was already extracted", raw) from exc


def _over_quota(quota_bytes: int, requested: int, message: str) -> ArchiveError:
    details = {"reason": "quota", "quota_bytes": quota_bytes, "requested_bytes": requested}
    return ArchiveError(QUOTA_EXCEEDED, f"storage quota exceeded: {message}", details)


def _check_room(entries: list[_Entry], prefix: list[str], limits: ArchiveLimits) -> None:
    """Refuse, before writing anything, files whose declared sizes together exceed `quota_bytes`."""
    if limits.quota_bytes is None:
        return
    declared = sum(e.zinfo.file_size for e in entries if _output_name(e.info, prefix) is not None)
    if declared > limits.quota_bytes:
        raise _over_quota(
            limits.quota_bytes, declared, f"the files declare {declared} bytes, {limits.quota_bytes} are left"
        )


def _check_written(entry: _Entry, written: int, total: int, limits: ArchiveLimits) -> None:
    """Enforce the limits on bytes actually produced, whatever the headers declared."""
    raw = entry.raw_name
    if limits.quota_bytes is not None and total + written > limits.quota_bytes:
        raise _over_quota(
            limits.quota_bytes, total + written, f"more than the {limits.quota_bytes} bytes left were written"
        )
    if written > entry.zinfo.file_size:
        raise _unsafe(
            "size_mismatch",
            f"decompresses to more than its declared {entry.zinfo.file_size} bytes (lying header)",
            raw,
        )
    if written > limits.max_member_size:
        raise _unsafe("member_size", f"is larger than the limit of {limits.max_member_size} bytes", raw)
    if total + written > limits.max_total_uncompressed:
        raise _unsafe("total_size", f"the archive is larger than {limits.max_total_uncompressed} bytes", raw)


def _open_member(zf: zipfile.ZipFile, entry: _Entry) -> IO[bytes]:
    """A reader that will yield one byte more than declared if the data holds more, so lies are caught.

    zipfile caps its output at the declared size and then blames the CRC (or, if the liar supplied the CRC
    of the truncated data, says nothing at all); asking for one more byte turns "the data is bigger than
    the header says" into a clear UNSAFE_ARCHIVE instead. Without a CRC on the probe zipfile skips its own
    check, so `_copy_member` verifies the CRC itself. Output per read stays bounded because deflate is
    decompressed with a max_length.
    """
    probe = copy.copy(entry.zinfo)
    probe.file_size = entry.zinfo.file_size + 1
    del probe.CRC  # zipfile would check the CRC of those declared+1 bytes and blame it; _copy_member checks it
    try:
        return zf.open(probe)
    except _CORRUPT_ERRORS as exc:
        raise _invalid("corrupt", f"cannot be read ({exc})", entry.raw_name) from exc


def _read_chunk(src: IO[bytes], entry: _Entry) -> bytes:
    try:
        return src.read(_CHUNK_SIZE)
    except _CORRUPT_ERRORS as exc:
        raise _invalid("corrupt", f"data is corrupt ({exc})", entry.raw_name) from exc


def _copy_member(zf: zipfile.ZipFile, entry: _Entry, out: IO[bytes], total: int, limits: ArchiveLimits) -> int:
    """Stream one member into `out` in constant memory; the number of bytes written."""
    written = 0
    crc = 0
    with _open_member(zf, entry) as src:
        while chunk := _read_chunk(src, entry):
            written += len(chunk)
            _check_written(entry, written, total, limits)
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    if written != entry.zinfo.file_size:
        raise _invalid(
            "size_mismatch", f"holds {written} bytes, not the declared {entry.zinfo.file_size}", entry.raw_name
        )
    if crc != entry.zinfo.CRC:
        raise _invalid("corrupt", "data does not match its CRC-32", entry.raw_name)
    return written


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a folder, so the names created, renamed or removed in it survive power loss."""
    _fsync(Path(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _sync_extracted(root: Path, files: list[str], folders: set[Path]) -> None:
    """fsync every extracted file, then every folder from the deepest up to `root` itself."""
    for relative in files:
        _fsync(root.joinpath(*relative.split("/")), os.O_RDONLY)
    every = {root}
    for folder in folders:
        while folder != root and folder not in every:
            every.add(folder)
            folder = folder.parent
    for folder in sorted(every, key=lambda p: len(p.parts), reverse=True):
        sync_dir(folder)


def _extract_entries(
    zf: zipfile.ZipFile, entries: list[_Entry], root: Path, prefix: list[str], limits: ArchiveLimits, durable: bool
) -> ExtractResult:
    files: list[str] = []
    total = 0
    verified: set[Path] = set()
    for entry in entries:
        relative = _output_name(entry.info, prefix)
        if relative is None:
            continue
        with os.fdopen(_open_target(root, relative, entry.raw_name, verified), "wb") as out:
            total += _copy_member(zf, entry, out, total, limits)
        files.append(relative)
    if durable:
        _sync_extracted(root, files, verified)
    return ExtractResult(files=files, total_bytes=total, file_count=len(files))


def extract_archive(
    path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    limits: ArchiveLimits = DEFAULT_LIMITS,
    *,
    strip_prefix: str = "",
    durable: bool = True,
) -> ExtractResult:
    """Inspect, then extract the archive's files into `dest_dir`, which must not exist or be empty.

    With `durable` (the default) every file and folder written is fsynced before this returns;
    `durable=False` is for files thrown away right after (a package checked and not kept).

    `strip_prefix` (e.g. "course/") keeps only members under that folder and removes it from their names,
    for ZIPs that wrap the package in one top folder. Directory entries are not extracted (folders are
    created as files need them); junk (`__MACOSX/`, `.DS_Store`) is skipped.

    On any failure, ArchiveError or not, `dest_dir` and everything in it are removed before the exception
    propagates: a failed upload leaves no files behind. A `dest_dir` that exists and is not empty, or an
    unsafe `strip_prefix`, raises ValueError without touching anything.
    """
    prefix = _prefix_parts(strip_prefix)
    dest = Path(dest_dir)
    _claim_destination(dest)
    try:
        with _open_zip(path, limits) as zf:
            entries = _check_members(zf, limits)
            _check_room(entries, prefix, limits)
            return _extract_entries(zf, entries, dest.resolve(strict=True), prefix, limits, durable)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
