"""Management routes of the built-in xAPI LRS: credentials (issue, list, revoke) and forwarding targets.

The LRS itself answers under `/xapi/` (appliance.faces.api.xapi); these are the tenant administrator's routes
under `/api/v1/xapi/`, in the API's conventions (JSON errors of the contract, cursor pagination,
prefixed ids). Admins only: a credential reads every learner's statements, and forwarding sends them
to any URL.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from appliance.faces.api.deps import InstanceDep, PrincipalDep
from appliance.faces.api.paging import PageCursor, PageLimit
from appliance.services.lrs import credentials, forwarding_log, forwarding_targets
from appliance.services.tenancy.roles import ADMINS


class CredentialIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /xapi/credentials."""

    name: str | None = None
    scope: str = "all"


class FiltersIn(msgspec.Struct, forbid_unknown_fields=True):
    """Which statements a target takes; an empty list means no restriction."""

    verbs: list[str] | None = None
    activity_prefixes: list[str] | None = None


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    """POST /xapi/forwarding."""

    endpoint: str
    username: str | None = None
    password: str | None = None
    version: str = "1.0.3"
    filters: FiltersIn | None = None
    name: str | None = None
    enabled: bool = True
    forward_existing: bool = False


class TargetPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH /xapi/forwarding/{id}: any of these; filters replace the lists given."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = None
    version: str | None = None
    filters: FiltersIn | None = None
    name: str | None = None
    enabled: bool | None = None


def _target_fields(data: TargetIn | TargetPatch) -> dict[str, Any]:
    """A target's fields as appliance.services.lrs.forwarding takes them (the filters' lists unpacked)."""
    filters = data.filters or FiltersIn()
    return {
        "endpoint": data.endpoint,
        "username": data.username,
        "password": data.password,
        "version": data.version,
        "verbs": filters.verbs,
        "activity_prefixes": filters.activity_prefixes,
        "name": data.name,
        "enabled": data.enabled,
    }


def _endpoint(request: Request[Any, Any, Any], inst: Any) -> str:
    return credentials.endpoint_url(inst, str(request.base_url))


def _wake(request: Request[Any, Any, Any]) -> None:
    request.app.state.scheduler.wake()


class LrsCredentialController(Controller):
    """The tenant's LRS credentials (HTTP Basic key and secret for xAPI clients)."""

    path = "/api/v1/xapi/credentials"
    tags = ["xapi"]
    opt = {"roles": ADMINS}

    @post("/", status_code=201, sync_to_thread=True, summary="Issue an LRS credential (the secret is shown once)")
    def create(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, data: JSONBody[CredentialIn]
    ) -> dict[str, Any]:
        """201 with the credential, its `key` and `secret` (never shown again) and the LRS `endpoint`."""
        cred, secret = credentials.create_credential(inst, principal.tenant.id, data.name, data.scope)
        return credentials.credential_json(cred, secret, _endpoint(request, inst))

    @get("/", sync_to_thread=True, summary="List LRS credentials")
    def list_(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        """Credentials, oldest first, revoked ones included (never their secrets)."""
        return credentials.page_credentials(
            inst, principal.tenant.id, limit=limit, cursor=cursor, endpoint=_endpoint(request, inst)
        )

    @get("/{credential_id:str}", sync_to_thread=True, summary="An LRS credential")
    def show(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, credential_id: FromPath[str]
    ) -> dict[str, Any]:
        """One credential; another tenant's is 404."""
        cred = credentials.get_credential(inst, credential_id, principal.tenant.id)
        return credentials.credential_json(cred, endpoint=_endpoint(request, inst))

    @delete("/{credential_id:str}", status_code=200, sync_to_thread=True, summary="Revoke an LRS credential")
    def revoke(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, credential_id: FromPath[str]
    ) -> dict[str, Any]:
        """Revoke at once (the next xAPI request with it is 401); 200 with the revoked record, which stays listed."""
        cred = credentials.revoke_credential(inst, credential_id, principal.tenant.id)
        return credentials.credential_json(cred, endpoint=_endpoint(request, inst))


class LrsForwardingController(Controller):
    """The tenant's forwarding targets: external LRSs that receive its statements, in order."""

    path = "/api/v1/xapi/forwarding"
    tags = ["xapi"]
    opt = {"roles": ADMINS}

    @post("/", status_code=201, sync_to_thread=True, summary="Add a forwarding target")
    def create(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, inst: InstanceDep, data: JSONBody[TargetIn]
    ) -> dict[str, Any]:
        """201 with the target (its password is never shown)."""
        target = forwarding_targets.create_target(
            inst, principal.tenant, **_target_fields(data), forward_existing=data.forward_existing
        )
        _wake(request)
        return target

    @get("/", sync_to_thread=True, summary="List forwarding targets")
    def list_(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        """Targets, oldest first, each with its cursor and backlog."""
        return forwarding_targets.list_targets(inst, principal.tenant, limit=limit, cursor=cursor)

    @get("/{target_id:str}", sync_to_thread=True, summary="A forwarding target")
    def show(self, principal: PrincipalDep, inst: InstanceDep, target_id: FromPath[str]) -> dict[str, Any]:
        """One target with its cursor, backlog (`pending_statements`) and failure state."""
        return forwarding_targets.get_target(inst, principal.tenant, target_id)

    @patch("/{target_id:str}", sync_to_thread=True, summary="Change, enable or disable a forwarding target")
    def update(
        self,
        request: Request[Any, Any, Any],
        principal: PrincipalDep,
        inst: InstanceDep,
        target_id: FromPath[str],
        data: JSONBody[TargetPatch],
    ) -> dict[str, Any]:
        """Fields left out keep their value; a disabled target keeps its cursor and resumes from it."""
        target = forwarding_targets.update_target(inst, principal.tenant, target_id, **_target_fields(data))
        _wake(request)
        return target

    @delete("/{target_id:str}", status_code=204, sync_to_thread=True, summary="Delete a forwarding target")
    def remove(self, principal: PrincipalDep, inst: InstanceDep, target_id: FromPath[str]) -> None:
        """Delete the target and its log (statements already forwarded stay at the target)."""
        forwarding_targets.delete_target(inst, principal.tenant, target_id)

    @get("/{target_id:str}/log", sync_to_thread=True, summary="The target's delivery log")
    def log(
        self,
        principal: PrincipalDep,
        inst: InstanceDep,
        target_id: FromPath[str],
        outcome: FromQuery[str | None] = None,
        limit: PageLimit = None,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        """Attempts, newest first: delivered, failed (retried with backoff) or rejected (passed over)."""
        return forwarding_log.list_log(inst, principal.tenant, target_id, outcome=outcome, limit=limit, cursor=cursor)
