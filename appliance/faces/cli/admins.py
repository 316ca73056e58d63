"""`scorm-appliance admins …`: console accounts (appliance.services.tenancy.admins); the only way to make the first one.

Passwords are read from a prompt (hidden, typed twice) or, for scripts, from standard input with
`--password-stdin`; never from an argument, which would land in the shell history and `ps`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from appliance.clock import rfc3339
from appliance.faces.cli.common import admin_command, table
from appliance.instance import Instance
from appliance.services.tenancy.admins import admin_json, create_admin, delete_admin, list_admins, set_password


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)


@click.group()
def admins() -> None:
    """Admin console accounts: superusers, or admins of one tenant."""


@admins.command("create")
@click.argument("username")
@click.option(
    "--tenant", default=None, help="Tenant id or name: the account sees only that tenant (default: superuser)."
)
@password_stdin
@admin_command
def create(inst: Instance, username: str, tenant: str | None, password_stdin: bool) -> tuple[Any, str]:
    """Create a console account (a superuser unless --tenant is given)."""
    admin = create_admin(inst, username, _read_password(password_stdin), tenant)
    role = f"admin of tenant {admin.tenant_id}" if admin.tenant_id else "superuser"
    return admin_json(admin), f"Created {admin.username} ({role}). Sign in at /admin."


@admins.command("list")
@admin_command
def list_(inst: Instance) -> tuple[Any, str]:
    """List console accounts (never their passwords)."""
    found = list_admins(inst)
    rows = [[a.username, a.id, a.tenant_id or "(superuser)", rfc3339(a.last_login_at) or "never"] for a in found]
    return [admin_json(a) for a in found], table(rows, ["USERNAME", "ID", "TENANT", "LAST LOGIN"])


@admins.command("delete")
@click.argument("username")
@admin_command
def delete(inst: Instance, username: str) -> tuple[Any, str]:
    """Delete an account; its console sessions end at once."""
    admin = delete_admin(inst, username)
    return admin_json(admin), f"Deleted {admin.username}."


@admins.command("passwd")
@click.argument("username")
@password_stdin
@admin_command
def passwd(inst: Instance, username: str, password_stdin: bool) -> tuple[Any, str]:
    """Set an account's password; unlocks it and ends its sessions."""
    admin = set_password(inst, username, _read_password(password_stdin))
    return admin_json(admin), f"Password of {admin.username} changed; its sessions have ended."
