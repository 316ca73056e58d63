"""The per-tenant cap on learner traffic: all of a tenant's sessions (player, runtime, package files) together."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from appliance.clock import FixedClock
from appliance.config import Config
from appliance.services.tenancy.ratelimit import LearnerLimits
from tests.conftest import TenantKey
from tests.faces.api.conftest import make_api
from tests.faces.api.test_packages import assert_error, package_12, upload_ready
from tests.faces.api.test_webhooks import Learner, new_session


def commit_body(learner: Learner, seq: int) -> dict[str, Any]:
    return {"client_id": "c", "seq": seq, "activity": learner.activity, "changes": {"cmi.core.lesson_location": "1"}}


def test_a_tenants_learners_share_one_cap_other_tenants_do_not(
    config: Config, acme: TenantKey, globex: TenantKey, clock: FixedClock
) -> None:
    capped = dataclasses.replace(config, tenant_learner_requests_per_minute=8)
    with make_api(capped, clock) as api:
        package = upload_ready(api, acme, package_12())
        theirs = upload_ready(api, globex, package_12())
        first = Learner(api, new_session(api, acme, package["id"], learner="a")).launch()  # 1
        second = Learner(api, new_session(api, acme, package["id"], learner="b")).launch()  # 2
        other = Learner(api, new_session(api, globex, theirs["id"], learner="c")).launch()
        assert api.get(first.path).status_code == 200  # 3: the page
        assert api.get(f"{first.path}/content/index.html").status_code == 200  # 4: package files count
        assert api.post(f"{first.path}/commit", json=commit_body(first, 1)).status_code == 200  # 5: the fast path
        assert api.get(f"{second.path}/state?activity={second.activity}").status_code == 200  # 6
        assert api.post(f"{second.path}/navigate", json={"request": "continue"}).status_code in (200, 409)  # 7
        assert api.get(f"{second.path}/content/index.html").status_code == 200  # 8

        for refused in (
            api.get(f"{first.path}/state?activity={first.activity}"),
            api.get(f"{second.path}/content/index.html"),
            api.get(second.path),
            api.post(f"{first.path}/commit", json=commit_body(first, 2)),
            api.post(f"{first.path}/launch"),
        ):
            body = assert_error(refused, 429, "RATE_LIMITED")
            assert body["details"] == {"retry_after": 60, "limit": 8, "scope": "tenant"}
            assert refused.headers["Retry-After"] == "60"
        assert "organisation's learners" in body["error"]
        # Another tenant's learners, and the tenant's own API, are not affected.
        assert api.get(f"{other.path}/state?activity={other.activity}").status_code == 200
        assert api.get("/api/v1/tenant", headers=acme.headers).status_code == 200
        clock.advance(60)
        assert api.post(f"{first.path}/commit", json=commit_body(first, 2)).status_code == 200


def test_requests_the_session_limit_refuses_do_not_use_up_the_cap(
    config: Config, acme: TenantKey, clock: FixedClock
) -> None:
    capped = dataclasses.replace(config, tenant_learner_requests_per_minute=5, learner_requests_per_minute=3)
    with make_api(capped, clock) as api:
        package = upload_ready(api, acme, package_12())
        noisy = Learner(api, new_session(api, acme, package["id"], learner="a")).launch()  # 1
        quiet = Learner(api, new_session(api, acme, package["id"], learner="b"))
        scopes = []
        for _ in range(5):
            response = api.get(f"{noisy.path}/state?activity={noisy.activity}")
            scopes.append(response.json()["details"]["scope"] if response.status_code == 429 else "ok")
        assert scopes == ["ok", "ok", "session", "session", "session"]  # 3 admitted
        quiet.launch()  # 4
        assert api.get(f"{quiet.path}/state?activity={quiet.activity}").status_code == 200  # 5
        refused = api.get(f"{quiet.path}/state?activity={quiet.activity}")
        assert assert_error(refused, 429, "RATE_LIMITED")["details"]["scope"] == "tenant"


def test_the_cap_can_be_removed(config: Config, acme: TenantKey, clock: FixedClock) -> None:
    uncapped = dataclasses.replace(config, tenant_learner_requests_per_minute=0)
    with make_api(uncapped, clock) as api:
        package = upload_ready(api, acme, package_12())
        learner = Learner(api, new_session(api, acme, package["id"])).launch()
        for _ in range(50):
            assert api.get(f"{learner.path}/content/index.html").status_code == 200


def test_the_default_cap_leaves_room_for_a_big_class() -> None:
    """300 learners opening a 200-file course in the same minute use half the default cap."""
    limits = LearnerLimits(Config().learner_requests_per_minute, Config().tenant_learner_requests_per_minute)
    now = 1_800_000_000.0
    for learner in range(300):
        for _ in range(200):
            assert limits.hit("ten_school", f"ses_{learner}" if _ < 100 else None, now) is None
    assert Config().tenant_learner_requests_per_minute >= 2 * 300 * 200


def test_the_check_is_cheap() -> None:
    """Two in-memory counters, no database: a few microseconds next to a commit's ~250."""
    limits = LearnerLimits(600, 120_000)
    now = 1_800_000_000.0
    rounds = 50_000
    start = time.perf_counter()
    for n in range(rounds):
        limits.hit("ten_a", f"ses_{n % 500}", now)
    per_hit_us = (time.perf_counter() - start) / rounds * 1e6
    assert per_hit_us < 25, per_hit_us
