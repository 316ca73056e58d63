"""The server's own pages, for superusers: backups (run, list, download), the recent log lines, and
the effective settings (read-only).

Backups go to `<data_dir>-backups/<UTC time>/` beside the data directory (appliance.services.operations.backup refuses a
destination inside it), one directory per run, as `scorm-appliance backup` writes them; a download is
that directory as a .tar.gz made on the fly in the data directory's tmp/ and removed once sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.params import FromPath, FromQuery
from litestar.response import File, Template

from appliance import config, logging_setup
from appliance.errors import Forbidden, NotFound
from appliance.faces.console.auth import ADDRESS_BLOCK_SECONDS, ADDRESS_FAILURES_PER_MINUTE, SuperuserDep, instance
from appliance.faces.console.render import page
from appliance.instance import Instance
from appliance.services.operations import backup, backup_format
from appliance.services.tenancy import admins

_BACKUP_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
SECRET_SETTINGS = re.compile(r"secret|password|token|key", re.IGNORECASE)


def backups_dir(inst: Instance) -> Path:
    """Where the console's backups go: beside the data directory, never in it."""
    root = Path(inst.config.data_dir).absolute()
    return root.parent / f"{root.name}-backups"


def list_backups(inst: Instance) -> list[dict[str, Any]]:
    """The console's backups, newest first, with their manifests' summaries."""
    root = backups_dir(inst)
    found = []
    for path in sorted(root.glob("*"), reverse=True) if root.is_dir() else []:
        if not _BACKUP_NAME.match(path.name) or not (path / "manifest.json").is_file():
            continue
        manifest = backup_format.read_manifest(path)
        files = manifest.get("files", {})
        found.append(
            {
                "name": path.name,
                "created_at": manifest.get("created_at"),
                "tenants": len(manifest.get("tenants", [])),
                "files": len(files),
                "bytes": sum(f.get("size", 0) for f in files.values()),
            }
        )
    return found


# What the backups page says on PostgreSQL, where there is no SQLite file to copy.
ON_POSTGRESQL = (
    "this appliance's rows are in PostgreSQL: back them up with the database server's own tools (pg_dump, base "
    "backups and WAL archiving; docs/backup.md); the console's backups copy the SQLite files of an embedded appliance"
)


def run_backup(inst: Instance) -> dict[str, Any]:
    """A full online backup into a new directory named by the UTC time (refused on PostgreSQL: no files)."""
    if inst.backend == "postgresql":  # the action is not offered (no form); made by hand, it is not allowed
        raise Forbidden(ON_POSTGRESQL, {"reason": "postgresql"})
    stamp = dt.datetime.fromtimestamp(inst.clock.now(), tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    root = backups_dir(inst)
    dest, n = root / stamp, 1
    while dest.exists():
        dest, n = root / f"{stamp}-{n}", n + 1
    return backup.backup(Path(inst.config.data_dir), dest)


def pack_backup(inst: Instance, name: str) -> Path:
    """The backup directory `name` as a .tar.gz in the data directory's tmp/ (the caller removes it)."""
    if not _BACKUP_NAME.match(name) or not (backups_dir(inst) / name / "manifest.json").is_file():
        raise NotFound(f"no backup {name!r}")
    fd, tmp = tempfile.mkstemp(prefix="console-backup-", suffix=".tar.gz", dir=inst.data.tmp)
    os.close(fd)
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(backups_dir(inst) / name, arcname=name)
    return Path(tmp)


def _sources(inst: Instance) -> dict[str, str]:
    """Where each setting's value came from, by the order load_config applies them: a value the
    settings file and the environment do not explain came from a command-line flag."""
    data_dir = Path(inst.config.data_dir)
    try:
        from_file = config.file_overrides(data_dir)
    except (OSError, ValueError):
        from_file = {}
    from_env = config.env_overrides(os.environ)
    try:
        explained = (
            config.Config(data_dir=data_dir)
            .with_overrides(from_file)
            .with_overrides({k: v for k, v in from_env.items() if k != "data_dir"})
        )
    except (ValueError, TypeError):
        explained = config.Config(data_dir=data_dir)
    found = {}
    for name in config.setting_names():
        if name == "data_dir":
            found[name] = "environment" if "data_dir" in from_env else "command line or default"
        elif getattr(inst.config, name) != getattr(explained, name):
            found[name] = "command line"
        elif name in from_env:
            found[name] = f"environment ({config.ENV_PREFIX}{name.upper()})"
        elif name in from_file:
            found[name] = f"{config.SETTINGS_FILE}"
        else:
            found[name] = "default"
    return found


def settings_rows(inst: Instance) -> list[tuple[str, str, str]]:
    """Every setting with its effective value and its source; anything that looks like a secret is masked."""
    sources, out = _sources(inst), []
    for f in dataclasses.fields(inst.config):
        value = getattr(inst.config, f.name)
        text = json.dumps(value, default=str) if not isinstance(value, str | Path) else str(value)
        if SECRET_SETTINGS.search(f.name) and value:
            text = "•••• (set)"
        out.append((f.name, text, sources.get(f.name, "")))
    return out


def console_rows(inst: Instance) -> list[tuple[str, str, str]]:
    """The console's own limits and its backup location: fixed in the code (or derived from
    `data_dir`), so they are shown with that source rather than as settings one could change."""
    return [
        ("Backup location", str(backups_dir(inst)), "beside data_dir: <data_dir>-backups (never inside it)"),
        (
            "Account lockout",
            f"{admins.LOCK_AFTER} wrong passwords in a row",
            "built in (appliance.services.tenancy.admins)",
        ),
        (
            "Account locked for",
            f"{admins.LOCK_SECONDS // 60:g} minutes",
            "built in (appliance.services.tenancy.admins)",
        ),
        (
            "Address block",
            f"{ADDRESS_FAILURES_PER_MINUTE} failed sign-ins in a minute from one address",
            "built in (appliance.faces.console.auth)",
        ),
        ("Address blocked for", f"{ADDRESS_BLOCK_SECONDS // 60:g} minutes", "built in (appliance.faces.console.auth)"),
        (
            "Session idle expiry",
            f"{admins.IDLE_SECONDS // 60:g} minutes",
            "built in (appliance.services.tenancy.admins)",
        ),
        (
            "Session absolute expiry",
            f"{admins.ABSOLUTE_SECONDS // 3600:g} hours",
            "built in (appliance.services.tenancy.admins)",
        ),
        (
            "API authentication failures",
            f"{inst.config.auth_failures_per_minute} a minute per address, then blocked "
            f"{inst.config.auth_block_seconds:g} s",
            "settings auth_failures_per_minute, auth_block_seconds (below)",
        ),
    ]


class ServerPages(Controller):
    """`/admin/backups`, `/admin/logs`, `/admin/settings` (superusers only: the `superuser` dependency)."""

    @get("/backups", sync_to_thread=True)
    def backups(self, request: Request[Any, Any, Any], superuser: SuperuserDep) -> Template:
        """The backups taken from the console."""
        inst = instance(request)
        on_pg = ON_POSTGRESQL if inst.backend == "postgresql" else None
        listed = list_backups(inst)
        return page(request, "backups.html", backups=listed, where=str(backups_dir(inst)), done=None, on_pg=on_pg)

    @post("/backups", status_code=201)
    async def run(self, request: Request[Any, Any, Any], superuser: SuperuserDep) -> Template:
        """Take a backup now (online: the server keeps serving) and show the list."""
        inst = instance(request)
        done = await asyncio.to_thread(run_backup, inst)
        listed = await asyncio.to_thread(list_backups, inst)
        return page(request, "backups.html", status_code=201, backups=listed, where=str(backups_dir(inst)), done=done)

    @get("/backups/{name:str}/download", sync_to_thread=True)
    def download(self, request: Request[Any, Any, Any], superuser: SuperuserDep, name: FromPath[str]) -> File:
        """The backup as a .tar.gz."""
        path = pack_backup(instance(request), name)
        return File(
            path,
            filename=f"scorm-appliance-backup-{name}.tar.gz",
            media_type="application/gzip",
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    @get("/logs", sync_to_thread=False)
    def logs(
        self,
        request: Request[Any, Any, Any],
        superuser: SuperuserDep,
        q: FromQuery[str | None] = None,
    ) -> Template:
        """The server's recent log lines (newest last), optionally only those containing `q`."""
        ring = logging_setup.recent
        lines = ring.lines() if ring is not None else []
        if q:
            lines = [line for line in lines if q in line]
        return page(
            request, "logs.html", lines=lines[-500:], q=q or "", kept=logging_setup.RECENT_LINES, on=ring is not None
        )

    @get("/settings", sync_to_thread=False)
    def settings(self, request: Request[Any, Any, Any], superuser: SuperuserDep) -> Template:
        """The effective configuration (defaults < settings file < environment < flags), read-only."""
        inst = instance(request)
        return page(request, "settings.html", settings=settings_rows(inst), console=console_rows(inst))
