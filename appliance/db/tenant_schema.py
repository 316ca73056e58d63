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


@tenant_migrations
def m004_sessions(conn: apsw.Connection) -> None:
    """Sessions (a learner's registration on a package), their per-SCO run-time data, learner state."""
    conn.execute(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            package_id TEXT NOT NULL,
            package_version INTEGER NOT NULL,
            learner_id TEXT NOT NULL,
            learner_name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'not_started',
            completion_status TEXT NOT NULL DEFAULT 'unknown',
            success_status TEXT NOT NULL DEFAULT 'unknown',
            score_raw REAL,
            score_min REAL,
            score_max REAL,
            score_scaled REAL,
            progress_measure REAL,
            total_time_seconds REAL NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 1,
            version INTEGER NOT NULL DEFAULT 1,
            current_activity TEXT,
            sequencing_state TEXT,
            shared_state TEXT,
            commit_seqs TEXT NOT NULL DEFAULT '{}',
            data_bytes INTEGER NOT NULL DEFAULT 0,
            server_time_seconds REAL NOT NULL DEFAULT 0,
            launch_started_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_activity_at REAL,
            expires_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE INDEX sessions_learner ON sessions(package_id, learner_id, status);
        CREATE INDEX sessions_status_expiry ON sessions(status, expires_at);
        CREATE TABLE session_activities (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            activity_id TEXT NOT NULL,
            cmi TEXT NOT NULL DEFAULT '{}',
            attempt INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'new',
            reported TEXT NOT NULL DEFAULT '[]',
            launched_at REAL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (session_id, activity_id)
        );
        CREATE TABLE learner_state (
            learner_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (learner_id, kind)
        );
        """
    )
