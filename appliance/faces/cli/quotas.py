"""`scorm-appliance quotas …` and `usage`: wrappers over appliance.services.tenancy.tenants and appliance.services.tenancy.usage."""

from __future__ import annotations

from typing import Any

import click

from appliance.faces.cli.common import admin_command
from appliance.instance import Instance
from appliance.services.tenancy.quotas import format_size, parse_rate, parse_size
from appliance.services.tenancy.tenants import Tenant, get_tenant, set_quotas
from appliance.services.tenancy.usage import get_usage


def _quota_json(t: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": t.id,
        "plan": t.plan,
        "storage_bytes": t.storage_limit_bytes,
        "requests_per_minute": t.rate_limit_per_minute,
        "session_ttl_seconds": t.session_ttl_seconds,
    }


def _quota_text(t: Tenant) -> str:
    return (
        f"tenant:       {t.id} ({t.name}, plan {t.plan})\n"
        f"storage:      {format_size(t.storage_limit_bytes)}\n"
        f"rate limit:   {t.rate_limit_per_minute}/min\n"
        f"session ttl:  {t.session_ttl_seconds} s"
    )


@click.group()
def quotas() -> None:
    """Show and set a tenant's quotas."""


@quotas.command("set")
@click.option("--tenant", "tenant", required=True, help="Tenant id or name.")
@click.option("--storage", default=None, help="Storage quota, e.g. 50GB, 512MiB or unlimited.")
@click.option("--rate", default=None, help="API rate limit, e.g. 1000/min.")
@click.option("--session-ttl", type=int, default=None, help="Seconds of inactivity before a session expires.")
@admin_command
def set_(
    inst: Instance, tenant: str, storage: str | None, rate: str | None, session_ttl: int | None
) -> tuple[Any, str]:
    """Set a tenant's storage quota, rate limit or session expiry."""
    if storage is None and rate is None and session_ttl is None:
        raise click.UsageError("give at least one of --storage, --rate, --session-ttl")
    found = set_quotas(
        inst,
        tenant,
        storage_bytes=parse_size(storage) if storage is not None else ...,
        requests_per_minute=parse_rate(rate) if rate is not None else None,
        session_ttl_seconds=session_ttl,
    )
    return _quota_json(found), _quota_text(found)


@quotas.command("show")
@click.option("--tenant", "tenant", required=True, help="Tenant id or name.")
@admin_command
def show(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Show a tenant's quotas."""
    found = get_tenant(inst, tenant)
    return _quota_json(found), _quota_text(found)


@click.command("usage")
@click.option("--tenant", "tenant", required=True, help="Tenant id or name.")
@admin_command
def usage(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Show a tenant's stored bytes and API requests against its limits."""
    data = get_usage(inst, get_tenant(inst, tenant))
    limits = data["limits"]
    text = (
        f"storage:       {format_size(data['storage_bytes'])} of {format_size(limits['storage_bytes'])}"
        f" (packages {format_size(data['package_bytes'])}, sessions {format_size(data['session_bytes'])})\n"
        f"API requests:  {data['api_requests']['count']} since {data['api_requests']['period_start']}\n"
        f"rate limit:    {limits['requests_per_minute']}/min"
    )
    return data, text
