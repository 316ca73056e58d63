"""`scorm-appliance serve`: bootstrap the data directory and run the server in this process."""

from __future__ import annotations

import signal
import sys

import click
import uvicorn

from appliance.app import create_app
from appliance.cli.common import build_config, data_dir_option
from appliance.instance import Instance
from appliance.tenants import list_tenants

FIRST_RUN = """\
No tenant exists yet. Create one and an API key with:

  scorm-appliance tenants create "My Organisation"{dd}
  scorm-appliance keys create --tenant "My Organisation"{dd}
"""


@click.command()
@click.option("--host", default=None, help="Interface to listen on [default: 127.0.0.1; 0.0.0.0 serves the LAN].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 8080].")
@data_dir_option
def serve(host: str | None, port: int | None, data_dir: str | None) -> None:
    """Start the appliance (the default command)."""
    config = build_config(data_dir, host=host, port=port)
    inst = Instance(config)
    try:
        if not list_tenants(inst):
            dd = f" --data-dir {config.data_dir}" if data_dir else ""
            click.echo(FIRST_RUN.format(dd=dd), err=True)
    finally:
        inst.close()
    click.echo(f"scorm-appliance serving {config.data_dir} on http://{config.host}:{config.port}", err=True)
    # uvicorn re-raises a caught SIGTERM after its graceful shutdown, with the handler that was in place
    # before it started; this one turns it into a clean exit once in-flight work has finished.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=config.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
