"""Webhook routes: endpoints (CRUD, enable/disable), a test ping, the delivery log and manual retry."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.services.delivery import webhook_deliveries, webhooks
from appliance.services.tenancy.roles import ADMINS


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /webhooks."""

    url: str
    events: list[str]
    description: str | None = None
    enabled: bool = True


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /webhooks/{id}: any of these; `enabled: true` re-enables an endpoint that was disabled."""

    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


def _wake(request: Request[Any, Any, Any]) -> None:
    request.app.state.scheduler.wake()


class WebhookController(Controller):
    """Webhook endpoints of the authenticated tenant: admins only (they send tenant data to any URL)."""

    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    opt = {"roles": ADMINS}

    @post("/", status_code=201, sync_to_thread=True, summary="Create a webhook endpoint (the secret is shown once)")
    def create(self, principal: PrincipalDep, inst: InstanceDep, data: JSONBody[WebhookIn]) -> dict[str, Any]:
        """201 with the endpoint and its `secret` (`whsec_…`), which is never shown again."""
        return webhooks.create_webhook(
            inst, principal.tenant, url=data.url, events=data.events, description=data.description, enabled=data.enabled
        )

    @get("/", sync_to_thread=True, summary="List webhook endpoints")
    def list_(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Endpoints, oldest first."""
        return webhooks.list_webhooks(inst, principal.tenant, limit=limit, cursor=cursor)

    @get("/{webhook_id:str}", sync_to_thread=True, summary="A webhook endpoint")
    def show(self, principal: PrincipalDep, inst: InstanceDep, webhook_id: FromPath[str]) -> dict[str, Any]:
        """One endpoint (without its secret)."""
        return webhooks.get_webhook(inst, principal.tenant, webhook_id)

    @patch("/{webhook_id:str}", sync_to_thread=True, summary="Change, enable or disable a webhook endpoint")
    def update(
        self, principal: PrincipalDep, inst: InstanceDep, webhook_id: FromPath[str], data: JSONBody[WebhookPatch]
    ) -> dict[str, Any]:
        """Fields left out keep their value. Disabling fails the endpoint's pending deliveries."""
        return webhooks.update_webhook(
            inst,
            principal.tenant,
            webhook_id,
            url=data.url,
            events=data.events,
            description=data.description,
            enabled=data.enabled,
        )

    @delete("/{webhook_id:str}", status_code=204, sync_to_thread=True, summary="Delete a webhook endpoint")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, webhook_id: FromPath[str]) -> None:
        """Delete the endpoint and its delivery log."""
        webhooks.delete_webhook(inst, principal.tenant, webhook_id)

    @post("/{webhook_id:str}/test", status_code=202, sync_to_thread=True, summary="Send a ping event")
    def test(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, webhook_id: FromPath[str]
    ) -> dict[str, Any]:
        """Queue a `ping` for this endpoint; 202 with the delivery (watch it in the delivery log)."""
        result = webhook_deliveries.send_test(inst, principal.tenant, webhook_id)
        _wake(request)
        return result

    @get("/{webhook_id:str}/deliveries", sync_to_thread=True, summary="The endpoint's delivery log")
    def deliveries(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        webhook_id: FromPath[str],
        status: FromQuery[str | None] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=500)] = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Deliveries, newest first, with each attempt's status code, response time and error."""
        return webhook_deliveries.list_deliveries(
            inst, principal.tenant, webhook_id, status=status, limit=limit, cursor=cursor
        )

    @get("/{webhook_id:str}/deliveries/{delivery_id:str}", sync_to_thread=True, summary="One delivery")
    def delivery(
        self, principal: PrincipalDep, inst: InstanceDep, webhook_id: FromPath[str], delivery_id: FromPath[str]
    ) -> dict[str, Any]:
        """A delivery with its attempts and the event body it sends."""
        return webhook_deliveries.get_delivery(inst, principal.tenant, webhook_id, delivery_id)

    @post(
        "/{webhook_id:str}/deliveries/{delivery_id:str}/retry",
        status_code=202,
        sync_to_thread=True,
        summary="Redeliver now",
    )
    def retry(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        webhook_id: FromPath[str],
        delivery_id: FromPath[str],
    ) -> dict[str, Any]:
        """One more attempt now, for a failed delivery (or a delivered one, to send it again)."""
        result = webhook_deliveries.retry_delivery(inst, principal.tenant, webhook_id, delivery_id)
        _wake(request)
        return result
