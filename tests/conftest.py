"""Shared fixtures: a temporary data dir, the app on it, the CLI runner, and tenants with keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.apikeys import create_key
from appliance.app import create_app
from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.tenants import create_tenant

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "scorm-corpus"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A Config on a fresh temporary data directory."""
    return Config(data_dir=tmp_path / "data")


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
