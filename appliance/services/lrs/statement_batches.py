"""A batch of statements on its way into the store: each statement's id, keys, `seq` and JSON (`Pending`),
and the request's batch (`Batch`) that `statements.prepare_batch` makes without the database.

A module of its own because the batch is handed between the store's parts (statements, statement_refs)
and the LRS writer thread (appliance.services.lrs.bulk) that queues it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pending:
    """One statement of a batch on its way into the tables."""

    id: str
    statement: dict[str, Any]
    given: bool  # the client chose the id (else it is new: nothing stored can refer to it or share it)
    assigned: int = 0  # ASSIGNED_* bits
    keys: dict[int, int] = field(default_factory=dict)
    seq: int = 0
    target: str | None = None  # the id its StatementRef object names
    voiding: bool = False
    body: bytes = b""  # the statement as stored (JSON), with its `stored`
    packed_keys: bytes = b""  # `keys` as the row keeps them


@dataclass
class Batch:
    """A request's statements prepared for storing: ids, `stored`, authority, keys and JSON bodies
    made without the database (`prepare_batch`), so the transaction (`write_batch`) is SQL.

    `simple`: no id of the client's, no StatementRef, no attachment — nothing stored can conflict
    with, void, refer to or be referred to by these statements, so batches like it are written
    together in one set of inserts (`write_simple_batches`).
    """

    pending: list[Pending]
    stored_ms: int
    authority: dict[str, Any]
    credential_id: str | None
    attachments: dict[str, tuple[str, bytes]]
    definitions: dict[str, dict[str, Any]]
    simple: bool

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.pending]
