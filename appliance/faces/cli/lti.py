"""`scorm-appliance lti …`: LTI 1.3 platform registrations, the tool's signing keys and a link's members
(appliance.services.lms.lti)."""

from __future__ import annotations

from typing import Any

import click

from appliance.faces.cli.common import admin_command, table
from appliance.instance import Instance
from appliance.services.lms.lti import keys as tool_keys
from appliance.services.lms.lti import nrps
from appliance.services.lms.lti import registrations as regs
from appliance.services.lms.lti.launch import ToolUrls
from appliance.services.tenancy.tenants import get_tenant

TENANT = click.option("--tenant", "tenant", required=True, help="Tenant id or name.")


@click.group()
def lti() -> None:
    """Register LTI 1.3 platforms (Moodle, Canvas, Open edX, ...) and rotate the tool's keys."""


@lti.command("tool")
@TENANT
@click.option("--base-url", default=None, help="The appliance's public URL (default: the public_url setting).")
@admin_command
def tool(inst: Instance, tenant: str, base_url: str | None) -> tuple[Any, str]:
    """Print the tool's URLs to paste into a platform: login, launch/redirect, deep linking, JWKS."""
    base = base_url or inst.config.public_url
    if not base:
        raise click.UsageError("set public_url, or pass --base-url https://appliance.example.org")
    urls = ToolUrls(base, get_tenant(inst, tenant).id).json()
    return urls, "\n".join(f"{k:18} {v}" for k, v in urls.items())


@lti.command("add")
@TENANT
@click.option("--issuer", required=True, help="The platform's issuer (iss), e.g. https://moodle.example.org.")
@click.option("--client-id", required=True, help="The client id the platform gave the tool.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True, help="A deployment id (repeatable).")
@click.option("--jwks-url", required=True, help="The platform's public keyset URL.")
@click.option("--auth-url", required=True, help="The platform's OIDC authorisation endpoint.")
@click.option("--token-url", required=True, help="The platform's OAuth 2 access token endpoint (for grades).")
@click.option("--name", default=None, help="A label.")
@admin_command
def add(inst: Instance, tenant: str, **values: Any) -> tuple[Any, str]:
    """Register a platform."""
    values["deployment_ids"] = list(values["deployment_ids"])
    reg = regs.create_registration(inst, get_tenant(inst, tenant).id, **values)
    return reg.json(), f"Registered {reg.id} ({reg.issuer}, client id {reg.client_id})."


@lti.command("list")
@TENANT
@admin_command
def list_(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List the tenant's platform registrations."""
    found = regs.list_registrations(inst, get_tenant(inst, tenant).id)
    rows = [[r.id, r.name, r.issuer, r.client_id, ",".join(r.deployment_ids)] for r in found]
    return [r.json() for r in found], table(rows, ["ID", "NAME", "ISSUER", "CLIENT ID", "DEPLOYMENTS"])


@lti.command("update")
@TENANT
@click.argument("registration_id")
@click.option("--deployment-id", "deployment_ids", multiple=True, help="Replace the deployment ids (repeatable).")
@click.option("--jwks-url", default=None, help="A new platform keyset URL.")
@click.option("--auth-url", default=None, help="A new OIDC authorisation endpoint.")
@click.option("--token-url", default=None, help="A new access token endpoint.")
@click.option("--name", default=None, help="A new label.")
@admin_command
def update(inst: Instance, tenant: str, registration_id: str, **values: Any) -> tuple[Any, str]:
    """Change a registration's deployments or URLs."""
    values["deployment_ids"] = list(values["deployment_ids"]) or None
    reg = regs.update_registration(inst, get_tenant(inst, tenant).id, registration_id, values)
    return reg.json(), f"Updated {reg.id}."


@lti.command("remove")
@TENANT
@click.argument("registration_id")
@admin_command
def remove(inst: Instance, tenant: str, registration_id: str) -> tuple[Any, str]:
    """Remove a registration (its launches stop; sessions stay)."""
    regs.delete_registration(inst, get_tenant(inst, tenant).id, registration_id)
    return {"id": registration_id, "deleted": True}, f"Removed {registration_id}."


@lti.command("keys")
@TENANT
@admin_command
def keys_(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List the tool's published signing keys."""
    found = tool_keys.published(inst, get_tenant(inst, tenant).id)
    rows = [[k.kid, k.json()["status"], k.json()["created_at"] or "", k.json()["published_until"] or ""] for k in found]
    return [k.json() for k in found], table(rows, ["KID", "STATUS", "CREATED", "PUBLISHED UNTIL"])


@lti.command("rotate-key")
@TENANT
@click.option(
    "--grace",
    "grace_seconds",
    type=float,
    default=tool_keys.DEFAULT_GRACE_SECONDS,
    show_default=True,
    help="Seconds the old key stays in the JWKS.",
)
@admin_command
def rotate_key(inst: Instance, tenant: str, grace_seconds: float) -> tuple[Any, str]:
    """Make a new signing key; the old one stays published for the grace period."""
    key = tool_keys.rotate(inst, get_tenant(inst, tenant).id, grace_seconds)
    return key.json(), f"New signing key {key.kid}; the previous key stays published for {grace_seconds:g} s."


@lti.command("members")
@TENANT
@click.argument("registration_id")
@click.argument("link_id")
@admin_command
def members(inst: Instance, tenant: str, registration_id: str, link_id: str) -> tuple[Any, str]:
    """List a resource link's context members, read from the platform (Names and Roles)."""
    found = nrps.link_members(inst, get_tenant(inst, tenant).id, registration_id, link_id)
    rows = [[m["learner_id"], m.get("name") or "", m.get("email") or "", m.get("status") or ""] for m in found["data"]]
    text = table(rows, ["LEARNER", "NAME", "EMAIL", "STATUS"])
    if found["truncated"]:
        text += f"\n(only the first {found['pages']} pages of the platform were read)"
    return found, text
