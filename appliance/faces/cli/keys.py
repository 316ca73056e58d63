"""`scorm-appliance keys …`: wrappers over appliance.services.tenancy.apikeys."""

from __future__ import annotations

from typing import Any

import click

from appliance.clock import rfc3339
from appliance.faces.cli.common import admin_command, table
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import create_key, key_json, list_keys, revoke_key
from appliance.services.tenancy.roles import DEFAULT_KEY_ROLE, ROLES


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--tenant", "tenant", required=True, help="Tenant id or name.")
@click.option("--name", default=None, help="A label for the key.")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=DEFAULT_KEY_ROLE,
    show_default=True,
    help="What the key may do: admin (everything, webhooks included), member (packages, sessions, reports), "
    "read (GET only), learner (start sessions and get launch URLs).",
)
@admin_command
def create(inst: Instance, tenant: str, name: str | None, role: str) -> tuple[Any, str]:
    """Create an API key; the key is printed this once and never again."""
    key, secret = create_key(inst, tenant, name, role)
    text = (
        f"Key id: {key.id} (role {key.role})\nAPI key (shown once, store it now):\n\n  {secret}\n\n"
        f"Try it:\n  curl -H 'Authorization: Bearer {secret}' http://127.0.0.1:8080/api/v1/tenant"
    )
    return key_json(key, secret), text


@keys.command("list")
@click.option("--tenant", "tenant", required=True, help="Tenant id or name.")
@admin_command
def list_(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List a tenant's keys (never their secrets)."""
    found = list_keys(inst, tenant)
    rows = [
        [k.id, k.name or "", k.role, rfc3339(k.created_at) or "", "revoked" if k.revoked else "active"] for k in found
    ]
    return [key_json(k) for k in found], table(rows, ["ID", "NAME", "ROLE", "CREATED", "STATUS"])


@keys.command("revoke")
@click.argument("key_id")
@admin_command
def revoke(inst: Instance, key_id: str) -> tuple[Any, str]:
    """Revoke a key; a running server refuses it at once."""
    key = revoke_key(inst, key_id)
    return key_json(key), f"Revoked {key.id}."
