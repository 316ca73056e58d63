"""The tenant schema's SQLite triggers in PL/pgSQL, and the seed rows a new tenant starts with.

SQLite triggers are written by hand here, one function each (the parity test in
tests/storage/postgres/test_schema.py fails when a migration adds a trigger this module lacks). They
run in the writing transaction, so the row-level security policy and the tenant setting apply inside
them as outside; each statement also names the row's tenant, to use the tenant-first keys.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.storage.postgres.catalog import Catalog

# The analytics triggers (tenant_schema.m007_analytics) in PL/pgSQL: SQLite's booleans are 0/1 integers,
# PostgreSQL's are cast; each statement stays within the row's tenant.
TRIGGERS_SQL = """
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
CREATE FUNCTION xapi_attachments_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE xapi_usage SET statement_bytes = statement_bytes + NEW.length
    WHERE tenant_id = NEW.tenant_id AND id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER xapi_attachments_bytes AFTER INSERT ON xapi_attachments
    FOR EACH ROW EXECUTE FUNCTION xapi_attachments_bytes();
CREATE FUNCTION xapi_documents_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE xapi_usage SET document_bytes = document_bytes + octet_length(NEW.content)
    WHERE tenant_id = NEW.tenant_id AND id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER xapi_documents_added AFTER INSERT ON xapi_documents
    FOR EACH ROW EXECUTE FUNCTION xapi_documents_added();
CREATE FUNCTION xapi_documents_replaced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE xapi_usage SET document_bytes = document_bytes - octet_length(OLD.content) + octet_length(NEW.content)
    WHERE tenant_id = NEW.tenant_id AND id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER xapi_documents_replaced AFTER UPDATE OF content ON xapi_documents
    FOR EACH ROW EXECUTE FUNCTION xapi_documents_replaced();
CREATE FUNCTION xapi_documents_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE xapi_usage SET document_bytes = document_bytes - octet_length(OLD.content)
    WHERE tenant_id = OLD.tenant_id AND id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER xapi_documents_deleted AFTER DELETE ON xapi_documents
    FOR EACH ROW EXECUTE FUNCTION xapi_documents_deleted();
"""
# One piece per trigger (its function and its CREATE TRIGGER), in TRIGGERS_SQL's order: a schema made from
# a prefix of the migrations (an older release's, in the upgrade tests) has only the triggers it declares.
_PIECES = [p for p in re.split(r"(?=^CREATE FUNCTION )", TRIGGERS_SQL, flags=re.M) if p.strip()]
TRIGGER_SQL = {re.match(r"CREATE FUNCTION (\w+)\(", p).group(1): p for p in _PIECES}  # type: ignore[union-attr]


def triggers_sql(tenant: Catalog) -> str:
    """The PL/pgSQL of the tenant catalog's triggers (for this release's catalog, exactly TRIGGERS_SQL)."""
    missing = set(tenant.triggers) - set(TRIGGER_SQL)
    if missing:
        raise RuntimeError(
            f"no PL/pgSQL for the SQLite trigger(s) {sorted(missing)} (appliance.storage.postgres.triggers)"
        )
    return "\n" + "".join(p for name, p in TRIGGER_SQL.items() if name in tenant.triggers)


def or_replace(sql: str) -> str:
    """The same functions and triggers as `CREATE OR REPLACE` (an upgrade redefines those that exist)."""
    return re.sub(r"^CREATE (FUNCTION|TRIGGER) ", r"CREATE OR REPLACE \1 ", sql, flags=re.M)


TRIGGERS = (
    "session_interactions_added",
    "session_interactions_removed",
    "xapi_attachments_bytes",
    "xapi_documents_added",
    "xapi_documents_deleted",
    "xapi_documents_replaced",
)
SEED_TRIGGER = "tenants_seed_rows"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return repr(int(value) if isinstance(value, bool) else value)
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    return "'" + str(value).replace("'", "''") + "'"


def seed_rows_trigger(tenant: Catalog) -> str:
    """A trigger on `tenants` that gives each new tenant the rows its SQLite file starts with (rows the
    migrations insert, such as the one `xapi_usage` row), inserted as that tenant."""
    inserts = [
        f"    INSERT INTO {t.name} ({', '.join(c.name for c in t.columns)}) VALUES "
        + ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in t.seed_rows)
        + ";"
        for t in tenant.tables.values()
        if t.seed_rows
    ]
    return f"""CREATE FUNCTION {SEED_TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous text := current_setting('app.tenant_id', true);
BEGIN
    PERFORM set_config('app.tenant_id', NEW.id, true);
{chr(10).join(inserts)}
    PERFORM set_config('app.tenant_id', coalesce(previous, ''), true);
    RETURN NULL;
END $$;
CREATE TRIGGER {SEED_TRIGGER} AFTER INSERT ON tenants FOR EACH ROW EXECUTE FUNCTION {SEED_TRIGGER}();
"""
