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
