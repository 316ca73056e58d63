"""`scorm-appliance lti members`: a resource link's context members (Names and Roles) from the CLI, read from
the test platform (tests/lti_platform.py) on 127.0.0.1 as the route does (tests/faces/api/test_lti.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.services.lms.lti.launch import learner_id
from tests.conftest import TenantKey
from tests.faces.api import test_lti as routes
from tests.faces.api.test_packages import package_12, upload_ready
from tests.faces.cli.test_tenants import run
from tests.lti_platform import LtiPlatform, Message

config, clock, api, platform = routes.config, routes.clock, routes.api, routes.platform  # the routes' fixtures


def test_members_of_a_link_as_a_table_and_as_json(
    runner: CliRunner,
    api: TestClient,
    acme: TenantKey,
    clock: FixedClock,
    platform: LtiPlatform,
    config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = routes.register(api, acme, platform)
    package = upload_ready(api, acme, package_12())
    message = Message("LtiResourceLinkRequest", "user-1", link_id="link-m", custom={"package_id": package["id"]})
    routes.launch(api, platform, message, clock)
    args = ("lti", "members", "--tenant", acme.tenant_id, reg["id"], "link-m")

    # The CLI reads its own settings: until they admit 127.0.0.1, the outbound guard refuses the platform.
    assert "permitted address" in run(runner, config.data_dir, *args, code=1)
    monkeypatch.setenv("SCORM_APPLIANCE_OUTBOUND_ALLOW", "127.0.0.1/32")
    found = json.loads(run(runner, config.data_dir, *args, "--json"))
    assert [m["user_id"] for m in found["data"]] == [m["user_id"] for m in platform.members]  # every page read
    assert found["data"][0]["learner_id"] == learner_id(platform.issuer, "user-1")
    assert (found["pages"], found["truncated"]) == (3, False)

    text = run(runner, config.data_dir, *args).splitlines()
    assert text[0].split() == ["LEARNER", "NAME", "EMAIL", "STATUS"] and len(text) == 1 + len(platform.members)
    assert "member1@example.org" in text[1]
    unknown = run(runner, config.data_dir, "lti", "members", "--tenant", acme.tenant_id, reg["id"], "nope", code=1)
    assert "nope" in unknown or "not found" in unknown.lower()
