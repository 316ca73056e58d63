"""SCORM 1.2 cmi.suspend_data's limit: a tenant setting (64000 by default), overridable per package.

Through the HTTP API and the player's routes on a real data dir: the tenant and package show the
setting, PATCH /packages/{id} sets and clears the override, the player page receives the table with
the effective limit, and the server stores, resumes or refuses (SCORM 405) a 10,000-character value.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.instance import Instance
from appliance.services.tenancy.tenants import STATUS_CACHE_SECONDS, set_suspend_data_limit
from tests.conftest import TenantKey
from tests.faces.api.test_packages import API, assert_error, upload_ready
from tests.faces.api.test_sessions import SESSIONS, Player, create, package_12, package_2004_single, read

LONG = "".join(f"slide{n:04d}=visited;" for n in range(10000 // 15 + 1))[:10000]  # 10,000 characters


def _set_tenant_limit(config: Config, clock: FixedClock, tenant_id: str, limit: int) -> None:
    """As `scorm-appliance tenants set-suspend-data-limit` does, from another process's Instance; the
    running app sees it once its tenant cache expires."""
    cli = Instance(config)
    try:
        set_suspend_data_limit(cli, tenant_id, limit)
    finally:
        cli.close()
    clock.advance(STATUS_CACHE_SECONDS + 1)


def _patch_package(api: TestClient, who: TenantKey, package_id: str, limit: Any) -> Any:
    return api.patch(f"{API}/{package_id}", json={"scorm12_suspend_data_limit": limit}, headers=who.headers)


def _player_table(api: TestClient, player: Player) -> dict[str, Any]:
    """The data-model table the player page is given (its bootstrap JSON)."""
    page = api.get(player.path)
    assert page.status_code == 200, page.text
    found = re.search(r'<script type="application/json" id="bootstrap">(.*?)</script>', page.text, re.DOTALL)
    assert found is not None
    return dict(json.loads(found.group(1))["table"])


def _suspend_and_relaunch(api: TestClient, session: dict[str, Any], value: str) -> tuple[Any, Player]:
    """Launch, commit `value` as suspend_data with a suspend exit, Finish; then launch again."""
    player = Player(api, session)
    player.launch()
    answer = player.commit(
        {"cmi.core.lesson_location": "slide-40", "cmi.suspend_data": value, "cmi.core.exit": "suspend"},
        terminate=True,
    )
    again = Player(api, session, client_id="page-2")
    again.launch()
    return answer, again


def test_the_tenant_and_its_packages_show_the_setting(api: TestClient, acme: TenantKey) -> None:
    assert api.get("/api/v1/tenant", headers=acme.headers).json()["scorm12_suspend_data_limit"] == 64000
    package = upload_ready(api, acme, package_12())
    assert package["scorm12_suspend_data_limit"] is None  # follows the tenant's
    listed = api.get(API, headers=acme.headers).json()["data"]
    assert [p["scorm12_suspend_data_limit"] for p in listed] == [None]


def test_patch_sets_and_clears_a_packages_limit(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    strict = _patch_package(api, acme, package["id"], 4096)
    assert strict.status_code == 200, strict.text
    assert strict.json()["scorm12_suspend_data_limit"] == 4096
    assert api.get(f"{API}/{package['id']}", headers=acme.headers).json()["scorm12_suspend_data_limit"] == 4096
    renamed = api.patch(f"{API}/{package['id']}", json={"title": "Renamed"}, headers=acme.headers).json()
    assert renamed["scorm12_suspend_data_limit"] == 4096  # left out: unchanged
    cleared = _patch_package(api, acme, package["id"], None)
    assert cleared.status_code == 200 and cleared.json()["scorm12_suspend_data_limit"] is None


@pytest.mark.parametrize("bad", [4095, 64001, 0, -5, True, 5000.5, "many", [4096]])
def test_a_limit_outside_4096_to_64000_is_a_validation_error(api: TestClient, acme: TenantKey, bad: Any) -> None:
    package = upload_ready(api, acme, package_12())
    _patch_package(api, acme, package["id"], 10000)
    error = assert_error(_patch_package(api, acme, package["id"], bad), 422, "VALIDATION_ERROR")
    if isinstance(bad, int) and not isinstance(bad, bool):
        assert "scorm12_suspend_data_limit must be an integer from 4096 to 64000" in error["error"]
        assert error["details"]["errors"] == [
            {"field": "scorm12_suspend_data_limit", "message": "must be an integer from 4096 to 64000"}
        ]
    assert api.get(f"{API}/{package['id']}", headers=acme.headers).json()["scorm12_suspend_data_limit"] == 10000


def test_another_tenants_package_cannot_be_changed(api: TestClient, acme: TenantKey, globex: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    assert_error(_patch_package(api, globex, package["id"], 4096), 404, "NOT_FOUND")
    assert api.get(f"{API}/{package['id']}", headers=acme.headers).json()["scorm12_suspend_data_limit"] is None


def test_by_default_10000_characters_are_stored_and_resumed(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    answer, again = _suspend_and_relaunch(api, session, LONG)
    assert answer.status_code == 200, answer.text
    assert again.cmi["cmi.core.entry"] == "resume"
    assert again.cmi["cmi.suspend_data"] == LONG
    assert again.cmi["cmi.core.lesson_location"] == "slide-40"
    assert read(api, acme, session["id"])["cmi"]["cmi.suspend_data"] == LONG
    assert _player_table(api, again)["elements"]["cmi.suspend_data"]["spm"] == 64000


def test_over_the_default_limit_is_refused(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()
    assert player.commit({"cmi.suspend_data": "x" * 64000}).status_code == 200
    refused = assert_error(player.commit({"cmi.suspend_data": "x" * 64001}), 422, "CMI_VALIDATION_ERROR")
    assert [(e["element"], e["scorm_error_code"]) for e in refused["details"]["errors"]] == [("cmi.suspend_data", 405)]


def test_strict_tenant_refuses_10000_characters_with_405_and_keeps_the_data(
    api: TestClient, acme: TenantKey, config: Config, clock: FixedClock
) -> None:
    _set_tenant_limit(config, clock, acme.tenant_id, 4096)
    assert api.get("/api/v1/tenant", headers=acme.headers).json()["scorm12_suspend_data_limit"] == 4096
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    player = Player(api, session)
    player.launch()
    assert _player_table(api, player)["elements"]["cmi.suspend_data"]["spm"] == 4096
    assert player.commit({"cmi.suspend_data": "state=1", "cmi.core.lesson_location": "p1"}).status_code == 200
    before = read(api, acme, session["id"])
    refused = player.commit({"cmi.suspend_data": LONG, "cmi.core.lesson_location": "p2"})
    body = assert_error(refused, 422, "CMI_VALIDATION_ERROR")
    assert [(e["element"], e["scorm_error_code"]) for e in body["details"]["errors"]] == [("cmi.suspend_data", 405)]
    assert "longer than 4096 characters" in body["details"]["errors"][0]["message"]
    after = read(api, acme, session["id"])
    assert after["cmi"] == before["cmi"] and after["version"] == before["version"]  # all or nothing
    assert player.commit({"cmi.suspend_data": "x" * 4096}).status_code == 200


def test_a_package_setting_overrides_the_tenants_both_ways(
    api: TestClient, acme: TenantKey, config: Config, clock: FixedClock
) -> None:
    relaxed_pkg, strict_pkg = (upload_ready(api, acme, package_12()) for _ in range(2))
    assert _patch_package(api, acme, strict_pkg["id"], 4096).status_code == 200
    session = create(api, acme, strict_pkg["id"]).json()
    answer, _ = _suspend_and_relaunch(api, session, LONG)
    assert assert_error(answer, 422, "CMI_VALIDATION_ERROR")["details"]["errors"][0]["scorm_error_code"] == 405

    _set_tenant_limit(config, clock, acme.tenant_id, 4096)
    assert _patch_package(api, acme, relaxed_pkg["id"], 10000).status_code == 200
    session = create(api, acme, relaxed_pkg["id"]).json()
    answer, again = _suspend_and_relaunch(api, session, LONG)
    assert answer.status_code == 200, answer.text
    assert (again.cmi["cmi.core.entry"], again.cmi["cmi.suspend_data"]) == ("resume", LONG)
    assert _player_table(api, again)["elements"]["cmi.suspend_data"]["spm"] == 10000
    assert assert_error(again.commit({"cmi.suspend_data": LONG + "x"}), 422, "CMI_VALIDATION_ERROR")


def test_session_patch_uses_the_same_limit(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    session = create(api, acme, package["id"]).json()
    url = f"{SESSIONS}/{session['id']}"
    ok = api.patch(url, json={"version": session["version"], "cmi": {"cmi.suspend_data": LONG}}, headers=acme.headers)
    assert ok.status_code == 200, ok.text
    assert read(api, acme, session["id"])["cmi"]["cmi.suspend_data"] == LONG
    assert _patch_package(api, acme, package["id"], 4096).status_code == 200
    refused = api.patch(
        url, json={"version": ok.json()["version"], "cmi": {"cmi.suspend_data": LONG + "!"}}, headers=acme.headers
    )
    errors = assert_error(refused, 422, "CMI_VALIDATION_ERROR")["details"]["errors"]
    assert [(e["element"], e["scorm_error_code"]) for e in errors] == [("cmi.suspend_data", 405)]
    assert read(api, acme, session["id"])["cmi"]["cmi.suspend_data"] == LONG


def test_2004_keeps_its_own_rules_whatever_the_setting(
    api: TestClient, acme: TenantKey, config: Config, clock: FixedClock
) -> None:
    _set_tenant_limit(config, clock, acme.tenant_id, 4096)
    package = upload_ready(api, acme, package_2004_single())
    player = Player(api, create(api, acme, package["id"]).json())
    player.launch()
    assert _player_table(api, player)["elements"]["cmi.suspend_data"]["spm"] == 64000
    assert player.commit({"cmi.suspend_data": "y" * 64001}).status_code == 200  # 2004's SPM is a minimum
    state = api.get(f"{player.path}/state", params={"activity": player.activity}).json()
    assert state["cmi"]["cmi.suspend_data"] == "y" * 64001
