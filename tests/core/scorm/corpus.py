"""Read the shared SCORM corpus (../shared/scorm-corpus, next to the repository) in place.

The corpus is not part of the project and may be absent: `require_corpus()` skips with a message.
"""

from __future__ import annotations

import functools
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.core.scorm.manifest import MANIFEST_NAME, ManifestError, find_package_root

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "scorm-corpus"
PACKAGES = CORPUS / "packages"


@dataclass(frozen=True)
class CorpusPackage:
    """One ZIP as the package service would see it: member names, package root, manifest, files."""

    name: str
    names: list[str]
    root: str | None
    manifest: bytes | None
    files: frozenset[str]


def corpus_available() -> bool:
    return (CORPUS / "index.json").is_file() and PACKAGES.is_dir()


def require_corpus() -> None:
    if not corpus_available():
        pytest.skip(f"SCORM corpus not found at {CORPUS.resolve()} (clone ../shared/scorm-corpus to run)")


@functools.cache
def index() -> dict[str, dict[str, Any]]:
    if not corpus_available():
        return {}
    return json.loads((CORPUS / "index.json").read_text(encoding="utf-8"))


def package_names() -> list[str]:
    """ZIP names for parametrisation; empty when the corpus is absent (tests then skip)."""
    if not corpus_available():
        return []
    return sorted(path.name for path in PACKAGES.glob("*.zip"))


@functools.cache
def read_package(name: str) -> CorpusPackage:
    """Locate the manifest with find_package_root, as the package service does (AICC etc. raise)."""
    with zipfile.ZipFile(PACKAGES / name) as archive:
        names = archive.namelist()
        try:
            root = find_package_root(names)
        except ManifestError:  # AICC/cmi5: tests re-run find_package_root to assert on the error
            root = None
        manifest = archive.read(root + MANIFEST_NAME) if root is not None else None
    files = frozenset(
        member[len(root or "") :]
        for member in names
        if member.startswith(root or "") and not member.endswith("/") and not member.startswith("__MACOSX/")
    )
    return CorpusPackage(name=name, names=names, root=root, manifest=manifest, files=files)
