"""Logging for `serve`: one line per event on stdout, readable (`text`) or machine-readable (`json`).

Text lines read

    2026-11-26T17:00:00.123Z INFO appliance.api request_id=req_… method=GET path=/api/v1/health status=200 ms=1.2

that is: UTC time, level, logger, the message (if any), then `key=value` fields. With `json`, each line
is one JSON object with the keys `ts`, `level`, `logger`, `msg` and the same fields.

Every HTTP request gets one access line from `access_log_middleware` (logger `appliance.api`), and
every other line logged while a request is being handled carries that request's `request_id`, taken
from a context variable the middleware sets. Launch tokens in player paths are never logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.api.middleware import request_id

LOG_FORMATS = ("text", "json")
LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}
ACCESS_LOGGER = "appliance.api"

_current_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_access = logging.getLogger(ACCESS_LOGGER)


# -- formatting ------------------------------------------------------------------------------------


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _logger_name(record: logging.LogRecord) -> str:
    # uvicorn logs its lifecycle under "uvicorn.error", which reads like an error: show "uvicorn".
    return "uvicorn" if record.name == "uvicorn.error" else record.name


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    rid = getattr(record, "request_id", None)
    if rid:
        found["request_id"] = rid
    found.update(getattr(record, "fields", None) or {})
    return found


_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _text_value(value: Any) -> str:
    text = "" if value is None else str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <message> key=value …`, exceptions on the following lines."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record.created), record.levelname, _logger_name(record)]
        message = record.getMessage()
        if message:
            parts.append(message)
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the fields, and `exc` for exceptions."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": _logger_name(record),
            "msg": record.getMessage(),
        }
        for key, value in _fields(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Adds the id of the request being handled (if any) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _current_request.get()
        return True


def configure_logging(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record (the appliance's, uvicorn's, Litestar's) to `stream` (stdout) in `fmt`.

    Replaces the root logger's handlers; returns the handler installed. Raises ValueError for an
    unknown level or format.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LEVELS)}, not {level!r}")
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level.lower()])
    # Neither format shows the caller's file and line, the thread or the process: skip collecting them
    # for every record (the "Optimization" advice of the logging docs; the access line is per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    return handler


# -- the access log --------------------------------------------------------------------------------


def loggable_path(path: str) -> str:
    """The request path as logged: the launch token in `/player/<token>/…` is replaced by `…`."""
    if path.startswith("/player/"):
        _, sep, tail = path[len("/player/") :].partition("/")
        return "/player/…" + sep + tail
    return path


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: one `appliance.api` line per HTTP request, once its response has been sent.

    Also fixes the request id for the request (the same one the X-Request-ID header carries) and makes
    it visible to every log line written while the request is handled.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = request_id(scope)
        token = _current_request.set(rid)
        started = time.perf_counter()
        status: int | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            if _access.isEnabledFor(logging.INFO):
                _access.info(
                    "",
                    extra={
                        "fields": {
                            "method": scope.get("method", ""),
                            "path": loggable_path(scope.get("path", "")),
                            "status": status if status is not None else "-",
                            "ms": round((time.perf_counter() - started) * 1000, 1),
                        }
                    },
                )
            _current_request.reset(token)

    return middleware
