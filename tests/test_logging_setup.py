"""Structured logging: the line formats, the access log with its request id, and token redaction."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.config import Config
from appliance.logging_setup import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    bind_request,
    configure_logging,
    log_access,
    loggable_path,
    unbind_request,
)
from tests.faces.api.test_packages import make_client

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR|DEBUG) \S+( .*)?$")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging into a buffer; the logging set-up before the test is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    named = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in ("uvicorn", "litestar")}
    buffer = io.StringIO()
    handler = configure_logging("info", "text", buffer)
    yield buffer
    root.removeHandler(handler)
    for old in saved[0]:
        root.addHandler(old)
    root.setLevel(saved[1])
    for name, (handlers, propagate) in named.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("appliance.jobs", logging.WARNING, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_text_lines_are_time_level_logger_message_and_fields() -> None:
    line = TextFormatter().format(record("job failed", request_id="req_1", fields={"job": "job_2", "why": "disk full"}))
    assert LINE.match(line), line
    assert line.endswith(' WARNING appliance.jobs job failed request_id=req_1 job=job_2 why="disk full"')


def test_json_lines_carry_the_same_fields() -> None:
    data = json.loads(JsonFormatter().format(record("job failed", request_id="req_1", fields={"job": "job_2"})))
    assert data["level"] == "WARNING" and data["logger"] == "appliance.jobs" and data["msg"] == "job failed"
    assert data["request_id"] == "req_1" and data["job"] == "job_2"
    assert data["ts"].endswith("Z")


def test_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log_format"):
        configure_logging("info", "xml", io.StringIO())
    with pytest.raises(ValueError, match="log_level"):
        configure_logging("loud", "text", io.StringIO())


def test_player_paths_hide_the_launch_token() -> None:
    assert loggable_path("/player/abc.def/commit") == "/player/…/commit"
    assert loggable_path("/player/abc.def") == "/player/…"
    assert loggable_path("/api/v1/health") == "/api/v1/health"


def test_each_request_gets_one_access_line_with_its_request_id(config: Config, captured: io.StringIO) -> None:
    with make_client(config) as client:
        health = client.get("/api/v1/health", headers={"X-Request-ID": "trace-42"})
        missing = client.get("/api/v1/nope")
        client.post("/player/very-secret-token/launch")
    lines = [line for line in captured.getvalue().splitlines() if " appliance.api " in line]
    assert len(lines) == 3, captured.getvalue()
    assert all(LINE.match(line) for line in lines)
    assert " INFO appliance.api request_id=trace-42 method=GET path=/api/v1/health status=200 ms=" in lines[0]
    assert health.headers["x-request-id"] == "trace-42"
    assert f"request_id={missing.headers['x-request-id']} method=GET path=/api/v1/nope status=404" in lines[1]
    assert "path=/player/…/launch" in lines[2]
    server_side = [line for line in captured.getvalue().splitlines() if " httpx " not in line]  # the client's own
    assert "very-secret-token" not in "\n".join(server_side)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_lines_written_directly_read_as_ordinary_records(fmt: str) -> None:
    """The access log's own writer and a record through the logging module give the same line."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    direct, through_logging = io.StringIO(), io.StringIO()
    try:
        configure_logging("info", fmt, direct)
        bound = bind_request("req-direct")
        try:
            log_access("POST", "/player/…/commit", 200, time.perf_counter())
            extra = logging.StreamHandler(through_logging)  # a second handler: records go the usual way
            extra.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
            extra.addFilter(RequestIdFilter())
            root.addHandler(extra)
            log_access("POST", "/player/…/commit", 404, time.perf_counter())
        finally:
            unbind_request(bound)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    first, second = direct.getvalue().splitlines()
    assert through_logging.getvalue().splitlines() == [second]

    def comparable(line: str) -> Any:
        if fmt == "json":
            data = json.loads(line)
            return {k: v for k, v in data.items() if k not in ("ts", "ms", "status")}
        return re.sub(r"status=\d+ ms=[\d.]+$", "", line.split(" ", 1)[1])

    assert comparable(first) == comparable(second)
    if fmt == "text":
        assert LINE.match(first) and " INFO appliance.api request_id=req-direct method=POST " in first
    else:
        assert json.loads(first)["request_id"] == "req-direct" and json.loads(first)["status"] == 200
