"""The single-file artifact: built once per session, run by a fresh venv's python with none of the project.

The zipapp is built by packaging/build_zipapp.py (what `make dist` runs) into a temporary directory,
then started as `<fresh venv>/bin/python scorm-appliance.pyz serve --port P --data-dir D` from another
temporary directory, once for this interpreter and once for each other CPython 3.11+ found here (up
to three in all), and its health endpoint is called. Building downloads the dependencies' wheels
(pip's cache makes later builds quick) and is bounded by BUILD_TIMEOUT.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.e2e.conftest import HOST, clean_env, free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "packaging" / "build_zipapp.py"
BUILD_TIMEOUT = 900.0  # seconds: wheel, dependency download and zip
FIRST_START_TIMEOUT = 120.0  # the first start unpacks the bundled packages
STOP_TIMEOUT = 20.0


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_zipapp", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zipapp for this machine, built once per test session for the interpreters found here."""
    out = tmp_path_factory.mktemp("dist") / "scorm-appliance.pyz"
    versions = ",".join(v for v, _ in interpreters())  # the ones run here; `make dist` bundles 3.11-3.15
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--output", str(out), "--python", versions],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert result.returncode == 0, f"build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert out.is_file()
    return out


def interpreters() -> list[tuple[str, str]]:
    """(version, python) of this interpreter and up to two other CPython 3.11+ found on this machine."""
    found = {f"{sys.version_info[0]}.{sys.version_info[1]}": sys.executable}
    for minor in range(11, 16):
        version = f"3.{minor}"
        installed = sorted(glob.glob(f"{Path.home()}/.pyenv/versions/{version}.*/bin/python3"))
        path = installed[-1] if installed else shutil.which(f"python{version}")
        if path and version not in found and len(found) < 3:
            found[version] = path
    return sorted(found.items())


@pytest.fixture(scope="session")
def shiv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the zipapp unpacks its bundle: shared by the runs of one session."""
    return tmp_path_factory.mktemp("shiv")


def fresh_python(base: str, tmp_path: Path) -> Path:
    """The python of a new virtual environment that has none of the project (nor pip) installed."""
    venv = tmp_path / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import appliance"], capture_output=True, cwd=tmp_path, env=clean_env(), check=False
    )
    assert probe.returncode != 0, "the fresh venv must not see the project"
    return python


@pytest.mark.e2e
@pytest.mark.parametrize(("version", "base_python"), interpreters(), ids=[f"cpython{v}" for v, _ in interpreters()])
def test_the_zipapp_serves_from_a_fresh_venv(
    zipapp: Path, shiv_root: Path, version: str, base_python: str, tmp_path: Path
) -> None:
    python = fresh_python(base_python, tmp_path)
    assert subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout.startswith(version + ".")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data_dir = tmp_path / "data"
    env = clean_env({"SHIV_ROOT": str(shiv_root), "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop("PYTHONPATH", None)
    port = free_port()
    command = [str(python), str(zipapp), "serve", "--host", HOST, "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--log-format", "json"]
    stdout, stderr = (tmp_path / "stdout.log").open("wb"), (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen(command, cwd=run_dir, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    try:
        health = wait_healthy(proc, f"http://{HOST}:{port}", tmp_path / "stderr.log")
        assert health == {"status": "ok", "version": health["version"]}

        # the admin commands run from the same file, beside the server
        created = subprocess.run(
            [str(python), str(zipapp), "tenants", "create", "Acme", "--data-dir", str(data_dir), "--json"],
            cwd=run_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["name"] == "Acme"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
        stdout.close()
        stderr.close()

    # structured logs on stdout: one JSON object per line, the health call among them with its request id
    lines = [json.loads(line) for line in (tmp_path / "stdout.log").read_text().splitlines() if line.strip()]
    access = [r for r in lines if r["logger"] == "appliance.api" and r.get("path") == "/api/v1/health"]
    assert access and access[0]["status"] == 200 and access[0]["request_id"].startswith("req_")
    assert not list(run_dir.iterdir()), "running the zipapp must not write into the working directory"


def wait_healthy(proc: subprocess.Popen[bytes], url: str, stderr_path: Path) -> dict[str, str]:
    deadline = time.monotonic() + FIRST_START_TIMEOUT
    last: object = None
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the zipapp exited with {proc.returncode}:\n{stderr_path.read_text()}")
            try:
                response = client.get(f"{url}/api/v1/health")
                if response.status_code == 200:
                    return dict(response.json())
                last = response.status_code
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.2)
    raise AssertionError(
        f"no healthy zipapp after {FIRST_START_TIMEOUT} s (last: {last!r}):\n{stderr_path.read_text()}"
    )


def test_the_preamble_refuses_an_interpreter_the_bundle_does_not_fit(tmp_path: Path) -> None:
    module = build_module()
    preamble = tmp_path / "preamble.py"
    preamble.write_text(module.PREAMBLE.format(pythons=[(3, 98), (3, 99)], machines=("sparc64",), system="linux"))
    result = subprocess.run([sys.executable, str(preamble)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "built for CPython 3.98, 3.99 on linux sparc64" in result.stderr
    assert "pip install scorm_appliance-" in result.stderr
    system, machine = module.host_target()
    here = (sys.version_info[0], sys.version_info[1])
    preamble.write_text(module.PREAMBLE.format(pythons=[here], machines=module.MACHINES[machine], system=system))
    assert subprocess.run([sys.executable, str(preamble)], timeout=30, check=False).returncode == 0


def test_cross_build_options_ask_pip_for_binary_wheels_only() -> None:
    args = build_module().cross_args("aarch64", "3.12")
    assert "--only-binary=:all:" in args
    assert args[args.index("--python-version") + 1] == "3.12"
    assert "manylinux2014_aarch64" in args and "manylinux_2_28_aarch64" in args
