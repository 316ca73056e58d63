"""Versioned, idempotent schema migrations: named functions applied in order, each once.

The pattern of sqlite-utils' `Migrations`, over apsw: a `_migrations` table records what ran, and
applying a set twice does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import apsw

Step = Callable[[apsw.Connection], None]


@dataclass
class Migrations:
    """An ordered, named list of schema steps for one kind of database file."""

    name: str
    steps: list[tuple[str, Step]] = field(default_factory=list)

    def __call__(self, fn: Step) -> Step:
        """Register `fn` as the next step, named after the function."""
        self.steps.append((fn.__name__, fn))
        return fn

    def apply(self, conn: apsw.Connection, now: float) -> list[str]:
        """Apply every step not yet applied, each in its own transaction; return the names applied."""
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
            "applied_at REAL NOT NULL, PRIMARY KEY (migration_set, name))"
        )
        applied = []
        for name, step in self.steps:
            # IMMEDIATE: take the write lock before reading, so two processes opening a new file at once
            # queue on the busy timeout instead of failing to upgrade a read lock.
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM _migrations WHERE migration_set = ? AND name = ?", (self.name, name)
                ).fetchone()
                if not done:
                    step(conn)
                    conn.execute("INSERT INTO _migrations VALUES (?, ?, ?)", (self.name, name, now))
                    applied.append(name)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return applied
