"""The player's cmi5 side: a cmi5 session's launch page, its AUs' files, and the API launch's `cmi5` member.

A cmi5 session's `launch_url` is the same `/player/{token}` as a SCORM session's. Opened, it launches
an AU (the `au` query parameter, else the first unsatisfied one: appliance.services.learning.cmi5_registrations.launch)
and shows it as its launchMethod says (cmi5 §8.1.1): `AnyWindow` in the player's frame, `OwnWindow`
by redirecting the window to the AU's launch URL. A relative AU is served from the version's files
under `/player/{token}/content/...`, as SCORM content is.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response

from appliance.core.cmi5.course_structure import Course
from appliance.errors import NotFound
from appliance.faces.api.middleware import PLAYER_PAGE_POLICY, player_page_headers
from appliance.instance import Instance
from appliance.services.learning import cmi5_registrations
from appliance.services.learning.cmi5_registrations.records import session_row
from appliance.services.tenancy.tenants import Tenant, get_tenant
from appliance.storage.sqlite.connection import one

FRAME_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>html,body{{margin:0;height:100%}}iframe{{border:0;width:100%;height:100%;display:block}}</style>
</head>
<body>
<iframe id="cmi5-au" title="{title}" src="{src}" allow="fullscreen; autoplay"></iframe>
<script type="application/json" id="cmi5-launch">{launch}</script>
</body>
</html>
"""


def _request_base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def page(
    request: Request[Any, Any, Any], inst: Instance, tenant_id: str, session_id: str, au: str | None
) -> Response[str]:
    """Launch an AU of the registration: a frame (AnyWindow) or a redirect (OwnWindow)."""
    tenant = get_tenant(inst, tenant_id)
    launched = cmi5_registrations.launch(
        inst, tenant, session_id, api_base=cmi5_registrations.api_origin(inst, _request_base(request)), au=au
    )
    headers = _frame_page_headers(inst, launched.url)
    if launched.launch_method == "OwnWindow":
        return Response("", status_code=302, headers={"Location": launched.url, "Cache-Control": "no-store"})
    body = FRAME_PAGE.format(
        title=html.escape("Course"),
        src=html.escape(launched.url, quote=True),
        launch=json.dumps(launched.json()).replace("</", "<\\/"),
    )
    return Response(body, media_type="text/html", headers=headers)


OVERVIEW_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<main>
<h1>{title}</h1>
<p id="cmi5-course-status">{status}</p>
<ul id="cmi5-aus">
{items}
</ul>
</main>
</body>
</html>
"""


def overview(inst: Instance, tenant_id: str, session_id: str, player_path: str) -> Response[str]:
    """The AUs' returnURL: the course's progress and a link to launch each AU (cmi5 §10.2.1 returnURL).

    It launches nothing by itself: an AU's Exit lands here instead of on a new AU session of the
    first unsatisfied AU. Plain HTML under the player page's own policy (no script, no style).
    """

    def read(conn: Any) -> tuple[dict[str, Any] | None, Course | None]:
        progress = cmi5_registrations.progress_json(conn, session_id)
        if progress is None:  # not a registration (or no such session)
            return None, None
        session = session_row(conn, session_id)
        return progress, cmi5_registrations.course_of(conn, session["package_id"], session["package_version"])

    progress, course = inst.tenant_db(tenant_id).read_sync(read)
    if progress is None or course is None:
        raise NotFound("no such launch")
    titles = {au.id: _title(au.title) for au in course.aus()}
    items = []
    for au in progress["aus"]:
        state = "satisfied" if au["satisfied"] else au["completion_status"]
        href = html.escape(f"{player_path}?au={quote(au['au_id'], safe='')}", quote=True)
        name = html.escape(titles.get(au["au_id"], au["au_id"]))
        items.append(
            f'<li data-au="{html.escape(au["au_id"], quote=True)}" data-state="{state}"><a href="{href}">{name}</a> ({state})</li>'
        )
    status = "Course complete." if progress["satisfied"] else "Choose what to open next."
    body = OVERVIEW_PAGE.format(
        title=html.escape(_title(course.title) or "Course"), status=status, items="\n".join(items)
    )
    headers = {**player_page_headers(inst.config.frame_ancestors), "Cache-Control": "no-store"}
    return Response(body, media_type="text/html", headers=headers)


def _title(text: dict[str, str]) -> str:
    """A course structure text: English if there is one, else any."""
    for lang, value in text.items():
        if lang.lower().startswith("en") and value:
            return value
    return next((value for value in text.values() if value), "")


def _frame_page_headers(inst: Instance, au_url: str) -> dict[str, str]:
    """The player page's headers with a policy of its own: nothing but the AU's frame (its origin: the
    player's own for a packaged AU, the AU's host for an external one) and the page's inline style."""
    headers = {**player_page_headers(inst.config.frame_ancestors), "Cache-Control": "no-store"}
    parts = urlsplit(au_url)
    frame = f"{parts.scheme}://{parts.netloc}"
    policy = (
        f"default-src 'none'; style-src 'unsafe-inline'; frame-src 'self' {frame}; base-uri 'none'; form-action 'none'"
    )
    headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(PLAYER_PAGE_POLICY, policy)
    return headers


def package_version(inst: Instance, tenant_id: str, session_id: str) -> tuple[str, int]:
    """The package and version of a cmi5 registration, whose files are its relative AUs."""
    row = inst.tenant_db(tenant_id).read_sync(
        lambda c: one(c, "SELECT package_id, package_version FROM sessions WHERE id = ?", (session_id,))
    )
    if row is None:
        raise NotFound("no such launch")
    return row["package_id"], int(row["package_version"])


def api_launch(
    request: Request[Any, Any, Any],
    inst: Instance,
    tenant: Tenant,
    session_id: str,
    answer: dict[str, Any],
    au: str | None,
    launch_mode: str,
) -> dict[str, Any]:
    """`POST /sessions/{id}/launch`'s answer: a cmi5 session also launches an AU, in `cmi5`."""
    is_cmi5 = inst.tenant_db(tenant.id).read_sync(lambda c: cmi5_registrations.is_registration(c, session_id))
    if not is_cmi5:
        return answer
    launched = cmi5_registrations.launch(
        inst,
        tenant,
        session_id,
        api_base=cmi5_registrations.api_origin(inst, _request_base(request)),
        au=au,
        launch_mode=launch_mode,
    )
    return {**answer, "cmi5": launched.json()}
