"""Verifying the appliance's webhook requests (Standard Webhooks, docs/webhooks.md).

The server signs `<webhook-id>.<webhook-timestamp>.<raw body>` with HMAC-SHA256 under the secret's
base64-decoded bytes (after `whsec_`) and sends `v1,<base64>`. Verification recomputes exactly that
over the raw body, before any JSON parsing, compares in constant time, and refuses timestamps outside
a tolerance so that a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from .errors import WebhookVerificationError
from .models import WebhookEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value the server sends for this message (`v1,<base64>`)."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the webhook secret is not a whsec_ base64 secret") from exc
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Check a webhook request and return its event; raise WebhookVerificationError if it is not genuine.

    `headers` may be any mapping (case does not matter); `body` must be the raw bytes received.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not message_id or not timestamp_text or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    raw = body.encode() if isinstance(body, str) else body
    expected = sign_webhook(secret, message_id, timestamp, raw).encode()
    # The header may carry several space-separated signatures (during a secret rotation).
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split()):
        raise WebhookVerificationError("no webhook-signature matches")
    try:
        return WebhookEvent.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise WebhookVerificationError("the signed body is not a webhook event") from exc
