"""Identifiers: prefixed random ids in lower-case base32."""

from __future__ import annotations

import base64
import os
import re

import pytest

from appliance.ids import PREFIXES, base32, new_id, new_request_id


def test_base32_is_the_rfc_4648_alphabet_in_lower_case() -> None:
    for size in (5, 10, 15, 20):
        for _ in range(200):
            raw = os.urandom(size)
            assert base32(raw) == base64.b32encode(raw).decode("ascii").lower()
    assert base32(b"\x00" * 5) == "aaaaaaaa" and base32(b"\xff" * 5) == "77777777"


def test_base32_refuses_lengths_that_would_need_padding() -> None:
    with pytest.raises(ValueError, match="multiple of 5"):
        base32(b"abc")


def test_ids_are_prefixed_and_unique() -> None:
    ids = {new_id("req") for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"req_[a-z2-7]{24}", i) for i in ids)
    assert {new_id(p).split("_")[0] for p in PREFIXES} == set(PREFIXES)
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_id("nope")


def test_request_ids_are_random_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", i) for i in ids)
    assert ids != sorted(ids)  # not a counter: ids say nothing of how many requests came before
