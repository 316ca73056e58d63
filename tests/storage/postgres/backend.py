"""The PostgreSQL side of the route and CLI suites' backend parametrisation (tests/conftest.py).

One schema and its two roles per test session (random suffix, dropped at the end); after each test its
rows are removed (as the superuser, `reset`), so every test starts from an empty registry as it does on
fresh SQLite files, without the cost of installing a schema per test.
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
        self._tables = [t for (t,) in tables if t not in KEEP]
        # One query names the tables holding rows (most tests touch a few of the ~50).
        self._probe = pgsql.SQL(" UNION ALL ").join(
            pgsql.SQL("SELECT {} FROM (SELECT 1 FROM {} LIMIT 1) AS probe").format(
                pgsql.Literal(t), pgsql.Identifier(self.schema.schema, t)
            )
            for t in self._tables
        )
        self._sequences = dict(
            self.admin.execute(
                "SELECT table_name, pg_get_serial_sequence(quote_ident(table_schema) || '.' || quote_ident(table_name), "
                "column_name) FROM information_schema.columns WHERE table_schema = %s AND is_identity = 'YES'",
                (self.schema.schema,),
            ).fetchall()
        )

    @property
    def url(self) -> str:
        """The `database` setting: the application role's connection (bound by row-level security)."""
        return f"postgresql://{self.schema.app_role}@127.0.0.1:5432/test?connect_timeout=3"

    def reset(self) -> None:
        """Every row a test wrote, gone, and the identity counters back at 1. DELETE of the tables that
        hold rows, foreign-key triggers off for it (`session_replication_role`, superuser), costs about
        6 ms where a TRUNCATE of every table costs 65."""
        found = [name for (name,) in self.admin.execute(self._probe).fetchall()]
        if not found:
            return
        with self.admin.transaction():
            self.admin.execute("SET LOCAL session_replication_role = replica")
            for name in found:
                self.admin.execute(pgsql.SQL("DELETE FROM {}").format(pgsql.Identifier(self.schema.schema, name)))
                if name in self._sequences:
                    self.admin.execute("SELECT setval(%s, 1, false)", (self._sequences[name],))

    def close(self) -> None:
        """Drop the schema and the roles (connections still open as the role are ended first)."""
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.schema.app_role,)
        )
        self.admin.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(pgsql.Identifier(self.schema.schema)))
        for role in (self.schema.app_role, self.schema.owner):
            self.admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        self.admin.close()
