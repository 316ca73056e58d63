"""What the xAPI face and its resource handlers exchange: the request as a handler sees it, its answer,
and the error a handler raises. Apart from the face (appliance.faces.api.xapi.app) so that the resource
modules, which the face dispatches to, do not import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.instance import Instance
from appliance.services.lrs.credentials import LrsCredential
from appliance.services.tenancy.tenants import Tenant


class XapiError(Exception):
    """An xAPI error answer: the status the specification asks for and a message for the client."""

    def __init__(
        self, status: int, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}
        self.headers = headers or {}  # e.g. Allow on a 405


@dataclass
class XapiRequest:
    """One xAPI request as the resource handlers see it, whatever syntax it arrived in."""

    method: str  # GET, HEAD (handled as GET, the body dropped), PUT, POST, DELETE
    resource: str  # "statements", "activities/state", "activities/profile", "agents/profile", ...
    params: dict[str, str]  # query parameters (and, in the alternate syntax, the form's other fields)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    version: str  # negotiated: "1.0.3" or "2.0.0"
    tenant: Tenant | None = None  # None only on unauthenticated resources (About)
    credential: LrsCredential | None = None
    alternate: bool = False  # arrived in the alternate request syntax
    cmi5: Any = (
        None  # an AU session's token (appliance.services.learning.cmi5_registrations.AuGrant) instead of a credential
    )

    @property
    def reading(self) -> bool:
        """GET or HEAD: the handler answers both the same way (the face drops HEAD's body)."""
        return self.method in ("GET", "HEAD")

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def tenant_id(self) -> str:
        """The authenticated tenant's id (handlers of authenticated resources only)."""
        assert self.tenant is not None
        return self.tenant.id


@dataclass
class XapiResponse:
    """A handler's answer; `body` may be bytes or any JSON-encodable value."""

    status: int = 200
    body: Any = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Instance, XapiRequest], Awaitable[XapiResponse]]
