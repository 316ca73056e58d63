"""LRS credentials (appliance.services.lrs.credentials): issue, verify in constant time, scope, revoke, per tenant."""

from __future__ import annotations

import base64

import pytest

from appliance.errors import NotFound, Unauthorized, ValidationFailed
from appliance.instance import Instance
from appliance.services.lrs import credentials
from appliance.services.tenancy.tenants import create_tenant


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def test_issue_verify_and_revoke(inst: Instance) -> None:
    tenant = create_tenant(inst, "Acme")
    cred, secret = credentials.create_credential(inst, tenant.id, "course exports", "write")
    assert cred.id.startswith("lrs_") and cred.scope == "write"
    found_tenant, found = credentials.authenticate(inst, basic(cred.id, secret))
    assert found_tenant.id == tenant.id and found.id == cred.id
    assert found.allows("POST") and not found.allows("GET")
    with pytest.raises(Unauthorized):
        credentials.authenticate(inst, basic(cred.id, secret + "x"))
    credentials.revoke_credential(inst, cred.id)
    with pytest.raises(Unauthorized, match="revoked"):
        credentials.authenticate(inst, basic(cred.id, secret))


def test_the_secret_is_not_stored(inst: Instance) -> None:
    tenant = create_tenant(inst, "Acme")
    _, secret = credentials.create_credential(inst, tenant.id)
    dump = inst.registry.read_sync(lambda c: list(c.execute("SELECT * FROM lrs_credentials")))
    assert secret not in repr(dump)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()]
)
def test_malformed_headers_are_unauthorized(inst: Instance, header: str | None) -> None:
    with pytest.raises(Unauthorized):
        credentials.authenticate(inst, header)


def test_another_tenants_credential_is_not_found(inst: Instance) -> None:
    acme, globex = create_tenant(inst, "Acme"), create_tenant(inst, "Globex")
    cred, _ = credentials.create_credential(inst, acme.id)
    with pytest.raises(NotFound):
        credentials.revoke_credential(inst, cred.id, tenant_id=globex.id)
    assert [c.id for c in credentials.list_credentials(inst, acme.id)] == [cred.id]
    assert credentials.list_credentials(inst, globex.id) == []


def test_unknown_scope_is_refused(inst: Instance) -> None:
    tenant = create_tenant(inst, "Acme")
    with pytest.raises(ValidationFailed):
        credentials.create_credential(inst, tenant.id, scope="admin")


def test_authority_names_the_credential(inst: Instance) -> None:
    tenant = create_tenant(inst, "Acme")
    cred, _ = credentials.create_credential(inst, tenant.id, "HR feed")
    assert cred.authority() == {
        "objectType": "Agent",
        "account": {"homePage": credentials.AUTHORITY_HOME_PAGE, "name": cred.id},
        "name": "HR feed",
    }
