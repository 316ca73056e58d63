"""Sessions: the list with its filters and learner search, one session's CMI and interactions in a
readable form, a new attempt (a fresh session of the same learner and package), a new launch link,
and deletion (appliance.services.learning.sessions)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from appliance.core.cmi5 import vocabulary
from appliance.faces.api.sessions import base_url
from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of
from appliance.services.learning import cmi5_registrations, sessions

_INTERACTION = re.compile(r"^cmi\.interactions\.(\d+)\.(.+)$")


def interactions_of(cmi: dict[str, str]) -> list[dict[str, str]]:
    """`cmi.interactions.N.field` keys gathered into one row per interaction, in order."""
    found: dict[int, dict[str, str]] = {}
    for key, value in cmi.items():
        match = _INTERACTION.match(key)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [found[n] for n in sorted(found)]


def readable_cmi(cmi: dict[str, str]) -> list[tuple[str, str]]:
    """The CMI without the interactions (they get their own table), sorted by name."""
    return sorted((k, v) for k, v in cmi.items() if not _INTERACTION.match(k))


class SessionPages(Controller):
    """`/admin/t/{tenant_id}/sessions…`."""

    path = "/t/{tenant_id:str}/sessions"

    @get("/", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
        learner: FromQuery[str | None] = None,
        package: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
    ) -> Template:
        """Sessions by package, learner (a search of ids and names: sessions.list_sessions) and status,
        a page at a time."""
        filters = {"learner": learner or None, "package_id": package or None, "status": status or None}
        found = sessions.list_sessions(
            instance(request), tenant, base_url(request), filters=filters, limit=PAGE_SIZE, cursor=pager.cursor
        )
        return page(
            request,
            "sessions.html",
            sessions=found["data"],
            pager=pager.with_result(found, learner=learner, package=package, status=status),
            filters={"learner": learner or "", "package": package or "", "status": status or ""},
            statuses=sessions.STATUSES,
        )

    @get("/{session_id:str}", sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]) -> Template:
        """One session: its summary, every SCO's CMI and interactions."""
        found = sessions.get_session(instance(request), tenant, session_id, base_url(request), include_cmi=True)
        activities = [
            {
                "id": aid,
                "attempt": a["attempt"],
                "cmi": readable_cmi(a["cmi"]),
                "interactions": interactions_of(a["cmi"]),
            }
            for aid, a in found.get("activities", {}).items()
        ]
        return page(request, "session.html", s=found, activities=activities, waive_reasons=vocabulary.WAIVE_REASONS)

    @post("/{session_id:str}/attempt", status_code=303)
    async def new_attempt(
        self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]
    ) -> Redirect:
        """A new session for the same learner and package (the old one stays as it was)."""
        inst = instance(request)
        old = await asyncio.to_thread(sessions.get_session, inst, tenant, session_id, base_url(request))
        created, _ = await asyncio.to_thread(
            sessions.create_session,
            inst,
            tenant,
            base_url(request),
            package_id=old["package_id"],
            learner_id=old["learner"]["id"],
            learner_name=old["learner"]["name"],
            package_version=None,
            resume=False,
        )
        return Redirect(f"/admin/t/{tenant.id}/sessions/{created['id']}", status_code=303)

    @post("/{session_id:str}/launch", status_code=303)
    async def launch(self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]) -> Redirect:
        """A fresh launch link for the session (sessions.relaunch), opened at once."""
        found = await asyncio.to_thread(sessions.relaunch, instance(request), tenant, session_id, base_url(request))
        return Redirect(found["launch_url"], status_code=303)

    @post("/{session_id:str}/delete", status_code=303)
    async def delete(self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]) -> Redirect:
        """Delete the session and its run-time data."""
        await asyncio.to_thread(sessions.delete_session, instance(request), tenant, session_id)
        return Redirect(f"/admin/t/{tenant.id}/sessions", status_code=303)

    @post("/{session_id:str}/cmi5/waive", status_code=303)
    async def waive(self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]) -> Redirect:
        """Waive one AU of a cmi5 registration (cmi5_registrations.waive checks the reason)."""
        form = await form_of(request)
        await asyncio.to_thread(
            cmi5_registrations.waive, instance(request), tenant, session_id, form.get("au", ""), form.get("reason", "")
        )
        return Redirect(f"/admin/t/{tenant.id}/sessions/{session_id}#cmi5", status_code=303)

    @post("/{session_id:str}/cmi5/abandon", status_code=303)
    async def abandon(self, request: Request[Any, Any, Any], tenant: TenantDep, session_id: FromPath[str]) -> Redirect:
        """Abandon the registration's open AU session (its token stops working)."""
        await asyncio.to_thread(cmi5_registrations.abandon, instance(request), tenant, session_id)
        return Redirect(f"/admin/t/{tenant.id}/sessions/{session_id}#cmi5", status_code=303)
