"""The refusal of a statement: `StatementError` (which rule, where) and the helpers every check raises it
with, plus the texts of the messages the checks share.

A module of its own because every part of statement validation (and the `agent` parameter's check)
raises these, and a path string is composed only here, when an error is raised.
"""

from __future__ import annotations

from typing import Any


class StatementError(Exception):
    """A statement (or an agent parameter) that breaks a rule of the spec: the LRS answers 400.

    `path` locates the offending value (`statement.actor.mbox`); `message` says what is wrong.
    """

    def __init__(self, message: str, path: str = "statement") -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


OBJECT_MSG = "must be a JSON object"
STRING_MSG = "must be a string"
IRI_MSG = "must be an absolute IRI"
UUID_MSG = "must be a UUID"
LANGMAP_MSG = "must be a language map (an object of language tag to string)"
MISSING: Any = object()


def error_at(message: str, path: str, key: str | None = None) -> StatementError:
    return StatementError(message, path if key is None else f"{path}.{key}")


def unknown_property(key: object, path: str) -> StatementError:
    return StatementError(f"unknown property {key!r}", path)


def rebased(exc: StatementError, old: str, new: str) -> StatementError:
    """`exc` with its path's `old` prefix replaced by `new`."""
    return StatementError(exc.message, new + exc.path[len(old) :])
