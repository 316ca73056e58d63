"""What `scorm-appliance migrate` compares, and the report it prints.

A table is compared by its row count and an order-independent checksum over the canonical values of
its rows: each row is encoded column by column in the catalog's order (a tag for the value's kind —
NULL, integer, float, text, bytes — then the value: integers in decimal, floats as their exact hex
form, text as UTF-8 and bytes as they are, each with its length), hashed with SHA-256, and the table's
checksum is the sum of the rows' hashes modulo 2**256. The sum does not depend on the order rows come
back in (PostgreSQL and SQLite return them in different orders), a changed, missing or extra row
changes it, and two rows swapping a value do too (each row is hashed whole). The `tenant_id` column
PostgreSQL adds is not part of the value: which tenant a row belongs to is checked by reading the row
as that tenant (row-level security shows no other tenant's rows).

A file is compared by its size and the SHA-256 of its bytes, read back from the target store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

_MODULUS = 1 << 256


def _encode(value: Any) -> bytes:
    if value is None:
        return b"N;"
    if isinstance(value, bool):  # not stored by either side, but never let True pass for 1.0
        value = int(value)
    if isinstance(value, int):
        return b"I" + str(value).encode() + b";"
    if isinstance(value, float):
        return b"F" + value.hex().encode() + b";"
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return b"T" + str(len(data)).encode() + b":" + data
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return b"B" + str(len(data)).encode() + b":" + data
    raise TypeError(f"no canonical form for a {type(value).__name__}")


def row_digest(row: Iterable[Any]) -> int:
    """One row's SHA-256 over its canonical values, as an integer."""
    h = hashlib.sha256()
    for value in row:
        h.update(_encode(value))
    return int.from_bytes(h.digest(), "big")


@dataclass
class TableSum:
    """A table's row count and checksum, accumulated row by row (no row is kept)."""

    rows: int = 0
    total: int = 0

    def add(self, row: Iterable[Any]) -> None:
        self.rows += 1
        self.total = (self.total + row_digest(row)) % _MODULUS

    @property
    def checksum(self) -> str:
        return f"{self.total:064x}"


@dataclass(frozen=True)
class TableCheck:
    """One table of the registry or of one tenant, source against target."""

    unit: str  # "registry" or the tenant's id
    table: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum


@dataclass(frozen=True)
class SequenceCheck:
    """An identity column's counter on PostgreSQL, which must be past every number the source gave out."""

    table: str
    column: str
    highest_source: int
    next_value: int  # what the next row without an id would get

    @property
    def ok(self) -> bool:
        return self.next_value > self.highest_source


@dataclass(frozen=True)
class FileProblem:
    """A file that is missing, different or extra in the target store."""

    tenant_id: str
    path: str
    problem: str  # "missing", "size", "sha256", "extra"
    source_size: int | None = None
    target_size: int | None = None
    source_sha256: str | None = None
    target_sha256: str | None = None


@dataclass
class FileTotals:
    """Files compared (or copied) and their bytes."""

    files: int = 0
    bytes: int = 0


@dataclass
class Report:
    """Everything a migration did and found; `ok` only when every comparison matched."""

    target_schema: str
    files_target: str  # "s3://bucket/prefix", or the data directory the files stay in
    copied: dict[str, str] = field(default_factory=dict)  # unit -> "copied" / "already copied" / "cleared and copied"
    upgraded_files: list[str] = field(default_factory=list)
    tables: list[TableCheck] = field(default_factory=list)
    sequences: list[SequenceCheck] = field(default_factory=list)
    files: FileTotals = field(default_factory=FileTotals)
    files_copied: FileTotals = field(default_factory=FileTotals)
    file_problems: list[FileProblem] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)  # what stays in the data directory, said once each
    verified_files: bool = False

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and all(s.ok for s in self.sequences) and not self.file_problems

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (`--json`)."""
        bad_tables = [asdict(t) for t in self.tables if not t.ok]
        return {
            "ok": self.ok,
            "target_schema": self.target_schema,
            "files_target": self.files_target,
            "copied": self.copied,
            "upgraded_files": self.upgraded_files,
            "tables": {
                "compared": len(self.tables),
                "rows": sum(t.source_rows for t in self.tables),
                "mismatches": bad_tables,
                "per_table": [asdict(t) | {"ok": t.ok} for t in self.tables],
            },
            "sequences": [asdict(s) | {"ok": s.ok} for s in self.sequences],
            "files": {
                "verified": self.verified_files,
                "compared": self.files.files,
                "bytes": self.files.bytes,
                "copied": self.files_copied.files,
                "copied_bytes": self.files_copied.bytes,
                "problems": [asdict(p) for p in self.file_problems],
            },
            "not_copied": self.not_copied,
        }

    def as_text(self) -> str:
        """The report for a terminal: totals per unit, then every mismatch."""
        lines = [f"Target: PostgreSQL schema {self.target_schema}; files: {self.files_target}"]
        for path in self.upgraded_files:
            lines.append(f"upgraded to this release's schema first: {path}")
        units: dict[str, list[TableCheck]] = {}
        for t in self.tables:
            units.setdefault(t.unit, []).append(t)
        for unit, checks in units.items():
            bad = [t for t in checks if not t.ok]
            state = self.copied.get(unit, "verified")
            lines.append(
                f"{unit}: {len(checks)} tables, {sum(t.source_rows for t in checks)} rows, "
                f"{'OK' if not bad else f'{len(bad)} MISMATCHED'} ({state})"
            )
            for t in bad:
                lines.append(
                    f"  MISMATCH {t.table}: source {t.source_rows} rows {t.source_checksum[:16]}…, "
                    f"target {t.target_rows} rows {t.target_checksum[:16]}…"
                )
        bad_sequences = [s for s in self.sequences if not s.ok]
        lines.append(
            f"identity counters: {len(self.sequences)} checked, "
            + ("OK" if not bad_sequences else f"{len(bad_sequences)} BEHIND")
        )
        for s in bad_sequences:
            lines.append(f"  BEHIND {s.table}.{s.column}: next {s.next_value}, source gave out {s.highest_source}")
        if self.verified_files:
            lines.append(
                f"files: {self.files.files} compared ({self.files.bytes} bytes), "
                f"{self.files_copied.files} copied ({self.files_copied.bytes} bytes), "
                + ("OK" if not self.file_problems else f"{len(self.file_problems)} PROBLEMS")
            )
            for p in self.file_problems[:50]:
                lines.append(f"  {p.problem.upper()} {p.tenant_id}/{p.path}")
            if len(self.file_problems) > 50:
                lines.append(f"  … and {len(self.file_problems) - 50} more (--json lists them all)")
        else:
            lines.append(
                f"files: not moved; {self.files.files} files ({self.files.bytes} bytes) stay in {self.files_target}"
            )
        for note in self.not_copied:
            lines.append(f"not copied: {note}")
        lines.append("Verification passed." if self.ok else "Verification FAILED.")
        return "\n".join(lines)
