"""Checking an uploaded ZIP: safe extraction, the manifest, and validation, with one failure shape.

Used by the processing job (which keeps the extracted files) and by `POST /packages/validate` (which
throws them away). Synchronous: callers run it in a worker thread.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.archive import ArchiveError, ArchiveLimits, ExtractResult, extract_archive, inspect_archive
from appliance.config import Config
from appliance.errors import InsufficientStorage
from appliance.quotas import check_free_space
from appliance.scorm.manifest import ManifestError, find_package_root, parse_manifest
from appliance.scorm.model import Manifest
from appliance.scorm.validation import ValidationReport, validate_package

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
    """A package that passed: its manifest, the validation report and what was extracted."""

    manifest: Manifest
    report: ValidationReport
    extracted: ExtractResult
    root_prefix: str


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
    limits = archive_limits(config, quota_bytes)
    try:
        members = inspect_archive(zip_path, limits)
        _check_disk_room(dest.parent, sum(m.size for m in members if not m.is_dir), config)
        names = [m.name for m in members if not m.is_dir]
        root = find_package_root(names)  # it ignores desktop junk itself
        if root is None:
            # Show what the root holds: often the course was zipped one folder too deep or too high.
            top_level = sorted({name.split("/", 1)[0] + ("/" if "/" in name else "") for name in names})
            raise PackageRejected(
                "MANIFEST_MISSING",
                "the ZIP has no imsmanifest.xml at its root (or in its single top folder)",
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
