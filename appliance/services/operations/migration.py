"""`scorm-appliance migrate`: an embedded data directory copied into PostgreSQL (and an object store), then verified.

What is copied, in this order (docs/scale-out.md, "Moving an embedded appliance"):

1. **The registry** (`registry.db`: tenants, API key hashes, LRS credentials, console accounts, the
   job queue, settings such as the launch-token secret), every table in one transaction.
2. **Each tenant** (`tenants/<id>/tenant.db`), every table in one transaction per tenant, each row
   with its `tenant_id`. Ids, timestamps and every other value are copied as they are; rows are read
   and written in batches (`batch_rows`, cut early past `batch_bytes`), so memory does not grow with
   a table.
3. **The identity counters** (`events.seq`, `xapi_statements.seq`, …: one sequence per table for all
   tenants on PostgreSQL) set past the highest number any tenant's file gave out, SQLite's
   AUTOINCREMENT memory of deleted rows included, so a row added after the move never takes a number
   a copied row has.
   Then every table is ANALYZEd, so the workers' first queries are planned with statistics.
4. **Package files** with `--s3`: every file under each tenant's `packages/` and `uploads/` put into
   the bucket at the key the appliance will look for (`storage/files`), eight at a time. Without
   `--s3` the files stay in the data directory, which the workers then share.
5. **Verification** of everything, read back from the target (`migration_report`); `verify` alone is
   `--verify-only`.

Refusals, before anything is written: the source in use (`DataDirSource.check_at_rest`), a schema that
is not installed or is another release's, and a target that already holds rows (the registry's
tables, or objects under the bucket prefix's `tenants/`) unless the mode says otherwise:

- `resume` carries on an interrupted run: the registry must already match the source (it is copied
  in one transaction, so it is either all there or not at all), tenants whose tables all match are
  kept, any other tenant's rows are deleted and copied again in one transaction, and files already
  in the bucket with the right size are not sent again (the verification still reads every one).
- `force` empties the target first: every table of the schema (TRUNCATE, identities back at 1) and
  each source tenant's `packages/` and `uploads/` in the bucket.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import apsw

from appliance.services.library.content import media_type_of
from appliance.services.operations.migration_report import (
    FileProblem,
    FileTotals,
    Report,
    TableCheck,
    TableSum,
)
from appliance.services.operations.migration_source import (
    FILE_FOLDERS,
    DataDirSource,
    MigrationRefused,
    SourceFile,
    highest,
    source_rows,
)
from appliance.services.operations.migration_target import PgTarget, batches, copy_order, derived_tables
from appliance.storage.files.base import FileMissing, FileStore
from appliance.storage.files.config import S3FilesConfig
from appliance.storage.postgres.catalog import Catalog, registry_catalog, tenant_catalog

Mode = Literal["new", "resume", "force"]
T = TypeVar("T")
R = TypeVar("R")
FILE_WORKERS = 8  # puts and reads in flight to the object store (course files are small: latency-bound)
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class MigrationOptions:
    """Where from, where to and how."""

    data_dir: Path
    target_url: str  # an administrator's postgresql:// URL (module migration_target)
    schema: str
    files: S3FilesConfig | None = None  # None: the files stay in the data directory
    mode: Mode = "new"
    batch_rows: int = 1000
    batch_bytes: int = 8 * 1024 * 1024
    file_workers: int = FILE_WORKERS

    @property
    def files_target(self) -> str:
        if self.files is None:
            return str(self.data_dir)
        return f"s3://{self.files.bucket}/{self.files.prefix}".rstrip("/")


def open_store(config: S3FilesConfig) -> FileStore:
    """The object store the files go to (boto3 imported only when `--s3` is given)."""
    from appliance.storage.files.s3 import S3FileStore

    store = S3FileStore(config)
    store.create_bucket()
    return store


class Migration:
    """One run: the source, the target and the store, opened once and closed by `close`."""

    def __init__(self, options: MigrationOptions) -> None:
        self.options = options
        self.source = DataDirSource(options.data_dir)
        self.source.check_at_rest()
        self.target = PgTarget(options.target_url, options.schema)
        try:
            self.store = None if options.files is None else open_store(options.files)
        except BaseException:
            self.target.close()
            raise
        self.report = Report(options.schema, options.files_target)

    def close(self) -> None:
        self.target.close()

    # -- the copy ----------------------------------------------------------------------------------

    def run(self, now: float | None = None) -> Report:
        """Copy everything, then verify it; the report says what was done and what was found. Every
        refusal comes before the first write (to the target, or the source's upgrade)."""
        mode = self.options.mode
        pending = self.source.pending_upgrades()
        tenant_ids = self.source.tenant_ids()
        self._refuse_non_empty(mode, tenant_ids)
        self.report.upgraded_files = self.source.upgrade(pending, time.time() if now is None else now)
        self.source.check_tables(tenant_ids)
        if mode == "force":
            self._empty_target(tenant_ids)
        self._copy_registry(resuming=mode == "resume")
        for tenant_id in tenant_ids:
            self._copy_tenant(tenant_id, resuming=mode == "resume")
        self._raise_sequences(tenant_ids)
        self.target.analyze()
        if self.store is not None:
            for tenant_id in tenant_ids:
                self._copy_files(tenant_id, resuming=mode == "resume")
        self.verify()
        self.source.check_at_rest(during=True)  # nobody started the appliance on the source meanwhile
        return self.report

    def _refuse_non_empty(self, mode: Mode, tenant_ids: list[str]) -> None:
        if mode != "new":
            return
        has_rows = not self.target.registry_empty()
        has_files = self.store is not None and any(next(iter(self.store.list(t)), None) is not None for t in tenant_ids)
        if has_rows or has_files:
            where = "the schema holds rows" if has_rows else "the bucket holds files of these tenants"
            raise MigrationRefused(
                f"the target is not empty ({where}): --resume carries on an interrupted migration, "
                "--force empties the target first",
                {"schema": self.options.schema, "rows": has_rows, "files": has_files},
            )

    def _empty_target(self, tenant_ids: list[str]) -> None:
        """`--force`: every table emptied, and the source tenants' folders in the bucket."""
        self.target.empty_everything()
        if self.store is not None:
            for tenant_id in tenant_ids:
                for folder in FILE_FOLDERS:
                    self.store.delete_folder(tenant_id, folder)

    def _copy_unit(self, catalog: Catalog, tenant_id: str | None, conn: apsw.Connection | None) -> None:
        """Every table of one unit (the registry or a tenant) inside the open transaction."""
        derived = derived_tables(catalog)
        for table in copy_order(catalog):
            if table.name in derived:
                self.target.replace_derived(table)
            rows = source_rows(conn, table)
            for batch in batches(rows, self.options.batch_rows, self.options.batch_bytes):
                self.target.insert(table, tenant_id, batch)

    def _copy_registry(self, *, resuming: bool) -> None:
        catalog = registry_catalog()
        if resuming and not self.target.registry_empty():
            checks = self._compare(catalog, None)
            if not all(c.ok for c in checks):
                bad = [c.table for c in checks if not c.ok]
                raise MigrationRefused(
                    "the registry in the target differs from the source's (it changed since the interrupted run): "
                    "start again with --force",
                    {"tables": bad},
                )
            self.report.copied["registry"] = "already copied"
            return
        with self.source.open(self.source.data.registry_db) as conn, self.target.transaction(None):
            self._copy_unit(catalog, None, conn)
        self.report.copied["registry"] = "copied"

    def _copy_tenant(self, tenant_id: str, *, resuming: bool) -> None:
        catalog = tenant_catalog()
        state = "copied"
        if resuming:
            checks = self._compare(catalog, tenant_id)
            if all(c.ok for c in checks):
                self.report.copied[tenant_id] = "already copied"
                return
            derived = derived_tables(catalog)
            if any(c.target_rows for c in checks if c.table not in derived):
                state = "cleared and copied"
        path = self.source.tenant_db(tenant_id)
        if path.is_file():
            with self.source.open(path) as conn, self.target.transaction(tenant_id):
                if resuming:
                    self.target.clear_tenant(tenant_id)
                self._copy_unit(catalog, tenant_id, conn)
        else:  # a tenant never opened: only the rows its file would start with (the seed's)
            with self.target.transaction(tenant_id):
                if resuming:
                    self.target.clear_tenant(tenant_id)
                self._copy_unit(catalog, tenant_id, None)
        self.report.copied[tenant_id] = state

    def _highest(self, tenant_ids: list[str]) -> dict[str, int]:
        """The highest number each identity table gave out, over every tenant."""
        found: dict[str, int] = {}
        tables = [t for t in tenant_catalog().tables.values() if t.rowid_alias]
        for tenant_id in tenant_ids:
            path = self.source.tenant_db(tenant_id)
            if not path.is_file():
                for t in tables:
                    found[t.name] = max(found.get(t.name, 0), highest(None, t))
                continue
            with self.source.open(path) as conn:
                for t in tables:
                    found[t.name] = max(found.get(t.name, 0), highest(conn, t))
        return found

    def _raise_sequences(self, tenant_ids: list[str]) -> None:
        wanted = self._highest(tenant_ids)
        for table, _, sequence in self.target.identity_columns():
            self.target.raise_sequence(sequence, wanted.get(table, 0))

    def _copy_files(self, tenant_id: str, *, resuming: bool) -> None:
        store = self.store
        assert store is not None
        present: dict[str, int] = {}
        if resuming:
            present = {f.path: f.size for f in store.list(tenant_id)}

        def put(item: SourceFile) -> int:
            if present.get(item.path) == item.size:
                return -1
            store.put(
                tenant_id, item.path, _chunks(item.local), max_bytes=item.size, content_type=media_type_of(item.path)
            )
            return item.size

        for size in parallel(put, self.source.files(tenant_id), self.options.file_workers):
            if size >= 0:
                self.report.files_copied.files += 1
                self.report.files_copied.bytes += size

    # -- the verification --------------------------------------------------------------------------

    def _compare(self, catalog: Catalog, tenant_id: str | None) -> list[TableCheck]:
        """Every table of one unit, source against target."""
        path = self.source.data.registry_db if tenant_id is None else self.source.tenant_db(tenant_id)
        unit = tenant_id or "registry"
        sums: dict[str, TableSum] = {}
        if path.is_file():
            with self.source.open(path) as conn:
                for table in catalog.tables.values():
                    sums[table.name] = _sum(source_rows(conn, table))
        else:
            sums = {t.name: _sum(source_rows(None, t)) for t in catalog.tables.values()}
        checks = []
        with self.target.transaction(tenant_id):
            for table in catalog.tables.values():
                mine, theirs = sums[table.name], self.target.table_sum(table)
                checks.append(TableCheck(unit, table.name, mine.rows, theirs.rows, mine.checksum, theirs.checksum))
        return checks

    def verify(self) -> Report:
        """Compare every table, identity counter and (with a store) file; the report holds the result."""
        report = self.report
        report.tables, report.sequences, report.file_problems = [], [], []
        report.files = FileTotals()
        tenant_ids = self.source.tenant_ids()
        report.tables += self._compare(registry_catalog(), None)
        for tenant_id in tenant_ids:
            report.tables += self._compare(tenant_catalog(), tenant_id)
        report.sequences = self.target.sequence_checks(self._highest(tenant_ids))
        for tenant_id in tenant_ids:
            if self.store is None:
                for item in self.source.files(tenant_id):
                    report.files.files += 1
                    report.files.bytes += item.size
            else:
                self._verify_files(tenant_id)
        report.verified_files = self.store is not None
        report.not_copied = self._not_copied(tenant_ids)
        return report

    def _verify_files(self, tenant_id: str) -> None:
        store = self.store
        assert store is not None
        listed = {f.path: f.size for f in store.list(tenant_id)}
        seen: set[str] = set()

        def check(item: SourceFile) -> FileProblem | None:
            target_size = listed.get(item.path)
            if target_size is None:
                return FileProblem(tenant_id, item.path, "missing", source_size=item.size)
            if target_size != item.size:
                return FileProblem(tenant_id, item.path, "size", source_size=item.size, target_size=target_size)
            mine = _sha256(_chunks(item.local))
            try:
                theirs = _sha256(store.read(tenant_id, item.path))
            except FileMissing:
                return FileProblem(tenant_id, item.path, "missing", source_size=item.size)
            if mine != theirs:
                return FileProblem(
                    tenant_id, item.path, "sha256", item.size, target_size, source_sha256=mine, target_sha256=theirs
                )
            return None

        def counted(items: Iterable[SourceFile]) -> Iterator[SourceFile]:
            for item in items:
                seen.add(item.path)
                self.report.files.files += 1
                self.report.files.bytes += item.size
                yield item

        for problem in parallel(check, counted(self.source.files(tenant_id)), self.options.file_workers):
            if problem is not None:
                self.report.file_problems.append(problem)
        for path in sorted(set(listed) - seen):
            if path.startswith(("packages/", "uploads/")):
                self.report.file_problems.append(FileProblem(tenant_id, path, "extra", target_size=listed[path]))

    def _not_copied(self, tenant_ids: list[str]) -> list[str]:
        notes = []
        data = self.source.data
        if (data.root / "settings.toml").is_file():
            notes.append("settings.toml: give the workers their settings (with `database` and `files`) yourself")
        for name in self.source.orphan_folders(tenant_ids):
            notes.append(f"tenants/{name}: a folder without a registry row (a deleted tenant's leftovers)")
        for tenant_id in tenant_ids:
            for entry in self.source.other_entries(tenant_id):
                notes.append(f"tenants/{tenant_id}/{entry}: not a database or package file")
        return notes


def _sum(rows: Iterable[tuple[object, ...]]) -> TableSum:
    found = TableSum()
    for row in rows:
        found.add(row)
    return found


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            yield chunk


def _sha256(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def parallel(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`fn` over `items` on `workers` threads, at most a few per worker queued (a million files are never
    all submitted at once); results in completion order; the first failure is raised."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="migrate-files") as pool:
        pending: set[Future[R]] = set()
        for item in items:
            pending.add(pool.submit(fn, item))
            if len(pending) >= workers * 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


def migrate(options: MigrationOptions, *, now: float | None = None) -> Report:
    """Copy the data directory into the target and verify it (`MigrationRefused` before any write)."""
    run = Migration(options)
    try:
        return run.run(now)
    finally:
        run.close()


def verify(options: MigrationOptions) -> Report:
    """Compare the data directory with the target without writing anything (`--verify-only`)."""
    run = Migration(options)
    try:
        return run.verify()
    finally:
        run.close()
