"""Migrations("tenant"): the tables inside each tenant's own database file."""

from __future__ import annotations

import apsw

from appliance.services.learning.analytics_index import backfill
from appliance.storage.sqlite.migrations import Migrations

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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
def m007_analytics(conn: apsw.Connection) -> None:
    """Derived tables for analytics, kept up to date when run-time data is written.

    `session_interactions` holds one row per `cmi.interactions.n` record of each SCO; triggers keep the
    per-question counters (`interaction_stats`, `interaction_responses`) in step with it, so a package
    report reads small aggregates instead of every session's CMI. `session_completions` records when a
    session first completed (learner progress over time). Covering indexes on `sessions` give the
    per-package counts by status, the score distribution (range counts) and the time median (an offset)
    without reading the table.
    """
    conn.execute(
        """
        CREATE TABLE session_interactions (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            activity_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            package_id TEXT NOT NULL,
            interaction_id TEXT NOT NULL,
            type TEXT,
            description TEXT,
            response TEXT,
            result TEXT,
            outcome TEXT NOT NULL,
            latency_seconds REAL,
            PRIMARY KEY (session_id, activity_id, idx)
        ) WITHOUT ROWID;
        CREATE TABLE interaction_stats (
            package_id TEXT NOT NULL,
            interaction_id TEXT NOT NULL,
            type TEXT,
            description TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            correct INTEGER NOT NULL DEFAULT 0,
            incorrect INTEGER NOT NULL DEFAULT 0,
            unanticipated INTEGER NOT NULL DEFAULT 0,
            neutral INTEGER NOT NULL DEFAULT 0,
            numeric INTEGER NOT NULL DEFAULT 0,
            no_result INTEGER NOT NULL DEFAULT 0,
            latency_total REAL NOT NULL DEFAULT 0,
            latency_count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (package_id, interaction_id)
        ) WITHOUT ROWID;
        CREATE TABLE interaction_responses (
            package_id TEXT NOT NULL,
            interaction_id TEXT NOT NULL,
            response TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (package_id, interaction_id, response)
        ) WITHOUT ROWID;
        CREATE TRIGGER session_interactions_added AFTER INSERT ON session_interactions BEGIN
            INSERT INTO interaction_stats (package_id, interaction_id, type, description, attempts, correct,
                incorrect, unanticipated, neutral, numeric, no_result, latency_total, latency_count)
            VALUES (NEW.package_id, NEW.interaction_id, NEW.type, NEW.description, 1, NEW.outcome = 'correct',
                NEW.outcome = 'incorrect', NEW.outcome = 'unanticipated', NEW.outcome = 'neutral',
                NEW.outcome = 'numeric', NEW.outcome = 'none', coalesce(NEW.latency_seconds, 0),
                NEW.latency_seconds IS NOT NULL)
            ON CONFLICT (package_id, interaction_id) DO UPDATE SET
                type = coalesce(excluded.type, type), description = coalesce(excluded.description, description),
                attempts = attempts + 1, correct = correct + excluded.correct,
                incorrect = incorrect + excluded.incorrect, unanticipated = unanticipated + excluded.unanticipated,
                neutral = neutral + excluded.neutral, numeric = numeric + excluded.numeric,
                no_result = no_result + excluded.no_result, latency_total = latency_total + excluded.latency_total,
                latency_count = latency_count + excluded.latency_count;
            INSERT INTO interaction_responses (package_id, interaction_id, response, count)
            SELECT NEW.package_id, NEW.interaction_id, NEW.response, 1 WHERE NEW.response IS NOT NULL
            ON CONFLICT (package_id, interaction_id, response) DO UPDATE SET count = count + 1;
        END;
        CREATE TRIGGER session_interactions_removed AFTER DELETE ON session_interactions BEGIN
            UPDATE interaction_stats SET attempts = attempts - 1, correct = correct - (OLD.outcome = 'correct'),
                incorrect = incorrect - (OLD.outcome = 'incorrect'),
                unanticipated = unanticipated - (OLD.outcome = 'unanticipated'),
                neutral = neutral - (OLD.outcome = 'neutral'), numeric = numeric - (OLD.outcome = 'numeric'),
                no_result = no_result - (OLD.outcome = 'none'),
                latency_total = latency_total - coalesce(OLD.latency_seconds, 0),
                latency_count = latency_count - (OLD.latency_seconds IS NOT NULL)
            WHERE package_id = OLD.package_id AND interaction_id = OLD.interaction_id;
            DELETE FROM interaction_stats
            WHERE package_id = OLD.package_id AND interaction_id = OLD.interaction_id AND attempts <= 0;
            UPDATE interaction_responses SET count = count - 1
            WHERE package_id = OLD.package_id AND interaction_id = OLD.interaction_id AND response = OLD.response;
            DELETE FROM interaction_responses
            WHERE package_id = OLD.package_id AND interaction_id = OLD.interaction_id AND response = OLD.response
                AND count <= 0;
        END;
        CREATE TABLE session_completions (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            package_id TEXT NOT NULL,
            completed_at REAL NOT NULL
        );
        CREATE INDEX session_completions_package ON session_completions(package_id, completed_at);
        CREATE INDEX sessions_analytics ON sessions(package_id, status, completion_status, success_status);
        CREATE INDEX sessions_package_score ON sessions(package_id, score_scaled);
        CREATE INDEX sessions_package_time ON sessions(package_id, total_time_seconds);
        """
    )
    backfill(conn)  # index the sessions recorded before this migration


@tenant_migrations
def m008_session_row_bytes(conn: apsw.Connection) -> None:
    """`data_bytes` counts the session row's own data beside its SCOs' CMI (sessions.row_data_bytes):
    recount every session, so storage usage covers what was stored before the change too."""
    conn.execute(
        """
        UPDATE sessions SET data_bytes =
            (SELECT coalesce(sum(length(cmi)), 0) FROM session_activities WHERE session_id = sessions.id)
            + length(learner_id) + length(learner_name) + length(commit_seqs)
            + coalesce(length(sequencing_state), 0) + coalesce(length(shared_state), 0);
        """
    )


@tenant_migrations
def m009_package_suspend_data_limit(conn: apsw.Connection) -> None:
    """A package's own SCORM 1.2 cmi.suspend_data limit; NULL follows the tenant's setting."""
    conn.execute("ALTER TABLE packages ADD COLUMN scorm12_suspend_data_limit INTEGER")


@tenant_migrations
def m010_xapi_statements(conn: apsw.Connection) -> None:
    """The tenant's xAPI statements (appliance.services.lrs.statements), stored in arrival order (`seq`).

    `seq` orders `more` paging and `X-Experience-API-Consistent-Through`; `stored` (integer
    milliseconds, the precision the statements carry) never goes back as `seq` grows, so
    `since`/`until` become a `seq` range. Every GET filter (agent, verb,
    activity, registration) is one table of keys, `xapi_statement_keys`: a 64-bit hash of the kind
    and value (appliance.services.lrs.statements.filter_key), the statement's `seq`, and `related` (0: the
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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
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


@tenant_migrations
def m017_cmi5_registrations(conn: apsw.Connection) -> None:
    """cmi5 registrations (appliance.services.learning.cmi5_registrations): a session on a cmi5 version is one registration.

    `cmi5_registrations` holds the registration's UUID and actor; `cmi5_aus` each AU's results across the
    registration (what moveOn reads) and its LMS-generated activity id; `cmi5_au_sessions` each launch of
    an AU (its one-time fetch URL's and auth token's hashes, what the AU has sent, how it ended);
    `cmi5_satisfied` the AUs, blocks and course the LMS wrote `satisfied` for (once each).
    """
    conn.execute(
        """
        CREATE TABLE cmi5_registrations (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            registration TEXT NOT NULL UNIQUE,
            actor TEXT NOT NULL,
            created_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE cmi5_aus (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            au_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            activity_id TEXT NOT NULL,
            completed INTEGER NOT NULL DEFAULT 0,
            passed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            waived INTEGER NOT NULL DEFAULT 0,
            waive_reason TEXT,
            score_scaled REAL,
            score_raw REAL,
            score_min REAL,
            score_max REAL,
            time_seconds REAL NOT NULL DEFAULT 0,
            launches INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (session_id, au_id)
        ) WITHOUT ROWID;
        CREATE TABLE cmi5_au_sessions (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            au_id TEXT NOT NULL,
            launch_mode TEXT NOT NULL,
            fetch_hash TEXT NOT NULL,
            token_hash TEXT,
            fetched_at REAL,
            initialized INTEGER NOT NULL DEFAULT 0,
            verbs TEXT NOT NULL DEFAULT '[]',
            ended TEXT,
            launched_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE INDEX cmi5_au_sessions_open ON cmi5_au_sessions(session_id, ended);
        CREATE TABLE cmi5_satisfied (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            node_id TEXT NOT NULL,
            satisfied_at REAL NOT NULL,
            PRIMARY KEY (session_id, node_id)
        ) WITHOUT ROWID;
        """
    )


@tenant_migrations
def m018_cmi5_preferences_read(conn: apsw.Connection) -> None:
    """When an AU session's AU asked for cmi5LearnerPreferences (§11: before its `initialized`, 11.0.0.0-3).

    Kept with the AU session rather than in a process's memory, so an appliance restarted (or another
    worker) between the AU's read and its `initialized` still admits it.
    """
    conn.execute("ALTER TABLE cmi5_au_sessions ADD COLUMN preferences_read_at REAL")


@tenant_migrations
def m019_lti_memberships(conn: apsw.Connection) -> None:
    """A launch's Names and Roles memberships URL (appliance.services.lms.lti.nrps): the platform's
    `context_memberships_url` from the id_token's NRPS claim, what the members route reads."""
    conn.execute("ALTER TABLE lti_launches ADD COLUMN memberships_url TEXT")


@tenant_migrations
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
