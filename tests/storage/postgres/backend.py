"""The PostgreSQL side of the route and CLI suites' backend parametrisation (tests/conftest.py).

One schema and its two roles per test session (random suffix, dropped at the end); after each test its
rows are removed (`TRUNCATE … RESTART IDENTITY`, as the superuser), so every test starts from an empty
registry as it does on fresh SQLite files, without the cost of installing a schema per test.
"""

from __future__ import annotations

import secrets

import psycopg
from psycopg import sql as pgsql

from appliance.storage.postgres.schema import create_roles, install
from tests.storage.postgres.conftest import ADMIN, PgSchema

KEEP = ("_migrations",)  # what the schema's installation wrote and the appliance checks at start


class Backend:
    """The session's schema, the URL the appliance connects with, and the reset between tests."""

    def __init__(self) -> None:
        try:
            self.admin = psycopg.connect(ADMIN, autocommit=True)
        except psycopg.OperationalError as exc:
            raise RuntimeError(f"the [postgresql] tests need the server at 127.0.0.1:5432 ({exc})") from exc
        suffix = secrets.token_hex(4)
        self.schema = PgSchema(f"t_backend_{suffix}", f"t_backend_owner_{suffix}", f"t_backend_app_{suffix}")
        create_roles(self.admin, owner=self.schema.owner, app_role=self.schema.app_role)
        install(self.admin, self.schema.schema, owner=self.schema.owner, app_role=self.schema.app_role, now=0.0)
        tables = self.admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (self.schema.schema,)
        ).fetchall()
        names = [pgsql.Identifier(self.schema.schema, t) for (t,) in tables if t not in KEEP]
        self._truncate = pgsql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(pgsql.SQL(", ").join(names))

    @property
    def url(self) -> str:
        """The `database` setting: the application role's connection (bound by row-level security)."""
        return f"postgresql://{self.schema.app_role}@127.0.0.1:5432/test?connect_timeout=3"

    def reset(self) -> None:
        """Every row a test wrote, gone."""
        self.admin.execute(self._truncate)

    def close(self) -> None:
        """Drop the schema and the roles (connections still open as the role are ended first)."""
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.schema.app_role,)
        )
        self.admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(self.schema.schema)))
        for role in (self.schema.app_role, self.schema.owner):
            self.admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        self.admin.close()
