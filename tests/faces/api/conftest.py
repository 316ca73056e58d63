"""Fixtures of the route tests: the app on a temporary data dir and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import create_app
from tests.conftest import TenantKey
from tests.faces.api.test_packages import upload_ready
from tests.faces.api.test_sessions import Player, create, package_12


def make_api(config: Config, clock: FixedClock) -> TestClient:
    """The app on `config` and `clock`, scheduler stopped (tests run the jobs they need themselves)."""
    return TestClient(create_app(config, clock=clock, start_scheduler=False), raise_server_exceptions=False)


@pytest.fixture
def clock() -> FixedClock:
    """A clock that moves only when the test says so."""
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def api(config: Config, clock: FixedClock) -> Iterator[TestClient]:
    """The app on the test's data dir and `clock` (modules with another app define their own `api`)."""
    with make_api(config, clock) as client:
        yield client


@pytest.fixture
def player(api: TestClient, acme: TenantKey) -> Player:
    """A launched player page on a fresh session of a one-SCO SCORM 1.2 package (the module's `api`)."""
    package = upload_ready(api, acme, package_12())
    driver = Player(api, create(api, acme, package["id"]).json())
    driver.launch()
    return driver
