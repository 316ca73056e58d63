"""A statement's result: score (scaled, raw, min, max), success, completion, duration, response, extensions.

A module of its own because the score's range rules are the one numeric part of the spec.
"""

from __future__ import annotations

import math

from appliance.core.xapi.statement_errors import OBJECT_MSG, STRING_MSG, error_at, unknown_property
from appliance.core.xapi.value_formats import check_extensions, match_duration


def check_result(result: object, path: str) -> None:
    if type(result) is not dict:
        raise error_at(OBJECT_MSG, path)
    for k, v in result.items():
        if k == "score":
            _score(v, f"{path}.score")
        elif k == "success" or k == "completion":
            if type(v) is not bool:
                raise error_at("must be a boolean", path, k)
        elif k == "duration":
            if type(v) is not str or match_duration(v) is None:
                raise error_at("must be an ISO 8601 duration", path, k)
        elif k == "response":
            if type(v) is not str:
                raise error_at(STRING_MSG, path, k)
        elif k == "extensions":
            check_extensions(v, path, k)
        else:
            raise unknown_property(k, path)


def _score(score: object, path: str) -> None:
    if type(score) is not dict:
        raise error_at(OBJECT_MSG, path)
    low = high = raw = None
    for k, v in score.items():
        if k != "scaled" and k != "raw" and k != "min" and k != "max":
            raise unknown_property(k, path)
        t = type(v)
        if not (t is int or (t is float and math.isfinite(v))):
            raise error_at("must be a number", path, k)
        if k == "scaled":
            if not -1 <= v <= 1:
                raise error_at("must be between -1 and 1", path, k)
        elif k == "raw":
            raw = v
        elif k == "min":
            low = v
        else:
            high = v
    if low is not None and high is not None and not low < high:
        raise error_at("min must be less than max", path)
    if raw is not None:
        if low is not None and raw < low:
            raise error_at("must not be less than min", path, "raw")
        if high is not None and raw > high:
            raise error_at("must not be greater than max", path, "raw")
