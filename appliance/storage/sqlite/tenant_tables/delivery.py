"""What the tenant sends out (appliance.services.delivery): the domain events outbox, webhooks, their
deliveries and attempts (migrations m003, m005).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw


def m003_events_outbox(conn: apsw.Connection) -> None:
    """Domain events, written in the same transaction as the change that causes them.

    Webhook delivery reads from here, so an event exists if and only if its change committed.
    """
    conn.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            subject_id TEXT,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            dispatched_at REAL
        );
        CREATE INDEX events_undispatched ON events(dispatched_at) WHERE dispatched_at IS NULL;
        """
    )


def m005_webhooks(conn: apsw.Connection) -> None:
    """Webhook endpoints, one delivery row per (event, endpoint), and each delivery's attempts.

    A pending delivery of a subject (a session, a package) waits for the pending deliveries of the same
    subject to the same endpoint that came before it (the partial index finds them), so a receiver sees
    one session's events in the order they happened.
    """
    conn.execute(
        """
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            events TEXT NOT NULL,
            secret TEXT NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            disabled_reason TEXT,
            failing_since REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            event_seq INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            subject_id TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            next_attempt_at REAL,
            lease_until REAL,
            last_attempt_at REAL,
            last_status_code INTEGER,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            delivered_at REAL
        );
        CREATE INDEX webhook_deliveries_log ON webhook_deliveries(webhook_id, created_at, id);
        CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(webhook_id, subject_id, event_seq)
            WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
        CREATE TABLE webhook_attempts (
            delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            started_at REAL NOT NULL,
            duration_ms INTEGER NOT NULL,
            status_code INTEGER,
            error TEXT,
            response_body TEXT,
            PRIMARY KEY (delivery_id, n)
        );
        """
    )
