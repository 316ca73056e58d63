"""What every command shares: finding the data directory, --json output, and exit codes.

Exit codes: 0 success, 1 operational error (an ApplianceError, e.g. unknown tenant), 2 usage error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from appliance.config import Config, load_config
from appliance.errors import ApplianceError
from appliance.instance import Instance

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(fn: F) -> F:
    """`--data-dir`, else SCORM_APPLIANCE_DATA_DIR, else the platform default."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Data directory (default: $SCORM_APPLIANCE_DATA_DIR, else the platform's user data dir).",
    )(fn)


def json_option(fn: F) -> F:
    """`--json`: print one JSON object (or a list for listings) instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def build_config(data_dir: str | None, **overrides: Any) -> Config:
    """The Config for a command: defaults < settings file < environment < flags.

    A bad setting (unknown name, wrong type, unreadable settings file) is a usage error: exit 2.
    """
    try:
        return load_config({"data_dir": data_dir, **overrides}, os.environ)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"bad setting: {exc}") from exc


def admin_command(fn: F) -> F:
    """Wrap an admin command: open the instance, run, print, and map errors to exit code 1.

    The wrapped function receives `inst` and returns what to print: a dict/list (printed as JSON with
    --json) plus a text form, as a tuple `(data, text)`.
    """

    @data_dir_option
    @json_option
    @functools.wraps(fn)
    def wrapper(data_dir: str | None, as_json: bool, **kwargs: Any) -> None:
        inst = None
        try:
            inst = Instance(build_config(data_dir))
            data, text = fn(inst, **kwargs)
        except ApplianceError as exc:
            fail(exc, as_json)
        finally:
            if inst is not None:
                inst.close()
        if as_json:
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo(text)

    return wrapper  # type: ignore[return-value]


def fail(exc: ApplianceError, as_json: bool) -> None:
    """Print an operational error (contract shape with --json) and exit 1."""
    if as_json:
        click.echo(json.dumps({"error": exc.message, "code": exc.code, "details": exc.details}), err=True)
    else:
        click.echo(f"Error: {exc.message}", err=True)
    sys.exit(1)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned text table."""
    if not rows:
        return "(none)"
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=False)).rstrip() for r in [headers, *rows]]
    return "\n".join(lines)
