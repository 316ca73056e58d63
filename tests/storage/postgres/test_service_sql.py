"""Every constant SQL statement in the services, translated and prepared on the real PostgreSQL schema.

PREPARE parses, resolves names and types and plans the statement without running it, so a statement
that names a column PostgreSQL lacks, compares text with a number, or uses syntax PostgreSQL does not
have fails here, for all of them at once. Statements built at run time (f-strings) are covered by the
scenarios in test_services.py and test_translate.py, not here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import psycopg
import pytest

from appliance.storage.postgres.adapter import PgStore
from appliance.storage.postgres.catalog import Catalog, registry_catalog, tenant_catalog
from appliance.storage.postgres.translate import translate

PACKAGE = Path(__file__).resolve().parents[3] / "appliance"
# Modules that speak one backend's own SQL, not the services' SQLite dialect that the translation turns
# into PostgreSQL's; tests/storage/postgres/test_migrate.py runs both against the real databases.
NATIVE = {
    "services/operations/migration_source.py": "reads the embedded SQLite files as SQLite (the move's source)",
    "services/operations/migration_target.py": "writes PostgreSQL through psycopg directly (the move's target)",
}
SQL_HEAD = re.compile(r"^\s*(SELECT|INSERT (OR \w+ )?INTO|UPDATE \w+ SET|DELETE FROM|REPLACE INTO|WITH)\s")


def _statements() -> list[tuple[str, str]]:
    """(where, sql) of each string constant that is a whole SQL statement, outside the storage code."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] == "storage" or "/".join(parts) in NATIVE:
            continue
        tree = ast.parse(path.read_text())
        skip = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
        skip |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if SQL_HEAD.match(node.value) and "{" not in node.value:
                found.append((f"{'/'.join(parts)}:{node.lineno}", node.value))
    return found


STATEMENTS = _statements()


def _catalog(sql: str) -> Catalog:
    words = set(re.findall(r"\w+", sql.lower()))
    if words & set(tenant_catalog().tables):
        return tenant_catalog()
    return registry_catalog()


def _numbered(sql: str) -> str:
    """psycopg's placeholders as PREPARE's $1, $2…"""
    counter = iter(range(1, 1000))
    return re.sub(r"%\(\w+\)s|%s", lambda _: f"${next(counter)}", sql).replace("%%", "%")


def test_the_services_have_sql_to_check() -> None:
    assert len(STATEMENTS) > 250  # the scan finds them (a broken scan would check nothing)


def test_every_constant_statement_prepares_on_postgresql(pg_store: PgStore) -> None:
    failures = []
    with pg_store.pool.connection() as raw:
        raw.execute("SELECT set_config('app.tenant_id', 'ten_prepare', false)")
        for where, sql in STATEMENTS:
            try:
                text = _numbered(translate(sql, _catalog(sql)).sql)
                raw.execute(f"PREPARE checked AS {text}".encode())
                raw.execute("DEALLOCATE checked")
            except (psycopg.Error, ValueError) as exc:
                failures.append(f"{where}: {str(exc).splitlines()[0]}")
        raw.execute("SELECT set_config('app.tenant_id', '', false)")
    if failures:
        pytest.fail(f"{len(failures)} of {len(STATEMENTS)} statements fail on PostgreSQL:\n" + "\n".join(failures))
