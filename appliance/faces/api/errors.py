"""The one mapping from errors to HTTP responses in the contract's shape `{error, code, details}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from appliance.errors import ApplianceError

log = logging.getLogger("appliance.api")

STATUS_BY_CODE = {
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "VALIDATION_ERROR": 422,
    "CMI_VALIDATION_ERROR": 422,
    "SEQUENCING_TOO_COSTLY": 422,
    "CMI5_LAUNCH_UNAVAILABLE": 422,
    "VERSION_CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "QUOTA_EXCEEDED": 403,
    "INSUFFICIENT_STORAGE": 507,
    "RATE_LIMITED": 429,
    "PACKAGE_NOT_READY": 409,
    "SESSION_EXPIRED": 410,
    "INVALID_PACKAGE": 422,
    "UNSAFE_ARCHIVE": 422,
    "INTERNAL_ERROR": 500,
}

# Litestar's own exceptions, by status, mapped onto the contract's codes. A 400 from Litestar is a
# body or parameter it could not decode or validate, which the contract calls VALIDATION_ERROR (422).
CODE_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error body."""
    return {"error": message, "code": code, "details": details or {}}


def error_response(code: str, message: str, details: dict[str, Any] | None = None) -> Response[Any]:
    """A JSON error response with the status that goes with `code`."""
    headers = {}
    if code == "RATE_LIMITED" and details and "retry_after" in details:
        headers["Retry-After"] = str(details["retry_after"])
    return Response(
        content=error_body(code, message, details),
        status_code=STATUS_BY_CODE.get(code, 500),
        headers=headers,
        media_type=MediaType.JSON,
    )


def handle_appliance_error(_: Request[Any, Any, Any], exc: ApplianceError) -> Response[Any]:
    """Domain errors carry their own code."""
    return error_response(exc.code, exc.message, exc.details)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's routing, parsing and validation errors, in the contract's shape."""
    status = exc.status_code
    code = CODE_BY_STATUS.get(status)
    if code is None:
        if status >= 500:
            return handle_unexpected(request, exc)
        code = "VALIDATION_ERROR"
    details: dict[str, Any] = {}
    message = exc.detail or "request failed"
    if code == "NOT_FOUND":
        message = f"no route or resource at {request.url.path}"
    elif code == "METHOD_NOT_ALLOWED":
        message = f"{request.method} is not allowed on {request.url.path}"
        if exc.headers and "allow" in {k.lower() for k in exc.headers}:
            details["allowed"] = next(v for k, v in exc.headers.items() if k.lower() == "allow").split(", ")
    elif code == "VALIDATION_ERROR":
        extra = exc.extra if isinstance(exc, ValidationException) or exc.extra else None
        details["errors"] = _field_errors(extra, message)
    response = error_response(code, message, details)
    if code == "METHOD_NOT_ALLOWED" and exc.headers:
        response.headers.update(exc.headers)
    return response


def _field_errors(extra: Any, message: str) -> list[dict[str, Any]]:
    if isinstance(extra, list) and extra:
        return [
            {"field": str(e.get("key") or e.get("source") or ""), "message": str(e.get("message", ""))}
            if isinstance(e, dict)
            else {"field": "", "message": str(e)}
            for e in extra
        ]
    return [{"field": "", "message": message}]


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged with the request id, never shown to the client."""
    request_id = request.scope.get("state", {}).get("request_id")
    log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return error_response("INTERNAL_ERROR", "internal server error", {"request_id": request_id})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApplianceError: handle_appliance_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
