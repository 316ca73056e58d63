"""Fixtures of the route tests: the app on a temporary data dir and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from appliance.app import create_app
from appliance.clock import FixedClock
from appliance.config import Config


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
