"""Inspection of an uploaded package ZIP: everything its central directory declares, checked before a byte is written.

`inspect_archive` checks names, entry types, encryption, compression method, declared sizes against
`ArchiveLimits`, compression ratios, duplicate and case-colliding names, and entries whose data would
overlap. `appliance.services.library.archive` extracts only what passed here, and its module docstring
records the behaviour decisions both halves share (backslashes, "..", name encodings, case collisions,
methods, permissions, junk).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NamedTuple

import msgspec

from appliance.errors import ApplianceError

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveError",
    "ArchiveLimits",
    "ExtractResult",
    "MemberInfo",
    "inspect_archive",
    "list_names",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

UNSAFE_ARCHIVE = "UNSAFE_ARCHIVE"
INVALID_PACKAGE = "INVALID_PACKAGE"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"

ZipSource = str | os.PathLike[str] | IO[bytes]  # a ZIP's path, or the ZIP as a seekable binary file
_CHUNK_SIZE = 256 * 1024
_MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux file systems; longer components cannot be created
_LOCAL_HEADER_SIZE = 30  # fixed part of a local file header, before its name and extra field
_FLAG_ENCRYPTED = 0x0001
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_SUPPORTED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTROL = re.compile(r"[\x01-\x1f\x7f]")
_JUNK_DIRS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store"})

# What zipfile and its decompressors raise on damaged input. OSError is included because a corrupt
# offset surfaces as a failed seek on the (already open) archive file.
_CORRUPT_ERRORS = (zipfile.BadZipFile, EOFError, zlib.error, struct.error, OSError, ValueError, NotImplementedError)


class ArchiveLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What an archive may declare and contain; every limit is enforced on declared AND actual sizes.

    `max_ratio` applies per member and to the archive as a whole (uncompressed / compressed). Members, and
    whole archives, smaller than `ratio_exempt_below` are exempt: a small CSS or JSON file can legitimately
    compress far better than a bomb-sized threshold would suggest, and a small file cannot be a bomb.
    `max_files` counts every entry, directories included, since each costs an inode and parsing time.
    `quota_bytes` is what the destination may still take (the tenant's remaining storage quota), or
    None: extraction refuses an archive whose extracted files declare more, before writing a byte, and
    stops as soon as the bytes actually written would pass it (QUOTA_EXCEEDED either way), so a small
    ZIP of highly compressible data never fills the disk past the quota before failing.
    """

    max_total_uncompressed: int = 2 * GiB
    max_files: int = 20_000
    max_ratio: float = 200
    max_member_size: int = 1 * GiB
    max_name_length: int = 1024
    ratio_exempt_below: int = 1 * MiB
    quota_bytes: int | None = None


DEFAULT_LIMITS = ArchiveLimits()


class ArchiveError(ApplianceError):
    """A refused or unreadable archive.

    `code` is UNSAFE_ARCHIVE (the archive is readable but hostile or over a limit), INVALID_PACKAGE (not
    a ZIP, or corrupt) or QUOTA_EXCEEDED (its files do not fit `ArchiveLimits.quota_bytes`; `details` then
    has `quota_bytes` and `requested_bytes`). `details["reason"]` is a stable machine-readable reason and
    `details["entry"]` the offending entry's name as stored in the archive, when there is one.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.code = code


class MemberInfo(msgspec.Struct, frozen=True):
    """One checked archive entry; `name` is the normalised relative POSIX path (no trailing slash)."""

    name: str
    size: int
    compressed_size: int
    crc: int
    is_dir: bool = False


class ExtractResult(msgspec.Struct, frozen=True):
    """What `extract_archive` wrote: relative POSIX paths in archive order, and the bytes actually written."""

    files: list[str]
    total_bytes: int
    file_count: int


class _Entry(NamedTuple):
    info: MemberInfo
    zinfo: zipfile.ZipInfo
    raw_name: str


def _unsafe(reason: str, message: str, entry: str | None = None, **extra: Any) -> ArchiveError:
    details: dict[str, Any] = {"reason": reason, **extra}
    if entry is not None:
        details = {"entry": entry, **details}
        message = f"entry {entry!r}: {message}"
    return ArchiveError(UNSAFE_ARCHIVE, f"unsafe archive: {message}", details)


def _invalid(reason: str, message: str, entry: str | None = None) -> ArchiveError:
    details: dict[str, Any] = {"reason": reason}
    if entry is not None:
        details = {"entry": entry, **details}
        message = f"entry {entry!r}: {message}"
    return ArchiveError(INVALID_PACKAGE, f"invalid package: {message}", details)


# --- names ----------------------------------------------------------------------------------------


def _decode_name(zinfo: zipfile.ZipInfo) -> str:
    """The entry's name; flagless names that are valid UTF-8 are taken as UTF-8 (see module docstring).

    `orig_filename` is used rather than `filename` because zipfile silently truncates the latter at a NUL
    byte, which would hide exactly the trick the NUL check exists for.
    """
    name = zinfo.orig_filename
    if zinfo.flag_bits & _FLAG_UTF8:
        return name
    raw = name.encode("cp437")  # zipfile decoded these bytes as cp437, which round-trips every byte
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return name


def _normalise_name(raw: str, limits: ArchiveLimits) -> tuple[str, bool]:
    """(relative POSIX path, is_dir) for an entry name, or ArchiveError if the name is unsafe.

    "." and empty components are dropped ("./a//b" is "a/b"); the result is "" only for a root directory
    entry like "./".
    """
    if "\x00" in raw:
        raise _unsafe("nul_byte", "name contains a NUL byte", raw)
    if _CONTROL.search(raw):
        raise _unsafe("control_character", "name contains a control character", raw)
    if len(raw) > limits.max_name_length:
        raise _unsafe("name_too_long", f"name is longer than {limits.max_name_length} characters", raw)
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        raise _unsafe("absolute_path", "name is an absolute path", raw)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if parts and _DRIVE.match(parts[0]):  # "./C:/x" is still a drive path once "." is dropped
        raise _unsafe("absolute_path", "name is an absolute path", raw)
    if ".." in parts:
        raise _unsafe("path_traversal", "name contains a '..' component", raw)
    if any(len(part.encode("utf-8", "surrogatepass")) > _MAX_COMPONENT_BYTES for part in parts):
        raise _unsafe("name_too_long", f"a path component is longer than {_MAX_COMPONENT_BYTES} bytes", raw)
    return "/".join(parts), name.endswith("/")


def _fold(name: str) -> str:
    """The key under which a case-insensitive, normalising file system (macOS, Windows) sees `name`."""
    return unicodedata.normalize("NFC", name).casefold()


def _parents(name: str) -> Iterator[str]:
    parts = name.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _is_junk(name: str) -> bool:
    """macOS resource-fork folders and Finder metadata: never part of a course."""
    parts = name.split("/")
    return bool(_JUNK_DIRS.intersection(parts)) or parts[-1] in _JUNK_FILES


# --- inspection -----------------------------------------------------------------------------------


@contextmanager
def _open_zip(source: ZipSource, limits: ArchiveLimits) -> Iterator[zipfile.ZipFile]:
    """Open `source` (a path, or a seekable binary file such as a stored upload read in place) as a
    ZIP, mapping "not a ZIP / unreadable" to INVALID_PACKAGE.

    A path is opened here, not by zipfile, so that a missing file stays a plain OSError (a caller bug)
    while OSErrors from parsing (bad offsets) become INVALID_PACKAGE. A file object stays the caller's
    to close.
    """
    with contextlib.nullcontext(source) if hasattr(source, "read") else open(source, "rb") as fp:  # type: ignore[arg-type]
        try:
            _check_declared_count(fp, limits)
            zf = zipfile.ZipFile(fp)
        except UnicodeDecodeError as exc:
            raise _invalid("invalid_name_encoding", f"an entry name is flagged UTF-8 but is not ({exc})") from exc
        except _CORRUPT_ERRORS as exc:
            raise _invalid("not_a_zip", f"the upload is not a readable ZIP archive ({exc})") from exc
        with zf:
            yield zf


def _check_declared_count(fp: IO[bytes], limits: ArchiveLimits) -> None:
    """Refuse a huge entry count from the end record, before zipfile builds a ZipInfo for every entry.

    Uses zipfile's private end-record reader when present; the count after parsing is checked again in
    `_check_members`, so this is only an early exit and a lying end record gains nothing.
    """
    end_rec_data = getattr(zipfile, "_EndRecData", None)
    end_record = end_rec_data(fp) if end_rec_data is not None else None
    if end_record is not None:
        declared = end_record[getattr(zipfile, "_ECD_ENTRIES_TOTAL", 4)]
        if declared > limits.max_files:
            raise _unsafe("too_many_files", f"{declared} entries, more than the limit of {limits.max_files}")
    fp.seek(0)


def _check_entry_type(zinfo: zipfile.ZipInfo, raw: str) -> None:
    """Only regular files and directories: symlinks and devices could redirect or block extraction.

    The Unix mode in the high 16 bits of external_attr is checked whatever the creating system claims,
    since it is what Info-ZIP and other unpackers would honour.
    """
    file_type = stat.S_IFMT(zinfo.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        raise _unsafe("symlink", "entry is a symbolic link", raw)
    if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _unsafe("special_file", "entry is a device, FIFO or socket", raw)
    if zinfo.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise _unsafe("encrypted", "entry is encrypted", raw)
    if zinfo.compress_type not in _SUPPORTED_METHODS:
        raise _invalid(
            "unsupported_compression", f"compression method {zinfo.compress_type} (only stored and deflate)", raw
        )


def _ratio_exceeded(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    if size < limits.ratio_exempt_below:
        return False
    return compressed <= 0 or size / compressed > limits.max_ratio


def _check_declared_size(zinfo: zipfile.ZipInfo, raw: str, limits: ArchiveLimits) -> None:
    size, compressed = zinfo.file_size, zinfo.compress_size
    if size > limits.max_member_size:
        raise _unsafe(
            "member_size", f"declares {size} bytes, more than the limit of {limits.max_member_size}", raw, size=size
        )
    if _ratio_exceeded(size, compressed, limits):
        raise _unsafe(
            "compression_ratio",
            f"compresses {compressed} bytes to {size}, more than {limits.max_ratio}:1 (zip bomb?)",
            raw,
            size=size,
            compressed_size=compressed,
        )


def _to_entry(zinfo: zipfile.ZipInfo, limits: ArchiveLimits) -> _Entry | None:
    """Check one central directory record; None for a root directory entry like "./"."""
    raw = _decode_name(zinfo)
    name, is_dir = _normalise_name(raw, limits)
    is_dir = is_dir or stat.S_ISDIR(zinfo.external_attr >> 16)
    _check_entry_type(zinfo, raw)
    _check_declared_size(zinfo, raw, limits)
    if not name:
        if is_dir:
            return None
        raise _unsafe("empty_name", "entry has an empty name", raw)
    info = MemberInfo(name, zinfo.file_size, zinfo.compress_size, zinfo.CRC, is_dir)
    return _Entry(info, zinfo, raw)


def _check_names(entries: list[_Entry]) -> None:
    """Refuse duplicate files, case/normalisation collisions, and a file that is also a folder."""
    files: dict[str, _Entry] = {}
    folders: set[str] = set()
    for entry in entries:
        name = entry.info.name
        if _is_junk(name):
            continue
        folders.update(_fold(parent) for parent in _parents(name))
        if entry.info.is_dir:
            folders.add(_fold(name))
            continue
        other = files.setdefault(_fold(name), entry)
        if other is entry:
            continue
        if other.info.name == name:
            raise _unsafe("duplicate_name", "the archive contains this file name more than once", entry.raw_name)
        raise _unsafe(
            "case_collision",
            f"differs from {other.raw_name!r} only in case or Unicode normalisation",
            entry.raw_name,
            other=other.raw_name,
        )
    for key, entry in files.items():
        if key in folders:
            raise _unsafe("path_conflict", "name is used both as a file and as a folder", entry.raw_name)


def _check_totals(entries: list[_Entry], limits: ArchiveLimits) -> None:
    total = sum(entry.zinfo.file_size for entry in entries)
    compressed = sum(entry.zinfo.compress_size for entry in entries)
    if total > limits.max_total_uncompressed:
        raise _unsafe(
            "total_size",
            f"declares {total} bytes in total, more than the limit of {limits.max_total_uncompressed}",
            total_size=total,
        )
    if _ratio_exceeded(total, compressed, limits):
        raise _unsafe(
            "compression_ratio",
            f"compresses {compressed} bytes to {total}, more than {limits.max_ratio}:1 overall (zip bomb?)",
            size=total,
            compressed_size=compressed,
        )


def _name_length_in_header(zinfo: zipfile.ZipInfo) -> int:
    return len(zinfo.orig_filename.encode("utf-8" if zinfo.flag_bits & _FLAG_UTF8 else "cp437"))


def _check_overlap(zf: zipfile.ZipFile, zinfos: list[zipfile.ZipInfo]) -> None:
    """Refuse entries whose data overlaps another entry or the central directory.

    Overlapping entries are how "non-recursive" zip bombs reuse one compressed kernel for thousands of
    members; zipfile in Python 3.11 does not detect them. Each entry needs at least a local header, its
    name and its compressed data before the next entry (or the central directory) starts.
    """
    ordered = sorted(zinfos, key=lambda zinfo: zinfo.header_offset)
    next_starts: list[int | None] = [zinfo.header_offset for zinfo in ordered[1:]]
    next_starts.append(getattr(zf, "start_dir", None))
    for zinfo, next_start in zip(ordered, next_starts, strict=False):
        end = zinfo.header_offset + _LOCAL_HEADER_SIZE + _name_length_in_header(zinfo) + zinfo.compress_size
        if zinfo.header_offset < 0 or (next_start is not None and end > next_start):
            raise _unsafe("overlapping_entries", "entry data overlaps another entry", _decode_name(zinfo))


def _check_members(zf: zipfile.ZipFile, limits: ArchiveLimits) -> list[_Entry]:
    """Every check that the central directory allows, in an order that names the first bad entry."""
    zinfos = zf.infolist()
    if len(zinfos) > limits.max_files:
        raise _unsafe("too_many_files", f"{len(zinfos)} entries, more than the limit of {limits.max_files}")
    entries = [entry for entry in (_to_entry(zinfo, limits) for zinfo in zinfos) if entry is not None]
    _check_names(entries)
    _check_totals(entries, limits)
    _check_overlap(zf, zinfos)
    return entries


def inspect_archive(path: ZipSource, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[MemberInfo]:
    """Check an archive's central directory without extracting anything; its entries in archive order.

    Raises ArchiveError (see the module docstring for the policy). The result includes directory entries
    (`is_dir`) and junk (`__MACOSX/`, `.DS_Store`); `list_names` gives just the files that would be extracted.
    Sizes are as declared: only `extract_archive` can tell whether they are true.
    """
    with _open_zip(path, limits) as zf:
        return [entry.info for entry in _check_members(zf, limits)]


def list_names(path: str | os.PathLike[str], limits: ArchiveLimits = DEFAULT_LIMITS) -> list[str]:
    """The normalised paths of the files `extract_archive` would write (no prefix stripped), for finding
    imsmanifest.xml and choosing a strip prefix before extracting. Runs the full inspection."""
    return [info.name for info in inspect_archive(path, limits) if not info.is_dir and not _is_junk(info.name)]


# --- extraction -----------------------------------------------------------------------------------
