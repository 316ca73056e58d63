"""Fixtures of the xAPI route tests: tenants with LRS credentials of each scope, and Basic headers."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.lrs.credentials import create_credential
from tests.conftest import TenantKey


@dataclass
class LrsClient:
    """A tenant's LRS credential and the headers an xAPI client sends with it."""

    tenant_id: str
    key: str
    secret: str
    version: str = "1.0.3"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.basic, "X-Experience-API-Version": self.version}


def make_lrs_client(config: Config, tenant_id: str, scope: str = "all") -> LrsClient:
    """Issue a credential through the service (as the CLI does)."""
    instance = Instance(config)
    try:
        cred, secret = create_credential(instance, tenant_id, f"{scope} test", scope)
    finally:
        instance.close()
    return LrsClient(tenant_id, cred.id, secret)


@pytest.fixture
def lrs(config: Config, acme: TenantKey) -> LrsClient:
    """Acme's credential with scope `all`."""
    return make_lrs_client(config, acme.tenant_id)


@pytest.fixture
def lrs_globex(config: Config, globex: TenantKey) -> LrsClient:
    """Globex's credential with scope `all`, for isolation tests."""
    return make_lrs_client(config, globex.tenant_id)
