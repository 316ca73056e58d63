"""Operations commands: `backup`, `restore`, `doctor`, and `tenants export` / `tenants import`.

Each runs beside a running server: backups and exports read the databases with SQLite's online
backup, doctor only reads, and an import adds its tenant in one registry transaction.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from appliance.errors import ApplianceError
from appliance.faces.cli.common import build_config, data_dir_option, fail, json_option
from appliance.instance import Instance
from appliance.services.operations.backup import backup, export_tenant
from appliance.services.operations.backup_format import verify_backup
from appliance.services.operations.doctor import report_json, report_text, run_doctor
from appliance.services.operations.restore import import_tenant, restore
from appliance.services.tenancy.quotas import format_size


def _print(data: dict[str, Any], text: str, as_json: bool) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)


def _report(summary: dict[str, Any], headline: str, next_step: str, as_json: bool) -> None:
    """A copy's summary: the headline with its totals, a line per tenant, the warnings, what to do next."""
    text = [f"{headline}: {_totals(summary)}.", *_tenant_lines(summary), *_warning_lines(summary), next_step]
    _print(summary, "\n".join(text), as_json)


def _tenant_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for t in summary.get("tenants", []):
        lines.append(
            f"  {t.get('name')} ({t['id']}): {t.get('packages', 0)} package(s), "
            f"{t.get('ready_versions', 0)} ready version(s), {t.get('processing_versions', 0)} processing, "
            f"{t.get('sessions', 0)} session(s)"
        )
    return lines


def _warning_lines(summary: dict[str, Any]) -> list[str]:
    return [f"Warning: {w}" for w in summary.get("warnings", [])]


def _totals(summary: dict[str, Any]) -> str:
    return f"{summary['databases']} database(s), {summary['files']} file(s), {format_size(summary['bytes'])}"


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
@json_option
def backup_cmd(dest: Path, data_dir: str | None, as_json: bool) -> None:
    """Back up the whole data directory into DEST (a new or empty directory), while the server runs.

    Databases are copied with SQLite's online backup, package files alongside, and DEST/manifest.json
    lists every file with its SHA-256.
    """
    config = build_config(data_dir)
    try:
        summary = backup(Path(config.data_dir), dest)
    except ApplianceError as exc:
        fail(exc, as_json)
        return
    _report(
        summary,
        f"Backed up {len(summary['tenants'])} tenant(s) to {summary['path']}",
        f"Check it at any time with: scorm-appliance restore {summary['path']} --check",
        as_json,
    )


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Only verify SRC (every checksum and database); restore nothing.")
@data_dir_option
@json_option
def restore_cmd(src: Path, check: bool, data_dir: str | None, as_json: bool) -> None:
    """Restore the backup SRC into the data directory, which must be new or empty.

    Every file is checked against the manifest's SHA-256 as it is copied; on any mismatch nothing is
    left in the data directory. Start the server afterwards: it applies any newer migrations.
    """
    try:
        if check:
            summary = verify_backup(src)
            text = f"{src} is a complete {summary['kind']} backup of {summary['created_at']}: {_totals(summary)}."
            _print({**summary, "valid": True}, "\n".join([text, *_tenant_lines(summary)]), as_json)
            return
        config = build_config(data_dir)
        summary = restore(src, Path(config.data_dir))
    except ApplianceError as exc:
        fail(exc, as_json)
        return
    dd = f" --data-dir {summary['path']}" if data_dir else ""
    _report(
        summary,
        f"Restored the backup of {summary['created_at']} into {summary['path']}",
        f"Start the server on it: scorm-appliance serve{dd}",
        as_json,
    )


@click.command("doctor")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too, not only on errors.")
@data_dir_option
@json_option
def doctor_cmd(strict: bool, data_dir: str | None, as_json: bool) -> None:
    """Check the data directory, permissions, free disk, databases, package files and jobs.

    Says what to do about each problem. Exits 1 when it finds an error (with --strict, also a
    warning), else 0. Only reads: safe beside a running server.
    """
    config = build_config(data_dir)
    logging.disable(logging.ERROR)  # SQLite logs each corrupt page it meets; the findings say it once
    try:
        findings = run_doctor(config)
    finally:
        logging.disable(logging.NOTSET)
    root = Path(config.data_dir)
    _print(report_json(findings, root), report_text(findings, root), as_json)
    bad = {"error", "warning"} if strict else {"error"}
    if any(f.severity in bad for f in findings):
        sys.exit(1)


@click.command("export")
@click.argument("tenant")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
@json_option
def tenant_export(tenant: str, dest: Path, data_dir: str | None, as_json: bool) -> None:
    """Export TENANT (id or name) into DEST (a new or empty directory), while the server runs.

    DEST holds the tenant's settings, API key hashes, database and package files, with checksums;
    `scorm-appliance tenants import DEST` adds it to another appliance.
    """
    config = build_config(data_dir)
    try:
        summary = export_tenant(Path(config.data_dir), tenant, dest)
    except ApplianceError as exc:
        fail(exc, as_json)
        return
    _report(
        summary,
        f"Exported tenant {summary['tenants'][0]['name']} to {summary['path']}",
        f"On the other appliance: scorm-appliance tenants import {summary['path']}",
        as_json,
    )


@click.command("import")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", help="Import under this name (when the exported name is taken here).")
@data_dir_option
@json_option
def tenant_import(src: Path, name: str | None, data_dir: str | None, as_json: bool) -> None:
    """Import a tenant exported with `tenants export` (its id and API keys are kept).

    Works while the server runs: the tenant appears at once, and versions that were still processing
    are queued again.
    """
    inst = None
    try:
        inst = Instance(build_config(data_dir))
        summary = import_tenant(inst, src, name)
    except ApplianceError as exc:
        fail(exc, as_json)
        return
    finally:
        if inst is not None:
            inst.close()
    t = summary["tenant"]
    text = [
        f"Imported tenant {t['name']} ({t['id']}) with {summary['api_keys']} API key(s): {_totals(summary)}.",
        *_warning_lines(summary),
    ]
    _print(summary, "\n".join(text), as_json)
