"""`scorm-appliance lrs-credentials …` and `lrs-forwarding …`: the xAPI LRS's admin commands.

Wrappers over appliance.services.lrs.credentials and appliance.services.lrs.forwarding, like the API's routes. Every
command names its tenant (`--tenant`, id or name) and acts inside it only: a credential or target
of another tenant is "not found", as in the API.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from appliance.clock import rfc3339
from appliance.faces.cli.common import admin_command, table
from appliance.instance import Instance
from appliance.services.lrs import credentials, forwarding_log, forwarding_targets
from appliance.services.tenancy.tenants import get_tenant

TENANT_HELP = "Tenant id or name."


@click.group("lrs-credentials")
def lrs_credentials() -> None:
    """Issue, list and revoke xAPI LRS credentials (HTTP Basic key and secret)."""


@lrs_credentials.command("create")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@click.option("--name", default=None, help="A label for the credential (shown as the authority's name).")
@click.option(
    "--scope",
    type=click.Choice(credentials.SCOPES),
    default="all",
    show_default=True,
    help="What it may do: all, read (GET and HEAD only) or write (PUT, POST and DELETE only).",
)
@admin_command
def create(inst: Instance, tenant: str, name: str | None, scope: str) -> tuple[Any, str]:
    """Issue a credential; the secret is printed this once and never again."""
    cred, secret = credentials.create_credential(inst, tenant, name, scope)
    endpoint = credentials.endpoint_url(inst)
    text = (
        f"LRS credential {cred.id} (scope {cred.scope})\n"
        f"Endpoint: {endpoint}\nKey:      {cred.id}\nSecret (shown once, store it now):\n\n  {secret}\n\n"
        f"Try it:\n  curl -u '{cred.id}:{secret}' -H 'X-Experience-API-Version: 1.0.3' {endpoint}statements"
    )
    return credentials.credential_json(cred, secret, endpoint), text


@lrs_credentials.command("list")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def list_(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List a tenant's credentials, revoked ones included (never their secrets)."""
    found = credentials.list_credentials(inst, tenant)
    rows = [
        [
            c.id,
            c.name or "",
            c.scope,
            rfc3339(c.created_at) or "",
            rfc3339(c.last_used_at) or "never",
            "revoked" if c.revoked else "active",
        ]
        for c in found
    ]
    return [credentials.credential_json(c) for c in found], table(
        rows, ["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "STATUS"]
    )


@lrs_credentials.command("revoke")
@click.argument("credential_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def revoke(inst: Instance, credential_id: str, tenant: str) -> tuple[Any, str]:
    """Revoke a credential; a running server refuses it at the next request."""
    owner = get_tenant(inst, tenant)
    cred = credentials.revoke_credential(inst, credential_id, owner.id)
    return credentials.credential_json(cred), f"Revoked {cred.id}."


# -- forwarding ------------------------------------------------------------------------------------------


@click.group("lrs-forwarding")
def lrs_forwarding() -> None:
    """Forward a tenant's xAPI statements to an external LRS: targets and their delivery log."""


def _summary(target: dict[str, Any]) -> str:
    filters = target["filters"]
    lines = [
        f"Forwarding target {target['id']} ({target['status']})",
        f"Endpoint:   {target['endpoint']} (xAPI {target['version']})",
        f"User:       {target['username'] or '(no credentials)'}",
        f"Verbs:      {', '.join(filters['verbs']) or 'all'}",
        f"Activities: {', '.join(filters['activity_prefixes']) or 'all'}",
        f"Cursor:     seq {target['cursor_seq']}, {target['pending_statements']} statement(s) after it",
        f"Forwarded:  {target['forwarded_count']}, rejected {target['rejected_count']}, "
        f"filtered out {target['filtered_count']}",
    ]
    if target["last_error"]:
        lines.append(f"Failing:    {target['last_error']} (next retry {target['next_retry_at']})")
    return "\n".join(lines)


def _password(password: str | None, password_stdin: bool) -> str | None:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return password


@lrs_forwarding.command("create")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@click.option("--endpoint", required=True, help="The target LRS's endpoint, e.g. https://lrs.example.org/xapi/.")
@click.option("--username", default=None, help="HTTP Basic user name (the target LRS's key).")
@click.option("--password", default=None, help="HTTP Basic password (the target LRS's secret).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option(
    "--xapi-version",
    "version",
    type=click.Choice(forwarding_targets.VERSIONS),
    default="1.0.3",
    show_default=True,
    help="The xAPI version to speak to the target.",
)
@click.option("--verb", "verbs", multiple=True, help="Forward only statements with this verb IRI (repeatable).")
@click.option(
    "--activity-prefix",
    "prefixes",
    multiple=True,
    help="Forward only statements whose object activity id starts with this (repeatable).",
)
@click.option("--name", default=None, help="A label for the target.")
@click.option("--disabled", is_flag=True, help="Create it disabled (it keeps its cursor until enabled).")
@click.option("--forward-existing", is_flag=True, help="Also forward the statements stored before now.")
@admin_command
def fwd_create(
    inst: Instance,
    tenant: str,
    endpoint: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    version: str,
    verbs: tuple[str, ...],
    prefixes: tuple[str, ...],
    name: str | None,
    disabled: bool,
    forward_existing: bool,
) -> tuple[Any, str]:
    """Add a forwarding target; a running server starts forwarding within a second."""
    target = forwarding_targets.create_target(
        inst,
        get_tenant(inst, tenant),
        endpoint=endpoint,
        username=username,
        password=_password(password, password_stdin),
        version=version,
        verbs=list(verbs),
        activity_prefixes=list(prefixes),
        name=name,
        enabled=not disabled,
        forward_existing=forward_existing,
    )
    return target, _summary(target)


@lrs_forwarding.command("update")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@click.option("--endpoint", default=None, help="A new endpoint for the target LRS.")
@click.option("--username", default=None, help="A new HTTP Basic user name ('' removes the credentials' name).")
@click.option("--password", default=None, help="A new HTTP Basic password ('' removes it).")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of standard input.")
@click.option(
    "--xapi-version",
    "version",
    type=click.Choice(forwarding_targets.VERSIONS),
    default=None,
    help="The xAPI version to speak.",
)
@click.option("--verb", "verbs", multiple=True, help="Replace the verb filter with these IRIs (repeatable).")
@click.option("--activity-prefix", "prefixes", multiple=True, help="Replace the activity filter (repeatable).")
@click.option("--clear-filters", is_flag=True, help="Forward every statement from now on (no verb or activity filter).")
@click.option("--name", default=None, help="A new label.")
@admin_command
def fwd_update(
    inst: Instance,
    target_id: str,
    tenant: str,
    endpoint: str | None,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    version: str | None,
    verbs: tuple[str, ...],
    prefixes: tuple[str, ...],
    clear_filters: bool,
    name: str | None,
) -> tuple[Any, str]:
    """Change a target; what is not given keeps its value, and its cursor stays where it is."""
    target = forwarding_targets.update_target(
        inst,
        get_tenant(inst, tenant),
        target_id,
        endpoint=endpoint,
        username=username,
        password=_password(password, password_stdin),
        version=version,
        verbs=[] if clear_filters else (list(verbs) or None),
        activity_prefixes=[] if clear_filters else (list(prefixes) or None),
        name=name,
    )
    return target, _summary(target)


@lrs_forwarding.command("list")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def fwd_list(inst: Instance, tenant: str) -> tuple[Any, str]:
    """List a tenant's forwarding targets with their cursor and backlog."""
    owner = get_tenant(inst, tenant)
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = forwarding_targets.list_targets(inst, owner, limit=500, cursor=cursor)
        found += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    rows = [
        [t["id"], t["name"], t["endpoint"], t["status"], str(t["cursor_seq"]), str(t["pending_statements"])]
        for t in found
    ]
    return found, table(rows, ["ID", "NAME", "ENDPOINT", "STATUS", "CURSOR", "PENDING"])


@lrs_forwarding.command("show")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def fwd_show(inst: Instance, target_id: str, tenant: str) -> tuple[Any, str]:
    """Show one target: its cursor, backlog and failure state."""
    target = forwarding_targets.get_target(inst, get_tenant(inst, tenant), target_id)
    return target, _summary(target)


@lrs_forwarding.command("enable")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def fwd_enable(inst: Instance, target_id: str, tenant: str) -> tuple[Any, str]:
    """Enable a target: it resumes from its cursor, and its next attempt is due at once."""
    target = forwarding_targets.update_target(inst, get_tenant(inst, tenant), target_id, enabled=True)
    return target, _summary(target)


@lrs_forwarding.command("disable")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def fwd_disable(inst: Instance, target_id: str, tenant: str) -> tuple[Any, str]:
    """Disable a target: nothing is sent; its cursor stays where it is."""
    target = forwarding_targets.update_target(inst, get_tenant(inst, tenant), target_id, enabled=False)
    return target, _summary(target)


@lrs_forwarding.command("delete")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@admin_command
def fwd_delete(inst: Instance, target_id: str, tenant: str) -> tuple[Any, str]:
    """Delete a target and its delivery log."""
    forwarding_targets.delete_target(inst, get_tenant(inst, tenant), target_id)
    return {"id": target_id, "deleted": True}, f"Deleted {target_id}."


@lrs_forwarding.command("log")
@click.argument("target_id")
@click.option("--tenant", "tenant", required=True, help=TENANT_HELP)
@click.option(
    "--outcome", type=click.Choice(forwarding_log.OUTCOMES), default=None, help="Only entries of this outcome."
)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="How many entries.")
@admin_command
def fwd_log(inst: Instance, target_id: str, tenant: str, outcome: str | None, limit: int) -> tuple[Any, str]:
    """The target's delivery log, newest first."""
    page = forwarding_log.list_log(inst, get_tenant(inst, tenant), target_id, outcome=outcome, limit=limit)
    rows = [
        [
            e["at"],
            e["outcome"],
            str(e["attempt"]),
            f"{e['first_seq']}-{e['last_seq']}",
            str(e["statement_count"]),
            str(e["status_code"] or ""),
            e["error"] or "",
        ]
        for e in page["data"]
    ]
    return page["data"], table(rows, ["AT", "OUTCOME", "ATTEMPT", "SEQ", "STATEMENTS", "STATUS", "ERROR"])
