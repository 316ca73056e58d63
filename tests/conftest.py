"""Shared fixtures: a temporary data dir, the app on it, the CLI runner, and tenants with keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import ENV_PREFIX, Config
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.tenancy.apikeys import create_key
from appliance.services.tenancy.tenants import create_tenant
from tests.e2e.databases import Databases

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "scorm-corpus"


BACKENDS = ("sqlite", "postgresql")
# The folders (and files) of tests/ whose every test runs on each backend.
BOTH_BACKENDS = (("faces", "api"), ("faces", "cli"), ("services", "learning", "test_sequencing_pool.py"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-backend",
        choices=BACKENDS,
        default=None,
        help="run on this database backend only: the tests made for both (tests/faces/api, tests/faces/cli, the "
        "end-to-end servers, the ADL suite) only on it, and the others on it too (by default they run on sqlite), "
        "e.g. `--database-backend=postgresql tests/e2e`",
    )


def _backends(metafunc: pytest.Metafunc) -> tuple[str, ...]:
    """Both backends, or only SQLite for a test marked `sqlite_only(reason=...)` (it looks at SQLite files, so
    it is not made for PostgreSQL), or only the one `--database-backend` names."""
    backends = BACKENDS
    marker = metafunc.definition.get_closest_marker("sqlite_only")
    if marker is not None:
        if not marker.kwargs.get("reason"):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs reason=...")
        backends = ("sqlite",)
    chosen = metafunc.config.getoption("--database-backend")
    return tuple(b for b in backends if chosen in (None, b))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of tests/faces/api and tests/faces/cli run once per backend (ids `[sqlite]`, `[postgresql]`), and
    so do the tests whose servers take the module-scoped `databases` fixture (tests/e2e, the ADL suite): those
    are grouped by backend within their module, whose server is started once per backend."""
    if "databases" in metafunc.fixturenames:
        metafunc.parametrize("databases", _backends(metafunc), indirect=True, scope="module")
    if "backend" not in metafunc.fixturenames:
        return
    rel = Path(metafunc.definition.path).relative_to(REPO / "tests")
    if not any(rel.parts[: len(prefix)] == prefix for prefix in BOTH_BACKENDS):
        return
    metafunc.parametrize("backend", _backends(metafunc), indirect=True, scope="function")


@pytest.fixture(scope="module")
def databases(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """The backend of the end-to-end servers of this module (parametrised: `[sqlite]`, `[postgresql]`): on
    PostgreSQL each data directory a server is started on gets a schema of its own (tests/e2e/databases.py)."""
    found = Databases(getattr(request, "param", None) or request.config.getoption("--database-backend") or "sqlite")
    try:
        yield found
    finally:
        found.close()


@pytest.fixture(scope="session")
def _pg_backend() -> Iterator[Any]:
    """The session's PostgreSQL schema (made on first use by a [postgresql] test)."""
    from tests.storage.postgres.backend import Backend

    found = Backend()
    yield found
    found.close()


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The database backend of this test: `sqlite` unless parametrised. On `postgresql` the `config`
    fixture and every Config the CLI loads (through the environment) use the session's schema, which is
    emptied after the test."""
    name = getattr(request, "param", None) or request.config.getoption("--database-backend") or "sqlite"
    if name != "postgresql":
        yield name
        return
    pg = request.getfixturevalue("_pg_backend")
    monkeypatch.setenv(ENV_PREFIX + "DATABASE", pg.url)
    monkeypatch.setenv(ENV_PREFIX + "DATABASE_SCHEMA", pg.schema.schema)
    try:
        yield name
    finally:
        pg.reset()


def backend_config(data_dir: Path, **settings: Any) -> Config:
    """A Config on `data_dir` with the running test's database backend (what the `backend` fixture put in
    the environment), for tests that build their own Config."""
    found = Config(data_dir=data_dir, **settings)
    url = os.environ.get(ENV_PREFIX + "DATABASE")
    if url is None:
        return found
    return found.with_overrides({"database": url, "database_schema": os.environ[ENV_PREFIX + "DATABASE_SCHEMA"]})


@pytest.fixture
def config(tmp_path: Path, backend: str) -> Config:
    """A Config on a fresh temporary data directory (and the test's database backend)."""
    found = Config(data_dir=tmp_path / "data")
    if backend == "postgresql":
        return found.with_overrides(
            {
                "database": os.environ[ENV_PREFIX + "DATABASE"],
                "database_schema": os.environ[ENV_PREFIX + "DATABASE_SCHEMA"],
            }
        )
    return found


@pytest.fixture
def inst(config: Config) -> Iterator[Instance]:
    """An Instance for service-level tests (the CLI's view of the data dir)."""
    instance = Instance(config)
    yield instance
    instance.close()


@pytest.fixture
def client(config: Config) -> Iterator[TestClient]:
    """Litestar's test client over the real app on the temporary data dir (lifespan runs)."""
    with TestClient(create_app(config), raise_server_exceptions=False) as test_client:
        yield test_client


class TenantKey:
    """A tenant and one of its API keys, with the auth header to use."""

    def __init__(self, tenant_id: str, key_id: str, secret: str) -> None:
        self.tenant_id = tenant_id
        self.key_id = key_id
        self.secret = secret
        self.headers = {"Authorization": f"Bearer {secret}"}


def make_tenant_key(config: Config, name: str, plan: str = "free") -> TenantKey:
    """Create a tenant and a key through the service functions (as the CLI does)."""
    instance = Instance(config)
    try:
        tenant = create_tenant(instance, name, plan)
        key, secret = create_key(instance, tenant.id, "test")
    finally:
        instance.close()
    return TenantKey(tenant.id, key.id, secret)


@pytest.fixture
def acme(config: Config) -> TenantKey:
    """Tenant 'Acme' with a key."""
    return make_tenant_key(config, "Acme")


@pytest.fixture
def globex(config: Config) -> TenantKey:
    """Tenant 'Globex' with a key, for isolation tests."""
    return make_tenant_key(config, "Globex")


@pytest.fixture
def runner() -> CliRunner:
    """click's CLI runner."""
    return CliRunner()


@pytest.fixture
def fixed_clock() -> FixedClock:
    """A clock that only moves when the test says so."""
    return FixedClock()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared SCORM corpus folder; tests using it skip with a clear message when it is absent."""
    if not (CORPUS / "packages").is_dir():
        pytest.skip(f"the SCORM corpus is not at {CORPUS} (CI always has it)")
    return CORPUS
