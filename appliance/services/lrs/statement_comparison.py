"""A statement id sent again: the stored statement compared with the new one as xAPI compares them (keys in
order, without what the LRS set, a duration to the hundredth of a second).

A module of its own because it is the rule that decides between storing nothing and refusing with 409,
on the rare path of a client's id already stored.
"""

from __future__ import annotations

import re
from typing import Any

import apsw
import msgspec

from appliance.services.lrs.bulk import in_chunks

_encoder = msgspec.json.Encoder(order="sorted")


_decode = msgspec.json.Decoder().decode


_FINE_SECONDS = re.compile(r"(\d)\.(\d{2})\d+S$")


ASSIGNED_VERSION = 1  # `assigned` bits: what the LRS added to the statement it received


ASSIGNED_TIMESTAMP = 2


_LRS_SET = ("stored", "authority")


def comparable(statement: dict[str, Any]) -> bytes:
    """A statement as received, in the form two statements with one id are compared in: keys in
    order, `stored` and `authority` left out (the LRS sets them), a result's duration to the
    hundredth of a second (xAPI 2.0 §4.2.7: finer precision is not part of a comparison)."""
    statement = {k: v for k, v in statement.items() if k not in _LRS_SET}
    result = statement.get("result")
    if isinstance(result, dict) and isinstance(result.get("duration"), str) and "." in result["duration"]:
        coarse = _FINE_SECONDS.sub(r"\1.\2S", result["duration"])
        statement["result"] = {**result, "duration": coarse}
    return _encoder.encode(statement)


def as_received(body: bytes, assigned: int) -> dict[str, Any]:
    """A stored statement without what the LRS added to it."""
    statement = _decode(body)
    if assigned & ASSIGNED_VERSION:
        statement.pop("version", None)
    if assigned & ASSIGNED_TIMESTAMP:
        statement.pop("timestamp", None)
    return statement


def stored_as_received(conn: apsw.Connection, ids: list[str]) -> dict[str, bytes]:
    """id → `comparable` form of the ids already stored (the rare path: a client's id sent again)."""
    found: dict[str, bytes] = {}
    for chunk in in_chunks(ids):
        marks = ",".join("?" * len(chunk))
        for sid, body, assigned in conn.execute(
            f"SELECT id, body, assigned FROM xapi_statements WHERE id IN ({marks})", chunk
        ):
            found[sid] = comparable(as_received(body, assigned))
    return found
