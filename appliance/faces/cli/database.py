"""`scorm-appliance database install` / `upgrade`: make, and bring up to this release, the PostgreSQL
schema the `database` setting points at.

The appliance connects as the application role, which may not create or alter tables (so that it
cannot switch row-level security off); the schema is therefore installed once, before the first
start, and upgraded after installing a release that adds migrations, with an administrator's connection
given here and used for nothing else. `serve` on a schema of another release refuses to start, naming
`database upgrade` (it never alters the schema itself). See docs/scale-out.md, "Databases".
"""

from __future__ import annotations

import json
import time

import click

from appliance.errors import ApplianceError
from appliance.faces.cli.common import build_config, data_dir_option, fail, json_option
from appliance.instance import Instance


class DatabaseError(ApplianceError):
    """The administrator's connection or the installation failed."""

    code = "DATABASE_ERROR"


@click.group("database")
def database() -> None:
    """The PostgreSQL database of a scaled-out appliance."""


@database.command("install")
@data_dir_option
@json_option
@click.option(
    "--admin-url",
    required=True,
    envvar="SCORM_APPLIANCE_DATABASE_ADMIN_URL",
    help="An administrator's postgresql:// URL, used for the installation only ($SCORM_APPLIANCE_DATABASE_ADMIN_URL).",
)
@click.option("--owner", default="appliance_owner", show_default=True, help="The role that owns the tables (NOLOGIN).")
@click.option("--create-roles", "make_roles", is_flag=True, help="Create the owner and the application role first.")
def install_cmd(data_dir: str | None, as_json: bool, admin_url: str, owner: str, make_roles: bool) -> None:
    """Install the schema `database_schema` for the application role of the `database` URL."""
    # psycopg is in the `scale` extra: imported here, so the CLI (and the single-file build) loads without it
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from appliance.storage.postgres.schema import create_roles, install

    config = build_config(data_dir)
    if config.database == "sqlite":
        raise click.UsageError("the database setting is 'sqlite': set it to the application role's postgresql:// URL")
    app_role = conninfo_to_dict(config.database).get("user")
    if not app_role:
        raise click.UsageError("the database URL names no user: it must be the application role's")
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            if make_roles:
                create_roles(admin, owner=owner, app_role=str(app_role))
            install(admin, config.database_schema, owner=owner, app_role=str(app_role), now=time.time())
        Instance(config).close()  # the application role reaches it and finds this release's schema
    except (psycopg.Error, RuntimeError) as exc:
        fail(DatabaseError(f"installing the schema failed: {exc}".strip(), {"schema": config.database_schema}), as_json)
    data = {"schema": config.database_schema, "owner": owner, "app_role": app_role, "roles_created": make_roles}
    click.echo(
        json.dumps(data, indent=2)
        if as_json
        else f"Installed schema {config.database_schema} (owner {owner}, used by {app_role})"
    )


@database.command("upgrade")
@data_dir_option
@json_option
@click.option(
    "--admin-url",
    required=True,
    envvar="SCORM_APPLIANCE_DATABASE_ADMIN_URL",
    help="An administrator's postgresql:// URL, used for the upgrade only ($SCORM_APPLIANCE_DATABASE_ADMIN_URL).",
)
@click.option("--dry-run", is_flag=True, help="Print the steps and statements; change nothing.")
def upgrade_cmd(data_dir: str | None, as_json: bool, admin_url: str, dry_run: bool) -> None:
    """Upgrade the installed schema `database_schema` to this release's migrations, in one transaction.

    Stop the workers of the older release first; start this release's when it is done. Running it on a
    schema that is up to date changes nothing.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from appliance.storage.postgres.upgrade import UpgradeRefused, upgrade

    config = build_config(data_dir)
    if config.database == "sqlite":
        raise click.UsageError("the database setting is 'sqlite': set it to the application role's postgresql:// URL")
    app_role = conninfo_to_dict(config.database).get("user")
    if not app_role:
        raise click.UsageError("the database URL names no user: it must be the application role's")
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            plan, done = upgrade(
                admin, config.database_schema, app_role=str(app_role), now=time.time(), dry_run=dry_run
            )
        if done is not None:
            Instance(config).close()  # the application role reaches it and finds this release's schema
    except (psycopg.Error, UpgradeRefused, RuntimeError) as exc:
        fail(DatabaseError(f"upgrading the schema failed: {exc}".strip(), {"schema": config.database_schema}), as_json)
    pending = [f"{s}.{n}" for s, n in plan.pending]
    data = {
        "schema": config.database_schema,
        "dry_run": dry_run,
        "migrations": pending,
        "statements": plan.statements if dry_run else len(plan.statements),
        "tenants": done.tenants if done else None,
        "fingerprint": plan.fingerprint,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
    elif not pending:
        click.echo(f"Schema {config.database_schema} is up to date ({plan.fingerprint})")
    elif dry_run:
        click.echo(f"Would apply {len(pending)} migration(s) to {config.database_schema}: {', '.join(pending)}")
        for statement in plan.statements:
            click.echo(statement.rstrip().rstrip(";") + ";")
    else:
        click.echo(
            f"Upgraded schema {config.database_schema}: {len(pending)} migration(s) ({', '.join(pending)}), "
            f"{len(plan.statements)} statements, {done.tenants if done else 0} tenant(s)"
        )
