"""Names and Roles Provisioning Service 2.0: the members of a resource link's context, from the platform.

A launch whose id_token carries the NRPS claim (`context_memberships_url`, service version 2.0) is
recorded with that URL (appliance.services.lms.lti.launch). `link_members` reads the context's membership with an
access token for the `contextmembership.readonly` scope (the tool's signed client assertion, cached
like the AGS tokens: appliance.services.lms.lti.ags.service_token), following the platform's pages by their
`Link: <...>; rel="next"` headers (NRPS 2.0 §2.4.2). Every request goes through the outbound guard,
and a next page is followed only on the memberships URL's own origin, so the token is never sent
anywhere else. At most `MAX_PAGES` pages are read; an answer that stopped there says `truncated`.

Each member is what the platform shares (user id, status, names, email, roles) plus the appliance's
`learner_id` for that user (appliance.services.lms.lti.launch.learner_id), which joins it to the sessions API.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from appliance.errors import ApplianceError, Forbidden, NotFound, ValidationFailed
from appliance.instance import Instance
from appliance.services.delivery import outbound
from appliance.services.lms.lti import claims as c
from appliance.services.lms.lti.ags import AgsError, forget_token, service_token
from appliance.services.lms.lti.launch import learner_id
from appliance.services.lms.lti.registrations import Registration, get_registration, policy
from appliance.storage.sqlite.connection import one

MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MAX_PAGES = 50
MAX_PAGE_BYTES = 4 * 1024 * 1024
TIMEOUT_SECONDS = 10.0
MEMBER_FIELDS = ("user_id", "status", "name", "given_name", "family_name", "email", "picture", "roles")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r'rel\s*=\s*"?([^";]*)"?', re.IGNORECASE)


class PlatformUnavailable(ApplianceError):
    """The platform could not be read (unreachable, an error status, an answer that is not a membership)."""

    code = "INTERNAL_ERROR"


def next_link(values: list[str]) -> str | None:
    """The `rel="next"` target of `Link` header values (RFC 8288), or None."""
    for value in values:
        for match in _LINK.finditer(value):
            rels = _REL.search(match.group(2))
            if rels is not None and "next" in rels.group(1).split():
                return match.group(1).strip()
    return None


def link_members(inst: Instance, tenant_id: str, registration_id: str, link_id: str) -> dict[str, Any]:
    """`{context, data: [members], next_cursor: null, truncated}` of the link's context (see the module)."""
    reg = get_registration(inst, tenant_id, registration_id)
    launch = inst.tenant_db(tenant_id).read_sync(
        lambda conn: one(
            conn,
            "SELECT memberships_url, context_id FROM lti_launches WHERE registration_id = ? AND resource_link_id = ? "
            "ORDER BY memberships_url IS NULL, updated_at DESC LIMIT 1",
            (reg.id, link_id),
        )
    )
    if launch is None:
        raise NotFound(f"no launch of resource link {link_id!r} from this platform", {"resource_link_id": link_id})
    if not launch["memberships_url"]:
        raise ValidationFailed(
            "the platform offered no Names and Roles service for this link (enable it in the platform's tool "
            "settings, then launch the link again)",
            {"reason": "no_nrps", "resource_link_id": link_id},
        )
    url: str | None = launch["memberships_url"]
    origin = _origin(str(url))
    context: dict[str, Any] = {"id": launch["context_id"]}
    members: list[dict[str, Any]] = []
    pages = 0
    while url is not None and pages < MAX_PAGES:
        page = _page(inst, tenant_id, reg, url)
        pages += 1
        if isinstance(page.get("context"), dict):
            context = {k: page["context"][k] for k in ("id", "label", "title") if k in page["context"]}
        members.extend(_member(reg, m) for m in page["members"] if isinstance(m, dict) and m.get("user_id"))
        url = page["next"]
        if url is not None and _origin(url) != origin:
            raise PlatformUnavailable(
                "the platform's next page of members is on another origin; it was not followed",
                {"reason": "next_origin"},
            )
    return {"context": context, "data": members, "next_cursor": None, "pages": pages, "truncated": url is not None}


def _member(reg: Registration, raw: dict[str, Any]) -> dict[str, Any]:
    member = {k: raw[k] for k in MEMBER_FIELDS if k in raw}
    member.setdefault("status", "Active")
    member.setdefault("roles", [])
    member["learner_id"] = learner_id(reg.issuer, str(raw["user_id"]))
    return member


def _page(inst: Instance, tenant_id: str, reg: Registration, url: str) -> dict[str, Any]:
    """One page of the membership: its context, members and the next page's URL (None at the last)."""
    reply = _get(inst, tenant_id, reg, url)
    if reply.status_code == 401:  # a cached token the platform no longer takes: one more try with a new one
        forget_token(tenant_id, reg.id)
        reply = _get(inst, tenant_id, reg, url)
    if reply.status_code in (401, 403):
        raise Forbidden(
            f"the platform refused to list the members (HTTP {reply.status_code}): allow the tool the Names and "
            "Roles service in the platform",
            {"reason": "platform_refused", "platform_status": reply.status_code},
        )
    if reply.status_code != 200 or reply.truncated:
        raise PlatformUnavailable(
            f"the platform's membership service answered HTTP {reply.status_code}"
            + (" (larger than the tool reads)" if reply.truncated else ""),
            {"reason": "platform_error", "platform_status": reply.status_code},
        )
    try:
        body = json.loads(reply.body)
    except ValueError as exc:
        raise PlatformUnavailable("the platform's membership answer is not JSON", {"reason": "platform_error"}) from exc
    if not isinstance(body, dict) or not isinstance(body.get("members"), list):
        raise PlatformUnavailable("the platform's membership answer has no members", {"reason": "platform_error"})
    link = next_link(reply.headers.get_list("link"))
    return {**body, "next": urljoin(url, link) if link else None}


def _get(inst: Instance, tenant_id: str, reg: Registration, url: str) -> outbound.Reply:
    try:
        token = service_token(inst, tenant_id, reg, [c.SCOPE_MEMBERSHIPS])
        return outbound.send(
            "GET",
            url,
            policy=policy(inst),
            timeout=TIMEOUT_SECONDS,
            max_body=MAX_PAGE_BYTES,
            headers={"authorization": f"Bearer {token}", "accept": MEDIA_TYPE},
        )
    except outbound.OutboundError as exc:
        raise PlatformUnavailable(
            f"the platform could not be reached: {exc.message}", {"reason": "platform_unreachable"}
        ) from exc
    except AgsError as exc:  # the token endpoint refused or failed
        raise PlatformUnavailable(str(exc), {"reason": "token"}) from exc


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
