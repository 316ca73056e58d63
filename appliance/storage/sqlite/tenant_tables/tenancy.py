"""The tenant's own counters (appliance.services.tenancy): API request periods and where its storage
stands against its quota (migrations m001, m006).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw


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


def m006_quota_state(conn: apsw.Connection) -> None:
    """Where the tenant's storage stands against its quota, so quota events fire once per crossing."""
    conn.execute(
        """
        CREATE TABLE quota_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            level TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        """
    )
