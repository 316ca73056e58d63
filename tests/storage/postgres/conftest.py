"""A fresh PostgreSQL schema with its two roles per test session, on the server at 127.0.0.1:5432.

The schema and the roles carry a random suffix and are dropped afterwards, so sessions running at the
same time (several engineers, CI) never see each other's tables. Only an unreachable server skips.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql as pgsql

from appliance.storage.postgres.adapter import PgStore
from appliance.storage.postgres.schema import create_roles, install

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


@dataclass(frozen=True)
class PgSchema:
    """Where the session's schema is and who may use it."""

    schema: str
    owner: str
    app_role: str

    @property
    def app_conninfo(self) -> str:
        return f"host=127.0.0.1 port=5432 user={self.app_role} dbname=test connect_timeout=3"


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc})")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[PgSchema]:
    """The installed schema, the owner role and the application role; dropped after the session."""
    suffix = secrets.token_hex(4)
    found = PgSchema(f"t_appliance_{suffix}", f"t_appliance_owner_{suffix}", f"t_appliance_app_{suffix}")
    admin = _admin()
    try:
        create_roles(admin, owner=found.owner, app_role=found.app_role)
        install(admin, found.schema, owner=found.owner, app_role=found.app_role, now=1_700_000_000.0)
        yield found
    finally:
        admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(found.schema)))
        for role in (found.app_role, found.owner):
            admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        admin.close()


@pytest.fixture(scope="session")
def pg_store(pg_schema: PgSchema) -> Iterator[PgStore]:
    """A store connected as the application role (the only way the services reach the tables)."""
    store = PgStore(pg_schema.app_conninfo, schema=pg_schema.schema, min_size=1, max_size=4)
    yield store
    store.close()


@pytest.fixture
def admin_conn(pg_schema: PgSchema) -> Iterator[psycopg.Connection]:
    """An administrator's connection on the session's schema (to look past RLS from outside)."""
    conn = _admin()
    conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(pg_schema.schema)))
    yield conn
    conn.close()


def add_tenant(store: PgStore, tenant_id: str, now: float = 1_700_000_000.0) -> None:
    """A registry row for `tenant_id` (every tenant row refers to it)."""
    store.registry.write_sync(
        lambda c: c.execute(
            "INSERT OR IGNORE INTO tenants (id, name, plan, created_at, updated_at) VALUES (?, ?, 'free', ?, ?)",
            (tenant_id, f"Tenant {tenant_id}", now, now),
        )
    )
