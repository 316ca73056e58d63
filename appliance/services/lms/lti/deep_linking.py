"""Deep Linking 2.0: a teacher picks a package in the platform; the tool answers with a signed link.

A deep linking request (validated like any launch, appliance.services.lms.lti.launch) opens a small server-rendered
page listing the tenant's ready packages. The pick is kept server-side under a random, single-use id
(`lti_deep_links`): the page's form carries only that id, so no cookie is needed inside the platform's
iframe. Choosing a package signs an `LtiDeepLinkingResponse` JWT with the tenant's tool key
(appliance.services.lms.lti.keys) holding one `ltiResourceLink` content item: the tool's launch URL, the custom
parameter `package_id` that later launches read, and a line item so the platform creates the grade
column. The answer is a page whose form auto-submits the JWT to the platform's `deep_link_return_url`.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from appliance.instance import Instance
from appliance.services.lms.lti import claims as c
from appliance.services.lms.lti.keys import sign
from appliance.services.lms.lti.launch import ToolUrls, is_teacher
from appliance.services.lms.lti.registrations import Registration, get_registration
from appliance.storage.sqlite.connection import one, rows

PICK_TTL_SECONDS = 3600.0
RESPONSE_TTL_SECONDS = 600
SCORE_MAXIMUM = 100


@dataclass(frozen=True)
class Page:
    """A server-rendered HTML page with the nonce its inline script may run under (CSP)."""

    html: str
    script_nonce: str | None = None
    form_action: str | None = None  # the origin the page's form may post to, beyond its own


def start(inst: Instance, tenant_id: str, reg: Registration, claims: dict[str, Any]) -> str:
    """Record a deep linking request; the pick id its page posts back."""
    if not is_teacher(claims):
        raise Forbidden("only an instructor or content developer may add content with Deep Linking")
    settings = claims.get(c.DL_SETTINGS)
    if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str):
        raise ValidationFailed(
            "the deep linking request has no deep_link_return_url",
            {"errors": [{"field": "deep_linking_settings.deep_link_return_url", "message": "required"}]},
        )
    accepted = settings.get("accept_types") or []
    if "ltiResourceLink" not in accepted:
        raise ValidationFailed(
            "the platform does not accept ltiResourceLink content items here", {"accept_types": accepted}
        )
    pick_id, now = secrets.token_urlsafe(24), inst.clock.now()
    inst.tenant_db(tenant_id).write_sync(
        lambda conn: conn.execute(
            "INSERT INTO lti_deep_links (id, registration_id, deployment_id, return_url, data, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                pick_id,
                reg.id,
                str(claims[c.DEPLOYMENT_ID]),
                settings["deep_link_return_url"],
                settings.get("data") if isinstance(settings.get("data"), str) else None,
                now,
                now + PICK_TTL_SECONDS,
            ),
        )
    )
    return pick_id


def _ready_packages(conn: apsw.Connection) -> list[dict[str, Any]]:
    return rows(conn, "SELECT id, title FROM packages WHERE active_version IS NOT NULL ORDER BY title, id")


def picker_page(inst: Instance, tenant_id: str, pick_id: str, urls: ToolUrls) -> Page:
    """The teacher's choice of package: one button per ready package."""
    found = inst.tenant_db(tenant_id).read_sync(_ready_packages)
    action = html.escape(urls.deep_link_pick(pick_id), quote=True)
    items = "\n".join(
        f'<li><button type="submit" name="package_id" value="{html.escape(p["id"], quote=True)}">'
        f"{html.escape(p['title'] or p['id'])}</button></li>"
        for p in found
    )
    body = (
        f'<form method="post" action="{action}"><ul>{items}</ul></form>' if found else "<p>No package is ready yet.</p>"
    )
    return Page(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Choose a course</title>'
        "<style>body{font:16px system-ui,sans-serif;margin:1.5rem}li{margin:.4rem 0;list-style:none}"
        "button{font:inherit;padding:.4rem .8rem;cursor:pointer}</style></head><body>"
        f"<h1>Choose a course to add</h1>{body}</body></html>",
        form_action=urls.deep_link_pick(pick_id),  # the tool's public URL, which may not be this host
    )


def _pick_row(conn: apsw.Connection, pick_id: str, now: float) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM lti_deep_links WHERE id = ?", (pick_id,))
    if row is None or row["expires_at"] < now:
        raise Unauthorized(
            "this content selection has expired: open the tool from the course again", {"reason": "pick_expired"}
        )
    if row["used_at"] is not None:
        raise Unauthorized("this content selection was already made", {"reason": "replayed"})
    return row


def respond(inst: Instance, tenant_id: str, pick_id: str, package_id: str, urls: ToolUrls) -> Page:
    """Sign the `LtiDeepLinkingResponse` for the chosen package; the page that posts it to the platform."""
    now = inst.clock.now()

    def take(conn: apsw.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
        row = _pick_row(conn, pick_id, now)
        package = one(conn, "SELECT id, title FROM packages WHERE id = ? AND active_version IS NOT NULL", (package_id,))
        if package is None:
            raise NotFound(f"no ready package {package_id!r}", {"package_id": package_id})
        conn.execute("UPDATE lti_deep_links SET used_at = ? WHERE id = ?", (now, pick_id))
        return row, package

    row, package = inst.tenant_db(tenant_id).write_sync(take)
    reg = get_registration(inst, tenant_id, row["registration_id"])
    title = package["title"] or package["id"]
    item = {
        "type": "ltiResourceLink",
        "title": title,
        "url": urls.launch,
        "custom": {c.PACKAGE_PARAMETER: package["id"]},
        "lineItem": {"scoreMaximum": SCORE_MAXIMUM, "label": title, "resourceId": package["id"]},
    }
    message: dict[str, Any] = {
        "iss": reg.client_id,
        "aud": [reg.issuer],
        "iat": int(now),
        "exp": int(now) + RESPONSE_TTL_SECONDS,
        "nonce": secrets.token_urlsafe(16),
        c.DEPLOYMENT_ID: row["deployment_id"],
        c.MESSAGE_TYPE: c.DEEP_LINKING_RESPONSE,
        c.VERSION: c.LTI_VERSION,
        c.DL_CONTENT_ITEMS: [item],
        c.DL_MSG: f"Added {title}",
    }
    if row["data"] is not None:
        message[c.DL_DATA] = row["data"]
    return auto_post(row["return_url"], {"JWT": sign(inst, tenant_id, message)})


def auto_post(url: str, fields: dict[str, str]) -> Page:
    """A page whose form posts `fields` to `url` as soon as it loads (a button without JavaScript)."""
    nonce = secrets.token_urlsafe(16)
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">'
        for k, v in fields.items()
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Returning to the course</title></head><body>'
        f'<form id="post" method="post" action="{html.escape(url, quote=True)}">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        f'<script nonce="{nonce}">document.getElementById("post").submit();</script></body></html>'
    )
    return Page(page, nonce, url)
