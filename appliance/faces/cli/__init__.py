"""The `scorm-appliance` command group; with no sub-command it serves."""

from __future__ import annotations

import click

from appliance import __version__
from appliance.faces.cli.admins import admins
from appliance.faces.cli.database import database
from appliance.faces.cli.dispatch import dispatches
from appliance.faces.cli.keys import keys
from appliance.faces.cli.lrs import lrs_credentials, lrs_forwarding
from appliance.faces.cli.lti import lti
from appliance.faces.cli.maintenance import backup_cmd, doctor_cmd, restore_cmd
from appliance.faces.cli.migrate import migrate_cmd
from appliance.faces.cli.quotas import quotas, usage
from appliance.faces.cli.serve import serve
from appliance.faces.cli.tenants import tenants


@click.group(invoke_without_command=True)
@click.version_option(__version__, prog_name="scorm-appliance")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """scorm-appliance: a self-hosted SCORM API server."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


for command in (
    serve,
    tenants,
    keys,
    quotas,
    usage,
    backup_cmd,
    restore_cmd,
    doctor_cmd,
    lrs_credentials,
    lrs_forwarding,
    admins,
    lti,
    dispatches,
    database,
    migrate_cmd,
):
    cli.add_command(command)
