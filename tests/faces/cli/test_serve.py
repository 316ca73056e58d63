"""`serve` hands uvicorn the app with the process's long-lived objects frozen out of the collector."""

from __future__ import annotations

import gc
import logging
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from appliance.faces.app import Appliance
from appliance.faces.cli import cli


def test_serve_runs_the_app_with_long_lived_objects_frozen(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        seen.update(app=app, options=options, frozen=gc.get_freeze_count())

    monkeypatch.setattr("uvicorn.run", fake_run)
    handlers, level = list(logging.getLogger().handlers), logging.getLogger().level
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        result = runner.invoke(cli, ["serve", "--data-dir", str(tmp_path), "--port", "8099"], catch_exceptions=False)
    finally:
        gc.unfreeze()
        signal.signal(signal.SIGTERM, sigterm)
        logging.getLogger().handlers[:] = handlers
        logging.getLogger().setLevel(level)
    assert result.exit_code == 0, result.output
    assert isinstance(seen["app"], Appliance)
    assert seen["options"]["port"] == 8099 and seen["options"]["access_log"] is False
    assert seen["options"]["server_header"] is False
    assert seen["frozen"] > 10_000  # the modules, the app and its routes
