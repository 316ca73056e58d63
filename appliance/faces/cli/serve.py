"""`scorm-appliance serve`: bootstrap the data directory and run the server in this process."""

from __future__ import annotations

import gc
import signal
import sys

import click
import uvicorn

from appliance.errors import ApplianceError
from appliance.faces.app import create_app
from appliance.faces.cli.common import build_config, data_dir_option, fail
from appliance.instance import Instance
from appliance.logging_setup import LOG_FORMATS, configure_logging
from appliance.services.learning import sequencing_pool
from appliance.services.tenancy.tenants import list_tenants

FIRST_RUN = """\
No tenant exists yet. Create one and an API key with:

  scorm-appliance tenants create "My Organisation"{dd}
  scorm-appliance keys create --tenant "My Organisation"{dd}
"""


# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms). The server is
# one process: while a large course is sequenced on a worker thread, the event loop serving everyone else
# waits up to this long at every hand-over of each of its requests (bench/README.md, "Sequencing").
SWITCH_INTERVAL_SECONDS = 0.001
# Container allocations (net of deallocations) between two young collections (Python's default is 700).
# Sequencing a large course builds tens of thousands of short-lived dicts and lists: at 700 the young
# collections promote them while still in use, and a full collection, which stops every thread, followed
# every few requests (7-50 ms each at 5,000 activities).
GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """Keep the objects that live as long as the process (modules, the app and its routes) out of
    the cyclic garbage collector's way.

    Python's full collection walks every tracked object; in a server that had just imported Litestar
    and built its app, that is 30-50 ms with nothing else running, a few times a minute under load:
    every request in flight waits (bench/README.md, "Runtime"). Frozen objects are never walked, and
    collections of what requests create take a millisecond or two. Young collections run less often
    (GC_YOUNG_THRESHOLD), so what a request builds is mostly freed before one sees it. Only `serve`
    does this: it runs one app for the life of its process (tests build many).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


@click.command()
@click.option("--host", default=None, help="Interface to listen on [default: 127.0.0.1; 0.0.0.0 serves the LAN].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 8080].")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default=None,
    help="Log lines on stdout as readable text or as one JSON object each [default: text].",
)
@data_dir_option
def serve(host: str | None, port: int | None, log_format: str | None, data_dir: str | None) -> None:
    """Start the appliance (the default command).

    Logs go to stdout, one line per event with the request id; SIGTERM finishes the requests and
    jobs in flight, then exits 0.
    """
    config = build_config(data_dir, host=host, port=port, log_format=log_format)
    try:
        configure_logging(config.log_level, config.log_format)
    except ValueError as exc:
        raise click.UsageError(f"bad setting: {exc}") from exc
    try:
        inst = Instance(config)
    except ApplianceError as exc:  # e.g. a PostgreSQL schema of another release: the message says what to run
        fail(exc, False)
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
    app = create_app(config)
    settle_garbage_collector()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        uvicorn.run(
            app,
            host=config.host,
            port=config.port,
            loop="auto",  # uvloop and httptools where installed (Linux, macOS); asyncio and h11 on Windows
            http="auto",
            lifespan="on",
            log_level=config.log_level,
            log_config=None,  # keep the handlers configure_logging installed
            access_log=False,  # appliance.logging_setup writes the access lines, with the request id
            server_header=False,  # no "Server: uvicorn": the software behind the API is nobody's business
            timeout_graceful_shutdown=config.shutdown_timeout_seconds,  # type: ignore[arg-type]  # a float works
        )
    finally:
        sequencing_pool.shutdown()  # the worker processes of large courses' sequencing, if any started
