"""The `scorm-appliance` command group; with no sub-command it serves."""

from __future__ import annotations

import click

from appliance import __version__
from appliance.cli.admins import admins
from appliance.cli.database import database
from appliance.cli.dispatch import dispatches
from appliance.cli.keys import keys
from appliance.cli.lrs import lrs_credentials, lrs_forwarding
from appliance.cli.lti import lti
from appliance.cli.maintenance import backup_cmd, doctor_cmd, restore_cmd
from appliance.cli.quotas import quotas, usage
from appliance.cli.serve import serve
from appliance.cli.tenants import tenants


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
):
    cli.add_command(command)
