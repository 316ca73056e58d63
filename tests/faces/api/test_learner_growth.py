"""Learner routes cannot grow a tenant's storage unseen: bounded client ids, bounded sequence numbers
kept per session, and every byte of session data counted in the tenant's usage (issue 20, item 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.config import Config
from appliance.instance import Instance
from appliance.services.learning import commits, player_requests
from appliance.services.tenancy import quota_events
from appliance.storage.datadir import DataDir
from appliance.storage.sqlite.connection import one
from tests.conftest import TenantKey
from tests.faces.api.test_packages import assert_error, set_storage_limit, upload_ready
from tests.faces.api.test_sessions import Player, create, package_12, package_2004_single

USAGE = "/api/v1/usage"


def tenant_file_bytes(config: Config, tenant_id: str) -> int:
    """The tenant database on disk, WAL included (what a hostile learner would make grow)."""
    path = DataDir(config.data_dir).tenant_db(tenant_id)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def session_column(config: Config, tenant_id: str, session_path: str, column: str) -> Any:
    inst = Instance(config)
    try:
        return inst.tenant_db(tenant_id).read_sync(lambda c: one(c, f"SELECT {column} AS v FROM sessions"))["v"]
    finally:
        inst.close()


def measured_session_bytes(config: Config, tenant_id: str) -> int:
    """What the tenant database holds for learners, measured column by column in SQL."""
    inst = Instance(config)
    try:
        row = inst.tenant_db(tenant_id).read_sync(
            lambda c: one(
                c,
                "SELECT (SELECT coalesce(sum(length(cmi)), 0) FROM session_activities) + (SELECT coalesce(sum("
                "length(learner_id) + length(learner_name) + length(commit_seqs) + coalesce(length(sequencing_state), 0)"
                " + coalesce(length(shared_state), 0)), 0) FROM sessions)"
                " + (SELECT coalesce(sum(length(data)), 0) FROM learner_state) AS n",
            )
        )
    finally:
        inst.close()
    return int(row["n"])


def test_two_megabyte_client_ids_are_refused_and_store_nothing(
    api: TestClient, acme: TenantKey, player: Player, config: Config
) -> None:
    """The review's reproduction: ten commits with 2 MB client ids grew the file from 7 MB to 61 MB."""
    before = tenant_file_bytes(config, acme.tenant_id)
    for seq in range(1, 11):
        player.client_id = f"{seq}-" + "x" * (2 * 1024 * 1024)
        response = player.commit({"cmi.core.lesson_location": "p"}, seq=seq)
        error = assert_error(response, 422, "VALIDATION_ERROR")
        assert error["details"]["errors"][0]["field"] == "client_id"
        assert "length <= 64" in error["details"]["errors"][0]["message"]
    assert tenant_file_bytes(config, acme.tenant_id) - before < 256 * 1024
    assert session_column(config, acme.tenant_id, player.path, "commit_seqs") == "{}"


@pytest.mark.parametrize(
    ("client_id", "seq", "field"),
    [("x" * 65, 1, "client_id"), ("", 1, "client_id"), ("page", -1, "seq"), ("page", 2**53, "seq")],
)
def test_client_ids_and_seqs_out_of_bounds_are_validation_errors(
    player: Player, client_id: str, seq: int, field: str
) -> None:
    player.client_id = client_id
    error = assert_error(player.commit({"cmi.core.lesson_location": "p"}, seq=seq), 422, "VALIDATION_ERROR")
    assert error["details"]["errors"][0]["field"] == field


def test_the_longest_client_id_and_seq_are_accepted(player: Player) -> None:
    player.client_id = "x" * player_requests.MAX_CLIENT_ID_CHARS
    response = player.commit({"cmi.core.lesson_location": "p"}, seq=player_requests.MAX_SEQ)
    assert response.status_code == 200, response.text
    assert response.json()["replayed"] is False
    assert player.commit({"cmi.core.lesson_location": "q"}, seq=player_requests.MAX_SEQ).json()["replayed"] is True


def test_only_the_most_recently_used_pages_are_remembered(player: Player, config: Config, acme: TenantKey) -> None:
    """Every page load is a new client id: forty loads keep sixteen entries, the latest ones, and a
    page that keeps committing is never the one forgotten."""
    for n in range(40):
        player.client_id = f"page-{n}"
        assert player.commit({"cmi.core.lesson_location": f"p{n}"}, seq=1).status_code == 200
        player.client_id = "long-lived"  # one page open all along, committing between the others
        assert player.commit({"cmi.core.lesson_location": f"l{n}"}, seq=n + 1).status_code == 200
    seqs = json.loads(session_column(config, acme.tenant_id, player.path, "commit_seqs"))
    assert len(seqs) == player_requests.MAX_CLIENT_IDS
    assert list(seqs) == [f"page-{n}" for n in range(25, 40)] + ["long-lived"]
    # Replays of remembered pages stay harmless.
    player.client_id = "page-39"
    assert player.commit({"cmi.core.lesson_location": "stale"}, seq=1).json()["replayed"] is True
    player.client_id = "long-lived"
    assert player.commit({"cmi.core.lesson_location": "stale"}, seq=40).json()["replayed"] is True
    # A forgotten page's resent conditional batch still meets the version check.
    player.client_id = "page-0"
    stale_version = player.version - 5  # type: ignore[operator]
    player.version = stale_version
    assert_error(player.commit({"cmi.core.lesson_location": "stale"}, seq=1), 409, "VERSION_CONFLICT")


def test_record_seq_keeps_order_of_use() -> None:
    seqs = {"a": 1, "b": 1}
    commits.record_seq(seqs, "a", 2)
    assert list(seqs.items()) == [("b", 1), ("a", 2)]
    for n in range(player_requests.MAX_CLIENT_IDS):
        commits.record_seq(seqs, f"n{n}", 1)
    assert len(seqs) == player_requests.MAX_CLIENT_IDS and "b" not in seqs and "a" not in seqs


def test_session_bytes_count_every_session_row_and_learner_state(
    api: TestClient, acme: TenantKey, config: Config
) -> None:
    """Sequencing state, shared state, sequence numbers and global objectives are stored for learners:
    usage counts them, not only the CMI, for many sessions at once."""
    package = upload_ready(api, acme, package_2004_single())
    for n in range(12):
        driver = Player(api, create(api, acme, package["id"], learner=f"learner-{n}").json(), client_id=f"pg-{n}")
        driver.launch()
        response = driver.commit({"cmi.location": f"page {n}", "cmi.suspend_data": "s" * 500})
        assert response.status_code == 200, response.text
        response = driver.commit({"cmi.success_status": "passed"}, terminate=True)
        assert response.status_code == 200, response.text
    usage = api.get(USAGE, headers=acme.headers).json()
    measured = measured_session_bytes(config, acme.tenant_id)
    assert usage["session_bytes"] == measured
    assert measured > 12 * 500


def test_learner_data_growth_reaches_the_quota(api: TestClient, acme: TenantKey, config: Config) -> None:
    """Session data is never refused, but the quota watch sees it and reports `quota.exceeded`."""
    package = upload_ready(api, acme, package_12())
    used = api.get(USAGE, headers=acme.headers).json()["storage_bytes"]
    set_storage_limit(config, acme.tenant_id, used + 2000)
    for n in range(8):
        driver = Player(api, create(api, acme, package["id"], learner=f"l{n}").json())
        driver.launch()
        assert driver.commit({"cmi.suspend_data": "d" * 300}).status_code == 200
    assert api.get(USAGE, headers=acme.headers).json()["storage_bytes"] > used + 2000
    inst = Instance(config)
    try:
        assert quota_events.watch(inst) == 1
        level = inst.tenant_db(acme.tenant_id).read_sync(quota_events.current_level)
    finally:
        inst.close()
    assert level == "exceeded"


@pytest.mark.sqlite_only(
    reason="re-runs a migration on a SQLite file as it is opened (PostgreSQL schemas are installed whole)"
)
def test_the_migration_recounts_sessions_stored_before(
    api: TestClient, acme: TenantKey, player: Player, config: Config
) -> None:
    """Sessions written before rows were counted get their row data counted when the file is opened."""
    player.commit({"cmi.core.lesson_location": "somewhere"})
    expected = measured_session_bytes(config, acme.tenant_id)
    inst = Instance(config)
    try:
        inst.tenant_db(acme.tenant_id).write_sync(
            lambda c: c.execute(
                "UPDATE sessions SET data_bytes = 0; DELETE FROM _migrations WHERE name = 'm008_session_row_bytes'"
            )
        )
    finally:
        inst.close()
    inst = Instance(config)
    try:
        inst.tenant_db(acme.tenant_id)  # opening the file applies the migration again
    finally:
        inst.close()
    assert api.get(USAGE, headers=acme.headers).json()["session_bytes"] == expected
