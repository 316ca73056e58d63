"""Logging for `serve`: one line per event on stdout, readable (`text`) or machine-readable (`json`).

Text lines read

    2026-11-26T17:00:00.123Z INFO appliance.faces.api request_id=req_… method=GET path=/api/v1/health status=200 ms=1.2

that is: UTC time, level, logger, the message (if any), then `key=value` fields. With `json`, each line
is one JSON object with the keys `ts`, `level`, `logger`, `msg` and the same fields.

Every HTTP request gets one access line from `access_log_middleware` (logger `appliance.api`), and
every other line logged while a request is being handled carries that request's `request_id`, taken
from a context variable the middleware sets. Launch tokens in player paths are never logged.
"""

from __future__ import annotations

import collections
import contextvars
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.faces.api.middleware import request_id

LOG_FORMATS = ("text", "json")
LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}
ACCESS_LOGGER = "appliance.api"

_current_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_access = logging.getLogger(ACCESS_LOGGER)
_installed: logging.StreamHandler[Any] | None = None  # the handler configure_logging installed last


# -- the recent lines -------------------------------------------------------------------------------


RECENT_LINES = 1000  # lines the admin console's log page can show (appliance.faces.console.views.server)


class RecentLines:
    """A stream that writes through to another one and keeps its last `size` lines in memory.

    `configure_logging` puts it between the handler and stdout, so the admin console shows what the
    operator's terminal or journal got, both formats, the access lines' fast path included (it writes
    to `handler.stream` too), without a second handler. Bounded: a deque of whole lines.
    """

    def __init__(self, stream: IO[str], size: int = RECENT_LINES) -> None:
        self.stream = stream
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self._partial = ""

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        *done, self._partial = (self._partial + text).split("\n")
        self._lines.extend(done)
        return written

    def flush(self) -> None:
        self.stream.flush()

    def lines(self) -> list[str]:
        """The kept lines, oldest first."""
        return list(self._lines)


recent: RecentLines | None = None  # the stream configure_logging installed last


# -- formatting ------------------------------------------------------------------------------------


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text: lines come in bursts


def _timestamp(created: float) -> str:
    """`2026-11-26T17:00:00.123Z` (UTC, milliseconds)."""
    second, micro = divmod(round(created * 1_000_000), 1_000_000)
    cached_second, text = _second
    if second != cached_second:
        text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second[:] = [second, text]
    return f"{text}{micro // 1000:03d}Z"


def _logger_name(name: str) -> str:
    # uvicorn logs its lifecycle under "uvicorn.error", which reads like an error: show "uvicorn".
    return "uvicorn" if name == "uvicorn.error" else name


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return _line_fields(getattr(record, "request_id", None), getattr(record, "fields", None) or {})


def _line_fields(rid: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A line's key=value fields: the request id (when there is one) first."""
    return {"request_id": rid, **fields} if rid else fields


_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _text_value(value: Any) -> str:
    if type(value) is int or type(value) is float:  # most fields of the access line: never quoted
        return str(value)
    text = "" if value is None else str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class LineFormatter(logging.Formatter):
    """A formatter of this module: a record is one `line` of its parts (the access log writes its
    lines from the parts directly, see `log_access`)."""

    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(record.created, record.levelname, record.name, record.getMessage(), _fields(record), exc)

    def line(
        self, created: float, level: str, logger: str, message: str, fields: dict[str, Any], exc: str | None = None
    ) -> str:
        raise NotImplementedError


class TextFormatter(LineFormatter):
    """`<time> <LEVEL> <logger> <message> key=value …`, exceptions on the following lines."""

    def line(
        self, created: float, level: str, logger: str, message: str, fields: dict[str, Any], exc: str | None = None
    ) -> str:
        parts = [_timestamp(created), level, _logger_name(logger)]
        if message:
            parts.append(message)
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items()]
        text = " ".join(parts)
        return f"{text}\n{exc}" if exc else text


_json_line = msgspec.json.Encoder(enc_hook=str).encode  # non-ASCII as UTF-8; anything unusual as its str()


class JsonFormatter(LineFormatter):
    """One JSON object per line: ts, level, logger, msg, the fields, and `exc` for exceptions."""

    def line(
        self, created: float, level: str, logger: str, message: str, fields: dict[str, Any], exc: str | None = None
    ) -> str:
        data: dict[str, Any] = {
            "ts": _timestamp(created),
            "level": level,
            "logger": _logger_name(logger),
            "msg": message,
        }
        for key, value in fields.items():
            data.setdefault(key, value)
        if exc:
            data["exc"] = exc
        return _json_line(data).decode()


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
    global _installed, recent
    recent = RecentLines(stream or sys.stdout)
    handler = logging.StreamHandler(recent)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    _installed = handler
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


def bind_request(rid: str) -> contextvars.Token[str | None]:
    """Make `rid` the request id of every log line written until `unbind_request`."""
    return _current_request.set(rid)


def unbind_request(token: contextvars.Token[str | None]) -> None:
    _current_request.reset(token)


def log_access(method: str, path: str, status: int | None, started: float) -> None:
    """The request's access line (`path` already made loggable), timed from `started` (perf_counter).

    One line per request is most of what the server logs, so when the handler `configure_logging`
    installed is the only one the line would reach, the line is formatted from its parts and written
    here: the same text, without the logging module's record, filter and dispatch steps (about a
    tenth of a learner commit's server time). Any other set-up (a handler added, as pytest's caplog
    does) gets an ordinary record.
    """
    if not _access.isEnabledFor(logging.INFO):
        return
    fields = {
        "method": method,
        "path": path,
        "status": status if status is not None else "-",
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    handler = _installed
    if handler is None or not _only_destination(handler):
        _access.info("", extra={"fields": fields})
        return
    formatter: LineFormatter = handler.formatter  # type: ignore[assignment]
    text = formatter.line(time.time(), "INFO", ACCESS_LOGGER, "", _line_fields(_current_request.get(), fields))
    with handler.lock:  # type: ignore[union-attr]
        try:
            handler.stream.write(text + handler.terminator)
            handler.flush()
        except Exception:
            handler.handleError(_access.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, text, (), None))


def _only_destination(handler: logging.StreamHandler[Any]) -> bool:
    """Whether an access record would reach `handler` and nothing else, unfiltered and unchanged."""
    parent = _access.parent
    root = logging.root
    return (
        not _access.handlers
        and not _access.filters
        and not _access.disabled
        and _access.propagate
        and parent is not None
        and (
            parent is root
            or (not parent.handlers and not parent.filters and parent.propagate and parent.parent is root)
        )
        and len(root.handlers) == 1
        and root.handlers[0] is handler
        and not root.filters
        and handler.level <= logging.INFO
        and isinstance(handler.formatter, LineFormatter)
        and len(handler.filters) == 1
        and isinstance(handler.filters[0], RequestIdFilter)
    )


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: one `appliance.faces.api` line per HTTP request, once its response has been sent.

    Also fixes the request id for the request (the same one the X-Request-ID header carries) and makes
    it visible to every log line written while the request is handled.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        bound = bind_request(request_id(scope))
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
            log_access(scope.get("method", ""), loggable_path(scope.get("path", "")), status, started)
            unbind_request(bound)

    return middleware
