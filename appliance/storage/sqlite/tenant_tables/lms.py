"""The tenant's other LMSs (appliance.services.lms): the LTI 1.3 tool and its launches, dispatch packages
(migrations m014, m016, m019).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw


def m014_lti(conn: apsw.Connection) -> None:
    """The LTI 1.3 tool (appliance.services.lms.lti): platform registrations, the tool's signing keys, the OIDC
    login states (server-side: no cookie on the launch path), used nonces, deep-linking picks in
    progress, and each launch's link to a session with its AGS line item and what was last posted.
    """
    conn.execute(
        """
        CREATE TABLE lti_registrations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            issuer TEXT NOT NULL,
            client_id TEXT NOT NULL,
            deployment_ids TEXT NOT NULL DEFAULT '[]',
            jwks_url TEXT NOT NULL,
            auth_url TEXT NOT NULL,
            token_url TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (issuer, client_id)
        );
        CREATE TABLE lti_tool_keys (
            kid TEXT PRIMARY KEY,
            private_pem TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            created_at REAL NOT NULL,
            retired_at REAL,
            expires_at REAL
        );
        CREATE TABLE lti_states (
            state TEXT PRIMARY KEY,
            registration_id TEXT NOT NULL REFERENCES lti_registrations(id) ON DELETE CASCADE,
            nonce TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE TABLE lti_nonces (
            issuer TEXT NOT NULL,
            nonce TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (issuer, nonce)
        ) WITHOUT ROWID;
        CREATE TABLE lti_deep_links (
            id TEXT PRIMARY KEY,
            registration_id TEXT NOT NULL REFERENCES lti_registrations(id) ON DELETE CASCADE,
            deployment_id TEXT NOT NULL,
            return_url TEXT NOT NULL,
            data TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE TABLE lti_launches (
            id TEXT PRIMARY KEY,
            registration_id TEXT NOT NULL REFERENCES lti_registrations(id) ON DELETE CASCADE,
            deployment_id TEXT NOT NULL,
            resource_link_id TEXT NOT NULL,
            context_id TEXT,
            sub TEXT NOT NULL,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            package_id TEXT NOT NULL,
            lineitem_url TEXT,
            lineitems_url TEXT,
            ags_scopes TEXT NOT NULL DEFAULT '[]',
            posted TEXT,
            posted_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (registration_id, resource_link_id, session_id)
        );
        CREATE INDEX lti_launches_session ON lti_launches(session_id);
        """
    )


def m016_dispatches(conn: apsw.Connection) -> None:
    """Dispatch packages (appliance.services.lms.dispatch): a package offered to another LMS through a small SCORM ZIP,
    with an optional learner cap and expiry and an enabled flag, and the remote learners it has seen
    (what the cap counts)."""
    conn.execute(
        """
        CREATE TABLE dispatches (
            id TEXT PRIMARY KEY,
            package_id TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            learner_cap INTEGER,
            expires_at REAL,
            enabled INTEGER NOT NULL DEFAULT 1,
            launches INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE dispatch_learners (
            dispatch_id TEXT NOT NULL REFERENCES dispatches(id) ON DELETE CASCADE,
            learner_id TEXT NOT NULL,
            remote_learner_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (dispatch_id, learner_id)
        ) WITHOUT ROWID;
        """
    )


def m019_lti_memberships(conn: apsw.Connection) -> None:
    """A launch's Names and Roles memberships URL (appliance.services.lms.lti.nrps): the platform's
    `context_memberships_url` from the id_token's NRPS claim, what the members route reads."""
    conn.execute("ALTER TABLE lti_launches ADD COLUMN memberships_url TEXT")
