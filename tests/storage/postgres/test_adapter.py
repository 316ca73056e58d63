"""The Database-shaped object on PostgreSQL: one writer per tenant across connections, snapshots for
reads, and the async forms."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from appliance.storage.postgres.adapter import PgStore, SchemaMismatch
from appliance.storage.postgres.schema import fingerprint, schema_ddl
from tests.storage.postgres.conftest import PgSchema, add_tenant

THREADS, ROUNDS = 4, 15


def _bump(c) -> None:
    """A read-then-write (what numbering statements or a session's compare-and-swap does)."""
    found = c.execute("SELECT api_requests FROM usage_periods WHERE period_start = 0").fetchone()
    if found is None:
        c.execute("INSERT INTO usage_periods (period_start, api_requests) VALUES (0, 1)")
    else:
        c.execute("UPDATE usage_periods SET api_requests = ? WHERE period_start = 0", (found[0] + 1,))


def test_writes_to_one_tenant_are_serialised_across_connections(pg_store: PgStore) -> None:
    add_tenant(pg_store, "ten_serial")
    db = pg_store.tenant_db("ten_serial")  # the pool has four connections: the threads write at once

    def worker() -> None:
        for _ in range(ROUNDS):
            db.write_sync(_bump)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert db.read_sync(lambda c: c.execute("SELECT api_requests FROM usage_periods").fetchall()) == [
        (THREADS * ROUNDS,)  # no lost update: each read-then-write saw the one before it
    ]


def test_a_read_is_one_snapshot(pg_store: PgStore) -> None:
    add_tenant(pg_store, "ten_snapshot")
    db = pg_store.tenant_db("ten_snapshot")
    db.write_sync(_bump)
    seen = []

    def read(c) -> None:
        seen.append(c.execute("SELECT api_requests FROM usage_periods").fetchone())
        other = threading.Thread(target=lambda: db.write_sync(_bump))  # commits while the read is open
        other.start()
        other.join(10)
        seen.append(c.execute("SELECT api_requests FROM usage_periods").fetchone())

    db.read_sync(read)
    assert seen == [(1,), (1,)]
    assert db.read_sync(lambda c: c.execute("SELECT api_requests FROM usage_periods").fetchone()) == (2,)


def test_async_forms(pg_store: PgStore) -> None:
    add_tenant(pg_store, "ten_async")
    db = pg_store.tenant_db("ten_async")

    async def main() -> tuple:
        await asyncio.gather(*(db.write(_bump) for _ in range(5)))
        return await db.read(lambda c: c.execute("SELECT api_requests FROM usage_periods").fetchone())

    assert asyncio.run(main()) == (5,)


def test_a_schema_of_another_release_is_refused(pg_schema: PgSchema, admin_conn: psycopg.Connection) -> None:
    admin_conn.execute("UPDATE _migrations SET name = 'other' WHERE migration_set = 'postgres' RETURNING name")
    try:
        with pytest.raises(SchemaMismatch, match="made by another release"):
            PgStore(pg_schema.app_conninfo, schema=pg_schema.schema)
    finally:
        admin_conn.execute(
            "UPDATE _migrations SET name = %s WHERE migration_set = 'postgres'", (fingerprint(schema_ddl()),)
        )
    PgStore(pg_schema.app_conninfo, schema=pg_schema.schema).close()  # this release's schema: accepted
