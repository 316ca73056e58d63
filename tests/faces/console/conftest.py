"""Fixtures of the console's route tests: the app on a temporary data dir with a clock the test moves,
two tenants, a superuser and a tenant admin of the first tenant, and a signed-in client helper."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.faces.app import create_app
from appliance.instance import Instance
from appliance.services.tenancy import admins, tenants

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_MAIN_CSRF = re.compile(r'data-csrf="([^"]*)"')


@dataclass
class World:
    """The tenants and accounts every console test starts from."""

    acme: str
    globex: str


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1_800_000_000.0)


@pytest.fixture
def world(config: Config, clock: FixedClock) -> World:
    inst = Instance(config, clock)
    try:
        acme = tenants.create_tenant(inst, "acme").id
        globex = tenants.create_tenant(inst, "globex").id
        admins.create_admin(inst, "root", PASSWORD)
        admins.create_admin(inst, "acme-admin", PASSWORD, acme)
    finally:
        inst.close()
    return World(acme=acme, globex=globex)


@pytest.fixture
def app_client(config: Config, clock: FixedClock, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(config, clock=clock, start_scheduler=False), raise_server_exceptions=False) as client:
        yield client


def login_token(client: TestClient) -> str:
    """Open the login form (which sets its cookie) and return its token."""
    page = client.get("/admin/login")
    assert page.status_code == 200
    found = _CSRF.search(page.text)
    assert found
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in and return the session's CSRF token (from a console page)."""
    answer = client.post(
        "/admin/login",
        data={"csrf_token": login_token(client), "username": username, "password": password},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    page = client.get("/admin/tenants")
    assert page.status_code == 200, page.text
    found = _MAIN_CSRF.search(page.text)
    assert found and found.group(1)
    return found.group(1)
