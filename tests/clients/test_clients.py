"""The client libraries (clients/python, clients/typescript, clients/php) against a real server.

One `scorm-appliance serve` on 127.0.0.1 for the module, with a tenant and admin key made with the
CLI, a second tenant limited to 3 requests a minute (for the 429 tests), and outbound requests to
127.0.0.1 allowed so that webhooks reach the receivers here. Then:

- each client's own suite runs as a subprocess (pytest, `node --test`, `php tests/run.php`) with the
  URL, the keys, a corpus package and a request signed by the server's own signing code in its
  environment, and must pass;
- the walk-through of docs/integration.md runs as written: its marked code blocks are extracted and
  executed in each language, the receiver verifies a real delivery from the server;
- drift: every operation a client calls exists in the live OpenAPI schema with that method and path,
  and every schema operation of the covered groups is called by every client, unless it is in
  EXCLUDED with the reason.

`make test` installs what this needs (`make clients`: Debian's php-cli and php-curl, and TypeScript
with npm in clients/typescript).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.delivery.webhook_signing import new_secret, signed_headers
from appliance.services.tenancy.apikeys import create_key
from appliance.services.tenancy.tenants import create_tenant, set_quotas
from tests.conftest import CORPUS, REPO
from tests.e2e.conftest import HOST, ServerProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.corpus]

CLIENTS = REPO / "clients"
TS_DIR = CLIENTS / "typescript"
COURSE = CORPUS / "packages" / "golf-ContentPackagingSingleSCO_SCORM20043rdEdition.zip"
DOC = REPO / "docs" / "integration.md"
SUITE_TIMEOUT = 120.0
STEP_TIMEOUT = 60.0

# The schema's operation groups that every client must cover, by path prefix.
COVERED = ("/api/v1/packages", "/api/v1/sessions", "/api/v1/analytics", "/api/v1/webhooks", "/api/v1/xapi/credentials")
# (method, path) of covered groups that the clients leave out on purpose, with the reason (docs/integration.md).
EXCLUDED: dict[tuple[str, str], str] = {
    # An administrator's decisions on a cmi5 registration (docs/cmi5.md), not an integrator's
    # walk-through; they came with cmi5 after the clients (docs/integration.md says so).
    ("POST", "/api/v1/sessions/{session_id}/cmi5/waive"): "cmi5 administration (docs/cmi5.md), not wrapped yet",
    ("POST", "/api/v1/sessions/{session_id}/cmi5/abandon"): "cmi5 administration (docs/cmi5.md), not wrapped yet",
}
# Where each client's calls are: `call("METHOD", "/path/{param}", ...)` with the schema's templates.
SOURCES = {
    "python": CLIENTS / "python" / "src" / "scorm_appliance_client" / "_ops.py",
    "typescript": TS_DIR / "src" / "client.ts",
    "php": CLIENTS / "php" / "src" / "Client.php",
}
CALL = re.compile(r"""\bcall\(\s*["'](GET|POST|PUT|PATCH|DELETE)["']\s*,\s*["'](/[^"']*)["']""", re.IGNORECASE)
CALL_SITE = re.compile(r"""\bcall\(\s*["']""", re.IGNORECASE)


@dataclass
class Appliance:
    """The running server and what the suites need to talk to it."""

    server: ServerProcess
    key: str
    limited_key: str
    schema: dict

    def env(self, **extra: str) -> dict[str, str]:
        body = json.dumps(
            {
                "id": "evt_vector",
                "type": "ping",
                "created_at": "2026-12-03T00:00:00Z",
                "tenant_id": "ten_vector",
                "data": {"webhook_id": "whk_vector"},
            }
        )
        secret = new_secret()
        vector = {
            "secret": secret,
            "headers": signed_headers(secret, "evt_vector", int(time.time()), body.encode()),
            "body": body,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCORM_APPLIANCE_")}
        env.update(
            SCORM_APPLIANCE_URL=self.server.url,
            SCORM_APPLIANCE_KEY=self.key,
            SCORM_APPLIANCE_LIMITED_KEY=self.limited_key,
            COURSE_ZIP=str(COURSE),
            WEBHOOK_VECTOR=json.dumps(vector),
            NO_PROXY="*",
        )
        env.pop("HTTP_PROXY", None)
        env.pop("HTTPS_PROXY", None)
        env.update(extra)
        return env


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    if not COURSE.is_file():
        pytest.skip(f"the SCORM corpus is not at {CORPUS} (CI always has it)")
    data_dir = tmp_path_factory.mktemp("clients") / "data"
    # The tenant limited to 3 requests a minute is made before the start, in-process as the CLI does it.
    inst = Instance(Config(data_dir=data_dir))
    try:
        create_tenant(inst, "Limited")
        set_quotas(inst, "Limited", requests_per_minute=3)
        _, limited = create_key(inst, "Limited", "clients")
    finally:
        inst.close()
    server = ServerProcess(data_dir, env={"SCORM_APPLIANCE_OUTBOUND_ALLOW": HOST})
    try:
        server.start()
        # The integrator's tenant and admin key, with the CLI against the running server, as docs/integration.md says.
        server.cli("tenants", "create", "Integrator", "--plan", "enterprise")
        key = server.cli("keys", "create", "--tenant", "Integrator", "--name", "clients")["key"]
        with server.client() as http:
            schema = http.get("/api/v1/openapi.json").raise_for_status().json()
        yield Appliance(server, key, limited, schema)
    finally:
        server.close()


def run(command: list[str], env: dict[str, str], cwd: Path = REPO, timeout: float = SUITE_TIMEOUT) -> str:
    """Run a command to completion; fail with its output unless it exits 0."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output[-6000:]}"
    return output


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: `make clients` installs what the client tests need"
    return path


@pytest.fixture(scope="module")
def typescript_built() -> Path:
    """The TypeScript client compiled (src and tests) with the TypeScript of clients/typescript."""
    need("node")
    tsc = TS_DIR / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "TypeScript is not installed in clients/typescript: run `make clients`"
    env = {**os.environ}
    run([str(tsc), "-p", "tsconfig.json", "--noEmit"], env, cwd=TS_DIR)  # src, without Node's types
    run([str(tsc), "-p", "tsconfig.test.json"], env, cwd=TS_DIR)
    return tsc


# -- each client's own suite -----------------------------------------------------------------------------


def test_python_client_suite(appliance: Appliance) -> None:
    output = run([sys.executable, "-m", "pytest", "-q", "tests"], appliance.env(), cwd=CLIENTS / "python")
    assert re.search(r"\b\d+ passed\b", output) and " failed" not in output, output


def test_typescript_client_suite(appliance: Appliance, typescript_built: Path) -> None:
    output = run(["node", "--test", "dist/test/"], appliance.env(), cwd=TS_DIR)
    assert re.search(r"# pass [1-9]", output) and "# fail 0" in output, output


def test_php_client_suite(appliance: Appliance) -> None:
    need("php")
    output = run(["php", "tests/run.php"], appliance.env(), cwd=CLIENTS / "php")
    assert re.search(r"^[1-9]\d* passed, 0 failed$", output, re.MULTILINE), output


# -- the walk-through of docs/integration.md, run as written ----------------------------------------------

BLOCK = re.compile(r"<!-- run: (\w+) (\w+) -->\n```(\w+)\n(.*?)\n```", re.DOTALL)
FENCE_LANG = {"python": "python", "typescript": "typescript", "php": "php"}
STEPS = ("walkthrough", "register", "receiver", "ping")


def doc_blocks() -> dict[tuple[str, str], str]:
    """The marked blocks of docs/integration.md: (language, step) -> code."""
    blocks: dict[tuple[str, str], str] = {}
    for language, step, fence, code in BLOCK.findall(DOC.read_text("utf-8")):
        assert fence == FENCE_LANG[language], f"{language} {step}: fenced as {fence}"
        assert (language, step) not in blocks, f"{language} {step} appears twice"
        blocks[language, step] = code + "\n"
    return blocks


def test_every_language_has_every_step() -> None:
    assert set(doc_blocks()) == {(lang, step) for lang in FENCE_LANG for step in STEPS}


class Runner:
    """Writes a language's blocks into a project folder and runs them as an integrator would."""

    def __init__(self, language: str, folder: Path, tsc: Path | None) -> None:
        self.language = language
        self.folder = folder
        self.tsc = tsc
        folder.mkdir(parents=True)
        if language == "php":  # what `composer require scorm-appliance/client` would leave
            (folder / "vendor").mkdir()
            (folder / "vendor" / "autoload.php").write_text(
                f"<?php\nrequire {json.dumps(str(CLIENTS / 'php' / 'autoload.php'))};\n", "utf-8"
            )
        if language == "typescript":  # what `npm install scorm-appliance-client` would leave
            modules = folder / "node_modules"
            modules.mkdir()
            (modules / "scorm-appliance-client").symlink_to(TS_DIR)
            (folder / "package.json").write_text('{"type": "module"}\n', "utf-8")
            config = {
                "compilerOptions": {
                    "target": "ES2022",
                    "module": "NodeNext",
                    "moduleResolution": "NodeNext",
                    "strict": True,
                    "skipLibCheck": True,
                    "outDir": "out",
                    "rootDir": ".",
                    "types": ["node"],
                    "typeRoots": [str(TS_DIR / "node_modules" / "@types")],
                },
                "include": ["*.ts"],
            }
            (folder / "tsconfig.json").write_text(json.dumps(config), "utf-8")

    def prepare(self, blocks: dict[tuple[str, str], str]) -> None:
        suffix = {"python": ".py", "typescript": ".ts", "php": ".php"}[self.language]
        for step in STEPS:
            (self.folder / f"{step}{suffix}").write_text(blocks[self.language, step], "utf-8")
        if self.language == "typescript":
            assert self.tsc is not None
            run([str(self.tsc), "-p", "."], dict(os.environ), cwd=self.folder)

    def command(self, step: str, port: int | None = None) -> list[str]:
        if self.language == "python":
            return [sys.executable, f"{step}.py"]
        if self.language == "typescript":
            return ["node", f"out/{step}.js"]
        if step == "receiver":
            return ["php", "-S", f"{HOST}:{port}", "receiver.php"]
        return ["php", f"{step}.php"]

    def env(self, appliance: Appliance, **extra: str) -> dict[str, str]:
        env = appliance.env(**extra)
        if self.language == "python":  # what `pip install ./clients/python` would provide
            env["PYTHONPATH"] = str(CLIENTS / "python" / "src")
            env["PYTHONUNBUFFERED"] = "1"
        return env


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the receiver exited early:\n{proc.stdout.read() if proc.stdout else ''}"
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"the receiver did not listen on {port} within {timeout} s")


@pytest.mark.parametrize("language", ["python", "typescript", "php"])
def test_the_walkthrough_runs_as_written(
    appliance: Appliance, language: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    need({"python": "python3", "typescript": "node", "php": "php"}[language])
    tsc = request.getfixturevalue("typescript_built") if language == "typescript" else None
    runner = Runner(language, tmp_path / language, tsc)
    runner.prepare(doc_blocks())

    # Upload, wait until ready, a session, its launch URL, the result and the report.
    out = run(runner.command("walkthrough"), runner.env(appliance), cwd=runner.folder, timeout=STEP_TIMEOUT)
    launch_url = re.search(r"launch_url: (\S+)", out)
    assert launch_url and launch_url.group(1).startswith(f"{appliance.server.url}/player/"), out
    assert re.search(r"status: passed score: 0\.85", out), out
    assert "pass rate: 1" in out, out
    with appliance.server.client() as http:  # the launch URL really opens the learner's player
        assert http.get(launch_url.group(1)).status_code == 200

    # Register an endpoint at a receiver on this machine, start the receiver, send a test event.
    port = free_port()
    receiver_url = f"http://{HOST}:{port}/webhooks"
    out = run(
        runner.command("register"),
        runner.env(appliance, RECEIVER_URL=receiver_url),
        cwd=runner.folder,
        timeout=STEP_TIMEOUT,
    )
    values = dict(re.findall(r"^(WEBHOOK_ID|WEBHOOK_SECRET)=(\S+)$", out, re.MULTILINE))
    assert values.get("WEBHOOK_ID", "").startswith("whk_") and values.get("WEBHOOK_SECRET", "").startswith("whsec_"), (
        out
    )
    receiver = subprocess.Popen(
        runner.command("receiver", port),
        cwd=runner.folder,
        env=runner.env(appliance, WEBHOOK_SECRET=values["WEBHOOK_SECRET"], PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for_port(port, receiver)
        with httpx.Client(trust_env=False, timeout=10.0) as http:  # a forged request is refused
            headers = {
                "webhook-id": "evt_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA",
            }
            forged = http.post(receiver_url, content=b'{"id": "evt_forged"}', headers=headers)
            assert forged.status_code == 400
        out = run(
            runner.command("ping"),
            runner.env(appliance, WEBHOOK_ID=values["WEBHOOK_ID"]),
            cwd=runner.folder,
            timeout=STEP_TIMEOUT,
        )
        assert re.search(r"delivery: delivered 204", out), out
    finally:
        receiver.terminate()
        try:
            logged, _ = receiver.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            receiver.kill()
            logged, _ = receiver.communicate()
    assert re.search(r"verified ping evt_\w+", logged), logged


# -- drift between the schema and the clients ---------------------------------------------------------------


def client_operations(language: str) -> set[tuple[str, str]]:
    source = SOURCES[language].read_text("utf-8")
    calls = {(method.upper(), "/api/v1" + path) for method, path in CALL.findall(source)}
    # A call whose path is not a literal would escape the check: every call site must be literal.
    assert len(CALL.findall(source)) == len(CALL_SITE.findall(source)), f"{language}: a call() without a literal path"
    return calls


def schema_operations(schema: dict) -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops if m in methods}


@pytest.mark.parametrize("language", list(SOURCES))
def test_clients_call_only_what_the_schema_has(appliance: Appliance, language: str) -> None:
    unknown = client_operations(language) - schema_operations(appliance.schema)
    assert not unknown, f"{language} calls operations the OpenAPI schema does not have: {sorted(unknown)}"


@pytest.mark.parametrize("language", list(SOURCES))
def test_clients_cover_every_operation_of_the_covered_groups(appliance: Appliance, language: str) -> None:
    covered = {op for op in schema_operations(appliance.schema) if op[1].startswith(COVERED)}
    missing = covered - client_operations(language) - set(EXCLUDED)
    assert not missing, (
        f"{language} lacks these schema operations (add them, or to EXCLUDED with a reason): {sorted(missing)}"
    )


def test_the_exclusions_are_real_operations(appliance: Appliance) -> None:
    assert set(EXCLUDED) <= schema_operations(appliance.schema), "EXCLUDED names operations the schema no longer has"


def test_the_php_package_is_valid_psr4() -> None:
    """composer.json maps ScormAppliance\\ to src/, and every class sits where PSR-4 looks for it."""
    composer = json.loads((CLIENTS / "php" / "composer.json").read_text("utf-8"))
    assert composer["autoload"]["psr-4"] == {"ScormAppliance\\": "src/"}
    assert "ext-curl" in composer["require"]
    src = CLIENTS / "php" / "src"
    files = sorted(src.rglob("*.php"))
    assert files
    for file in files:
        text = file.read_text("utf-8")
        relative = file.relative_to(src).with_suffix("")
        namespace = "\\".join(["ScormAppliance", *relative.parts[:-1]])
        assert re.search(rf"^namespace {re.escape(namespace)};$", text, re.MULTILINE), f"{file}: namespace"
        assert re.search(rf"^(final |abstract )?class {relative.name}\b", text, re.MULTILINE), f"{file}: class name"
