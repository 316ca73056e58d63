"""The tenant's packages and their versions, SCORM and cmi5 (appliance.services.library; migrations m002,
m009, m015).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw


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


def m009_package_suspend_data_limit(conn: apsw.Connection) -> None:
    """A package's own SCORM 1.2 cmi.suspend_data limit; NULL follows the tenant's setting."""
    conn.execute("ALTER TABLE packages ADD COLUMN scorm12_suspend_data_limit INTEGER")


def m015_cmi5_packages(conn: apsw.Connection) -> None:
    """cmi5 packages: a version's standard ('scorm' or 'cmi5') and, for cmi5, its course structure.

    `course` holds the parsed cmi5.xml as JSON (blocks, AUs with moveOn, masteryScore, launchMethod,
    launchParameters, entitlementKey, activityType, objectives): registrations and launch read it
    instead of parsing the file again. Existing versions are SCORM, which the default says.
    """
    conn.execute(
        """
        ALTER TABLE package_versions ADD COLUMN standard TEXT NOT NULL DEFAULT 'scorm';
        ALTER TABLE package_versions ADD COLUMN course TEXT;
        """
    )
