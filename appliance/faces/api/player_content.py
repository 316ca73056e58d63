"""`/player/{token}/content/...`: a session's package files, from the instance's file store.

The session (SCORM) or registration (cmi5) names one package version; its files are the store folder
`packages/<pkg>/<version>/`. `appliance.storage.files.serving` decides the answer: the path's
confinement (`..`, backslashes, NUL, symlinks: not found), ETag and If-None-Match (304), a single byte
range (206, or 416 with the contract's error body), else 200. On the data directory the ETags are
those the route always sent. With `files_serve = "redirect"` on an object store, large media files
are a 302 to a short-lived signed URL instead (docs/scale-out.md, "Serving content").
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response
from litestar.response import Stream

from appliance.core.cmi5.packaging import Cmi5LaunchUnavailable
from appliance.faces.api import cmi5_player
from appliance.faces.api.errors import error_response
from appliance.faces.api.middleware import learner_headers
from appliance.instance import Instance
from appliance.services.learning import runtime
from appliance.storage.files.serving import answer_content, find_version_file, redirect_policy, stream_chunks


def session_version(inst: Instance, tenant_id: str, session_id: str) -> tuple[str, int]:
    """The package and version whose files the session may read."""
    try:
        course = runtime.package_files(inst, tenant_id, session_id)
    except Cmi5LaunchUnavailable:  # a cmi5 registration: its relative AUs are the version's files
        return cmi5_player.package_version(inst, tenant_id, session_id)
    return course.package_id, course.version


async def respond(
    request: Request[Any, Any, Any], inst: Instance, tenant_id: str, session_id: str, path: str
) -> Response[Any]:
    """The content route's answer for one URL path of the session's version."""
    package_id, version = await asyncio.to_thread(session_version, inst, tenant_id, session_id)
    found = await asyncio.to_thread(find_version_file, inst.files, tenant_id, package_id, version, path.lstrip("/"))
    answer = await asyncio.to_thread(
        answer_content,
        inst.files,
        found,
        range_header=request.headers.get("range"),
        if_none_match=request.headers.get("if-none-match"),
        framing=learner_headers(inst.config.frame_ancestors),
        redirect=redirect_policy(inst.files_config),
    )
    if answer.status == 416:
        response = error_response("VALIDATION_ERROR", "range not satisfiable", {"size": found.stat.size})
        response.status_code = 416
        response.headers.update(answer.headers)
        return response
    if answer.body is None:  # 304, or a 302 to a signed URL
        return Response(b"", status_code=answer.status, headers=answer.headers)
    return Stream(
        stream_chunks(answer.body), status_code=answer.status, headers=answer.headers, media_type=answer.media_type
    )
