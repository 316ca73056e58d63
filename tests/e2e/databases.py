"""Where the end-to-end servers keep their rows: SQLite files in each data directory, or PostgreSQL.

The end-to-end and ADL conformance suites run once per backend (`[sqlite]`, `[postgresql]`): their
module-scoped `databases` fixture (tests/conftest.py) is a `Databases`, and every `ServerProcess` given it
serves its data directory on that backend. On PostgreSQL each data directory gets a schema of its own
(installed on first use, about half a second; dropped with the module), so two servers on two data
directories see two databases, as on SQLite files, and a restart or a second worker on the same data
directory sees the same one. The server and every CLI process are pointed at it through
`SCORM_APPLIANCE_DATABASE` and `SCORM_APPLIANCE_DATABASE_SCHEMA`, as an operator's service unit would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.config import ENV_PREFIX, Config
from appliance.storage.datadir import DataDir

if TYPE_CHECKING:
    from tests.storage.postgres.backend import Backend


class Databases:
    """The backend of a module's servers, and on PostgreSQL the schema of each data directory."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._schemas: dict[Path, Backend] = {}

    @property
    def postgresql(self) -> bool:
        return self.backend == "postgresql"

    def _schema(self, data_dir: Path) -> Backend:
        from tests.storage.postgres.backend import Backend

        key = data_dir.resolve()
        if key not in self._schemas:
            self._schemas[key] = Backend()
        return self._schemas[key]

    def env(self, data_dir: Path) -> dict[str, str]:
        """The environment that points a server or a CLI process on `data_dir` at its database."""
        if not self.postgresql:
            return {}
        found = self._schema(data_dir)
        return {ENV_PREFIX + "DATABASE": found.url, ENV_PREFIX + "DATABASE_SCHEMA": found.schema.schema}

    def config(self, data_dir: Path, **settings: Any) -> Config:
        """A Config on `data_dir` and its database, for tests that open an Instance beside the server."""
        found = Config(data_dir=data_dir, **settings)
        if not self.postgresql:
            return found
        schema = self._schema(data_dir)
        return found.with_overrides({"database": schema.url, "database_schema": schema.schema.schema})

    def rows(
        self, data_dir: Path, sql: str, params: tuple[Any, ...] = (), *, tenant: str | None = None
    ) -> list[dict[str, Any]]:
        """One query (SQLite's dialect, as the services write it) on the registry or on `tenant`'s rows of
        `data_dir`'s database: on SQLite a read-only connection to the file (WAL lets it read beside the
        server's writer), on PostgreSQL the appliance's own adapter as the application role."""
        if not self.postgresql:
            data = DataDir(data_dir)
            path = data.registry_db if tenant is None else data.tenant_db(tenant)
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            conn.row_factory = sqlite3.Row
            try:
                return [dict(row) for row in conn.execute(sql, params)]
            finally:
                conn.close()
        from appliance.storage.postgres.adapter import PgStore

        schema = self._schema(data_dir)
        store = PgStore(schema.url, schema=schema.schema.schema, min_size=1, max_size=1)
        try:
            db = store.registry if tenant is None else store.tenant_db(tenant)

            def read(conn: Any) -> list[dict[str, Any]]:
                cursor = conn.execute(sql, params)
                found = cursor.fetchall()
                names = [name for name, _ in cursor.get_description()] if found else []
                return [dict(zip(names, row, strict=True)) for row in found]

            return db.read_sync(read)
        finally:
            store.close()

    def close(self) -> None:
        """Drop every schema made (their servers are gone by now; connections left are ended)."""
        schemas, self._schemas = list(self._schemas.values()), {}
        for schema in schemas:
            schema.close()


SQLITE = Databases("sqlite")  # for servers made without a `databases` fixture (the other conformance suites)
