"""The tenant's xAPI LRS (appliance.services.lrs): statements, documents, forwarding, SCORM sessions as
statements, the bytes it holds, recent statements' staged keys (migrations m010-m013, m020, m021).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw


def m010_xapi_statements(conn: apsw.Connection) -> None:
    """The tenant's xAPI statements (appliance.services.lrs.statements), stored in arrival order (`seq`).

    `seq` orders `more` paging and `X-Experience-API-Consistent-Through`; `stored` (integer
    milliseconds, the precision the statements carry) never goes back as `seq` grows, so
    `since`/`until` become a `seq` range. Every GET filter (agent, verb,
    activity, registration) is one table of keys, `xapi_statement_keys`: a 64-bit hash of the kind
    and value (appliance.services.lrs.statement_keys.filter_key), the statement's `seq`, and `related` (0: the
    filter's plain meaning, actor/object or object activity; 1: only with related_agents or
    related_activities). Its primary key (key, related, seq) serves each filter in `seq` order with
    LIMIT: a plain filter is one range (an activity that is every statement's parent, asked for as an
    object, is not a scan of its parent rows), a related_* one two ranges merged; it is the table's
    only index, so a statement costs one insert per key. The statement's row keeps its keys
    (`keys`, msgpack pairs) for the rare update of a StatementRef's inherited keys. A statement
    referring to another by StatementRef also carries the target's keys (the specification's rule
    that such statements match what their target matches). `body` is the statement as stored
    (JSON) and `assigned` what the LRS added to it (bits: 1 version, 2 timestamp; `stored` and
    `authority` always), so a repeated id is compared with the statement as it was received.
    Attachments are kept once per hash.
    """
    conn.execute(
        """
        CREATE TABLE xapi_statements (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            stored INTEGER NOT NULL,
            voided INTEGER NOT NULL DEFAULT 0,
            ref TEXT,
            voids TEXT,
            credential_id TEXT,
            assigned INTEGER NOT NULL DEFAULT 0,
            keys BLOB NOT NULL,
            body BLOB NOT NULL
        );
        CREATE INDEX xapi_statements_stored ON xapi_statements(stored);
        CREATE INDEX xapi_statements_ref ON xapi_statements(ref) WHERE ref IS NOT NULL;
        CREATE INDEX xapi_statements_voids ON xapi_statements(voids) WHERE voids IS NOT NULL;
        CREATE TABLE xapi_statement_keys (
            key INTEGER NOT NULL,
            related INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (key, related, seq)
        ) WITHOUT ROWID;
        CREATE TABLE xapi_statement_attachments (
            seq INTEGER NOT NULL,
            sha2 TEXT NOT NULL,
            PRIMARY KEY (seq, sha2)
        ) WITHOUT ROWID;
        CREATE TABLE xapi_attachments (
            sha2 TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,
            length INTEGER NOT NULL,
            content BLOB NOT NULL
        );
        CREATE TABLE xapi_activities (
            id TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            updated REAL NOT NULL
        );
        """
    )


def m011_xapi_documents(conn: apsw.Connection) -> None:
    """The tenant's xAPI documents (appliance.services.lrs.documents): State, Activity Profile, Agent Profile.

    One table for the three kinds; the columns a kind does not use hold '' (so the primary key works:
    NULLs are never equal in SQLite). `etag` is the SHA-1 of the content, as the specification's ETags.
    """
    conn.execute(
        """
        CREATE TABLE xapi_documents (
            kind TEXT NOT NULL,
            activity_id TEXT NOT NULL,
            agent_ifi TEXT NOT NULL,
            registration TEXT NOT NULL,
            document_id TEXT NOT NULL,
            content_type TEXT NOT NULL,
            content BLOB NOT NULL,
            etag TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (kind, activity_id, agent_ifi, registration, document_id)
        ) WITHOUT ROWID;
        CREATE INDEX xapi_documents_updated ON xapi_documents(kind, activity_id, agent_ifi, updated);
        """
    )


def m012_xapi_forwarding(conn: apsw.Connection) -> None:
    """Forwarding of the tenant's statements to external LRSs (appliance.services.lrs.forwarding), and its log.

    A target's `cursor_seq` is the last `xapi_statements.seq` it is done with (forwarded, rejected by
    the target, or left out by its filters): the next batch starts after it, so delivery is ordered
    and survives restarts. `proven` says the target has accepted a statement since its endpoint,
    version or credentials were set. The log keeps the latest attempts of each target.
    """
    conn.execute(
        """
        CREATE TABLE xapi_forwarding_targets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            endpoint TEXT NOT NULL,
            username TEXT,
            password TEXT,
            version TEXT NOT NULL,
            verbs TEXT NOT NULL DEFAULT '[]',
            activity_prefixes TEXT NOT NULL DEFAULT '[]',
            enabled INTEGER NOT NULL DEFAULT 1,
            cursor_seq INTEGER NOT NULL DEFAULT 0,
            proven INTEGER NOT NULL DEFAULT 0,
            forwarded_count INTEGER NOT NULL DEFAULT 0,
            rejected_count INTEGER NOT NULL DEFAULT 0,
            filtered_count INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            lease_until REAL,
            failing_since REAL,
            last_status_code INTEGER,
            last_error TEXT,
            last_forwarded_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE xapi_forwarding_log (
            id TEXT PRIMARY KEY,
            target_id TEXT NOT NULL REFERENCES xapi_forwarding_targets(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            statement_ids TEXT NOT NULL,
            status_code INTEGER,
            error TEXT,
            duration_ms INTEGER NOT NULL,
            response_body TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX xapi_forwarding_log_target ON xapi_forwarding_log(target_id, n);
        """
    )


def m013_xapi_scorm(conn: apsw.Connection) -> None:
    """SCORM sessions as xAPI (appliance.services.lrs.scorm_statements): the outbox of statements the run-time
    transactions produce, and the tenant's switch.

    A commit, launch or Terminate that produces statements writes one `xapi_scorm_outbox` row in its own
    transaction (so they exist exactly when the change commits, and the commit path pays one small
    INSERT); a scheduler sweep moves them into `xapi_statements` in arrival order and deletes the row in
    the same transaction. No `xapi_scorm_settings` row means the instance default. `xapi_scorm_sessions`
    counts the statements each session queued, which are capped (a learner's commits must not grow the
    tenant's LRS without bound).
    """
    conn.execute(
        """
        CREATE TABLE xapi_scorm_outbox (
            seq INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            statements BLOB NOT NULL
        );
        CREATE TABLE xapi_scorm_settings (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            enabled INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE xapi_scorm_sessions (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            queued INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
    )


def m020_xapi_bytes(conn: apsw.Connection) -> None:
    """The bytes the tenant's xAPI LRS holds, for its storage usage (appliance.services.tenancy.usage.stored_bytes):
    statements (their JSON, added by the statement store per batch), attachments and documents
    (kept by triggers: documents are replaced and deleted in place). Counted from what is there."""
    conn.execute(
        """
        CREATE TABLE xapi_usage (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            statement_bytes INTEGER NOT NULL,
            document_bytes INTEGER NOT NULL
        );
        INSERT INTO xapi_usage (id, statement_bytes, document_bytes) VALUES (1,
            (SELECT coalesce(sum(octet_length(body)), 0) FROM xapi_statements)
            + (SELECT coalesce(sum(length), 0) FROM xapi_attachments),
            (SELECT coalesce(sum(octet_length(content)), 0) FROM xapi_documents));
        CREATE TRIGGER xapi_attachments_bytes AFTER INSERT ON xapi_attachments BEGIN
            UPDATE xapi_usage SET statement_bytes = statement_bytes + NEW.length WHERE id = 1;
        END;
        CREATE TRIGGER xapi_documents_added AFTER INSERT ON xapi_documents BEGIN
            UPDATE xapi_usage SET document_bytes = document_bytes + octet_length(NEW.content) WHERE id = 1;
        END;
        CREATE TRIGGER xapi_documents_replaced AFTER UPDATE OF content ON xapi_documents BEGIN
            UPDATE xapi_usage SET document_bytes = document_bytes - octet_length(OLD.content)
                + octet_length(NEW.content) WHERE id = 1;
        END;
        CREATE TRIGGER xapi_documents_deleted AFTER DELETE ON xapi_documents BEGIN
            UPDATE xapi_usage SET document_bytes = document_bytes - octet_length(OLD.content) WHERE id = 1;
        END;
        """
    )


def m021_xapi_staged_keys(conn: apsw.Connection) -> None:
    """Recent statements' key rows (appliance.services.lrs.statement_keys.insert_key_rows): on SQLite a
    statement's key rows go here, the key index's primary key on a small table, and are moved into
    `xapi_statement_keys` in key order every few thousand statements, so a COMMIT does not write the
    last page of every learner's, activity's and registration's range it touches; the GET filters read
    both. On PostgreSQL the rows go into the key index directly: this table holds there only what a
    migration from SQLite copied (read, never moved)."""
    conn.execute(
        """
        CREATE TABLE xapi_statement_keys_recent (
            key INTEGER NOT NULL,
            related INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (key, related, seq)
        ) WITHOUT ROWID;
        """
    )
