"""The LRS writer thread over the PostgreSQL store (appliance.storage.postgres): batches grouped and
stored, usage counted, and none of SQLite's WAL machinery asked of a store that has none."""

from __future__ import annotations

import asyncio

from appliance.services.lrs import bulk
from appliance.services.lrs import statements as st
from appliance.storage.postgres.adapter import PgStore
from tests.storage.postgres import conftest as postgres

pg_schema = postgres.pg_schema  # the PostgreSQL tests' fixtures, for this module too
pg_store = postgres.pg_store

AUTHORITY = {"objectType": "Agent", "account": {"homePage": "urn:test", "name": "lrs_test"}}


def statement(n: int) -> dict:
    return {
        "actor": {"objectType": "Agent", "mbox": f"mailto:learner{n}@example.com"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
        "object": {"objectType": "Activity", "id": "http://example.com/a", "definition": {"name": {"en": "A"}}},
    }


def test_batches_written_by_the_lrs_writer_on_postgres(pg_store: PgStore) -> None:
    postgres.add_tenant(pg_store, "ten_lrswriter")
    db = pg_store.tenant_db("ten_lrswriter")

    async def main() -> list[list[str]]:
        writer = bulk.writer_for(db, st.run_queued)
        batches = [
            st.prepare_batch(
                [statement(10 * b + n) for n in range(5)],
                stored=1_800_000_000.0 + b,
                authority=AUTHORITY,
                credential_id=None,
                version="1.0.3",
            )
            for b in range(6)
        ]
        return await asyncio.gather(*(writer.submit(b) for b in batches))

    results = asyncio.run(main())
    assert [len(ids) for ids in results] == [5] * 6
    count, used = db.read_sync(
        lambda c: (
            c.execute("SELECT count(*) FROM xapi_statements").fetchall()[0][0],
            c.execute("SELECT statement_bytes FROM xapi_usage").fetchall()[0][0],
        )
    )
    assert count == 30 and used > 30 * 100


def test_key_rows_go_into_the_key_index_on_postgres_and_copied_staged_rows_are_read(pg_store: PgStore) -> None:
    """PostgreSQL's writer puts key rows into the key index (no staging, no merge); staged rows that a
    migration from SQLite copied are still answered by the filters."""
    from appliance.services.lrs import statement_keys
    from appliance.services.lrs import statement_queries as sq

    postgres.add_tenant(pg_store, "ten_lrskeys")
    db = pg_store.tenant_db("ten_lrskeys")
    batch = st.prepare_batch(
        [statement(n) for n in range(3)],
        stored=1_800_000_000.0,
        authority=AUTHORITY,
        credential_id=None,
        version="1.0.3",
    )
    db.write_sync(lambda c: st.write_batch(c, batch))
    indexed, staged = db.read_sync(
        lambda c: c.execute(
            "SELECT (SELECT count(*) FROM xapi_statement_keys), (SELECT count(*) FROM xapi_statement_keys_recent)"
        ).fetchall()[0]
    )
    assert indexed > 0 and staged == 0
    agent = statement_keys.agent_key({"mbox": "mailto:learner1@example.com"})
    key = statement_keys.filter_key("a", agent or "")
    # as a migration would leave it: learner 1's own key row in the staging table instead
    db.write_sync(
        lambda c: (
            c.execute("DELETE FROM xapi_statement_keys WHERE key = ? AND related = 0", (key,)),
            c.execute("INSERT INTO xapi_statement_keys_recent (key, related, seq) VALUES (?, 0, 2)", (key,)),
        )
    )
    found = db.read_sync(lambda c: sq.query_statements(c, sq.StatementQuery(agent=agent)).statements)
    assert [s.seq for s in found] == [2]
