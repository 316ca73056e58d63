"""Each SQLite-ism of the survey: its translation, and the same statement's result on a real SQLite
tenant file and through the adapter on PostgreSQL (a fresh tenant per test: RLS keeps them apart)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from appliance.storage.postgres.adapter import PgDatabase, PgStore
from appliance.storage.postgres.catalog import tenant_catalog
from appliance.storage.postgres.translate import Untranslatable, translate
from appliance.storage.sqlite.connection import one, rows
from appliance.storage.sqlite.database import Database
from appliance.storage.sqlite.tenant_schema import tenant_migrations
from tests.storage.postgres.conftest import add_tenant

NOW = 1_700_000_000.0


class Both:
    """A migrated SQLite tenant file and a fresh tenant on PostgreSQL, written to alike."""

    def __init__(self, lite: Database, pg: PgDatabase) -> None:
        self.lite, self.pg = lite, pg

    def __call__(self, fn: Callable[[Any], Any]) -> tuple[Any, Any]:
        """Run `fn` in a write transaction on each; both results."""
        return self.lite.write_sync(fn), self.pg.write_sync(fn)


@pytest.fixture
def both(tmp_path: Path, pg_store: PgStore) -> Iterator[Both]:
    lite = Database(tmp_path / "tenant.db", tenant_migrations, NOW)
    tenant_id = f"ten_{secrets.token_hex(6)}"
    add_tenant(pg_store, tenant_id)
    yield Both(lite, pg_store.tenant_db(tenant_id))
    lite.close()


def same(both: Both, fn: Callable[[Any], Any]) -> Any:
    """`fn`'s result, which must be the same on both backends."""
    lite, pg = both(fn)
    assert lite == pg
    return lite


def _sql(text: str) -> str:
    return translate(text, tenant_catalog()).sql


def test_placeholders_and_literals() -> None:
    assert _sql("SELECT * FROM webhooks WHERE id = ? AND url = '?' AND description LIKE '5%'") == (
        "SELECT * FROM webhooks WHERE id = %s AND url = '?' AND description ILIKE '5%%'"
    )
    assert _sql("SELECT * FROM webhooks WHERE id = :id -- a :comment") == (
        "SELECT * FROM webhooks WHERE id = %(id)s -- a :comment"
    )
    with pytest.raises(Untranslatable, match="mixes"):
        _sql("SELECT * FROM webhooks WHERE id = ? AND url = :url")


def test_refused_sqlite_isms() -> None:
    for text in ("SELECT rowid FROM webhooks", "SELECT datetime('now')", "SELECT last_insert_rowid()"):
        with pytest.raises(Untranslatable):
            _sql(text)


def test_named_and_positional_parameters(both: Both) -> None:
    def fn(c) -> list[dict]:
        c.execute("INSERT INTO learner_state (learner_id, kind, data, updated_at) VALUES (:l, :k, :d, :t)",
                  {"l": "l1", "k": "global", "d": "50%", "t": NOW})  # fmt: skip
        return rows(c, "SELECT * FROM learner_state WHERE learner_id = ? AND data LIKE '50%'", ("l1",))

    assert same(both, fn) == [{"learner_id": "l1", "kind": "global", "data": "50%", "updated_at": NOW}]


def test_insert_or_ignore_and_changes(both: Both) -> None:
    def fn(c) -> list[int]:
        counts = []
        for _ in range(2):
            c.execute("INSERT OR IGNORE INTO learner_state (learner_id, kind, data, updated_at) VALUES (?, 'k', 'x', ?)",
                      ("l1", NOW))  # fmt: skip
            counts.append(c.changes())
        one(c, "SELECT count(*) AS n FROM learner_state")  # a SELECT leaves changes() alone
        return [*counts, c.changes()]

    assert same(both, fn) == [1, 0, 0]


def test_insert_or_replace(both: Both) -> None:
    def fn(c) -> list:
        counts = []
        for verb, data in (("INSERT OR REPLACE", "first"), ("REPLACE", "second")):
            c.execute(
                f"{verb} INTO learner_state (learner_id, kind, data, updated_at) VALUES ('l', 'k', ?, ?)", (data, NOW)
            )
            counts.append(c.changes())
        return [counts, list(c.execute("SELECT learner_id, kind, data FROM learner_state"))]

    assert same(both, fn) == [[1, 1], [("l", "k", "second")]]


def test_upsert_with_bare_columns_and_scalar_max_min(both: Both) -> None:
    def fn(c) -> list[tuple]:
        for n in (3, 4):
            c.execute("INSERT INTO usage_periods (period_start, api_requests) VALUES (?, ?) ON CONFLICT (period_start) "
                      "DO UPDATE SET api_requests = api_requests + excluded.api_requests", (NOW, n))  # fmt: skip
        return list(c.execute("SELECT api_requests, max(api_requests, 10), min(api_requests, 10) FROM usage_periods"))

    assert same(both, fn) == [(7, 10, 7)]


def test_total_sum_count_and_integer_results(both: Both) -> None:
    def fn(c) -> list[tuple]:
        empty = list(
            c.execute("SELECT total(api_requests), count(*), coalesce(sum(api_requests), 0) FROM usage_periods")
        )
        c.executemany("INSERT INTO usage_periods (period_start, api_requests) VALUES (?, ?)", [(1.0, 2), (2.0, 5)])
        full = list(c.execute("SELECT total(api_requests), count(*), sum(api_requests), 1 = 1 FROM usage_periods"))
        return [*empty, *full]

    result = same(both, fn)
    assert result == [(0.0, 0, 0), (7.0, 2, 7, 1)]
    assert type(result[1][0]) is float and type(result[1][2]) is int


def test_json_extract_and_is_not(both: Both) -> None:
    def fn(c) -> list[tuple]:
        c.execute("INSERT INTO webhooks (id, url, events, secret, created_at, updated_at) VALUES "
                  "('w1', 'u', '{\"key\": \"a\", \"n\": 2}', 's', 0, 0), ('w2', 'u', '{\"key\": \"b\", \"n\": 3}', 's', 0, 0)")  # fmt: skip
        by_key = list(c.execute("SELECT id FROM webhooks WHERE json_extract(events, '$.key') = ?", ("b",)))
        differ = list(c.execute("SELECT id FROM webhooks WHERE json_extract(events, '$.n') IS NOT created_at + 2"))
        return [*by_key, *differ]

    assert same(both, fn) == [("w2",), ("w2",)]


def test_where_1_limit_minus_1_and_null_ordering(both: Both) -> None:
    def fn(c) -> list[tuple]:
        c.executemany("INSERT INTO packages (id, title, latest_version, created_at, updated_at) VALUES (?, ?, 1, 0, 0)",
                      [("p1", "b"), ("p2", None), ("p3", "a")])  # fmt: skip
        asc = list(c.execute("SELECT id FROM packages WHERE 1 ORDER BY title, id LIMIT -1"))
        desc = list(c.execute("SELECT id FROM packages WHERE 1 ORDER BY title DESC LIMIT ? OFFSET 1", (5,)))
        return [*asc, *desc]

    assert same(both, fn) == [("p2",), ("p3",), ("p1",), ("p3",), ("p2",)]


def test_cast_as_integer_truncates(both: Both) -> None:
    def fn(c) -> list[tuple]:
        return list(c.execute("SELECT CAST(? / 86400 AS INTEGER), CAST(-2.5 AS INTEGER), CAST(2.7 AS INTEGER)",
                              (86400 * 1.9,)))  # fmt: skip

    assert same(both, fn) == [(1, -2, 2)]


def test_identity_blobs_and_savepoints(both: Both) -> None:
    def fn(c) -> list[Any]:
        c.execute(
            "INSERT INTO xapi_scorm_outbox (session_id, created_at, statements) VALUES ('s', 0, ?)", (b"\x00\xff",)
        )
        c.execute("INSERT INTO xapi_scorm_outbox (session_id, created_at, statements) VALUES ('s', 1, ?)", (b"\x01",))
        c.execute("SAVEPOINT grouped_write")
        c.execute("DELETE FROM xapi_scorm_outbox")
        c.execute("ROLLBACK TO grouped_write")
        c.execute("RELEASE grouped_write")
        found = list(c.execute("SELECT seq, statements FROM xapi_scorm_outbox ORDER BY seq"))
        return [
            found[0][0] < found[1][0],
            [bytes(r[1]) for r in found],
            c.execute("PRAGMA cache_size=-2000").fetchall(),
        ]

    assert same(both, fn) == [True, [b"\x00\xff", b"\x01"], []]


def test_constraint_error_is_apsws(both: Both) -> None:
    def fn(c) -> str:
        c.execute("INSERT INTO lti_nonces (issuer, nonce, expires_at) VALUES ('i', 'n', 0)")
        try:
            c.execute("INSERT INTO lti_nonces (issuer, nonce, expires_at) VALUES ('i', 'n', 0)")
        except apsw.ConstraintError:
            return "refused"
        return "accepted"

    assert same(both, fn) == "refused"


def test_analytics_triggers(both: Both) -> None:
    def fn(c) -> list[Any]:
        c.execute("INSERT INTO sessions (id, package_id, package_version, learner_id, created_at, updated_at, "
                  "expires_at) VALUES ('s1', 'p', 1, 'l', 0, 0, 0)")  # fmt: skip
        insert = ("INSERT INTO session_interactions (session_id, activity_id, idx, package_id, interaction_id, type, "
                  "response, outcome, latency_seconds) VALUES ('s1', 'a', ?, 'p', 'q1', 'choice', ?, ?, ?)")  # fmt: skip
        c.executemany(insert, [(0, "x", "correct", 2.0), (1, "y", "incorrect", None), (2, "x", "correct", 4.0)])
        stats = list(c.execute("SELECT * FROM interaction_stats"))
        responses = list(c.execute("SELECT response, count FROM interaction_responses ORDER BY response"))
        c.execute("DELETE FROM session_interactions WHERE idx = 1")
        after = list(c.execute("SELECT attempts, correct, incorrect, latency_count FROM interaction_stats"))
        return [stats, responses, after, list(c.execute("SELECT response FROM interaction_responses"))]

    assert same(both, fn) == [
        [("p", "q1", "choice", None, 3, 2, 1, 0, 0, 0, 0, 6.0, 2)],
        [("x", 2), ("y", 1)],
        [(2, 2, 0, 2)],
        [("x",)],
    ]


def test_a_failed_write_is_rolled_back(both: Both) -> None:
    def fn(c) -> None:
        c.execute("INSERT INTO learner_state (learner_id, kind, data, updated_at) VALUES ('l', 'k', 'x', 0)")
        raise RuntimeError("half-way")

    for db in (both.lite, both.pg):
        with pytest.raises(RuntimeError):
            db.write_sync(fn)
        assert db.read_sync(lambda c: list(c.execute("SELECT count(*) FROM learner_state"))) == [(0,)]


def test_nested_writes_and_reads_join_the_outer_transaction(both: Both) -> None:
    def outer(db):
        def fn(c) -> list[Any]:
            c.execute("INSERT INTO learner_state (learner_id, kind, data, updated_at) VALUES ('l', 'k', 'x', 0)")
            inner = db.write_sync(lambda c2: c2.execute("SELECT count(*) FROM learner_state").fetchone())
            return [inner, db.read_sync(lambda c3: c3.execute("SELECT data FROM learner_state").fetchall())]

        return db.write_sync(fn)

    assert outer(both.lite) == outer(both.pg) == [(1,), [("x",)]]


def test_like_ignores_ascii_case_and_integers_stand_as_conditions(both: Both) -> None:
    def fn(c) -> list[tuple]:
        c.executemany(
            "INSERT INTO packages (id, title, latest_version, active_version, active_pinned, created_at, updated_at) "
            "VALUES (?, ?, 1, 1, ?, 0, 0)",
            [("p1", "Ada Lovelace", 1), ("p2", "ÄDA", 0), ("p3", "grace", 0)],
        )
        like = list(c.execute("SELECT id FROM packages WHERE title LIKE ? ESCAPE '\\' ORDER BY id", ("%ada%",)))
        c.execute("UPDATE packages SET active_version = CASE WHEN active_pinned THEN active_version ELSE 2 END")
        pinned = list(c.execute("SELECT id, active_version FROM packages WHERE NOT active_pinned ORDER BY id"))
        return [*like, *pinned]

    assert same(both, fn) == [("p1",), ("p2", 2), ("p3", 2)]  # "ÄDA": SQLite folds ASCII letters only


def test_sums_of_conditions_cross_join_on_and_unnamed_subqueries(both: Both) -> None:
    def fn(c) -> list[tuple]:
        c.executemany(
            "INSERT INTO sessions (id, package_id, package_version, learner_id, status, created_at, updated_at, "
            "expires_at) VALUES (?, 'p', 1, ?, ?, 0, 0, 0)",
            [("s1", "a", "passed"), ("s2", "b", "failed"), ("s3", "a", "incomplete")],
        )
        c.execute("INSERT INTO session_completions (session_id, package_id, completed_at) VALUES ('s1', 'p', 5)")
        sums = c.execute(
            "SELECT count(*), sum(status IN ('passed', 'failed')), total(status = 'passed') FROM sessions"
        ).fetchall()
        joined = c.execute(
            "SELECT s.id, k.completed_at FROM session_completions k CROSS JOIN sessions s ON s.id = k.session_id"
        ).fetchall()
        sub = c.execute("SELECT count(*) FROM (SELECT learner_id FROM sessions GROUP BY learner_id)").fetchall()
        return [*sums, *joined, *sub]

    assert same(both, fn) == [(3, 2, 1.0), ("s1", 5.0), (2,)]


def test_a_new_tenant_has_its_seed_rows_and_the_usage_triggers_count(both: Both) -> None:
    def fn(c) -> list[tuple]:
        start = c.execute("SELECT * FROM xapi_usage").fetchall()
        c.execute(
            "INSERT INTO xapi_attachments (sha2, content_type, length, content) VALUES ('h', 't', 5, ?)", (b"12345",)
        )
        c.execute(
            "INSERT INTO xapi_documents (kind, activity_id, agent_ifi, registration, document_id, content_type, "
            "content, etag, updated) VALUES ('state', 'a', '', '', 'd', 'text/plain', ?, 'e', 0)",
            (b"abc",),
        )
        c.execute("UPDATE xapi_documents SET content = ? WHERE document_id = 'd'", (b"abcdefg",))
        middle = c.execute("SELECT * FROM xapi_usage").fetchall()
        c.execute("DELETE FROM xapi_documents")
        return [*start, *middle, *c.execute("SELECT * FROM xapi_usage").fetchall()]

    assert same(both, fn) == [(1, 0, 0), (1, 5, 7), (1, 5, 0)]


def test_conditions_and_simple_case_values() -> None:
    assert _sql("SELECT CASE WHEN 1 THEN 2 END, CASE enabled WHEN 1 THEN 'on' END FROM webhooks WHERE enabled") == (
        "SELECT CASE WHEN true THEN 2 END, CASE enabled WHEN 1 THEN 'on' END FROM webhooks WHERE (enabled <> 0)"
    )
