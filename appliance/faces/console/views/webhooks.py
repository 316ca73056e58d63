"""Webhooks: endpoints (create, enable or disable, delete), secret rotation (the new secret shown once),
the delivery log with each delivery's payload and attempts, a test ping and replay (appliance.services.delivery.webhooks).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from appliance.faces.console.auth import TenantDep, instance
from appliance.faces.console.paging import PAGE_SIZE, Pager, PagerDep
from appliance.faces.console.render import page
from appliance.faces.console.views.forms import form_of
from appliance.services.delivery import webhook_deliveries, webhooks
from appliance.services.delivery.events import EVENT_TYPES


def _wake(request: Request[Any, Any, Any]) -> None:
    request.app.state.scheduler.wake()


class WebhookPages(Controller):
    """`/admin/t/{tenant_id}/webhooks…`."""

    path = "/t/{tenant_id:str}/webhooks"

    @get("/", sync_to_thread=True)
    def list_(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        pager: PagerDep,
    ) -> Template:
        """The endpoints, a page at a time, and the form for a new one."""
        found = webhooks.list_webhooks(instance(request), tenant, limit=PAGE_SIZE, cursor=pager.cursor)
        return page(
            request,
            "webhooks.html",
            webhooks=found["data"],
            pager=pager.with_result(found),
            event_types=EVENT_TYPES,
            secret=None,
        )

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], tenant: TenantDep) -> Template:
        """Create an endpoint; the page shows its signing secret this once."""
        form = await request.form()
        events = [e for e in form.getall("events", []) if isinstance(e, str)]
        created = await asyncio.to_thread(
            webhooks.create_webhook,
            instance(request),
            tenant,
            url=str(form.get("url", "")).strip(),
            events=events or ["*"],
            description=str(form.get("description", "")).strip() or None,
        )
        found = await asyncio.to_thread(webhooks.list_webhooks, instance(request), tenant, limit=PAGE_SIZE, cursor=None)
        return page(
            request,
            "webhooks.html",
            status_code=201,
            webhooks=found["data"],
            pager=Pager.of(None, None).with_result(found),
            event_types=EVENT_TYPES,
            secret=created,
        )

    @get("/{webhook_id:str}", sync_to_thread=True)
    def show(
        self,
        request: Request[Any, Any, Any],
        tenant: TenantDep,
        webhook_id: FromPath[str],
        pager: PagerDep,
        status: FromQuery[str | None] = None,
    ) -> Template:
        """An endpoint with its delivery log (newest first), a page at a time, optionally by status."""
        inst = instance(request)
        hook = webhooks.get_webhook(inst, tenant, webhook_id)
        log = webhook_deliveries.list_deliveries(
            inst, tenant, webhook_id, status=status or None, limit=PAGE_SIZE, cursor=pager.cursor
        )
        return page(
            request,
            "webhook.html",
            hook=hook,
            deliveries=log["data"],
            pager=pager.with_result(log, status=status),
            status=status or "",
            statuses=webhook_deliveries.DELIVERY_STATUSES,
            secret=None,
        )

    @get("/{webhook_id:str}/deliveries/{delivery_id:str}", sync_to_thread=True)
    def delivery(
        self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str], delivery_id: FromPath[str]
    ) -> Template:
        """One delivery: the payload it sends and every attempt's answer."""
        inst = instance(request)
        hook = webhooks.get_webhook(inst, tenant, webhook_id)
        found = webhook_deliveries.get_delivery(inst, tenant, webhook_id, delivery_id)
        return page(request, "delivery.html", hook=hook, d=found)

    @post("/{webhook_id:str}/rotate", status_code=200)
    async def rotate(self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str]) -> Template:
        """A new signing secret, shown this once."""
        inst = instance(request)
        rotated = await asyncio.to_thread(webhooks.rotate_secret, inst, tenant, webhook_id)
        log = await asyncio.to_thread(
            webhook_deliveries.list_deliveries, inst, tenant, webhook_id, status=None, limit=PAGE_SIZE, cursor=None
        )
        return page(
            request,
            "webhook.html",
            hook=rotated,
            deliveries=log["data"],
            pager=Pager.of(None, None).with_result(log),
            status="",
            statuses=webhook_deliveries.DELIVERY_STATUSES,
            secret=rotated["secret"],
        )

    @post("/{webhook_id:str}/enabled", status_code=303)
    async def enabled(self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str]) -> Redirect:
        """Enable or disable the endpoint."""
        form = await form_of(request)
        on = form.get("enabled") == "true"
        await asyncio.to_thread(webhooks.update_webhook, instance(request), tenant, webhook_id, enabled=on)
        return Redirect(f"/admin/t/{tenant.id}/webhooks/{webhook_id}", status_code=303)

    @post("/{webhook_id:str}/test", status_code=303)
    async def test(self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str]) -> Redirect:
        """Queue a `ping` for this endpoint."""
        await asyncio.to_thread(webhook_deliveries.send_test, instance(request), tenant, webhook_id)
        _wake(request)
        return Redirect(f"/admin/t/{tenant.id}/webhooks/{webhook_id}", status_code=303)

    @post("/{webhook_id:str}/deliveries/{delivery_id:str}/replay", status_code=303)
    async def replay(
        self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str], delivery_id: FromPath[str]
    ) -> Redirect:
        """Deliver again now (webhook_deliveries.retry_delivery), then show the delivery."""
        await asyncio.to_thread(webhook_deliveries.retry_delivery, instance(request), tenant, webhook_id, delivery_id)
        _wake(request)
        return Redirect(f"/admin/t/{tenant.id}/webhooks/{webhook_id}/deliveries/{delivery_id}", status_code=303)

    @post("/{webhook_id:str}/delete", status_code=303)
    async def delete(self, request: Request[Any, Any, Any], tenant: TenantDep, webhook_id: FromPath[str]) -> Redirect:
        """Delete the endpoint and its log."""
        await asyncio.to_thread(webhooks.delete_webhook, instance(request), tenant, webhook_id)
        return Redirect(f"/admin/t/{tenant.id}/webhooks", status_code=303)
