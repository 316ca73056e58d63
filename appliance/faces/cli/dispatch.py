"""`scorm-appliance dispatches …`: dispatch packages for other LMSs (appliance.services.lms.dispatch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from appliance.faces.cli.common import admin_command, table
from appliance.instance import Instance
from appliance.services.lms import dispatch
from appliance.services.tenancy.tenants import get_tenant

TENANT = click.option("--tenant", "tenant", required=True, help="Tenant id or name.")


def _text(d: dict[str, Any]) -> str:
    counts = d["counts"]
    state = "enabled" if d["enabled"] else "disabled"
    return (
        f"{d['id']} of {d['package_id']} ({state}; cap {d['learner_cap'] or 'none'}; expires {d['expires_at'] or 'never'})\n"
        f"launches {counts['launches']}, learners {counts['learners']}, sessions {counts['sessions']}, "
        f"completed {counts['completed']}, passed {counts['passed']}"
    )


@click.group("dispatches")
def dispatches() -> None:
    """Offer a package to another LMS as a small SCORM ZIP that plays it from here."""


@dispatches.command("create")
@TENANT
@click.option("--package", "package_id", required=True, help="The package id.")
@click.option("--name", default=None, help="A label.")
@click.option("--learner-cap", type=int, default=None, help="How many remote learners may start it (default: no cap).")
@click.option("--expires-at", default=None, help="RFC 3339 time after which new launches are refused.")
@admin_command
def create(
    inst: Instance, tenant: str, package_id: str, name: str | None, learner_cap: int | None, expires_at: str | None
) -> tuple[Any, str]:
    """Create a dispatch of a package."""
    found = dispatch.create_dispatch(
        inst,
        get_tenant(inst, tenant).id,
        package_id=package_id,
        name=name,
        learner_cap=learner_cap,
        expires_at=expires_at,
    )
    return found, _text(found)


@dispatches.command("list")
@TENANT
@admin_command
def list_(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List the tenant's dispatches with their counts."""
    found = dispatch.list_dispatches(inst, get_tenant(inst, tenant).id)
    rows = [
        [
            d["id"],
            d["package_id"],
            "yes" if d["enabled"] else "no",
            str(d["counts"]["learners"]),
            str(d["counts"]["completed"]),
        ]
        for d in found
    ]
    return found, table(rows, ["ID", "PACKAGE", "ENABLED", "LEARNERS", "COMPLETED"])


@dispatches.command("enable")
@TENANT
@click.argument("dispatch_id")
@admin_command
def enable(inst: Instance, tenant: str, dispatch_id: str) -> tuple[Any, str]:
    """Let the dispatch launch again."""
    found = dispatch.update_dispatch(inst, get_tenant(inst, tenant).id, dispatch_id, {"enabled": True})
    return found, _text(found)


@dispatches.command("disable")
@TENANT
@click.argument("dispatch_id")
@admin_command
def disable(inst: Instance, tenant: str, dispatch_id: str) -> tuple[Any, str]:
    """Refuse new launches at once (the remote LMS shows that the course was withdrawn)."""
    found = dispatch.update_dispatch(inst, get_tenant(inst, tenant).id, dispatch_id, {"enabled": False})
    return found, _text(found)


@dispatches.command("download")
@TENANT
@click.argument("dispatch_id")
@click.option(
    "--format", "fmt", type=click.Choice(dispatch.FORMATS), default="1.2", show_default=True, help="SCORM version."
)
@click.option("--base-url", default=None, help="The appliance's public URL (default: the public_url setting).")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), default=None, help="File to write (default: its own name)."
)
@admin_command
def download(
    inst: Instance, tenant: str, dispatch_id: str, fmt: str, base_url: str | None, output: str | None
) -> tuple[Any, str]:
    """Write the dispatch's SCORM ZIP, to import into the other LMS."""
    base = base_url or inst.config.public_url
    if not base:
        raise click.UsageError("set public_url, or pass --base-url https://appliance.example.org")
    name, data = dispatch.package_zip(inst, get_tenant(inst, tenant).id, dispatch_id, fmt, base)
    path = Path(output or name)
    path.write_bytes(data)
    return {"path": str(path), "bytes": len(data), "format": fmt}, f"Wrote {path} ({len(data)} bytes, SCORM {fmt})."
