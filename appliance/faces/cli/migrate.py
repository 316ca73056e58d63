"""`scorm-appliance migrate`: move an embedded data directory onto PostgreSQL (and an object store).

The copy and its verification are `appliance.services.operations.migration`; this face parses the
options, prints the report and exits 1 when anything does not match (docs/scale-out.md, "Moving an
embedded appliance").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from appliance.config import Config, files_config
from appliance.errors import ApplianceError
from appliance.faces.cli.common import build_config, data_dir_option, fail, json_option

if TYPE_CHECKING:
    from appliance.storage.files.config import S3FilesConfig


@click.command("migrate")
@data_dir_option
@json_option
@click.option(
    "--to",
    "target_url",
    required=True,
    envvar="SCORM_APPLIANCE_DATABASE_ADMIN_URL",
    help="An administrator's postgresql:// URL of the database the schema was installed in (the one "
    "`database install --admin-url` used; $SCORM_APPLIANCE_DATABASE_ADMIN_URL).",
)
@click.option(
    "--schema", default=None, help="The installed schema to copy into [default: the database_schema setting]."
)
@click.option(
    "--s3",
    "s3_url",
    default=None,
    help="s3://bucket[/prefix] to put the package files in [default: the files setting, if it is one] (endpoint, "
    "region and keys: the files_* settings, or the URL's ?endpoint=&region=); with neither, the files stay in the data directory.",
)
@click.option("--resume", is_flag=True, help="Carry on an interrupted migration into the same target.")
@click.option("--force", is_flag=True, help="Empty the target schema (and the tenants' files in the bucket) first.")
@click.option("--verify-only", is_flag=True, help="Copy nothing: compare the data directory with the target again.")
@click.option(
    "--batch-rows", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Rows per INSERT batch."
)
def migrate_cmd(
    data_dir: str | None,
    as_json: bool,
    target_url: str,
    schema: str | None,
    s3_url: str | None,
    resume: bool,
    force: bool,
    verify_only: bool,
    batch_rows: int,
) -> None:
    """Copy the data directory's databases (and with --s3 its package files) into the scale-out stores, then verify.

    Stop the appliance first: the command refuses while any process has the data directory's
    databases open. Exit 0 when every table, identity counter and file matches, 1 otherwise.
    """
    if sum((resume, force, verify_only)) > 1:
        raise click.UsageError("--resume, --force and --verify-only exclude each other")
    if not target_url.startswith(("postgresql://", "postgres://")):
        raise click.UsageError("--to must be a postgresql:// URL")
    config, files = _load(data_dir, s3_url)
    # psycopg and boto3 are in the `scale` extra: imported here, so the CLI loads without them
    from appliance.services.operations.migration import MigrationOptions, migrate, verify

    options = MigrationOptions(
        data_dir=Path(config.data_dir),
        target_url=target_url,
        schema=schema or config.database_schema,
        files=files,
        mode="resume" if resume else "force" if force else "new",
        batch_rows=batch_rows,
    )
    try:
        report = verify(options) if verify_only else migrate(options)
    except ApplianceError as exc:
        fail(exc, as_json)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.as_text())
    if not report.ok:
        sys.exit(1)


def _load(data_dir: str | None, s3_url: str | None) -> tuple[Config, S3FilesConfig | None]:
    """The settings, with --s3 as the `files` setting (without it, the `files` setting if that is an
    s3:// URL): the endpoint, region and keys come from the `files_*` settings (settings file,
    environment) as the workers will have them, or the URL's query."""
    from appliance.storage.files.config import S3FilesConfig

    if s3_url is None:  # the `files` setting, when it already names the bucket the workers will use
        config = build_config(data_dir)
        parsed = files_config(config)
        return config, parsed if isinstance(parsed, S3FilesConfig) else None
    config = build_config(data_dir, files=s3_url)
    parsed = files_config(config)
    if not isinstance(parsed, S3FilesConfig):
        raise click.UsageError("--s3 must be an s3://bucket[/prefix] URL")
    return config, parsed
