"""Learners at work (appliance.services.learning): sessions and their SCOs' run-time data, the analytics
index and its triggers, the session row's byte count, cmi5 registrations (migrations m004, m007, m008,
m017, m018).

Each step is as it shipped (its name is what `_migrations` records); the order the steps run in is
`appliance.storage.sqlite.tenant_schema`'s, not this module's.
"""

from __future__ import annotations

import apsw

from appliance.services.learning.analytics_index import backfill


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


def m018_cmi5_preferences_read(conn: apsw.Connection) -> None:
    """When an AU session's AU asked for cmi5LearnerPreferences (§11: before its `initialized`, 11.0.0.0-3).

    Kept with the AU session rather than in a process's memory, so an appliance restarted (or another
    worker) between the AU's read and its `initialized` still admits it.
    """
    conn.execute("ALTER TABLE cmi5_au_sessions ADD COLUMN preferences_read_at REAL")
