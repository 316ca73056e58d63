"""Migrations("tenant"): the tables inside each tenant's own database file."""

from __future__ import annotations

import apsw

from appliance.db.migrations import Migrations

tenant_migrations = Migrations("tenant")


@tenant_migrations
def m001_meta(conn: apsw.Connection) -> None:
    """Per-tenant counters that must survive a restart (API request periods)."""
    conn.execute(
        """
        CREATE TABLE usage_periods (
            period_start REAL PRIMARY KEY,
            api_requests INTEGER NOT NULL DEFAULT 0
        );
        """
    )


@tenant_migrations
def m002_packages(conn: apsw.Connection) -> None:
    """Packages and their versions; a version's files live under packages/<id>/<version>/."""
    conn.execute(
        """
        CREATE TABLE packages (
            id TEXT PRIMARY KEY,
            title TEXT,
            latest_version INTEGER NOT NULL,
            active_version INTEGER,
            active_pinned INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE package_versions (
            package_id TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            scorm_version TEXT,
            title TEXT,
            warnings TEXT NOT NULL DEFAULT '[]',
            capabilities TEXT NOT NULL DEFAULT '{}',
            manifest TEXT,
            launch TEXT,
            upload_bytes INTEGER NOT NULL DEFAULT 0,
            upload_sha256 TEXT,
            size_bytes INTEGER NOT NULL DEFAULT 0,
            file_count INTEGER NOT NULL DEFAULT 0,
            item_count INTEGER NOT NULL DEFAULT 0,
            sco_count INTEGER NOT NULL DEFAULT 0,
            original_filename TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            processed_at REAL,
            PRIMARY KEY (package_id, version)
        );
        CREATE INDEX package_versions_status ON package_versions(status);
        """
    )


@tenant_migrations
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
