"""The server's own pages, for superusers: backups (run, list, download), the recent log lines, and
the effective settings (read-only).

Backups go to `<data_dir>-backups/<UTC time>/` beside the data directory (appliance.backup refuses a
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

from appliance import backup, logging_setup
from appliance.console.auth import SuperuserDep, instance
from appliance.console.render import page
from appliance.errors import NotFound
from appliance.instance import Instance

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
        manifest = backup.read_manifest(path)
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


def run_backup(inst: Instance) -> dict[str, Any]:
    """A full online backup into a new directory named by the UTC time."""
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


def settings_rows(inst: Instance) -> list[tuple[str, str]]:
    """Every setting with its effective value; anything that looks like a secret is masked."""
    out = []
    for f in dataclasses.fields(inst.config):
        value = getattr(inst.config, f.name)
        text = json.dumps(value, default=str) if not isinstance(value, str | Path) else str(value)
        if SECRET_SETTINGS.search(f.name) and value:
            text = "•••• (set)"
        out.append((f.name, text))
    return out


class ServerPages(Controller):
    """`/admin/backups`, `/admin/logs`, `/admin/settings` (superusers only: the `superuser` dependency)."""

    @get("/backups", sync_to_thread=True)
    def backups(self, request: Request[Any, Any, Any], superuser: SuperuserDep) -> Template:
        """The backups taken from the console."""
        inst = instance(request)
        return page(request, "backups.html", backups=list_backups(inst), where=str(backups_dir(inst)), done=None)

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
        return page(request, "settings.html", settings=settings_rows(instance(request)))
