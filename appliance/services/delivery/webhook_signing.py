"""What a webhook delivery sends: the event's body, its signing secret and the Standard Webhooks headers.

Pure functions: the same event gives the same body bytes on every attempt (so a receiver's signature
check and its de-duplication by `webhook-id` see one message however often it arrives).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from appliance import __version__
from appliance.clock import rfc3339

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
USER_AGENT = f"scorm-appliance-webhooks/{__version__}"


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one delivery attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def event_body(event: dict[str, Any], tenant_id: str) -> bytes:
    """The JSON body of an event: the same bytes on every attempt."""
    payload = {
        "id": event["id"],
        "type": event["type"],
        "created_at": rfc3339(event["created_at"]),
        "tenant_id": tenant_id,
        "data": json.loads(event["data"]),
    }
    return json.dumps(payload, separators=(",", ":")).encode()
