"""`scorm-appliance doctor`: check a data directory and say what to do about each problem.

Read-only: it never creates, migrates or repairs anything, so it is safe beside a running server and
on a damaged data directory. Each check returns `Finding`s; severity `error` means something is
broken or stuck (the command exits 1), `warning` means something to look at (exit 0 unless
`--strict`), and `ok` records a check that passed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import apsw

from appliance.config import Config
from appliance.services.operations.backup_format import KNOWN_MIGRATIONS, PROCESS_JOB, open_db
from appliance.services.tenancy.quotas import format_size
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import rows

SEVERITIES = ("ok", "warning", "error")
MIN_FREE_BYTES = 256 * 1024**2  # below this: error (uploads and SQLite writes will fail)
LOW_FREE_BYTES = 2 * 1024**3  # below this: warning
PROCESSING_GRACE_SECONDS = 60.0  # an upload enqueues its job right after its row commits
MAX_LISTED = 20  # findings of one kind listed one by one; the rest are summed up

RESTORE_ACTION = (
    "Stop the server, keep a copy of the damaged file, and restore from your last backup (docs/backup.md). "
    "Without a backup, `sqlite3 {path} .recover` salvages what is still readable."
)


def _uid() -> int:
    """This process's user id (-1 on Windows, which has none: ownership is not checked there)."""
    getuid = getattr(os, "getuid", None)
    return int(getuid()) if getuid is not None else -1


@dataclass(frozen=True)
class Finding:
    """One result: what was checked, how bad it is, what was found and what to do about it."""

    check: str
    severity: str
    message: str
    action: str | None = None
    path: str | None = None


@dataclass
class _Db:
    path: Path
    label: str
    healthy: bool


class Doctor:
    """The checks over one data directory."""

    def __init__(self, config: Config, *, now: float | None = None) -> None:
        self.config = config
        self.data = DataDir(Path(config.data_dir))
        self.now = time.time() if now is None else now
        self.findings: list[Finding] = []

    # -- reporting -----------------------------------------------------------------------------

    def add(self, check: str, severity: str, message: str, action: str | None = None, path: Path | None = None) -> None:
        """Record a finding."""
        self.findings.append(Finding(check, severity, message, action, str(path) if path is not None else None))

    def add_many(self, check: str, severity: str, items: list[tuple[str, str | None, Path | None]]) -> None:
        """Record findings of one kind, the first MAX_LISTED one by one and the rest as one summary."""
        for message, action, path in items[:MAX_LISTED]:
            self.add(check, severity, message, action, path)
        if len(items) > MAX_LISTED:
            self.add(check, severity, f"… and {len(items) - MAX_LISTED} more like the above")

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        """Run every check that the state of the data directory allows; return the findings."""
        if not self.check_data_dir():
            return self.findings
        self.check_permissions()
        self.check_disk()
        registry = self.check_database(self.data.registry_db, "registry.db")
        tenant_ids = self.check_tenant_folders(registry)
        tenant_dbs = {
            tid: self.check_database(self.data.tenant_db(tid), f"tenant {tid}")
            for tid in tenant_ids
            if self.data.tenant_db(tid).is_file()
        }
        healthy = [tid for tid, db in tenant_dbs.items() if db.healthy]
        if registry.healthy:
            pending = self.check_jobs()
            for tid in healthy:
                self.check_packages(tid, pending)
        return self.findings

    # -- data directory, permissions, disk -----------------------------------------------------

    def check_data_dir(self) -> bool:
        """The data directory exists, is writable and holds a registry. False stops the run."""
        root = self.data.root
        if not root.exists():
            self.add(
                "data_dir",
                "error",
                f"the data directory {root} does not exist",
                "Check --data-dir / SCORM_APPLIANCE_DATA_DIR. A new appliance creates it at the first "
                "`scorm-appliance serve`; to move an existing one, restore a backup there (`scorm-appliance restore`).",
                root,
            )
            return False
        if not root.is_dir():
            self.add("data_dir", "error", f"{root} is not a directory", "Point --data-dir at a directory.", root)
            return False
        probe = root / f".doctor-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            self.add(
                "data_dir",
                "error",
                f"the data directory {root} is not writable by this user (uid {_uid()}): {exc.strerror}",
                f"Run as the user the service runs as, or give it the directory: `chown -R <user> {root}`.",
                root,
            )
            return False
        if not self.data.registry_db.is_file():
            self.add(
                "data_dir",
                "error",
                f"{root} holds no registry.db: it is not (yet) an appliance data directory",
                "Start `scorm-appliance serve` once to initialise it, or restore a backup into it.",
                root,
            )
            return False
        self.add("data_dir", "ok", f"data directory {root} exists and is writable")
        return True

    def check_permissions(self) -> None:
        """Every folder and database is readable and writable by us, owned by us and not world-writable."""
        uid = _uid()
        problems: list[tuple[str, str | None, Path | None]] = []
        warnings: list[tuple[str, str | None, Path | None]] = []
        for path in self._permission_targets():
            try:
                st = path.stat()
            except OSError:
                continue
            if not os.access(path, os.R_OK | os.W_OK | (os.X_OK if path.is_dir() else 0)):
                problems.append(
                    (
                        f"{path} is not readable and writable by this user (uid {uid})",
                        f"`chown -R <service user> {self.data.root}` and `chmod -R u+rwX {self.data.root}`.",
                        path,
                    )
                )
            elif uid > 0 and st.st_uid != uid:
                warnings.append(
                    (
                        f"{path} belongs to uid {st.st_uid}, not to this user (uid {uid})",
                        "Run the appliance and its commands as one user (the service's), "
                        f"or `chown -R <service user> {self.data.root}`.",
                        path,
                    )
                )
            if st.st_mode & 0o002:
                warnings.append(
                    (
                        f"{path} is writable by every user on this machine",
                        f"`chmod o-w {path}` (the service unit's UMask=0077 keeps new files private).",
                        path,
                    )
                )
        self.add_many("permissions", "error", problems)
        self.add_many("permissions", "warning", warnings)
        if not problems and not warnings:
            self.add("permissions", "ok", "folders and databases have the right owner and permissions")

    def _permission_targets(self) -> Iterator[Path]:
        yield self.data.root
        for name in ("registry.db", "registry.db-wal", "registry.db-shm", "tmp", "tenants"):
            yield self.data.root / name
        if self.data.tenants.is_dir():
            for tenant in sorted(self.data.tenants.iterdir()):
                yield tenant
                for name in ("tenant.db", "tenant.db-wal", "tenant.db-shm", "packages", "uploads"):
                    yield tenant / name

    def check_disk(self) -> None:
        """Free space on the data directory's file system."""
        usage = shutil.disk_usage(self.data.root)
        free = f"{format_size(usage.free)} free of {format_size(usage.total)}"
        if usage.free < MIN_FREE_BYTES:
            self.add(
                "disk",
                "error",
                f"the disk holding the data directory is nearly full: {free}",
                "Free space now: uploads and database writes fail when the disk is full. Delete unused packages, "
                "move backups elsewhere, or move the data directory to a larger disk (backup, then restore there).",
                self.data.root,
            )
        elif usage.free < LOW_FREE_BYTES or usage.free < usage.total * 0.05:
            self.add(
                "disk",
                "warning",
                f"disk space is low: {free}",
                "Plan more space: each upload needs its ZIP size plus its extracted size while it is processed.",
                self.data.root,
            )
        else:
            self.add("disk", "ok", f"disk: {free}")

    # -- databases -----------------------------------------------------------------------------

    def check_database(self, path: Path, label: str) -> _Db:
        """`PRAGMA integrity_check` of one database, and whether a newer appliance changed its schema."""
        try:
            conn = open_db(path)
        except apsw.Error as exc:
            self.add(
                "database",
                "error",
                f"{label} ({path}) cannot be opened: {exc}",
                RESTORE_ACTION.format(path=path),
                path,
            )
            return _Db(path, label, False)
        try:
            result = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
            applied = [(str(s), str(n)) for s, n in conn.execute("SELECT migration_set, name FROM _migrations")]
        except apsw.Error as exc:
            result, applied = [f"{type(exc).__name__}: {exc}"], []
        finally:
            try:
                conn.close()
            except apsw.Error:
                pass
        if result != ["ok"]:
            self.add(
                "database",
                "error",
                f"{label} ({path}) is damaged: {'; '.join(result[:5])}",
                RESTORE_ACTION.format(path=path),
                path,
            )
            return _Db(path, label, False)
        unknown = sorted(f"{s}/{n}" for s, n in applied if n not in KNOWN_MIGRATIONS.get(s, set()))
        if unknown:
            self.add(
                "database",
                "error",
                f"{label} was migrated by a newer scorm-appliance ({', '.join(unknown)})",
                "Run the newer version again (downgrades are not supported), or restore the backup taken "
                "before the upgrade (docs/upgrading.md).",
                path,
            )
            return _Db(path, label, False)
        self.add("database", "ok", f"{label} passes the integrity check")
        return _Db(path, label, True)

    def _read(self, path: Path, fn: Callable[[apsw.Connection], Any]) -> Any:
        conn = open_db(path)
        try:
            with conn:
                return fn(conn)
        finally:
            conn.close()

    # -- tenants and packages ------------------------------------------------------------------

    def check_tenant_folders(self, registry: _Db) -> list[str]:
        """Tenants in the registry against folders on disk; returns the tenant ids to check further."""
        on_disk = (
            sorted(p.name for p in self.data.tenants.iterdir() if p.is_dir()) if self.data.tenants.is_dir() else []
        )
        for name in on_disk:
            if name.startswith("."):
                path = self.data.tenants / name
                self.add(
                    "tenants",
                    "warning",
                    f"{path} was left by an interrupted `tenants import`",
                    f"Remove it when no import is running: `rm -rf {path}`.",
                    path,
                )
        on_disk = [n for n in on_disk if not n.startswith(".")]
        if not registry.healthy:
            return on_disk
        registered = [r["id"] for r in self._read(registry.path, lambda c: rows(c, "SELECT id FROM tenants"))]
        for tid in sorted(set(on_disk) - set(registered)):
            path = self.data.tenant_dir(tid)
            self.add(
                "tenants",
                "warning",
                f"the folder {path} belongs to no registered tenant (left by an interrupted delete or restore)",
                f"If it is not needed, remove it: `rm -rf {path}`. To bring it back as a tenant, use a tenant export "
                "(`scorm-appliance tenants import`).",
                path,
            )
        for tid in registered:
            if not self.data.tenant_db(tid).is_file():
                self.add(
                    "tenants",
                    "error",
                    f"tenant {tid} is registered but its database {self.data.tenant_db(tid)} is missing",
                    "Restore the tenant from a backup (a full restore, or `scorm-appliance tenants import` of an "
                    f"export after `scorm-appliance tenants delete {tid}`).",
                    self.data.tenant_db(tid),
                )
        return [t for t in registered if t in on_disk]

    def check_packages(self, tenant_id: str, pending: set[str]) -> None:
        """Package files against the tenant's rows: missing, incomplete, orphaned, and stuck processing."""
        if self.config.files != "local":  # the files are objects in a bucket, not in this directory
            self.add(
                "packages",
                "ok",
                f"tenant {tenant_id}: package files are in an object store (`files`), not checked here",
            )
            return

        def read(conn: apsw.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return (
                rows(conn, "SELECT id FROM packages"),
                rows(conn, "SELECT package_id, version, status, file_count, updated_at FROM package_versions"),
            )

        packages, versions = self._read(self.data.tenant_db(tenant_id), read)
        package_ids = {p["id"] for p in packages}
        by_key = {(v["package_id"], v["version"]): v for v in versions}
        missing: list[tuple[str, str | None, Path | None]] = []
        stuck: list[tuple[str, str | None, Path | None]] = []
        orphans: list[tuple[str, str | None, Path | None]] = []

        for v in versions:
            pkg, ver = v["package_id"], v["version"]
            folder = self.data.version_dir(tenant_id, pkg, ver)
            where = f"tenant {tenant_id}, package {pkg} version {ver}"
            if v["status"] == "ready":
                if not folder.is_dir():
                    missing.append(
                        (
                            f"{where} is ready but its folder {folder} is missing",
                            "Restore it from a backup, or upload the package again as a new version "
                            f"(POST /api/v1/packages/{pkg}/versions) so learners get a working copy.",
                            folder,
                        )
                    )
                else:
                    count = sum(len(files) for _, _, files in os.walk(folder))
                    if count < v["file_count"]:
                        missing.append(
                            (
                                f"{where} has {count} of its {v['file_count']} files in {folder}",
                                "Restore it from a backup, or upload the package again as a new version "
                                f"(POST /api/v1/packages/{pkg}/versions).",
                                folder,
                            )
                        )
            elif v["status"] == "processing" and f"{tenant_id}/{pkg}/{ver}" not in pending:
                if self.now - v["updated_at"] < PROCESSING_GRACE_SECONDS:
                    continue
                zip_path = self.data.uploads_dir(tenant_id) / f"{pkg}-{ver}.zip"
                if zip_path.is_file():
                    stuck.append(
                        (
                            f"{where} is processing but no job is queued for it",
                            "Start the server (or keep it running): its recovery sweep queues a job for it within "
                            "5 minutes. If it stays, look for errors in the server log.",
                            zip_path,
                        )
                    )
                else:
                    stuck.append(
                        (
                            f"{where} is processing, no job is queued for it and its upload {zip_path} is gone",
                            "Start the server: the version then fails with INVALID_PACKAGE ('the uploaded file is "
                            "missing'). Upload the package again as a new version.",
                            zip_path,
                        )
                    )

        packages_dir = self.data.tenant_dir(tenant_id) / "packages"
        if packages_dir.is_dir():
            for pkg_dir in sorted(p for p in packages_dir.iterdir()):
                if pkg_dir.name not in package_ids:
                    orphans.append(
                        (
                            f"{pkg_dir} belongs to no package of tenant {tenant_id}",
                            f"Left by an interrupted delete; remove it: `rm -rf {pkg_dir}`.",
                            pkg_dir,
                        )
                    )
                    continue
                for ver_dir in sorted(p for p in pkg_dir.iterdir()):
                    row = by_key.get((pkg_dir.name, int(ver_dir.name))) if ver_dir.name.isdigit() else None
                    if row is None or row["status"] == "failed":
                        orphans.append(
                            (
                                f"{ver_dir} belongs to no ready version of package {pkg_dir.name}",
                                f"Left by an interrupted processing or delete; remove it: `rm -rf {ver_dir}`.",
                                ver_dir,
                            )
                        )
        uploads_dir = self.data.uploads_dir(tenant_id)
        if uploads_dir.is_dir():
            waiting = {f"{p}-{v}.zip" for (p, v), row in by_key.items() if row["status"] == "processing"}
            for leftover in sorted(uploads_dir.iterdir()):
                if leftover.name not in waiting:
                    orphans.append(
                        (
                            f"{leftover} is an upload no version is waiting for",
                            f"Remove it: `rm {leftover}`.",
                            leftover,
                        )
                    )
        self.add_many("packages", "error", missing)
        self.add_many("packages", "error", stuck)
        self.add_many("packages", "warning", orphans)
        if not (missing or stuck or orphans):
            self.add(
                "packages",
                "ok",
                f"tenant {tenant_id}: {len(package_ids)} package(s), files match the database",
            )

    # -- jobs ----------------------------------------------------------------------------------

    def check_jobs(self) -> set[str]:
        """Running too long, overdue, or failed jobs. Returns the keys of queued and running jobs."""
        found = self._read(
            self.data.registry_db,
            lambda c: rows(c, "SELECT * FROM jobs WHERE status IN ('queued', 'running', 'failed') ORDER BY created_at"),
        )
        stale = self.config.job_stale_seconds
        stuck: list[tuple[str, str | None, Path | None]] = []
        overdue: list[tuple[str, str | None, Path | None]] = []
        failed: list[tuple[str, str | None, Path | None]] = []
        pending: set[str] = set()
        for job in found:
            what = _describe(job)
            if job["status"] in ("queued", "running"):
                key = json.loads(job["payload"] or "{}").get("key")
                if job["kind"] == PROCESS_JOB and key:
                    pending.add(str(key))
            if job["status"] == "running":
                since = job["locked_at"] or job["updated_at"]
                if self.now - since > stale:
                    stuck.append(
                        (
                            f"{what} has been running for {_minutes(self.now - since)} "
                            f"(attempt {job['attempts']} of {job['max_attempts']})",
                            "If no server is running, start it: jobs a stop interrupted are queued again at start. "
                            "If one is, restart the service (`systemctl restart scorm-appliance`); the job then runs "
                            "again. Look in the server log for its id if it gets stuck again.",
                            None,
                        )
                    )
            elif job["status"] == "queued" and self.now - job["run_at"] > stale:
                overdue.append(
                    (
                        f"{what} has waited {_minutes(self.now - job['run_at'])} past its start time",
                        "Is the server running? Jobs run only inside `scorm-appliance serve`; start the service.",
                        None,
                    )
                )
            elif job["status"] == "failed":
                error = (job["last_error"] or "").splitlines()[0][:200] if job["last_error"] else "no error recorded"
                failed.append(
                    (
                        f"{what} failed after {job['attempts']} attempt(s): {error}",
                        "A package whose processing failed is marked failed: fix the cause in the log and upload "
                        "it again as a new version. Failed jobs stay listed for inspection.",
                        None,
                    )
                )
        self.add_many("jobs", "error", stuck)
        self.add_many("jobs", "warning", overdue)
        self.add_many("jobs", "warning", failed)
        if not (stuck or overdue or failed):
            self.add("jobs", "ok", "no stuck, overdue or failed jobs")
        return pending


def _describe(job: dict[str, Any]) -> str:
    payload = json.loads(job["payload"] or "{}")
    subject = ""
    if job["kind"] == PROCESS_JOB and payload.get("package_id"):
        subject = f" for package {payload['package_id']} version {payload.get('version')}"
    tenant = f" of tenant {job['tenant_id']}" if job["tenant_id"] else ""
    return f"job {job['id']} ({job['kind']}{subject}{tenant})"


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_doctor(config: Config, *, now: float | None = None) -> list[Finding]:
    """Every check on `config.data_dir`."""
    return Doctor(config, now=now).run()


def report_json(findings: list[Finding], data_dir: Path) -> dict[str, Any]:
    """The `--json` form."""
    return {
        "data_dir": str(data_dir),
        "ok": not any(f.severity == "error" for f in findings),
        "errors": sum(1 for f in findings if f.severity == "error"),
        "warnings": sum(1 for f in findings if f.severity == "warning"),
        "findings": [asdict(f) for f in findings],
    }


def report_text(findings: list[Finding], data_dir: Path) -> str:
    """The readable form: one line per finding, what to do indented under each problem."""
    labels = {"ok": "ok     ", "warning": "WARNING", "error": "ERROR  "}
    lines = [f"scorm-appliance doctor: {data_dir}", ""]
    for f in findings:
        lines.append(f"{labels[f.severity]}  {f.message}")
        if f.action and f.severity != "ok":
            lines.append(f"         → {f.action}")
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    lines += ["", f"{errors} error(s), {warnings} warning(s)" if errors or warnings else "All checks passed."]
    return "\n".join(lines)
