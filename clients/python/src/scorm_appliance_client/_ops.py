"""Every API operation the clients call, once, as data: method, path template, query, body, parser.

`Client` and `AsyncClient` only execute these, so the two cannot drift apart, and the path templates
are the OpenAPI schema's own (tests/clients/test_clients.py checks them against the live schema).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeAlias
from urllib.parse import quote

from .models import (
    AnalyticsSummary,
    Delivery,
    Launch,
    Package,
    PackageAnalytics,
    PackageVersion,
    Page,
    Session,
    Webhook,
    XapiCredential,
)

Upload: TypeAlias = "str | os.PathLike[str] | IO[bytes]"
JSON: TypeAlias = Any


@dataclass
class Call:
    """One request to make: `path` is a template of the schema, filled from `path_params`."""

    method: str
    path: str
    path_params: Mapping[str, str | int] = field(default_factory=dict)
    params: Mapping[str, Any] | None = None
    json: JSON = None
    upload: Upload | None = None
    form: Mapping[str, str] | None = None
    parse: Callable[[Any], Any] = lambda body: body
    raw_text: bool = False
    upload_start: int | None = None

    def url_path(self) -> str:
        """The path with its parameters filled in, each escaped as one path segment."""
        values = {k: quote(str(v), safe="") for k, v in self.path_params.items()}
        return "/api/v1" + self.path.format(**values)

    def query(self) -> dict[str, Any]:
        """The query parameters that are set (None means "not sent")."""
        return {k: v for k, v in (self.params or {}).items() if v is not None}


def _page(parse: Callable[[dict[str, Any]], Any]) -> Callable[[Any], Page[Any]]:
    return lambda body: Page([parse(item) for item in body["data"]], body.get("next_cursor"))


def _none(_: Any) -> None:
    return None


def _filename(upload: Upload) -> str:
    if isinstance(upload, (str, os.PathLike)):
        return Path(upload).name
    return Path(str(getattr(upload, "name", "package.zip"))).name


def _maybe(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- system ------------------------------------------------------------------------------------------


def health() -> Call:
    return Call("GET", "/health")


def get_tenant() -> Call:
    return Call("GET", "/tenant")


def get_usage() -> Call:
    return Call("GET", "/usage")


# -- packages ----------------------------------------------------------------------------------------


def list_packages(status: str | None, limit: int | None, cursor: str | None) -> Call:
    params = {"status": status, "limit": limit, "cursor": cursor}
    return Call("GET", "/packages", params=params, parse=_page(Package.from_json))


def upload_package(file: Upload, title: str | None) -> Call:
    form = _maybe(title=title)
    return Call("POST", "/packages", upload=file, form=form, parse=Package.from_json)


def upload_package_version(package_id: str, file: Upload) -> Call:
    return Call(
        "POST", "/packages/{package_id}/versions", {"package_id": package_id}, upload=file, parse=Package.from_json
    )


def validate_package(file: Upload) -> Call:
    return Call("POST", "/packages/validate", upload=file)


def get_package(package_id: str) -> Call:
    return Call("GET", "/packages/{package_id}", {"package_id": package_id}, parse=Package.from_json)


def update_package(package_id: str, changes: Mapping[str, Any]) -> Call:
    return Call(
        "PATCH", "/packages/{package_id}", {"package_id": package_id}, json=dict(changes), parse=Package.from_json
    )


def delete_package(package_id: str) -> Call:
    return Call("DELETE", "/packages/{package_id}", {"package_id": package_id}, parse=_none)


def list_package_versions(package_id: str) -> Call:
    return Call(
        "GET", "/packages/{package_id}/versions", {"package_id": package_id}, parse=_page(PackageVersion.from_json)
    )


def get_package_version(package_id: str, version: int) -> Call:
    return Call(
        "GET",
        "/packages/{package_id}/versions/{version}",
        {"package_id": package_id, "version": version},
        parse=PackageVersion.from_json,
    )


# -- sessions ----------------------------------------------------------------------------------------


def create_session(
    package_id: str, learner_id: str, learner_name: str | None, package_version: int | None, resume: bool
) -> Call:
    body = {
        "package_id": package_id,
        "learner": _maybe(id=learner_id, name=learner_name),
        "resume": resume,
        **_maybe(package_version=package_version),
    }
    return Call("POST", "/sessions", json=body, parse=Session.from_json)


def list_sessions(
    package_id: str | None,
    learner_id: str | None,
    learner: str | None,
    status: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call:
    params = {"package_id": package_id, "learner_id": learner_id, "learner": learner, "status": status}
    params |= {"limit": limit, "cursor": cursor}
    return Call("GET", "/sessions", params=params, parse=_page(Session.from_json))


def get_session(session_id: str, include_cmi: bool) -> Call:
    params = {"include": "cmi" if include_cmi else None}
    return Call("GET", "/sessions/{session_id}", {"session_id": session_id}, params=params, parse=Session.from_json)


def update_session(
    session_id: str, version: int, cmi: Mapping[str, str] | None, activity: str | None, expires_at: str | None
) -> Call:
    body = {"version": version, **_maybe(cmi=dict(cmi) if cmi is not None else None, activity=activity)}
    body.update(_maybe(expires_at=expires_at))
    return Call("PATCH", "/sessions/{session_id}", {"session_id": session_id}, json=body, parse=Session.from_json)


def launch_session(session_id: str) -> Call:
    return Call("POST", "/sessions/{session_id}/launch", {"session_id": session_id}, parse=Launch.from_json)


def delete_session(session_id: str) -> Call:
    return Call("DELETE", "/sessions/{session_id}", {"session_id": session_id}, parse=_none)


# -- analytics ---------------------------------------------------------------------------------------


def analytics_summary(days: int | None) -> Call:
    return Call("GET", "/analytics/summary", params={"days": days}, parse=AnalyticsSummary.from_json)


def package_analytics(package_id: str, days: int | None) -> Call:
    return Call(
        "GET",
        "/analytics/packages/{package_id}",
        {"package_id": package_id},
        params={"days": days},
        parse=PackageAnalytics.from_json,
    )


def package_analytics_csv(package_id: str, section: str | None) -> Call:
    params = {"format": "csv", "section": section}
    return Call("GET", "/analytics/packages/{package_id}", {"package_id": package_id}, params=params, raw_text=True)


# -- webhooks ----------------------------------------------------------------------------------------


def create_webhook(url: str, events: list[str], description: str | None, enabled: bool | None) -> Call:
    body = {"url": url, "events": list(events), **_maybe(description=description, enabled=enabled)}
    return Call("POST", "/webhooks", json=body, parse=Webhook.from_json)


def list_webhooks(limit: int | None, cursor: str | None) -> Call:
    params = {"limit": limit, "cursor": cursor}
    return Call("GET", "/webhooks", params=params, parse=_page(Webhook.from_json))


def get_webhook(webhook_id: str) -> Call:
    return Call("GET", "/webhooks/{webhook_id}", {"webhook_id": webhook_id}, parse=Webhook.from_json)


def update_webhook(webhook_id: str, changes: Mapping[str, Any]) -> Call:
    return Call(
        "PATCH", "/webhooks/{webhook_id}", {"webhook_id": webhook_id}, json=dict(changes), parse=Webhook.from_json
    )


def delete_webhook(webhook_id: str) -> Call:
    return Call("DELETE", "/webhooks/{webhook_id}", {"webhook_id": webhook_id}, parse=_none)


def test_webhook(webhook_id: str) -> Call:
    return Call("POST", "/webhooks/{webhook_id}/test", {"webhook_id": webhook_id}, parse=Delivery.from_json)


def list_deliveries(webhook_id: str, status: str | None, limit: int | None, cursor: str | None) -> Call:
    params = {"status": status, "limit": limit, "cursor": cursor}
    return Call(
        "GET",
        "/webhooks/{webhook_id}/deliveries",
        {"webhook_id": webhook_id},
        params=params,
        parse=_page(Delivery.from_json),
    )


def get_delivery(webhook_id: str, delivery_id: str) -> Call:
    return Call(
        "GET",
        "/webhooks/{webhook_id}/deliveries/{delivery_id}",
        {"webhook_id": webhook_id, "delivery_id": delivery_id},
        parse=Delivery.from_json,
    )


def retry_delivery(webhook_id: str, delivery_id: str) -> Call:
    return Call(
        "POST",
        "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
        {"webhook_id": webhook_id, "delivery_id": delivery_id},
        parse=Delivery.from_json,
    )


# -- xAPI LRS credentials ----------------------------------------------------------------------------


def create_xapi_credential(name: str | None, scope: str | None) -> Call:
    body = _maybe(name=name, scope=scope)
    return Call("POST", "/xapi/credentials", json=body, parse=XapiCredential.from_json)


def list_xapi_credentials(limit: int | None, cursor: str | None) -> Call:
    params = {"limit": limit, "cursor": cursor}
    return Call("GET", "/xapi/credentials", params=params, parse=_page(XapiCredential.from_json))


def get_xapi_credential(credential_id: str) -> Call:
    return Call(
        "GET", "/xapi/credentials/{credential_id}", {"credential_id": credential_id}, parse=XapiCredential.from_json
    )


def revoke_xapi_credential(credential_id: str) -> Call:
    return Call(
        "DELETE", "/xapi/credentials/{credential_id}", {"credential_id": credential_id}, parse=XapiCredential.from_json
    )
