"""Checking an upload: safe extraction, the manifest, and validation, with one failure shape.

An upload is a SCORM package (a ZIP with imsmanifest.xml), a cmi5 package (a ZIP with cmi5.xml), or a
bare cmi5.xml whose AUs are hosted elsewhere (the upload route lets one in only when it is declared
as XML). A ZIP with both files is SCORM. Both kinds of ZIP go through the same archive guards
(appliance.services.library.archive: zip slip, bombs, limits, the tenant's quota) before anything is parsed.

Used by the processing job (which keeps the extracted files) and by `POST /packages/validate` (which
throws them away). Synchronous: callers run it in a worker thread.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from appliance.config import Config
from appliance.core.cmi5 import packaging as cmi5_packaging
from appliance.core.cmi5.course_structure import FILENAME as COURSE_STRUCTURE_NAME
from appliance.core.cmi5.course_structure import MAX_BYTES as COURSE_STRUCTURE_MAX_BYTES
from appliance.core.cmi5.course_structure import Course, CourseStructureError, parse_course_structure
from appliance.core.scorm.manifest import ManifestError, find_package_root, parse_manifest
from appliance.core.scorm.model import Manifest
from appliance.core.scorm.validation import ValidationReport, validate_package
from appliance.errors import InsufficientStorage
from appliance.services.library.archive import (
    ArchiveError,
    ArchiveLimits,
    ExtractResult,
    MemberInfo,
    extract_archive,
    inspect_archive,
    sync_dir,
)
from appliance.services.tenancy.quotas import check_free_space

MANIFEST_NAME = "imsmanifest.xml"


class PackageRejected(Exception):
    """Processing failed with one of the contract's package failure codes."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def as_error(self) -> dict[str, Any]:
        """The `error` object stored on the package."""
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass
class Analysis:
    """A package that passed: its manifest (SCORM) or course structure (cmi5), the validation report
    and what was extracted."""

    manifest: Manifest | None
    report: ValidationReport
    extracted: ExtractResult
    root_prefix: str
    course: Course | None = None

    @property
    def standard(self) -> str:
        """ "scorm" or "cmi5"."""
        return cmi5_packaging.STANDARD if self.course is not None else "scorm"

    @property
    def title(self) -> str | None:
        if self.course is not None:
            return cmi5_packaging.title(self.course)
        return self.manifest.title if self.manifest is not None else None


def archive_limits(config: Config, quota_bytes: int | None = None) -> ArchiveLimits:
    """The extraction limits that the settings give, and the tenant's remaining quota (None: unlimited)."""
    return ArchiveLimits(
        max_total_uncompressed=config.max_uncompressed_bytes,
        max_files=config.max_package_files,
        max_ratio=config.max_compression_ratio,
        max_member_size=config.max_uncompressed_bytes,
        quota_bytes=quota_bytes,
    )


def analyse(
    zip_path: Path, dest: Path, config: Config, *, quota_bytes: int | None = None, durable: bool = True
) -> Analysis:
    """Extract `zip_path` into `dest` and check it; on PackageRejected, `dest` is gone.

    `quota_bytes` is what the tenant may still store: extraction stops there (QUOTA_EXCEEDED) rather
    than after writing everything. Nor does extraction start when the files it declares would leave the
    disk with less than `min_free_disk_bytes` (INSUFFICIENT_STORAGE). `durable`: the extracted files are
    fsynced (to be kept); validation, which throws them away, skips that.
    """
    if is_bare_course_structure(zip_path):
        return _analyse_bare_course_structure(zip_path, dest, config, quota_bytes, durable)
    limits = archive_limits(config, quota_bytes)
    try:
        members = inspect_archive(zip_path, limits)
        _check_disk_room(dest.parent, sum(m.size for m in members if not m.is_dir), config)
        names = [m.name for m in members if not m.is_dir]
        root, cmi5_root = _package_roots(names)
        if cmi5_root is not None:
            return _analyse_cmi5_zip(zip_path, dest, members, cmi5_root, limits, config, durable)
        if root is None:
            # Show what the root holds: often the course was zipped one folder too deep or too high.
            top_level = sorted({name.split("/", 1)[0] + ("/" if "/" in name else "") for name in names})
            raise PackageRejected(
                "MANIFEST_MISSING",
                "the ZIP has no imsmanifest.xml (SCORM) or cmi5.xml (cmi5) at its root (or in its single top folder)",
                {"top_level": top_level[:20], "file_count": len(names)},
            )
        # Refuse an oversized manifest on its declared size, before extracting anything; the size
        # actually written is checked again after extraction (a lying header fails extraction anyway).
        declared = next(m.size for m in members if m.name == root + MANIFEST_NAME and not m.is_dir)
        _check_manifest_size(declared, config)
        extracted = extract_archive(zip_path, dest, limits, strip_prefix=root, durable=durable)
    except ArchiveError as exc:
        # UNSAFE_ARCHIVE, or INVALID_PACKAGE for a ZIP whose central directory was readable but whose
        # contents are corrupt (bad CRC, truncated member): only extraction can find that out.
        raise PackageRejected(exc.code, exc.message, exc.details) from exc
    except ManifestError as exc:
        raise PackageRejected(exc.code, exc.message, exc.details) from exc
    try:
        return _check_manifest(dest, extracted, root, config)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _package_roots(names: list[str]) -> tuple[str | None, str | None]:
    """(SCORM root, cmi5 root): where imsmanifest.xml or, failing that, cmi5.xml lives ("" or "folder/").

    find_package_root refuses a ZIP with cmi5.xml and no manifest as UNSUPPORTED_VERSION (found cmi5):
    that is now a cmi5 package, at the root or in a single top folder as SCORM may be; a cmi5.xml found
    elsewhere is MANIFEST_MISSING with the place named.
    """
    try:
        return find_package_root(names), None
    except ManifestError as exc:
        if exc.details.get("found") != cmi5_packaging.STANDARD:
            raise
    if COURSE_STRUCTURE_NAME in names:
        return None, ""
    tops = {name.split("/", 1)[0] for name in names if not _is_desktop_junk(name)}
    if len(tops) == 1 and f"{next(iter(tops))}/{COURSE_STRUCTURE_NAME}" in names:
        return None, f"{next(iter(tops))}/"
    found = sorted(name for name in names if name.rsplit("/", 1)[-1] == COURSE_STRUCTURE_NAME)
    raise PackageRejected(
        "MANIFEST_MISSING",
        "cmi5.xml must be at the ZIP's root (cmi5 §14.1), not in one of several folders",
        {"found": found[:20], "file_count": len(names)},
    )


def _is_desktop_junk(name: str) -> bool:
    """macOS resource forks and Finder/Explorer metadata, which find_package_root ignores too."""
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] in {".DS_Store", "Thumbs.db", "desktop.ini"}


def _analyse_cmi5_zip(
    zip_path: Path,
    dest: Path,
    members: list[MemberInfo],
    root: str,
    limits: ArchiveLimits,
    config: Config,
    durable: bool,
) -> Analysis:
    """Extract a cmi5 ZIP (the same guards as SCORM) and read its course structure against its files."""
    declared = next(m.size for m in members if m.name == root + COURSE_STRUCTURE_NAME and not m.is_dir)
    _check_course_structure_size(declared, config)
    try:
        extracted = extract_archive(zip_path, dest, limits, strip_prefix=root, durable=durable)
    except ArchiveError as exc:
        raise PackageRejected(exc.code, exc.message, exc.details) from exc
    try:
        path = dest / COURSE_STRUCTURE_NAME
        _check_course_structure_size(path.stat().st_size, config)
        course = _read_course(path.read_bytes(), packaged=True, files=frozenset(extracted.files))
        report = cmi5_packaging.report(course, packaged=True)
        return Analysis(manifest=None, report=report, extracted=extracted, root_prefix=root, course=course)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def is_bare_course_structure(path: Path | IO[bytes]) -> bool:
    """Whether an upload (its path, or a seekable file of it) is an XML document rather than a ZIP: its
    first character, after a byte-order mark and white space, is "<" (a ZIP begins with "PK"). The
    upload route admits such a file only when it was declared as XML (`declares_xml`)."""
    if isinstance(path, Path | str):
        with open(path, "rb") as fp:
            head = fp.read(1024)
    else:
        path.seek(0)
        head = path.read(1024)
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom) :].replace(b"\x00", b"") if len(bom) == 2 else head[len(bom) :]
            break
    return head.lstrip(b" \t\r\n").startswith(b"<")


XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})


def declares_xml(content_type: str, filename: str | None) -> bool:
    """An upload sent as XML: a raw body with Content-Type application/xml or text/xml, or a file
    named *.xml (multipart)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in XML_MEDIA_TYPES or (filename or "").lower().endswith(".xml")


def _analyse_bare_course_structure(
    path: Path, dest: Path, config: Config, quota_bytes: int | None, durable: bool
) -> Analysis:
    """A cmi5.xml uploaded alone: every AU URL must be fully qualified (cmi5 §14.2). The file is kept
    as the version's only file, under the same quota and disk checks as an extraction."""
    size = path.stat().st_size
    _check_course_structure_size(size, config)
    if quota_bytes is not None and size > quota_bytes:
        raise PackageRejected(
            "QUOTA_EXCEEDED",
            f"storage quota exceeded: the course structure is {size} bytes, {quota_bytes} are left",
            {"reason": "quota", "quota_bytes": quota_bytes, "requested_bytes": size},
        )
    _check_disk_room(dest.parent, size, config)
    xml = path.read_bytes()
    course = _read_course(xml, packaged=False, files=None)
    dest.mkdir(mode=0o755)
    try:
        target = dest / COURSE_STRUCTURE_NAME
        target.write_bytes(xml)
        if durable:
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            sync_dir(dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    extracted = ExtractResult(files=[COURSE_STRUCTURE_NAME], total_bytes=len(xml), file_count=1)
    report = cmi5_packaging.report(course, packaged=False)
    return Analysis(manifest=None, report=report, extracted=extracted, root_prefix="", course=course)


def _read_course(xml: bytes, *, packaged: bool, files: frozenset[str] | None) -> Course:
    try:
        return parse_course_structure(xml, packaged=packaged, files=files)
    except CourseStructureError as exc:
        raise PackageRejected(*cmi5_packaging.refusal(exc)) from exc


def _check_course_structure_size(size: int, config: Config) -> None:
    limit = min(config.max_manifest_bytes, COURSE_STRUCTURE_MAX_BYTES)
    if size > limit:
        raise PackageRejected(
            "MANIFEST_INVALID",
            f"cmi5.xml is {size:,} bytes; the limit is {limit:,} bytes",
            {"file": COURSE_STRUCTURE_NAME, "size": size, "limit_bytes": limit},
        )


def _check_manifest(dest: Path, extracted: ExtractResult, root: str, config: Config) -> Analysis:
    manifest_path = dest / MANIFEST_NAME
    _check_manifest_size(manifest_path.stat().st_size, config)
    try:
        manifest = parse_manifest(manifest_path.read_bytes(), max_bytes=config.max_manifest_bytes)
    except ManifestError as exc:
        raise PackageRejected(exc.code, exc.message, exc.details) from exc
    report = validate_package(manifest, set(extracted.files))
    if report.error is not None:
        raise PackageRejected(report.error.code, report.error.message, report.error.details)
    return Analysis(manifest=manifest, report=report, extracted=extracted, root_prefix=root)


def _check_disk_room(folder: Path, declared_bytes: int, config: Config) -> None:
    try:
        check_free_space(folder, config.min_free_disk_bytes, declared_bytes)
    except InsufficientStorage as exc:
        raise PackageRejected(exc.code, exc.message, exc.details) from exc


def _check_manifest_size(size: int, config: Config) -> None:
    if size > config.max_manifest_bytes:
        raise PackageRejected(
            "MANIFEST_INVALID",
            f"imsmanifest.xml is {size:,} bytes; the limit is {config.max_manifest_bytes:,} bytes",
            {"size": size, "limit_bytes": config.max_manifest_bytes},
        )
