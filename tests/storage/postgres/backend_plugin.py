"""An opt-in pytest plugin that runs any suite with the appliance's databases on PostgreSQL.

Until `Instance` has a database setting (issue #18), this plugin stands in for it: every `Instance`
keeps its data directory (files, secrets) but opens its registry and tenant databases on a PostgreSQL
schema through the adapter, one fresh schema per data directory (so each test's registry starts
empty, as its SQLite files do), connected as an application role bound by row-level security. The
schemas are dropped after each test, the roles at the end of the run. For example:

    .venv/bin/python -m pytest -p tests.storage.postgres.backend_plugin tests/api/test_sessions.py -q

It is a tool for wiring the services onto the backend (it shows which ones still need work), not part
of the default suite.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from appliance import instance as instance_module
from appliance.storage.postgres.adapter import PgDatabase, PgStore
from appliance.storage.postgres.schema import create_roles, install

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
_SUFFIX = secrets.token_hex(4)
OWNER, APP_ROLE = f"t_plugin_owner_{_SUFFIX}", f"t_plugin_app_{_SUFFIX}"
_stores: dict[str, PgStore] = {}
_lock = threading.Lock()
_admin: psycopg.Connection | None = None
_original_init = instance_module.Instance.__init__


def _store(data_dir: Path) -> PgStore:
    """The schema of one data directory, installed on first use."""
    assert _admin is not None
    with _lock:
        store = _stores.get(str(data_dir))
        if store is None:
            schema = f"t_plugin_{_SUFFIX}_{len(_stores)}"
            install(_admin, schema, owner=OWNER, app_role=APP_ROLE, now=0.0)
            conninfo = f"host=127.0.0.1 port=5432 user={APP_ROLE} dbname=test"
            store = _stores[str(data_dir)] = PgStore(conninfo, schema=schema, min_size=1, max_size=4)
        return store


def _init(self: instance_module.Instance, config: Any, clock: Any = None) -> None:
    _original_init(self, config, clock)
    self.registry.close()
    self._pg_store = _store(Path(config.data_dir))  # type: ignore[attr-defined]
    self.registry = self._pg_store.registry  # type: ignore[attr-defined]


def _tenant_db(self: instance_module.Instance, tenant_id: str) -> PgDatabase:
    # Services ask whether the tenant's SQLite file exists to mean "the tenant was not deleted"; until
    # they ask the registry, an empty marker answers for a tenant whose database was opened.
    marker = self.data.tenant_db(tenant_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return self._pg_store.tenant_db(tenant_id)  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    global _admin
    try:
        _admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        raise pytest.UsageError(f"the PostgreSQL backend plugin needs the server at 127.0.0.1:5432 ({exc})") from exc
    create_roles(_admin, owner=OWNER, app_role=APP_ROLE)
    instance_module.Instance.__init__ = _init  # type: ignore[method-assign]
    instance_module.Instance.tenant_db = _tenant_db  # type: ignore[method-assign,assignment]


@pytest.fixture(autouse=True)
def _drop_schemas() -> Iterator[None]:
    yield
    with _lock:
        for store in _stores.values():
            store.close()
            assert _admin is not None
            _admin.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(store.schema)))
        _stores.clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    instance_module.Instance.__init__ = _original_init  # type: ignore[method-assign]
    if _admin is not None:
        for role in (APP_ROLE, OWNER):
            _admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
        _admin.close()
