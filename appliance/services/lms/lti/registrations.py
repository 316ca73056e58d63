"""Platform registrations of one tenant: what the tool must know about each LMS that launches it.

A registration is the pair (issuer, client id) the platform assigned, the deployment ids it may
launch from, and its three URLs: the JWKS that verifies its id_tokens, the OIDC authorisation endpoint
the login initiation redirects to, and the OAuth 2 token endpoint AGS calls need. Every URL is checked
against the outbound policy when stored (a literal internal address needs `outbound_allow`), and again
on every fetch (appliance.services.delivery.outbound).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.clock import rfc3339
from appliance.errors import NotFound, ValidationFailed
from appliance.ids import new_id
from appliance.instance import Instance
from appliance.pagination import keyset_clause, page_result, parse_page
from appliance.services.delivery import outbound
from appliance.storage.sqlite.connection import one, rows

URL_FIELDS = ("jwks_url", "auth_url", "token_url")
MAX_TEXT = 2048


@dataclass(frozen=True)
class Registration:
    """One platform, as the launch and AGS code use it."""

    id: str
    name: str
    issuer: str
    client_id: str
    deployment_ids: tuple[str, ...]
    jwks_url: str
    auth_url: str
    token_url: str
    created_at: float
    updated_at: float

    def json(self) -> dict[str, Any]:
        """The API's registration object."""
        return {
            "id": self.id,
            "name": self.name,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "deployment_ids": list(self.deployment_ids),
            "jwks_url": self.jwks_url,
            "auth_url": self.auth_url,
            "token_url": self.token_url,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


def _from_row(row: dict[str, Any]) -> Registration:
    return Registration(
        id=row["id"],
        name=row["name"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        deployment_ids=tuple(json.loads(row["deployment_ids"])),
        jwks_url=row["jwks_url"],
        auth_url=row["auth_url"],
        token_url=row["token_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def policy(inst: Instance) -> outbound.Policy:
    """The outbound policy every platform URL is checked against (`outbound_allow`)."""
    return outbound.policy_for(inst.config.outbound_allow)


def _text(field: str, value: str) -> str:
    text = value.strip()
    if not text or len(text) > MAX_TEXT:
        raise ValidationFailed(
            f"{field} must be 1-{MAX_TEXT} characters", {"errors": [{"field": field, "message": "required"}]}
        )
    return text


def _url(inst: Instance, field: str, value: str) -> str:
    text = _text(field, value)
    try:
        outbound.check_url(text, policy(inst))
    except outbound.OutboundRefused as exc:
        raise ValidationFailed(
            f"{field}: {exc.message}", {"errors": [{"field": field, "message": exc.message}]}
        ) from exc
    return text


def _deployments(values: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise ValidationFailed(
            "deployment_ids must name at least one deployment id (the platform shows it when the tool is added)",
            {"errors": [{"field": "deployment_ids", "message": "must not be empty"}]},
        )
    return cleaned


def create_registration(
    inst: Instance,
    tenant_id: str,
    *,
    issuer: str,
    client_id: str,
    deployment_ids: list[str],
    jwks_url: str,
    auth_url: str,
    token_url: str,
    name: str | None = None,
) -> Registration:
    """Register a platform; VALIDATION_ERROR for a bad URL or when (issuer, client id) is registered."""
    values = {
        "issuer": _text("issuer", issuer),
        "client_id": _text("client_id", client_id),
        "jwks_url": _url(inst, "jwks_url", jwks_url),
        "auth_url": _url(inst, "auth_url", auth_url),
        "token_url": _url(inst, "token_url", token_url),
    }
    deployments = _deployments(deployment_ids)
    now, reg_id = inst.clock.now(), new_id("ltr")

    def insert(conn: apsw.Connection) -> dict[str, Any]:
        taken = one(
            conn,
            "SELECT id FROM lti_registrations WHERE issuer = ? AND client_id = ?",
            (values["issuer"], values["client_id"]),
        )
        if taken is not None:
            raise ValidationFailed(
                "this issuer and client id are already registered",
                {"errors": [{"field": "client_id", "message": "already registered"}], "registration_id": taken["id"]},
            )
        conn.execute(
            "INSERT INTO lti_registrations (id, name, issuer, client_id, deployment_ids, jwks_url, auth_url, "
            "token_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                reg_id,
                (name or "").strip()[:200],
                values["issuer"],
                values["client_id"],
                json.dumps(deployments),
                values["jwks_url"],
                values["auth_url"],
                values["token_url"],
                now,
                now,
            ),
        )
        return _row(conn, reg_id)

    return _from_row(inst.tenant_db(tenant_id).write_sync(insert))


def _row(conn: apsw.Connection, reg_id: str) -> dict[str, Any]:
    row = one(conn, "SELECT * FROM lti_registrations WHERE id = ?", (reg_id,))
    if row is None:
        raise NotFound(f"no LTI registration {reg_id!r}", {"registration_id": reg_id})
    return row


def get_registration(inst: Instance, tenant_id: str, reg_id: str) -> Registration:
    """One registration, or NOT_FOUND."""
    return _from_row(inst.tenant_db(tenant_id).read_sync(lambda c: _row(c, reg_id)))


def list_registrations(inst: Instance, tenant_id: str) -> list[Registration]:
    """Every registration of the tenant, oldest first (a tenant has a handful)."""
    found = inst.tenant_db(tenant_id).read_sync(
        lambda c: rows(c, "SELECT * FROM lti_registrations ORDER BY created_at, id")
    )
    return [_from_row(r) for r in found]


def page_registrations(inst: Instance, tenant_id: str, *, limit: int | None, cursor: str | None) -> dict[str, Any]:
    """A page of the tenant's registrations, oldest first (`data` of Registration, `next_cursor`)."""
    page = parse_page(limit, cursor)
    where, params = keyset_clause(page)
    found = inst.tenant_db(tenant_id).read_sync(
        lambda c: rows(
            c,
            f"SELECT * FROM lti_registrations WHERE {where} ORDER BY created_at, id LIMIT ?",
            (*params, page.limit + 1),
        )
    )
    return page_result(found, page, _from_row)


def find_registration(inst: Instance, tenant_id: str, issuer: str, client_id: str | None) -> Registration | None:
    """The registration of an issuer (and client id, when the platform sent one; without it, the
    issuer's only registration)."""
    found = [r for r in list_registrations(inst, tenant_id) if r.issuer == issuer]
    if client_id:
        found = [r for r in found if r.client_id == client_id]
    return found[0] if len(found) == 1 else None


def update_registration(inst: Instance, tenant_id: str, reg_id: str, changes: dict[str, Any]) -> Registration:
    """Change some fields (None leaves a field as it is)."""
    sets: dict[str, Any] = {}
    for field in URL_FIELDS:
        if changes.get(field) is not None:
            sets[field] = _url(inst, field, changes[field])
    if changes.get("deployment_ids") is not None:
        sets["deployment_ids"] = json.dumps(_deployments(changes["deployment_ids"]))
    if changes.get("name") is not None:
        sets["name"] = str(changes["name"]).strip()[:200]
    now = inst.clock.now()

    def update(conn: apsw.Connection) -> dict[str, Any]:
        _row(conn, reg_id)
        if sets:
            assignments = ", ".join(f"{k} = ?" for k in sets)
            conn.execute(
                f"UPDATE lti_registrations SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608 (fixed names)
                (*sets.values(), now, reg_id),
            )
        return _row(conn, reg_id)

    return _from_row(inst.tenant_db(tenant_id).write_sync(update))


def delete_registration(inst: Instance, tenant_id: str, reg_id: str) -> None:
    """Remove a registration; its launches stop posting grades (their sessions stay)."""

    def delete(conn: apsw.Connection) -> None:
        _row(conn, reg_id)
        conn.execute("DELETE FROM lti_registrations WHERE id = ?", (reg_id,))

    inst.tenant_db(tenant_id).write_sync(delete)
