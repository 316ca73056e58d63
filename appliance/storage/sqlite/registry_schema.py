"""Migrations("registry"): tenants, API keys, settings and the durable job queue."""

from __future__ import annotations

import apsw

from appliance.storage.sqlite.migrations import Migrations

registry_migrations = Migrations("registry")


@registry_migrations
def m001_tenants_and_keys(conn: apsw.Connection) -> None:
    """Tenants with their quotas and auth settings, and API keys stored only as hashes."""
    conn.execute(
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            plan TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            storage_limit_bytes INTEGER,
            rate_limit_per_minute INTEGER,
            session_ttl_seconds INTEGER NOT NULL DEFAULT 86400,
            jwt_config TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX tenants_name ON tenants(name);
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            name TEXT,
            key_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL,
            revoked_at REAL
        );
        CREATE INDEX api_keys_tenant ON api_keys(tenant_id);
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """
    )


@registry_migrations
def m002_jobs(conn: apsw.Connection) -> None:
    """The durable job queue the in-process scheduler works from."""
    conn.execute(
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            tenant_id TEXT,
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            run_at REAL NOT NULL,
            locked_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX jobs_due ON jobs(status, run_at);
        """
    )


@registry_migrations
def m003_api_key_roles(conn: apsw.Connection) -> None:
    """A role per API key (appliance.services.tenancy.roles); keys made before roles existed keep doing everything: admin."""
    conn.execute("ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'")


@registry_migrations
def m004_tenant_suspend_data_limit(conn: apsw.Connection) -> None:
    """The tenant's SCORM 1.2 cmi.suspend_data limit (tenants.set_suspend_data_limit); every tenant starts
    at 64000 characters, the appliance's default, so authoring tools' long suspend data resumes."""
    conn.execute("ALTER TABLE tenants ADD COLUMN scorm12_suspend_data_limit INTEGER NOT NULL DEFAULT 64000")


@registry_migrations
def m005_lrs_credentials(conn: apsw.Connection) -> None:
    """xAPI LRS credentials (appliance.services.lrs.credentials): HTTP Basic key and secret per tenant, with a scope.

    In the registry, like API keys, because a Basic credential is all a request carries to name its
    tenant; the secret is stored only as a hash.
    """
    conn.execute(
        """
        CREATE TABLE lrs_credentials (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            name TEXT,
            scope TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_used_at REAL,
            revoked_at REAL
        );
        CREATE INDEX lrs_credentials_tenant ON lrs_credentials(tenant_id);
        """
    )


@registry_migrations
def m006_console_admins(conn: apsw.Connection) -> None:
    """Admin console accounts and their server-side sessions (appliance.services.tenancy.admins).

    An account with no tenant is a superuser; with one, it sees and acts on that tenant only. A session
    row is keyed by the hash of its cookie's token, so reading the registry never yields a live cookie;
    it carries the session's CSRF token (the synchronizer token every console form sends back).
    """
    conn.execute(
        """
        CREATE TABLE admins (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL,
            last_login_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE UNIQUE INDEX admins_username ON admins(username);
        CREATE TABLE admin_sessions (
            id TEXT PRIMARY KEY,
            admin_id TEXT NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            address TEXT,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX admin_sessions_admin ON admin_sessions(admin_id);
        """
    )


@registry_migrations
def m007_job_leases(conn: apsw.Connection) -> None:
    """Leases on claimed jobs (appliance.services.delivery.jobs): which worker holds a running job and until when.

    Several worker processes share one queue on PostgreSQL; a worker renews its lease while the job
    runs, and a job whose lease ran out (its worker was killed) is claimed again by another.
    """
    conn.execute(
        """
        ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
        ALTER TABLE jobs ADD COLUMN lease_until REAL;
        """
    )
