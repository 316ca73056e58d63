"""A real `scorm-appliance serve` process on a free 127.0.0.1 port, for end-to-end tests.

`ServerProcess` starts the server as a subprocess on its own data directory, waits (bounded) for
/api/v1/health, runs the admin CLI against the same data directory, and stops it with SIGTERM or
SIGKILL, or restarts it on the same port and data. Teardown always kills it. Use the `server` fixture
for a started server, or `start_server` to start several or with extra arguments or environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from appliance.config import Config
from tests.e2e.databases import SQLITE, Databases

HOST = "127.0.0.1"
START_TIMEOUT = 20.0  # seconds to wait for /api/v1/health
STOP_TIMEOUT = 15.0  # seconds to wait for the process to exit after SIGTERM
CLI_TIMEOUT = 30.0
KEEPALIVE_SECONDS = 2.0  # idle pooled connections are dropped before the server closes them (uvicorn: 5 s)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def appliance_command() -> list[str]:
    """The `scorm-appliance` console script next to this interpreter, else `python -m appliance`."""
    script = Path(sys.executable).parent / "scorm-appliance"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "appliance"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for child processes: no SCORM_APPLIANCE_* leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORM_APPLIANCE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class CliError(AssertionError):
    """A CLI command that was expected to succeed did not."""


class ServerProcess:
    """One `scorm-appliance serve` subprocess and the data directory it serves."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        databases: Databases = SQLITE,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.args = args
        self.databases = databases
        self.env = clean_env({**databases.env(data_dir), **(env or {})})
        self.logs_dir = data_dir.parent / f"server-logs-{self.port}"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start the server and wait until /api/v1/health answers 200 (or fail with its stderr)."""
        assert not self.running, "the server is already running"
        self._close_logs()
        self.runs += 1
        self._out = self.stdout_path.open("wb")
        self._err = self.stderr_path.open("wb")
        command = [
            *appliance_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.args,
        ]
        self.proc = subprocess.Popen(
            command, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, env=self.env
        )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Poll /api/v1/health until 200, for at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        last: object = None
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = self.proc.returncode if self.proc else None
                    raise AssertionError(f"the server exited with {code} before it was healthy:\n{self.stderr()}")
                try:
                    response = client.get(f"{self.url}/api/v1/health")
                    if response.status_code == 200:
                        return
                    last = response.status_code
                except httpx.TransportError as exc:
                    last = exc
                time.sleep(0.1)
        self.kill()
        raise AssertionError(f"no healthy server at {self.url} after {timeout} s (last: {last!r}):\n{self.stderr()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait at most `timeout` seconds, return the exit code (SIGKILL and fail on timeout)."""
        assert self.proc is not None, "the server was never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"the server did not exit within {timeout} s of SIGTERM:\n{self.stderr()}"
                ) from None
        self._close_logs()
        return int(self.proc.returncode)

    def kill(self) -> int:
        """SIGKILL (a crash, as far as the appliance can tell) and reap; returns the exit code."""
        assert self.proc is not None, "the server was never started"
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        self._close_logs()
        return int(self.proc.returncode)

    def restart(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Stop (SIGTERM) if running, then start again on the same port and data directory."""
        if self.running:
            self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Teardown: make sure the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._close_logs()

    def _close_logs(self) -> None:
        for fh in (self._out, self._err):
            if fh is not None:
                fh.close()
        self._out = self._err = None

    # -- output ----------------------------------------------------------------------------------

    @property
    def stdout_path(self) -> Path:
        """The current (latest) run's stdout file."""
        return self.logs_dir / f"stdout-{self.runs}.log"

    @property
    def stderr_path(self) -> Path:
        """The current (latest) run's stderr file."""
        return self.logs_dir / f"stderr-{self.runs}.log"

    def stderr(self) -> str:
        """What the current (latest) run printed on stderr so far."""
        if self._err is not None:
            self._err.flush()
        return self.stderr_path.read_text("utf-8", "replace") if self.stderr_path.exists() else ""

    # -- talking to it ---------------------------------------------------------------------------

    def config(self, **settings: Any) -> Config:
        """A Config on this data directory and its database, to open an Instance beside the server."""
        return self.databases.config(self.data_dir, **settings)

    def rows(self, sql: str, params: tuple[Any, ...] = (), *, tenant: str | None = None) -> list[dict[str, Any]]:
        """What the server wrote, read beside it (running or not): the registry's rows, or `tenant`'s."""
        return self.databases.rows(self.data_dir, sql, params, tenant=tenant)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on this server's URL (no proxies from the environment)."""
        kwargs.setdefault("timeout", 10.0)
        # Reusing a pooled connection the server is closing at that moment fails with a ReadError.
        kwargs.setdefault("limits", httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS))
        return httpx.Client(base_url=self.url, trust_env=False, **kwargs)

    def run_cli(self, *args: str, json_output: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `scorm-appliance ARGS… [--json] --data-dir <this data dir>` in a new process."""
        extra = (["--json"] if json_output and "--json" not in args else []) + ["--data-dir", str(self.data_dir)]
        return subprocess.run(
            [*appliance_command(), *args, *extra],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=CLI_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def cli(self, *args: str) -> Any:
        """Run a CLI command with --json against this data directory and return its parsed output."""
        result = self.run_cli(*args)
        if result.returncode != 0:
            raise CliError(
                f"scorm-appliance {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return json.loads(result.stdout)


@pytest.fixture
def start_server(tmp_path: Path, databases: Databases) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers (each on a free port; by default each on its own data dir and its own database, on the
    module's backend); all killed at teardown."""
    started: list[ServerProcess] = []

    def start(
        data_dir: Path | None = None,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> ServerProcess:
        directory = data_dir or tmp_path / f"data-{len(started) + 1}"
        server = ServerProcess(directory, args=args, env=env, databases=databases)
        started.append(server)
        return server.start(timeout)

    yield start
    for server in started:
        server.close()


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A running server on a fresh data directory and a free port."""
    return start_server()


# -- browser fixtures: one headless Chromium and one server per test module ---------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, for the module (skips with the reason when it is missing)."""
    from tests.e2e.browser import chromium

    with chromium() as instance:
        yield instance


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (cookies, storage) per test."""
    ctx = browser.new_context()
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def appliance(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, corpus: Path, databases: Databases
) -> Iterator[Any]:
    """One server for the module with a tenant and key; tests use their own learners, so they do not meet."""
    from tests.e2e.browser import Appliance

    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    server = ServerProcess(folder / "data", databases=databases)
    try:
        server.start()
        app = Appliance(server, corpus)
        yield app
        app.close()
    finally:
        server.close()
