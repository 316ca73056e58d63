"""`scorm-appliance tenants …`: wrappers over appliance.services.tenancy.tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from appliance.core.scorm.elements import SUSPEND_DATA_12_MAX, SUSPEND_DATA_12_SPM
from appliance.faces.cli.common import admin_command, table
from appliance.faces.cli.maintenance import tenant_export, tenant_import
from appliance.instance import Instance
from appliance.services.tenancy.quotas import PLANS, format_size
from appliance.services.tenancy.roles import DEFAULT_JWT_ROLE, ROLES
from appliance.services.tenancy.tenants import (
    JwtConfig,
    Tenant,
    create_tenant,
    delete_tenant,
    get_tenant,
    list_tenants,
    set_jwt,
    set_status,
    set_suspend_data_limit,
    tenant_json,
)


def _text(t: Tenant) -> str:
    lines = [
        f"id:            {t.id}",
        f"name:          {t.name}",
        f"plan:          {t.plan}",
        f"status:        {t.status}",
        f"storage quota: {format_size(t.storage_limit_bytes)}",
        f"rate limit:    {t.rate_limit_per_minute}/min",
        f"session ttl:   {t.session_ttl_seconds} s",
        f"1.2 suspend_data limit: {t.scorm12_suspend_data_limit} characters",
    ]
    if t.jwt:
        lines.append(f"jwt:           iss={t.jwt.issuer} aud={t.jwt.audience} claim={t.jwt.claim}")
        lines.append(
            f"jwt roles:     claim={t.jwt.role_claim} prefix={t.jwt.role_prefix!r} default={t.jwt.default_role}"
        )
    return "\n".join(lines)


@click.group()
def tenants() -> None:
    """Create, list, show, suspend, resume and delete tenants."""


@tenants.command("create")
@click.argument("name")
@click.option("--plan", type=click.Choice(list(PLANS)), default="free", show_default=True, help="Sets default quotas.")
@admin_command
def create(inst: Instance, name: str, plan: str) -> tuple[Any, str]:
    """Create a tenant named NAME."""
    tenant = create_tenant(inst, name, plan)
    hint = f"\n\nCreate an API key with:\n  scorm-appliance keys create --tenant {tenant.id}"
    return tenant_json(tenant), _text(tenant) + hint


@tenants.command("list")
@admin_command
def list_(inst: Instance) -> tuple[Any, str]:
    """List every tenant."""
    found = list_tenants(inst)
    rows = [[t.id, t.name, t.plan, t.status] for t in found]
    return [tenant_json(t) for t in found], table(rows, ["ID", "NAME", "PLAN", "STATUS"])


@tenants.command("show")
@click.argument("tenant")
@admin_command
def show(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Show one tenant (by id or name)."""
    found = get_tenant(inst, tenant)
    return tenant_json(found), _text(found)


@tenants.command("suspend")
@click.argument("tenant")
@admin_command
def suspend(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Suspend a tenant: its requests get 403 until it is resumed."""
    found = set_status(inst, tenant, "suspended")
    return tenant_json(found), f"Suspended {found.id} ({found.name})."


@tenants.command("resume")
@click.argument("tenant")
@admin_command
def resume(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Resume a suspended tenant."""
    found = set_status(inst, tenant, "active")
    return tenant_json(found), f"Resumed {found.id} ({found.name})."


@tenants.command("delete")
@click.argument("tenant")
@admin_command
def delete(inst: Instance, tenant: str) -> tuple[Any, str]:
    """Delete a tenant with its keys, database and package files."""
    found = delete_tenant(inst, tenant)
    return {**tenant_json(found), "deleted": True}, f"Deleted {found.id} ({found.name})."


@tenants.command("set-jwt")
@click.argument("tenant")
@click.option("--issuer", help="Expected `iss` claim.")
@click.option("--audience", help="Expected `aud` claim.")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False), help="A JWKS JSON file.")
@click.option("--jwks-url", help="A JWKS URL (fetched and cached).")
@click.option("--claim", default="org_id", show_default=True, help="The claim that names the tenant.")
@click.option("--claim-value", help="The value of that claim for this tenant (default: the tenant id).")
@click.option("--role-claim", default="role", show_default=True, help="The claim that names the user's role.")
@click.option("--role-prefix", default="", help="Only role values with this prefix count (e.g. 'org:').")
@click.option(
    "--default-role",
    type=click.Choice(ROLES),
    default=DEFAULT_JWT_ROLE,
    show_default=True,
    help="The role of a token whose role claim names no role.",
)
@click.option("--remove", is_flag=True, help="Stop accepting JWTs for this tenant.")
@admin_command
def set_jwt_cmd(
    inst: Instance,
    tenant: str,
    issuer: str | None,
    audience: str | None,
    jwks_file: str | None,
    jwks_url: str | None,
    claim: str,
    claim_value: str | None,
    role_claim: str,
    role_prefix: str,
    default_role: str,
    remove: bool,
) -> tuple[Any, str]:
    """Accept browser users' JWTs for TENANT, verified against a JWKS file or URL."""
    if remove:
        found = set_jwt(inst, tenant, None)
        return tenant_json(found), f"{found.id} no longer accepts JWTs."
    if not issuer or not audience:
        raise click.UsageError("--issuer and --audience are required (or --remove)")
    config = JwtConfig(
        issuer=issuer,
        audience=audience,
        jwks_file=str(Path(jwks_file).resolve()) if jwks_file else None,
        jwks_url=jwks_url,
        claim=claim,
        claim_value=claim_value,
        role_claim=role_claim,
        role_prefix=role_prefix,
        default_role=default_role,
    )
    found = set_jwt(inst, tenant, config)
    return tenant_json(found), _text(found)


@tenants.command("set-suspend-data-limit")
@click.argument("tenant")
@click.argument("characters", type=click.IntRange(SUSPEND_DATA_12_SPM, SUSPEND_DATA_12_MAX))
@admin_command
def set_suspend_data_limit_cmd(inst: Instance, tenant: str, characters: int) -> tuple[Any, str]:
    """Set how many CHARACTERS (4096 to 64000) SCORM 1.2 suspend_data may hold in TENANT's sessions.

    4096 is the SCORM 1.2 limit (strict: a longer cmi.suspend_data is refused with error 405, "Incorrect
    Data Type"); the default, 64000, lets content from authoring tools that write more resume. A
    package's own setting overrides it (PATCH /api/v1/packages/{id}). A running server applies the change
    within 5 seconds, to every commit; an open player page keeps the limit it loaded with until it is
    reloaded. SCORM 2004 packages are not affected.
    """
    found = set_suspend_data_limit(inst, tenant, characters)
    return tenant_json(found), f"{found.id}: SCORM 1.2 suspend_data holds up to {characters} characters."


tenants.add_command(tenant_export)
tenants.add_command(tenant_import)
