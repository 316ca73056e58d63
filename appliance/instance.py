"""The running appliance's shared state: one object that the server, the CLI and the jobs all hold.

It owns the registry database and the cache of open tenant databases. A tenant's database is opened
only through `tenant_db(tenant_id)` with an id that authentication resolved, never from a URL.
"""

from __future__ import annotations

import threading
from pathlib import Path

from appliance.clock import Clock, SystemClock
from appliance.config import DURABILITY_LEVELS, Config
from appliance.datadir import DataDir
from appliance.db.database import Database
from appliance.db.registry_schema import registry_migrations
from appliance.db.tenant_schema import tenant_migrations

DURABILITY = {"normal": "NORMAL", "full": "FULL"}  # the `durability` setting: tenant files' synchronous level
assert set(DURABILITY) == set(DURABILITY_LEVELS)


def tenant_synchronous(durability: str) -> str:
    """The SQLite synchronous level of tenant databases for the `durability` setting (docs/service.md)."""
    try:
        return DURABILITY[durability.lower()]
    except KeyError:
        raise ValueError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}") from None


class Instance:
    """Config, clock, data directory and databases of one appliance."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.data = DataDir(Path(config.data_dir))
        self.data.ensure()
        # The registry (tenants, keys, jobs) is small and rarely written: every commit survives power loss.
        self.registry = Database(self.data.registry_db, registry_migrations, self.clock.now(), synchronous="FULL")
        self._tenant_synchronous = tenant_synchronous(config.durability)
        self._tenant_dbs: dict[str, Database] = {}
        self._lock = threading.Lock()

    def tenant_db(self, tenant_id: str) -> Database:
        """The tenant's database, opened (and migrated) on first use and then cached."""
        with self._lock:
            db = self._tenant_dbs.get(tenant_id)
            if db is None:
                path = self.data.tenant_db(tenant_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                db = Database(path, tenant_migrations, self.clock.now(), synchronous=self._tenant_synchronous)
                self._tenant_dbs[tenant_id] = db
            return db

    def forget_tenant(self, tenant_id: str) -> None:
        """Close and drop a cached tenant database (before the tenant's files are deleted)."""
        with self._lock:
            db = self._tenant_dbs.pop(tenant_id, None)
        if db is not None:
            db.close()

    def open_tenant_ids(self) -> list[str]:
        """Tenants whose databases are open in this process."""
        with self._lock:
            return list(self._tenant_dbs)

    def close(self) -> None:
        """Close every database."""
        with self._lock:
            dbs = list(self._tenant_dbs.values())
            self._tenant_dbs.clear()
        for db in dbs:
            db.close()
        self.registry.close()
