"""The sessions list's learner search (`?learner=`): a case-insensitive substring of the learner's id or
name, beside the exact `learner_id` filter it leaves as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, make_client, upload_ready
from tests.faces.api.test_sessions import SESSIONS, package_12


@pytest.fixture
def api(config: Config) -> Iterator[TestClient]:
    with make_client(config) as client:
        yield client


def _create(api: TestClient, acme: TenantKey, package_id: str, learner_id: str, name: str) -> str:
    answer = api.post(
        SESSIONS, json={"package_id": package_id, "learner": {"id": learner_id, "name": name}}, headers=acme.headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _found(api: TestClient, acme: TenantKey, query: str) -> list[str]:
    answer = api.get(f"{SESSIONS}?{query}", headers=acme.headers)
    assert answer.status_code == 200, answer.text
    return [s["id"] for s in answer.json()["data"]]


def test_learner_search_matches_id_and_name_ignoring_case(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    ada = _create(api, acme, package["id"], "emp-1001", "Ada Lovelace")
    alan = _create(api, acme, package["id"], "emp-1002", "Alan Turing")
    grace = _create(api, acme, package["id"], "contractor-7", "Grace Hopper")
    odd = _create(api, acme, package["id"], "x%_\\y", "Percent Person")
    assert _found(api, acme, "learner=emp-") == [ada, alan]  # a prefix of the id
    assert _found(api, acme, "learner=LOVE") == [ada]  # part of the name, any case
    assert _found(api, acme, "learner=HOPPER") == [grace]
    assert _found(api, acme, "learner=100") == [ada, alan]  # inside the id
    assert _found(api, acme, "learner=%25") == [odd]  # LIKE's wildcards match only themselves
    assert _found(api, acme, "learner=_") == [odd]
    assert _found(api, acme, "learner=%5C") == [odd]
    assert _found(api, acme, "learner=nobody") == []
    # The exact filter is unchanged: a prefix finds nothing, the whole id its one session.
    assert _found(api, acme, "learner_id=emp-") == []
    assert _found(api, acme, "learner_id=emp-1002") == [alan]
    assert _found(api, acme, "learner_id=emp-1002&learner=ada") == []  # both apply
    assert _found(api, acme, f"learner=a&package_id={package['id']}&limit=1") == [ada]
    assert_error(api.get(f"{SESSIONS}?learner={'a' * 201}", headers=acme.headers), 422, "VALIDATION_ERROR")


def test_learner_search_pages_with_the_cursor(api: TestClient, acme: TenantKey) -> None:
    package = upload_ready(api, acme, package_12())
    made = [_create(api, acme, package["id"], f"Team-{n:03d}", f"Member {n}") for n in range(5)]
    _create(api, acme, package["id"], "other", "Someone Else")
    first = api.get(f"{SESSIONS}?learner=team&limit=3", headers=acme.headers).json()
    assert [s["id"] for s in first["data"]] == made[:3] and first["next_cursor"]
    rest = api.get(f"{SESSIONS}?learner=team&limit=3&cursor={first['next_cursor']}", headers=acme.headers).json()
    assert [s["id"] for s in rest["data"]] == made[3:] and rest["next_cursor"] is None
