"""The PostgreSQL schema, generated from the SQLite migrations' catalog, with row-level security.

Registry tables are created as SQLite declares them. Every tenant table gains a last column
`tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id')` (last, so the services' positional
INSERTs still line up), its primary key, unique constraints and indexes start with tenant_id, its foreign
keys carry tenant_id (a row can only refer to its own tenant's rows), and a policy admits only the rows
of the tenant named by the transaction's `app.tenant_id` setting, for reading and for writing. RLS is
ENABLED and FORCED; the tables belong to an owner role and the application connects as another role
that is neither their owner nor BYPASSRLS, so nothing the application sends can see past the policy.

Text columns are `COLLATE "C"`: byte order, as SQLite's BINARY collation sorts (pagination cursors
compare ids the same way on both backends). Secondary indexes put NULLs first, as SQLite sorts them,
so the translated `ORDER BY … NULLS FIRST` still walks them.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql as pgsql

from appliance.storage.postgres.catalog import PG_TYPES, Catalog, Table, registry_catalog, tenant_catalog
from appliance.storage.postgres.translate import TENANT_COLUMN

SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
TENANT_DEFAULT = f"current_setting('{SETTING}')"  # no tenant set: an INSERT fails rather than guess
POLICY_TEST = f"{TENANT_COLUMN} = current_setting('{SETTING}', true)"  # no tenant set: no rows

# The analytics triggers (tenant_schema.m007_analytics) in PL/pgSQL: SQLite's booleans are 0/1 integers,
# PostgreSQL's are cast; each statement stays within the row's tenant.
_TRIGGERS = """
CREATE FUNCTION session_interactions_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO interaction_stats (tenant_id, package_id, interaction_id, type, description, attempts, correct,
        incorrect, unanticipated, neutral, numeric, no_result, latency_total, latency_count)
    VALUES (NEW.tenant_id, NEW.package_id, NEW.interaction_id, NEW.type, NEW.description, 1,
        (NEW.outcome = 'correct')::int, (NEW.outcome = 'incorrect')::int, (NEW.outcome = 'unanticipated')::int,
        (NEW.outcome = 'neutral')::int, (NEW.outcome = 'numeric')::int, (NEW.outcome = 'none')::int,
        coalesce(NEW.latency_seconds, 0), (NEW.latency_seconds IS NOT NULL)::int)
    ON CONFLICT (tenant_id, package_id, interaction_id) DO UPDATE SET
        type = coalesce(EXCLUDED.type, interaction_stats.type),
        description = coalesce(EXCLUDED.description, interaction_stats.description),
        attempts = interaction_stats.attempts + 1, correct = interaction_stats.correct + EXCLUDED.correct,
        incorrect = interaction_stats.incorrect + EXCLUDED.incorrect,
        unanticipated = interaction_stats.unanticipated + EXCLUDED.unanticipated,
        neutral = interaction_stats.neutral + EXCLUDED.neutral, numeric = interaction_stats.numeric + EXCLUDED.numeric,
        no_result = interaction_stats.no_result + EXCLUDED.no_result,
        latency_total = interaction_stats.latency_total + EXCLUDED.latency_total,
        latency_count = interaction_stats.latency_count + EXCLUDED.latency_count;
    IF NEW.response IS NOT NULL THEN
        INSERT INTO interaction_responses (tenant_id, package_id, interaction_id, response, count)
        VALUES (NEW.tenant_id, NEW.package_id, NEW.interaction_id, NEW.response, 1)
        ON CONFLICT (tenant_id, package_id, interaction_id, response)
        DO UPDATE SET count = interaction_responses.count + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER session_interactions_added AFTER INSERT ON session_interactions
    FOR EACH ROW EXECUTE FUNCTION session_interactions_added();
CREATE FUNCTION session_interactions_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE interaction_stats SET attempts = attempts - 1, correct = correct - (OLD.outcome = 'correct')::int,
        incorrect = incorrect - (OLD.outcome = 'incorrect')::int,
        unanticipated = unanticipated - (OLD.outcome = 'unanticipated')::int,
        neutral = neutral - (OLD.outcome = 'neutral')::int, numeric = numeric - (OLD.outcome = 'numeric')::int,
        no_result = no_result - (OLD.outcome = 'none')::int,
        latency_total = latency_total - coalesce(OLD.latency_seconds, 0),
        latency_count = latency_count - (OLD.latency_seconds IS NOT NULL)::int
    WHERE tenant_id = OLD.tenant_id AND package_id = OLD.package_id AND interaction_id = OLD.interaction_id;
    DELETE FROM interaction_stats WHERE tenant_id = OLD.tenant_id AND package_id = OLD.package_id
        AND interaction_id = OLD.interaction_id AND attempts <= 0;
    UPDATE interaction_responses SET count = count - 1 WHERE tenant_id = OLD.tenant_id
        AND package_id = OLD.package_id AND interaction_id = OLD.interaction_id AND response = OLD.response;
    DELETE FROM interaction_responses WHERE tenant_id = OLD.tenant_id AND package_id = OLD.package_id
        AND interaction_id = OLD.interaction_id AND response = OLD.response AND count <= 0;
    RETURN NULL;
END $$;
CREATE TRIGGER session_interactions_removed AFTER DELETE ON session_interactions
    FOR EACH ROW EXECUTE FUNCTION session_interactions_removed();
"""
TRIGGERS = ("session_interactions_added", "session_interactions_removed")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns_sql(table: Table, tenant: bool) -> list[str]:
    parts = []
    for c in table.columns:
        pg_type = PG_TYPES[c.type] + (' COLLATE "C"' if c.type == "TEXT" else "")
        text = f"{_q(c.name)} {pg_type}"
        if table.rowid_alias and c.name == table.primary_key[0]:
            text += " GENERATED BY DEFAULT AS IDENTITY"  # SQLite numbers rows whose key is left out
        if c.notnull:
            text += " NOT NULL"
        if c.default is not None:
            text += f" DEFAULT {c.default}"
        if c.check:
            text += f" CHECK ({c.check})"
        parts.append(text)
    if tenant:
        parts.append(
            f'{TENANT_COLUMN} text COLLATE "C" NOT NULL DEFAULT {TENANT_DEFAULT} REFERENCES tenants(id) ON DELETE CASCADE'
        )
    return parts


def table_ddl(table: Table, tenant: bool) -> list[str]:
    """CREATE TABLE, its indexes and (tenant tables) RLS with the policy, as statements."""
    lead = [TENANT_COLUMN] if tenant else []
    keys = lambda cols: ", ".join(_q(c) for c in [*lead, *cols])  # noqa: E731
    parts = _columns_sql(table, tenant)
    parts.append(f"PRIMARY KEY ({keys(table.primary_key)})")
    parts.extend(f"UNIQUE ({keys(u)})" for u in table.uniques)
    for fk in table.foreign_keys:
        on_delete = "" if fk.on_delete == "NO ACTION" else f" ON DELETE {fk.on_delete}"
        parts.append(
            f"FOREIGN KEY ({keys(fk.columns)}) REFERENCES {_q(fk.ref_table)} ({keys(fk.ref_columns)}){on_delete}"
        )
    statements = [f"CREATE TABLE {_q(table.name)} (\n    " + ",\n    ".join(parts) + "\n)"]
    for ix in table.indexes:
        cols = [*(_q(c) for c in lead)] + [
            f"{_q(c)} DESC NULLS LAST" if desc else f"{_q(c)} NULLS FIRST" for c, desc in ix.columns
        ]
        where = f" WHERE {ix.where}" if ix.where else ""
        unique = "UNIQUE " if ix.unique else ""
        statements.append(f"CREATE {unique}INDEX {_q(ix.name)} ON {_q(table.name)} ({', '.join(cols)}){where}")
    if tenant:
        statements += [
            f"ALTER TABLE {_q(table.name)} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {_q(table.name)} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY {POLICY} ON {_q(table.name)} USING ({POLICY_TEST}) WITH CHECK ({POLICY_TEST})",
        ]
    return statements


def _in_dependency_order(catalog: Catalog) -> list[Table]:
    """The tables with each one after those its foreign keys refer to (SQLite does not mind; PostgreSQL does)."""
    done: dict[str, Table] = {}

    def visit(table: Table) -> None:
        if table.name in done:
            return
        for fk in table.foreign_keys:
            if fk.ref_table != table.name and fk.ref_table in catalog.tables:
                visit(catalog.tables[fk.ref_table])
        done[table.name] = table

    for table in catalog.tables.values():
        visit(table)
    return list(done.values())


def schema_ddl(registry: Catalog | None = None, tenant: Catalog | None = None) -> list[str]:
    """Every statement of the PostgreSQL schema: the registry's tables, then the tenants' with RLS."""
    registry, tenant = registry or registry_catalog(), tenant or tenant_catalog()
    statements = [s for t in _in_dependency_order(registry) for s in table_ddl(t, False)]
    statements += [s for t in _in_dependency_order(tenant) for s in table_ddl(t, True)]
    statements.append(_TRIGGERS)
    statements.append(
        "CREATE TABLE _migrations (migration_set text NOT NULL, name text NOT NULL, applied_at double precision "
        "NOT NULL, PRIMARY KEY (migration_set, name))"
    )
    return statements


def fingerprint(statements: list[str]) -> str:
    """A digest of the DDL, recorded with the schema: a release whose schema differs refuses to start on it."""
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]


def install(conn: psycopg.Connection, schema: str, *, owner: str, app_role: str, now: float) -> None:
    """Create `schema` (empty) with every table, owned by `owner`; grant `app_role` what the services need.

    `conn` is an administrator's (it creates the schema and sets the owner); `owner` and `app_role`
    exist already (`create_roles`). The migrations the schema holds are recorded in `_migrations`, with
    the fingerprint of the DDL, so a later release can tell which schema it is looking at.
    """
    from appliance.db.registry_schema import registry_migrations
    from appliance.db.tenant_schema import tenant_migrations

    statements = schema_ddl()
    with conn.transaction():
        conn.execute(
            pgsql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(pgsql.Identifier(schema), pgsql.Identifier(owner))
        )
        conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(owner)))
        conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(pgsql.Identifier(schema)))
        for statement in statements:
            conn.execute(statement.encode())  # bytes: no %-placeholders are looked for
        for migrations in (registry_migrations, tenant_migrations):
            for name, _ in migrations.steps:
                conn.execute("INSERT INTO _migrations VALUES (%s, %s, %s)", (migrations.name, name, now))
        conn.execute("INSERT INTO _migrations VALUES ('postgres', %s, %s)", (fingerprint(statements), now))
        app = pgsql.Identifier(app_role)
        conn.execute(pgsql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(pgsql.Identifier(schema), app))
        conn.execute(
            pgsql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                pgsql.Identifier(schema), app
            )
        )
        conn.execute(pgsql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(pgsql.Identifier(schema), app))


def create_roles(conn: psycopg.Connection, *, owner: str, app_role: str) -> None:
    """The owner role (no login: it only owns the tables) and the application's login role, which is
    neither superuser nor BYPASSRLS nor a member of the owner, so the policies bind it."""
    with conn.transaction():
        conn.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(owner)))
        conn.execute(
            pgsql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT").format(
                pgsql.Identifier(app_role)
            )
        )
